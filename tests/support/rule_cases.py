"""The venue-rule cases replayed by the fast engine and the reference: three assets,
maintenance brackets, random derivatives and lending books, random paths with a gap, and
the reference run of a case. Shared by the engine-vs-reference tests of the venue rules,
the behaviour, inverse perpetuals and options (``tests/margin/test_*_vs_reference.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.book.build import Book, assemble_book
from simulator.config.market import Asset, Liquidity, Market
from simulator.config.scenario import Venue
from simulator.config.venue_presets import Bracket, bracket_cums

from .compare import reference_kwargs, run_reference

INF = math.inf
PRICES = np.array([100.0, 20.0, 3.0])
SYMBOLS = ("A0", "A1", "A2")
STEPS = 12
N_PATHS = 6
N_ACCOUNTS = 25
#: length of a step in hours: a venue paying funding every 8 h pays at every step
STEP_HOURS = 8.0

#: Maintenance brackets (2 to 4 per asset; A2 through the ``"*"`` table). Positions in the
#: random books are worth about $100 to $10,000, so they start in every bracket and cross
#: boundaries as prices move and as partial liquidations shrink them.
TIERS = (
    ("A0", (Bracket(1_000.0, 0.01, 50.0), Bracket(3_000.0, 0.02, 25.0),
            Bracket(INF, 0.04, 12.0))),
    ("A1", (Bracket(500.0, 0.015), Bracket(2_000.0, 0.025), Bracket(6_000.0, 0.04),
            Bracket(INF, 0.06))),
    ("*", (Bracket(1_500.0, 0.02), Bracket(INF, 0.05))),
)


@dataclass(frozen=True)
class Case:
    """One venue configuration replayed by both engines."""

    name: str
    venue: dict[str, Any]
    impact: str = "linear"
    half_life: float = 0.0
    lending: bool = False
    #: mechanisms this case must show in ``test_cases_exercise_every_mechanism``
    shows: tuple[str, ...] = field(default=())


_DERIV = {"target": 1.3, "liquidation_fee_rate": 0.01, "max_cascade_rounds": 8}
_LEND = {"type": "lending", "adl": False, "liquidation_fee_rate": 0.0, "close_factor": 0.5,
         "full_close_below_hf": 0.95, "liquidation_bonus": 0.05, "protocol_share": 0.1,
         "max_cascade_rounds": 8}

CASES = [
    Case("tiers-full", {**_DERIV, "brackets": TIERS, "liquidation": "full",
                        "insurance_fund_usd": 2000.0, "adl": True},
         shows=("bracket_change", "liquidation_in_upper_bracket")),
    Case("tiers-partial", {**_DERIV, "brackets": TIERS, "liquidation": "partial",
                           "insurance_fund_usd": 100.0, "adl": True},
         impact="sqrt", half_life=3.0, shows=("bracket_change", "partial_close")),
    Case("tiers-incremental", {**_DERIV, "brackets": TIERS, "liquidation": "incremental",
                               "step_fraction": 0.3, "insurance_fund_usd": 0.0, "adl": False},
         shows=("bracket_change", "incremental_close", "socialised")),
    Case("incremental-step-min", {**_DERIV, "brackets": TIERS, "liquidation": "incremental",
                                  "step_fraction": 0.05, "step_min_usd": 800.0,
                                  "full_below_usd": 300.0, "insurance_fund_usd": 500.0,
                                  "adl": True},
         impact="sqrt", shows=("incremental_close", "step_min_binds")),
    Case("incremental-step-max", {**_DERIV, "brackets": TIERS, "liquidation": "incremental",
                                  "step_fraction": 0.5, "step_max_usd": 400.0,
                                  "full_below_usd": 600.0, "insurance_fund_usd": 500.0,
                                  "adl": True},
         half_life=2.0, shows=("incremental_close", "step_max_binds", "full_below_binds")),
    Case("backstop-adl", {**_DERIV, "brackets": TIERS, "liquidation": "incremental",
                          "step_fraction": 0.2, "full_below_usd": 2000.0,
                          "backstop_ratio": 2.0 / 3.0, "liquidation_fee_rate": 0.0,
                          "insurance_fund_usd": 0.0, "adl": True,
                          "adl_ranking": "profit_leverage"},
         shows=("backstop", "backstop_bad_debt", "adl")),
    Case("backstop-no-adl", {**_DERIV, "brackets": TIERS, "liquidation": "full",
                             "backstop_ratio": 2.0 / 3.0, "insurance_fund_usd": 0.0,
                             "adl": False},
         impact="sqrt", shows=("backstop", "backstop_bad_debt", "socialised")),
    Case("adl-profit-leverage", {**_DERIV, "maintenance_margin_rate": 0.02,
                                 "liquidation": "full", "insurance_fund_usd": 0.0,
                                 "adl": True, "adl_ranking": "profit_leverage"},
         impact="sqrt", half_life=3.0, shows=("adl", "ranking_matters")),
    Case("adl-bybit", {**_DERIV, "maintenance_margin_rate": 0.02, "liquidation": "full",
                       "insurance_fund_usd": 0.0, "adl": True, "adl_ranking": "bybit"},
         impact="sqrt", half_life=3.0, shows=("adl", "ranking_matters")),
    Case("adl-pro-rata", {**_DERIV, "brackets": TIERS, "liquidation": "full",
                          "insurance_fund_usd": 0.0, "adl": True, "adl_ranking": "pro_rata"},
         impact="sqrt", half_life=3.0, shows=("adl", "adl_shared")),
    Case("adl-leverage-pro-rata", {**_DERIV, "maintenance_margin_rate": 0.02,
                                   "liquidation": "full", "insurance_fund_usd": 0.0,
                                   "adl": True, "adl_ranking": "leverage_pro_rata"},
         shows=("adl", "adl_shared")),
    Case("adl-capped", {**_DERIV, "maintenance_margin_rate": 0.02, "liquidation": "full",
                        "insurance_fund_usd": 0.0, "adl": True, "adl_ranking": "bybit",
                        "adl_max_notional_per_step_usd": 1500.0},
         impact="sqrt", half_life=3.0, shows=("adl", "adl_cap_binds")),
    Case("adl-capped-pro-rata", {**_DERIV, "brackets": TIERS, "liquidation": "partial",
                                 "insurance_fund_usd": 0.0, "adl": True,
                                 "adl_ranking": "leverage_pro_rata",
                                 "adl_max_notional_per_step_usd": 800.0},
         shows=("adl", "adl_shared", "adl_cap_binds")),
    Case("adl-off", {**_DERIV, "maintenance_margin_rate": 0.02, "liquidation": "full",
                     "insurance_fund_usd": 300.0, "adl": False},
         impact="none", shows=("socialised",)),
    Case("lending-linear", {**_LEND, "full_close_below_usd": 500.0,
                            "insurance_fund_usd": 300.0},
         lending=True,
         shows=("lending_debt", "lending_collateral", "lending_usd_debt",
                "lending_usd_collateral", "lending_close_factor", "lending_full_close",
                "lending_bad_debt", "socialised")),
    Case("lending-sqrt", {**_LEND, "full_close_below_usd": 2000.0, "insurance_fund_usd": 0.0},
         impact="sqrt", half_life=3.0, lending=True,
         shows=("lending_debt", "lending_collateral", "lending_bad_debt", "socialised")),
]


# ---------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------


def market(haircut, vols=(0.8, 1.0, 1.3)) -> Market:
    assets = tuple(Asset(s, float(p), vol=v, haircut=float(h))
                   for s, p, h, v in zip(SYMBOLS, PRICES, haircut, vols, strict=True))
    n = len(assets)
    return Market("gbm", assets, tuple(tuple(float(i == j) for j in range(n))
                                       for i in range(n)))


def tier_tables(venue: Venue) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(cap, rate, cum)`` of shape (A, K) built here from the venue's bracket tables.

    Independent of the engine's own table (which ``assert_tiers_match`` checks against
    this one): ``cum`` from the continuity rule, shorter tables padded with their last row.
    """
    tables = [venue.brackets_for(s) for s in SYMBOLS]
    n_rows = max(len(t) for t in tables)
    cap, rate, cum = (np.empty((len(SYMBOLS), n_rows)) for _ in range(3))
    for a, table in enumerate(tables):
        cums = bracket_cums(table)
        for k in range(n_rows):
            j = min(k, len(table) - 1)
            cap[a, k], rate[a, k], cum[a, k] = table[j].max_notional_usd, table[j].rate, cums[j]
    return cap, rate, cum


def maintenance(notional: float, a: int, tables) -> float:
    cap, rate, cum = tables
    k = int(np.argmax(notional <= cap[a]))
    return notional * rate[a, k] - cum[a, k]


def random_book(rng: np.random.Generator, tables) -> Book:
    """A random derivatives book: cross and isolated accounts, USD and asset collateral.

    Leverage is drawn up to ~0.9 / (the account's maintenance rate at the initial prices),
    so accounts start above maintenance and a 20% gap liquidates many of them.
    """
    n_assets = len(PRICES)
    isolated = rng.random(N_ACCOUNTS) < 0.5
    usd = np.zeros(N_ACCOUNTS)
    coll = np.zeros((N_ACCOUNTS, n_assets))
    pos_account, pos_asset, pos_qty, pos_entry = [], [], [], []
    for i in range(N_ACCOUNTS):
        k = rng.integers(1, n_assets + 1)
        assets = rng.choice(n_assets, size=k, replace=False)
        notional = mm = 0.0
        for a in assets:
            size_usd = float(rng.lognormal(np.log(1000.0), 1.0))
            side = 1.0 if rng.random() < 0.55 else -1.0
            entry = PRICES[a] * float(rng.uniform(0.97, 1.03))
            pos_account.append(i)
            pos_asset.append(int(a))
            pos_qty.append(side * size_usd / entry)
            pos_entry.append(entry)
            notional += size_usd
            mm += maintenance(size_usd, int(a), tables)
        leverage = float(rng.uniform(2.0, 0.9 * notional / mm))
        margin = notional / leverage
        if not isolated[i] and rng.random() < 0.3:
            a = int(rng.integers(n_assets))
            coll[i, a] = margin / PRICES[a] * 1.2
            usd[i] = 0.1 * margin
        else:
            usd[i] = margin
    ids = [f"acct-{i}" for i in range(N_ACCOUNTS)]
    return assemble_book(ids, isolated, usd, coll, np.array(pos_account),
                         np.array(pos_asset), np.array(pos_qty), np.array(pos_entry))


def random_lending_book(rng: np.random.Generator, haircut: np.ndarray) -> Book:
    """A random lending book: cross accounts with asset collateral and USD or asset debt.

    Debts are a negative USD balance and/or positions with ``qty < 0`` and entry 0 in an
    asset the account does not hold; a few accounts also hold USD collateral. Each starts
    with a health factor between 1.02 and 1.5.
    """
    n_assets = len(PRICES)
    usd = np.zeros(N_ACCOUNTS)
    coll = np.zeros((N_ACCOUNTS, n_assets))
    pos_account, pos_asset, pos_qty = [], [], []
    for i in range(N_ACCOUNTS):
        held = rng.choice(n_assets, size=int(rng.integers(1, 3)), replace=False)
        free = [a for a in range(n_assets) if a not in held]
        weighted = 0.0
        for a in held:
            value = float(rng.lognormal(np.log(2000.0), 0.8))
            coll[i, a] = value / PRICES[a]
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
            pos_qty.append(-(1.0 - usd_share) * debt / PRICES[a])
    ids = [f"acct-{i}" for i in range(N_ACCOUNTS)]
    return assemble_book(ids, np.zeros(N_ACCOUNTS, dtype=bool), usd, coll,
                         np.array(pos_account, dtype=np.int64),
                         np.array(pos_asset, dtype=np.int64), np.array(pos_qty, dtype=float),
                         np.zeros(len(pos_qty)))


def random_paths(rng: np.random.Generator, gap_low: float) -> np.ndarray:
    """Random walks with 1% steps and a gap of ``gap_low - 1`` to +5% per asset a third of
    the way."""
    n_assets = len(PRICES)
    log_returns = 0.01 * rng.standard_normal((N_PATHS, STEPS, n_assets))
    gaps = rng.uniform(gap_low, 1.05, size=(N_PATHS, n_assets))
    log_returns[:, STEPS // 3, :] += np.log(gaps)
    exo = np.empty((N_PATHS, STEPS + 1, n_assets))
    exo[:, 0] = PRICES
    exo[:, 1:] = PRICES * np.exp(np.cumsum(log_returns, axis=1))
    return exo


@dataclass
class Setup:
    venue: Venue
    liquidity: Liquidity
    market: Market
    haircut: np.ndarray
    book: Book
    exo: np.ndarray
    depth: np.ndarray


def build(case: Case, seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    venue = Venue(**case.venue)
    if case.lending:
        # liquidation thresholds 90%, 85%, 80%; collateral gaps of up to -35% clear some
        # accounts with debt left over
        haircut = np.array([0.1, 0.15, 0.2])
        book = random_lending_book(rng, haircut)
        exo = random_paths(rng, gap_low=0.65)
    else:
        haircut = np.array([0.1, 0.2, 0.3])
        book = random_book(rng, tier_tables(venue))
        exo = random_paths(rng, gap_low=0.8)
    depth = np.full((STEPS + 1, len(PRICES)), 4000.0)
    depth[STEPS // 3] *= 0.5
    return Setup(venue, Liquidity(impact=case.impact, half_life_steps=case.half_life),
                 market(haircut), haircut, book, exo, depth)


def run_naive(s: Setup, haircut, brackets, **overrides):
    """The reference engine on a setup, with the venue's parameters."""
    kwargs = reference_kwargs(s.venue, s.liquidity, s.book, brackets)
    kwargs.update(overrides)
    return run_reference(s.exo, s.depth, haircut, s.book, **kwargs)
