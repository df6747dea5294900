"""Scale benchmarks of the engine and of whole runs, each beside a reference timed in the
same run.

``paths``    path generation: our kernel vs the plain NumPy way (standard_normal, @ L.T,
             cumsum, exp) on 5 correlated assets x 100,000 paths x 288 steps.
``workload`` a full ``run`` of benchmarks/scenarios/five-asset-2000.toml (same paths,
             2,000 accounts, linear impact, Parquet) vs NumPy generating the paths alone.
``heavy``    the same on benchmarks/scenarios/event-heavy-2000.toml (~170 liquidations a
             path), with ``events/`` whole and empty (``simulation.events = "none"``).
``accounts`` engine (replay) time from 1,000 to 100,000 accounts with rare liquidations
             (low leverage, open interest held constant), indexed vs full scan (every
             account checked at every step and round: the naive cost).

Usage::

    python benchmarks/bench_scale.py paths|workload|heavy|accounts [--paths N] [--jobs J]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from simulator import prepare
from simulator.config.scenario import load_scenario
from simulator.execution.runner import run
from simulator.margin import replay
from simulator.paths import generate_paths, prepare_path_inputs

HERE = Path(__file__).parent
WORKLOAD = HERE / "scenarios" / "five-asset-2000.toml"
#: issue #17's event-heavy book: ~170 liquidations a path
HEAVY = HERE / "scenarios" / "event-heavy-2000.toml"


def numpy_paths(inputs, n_paths, rng):
    """The plain NumPy way, chunked like ours so both fit in memory the same way."""
    chol, drift, scale = inputs.chol[0], inputs.drift_step[0], inputs.diff_scale[0]
    out = []
    for start in range(0, n_paths, 4096):
        n = min(4096, n_paths - start)
        z = rng.standard_normal((n, inputs.steps, inputs.n_assets))
        log_returns = drift + scale * (z @ chol.T)
        prices = np.empty((n, inputs.steps + 1, inputs.n_assets))
        prices[:, 0] = inputs.s0
        prices[:, 1:] = inputs.s0 * np.exp(np.cumsum(log_returns, axis=1))
        out.append(prices[-1, -1, 0])
    return out


def numpy_plain(inputs, n_paths, rng):
    """The plain NumPy way on the whole array at once (as most scripts write it)."""
    chol, drift, scale = inputs.chol[0], inputs.drift_step[0], inputs.diff_scale[0]
    z = rng.standard_normal((n_paths, inputs.steps, inputs.n_assets))
    log_returns = drift + scale * (z @ chol.T)
    del z
    prices = np.empty((n_paths, inputs.steps + 1, inputs.n_assets))
    prices[:, 0] = inputs.s0
    prices[:, 1:] = inputs.s0 * np.exp(np.cumsum(log_returns, axis=1))
    return prices[-1, -1, 0]


def ours_paths(inputs, n_paths, rng):
    out = []
    for start in range(0, n_paths, 4096):
        prices = generate_paths(inputs, min(4096, n_paths - start), rng)
        out.append(prices[-1, -1, 0])
    return out


def _ours_chunk(inputs, start, n_paths):
    """One worker's share: generate chunks of 4,096 paths (as a run does), keep a checksum."""
    rng = np.random.default_rng(start)
    total = 0.0
    for s in range(start, start + n_paths, 4096):
        total += generate_paths(inputs, min(4096, start + n_paths - s), rng)[-1, -1, 0]
    return total


def ours_paths_parallel(inputs, n_paths, jobs):
    from joblib import Parallel, delayed

    share = -(-n_paths // jobs)
    return Parallel(n_jobs=jobs, backend="loky")(
        delayed(_ours_chunk)(inputs, k * share, min(share, n_paths - k * share))
        for k in range(jobs))


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_paths(n_paths: int) -> float:
    inputs = prepare_path_inputs(load_scenario(WORKLOAD))
    generate_paths(inputs, 4, np.random.default_rng(0))
    t_plain = timed(lambda: numpy_plain(inputs, n_paths, np.random.default_rng(1)))
    t_np = timed(lambda: numpy_paths(inputs, n_paths, np.random.default_rng(1)))
    t_ours = timed(lambda: ours_paths(inputs, n_paths, np.random.default_rng(1)))
    cells = n_paths * inputs.steps * inputs.n_assets
    print(f"path generation, {n_paths:,} paths x {inputs.steps} steps x {inputs.n_assets} "
          "assets, one process")
    print(f"  numpy, whole array {t_plain:8.2f} s  {cells / t_plain:14,.0f} asset-steps/s"
          "  (reference: the plain way)")
    print(f"  numpy, chunked     {t_np:8.2f} s  {cells / t_np:14,.0f} asset-steps/s"
          "  (reference: the plain way, cache-friendly)")
    print(f"  marginsim kernel   {t_ours:8.2f} s  {cells / t_ours:14,.0f} asset-steps/s")
    print(f"  speed-up: {t_plain / t_ours:.2f}x vs whole-array numpy, "
          f"{t_np / t_ours:.2f}x vs chunked numpy")
    ours_paths_parallel(inputs, 8192, 2)  # start the two worker processes
    t_par = timed(lambda: ours_paths_parallel(inputs, n_paths, 2))
    print(f"  marginsim, 2 procs {t_par:8.2f} s  {cells / t_par:14,.0f} asset-steps/s")
    print(f"  speed-up on 2 cores: {t_plain / t_par:.2f}x vs whole-array numpy, "
          f"{t_np / t_par:.2f}x vs chunked numpy")
    return t_plain, t_np


def bench_workload(n_paths: int, jobs: int, workload: Path = WORKLOAD,
                   event_rows: tuple[str, ...] = ("all",)) -> None:
    t_plain, t_np = bench_paths(n_paths)
    with tempfile.TemporaryDirectory() as tmp:
        run(load_scenario(workload, ["simulation.paths=50"]), Path(tmp) / "warm")
        for rows in event_rows:
            sc = load_scenario(workload, [f"simulation.paths={n_paths}",
                                          f"simulation.events={rows}"])
            out = Path(tmp) / f"run-{rows}"
            t0 = time.perf_counter()
            result = run(sc, out, jobs=jobs)
            t_run = time.perf_counter() - t0
            size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
            cpu = json.loads((out / "manifest.json").read_text())["timings_seconds"]
            liq = result.summary["metrics"]["n_liquidations_mean"]["estimate"]
            print(f"full run of {workload.name}, events={rows}, jobs={jobs}: {t_run:.2f} s "
                  f"({n_paths / t_run:,.0f} paths/s; {liq:.2f} liquidations per path; "
                  f"{size / 1e6:.1f} MB written)")
            print("  CPU seconds over the workers: " + ", ".join(
                f"{k[:-4]} {v:.1f}" for k, v in cpu.items() if k.endswith("_cpu")))
            print(f"  full run / numpy path generation alone: {t_run / t_plain:.2f}x the "
                  f"time of whole-array numpy, {t_run / t_np:.2f}x the time of chunked numpy")


def bench_accounts(n_paths: int) -> None:
    print(f"engine (replay) time, {n_paths:,} paths x 288 steps x 5 assets, rare liquidations")
    print(f"  {'accounts':>9} {'indexed s':>10} {'full scan s':>12} {'liq/path':>9} {'ratio':>7}")
    for count in (1_000, 10_000, 100_000):
        # rare liquidations: low leverage, and the same total open interest at every count
        median_usd = 20_000.0 * 1_000 / count
        sc = load_scenario(WORKLOAD, [
            f"population.count={count}", f"simulation.paths={n_paths}",
            f'population.notional_usd={{dist="lognormal",median={median_usd},sigma=1.2}}',
            'population.leverage={dist="lognormal",median=2.0,sigma=0.4,min=1.0,max=6.0}'])
        inputs = prepare(sc).inputs
        exo = generate_paths(inputs, n_paths, np.random.default_rng(3))
        times = {}
        for full_scan in (False, True):
            if full_scan and count > 10_000:
                continue
            prep = prepare(sc, full_scan=full_scan)
            book, rules, index = prep.book, prep.rules, prep.index
            replay(exo[:2], inputs.depth_usd, book, rules, index=index)  # compile
            t0 = time.perf_counter()
            res = replay(exo, inputs.depth_usd, book, rules, index=index)
            times[full_scan] = time.perf_counter() - t0
        liq = res.path_i[:, 0].mean()
        full = times.get(True)
        ratio = f"{full / times[False]:6.1f}x" if full else "      -"
        full_s = f"{full:12.2f}" if full else f"{'(skipped)':>12}"
        print(f"  {count:>9,} {times[False]:10.3f} {full_s} {liq:9.3f} {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("paths", "workload", "heavy", "accounts"))
    parser.add_argument("--paths", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if args.what == "paths":
        bench_paths(args.paths or 100_000)
    elif args.what == "workload":
        bench_workload(args.paths or 100_000, args.jobs)
    elif args.what == "heavy":
        bench_workload(args.paths or 100_000, args.jobs, HEAVY, ("all", "liquidations", "none"))
    else:
        bench_accounts(args.paths or 1000)


if __name__ == "__main__":
    main()
