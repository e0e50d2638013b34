"""The scale simulation behind ``assistant bench --scale F`` / ``--synthetic-articles N``.

Our pipeline (full index, no-change re-sync, one-article change, query latency; peak RSS and
disk) on synthetic corpora from ``synth_corpus``, one size after another, each deleted when
measured, so the figures show how cost grows with the corpus. The tutorial pipeline is not
run at scale: at 10x it would take hours on a 2-core machine, and the real-corpus run already
gives the ratio.

    .venv/bin/assistant bench --corpus ../shared/eval/bbc --scale-only --scale 10 50 --json bench-scale.json
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.evaluation.phases import bench_ours, disk_mb
from assistant.evaluation.report import cell
from assistant.evaluation.synth_corpus import generate, read_pool
from assistant.settings import Settings

KEYS = ["size", "chunks", "corpus_mb", "index_seconds", "chunks_per_s", "resync_seconds"]
KEYS += ["change_seconds", "retrieval_p50_ms", "retrieval_p95_ms", "answer_p50_ms"]
KEYS += ["answer_p95_ms", "index_rss_mb", "query_rss_mb", "disk_mb"]


def sizes(source: Path, factors: Sequence[float], counts: Sequence[int]) -> list[int]:
    """Article counts: explicit ones, then each factor times the real corpus's article count."""
    base = len(read_pool(source).shapes) if factors else 0
    return [*counts, *(round(f * base) for f in factors)]


def run(
    source: Path, counts: list[int], queries: list[str], work: Path, settings: Settings, seed: int
) -> list[dict[str, Any]]:
    """Measure our pipeline on a synthetic corpus of each size."""
    out = []
    for n in counts:
        folder = work / f"synth-{n}"
        print(f"[bench] synthetic corpus of {n} articles", file=sys.stderr, flush=True)
        paths = generate(source, folder / "corpus", n, seed=seed)
        (folder / "queries.json").write_text(json.dumps(queries), encoding="utf-8")
        figures = bench_ours([str(folder / "corpus")], paths[len(paths) // 2], folder, settings)
        out.append({"size": n, "corpus_mb": disk_mb(folder / "corpus"), **figures})
        shutil.rmtree(folder, ignore_errors=True)
    return out


def table(runs: list[dict[str, Any]]) -> str:
    """One column per corpus size."""
    return "\n".join(f"{k:18}" + "".join(f"{cell(r.get(k)):>12}" for r in runs) for k in KEYS)
