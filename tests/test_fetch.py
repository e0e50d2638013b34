"""URL fetching rules (server-side request forgery): public addresses only, on every hop.

Real HTTP servers on loopback. A "public" web site is simulated by a server on ``::1`` that
the test declares public (``blocked_reason`` patched for that one address) and a fake
resolver that maps ``news.example`` to it; everything else keeps the real rules.
"""

from __future__ import annotations

import http.server
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from assistant.errors import LoadError
from index import fetch
from index.fetch import Page, blocked_reason, fetch_url, prefetched
from index.settings import IndexSettings

LIMIT = 100_000
PAGE = b"<html><head><title>Port strike ends</title></head><body><p>Dock workers.</p></body>"


@dataclass
class Site:
    """A tiny web site on one loopback address; records the paths it was asked for."""

    host: str
    routes: dict[str, Callable[[http.server.BaseHTTPRequestHandler], None]]
    hits: list[str] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"


def _page(handler: http.server.BaseHTTPRequestHandler, body: bytes = PAGE) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html; charset=utf-8")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _redirect(to: str | Callable[[], str]) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    def send(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", to() if callable(to) else to)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return send


@pytest.fixture
def serve() -> Iterator[Callable[[str, dict], Site]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(host: str, routes: dict) -> Site:
        site = Site(host, routes)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.hits.append(self.path)
                route = site.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                else:
                    route(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type(
            "Server", (http.server.ThreadingHTTPServer,), {"address_family": family}
        )
        httpd = server_class((host, 0), Handler)
        httpd.daemon_threads = True
        site.port = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(httpd)
        return site

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def public_v6(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``news.example`` resolves to ``::1``, which counts as public; returns the lookups made."""
    lookups: list[str] = []
    real = fetch.blocked_reason
    real_resolve = fetch._resolve

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["::1"] if host == "news.example" else real_resolve(host, port)

    def pretend(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        return None if str(ip) == "::1" else real(ip)

    monkeypatch.setattr(fetch, "_resolve", resolve)
    monkeypatch.setattr(fetch, "blocked_reason", pretend)
    monkeypatch.delenv("ASSISTANT_ALLOW_PRIVATE_URLS", raising=False)
    return lookups


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::1",
    ],
)
def test_non_public_addresses_are_blocked(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::6810:84e5"])
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


def test_loopback_refused_by_default_and_nothing_is_requested(
    serve: Callable[[str, dict], Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ASSISTANT_ALLOW_PRIVATE_URLS", raising=False)
    site = serve("127.0.0.1", {"/admin": _page})
    for url in (site.url("/admin"), f"http://localhost:{site.port}/admin"):
        with pytest.raises(LoadError, match=r"not a public web site.*ASSISTANT_ALLOW_PRIVATE_URLS"):
            fetch_url(url, max_bytes=LIMIT)
    assert site.hits == []


def test_private_allowed_by_the_setting(
    serve: Callable[[str, dict], Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = serve("127.0.0.1", {"/intranet": _page})
    assert fetch_url(site.url("/intranet"), max_bytes=LIMIT, allow_private=True).data == PAGE
    # The environment reaches fetching only through the settings object, never directly.
    monkeypatch.setenv("ASSISTANT_ALLOW_PRIVATE_URLS", "1")
    assert IndexSettings().allow_private_urls is True
    with pytest.raises(LoadError, match="loopback"):
        fetch_url(site.url("/intranet"), max_bytes=LIMIT, allow_private=False)
    with pytest.raises(LoadError, match="loopback"):
        fetch_url(site.url("/intranet"), max_bytes=LIMIT)


def test_public_url_redirecting_to_loopback_is_refused(
    serve: Callable[[str, dict], Site], public_v6: list[str]
) -> None:
    secret = serve("127.0.0.1", {"/latest/meta-data": _page})
    public = serve(
        "::1",
        {
            "/article": _page,
            "/moved": _redirect(secret.url("/latest/meta-data")),
            "/sneaky": _redirect(lambda: f"http://localhost:{secret.port}/latest/meta-data"),
        },
    )
    base = f"http://news.example:{public.port}"
    assert fetch_url(f"{base}/article", max_bytes=LIMIT).data == PAGE  # the public site works
    for path in ("/moved", "/sneaky"):
        with pytest.raises(LoadError, match="loopback address, not a public web site"):
            fetch_url(f"{base}{path}", max_bytes=LIMIT)
    assert secret.hits == []
    assert public.hits == ["/article", "/moved", "/sneaky"]


def test_connects_to_the_address_it_checked(
    serve: Callable[[str, dict], Site], public_v6: list[str]
) -> None:
    """One lookup per hop, and the connection goes to that answer (no second resolution a
    rebinding DNS server could answer differently); the Host header keeps the name."""
    seen_hosts: list[str] = []

    def page(handler: http.server.BaseHTTPRequestHandler) -> None:
        seen_hosts.append(handler.headers["Host"])
        _page(handler)

    public = serve("::1", {"/a": page})
    fetch_url(f"http://news.example:{public.port}/a", max_bytes=LIMIT)
    assert public_v6 == ["news.example"]
    assert seen_hosts == [f"news.example:{public.port}"]


def test_a_name_with_any_private_answer_is_refused(
    serve: Callable[[str, dict], Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch, "_resolve", lambda host, port: ["93.184.215.14", "10.0.0.7"])
    with pytest.raises(LoadError, match="private address"):
        fetch_url("http://mixed.example/a", max_bytes=LIMIT)


def test_redirects_are_bounded_and_stay_on_http(
    serve: Callable[[str, dict], Site], public_v6: list[str]
) -> None:
    public = serve("::1", {})
    public.routes["/loop"] = _redirect(lambda: f"http://news.example:{public.port}/loop")
    public.routes["/ftp"] = _redirect("ftp://news.example/file")
    with pytest.raises(LoadError, match="more than 5 redirects"):
        fetch_url(f"http://news.example:{public.port}/loop", max_bytes=LIMIT)
    assert len(public.hits) == 6
    with pytest.raises(LoadError, match="redirected to a non-http"):
        fetch_url(f"http://news.example:{public.port}/ftp", max_bytes=LIMIT)


def test_one_deadline_covers_a_slowly_dripping_body(serve: Callable[[str, dict], Site]) -> None:
    """Each byte arrives well within the timeout, so a per-read timeout never fires; the
    whole fetch must still end at the deadline (the old code waited the full 12 s)."""

    def drip(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", "60")
        handler.end_headers()
        try:
            for _ in range(60):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass  # the client gave up, as it should

    site = serve("127.0.0.1", {"/drip": drip})
    with pytest.raises(LoadError, match="timed out after 1 s"):
        fetch_url(site.url("/drip"), max_bytes=LIMIT, timeout=1.0, allow_private=True)


def test_one_deadline_covers_dripping_headers(serve: Callable[[str, dict], Site]) -> None:
    """Headers arriving a byte at a time never trip a per-receive timeout either: the client
    must hang up at the deadline, while the server is still dripping (seen by the server)."""
    hung_up = threading.Event()

    def drip_headers(handler: http.server.BaseHTTPRequestHandler) -> None:
        try:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 80:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(0.1)
        except OSError:
            hung_up.set()

    site = serve("127.0.0.1", {"/drip": drip_headers})
    with pytest.raises(LoadError, match="timed out after 1 s"):
        fetch_url(site.url("/drip"), max_bytes=LIMIT, timeout=1.0, allow_private=True)
    assert hung_up.wait(15), "the client kept reading past its deadline"


def test_size_cap_while_reading(serve: Callable[[str, dict], Site]) -> None:
    def endless(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()  # no Content-Length: the body ends when the server closes
        try:
            for _ in range(2000):
                handler.wfile.write(b"y" * 4096)
        except OSError:
            pass

    site = serve("127.0.0.1", {"/endless": endless})
    with pytest.raises(LoadError, match=r"over the 0\.00\d+ MB limit"):
        fetch_url(site.url("/endless"), max_bytes=1000, allow_private=True)


def test_prefetched_pages_skip_the_network() -> None:
    page = Page(PAGE, "text/html", "utf-8")
    with prefetched({"http://127.0.0.1:9/a": page}):
        assert fetch_url("http://127.0.0.1:9/a", max_bytes=LIMIT) is page
    with pytest.raises(LoadError):
        fetch_url("http://127.0.0.1:9/a", max_bytes=LIMIT)
