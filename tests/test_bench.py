"""The speed benchmark: the synthetic corpus generator, and a tiny end-to-end run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from assistant.settings import Settings
from tests.test_eval import tiny_corpus


def _synth() -> ModuleType:
    from assistant.evaluation import synth_corpus

    return synth_corpus


def test_synthetic_corpus_is_deterministic_and_sized(tmp_path: Path) -> None:
    synth = _synth()
    tiny_corpus(tmp_path / "src")
    first = synth.generate(tmp_path / "src", tmp_path / "a", 25, seed=3)
    again = synth.generate(tmp_path / "src", tmp_path / "b", 25, seed=3)
    other = synth.generate(tmp_path / "src", tmp_path / "c", 25, seed=4)
    assert len(first) == 25 and all(p.exists() for p in first)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    assert [p.read_bytes() for p in first] != [p.read_bytes() for p in other]
    pool = synth.read_pool(tmp_path / "src")
    text = first[0].read_text(encoding="utf-8")
    title, _, body = text.partition("\n\n")
    assert title in pool.titles
    assert body.strip() and "\n\n" in text


def test_synthetic_corpus_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synth = _synth()
    tiny_corpus(tmp_path / "src")
    argv = ["--source", str(tmp_path / "src"), "--out", str(tmp_path / "out"), "--articles", "3"]
    assert synth.main(argv) == 0
    assert len(list((tmp_path / "out").rglob("*.txt"))) == 3
    assert "wrote 3 articles" in capsys.readouterr().out


@pytest.mark.integration
@pytest.mark.slow
def test_bench_on_a_tiny_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every phase for both pipelines in child processes, plus a small synthetic scale run."""
    from assistant.evaluation.benchmark import main

    questions = tiny_corpus(tmp_path / "corpus")
    out = tmp_path / "bench.json"
    argv = ["--corpus", str(tmp_path / "corpus"), "--questions", str(questions)]
    argv += ["--cold-runs", "1", "--synthetic-articles", "30", "--json", str(out)]
    assert main(argv, Settings()) == 0
    printed = capsys.readouterr().out
    assert "full index s" in printed and "ours/tut" in printed
    result = json.loads(out.read_text(encoding="utf-8"))
    ours, tutorial = result["ours"], result["tutorial"]
    for figures in (ours, tutorial):
        assert figures["articles"] == 4 and figures["chunks"] >= 4
        for key in ("index_seconds", "change_seconds", "retrieval_p50_ms", "answer_p95_ms"):
            assert figures[key] > 0, key
        assert figures["cold_start_s"] > 0 and figures["index_rss_mb"] > 50
    assert ours["resync_seconds"] < ours["index_seconds"]
    assert tutorial["resync_pct"] == 100.0
    assert tutorial["embedding_backend"] == "torch"  # the tutorial as published
    (scale,) = result["scale"]
    assert scale["size"] == 30 and scale["articles"] == 30 and scale["disk_mb"] > 0
    assert not (tmp_path / "corpus" / "news" / "chess.txt").read_text().endswith("changed.\n")


def test_cli_passes_bench_and_eval_options_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`assistant bench --corpus X` reaches the benchmark (it once fell into a REMAINDER)."""
    from assistant.cli import main as cli_main

    missing = tmp_path / "nowhere"
    assert cli_main(["bench", "--corpus", str(missing), "--no-baseline"]) == 2
    assert f"corpus {missing} not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["eval", "--help"])
    assert "--baseline" in capsys.readouterr().out


def test_bench_without_the_eval_extra_fails_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tutorial pipeline needs the eval extra: say so up front, not after our phases ran."""
    from assistant.cli import main as cli_main
    from assistant.evaluation import benchmark

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("benchmarked before checking that the eval extra is installed")

    monkeypatch.setitem(sys.modules, "langchain_chroma", None)  # as if not installed
    monkeypatch.setattr(benchmark, "bench_corpus", no_work)
    questions = tiny_corpus(tmp_path / "corpus")
    argv = ["bench", "--corpus", str(tmp_path / "corpus"), "--questions", str(questions)]
    assert cli_main(argv) == 2
    assert "article-assistant[eval]" in capsys.readouterr().err


def test_the_tutorial_is_timed_on_its_published_runtime_unless_told_otherwise(
    tmp_path: Path,
) -> None:
    """`assistant bench` runs the tutorial's embeddings through sentence-transformers on torch,
    as the LangChain tutorial does; ``--tutorial-embedder ours`` gives it our backend. Each
    child process gets the backend by environment variable."""
    from assistant.evaluation.phases import _env, tutorial_embedding

    ours = Settings(embedding_backend="onnx")
    published = tutorial_embedding(ours, "published")
    assert published.embedding_backend == "torch" and ours.embedding_backend == "onnx"
    assert tutorial_embedding(ours, "ours").embedding_backend == "onnx"
    assert _env(published, tmp_path)["ASSISTANT_EMBEDDING_BACKEND"] == "torch"
    assert _env(ours, tmp_path)["ASSISTANT_EMBEDDING_BACKEND"] == "onnx"


def test_bench_children_get_every_index_setting_but_the_home(tmp_path: Path) -> None:
    """A bench of a search width, device or export directory measures that, not the defaults:
    every index-layer setting reaches the child processes (the backend alone used to)."""
    from assistant.evaluation.phases import _env

    settings = Settings(
        home=tmp_path / "mine",
        hnsw_ef_search=64,
        embedding_device="cpu",
        embedding_export_dir=tmp_path / "models",
        chunk_tokens=128,
    )
    env = _env(settings, tmp_path / "child")
    assert env["ASSISTANT_HOME"] == str(tmp_path / "child")
    assert env["ASSISTANT_HNSW_EF_SEARCH"] == "64"
    assert env["ASSISTANT_EMBEDDING_DEVICE"] == "cpu"
    assert env["ASSISTANT_EMBEDDING_EXPORT_DIR"] == str(tmp_path / "models")
    assert env["ASSISTANT_CHUNK_TOKENS"] == "128"
