"""The index: one generation = catalog + Chroma collection + lexical index, under ``home``.

``home/active.json`` names the generation being served. A rebuild fills a new generation and
switches the pointer atomically at the end, so the old index answers until the new one is
whole. Each generation records the embedding model and chunking that built it; opening it
with other settings is an error, never a silent mix of vectors.

Readers hold the generation they answer from (``Index.reading()``): until the last reader is
done it is not closed in this process, and no rebuild (in this process or another) drops its
files or its collection (``index/readers.py`` makes the hold visible to other processes).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from index.catalog import Catalog, StoredChunk
from index.chunking import Chunker
from index.embeddings import TokenizingEmbeddings, load_embedder
from index.errors import (
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    StoreUnavailableError,
)
from index.lexical import LexicalIndex
from index.locking import sync_lock
from index.readers import GenerationGoneError, hold, in_use, unhold
from index.search import NO_FILTER, ChunkFilter
from index.settings import IndexSettings
from index.vectors import VectorStore, drop_collections

log = logging.getLogger(__name__)

ACTIVE_FILE = "active.json"
REBUILD_HINT = "Run `assistant index --rebuild` to rebuild it from the article sources."
_GENERATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


@dataclass(frozen=True)
class IndexStatus:
    articles: int
    chunks: int
    embedding_model: str
    chunking: str
    store: str
    home: str
    generation: str | None
    embedding_backend: str = "?"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(
            f"{path} is unreadable ({exc}); this ASSISTANT_HOME looks corrupted. {REBUILD_HINT}"
        ) from exc
    if not isinstance(data, dict):
        raise IndexCorruptError(
            f"{path} is not an Article Assistant file; run "
            "`assistant index --rebuild` or choose another ASSISTANT_HOME."
        )
    return data


def home_id(settings: IndexSettings) -> str:
    """A short id for this home, so several homes can share one Chroma server."""
    path = settings.home / "home.json"
    try:
        data = _read_json(path)
    except IndexCorruptError:
        data = None  # only names this home's collections; the served one is in its catalog
    if data is None or not isinstance(data.get("id"), str):
        settings.home.mkdir(parents=True, exist_ok=True)
        data = {"id": secrets.token_hex(4), "created": datetime.now(UTC).isoformat()}
        _write_json_atomic(path, data)
    return str(data["id"])


def active_generation(settings: IndexSettings) -> str | None:
    path = settings.home / ACTIVE_FILE
    data = _read_json(path)
    if data is None:
        return None
    generation = data.get("generation")
    if not isinstance(generation, str) or not _GENERATION.fullmatch(generation):
        raise IndexCorruptError(
            f"{path} names no valid index generation ({generation!r}); this ASSISTANT_HOME "
            f"looks corrupted or belongs to another program. {REBUILD_HINT}"
        )
    return generation


def _check_catalog(path: Path) -> None:
    """Refuse a catalog file that is missing, damaged or not ours, without writing to it."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'embedding_model'").fetchone()
        finally:
            db.close()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise StoreUnavailableError(f"cannot read the index catalog {path}: {exc}") from exc
        row = None
    except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed"
        raise IndexCorruptError(
            f"the index catalog {path} is damaged ({exc}). {REBUILD_HINT}"
        ) from exc
    if row is None:
        raise IndexCorruptError(
            f"{path} is not an Article Assistant catalog (it records no embedding model). "
            f"{REBUILD_HINT}"
        )


class Index:
    """Read/write access to one generation; heavy parts (model, Chroma) open lazily."""

    def __init__(self, settings: IndexSettings, generation: str) -> None:
        self.settings = settings
        self.generation = generation
        self.dir = settings.home / "generations" / generation
        self.catalog = Catalog(self.dir / "catalog.sqlite")
        self.lexical = LexicalIndex(self.catalog, self.dir / "lexical.pkl")
        self._vectors: VectorStore | None = None
        self._readers = 0
        self._retired = False
        self._state = threading.Lock()

    # --- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, settings: IndexSettings, *, check: bool = True) -> Index | None:
        """The served generation, or None when nothing was ever indexed in this home."""
        generation = active_generation(settings)
        if generation is None:
            return None
        catalog = settings.home / "generations" / generation / "catalog.sqlite"
        if not catalog.exists():
            raise IndexCorruptError(
                f"{settings.home} points at index generation {generation!r}, which is missing. "
                f"{REBUILD_HINT}"
            )
        _check_catalog(catalog)
        index = cls(settings, generation)
        if check:
            index.check_settings()
        return index

    @classmethod
    def create(cls, settings: IndexSettings) -> Index:
        """A new, empty, not-yet-served generation built with the current settings."""
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        index = cls(settings, f"g{stamp}-{secrets.token_hex(3)}")
        index.catalog.set_meta(
            embedding_model=settings.embedding_model,
            embedding_backend=index.embedder.backend,
            chunking=index.chunker.fingerprint,
            collection=index.collection_name,
            created=datetime.now(UTC).isoformat(),
        )
        return index

    def activate(self) -> None:
        """Serve this generation from now on (atomic pointer switch)."""
        _write_json_atomic(self.settings.home / ACTIVE_FILE, {"generation": self.generation})

    @property
    def collection_name(self) -> str:
        return f"aa-{home_id(self.settings)}-{self.generation}"

    @property
    def built_with_backend(self) -> str:
        # Generations from before backends were recorded were all embedded by torch.
        return self.catalog.get_meta("embedding_backend") or "torch"

    def check_settings(self) -> None:
        built_with = self.catalog.get_meta("embedding_model")
        chunking = self.catalog.get_meta("chunking")
        backend = self.built_with_backend
        wanted = self.embedder.backend
        if (
            built_with != self.settings.embedding_model
            or chunking != self.chunker.fingerprint
            or backend != wanted
        ):
            raise IndexMismatchError(
                f"the index in {self.settings.home} was built with embedding model {built_with!r} "
                f"on {backend!r} and chunking {chunking!r}, but the settings ask for "
                f"{self.settings.embedding_model!r} on {wanted!r} and {self.chunker.fingerprint!r}. "
                "Run `assistant index --rebuild` to re-embed, or set ASSISTANT_EMBEDDING_MODEL / "
                "ASSISTANT_EMBEDDING_BACKEND / ASSISTANT_CHUNK_TOKENS back."
            )

    # --- parts -----------------------------------------------------------------------------
    @property
    def embedder(self) -> TokenizingEmbeddings:
        return load_embedder(self.settings)

    @property
    def chunker(self) -> Chunker:
        return Chunker(self.embedder, self.settings.chunk_tokens)

    @property
    def vectors(self) -> VectorStore:
        if self._vectors is None:
            name = self.catalog.get_meta("collection") or self.collection_name
            self._vectors = VectorStore(
                self.settings, name, must_exist=self.catalog.counts()[1] > 0
            )
        return self._vectors

    def status(self) -> IndexStatus:
        articles, chunks = self.catalog.counts()
        return IndexStatus(
            articles=articles,
            chunks=chunks,
            embedding_model=self.catalog.get_meta("embedding_model") or "?",
            chunking=self.catalog.get_meta("chunking") or "?",
            store=self.settings.store_location,
            home=str(self.settings.home),
            generation=self.generation,
            embedding_backend=self.built_with_backend,
        )

    # --- the readers' interface (index.search.ChunkSearch) ----------------------------------
    def search_dense(
        self, text: str, k: int, where: ChunkFilter = NO_FILTER
    ) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the ``k`` nearest chunks passing ``where``.

        An ``as_of`` that no committed article is dated after excludes nothing, so it is not
        sent to Chroma: a metadata filter makes Chroma check every chunk (0.7 s a question at
        108k chunks against 25 ms unfiltered), and every question carries as_of = today. An
        article committed meanwhile is still filtered by ``fetch``, which checks the catalog."""
        if where.as_of and not self.catalog.any_published_after(where.as_of):
            where = replace(where, as_of=None)
        return self.vectors.query(self.embedder.embed_query(text), k, where=where.where())

    def search_lexical(self, text: str, k: int) -> list[tuple[str, float]]:
        """(chunk id, lexical score) of the ``k`` best chunks by word match."""
        return self.lexical.search(text, k)

    def fetch(self, chunk_ids: list[str], where: ChunkFilter = NO_FILTER) -> dict[str, StoredChunk]:
        """The committed chunks among ``chunk_ids`` that pass ``where``; vectors of an article
        whose sync died are not in the catalog, so they never reach a reader."""
        found = self.catalog.chunks(list(dict.fromkeys(chunk_ids)))
        if where.is_empty:
            return found
        return {i: c for i, c in found.items() if where.keeps(c)}

    def close(self) -> None:
        self.catalog.close()

    # --- readers ---------------------------------------------------------------------------
    @contextmanager
    def reading(self) -> Iterator[Index]:
        """Hold this generation while one reader (a question, a status) uses it."""
        self.acquire()
        try:
            yield self
        finally:
            self.release()

    def acquire(self) -> None:
        """One more reader. Raises ``GenerationGoneError`` when a rebuild already removed this
        generation (the reader opened it just before the switch): open the served one again."""
        with self._state:
            if self._retired:
                raise GenerationGoneError(self.generation)
            self._readers += 1
        try:
            hold(self.dir)
        except BaseException:
            with self._state:
                self._readers -= 1
            raise

    def release(self) -> None:
        """One reader less. The last reader of a generation that is no longer served closes it
        here and removes its files and vectors, unless another process still reads it."""
        with self._state:
            self._readers -= 1
            close = self._retired and self._readers == 0
        if close:
            self.close()
        if unhold(self.dir) and self._replaced():
            collect_unused(self.settings)

    def _replaced(self) -> bool:
        try:
            return active_generation(self.settings) != self.generation
        except IndexCorruptError:
            return False  # not this reader's to judge; the next sync reports it

    def retire(self) -> None:
        """Serve no new readers; close once the current ones are done (now, if there are none)."""
        with self._state:
            self._retired = True
            close = self._readers == 0
        if close:
            self.close()

    def drop(self) -> None:
        """Delete this generation entirely (vectors and files)."""
        self.vectors.drop()
        self.catalog.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def collect_garbage(settings: IndexSettings) -> None:
    """Remove generations (and their collections) that are not served and that no reader
    holds: leftovers of a rebuild that was interrupted or superseded. Held ones are removed by
    their last reader, or by a later sync. The caller holds the sync lock."""
    keep = active_generation(settings)
    kept = {keep} if keep else set()
    root = settings.home / "generations"
    if root.exists():
        for path in root.iterdir():
            if path.name in kept:
                continue
            if in_use(path):
                kept.add(path.name)
                continue
            shutil.rmtree(path, ignore_errors=True)
    prefix = f"aa-{home_id(settings)}-"
    drop_collections(settings, prefix, {f"{prefix}{name}" for name in kept})


def collect_unused(settings: IndexSettings) -> None:
    """``collect_garbage`` when no sync runs (a sync collects at its end anyway); best effort:
    this runs when a reader finishes, and a failure here must not fail its answer."""
    try:
        with sync_lock(settings.home, collector=True):
            collect_garbage(settings)
    except IndexBusyError:
        return  # the running sync collects at its end
    except Exception as exc:
        log.warning("could not remove replaced index generations yet (%s); the next sync will", exc)


def empty_status(settings: IndexSettings) -> IndexStatus:
    return IndexStatus(
        0, 0, settings.embedding_model, "-", settings.store_location, str(settings.home), None
    )
