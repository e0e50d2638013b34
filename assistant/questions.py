"""Question hygiene: what a question must look like before it reaches retrieval."""

from __future__ import annotations

import re
import unicodedata

from assistant.errors import BadQuestionError

MAX_QUESTION_CHARS = 2000


def clean_question(question: str) -> str:
    """Strip control characters and excess whitespace; refuse empty questions; a very long
    question is cut to its first ``MAX_QUESTION_CHARS`` characters (best effort, not an error)."""
    if not isinstance(question, str):
        raise BadQuestionError("the question must be text")
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in question)
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        raise BadQuestionError("the question is empty; ask something about the indexed articles")
    return text[:MAX_QUESTION_CHARS]
