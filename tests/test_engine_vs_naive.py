"""The Numba engine produces the same events and records as the slow reference engine.

Random small books (cross and isolated units, several assets, USD and asset collateral)
are replayed over random paths with gaps, under every combination of liquidation mode,
impact law, ADL and impact decay; the test compares every event field and every per-path
and per-account output with ``tests/naive.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator.book.build import assemble_book
from simulator.config.market import Asset, Liquidity, Market
from simulator.config.scenario import Venue
from simulator.margin import EngineRules, codes, replay

from .compare import assert_same
from .naive import naive_replay


def random_book(rng: np.random.Generator, n_accounts: int, prices: np.ndarray, mmr: float):
    """A random book whose accounts start above maintenance, with leverage up to ~0.9/mmr."""
    n_assets = len(prices)
    isolated = rng.random(n_accounts) < 0.5
    usd = np.zeros(n_accounts)
    coll = np.zeros((n_accounts, n_assets))
    pos_account, pos_asset, pos_qty, pos_entry = [], [], [], []
    for i in range(n_accounts):
        k = rng.integers(1, n_assets + 1)
        assets = rng.choice(n_assets, size=k, replace=False)
        notional = 0.0
        for a in assets:
            size_usd = float(rng.lognormal(np.log(1000.0), 1.0))
            side = 1.0 if rng.random() < 0.55 else -1.0
            entry = prices[a] * float(rng.uniform(0.97, 1.03))
            pos_account.append(i)
            pos_asset.append(int(a))
            pos_qty.append(side * size_usd / entry)
            pos_entry.append(entry)
            notional += size_usd
        leverage = float(rng.uniform(2.0, 0.9 / mmr))
        margin = notional / leverage
        if not isolated[i] and rng.random() < 0.3:
            a = int(rng.integers(n_assets))
            coll[i, a] = margin / prices[a] * 1.2
            usd[i] = 0.1 * margin
        else:
            usd[i] = margin
    ids = [f"acct-{i}" for i in range(n_accounts)]
    return assemble_book(ids, isolated, usd, coll, np.array(pos_account), np.array(pos_asset),
                         np.array(pos_qty), np.array(pos_entry))


def random_paths(rng: np.random.Generator, n_paths: int, steps: int, prices: np.ndarray):
    n_assets = len(prices)
    log_returns = 0.01 * rng.standard_normal((n_paths, steps, n_assets))
    log_returns[:, steps // 3, :] += np.log(rng.uniform(0.8, 1.05, size=(n_paths, n_assets)))
    exo = np.empty((n_paths, steps + 1, n_assets))
    exo[:, 0] = prices
    exo[:, 1:] = prices * np.exp(np.cumsum(log_returns, axis=1))
    return exo


def market(prices, haircut, vols=(0.8, 1.0, 1.3)):
    assets = tuple(Asset(f"A{i}", float(p), vol=v, haircut=float(h))
                   for i, (p, h, v) in enumerate(zip(prices, haircut, vols, strict=True)))
    return Market("gbm", assets, tuple(tuple(float(i == j) for j in range(len(prices)))
                                       for i in range(len(prices))))


CASES = [
    # liquidation, impact, adl, half_life, fund
    ("full", "linear", True, 0.0, 2000.0),
    ("full", "sqrt", True, 3.0, 0.0),
    ("full", "none", False, 0.0, 500.0),
    ("partial", "linear", True, 0.0, 100.0),
    ("partial", "sqrt", False, 2.0, 0.0),
    ("full", "linear", False, 5.0, 0.0),
]


@pytest.mark.parametrize(("liquidation", "impact", "adl", "half_life", "fund"), CASES)
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("full_scan", [False, True], ids=["indexed", "full-scan"])
def test_engine_matches_naive(liquidation, impact, adl, half_life, fund, seed, full_scan):
    rng = np.random.default_rng(seed)
    prices = np.array([100.0, 20.0, 3.0])
    mmr_rate = 0.02
    book = random_book(rng, 25, prices, mmr_rate)
    steps = 12
    exo = random_paths(rng, 6, steps, prices)
    depth = np.full((steps + 1, 3), 4000.0)
    depth[steps // 3] *= 0.5
    haircut = np.array([0.1, 0.2, 0.3])
    venue = Venue(liquidation=liquidation, target=1.3, liquidation_fee_rate=0.01,
                  insurance_fund_usd=fund, adl=adl, maintenance_margin_rate=mmr_rate,
                  max_cascade_rounds=8)
    liquidity = Liquidity(impact=impact, half_life_steps=half_life)
    rules = EngineRules.from_scenario(venue, liquidity, market(prices, haircut),
                                      full_scan=full_scan)
    fast = replay(exo, depth, book, rules, initial_events=16)
    paths, events, accounts = naive_replay(
        exo, depth, haircut, rules.tier_rate[:, 0], book.unit_account, book.unit_usd,
        book.unit_coll, book.pos_unit, book.pos_asset, book.pos_qty, book.pos_entry,
        n_accounts=book.n_accounts, fee_rate=venue.liquidation_fee_rate,
        partial=liquidation == "partial", target=venue.target, fund0=fund, adl=adl,
        max_rounds=venue.max_cascade_rounds, alpha=liquidity.alpha,
        decay=liquidity.decay_per_step)

    # the books are built to make cascades happen: the comparison must cover real events
    assert len(events) > 10
    assert_same(fast, book, paths, events, accounts, prices)
    # only units whose state changed carry a correction
    assert len(fast.corr_delta) <= len(events) + book.n_units


def test_cases_exercise_every_mechanism():
    """Across the cases above, cascades, bad debt, ADL and socialised losses all occur."""
    seen = {"rounds>1": False, "bad_debt": False, "adl": False, "socialised": False,
            "collateral": False, "partial": False}
    for liquidation, impact, adl, half_life, fund in CASES:
        rng = np.random.default_rng(1)
        prices = np.array([100.0, 20.0, 3.0])
        book = random_book(rng, 25, prices, 0.02)
        exo = random_paths(rng, 6, 12, prices)
        venue = Venue(liquidation=liquidation, target=1.3, liquidation_fee_rate=0.01,
                      insurance_fund_usd=fund, adl=adl, maintenance_margin_rate=0.02,
                      max_cascade_rounds=8)
        rules = EngineRules.from_scenario(venue, Liquidity(impact, half_life),
                                          market(prices, [0.1, 0.2, 0.3]))
        depth = np.full((13, 3), 4000.0)
        res = replay(exo, depth, book, rules)
        seen["rounds>1"] |= bool((res.path_i[:, codes.PI_MAX_ROUNDS] > 1).any())
        seen["bad_debt"] |= bool((res.path_f[:, codes.PF_BAD_DEBT] > 0).any())
        seen["adl"] |= bool((res.ev_i[:, codes.EI_KIND] == codes.KIND_ADL).any())
        seen["socialised"] |= bool((res.path_f[:, codes.PF_SOCIALISED] > 0).any())
        seen["collateral"] |= bool(
            (res.ev_i[:, codes.EI_INSTRUMENT] == codes.INSTRUMENT_COLLATERAL).any())
        kinds = res.ev_i[:, codes.EI_KIND] == codes.KIND_LIQUIDATION
        if liquidation == "partial":
            units = res.ev_i[kinds, codes.EI_UNIT]
            assets = res.ev_i[kinds, codes.EI_ASSET]
            qty = -res.ev_f[kinds, codes.EF_QTY]
            full_qty = np.array([book.pos_qty[(book.pos_unit == u) & (book.pos_asset == a)].sum()
                                 for u, a in zip(units, assets, strict=True)])
            seen["partial"] |= bool((np.abs(qty) < 0.999 * np.abs(full_qty)).any())
    assert all(seen.values()), seen
