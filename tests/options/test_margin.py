"""Option margin rules: Deribit standard margin against worked examples computed by hand,
and the risk-matrix margin against an independent reference (plain loops over scenarios,
Black-Scholes from SciPy's normal CDF)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from simulator.options.margin import (
    DEFAULT_EXTENDED_MOVES,
    DEFAULT_EXTENDED_WEIGHT,
    DEFAULT_N_BUCKETS,
    DEFAULT_RANGE_PCT,
    DEFAULT_VOL_DOWN,
    DEFAULT_VOL_UP,
    MIN_VOL,
    deribit_option_margin,
    deribit_standard_margin,
    risk_matrix_margin,
)

S = 60_000.0
TAU = 30 / 365
IV = 0.6


# --------------------------------------------------------------------------- reference


def bs(kind: str, spot: float, strike: float, tau: float, vol: float) -> float:
    """Black-Scholes price with zero rates (independent of the package's kernel)."""
    if tau <= 0.0:
        return max(spot - strike, 0.0) if kind == "call" else max(strike - spot, 0.0)
    sd = vol * math.sqrt(tau)
    d1 = (math.log(spot / strike) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    if kind == "call":
        return spot * norm.cdf(d1) - strike * norm.cdf(d2)
    return strike * norm.cdf(-d2) - spot * norm.cdf(-d1)


def value(book, spot, vol_shift=0.0, options_only=False):
    """Portfolio value at ``spot`` (perps valued at ``qty * spot``: only changes matter;
    left out with ``options_only``)."""
    total = 0.0
    for kind, qty, strike, tau, iv in book:
        if kind == "perp":
            total += 0.0 if options_only else qty * spot
        else:
            vol = iv + vol_shift
            if vol_shift < 0:
                vol = max(vol, min(iv, MIN_VOL))
            total += qty * bs(kind, spot, strike, tau, vol)
    return total


def reference_margin(book, spot, range_pct=DEFAULT_RANGE_PCT, n=DEFAULT_N_BUCKETS,
                     up=DEFAULT_VOL_UP, down=DEFAULT_VOL_DOWN, ext=DEFAULT_EXTENDED_MOVES,
                     w=DEFAULT_EXTENDED_WEIGHT):
    """Worst scenario loss, with plain loops; returns (margin, losses, extended losses)."""
    now = value(book, spot)
    losses = [[now - value(book, spot * (1 + range_pct * j / n), shift)
               for j in range(-n, n + 1)] for shift in (up, 0.0, -down)]
    # in the extended moves perpetuals only offset: their loss counts as min(loss, 0)
    ext_losses = []
    for m in ext:
        options_loss = value(book, spot, 0.0, True) - value(book, spot * (1 + m), up, True)
        perps_loss = (now - value(book, spot * (1 + m), up)) - options_loss
        ext_losses.append(options_loss + min(perps_loss, 0.0))
    worst = max(max(row) for row in losses)
    worst_ext = w * max(ext_losses) if ext_losses else 0.0
    return max(0.0, worst, worst_ext), np.array(losses), np.array(ext_losses)


def run(book, spot=S, **kw):
    kinds, qty, strike, tau, iv = zip(*book, strict=True)
    return risk_matrix_margin(list(kinds), qty, strike, tau, iv, spot, **kw)


def premium(book, spot=S):
    return sum(q * bs(k, spot, K, t, v) for k, q, K, t, v in book if k != "perp")


STRADDLE = [("call", -1.0, 60_000.0, TAU, IV), ("put", -1.0, 60_000.0, TAU, IV)]
NAKED_CALL = [("call", -1.0, 63_000.0, TAU, IV)]
COVERED_CALL = [("perp", 1.0, math.nan, math.nan, math.nan)] + NAKED_CALL
PUT_SPREAD = [("put", 2.0, 50_000.0, TAU, IV), ("put", -2.0, 55_000.0, TAU, IV)]
DEEP_OTM_PUT = [("put", -1.0, 30_000.0, TAU, IV)]


# --------------------------------------------------------------------------- Deribit standard


def test_short_otm_call_worked_example():
    # BTC 60,000; short 1 call K = 65,000 worth 0.02 BTC = 1,200 USD.
    # MM = (0.075 + 0.02) * 60,000 = 5,700
    # OTM = 65,000 - 60,000 = 5,000; 0.15 - 5,000/60,000 = 0.0667 -> floor 0.10
    # IM = (0.10 + 0.02) * 60,000 = 7,200
    im, mm = deribit_option_margin("call", -1.0, 65_000.0, 60_000.0, 1_200.0)
    assert mm == pytest.approx(5_700.0, rel=1e-12)
    assert im == pytest.approx(7_200.0, rel=1e-12)
    # three contracts: three times as much
    im3, mm3 = deribit_option_margin("call", -3.0, 65_000.0, 60_000.0, 1_200.0)
    assert (im3, mm3) == pytest.approx((21_600.0, 17_100.0), rel=1e-12)


def test_short_itm_call_worked_example():
    # BTC 60,000; short 1 call K = 55,000 worth 6,500 USD: mark = 0.108333, OTM = 0.
    # MM = (0.075 + 0.108333) * 60,000 = 4,500 + 6,500 = 11,000
    # IM = (0.15 + 0.108333) * 60,000 = 9,000 + 6,500 = 15,500
    im, mm = deribit_option_margin("call", -1.0, 55_000.0, 60_000.0, 6_500.0)
    assert (im, mm) == pytest.approx((15_500.0, 11_000.0), rel=1e-12)


def test_short_put_tiny_mark_floor_binds():
    # BTC 60,000; short 2 puts K = 50,000 worth 30 USD: mark = 0.0005.
    # MM = max(0.075, 0.075 * 0.0005) + 0.0005 = 0.0755 -> 0.0755 * 60,000 * 2 = 9,060
    # OTM = 60,000 - 50,000 = 10,000; 0.15 - 0.1667 < 0.10 -> IM floors at 0.10:
    # IM = max(0.10 + 0.0005, 0.0755) = 0.1005 -> 0.1005 * 60,000 * 2 = 12,060
    im, mm = deribit_option_margin("put", -2.0, 50_000.0, 60_000.0, 30.0)
    assert mm == pytest.approx(9_060.0, rel=1e-12)
    assert im == pytest.approx(12_060.0, rel=1e-12)


def test_deep_otm_call_im_floors_at_ten_percent():
    # BTC 60,000; short 1 call K = 120,000 worth 6 USD (mark 0.0001); OTM/S = 1.
    # IM = (max(0.15 - 1, 0.10) + 0.0001) * 60,000 = 6,006; MM = 0.0751 * 60,000 = 4,506
    im, mm = deribit_option_margin("call", -1.0, 120_000.0, 60_000.0, 6.0)
    assert (im, mm) == pytest.approx((6_006.0, 4_506.0), rel=1e-12)


def test_short_put_mark_above_one_mm_binds_im():
    # BTC crashed to 20,000; short 1 put K = 60,000 worth 40,500 USD: mark = 2.025.
    # MM = max(0.075, 0.075 * 2.025) + 2.025 = 0.151875 + 2.025 = 2.176875 -> 43,537.5
    # IM = max(max(0.15 - 0, 0.10) + 2.025, MM) = max(2.175, 2.176875) = MM -> 43,537.5
    im, mm = deribit_option_margin("put", -1.0, 60_000.0, 20_000.0, 40_500.0)
    assert mm == pytest.approx(43_537.5, rel=1e-12)
    assert im == pytest.approx(43_537.5, rel=1e-12)


@pytest.mark.parametrize("kind", ["call", "put", "CALL", 1, 2])
@pytest.mark.parametrize("qty", [0.0, 1.0, 25.0])
def test_long_options_need_no_margin(kind, qty):
    assert deribit_option_margin(kind, qty, 65_000.0, 60_000.0, 1_200.0) == (0.0, 0.0)


def test_book_of_positions_matches_one_at_a_time():
    kinds = ["call", "put", "perp", "put", "call"]
    qty = [-1.0, -2.0, 5.0, 3.0, -3.0]
    strike = [65_000.0, 50_000.0, math.nan, 55_000.0, 55_000.0]
    price = [1_200.0, 30.0, math.nan, 800.0, 6_500.0]
    im, mm = deribit_standard_margin(kinds, qty, strike, S, price)
    for i, k in enumerate(kinds):
        want = (0.0, 0.0) if k == "perp" else deribit_option_margin(k, qty[i], strike[i], S,
                                                                     price[i])
        assert (im[i], mm[i]) == pytest.approx(want, rel=1e-12)
    assert im.sum() == pytest.approx(7_200.0 + 12_060.0 + 0.0 + 0.0 + 3 * 15_500.0)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("perp", -1.0, 65_000.0, S, 1_200.0), "kind = 'perp'"),
        (("straddle", -1.0, 65_000.0, S, 1_200.0), "valid: 'call'"),
        (("call", -1.0, -5.0, S, 1_200.0), "strike = -5.0: must be > 0"),
        (("call", -1.0, 65_000.0, 0.0, 1_200.0), "spot = 0.0: must be > 0"),
        (("put", -1.0, 65_000.0, S, -1.0), "option_price_usd = -1.0: must be >= 0"),
        (("put", math.nan, 65_000.0, S, 1.0), "qty = nan: must be finite"),
        (("put", "x", 65_000.0, S, 1.0), "qty = 'x': must be a number"),
    ],
)
def test_standard_margin_errors_name_the_bad_argument(args, match):
    with pytest.raises(ValueError, match=match):
        deribit_option_margin(*args)


# --------------------------------------------------------------------------- risk matrix


@pytest.mark.parametrize(
    "book",
    [STRADDLE, COVERED_CALL, PUT_SPREAD, NAKED_CALL, DEEP_OTM_PUT],
    ids=["short-straddle", "covered-call", "put-spread", "naked-call", "deep-otm-put"],
)
def test_risk_matrix_equals_independent_worst_loss(book):
    res = run(book)
    margin, losses, ext_losses = reference_margin(book, S)
    assert res.losses.shape == (3, 2 * DEFAULT_N_BUCKETS + 1)
    np.testing.assert_allclose(res.losses, losses, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(res.extended_losses, ext_losses, rtol=1e-9, atol=1e-6)
    assert res.margin == pytest.approx(margin, rel=1e-9)
    np.testing.assert_allclose(res.moves, np.linspace(-0.16, 0.16, 17), atol=1e-15)
    np.testing.assert_array_equal(res.vol_shifts, [0.30, 0.0, -0.15])


def test_risk_matrix_other_parameters_and_expired_options():
    book = STRADDLE + [("perp", -0.5, 0.0, 0.0, 0.0), ("call", 1.0, 58_000.0, 0.0, 0.5)]
    kw = dict(range_pct=0.10, n_buckets=3, vol_up=0.2, vol_down=0.7,
              extended_moves=(-0.5, 2.0), extended_weight=0.5)
    res = run(book, **kw)
    margin, losses, ext_losses = reference_margin(
        book, S, range_pct=0.10, n=3, up=0.2, down=0.7, ext=(-0.5, 2.0), w=0.5)
    np.testing.assert_allclose(res.losses, losses, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(res.extended_losses, ext_losses, rtol=1e-9, atol=1e-6)
    assert res.margin == pytest.approx(margin, rel=1e-9)


def test_perpetual_alone_worked_numbers():
    # long 2 BTC perp at 60,000: standard worst = 2 * 0.16 * 60,000 = 19,200 (move -16%,
    # the same for every vol); in the extended moves a perpetual only offsets options'
    # losses (0.35 x 66% would ask 23% of the notional), so the -16% move is the margin.
    res = run([("perp", 2.0, 0.0, 0.0, 0.0)])
    assert res.losses.max() == pytest.approx(19_200.0, rel=1e-12)
    assert res.extended_losses.max() <= 0.0
    assert res.margin == pytest.approx(19_200.0, rel=1e-12)
    assert res.binding == "vol up, move -16%"


@pytest.mark.parametrize("strike", [55_000.0, 60_000.0, 63_000.0])
def test_covered_call_needs_less_than_naked_call(strike):
    naked = [("call", -1.0, strike, TAU, IV)]
    covered = [("perp", 1.0, 0.0, 0.0, 0.0)] + naked
    # with the extended table the naked call's +500% move dominates (about 103,000 USD
    # against about 12,000 for the covered call)
    assert 0.0 < run(covered).margin < run(naked).margin
    standard_covered = run(covered, extended_weight=0.0).margin
    standard_naked = run(naked, extended_weight=0.0).margin
    if strike <= S:
        # in / at the money, the perp hedges most of the call's +16% loss
        assert standard_covered < standard_naked
    else:
        # out of the money the +-16% grid alone does not make it so: the covered call's
        # -16% loss (9,600 on the perp less the short call's gain) exceeds the naked
        # call's +16% loss with vol up (8,266 against 7,720 USD here)
        assert standard_covered > standard_naked


def test_put_spread_margin_at_most_strike_difference():
    res = run(PUT_SPREAD)
    assert 0.0 < res.margin <= (55_000.0 - 50_000.0) * 2.0
    # the worst case sits in the extended -66% move, where both puts are deep in the money
    wide = run(PUT_SPREAD, extended_weight=1.0)
    assert wide.margin <= 10_000.0
    assert wide.margin > 0.9 * (10_000.0 - 2 * (bs("put", S, 55_000.0, TAU, IV)
                                                 - bs("put", S, 50_000.0, TAU, IV)))


def test_empty_portfolio_needs_nothing():
    res = risk_matrix_margin([], [], [], [], [], S)
    assert res.margin == 0.0
    assert res.binding == "none"
    np.testing.assert_array_equal(res.losses, 0.0)


def test_long_options_need_at_most_their_premium():
    book = [("call", 1.0, 65_000.0, TAU, IV), ("put", 2.0, 50_000.0, 0.5, 0.8),
            ("call", 3.0, 60_000.0, 0.01, 0.4)]
    res = run(book)
    assert 0.0 <= res.margin <= premium(book)
    # with a very wide range and weight 1 the worst loss approaches (never exceeds) it
    wide = run(book, range_pct=0.99, extended_moves=(), extended_weight=1.0)
    assert wide.margin <= premium(book) * (1 + 1e-12)


def test_extended_moves_bind_for_short_deep_otm_put():
    # short 1 put K = 30,000 (half the spot), 30 days, IV 60%: the +-16% grid hardly
    # touches it; the extended -66% move (spot 20,400) puts it 9,600 in the money.
    res = run(DEEP_OTM_PUT)
    standard = res.losses.max()
    e = list(DEFAULT_EXTENDED_MOVES).index(-0.66)
    ext = res.extended_losses[e]
    assert ext >= 9_600.0 + premium(DEEP_OTM_PUT)  # intrinsic less the premium received
    assert res.margin == pytest.approx(0.35 * ext, rel=1e-12)
    assert res.margin > 10 * standard
    assert res.binding == "extended, move -66% (x0.35)"
    assert run(DEEP_OTM_PUT, extended_weight=0.0).margin == pytest.approx(standard)


def test_finer_grid_never_lowers_the_margin():
    for book in (STRADDLE, COVERED_CALL, PUT_SPREAD):
        coarse = run(book, n_buckets=4, extended_weight=0.0)  # Deribit's 9 moves
        fine = run(book, n_buckets=8, extended_weight=0.0)
        assert fine.margin >= coarse.margin - 1e-9
        np.testing.assert_allclose(fine.losses[:, ::2], coarse.losses, rtol=1e-12)


def test_short_straddle_worst_is_a_full_move_with_vol_up():
    res = run(STRADDLE, extended_weight=0.0)
    assert res.binding == "vol up, move +16%"
    assert res.margin == pytest.approx(res.losses[0, -1])
    # short vega and short gamma: with vol up every move loses, and beyond +-4% each
    # bucket farther out loses more
    row = res.losses[0]
    assert (row > 0).all()
    assert (np.diff(row[DEFAULT_N_BUCKETS + 2:]) > 0).all()
    assert (np.diff(row[:DEFAULT_N_BUCKETS - 2]) < 0).all()


def test_vol_down_is_floored():
    # a long call at IV 5% with a 15-point vol-down shift prices at the 1-point floor
    book = [("call", 1.0, 60_000.0, TAU, 0.05)]
    res = run(book, extended_moves=())
    want = bs("call", S, 60_000.0, TAU, 0.05) - bs("call", S, 60_000.0, TAU, MIN_VOL)
    assert res.losses[2, DEFAULT_N_BUCKETS] == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(kind=["call", "fly"]), r"kind\[1\] = 'fly'"),
        (dict(qty=[-1.0]), "qty: has shape"),
        (dict(strike=[60_000.0, -1.0]), r"strike\[1\] \(a put\) = -1.0: must be > 0"),
        (dict(tau_years=[-0.1, TAU]), r"tau_years\[0\] \(a call\) = -0.1: must be >= 0"),
        (dict(iv=[0.0, IV]), r"iv\[0\] \(a call\) = 0.0: must be > 0"),
        (dict(spot=-1.0), "spot = -1.0"),
        (dict(range_pct=1.0), "range_pct = 1.0: must be < 1"),
        (dict(n_buckets=0), "n_buckets = 0"),
        (dict(n_buckets=2.0), "n_buckets = 2.0"),
        (dict(vol_up=-0.1), "vol_up = -0.1"),
        (dict(extended_moves=(-1.0,)), r"extended_moves\[0\] = -1.0: must be > -1"),
        (dict(extended_weight=1.5), "extended_weight = 1.5"),
    ],
)
def test_risk_matrix_errors_name_the_bad_argument(change, match):
    args = dict(kind=["call", "put"], qty=[-1.0, -1.0], strike=[60_000.0, 60_000.0],
                tau_years=[TAU, TAU], iv=[IV, IV], spot=S)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        risk_matrix_margin(**args)
