"""The ``[behaviour]`` table: how accounts answer margin calls (the seed's "adjustment").

Below ``margin_call_ratio`` x maintenance an account is called once per path; with
probability ``answer_probability`` it answers ``delay_steps`` later, by depositing up to its
reserve (``top_up``) or by cutting its positions (``reduce``) back to ``target_ratio`` x
maintenance. The reserve is ``reserve_ratio`` x the margin unit's equity at the start.
Whether an account answers is drawn per path and account from a counter-based generator
keyed by the chunk's seed, so runs stay reproducible whatever the number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.config._table import Table, fmt_number

__all__ = ["CALL_ACTIONS", "Behaviour", "read_behaviour"]

CALL_ACTIONS = ("top_up", "reduce")


@dataclass(frozen=True)
class Behaviour:
    """Margin calls and their answers (``[behaviour]``); ``margin_call_ratio = 0`` is off.

    Attributes
    ----------
    margin_call_ratio : float
        Equity / maintenance below which an account is called (> 1), or 0 for no calls.
    answer_probability : float
        Chance that a called account answers.
    delay_steps : int
        Steps between the call and the answer (>= 1).
    action : str
        ``top_up`` (deposit USD from the reserve) or ``reduce`` (close part of every
        position at the mark).
    target_ratio : float
        Equity / maintenance the answer aims for (>= ``margin_call_ratio``).
    reserve_ratio : float
        Reserve available for top-ups, as a multiple of the unit's initial equity.
    """

    margin_call_ratio: float = 0.0
    answer_probability: float = 0.5
    delay_steps: int = 1
    action: str = "top_up"
    target_ratio: float = 2.0
    reserve_ratio: float = 0.5

    @property
    def calls(self) -> bool:
        """Whether margin calls are on."""
        return self.margin_call_ratio > 0.0


def read_behaviour(t: Table) -> Behaviour:
    """Read ``[behaviour]``."""
    d = Behaviour()
    ratio = t.number("margin_call_ratio", d.margin_call_ratio, lo=0.0, hi=100.0)
    if 0.0 < ratio <= 1.0:
        raise t.error("margin_call_ratio", f"must be above 1 (a call comes before the "
                      f"liquidation at ratio 1), or 0 for no margin calls; got {fmt_number(ratio)}")
    target = t.number("target_ratio", max(d.target_ratio, ratio), lo=max(ratio, 1.0),
                      hi=1000.0)
    return Behaviour(
        margin_call_ratio=ratio,
        answer_probability=t.number("answer_probability", d.answer_probability, lo=0.0,
                                    hi=1.0),
        delay_steps=t.integer("delay_steps", d.delay_steps, lo=1, hi=10_000_000),
        action=t.string("action", d.action, choices=CALL_ACTIONS),
        target_ratio=target,
        reserve_ratio=t.number("reserve_ratio", d.reserve_ratio, lo=0.0, hi=1e6),
    )
