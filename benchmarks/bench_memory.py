"""Peak memory against the number of paths: a run of N and of 10 N paths, each in a fresh
process (``--jobs 1``, so every chunk runs in that process), peak RSS compared.

Usage::

    python benchmarks/bench_memory.py [--scenario two-asset-crash] [--paths 2000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

PROBE = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss_mib(scenario: str, paths: int, out: str) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "simulator", "run", scenario, "--paths", str(paths),
           "--jobs", "1", "--quiet", "--out", out]
    t0 = time.perf_counter()
    probe = subprocess.run([sys.executable, "-c", PROBE, *cmd], capture_output=True,
                           text=True, check=True)
    return int(probe.stdout.split()[-1]) / 1024, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="two-asset-crash")
    parser.add_argument("--paths", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        peak_rss_mib(args.scenario, 50, f"{tmp}/warm")  # compile / load the Numba cache
        small, t_small = peak_rss_mib(args.scenario, args.paths, f"{tmp}/small")
        large, t_large = peak_rss_mib(args.scenario, 10 * args.paths, f"{tmp}/large")
    print(f"{args.scenario}: peak RSS {small:,.0f} MiB for {args.paths:,} paths "
          f"({t_small:.1f} s), {large:,.0f} MiB for {10 * args.paths:,} paths "
          f"({t_large:.1f} s)")
    print(f"10x the paths costs {large / small:.2f}x the peak RSS")


if __name__ == "__main__":
    main()
