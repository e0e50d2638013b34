"""Make one index generation mirror its sources: add new articles, re-embed changed ones,
drop those whose file is gone from a folder that still exists.

Unchanged files cost a ``stat`` (and a hash when their mtime moved); only new or changed
articles are chunked and embedded, streamed through ``BatchPipeline`` as files are read, so the
first articles are searchable within seconds. The digest recorded for a file is that of the
bytes that were parsed, and only once all its articles are committed: a kill, or an edit made
while it was read, means the next sync reads it again. A source root that is missing or
unreadable is a failure that keeps its articles.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from index.catalog import SourceState, StoredArticle
from index.errors import LoadError
from index.loaders import Record, RecordProblem, iter_article_files, load_url
from index.pipeline import BatchPipeline, PendingArticle, chunk_ids
from index.progress import Progress, SyncProgress
from index.records import Article, FailedSource, SyncReport
from index.sources import read_source
from index.store import Index

MISSING = "source not found (no such file or folder, or not mounted)"
_KEPT = "its articles are kept; `assistant index --forget PATH` removes them"


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


@dataclass
class _FileWork:
    """A file whose stat changed (or is new): it is read, and maybe re-embedded."""

    origin: str
    root: str
    size: int
    state: SourceState | None


@dataclass
class _OpenFile:
    """A file being synced: its state is recorded once all its articles are committed."""

    state: SourceState
    waiting: int = 0
    read: bool = False


class Syncer:
    """Makes one generation mirror its sources; counts what it did in a ``SyncReport``."""

    def __init__(self, index: Index, progress: Progress | None, show_bar: bool) -> None:
        self.index = index
        self.catalog = index.catalog
        self.settings = index.settings
        self.report = SyncReport()
        self.progress = SyncProgress(show=show_bar, callback=progress)
        self.seen_text: dict[str, str] = {}
        self.open_files: dict[str, _OpenFile] = {}
        self.done_files: list[SourceState] = []  # all committed: recorded after each batch
        self.dirty = False
        self.missing: list[str] = []  # roots that do not exist (or cannot be read)
        self._pipeline: BatchPipeline | None = None

    @property
    def pipeline(self) -> BatchPipeline:
        """Made on first use: a sync that only removes never loads the model."""
        if self._pipeline is None:
            self._pipeline = BatchPipeline(
                self.index,
                before_write=self._mark_dirty,
                committed=self._committed,
                flushed=self._record_files,
            )
        return self._pipeline

    def run(self, roots: list[str]) -> SyncReport:
        # Recorded first: should this sync die, the next bare `assistant index` resumes them.
        earlier = json.loads(self.catalog.get_meta("pending_roots") or "[]")
        self.catalog.set_meta(pending_roots=json.dumps(list(dict.fromkeys([*earlier, *roots]))))
        self._prepare()
        known = self.catalog.sources()
        work: dict[str, _FileWork] = {}  # a file under two roots is synced once
        for root in roots:
            for item in self._scan_root(root, known):
                work.setdefault(item.origin, item)
        self.progress.start(len(work), sum(w.size for w in work.values()))
        for item in work.values():
            self._sync_file(item)
        if self._pipeline is not None:
            self._pipeline.flush()
            self.report.chunks_embedded = self._pipeline.chunks_embedded
        self._record_files()
        self.progress.close()
        left = [r for r in earlier if r not in roots]  # a died sync's roots not synced now
        self.catalog.set_meta(dirty="0", pending_roots=json.dumps(left))
        return self.report

    def forget(self, roots: list[str]) -> SyncReport:
        """Remove every article from these sources (a folder, a file or a URL)."""
        self._prepare()
        known = self.catalog.sources()
        stored = {a.source_file for a in self.catalog.articles()}
        for root in roots:
            files = {o for o in [*known, *stored] if _within(o, root)}
            files |= {o for o, s in known.items() if s.root == root}
            if not files:
                self._fail(root, "not an indexed source; `assistant status` shows the index")
            for origin in sorted(files):
                self._remove_file(origin)
        pending = json.loads(self.catalog.get_meta("pending_roots") or "[]")
        left = [p for p in pending if not any(_within(p, root) for root in roots)]
        self.catalog.set_meta(dirty="0", pending_roots=json.dumps(left))
        return self.report

    # --- find what changed -------------------------------------------------------------------
    def _scan_root(self, root: str, known: dict[str, SourceState]) -> list[_FileWork]:
        if is_url(root):
            return [_FileWork(root, root, 0, known.get(root))]
        path = Path(root)
        if path.is_dir():
            try:
                files = [str(p.absolute()) for p in iter_article_files(path)]
            except LoadError as exc:  # an unreadable folder: keep what it had, report it
                self._fail(exc.origin, f"{exc.reason}; {_KEPT}")
                self.missing.append(root)
                return []
        elif path.exists() or path.is_symlink():
            files = [root]
        else:
            # Unmounted, moved or mistyped: never a reason to delete what was indexed from it.
            indexed = any(s.root == root for s in known.values())
            self._fail(root, f"{MISSING}; {_KEPT}" if indexed else MISSING)
            self.missing.append(root)
            return []
        present = set(files)
        # Files of this root that are gone. A sync killed after committing a file's articles
        # but before recording the file in `sources` leaves articles only the catalog knows.
        gone = {o for o, s in known.items() if s.root == root and o not in present}
        gone |= {
            a.source_file
            for a in self.catalog.articles()
            if a.source_file not in present
            and a.source_file not in known
            and _within(a.source_file, root)
        }
        for origin in sorted(gone):
            self._remove_file(origin)
        work = []
        for origin in files:
            state = known.get(origin)
            stat = _stat(origin)
            if state and stat and (state.mtime_ns, state.size) == stat and state.root == root:
                self.report.unchanged += len(self.catalog.articles(origin))
            else:
                work.append(_FileWork(origin, root, stat[1] if stat else 0, state))
        return work

    def _sync_file(self, work: _FileWork) -> None:
        origin, state = work.origin, work.state
        try:
            origin.encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes in a file name: the catalog needs text
            self._fail(origin, "file name is not valid UTF-8; rename the file to index it")
            return
        max_bytes = int(self.settings.max_file_mb * 1024 * 1024)
        try:
            if is_url(origin):
                result = load_url(
                    origin,
                    max_bytes=max_bytes,
                    timeout=self.settings.url_timeout,
                    allow_private=self.settings.allow_private_urls,
                )
                digest = hashlib.sha256("\x1e".join(a.id for a in result.articles).encode())
                new = _state(origin, work.root, None, digest.hexdigest())
                records: Iterator[Record] = iter([*result.articles])
                self._fail_all(origin, result.problems)
                self.progress.file_read(work.size, len(result.articles))
            else:
                source = read_source(Path(origin), max_bytes=max_bytes)
                new = _state(origin, work.root, (source.mtime_ns, source.size), source.digest)
                self.progress.file_read(source.size, source.estimate())
                if state and new.digest == state.digest:  # touched, not changed
                    unchanged = len(self.catalog.articles(origin))
                    self.report.unchanged += unchanged
                    self.progress.settled(unchanged)
                    self.done_files.append(new)
                    return
                records = source.stream()
        except LoadError as exc:
            self._fail(exc.origin, exc.reason)
            self.progress.file_read(work.size, 1)
            self.progress.settled()
            return
        self._plan(origin, records, new)

    def _plan(self, source_file: str, records: Iterator[Record], new: SourceState) -> None:
        """Hand the file's new and changed articles to the pipeline as they are parsed; its
        state is recorded once all of them are committed (a kill before: read again)."""
        old = {a.origin: a for a in self.catalog.articles(source_file)}
        old_ids = {a.article_id for a in old.values()}
        kept: set[str] = set()
        tracked = self.open_files[source_file] = _OpenFile(new)
        # Bad records are held back until the file shows it holds articles: a JSON file that
        # is not articles at all (a question set beside the stories) is one failure, reported
        # by the loader, not one line per record.
        held: list[str] | None = []
        try:
            for record in records:
                if isinstance(record, RecordProblem):
                    self.progress.settled()
                    if held is None:
                        self._fail(source_file, record.reason)
                    else:
                        held.append(record.reason)
                    continue
                if held is not None:
                    for reason in held:
                        self._fail(source_file, reason)
                    held = None
                self._plan_article(record, source_file, old, old_ids, kept)
        except LoadError as exc:  # nothing recorded: what it held stays, the next sync retries
            self._fail(exc.origin, exc.reason)
            return  # never `read`: its state is not recorded
        for reason in held or []:
            self._fail(source_file, reason)
        for stored in old.values():
            if stored.article_id not in kept:
                self._remove_article(stored.article_id, stored.n_chunks)
        tracked.read = True
        self._file_done(source_file)

    def _plan_article(
        self,
        article: Article,
        source_file: str,
        old: dict[str, StoredArticle],
        old_ids: set[str],
        kept: set[str],
    ) -> None:
        if article.id in old_ids and article.id not in kept:
            self._unchanged(article.id, kept)
            self.seen_text.setdefault(article.text_sha, article.origin)
            return
        owner = self.seen_text.get(article.text_sha) or self._owner(article, source_file)
        if owner:
            # Indexed as its own article (its file and title stay findable); the retriever
            # collapses identical passages, so a copy never takes a second answer slot.
            article = replace(article, duplicate_of=owner)
            if article.id in old_ids and article.id not in kept:
                self._unchanged(article.id, kept)
                return
            self.report.duplicates.append(
                FailedSource(article.origin, f"same text as {owner}; answers cite one copy")
            )
        else:
            self.seen_text[article.text_sha] = article.origin
        item = PendingArticle(article, source_file)
        previous = old.get(article.origin)
        if previous and previous.article_id not in kept:
            kept.add(previous.article_id)
            self.report.updated += 1
            item.replaces, item.replaces_chunks = previous.article_id, previous.n_chunks
        else:
            self.report.added += 1
        self.open_files[source_file].waiting += 1
        self.pipeline.add(item)

    def _unchanged(self, article_id: str, kept: set[str]) -> None:
        self.report.unchanged += 1
        kept.add(article_id)
        self.progress.settled()

    def _committed(self, item: PendingArticle) -> None:
        self.progress.settled(1, len(item.chunks))
        tracked = self.open_files[item.source_file]
        tracked.waiting -= 1
        self._file_done(item.source_file)

    def _file_done(self, source_file: str) -> None:
        tracked = self.open_files[source_file]
        if tracked.read and tracked.waiting == 0:
            self.done_files.append(tracked.state)
            del self.open_files[source_file]

    def _record_files(self) -> None:
        """Record the files whose articles are all committed (after each batch): a kill
        before this only costs reading them again, never an article left out."""
        done, self.done_files = self.done_files, []
        for state in done:
            self.catalog.set_source(state)

    def _owner(self, article: Article, source_file: str) -> str | None:
        stored = self.catalog.article_by_text(article.text_sha, outside=source_file)
        return stored.origin if stored else None

    def _remove_file(self, origin: str) -> None:
        for stored in self.catalog.articles(origin):
            self._remove_article(stored.article_id, stored.n_chunks)
        self.catalog.forget_source(origin)

    def _remove_article(self, article_id: str, n_chunks: int) -> None:
        self._mark_dirty()  # a kill before the vectors are deleted leaves orphans to collect
        self.catalog.remove_article(article_id)
        self.index.vectors.delete(chunk_ids(article_id, n_chunks))
        self.report.removed += 1

    def _mark_dirty(self) -> None:
        """Vectors may now exist without a committed article until this sync ends well."""
        if not self.dirty:
            self.catalog.set_meta(dirty="1")
            self.dirty = True

    def _prepare(self) -> None:
        """What every sync and forget does first: remove the vectors of a sync that died
        before committing them, and give the collection the configured search width."""
        if self.catalog.get_meta("dirty") == "1":
            self._collect_orphans()
        self.index.vectors.ensure_search_ef()

    def _collect_orphans(self) -> None:
        """Vectors stored by a sync that died before committing their article."""
        orphans = self.index.vectors.all_ids() - self.catalog.chunk_ids()
        if orphans:
            self.index.vectors.delete(sorted(orphans))

    # --- reporting -------------------------------------------------------------------------
    def _fail(self, origin: str, reason: str) -> None:
        self.report.failed.append(FailedSource(origin, reason))

    def _fail_all(self, origin: str, problems: list[str]) -> None:
        for problem in problems:
            self._fail(origin, problem)


def _within(origin: str, root: str) -> bool:
    """``origin`` is the source ``root`` itself, or a file under the folder ``root``."""
    if is_url(root):
        return origin == root
    return origin == root or origin.startswith(root.rstrip("/") + "/")


def _state(origin: str, root: str, stat: tuple[int, int] | None, digest: str) -> SourceState:
    mtime_ns, size = stat or (None, None)
    return SourceState(origin, root, mtime_ns, size, digest)


def _stat(origin: str) -> tuple[int, int] | None:
    try:
        st = Path(origin).stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size
