"""Black-Scholes pricing and greeks, Python layer: validate, broadcast, call the kernels.

European options on crypto with zero rates and no dividends; a year is 365 days, so
``tau = expiry_days / 365``. For a venue that marks against a forward, pass the forward as
``spot`` (Black-76, undiscounted). The formulas and the edge-case conventions (expiry or
zero vol: intrinsic value, delta 1 / 0 / 0.5 at the money, gamma = vega = 0) are those of
:mod:`simulator._kernels.black_scholes`.

Units of the greeks:

- ``delta``: ``dPrice/dSpot`` per unit of the underlying.
- ``gamma``: ``d2Price/dSpot2`` per unit of the underlying, per USD.
- ``vega``: ``dPrice/dVol`` per 1.00 of vol (a rise from 80% to 180%); divide by 100 for
  one vol point.

:func:`position_greeks_usd` turns them into USD for a position of ``qty`` units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from simulator._kernels.black_scholes import bs_price_greeks_nb

DAYS_PER_YEAR = 365.0
KINDS = ("call", "put")


@dataclass(frozen=True)
class OptionGreeks:
    """Price and greeks of one option per element (arrays of the broadcast input shape;
    0-d arrays when every input is a scalar).

    Attributes
    ----------
    price : ndarray
        Price per unit of the underlying (USD when spot and strike are in USD).
    delta : ndarray
        ``dPrice/dSpot``.
    gamma : ndarray
        ``d2Price/dSpot2``.
    vega : ndarray
        ``dPrice/dVol`` per 1.00 of vol.
    """

    price: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray


@dataclass(frozen=True)
class PositionGreeksUSD:
    """Value and greeks in USD of a position of ``qty`` units (``qty > 0`` long, ``< 0``
    short), per element of the broadcast input shape.

    Attributes
    ----------
    value : ndarray
        Mark value, ``qty * price``.
    delta : ndarray
        Dollar delta, ``qty * delta * spot``: the USD exposure to the underlying (a 1% move
        gains about ``delta / 100``).
    gamma : ndarray
        Gamma P&L of a 1% move, ``0.5 * gamma * qty * (0.01 * spot) ** 2``: the second-order
        term of the Taylor expansion, earned (long) or paid (short) on a 1% move either way.
    vega : ndarray
        Vega per vol point, ``qty * vega * 0.01``: the P&L of implied vol rising by 0.01
        (80% to 81%).
    """

    value: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray


def _first_bad(arr: np.ndarray, bad: np.ndarray) -> str:
    """``"got VALUE at index (i, ...)"`` for the first bad element (no index for a scalar)."""
    if arr.ndim == 0:
        return f"got {arr.item()!r}"
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return f"got {np.asarray(arr[index]).item()!r} at index {index}"


def _is_call(kind: str | ArrayLike) -> np.ndarray:
    """Boolean array (True for calls) from ``"call"`` / ``"put"`` strings."""
    arr = np.asarray(kind)
    if arr.dtype.kind not in "UO":
        raise ValueError(
            f"kind must be 'call' or 'put', or an array of them; got {arr.dtype} values"
        )
    if arr.dtype.kind == "U":
        is_call, is_put = arr == "call", arr == "put"
    else:
        is_call = np.zeros(arr.shape, dtype=bool)
        is_put = np.zeros(arr.shape, dtype=bool)
        for idx, value in np.ndenumerate(arr):
            is_call[idx] = isinstance(value, str) and value == "call"
            is_put[idx] = isinstance(value, str) and value == "put"
    bad = ~(is_call | is_put)
    if bad.any():
        raise ValueError(f"kind must be 'call' or 'put'; {_first_bad(arr, bad)}")
    return is_call


def _floats(name: str, value: ArrayLike, *, what: str, minimum: float | None = None,
            strict: bool = False) -> np.ndarray:
    """``value`` as a float64 array, checked finite and, when ``minimum`` is given,
    ``> minimum`` (``strict``) or ``>= minimum``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a number or an array of numbers ({what}); got {value!r}"
        ) from None
    bad = ~np.isfinite(arr)
    rule = "finite"
    if minimum is not None:
        bad |= (arr <= minimum) if strict else (arr < minimum)
        rule = f"finite and {'>' if strict else '>='} {minimum:g}"
    if bad.any():
        raise ValueError(f"{name} must be {rule} ({what}); {_first_bad(arr, bad)}")
    return arr


def _broadcast(**arrays: np.ndarray) -> list[np.ndarray]:
    """Broadcast the inputs to one shape, naming their shapes when they do not fit."""
    try:
        return list(np.broadcast_arrays(*arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
        raise ValueError(
            f"the inputs must broadcast to one shape (scalars, or arrays of equal or "
            f"broadcastable shapes); got {shapes}"
        ) from None


def _greeks(is_call: np.ndarray, spot: np.ndarray, strike: np.ndarray,
            expiry_days: np.ndarray, vol: np.ndarray) -> OptionGreeks:
    """Run the array kernel on broadcast, validated inputs."""
    shape = spot.shape
    flat = [np.ascontiguousarray(a).ravel() for a in (is_call, spot, strike)]
    tau = np.ascontiguousarray(expiry_days / DAYS_PER_YEAR).ravel()
    sigma = np.ascontiguousarray(vol).ravel()
    out = [np.empty(flat[1].shape[0]) for _ in range(4)]
    bs_price_greeks_nb(flat[0], flat[1], flat[2], tau, sigma, *out)
    return OptionGreeks(*(o.reshape(shape) for o in out))


def black_scholes(kind: str | ArrayLike, spot: ArrayLike, strike: ArrayLike,
                  expiry_days: ArrayLike, vol: ArrayLike) -> OptionGreeks:
    """Black-Scholes price and greeks of European options (zero rates, no dividends).

    All arguments broadcast against each other, NumPy-style.

    Parameters
    ----------
    kind : str or array_like of str
        ``"call"`` or ``"put"``.
    spot : float or array_like
        Price of the underlying (``>= 0``; at 0 the option is worth its intrinsic value).
    strike : float or array_like
        Strike (``> 0``), in the units of ``spot``.
    expiry_days : float or array_like
        Days to expiry (``>= 0``; 0 gives the intrinsic value); a year is 365 days.
    vol : float or array_like
        Annualised implied volatility (``>= 0``; 0.8 for 80%; 0 gives the intrinsic
        value).

    Returns
    -------
    OptionGreeks
        ``price``, ``delta``, ``gamma`` and ``vega`` (per 1.00 of vol), each of the
        broadcast shape.

    Raises
    ------
    ValueError
        When a kind is not ``"call"`` or ``"put"``, a number is not finite or out of its
        range, or the shapes do not broadcast.

    Examples
    --------
    >>> g = black_scholes("call", 100.0, 100.0, 365.0, 0.2)
    >>> round(float(g.price), 4), round(float(g.delta), 4)
    (7.9656, 0.5398)
    """
    args = _checked(kind, spot, strike, expiry_days, vol)
    return _greeks(*args)


def _checked(kind: str | ArrayLike, spot: ArrayLike, strike: ArrayLike,
             expiry_days: ArrayLike, vol: ArrayLike) -> list[np.ndarray]:
    """Validate and broadcast the inputs of :func:`black_scholes`."""
    return _broadcast(
        kind=_is_call(kind),
        spot=_floats("spot", spot, minimum=0.0, what="price of the underlying"),
        strike=_floats("strike", strike, minimum=0.0, strict=True, what="strike price"),
        expiry_days=_floats("expiry_days", expiry_days, minimum=0.0, what="days to expiry"),
        vol=_floats("vol", vol, minimum=0.0, what="annualised implied vol, 0.8 for 80%"),
    )


def position_greeks_usd(qty: ArrayLike, kind: str | ArrayLike, spot: ArrayLike,
                        strike: ArrayLike, expiry_days: ArrayLike, vol: ArrayLike
                        ) -> PositionGreeksUSD:
    """Value and greeks in USD of option positions of ``qty`` units each.

    With ``P``, ``Delta``, ``Gamma``, ``Vega`` from :func:`black_scholes` and spot ``S``:

    - ``value = qty * P``
    - ``delta = qty * Delta * S`` (dollar delta)
    - ``gamma = 0.5 * Gamma * qty * (0.01 * S) ** 2`` (gamma P&L of a 1% move)
    - ``vega = qty * Vega * 0.01`` (P&L per vol point)

    Parameters
    ----------
    qty : float or array_like
        Units of the underlying per position, signed: ``> 0`` long, ``< 0`` short.
    kind, spot, strike, expiry_days, vol
        As :func:`black_scholes`; everything broadcasts together.

    Returns
    -------
    PositionGreeksUSD

    Raises
    ------
    ValueError
        As :func:`black_scholes`, or when ``qty`` is not finite.
    """
    q = _floats("qty", qty, what="units of the underlying, > 0 long, < 0 short")
    args = _checked(kind, spot, strike, expiry_days, vol)
    q, *args = _broadcast(qty=q, kind=args[0], spot=args[1], strike=args[2],
                          expiry_days=args[3], vol=args[4])
    g = _greeks(*args)
    s = args[1]
    return PositionGreeksUSD(
        value=np.asarray(q * g.price),
        delta=np.asarray(q * g.delta * s),
        gamma=np.asarray(0.5 * g.gamma * q * (0.01 * s) ** 2),
        vega=np.asarray(q * g.vega * 0.01),
    )
