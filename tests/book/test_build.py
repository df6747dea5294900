"""Tests of the book (accounts split into margin units) and of synthetic populations.

Covers :func:`simulator.book.build.assemble_book`, :func:`simulator.book.build.build_book` and
:func:`simulator.book.population.draw_population`: a cross account is one unit holding all its
positions, an isolated account one unit per position with its collateral split in proportion
to entry notional, an account without positions one unit; the population draws the requested
number of accounts with the requested side, margin-mode, position-count, asset and collateral
shares (checked within ``K_SE`` standard errors of the binomial share), leverage capped so that
no account starts below maintenance, reproducibly for a given population seed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from simulator.book.build import assemble_book, build_book
from simulator.book.population import draw_population
from simulator.config.scenario import Venue, scenario_from_dict

#: Statistical checks accept a share within this many binomial standard errors.
K_SE = 4.0
#: Relative tolerance for quantities that are equal up to floating-point rounding.
RTOL = 1e-12


def within_se(observed: float, p: float, n: int) -> None:
    """Assert that the share ``observed`` of ``n`` draws is within K_SE standard errors of p."""
    se = math.sqrt(p * (1.0 - p) / n)
    assert abs(observed - p) <= K_SE * se, f"share {observed:.5f}, expected {p} +- {K_SE}*{se:.5f}"


# --------------------------------------------------------------------------- assemble_book

PRICES = np.array([100.0, 10.0])  # BTC, ETH

# Five accounts, entries equal to the current prices:
#   0 cross:    2 positions, USD 1000, 1 BTC + 5 ETH
#   1 isolated: 3 positions of entry notional 100, 200, 300, USD 600, 0.5 BTC + 3 ETH
#   2 isolated: no positions, USD 50, 2 ETH
#   3 cross:    no positions, USD 70
#   4 isolated: 1 position, USD 40
IDS = ["cross2", "iso3", "iso-empty", "cross-empty", "iso1"]
ISOLATED = np.array([False, True, True, False, True])
USD = np.array([1000.0, 600.0, 50.0, 70.0, 40.0])
COLL = np.array([[1.0, 5.0], [0.5, 3.0], [0.0, 2.0], [0.0, 0.0], [0.0, 0.0]])
POS_ACCOUNT = np.array([0, 0, 1, 1, 1, 4])
POS_ASSET = np.array([0, 1, 0, 1, 0, 1])
POS_QTY = np.array([2.0, -30.0, 1.0, -20.0, -3.0, 4.0])
POS_ENTRY = PRICES[POS_ASSET]


def small_book():
    """The five-account book above."""
    return assemble_book(IDS, ISOLATED, USD, COLL, POS_ACCOUNT, POS_ASSET, POS_QTY, POS_ENTRY)


def test_units_of_the_small_book():
    book = small_book()
    assert book.account_ids == tuple(IDS)
    assert book.n_accounts == 5
    assert book.n_units == 7
    np.testing.assert_array_equal(book.account_isolated, ISOLATED)
    np.testing.assert_array_equal(book.unit_account, [0, 1, 1, 1, 2, 3, 4])
    np.testing.assert_array_equal(book.unit_pos_start, [0, 2, 3, 4, 5, 5, 5, 6])
    np.testing.assert_array_equal(book.pos_unit, [0, 0, 1, 2, 3, 6])
    np.testing.assert_array_equal(book.pos_asset, POS_ASSET)
    np.testing.assert_array_equal(book.pos_qty, POS_QTY)
    np.testing.assert_array_equal(book.pos_entry, POS_ENTRY)


def test_isolated_collateral_split_by_entry_notional():
    book = small_book()
    # Account 1: entry notionals 100, 200, 300 -> shares 1/6, 2/6, 3/6.
    share = np.array([1.0, 2.0, 3.0]) / 6.0
    np.testing.assert_allclose(book.unit_usd[1:4], 600.0 * share, rtol=RTOL)
    np.testing.assert_allclose(book.unit_coll[1:4], share[:, None] * COLL[1], rtol=RTOL)
    # Cross, empty and single-position accounts keep all their collateral in one unit.
    np.testing.assert_allclose(book.unit_usd[[0, 4, 5, 6]], USD[[0, 2, 3, 4]], rtol=RTOL)
    np.testing.assert_allclose(book.unit_coll[[0, 4, 5, 6]], COLL[[0, 2, 3, 4]], rtol=RTOL)


def test_unit_nav_at_entry_prices_is_collateral_value():
    book = small_book()
    collateral_value = book.unit_usd + book.unit_coll @ PRICES
    np.testing.assert_allclose(book.unit_nav(PRICES), collateral_value, rtol=RTOL)
    per_account = np.bincount(book.unit_account, book.unit_nav(PRICES), minlength=5)
    np.testing.assert_allclose(per_account, USD + COLL @ PRICES, rtol=RTOL)


def test_unit_nav_adds_unrealised_pnl():
    book = small_book()
    moved = np.array([90.0, 12.0])
    pnl = POS_QTY * (moved[POS_ASSET] - POS_ENTRY)
    expected = (book.unit_usd + book.unit_coll @ moved
                + np.bincount(book.pos_unit, pnl, minlength=book.n_units))
    np.testing.assert_allclose(book.unit_nav(moved), expected, rtol=RTOL)
    # Unit 0 (the cross account): 1000 + 90 + 60 + 2*(-10) - 30*(+2).
    assert book.unit_nav(moved)[0] == pytest.approx(1000.0 + 90.0 + 60.0 - 20.0 - 60.0)


def test_isolated_account_of_zero_notional_splits_equally():
    book = assemble_book(["z"], np.array([True]), np.array([90.0]), np.array([[3.0]]),
                         np.array([0, 0, 0]), np.array([0, 0, 0]), np.zeros(3),
                         np.full(3, 10.0))
    assert book.n_units == 3
    np.testing.assert_allclose(book.unit_usd, [30.0, 30.0, 30.0], rtol=RTOL)
    np.testing.assert_allclose(book.unit_coll[:, 0], [1.0, 1.0, 1.0], rtol=RTOL)


def test_positions_must_be_sorted_by_account():
    with pytest.raises(ValueError, match="sorted"):
        assemble_book(["a", "b"], np.array([False, False]), np.zeros(2), np.zeros((2, 1)),
                      np.array([1, 0]), np.array([0, 0]), np.ones(2), np.ones(2))


def random_accounts(rng: np.random.Generator, n: int, n_assets: int):
    """Random accounts (0..4 positions each, some of zero size) in assemble_book's form."""
    isolated = rng.random(n) < 0.5
    usd = rng.uniform(0.0, 1000.0, n) * (rng.random(n) < 0.8)
    coll = rng.uniform(0.0, 5.0, (n, n_assets)) * (rng.random((n, n_assets)) < 0.3)
    k = rng.integers(0, 5, n)
    pos_account = np.repeat(np.arange(n), k)
    p = len(pos_account)
    pos_asset = rng.integers(0, n_assets, p)
    pos_qty = rng.normal(0.0, 10.0, p) * (rng.random(p) < 0.95)
    pos_entry = rng.uniform(1.0, 100.0, p)
    ids = [f"acc-{i}" for i in range(n)]
    return ids, isolated, usd, coll, pos_account, pos_asset, pos_qty, pos_entry


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_books_keep_accounts_whole(seed):
    rng = np.random.default_rng(seed)
    n, n_assets = 300, 3
    ids, isolated, usd, coll, pos_account, pos_asset, pos_qty, pos_entry = random_accounts(
        rng, n, n_assets)
    book = assemble_book(ids, isolated, usd, coll, pos_account, pos_asset, pos_qty, pos_entry)
    k = np.bincount(pos_account, minlength=n)
    units = np.bincount(book.unit_account, minlength=n)
    np.testing.assert_array_equal(units, np.where(isolated & (k > 0), k, 1))
    assert np.all(np.diff(book.unit_account) >= 0)
    # unit_pos_start and pos_unit describe the same partition of the positions.
    assert book.unit_pos_start[0] == 0 and book.unit_pos_start[-1] == len(pos_account)
    assert np.all(np.diff(book.unit_pos_start) >= 0)
    pos_unit = book.pos_unit
    for u in range(book.n_units):
        lo, hi = book.unit_pos_start[u], book.unit_pos_start[u + 1]
        assert np.all(pos_unit[lo:hi] == u)
    np.testing.assert_array_equal(book.unit_account[pos_unit], pos_account)
    per_unit = np.diff(book.unit_pos_start)
    np.testing.assert_array_equal(per_unit[~isolated[book.unit_account]], k[~isolated])
    assert np.all(per_unit[isolated[book.unit_account] & (k[book.unit_account] > 0)] == 1)
    # Collateral sums back to the account's, asset by asset.
    np.testing.assert_allclose(np.bincount(book.unit_account, book.unit_usd, minlength=n), usd,
                               rtol=RTOL, atol=1e-9)
    for a in range(n_assets):
        np.testing.assert_allclose(
            np.bincount(book.unit_account, book.unit_coll[:, a], minlength=n), coll[:, a],
            rtol=RTOL, atol=1e-12)
    # Isolated units hold the share |qty| * entry / account total of the collateral.
    notional = np.abs(pos_qty) * pos_entry
    total = np.bincount(pos_account, notional, minlength=n)
    iso_pos = isolated[pos_account] & (total[pos_account] > 0)
    share = notional[iso_pos] / total[pos_account][iso_pos]
    np.testing.assert_allclose(book.unit_usd[pos_unit[iso_pos]], usd[pos_account][iso_pos] * share,
                               rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(book.unit_coll[pos_unit[iso_pos]],
                               coll[pos_account][iso_pos] * share[:, None], rtol=RTOL, atol=1e-12)
    # NAV = collateral value (no haircut) + unrealised P&L of the unit's positions.
    prices = rng.uniform(1.0, 100.0, n_assets)
    pnl = np.bincount(pos_unit, pos_qty * (prices[pos_asset] - pos_entry), minlength=book.n_units)
    np.testing.assert_allclose(book.unit_nav(prices),
                               book.unit_usd + book.unit_coll @ prices + pnl, rtol=1e-9)


# --------------------------------------------------------------------------- population

N = 20_000
MMR = 0.01
FLAT = Venue(maintenance_margin_rate=MMR)
LOOSE = Venue(maintenance_margin_rate=0.001)
LEV_MIN, LEV_MAX = 2.0, 150.0  # the cap 0.95 / MMR = 95 binds below LEV_MAX


def population_scenario(count: int = N, mmr: float = MMR, **population: Any):
    """A three-asset scenario with a synthetic population (no explicit accounts)."""
    doc = {
        "name": "population-test",
        "simulation": {"paths": 1, "steps": 1},
        "market": {"assets": [
            {"symbol": "BTC", "price": 60000.0, "vol": 0.8, "haircut": 0.05},
            {"symbol": "ETH", "price": 3000.0, "vol": 1.0, "haircut": 0.10},
            {"symbol": "SOL", "price": 150.0, "vol": 1.2, "haircut": 0.20},
        ]},
        "venue": {"maintenance_margin_rate": mmr},
        "population": {
            "count": count,
            "seed": 11,
            "long_share": 0.3,
            "asset_weights": [0.5, 0.3, 0.2],
            "max_positions": 3,
            "margin_modes": {"cross": 0.7, "isolated": 0.3},
            "collateral": {"USD": 0.5, "BTC": 0.3, "ETH": 0.2},
            "leverage": {"dist": "lognormal", "median": 20.0, "sigma": 1.0,
                         "min": LEV_MIN, "max": LEV_MAX},
            "notional_usd": {"dist": "lognormal", "median": 20000.0, "sigma": 1.5,
                             "min": 100.0},
            **population,
        },
    }
    return scenario_from_dict(doc, source="population-test.toml")


@pytest.fixture(scope="module")
def drawn():
    """The population scenario and its drawn accounts."""
    sc = population_scenario()
    return sc, draw_population(sc.population, sc.market, sc.venue)


def per_account_counts(pos_account: np.ndarray, n: int) -> np.ndarray:
    """Positions per account."""
    return np.bincount(pos_account, minlength=n)


def test_population_count_and_ids(drawn):
    sc, (ids, isolated, usd, coll, pos_account, pos_asset, pos_qty, pos_entry) = drawn
    assert len(ids) == N
    assert len(set(ids)) == N
    assert all(i.startswith("pop-") for i in ids)
    assert len(isolated) == len(usd) == len(coll) == N
    assert coll.shape == (N, 3)
    assert len(pos_asset) == len(pos_qty) == len(pos_entry) == len(pos_account)
    assert np.all(np.diff(pos_account) >= 0)


def test_population_custom_prefix():
    sc = population_scenario(count=12, id_prefix="bot-")
    ids = draw_population(sc.population, sc.market, FLAT)[0]
    assert len(ids) == len(set(ids)) == 12
    assert all(i.startswith("bot-") for i in ids)


def test_population_sides(drawn):
    sc, (ids, _, _, _, pos_account, _, pos_qty, _) = drawn
    sign = np.sign(pos_qty)
    assert np.all(sign != 0)
    # All positions of an account share its side.
    lo = np.full(N, np.inf)
    hi = np.full(N, -np.inf)
    np.minimum.at(lo, pos_account, sign)
    np.maximum.at(hi, pos_account, sign)
    np.testing.assert_array_equal(lo, hi)
    within_se(float(np.mean(hi > 0)), sc.population.long_share, N)


def test_population_margin_modes(drawn):
    sc, (_, isolated, *_rest) = drawn
    assert isolated.dtype == bool
    within_se(float(np.mean(isolated)), dict(sc.population.margin_modes)["isolated"], N)


def test_population_positions(drawn):
    sc, (_, _, _, _, pos_account, pos_asset, _, pos_entry) = drawn
    max_k = sc.population.max_positions
    k = per_account_counts(pos_account, N)
    assert k.min() >= 1 and k.max() <= max_k
    for value in range(1, max_k + 1):  # uniform on 1..max_positions
        within_se(float(np.mean(k == value)), 1.0 / max_k, N)
    # Distinct assets within each account.
    pairs = np.unique(pos_account * 3 + pos_asset)
    assert len(pairs) == len(pos_account)
    # Entered at the initial prices.
    prices = np.array([a.price for a in sc.market.assets])
    np.testing.assert_array_equal(pos_entry, prices[pos_asset])


def test_population_first_asset_follows_weights(drawn):
    sc, (_, _, _, _, pos_account, pos_asset, _, _) = drawn
    k = per_account_counts(pos_account, N)
    single = k[pos_account] == 1
    n_single = int(single.sum())
    assert n_single > 0
    for a, w in zip(sc.population.assets, sc.population.asset_weights, strict=True):
        share = float(np.mean(pos_asset[single] == sc.market.index(a)))
        within_se(share, w, n_single)


def test_population_notional_split_equally(drawn):
    _, (_, _, _, _, pos_account, _, pos_qty, pos_entry) = drawn
    notional = np.abs(pos_qty) * pos_entry
    lo = np.full(N, np.inf)
    hi = np.zeros(N)
    np.minimum.at(lo, pos_account, notional)
    np.maximum.at(hi, pos_account, notional)
    np.testing.assert_allclose(lo, hi, rtol=RTOL)


def account_leverage(sc, drawn_accounts) -> np.ndarray:
    """Entry notional / haircut collateral value of each drawn account."""
    _, _, usd, coll, pos_account, _, pos_qty, pos_entry = drawn_accounts
    prices = np.array([a.price for a in sc.market.assets])
    haircuts = np.array([a.haircut for a in sc.market.assets])
    notional = np.bincount(pos_account, np.abs(pos_qty) * pos_entry, minlength=len(usd))
    margin_value = usd + coll @ (prices * (1.0 - haircuts))
    return notional / margin_value


def test_population_leverage_is_capped_and_clipped(drawn):
    sc, accounts = drawn
    lev = account_leverage(sc, accounts)
    cap = 0.95 / sc.venue.maintenance_margin_rate
    assert cap < LEV_MAX
    assert np.all(lev <= cap * (1.0 + RTOL))
    assert np.all(lev >= LEV_MIN * (1.0 - RTOL))
    # Both bounds are reached, so the checks above are not vacuous.
    assert np.any(lev >= cap * (1.0 - RTOL))
    assert np.any(lev <= LEV_MIN * (1.0 + RTOL))


def test_population_leverage_within_clip_when_cap_is_loose():
    sc = population_scenario(count=5000, mmr=0.001)  # cap 950 > LEV_MAX
    lev = account_leverage(sc, draw_population(sc.population, sc.market, LOOSE))
    assert np.all(lev <= LEV_MAX * (1.0 + RTOL))
    assert np.all(lev >= LEV_MIN * (1.0 - RTOL))
    assert np.any(lev >= LEV_MAX * (1.0 - RTOL))


def test_population_fixed_leverage():
    sc = population_scenario(count=500, leverage=4.0)
    lev = account_leverage(sc, draw_population(sc.population, sc.market, FLAT))
    np.testing.assert_allclose(lev, 4.0, rtol=RTOL)


def test_population_collateral_currencies(drawn):
    sc, (_, _, usd, coll, *_rest) = drawn
    held = np.column_stack([usd, coll])  # USD, BTC, ETH, SOL
    assert np.all(held >= 0)
    assert np.all((held > 0).sum(axis=1) == 1)  # exactly one currency per account
    currency = np.argmax(held, axis=1)
    names = ["USD", *sc.market.symbols]
    shares = dict(sc.population.collateral)
    for c, name in enumerate(names):
        within_se(float(np.mean(currency == c)), shares.get(name, 0.0), N)
    assert not np.any(currency == names.index("SOL"))


def test_population_full_haircut_collateral_is_held_in_usd():
    sc = scenario_from_dict({
        "market": {"assets": [{"symbol": "BTC", "price": 60000.0, "vol": 0.8},
                              {"symbol": "ETH", "price": 3000.0, "vol": 1.0, "haircut": 1.0}]},
        "venue": {"maintenance_margin_rate": MMR},
        "population": {"count": 200, "collateral": {"ETH": 1.0}, "leverage": 5.0},
    })
    ids, _, usd, coll, pos_account, _, pos_qty, pos_entry = draw_population(
        sc.population, sc.market, FLAT)
    assert np.all(coll == 0.0)
    notional = np.bincount(pos_account, np.abs(pos_qty) * pos_entry, minlength=len(ids))
    np.testing.assert_allclose(usd, notional / 5.0, rtol=RTOL)


def test_population_restricted_assets():
    sc = population_scenario(count=2000, assets=["ETH", "SOL"], asset_weights=[1, 1],
                             max_positions=2)
    _, _, _, _, pos_account, pos_asset, _, _ = draw_population(sc.population, sc.market, FLAT)
    assert set(np.unique(pos_asset).tolist()) == {1, 2}
    assert per_account_counts(pos_account, 2000).max() == 2


def test_population_never_uses_zero_weight_assets():
    from simulator.errors import ScenarioError

    try:
        sc = population_scenario(count=1000, assets=["BTC", "ETH"], asset_weights=[1.0, 0.0],
                                 max_positions=2)
    except ScenarioError as err:
        assert err.key.startswith("population.")
        return
    _, _, _, _, _, pos_asset, _, _ = draw_population(sc.population, sc.market, FLAT)
    assert np.all(pos_asset == sc.market.index("BTC"))


def test_population_reproducible_for_a_seed():
    sc = population_scenario(count=2000)
    a = draw_population(sc.population, sc.market, FLAT)
    b = draw_population(sc.population, sc.market, FLAT)
    assert a[0] == b[0]
    for x, y in zip(a[1:], b[1:], strict=True):
        np.testing.assert_array_equal(x, y)
    other = population_scenario(count=2000, seed=12)
    c = draw_population(other.population, other.market, FLAT)
    assert c[0] == a[0]  # ids depend on the count only
    assert len(c[7]) != len(a[7]) or not np.array_equal(c[6], a[6])
    assert not np.array_equal(c[2], a[2])
    assert not np.array_equal(c[1], a[1])


def test_population_does_not_depend_on_the_monte_carlo_seed():
    doc_sc = population_scenario(count=300)
    sc2 = scenario_from_dict({**doc_sc.document,
                              "simulation": {"paths": 1, "steps": 1, "seed": 99}})
    a = build_book(doc_sc)
    b = build_book(sc2)
    np.testing.assert_array_equal(a.pos_qty, b.pos_qty)
    np.testing.assert_array_equal(a.unit_usd, b.unit_usd)


# --------------------------------------------------------------------------- build_book


def book_scenario(count: int = 500):
    """Two explicit accounts (cross, isolated) and a population of ``count``."""
    return scenario_from_dict({
        "name": "book-test",
        "simulation": {"paths": 1, "steps": 1},
        "market": {"assets": [
            {"symbol": "BTC", "price": 60000.0, "vol": 0.8, "haircut": 0.05},
            {"symbol": "ETH", "price": 3000.0, "vol": 1.0, "haircut": 0.10},
        ]},
        "venue": {"maintenance_margin_rate": 0.005},
        "accounts": [
            {"id": "whale-cross", "collateral": {"USD": 400000.0, "BTC": 5.0},
             "positions": [{"symbol": "BTC", "qty": 60.0, "entry": 59000.0},
                           {"symbol": "ETH", "qty": 600.0, "entry": 2950.0}]},
            {"id": "whale-iso", "margin_mode": "isolated", "collateral": {"USD": 90000.0},
             "positions": [{"symbol": "BTC", "qty": 1.0, "entry": 60000.0},
                           {"symbol": "ETH", "qty": -10.0, "entry": 3000.0}]},
        ],
        "population": {"count": count, "seed": 4, "max_positions": 2,
                       "margin_modes": {"cross": 0.5, "isolated": 0.5},
                       "collateral": {"USD": 0.5, "ETH": 0.5}},
    })


def test_build_book_explicit_accounts_first():
    sc = book_scenario()
    book = build_book(sc)
    pop = draw_population(sc.population, sc.market, sc.venue)
    assert book.account_ids[:2] == ("whale-cross", "whale-iso")
    assert book.account_ids[2:] == tuple(pop[0])
    assert book.n_accounts == 2 + sc.population.count
    # Units: whale-cross = unit 0 (2 positions), whale-iso = units 1, 2 (1 position each).
    np.testing.assert_array_equal(book.unit_account[:3], [0, 1, 1])
    np.testing.assert_array_equal(book.unit_pos_start[:4], [0, 2, 3, 4])
    np.testing.assert_array_equal(book.pos_qty[:4], [60.0, 600.0, 1.0, -10.0])
    np.testing.assert_array_equal(book.pos_entry[:4], [59000.0, 2950.0, 60000.0, 3000.0])
    np.testing.assert_array_equal(book.pos_asset[:4], [0, 1, 0, 1])
    assert book.unit_usd[0] == 400000.0
    np.testing.assert_array_equal(book.unit_coll[0], [5.0, 0.0])
    np.testing.assert_allclose(book.unit_usd[1:3], [90000.0 * 60000.0 / 90000.0,
                                                    90000.0 * 30000.0 / 90000.0], rtol=RTOL)
    # The population part is the population drawn alone, shifted by two accounts.
    expected = assemble_book(pop[0], pop[1], pop[2], pop[3], pop[4], *pop[5:])
    np.testing.assert_array_equal(book.unit_account[3:], expected.unit_account + 2)
    np.testing.assert_array_equal(book.pos_qty[4:], expected.pos_qty)
    np.testing.assert_array_equal(book.pos_asset[4:], expected.pos_asset)
    np.testing.assert_array_equal(book.unit_usd[3:], expected.unit_usd)
    np.testing.assert_array_equal(book.unit_coll[3:], expected.unit_coll)
    np.testing.assert_array_equal(book.unit_pos_start[3:], expected.unit_pos_start + 4)


def test_build_book_units_and_nav():
    sc = book_scenario()
    book = build_book(sc)
    n = book.n_accounts
    k = np.bincount(book.unit_account[book.pos_unit], minlength=n)
    units = np.bincount(book.unit_account, minlength=n)
    np.testing.assert_array_equal(units, np.where(book.account_isolated & (k > 0), k, 1))
    assert book.account_isolated[1] and not book.account_isolated[0]
    assert book.account_isolated[2:].any() and not book.account_isolated[2:].all()
    # Population positions are entered at the initial prices: their NAV is collateral value.
    prices = np.array([a.price for a in sc.market.assets])
    nav = book.unit_nav(prices)
    pop_units = book.unit_account >= 2
    np.testing.assert_allclose(nav[pop_units],
                               (book.unit_usd + book.unit_coll @ prices)[pop_units], rtol=RTOL)


def test_build_book_without_population():
    doc = book_scenario().document
    doc = {k: v for k, v in doc.items() if k != "population"}
    book = build_book(scenario_from_dict(doc))
    assert book.account_ids == ("whale-cross", "whale-iso")
    assert book.n_units == 3


def test_build_book_population_only():
    sc = population_scenario(count=100)
    book = build_book(sc)
    pop = draw_population(sc.population, sc.market, FLAT)
    assert book.account_ids == tuple(pop[0])
    np.testing.assert_array_equal(book.pos_qty, pop[6])


# --------------------------------------------------------------------------- venue rules


def test_population_leverage_respects_bracket_max_leverage():
    """With Binance's brackets, no account exceeds the max leverage of the bracket its
    positions are in, nor starts below 1/0.95 of its (tiered) maintenance."""
    sc = population_scenario(count=3000, max_positions=1)
    doc = dict(sc.document)
    doc["venue"] = {"preset": "binance-usdm"}
    sc = scenario_from_dict(doc, source="population-test.toml")
    ids, _, usd, coll, pos_account, pos_asset, pos_qty, pos_entry = draw_population(
        sc.population, sc.market, sc.venue)
    lev = account_leverage(sc, (ids, None, usd, coll, pos_account, pos_asset, pos_qty,
                                pos_entry))
    notional = np.abs(pos_qty) * pos_entry
    # published tables (VENUES.md / Binance): (cap, max leverage, rate, cum) per symbol
    tables = {"BTC": [(5e4, 125, 0.004, 0), (6e5, 100, 0.005, 50), (3e6, 75, 0.0065, 950)],
              "ETH": [(5e4, 100, 0.005, 0), (6e5, 75, 0.0065, 75), (3e6, 50, 0.01, 2175)],
              "SOL": [(5e3, 50, 0.01, 0), (2.5e4, 20, 0.025, 75), (1e5, 10, 0.05, 700),
                      (2.5e5, 5, 0.10, 5700), (1e6, 2, 0.125, 11950)]}
    checked = 0
    for i in range(len(pos_qty)):
        sym = sc.market.assets[pos_asset[i]].symbol
        row = next((r for r in tables[sym] if notional[i] <= r[0]), None)
        if row is None:
            continue
        cap, max_lev, rate, cum = row
        account = pos_account[i]
        assert lev[account] <= max_lev * (1 + RTOL)
        maintenance = notional[i] * rate - cum
        assert usd[account] + coll[account] @ (
            np.array([a.price for a in sc.market.assets])
            * (1 - np.array([a.haircut for a in sc.market.assets]))) >= maintenance / 0.95 * (
            1 - RTOL)
        checked += 1
    assert checked > 2500
    # the caps bind: SOL accounts above 25k notional get at most 10x although the draw
    # goes to 150x
    sol = np.array([sc.market.assets[a].symbol == "SOL" for a in pos_asset])
    big = sol & (notional > 2.5e4) & (notional <= 1e5)
    assert big.sum() > 20 and np.isclose(lev[pos_account[big]].max(), 10.0, rtol=1e-6)


def test_lending_population_starts_healthy():
    """Loans on a lending venue: debt = notional (1 - 1/leverage), capped at a starting
    health factor of 1/0.95."""
    sc = population_scenario(count=2000, max_positions=1, long_share=1.0)
    doc = dict(sc.document)
    doc["venue"] = {"preset": "aave-v3"}
    sc = scenario_from_dict(doc, source="population-test.toml")
    _, _, usd, coll, pos_account, *_ = draw_population(sc.population, sc.market, sc.venue)
    assert len(pos_account) == 0  # long loans: USD debt, no asset debt
    prices = np.array([a.price for a in sc.market.assets])
    lt = np.array([sc.venue.collateral_weight(a.symbol, a.haircut) for a in sc.market.assets])
    debt = -usd
    hf = coll @ (prices * lt) / debt
    assert np.all(debt > 0) and np.all(hf >= 1 / 0.95 * (1 - 1e-12))
    value = coll @ prices
    lev = value / (value - debt)
    binding = np.isclose(hf, 1 / 0.95)
    assert binding.any() and (~binding).any()
    assert np.all(lev[~binding] <= LEV_MAX * (1 + RTOL))


def test_population_inverse_share(prepared):
    """A share of the accounts hold inverse perpetuals: the same USD notional as USD
    contracts at the asset's price, and the rest of the book does not change."""
    base = population_scenario(count=3000)
    doc = dict(base.document)
    doc["population"] = {**doc["population"], "inverse_share": 0.3}
    prep = prepared(scenario_from_dict(doc, source="population-test.toml"))
    plain = build_book(base)
    book = prep.book
    inverse = book.pos_kind == 1
    share = np.bincount(book.pos_unit[inverse], minlength=book.n_units) > 0
    accounts = np.unique(book.unit_account[share])
    assert abs(len(accounts) / 3000 - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 3000)
    # same sizes in USD, same collateral, same entries
    usd_notional = np.where(inverse, np.abs(book.pos_qty), np.abs(book.pos_qty) * book.pos_entry)
    np.testing.assert_allclose(usd_notional, np.abs(plain.pos_qty) * plain.pos_entry,
                               rtol=1e-12)
    np.testing.assert_allclose(book.unit_usd, plain.unit_usd, rtol=1e-12)
    np.testing.assert_array_equal(np.sign(book.pos_qty), np.sign(plain.pos_qty))
    # no account starts below maintenance (inverse maintenance is |qty| x rate, in USD)
    assert len(prep.index.init_pending) == 0
