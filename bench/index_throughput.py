"""Full-index throughput on a subset of a corpus: our sync against the LangChain tutorial
pipeline, in one run, each pipeline in its own fresh process, rounds interleaved.

Why a subset script beside `assistant bench`: the whole bench takes long on a shared 2-core
machine; this times only the full index, on the first N articles (sorted by path, so every run
sees the same ones), and reports CPU seconds (user+sys of the child, all its threads) beside
wall seconds, because wall time on a shared machine mostly measures the other jobs. It also
counts the word pieces each pipeline embeds, the work the model does.

Pipelines: ``ours`` (our sync with the configured backend, default ONNX fp32), ``tutorial``
(`assistant/evaluation/baseline.py`: RecursiveCharacterTextSplitter(1000, 200), embedded as
the tutorial does, by sentence-transformers on torch) and ``tutorial-onnx`` (the same splits
embedded by our ONNX embedder, to separate the splitter from the runtime). In every child the
model is loaded before the clock starts, as in `assistant bench`.

    nice python bench/index_throughput.py ../shared/eval/bbc --articles 300 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PIPELINES = ("ours", "tutorial", "tutorial-onnx")


def _subset(corpus: Path, articles: int, out: Path) -> int:
    """Copy the first ``articles`` article files (by path) into ``out``."""
    files = sorted(p for p in corpus.rglob("*.txt") if p.is_file())[:articles]
    for p in files:
        dest = out / p.relative_to(corpus)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dest)
    return len(files)


def _child(pipeline: str, corpus: str, work: str) -> dict[str, Any]:
    """One full index in this (fresh) process; prints its figures as JSON."""
    from assistant.settings import Settings
    from index.embeddings import load_embedder

    settings = Settings(home=Path(work) / "home")
    if pipeline == "ours":
        from index.chunking import embedding_text
        from index.sync import sync

        embedder = load_embedder(settings)
        embedder.embed_documents(["warm up"])  # the model is loaded before the clock
        wall, cpu = time.perf_counter(), time.process_time()
        report = sync(settings, [corpus], show_bar=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        from index.store import Index

        index = Index.open(settings)
        assert index is not None
        texts = [embedding_text(title, text) for _, title, text in index.catalog.all_chunks()]
        pieces = sum(embedder.count_tokens(texts)) + 2 * len(texts)  # + [CLS] and [SEP]
        return {
            "articles": report.added,
            "chunks": report.chunks_embedded,
            "wall_s": wall,
            "cpu_s": cpu,
            "pieces": pieces,
            "backend": embedder.backend,
        }
    from assistant.evaluation.baseline import TutorialPipeline

    if pipeline == "tutorial":
        embedder = load_embedder(settings.model_copy(update={"embedding_backend": "torch"}))
    else:
        embedder = load_embedder(settings)
    embedder.embed_documents(["warm up"])
    tutorial = TutorialPipeline(embedder, Path(work) / "tutorial", max_bytes=20 << 20)
    wall, cpu = time.perf_counter(), time.process_time()
    stats = tutorial.index([corpus])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    docs = tutorial.store.get(include=["documents"])["documents"]
    counter = load_embedder(settings)  # same tokenizer on every backend
    return {
        "articles": stats.articles,
        "chunks": stats.chunks,
        "wall_s": wall,
        "cpu_s": cpu,
        "pieces": sum(counter.count_tokens(docs)) + 2 * len(docs),
        "backend": embedder.backend,
    }


def _run(pipeline: str, corpus: Path, env: dict[str, str]) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"thr-{pipeline}-"))
    try:
        cmd = [sys.executable, __file__, "_child", pipeline, str(corpus), str(work)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        out = proc.stdout.read() if proc.stdout else ""
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"{pipeline} failed")
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        result["peak_rss_mb"] = usage.ru_maxrss / 1024
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        print(json.dumps(_child(*sys.argv[2:5])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--pipelines", nargs="+", default=list(PIPELINES), choices=PIPELINES)
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    args = parser.parse_args()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory(prefix="thr-corpus-") as tmp:
        n = _subset(args.corpus, args.articles, Path(tmp))
        print(f"{n} articles from {args.corpus}; load {os.getloadavg()}", file=sys.stderr)
        runs: dict[str, list[dict[str, Any]]] = {p: [] for p in args.pipelines}
        for r in range(args.rounds):
            for p in args.pipelines:
                runs[p].append(_run(p, Path(tmp), env))
                print(f"round {r + 1} {p}: {runs[p][-1]}", file=sys.stderr)
        print(f"load after {os.getloadavg()}", file=sys.stderr)
    table = {}
    for p, rs in runs.items():
        wall = statistics.median(x["wall_s"] for x in rs)
        cpu = statistics.median(x["cpu_s"] for x in rs)
        table[p] = {
            "backend": rs[0]["backend"],
            "articles": rs[0]["articles"],
            "chunks": rs[0]["chunks"],
            "pieces": rs[0]["pieces"],
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "articles_per_s": round(rs[0]["articles"] / wall, 2),
            "articles_per_cpu_s": round(rs[0]["articles"] / cpu, 2),
            "peak_rss_mb": round(max(x["peak_rss_mb"] for x in rs)),
        }
    for p, row in table.items():
        print(p, json.dumps(row))
    if "ours" in table:
        for p in table:
            if p != "ours":
                print(
                    f"ours vs {p}: wall {table[p]['wall_s'] / table['ours']['wall_s']:.2f}x, "
                    f"CPU {table[p]['cpu_s'] / table['ours']['cpu_s']:.2f}x"
                )
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "table": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
