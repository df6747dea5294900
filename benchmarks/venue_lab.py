"""The venue design lab's worked comparison: docs/venue-lab.md.

Runs two sweeps of ``october-2025-cascade`` on common random numbers and prints, as
Markdown tables, each policy's figures with their standard errors and their differences
from the first policy, estimated path by path (``sweep.parquet``'s ``_diff`` columns):

1. ADL policies: ``venue.adl_ranking`` = ``profit_leverage`` (the scenario's Hyperliquid
   preset), ``bybit`` and ``pro_rata``, 500 paths;
2. mark rules: ``venue.mark_price`` = ``book`` against ``median``, 2,000 paths.

Usage::

    python benchmarks/venue_lab.py [--paths N] [--out /tmp/venue-lab] [--jobs 1]
        [--json FILE]

One pass takes about five minutes on one core with a warm cache, most of it the pro-rata
policy's fills.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from simulator.sweeps.sweep import sweep

SCENARIO = "october-2025-cascade"
#: (title, key, values, paths) of each comparison (the pro-rata policies make one fill per
#: profitable opposite position, about 100,000 a path here: fewer paths, small chunks)
COMPARISONS = (
    ("ADL policy", "venue.adl_ranking", ["profit_leverage", "bybit", "pro_rata"], 500),
    ("Mark rule", "venue.mark_price", ["book", "median"], 2000),
)
#: (metric, label, scale, unit) shown for every comparison, when the summary has it
METRICS = (
    ("n_liquidations_mean", "liquidations per path", 1.0, ""),
    ("liquidated_notional_mean", "liquidated notional", 1e6, " M USD"),
    ("bad_debt_mean", "bad debt", 1e3, " k USD"),
    ("adl_notional_mean", "ADL notional", 1e6, " M USD"),
    ("adl_overshoot", "ADL overshoot (ADL notional / bad debt covered)", 1.0, "x"),
    ("adl_covered_mean", "bad debt covered by ADL", 1e3, " k USD"),
    ("adl_leverage_mean", "leverage of the ADL'd (mean)", 1.0, "x"),
    ("adl_leverage_median_mean", "leverage of the ADL'd (median)", 1.0, "x"),
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


def table(title: str, key: str, rows: list[dict[str, Any]], diff: bool = False) -> str:
    """A Markdown table: a line per point, a column per metric (estimate ± standard
    error), or with ``diff`` each point's difference from the first, paired path by path."""
    metrics = [m for m in METRICS if (f"{m[0]}_diff" if diff else m[0]) in rows[0]]
    head = f"| {title} (`{key}`) | " + " | ".join(
        f"{label}{f' ({unit.strip()})' if unit.strip() else ''}"
        for _, label, _, unit in metrics) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 1)]
    for r in rows[1:] if diff else rows:
        name = f"`{r[key]}` − `{rows[0][key]}`" if diff else f"`{r[key]}`"
        cells = [_cell(r[f"{m}_diff"], r[f"{m}_diff_stderr"], scale) if diff
                 else _cell(r[m], r.get(f"{m}_stderr"), scale) for m, _, scale, _ in metrics]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Run the comparisons and print their tables."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=0, help="paths of every sweep (default: "
                    "500 for the ADL policies, 2,000 for the mark rules)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/venue-lab"))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()
    found: dict[str, list[dict[str, Any]]] = {}
    for title, key, values, paths in COMPARISONS:
        paths = args.paths or paths
        res = sweep(SCENARIO, [(key, values)], overrides=[f"simulation.paths={paths}",
                                                          "simulation.chunk_paths=50"],
                    out_dir=args.out / key.split(".")[-1], jobs=args.jobs,
                    force=(args.out / key.split(".")[-1]).exists())
        found[key] = res.rows
        print(f"\n{SCENARIO}, {paths:,} paths, seed of the scenario\n", flush=True)
        print(table(title, key, res.rows))
        print()
        print(table(title, key, res.rows, diff=True))
    if args.json is not None:
        args.json.write_text(json.dumps(found, indent=1, default=str))


if __name__ == "__main__":
    main()
