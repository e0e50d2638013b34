"""Fetch a web page for indexing with the standard library: bounded in size, time and scheme.

Kept apart from the parsers so the network rules (http(s) only, a size cap enforced while
reading, one-line errors) are in one place and the loaders stay pure functions of bytes.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from index.errors import LoadError

BYTES_PER_MB = 1024 * 1024
USER_AGENT = "ArticleAssistant/0.1 (news article indexer; Python urllib)"
_SCHEMES = ("http", "https")
_CHUNK = 64 * 1024
# Content types that cannot hold an article worth parsing as HTML.
_TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "application/xml", "text/xml")


@dataclass(frozen=True)
class Page:
    """The raw bytes of a fetched page and what its headers say about them."""

    data: bytes
    content_type: str | None
    charset: str | None


def too_large(size: int, max_bytes: int) -> str:
    """The one message for an over-size source, naming the setting that raises the limit."""
    return (
        f"file is {size / BYTES_PER_MB:.1f} MB, over the {max_bytes / BYTES_PER_MB:g} MB limit "
        "(ASSISTANT_MAX_FILE_MB)"
    )


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """urllib follows redirects to ftp:// too; an article URL must stay on http(s)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urlsplit(newurl).scheme.lower() not in _SCHEMES:
            raise LoadError(req.full_url, f"redirected to a non-http(s) URL: {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_url(url: str, *, max_bytes: int, timeout: float = 20.0) -> Page:
    """GET ``url`` and return at most ``max_bytes`` of it; any failure is a LoadError."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in _SCHEMES:
        shown = parts.scheme or "(none)"
        raise LoadError(url, f"unsupported URL scheme '{shown}' (only http and https)")
    if not parts.hostname:
        raise LoadError(url, "URL has no host name")
    headers = {"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml,*/*;q=0.5"}
    request = urllib.request.Request(url, headers=headers)
    opener = urllib.request.build_opener(_HttpOnlyRedirects)
    try:
        with opener.open(request, timeout=timeout) as response:
            has_type = bool(response.headers.get("Content-Type"))
            content_type = response.headers.get_content_type() if has_type else None
            if content_type is not None and content_type not in _TEXT_TYPES:
                raise LoadError(url, f"not a web page (Content-Type: {content_type})")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise LoadError(url, too_large(int(declared), max_bytes))
            data = _read_at_most(response, max_bytes + 1)
            charset = response.headers.get_content_charset()
    except LoadError:
        raise
    except urllib.error.HTTPError as exc:
        raise LoadError(url, f"HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise LoadError(url, f"cannot fetch: {_reason(exc.reason)}") from exc
    except TimeoutError as exc:
        raise LoadError(url, f"timed out after {timeout:g} s") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise LoadError(url, f"cannot fetch: {_reason(exc)}") from exc
    if len(data) > max_bytes:
        raise LoadError(url, too_large(len(data), max_bytes))
    return Page(data=data, content_type=content_type, charset=charset)


def _read_at_most(response: http.client.HTTPResponse, limit: int) -> bytes:
    """Read until EOF or ``limit`` bytes, so a huge or endless body cannot fill memory."""
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        chunk = response.read(min(_CHUNK, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _reason(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
