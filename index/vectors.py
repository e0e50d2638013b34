"""The dense side of the store: one Chroma collection per index generation.

Embedded ``PersistentClient`` under ``home`` by default, ``HttpClient`` when a Chroma server is
configured: the same code path either way. Vectors are supplied by our embedder (the
collection has no embedding function), so one collection only ever holds one model's vectors.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from index.errors import IndexCorruptError, StoreUnavailableError
from index.settings import IndexSettings

log = logging.getLogger(__name__)

_WRITE_BATCH = 1000
# Pauses before each retry of a failed Chroma call (seconds): about 2 s in all, long enough for
# a busy store or a restarting server, short enough for someone waiting on an answer.
_RETRY_DELAYS: tuple[float, ...] = (0.2, 0.5, 1.2)


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


#: In ``home``, while a process writes the embedded store: its pid and the collection it writes.
#: Left behind only by a writer that died mid-way (a kill, a power cut), whose HNSW files may be
#: torn. Chroma's Rust core can then crash the reading process outright (a segmentation fault
#: in ``count``, seen in the 200-kill soak), where an exception would have said how to heal.
WRITE_MARK = "vectors-writing.json"
# Exit codes of the probe child: 0 read fine, 3 Chroma could not read it; a signal (negative
# code) is a crash while reading it. Anything else says nothing about the collection.
_PROBE_DAMAGED = 3
_PROBE = "import sys; from index.vectors import probe_child; sys.exit(probe_child(*sys.argv[1:3]))"


def _read_back(collection: Any) -> None:
    """Read a collection as a question does: one stored vector, and a search with it."""
    sample = collection.get(limit=1, include=["embeddings"])
    if sample["ids"]:
        vector = [float(x) for x in sample["embeddings"][0]]
        collection.query(query_embeddings=[vector], n_results=1, include=[])


def probe_child(path: str, name: str) -> int:
    """The child process of ``VectorStore._check_unclean_exit``: load collection ``name`` of
    the embedded store at ``path`` and read it back; the exit code says how that went."""
    import chromadb
    from chromadb.errors import InternalError, NotFoundError

    client = chromadb.PersistentClient(
        path=path, settings=chromadb.Settings(anonymized_telemetry=False)
    )
    try:
        collection = client.get_collection(name, embedding_function=None)
        collection.count()  # where the torn collection of the soak crashed its reader
        _read_back(collection)
    except NotFoundError:
        return 0  # killed before it made the collection: nothing of it to tear
    except InternalError as exc:
        print(repr(exc))
        return _PROBE_DAMAGED
    return 0


@contextmanager
def writing(settings: IndexSettings, collection: str) -> Iterator[None]:
    """Mark the embedded store as being written to ``collection`` for the block: the mark
    outlives only a writer that dies mid-way, and tells the next process to look before it
    loads that collection (``VectorStore._check_unclean_exit``)."""
    if settings.chroma_host:
        yield  # a server's files are the server's: it recovers them itself
        return
    mark = settings.home / WRITE_MARK
    mark.write_text(json.dumps({"pid": os.getpid(), "collection": collection}), "utf-8")
    try:
        yield
    finally:
        mark.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, owned by someone else
    return True


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
        """Run one Chroma call. A failure that may pass (the server unreachable, Chroma's
        InternalError) is retried a few times with growing pauses; if it persists it is
        reported, and called damage only on positive evidence (see ``_unreadable``)."""
        from chromadb.errors import InternalError

        for delay in (*_RETRY_DELAYS, None):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if not (_is_connection_error(exc) or isinstance(exc, InternalError)):
                    raise
                if delay is not None:
                    log.info("Chroma %s failed (%r); retrying in %.1f s", action, exc, delay)
                    time.sleep(delay)
                    continue
                if _is_connection_error(exc):
                    raise StoreUnavailableError(_unavailable(self.settings, exc)) from exc
                if self._unreadable():
                    # Chroma's embedded HNSW files are not written atomically: a process killed
                    # while persisting them can leave a collection that no read can load again.
                    raise IndexCorruptError(
                        f"the vectors of this index (collection {self.name} in "
                        f"{self.settings.store_location}) are damaged and cannot be read ({exc}); "
                        "a process was probably killed while writing them. Run `assistant "
                        "index`: it re-embeds the articles into a fresh index (or `assistant "
                        "index --rebuild`)."
                    ) from exc
                raise StoreUnavailableError(
                    f"the vector store at {self.settings.store_location} failed to {action} "
                    f"({exc.__class__.__name__}: {exc}), {len(_RETRY_DELAYS) + 1} times in a "
                    "row. The index is not known to be damaged and nothing was removed; try "
                    "again, and if it keeps failing, check the Chroma server's log or disk."
                ) from exc
        raise AssertionError("unreachable")  # the loop returns or raises

    def _unreadable(self) -> bool:
        """Positive evidence that this collection's data is damaged, as opposed to a store
        that is failing: Chroma 1.x reports both as the same InternalError (its Rust core
        maps every internal failure to one error code), so its type cannot tell them apart.
        The evidence is behaviour: the same store creates, writes and searches a scratch
        collection of its own, yet a plain read of ours (no filter, nothing of the request
        that failed) still fails with InternalError."""
        from chromadb.errors import InternalError

        try:
            probe = self._client.create_collection(
                f"aa-probe-{secrets.token_hex(6)}",
                configuration=self._configuration(),
                embedding_function=None,
            )
            try:
                probe.add(ids=["probe"], embeddings=[[1.0, 0.0, 0.0]])
                probe.query(query_embeddings=[[1.0, 0.0, 0.0]], n_results=1, include=[])
            finally:
                self._client.delete_collection(probe.name)
        except Exception:
            return False  # the store itself fails: this says nothing about our vectors
        try:
            _read_back(self._client.get_collection(self.name, embedding_function=None))
        except InternalError:
            return True
        except Exception:
            return False
        return False

    def _check_unclean_exit(self) -> None:
        """Before this process first loads the collection: if the last writer of it died while
        writing (its mark is left and its pid is gone), load it once in a child process. A
        torn collection then crashes or fails the child, not this process, and the user is
        told how to heal; a readable one clears the mark."""
        mark = self.settings.home / WRITE_MARK
        if self.settings.chroma_host or not mark.exists():
            return
        try:
            seen = mark.read_text("utf-8")
            written = json.loads(seen)
            pid, collection = int(written["pid"]), str(written["collection"])
        except (OSError, ValueError, KeyError, TypeError):
            return  # being written or removed right now: a live writer's
        if collection != self.name or pid == os.getpid() or _alive(pid):
            return  # another collection, or a writer still at work
        try:
            child = subprocess.run(
                [sys.executable, "-c", _PROBE, str(self.settings.home / "chroma"), self.name],
                capture_output=True,
                text=True,
                timeout=300,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("could not check collection %s after an unclean exit: %s", self.name, exc)
            return
        if child.returncode == 0:
            with suppress(OSError):
                if mark.read_text("utf-8") == seen:  # not a new writer's mark
                    mark.unlink()
            return
        if child.returncode < 0 or child.returncode == _PROBE_DAMAGED:
            how = (
                f"reading them crashed a process (signal {-child.returncode})"
                if child.returncode < 0
                else f"they cannot be read ({child.stdout.strip() or child.stderr.strip()[-300:]})"
            )
            raise IndexCorruptError(
                f"the vectors of this index (collection {self.name} in "
                f"{self.settings.store_location}) are damaged: {how}; the process that wrote "
                f"them (pid {pid}) was killed mid-write. Run `assistant index`: it re-embeds the "
                "articles into a fresh index (or `assistant index --rebuild`)."
            )
        log.warning(
            "could not check collection %s after an unclean exit (exit %s): %s",
            self.name,
            child.returncode,
            child.stderr.strip()[-300:],
        )

    @property
    def collection(self) -> Any:
        if self._collection is None:
            self._check_unclean_exit()
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
                configuration=self._configuration(),
                embedding_function=None,
            )
        return self._collection

    def _configuration(self) -> dict[str, Any]:
        """How this project's collections are made (the probe's too): cosine space, the
        configured search width."""
        return {"hnsw": {"space": "cosine", "ef_search": self.settings.hnsw_ef_search}}

    def ensure_search_ef(self) -> None:
        """Store the configured HNSW ``ef_search`` on the collection (one made before the
        setting, or with another value, keeps its own until a writer calls this). Chroma has
        no per-query value. A collection already loaded keeps searching with the value it was
        loaded with: the stored one is used by processes started afterwards (embedded) or
        after the Chroma server restarts. A server that refuses the change costs a warning,
        never the sync."""
        want = self.settings.hnsw_ef_search
        with warnings.catch_warnings():  # Chroma warns of its own legacy config fields
            warnings.simplefilter("ignore", DeprecationWarning)
            config = getattr(self.collection, "configuration", None) or {}
        hnsw = config.get("hnsw") if isinstance(config, dict) else None
        if not hnsw:
            log.info("collection %s has no HNSW configuration; ef_search not set", self.name)
            return
        have = hnsw.get("ef_search")
        if have is None or have == want:
            return
        try:
            self._guard(
                "configure", self.collection.modify, configuration={"hnsw": {"ef_search": want}}
            )
        except Exception as exc:  # a tuning knob: report it, keep syncing
            log.warning(
                "could not set ef_search %d on collection %s (%s); it keeps %s",
                want,
                self.name,
                exc,
                have,
            )
            return
        log.info(
            "ef_search of collection %s set from %s to %d: running readers and a Chroma server "
            "use it once restarted",
            self.name,
            have,
            want,
        )

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
        request: dict[str, Any] = {
            "query_embeddings": [list(vector)],
            "n_results": min(k, total),
            "where": where or None,
            "include": ["distances"],
        }
        result = None
        if not self.settings.chroma_host:
            from chromadb.errors import InternalError

            try:
                result = self.collection.query(**request)
            except InternalError as exc:
                # Another process (`assistant index` beside a running UI) wrote this embedded
                # store: this process's in-memory HNSW graph is stale and names ids its records
                # lack ("Error finding id"). Read the segments from disk again, then retry.
                log.info("embedded Chroma query failed (%r); reloading it from disk", exc)
                self._reload_embedded()
        if result is None:
            result = self._guard("query", self.collection.query, **request)
        return [
            (i, 1.0 - float(d))
            for i, d in zip(result["ids"][0], result["distances"][0], strict=True)
        ]

    def _reload_embedded(self) -> None:
        """Forget this process's cached Chroma system for the embedded path, so the next
        client loads the collection's segments as another process left them on disk."""
        from chromadb.api.client import SharedSystemClient

        SharedSystemClient._identifier_to_system.pop(str(self.settings.home / "chroma"), None)
        self._client = connect(self.settings)
        self._collection = None

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


def _is_connection_error(exc: BaseException) -> bool:
    """The store could not be reached, told by exception type (the client's own message
    wording is not a contract): OS-level connection failures and timeouts, and httpx's
    transport errors, which Chroma's HTTP client raises or wraps (its ``ValueError("Could not
    connect ...")`` carries the ``httpx.ConnectError`` as its context)."""
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError]
    with suppress(ImportError):
        import httpx

        kinds.append(httpx.TransportError)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, tuple(kinds)):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
