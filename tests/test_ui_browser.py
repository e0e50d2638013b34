"""End to end in Debian's headless Chromium (Playwright): ask, open a citation, upload, refuse.

The app runs as its own process (as `assistant ui` does) on a free loopback port, with a temp
ASSISTANT_HOME into which the bundled sample is synced first. Screenshots go to the test's
temp dir and are copied to ``.test-artifacts/`` for people to look at; the time from pressing
Ask to the first streamed words and to the finished answer is printed (``pytest -s``).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import SAMPLE
from .conftest_ui import CHROMIUM, CHROMIUM_ARGS, AppServer, Page, record_timing

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

EVIL_PORT = 9  # "discard": nothing answers; any request to it would be a leak
OTTERS = (
    "Otters return to the River Wandle\n\n"
    "A family of otters was filmed in the River Wandle in south London on Tuesday, the "
    "first sighting there in sixty years. Volunteers from the Wandle Trust counted four "
    "cubs near the Merton weir. The trust said cleaner water had brought the fish back, "
    "and the otters followed the fish.\n"
)
EVIL_MD = f"""---
title: "Pixel <img src=http://127.0.0.1:{EVIL_PORT}/title.png> report"
source: "Leak <b>Daily</b>"
published: 2025-03-01
url: "javascript:alert(1)"
---
The zebra crossing on Quokka Lane was repainted <img src="http://127.0.0.1:{EVIL_PORT}/px.png">
by the council on Friday. <script>window.__pwned = 1</script> Residents of Quokka Lane
![leak](http://127.0.0.1:{EVIL_PORT}/md.png) said the zebra crossing had faded completely, see
<a href="http://127.0.0.1:{EVIL_PORT}/link">here</a> and http://127.0.0.1:{EVIL_PORT}/auto.
"""

if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed (/usr/bin/chromium); `make browser` or "
        "`apt-get install chromium` enables these tests",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@pytest.fixture(scope="module")
def server(sample_app: AppServer) -> AppServer:
    return sample_app  # the session's app over the sample (tests/conftest.py)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def ui(browser: Any, server: AppServer, tmp_path: Path) -> Iterator[Page]:
    page = Page(browser, server.url, tmp_path)
    page.open()
    yield page
    assert page.outside == [], f"requests left the app: {page.outside}"
    page.close()


def test_answer_streams_and_citation_opens_its_passage(ui: Page) -> None:
    page = ui.page
    # Watch every state the answer bubble goes through, to see it arrive in pieces.
    page.evaluate("""() => { window.__aaStates = [];
        new MutationObserver(() => {
          const bots = document.querySelectorAll("#aa-chat [data-testid='bot']");
          if (bots.length) window.__aaStates.push(bots[bots.length - 1].innerText);
        }).observe(document.querySelector('#aa-chat'),
                   {subtree: true, childList: true, characterData: true}); }""")
    timing = ui.ask("What did Bessent threaten?")
    record_timing("first question", timing)
    states = [s.strip() for s in page.evaluate("window.__aaStates") if s.strip()]
    distinct = list(dict.fromkeys(states))
    print(f"\nanswer bubble states: {[d[:40] + ' … ' + d[-12:] for d in distinct]}")
    # The question is acknowledged at once, then the text arrives (▍ while streaming).
    assert distinct and distinct[0].startswith("Searching the articles"), distinct[:3]
    assert any(d.endswith("▍") for d in distinct), "no streamed (partial) state was shown"
    answer = ui.last_answer()
    assert answer and answer != states[0]
    link = page.locator('#aa-chat a[href="#aa-cite-0-1"]')
    # "As of 24 Oct 2025 [1]: ... [1]": the date and the quote both cite passage 1.
    assert link.count() >= 1, f"no clickable [1] in the answer: {answer!r}"
    ui.shot("01-answer")
    link.first.click()
    card = page.locator(".aa-card.aa-active")
    card.wait_for(state="visible")
    text = card.inner_text()
    assert "everything is on the table" in text
    assert "Fifth round of U.S.-China trade talks" in text and "2025-10-24" in text
    assert card.locator("mark").count() == 1
    ui.shot("02-citation-open")

    timing = ui.ask("What did Trump threaten?")
    record_timing("second question", timing)
    assert "[1]" in ui.last_answer()
    # [1] of the first answer still opens the first answer's passage.
    page.locator('#aa-chat a[href="#aa-cite-0-1"]').first.click()
    assert "everything is on the table" in page.locator(".aa-card.aa-active").inner_text()


def test_upload_article_then_ask_about_it(ui: Page, tmp_path: Path) -> None:
    article = tmp_path / "otters.txt"
    article.write_text(OTTERS, encoding="utf-8")
    start = time.monotonic()
    summary = ui.add([article])
    print(f"\nTIMING upload+sync of one small article: {time.monotonic() - start:.2f}s")
    assert "1 added" in summary, summary
    ui.shot("03-upload-added")

    ui.tab("Indexed articles")
    table = ui.page.locator("#aa-table")
    table.get_by_text("Otters return to the River Wandle").wait_for()
    ui.page.fill("#aa-search textarea", "wandle")
    ui.page.wait_for_function(
        "() => !document.querySelector('#aa-table').innerText.includes('Fifth round')"
    )
    assert "Articles" in ui.page.locator("#aa-status").inner_text()
    ui.shot("04-indexed-articles")

    ui.tab("Chat")
    timing = ui.ask("How many otter cubs did the volunteers count in the Wandle?")
    record_timing("question about the uploaded article", timing)
    answer = ui.last_answer()
    sources = ui.page.locator("#aa-sources .aa-turn").last.inner_text()
    assert "four" in answer or "four cubs" in sources, (answer, sources)
    assert "Otters return to the River Wandle" in sources
    ui.shot("05-answer-from-upload")


def test_binary_and_wrong_type_uploads_are_refused(ui: Page, tmp_path: Path) -> None:
    binary = tmp_path / "photo.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16)
    program = tmp_path / "tool.exe"
    program.write_bytes(b"MZ\x90\x00" * 64)
    summary = ui.add([binary, program])
    assert "Not added" in summary, summary
    assert "photo.txt" in summary and "tool.exe" in summary
    assert "unsupported file type '.exe'" in summary
    reason = next(line for line in summary.splitlines() if line.startswith("photo.txt"))
    assert len(reason) > len("photo.txt: ") + 5, summary  # the loader's reason is shown
    ui.shot("06-binary-refused")


def test_markup_inside_an_article_stays_inert(ui: Page, tmp_path: Path) -> None:
    evil = tmp_path / "quokka-lane.md"
    evil.write_text(EVIL_MD, encoding="utf-8")
    assert "1 added" in ui.add([evil])
    ui.tab("Chat")
    ui.ask("Who repainted the zebra crossing on Quokka Lane?")
    page = ui.page
    for where in ("#aa-chat", "#aa-sources", "#aa-table"):
        assert page.locator(f"{where} img").count() == 0, where
        assert page.locator(f"{where} script").count() == 0, where
    assert page.locator(f"#aa-sources a[href*='{EVIL_PORT}']").count() == 0
    assert page.locator("#aa-sources a[href^='javascript']").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert "Quokka Lane" in page.locator("#aa-sources").inner_text()
    ui.shot("07-markup-inert")
    # the `ui` fixture then checks that no request left the app's origin


def test_add_by_url_refuses_the_servers_own_address(ui: Page, server: AppServer) -> None:
    """A URL on the server's own loopback (here the app itself) is not fetched."""
    page = ui.page
    ui.tab("Add articles")
    page.locator("#aa-url textarea, #aa-url input").first.fill(f"{server.url}gradio_api/info")
    page.click("#aa-add")
    page.locator("#aa-summary .aa-summary").wait_for(timeout=60_000)
    summary = page.locator("#aa-summary").inner_text()
    assert "not a public web site" in summary and "loopback" in summary, summary
    assert "Index updated" not in summary


def test_jsonl_upload_with_a_bad_line_keeps_its_good_records(ui: Page, tmp_path: Path) -> None:
    news = tmp_path / "harbour-news.jsonl"
    news.write_text(
        '{"title": "Harbour reopens after storm", "text": "The harbour reopened on Monday."}\n'
        '{"title": "Broken", "text": \n'
        '{"title": "Ferries sail again", "text": "The first ferries sailed on Monday."}\n',
        encoding="utf-8",
    )
    summary = ui.add([news])
    assert "2 added" in summary and "harbour-news.jsonl#2" in summary, summary
    assert str(tmp_path) not in summary and "uploads" not in summary
    ui.tab("Indexed articles")
    ui.page.locator("#aa-table").get_by_text("Ferries sail again").wait_for()
    ui.page.locator("#aa-table").get_by_text("Harbour reopens after storm").wait_for()


def test_only_the_apps_own_files_are_served(server: AppServer) -> None:
    uploads = server.home / "uploads"
    upload = next(uploads.rglob("otters.txt"), uploads / "otters.txt")
    for path in (
        "/etc/passwd",
        str(SAMPLE / "us-china-trade-talks.md"),
        str(upload),
        str(server.home),
    ):
        url = f"{server.url}gradio_api/file={path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status >= 400, f"{path} is served ({status})"


def test_answer_settings_reach_the_answer(ui: Page) -> None:
    page = ui.page
    page.get_by_text("Answer settings").click()
    after = page.get_by_label("Published on or after")
    after.fill("last week")
    ui.ask("What did Bessent threaten?")
    assert "is not a date; use YYYY-MM-DD" in ui.last_answer()
    after.fill("2030-01-01")  # later than every article: nothing may be cited
    ui.ask("What did Bessent threaten?")
    assert ui.page.locator("#aa-sources .aa-turn").last.locator(".aa-card").count() == 0
    ui.shot("08-date-filter")
    after.fill("2025-10-01")
    ui.ask("What did Bessent threaten?")
    assert "everything is on the table" in ui.page.locator("#aa-sources .aa-turn").last.inner_text()


def test_login_required_and_upload_size_limit(browser: Any, tmp_path: Path) -> None:
    app = AppServer(
        tmp_path / "home",
        tmp_path / "auth-app.log",
        [],
        auth="ann:s3cret:x",
        extra_env={"ASSISTANT_MAX_UPLOAD_MB": "0.002"},
    )
    try:
        page = Page(browser, app.url, tmp_path)
        page.page.goto(app.url)
        page.page.get_by_role("button", name="Login").wait_for(timeout=30_000)
        assert page.page.locator("#aa-question").count() == 0
        inputs = page.page.locator("input")
        inputs.nth(0).fill("ann")
        inputs.nth(1).fill("wrong")
        page.page.get_by_role("button", name="Login").click()
        page.page.get_by_text("Incorrect", exact=False).first.wait_for(timeout=10_000)
        inputs.nth(0).fill("ann")
        inputs.nth(1).fill("s3cret:x")
        page.page.get_by_role("button", name="Login").click()
        page.page.wait_for_selector("#aa-question textarea", timeout=30_000)
        page.shot("09-after-login")
        big = tmp_path / "big.txt"
        big.write_text("A big article\n\n" + "word " * 1000, encoding="utf-8")
        page.tab("Add articles")
        page.page.set_input_files("#aa-files input[type=file]", [str(big)])
        page.page.get_by_text("exceed the maximum allowed size").first.wait_for(timeout=10_000)
        page.shot("10-upload-too-large")
        assert page.outside == []
        page.close()
    finally:
        app.stop()
