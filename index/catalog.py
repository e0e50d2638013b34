"""The catalog: which articles are committed, their text, metadata and chunk offsets (SQLite).

The catalog is the source of truth for what the index holds. An article becomes visible in
one SQLite transaction, after all its vectors are stored, so a crash at any point leaves only
whole articles visible; vectors without a committed article are ignored and collected later.
The same transaction writes the article's lexical terms (``index.lexical``, FTS5 tables in this
database), so the lexical index is never ahead of or behind the catalog.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from index import lexical
from index.records import Article, Chunk

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    origin TEXT PRIMARY KEY, root TEXT NOT NULL, mtime_ns INTEGER, size INTEGER, digest TEXT
);
CREATE TABLE IF NOT EXISTS articles (
    article_id TEXT PRIMARY KEY, source_file TEXT NOT NULL, origin TEXT NOT NULL,
    text_sha TEXT NOT NULL, title TEXT NOT NULL, source TEXT, published TEXT, url TEXT,
    author TEXT, text TEXT NOT NULL, n_chunks INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS articles_file ON articles(source_file);
CREATE INDEX IF NOT EXISTS articles_text ON articles(text_sha);
CREATE INDEX IF NOT EXISTS articles_published ON articles(published);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, article_id TEXT NOT NULL, n INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
"""


@dataclass(frozen=True)
class StoredArticle:
    article_id: str
    source_file: str
    origin: str
    title: str
    source: str | None
    published: str | None
    url: str | None
    author: str | None
    n_chunks: int


@dataclass(frozen=True)
class StoredChunk:
    """A committed chunk with what a citation needs."""

    chunk_id: str
    article: StoredArticle
    text: str
    start: int
    end: int
    article_text: str


@dataclass(frozen=True)
class SourceState:
    origin: str
    root: str
    mtime_ns: int | None
    size: int | None
    digest: str | None


_ARTICLE_COLS = "article_id, source_file, origin, title, source, published, url, author, n_chunks"


class Catalog:
    """Thread-safe access to one generation's SQLite catalog."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.RLock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.executescript(lexical.SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, params: Iterable[object] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def read(self, sql: str, params: Iterable[object] = ()) -> list[tuple]:
        """One read on the catalog's connection (the lexical index queries its own tables)."""
        return self._rows(sql, params)

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """Several reads that must see one committed state (one WAL read transaction): a
        lexical query reads term counts, totals and postings, and an article committed between
        those reads must not make them disagree. Writers in other processes are not blocked."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")

    # --- meta -----------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, **values: str) -> None:
        with self.transaction() as db:
            for key, value in values.items():
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def revision(self) -> int:
        """Bumped by every commit that changes the article set."""
        return int(self.get_meta("revision") or 0)

    @staticmethod
    def _bump(db: sqlite3.Connection) -> None:
        db.execute(
            "INSERT INTO meta VALUES ('revision', '1') ON CONFLICT(key) "
            "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    # --- writes (each one transaction: the unit of change is one article) -----------------
    def commit_article(
        self, article: Article, chunks: list[Chunk], source_file: str, replaces: str | None = None
    ) -> None:
        with self.transaction() as db:
            if replaces:
                self._delete(db, replaces)
            self._delete(db, article.id)  # re-committing an article replaces it whole
            db.execute(
                "INSERT OR REPLACE INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    article.id,
                    source_file,
                    article.origin,
                    article.text_sha,
                    article.title,
                    article.source,
                    _iso(article.published),
                    article.url,
                    article.author,
                    article.text,
                    len(chunks),
                ),
            )
            db.executemany(
                "INSERT OR REPLACE INTO chunks VALUES (?,?,?,?,?)",
                [(c.id, c.article_id, c.n, c.start, c.end) for c in chunks],
            )
            # The terms go in with the article, in this transaction: never one without the other.
            lexical.index_chunks(db, article.id, article.title, [(c.id, c.text) for c in chunks])
            self._bump(db)

    def remove_article(self, article_id: str) -> None:
        with self.transaction() as db:
            self._delete(db, article_id)
            self._bump(db)

    @staticmethod
    def _delete(db: sqlite3.Connection, article_id: str) -> None:
        lexical.unindex_article(db, article_id)
        db.execute("DELETE FROM chunks WHERE article_id = ?", (article_id,))
        db.execute("DELETE FROM articles WHERE article_id = ?", (article_id,))

    def set_source(self, state: SourceState) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO sources VALUES (?,?,?,?,?)",
                (state.origin, state.root, state.mtime_ns, state.size, state.digest),
            )

    def forget_source(self, origin: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM sources WHERE origin = ?", (origin,))

    # --- reads ----------------------------------------------------------------------------
    def sources(self) -> dict[str, SourceState]:
        rows = self._rows("SELECT origin, root, mtime_ns, size, digest FROM sources")
        return {r[0]: SourceState(*r) for r in rows}

    def articles(self, source_file: str | None = None) -> list[StoredArticle]:
        if source_file is None:
            rows = self._rows(f"SELECT {_ARTICLE_COLS} FROM articles ORDER BY title")
        else:
            rows = self._rows(
                f"SELECT {_ARTICLE_COLS} FROM articles WHERE source_file = ?", (source_file,)
            )
        return [StoredArticle(*r) for r in rows]

    def article_by_text(self, text_sha: str, *, outside: str = "") -> StoredArticle | None:
        """An article with this text stored from another source file than ``outside``."""
        rows = self._rows(
            f"SELECT {_ARTICLE_COLS} FROM articles WHERE text_sha = ? AND source_file != ?"
            " ORDER BY origin LIMIT 1",
            (text_sha, outside),
        )
        return StoredArticle(*rows[0]) if rows else None

    def any_published_after(self, day: date) -> bool:
        """Whether a committed article is dated after ``day`` (an index lookup)."""
        return bool(
            self._rows("SELECT 1 FROM articles WHERE published > ? LIMIT 1", (day.isoformat(),))
        )

    def article_text(self, article_id: str) -> str | None:
        rows = self._rows("SELECT text FROM articles WHERE article_id = ?", (article_id,))
        return rows[0][0] if rows else None

    def counts(self) -> tuple[int, int]:
        rows = self._rows("SELECT (SELECT COUNT(*) FROM articles), (SELECT COUNT(*) FROM chunks)")
        return int(rows[0][0]), int(rows[0][1])

    def chunk_ids(self) -> set[str]:
        return {r[0] for r in self._rows("SELECT chunk_id FROM chunks")}

    def chunks(self, chunk_ids: list[str]) -> dict[str, StoredChunk]:
        """The committed chunks among ``chunk_ids`` (uncommitted ids are simply absent)."""
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self._rows(
            f'SELECT c.chunk_id, c.start, c."end", a.text, '
            f"{', '.join('a.' + col.strip() for col in _ARTICLE_COLS.split(','))} "
            f"FROM chunks c JOIN articles a ON a.article_id = c.article_id "
            f"WHERE c.chunk_id IN ({marks})",
            chunk_ids,
        )
        out = {}
        for chunk_id, start, end, text, *article in rows:
            out[chunk_id] = StoredChunk(
                chunk_id, StoredArticle(*article), text[start:end], start, end, text
            )
        return out

    def all_chunks(self) -> Iterator[tuple[str, str, str]]:
        """(chunk_id, title, chunk text) of every committed chunk, in a stable order."""
        rows = self._rows(
            'SELECT c.chunk_id, a.title, substr(a.text, c.start + 1, c."end" - c.start) '
            "FROM chunks c JOIN articles a ON a.article_id = c.article_id ORDER BY c.chunk_id"
        )
        yield from rows


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None
