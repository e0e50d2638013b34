"""Helpers for the browser tests: the app in a subprocess, and a recording Playwright page.

Not a pytest conftest (only ``tests/conftest.py`` is); ``test_ui_browser`` imports it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .conftest import ROOT, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ARTIFACTS = ROOT / ".test-artifacts"


class AppServer:
    """`python -m ui.app` in a subprocess, after syncing ``sources`` into its home."""

    def __init__(
        self,
        home: Path,
        log: Path,
        sources: list[str],
        auth: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.home = home
        self.log_path = log
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("ASSISTANT_") and not k.startswith("GRADIO_")
        }
        gradio_tmp = home.parent / "gradio-tmp"
        env.update(
            ASSISTANT_HOME=str(home),
            GRADIO_ANALYTICS_ENABLED="False",
            GRADIO_TEMP_DIR=str(gradio_tmp),
            HF_HUB_OFFLINE="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra_env or {})
        args = ["--host", "127.0.0.1", "--port", str(self.port)]
        if auth:
            args += ["--auth", auth]
        script = (
            "import sys\n"
            "from assistant.api import sync_articles\n"
            "from ui.app import main\n"
            f"sources = {sources!r}\n"
            "if sources:\n"
            "    r = sync_articles(sources, progress=lambda *a: None)\n"
            "    print('SYNCED', r.to_dict(), flush=True)\n"
            f"main({args!r})\n"
        )
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=str(home.parent),
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # up (e.g. asking for a login)
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"the app did not start:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


class Page:
    """A browser page on the app that records every request leaving the app's origin."""

    def __init__(self, browser: Any, base_url: str, shots: Path) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.base_url = base_url
        self.shots = shots
        self.outside: list[str] = []
        self.page.on("request", self._record)

    def _record(self, request: Any) -> None:
        if not request.url.startswith((self.base_url, "data:", "blob:")):
            self.outside.append(request.url)

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(path, ARTIFACTS / path.name)
        return path

    def open(self) -> None:
        self.page.goto(self.base_url)
        self.page.wait_for_selector("#aa-question textarea")

    def tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=name).click()

    def ask(self, question: str, timeout: float = 120_000) -> dict[str, float]:
        """Ask in the Chat tab; wait for the final answer; return timings in seconds."""
        page = self.page
        finished = "Number(document.querySelector('#aa-sources .aa-sources').dataset.finished)"
        turns_before = page.evaluate(f"() => {finished}")
        bots_before = page.locator("#aa-chat [data-testid='bot']").count()
        page.fill("#aa-question textarea", question)
        start = time.monotonic()
        page.click("#aa-ask")
        page.wait_for_function(
            """([n]) => { const bots = document.querySelectorAll("#aa-chat [data-testid='bot']");
                 if (bots.length <= n) return false;
                 const text = bots[bots.length - 1].innerText.trim();
                 return text.length > 0 && !text.startsWith('Searching the articles'); }""",
            arg=[bots_before],
            polling=20,
            timeout=timeout,
        )
        first = time.monotonic() - start
        page.wait_for_function(
            f"([n]) => {finished} > n", arg=[turns_before], polling=20, timeout=timeout
        )
        done = time.monotonic() - start
        return {"first_words_s": round(first, 3), "answer_s": round(done, 3)}

    def last_answer(self) -> str:
        return str(self.page.locator("#aa-chat [data-testid='bot']").last.inner_text())

    def add(self, files: list[Path]) -> str:
        """Upload ``files`` in the Add articles tab, sync them, return the summary text."""
        page = self.page
        self.tab("Add articles")
        page.set_input_files("#aa-files input[type=file]", [str(f) for f in files])
        # The upload to Gradio has finished when the names are listed (as "name\n.ext").
        page.wait_for_function(
            """(names) => {
                 const text = document.querySelector('#aa-files').innerText.replace(/\\n/g, '');
                 return names.every(n => text.includes(n)); }""",
            arg=[f.name for f in files],
            timeout=60_000,
        )
        page.click("#aa-add")
        page.locator("#aa-summary .aa-summary").wait_for(timeout=180_000)
        return str(page.locator("#aa-summary").inner_text())

    def close(self) -> None:
        self.context.close()


def record_timing(name: str, timing: dict[str, float]) -> None:
    print(
        f"\nTIMING {name}: first streamed words {timing['first_words_s']:.2f}s, "
        f"finished answer {timing['answer_s']:.2f}s"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "ui-timings.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = timing
    path.write_text(json.dumps(data, indent=2))
