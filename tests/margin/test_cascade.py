"""Cascades computed by hand, and the insurance fund's accounting identity.

With zero volatility the path is the shock, so a cascade can be predicted from each
account's liquidation price ``LP = (qty * entry - margin) / (qty * (1 - mmr))`` and the
linear impact law ``P -> P * exp(-0.01 * Q / depth)`` alone.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from simulator.config.scenario import load_scenario, scenario_from_dict
from simulator.execution.runner import run

S0, GAP, MMR, DEPTH, QTY = 100.0, -0.08, 0.01, 1.0e5, 1000.0
MARGINS = {"long-12x": 8333.0, "long-11x": 9090.0, "long-10.5x": 9524.0, "long-10x": 10000.0,
           "long-5x": 20000.0}


def gap_scenario(impact: str, fund: float = 0.0):
    accounts = [{"id": name, "margin_mode": "isolated", "collateral": {"USD": m},
                 "positions": [{"symbol": "BTC", "qty": QTY, "entry": S0}]}
                for name, m in MARGINS.items()]
    accounts.append({"id": "short-hedger", "margin_mode": "isolated",
                     "collateral": {"USD": 100000.0},
                     "positions": [{"symbol": "BTC", "qty": -3000.0, "entry": 101.0}]})
    return scenario_from_dict({
        "name": "hand-cascade",
        "simulation": {"paths": 3, "seed": 0, "steps": 6, "horizon_days": 0.25},
        "market": {"assets": [{"symbol": "BTC", "price": S0, "vol": 0.0, "depth_usd": DEPTH}]},
        "liquidity": {"impact": impact},
        "venue": {"maintenance_margin_rate": MMR, "liquidation_fee_rate": 0.01,
                  "insurance_fund_usd": fund, "margin_mode": "isolated"},
        "shocks": [{"kind": "gap", "step": 1, "asset": "BTC", "size": GAP}],
        "accounts": accounts,
    })


def predicted_cascade(impact: bool):
    """Round of each liquidated account and the price at the start of each round."""
    lp = {name: (QTY * S0 - m) / (QTY * (1 - MMR)) for name, m in MARGINS.items()}
    price = S0 * (1 + GAP)
    alive = set(MARGINS)
    rounds: dict[str, int] = {}
    round_prices = []
    r = 0
    while True:
        hit = sorted(n for n in alive if lp[n] > price)
        if not hit:
            return rounds, round_prices
        r += 1
        round_prices.append(price)
        for n in hit:
            rounds[n] = r
            alive.discard(n)
        if impact:
            price *= math.exp(-0.01 * len(hit) * QTY * price / DEPTH)


def events_of(run_dir):
    return pq.read_table(run_dir / "events").to_pandas()


def test_hand_computed_cascade_with_linear_impact(tmp_path):
    run(gap_scenario("linear"), tmp_path / "run")
    events = events_of(tmp_path / "run")
    rounds, prices = predicted_cascade(impact=True)
    # the prediction itself is a real cascade: four accounts over three rounds
    assert rounds == {"long-12x": 1, "long-11x": 2, "long-10.5x": 2, "long-10x": 3}
    for path_id in range(3):  # zero vol: every path is the same
        liq = events[(events.path_id == path_id) & (events.kind == "liquidation")]
        got = dict(zip(liq.account_id.astype(str), liq["round"], strict=True))
        assert got == rounds
        assert set(liq.step) == {1}
        for r, p in enumerate(prices, start=1):
            fills = liq[liq["round"] == r]
            n = len(fills)
            p_after = p * math.exp(-0.01 * n * QTY * p / DEPTH)
            np.testing.assert_allclose(fills.mark_price, p, rtol=1e-12)
            np.testing.assert_allclose(fills.exec_price, 0.5 * (p + p_after), rtol=1e-12)
            np.testing.assert_allclose(fills.qty, -QTY, rtol=1e-12)
    paths = pq.read_table(tmp_path / "run" / "paths").to_pandas()
    assert list(paths.n_liquidations) == [4, 4, 4]
    assert list(paths.max_cascade_rounds) == [3, 3, 3]
    assert list(paths.first_liquidation_step) == [1, 1, 1]
    final = prices[-1] * math.exp(-0.01 * QTY * prices[-1] / DEPTH)
    np.testing.assert_allclose(paths.final_price_BTC, final, rtol=1e-12)
    np.testing.assert_allclose(paths.min_price_BTC, final, rtol=1e-12)


def test_without_impact_only_the_first_account_goes(tmp_path):
    run(gap_scenario("none"), tmp_path / "run")
    events = events_of(tmp_path / "run")
    rounds, _ = predicted_cascade(impact=False)
    assert rounds == {"long-12x": 1}
    liq = events[events.kind == "liquidation"]
    assert set(liq.account_id.astype(str)) == {"long-12x"}
    assert set(liq["round"]) == {1}
    np.testing.assert_allclose(liq.exec_price, S0 * (1 + GAP), rtol=1e-12)


def test_bankrupt_account_goes_to_fund_then_adl(tmp_path):
    """long-12x's loss at its fill exceeds its margin: the empty fund cannot pay, so the
    profitable short takes the deficit through ADL at the bankruptcy price."""
    run(gap_scenario("linear", fund=0.0), tmp_path / "run")
    ev = events_of(tmp_path / "run")
    ev = ev[ev.path_id == 0]
    first = ev[(ev.kind == "liquidation") & (ev.account_id == "long-12x")].iloc[0]
    deficit = QTY * (S0 - first.exec_price) - MARGINS["long-12x"]
    assert deficit > 0
    assert first.bad_debt == pytest.approx(deficit, rel=1e-10)
    assert first.fee == 0.0  # nothing left to pay a fee from
    adl = ev[(ev.kind == "adl") & (ev["round"] == 1)]
    assert set(adl.account_id.astype(str)) == {"short-hedger"}
    assert adl.bad_debt.sum() == pytest.approx(deficit, rel=1e-10)
    # the short buys back the bankrupt quantity at mark + deficit / qty
    assert adl.qty.sum() == pytest.approx(QTY)
    np.testing.assert_allclose(adl.exec_price, adl.mark_price + deficit / QTY, rtol=1e-12)


def test_insurance_fund_identity_while_it_never_runs_dry(tmp_path):
    """fund_end = fund_start + fees - bad debt on every path of a stressed random book."""
    fund0 = 5.0e7
    sc = load_scenario("two-asset-crash", [
        "simulation.paths=300", "simulation.chunk_paths=100", "simulation.steps=48",
        f"venue.insurance_fund_usd={fund0}"])
    run(sc, tmp_path / "run", jobs=1)
    paths = pq.read_table(tmp_path / "run" / "paths").to_pandas()
    events = events_of(tmp_path / "run")
    assert not paths.fund_depleted.any()
    assert (paths.bad_debt > 0).mean() > 0.5  # the identity is exercised, not trivially true
    np.testing.assert_allclose(paths.insurance_fund_end, fund0 + paths.fees - paths.bad_debt,
                               rtol=1e-12, atol=1e-6)
    by_path = events.groupby("path_id")[["fee", "bad_debt"]].sum()
    liq = paths.set_index("path_id").loc[by_path.index]
    np.testing.assert_allclose(by_path.fee, liq.fees, rtol=1e-9)
    np.testing.assert_allclose(by_path.bad_debt, liq.bad_debt, rtol=1e-9)
    assert (paths.adl_notional == 0).all() and (paths.socialised_loss == 0).all()


def test_fund_identity_when_the_fund_runs_dry(tmp_path):
    """A small fund: what it cannot pay is exactly what ADL covers plus what is socialised."""
    sc = load_scenario("two-asset-crash", [
        "simulation.paths=200", "simulation.chunk_paths=100", "simulation.steps=24",
        "venue.insurance_fund_usd=1000.0"])
    run(sc, tmp_path / "run")
    paths = pq.read_table(tmp_path / "run" / "paths").to_pandas()
    events = events_of(tmp_path / "run")
    assert paths.fund_depleted.mean() > 0.5
    covered_by_adl = events[events.kind == "adl"].groupby("path_id").bad_debt.sum()
    covered_by_adl = covered_by_adl.reindex(paths.path_id, fill_value=0.0).to_numpy()
    uncovered = covered_by_adl + paths.socialised_loss.to_numpy()
    np.testing.assert_allclose(paths.insurance_fund_end,
                               1000.0 + paths.fees - (paths.bad_debt - uncovered),
                               rtol=1e-9, atol=1e-6)
    assert (paths.insurance_fund_end >= 0).all()


def test_account_outputs_of_the_deterministic_cascade(tmp_path):
    """Zero volatility: every path is the same, so VaR = ES = the loss, probabilities 0/1."""
    run(gap_scenario("linear", fund=1e9), tmp_path / "run")
    acc = pq.read_table(tmp_path / "run" / "accounts.parquet").to_pandas().set_index(
        "account_id")
    rounds, prices = predicted_cascade(impact=True)
    final = prices[-1] * math.exp(-0.01 * QTY * prices[-1] / DEPTH)
    for name in MARGINS:
        assert acc.loc[name, "liquidation_prob"] == (1.0 if name in rounds else 0.0)
    survivor_pnl = QTY * (final - S0)
    assert acc.loc["long-5x", "mean_pnl"] == pytest.approx(survivor_pnl, rel=1e-12)
    assert acc.loc["long-5x", "var_99"] == pytest.approx(-survivor_pnl, rel=1e-12)
    assert acc.loc["long-5x", "es_99"] == pytest.approx(-survivor_pnl, rel=1e-12)
    assert acc.loc["long-5x", "var_99_stderr"] == 0.0
    # long-12x loses its whole margin (bankrupt): PnL = -margin, bankruptcy certain
    assert acc.loc["long-12x", "bankruptcy_prob"] == 1.0
    assert acc.loc["long-12x", "mean_pnl"] == pytest.approx(-MARGINS["long-12x"], rel=1e-12)
    assert acc.loc["long-5x", "bankruptcy_prob"] == 0.0
    # long-10x goes in round 3 at a price far below its liquidation price: bankrupt too
    p3 = prices[2]
    fill = 0.5 * (p3 + p3 * math.exp(-0.01 * QTY * p3 / DEPTH))
    assert (acc.loc["long-10x", "bankruptcy_prob"] == 1.0) == (
        QTY * (S0 - fill) > MARGINS["long-10x"])
