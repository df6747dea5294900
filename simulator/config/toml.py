"""TOML parsing with limits: malformed text, huge integers and deep nesting become
:class:`~simulator.errors.ScenarioError` lines, never a traceback or a runaway parser.

A scenario document is nested at most :data:`MAX_DEPTH` tables and arrays deep (a real
one needs five: ``venue.brackets.BTC[0].rate``). Deeper TOML makes :mod:`tomllib` (and
``copy.deepcopy``, and every walk of the document) recurse until Python's recursion limit,
so :func:`parse_toml` turns a :class:`RecursionError` of the parser into one
:class:`~simulator.errors.ScenarioError`, and :func:`check_depth` refuses a parsed document
(or a ``--set`` value, or a document from Python) that is too deep, without recursing,
before anything walks it.
"""

from __future__ import annotations

import json
import tomllib
from typing import Any

from simulator.errors import ScenarioError

#: the deepest nesting of tables and arrays a scenario document may have
MAX_DEPTH = 32


def check_depth(document: Any, source: str, prefix: str = "") -> None:
    """Refuse a document nested more than :data:`MAX_DEPTH` tables and arrays deep.

    The walk uses its own stack, never Python's, so it is safe on any depth.

    Parameters
    ----------
    document : object
        A parsed TOML document, or a value of one.
    source : str
        The file (or ``--set``) for the error.
    prefix : str
        The key path of ``document`` (``""`` for the top level).

    Raises
    ------
    ScenarioError
        Naming the key path at which the document is too deep.
    """
    stack: list[tuple[Any, int, str]] = [(document, 0, prefix)]
    while stack:
        node, depth, path = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth >= MAX_DEPTH:
            shown = path if len(path) <= 160 else path[:157] + "..."
            raise ScenarioError(source, shown or "(top level)", f"nested too deeply: more than "
                                f"{MAX_DEPTH} levels of tables and arrays (a scenario needs "
                                "at most 5)")
        if isinstance(node, dict):
            for key, value in node.items():
                name = key if str(key).isprintable() else json.dumps(key)
                stack.append((value, depth + 1, f"{path}.{name}" if path else str(name)))
        else:
            for i, value in enumerate(node):
                stack.append((value, depth + 1, f"{path}[{i}]"))


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """Parse a scenario's TOML text and check its depth.

    Parameters
    ----------
    text : str
    source : str
        The file, for errors.

    Returns
    -------
    dict

    Raises
    ------
    ScenarioError
        On malformed TOML, an integer too long to read, or nesting deeper than
        :data:`MAX_DEPTH` (which makes the parser itself recurse without bound).
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, "", f"malformed TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(source, "", f"nested too deeply: arrays or inline tables nested "
                            f"hundreds of levels deep (at most {MAX_DEPTH}; a scenario needs "
                            "at most 5)") from None
    except ValueError as exc:  # an integer of thousands of digits, for one
        raise ScenarioError(source, "", f"malformed TOML: {str(exc).splitlines()[0]}") from None
    check_depth(document, source)
    return document


def parse_toml_value(text: str, key: str = "") -> Any:
    """Read ``text`` as one TOML value, with the depth limit of :func:`check_depth`.

    Parameters
    ----------
    text : str
        What follows ``=`` in ``--set KEY=VALUE`` or in a ``--grid`` list item.
    key : str
        The key it is for, named in errors.

    Returns
    -------
    object
        The value.

    Raises
    ------
    tomllib.TOMLDecodeError
        When ``text`` is not one TOML value (callers take it as a bare string).
    ScenarioError
        With source ``--set`` and ``key`` when it is nested too deeply or holds an
        integer too long to read.
    """
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except RecursionError:
        raise ScenarioError("--set", key, f"the value is nested too deeply (at most "
                            f"{MAX_DEPTH} levels of arrays and tables)") from None
    except tomllib.TOMLDecodeError:
        raise
    except ValueError as exc:  # an integer of thousands of digits, for one
        raise ScenarioError("--set", key, f"cannot read the value: "
                            f"{str(exc).splitlines()[0]}") from None
    check_depth(value, "--set", key)
    return value
