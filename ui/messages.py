"""What a UI user is told when something fails: what to do, never where the server keeps files.

Messages of the index and loaders are written for the person at the server's terminal: they
name ``ASSISTANT_HOME``, lock files and upload paths (often under a home directory). A chat
user on another machine gets the same advice with every server path cut down to the file's
own name, and the full message goes to the server log for whoever runs it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path, PurePath

from assistant.errors import (
    AssistantError,
    ConfigError,
    EmptyIndexError,
    IndexBusyError,
    IndexMismatchError,
    LoadError,
    StoreUnavailableError,
)

log = logging.getLogger(__name__)

# An absolute path (POSIX, ``~/...`` or ``C:\...``) not preceded by anything that makes it part
# of a word or URL ("text/html", "http://host/x"). It ends at whitespace, quotes or brackets.
_PATH = re.compile(
    r"(?<![\w.:/\\~-])(?:~|[A-Za-z]:)?(?:[/\\][^\s/\\'\"`<>()\[\]]+)+[/\\]?",
)
_HOME_PHRASE = "the server's index folder"
ASK_ADMIN = "whoever runs this server can see the details in its log"


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def display_name(origin: str) -> str:
    """A source as the UI shows it: URLs whole, files by their own name (``name#n`` kept)."""
    return origin if is_url(origin) else PurePath(origin.replace("\\", "/")).name or "(file)"


def redact(text: str, *roots: Path | str) -> str:
    """``text`` with ``roots`` (the index home, ...) named in words and any other absolute
    path reduced to its last part."""
    for root in sorted({str(r) for r in roots if str(r) not in ("", "/", ".")}, key=len)[::-1]:
        # Only the root itself: a path inside it is cut to its own name below.
        text = re.sub(re.escape(root) + r"(?![/\\\w.-])", _HOME_PHRASE, text)
    return _PATH.sub(lambda m: display_name(m.group(0).rstrip("/\\")), text)


def user_message(exc: BaseException, home: Path) -> str:
    """The message for a failure shown in the UI; the full one is logged for the operator."""
    if not isinstance(exc, AssistantError):
        log.error("UI request failed", exc_info=exc)
        return f"internal error ({type(exc).__name__}); {ASK_ADMIN}"
    log.warning("UI request failed: %s", exc)
    if isinstance(exc, IndexBusyError):
        return "another upload is being indexed right now; try again in a minute"
    if isinstance(exc, EmptyIndexError):
        return "nothing is indexed yet. Add articles in the “Add articles” tab."
    if isinstance(exc, LoadError):
        return f"{display_name(exc.origin)}: {redact(exc.reason, home, home.resolve())}"
    message = redact(str(exc), home, home.resolve())
    if isinstance(exc, StoreUnavailableError | IndexMismatchError | ConfigError):
        # Fixed at the server (rebuild, settings, a store to start), not in the browser.
        return f"{message} (This needs the server: {ASK_ADMIN}.)"
    return message
