"""HybridRetriever: dense (Chroma) + lexical (BM25) search over the same chunks, fused by RRF.

Only committed chunks are returned (vectors of an article whose sync died are ignored), with
the metadata a citation needs. Optional filters on source and publication date.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.fusion import reciprocal_rank_fusion
from index.catalog import StoredChunk
from index.search import ChunkFilter, ChunkSearch

CONTEXT_CHARS = 400  # article text kept around a chunk: pronouns, and the quote's paragraph


class HybridRetriever(BaseRetriever):
    """Retrieve the ``k`` best chunks for a question from any ``index.search.ChunkSearch``
    (an ``index.store.Index`` in production)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any
    k: int = 5
    fetch_k: int = 30
    sources: list[str] | None = None
    published_after: date | None = None
    published_before: date | None = None

    @property
    def filter(self) -> ChunkFilter:
        """The source and date restrictions as the store's one filter."""
        return ChunkFilter(
            sources=tuple(self.sources or ()),
            published_after=self.published_after,
            published_before=self.published_before,
        )

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        store: ChunkSearch = self.index
        where = self.filter
        dense = store.search_dense(query, self.fetch_k, where)
        lexical = store.search_lexical(query, self.fetch_k * 2)
        stored = store.fetch([i for i, _ in dense] + [i for i, _ in lexical], where)
        dense_ids = [i for i, _ in dense if i in stored]
        lexical_ids = [i for i, _ in lexical if i in stored][: self.fetch_k]
        fused = reciprocal_rank_fusion([dense_ids, lexical_ids])
        dense_score = dict(dense)
        lexical_score = dict(lexical)
        return [
            _to_document(stored[i], score, dense_score.get(i), lexical_score.get(i))
            for i, score in _distinct(fused, stored)[: self.k]
        ]


def _distinct(
    fused: list[tuple[str, float]], stored: dict[str, StoredChunk]
) -> list[tuple[str, float]]:
    """Keep the best-ranked of identical passages: a story filed twice (the BBC corpus has
    about a hundred such copies) must not fill two of the k slots with the same words."""
    seen: set[str] = set()
    kept = []
    for chunk_id, score in fused:
        key = " ".join(stored[chunk_id].text.split())
        if key not in seen:
            seen.add(key)
            kept.append((chunk_id, score))
    return kept


def _to_document(
    chunk: StoredChunk, score: float, dense: float | None, lexical: float | None
) -> Document:
    art = chunk.article
    before = chunk.article_text[max(0, chunk.start - CONTEXT_CHARS) : chunk.start]
    after = chunk.article_text[chunk.end : chunk.end + CONTEXT_CHARS]
    return Document(
        page_content=chunk.text,
        id=chunk.chunk_id,
        metadata={
            "chunk_id": chunk.chunk_id,
            "article_id": art.article_id,
            "title": art.title,
            "source": art.source,
            "published": art.published,
            "url": art.url,
            "origin": art.origin,
            "start": chunk.start,
            "end": chunk.end,
            "score": score,
            "dense_score": dense,
            "lexical_score": lexical,
            "context_before": before,
            "context_after": after,
        },
    )
