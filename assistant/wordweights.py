"""How telling a question word is, from general English frequency, not from the index.

Corpus IDF makes an answer depend on what else is indexed: over one article every word is
common and a question word the article lacks outweighs the rest, so answerable questions are
declined; over thousands the same question is answered (issue 12 measured 6 of 18 declined on
the sample alone, 1 with the BBC corpus beside it). A general frequency table (``wordfreq``'s
Zipf scale) gives every question the same weights whatever is indexed.
"""

from __future__ import annotations

from functools import lru_cache

from index.lexical import tokenize


@lru_cache(maxsize=100_000)
def term_weight(word: str) -> float:
    """'the' ~7.7 Zipf -> 0.5, 'tariff' ~3.7 -> 3.3, a name wordfreq has never seen -> 7.0."""
    from wordfreq import zipf_frequency

    return max(0.5, 7.0 - zipf_frequency(word, "en"))


def question_weights(question: str) -> dict[str, float]:
    """Each stemmed question term (``index.lexical.tokenize``) and its weight, the largest
    over the words that stem to it."""
    out: dict[str, float] = {}
    for term, word in zip(tokenize(question), tokenize(question, stemmed=False), strict=True):
        out[term] = max(out.get(term, 0.0), term_weight(word))
    return out


def warm() -> None:
    """Load the frequency table (about 0.15 s) so a first question does not wait for it."""
    term_weight("news")
