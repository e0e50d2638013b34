"""Answers of a question set, written down, so a speed change can prove it changed no answer.

``record`` asks every question of the files through ``assistant.answer()`` on an existing home
(model loaded first, each question's cached vectors forgotten before it, so every answer pays
for its embeddings as a new question does) and writes the answer texts, decisions and
citations as JSON, with the answer latency p50/p95 in wall and CPU time. ``compare`` diffs two
such files: answer text, answered/declined, and each citation's chunk, span and quote must be
identical; the support scores are compared to 6 decimals (floating-point noise of a different
batch shape moves the 7th). The passages each question retrieved are recorded too: a question
whose retrieval differs between the two runs is listed and not compared (Chroma's HNSW search
can return other neighbours for the same question vector in another process).

    PYTHONPATH=$PWD nice .venv/bin/python bench/answer_snapshot.py record --home /tmp/idx-bbc \\
        ../shared/eval/bbc/questions-dev.jsonl bench/data/reader-questions.jsonl --out before.json
    python bench/answer_snapshot.py compare before.json after.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _questions(files: list[Path]) -> list[str]:
    out: list[str] = []
    for f in files:
        out += [json.loads(x)["question"] for x in f.read_text().splitlines() if x.strip()]
    return out


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(len(xs) * p))], 1)


def record(home: Path, files: list[Path], repeat: int) -> dict[str, Any]:
    from assistant.api import answer, open_index
    from assistant.evaluation.askers import forget_cached_queries
    from assistant.retrieval import HybridRetriever
    from assistant.settings import Settings

    settings = Settings(home=home)
    index = open_index(settings)
    retrieved: list[list[str]] = []
    own = HybridRetriever._get_relevant_documents

    def recording(self: HybridRetriever, query: str, **kw: Any) -> list[Any]:
        docs = own(self, query, **kw)
        retrieved.append([d.metadata["chunk_id"] for d in docs])
        return docs

    HybridRetriever._get_relevant_documents = recording  # type: ignore[method-assign]
    questions = _questions(files)
    answer(questions[0], settings=settings)  # the model loads here, outside any clock
    rows: list[dict[str, Any]] = []
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(repeat):
        rows = []
        for q in questions:
            forget_cached_queries(index.embedder)
            retrieved.clear()
            t0, c0 = time.perf_counter(), time.process_time()
            a = answer(q, settings=settings)
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            rows.append(
                {
                    "question": q,
                    "text": a.text,
                    "answered": a.answered,
                    "retrieved": [list(r) for r in retrieved],
                    "citations": [
                        {
                            "n": c.n,
                            "chunk_id": c.chunk_id,
                            "start": c.start,
                            "end": c.end,
                            "quote": c.quote,
                            "support": c.support,
                        }
                        for c in a.citations
                    ],
                }
            )
    return {
        "questions": len(questions),
        "repeat": repeat,
        "answer_p50_p95_ms": [_pct(wall, 0.5), _pct(wall, 0.95)],
        "answer_cpu_p50_p95_ms": [_pct(cpu, 0.5), _pct(cpu, 0.95)],
        "load": [round(x, 2) for x in os.getloadavg()],
        "answers": rows,
    }


def _key(c: dict[str, Any]) -> tuple[Any, ...]:
    support = c["support"]
    return (
        c["n"],
        c["chunk_id"],
        c["start"],
        c["end"],
        c["quote"],
        None if support is None else round(support, 6),
    )


def compare(before: Path, after: Path) -> int:
    a = json.loads(before.read_text())["answers"]
    b = json.loads(after.read_text())["answers"]
    if [r["question"] for r in a] != [r["question"] for r in b]:
        print("the two files hold different questions")
        return 2
    differ = 0
    exact = 0
    retrieval_moved = 0
    for x, y in zip(a, b, strict=True):
        same = (
            x["text"] == y["text"]
            and x["answered"] == y["answered"]
            and [_key(c) for c in x["citations"]] == [_key(c) for c in y["citations"]]
        )
        exact += x == y
        if x.get("retrieved") != y.get("retrieved"):
            # Chroma's HNSW search does not always return the same neighbours for the same
            # vector in two processes; an answer over other passages is no evidence either way.
            retrieval_moved += 1
            print(f"RETRIEVAL MOVED (not compared): {x['question']}")
            continue
        if not same:
            differ += 1
            print(f"DIFFERS: {x['question']}\n  before: {x['text']!r}\n  after:  {y['text']!r}")
    print(
        json.dumps(
            {
                "questions": len(a),
                "same_retrieval": len(a) - retrieval_moved,
                "differ": differ,
                "identical_incl_scores": exact,
            }
        )
    )
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record")
    r.add_argument("--home", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--repeat", type=int, default=1, help="ask the whole set this many times")
    r.add_argument("questions", type=Path, nargs="+")
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = p.parse_args(argv)
    if args.command == "compare":
        return compare(args.before, args.after)
    result = record(args.home, args.questions, args.repeat)
    args.out.write_text(json.dumps(result, indent=1))
    summary = {k: v for k, v in result.items() if k != "answers"}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
