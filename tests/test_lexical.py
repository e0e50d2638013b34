"""The lexical index (FTS5 in the catalog): hostile queries, readers during a sync, migration.

The crash campaign (test_reliability_crash.py) checks the lexical side after every kill -9
through ``reliability_support.check_index``.
"""

from __future__ import annotations

import json
import math
import pickle
import random
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import Settings
from index.catalog import Catalog
from index.lexical import LexicalIndex, _doc_freq, _totals, rare_terms, tokenize
from index.records import Article, Chunk
from index.store import Index
from index.sync import sync

from .reliability_support import ROOT, child_env, cli_command, read_while_writing

WORDS = [
    "minister",
    "bank",
    "rate",
    "growth",
    "league",
    "match",
    "film",
    "award",
    "phone",
    "market",
    "court",
    "vote",
]


def _commit(catalog: Catalog, title: str, text: str, origin: str) -> Article:
    article = Article(title=title, text=text, origin=origin)
    half = len(text) // 2
    cut = text.index(" ", half) if " " in text[half:] else len(text)
    spans = [(0, cut), (cut, len(text))] if cut < len(text) else [(0, len(text))]
    chunks = [Chunk(article.id, n, text[a:b], a, b) for n, (a, b) in enumerate(spans)]
    catalog.commit_article(article, chunks, origin)
    return article


@pytest.fixture
def small(tmp_path: Path) -> LexicalIndex:
    catalog = Catalog(tmp_path / "catalog.sqlite")
    rng = random.Random(0)
    for i in range(30):
        text = " ".join(rng.choice(WORDS) for _ in range(60))
        _commit(catalog, f"Story {i}", f"{text} AT&T paid £5m. The U.S. won 2-1.", f"s{i}.txt")
    return LexicalIndex(catalog)


# --- tokens ----------------------------------------------------------------------------------
def test_names_and_figures_stay_whole_and_possessives_leave_no_s() -> None:
    terms = tokenize("R&B singer Jamelia's daughter; AT&T paid £5m as the U.S. won 2-1")
    assert {"r&b", "at&t", "£5m", "5m", "u.s", "2-1", "jamelia"} <= set(terms)
    assert "s" not in terms and "b" not in terms and "t" not in terms


# --- queries the engine's syntax would interpret ---------------------------------------------
HOSTILE = [
    'he said "the bank',
    '"',
    "AND",
    "bank AND",
    "OR OR OR",
    "NOT bank",
    "bank*",
    "*",
    "title:bank",
    ":",
    "-bank",
    "-",
    "NEAR(bank rate)",
    "NEAR",
    "(bank",
    "bank)",
    "^bank",
    "^",
    "{bank rate}",
    "bank + rate",
    "'; DROP TABLE chunks; --",
    "\x00bank",
    "R&B AT&T £5m 2-1 U.S.",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_query_syntax_characters_never_raise(small: LexicalIndex, query: str) -> None:
    hits = small.search(query, 5)
    assert isinstance(hits, list)
    if "bank" in query:
        assert hits, f"{query!r} should still find the word it holds"


def test_stop_words_only_and_a_long_paste(small: LexicalIndex) -> None:
    assert small.search("what is the of and to", 5) == []
    assert small.search("", 5) == []
    paste = " ".join(random.Random(1).choice([*WORDS, "the", "of", "said"]) for _ in range(200))
    hits = small.search(paste, 5)
    assert 0 < len(hits) <= 5
    # Past MAX_QUERY_TERMS distinct terms only the rarest indexed ones are searched.
    assert small.search(" ".join(f"filler{i}" for i in range(150)) + " AT&T", 5)
    assert small.idf(tokenize("minister")[0]) > 0 and small.idf("nosuchterm") == 0.0


def test_idfs_in_one_read_equal_the_per_term_lookups(
    small: LexicalIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The extractive answerer asks for every question term's idf at once: one read
    transaction, the same values as the per-term formula, 0 for a term never indexed."""
    terms = [*tokenize("minister bank AT&T £5m 2-1 growth"), "nosuchterm", "bank"]
    with small.catalog.snapshot() as db:
        n = _totals(db)[0]
        df = {t: _doc_freq(db, t) for t in terms}
    want = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) if f else 0.0 for t, f in df.items()}
    assert want["nosuchterm"] == 0.0 and all(want[t] > 0 for t in terms if t != "nosuchterm")
    reads = 0
    snapshot = small.catalog.snapshot

    def counted() -> Any:
        nonlocal reads
        reads += 1
        return snapshot()

    small.refresh()
    monkeypatch.setattr(small.catalog, "snapshot", counted)
    assert small.idfs(terms) == want
    assert reads == 1
    assert {t: small.idf(t) for t in terms} == want


# --- the two-stage query: rare-term candidates, BM25 over every term ----------------------------
def test_rare_terms_are_the_rarest_within_the_budget_and_never_none() -> None:
    df = {"would": 900, "zebra": 3, "okapi": 5, "year": 700, "club": 40}
    assert rare_terms(df, 50) == ["zebra", "okapi", "club"]
    assert rare_terms(df, 8) == ["zebra", "okapi"]
    assert rare_terms(df, 0) == ["zebra"]  # the rarest term is always searched
    assert rare_terms({"would": 900}, 10) == ["would"]
    assert rare_terms({}, 10) == []


def test_the_second_stage_scores_exactly_as_fts5_bm25(small: LexicalIndex) -> None:
    """With a share that makes every term a candidate term, the two-stage search must return
    FTS5's own bm25() ranking, scores included: the Python BM25 is the same formula."""
    exhaustive = LexicalIndex(small.catalog, candidate_share=1e9)
    rng = random.Random(5)
    for _ in range(20):
        query = " ".join(rng.sample([*WORDS, "AT&T", "£5m", "2-1", "story"], 4))
        want, got = small.search_exhaustive(query, 10), exhaustive.search(query, 10)
        assert [round(s, 9) for _, s in got] == [round(s, 9) for _, s in want], query
        assert {i for i, _ in got} == {i for i, _ in want}, query


def test_a_small_corpus_gets_exhaustive_bm25(tmp_path: Path) -> None:
    """40 chunks, fewer than the shortlist: a share of them would be 4 postings, which kept
    only the single rarest term and lost every chunk without it (a user's own small folder,
    the bundled sample). The walk may cover as many postings as the shortlist holds."""
    catalog = Catalog(tmp_path / "catalog.sqlite")
    rng = random.Random(3)
    for i in range(20):
        body = " ".join(rng.choice(WORDS[:6]) for _ in range(20))
        extra = " zebra" if i < 2 else " court" if i % 2 else ""
        _commit(catalog, f"Item {i}", f"{body}{extra}.", f"z{i}.txt")
    lex = LexicalIndex(catalog)
    want, got = lex.search_exhaustive("zebra court", 10), lex.search("zebra court", 10)
    assert len(want) == 10
    assert [round(s, 9) for _, s in got] == [round(s, 9) for _, s in want]


def test_a_common_word_is_scored_on_the_candidates_but_never_walked(tmp_path: Path) -> None:
    """The query's FTS5 work covers only the rare terms: a word held by every chunk ("court")
    must not be matched over the whole index (exhaustive bm25() walked all its chunks), yet it
    still ranks the candidates, and the result is exhaustive bm25()'s top 3."""
    catalog = Catalog(tmp_path / "catalog.sqlite")
    rng = random.Random(4)
    for i in range(100):
        body = " ".join(rng.choice(WORDS) for _ in range(30))
        rare = " zebra crossing" if i % 30 == 0 else ""
        courts = " court" * (i % 30 // 10 + (i == 60))
        _commit(catalog, f"Item {i}", f"court {body}{rare}{courts}.", f"c{i}.txt")
    lex = LexicalIndex(catalog, candidates=10)  # a shortlist far below the 200 chunks
    statements: list[str] = []
    catalog._db.set_trace_callback(statements.append)
    hits = lex.search("zebra court", 3)
    catalog._db.set_trace_callback(None)
    matched = " ".join(s for s in statements if "MATCH" in s)
    assert '"zebra"' in matched and '"court"' not in matched
    assert len(hits) == 3
    want = lex.search_exhaustive("zebra court", 3)
    assert [i for i, _ in hits] == [i for i, _ in want]
    assert [round(s, 9) for _, s in hits] == [round(s, 9) for _, s in want]


def test_totals_follow_commits_and_removals(tmp_path: Path) -> None:
    """bm25() and idf() read the chunk and term totals from FTS5's averages record."""
    catalog = Catalog(tmp_path / "catalog.sqlite")
    lex = LexicalIndex(catalog)
    lex.refresh()
    with catalog.snapshot() as db:
        assert _totals(db) == (0, 0)
    arts = [_commit(catalog, f"T{i}", "alpha beta gamma " * (i + 1), f"t{i}.txt") for i in range(5)]
    catalog.remove_article(arts[2].id)
    rows = catalog.read("SELECT terms FROM lexical_rows")
    with catalog.snapshot() as db:
        assert _totals(db) == (len(rows), sum(len(r[0].split()) for r in rows))
    n, df = len(rows), sum("alpha" in r[0].split() for r in rows)
    assert lex.idf("alpha") == pytest.approx(math.log(1 + (n - df + 0.5) / (df + 0.5)))


def test_replacing_and_removing_an_article_updates_the_index(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog.sqlite")
    lex = LexicalIndex(catalog)
    old = _commit(catalog, "Zebra", "The zebra crossing story, told twice over.", "z.txt")
    assert next(i for i, _ in lex.search("zebra", 5)).startswith(old.id)
    new = Article(title="Okapi", text="The okapi story instead.", origin="z.txt")
    catalog.commit_article(new, [Chunk(new.id, 0, new.text, 0, len(new.text))], "z.txt", old.id)
    assert lex.search("zebra", 5) == []
    assert lex.chunk_ids() == {f"{new.id}:0"} == catalog.chunk_ids()
    catalog.remove_article(new.id)
    assert lex.search("okapi", 5) == [] and lex.chunk_ids() == set()


# --- one index shared by threads while articles commit ----------------------------------------
def test_threads_sharing_one_index_while_articles_commit(tmp_path: Path) -> None:
    """Four threads search one LexicalIndex while a fifth commits 150 articles, one per
    transaction; every hit must be a committed chunk holding the searched marker or word."""
    catalog = Catalog(tmp_path / "catalog.sqlite")
    lex = LexicalIndex(catalog, tmp_path / "lexical.pkl")
    n, done = 150, threading.Event()
    wrong: list[str] = []
    errors: list[str] = []
    searches = [0]

    def write() -> None:
        rng = random.Random(3)
        for i in range(n):
            body = " ".join(rng.choice(WORDS) for _ in range(40))
            _commit(catalog, f"Note {i}", f"Marker tok{i:04d} here. {body}", f"n{i}.txt")
        done.set()

    def read(seed: int) -> None:
        rng = random.Random(seed)
        while not done.is_set():
            marker = f"tok{rng.randrange(n):04d}"
            try:
                found = [i for i, _ in lex.search(f"{marker} court", 5)]
                stored = catalog.chunks(found)
            except Exception as exc:  # any error is what this test looks for
                errors.append(repr(exc))
                continue
            searches[0] += 1
            for chunk_id in found:
                text = stored[chunk_id].text if chunk_id in stored else ""
                if marker not in text and "court" not in text:
                    wrong.append(f"{marker} -> {chunk_id}")

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=read, args=(s,)) for s in range(4)]
        threads.append(threading.Thread(target=write))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    finally:
        sys.setswitchinterval(switch)
    assert errors == [] and wrong == [], (errors[:3], wrong[:3], searches[0])
    assert searches[0] > 0


# --- readers in threads and in another process while a writer syncs ---------------------------
def _corpus(folder: Path, n: int) -> None:
    rng = random.Random(2)
    folder.mkdir(parents=True)
    for i in range(n):
        body = ". ".join(" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(20))
        (folder / f"a{i:03d}.txt").write_text(
            f"Report number {i}\n\nMarker tok{i:04d} opens it. {body}. Closing tok{i:04d}.\n",
            encoding="utf-8",
        )


def test_readers_in_threads_and_a_process_while_a_writer_syncs(tmp_path: Path) -> None:
    home, docs, stop = tmp_path / "home", tmp_path / "docs", tmp_path / "stop"
    n = 60
    _corpus(docs, n)
    writer = subprocess.Popen(
        cli_command(home, str(docs)), cwd=ROOT, env=child_env(), stdout=subprocess.PIPE
    )
    child_code = (
        "import json, sys; from pathlib import Path; "
        "from tests.reliability_support import read_while_writing as r; "
        f"print(json.dumps(r(Path({str(home)!r}), {n}, Path({str(stop)!r}), 2)))"
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", child_code],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    result: dict[str, Any] = {}
    mine = threading.Thread(
        target=lambda: result.update(read_while_writing(home, n, stop, threads=3))
    )
    mine.start()
    try:
        assert writer.wait(timeout=300) == 0
    finally:
        stop.touch()
        mine.join(timeout=120)
        child_out, child_err = reader.communicate(timeout=120)
    assert reader.returncode == 0, child_err.decode()[-2000:]
    child = json.loads(child_out.decode().strip().splitlines()[-1])
    for who in (result, child):
        assert who["errors"] == [] and who["wrong"] == []
        assert who["searches"] > 0
    print(f"searches during the sync: {result['searches']} here, {child['searches']} in a child")
    index = Index.open(Settings(home=home, embedding_model="fake"))
    assert index is not None
    assert index.lexical.chunk_ids() == index.catalog.chunk_ids()
    for i in range(n):  # after the sync every marker finds its article
        found = index.catalog.chunks([c for c, _ in index.lexical.search(f"tok{i:04d}", 3)])
        assert any(f"tok{i:04d}" in c.article_text for c in found.values())
    index.close()


# --- a home from before FTS5 -------------------------------------------------------------------
def test_a_home_with_the_old_pickle_opens_and_never_unpickles(tmp_path: Path) -> None:
    """The old bm25s index lived in lexical.pkl and the catalog had no lexical tables: the
    first open indexes the catalog's chunk texts once and deletes the pickle unread (loading
    a pickle runs code; this one would create a file)."""
    settings = Settings(home=tmp_path / "home", embedding_model="fake")
    docs = tmp_path / "docs"
    _corpus(docs, 5)
    sync(settings, [str(docs)], show_bar=False)
    index = Index.open(settings)
    assert index is not None
    db = sqlite3.connect(index.dir / "catalog.sqlite")
    db.executescript(
        "DROP TABLE lexical_vocab; DROP TABLE lexical; DROP TABLE lexical_rows;"
        "DELETE FROM meta WHERE key = 'lexical_tokenizer';"
    )
    db.close()
    index.close()
    pwned = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple:
            return (Path.touch, (pwned,))

    (index.dir / "lexical.pkl").write_bytes(pickle.dumps({"revision": 1, "bm25": Payload()}))

    reopened = Index.open(settings)
    assert reopened is not None
    hits = reopened.lexical.search("tok0003", 3)
    assert hits and reopened.catalog.chunks([hits[0][0]])[hits[0][0]].article.origin.endswith(
        "a003.txt"
    )
    assert reopened.lexical.chunk_ids() == reopened.catalog.chunk_ids()
    assert not (reopened.dir / "lexical.pkl").exists()
    assert not pwned.exists()
    reopened.close()
