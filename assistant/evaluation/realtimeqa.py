"""RealTime QA (Kasai et al., NeurIPS 2023) in `assistant eval`, read from its folder as published.

``assistant eval FOLDER`` where FOLDER holds ``questions.jsonl`` and ``articles.jsonl.gz`` (the
layout of ``../shared/eval/realtimeqa/``). The questions are the **gold subset**: those with at
least one gold article (``gold_doc_ids``; 206 CNN quiz questions). The articles indexed are a
**pool** so a run fits in minutes on 2 cores:

* ``--pool gold+top3`` (default): the gold articles of the questions asked, plus each
  question's top-3 upstream search results (``gcs_doc_ids``): about 641 articles for all 206;
* ``--pool all``: every article of the folder (3,786).

Figures (the folder's README gives the anchors: upstream search ranks the gold article
hit@1/5/10 = 43.9/56.1/58.7 %, MRR@10 = 0.493):

* **gold-article hit@1/5/10, MRR@10**: articles ranked by their best chunk among the top
  ``ARTICLE_DEPTH`` chunks our retriever returns; a hit is an article whose text equals a gold
  article's (the index keeps one copy of a duplicated story);
* **gold answer in the answer**: upstream's ``normalize_answer`` (lowercase, punctuation and
  the CJK counters 年/歳/人/년 removed, whitespace collapsed) applied to both, then the gold
  choice text must occur in the answer text as whole words. One difference: upstream strips
  ASCII punctuation only, we strip every Unicode punctuation mark too, since the choices
  quote titles in typographic quotes (“Squid Game”) that an answer sentence need not repeat.
  Questions ending in "except" are skipped, as upstream skips them for generation scores;
* **multiple-choice accuracy**, rule: each choice gets a support score from the answer text and
  the quotes it cites (both normalised as above): 2 if the whole choice occurs in the answer
  text, else 1 if it occurs in a cited quote, plus the share of the choice's distinctive words
  (words not in every one of the four choices) that occur in the answer text or its quotes.
  The best-scoring choice is picked; a zero score or a tie at the top picks nothing (wrong).
  A decline cites the closest passages but gives no answer text, so only its quotes count.

``--as-of`` asks each question as of its ``question_date``: the date is passed to
``assistant.answer`` as ``as_of`` when that function accepts it (see ``answer_as_of``); until it
does, nothing is passed and the summary says ``as_of: "unsupported"``.
"""

from __future__ import annotations

import gzip
import inspect
import json
import string
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from assistant.evaluation.metrics import percentile
from assistant.settings import Settings

POOLS = ("gold+top3", "all")
TOP_SEARCH = 3  # upstream search results per question added to the gold+top3 pool
ARTICLE_DEPTH = 50  # chunks retrieved to rank articles for hit@k / MRR@10
HITS = (1, 5, 10)
_COUNTERS = str.maketrans("", "", "年歳人년")
_PUNCT = str.maketrans("", "", string.punctuation)


@dataclass(frozen=True)
class RTQuestion:
    """One RealTime QA question of the gold subset."""

    question_id: str
    question: str
    question_date: date | None
    choices: tuple[str, ...]
    answer_idx: int
    answer_text: str
    gold_doc_ids: tuple[str, ...]
    gcs_doc_ids: tuple[str, ...]

    @property
    def negated(self) -> bool:
        """An "..., except" question: its answer is the choice the news does NOT support."""
        return self.question.rstrip(" ?:.").lower().endswith("except")


def is_dataset(path: Path) -> bool:
    return path.is_dir() and (path / "questions.jsonl").is_file()


def normalize_answer(text: str) -> str:
    """Upstream RealTime QA's ``normalize_answer`` (scripts/utils/tools.py): lowercase, strip
    punctuation, drop the CJK counters, collapse whitespace; punctuation here includes
    Unicode marks (typographic quotes and dashes), which upstream keeps."""
    lowered = text.lower().translate(_PUNCT).translate(_COUNTERS)
    kept = "".join(" " if unicodedata.category(c).startswith("P") else c for c in lowered)
    return " ".join(kept.split())


def _parse_date(value: Any) -> date | None:
    try:
        return datetime.strptime(str(value), "%Y/%m/%d").date()
    except ValueError:
        return None


def load_questions(folder: Path, limit: int | None = None) -> list[RTQuestion]:
    """The gold subset, in file order (the first ``limit`` of it)."""
    path = folder / "questions.jsonl"
    out: list[RTQuestion] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not row.get("gold_doc_ids"):
                continue
            idx = row["answer_idx"]
            idx = int(idx[0] if isinstance(idx, list) else idx)
            choices = tuple(str(c) for c in row["choices"])
            q = RTQuestion(
                str(row["question_id"]),
                str(row["question"]),
                _parse_date(row.get("question_date")),
                choices,
                idx,
                choices[idx],
                tuple(row["gold_doc_ids"]),
                tuple(row.get("gcs_doc_ids") or ()),
            )
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ConfigError(f"{path} line {n}: not a RealTime QA question ({exc})") from exc
        out.append(q)
        if limit and len(out) >= limit:
            break
    return out


def pool_ids(questions: Sequence[RTQuestion], pool: str) -> set[str] | None:
    """The doc ids to index (None: all of them)."""
    if pool == "all":
        return None
    if pool != "gold+top3":
        raise ConfigError(f"unknown pool {pool!r}; choose one of {', '.join(POOLS)}")
    ids: set[str] = set()
    for q in questions:
        ids.update(q.gold_doc_ids)
        ids.update(q.gcs_doc_ids[:TOP_SEARCH])
    return ids


def load_articles(folder: Path, wanted: set[str] | None) -> dict[str, dict[str, Any]]:
    """doc_id -> article record, for the wanted ids with non-empty text."""
    path = folder / "articles.jsonl.gz"
    out: dict[str, dict[str, Any]] = {}
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                if (wanted is None or row["doc_id"] in wanted) and str(
                    row.get("text") or ""
                ).strip():
                    out[row["doc_id"]] = row
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return out


def write_corpus(articles: dict[str, dict[str, Any]], folder: Path) -> Path:
    """One ``{doc_id}.json`` per article, in the record shape our JSON loader reads, so the
    index's origin names the doc id."""
    folder.mkdir(parents=True, exist_ok=True)
    for doc_id, row in articles.items():
        record = {"title": row.get("title") or None, "text": row["text"], "url": row.get("url")}
        published = str(row.get("publish_date") or "")[:10]
        if published:
            record["published"] = published
        (folder / f"{doc_id}.json").write_text(json.dumps(record), encoding="utf-8")
    return folder


def _has_words(text: str, needle: str) -> bool:
    return bool(needle) and f" {needle} " in f" {text} "


def pick_choice(choices: Sequence[str], answer_text: str, quotes: Sequence[str]) -> int | None:
    """The choice best supported by the answer and its cited quotes (rule in the module doc)."""
    text = normalize_answer(answer_text)
    quoted = normalize_answer(" ".join(quotes))
    support = f"{text} {quoted}"
    words = [set(normalize_answer(c).split()) for c in choices]
    common = set.intersection(*words) if words else set()
    scores = []
    for choice, choice_words in zip(choices, words, strict=True):
        norm = normalize_answer(choice)
        score = 2.0 if _has_words(text, norm) else 1.0 if _has_words(quoted, norm) else 0.0
        distinct = choice_words - common
        if distinct:
            score += sum(_has_words(support, w) for w in distinct) / len(distinct)
        scores.append(score)
    best = max(scores, default=0.0)
    if best <= 0 or scores.count(best) > 1:
        return None
    return scores.index(best)


def answer_as_of(answer: Callable[..., Any]) -> bool:
    """The as-of hook: True when ``answer`` takes an ``as_of`` date (time-aware answers)."""
    return "as_of" in inspect.signature(answer).parameters


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate the per-question rows of :func:`evaluate`."""
    ranks = [r["gold_rank"] for r in rows]
    out: dict[str, Any] = {
        f"hit_at_{k}": _mean([1.0 if r is not None and r <= k else 0.0 for r in ranks])
        for k in HITS
    }
    out["mrr_at_10"] = _mean([1.0 / r if r is not None and r <= 10 else 0.0 for r in ranks])
    scored = [r for r in rows if r["answer_scored"]]
    out["answer_in_text"] = _mean([float(r["answer_in_text"]) for r in scored])
    out["answer_in_text_n"] = len(scored)
    out["mc_accuracy"] = _mean([float(r["mc_correct"]) for r in rows])
    out["mc_abstained"] = sum(r["mc_pick"] is None for r in rows)
    out["answered"] = _mean([float(r["answered"]) for r in rows])
    latencies = [r["latency_ms"] for r in rows]
    out["latency_p50_ms"] = percentile(latencies, 50)
    out["latency_p95_ms"] = percentile(latencies, 95)
    return out


def evaluate(
    folder: Path,
    settings: Settings,
    tmp: Path,
    *,
    pool: str,
    limit: int | None,
    as_of: bool,
    k: int | None,
) -> dict[str, Any]:
    """Index the pool into a temp home, ask every question, return summary and rows."""
    from assistant.api import answer, open_index, sync_articles
    from assistant.evaluation.askers import forget_cached_queries
    from assistant.retrieval import HybridRetriever
    from index.embeddings import load_embedder

    questions = load_questions(folder, limit)
    if not questions:
        raise ConfigError(f"{folder / 'questions.jsonl'} has no question with gold_doc_ids")
    articles = load_articles(folder, pool_ids(questions, pool))
    corpus = write_corpus(articles, tmp / "realtimeqa-pool")
    settings = settings.model_copy(update={"home": tmp / "home"})
    _log(f"indexing {len(articles)} RealTime QA articles (pool {pool}) into a temporary home")
    load_embedder(settings).embed_query("warm-up")
    started = time.perf_counter()
    report = sync_articles([str(corpus)], settings=settings)
    index_seconds = time.perf_counter() - started
    index = open_index(settings)
    doc_of = {a.article_id: Path(a.origin).stem for a in index.catalog.articles()}
    by_text: dict[str, set[str]] = {}
    for doc_id, row in articles.items():
        by_text.setdefault(row["text"].strip(), set()).add(doc_id)
    same = {d: ids for ids in by_text.values() for d in ids}  # doc -> docs with identical text

    retriever = HybridRetriever(index=index, k=ARTICLE_DEPTH)
    supported = answer_as_of(answer)
    rows: list[dict[str, Any]] = []
    for i, q in enumerate(questions, 1):
        gold = set().union(*(same.get(d, {d}) for d in q.gold_doc_ids))
        forget_cached_queries(index.embedder)
        ranked: list[str] = []
        for d in retriever.invoke(q.question):
            doc = doc_of.get(d.metadata["article_id"], "")
            if doc not in ranked:
                ranked.append(doc)
        rank = next((n for n, d in enumerate(ranked[:10], 1) if same.get(d, {d}) & gold), None)
        extra: dict[str, Any] = {"as_of": q.question_date} if as_of and supported else {}
        forget_cached_queries(index.embedder)
        started = time.perf_counter()
        result = answer(q.question, settings=settings, k=k, **extra)
        latency_ms = (time.perf_counter() - started) * 1000
        text = result.text if result.answered else ""
        quotes = [c.quote for c in result.citations]
        pick = pick_choice(q.choices, text, quotes)
        rows.append(
            {
                "question_id": q.question_id,
                "question": q.question,
                "gold_answer": q.answer_text,
                "gold_rank": rank,
                "answered": result.answered,
                "answer_scored": not q.negated,
                "answer_in_text": _has_words(
                    normalize_answer(text), normalize_answer(q.answer_text)
                ),
                "mc_pick": pick,
                "mc_correct": pick == q.answer_idx,
                "latency_ms": latency_ms,
                "text": result.text,
            }
        )
        if i % 10 == 0 or i == len(questions):
            _log(f"realtimeqa: {i}/{len(questions)} questions")
    summary = summarise(rows)
    summary |= {"index_seconds": index_seconds, "articles": len(articles)}
    summary["chunks"] = index.catalog.counts()[1]
    summary["failed_to_load"] = len(report.failed)
    return {
        "dataset": "realtimeqa",
        "pool": pool,
        "questions": len(questions),
        "as_of": ("passed" if supported else "unsupported") if as_of else "off",
        "ours": summary,
        "rows": rows,
    }


ROWS = [  # (label, key, the folder README's anchor: upstream search over the same weeks)
    ("gold article hit@1", "hit_at_1", 0.439),
    ("gold article hit@5", "hit_at_5", 0.561),
    ("gold article hit@10", "hit_at_10", 0.587),
    ("gold article MRR@10", "mrr_at_10", 0.493),
    ("gold answer in the answer", "answer_in_text", None),
    ("multiple-choice accuracy", "mc_accuracy", None),
    ("answered (not declined)", "answered", None),
    ("answer latency p50 ms", "latency_p50_ms", None),
    ("answer latency p95 ms", "latency_p95_ms", None),
    ("index time s", "index_seconds", None),
    ("articles", "articles", None),
    ("chunks", "chunks", None),
]


def format_table(summary: dict[str, Any]) -> str:
    from assistant.evaluation.report import cell

    lines = [f"{'metric':46} {'ours':>10} {'upstream GCS':>13}"]
    for label, key, anchor in ROWS:
        lines.append(f"{label:46} {cell(summary.get(key)):>10} {cell(anchor):>13}")
    return "\n".join(lines)


def _log(message: str) -> None:
    import sys

    print(f"[eval] {message}", file=sys.stderr, flush=True)
