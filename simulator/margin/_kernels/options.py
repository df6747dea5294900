"""Numba kernels of the options in the margin engine (``docs/engine.md``, "Options").

An option position (``pos_kind`` ``POS_CALL`` / ``POS_PUT``, strike in ``pos_entry``) adds
``qty x V`` to its unit's equity, with ``V`` the Black-Scholes value (zero rates) at the
mark, the time left at step ``t`` and the implied vol of the simulation
(:func:`simulator._kernels.black_scholes.implied_vol_nb`: it rises as the mark falls with the
asset's ``spot_vol_beta`` and moves with the scenario's ``vol`` shocks). Its maintenance
is the venue's option rule: Deribit's standard rule per short option, or a risk matrix
over the unit's options and perpetuals on each underlying (which then replaces those
perpetuals' bracket maintenance).

The option part of a unit's slack is not linear in the marks, so the liquidation index
gives an option unit a *box*: a price interval per asset and a window of steps, checked
with rigorous bounds: ``V`` is increasing in the time left and in the vol, and monotone
in the spot at a fixed vol, so its extremes over a box are at the box's corners
(:func:`option_terms_nb`; the box itself is chosen in ``_option_box_kernels.py``). With a
box of zero width and a window of one step the bounds
are the exact values, so one function gives both.

Everything about options that the kernels need travels in one tuple ``oc``
(:func:`simulator.margin.option_setup.option_context`)::

    oc = (pos_opt, asset_opt, ivmult, ivnext, unit_opt, opt_par)

``pos_opt[p] = (years to expiry at the start, implied vol at the start)``,
``asset_opt[a] = (price at the start, spot_vol_beta)``, ``opt_par`` the rules
(``codes.OP_*``, then the ``N_EXT`` extended moves of the risk matrix); members are named
by ``codes.OC_*``.
"""

from __future__ import annotations

from numba import njit

from simulator._kernels.black_scholes import (
    bs_greeks_nb,
    bs_price_nb,
    implied_vol_from_factor_nb,
    implied_vol_nb,
    spot_vol_factor_nb,
)
from simulator._kernels.jit import leaf
from simulator._kernels.option_margin import MIN_VOL, deribit_option_mm_nb
from simulator.margin._kernels.index import bracket_nb
from simulator.margin.codes import (
    N_EXT,
    N_OP,
    OC_ASSET,
    OC_IVMULT,
    OC_IVNEXT,
    OC_PAR,
    OC_POS,
    OP_EXT_WEIGHT,
    OP_N_BUCKETS,
    OP_RANGE,
    OP_RULE,
    OP_STEP_YEARS,
    OP_VOL_DOWN,
    OP_VOL_UP,
    OPTION_RISK_MATRIX,
    POS_CALL,
    POS_LINEAR,
    TIER_CUM,
    TIER_RATE,
)


@njit(cache=True, inline="always")
def tau_years_nb(p, t, oc):  # pragma: no cover - jitted
    """Time to expiry of option ``p`` at step ``t``, in years (<= 0: expired)."""
    return oc[OC_POS][p, 0] - t * oc[OC_PAR][OP_STEP_YEARS]


@njit(cache=True, inline="always")
def iv_nb(p, a, spot, t, oc):  # pragma: no cover - jitted
    """Implied vol of option ``p`` (asset ``a``) at mark ``spot`` and step ``t``."""
    return implied_vol_nb(oc[OC_POS][p, 1], spot, oc[OC_ASSET][a, 0], oc[OC_ASSET][a, 1],
                          oc[OC_IVMULT][t, a])


@njit(cache=True, inline="always")
def value_at_nb(p, a, kind, spot, strike, t, oc):  # pragma: no cover - jitted
    """Value of option ``p`` on asset ``a`` at mark ``spot`` and step ``t``, USD per coin.

    Inlined into its callers: a call would pass ``oc`` (six arrays, 42 words) each time,
    for every option of every unit at the end of every path."""
    return bs_price_nb(kind == POS_CALL, spot, strike, tau_years_nb(p, t, oc),
                       iv_nb(p, a, spot, t, oc))


@njit(cache=True, inline="always")
def spot_factor_nb(a, spot, oc):  # pragma: no cover - jitted
    """The implied vol's spot factor of asset ``a`` at mark ``spot``, shared by all its
    options (:func:`simulator._kernels.black_scholes.spot_vol_factor_nb`)."""
    return spot_vol_factor_nb(spot, oc[OC_ASSET][a, 0], oc[OC_ASSET][a, 1])


@njit(cache=True, inline="always")
def value_factored_nb(p, a, kind, spot, strike, t, factor, oc):  # pragma: no cover - jitted
    """:func:`value_at_nb` given the spot factor of asset ``a`` at ``spot``
    (:func:`spot_factor_nb`): bit for bit the same value, without its log and exp."""
    vol = implied_vol_from_factor_nb(oc[OC_POS][p, 1], factor, oc[OC_IVMULT][t, a])
    return bs_price_nb(kind == POS_CALL, spot, strike, tau_years_nb(p, t, oc), vol)


@njit(cache=True, inline="always")
def delta_at_nb(p, a, kind, spot, strike, t, oc):  # pragma: no cover - jitted
    """Black-Scholes delta of option ``p`` at mark ``spot`` and step ``t``."""
    v, d, g, vg = bs_greeks_nb(kind == POS_CALL, spot, strike, tau_years_nb(p, t, oc),
                               iv_nb(p, a, spot, t, oc))
    return d


@njit(cache=True, inline="always")
def _mult_range_nb(a, t0, t1, oc):  # pragma: no cover - jitted
    """Smallest and largest implied-vol multiplier of asset ``a`` over steps ``t0..t1``."""
    ivmult = oc[OC_IVMULT]
    m_lo = ivmult[t0, a]
    m_hi = m_lo
    ivnext = oc[OC_IVNEXT]
    s = ivnext[t0, a]
    while s <= t1:  # jump from one change of the multiplier to the next
        m = ivmult[s, a]
        if m < m_lo:
            m_lo = m
        if m > m_hi:
            m_hi = m
        s = ivnext[s, a]
    return m_lo, m_hi


@njit(cache=True, inline="always")
def _vol_bound_nb(p, a, lo, hi, mult, upper, oc):  # pragma: no cover - jitted
    """Largest (``upper``) or smallest implied vol of option ``p`` over marks ``[lo, hi]``
    at multiplier ``mult``: the vol falls with the mark when ``spot_vol_beta >= 0``, rises
    with it otherwise."""
    beta = oc[OC_ASSET][a, 1]
    spot = (lo if beta >= 0.0 else hi) if upper else (hi if beta >= 0.0 else lo)
    return implied_vol_nb(oc[OC_POS][p, 1], spot, oc[OC_ASSET][a, 0], beta, mult)


@njit(cache=True, inline="always")
def _value_bound_nb(is_call, lo, hi, strike, tau, vol, upper):  # pragma: no cover - jitted
    """Largest (``upper``: give the largest time left and vol) or smallest (the smallest)
    Black-Scholes value over marks ``[lo, hi]``: a call rises, a put falls with the mark."""
    spot = (hi if is_call else lo) if upper else (lo if is_call else hi)
    return bs_price_nb(is_call, spot, strike, tau, vol)


@njit(cache=True, inline="always")
def _shift_vol_nb(vol, shift):  # pragma: no cover - jitted
    """The risk matrix's vol scenario: up ``vol + shift``; down never below
    ``min(vol, MIN_VOL)`` (non-decreasing in ``vol``, so it maps ranges to ranges)."""
    out = vol + shift
    if shift < 0.0:
        out = max(out, min(vol, MIN_VOL))
    return out


@leaf
def _matrix_loss_ub_nb(u, a, move, shift, ext, lo, hi, t0, t1, qty, pos_asset, pos_entry,
                       pos_kind, unit_pos_start, oc):  # pragma: no cover - jitted
    """Upper bound over the box of unit ``u``'s loss on asset ``a`` in one risk-matrix
    scenario (price ``move``, vol ``shift``); in an extended move (``ext``) the perpetuals
    count only where they offset: ``min(their loss, 0)``."""
    loss = 0.0
    linear = 0.0
    tau_lo = tau_hi = 0.0
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        q = qty[p]
        if q == 0.0 or pos_asset[p] != a:
            continue
        kind = pos_kind[p]
        if kind == POS_LINEAR:
            linear += -q * move
            continue
        if kind < POS_CALL:
            continue
        is_call = kind == POS_CALL
        tau_lo = tau_years_nb(p, t1, oc)
        tau_hi = tau_years_nb(p, t0, oc)
        m_lo, m_hi = _mult_range_nb(a, t0, t1, oc)
        vol_lo = _vol_bound_nb(p, a, lo, hi, m_lo, False, oc)
        vol_hi = _vol_bound_nb(p, a, lo, hi, m_hi, True, oc)
        k = pos_entry[p]
        s_lo = lo * (1.0 + move)
        s_hi = hi * (1.0 + move)
        if q > 0.0:  # loses most from its highest value now to its lowest after
            loss += q * (_value_bound_nb(is_call, lo, hi, k, tau_hi, vol_hi, True)
                         - _value_bound_nb(is_call, s_lo, s_hi, k, tau_lo,
                                           _shift_vol_nb(vol_lo, shift), False))
        else:
            loss += q * (_value_bound_nb(is_call, lo, hi, k, tau_lo, vol_lo, False)
                         - _value_bound_nb(is_call, s_lo, s_hi, k, tau_hi,
                                           _shift_vol_nb(vol_hi, shift), True))
    # the perpetuals lose -q S move in all: linear in S, largest at an end of the box
    linear_ub = max(linear * lo, linear * hi)
    if ext and linear_ub > 0.0:
        return loss
    return loss + linear_ub


@leaf
def _risk_matrix_ub_nb(u, a, lo, hi, t0, t1, qty, pos_asset, pos_entry, pos_kind,
                       unit_pos_start, oc):  # pragma: no cover - jitted
    """Upper bound over the box of the risk-matrix margin of unit ``u`` on asset ``a``:
    ``max(0, worst standard scenario, ext_weight x worst extended move)``."""
    par = oc[OC_PAR]
    n_buckets = int(par[OP_N_BUCKETS])
    rng = par[OP_RANGE]
    margin = 0.0
    for v in range(3):
        shift = par[OP_VOL_UP] if v == 0 else (0.0 if v == 1 else -par[OP_VOL_DOWN])
        for j in range(2 * n_buckets + 1):
            move = rng * (j - n_buckets) / n_buckets
            loss = _matrix_loss_ub_nb(u, a, move, shift, False, lo, hi, t0, t1, qty,
                                      pos_asset, pos_entry, pos_kind, unit_pos_start, oc)
            if loss > margin:
                margin = loss
    w = par[OP_EXT_WEIGHT]
    for e in range(N_EXT):
        loss = w * _matrix_loss_ub_nb(u, a, par[N_OP + e], par[OP_VOL_UP], True, lo, hi, t0,
                                      t1, qty, pos_asset, pos_entry, pos_kind, unit_pos_start,
                                      oc)
        if loss > margin:
            margin = loss
    return margin


def _option_terms(u, lo, hi, t0, t1, mmk_u, qty, pos_asset, pos_entry, pos_kind,
                  unit_pos_start, tiers, oc):  # pragma: no cover - jitted
    """Bounds of the option part of unit ``u``'s equity and maintenance over the box
    ``lo <= M <= hi`` (per asset) and steps ``t0..t1``.

    Returns ``(value_lb, margin_ub)``: a lower bound of ``sum qty V`` and an upper bound of
    the option maintenance, both in USD and exact when ``lo == hi`` and ``t0 == t1``. The
    maintenance is multiplied by ``mmk_u`` (a margin call's ratio while it is armed).
    Under the risk matrix it is ``sum_a RM_a`` over the assets the unit holds options on,
    minus the bracket maintenance of its perpetuals on those assets (which the slack form
    ``lin, const`` holds and the matrix replaces; the bracket maintenance is increasing in
    the mark, so ``lo`` bounds it from below).
    """
    # the arrays are taken out of ``oc`` once (each access to a tuple member costs a
    # reference count), and the loop works on scalars
    pos_opt = oc[OC_POS]
    asset_opt = oc[OC_ASSET]
    ivmult = oc[OC_IVMULT]
    ivnext = oc[OC_IVNEXT]
    par = oc[OC_PAR]
    rule = int(par[OP_RULE])
    step_years = par[OP_STEP_YEARS]
    value = 0.0
    margin = 0.0
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        q = qty[p]
        kind = pos_kind[p]
        if q == 0.0 or kind < POS_CALL:
            continue
        a = pos_asset[p]
        is_call = kind == POS_CALL
        m_lo = ivmult[t0, a]  # the multiplier's range over the window
        m_hi = m_lo
        s = ivnext[t0, a]
        while s <= t1:  # jump from one change of the multiplier to the next
            m_lo = min(m_lo, ivmult[s, a])
            m_hi = max(m_hi, ivmult[s, a])
            s = ivnext[s, a]
        s0 = asset_opt[a, 0]
        beta = asset_opt[a, 1]
        if q > 0.0:  # a long option: its smallest value (least time, vol; worst spot)
            vol = implied_vol_nb(pos_opt[p, 1], hi[a] if beta >= 0.0 else lo[a], s0, beta,
                                 m_lo)
            value += q * bs_price_nb(is_call, lo[a] if is_call else hi[a], pos_entry[p],
                                     pos_opt[p, 0] - t1 * step_years, vol)
        else:  # a short one: its largest value, and its margin at that value
            vol = implied_vol_nb(pos_opt[p, 1], lo[a] if beta >= 0.0 else hi[a], s0, beta,
                                 m_hi)
            v_hi = bs_price_nb(is_call, hi[a] if is_call else lo[a], pos_entry[p],
                               pos_opt[p, 0] - t0 * step_years, vol)
            value += q * v_hi
            if rule != OPTION_RISK_MATRIX:  # increasing in the spot and the option's value
                margin += deribit_option_mm_nb(is_call, q, pos_entry[p], hi[a], v_hi)
    if rule == OPTION_RISK_MATRIX:
        n_assets = lo.shape[0]
        for a in range(n_assets):
            held = False
            for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
                if pos_asset[p] == a and pos_kind[p] >= POS_CALL and qty[p] != 0.0:
                    held = True
                    break
            if not held:
                continue
            margin += _risk_matrix_ub_nb(u, a, lo[a], hi[a], t0, t1, qty, pos_asset, pos_entry,
                                         pos_kind, unit_pos_start, oc)
            for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
                q = qty[p]
                if pos_asset[p] == a and pos_kind[p] == POS_LINEAR and q != 0.0:
                    b = bracket_nb(tiers, a, abs(q) * lo[a])
                    margin -= abs(q) * lo[a] * tiers[a, b, TIER_RATE] - tiers[a, b, TIER_CUM]
    return value, mmk_u * margin


option_terms_nb = leaf(_option_terms)
#: :func:`option_terms_nb` inlined into its caller (the box search calls it in a loop: a
#: call passes every array as 7 words, which costs about as much as the bound itself)
option_terms_inline_nb = njit(cache=True, inline="always")(_option_terms)


@leaf
def option_slack_nb(u, mark, t, mmk_u, qty, pos_asset, pos_entry, pos_kind, unit_pos_start,
                    tiers, oc):  # pragma: no cover - jitted
    """Exact option part of unit ``u``'s margin slack at ``mark`` and step ``t`` (``oc``
    None: a book without options, which never calls it)."""
    if oc is None:  # compiles to this
        return 0.0
    v, m = option_terms_nb(u, mark, mark, t, t, mmk_u, qty, pos_asset, pos_entry, pos_kind,
                           unit_pos_start, tiers, oc)
    return v - m


@leaf
def settle_option_nb(p, mark, qty, pos_unit, pos_asset, pos_entry, pos_kind, usd, on
                     ):  # pragma: no cover - jitted
    """Option ``p`` expires: its intrinsic value at the mark is paid into its unit's USD
    balance and the position closes. Returns its unit, or -1 if it was already closed
    (``on``: ``OptionArrays.options_on``; None, a book without options, which never calls
    it, compiles to a return)."""
    if on is None:
        return -1
    q = qty[p]
    if q == 0.0:
        return -1
    m = mark[pos_asset[p]]
    k = pos_entry[p]
    intrinsic = max(m - k, 0.0) if pos_kind[p] == POS_CALL else max(k - m, 0.0)
    u = pos_unit[p]
    usd[u] += q * intrinsic
    qty[p] = 0.0
    return u


@leaf
def close_option_nb(u, p, c, spot, t, oc, usd, pos_asset, pos_entry, pos_kind
                    ):  # pragma: no cover - jitted
    """Sell ``c`` of option ``p`` (unit ``u``; ``c < 0`` buys a short back) at its value with
    the underlying at ``spot``, step ``t``. Returns ``(underlying notional, value per
    coin)``; ``oc`` None: a book without options, which never calls it."""
    if oc is None:  # compiles to this
        return 0.0, 0.0
    v = value_at_nb(p, pos_asset[p], pos_kind[p], spot, pos_entry[p], t, oc)
    usd[u] += c * v
    return abs(c) * spot, v


@leaf
def option_event_prices_nb(p, a, kind, mark_a, exec_a, strike, t, oc
                           ):  # pragma: no cover - jitted
    """An option's own prices in its event row: its value with the underlying at the mark
    ``mark_a`` and at the execution price ``exec_a`` (``oc`` None: a book without options,
    which never calls it)."""
    if oc is None:  # compiles to this
        return mark_a, exec_a
    return (value_at_nb(p, a, kind, mark_a, strike, t, oc),
            value_at_nb(p, a, kind, exec_a, strike, t, oc))
