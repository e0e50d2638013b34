"""`assistant eval`: answer quality on a question set, ours beside the LangChain tutorial's.

Questions are JSONL (``question``, ``answer``, ``article``, ``evidence``; unanswerable ones
carry ``"unanswerable": true``); ``article`` is relative to the questions file's folder.
Given a RealTime QA folder instead (``questions.jsonl`` + ``articles.jsonl.gz``), it indexes
an article pool and reports gold-article hit@k, answer and multiple-choice figures beside the
dataset's anchors (rules in ``assistant/evaluation/realtimeqa.py``; ``--pool``, ``--as-of``).

Scoring rules (the same for both pipelines, so neither is favoured by how it chunks):

* A passage is from the **gold article** when its file path ends with ``article``, or its
  article text equals the gold article's (the index keeps one copy of duplicated stories).
* A passage **holds the evidence** when the whitespace- and case-normalised evidence is a
  substring of it, or when it is from the gold article and its span in the article text
  overlaps the evidence's span there: sentence-bounded chunks (ours) and 1,000-character
  windows (the tutorial's) can both cut an evidence passage in two.
* recall@k / MRR@10: the rank of the first passage holding the evidence (answerable questions
  that give their evidence; a set without evidence quotes prints "-").
* Answer accuracy: the answer was given (not declined) and contains the gold answer as whole
  words, ignoring case, accents and punctuation ("140" is not in "1400"; the rule of every
  answer measure, ``metrics.answer_correct``). The tutorial's answer is its top passage and it
  never declines.
* Cited evidence recall / citation precision: over the passages the answer cites (the
  tutorial's: the four it retrieved). Precision is the share from the gold article or holding
  the evidence, averaged over answered answerable questions; declines cite nothing.
* Latency: wall time of ``answer()`` per question (model loaded by one untimed warm-up).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from assistant.evaluation import realtimeqa
from assistant.evaluation.datasets import load_questions
from assistant.evaluation.metrics import Outcome, Question, Response, score, summarise
from assistant.settings import Settings


def _log(message: str) -> None:
    print(f"[eval] {message}", file=sys.stderr, flush=True)


def _run(questions: Sequence[Question], ask: Callable[[str], Response], name: str) -> list[Outcome]:
    if questions:
        ask(questions[0].question)  # warm-up: the model loads outside the timings
    outcomes = []
    for i, q in enumerate(questions, 1):
        outcomes.append(score(q, ask(q.question)))
        if i % 10 == 0 or i == len(questions):
            _log(f"{name}: {i}/{len(questions)} questions")
    return outcomes


# --- output ------------------------------------------------------------------------------------
ROWS = [  # (label, key in ours, key in the tutorial's figures)
    ("evidence recall@1", "recall_at_1", "recall_at_1"),
    ("evidence recall@4", "recall_at_4", "recall_at_4"),
    ("evidence recall@5", "recall_at_5", "recall_at_5"),
    ("MRR@10", "mrr_at_10", "mrr_at_10"),
    (
        "evidence in cited passages (tutorial: top 4)",
        "cited_evidence_recall",
        "cited_evidence_recall",
    ),
    ("answer accuracy", "answer_accuracy", "answer_accuracy"),
    ("citation precision", "citation_precision", "citation_precision"),
    ("decline accuracy (unanswerable)", "decline_accuracy", "decline_accuracy"),
    ("false declines (answerable)", "false_decline_rate", "false_decline_rate"),
    ("answer latency p50 ms", "latency_p50_ms", "latency_p50_ms"),
    ("answer latency p95 ms", "latency_p95_ms", "latency_p95_ms"),
    ("retrieval latency p50 ms", "retrieval_p50_ms", "retrieval_p50_ms"),
    ("retrieval latency p95 ms", "retrieval_p95_ms", "retrieval_p95_ms"),
    ("index time s", "index_seconds", "index_seconds"),
    ("chunks", "chunks", "chunks"),
]


def report_rows(
    questions: Sequence[Question], ours: Sequence[Outcome], tutorial: Sequence[Outcome] | None
) -> list[dict[str, Any]]:
    """The per-question table for ``--report``: what each pipeline got right or wrong."""
    rows = []
    for i, (q, o) in enumerate(zip(questions, ours, strict=True)):
        row: dict[str, Any] = {"question": q.question, "answerable": q.answerable}
        row |= {"gold_answer": q.answer, "article": q.article}
        row["evidence_located"] = q.evidence_span is not None
        row |= asdict(o)
        if tutorial is not None:
            picked = ("rank", "correct", "cited_evidence", "precision", "text")
            row |= {f"tutorial_{k}": v for k, v in asdict(tutorial[i]).items() if k in picked}
        rows.append(row)
    return rows


CORPUS_HELP = (
    "folder or file to index into a temp home (repeatable; default: the questions' folder)"
)


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``assistant eval``; the CLI's subcommand shows them in its ``--help``."""
    p.add_argument(
        "questions",
        type=Path,
        help="JSONL questions file, or a RealTime QA folder (questions.jsonl, articles.jsonl.gz)",
    )
    p.add_argument("--corpus", action="append", metavar="DIR", help=CORPUS_HELP)
    p.add_argument(
        "--use-current", action="store_true", help="use the current index, not a temp one"
    )
    p.add_argument("--baseline", action="store_true", help="also run the LangChain tutorial")
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--k", type=int, help="passages per answer (default: the settings' k)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON (last line)")
    p.add_argument("--report", type=Path, metavar="FILE", help="per-question table (.json/.csv)")
    rtqa = p.add_argument_group("RealTime QA (when QUESTIONS is its folder)")
    rtqa.add_argument(
        "--pool",
        choices=realtimeqa.POOLS,
        default="gold+top3",
        help="articles indexed: the gold articles plus each question's top-3 search results "
        "(default, ~641 articles), or all of the folder's",
    )
    rtqa.add_argument(
        "--as-of",
        action="store_true",
        help="ask each question as of its question_date (when answer() accepts as_of)",
    )
    return p


def evaluate(args: argparse.Namespace, settings: Settings, tmp: Path) -> dict[str, Any]:
    """Index (unless --use-current), run both pipelines, return summary and report rows."""
    from assistant.api import open_index, sync_articles
    from assistant.evaluation.askers import ours_asker
    from index.embeddings import load_embedder

    questions = load_questions(args.questions, args.limit)
    roots = [str(Path(c).absolute()) for c in args.corpus or []]
    summary: dict[str, Any] = {"questions": len(questions)}
    summary["answerable"] = sum(q.answerable for q in questions)
    if args.use_current:
        index = open_index(settings)
        index_seconds = None
        roots = roots or sorted({s.root for s in index.catalog.sources().values()})
    else:
        settings = settings.model_copy(update={"home": tmp / "home"})
        roots = roots or [str(args.questions.parent.absolute())]
        _log(f"indexing {', '.join(roots)} into a temporary home")
        load_embedder(settings).embed_query("warm-up")  # both pipelines index with it loaded
        started = time.perf_counter()
        report = sync_articles(roots, settings=settings)
        index_seconds = time.perf_counter() - started
        if report.failed:
            _log(f"{len(report.failed)} sources failed to load (first: {report.failed[0].path})")
        index = open_index(settings)
    articles, chunks = index.catalog.counts()
    ours = _run(questions, ours_asker(settings, args.k), "ours")
    summary["ours"] = summarise(questions, ours)
    summary["ours"] |= {"index_seconds": index_seconds, "articles": articles, "chunks": chunks}
    tutorial = None
    if args.baseline:
        from assistant.evaluation.baseline import TutorialPipeline, tutorial_asker

        _log("indexing the same corpus with the LangChain tutorial pipeline")
        max_bytes = int(settings.max_file_mb * 1024 * 1024)
        pipeline = TutorialPipeline(load_embedder(settings), tmp / "tutorial", max_bytes=max_bytes)
        stats = pipeline.index(roots)
        tutorial = _run(questions, tutorial_asker(pipeline), "tutorial")
        summary["tutorial"] = summarise(questions, tutorial)
        summary["tutorial"] |= {
            "index_seconds": stats.seconds,
            "articles": stats.articles,
            "chunks": stats.chunks,
        }
    summary["rows"] = report_rows(questions, ours, tutorial)
    return summary


def _parser() -> argparse.ArgumentParser:
    return add_arguments(
        argparse.ArgumentParser(prog="assistant eval", description=__doc__.split("\n")[0])
    )


def main(argv: Sequence[str], settings: Settings) -> int:
    """Entry point for a list of arguments; returns the exit code."""
    return run(_parser().parse_args([a for a in argv if a != "--"]), settings)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``assistant eval`` with parsed arguments; returns the exit code."""
    from assistant.evaluation.baseline import require_eval_extra
    from assistant.evaluation.report import format_table, write_rows

    if realtimeqa.is_dataset(args.questions):
        return _run_realtimeqa(args, settings)
    if args.baseline:
        require_eval_extra("assistant eval --baseline")
    with tempfile.TemporaryDirectory(prefix="assistant-eval-", ignore_cleanup_errors=True) as tmp:
        summary = evaluate(args, settings, Path(tmp))
    rows = summary.pop("rows")
    print(format_table(ROWS, summary["ours"], summary.get("tutorial")))
    print(f"{summary['questions']} questions ({summary['answerable']} answerable)")
    if args.report:
        write_rows(args.report, rows)
        print(f"per-question report: {args.report}")
    if args.json:
        print(json.dumps(summary))
    return 0


def _run_realtimeqa(args: argparse.Namespace, settings: Settings) -> int:
    """``assistant eval FOLDER`` on RealTime QA: ours only (its figures sit beside upstream's)."""
    from assistant.errors import ConfigError
    from assistant.evaluation.report import write_rows

    if args.baseline or args.use_current or args.corpus:
        raise ConfigError(
            "RealTime QA indexes its own article pool: drop --baseline, --use-current and --corpus"
        )
    with tempfile.TemporaryDirectory(prefix="assistant-eval-", ignore_cleanup_errors=True) as tmp:
        summary = realtimeqa.evaluate(
            args.questions,
            settings,
            Path(tmp),
            pool=args.pool,
            limit=args.limit,
            as_of=args.as_of,
            k=args.k,
        )
    rows = summary.pop("rows")
    print(realtimeqa.format_table(summary["ours"]))
    print(
        f"{summary['questions']} gold-subset questions, pool {summary['pool']}, as of: {summary['as_of']}"
    )
    if args.report:
        write_rows(args.report, rows)
        print(f"per-question report: {args.report}")
    if args.json:
        print(json.dumps(summary, default=str))
    return 0
