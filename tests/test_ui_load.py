"""Many people on one UI: 20 concurrent chat sessions through the app's real Gradio queue.

Each user is a ``gradio_client`` session speaking the same queue protocol the browser page
uses, against the app running as its own process (as `assistant ui` does). The queue is
bounded (``ASSISTANT_UI_QUEUE_SIZE``): a flood past it is refused with a message, the app
stays up and answers again afterwards.
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import SAMPLE
from .conftest_ui import AppServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]
gradio_client = pytest.importorskip("gradio_client")

USERS = 20
QUESTION = "What did Bessent threaten?"


def _client(server: AppServer) -> Any:
    return gradio_client.Client(
        server.url, verbose=False, download_files=False, analytics_enabled=False
    )


def _ask(client: Any, question: str) -> tuple[str, str]:
    """One chat turn; returns the answer text and the sources panel's HTML."""
    conversation, sources, _ = client.predict(
        question, 5, "extractive", [], "", "", "", api_name="/on_ask"
    )
    content = conversation[-1]["content"]
    text = (
        content if isinstance(content, str) else " ".join(part.get("text", "") for part in content)
    )
    return text, sources


def _crowd(server: AppServer, users: int) -> list[tuple[float, tuple[str, str] | Exception]]:
    """``users`` sessions ask at the same moment; each gets (seconds, result or error)."""
    clients = [_client(server) for _ in range(users)]
    barrier = threading.Barrier(users)
    results: list[tuple[float, tuple[str, str] | Exception]] = [(0.0, RuntimeError())] * users

    def user(n: int) -> None:
        barrier.wait(60)
        started = time.monotonic()
        try:
            outcome: tuple[str, str] | Exception = _ask(clients[n], QUESTION)
        except Exception as exc:  # the test inspects what each user saw
            outcome = exc
        results[n] = (time.monotonic() - started, outcome)

    threads = [threading.Thread(target=user, args=(n,)) for n in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return results


@pytest.fixture(scope="module")
def server(sample_app: AppServer) -> AppServer:
    return sample_app  # the session's app over the sample (tests/conftest.py)


def test_twenty_concurrent_ui_users_get_cited_answers(server: AppServer) -> None:
    _ask(_client(server), "warm-up")  # the first question loads the model; not a user's wait
    results = _crowd(server, USERS)
    errors = [outcome for _, outcome in results if isinstance(outcome, Exception)]
    assert errors == [], errors
    for _, outcome in results:
        assert not isinstance(outcome, Exception)
        text, sources = outcome
        assert "[1]" in text, text
        assert "everything is on the table" in sources
    latencies = sorted(seconds for seconds, _ in results)
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    print(
        f"\n{USERS} concurrent UI users: p50 {statistics.median(latencies):.2f} s, "
        f"p95 {p95:.2f} s, max {latencies[-1]:.2f} s"
    )
    assert server.proc.poll() is None


def test_a_flood_past_the_queue_is_refused_and_the_app_recovers(tmp_path: Path) -> None:
    app = AppServer(
        tmp_path / "assistant-home",
        tmp_path / "app.log",
        [str(SAMPLE)],
        extra_env={"ASSISTANT_UI_WORKERS": "1", "ASSISTANT_UI_QUEUE_SIZE": "1"},
    )
    try:
        _ask(_client(app), "warm-up")
        results = _crowd(app, 30)
        refused = [o for _, o in results if isinstance(o, Exception)]
        answered = [o for _, o in results if not isinstance(o, Exception)]
        print(
            f"\n30 users on 1 worker + queue of 1: {len(answered)} answered, {len(refused)} refused"
        )
        assert refused, "30 users on a queue of 1 were all served: the queue is not bounded"
        assert all("queue is full" in str(o).lower() for o in refused), refused
        assert answered and all("[1]" in text for text, _ in answered)
        assert app.proc.poll() is None
        text, sources = _ask(_client(app), QUESTION)  # after the flood: served as normal
        assert "[1]" in text and "everything is on the table" in sources
    finally:
        app.stop()
