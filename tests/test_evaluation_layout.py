"""Measurement lives beside the product (issue 11): its own subpackage, imported one way, only
by the commands that measure, and reading data only from the paths it is given."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "assistant" / "evaluation"


def _internal_imports(path: Path) -> set[str]:
    """``assistant.evaluation.X`` modules that ``path`` imports (anywhere in the file)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            inside = parts[:2] == ["assistant", "evaluation"] and len(parts) > 2
            if inside and (PACKAGE / f"{parts[2]}.py").exists():
                out.add(parts[2])
    return out


def test_the_evaluation_modules_import_each_other_without_a_cycle() -> None:
    graph = {p.stem: _internal_imports(p) - {p.stem} for p in PACKAGE.glob("*.py")}
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        assert node not in path, "import cycle: " + " -> ".join([*path, node])
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node])
        done.add(node)

    for module in sorted(graph):
        visit(module, [])
    assert {"metrics", "datasets", "baseline", "benchmark", "scale", "realtimeqa"} <= set(graph)


def test_no_module_reaches_outside_the_package_for_data_or_code() -> None:
    """No path built from ``__file__`` (the old code read ``../shared/eval/bbc`` and ran
    ``bench/scale.py`` from the checkout): data locations are arguments."""
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert "__file__" not in names, path.name
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
        assert "shared" not in strings, path.name


def test_the_product_commands_do_not_import_the_evaluation_package() -> None:
    """`assistant index/ask/ui` parse and run without loading the measuring code or its extra."""
    code = (
        "import sys\n"
        "from assistant.cli import _parser\n"
        "_parser('ask').parse_args(['ask', 'q'])\n"
        "_parser(None).parse_args(['index', '--sample'])\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('assistant.evaluation', "
        "'langchain_chroma', 'langchain_text_splitters')))\n"
        "assert not bad, bad\n"
        "_parser('eval').parse_args(['eval', 'q.jsonl'])\n"
        "assert 'assistant.evaluation.quality' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
