"""Dates in questions: relative expressions resolved against an as-of date into a window.

``resolve("Who became prime minister this week?", as_of=date(2022, 10, 27))`` gives the window
24-27 Oct 2022. The grammar is small and general (calendar words, not question-specific
phrases) so the spaCy question analysis can hand over its DATE entities and raw questions work
too. ``dateparser`` is installed (trafilatura pulls it) but it resolves a single date, not a
window ("last month" becomes one day), guesses the future for bare weekdays and reads "may" in
"who may" as a month; a grammar whose every rule names a calendar unit is easier to test.

Conventions (documented because people disagree):
- "this week" is the seven days ending on as_of (as "past week"), not the ISO week from
  Monday: news written on a Thursday calls Sunday's story "this week". Measured on the
  RealTime QA gold questions that say "this week": the gold article falls in the rolling week
  for 44 of 46 in the fitting half (ISO week: 35), and 52 of 52 in the other half (ISO: 45).
  "last week" is the previous calendar week, Monday to Sunday (ISO 8601); "N weeks ago" is
  the ISO week that holds the day N weeks back.
- A bare weekday or month ("on Friday", "in October") is the most recent one on or before as_of.
- Every window ends no later than as_of: nothing after it can be read anyway.
- "since <date>" runs from that date to as_of. "since <event>" ("since the summit") names no
  date; it is returned unresolved (``DateWindow`` is None, ``event_since`` gives the words) and
  the retriever may anchor it to the earliest retrieved article that mentions the event.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

_MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_WEEKDAYS = {
    name: i
    for i, names in enumerate(
        [
            ("monday", "mon"),
            ("tuesday", "tue", "tues"),
            ("wednesday", "wed"),
            ("thursday", "thu", "thur", "thurs"),
            ("friday", "fri"),
            ("saturday", "sat"),
            ("sunday", "sun"),
        ]
    )
    for name in names
}
_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "few": 3,
    "couple of": 2,
}

_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = r"(?P<weekday>" + "|".join(sorted(_WEEKDAYS, key=len, reverse=True)) + r")"
_COUNT = r"(?P<count>\d+|" + "|".join(sorted(_NUMBERS, key=len, reverse=True)) + r")"
_UNIT = r"(?P<unit>day|week|month|year)s?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"

# Ordered: the first rule that matches wins, longer (more specific) forms first.
_RULES: list[tuple[str, re.Pattern[str]]] = [
    (name, re.compile(r"\b" + pattern + r"\b", re.IGNORECASE))
    for name, pattern in [
        ("day_month_year", _DAY + r"\s+(?:of\s+)?" + _MONTH + r",?\s+" + _YEAR),
        ("month_day_year", _MONTH + r"\s+" + _DAY + r",?\s+" + _YEAR),
        ("iso", r"(?P<iy>(?:19|20)\d\d)-(?P<im>[01]\d)-(?P<id>[0-3]\d)"),
        ("day_month", _DAY + r"\s+(?:of\s+)?" + _MONTH),
        ("month_day", _MONTH + r"\s+" + _DAY + r"(?![\d,]*\s*(?:19|20)\d\d)(?!\d)"),
        ("month_year", _MONTH + r",?\s+" + _YEAR),
        ("ago", _COUNT + r"\s+" + _UNIT + r"\s+ago"),
        ("rolling", r"(?:past|last|previous)\s+" + _COUNT + r"\s+" + _UNIT),
        ("rolling_one", r"past\s+(?P<unit>week|month|year)"),
        ("this_unit", r"this\s+(?P<unit>week|month|year)"),
        ("last_unit", r"(?:last|previous)\s+(?P<unit>week|month|year)"),
        ("weekend", r"(?P<which>this|last)\s+weekend"),
        ("today", r"(?P<word>today|tonight|yesterday)"),
        ("weekday", r"(?:on\s+|last\s+|this\s+(?:past\s+)?)?" + _WEEKDAY),
        ("in_month", r"(?:in|during|since|this|last)\s+" + _MONTH + r"(?!\s+\d)"),
        ("year", r"(?:in|during|since|of)\s+" + _YEAR),
    ]
]
# "may" is a month only after "in"/"since" or with a day; "who may win" is not a date.
_AMBIGUOUS_MONTH = {"may", "mar", "jun", "sat", "sun", "wed"}
_SINCE = re.compile(
    r"\bsince\s+(?P<what>(?:the|a|an|his|her|their|its)\s+[\w' -]+?)(?=[?.,!]|$)", re.I
)


@dataclass(frozen=True)
class DateWindow:
    """Publication dates (both ends inclusive) that a question's date expression points at."""

    start: date
    end: date
    expression: str

    def label(self) -> str:
        """Human form: "24-30 Oct 2025", "30 Sep - 2 Oct 2025", "5 Sep 2025"."""
        return span_label(self.start, self.end)

    def as_strings(self) -> tuple[str, str]:
        return self.start.isoformat(), self.end.isoformat()


def day_label(day: date) -> str:
    """ "24 Oct 2025": the form every answer and citation uses."""
    return f"{day.day} {day.strftime('%b')} {day.year}"


def span_label(start: date, end: date) -> str:
    if start == end:
        return day_label(start)
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}-{day_label(end)}"
    if start.year == end.year:
        return f"{start.day} {start.strftime('%b')} - {day_label(end)}"
    return f"{day_label(start)} - {day_label(end)}"


def resolve(text: str, as_of: date) -> DateWindow | None:
    """The date window of the first date expression in ``text`` (a question or one expression),
    or None when it names no date. Windows never extend past ``as_of``."""
    for name, pattern in _RULES:
        for match in pattern.finditer(text):
            window = _window(name, match, as_of)
            if window is not None:
                start, end = window
                end = min(end, as_of)
                if start > end:
                    continue
                return DateWindow(start, end, match.group(0).strip())
    return None


def event_since(text: str) -> str | None:
    """The event words of "since the summit" when no date rule resolved them, else None."""
    match = _SINCE.search(text)
    if not match or resolve(match.group(0), date.max - timedelta(days=400)) is not None:
        return None
    return match.group("what").strip()


def _window(name: str, m: re.Match[str], as_of: date) -> tuple[date, date] | None:
    g = m.groupdict()
    if (
        name == "in_month"
        and g["month"].lower() in _AMBIGUOUS_MONTH
        and not re.match(r"(?:in|during|since)\s", m.group(0), re.I)
    ):
        return None
    try:
        if name in ("day_month_year", "month_day_year"):
            day = date(int(g["year"]), _MONTHS[g["month"].lower()], int(g["day"]))
            return (day, as_of) if _since(m) else (day, day)
        if name == "iso":
            day = date(int(g["iy"]), int(g["im"]), int(g["id"]))
            return (day, as_of) if _since(m) else (day, day)
        if name in ("day_month", "month_day"):
            day = _latest_day(_MONTHS[g["month"].lower()], int(g["day"]), as_of)
            return (day, as_of) if _since(m) else (day, day)
    except ValueError:  # 31 June, 29 Feb of a common year: no such day
        return None
    if name == "month_year":
        start, end = _month(int(g["year"]), _MONTHS[g["month"].lower()])
        return (start, as_of) if _since(m) else (start, end)
    if name == "ago":
        back = _shift(as_of, _count(g["count"]), g["unit"].lower())
        return _unit_span(back, g["unit"].lower())
    if name == "rolling":
        return _shift(as_of, _count(g["count"]), g["unit"].lower()) + timedelta(days=1), as_of
    if name == "rolling_one":
        return _shift(as_of, 1, g["unit"].lower()) + timedelta(days=1), as_of
    if name == "this_unit":
        if g["unit"].lower() == "week":
            return as_of - timedelta(days=6), as_of
        return _unit_span(as_of, g["unit"].lower())
    if name == "last_unit":
        return _unit_span(_shift(as_of, 1, g["unit"].lower()), g["unit"].lower())
    if name == "weekend":
        saturday = as_of - timedelta(days=(as_of.weekday() - 5) % 7)
        if g["which"].lower() == "last" and as_of.weekday() >= 5:
            saturday -= timedelta(days=7)
        return saturday, saturday + timedelta(days=1)
    if name == "today":
        word = g["word"].lower()
        day = as_of - timedelta(days=1) if word == "yesterday" else as_of
        return day, day
    if name == "weekday":
        if g["weekday"].lower() in _AMBIGUOUS_MONTH and not m.group(0).lower().startswith("on"):
            return None
        days_back = (as_of.weekday() - _WEEKDAYS[g["weekday"].lower()]) % 7
        if m.group(0).lower().startswith("last") and days_back == 0:
            days_back = 7
        day = as_of - timedelta(days=days_back)
        return (day, as_of) if _since(m) else (day, day)
    if name == "in_month":
        month = _MONTHS[g["month"].lower()]
        year = as_of.year if month <= as_of.month else as_of.year - 1
        if m.group(0).lower().startswith("last") and month == as_of.month:
            year -= 1
        start, end = _month(year, month)
        return (start, as_of) if m.group(0).lower().startswith("since") else (start, end)
    if name == "year":
        year = int(g["year"])
        start = date(year, 1, 1)
        return (
            (start, as_of)
            if m.group(0).lower().startswith("since")
            else (start, date(year, 12, 31))
        )
    return None


def _since(m: re.Match[str]) -> bool:
    return m.string[: m.start()].rstrip().lower().endswith("since")


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS[word.lower()]


def _month(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _latest_day(month: int, day: int, as_of: date) -> date:
    """The most recent ``day month`` on or before as_of (29 Feb: the latest leap year's)."""
    year = as_of.year
    while True:
        try:
            candidate = date(year, month, day)
        except ValueError:
            if not (month == 2 and day == 29) or year < as_of.year - 8:
                raise
            year -= 1
            continue
        if candidate <= as_of:
            return candidate
        year -= 1


def _shift(day: date, n: int, unit: str) -> date:
    """``day`` moved ``n`` units back; month arithmetic clamps to the month's end."""
    if unit == "day":
        return day - timedelta(days=n)
    if unit == "week":
        return day - timedelta(weeks=n)
    months = n * (12 if unit == "year" else 1)
    total = day.year * 12 + day.month - 1 - months
    year, month = divmod(total, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _unit_span(day: date, unit: str) -> tuple[date, date]:
    """The calendar day, ISO week, month or year that contains ``day``."""
    if unit == "day":
        return day, day
    if unit == "week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    if unit == "month":
        return _month(day.year, day.month)
    return date(day.year, 1, 1), date(day.year, 12, 31)


# Questions about the present state of things: a role, a price, "the latest". General
# grammar (tense and time adverbs), not topic words; the recency weight itself is measured.
_CURRENT = re.compile(
    r"\b(?:latest|now|current(?:ly)?|recent(?:ly)?|newest|still|so far|to date|as of)\b"
    r"|^\W*(?:who|what|which|where|how\s+(?:much|many))\s+(?:is|are|has|have|does|do)\b",
    re.IGNORECASE,
)


def asks_current(question: str) -> bool:
    """True when the question asks about the current state (so newer articles should win)."""
    return bool(_CURRENT.search(question))
