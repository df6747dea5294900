"""The Numba engine produces the same events and records as the slow reference engine.

Random small books (cross and isolated units, several assets, USD and asset collateral)
are replayed over random paths with gaps, under every combination of liquidation mode,
impact law, ADL and impact decay; the test compares every event field and every per-path
and per-account output with ``tests/reference``.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator.config.market import Liquidity
from simulator.config.scenario import Venue
from simulator.margin import EngineRules, codes, replay

from ..reference import naive_replay
from ..support.compare import assert_same
from ..support.flat_books import market, random_book, random_paths

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
