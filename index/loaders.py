"""Turn article files and web pages into ``Article`` records, one loader per format.

Every failure a user can cause (a binary file, broken JSON, an HTML page with no article) is a
``LoadError`` naming the file and the reason, so a sync can report it and carry on; problems
with single records inside a file that otherwise loaded are returned in ``LoadResult.problems``.
Texts are kept exactly as written (only trimmed), because citations quote them by offsets.
"""

from __future__ import annotations

import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import trafilatura
from trafilatura.settings import Document

from index.decoding import (
    coerce_author,
    coerce_str,
    dateline_date,
    decode_text,
    parse_date,
    sniff_html_charset,
    snippet_title,
    split_front_matter,
    title_from_name,
)
from index.errors import LoadError
from index.fetch import fetch_url
from index.records import Article

__all__ = [
    "SUPPORTED_SUFFIXES",
    "HtmlLoader",
    "JsonLinesLoader",
    "JsonLoader",
    "LoadResult",
    "Loader",
    "MarkdownLoader",
    "RecordProblem",
    "TextLoader",
    "guarded_stream",
    "iter_article_files",
    "load_file",
    "load_url",
    "loader_for",
]

NOT_A_FILE = "not a regular file (a pipe, socket or device); only files are read"
_TITLE_MAX = 150  # a longer first line is a paragraph, not a headline
_SHORT_TITLE = 60  # a headline this short may end with a period ("Ministers resign.")
_TERMINAL = tuple(".!?:;,…")
_CLOSERS = "\"'”’)]»"
_TEXT_FIELDS = ("text", "content", "body")
_DATE_FIELDS = ("published", "date", "publish_date")


@dataclass
class LoadResult:
    """The articles of one source, plus what went wrong with single records inside it."""

    articles: list[Article]
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RecordProblem:
    """One record of a multi-article file that could not be loaded (``line 3: invalid JSON``)."""

    reason: str


Record = Article | RecordProblem


class Loader(ABC):
    """Parses the bytes of one file format; ``origin`` names the source in errors and records."""

    suffixes: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def load(self, data: bytes, origin: str) -> LoadResult:
        """Return the articles in ``data`` or raise ``LoadError(origin, reason)``."""

    def stream(self, data: bytes, origin: str) -> Iterator[Record]:
        """The file's articles one at a time. Formats holding thousands of articles override
        this so a sync can embed and commit the first ones before the last are parsed."""
        result = self.load(data, origin)
        yield from (RecordProblem(p) for p in result.problems)
        yield from result.articles

    def estimate(self, data: bytes) -> int:
        """About how many articles ``data`` holds, without parsing it (for progress only)."""
        return 1


class TextLoader(Loader):
    """Plain text; a headline-like first line (as in news dumps) becomes the title."""

    suffixes = (".txt",)

    def load(self, data: bytes, origin: str) -> LoadResult:
        return LoadResult([self.parse(decode_text(data, origin), origin)])

    def parse(
        self, text: str, origin: str, *, url: str | None = None, source: str | None = None
    ) -> Article:
        """Split off a headline if there is one; the text stays a substring of ``text``."""
        body = text.lstrip("\n")
        first, sep, rest = body.partition("\n")
        headline = first.strip()
        if sep and _is_headline(headline, rest) and rest.strip():
            return Article(title=headline, text=rest.strip(), origin=origin, url=url, source=source)
        return Article(
            title=title_from_name(origin), text=text.strip(), origin=origin, url=url, source=source
        )


def _is_headline(line: str, rest: str) -> bool:
    """Short, not a sentence, and set apart by a blank line or by a missing full stop."""
    if not line or len(line) > _TITLE_MAX:
        return False
    bare = line.rstrip(_CLOSERS)
    if bare.endswith(".") and len(line) > _SHORT_TITLE:
        return False
    followed_by_blank = rest.split("\n", 1)[0].strip() == ""
    return followed_by_blank or not bare.endswith(_TERMINAL)


class MarkdownLoader(Loader):
    """Markdown with optional YAML front matter (title, source, published/date, url, author)."""

    suffixes = (".md", ".markdown")
    _H1 = re.compile(r"#[ \t]+(?P<title>.+?)(?:[ \t]+#+)?[ \t]*")
    _SETEXT = re.compile(r"=+[ \t]*")

    def load(self, data: bytes, origin: str) -> LoadResult:
        text = decode_text(data, origin)
        meta, body = split_front_matter(text, origin)
        title = coerce_str(meta.get("title"))
        heading, rest = self._leading_heading(body.strip())
        if heading and (title is None or heading.casefold() == title.casefold()):
            title, body = heading, rest
        body = body.strip()
        if not body:
            raise LoadError(origin, "no article text (only front matter or a title)")
        published = parse_date(meta.get("published") or meta.get("date"))
        article = Article(
            title=title or title_from_name(origin),
            text=body,
            origin=origin,
            source=coerce_str(meta.get("source")),
            published=published,
            url=_url(meta.get("url")),
            author=coerce_author(meta.get("author") or meta.get("authors")),
        )
        return LoadResult([article])

    def _leading_heading(self, body: str) -> tuple[str | None, str]:
        """An ATX ``# Title`` or setext ``Title\\n===`` first line, and the text after it."""
        first, _, rest = body.partition("\n")
        if match := self._H1.fullmatch(first):
            return match.group("title").strip(), rest
        second, _, after = rest.partition("\n")
        if first.strip() and self._SETEXT.fullmatch(second):
            return first.strip(), after
        return None, body


class HtmlLoader(Loader):
    """Web pages: trafilatura keeps the main text and drops navigation, scripts and images."""

    suffixes = (".html", ".htm")

    def load(self, data: bytes, origin: str) -> LoadResult:
        text = decode_text(data, origin, declared=sniff_html_charset(data))
        return LoadResult([self.parse(text, origin)])

    def parse(
        self, html: str, origin: str, *, url: str | None = None, source: str | None = None
    ) -> Article:
        """Extract one article; ``source`` is the fallback when the page names no site."""
        try:
            doc = trafilatura.bare_extraction(
                html, url=url, with_metadata=True, include_comments=False, include_images=False
            )
        except RecursionError as exc:
            raise LoadError(origin, "HTML nested too deeply to parse") from exc
        text = (doc.text or "").strip() if isinstance(doc, Document) else ""
        if not isinstance(doc, Document) or not text:
            raise LoadError(origin, "no article text found in HTML")
        title = coerce_str(doc.title)
        first, _, rest = text.partition("\n")
        if title and first.strip() == title and rest.strip():
            text = rest.strip()  # trafilatura repeats the <h1> as the first line
        return Article(
            title=title or title_from_name(url or origin),
            text=text,
            origin=origin,
            source=coerce_str(doc.sitename) or source,
            published=parse_date(doc.date),
            url=url or coerce_str(doc.url),
            author=coerce_str(doc.author),
        )


class JsonLoader(Loader):
    """One JSON object, or a list of them (origin ``path#n`` per record)."""

    suffixes = (".json",)

    def load(self, data: bytes, origin: str) -> LoadResult:
        return _gather(self.stream(data, origin))

    def stream(self, data: bytes, origin: str) -> Iterator[Record]:
        try:
            value = json.loads(decode_text(data, origin))
        except json.JSONDecodeError as exc:
            raise LoadError(origin, f"invalid JSON: {exc}") from exc
        except RecursionError as exc:
            raise LoadError(origin, "invalid JSON: nested too deeply") from exc
        if isinstance(value, dict):
            article, problem = _record_article(value, origin)
            if article is None:
                raise LoadError(origin, problem or "no article")
            yield article
            return
        if not isinstance(value, list):
            kind = _kind(value)
            raise LoadError(origin, f"expected a JSON object or a list of objects, not {kind}")
        records = ((n, f"record {n}", item) for n, item in enumerate(value, start=1))
        yield from _records(records, origin)


class JsonLinesLoader(Loader):
    """One JSON object per line; a broken line is a problem, not a failed file."""

    suffixes = (".jsonl",)

    def load(self, data: bytes, origin: str) -> LoadResult:
        return _gather(self.stream(data, origin))

    def stream(self, data: bytes, origin: str) -> Iterator[Record]:
        yield from _records(self._lines(decode_text(data, origin)), origin)

    def estimate(self, data: bytes) -> int:
        return max(1, data.count(b"\n") + (not data.endswith(b"\n")))

    @staticmethod
    def _lines(text: str) -> Iterator[tuple[int, str, Any]]:
        """Parsed lazily, line by line: only one record's objects exist at a time."""
        start, n = 0, 0
        while start <= len(text):
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
            line, start, n = text[start:end], end + 1, n + 1
            if not line.strip():
                continue
            try:
                yield n, f"line {n}", json.loads(line)
            except json.JSONDecodeError as exc:
                yield n, f"line {n}", _Invalid(f"invalid JSON: {exc}")
            except RecursionError:
                yield n, f"line {n}", _Invalid("invalid JSON: nested too deeply")


@dataclass(frozen=True)
class _Invalid:
    reason: str


def _records(records: Iterator[tuple[int, str, Any]], origin: str) -> Iterator[Record]:
    """Every record that can be loaded, and the problem of each that cannot; the file fails
    (at its end) only if none can."""
    loaded = 0
    first: str | None = None
    for n, label, value in records:
        if isinstance(value, _Invalid):
            problem: str | None = value.reason
        else:
            article, problem = _record_article(value, f"{origin}#{n}")
            if article is not None:
                loaded += 1
                yield article
        if problem:
            first = first or f"{label}: {problem}"
            yield RecordProblem(f"{label}: {problem}")
    if not loaded:
        raise LoadError(origin, first or "no records found")


def _gather(records: Iterable[Record]) -> LoadResult:
    result = LoadResult([])
    for record in records:
        if isinstance(record, RecordProblem):
            result.problems.append(record.reason)
        else:
            result.articles.append(record)
    return result


def _record_article(value: Any, origin: str) -> tuple[Article | None, str | None]:
    """An Article from one JSON record, or the reason it has none. Bad optional fields are coerced
    or dropped rather than reported: the text is what matters."""
    if not isinstance(value, dict):
        return None, f"not a JSON object ({_kind(value)})"
    raw = next((value[k] for k in _TEXT_FIELDS if k in value), None)
    if raw is None:
        return None, "no text field (expected text, content or body)"
    if not isinstance(raw, str):
        return None, f"text is {_kind(raw)}, not a string"
    text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return None, "empty text"
    date_value = next((value[k] for k in _DATE_FIELDS if value.get(k) is not None), None)
    article = Article(
        title=coerce_str(value.get("title")) or snippet_title(text),
        text=text,
        origin=origin,
        source=coerce_str(value.get("source")),
        published=parse_date(date_value),
        url=_url(value.get("url")),
        author=coerce_author(value.get("author") or value.get("authors")),
    )
    return article, None


def _url(value: Any) -> str | None:
    """An http(s) URL only: ``url: 17`` is a mistake and ``javascript:`` a trap, not links."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if value.lower().startswith(("http://", "https://")) else None


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


_LOADERS: dict[str, Loader] = {
    suffix: loader
    for loader in (TextLoader(), MarkdownLoader(), HtmlLoader(), JsonLoader(), JsonLinesLoader())
    for suffix in loader.suffixes
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_LOADERS)


def loader_for(name: str) -> Loader:
    """The loader for a file name by its suffix (case-insensitive)."""
    suffix = Path(name).suffix.lower()
    try:
        return _LOADERS[suffix]
    except KeyError:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        what = f"'{suffix}'" if suffix else "(no suffix)"
        raise LoadError(name, f"unsupported file type {what}; supported: {supported}") from None


def load_file(path: Path, *, max_bytes: int) -> LoadResult:
    """Load one file, refusing it (before reading) if it is over ``max_bytes``."""
    from index.sources import read_source  # reading bytes is that module's job, parsing ours

    return _gather(read_source(path, max_bytes=max_bytes).stream())


def _dated(record: Record) -> Record:
    """An article with no date from metadata takes the one in its opening dateline, if any."""
    if isinstance(record, Article) and record.published is None:
        return replace(record, published=dateline_date(record.text))
    return record


def guarded_stream(origin: str, records: Iterator[Record]) -> Iterator[Record]:
    """One malformed source must fail alone: parser crashes become a LoadError for it."""
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except LoadError:
            raise
        except RecursionError as exc:
            raise LoadError(origin, "nested too deeply to parse") from exc
        except Exception as exc:
            raise LoadError(origin, f"could not parse ({type(exc).__name__}: {exc})") from exc
        yield _dated(record)


def load_url(
    url: str, *, max_bytes: int, timeout: float = 20.0, allow_private: bool = False
) -> LoadResult:
    """Fetch an http(s) page and load it as an article; ``origin`` and ``url`` are the URL."""
    page = fetch_url(url, max_bytes=max_bytes, timeout=timeout, allow_private=allow_private)
    host = urlsplit(url).hostname

    def parse() -> Iterator[Record]:
        text = decode_text(page.data, url, declared=page.charset or sniff_html_charset(page.data))
        loader = TextLoader() if page.content_type == "text/plain" else HtmlLoader()
        yield loader.parse(text, url, url=url, source=host)

    return _gather(guarded_stream(url, parse()))


def iter_article_files(root: Path) -> Iterator[Path]:
    """Supported files under ``root``, sorted; hidden names skipped, symlink loops cut.

    Symlinked folders are followed once (by real path), so a loop cannot recurse forever.
    Broken symlinks are yielded so ``load_file`` reports them instead of them vanishing.
    A missing or unreadable folder raises: silently yielding nothing would make a sync
    delete every indexed article from it.
    """
    if root.is_file():
        if root.suffix.lower() in SUPPORTED_SUFFIXES:
            yield root
        return
    if not root.is_dir():
        raise LoadError(str(root), "folder not found")

    def fail(exc: OSError) -> None:
        raise LoadError(str(exc.filename or root), f"cannot read folder: {exc.strerror or exc}")

    seen = {os.path.realpath(root)}
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=fail, followlinks=True):
        keep = []
        for name in sorted(dirnames):
            real = os.path.realpath(Path(dirpath, name))
            if not name.startswith(".") and real not in seen:
                seen.add(real)
                keep.append(name)
        dirnames[:] = keep
        found.extend(
            Path(dirpath, name)
            for name in filenames
            if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_SUFFIXES
        )
    yield from sorted(found)
