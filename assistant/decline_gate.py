"""Whether the extractive answerer's best sentences answer the question or only talk about it.

The answerer's old rule declined below one score threshold. A passage on the right story that
lacks the asked-for detail ("How much did the film cost?" over a review that names no budget)
scores as high as one that has it, so only a third of such questions were declined. The gate
reads a few question-level features of the ranked sentences (how much of the question the best
sentence covers, the weight of the question words it and every passage lack, its meaning
score, the margin to the next sentence) and a logistic regression fitted by
``bench/fit_decline_gate.py`` on labelled fit questions (coefficients and threshold in
``decline_gate.json``) turns them into an "answers it" probability. Every feature is a share or
a score of the question and its passages: none depends on what else is indexed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document

from assistant.wordweights import question_weights
from index.lexical import tokenize

if TYPE_CHECKING:
    from assistant.extractive import Sentence

GATE_FILE = Path(__file__).with_name("decline_gate.json")

#: The features, in the order the coefficients file lists them.
FEATURES = (
    "score",  # the best sentence's score (the old rule's only input)
    "lexical",  # its weighted question-term coverage
    "dense",  # its cosine to the question
    "missing_top",  # weight share of question words neither it, its context nor its title has
    "rarest_missing",  # the heaviest such word's weight / 7 (the weight of an unseen name)
    "nowhere",  # weight share of question words no retrieved passage or title has
    "gap",  # best score minus the best score of another article's sentence
    "typed",  # 1 when the question asks for a kind of answer (money, date, name, ...)
)


def gate_features(
    question: str,
    docs: Sequence[Document],
    ranked: Sequence[Sentence],
    typed_question: bool,
    weigh: Callable[[str], dict[str, float]] = question_weights,
) -> dict[str, float]:
    """The gate's inputs for one question whose sentences ``ranked`` are scored, best first."""
    top = ranked[0]
    weights = weigh(question)
    total = sum(weights.values()) or 1.0
    title = set(tokenize(docs[top.doc].metadata.get("title") or ""))
    top_toks = set(tokenize(f"{top.context} {top.text}")) | title
    everywhere: set[str] = set()
    for doc in docs:
        everywhere |= set(tokenize(doc.page_content)) | set(
            tokenize(doc.metadata.get("title") or "")
        )
    missing = [w for t, w in weights.items() if t not in top_toks]
    other = next((s.score for s in ranked[1:] if s.doc != top.doc), top.score - 1.0)
    return {
        "score": top.score,
        "lexical": top.lexical,
        "dense": top.dense,
        "missing_top": sum(missing) / total,
        "rarest_missing": max(missing, default=0.0) / 7.0,
        "nowhere": sum(w for t, w in weights.items() if t not in everywhere) / total,
        "gap": top.score - other,
        "typed": 1.0 if typed_question else 0.0,
    }


@dataclass(frozen=True)
class DeclineGate:
    """A fitted logistic regression over ``FEATURES`` and the probability below which the
    answerer declines."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float

    def probability(self, features: dict[str, float]) -> float:
        z = self.intercept + sum(
            c * (features[name] - m) / s
            for name, m, s, c in zip(FEATURES, self.mean, self.scale, self.coef, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-z))

    def accepts(self, features: dict[str, float]) -> bool:
        return self.probability(features) >= self.threshold

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeclineGate:
        if tuple(data["features"]) != FEATURES:
            raise ValueError(
                f"decline gate file lists features {data['features']}, this code computes "
                f"{list(FEATURES)}: re-fit it with bench/fit_decline_gate.py"
            )
        return cls(
            mean=tuple(data["mean"]),
            scale=tuple(data["scale"]),
            coef=tuple(data["coef"]),
            intercept=float(data["intercept"]),
            threshold=float(data["threshold"]),
        )

    @classmethod
    def load(cls, path: Path = GATE_FILE) -> DeclineGate:
        return cls.from_dict(json.loads(path.read_text()))
