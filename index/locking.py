"""One sync at a time per home: an exclusive ``flock`` that dies with its process."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    path = home / "sync.lock"
    with path.open("a+") as fh:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    raise IndexBusyError(
                        f"another sync is running on {home} (pid {holder}); wait for it to "
                        "finish and try again"
                    ) from None
                time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
