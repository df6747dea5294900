"""The Numba engine's circuit breaker follows the slow reference engine, event by event.

``docs/engine.md`` ("Circuit breaker"): a step whose marks leave the band around the
previous close pauses the margin calls and liquidation rounds (or all trading) of that step
and the ``K - 1`` after it. Random books and paths with a gap
(``tests/margin/test_behaviour_vs_reference.py``), under funding and margin calls, impact
with and without decay, flat and tiered brackets and every liquidation mode, are replayed
with a breaker of either kind by both engines, indexed and full-scan: every event field and
every per-path (the breaker's counts included) and per-account output is compared; likewise
for option books, lending venues and a backstop vault.
``test_cases_trip_and_change_the_outcome`` shows, on the reference alone, that the breaker
trips and pauses in every case and changes what happens.
"""

from __future__ import annotations

import dataclasses

import pytest

from simulator.config.behaviour import Behaviour
from simulator.margin import EngineRules, replay

from ..support import option_cases, rule_cases
from ..support.behaviour_cases import Case, build, reserve_of, rules_of, run_naive
from ..support.compare import assert_same
from ..support.rule_cases import PRICES, TIERS

_FLAT = {"maintenance_margin_rate": 0.02, "target": 1.3, "liquidation_fee_rate": 0.01,
         "max_cascade_rounds": 8}


def _calls(action: str, prob: float, delay: int) -> Behaviour:
    return Behaviour(margin_call_ratio=1.6, answer_probability=prob, delay_steps=delay,
                     action=action, target_ratio=2.5, reserve_ratio=0.3)


def _breaker(band: float, steps: int, halts: str) -> dict:
    return {"circuit_breaker_band": band, "circuit_breaker_steps": steps,
            "circuit_breaker_halts": halts}


CASES = [
    Case("liquidations-full-funding-calls",
         {**_FLAT, "liquidation": "full", "insurance_fund_usd": 300.0, "adl": True,
          "funding": "constant", "funding_rate": 0.004, "funding_interval_hours": 8.0,
          **_breaker(0.015, 3, "liquidations")},
         behaviour=_calls("top_up", 1.0, 1), rng_key=11),
    Case("liquidations-partial-tiered-decay",
         {**_FLAT, "brackets": TIERS, "liquidation": "partial", "insurance_fund_usd": 100.0,
          "adl": True, **_breaker(0.02, 2, "liquidations")},
         behaviour=_calls("reduce", 0.5, 2), impact="sqrt", half_life=2.0, rng_key=5),
    Case("trading-incremental-premium-calls",
         {**_FLAT, "liquidation": "incremental", "step_fraction": 0.3, "insurance_fund_usd":
          200.0, "adl": True, "funding": "premium", "funding_rate": 0.0005,
          "funding_cap": 0.01, "funding_interval_hours": 8.0,
          **_breaker(0.015, 2, "trading")},
         behaviour=_calls("top_up", 0.5, 1), half_life=2.0, rng_key=99),
    Case("trading-k1-reduce-permanent-impact",
         {**_FLAT, "liquidation": "full", "insurance_fund_usd": 0.0, "adl": False,
          **_breaker(0.02, 1, "trading")},
         behaviour=_calls("reduce", 1.0, 3), rng_key=7),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("full_scan", [False, True], ids=["indexed", "full-scan"])
def test_engine_matches_naive_breaker(case, seed, full_scan):
    s = build(case, seed)
    rules = rules_of(s, full_scan)
    assert rules.breaker
    reserve = reserve_of(s, rules)
    fast = replay(s.exo, s.depth, s.book, rules, initial_events=16, rng_key=case.rng_key)
    paths, events, accounts = run_naive(s, reserve.tolist())
    assert len(events) > 10
    assert sum(p["breaker_trips"] for p in paths) > 0
    assert_same(fast, s.book, paths, events, accounts, PRICES)


#: option books (``tests/margin/test_options_vs_reference.py``): expiries, option boxes and
#: their due steps across pauses
OPTION_CASES = [
    dataclasses.replace(option_cases.CASES[0], venue={**option_cases.CASES[0].venue,
                                                      **_breaker(0.05, 2, "liquidations")}),
    dataclasses.replace(option_cases.CASES[6], venue={**option_cases.CASES[6].venue,
                                                      **_breaker(0.05, 3, "trading")}),
]


@pytest.mark.parametrize("case", OPTION_CASES, ids=[c.name for c in OPTION_CASES])
@pytest.mark.parametrize("full_scan", [False, True], ids=["indexed", "full-scan"])
def test_engine_matches_naive_breaker_options(case, full_scan):
    s = option_cases.build(case, 1)
    rules = option_cases.rules_of(s, full_scan)
    reserve = option_cases.reserve_of(s, rules)
    fast = replay(s.exo, s.depth, s.book, rules, initial_events=16, rng_key=case.rng_key)
    paths, events, accounts = option_cases.run_naive(s, rules, reserve)
    assert sum(p["breaker_trips"] for p in paths) >= len(paths)
    assert any(e["instrument"] in ("call", "put") for e in events)
    assert_same(fast, s.book, paths, events, accounts, option_cases.PRICES)


#: a lending venue (``tests/margin/test_rules_vs_reference.py``) and a backstop vault
RULE_CASES = [
    dataclasses.replace(c, venue={**c.venue, **_breaker(0.03, k, halts)})
    for c, k, halts in ((rule_cases.CASES[-2], 2, "liquidations"),
                        (rule_cases.CASES[-1], 3, "trading"))
] + [rule_cases.Case("backstop-trading", {**_FLAT, "liquidation": "partial",
                                          "backstop_ratio": 0.6, "insurance_fund_usd": 0.0,
                                          "adl": True, **_breaker(0.03, 2, "trading")}),
   rule_cases.Case("vault-gradual-trading", {
       **_FLAT, "liquidation": "partial", "backstop_ratio": 0.6, "insurance_fund_usd": 0.0,
       "adl": True, "vault_disposal": "gradual", "vault_disposal_share": 0.3,
       "vault_depth_share": 0.5, **_breaker(0.03, 2, "trading")})]


@pytest.mark.parametrize("case", RULE_CASES, ids=[c.name for c in RULE_CASES])
@pytest.mark.parametrize("full_scan", [False, True], ids=["indexed", "full-scan"])
def test_engine_matches_naive_breaker_rules(case, full_scan):
    s = rule_cases.build(case, 1)
    rules = EngineRules.from_scenario(s.venue, s.liquidity, s.market, full_scan=full_scan)
    assert rules.breaker
    fast = replay(s.exo, s.depth, s.book, rules, initial_events=16)
    paths, events, accounts = rule_cases.run_naive(
        s, rules.haircut, (rules.tier_cap, rules.tier_rate, rules.tier_cum))
    assert len(events) > 10
    assert sum(p["breaker_trips"] for p in paths) >= len(paths)
    assert_same(fast, s.book, paths, events, accounts, PRICES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cases_trip_and_change_the_outcome(case):
    """On the reference alone: the breaker trips more than once on some path, pauses
    steps, and moves liquidations; off (band 0), the same case gives other events."""
    s = build(case, 1)
    reserve = reserve_of(s, rules_of(s)).tolist()
    paths, events, _ = run_naive(s, reserve)
    off = dataclasses.replace(s, venue=dataclasses.replace(s.venue, circuit_breaker_band=0.0))
    paths_off, events_off, _ = run_naive(off, reserve)
    assert max(p["breaker_trips"] for p in paths) >= 2
    assert all(p["breaker_paused_steps"] >= p["breaker_trips"] for p in paths)
    assert all(p["breaker_trips"] == p["breaker_paused_steps"] == 0 for p in paths_off)

    def liquidation_steps(evs):
        return [(e["path"], e["step"]) for e in evs if e["kind"] == "liquidation"]

    assert liquidation_steps(events) != liquidation_steps(events_off)
    assert [p["n_liquidations"] for p in paths] != [p["n_liquidations"] for p in paths_off] \
        or [p["bad_debt"] for p in paths] != [p["bad_debt"] for p in paths_off]
