"""Loaders: every format, every kind of bad input, and URL fetching against a loopback server."""

from __future__ import annotations

import http.server
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.errors import LoadError
from index.loaders import (
    SUPPORTED_SUFFIXES,
    HtmlLoader,
    Loader,
    LoadResult,
    TextLoader,
    iter_article_files,
    load_file,
    load_url,
    loader_for,
)

from .conftest import SHARED

BAD = Path(__file__).parent / "bad_inputs"
BBC = SHARED / "eval" / "bbc"
SAMPLE = SHARED / "articles" / "us-china-trade-talks.txt"
MB = 1024 * 1024
LIMIT = 20 * MB


def load(path: Path) -> LoadResult:
    return load_file(path, max_bytes=LIMIT)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


# --- the interface --------------------------------------------------------------------------


def test_supported_suffixes_and_loader_for() -> None:
    assert {".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl"} == SUPPORTED_SUFFIXES
    for suffix in SUPPORTED_SUFFIXES:
        loader = loader_for(f"x{suffix.upper()}")
        assert isinstance(loader, Loader)
        assert suffix in loader.suffixes
    with pytest.raises(LoadError, match=r"unsupported file type '\.pdf'") as info:
        loader_for("report.pdf")
    assert info.value.origin == "report.pdf"


def test_loader_has_one_abstract_method() -> None:
    assert Loader.__abstractmethods__ == frozenset({"load"})


# --- decoding and whole-file failures -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.txt", "empty file"),
        ("whitespace_only.txt", "empty file"),
        ("binary_png.txt", "binary file (not text)"),
        ("nul_bytes.txt", "binary file (not text)"),
    ],
)
def test_unreadable_files_are_load_errors(name: str, reason: str) -> None:
    path = BAD / name
    with pytest.raises(LoadError) as info:
        load(path)
    assert info.value.reason == reason
    assert info.value.origin == str(path)


def test_latin1_bytes_decode_by_detection() -> None:
    article = load(BAD / "invalid_utf8.txt").articles[0]
    assert article.title == "Café prices rise"
    assert "£5" in article.text
    assert "\ufffd" not in article.text


def test_utf16_bom_is_honoured() -> None:
    article = load(BAD / "utf16_bom.txt").articles[0]
    assert article.title == "Grüße aus Köln"
    assert article.text == "Die Stadt feiert ihr Jubiläum mit einem Fest am Rhein."


def test_utf8_bom_stripped_and_crlf_normalised(tmp_path: Path) -> None:
    path = write(
        tmp_path, "bom.txt", b"\xef\xbb\xbfHeadline here\r\n\r\nFirst line.\r\nSecond.\r\n"
    )
    article = load(path).articles[0]
    assert article.title == "Headline here"
    assert article.text == "First line.\nSecond."


def test_mostly_control_characters_is_binary(tmp_path: Path) -> None:
    path = write(tmp_path, "ctl.txt", b"text " + b"\x01\x02\x03\x1b" * 50)
    with pytest.raises(LoadError, match="binary file"):
        load(path)


def test_oversize_file_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:  # sparse: 50 MB on paper, nothing on disk
        handle.truncate(50 * MB + 400 * 1024)
    with pytest.raises(LoadError) as info:
        load(path)
    assert info.value.reason == "file is 50.4 MB, over the 20 MB limit (ASSISTANT_MAX_FILE_MB)"


def test_missing_file_and_broken_symlink(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="file not found"):
        load(tmp_path / "nope.txt")
    link = tmp_path / "dangling.txt"
    link.symlink_to(tmp_path / "gone.txt")
    with pytest.raises(LoadError, match="broken symlink"):
        load(link)


# --- .txt -----------------------------------------------------------------------------------


def test_txt_headline_then_blank_line(tmp_path: Path) -> None:
    content = "Ad sales boost profit\n\nQuarterly profits jumped 76%.\n\nMore text.\n"
    article = load(write(tmp_path, "001.txt", content)).articles[0]
    assert article.title == "Ad sales boost profit"
    assert article.text == "Quarterly profits jumped 76%.\n\nMore text."


def test_txt_headline_without_blank_line_needs_no_final_punctuation(tmp_path: Path) -> None:
    article = load(
        write(tmp_path, "a.txt", "Markets rally on rate hopes\nShares rose.\n")
    ).articles[0]
    assert article.title == "Markets rally on rate hopes"
    article = load(write(tmp_path, "b.txt", "Shares rose today.\nThey fell later.\n")).articles[0]
    assert article.title == "B"
    assert article.text == "Shares rose today.\nThey fell later."


def test_txt_long_first_line_is_not_a_title(tmp_path: Path) -> None:
    sentence = "This opening paragraph runs on well past any plausible headline length. " * 3
    path = write(tmp_path, "city_council-vote.txt", f"{sentence}\n\nSecond paragraph.\n")
    article = load(path).articles[0]
    assert article.title == "City council vote"
    assert article.text == f"{sentence}\n\nSecond paragraph.".strip()


def test_txt_single_line_file_keeps_its_text(tmp_path: Path) -> None:
    article = load(write(tmp_path, "one-liner.txt", "Just a headline\n")).articles[0]
    assert article.title == "One liner"
    assert article.text == "Just a headline"


def test_txt_text_is_exact_substring_of_file(tmp_path: Path) -> None:
    content = "Title line\n\n  Indented   spacing\tkept\n\n\nlast line  \n"
    article = load(write(tmp_path, "s.txt", content)).articles[0]
    assert article.text in content
    assert article.text == "Indented   spacing\tkept\n\n\nlast line"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=1, max_size=400))
def test_txt_text_is_always_a_nonempty_substring(content: str) -> None:
    normalised = content.replace("\r\n", "\n").replace("\r", "\n")
    if not normalised.strip():
        return
    article = TextLoader().parse(normalised, "x.txt")
    assert article.text
    assert article.title
    assert article.text in normalised


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_load_or_fail_cleanly(data: bytes) -> None:
    for loader in (loader_for("x.txt"), loader_for("x.json"), loader_for("x.md")):
        try:
            result = loader.load(data, "x")
        except LoadError:
            continue
        assert all(a.text and a.title for a in result.articles)


def test_sample_article_gets_file_name_title() -> None:
    if not SAMPLE.exists():
        pytest.skip("shared sample article not present")
    article = load(SAMPLE).articles[0]
    assert article.title == "Us china trade talks"
    assert article.text == SAMPLE.read_text(encoding="utf-8").strip()
    assert article.origin == str(SAMPLE)


# --- .md ------------------------------------------------------------------------------------


def test_markdown_front_matter() -> None:
    article = load(BAD / "good.md").articles[0]
    assert article.title == "Rail strike called off after late-night talks"
    assert article.text.startswith("Union leaders called off")  # duplicate H1 removed
    assert article.text.endswith("rostering rules.")
    assert article.source == "Daily Planet"
    assert article.published == date(2024, 3, 5)
    assert article.url == "https://planet.example/rail-strike"
    assert article.author == "Lois Lane, Clark Kent"


def test_markdown_bad_front_matter() -> None:
    with pytest.raises(LoadError, match=r"malformed YAML front matter: .*line 3"):
        load(BAD / "bad_frontmatter.md")


def test_markdown_heading_and_date_alias(tmp_path: Path) -> None:
    content = "---\ndate: '2024-01-02T09:00:00Z'\n---\n\n# Storm hits coast  #\n\nWinds of 90mph.\n"
    article = load(write(tmp_path, "storm.md", content)).articles[0]
    assert (article.title, article.text, article.published) == (
        "Storm hits coast",
        "Winds of 90mph.",
        date(2024, 1, 2),
    )


def test_markdown_without_heading_uses_file_name(tmp_path: Path) -> None:
    article = load(write(tmp_path, "quiet_day.markdown", "Nothing happened.\n")).articles[0]
    assert (article.title, article.text) == ("Quiet day", "Nothing happened.")


def test_markdown_front_matter_only_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="no article text"):
        load(write(tmp_path, "x.md", "---\ntitle: Only metadata\n---\n"))
    with pytest.raises(LoadError, match="key: value"):
        load(write(tmp_path, "y.md", "---\n- a\n- b\n---\nBody.\n"))


# --- .html ----------------------------------------------------------------------------------


def test_html_keeps_article_and_drops_scripts_styles_pixels() -> None:
    article = load(BAD / "script_pixel.html").articles[0]
    assert article.title == "Harbour bridge reopens after repairs"
    assert "cost the city £4.2m" in article.text
    assert "forty minutes" in article.text
    for marker in ("MARKER", "tracker.example", "trackPageView", "color: red", "Home"):
        assert marker not in article.text
    assert article.source == "Coastal Gazette"
    assert article.author == "Maria Lopez"
    assert article.published == date(2024, 5, 17)


def test_html_without_article_text(tmp_path: Path) -> None:
    html = "<html><head><title>T</title><script>var x = 1;</script></head><body></body></html>"
    with pytest.raises(LoadError, match="no article text found in HTML"):
        load(write(tmp_path, "empty.html", html))


def test_html_deep_nesting_never_crashes(tmp_path: Path) -> None:
    paragraph = "<p>A paragraph at the bottom of a very deep tree, long enough to be content.</p>"
    html = "<html><body>" + "<div>" * 5000 + paragraph + "</div>" * 5000 + "</body></html>"
    try:
        result = load(write(tmp_path, "nested.htm", html))
    except LoadError:
        return
    assert all(a.text for a in result.articles)


def test_html_declared_legacy_charset(tmp_path: Path) -> None:
    html = (
        '<html><head><meta charset="windows-1252"><title>Prices</title></head><body><article>'
        "<p>Bread now costs £2 and a “special” loaf costs more, bakers said on Monday.</p>"
        "</article></body></html>"
    ).encode("cp1252")
    article = load(write(tmp_path, "prices.html", html)).articles[0]
    assert "£2" in article.text
    assert "“special”" in article.text


# --- .json / .jsonl -------------------------------------------------------------------------


def test_json_wrong_types_coerced_or_reported() -> None:
    path = BAD / "wrong_types.json"
    result = load(path)
    first, fifth = result.articles
    assert first.origin == f"{path}#1"
    assert (first.title, first.published, first.author, first.source) == (
        "5",
        None,
        "Ann Lee, Bo Chen",
        "Wire Service",
    )
    assert fifth.origin == f"{path}#5"
    assert fifth.title == "Record five has no title, so its first sentence stands in for one."
    assert fifth.published == date(2024, 2, 29)
    assert fifth.url is None
    assert result.problems == [
        "record 2: text is a number, not a string",
        "record 3: no text field (expected text, content or body)",
        "record 4: not a JSON object (a string)",
        "record 6: empty text",
    ]


def test_jsonl_broken_line_reported_rest_loaded() -> None:
    path = BAD / "one_broken_line.jsonl"
    result = load(path)
    assert [a.origin for a in result.articles] == [f"{path}#1", f"{path}#3", f"{path}#6"]
    assert result.articles[0].published == date(2023, 11, 2)
    assert result.articles[2].text == "Line six uses the content field instead of text."
    assert len(result.problems) == 1
    assert result.problems[0].startswith("line 4: invalid JSON: Unterminated string")


def test_json_single_object_and_failures(tmp_path: Path) -> None:
    obj = '{"title": "One", "body": "Only article.", "author": "Al", "published": "2020-05-06"}'
    article = load(write(tmp_path, "one.json", obj)).articles[0]
    assert (article.origin, article.published) == (str(tmp_path / "one.json"), date(2020, 5, 6))
    with pytest.raises(LoadError, match="invalid JSON"):
        load(write(tmp_path, "bad.json", '{"title": '))
    with pytest.raises(LoadError, match="no text field"):
        load(write(tmp_path, "notext.json", '{"title": "x"}'))
    with pytest.raises(LoadError, match="record 1: no text field"):
        load(write(tmp_path, "none.json", '[{"title": "x"}, {"text": 3}]'))
    with pytest.raises(LoadError, match="expected a JSON object or a list"):
        load(write(tmp_path, "scalar.json", "42"))
    with pytest.raises(LoadError, match="nested too deeply"):
        load(write(tmp_path, "deep.json", "[" * 100_000 + "]" * 100_000))
    with pytest.raises(LoadError, match="line 1: invalid JSON"):
        load(write(tmp_path, "all_bad.jsonl", "nope\n{broken\n"))


def test_long_first_sentence_title_is_cut(tmp_path: Path) -> None:
    text = "word " * 60 + "end."
    article = load(write(tmp_path, "t.json", f'{{"text": "{text}"}}')).articles[0]
    assert len(article.title) <= 81
    assert article.title.endswith("…")


# --- folders --------------------------------------------------------------------------------


def test_iter_article_files(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    for rel in ("z.txt", "a.md", "b/c.JSONL", "b/d.pdf", ".secret.txt", ".hidden/e.txt", "f"):
        (tmp_path / rel).write_text("x")
    (tmp_path / "b" / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "broken.html").symlink_to(tmp_path / "missing.html")
    found = list(iter_article_files(tmp_path))
    assert found == sorted(found)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.md",
        "b/c.JSONL",
        "broken.html",
        "z.txt",
    ]
    with pytest.raises(LoadError, match="broken symlink"):
        load(tmp_path / "broken.html")


def test_iter_follows_symlinked_folder_once(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "x.txt").write_text("x")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(real, target_is_directory=True)
    (root / "link2").symlink_to(real, target_is_directory=True)
    assert [p.name for p in iter_article_files(root)] == ["x.txt"]


def test_iter_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="folder not found"):
        list(iter_article_files(tmp_path / "nope"))


# --- URLs -----------------------------------------------------------------------------------

ARTICLE_HTML = (
    "<html><head><title>Port strike ends</title></head><body><article><h1>Port strike ends</h1>"
    "<p>Dock workers returned on Tuesday after a deal on pay was reached, the union said, "
    "ending a week-long stoppage that had left ships waiting offshore.</p>"
    "<script>SCRIPT_MARKER()</script></article></body></html>"
)


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {
        "/article": (200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE_HTML.encode()),
        "/latin1": (
            200,
            {"Content-Type": "text/html; charset=iso-8859-1"},
            ARTICLE_HTML.replace("pay", "£5 pay").encode("latin-1"),
        ),
        "/plain": (200, {"Content-Type": "text/plain"}, b"Plain headline\n\nPlain body text.\n"),
        "/image": (200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n\x00\x00"),
        "/big": (200, {"Content-Type": "text/html"}, b"<p>" + b"x" * 5000 + b"</p>"),
        "/ftp": (302, {"Location": "ftp://127.0.0.1/file"}, b""),
    }

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(2)
        if self.path == "/stream":  # no Content-Length: the cap must hold while reading
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<p>" + b"y" * 5000 + b"</p>")
            return
        status, headers, body = self.routes.get(self.path, (404, {}, b"not found"))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_load_url_article(server: str) -> None:
    url = f"{server}/article"
    article = load_url(url, max_bytes=LIMIT, allow_private=True).articles[0]
    assert (article.origin, article.url, article.title) == (url, url, "Port strike ends")
    assert article.text.startswith("Dock workers returned on Tuesday")
    assert "SCRIPT_MARKER" not in article.text
    assert article.source is not None
    assert article.source.startswith("127.0.0.1")  # the site name, else the host


def test_load_url_header_charset_and_plain_text(server: str) -> None:
    assert (
        "£5 pay"
        in load_url(f"{server}/latin1", max_bytes=LIMIT, allow_private=True).articles[0].text
    )
    article = load_url(f"{server}/plain", max_bytes=LIMIT, allow_private=True).articles[0]
    assert (article.title, article.text) == ("Plain headline", "Plain body text.")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/missing", r"HTTP 404"),
        ("/image", r"not a web page \(Content-Type: image/png\)"),
        ("/big", r"over the 0.00\d+ MB limit"),
        ("/stream", r"over the 0.00\d+ MB limit"),
        ("/ftp", r"redirected to a non-http\(s\) URL"),
    ],
)
def test_load_url_failures(server: str, path: str, reason: str) -> None:
    with pytest.raises(LoadError, match=reason) as info:
        load_url(f"{server}{path}", max_bytes=1000, allow_private=True)
    assert info.value.origin == f"{server}{path}"


def test_load_url_timeout(server: str) -> None:
    with pytest.raises(LoadError, match="timed out"):
        load_url(f"{server}/slow", max_bytes=LIMIT, allow_private=True, timeout=0.3)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a", "example.com/a"])
def test_load_url_rejects_other_schemes(url: str) -> None:
    with pytest.raises(LoadError, match="unsupported URL scheme"):
        load_url(url, max_bytes=LIMIT, allow_private=True)


def test_load_url_connection_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(LoadError, match="cannot fetch"):
        load_url(f"http://127.0.0.1:{port}/", max_bytes=LIMIT, allow_private=True, timeout=2)


def test_html_loader_parse_is_reusable() -> None:
    article = HtmlLoader().parse(ARTICLE_HTML, "page", url="https://ex.test/a", source="ex.test")
    assert article.url == "https://ex.test/a"


# --- the BBC corpus -------------------------------------------------------------------------


@pytest.mark.integration
def test_every_bbc_file_loads() -> None:
    if not BBC.is_dir():
        pytest.skip(f"{BBC} not present")
    files = sorted(BBC.glob("*/*.txt"))
    assert len(files) == 2225
    for path in files:
        result = load(path)
        assert result.problems == []
        [article] = result.articles
        assert article.title.strip(), path
        assert article.text.strip(), path
    mutu = load(BBC / "sport" / "199.txt").articles[0]
    assert "£15.8m" in mutu.text
    assert os.fspath(BBC / "sport" / "199.txt") == mutu.origin
