"""Option margin rules, Python layer: validate, prepare arrays, call the kernels.

Two rules, both in USD:

**Deribit standard margin** (one position at a time; ``VENUES.md``, "Deribit"). In units
of the underlying per contract of 1 coin, with ``mark = option_price_usd / S`` and ``OTM``
the out-of-the-money amount in USD (call ``max(K - S, 0)``, put ``max(S - K, 0)``)::

    short call:  MM = 0.075 + mark
                 IM = max(0.15 - OTM / S, 0.10) + mark
    short put:   MM = max(0.075, 0.075 * mark) + mark
                 IM = max(max(0.15 - OTM / S, 0.10) + mark, MM)

multiplied by ``S * |qty|`` for USD. A long option needs no margin beyond its premium (0).

**Risk-matrix (portfolio) margin** of options and linear perpetuals on one underlying,
after Deribit's portfolio margin: the worst loss (value now - value after) over price
moves x {vol up, same, down}, and over an extended table of large moves with vol up
(perpetuals counting only as hedges), counted at a fraction of their loss. Options are
repriced with Black-Scholes (zero rates, same time to expiry); a perpetual changes value
by ``qty * (S' - S)``. Defaults and where they come from:

- ``range_pct = 0.16``: Deribit's BTC price range ("maximum underlying price move e.g.
  +/-16%", Deribit support article "Portfolio Margin"; ``price_range: 0.16`` in the
  example response of Deribit's ``private/pme/simulate`` API reference).
- ``n_buckets = 8`` per side (17 moves, 0 included): this project's choice, a finer grid
  than Deribit's. Deribit's article describes 9 evenly spaced buckets in all (``buckets_count:
  4`` per side in the API example); the 17-move grid contains those 9 moves, so its margin
  is never lower. Pass ``n_buckets=4`` to reproduce Deribit's grid.
- ``vol_up = 0.30``, ``vol_down = 0.15`` (absolute shifts of the implied vol): this
  project's simplification of Deribit's relative, expiry-dependent shocks. Deribit's API
  example lists ``volatility_range_up 0.5``, ``volatility_range_down 0.25``,
  ``min_volatility_for_shock_up 0.5``, vega powers 0.30 (< 30 days) / 0.13; the
  replication quoted in ``VENUES.md`` (third-party, unconfirmed) reads
  ``sigma_up = max(sigma * (1 + 0.5 * (30/dte)**p), 50%)``,
  ``sigma_down = sigma * (1 - 0.25 * (30/dte)**p)``. At 30 days and a 60% IV these give
  90% and 45%, i.e. +0.30 and -0.15: the defaults here. Short-dated options get larger
  shocks at Deribit than these constant shifts.
- ``extended_moves = (-0.66, -0.33, +0.5, +1, +2, +3, +4, +5)``: Deribit's extended table
  (support article "Portfolio Margin": "-66%, -33%, +50%, +100%, +200%, +300%, +400%,
  +500%", vol range up only).
- ``extended_weight = 0.35``: CME SPAN's weight of its extreme moves (``VENUES.md``,
  "Clearing-house methodology"). Deribit counts "only a fraction" of the extended P&L and
  applies a dampener, neither published as a number here (unconfirmed); the dampener is
  not modelled.
- In the extended moves the perpetuals count only where they offset the options' loss
  (their loss is ``min(perpetual loss, 0)``): the table stresses the convexity of short
  options, which the +-16% grid misses, and a perpetual hedging a short call still counts
  at +500%. Counted in full, a lone perpetual's -66% move at 0.35 would ask 23% of its
  notional, far above any venue's futures margin (Deribit's futures maintenance is about
  1%), so a linear loss is stressed by the standard grid alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator._kernels.option_margin import (
    KIND_CALL,
    KIND_PERP,
    KIND_PUT,
    MIN_VOL,
    deribit_option_im_nb,
    deribit_option_mm_nb,
    deribit_standard_margin_nb,
    risk_matrix_margin_nb,
)

__all__ = [
    "DEFAULT_EXTENDED_MOVES",
    "DEFAULT_EXTENDED_WEIGHT",
    "DEFAULT_N_BUCKETS",
    "DEFAULT_RANGE_PCT",
    "DEFAULT_VOL_DOWN",
    "DEFAULT_VOL_UP",
    "KIND_CALL",
    "KIND_PERP",
    "KIND_PUT",
    "MIN_VOL",
    "RiskMatrixResult",
    "deribit_option_margin",
    "deribit_standard_margin",
    "risk_matrix_margin",
]

DEFAULT_RANGE_PCT = 0.16
DEFAULT_N_BUCKETS = 8
DEFAULT_VOL_UP = 0.30
DEFAULT_VOL_DOWN = 0.15
DEFAULT_EXTENDED_MOVES = (-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0)
DEFAULT_EXTENDED_WEIGHT = 0.35

VOL_SCENARIOS = ("up", "same", "down")
"""Row labels of :attr:`RiskMatrixResult.losses`."""

_KIND_NAMES = {"perp": KIND_PERP, "call": KIND_CALL, "put": KIND_PUT}
_CODE_NAMES = {code: name for name, code in _KIND_NAMES.items()}

KindLike = str | int
ArrayLike = Sequence[float] | np.ndarray


def _kind_code(value: object, where: str, allow_perp: bool) -> int:
    """The integer code of one kind given as a name or a code."""
    allowed = dict(_KIND_NAMES) if allow_perp else {"call": KIND_CALL, "put": KIND_PUT}
    if isinstance(value, str) and value.strip().lower() in allowed:
        return allowed[value.strip().lower()]
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        if int(value) in allowed.values():
            return int(value)
    valid = ", ".join(f"{name!r} ({code})" for name, code in allowed.items())
    raise ValueError(f"{where} = {value!r}: not a position kind; valid: {valid}")


def _finite(value: float, where: str, lower: float | None = None, strict: bool = False
            ) -> float:
    """``value`` as a float, checked finite and (optionally) above ``lower``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where} = {value!r}: must be a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{where} = {x!r}: must be finite")
    if lower is not None and (x <= lower if strict else x < lower):
        sign = ">" if strict else ">="
        raise ValueError(f"{where} = {x!r}: must be {sign} {lower:g}")
    return x


def deribit_option_margin(kind: KindLike, qty: float, strike: float, spot: float,
                          option_price_usd: float) -> tuple[float, float]:
    """Deribit standard initial and maintenance margin of one option position, in USD.

    With ``mark = option_price_usd / spot`` and ``OTM`` the out-of-the-money amount in USD
    (call ``max(K - S, 0)``, put ``max(S - K, 0)``), in units of the underlying per
    contract of 1 coin (Deribit, ``VENUES.md``)::

        short call:  MM = 0.075 + mark
                     IM = max(0.15 - OTM / S, 0.10) + mark
        short put:   MM = max(0.075, 0.075 * mark) + mark
                     IM = max(max(0.15 - OTM / S, 0.10) + mark, MM)

    In USD, times ``spot * |qty|``. Long options need no margin beyond the premium: 0.

    Parameters
    ----------
    kind : {"call", "put"} or {1, 2}
        The option type (name, case-insensitive, or :data:`KIND_CALL` / :data:`KIND_PUT`).
    qty : float
        Contracts of 1 coin, signed: negative is short.
    strike : float
        Strike in USD, > 0.
    spot : float
        Underlying price in USD, > 0.
    option_price_usd : float
        Option mark price in USD per coin, >= 0.

    Returns
    -------
    im, mm : float
        Initial and maintenance margin in USD.

    Raises
    ------
    ValueError
        An argument is not finite, out of range, or ``kind`` is not a call or a put.

    Examples
    --------
    BTC at 60,000, short 1 call struck at 65,000 worth 0.02 BTC (1,200 USD):
    ``MM = (0.075 + 0.02) * 60,000 = 5,700``;
    ``IM = (max(0.15 - 5,000 / 60,000, 0.10) + 0.02) * 60,000 = 7,200``.

    >>> im, mm = deribit_option_margin("call", -1.0, 65_000.0, 60_000.0, 1_200.0)
    >>> round(im, 6), round(mm, 6)
    (7200.0, 5700.0)
    """
    code = _kind_code(kind, "kind", allow_perp=False)
    q = _finite(qty, "qty")
    k = _finite(strike, "strike", 0.0, strict=True)
    s = _finite(spot, "spot", 0.0, strict=True)
    price = _finite(option_price_usd, "option_price_usd", 0.0)
    is_call = code == KIND_CALL
    im = float(deribit_option_im_nb(is_call, q, k, s, price))
    mm = float(deribit_option_mm_nb(is_call, q, k, s, price))
    return im, mm


def _positions(kind: Sequence[KindLike] | np.ndarray, named: dict[str, ArrayLike],
               allow_perp: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Kind codes and float64 arrays of a book, all of one length."""
    kinds = np.atleast_1d(np.asarray(kind, dtype=object))
    if kinds.ndim != 1:
        raise ValueError(f"kind: must be one-dimensional, got shape {kinds.shape}")
    codes = np.array([_kind_code(v, f"kind[{i}]", allow_perp) for i, v in enumerate(kinds)],
                     dtype=np.int64)
    arrays = {}
    for name, values in named.items():
        a = np.atleast_1d(np.asarray(values, dtype=np.float64))
        if a.shape != codes.shape:
            raise ValueError(f"{name}: has shape {a.shape}; kind has shape {codes.shape} "
                             "(one entry per position)")
        arrays[name] = np.ascontiguousarray(a)
    return codes, arrays


def _check_options(codes: np.ndarray, arrays: dict[str, np.ndarray],
                   rules: dict[str, tuple[float, bool]]) -> None:
    """Check the option entries of ``arrays`` against ``rules`` (name: lower, strict)."""
    for i, code in enumerate(codes):
        if code == KIND_PERP:
            continue
        for name, (lower, strict) in rules.items():
            _finite(arrays[name][i], f"{name}[{i}] (a {_CODE_NAMES[int(code)]})", lower,
                    strict)


def deribit_standard_margin(kind: Sequence[KindLike] | np.ndarray, qty: ArrayLike,
                            strike: ArrayLike, spot: float, option_price_usd: ArrayLike
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Deribit standard margin of each position of a book on one underlying, in USD.

    The rule of :func:`deribit_option_margin`, per position; perpetuals get 0 here (their
    margin is the linear rule of :mod:`simulator.margin`).

    Parameters
    ----------
    kind : sequence of {"perp", "call", "put"} or of {0, 1, 2}
        Position kinds.
    qty, strike, option_price_usd : array_like, shape (n,)
        Signed size in coins, strike in USD (> 0 for options) and option price in USD per
        coin (>= 0 for options); perpetual entries are ignored.
    spot : float
        Underlying price in USD, > 0.

    Returns
    -------
    im, mm : ndarray, shape (n,)
        Initial and maintenance margin of each position in USD.

    Raises
    ------
    ValueError
        Arrays of different lengths, an unknown kind, or an option entry out of range.
    """
    codes, a = _positions(kind, {"qty": qty, "strike": strike,
                                 "option_price_usd": option_price_usd})
    s = _finite(spot, "spot", 0.0, strict=True)
    _check_options(codes, a, {"qty": (-math.inf, False), "strike": (0.0, True),
                              "option_price_usd": (0.0, False)})
    im = np.empty(codes.shape[0])
    mm = np.empty(codes.shape[0])
    deribit_standard_margin_nb(codes, a["qty"], a["strike"], s, a["option_price_usd"], im, mm)
    return im, mm


@dataclass(frozen=True)
class RiskMatrixResult:
    """A risk-matrix margin and the loss table behind it (USD; loss = value now - after).

    Attributes
    ----------
    margin : float
        ``max(0, losses.max(), extended_weight * extended_losses.max())``.
    moves : ndarray, shape (2 n_buckets + 1,)
        Standard price moves (simple returns), increasing; columns of ``losses``.
    vol_shifts : ndarray, shape (3,)
        Vol shift of each row of ``losses``: ``+vol_up``, 0, ``-vol_down``
        (labels :data:`VOL_SCENARIOS`).
    losses : ndarray, shape (3, 2 n_buckets + 1)
        Loss of each standard scenario.
    extended_moves : ndarray, shape (m,)
        Extended price moves (with vol up).
    extended_losses : ndarray, shape (m,)
        Their losses, unweighted.
    extended_weight : float
        Fraction of an extended loss that counts.
    """

    margin: float
    moves: np.ndarray
    vol_shifts: np.ndarray
    losses: np.ndarray
    extended_moves: np.ndarray
    extended_losses: np.ndarray
    extended_weight: float

    @property
    def binding(self) -> str:
        """The scenario that sets the margin, e.g. ``"vol up, move -16%"`` or
        ``"extended, move -66% (x0.35)"``; ``"none"`` when the margin is 0."""
        if self.margin <= 0.0:
            return "none"
        v, j = np.unravel_index(int(np.argmax(self.losses)), self.losses.shape)
        std = float(self.losses[v, j])
        if self.extended_losses.size:
            e = int(np.argmax(self.extended_losses))
            if self.extended_weight * float(self.extended_losses[e]) > std:
                return (f"extended, move {self.extended_moves[e]:+.0%} "
                        f"(x{self.extended_weight:g})")
        return f"vol {VOL_SCENARIOS[v]}, move {self.moves[j]:+.0%}"


def risk_matrix_margin(kind: Sequence[KindLike] | np.ndarray, qty: ArrayLike,
                       strike: ArrayLike, tau_years: ArrayLike, iv: ArrayLike, spot: float,
                       *, range_pct: float = DEFAULT_RANGE_PCT,
                       n_buckets: int = DEFAULT_N_BUCKETS, vol_up: float = DEFAULT_VOL_UP,
                       vol_down: float = DEFAULT_VOL_DOWN,
                       extended_moves: ArrayLike = DEFAULT_EXTENDED_MOVES,
                       extended_weight: float = DEFAULT_EXTENDED_WEIGHT) -> RiskMatrixResult:
    """Risk-matrix (portfolio) margin of options and perpetuals on one underlying, in USD.

    Standard scenarios: price moves ``range_pct * j / n_buckets``, ``j = -n_buckets ..
    n_buckets``, each with the implied vols shifted by ``+vol_up``, 0 and ``-vol_down``
    (never below ``min(iv, MIN_VOL)``). Extended scenarios: ``extended_moves`` with vol
    up, counted at ``extended_weight`` of their loss. Loss = value now - value after:
    options repriced with Black-Scholes (zero rates) at the shocked spot and vol, same
    time to expiry; a perpetual changes value by ``qty * (S' - S)``. Margin =
    ``max(0, worst standard loss, extended_weight * worst extended loss)``. The defaults
    and their sources are listed in the module docstring.

    Parameters
    ----------
    kind : sequence of {"perp", "call", "put"} or of {0, 1, 2}
        Position kinds.
    qty : array_like, shape (n,)
        Signed size in coins (negative is short).
    strike, tau_years, iv : array_like, shape (n,)
        Strike in USD (> 0), time to expiry in years (>= 0; intrinsic value at 0) and
        implied vol (> 0, annualised) of each option; perpetual entries are ignored (any
        value, NaN included).
    spot : float
        Underlying price in USD, > 0.
    range_pct : float, default 0.16
        Largest standard move, in (0, 1).
    n_buckets : int, default 8
        Moves on each side of 0, >= 1.
    vol_up, vol_down : float, default 0.30, 0.15
        Absolute vol shifts, >= 0.
    extended_moves : array_like, default (-0.66, -0.33, 0.5, 1, 2, 3, 4, 5)
        Extended moves, each > -1; may be empty.
    extended_weight : float, default 0.35
        In [0, 1].

    Returns
    -------
    RiskMatrixResult
        The margin and the full loss table.

    Raises
    ------
    ValueError
        Arrays of different lengths, an unknown kind, an option entry or a parameter out
        of range.
    """
    codes, a = _positions(kind, {"qty": qty, "strike": strike, "tau_years": tau_years,
                                 "iv": iv})
    for i, q in enumerate(a["qty"]):
        _finite(q, f"qty[{i}]")
    _check_options(codes, a, {"strike": (0.0, True), "tau_years": (0.0, False),
                              "iv": (0.0, True)})
    s = _finite(spot, "spot", 0.0, strict=True)
    r = _finite(range_pct, "range_pct", 0.0, strict=True)
    if r >= 1.0:
        raise ValueError(f"range_pct = {r!r}: must be < 1 (a move of -100% or worse)")
    if isinstance(n_buckets, bool) or not isinstance(n_buckets, int | np.integer) \
            or n_buckets < 1:
        raise ValueError(f"n_buckets = {n_buckets!r}: must be an integer >= 1")
    up = _finite(vol_up, "vol_up", 0.0)
    down = _finite(vol_down, "vol_down", 0.0)
    w = _finite(extended_weight, "extended_weight", 0.0)
    if w > 1.0:
        raise ValueError(f"extended_weight = {w!r}: must be in [0, 1]")
    ext = np.ascontiguousarray(np.atleast_1d(np.asarray(extended_moves, dtype=np.float64)))
    if ext.ndim != 1:
        raise ValueError(f"extended_moves: must be one-dimensional, got shape {ext.shape}")
    for e, m in enumerate(ext):
        _finite(m, f"extended_moves[{e}]", -1.0, strict=True)
    # perpetual entries may be anything: give the kernel clean numbers
    perp = codes == KIND_PERP
    for name in ("strike", "tau_years", "iv"):
        a[name] = np.where(perp, 0.0, a[name])
    n = int(n_buckets)
    losses = np.empty((3, 2 * n + 1))
    ext_losses = np.empty(ext.shape[0])
    margin = risk_matrix_margin_nb(codes, a["qty"], a["strike"], a["tau_years"], a["iv"], s,
                                   r, n, up, down, ext, w, losses, ext_losses)
    return RiskMatrixResult(
        margin=float(margin),
        moves=r * np.arange(-n, n + 1) / n,
        vol_shifts=np.array([up, 0.0, -down]),
        losses=losses,
        extended_moves=ext,
        extended_losses=ext_losses,
        extended_weight=w,
    )
