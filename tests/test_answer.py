"""Answers: hybrid retrieval, the extractive answerer, the public API and `assistant ask`."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from langchain_core.documents import Document

from assistant import NO_ANSWER, Answer, answer, stream_answer
from assistant.chain import build_chain, normalise_history
from assistant.cli import main as cli_main
from assistant.errors import BadQuestionError
from assistant.extractive import ExtractiveAnswerer, expected_type, has_type
from assistant.fusion import reciprocal_rank_fusion
from assistant.questions import clean_question
from assistant.settings import Settings
from assistant.wordweights import question_weights
from index.embeddings import CachedQueryEmbeddings, FakeTokenizingEmbeddings
from index.lexical import stem
from index.sync import sync

from .conftest import SAMPLE

OWN_QUESTIONS = Path(__file__).parent.parent / "bench" / "data" / "reader-questions.jsonl"


def assert_markers_resolve(result: Answer) -> None:
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", result.text)}
    assert numbers <= {c.n for c in result.citations}
    for c in result.citations:
        # The quote is exactly where its offsets say, inside the passage shown with it.
        assert c.quote
        assert c.passage[c.start - c.passage_start : c.end - c.passage_start] == c.quote


# --- unit: pure logic ------------------------------------------------------------------------
def test_rrf_rewards_agreement() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]])
    assert [i for i, _ in fused][:2] == ["a", "c"]
    assert {i for i, _ in fused} == {"a", "b", "c", "d"}


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How much is Mick Mars being sued for?", "money"),
        ("How many people took part in the poll?", "quantity"),
        ("By what score did Monfils beat Gaudio?", "quantity"),
        ("Which film was Kidman shooting when she took action?", "name"),
        ("When did the talks start?", "date"),
        ("What did Bessent threaten?", None),
    ],
)
def test_expected_answer_type(question: str, kind: str | None) -> None:
    assert expected_type(question) == kind


def test_amount_in_another_currency_does_not_answer() -> None:
    q = "What is the US price of the car in dollars?"
    assert not has_type("It costs under £80,000.", "money", q)
    assert has_type("It sells for $140,000 in the US.", "money", q)


def test_a_percentage_answers_how_much_more_but_not_how_much() -> None:
    more = "How much more did the steel maker agree to pay for iron ore?"
    assert has_type("It agreed to pay 72% more for iron ore.", "money", more)
    assert not has_type("It agreed to pay more for iron ore.", "money", more)
    assert not has_type("Its shares fell 3%.", "money", "How much did it pay for the ore?")


def test_ampersand_names_are_one_lexical_token() -> None:
    from index.lexical import tokenize

    assert tokenize("R&B singer and AT&T") == ["r&b", "singer", "at&t"]
    assert "b" not in tokenize("the R&B charts")  # a lone "B" elsewhere must not match it


def doc(text: str, n: int, before: str = "", after: str = "") -> Document:
    return Document(
        page_content=text,
        metadata={
            "chunk_id": f"a:{n}",
            "article_id": "a",
            "title": "Talks",
            "source": None,
            "published": None,
            "url": None,
            "start": len(before),
            "end": len(before) + len(text),
            "score": 1.0 / (n + 1),
            "context_before": before,
            "context_after": after,
        },
    )


def test_pronoun_sentence_brings_its_antecedent() -> None:
    before = "Bessent said he hoped for a deal. "
    text = 'But he also cautioned that "everything is on the table" if talks fail.'
    answerer = ExtractiveAnswerer(FakeTokenizingEmbeddings(), _uniform, threshold=-1)
    out, citations, answered = answerer.answer("What did Bessent caution?", [doc(text, 0, before)])
    assert answered
    assert citations[0].quote.startswith("Bessent said")
    assert citations[0].quote.endswith("fail.")
    assert out.endswith("[1]")
    c = citations[0]
    assert c.passage[c.start - c.passage_start : c.end - c.passage_start] == c.quote


def test_a_quote_is_shown_inside_its_whole_paragraph() -> None:
    """The passage shown with a quote runs from its paragraph's start to its paragraph's end,
    even where those lie outside the retrieved chunk."""
    before = "Old news.\nTalks began in May. The move angered Trump, who threatened tariffs. "
    text = 'But he also said "everything is on the table".'
    after = " Markets fell.\nNext story."
    answerer = ExtractiveAnswerer(FakeTokenizingEmbeddings(), _uniform, threshold=-1)
    _, citations, answered = answerer.answer(
        "What did he say was on the table?", [doc(text, 0, before, after)]
    )
    assert answered
    c = citations[0]
    assert c.passage.startswith("Talks began in May.")
    assert c.passage.endswith("Markets fell.")
    assert c.passage[c.start - c.passage_start : c.end - c.passage_start] == c.quote
    assert "everything is on the table" in c.quote


def test_declines_below_threshold_and_keeps_closest_passages() -> None:
    answerer = ExtractiveAnswerer(FakeTokenizingEmbeddings(), _uniform, threshold=5.0)
    text, citations, answered = answerer.answer("Who won?", [doc("Rain fell in Leeds.", 0)])
    assert (text, answered) == (NO_ANSWER, False)
    assert citations and citations[0].quote == "Rain fell in Leeds."


class _CountingFake(CachedQueryEmbeddings):
    """LangChain's deterministic fake vectors, counting the texts it is asked to embed."""

    name = "counting-fake"
    max_tokens = 254
    backend = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.fake = FakeTokenizingEmbeddings()
        self.encoded = 0

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.fake.token_spans(text)

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        self.encoded += len(texts)
        return self.fake.embed_documents(list(texts))


def test_a_repeated_question_reuses_sentence_vectors() -> None:
    """Speed without a changed answer: the second time the same passages are scored (a repeated
    question, a follow-up, the dated re-read) no sentence is embedded again."""
    embedder = _CountingFake()
    answerer = ExtractiveAnswerer(embedder, threshold=-1)
    plain = ExtractiveAnswerer(FakeTokenizingEmbeddings(), threshold=-1)
    docs = [
        doc("Bessent said talks went well. He threatened new tariffs on steel.", 0),
        doc("Rain fell in Leeds. The match was called off.", 1),
    ]
    question = "What did Bessent threaten?"
    first = answerer.answer(question, docs)
    embedded = embedder.encoded
    assert embedded > 0
    assert first == answerer.answer(question, docs) == plain.answer(question, docs)
    assert embedder.encoded == embedded


def test_question_words_weigh_the_same_whatever_is_indexed() -> None:
    """The weights come from general English frequency, not from the index: a rare word
    outweighs a common one and a name never seen weighs most; ``question_weights`` is given
    the question alone, so no index can move them."""
    weights = question_weights("What did Bessent say about the tariff truce?")
    assert weights[stem("bessent")] == pytest.approx(7.0)
    assert weights[stem("tariff")] > weights[stem("say")] > 0


def _uniform(question: str) -> dict[str, float]:
    """Every question term weighs 1 (the answerer's default for a term it has no weight for)."""
    return {}


def test_question_hygiene() -> None:
    assert clean_question("  what\x00 happened?\n") == "what happened?"
    assert len(clean_question("why " * 50_000)) == 2000
    with pytest.raises(BadQuestionError, match="empty"):
        clean_question(" \t\n")


def test_history_formats() -> None:
    pairs = normalise_history(
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    )
    assert pairs == [("a", "b")]
    assert normalise_history([("x", "y")]) == [("x", "y")]


def test_chain_with_fake_embedder(fake_settings: Settings, tmp_path: Path) -> None:
    """LCEL chain: invoke, stream and batch over a tiny index (fake embeddings)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(
        "Lunar rover lands\n\nThe lunar rover landed near the crater "
        "on Monday. It sent back 40 photos.\n"
    )
    sync(fake_settings, [str(docs)], show_bar=False)
    from assistant.api import open_index

    chain = build_chain(open_index(fake_settings), k=3)
    merged = chain.invoke({"question": "Where did the lunar rover land?", "history": []})
    assert merged.answer is not None and merged.answer.citations
    chunks = list(chain.stream({"question": "How many photos did the rover send?"}))
    assert chunks[-1].answer is not None
    assert len(chain.batch([{"question": "rover"}, {"question": "crater"}])) == 2


# --- integration: real model, real Chroma -----------------------------------------------------
@pytest.fixture
def sample_index(real_settings: Settings) -> Settings:
    sync(real_settings, [str(SAMPLE)], show_bar=False)
    return real_settings


@pytest.mark.integration
def test_the_sample_alone_answers_its_answerable_questions(sample_index: Settings) -> None:
    """One article indexed alone: the answerable sample questions of our own set are answered
    (issue 12: at most 5% declined). With corpus IDF 6 of these 18 were declined, because over
    one article every indexed word is common and a question word the article lacks outweighed
    the rest; question words now weigh the same whatever is indexed."""
    rows = [json.loads(line) for line in OWN_QUESTIONS.read_text().splitlines() if line.strip()]
    asked = [r for r in rows if r["article"].startswith("sample:") and r["answer"]]
    results = {r["question"]: answer(r["question"], settings=sample_index) for r in asked}
    declined = [q for q, result in results.items() if not result.answered]
    assert len(asked) >= 15
    assert len(declined) <= 0.05 * len(asked), declined
    # ... and answered right, by the benchmarks' rule: the gold phrase in it as whole words
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from fit_reader import contains

    wrong = [r["question"] for r in asked if not contains(results[r["question"]].text, r["answer"])]
    assert len(wrong) <= 0.1 * len(asked), wrong


@pytest.mark.integration
def test_bessent_question_cites_everything_is_on_the_table(sample_index: Settings) -> None:
    result = answer("What did Bessent threaten?", settings=sample_index)
    assert result.answered, result.text
    assert any("everything is on the table" in c.quote for c in result.citations)
    assert_markers_resolve(result)
    for c in result.citations:
        assert c.title.startswith("Fifth round") and c.published == "2025-10-24"


@pytest.mark.integration
def test_streaming_yields_text_then_answer(sample_index: Settings) -> None:
    events = list(stream_answer("Who leads the U.S. delegation?", settings=sample_index))
    assert isinstance(events[-1], Answer)
    assert all(isinstance(e, str) for e in events[:-1]) and events[:-1]


@pytest.mark.integration
def test_unrelated_question_is_declined(sample_index: Settings) -> None:
    result = answer("How many goals did Arsenal score against Chelsea?", settings=sample_index)
    assert not result.answered
    assert result.text.startswith(NO_ANSWER)
    assert result.citations  # the closest passages are still shown


@pytest.mark.integration
@pytest.mark.parametrize("question", ["¿Qué amenazó Bessent?", "a" * 100_000, "\x1b[31m?\x07"])
def test_odd_questions_never_traceback(sample_index: Settings, question: str) -> None:
    result = answer(question, settings=sample_index)
    assert isinstance(result.text, str) and result.text


@pytest.mark.integration
def test_cli_ask_json_and_plain(sample_index: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    home = str(sample_index.home)
    assert cli_main(["ask", "What did Bessent threaten?", "--json", "--home", home]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"question", "answer", "answered", "citations"} <= set(data)
    assert cli_main(["ask", "What did Bessent threaten?", "--home", home]) == 0
    out = capsys.readouterr().out
    assert "Sources:" in out and "[1]" in out
    assert cli_main(["ask", "   ", "--home", home]) == 2


def test_a_question_from_the_command_line_skips_the_exit_collection(
    sample_index: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cold start: `assistant ask` freezes the heap before the process exits, so Python's
    shutdown does not walk it (0.3 s); a caller of ``main([...])`` (tests, scripts) is left
    alone, and so are the commands that write."""
    import gc

    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    home = str(sample_index.home)
    assert cli_main(["ask", "What did Bessent threaten?", "--home", home]) == 0
    assert frozen == []
    monkeypatch.setattr("sys.argv", ["assistant", "status", "--home", home])
    assert cli_main() == 0
    assert frozen == []
    monkeypatch.setattr(
        "sys.argv", ["assistant", "ask", "What did Bessent threaten?", "--home", home]
    )
    assert cli_main() == 0
    assert frozen == [True]
    assert "Sources:" in capsys.readouterr().out


def test_cli_ask_on_empty_index_says_how_to_build_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli_main(["ask", "anything?", "--home", str(tmp_path / "empty")])
    assert code == 1
    assert "assistant index" in capsys.readouterr().err
