"""Black-Scholes kernels and their Python layer against SciPy's closed form, finite
differences, put-call parity, edge cases, monotonicity, and the implied-vol dynamics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special
from scipy.stats import norm

from simulator._kernels.black_scholes import (
    IV_FLOOR,
    bs_greeks_nb,
    bs_price_greeks_nb,
    bs_price_nb,
    implied_vol_from_factor_nb,
    implied_vol_nb,
    norm_cdf_nb,
    norm_pdf_nb,
    spot_vol_factor_nb,
)
from simulator.options import black_scholes, position_greeks_usd

EPS = np.finfo(np.float64).eps
STRIKE = 50_000.0  # BTC-like; every tolerance on prices is scaled by spot


def _grid(strike: float = STRIKE):
    """Flat arrays over moneyness 0.5..2, tau 1 hour..2 years, vol 0.05..3, call and put."""
    m = np.linspace(0.5, 2.0, 31)
    tau = np.geomspace(1.0 / 24.0, 730.0, 13) / 365.0
    vol = np.geomspace(0.05, 3.0, 11)
    is_call = np.array([True, False])
    c, mm, t, v = (a.ravel() for a in np.meshgrid(is_call, m, tau, vol, indexing="ij"))
    return c, mm * strike, np.full(c.shape, strike), t, v


def _kernel(is_call, spot, strike, tau, vol):
    out = [np.empty(spot.shape[0]) for _ in range(4)]
    assert bs_price_greeks_nb(is_call, spot, strike, tau, vol, *out) == 0
    return out


def _scipy(is_call, spot, strike, tau, vol):
    """Textbook closed form with SciPy's normal distribution (independent reference)."""
    sst = vol * np.sqrt(tau)
    d1 = (np.log(spot / strike) + 0.5 * vol**2 * tau) / sst
    d2 = d1 - sst
    call = spot * norm.cdf(d1) - strike * norm.cdf(d2)
    put = strike * norm.cdf(-d2) - spot * norm.cdf(-d1)
    price = np.where(is_call, call, put)
    delta = np.where(is_call, norm.cdf(d1), norm.cdf(d1) - 1.0)
    gamma = norm.pdf(d1) / (spot * sst)
    vega = spot * norm.pdf(d1) * np.sqrt(tau)
    return price, delta, gamma, vega


def _intrinsic(is_call, spot, strike):
    return np.where(is_call, np.maximum(spot - strike, 0.0), np.maximum(strike - spot, 0.0))


# --- the normal distribution -------------------------------------------------------------

def test_norm_cdf_and_pdf_equal_scipy_including_the_lower_tail():
    x = np.linspace(-37.0, 9.0, 4601)  # N(-37) ~ 6e-300, the last normal floats
    cdf = np.array([norm_cdf_nb(v) for v in x])
    pdf = np.array([norm_pdf_nb(v) for v in x])
    np.testing.assert_allclose(cdf, special.ndtr(x), rtol=1e-13, atol=0)
    np.testing.assert_allclose(pdf, norm.pdf(x), rtol=1e-13, atol=0)
    assert cdf[0] > 0.0  # not rounded to 0 as 1 + erf(x / sqrt(2)) would be
    assert norm_cdf_nb(-math.inf) == 0.0 and norm_cdf_nb(math.inf) == 1.0
    assert norm_pdf_nb(math.inf) == 0.0


# --- closed form -------------------------------------------------------------------------

@pytest.mark.parametrize("strike", [1.0, STRIKE])
def test_kernel_equals_scipy_closed_form_on_grid(strike):
    c, s, k, t, v = _grid(strike)
    price, delta, gamma, vega = _kernel(c, s, k, t, v)
    r_price, r_delta, r_gamma, r_vega = _scipy(c, s, k, t, v)
    # absolute on price / spot, then relative where the price is not a rounding residue
    np.testing.assert_allclose(price / s, r_price / s, rtol=0, atol=1e-10)
    big = r_price > 1e-5 * s
    assert big.mean() > 0.6
    np.testing.assert_allclose(price[big], r_price[big], rtol=1e-10, atol=0)
    np.testing.assert_allclose(delta, r_delta, rtol=0, atol=1e-10)
    np.testing.assert_allclose(delta[np.abs(r_delta) > 1e-5], r_delta[np.abs(r_delta) > 1e-5],
                               rtol=1e-10, atol=0)
    # gamma * spot and vega / spot are scale-free
    np.testing.assert_allclose(gamma * s, r_gamma * s, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(vega / s, r_vega / s, rtol=1e-10, atol=1e-10)


def test_python_layer_equals_scipy_and_the_kernel_exactly():
    c, s, k, t, v = _grid()
    g = black_scholes(np.where(c, "call", "put"), s, k, t * 365.0, v)
    kern = _kernel(c, s, k, (t * 365.0) / 365.0, v)
    for got, want in zip((g.price, g.delta, g.gamma, g.vega), kern, strict=True):
        assert np.array_equal(got, want)
    r_price, r_delta, r_gamma, r_vega = _scipy(c, s, k, t * 365.0 / 365.0, v)
    np.testing.assert_allclose(g.price / s, r_price / s, rtol=0, atol=1e-10)
    np.testing.assert_allclose(g.delta, r_delta, rtol=0, atol=1e-10)
    np.testing.assert_allclose(g.gamma * s, r_gamma * s, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(g.vega / s, r_vega / s, rtol=1e-10, atol=1e-10)


def test_textbook_value():
    # S = K = 100, one year, 20% vol, zero rates: 100 * (2 N(0.1) - 1)
    g = black_scholes("call", 100.0, 100.0, 365.0, 0.2)
    assert abs(float(g.price) - 100.0 * (2.0 * norm.cdf(0.1) - 1.0)) < 1e-12
    assert abs(float(g.price) - 7.965567455405804) < 1e-11
    assert g.price.shape == ()


def test_put_call_parity_zero_rates():
    c, s, k, t, v = _grid()
    half = c.shape[0] // 2  # calls first, then puts on the same (S, K, tau, vol)
    assert c[:half].all() and not c[half:].any()
    price = _kernel(c, s, k, t, v)[0]
    gap = price[:half] - price[half:] - (s[:half] - k[:half])
    assert np.max(np.abs(gap) / s[:half]) <= 1e-10
    delta = _kernel(c, s, k, t, v)[1]
    assert np.max(np.abs(delta[:half] - delta[half:] - 1.0)) <= 1e-10


# --- finite differences ------------------------------------------------------------------

def _fd_tolerance(fd_h, fd_2h, rounding):
    """Tolerance from the step size: for a central difference, error(h) ~ c h**2, so
    |FD(2h) - FD(h)| ~ 3 c h**2 bounds the truncation error with a factor 3 to spare;
    ``rounding`` is the price's rounding error amplified by the division by h (or h**2)."""
    return np.abs(fd_2h - fd_h) + rounding


def test_greeks_match_central_finite_differences():
    c, s, k, t, v = _grid()
    price, delta, gamma, vega = _kernel(c, s, k, t, v)
    sst = v * np.sqrt(t)
    err_p = 16.0 * EPS * s  # rounding error of one price (a few ulps of S N(d1))

    def p(ds=0.0, dv=0.0):
        return _kernel(c, s + ds, k, t, v + dv)[0]

    # delta and gamma: steps relative to the price's length scale in spot, S vol sqrt(tau)
    h = 1e-4 * s * sst
    fd1 = (p(h) - p(-h)) / (2 * h)
    fd2 = (p(2 * h) - p(-2 * h)) / (4 * h)
    tol = _fd_tolerance(fd1, fd2, err_p / h)
    assert np.all(np.abs(delta - fd1) <= tol)
    assert np.median(tol[np.abs(delta) > 1e-3] / np.abs(delta[np.abs(delta) > 1e-3])) < 1e-7

    h = 1e-3 * s * sst
    fd1 = (p(h) - 2 * price + p(-h)) / h**2
    fd2 = (p(2 * h) - 2 * price + p(-2 * h)) / (4 * h**2)
    tol = _fd_tolerance(fd1, fd2, 4 * err_p / h**2)
    assert np.all(np.abs(gamma - fd1) <= tol)
    live = gamma * s * sst > 1e-3
    assert np.median(tol[live] / gamma[live]) < 1e-5

    h = 1e-4 * v
    fd1 = (p(dv=h) - p(dv=-h)) / (2 * h)
    fd2 = (p(dv=2 * h) - p(dv=-2 * h)) / (4 * h)
    tol = _fd_tolerance(fd1, fd2, err_p / h)
    assert np.all(np.abs(vega - fd1) <= tol)
    live = vega > 1e-3 * s * np.sqrt(t)
    assert np.median(tol[live] / vega[live]) < 1e-6


# --- edge cases --------------------------------------------------------------------------

@pytest.mark.parametrize(("tau", "vol"), [(0.0, 0.5), (-1.0, 0.5), (0.5, 0.0), (0.5, -0.2),
                                          (1e-320, 1e-300)])
def test_expired_or_zero_vol_is_intrinsic(tau, vol):
    k = 100.0
    for is_call in (True, False):
        for s, d_call, d_put in ((150.0, 1.0, 0.0), (50.0, 0.0, -1.0), (100.0, 0.5, -0.5)):
            want = max(s - k, 0.0) if is_call else max(k - s, 0.0)
            got = bs_greeks_nb(is_call, s, k, tau, vol)
            assert got == (want, d_call if is_call else d_put, 0.0, 0.0)
            assert bs_price_nb(is_call, s, k, tau, vol) == want


def test_python_layer_zero_expiry_and_zero_vol():
    g = black_scholes(["call", "put", "call", "put"], [120.0, 120.0, 100.0, 80.0], 100.0,
                      [0.0, 0.0, 30.0, 30.0], [0.6, 0.6, 0.0, 0.0])
    assert g.price.tolist() == [20.0, 0.0, 0.0, 20.0]
    assert g.delta.tolist() == [1.0, 0.0, 0.5, -1.0]
    assert g.gamma.tolist() == [0.0] * 4 and g.vega.tolist() == [0.0] * 4


def test_spot_or_strike_at_or_below_zero_never_nan():
    # an asset at zero: calls worthless, puts worth the strike (the limit S -> 0)
    for s in (0.0, -5.0):
        assert bs_greeks_nb(True, s, 100.0, 0.5, 0.8) == (0.0, 0.0, 0.0, 0.0)
        assert bs_greeks_nb(False, s, 100.0, 0.5, 0.8) == (100.0, -1.0, 0.0, 0.0)
    # strike at or below zero: always exercised
    for k in (0.0, -5.0):
        assert bs_greeks_nb(True, 100.0, k, 0.5, 0.8) == (100.0 - k, 1.0, 0.0, 0.0)
        assert bs_greeks_nb(False, 100.0, k, 0.5, 0.8) == (0.0, 0.0, 0.0, 0.0)


def test_deep_in_and_out_of_the_money_and_extreme_vols_are_bounded():
    m = np.array([1e-6, 1e-3, 0.2, 1.0, 5.0, 1e3, 1e6])
    tau = np.array([1e-12, 1.0 / 8760.0, 2.0, 100.0])
    vol = np.array([1e-8, 0.05, 3.0, 50.0, 1e6, 1e200])
    c, mm, t, v = (a.ravel() for a in np.meshgrid([True, False], m, tau, vol, indexing="ij"))
    k = np.full(c.shape, 100.0)
    s = mm * k
    price, delta, gamma, vega = _kernel(c, s, k, t, v)
    for a in (price, delta, gamma, vega):
        assert np.all(np.isfinite(a))
    assert np.all(price >= _intrinsic(c, s, k))
    assert np.all(price <= np.where(c, s, k))
    assert np.all(np.where(c, (delta >= 0) & (delta <= 1), (delta >= -1) & (delta <= 0)))
    assert np.all(gamma >= 0) and np.all(vega >= 0)
    # infinite vol: a call is worth the underlying, a put the strike
    huge = v == 1e200
    np.testing.assert_array_equal(price[huge], np.where(c, s, k)[huge])
    # tiny tails stay non-negative and tiny: 1-hour, 5% vol, 20% out of the money
    tail = (t == 1.0 / 8760.0) & (v == 0.05) & (((mm == 0.2) & c) | ((mm == 5.0) & ~c))
    assert tail.sum() == 2 and np.all(price[tail] == 0.0)


# --- monotonicity ------------------------------------------------------------------------

def test_call_rises_with_spot_and_vol_put_falls_with_spot():
    spot = np.linspace(0.3, 3.0, 400) * 100.0
    tol = 4 * EPS * spot[1:]
    for tau in (1.0 / 8760.0, 0.1, 2.0):
        for vol in (0.05, 0.8, 3.0):
            n = spot.shape[0]
            args = (np.full(n, 100.0), np.full(n, tau), np.full(n, vol))
            call = _kernel(np.ones(n, dtype=bool), spot, *args)[0]
            put = _kernel(np.zeros(n, dtype=bool), spot, *args)[0]
            assert np.all(np.diff(call) >= -tol)
            assert np.all(np.diff(put) <= tol)
    vols = np.geomspace(0.01, 5.0, 300)
    n = vols.shape[0]
    for m in (0.5, 1.0, 2.0):
        for is_call in (True, False):
            price = _kernel(np.full(n, is_call), np.full(n, 100.0 * m), np.full(n, 100.0),
                            np.full(n, 0.25), vols)[0]
            assert np.all(np.diff(price) >= -4 * EPS * 100.0 * m)
            assert price[-1] > price[0]


# --- array kernel vs scalar kernel -------------------------------------------------------

def test_array_kernel_equals_scalar_kernel_exactly():
    c, s, k, t, v = _grid()
    edge_s = np.array([0.0, -1.0, 100.0, 100.0, 100.0, 1e-300, 1e300])
    edge = (np.array([True, False, True, False, True, False, True]), edge_s,
            np.array([100.0, 100.0, 100.0, 0.0, 100.0, 100.0, 1.0]),
            np.array([0.5, 0.5, 0.0, 0.5, 0.5, 0.5, 0.5]),
            np.array([0.8, 0.8, 0.8, 0.8, 0.0, 0.8, 0.8]))
    c, s, k, t, v = (np.concatenate([a, b]) for a, b in zip((c, s, k, t, v), edge, strict=True))
    out = _kernel(c, s, k, t, v)
    scalar = np.array([bs_greeks_nb(*args) for args in zip(c, s, k, t, v, strict=True)]).T
    for got, want in zip(out, scalar, strict=True):
        assert np.array_equal(got, want)
    price = np.array([bs_price_nb(*args) for args in zip(c, s, k, t, v, strict=True)])
    assert np.array_equal(price, out[0])


# --- implied vol dynamics ----------------------------------------------------------------

def test_implied_vol_dynamics():
    iv0, s0 = 0.6, 60_000.0
    assert implied_vol_nb(iv0, s0, s0, 0.7, 1.0) == iv0
    assert implied_vol_nb(iv0, s0, s0, 0.0, 1.0) == iv0
    falls = [implied_vol_nb(iv0, s0 * f, s0, 0.5, 1.0) for f in (1.0, 0.9, 0.7, 0.5, 0.3)]
    assert all(b > a for a, b in zip(falls[:-1], falls[1:], strict=True))
    assert abs(falls[2] - iv0 * 0.7**-0.5) < 1e-15
    assert implied_vol_nb(iv0, 2 * s0, s0, 0.5, 1.0) < iv0
    assert implied_vol_nb(iv0, 0.5 * s0, s0, 0.0, 1.0) == iv0  # beta 0: no skew
    for spot in (0.5 * s0, s0, 1.7 * s0):
        base = implied_vol_nb(iv0, spot, s0, 0.8, 1.0)
        for mult in (0.5, 2.0, 3.0):
            assert implied_vol_nb(iv0, spot, s0, 0.8, mult) == pytest.approx(mult * base,
                                                                               rel=1e-15)
    # floored, never zero, negative or NaN
    assert implied_vol_nb(iv0, s0, s0, 0.5, 0.0) == IV_FLOOR
    assert implied_vol_nb(0.0, s0, s0, 0.5, 1.0) == IV_FLOOR
    assert implied_vol_nb(iv0, 1e9 * s0, s0, 2.0, 1.0) == IV_FLOOR
    assert implied_vol_nb(iv0, s0, s0, 0.5, math.nan) == IV_FLOOR
    assert implied_vol_nb(iv0, 0.0, s0, 0.5, 2.0) == 2 * iv0  # spot <= 0: no skew term


# --- USD greeks of a position ------------------------------------------------------------

def test_position_greeks_usd_conventions():
    qty, s, k, days, vol = -3.0, 60_000.0, 55_000.0, 30.0, 0.65
    u = position_greeks_usd(qty, "put", s, k, days, vol)
    g = black_scholes("put", s, k, days, vol)
    assert float(u.value) == qty * float(g.price)
    assert float(u.delta) == pytest.approx(qty * float(g.delta) * s, rel=1e-15)
    assert float(u.gamma) == pytest.approx(0.5 * float(g.gamma) * qty * (0.01 * s) ** 2,
                                           rel=1e-15)
    assert float(u.vega) == pytest.approx(qty * float(g.vega) * 0.01, rel=1e-15)

    def value(spot=s, sigma=vol):
        return qty * float(black_scholes("put", spot, k, days, sigma).price)

    # gamma: the second-order P&L of a 1% move; vega: P&L per vol point; delta: USD exposure
    curv = 0.5 * (value(1.01 * s) + value(0.99 * s) - 2 * value())
    assert float(u.gamma) == pytest.approx(curv, rel=1e-2)
    assert float(u.vega) == pytest.approx(value(sigma=vol + 0.005) - value(sigma=vol - 0.005),
                                          rel=1e-3)
    assert float(u.delta) / 100 == pytest.approx((value(1.0001 * s) - value(0.9999 * s)) / 2
                                                 * 100, rel=1e-3)


def test_position_greeks_broadcast():
    u = position_greeks_usd([[1.0], [-2.0]], ["call", "put", "call"], 100.0,
                            [90.0, 100.0, 110.0], 7.0, 0.5)
    assert u.value.shape == (2, 3)
    np.testing.assert_array_equal(u.value[1], -2.0 * u.value[0])


# --- validation --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"kind": "Call"}, r"kind must be 'call' or 'put'; got 'Call'"),
        ({"kind": ["call", "straddle"]}, r"got 'straddle' at index \(1,\)"),
        ({"kind": 1.0}, r"kind must be 'call' or 'put', or an array of them"),
        ({"spot": -1.0}, r"spot must be finite and >= 0 .*got -1.0"),
        ({"spot": [1.0, np.nan]}, r"spot must be finite.*got nan at index \(1,\)"),
        ({"strike": 0.0}, r"strike must be finite and > 0"),
        ({"expiry_days": [[1.0, -2.0]]}, r"expiry_days must be finite and >= 0.*\(0, 1\)"),
        ({"vol": np.inf}, r"vol must be finite and >= 0"),
        ({"vol": "high"}, r"vol must be a number or an array of numbers"),
        ({"spot": [1.0, 2.0], "strike": [1.0, 2.0, 3.0]}, r"must broadcast to one shape"),
    ],
)
def test_black_scholes_rejects_bad_inputs(bad, match):
    args = {"kind": "call", "spot": 100.0, "strike": 100.0, "expiry_days": 30.0, "vol": 0.5}
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        black_scholes(**args)


def test_position_greeks_rejects_non_finite_qty():
    with pytest.raises(ValueError, match=r"qty must be finite"):
        position_greeks_usd(np.nan, "call", 100.0, 100.0, 30.0, 0.5)


def test_spot_vol_factor_is_the_power_law_and_one_when_degenerate():
    """The per-asset factor that the engine shares between options: ``(S / S0) ** -beta``
    (closed form), exactly 1.0 for beta 0 or a non-positive spot, and with the iv0 and
    multiplier it gives the implied vol of the power law, floored, bit for bit the value
    of ``implied_vol_nb``."""
    rng = np.random.default_rng(3)
    s0 = 60_000.0
    for _ in range(200):
        spot = s0 * math.exp(rng.uniform(-3.0, 3.0))
        beta = rng.uniform(-1.5, 1.5)
        iv0, mult = rng.uniform(0.05, 2.0), rng.uniform(0.2, 4.0)
        fac = spot_vol_factor_nb(spot, s0, beta)
        assert fac == pytest.approx((spot / s0) ** -beta, rel=1e-13)
        vol = implied_vol_from_factor_nb(iv0, fac, mult)
        assert vol == pytest.approx(max(iv0 * (spot / s0) ** -beta * mult, IV_FLOOR),
                                    rel=1e-13)
        assert vol == implied_vol_nb(iv0, spot, s0, beta, mult)
    for spot, beta in ((s0 * 0.3, 0.0), (0.0, 0.7), (-5.0, 0.7)):
        assert spot_vol_factor_nb(spot, s0, beta) == 1.0
    assert spot_vol_factor_nb(s0, 0.0, 0.7) == 1.0
    assert implied_vol_from_factor_nb(1e-6, 1.0, 1.0) == IV_FLOOR
    assert implied_vol_from_factor_nb(0.5, math.nan, 1.0) == IV_FLOOR
