"""Griffe extension: the Sphinx roles of the docstrings, as code linked where possible.

The docstrings name objects with Sphinx's roles (``:func:`load_scenario` ``,
``:mod:`~simulator.results.lock` ``, ``:func:`.option_setup.option_context` ``), which
Markdown would print as typed. Each becomes its target in code (``~`` keeps the last name,
as in Sphinx; leading dots go) inside an optional cross-reference: resolved as Python
would from the docstring's scope (the object, its parents, then the absolute path), it is
a link where that object is rendered on an API page and plain code everywhere else, never
a warning.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE = re.compile(
    r":(?:py:)?(?:func|class|mod|meth|attr|data|exc|obj|const|type):`(~?)([^`<>]+)`")


def _find(collection: Any, path: str) -> str | None:
    """The canonical path of ``path`` in ``collection``, or None when it is not there."""
    try:
        obj = collection[path]
    except Exception:  # noqa: BLE001 - KeyError, alias resolution errors, bad paths
        return None
    if obj.is_alias:
        try:
            return obj.final_target.path
        except Exception:  # noqa: BLE001 - an alias of something outside the package
            return None
    return obj.path


def _candidates(obj: Any, target: str) -> list[str]:
    if target.startswith("."):
        module = obj.module
        base = module.path if module.is_init_module else module.parent.path
        dots = len(target) - len(target.lstrip("."))
        for _ in range(dots - 1):
            base = base.rpartition(".")[0]
        return [f"{base}.{target.lstrip('.')}"]
    scopes, scope = [], obj
    while scope is not None:
        scopes.append(f"{scope.path}.{target}")
        scope = scope.parent
    return [*scopes, target]


def _rewrite(obj: Any, collection: Any, text: str) -> str:
    def fix(match: re.Match[str]) -> str:
        tilde, target = match.group(1), match.group(2).strip()
        shown = target.lstrip(".")
        if tilde:
            shown = shown.rpartition(".")[2]
        code = f"<code>{html.escape(shown)}</code>"
        for candidate in _candidates(obj, target):
            if (found := _find(collection, candidate)) is not None:
                return f'<autoref identifier="{html.escape(found)}" optional>{code}</autoref>'
        return code

    return _ROLE.sub(fix, text)


def _walk(obj: Any, collection: Any, seen: set[int]) -> None:
    if obj.is_alias or id(obj) in seen:
        return
    seen.add(id(obj))
    if obj.docstring is not None:
        obj.docstring.value = _rewrite(obj, collection, obj.docstring.value)
    for member in obj.members.values():
        _walk(member, collection, seen)


class SphinxRoles(griffe.Extension):
    """Rewrite the roles of every docstring of a package once it is loaded."""

    def on_package(self, *, pkg: Any, loader: Any, **_: Any) -> None:
        _walk(pkg, loader.modules_collection, set())


if not hasattr(griffe.Extension, "on_package"):  # older griffe: the same event, older name
    SphinxRoles.on_package_loaded = SphinxRoles.on_package  # type: ignore[attr-defined]
