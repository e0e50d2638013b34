"""The lexical side of the store: BM25 (bm25s) over the same chunks as the vectors.

News questions are full of names, figures and dates that embeddings blur; BM25 catches them.
The index is rebuilt from the catalog whenever the catalog's revision moves (a few seconds for
thousands of chunks) and saved beside it, stamped with the revision it reflects, so a stale
or half-written file is never trusted.
"""

from __future__ import annotations

import os
import pickle
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from index.catalog import Catalog

# "R&B", "AT&T", "M&S" stay one token: split, their single letters match any "B" or "T".
_TOKEN = re.compile(r"\w+(?:&\w+)*", re.UNICODE)
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


TOKENIZER_VERSION = 3


def stem(token: str) -> str:
    """A light suffix fold so "threatened" meets "threaten" and "tariffs" meets "tariff";
    a full stemmer would merge names and figures that news questions must keep apart."""
    if token.isdigit() or len(token) <= 4:
        return token
    for suffix in ("ing", "ed"):
        if token.endswith(suffix) and len(token) - len(suffix) >= 4:
            token = token[: -len(suffix)]
            break
    else:
        if token.endswith("s") and not token.endswith("ss"):
            token = token[:-1]
    return token[:-1] if token.endswith("e") and len(token) > 4 else token


def tokenize(text: str) -> list[str]:
    """Lower-cased, lightly stemmed word tokens without stop words; numbers are kept."""
    return [stem(tok) for tok in _TOKEN.findall(text.lower()) if tok not in _STOPWORDS]


class LexicalIndex:
    """BM25 over committed chunks, kept in step with the catalog revision."""

    def __init__(self, catalog: Catalog, path: Path) -> None:
        self.catalog = catalog
        self.path = path
        self._lock = threading.Lock()
        self._revision = -1
        self._ids: list[str] = []
        self._bm25: Any = None

    def _fresh(self) -> None:
        revision = self.catalog.revision
        if revision == self._revision:
            return
        with self._lock:
            if revision == self._revision:
                return
            if not self._load(revision):
                self._build(revision)
                self._save()

    def _load(self, revision: int) -> bool:
        try:
            with self.path.open("rb") as fh:
                state = pickle.load(fh)
            ids, bm25 = state["ids"], state["bm25"]
            fresh = state["revision"] == revision and state["tokenizer"] == TOKENIZER_VERSION
        except Exception:  # a cache: whatever is wrong with it (damage, old shape), rebuild
            return False
        if not fresh or not isinstance(ids, list):
            return False
        self._ids, self._bm25, self._revision = ids, bm25, revision
        return True

    def _build(self, revision: int) -> None:
        import bm25s

        ids, corpus = [], []
        for chunk_id, title, text in self.catalog.all_chunks():
            ids.append(chunk_id)
            corpus.append(tokenize(f"{title}\n{text}") or ["<empty>"])
        bm25 = bm25s.BM25()
        if corpus:
            bm25.index(corpus, show_progress=False)
        self._ids, self._bm25, self._revision = ids, (bm25 if corpus else None), revision

    def _save(self) -> None:
        # Unique per process and thread: two indexes of one generation may save at once.
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with tmp.open("wb") as fh:
                pickle.dump(
                    {
                        "revision": self._revision,
                        "tokenizer": TOKENIZER_VERSION,
                        "ids": self._ids,
                        "bm25": self._bm25,
                    },
                    fh,
                )
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(self.path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a read-only home still answers, from memory

    def refresh(self) -> None:
        """Bring the index up to the catalog's revision now (after a sync)."""
        self._fresh()

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """(chunk id, BM25 score) of the best ``k`` chunks for ``query``."""
        self._fresh()
        tokens = [
            t for t in tokenize(query) if self._bm25 is not None and t in self._bm25.vocab_dict
        ]
        if not tokens or not self._ids:
            return []
        scores = self._bm25.get_scores(tokens)
        k = min(k, len(self._ids))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(self._ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def idf(self, term: str) -> float:
        """Inverse document frequency of a (tokenized) term; 0 for unknown terms."""
        self._fresh()
        if self._bm25 is None or term not in self._bm25.vocab_dict:
            return 0.0
        n = len(self._ids)
        df = float(self._doc_freq()[self._bm25.vocab_dict[term]])
        return float(np.log(1 + (n - df + 0.5) / (df + 0.5)))

    def _doc_freq(self) -> np.ndarray:
        cached = getattr(self, "_df", None)
        if cached is not None and cached[0] == self._revision:
            return cached[1]
        matrix = self._bm25.scores  # CSC matrix parts: data, indices, indptr over vocab columns
        df = np.diff(np.asarray(matrix["indptr"]))
        self._df = (self._revision, df)
        return df
