"""The lexical side of the store: SQLite FTS5 in the catalog's own database.

News questions are full of names, figures and dates that embeddings blur; BM25 catches them.
The terms of an article's chunks are written in the same SQLite transaction that commits the
article (``Catalog.commit_article``), so the catalog and the lexical index can never disagree,
not even after a kill -9; a change costs one article, not a rebuild; readers in any number of
threads and processes read a consistent snapshot through WAL while one writer adds articles.
``bench/lexical.py`` measured this against tantivy and the bm25s index it replaces.

Tokenising is ours, not FTS5's: the table stores each chunk's terms space-separated and FTS5
only splits on spaces, so the terms the index holds are exactly ``tokenize``'s, which the
extractive answerer also uses (and asks ``idf`` about).
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from index.catalog import Catalog

# Bump when ``tokenize`` changes: a catalog indexed with other terms is re-indexed once.
TOKENIZER_VERSION = "fts5-snowball-1"

# A term: letters/digits joined by "&" (R&B, AT&T), "." (U.S., 5.4), "-" (2-1, sub-prime) or an
# apostrophe (O'Neill), optionally led by a currency sign (£5m). "_" is not a letter here.
_TOKEN = re.compile(r"[£$€¥]?[^\W_]+(?:[&.\-'’][^\W_]+)*")
_POSSESSIVE = re.compile(r"['’]s\b")
_APOSTROPHE = re.compile(r"['’]")
# The characters FTS5 must keep inside a term (everything else in stored terms is a space).
_TERM_CHARS = "&.-£$€¥"
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "he",
        "her",
        "his",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "she",
        "that",
        "the",
        "their",
        "there",
        "they",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "did",
        "do",
        "does",
        "said",
        "says",
        "about",
        "after",
        "into",
        "than",
        "then",
        "them",
        "these",
        "those",
        "over",
        "also",
    ]
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS lexical_rows (
    rowid INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, article_id TEXT NOT NULL,
    terms TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lexical_rows_article ON lexical_rows(article_id);
CREATE VIRTUAL TABLE IF NOT EXISTS lexical USING fts5(
    terms, content='lexical_rows', content_rowid='rowid',
    tokenize="unicode61 remove_diacritics 0 tokenchars '{_TERM_CHARS}'"
);
CREATE VIRTUAL TABLE IF NOT EXISTS lexical_vocab USING fts5vocab(lexical, 'row');
"""


@lru_cache(maxsize=1)
def _stemmer() -> object:
    import Stemmer  # PyStemmer: the Snowball English stemmer, compiled

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def stem(token: str) -> str:
    """Snowball (Porter 2) on words of letters; figures and joined names stay as written."""
    if not token.isalpha():
        return token
    return str(_stemmer().stemWord(token))  # type: ignore[attr-defined]


def _expand(token: str) -> list[str]:
    """A compound term and the words it is made of, so "sub-prime" also meets "prime" and
    "£5m" meets "5m"; "&" names stay whole (a lone "B" must not match "R&B")."""
    out = [token]
    if token[0] in "£$€¥":
        out.append(token[1:])
    if "-" in token:
        out.extend(p for p in token.lstrip("£$€¥").split("-") if p)
    return out


def tokenize(text: str, *, stemmed: bool = True) -> list[str]:
    """Lower-cased, stemmed terms without stop words; names and figures are kept whole.

    Stemmed with Snowball because it retrieved better than no stemming over the BBC dev and
    RealTime QA questions together (``bench/lexical.py --quality``; README, Scaling), and
    because the extractive answerer matches "landed" to "land" through these terms."""
    text = _POSSESSIVE.sub("", text.lower())
    terms = []
    for raw in _TOKEN.findall(text):
        for term in _expand(_APOSTROPHE.sub("", raw)):
            if term not in _STOPWORDS:
                terms.append(stem(term) if stemmed else term)
    return terms


def chunk_terms(title: str, text: str) -> str:
    """What the index stores for a chunk: the terms of its title and text."""
    return " ".join(tokenize(f"{title}\n{text}"))


# --- writes: called inside the catalog's transaction ---------------------------------------
def index_chunks(
    db: sqlite3.Connection, article_id: str, title: str, chunks: Iterable[tuple[str, str]]
) -> None:
    """Add (chunk id, chunk text) of one article; the caller's transaction makes it visible."""
    for chunk_id, text in chunks:
        terms = chunk_terms(title, text)
        cur = db.execute(
            "INSERT INTO lexical_rows (chunk_id, article_id, terms) VALUES (?, ?, ?)",
            (chunk_id, article_id, terms),
        )
        db.execute("INSERT INTO lexical (rowid, terms) VALUES (?, ?)", (cur.lastrowid, terms))


def unindex_article(db: sqlite3.Connection, article_id: str) -> None:
    """Remove one article's chunks (an external-content table is told the old terms)."""
    db.execute(
        "INSERT INTO lexical (lexical, rowid, terms) "
        "SELECT 'delete', rowid, terms FROM lexical_rows WHERE article_id = ?",
        (article_id,),
    )
    db.execute("DELETE FROM lexical_rows WHERE article_id = ?", (article_id,))


def reindex_all(db: sqlite3.Connection, rows: Iterable[tuple[str, str, str]]) -> None:
    """Index every (chunk id, title, text) from scratch: an old catalog, or a new tokenizer."""
    db.execute("INSERT INTO lexical (lexical) VALUES ('delete-all')")
    db.execute("DELETE FROM lexical_rows")
    for chunk_id, title, text in rows:
        index_chunks(db, chunk_id.rsplit(":", 1)[0], title, [(chunk_id, text)])
    db.execute("INSERT INTO lexical (lexical) VALUES ('optimize')")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('lexical_tokenizer', ?)", (TOKENIZER_VERSION,))


# A question has a handful of terms; a pasted page has hundreds. Only the rarest this many (the
# ones BM25 weighs most) are searched and scored.
MAX_QUERY_TERMS = 32

# FTS5's bm25() scores every chunk holding any query term: at 108k chunks a question with a few
# common words ("would", "year") costs 50-100 ms of CPU. So a query runs in two stages:
# candidates are the chunks holding the rarest terms, walked until their postings (document
# frequencies) add up to CANDIDATE_SHARE of the indexed chunks, ranked by the summed idf of the
# terms they hold; the best CANDIDATES of them are then scored by BM25 over *all* the query's
# terms, exactly as bm25() would. The work is bounded by the share, not by the commonest word.
# The share was the smallest of 0.01-0.2 whose BBC dev evidence recall@5 and MRR@10 were not
# below exhaustive bm25()'s at BBC size and at 10x; RealTime QA reported it (README, Scaling;
# ``bench/lexical.py --pruning``). The walk may always cover as many postings as the second
# stage scores anyway (CANDIDATES, or k if larger), so on a small corpus (up to about 2,000
# chunks, where a share would be a handful of postings) the rare terms are all the terms and
# the result is exhaustive bm25()'s.
CANDIDATE_SHARE = 0.10
CANDIDATES = 200
# bm25()'s constants (FTS5 defaults), so both stages rank as the exhaustive query would.
_K1, _B = 1.2, 0.75


def match_expression(terms: Iterable[str]) -> str:
    """An FTS5 query that ORs the terms, each quoted: nothing a user types (quotes, AND, NOT,
    NEAR, *, :, ^, parentheses) reaches FTS5's query syntax. Terms never hold a quote."""
    return " OR ".join(f'"{t}"' for t in dict.fromkeys(terms))


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    """SQLite's varint (big-endian 7-bit groups, a 9th byte of 8 bits): value, next offset."""
    value = 0
    for n in range(9):
        byte = buf[i]
        i += 1
        if n == 8:
            return (value << 8) | byte, i
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return value, i


def _totals(db: sqlite3.Connection) -> tuple[int, int]:
    """(indexed chunks, indexed terms) from FTS5's averages record (row 1 of its data table:
    a varint row count, then the column's token total), O(1) where ``count(*)`` scans 100k
    rows; bm25() reads the same record."""
    row = db.execute("SELECT block FROM lexical_data WHERE id = 1").fetchone()
    if row is None or not row[0]:
        return 0, 0
    rows, i = _varint(row[0], 0)
    tokens, _ = _varint(row[0], i)
    return rows, tokens


def _idf(n: int, df: int) -> float:
    """bm25()'s idf, floored at 1e-6 as FTS5 does (a term in over half the chunks)."""
    return max(math.log((n - df + 0.5) / (df + 0.5)), 1e-6)


def bm25(terms: str, idf: dict[str, float], avg_len: float) -> float:
    """bm25() of one chunk, from its stored terms (space-separated, as FTS5 tokenized them)."""
    spaced = f" {terms.replace(' ', '  ')} "  # every term between its own two spaces
    norm = _K1 * (1 - _B + _B * (terms.count(" ") + 1) / avg_len)
    score = 0.0
    for term, weight in idf.items():
        tf = spaced.count(f" {term} ")
        if tf:
            score += weight * tf * (_K1 + 1) / (tf + norm)
    return score


def rare_terms(df: dict[str, int], budget: float) -> list[str]:
    """The rarest terms whose document frequencies add up to at most ``budget`` (always the
    rarest one): the terms whose chunks are the candidates."""
    chosen: list[str] = []
    used = 0
    for term in sorted(df, key=lambda t: (df[t], t)):
        if chosen and used + df[term] > budget:
            break
        chosen.append(term)
        used += df[term]
    return chosen


class LexicalIndex:
    """BM25 (FTS5's ``bm25()`` formula) over the committed chunks of one catalog."""

    def __init__(
        self,
        catalog: Catalog,
        legacy_pickle: Path | None = None,
        *,
        candidate_share: float = CANDIDATE_SHARE,
        candidates: int = CANDIDATES,
    ) -> None:
        self.catalog = catalog
        self._legacy = legacy_pickle
        self._checked = False
        self._lock = threading.Lock()
        self.candidate_share = candidate_share
        self.candidates = candidates

    def refresh(self) -> None:
        """Make sure the table is indexed with today's tokenizer (once per catalog: a home
        from before FTS5 is indexed from the catalog's chunk texts and its pickle deleted)."""
        if self._checked:
            return
        with self._lock:
            if self._checked:
                return
            if self.catalog.get_meta("lexical_tokenizer") != TOKENIZER_VERSION:
                with self.catalog.transaction() as db:  # re-read under the write lock
                    row = db.execute(
                        "SELECT value FROM meta WHERE key = 'lexical_tokenizer'"
                    ).fetchone()
                    if row is None or row[0] != TOKENIZER_VERSION:
                        reindex_all(db, self.catalog.all_chunks())
            if self._legacy is not None:
                self._legacy.unlink(missing_ok=True)
            self._checked = True

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """(chunk id, BM25 score) of the best ``k`` chunks for ``query``; [] when no term of the
        query is indexed (a question of stop words only, punctuation)."""
        self.refresh()
        if k <= 0:
            return []
        with self.catalog.snapshot() as db:  # counts, totals and postings of one state
            df = _query_terms(db, query)
            if not df:
                return []
            n, tokens = _totals(db)
            idf = {t: _idf(n, f) for t, f in df.items()}
            shortlist = max(k, self.candidates)
            rare = rare_terms(df, max(self.candidate_share * n, shortlist))
            parts = " UNION ALL ".join(
                "SELECT rowid, ? AS w FROM lexical WHERE lexical MATCH ?" for _ in rare
            )
            rows = db.execute(
                f"SELECT r.chunk_id, r.terms FROM (SELECT rowid, sum(w) AS w FROM ({parts}) "
                "GROUP BY rowid ORDER BY w DESC, rowid LIMIT ?) s "
                "JOIN lexical_rows r ON r.rowid = s.rowid",
                [
                    *(x for t in rare for x in (idf[t], match_expression([t]))),
                    shortlist,
                ],
            ).fetchall()
        avg_len = tokens / n if n else 1.0
        scored = sorted(
            ((bm25(terms_text, idf, avg_len), str(chunk_id)) for chunk_id, terms_text in rows),
            key=lambda pair: (-pair[0], pair[1]),
        )
        return [(chunk_id, score) for score, chunk_id in scored[:k]]

    def search_exhaustive(self, query: str, k: int) -> list[tuple[str, float]]:
        """FTS5's own ``bm25()`` ranking of every chunk holding any of the (32 rarest) terms:
        the reference the two-stage :meth:`search` is measured and tested against."""
        self.refresh()
        with self.catalog.snapshot() as db:
            expression = match_expression(_query_terms(db, query))
            if not expression or k <= 0:
                return []
            rows = db.execute(
                "SELECT r.chunk_id, s.score FROM (SELECT rowid, -rank AS score FROM lexical "
                "WHERE lexical MATCH ? ORDER BY rank LIMIT ?) s "
                "JOIN lexical_rows r ON r.rowid = s.rowid ORDER BY s.score DESC, r.chunk_id",
                (expression, k),
            ).fetchall()
        return [(str(chunk_id), float(score)) for chunk_id, score in rows]

    def idf(self, term: str) -> float:
        """Inverse document frequency of a (tokenized) term; 0 for unknown terms."""
        return self.idfs([term])[term]

    def idfs(self, terms: Iterable[str]) -> dict[str, float]:
        """:meth:`idf` of several terms from one read transaction: the extractive answerer
        asks about every question term, and a snapshot per term cost a BEGIN/COMMIT each."""
        self.refresh()
        wanted = list(dict.fromkeys(terms))
        with self.catalog.snapshot() as db:
            df = {t: _doc_freq(db, t) for t in wanted}
            n = _totals(db)[0] if any(df.values()) else 0
        return {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) if f else 0.0 for t, f in df.items()}

    def chunk_ids(self) -> set[str]:
        """Every indexed chunk id (the crash checks compare it with the catalog's)."""
        self.refresh()
        return {r[0] for r in self.catalog.read("SELECT chunk_id FROM lexical_rows")}


def _query_terms(db: sqlite3.Connection, query: str) -> dict[str, int]:
    """The query's indexed terms, rarest first, at most MAX_QUERY_TERMS, with their document
    frequencies: what both the two-stage and the exhaustive search rank by."""
    df = {t: f for t in dict.fromkeys(tokenize(query)) if (f := _doc_freq(db, t))}
    return {t: df[t] for t in sorted(df, key=lambda t: (df[t], t))[:MAX_QUERY_TERMS]}


def _doc_freq(db: sqlite3.Connection, term: str) -> int:
    """Chunks holding ``term`` (fts5vocab walks its posting list: 0.1-0.3 ms at 108k chunks)."""
    row = db.execute("SELECT doc FROM lexical_vocab WHERE term = ?", (term,)).fetchone()
    return int(row[0]) if row else 0
