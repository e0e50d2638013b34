"""What readers may ask of the store: the :class:`ChunkSearch` interface the retriever uses, and
the :class:`ChunkFilter` every search applies the same way.

Dense search pushes it into Chroma's ``where`` (dates are stored as ``YYYYMMDD`` integers so
Chroma can compare them); lexical hits and fetched chunks are checked against the catalog with
:meth:`ChunkFilter.keeps`, so both sides of a hybrid search honour the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from index.catalog import StoredChunk


def date_key(day: date) -> int:
    """The integer form of a date that the chunk metadata stores (``20251024``)."""
    return int(day.strftime("%Y%m%d"))


@dataclass(frozen=True)
class ChunkFilter:
    """Restrict a search to some sources and a publication window (both ends inclusive).

    An article without a known date is outside any window: a date filter asks for articles
    known to fall in it. ``as_of`` is different: it drops only articles known to be published
    after it, so undated articles stay (nothing shows they are from the future; the store
    keeps their date as 0, which Chroma's ``$lte`` lets through).
    """

    sources: tuple[str, ...] = ()
    published_after: date | None = None
    published_before: date | None = None
    as_of: date | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.sources or self.published_after or self.published_before or self.as_of)

    def where(self) -> dict[str, Any] | None:
        """The filter as a Chroma ``where`` clause (None when nothing is filtered)."""
        clauses: list[dict[str, Any]] = []
        if self.sources:
            clauses.append({"source": {"$in": list(self.sources)}})
        if self.published_after:
            clauses.append({"published": {"$gte": date_key(self.published_after)}})
        if self.published_before:
            clauses.append({"published": {"$lte": date_key(self.published_before)}})
        if self.as_of:
            clauses.append({"published": {"$lte": date_key(self.as_of)}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def keeps(self, chunk: StoredChunk) -> bool:
        """True when the chunk's article passes the filter (checked against the catalog)."""
        article = chunk.article
        if self.sources and (article.source or "") not in self.sources:
            return False
        if self.as_of and article.published and date.fromisoformat(article.published) > self.as_of:
            return False
        if self.published_after is None and self.published_before is None:
            return True
        if not article.published:
            return False
        published = date.fromisoformat(article.published)
        if self.published_after and published < self.published_after:
            return False
        return not (self.published_before and published > self.published_before)


NO_FILTER = ChunkFilter()


class ChunkSearch(Protocol):
    """The store as the retriever sees it: two rankings and a lookup, nothing more.

    ``index.store.Index`` implements it over embedded or server Chroma alike; a contract test
    (tests/test_store_contract.py) runs the same checks against both.
    """

    def search_dense(
        self, text: str, k: int, where: ChunkFilter = NO_FILTER
    ) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the ``k`` nearest committed-or-not chunks."""
        ...

    def search_lexical(self, text: str, k: int) -> list[tuple[str, float]]:
        """(chunk id, lexical score) of the ``k`` best chunks by word match, best first."""
        ...

    def fetch(self, chunk_ids: list[str], where: ChunkFilter = NO_FILTER) -> dict[str, StoredChunk]:
        """The committed chunks among ``chunk_ids`` that pass ``where``, with their articles."""
        ...
