"""Boxes of the option units that are the same on every path (``docs/engine.md``,
"Option boxes"): one for the first step, and one for each later step at which a
scheduled shock moves the option units' slack.

An option unit's box (:mod:`._option_box_kernels`) is a price interval per asset and a
window of steps over which a rigorous bound keeps its slack positive. Boxes found on a
path cost an exact check and a bound each; these are found once per index. A scheduled
``gap`` or a change of an implied-vol multiplier (a ``vol`` shock starting or ending)
is the same on every path, and every short option unit's window ends before a harmful
one, so without them each such unit would be checked on every path at the shock. A
*stage* starts at the first step and at each such step ``tau``; its box is found with
the unit's state at the start of the path, around the initial prices moved by the gaps
up to ``tau``, over steps ``tau..t1``. The replay gives a unit its stage box instead of
checking it when the unit comes up for a check at a step of the stage, inside the box
and its window, with its state unchanged since the start of the path (no liquidation,
funding, margin call, expiry or deposit): the box's bound holds for that state wherever
the paths went before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simulator.book.build import Book
from simulator.margin import codes
from simulator.margin._kernels.stages import static_boxes_nb
from simulator.margin.slack_form import SlackForm, slack_form

if TYPE_CHECKING:  # (engine imports this module)
    from simulator.margin.rules import EngineRules

#: at most this many stages after the first (the earliest are kept)
MAX_STAGES = 32
#: and at most this many stage box cells (stages x option units x assets)
MAX_STAGE_CELLS = 1 << 22


@dataclass(frozen=True)
class OptionBoxes:
    """The boxes of the option units ``units`` at the first step and at later stages.

    Attributes
    ----------
    lo, hi : ndarray, shape (n, A)
        First-step box of each unit (``lo = 0`` / ``hi = inf``: no threshold there).
    due : ndarray of int64, shape (n,)
        Step after its window (``steps + 1``: none; ``-1``: no box, checked at once).
    stage_step : ndarray of int64, shape (K,)
        Steps at which the later stages start, increasing, all ``>= 2``.
    stage_lo, stage_hi : ndarray, shape (K, n, A)
    stage_due : ndarray of int64, shape (K, n)
        Each stage's boxes, as ``lo, hi, due`` (``due = -1``: none).
    """

    lo: np.ndarray
    hi: np.ndarray
    due: np.ndarray
    stage_step: np.ndarray
    stage_lo: np.ndarray
    stage_hi: np.ndarray
    stage_due: np.ndarray

    @classmethod
    def none(cls, n_assets: int = 0) -> OptionBoxes:
        """No option units: empty arrays of the shapes the replay kernel takes."""
        return cls(lo=np.zeros((0, n_assets)), hi=np.zeros((0, n_assets)),
                   due=np.zeros(0, dtype=np.int64), stage_step=np.zeros(0, dtype=np.int64),
                   stage_lo=np.zeros((0, 0, n_assets)), stage_hi=np.zeros((0, 0, n_assets)),
                   stage_due=np.zeros((0, 0), dtype=np.int64))


def stage_steps(ivmult: np.ndarray, gap_log: np.ndarray | None, steps: int) -> np.ndarray:
    """Steps ``2..steps`` at which a scheduled shock moves an option unit's slack at given
    marks: a gap (``gap_log[t - 1] != 0``, shape (steps, A)) or a change of an
    implied-vol multiplier (``ivmult``, shape (steps + 1, A))."""
    changed = np.zeros(steps + 1, dtype=bool)
    if steps >= 2:
        changed[2:] = (ivmult[2:] != ivmult[1:-1]).any(axis=1)
        if gap_log is not None:
            changed[2:] |= (gap_log[1:] != 0.0).any(axis=1)
    return np.flatnonzero(changed).astype(np.int64)


def stage_prices(s0: np.ndarray, gap_log: np.ndarray | None, step: int) -> np.ndarray:
    """The initial prices moved by the gaps of steps ``1..step``."""
    if gap_log is None or step < 1:
        return np.asarray(s0, dtype=float)
    return s0 * np.exp(gap_log[:step].sum(axis=0))


def _boxes_at(book: Book, rules: EngineRules, oc: tuple, units: np.ndarray,
              prices: np.ndarray, t0: int, steps: int, mmk0: np.ndarray, form: SlackForm
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes of ``units`` around ``prices`` from step ``t0``, state as at the start."""
    n_assets = len(prices)
    lo = np.empty((len(units), n_assets))
    hi = np.empty((len(units), n_assets))
    due = np.empty(len(units), dtype=np.int64)
    static_boxes_nb(units, np.ascontiguousarray(prices, dtype=float), t0, steps, form.lin,
                    form.const, rules.sigma, mmk0, book.pos_qty, book.pos_asset,
                    book.pos_kind, book.pos_entry, book.unit_pos_start, rules.tiers, oc, lo,
                    hi, due)
    return lo, hi, due


def build_option_boxes(book: Book, rules: EngineRules, oc: tuple, units: np.ndarray,
                       s0: np.ndarray, steps: int, mmk0: np.ndarray, form0: SlackForm,
                       gap_log: np.ndarray | None = None) -> OptionBoxes:
    """Boxes of the option units ``units`` for the first step and the later stages.

    Parameters
    ----------
    book : Book
    rules : EngineRules
    oc : tuple
        The options' data for the kernels (:func:`.option_setup.option_context`).
    units : ndarray of int64
        The units that hold options.
    s0 : ndarray, shape (A,)
        Initial prices.
    steps : int
        Steps of the paths.
    mmk0 : ndarray, shape (U,)
        Maintenance multiplier of every unit at the start.
    form0 : SlackForm
        The slack form at ``s0``.
    gap_log : ndarray, shape (steps, A), optional
        Log gaps of the scheduled shocks per step (:class:`simulator.paths.PathInputs`);
        without them every stage is centred on ``s0``.

    Returns
    -------
    OptionBoxes
    """
    n_assets = len(s0)
    t_first = 1 if steps >= 1 else 0
    starts = stage_steps(oc[codes.OC_IVMULT], gap_log, steps)
    cap = MAX_STAGE_CELLS // max(1, len(units) * n_assets)
    starts = starts[:max(0, min(MAX_STAGES, cap))]
    boxes = []
    for step in (t_first, *starts.tolist()):
        prices = stage_prices(s0, gap_log, step)
        form = (form0 if np.array_equal(prices, s0)
                else slack_form(book, rules, prices, mmk0))
        boxes.append(_boxes_at(book, rules, oc, units, prices, step, steps, mmk0, form))
    lo, hi, due = boxes[0]
    later = boxes[1:]
    shape = (len(later), len(units), n_assets)
    return OptionBoxes(
        lo=lo, hi=hi, due=due, stage_step=starts,
        stage_lo=np.array([b[0] for b in later]).reshape(shape),
        stage_hi=np.array([b[1] for b in later]).reshape(shape),
        stage_due=np.array([b[2] for b in later], dtype=np.int64).reshape(shape[:2]))
