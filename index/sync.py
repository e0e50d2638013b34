"""Make the index mirror its sources: add new articles, re-embed changed ones, drop deleted.

Unchanged files cost a ``stat`` (and a hash when their mtime moved); only new or changed
articles are chunked and embedded. The unit of change is one article: its vectors are stored
first, then it becomes visible in one catalog transaction, so a crash leaves only whole
articles. A rebuild (asked for, or forced by a new embedding model or chunking) fills a new
generation and switches to it only when it is complete.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from stat import S_ISREG

from tqdm import tqdm

from assistant.errors import ConfigError, IndexMismatchError, LoadError
from assistant.settings import Settings
from index.catalog import SourceState
from index.chunking import embedding_text
from index.loaders import NOT_A_FILE, LoadResult, iter_article_files, load_file, load_url
from index.locking import sync_lock
from index.records import Article, Chunk, FailedSource, SyncReport
from index.store import ACTIVE_FILE, Index, IndexCorruptError, collect_garbage

Progress = Callable[[int, int, str], None]
_EMBED_GROUP = 256  # chunks embedded (and committed) per step: bounds memory and lost work


@dataclass
class _Pending:
    """An article to embed, with the article it replaces (same origin, older version)."""

    article: Article
    source_file: str
    chunks: list[Chunk] = field(default_factory=list)
    replaces: str | None = None
    replaces_chunks: int = 0


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def sync(
    settings: Settings,
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
            collect_garbage(settings)
            target = Index.create(settings)
            if current is None:
                target.activate()  # first index: whole articles become visible as they land
            roots = list(dict.fromkeys([*roots, *known_roots])) if rebuild else roots
        else:
            target = current
        report = _Syncer(target, progress, show_bar).run(roots)
        if target is not current:
            report.rebuilt = current is not None
            report.rebuilt_because = damaged
            target.activate()
            if current is not None:
                current.close()
                collect_garbage(settings)
        target.lexical.refresh()
        target.close()
        return report


def _known_roots(index: Index | None) -> list[str]:
    """Sources synced before: the roots of recorded files, and those of a sync that died
    before it could record its files (they are written only once all is committed)."""
    if index is None:
        return []
    pending = json.loads(index.catalog.get_meta("pending_roots") or "[]")
    return list(dict.fromkeys([*(s.root for s in index.catalog.sources().values()), *pending]))


def _salvage_roots(settings: Settings, sources: Sequence[str] | None) -> list[str]:
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


class _Syncer:
    def __init__(self, index: Index, progress: Progress | None, show_bar: bool) -> None:
        self.index = index
        self.catalog = index.catalog
        self.settings = index.settings
        self.report = SyncReport()
        self.progress = progress
        self.show_bar = show_bar and sys.stderr.isatty()
        self.pending: list[_Pending] = []
        self.seen_text: dict[str, str] = {}
        self.done_files: list[SourceState] = []
        self.dirty = False

    def run(self, roots: list[str]) -> SyncReport:
        # Recorded first: should this sync die, the next bare `assistant index` resumes them.
        earlier = json.loads(self.catalog.get_meta("pending_roots") or "[]")
        self.catalog.set_meta(pending_roots=json.dumps(list(dict.fromkeys([*earlier, *roots]))))
        if self.catalog.get_meta("dirty") == "1":
            self._collect_orphans()
        known = self.catalog.sources()
        for root in roots:
            self._scan_root(root, known)
        self._embed_and_commit()
        for state in self.done_files:
            self.catalog.set_source(state)
        left = [r for r in earlier if r not in roots]  # a died sync's roots not synced now
        self.catalog.set_meta(dirty="0", pending_roots=json.dumps(left))
        return self.report

    # --- phase 1: find what changed --------------------------------------------------------
    def _scan_root(self, root: str, known: dict[str, SourceState]) -> None:
        if is_url(root):
            files: list[str] = [root]
        else:
            path = Path(root)
            if path.is_dir():
                try:
                    files = [str(p.absolute()) for p in iter_article_files(path)]
                except LoadError as exc:  # an unreadable folder: keep what it had, report it
                    self._fail(exc.origin, exc.reason)
                    return
            elif path.exists() or path.is_symlink():
                files = [root]
            else:
                files = []
                if not any(s.root == root for s in known.values()):
                    self._fail(root, "no such file or directory")
        present = set(files)
        # Files of this root that are gone. A sync killed after committing a file's articles
        # but before recording the file in `sources` leaves articles only the catalog knows.
        gone = {o for o, s in known.items() if s.root == root and o not in present}
        under = root.rstrip("/") + "/"
        gone |= {
            a.source_file
            for a in self.catalog.articles()
            if a.source_file not in present
            and a.source_file not in known
            and not is_url(root)
            and (a.source_file == root or a.source_file.startswith(under))
        }
        for origin in sorted(gone):
            self._remove_file(origin)
        for i, origin in enumerate(files):
            self._notify(i, len(files), f"reading {Path(origin).name}")
            self._scan_file(origin, root, known.get(origin))

    def _scan_file(self, origin: str, root: str, state: SourceState | None) -> None:
        try:
            origin.encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes in a file name: the catalog needs text
            self._fail(origin, "file name is not valid UTF-8; rename the file to index it")
            return
        stat = None if is_url(origin) else _stat(origin)
        if state and stat and (state.mtime_ns, state.size) == stat and state.root == root:
            self.report.unchanged += len(self.catalog.articles(origin))
            return
        max_bytes = int(self.settings.max_file_mb * 1024 * 1024)
        try:
            if is_url(origin):
                result = load_url(origin, max_bytes=max_bytes)
            else:
                digest = _digest(origin, max_bytes)
                if state and digest == state.digest:
                    self.report.unchanged += len(self.catalog.articles(origin))
                    self.done_files.append(_state(origin, root, stat, digest))
                    return
                result = load_file(Path(origin), max_bytes=max_bytes)
        except LoadError as exc:
            self._fail(origin, exc.reason)
            return
        except OSError as exc:
            self._fail(origin, exc.strerror or str(exc))
            return
        for problem in result.problems:
            self._fail(origin, problem)
        self._plan(origin, result)
        digest = (
            hashlib.sha256("\x1e".join(a.id for a in result.articles).encode()).hexdigest()
            if is_url(origin)
            else _digest(origin, max_bytes)
        )
        self.done_files.append(_state(origin, root, stat, digest))

    def _plan(self, source_file: str, result: LoadResult) -> None:
        old = {a.origin: a for a in self.catalog.articles(source_file)}
        old_ids = {a.article_id for a in old.values()}
        kept: set[str] = set()
        for article in result.articles:
            if article.id in old_ids and article.id not in kept:
                self.report.unchanged += 1
                kept.add(article.id)
                self.seen_text.setdefault(article.text_sha, article.origin)
                continue
            owner = self.seen_text.get(article.text_sha) or self._owner(article, source_file)
            if owner:
                # Indexed as its own article (its file and title stay findable); the retriever
                # collapses identical passages, so a copy never takes a second answer slot.
                article = replace(article, duplicate_of=owner)
                if article.id in old_ids and article.id not in kept:
                    self.report.unchanged += 1
                    kept.add(article.id)
                    continue
                self.report.duplicates.append(
                    FailedSource(article.origin, f"same text as {owner}; answers cite one copy")
                )
            else:
                self.seen_text[article.text_sha] = article.origin
            previous = old.get(article.origin)
            if previous and previous.article_id not in kept:
                kept.add(previous.article_id)
                self.report.updated += 1
                self.pending.append(
                    _Pending(
                        article,
                        source_file,
                        replaces=previous.article_id,
                        replaces_chunks=previous.n_chunks,
                    )
                )
            else:
                self.report.added += 1
                self.pending.append(_Pending(article, source_file))
        for stored in old.values():
            if stored.article_id not in kept:
                self._remove_article(stored.article_id, stored.n_chunks)

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
        self.index.vectors.delete(_chunk_ids(article_id, n_chunks))
        self.report.removed += 1

    # --- phase 2: embed, store vectors, then commit article by article ---------------------
    def _embed_and_commit(self) -> None:
        if not self.pending:
            return
        chunker = self.index.chunker
        for item in self.pending:
            item.chunks = chunker.split(item.article)
        total = sum(len(p.chunks) for p in self.pending)
        self._mark_dirty()
        bar = tqdm(
            total=total, unit="chunk", desc="Embedding", disable=not self.show_bar, file=sys.stderr
        )
        group: list[_Pending] = []
        size = 0
        for item in self.pending:
            group.append(item)
            size += len(item.chunks)
            if size >= _EMBED_GROUP:
                self._store_group(group, bar, total)
                group, size = [], 0
        if group:
            self._store_group(group, bar, total)
        bar.close()

    def _store_group(self, group: list[_Pending], bar: tqdm, total: int) -> None:
        ids, texts, metas, docs = [], [], [], []
        for item in group:
            a = item.article
            for c in item.chunks:
                ids.append(c.id)
                texts.append(embedding_text(a.title, c.text))
                docs.append(c.text)
                metas.append(
                    {
                        "article_id": a.id,
                        "n": c.n,
                        "start": c.start,
                        "end": c.end,
                        "title": a.title,
                        "source": a.source or "",
                        "published": int(a.published.strftime("%Y%m%d")) if a.published else 0,
                    }
                )
        vectors = self.index.embedder.embed_documents(texts)
        self.index.vectors.upsert(ids, vectors, metas, docs)
        for item in group:
            self.catalog.commit_article(
                item.article, item.chunks, item.source_file, replaces=item.replaces
            )
            if item.replaces:
                self.index.vectors.delete(_chunk_ids(item.replaces, item.replaces_chunks))
        self.report.chunks_embedded += len(ids)
        bar.update(len(ids))
        self._notify(self.report.chunks_embedded, total, "embedding")

    def _mark_dirty(self) -> None:
        """Vectors may now exist without a committed article until this sync ends well."""
        if not self.dirty:
            self.catalog.set_meta(dirty="1")
            self.dirty = True

    def _collect_orphans(self) -> None:
        """Vectors stored by a sync that died before committing their article."""
        orphans = self.index.vectors.all_ids() - self.catalog.chunk_ids()
        if orphans:
            self.index.vectors.delete(sorted(orphans))

    # --- reporting -------------------------------------------------------------------------
    def _fail(self, origin: str, reason: str) -> None:
        self.report.failed.append(FailedSource(origin, reason))

    def _notify(self, done: int, total: int, message: str) -> None:
        if self.progress:
            self.progress(done, total, message)


def _state(origin: str, root: str, stat: tuple[int, int] | None, digest: str) -> SourceState:
    mtime_ns, size = stat or (None, None)
    return SourceState(origin, root, mtime_ns, size, digest)


def _stat(origin: str) -> tuple[int, int] | None:
    try:
        st = Path(origin).stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _digest(origin: str, max_bytes: int) -> str:
    path = Path(origin)
    st = path.stat()
    if not S_ISREG(st.st_mode):  # reading a pipe or /dev/zero would never end
        raise LoadError(origin, NOT_A_FILE)
    if st.st_size > max_bytes:
        return "too-large"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _chunk_ids(article_id: str, n_chunks: int) -> list[str]:
    return [f"{article_id}:{n}" for n in range(n_chunks)]
