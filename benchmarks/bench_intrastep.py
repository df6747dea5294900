"""What the intrastep bridge costs and what it finds: a day at hourly steps with
``simulation.intrastep = "bridge"`` against the same hourly run without it, and against
much finer steps (5 minutes and 1 minute, the reference a coarse run should approach), all
in the same run, the same seed. The scenario should have no scheduled shocks (their step
numbers would move with the step length); impact is turned off, so that only the
monitoring differs (the impact's half-life is counted in steps).

Each case runs in this process, after an untimed warm-up of the kernels, with ``--jobs``
workers. Prints per case the wall time, the liquidations a path, the share of paths with
one, and the mean bad debt (with standard errors), then the ratios.

Usage::

    python benchmarks/bench_intrastep.py [--paths 4000] [--jobs 2] [--scenario calm-baseline]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from simulator import load_scenario, run

#: (label, steps over the day, intrastep)
CASES = (("hourly", 24, "none"), ("hourly + bridge", 24, "bridge"),
         ("5-minute", 288, "none"), ("5-minute + bridge", 288, "bridge"),
         ("1-minute", 1440, "none"))


def one(scenario: str, steps: int, intrastep: str, paths: int, jobs: int, out: Path
        ) -> tuple[float, dict]:
    """Wall seconds and summary metrics of one run."""
    sc = load_scenario(scenario, [f"simulation.paths={paths}", f"simulation.steps={steps}",
                                  f"simulation.intrastep={intrastep}",
                                  "simulation.chunk_paths=500", "liquidity.impact=none"])
    t0 = time.perf_counter()
    run(sc, out, jobs=jobs)
    wall = time.perf_counter() - t0
    return wall, json.loads((out / "summary.json").read_text())["metrics"]


def _fmt(metrics: dict, name: str, scale: float = 1.0, digits: int = 1) -> str:
    """``estimate ± stderr`` of a summary metric."""
    m = metrics[name]
    return f"{m['estimate'] * scale:.{digits}f} ± {m['stderr'] * scale:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="calm-baseline")
    parser.add_argument("--paths", type=int, default=4000)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for steps, intrastep in ((24, "bridge"), (24, "none")):  # warm-up: compile, load,
            one(args.scenario, steps, intrastep, 1000, args.jobs,  # start the workers
                Path(tmp) / f"warm-{intrastep}")
        for label, steps, intrastep in CASES:
            rows[label] = one(args.scenario, steps, intrastep, args.paths, args.jobs,
                              Path(tmp) / label.replace(" ", ""))
    print(f"{args.scenario}, {args.paths:,} paths, --jobs {args.jobs}, seed of the scenario")
    print(f"{'case':20s} {'wall s':>7s} {'liquidations/path':>20s} {'P(any)':>16s} "
          f"{'bad debt mean USD':>24s}")
    for label, (wall, m) in rows.items():
        print(f"{label:20s} {wall:7.2f} {_fmt(m, 'n_liquidations_mean', 1, 3):>20s} "
              f"{_fmt(m, 'liquidation_prob', 100, 2) + '%':>16s} "
              f"{_fmt(m, 'bad_debt_mean', 1, 0):>24s}")
    base, bridged = rows["hourly"][0], rows["hourly + bridge"][0]
    print(f"hourly: the bridge costs {bridged / base:.2f}x the wall time of the plain run")
    fine = rows["1-minute"][1]["n_liquidations_mean"]["estimate"]
    for label in ("hourly", "hourly + bridge", "5-minute", "5-minute + bridge"):
        got = rows[label][1]["n_liquidations_mean"]["estimate"]
        print(f"{label}: {got / fine:.3f}x the liquidations a path of 1-minute steps")


if __name__ == "__main__":
    main()
