"""Numba kernels of the option margin rules, in USD (arrays in, ``out=`` arrays).

Two rules (numbers and sources in ``VENUES.md``, "Deribit"; the Python layer with the
defaults and the validation is :mod:`simulator.options.margin`):

- Deribit *standard* margin, one option position at a time
  (:func:`deribit_option_mm_nb`, :func:`deribit_option_im_nb`,
  :func:`deribit_standard_margin_nb`);
- a *risk-matrix* (portfolio) margin over options and linear perpetuals on one underlying:
  the worst loss over price x vol scenarios plus a weighted extended-move table
  (:func:`risk_matrix_margin_nb`).

Position kinds are the integer codes :data:`KIND_PERP`, :data:`KIND_CALL`,
:data:`KIND_PUT`. Nothing here raises: inputs are validated by the Python layer.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from simulator._kernels.black_scholes import bs_price_nb
from simulator._kernels.jit import inner

KIND_PERP = 0
"""A linear perpetual: value change ``qty * (S' - S)``."""
KIND_CALL = 1
"""A European call on the underlying."""
KIND_PUT = 2
"""A European put on the underlying."""

N_VOL_SCENARIOS = 3
"""Rows of the standard loss matrix: vol up, vol same, vol down (in that order)."""
MIN_VOL = 0.01
"""The vol-down scenario never takes a vol below 1 vol point (nor below the position's own
implied vol, when that is lower)."""

# Deribit standard option margin, in units of the underlying per 1 coin (VENUES.md).
MM_BASE = 0.075
IM_BASE = 0.15
IM_FLOOR = 0.10


@inner
def _otm_nb(is_call, strike, spot):  # pragma: no cover - jitted
    """Out-of-the-money amount in USD: call ``max(K - S, 0)``, put ``max(S - K, 0)``."""
    if is_call:
        return max(strike - spot, 0.0)
    return max(spot - strike, 0.0)


@inner
def _mm_units_nb(is_call, mark):  # pragma: no cover - jitted
    """Maintenance margin of a short option, in units of the underlying per coin."""
    if is_call:
        return MM_BASE + mark
    return max(MM_BASE, MM_BASE * mark) + mark


@njit(cache=True)
def deribit_option_mm_nb(is_call, qty, strike, spot, option_price_usd):  # pragma: no cover
    """Deribit standard maintenance margin of one option position, in USD.

    The rule (Deribit, in units of the underlying per contract of 1 coin, with
    ``mark = option_price_usd / spot``)::

        short call:  MM = 0.075 + mark
        short put:   MM = max(0.075, 0.075 * mark) + mark

    In USD: ``MM * spot * |qty|``. A long option (``qty >= 0``) needs no margin beyond its
    premium: 0.

    Parameters
    ----------
    is_call : bool
        Call (True) or put (False).
    qty : float
        Contracts of 1 coin, signed: negative is short.
    strike : float
        Strike in USD (unused by the maintenance rule; kept for a uniform signature).
    spot : float
        Underlying price in USD, > 0.
    option_price_usd : float
        Option mark price in USD per coin, >= 0.

    Returns
    -------
    float
        Maintenance margin in USD, >= 0.
    """
    if qty >= 0.0:
        return 0.0
    mark = option_price_usd / spot
    return _mm_units_nb(is_call, mark) * spot * -qty


@njit(cache=True)
def deribit_option_im_nb(is_call, qty, strike, spot, option_price_usd):  # pragma: no cover
    """Deribit standard initial margin of one option position, in USD.

    The rule (Deribit, in units of the underlying per contract of 1 coin, with
    ``mark = option_price_usd / spot`` and ``OTM`` the out-of-the-money amount in USD,
    call ``max(K - S, 0)``, put ``max(S - K, 0)``)::

        short call:  IM = max(0.15 - OTM / S, 0.10) + mark
        short put:   IM = max(max(0.15 - OTM / S, 0.10) + mark, MM)

    with ``MM`` the put's maintenance margin (:func:`deribit_option_mm_nb`). In USD:
    ``IM * spot * |qty|``. A long option (``qty >= 0``) needs 0.

    Parameters
    ----------
    is_call : bool
        Call (True) or put (False).
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
    float
        Initial margin in USD, >= 0.
    """
    if qty >= 0.0:
        return 0.0
    mark = option_price_usd / spot
    im = max(IM_BASE - _otm_nb(is_call, strike, spot) / spot, IM_FLOOR) + mark
    if not is_call:
        im = max(im, _mm_units_nb(False, mark))
    return im * spot * -qty


@njit(cache=True)
def deribit_standard_margin_nb(kind, qty, strike, spot, option_price_usd, out_im, out_mm
                               ):  # pragma: no cover - jitted
    """Deribit standard margin of every position of a book, in USD.

    Parameters
    ----------
    kind : int64[n]
        :data:`KIND_PERP`, :data:`KIND_CALL` or :data:`KIND_PUT`. Perpetuals get 0 here
        (their margin is the linear rule of :mod:`simulator.margin`).
    qty, strike, option_price_usd : float64[n]
        As in :func:`deribit_option_im_nb`, per position.
    spot : float
        Underlying price in USD.
    out_im, out_mm : float64[n]
        Written: initial and maintenance margin of each position.

    Returns
    -------
    int
        0.
    """
    for p in range(kind.shape[0]):
        if kind[p] == KIND_PERP:
            out_im[p] = 0.0
            out_mm[p] = 0.0
            continue
        is_call = kind[p] == KIND_CALL
        out_im[p] = deribit_option_im_nb(is_call, qty[p], strike[p], spot, option_price_usd[p])
        out_mm[p] = deribit_option_mm_nb(is_call, qty[p], strike[p], spot, option_price_usd[p])
    return 0


@inner
def _scenario_loss_nb(kind, qty, strike, tau, iv, value_now, spot, move, vol_shift,
                      extended):  # pragma: no cover - jitted
    """Loss of the portfolio (value now - value after) when the underlying moves by ``move``
    (simple return) and every implied vol by ``vol_shift`` (absolute, floored). In an
    ``extended`` move the perpetuals count only where they offset the options' loss: their
    loss is ``min(perpetual loss, 0)``."""
    shocked = spot * (1.0 + move)
    loss = 0.0
    linear = 0.0
    for p in range(kind.shape[0]):
        if qty[p] == 0.0:
            continue
        if kind[p] == KIND_PERP:
            linear -= qty[p] * (shocked - spot)
            continue
        vol = iv[p] + vol_shift
        if vol_shift < 0.0:
            vol = max(vol, min(iv[p], MIN_VOL))
        after = bs_price_nb(kind[p] == KIND_CALL, shocked, strike[p], tau[p], vol)
        loss += qty[p] * (value_now[p] - after)
    if extended and linear > 0.0:
        return loss
    return loss + linear


@njit(cache=True)
def risk_matrix_margin_nb(kind, qty, strike, tau, iv, spot, range_pct, n_buckets, vol_up,
                          vol_down, ext_moves, ext_weight, out_losses, out_ext_losses
                          ):  # pragma: no cover - jitted
    """Risk-matrix (portfolio) margin of options and perpetuals on one underlying, in USD.

    Scenarios (after Deribit's portfolio margin, ``VENUES.md``):

    - standard: price moves ``range_pct * j / n_buckets`` for ``j = -n_buckets ..
      n_buckets`` (``2 n_buckets + 1`` evenly spaced moves, 0 included), each with vol
      up (``iv + vol_up``), vol same and vol down (``iv - vol_down``, never below
      ``min(iv, MIN_VOL)``);
    - extended: the price moves ``ext_moves`` with vol up only, counted at ``ext_weight``
      of their loss; there the perpetuals count only where they offset the options'
      loss (``min(perpetual loss, 0)``): they are stressed by the standard moves.

    Loss of a scenario = value now - value after: a perpetual loses ``-qty * (S' - S)``;
    an option is repriced with Black-Scholes (zero rates) at the shocked spot and vol, same
    ``tau`` (intrinsic value when ``tau <= 0``). Then::

        margin = max(0, max(out_losses), ext_weight * max(out_ext_losses))

    Parameters
    ----------
    kind : int64[n]
        :data:`KIND_PERP`, :data:`KIND_CALL` or :data:`KIND_PUT`.
    qty : float64[n]
        Signed size in coins (negative is short).
    strike, tau, iv : float64[n]
        Strike (USD), time to expiry (years) and implied vol (annualised) of each option;
        ignored for perpetuals.
    spot : float
        Underlying price in USD, > 0.
    range_pct : float
        Largest standard price move, for example 0.16.
    n_buckets : int
        Moves on each side of 0, >= 1.
    vol_up, vol_down : float
        Absolute vol shifts (vol points as fractions, e.g. 0.30), >= 0.
    ext_moves : float64[m]
        Extended price moves (simple returns, > -1); ``m`` may be 0.
    ext_weight : float
        Fraction of an extended loss that counts, in [0, 1].
    out_losses : float64[3, 2 * n_buckets + 1]
        Written: losses in USD; rows vol up / same / down, columns the moves in
        increasing order.
    out_ext_losses : float64[m]
        Written: the extended losses in USD, *unweighted*.

    Returns
    -------
    float
        The margin in USD, >= 0.
    """
    n = kind.shape[0]
    value_now = np.zeros(n)
    for p in range(n):
        if kind[p] != KIND_PERP:
            value_now[p] = bs_price_nb(kind[p] == KIND_CALL, spot, strike[p], tau[p],
                                            iv[p])
    margin = 0.0
    n_moves = 2 * n_buckets + 1
    for v in range(N_VOL_SCENARIOS):
        shift = vol_up if v == 0 else (0.0 if v == 1 else -vol_down)
        for j in range(n_moves):
            move = range_pct * (j - n_buckets) / n_buckets
            loss = _scenario_loss_nb(kind, qty, strike, tau, iv, value_now, spot, move, shift,
                                     False)
            out_losses[v, j] = loss
            margin = max(margin, loss)
    for e in range(ext_moves.shape[0]):
        loss = _scenario_loss_nb(kind, qty, strike, tau, iv, value_now, spot, ext_moves[e],
                                 vol_up, True)
        out_ext_losses[e] = loss
        margin = max(margin, ext_weight * loss)
    return margin
