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


@contextmanager
def sync_lock(home: Path, wait: float = 0.0) -> Iterator[None]:
    """Hold the home's sync lock; wait up to ``wait`` seconds, then refuse clearly."""
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
    lock = FileLock(home / "sync.lock", timeout=max(wait, 0.0), thread_local=False)
    try:
        lock.acquire(poll_interval=0.2)
    except Timeout:
        try:
            holder = owner.read_text(encoding="utf-8").strip()
        except OSError:
            holder = ""
        raise IndexBusyError(
            f"another sync is running on {home} (pid {holder or 'of another process'}); wait "
            "for it to finish and try again"
        ) from None
    try:
        with suppress(OSError):  # only for the message above; the lock is what excludes
            owner.write_text(str(os.getpid()), encoding="utf-8")
        yield
    finally:
        with suppress(OSError):
            owner.write_text("", encoding="utf-8")
        lock.release()
