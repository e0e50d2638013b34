"""Sentence boundaries with character offsets, tuned for news prose.

Off-the-shelf splitters either need downloaded data (NLTK's punkt) or lose offsets; news
text needs abbreviations ("U.S.", "Oct. 30", "Mr.") and quotes handled, and every span must
slice back into the article so citations can highlight the exact sentence.
"""

from __future__ import annotations

import re

Span = tuple[int, int]

_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "sen",
        "rep",
        "gov",
        "gen",
        "lt",
        "col",
        "capt",
        "sgt",
        "cmdr",
        "adm",
        "jr",
        "sr",
        "rev",
        "hon",
        "pres",
        "inc",
        "ltd",
        "co",
        "corp",
        "plc",
        "llc",
        "bros",
        "dept",
        "est",
        "approx",
        "vs",
        "etc",
        "no",
        "nos",
        "vol",
        "fig",
        "al",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
        "u.s",
        "u.k",
        "u.n",
        "e.u",
        "a.m",
        "p.m",
        "d.c",
        "n.y",
        "l.a",
        "i.e",
        "e.g",
        "ph.d",
    ]
)

# A sentence ends at . ! ? (possibly repeated), optionally followed by closing quotes or brackets,
# when whitespace and then something that can open a sentence follow.
_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])")
_WORD_BEFORE = re.compile(r"([\w.]+)$")


def _is_abbreviation(text: str, dot: int) -> bool:
    match = _WORD_BEFORE.search(text, 0, dot)
    if not match:
        return False
    word = match.group(1).lower().strip(".")
    if len(word) == 1 and word.isalpha():  # an initial: "J. K. Rowling"
        return True
    return word in _ABBREVIATIONS


def _trim(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def split_sentences(text: str) -> list[Span]:
    """Spans of the sentences in ``text``; paragraphs (newlines) always end a sentence."""
    spans: list[Span] = []
    for para in re.finditer(r"[^\n]+", text):
        start = para.start()
        for match in _END.finditer(text, para.start(), para.end()):
            # "the U.S." closed by a quote still ends the sentence; a bare "U.S." does not.
            if match.group() == "." and _is_abbreviation(text, match.start()):
                continue
            span = _trim(text, start, match.end())
            if span:
                spans.append(span)
            start = match.end()
        span = _trim(text, start, para.end())
        if span:
            spans.append(span)
    return spans
