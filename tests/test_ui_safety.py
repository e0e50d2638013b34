"""The UI as seen by a stranger: what it fetches, whom it serves, what it reveals, whose
uploads it keeps. Real loaders, index (fake embedder) and HTTP servers on loopback."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from assistant.api import list_articles, sync_articles
from assistant.errors import ConfigError
from assistant.settings import Settings
from index.locking import sync_lock
from ui import handlers

ARTICLE = (
    b"<html><head><title>Harbour reopens</title></head><body><article><h1>Harbour reopens</h1>"
    b"<p>The harbour reopened on Monday after the storm damage was repaired, the port "
    b"authority said, and the first ferries sailed in the afternoon.</p></article></body></html>"
)


@pytest.fixture
def site() -> Iterator[tuple[str, list[str]]]:
    """An article site on 127.0.0.1 (``/slow`` answers after 3 s); yields (base URL, hits)."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            if self.path == "/slow":
                time.sleep(3)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(ARTICLE)))
            self.end_headers()
            self.wfile.write(ARTICLE)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --- 1. add by URL: no server-side request forgery --------------------------------------------
def test_add_by_url_refuses_the_servers_own_network(
    fake_settings: Settings, site: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ASSISTANT_ALLOW_PRIVATE_URLS", raising=False)
    base, hits = site
    html = handlers.add_articles(None, f"{base}/admin", fake_settings)
    assert "not a public web site" in html and "ASSISTANT_ALLOW_PRIVATE_URLS" in html
    assert hits == [] and list_articles(fake_settings) == []


def test_add_by_url_allowed_by_the_setting_fetches_once(
    fake_settings: Settings, site: tuple[str, list[str]]
) -> None:
    base, hits = site
    settings = fake_settings.model_copy(update={"allow_private_urls": True})
    html = handlers.add_articles(None, f"{base}/news", settings)
    assert "1 added" in html, html
    assert [a.title for a in list_articles(settings)] == ["Harbour reopens"]
    assert hits == ["/news"]  # the sync used the page fetched before it, not a second fetch


def test_slow_url_does_not_block_other_uploads(
    fake_settings: Settings, site: tuple[str, list[str]], tmp_path: Path
) -> None:
    """The fetch happens before the index lock: an upload made meanwhile goes through."""
    base, hits = site
    settings = fake_settings.model_copy(update={"allow_private_urls": True})
    sync_articles(
        [str(write(tmp_path / "seed" / "a.txt", "Seed\n\nSeed text here."))],
        settings=settings,
        progress=lambda *a: None,
    )
    results: dict[str, str] = {}
    slow = threading.Thread(
        target=lambda: results.update(url=handlers.add_articles(None, f"{base}/slow", settings))
    )
    slow.start()
    while not hits:
        time.sleep(0.02)
    upload = write(tmp_path / "in" / "otters.txt", "Otters return\n\nOtters were seen again.")
    results["upload"] = handlers.add_articles([upload], "", settings, wait=0.5)
    slow.join(30)
    assert "1 added" in results["upload"], results["upload"]
    assert "1 added" in results["url"], results["url"]


# --- 2. no open UI beyond loopback -----------------------------------------------------------
def test_non_loopback_bind_without_auth_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from ui import app

    launched: list[dict[str, Any]] = []
    monkeypatch.setattr(app, "build_app", lambda settings: _FakeDemo(launched))
    monkeypatch.setattr(app, "_warm_up", lambda settings: None)
    settings = Settings()
    with pytest.raises(ConfigError, match=r"--auth user:password.*--no-auth"):
        app.launch(settings, host="0.0.0.0", block=False)
    assert launched == []
    app.launch(settings, host="0.0.0.0", no_auth=True, block=False)
    app.launch(settings, host="0.0.0.0", auth="ann:pw", block=False)
    app.launch(settings.model_copy(update={"ui_auth": SecretStr("ann:pw")}), host="::", block=False)
    app.launch(settings, host="127.0.0.1", block=False)
    assert [c["auth"] for c in launched] == [None, ("ann", "pw"), ("ann", "pw"), None]


def test_cli_ui_refuses_to_expose_without_auth(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from assistant import cli
    from ui import app

    monkeypatch.setattr(app, "build_app", lambda settings: _FakeDemo([]))
    monkeypatch.setattr(app, "_warm_up", lambda settings: None)
    monkeypatch.setattr(app, "launch", _no_block(app.launch))
    assert cli.main(["ui", "--host", "0.0.0.0"]) == 2
    assert "--auth user:password" in capsys.readouterr().err
    assert cli.main(["ui", "--host", "0.0.0.0", "--no-auth"]) == 0
    monkeypatch.setenv("ASSISTANT_UI_AUTH", "ann:pw")
    assert cli.main(["ui", "--host", "0.0.0.0"]) == 0


def test_ui_auth_is_a_secret() -> None:
    settings = Settings(ui_auth="ann:hunter2")
    assert isinstance(settings.ui_auth, SecretStr)
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


class _FakeDemo:
    def __init__(self, launched: list[dict[str, Any]]) -> None:
        self.launched = launched

    def queue(self, **kwargs: Any) -> _FakeDemo:
        return self

    def launch(self, **kwargs: Any) -> None:
        self.launched.append(kwargs)


def _no_block(launch: Any) -> Any:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return launch(*args, **{**kwargs, "block": False})

    return wrapped


# --- 3. uploads keep apart -------------------------------------------------------------------
def test_two_users_uploading_the_same_name_keep_both(
    fake_settings: Settings, tmp_path: Path
) -> None:
    ann = write(tmp_path / "ann" / "story.txt", "Ann's harbour story\n\nThe ferry was late again.")
    bob = write(tmp_path / "bob" / "story.txt", "Bob's otter story\n\nOtters swam past the mill.")
    assert "1 added" in handlers.add_articles([ann], "", fake_settings)
    assert "1 added" in handlers.add_articles([bob], "", fake_settings)
    titles = sorted(a.title for a in list_articles(fake_settings))
    assert titles == ["Ann's harbour story", "Bob's otter story"]
    stored = sorted(p.read_text() for p in (fake_settings.home / "uploads").rglob("story.txt"))
    assert stored == sorted([ann.read_text(), bob.read_text()])
    rows = handlers.article_rows(list_articles(fake_settings))
    assert {r[4] for r in rows} == {"story.txt"}  # shown by its own name, not the hash folder
    # The same bytes again are the same file: nothing new, nothing replaced.
    assert "1 unchanged" in handlers.add_articles([ann], "", fake_settings)
    assert len(list((fake_settings.home / "uploads").rglob("story.txt"))) == 2


# --- 4. one bad record does not lose the upload ----------------------------------------------
def test_jsonl_with_a_bad_line_keeps_the_good_records(
    fake_settings: Settings, tmp_path: Path
) -> None:
    lines = [
        json.dumps({"title": "Harbour reopens", "text": "The harbour reopened on Monday."}),
        '{"title": "Broken", "text": ',
        json.dumps({"title": "Otters return", "text": "Otters were seen in the river."}),
    ]
    upload = write(tmp_path / "in" / "news.jsonl", "\n".join(lines) + "\n")
    html = handlers.add_articles([upload], "", fake_settings)
    assert "2 added" in html and "news.jsonl#2" in html and "invalid JSON" in html, html
    assert len(list((fake_settings.home / "uploads").rglob("news.jsonl"))) == 1
    again = sync_articles(settings=fake_settings, progress=lambda *a: None)  # a later re-sync
    assert again.removed == 0
    assert sorted(a.title for a in list_articles(fake_settings)) == [
        "Harbour reopens",
        "Otters return",
    ]


def test_a_file_with_no_good_record_is_still_removed(
    fake_settings: Settings, tmp_path: Path
) -> None:
    upload = write(tmp_path / "in" / "junk.jsonl", "not json\n{also not\n")
    html = handlers.add_articles([upload], "", fake_settings)
    assert "junk.jsonl" in html and "invalid JSON" in html
    assert not list((fake_settings.home / "uploads").rglob("junk.jsonl"))


# --- 5. errors without server paths ----------------------------------------------------------
def test_ui_errors_reveal_no_server_paths(fake_settings: Settings, tmp_path: Path) -> None:
    from ui.app import _index_views
    from ui.listing import ArticleListing

    settings = fake_settings
    shown: list[str] = []

    def chat(question: str) -> str:
        last = list(handlers.ask(question, [], handlers.ChatOptions(), settings))[-1]
        return last[0][-1]["content"]

    shown.append(chat("anything?"))  # nothing indexed yet
    assert "Add articles" in shown[-1]

    text = "Harbour reopens\n\nThe harbour reopened on Monday after repairs."
    first = write(tmp_path / "in" / "a.txt", text)
    copy = write(tmp_path / "in2" / "b.txt", text)
    shown.append(handlers.add_articles([first], "", settings))
    shown.append(handlers.add_articles([copy], "", settings))  # a duplicate: "same text as ..."
    assert "same text as a.txt" in shown[-1], shown[-1]
    shown.append(
        handlers.add_articles([write(tmp_path / "in" / "bin.txt", b"\x00\x01" * 50)], "", settings)
    )

    with sync_lock(settings.home):  # another sync holds the index
        busy = handlers.add_articles(
            [write(tmp_path / "in" / "c.txt", "C\n\nMore text here.")], "", settings, wait=0.1
        )
    assert "try again" in busy
    shown.append(busy)
    shown.append(_index_views(settings, ArticleListing(settings))[0])  # status: no store path

    (settings.home / "active.json").write_text('{"generation": "../../etc"}')  # a damaged home
    shown.append(chat("anything?"))
    assert "whoever runs this server" in shown[-1]
    shown.append(
        handlers.add_articles([write(tmp_path / "in" / "d.txt", "D\n\nText d.")], "", settings)
    )
    shown.append(_index_views(settings, ArticleListing(settings))[0])

    for html in shown:
        for secret in (str(tmp_path), str(settings.home), str(Path.home()), "/uploads/"):
            assert secret not in html, (secret, html)
