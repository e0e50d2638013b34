"""Reading an article file once: its bytes, the digest of exactly those bytes, its stat.

A sync records the digest of the bytes it parsed (not of the file as it is later), so an edit
made while it reads is seen by the next sync instead of being recorded as already indexed.
Parsing is the loaders' job; this module only reads, refusing pipes, devices and files over
the size limit before reading them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISDIR, S_ISREG

from index.errors import LoadError
from index.fetch import too_large
from index.loaders import NOT_A_FILE, Record, guarded_stream, loader_for


@dataclass(frozen=True)
class SourceFile:
    """The bytes of a file read once, with the digest of exactly those bytes: a sync records
    this digest, so an edit made while it reads is seen by the next sync, never lost."""

    origin: str
    data: bytes
    mtime_ns: int
    size: int

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def estimate(self) -> int:
        return loader_for(self.origin).estimate(self.data)

    def stream(self) -> Iterator[Record]:
        """Its articles, parsed lazily; a parser crash becomes a LoadError for this file."""
        return guarded_stream(self.origin, loader_for(self.origin).stream(self.data, self.origin))


def read_source(path: Path, *, max_bytes: int) -> SourceFile:
    """Read one file, refusing it (before reading) if it is over ``max_bytes``; its mtime and
    size are those seen when it was opened, before the bytes were read."""
    origin = str(path)
    loader_for(origin)
    try:
        st = path.stat()
        if not (S_ISREG(st.st_mode) or S_ISDIR(st.st_mode)):  # a pipe or /dev/zero never ends
            raise LoadError(origin, NOT_A_FILE)
        if st.st_size > max_bytes:
            raise LoadError(origin, too_large(st.st_size, max_bytes))
        with path.open("rb") as handle:
            st = os.fstat(handle.fileno())
            data = handle.read(max_bytes + 1)
    except FileNotFoundError as exc:
        reason = f"broken symlink: {exc.strerror}" if path.is_symlink() else "file not found"
        raise LoadError(origin, reason) from exc
    except IsADirectoryError as exc:
        raise LoadError(origin, "is a directory, not a file") from exc
    except OSError as exc:
        raise LoadError(origin, f"cannot read file: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:  # the file grew between stat() and read()
        raise LoadError(origin, too_large(len(data), max_bytes))
    return SourceFile(origin, data, st.st_mtime_ns, st.st_size)
