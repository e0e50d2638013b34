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


# A question has a handful of terms; a pasted page has hundreds, and each one makes FTS5 score
# every chunk it occurs in. Past this many, only the rarest (the ones BM25 weighs most) are used.
MAX_QUERY_TERMS = 32


def match_expression(terms: Iterable[str]) -> str:
    """An FTS5 query that ORs the terms, each quoted: nothing a user types (quotes, AND, NOT,
    NEAR, *, :, ^, parentheses) reaches FTS5's query syntax. Terms never hold a quote."""
    return " OR ".join(f'"{t}"' for t in dict.fromkeys(terms))


class LexicalIndex:
    """BM25 (FTS5's ``bm25()``) over the committed chunks of one catalog."""

    def __init__(self, catalog: Catalog, legacy_pickle: Path | None = None) -> None:
        self.catalog = catalog
        self._legacy = legacy_pickle
        self._checked = False
        self._lock = threading.Lock()
        self._counted: tuple[int, int] | None = None

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
        terms = list(dict.fromkeys(tokenize(query)))
        if len(terms) > MAX_QUERY_TERMS:
            freq = {t: self._doc_freq(t) for t in terms}
            terms = sorted((t for t in terms if freq[t]), key=freq.__getitem__)[:MAX_QUERY_TERMS]
        expression = match_expression(terms)
        if not expression or k <= 0:
            return []
        rows = self.catalog.read(
            "SELECT r.chunk_id, s.score FROM (SELECT rowid, -rank AS score FROM lexical "
            "WHERE lexical MATCH ? ORDER BY rank LIMIT ?) s "
            "JOIN lexical_rows r ON r.rowid = s.rowid ORDER BY s.score DESC",
            (expression, k),
        )
        return [(str(chunk_id), float(score)) for chunk_id, score in rows]

    def _doc_freq(self, term: str) -> int:
        rows = self.catalog.read("SELECT doc FROM lexical_vocab WHERE term = ?", (term,))
        return int(rows[0][0]) if rows else 0

    def idf(self, term: str) -> float:
        """Inverse document frequency of a (tokenized) term; 0 for unknown terms."""
        self.refresh()
        df = self._doc_freq(term)
        if not df:
            return 0.0
        n = self._count()
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def _count(self) -> int:
        """Indexed chunks, counted once per catalog revision (a count is a scan of 100k rows)."""
        revision = self.catalog.revision
        cached = self._counted
        if cached is None or cached[0] != revision:
            cached = (revision, int(self.catalog.read("SELECT count(*) FROM lexical_rows")[0][0]))
            self._counted = cached
        return cached[1]

    def chunk_ids(self) -> set[str]:
        """Every indexed chunk id (the crash checks compare it with the catalog's)."""
        self.refresh()
        return {r[0] for r in self.catalog.read("SELECT chunk_id FROM lexical_rows")}
