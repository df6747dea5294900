"""The Numba engine's behaviour between liquidations follows the slow reference engine.

``docs/engine.md`` ("Behaviour: funding and margin calls") adds perpetual funding (constant
or premium) at the start of a step, answers to margin calls due at the step (a top-up from
a reserve or a reduction of every position), and margin calls at every check of the round
loop. Random books (``tests/margin/test_rules_vs_reference.py``) are replayed over random paths
with gaps under funding of either sign, premium funding with market impact, and margin
calls answered by top-ups or reductions with probability 0.5 or 1 after 1 or 3 steps, with
flat and tiered brackets and full, partial and incremental liquidation; every event field
and every per-path and per-account output is compared with ``tests/reference``.
``test_cases_exercise_every_mechanism`` shows, on the reference engine alone, that the
mechanisms really happen in these cases; the ``by_hand`` tests check the reference engine
itself on tiny books.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.config.behaviour import Behaviour
from simulator.margin import codes, replay
from simulator.margin._kernels.behaviour import draw_nb

from .. import reference
from ..reference import naive_replay
from ..support.behaviour_cases import Case, Setup, build, reserve_of, rules_of, run_naive
from ..support.compare import assert_same
from ..support.rule_cases import CASES as RULES_CASES
from ..support.rule_cases import (
    PRICES,
    STEP_HOURS,
    TIERS,
    tier_tables,
)
from ..support.rule_cases import build as build_rules
from ..support.rule_cases import run_naive as run_rules_naive

_FLAT = {"maintenance_margin_rate": 0.02, "target": 1.3, "liquidation_fee_rate": 0.01,
         "max_cascade_rounds": 8}
_TIERED = {**_FLAT, "brackets": TIERS}
_CALLS = ("called", "called_then_liquidated", "liquidated_uncalled")


def _calls(action: str, prob: float, delay: int, ratio: float = 1.6,
           target: float = 2.5) -> Behaviour:
    return Behaviour(margin_call_ratio=ratio, answer_probability=prob, delay_steps=delay,
                     action=action, target_ratio=target, reserve_ratio=0.3)


CASES = [
    Case("funding-constant-longs-pay",
         {**_FLAT, "liquidation": "full", "insurance_fund_usd": 500.0, "adl": True,
          "funding": "constant", "funding_rate": 0.004, "funding_interval_hours": 8.0},
         shows=("funding_changes_pnl", "funding_changes_liquidations")),
    Case("funding-constant-shorts-pay-partial",
         {**_FLAT, "liquidation": "partial", "insurance_fund_usd": 100.0, "adl": True,
          "funding": "constant", "funding_rate": -0.005, "funding_interval_hours": 16.0},
         impact="sqrt", half_life=3.0,
         shows=("funding_changes_pnl", "funding_changes_liquidations")),
    Case("funding-premium",
         {**_FLAT, "liquidation": "full", "insurance_fund_usd": 0.0, "adl": False,
          "funding": "premium", "funding_rate": 0.0001, "funding_cap": 0.004,
          "funding_interval_hours": 8.0},
         half_life=4.0, shows=("funding_changes_pnl", "premium_moves", "premium_capped")),
    Case("calls-top-up", {**_FLAT, "liquidation": "full", "insurance_fund_usd": 500.0,
                          "adl": True},
         behaviour=_calls("top_up", 1.0, 1), rng_key=11,
         shows=(*_CALLS, "top_up", "top_up_capped")),
    Case("calls-top-up-tiers-p05-d3",
         {**_TIERED, "liquidation": "incremental", "step_fraction": 0.3,
          "insurance_fund_usd": 200.0, "adl": True},
         behaviour=_calls("top_up", 0.5, 3), rng_key=2**63 - 5,
         shows=(*_CALLS, "top_up", "unanswered")),
    Case("calls-reduce-partial", {**_FLAT, "liquidation": "partial",
                                  "insurance_fund_usd": 100.0, "adl": True},
         behaviour=_calls("reduce", 1.0, 1), impact="sqrt", half_life=3.0, rng_key=12345,
         shows=(*_CALLS, "reduce")),
    Case("calls-reduce-tiers-p05-d3",
         {**_TIERED, "liquidation": "full", "insurance_fund_usd": 0.0, "adl": False},
         behaviour=_calls("reduce", 0.5, 3), rng_key=7,
         shows=(*_CALLS, "reduce", "unanswered")),
    Case("calls-and-premium-funding",
         {**_TIERED, "liquidation": "partial", "insurance_fund_usd": 300.0, "adl": True,
          "funding": "premium", "funding_rate": 0.0005, "funding_cap": 0.01,
          "funding_interval_hours": 8.0},
         behaviour=_calls("top_up", 0.5, 1, ratio=1.4, target=1.8), half_life=2.0,
         rng_key=99, shows=(*_CALLS, "top_up", "unanswered", "funding_changes_pnl",
                            "premium_moves")),
]


# ---------------------------------------------------------------------------------------
# Fast engine vs reference
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("full_scan", [False, True], ids=["indexed", "full-scan"])
def test_engine_matches_naive_behaviour(case, seed, full_scan):
    s = build(case, seed)
    rules = rules_of(s, full_scan)
    np.testing.assert_allclose(rules.haircut, s.haircut, rtol=1e-15)
    funding = s.venue.funding != "off"
    assert rules.iparams[codes.IP_FUNDING_INTERVAL] == (
        round(s.venue.funding_interval_hours / STEP_HOURS) if funding else 0)
    reserve = reserve_of(s, rules)
    fast = replay(s.exo, s.depth, s.book, rules, initial_events=16, rng_key=case.rng_key)
    paths, events, accounts = run_naive(s, reserve.tolist())
    assert len(events) > 10
    assert_same(fast, s.book, paths, events, accounts, PRICES)


def test_draw_matches_engine_and_reference_vectors():
    """The reference draw is the engine's, bit for bit, and splitmix64 is the published one.

    splitmix64 seeded with 0 first returns 0xE220A8397B1DCDAF; seeded with 1234567 it
    returns 6457827717110365317 and then 3203168211198807973.
    """
    assert reference.splitmix64(0) == 0xE220A8397B1DCDAF
    assert reference.splitmix64(1234567) == 6457827717110365317
    assert reference.splitmix64(1234567 + 0x9E3779B97F4A7C15) == 3203168211198807973
    rng = np.random.default_rng(0)
    keys = [0, 1, 11, 2**32 - 1, 2**62 + 17, 2**63 - 5, *rng.integers(0, 2**63 - 1, 20)]
    for key in keys:
        for path in (0, 1, 5, 2**20 + 3, 2**31 - 1):
            for u in (0, 1, 24, 2**31 - 1):
                x = reference.draw(int(key), path, u)
                assert 0.0 <= x < 1.0
                assert x == draw_nb(int(key), path, u), (key, path, u)


# ---------------------------------------------------------------------------------------
# The cases are not vacuous (reference engine only)
# ---------------------------------------------------------------------------------------


def _record(monkeypatch) -> dict[str, list]:
    """Wrap the reference engine's calls, liquidations and funding rates to record them."""
    seen: dict[str, list] = {"calls": [], "liquidations": [], "rates": []}
    original_call = reference.PathRun.call_unit
    original_count = reference.PathRun.count_liquidation
    original_rates = reference.PathRun.funding_rates

    def call_unit(self, t, u):
        answers = original_call(self, t, u)
        e = self.book.equity(u, self.marks)
        mm = self.book.maintenance(u, self.marks)
        seen["calls"].append((self.path, t, u, answers, e, mm))
        return answers

    def count_liquidation(self, t, u):
        seen["liquidations"].append((self.path, t, u))
        return original_count(self, t, u)

    def funding_rates(self, t):
        rates = original_rates(self, t)
        seen["rates"].append(rates)
        return rates

    monkeypatch.setattr(reference.PathRun, "call_unit", call_unit)
    monkeypatch.setattr(reference.PathRun, "count_liquidation", count_liquidation)
    monkeypatch.setattr(reference.PathRun, "funding_rates", funding_rates)
    return seen


def _mechanisms(s: Setup, reserve, seen, paths, events, accounts) -> set[str]:
    """Which mechanisms occurred in one replay of a case."""
    shown: set[str] = set()
    v, beh = s.venue, s.case.behaviour
    called = {}
    for path, t, u, answers, e, mm in seen["calls"]:
        assert (path, u) not in called, "a unit is called at most once per path"
        assert mm <= e < beh.margin_call_ratio * mm
        called[path, u] = t
        shown.add("called")
        if not answers:
            shown.add("unanswered")
    for path, t, u in seen["liquidations"]:
        if (path, u) in called:
            assert called[path, u] <= t
            shown.add("called_then_liquidated")
        elif beh.calls:
            shown.add("liquidated_uncalled")  # a gap straight through the call level
    for ev in events:
        if ev["kind"] == "top_up":
            shown.add("top_up")
            if any(math.isclose(ev["qty"], x, rel_tol=1e-12) for x in reserve):
                shown.add("top_up_capped")  # the reserve binds
        if ev["kind"] == "reduce":
            shown.add("reduce")
    if v.funding == "premium":
        for rates in seen["rates"]:
            if any(r != v.funding_rate for r in rates):
                shown.add("premium_moves")
            if any(abs(r) == v.funding_cap for r in rates):
                shown.add("premium_capped")
    if v.funding != "off":
        _, no_events, no_accounts = run_naive(s, reserve, funding_interval=0)
        if not np.allclose(no_accounts["pnl"], accounts["pnl"], rtol=1e-6, atol=1e-6):
            shown.add("funding_changes_pnl")
        if no_accounts["liquidated"] != accounts["liquidated"]:
            shown.add("funding_changes_liquidations")
    return shown


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cases_exercise_every_mechanism(case, monkeypatch):
    """Each case shows the mechanisms it is there for, on seed 1 and on seed 2."""
    for seed in (1, 2):
        s = build(case, seed)
        reserve = reserve_of(s, rules_of(s)).tolist()
        seen = _record(monkeypatch)
        paths, events, accounts = run_naive(s, reserve)
        monkeypatch.undo()
        shown = _mechanisms(s, reserve, seen, paths, events, accounts)
        missing = set(case.shows) - shown
        assert not missing, (case.name, seed, missing)


def test_behaviour_off_by_default():
    """With the new arguments at their defaults the reference engine is unchanged, and
    margin calls and funding are ignored on a lending venue."""
    s = build(CASES[0], 1)
    off = run_naive(s, None, funding_interval=0, call_ratio=0.0)
    v = s.venue
    legacy = naive_replay(
        s.exo, s.depth, s.haircut, None, s.book.unit_account, s.book.unit_usd,
        s.book.unit_coll, s.book.pos_unit, s.book.pos_asset, s.book.pos_qty,
        s.book.pos_entry, n_accounts=s.book.n_accounts, fee_rate=v.liquidation_fee_rate,
        target=v.target, fund0=v.insurance_fund_usd, adl=v.adl,
        max_rounds=v.max_cascade_rounds, alpha=s.liquidity.alpha,
        decay=s.liquidity.decay_per_step, brackets=tier_tables(v), mode=v.liquidation)
    assert off == legacy
    lending = next(c for c in RULES_CASES if c.lending)
    r = build_rules(lending, 1)
    plain = run_rules_naive(r, r.haircut, tier_tables(r.venue))
    assert len(plain[1]) > 10
    with_behaviour = run_rules_naive(
        r, r.haircut, tier_tables(r.venue), funding_interval=1, funding_rate=0.01,
        call_ratio=1.5, call_prob=1.0, call_action="top_up", call_target=3.0,
        reserve=[1e6] * r.book.n_units)
    assert with_behaviour == plain


# ---------------------------------------------------------------------------------------
# The reference engine on tiny books, checked by hand against docs/engine.md
# ---------------------------------------------------------------------------------------


def _tiny(prices, usd, qty, entry, **kwargs):
    """Units each holding one position in one asset (one account per unit), flat 5% MM."""
    n_units = len(usd)
    exo = [[[p] for p in prices]]
    base = dict(n_accounts=n_units, fee_rate=0.0, target=1.25, fund0=0.0, adl=False,
                max_rounds=8, alpha=0.0, decay=1.0)
    base.update(kwargs)
    depth = np.full((len(prices), 1), 1e6)
    return naive_replay(exo, depth, [0.0], [0.05], list(range(n_units)), usd,
                        [[0.0]] * n_units, list(range(n_units)), [0] * n_units, qty, entry,
                        **base)


def test_naive_by_hand_top_up():
    """Long 10 @ 100 with $100, MM 5%, kappa 1.5, tau 2, reserve $200, delay 1.

    At 95 (t = 1): E = 50, MM = 47.5 <= 50 < 71.25: called; it answers at t = 2 with
    x = min(200, 2 x 47.5 - 50) = 45 (round 0). At 91 (t = 3): E = 145 - 90 = 55 >=
    MM = 45.5, not liquidated (without the top-up E = 10 would be). PnL = NAV_end -
    NAV_start - top-ups = 55 - 100 - 45 = -90 = 10 x (91 - 100). With a reserve of $20 it
    deposits 20 and is liquidated at 91 (E = 30): NAV_end = 30, PnL = 30 - 100 - 20 = -90.
    """
    paths, events, accounts = _tiny(
        [100.0, 95.0, 95.0, 91.0], [100.0], [10.0], [100.0], call_ratio=1.5, call_prob=1.0,
        call_delay=1, call_action="top_up", call_target=2.0, reserve=[200.0])
    assert len(events) == 1
    ev = events[0]
    assert (ev["step"], ev["round"], ev["kind"], ev["instrument"], ev["asset"]) == (
        2, 0, "top_up", "collateral", -1)
    assert math.isclose(ev["qty"], 45.0, rel_tol=1e-12)
    assert math.isclose(ev["notional"], 45.0, rel_tol=1e-12)
    assert (ev["mark_price"], ev["exec_price"], ev["fee"], ev["bad_debt"],
            ev["fund_paid"]) == (1.0, 1.0, 0.0, 0.0, 0.0)
    assert paths[0]["n_liquidations"] == 0
    assert math.isclose(accounts["pnl"][0][0], -90.0, rel_tol=1e-12)
    # the reserve binds: $20 only, and the drop to 91 liquidates it
    paths, events, accounts = _tiny(
        [100.0, 95.0, 95.0, 91.0], [100.0], [10.0], [100.0], call_ratio=1.5, call_prob=1.0,
        call_action="top_up", call_target=2.0, reserve=[20.0])
    assert [(e["step"], e["kind"]) for e in events] == [(2, "top_up"), (3, "liquidation")]
    assert events[0]["qty"] == 20.0
    assert math.isclose(accounts["pnl"][0][0], -90.0, rel_tol=1e-12)


def test_naive_by_hand_reduce_and_no_answer():
    """The same call answered by a reduction: f = 1 - 50 / (2 x 47.5) = 9/19.

    Closing 9/19 of the long at 95 leaves E = 50 (it closes at the mark) and
    MM = 47.5 x 10/19 = 25: E / MM = tau = 2. With probability 0 it never answers.
    """
    paths, events, accounts = _tiny(
        [100.0, 95.0, 95.0], [100.0], [10.0], [100.0], call_ratio=1.5, call_prob=1.0,
        call_action="reduce", call_target=2.0)
    assert len(events) == 1
    ev = events[0]
    assert (ev["step"], ev["round"], ev["kind"], ev["instrument"], ev["asset"]) == (
        2, 0, "reduce", "perp", 0)
    assert math.isclose(ev["qty"], -90.0 / 19.0, rel_tol=1e-12)
    assert ev["mark_price"] == ev["exec_price"] == 95.0
    assert math.isclose(ev["notional"], 95.0 * 90.0 / 19.0, rel_tol=1e-12)
    assert ev["fee"] == 0.0
    assert math.isclose(accounts["pnl"][0][0], -50.0, rel_tol=1e-12)
    _, events, _ = _tiny([100.0, 95.0, 95.0], [100.0], [10.0], [100.0], call_ratio=1.5,
                         call_prob=0.0, call_action="reduce", call_target=2.0)
    assert events == []


def test_naive_by_hand_gap_through_the_call_level():
    """From E / MM = 2 (at 100) straight to E = 30 < MM = 46.5 (at 93): liquidated in
    round 1 of step 1, never called."""
    paths, events, _ = _tiny([100.0, 93.0, 93.0], [100.0], [10.0], [100.0],
                             call_ratio=1.5, call_prob=1.0, reserve=[1000.0])
    assert [(e["step"], e["round"], e["kind"]) for e in events] == [(1, 1, "liquidation")]


def test_naive_by_hand_funding():
    """Long and short 10 @ 100, flat marks; funding every 2 steps.

    Constant 1%: the long pays 10 x 100 x 1% = 10 at t = 2 and t = 4, the short receives
    it. Premium with phi = 2% and cap 1.5%: no impact, so the premium is 0 and the rate is
    min(2%, 1.5%); a negative phi = -2% gives -1.5% (shorts pay).
    """
    prices = [100.0] * 5
    _, events, accounts = _tiny(prices, [1000.0, 1000.0], [10.0, -10.0], [100.0, 100.0],
                                funding_interval=2, funding_rate=0.01)
    assert events == []
    np.testing.assert_allclose(accounts["pnl"][0], [-20.0, 20.0], rtol=1e-12)
    for phi, pnl in ((0.02, [-30.0, 30.0]), (-0.02, [30.0, -30.0])):
        _, _, accounts = _tiny(prices, [1000.0, 1000.0], [10.0, -10.0], [100.0, 100.0],
                               funding_interval=2, funding_rate=phi, funding_premium=True,
                               funding_cap=0.015)
        np.testing.assert_allclose(accounts["pnl"][0], pnl, rtol=1e-12)
