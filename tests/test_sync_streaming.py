"""Sync at scale and under change: streamed batches, progress, missing sources, moving files.

Each test pins a hole found in review (issue 10): a long sync committed nothing until it had
loaded everything; a moved folder deleted its articles; an edit made while a file was read
could be recorded as indexed; a file vanishing mid-sync aborted the whole sync.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assistant.api import index_status
from assistant.cli import main as cli_main
from assistant.settings import Settings
from index.loaders import LoadResult, TextLoader
from index.store import Index
from index.sync import sync

from .reliability_support import ROOT, check_index, child_env


class Killed(BaseException):
    """Stands for SIGKILL at one exact point: nothing after it runs."""


def body(i: int, sentences: int = 40) -> str:
    return " ".join(
        f"Quokka{i} crossed bridge {n} near the harbour today." for n in range(sentences)
    )


def write_articles(folder: Path, n: int, sentences: int = 40) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{i:03d}.txt").write_text(f"Story {i}\n\n{body(i, sentences)}\n")


def found(settings: Settings, query: str) -> set[str]:
    """Origins of the articles retrieval finds for ``query``."""
    from assistant.retrieval import HybridRetriever

    index = Index.open(settings)
    assert index is not None
    try:
        docs = HybridRetriever(index=index, k=3).invoke(query)
        return {
            index.catalog.chunks([d.metadata["chunk_id"]])[d.metadata["chunk_id"]].article.origin
            for d in docs
        }
    finally:
        index.close()


# --- 1. streamed in batches: a kill loses at most one batch ------------------------------------
def test_sync_killed_after_the_first_batch_leaves_those_articles_searchable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path / "home", embedding_model="fake")
    docs = tmp_path / "docs"
    write_articles(docs, 40)  # about 4 chunks each: the first batch is done long before #30
    load = TextLoader.load

    def load_until_killed(self: TextLoader, data: bytes, origin: str) -> LoadResult:
        if origin.endswith("030.txt"):
            raise Killed
        return load(self, data, origin)

    with monkeypatch.context() as m:
        m.setattr(TextLoader, "load", load_until_killed)
        with pytest.raises(Killed):
            sync(settings, [str(docs)], show_bar=False)
    committed = check_index(settings).origins  # whole articles only, everywhere
    assert len(committed) >= 10, "the first batch was not committed before the kill"
    first = str(docs.absolute() / "000.txt")
    assert first in committed and first in found(settings, "Quokka0 crossed bridge")
    again = sync(settings, None, show_bar=False)  # resumes: the committed ones are not redone
    assert again.added == 40 - len(committed) and again.unchanged == len(committed)
    assert len(check_index(settings).origins) == 40


def test_jsonl_of_many_records_commits_before_it_is_read_to_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import index.loaders as loaders

    settings = Settings(home=tmp_path / "home", embedding_model="fake")
    docs = tmp_path / "docs"
    docs.mkdir()
    lines = [json.dumps({"title": f"Wire {i}", "text": body(i, 12)}) for i in range(300)]
    (docs / "wire.jsonl").write_text("\n".join(lines) + "\n")
    record_article = loaders._record_article

    def parse_until_killed(value: Any, origin: str) -> Any:
        if origin.endswith("#250"):
            raise Killed
        return record_article(value, origin)

    with monkeypatch.context() as m:
        m.setattr(loaders, "_record_article", parse_until_killed)
        with pytest.raises(Killed):
            sync(settings, [str(docs)], show_bar=False)
    committed = check_index(settings).origins
    assert len(committed) >= 20 and f"{docs / 'wire.jsonl'}#1" in committed
    again = sync(settings, None, show_bar=False)
    assert again.unchanged == len(committed) and again.added == 300 - len(committed)


def test_embedding_batches_mix_articles_longest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from index.embeddings import FakeTokenizingEmbeddings

    calls: list[list[str]] = []
    embed = FakeTokenizingEmbeddings.embed_documents

    def recording(self: FakeTokenizingEmbeddings, texts: list[str]) -> list[list[float]]:
        calls.append(list(texts))
        return embed(self, texts)

    monkeypatch.setattr(FakeTokenizingEmbeddings, "embed_documents", recording)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(12):  # articles of very different lengths
        (docs / f"{i:03d}.txt").write_text(f"Story {i}\n\n{body(i, 3 + 9 * (i % 4))}\n")
    settings = Settings(home=tmp_path / "home", embedding_model="fake")
    sync(settings, [str(docs)], show_bar=False)
    assert calls
    big = max(calls, key=len)
    assert len({t.split("\n", 1)[0] for t in big}) > 1, "one model call, one article"
    lengths = [len(t) for t in big]
    assert lengths == sorted(lengths, reverse=True)


def test_progress_lines_when_stderr_is_a_pipe(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_articles(docs, 30, sentences=8)
    home = tmp_path / "home"
    cmd = [sys.executable, "-m", "assistant.cli", "index", str(docs), "--home", str(home)]
    run = subprocess.run(
        [*cmd, "--embedding-model", "fake"],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "index: 30 files to read" in run.stderr
    assert "index: 30/30 articles" in run.stderr and "chunks/s" in run.stderr


def test_progress_line_every_interval_with_rate_and_time_left() -> None:
    from index.progress import SyncProgress

    now = [0.0]
    out = io.StringIO()
    progress = SyncProgress(show=True, stream=out, interval=5.0, clock=lambda: now[0])
    progress.start(files=4, nbytes=4000)
    progress.file_read(1000, records=100)  # a JSONL file of 100 records, a quarter of the bytes
    now[0] = 2.0
    progress.settled(10, chunks=40)  # under the interval: no line
    now[0] = 6.0
    progress.settled(40, chunks=160)
    lines = out.getvalue().splitlines()
    assert lines[0] == "index: 4 files to read (0.0 MB)"
    # 50 of about 400 articles (the rest extrapolated from the bytes) in 6 s: 42 s left
    assert lines[1:] == ["index: 50/400 articles, 33.3 chunks/s, about 42 s left"]


# --- 2. a missing source is a failure, never a deletion ----------------------------------------
def test_missing_folder_is_a_failure_and_keeps_its_articles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(home=tmp_path / "home", embedding_model="fake")
    docs = tmp_path / "docs"
    write_articles(docs, 3, sentences=3)
    sync(settings, [str(docs)], show_bar=False)
    docs.rename(tmp_path / "moved")  # unmounted, moved away
    report = sync(settings, None, show_bar=False)
    assert report.removed == 0
    assert [f.path for f in report.failed] == [str(docs)]
    assert "not found" in report.failed[0].error and "--forget" in report.failed[0].error
    assert index_status(settings).articles == 3
    cli = ["--home", str(settings.home), "--embedding-model", "fake"]
    assert cli_main(["index", *cli]) == 1
    assert str(docs) in capsys.readouterr().err
    assert index_status(settings).articles == 3

    (tmp_path / "moved").rename(docs)  # back: a file gone from a folder that exists is removed
    (docs / "001.txt").unlink()
    report = sync(settings, None, show_bar=False)
    assert (report.removed, report.unchanged, report.failed) == (1, 2, [])


def test_forget_removes_a_source_explicitly(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", embedding_model="fake")
    keep, gone = tmp_path / "keep", tmp_path / "gone"
    write_articles(keep, 2, sentences=3)
    write_articles(gone, 3, sentences=3)
    sync(settings, [str(keep), str(gone)], show_bar=False)
    gone.rename(tmp_path / "elsewhere")
    cli = ["--home", str(settings.home), "--embedding-model", "fake", "--json"]
    assert cli_main(["index", "--forget", str(gone), *cli]) == 0
    assert index_status(settings).articles == 2
    assert cli_main(["index", *cli]) == 0  # the forgotten folder is no source any more
    assert cli_main(["index", "--forget", str(gone), *cli]) == 1  # nothing left to forget
    check_index(settings)


def test_rebuild_with_a_missing_source_keeps_serving_the_old_index(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", embedding_model="fake")
    one, two = tmp_path / "one", tmp_path / "two"
    write_articles(one, 2, sentences=3)
    write_articles(two, 3, sentences=3)
    sync(settings, [str(one), str(two)], show_bar=False)
    before = check_index(settings)
    two.rename(tmp_path / "away")
    report = sync(settings, None, rebuild=True, show_bar=False)
    assert [f.path for f in report.failed] == [str(two)] and "--forget" in report.failed[0].error
    assert not report.rebuilt and report.chunks_embedded == 0  # refused before any work
    after = check_index(settings)
    assert (after.generation, after.origins) == (before.generation, before.origins)
    assert len(list((settings.home / "generations").iterdir())) == 1


# --- 3. the digest is that of the bytes indexed ------------------------------------------------
def test_file_edited_while_it_is_read_is_reindexed_by_the_next_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path / "home", embedding_model="fake")
    docs = tmp_path / "docs"
    write_articles(docs, 2, sentences=3)
    target = docs / "000.txt"
    load = TextLoader.load

    def load_then_edit(self: TextLoader, data: bytes, origin: str) -> LoadResult:
        result = load(self, data, origin)
        if origin == str(target.absolute()) and b"Wombat" not in data:
            target.write_text("Story 0\n\nWombat sighted at the station, a new version.\n")
            os.utime(target, ns=(1, 1))  # a different mtime, whatever the clock's resolution
        return result

    with monkeypatch.context() as m:
        m.setattr(TextLoader, "load", load_then_edit)
        sync(settings, [str(docs)], show_bar=False)
    report = sync(settings, None, show_bar=False)
    assert report.updated == 1, "the edit made during the first sync was never indexed"
    index = Index.open(settings)
    assert index is not None
    texts = [index.catalog.article_text(a.article_id) or "" for a in index.catalog.articles()]
    index.close()
    assert any("Wombat" in t for t in texts)


def test_file_vanishing_mid_sync_is_a_per_file_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path / "home", embedding_model="fake")
    docs = tmp_path / "docs"
    write_articles(docs, 3, sentences=3)
    first, second = docs / "000.txt", docs / "001.txt"
    load = TextLoader.load

    def load_then_delete(self: TextLoader, data: bytes, origin: str) -> LoadResult:
        result = load(self, data, origin)
        if origin == str(first.absolute()):
            first.unlink()  # gone right after it was read
            second.unlink()  # gone before it is read
        return result

    with monkeypatch.context() as m:
        m.setattr(TextLoader, "load", load_then_delete)
        report = sync(settings, [str(docs)], show_bar=False)
    assert [(Path(f.path).name, f.error) for f in report.failed] == [("001.txt", "file not found")]
    assert str(docs.absolute() / "002.txt") in check_index(settings).origins
    again = sync(settings, None, show_bar=False)
    assert again.failed == [] and index_status(settings).articles == 1
