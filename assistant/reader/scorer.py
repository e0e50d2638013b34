"""The fitted scorer, in two parts read from ``weights.json`` (written by
``bench/fit_reader.py``):

* the **ranker**, a logistic regression over each candidate sentence's features, which picks
  the sentence to quote;
* the **decline model**, a second logistic regression over features of the *question*: the
  best candidate's score and its own features, and the best value of a few features over all
  candidates. Whether a question is answerable is a property of the question and the best
  evidence for it, not of one sentence; deciding it apart from the ranking lets the fit weigh
  "the rarest question word is nowhere near" against "a sentence of the right type is", which
  a threshold on the ranker's probability cannot.

Neither part sees the retrieval rank or a candidate's gap to the others, so the decision for a
question about one article does not move when unrelated articles are indexed. Nothing here is
set by hand: coefficients, standardisation and threshold all come from the fit, which records
the data it saw and its cross-validated figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from assistant.reader.features import FEATURES

#: The best candidate's own features that the decline model reads.
_BEST = (
    "cov",
    "cov_ctx",
    "cov_win",
    "miss_rare",
    "subj",
    "subj_sent",
    "subj_role",
    "typed_q",
    "type_ok",
    "span_near",
    "dense_sent",
    "verb",
    "focus",
    "headline",
)
#: Features whose best value over all candidates the decline model reads (maxima, and the
#: minimum of miss_rare: absolute values, unmoved by weaker candidates joining).
_MAX = ("cov_win", "dense_sent", "subj")
_MIN = ("miss_rare",)
DECLINE_FEATURES: tuple[str, ...] = (
    "score",  # the ranker's logit for the best candidate
    *(f"best_{n}" for n in _BEST),
    *(f"max_{n}" for n in _MAX),
    *(f"min_{n}" for n in _MIN),
)


def question_features(x: np.ndarray, logits: np.ndarray, i: int | None = None) -> np.ndarray:
    """The decline model's input for one question: ``x`` holds its candidates' feature rows
    (at least one), ``logits`` the ranker's logit of each; ``i`` the candidate read as the
    answer (default: the ranker's best)."""
    if i is None:
        i = int(np.argmax(logits))
    col = {n: j for j, n in enumerate(FEATURES)}
    return np.concatenate(
        [
            [logits[i]],
            [x[i, col[n]] for n in _BEST],
            [x[:, col[n]].max() for n in _MAX],
            [x[:, col[n]].min() for n in _MIN],
        ]
    )


@dataclass(frozen=True)
class Linear:
    """Standardised logistic regression: p = sigmoid(((x - mean) / scale) . coef + intercept)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logit(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(
            ((np.atleast_2d(x) - self.mean) / self.scale) @ self.coef + self.intercept
        )

    def prob(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(1.0 / (1.0 + np.exp(-self.logit(x))))

    def to_dict(self) -> dict[str, object]:
        return {
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object], expected: tuple[str, ...]) -> Linear:
        features: tuple[str, ...] = tuple(data["features"])  # type: ignore[arg-type]
        if features != expected:
            raise ValueError(
                "reader weights were fitted on other features; re-run bench/fit_reader.py"
            )
        return cls(
            features,
            np.array(data["mean"], dtype=float),
            np.array(data["scale"], dtype=float),
            np.array(data["coef"], dtype=float),
            float(data["intercept"]),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Model:
    """The ranker, the decline model, the decline threshold on its probability, and how many
    sentences per question the reader parses (the fit saw that many candidates)."""

    ranker: Linear
    decline: Linear
    threshold: float
    parse_limit: int = 8

    def prob(self, x: np.ndarray) -> np.ndarray:
        """Probability that each row (a candidate) answers the question."""
        return self.ranker.prob(x)

    def answerable(self, x: np.ndarray) -> np.ndarray:
        """For each candidate (rows of ``x``): the probability that the question is answered
        when that candidate is the one quoted. The answer is the ranker's best; a second
        sentence is quoted only if it, too, would have been an acceptable answer alone."""
        if not len(x):
            return np.zeros(0)
        logits = self.ranker.logit(x)
        q = np.vstack([question_features(x, logits, i) for i in range(len(x))])
        return self.decline.prob(q)

    def to_dict(self) -> dict[str, object]:
        return {
            "ranker": self.ranker.to_dict(),
            "decline": self.decline.to_dict(),
            "threshold": self.threshold,
            "parse_limit": self.parse_limit,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Model:
        if "ranker" not in data or "decline" not in data:
            raise ValueError("reader weights predate the decline model; re-run bench/fit_reader.py")
        return cls(
            Linear.from_dict(data["ranker"], FEATURES),  # type: ignore[arg-type]
            Linear.from_dict(data["decline"], DECLINE_FEATURES),  # type: ignore[arg-type]
            float(data["threshold"]),  # type: ignore[arg-type]
            int(data.get("parse_limit", 8)),  # type: ignore[call-overload]
        )


@lru_cache(maxsize=4)
def load_model(path: str | None = None) -> Model:
    """The shipped model (``assistant/reader/weights.json``) or one at ``path``."""
    if path:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    else:
        data = json.loads(
            resources.files("assistant.reader").joinpath("weights.json").read_text("utf-8")
        )
    return Model.from_dict(data.get("model", data))
