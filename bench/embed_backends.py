"""Embedding backends side by side: torch (sentence-transformers), ONNX fp32, ONNX int8.

Per backend, in one run so the machine's load is shared alike: document throughput on real
chunks (BBC stories cut by our chunker), question-embedding p50, and a cold ``assistant ask``
on the sample index (wall time, CPU time, peak RSS, whether torch/gradio were imported). The
backends are interleaved round by round, so a change of load hits each of them.

    .venv/bin/python bench/embed_backends.py --corpus ../shared/eval/bbc --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["torch", "onnx", "onnx-int8"]
QUESTION = "What did Bessent threaten?"
_PROBE = """
import json, sys, time
t0 = time.perf_counter()
from assistant.cli import main
code = main(["ask", sys.argv[1]])
# VmHWM: this process's own peak (a forked child's ru_maxrss counts the parent's pages too)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"seconds": time.perf_counter() - t0, "code": code, "rss_kb": int(hwm),
    "torch": "torch" in sys.modules, "gradio": "gradio" in sys.modules}), file=sys.stderr)
"""


def _chunk_texts(corpus: Path, limit: int) -> list[str]:
    from assistant.settings import Settings
    from index.chunking import Chunker, embedding_text
    from index.embeddings import load_embedder
    from index.loaders import iter_article_files, load_file

    chunker = Chunker(load_embedder(Settings(embedding_backend="onnx")), 128)
    texts: list[str] = []
    for path in iter_article_files(corpus):
        for article in load_file(path, max_bytes=20_000_000).articles:
            texts += [embedding_text(article.title, c.text) for c in chunker.split(article)]
        if len(texts) >= limit:
            break
    return texts[:limit]


def _cold_ask(home: Path, backend: str, exports: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "ASSISTANT_HOME": str(home),
        "ASSISTANT_EMBEDDING_BACKEND": backend,
        "ASSISTANT_EMBEDDING_EXPORT_DIR": str(exports),
        "PYTHONPATH": str(ROOT),
    }
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _PROBE, QUESTION],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read() if proc.stderr else ""
    probe = json.loads(err.strip().splitlines()[-1])
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_mb": probe["rss_kb"] / 1024,
        "torch": probe["torch"],
        "gradio": probe["gradio"],
        "ok": os.waitstatus_to_exitcode(status) == 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "eval" / "bbc")
    parser.add_argument("--chunks", type=int, default=512, help="chunks embedded per backend")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--exports", type=Path, default=None, help="ONNX export folder to reuse")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from assistant.settings import Settings
    from index.embeddings import load_embedder
    from index.sync import sync

    work = Path(tempfile.mkdtemp(prefix="embed-bench-"))
    exports = args.exports or work / "models"
    os.environ["ASSISTANT_EMBEDDING_EXPORT_DIR"] = str(exports)
    texts = _chunk_texts(args.corpus, args.chunks)
    embedders = {b: load_embedder(Settings(home=work / b, embedding_backend=b)) for b in BACKENDS}
    for b, e in embedders.items():
        assert e.backend == b, f"{b} fell back to {e.backend}"
        e.embed_documents(texts[:8])  # warm-up: no clock includes loading
    questions = [f"{QUESTION} ({i})" for i in range(args.queries)]
    throughput: dict[str, list[float]] = {b: [] for b in BACKENDS}
    query_ms: dict[str, list[float]] = {b: [] for b in BACKENDS}
    for _ in range(args.rounds):
        for b, e in embedders.items():
            start = time.perf_counter()
            e.embed_documents(texts)
            throughput[b].append(len(texts) / (time.perf_counter() - start))
            for q in questions:
                start = time.perf_counter()
                e.embed_query(q)
                query_ms[b].append(1000 * (time.perf_counter() - start))
            e.clear_query_cache()  # type: ignore[attr-defined]

    cold: dict[str, list[dict[str, Any]]] = {b: [] for b in BACKENDS}
    sample = ROOT / "assistant" / "sample_articles"
    for b in BACKENDS:
        sync(Settings(home=work / f"ask-{b}", embedding_backend=b), [str(sample)], show_bar=False)
    for _ in range(args.rounds):
        for b in BACKENDS:
            cold[b].append(_cold_ask(work / f"ask-{b}", b, exports))

    rows = {}
    for b in BACKENDS:
        rows[b] = {
            "chunks_per_s": round(statistics.median(throughput[b]), 1),
            "query_p50_ms": round(statistics.median(query_ms[b]), 2),
            "cold_ask_wall_s": round(statistics.median(r["wall_s"] for r in cold[b]), 2),
            "cold_ask_cpu_s": round(statistics.median(r["cpu_s"] for r in cold[b]), 2),
            "cold_ask_rss_mb": round(max(r["rss_mb"] for r in cold[b])),
            "ask_imports_torch": any(r["torch"] for r in cold[b]),
            "ask_imports_gradio": any(r["gradio"] for r in cold[b]),
        }
    print(f"{'backend':10} " + " ".join(f"{k:>18}" for k in rows["torch"]))
    for b, row in rows.items():
        print(f"{b:10} " + " ".join(f"{v!s:>18}" for v in row.values()))
    print("load:", os.getloadavg())
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "load": os.getloadavg()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
