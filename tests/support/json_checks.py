"""Finiteness of the JSON outputs (``summary.json``, ``manifest.json``).

:func:`simulator.results.atomic.write_json` writes an infinity as the string ``"inf"`` / ``"-inf"``
and NaN as ``null`` (strict JSON), so parsing alone can no longer reveal a non-finite
number: these checks look for those spellings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: where a non-finite value is legitimate: the scenario echoed in manifest.json (an omitted
#: ``depth_usd`` is an infinitely deep book)
ECHOES = ("scenario", "scenario_resolved")


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"non-finite number literal {name} in a JSON output")


def assert_json_finite(path: Path) -> dict[str, Any]:
    """Assert that ``path`` holds no non-finite number; return its parsed object.

    Fails on an ``Infinity``/``NaN`` literal, on the strings ``"inf"``, ``"-inf"`` and
    ``"nan"``, and on ``null`` (how ``summary.json`` writes a metric that is not finite)
    except where the README has it undefined: a ``stderr`` (the ES of a one-path tail),
    and, in a run without any liquidation, ``cascade_share`` and the
    ``first_liquidation_step_*`` metrics; in a run without ADL, the ADL figures of its fills
    (``adl_overshoot``, ``adl_leverage_*``, ``adl_pnl_mean``, ``adl_in_profit_share``).
    The scenario echoes of a manifest are skipped.
    """
    obj = json.loads(Path(path).read_text(), parse_constant=_refuse_constant)
    undefined: tuple[str, ...] = ()
    liquidated = ((obj.get("metrics") or {}).get("liquidation_prob") or {}).get("estimate")
    if liquidated == 0:  # README: undefined without a liquidation, written as null
        undefined = ("metrics.cascade_share.", "metrics.first_liquidation_step_",
                     "distributions.quantiles.first_liquidation_step.")
    adl = ((obj.get("metrics") or {}).get("adl_prob") or {}).get("estimate")
    if adl == 0:  # outputs.md: figures over ADL fills, undefined without one
        undefined += ("metrics.adl_overshoot.", "metrics.adl_leverage_", "metrics.adl_pnl_mean.",
                      "metrics.adl_in_profit_share.")

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if where == "" and k in ECHOES:
                    continue
                walk(v, f"{where}.{k}" if where else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]")
        elif value is None:
            assert where.endswith("stderr") or where.startswith(undefined), \
                f"{path}: null (a NaN) at {where}"
        elif isinstance(value, str):
            assert value.lower() not in ("inf", "-inf", "nan"), f"{path}: {value} at {where}"
        elif isinstance(value, float):
            assert value == value and abs(value) != float("inf"), f"{path}: {value} at {where}"

    walk(obj, "")
    return obj
