"""Venue presets against the venues' own published formulas and worked numbers.

Each test computes a liquidation price (or a liquidation's amounts) by hand from the venue's
published formula and the tier table quoted in the test itself (not from the preset), then
gaps a deterministic market (zero volatility, no impact) to just past that price and just
short of it: the engine must liquidate in the first case and not in the second.

Sources: Binance "Leverage and Margin of USDⓈ-M Futures" and "How to Calculate Liquidation
Price" (isolated and cross formulas); Hyperliquid docs "Liquidations" (liquidation price);
Aave v3 docs "Liquidations" (health factor, close factor, bonus). Numbers as in VENUES.md.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator import prepare
from simulator.config.scenario import scenario_from_dict
from simulator.margin import codes, replay
from simulator.paths import generate_paths

#: Binance BTCUSDT brackets as published: (notional cap, MMR, maintenance amount)
BINANCE_BTC = [(50_000, 0.004, 0), (600_000, 0.005, 50), (3_000_000, 0.0065, 950),
               (12_000_000, 0.01, 11_450), (70_000_000, 0.02, 131_450),
               (100_000_000, 0.025, 481_450), (230_000_000, 0.05, 2_981_450)]
#: Binance ETHUSDT, first brackets as published
BINANCE_ETH = [(50_000, 0.005, 0), (600_000, 0.0065, 75), (3_000_000, 0.01, 2_175)]
EPS = 1e-6  # "just": a relative price move this small either side of the liquidation price


def binance_bracket(table, notional):
    """(MMR, cum) of the bracket holding ``notional``."""
    for cap, rate, cum in table:
        if notional <= cap:
            return rate, cum
    raise ValueError(notional)


def binance_isolated_lp(qty, entry, wallet, table):
    """Binance one-way isolated liquidation price, re-solved until the bracket agrees."""
    rate, cum = binance_bracket(table, abs(qty) * entry)
    for _ in range(10):
        if qty > 0:
            lp = (qty * entry - wallet - cum) / (qty * (1.0 - rate))
        else:
            lp = (-qty * entry + wallet + cum) / (-qty * (1.0 + rate))
        new = binance_bracket(table, abs(qty) * lp)
        if new == (rate, cum):
            return lp, rate
        rate, cum = new
    raise AssertionError("no consistent bracket")


def binance_cross_lp(qty, entry, wallet, other_mm, other_upnl, table):
    """Binance cross liquidation price: LP = (WB - TMM1 + UPNL1 + cum - s Q EP) /
    (|Q| MMR - s |Q|)."""
    s = 1.0 if qty > 0 else -1.0
    rate, cum = binance_bracket(table, abs(qty) * entry)
    for _ in range(10):
        lp = ((wallet - other_mm + other_upnl + cum - s * abs(qty) * entry)
              / (abs(qty) * rate - s * abs(qty)))
        new = binance_bracket(table, abs(qty) * lp)
        if new == (rate, cum):
            return lp, rate
        rate, cum = new
    raise AssertionError("no consistent bracket")


def deterministic(venue, accounts, gap, assets=None, gap_asset="BTC"):
    """Replay one zero-vol path with a gap at step 1; return the engine's result."""
    doc = {
        "name": "worked-example",
        "simulation": {"paths": 1, "seed": 1, "steps": 2, "horizon_days": 0.01,
                       "chunk_paths": 1},
        "market": {"model": "gbm", "assets": assets or [
            {"symbol": "BTC", "price": 60_000.0, "vol": 0.0, "depth_usd": 1e9},
            {"symbol": "ETH", "price": 3_000.0, "vol": 0.0, "depth_usd": 1e9}]},
        "liquidity": {"impact": "none"},
        "venue": venue,
        "shocks": [{"kind": "gap", "step": 1, "asset": gap_asset, "size": gap}],
        "accounts": accounts,
    }
    prep = prepare(scenario_from_dict(doc))
    exo = generate_paths(prep.inputs, 1, np.random.default_rng(0))
    res = replay(exo, prep.inputs.depth_usd, prep.book, prep.rules, index=prep.index)
    res.pnl = res.account_pnl(prep.acct_navk, prep.inputs.s0)
    return res, exo


def liquidated(res):
    kinds = res.ev_i[:, codes.EI_KIND]
    return bool(np.isin(kinds, (codes.KIND_LIQUIDATION, codes.KIND_BACKSTOP)).any())


def assert_liquidation_price(venue, accounts, lp, price0, long):
    """Liquidated just past ``lp``, not just short of it."""
    past = lp * (1 - EPS) if long else lp * (1 + EPS)
    short = lp * (1 + EPS) if long else lp * (1 - EPS)
    res, exo = deterministic(venue, accounts, past / price0 - 1.0)
    assert exo[0, 1, 0] == pytest.approx(past, rel=1e-12)
    assert liquidated(res), "not liquidated just past the liquidation price"
    res, _ = deterministic(venue, accounts, short / price0 - 1.0)
    assert not liquidated(res), "liquidated before the liquidation price"


BINANCE = {"preset": "binance-usdm"}


@pytest.mark.parametrize(("qty", "wallet", "bracket"), [
    (5.0, 30_000.0, 1),       # 300k notional: 0.50% bracket
    (-20.0, 60_000.0, 2),     # 1.2M short: 0.65% bracket
    (100.0, 600_000.0, 3),    # 6M: 1.00% bracket
    (0.5, 1_500.0, 0),        # 30k: 0.40% bracket
])
def test_binance_isolated_liquidation_price(qty, wallet, bracket):
    lp, rate = binance_isolated_lp(qty, 60_000.0, wallet, BINANCE_BTC)
    assert rate == BINANCE_BTC[bracket][1]  # the case sits in the bracket it claims
    account = {"id": "iso", "margin_mode": "isolated", "collateral": {"USD": wallet},
               "positions": [{"symbol": "BTC", "qty": qty, "entry": 60_000.0}]}
    assert_liquidation_price(BINANCE, [account], lp, 60_000.0, qty > 0)


@pytest.mark.parametrize(("btc_qty", "eth_qty", "wallet"), [
    (8.0, -100.0, 40_000.0),       # BTC 480k (0.50%), ETH short 300k (0.65%, cum 75)
    (-60.0, 10.0, 400_000.0),      # BTC short 3.6M (1.00%), ETH 30k (0.50%)
])
def test_binance_cross_liquidation_price(btc_qty, eth_qty, wallet):
    eth_notional = abs(eth_qty) * 3_000.0
    eth_rate, eth_cum = binance_bracket(BINANCE_ETH, eth_notional)
    other_mm = eth_notional * eth_rate - eth_cum  # ETH does not move: its MM is fixed
    lp, _ = binance_cross_lp(btc_qty, 60_000.0, wallet, other_mm, 0.0, BINANCE_BTC)
    account = {"id": "cross", "margin_mode": "cross", "collateral": {"USD": wallet},
               "positions": [{"symbol": "BTC", "qty": btc_qty, "entry": 60_000.0},
                             {"symbol": "ETH", "qty": eth_qty, "entry": 3_000.0}]}
    assert_liquidation_price(BINANCE, [account], lp, 60_000.0, btc_qty > 0)


def test_binance_bracket_change_between_entry_and_liquidation():
    """A position that enters in the 1% bracket and is liquidated in the 0.65% one: the
    formula must be re-solved with the lower bracket, and the engine agrees."""
    qty, wallet = 55.0, 700_000.0  # 3.3M at entry (1.00%); about 2.9M at liquidation
    lp, rate = binance_isolated_lp(qty, 60_000.0, wallet, BINANCE_BTC)
    assert binance_bracket(BINANCE_BTC, qty * 60_000.0)[0] == 0.01
    assert rate == 0.0065
    account = {"id": "iso", "margin_mode": "isolated", "collateral": {"USD": wallet},
               "positions": [{"symbol": "BTC", "qty": qty, "entry": 60_000.0}]}
    assert_liquidation_price(BINANCE, [account], lp, 60_000.0, True)


def hyperliquid_lp(price, side, qty, account_value, mmr):
    """Hyperliquid: liq_price = price - side * margin_available / (|Q| (1 - MMR side))."""
    margin_available = account_value - abs(qty) * price * mmr
    return price - side * margin_available / (abs(qty) * (1.0 - mmr * side))


@pytest.mark.parametrize(("mode", "qty", "margin"), [
    ("isolated", 2.0, 10_000.0),    # BTC 40x tier: MMR = 1 / (2 * 40) = 1.25%
    ("cross", -3.0, 20_000.0),
])
def test_hyperliquid_liquidation_price(mode, qty, margin):
    lp = hyperliquid_lp(60_000.0, math.copysign(1.0, qty), qty, margin, 1.0 / 80.0)
    account = {"id": "hl", "margin_mode": mode, "collateral": {"USD": margin},
               "positions": [{"symbol": "BTC", "qty": qty, "entry": 60_000.0}]}
    assert_liquidation_price({"preset": "hyperliquid"}, [account], lp, 60_000.0, qty > 0)


def test_hyperliquid_large_position_liquidated_a_fifth_at_a_time():
    """Over $100k of notional, a liquidation closes 20% per round."""
    qty, margin = 10.0, 30_000.0  # 600k notional
    lp = hyperliquid_lp(60_000.0, 1.0, qty, margin, 1.0 / 80.0)
    account = {"id": "hl", "margin_mode": "isolated", "collateral": {"USD": margin},
               "positions": [{"symbol": "BTC", "qty": qty, "entry": 60_000.0}]}
    res, _ = deterministic({"preset": "hyperliquid", "max_cascade_rounds": 1}, [account],
                           lp * (1 - 1e-4) / 60_000.0 - 1.0)
    assert len(res.ev_i) == 1
    assert res.ev_f[0, codes.EF_QTY] == pytest.approx(-0.2 * qty, rel=1e-12)


def test_hyperliquid_backstop_below_two_thirds_of_maintenance():
    """A gap to where equity is below 2/3 of maintenance hands the account to the vault at
    the mark; the vault keeps the remaining equity."""
    qty, margin = 1.0, 2_000.0  # 60k notional, MM 1.25%
    # equity = margin + qty (P - 60000); MM = 0.0125 qty P; pick E = 0.5 MM
    price = (60_000.0 - margin) / (1.0 - 0.5 * 0.0125)
    account = {"id": "hl", "margin_mode": "isolated", "collateral": {"USD": margin},
               "positions": [{"symbol": "BTC", "qty": qty, "entry": 60_000.0}]}
    res, exo = deterministic({"preset": "hyperliquid"}, [account], price / 60_000.0 - 1.0)
    mark = exo[0, 1, 0]
    assert res.ev_i[0, codes.EI_KIND] == codes.KIND_BACKSTOP
    assert res.ev_f[0, codes.EF_EXEC] == mark
    equity = margin + qty * (mark - 60_000.0)
    assert res.ev_f[0, codes.EF_FEE] == pytest.approx(equity, rel=1e-9)
    assert res.path_f[0, codes.PF_FUND_END] == pytest.approx(1e6 + equity, rel=1e-12)


AAVE = {"preset": "aave-v3", "insurance_fund_usd": 1_000.0}
LT_WETH = 0.83
BORROWER = {"id": "borrower", "collateral": {"ETH": 10.0}, "debt": {"USD": 15_000.0}}
AAVE_ASSETS = [{"symbol": "ETH", "price": 2_000.0, "vol": 0.0, "depth_usd": 1e9},
               {"symbol": "BTC", "price": 60_000.0, "vol": 0.0, "depth_usd": 1e9}]


def aave(gap):
    """The borrower on Aave (10 ETH against 15,000 USD of debt) after an ETH gap."""
    return deterministic(AAVE, [BORROWER], gap, AAVE_ASSETS, gap_asset="ETH")


def test_aave_health_factor_one_is_the_liquidation_price():
    lp = 15_000.0 / (10.0 * LT_WETH)  # HF = 10 P LT / 15000 = 1
    res, _ = aave(lp * (1 - EPS) / 2_000.0 - 1.0)
    assert liquidated(res)
    res, _ = aave(lp * (1 + EPS) / 2_000.0 - 1.0)
    assert not liquidated(res)


def events_by_instrument(res):
    ins = res.ev_i[:, codes.EI_INSTRUMENT]
    return res.ev_f[ins == codes.INSTRUMENT_DEBT], res.ev_f[ins == codes.INSTRUMENT_COLLATERAL]


def test_aave_close_factor_half_above_hf_095():
    """HF 0.99: half the debt is repaid, collateral worth 105% of it is seized, the protocol
    takes 10% of the bonus."""
    price = 0.99 * 15_000.0 / (10.0 * LT_WETH)
    res, exo = aave(price / 2_000.0 - 1.0)
    p = exo[0, 1, 0]
    debt, coll = events_by_instrument(res)
    assert len(debt) == 1 and len(coll) == 1
    assert debt[0, codes.EF_QTY] == pytest.approx(7_500.0, rel=1e-12)
    assert coll[0, codes.EF_QTY] == pytest.approx(-7_500.0 * 1.05 / p, rel=1e-12)
    assert coll[0, codes.EF_FEE] == pytest.approx(0.1 * 0.05 * 7_500.0, rel=1e-9)
    # afterwards HF > 1: one liquidation only
    hf_after = (10.0 - 7_500.0 * 1.05 / p) * p * LT_WETH / 7_500.0
    assert hf_after > 1.0
    assert res.path_i[0, codes.PI_N_LIQUIDATIONS] == 1


def test_aave_close_factor_full_below_hf_095():
    price = 0.90 * 15_000.0 / (10.0 * LT_WETH)
    res, exo = aave(price / 2_000.0 - 1.0)
    p = exo[0, 1, 0]
    debt, coll = events_by_instrument(res)
    assert debt[0, codes.EF_QTY] == pytest.approx(15_000.0, rel=1e-12)
    assert coll[0, codes.EF_QTY] == pytest.approx(-15_750.0 / p, rel=1e-12)
    assert res.path_f[0, codes.PF_BAD_DEBT] == 0.0


def test_aave_bad_debt_written_off_when_collateral_runs_out():
    """ETH at 1,400: collateral 14,000 < 15,000 x 1.05: all of it is seized for
    14,000 / 1.05 of debt; the rest is bad debt, paid by the fund up to its size."""
    res, exo = aave(1_400.0 / 2_000.0 - 1.0)
    p = exo[0, 1, 0]
    repaid = 10.0 * p / 1.05
    bad = 15_000.0 - repaid
    assert res.path_f[0, codes.PF_BAD_DEBT] == pytest.approx(bad, rel=1e-9)
    fee = 0.1 * (10.0 * p - repaid)
    assert res.path_f[0, codes.PF_FUND_END] == pytest.approx(max(1_000.0 + fee - bad, 0.0),
                                                             abs=1e-9)
    assert res.path_f[0, codes.PF_SOCIALISED] == pytest.approx(bad - 1_000.0 - fee, rel=1e-9)
    kinds = res.ev_i[:, codes.EI_KIND]
    assert (kinds == codes.KIND_SOCIALISED).sum() == 1
    assert (kinds == codes.KIND_ADL).sum() == 0


# --------------------------------------------------------------------------- inverse


def inverse_lp(contracts, entry, coin_margin, mmr):
    """Inverse (coin-margined) liquidation price from the coin-denominated rule
    margin + C (1/entry - 1/P) = mmr |C| / P (BitMEX / Deribit construction)."""
    if contracts > 0:
        return contracts * (1.0 + mmr) / (coin_margin + contracts / entry)
    size = -contracts
    if size / entry <= coin_margin:
        return math.inf  # a short fully covered by the coin margin is a hedge
    return size * (1.0 - mmr) / (size / entry - coin_margin)


COIN_BTC = [{"symbol": "BTC", "price": 60_000.0, "vol": 0.0, "depth_usd": 1e9, "haircut": 0.0}]


@pytest.mark.parametrize(("contracts", "coin"), [(600_000.0, 1.0), (-600_000.0, 1.0),
                                                 (50_000.0, 0.2)])
def test_inverse_liquidation_price(contracts, coin):
    lp = inverse_lp(contracts, 60_000.0, coin, 0.01)
    account = {"id": "inv", "margin_mode": "isolated", "collateral": {"BTC": coin},
               "positions": [{"symbol": "BTC", "type": "inverse", "qty": contracts,
                              "entry": 60_000.0}]}
    venue = {"preset": "deribit"}  # MM 1%
    long = contracts > 0
    past = lp * (1 - EPS) if long else lp * (1 + EPS)
    short = lp * (1 + EPS) if long else lp * (1 - EPS)
    res, _ = deterministic(venue, [account], past / 60_000.0 - 1.0, COIN_BTC)
    assert liquidated(res)
    ins = res.ev_i[res.ev_i[:, codes.EI_KIND] == codes.KIND_LIQUIDATION, codes.EI_INSTRUMENT]
    assert codes.INSTRUMENT_INVERSE in ins
    res, _ = deterministic(venue, [account], short / 60_000.0 - 1.0, COIN_BTC)
    assert not liquidated(res)


def test_inverse_short_covered_by_its_coin_is_never_liquidated():
    """10 BTC against a 600,000 USD short: the coin hedges the contracts at any price."""
    account = {"id": "hedge", "collateral": {"BTC": 10.0},
               "positions": [{"symbol": "BTC", "type": "inverse", "qty": -600_000.0,
                              "entry": 60_000.0}]}
    assert inverse_lp(-600_000.0, 60_000.0, 10.0, 0.01) == math.inf
    for gap in (-0.9, 9.0, 99.0):
        res, _ = deterministic({"preset": "deribit"}, [account], gap, COIN_BTC)
        assert not liquidated(res)


def test_inverse_pnl_is_paid_in_the_coin():
    """A coin-margined long loses on its contracts and on its coin margin; a partial
    liquidation credits the coin, not USD."""
    contracts, coin, entry = 600_000.0, 1.0, 60_000.0
    account = {"id": "inv", "collateral": {"BTC": coin},
               "positions": [{"symbol": "BTC", "type": "inverse", "qty": contracts,
                              "entry": entry}]}
    doc_price = 0.95 * entry  # no liquidation (LP is about 55,091)
    res, exo = deterministic({"preset": "deribit"}, [account], doc_price / entry - 1.0,
                             COIN_BTC)
    assert not liquidated(res)
    p = exo[0, -1, 0]
    expected = coin * (p - entry) + contracts * (p / entry - 1.0)
    assert res.pnl[0, 0] == pytest.approx(expected, rel=1e-12)
    # a deeper gap: the preset's partial liquidation closes part of the contracts, and the
    # realised loss leaves the coin balance, not a USD one
    res, exo = deterministic({"preset": "deribit", "liquidation_fee_rate": 0.0}, [account],
                             55_000.0 / entry - 1.0, COIN_BTC)
    (ev,) = res.ev_f[res.ev_i[:, codes.EI_KIND] == codes.KIND_LIQUIDATION]
    closed = -ev[codes.EF_QTY]
    assert 0 < closed < contracts
    x = ev[codes.EF_EXEC]
    p = exo[0, -1, 0]
    coin_after = coin + closed * (1.0 / entry - 1.0 / x)
    expected = coin_after * p - coin * entry + (contracts - closed) * (p / entry - 1.0)
    assert res.pnl[0, 0] == pytest.approx(expected, rel=1e-9)


def test_wrong_way_collateral_raises_the_liquidation_price():
    """A BTC long margined with BTC (haircut 10%) is liquidated sooner than the same long
    margined with the same USD value: its margin falls with the position. Closed form:
    m P (1 - h) + q (P - E) = r q P  ->  P = q E / (m (1 - h) + q (1 - r))."""
    q, entry, r, h = 5.0, 60_000.0, 0.005, 0.10
    coin = 0.5  # 30,000 USD of BTC at the entry price (27,000 after the haircut)
    lp_coin = q * entry / (coin * (1 - h) + q * (1 - r))
    lp_usd = (q * entry - coin * entry * (1 - h)) / (q * (1 - r))  # same margin, in USD
    assert lp_coin > lp_usd
    assets = [{"symbol": "BTC", "price": entry, "vol": 0.0, "depth_usd": 1e9, "haircut": h}]
    venue = {"maintenance_margin_rate": r, "liquidation_fee_rate": 0.0}
    for collateral, lp in (({"BTC": coin}, lp_coin), ({"USD": coin * entry * (1 - h)}, lp_usd)):
        account = {"id": "a", "margin_mode": "isolated", "collateral": collateral,
                   "positions": [{"symbol": "BTC", "qty": q, "entry": entry}]}
        res, _ = deterministic(venue, [account], lp * (1 - EPS) / entry - 1.0, assets)
        assert liquidated(res)
        res, _ = deterministic(venue, [account], lp * (1 + EPS) / entry - 1.0, assets)
        assert not liquidated(res)
