"""Printing and saving figures: the side-by-side table and per-question rows (JSON or CSV)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def format_table(
    rows: Sequence[tuple[str, str, str]], ours: dict[str, Any], tutorial: dict[str, Any] | None
) -> str:
    """Ours beside the tutorial's figure; the ratio is ours / tutorial."""
    head = f"{'metric':46} {'ours':>10}"
    lines = [head + (f" {'tutorial':>10} {'ours/tut':>9}" if tutorial is not None else "")]
    for label, key, tutorial_key in rows:
        value = ours.get(key)
        line = f"{label:46} {cell(value):>10}"
        if tutorial is not None:
            other = tutorial.get(tutorial_key)
            ratio = f"{value / other:.2f}x" if isinstance(value, int | float) and other else "-"
            line += f" {cell(other):>10} {ratio:>9}"
        lines.append(line)
    return "\n".join(lines)


def write_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Rows as a JSON list (``.json``) or CSV (anything else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(list(rows), indent=1, ensure_ascii=False), encoding="utf-8")
        return
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["question"])
        writer.writeheader()
        writer.writerows(rows)
