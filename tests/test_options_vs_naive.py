"""Options in the book: the Numba engine follows the slow reference engine.

``docs/engine.md`` ("Options") values a call or a put at Black-Scholes with the time left
at the step and an implied vol that rises as the mark falls (``spot_vol_beta``) and moves
with ``vol`` shocks; margins short options by Deribit's standard rule or a risk matrix over
each underlying's options and perpetuals; closes options only with the whole unit, after
its perpetuals, at their value with the underlying at the execution price, their taker
hedging ``qty x delta`` coins (the flow); settles options expiring inside the horizon at
their intrinsic value; and socialises a bankrupt option's share of a deficit.

Random books hold option sellers (naked, covered by coins, straddles, put spreads), option
buyers with perpetuals, and plain perpetual accounts, cross and isolated; the paths gap down
and up while a vol shock lifts every implied vol. Each case runs indexed (option units
kept in price x time boxes) and full-scan, on two seeds, and every event field, per-path
record and account PnL is compared with ``tests/naive.py`` (``tests/naive_options.py``).
``test_cases_exercise_every_mechanism`` shows on the reference alone that the option
mechanisms really happen.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from simulator.book.build import Book, assemble_book
from simulator.config.behaviour import Behaviour
from simulator.config.market import Liquidity
from simulator.config.scenario import Venue
from simulator.margin import EngineRules, codes, replay
from simulator.margin.option_setup import next_change

from . import naive
from .compare import (
    Setup,
    assert_same,
    gapped_walks,
    naive_options,
    reference_kwargs,
    run_reference,
)
from .test_engine_rules_vs_naive import PRICES, TIERS, maintenance, market, tier_tables

STEPS = 12
STEP_HOURS = 8.0  # 12 steps = 4 days: options of 1 to 3 days expire inside
N_PATHS = 6
N_ACCOUNTS = 30
HAIRCUT = np.array([0.0, 0.1, 0.2])
#: implied vols rise by 60% for steps 5..8 (a vol shock)
IV_MULT = np.ones((STEPS + 1, len(PRICES)))
IV_MULT[5:9] = 1.6
BETA = np.array([1.2, 0.5, 0.0])


@dataclass(frozen=True)
class Case:
    """One venue, behaviour and path configuration replayed by both engines."""

    name: str
    venue: dict[str, Any]
    behaviour: Behaviour = Behaviour()
    impact: str = "linear"
    gap: tuple[float, float] = (0.75, 1.25)
    rng_key: int = 0
    shows: tuple[str, ...] = field(default=())


_BASE = {"maintenance_margin_rate": 0.02, "target": 1.3, "liquidation_fee_rate": 0.01,
         "max_cascade_rounds": 8, "option_liquidation_fee_rate": 0.003}
_LIQ = ("option_closed", "option_expired", "option_flow")

CASES = [
    Case("standard-full-adl", {**_BASE, "liquidation": "full", "insurance_fund_usd": 0.0,
                               "adl": True},
         shows=(*_LIQ, "option_socialised", "short_option_liquidated")),
    Case("standard-partial-tiers", {**_BASE, "brackets": TIERS, "liquidation": "partial",
                                    "insurance_fund_usd": 200.0, "adl": True},
         shows=(*_LIQ, "perps_first")),
    Case("matrix-full", {**_BASE, "option_margin": "risk_matrix", "liquidation": "full",
                         "insurance_fund_usd": 0.0, "adl": False},
         impact="sqrt", gap=(0.55, 1.6), shows=(*_LIQ, "option_socialised")),
    Case("matrix-incremental-tiers", {**_BASE, "brackets": TIERS, "option_margin": "risk_matrix",
                                      "risk_matrix_range_pct": 0.2,
                                      "liquidation": "incremental", "step_fraction": 0.3,
                                      "full_below_usd": 300.0, "insurance_fund_usd": 0.0,
                                      "adl": True},
         shows=(*_LIQ, "perps_first")),
    Case("standard-backstop", {**_BASE, "liquidation": "partial", "backstop_ratio": 0.6,
                               "insurance_fund_usd": 0.0, "adl": True},
         shows=("option_backstop",)),
    Case("calls-reduce-funding", {**_BASE, "liquidation": "full", "insurance_fund_usd": 50.0,
                                  "funding": "constant", "funding_rate": 0.002,
                                  "funding_interval_hours": 8.0},
         behaviour=Behaviour(margin_call_ratio=1.5, answer_probability=0.7, delay_steps=1,
                             action="reduce", target_ratio=2.0), rng_key=11,
         shows=("option_reduced",)),
    Case("calls-top-up-matrix", {**_BASE, "option_margin": "risk_matrix",
                                 "liquidation": "partial", "insurance_fund_usd": 50.0},
         behaviour=Behaviour(margin_call_ratio=1.4, answer_probability=1.0, delay_steps=2,
                             action="top_up", target_ratio=1.8, reserve_ratio=0.4),
         rng_key=3, shows=("option_top_up",)),
]


def random_book(rng: np.random.Generator, tables) -> Book:
    """A random book: option sellers (55%: a naked put or call, a call covered by coins, a
    short straddle or a put spread, with or without a perpetual hedge), option buyers (15%:
    a long call or put and a perpetual) and perpetual accounts (30%), cross or isolated.
    Strikes within 15% of the price, expiries from 1 to 20 days, implied vols 0.5 to 1.2;
    the margin is 1.3 to 4 times the maintenance at the start."""
    n_assets = len(PRICES)
    isolated = np.zeros(N_ACCOUNTS, dtype=bool)
    usd = np.zeros(N_ACCOUNTS)
    coll = np.zeros((N_ACCOUNTS, n_assets))
    cols: dict[str, list] = {k: [] for k in ("account", "asset", "qty", "entry", "kind",
                                             "expiry", "iv")}

    def add(i, a, qty, entry, kind, expiry=0.0, iv=0.0):
        for key, value in zip(cols, (i, a, qty, entry, kind, expiry, iv), strict=True):
            cols[key].append(value)

    for i in range(N_ACCOUNTS):
        roll = rng.random()
        a = int(rng.integers(n_assets))
        s = float(PRICES[a])
        size = float(rng.lognormal(np.log(1500.0), 0.6)) / s  # coins
        expiry = float(rng.choice([1.0, 2.0, 3.0, 7.0, 20.0])) / 365.0
        iv = float(rng.uniform(0.5, 1.2))
        strike = s * float(rng.uniform(0.85, 1.15))
        isolated[i] = rng.random() < 0.3
        value = 0.0
        if roll < 0.3:  # perpetuals only
            side = 1.0 if rng.random() < 0.5 else -1.0
            add(i, a, side * size, s * float(rng.uniform(0.97, 1.03)), codes.POS_LINEAR)
            need = maintenance(size * s, a, tables)
        elif roll < 0.45:  # a buyer
            kind = codes.POS_CALL if rng.random() < 0.5 else codes.POS_PUT
            side = 1.0 if rng.random() < 0.5 else -1.0
            add(i, a, side * size, s * float(rng.uniform(0.98, 1.02)), codes.POS_LINEAR)
            add(i, a, size, strike, kind, expiry, iv)
            need = maintenance(size * s, a, tables)
        else:  # a seller
            style = rng.choice(["naked", "covered", "straddle", "spread"])
            if rng.random() < 0.3 and style != "covered":
                add(i, a, 0.5 * size * (1 if rng.random() < 0.5 else -1), s, codes.POS_LINEAR)
            if style == "naked":
                add(i, a, -size, strike, codes.POS_PUT if rng.random() < 0.6 else codes.POS_CALL,
                    expiry, iv)
            elif style == "covered":
                add(i, a, -size, strike, codes.POS_CALL, expiry, iv)
                if not isolated[i]:
                    coll[i, a] = size
            elif style == "straddle":
                add(i, a, -size, s, codes.POS_CALL, expiry, iv)
                add(i, a, -size, s, codes.POS_PUT, expiry, iv)
            else:
                add(i, a, -size, strike, codes.POS_PUT, expiry, iv)
                add(i, a, size, strike * 0.9, codes.POS_PUT, expiry, iv)
            need = 0.12 * size * s + maintenance(0.5 * size * s, a, tables)
            value = 0.05 * size * s
        usd[i] = value + need * float(rng.uniform(1.3, 4.0))
    ids = [f"acct-{i}" for i in range(N_ACCOUNTS)]
    order = np.lexsort((np.array(cols["kind"]) >= codes.POS_CALL, cols["account"]))
    arr = {k: np.array(v)[order] for k, v in cols.items()}
    return assemble_book(ids, isolated, usd, coll, arr["account"], arr["asset"], arr["qty"],
                         arr["entry"], pos_kind=arr["kind"], pos_expiry_years=arr["expiry"],
                         pos_iv=arr["iv"])


def random_paths(rng: np.random.Generator, gap: tuple[float, float]) -> np.ndarray:
    """Random walks with 2% steps, a gap drawn from ``gap`` per asset at step 4 (with the
    vol shock) and one of +-12% at step 8."""
    return gapped_walks(rng, PRICES, N_PATHS, STEPS, 0.02, ((4, gap), (8, (0.88, 1.12))))


def build(case: Case, seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    venue = Venue(**case.venue)
    book = random_book(rng, tier_tables(venue))
    exo = random_paths(rng, case.gap)
    depth = np.full((STEPS + 1, len(PRICES)), 5000.0)
    return Setup(case, venue, Liquidity(impact=case.impact), book, exo, depth)


def rules_of(s: Setup, full_scan: bool = False) -> EngineRules:
    mk = market(HAIRCUT)
    mk = type(mk)(mk.model, tuple(type(a)(a.symbol, a.price, a.vol, haircut=a.haircut,
                                          spot_vol_beta=float(b))
                                  for a, b in zip(mk.assets, BETA, strict=True)),
                  mk.correlation)
    return EngineRules.from_scenario(s.venue, s.liquidity, mk, full_scan=full_scan,
                                     behaviour=s.case.behaviour, step_hours=STEP_HOURS,
                                     iv_multiplier=IV_MULT)


def run_naive(s: Setup, rules: EngineRules, reserve):
    kwargs = reference_kwargs(s.venue, s.liquidity, s.book, tier_tables(s.venue),
                              behaviour=s.case.behaviour, step_hours=STEP_HOURS,
                              reserve=reserve, rng_key=s.case.rng_key)
    kwargs["options"] = naive_options(s.book, rules.options, STEPS, PRICES)
    return run_reference(s.exo, s.depth, HAIRCUT, s.book, **kwargs)


def reserve_of(s: Setup, rules: EngineRules) -> list[float]:
    from simulator.margin.engine import BookIndex
    return BookIndex.build(s.book, rules, s.exo[0, 0], STEPS).reserve.tolist()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("full_scan", [False, True], ids=["indexed", "full-scan"])
def test_engine_matches_naive_options(case, seed, full_scan):
    s = build(case, seed)
    assert (s.book.pos_kind >= codes.POS_CALL).sum() > 10
    rules = rules_of(s, full_scan)
    reserve = reserve_of(s, rules)
    fast = replay(s.exo, s.depth, s.book, rules, initial_events=16, rng_key=case.rng_key)
    paths, events, accounts = run_naive(s, rules, reserve)
    assert_same(fast, s.book, paths, events, accounts, PRICES)


@pytest.mark.parametrize("rule", ["standard", "risk_matrix"])
def test_option_units_get_boxes(rule):
    """The indexed runs above are not full scans in disguise: every option unit above its
    maintenance at the start (by the reference engine) starts in a box (static thresholds
    and a due step), not in the list checked at every round."""
    case = Case("boxes", {**_BASE, "option_margin": rule})
    s = build(case, 1)
    from simulator.margin.engine import BookIndex
    rules = rules_of(s)
    index = BookIndex.build(s.book, rules, PRICES, STEPS)
    ref = naive._Book(HAIRCUT.tolist(), *(t.tolist() for t in tier_tables(s.venue)),
                      s.book.unit_usd.tolist(), s.book.unit_coll.tolist(),
                      s.book.pos_unit.tolist(), s.book.pos_asset.tolist(),
                      s.book.pos_qty.tolist(), s.book.pos_entry.tolist(),
                      s.book.pos_kind.tolist(), naive_options(s.book, rules.options, STEPS,
                                                              PRICES))
    safe = [u for u in index.options.opt_units
            if ref.equity(u, PRICES.tolist()) > 1.001 * ref.maintenance(u, PRICES.tolist())]
    assert len(safe) > 8
    n_assets = len(PRICES)
    boxed = set(index.s_unit[index.s_start[0]:index.s_start[2 * n_assets]].tolist())
    timed = set(index.s_unit[index.s_start[2 * n_assets]:].tolist())
    assert set(safe) <= boxed
    # the vol shock at step 5 hurts a unit short an option: its window ends before the
    # shock unless its box holds across it (the bounds take the multiplier's range)
    book = s.book
    short = {int(book.pos_unit[p]) for p in np.flatnonzero((book.pos_kind >= codes.POS_CALL)
                                                            & (book.pos_qty < 0))}
    assert set(safe) & short & timed
    assert not set(safe) & set(index.init_pending.tolist())
    # a box without a due step is safe at every step: the reference engine finds every
    # point of a grid over the box (corners included) above maintenance at every step
    spanning = sorted((set(safe) & short) - timed)
    assert spanning  # the case has boxes across the shock (10 standard, 1 risk matrix)
    for u in spanning:
        lo = PRICES * 0.0
        hi = PRICES * np.inf
        for a in range(n_assets):
            for d, bound in ((0, lo), (1, hi)):
                h = 2 * a + d
                keys = index.s_key[index.s_start[h]:index.s_start[h + 1]]
                rows = index.s_unit[index.s_start[h]:index.s_start[h + 1]] == u
                if rows.any():
                    bound[a] = keys[rows][0] if d == 0 else -keys[rows][0]
        grid = [np.linspace(max(lo[a], 1e-9 * PRICES[a]),
                            hi[a] if np.isfinite(hi[a]) else 3.0 * PRICES[a], 5)
                for a in range(n_assets)]
        for t in range(STEPS + 1):
            ref.t = t
            for marks in itertools.product(*grid):
                assert ref.equity(u, marks) > ref.maintenance(u, marks), (u, t, marks)


def test_next_change():
    ivmult = np.array([[1.0, 1.0], [1.0, 2.0], [3.0, 2.0], [3.0, 1.0]])
    np.testing.assert_array_equal(next_change(ivmult), [[2, 1], [2, 3], [4, 3], [4, 4]])
    rng = np.random.default_rng(1)
    for _ in range(100):  # against a plain search on random multiplier tables
        m = rng.choice([1.0, 2.0, 3.0], size=(int(rng.integers(1, 30)), 2), p=[.7, .2, .1])
        n = len(m)
        want = [[next((s for s in range(t + 1, n) if m[s, a] != m[t, a]), n)
                 for a in range(2)] for t in range(n)]
        np.testing.assert_array_equal(next_change(m), want)


# ---------------------------------------------------------------------------------------
# The cases are not vacuous (reference engine only)
# ---------------------------------------------------------------------------------------


def _record(monkeypatch) -> set[str]:
    """Wrap the reference engine and name the option mechanisms that happen."""
    seen: set[str] = set()
    run_cls, book_cls = naive._PathRun, naive._Book
    orig_settle = run_cls.settle_options
    orig_event = run_cls.event
    orig_fraction = run_cls.fraction
    orig_delta = naive.NaiveOptions.delta

    def settle_options(self, t):
        before = [q for q in self.book.qty]
        orig_settle(self, t)
        if any(b != 0.0 and a == 0.0 for a, b in zip(self.book.qty, before, strict=True)):
            seen.add("option_expired")

    def event(self, t, r, u, kind, instrument, *args, **kwargs):
        if instrument in ("call", "put"):
            seen.add({"liquidation": "option_closed", "socialised": "option_socialised",
                      "backstop": "option_backstop", "reduce": "option_reduced"}.get(kind, kind))
            if kind == "liquidation" and args[1] > 0:  # bought back: it was short
                seen.add("short_option_liquidated")
        if kind == "top_up" and any(self.book.is_option(p) for p in self.book.unit_positions[u]):
            seen.add("option_top_up")
        return orig_event(self, t, r, u, kind, instrument, *args, **kwargs)

    def fraction(self, u):
        backstop, f = orig_fraction(self, u)
        if 0.0 < f < 1.0 and any(self.book.is_option(p) for p in self.book.open_positions(u)):
            seen.add("perps_first")
        return backstop, f

    def delta(self, *args):
        seen.add("option_flow")
        return orig_delta(self, *args)

    monkeypatch.setattr(run_cls, "settle_options", settle_options)
    monkeypatch.setattr(run_cls, "event", event)
    monkeypatch.setattr(run_cls, "fraction", fraction)
    monkeypatch.setattr(naive.NaiveOptions, "delta", delta)
    assert book_cls is not None
    return seen


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cases_exercise_every_mechanism(case, monkeypatch):
    seen = _record(monkeypatch)
    for seed in (1, 2):
        s = build(case, seed)
        rules = rules_of(s)
        run_naive(s, rules, reserve_of(s, rules))
    missing = set(case.shows) - seen
    assert not missing, (missing, seen)


def _index_book_and_reference(s, rules):
    """The engine's index of a built case, its book, and the reference engine's book."""
    from simulator.margin.engine import BookIndex

    index = BookIndex.build(s.book, rules, PRICES, STEPS)
    book = s.book
    ref = naive._Book(HAIRCUT.tolist(), *(t.tolist() for t in tier_tables(s.venue)),
                      book.unit_usd.tolist(), book.unit_coll.tolist(), book.pos_unit.tolist(),
                      book.pos_asset.tolist(), book.pos_qty.tolist(), book.pos_entry.tolist(),
                      book.pos_kind.tolist(), naive_options(book, rules.options, STEPS, PRICES))
    return index, book, ref


@pytest.mark.parametrize("zero_beta", [False, True])
def test_box_steering_matches_the_slack(zero_beta):
    """The analytic slope that steers a box (standard rule) equals a central difference
    of the reference engine's option slack, the implied vol's own slope included; the
    curvature is the gamma term alone, equal to the central difference when the vol
    does not move with the spot."""
    import dataclasses

    from simulator.margin._kernels import option_boxes as box
    case = Case("boxes", {**_BASE, "option_margin": "standard"})
    s = build(case, 1)
    rules = rules_of(s)
    if zero_beta:
        rules = dataclasses.replace(rules, options=dataclasses.replace(
            rules.options, spot_vol_beta=np.zeros(len(PRICES))))
    index, book, ref = _index_book_and_reference(s, rules)
    marks = np.ascontiguousarray(PRICES, dtype=float)
    work = np.zeros((box.N_WORK, len(marks)))
    checked = 0
    for u in index.options.opt_units:
        box.option_steer_nb(u, marks, 0, 1.0, 0.0, book.pos_qty, book.pos_asset,
                            book.pos_entry, book.pos_kind, book.unit_pos_start, rules.tiers,
                            index.options.oc, work)
        for a in range(len(marks)):
            if not any(book.pos_asset[p] == a and book.pos_kind[p] >= codes.POS_CALL
                       for p in range(book.unit_pos_start[u], book.unit_pos_start[u + 1])):
                continue

            def option_slack(x: float, a: int = a, u: int = u) -> float:
                m = list(marks)
                m[a] *= 1.0 + x
                value = sum(ref.position_value(p, m) for p in ref.open_positions(u)
                            if ref.is_option(p))
                return value - ref.option_maintenance(u, m)

            h = 1e-4
            s_up, s_0, s_down = option_slack(h), option_slack(0.0), option_slack(-h)
            slope = (s_up - s_down) / (2 * h)
            curv = (s_up + s_down - 2 * s_0) / h**2
            scale = abs(s_0) + abs(slope) + 1.0
            assert work[0, a] == pytest.approx(slope, rel=1e-4, abs=1e-6 * scale)
            if zero_beta:
                assert work[1, a] == pytest.approx(curv, rel=0.01, abs=1e-3 * scale)
            checked += 1
    assert checked > 10


def boxes_after_checks(s, rules, index, seed: int, n_draws: int, sd: float):
    """Yield ``(u, marks, t, t1, lo, hi)`` for every box that ``option_box_nb`` finds, as
    the engine calls it after an exact check, for the option units of the case ``s`` at
    ``n_draws`` random marks (log-normal around the prices, ``sd``) and steps."""
    from simulator.margin._kernels import option_boxes as box
    from simulator.margin._kernels import options as opt
    from simulator.margin._kernels.state import refresh_unit_nb
    book, oc = s.book, index.options.oc
    n_assets = len(PRICES)
    work = np.zeros((box.N_WORK, n_assets))
    lin, const = index.lin.copy(), index.const.copy()
    n_open = index.n_open.copy()
    mmk = np.ones(book.n_units)
    rng = np.random.default_rng(seed)
    for _ in range(n_draws):
        marks = np.ascontiguousarray(PRICES * np.exp(rng.normal(0.0, sd, n_assets)))
        t = int(rng.integers(0, STEPS + 1))
        for u in index.options.opt_units:
            refresh_unit_nb(u, marks, book.unit_usd, book.unit_coll, book.pos_qty,
                            book.pos_asset, book.pos_entry, book.pos_kind, book.unit_pos_start,
                            rules.haircut, rules.tiers, mmk, lin, const, n_open)
            slack = const[u] + lin[u] @ marks + opt.option_slack_nb(
                u, marks, t, 1.0, book.pos_qty, book.pos_asset, book.pos_entry, book.pos_kind,
                book.unit_pos_start, rules.tiers, oc)
            if not slack > 0.0:
                continue
            lo, hi = np.empty(n_assets), np.empty(n_assets)
            t1 = box.option_box_nb(u, marks, t, STEPS, slack, lin, const, rules.sigma, 1.0,
                                   book.pos_qty, book.pos_asset, book.pos_kind, book.pos_entry,
                                   book.unit_pos_start, rules.tiers, oc, lo, hi, work, False,
                                   False, box.GROW_TRIES)
            if t1 >= 0:
                yield u, marks, t, t1, lo, hi


@pytest.mark.parametrize("rule", ["standard", "risk_matrix"])
def test_boxes_after_a_check_are_safe(rule):
    """``option_box_nb`` as the engine calls it after an exact check, at random marks and
    steps away from the start: the reference engine finds every point of a grid over the
    box (corners, and the mark, where the standard rule's bound splits the box) above
    maintenance at the first, a middle and the last step of the box's window."""
    case = Case("boxes", {**_BASE, "option_margin": rule})
    s = build(case, 1)
    rules = rules_of(s)
    index, book, ref = _index_book_and_reference(s, rules)
    n_assets = len(PRICES)
    n_boxes = 0
    for u, marks, t, t1, lo, hi in boxes_after_checks(s, rules, index, 5, 6, 0.08):
        n_boxes += 1
        grid = [sorted({max(lo[a], 1e-9 * marks[a]), marks[a],
                        hi[a] if np.isfinite(hi[a]) else 3.0 * marks[a]})
                for a in range(n_assets)]
        for step in sorted({t, (t + t1) // 2, t1}):
            ref.t = step
            for m in itertools.product(*grid):
                assert ref.equity(u, list(m)) > ref.maintenance(u, list(m)), (u, step, m)
    assert n_boxes > 20
