"""Article Assistant: answers over a collection of news articles, every claim cited.

Public API (nothing heavy is imported until used)::

    from assistant import answer
    result = answer("What did Bessent threaten?")
    print(result.text, [c.quote for c in result.citations])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assistant.errors import AssistantError, ConfigError, IndexMismatchError, StoreUnavailableError
from assistant.settings import Settings
from assistant.types import NO_ANSWER, Answer, Citation

if TYPE_CHECKING:
    from assistant.api import (
        answer,
        index_status,
        list_articles,
        stream_answer,
        sync_articles,
    )
    from assistant.chain import build_chain
    from assistant.retrieval import HybridRetriever
    from index.store import Index

__all__ = [
    "NO_ANSWER",
    "Answer",
    "AssistantError",
    "Citation",
    "ConfigError",
    "HybridRetriever",
    "Index",
    "IndexMismatchError",
    "Settings",
    "StoreUnavailableError",
    "answer",
    "build_chain",
    "index_status",
    "list_articles",
    "stream_answer",
    "sync_articles",
]

_LAZY = {
    "answer": "assistant.api",
    "stream_answer": "assistant.api",
    "sync_articles": "assistant.api",
    "index_status": "assistant.api",
    "list_articles": "assistant.api",
    "build_chain": "assistant.chain",
    "HybridRetriever": "assistant.retrieval",
    "Index": "index.store",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'assistant' has no attribute {name!r}")
