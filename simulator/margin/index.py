"""The book's liquidation index: its slack and NAV forms at the initial prices and the
thresholds at which each unit must be checked again (``docs/engine.md``, "Index"), the
same on every path; built once per run and handed to the replay kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from simulator.book.build import Book
from simulator.margin import codes
from simulator.margin._kernels.index import BRACKET_MARGIN, MIN_BAND_WEIGHT, SLACK_MARGIN
from simulator.margin.option_boxes import OptionBoxes, build_option_boxes
from simulator.margin.option_setup import OptionData, option_context
from simulator.margin.slack_form import position_notional, slack_form, unit_nav_coefficients

if TYPE_CHECKING:  # (engine imports this module)
    from simulator.margin.rules import EngineRules


@dataclass(frozen=True)
class BookIndex:
    """The book's initial slack form, NAV form and liquidation index (same on every path).

    Attributes
    ----------
    lin, const, n_open : ndarray
        ``E - MM = const + lin @ M`` per unit, and its number of open positions.
    navk, navc : ndarray
        ``NAV = navc + navk @ M`` per unit (no haircut).
    s_key, s_unit, s_start : ndarray
        Initial band thresholds per heap ``2 a + d`` (d = 0 down, 1 up), descending keys.
    init_pending : ndarray
        Units without a band at the initial prices (checked exactly at the first round).
    mmk0 : ndarray
        Maintenance multiplier of each unit's slack form: the margin-call ratio (armed) or 1.
    reserve : ndarray
        USD each unit may deposit when it answers a margin call.
    options : OptionData
        The options' data for the kernels (:func:`option_setup.option_context`).
    steps : int
        Steps of the paths this index was built for.
    boxes : OptionBoxes
        The option units' boxes that are the same on every path, for the first step and
        the later stages (rows follow ``options.opt_units``); empty without options.
    """

    lin: np.ndarray
    const: np.ndarray
    n_open: np.ndarray
    navk: np.ndarray
    navc: np.ndarray
    s_key: np.ndarray
    s_unit: np.ndarray
    s_start: np.ndarray
    init_pending: np.ndarray
    mmk0: np.ndarray
    reserve: np.ndarray
    options: OptionData | None = None
    steps: int = -1
    boxes: OptionBoxes = field(default_factory=OptionBoxes.none)

    @classmethod
    def build(cls, book: Book, rules: EngineRules, s0: np.ndarray,
              steps: int | None = None, gap_log: np.ndarray | None = None) -> BookIndex:
        """Index ``book`` at the initial prices ``s0`` for paths of ``steps`` steps (needed
        when the book holds options: their boxes span windows of steps).

        ``gap_log`` (shape (steps, A)): the log gaps of the scheduled shocks per step
        (``PathInputs.gap_log``); the option units' boxes at the first step and at later
        shocks are centred on the prices they move to (:mod:`.option_boxes`). Without
        them the boxes are centred on ``s0``; the replay's results are the same either
        way, only the number of exact checks differs.
        """
        n_units, n_assets = book.n_units, len(s0)
        if steps is None:
            if book.has_options:
                raise ValueError("indexing a book with options needs the number of steps")
            steps = 0
        opt_data = option_context(book, rules.options, steps, s0)
        oc = opt_data.oc
        pos_unit = book.pos_unit
        open_ = book.pos_qty != 0.0
        mmk0 = np.full(n_units, rules.call_ratio if rules.call_ratio > 0 else 1.0)
        form = slack_form(book, rules, s0, mmk0)
        lin, const, k, rate, cum, cost = form
        coll = book.unit_coll
        n_open = (np.bincount(pos_unit, open_, minlength=n_units) + (book.unit_usd < 0)
                  + (coll < 0).sum(axis=1)).astype(np.int64)
        navk = unit_nav_coefficients(book)
        value0 = np.bincount(pos_unit, book.option_values(s0), minlength=n_units)
        navc = book.unit_usd - np.bincount(pos_unit, cost, minlength=n_units) + value0
        lo, hi = _bracket_intervals(book, rules.tiers, s0, k, open_)
        equity0 = const + lin @ s0 + np.bincount(pos_unit, rate * position_notional(book, s0)
                                                 - cum, minlength=n_units) + value0
        reserve = rules.reserve_ratio * np.maximum(equity0, 0.0)

        slack = const + lin @ s0
        scale = np.abs(const) + np.abs(lin) @ s0
        slack_eff = slack - SLACK_MARGIN * scale
        weight = (np.abs(lin) * rules.sigma * s0).sum(axis=1)
        unit_opt = oc[codes.OC_UNIT_OPT]
        live = (n_open > 0) & ~unit_opt
        # as push_band_nb: no band where the split weight of an exposed unit is too small
        splittable = (weight >= MIN_BAND_WEIGHT) | ~(lin != 0.0).any(axis=1)
        banded = live & (slack_eff > 0.0) & splittable
        init_pending = np.flatnonzero(live & ~banded).astype(np.int64)
        box_units = opt_data.opt_units
        boxes = (build_option_boxes(book, rules, oc, box_units, s0, steps, mmk0, form, gap_log)
                 if len(box_units) else OptionBoxes.none(n_assets))
        box_lo, box_hi, box_due = boxes.lo, boxes.hi, boxes.due
        init_pending = np.sort(np.concatenate([init_pending,
                                               box_units[box_due < 0]])).astype(np.int64)
        boxed = box_due >= 0
        safe_weight = np.where(weight > 0.0, weight, 1.0)  # 0: no exposure, no band needed
        keys, units, starts = [], [], [0]
        for a in range(n_assets):
            band = slack_eff * rules.sigma[a] * s0[a] / safe_weight
            down = np.where(lin[:, a] > 0, s0[a] - band, -np.inf)
            down = np.where(lo[:, a] > 0, np.maximum(down, lo[:, a] * (1.0 + BRACKET_MARGIN)),
                            down)
            up = np.where(lin[:, a] < 0, s0[a] + band, np.inf)
            up = np.where(np.isfinite(hi[:, a]),
                          np.minimum(up, hi[:, a] * (1.0 - BRACKET_MARGIN)), up)
            for d, threshold in ((0, down), (1, up)):
                rows = np.flatnonzero(banded & np.isfinite(threshold))
                key = threshold[rows] if d == 0 else -threshold[rows]
                edge = boxed & ((box_lo[:, a] > 0.0) if d == 0 else np.isfinite(box_hi[:, a]))
                box_key = box_lo[edge, a] if d == 0 else -box_hi[edge, a]
                rows = np.concatenate([rows, box_units[edge]])
                key = np.concatenate([key, box_key])
                order = np.argsort(-key, kind="stable")
                keys.append(key[order])
                units.append(rows[order])
                starts.append(starts[-1] + len(rows))
        timed = boxed & (box_due <= steps)
        key = 0.5 - box_due[timed]
        order = np.argsort(-key, kind="stable")
        keys.append(key[order].astype(float))
        units.append(box_units[timed][order])
        starts.append(starts[-1] + int(timed.sum()))
        return cls(lin=np.ascontiguousarray(lin), const=const, n_open=n_open,
                   navk=np.ascontiguousarray(navk), navc=navc,
                   s_key=np.concatenate(keys), s_unit=np.concatenate(units).astype(np.int64),
                   s_start=np.array(starts, dtype=np.int64), init_pending=init_pending,
                   mmk0=mmk0, reserve=reserve, options=opt_data, steps=steps, boxes=boxes)


def _bracket_intervals(book: Book, tiers: np.ndarray, s0: np.ndarray, k: np.ndarray,
                       open_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per unit and asset, the marks between which no position changes bracket."""
    lo = np.zeros((book.n_units, len(s0)))
    hi = np.full((book.n_units, len(s0)), np.inf)
    size = np.abs(book.pos_qty)
    rows = (open_ & (tiers[book.pos_asset, 0, codes.TIER_CAP] < np.inf)
            & (book.pos_kind == codes.POS_LINEAR))  # an inverse notional does not move
    if rows.any():
        a, kk, q, u = book.pos_asset[rows], k[rows], size[rows], book.pos_unit[rows]
        below = np.where(kk > 0, tiers[a, np.maximum(kk - 1, 0), codes.TIER_CAP] / q, 0.0)
        above = tiers[a, kk, codes.TIER_CAP] / q
        np.maximum.at(lo, (u, a), below)
        np.minimum.at(hi, (u, a), above)
    return lo, hi
