"""Fetch a web page for indexing: public addresses only, bounded in size, time and redirects.

A URL typed into the UI is fetched by the server, and the page becomes readable by every chat
user; without rules that is a server-side request forgery hole (cloud metadata at
169.254.169.254, an admin page on localhost, the office intranet). So every hop resolves its
host, refuses non-public addresses (unless ``allow_private`` says the owner wants their own
intranet indexed) and then connects to exactly the address it checked, so a DNS answer that
changes between the check and the connect (rebinding) cannot slip past. Redirects are followed
here, hop by hop, for the same reason. One deadline covers the whole fetch, redirects and a
slowly dripping body included; the size cap is enforced while reading.

The UI fetches before taking the index lock (a slow server must not block other uploads) and
hands the page to the sync through ``prefetched``; the sync then finds it instead of fetching.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urljoin, urlsplit

from index.errors import LoadError

BYTES_PER_MB = 1024 * 1024
USER_AGENT = "ArticleAssistant/0.1 (news article indexer; Python http.client)"
MAX_REDIRECTS = 5
ALLOW_PRIVATE_ENV = "ASSISTANT_ALLOW_PRIVATE_URLS"
_SCHEMES = {"http": 80, "https": 443}
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 64 * 1024
# Content types that cannot hold an article worth parsing as HTML.
_TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "application/xml", "text/xml")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Page:
    """The raw bytes of a fetched page and what its headers say about them."""

    data: bytes
    content_type: str | None
    charset: str | None


_NO_PAGES: Mapping[str, Page] = MappingProxyType({})
_PREFETCHED: ContextVar[Mapping[str, Page]] = ContextVar("prefetched_pages", default=_NO_PAGES)


@contextmanager
def prefetched(pages: Mapping[str, Page]) -> Iterator[None]:
    """While inside, ``fetch_url`` of one of these URLs returns the page without the network.

    A context variable, not a global: it is seen only by the code this thread (or task) runs,
    so one user's prefetched page is never served to another user's sync.
    """
    token = _PREFETCHED.set({**_PREFETCHED.get(), **pages})
    try:
        yield
    finally:
        _PREFETCHED.reset(token)


def too_large(size: int, max_bytes: int) -> str:
    """The one message for an over-size source, naming the setting that raises the limit."""
    return (
        f"file is {size / BYTES_PER_MB:.1f} MB, over the {max_bytes / BYTES_PER_MB:g} MB limit "
        "(ASSISTANT_MAX_FILE_MB)"
    )


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public internet address, or None when it is.

    IPv6 forms that carry an IPv4 address (mapped ``::ffff:a.b.c.d``, 6to4, NAT64, Teredo) are
    judged by the IPv4 address they lead to.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is None and ip in _NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            return blocked_reason(inner)
    for test, what in (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "non-public"),
    ):
        if test:
            return f"a {what} address"
    return None


def _resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver; tests replace this)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _resolve_within(host: str, port: int, seconds: float) -> list[str]:
    """``_resolve`` bounded by the deadline: getaddrinfo has no timeout of its own, so it runs
    in a daemon thread that is abandoned (not waited for) when time is up."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["found"] = _resolve(host, port)
        except Exception as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="resolve", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeoutError(host)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["found"]  # type: ignore[return-value]


def _checked_address(url: str, host: str, port: int, allow_private: bool, timeout: float) -> str:
    """The address to connect to for ``host``; refuses hosts with any non-public address."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = _resolve_within(host, port, timeout)
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in found]
        except TimeoutError as exc:
            raise LoadError(url, f"timed out resolving host '{host}'") from exc
        except (OSError, UnicodeError, ValueError) as exc:
            raise LoadError(url, f"cannot resolve host '{host}'") from exc
        if not addresses:
            raise LoadError(url, f"cannot resolve host '{host}'")
    if not allow_private:
        # Any bad answer refuses the host: a name with one public and one private address
        # would otherwise depend on which one the connection happens to pick.
        for address in addresses:
            reason = blocked_reason(address)
            if reason:
                raise LoadError(
                    url,
                    f"refused: '{host}' is {reason}, not a public web site (set "
                    f"{ALLOW_PRIVATE_ENV}=1 to index pages on your own network)",
                )
    return str(addresses[0])


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def left(self, url: str) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise LoadError(url, f"timed out after {self.seconds:g} s")
        return left


def _connection(
    scheme: str, host: str, address: str, port: int, timeout: float
) -> http.client.HTTPConnection:
    """A connection to ``address`` that still speaks to ``host`` (Host header, TLS SNI and
    certificate check), so nothing resolves the name a second time."""
    conn: http.client.HTTPConnection
    if scheme == "https":
        conn = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def connect_to_checked(
        _address: tuple[str, int], timeout: float | None = None, source: object = None
    ) -> socket.socket:
        return socket.create_connection((address, port), timeout)

    conn._create_connection = connect_to_checked  # type: ignore[attr-defined]
    return conn


def fetch_url(
    url: str,
    *,
    max_bytes: int,
    timeout: float = 20.0,
    allow_private: bool = False,
    max_redirects: int = MAX_REDIRECTS,
) -> Page:
    """GET ``url`` and return at most ``max_bytes`` of it; any failure is a LoadError.

    ``timeout`` bounds the whole fetch. ``allow_private`` comes from the caller's settings
    (``IndexSettings.allow_private_urls``, the one reader of ``ASSISTANT_ALLOW_PRIVATE_URLS``);
    off, only public addresses are fetched.
    """
    page = _PREFETCHED.get().get(url)
    if page is not None:
        return page
    deadline = _Deadline(timeout)
    current = url
    for _hop in range(max_redirects + 1):
        location = _fetch_once(url, current, max_bytes, deadline, allow_private)
        if isinstance(location, Page):
            return location
        current = location
    raise LoadError(url, f"more than {max_redirects} redirects")


def _fetch_once(
    url: str, current: str, max_bytes: int, deadline: _Deadline, allow_private: bool
) -> Page | str:
    """One request: the page, or the absolute URL it redirects to."""
    parts = urlsplit(current)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        shown = parts.scheme or "(none)"
        if current != url:
            raise LoadError(url, f"redirected to a non-http(s) URL ({shown}:)")
        raise LoadError(url, f"unsupported URL scheme '{shown}' (only http and https)")
    host = parts.hostname
    if not host:
        raise LoadError(url, "URL has no host name")
    try:
        port = parts.port or _SCHEMES[scheme]
    except ValueError as exc:
        raise LoadError(url, "URL has an invalid port") from exc
    address = _checked_address(url, host, port, allow_private, deadline.left(url))
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    conn = _connection(scheme, host, address, port, deadline.left(url))
    response: http.client.HTTPResponse | None = None
    sock: socket.socket | None = None
    # Socket timeouts bound each receive, not their sum (headers can drip too): at the
    # deadline a watchdog shuts the connection down, which ends any read in progress.
    watchdog = threading.Timer(deadline.left(url), _shut, args=(conn, lambda: sock))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request(
            "GET",
            path,
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "text/html,application/xhtml+xml,*/*;q=0.5",
                "Accept-Encoding": "identity",
            },
        )
        # Kept before getresponse(): a "Connection: close" reply detaches it from ``conn``.
        sock = conn.sock
        response = conn.getresponse()
        if response.status in _REDIRECTS and response.getheader("Location"):
            return urljoin(current, response.getheader("Location", ""))
        if response.status >= 400:
            raise LoadError(url, f"HTTP {response.status} {response.reason}")
        if response.status != 200:
            raise LoadError(url, f"unexpected HTTP {response.status} {response.reason}")
        has_type = bool(response.getheader("Content-Type"))
        content_type = response.headers.get_content_type() if has_type else None
        if content_type is not None and content_type not in _TEXT_TYPES:
            raise LoadError(url, f"not a web page (Content-Type: {content_type})")
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise LoadError(url, too_large(int(declared), max_bytes))
        data = _read_at_most(url, sock, response, max_bytes + 1, deadline)
        charset = response.headers.get_content_charset()
    except LoadError:
        raise
    except TimeoutError as exc:
        raise LoadError(url, f"timed out after {deadline.seconds:g} s") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if deadline.expired:
            raise LoadError(url, f"timed out after {deadline.seconds:g} s") from exc
        if isinstance(exc, ssl.SSLError):
            raise LoadError(url, f"TLS error: {exc.reason or exc}") from exc
        raise LoadError(url, f"cannot fetch: {_reason(exc)}") from exc
    finally:
        watchdog.cancel()
        if response is not None:
            response.close()
        conn.close()
    if deadline.expired:  # the watchdog cut the body short: it ended, but not by itself
        raise LoadError(url, f"timed out after {deadline.seconds:g} s")
    if len(data) > max_bytes:
        raise LoadError(url, too_large(len(data), max_bytes))
    return Page(data=data, content_type=content_type, charset=charset)


def _shut(conn: http.client.HTTPConnection, kept: Callable[[], socket.socket | None]) -> None:
    """Shut the connection's socket(s) down from the watchdog thread."""
    for sock in (conn.sock, kept()):
        if sock is not None:
            with contextlib.suppress(OSError):  # not connected yet, or already closed
                sock.shutdown(socket.SHUT_RDWR)


def _read_at_most(
    url: str,
    sock: socket.socket | None,
    response: http.client.HTTPResponse,
    limit: int,
    deadline: _Deadline,
) -> bytes:
    """Read until EOF or ``limit`` bytes, so a huge or endless body cannot fill memory; each
    read is one receive bounded by the time left, so a slow drip cannot outlive the deadline."""
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        left = deadline.left(url)
        if sock is not None:
            sock.settimeout(left)
        chunk = response.read1(min(_CHUNK, limit - total))
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
