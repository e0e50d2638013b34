"""Tell a person how far a sync is, wherever its stderr goes.

A sync of thousands of articles runs for minutes. On a terminal a tqdm bar shows it; when
stderr is a file or a pipe (a log, CI, ``nohup``) a bar prints nothing useful, so a plain line
goes out every few seconds instead: articles done of the estimated total, the embedding rate
and the time left. The UI gets the same counts through its callback.

The total is an estimate: a JSON Lines file holds an unknown number of articles until it is
read, so the articles still to come are extrapolated from the bytes still to read.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

Progress = Callable[[int, int, str], None]
LINE_INTERVAL = 5.0  # seconds between progress lines when stderr is not a terminal


class SyncProgress:
    """Counts of one sync's work, shown as a bar, as periodic lines, or through a callback."""

    def __init__(
        self,
        *,
        show: bool,
        callback: Progress | None = None,
        stream: TextIO | None = None,
        interval: float = LINE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.callback = callback
        self.interval = interval
        self.clock = clock
        self.show = show
        self.lines = show and not _is_terminal(self.stream)
        self.bar: tqdm | None = None
        self.files = self.bytes_total = self.bytes_read = 0
        self.seen = self.done = self.chunks = 0
        self.finished = False
        self.started = self.last_line = clock()

    # --- counts ------------------------------------------------------------------------------
    def start(self, files: int, nbytes: int) -> None:
        """The work ahead: ``files`` to read, ``nbytes`` in all."""
        self.files, self.bytes_total = files, nbytes
        self.started = self.last_line = self.clock()
        if self.show and not self.lines and files:
            self.bar = tqdm(unit="article", desc="Indexing", file=self.stream, total=files)
        if self.lines and files:
            self._print(f"index: {files} files to read ({nbytes / 1e6:.1f} MB)")
        self._show()

    def file_read(self, nbytes: int, records: int) -> None:
        """A file was read; it holds about ``records`` articles."""
        self.bytes_read += nbytes
        self.seen += records
        self._show()

    def settled(self, articles: int = 1, chunks: int = 0) -> None:
        """``articles`` are done (committed, unchanged or failed), ``chunks`` embedded."""
        self.done += articles
        self.chunks += chunks
        self._show()

    @property
    def total(self) -> int:
        """Articles expected: those in files read, plus as many per byte in the rest."""
        if self.finished:
            return self.done
        if self.bytes_read == 0:
            return max(self.files, self.done)
        rest = max(0, self.bytes_total - self.bytes_read) * self.seen / self.bytes_read
        return max(self.done, round(self.seen + rest))

    def line(self) -> str:
        """``index: 1204/3786 articles, 38.2 chunks/s, about 4 min left``"""
        elapsed = max(self.clock() - self.started, 1e-9)
        total = self.total
        text = f"index: {self.done}/{total} articles, {self.chunks / elapsed:.1f} chunks/s"
        if 0 < self.done < total:
            text += f", about {_duration(elapsed * (total - self.done) / self.done)} left"
        return text

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.lines and self.files:
            self.finished = True  # every article is settled: the total is exact now
            elapsed = self.clock() - self.started
            self._print(f"{self.line()}; finished in {_duration(elapsed)}")

    # --- output ------------------------------------------------------------------------------
    def _show(self) -> None:
        if self.callback is not None:
            self.callback(self.done, self.total, "indexing")
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.update(self.done - self.bar.n)  # redraws at most every 0.1 s
        elif self.lines and self.clock() - self.last_line >= self.interval:
            self._print(self.line())

    def _print(self, text: str) -> None:
        self.last_line = self.clock()
        print(text, file=self.stream, flush=True)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream: no bar
        return False


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
