"""The public functions: answer questions, stream answers, sync and inspect the index.

The CLI and the UI call only these. Indexes, retrievers and chains are cached per settings,
so a long-running process (the UI) loads the model and opens Chroma once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from assistant.errors import AssistantError, EmptyIndexError
from assistant.settings import Settings
from assistant.types import Answer
from index.catalog import StoredArticle
from index.records import SyncReport
from index.store import Index, IndexStatus, empty_status
from index.sync import Progress, sync

History = Sequence[tuple[str, str]] | Sequence[dict[str, Any]] | None

_lock = threading.RLock()
_open: dict[str, Index] = {}


def _settings(settings: Settings | None) -> Settings:
    return settings or Settings()


def open_index(settings: Settings | None = None) -> Index:
    """The served index for these settings, opened once per process and generation."""
    settings = _settings(settings)
    key = settings.model_dump_json()
    with _lock:
        cached = _open.get(key)
        if cached is not None:
            from index.store import active_generation

            if active_generation(settings) == cached.generation:
                return cached
            cached.close()
        index = Index.open(settings)
        if index is None:
            raise EmptyIndexError(
                f"nothing is indexed in {settings.home} yet. Run `assistant index PATH` with a "
                "folder of articles (or `assistant index --sample` for the bundled sample)."
            )
        _open[key] = index
        return index


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
    from assistant.chain import run_chain

    settings = _settings(settings)
    if llm is not None:
        settings = settings.model_copy(update={"llm": llm or None})
    yield from run_chain(
        open_index(settings),
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
    settings = _settings(settings)
    report = sync(
        settings, sources, rebuild=rebuild, progress=progress, wait=wait, show_bar=progress is None
    )
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
        return index.status()
    finally:
        index.close()


def list_articles(settings: Settings | None = None) -> list[StoredArticle]:
    settings = _settings(settings)
    index = Index.open(settings, check=False)
    if index is None:
        return []
    try:
        return index.catalog.articles()
    finally:
        index.close()
