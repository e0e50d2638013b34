"""Question sets for `assistant eval`: our JSONL format (the BBC dev set and the like).

Each line: ``question``, ``answer``, ``article`` (relative to the questions file's folder) and
``evidence``; unanswerable ones carry ``"unanswerable": true``. The gold article is loaded
with our own loaders so its evidence can be located by offset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError, LoadError
from assistant.evaluation.metrics import Question, find_span


def load_questions(path: Path, limit: int | None = None) -> list[Question]:
    """Parse the JSONL file and load each gold article's text to locate its evidence."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read questions file {path}: {exc.strerror or exc}") from exc
    out: list[Question] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text = str(row["question"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} line {n}: not a question record ({exc})") from exc
        if row.get("unanswerable") or row.get("answer") is None:
            out.append(Question(text))
        else:
            out.append(_gold_question(path.parent, row, text))
        if limit and len(out) >= limit:
            break
    return out


def _gold_question(folder: Path, row: dict[str, Any], text: str) -> Question:
    from index.loaders import load_file

    article, evidence = row.get("article"), row.get("evidence")
    gold_text = span = None
    if article:
        try:
            loaded = load_file(folder / article, max_bytes=50 * 1024 * 1024).articles
        except LoadError:
            loaded = []
        if loaded:
            gold_text = loaded[0].text
            span = find_span(gold_text, evidence) if evidence else None
    return Question(text, str(row["answer"]), article, evidence, gold_text, span)
