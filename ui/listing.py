"""The "Indexed articles" tab's data: read from the catalog only when the catalog has changed.

The search box filters on every keystroke. Re-opening the index and reading every article from
SQLite for each one cost tens of milliseconds per key at a few thousand articles, and it grows
with the corpus; the article set only changes when a sync commits, which bumps the catalog's
revision. So the rows (sorted, with their lower-cased search text) are kept per
(generation, revision) and a keystroke only filters them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.settings import Settings
from index.store import Index, active_generation
from ui.handlers import article_rows, source_choices


@dataclass(frozen=True)
class Snapshot:
    """What the tab shows for one catalog revision."""

    status: Any = None
    rows: list[list[Any]] = field(default_factory=list)
    haystacks: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def filter_rows(rows: Sequence[list[Any]], haystacks: Sequence[str], query: str) -> list[list[Any]]:
    """The rows whose search text holds every word of ``query`` (order kept)."""
    words = (query or "").lower().split()
    if not words:
        return list(rows)
    return [row for row, hay in zip(rows, haystacks, strict=True) if all(w in hay for w in words)]


class ArticleListing:
    """Article rows of the served index, cached by catalog revision; safe across threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._index: Index | None = None
        self._key: tuple[str, int] | None = None
        self._snapshot = Snapshot()
        self.reloads = 0  # how often the catalog was read (tests check the cache with it)

    def snapshot(self) -> Snapshot:
        """The current rows; re-read only when the generation or catalog revision moved."""
        with self._lock:
            generation = active_generation(self.settings)
            if generation is None:
                self._close()
                self._key, self._snapshot = None, Snapshot()
                return self._snapshot
            if self._index is None or self._index.generation != generation:
                self._close()
                self._index = Index.open(self.settings, check=False)
            if self._index is None:
                return Snapshot()
            key = (generation, self._index.catalog.revision)
            if key != self._key:
                self._snapshot = self._read(self._index)
                self._key = key
                self.reloads += 1
            return self._snapshot

    def table(self, query: str = "") -> list[list[Any]]:
        snap = self.snapshot()
        return filter_rows(snap.rows, snap.haystacks, query)

    @staticmethod
    def _read(index: Index) -> Snapshot:
        articles = index.catalog.articles()
        rows = article_rows(articles)
        return Snapshot(
            status=index.status(),
            rows=rows,
            haystacks=[" ".join(str(v) for v in row).lower() for row in rows],
            sources=source_choices(articles),
        )

    def _close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    def close(self) -> None:
        with self._lock:
            self._close()
