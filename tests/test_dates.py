"""Relative dates in questions resolve against the as-of date into the documented windows.

Week convention: "this week" is the seven days ending on as_of (measured better on news than
the ISO week, see assistant/dates.py); "last week" and "N weeks ago" are ISO weeks (Monday to
Sunday). A bare weekday or month is the most recent one on or before as_of; no window ends
after as_of.
"""

from __future__ import annotations

from datetime import date

import pytest

from assistant.dates import asks_current, event_since, resolve, span_label

THU = date(2022, 10, 27)  # a Thursday

TABLE = [
    # (text, as_of, start, end)
    ("Who became prime minister this week?", THU, date(2022, 10, 21), THU),
    ("What happened yesterday?", THU, date(2022, 10, 26), date(2022, 10, 26)),
    ("What happened today?", THU, THU, THU),
    ("Who resigned last week?", THU, date(2022, 10, 17), date(2022, 10, 23)),
    ("in the past week", THU, date(2022, 10, 21), THU),
    ("over the last 3 days", THU, date(2022, 10, 25), THU),
    ("two weeks ago", THU, date(2022, 10, 10), date(2022, 10, 16)),
    ("What did he say on Friday?", THU, date(2022, 10, 21), date(2022, 10, 21)),
    ("on Thursday", THU, THU, THU),
    ("last Thursday", THU, date(2022, 10, 20), date(2022, 10, 20)),
    ("this weekend", THU, date(2022, 10, 22), date(2022, 10, 23)),
    ("What rose last month?", THU, date(2022, 9, 1), date(2022, 9, 30)),
    ("this month", THU, date(2022, 10, 1), THU),
    ("in October", THU, date(2022, 10, 1), THU),
    ("in November", THU, date(2021, 11, 1), date(2021, 11, 30)),
    ("in 2022", THU, date(2022, 1, 1), THU),
    ("in 2021", THU, date(2021, 1, 1), date(2021, 12, 31)),
    ("since 2020", THU, date(2020, 1, 1), THU),
    ("since March", THU, date(2022, 3, 1), THU),
    ("in May", THU, date(2022, 5, 1), date(2022, 5, 31)),
    ("January 2020", THU, date(2020, 1, 1), date(2020, 1, 31)),
    ("on Oct. 24, 2022", THU, date(2022, 10, 24), date(2022, 10, 24)),
    ("on 24 October", THU, date(2022, 10, 24), date(2022, 10, 24)),
    ("on 2022-10-03", THU, date(2022, 10, 3), date(2022, 10, 3)),
    # year ends
    ("yesterday", date(2025, 1, 1), date(2024, 12, 31), date(2024, 12, 31)),
    ("last month", date(2025, 1, 15), date(2024, 12, 1), date(2024, 12, 31)),
    ("last year", date(2025, 1, 1), date(2024, 1, 1), date(2024, 12, 31)),
    ("in December", date(2025, 1, 2), date(2024, 12, 1), date(2024, 12, 31)),
    # week boundaries: a week that spans the new year; as_of on a Monday and on a Sunday
    ("this week", date(2025, 1, 1), date(2024, 12, 26), date(2025, 1, 1)),
    ("last week", date(2025, 1, 1), date(2024, 12, 23), date(2024, 12, 29)),
    ("this week", date(2025, 10, 27), date(2025, 10, 21), date(2025, 10, 27)),
    ("last week", date(2025, 10, 27), date(2025, 10, 20), date(2025, 10, 26)),
    ("last week", date(2025, 11, 2), date(2025, 10, 20), date(2025, 10, 26)),
    ("this week", date(2025, 11, 2), date(2025, 10, 27), date(2025, 11, 2)),
    # month ends and leap years
    ("last month", date(2024, 3, 31), date(2024, 2, 1), date(2024, 2, 29)),
    ("last month", date(2023, 3, 31), date(2023, 2, 1), date(2023, 2, 28)),
    ("a month ago", date(2024, 3, 31), date(2024, 2, 1), date(2024, 2, 29)),
    ("one year ago", date(2024, 2, 29), date(2023, 1, 1), date(2023, 12, 31)),
    ("on 29 February", date(2025, 3, 1), date(2024, 2, 29), date(2024, 2, 29)),
    ("yesterday", date(2024, 3, 1), date(2024, 2, 29), date(2024, 2, 29)),
    ("in the past month", date(2024, 3, 31), date(2024, 3, 1), date(2024, 3, 31)),
]


@pytest.mark.parametrize(("text", "as_of", "start", "end"), TABLE)
def test_resolves_relative_dates(text: str, as_of: date, start: date, end: date) -> None:
    window = resolve(text, as_of)
    assert window is not None, text
    assert (window.start, window.end) == (start, end), text


@pytest.mark.parametrize(
    "text",
    [
        "Who may win the election?",  # "may" is a verb here
        "Which company did Bessent threaten?",
        "How many people died?",
        "on 31 June",  # no such day
    ],
)
def test_no_date_no_window(text: str) -> None:
    assert resolve(text, THU) is None


def test_event_reference_is_reported_unresolved() -> None:
    assert resolve("What has changed since the summit?", THU) is None
    assert event_since("What has changed since the summit?") == "the summit"
    assert event_since("since March") is None


def test_window_labels() -> None:
    assert span_label(date(2025, 10, 24), date(2025, 10, 30)) == "24-30 Oct 2025"
    assert span_label(date(2025, 9, 30), date(2025, 10, 2)) == "30 Sep - 2 Oct 2025"
    assert span_label(date(2025, 9, 5), date(2025, 9, 5)) == "5 Sep 2025"
    assert span_label(date(2024, 12, 30), date(2025, 1, 1)) == "30 Dec 2024 - 1 Jan 2025"


@pytest.mark.parametrize(
    ("question", "current"),
    [
        ("Who is the UK prime minister?", True),
        ("What is the latest death toll?", True),
        ("Who currently leads the party?", True),
        ("Which show was green lit for a new season?", False),
        ("Who won the 2010 election?", False),
    ],
)
def test_current_state_questions(question: str, current: bool) -> None:
    assert asks_current(question) is current
