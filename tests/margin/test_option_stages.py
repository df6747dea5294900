"""The option boxes that are the same on every path (``simulator/margin/option_boxes.py``)
and standard-rule boxes that cross brackets (``_bracket_excess_nb``).

``docs/engine.md`` ("Option boxes that are the same on every path"): the index finds, once
per run, each option unit's box for the first step and for every later step at which a
gap or a change of an implied-vol multiplier is scheduled, around the initial prices moved
by the gaps up to it, with the unit's state at the start of the path. The replay gives an
unchanged unit its stage's box instead of an exact check. Here:

- the stages are the scheduled steps, computed by hand;
- every stage box is safe: the reference engine (``tests/reference``) finds every point of
  a grid over it (ends, centre and the bracket caps inside) above maintenance (times the
  margin-call ratio while armed) at the first, a middle and the last step of its window;
- the replay with stages gives the reference engine's results on the option cases, with
  funding and margin calls among them (units whose state changed must not use them);
- the stages are really used: boxes deliberately made too wide change the results;
- standard-rule boxes found after a check that reach across a bracket cap are safe.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from simulator.margin import codes, replay
from simulator.margin.index import BookIndex
from simulator.margin.option_boxes import build_option_boxes, stage_prices, stage_steps
from simulator.margin.slack_form import slack_form

from ..support.compare import assert_same
from ..support.option_cases import (
    BASE,
    CASES,
    PRICES,
    STEPS,
    TIERS,
    Case,
    boxes_after_checks,
    build,
    index_book_and_reference,
    reserve_of,
    rules_of,
    run_naive,
)
from ..support.rule_cases import tier_tables

#: the gaps of ``random_paths`` (steps 5 and 9 of the paths), at the middle of their
#: ranges for the standard cases' 0.75..1.25 and the +-12% one
GAP_LOG = np.zeros((STEPS, len(PRICES)))
GAP_LOG[4] = np.log(0.9)
GAP_LOG[8] = np.log(1.05)


def test_stage_steps_are_the_scheduled_changes():
    ivmult = np.ones((11, 2))
    ivmult[3:6, 1] = 2.0  # a vol shock on asset 1 over steps 3..5: changes at 3 and 6
    ivmult[1:, 0] *= 1.5  # one starting at step 1: the first stage, not a later one
    gap_log = np.zeros((10, 2))
    gap_log[0, 0] = np.log(0.9)  # a gap at step 1: the first stage too
    gap_log[7, 1] = np.log(1.1)  # at step 8
    assert stage_steps(ivmult, gap_log, 10).tolist() == [3, 6, 8]
    assert stage_steps(ivmult, None, 10).tolist() == [3, 6]
    assert stage_steps(np.ones((11, 2)), np.zeros((10, 2)), 10).tolist() == []
    s0 = np.array([100.0, 20.0])
    np.testing.assert_allclose(stage_prices(s0, gap_log, 1), [90.0, 20.0], rtol=1e-15)
    np.testing.assert_allclose(stage_prices(s0, gap_log, 8), [90.0, 22.0], rtol=1e-15)
    np.testing.assert_array_equal(stage_prices(s0, None, 8), s0)


def _caps_inside(book, tables, u, a, lo, hi):
    """Marks of asset ``a`` strictly inside ``(lo, hi)`` at which one of unit ``u``'s
    perpetuals reaches a bracket cap (where its maintenance bends)."""
    cap = tables[0]
    out = []
    for p in range(book.unit_pos_start[u], book.unit_pos_start[u + 1]):
        q = abs(book.pos_qty[p])
        if book.pos_asset[p] != a or book.pos_kind[p] != codes.POS_LINEAR or q == 0.0:
            continue
        out += [c / q for c in cap[a] if np.isfinite(c) and lo < c / q < hi]
    return out


def _grid(book, tables, u, lo, hi, centre, reach=3.0):
    """Per asset: the box's ends (an open end at ``reach`` x the centre), its centre and
    the bracket caps inside."""
    out = []
    for a in range(len(lo)):
        low = max(lo[a], 1e-9 * centre[a])
        high = hi[a] if np.isfinite(hi[a]) else reach * centre[a]
        pts = {low, high, *np.linspace(low, high, 3).tolist()}
        if low <= centre[a] <= high:
            pts.add(float(centre[a]))
        pts.update(_caps_inside(book, tables, u, a, low, high))
        out.append(sorted(pts))
    return out


def _crosses_bracket(book, tables, u, lo, hi, centre) -> bool:
    return any(_caps_inside(book, tables, u, a, lo[a], hi[a]) for a in range(len(lo))
               if np.isfinite(hi[a]) and lo[a] > 0)


STAGE_CASES = [
    Case("standard-tiers", {**BASE, "brackets": TIERS}),
    Case("matrix-tiers", {**BASE, "brackets": TIERS, "option_margin": "risk_matrix"}),
    next(c for c in CASES if c.name == "calls-reduce-funding"),
]


@pytest.mark.parametrize("case", STAGE_CASES, ids=[c.name for c in STAGE_CASES])
def test_stage_boxes_are_safe(case):
    """Every box of every stage (the first step's included) holds on a grid over the box
    and its window, for the state at the start of the path."""
    s = build(case, 1)
    rules = rules_of(s)
    index, book, ref = index_book_and_reference(s, rules)
    tables = tier_tables(s.venue)
    units = index.options.opt_units
    form0 = slack_form(book, rules, PRICES, index.mmk0)
    boxes = build_option_boxes(book, rules, index.options.oc, units, PRICES, STEPS,
                               index.mmk0, form0, GAP_LOG)
    starts = [1, *boxes.stage_step.tolist()]
    assert starts == [1, 5, 9]  # the gaps at 5 and 9 and the vol shock over 5..8
    stages = [(boxes.lo, boxes.hi, boxes.due)] + [
        (boxes.stage_lo[k], boxes.stage_hi[k], boxes.stage_due[k])
        for k in range(len(boxes.stage_step))]
    n_boxes = n_off_centre = n_crossing = 0
    for start, (lo_k, hi_k, due_k) in zip(starts, stages, strict=True):
        centre = stage_prices(PRICES, GAP_LOG, start)
        for j, u in enumerate(units):
            if due_k[j] < 0:
                continue
            n_boxes += 1
            lo, hi = lo_k[j], hi_k[j]
            if any(not lo[a] <= PRICES[a] <= hi[a] for a in range(len(PRICES))):
                n_off_centre += 1  # a box around gapped prices, not the initial ones
            n_crossing += _crosses_bracket(book, tables, u, lo, hi, centre)
            t1 = min(int(due_k[j]) - 1, STEPS)
            grid = _grid(book, tables, u, lo, hi, centre)
            ratio = float(index.mmk0[u])
            for step in sorted({start, (start + t1) // 2, t1}):
                ref.t = step
                for m in itertools.product(*grid):
                    marks = list(m)
                    assert ref.equity(u, marks) > ratio * ref.maintenance(u, marks), (
                        u, start, step, marks)
    assert n_boxes > 30
    assert n_off_centre > 0
    if case.venue.get("brackets") and case.venue.get("option_margin") != "risk_matrix":
        assert n_crossing > 0  # standard-rule boxes that reach across a bracket cap


@pytest.mark.parametrize("case", [c for c in CASES if c.name in (
    "standard-full-adl", "standard-partial-tiers", "matrix-incremental-tiers",
    "calls-reduce-funding", "standard-backstop")], ids=lambda c: c.name)
def test_engine_with_stages_matches_naive(case):
    """The indexed replay with the stages of the paths' gaps gives the reference
    engine's events, per-path records and account PnL."""
    for seed in (1, 2):
        s = build(case, seed)
        rules = rules_of(s)
        index = BookIndex.build(s.book, rules, PRICES, STEPS, GAP_LOG)
        assert len(index.boxes.stage_step) >= 2
        fast = replay(s.exo, s.depth, s.book, rules, initial_events=16, index=index,
                      rng_key=case.rng_key)
        paths, events, accounts = run_naive(s, rules, reserve_of(s, rules))
        assert_same(fast, s.book, paths, events, accounts, PRICES)


def test_the_replay_uses_the_stage_boxes():
    """Stage boxes that claim every unit safe everywhere until the end (wrong on purpose)
    change the results: the replay does give units their stage boxes instead of checks."""
    case = next(c for c in CASES if c.name == "standard-full-adl")
    s = build(case, 1)
    rules = rules_of(s)
    index = BookIndex.build(s.book, rules, PRICES, STEPS, GAP_LOG)
    honest = replay(s.exo, s.depth, s.book, rules, index=index)
    stages = index.boxes
    wrong = dataclasses.replace(index, boxes=dataclasses.replace(
        stages, stage_lo=np.zeros_like(stages.stage_lo),
        stage_hi=np.full_like(stages.stage_hi, np.inf),
        stage_due=np.full_like(stages.stage_due, STEPS + 1)))
    fooled = replay(s.exo, s.depth, s.book, rules, index=wrong)
    n_liq = codes.PI_N_LIQUIDATIONS
    assert fooled.path_i[:, n_liq].sum() < honest.path_i[:, n_liq].sum()


def test_standard_boxes_across_brackets_are_safe():
    """``option_box_nb`` as the engine calls it after an exact check, with brackets: the
    boxes on an asset with options are not cut at the caps, and the reference engine finds
    every point of a grid over them, the caps inside included, above maintenance."""
    case = Case("tiers", {**BASE, "brackets": TIERS})
    s = build(case, 2)
    rules = rules_of(s)
    index, book, ref = index_book_and_reference(s, rules)
    tables = tier_tables(s.venue)
    n_boxes = n_crossing = 0
    for u, marks, t, t1, lo, hi in boxes_after_checks(s, rules, index, 8, 8, 0.1):
        n_boxes += 1
        n_crossing += _crosses_bracket(book, tables, u, lo, hi, marks)
        grid = _grid(book, tables, u, lo, hi, marks)
        for step in sorted({t, (t + t1) // 2, t1}):
            ref.t = step
            for m in itertools.product(*grid):
                assert ref.equity(u, list(m)) > ref.maintenance(u, list(m)), (u, step, m)
    assert n_boxes > 20
    assert n_crossing > 3
