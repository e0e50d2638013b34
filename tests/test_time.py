"""Time-aware answering (issue 13): the as-of filter on both sides of hybrid search, recency,
dated answers and citations, the changed-story answer, and a dated-story set with expected
answers per as-of date (real model, real Chroma)."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from assistant.api import answer, open_index
from assistant.retrieval import HybridRetriever
from assistant.settings import Settings
from assistant.types import Answer
from index.search import ChunkFilter
from index.sync import sync

STORY = Path(__file__).parent / "dated_story"


# --- the filter itself -------------------------------------------------------------------------
def test_as_of_where_clause_lets_undated_through() -> None:
    """Chroma stores an undated article's date as 0, so ``$lte`` keeps it; a window does not."""
    assert ChunkFilter(as_of=date(2025, 9, 20)).where() == {"published": {"$lte": 20250920}}
    assert not ChunkFilter(as_of=date(2025, 9, 20)).is_empty


@pytest.fixture
def story_settings(store_settings: Settings, tmp_path: Path) -> Settings:
    folder = tmp_path / "story"
    shutil.copytree(STORY, folder)
    sync(store_settings, [str(folder)], show_bar=False)
    return store_settings


@pytest.mark.integration
def test_as_of_retrieves_nothing_published_later(story_settings: Settings) -> None:
    """Dense and lexical sides both drop later articles (embedded and server Chroma); undated
    articles stay, since nothing shows they are from the future."""
    index = open_index(story_settings)
    as_of = date(2025, 9, 20)
    where = ChunkFilter(as_of=as_of)
    query = "Valmora port strike container fee chief executive pay rise apple harvest"
    dense = index.search_dense(query, 50, where)
    assert dense
    fetched = index.fetch(
        [i for i, _ in dense] + [i for i, _ in index.search_lexical(query, 50)], where
    )
    published = {c.article.published for c in fetched.values()}
    assert published and all(p is None or p <= "2025-09-20" for p in published)
    assert None in published  # the undated apple story is kept
    assert "2025-09-20" in published  # the as-of day itself is included
    docs = HybridRetriever(index=index, k=20, as_of=as_of).invoke(query)
    assert docs and all((d.metadata["published"] or "") <= "2025-09-20" for d in docs)
    unfiltered = HybridRetriever(index=index, k=20).invoke(query)
    assert any((d.metadata["published"] or "") > "2025-09-20" for d in unfiltered)


@pytest.mark.integration
def test_an_as_of_that_excludes_nothing_is_not_sent_to_chroma(
    story_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every question carries as_of (today by default), and a Chroma metadata filter checks
    every chunk (0.7 s a question at 108k chunks): when no article is dated after as_of the
    clause is dropped, with the same hits; when one is, the clause still reaches Chroma."""
    index = open_index(story_settings)
    sent: list[object] = []
    query_vectors = index.vectors.query

    def spy(vector: list[float], k: int, where: object = None) -> list[tuple[str, float]]:
        sent.append(where)
        return query_vectors(vector, k, where=where)

    monkeypatch.setattr(index.vectors, "query", spy)
    query = "Valmora port strike container fee"
    after_all = index.search_dense(query, 10, ChunkFilter(as_of=date(2026, 1, 1)))
    assert sent[-1] is None
    assert after_all == index.search_dense(query, 10)
    index.search_dense(query, 10, ChunkFilter(as_of=date(2025, 9, 20)))
    assert sent[-1] == {"published": {"$lte": 20250920}}


# --- dated-story set ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    question: str
    as_of: date
    expected: str


CASES = [
    Case("How many dockworkers are on strike at the port of Valmora?", date(2025, 9, 6), "4,000"),
    Case("How many dockworkers are on strike at the port of Valmora?", date(2025, 9, 21), "6,500"),
    Case("How many dockworkers are on strike at the port of Valmora?", date(2025, 10, 11), "6,500"),
    Case(
        "Who is the chief executive of the Valmora port authority?", date(2025, 9, 6), "Marcus Hale"
    ),
    Case(
        "Who is the chief executive of the Valmora port authority?",
        date(2025, 9, 21),
        "Ingrid Soto",
    ),
    Case(
        "Who is the chief executive of the Valmora port authority?",
        date(2025, 10, 26),
        "Ingrid Soto",
    ),
    Case("What is the container fee at the port of Valmora?", date(2025, 9, 6), "120 euros"),
    Case("What is the container fee at the port of Valmora?", date(2025, 10, 11), "150 euros"),
    Case("How much is the Valmora container fee now?", date(2025, 10, 26), "150 euros"),
    Case("What pay rise did the Valmora dockworkers accept?", date(2025, 10, 26), "9 percent"),
    Case("Who leads the dockworkers' union at Valmora?", date(2025, 9, 6), "Petra Lind"),
    Case(
        "Who resigned as chief executive of the Valmora port authority?",
        date(2025, 9, 21),
        "Marcus Hale",
    ),
    Case("How many dockworkers walked out at Valmora this week?", date(2025, 9, 10), "4,000"),
    Case(
        "What happened at the port of Valmora yesterday?",
        date(2025, 10, 26),
        "ended their seven-week strike",
    ),
]

_DATED_PART = re.compile(r"\b[Oo]n \d{1,2} [A-Z][a-z]{2} \d{4}: ")


def latest_statement(result: Answer) -> str:
    """What the answer says holds now: the last dated part of a changed-story answer, else all."""
    return _DATED_PART.split(result.text)[-1]


def score(settings: Settings) -> tuple[float, list[str], list[str]]:
    """(share right for its date, every miss, the answers that cite an article published after
    their as-of date)."""
    right, misses, late = 0, [], []
    for case in CASES:
        result = answer(case.question, settings=settings, as_of=case.as_of)
        cited_dates = [c.published for c in result.citations if c.published]
        in_time = all(d <= case.as_of.isoformat() for d in cited_dates)
        ok = result.answered and case.expected in latest_statement(result) and in_time
        right += ok
        if not ok:
            misses.append(f"{case.question} @ {case.as_of}: {result.text}")
        if not in_time:
            late.append(misses[-1])
    return right / len(CASES), misses, late


@pytest.fixture
def story_index(real_settings: Settings, tmp_path: Path) -> Settings:
    folder = tmp_path / "story"
    shutil.copytree(STORY, folder)
    sync(real_settings, [str(folder)], show_bar=False)
    return real_settings


@pytest.mark.integration
def test_dated_story_answers_are_right_for_their_date(story_index: Settings) -> None:
    """Measured 13/14 (0.93) with the extractive reader weighing question words by general
    English frequency (12/14 with corpus IDF, both misses declines). The one miss answers "who
    leads the union" with the walk-out sentence of the right date: a reader miss, not a time
    one. The time property is asserted strictly: nothing published after the as-of date is
    cited."""
    accuracy, misses, late = score(story_index)
    print(f"dated-story accuracy {accuracy:.2f}")
    assert not late, "\n".join(late)
    assert accuracy >= 0.9, "\n".join(misses)


@pytest.mark.integration
def test_answers_say_when(story_index: Settings) -> None:
    result = answer(
        "What pay rise did the Valmora dockworkers accept?",
        settings=story_index,
        as_of=date(2025, 10, 26),
    )
    assert result.text.startswith("As of 25 Oct 2025 [1]: "), result.text
    assert result.as_of == "2025-10-26" and result.window is None
    assert result.to_dict()["as_of"] == "2025-10-26"
    windowed = answer(
        "How many dockworkers walked out at Valmora this week?",
        settings=story_index,
        as_of=date(2025, 9, 10),
    )
    assert windowed.window == ("2025-09-04", "2025-09-10")
    assert windowed.text.startswith("Looking at articles from 4-10 Sep 2025."), windowed.text


@pytest.mark.integration
def test_changed_story_shows_both_dates(story_index: Settings) -> None:
    """Two dated articles give two chief executives: both are shown, oldest first."""
    result = answer(
        "Who is the chief executive of the Valmora port authority?",
        settings=story_index,
        as_of=date(2025, 9, 21),
    )
    assert "On 5 Sep 2025:" in result.text and "on 20 Sep 2025:" in result.text, result.text
    assert "Marcus Hale" in result.text and "Ingrid Soto" in latest_statement(result)
    assert [c.published for c in result.citations] == ["2025-09-05", "2025-09-20"]


def _chunk(published: str | None) -> object:
    article = type("A", (), {"published": published})()
    return type("C", (), {"article": article})()


def test_recency_decay_prefers_newer_and_never_undated() -> None:
    """Onyx-style decay: a newer passage overtakes a slightly better older one; an undated one
    loses a tie to a dated one of equal score; weight 0 (ASSISTANT_RECENCY=0) changes nothing."""
    from assistant.retrieval import _decayed

    stored = {"old": _chunk("2023-10-26"), "new": _chunk("2025-10-20"), "nodate": _chunk(None)}
    fused = [("old", 0.0330), ("new", 0.0320), ("nodate", 0.0320)]
    as_of = date(2025, 10, 26)
    assert next(i for i, _ in _decayed(fused, stored, as_of, 0.5)) == "new"
    tie = {"a": _chunk(None), "b": _chunk("2000-01-01")}
    assert [i for i, _ in _decayed([("a", 0.03), ("b", 0.03)], tie, as_of, 0.5)] == ["b", "a"]
    assert Settings(recency=0).recency == 0


@pytest.mark.parametrize(
    ("dates", "grace", "expected"),
    [
        # inside the grace: no preference, the better-scored (older) passage stays first
        (("2025-10-20", "2025-10-25"), 7, ["first", "second"]),
        # no grace: the newer one overtakes a slightly better one
        (("2025-10-20", "2025-10-25"), 0, ["second", "first"]),
        # past the grace the older one decays (age counted from the grace's start)
        (("2025-06-01", "2025-10-25"), 7, ["second", "first"]),
        # both far past it: both at the floor, the ranking is unchanged (an archive read today)
        (("2004-06-01", "2004-10-25"), 7, ["first", "second"]),
    ],
)
def test_age_prior_decays_only_past_its_grace(
    dates: tuple[str, str], grace: int, expected: list[str]
) -> None:
    from assistant.retrieval import _decayed

    stored = {"first": _chunk(dates[0]), "second": _chunk(dates[1])}
    fused = [("first", 0.0330), ("second", 0.0325)]
    ranked = _decayed(fused, stored, date(2025, 10, 26), 5.0, grace)
    assert [i for i, _ in ranked] == expected


_HARBOUR = {
    "2025-03-03-dredging-begins.md": (
        "2025-03-03",
        "Dredging begins in the Valmora channel",
        "The port of Valmora began dredging its northern channel on Monday so that larger "
        "container ships can reach the harbour, the harbour master said.",
    ),
    "2025-10-21-dredging-resumes.md": (
        "2025-10-21",
        "Work on the harbour resumes",
        "Crews restarted work at the Valmora harbour after a summer pause; ships will use the "
        "deeper berths from December.",
    ),
    "2025-10-23-dredging-tender.md": (
        "2025-10-23",
        "Valmora picks a contractor",
        "Valmora chose a Dutch firm to finish the work on its harbour by the spring.",
    ),
}


@pytest.fixture
def harbour_index(real_settings: Settings, tmp_path: Path) -> Settings:
    folder = tmp_path / "harbour"
    folder.mkdir()
    for name, (published, title, text) in _HARBOUR.items():
        body = f"---\ntitle: {title}\npublished: {published}\n---\n{text}\n"
        (folder / name).write_text(body, encoding="utf-8")
    sync(real_settings, [str(folder)], show_bar=False)
    return real_settings


@pytest.mark.integration
def test_age_prior_ranks_recent_news_above_an_old_story_in_chroma(
    harbour_index: Settings,
) -> None:
    """The question names no date, yet asked on 24 Oct it is about this week's news: the age
    prior (every question, not only current-state ones) puts a recent report above a closer
    match from March. Within the grace the two recent reports keep their relevance order."""
    index = open_index(harbour_index)
    question = "Which channel did the port of Valmora start dredging?"
    as_of = date(2025, 10, 24)

    def ranking(**time: Any) -> list[str]:
        docs = HybridRetriever(index=index, k=5, as_of=as_of, **time).invoke(question)
        return list(dict.fromkeys(d.metadata["published"] for d in docs))

    plain = ranking()
    assert plain[0] == "2025-03-03", plain  # the closest match is the old story
    prior = ranking(age_prior=5.0, age_grace_days=7)
    assert prior[0] != "2025-03-03" and prior[-1] == "2025-03-03", prior
    recent = [d for d in plain if d != "2025-03-03"]
    assert [d for d in prior if d != "2025-03-03"] == recent  # no preference inside the grace
    assert ranking(age_prior=0.0, age_grace_days=7) == plain  # 0 turns it off


# --- article dates from a dateline -------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "published"),
    [
        ("Talks resume\n\nWASHINGTON, Oct. 24, 2025 (Reuters) - The talks resumed.", "2025-10-24"),
        ("Prices rise\n\nLONDON, 24 October 2025 - Prices rose again.", "2025-10-24"),
        ("Talks resume\n\nWASHINGTON, Oct 24 (Reuters) - No year, no date.", None),
        ("Talks resume\n\nThe talks began on Oct 24, 2025 - not a dateline.", None),
    ],
)
def test_text_articles_take_their_date_from_a_dateline(
    tmp_path: Path, text: str, published: str | None
) -> None:
    from index.loaders import load_file

    path = tmp_path / "story.txt"
    path.write_text(text, encoding="utf-8")
    (article,) = load_file(path, max_bytes=10_000).articles
    assert (article.published.isoformat() if article.published else None) == published


def test_metadata_date_wins_over_a_dateline(tmp_path: Path) -> None:
    from index.loaders import load_file

    path = tmp_path / "story.md"
    path.write_text("---\npublished: 2025-09-01\n---\nLONDON, 24 October 2025 - Text.\n")
    (article,) = load_file(path, max_bytes=10_000).articles
    assert article.published == date(2025, 9, 1)


# --- the UI handler passes the as-of date --------------------------------------------------------
def test_ui_as_of_option_reaches_the_answer_call(tmp_path: Path) -> None:
    from ui import handlers

    from .test_ui_handlers import fake_stream

    stream, calls = fake_stream()
    options = handlers.ChatOptions(as_of="2025-09-21")
    list(handlers.ask("q", [], options, Settings(home=tmp_path), stream))
    assert calls[0]["as_of"] == date(2025, 9, 21)
    list(handlers.ask("q", [], handlers.ChatOptions(), Settings(home=tmp_path), stream))
    assert calls[1]["as_of"] is None  # empty: the API's default, today
    updates = list(
        handlers.ask("q", [], handlers.ChatOptions(as_of="soon"), Settings(home=tmp_path), stream)
    )
    assert "As of: &#x27;soon&#x27; is not a date" in updates[-1][0][-1]["content"]
    assert len(calls) == 2  # nothing was asked with a bad date


def test_since_an_event_is_said_to_be_unresolved() -> None:
    from assistant.timeline import date_answer
    from assistant.types import Citation

    cite = Citation(1, "a", "T", None, "2025-09-05", None, "Q.", "c", 0, 2, 1.0)
    result = date_answer(
        Answer("What changed since the summit?", "Q. [1]", True, [cite]),
        as_of=date(2025, 10, 1),
        window=None,
    )
    assert "“since the summit” names no date" in result.text
    assert "As of 5 Sep 2025 [1]: Q. [1]" in result.text


def test_an_empty_window_is_said_to_be_empty() -> None:
    """A window with no retrieved article must not read as if the answer came from it."""
    from langchain_core.documents import Document

    from assistant.dates import resolve
    from assistant.timeline import date_answer
    from assistant.types import Citation

    cite = Citation(1, "a", "T", None, "2025-09-05", None, "Q.", "c", 0, 2, 1.0)
    docs = [Document("Q.", metadata={"published": "2025-09-05"})]
    as_of = date(2025, 10, 26)
    window = resolve("this week", as_of)
    result = date_answer(
        Answer("What happened this week?", "Q. [1]", True, [cite]),
        as_of=as_of,
        window=window,
        docs=docs,
    )
    assert result.text.startswith("No article from 20-26 Oct 2025 was found"), result.text
    assert "As of 5 Sep 2025 [1]: Q. [1]" in result.text


def test_cli_as_of_must_be_a_date(capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli import main as cli_main

    with pytest.raises(SystemExit) as exc:
        cli_main(["ask", "Who is the chief executive?", "--as-of", "soon"])
    assert exc.value.code == 2
    assert "'soon' is not a date; use YYYY-MM-DD" in capsys.readouterr().err


def test_an_undated_source_gets_no_as_of_prefix() -> None:
    """ "As of date unknown [1]: ..." would read as a date; an undated answer states none."""
    from assistant.timeline import date_answer
    from assistant.types import Answer, Citation

    cite = Citation(1, "a", "T", None, None, None, "Quote.", "a:0", 0, 6, 0.5)
    undated = date_answer(
        Answer("q?", "Quote. [1]", True, [cite]), as_of=date(2025, 10, 30), window=None
    )
    assert undated.text == "Quote. [1]"
    dated_cite = Citation(1, "a", "T", None, "2025-10-24", None, "Quote.", "a:0", 0, 6, 0.5)
    dated = date_answer(
        Answer("q?", "Quote. [1]", True, [dated_cite]), as_of=date(2025, 10, 30), window=None
    )
    assert dated.text == "As of 24 Oct 2025 [1]: Quote. [1]"


def test_only_a_present_state_question_is_told_the_articles_differ() -> None:
    """Two dated answers with different names are "the articles differ by date" when the
    question asks for a present state ("who is"); asked about a past event ("who resigned"),
    they are two stories, and the ordinary dated answer stands."""
    from langchain_core.documents import Document

    from assistant.timeline import date_answer
    from assistant.types import Citation

    texts = {
        "2025-09-05": ("Valmora strike", "Marcus Hale is the chief executive of the authority."),
        "2025-10-20": ("Valmora port", "Ingrid Soto took over as chief executive in October."),
    }

    def cite(day: str) -> Citation:
        title, quote = texts[day]
        return Citation(1, day, title, None, day, None, quote, f"{day}:0", 0, len(quote), 0.5)

    def answer_fn(q: str, docs):  # type: ignore[no-untyped-def]
        return "", [cite(docs[0].metadata["published"])], True

    def dated(question: str) -> str:
        docs = [Document(texts[d][1], metadata={"published": d}) for d in texts]
        first = cite("2025-09-05")
        result = date_answer(
            Answer(question, f"{first.quote} [1]", True, [first]),
            as_of=date(2025, 10, 26),
            window=None,
            docs=docs,
            answer_fn=answer_fn,
        )
        return result.text

    changed = dated("Who is the chief executive of the Valmora port authority?")
    assert changed.startswith("The articles differ by date. On 5 Sep 2025:"), changed
    assert "Ingrid Soto" in changed and "Marcus Hale" in changed
    past = dated("Who became chief executive of the Valmora port authority?")
    assert past.startswith("As of 5 Sep 2025 [1]: Marcus Hale"), past
    assert "Ingrid Soto" not in past
