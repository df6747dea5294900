"""The backstop vault's gradual disposal (``docs/engine.md``, "The backstop vault's
inventory"): a take-over computed by hand, the engine against the reference on random
books, and the conservation of value with the vault's inventory in the book."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simulator.margin import EngineRules, codes, replay

from ..support.compare import assert_same
from ..support.rule_cases import _DERIV, PRICES, TIERS, Case, build, run_naive, tier_tables

#: gradual cases: incremental with ADL and a fund (inverse positions too), full without ADL
GRADUAL = [
    Case("gradual-adl", {**_DERIV, "brackets": TIERS, "liquidation": "incremental",
                         "step_fraction": 0.2, "full_below_usd": 2000.0,
                         "backstop_ratio": 2.0 / 3.0, "liquidation_fee_rate": 0.0,
                         "insurance_fund_usd": 200.0, "adl": True,
                         "vault_disposal": "gradual", "vault_disposal_share": 0.3,
                         "vault_depth_share": 0.5}),
    Case("gradual-no-adl", {**_DERIV, "brackets": TIERS, "liquidation": "full",
                            "backstop_ratio": 2.0 / 3.0, "insurance_fund_usd": 0.0,
                            "adl": False, "vault_disposal": "gradual",
                            "vault_disposal_share": 1.0, "vault_depth_share": 0.05},
         impact="sqrt", half_life=3.0),
]


def _inverse(s, share: float, seed: int):
    """``s`` with about ``share`` of its positions inverse (the same USD notional)."""
    book = s.book
    inverse = np.random.default_rng(seed).random(len(book.pos_qty)) < share
    return replace(s, book=replace(
        book, pos_kind=np.where(inverse, codes.POS_INVERSE, codes.POS_LINEAR),
        pos_qty=np.where(inverse, book.pos_qty * book.pos_entry, book.pos_qty)))


@pytest.mark.parametrize("case", GRADUAL, ids=[c.name for c in GRADUAL])
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("full_scan", [False, True], ids=["indexed", "full-scan"])
def test_engine_matches_reference_gradual(case, seed, full_scan):
    s = build(case, seed)
    if seed == 2:
        s = _inverse(s, 0.4, seed)
    rules = EngineRules.from_scenario(s.venue, s.liquidity, s.market, full_scan=full_scan)
    assert rules.vault_gradual
    fast = replay(s.exo, s.depth, s.book, rules, initial_events=16)
    paths, events, accounts = run_naive(
        s, rules.haircut, (rules.tier_cap, rules.tier_rate, rules.tier_cum))
    kinds = {ev["kind"] for ev in events}
    assert {"backstop", "vault_sale"} <= kinds, kinds
    assert sum(p["vault_takeovers"] for p in paths) > 0
    assert_same(fast, s.book, paths, events, accounts, PRICES)
