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
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

from assistant.evaluation.metrics import answer_correct


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


def retrieval_grid(
    questions: list[dict[str, Any]],
    pool: dict[str, dict[str, Any]],
    home: Path,
    combos: list[tuple[str, float, float, int]],
) -> None:
    """Retrieval only (no reader), per (date_window mode, recency weight, age prior): gold
    article hit@1, MRR over the top 10 passages' articles, questions with a future article in
    the top 10, and questions whose top article is a newer non-gold one (and, of those, how many
    lack every gold answer string: a later report of the same story often still answers).
    Cheap enough to choose settings."""
    from assistant.api import open_index
    from assistant.retrieval import HybridRetriever
    from assistant.settings import Settings

    index = open_index(Settings(home=home))
    doc_of_url = {f"https://pool.invalid/{d}": d for d in pool}
    for mode, weight, prior, grace in combos:
        hit1 = rr = future = newer = newer_wrong = 0.0
        started = time.process_time()
        for q in questions:
            day = question_day(q)
            if mode == "none":  # the state before issue 13: no as-of, no window, no recency
                retriever = HybridRetriever(index=index, k=10)
            else:
                retriever = HybridRetriever(
                    index=index,
                    k=10,
                    as_of=day,
                    recency=weight,
                    age_prior=prior,
                    age_grace_days=grace,
                    date_window=mode,  # type: ignore[arg-type]
                )
            docs = retriever.invoke(q["question"])
            found = dict.fromkeys(doc_of_url.get(d.metadata.get("url") or "") for d in docs)
            ranked = [d for d in found if d]
            gold = set(q["gold_doc_ids"])
            rank = next((i for i, d in enumerate(ranked, 1) if d in gold), None)
            hit1 += rank == 1
            rr += 1 / rank if rank else 0
            future += any((a := article_day(pool[d])) is not None and a > day for d in ranked)
            if ranked and ranked[0] not in gold:
                top, golds = (
                    article_day(pool[ranked[0]]),
                    [article_day(pool[g]) for g in gold if g in pool],
                )
                known = [g for g in golds if g]
                is_newer = bool(top and known and top > max(known))
                newer += is_newer
                text = pool[ranked[0]]["text"]
                newer_wrong += is_newer and not any(
                    answer_correct(text, a) for a in q["answer_text"]
                )
        n = len(questions)
        print(
            f"grid window={mode} recency={weight} age_prior={prior} grace={grace}: hit@1 {hit1 / n:.3f}  "
            f"MRR@10 {rr / n:.3f}  future in top10 {int(future)}  newer non-gold top1 "
            f"{newer / n:.3f} (without the answer {newer_wrong / n:.3f})  "
            f"cpu {time.process_time() - started:.0f} s",
            flush=True,
        )


_TIME_NOTES = re.compile(
    r"Looking at articles from [^.]*\.\s*|As of [^:\[]*\[\d+\]: |The articles differ by date\. "
    r"|\b[Oo]n \d{1,2} [A-Z][a-z]{2} \d{4}: "
)


def answer_body(text: str) -> str:
    """The answer without the dates this feature adds, so a gold "12" cannot match "12 Jun"."""
    return _TIME_NOTES.sub("", text)


def run(
    questions: list[dict[str, Any]],
    pool: dict[str, dict[str, Any]],
    home: Path,
    *,
    as_of: bool,
    recency: float | None,
    date_window: str | None = None,
    age_prior: float | None = None,
    age_grace_days: int | None = None,
    dump: Path | None = None,
) -> dict[str, float]:
    from assistant.api import answer
    from assistant.settings import Settings

    update: dict[str, Any] = {"home": home}
    if recency is not None:
        update["recency"] = recency
    if date_window is not None:
        update["date_window"] = date_window
    if age_prior is not None:
        update["age_prior"] = age_prior
    if age_grace_days is not None:
        update["age_grace_days"] = age_grace_days
    settings = Settings(**update)
    doc_of_url = {f"https://pool.invalid/{d}": d for d in pool}
    future = gold_in = newer_top = answered = 0
    rows = []
    for q in questions:
        day = question_day(q)
        result = answer(q["question"], settings=settings, as_of=day if as_of else date(2100, 1, 1))
        answered += result.answered
        cited = [doc_of_url.get(c.url or "") for c in result.citations]
        if any((d := article_day(pool[c])) is not None and d > day for c in cited if c):
            future += 1
        body = answer_body(result.text)
        hit = any(answer_correct(body, g) for g in q["answer_text"])
        gold_in += hit
        rows.append(
            {
                "question": q["question"],
                "question_date": day.isoformat(),
                "gold": q["answer_text"],
                "gold_in_answer": hit,
                "answered": result.answered,
                "text": result.text,
                "cited": cited,
            }
        )
        top = next((c for c in cited if c), None)
        if top and top not in q["gold_doc_ids"]:
            top_day = article_day(pool[top])
            gold_days = [article_day(pool[g]) for g in q["gold_doc_ids"] if g in pool]
            known = [g for g in gold_days if g]
            if top_day and known and top_day > max(known):
                newer_top += 1
    if dump is not None:
        with dump.open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(row) + "\n" for row in rows)
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
        "--recency",
        type=float,
        action="append",
        help="recency weight(s) to try (default: settings)",
    )
    parser.add_argument(
        "--age-prior",
        type=float,
        action="append",
        help="age prior weight(s) for every question (default: settings)",
    )
    parser.add_argument(
        "--age-grace", type=int, action="append", help="age prior grace day(s) for the grid"
    )
    parser.add_argument(
        "--modes",
        default="off,prefer,filter",
        help="date_window modes the grid tries (comma-separated)",
    )
    parser.add_argument(
        "--dump", type=Path, help="write each run's answers as JSONL to DUMP-<run>.jsonl"
    )
    parser.add_argument("--index-only", action="store_true")
    parser.add_argument(
        "--grid",
        action="store_true",
        help="retrieval only: try date_window modes x recency weights (choose on --fold fit)",
    )
    parser.add_argument("--date-window", choices=("prefer", "filter", "off"))
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
    if args.grid:
        weights = args.recency or [0.0, 0.5, 2.0]
        priors = args.age_prior or [0.0]
        graces = args.age_grace or [0]
        combos = [("none", 0.0, 0.0, 0)] + [
            (mode, w, p, g)
            for mode in args.modes.split(",")
            for w in weights
            for p in priors
            for g in (graces if p > 0 else [0])
        ]
        retrieval_grid(questions, pool, args.home, combos)
        return 0
    if not args.no_baseline:
        stats = run(
            questions,
            pool,
            args.home,
            as_of=False,
            recency=0.0,
            date_window="off",
            age_prior=0.0,
            dump=args.dump and args.dump.with_name(f"{args.dump.name}-without.jsonl"),
        )
        print("without as-of (no window, no recency):", json.dumps(stats), flush=True)
    for weight in args.recency or [None]:
        for prior in args.age_prior or [None]:
            stats = run(
                questions,
                pool,
                args.home,
                as_of=True,
                recency=weight,
                date_window=args.date_window,
                age_prior=prior,
                age_grace_days=args.age_grace[0] if args.age_grace else None,
                dump=args.dump
                and args.dump.with_name(f"{args.dump.name}-r{weight}-p{prior}.jsonl"),
            )
            print(
                f"as of question date, recency={weight}, age_prior={prior}, "
                f"grace={args.age_grace[0] if args.age_grace else None}, "
                f"window={args.date_window}:",
                json.dumps(stats),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
