"""Chroma failing: a passing error is retried, a lasting one reported, and only positive
evidence of damaged vectors leads to a rebuild (which the user is told about). Never does a
server hiccup cost a re-embed or delete the served collection.

Errors are injected into the real Chroma client (a collection method made to raise), embedded
and against a real `chroma run` server, and the server is stopped and restarted mid-sync."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chromadb.api.models.Collection import Collection
from chromadb.errors import InternalError, InvalidArgumentError

from assistant.api import answer
from assistant.cli import main as cli_main
from assistant.errors import StoreUnavailableError
from assistant.settings import Settings
from index import vectors
from index.store import Index, active_generation
from index.sync import sync
from index.vectors import IndexCorruptError, VectorStore, connect

from .conftest import ChromaServer
from .reliability_support import forget_open_stores

ARTICLES = {
    "rover.txt": "Lunar rover lands\n\nThe lunar rover landed near the Shackleton crater on "
    "Monday. It sent back 40 photos of the rim.\n",
    "rates.txt": "Rates on hold\n\nThe central bank kept interest rates at 4.5% on Thursday. "
    "Economists had expected a cut.\n",
}
QUESTION = "Where did the lunar rover land?"


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(vectors, "_RETRY_DELAYS", (0.01, 0.02, 0.05), raising=False)
    forget_open_stores()
    yield
    forget_open_stores()


@pytest.fixture(params=["embedded", "server"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A small indexed home (fake embedder), Chroma embedded or a real `chroma run` server."""
    extra: dict[str, Any] = {}
    if request.param == "server":
        server = request.getfixturevalue("chroma_server")
        extra = {"chroma_host": "127.0.0.1", "chroma_port": server.port}
    settings = Settings(home=tmp_path / "home", embedding_model="fake", **extra)
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in ARTICLES.items():
        (docs / name).write_text(text, encoding="utf-8")
    assert sync(settings, [str(docs)], show_bar=False).added == 2
    return settings


def failing(
    monkeypatch: pytest.MonkeyPatch, method: str, make: Callable[[], Exception], times: int
) -> list[int]:
    """Make ``Collection.<method>`` raise ``make()`` on its next ``times`` calls (every call
    when ``times`` < 0), then behave. Returns a one-item list counting the failures."""
    real = getattr(Collection, method)
    failed = [0]

    def wrapper(self: Collection, *args: Any, **kwargs: Any) -> Any:
        if times < 0 or failed[0] < times:
            failed[0] += 1
            raise make()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Collection, method, wrapper)
    return failed


def served_collection(settings: Settings) -> tuple[str, str]:
    """(served generation, its collection name), read without the vectors."""
    index = Index.open(settings, check=False)
    assert index is not None
    try:
        return index.generation, index.catalog.get_meta("collection") or index.collection_name
    finally:
        index.close()


def collection_names(settings: Settings) -> list[str]:
    return [c if isinstance(c, str) else c.name for c in connect(settings).list_collections()]


def assert_untouched(settings: Settings, before: tuple[str, str]) -> None:
    """Same generation served, its collection still there with its vectors, no new one."""
    generation, name = before
    assert active_generation(settings) == generation
    mine = [n for n in collection_names(settings) if n.startswith(name.rsplit("-", 2)[0])]
    assert mine == [name], mine
    assert connect(settings).get_collection(name, embedding_function=None).count() > 0
    assert [p.name for p in (settings.home / "generations").iterdir()] == [generation]


def assert_rover(settings: Settings) -> None:
    result = answer(QUESTION, settings=settings)
    assert result.answered and any("Shackleton" in c.quote for c in result.citations)


# --- a passing InternalError is retried ------------------------------------------------------
def test_transient_internal_error_is_retried_and_costs_no_rebuild(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = served_collection(settings)
    with monkeypatch.context() as m:
        failed = failing(m, "count", lambda: InternalError("Error executing plan: busy"), 2)
        report = sync(settings, None, show_bar=False)
    assert failed[0] == 2  # it did fail, twice, and the third try went through
    assert not report.rebuilt and report.rebuilt_because is None and report.unchanged == 2
    assert_untouched(settings, before)
    with monkeypatch.context() as m:
        failed = failing(m, "query", lambda: InternalError("Error executing plan"), 2)
        assert_rover(settings)
    assert failed[0] == 2


# --- a lasting one is reported: nothing rebuilt, nothing deleted -----------------------------
@pytest.mark.parametrize("scope", ["one request", "the whole store"])
def test_lasting_internal_error_is_reported_not_rebuilt(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, scope: str
) -> None:
    """Fails every time: when only our request fails (the store and a plain read of our
    collection work) or when the store fails everything, it is not evidence of damaged
    vectors. The sync stops with a message saying so; the served index is untouched."""
    before = served_collection(settings)
    methods = ["count"] if scope == "one request" else ["count", "add", "get", "query", "upsert"]
    with monkeypatch.context() as m:
        for method in methods:
            failing(m, method, lambda: InternalError("Error executing plan"), -1)
        with pytest.raises(StoreUnavailableError) as info:
            sync(settings, None, show_bar=False)
        assert not isinstance(info.value, IndexCorruptError)
        assert "not known to be damaged" in str(info.value)
        assert "nothing was removed" in str(info.value)
        forget_open_stores()
        with pytest.raises(StoreUnavailableError) as info:
            answer(QUESTION, settings=settings)
        assert not isinstance(info.value, IndexCorruptError)
    forget_open_stores()
    assert_untouched(settings, before)
    assert_rover(settings)


# --- connection errors are known by type -----------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: BrokenPipeError(32, "Broken pipe"),
        lambda: httpx.RemoteProtocolError("peer closed the stream early"),
        lambda: httpx.ReadError(""),
    ],
    ids=["BrokenPipeError", "httpx.RemoteProtocolError", "httpx.ReadError"],
)
def test_connection_errors_are_recognised_by_type(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, make: Callable[[], Exception]
) -> None:
    """No 'connect', 'refused' or 'timeout' in these messages: the type says it all. Retried,
    then reported as the store being unreachable; nothing rebuilt."""
    before = served_collection(settings)
    with monkeypatch.context() as m:
        failing(m, "count", make, 1)
        assert not sync(settings, None, show_bar=False).rebuilt  # passing: retried
    with monkeypatch.context() as m:
        failing(m, "count", make, -1)
        with pytest.raises(StoreUnavailableError) as info:
            sync(settings, None, show_bar=False)
        assert not isinstance(info.value, IndexCorruptError)
    assert_untouched(settings, before)


def test_words_in_a_message_do_not_make_a_connection_error(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad request of ours that happens to mention a connection stays what it is."""
    store = VectorStore(settings, served_collection(settings)[1], must_exist=True)
    with monkeypatch.context() as m:
        failing(m, "count", lambda: InvalidArgumentError("connection refused timeout"), -1)
        with pytest.raises(InvalidArgumentError):
            store.count()


# --- damaged vectors: positive evidence, rebuilt, and the user is told -----------------------
def test_damaged_vectors_are_rebuilt_and_the_user_is_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, embedding_model="fake")
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in ARTICLES.items():
        (docs / name).write_text(text, encoding="utf-8")
    sync(settings, [str(docs)], show_bar=False)
    forget_open_stores()
    segments = [p for p in (home / "chroma").iterdir() if p.is_dir()]
    assert segments
    for segment in segments:
        (segment / "index_metadata.pickle").write_bytes(b"garbage")
    common = ["--home", str(home), "--embedding-model", "fake", "--json"]
    assert cli_main(["index", *common]) == 0
    out = capsys.readouterr()
    report = json.loads(out.out.strip().splitlines()[-1])
    assert report["rebuilt"] and report["added"] == 2
    assert "damaged" in report["rebuilt_because"]
    assert "warning:" in out.err and "re-embedded" in out.err, out.err
    forget_open_stores()
    assert_rover(settings)


# --- the real server stops mid-use -----------------------------------------------------------
@pytest.mark.integration
def test_server_restarting_mid_sync_is_waited_for(
    stoppable_chroma_server: ChromaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server goes down while a sync writes and is back a moment later: the retries carry
    the sync over the gap; nothing is rebuilt and every article is there."""
    server = stoppable_chroma_server
    settings = Settings(
        home=tmp_path / "home",
        embedding_model="fake",
        chroma_host="127.0.0.1",
        chroma_port=server.port,
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "rover.txt").write_text(ARTICLES["rover.txt"], encoding="utf-8")
    sync(settings, [str(docs)], show_bar=False)
    before = served_collection(settings)
    (docs / "rates.txt").write_text(ARTICLES["rates.txt"], encoding="utf-8")
    # Long enough pauses for `chroma run` to come back (it takes a few seconds to start).
    monkeypatch.setattr(vectors, "_RETRY_DELAYS", (0.5, 1.0, 2.0, 4.0, 8.0, 16.0), raising=False)
    real_upsert = Collection.upsert
    restarted: list[threading.Thread] = []

    def stop_then_upsert(self: Collection, *args: Any, **kwargs: Any) -> Any:
        if not restarted:
            server.stop()  # down now; back in a moment
            restarted.append(threading.Thread(target=server.start))
            restarted[0].start()
        return real_upsert(self, *args, **kwargs)

    monkeypatch.setattr(Collection, "upsert", stop_then_upsert)
    report = sync(settings, [str(docs)], show_bar=False)
    restarted[0].join(60)
    assert report.added == 1 and not report.rebuilt and not report.failed
    assert_untouched(settings, before)
    forget_open_stores()
    assert_rover(settings)


@pytest.mark.integration
def test_server_down_is_reported_and_costs_no_rebuild(
    stoppable_chroma_server: ChromaServer, tmp_path: Path
) -> None:
    """Down for good: the answer and the sync say the server cannot be reached; after it is
    back, the same generation serves and a sync is not a rebuild."""
    server = stoppable_chroma_server
    settings = Settings(
        home=tmp_path / "home",
        embedding_model="fake",
        chroma_host="127.0.0.1",
        chroma_port=server.port,
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in ARTICLES.items():
        (docs / name).write_text(text, encoding="utf-8")
    sync(settings, [str(docs)], show_bar=False)
    before = served_collection(settings)
    assert_rover(settings)
    server.stop()
    with pytest.raises(StoreUnavailableError, match="cannot reach the Chroma server"):
        answer(QUESTION, settings=settings)
    with pytest.raises(StoreUnavailableError, match="cannot reach the Chroma server"):
        sync(settings, None, show_bar=False)
    server.start()
    report = sync(settings, None, show_bar=False)
    assert not report.rebuilt and report.unchanged == 2
    assert_untouched(settings, before)
    assert_rover(settings)


def test_collections_get_the_configured_ef_and_a_sync_stores_a_new_one(
    settings: Settings, tmp_path: Path
) -> None:
    """Chroma's default ef_search (100) misses exact neighbours; new collections get the
    setting, and a sync stores a changed value on an existing collection (embedded and server;
    Chroma applies it to searches in processes that load the collection afterwards)."""
    assert _ef_search(settings) == 200
    wider = settings.model_copy(update={"hnsw_ef_search": 320})
    sync(wider, [str(tmp_path / "docs")])
    forget_open_stores()
    assert _ef_search(wider) == 320
    assert answer(QUESTION, settings=wider).answered


def _ef_search(settings: Settings) -> int:
    index = Index.open(settings)
    assert index is not None
    try:
        return int(index.vectors.collection.configuration["hnsw"]["ef_search"])
    finally:
        index.close()
        forget_open_stores()


def test_a_refused_ef_change_costs_a_warning_not_the_sync(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """A store that refuses the configuration change (an older or managed Chroma) must not
    stop `assistant index`: the articles are synced and the user is told."""

    def refuse(self: Collection, *args: Any, **kwargs: Any) -> None:
        raise InvalidArgumentError("configuration changes are not allowed here")

    monkeypatch.setattr(Collection, "modify", refuse)
    (tmp_path / "docs" / "more.txt").write_text(
        "Port strike ends\n\nDock workers returned on Friday after a 12-day strike.\n",
        encoding="utf-8",
    )
    wider = settings.model_copy(update={"hnsw_ef_search": 320})
    report = sync(wider, [str(tmp_path / "docs")])
    assert report.added == 1 and not report.failed
    assert "could not set ef_search 320" in caplog.text
    forget_open_stores()
    assert _ef_search(wider) == 200
