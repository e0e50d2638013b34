"""The index: one generation = catalog + Chroma collection + lexical index, under ``home``.

``home/active.json`` names the generation being served. A rebuild fills a new generation and
switches the pointer atomically at the end, so the old index answers until the new one is
whole. Each generation records the embedding model and chunking that built it; opening it
with other settings is an error, never a silent mix of vectors.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.errors import IndexMismatchError, StoreUnavailableError
from assistant.settings import Settings
from index.catalog import Catalog
from index.chunking import Chunker
from index.embeddings import TokenizingEmbeddings, load_embedder
from index.lexical import LexicalIndex
from index.vectors import IndexCorruptError, VectorStore, drop_collections

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


def home_id(settings: Settings) -> str:
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


def active_generation(settings: Settings) -> str | None:
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

    def __init__(self, settings: Settings, generation: str) -> None:
        self.settings = settings
        self.generation = generation
        self.dir = settings.home / "generations" / generation
        self.catalog = Catalog(self.dir / "catalog.sqlite")
        self.lexical = LexicalIndex(self.catalog, self.dir / "lexical.pkl")
        self._vectors: VectorStore | None = None

    # --- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, settings: Settings, *, check: bool = True) -> Index | None:
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
    def create(cls, settings: Settings) -> Index:
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

    def close(self) -> None:
        self.catalog.close()

    def drop(self) -> None:
        """Delete this generation entirely (vectors and files)."""
        self.vectors.drop()
        self.catalog.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def collect_garbage(settings: Settings) -> None:
    """Remove generations (and their collections) that are not served: leftovers of a rebuild
    that was interrupted or superseded."""
    keep = active_generation(settings)
    root = settings.home / "generations"
    if root.exists():
        for path in root.iterdir():
            if path.name != keep:
                shutil.rmtree(path, ignore_errors=True)
    prefix = f"aa-{home_id(settings)}-"
    drop_collections(settings, prefix, {f"{prefix}{keep}"} if keep else set())


def empty_status(settings: Settings) -> IndexStatus:
    return IndexStatus(
        0, 0, settings.embedding_model, "-", settings.store_location, str(settings.home), None
    )
