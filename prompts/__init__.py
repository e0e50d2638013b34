"""Prompt texts as files with named placeholders, so wording changes never touch code.

``render("answer_user", question=..., passages=...)`` fills ``{name}`` placeholders in one
``str.format`` pass. Values are inserted verbatim and never re-parsed, so braces inside an
article ("{question}") cannot reach the template; a template that names a placeholder nobody
supplied (or is given one it never uses) is a bug and raises at once rather than sending a
half-filled prompt to a model. Literal braces in a prompt file are written ``{{`` and ``}}``.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from importlib.resources import files

__all__ = ["load_prompt", "placeholders", "render"]

_NAME = re.compile(r"[a-z][a-z0-9_]*")


@lru_cache(maxsize=32)
def load_prompt(name: str) -> str:
    """The text of ``prompts/<name>.txt`` (read through importlib.resources, so it works from a
    wheel or a zip as well as from the source tree)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"bad prompt name {name!r}: use lowercase letters, digits and '_'")
    resource = files(__name__).joinpath(f"{name}.txt")
    if not resource.is_file():
        raise FileNotFoundError(f"no prompt named {name!r} (expected prompts/{name}.txt)")
    return resource.read_text(encoding="utf-8")


def placeholders(template: str) -> set[str]:
    """Names of the ``{placeholders}`` in ``template``; only plain names are allowed, because
    attribute access or format specs in a prompt file would be a way to reach into objects."""
    names: set[str] = set()
    for _literal, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ValueError(f"prompt placeholder {{{field}}} must be a plain name")
        names.add(field)
    return names


def render(name: str, **values: object) -> str:
    """``prompts/<name>.txt`` with every placeholder filled from ``values`` (each turned to str)."""
    template = load_prompt(name)
    wanted = placeholders(template)
    missing = wanted - values.keys()
    extra = values.keys() - wanted
    if missing or extra:
        raise KeyError(f"prompt {name!r}: missing {sorted(missing)}, unexpected {sorted(extra)}")
    return template.format_map({key: str(value) for key, value in values.items()})
