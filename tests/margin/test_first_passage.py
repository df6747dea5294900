"""Isolated perpetuals under GBM without impact: the engine's liquidation probability of
each account equals the closed-form first-passage probability of GBM through the
account's liquidation price, with the Broadie-Glasserman-Kou continuity correction for
monitoring at discrete steps (Broadie, Glasserman & Kou 1997, Math. Finance 7(4)).
"""

from __future__ import annotations

import math

import pyarrow.parquet as pq
import pytest

from simulator.config.scenario import scenario_from_dict
from simulator.execution.runner import run

from ..support.first_passage import discrete_prob, first_passage_prob, liquidation_price

K = 4.0


@pytest.mark.slow
@pytest.mark.parametrize("drift", [0.0, 0.5])
def test_liquidation_probability_matches_bgk_first_passage(tmp_path, drift):
    s0, vol, mmr = 100.0, 0.8, 0.01
    horizon_days, steps = 30.0, 120
    t = horizon_days / 365.0
    dt = t / steps
    # (qty, margin): longs and shorts at several distances from their liquidation price
    book = [(10.0, 150.0), (10.0, 250.0), (10.0, 400.0), (-10.0, 150.0), (-10.0, 250.0),
            (-10.0, 400.0)]
    accounts = [{"id": f"acct-{i}", "margin_mode": "isolated", "collateral": {"USD": m},
                 "positions": [{"symbol": "X", "qty": q, "entry": s0}]}
                for i, (q, m) in enumerate(book)]
    n_paths = 20_000
    sc = scenario_from_dict({
        "name": "first-passage",
        "simulation": {"paths": n_paths, "seed": 2024, "steps": steps,
                       "horizon_days": horizon_days, "chunk_paths": 5000},
        "market": {"assets": [{"symbol": "X", "price": s0, "vol": vol, "drift": drift}]},
        "liquidity": {"impact": "none"},
        "venue": {"maintenance_margin_rate": mmr, "insurance_fund_usd": 1e15,
                  "liquidation_fee_rate": 0.0},
        "accounts": accounts,
    })
    result = run(sc, tmp_path / "run")
    table = pq.read_table(tmp_path / "run" / "accounts.parquet").to_pandas()
    assert list(table["account_id"]) == [a["id"] for a in accounts]
    for i, (qty, margin) in enumerate(book):
        barrier = liquidation_price(qty, s0, margin, mmr)
        p_bgk = discrete_prob(s0, barrier, drift, vol, t, dt)
        p_cont = first_passage_prob(s0, barrier, drift, vol, t)
        p_hat = table["liquidation_prob"][i]
        se = math.sqrt(p_bgk * (1 - p_bgk) / n_paths)
        assert 0.02 < p_bgk < 0.98  # the book is built to test the informative range
        assert abs(p_hat - p_bgk) < K * se, (qty, margin, p_hat, p_bgk, p_cont)
        # reported standard error is the binomial one
        assert table["liquidation_prob_stderr"][i] == pytest.approx(
            math.sqrt(p_hat * (1 - p_hat) / n_paths), rel=1e-9)
    assert result.summary["metrics"]["bad_debt_mean"]["estimate"] >= 0.0
