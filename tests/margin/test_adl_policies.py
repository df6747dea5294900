"""The ADL policies of issue #20 by hand (``docs/engine.md``, "ADL policies and the per-step
cap"): Bybit's ranking, the pro-rata shares and the cap, on one bankrupt long and four
shorts; and the per-fill record of the ADL'd units (their leverage and unrealised PnL).
The random-book comparisons with the reference are in ``test_rules_vs_reference.py``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator import prepare
from simulator.config.scenario import scenario_from_dict
from simulator.margin import codes, replay
from simulator.margin.adl_figures import account_adl_counts, path_adl_figures
from simulator.paths import generate_paths

MARK = 48_000.0  # 60,000 less the 20% gap
#: the shorts: name, qty, entry, USD; D loses (entry below the mark): no candidate
SHORTS = [("A", -2.0, 60_000.0, 1_000.0), ("B", -5.0, 55_000.0, 5_000.0),
          ("C", -8.0, 62_000.0, 100_000.0), ("D-loss", -4.0, 40_000.0, 50_000.0)]
#: the bankrupt long closes 10 BTC: 30,000 of margin against a 120,000 loss
Q, DEFICIT = 10.0, 90_000.0
PRICE = MARK + DEFICIT / Q  # the bankruptcy price


def run_book(**venue):
    accounts = [{"id": "bankrupt", "margin_mode": "isolated", "collateral": {"USD": 30_000.0},
                 "positions": [{"symbol": "BTC", "qty": Q, "entry": 60_000.0}]},
                {"id": "same-side", "collateral": {"USD": 10_000.0},
                 "positions": [{"symbol": "BTC", "qty": 1.0, "entry": 40_000.0}]}]
    accounts += [{"id": name, "collateral": {"USD": usd},
                  "positions": [{"symbol": "BTC", "qty": qty, "entry": entry}]}
                 for name, qty, entry, usd in SHORTS]
    doc = {
        "name": "adl-policies",
        "simulation": {"paths": 1, "seed": 1, "steps": 2, "horizon_days": 0.01},
        "market": {"model": "gbm", "assets": [
            {"symbol": "BTC", "price": 60_000.0, "vol": 0.0, "depth_usd": 1e9}]},
        "liquidity": {"impact": "none"},
        "venue": {"maintenance_margin_rate": 0.005, "insurance_fund_usd": 0.0,
                  "liquidation_fee_rate": 0.0, **venue},
        "shocks": [{"kind": "gap", "step": 1, "asset": "BTC", "size": -0.2}],
        "accounts": accounts,
    }
    prep = prepare(scenario_from_dict(doc))
    exo = generate_paths(prep.inputs, 1, np.random.default_rng(0))
    res = replay(exo, prep.inputs.depth_usd, prep.book, prep.rules, index=prep.index)
    kind = res.ev_i[:, codes.EI_KIND]
    adl = kind == codes.KIND_ADL
    names = [prep.book.account_ids[prep.book.unit_account[u]]
             for u in res.ev_i[adl, codes.EI_UNIT]]
    return prep.book, res, adl, names


def socialised_of_bankrupt(book, res):
    """The socialised amounts of the bankrupt long's share (B, deleveraged at a price above
    its entry, goes bankrupt in the next round on some of these runs: its own loss is
    socialised too)."""
    soc = res.ev_i[:, codes.EI_KIND] == codes.KIND_SOCIALISED
    mine = book.unit_account[res.ev_i[:, codes.EI_UNIT]] == book.account_ids.index("bankrupt")
    return res.ev_f[soc & mine, codes.EF_BAD_DEBT]


def short_values(qty, entry, usd):
    """Equity, notional (leverage = their ratio) and PnL of a short at the mark."""
    pnl = qty * (MARK - entry)
    return usd + pnl, abs(qty) * MARK, pnl


def test_bybit_ranks_by_pnl_percentage_times_effective_leverage():
    def score(qty, entry, usd):
        e, n, pnl = short_values(qty, entry, usd)
        return pnl / (abs(qty) * entry) * n / e

    live = [s for s in SHORTS if s[2] > MARK]
    order = [s[0] for s in sorted(live, key=lambda s: -score(*s[1:]))]
    assert order == ["A", "B", "C"]  # (profit_leverage would take B first)
    _, res, adl, names = run_book(adl_ranking="bybit")
    assert names == order
    np.testing.assert_allclose(res.ev_f[adl, codes.EF_QTY], [2.0, 5.0, 3.0], rtol=1e-15)
    _, _, _, other = run_book(adl_ranking="profit_leverage")
    assert other[0] == "B"


def test_pro_rata_shares_by_size_and_the_last_takes_the_remainder():
    _, res, adl, names = run_book(adl_ranking="pro_rata")
    assert names == ["A", "B", "C"]  # increasing position index
    x_a, x_b = Q * 2.0 / 15.0, Q * 5.0 / 15.0
    x_c = Q - x_a - x_b
    closed = res.ev_f[adl, codes.EF_QTY]
    assert list(closed) == [x_a, x_b, x_c]  # exactly, as specified
    assert closed.sum() == pytest.approx(Q, rel=1e-15)
    np.testing.assert_allclose(res.ev_f[adl, codes.EF_EXEC], PRICE, rtol=1e-12)
    np.testing.assert_allclose(res.ev_f[adl, codes.EF_BAD_DEBT], closed * DEFICIT / Q,
                               rtol=1e-12)
    assert not (res.ev_i[:, codes.EI_KIND] == codes.KIND_SOCIALISED).any()


def test_leverage_pro_rata_caps_each_share_at_its_size():
    weights = {}
    for name, qty, entry, usd in SHORTS[:3]:
        e, n, _ = short_values(qty, entry, usd)
        weights[name] = abs(qty) * (n / e)
    total = sum(weights.values())
    x_a = Q * weights["A"] / total
    x_b = Q * weights["B"] / total
    x_c = Q - x_a - x_b
    assert x_a < 2.0 and x_b > 5.0 and x_c < 8.0  # B is capped at its 5 BTC
    book, res, adl, names = run_book(adl_ranking="leverage_pro_rata")
    assert names == ["A", "B", "C"]
    np.testing.assert_allclose(res.ev_f[adl, codes.EF_QTY], [x_a, 5.0, x_c], rtol=1e-12)
    # what B could not take is socialised
    np.testing.assert_allclose(socialised_of_bankrupt(book, res), [DEFICIT * (x_b - 5.0) / Q],
                               rtol=1e-9)


@pytest.mark.parametrize("ranking", ["pnl_margin_ratio", "pro_rata"])
def test_the_cap_limits_adl_notional_per_step(ranking):
    cap = 100_000.0
    book, res, adl, _ = run_book(adl_ranking=ranking, adl_max_notional_per_step_usd=cap)
    allowed = cap / PRICE
    closed = res.ev_f[adl, codes.EF_QTY]
    assert closed.sum() == pytest.approx(allowed, rel=1e-12)
    assert res.ev_f[adl, codes.EF_NOTIONAL].sum() == pytest.approx(cap, rel=1e-12)
    np.testing.assert_allclose(socialised_of_bankrupt(book, res), [DEFICIT * (Q - allowed) / Q],
                               rtol=1e-12)
    # no cap: the whole deficit is covered by ADL
    _, free, _, _ = run_book(adl_ranking=ranking)
    assert len(socialised_of_bankrupt(book, free)) == 0


def test_each_fill_records_its_units_leverage_and_pnl():
    book, res, adl, names = run_book(adl_ranking="bybit")
    by_name = {s[0]: s for s in SHORTS}
    for row, name in zip(np.flatnonzero(adl), names, strict=True):
        _, qty, entry, usd = by_name[name]
        e, n, pnl = short_values(qty, entry, usd)
        assert res.ev_adl[row, codes.EA_LEVERAGE] == pytest.approx(n / e, rel=1e-12)
        assert res.ev_adl[row, codes.EA_PNL] == pytest.approx(pnl, rel=1e-12)
    figures = dict(zip(codes.ADL_PATH_COLUMNS, res.path_adl.T, strict=True))
    levs = [short_values(*by_name[nm][1:])[1] / short_values(*by_name[nm][1:])[0]
            for nm in names]
    assert figures["adl_leverage_mean"][0] == pytest.approx(np.mean(levs), rel=1e-12)
    assert figures["adl_leverage_median"][0] == pytest.approx(np.median(levs), rel=1e-12)
    assert figures["adl_in_profit_share"][0] == 1.0
    assert figures["adl_covered"][0] == pytest.approx(DEFICIT, rel=1e-12)
    assert figures["adl_overshoot"][0] == pytest.approx(Q * PRICE / DEFICIT, rel=1e-12)
    acct = res.acct_adl
    assert [book.account_ids[a] for a in np.flatnonzero(acct)] == ["A", "B", "C"]


def test_figures_of_fills_by_hand():
    """Two paths of made-up fills: means, an even-count median, equity <= 0 left out of the
    leverage, a path without ADL (NaN), and distinct (account, path) pairs."""
    ev_i = np.zeros((6, codes.N_EI), dtype=np.int64)
    ev_f = np.zeros((6, codes.N_EF))
    ev_adl = np.zeros((6, codes.N_EA))
    rows = [  # path, kind, unit, bad debt, leverage, pnl
        (0, codes.KIND_ADL, 0, 10.0, 2.0, 5.0),
        (0, codes.KIND_ADL, 1, 20.0, 4.0, -1.0),
        (0, codes.KIND_SOCIALISED, 2, 7.0, 0.0, 0.0),
        (0, codes.KIND_ADL, 0, 30.0, math.nan, 3.0),
        (2, codes.KIND_ADL, 2, 5.0, 1.0, 2.0),
        (2, codes.KIND_ADL, 2, 5.0, 3.0, 0.0),
    ]
    for j, (path, kind, unit, bad, lev, pnl) in enumerate(rows):
        ev_i[j, codes.EI_PATH], ev_i[j, codes.EI_KIND], ev_i[j, codes.EI_UNIT] = path, kind, unit
        ev_f[j, codes.EF_BAD_DEBT] = bad
        ev_adl[j] = lev, pnl
    fig = dict(zip(codes.ADL_PATH_COLUMNS,
                   path_adl_figures(ev_i, ev_f, ev_adl, np.array([600.0, 0.0, 50.0])).T,
                   strict=True))
    np.testing.assert_allclose(fig["adl_covered"], [60.0, 0.0, 10.0])
    np.testing.assert_allclose(fig["adl_overshoot"], [10.0, np.nan, 5.0])
    np.testing.assert_allclose(fig["adl_leverage_mean"], [3.0, np.nan, 2.0])
    np.testing.assert_allclose(fig["adl_leverage_median"], [3.0, np.nan, 2.0])
    np.testing.assert_allclose(fig["adl_pnl_mean"], [7.0 / 3.0, np.nan, 1.0])
    np.testing.assert_allclose(fig["adl_in_profit_share"], [2.0 / 3.0, np.nan, 0.5])
    counts, weighted = account_adl_counts(ev_i, np.array([0, 1, 1]), 3,
                                          np.array([2.0, 1.0, 0.5]))
    assert list(counts) == [1, 2, 0]  # account 1: units 1 and 2 on paths 0 and 2
    np.testing.assert_allclose(weighted, [[2.0, 4.0], [2.5, 4.25], [0.0, 0.0]])


def test_the_keys_at_their_defaults_keep_the_digest():
    """No cap (the default) leaves the key out of the digest: digests of older scenarios
    hold (this one's, recorded before issue #20); a cap, a new ranking count; bad values
    are errors naming the key."""
    from simulator.config.scenario import load_scenario
    from simulator.errors import ScenarioError

    name = "october-2025-cascade"
    before = "8ad8b6650902dfcf3b1b9094d3afeb5c81f1e371c2b6de8ace7653317d434fe3"
    assert load_scenario(name).digest == before
    assert load_scenario(name, ["venue.adl_max_notional_per_step_usd=inf"]).digest == before
    assert load_scenario(name, ["venue.adl_max_notional_per_step_usd=1e6"]).digest != before
    assert load_scenario(name, ["venue.adl_ranking=pro_rata"]).digest != before
    with pytest.raises(ScenarioError, match="adl_max_notional_per_step_usd: must be > 0"):
        load_scenario(name, ["venue.adl_max_notional_per_step_usd=0"])
    with pytest.raises(ScenarioError, match="leverage_pro_rata"):
        load_scenario(name, ["venue.adl_ranking=fifo"])
