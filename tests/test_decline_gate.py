"""The extractive answerer's decline gate: its features, its arithmetic and its file."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from langchain_core.documents import Document

from assistant.decline_gate import FEATURES, DeclineGate, gate_features
from assistant.extractive import ExtractiveAnswerer
from index.embeddings import FakeTokenizingEmbeddings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))


def _uniform(question: str) -> dict[str, float]:
    from index.lexical import tokenize

    return dict.fromkeys(tokenize(question), 1.0)


def _doc(text: str, title: str = "", origin: str = "a.txt") -> Document:
    return Document(
        page_content=text,
        metadata={
            "chunk_id": f"{origin}:0",
            "article_id": origin,
            "title": title,
            "source": None,
            "published": None,
            "url": None,
            "origin": origin,
            "start": 0,
            "end": len(text),
            "score": 1.0,
        },
    )


def _features(question: str, docs: list[Document]) -> dict[str, float]:
    answerer = ExtractiveAnswerer(FakeTokenizingEmbeddings(), _uniform, threshold=-1)
    ranked = answerer.score(question, docs)
    return gate_features(question, docs, ranked, typed_question=True, weigh=_uniform)


def test_missing_words_are_counted_against_the_best_sentence_and_all_passages() -> None:
    docs = [_doc("The film was shot in Malta. Critics liked it.", title="Film review")]
    f = _features("How much did the film budget reach?", docs)
    # question terms (stemmed, stop words dropped): film, budget, reach -> "budget" and "reach"
    # are in no passage, "film" is in the best sentence and the title
    assert f["nowhere"] == pytest.approx(f["missing_top"])
    assert 0 < f["nowhere"] < 1
    assert f["rarest_missing"] == pytest.approx(1 / 7)
    assert f["typed"] == 1.0
    full = _features("Where was the film shot?", docs)
    assert full["nowhere"] == 0 and full["missing_top"] == 0


def test_gap_is_measured_to_another_article() -> None:
    docs = [
        _doc("Smith won the race. Smith won the race again.", origin="a.txt"),
        _doc("Rain fell.", origin="b.txt"),
    ]
    answerer = ExtractiveAnswerer(FakeTokenizingEmbeddings(), _uniform, threshold=-1)
    ranked = answerer.score("Who won the race?", docs)
    f = gate_features("Who won the race?", docs, ranked, True, _uniform)
    other = next(s.score for s in ranked if s.doc == 1)
    assert f["gap"] == pytest.approx(ranked[0].score - other)


def _gate(threshold: float, coef_score: float = 1.0) -> DeclineGate:
    n = len(FEATURES)
    coef = [0.0] * n
    coef[FEATURES.index("score")] = coef_score
    return DeclineGate(
        mean=(0.0,) * n, scale=(1.0,) * n, coef=tuple(coef), intercept=0.0, threshold=threshold
    )


def test_probability_is_the_logistic_of_the_standardised_sum() -> None:
    gate = _gate(0.5, coef_score=2.0)
    f = dict.fromkeys(FEATURES, 0.0) | {"score": 0.25}
    assert gate.probability(f) == pytest.approx(1 / (1 + math.exp(-0.5)))
    assert gate.accepts(f)
    assert not gate.accepts(f | {"score": -0.25})


def test_the_gate_decides_in_place_of_the_threshold() -> None:
    docs = [_doc("Smith won the race in Leeds.")]
    refuse = ExtractiveAnswerer(FakeTokenizingEmbeddings(), _uniform, threshold=-1, gate=_gate(2.0))
    assert not refuse.answer("Who won the race?", docs)[2]
    accept = ExtractiveAnswerer(FakeTokenizingEmbeddings(), _uniform, threshold=99, gate=_gate(0.0))
    assert accept.answer("Who won the race?", docs)[2]


def test_a_gate_file_for_other_features_is_refused() -> None:
    with pytest.raises(ValueError, match="re-fit"):
        DeclineGate.from_dict(
            {
                "features": ["score"],
                "mean": [0],
                "scale": [1],
                "coef": [1],
                "intercept": 0,
                "threshold": 0.5,
            }
        )


def test_removed_variant_blanks_the_answer_sentences_and_keeps_offsets() -> None:
    from fit_decline_gate import removed_variant

    text = "Talks were held. Smith won the race in Leeds. Rain fell."
    row = {
        "answer": "Smith",
        "docs": [{"text": text, "metadata": {"start": 0, "title": "Race", "context_before": ""}}],
    }
    (doc,) = removed_variant(row) or [None]
    assert doc is not None
    assert len(doc.page_content) == len(text)
    assert "Smith" not in doc.page_content and "Rain fell." in doc.page_content
    row["docs"][0]["metadata"]["title"] = "Smith wins"  # a headline holds it: no variant
    assert removed_variant(row) is None
