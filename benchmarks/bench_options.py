"""What options cost the engine: replay time on a book where a share of the accounts also
hold an option (``[population.options]``), beside the same book without the options (the
perpetual-only reference), timed in the same run on the same paths.

The book is ``option-sellers`` (3,000 accounts, 288 five-minute steps, a gap and a vol
spike) or any scenario with a ``[population]``; the option share, the option margin rule
and the number of paths can be changed. The time is the best of ``--repeat`` replays of the
engine alone (Numba compiled first); the full scan (every unit checked at every round,
options priced every time) shows what the price x time boxes save.

Usage::

    python benchmarks/bench_options.py [--scenario NAME] [--share 0.2] [--paths N]
                                       [--repeat R] [--rule standard|risk_matrix]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from simulator import prepare
from simulator.config.scenario import load_scenario
from simulator.margin import replay
from simulator.paths import generate_paths, prepare_path_inputs


def timed(sc, exo, inputs, repeat: int, full_scan: bool = False):
    """Best engine time of ``repeat`` replays of ``exo`` over the book of ``sc``."""
    prep = prepare(sc, full_scan=full_scan)
    book, rules, index = prep.book, prep.rules, prep.index
    replay(exo[:2], inputs.depth_usd, book, rules, index=index)  # compile
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = replay(exo, inputs.depth_usd, book, rules, index=index)
        best = min(best, time.perf_counter() - t0)
    return best, book, res


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="option-sellers")
    parser.add_argument("--share", type=float, default=0.2)
    parser.add_argument("--paths", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rule", default=None, choices=("standard", "risk_matrix"))
    parser.add_argument("--full-scan", action="store_true",
                        help="also time the option book without the index")
    args = parser.parse_args(argv)
    rule = [f"venue.option_margin={args.rule}"] if args.rule else []
    base = load_scenario(args.scenario, ["population.options.share=0.0", *rule])
    with_options = load_scenario(args.scenario,
                                 [f"population.options.share={args.share}", *rule])
    inputs = prepare_path_inputs(base)
    exo = generate_paths(inputs, args.paths, np.random.default_rng(7))
    ref, book0, res0 = timed(base, exo, inputs, args.repeat)
    opt, book1, res1 = timed(with_options, exo, inputs, args.repeat)
    holders = np.unique(book1.unit_account[book1.pos_unit[book1.pos_kind >= 2]])
    print(f"{args.scenario}: {args.paths} paths x {base.simulation.steps} steps, "
          f"{book1.n_accounts} accounts, {len(holders)} ({len(holders) / book1.n_accounts:.0%})"
          f" with an option, rule {with_options.venue.option_margin}")
    print(f"{'book':34s} {'engine s':>9s} {'per 1000 paths':>15s} {'ratio':>6s} "
          f"{'liq/path':>9s}")
    rows = [("perpetuals only (reference)", ref, res0), ("with options", opt, res1)]
    if args.full_scan:
        full, _, res2 = timed(with_options, exo, inputs, 1, full_scan=True)
        rows.append(("with options, full scan", full, res2))
    for name, secs, res in rows:
        print(f"{name:34s} {secs:9.3f} {1000 * secs / args.paths:15.3f} {secs / ref:6.2f} "
              f"{res.path_i[:, 0].mean():9.1f}")


if __name__ == "__main__":
    main()
