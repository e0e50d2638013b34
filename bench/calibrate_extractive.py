"""Choose the extractive answerer's decline threshold on fit questions, report it on others.

Two steps, so retrieval runs once per question file:

  collect  over an existing index (ASSISTANT_HOME): retrieve for every question, run the
           extractive answerer with no score threshold, and keep per question its best
           sentence's score, whether the answer-type check already declines it, and whether
           the answer text holds the gold answer. ``--drop-gold`` retrieves without the gold
           article: a question whose answer is then nowhere in the passages becomes an
           unanswerable example. ``--split fit|test|all`` keeps questions by the hash split of
           ``bench/fit_reader.py``.
  choose   over collected files: for every threshold on a grid, answerable questions declined,
           unanswerable declined and gold answer in the answer; picks the highest threshold
           that declines at most ``--max-declined`` of the answerable questions (the issue's
           bound), and prints the figures of any ``--report`` files at that threshold.

  ASSISTANT_HOME=H python bench/calibrate_extractive.py collect Q.jsonl OUT.jsonl [--drop-gold]
  python bench/calibrate_extractive.py choose FIT1.jsonl FIT2.jsonl ... --report HELD.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_reader import _in_docs, _is_gold, collect_arguments, contains, load_questions, split_of


def collect(args: argparse.Namespace) -> None:
    from assistant.api import open_index
    from assistant.extractive import ExtractiveAnswerer
    from assistant.retrieval import HybridRetriever

    index = open_index()
    retriever = HybridRetriever(index=index, k=args.k + (6 if args.drop_gold else 0))
    answerer = ExtractiveAnswerer(index.embedder, threshold=float("-inf"))
    out = []
    for q in load_questions(Path(args.questions), args.format):
        if args.split != "all" and split_of(q["question"], args.test_share) != args.split:
            continue
        docs = retriever.invoke(q["question"])
        if args.drop_gold:
            docs = [d for d in docs if not _is_gold(d, q)]
        docs = docs[: args.k]
        answer = q["answer"]
        if args.drop_gold and not _in_docs(docs, answer):
            answer = None  # the detail is nowhere in what the answerer sees
        elif args.drop_gold:
            continue  # another article answers it too: not an unanswerable example
        ranked = answerer.score(q["question"], docs)
        text, _citations, answered = answerer.answer(q["question"], docs)
        out.append(
            {
                "question": q["question"],
                "answer": answer,
                "top": ranked[0].score if ranked else None,
                "type_ok": answered,
                "right": bool(answer) and answered and contains(text, answer),
            }
        )
    Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in out))
    print(f"wrote {len(out)} questions to {args.out}")


def _figures(rows: list[dict[str, Any]], tau: float) -> dict[str, Any]:
    def answered(r: dict[str, Any]) -> bool:
        return bool(r["type_ok"]) and r["top"] is not None and r["top"] >= tau

    ans = [r for r in rows if r["answer"]]
    una = [r for r in rows if not r["answer"]]
    return {
        "answerable": len(ans),
        "gold_in_answer": round(float(np.mean([answered(r) and r["right"] for r in ans])), 3)
        if ans
        else None,
        "answerable_declined": round(float(np.mean([not answered(r) for r in ans])), 3)
        if ans
        else None,
        "unanswerable": len(una),
        "unanswerable_declined": round(float(np.mean([not answered(r) for r in una])), 3)
        if una
        else None,
    }


def _read(paths: list[str]) -> list[dict[str, Any]]:
    return [json.loads(x) for p in paths for x in Path(p).read_text().splitlines() if x.strip()]


def choose(args: argparse.Namespace) -> None:
    fit = _read(args.fit)
    grid = np.round(np.arange(args.low, args.high + 1e-9, args.step), 3)
    best = float(grid[0])
    for tau in grid:
        figures = _figures(fit, float(tau))
        print(json.dumps({"threshold": float(tau), **figures}))
        if figures["answerable_declined"] <= args.max_declined:
            best = float(tau)
    print(json.dumps({"chosen": best, "fit": _figures(fit, best)}))
    for path in args.report or []:
        rows = _read([path])
        print(json.dumps({"report": path, "threshold": best, **_figures(rows, best)}))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    c = collect_arguments(sub.add_parser("collect"))
    c.add_argument("--split", choices=["fit", "test", "all"], default="all")
    h = sub.add_parser("choose")
    h.add_argument("fit", nargs="+")
    h.add_argument("--report", action="append")
    h.add_argument("--max-declined", type=float, default=0.05)
    h.add_argument("--low", type=float, default=0.2)
    h.add_argument("--high", type=float, default=0.7)
    h.add_argument("--step", type=float, default=0.01)
    args = p.parse_args(argv)
    collect(args) if args.step == "collect" else choose(args)


if __name__ == "__main__":
    main()
