"""The reader: question analysis (real spaCy), follow-ups, the fitted scorer and its answers.

The parser is the real small English pipeline (it is part of the product, and loads in about
a second); retrieval tests use the real embedder and Chroma over the bundled sample.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from assistant.reader.analysis import analyse
from assistant.reader.followup import condense
from assistant.reader.scorer import load_model
from assistant.types import Answer, Citation
from assistant.wordweights import term_weight
from ui import render

QUESTIONS = Path(__file__).resolve().parents[1] / "bench" / "data" / "reader-questions.jsonl"


@pytest.mark.parametrize(
    ("question", "kind", "focus"),
    [
        ("How much is the singer being sued for?", "money", None),
        ("How many people took part in the poll?", "count", "people"),
        ("Which year did the band split up?", "date", "year"),
        ("How much revenue did the firm report?", "money", "revenue"),
        ("What share of the market does the company hold?", "percent", "share"),
        ("Who was appointed chairman?", "person", None),
        ("Where will the summit be held?", "place", None),
        ("When did the talks start?", "date", None),
        ("Which company bought the brewer?", "org", "company"),
        ("What did the minister threaten?", "clause", None),
        ("Why did the shares fall?", "clause", None),
        ("Did the minister travel abroad?", "clause", None),
        ("In which city is the conference?", "place", "city"),
    ],
)
def test_answer_type_and_focus(question: str, kind: str, focus: str | None) -> None:
    a = analyse(question)
    assert a.answer_type == kind
    if focus is not None:
        assert a.focus == focus


def test_analysis_keeps_subjects_verb_and_unresolved_dates() -> None:
    a = analyse("What did Bessent threaten this week?")
    assert "Bessent" in a.subjects
    assert a.verb == "threaten"
    assert a.dates == ("this week",)  # as written: the as-of code resolves it
    assert not a.wants_span


def test_term_weights_come_from_general_english_not_the_index() -> None:
    assert term_weight("tariff") > term_weight("said") > 0
    assert term_weight("zzqxname") == pytest.approx(7.0)


@pytest.mark.parametrize(
    ("question", "previous", "expected"),
    [
        ("And China?", "What tariffs did the US impose on Canada?", "impose on China?"),
        ("What did he threaten?", "Where did Bessent travel?", "(Bessent)"),
        ("Who is the US trade representative?", "Where did Bessent go?", None),
    ],
)
def test_followups_borrow_names_only_when_needed(
    question: str, previous: str, expected: str | None
) -> None:
    out = condense(question, previous)
    if expected is None:
        assert out == question
    else:
        assert expected in out
        assert "tarif " not in out  # names and words, never stems


def test_shipped_weights_match_the_features_and_record_their_fit() -> None:
    model = load_model()
    for part in (model.ranker, model.decline):
        assert part.coef.shape == part.mean.shape == part.scale.shape
    assert 0.0 < model.threshold < 1.0
    data = json.loads(
        (Path(__file__).resolve().parents[1] / "assistant/reader/weights.json").read_text()
    )
    assert data["fitted_on"]["questions"] > 100
    assert "cv" in data["report"]
    x = np.vstack([model.ranker.mean, model.ranker.mean])
    assert model.prob(x).shape == model.answerable(x).shape == (2,)
    assert "test" in data["report"]  # the held-out split was scored


def test_candidate_features_ignore_rank_and_the_other_candidates() -> None:
    """A sentence's features (so the ranker's score and the decline model's input) are the
    same whether its passage is retrieved alone at rank 1 or at rank 3 below unrelated
    stories: the old rank and gap-to-best features moved the decision with the corpus."""
    from assistant.reader.reader import Reader

    question = "What did Bessent threaten?"
    target = _doc(
        "Bessent spoke on Sunday. He said everything is on the table if China goes ahead.",
        title="Trade talks",
        n=9,
    )
    noise = [
        _doc(f"Bessent threatened nothing at the {w} meeting, officials said.", title=w, n=i)
        for i, w in enumerate(["bank", "budget"])
    ]

    def rows(docs):  # type: ignore[no-untyped-def]
        _, cands = Reader().candidates(question, docs)
        return {(c.unit.article_id, c.unit.start): c.x.tolist() for c in cands}

    alone, crowded = rows([target]), rows([*noise, target])
    assert alone and all(crowded[key] == x for key, x in alone.items())


def _citation(quote: str) -> Citation:
    return Citation(1, "a", "T", None, None, None, quote, "c", 0, len(quote), 0.9, quote, 0)


def test_short_answer_is_bold_and_escaped_in_the_ui() -> None:
    text = "Talks are in Kuala Lumpur <b>now</b> [1]"
    answer = Answer("q", text, True, [_citation(text[:-4])], short="Kuala Lumpur")
    markup = render.answer_html(answer, 0)
    assert "<strong>Kuala Lumpur</strong>" in markup
    assert "<b>" not in markup
    declined = Answer("q", text, False, [], short="Kuala Lumpur")
    assert "<strong>" not in render.answer_html(declined, 0)


# --- real model, real Chroma -------------------------------------------------------------------
@pytest.fixture
def sample_index(real_settings):  # type: ignore[no-untyped-def]
    from index.sync import sync

    from .conftest import SAMPLE

    sync(real_settings, [str(SAMPLE)], show_bar=False)
    return real_settings.model_copy(update={"answerer": "fitted"})


@pytest.mark.integration
def test_sample_answers_carry_the_phrase(sample_index) -> None:  # type: ignore[no-untyped-def]
    from assistant import answer

    result = answer("Where is the fifth round of trade talks being held?", settings=sample_index)
    assert result.answered
    assert result.short == "Kuala Lumpur"
    assert result.short in result.text
    assert result.to_dict()["short"] == "Kuala Lumpur"
    bessent = answer("What did Bessent threaten?", settings=sample_index)
    assert bessent.answered and bessent.short is None
    assert "everything is on the table" in bessent.citations[0].quote


def _decisions(settings) -> dict[str, tuple[bool, str | None]]:  # type: ignore[no-untyped-def]
    from assistant import answer

    out = {}
    for line in QUESTIONS.read_text().splitlines():
        row = json.loads(line)
        if not row["article"].startswith("sample:"):
            continue
        a = answer(row["question"], settings=settings)
        quote = a.citations[0].quote if a.answered and a.citations else None
        out[row["question"]] = (a.answered, quote)
    return out


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.soak  # indexes 510 stories with the real model (~2 min): `make soak`, run by CI
@pytest.mark.xfail(
    strict=True,
    reason="known gap (issue 12): the fitted reader no longer reads retrieval rank or gaps to "
    "other candidates, but unanswerable questions about the sample still get answered from "
    "unrelated stories once those are indexed (bench/README.md: 6 of 28 change over the "
    "sample + 930 BBC stories); remove this mark when it passes",
)
def test_decisions_do_not_move_when_unrelated_articles_are_added(tmp_path: Path) -> None:
    """Own questions about the sample: the sample indexed alone, then with the 510 BBC business
    stories. Same answered/declined decisions and the same first cited sentence, and "What did
    Bessent threaten?" cites "everything is on the table" in both."""
    from assistant.settings import Settings
    from index.sync import sync

    from .conftest import SAMPLE, _shared_dir

    business = _shared_dir() / "eval" / "bbc" / "business"
    if not business.is_dir():
        pytest.skip("BBC corpus not available")
    settings = Settings(home=tmp_path / "home", answerer="fitted")
    sync(settings, [str(SAMPLE)], show_bar=False)
    alone = _decisions(settings)
    sync(settings, [str(SAMPLE), str(business)], show_bar=False)
    crowded = _decisions(settings)
    assert crowded == alone
    assert "everything is on the table" in (crowded["What did Bessent threaten?"][1] or "")
    assert os.environ.get("ASSISTANT_HOME") != str(tmp_path / "home")


# --- our logic with a hand-made model (the parser is real, the scorer is not the fitted one) ---
def _doc(text: str, title: str = "Talks", n: int = 0):  # type: ignore[no-untyped-def]
    from langchain_core.documents import Document

    return Document(
        page_content=text,
        metadata={
            "chunk_id": f"c{n}",
            "article_id": f"a{n}",
            "title": title,
            "source": None,
            "published": None,
            "url": None,
            "start": 0,
            "end": len(text),
            "score": 0.5,
            "dense_score": 0.5,
            "context_before": "",
            "context_after": "",
        },
    )


def _coverage_model(threshold: float):  # type: ignore[no-untyped-def]
    """Ranker: coverage of the question minus a type miss; decline model: the ranker's own
    logit, so ``threshold`` applies to the best candidate's ranker probability."""
    from assistant.reader.features import FEATURES
    from assistant.reader.scorer import DECLINE_FEATURES, Linear, Model

    coef = np.zeros(len(FEATURES))
    coef[FEATURES.index("cov_ctx")] = 6.0
    coef[FEATURES.index("type_miss")] = -6.0
    n, m = len(FEATURES), len(DECLINE_FEATURES)
    ranker = Linear(FEATURES, np.zeros(n), np.ones(n), coef, -3.0)
    score = np.zeros(m)
    score[DECLINE_FEATURES.index("score")] = 1.0
    decline = Linear(DECLINE_FEATURES, np.zeros(m), np.ones(m), score, 0.0)
    return Model(ranker, decline, threshold)


def test_reader_quotes_the_typed_sentence_and_marks_its_phrase() -> None:
    from assistant.reader.reader import Reader

    docs = [_doc("The weather was mild. The trade talks were held in Kuala Lumpur on Friday.")]
    out = Reader(model=_coverage_model(0.5)).answer("Where were the trade talks held?", docs)
    assert out.answered
    assert out.short == "Kuala Lumpur"
    assert out.text.startswith("The trade talks were held in Kuala Lumpur") and "[1]" in out.text
    c = out.citations[0]
    assert c.passage[c.start - c.passage_start : c.end - c.passage_start] == c.quote


def test_pronoun_sentence_is_quoted_with_its_antecedent() -> None:
    from assistant.reader.reader import Reader

    docs = [_doc("Bessent spoke to reporters. But he warned that tariffs could double.")]
    out = Reader(model=_coverage_model(0.1)).answer("What did Bessent warn about tariffs?", docs)
    assert out.answered and out.short is None
    c = out.citations[0]
    assert c.quote.startswith("Bessent spoke") and c.quote.endswith("double.")
    assert c.passage[c.start - c.passage_start : c.end - c.passage_start] == c.quote


def test_headline_only_answers_cite_the_headline_itself() -> None:
    from assistant.reader.reader import Reader

    docs = [
        _doc("The show drew ten million viewers.", title="Netflix renews Wednesday for season two")
    ]
    out = Reader(model=_coverage_model(0.5)).answer("Which show did Netflix renew?", docs)
    assert out.answered
    c = out.citations[0]
    assert c.quote == "Netflix renews Wednesday for season two"
    assert c.passage[c.start - c.passage_start : c.end - c.passage_start] == c.quote


def test_decline_keeps_the_closest_passages() -> None:
    from assistant.reader.reader import Reader
    from assistant.types import NO_ANSWER

    docs = [_doc("Shares fell 3% on Monday.", n=i) for i in range(4)]
    out = Reader(model=_coverage_model(0.99)).answer("Who chairs the bank?", docs)
    assert not out.answered and out.text == NO_ANSWER
    assert 1 <= len(out.citations) <= 3


def test_bench_answer_match_splits_words_at_typographic_punctuation() -> None:
    """Every answer measure (`assistant eval`, bench/) counts an answer as right when the gold
    phrase is in it as whole words; a curly apostrophe or dash used to be dropped, gluing words
    together."""
    from assistant.evaluation.metrics import answer_correct as contains

    assert contains("Gustavo Petro will become Colombia’s first leftist leader", "Colombia")
    assert contains("prices for eggs soared 38% – chicken jumped", "chicken")
    assert contains("Maternity pay is to rise by £1,400.", "£1,400")
    assert not contains("Colombian coffee", "Colombia")


def test_count_question_candidates_are_numbers_tied_to_the_counted_noun() -> None:
    """ "How many consoles ...": the answer is a number, not a noun phrase headed by "console";
    a number that counts the focus noun is marked as tied to it, a date is not."""
    from assistant.reader.analysis import nlp
    from assistant.reader.candidates import focus_attached, typed_spans

    a = analyse("How many consoles did Sony ship to Japanese shops?")
    assert a.answer_type == "count" and a.focus == "console"
    doc = nlp()("Sony shipped 200,000 consoles to shops on Sunday, ahead of Nintendo's DS console.")
    spans = {doc.text[s:e]: (s, e) for s, e, _ in typed_spans(doc, a)}
    assert "200,000" in spans
    assert not any("console" in text for text in spans)  # phrases are not counts
    assert focus_attached(doc, *spans["200,000"], a.focus)
    if "Sunday" in spans:
        assert not focus_attached(doc, *spans["Sunday"], a.focus)
