"""``--set KEY=VALUE``: overrides applied to a parsed scenario document before validation.

A key is a dotted path (``venue.adl``); a numeric segment indexes an array of tables
(``shocks.0.size``); a value is a TOML value, and a bare word is a string. Keys that the
scenario format does not know are refused by the validation that follows. An error
names a ``--set`` only when that ``--set`` wrote the offending key, a table above it, or
created it (``a`` for ``--set a.b=1`` where the scenario has no ``a``); an error on a table
the scenario file already had is the file's.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from typing import Any

from simulator.config.toml import MAX_DEPTH, check_depth, parse_toml_value
from simulator.errors import ScenarioError


def override_for(key: str, origins: Mapping[str, str]) -> str | None:
    """The ``--set`` to blame for an error on ``key``, if any.

    Parameters
    ----------
    key : str
        The key path of the error (``a.b[0].c`` matches ``a.b.0.c``).
    origins : mapping of str to str
        From :func:`apply_overrides`: each dotted key path that a ``--set`` wrote or
        created on the way to a deeper key, to the last ``--set`` that did.

    Returns
    -------
    str or None
        The ``--set`` that wrote or created ``key`` or a table above it; None when the
        key was in the scenario file (an error on table ``a`` is not blamed on
        ``--set a.b=1`` unless that ``--set`` created ``a``).
    """
    parts = key.replace("[", ".").replace("]", "").split(".")
    for end in range(len(parts), 0, -1):
        setter = origins.get(".".join(parts[:end]))
        if setter is not None:
            return setter
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
    if len(parts) > MAX_DEPTH:
        raise ScenarioError("--set", _shorten(key), f"the key path has {len(parts)} parts; "
                            f"at most {MAX_DEPTH} (a scenario is nested at most 5 deep)")
    raw = raw.strip()
    try:
        value = parse_toml_value(raw, key)
    except tomllib.TOMLDecodeError:
        value = raw
    return parts, value


def _shorten(key: str, limit: int = 160) -> str:
    """A key path cut to ``limit`` characters for a message."""
    return key if len(key) <= limit else key[:limit - 3] + "..."


def apply_overrides(document: dict, overrides: list[str] | tuple[str, ...],
                    origins: dict[str, str] | None = None) -> dict:
    """Return a copy of ``document`` with ``KEY=VALUE`` overrides applied.

    A numeric path segment indexes an array of tables (``shocks.0.size``). Keys that the
    scenario format does not know are refused by the validation that follows.

    Parameters
    ----------
    document : dict
        A parsed scenario; it is not modified.
    overrides : list of str
        ``KEY=VALUE`` strings, applied in order.
    origins : dict of str to str, optional
        Filled with each dotted key path (array indices as numbers) that an override
        wrote, or created as an empty table on the way to a deeper key, mapped to that
        override (see :func:`override_for`).

    Returns
    -------
    dict
    """
    check_depth(document, "<memory>")  # (copy.deepcopy recurses)
    document = copy.deepcopy(document)
    if origins is None:
        origins = {}
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = document
        path: list[str] = []
        for part in parts[:-1]:
            path.append(part)
            where = ".".join(parts[: len(path)])
            if isinstance(node, list):
                if not _is_index(part) or int(part) >= len(node):
                    raise ScenarioError("--set", where, f"index out of range (0..{len(node) - 1})")
                path[-1] = str(int(part))
                node = node[int(part)]
            elif isinstance(node, dict):
                if part not in node:
                    if _is_index(part):
                        raise ScenarioError("--set", where, "no such array in the scenario")
                    node[part] = {}
                    origins[".".join(path)] = text
                node = node[part]
            else:
                raise ScenarioError("--set", where, "is not a table")
        last = parts[-1]
        if isinstance(node, list):
            if not _is_index(last) or int(last) >= len(node):
                raise ScenarioError("--set", ".".join(parts), "index out of range")
            node[int(last)] = value
            last = str(int(last))
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ScenarioError("--set", ".".join(parts), "its parent is not a table")
        written = ".".join([*path, last])
        for stale in [k for k in origins if k.startswith(written + ".")]:
            del origins[stale]  # replaced along with the value that held them
        origins[written] = text
    return document
