"""HybridRetriever: dense (Chroma) + lexical (BM25) search over the same chunks, fused by RRF.

Only committed chunks are returned (vectors of an article whose sync died are ignored), with
the metadata a citation needs. Optional filters on source and publication date.

Time (issue 13): ``as_of`` drops every article published after it (undated ones stay: nothing
shows they are from the future). A date in the question ("this week") becomes a window that the
``date_window`` mode either prefers (its own hybrid ranking joins the fusion, so in-window
passages rank up without hiding everything else) or filters.

Age (Onyx's decay ``max(1 / (1 + weight * age_years), 0.5)``, fused scores times the factor):
- every question: a question asked on a date mostly concerns the news just before it, so
  ``age_prior`` decays articles older than ``age_grace_days`` (age counted past the grace).
  Within the grace there is no preference: a later report of a story is not a better source
  than the first one.
- a question about the current state ("who is", "latest") also takes ``recency``, from age 0.
An undated article gets the floor, so it never wins a tie; with every article older than the
floor's age (an archive read today) all factors are equal and the ranking is unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.dates import DateWindow, asks_current, resolve
from assistant.fusion import reciprocal_rank_fusion
from index.catalog import StoredChunk
from index.search import ChunkFilter, ChunkSearch

CONTEXT_CHARS = 400  # article text kept around a chunk: pronouns, and the quote's paragraph
DECAY_FLOOR = 0.5  # Onyx's floor: an old (or undated) article keeps half its score


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
    as_of: date | None = None
    recency: float = 0.0
    age_prior: float = 0.0
    age_grace_days: int = 0
    date_window: Literal["prefer", "filter", "off"] = "off"

    @property
    def filter(self) -> ChunkFilter:
        """The source and date restrictions as the store's one filter."""
        return ChunkFilter(
            sources=tuple(self.sources or ()),
            published_after=self.published_after,
            published_before=self.published_before,
            as_of=self.as_of,
        )

    def window_for(self, query: str) -> DateWindow | None:
        """The date window the query names, resolved against the as-of date (None: none, or
        windows are off). The chain shows the same window with the answer."""
        if self.date_window == "off":
            return None
        return resolve(query, self.as_of or date.today())

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        store: ChunkSearch = self.index
        where = self.filter
        rankings, stored, dense_score, lexical_score = _hybrid(store, query, where, self.fetch_k)
        window = self.window_for(query)
        if window is not None:
            inside = replace(
                where,
                published_after=max(window.start, where.published_after or window.start),
                published_before=min(window.end, where.published_before or window.end),
            )
            w_rankings, w_stored, w_dense, w_lexical = _hybrid(store, query, inside, self.fetch_k)
            if self.date_window == "filter" and w_stored:
                rankings, stored = w_rankings, w_stored
            else:  # prefer; or filter with nothing in the window: say so, show the rest
                rankings = rankings + w_rankings
                stored |= w_stored
            dense_score |= w_dense
            lexical_score |= w_lexical
        fused = reciprocal_rank_fusion(rankings)
        as_of = self.as_of or date.today()
        if self.age_prior > 0:
            fused = _decayed(fused, stored, as_of, self.age_prior, self.age_grace_days)
        if self.recency > 0 and asks_current(query):
            fused = _decayed(fused, stored, as_of, self.recency)
        return [
            _to_document(stored[i], score, dense_score.get(i), lexical_score.get(i))
            for i, score in _distinct(fused, stored)[: self.k]
        ]


def _hybrid(
    store: ChunkSearch, query: str, where: ChunkFilter, fetch_k: int
) -> tuple[list[list[str]], dict[str, StoredChunk], dict[str, float], dict[str, float]]:
    """Dense and lexical rankings of the committed chunks passing ``where`` (both sides apply
    the same filter: Chroma's ``where`` for dense, the catalog check for both on fetch)."""
    dense = store.search_dense(query, fetch_k, where)
    lexical = store.search_lexical(query, fetch_k * 2)
    stored = store.fetch([i for i, _ in dense] + [i for i, _ in lexical], where)
    dense_ids = [i for i, _ in dense if i in stored]
    lexical_ids = [i for i, _ in lexical if i in stored][:fetch_k]
    return [dense_ids, lexical_ids], stored, dict(dense), dict(lexical)


def _decayed(
    fused: list[tuple[str, float]],
    stored: dict[str, StoredChunk],
    as_of: date,
    weight: float,
    grace_days: int = 0,
) -> list[tuple[str, float]]:
    """Fused scores times the age decay (age counted past ``grace_days``), re-sorted; undated
    articles take the floor and lose every tie to a dated one."""
    out = []
    for chunk_id, score in fused:
        published = stored[chunk_id].article.published
        if published:
            age_days = (as_of - date.fromisoformat(published)).days - grace_days
            age_years = max(age_days, 0) / 365.25
            factor = max(1.0 / (1.0 + weight * age_years), DECAY_FLOOR)
        else:
            factor = DECAY_FLOOR
        out.append((chunk_id, score * factor, not published))
    out.sort(key=lambda item: (-item[1], item[2], item[0]))
    return [(chunk_id, score) for chunk_id, score, _ in out]


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
