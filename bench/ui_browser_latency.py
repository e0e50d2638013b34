"""The same two events as ``ui_latency.py``, timed in a real browser (headless Chromium):
from a keystroke in the article search to the table showing its result, and, while an answer
streams into a long conversation, how many chat messages the page touches per fragment and
how long the main thread is blocked.

The app runs in this process with the fake embedder and a fake answer stream (``--fragments``
deltas, ``--delay`` seconds apart), so only the UI is measured. Works on the code before and
after the changes:

    PYTHONPATH=$PWD .venv/bin/python bench/ui_browser_latency.py --articles 2000 --turns 20
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ui_latency import write_corpus

CHROMIUM = "/usr/bin/chromium"
FINISHED = "Number(document.querySelector('#aa-sources .aa-sources').dataset.finished)"
OBSERVE = """() => {
  window.__aa = {touched: [], long: 0};
  const chat = document.querySelector('#aa-chat');
  new MutationObserver((records) => {
    const rows = new Set();
    for (const r of records) {
      const node = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      const row = node && node.closest("[data-testid='bot'], [data-testid='user']");
      if (row) rows.add(row);
    }
    if (rows.size) window.__aa.touched.push(rows.size);
  }).observe(chat, {subtree: true, childList: true, characterData: true, attributes: true});
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__aa.long += e.duration;
  }).observe({type: 'longtask', buffered: false});
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--fragments", type=int, default=80)
    parser.add_argument("--delay", type=float, default=0.02)
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    import assistant.api as api
    from assistant.settings import Settings
    from assistant.types import Answer, Citation
    from ui.app import launch

    def cite(n: int) -> Citation:
        passage = " ".join(
            random.choice(["harbour", "ferry", "storm", "council", "vote"]) for _ in range(90)
        )
        return Citation(n, f"a{n}", f"Title {n}", "BBC", "2025-01-02", None, passage[50:150],
                        f"c{n}", 50, 150, 0.5, passage, 0)  # fmt: skip

    def stream(question: str, history: Any = None, **kwargs: Any) -> Iterator[Any]:
        many = question.startswith("Long")
        for i in range(args.fragments if many else 3):
            if many:
                time.sleep(args.delay)
            yield f"word{i} "
        text = " ".join(f"Sentence {n} about the harbour and the ferry [{n}]." for n in range(1, 6))
        yield Answer(question, text, True, [cite(n) for n in range(1, 6)])

    api.stream_answer = stream  # type: ignore[assignment]
    with tempfile.TemporaryDirectory(prefix="ui-bench-") as tmp:
        settings = Settings(home=Path(tmp) / "home", embedding_model="fake")
        write_corpus(Path(tmp) / "corpus", args.articles, random.Random(1))
        api.sync_articles([str(Path(tmp) / "corpus")], settings=settings, progress=lambda *a: None)
        port = free_port()
        demo = launch(settings, host="127.0.0.1", port=port, block=False)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_selector("#aa-question textarea")
                figures = measure(page, args)
                browser.close()
        finally:
            demo.close()
    print(json.dumps(figures))
    return 0


def measure(page: Any, args: argparse.Namespace) -> dict[str, Any]:
    for t in range(args.turns):  # the conversation so far
        page.fill("#aa-question textarea", f"Question {t}?")
        page.click("#aa-ask")
        page.wait_for_function(f"() => {FINISHED} > {t}", timeout=60_000)
    page.evaluate(OBSERVE)
    start = time.perf_counter()
    page.fill("#aa-question textarea", "Long answer please?")
    page.click("#aa-ask")
    page.wait_for_function(f"() => {FINISHED} > {args.turns}", timeout=120_000)
    stream_s = time.perf_counter() - start
    observed = page.evaluate("() => window.__aa")
    touched = observed["touched"]
    out: dict[str, Any] = {
        "stream_wall_s": round(stream_s, 2),
        "stream_ideal_s": round(args.fragments * args.delay, 2),
        "chat_updates": len(touched),
        "messages_touched_per_update_median": statistics.median(touched) if touched else 0,
        "messages_touched_per_update_max": max(touched) if touched else 0,
        "main_thread_long_tasks_ms": round(observed["long"], 1),
    }

    page.get_by_role("tab", name="Indexed articles").click()
    page.wait_for_selector("#aa-table")
    page.wait_for_function(
        "() => document.querySelector('#aa-table').innerText.includes('.txt')", timeout=60_000
    )
    times: list[float] = []
    typed: list[float] = []  # a busy page makes the keys themselves lag
    box = page.locator("#aa-search textarea")
    for query in ("a00017", "a01234", "a00500", "a01998", "a00003"):
        box.fill("")
        page.wait_for_function(
            "() => document.querySelector('#aa-table').innerText.split('.txt').length > 10",
            timeout=30_000,
        )
        page.wait_for_timeout(500)
        typing = time.perf_counter()
        box.press_sequentially(query, delay=80)  # typed as a person types (0.48 s of keys)
        typed.append((time.perf_counter() - typing) * 1000)
        start = time.perf_counter()  # from the last key to its result on screen
        page.wait_for_function(
            """(q) => { const t = document.querySelector('#aa-table').innerText;
                        return t.includes(q + '.txt') && t.split('.txt').length <= 3; }""",
            arg=query,
            polling="raf",
            timeout=30_000,
        )
        times.append((time.perf_counter() - start) * 1000)
    out["typing_6_keys_ms_median"] = round(statistics.median(typed), 1)
    out["last_key_to_result_ms_median"] = round(statistics.median(times), 1)
    out["last_key_to_result_ms_max"] = round(max(times), 1)
    for key, value in out.items():
        print(f"{key:40} {value}")
    return out


if __name__ == "__main__":
    sys.exit(main())
