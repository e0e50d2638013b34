"""Scoring rules of `assistant eval`, as pure functions over passages and answers.

They are the same for every pipeline measured (ours and the tutorial's), so neither is favoured
by how it chunks; ``quality`` states them for the user in its help text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DEPTH = 10  # passages looked at for MRR@10


@dataclass(frozen=True)
class Question:
    """One question; gold fields are None for unanswerable ones."""

    question: str
    answer: str | None = None
    article: str | None = None
    evidence: str | None = None
    gold_text: str | None = None
    evidence_span: tuple[int, int] | None = None

    @property
    def answerable(self) -> bool:
        return self.answer is not None


@dataclass(frozen=True)
class Passage:
    """A retrieved or cited passage: its text, file, and [start, end) in its article's text."""

    text: str
    origin: str
    start: int
    end: int
    article_text: str | None = None


@dataclass
class Outcome:
    """One pipeline's result on one question."""

    rank: int | None = None
    answered: bool = False
    correct: bool = False
    cited_evidence: bool = False
    precision: float | None = None
    latency_ms: float = 0.0
    retrieval_ms: float = 0.0
    text: str = ""


def normalise(text: str) -> str:
    """Case- and whitespace-insensitive form used by every containment check."""
    return " ".join(text.split()).casefold()


def find_span(text: str, needle: str) -> tuple[int, int] | None:
    """Where ``needle`` occurs in ``text``, ignoring case and differences in whitespace."""
    words = needle.split()
    if not words:
        return None
    match = re.search(r"\s+".join(map(re.escape, words)), text, re.IGNORECASE)
    return match.span() if match else None


def contains(haystack: str, needle: str) -> bool:
    return normalise(needle) in normalise(haystack)


def is_gold_article(passage: Passage, q: Question) -> bool:
    if not q.article:
        return False
    rel = q.article.replace("\\", "/").lstrip("/")
    origin = passage.origin.replace("\\", "/")
    if origin == rel or origin.endswith("/" + rel):
        return True
    return passage.article_text is not None and passage.article_text == q.gold_text


def has_evidence(passage: Passage, q: Question) -> bool:
    if not q.evidence:
        return False
    if contains(passage.text, q.evidence):
        return True
    span = q.evidence_span
    return (
        span is not None
        and passage.start < span[1]
        and span[0] < passage.end
        and is_gold_article(passage, q)
    )


def first_hit_rank(passages: Sequence[Passage], q: Question) -> int | None:
    """1-based rank of the first passage holding the evidence, None if none does."""
    return next((i for i, p in enumerate(passages, 1) if has_evidence(p, q)), None)


def answer_words(text: str) -> str:
    """The form answers are compared in: lower case, no accents, punctuation as spaces, single
    spaces (decimal points and % $ £ € kept). Non-ASCII punctuation becomes a space before
    accents are dropped: dropping it would glue words ("Colombia’s" -> "colombias", so the
    gold "Colombia" was not found in its own answer)."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(
        " " if ord(ch) > 127 and unicodedata.category(ch)[0] in "PZ" else ch for ch in text
    )
    text = text.encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w%$£€.]+|(?<!\d)\.|\.(?!\d)", " ", text.lower())
    return " ".join(text.split())


def answer_correct(text: str, gold: str | None) -> bool:
    """The gold answer is in the answer text as whole words ("10" is not in "100", "Colombia"
    not in "Colombian"). The one rule for every answer measure: `assistant eval` and the
    scripts in bench/ (which used to carry three slightly different rules of their own)."""
    words = answer_words(gold or "")
    return bool(words) and f" {words} " in f" {answer_words(text)} "


def citation_precision(cited: Sequence[Passage], q: Question) -> float | None:
    if not cited:
        return None
    good = sum(1 for p in cited if is_gold_article(p, q) or has_evidence(p, q))
    return good / len(cited)


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * pct / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarise(questions: Sequence[Question], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Aggregate figures; a rate with nothing to count (no unanswerable questions) is None."""
    pairs = list(zip(questions, outcomes, strict=True))
    gold = [o for q, o in pairs if q.answerable]
    unanswerable = [o for q, o in pairs if not q.answerable]
    # Evidence figures only over questions that name their evidence: a set with answers but no
    # evidence quotes (the held-out BBC set) has no evidence recall, not a recall of 0.
    with_evidence = [o for q, o in pairs if q.answerable and (q.evidence or q.evidence_span)]
    ranks = [o.rank for o in with_evidence]
    out: dict[str, Any] = {
        f"recall_at_{k}": _mean([1.0 if r is not None and r <= k else 0.0 for r in ranks])
        for k in (1, 4, 5)
    }
    out["mrr_at_10"] = _mean([1.0 / r if r is not None and r <= DEPTH else 0.0 for r in ranks])
    out["cited_evidence_recall"] = _mean([float(o.cited_evidence) for o in with_evidence])
    out["answer_accuracy"] = _mean([float(o.answered and o.correct) for o in gold])
    precisions = [o.precision for o in gold if o.answered and o.precision is not None]
    out["citation_precision"] = _mean(precisions)
    out["decline_accuracy"] = _mean([float(not o.answered) for o in unanswerable])
    out["false_decline_rate"] = _mean([float(not o.answered) for o in gold])
    for name, values in (
        ("latency", [o.latency_ms for o in outcomes]),
        ("retrieval", [o.retrieval_ms for o in outcomes]),
    ):
        out[f"{name}_p50_ms"] = percentile(values, 50)
        out[f"{name}_p95_ms"] = percentile(values, 95)
    return out


@dataclass
class Response:
    """What a pipeline did for one question, before scoring."""

    ranked: list[Passage]  # top DEPTH retrieved passages
    text: str
    answered: bool
    cited: list[Passage]
    latency_ms: float
    retrieval_ms: float


def score(q: Question, r: Response) -> Outcome:
    cited = r.cited if r.answered else []
    return Outcome(
        rank=first_hit_rank(r.ranked, q),
        answered=r.answered,
        correct=answer_correct(r.text, q.answer),
        cited_evidence=any(has_evidence(p, q) for p in cited),
        precision=citation_precision(cited, q),
        latency_ms=r.latency_ms,
        retrieval_ms=r.retrieval_ms,
        text=r.text,
    )
