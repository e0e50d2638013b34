"""The UI's event logic as plain functions: asking, uploading, listing. No Gradio import.

Each handler takes the public API functions as parameters (defaulting to ``assistant.api``),
so unit tests drive them with fakes and the Gradio layer in ``ui.app`` stays a thin binding.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePath
from typing import Any

from assistant.errors import AssistantError, LoadError
from assistant.settings import Settings
from assistant.types import Answer
from index.fetch import Page, fetch_url, prefetched
from index.loaders import SUPPORTED_SUFFIXES
from ui.messages import display_name, redact, user_message
from ui.render import Turn, chat_messages, safe_url, sources_html, sync_summary_html

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
StreamFn = Callable[..., Iterator["str | Answer"]]
ARTICLE_HEADERS = ["Title", "Source", "Published", "Chunks", "File or URL"]
MODE_EXTRACTIVE = "extractive"
MODE_LLM = "llm"
UPLOAD_HASH_CHARS = 16
# How the JSON(L) loader labels a bad record inside a file that otherwise loaded.
_RECORD = re.compile(r"(?:line|record) (\d+): (.*)", re.DOTALL)


class BadInputError(AssistantError):
    """Something typed into the UI that cannot be used (a malformed date, a non-http URL)."""


# --- chat ------------------------------------------------------------------------------------
@dataclass
class ChatOptions:
    """The answer settings shown under the chat."""

    k: int | None = None
    mode: str = MODE_EXTRACTIVE
    sources: list[str] = field(default_factory=list)
    published_after: str = ""
    published_before: str = ""
    as_of: str = ""  # answer as on this day (empty: today); nothing later is used


def parse_date(text: str | None, label: str) -> date | None:
    """``YYYY-MM-DD`` (or empty: no limit), with a message a person can act on."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise BadInputError(f"{label}: '{text}' is not a date; use YYYY-MM-DD") from None


def llm_arg(mode: str, settings: Settings) -> str | None:
    """The ``llm=`` argument of ``stream_answer``: "" forces extractive, None keeps settings.

    Passing "" only when an LLM is configured keeps the settings (and the cached index) the
    same in the common case.
    """
    if mode == MODE_EXTRACTIVE and settings.llm:
        return ""
    return None


def mode_choices(settings: Settings) -> list[tuple[str, str]]:
    choices = [("Extractive (quotes the articles, offline)", MODE_EXTRACTIVE)]
    if settings.llm:
        choices.append((f"LLM: {settings.llm}", MODE_LLM))
    return choices


def api_history(turns: Sequence[Turn]) -> list[tuple[str, str]]:
    """(question, answer text) pairs of the finished turns, for follow-up questions."""
    return [(t.question, t.answer.text) for t in turns if t.answer is not None]


# (chat messages, sources panel, turns); panel and turns are None when unchanged (while text
# streams in only the last message changes, so nothing else is rebuilt or sent).
ChatUpdate = tuple[list[dict[str, str]], str | None, list[Turn] | None]


def ask(
    question: str,
    turns: Sequence[Turn],
    options: ChatOptions,
    settings: Settings,
    stream: StreamFn | None = None,
    *,
    refresh_s: float = 0.0,
) -> Iterator[ChatUpdate]:
    """Stream one answer into the conversation: yields (chat messages, sources panel, turns).

    The chat shows the streamed deltas as they come; the final ``Answer`` replaces them (its
    text may differ from the deltas) and fills the sources panel. The first and the last
    update carry everything; those in between carry the messages only, at most one per
    ``refresh_s`` (the first fragment at once): the browser's chat re-renders every message
    of the conversation on each update, so per-token updates of a long chat swamp it.
    """
    if stream is None:
        from assistant.api import stream_answer

        stream = stream_answer
    turns = list(turns)
    question = (question or "").strip()
    if not question:
        yield chat_messages(turns), sources_html(turns), turns
        return
    history = api_history(turns)
    turn = Turn(question)
    turns.append(turn)
    yield chat_messages(turns), sources_html(turns), turns
    try:
        after = parse_date(options.published_after, "Published after")
        before = parse_date(options.published_before, "Published before")
        as_of = parse_date(options.as_of, "As of")
        events = stream(
            question,
            history,
            settings=settings,
            k=options.k or None,
            llm=llm_arg(options.mode, settings),
            sources=options.sources or None,
            published_after=after,
            published_before=before,
            as_of=as_of,
        )
        shown = float("-inf")
        for event in events:
            if isinstance(event, Answer):
                turn.answer = event
            else:
                turn.partial += str(event)
                if time.monotonic() - shown >= refresh_s:
                    shown = time.monotonic()
                    yield chat_messages(turns), None, None
    except Exception as exc:  # a bug must not leave the chat hanging; the log has the trace
        turn.error = user_message(exc, settings.home)
    if turn.answer is None and turn.error is None:
        turn.error = "no answer was produced"
    yield chat_messages(turns), sources_html(turns), turns


# --- uploads ---------------------------------------------------------------------------------
def supported_suffixes() -> list[str]:
    return sorted(SUPPORTED_SUFFIXES)


def safe_filename(name: str) -> str:
    """A plain file name from an uploaded name: no directories, no hidden or odd characters."""
    base = PurePath(name.replace("\\", "/")).name
    suffix = PurePath(base).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9._ -]+", "_", base[: len(base) - len(suffix)]).strip(" ._")
    return f"{(stem or 'upload')[:100]}{suffix}"


def check_upload(name: str, size: int, max_mb: float) -> str | None:
    """Why an upload is refused before indexing (type or size), or None when it may go on."""
    suffix = PurePath(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        what = f"'{suffix}'" if suffix else "(no suffix)"
        return f"unsupported file type {what}; supported: {', '.join(supported_suffixes())}"
    if size > max_mb * 1024 * 1024:
        return f"{size / 1024 / 1024:.1f} MB is larger than the {max_mb:g} MB upload limit"
    if size == 0:
        return "the file is empty"
    return None


@dataclass
class StoredUploads:
    """Uploads copied into the uploads folder, and which of them this request created."""

    stored: list[Path] = field(default_factory=list)
    created: set[Path] = field(default_factory=set)
    refused: list[tuple[str, str]] = field(default_factory=list)


def upload_target(upload_dir: Path, name: str, digest: str) -> Path:
    """``uploads/<content hash>/<name>``: two users' ``story.txt`` differ in content, so they
    land in different folders and neither replaces the other; the same bytes uploaded twice
    are one file (nothing to re-index). The file keeps its own name for display."""
    return upload_dir / digest[:UPLOAD_HASH_CHARS] / safe_filename(name)


def store_uploads(paths: Sequence[str | Path], upload_dir: Path, max_mb: float) -> StoredUploads:
    """Copy acceptable uploads into ``upload_dir`` under a folder named by their content.

    Gradio keeps the original name as the temp file's name. A file is written under a hidden
    temporary name and renamed into place, so a concurrent sync never reads half of it.
    """
    out = StoredUploads()
    for raw in paths:
        path = Path(raw)
        name = path.name
        try:
            size = path.stat().st_size
            reason = check_upload(name, size, max_mb)
            if reason:
                out.refused.append((name, reason))
                continue
            data = path.read_bytes()
        except OSError as exc:
            out.refused.append((name, f"cannot read the upload: {exc.strerror or 'I/O error'}"))
            continue
        target = upload_target(upload_dir, name, hashlib.sha256(data).hexdigest())
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.parent / f".{target.name}.{secrets.token_hex(4)}.partial"
            partial.write_bytes(data)
            partial.replace(target)
            out.created.add(target)
        if target not in out.stored:
            out.stored.append(target)
    return out


def check_url(url: str) -> str | None:
    """Why a pasted URL cannot be fetched, or None."""
    if safe_url(url) is None:
        return "not an http(s) URL"
    return None


def add_articles(
    files: Sequence[str | Path] | None,
    url: str | None,
    settings: Settings,
    progress: Progress | None = None,
    sync: Callable[..., Any] | None = None,
    *,
    fetch: Callable[..., Page] = fetch_url,
    indexed_files: Callable[[Settings], set[str]] | None = None,
    wait: float = 60.0,
) -> str:
    """Store uploads, fetch the URL, sync both; return the summary HTML.

    The URL is fetched before the sync takes the index lock, so a slow web site holds up only
    this request, and under the same public-address rules as the CLI. An upload that yields no
    article at all is removed again (it would be retried and reported on every later sync);
    one whose bad records are reported but whose good records were indexed is kept.
    """
    if sync is None:
        from assistant.api import sync_articles

        sync = sync_articles
    uploads = store_uploads(files or [], settings.home / "uploads", settings.max_upload_mb)
    refused = list(uploads.refused)
    sources = [str(p) for p in uploads.stored]
    pages: dict[str, Page] = {}
    url = (url or "").strip()
    if url:
        problem = check_url(url)
        if problem is None:
            try:
                pages[url] = fetch(
                    url,
                    max_bytes=int(settings.max_file_mb * 1024 * 1024),
                    timeout=settings.url_timeout,
                    allow_private=settings.allow_private_urls,
                )
                sources.append(url)
            except LoadError as exc:
                problem = exc.reason
        if problem:
            refused.append((url, problem))
    if not sources:
        if not refused:
            refused.append(("nothing to add", "choose files or paste a URL first"))
        return sync_summary_html(None, refused)
    try:
        with prefetched(pages):
            report = sync(sources, settings=settings, progress=progress, wait=wait)
    except Exception as exc:  # nothing was indexed: take the new uploads back out
        _remove(uploads.created)
        return sync_summary_html(None, refused, error=user_message(exc, settings.home))
    whole_file = _failed_whole(report, uploads, settings, indexed_files)
    _remove(whole_file & uploads.created)
    problems = [*refused, *_failures(report, settings.home, kept=set(uploads.stored) - whole_file)]
    return sync_summary_html(report, problems, home=settings.home)


def _failed_whole(
    report: Any,
    uploads: StoredUploads,
    settings: Settings,
    indexed_files: Callable[[Settings], set[str]] | None,
) -> set[Path]:
    """The stored uploads that failed and have no article in the index (a bad record in an
    otherwise good JSONL file is also reported under the file's path: that file stays)."""
    failed = {Path(f.path) for f in report.failed} & set(uploads.stored)
    if not failed:
        return set()
    if indexed_files is None:
        indexed_files = _indexed_files
    indexed = indexed_files(settings)
    return {p for p in failed if str(p) not in indexed}


def _indexed_files(settings: Settings) -> set[str]:
    from assistant.api import list_articles

    return {a.source_file for a in list_articles(settings)}


def _failures(report: Any, home: Path, kept: set[Path]) -> list[tuple[str, str]]:
    """(name, reason) for each failed source; a bad record of a kept file as ``name#line``."""
    out = []
    for failed in report.failed:
        name, reason = display_name(failed.path), failed.error
        record = _RECORD.match(reason)
        if Path(failed.path) in kept and record:
            name, reason = f"{name}#{record.group(1)}", record.group(2)
        out.append((name, redact(reason, home)))
    return out


def _remove(paths: set[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # its content-hash folder, if nothing else is there
            path.parent.rmdir()


# --- what is indexed -------------------------------------------------------------------------
def article_rows(articles: Sequence[Any], query: str = "") -> list[list[Any]]:
    """Table rows (see ``ARTICLE_HEADERS``) of the articles matching every word of ``query``."""
    words = (query or "").lower().split()
    rows = []
    for a in articles:
        row = [a.title, a.source or "", a.published or "", a.n_chunks, display_name(a.origin)]
        haystack = " ".join(str(v) for v in row).lower()
        if all(w in haystack for w in words):
            rows.append(row)
    rows.sort(key=lambda r: (str(r[2]), str(r[0])), reverse=True)
    return rows


def source_choices(articles: Sequence[Any]) -> list[str]:
    """The distinct source names (publications) to filter on."""
    return sorted({a.source for a in articles if a.source})
