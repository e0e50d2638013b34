"""RealTime QA in `assistant eval`: the folder read as published, the pool, and the scoring."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from assistant.evaluation import realtimeqa as rtqa

ARTICLES = [
    {
        "doc_id": "dgold1",
        "url": "https://example.com/squid",
        "title": "Squid Game renewed",
        "text": "Netflix announced Sunday that the wildly popular South Korean show Squid Game "
        "is green lit for a second season.",
        "publish_date": "2022-06-12",
    },
    {
        "doc_id": "dgold2",
        "url": "https://example.com/usbc",
        "title": "One charger for all",
        "text": "European regulators announced a plan that will require USB-C ports on every "
        "phone sold in Europe.",
        "publish_date": "2022-06-13",
    },
    {"doc_id": "dsearch1", "url": "https://example.com/a", "title": "Other", "text": "Cats nap."},
    {"doc_id": "dsearch2", "url": "https://example.com/b", "title": "Other", "text": "Dogs run."},
    {"doc_id": "dsearch9", "url": "https://example.com/c", "title": "Far", "text": "Rain falls."},
    {"doc_id": "dempty", "url": "https://example.com/d", "title": "Empty", "text": ""},
]
QUESTIONS = [
    {
        "question_id": "w_0",
        "question_date": "2022/06/16",
        "question": "Which wildly popular show was recently green lit for a new season?",
        "choices": ["“Game of Thrones”", "“Squid Game”", "“Breaking Bad”", "“Friends”"],
        "answer_idx": [1],
        "answer_text": ["“Squid Game”"],
        "gold_doc_ids": ["dgold1"],
        "gcs_doc_ids": ["dsearch1", "dgold1", "dsearch2", "dsearch9"],
    },
    {
        "question_id": "w_1",
        "question_date": "2022/06/16",
        "question": "Which continent will require a common charging port on phones?",
        "choices": ["Europe", "North America", "Asia", "Africa"],
        "answer_idx": [0],
        "answer_text": ["Europe"],
        "gold_doc_ids": ["dgold2"],
        "gcs_doc_ids": ["dempty"],
    },
    {  # no gold article: not in the gold subset
        "question_id": "w_2",
        "question_date": "2022/06/16",
        "question": "Who won?",
        "choices": ["A", "B", "C", "D"],
        "answer_idx": [2],
        "answer_text": ["C"],
        "gold_doc_ids": [],
        "gcs_doc_ids": ["dsearch9"],
    },
]


def rtqa_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = "\n".join(json.dumps(q) for q in QUESTIONS) + "\n"
    (root / "questions.jsonl").write_text(lines, encoding="utf-8")
    with gzip.open(root / "articles.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(a) + "\n" for a in ARTICLES)
    return root


def test_gold_subset_and_pool(tmp_path: Path) -> None:
    folder = rtqa_folder(tmp_path / "rtqa")
    questions = rtqa.load_questions(folder)
    assert [q.question_id for q in questions] == ["w_0", "w_1"]  # only those with gold docs
    assert questions[0].answer_text == "“Squid Game”" and questions[0].answer_idx == 1
    assert str(questions[0].question_date) == "2022-06-16"
    pool = rtqa.pool_ids(questions, "gold+top3")
    assert pool == {"dgold1", "dgold2", "dsearch1", "dsearch2", "dempty"}  # not rank 4
    articles = rtqa.load_articles(folder, pool)
    assert set(articles) == pool - {"dempty"}  # no text, nothing to index
    assert len(rtqa.load_articles(folder, rtqa.pool_ids(questions, "all"))) == 5
    assert len(rtqa.load_questions(folder, limit=1)) == 1


def test_normalisation_follows_upstream_and_drops_typographic_quotes() -> None:
    assert rtqa.normalize_answer("  “Squid  Game”, the U.S.!  ") == "squid game the us"
    assert rtqa.normalize_answer("30歳") == "30"


def test_multiple_choice_picks_the_supported_choice_or_nothing() -> None:
    choices = ["Europe", "North America", "Asia", "Africa"]
    assert rtqa.pick_choice(choices, "Phones sold in Europe need USB-C [1].", []) == 0
    assert rtqa.pick_choice(choices, "", ["regulators in Europe"]) == 0  # quotes count
    assert rtqa.pick_choice(choices, "No answer.", []) is None  # nothing supports any
    assert rtqa.pick_choice(choices, "Europe and Asia [1].", []) is None  # a tie picks nothing
    # Words every choice shares say nothing: "ban" does not favour any of these.
    bans = ["Ban on guns", "Ban on cars", "Ban on boats", "Ban on planes"]
    assert rtqa.pick_choice(bans, "The ban on cars starts in May.", []) == 1
    assert rtqa.pick_choice(bans, "A ban was announced.", []) is None


def test_the_as_of_hook_passes_the_date_only_when_answer_takes_it() -> None:
    def without(question: str, *, k: int | None = None) -> None: ...

    def with_as_of(question: str, *, as_of: object = None) -> None: ...

    assert not rtqa.answer_as_of(without)
    assert rtqa.answer_as_of(with_as_of)


def test_eval_on_a_tiny_realtimeqa_folder_with_the_fake_embedder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`assistant eval FOLDER`: indexes the pool in a temp home, asks the gold subset."""
    from assistant.cli import main

    folder = rtqa_folder(tmp_path / "rtqa")
    report = tmp_path / "report.json"
    argv = ["eval", str(folder), "--embedding-model", "fake", "--as-of", "--json"]
    assert main([*argv, "--home", str(tmp_path / "home"), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "gold article hit@10" in out and "0.587" in out  # beside upstream's anchor
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["questions"] == 2 and summary["pool"] == "gold+top3"
    assert summary["ours"]["articles"] == 4
    assert summary["as_of"] in {"passed", "unsupported"}
    for key in ("hit_at_1", "hit_at_10", "mrr_at_10", "answer_in_text", "mc_accuracy"):
        assert 0.0 <= summary["ours"][key] <= 1.0, key
    rows = json.loads(report.read_text(encoding="utf-8"))
    assert [r["question_id"] for r in rows] == ["w_0", "w_1"]
    # Four articles: the gold one is always within the top 10 articles ranked.
    assert all(r["gold_rank"] is not None for r in rows)
    assert not (tmp_path / "home").exists()  # the user's index is not touched


def test_realtimeqa_refuses_options_it_cannot_honour(tmp_path: Path) -> None:
    from assistant.cli import main

    folder = rtqa_folder(tmp_path / "rtqa")
    assert main(["eval", str(folder), "--baseline", "--embedding-model", "fake"]) == 2
