"""`assistant bench`: indexing and query speed, ours beside the LangChain tutorial pipeline.

Every phase runs in a fresh child process (``python -m assistant.benchmark _child ...``), so
its peak RSS comes from the kernel (``os.wait4``) rather than from sampling; the model is
loaded and Chroma imported before any clock starts. On a private copy of the corpus (it gets
edited):

1. full index: ours ``sync_articles``; the tutorial's load, split and ``add_documents``;
2. ours: a no-change re-sync, then one article edited and re-synced.
   The tutorial has no sync: its re-sync is a full re-index, and its change deletes the
   file's chunks by origin and adds them again;
3. queries (model loaded, one warm-up): ours retrieval alone and the whole extractive
   ``answer()``; the tutorial's ``similarity_search`` top 4, which is also its answer;
4. cold start: a new ``assistant ask`` process until the answer's first line is printed
   (the tutorial: ``python -m assistant.baseline ask``), median of ``--cold-runs``.

``--scale F`` / ``--synthetic-articles N`` repeat 1-3 for ours on synthetic corpora
(``bench/synth_corpus.py``) to show how index time, memory, disk and latency grow.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from assistant.errors import AssistantError, ConfigError
from assistant.evaluation import DEPTH, Passage, Response, load_questions, percentile
from assistant.settings import Settings

if TYPE_CHECKING:
    from langchain_core.documents import Document

    from assistant.types import Citation

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "bbc"
CHANGE = "\n\nThis paragraph was added by the benchmark, so the article has changed.\n"
_ENV_FIELDS = ["embedding_model", "embedding_batch_size", "allow_downloads", "chunk_tokens"]
_ENV_FIELDS += ["chroma_host", "chroma_port", "max_file_mb", "k"]


# --- shared with `assistant eval` ------------------------------------------------------------
def ours_asker(settings: Settings, k: int | None) -> Callable[[str], Response]:
    """Retrieval alone (top 10, for ranks) then the full ``answer()``, each timed."""
    from assistant.api import answer, open_index
    from assistant.baseline import forget_cached_queries
    from assistant.retrieval import HybridRetriever

    index = open_index(settings)
    by_id = {a.article_id: a for a in index.catalog.articles()}
    texts: dict[str, str | None] = {}
    retriever = HybridRetriever(index=index, k=DEPTH)

    def passage(text: str, article_id: str, start: int) -> Passage:
        if article_id not in texts:
            texts[article_id] = index.catalog.article_text(article_id)
        origin = by_id[article_id].origin if article_id in by_id else ""
        return Passage(text, origin, start, start + len(text), texts[article_id])

    def cited_passage(c: Citation, chunks: dict[str, Document]) -> Passage:
        """The cited chunk and its quote: not the wider paragraph the UI shows around it."""
        doc = chunks.get(c.chunk_id)
        if doc is None:
            return passage(c.passage, c.article_id, c.passage_start)
        start, end = min(c.start, doc.metadata["start"]), max(c.end, doc.metadata["end"])
        if c.article_id not in texts:
            texts[c.article_id] = index.catalog.article_text(c.article_id)
        return passage((texts[c.article_id] or "")[start:end], c.article_id, start)

    def ask(question: str) -> Response:
        forget_cached_queries(index.embedder)
        started = time.perf_counter()
        docs = retriever.invoke(question)
        retrieval_ms = (time.perf_counter() - started) * 1000
        forget_cached_queries(index.embedder)  # answer() pays for the question's vector too
        started = time.perf_counter()
        result = answer(question, settings=settings, k=k)
        latency_ms = (time.perf_counter() - started) * 1000
        ranked = [
            passage(d.page_content, d.metadata["article_id"], d.metadata["start"]) for d in docs
        ]
        cited = [
            cited_passage(c, {d.metadata["chunk_id"]: d for d in docs}) for c in result.citations
        ]
        return Response(ranked, result.text, result.answered, cited, latency_ms, retrieval_ms)

    return ask


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def format_table(
    rows: Sequence[tuple[str, str, str]], ours: dict[str, Any], tutorial: dict[str, Any] | None
) -> str:
    """Ours beside the tutorial's figure; the ratio is ours / tutorial."""
    head = f"{'metric':46} {'ours':>10}"
    lines = [head + (f" {'tutorial':>10} {'ours/tut':>9}" if tutorial is not None else "")]
    for label, key, tutorial_key in rows:
        value = ours.get(key)
        line = f"{label:46} {cell(value):>10}"
        if tutorial is not None:
            other = tutorial.get(tutorial_key)
            ratio = f"{value / other:.2f}x" if isinstance(value, int | float) and other else "-"
            line += f" {cell(other):>10} {ratio:>9}"
        lines.append(line)
    return "\n".join(lines)


def write_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Rows as a JSON list (``.json``) or CSV (anything else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(list(rows), indent=1, ensure_ascii=False), encoding="utf-8")
        return
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["question"])
        writer.writeheader()
        writer.writerows(rows)


# --- child processes ---------------------------------------------------------------------------
def _env(settings: Settings, home: Path) -> dict[str, str]:
    """The settings as ASSISTANT_* variables for a child; extractive answers only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env["ASSISTANT_HOME"] = str(home)
    for name in _ENV_FIELDS:
        value = getattr(settings, name)
        if value is not None:
            env[f"ASSISTANT_{name.upper()}"] = str(value)
    return env


def _wait(proc: subprocess.Popen[str], what: str) -> float:
    """Reap ``proc``; return its peak RSS in MB (the kernel's high-water mark for it)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise AssistantError(f"benchmark step {what!r} failed (exit {proc.returncode})")
    return usage.ru_maxrss / 1024


def _child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "assistant.benchmark", "_child", *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    rss = _wait(proc, args[0])
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = rss
    return result


def _cold_start(cmd: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    """Median seconds from process start to the answer's first printed line, and peak RSS."""
    times, rss = [], []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        first = proc.stdout.readline() if proc.stdout else ""
        times.append(time.perf_counter() - started)
        if proc.stdout:
            proc.stdout.read()
        rss.append(_wait(proc, "cold start"))
        if not first.strip():
            raise AssistantError(f"cold start: {' '.join(cmd[:4])} printed nothing")
    return {"cold_start_s": statistics.median(times), "ask_rss_mb": max(rss)}


def _timings(responses: list[Response]) -> dict[str, float | None]:
    series = {"retrieval": [r.retrieval_ms for r in responses]}
    series["answer"] = [r.latency_ms for r in responses]
    return {f"{n}_p{p}_ms": percentile(v, p) for n, v in series.items() for p in (50, 95)}


def _run_child(argv: list[str]) -> dict[str, Any]:
    """One phase, in this (fresh) process; settings come from the ASSISTANT_* environment."""
    from assistant.api import sync_articles
    from assistant.baseline import TutorialPipeline, tutorial_asker
    from index.embeddings import load_embedder

    kind, *rest = argv
    settings = Settings()
    max_bytes = int(settings.max_file_mb * 1024 * 1024)
    load_embedder(settings).embed_query("warm-up")  # no clock includes loading the model
    importlib.import_module("langchain_chroma" if "tutorial" in kind else "chromadb")

    started = time.perf_counter()
    if kind == "index-ours":
        report = sync_articles(rest, settings=settings)
        seconds = time.perf_counter() - started
        read = report.added  # copies are indexed too, as in the tutorial pipeline
        return {"seconds": seconds, "articles": read, "chunks": report.chunks_embedded}
    if kind == "update-ours":
        changed, *roots = rest
        sync_articles(roots, settings=settings)
        resync = time.perf_counter() - started
        with Path(changed).open("a", encoding="utf-8") as fh:
            fh.write(CHANGE)
        started = time.perf_counter()
        report = sync_articles(roots, settings=settings)
        change = time.perf_counter() - started
        return {"resync_seconds": resync, "change_seconds": change, "updated": report.updated}
    if kind == "query-ours":
        ask = ours_asker(settings, None)
        queries = json.loads(Path(rest[0]).read_text(encoding="utf-8"))
        ask(queries[0])  # warm-up: the model loads here
        return _timings([ask(q) for q in queries])
    pipeline = TutorialPipeline(load_embedder(settings), Path(rest[0]), max_bytes=max_bytes)
    if kind == "index-tutorial":
        stats = pipeline.index(rest[1:])
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "articles": stats.articles, "chunks": stats.chunks}
    if kind == "update-tutorial":
        started = time.perf_counter()
        pipeline.update(Path(rest[1]))
        return {"change_seconds": time.perf_counter() - started}
    if kind == "query-tutorial":
        ask_tutorial = tutorial_asker(pipeline)
        queries = json.loads(Path(rest[1]).read_text(encoding="utf-8"))
        ask_tutorial(queries[0])
        return _timings([ask_tutorial(q) for q in queries])
    raise ConfigError(f"unknown benchmark phase {kind!r}")


# --- the benchmark -----------------------------------------------------------------------------
def disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def _figures(full: dict[str, Any], query: dict[str, Any], **more: Any) -> dict[str, Any]:
    seconds = full["seconds"]
    figures = {"articles": full["articles"], "chunks": full["chunks"], "index_seconds": seconds}
    figures["chunks_per_s"] = full["chunks"] / seconds
    figures["articles_per_s"] = full["articles"] / seconds
    figures["resync_pct"] = 100 * more["resync_seconds"] / seconds
    figures |= {k: v for k, v in query.items() if k.endswith("_ms")}
    figures |= {"index_rss_mb": full["peak_rss_mb"], "query_rss_mb": query["peak_rss_mb"]}
    return figures | more


def bench_ours(roots: list[str], changed: Path, work: Path, settings: Settings) -> dict[str, Any]:
    """Index, re-sync, change and query our pipeline over ``roots`` (phases 1-3)."""
    env = _env(settings, work / "home")
    full = _child(["index-ours", *roots], env)
    update = _child(["update-ours", str(changed), *roots], env)
    query = _child(["query-ours", str(work / "queries.json")], env)
    return _figures(
        full,
        query,
        resync_seconds=update["resync_seconds"],
        change_seconds=update["change_seconds"],
        disk_mb=disk_mb(work / "home"),
    )


def _tutorial(roots: list[str], changed: Path, work: Path, settings: Settings) -> dict[str, Any]:
    """The same phases for the tutorial pipeline; its re-sync is a full re-index."""
    env = _env(settings, work / "unused-home")
    directory = str(work / "tutorial")
    full = _child(["index-tutorial", directory, *roots], env)
    update = _child(["update-tutorial", directory, str(changed)], env)
    query = _child(["query-tutorial", directory, str(work / "queries.json")], env)
    return _figures(
        full,
        query,
        resync_seconds=full["seconds"],
        change_seconds=update["change_seconds"],
        disk_mb=disk_mb(work / "tutorial"),
    )


def _copy_corpus(corpora: list[Path], work: Path) -> tuple[list[str], Path]:
    """Private copies of the corpora (one file gets edited); the file to change is the middle
    one of the first corpus, so every run changes the same article."""
    from index.loaders import iter_article_files

    roots = []
    for n, corpus in enumerate(corpora):
        target = work / "corpus" / f"{n}-{corpus.name}"
        if corpus.is_dir():
            shutil.copytree(corpus, target)
        else:
            target.mkdir(parents=True)
            target = Path(shutil.copy2(corpus, target))
        roots.append(str(target))
    files = [p for p in iter_article_files(Path(roots[0])) if p.suffix.lower() == ".txt"]
    if not files:
        raise ConfigError(f"no .txt articles in {corpora[0]} to change")
    return roots, files[len(files) // 2]


def bench_corpus(
    corpora: list[Path], queries: list[str], work: Path, settings: Settings, args: Any
) -> dict[str, Any]:
    """All phases for ours and (unless --no-baseline) the tutorial on the given corpora."""
    roots, changed = _copy_corpus(corpora, work)
    (work / "queries.json").write_text(json.dumps(queries), encoding="utf-8")
    _log(f"our pipeline on {', '.join(str(c) for c in corpora)} (changing {changed.name})")
    ours = bench_ours(roots, changed, work, settings)
    ask = [sys.executable, "-m", "assistant.cli", "ask", queries[0]]
    ours |= _cold_start(ask, _env(settings, work / "home"), args.cold_runs)
    result: dict[str, Any] = {"ours": ours, "tutorial": None}
    if not args.no_baseline:
        _log("the LangChain tutorial pipeline on the same corpus")
        tutorial = _tutorial(roots, changed, work, settings)
        ask = [sys.executable, "-m", "assistant.baseline", "ask", str(work / "tutorial")]
        ask.append(queries[0])
        tutorial |= _cold_start(ask, _env(settings, work / "unused-home"), args.cold_runs)
        result["tutorial"] = tutorial
    return result


def _scale_module() -> ModuleType:
    """``bench/scale.py`` from the checkout: the scale simulation is a script, not installed."""
    path = Path(__file__).resolve().parents[1] / "bench" / "scale.py"
    if not path.exists():
        raise ConfigError(f"--scale needs the repository checkout ({path} is missing)")
    spec = importlib.util.spec_from_file_location("bench_scale", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


ROWS = [  # (label, key in ours, key in the tutorial's figures)
    ("articles", "articles", "articles"),
    ("chunks", "chunks", "chunks"),
    ("full index s", "index_seconds", "index_seconds"),
    ("chunks/s", "chunks_per_s", "chunks_per_s"),
    ("articles/s (index throughput)", "articles_per_s", "articles_per_s"),
    ("no-change re-sync s (tutorial: full re-index)", "resync_seconds", "resync_seconds"),
    ("re-sync as % of full index", "resync_pct", "resync_pct"),
    ("one-article change s", "change_seconds", "change_seconds"),
    ("retrieval p50 ms", "retrieval_p50_ms", "retrieval_p50_ms"),
    ("retrieval p95 ms", "retrieval_p95_ms", "retrieval_p95_ms"),
    ("answer p50 ms (tutorial: its top-4 search)", "answer_p50_ms", "answer_p50_ms"),
    ("answer p95 ms", "answer_p95_ms", "answer_p95_ms"),
    ("cold start of ask s", "cold_start_s", "cold_start_s"),
    ("peak RSS, full index MB", "index_rss_mb", "index_rss_mb"),
    ("peak RSS, queries MB", "query_rss_mb", "query_rss_mb"),
    ("peak RSS, ask process MB", "ask_rss_mb", "ask_rss_mb"),
    ("disk MB", "disk_mb", "disk_mb"),
]


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``assistant bench``; the CLI's subcommand shows them in its ``--help``."""
    p.add_argument(
        "--corpus",
        action="append",
        type=Path,
        metavar="DIR",
        help=f"corpus folder (repeatable; default {DEFAULT_CORPUS})",
    )
    p.add_argument("--questions", type=Path, help="JSONL whose questions time the queries")
    p.add_argument("--queries", type=int, default=50, help="questions timed (default 50)")
    p.add_argument("--cold-runs", type=int, default=3, help="cold starts timed (median)")
    p.add_argument("--no-baseline", action="store_true", help="skip the tutorial pipeline")
    p.add_argument("--scale", type=float, nargs="+", default=[], metavar="F", help="x corpus size")
    p.add_argument("--synthetic-articles", type=int, nargs="+", default=[], metavar="N")
    p.add_argument("--scale-only", action="store_true", help="skip the run on the real corpus")
    p.add_argument("--seed", type=int, default=0, help="synthetic corpus seed (default 0)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    return p


def _parser() -> argparse.ArgumentParser:
    return add_arguments(
        argparse.ArgumentParser(prog="assistant bench", description=__doc__.split("\n")[0])
    )


def main(argv: Sequence[str], settings: Settings) -> int:
    """Entry point for a list of arguments; returns the exit code."""
    return run(_parser().parse_args([a for a in argv if a != "--"]), settings)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``assistant bench`` with parsed arguments; returns the exit code."""
    from assistant.baseline import require_eval_extra

    if not args.no_baseline and not args.scale_only:
        require_eval_extra("assistant bench (without --no-baseline)")
    corpora = args.corpus or [DEFAULT_CORPUS]
    if missing := [str(c) for c in corpora if not c.exists()]:
        raise ConfigError(f"corpus {', '.join(missing)} not found; give --corpus DIR")
    default_questions = corpora[0] / "questions-dev.jsonl"
    questions = load_questions(args.questions or default_questions, args.queries)
    queries = [q.question for q in questions]
    result: dict[str, Any] = {"corpus": [str(c) for c in corpora], "queries": len(queries)}
    with tempfile.TemporaryDirectory(prefix="assistant-bench-", ignore_cleanup_errors=True) as tmp:
        if not args.scale_only:
            result |= bench_corpus(corpora, queries, Path(tmp) / "base", settings, args)
            print(format_table(ROWS, result["ours"], result["tutorial"]))
        if args.scale or args.synthetic_articles:
            scale = _scale_module()
            sizes = scale.sizes(corpora[0], args.scale, args.synthetic_articles)
            result["scale"] = scale.run(corpora[0], sizes, queries, Path(tmp), settings, args.seed)
            print("\nour pipeline on synthetic corpora (bench/synth_corpus.py):")
            print(scale.table(result["scale"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["_child"]:
        sys.exit("run `assistant bench`; this entry point is for its child processes")
    print(json.dumps(_run_child(sys.argv[2:])))
