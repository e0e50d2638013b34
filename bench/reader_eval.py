"""Measure the reader end to end over an existing index: retrieval + ``Reader.answer``.

Prints, for one question file and one split: gold answer in the answer text, answerable and
unanswerable questions declined, and the answer latency (retrieval + reader, model loaded,
one warm-up) p50/p95. The split is the one ``bench/fit_reader.py`` assigns from a hash of the
question text, so ``--split test`` reads only questions the fit never saw.

  ASSISTANT_HOME=/tmp/idx python bench/reader_eval.py QUESTIONS.jsonl [--format rtqa]
      [--split test|fit|all] [--test-share 0.34] [--show-misses]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_reader import contains, load_questions, split_of


class Read:
    """What the measurement reads of an answer."""

    def __init__(self, text: str, answered: bool, citations: int = 0) -> None:
        self.text, self.answered, self.citations = text, answered, citations

    @property
    def first_quote(self) -> str:
        """The answer up to its first ``[n]`` marker: the best sentence's quote."""
        return self.text.split(" [", 1)[0]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("questions")
    p.add_argument("--format", choices=["jsonl", "rtqa"], default="jsonl")
    p.add_argument("--split", choices=["test", "fit", "all"], default="all")
    p.add_argument("--test-share", type=float, default=0.34)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--show-misses", action="store_true")
    p.add_argument(
        "--answerer",
        choices=["fitted", "extractive"],
        default="fitted",
        help="which no-LLM answerer to measure (the ASSISTANT_ANSWERER choices)",
    )
    args = p.parse_args(argv)

    from assistant.api import open_index
    from assistant.chain import _extractive_reader
    from assistant.retrieval import HybridRetriever

    index = open_index()
    retriever = HybridRetriever(index=index, k=args.k)
    read_answer = _extractive_reader(index, args.answerer)
    questions = [
        q
        for q in load_questions(Path(args.questions), args.format)
        if args.split == "all" or split_of(q["question"], args.test_share) == args.split
    ]
    read_answer("warm up", retriever.invoke("warm up"))
    rows = []
    cpu: list[float] = []  # the machine is shared: CPU time beside wall time
    for q in questions:
        t0, c0 = time.perf_counter(), time.process_time()
        docs = retriever.invoke(q["question"])
        text, citations, answered, _short = read_answer(q["question"], docs)
        out = Read(text, answered, len(citations) if answered else 0)
        ms = (time.perf_counter() - t0) * 1000
        cpu.append((time.process_time() - c0) * 1000)
        rows.append((q, out, ms))
        if args.show_misses and q["answer"] and not contains(out.text, q["answer"]):
            print(f"MISS {q['question']!r} gold={q['answer']!r} -> {out.text[:160]!r}")
        if args.show_misses and not q["answer"] and out.answered:
            print(f"FALSE ANSWER {q['question']!r} -> {out.text[:160]!r}")
    ans = [(q, o) for q, o, _ in rows if q["answer"]]
    una = [(q, o) for q, o, _ in rows if not q["answer"]]
    ms = [m for _, _, m in rows]

    def share(values: list[bool]) -> float | None:
        return round(float(np.mean(values)), 3) if values else None

    report = {
        "file": args.questions,
        "split": args.split,
        "questions": len(rows),
        "answerable": len(ans),
        "gold_in_answer": share([contains(o.text, q["answer"]) for q, o in ans]),
        "gold_in_first_quote": share(
            [o.answered and contains(o.first_quote, q["answer"]) for q, o in ans]
        ),
        "citations_mean": round(float(np.mean([o.citations for _, o in ans if o.answered])), 2)
        if any(o.answered for _, o in ans)
        else None,
        "answerable_declined": share([not o.answered for _, o in ans]),
        "unanswerable": len(una),
        "unanswerable_declined": share([not o.answered for _, o in una]),
        "latency_ms_p50": round(float(np.percentile(ms, 50)), 1) if ms else None,
        "latency_ms_p95": round(float(np.percentile(ms, 95)), 1) if ms else None,
        "cpu_ms_p50": round(float(np.percentile(cpu, 50)), 1) if cpu else None,
        "cpu_ms_p95": round(float(np.percentile(cpu, 95)), 1) if cpu else None,
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
