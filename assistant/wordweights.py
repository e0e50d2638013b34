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
def term_weight(word: str, wordlist: str = "large") -> float:
    """'the' ~7.7 Zipf -> 0.5, 'tariff' ~3.5 -> 3.5, a name wordfreq has never seen -> 7.0.

    ``wordlist="small"`` knows only words at Zipf 3 and above (the rarer ones all weigh 7.0):
    it loads in 7 ms and 4 MB where "large" takes 74 ms and 38 MB, which a one-question
    process (``assistant ask``) feels. The fitted reader was fitted on "large"."""
    from wordfreq import zipf_frequency

    return max(0.5, 7.0 - zipf_frequency(word, "en", wordlist=wordlist))


def question_weights(question: str) -> dict[str, float]:
    """Each stemmed question term (``index.lexical.tokenize``) and its weight (small list),
    the largest over the words that stem to it."""
    out: dict[str, float] = {}
    for term, word in zip(tokenize(question), tokenize(question, stemmed=False), strict=True):
        out[term] = max(out.get(term, 0.0), term_weight(word, "small"))
    return out
