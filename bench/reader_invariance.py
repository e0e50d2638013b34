"""Do the reader's decisions move when unrelated articles are added?

Asks every question of a file over two existing indexes (say, the sample alone and the sample
plus the BBC corpus) and prints the questions whose answered/declined decision or first cited
sentence differs, then a JSON summary line.

  python bench/reader_invariance.py QUESTIONS.jsonl --home /tmp/alone --home /tmp/crowded
      [--only-prefix sample:]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def decisions(home: str, questions: list[str]) -> dict[str, tuple[bool, str | None]]:
    from assistant import answer
    from assistant.settings import Settings

    settings = Settings(home=Path(home))
    out = {}
    for q in questions:
        a = answer(q, settings=settings)
        out[q] = (a.answered, a.citations[0].quote if a.answered and a.citations else None)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("questions")
    p.add_argument("--home", action="append", required=True)
    p.add_argument("--only-prefix", default="", help="keep questions whose article starts so")
    args = p.parse_args(argv)
    rows = [json.loads(x) for x in Path(args.questions).read_text().splitlines() if x.strip()]
    qs = [r["question"] for r in rows if str(r.get("article") or "").startswith(args.only_prefix)]
    a, b = (decisions(h, qs) for h in args.home[:2])
    flips = [q for q in qs if a[q][0] != b[q][0]]
    moved = [q for q in qs if a[q][0] and b[q][0] and a[q][1] != b[q][1]]
    for q in flips + moved:
        print(f"{q!r}: {a[q]} -> {b[q]}")
    print(
        json.dumps(
            {
                "questions": len(qs),
                "answered": [sum(x[q][0] for q in qs) for x in (a, b)],
                "decision_flips": len(flips),
                "cited_sentence_changed": len(moved),
            }
        )
    )


if __name__ == "__main__":
    main()
