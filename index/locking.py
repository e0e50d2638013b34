"""One sync at a time per home: an exclusive OS file lock that dies with its process.

``filelock`` picks the platform's lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows), so
importing the index never needs the POSIX-only ``fcntl``. The holder's pid goes in a file of
its own beside the lock: on Windows a locked file cannot be read by anyone else.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout

from index.errors import ConfigError, IndexBusyError

# A reader that finishes with a replaced generation takes the lock for a moment to remove it
# (``index.store.collect_unused``). A sync that finds the lock held by such a collector (or by
# a holder that has not written its name yet) waits this long for it instead of refusing as if
# another sync ran: removing a generation takes well under a second.
COLLECTOR = "collector "
TRANSIENT_HOLD_S = 30.0


def _holder(owner: Path) -> str:
    try:
        return owner.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _acquire(lock: FileLock, owner: Path, wait: float, grace: float) -> None:
    """Acquire within ``wait`` s; past it, up to ``grace`` s more while the holder is a
    collector or has not named itself yet; else refuse, naming the holder."""
    try:
        lock.acquire(timeout=max(wait, 0.0), poll_interval=0.2)
        return
    except Timeout:
        pass
    while grace > 0:
        holder = _holder(owner)
        if holder and not holder.startswith(COLLECTOR):
            break  # a sync holds it: refuse now
        try:
            lock.acquire(timeout=0.1, poll_interval=0.02)
            return
        except Timeout:
            grace -= 0.1
    holder = _holder(owner)
    pid = holder.removeprefix(COLLECTOR) or "of another process"
    raise IndexBusyError(
        f"another sync is running on {owner.parent} (pid {pid}); wait for it to finish and "
        "try again"
    )


@contextmanager
def sync_lock(home: Path, wait: float = 0.0, *, collector: bool = False) -> Iterator[None]:
    """Hold the home's sync lock; wait up to ``wait`` seconds, then refuse clearly.

    ``collector``: held only to remove replaced generations; a sync waits for such a holder."""
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot use {home} as ASSISTANT_HOME ({exc.strerror}); point ASSISTANT_HOME or "
            "--home at a writable directory"
        ) from exc
    owner = home / "sync.owner"
    # A fresh lock object per call (not a per-path singleton, not shared by threads): two
    # syncs in one process must exclude each other just as two processes do.
    lock = FileLock(home / "sync.lock", thread_local=False)
    _acquire(lock, owner, wait, grace=0.0 if collector else TRANSIENT_HOLD_S)
    try:
        with suppress(OSError):  # for the messages and the wait above; the lock excludes
            name = f"{COLLECTOR}{os.getpid()}" if collector else str(os.getpid())
            owner.write_text(name, encoding="utf-8")
        yield
    finally:
        with suppress(OSError):
            owner.write_text("", encoding="utf-8")
        lock.release()
