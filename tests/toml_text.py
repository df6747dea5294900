"""Scenario documents as TOML text, for tests that write scenario files (any value TOML can
hold, NaN and infinities included; tables inline)."""

from __future__ import annotations

import json
import math
from typing import Any


def toml_value(value: Any, ensure_ascii: bool = True) -> str:
    """Render ``value`` as a one-line TOML value (inline tables for tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=ensure_ascii)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v, ensure_ascii) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(k, ensure_ascii=ensure_ascii)} = "
                          f"{toml_value(v, ensure_ascii)}" for k, v in value.items())
        return "{" + items + "}"
    raise TypeError(type(value))


def dumps(document: dict[str, Any], ensure_ascii: bool = True) -> str:
    """Render a scenario document as TOML (one ``key = value`` line per top-level key)."""
    return "".join(f"{json.dumps(k, ensure_ascii=ensure_ascii)} = "
                   f"{toml_value(v, ensure_ascii)}\n" for k, v in document.items())
