"""The citation-marker grammar, defined once for the answerers, the checks and the UI.

An answer's text cites passage n with ``[n]``. Models also write groups (``[1, 2]``,
``[1; 4]``, ``[2-4]``, ``[2–4]``); :func:`assistant.llm.check_markers` rewrites those into
adjacent canonical markers (``[1][2]``), so renderers only ever need :data:`CANONICAL`.
ASCII digits only: "[٣]" is not a marker anyone renders.
"""

from __future__ import annotations

import re

#: One bracket group of numbers, in any form a model writes; adjacent groups are separate matches.
GROUP = re.compile(r"\[\s*([0-9]+(?:\s*[,;–-]\s*[0-9]+)*)\s*\]")
#: The canonical marker left in a checked answer: one number in brackets.
CANONICAL = re.compile(r"\[([0-9]{1,3})\]")
_RANGE = re.compile(r"([0-9]+)\s*[–-]\s*([0-9]+)")
_MAX_RANGE = 50


def group_numbers(group: str) -> list[int]:
    """Every n a bracket group's inside names. A range names each n in it; a huge or backwards
    one ("1-99999999") names only its ends, so it cannot build a giant list."""
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group.strip()):
        span = _RANGE.fullmatch(part)
        if span is None:
            out.extend(int(x) for x in re.findall(r"[0-9]+", part))
            continue
        lo, hi = int(span[1]), int(span[2])
        out.extend(range(lo, hi + 1) if 0 <= hi - lo <= _MAX_RANGE else (lo, hi))
    return out


def cited_numbers(text: str) -> list[int]:
    """The passage numbers ``text`` cites, in order of first appearance."""
    seen: dict[int, None] = {}
    for match in GROUP.finditer(text):
        for n in group_numbers(match[1]):
            seen.setdefault(n, None)
    return list(seen)


def defang(text: str) -> str:
    """``text`` with every marker-like group turned into parentheses ("[7]" -> "(7)"), for
    article words quoted inside an answer, so they never read as citations."""
    return GROUP.sub(r"(\1)", text)
