"""The venue design lab's worked comparison: docs/venue-lab.md.

Runs three sweeps of ``october-2025-cascade`` on common random numbers and prints, as
Markdown tables, each policy's figures with their standard errors and their differences
from the first policy, estimated path by path (``sweep.parquet``'s ``_diff`` columns):

1. ADL policies: ``venue.adl_ranking`` = ``profit_leverage`` (the scenario's Hyperliquid
   preset) against ``pro_rata``;
2. mark rules: ``venue.mark_price`` = ``book`` against ``median``;
3. where USDe collateral is priced: ``venue.collateral_price`` = ``book`` against ``index``.

Usage::

    python benchmarks/venue_lab.py [--paths 2000] [--out /tmp/venue-lab] [--jobs 1]
        [--json FILE]

One pass (six points of 2,000 paths) takes a few minutes on one core with a warm cache.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from simulator.sweeps.sweep import sweep

SCENARIO = "october-2025-cascade"
#: (title, key, values) of each comparison
COMPARISONS = (
    ("ADL policy", "venue.adl_ranking", ["profit_leverage", "pro_rata"]),
    ("Mark rule", "venue.mark_price", ["book", "median"]),
    ("Collateral price", "venue.collateral_price", ["book", "index"]),
)
#: (metric, label, scale, unit) shown for every comparison, when the summary has it
METRICS = (
    ("n_liquidations_mean", "liquidations per path", 1.0, ""),
    ("liquidated_notional_mean", "liquidated notional", 1e6, " M USD"),
    ("bad_debt_mean", "bad debt", 1e3, " k USD"),
    ("adl_notional_mean", "ADL notional", 1e6, " M USD"),
    ("adl_overshoot", "ADL overshoot (ADL notional / bad debt covered)", 1.0, "x"),
    ("adl_leverage_mean", "leverage of the ADL'd (mean)", 1.0, "x"),
    ("adl_in_profit_share", "ADL'd in profit", 0.01, " %"),
    ("socialised_loss_mean", "socialised loss", 1e3, " k USD"),
    ("max_cascade_rounds_mean", "cascade rounds (max per path)", 1.0, ""),
)


def _cell(est: Any, se: Any, scale: float) -> str:
    if est is None or not math.isfinite(est):
        return "n/a"
    text = f"{est / scale:,.3g}"
    if se is not None and math.isfinite(se):
        text += f" ± {se / scale:,.2g}"
    return text


def table(title: str, key: str, rows: list[dict[str, Any]]) -> str:
    """A Markdown table: one line per metric, a column per point and the difference."""
    names = [str(r[key]) for r in rows]
    head = f"| {title}: `{key}` | " + " | ".join(f"`{n}`" for n in names) \
        + f" | `{names[-1]}` − `{names[0]}` (paired) |"
    lines = [head, "|" + "---|" * (len(names) + 2)]
    for metric, label, scale, unit in METRICS:
        if metric not in rows[0]:
            continue
        cells = [_cell(r[metric], r.get(f"{metric}_stderr"), scale) for r in rows]
        diff = _cell(rows[-1].get(f"{metric}_diff"), rows[-1].get(f"{metric}_diff_stderr"),
                     scale)
        lines.append(f"| {label}{f' ({unit.strip()})' if unit.strip() else ''} | "
                     + " | ".join(cells) + f" | {diff} |")
    return "\n".join(lines)


def main() -> None:
    """Run the comparisons and print their tables."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/venue-lab"))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()
    found: dict[str, list[dict[str, Any]]] = {}
    for title, key, values in COMPARISONS:
        res = sweep(SCENARIO, [(key, values)], overrides=[f"simulation.paths={args.paths}"],
                    out_dir=args.out / key.split(".")[-1], jobs=args.jobs,
                    force=(args.out / key.split(".")[-1]).exists())
        found[key] = res.rows
        print(f"\n{SCENARIO}, {args.paths:,} paths, seed of the scenario\n")
        print(table(title, key, res.rows))
    if args.json is not None:
        args.json.write_text(json.dumps(found, indent=1, default=str))


if __name__ == "__main__":
    main()
