"""Start-up time of the command line: what a user waits for before anything runs.

Times, in fresh interpreters, ``import simulator``, ``marginsim --help``,
``marginsim scenarios`` and ``marginsim run --help`` against the reference ``python -c
pass`` (the interpreter's own start) and ``python -c "import numpy"``, taking the best of
``--repeat`` runs, and prints each with its ratio to the reference. Target (issue #16):
``--help`` and ``scenarios`` under 0.3 s.

Usage::

    python benchmarks/bench_startup.py [--repeat 7] [--repo PATH ...]

``--repo`` times another checkout too (for example the code before a change, checked out
with ``git worktree add /tmp/base <commit>``), through ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

CASES = {
    "python -c pass (reference)": ["-c", "pass"],
    "python -c 'import numpy'": ["-c", "import numpy"],
    "import simulator": ["-c", "import simulator"],
    "marginsim --help": ["-m", "simulator", "--help"],
    "marginsim scenarios": ["-m", "simulator", "scenarios"],
    "marginsim run --help": ["-m", "simulator", "run", "--help"],
}


def best_seconds(args: list[str], repo: Path, repeat: int) -> float:
    """Best wall time of ``python ARGS`` over ``repeat`` runs, with ``repo`` first on the
    import path."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, *args], env=env, cwd=repo, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--repo", type=Path, action="append", default=[],
                        help="another checkout to time as well")
    args = parser.parse_args()
    for repo in [HERE, *args.repo]:
        print(f"{repo}  (best of {args.repeat})")
        reference = best_seconds(CASES["python -c pass (reference)"], repo, args.repeat)
        for name, case in CASES.items():
            seconds = best_seconds(case, repo, args.repeat)
            print(f"  {name:<28} {seconds:6.3f} s   {seconds / reference:5.1f}x reference")


if __name__ == "__main__":
    main()
