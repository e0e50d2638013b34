"""Shared parts of the reliability, concurrency and injection tests: a generated corpus that
changes between syncs and remembers every version it wrote, a checker for the index's
"only whole articles, nothing lost" invariants, and helpers to run and kill the real CLI."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from assistant.settings import Settings
from index.chunking import embedding_text
from index.errors import IndexCorruptError
from index.store import Index

ROOT = Path(__file__).resolve().parents[1]

WORDS = [
    "government",
    "minister",
    "council",
    "budget",
    "tariff",
    "market",
    "shares",
    "profit",
    "election",
    "voters",
    "court",
    "judge",
    "ruling",
    "police",
    "storm",
    "flood",
    "harvest",
    "farmers",
    "bank",
    "rates",
    "inflation",
    "talks",
    "summit",
    "treaty",
    "ports",
    "shipping",
    "strike",
    "union",
    "workers",
    "school",
    "teachers",
    "hospital",
    "patients",
    "doctors",
    "vaccine",
    "study",
    "researchers",
    "climate",
    "energy",
    "prices",
    "fuel",
    "railway",
    "airline",
    "airport",
    "bridge",
    "river",
    "city",
    "village",
    "mayor",
    "company",
    "executive",
    "investors",
    "bond",
    "yields",
    "exports",
    "imports",
    "factory",
    "jobs",
    "wages",
    "housing",
    "rents",
    "museum",
    "festival",
    "team",
    "coach",
    "league",
    "season",
    "goals",
]


def name_of(i: int, version: int) -> str:
    """A word found in exactly one article version: questions and checks can aim at it."""
    return f"Zeta{i}v{version}"


@dataclass
class Corpus:
    """A folder of generated news articles (.txt, .md and a .jsonl of several records).

    ``versions`` holds every text ever written under an origin (path, or ``path#line`` for a
    JSONL record), so a check can tell a stale-but-whole article from a corrupted one.
    """

    folder: Path
    rng: random.Random
    seed: int = 0
    texts: dict[str, str] = field(default_factory=dict)  # origin -> current text
    versions: dict[str, set[str]] = field(default_factory=dict)
    _version: dict[int, int] = field(default_factory=dict)
    _next: int = 0
    jsonl_records: int = 0

    @classmethod
    def create(cls, folder: Path, n: int, seed: int, jsonl_records: int = 8) -> Corpus:
        folder.mkdir(parents=True, exist_ok=True)
        corpus = cls(folder.absolute(), random.Random(seed), seed)
        corpus.jsonl_records = jsonl_records
        for _ in range(n):
            corpus._write(corpus._new_id())
        if jsonl_records:
            corpus._write_jsonl()
        return corpus

    # --- generation -------------------------------------------------------------------------
    def _new_id(self) -> int:
        self._next += 1
        self._version[self._next] = 0
        return self._next

    def _body(self, i: int) -> str:
        """The text of version ``_version[i]`` of article ``i``: the same every time it is asked."""
        rng, name = (
            random.Random(f"{self.seed}:{i}:{self._version[i]}"),
            name_of(i, self._version[i]),
        )
        sentences = []
        for s in range(rng.randint(6, 18)):
            words = rng.choices(WORDS, k=rng.randint(8, 16))
            words.insert(
                rng.randrange(len(words)), name if s % 3 == 0 else str(rng.randint(1, 999))
            )
            sentences.append(" ".join(words).capitalize() + ".")
        # Paragraphs, so the sentence splitter and chunker see real structure.
        cut = len(sentences) // 2
        return " ".join(sentences[:cut]) + "\n\n" + " ".join(sentences[cut:])

    def _path(self, i: int) -> Path:
        return self.folder / (f"a{i:05d}.md" if i % 5 == 0 else f"a{i:05d}.txt")

    def _write(self, i: int) -> None:
        body = self._body(i)
        path = self._path(i)
        title = f"Headline {i} about {self.rng.choice(WORDS)} (version {self._version[i]})"
        if path.suffix == ".md":
            path.write_text(
                f"---\ntitle: {json.dumps(title)}\npublished: 2024-0{1 + i % 9}-1{i % 10}\n---\n\n"
                f"{body}\n",
                encoding="utf-8",
            )
        else:
            path.write_text(f"{title}\n\n{body}\n", encoding="utf-8")
        self._remember(str(path), body)

    def _remember(self, origin: str, text: str) -> None:
        self.texts[origin] = text
        self.versions.setdefault(origin, set()).add(text)

    def _write_jsonl(self) -> None:
        path = self.folder / "wire.jsonl"
        lines = []
        for n in range(1, self.jsonl_records + 1):
            i = -n
            if i not in self._version:
                self._version[i] = 0
            elif self.rng.random() < 0.5:
                self._version[i] += 1
            body = self._body(i).replace("\n\n", " ")
            lines.append(json.dumps({"title": f"Wire {n}", "text": body, "source": "Wire"}))
            self._remember(f"{path}#{n}", body)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    # --- change -----------------------------------------------------------------------------
    def ids(self) -> list[int]:
        return sorted(i for i in self._version if i > 0 and self._path(i).exists())

    def mutate(self, add: int, change: int, delete: int, jsonl: bool = False) -> None:
        """Add, rewrite and delete articles (each rewrite is a new version of the article)."""
        live = self.ids()
        for i in self.rng.sample(live, min(delete, max(0, len(live) - 10))):
            path = self._path(i)
            path.unlink()
            del self.texts[str(path)]
            del self._version[i]
        live = self.ids()
        for i in self.rng.sample(live, min(change, len(live))):
            self._version[i] += 1
            self._write(i)
        for _ in range(add):
            self._write(self._new_id())
        if jsonl and self.jsonl_records:
            self._write_jsonl()

    def question(self) -> tuple[str, str]:
        """A question aimed at one current article, and the name it must find."""
        i = self.rng.choice(self.ids())
        name = name_of(i, self._version[i])
        return f"What happened with {name}?", name


# --- the invariants -------------------------------------------------------------------------
@dataclass
class Snapshot:
    """What the served index holds, after a check."""

    generation: str | None
    origins: set[str]
    article_ids: set[str]
    chunk_ids: set[str]
    orphans: int = 0
    damaged: bool = False  # the vectors cannot be read (Chroma's files broken by a kill)


def catalog_rows(index: Index) -> tuple[dict[str, tuple[str, str, int]], list[tuple]]:
    """(article_id -> (origin, text, n_chunks), chunk rows), read straight from the SQLite file
    with a connection of our own, so the check does not trust the Catalog class."""
    db = sqlite3.connect(index.dir / "catalog.sqlite", timeout=30)
    try:
        articles = {
            r[0]: (r[1], r[2], r[3])
            for r in db.execute("SELECT article_id, origin, text, n_chunks FROM articles")
        }
        chunks = db.execute('SELECT chunk_id, article_id, n, start, "end" FROM chunks').fetchall()
    finally:
        db.close()
    return articles, chunks


def check_lexical(index: Index, articles: dict[str, tuple], chunks: list[tuple]) -> None:
    """The lexical index holds exactly the committed chunks, each with the terms of its text,
    and FTS5's own index agrees with the rows it was built from."""
    from index.lexical import chunk_terms

    rows = {
        r[0]: (r[1], r[2])
        for r in index.catalog.read("SELECT chunk_id, article_id, terms FROM lexical_rows")
    }
    assert set(rows) == {r[0] for r in chunks}, "the lexical index differs from the catalog"
    titles = dict(index.catalog.read("SELECT article_id, title FROM articles"))
    for chunk_id, article_id, _, start, end in chunks:
        text = articles[article_id][1][start:end]
        assert rows[chunk_id] == (article_id, chunk_terms(titles[article_id], text)), (
            f"the lexical terms of {chunk_id} are not those of its text"
        )
    index.catalog.read("INSERT INTO lexical (lexical) VALUES ('integrity-check')")


def check_index(
    settings: Settings,
    corpus: Corpus | None = None,
    *,
    complete: bool = False,
    probe_orphans: int = 3,
) -> Snapshot:
    """Assert that the served index holds only whole articles, everywhere.

    Every committed article has chunks 0..n-1 in the catalog with sane offsets, a vector with
    the same text in Chroma and an entry in the lexical index; no catalog chunk lacks its
    article; vectors without a committed article (left by a killed sync) never come back
    from retrieval. With ``corpus``, every article is a version of its file that was really
    written; with ``complete``, the index mirrors the corpus exactly and holds no orphans.
    """
    from assistant.retrieval import HybridRetriever

    index = Index.open(settings)
    if index is None:
        assert not complete, "nothing is served after a complete sync"
        return Snapshot(None, set(), set(), set())
    try:
        articles, chunks = catalog_rows(index)
        by_article: dict[str, list[tuple]] = {}
        for row in chunks:
            assert row[1] in articles, f"catalog chunk {row[0]} has no committed article"
            by_article.setdefault(row[1], []).append(row)
        for article_id, (origin, text, n_chunks) in articles.items():
            rows = sorted(by_article.get(article_id, []), key=lambda r: r[2])
            assert [r[2] for r in rows] == list(range(n_chunks)), (
                f"article {article_id} ({origin}) is half indexed: chunks "
                f"{[r[2] for r in rows]} of {n_chunks}"
            )
            assert n_chunks > 0
            for chunk_id, _, n, start, end in rows:
                assert chunk_id == f"{article_id}:{n}"
                assert 0 <= start < end <= len(text)
            if corpus is not None:
                assert text in corpus.versions.get(origin, set()), (
                    f"{origin}: the indexed text is no version that was ever written"
                )
        catalog_ids = {r[0] for r in chunks}

        origins = {origin for origin, _, _ in articles.values()}
        vectors = index.vectors
        try:
            vectors.count()
        except IndexCorruptError as exc:
            # Chroma's embedded HNSW files are not written atomically, so a kill can break a
            # collection for good. Then the index must say so and how to heal, never answer
            # from half an index; the next sync re-embeds (checked by the caller).
            assert not complete, f"a complete sync left damaged vectors: {exc}"
            assert "assistant index" in str(exc)
            return Snapshot(index.generation, origins, set(articles), set(), damaged=True)
        stored = vectors.collection.get(include=["documents", "metadatas"])
        docs = dict(zip(stored["ids"], stored["documents"], strict=True))
        metas = dict(zip(stored["ids"], stored["metadatas"], strict=True))
        missing = catalog_ids - set(docs)
        assert not missing, f"{len(missing)} committed chunks have no vector, e.g. {min(missing)}"
        for chunk_id, article_id, _, start, end in chunks:
            assert docs[chunk_id] == articles[article_id][1][start:end], (
                f"the vector of {chunk_id} holds other text than the catalog"
            )

        check_lexical(index, articles, chunks)

        orphans = sorted(set(docs) - catalog_ids)
        if orphans and probe_orphans:
            # Ask for the orphans' own text: their vectors are then the nearest of all.
            retriever = HybridRetriever(index=index, k=10)
            for chunk_id in orphans[:probe_orphans]:
                query = embedding_text(str(metas[chunk_id]["title"]), docs[chunk_id])
                found = {d.metadata["chunk_id"] for d in retriever.invoke(query)}
                assert found <= catalog_ids, f"retrieval returned uncommitted chunks {found}"
        if complete:
            assert corpus is not None
            assert not orphans, f"{len(orphans)} orphan vectors survived a complete sync"
            assert origins == set(corpus.texts), (
                f"missing {sorted(set(corpus.texts) - origins)[:5]}, "
                f"extra {sorted(origins - set(corpus.texts))[:5]}"
            )
            current = {origin: text for origin, text, _ in articles.values()}
            assert current == corpus.texts, "some article is not at its latest version"
        return Snapshot(index.generation, origins, set(articles), catalog_ids, len(orphans))
    finally:
        index.close()


def assert_nothing_lost(before: Snapshot, after: Snapshot, still_there: Iterable[str]) -> None:
    """An article that was served and whose file still exists is still served (some version)."""
    lost = (before.origins & set(still_there)) - after.origins
    assert not lost, f"articles vanished: {sorted(lost)[:5]}"


def forget_open_stores() -> None:
    """Drop this process's cached indexes and embedded Chroma systems.

    Another process (the CLI under test) changed the store; an embedded Chroma client that was
    opened before would still search its old in-memory HNSW graph.
    """
    from chromadb.api.client import SharedSystemClient

    from assistant import api

    with api._lock:
        for index in api._open.values():
            index.close()
        api._open.clear()
    SharedSystemClient.clear_system_cache()


# --- the CLI under test ---------------------------------------------------------------------
def cli_command(home: Path, *args: str, model: str | None = "fake") -> list[str]:
    cmd = [sys.executable, "-m", "assistant.cli", "index", *args, "--json", "--home", str(home)]
    return [*cmd, "--embedding-model", model] if model else cmd


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("ASSISTANT_HOME", "ASSISTANT_CHROMA_HOST", "ASSISTANT_LLM"):
        env.pop(var, None)
    env["PYTHONPATH"] = str(ROOT)
    return env


@dataclass
class Run:
    returncode: int
    killed: bool
    locked_after: float | None  # seconds from start until the child held the sync lock
    seconds: float  # from start to exit
    stdout: str
    stderr: str


def run_cli(
    cmd: list[str], home: Path, kill_after: float | None = None, timeout: float = 300
) -> Run:
    """Run the CLI; with ``kill_after``, SIGKILL it that many seconds after it takes the sync
    lock (the moment its work starts), if it is still running then."""
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = home / "sync.owner"  # the sync lock holder writes its pid here
    locked_at: float | None = None
    killed = False
    try:
        while proc.poll() is None and time.monotonic() - started < timeout:
            try:
                holder = lock.read_text().strip()
            except OSError:
                holder = ""
            if holder == str(proc.pid):
                locked_at = time.monotonic()
                break
            time.sleep(0.003)
        if kill_after is not None and locked_at is not None:
            deadline = locked_at + kill_after
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed = True
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    killed = killed and proc.returncode == -signal.SIGKILL
    return Run(
        proc.returncode,
        killed,
        None if locked_at is None else locked_at - started,
        time.monotonic() - started,
        out,
        err,
    )


def work_seconds(run: Run) -> float:
    """How long a run that finished held the sync lock (its work, start-up excluded)."""
    assert run.returncode in (0, 1), f"exit {run.returncode}: {run.stderr[-2000:]}"
    return max(0.2, run.seconds - (run.locked_after or 0.0))


def report_of(run: Run) -> dict:
    """The ``--json`` report (the last line of stdout) of a run that finished."""
    assert run.returncode in (0, 1), f"exit {run.returncode}: {run.stderr[-2000:]}"
    return json.loads(run.stdout.strip().splitlines()[-1])


def read_while_writing(home: Path, n: int, stop_file: Path, threads: int) -> dict[str, object]:
    """Search for article-unique markers until ``stop_file`` exists; every hit must be a
    committed chunk of the article that holds the marker. Runs in the test and in a child."""
    settings = Settings(home=home, embedding_model="fake")
    while (index := Index.open(settings, check=False)) is None:
        time.sleep(0.01)
    out: dict[str, list] = {"errors": [], "wrong": [], "searches": [], "hits": []}

    def loop(seed: int) -> None:
        rng, searches, hits = random.Random(seed), 0, 0
        while not stop_file.exists():
            marker = f"tok{rng.randrange(n):04d}"
            try:
                found = [i for i, _ in index.lexical.search(f"{marker} minister", 5)]
                stored = index.catalog.chunks(found)
            except Exception as exc:  # any error is what this test looks for
                out["errors"].append(repr(exc))
                continue
            searches += 1
            for chunk_id in found:
                chunk = stored.get(chunk_id)
                if chunk is None:
                    out["wrong"].append(f"{chunk_id}: not in the catalog")
                elif marker not in chunk.text and "minister" not in chunk.text:
                    out["wrong"].append(f"{chunk_id} holds neither {marker} nor minister")
                elif marker in chunk.text:
                    hits += 1
        out["searches"].append(searches)
        out["hits"].append(hits)

    workers = [threading.Thread(target=loop, args=(s,)) for s in range(threads)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: races show up within seconds
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        sys.setswitchinterval(switch)
    index.close()
    return {k: (sum(v) if k in ("searches", "hits") else v) for k, v in out.items()}
