"""What the venue rulebook costs: engine time on the flagship scenario's paths under each
venue rule set, beside the flat-rate engine (the reference) timed in the same run.

Every variant replays the same exogenous paths over the same book; only ``[venue]`` and
``[behaviour]`` change. The time is the best of ``--repeat`` replays (Numba compiled first).

Usage::

    python benchmarks/bench_rules.py [--paths N] [--repeat R]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from simulator import prepare
from simulator.config.scenario import load_scenario, scenario_from_dict
from simulator.margin import replay
from simulator.paths import generate_paths, prepare_path_inputs

VARIANTS = {
    "flat 0.5% (reference)": {},
    "binance-usdm brackets": {"preset": "binance-usdm"},
    "hyperliquid (tiers, 20% slices, backstop)": {"preset": "hyperliquid"},
    "dydx-v4 (incremental, per-round caps)": {"preset": "dydx-v4"},
    "flat + margin calls (top-up)": {"_behaviour": {"margin_call_ratio": 1.5,
                                                    "answer_probability": 0.5,
                                                    "delay_steps": 3}},
    "flat + premium funding every 8 h": {"funding": "premium", "funding_rate": 0.0001},
}


def scenario_with(base, venue_changes):
    doc = dict(base.document)
    venue = dict(doc.get("venue", {}))
    behaviour = venue_changes.pop("_behaviour", None) if venue_changes else None
    if "preset" in (venue_changes or {}):
        venue = {k: v for k, v in venue.items()
                 if k in ("margin_mode", "insurance_fund_usd", "max_cascade_rounds")}
    venue.update(venue_changes or {})
    doc["venue"] = venue
    if behaviour:
        doc["behaviour"] = behaviour
    return scenario_from_dict(doc, source=base.source)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    base = load_scenario("two-asset-crash")
    inputs = prepare_path_inputs(base)
    exo = generate_paths(inputs, args.paths, np.random.default_rng(7))
    book = prepare(base).book
    print(f"two-asset-crash: {args.paths} paths x {base.simulation.steps} steps, "
          f"{book.n_accounts} accounts ({book.n_units} margin units)")
    print(f"{'rules':44s} {'engine s':>9s} {'vs flat':>8s} {'liq/path':>9s} {'events':>9s}")
    reference = None
    for name, changes in VARIANTS.items():
        sc = scenario_with(base, dict(changes))
        prep = prepare(sc)
        rules, index = prep.rules, prep.index
        replay(exo[:2], inputs.depth_usd, book, rules, index=index)  # compile
        best = np.inf
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            res = replay(exo, inputs.depth_usd, book, rules, index=index, rng_key=1)
            best = min(best, time.perf_counter() - t0)
        reference = reference or best
        n_liq = res.path_i[:, 0].mean()
        print(f"{name:44s} {best:9.3f} {best / reference:8.2f} {n_liq:9.1f} {len(res.ev_i):9d}")


if __name__ == "__main__":
    main()
