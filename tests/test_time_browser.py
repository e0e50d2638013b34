"""The time-aware answer in a real headless browser: the "Answer as of" setting reaches the
answer, and a story that changed is shown with both dates and both citations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest_ui import CHROMIUM, CHROMIUM_ARGS, AppServer, Page

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

STORY = Path(__file__).parent / "dated_story"
QUESTION = "Who is the chief executive of the Valmora port authority?"

if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    base = tmp_path_factory.mktemp("time-ui")
    app = AppServer(base / "assistant-home", base / "app.log", [str(STORY)])
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = Page(browser, app.url, base)
        page.open()
        yield page
        assert page.outside == [], f"requests left the app: {page.outside}"
        page.close()
        browser.close()
    app.stop()


def _card_texts(page: Any) -> list[str]:
    cards = page.locator("#aa-sources .aa-turn").last.locator(".aa-card")
    return [cards.nth(i).inner_text() for i in range(cards.count())]


def test_as_of_setting_and_changed_story_in_the_browser(ui: Page) -> None:
    page = ui.page
    page.get_by_text("Answer settings").click()
    as_of = page.locator("#aa-as-of textarea")

    as_of.fill("2025-09-06")  # before the chief executive changed
    ui.ask(QUESTION)
    answer = ui.last_answer()
    assert answer.startswith("As of 5 Sep 2025"), answer
    assert "Marcus Hale" in answer and "Ingrid Soto" not in answer
    assert all("2025-09-20" not in t and "2025-10-25" not in t for t in _card_texts(page))

    as_of.fill("2025-09-21")  # after: two dated articles, two answers
    ui.ask(QUESTION)
    answer = ui.last_answer()
    assert "On 5 Sep 2025:" in answer and "on 20 Sep 2025:" in answer, answer
    assert "Marcus Hale" in answer and "Ingrid Soto" in answer
    assert page.locator('#aa-chat a[href="#aa-cite-1-1"]').count() == 1
    assert page.locator('#aa-chat a[href="#aa-cite-1-2"]').count() == 1
    cards = _card_texts(page)
    assert len(cards) == 2 and "2025-09-05" in cards[0] and "2025-09-20" in cards[1], cards
    page.locator('#aa-chat a[href="#aa-cite-1-2"]').click()
    active = page.locator(".aa-card.aa-active")
    active.wait_for(state="visible")
    assert "Ingrid Soto" in active.inner_text() and "2025-09-20" in active.inner_text()
    ui.shot("time-01-changed-story")

    as_of.fill("next week")
    ui.ask(QUESTION)
    assert "As of: 'next week' is not a date; use YYYY-MM-DD" in ui.last_answer()
