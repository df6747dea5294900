"""Numba kernels of the Black-Scholes layer: scalar pricing and greeks that other kernels
(the option margin engine) call per position, an array kernel over 1-D arrays, and the
implied-vol dynamics of the simulation.

Model: European options on a spot price with zero rates and no dividends (crypto trades
24/7, so ``tau_years = days / 365``). With ``s = vol * sqrt(tau)``,

    d1 = ln(S / K) / s + s / 2,    d2 = d1 - s,
    call = S N(d1) - K N(d2),      put = K N(-d2) - S N(-d1).

A venue that marks against a forward (Black-76, undiscounted) uses the same formulas with
the forward in place of ``S``.

Degenerate inputs never give NaN (for finite arguments): when ``tau <= 0``, ``vol <= 0``,
``S <= 0`` or ``K <= 0`` (or ``s`` underflows to 0) the option is worth its intrinsic
value ``max(S - K, 0)`` / ``max(K - S, 0)``, with ``S`` read as ``max(S, 0)`` (an asset at
zero stays there). Its delta is then 1 / 0 for a call (-1 / 0 for a put) in / out of the
money and 0.5 (-0.5) exactly at the money, the limit of ``N(s / 2)`` as ``s -> 0``; gamma
and vega are 0. Prices are clipped below at the intrinsic value, a no-arbitrage bound with
zero rates, so rounding never makes them negative.
"""

from __future__ import annotations

import math

from numba import njit

from simulator._kernels.jit import inner

SQRT1_2 = 0.7071067811865476  # 1 / sqrt(2)
INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)
IV_FLOOR = 1e-4  # smallest implied vol returned by implied_vol_nb (0.01 vol points)


@inner
def norm_cdf_nb(x):  # pragma: no cover - jitted
    """Standard normal CDF, ``erfc(-x / sqrt(2)) / 2``.

    Relative accuracy near machine precision in the lower tail (``N(-37) ~ 6e-300``),
    where ``1 + erf`` would cancel; ``N(-inf) = 0`` and ``N(inf) = 1``.
    """
    return 0.5 * math.erfc(-x * SQRT1_2)


@inner
def norm_pdf_nb(x):  # pragma: no cover - jitted
    """Standard normal density, ``exp(-x**2 / 2) / sqrt(2 pi)`` (0 at ``+-inf``)."""
    return INV_SQRT_2PI * math.exp(-0.5 * x * x)


@inner
def _sigma_sqrt_tau_nb(spot, strike, tau_years, vol):  # pragma: no cover - jitted
    """``vol * sqrt(tau)``, or 0.0 when the option is degenerate (intrinsic value)."""
    if tau_years <= 0.0 or vol <= 0.0 or spot <= 0.0 or strike <= 0.0:
        return 0.0
    return vol * math.sqrt(tau_years)


@inner
def _intrinsic_nb(is_call, spot, strike):  # pragma: no cover - jitted
    """Intrinsic value and delta with ``S = max(spot, 0)`` (delta +-0.5 at the money)."""
    s = max(spot, 0.0)
    if is_call:
        if s > strike:
            return s - strike, 1.0
        if s < strike:
            return 0.0, 0.0
        return 0.0, 0.5
    if s < strike:
        return strike - s, -1.0
    if s > strike:
        return 0.0, 0.0
    return 0.0, -0.5


@inner
def _price_nb(is_call, spot, strike, d1, d2):  # pragma: no cover - jitted
    """Price from ``d1``, ``d2``, clipped below at the intrinsic value."""
    if is_call:
        price = spot * norm_cdf_nb(d1) - strike * norm_cdf_nb(d2)
        return max(price, spot - strike, 0.0)
    price = strike * norm_cdf_nb(-d2) - spot * norm_cdf_nb(-d1)
    return max(price, strike - spot, 0.0)


@njit(cache=True)
def bs_price_nb(is_call, spot, strike, tau_years, vol):  # pragma: no cover - jitted
    """Black-Scholes price of a European option (zero rates, no dividends).

    Parameters
    ----------
    is_call : bool
        True for a call, False for a put.
    spot, strike : float
        Underlying price and strike (same units, e.g. USD).
    tau_years : float
        Time to expiry in years (``days / 365``); ``<= 0`` gives the intrinsic value.
    vol : float
        Annualised volatility (0.8 for 80%); ``<= 0`` gives the intrinsic value.

    Returns
    -------
    float
        The price, equal bit for bit to ``bs_greeks_nb(...)[0]``.
    """
    sst = _sigma_sqrt_tau_nb(spot, strike, tau_years, vol)
    if sst <= 0.0:
        return _intrinsic_nb(is_call, spot, strike)[0]
    x = math.log(spot / strike) / sst
    return _price_nb(is_call, spot, strike, x + 0.5 * sst, x - 0.5 * sst)


@njit(cache=True)
def bs_greeks_nb(is_call, spot, strike, tau_years, vol):  # pragma: no cover - jitted
    """Black-Scholes price and greeks of a European option (zero rates, no dividends).

    Parameters
    ----------
    is_call, spot, strike, tau_years, vol
        As :func:`bs_price_nb`.

    Returns
    -------
    price : float
    delta : float
        ``dPrice/dSpot``: ``N(d1)`` for a call, ``-N(-d1)`` for a put.
    gamma : float
        ``d2Price/dSpot2 = n(d1) / (S vol sqrt(tau))``, the same for calls and puts.
    vega : float
        ``dPrice/dVol = S n(d1) sqrt(tau)`` per 1.00 of vol (divide by 100 for one vol
        point).
    """
    sst = _sigma_sqrt_tau_nb(spot, strike, tau_years, vol)
    if sst <= 0.0:
        price, delta = _intrinsic_nb(is_call, spot, strike)
        return price, delta, 0.0, 0.0
    x = math.log(spot / strike) / sst
    d1 = x + 0.5 * sst
    d2 = x - 0.5 * sst
    # the price of _price_nb, term for term, with N(+-d1) computed once for the delta too
    if is_call:
        delta = norm_cdf_nb(d1)
        price = max(spot * delta - strike * norm_cdf_nb(d2), spot - strike, 0.0)
    else:
        n_minus_d1 = norm_cdf_nb(-d1)
        price = max(strike * norm_cdf_nb(-d2) - spot * n_minus_d1, strike - spot, 0.0)
        delta = -n_minus_d1
    pdf = norm_pdf_nb(d1)
    gamma = pdf / spot / sst
    vega = spot * pdf * math.sqrt(tau_years)
    return price, delta, gamma, vega


@njit(cache=True)
def bs_price_greeks_nb(is_call, spot, strike, tau, vol, out_price, out_delta, out_gamma,
                       out_vega):  # pragma: no cover - jitted
    """Element-wise :func:`bs_greeks_nb` over 1-D arrays.

    Parameters
    ----------
    is_call : bool[n] (or integer, nonzero = call)
    spot, strike, tau, vol : float64[n]
        ``tau`` in years.
    out_price, out_delta, out_gamma, out_vega : float64[n]
        Written in place.

    Returns
    -------
    int
        0.
    """
    for i in range(out_price.shape[0]):
        p, d, g, v = bs_greeks_nb(is_call[i], spot[i], strike[i], tau[i], vol[i])
        out_price[i] = p
        out_delta[i] = d
        out_gamma[i] = g
        out_vega[i] = v
    return 0


@inner
def implied_vol_nb(iv0, spot, spot0, spot_vol_beta, vol_multiplier):  # pragma: no cover
    """Implied vol of the simulation: it rises as the underlying falls.

    The model is a sticky-moneyness power law,

        iv = iv0 * (spot / spot0) ** (-spot_vol_beta) * vol_multiplier,

    floored at ``IV_FLOOR = 1e-4``. ``iv0`` is the implied vol at the reference price
    ``spot0``; ``spot_vol_beta > 0`` makes vol rise when spot falls (a 10% drop with
    ``beta = 1`` raises vol by 11%); ``vol_multiplier`` carries the scenario's ``vol``
    shocks. When ``spot <= 0`` or ``spot0 <= 0`` the ratio is undefined and the result
    is ``iv0 * vol_multiplier`` (floored); the option is then worth its intrinsic value
    whatever the vol. A NaN result (from NaN inputs) also becomes the floor.

    Parameters
    ----------
    iv0, spot, spot0, spot_vol_beta, vol_multiplier : float

    Returns
    -------
    float
    """
    return implied_vol_from_factor_nb(iv0, spot_vol_factor_nb(spot, spot0, spot_vol_beta),
                                      vol_multiplier)


@njit(cache=True, inline="always")
def spot_vol_factor_nb(spot, spot0, spot_vol_beta):  # pragma: no cover - jitted
    """The spot's part of :func:`implied_vol_nb`, ``(spot / spot0) ** -spot_vol_beta``, the
    same for every option on an asset at one mark (so computed once per asset and mark).

    Computed as ``exp(-beta log(S / S0))``; exactly 1.0 when ``spot_vol_beta == 0``
    (sticky strike) or when ``spot <= 0`` or ``spot0 <= 0`` (the ratio is undefined), so
    that ``iv0 * factor * multiplier`` is then ``iv0 * multiplier`` bit for bit.
    """
    if spot_vol_beta == 0.0:  # sticky strike: exp(-0 log(S / S0)) is exactly 1
        return 1.0
    if spot > 0.0 and spot0 > 0.0:  # (S / S0) ** -beta as exp(-beta log(S / S0))
        return math.exp(-spot_vol_beta * math.log(spot / spot0))
    return 1.0


@njit(cache=True, inline="always")
def implied_vol_from_factor_nb(iv0, factor, vol_multiplier):  # pragma: no cover - jitted
    """:func:`implied_vol_nb` from its spot factor (:func:`spot_vol_factor_nb`):
    ``iv0 * factor * vol_multiplier`` floored at ``IV_FLOOR`` (NaN becomes the floor)."""
    iv = iv0 * factor * vol_multiplier
    if not iv > IV_FLOOR:
        return IV_FLOOR
    return iv
