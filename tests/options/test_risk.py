"""Options through the whole run: their marks are martingales, their tail risk is Black-
Scholes', and ``accounts.parquet`` carries every account's greeks at the start.

References are independent of the engine: Black-Scholes from SciPy's normal distribution,
the lognormal law of GBM, and numerical integration of the option's value over the spot's
tail. Tolerances are 4 standard errors (as reported by the run), or the 3% of the issue
for VaR and ES with enough paths that their own standard errors are well below it.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy import integrate
from scipy.stats import norm

from simulator.config.scenario import scenario_from_dict
from simulator.execution.runner import run
from simulator.options.pricing import position_greeks_usd

S0, VOL = 100.0, 0.8


def bs(kind: str, spot: float, strike: float, tau: float, vol: float) -> float:
    """Black-Scholes with zero rates (SciPy's normal CDF)."""
    if tau <= 0:
        return max(spot - strike, 0.0) if kind == "call" else max(strike - spot, 0.0)
    sd = vol * math.sqrt(tau)
    d1 = (math.log(spot / strike) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    if kind == "call":
        return spot * norm.cdf(d1) - strike * norm.cdf(d2)
    return strike * norm.cdf(-d2) - spot * norm.cdf(-d1)


def scenario(accounts, *, paths, steps, horizon_days, seed=7, extra=None):
    doc = {
        "name": "options-risk",
        "simulation": {"paths": paths, "steps": steps, "horizon_days": horizon_days,
                       "seed": seed, "chunk_paths": 10_000},
        "market": {"model": "gbm", "assets": [{"symbol": "X", "price": S0, "vol": VOL}]},
        "liquidity": {"impact": "none"},
        "venue": {"insurance_fund_usd": 0.0},
        "accounts": accounts,
    }
    doc.update(extra or {})
    return scenario_from_dict(doc)


def option_account(name, kind, strike, expiry_days, qty=1.0, usd=0.0):
    return {"id": name, "collateral": {"USD": usd},
            "positions": [{"symbol": "X", "type": kind, "qty": qty, "strike": strike,
                           "expiry_days": expiry_days}]}


def accounts_of(out) -> dict[str, dict]:
    table = pq.read_table(out / "accounts.parquet").to_pylist()
    return {row["account_id"]: row for row in table}


@pytest.mark.slow
def test_long_option_mark_is_a_martingale(tmp_path):
    """Zero drift, zero rates, flat implied vol equal to the paths' vol: the mean PnL of a
    long option over the horizon is 0 within 4 standard errors, whether it expires inside
    the horizon (settled at intrinsic value) or not."""
    accounts = [option_account("call-otm", "call", 110.0, 60.0),
                option_account("put-itm", "put", 115.0, 45.0),
                option_account("call-expires", "call", 100.0, 10.0),
                option_account("put-expires", "put", 90.0, 12.0)]
    res = run(scenario(accounts, paths=40_000, steps=20, horizon_days=20.0), tmp_path / "run")
    rows = accounts_of(res.out_dir)
    for name, row in rows.items():
        assert row["liquidation_prob"] == 0.0, name
        se = row["mean_pnl_stderr"]
        assert se > 0.0, name
        assert abs(row["mean_pnl"]) <= 4.0 * se, (name, row["mean_pnl"], se)


@pytest.mark.slow
def test_long_option_mean_pnl_detects_a_drift(tmp_path):
    """The martingale test can fail: with a drift of +100% a year the same long call gains
    far more than 4 standard errors."""
    accounts = [option_account("call", "call", 110.0, 60.0)]
    doc_assets = [{"symbol": "X", "price": S0, "vol": VOL, "drift": 1.0}]
    sc = scenario(accounts, paths=40_000, steps=20, horizon_days=20.0,
                  extra={"market": {"model": "gbm", "assets": doc_assets}})
    row = accounts_of(run(sc, tmp_path / "run").out_dir)["call"]
    assert row["mean_pnl"] > 8.0 * row["mean_pnl_stderr"]


def tail_reference(kind: str, strike: float, expiry_days: float, horizon_days: float,
                   level: float = 0.99) -> tuple[float, float]:
    """Exact VaR and ES of a long option held over the horizon under GBM (zero drift):
    its loss ``V0 - V(S_T)`` is monotone in ``S_T``, so the VaR is the loss at the spot's
    1% quantile (a call) or 99% quantile (a put), and the ES its mean beyond."""
    t = horizon_days / 365.0
    tau0, tau1 = expiry_days / 365.0, (expiry_days - horizon_days) / 365.0
    v0 = bs(kind, S0, strike, tau0, VOL)
    sd = VOL * math.sqrt(t)

    def spot(z):
        return S0 * math.exp(-0.5 * sd * sd + sd * z)

    def loss(z):
        return v0 - bs(kind, spot(z), strike, tau1, VOL)

    tail = 1.0 - level
    if kind == "call":
        z_q = norm.ppf(tail)
        es = integrate.quad(lambda z: loss(z) * norm.pdf(z), -np.inf, z_q)[0] / tail
    else:
        z_q = norm.ppf(level)
        es = integrate.quad(lambda z: loss(z) * norm.pdf(z), z_q, np.inf)[0] / tail
    return loss(z_q), es


@pytest.mark.slow
def test_long_option_var_es_match_black_scholes(tmp_path):
    """VaR99 and ES99 of a long call and a long put equal the exact Black-Scholes figures
    at the spot's 1% (99%) quantile within 3%, and within 4 of their reported standard
    errors plus the discreteness of the quantile."""
    cases = {"call": ("call", 100.0, 30.0), "put": ("put", 100.0, 30.0),
             "call-otm": ("call", 120.0, 45.0)}
    accounts = [option_account(name, kind, k, exp) for name, (kind, k, exp) in cases.items()]
    horizon = 5.0
    res = run(scenario(accounts, paths=60_000, steps=5, horizon_days=horizon), tmp_path / "r")
    rows = accounts_of(res.out_dir)
    for name, (kind, strike, expiry) in cases.items():
        var_ref, es_ref = tail_reference(kind, strike, expiry, horizon)
        row = rows[name]
        assert row["var_es_method"] == "exact"
        for key, ref in (("var_99", var_ref), ("es_99", es_ref)):
            assert abs(row[key] - ref) <= 0.03 * ref, (name, key, row[key], ref)
            assert row[f"{key}_stderr"] < 0.01 * ref, (name, key)


def test_accounts_parquet_has_greeks_at_the_start(tmp_path):
    """Delta, gamma and vega in USD per account: options from the Black-Scholes greeks
    (``position_greeks_usd``, checked against SciPy elsewhere), perpetuals and coins by
    their notional; an account without options has no gamma or vega."""
    accounts = [
        {"id": "covered-call", "collateral": {"USD": 5_000.0, "X": 2.0},
         "positions": [{"symbol": "X", "type": "call", "qty": -2.0, "strike": 110.0,
                        "expiry_days": 30.0}]},
        {"id": "hedged-put", "collateral": {"USD": 5_000.0},
         "positions": [{"symbol": "X", "type": "put", "qty": 3.0, "strike": 95.0,
                        "expiry_days": 14.0, "iv": 1.1},
                       {"symbol": "X", "qty": 1.5, "entry": 98.0}]},
        {"id": "perp", "collateral": {"USD": 1_000.0},
         "positions": [{"symbol": "X", "qty": -4.0, "entry": 100.0}]},
    ]
    res = run(scenario(accounts, paths=200, steps=4, horizon_days=1.0), tmp_path / "run")
    rows = accounts_of(res.out_dir)
    call = position_greeks_usd(-2.0, "call", S0, 110.0, 30.0, VOL)
    put = position_greeks_usd(3.0, "put", S0, 95.0, 14.0, 1.1)
    expected = {
        "covered-call": (2.0 * S0 + call.delta, call.gamma, call.vega),
        "hedged-put": (1.5 * S0 + put.delta, put.gamma, put.vega),
        "perp": (-4.0 * S0, 0.0, 0.0),
    }
    for name, (delta, gamma, vega) in expected.items():
        row = rows[name]
        assert row["delta_usd"] == pytest.approx(float(delta), rel=1e-12, abs=1e-9), name
        assert row["gamma_usd"] == pytest.approx(float(gamma), rel=1e-12, abs=1e-12), name
        assert row["vega_usd"] == pytest.approx(float(vega), rel=1e-12, abs=1e-12), name
    # by hand: a short call has negative gamma and vega, a long put positive
    assert rows["covered-call"]["gamma_usd"] < 0 < rows["hedged-put"]["gamma_usd"]
    assert rows["covered-call"]["vega_usd"] < 0 < rows["hedged-put"]["vega_usd"]


def test_option_book_same_files_with_one_or_two_workers(tmp_path):
    """The option-sellers book (options expiring, boxes, partial liquidations) gives the
    same bytes with one or two worker processes."""
    from simulator.config.scenario import load_scenario
    sc = load_scenario("option-sellers", ["simulation.paths=60", "simulation.chunk_paths=20",
                                          "simulation.steps=120", "population.count=300"])
    run(sc, tmp_path / "one", jobs=1)
    run(sc, tmp_path / "two", jobs=2)
    for sub in ("paths", "events"):
        one = sorted((tmp_path / "one" / sub).glob("*.parquet"))
        two = sorted((tmp_path / "two" / sub).glob("*.parquet"))
        assert [p.name for p in one] == [p.name for p in two] and len(one) == 3
        for a, b in zip(one, two, strict=True):
            assert a.read_bytes() == b.read_bytes(), a.name
    a = pq.read_table(tmp_path / "one" / "accounts.parquet")
    assert a.equals(pq.read_table(tmp_path / "two" / "accounts.parquet"))
    events = pq.read_table(tmp_path / "one" / "events").column("instrument").to_pylist()
    assert {"call", "put"} & set(events)
