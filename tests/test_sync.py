"""Incremental sync: add, update, remove, unchanged, duplicates, bad files, model changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.api import index_status, list_articles, open_index
from assistant.cli import main as cli_main
from assistant.errors import IndexBusyError, IndexMismatchError
from assistant.settings import Settings
from index.locking import sync_lock
from index.store import Index
from index.sync import sync

from .conftest import SAMPLE


def write(folder: Path, name: str, title: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"{title}\n\n{body}\n", encoding="utf-8")
    return path


def corpus(folder: Path) -> None:
    write(
        folder,
        "a.txt",
        "Apple opens a store",
        "Apple opened a new store in Leeds on Monday. The shop employs 40 people.",
    )
    write(
        folder,
        "b.txt",
        "Rain floods the valley",
        "Heavy rain flooded the valley overnight. Farmers lost 300 sheep.",
    )


def assert_whole(settings: Settings) -> None:
    """Every committed article has all its chunks in the catalog, in Chroma and in BM25."""
    index = Index.open(settings)
    assert index is not None
    catalog_ids = index.catalog.chunk_ids()
    for art in index.catalog.articles():
        expected = {f"{art.article_id}:{n}" for n in range(art.n_chunks)}
        assert expected <= catalog_ids
    assert catalog_ids <= index.vectors.all_ids()
    assert index.lexical.chunk_ids() == catalog_ids
    index.close()


def test_add_unchanged_update_remove(fake_settings: Settings, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    corpus(docs)
    first = sync(fake_settings, [str(docs)], show_bar=False)
    assert (first.added, first.updated, first.removed, first.failed) == (2, 0, 0, [])
    assert first.chunks_embedded >= 2

    again = sync(fake_settings, [str(docs)], show_bar=False)
    assert (again.added, again.unchanged, again.chunks_embedded) == (0, 2, 0)

    write(docs, "a.txt", "Apple opens a store", "Apple opened a new store in York on Tuesday.")
    (docs / "b.txt").unlink()
    write(docs, "c.txt", "Snow closes schools", "Snow closed 12 schools in Kent.")
    changed = sync(fake_settings, None, show_bar=False)  # no args: the sources synced before
    assert (changed.added, changed.updated, changed.removed, changed.unchanged) == (1, 1, 1, 0)
    titles = sorted(a.title for a in list_articles(fake_settings))
    assert titles == ["Apple opens a store", "Snow closes schools"]
    assert_whole(fake_settings)


def test_touch_without_change_embeds_nothing(fake_settings: Settings, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    corpus(docs)
    sync(fake_settings, [str(docs)], show_bar=False)
    (docs / "a.txt").write_text((docs / "a.txt").read_text())  # new mtime, same bytes
    report = sync(fake_settings, [str(docs)], show_bar=False)
    assert (report.unchanged, report.chunks_embedded) == (2, 0)


def test_duplicate_article_is_indexed_reported_and_stable(
    fake_settings: Settings, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    corpus(docs)
    (docs / "copy.txt").write_bytes((docs / "a.txt").read_bytes())
    (docs / "many.jsonl").write_text(
        '{"title": "Twin", "text": "Identical lines in one file."}\n' * 2, encoding="utf-8"
    )
    report = sync(fake_settings, [str(docs)], show_bar=False)
    assert report.added == 5  # a, b, copy, and both JSONL lines: every file stays findable
    dups = sorted(Path(d.path).name for d in report.duplicates)
    assert dups == ["copy.txt", "many.jsonl#2"], report.duplicates
    assert all("same text" in d.error for d in report.duplicates)
    index = Index.open(fake_settings)
    assert index is not None
    assert len({a.article_id for a in index.catalog.articles()}) == 5
    index.close()
    again = sync(fake_settings, [str(docs)], show_bar=False)
    assert (again.unchanged, again.added, again.updated, again.removed) == (5, 0, 0, 0)
    assert again.duplicates == [] and again.chunks_embedded == 0
    (docs / "a.txt").unlink()  # the original goes; the copy stays, unchanged
    third = sync(fake_settings, [str(docs)], show_bar=False)
    assert (third.removed, third.unchanged, third.chunks_embedded) == (1, 4, 0)
    assert_whole(fake_settings)


def test_retrieval_collapses_identical_passages(fake_settings: Settings, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    corpus(docs)
    (docs / "copy.txt").write_bytes((docs / "a.txt").read_bytes())
    sync(fake_settings, [str(docs)], show_bar=False)
    from assistant.retrieval import HybridRetriever

    index = Index.open(fake_settings)
    assert index is not None
    found = HybridRetriever(index=index, k=5).invoke("Apple store Leeds")
    texts = [" ".join(d.page_content.split()) for d in found]
    assert len(texts) == 2 and len(set(texts)) == 2, texts  # a (or its copy) and b, once each
    index.close()


def test_bad_files_are_reported_and_the_rest_indexed(
    fake_settings: Settings, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    corpus(docs)
    (docs / "empty.txt").write_text("")
    (docs / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50)
    (docs / "huge.txt").write_bytes(b"word " * (3 * 1024 * 1024))
    settings = fake_settings.model_copy(update={"max_file_mb": 1.0})
    report = sync(settings, [str(docs)], show_bar=False)
    failed = {Path(f.path).name: f.error for f in report.failed}
    assert set(failed) == {"empty.txt", "binary.txt", "huge.txt"}
    assert all(failed.values())
    assert report.added == 2


def test_failed_update_keeps_the_previous_version(fake_settings: Settings, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    corpus(docs)
    sync(fake_settings, [str(docs)], show_bar=False)
    (docs / "a.txt").write_bytes(b"\x00\x01\x02" * 100)  # the file turns into garbage
    report = sync(fake_settings, [str(docs)], show_bar=False)
    assert [Path(f.path).name for f in report.failed] == ["a.txt"]
    assert index_status(fake_settings).articles == 2


def test_second_sync_refuses_while_one_runs(fake_settings: Settings, tmp_path: Path) -> None:
    with sync_lock(fake_settings.home), pytest.raises(IndexBusyError, match="another sync"):
        sync(fake_settings, [str(tmp_path)], show_bar=False)


def test_model_change_rebuilds_instead_of_mixing(
    fake_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    corpus(docs)
    sync(fake_settings, [str(docs)], show_bar=False)
    other = fake_settings.model_copy(update={"chunk_tokens": 64})
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        open_index(other)
    report = sync(other, None, show_bar=False)
    assert report.rebuilt and report.added == 2
    assert Index.open(other) is not None  # the new generation serves; no mismatch any more
    generations = list((fake_settings.home / "generations").iterdir())
    assert len(generations) == 1


def test_cli_index_json_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    corpus(docs)
    (docs / "empty.txt").write_text("  \n")
    home = tmp_path / "cli-home"
    code = cli_main(
        ["index", str(docs), "--json", "--home", str(home), "--embedding-model", "fake"]
    )
    out = capsys.readouterr()
    report = json.loads(out.out.strip().splitlines()[-1])
    assert code == 1
    assert {"added", "updated", "removed", "unchanged", "failed", "chunks_embedded"} <= set(report)
    assert report["added"] == 2 and report["failed"][0]["path"].endswith("empty.txt")
    assert "empty.txt" in out.err
    code = cli_main(["status", "--json", "--home", str(home), "--embedding-model", "fake"])
    status = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and status["articles"] == 2


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["index", "--embedding-model", "fake", "--home", "/dev/null/x"]) == 2
    assert "writable directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli_main(["frobnicate"])
    assert exc.value.code == 2


@pytest.mark.integration
def test_real_model_and_chroma(store_settings: Settings, tmp_path: Path) -> None:
    """The bundled model and real Chroma (on disk, and as a `chroma run` server)."""
    report = sync(store_settings, [str(SAMPLE)], show_bar=False)
    assert report.added == 1 and report.chunks_embedded >= 5
    again = sync(store_settings, None, show_bar=False)
    assert (again.unchanged, again.chunks_embedded) == (1, 0)
    assert_whole(store_settings)
    status = index_status(store_settings)
    assert status.articles == 1 and status.chunks == report.chunks_embedded


@pytest.mark.integration
def test_chroma_server_down_is_one_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from .conftest import free_port

    code = cli_main(
        [
            "index",
            str(SAMPLE),
            "--home",
            str(tmp_path / "h"),
            "--chroma-host",
            "127.0.0.1",
            "--chroma-port",
            str(free_port()),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot reach the Chroma server" in err and "Traceback" not in err


@pytest.mark.integration
@pytest.mark.slow
def test_bbc_corpus_full_sync_and_no_change_resync(fake_settings: Settings) -> None:
    """All 2,225 BBC files, the Latin-1 one included; the second run embeds nothing.
    (The fake embedder keeps this about sync at scale; the benchmark times the real model.)"""
    from .conftest import BBC

    if not BBC.is_dir():
        pytest.skip(f"{BBC} not present")
    first = sync(fake_settings, [str(BBC)], show_bar=False)
    # questions-dev.jsonl sits in the folder and has no article text: reported, not fatal.
    assert [Path(f.path).name for f in first.failed] in ([], ["questions-dev.jsonl"])
    assert first.added >= 2225  # every story, copies included (they are listed as duplicates)
    assert len(first.duplicates) >= 98  # the corpus files 98 stories twice, byte for byte
    assert first.chunks_embedded > 5000
    index = Index.open(fake_settings)
    assert index is not None
    pound = [a for a in index.catalog.articles() if a.origin.endswith("sport/199.txt")]
    assert pound and "£" in (index.catalog.article_text(pound[0].article_id) or "")
    index.close()
    again = sync(fake_settings, [str(BBC)], show_bar=False)
    assert (again.added, again.updated, again.removed, again.chunks_embedded) == (0, 0, 0, 0)
    assert again.unchanged == first.added
