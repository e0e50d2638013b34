"""Store faults: the Chroma server going away and coming back, and a corrupted or foreign
ASSISTANT_HOME, which must give a message saying how to rebuild, never a silent empty index."""

from __future__ import annotations

import json
import pickle
import shutil
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistant.api import answer, index_status, list_articles
from assistant.cli import main as cli_main
from assistant.errors import AssistantError, StoreUnavailableError
from assistant.settings import Settings
from index.store import Index
from index.sync import sync

from .conftest import ChromaServer
from .reliability_support import forget_open_stores

ARTICLES = {
    "rover.txt": "Lunar rover lands\n\nThe lunar rover landed near the Shackleton crater on "
    "Monday. It sent back 40 photos of the rim.\n",
    "rates.txt": "Rates on hold\n\nThe central bank kept interest rates at 4.5% on Thursday. "
    "Economists had expected a cut.\n",
    "floods.txt": "Rain floods the valley\n\nHeavy rain flooded the Aire valley overnight. "
    "Farmers lost 300 sheep.\n",
}
QUESTION = "Where did the lunar rover land?"


def write_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in ARTICLES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def assert_rover_answer(settings: Settings) -> None:
    result = answer(QUESTION, settings=settings)
    assert result.answered, result.text
    assert any("Shackleton" in c.quote for c in result.citations)


# --- the Chroma server stops and comes back -------------------------------------------------
@pytest.fixture
def own_chroma(tmp_path: Path) -> Iterator[ChromaServer]:
    if not Path(sys.executable).with_name("chroma").exists():
        pytest.skip("the `chroma` executable is not installed in this environment")
    server = ChromaServer(tmp_path / "chroma-data")  # its own, so it can stop and restart
    yield server
    server.stop()


@pytest.mark.integration
def test_chroma_server_stops_and_comes_back(own_chroma: ChromaServer, tmp_path: Path) -> None:
    """Down: a clear StoreUnavailableError (the process lives on, the UI shows the message).
    Back on the same path and port: the same process answers again, no restart needed."""
    from ui.handlers import ChatOptions, ask

    settings = Settings(
        home=tmp_path / "home",
        embedding_model="fake",
        chroma_host="127.0.0.1",
        chroma_port=own_chroma.port,
    )
    docs = write_docs(tmp_path / "docs")
    sync(settings, [str(docs)], show_bar=False)
    assert_rover_answer(settings)

    own_chroma.stop()
    for _ in range(3):  # again and again: still one clear message, never a hang or crash
        with pytest.raises(StoreUnavailableError) as info:
            answer(QUESTION, settings=settings)
        message = str(info.value)
        assert "cannot reach the Chroma server" in message
        assert f"127.0.0.1:{own_chroma.port}" in message and "chroma run" in message
    # The UI's handler turns it into a chat message instead of raising.
    *_, (messages, _, turns) = list(ask(QUESTION, [], ChatOptions(), settings))
    assert turns[-1].answer is None and "cannot reach the Chroma server" in (turns[-1].error or "")
    assert "Chroma server" in messages[-1]["content"]
    # A sync while it is down fails the same clear way and changes nothing.
    (docs / "extra.txt").write_text("Extra story\n\nA new bridge opened in Leeds.\n")
    with pytest.raises(StoreUnavailableError, match="cannot reach the Chroma server"):
        sync(settings, [str(docs)], show_bar=False)

    own_chroma.start()
    assert_rover_answer(settings)  # the same process, the same cached index
    *_, (_, _, turns) = list(ask(QUESTION, [], ChatOptions(), settings))
    assert turns[-1].answer is not None and turns[-1].answer.answered
    report = sync(settings, [str(docs)], show_bar=False)
    assert report.added == 1 and not report.failed
    assert index_status(settings).articles == 4


@pytest.mark.integration
def test_chroma_server_killed_during_a_sync(
    own_chroma: ChromaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server dies while a sync writes: the sync stops with the clear message, the index
    keeps only whole articles, and a re-sync after the server returns completes it."""
    from .reliability_support import Corpus, check_index

    settings = Settings(
        home=tmp_path / "home",
        embedding_model="fake",
        chroma_host="127.0.0.1",
        chroma_port=own_chroma.port,
    )
    corpus = Corpus.create(tmp_path / "articles", 200, seed=5)
    calls = [0]
    from index.vectors import VectorStore

    real_upsert = VectorStore.upsert

    def upsert_then_die(self: VectorStore, *args: object, **kwargs: object) -> None:
        calls[0] += 1
        if calls[0] == 2:  # the second group of vectors: some articles are committed by now
            assert own_chroma.proc is not None
            own_chroma.proc.kill()
            own_chroma.proc.wait(15)
        real_upsert(self, *args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as m:
        m.setattr(VectorStore, "upsert", upsert_then_die)
        with pytest.raises(StoreUnavailableError, match="cannot reach the Chroma server"):
            sync(settings, [str(corpus.folder)], show_bar=False)
    own_chroma.start()
    forget_open_stores()
    partial = check_index(settings, corpus)
    assert 0 < len(partial.origins) < len(corpus.texts)
    report = sync(settings, [str(corpus.folder)], show_bar=False)
    assert not report.failed
    forget_open_stores()
    check_index(settings, corpus, complete=True)


# --- a corrupted or foreign ASSISTANT_HOME --------------------------------------------------
def _generation_dir(home: Path) -> Path:
    return home / "generations" / json.loads((home / "active.json").read_text())["generation"]


def _garbage_active(home: Path) -> None:
    (home / "active.json").write_bytes(b"\x00\xffnot json at all{{")


def _list_active(home: Path) -> None:
    (home / "active.json").write_text("[1, 2, 3]")


def _foreign_active(home: Path) -> None:
    (home / "active.json").write_text(json.dumps({"version": 3, "collections": ["x"]}))


def _escaping_active(home: Path) -> None:
    (home / "active.json").write_text(json.dumps({"generation": "../../.."}))


def _missing_generation(home: Path) -> None:
    shutil.rmtree(_generation_dir(home))


def _junk_catalog(home: Path) -> None:
    (_generation_dir(home) / "catalog.sqlite").write_bytes(b"this is not a database\n" * 200)
    for extra in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (_generation_dir(home) / extra).unlink(missing_ok=True)


def _empty_catalog(home: Path) -> None:
    _junk_catalog(home)
    (_generation_dir(home) / "catalog.sqlite").write_bytes(b"")


def _foreign_catalog(home: Path) -> None:
    path = _generation_dir(home) / "catalog.sqlite"
    _junk_catalog(home)
    path.unlink()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO photos (name) VALUES ('holiday.jpg')")
    db.commit()
    db.close()


def _garbage_home_json(home: Path) -> None:
    (home / "home.json").write_text("{ broken")


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "garbage active.json": _garbage_active,
    "active.json holds a list": _list_active,
    "active.json from another program": _foreign_active,
    "active.json points outside the home": _escaping_active,
    "generation directory missing": _missing_generation,
    "catalog.sqlite replaced by junk": _junk_catalog,
    "catalog.sqlite emptied": _empty_catalog,
    "catalog.sqlite is another program's database": _foreign_catalog,
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corrupted_home_says_how_to_rebuild_and_rebuild_recovers(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, embedding_model="fake")
    docs = write_docs(tmp_path / "docs")
    sync(settings, [str(docs)], show_bar=False)
    assert_rover_answer(settings)
    forget_open_stores()
    CORRUPTIONS[kind](home)
    outside = tmp_path.parent  # what "../../.." would reach: must survive untouched
    before_outside = sorted(p.name for p in outside.iterdir())

    # Python API: an error that says how to rebuild; never an empty answer or empty status.
    for call in (
        lambda: answer(QUESTION, settings=settings),
        lambda: index_status(settings),
        lambda: list_articles(settings),
    ):
        with pytest.raises(AssistantError) as info:
            call()
        assert "assistant index --rebuild" in str(info.value), str(info.value)
    forget_open_stores()

    # CLI: one line on stderr with the remedy, no traceback, a failing exit code.
    common = ["--home", str(home), "--embedding-model", "fake"]
    for argv in (["ask", QUESTION, *common], ["status", *common]):
        code = cli_main(argv)
        err = capsys.readouterr().err
        assert code != 0 and "assistant index --rebuild" in err and "Traceback" not in err, err

    # A plain sync does not paper over it either.
    code = cli_main(["index", str(docs), *common])
    err = capsys.readouterr().err
    assert code != 0 and "--rebuild" in err and "Traceback" not in err, err

    # The remedy works: with the article folder given, and the index is whole again.
    code = cli_main(["index", "--rebuild", str(docs), "--json", *common])
    out = capsys.readouterr()
    assert code == 0, out.err
    report = json.loads(out.out.strip().splitlines()[-1])
    assert report["added"] == 3 and not report["failed"]
    forget_open_stores()
    assert_rover_answer(settings)
    assert index_status(settings).articles == 3
    assert sorted(p.name for p in outside.iterdir()) == before_outside


def test_rebuild_without_paths_recovers_the_sources_when_it_can(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken pointer leaves the generation (and its list of sources) readable: a bare
    `assistant index --rebuild` finds the sources there. When nothing is readable, it says to
    name the folders, and indexes nothing rather than an empty index."""
    home = tmp_path / "home"
    settings = Settings(home=home, embedding_model="fake")
    docs = write_docs(tmp_path / "docs")
    sync(settings, [str(docs)], show_bar=False)
    forget_open_stores()
    _garbage_active(home)
    common = ["--home", str(home), "--embedding-model", "fake"]
    assert cli_main(["index", "--rebuild", "--json", *common]) == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["added"] == 3
    forget_open_stores()
    assert_rover_answer(settings)

    forget_open_stores()
    _missing_generation(home)
    code = cli_main(["index", "--rebuild", *common])
    err = capsys.readouterr().err
    assert code == 2 and "assistant index --rebuild PATH" in err, err
    with pytest.raises(AssistantError, match="assistant index --rebuild"):
        answer(QUESTION, settings=settings)


def test_garbage_home_json_is_replaced_and_nothing_else_changes(tmp_path: Path) -> None:
    """home.json only names this home's collections (the served one is named in its catalog):
    damaged, it is written anew; answers, status and syncs carry on."""
    home = tmp_path / "home"
    settings = Settings(home=home, embedding_model="fake")
    docs = write_docs(tmp_path / "docs")
    sync(settings, [str(docs)], show_bar=False)
    forget_open_stores()
    _garbage_home_json(home)
    assert_rover_answer(settings)
    assert index_status(settings).articles == 3
    (docs / "extra.txt").write_text("Extra story\n\nA new bridge opened in Leeds.\n")
    assert sync(settings, [str(docs)], show_bar=False).added == 1
    assert sync(settings, None, rebuild=True, show_bar=False).added == 4
    assert isinstance(json.loads((home / "home.json").read_text())["id"], str)
    forget_open_stores()
    assert_rover_answer(settings)


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"\x80\x04garbage",
        pickle.dumps({"revision": 1}),  # a pickle of the wrong shape
        pickle.dumps([1, 2, 3]),
        b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00\x8c\x01a\x94K\x01\x86R.",  # TypeError
    ],
)
def test_damaged_lexical_cache_is_rebuilt_silently(tmp_path: Path, junk: bytes) -> None:
    """A leftover lexical.pkl (the old bm25s index) is never read, whatever it holds."""
    settings = Settings(home=tmp_path / "home", embedding_model="fake")
    sync(settings, [str(write_docs(tmp_path / "docs"))], show_bar=False)
    forget_open_stores()
    index = Index.open(settings)
    assert index is not None
    (index.dir / "lexical.pkl").write_bytes(junk)
    index.close()
    assert_rover_answer(settings)
    forget_open_stores()


def test_vectors_gone_from_the_store_is_not_a_silent_empty_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The catalog lists passages but their collection is gone (the store was reset, or the
    settings point at another one): say so and how to rebuild, instead of quietly creating an
    empty collection and answering from half an index."""
    home = tmp_path / "home"
    settings = Settings(home=home, embedding_model="fake")
    docs = write_docs(tmp_path / "docs")
    sync(settings, [str(docs)], show_bar=False)
    index = Index.open(settings)
    assert index is not None
    index.vectors.drop()
    index.close()
    forget_open_stores()
    with pytest.raises(StoreUnavailableError, match=r"missing .*assistant index --rebuild"):
        answer(QUESTION, settings=settings)
    forget_open_stores()
    (docs / "extra.txt").write_text("Extra story\n\nA new bridge opened in Leeds.\n")
    with pytest.raises(StoreUnavailableError, match="--rebuild"):
        sync(settings, [str(docs)], show_bar=False)  # it would write beside nothing
    report = sync(settings, None, rebuild=True, show_bar=False)
    assert report.rebuilt and report.added == 4
    forget_open_stores()
    assert_rover_answer(settings)


def test_damaged_embedded_chroma_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, embedding_model="fake")
    docs = write_docs(tmp_path / "docs")
    sync(settings, [str(docs)], show_bar=False)
    forget_open_stores()
    (home / "chroma" / "chroma.sqlite3").write_bytes(b"junk" * 1000)
    common = ["--home", str(home), "--embedding-model", "fake"]
    assert cli_main(["ask", QUESTION, *common]) == 1
    err = capsys.readouterr().err
    assert "cannot open the vector store" in err and "--rebuild" in err
    assert "Traceback" not in err
    forget_open_stores()
    (home / "chroma").rename(tmp_path / "chroma.damaged")  # what the message says to do
    assert cli_main(["index", "--rebuild", *common]) == 0, capsys.readouterr().err
    forget_open_stores()
    assert_rover_answer(settings)


def test_unreadable_vectors_say_so_and_the_next_sync_heals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Chroma's embedded HNSW files are not written atomically; a process killed while it
    persists them can leave a collection no read can load (the sync kill campaign meets this
    about once in a few hundred kills). Reproduced here by damaging the files: answers say
    what happened and what to run, and a plain `assistant index` re-embeds into a fresh
    generation, losing nothing."""
    home = tmp_path / "home"
    settings = Settings(home=home, embedding_model="fake")
    docs = write_docs(tmp_path / "docs")
    sync(settings, [str(docs)], show_bar=False)
    forget_open_stores()
    segments = [p for p in (home / "chroma").iterdir() if p.is_dir()]
    assert segments
    for segment in segments:
        (segment / "index_metadata.pickle").write_bytes(b"garbage")
    with pytest.raises(StoreUnavailableError, match=r"damaged .*Run `assistant index`"):
        answer(QUESTION, settings=settings)
    forget_open_stores()
    common = ["--home", str(home), "--embedding-model", "fake"]
    assert cli_main(["ask", QUESTION, *common]) == 1
    err = capsys.readouterr().err
    assert "damaged" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    forget_open_stores()
    assert cli_main(["index", "--json", *common]) == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["rebuilt"] and report["added"] == 3
    forget_open_stores()
    assert_rover_answer(settings)
    index = Index.open(settings)
    assert index is not None
    names = [c if isinstance(c, str) else c.name for c in index.vectors._client.list_collections()]
    assert names == [index.collection_name]  # the damaged one is gone
    index.close()
