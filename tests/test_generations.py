"""A rebuild switches generations under questions in flight: none of them may fail, and the
old generation (files and vectors) goes once its last reader is done."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.api import answer
from assistant.retrieval import HybridRetriever
from assistant.settings import Settings
from index.store import Index, active_generation
from index.sync import sync
from index.vectors import connect

from .conftest import indexed_home
from .reliability_support import child_env, cli_command, forget_open_stores
from .test_reliability_store import ARTICLES, QUESTION


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    forget_open_stores()
    yield
    forget_open_stores()


def build(tmp_path: Path, model: str) -> Settings:
    return indexed_home(tmp_path, ARTICLES, model)


def assert_rover(result: Any) -> None:
    assert result.answered, result.text
    assert any("Shackleton" in c.quote for c in result.citations)


def collections(settings: Settings) -> list[str]:
    return sorted(c if isinstance(c, str) else c.name for c in connect(settings).list_collections())


class PausedRetrieval:
    """Stops the first retrieval of ``QUESTION`` until released: a question in flight."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.resume = threading.Event()
        self.generation: str | None = None
        real = HybridRetriever._get_relevant_documents
        paused = self

        def wrapper(self: HybridRetriever, query: str, **kwargs: Any) -> Any:
            if query == QUESTION and not paused.entered.is_set():
                paused.generation = self.index.generation
                paused.entered.set()
                assert paused.resume.wait(120)
            return real(self, query, **kwargs)

        monkeypatch.setattr(HybridRetriever, "_get_relevant_documents", wrapper)


@pytest.mark.parametrize(
    "model", ["fake", pytest.param(None, marks=pytest.mark.integration, id="real-model")]
)
def test_rebuild_under_a_question_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str | None
) -> None:
    """A question is retrieving from generation A when `assistant index --rebuild` switches to
    B and another question opens B: the first still answers from A, in full. Then A, no longer
    read by anyone, is removed (files and collection)."""
    settings = build(tmp_path, model or Settings().embedding_model)
    paused = PausedRetrieval(monkeypatch)
    results: list[Any] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            results.append(answer(QUESTION, settings=settings))
        except BaseException as exc:
            errors.append(exc)

    first = threading.Thread(target=ask)
    first.start()
    assert paused.entered.wait(120)
    old = paused.generation
    assert old is not None

    report = sync(settings, None, rebuild=True, show_bar=False)  # what `index --rebuild` runs
    assert report.rebuilt and report.added == 3
    new = active_generation(settings)
    assert new != old
    # The old generation survives while the paused question reads it.
    old_dir = settings.home / "generations" / old
    kept = old_dir.is_dir() and any(name.endswith(old) for name in collections(settings))
    # Another question after the switch: served from the new generation.
    assert_rover(answer(QUESTION, settings=settings))  # not paused: only the first is

    paused.resume.set()
    first.join(120)
    assert not errors, errors
    assert_rover(results[0])
    assert kept  # files and collection were there while it was read
    # The last reader of the old generation removed it.
    assert not old_dir.exists()
    assert [name for name in collections(settings) if name.endswith(old)] == []
    assert [p.name for p in (settings.home / "generations").iterdir()] == [new]


def test_questions_in_threads_across_rebuilds(tmp_path: Path) -> None:
    """Four threads ask without pause while three rebuilds switch generations: every question
    is answered, and only the served generation is left at the end."""
    settings = build(tmp_path, "fake")
    stop = threading.Event()
    errors: list[BaseException] = []
    answered = [0]

    def asker() -> None:
        while not stop.is_set():
            try:
                assert_rover(answer(QUESTION, settings=settings))
                answered[0] += 1
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=asker) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            assert sync(settings, None, rebuild=True, show_bar=False).rebuilt
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    print(f"\n{answered[0]} questions answered across 3 rebuilds")
    assert not errors, errors[:3]
    assert answered[0] > 0
    active = active_generation(settings)
    # Readers done: the next sync (or the last reader) leaves only the served generation.
    sync(settings, None, show_bar=False)
    assert [p.name for p in (settings.home / "generations").iterdir()] == [active]
    index = Index.open(settings)
    assert index is not None
    assert collections(settings) == [index.collection_name]
    index.close()


@pytest.mark.integration
def test_cli_rebuild_in_another_process_waits_for_our_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chroma_server: Any
) -> None:
    """`assistant index --rebuild` run as its own process (against a real `chroma run`) while a
    question here reads the old generation: the CLI leaves that generation alone, the question
    answers in full, and its end removes the old generation."""
    settings = indexed_home(
        tmp_path, ARTICLES, chroma_host="127.0.0.1", chroma_port=chroma_server.port
    )
    paused = PausedRetrieval(monkeypatch)
    results: list[Any] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            results.append(answer(QUESTION, settings=settings))
        except BaseException as exc:
            errors.append(exc)

    first = threading.Thread(target=ask)
    first.start()
    assert paused.entered.wait(120)
    old = paused.generation
    cmd = cli_command(settings.home, "--rebuild")
    cmd += ["--chroma-host", "127.0.0.1", "--chroma-port", str(chroma_server.port)]
    done = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["rebuilt"]
    old_dir = settings.home / "generations" / str(old)
    kept = old_dir.is_dir() and any(name.endswith(str(old)) for name in collections(settings))

    paused.resume.set()
    first.join(120)
    assert not errors, errors
    assert_rover(results[0])
    assert kept  # the other process left the generation being read alone
    assert not old_dir.exists()
    assert [name for name in collections(settings) if name.endswith(str(old))] == []
