"""A writer killed mid-write leaves a mark; the next process loads that collection in a child
first, so a torn collection that would crash Chroma's Rust core (a segmentation fault, not an
exception: seen in the 200-kill soak) crashes the child and the user is told how to heal.

Real embedded Chroma throughout. The crash itself cannot be produced on demand (it depends on
where a kill lands in an HNSW write), so one test makes the child die by SIGSEGV through the
probe script; the others run the real probe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.api import answer
from assistant.settings import Settings
from index import vectors
from index.store import Index
from index.sync import sync
from index.vectors import WRITE_MARK, IndexCorruptError

from .conftest import indexed_home
from .reliability_support import forget_open_stores

ARTICLES = {
    "rover.txt": "Lunar rover lands\n\nThe lunar rover landed near the Shackleton crater on "
    "Monday. It sent back 40 photos of the rim.\n",
    "rates.txt": "Rates on hold\n\nThe central bank kept interest rates at 4.5% on Thursday. "
    "Economists had expected a cut.\n",
}
CRASH = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"


@pytest.fixture(autouse=True)
def _fresh_stores() -> Iterator[None]:
    forget_open_stores()
    yield
    forget_open_stores()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return indexed_home(tmp_path, ARTICLES)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def leave_mark(settings: Settings, pid: int) -> tuple[Path, str]:
    """The mark a writer of the served collection leaves when it is killed."""
    index = Index.open(settings, check=False)
    assert index is not None
    name = index.vectors.name
    index.close()
    forget_open_stores()
    mark = settings.home / WRITE_MARK
    mark.write_text(json.dumps({"pid": pid, "collection": name}), "utf-8")
    return mark, name


def test_a_finished_sync_leaves_no_mark(settings: Settings) -> None:
    assert not (settings.home / WRITE_MARK).exists()


def test_a_dead_writers_readable_collection_is_checked_once_and_served(
    settings: Settings,
) -> None:
    mark, _ = leave_mark(settings, dead_pid())
    result = answer("Where did the lunar rover land?", settings=settings)
    assert result.answered and "Shackleton" in result.text
    assert not mark.exists()  # the child read it: nothing to check next time


def test_a_collection_that_crashes_its_reader_is_reported_then_healed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors, "_PROBE", CRASH)
    mark, name = leave_mark(settings, dead_pid())
    index = Index.open(settings, check=False)
    assert index is not None
    with pytest.raises(IndexCorruptError) as err:
        index.vectors.count()  # this process is still alive: the child crashed instead
    index.close()
    message = str(err.value)
    assert name in message and "crashed" in message and "assistant index" in message
    assert mark.exists()  # still damaged: every reader is told until a sync heals it

    forget_open_stores()
    report = sync(settings, show_bar=False)  # the next plain sync re-embeds into a fresh index
    assert report.rebuilt and "damaged" in (report.rebuilt_because or "")
    assert not mark.exists()
    monkeypatch.undo()
    forget_open_stores()
    result = answer("What did the central bank do with interest rates?", settings=settings)
    assert result.answered and "4.5%" in result.text


def test_a_live_writers_mark_is_not_probed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync at work writes the mark too; readers then read as before (no child, no wait)."""
    monkeypatch.setattr(vectors, "_PROBE", CRASH)  # a probe would report damage
    mark, _ = leave_mark(settings, os.getpid())
    result = answer("Where did the lunar rover land?", settings=settings)
    assert result.answered
    assert mark.exists()  # the writer removes its own mark


def test_a_mark_for_another_collection_is_not_probed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors, "_PROBE", CRASH)
    mark = settings.home / WRITE_MARK
    mark.write_text(json.dumps({"pid": dead_pid(), "collection": "aa-other"}), "utf-8")
    assert answer("Where did the lunar rover land?", settings=settings).answered
