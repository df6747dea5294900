"""``--set KEY=VALUE``: overrides applied to a parsed scenario document before validation.

A key is a dotted path (``venue.adl``); a numeric segment indexes an array of tables
(``shocks.0.size``); a value is a TOML value, and a bare word is a string. Keys that the
scenario format does not know are refused by the validation that follows, and errors
about a key set here name the ``--set`` that set it.
"""

from __future__ import annotations

import copy
import tomllib
from typing import Any

from .errors import ScenarioError


def override_for(key: str, overrides: list[str] | tuple[str, ...]) -> str | None:
    """The last ``--set`` that wrote ``key`` (``a.b[0].c`` matches ``a.b.0.c``) or created
    it on the way to a deeper key (``a`` for ``a.b=1``, where ``a`` was absent), if any."""
    dotted = key.replace("[", ".").replace("]", "")
    for text in reversed(overrides):
        name = text.partition("=")[0].strip()
        if name == dotted or name.startswith(dotted + "."):
            return text
    return None


def _is_index(part: str) -> bool:
    return part.isascii() and part.isdigit()


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``KEY=VALUE`` into a key path and a TOML value."""
    if "=" not in text:
        raise ScenarioError("--set", text, "expected KEY=VALUE, for example venue.adl=false")
    key, _, raw = text.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ScenarioError("--set", key, "expected a dotted key path such as venue.adl")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return parts, value


def apply_overrides(document: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Return a copy of ``document`` with ``KEY=VALUE`` overrides applied.

    A numeric path segment indexes an array of tables (``shocks.0.size``). Keys that the
    scenario format does not know are refused by the validation that follows.
    """
    document = copy.deepcopy(document)
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = document
        for depth, part in enumerate(parts[:-1]):
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not _is_index(part) or int(part) >= len(node):
                    raise ScenarioError("--set", where, f"index out of range (0..{len(node) - 1})")
                node = node[int(part)]
            elif isinstance(node, dict):
                if part not in node:
                    if _is_index(part):
                        raise ScenarioError("--set", where, "no such array in the scenario")
                    node[part] = {}
                node = node[part]
            else:
                raise ScenarioError("--set", where, "is not a table")
        last = parts[-1]
        if isinstance(node, list):
            if not _is_index(last) or int(last) >= len(node):
                raise ScenarioError("--set", ".".join(parts), "index out of range")
            node[int(last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ScenarioError("--set", ".".join(parts), "its parent is not a table")
    return document
