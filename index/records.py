"""The records that flow through indexing: Article -> Chunk, and the SyncReport of a sync."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any


def text_id(text: str) -> str:
    """Content address of an article's text: identical text in two files is one article."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Article:
    """A loaded article; ``origin`` is the path or URL (``path#n`` for multi-article files)."""

    title: str
    text: str
    origin: str
    source: str | None = None
    published: date | None = None
    url: str | None = None
    author: str | None = None
    duplicate_of: str | None = None  # origin of an indexed article with the same text

    @property
    def id(self) -> str:
        """Content address of everything indexed (text and metadata): any change is a new id,
        so an update never overwrites the chunks of the version still being served. A copy of
        another article's text also hashes its own origin, so both files keep distinct ids."""
        parts = [
            self.title,
            self.source or "",
            str(self.published or ""),
            self.url or "",
            self.author or "",
            self.text,
        ]
        if self.duplicate_of:
            parts.append(f"copy at {self.origin}")
        return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]

    @property
    def text_sha(self) -> str:
        """Identical text in two files is a duplicate article, whatever its metadata."""
        return text_id(self.text)


@dataclass(frozen=True)
class Chunk:
    """A span of an article's text: ``article.text[start:end] == text``."""

    article_id: str
    n: int
    text: str
    start: int
    end: int

    @property
    def id(self) -> str:
        return f"{self.article_id}:{self.n}"


@dataclass
class FailedSource:
    path: str
    error: str


@dataclass
class SyncReport:
    """What a sync did; ``to_dict()`` is the CLI's ``--json`` contract."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: list[FailedSource] = field(default_factory=list)
    duplicates: list[FailedSource] = field(default_factory=list)
    chunks_embedded: int = 0
    rebuilt: bool = False
    rebuilt_because: str | None = None  # why a sync not asked to rebuild did (damaged vectors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "failed": [{"path": f.path, "error": f.error} for f in self.failed],
            "duplicates": [{"path": d.path, "error": d.error} for d in self.duplicates],
            "chunks_embedded": self.chunks_embedded,
            "rebuilt": self.rebuilt,
            "rebuilt_because": self.rebuilt_because,
        }
