"""The sync lock: portable (no POSIX-only ``fcntl``), and it still excludes another process."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import filelock  # noqa: F401  (its platform lock is chosen at import: with the real fcntl here,
import pytest  # not inside the no-fcntl test below, which would leave a soft lock for the rest)

from assistant.errors import IndexBusyError

ROOT = Path(__file__).resolve().parents[1]


def test_locking_imports_without_fcntl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Windows has no ``fcntl``: importing the index's lock module must not need it (a None
    entry in sys.modules makes ``import fcntl`` raise ImportError, as it does there)."""
    monkeypatch.setitem(sys.modules, "fcntl", None)
    monkeypatch.delitem(sys.modules, "index.locking", raising=False)
    module = importlib.import_module("index.locking")
    assert "fcntl" not in vars(module)
    with module.sync_lock(tmp_path / "home"):
        assert (tmp_path / "home" / "sync.owner").read_text().strip()
    monkeypatch.delitem(sys.modules, "index.locking")  # the next import gets a normal module


def test_lock_excludes_a_second_process(tmp_path: Path) -> None:
    """A child process holds the lock: this process is refused (naming the child's pid), then,
    with a wait, gets the lock once the child lets go."""
    from index.locking import sync_lock

    home = tmp_path / "home"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from pathlib import Path
                from index.locking import sync_lock
                with sync_lock(Path({str(home)!r})):
                    print("held", flush=True)
                    sys.stdin.readline()
                """
            ),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "held"
        busy = rf"another sync is running .*pid {child.pid}"
        with pytest.raises(IndexBusyError, match=busy), sync_lock(home):
            pass
        with pytest.raises(IndexBusyError), sync_lock(home, wait=0.5):
            pass
        child.stdin.write("\n")
        child.stdin.flush()
        with sync_lock(home, wait=30):
            assert (home / "sync.owner").read_text().strip() == str(os.getpid())
    finally:
        child.kill()
        child.wait(10)


def test_a_sync_waits_for_a_reader_collecting_generations(tmp_path: Path) -> None:
    """A reader that finished with a replaced generation holds the lock for a moment to remove
    it; a sync started then (wait 0, as the CLI does) waits for it instead of failing with
    "another sync is running". A collector that finds the lock busy gives up at once."""
    import threading
    import time

    from index.locking import sync_lock

    home = tmp_path / "home"
    held, release = threading.Event(), threading.Event()

    def collect() -> None:
        with sync_lock(home, collector=True):
            held.set()
            release.wait(10)

    collector = threading.Thread(target=collect)
    collector.start()
    assert held.wait(10)
    threading.Timer(0.5, release.set).start()
    started = time.monotonic()
    with sync_lock(home):
        waited = time.monotonic() - started
        assert (home / "sync.owner").read_text().strip() == str(os.getpid())
        with pytest.raises(IndexBusyError), sync_lock(home, collector=True):
            pass
    collector.join(10)
    assert 0.3 < waited < 10
