"""`assistant bench`: indexing and query speed, ours beside the LangChain tutorial pipeline.

Every phase runs in a fresh child process (``python -m assistant.evaluation.phases _child ...``), so
its peak RSS comes from the kernel (``os.wait4``) rather than from sampling; the model is
loaded and Chroma imported before any clock starts. On a private copy of the corpus (it gets
edited):

1. full index: ours ``sync_articles``; the tutorial's load, split and ``add_documents``;
2. ours: a no-change re-sync, then one article edited and re-synced.
   The tutorial has no sync: its re-sync is a full re-index, and its change deletes the
   file's chunks by origin and adds them again;
3. queries (model loaded, one warm-up): ours retrieval alone and the whole extractive
   ``answer()``; the tutorial's ``similarity_search`` top 4, which is also its answer;
4. cold start: a new ``assistant ask`` process until the answer's first line is printed
   (the tutorial: ``python -m assistant.evaluation.baseline ask``), median of ``--cold-runs``.

``--scale F`` / ``--synthetic-articles N`` repeat 1-3 for ours on synthetic corpora
(``assistant/evaluation/synth_corpus.py``) to show how index time, memory, disk and latency grow.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from assistant.evaluation.datasets import load_questions
from assistant.evaluation.phases import bench_corpus
from assistant.evaluation.report import format_table
from assistant.settings import Settings

ROWS = [  # (label, key in ours, key in the tutorial's figures)
    ("articles", "articles", "articles"),
    ("chunks", "chunks", "chunks"),
    ("full index s", "index_seconds", "index_seconds"),
    ("chunks/s", "chunks_per_s", "chunks_per_s"),
    ("articles/s (index throughput)", "articles_per_s", "articles_per_s"),
    ("no-change re-sync s (tutorial: full re-index)", "resync_seconds", "resync_seconds"),
    ("re-sync as % of full index", "resync_pct", "resync_pct"),
    ("one-article change s", "change_seconds", "change_seconds"),
    ("retrieval p50 ms", "retrieval_p50_ms", "retrieval_p50_ms"),
    ("retrieval p95 ms", "retrieval_p95_ms", "retrieval_p95_ms"),
    ("answer p50 ms (tutorial: its top-4 search)", "answer_p50_ms", "answer_p50_ms"),
    ("answer p95 ms", "answer_p95_ms", "answer_p95_ms"),
    ("cold start of ask s", "cold_start_s", "cold_start_s"),
    ("peak RSS, full index MB", "index_rss_mb", "index_rss_mb"),
    ("peak RSS, queries MB", "query_rss_mb", "query_rss_mb"),
    ("peak RSS, ask process MB", "ask_rss_mb", "ask_rss_mb"),
    ("disk MB", "disk_mb", "disk_mb"),
]


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``assistant bench``; the CLI's subcommand shows them in its ``--help``."""
    p.add_argument(
        "--corpus",
        action="append",
        type=Path,
        metavar="DIR",
        required=True,
        help="corpus folder (repeatable), e.g. ../shared/eval/bbc; the first one's "
        "questions-dev.jsonl times the queries unless --questions is given",
    )
    p.add_argument("--questions", type=Path, help="JSONL whose questions time the queries")
    p.add_argument("--queries", type=int, default=50, help="questions timed (default 50)")
    p.add_argument("--cold-runs", type=int, default=3, help="cold starts timed (median)")
    p.add_argument("--no-baseline", action="store_true", help="skip the tutorial pipeline")
    p.add_argument(
        "--tutorial-embedder",
        choices=["published", "ours"],
        default="published",
        help="how the tutorial pipeline runs the (same) embedding model: 'published' = "
        "sentence-transformers on torch, as the LangChain tutorial's HuggingFaceEmbeddings "
        "does (default); 'ours' = our configured backend, to time the pipelines alone",
    )
    p.add_argument("--scale", type=float, nargs="+", default=[], metavar="F", help="x corpus size")
    p.add_argument("--synthetic-articles", type=int, nargs="+", default=[], metavar="N")
    p.add_argument("--scale-only", action="store_true", help="skip the run on the real corpus")
    p.add_argument("--seed", type=int, default=0, help="synthetic corpus seed (default 0)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    return p


def _parser() -> argparse.ArgumentParser:
    return add_arguments(
        argparse.ArgumentParser(prog="assistant bench", description=__doc__.split("\n")[0])
    )


def main(argv: Sequence[str], settings: Settings) -> int:
    """Entry point for a list of arguments; returns the exit code."""
    return run(_parser().parse_args([a for a in argv if a != "--"]), settings)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``assistant bench`` with parsed arguments; returns the exit code."""
    from assistant.evaluation.baseline import require_eval_extra

    if not args.no_baseline and not args.scale_only:
        require_eval_extra("assistant bench (without --no-baseline)")
    corpora = args.corpus
    if missing := [str(c) for c in corpora if not c.exists()]:
        raise ConfigError(f"corpus {', '.join(missing)} not found; give --corpus DIR")
    default_questions = corpora[0] / "questions-dev.jsonl"
    questions = load_questions(args.questions or default_questions, args.queries)
    queries = [q.question for q in questions]
    result: dict[str, Any] = {"corpus": [str(c) for c in corpora], "queries": len(queries)}
    with tempfile.TemporaryDirectory(prefix="assistant-bench-", ignore_cleanup_errors=True) as tmp:
        if not args.scale_only:
            result |= bench_corpus(corpora, queries, Path(tmp) / "base", settings, args)
            print(format_table(ROWS, result["ours"], result["tutorial"]))
        if args.scale or args.synthetic_articles:
            from assistant.evaluation import scale

            sizes = scale.sizes(corpora[0], args.scale, args.synthetic_articles)
            result["scale"] = scale.run(corpora[0], sizes, queries, Path(tmp), settings, args.seed)
            print("\nour pipeline on synthetic corpora (assistant/evaluation/synth_corpus.py):")
            print(scale.table(result["scale"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
        print(f"figures written to {args.json}")
    return 0
