"""Our pipeline as `assistant eval` and `assistant bench` ask it: one question in, a timed
``Response`` out (retrieval ranks for recall/MRR, the answer's text and cited passages)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from assistant.evaluation.metrics import DEPTH, Passage, Response
from assistant.settings import Settings

if TYPE_CHECKING:
    from langchain_core.documents import Document

    from assistant.types import Citation


def forget_cached_queries(embeddings: Embeddings) -> None:
    """Drop our embedder's caches of question and sentence vectors before a timed call.

    Our embedder remembers recent question vectors (retrieval and the answerer share one) and
    the answerer's sentence vectors, so a question asked twice costs no embedding the second
    time; a user's new question always does, so every timing must start without them (and the
    tutorial must not reuse ours).
    """
    clear = getattr(embeddings, "clear_query_cache", None)
    if callable(clear):
        clear()


def ours_asker(settings: Settings, k: int | None) -> Callable[[str], Response]:
    """Retrieval alone (top 10, for ranks) then the full ``answer()``, each timed."""
    from assistant.api import answer, open_index
    from assistant.retrieval import HybridRetriever

    index = open_index(settings)
    by_id = {a.article_id: a for a in index.catalog.articles()}
    texts: dict[str, str | None] = {}
    retriever = HybridRetriever(index=index, k=DEPTH)

    def passage(text: str, article_id: str, start: int) -> Passage:
        if article_id not in texts:
            texts[article_id] = index.catalog.article_text(article_id)
        origin = by_id[article_id].origin if article_id in by_id else ""
        return Passage(text, origin, start, start + len(text), texts[article_id])

    def cited_passage(c: Citation, chunks: dict[str, Document]) -> Passage:
        """The cited chunk and its quote: not the wider paragraph the UI shows around it."""
        doc = chunks.get(c.chunk_id)
        if doc is None:
            return passage(c.passage, c.article_id, c.passage_start)
        start, end = min(c.start, doc.metadata["start"]), max(c.end, doc.metadata["end"])
        if c.article_id not in texts:
            texts[c.article_id] = index.catalog.article_text(c.article_id)
        return passage((texts[c.article_id] or "")[start:end], c.article_id, start)

    def ask(question: str) -> Response:
        forget_cached_queries(index.embedder)
        started = time.perf_counter()
        docs = retriever.invoke(question)
        retrieval_ms = (time.perf_counter() - started) * 1000
        forget_cached_queries(index.embedder)  # answer() pays for the question's vector too
        started = time.perf_counter()
        result = answer(question, settings=settings, k=k)
        latency_ms = (time.perf_counter() - started) * 1000
        ranked = [
            passage(d.page_content, d.metadata["article_id"], d.metadata["start"]) for d in docs
        ]
        cited = [
            cited_passage(c, {d.metadata["chunk_id"]: d for d in docs}) for c in result.citations
        ]
        return Response(ranked, result.text, result.answered, cited, latency_ms, retrieval_ms)

    return ask
