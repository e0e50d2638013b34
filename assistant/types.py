"""What an answer is: text whose ``[n]`` markers resolve to the citations it carries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: The one phrase that starts every declined answer; prompts and tests share it.
NO_ANSWER = "The indexed articles do not answer this question."


@dataclass(frozen=True)
class Citation:
    """One cited passage: where it comes from and the exact quoted text.

    ``start``/``end`` are character offsets of ``quote`` in the article text, so a UI can
    highlight it in context; ``chunk_id`` names the retrieved chunk it came from.
    """

    n: int
    article_id: str
    title: str
    source: str | None
    published: str | None
    url: str | None
    quote: str
    chunk_id: str
    start: int
    end: int
    #: The passage's retrieval score: reciprocal-rank fusion of its dense and lexical ranks
    #: (higher ranks first). The same meaning in every mode.
    score: float
    passage: str = ""
    passage_start: int = 0
    #: How strongly the extractive answerer rated this quote as the answer (its sentence score,
    #: or the fitted reader's probability); None when an LLM chose the passage.
    support: float | None = None


@dataclass
class Answer:
    """An answer (or a decline) with its citations; ``to_dict()`` is JSON-safe.

    ``short`` is the answer phrase itself ("Kuala Lumpur", "90%"), found inside the first
    quoted sentence; None when the question wants a statement rather than a phrase, when the
    answer is declined, or when an LLM wrote the answer.
    """

    question: str
    text: str
    answered: bool
    citations: list[Citation] = field(default_factory=list)
    mode: str = "extractive"
    short: str | None = None
    #: The date the answer was given as of (ISO), and the window a date in the question named
    #: (ISO start, end; None when it named none). See assistant/dates.py.
    as_of: str | None = None
    window: tuple[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "answered": self.answered,
            "short": self.short,
            "mode": self.mode,
            "as_of": self.as_of,
            "window": list(self.window) if self.window else None,
            "citations": [asdict(c) for c in self.citations],
        }
