"""Answer latency at 10x the BBC corpus without embedding 108k chunks (35 min on 2 quiet cores).

Builds a home of ``--articles`` synthetic articles made of real BBC chunks (``bench/lexical.py``'s
``synthetic_docs``: real headlines, real chunk texts and counts), written through the store's own
parts: each article's chunks go to Chroma and the article is committed to the catalog (with its
FTS5 terms) as a sync does it. **The stored vectors are random unit vectors**, not embeddings:
the dense side's cost (HNSW search over that many 384-d vectors) is real, its ranking is not.
Questions are then answered by the real pipeline (``assistant.evaluation.askers.ours_asker``:
the real embedder for the question, hybrid retrieval, the extractive answerer), timing
retrieval and the whole answer, wall and CPU, as ``assistant bench`` does.

    PYTHONPATH=$PWD nice .venv/bin/python bench/answer_at_scale.py --home /tmp/scale-home \\
        --articles 22250 --queries 50
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]


def build(home: Path, articles: int, work: Path, seed: int = 0) -> int:
    """Write the synthetic home (once; reused when its active generation exists)."""
    import lexical as bench  # bench/lexical.py
    import numpy as np

    from assistant.settings import Settings
    from index.pipeline import _metadata
    from index.records import Article, Chunk
    from index.store import Index

    settings = Settings(home=home)
    existing = Index.open(settings)
    if existing is not None:
        chunks = existing.catalog.counts()[1]
        existing.close()
        return chunks
    index = Index.create(settings)
    dim = len(index.embedder.embed_query("dimension"))
    rng = np.random.default_rng(seed)
    docs = bench.synthetic_docs(work, articles, seed=seed)
    total = 0
    for first in range(0, len(docs), 200):  # Chroma takes batches; commits stay per article
        batch = []
        for origin, title, parts in docs[first : first + 200]:
            text, spans = "", []
            for _, chunk_text, _, _ in parts:
                start = len(text) + (2 if text else 0)
                text = f"{text}\n\n{chunk_text}" if text else chunk_text
                spans.append((start, len(text)))
            article = Article(title=title, text=text, origin=origin)
            chunks = [Chunk(article.id, n, text[a:b], a, b) for n, (a, b) in enumerate(spans)]
            batch.append((article, chunks))
        flat = [(a, c) for a, cs in batch for c in cs]
        vectors = rng.standard_normal((len(flat), dim))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        index.vectors.upsert(
            [c.id for _, c in flat],
            vectors.tolist(),
            [_metadata(a, c) for a, c in flat],
            [c.text for _, c in flat],
        )
        for article, chunks in batch:
            index.catalog.commit_article(article, chunks, article.origin)
        total += len(flat)
    index.activate()
    index.close()
    return total


def measure(home: Path, questions: list[str]) -> dict[str, float]:
    """Retrieval alone (top 10, as ``assistant bench``), then the whole ``answer()`` (which
    retrieves again), each timed in wall and CPU time with no cached question vector."""
    from assistant.api import answer, open_index
    from assistant.evaluation.askers import forget_cached_queries
    from assistant.evaluation.metrics import DEPTH
    from assistant.retrieval import HybridRetriever
    from assistant.settings import Settings

    settings = Settings(home=home)
    index = open_index(settings)
    retriever = HybridRetriever(index=index, k=DEPTH)
    answer(questions[0], settings=settings)  # warm-up: the model loads here
    series: dict[str, list[float]] = {"retrieval": [], "answer": [], "lexical": []}
    cpu: dict[str, list[float]] = {"retrieval": [], "answer": [], "lexical": []}
    for q in questions:
        for name, call in (
            ("lexical", lambda q=q: index.search_lexical(q, 60)),
            ("retrieval", lambda q=q: retriever.invoke(q)),
            ("answer", lambda q=q: answer(q, settings=settings)),
        ):
            forget_cached_queries(index.embedder)
            t0, c0 = time.perf_counter(), time.process_time()
            call()
            series[name].append((time.perf_counter() - t0) * 1000)
            cpu[name].append((time.process_time() - c0) * 1000)

    def pct(xs: list[float], p: float) -> float:
        xs = sorted(xs)
        return round(xs[min(len(xs) - 1, int(len(xs) * p))], 1)

    out = {}
    for name in series:
        out[f"{name}_p50_p95_ms"] = [pct(series[name], 0.5), pct(series[name], 0.95)]
        out[f"{name}_cpu_p50_p95_ms"] = [pct(cpu[name], 0.5), pct(cpu[name], 0.95)]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--articles", type=int, default=22250)
    p.add_argument("--queries", type=int, default=50)
    p.add_argument(
        "--questions", type=Path, default=Path("/work/shared/eval/bbc/questions-dev.jsonl")
    )
    p.add_argument("--work", type=Path, default=Path("/tmp/lexical-bench"))
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    chunks = build(args.home, args.articles, args.work)
    built = {
        "build_s": round(time.perf_counter() - t0, 1),
        "build_cpu_s": round(time.process_time() - c0, 1),
    }
    questions = [json.loads(line)["question"] for line in args.questions.open()][: args.queries]
    print(json.dumps({"chunks": chunks, **built, **measure(args.home, questions)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
