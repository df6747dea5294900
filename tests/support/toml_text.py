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


def one_asset_scenario(name: str, simulation: str = "paths = 10\nsteps = 4\n",
                       asset_extra: str = "") -> str:
    """The smallest scenario text: one asset (BTC, GBM at 80% vol) and one account holding
    0.1 BTC on 1,000 USD; ``simulation`` is the body of ``[simulation]``, ``asset_extra``
    lines added to the asset before its ``depth_usd``."""
    return (f'name = "{name}"\n[simulation]\n{simulation}[market]\nmodel = "gbm"\n'
            '[[market.assets]]\nsymbol = "BTC"\nprice = 60000.0\nvol = 0.8\n'
            f'{asset_extra}depth_usd = 2.0e7\n[[accounts]]\nid = "a"\n'
            'collateral = { USD = 1000.0 }\npositions = [ { symbol = "BTC", qty = 0.1 } ]\n')


def with_bootstrap(text: str, file: str = "returns.csv") -> str:
    """``text`` with its GBM replaced by a bootstrap of the returns file ``file``."""
    return text.replace('model = "gbm"', f'model = "bootstrap"\n[market.bootstrap]\n'
                        f'file = "{file}"')
