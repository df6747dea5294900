"""Rare-event mode (issue #18) against crude Monte Carlo timed in the same run.

``unbiased`` the flagship's book cut to 300 accounts over 96 steps, where bad debt above
             104,000 USD has a probability of about 1e-2: the weighted estimates of 20,000
             tilted paths (probability, mean bad debt, VaR and ES 99%) against a crude run
             of ``--crude-paths`` (1,000,000) paths, in combined standard errors.
``barrier``  benchmarks/scenarios/barrier-1e-5.toml: one account whose liquidation is a
             discretely monitored barrier of probability 1.0e-5 (BGK closed form): 20,000
             tilted paths against the closed form; crude timed on 200,000 paths.
``fund``     the flagship with a 900,000 USD insurance fund, fund exhaustion about 1e-4:
             20,000 tilted paths; crude timed on 200,000 paths; the variance ratio at the
             same number of paths, p (1 - p) / (n SE**2).
``sobol``    the flagship, 16,384 paths in 16 scrambles of 1,024 (``variance_reduction =
             "sobol"``) against 16,384 crude paths: the variance ratio of the means and of
             VaR / ES 99% of the bad debt, and the agreement of the estimates.

Each reports the time to a 10% relative standard error both ways: tilted, the pilot plus
the run scaled to the paths it needs; crude, ``(1 - p) / (0.01 p)`` paths at its measured
rate. Usage::

    python benchmarks/bench_rare.py unbiased|barrier|fund|sobol|all [--jobs 2]
                                    [--crude-paths N]

Every kernel is compiled (or loaded from the cache) by a small warm-up run first, so no
timing includes compilation.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from simulator.config.scenario import load_scenario
from simulator.execution.runner import run
from simulator.execution.tilting import tune_rare_tilt

HERE = Path(__file__).parent
BARRIER = HERE / "scenarios" / "barrier-1e-5.toml"
SMALL = ["population.count=300", "simulation.steps=96", "simulation.chunk_paths=5000",
         "simulation.events=none"]
BGK_BETA = 0.5825971579390106


def barrier_probability(s0, barrier, vol, t_years, steps):
    """BGK-corrected closed form of a driftless GBM's discretely monitored down barrier."""
    from scipy import stats

    b = math.log(barrier / s0) - BGK_BETA * vol * math.sqrt(t_years / steps)
    nu, sd = -0.5 * vol * vol, vol * math.sqrt(t_years)
    return (stats.norm.cdf((b - nu * t_years) / sd)
            + math.exp(2.0 * nu * b / vol**2) * stats.norm.cdf((b + nu * t_years) / sd))


def timed_run(name, overrides, out, jobs):
    t0 = time.perf_counter()
    res = run(load_scenario(name, overrides), out, jobs=jobs)
    return res, time.perf_counter() - t0


def timed_pilot(name, overrides):
    t0 = time.perf_counter()
    tilt = tune_rare_tilt(load_scenario(name, overrides))
    return tilt, time.perf_counter() - t0


def to_ten_percent(p, se, n, seconds, pilot_seconds, crude_rate):
    """Seconds to a 10% relative error: tilted (pilot + run scaled) and crude."""
    tilted = pilot_seconds + seconds * (se / (0.1 * p)) ** 2
    crude = (1 - p) / (0.01 * p) * crude_rate
    return tilted, crude


def unbiased(tmp, jobs, crude_paths):
    event = "bad_debt>104000"
    crude, t_crude = timed_run("two-asset-crash", [*SMALL, f"simulation.paths={crude_paths}",
                                                   "simulation.seed=1"], tmp / "crude", jobs)
    rare, t_rare = timed_run("two-asset-crash", [*SMALL, "simulation.paths=20000",
                                                 "simulation.seed=2",
                                                 f"simulation.rare_event={event}"],
                             tmp / "rare", jobs)
    bad = pq.read_table(tmp / "crude" / "paths", columns=["bad_debt"]).column(0).to_numpy()
    p = float((bad > 104_000).mean())
    rows = [("P(" + event + ")", (p, math.sqrt(p * (1 - p) / bad.size)),
             tuple(rare.summary["metrics"]["rare_event_prob"].values()))]
    for name in ("bad_debt_mean", "bad_debt_var_99", "bad_debt_es_99", "bad_debt_var_999",
                 "bad_debt_es_999"):
        c, r = crude.summary["metrics"][name], rare.summary["metrics"][name]
        rows.append((name, (c["estimate"], c["stderr"]), (r["estimate"], r["stderr"])))
    print(f"unbiased: crude {crude_paths:,} paths in {t_crude:.1f} s; tilted 20,000 paths "
          f"in {t_rare:.1f} s (pilot included)")
    print(f"{'metric':24s} {'crude':>26s} {'tilted':>26s} {'|diff| / SE':>12s}")
    worst = 0.0
    for name, (ce, cs), (re_, rs) in rows:
        z = abs(ce - re_) / math.hypot(cs, rs)
        worst = max(worst, z)
        print(f"{name:24s} {ce:14.6g} ± {cs:<9.3g} {re_:14.6g} ± {rs:<9.3g} {z:12.2f}")
    print(f"largest difference: {worst:.2f} combined standard errors (target <= 4)")


def barrier(tmp, jobs):
    p_exact = barrier_probability(60_000.0, 49_900.0, 0.8, 1 / 365, 288)
    name = str(BARRIER)
    _, t_pilot = timed_pilot(name, ["simulation.rare_event=liquidation"])
    rare, t_rare = timed_run(name, ["simulation.rare_event=liquidation"], tmp / "rare", jobs)
    crude, t_crude = timed_run(name, ["simulation.paths=200000", "simulation.chunk_paths=20000"],
                               tmp / "crude", jobs)
    p, se = rare.summary["rare_event"]["probability"].values()
    tilted_s, crude_s = to_ten_percent(p, se, 20_000, t_rare - t_pilot, t_pilot,
                                       t_crude / 200_000)
    c = crude.summary["metrics"]["liquidation_prob"]
    print(f"barrier: closed form {p_exact:.4g}; tilted 20,000 paths {p:.4g} ± {se:.3g} "
          f"(relative {se / p:.1%}, target <= 10%; {abs(p - p_exact) / se:.2f} SE from the "
          f"closed form, target <= 4) in {t_rare:.1f} s (pilot {t_pilot:.1f} s)")
    print(f"  crude 200,000 paths: {c['estimate']:.3g} ± {c['stderr']:.3g} in {t_crude:.1f} s")
    print(f"  variance ratio at the same paths: {p * (1 - p) / (20_000 * se**2):,.0f}x")
    print(f"  time to 10% relative error: tilted {tilted_s:.1f} s, crude {crude_s:,.0f} s "
          f"({crude_s / tilted_s:,.0f}x)")


def fund(tmp, jobs):
    sets = ["venue.insurance_fund_usd=900000", "simulation.events=none"]
    rare_sets = [*sets, "simulation.rare_event=fund_depletion", "simulation.paths=20000",
                 "simulation.chunk_paths=2000"]
    _, t_pilot = timed_pilot("two-asset-crash", rare_sets)
    rare, t_rare = timed_run("two-asset-crash", rare_sets, tmp / "rare", jobs)
    crude, t_crude = timed_run("two-asset-crash", [*sets, "simulation.paths=200000",
                                                   "simulation.chunk_paths=10000"],
                               tmp / "crude", jobs)
    r = rare.summary["rare_event"]
    p, se = r["probability"]["estimate"], r["probability"]["stderr"]
    c = crude.summary["metrics"]["insurance_fund_depletion_prob"]
    tilted_s, crude_s = to_ten_percent(p, se, 20_000, t_rare - t_pilot, t_pilot,
                                       t_crude / 200_000)
    print(f"fund: P(fund exhausted) tilted 20,000 paths {p:.4g} ± {se:.3g} (relative "
          f"{se / p:.1%}) in {t_rare:.1f} s (pilot {t_pilot:.1f} s); effective sample size "
          f"in the event {r['effective_sample_size_in_event']:,.0f}")
    print(f"  crude 200,000 paths: {c['estimate']:.3g} ± {c['stderr']:.3g} in {t_crude:.1f} s "
          f"({abs(c['estimate'] - p) / math.hypot(c['stderr'], se):.2f} combined SE apart)")
    print(f"  variance ratio at the same paths: {p * (1 - p) / (20_000 * se**2):,.0f}x "
          "(target >= 100x)")
    print(f"  time to 10% relative error: tilted {tilted_s:.1f} s, crude {crude_s:,.0f} s "
          f"({crude_s / tilted_s:,.0f}x)")


def sobol(tmp, jobs):
    sets = ["simulation.events=none", "simulation.paths=16384", "simulation.chunk_paths=1024"]
    qmc, t_qmc = timed_run("two-asset-crash", [*sets, "simulation.variance_reduction=sobol"],
                           tmp / "sobol", jobs)
    crude, t_crude = timed_run("two-asset-crash", [*sets, "simulation.seed=8"], tmp / "crude",
                               jobs)
    print(f"sobol: 16 scrambles of 1,024 paths in {t_qmc:.1f} s; crude 16,384 paths in "
          f"{t_crude:.1f} s")
    print(f"{'metric':28s} {'sobol':>24s} {'crude':>24s} {'var ratio':>10s} {'|diff|/SE':>10s}")
    for name in ("bad_debt_mean", "liquidated_notional_mean", "n_liquidations_mean",
                 "insurance_fund_end_mean", "bad_debt_var_99", "bad_debt_es_99"):
        q, c = qmc.summary["metrics"][name], crude.summary["metrics"][name]
        ratio = (c["stderr"] / q["stderr"]) ** 2
        z = abs(q["estimate"] - c["estimate"]) / math.hypot(q["stderr"], c["stderr"])
        print(f"{name:28s} {q['estimate']:13,.1f} ± {q['stderr']:<8,.1f} "
              f"{c['estimate']:13,.1f} ± {c['stderr']:<8,.1f} {ratio:10.1f} {z:10.2f}")


def warm_up(tmp, jobs):
    """Compile (or load) every kernel the cases use, untimed."""
    for name, sets in ((str(BARRIER), ["simulation.rare_event=liquidation"]),
                       (str(BARRIER), []),
                       ("two-asset-crash", ["simulation.rare_event=bad_debt>1"]),
                       ("two-asset-crash", ["simulation.variance_reduction=sobol",
                                            "simulation.chunk_paths=64"])):
        run(load_scenario(name, [*sets, "simulation.paths=128", "simulation.steps=8",
                                 "simulation.rare_pilot_paths=100"]),
            tmp / f"warm-{len(list(tmp.glob('warm-*')))}", jobs=jobs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", choices=("unbiased", "barrier", "fund", "sobol", "all"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--crude-paths", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        warm_up(Path(tmp), args.jobs)
        for case in ("barrier", "fund", "sobol", "unbiased"):
            if args.case in (case, "all"):
                where = Path(tmp) / case
                if case == "unbiased":
                    unbiased(where, args.jobs, args.crude_paths)
                elif case == "barrier":
                    barrier(where, args.jobs)
                elif case == "sobol":
                    sobol(where, args.jobs)
                else:
                    fund(where, args.jobs)
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
