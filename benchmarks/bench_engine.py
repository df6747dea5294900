"""Engine time per path of built-in scenarios, here and in another checkout of marginsim
timed in the same run (``--against``, for example a worktree of an older commit), with
a check that both replay the same events.

Each tree runs in a process of its own (its own Numba cache under the temporary folder,
compiled before the timing): the same paths (seed 1), the replay timed best of
``--repeat``. Prints ms per path in each tree, their ratio, and whether the event
records, per-path records and counts are bit for bit the same.

Usage::

    git worktree add /tmp/marginsim-old <commit>
    python benchmarks/bench_engine.py october-2025-cascade --against /tmp/marginsim-old
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: run in the tree under test: prints one JSON line per scenario
CHILD = r"""
import hashlib, json, sys, time
import numpy as np
from simulator import load_scenario, prepare
from simulator.margin import replay
from simulator.paths import generate_paths
n_paths, repeat = int(sys.argv[1]), int(sys.argv[2])
for name in sys.argv[3:]:
    sc = load_scenario(name, [f"simulation.paths={n_paths}"])
    p = prepare(sc)
    exo = generate_paths(p.inputs, n_paths, np.random.default_rng(1))
    replay(exo[:2], p.inputs.depth_usd, p.book, p.rules, index=p.index, rng_key=1)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = replay(exo, p.inputs.depth_usd, p.book, p.rules, index=p.index, rng_key=1)
        best = min(best, time.perf_counter() - t0)
    digest = hashlib.sha256(b"".join(a.tobytes() for a in (
        r.ev_i, r.ev_f, r.path_f, r.path_i, r.acct_liquidated, r.acct_bankrupt))).hexdigest()
    print(json.dumps({"scenario": name, "ms_per_path": 1000 * best / n_paths,
                      "events_per_path": len(r.ev_i) / n_paths, "digest": digest}))
"""


def measure(tree: Path, scenarios: list[str], n_paths: int, repeat: int, cache: Path
            ) -> dict[str, dict]:
    """Run :data:`CHILD` in ``tree`` (first on the path: ``python -c`` puts the working
    directory first)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "NUMBA_CACHE_DIR": str(cache)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(n_paths), str(repeat), *scenarios],
                         env=env, cwd=tree, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {row["scenario"]: row for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=["october-2025-cascade"])
    parser.add_argument("--against", type=Path, help="another checkout of marginsim")
    parser.add_argument("--paths", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        here = measure(ROOT, args.scenarios, args.paths, args.repeat, Path(tmp) / "here")
        there = (measure(args.against.resolve(), args.scenarios, args.paths, args.repeat,
                         Path(tmp) / "there") if args.against else {})
    for name in args.scenarios:
        row = here[name]
        line = (f"{name:24s} {row['ms_per_path']:7.2f} ms/path "
                f"({row['events_per_path']:.0f} events a path)")
        if name in there:
            old = there[name]
            same = "same events" if old["digest"] == row["digest"] else "EVENTS DIFFER"
            line += (f"  against {old['ms_per_path']:7.2f} ms/path: "
                     f"{old['ms_per_path'] / row['ms_per_path']:.2f}x faster, {same}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
