"""Citations for quoted sentences: the quote, its offsets, and the passage shown around it."""

from __future__ import annotations

from langchain_core.documents import Document

from assistant.types import Citation


def _article_slice(doc: Document, start: int, end: int) -> str:
    text, offset = _window(doc)
    return text[start - offset : end - offset]


def _window(doc: Document) -> tuple[str, int]:
    """The article text the retriever handed over (context, chunk, context) and its offset."""
    before = doc.metadata.get("context_before", "")
    text = before + doc.page_content + doc.metadata.get("context_after", "")
    return text, doc.metadata["start"] - len(before)


def _passage(doc: Document, start: int, end: int) -> tuple[str, int]:
    """What a reader sees around a quote: its chunk, widened to the whole paragraph the quote
    sits in (as far as the retrieved context reaches), so a quote is never shown bare."""
    text, offset = _window(doc)
    quote_a, quote_b = start - offset, end - offset
    chunk_a, chunk_b = doc.metadata["start"] - offset, doc.metadata["end"] - offset
    a, b = min(quote_a, chunk_a), max(quote_b, chunk_b)
    line_start = text.rfind("\n", 0, quote_a)
    if line_start >= 0 or offset == 0:  # else the paragraph began before the context we have
        a = min(a, line_start + 1)
    line_end = text.find("\n", quote_b)
    if line_end >= 0:
        b = max(b, line_end)
    return text[a:b], a + offset


def _citation(n: int, doc: Document, quote: str, start: int, end: int, score: float) -> Citation:
    """An extractive citation: the quoted sentence inside its paragraph, with its rating."""
    passage, passage_start = _passage(doc, start, end)
    return passage_citation(n, doc, quote, start, end, passage, passage_start, support=score)


def passage_citation(
    n: int,
    doc: Document,
    quote: str,
    start: int,
    end: int,
    passage: str,
    passage_start: int,
    *,
    support: float | None = None,
) -> Citation:
    """The one way a retrieved chunk becomes a ``Citation`` (extractive and LLM answers)."""
    m = doc.metadata
    return Citation(
        n=n,
        article_id=m["article_id"],
        title=m["title"],
        source=m.get("source"),
        published=m.get("published"),
        url=m.get("url"),
        quote=quote,
        chunk_id=m["chunk_id"],
        start=start,
        end=end,
        score=round(float(m.get("score") or 0.0), 4),
        passage=passage,
        passage_start=passage_start,
        support=None if support is None else round(float(support), 4),
    )
