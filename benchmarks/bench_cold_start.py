"""Cold start: a first ``marginsim run`` (every kernel compiled) against the same run warm
(every kernel loaded from the cache), each in a fresh process, as a new user meets them.

The cold run gets an empty ``NUMBA_CACHE_DIR`` of its own; the warm runs reuse it. Wall
times include Python's start-up, the imports, the run and its files. Prints, per
scenario, the cold and warm (best of ``--repeat``) wall times and their ratio.

Usage::

    python benchmarks/bench_cold_start.py [two-asset-crash option-sellers ...] [--jobs J]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed_run(scenario: str, cache: Path, out: Path, jobs: int) -> float:
    """Wall seconds of ``marginsim run scenario`` in a fresh process."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "simulator", "run", scenario, "--out", str(out), "--force",
           "--quiet", "--jobs", str(jobs)]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=["two-asset-crash", "option-sellers"])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for scenario in args.scenarios:
        with tempfile.TemporaryDirectory() as tmp:
            cache, out = Path(tmp) / "numba-cache", Path(tmp) / "run"
            cold = timed_run(scenario, cache, out, args.jobs)
            warm = min(timed_run(scenario, cache, out, args.jobs) for _ in range(args.repeat))
        print(f"{scenario:24s} cold {cold:6.1f} s  warm {warm:5.1f} s  "
              f"cold / warm {cold / warm:4.1f}x  (--jobs {args.jobs})", flush=True)


if __name__ == "__main__":
    main()
