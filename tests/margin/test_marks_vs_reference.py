"""The Numba engine values positions and collateral at the marks of ``venue.mark_price``
and ``venue.collateral_price`` exactly as the slow reference does (``docs/engine.md``,
"Oracle, index and mark").

Random derivatives books whose positions are in two assets, with collateral in all three
(the third held only as collateral), replayed over random gapped paths seen through a
noisy, lagged oracle with a heartbeat and a deviation trigger; every event field and every
per-path and per-account output is compared with ``tests/reference``.
``test_marks_change_the_outcome`` shows the rules matter in these cases (not vacuous).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simulator.book.build import assemble_book
from simulator.config.market import Oracle
from simulator.config.scenario import Venue
from simulator.margin import EngineRules, codes, replay
from simulator.margin.records import price_rules
from simulator.paths.oracle import noise_factors, oracle_index

from ..support.compare import assert_same, gapped_walks, reference_kwargs, run_reference
from ..support.rule_cases import CASES as RULE_CASES
from ..support.rule_cases import (
    PRICES,
    STEP_HOURS,
    STEPS,
    TIERS,
    Liquidity,
    market,
    tier_tables,
)
from ..support.rule_cases import build as build_rule_case
from ..support.rule_cases import run_naive as run_rule_naive

N_ACCOUNTS = 30
N_PATHS = 6
ORACLE = {"heartbeat_steps": 3, "deviation": 0.03, "lag_steps": 1, "sources": 3,
          "noise": 0.01}
_DERIV = {"target": 1.3, "liquidation_fee_rate": 0.01, "max_cascade_rounds": 8,
          "brackets": TIERS}

#: (name, venue keys, impact, half-life)
CASES = [
    ("index-full", {**_DERIV, "mark_price": "index", "collateral_price": "index",
                    "insurance_fund_usd": 300.0, "adl": True}, "linear", 0.0),
    ("median-partial", {**_DERIV, "mark_price": "median", "collateral_price": "book",
                        "mark_ema_halflife_steps": 2.0, "liquidation": "partial",
                        "insurance_fund_usd": 100.0, "adl": True}, "sqrt", 3.0),
    ("median-backstop-premium", {**_DERIV, "mark_price": "median", "collateral_price": "index",
                                 "liquidation": "incremental", "full_below_usd": 2000.0,
                                 "backstop_ratio": 2.0 / 3.0, "insurance_fund_usd": 0.0,
                                 "adl": True, "adl_ranking": "profit_leverage",
                                 "funding": "premium", "funding_rate": 0.0005,
                                 "funding_cap": 0.02, "funding_interval_hours": 8.0},
     "linear", 2.0),
    ("book-coll-index", {**_DERIV, "collateral_price": "index", "insurance_fund_usd": 0.0,
                         "adl": False}, "linear", 0.0),
]


def random_book(rng: np.random.Generator):
    """Cross and isolated accounts with positions in A0 and A1 only; collateral in USD, A0
    or A2 (A2 is held only as collateral, so ``collateral_price`` prices it)."""
    isolated = rng.random(N_ACCOUNTS) < 0.3
    usd = np.zeros(N_ACCOUNTS)
    coll = np.zeros((N_ACCOUNTS, len(PRICES)))
    pos_account, pos_asset, pos_qty, pos_entry = [], [], [], []
    for i in range(N_ACCOUNTS):
        notional = 0.0
        for a in rng.choice(2, size=int(rng.integers(1, 3)), replace=False):
            size = float(rng.lognormal(np.log(1500.0), 0.8))
            entry = PRICES[a] * float(rng.uniform(0.97, 1.03))
            pos_account.append(i)
            pos_asset.append(int(a))
            pos_qty.append((1.0 if rng.random() < 0.6 else -1.0) * size / entry)
            pos_entry.append(entry)
            notional += size
        margin = notional / float(rng.uniform(3.0, 15.0))
        if not isolated[i] and rng.random() < 0.6:
            a = 2 if rng.random() < 0.7 else 0
            coll[i, a] = margin / PRICES[a] * 1.3
            usd[i] = 0.05 * margin
        else:
            usd[i] = margin
    return assemble_book([f"acct-{i}" for i in range(N_ACCOUNTS)], isolated, usd, coll,
                         np.array(pos_account), np.array(pos_asset), np.array(pos_qty),
                         np.array(pos_entry))


def setup(venue_keys: dict, impact: str, half_life: float, seed: int):
    rng = np.random.default_rng(seed)
    venue = Venue(**venue_keys)
    haircut = np.array([0.1, 0.2, 0.15])
    book = random_book(rng)
    exo = gapped_walks(rng, PRICES, N_PATHS, STEPS, 0.01, ((STEPS // 3, (0.8, 1.05)),
                                                          (2 * STEPS // 3, (0.9, 1.1))))
    depth = np.full((STEPS + 1, len(PRICES)), 3000.0)
    depth[:, 2] = 1500.0  # a thin book for the collateral-only asset
    index = oracle_index(exo, rng, **ORACLE)
    liquidity = Liquidity(impact=impact, half_life_steps=half_life)
    rules = EngineRules.from_scenario(venue, liquidity, market(haircut), step_hours=STEP_HOURS)
    return venue, liquidity, haircut, book, exo, depth, index, rules


def naive(venue, liquidity, haircut, book, exo, depth, index, rules):
    """The reference on a case, with the oracle's index and the engine's price rules."""
    kwargs = reference_kwargs(venue, liquidity, book, tier_tables(venue),
                              step_hours=STEP_HOURS)
    return run_reference(exo, depth, rules.haircut, book, **kwargs, index=index,
                         price_rule=[codes.PRICE_NAMES[r] for r in price_rules(rules, book)],
                         ema_weight=rules.mark_ema_weight)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("full_scan", [False, True], ids=["indexed", "full-scan"])
def test_engine_matches_naive_marks(case, seed, full_scan):
    _, venue_keys, impact, half_life = case
    venue, liquidity, haircut, book, exo, depth, index, rules = setup(venue_keys, impact,
                                                                      half_life, seed)
    rules = dataclasses.replace(rules, iparams=rules.iparams.copy())
    rules.iparams[codes.IP_FULL_SCAN] = full_scan
    fast = replay(exo, depth, book, rules, initial_events=16, oracle=index)
    paths, events, accounts = naive(venue, liquidity, haircut, book, exo, depth, index, rules)
    assert len(events) > 10
    assert_same(fast, book, paths, events, accounts, PRICES)


def test_price_rules_follow_the_book():
    """Assets with positions take ``mark_price``, assets held only as collateral
    ``collateral_price``."""
    venue, _, _, book, *_, rules = setup(CASES[2][1], "linear", 0.0, 3)
    assert venue.mark_price == "median" and venue.collateral_price == "index"
    assert list(price_rules(rules, book)) == [codes.PRICE_MEDIAN, codes.PRICE_MEDIAN,
                                              codes.PRICE_INDEX]


@pytest.mark.parametrize("case", CASES[:2], ids=[c[0] for c in CASES[:2]])
def test_marks_change_the_outcome(case):
    """The same book and paths under the book's marks give other liquidations: the cases
    exercise the rule (the reference alone)."""
    _, venue_keys, impact, half_life = case
    venue, liquidity, haircut, book, exo, depth, index, rules = setup(venue_keys, impact,
                                                                      half_life, 3)
    _, events, _ = naive(venue, liquidity, haircut, book, exo, depth, index, rules)
    plain = dataclasses.replace(rules, mark_rule=codes.PRICE_BOOK,
                                collateral_rule=codes.PRICE_BOOK)
    _, events_book, _ = naive(venue, liquidity, haircut, book, exo, depth, index, plain)
    key = [(e["path"], e["step"], e["account"], e["kind"]) for e in events]
    key_book = [(e["path"], e["step"], e["account"], e["kind"]) for e in events_book]
    assert key != key_book


# ---------------------------------------------------------------------------------------
# A lending venue's oracle reads its own book
# ---------------------------------------------------------------------------------------

LENDING_ORACLES = [
    {"heartbeat_steps": 3, "deviation": 0.04, "lag_steps": 1, "sources": 3, "noise": 0.01},
    {"heartbeat_steps": 2, "deviation": 0.0, "lag_steps": 0, "sources": 1, "noise": 0.0},
    {"heartbeat_steps": 1, "deviation": 0.0, "lag_steps": 2, "sources": 2, "noise": 0.02},
]


@pytest.mark.parametrize("case", [c for c in RULE_CASES if c.lending], ids=lambda c: c.name)
@pytest.mark.parametrize("oracle", range(len(LENDING_ORACLES)))
@pytest.mark.parametrize("full_scan", [False, True], ids=["indexed", "full-scan"])
def test_lending_oracle_matches_naive(case, oracle, full_scan):
    """The oracle publishes from the venue's book (liquidators' impact included) at each
    step's start, by its heartbeat, deviation and lag; the rounds of a step see that
    publication."""
    s = build_rule_case(case, 5)
    market_o = dataclasses.replace(s.market, oracle=Oracle(**LENDING_ORACLES[oracle]))
    rules = EngineRules.from_scenario(s.venue, s.liquidity, market_o, full_scan=full_scan)
    assert rules.oracle_reads_book
    o = LENDING_ORACLES[oracle]
    noise = (noise_factors(s.exo.shape, np.random.default_rng(9), sources=o["sources"],
                           noise=o["noise"]) if o["noise"] > 0 else None)
    fast = replay(s.exo, s.depth, s.book, rules, initial_events=16, oracle_noise=noise)
    paths, events, accounts = run_rule_naive(
        s, rules.haircut, tier_tables(s.venue), price_rule=["index"] * len(PRICES),
        oracle_rule=rules.oracle_rule, oracle_noise=noise)
    assert len(events) > 10
    assert_same(fast, s.book, paths, events, accounts, PRICES)
    # the oracle changed the outcome (the exact oracle: today's lending engine)
    _, plain_events, _ = run_rule_naive(s, rules.haircut, tier_tables(s.venue))
    assert [(e["path"], e["step"], e["round"], e["account"]) for e in events] != [
        (e["path"], e["step"], e["round"], e["account"]) for e in plain_events]
