"""Rare-event mode against a closed form: the probability that a GBM price, watched at
every step's close, falls below a barrier within the day, about 1e-5.

The reference is the continuous-barrier probability of a GBM with the barrier moved by
the Broadie-Glasserman-Kou continuity correction for discrete monitoring (B -> B exp(-beta
sigma sqrt(dt)), beta = -zeta(1/2) / sqrt(2 pi) = 0.5826; Broadie, Glasserman & Kou, "A
continuity correction for discrete barrier options", Math. Finance 7, 1997)."""

from __future__ import annotations

import math

import pyarrow.parquet as pq
from scipy import stats

from simulator.config.scenario import scenario_from_dict
from simulator.execution.runner import run

K = 4.0
BGK_BETA = 0.5825971579390106
S0, VOL, STEPS, BARRIER = 60_000.0, 0.8, 288, 49_900.0
MMR = 0.005


def barrier_probability(s0: float, barrier: float, vol: float, drift: float, t_years: float,
                        steps: int) -> float:
    """P(min over the step closes of a GBM < barrier), BGK-corrected closed form."""
    b = math.log(barrier / s0) - BGK_BETA * vol * math.sqrt(t_years / steps)
    nu = drift - 0.5 * vol * vol
    sd = vol * math.sqrt(t_years)
    return (stats.norm.cdf((b - nu * t_years) / sd)
            + math.exp(2.0 * nu * b / vol**2) * stats.norm.cdf((b + nu * t_years) / sd))


def single_account(event: str, paths: int = 20_000) -> dict:
    """One isolated long of 1 BTC whose liquidation price is exactly ``BARRIER``: equity
    ``C + (P - 60000)`` falls below maintenance ``MMR * P`` when ``P < BARRIER``."""
    collateral = S0 - (1.0 - MMR) * BARRIER
    return {
        "name": "barrier",
        "simulation": {"paths": paths, "steps": STEPS, "horizon_days": 1.0, "seed": 22,
                       "chunk_paths": 5000, "rare_event": event},
        "market": {"model": "gbm", "assets": [{"symbol": "BTC", "price": S0, "vol": VOL,
                                               "drift": 0.0, "depth_usd": 1e9}]},
        "liquidity": {"impact": "none"},
        "venue": {"maintenance_margin_rate": MMR, "insurance_fund_usd": 1e6},
        "accounts": [{"id": "long", "margin_mode": "isolated",
                      "collateral": {"USD": collateral},
                      "positions": [{"symbol": "BTC", "qty": 1.0, "entry": S0}]}],
    }


def test_the_closed_form_is_about_one_in_100000():
    p = barrier_probability(S0, BARRIER, VOL, 0.0, 1 / 365, STEPS)
    assert 5e-6 < p < 3e-5


def _check(tmp_path, event: str) -> dict:
    sc = scenario_from_dict(single_account(event))
    result = run(sc, tmp_path / "run")
    exact = barrier_probability(S0, BARRIER, VOL, 0.0, 1 / 365, STEPS)
    rare = result.summary["rare_event"]
    p, se = rare["probability"]["estimate"], rare["probability"]["stderr"]
    assert se / p <= 0.10, (p, se)
    assert abs(p - exact) <= K * se, (p, se, exact)
    return result.summary


def test_barrier_event_on_the_price_column(tmp_path):
    """20,000 tilted paths: at most 10% relative error, within 4 SE of the closed form."""
    summary = _check(tmp_path, f"min_price_BTC<{BARRIER}")
    paths = pq.read_table(tmp_path / "run" / "paths", columns=["min_price_BTC", "weight"])
    hit = paths.column("min_price_BTC").to_numpy() < BARRIER
    assert hit.mean() > 0.2  # the tilt puts a good share of the paths in the event
    assert summary["rare_event"]["paths_in_event"] == int(hit.sum())


def test_barrier_event_as_the_accounts_liquidation(tmp_path):
    """The same probability read as the account's liquidation (``n_liquidations>0``), and
    its per-account liquidation probability in accounts.parquet agrees."""
    summary = _check(tmp_path, "liquidation")
    acc = pq.read_table(tmp_path / "run" / "accounts.parquet").to_pylist()[0]
    p = summary["metrics"]["liquidation_prob"]
    assert math.isclose(acc["liquidation_prob"], p["estimate"], rel_tol=1e-12)
    assert math.isclose(acc["liquidation_prob_stderr"], p["stderr"], rel_tol=1e-9)
