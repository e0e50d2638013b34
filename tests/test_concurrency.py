"""Concurrency: questions while a sync runs, two syncs on one home, 20 users at once.

Nothing here asserts timings; the figures (p95 latency, answers during a sync) are printed.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from assistant.api import answer, open_index, stream_answer, sync_articles
from assistant.errors import IndexBusyError
from assistant.settings import Settings
from assistant.types import Answer
from index.store import Index
from index.sync import sync

from .conftest import SAMPLE
from .reliability_support import (
    Corpus,
    Run,
    check_index,
    cli_command,
    forget_open_stores,
    name_of,
    report_of,
    run_cli,
)


def committed(index_dir: Path, article_id: str) -> tuple[str | None, int, int]:
    """(origin, n_chunks, chunk rows) of an article, read with a connection of our own in one
    read transaction: two bare SELECTs can straddle a commit that removes the article (a reader
    saw its row, then 0 chunks, when the sync dropped a replaced version in between)."""
    db = sqlite3.connect(index_dir / "catalog.sqlite", timeout=30, isolation_level=None)
    try:
        db.execute("BEGIN")
        row = db.execute(
            "SELECT origin, n_chunks FROM articles WHERE article_id = ?", (article_id,)
        ).fetchone()
        (rows,) = db.execute(
            "SELECT COUNT(*) FROM chunks WHERE article_id = ?", (article_id,)
        ).fetchone()
        db.execute("COMMIT")
    finally:
        db.close()
    return (row[0], row[1], rows) if row else (None, 0, rows)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else 0.0


# --- questions while a sync runs ------------------------------------------------------------
def test_questions_are_answered_while_a_sync_runs(tmp_path: Path) -> None:
    """Four threads ask about articles that are landing right now; a sync adds and rewrites
    articles in a fifth. No errors, and every cited article is whole when the answer comes."""
    settings = Settings(home=tmp_path / "home", embedding_model="fake")
    corpus = Corpus.create(tmp_path / "articles", 60, seed=7, jsonl_records=0)
    sync(settings, [str(corpus.folder)], show_bar=False)
    index = open_index(settings)
    index_dir = settings.home / "generations" / index.generation
    before = {a.article_id for a in index.catalog.articles()}  # the ones an update may replace
    first_new = max(corpus.ids()) + 1
    corpus.mutate(add=200, change=30, delete=0)
    targets = [name_of(i, 0) for i in range(first_new, first_new + 200)]

    done = threading.Event()
    errors: list[BaseException] = []
    answered: list[int] = []
    checked = [0]
    latencies: list[float] = []

    def ask(worker: int) -> None:
        rng = random.Random(worker)
        while not done.is_set():
            name = rng.choice(targets)
            started = time.monotonic()
            try:
                if rng.random() < 0.5:
                    result = answer(f"What happened with {name}?", settings=settings)
                else:
                    events = list(stream_answer(f"Where was {name}?", settings=settings))
                    assert all(isinstance(e, str) for e in events[:-1])
                    last = events[-1]
                    assert isinstance(last, Answer)
                    result = last
                latencies.append(time.monotonic() - started)
                assert result.text
                for c in result.citations:
                    origin, n_chunks, rows = committed(index_dir, c.article_id)
                    # Gone only if it was an old version that an update replaced since.
                    if origin is None:
                        assert c.article_id in before, f"{c.chunk_id} was never committed"
                        continue
                    assert rows == n_chunks > 0, f"{origin}: {rows} of {n_chunks} chunks visible"
                    assert c.chunk_id.startswith(f"{c.article_id}:")
                    checked[0] += 1
                answered.append(worker)
            except BaseException as exc:
                errors.append(exc)
                done.set()

    askers = [threading.Thread(target=ask, args=(w,)) for w in range(4)]
    for t in askers:
        t.start()
    try:
        report = sync_articles([str(corpus.folder)], settings=settings)
    finally:
        time.sleep(0.2)
        done.set()
        for t in askers:
            t.join(120)
    if errors:
        raise errors[0]
    assert (report.added, report.updated, report.failed) == (200, 30, [])
    assert len(answered) >= 8, "the askers hardly ran during the sync"
    forget_open_stores()
    check_index(settings, corpus, complete=True)
    print(
        f"\nduring one sync: {len(answered)} questions answered, {checked[0]} citations checked "
        f"whole, p95 {p95(latencies) * 1000:.0f} ms"
    )


# --- two syncs on one home ------------------------------------------------------------------
def test_second_cli_sync_refuses_then_waits(tmp_path: Path) -> None:
    """While one `assistant index` runs: a second refuses with a clear message (exit 1, no
    report), a third with --wait waits its turn; the index ends whole."""
    corpus = Corpus.create(tmp_path / "articles", 400, seed=11)
    home = tmp_path / "home"
    settings = Settings(home=home, embedding_model="fake")
    cmd = cli_command(home, str(corpus.folder))
    first: list[Run] = []
    runner = threading.Thread(target=lambda: first.append(run_cli(cmd, home)))
    runner.start()
    deadline = time.monotonic() + 60
    lock = home / "sync.owner"  # the holder's pid
    while time.monotonic() < deadline:
        if lock.exists() and lock.read_text().strip():
            break
        time.sleep(0.005)
    second = run_cli(cmd, home)
    third = run_cli(cli_command(home, str(corpus.folder), "--wait", "120"), home)
    runner.join(300)
    assert first and report_of(first[0])["added"] >= 400
    # The first holds the lock for seconds after the second starts: the second must refuse.
    assert second.returncode == 1, second.stdout
    assert "another sync is running" in second.stderr and "Traceback" not in second.stderr
    assert not second.stdout.strip()
    assert third.returncode == 0, third.stderr[-2000:]
    assert report_of(third)["added"] == 0  # it waited for the first, then found all done
    forget_open_stores()
    check_index(settings, corpus, complete=True)


def test_two_syncs_started_together_never_corrupt(tmp_path: Path) -> None:
    """Several rounds of two CLI syncs started at the same instant (with the corpus changing
    between rounds): each either refuses clearly or completes; the index is whole after each."""
    corpus = Corpus.create(tmp_path / "articles", 150, seed=12)
    home = tmp_path / "home"
    settings = Settings(home=home, embedding_model="fake")
    refusals = 0
    for round_ in range(3):
        if round_:
            corpus.mutate(add=20, change=40, delete=5, jsonl=True)
        runs: list[Run | None] = [None, None]

        def go(slot: int, runs: list[Run | None] = runs) -> None:
            runs[slot] = run_cli(cli_command(home, str(corpus.folder)), home)

        threads = [threading.Thread(target=go, args=(s,)) for s in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        done = [r for r in runs if r is not None]
        assert len(done) == 2
        codes = sorted(r.returncode for r in done)
        assert codes in ([0, 0], [0, 1]), [r.stderr[-1000:] for r in done]
        for r in done:
            if r.returncode == 1:
                assert "another sync is running" in r.stderr and "Traceback" not in r.stderr
                refusals += 1
        forget_open_stores()
        check_index(settings, corpus, complete=True)
    print(f"\ntwo syncs at once, 3 rounds: {refusals} refused, the others completed")


def test_in_process_syncs_refuse_or_wait(fake_settings: Settings, tmp_path: Path) -> None:
    """Two threads of one process (UI uploads): the lock holds between them too."""
    corpus = Corpus.create(tmp_path / "articles", 200, seed=13, jsonl_records=0)
    started = threading.Event()
    results: list = []

    def first() -> None:
        def progress(done: int, total: int, message: str) -> None:
            started.set()

        results.append(
            sync_articles([str(corpus.folder)], settings=fake_settings, progress=progress)
        )

    t = threading.Thread(target=first)
    t.start()
    assert started.wait(60)
    with pytest.raises(IndexBusyError, match="another sync is running"):
        sync_articles([str(corpus.folder)], settings=fake_settings)
    waited = sync_articles([str(corpus.folder)], settings=fake_settings, wait=120)
    t.join(120)
    assert results[0].added == 200
    assert waited.added == 0 and waited.unchanged == 200
    forget_open_stores()
    check_index(fake_settings, corpus, complete=True)


# --- 20 users at once -----------------------------------------------------------------------
USERS = 20
QUESTIONS = [
    "Who leads the U.S. delegation?",
    "Where are the trade talks held?",
    "When will Trump meet Xi?",
    "What did Wang Wentao say?",
]


@pytest.mark.integration
def test_twenty_concurrent_users_get_correct_answers(real_settings: Settings) -> None:
    """20 users ask at once (a thread each, as the UI's workers would): every Bessent answer
    cites "everything is on the table", nothing fails; the p95 latency is printed."""
    report = sync(real_settings, [str(SAMPLE)], show_bar=False)
    assert report.added == 1
    answer("warm-up question", settings=real_settings)  # load the model once, outside timing
    barrier = threading.Barrier(USERS)

    def user(n: int) -> list[tuple[str, Answer, float]]:
        barrier.wait(60)
        out = []
        for question in ("What did Bessent threaten?", QUESTIONS[n % len(QUESTIONS)]):
            started = time.monotonic()
            if n % 2:
                result = answer(question, settings=real_settings)
            else:
                events = list(stream_answer(question, settings=real_settings))
                last = events[-1]
                assert isinstance(last, Answer)
                result = last
            out.append((question, result, time.monotonic() - started))
        return out

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=USERS) as pool:
        results = [r for rs in pool.map(user, range(USERS)) for r in rs]
    wall = time.monotonic() - started
    assert len(results) == 2 * USERS
    index = Index.open(real_settings)
    assert index is not None
    chunk_ids = index.catalog.chunk_ids()
    index.close()
    for question, result, _ in results:
        assert result.text, question
        assert {c.chunk_id for c in result.citations} <= chunk_ids
        if "Bessent" in question:
            assert result.answered, result.text
            assert any("everything is on the table" in c.quote for c in result.citations)
    latencies = [seconds for _, _, seconds in results]
    print(
        f"\n{USERS} concurrent users, {len(results)} answers in {wall:.1f} s: "
        f"p50 {statistics.median(latencies):.2f} s, p95 {p95(latencies):.2f} s, "
        f"max {max(latencies):.2f} s"
    )


def test_answers_see_articles_another_process_indexed(tmp_path: Path) -> None:
    """The UI keeps answering in its process while `assistant index` runs in another: the new
    articles become citable there without a restart, and the old ones stay whole.

    (With embedded Chroma the serving process's dense side only catches up with the other
    process's vectors when it reopens or writes itself; lexical search reads the catalog, so
    the new articles are found anyway. A Chroma server has no such lag.)"""
    settings = Settings(home=tmp_path / "home", embedding_model="fake")
    first = Corpus.create(tmp_path / "first", 20, seed=21, jsonl_records=0)
    sync_articles([str(first.folder)], settings=settings)

    def cites(name: str) -> bool:
        result = answer(f"What happened with {name}?", settings=settings)
        catalog = open_index(settings).catalog
        texts = [(catalog.article_text(c.article_id) or "").lower() for c in result.citations]
        return any(name.lower() in text for text in texts)

    assert cites(first.question()[1])
    second = Corpus.create(tmp_path / "second", 20, seed=22, jsonl_records=0)
    second._next = 1000  # names of its own
    second.mutate(add=5, change=0, delete=0)
    run = run_cli(cli_command(settings.home, str(second.folder)), settings.home)
    assert report_of(run)["added"] == 25
    assert all(cites(name_of(i, 0)) for i in range(1001, 1006))
    forget_open_stores()
