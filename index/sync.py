"""Sync and forget: which generation to fill, from which sources, and when to switch to it.

One sync at a time per home (a lock). The generation being served is synced in place, article
by article (``index.syncer``); a rebuild (asked for, or forced by a new embedding model, new
chunking or damaged vectors) fills a new generation and switches to it only when it is
complete, and never while a source is missing, since the switch would drop its articles.
Removing a source is explicit (``forget``): absence is never taken for deletion.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from index.errors import ConfigError, IndexCorruptError, IndexMismatchError
from index.locking import sync_lock
from index.progress import Progress
from index.records import FailedSource, SyncReport
from index.settings import IndexSettings
from index.store import ACTIVE_FILE, Index, collect_garbage
from index.syncer import Syncer, is_url
from index.vectors import writing

__all__ = ["Progress", "forget", "is_url", "sync"]

_KEEPS = (
    "the previous index keeps serving. Bring the source back, or `assistant index --forget` "
    "it and rebuild."
)
_NOT_SWITCHED = f"source not found, so a rebuild would lose its articles: {_KEEPS}"


def sync(
    settings: IndexSettings,
    sources: Sequence[str] | None = None,
    *,
    rebuild: bool = False,
    wait: float = 0.0,
    progress: Progress | None = None,
    show_bar: bool = True,
) -> SyncReport:
    """Sync ``sources`` (folders, files, URLs; default: every source synced before)."""
    with sync_lock(settings.home, wait=wait):
        try:
            current = Index.open(settings, check=False)
            known_roots = _known_roots(current)
        except IndexCorruptError:
            if not rebuild:
                raise
            current, known_roots = None, _salvage_roots(settings, sources)
        damaged: str | None = None
        if current is not None:
            try:
                current.check_settings()
                if not rebuild:
                    current.vectors.count()  # can the vectors still be read?
            except IndexMismatchError:
                rebuild = True  # new model or chunking: re-embed into a fresh generation
            except IndexCorruptError as exc:
                # Raised only on positive evidence of damage (a store that fails, or fails for
                # a while, is StoreUnavailableError and stops the sync with nothing changed).
                rebuild = True
                damaged = f"the vectors of the index were damaged ({exc.__cause__ or exc})"
        roots = [_normalise(s) for s in sources] if sources else known_roots
        if rebuild and not roots and current is not None and current.catalog.counts()[0]:
            raise ConfigError(
                f"the index in {settings.home} records no sources to rebuild from; run "
                "`assistant index --rebuild PATH` with the folders (or URLs) of the articles"
            )
        if current is None or rebuild:
            roots = list(dict.fromkeys([*roots, *known_roots])) if rebuild else roots
            gone = [r for r in roots if not is_url(r) and not os.path.lexists(r)]
            if current is not None and gone:  # found before any work: nothing re-embedded
                current.close()
                return SyncReport(failed=[FailedSource(r, _NOT_SWITCHED) for r in gone])
            collect_garbage(settings)
            target = Index.create(settings)
            if current is None:
                target.activate()  # first index: whole articles become visible as they land
        else:
            target = current
        with writing(settings, target.vectors.name):
            syncer = Syncer(target, progress, show_bar)
            report = syncer.run(roots)
            if target is not current and current is not None and syncer.missing:
                # The new generation lacks the articles of a missing source: switching to it
                # would delete them by absence. The old one serves until the source is back or
                # forgotten.
                target.drop()
                current.close()
                note = "rebuild not switched on: a source could not be read (above); " + _KEEPS
                report.failed.append(FailedSource(str(settings.home), note))
                return report
            if target is not current:
                report.rebuilt = current is not None
                report.rebuilt_because = damaged
                target.activate()
                if current is not None:
                    current.close()
            # Generations that readers still held at an earlier switch are removed by their last
            # reader, or here: every sync ends with only the served (or still-read) ones left.
            collect_garbage(settings)
            target.lexical.refresh()
            target.close()
            return report


def forget(settings: IndexSettings, sources: Sequence[str], *, wait: float = 0.0) -> SyncReport:
    """Remove everything indexed from ``sources`` (folders, files, URLs): the explicit way to
    drop a source, since a missing one is never taken as deleted."""
    with sync_lock(settings.home, wait=wait):
        index = Index.open(settings, check=False)
        if index is None:
            report = SyncReport()
            for source in sources:
                report.failed.append(FailedSource(source, "nothing is indexed yet"))
            return report
        try:
            with writing(settings, index.vectors.name):
                report = Syncer(index, None, False).forget([_normalise(s) for s in sources])
            index.lexical.refresh()
        finally:
            index.close()
        return report


def _known_roots(index: Index | None) -> list[str]:
    """Sources synced before: the roots of recorded files, and those of a sync that died
    before it could record its files (they are written only once all is committed)."""
    if index is None:
        return []
    pending = json.loads(index.catalog.get_meta("pending_roots") or "[]")
    return list(dict.fromkeys([*(s.root for s in index.catalog.sources().values()), *pending]))


def _salvage_roots(settings: IndexSettings, sources: Sequence[str] | None) -> list[str]:
    """Rebuilding a damaged home: the sources synced before, from any generation whose catalog
    still reads. Then the broken pointer goes, so the rebuild starts as a first index."""
    roots: list[str] = []
    for catalog in sorted((settings.home / "generations").glob("*/catalog.sqlite")):
        try:
            db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
            try:
                roots += [r[0] for r in db.execute("SELECT DISTINCT root FROM sources")]
                row = db.execute("SELECT value FROM meta WHERE key = 'pending_roots'").fetchone()
                roots += json.loads(row[0]) if row else []
            finally:
                db.close()
        except (sqlite3.Error, ValueError):
            continue
    if not sources and not roots:
        raise ConfigError(
            f"the index in {settings.home} is damaged and the list of its sources is lost; "
            "run `assistant index --rebuild PATH` with the folders (or URLs) of the articles"
        )
    (settings.home / ACTIVE_FILE).unlink(missing_ok=True)
    return list(dict.fromkeys(roots))


def _normalise(source: str) -> str:
    return source if is_url(source) else str(Path(source).expanduser().absolute())
