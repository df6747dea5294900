"""Numba kernels of the circuit breaker (``docs/engine.md``, "Circuit breaker"): a price
band per step that, when a mark leaves it, pauses the liquidations (or all trading) for
``K`` steps.

Stages of :func:`.replay.replay_nb`, called at the close of every step: :func:`breaker_open_nb`
before the step's marks keeps the previous step's closing marks in ``assets.mark2`` (free
between a step's last round and the next step's first: a round writes it before it reads
it), :func:`breaker_check_nb` after them tests the band and says whether the step is
paused. Without a breaker (band 0) both return at once.

They are not pruned at compile time like the engine's larger optional stages (an argument
that is None when the feature is off, ``RuleArrays.calls_on``): the two stages are a few
lines, which cost the replay kernel's compilation nothing measurable, while a switch in the
kernel's record types would compile the whole replay kernel once more for every
combination of the other switches with a breaker (about 25 s each).
"""

from __future__ import annotations

from simulator._kernels.jit import leaf
from simulator.margin.codes import (
    CNT_BREAKER_RESUME,
    FP_BREAKER_BAND,
    HALT_NONE,
    HALT_TRADING,
    IP_BREAKER_HALT,
    IP_BREAKER_STEPS,
    PI_BREAKER_PAUSED,
    PI_BREAKER_TRIPS,
)


@leaf
def breaker_open_nb(i, t, prices, rules, lists, assets):  # pragma: no cover - jitted
    """Before the marks of step ``t`` of path ``i``: the previous step's closing marks
    (``exo[i, 0]`` at ``t = 1``, when the path's pause is also reset) to ``assets.mark2``."""
    if not rules.fparams[FP_BREAKER_BAND] > 0.0:  # a venue without a breaker
        return
    mark = assets.mark
    ref = assets.mark2
    if t == 1:
        lists.count[CNT_BREAKER_RESUME] = 0
        for a in range(ref.shape[0]):
            ref[a] = prices.exo[i, 0, a]
    else:
        for a in range(ref.shape[0]):
            ref[a] = mark[a]


@leaf
def breaker_check_nb(i, t, rules, out, lists, assets):  # pragma: no cover - jitted
    """After the marks of step ``t`` of path ``i``: the breaker trips when a step that is
    neither paused nor the one a pause ends at moves a mark more than the band from the
    previous close (``assets.mark2``); it then pauses steps ``t .. t + K - 1``.

    Returns the state of the step: ``HALT_NONE`` (it runs normally), or the venue's
    ``HALT_LIQUIDATIONS`` or ``HALT_TRADING`` when it is paused; under ``HALT_TRADING`` the
    marks are put back to the previous close.
    """
    band = rules.fparams[FP_BREAKER_BAND]
    if not band > 0.0:  # a venue without a breaker
        return HALT_NONE
    count = lists.count
    mark = assets.mark
    ref = assets.mark2
    resume = count[CNT_BREAKER_RESUME]
    if t > resume:  # neither paused nor the step a pause ends at: the band is checked
        trip = False
        for a in range(mark.shape[0]):
            if abs(mark[a] / ref[a] - 1.0) > band:
                trip = True
        if trip:
            resume = t + rules.iparams[IP_BREAKER_STEPS]
            count[CNT_BREAKER_RESUME] = resume
            out.path_i[i, PI_BREAKER_TRIPS] += 1
    if t >= resume:
        return HALT_NONE
    out.path_i[i, PI_BREAKER_PAUSED] += 1
    halt = rules.iparams[IP_BREAKER_HALT]
    if halt == HALT_TRADING:  # the book does not trade: the marks stay at the last close
        for a in range(mark.shape[0]):
            mark[a] = ref[a]
    return halt
