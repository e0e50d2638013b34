"""The decline-gate experiment (``bench/fit_decline_gate.py``): its features, the removed-sentence
unanswerable examples and the threshold rule."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document

from assistant.extractive import ExtractiveAnswerer
from index.embeddings import FakeTokenizingEmbeddings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from fit_decline_gate import choose_threshold, figures, gate_features, removed_variant


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


def _example(kind: str, right: bool = False, type_ok: bool = True) -> dict[str, object]:
    return {"kind": kind, "answerable": kind == "answerable", "right": right, "type_ok": type_ok}


def test_threshold_rule_declines_at_most_the_allowed_share_of_answerable_questions() -> None:
    ex = [_example("answerable", right=True) for _ in range(20)] + [
        _example("unanswerable") for _ in range(5)
    ]
    p = np.array([0.1 + 0.04 * i for i in range(20)] + [0.05, 0.1, 0.2, 0.3, 0.9])
    tau = choose_threshold(ex, p, max_declined=0.05)
    assert tau == pytest.approx(0.14)  # the highest declining only the answerable 0.10: 1 of 20
    f = figures(ex, p >= tau)
    assert f["answerable_declined"] == 0.05
    assert f["gold_in_answer"] == 0.95
    assert f["unanswerable_declined"] == 0.4  # 0.05 and 0.1 are under it


def test_a_type_decline_counts_as_declined_whatever_the_gate_says() -> None:
    ex = [_example("answerable", right=True, type_ok=False), _example("answerable", right=True)]
    f = figures(ex, np.array([True, True]))
    assert f["answerable_declined"] == 0.5 and f["gold_in_answer"] == 0.5


def test_removed_variant_blanks_the_answer_sentences_and_keeps_offsets() -> None:
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
