"""Random books under funding and margin calls, replayed by the fast engine and the slow
reference: the cases' type and the builders of ``tests/margin/test_behaviour_vs_reference.py``
(and of the circuit breaker's, ``tests/margin/test_breaker_vs_reference.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.book.build import Book
from simulator.config.behaviour import Behaviour
from simulator.config.market import Liquidity
from simulator.config.scenario import Venue
from simulator.margin import EngineRules
from simulator.margin.engine import BookIndex

from .. import reference
from .compare import reference_kwargs, run_reference
from .rule_cases import PRICES, STEP_HOURS, STEPS, market, random_book, random_paths, tier_tables


@dataclass(frozen=True)
class Case:
    """One venue and behaviour configuration replayed by both engines."""

    name: str
    venue: dict[str, Any]
    behaviour: Behaviour = Behaviour()
    impact: str = "linear"
    half_life: float = 0.0
    rng_key: int = 0
    #: mechanisms this case must show in ``test_cases_exercise_every_mechanism``
    shows: tuple[str, ...] = field(default=())



@dataclass
class Setup:
    case: Case
    venue: Venue
    liquidity: Liquidity
    haircut: np.ndarray
    book: Book
    exo: np.ndarray
    depth: np.ndarray


def build(case: Case, seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    venue = Venue(**case.venue)
    haircut = np.array([0.1, 0.2, 0.3])
    book = random_book(rng, tier_tables(venue))
    exo = random_paths(rng, gap_low=0.8)
    depth = np.full((STEPS + 1, len(PRICES)), 4000.0)
    depth[STEPS // 3] *= 0.5
    return Setup(case, venue, Liquidity(impact=case.impact, half_life_steps=case.half_life),
                 haircut, book, exo, depth)


def rules_of(s: Setup, full_scan: bool = False) -> EngineRules:
    return EngineRules.from_scenario(s.venue, s.liquidity, market(s.haircut),
                                     full_scan=full_scan, behaviour=s.case.behaviour,
                                     step_hours=STEP_HOURS)


def reserve_of(s: Setup, rules: EngineRules) -> np.ndarray:
    """The engine's per-unit reserve, checked against reserve_ratio x max(E_u at t = 0, 0)."""
    reserve = BookIndex.build(s.book, rules, s.exo[0, 0]).reserve
    b = s.book
    ref = reference.Book(list(s.haircut), *(t.tolist() for t in tier_tables(s.venue)),
                         b.unit_usd.tolist(), b.unit_coll.tolist(), b.pos_unit.tolist(),
                         b.pos_asset.tolist(), b.pos_qty.tolist(), b.pos_entry.tolist())
    ratio = s.case.behaviour.reserve_ratio
    expected = [ratio * max(ref.equity(u, PRICES.tolist()), 0.0) for u in range(b.n_units)]
    np.testing.assert_allclose(reserve, expected, rtol=1e-12, atol=1e-9)
    return reserve


def run_naive(s: Setup, reserve, **overrides):
    """The reference engine on a setup, with the venue's and the behaviour's parameters."""
    kwargs = reference_kwargs(s.venue, s.liquidity, s.book, tier_tables(s.venue),
                              behaviour=s.case.behaviour, step_hours=STEP_HOURS,
                              reserve=reserve, rng_key=s.case.rng_key)
    kwargs.update(overrides)
    return run_reference(s.exo, s.depth, s.haircut, s.book, **kwargs)
