"""The UI's event logic as plain functions: asking, uploading, listing. No Gradio import.

Each handler takes the public API functions as parameters (defaulting to ``assistant.api``),
so unit tests drive them with fakes and the Gradio layer in ``ui.app`` stays a thin binding.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePath
from typing import Any

from assistant.errors import AssistantError, EmptyIndexError
from assistant.settings import Settings
from assistant.types import Answer
from index.loaders import SUPPORTED_SUFFIXES
from ui.render import Turn, chat_messages, safe_url, sources_html, sync_summary_html

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
StreamFn = Callable[..., Iterator["str | Answer"]]
ARTICLE_HEADERS = ["Title", "Source", "Published", "Chunks", "File or URL"]
MODE_EXTRACTIVE = "extractive"
MODE_LLM = "llm"


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


ChatUpdate = tuple[list[dict[str, str]], str, list[Turn]]


def ask(
    question: str,
    turns: Sequence[Turn],
    options: ChatOptions,
    settings: Settings,
    stream: StreamFn | None = None,
) -> Iterator[ChatUpdate]:
    """Stream one answer into the conversation: yields (chat messages, sources panel, turns).

    The chat shows the streamed deltas as they come; the final ``Answer`` replaces them (its
    text may differ from the deltas) and fills the sources panel.
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
        for event in events:
            if isinstance(event, Answer):
                turn.answer = event
            else:
                turn.partial += str(event)
            yield chat_messages(turns), sources_html(turns), turns
    except AssistantError as exc:
        turn.error = str(exc)
        if isinstance(exc, EmptyIndexError):
            turn.error += " Or add articles in the “Add articles” tab."
    except Exception as exc:  # a bug must not leave the chat hanging; the log has the trace
        log.exception("answering failed")
        turn.error = f"internal error ({type(exc).__name__}); see the server log"
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
    """Files copied into the uploads folder (with the file each one replaced, if any)."""

    stored: list[Path] = field(default_factory=list)
    backups: dict[Path, Path] = field(default_factory=dict)
    refused: list[tuple[str, str]] = field(default_factory=list)


def store_uploads(paths: Sequence[str | Path], upload_dir: Path, max_mb: float) -> StoredUploads:
    """Copy acceptable uploads into ``upload_dir`` under their sanitized original names.

    Gradio keeps the original name as the temp file's name. A same-named earlier upload is
    kept aside until the sync says the new one loads, so a bad re-upload loses nothing.
    """
    out = StoredUploads()
    for raw in paths:
        path = Path(raw)
        name = path.name
        try:
            size = path.stat().st_size
        except OSError as exc:
            out.refused.append((name, f"cannot read the upload: {exc.strerror or exc}"))
            continue
        reason = check_upload(name, size, max_mb)
        if reason:
            out.refused.append((name, reason))
            continue
        upload_dir.mkdir(parents=True, exist_ok=True)
        target = upload_dir / safe_filename(name)
        if target.exists() and target not in out.backups:
            backup = upload_dir / f".{target.name}.previous"
            target.replace(backup)
            out.backups[target] = backup
        shutil.copyfile(path, target)
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
) -> str:
    """Copy uploads into ``home/uploads``, fetch the URL, sync both; return the summary HTML.

    Uploads whose loader fails are removed again (a previous same-named file is restored), so
    a refused file is not retried and reported on every later sync.
    """
    if sync is None:
        from assistant.api import sync_articles

        sync = sync_articles
    upload_dir = settings.home / "uploads"
    uploads = store_uploads(files or [], upload_dir, settings.max_upload_mb)
    refused = list(uploads.refused)
    sources: list[str] = [str(upload_dir)] if uploads.stored else []
    url = (url or "").strip()
    if url:
        problem = check_url(url)
        if problem:
            refused.append((url, problem))
        else:
            sources.append(url)
    if not sources:
        if not refused:
            refused.append(("nothing to add", "choose files or paste a URL first"))
        return sync_summary_html(None, refused)
    try:
        report = sync(sources, settings=settings, progress=progress, wait=60.0)
    except Exception as exc:  # nothing was indexed: take the new uploads back out
        _settle_uploads(uploads, failed=set(uploads.stored))
        if not isinstance(exc, AssistantError):
            log.exception("sync from the UI failed")
            exc = AssistantError(f"internal error ({type(exc).__name__}); see the server log")
        return sync_summary_html(None, refused, error=str(exc))
    failed = {Path(f.path) for f in report.failed} & set(uploads.stored)
    _settle_uploads(uploads, failed)
    return sync_summary_html(report, refused)


def _settle_uploads(uploads: StoredUploads, failed: set[Path]) -> None:
    for target in uploads.stored:
        backup = uploads.backups.get(target)
        if target in failed:
            target.unlink(missing_ok=True)
            if backup is not None:
                backup.replace(target)
        elif backup is not None:
            backup.unlink(missing_ok=True)


# --- what is indexed -------------------------------------------------------------------------
def _origin_label(origin: str) -> str:
    return origin if origin.startswith(("http://", "https://")) else PurePath(origin).name


def article_rows(articles: Sequence[Any], query: str = "") -> list[list[Any]]:
    """Table rows (see ``ARTICLE_HEADERS``) of the articles matching every word of ``query``."""
    words = (query or "").lower().split()
    rows = []
    for a in articles:
        row = [a.title, a.source or "", a.published or "", a.n_chunks, _origin_label(a.origin)]
        haystack = " ".join(str(v) for v in row).lower()
        if all(w in haystack for w in words):
            rows.append(row)
    rows.sort(key=lambda r: (str(r[2]), str(r[0])), reverse=True)
    return rows


def source_choices(articles: Sequence[Any]) -> list[str]:
    """The distinct source names (publications) to filter on."""
    return sorted({a.source for a in articles if a.source})
