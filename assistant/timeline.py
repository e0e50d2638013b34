"""Say when: date every answer, and show both sides when dated articles disagree.

News answers go stale, so an answer names the date of the article it rests on ("As of 24 Oct
2025 [1]: ...") and the window a date in the question named. When the retrieved articles from
the two most different dates each answer the question with a different value of the asked-for
kind (a name for "who", a number for "how many"), the answer gives both, oldest first, instead
of silently picking one: "On 5 Sep 2025: ... [1]; on 25 Oct 2025: ... [2]". The check is kept
deliberately simple and cautious: questions that want a clause (what/why/how) are never called
conflicting, because two different sentences about one story are not two different values, and
only questions about a present state are (on RealTime QA's fit weeks, 22 of 102 answers said
"the articles differ" when any question could, nearly all pairing two different stories).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date

from langchain_core.documents import Document

from assistant.dates import DateWindow, asks_current, day_label, event_since
from assistant.extractive import expected_type
from assistant.types import Answer, Citation
from index.lexical import tokenize

AnswerFn = Callable[[str, Sequence[Document]], tuple[str, list[Citation], bool]]

UNKNOWN_DATE = "date unknown"
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w'&-]+(?:\s+[A-Z][\w'&-]+)*")


def published_label(published: str | None) -> str:
    """ "24 Oct 2025" for an ISO date, "date unknown" otherwise."""
    if not published:
        return UNKNOWN_DATE
    try:
        return day_label(date.fromisoformat(published))
    except ValueError:
        return UNKNOWN_DATE


def window_note(window: DateWindow | None, unresolved: str | None = None) -> str:
    """The window searched, or why a "since <event>" did not narrow the search."""
    if window:
        return f"Looking at articles from {window.label()}."
    if unresolved:
        return f"(“since {unresolved}” names no date; articles of every date were searched.)"
    return ""


def date_answer(
    answer: Answer,
    *,
    as_of: date,
    window: DateWindow | None,
    docs: Sequence[Document] = (),
    answer_fn: AnswerFn | None = None,
    query: str = "",
) -> Answer:
    """``answer`` with its as-of date, window and dated text (or both sides of a change)."""
    dated = replace(answer, as_of=as_of.isoformat(), window=window.as_strings() if window else None)
    note = window_note(window, None if window else event_since(query or answer.question))
    if window and docs and not any(_inside(d.metadata.get("published"), window) for d in docs):
        note = f"No article from {window.label()} was found; these are from other dates."
    if not answer.answered or not answer.citations:
        text = f"{answer.text} {note}".strip() if note else answer.text
        return replace(dated, text=text)
    changed = _changed(query or answer.question, docs, answer_fn) if answer_fn is not None else None
    if changed is not None:
        (older, old_label), (newer, new_label) = changed
        body = (
            f"The articles differ by date. On {old_label}: {older.quote} [1]; "
            f"on {new_label}: {newer.quote} [2]"
        )
        citations = [replace(older, n=1), replace(newer, n=2)]
        return replace(dated, text=f"{note} {body}".strip(), citations=citations)
    first = answer.citations[0]
    if not first.published:
        # Nothing to date it by: "As of date unknown" would read as a date; the citation
        # itself says "date unknown".
        return replace(dated, text=f"{note} {answer.text}".strip())
    body = f"As of {published_label(first.published)} [{first.n}]: {answer.text}"
    return replace(dated, text=f"{note} {body}".strip())


def _inside(published: str | None, window: DateWindow) -> bool:
    return bool(published) and window.start.isoformat() <= str(published) <= window.end.isoformat()


def _changed(
    query: str, docs: Sequence[Document], answer_fn: AnswerFn
) -> tuple[tuple[Citation, str], tuple[Citation, str]] | None:
    """The answers of the earliest- and latest-dated retrieved articles when both answer and
    their values of the asked-for kind differ; None otherwise."""
    kind = expected_type(query)
    if kind not in ("name", "money", "quantity") or not asks_current(query):
        # A value that changes over time is asked for as a present state ("who is", "how
        # much is ... now"); a past event ("which team won") has one answer, and two dated
        # articles naming different things are two stories, not a change.
        return None
    by_date: dict[str, list[Document]] = {}
    for doc in docs:
        published = doc.metadata.get("published")
        if published:
            by_date.setdefault(published, []).append(doc)
    if len(by_date) < 2:
        return None
    days = sorted(by_date)
    sides = []
    for day in (days[0], days[-1]):
        _, citations, answered = answer_fn(query, by_date[day])
        if not answered or not citations:
            return None
        sides.append((citations[0], published_label(day)))
    old_values = _values(sides[0][0].quote, query, kind)
    new_values = _values(sides[1][0].quote, query, kind)
    if not old_values or not new_values or old_values & new_values:
        return None
    return sides[0], sides[1]


def _values(quote: str, question: str, kind: str) -> set[str]:
    """The candidate values of the asked-for kind in a quote, minus what the question says."""
    asked = set(tokenize(question))
    if kind == "name":
        found = {" ".join(tokenize(m.group(0))) for m in _NAME.finditer(quote)}
        return {v for v in found if v and not set(v.split()) <= asked}
    return {n.replace(",", "") for n in _NUMBER.findall(quote) if n not in asked}
