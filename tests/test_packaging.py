"""What the code imports is what pyproject.toml declares.

The tests run with every extra installed, so a package the runtime code imports but only an
extra (or a dependency's dependency) happens to pull in goes unnoticed until a user installs
without extras (issue 10). `.ci/plain-install-check` proves the plain install end to end; this
test names the undeclared import in seconds.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_PACKAGES = ("assistant", "index", "ui", "prompts")
OWN = set(RUNTIME_PACKAGES)


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string (PEP 503)."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = {k: {_name(r) for r in v} for k, v in project["optional-dependencies"].items()}
    return {_name(r) for r in project["dependencies"]}, extras


def _imports(path: Path) -> set[str]:
    """Top-level module names imported anywhere in the file (module level or in functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _third_party_imports() -> dict[str, set[str]]:
    """module -> the files that import it, for every non-stdlib, non-project import."""
    found: dict[str, set[str]] = {}
    for package in RUNTIME_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for module in _imports(path):
                if module in sys.stdlib_module_names or module in OWN or module == "__future__":
                    continue
                found.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_runtime_import_is_a_declared_dependency() -> None:
    """An import in a module that runs without extras must come from a declared dependency;
    only the measuring subpackage (eval extra) and the LLM answerer (llm/llamacpp extras) may
    import what an extra installs."""
    runtime, extras = _declared()
    optional = set().union(*extras.values())
    owners = packages_distributions()
    problems = []
    for module, files in sorted(_third_party_imports().items()):
        dists = {_name(d) for d in owners.get(module, [])}
        if not dists:  # not installed here: an extra's package, named after its module?
            dists = {d for d in optional if d.startswith(_name(module))}
        if dists & runtime:
            continue
        if dists & optional and all(_extra_allowed(f) for f in files):
            continue
        problems.append(
            f"{module} (distribution {sorted(dists) or '?'}) imported by {sorted(files)}"
        )
    assert not problems, "imports not declared in [project].dependencies:\n" + "\n".join(problems)


def _extra_allowed(file: str) -> bool:
    """Files that import an extra's packages only when that feature is asked for."""
    return file.startswith("assistant/evaluation/") or file == "assistant/llm.py"


def test_the_html_loader_dependency_chain_is_declared() -> None:
    """trafilatura (the HTML loader) -> justext imports ``lxml.html.clean``, which lxml ships
    as a separate package since 5.2 and neither trafilatura nor justext declares: it must be a
    dependency of ours, or the plain install cannot index anything."""
    import justext  # noqa: F401  (the import that failed in a plain install)

    runtime, _ = _declared()
    assert "trafilatura" in runtime
    assert "lxml-html-clean" in runtime


def test_eval_extra_holds_what_only_the_tutorial_baseline_imports() -> None:
    runtime, extras = _declared()
    assert {"langchain-chroma", "langchain-text-splitters"} <= extras["eval"]
    assert "langchain-text-splitters" not in runtime  # only the baseline uses it


def _make_recipe(target: str) -> str:
    """The recipe lines of a Makefile target."""
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return "\n".join(recipe)


def test_ci_runs_the_suite_the_soak_loops_and_the_plain_install() -> None:
    """`make test` leaves the soak loops out (it must fit in minutes), `make soak` runs exactly
    them, and `.ci/run` runs both plus the plain-install check."""
    assert '-m "not soak"' in _make_recipe("test")
    assert "-m soak" in _make_recipe("soak")
    assert ".ci/plain-install-check" in _make_recipe("install-check")
    ci = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip().startswith("make ")
    ]
    assert ci == ["make test", "make install-check", "make soak"]
    check = (ROOT / ".ci" / "plain-install-check").read_text(encoding="utf-8")
    assert "everything is on the table" in check and "--no-deps --wheel-dir" in check
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    assert any(m.startswith("soak:") for m in markers["pytest"]["ini_options"]["markers"])
