"""`assistant eval`: the scoring rules as pure functions, and a smoke run on a tiny corpus."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from assistant.evaluation.datasets import load_questions
from assistant.evaluation.metrics import (
    Outcome,
    Passage,
    Question,
    answer_correct,
    citation_precision,
    find_span,
    first_hit_rank,
    has_evidence,
    is_gold_article,
    normalise,
    percentile,
    summarise,
)
from assistant.evaluation.report import format_table, write_rows

ARTICLES = {
    "news/harbour.txt": (
        "Harbour bridge reopens after repairs\n\n"
        "The Kelmouth harbour bridge reopened on Monday after eight months of repairs. Engineers "
        "replaced 140 steel cables that had corroded in the salt air. The work cost the town "
        "council £12 million, twice the original estimate.\n\nLocal traders said the closure had "
        "cut their takings by a third. The council leader, Mary Dalton, apologised for the delays."
    ),
    "news/orchard.txt": (
        "Cider maker wins national award\n\n"
        "A small cider maker from the village of Brockley has won the national gold medal for "
        "its dry cider. The family firm, run by Tom Ashby, uses apples from a 200-year-old "
        "orchard.\n\nJudges praised the cider's sharp taste. Ashby said he would use the prize "
        "money to plant 500 new trees next spring."
    ),
    "news/chess.txt": (
        "Teenager takes chess title\n\n"
        "Sixteen-year-old Priya Raman has become the youngest winner of the northern chess "
        "championship. She beat the defending champion, Oleg Marsh, in a final game lasting five "
        "hours.\n\nRaman learned to play at the age of six. She will now represent the region at "
        "the national finals in Leeds in June."
    ),
    "news/rail.txt": (
        "Rail fares to rise in January\n\n"
        "Rail fares will rise by an average of 3.1% in January, the rail operators have "
        "announced. Season tickets on some commuter routes will go up by more than £100 a year."
        "\n\nPassenger groups called the rise unfair. The transport minister said the money "
        "would pay for new signals and longer platforms."
    ),
}
QUESTIONS = [
    {
        "question": "How many steel cables did engineers replace on the Kelmouth harbour bridge?",
        "answer": "140",
        "article": "news/harbour.txt",
        "evidence": "Engineers replaced 140 steel cables that had corroded in the salt air.",
    },
    {
        "question": "Who did Priya Raman beat in the chess final?",
        "answer": "Oleg Marsh",
        "article": "news/chess.txt",
        "evidence": "She beat the defending champion, Oleg Marsh, in a final game lasting five hours.",
    },
    {
        "question": "By how much will rail fares rise in January?",
        "answer": "3.1%",
        "article": "news/rail.txt",
        "evidence": "Rail fares will rise by an average of 3.1% in January",
    },
    {"question": "What is the name of the penguin born at the city zoo?", "unanswerable": True},
]


def tiny_corpus(root: Path) -> Path:
    """Four small articles and four questions (one unanswerable); returns the questions file."""
    for rel, text in ARTICLES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    questions = root / "questions.jsonl"
    questions.write_text("\n".join(json.dumps(q) for q in QUESTIONS) + "\n", encoding="utf-8")
    return questions


TEXT = "First sentence here.\n\nEngineers replaced 140 steel\ncables today. Last one."
GOLD = Question(
    "q?",
    "140",
    "news/harbour.txt",
    "engineers replaced 140 steel cables today.",
    TEXT,
    find_span(TEXT, "engineers replaced 140 steel cables today."),
)


def _passage(text: str, origin: str = "/c/news/harbour.txt", start: int = 0) -> Passage:
    return Passage(text, origin, start, start + len(text), None)


def test_normalise_and_find_span_ignore_case_and_whitespace() -> None:
    assert normalise("  A\n\tB  c ") == "a b c"
    span = find_span(TEXT, "ENGINEERS replaced 140 steel cables")
    assert span is not None and TEXT[span[0] : span[1]].startswith("Engineers")
    assert find_span(TEXT, "not there") is None
    assert find_span(TEXT, "   ") is None


def test_gold_article_by_path_suffix_or_identical_text() -> None:
    assert is_gold_article(_passage("x"), GOLD)
    assert not is_gold_article(_passage("x", "/c/news/old-harbour.txt"), GOLD)
    duplicate = Passage("x", "/c/other/copy.txt", 0, 1, TEXT)
    assert is_gold_article(duplicate, GOLD)
    assert not is_gold_article(_passage("x"), Question("unanswerable?"))


def test_evidence_by_substring_or_by_overlap_within_the_gold_article() -> None:
    assert has_evidence(
        _passage("xx ENGINEERS  replaced 140 steel cables today. yy", "/a.txt"), GOLD
    )
    assert GOLD.evidence_span is not None
    start, end = GOLD.evidence_span
    half = Passage(TEXT[start : start + 20], "/c/news/harbour.txt", start, start + 20, None)
    assert has_evidence(half, GOLD)  # a chunk that cut the evidence in two still holds it
    elsewhere = Passage(TEXT[start : start + 20], "/c/other.txt", start, start + 20, None)
    assert not has_evidence(elsewhere, GOLD)  # same offsets, another article
    before = _passage(TEXT[:start], start=0)
    assert not has_evidence(before, GOLD)
    assert end > start


def test_rank_accuracy_and_citation_precision() -> None:
    miss = _passage("First sentence here.", "/c/other.txt")
    hit = _passage("Engineers replaced 140 steel cables today.", "/c/other.txt")
    gold_miss = _passage("First sentence here.")
    assert first_hit_rank([miss, gold_miss, hit], GOLD) == 3
    assert first_hit_rank([miss], GOLD) is None
    assert citation_precision([miss, gold_miss, hit, miss], GOLD) == 0.5
    assert citation_precision([], GOLD) is None
    assert answer_correct("They replaced  140 cables [1].", "140")
    assert not answer_correct("They replaced cables.", "140")
    assert not answer_correct("anything", None)
    assert not answer_correct("They replaced 1400 cables.", "140")  # whole words only
    assert answer_correct("Élysée talks, 5.5% up", "elysee talks 5.5%")


def test_timings_start_without_cached_question_vectors() -> None:
    from assistant.evaluation.askers import forget_cached_queries
    from index.embeddings import FakeTokenizingEmbeddings, SentenceTransformerEmbeddings

    calls: list[list[str]] = []

    class Counting(SentenceTransformerEmbeddings):
        def _encode(self, texts: Sequence[str]) -> list[list[float]]:  # no model needed
            calls.append(list(texts))
            return [[float(len(t))] for t in texts]

    embedder = Counting("unused")
    assert embedder.embed_query("q") == embedder.embed_query("q") == [1.0]
    assert calls == [["q"]]  # the second ask reused the vector
    forget_cached_queries(embedder)
    embedder.embed_query("q")
    assert calls == [["q"], ["q"]]  # a timed call after forgetting pays for its embedding
    forget_cached_queries(FakeTokenizingEmbeddings())  # no cache: nothing to do


def test_percentile_interpolates() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile(list(map(float, range(101))), 95) == pytest.approx(95.0)


def test_summarise_counts_declines_and_ranks() -> None:
    questions = [GOLD, GOLD, GOLD, Question("unanswerable?")]
    outcomes = [
        Outcome(rank=1, answered=True, correct=True, cited_evidence=True, precision=1.0),
        Outcome(rank=4, answered=True, correct=False, cited_evidence=False, precision=0.5),
        Outcome(rank=None, answered=False),  # a false decline: wrong, whatever it retrieved
        Outcome(answered=False, latency_ms=10.0),  # a right decline
    ]
    s = summarise(questions, outcomes)
    assert s["recall_at_1"] == pytest.approx(1 / 3)
    assert s["recall_at_4"] == s["recall_at_5"] == pytest.approx(2 / 3)
    assert s["mrr_at_10"] == pytest.approx((1 + 0.25) / 3)
    assert s["answer_accuracy"] == pytest.approx(1 / 3)
    assert s["cited_evidence_recall"] == pytest.approx(1 / 3)
    assert s["citation_precision"] == pytest.approx(0.75)
    assert s["decline_accuracy"] == 1.0
    assert s["false_decline_rate"] == pytest.approx(1 / 3)
    assert summarise([GOLD], [Outcome(rank=1)])["decline_accuracy"] is None


def test_a_set_without_evidence_quotes_has_no_evidence_recall() -> None:
    """Answers but no evidence (the held-out BBC set): recall is not measured, not 0."""
    bare = Question("q?", "140", "news/harbour.txt")
    s = summarise([bare, GOLD], [Outcome(rank=None, answered=True, correct=True), Outcome(rank=2)])
    assert s["recall_at_1"] == 0.0 and s["recall_at_4"] == 1.0  # GOLD alone counts
    assert s["answer_accuracy"] == 0.5  # both count
    only_bare = summarise([bare], [Outcome(rank=None, answered=True, correct=True)])
    assert only_bare["recall_at_5"] is None and only_bare["mrr_at_10"] is None
    assert only_bare["cited_evidence_recall"] is None and only_bare["answer_accuracy"] == 1.0


def test_load_questions_locates_evidence_in_the_gold_article(tmp_path: Path) -> None:
    questions = load_questions(tiny_corpus(tmp_path))
    assert [q.answerable for q in questions] == [True, True, True, False]
    first = questions[0]
    assert first.gold_text is not None and first.gold_text.startswith("The Kelmouth")
    assert first.evidence_span is not None
    assert first.gold_text[first.evidence_span[0] :].startswith("Engineers replaced 140")
    assert len(load_questions(tmp_path / "questions.jsonl", limit=2)) == 2


def test_bad_questions_file_is_a_config_error(tmp_path: Path) -> None:
    from assistant.errors import ConfigError

    bad = tmp_path / "q.jsonl"
    bad.write_text('{"answer": "no question"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="line 1"):
        load_questions(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_questions(tmp_path / "missing.jsonl")


def test_table_ratio_and_report_files(tmp_path: Path) -> None:
    table = format_table(
        [("recall", "r", "r"), ("none", "n", "n")], {"r": 0.8, "n": None}, {"r": 0.4, "n": 1.0}
    )
    assert "2.00x" in table.splitlines()[1]
    assert table.splitlines()[2].split()[-1] == "-"
    rows = [{"question": "q", "rank": 1}, {"question": "r", "rank": None}]
    write_rows(tmp_path / "r.json", rows)
    assert json.loads((tmp_path / "r.json").read_text())[1]["rank"] is None
    write_rows(tmp_path / "r.csv", rows)
    assert (tmp_path / "r.csv").read_text().splitlines()[0] == "question,rank"


def test_eval_on_the_current_index_with_the_fake_embedder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--use-current asks the index already built; the tutorial indexes that index's sources."""
    from assistant.api import sync_articles
    from assistant.evaluation.quality import main
    from assistant.settings import Settings

    settings = Settings(home=tmp_path / "home", embedding_model="fake")
    questions = tiny_corpus(tmp_path / "corpus")
    sync_articles([str(tmp_path / "corpus" / "news")], settings=settings)
    report = tmp_path / "report.json"
    argv = [str(questions), "--use-current", "--baseline", "--limit", "2", "--json"]
    assert main([*argv, "--report", str(report)], settings) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["questions"] == 2 and summary["ours"]["index_seconds"] is None
    assert summary["ours"]["articles"] == summary["tutorial"]["articles"] == 4
    rows = json.loads(report.read_text(encoding="utf-8"))
    assert [r["question"] for r in rows] == [q["question"] for q in QUESTIONS[:2]]
    assert {"rank", "correct", "tutorial_rank", "tutorial_text"} <= set(rows[0])


@pytest.mark.integration
def test_eval_smoke_on_a_tiny_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`assistant eval` end to end: real model, real Chroma, ours and the tutorial pipeline."""
    from assistant.cli import main

    questions = tiny_corpus(tmp_path / "corpus")
    report = tmp_path / "report.csv"
    code = main(["eval", str(questions), "--baseline", "--json", "--report", str(report)])
    assert code == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert "evidence recall@1" in out and "ours/tut" in out
    assert summary["questions"] == 4 and summary["answerable"] == 3
    rates = ["recall_at_1", "recall_at_5", "mrr_at_10", "cited_evidence_recall"]
    rates += ["answer_accuracy", "citation_precision", "decline_accuracy", "false_decline_rate"]
    for pipeline in ("ours", "tutorial"):
        for key in rates:
            assert 0.0 <= summary[pipeline][key] <= 1.0, (pipeline, key)
        assert summary[pipeline]["latency_p50_ms"] > 0
        assert summary[pipeline]["latency_p95_ms"] >= summary[pipeline]["latency_p50_ms"]
    # On four unrelated articles every gold passage must be found first.
    assert summary["ours"]["recall_at_1"] == 1.0
    assert summary["tutorial"]["decline_accuracy"] == 0.0  # the tutorial never declines
    assert len(report.read_text(encoding="utf-8").splitlines()) > 4


def test_eval_baseline_without_the_eval_extra_fails_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--baseline` needs the eval extra; without it the command says which extra to install
    before indexing anything (it used to crash with an ImportError after all of our side ran)."""
    import sys

    from assistant import api
    from assistant.cli import main

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("indexed before checking that the eval extra is installed")

    monkeypatch.setitem(sys.modules, "langchain_chroma", None)  # as if not installed
    monkeypatch.setattr(api, "sync_articles", no_work)
    questions = tiny_corpus(tmp_path / "corpus")
    argv = ["eval", str(questions), "--baseline", "--home", str(tmp_path / "home")]
    assert main([*argv, "--embedding-model", "fake"]) == 2
    err = capsys.readouterr().err
    assert "article-assistant[eval]" in err and "langchain_chroma" in err
