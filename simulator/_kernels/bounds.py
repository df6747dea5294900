"""Numba kernel that keeps a value within a band: the engine's marks within the price band
of :mod:`simulator.config.limits`, and the path generators' log prices within its log band.

The band's constants are re-exported here, so that kernel modules take them from the
shared kernel module rather than from the configuration package.
"""

from __future__ import annotations

from simulator._kernels.jit import inner
from simulator.config.limits import (
    BOUND_REL_TOL,
    LOG_PRICE_CAP,
    LOG_PRICE_FLOOR,
    PRICE_CAP_RATIO,
    PRICE_FLOOR_RATIO,
)

__all__ = ["BOUND_REL_TOL", "LOG_PRICE_CAP", "LOG_PRICE_FLOOR", "PRICE_CAP_RATIO",
           "PRICE_FLOOR_RATIO", "bound_price", "bound_price_nb"]


@inner
def bound_price_nb(x, lo, hi):  # pragma: no cover - jitted
    """``x`` clamped to ``[lo, hi]``; NaN (and anything not ``>= lo``) gives ``lo``."""
    if x >= lo:
        return x if x <= hi else hi
    return lo


def bound_price(x: float, lo: float, hi: float) -> float:
    """Pure-Python reference of :func:`bound_price_nb`."""
    if x >= lo:
        return x if x <= hi else hi
    return lo
