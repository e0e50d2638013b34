"""The public functions: answer questions, stream answers, sync and inspect the index.

The CLI and the UI call only these. Indexes, retrievers and chains are cached per settings,
so a long-running process (the UI) loads the model and opens Chroma once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Any

from assistant.errors import EmptyIndexError, StoreUnavailableError
from assistant.settings import Settings
from assistant.types import Answer
from index.catalog import StoredArticle
from index.records import SyncReport
from index.store import (
    GenerationGoneError,
    Index,
    IndexStatus,
    active_generation,
    empty_status,
)

if TYPE_CHECKING:  # index.sync loads the article readers (trafilatura, lxml): a question needs none
    from index.sync import Progress

History = Sequence[tuple[str, str]] | Sequence[dict[str, Any]] | None

_lock = threading.RLock()
_open: dict[str, Index] = {}
_SWITCH_RETRIES = 5  # a reader that keeps landing on a just-replaced generation gives up


def _settings(settings: Settings | None) -> Settings:
    return settings or Settings()


def _served(settings: Settings) -> Index:
    """The cached index of the served generation (caller holds ``_lock``). One replaced by a
    rebuild is retired: it closes when its last reader is done, not under that reader."""
    key = settings.model_dump_json()
    cached = _open.get(key)
    if cached is not None:
        if active_generation(settings) == cached.generation:
            return cached
        del _open[key]
        cached.retire()
    index = Index.open(settings)
    if index is None:
        raise EmptyIndexError(
            f"nothing is indexed in {settings.home} yet. Run `assistant index PATH` with a "
            "folder of articles (or `assistant index --sample` for the bundled sample)."
        )
    _open[key] = index
    return index


def open_index(settings: Settings | None = None) -> Index:
    """The served index for these settings, opened once per process and generation.

    Not held: a rebuild may retire it. Code that reads from it for more than a moment (a
    question) uses ``reading_index`` instead.
    """
    settings = _settings(settings)
    with _lock:
        return _served(settings)


@contextmanager
def reading_index(settings: Settings | None = None) -> Iterator[Index]:
    """The served index, held for one reader: a rebuild that switches generations meanwhile
    neither closes it nor drops its vectors until the reader is done."""
    settings = _settings(settings)
    for _ in range(_SWITCH_RETRIES):
        with _lock:
            index = _served(settings)
            try:
                index.acquire()
            except GenerationGoneError:  # removed under us: open whatever is served now
                _open.pop(settings.model_dump_json(), None)
                index.retire()
                continue
        # The hold is visible now; a switch before it was taken shows here, and then the
        # generation may already be on its way out: take the served one instead.
        try:
            served = active_generation(settings) == index.generation
        except BaseException:
            index.release()
            raise
        if served:
            break
        index.release()
    else:
        raise StoreUnavailableError(
            f"the index in {settings.home} is being switched over and over by rebuilds; "
            "try again when the rebuild is done"
        )
    try:
        yield index
    finally:
        index.release()


def answer(
    question: str,
    history: History = None,
    *,
    settings: Settings | None = None,
    k: int | None = None,
    llm: str | None = None,
    sources: list[str] | None = None,
    published_after: date | None = None,
    published_before: date | None = None,
    as_of: date | None = None,
) -> Answer:
    """Answer ``question`` from the indexed articles, with citations (or a clear decline).

    ``as_of`` (default today): answer as on that day; nothing published after it is used."""
    result: Answer | None = None
    for event in stream_answer(
        question,
        history,
        settings=settings,
        k=k,
        llm=llm,
        sources=sources,
        published_after=published_after,
        published_before=published_before,
        as_of=as_of,
    ):
        if isinstance(event, Answer):
            result = event
    assert result is not None
    return result


def stream_answer(
    question: str,
    history: History = None,
    *,
    settings: Settings | None = None,
    k: int | None = None,
    llm: str | None = None,
    sources: list[str] | None = None,
    published_after: date | None = None,
    published_before: date | None = None,
    as_of: date | None = None,
) -> Iterator[str | Answer]:
    """Yield the answer text as it is produced (``str`` deltas), then the final ``Answer``."""
    settings = _settings(settings)
    if llm is not None:
        settings = settings.model_copy(update={"llm": llm or None})
    with reading_index(settings) as index:
        # Imported once the index is open: its model loads on a thread meanwhile (cold start).
        from assistant.chain import run_chain

        yield from run_chain(
            index,
            question,
            history,
            k=k or settings.k,
            sources=sources,
            published_after=published_after,
            published_before=published_before,
            as_of=as_of,
        )


def sync_articles(
    sources: Sequence[str] | None = None,
    *,
    settings: Settings | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
    wait: float = 0.0,
) -> SyncReport:
    """Make the index mirror ``sources`` (default: the sources synced before)."""
    from index.sync import sync

    settings = _settings(settings)
    report = sync(
        settings, sources, rebuild=rebuild, progress=progress, wait=wait, show_bar=progress is None
    )
    with _lock:
        for index in _open.values():
            index.lexical.refresh()
    return report


def forget_sources(
    sources: Sequence[str], *, settings: Settings | None = None, wait: float = 0.0
) -> SyncReport:
    """Remove every article indexed from ``sources`` (folders, files or URLs). A source that
    goes missing is never removed by a sync; this is how a user drops one on purpose."""
    from index.sync import forget

    report = forget(_settings(settings), sources, wait=wait)
    with _lock:
        for index in _open.values():
            index.lexical.refresh()
    return report


def index_status(settings: Settings | None = None) -> IndexStatus:
    settings = _settings(settings)
    index = Index.open(settings, check=False)
    if index is None:
        return empty_status(settings)
    try:
        with index.reading():
            return index.status()
    finally:
        index.close()


def list_articles(settings: Settings | None = None) -> list[StoredArticle]:
    settings = _settings(settings)
    index = Index.open(settings, check=False)
    if index is None:
        return []
    try:
        with index.reading():
            return index.catalog.articles()
    finally:
        index.close()
