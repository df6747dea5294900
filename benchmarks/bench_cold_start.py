"""Cold start: a first ``marginsim run`` (every kernel compiled) against the same run warm
(every kernel loaded from the cache), each in a fresh process, as a new user meets them.

The cold run gets an empty ``NUMBA_CACHE_DIR`` of its own; the warm runs reuse it. Wall
times include Python's start-up, the imports, the run and its files. Prints, per
scenario, the cold and warm (best of ``--repeat``) wall times and their ratio; with
``--against`` the same for another checkout of marginsim, in the same run.

Usage::

    python benchmarks/bench_cold_start.py [two-asset-crash option-sellers ...] [--jobs J]
        [--paths N] [--set KEY=VALUE ...] [--against ../other-checkout]

A large book with ``--jobs 2`` (its arrays above joblib's 1 MB memory-mapping threshold,
read-only in the workers)::

    python benchmarks/bench_cold_start.py two-asset-crash --jobs 2 --paths 4000 \\
        --set population.count=100000 --set simulation.chunk_paths=1000 \\
        --set 'population.notional_usd={ dist = "lognormal", median = 1500.0, sigma = 1.6,
               min = 3.0, max = 1.5e6 }'
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: this checkout's root
HERE = Path(__file__).resolve().parent.parent


def timed_run(scenario: str, cache: Path, out: Path, jobs: int, extra: list[str],
              tree: Path = HERE) -> float:
    """Wall seconds of ``marginsim run scenario`` in a fresh process, with the
    ``simulator`` package of ``tree``."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "simulator", "run", scenario, "--out", str(out), "--force",
           "--quiet", "--jobs", str(jobs), *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, cwd=tree)
    return time.perf_counter() - t0


def cold_and_warm(scenario: str, jobs: int, repeat: int, extra: list[str], tree: Path
                  ) -> tuple[float, float]:
    """The cold wall time and the best warm one of ``repeat`` runs."""
    with tempfile.TemporaryDirectory() as tmp:
        cache, out = Path(tmp) / "numba-cache", Path(tmp) / "run"
        cold = timed_run(scenario, cache, out, jobs, extra, tree)
        warm = min(timed_run(scenario, cache, out, jobs, extra, tree) for _ in range(repeat))
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=["two-asset-crash", "option-sellers"])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--paths", type=int, default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE")
    parser.add_argument("--against", type=Path, default=None,
                        help="another checkout of marginsim, timed the same way")
    args = parser.parse_args()
    extra = [] if args.paths is None else ["--paths", str(args.paths)]
    for item in args.overrides:
        extra += ["--set", item]
    trees = [("here", HERE)] + ([] if args.against is None else
                                [("against", args.against.resolve())])
    for scenario in args.scenarios:
        for label, tree in trees:
            cold, warm = cold_and_warm(scenario, args.jobs, args.repeat, extra, tree)
            print(f"{scenario:24s} {label:8s} cold {cold:6.1f} s  warm {warm:5.1f} s  "
                  f"cold / warm {cold / warm:4.1f}x  (--jobs {args.jobs})", flush=True)


if __name__ == "__main__":
    main()
