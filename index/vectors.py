"""The dense side of the store: one Chroma collection per index generation.

Embedded ``PersistentClient`` under ``home`` by default, ``HttpClient`` when a Chroma server is
configured: the same code path either way. Vectors are supplied by our embedder (the
collection has no embedding function), so one collection only ever holds one model's vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from index.errors import IndexCorruptError, StoreUnavailableError
from index.settings import IndexSettings

_WRITE_BATCH = 1000


def connect(settings: IndexSettings) -> Any:
    """A Chroma client for the settings, with a clear error when the server is down."""
    import chromadb

    chroma_settings = chromadb.Settings(anonymized_telemetry=False)
    try:
        if settings.chroma_host:
            return chromadb.HttpClient(
                host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
            )
        path = settings.home / "chroma"
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    except Exception as exc:
        raise StoreUnavailableError(_unavailable(settings, exc)) from exc


def _unavailable(settings: IndexSettings, exc: Exception) -> str:
    if settings.chroma_host:
        return (
            f"cannot reach the Chroma server at {settings.store_location} ({exc.__class__.__name__}: "
            f"{exc}). Start it (e.g. `chroma run --path DIR --port {settings.chroma_port}`) or unset "
            "ASSISTANT_CHROMA_HOST to use the embedded store."
        )
    return (
        f"cannot open the vector store at {settings.store_location}: {exc}. If it is damaged, "
        "move that folder aside and run `assistant index --rebuild` to rebuild it."
    )


class VectorStore:
    """Chunk vectors with flat metadata for filtering (``published`` as an int yyyymmdd)."""

    def __init__(
        self, settings: IndexSettings, collection: str, *, must_exist: bool = False
    ) -> None:
        self.settings = settings
        self.name = collection
        self.must_exist = must_exist  # the catalog lists chunks: an empty new one would hide it
        self._client = connect(settings)
        self._collection: Any = None

    def _guard(self, action: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if _is_connection_error(exc):
                raise StoreUnavailableError(_unavailable(self.settings, exc)) from exc
            if _is_damage(exc):
                # Chroma's embedded HNSW files are not written atomically: a process killed
                # while persisting them can leave a collection that no read can load again.
                raise IndexCorruptError(
                    f"the vectors of this index (collection {self.name} in "
                    f"{self.settings.store_location}) are damaged and cannot be read ({exc}); a "
                    "process was probably killed while writing them. Run `assistant index`: "
                    "it re-embeds the articles into a fresh index (or `assistant index --rebuild`)."
                ) from exc
            raise

    @property
    def collection(self) -> Any:
        if self._collection is None and self.must_exist:
            from chromadb.errors import NotFoundError

            try:
                self._collection = self._guard(
                    "open", self._client.get_collection, self.name, embedding_function=None
                )
            except NotFoundError as exc:
                where = (
                    "that server (or point ASSISTANT_CHROMA_HOST back at the one that holds it)"
                    if self.settings.chroma_host
                    else "this home"
                )
                raise StoreUnavailableError(
                    f"the vectors of this index (collection {self.name}) are missing from "
                    f"{self.settings.store_location}: the vector store was reset, replaced or "
                    f"is another one. Run `assistant index --rebuild` to re-embed the articles "
                    f"into {where}."
                ) from exc
        if self._collection is None:
            self._collection = self._guard(
                "open",
                self._client.get_or_create_collection,
                self.name,
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )
        return self._collection

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        metadatas: Sequence[dict[str, Any]],
        documents: Sequence[str],
    ) -> None:
        for i in range(0, len(ids), _WRITE_BATCH):
            end = i + _WRITE_BATCH
            self._guard(
                "upsert",
                self.collection.upsert,
                ids=list(ids[i:end]),
                embeddings=[list(v) for v in vectors[i:end]],
                metadatas=list(metadatas[i:end]),
                documents=list(documents[i:end]),
            )

    def delete(self, ids: Sequence[str]) -> None:
        for i in range(0, len(ids), _WRITE_BATCH):
            self._guard("delete", self.collection.delete, ids=list(ids[i : i + _WRITE_BATCH]))

    def all_ids(self) -> set[str]:
        result = self._guard("get", self.collection.get, include=[])
        return set(result["ids"])

    def count(self) -> int:
        return int(self._guard("count", self.collection.count))

    def query(
        self, vector: Sequence[float], k: int, where: dict[str, Any] | None = None
    ) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) of the ``k`` nearest chunks."""
        total = self.count()
        if total == 0:
            return []
        result = self._guard(
            "query",
            self.collection.query,
            query_embeddings=[list(vector)],
            n_results=min(k, total),
            where=where or None,
            include=["distances"],
        )
        return [
            (i, 1.0 - float(d))
            for i, d in zip(result["ids"][0], result["distances"][0], strict=True)
        ]

    def drop(self) -> None:
        try:
            self._client.delete_collection(self.name)
        except Exception as exc:
            if _is_connection_error(exc):
                raise StoreUnavailableError(_unavailable(self.settings, exc)) from exc
        self._collection = None


def drop_collections(settings: IndexSettings, prefix: str, keep: set[str]) -> list[str]:
    """Delete this home's collections other than ``keep`` (left by rebuilds or crashes)."""
    client = connect(settings)
    dropped = []
    for col in client.list_collections():
        name = col if isinstance(col, str) else col.name
        if name.startswith(prefix) and name not in keep:
            client.delete_collection(name)
            dropped.append(name)
    return dropped


def _is_damage(exc: Exception) -> bool:
    """Chroma's own failure to load or apply its files (not a bad request of ours)."""
    from chromadb.errors import InternalError

    return isinstance(exc, InternalError)


def _is_connection_error(exc: Exception) -> bool:
    text = f"{exc.__class__.__name__} {exc}".lower()
    return any(
        word in text
        for word in (
            "connect",
            "connection",
            "timeout",
            "timed out",
            "refused",
            "unreachable",
            "could not connect",
        )
    )
