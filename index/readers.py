"""Readers' holds on index generations, visible across processes.

A question reads one generation from start to end. While it does, that generation must stay
whole: not closed in this process, and not dropped by a rebuild in this process or another.
Holds are counted per process; the first takes an OS file lock in the generation's
``readers/`` folder and the last lets it go, so another process sees "in use" exactly while
some reader here is active, and a reader that crashed holds nothing (the OS frees its lock).
``filelock`` makes this portable (``flock`` on POSIX, ``msvcrt`` on Windows).
"""

from __future__ import annotations

import os
import secrets
import threading
from contextlib import suppress
from pathlib import Path

from filelock import FileLock, Timeout

from index.errors import StoreUnavailableError


class GenerationGoneError(StoreUnavailableError):
    """A reader came to a generation that a rebuild has replaced; the served one is newer."""

    def __init__(self, generation: str) -> None:
        super().__init__(f"index generation {generation} was replaced by a rebuild")


# Readers in this process per generation directory, and the lock file that shows other
# processes this one reads it. Held from the first reader to the last.
_HOLDS: dict[Path, tuple[int, FileLock]] = {}
_HOLDS_LOCK = threading.Lock()
READERS_DIR = "readers"


def hold(gen_dir: Path) -> None:
    """One more reader of this generation here; raises ``GenerationGoneError`` when a rebuild
    has already removed it (the reader found it just before the switch)."""
    with _HOLDS_LOCK:
        count, lease = _HOLDS.get(gen_dir, (0, None))
        if lease is None:
            readers = gen_dir / READERS_DIR
            try:
                if not gen_dir.is_dir():
                    raise FileNotFoundError(gen_dir)
                readers.mkdir(exist_ok=True)
                lease = FileLock(
                    readers / f"{os.getpid()}-{secrets.token_hex(4)}.lock", thread_local=False
                )
                lease.acquire(timeout=5)
            except (OSError, Timeout) as exc:
                raise GenerationGoneError(gen_dir.name) from exc
        _HOLDS[gen_dir] = (count + 1, lease)


def unhold(gen_dir: Path) -> bool:
    """Drop one hold; True when it was this process's last on that generation."""
    with _HOLDS_LOCK:
        count, lease = _HOLDS[gen_dir]
        if count > 1:
            _HOLDS[gen_dir] = (count - 1, lease)
            return False
        del _HOLDS[gen_dir]
    with suppress(OSError):
        lease.release()
    return True


def in_use(gen_dir: Path) -> bool:
    """Whether a reader, in this process or a living other one, holds this generation."""
    with _HOLDS_LOCK:
        if gen_dir in _HOLDS:
            return True
    readers = gen_dir / READERS_DIR
    if not readers.is_dir():
        return False
    for path in readers.glob("*.lock"):
        probe = FileLock(path, thread_local=False)
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return True  # a living reader holds it
        except OSError:
            continue  # its reader let go meanwhile (the file was removed)
        probe.release()  # left by a reader that died: nothing holds it
    return False
