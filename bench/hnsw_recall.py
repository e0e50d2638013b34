"""How many of the exact nearest chunks Chroma's HNSW search returns, and what a query costs.

Exact top-k is computed with numpy over every vector stored in the index's collection; the
questions come from JSONL files (``question`` field). ``--ef`` first sets the collection's
``ef_search`` (as a sync with ``ASSISTANT_HNSW_EF_SEARCH`` would), so run it on a copy of a
home when comparing values.

    python bench/hnsw_recall.py --home /tmp/idx-bbc ../shared/eval/bbc/questions-dev.jsonl \
        bench/data/bbc-heldout-questions.jsonl [--k 30] [--ef 200]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("questions", nargs="+")
    p.add_argument("--home", required=True)
    p.add_argument("--k", type=int, default=30)
    p.add_argument("--ef", type=int, help="set the collection's ef_search first")
    args = p.parse_args(argv)

    from assistant.api import open_index
    from assistant.settings import Settings

    settings = Settings(home=Path(args.home))
    if args.ef:
        settings = settings.model_copy(update={"hnsw_ef_search": args.ef})
    index = open_index(settings)
    if args.ef:
        index.vectors.ensure_search_ef()
    stored = index.vectors.collection.get(include=["embeddings"])
    ids = np.array(stored["ids"])
    matrix = np.array(stored["embeddings"], dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    questions = [
        json.loads(line)["question"]
        for f in args.questions
        for line in Path(f).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    recall, cpu = [], []
    for q in questions:
        v = np.array(index.embedder.embed_query(q), dtype=np.float32)
        exact = set(ids[np.argsort(-(matrix @ v))[: args.k]])
        c0 = time.process_time()
        got = {i for i, _ in index.vectors.query(v.tolist(), args.k)}
        cpu.append((time.process_time() - c0) * 1000)
        recall.append(len(exact & got) / min(args.k, len(ids)))
    print(
        json.dumps(
            {
                "questions": len(questions),
                "chunks": len(ids),
                "k": args.k,
                "ef_search": index.vectors.collection.configuration["hnsw"]["ef_search"],
                "recall_mean": round(float(np.mean(recall)), 4),
                "all_found": round(float(np.mean([r == 1 for r in recall])), 3),
                "query_cpu_ms_p50": round(float(np.percentile(cpu, 50)), 2),
                "query_cpu_ms_p95": round(float(np.percentile(cpu, 95)), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
