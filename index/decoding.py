"""Decoding shared by every loader: bytes -> text, and raw metadata values -> typed fields.

One place, so that a file, an upload and a fetched page are decoded by the same rules, and a
file that is not text (or a date that is not a date) is treated the same wherever it comes from.
"""

from __future__ import annotations

import codecs
import re
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from pathlib import PurePath, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import charset_normalizer
import yaml
from frontmatter import YAMLHandler

from index.errors import LoadError

# Longest BOMs first: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Multi-byte East Asian codecs. Detection likes to pick one for a mostly-ASCII file with a single
# stray Latin-1 byte (BBC sport/199.txt: 0xA3 '£' came out as cp932 '｣').
_CJK_PREFIXES = (
    "cp932",
    "shift_jis",
    "euc",
    "gb",
    "big5",
    "cp949",
    "cp950",
    "iso2022",
    "hz",
    "johab",
    "cp936",
)

# C0/C1 control characters other than the ones ordinary text contains (\t \n \v \f \r).
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_MAX_CONTROL_RATIO = 0.01
_MAX_CJK_NON_ASCII_RATIO = 0.05

_NEWLINES = re.compile(r"\r\n?")


def decode_text(data: bytes, origin: str, *, declared: str | None = None) -> str:
    """Decode ``data`` to text with "\\n" newlines, or raise LoadError for empty/binary input.

    Order: BOM, then strict UTF-8 (valid non-ASCII UTF-8 is near-certain evidence, and pages
    often declare latin-1 while sending UTF-8), then the ``declared`` charset (HTTP header or
    HTML meta), then charset-normalizer detection.
    """
    if not data.strip():
        raise LoadError(origin, "empty file")
    text = _decode(data, origin, declared)
    if not text.strip():
        raise LoadError(origin, "empty file")
    if _looks_binary(text):
        raise LoadError(origin, "binary file (not text)")
    return _NEWLINES.sub("\n", text)


def _decode(data: bytes, origin: str, declared: str | None) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                reason = f"invalid {encoding} text after its BOM ({exc.reason})"
                raise LoadError(origin, reason) from exc
    if b"\x00" in data:
        # Without a BOM, NUL bytes mean binary (UTF-16 without a BOM is too rare to guess at).
        raise LoadError(origin, "binary file (not text)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if declared:
        try:
            return data.decode(declared)
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown declaration: fall back to detection
    return _detect(data, origin)


def _detect(data: bytes, origin: str) -> str:
    """charset-normalizer's best guess, but never a CJK codec for mostly-ASCII bytes."""
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        raise LoadError(origin, "binary file (not text)")
    non_ascii = sum(1 for byte in data if byte > 0x7F) / len(data)
    if best.encoding.startswith(_CJK_PREFIXES) and non_ascii < _MAX_CJK_NON_ASCII_RATIO:
        single_byte = [m for m in matches if not m.encoding.startswith(_CJK_PREFIXES)]
        if single_byte:
            # Least chaotic, then most coherent: cp1252 wins ties against cp1250 for English.
            best = min(single_byte, key=lambda m: (m.chaos, -m.coherence))
        else:
            return data.decode("cp1252", errors="replace")
    return str(best)


def _looks_binary(text: str) -> bool:
    """More than 1% control characters (or any NUL) means the bytes were not text."""
    if "\x00" in text:
        return True
    return len(_CONTROLS.findall(text)) > _MAX_CONTROL_RATIO * len(text)


def sniff_html_charset(data: bytes) -> str | None:
    """The charset an HTML document declares in its first 2 KB (``<meta charset=...>``), if any."""
    match = re.search(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", data[:2048], re.I)
    return match.group(1).decode("ascii") if match else None


# --- Raw metadata values (front matter, JSON fields, page metadata) -> typed Article fields ---

_DATE_FORMATS = ("%Y/%m/%d", "%d %B %Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y", "%B %d %Y")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s")
_SNIPPET_CHARS = 80


def parse_date(value: object) -> date | None:
    """A date from a date, datetime or date-like string; anything else (e.g. "yesterday") is None.

    Unparsable dates are dropped rather than reported: an article without a date is still useful.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    for parse in (_iso_date, _iso_datetime, _formatted_date, _rfc2822_date):
        try:
            return parse(text)
        except (ValueError, TypeError, IndexError, OverflowError):
            continue
    return None


# A news dateline that carries a year: "WASHINGTON, Oct. 24, 2025 (Reuters) -",
# "LONDON, 24 October 2025 -", "Oct 24, 2025 —". A yearless one ("Oct 24 (Reuters)") names no
# date by itself and is left alone: guessing the year would date an old story as new.
_DATELINE = re.compile(
    r"\A\s*(?:[A-Z][A-Za-z.'-]*(?:[ -][A-Z][A-Za-z.'-]*){0,3},\s*)?"
    r"(?P<date>(?:[A-Z][a-z]{2,8}\.?\s+\d{1,2},?\s+|\d{1,2}\s+[A-Z][a-z]{2,8}\.?,?\s+)\d{4})"
    r"\s*(?:\([^)\n]{1,40}\)\s*)?[-\u2013\u2014:]"
)


def dateline_date(text: str) -> date | None:
    """The date of a dateline that opens ``text``, or None (see ``_DATELINE``)."""
    match = _DATELINE.match(text[:160])
    if not match:
        return None
    found = re.sub(r"\s+", " ", match.group("date").replace(".", "")).replace(" ,", ",")
    for variant in (found, found.replace(",", ""), found.replace("Sept", "Sep")):
        day = parse_date(variant)
        if day is not None:
            return day
    return None


def _iso_date(text: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(text)
    return date.fromisoformat(text)


def _iso_datetime(text: str) -> date:
    return datetime.fromisoformat(text).date()


def _formatted_date(text: str) -> date:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(text)


def _rfc2822_date(text: str) -> date:
    return parsedate_to_datetime(text).date()


def coerce_str(value: object) -> str | None:
    """A trimmed string from a scalar (``title: 5`` -> "5"); ``{"name": ...}`` gives the name."""
    if isinstance(value, dict):
        value = value.get("name")
    if value is None or isinstance(value, list | dict):
        return None
    text = str(value).strip()
    return text or None


def coerce_author(value: object) -> str | None:
    """One author string; a list of authors (strings or ``{"name": ...}``) is joined with ", "."""
    if isinstance(value, list):
        names = [name for name in (coerce_str(item) for item in value) if name]
        return ", ".join(names) or None
    return coerce_str(value)


def title_from_name(origin: str) -> str:
    """A title from a file name or URL: ``us-china_talks.txt`` -> "Us china talks"."""
    parts = urlsplit(origin) if "://" in origin else None
    if parts is not None:
        stem = PurePosixPath(parts.path).stem or (parts.hostname or origin)
    else:
        stem = PurePath(origin.split("#", 1)[0]).stem
    words = " ".join(re.sub(r"[-_]+", " ", stem).split())
    return words[:1].upper() + words[1:] if words else "Untitled"


def snippet_title(text: str) -> str:
    """A stand-in title: the text's first sentence, cut to about 80 characters at a word."""
    first = text.strip().split("\n", 1)[0]
    sentence = _SENTENCE_END.split(first, 1)[0].strip()
    if len(sentence) <= _SNIPPET_CHARS:
        return sentence or "Untitled"
    cut = sentence[:_SNIPPET_CHARS].rsplit(" ", 1)[0].rstrip(",;:-– ")
    return f"{cut or sentence[:_SNIPPET_CHARS]}…"


def split_front_matter(text: str, origin: str) -> tuple[dict[str, Any], str]:
    """YAML front matter as a dict, and the body; malformed YAML is a LoadError, not a guess."""
    handler = YAMLHandler()
    if not handler.detect(text):
        return {}, text
    try:
        raw, body = handler.split(text)
    except ValueError:  # an opening "---" with no closing one: a rule, not front matter
        return {}, text
    try:
        meta = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise LoadError(origin, f"malformed YAML front matter: {_yaml_reason(exc)}") from exc
    except RecursionError as exc:
        raise LoadError(origin, "malformed YAML front matter: nested too deeply") from exc
    if meta is None:
        return {}, body
    if not isinstance(meta, dict):
        kind = type(meta).__name__
        raise LoadError(origin, f"front matter must be key: value pairs, not a {kind}")
    return meta, body


def _yaml_reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return f"{exc.problem}{where}"
    return str(exc).strip().split("\n", 1)[0]
