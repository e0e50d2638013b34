"""UI handlers without a browser: asking (with a fake stream), uploads, listings, the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from assistant.errors import AssistantError, ConfigError
from assistant.settings import Settings
from assistant.types import Answer
from index.fetch import Page
from index.records import FailedSource, SyncReport
from ui import handlers

from .test_ui_render import cite


# --- chat ------------------------------------------------------------------------------------
def fake_stream(answer_text: str = "Tariffs [1].", deltas: tuple[str, ...] = ("Tar", "iffs")):
    calls: list[dict[str, Any]] = []

    def stream(question: str, history: Any = None, **kwargs: Any) -> Iterator[str | Answer]:
        calls.append({"question": question, "history": history, **kwargs})
        yield from deltas
        yield Answer(question, answer_text, True, [cite(1)])

    return stream, calls


def test_ask_streams_then_renders_final_answer(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    stream, calls = fake_stream()
    updates = list(handlers.ask("  What?  ", [], handlers.ChatOptions(k=3), settings, stream))
    contents = [u[0][-1]["content"] for u in updates]
    assert "Searching" in contents[0]
    assert contents[1].startswith("Tar") and contents[2].startswith("Tariffs")
    final_messages, panel, turns = updates[-1]
    assert '<a class="aa-cite-link" href="#aa-cite-0-1"' in final_messages[-1]["content"]
    assert "everything is on the table" in panel
    assert calls[0]["question"] == "What?" and calls[0]["k"] == 3 and calls[0]["history"] == []
    assert calls[0]["llm"] is None and calls[0]["sources"] is None

    # A follow-up passes the conversation so far.
    again = list(handlers.ask("And then?", turns, handlers.ChatOptions(), settings, stream))
    assert calls[1]["history"] == [("What?", "Tariffs [1].")]
    assert len(again[-1][0]) == 4 and 'href="#aa-cite-1-1"' in again[-1][0][-1]["content"]


def test_ask_filters_and_mode(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, llm="ollama:some-model")
    stream, calls = fake_stream()
    options = handlers.ChatOptions(
        k=5,
        mode=handlers.MODE_EXTRACTIVE,
        sources=["Reuters"],
        published_after="2025-10-01",
        published_before="2025-10-31",
    )
    list(handlers.ask("q", [], options, settings, stream))
    assert calls[0]["llm"] == "" and calls[0]["sources"] == ["Reuters"]
    assert str(calls[0]["published_after"]) == "2025-10-01"
    assert str(calls[0]["published_before"]) == "2025-10-31"
    list(handlers.ask("q", [], handlers.ChatOptions(mode=handlers.MODE_LLM), settings, stream))
    assert calls[1]["llm"] is None
    assert [v for _, v in handlers.mode_choices(settings)] == ["extractive", "llm"]
    assert [v for _, v in handlers.mode_choices(Settings(home=tmp_path))] == ["extractive"]


def test_ask_reports_errors_in_the_chat(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    stream, calls = fake_stream()
    bad_date = handlers.ChatOptions(published_after="last week")
    last = list(handlers.ask("q", [], bad_date, settings, stream))[-1]
    assert "is not a date; use YYYY-MM-DD" in last[0][-1]["content"] and not calls

    def failing(*args: Any, **kwargs: Any) -> Iterator[str]:
        yield "partial"
        raise AssistantError("nothing is indexed <yet>")

    last = list(handlers.ask("q", [], handlers.ChatOptions(), settings, failing))[-1]
    assert "nothing is indexed &lt;yet&gt;" in last[0][-1]["content"]

    def broken(*args: Any, **kwargs: Any) -> Iterator[str]:
        raise KeyError("bug")
        yield ""

    last = list(handlers.ask("q", [], handlers.ChatOptions(), settings, broken))[-1]
    assert "internal error (KeyError)" in last[0][-1]["content"]
    empty = list(handlers.ask("   ", [], handlers.ChatOptions(), settings, stream))
    assert len(empty) == 1 and empty[0][2] == []


# --- uploads ---------------------------------------------------------------------------------
def test_check_upload_and_names() -> None:
    assert handlers.check_upload("a.txt", 10, 20) is None
    assert handlers.check_upload("A.JSONL", 10, 20) is None
    assert "unsupported file type '.exe'" in handlers.check_upload("a.exe", 10, 20)  # type: ignore[operator]
    assert "(no suffix)" in handlers.check_upload("README", 10, 20)  # type: ignore[operator]
    assert "larger than the 1 MB upload limit" in handlers.check_upload(  # type: ignore[operator]
        "a.md", 2 * 1024 * 1024, 1
    )
    assert handlers.check_upload("a.md", 0, 1) == "the file is empty"
    assert handlers.safe_filename("../../etc/passwd.txt") == "passwd.txt"
    assert handlers.safe_filename("C:\\Users\\x\\News Story (1).MD") == "News Story _1.md"
    assert handlers.safe_filename("..txt") == "upload.txt"
    assert handlers.safe_filename("<script>.html") == "script.html"


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_add_articles_copies_syncs_and_drops_failed_uploads(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", max_upload_mb=1)
    upload_dir = settings.home / "uploads"
    good = write(tmp_path / "gradio" / "good.md", "# Title\n\nBody text.")
    bad = write(tmp_path / "gradio" / "bad.txt", b"\x89PNG\x00\x01")
    exe = write(tmp_path / "gradio" / "tool.exe", b"MZ")
    seen: dict[str, Any] = {}
    fetched: list[str] = []

    def fetch(url: str, **kwargs: Any) -> Page:
        fetched.append(url)
        assert kwargs["allow_private"] is False and kwargs["timeout"] == settings.url_timeout
        return Page(b"<p>page</p>", "text/html", None)

    def sync(sources: list[str], **kwargs: Any) -> SyncReport:
        seen.update(sources=sources, **kwargs)
        kwargs["progress"](1, 2, "embedding")
        bad_copy = next(p for p in sources if p.endswith("bad.txt"))
        return SyncReport(added=1, failed=[FailedSource(bad_copy, "binary file, not text")])

    progress: list[tuple[int, int, str]] = []
    html = handlers.add_articles(
        [good, bad, exe],
        " https://news.example/a ",
        settings,
        lambda *a: progress.append(a),
        sync,
        fetch=fetch,
        indexed_files=lambda s: set(),
    )
    assert fetched == ["https://news.example/a"]
    assert seen["sources"][-1] == "https://news.example/a"
    assert [Path(p).name for p in seen["sources"][:-1]] == ["good.md", "bad.txt"]
    assert all(Path(p).parent.parent == upload_dir for p in seen["sources"][:-1])
    assert progress == [(1, 2, "embedding")]
    assert [p.name for p in upload_dir.rglob("*") if p.is_file()] == ["good.md"]
    assert not list(upload_dir.rglob(".*"))  # no temporary file left behind
    assert "1 added" in html and "binary file, not text" in html
    assert "tool.exe" in html and "unsupported file type" in html


def test_add_articles_refusals_without_sync(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")

    def no_sync(*args: Any, **kwargs: Any) -> SyncReport:
        raise AssertionError("nothing to sync")

    html = handlers.add_articles(None, "file:///etc/passwd", settings, None, no_sync)
    assert "not an http(s) URL" in html
    assert "choose files or paste a URL" in handlers.add_articles([], "", settings, None, no_sync)

    def busy(*args: Any, **kwargs: Any) -> SyncReport:
        raise AssistantError("another sync is running")

    good = write(tmp_path / "in" / "new.txt", "Title\n\nBody.")
    html = handlers.add_articles([good], "", settings, None, busy)
    assert "another sync is running" in html
    assert not list((settings.home / "uploads").rglob("new.txt"))


def test_add_articles_with_real_sync(fake_settings: Settings, tmp_path: Path) -> None:
    """Real loaders and index (fake embedder): a text article is added, a binary refused."""
    from assistant.api import list_articles

    good = write(
        tmp_path / "in" / "otters.txt",
        "Otters return to the river\n\nOtters were seen in the Wandle on Tuesday.",
    )
    binary = write(tmp_path / "in" / "photo.txt", bytes(range(256)) * 8)
    html = handlers.add_articles([good, binary], "", fake_settings)
    assert "1 added" in html and "photo.txt" in html, html
    titles = [a.title for a in list_articles(fake_settings)]
    assert titles == ["Otters return to the river"]
    assert not list((fake_settings.home / "uploads").rglob("photo.txt"))
    again = handlers.add_articles([good], "", fake_settings)
    assert "0 added" in again and "1 unchanged" in again and "photo.txt" not in again


# --- listing, auth, app ----------------------------------------------------------------------
def test_article_rows_and_sources() -> None:
    arts = [
        SimpleNamespace(
            title="Otters return",
            source="BBC",
            published="2025-01-02",
            n_chunks=2,
            origin="/x/uploads/otters.txt",
        ),
        SimpleNamespace(
            title="Trade talks",
            source=None,
            published=None,
            n_chunks=8,
            origin="https://news.example/t",
        ),
    ]
    assert handlers.article_rows(arts, "") == [
        ["Otters return", "BBC", "2025-01-02", 2, "otters.txt"],
        ["Trade talks", "", "", 8, "https://news.example/t"],
    ]
    assert [r[0] for r in handlers.article_rows(arts, "otter bbc")] == ["Otters return"]
    assert [r[0] for r in handlers.article_rows(arts, "NEWS.example")] == ["Trade talks"]
    assert handlers.article_rows(arts, "nothing") == []
    assert handlers.source_choices(arts) == ["BBC"]


def test_parse_auth_and_loopback() -> None:
    from ui.app import _is_loopback, parse_auth

    assert parse_auth(None) is None
    assert parse_auth("ann:se:cret") == ("ann", "se:cret")
    for bad in ("ann", ":pw", "ann:"):
        with pytest.raises(ConfigError):
            parse_auth(bad)
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0")


def test_build_app_has_the_three_tabs(tmp_path: Path) -> None:
    import gradio as gr

    from ui.app import build_app

    demo = build_app(Settings(home=tmp_path / "home"))
    assert isinstance(demo, gr.Blocks)
    labels = {getattr(b, "label", None) for b in demo.blocks.values()}
    assert {"Chat", "Add articles", "Indexed articles"} <= labels
    chat = next(b for b in demo.blocks.values() if isinstance(b, gr.Chatbot))
    assert chat.render_markdown is False and chat.sanitize_html is True


def test_ask_on_an_empty_index_points_to_the_upload_tab(tmp_path: Path) -> None:
    """The real API on an empty home: the chat says what to do instead of failing."""
    last = list(handlers.ask("q?", [], handlers.ChatOptions(), Settings(home=tmp_path / "e")))[-1]
    assert "nothing is indexed" in last[0][-1]["content"]
    assert "Add articles" in last[0][-1]["content"]


# --- what a keystroke and a streamed fragment cost (speed: bench/ui_latency.py) --------------
def test_article_listing_rereads_the_catalog_only_when_it_changed(
    fake_settings: Settings, tmp_path: Path
) -> None:
    from assistant.api import sync_articles
    from ui.listing import ArticleListing

    folder = tmp_path / "corpus"
    write(folder / "a.txt", "Otters return\n\nOtters were seen in the river.")
    write(folder / "b.txt", "Harbour reopens\n\nThe harbour reopened on Monday.")
    listing = ArticleListing(fake_settings)
    assert listing.table("") == [] and listing.reloads == 0  # nothing indexed yet
    sync_articles([str(folder)], settings=fake_settings, progress=lambda *a: None)
    assert [r[0] for r in listing.table("")] == ["Otters return", "Harbour reopens"]
    for query in ("o", "ot", "otter", "otter a", "harbour"):
        listing.table(query)
    assert [r[0] for r in listing.table("otters A.TXT")] == ["Otters return"]
    assert listing.reloads == 1  # keystrokes filter the cached rows
    write(folder / "c.txt", "Ferry late\n\nThe ferry was late again.")
    sync_articles([str(folder)], settings=fake_settings, progress=lambda *a: None)
    assert [r[0] for r in listing.table("ferry")] == ["Ferry late"]
    assert listing.reloads == 2 and listing.snapshot().status.articles == 3
    listing.close()


def test_streamed_fragments_send_only_the_chat(tmp_path: Path, monkeypatch: Any) -> None:
    """While an answer streams, the sources panel, the state and the question box are left
    alone (gr.skip) and earlier turns are not rendered again."""
    import gradio as gr

    import assistant.api as api
    from ui import render
    from ui.app import build_app

    stream, _ = fake_stream(deltas=("a", "b", "c"))
    monkeypatch.setattr(api, "stream_answer", stream)
    demo = build_app(Settings(home=tmp_path / "home", ui_stream_refresh_s=0))
    ids = {b._id for b in demo.blocks.values() if getattr(b, "elem_id", None) == "aa-question"}
    ask = next(f for f in demo.fns.values() if any(t[0] in ids for t in f.targets))
    earlier = [render.Turn("Before?", answer=Answer("Before?", "Old [1].", True, [cite(1)]))]
    render.chat_messages(earlier)  # the finished turn is rendered once
    calls: list[int] = []
    original = render.answer_html
    monkeypatch.setattr(render, "answer_html", lambda *a: calls.append(1) or original(*a))
    updates = list(ask.fn("Now?", earlier, 5, "extractive", [], "", "", ""))
    middle = updates[1:-1]
    assert len(middle) == 3
    assert all(u[1] == gr.skip() and u[2] == gr.skip() and u[3] == gr.skip() for u in middle)
    assert [u[0][-1]["content"].split(" ")[0] for u in middle] == ["a", "ab", "abc"]
    final = updates[-1]
    assert "everything is on the table" in final[1] and len(final[2]) == 2
    assert calls == [1]  # only the new answer was rendered; the earlier one came from cache


def test_streamed_updates_are_paced(tmp_path: Path) -> None:
    """The first words show at once; then at most one update per refresh_s, and the final
    answer always arrives."""
    stream, _ = fake_stream(deltas=tuple(f"w{i} " for i in range(50)))
    settings = Settings(home=tmp_path)
    paced = list(handlers.ask("q", [], handlers.ChatOptions(), settings, stream, refresh_s=60))
    assert len(paced) == 3  # the question, the first words, the final answer
    assert paced[1][0][-1]["content"].startswith("w0")
    assert "Tariffs" in paced[-1][0][-1]["content"]
    every = list(handlers.ask("q", [], handlers.ChatOptions(), settings, stream, refresh_s=0))
    assert len(every) == 52


def test_article_table_is_capped_with_a_count(fake_settings: Settings, tmp_path: Path) -> None:
    from assistant.api import sync_articles
    from ui.app import _table
    from ui.listing import ArticleListing

    for i in range(5):
        write(tmp_path / "c" / f"s{i}.txt", f"Story {i}\n\nText of story number {i} here.")
    sync_articles([str(tmp_path / "c")], settings=fake_settings, progress=lambda *a: None)
    snap = ArticleListing(fake_settings.model_copy(update={"ui_max_rows": 3})).snapshot()
    capped = _table(fake_settings.model_copy(update={"ui_max_rows": 3}), snap, "")
    assert len(capped["value"]["data"]) == 3
    assert capped["label"].startswith("3 of 5 articles shown")
    one = _table(fake_settings, snap, "story 4")
    assert [r[0] for r in one["value"]["data"]] == ["Story 4"] and one["label"] == "1 article"
