"""RealTime QA, asked as of each question's date versus without: does time-awareness help?

Usage (nice it; the machine is shared)::

    nice python bench/realtimeqa_time.py /work/shared/eval/realtimeqa --home /tmp/rtqa-home

The gold subset (questions with a gold article) is asked over a pool of the gold articles plus
each question's top-3 search results. The pool is indexed once into ``--home`` and reused.
Per run it prints: answers citing an article published after the question date, gold answer
string in the answer text, and questions whose top retrieved article is a newer non-gold one.
``--fold fit|report|all`` splits questions by week (even/odd index) so a weight can be chosen on
one half and reported on the other.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import string
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any


def load(data: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The gold-subset questions and the pool (gold + each question's top-3 GCS articles)."""
    questions = [json.loads(line) for line in (data / "questions.jsonl").open(encoding="utf-8")]
    gold = [q for q in questions if q.get("gold_doc_ids")]
    with gzip.open(data / "articles.jsonl.gz", "rt", encoding="utf-8") as fh:
        articles = {a["doc_id"]: a for a in map(json.loads, fh)}
    wanted: set[str] = set()
    for q in gold:
        wanted.update(q["gold_doc_ids"])
        wanted.update(q.get("gcs_doc_ids", [])[:3])
    pool = {d: articles[d] for d in wanted if d in articles and articles[d].get("text", "").strip()}
    return gold, pool


def question_day(q: dict[str, Any]) -> date:
    return datetime.strptime(q["question_date"], "%Y/%m/%d").date()


def article_day(a: dict[str, Any]) -> date | None:
    raw = a.get("publish_date")
    if not raw:
        return None
    try:
        return datetime.strptime(str(raw)[:10].replace("-", "/"), "%Y/%m/%d").date()
    except ValueError:
        return None


def ensure_index(pool: dict[str, dict[str, Any]], home: Path) -> None:
    """Index the pool into ``home`` unless it is already there (one JSONL file, doc_id as url)."""
    from assistant.api import index_status, sync_articles
    from assistant.settings import Settings

    settings = Settings(home=home)
    if index_status(settings).articles >= len(pool):
        return
    folder = home / "pool"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "pool.jsonl").open("w", encoding="utf-8") as out:
        for doc_id, a in sorted(pool.items()):
            day = article_day(a)
            record = {
                "title": a.get("title") or "",
                "text": a["text"],
                "url": f"https://pool.invalid/{doc_id}",
                "published": day.isoformat() if day else None,
                "source": "rtqa",
            }
            out.write(json.dumps(record) + "\n")
    started = time.time()
    sync_articles([str(folder)], settings=settings)
    print(f"indexed {len(pool)} articles in {time.time() - started:.0f} s", file=sys.stderr)


def normalise(text: str) -> str:
    text = text.lower().replace("“", "").replace("”", "").replace("’", "'")
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return re.sub(r"\s+", " ", text).strip()


def run(
    questions: list[dict[str, Any]],
    pool: dict[str, dict[str, Any]],
    home: Path,
    *,
    as_of: bool,
    recency: float | None,
) -> dict[str, float]:
    from assistant.api import answer
    from assistant.settings import Settings

    update: dict[str, Any] = {"home": home}
    if recency is not None:
        update["recency"] = recency
    settings = Settings(**update)
    doc_of_url = {f"https://pool.invalid/{d}": d for d in pool}
    future = gold_in = newer_top = answered = 0
    for q in questions:
        day = question_day(q)
        result = answer(q["question"], settings=settings, as_of=day if as_of else date(2100, 1, 1))
        answered += result.answered
        cited = [doc_of_url.get(c.url or "") for c in result.citations]
        if any((d := article_day(pool[c])) is not None and d > day for c in cited if c):
            future += 1
        golds = {normalise(t) for t in q["answer_text"]}
        if any(g and g in normalise(result.text) for g in golds):
            gold_in += 1
        top = next((c for c in cited if c), None)
        if top and top not in q["gold_doc_ids"]:
            top_day = article_day(pool[top])
            gold_days = [article_day(pool[g]) for g in q["gold_doc_ids"] if g in pool]
            known = [g for g in gold_days if g]
            if top_day and known and top_day > max(known):
                newer_top += 1
    n = len(questions)
    return {
        "questions": n,
        "answered": answered,
        "cites_future": future,
        "gold_in_answer": round(gold_in / n, 3),
        "newer_nongold_top": round(newer_top / n, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("data", type=Path, help="the realtimeqa folder")
    parser.add_argument("--home", type=Path, default=Path("/tmp/rtqa-time-home"))
    parser.add_argument("--fold", choices=("fit", "report", "all"), default="all")
    parser.add_argument(
        "--recency", type=float, action="append", help="recency weight(s) to try (default: settings)"
    )
    parser.add_argument("--index-only", action="store_true")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run without as-of")
    args = parser.parse_args(argv)
    questions, pool = load(args.data)
    ensure_index(pool, args.home)
    if args.index_only:
        return 0
    weeks = sorted({q["week"] for q in questions})
    if args.fold != "all":
        keep = {w for i, w in enumerate(weeks) if (i % 2 == 0) == (args.fold == "fit")}
        questions = [q for q in questions if q["week"] in keep]
    print(f"{len(questions)} questions ({args.fold} fold), pool {len(pool)} articles")
    if not args.no_baseline:
        print("without as-of:", json.dumps(run(questions, pool, args.home, as_of=False, recency=0.0)))
    for weight in args.recency or [None]:
        stats = run(questions, pool, args.home, as_of=True, recency=weight)
        print(f"as of question date, recency={weight}:", json.dumps(stats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
