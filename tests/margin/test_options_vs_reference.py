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
record and account PnL is compared with ``tests/reference`` (``tests/reference/options.py``).
``test_cases_exercise_every_mechanism`` shows on the reference alone that the option
mechanisms really happen.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from simulator.margin import codes, replay
from simulator.margin.option_setup import next_change

from .. import reference
from ..support.compare import (
    assert_same,
    naive_options,
)
from ..support.option_cases import (
    BASE,
    CASES,
    HAIRCUT,
    STEPS,
    Case,
    boxes_after_checks,
    build,
    index_book_and_reference,
    reserve_of,
    rules_of,
    run_naive,
)
from ..support.rule_cases import PRICES, tier_tables


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
    case = Case("boxes", {**BASE, "option_margin": rule})
    s = build(case, 1)
    from simulator.margin.engine import BookIndex
    rules = rules_of(s)
    index = BookIndex.build(s.book, rules, PRICES, STEPS)
    ref = reference.Book(HAIRCUT.tolist(), *(t.tolist() for t in tier_tables(s.venue)),
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
    run_cls, book_cls = reference.PathRun, reference.Book
    orig_settle = run_cls.settle_options
    orig_event = run_cls.event
    orig_fraction = run_cls.fraction
    orig_delta = reference.NaiveOptions.delta

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
    monkeypatch.setattr(reference.NaiveOptions, "delta", delta)
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


@pytest.mark.parametrize("zero_beta", [False, True])
def test_box_steering_matches_the_slack(zero_beta):
    """The analytic slope that steers a box (standard rule) equals a central difference
    of the reference engine's option slack, the implied vol's own slope included; the
    curvature is the gamma term alone, equal to the central difference when the vol
    does not move with the spot."""
    import dataclasses

    from simulator.margin._kernels import option_boxes as box
    case = Case("boxes", {**BASE, "option_margin": "standard"})
    s = build(case, 1)
    rules = rules_of(s)
    if zero_beta:
        rules = dataclasses.replace(rules, options=dataclasses.replace(
            rules.options, spot_vol_beta=np.zeros(len(PRICES))))
    index, book, ref = index_book_and_reference(s, rules)
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


@pytest.mark.parametrize("rule", ["standard", "risk_matrix"])
def test_boxes_after_a_check_are_safe(rule):
    """``option_box_nb`` as the engine calls it after an exact check, at random marks and
    steps away from the start: the reference engine finds every point of a grid over the
    box (corners, and the mark, where the standard rule's bound splits the box) above
    maintenance at the first, a middle and the last step of the box's window."""
    case = Case("boxes", {**BASE, "option_margin": rule})
    s = build(case, 1)
    rules = rules_of(s)
    index, book, ref = index_book_and_reference(s, rules)
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
