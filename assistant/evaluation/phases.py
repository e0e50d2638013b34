"""The phases of `assistant bench`, each timed in a fresh child process
(``python -m assistant.evaluation.phases _child ...``), so its peak RSS comes from the kernel
(``os.wait4``) rather than from sampling. What each phase measures, and why, is described in
``assistant.evaluation.benchmark``, which runs them.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError, ConfigError
from assistant.evaluation.askers import ours_asker
from assistant.evaluation.metrics import Response, percentile
from assistant.settings import Settings
from index.settings import IndexSettings

CHANGE = "\n\nThis paragraph was added by the benchmark, so the article has changed.\n"
# Every index-layer setting but the home (each child gets its own) reaches the children, so a
# bench of a backend, search width or device measures that and not the defaults; of the
# answering settings only ``k`` (the bench answers extractively).
_ENV_FIELDS = [f for f in IndexSettings.model_fields if f != "home"] + ["k"]


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


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
    cmd = [sys.executable, "-m", "assistant.evaluation.phases", "_child", *args]
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
    from assistant.evaluation.baseline import TutorialPipeline, tutorial_asker
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
    embedder = load_embedder(settings)
    pipeline = TutorialPipeline(embedder, Path(rest[0]), max_bytes=max_bytes)
    if kind == "index-tutorial":
        stats = pipeline.index(rest[1:])
        seconds = time.perf_counter() - started
        # the backend that ran: load_embedder falls back when the asked one cannot load
        figures = {"seconds": seconds, "articles": stats.articles, "chunks": stats.chunks}
        return figures | {"embedding_backend": embedder.backend}
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
        embedding_backend=full["embedding_backend"],
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
        tutorial_settings = tutorial_embedding(settings, args.tutorial_embedder)
        runtime = tutorial_settings.embedding_backend
        _log(f"the LangChain tutorial pipeline on the same corpus (asking for backend {runtime})")
        tutorial = _tutorial(roots, changed, work, tutorial_settings)
        ask = [sys.executable, "-m", "assistant.evaluation.baseline", "ask", str(work / "tutorial")]
        ask.append(queries[0])
        env = _env(tutorial_settings, work / "unused-home")
        tutorial |= _cold_start(ask, env, args.cold_runs)
        result["tutorial"] = tutorial
    return result


def tutorial_embedding(settings: Settings, embedder: str) -> Settings:
    """The settings the tutorial pipeline runs with. As published, the LangChain tutorial
    embeds through sentence-transformers on torch (``HuggingFaceEmbeddings``): the same model
    and vectors as ours, the runtime issue 15 set out to beat. With ``"ours"`` it shares our
    backend, so the comparison times the pipelines alone (splitting, chunk count, stores)."""
    if embedder == "published":
        return settings.model_copy(update={"embedding_backend": "torch"})
    return settings


if __name__ == "__main__":
    if sys.argv[1:2] != ["_child"]:
        sys.exit("run `assistant bench`; this entry point is for its child processes")
    print(json.dumps(_run_child(sys.argv[2:])))
