"""End-to-end benchmark: marginsim against plain NumPy, timed in the same run.

Prints, for the same number of paths, steps and assets:

1. path generation: our Numba kernel vs the plain NumPy way (``standard_normal``,
   ``@ L.T``, ``cumsum``, ``exp``);
2. a full ``run`` of a scenario (paths + margin engine + Parquet + aggregation) vs NumPy
   generating the paths alone;

as paths/s and asset-steps/s (paths x steps x assets per second), and the ratios.

Usage::

    python benchmarks/bench_end_to_end.py [--scenario two-asset-crash] [--paths 4000]
                                          [--jobs 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from simulator.config.scenario import load_scenario
from simulator.execution.runner import run
from simulator.paths import generate_paths, prepare_path_inputs


def numpy_paths(s0, drift, scale, chol, n_paths, steps, rng):
    """The plain NumPy way: draw, correlate, cumulate, exponentiate."""
    z = rng.standard_normal((n_paths, steps, len(s0)))
    log_returns = drift + scale * (z @ chol.T)
    out = np.empty((n_paths, steps + 1, len(s0)))
    out[:, 0] = s0
    out[:, 1:] = s0 * np.exp(np.cumsum(log_returns, axis=1))
    return out


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="two-asset-crash")
    parser.add_argument("--paths", type=int, default=4000)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    sc = load_scenario(args.scenario, [f"simulation.paths={args.paths}"])
    inputs = prepare_path_inputs(sc)
    n, steps, n_assets = args.paths, inputs.steps, inputs.n_assets
    asset_steps = n * steps * n_assets
    chol = inputs.chol[0]
    drift = inputs.drift_step[0]
    scale = inputs.diff_scale[0]

    generate_paths(inputs, 10, np.random.default_rng(0))  # compile / load the cache
    t_ours = best_of(lambda: generate_paths(inputs, n, np.random.default_rng(1)), args.repeat)
    t_numpy = best_of(lambda: numpy_paths(inputs.s0, drift, scale, chol, n, steps,
                                          np.random.default_rng(1)), args.repeat)

    with tempfile.TemporaryDirectory() as tmp:
        run(load_scenario(args.scenario, ["simulation.paths=20"]), Path(tmp) / "warm")
        runs = iter(range(1000))
        t_run = best_of(lambda: run(sc, Path(tmp) / f"r{next(runs)}", jobs=args.jobs),
                        args.repeat)

    print(f"workload: {args.scenario}, {n:,} paths x {steps} steps x {n_assets} assets, "
          f"jobs={args.jobs}, best of {args.repeat}")
    print(f"{'':34}{'seconds':>9}{'paths/s':>12}{'asset-steps/s':>16}")
    for label, t in [("numpy path generation (reference)", t_numpy),
                     ("marginsim path generation", t_ours),
                     ("marginsim full run", t_run)]:
        print(f"{label:34}{t:9.3f}{n / t:12,.0f}{asset_steps / t:16,.0f}")
    print(f"path generation speed-up vs numpy: {t_numpy / t_ours:.2f}x")
    print(f"full run / numpy path generation alone: {t_run / t_numpy:.2f}x the time")


if __name__ == "__main__":
    main()
