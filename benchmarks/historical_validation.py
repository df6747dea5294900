"""Historical validation: the model's side of docs/historical-validation.md.

Runs every historical scenario (and ``defi-lending-crash``, for the Aave comparison) with
its own paths and seed, and prints the figures that the page sets beside the published
ones: liquidated notional (mean, standard error, median, 5-95%), the long share of it,
the share of the book's open interest liquidated, ADL and its share of liquidated
notional, bad debt and its share of liquidated notional, and each asset's intraday low
with the step at which it is reached (from the price paths of the first 200 paths).
For ``october-2025-cascade`` the same figures are measured inside Hyperliquid's ADL window
(21:15-21:27 UTC: steps 111-113 of a scenario whose 5-minute steps count from 12:00 UTC).

Every figure is read back from the run directory (``paths/``, ``events/``) and from the
scenario's book, which is the same on every path. Ratios are ratios of sums over paths,
with the delta-method standard error that ``summary.json`` uses for ``cascade_share``.

Usage::

    python benchmarks/historical_validation.py [--runs /tmp/historical-validation]
        [--reuse] [--jobs 1] [--json FILE] [SCENARIO ...]

``--reuse`` keeps a complete run directory of the same scenario digest, seed and paths
instead of running it again. One pass of all six scenarios takes about 90 s on
one core with the Numba cache warm (the first run compiles the kernels, about 40 s).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.book.build import build_book
from simulator.config.scenario import load_scenario
from simulator.execution.runner import run
from simulator.results.risk import mean_se, ratio_se

#: scenario -> (first step, last step, label) of a window measured on its own
WINDOWS = {
    "october-2025-cascade": (111, 113, "21:15-21:27 UTC (steps 111-113)"),
}
#: scenario -> (label, first step, last step) of stretches whose own lows are compared
PRICE_WINDOWS = {
    "black-thursday-2020": (("leg 1, 09:10-16:40 UTC 12 Mar", 55, 100),
                            ("leg 2, 21:40 UTC 12 Mar - 06:00 UTC 13 Mar", 130, 180)),
}
#: scenario -> (label, step, symbol) of marks compared with a price published for a time
PRICE_POINTS = {
    "black-thursday-2020": (("10:00 UTC 12 Mar", 60, "BTC"), ("12:40 UTC 12 Mar", 76, "ETH"),
                            ("24:00 UTC 12 Mar", 144, "ETH")),
    "may-2021": (("05:30 UTC 19 May", 33, "BTC"),),
}
SCENARIOS = (
    "black-thursday-2020",
    "may-2021",
    "luna-ust-2022",
    "ftx-2022",
    "october-2025-cascade",
    "defi-lending-crash",
)
#: event kinds that close a position under liquidation (a backstop vault's takeover is one)
LIQUIDATION_KINDS = ("liquidation", "backstop")
#: price paths saved per run, to say when each low is reached
SAVED_PATHS = 200


def ensure_run(name: str, runs: Path, jobs: int, reuse: bool) -> Path:
    """Run scenario ``name`` into ``runs/name``, or keep a complete run of it there.

    Parameters
    ----------
    name : str
        A built-in scenario name or a scenario file.
    runs : Path
        The folder of run directories.
    jobs : int
        Worker processes.
    reuse : bool
        Keep a complete run directory whose scenario digest, seed and paths match and
        that saved the prices of :data:`SAVED_PATHS` paths.

    Returns
    -------
    Path
        The run directory.
    """
    scenario = load_scenario(name)
    out = runs / scenario.name
    manifest = out / "manifest.json"
    if reuse and manifest.is_file():
        m = json.loads(manifest.read_text())
        if (m.get("status") == "complete" and m.get("scenario_sha256") == scenario.digest
                and m.get("seed") == scenario.simulation.seed
                and m.get("paths") == scenario.simulation.paths
                and m.get("save_prices", 0) >= SAVED_PATHS):
            return out
    run(scenario, out, jobs=jobs, force=out.exists(), save_prices=SAVED_PATHS)
    return out


def quantiles(x: np.ndarray) -> dict[str, float]:
    """Median and 5% / 95% quantiles (order statistics, as ``summary.json``).

    Parameters
    ----------
    x : ndarray
        One value per path.

    Returns
    -------
    dict
        ``p05``, ``p50``, ``p95``.
    """
    q = np.quantile(x, [0.05, 0.5, 0.95], method="inverted_cdf")
    return {"p05": float(q[0]), "p50": float(q[1]), "p95": float(q[2])}


def book_open_interest(name: str) -> dict[str, float] | None:
    """Gross, long and short notional of the scenario's perpetuals at their entry prices.

    Parameters
    ----------
    name : str
        The scenario.

    Returns
    -------
    dict or None
        ``gross``, ``long`` and ``short`` in USD; None for a lending book (no perpetual).
    """
    book = build_book(load_scenario(name))
    perp = book.pos_kind == 0
    notional = np.abs(book.pos_qty) * book.pos_entry
    if not np.any(perp & (book.pos_entry > 0)):
        return None
    long_ = float(notional[perp & (book.pos_qty > 0)].sum())
    short = float(notional[perp & (book.pos_qty < 0)].sum())
    return {"gross": long_ + short, "long": long_, "short": short}


def per_path(events: pd.DataFrame, mask: pd.Series, column: str, n: int) -> np.ndarray:
    """Per-path sum of ``column`` over the rows of ``events`` selected by ``mask``.

    Parameters
    ----------
    events : DataFrame
        Rows of ``events/``.
    mask : Series of bool
        The rows to sum.
    column : str
        The column to sum.
    n : int
        Number of paths; paths without a selected row get 0.

    Returns
    -------
    ndarray, shape (n,)
    """
    s = events.loc[mask].groupby("path_id")[column].sum()
    out = np.zeros(n)
    out[s.index.to_numpy()] = s.to_numpy()
    return out


def flows(events: pd.DataFrame, n: int, lending: bool) -> dict[str, np.ndarray]:
    """Per-path liquidated notional (long and short), ADL notional and bad debt.

    Parameters
    ----------
    events : DataFrame
        Rows of ``events/`` (already restricted to a window where one applies).
    n : int
        Number of paths.
    lending : bool
        A lending book: liquidated notional is the debt repaid (``instrument == "debt"``).

    Returns
    -------
    dict of ndarray
        ``liquidated``, ``long``, ``short``, ``adl``, ``bad_debt``.
    """
    liq = events["kind"].isin(LIQUIDATION_KINDS)
    if lending:
        closes = liq & (events["instrument"] == "debt")
        long_ = per_path(events, closes, "notional", n)
        short = np.zeros(n)
    else:
        closes = liq & (events["instrument"] == "perp")
        long_ = per_path(events, closes & (events["qty"] < 0), "notional", n)
        short = per_path(events, closes & (events["qty"] > 0), "notional", n)
    adl = per_path(events, (events["kind"] == "adl") & (events["instrument"] == "perp"),
                   "notional", n)
    bad = per_path(events, liq, "bad_debt", n)
    return {"liquidated": long_ + short, "long": long_, "short": short, "adl": adl,
            "bad_debt": bad}


def ratios(f: dict[str, np.ndarray], lending: bool) -> dict[str, tuple[float, float]]:
    """The dimensionless figures of one set of per-path flows.

    Parameters
    ----------
    f : dict of ndarray
        From :func:`flows`.
    lending : bool
        A lending book (no long share, no ADL).

    Returns
    -------
    dict of (estimate, se)
    """
    out = {"liquidated_usd": mean_se(f["liquidated"]),
           "bad_debt_usd": mean_se(f["bad_debt"]),
           "bad_debt_share": ratio_se(f["bad_debt"], f["liquidated"])}
    if not lending:
        out["long_share"] = ratio_se(f["long"], f["liquidated"])
        out["adl_usd"] = mean_se(f["adl"])
        out["adl_share"] = ratio_se(f["adl"], f["liquidated"])
    return out


def measure(name: str, run_dir: Path) -> dict:
    """Every model figure of the page for one run.

    Parameters
    ----------
    name : str
        The scenario.
    run_dir : Path
        Its complete run directory.

    Returns
    -------
    dict
        JSON-ready: the run's identity, the whole-run figures, the window's (if any),
        the price lows and the book's open interest.
    """
    manifest = json.loads((run_dir / "manifest.json").read_text())
    paths = pd.read_parquet(run_dir / "paths")
    n = len(paths)
    events = pd.read_parquet(
        run_dir / "events",
        columns=["path_id", "step", "kind", "instrument", "symbol", "qty", "notional",
                 "bad_debt"])
    for col in ("kind", "instrument", "symbol"):
        events[col] = events[col].astype(str)
    lending = bool((events["instrument"] == "debt").any()
                   and not (events["instrument"] == "perp").any())
    whole = flows(events, n, lending)
    # the events must add up to the paths file, or the figures below mean nothing
    assert np.allclose(whole["liquidated"], paths["liquidated_notional"], rtol=1e-9, atol=1e-3)
    assert np.allclose(whole["bad_debt"], paths["bad_debt"], rtol=1e-9, atol=1e-3)
    assert np.allclose(whole["adl"], paths["adl_notional"], rtol=1e-9, atol=1e-3)
    out = {
        "scenario": name,
        "paths": n,
        "seed": manifest["seed"],
        "scenario_sha256": manifest["scenario_sha256"],
        "liquidated_quantiles_usd": quantiles(whole["liquidated"]),
        "n_liquidations": mean_se(paths["n_liquidations"].to_numpy(float)),
        "whole_run": ratios(whole, lending),
        "lows": {c[len("min_price_"):]: {"mean": float(paths[c].mean()),
                                          **quantiles(paths[c].to_numpy())}
                 for c in paths.columns if c.startswith("min_price_")},
        "start_prices": {a["symbol"]: a["price"]
                         for a in manifest["scenario_resolved"]["market"]["assets"]},
    }
    if lending:
        seized = per_path(events, (events["kind"] == "liquidation")
                          & (events["instrument"] == "collateral"), "notional", n)
        out["whole_run"]["bonus_share"] = ratio_se(seized - whole["liquidated"],
                                                   whole["liquidated"])
    sim = manifest["scenario_resolved"]["simulation"]
    hours_per_step = 24.0 * sim["horizon_days"] / sim["steps"]
    prices = pd.read_parquet(run_dir / "prices")
    for sym, low in out["lows"].items():
        wide = prices.pivot(index="step", columns="path_id", values=sym)
        step = wide.idxmin().to_numpy()
        low["step_of_low"] = quantiles(step.astype(float))
        low["hours_of_low"] = {k: v * hours_per_step for k, v in low["step_of_low"].items()}
        low["stretches"] = {}
        for label, first, last in PRICE_WINDOWS.get(name, ()):
            lows = wide.loc[first:last].min().to_numpy()
            low["stretches"][label] = {"mean_se": mean_se(lows), **quantiles(lows)}
    out["marks"] = {
        f"{sym} at {label}": mean_se(prices.loc[prices["step"] == step, sym].to_numpy())
        for label, step, sym in PRICE_POINTS.get(name, ())}
    oi = None if lending else book_open_interest(name)
    if oi is not None:
        out["open_interest_usd"] = oi
        out["share_of_oi_liquidated"] = mean_se(whole["liquidated"] / oi["gross"])
        out["share_of_long_oi_liquidated"] = mean_se(whole["long"] / oi["long"])
        out["share_of_short_oi_liquidated"] = mean_se(whole["short"] / oi["short"])
    if name in WINDOWS:
        first, last, label = WINDOWS[name]
        inside = events[(events["step"] >= first) & (events["step"] <= last)]
        w = flows(inside, n, lending)
        out["window"] = {"label": label, **ratios(w, lending),
                         "share_of_run_liquidated": ratio_se(w["liquidated"],
                                                             whole["liquidated"]),
                         "share_of_run_adl": ratio_se(w["adl"], whole["adl"])}
        if not lending:
            by_symbol = {}
            for sym in sorted(set(inside["symbol"])):
                f = flows(inside[inside["symbol"] == sym], n, lending)
                if f["liquidated"].sum() > 0:  # a perpetual liquidated in the window
                    by_symbol[sym] = ratio_se(f["adl"], f["liquidated"])
            out["window"]["adl_share_by_symbol"] = by_symbol
    return out


def _fmt(value: float) -> str:
    """A USD amount or price with three significant figures and a k / M suffix."""
    a = abs(value)
    if a >= 1e6:
        return f"{value / 1e6:.3g}M"
    if a >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:.4g}"


def _pm(pair: tuple[float, float], pct: bool = False) -> str:
    """``estimate ± se``, as a percentage when ``pct``."""
    est, se = pair
    if pct:
        return f"{100 * est:.1f}% ± {100 * se:.2f}"
    return f"{_fmt(est)} ± {_fmt(se)}"


def report(m: dict) -> str:
    """The model's figures of one run as text lines (the page's model column).

    Parameters
    ----------
    m : dict
        From :func:`measure`.

    Returns
    -------
    str
    """
    w = m["whole_run"]
    q = m["liquidated_quantiles_usd"]
    lines = [f"## {m['scenario']}: {m['paths']} paths, seed {m['seed']}",
             f"liquidated notional (USD): {_pm(w['liquidated_usd'])}; median "
             f"{_fmt(q['p50'])}, 5-95% {_fmt(q['p05'])} to {_fmt(q['p95'])}",
             f"liquidations per path: {_pm(m['n_liquidations'])}"]
    if "long_share" in w:
        lines.append(f"long share of liquidated notional: {_pm(w['long_share'], True)}")
    if "share_of_oi_liquidated" in m:
        oi = m["open_interest_usd"]
        lines.append(f"book open interest (USD): {_fmt(oi['gross'])} "
                     f"({100 * oi['long'] / oi['gross']:.0f}% long); liquidated: "
                     f"{_pm(m['share_of_oi_liquidated'], True)} of it, "
                     f"{_pm(m['share_of_long_oi_liquidated'], True)} of long, "
                     f"{_pm(m['share_of_short_oi_liquidated'], True)} of short")
    if "bonus_share" in w:
        lines.append(f"liquidation bonus (collateral seized / debt repaid - 1): "
                     f"{_pm(w['bonus_share'], True)}")
    if "adl_usd" in w:
        lines.append(f"ADL (USD): {_pm(w['adl_usd'])}; share of liquidated notional: "
                     f"{_pm(w['adl_share'], True)}")
    lines.append(f"bad debt (USD): {_pm(w['bad_debt_usd'])}; share of liquidated "
                 f"notional: {100 * w['bad_debt_share'][0]:.3f}% ± "
                 f"{100 * w['bad_debt_share'][1]:.3f}")
    for sym, low in m["lows"].items():
        start = m["start_prices"][sym]
        change = 100 * (low["mean"] / start - 1)
        lines.append(f"low {sym}: mean {_fmt(low['mean'])} ({change:+.1f}%),"
                     f" median {_fmt(low['p50'])}, 5-95% {_fmt(low['p05'])} to "
                     f"{_fmt(low['p95'])}; reached at step {low['step_of_low']['p50']:.0f}"
                     f" ({low['hours_of_low']['p50']:.2f} h; 5-95% steps "
                     f"{low['step_of_low']['p05']:.0f}-{low['step_of_low']['p95']:.0f}, "
                     f"median over the first {SAVED_PATHS} paths)")
        for label, s in low["stretches"].items():
            lines.append(f"  low {sym} in {label}: {_pm(s['mean_se'])}, 5-95% {_fmt(s['p05'])} "
                         f"to {_fmt(s['p95'])} (first {SAVED_PATHS} paths)")
    for label, pair in m["marks"].items():
        lines.append(f"mark of {label}: {_pm(pair)} (first {SAVED_PATHS} paths)")
    if "window" in m:
        v = m["window"]
        lines += [f"window {v['label']}:",
                  f"  liquidated (USD): {_pm(v['liquidated_usd'])} "
                  f"({_pm(v['share_of_run_liquidated'], True)} of the run's)",
                  f"  ADL (USD): {_pm(v['adl_usd'])} ({_pm(v['share_of_run_adl'], True)} "
                  f"of the run's); share of liquidated notional: {_pm(v['adl_share'], True)}",
                  "  ADL share by asset: " + ", ".join(
                      f"{sym} {_pm(r, True)}" for sym, r in v["adl_share_by_symbol"].items()),
                  f"  long share of liquidated notional: {_pm(v['long_share'], True)}",
                  f"  bad debt share of liquidated notional: "
                  f"{100 * v['bad_debt_share'][0]:.3f}% ± {100 * v['bad_debt_share'][1]:.3f}"]
    return "\n".join(lines)


def main() -> None:
    """Run or reuse each scenario, then print its figures (and write them as JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    parser.add_argument("--runs", type=Path, default=Path("/tmp/historical-validation"))
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.scenarios:
        m = measure(name, ensure_run(name, args.runs, args.jobs, args.reuse))
        results.append(m)
        print(report(m), end="\n\n", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
