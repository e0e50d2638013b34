"""UI handlers and HTML rendering without a browser: citations, escaping, uploads, listings."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from assistant.errors import AssistantError, ConfigError
from assistant.settings import Settings
from assistant.types import NO_ANSWER, Answer, Citation
from index.records import FailedSource, SyncReport
from ui import handlers, render
from ui.render import Turn

EVIL = ('<script>alert(1)</script><img src="https://tracker.example/p.gif?q=secret">'
        '![leak](https://tracker.example/x.png) <a href="javascript:alert(2)">x</a> '
        'https://tracker.example/auto "quoted" & more')
OUR_TAGS = {"a", "br", "em", "strong", "mark", "div", "article", "header", "span", "section",
            "h4", "p", "code", "ul", "li", "dl", "dt", "dd"}


class TagCollector(HTMLParser):
    """Every start tag with its attributes, to check that data never becomes markup."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(markup: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = TagCollector()
    parser.feed(markup)
    return parser.tags


def assert_inert(markup: str) -> None:
    """Only our own tags; every link is an in-page citation link or a safe article link."""
    for tag, attrs in tags_of(markup):
        assert tag in OUR_TAGS, f"unexpected <{tag}> in {markup!r}"
        assert not any(name.startswith("on") or name in ("src", "style") for name in attrs)
        if tag == "a":
            href = attrs.get("href") or ""
            assert href.startswith("#aa-cite-") or (
                href.startswith(("http://", "https://"))
                and attrs.get("rel") == "noopener noreferrer"), href
            assert "tracker.example" not in href


def cite(n: int = 1, **over: Any) -> Citation:
    passage = "Before the quote. Bessent said everything is on the table. After it."
    quote = "Bessent said everything is on the table."
    fields: dict[str, Any] = dict(
        n=n, article_id="a1", title="Trade talks", source="Reuters", published="2025-10-24",
        url="https://news.example/trade", quote=quote, chunk_id="a1:0", start=118,
        end=118 + len(quote), score=0.5, passage=passage, passage_start=100)
    fields.update(over)
    return Citation(**fields)


# --- rendering -------------------------------------------------------------------------------
def test_answer_markers_become_citation_links() -> None:
    answer = Answer("q", "He threatened tariffs [1]. Also this [2]. Not this [9].", True,
                    [cite(1), cite(2)])
    markup = render.answer_html(answer, turn=3)
    links = [a for t, a in tags_of(markup) if t == "a"]
    assert [a["href"] for a in links] == ["#aa-cite-3-1", "#aa-cite-3-2"]
    assert "[9]" in markup  # a marker without a citation stays plain text
    assert_inert(markup)


def test_untrusted_text_is_escaped_everywhere() -> None:
    c = cite(1, title=EVIL, source=EVIL, quote=EVIL, passage=f"x {EVIL} y", start=102,
             passage_start=100, url="javascript:alert(3)")
    answer = Answer(EVIL, f"{EVIL} [1]", True, [c])
    turns = [Turn(EVIL, answer=answer)]
    for markup in (render.answer_html(answer, 0), render.citation_card(c, 0),
                   render.sources_html(turns), render.question_html(EVIL),
                   render.streaming_html(EVIL), render.error_html(EVIL),
                   *(m["content"] for m in render.chat_messages(turns))):
        assert_inert(markup)
        assert "<script" not in markup and "<img" not in markup
    card = render.citation_card(c, 0)
    assert "javascript:alert(3)" in card  # shown as text...
    assert 'href="javascript' not in card  # ...never as a link


def test_safe_url() -> None:
    assert render.safe_url("https://news.example/a?b=1") == "https://news.example/a?b=1"
    for bad in ("javascript:alert(1)", "data:text/html,x", "http://", "https://a b.com",
                "ftp://x.org/a", "//evil.example/x", None, ""):
        assert render.safe_url(bad) is None, bad
    card = render.citation_card(cite(1, url='https://x.example/"onmouseover="a'), 0)
    assert_inert(card)


def test_passage_highlights_the_quote_at_its_offset() -> None:
    markup = render.passage_html(cite())
    assert markup == ("Before the quote. <mark>Bessent said everything is on the table.</mark>"
                      " After it.")
    # Offsets that do not match fall back to finding the quote in the passage.
    assert "<mark>Bessent said" in render.passage_html(cite(start=0, passage_start=0))
    # A quote missing from the passage is still shown, marked, above the passage.
    odd = render.passage_html(cite(quote="Something else."))
    assert odd.startswith("<mark>Something else.</mark><br>Before the quote.")


def test_sources_panel_shows_latest_turn_and_keeps_older_ones() -> None:
    first = Turn("q1", answer=Answer("q1", "a [1]", True, [cite(1)]))
    declined = Turn("q2", answer=Answer("q2", NO_ANSWER, False, [cite(1), cite(2)]))
    markup = render.sources_html([first, declined])
    assert 'id="aa-cite-0-1"' in markup and 'id="aa-cite-1-2"' in markup
    assert 'class="aa-turn aa-hidden" data-turn="0"' in markup
    assert 'class="aa-turn" data-turn="1"' in markup
    assert "No answer found; closest passages" in markup
    assert "closest passages are listed" in render.answer_html(declined.answer, 1)  # type: ignore[arg-type]
    assert "data-finished='2'" in markup
    assert "data-finished='1'" in render.sources_html([first, Turn("q3")])
    assert "data-finished='1'" in render.sources_html([Turn("q4", error="bad")])
    assert "Ask a question" in render.sources_html([])


def test_status_and_summary_html() -> None:
    status = SimpleNamespace(articles=3, chunks=12, embedding_model="bundled:<b>", chunking="c",
                             store="/x")
    assert "12" in render.status_html(status) and "&lt;b&gt;" in render.status_html(status)
    report = SyncReport(added=1, failed=[FailedSource("/home/u/uploads/bin.txt", "binary <x>")])
    summary = render.sync_summary_html(report, [("a.exe", "unsupported file type '.exe'")])
    assert "1 added" in summary and "bin.txt" in summary and "/home/u" not in summary
    assert "binary &lt;x&gt;" in summary and "a.exe" in summary
    assert_inert(summary)


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
    options = handlers.ChatOptions(k=5, mode=handlers.MODE_EXTRACTIVE, sources=["Reuters"],
                                   published_after="2025-10-01", published_before="2025-10-31")
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
        "a.md", 2 * 1024 * 1024, 1)
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
    write(upload_dir / "bad.txt", "an earlier good version")
    good = write(tmp_path / "gradio" / "good.md", "# Title\n\nBody text.")
    bad = write(tmp_path / "gradio" / "bad.txt", b"\x89PNG\x00\x01")
    exe = write(tmp_path / "gradio" / "tool.exe", b"MZ")
    seen: dict[str, Any] = {}

    def sync(sources: list[str], **kwargs: Any) -> SyncReport:
        seen.update(sources=sources, **kwargs)
        assert (upload_dir / "bad.txt").read_bytes() == b"\x89PNG\x00\x01"
        kwargs["progress"](1, 2, "embedding")
        return SyncReport(added=1, failed=[FailedSource(str(upload_dir / "bad.txt"),
                                                        "binary file, not text")])

    progress: list[tuple[int, int, str]] = []
    html = handlers.add_articles([good, bad, exe], " https://news.example/a ", settings,
                                 lambda *a: progress.append(a), sync)
    assert seen["sources"] == [str(upload_dir), "https://news.example/a"]
    assert progress == [(1, 2, "embedding")]
    assert (upload_dir / "good.md").exists()
    assert (upload_dir / "bad.txt").read_text() == "an earlier good version"  # restored
    assert not list(upload_dir.glob(".*"))  # no backup left behind
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
    assert not (settings.home / "uploads" / "new.txt").exists()


def test_add_articles_with_real_sync(fake_settings: Settings, tmp_path: Path) -> None:
    """Real loaders and index (fake embedder): a text article is added, a binary refused."""
    from assistant.api import list_articles

    good = write(tmp_path / "in" / "otters.txt",
                 "Otters return to the river\n\nOtters were seen in the Wandle on Tuesday.")
    binary = write(tmp_path / "in" / "photo.txt", bytes(range(256)) * 8)
    html = handlers.add_articles([good, binary], "", fake_settings)
    assert "1 added" in html and "photo.txt" in html, html
    titles = [a.title for a in list_articles(fake_settings)]
    assert titles == ["Otters return to the river"]
    assert not (fake_settings.home / "uploads" / "photo.txt").exists()
    again = handlers.add_articles([good], "", fake_settings)
    assert "0 added" in again and "1 unchanged" in again and "photo.txt" not in again


# --- listing, auth, app ----------------------------------------------------------------------
def test_article_rows_and_sources() -> None:
    arts = [SimpleNamespace(title="Otters return", source="BBC", published="2025-01-02",
                            n_chunks=2, origin="/x/uploads/otters.txt"),
            SimpleNamespace(title="Trade talks", source=None, published=None, n_chunks=8,
                            origin="https://news.example/t")]
    assert handlers.article_rows(arts, "") == [
        ["Otters return", "BBC", "2025-01-02", 2, "otters.txt"],
        ["Trade talks", "", "", 8, "https://news.example/t"]]
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
