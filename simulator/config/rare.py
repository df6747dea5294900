"""Rare-event mode's keys: ``simulation.rare_event`` (the event importance sampling aims
at) and ``simulation.variance_reduction`` (``importance`` or ``sobol``), with the event's
grammar.

An event is a condition on one ``paths/`` column, ``COLUMN OP VALUE`` with ``OP`` one of
``>``, ``>=``, ``<``, ``<=`` (``n_liquidations>0``, ``bad_debt>1e6``,
``insurance_fund_end<=0``, ``min_price_BTC<30000``), or one of the names of
:data:`NAMED_EVENTS` (``fund_depletion``, ``socialised_loss``, ...).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from simulator.errors import ScenarioError

#: ``simulation.variance_reduction``: ``none`` (plain Monte Carlo), ``importance``
#: (importance sampling towards ``simulation.rare_event``) or ``sobol`` (randomised
#: quasi-Monte Carlo: a scrambled Sobol point set per chunk)
VARIANCE_REDUCTION = ("none", "importance", "sobol")

#: market models of the ``sobol`` mode (Gaussian increments, and Student-t's mixing)
SOBOL_MODELS = ("gbm", "student_t")
#: most dimensions of a Sobol point (``scipy.stats.qmc.Sobol``'s direction numbers): one
#: per step and asset, and one more per step for Student-t's mixing
MAX_SOBOL_DIMS = 21201

#: market models whose random drivers are Gaussian innovations that importance sampling
#: shifts (``bootstrap`` resamples history: no density to weight by)
TILTABLE_MODELS = ("gbm", "student_t", "merton", "garch", "regime")

#: the numeric ``paths/`` columns an event may name (besides ``min_price_<SYM>`` and
#: ``final_price_<SYM>``); ``fund_depleted`` reads as 0 / 1
EVENT_COLUMNS = ("n_liquidations", "liquidated_notional", "max_cascade_rounds", "bad_debt",
                 "insurance_fund_end", "adl_notional", "fees", "socialised_loss",
                 "fund_depleted", "n_adl", "n_cascade_liquidations")

#: documented names of the common events, and the condition each stands for
NAMED_EVENTS = {
    "fund_depletion": "fund_depleted>0",
    "socialised_loss": "socialised_loss>0",
    "bad_debt": "bad_debt>0",
    "adl": "adl_notional>0",
    "liquidation": "n_liquidations>0",
    "cascade": "n_cascade_liquidations>0",
}

_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_\-.]*)\s*(>=|<=|>|<)\s*(\S+)\s*$")


@dataclass(frozen=True)
class RareEvent:
    """A condition on one ``paths/`` column.

    Attributes
    ----------
    text : str
        As the user gave it (a name or a condition).
    column : str
    op : str
        ``>``, ``>=``, ``<`` or ``<=``.
    value : float
    """

    text: str
    column: str
    op: str
    value: float

    @property
    def condition(self) -> str:
        """The condition, ``COLUMN OP VALUE``."""
        return f"{self.column}{self.op}{self.value:g}"

    def holds(self, values: np.ndarray) -> np.ndarray:
        """Whether the event happened, per path, given the column's values (NaN: no)."""
        x = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            if self.op == ">":
                return x > self.value
            if self.op == ">=":
                return x >= self.value
            if self.op == "<":
                return x < self.value
            return x <= self.value

    @property
    def upward(self) -> bool:
        """Whether larger values of the column are closer to the event."""
        return self.op in (">", ">=")


def event_columns(symbols: tuple[str, ...]) -> tuple[str, ...]:
    """Every ``paths/`` column an event may name, for assets ``symbols``."""
    return (EVENT_COLUMNS + tuple(f"min_price_{s}" for s in symbols)
            + tuple(f"final_price_{s}" for s in symbols))


def parse_event(text: str, symbols: tuple[str, ...], source: str,
                key: str = "simulation.rare_event") -> RareEvent:
    """Read an event (see the module notes).

    Raises
    ------
    ScenarioError
        Naming ``source`` and ``key``: a condition that does not parse, an unknown column
        or name, a value that is not a finite number.
    """
    condition = NAMED_EVENTS.get(text.strip(), text)
    match = _CONDITION.match(condition)
    names = ", ".join(NAMED_EVENTS)
    if match is None:
        raise ScenarioError(source, key, f"{text!r} is not an event: give COLUMN>VALUE "
                            f"(or >=, <, <=) on a paths/ column, e.g. bad_debt>1e6 or "
                            f"min_price_{symbols[0] if symbols else 'BTC'}<30000, or one of "
                            f"{names}")
    column, op, raw = match.groups()
    columns = event_columns(symbols)
    if column not in columns:
        raise ScenarioError(source, key, f"{text!r}: {column!r} is not a numeric paths/ "
                            f"column; valid: {', '.join(columns)} (or a name: {names})")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ScenarioError(source, key, f"{text!r}: {raw!r} is not a finite number")
    return RareEvent(text=text.strip(), column=column, op=op, value=value)
