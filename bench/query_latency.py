"""Query-embedding latency of the ONNX exports in one folder, interleaved in one process.

Every export format found (``onnx-*-f1``: plain graph, ``onnx-*-f2``: fused graph) runs its fp32
model, and the newest its int8 one, on the same questions in turn, so load changes hit all
alike. Prints p50 wall and p50 CPU (``process_time``, all threads) per variant.

    python bench/query_latency.py $ASSISTANT_HOME/models ../shared/eval/bbc/questions-dev.jsonl
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from index.onnx_embedder import OnnxRunner


def main(models: Path, questions: Path, rounds: int = 4) -> None:
    qs = [json.loads(line)["question"] for line in questions.open(encoding="utf-8")]
    runners: dict[str, OnnxRunner] = {}
    exports = sorted(models.glob("onnx-*-f*"), key=lambda p: p.name.rsplit("-f", 1)[1])
    for d in exports:
        manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
        label = f"format {manifest['format']} fp32" + (" fused" if manifest.get("fused") else "")
        runners[label] = OnnxRunner(d, manifest, int8=False)
    if exports:
        manifest = json.loads((exports[-1] / "manifest.json").read_text(encoding="utf-8"))
        runners[f"format {manifest['format']} int8"] = OnnxRunner(exports[-1], manifest, int8=True)
    for r in runners.values():
        r.embed(["warm up"])
    wall: dict[str, list[float]] = {k: [] for k in runners}
    cpu: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):
        for q in qs:
            for k, r in runners.items():
                w, c = time.perf_counter(), time.process_time()
                r.embed([q])
                wall[k].append(time.perf_counter() - w)
                cpu[k].append(time.process_time() - c)
    first = next(iter(runners.values()))
    pieces = statistics.median(len(first.encoder.encode(q).ids) for q in qs)
    print(
        f"{len(qs)} questions x {rounds} rounds, median {pieces} word pieces; load "
        f"{os.getloadavg()}"
    )
    for k in runners:
        print(
            f"{k:24s} p50 wall {np.median(wall[k]) * 1000:.2f} ms, CPU "
            f"{np.median(cpu[k]) * 1000:.2f} ms; p95 wall {np.percentile(wall[k], 95) * 1000:.2f} ms"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
