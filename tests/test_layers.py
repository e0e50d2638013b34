"""The layers point one way: ``index/`` never imports ``assistant/`` or ``ui/``, and
``assistant/`` never imports ``ui/`` (but for the CLI, a surface that starts the UI). Read from the source, so a lazy import inside a
function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"index": ("assistant", "ui"), "assistant": ("ui",)}
SURFACES = {"assistant/cli.py"}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_one_way(layer: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        if path.relative_to(ROOT).as_posix() not in SURFACES
        for name in sorted(_imported_modules(path))
        if name.split(".")[0] in FORBIDDEN[layer]
    ]
    assert offenders == []
