"""The fitted scorer: logistic regression over the candidate features, and the decline
threshold, both read from ``weights.json`` (written by ``bench/fit_reader.py``).

Nothing here is set by hand: the coefficients, the feature standardisation and the threshold
all come from the fit, which records the data it saw and its cross-validated figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from assistant.reader.features import FEATURES


@dataclass(frozen=True)
class Model:
    """Standardised logistic regression: p = sigmoid(((x - mean) / scale) . coef + intercept)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float

    def prob(self, x: np.ndarray) -> np.ndarray:
        """Probability that each row (a candidate) answers the question."""
        z = ((np.atleast_2d(x) - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, object]:
        return {
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Model:
        features: tuple[str, ...] = tuple(data["features"])  # type: ignore[arg-type]
        if features != FEATURES:
            raise ValueError(
                "reader weights were fitted on other features; re-run bench/fit_reader.py"
            )
        return cls(
            features,
            np.array(data["mean"], dtype=float),
            np.array(data["scale"], dtype=float),
            np.array(data["coef"], dtype=float),
            float(data["intercept"]),  # type: ignore[arg-type]
            float(data["threshold"]),  # type: ignore[arg-type]
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
