"""Liquidation prices at the start (issue #19, point 4; :mod:`simulator.margin.liq_prices`).

- Binance's and Hyperliquid's published liquidation-price formulas (``VENUES.md``), with
  their bracket tables written out here from ``VENUES.md`` (not read from the presets),
  on cross and isolated accounts of the ``binance-usdm`` and ``hyperliquid`` presets; one
  Binance case per margin mode whose start bracket is not the bracket at the liquidation
  price (the formula recomputed with the other tier, as Binance does).
- On random books (brackets, haircuts, lending debts, inverse perpetuals, options under
  both rules) the reported price is a zero of the slow reference engine's ``E - MM``
  (``tests/reference``), and a brute-force scan of that slack over the price band finds no
  sign change nearer the start; where nothing is reported, the scan finds none at all.
- Nulls: no exposure, a unit that is never liquidatable; accounts below maintenance at the
  start; isolated accounts with several units.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.book.build import assemble_book, build_book
from simulator.config.limits import PRICE_CAP_RATIO, PRICE_FLOOR_RATIO
from simulator.config.market import Liquidity
from simulator.config.scenario import Venue, scenario_from_dict
from simulator.margin import EngineRules, codes
from simulator.margin.liq_prices import liquidation_prices, unit_liquidation_prices

from .. import reference
from ..support import option_cases, rule_cases
from ..support.compare import naive_options

INF = math.inf
RTOL = 1e-9

# ---------------------------------------------------------------------------------------
# Venue formulas
# ---------------------------------------------------------------------------------------

#: VENUES.md, "Binance USD-M futures": BTCUSDT and ETHUSDT brackets (notional cap, MMR)
BINANCE_BTC = [(50_000, 0.004), (600_000, 0.005), (3_000_000, 0.0065), (12_000_000, 0.01),
               (70_000_000, 0.02), (100_000_000, 0.025), (INF, 0.05)]
BINANCE_ETH = [(50_000, 0.005), (600_000, 0.0065), (3_000_000, 0.01), (70_000_000, 0.02),
               (100_000_000, 0.025), (INF, 0.05)]


def binance_cum(table, k):
    """``cum_k = cum_{k-1} + floor_k (MMR_k - MMR_{k-1})``, ``cum_1 = 0`` (VENUES.md)."""
    return sum(table[j - 1][0] * (table[j][1] - table[j - 1][1]) for j in range(1, k + 1))


def binance_tier(table, notional):
    return next(k for k, (cap, _) in enumerate(table) if notional <= cap)


def binance_lp(table, qty, entry, wb, start_price, tmm1=0.0, upnl1=0.0):
    """Binance's one-way-mode formula, recomputed with the tier of the price found until
    the tier holds: ``LP = (WB - TMM1 + UPNL1 + cum - s Q EP) / (|Q| MMR - s |Q|)``.
    Returns the price, the tier at the start and the tier at the price."""
    s, q = math.copysign(1.0, qty), abs(qty)
    k = k_start = binance_tier(table, q * start_price)
    for _ in range(len(table)):
        mmr, cum = table[k][1], binance_cum(table, k)
        lp = (wb - tmm1 + upnl1 + cum - s * q * entry) / (q * mmr - s * q)
        k_lp = binance_tier(table, q * lp)
        if k_lp == k:
            return lp, k_start, k
        k = k_lp
    raise AssertionError("no consistent tier")


def scenario(preset, assets, accounts, **venue):
    doc = {"name": "liq-prices", "simulation": {"paths": 10, "steps": 4, "seed": 1},
           "market": {"model": "gbm",
                      "assets": [{"symbol": s, "price": p, "vol": 0.5, "depth_usd": 1e9,
                                  "haircut": 0.0}
                                 for s, p in assets]},
           "venue": {"preset": preset, **venue},
           "accounts": accounts or [account("rules-only", 1.0, [])]}
    sc = scenario_from_dict(doc)
    s0 = np.array([a.price for a in sc.market.assets])
    return build_book(sc), EngineRules.for_scenario(sc), s0


def account(acct_id, usd, positions, mode="cross"):
    return {"id": acct_id, "margin_mode": mode, "collateral": {"USD": usd},
            "positions": [{"symbol": s, "qty": q, "entry": e} for s, q, e in positions]}


def test_binance_formula_isolated_and_cross():
    book, rules, s0 = scenario("binance-usdm", [("BTC", 60_000.0), ("ETH", 3_000.0)], [
        account("iso-long", 60_000.0, [("BTC", 10.0, 60_000.0)], "isolated"),
        account("iso-long-tier", 200_000.0, [("BTC", 12.0, 60_000.0)], "isolated"),
        account("iso-short", 30_000.0, [("BTC", -5.0, 60_000.0)], "isolated"),
        account("cross", 500_000.0, [("BTC", 20.0, 58_000.0), ("ETH", -100.0, 3_100.0)]),
    ])
    got = liquidation_prices(book, rules, s0)
    # isolated long, 600,000 notional: tier 2 (0.5%, cum 50) at the start and at the price:
    # (Q EP - WB - cum) / (Q (1 - MMR)) = (600,000 - 60,000 - 50) / 9.95
    lp, k0, k1 = binance_lp(BINANCE_BTC, 10.0, 60_000.0, 60_000.0, 60_000.0)
    assert (k0, k1) == (1, 1)
    assert lp == pytest.approx(539_950.0 / 9.95, rel=1e-15)
    assert got[0, 0] == pytest.approx(lp, rel=RTOL)
    # 720,000 notional starts in tier 3 (0.65%, cum 950): the formula gives 43,537, where
    # the notional (522,445) is in tier 2: recomputed with tier 2, 519,950 / 11.94
    lp3 = (720_000.0 - 200_000.0 - 950.0) / (12.0 * (1.0 - 0.0065))
    assert binance_tier(BINANCE_BTC, 12.0 * lp3) == 1
    lp, k0, k1 = binance_lp(BINANCE_BTC, 12.0, 60_000.0, 200_000.0, 60_000.0)
    assert (k0, k1) == (2, 1)
    assert lp == pytest.approx(519_950.0 / 11.94, rel=1e-15)
    assert got[1, 0] == pytest.approx(lp, rel=RTOL)
    assert abs(got[1, 0] / lp3 - 1.0) > 1e-5  # the start tier's answer is not it
    # isolated short: (Q EP + WB + cum) / (Q (1 + MMR)), tier 2
    lp, _, _ = binance_lp(BINANCE_BTC, -5.0, 60_000.0, 30_000.0, 60_000.0)
    assert lp == pytest.approx((300_000.0 + 30_000.0 + 50.0) / (5.0 * 1.005), rel=1e-15)
    assert got[2, 0] == pytest.approx(lp, rel=RTOL)
    assert np.isnan(got[:3, 1]).all()  # no ETH exposure
    # cross: the other position's maintenance (TMM1) and PnL (UPNL1) at the start
    btc_mm = 1_200_000.0 * 0.0065 - binance_cum(BINANCE_BTC, 2)
    eth_mm = 300_000.0 * 0.0065 - binance_cum(BINANCE_ETH, 1)
    lp_btc, k0, k1 = binance_lp(BINANCE_BTC, 20.0, 58_000.0, 500_000.0, 60_000.0,
                                tmm1=eth_mm, upnl1=-100.0 * (3_000.0 - 3_100.0))
    assert k0 == k1 == 2
    assert got[3, 0] == pytest.approx(lp_btc, rel=RTOL)
    # ETH short starts in tier 2 (0.65%) and is liquidated in tier 3 (1%, cum 2,175)
    lp_eth, k0, k1 = binance_lp(BINANCE_ETH, -100.0, 3_100.0, 500_000.0, 3_000.0,
                                tmm1=btc_mm, upnl1=20.0 * (60_000.0 - 58_000.0))
    assert (k0, k1) == (1, 2)
    assert lp_eth == pytest.approx((500_000.0 - 6_850.0 + 40_000.0 + 2_175.0 + 310_000.0)
                                   / 101.0, rel=1e-12)
    assert got[3, 1] == pytest.approx(lp_eth, rel=RTOL)


def hyperliquid_lp(price, qty, margin_available, mmr):
    """``price - side margin_available / (|Q| (1 - MMR side))`` (VENUES.md)."""
    side = math.copysign(1.0, qty)
    return price - side * margin_available / (abs(qty) * (1.0 - mmr * side))


def test_hyperliquid_formula_isolated_and_cross():
    # VENUES.md: BTC 40x below $150M (MMR 1/(2 x 40) = 1.25%), ETH 25x below $100M (2%)
    book, rules, s0 = scenario("hyperliquid", [("BTC", 100_000.0), ("ETH", 3_500.0)], [
        account("cross", 20_000.0, [("BTC", 2.0, 95_000.0), ("ETH", -10.0, 3_600.0)]),
        account("iso-long", 5_000.0, [("BTC", 1.0, 100_000.0)], "isolated"),
        account("iso-short", 2_000.0, [("ETH", -5.0, 3_500.0)], "isolated"),
    ])
    got = liquidation_prices(book, rules, s0)
    value = 20_000.0 + 2.0 * 5_000.0 + (-10.0) * (3_500.0 - 3_600.0)  # account value
    mm = 200_000.0 * 0.0125 + 35_000.0 * 0.02
    available = value - mm  # 27,800
    assert got[0, 0] == pytest.approx(hyperliquid_lp(100_000.0, 2.0, available, 0.0125),
                                      rel=RTOL)
    assert got[0, 1] == pytest.approx(hyperliquid_lp(3_500.0, -10.0, available, 0.02),
                                      rel=RTOL)
    # isolated (entry at the mark: the isolated margin is the allocated USD)
    assert got[1, 0] == pytest.approx(
        hyperliquid_lp(100_000.0, 1.0, 5_000.0 - 1_250.0, 0.0125), rel=RTOL)
    assert got[2, 1] == pytest.approx(
        hyperliquid_lp(3_500.0, -5.0, 2_000.0 - 350.0, 0.02), rel=RTOL)
    assert np.isnan(got[1, 1]) and np.isnan(got[2, 0])
    assert got[1, 0] == pytest.approx(100_000.0 - 3_750.0 / 0.9875, rel=1e-12)


# ---------------------------------------------------------------------------------------
# Properties on random books, against the reference engine
# ---------------------------------------------------------------------------------------

#: the scan: log-price offsets 0.01 apart within +-0.5, 0.05 within +-3, 0.25 beyond
SCAN = np.unique(np.concatenate([
    np.arange(-0.5, 0.5, 0.01), np.arange(-3.0, 3.0, 0.05),
    np.arange(math.log(PRICE_FLOOR_RATIO), math.log(PRICE_CAP_RATIO), 0.25),
    [0.0, math.log(PRICE_FLOOR_RATIO), math.log(PRICE_CAP_RATIO)]]))


def ref_slack(ref, u, a, x, s0):
    marks = [float(v) for v in s0]
    marks[a] = float(x)
    return ref.equity(u, marks) - ref.maintenance(u, marks)


def ref_scale(ref, u, a, x, s0):
    """Size of the terms of the slack (its rounding is relative to it)."""
    marks = [float(v) for v in s0]
    marks[a] = float(x)
    total = 1.0 + abs(ref.usd[u]) + sum(abs(c) * m for c, m in zip(ref.coll[u], marks,
                                                                   strict=True))
    for p in ref.open_positions(u):
        q, entry = abs(ref.qty[p]), ref.entry[p]
        total += q if ref.inverse(p) else q * (marks[ref.asset[p]] + entry)
    return total


def exposed(book, u, a):
    open_ = (book.pos_qty != 0.0) & (book.pos_unit == u) & (book.pos_asset == a)
    return bool(open_.any() or book.unit_coll[u, a] != 0.0)


def check_against_scan(book, rules, ref, s0, units=None, scan=SCAN):
    """Every reported price is a zero of the reference slack, none nearer the start is
    seen by the scan, and a unit without a price shows no sign change on the scan.
    Returns how many prices were checked."""
    got = unit_liquidation_prices(book, rules, s0)
    n_found = 0
    for u in range(book.n_units) if units is None else units:
        for a in range(len(s0)):
            x = got[u, a]
            if not exposed(book, u, a) or not ref.live(u):
                assert np.isnan(x), (u, a)
                continue
            xs = s0[a] * np.exp(scan)
            xs[0], xs[-1] = s0[a] * PRICE_FLOOR_RATIO, s0[a] * PRICE_CAP_RATIO
            f = np.array([ref_slack(ref, u, a, v, s0) for v in xs])
            cross = np.flatnonzero((np.sign(f[:-1]) * np.sign(f[1:]) < 0) | (f[:-1] == 0))
            far = np.maximum(np.abs(scan[cross]), np.abs(scan[cross + 1]))
            if np.isnan(x):
                assert len(cross) == 0, (u, a, xs[cross])
                continue
            n_found += 1
            assert s0[a] * PRICE_FLOOR_RATIO <= x <= s0[a] * PRICE_CAP_RATIO
            assert abs(ref_slack(ref, u, a, x, s0)) <= RTOL * ref_scale(ref, u, a, x, s0), \
                (u, a, x)
            if len(cross):  # the nearest sign change of the scan is no nearer than x
                assert abs(math.log(x / s0[a])) <= far.min() + 1e-12, (u, a, x)
    return n_found


@pytest.mark.parametrize("case", [c for c in rule_cases.CASES
                                  if c.name in ("tiers-full", "adl-off", "lending-linear")],
                         ids=lambda c: c.name)
@pytest.mark.parametrize("seed", [1, 2])
def test_random_books_match_the_reference(case, seed):
    s = rule_cases.build(case, seed)
    rules = EngineRules.from_scenario(s.venue, s.liquidity, s.market)
    ref = reference.Book(s.haircut.tolist(),
                         *(t.tolist() for t in rule_cases.tier_tables(s.venue)),
                         s.book.unit_usd.tolist(), s.book.unit_coll.tolist(),
                         s.book.pos_unit.tolist(), s.book.pos_asset.tolist(),
                         s.book.pos_qty.tolist(), s.book.pos_entry.tolist())
    assert check_against_scan(s.book, rules, ref, rule_cases.PRICES) > 20
    if case.lending:  # there the price is the one of a health factor of 1
        got = unit_liquidation_prices(s.book, rules, rule_cases.PRICES)
        for u, a in zip(*np.nonzero(np.isfinite(got)), strict=True):
            marks = rule_cases.PRICES.copy()
            marks[a] = got[u, a]
            debt = max(-s.book.unit_usd[u], 0.0) + sum(
                abs(s.book.pos_qty[p]) * marks[s.book.pos_asset[p]]
                for p in range(s.book.unit_pos_start[u], s.book.unit_pos_start[u + 1]))
            held = max(s.book.unit_usd[u], 0.0) + float(
                s.book.unit_coll[u] @ (marks * (1.0 - s.haircut)))
            assert held / debt == pytest.approx(1.0, rel=1e-9)


def random_inverse_book(rng, n_accounts=30):
    """Inverse, linear and mixed accounts, cross or isolated, margined in USD, in the coin
    (with a haircut) or with a coin debt (counted without haircut); a cross account may
    hold two perpetuals on one asset (each in its own bracket)."""
    n_assets = len(rule_cases.PRICES)
    isolated = rng.random(n_accounts) < 0.3
    usd = np.zeros(n_accounts)
    coll = np.zeros((n_accounts, n_assets))
    cols = {k: [] for k in ("account", "asset", "qty", "entry", "kind")}
    for i in range(n_accounts):
        margin = 0.0
        a = int(rng.integers(n_assets))
        for _ in range(int(rng.integers(1, 4))):
            a = a if rng.random() < 0.5 else int(rng.integers(n_assets))
            kind = codes.POS_INVERSE if rng.random() < 0.5 else codes.POS_LINEAR
            entry = rule_cases.PRICES[a] * float(rng.uniform(0.97, 1.03))
            size = float(rng.lognormal(np.log(2000.0), 0.8))  # USD
            side = 1.0 if rng.random() < 0.55 else -1.0
            qty = side * (size if kind == codes.POS_INVERSE else size / entry)
            for key, v in zip(cols, (i, a, qty, entry, kind), strict=True):
                cols[key].append(v)
            margin += size / float(rng.uniform(2.0, 20.0))
        roll = rng.random()
        a = int(rng.integers(n_assets))
        if roll < 0.4:
            coll[i, a] = margin / rule_cases.PRICES[a] * 1.3
        elif roll < 0.55 and not isolated[i]:
            coll[i, a] = -0.3 * margin / rule_cases.PRICES[a]  # a coin debt
            usd[i] = 1.3 * margin
        else:
            usd[i] = margin
    arr = {k: np.array(v) for k, v in cols.items()}
    return assemble_book([f"acct-{i}" for i in range(n_accounts)], isolated, usd, coll,
                         arr["account"], arr["asset"], arr["qty"], arr["entry"],
                         pos_kind=arr["kind"])


@pytest.mark.parametrize("tiers", [False, True], ids=["flat", "tiers"])
def test_inverse_books_match_the_reference(tiers):
    venue = Venue(maintenance_margin_rate=0.02, brackets=rule_cases.TIERS if tiers else ())
    haircut = np.array([0.0, 0.15, 0.3])
    book = random_inverse_book(np.random.default_rng(7 + tiers))
    assert (book.pos_kind == codes.POS_INVERSE).sum() > 10 and (book.unit_coll < 0).any()
    linear = book.pos_kind == codes.POS_LINEAR
    _, n_same = np.unique(book.pos_unit[linear] * 3 + book.pos_asset[linear],
                          return_counts=True)
    assert (n_same > 1).sum() >= 2  # units with two perpetuals on one asset
    rules = EngineRules.from_scenario(venue, Liquidity(), rule_cases.market(haircut))
    ref = reference.Book(haircut.tolist(), *(t.tolist() for t in rule_cases.tier_tables(venue)),
                         book.unit_usd.tolist(), book.unit_coll.tolist(),
                         book.pos_unit.tolist(), book.pos_asset.tolist(),
                         book.pos_qty.tolist(), book.pos_entry.tolist(), book.pos_kind.tolist())
    assert check_against_scan(book, rules, ref, rule_cases.PRICES) > 20


@pytest.mark.parametrize("name", ["standard-full-adl", "standard-partial-tiers",
                                  "matrix-full"])
def test_option_books_match_the_reference(name):
    case = next(c for c in option_cases.CASES if c.name == name)
    s = option_cases.build(case, 1)
    rules = option_cases.rules_of(s)
    book = s.book
    ref = reference.Book(option_cases.HAIRCUT.tolist(),
                         *(t.tolist() for t in rule_cases.tier_tables(s.venue)),
                         book.unit_usd.tolist(), book.unit_coll.tolist(), book.pos_unit.tolist(),
                         book.pos_asset.tolist(), book.pos_qty.tolist(), book.pos_entry.tolist(),
                         book.pos_kind.tolist(),
                         naive_options(book, rules.options, option_cases.STEPS,
                                       rule_cases.PRICES))
    assert check_against_scan(book, rules, ref, rule_cases.PRICES) >= 8


# ---------------------------------------------------------------------------------------
# Definitions: nulls, several roots, isolated accounts, below maintenance
# ---------------------------------------------------------------------------------------

TWO = [("BTC", 60_000.0), ("ETH", 3_000.0)]


def flat(accounts, rate=0.01, **venue):
    return scenario("binance-usdm", TWO, accounts, maintenance_margin_rate=rate, **venue)


def test_nulls_without_exposure_or_root():
    book, rules, s0 = scenario("binance-usdm", TWO, [
        account("unlevered-long", 70_000.0, [("BTC", 1.0, 60_000.0)]),  # no root above 0
        account("collateral-only", 0.0, []),
        {"id": "coins", "collateral": {"USD": 10.0, "BTC": 2.0}},  # never liquidatable
    ])
    got = liquidation_prices(book, rules, s0)
    assert np.isnan(got).all()


def test_isolated_accounts_take_each_assets_unit_and_the_nearest():
    # 100,000 USD split by entry notional: 80% to the BTC unit, 20% to the ETH unit
    book, rules, s0 = flat([
        account("two-assets", 100_000.0, [("BTC", 8.0, 60_000.0), ("ETH", -40.0, 3_000.0)],
                "isolated"),
        account("two-btc", 30_000.0, [("BTC", 2.0, 60_000.0), ("BTC", 3.0, 60_000.0)],
                "isolated"),
    ])
    got = liquidation_prices(book, rules, s0)
    assert got[0, 0] == pytest.approx((8 * 60_000 - 80_000) / (8 * 0.99), rel=RTOL)
    assert got[0, 1] == pytest.approx((40 * 3_000 + 20_000) / (40 * 1.01), rel=RTOL)
    # both BTC units have 2/5 and 3/5 of 30,000: the same leverage, the same price
    per_unit = unit_liquidation_prices(book, rules, s0)
    assert per_unit[2, 0] == pytest.approx(per_unit[3, 0], rel=1e-12)
    assert got[1, 0] == pytest.approx((2 * 60_000 - 12_000) / (2 * 0.99), rel=RTOL)
    # two units on one asset, one long and one short: the nearest of the two
    book, rules, s0 = flat([account("hedged", 20_000.0, [("BTC", 1.0, 60_000.0),
                                                         ("BTC", -1.0, 60_000.0)],
                                    "isolated")])
    per_unit = unit_liquidation_prices(book, rules, s0)
    down = (60_000 - 10_000) / 0.99
    up = (60_000 + 10_000) / 1.01
    assert per_unit[:, 0] == pytest.approx([down, up], rel=RTOL)
    nearest = down if abs(math.log(down / 60_000)) < abs(math.log(up / 60_000)) else up
    assert liquidation_prices(book, rules, s0)[0, 0] == pytest.approx(nearest, rel=RTOL)


def test_several_roots_nearest_in_log_distance_and_below_maintenance():
    """A cross unit with 1.2 BTC of collateral, short 1 BTC and a USD debt: its slack rises
    with the mark while the short is in the 1% bracket and falls above the cap (50%): two
    roots, one in each bracket, and it starts below maintenance, outside both."""
    brackets = {"BTC": [{"max_notional_usd": 100_000.0, "rate": 0.01}, {"rate": 0.5}]}
    _, rules, s0 = scenario("binance-usdm", TWO, [], brackets=brackets)
    book = assemble_book(["below"], np.array([False]), np.array([-75_000.0]),
                         np.array([[1.2, 0.0]]), np.array([0]), np.array([0]),
                         np.array([-1.0]), np.array([60_000.0]))

    def slack(x):  # cum of the 50% bracket: 100,000 x 0.49
        mm = 0.01 * x if x <= 100_000 else 0.5 * x - 49_000.0
        return -75_000.0 + 1.2 * x - (x - 60_000.0) - mm

    assert slack(60_000.0) < 0  # below maintenance at the start
    lo_root = 15_000.0 / 0.19  # in the 1% bracket: 78,947
    hi_root = 34_000.0 / 0.3  # in the 50% bracket: 113,333
    assert slack(lo_root) == pytest.approx(0.0, abs=1e-9)
    assert slack(hi_root) == pytest.approx(0.0, abs=1e-9)
    per_unit = unit_liquidation_prices(book, rules, s0)
    # the nearer in log distance: 0.27 against 0.64; the bracket's line at the start
    # (0.01) would put the upper root at (75,000 - 60,000) / 0.19, outside its bracket
    assert per_unit[0, 0] == pytest.approx(lo_root, rel=RTOL)
    assert np.isnan(per_unit[0, 1])
    # above the cap: the start at 120,000 lies beyond both; nearest is the upper root
    s_hi = np.array([120_000.0, 3_000.0])
    assert unit_liquidation_prices(book, rules, s_hi)[0, 0] == pytest.approx(hi_root,
                                                                              rel=RTOL)


def test_option_unit_brute_force_nearest_root():
    """A short strangle on BTC: the slack crosses 0 below and above the start; the
    nearer crossing in log distance is reported (brute force over a fine grid)."""
    book = assemble_book(["strangle"], np.array([False]), np.array([20_000.0]),
                         np.zeros((1, 2)), np.array([0, 0]), np.array([0, 0]),
                         np.array([-1.0, -1.0]), np.array([52_000.0, 70_000.0]),
                         pos_kind=np.array([codes.POS_PUT, codes.POS_CALL]),
                         pos_expiry_years=np.array([0.05, 0.05]),
                         pos_iv=np.array([0.6, 0.6]))
    _, rules, s0 = scenario("deribit", TWO, [])
    got = liquidation_prices(book, rules, s0)[0]
    assert np.isnan(got[1])
    opts = naive_options(book, rules.options, 1, s0)
    ref = reference.Book(rules.haircut.tolist(), *(rules.tiers[:, :, i].tolist()
                                                   for i in range(3)),
                         book.unit_usd.tolist(), book.unit_coll.tolist(),
                         book.pos_unit.tolist(), book.pos_asset.tolist(),
                         book.pos_qty.tolist(), book.pos_entry.tolist(),
                         book.pos_kind.tolist(), opts)
    xs = 60_000.0 * np.exp(np.linspace(-1.0, 1.0, 20_001))
    f = np.array([ref_slack(ref, 0, 0, x, s0) for x in xs])
    assert f[10_000] > 0
    cross = np.flatnonzero(np.sign(f[:-1]) != np.sign(f[1:]))
    assert len(cross) >= 2 and (xs[cross] < 60_000).any() and (xs[cross] > 60_000).any()
    nearest = cross[np.argmin(np.abs(np.log(xs[cross] / 60_000)))]
    assert xs[nearest] <= got[0] <= xs[nearest + 1]
    assert abs(ref_slack(ref, 0, 0, got[0], s0)) < 1e-8 * 200_000


def test_isolated_unit_exposed_through_its_collateral():
    """An isolated ETH long margined with USD and 1 BTC (no haircut here): BTC moves its
    margin, so the account has a BTC price (its one unit's), besides its ETH price."""
    book, rules, s0 = flat([{"id": "btc-margined", "margin_mode": "isolated",
                             "collateral": {"USD": 10_000.0, "BTC": 1.0},
                             "positions": [{"symbol": "ETH", "qty": 100.0, "entry": 3_100.0}]}])
    got = liquidation_prices(book, rules, s0)[0]
    # slack(x) = 10,000 + x + 100 (3,000 - 3,100) - 0.01 x 100 x 3,000 = x - 3,000
    assert got[0] == pytest.approx(3_000.0, rel=RTOL)
    # slack(y) = 10,000 + 60,000 + 100 (y - 3,100) - 0.01 x 100 y = 99 y - 240,000
    assert got[1] == pytest.approx(240_000.0 / 99.0, rel=RTOL)
