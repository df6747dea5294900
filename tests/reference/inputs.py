"""Inputs of the reference replay (``docs/engine.md``, "Inputs"): the constants, the
conversion of array inputs to plain Python lists, the check of the bracket tables, and the
venue's parameters.

Input arrays (NumPy arrays or nested sequences) are converted to Python lists of floats or
ints on entry; nothing else from NumPy is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MODES = ("full", "partial", "incremental")
ADL_RANKINGS = ("pnl_margin_ratio", "profit_leverage", "bybit", "pro_rata",
                "leverage_pro_rata")
CALL_ACTIONS = ("top_up", "reduce")
BREAKER_HALTS = ("liquidations", "trading")
#: Position kinds (``pos_kind``): a linear perpetual (``qty`` in coins, PnL in USD) or an
#: inverse (coin-margined) one (``qty`` in USD contracts, PnL paid in the coin).
LINEAR = 0
INVERSE = 1
#: 64-bit wrapping arithmetic on Python ints.
MASK64 = 0xFFFFFFFFFFFFFFFF
#: Relative tolerance when given bracket ``cum`` values are checked against the continuity
#: rule of the specification.
CUM_RTOL = 1e-9


def floats1(values: Any) -> list[float]:
    """Convert a 1-D array-like to a list of Python floats.

    Parameters
    ----------
    values : array_like
        One-dimensional numeric input.

    Returns
    -------
    list of float
        The values as Python floats.
    """
    return [float(v) for v in values]


def ints1(values: Any) -> list[int]:
    """Convert a 1-D array-like to a list of Python ints.

    Parameters
    ----------
    values : array_like
        One-dimensional integer input.

    Returns
    -------
    list of int
        The values as Python ints.
    """
    return [int(v) for v in values]


def floats2(values: Any) -> list[list[float]]:
    """Convert a 2-D array-like to a list of lists of Python floats.

    Parameters
    ----------
    values : array_like
        Two-dimensional numeric input.

    Returns
    -------
    list of list of float
        The values as nested Python lists.
    """
    return [floats1(row) for row in values]


def floats3(values: Any) -> list[list[list[float]]]:
    """Convert a 3-D array-like to nested lists of Python floats.

    Parameters
    ----------
    values : array_like
        Three-dimensional numeric input.

    Returns
    -------
    list of list of list of float
        The values as nested Python lists.
    """
    return [floats2(block) for block in values]


def sign(x: float) -> float:
    """Return the sign of ``x`` as a float.

    Parameters
    ----------
    x : float
        Any number.

    Returns
    -------
    float
        ``1.0`` if ``x > 0``, ``-1.0`` if ``x < 0``, else ``0.0``.
    """
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    return 0.0


def check_brackets(
    cap: list[list[float]], rate: list[list[float]], cum: list[list[float]]
) -> None:
    """Check bracket tables against the rules of the specification.

    Every asset has the same number ``K >= 1`` of rows; the last cap is ``+inf``; caps
    do not decrease; ``cum[a][0] = 0`` and, wherever the previous cap is finite,
    ``cum[a][k] = cum[a][k-1] + cap[a][k-1] * (rate[a][k] - rate[a][k-1])`` (to a relative
    tolerance ``CUM_RTOL``). Rows after the first infinite cap are padding (repeats of the
    last row) and are not checked against the continuity rule.

    Parameters
    ----------
    cap, rate, cum : list of list of float
        Bracket tables, ``[a][k]``.

    Raises
    ------
    ValueError
        When a table breaks one of the rules.
    """
    if not (len(cap) == len(rate) == len(cum)):
        raise ValueError("cap, rate and cum must have one row per asset")
    for a in range(len(cap)):
        n_rows = len(cap[a])
        if n_rows == 0 or len(rate[a]) != n_rows or len(cum[a]) != n_rows:
            raise ValueError(f"asset {a}: cap, rate and cum need the same K >= 1 rows")
        if not math.isinf(cap[a][-1]):
            raise ValueError(f"asset {a}: the last bracket cap must be +inf")
        if cum[a][0] != 0.0:
            raise ValueError(f"asset {a}: cum[0] must be 0, got {cum[a][0]!r}")
        for k in range(1, n_rows):
            if cap[a][k] < cap[a][k - 1]:
                raise ValueError(f"asset {a}: bracket caps must not decrease")
            if math.isinf(cap[a][k - 1]):
                continue  # padding after the last real bracket
            expected = cum[a][k - 1] + cap[a][k - 1] * (rate[a][k] - rate[a][k - 1])
            if not math.isclose(cum[a][k], expected, rel_tol=CUM_RTOL, abs_tol=1e-9):
                raise ValueError(
                    f"asset {a}: cum[{k}] = {cum[a][k]!r} breaks continuity (expected {expected!r})"
                )


@dataclass(frozen=True)
class Venue:
    """Venue and impact parameters of the replay (see ``naive_replay`` for each).

    Attributes
    ----------
    lending : bool
        True for a lending venue (lending rounds), False for a derivatives venue.
    mode : str
        ``"full"``, ``"partial"`` or ``"incremental"``.
    fee_rate, target : float
        Liquidation fee rate and partial-liquidation target ratio.
    step_fraction, step_min_usd, step_max_usd, full_below_usd : float
        Incremental-mode parameters.
    backstop_ratio : float
        Backstop vault threshold as a multiple of maintenance (0 = no vault).
    fund0 : float
        Initial insurance fund.
    adl : bool
        Whether ADL covers uncovered deficits (derivatives venues only).
    adl_ranking : str
        One of :data:`ADL_RANKINGS`.
    max_rounds : int
        Maximum cascade rounds per step.
    alpha, decay : float
        Impact exponent (0 = none) and per-step decay of the accumulated log impact.
    close_factor, full_close_below_hf, full_close_below_usd, bonus, protocol_share : float
        Lending-venue parameters.
    adl_cap : float
        Most ADL notional per step, USD (inf: no cap).
    breaker_band, breaker_steps, breaker_halts : float, int, str
        Circuit breaker: band (0 = off), pause in steps, ``"liquidations"`` or
        ``"trading"``.
    vault_disposal : str
        ``"instant"`` or ``"gradual"`` (the backstop vault holds what it takes over).
    vault_disposal_share, vault_depth_share : float
        Gradual disposal: share of the quantity taken over sold per step; cap per step and
        asset as a share of the depth.
    """

    lending: bool
    mode: str
    fee_rate: float
    target: float
    step_fraction: float
    step_min_usd: float
    step_max_usd: float
    full_below_usd: float
    backstop_ratio: float
    fund0: float
    adl: bool
    adl_ranking: str
    max_rounds: int
    alpha: float
    decay: float
    close_factor: float
    full_close_below_hf: float
    full_close_below_usd: float
    bonus: float
    protocol_share: float
    adl_cap: float = math.inf
    breaker_band: float = 0.0
    breaker_steps: int = 5
    breaker_halts: str = "liquidations"
    vault_disposal: str = "instant"
    vault_disposal_share: float = 0.2
    vault_depth_share: float = 0.1
