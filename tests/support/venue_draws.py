"""Random venues (``hypothesis`` strategies), books and paths for the properties of the
margin engine: derivatives venues with any liquidation mode, fund, ADL and flat or tiered
maintenance; lending venues; books of cross and isolated accounts over 1 to 3 assets; random
walks with gaps. Shared by ``tests/margin/test_venue_properties.py``,
``tests/margin/test_invariants.py`` and ``tests/support/ledger.py``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from simulator.book.build import Book, assemble_book
from simulator.config.market import Asset, Market
from simulator.config.scenario import Venue
from simulator.config.venue_presets import Bracket, bracket_cums

PRICES = np.array([100.0, 20.0, 3.0])
VOLS = (0.8, 1.0, 1.3)
SYMBOLS = ("A0", "A1", "A2")
HAIRCUT = np.array([0.1, 0.2, 0.3])
#: lending: liquidation thresholds 90%, 85%, 80%
LENDING_HAIRCUT = np.array([0.1, 0.15, 0.2])
#: large enough that a cascade never stops because of it in these books
MAX_ROUNDS = 10_000


# ---------------------------------------------------------------------------------------
# Strategies (venues) and numpy builders (books, paths), seeded by hypothesis
# ---------------------------------------------------------------------------------------


@st.composite
def bracket_table(draw) -> tuple[Bracket, ...]:
    """2 to 4 brackets: increasing caps (the last +inf), non-decreasing rates."""
    n_rows = draw(st.integers(2, 4))
    cap = draw(st.sampled_from([200.0, 500.0, 1_000.0, 3_000.0]))
    rate = draw(st.sampled_from([0.005, 0.01, 0.02, 0.04]))
    rows = []
    for _ in range(n_rows - 1):
        rows.append(Bracket(cap, rate))
        cap *= draw(st.sampled_from([1.5, 2.0, 4.0, 10.0]))
        rate += draw(st.sampled_from([0.0, 0.0025, 0.01, 0.03]))
    rows.append(Bracket(math.inf, rate))
    return tuple(rows)


@st.composite
def maintenance_rules(draw) -> dict:
    """A flat maintenance rate, or bracket tables for A0, A1 and ``"*"``."""
    if draw(st.booleans()):
        return {"maintenance_margin_rate": draw(st.sampled_from([0.005, 0.01, 0.02, 0.05]))}
    tables = (("A0", draw(bracket_table())), ("A1", draw(bracket_table())),
              ("*", draw(bracket_table())))
    return {"brackets": tables}


@st.composite
def venues(draw, adl=None, backstop=None) -> Venue:
    """A derivatives venue with any liquidation mode, fund, ADL and maintenance rules."""
    mode = draw(st.sampled_from(["full", "partial", "incremental"]))
    kwargs = dict(
        liquidation=mode,
        target=draw(st.sampled_from([1.1, 1.25, 2.0])),
        liquidation_fee_rate=draw(st.sampled_from([0.0, 0.005, 0.01, 0.02])),
        insurance_fund_usd=draw(st.sampled_from([0.0, 50.0, 500.0, 5_000.0])),
        adl=draw(st.booleans()) if adl is None else adl,
        adl_ranking=draw(st.sampled_from(["pnl_margin_ratio", "profit_leverage"])),
        backstop_ratio=(draw(st.sampled_from([0.0, 2.0 / 3.0])) if backstop is None
                        else backstop),
        max_cascade_rounds=MAX_ROUNDS,
    )
    if mode == "incremental":
        kwargs.update(step_fraction=draw(st.sampled_from([0.1, 0.25, 0.5])),
                      step_min_usd=draw(st.sampled_from([0.0, 300.0])),
                      step_max_usd=draw(st.sampled_from([math.inf, 1_000.0])),
                      full_below_usd=draw(st.sampled_from([0.0, 400.0])))
    kwargs.update(draw(maintenance_rules()))
    return Venue(**kwargs)


@st.composite
def lending_venues(draw) -> Venue:
    return Venue(type="lending", adl=False, maintenance_margin_rate=0.0,
                 liquidation_fee_rate=0.0,
                 close_factor=draw(st.sampled_from([0.25, 0.5, 1.0])),
                 full_close_below_hf=draw(st.sampled_from([0.0, 0.95])),
                 full_close_below_usd=draw(st.sampled_from([0.0, 500.0, 2_000.0])),
                 liquidation_bonus=draw(st.sampled_from([0.0, 0.05, 0.1])),
                 protocol_share=draw(st.sampled_from([0.0, 0.1, 0.5])),
                 insurance_fund_usd=draw(st.sampled_from([0.0, 300.0, 5_000.0])),
                 max_cascade_rounds=MAX_ROUNDS)


seeds = st.integers(0, 2**32 - 1)
n_assets_st = st.integers(1, 3)
impacts = st.sampled_from(["none", "linear", "sqrt"])
half_lives = st.sampled_from([0.0, 2.0, 5.0])


def maintenance(venue: Venue, symbol: str, notional: float) -> float:
    """Maintenance of one position (computed here, not by the engine)."""
    table = venue.brackets_for(symbol)
    cums = bracket_cums(table)
    for b, cum in zip(table, cums, strict=True):
        if notional <= b.max_notional_usd:
            return notional * b.rate - cum
    raise AssertionError("the last cap is +inf")


def random_book(rng: np.random.Generator, venue: Venue, n_accounts: int, n_assets: int,
                p_isolated: float = 0.5) -> Book:
    """Accounts above maintenance at the initial prices, leverage up to ~0.95 / their rate.

    Cross accounts sometimes hold asset collateral (and a little USD); isolated ones USD.
    """
    prices = PRICES[:n_assets]
    isolated = rng.random(n_accounts) < p_isolated
    usd = np.zeros(n_accounts)
    coll = np.zeros((n_accounts, n_assets))
    pos_account, pos_asset, pos_qty, pos_entry = [], [], [], []
    for i in range(n_accounts):
        k = int(rng.integers(1, n_assets + 1))
        notional = mm = 0.0
        for a in rng.choice(n_assets, size=k, replace=False):
            size_usd = float(rng.lognormal(np.log(1_000.0), 1.0))
            side = 1.0 if rng.random() < 0.55 else -1.0
            entry = prices[a] * float(rng.uniform(0.97, 1.03))
            pos_account.append(i)
            pos_asset.append(int(a))
            pos_qty.append(side * size_usd / entry)
            pos_entry.append(entry)
            notional += size_usd
            mm += maintenance(venue, SYMBOLS[a], size_usd)
        leverage = float(rng.uniform(1.5, max(1.6, 0.95 * notional / mm)))
        margin = notional / leverage
        if not isolated[i] and rng.random() < 0.3:
            a = int(rng.integers(n_assets))
            coll[i, a] = margin / prices[a] * 1.3
            usd[i] = 0.1 * margin
        else:
            usd[i] = margin
    return assemble_book([f"acct-{i}" for i in range(n_accounts)], isolated, usd, coll,
                         np.array(pos_account, dtype=np.int64),
                         np.array(pos_asset, dtype=np.int64), np.array(pos_qty),
                         np.array(pos_entry))


def random_lending_book(rng: np.random.Generator, n_accounts: int, n_assets: int) -> Book:
    """Cross accounts with asset collateral and a USD debt (negative USD) and/or a debt in
    an asset they do not hold (``qty < 0``, entry 0); health factors from 1.02 to 1.5."""
    prices = PRICES[:n_assets]
    haircut = LENDING_HAIRCUT[:n_assets]
    usd = np.zeros(n_accounts)
    coll = np.zeros((n_accounts, n_assets))
    pos_account, pos_asset, pos_qty = [], [], []
    for i in range(n_accounts):
        held = rng.choice(n_assets, size=int(rng.integers(1, min(2, n_assets) + 1)),
                          replace=False)
        free = [a for a in range(n_assets) if a not in held]
        weighted = 0.0
        for a in held:
            value = float(rng.lognormal(np.log(2_000.0), 0.8))
            coll[i, a] = value / prices[a]
            weighted += value * (1.0 - haircut[a])
        usd_share = 1.0 if not free else float(rng.choice([1.0, 0.0, 0.4]))
        if usd_share == 0.0 and rng.random() < 0.7:
            usd[i] = float(rng.lognormal(np.log(500.0), 0.5))  # USD collateral
            weighted += usd[i]
        debt = weighted / float(rng.uniform(1.02, 1.5))
        usd[i] -= usd_share * debt
        if usd_share < 1.0:
            a = int(rng.choice(free))
            pos_account.append(i)
            pos_asset.append(a)
            pos_qty.append(-(1.0 - usd_share) * debt / prices[a])
    return assemble_book([f"acct-{i}" for i in range(n_accounts)],
                         np.zeros(n_accounts, dtype=bool), usd, coll,
                         np.array(pos_account, dtype=np.int64),
                         np.array(pos_asset, dtype=np.int64), np.array(pos_qty, dtype=float),
                         np.zeros(len(pos_qty)))


def random_paths(rng: np.random.Generator, n_paths: int, steps: int, n_assets: int,
                 gap: tuple[float, float] = (0.75, 1.25)) -> tuple[np.ndarray, np.ndarray]:
    """Random walks with 1% steps and one or two gaps per path; and a depth per step."""
    prices = PRICES[:n_assets]
    log_returns = 0.01 * rng.standard_normal((n_paths, steps, n_assets))
    for _ in range(int(rng.integers(1, 3))):
        t = int(rng.integers(0, steps))
        log_returns[:, t, :] += np.log(rng.uniform(*gap, size=(n_paths, n_assets)))
    exo = np.empty((n_paths, steps + 1, n_assets))
    exo[:, 0] = prices
    exo[:, 1:] = prices * np.exp(np.cumsum(log_returns, axis=1))
    depth = np.tile(rng.uniform(1_000.0, 20_000.0, size=n_assets), (steps + 1, 1))
    depth[int(rng.integers(1, steps + 1))] *= 0.5
    return exo, depth


def make_market(n_assets: int, haircut: np.ndarray) -> Market:
    assets = tuple(Asset(SYMBOLS[a], float(PRICES[a]), vol=VOLS[a], haircut=float(haircut[a]))
                   for a in range(n_assets))
    return Market("gbm", assets, tuple(tuple(float(i == j) for j in range(n_assets))
                                       for i in range(n_assets)))


@dataclass
class Setup:
    book: Book
    exo: np.ndarray
    depth: np.ndarray
    market: Market


def derivatives_setup(seed: int, venue: Venue, n_assets: int, n_accounts: int, n_paths: int,
                      steps: int, p_isolated: float = 0.5) -> Setup:
    rng = np.random.default_rng(seed)
    book = random_book(rng, venue, n_accounts, n_assets, p_isolated)
    exo, depth = random_paths(rng, n_paths, steps, n_assets)
    return Setup(book, exo, depth, make_market(n_assets, HAIRCUT[:n_assets]))


def lending_setup(seed: int, n_assets: int, n_accounts: int, n_paths: int, steps: int) -> Setup:
    rng = np.random.default_rng(seed)
    book = random_lending_book(rng, n_accounts, n_assets)
    exo, depth = random_paths(rng, n_paths, steps, n_assets, gap=(0.6, 1.4))
    return Setup(book, exo, depth, make_market(n_assets, LENDING_HAIRCUT[:n_assets]))
