"""Numba kernels that give an option unit its *box* in the liquidation index
(``docs/engine.md``, "Option boxes").

A box is a price interval per asset and a window of steps in which the rigorous lower
bound of the unit's slack (:func:`._option_kernels.option_terms_nb`) stays positive; the
unit is checked again only when a mark leaves the interval or the window ends. The bound
makes a box safe whatever its size; the *guess* of the size only decides how often the
unit is checked and how many bounds a check costs. It is steered by the slack's slope
and curvature in each asset (:func:`option_steer_nb`: Black-Scholes delta and gamma with
the implied vol's own dependence on the spot under the standard rule, central
differences under the risk matrix), so a short-gamma unit gets a box that its curvature
does not break at the first try.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from simulator._kernels.black_scholes import bs_greeks_nb
from simulator._kernels.jit import leaf
from simulator._kernels.option_margin import MM_BASE, deribit_option_mm_nb
from simulator.margin._kernels.index import (
    BRACKET_MARGIN,
    SLACK_MARGIN,
    bracket_interval_nb,
    bracket_nb,
    heap_push_nb,
)
from simulator.margin._kernels.options import (
    iv_nb,
    option_slack_nb,
    option_terms_inline_nb,
    tau_years_nb,
)
from simulator.margin.codes import (
    N_BOX_WORK,
    OC_ASSET,
    OC_IVMULT,
    OC_IVNEXT,
    OC_PAR,
    OP_MAX_WINDOW,
    OP_RULE,
    OPTION_RISK_MATRIX,
    POS_CALL,
    POS_LINEAR,
    TIER_CAP,
    TIER_CUM,
    TIER_RATE,
)

#: shrinking tries of a box before an option unit is left to exact checks every round
BOX_TRIES = 6
#: the slope that sizes a box is never taken below this fraction of the gross exposure
SLOPE_FLOOR = 0.1
#: the first box spends this fraction of the slack under the quadratic guess
FIRST_SHRINK = 0.9
#: how much further a box reaches on the side where the slack rises (at most)
FAVOURABLE = 4.0
#: the same when the bound splits the box at the mark (standard rule)
FAVOURABLE_SPLIT = 4.0
#: the bound splits the box at the mark on at most this many assets (2 ** n sub-boxes)
MAX_SPLIT_ASSETS = 3
#: relative step of the central differences that steer a box under the risk matrix
SLOPE_STEP = 1e-3
#: a box never reaches below this fraction of the mark
MIN_BOX_FLOOR = 0.05
#: after a failed box, the next one aims to spend this share of the slack
NEWTON_AIM = 0.85
#: bounds tried to widen a box once one holds (doubling, then bisecting)
GROW_TRIES = 0
#: the same for the boxes that are the same on every path (computed once per index)
STATIC_GROW_TRIES = 8
#: no box narrower than this relative move is tried (the unit is checked every round)
MIN_BOX_WIDTH = 1e-3

# rows of the scratch array ``work`` (N_WORK, A) of the box kernels
(_SLOPE, _CURV, _UP, _DOWN, _PESS, _GPOS, _GNEG, _BLO, _BHI, _HELD, _SLO, _SHI, _BRLO,
 _BRHI) = range(N_BOX_WORK)
#: rows of the box kernels' scratch array
N_WORK = N_BOX_WORK


@njit(cache=True, inline="always")
def _clear_nb(work):  # pragma: no cover - jitted
    for a in range(work.shape[1]):
        work[_SLOPE, a] = 0.0
        work[_CURV, a] = 0.0
        work[_PESS, a] = 0.0
        work[_GPOS, a] = 0.0
        work[_GNEG, a] = 0.0


@njit(cache=True, inline="always")
def _steer_option_nb(q, is_call, a, spot, vol, v, delta, gamma, vega, beta, mmk_u, work
                     ):  # pragma: no cover - jitted
    """Add one option's slope, curvature and bound terms to ``work`` (standard rule)."""
    d_total = delta - vega * beta * vol / spot if spot > 0.0 else delta
    slope = q * d_total
    curv = q * gamma
    if q < 0.0:  # the maintenance of a short option moves with the spot and value
        ratio = 1.0 + MM_BASE if (not is_call and v > spot) else 1.0
        base = 0.0 if (not is_call and v > spot) else MM_BASE
        slope -= mmk_u * -q * (base + ratio * d_total)
        curv -= mmk_u * -q * ratio * gamma
    work[_SLOPE, a] += slope * spot
    work[_CURV, a] += curv * spot * spot
    if slope > 0.0:  # the bound takes each position at its own worst end
        work[_GPOS, a] += slope * spot
    else:
        work[_GNEG, a] -= slope * spot
    # the bound pairs each spot with the worst vol of the box: it loses about
    # vega x |d iv / d ln S| per relative width more than the slack itself
    weight = abs(q) * (1.0 + mmk_u) if q < 0.0 else abs(q)
    work[_PESS, a] += weight * vega * abs(beta) * vol


@leaf
def option_steer_nb(u, mark, t, mmk_u, slack_opt, qty, pos_asset, pos_entry, pos_kind,
                    unit_pos_start, tiers, oc, work):  # pragma: no cover - jitted
    """Slope and curvature of the option part of unit ``u``'s slack per relative move of
    each mark: ``work[0, a] = S dS/dS_a`` and ``work[1, a] = S^2 d2S/dS_a^2`` (USD).

    Under the standard rule they come from each option's Black-Scholes delta, gamma and
    vega at the mark, with the implied vol's slope in the spot
    (``d iv / dS = -spot_vol_beta iv / S``) in the delta, and Deribit's maintenance
    ``|q| (0.075 S + V)`` (calls; puts ``|q| (max(0.075 S, 0.075 V) + V)``) differentiated
    alongside. Under the risk matrix they are central differences of the exact option
    slack (``slack_opt`` at the mark) with a relative step ``SLOPE_STEP``. They only steer
    the box; its safety rests on the bound.
    """
    n_assets = mark.shape[0]
    _clear_nb(work)
    if int(oc[OC_PAR][OP_RULE]) == OPTION_RISK_MATRIX:
        for a in range(n_assets):
            held = False
            for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
                if pos_asset[p] == a and pos_kind[p] >= POS_CALL and qty[p] != 0.0:
                    held = True
            if not held:
                continue
            m0 = mark[a]
            h = SLOPE_STEP * m0
            mark[a] = m0 + h  # probed in place, restored exactly below
            s_up = option_slack_nb(u, mark, t, mmk_u, qty, pos_asset, pos_entry, pos_kind,
                                   unit_pos_start, tiers, oc)
            mark[a] = m0 - h
            s_down = option_slack_nb(u, mark, t, mmk_u, qty, pos_asset, pos_entry, pos_kind,
                                     unit_pos_start, tiers, oc)
            mark[a] = m0
            work[_SLOPE, a] = (s_up - s_down) / (2.0 * SLOPE_STEP)
            work[_CURV, a] = (s_up + s_down - 2.0 * slack_opt) / (SLOPE_STEP * SLOPE_STEP)
            if work[_SLOPE, a] > 0.0:
                work[_GPOS, a] = work[_SLOPE, a]
            else:
                work[_GNEG, a] = -work[_SLOPE, a]
        return 0
    asset_opt = oc[OC_ASSET]
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        q = qty[p]
        if q == 0.0 or pos_kind[p] < POS_CALL:
            continue
        a = pos_asset[p]
        spot = mark[a]
        is_call = pos_kind[p] == POS_CALL
        vol = iv_nb(p, a, spot, t, oc)
        v, delta, gamma, vega = bs_greeks_nb(is_call, spot, pos_entry[p],
                                             tau_years_nb(p, t, oc), vol)
        _steer_option_nb(q, is_call, a, spot, vol, v, delta, gamma, vega, asset_opt[a, 1],
                         mmk_u, work)
    return 0


@leaf
def option_check_nb(u, mark, t, mmk_u, qty, pos_asset, pos_entry, pos_kind, unit_pos_start,
                    tiers, oc, work):  # pragma: no cover - jitted
    """Exact option part of unit ``u``'s slack at ``mark`` and step ``t``, equal bit for
    bit to :func:`option_slack_nb`; under the standard rule it also leaves the box's
    steering in ``work`` (:func:`option_steer_nb`), from the same Black-Scholes pass
    (``bs_greeks_nb``'s price is ``bs_price_nb``'s). Returns ``(slack, steered)``."""
    if oc is None:  # a book without options (``OptionArrays.oc_or_none``): compiles to this
        return 0.0, False
    if int(oc[OC_PAR][OP_RULE]) == OPTION_RISK_MATRIX:
        return option_slack_nb(u, mark, t, mmk_u, qty, pos_asset, pos_entry, pos_kind,
                               unit_pos_start, tiers, oc), False
    _clear_nb(work)
    asset_opt = oc[OC_ASSET]
    value = 0.0
    margin = 0.0
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        q = qty[p]
        kind = pos_kind[p]
        if q == 0.0 or kind < POS_CALL:
            continue
        a = pos_asset[p]
        spot = mark[a]
        is_call = kind == POS_CALL
        vol = iv_nb(p, a, spot, t, oc)
        v, delta, gamma, vega = bs_greeks_nb(is_call, spot, pos_entry[p],
                                             tau_years_nb(p, t, oc), vol)
        value += q * v
        if q < 0.0:
            margin += deribit_option_mm_nb(is_call, q, pos_entry[p], spot, v)
        _steer_option_nb(q, is_call, a, spot, vol, v, delta, gamma, vega, asset_opt[a, 1],
                         mmk_u, work)
    return value - mmk_u * margin, True


@njit(cache=True, inline="always")
def _box_guess_nb(u, mark, t, steps, slack, lin, const, sigma, mmk_u, qty, pos_asset, pos_kind,
                  pos_entry, unit_pos_start, tiers, oc, work, steered
                  ):  # pragma: no cover - jitted
    """The quadratic guess of :func:`_option_box`: the window ``t..t1`` (cut before the next
    harmful change of an implied-vol multiplier; ``t_full`` uncut), the loss per unit of
    width ``w1`` and its curvature ``w2``, the largest ``sigma`` of the assets, the scale of
    the slack and whether the unit holds a long option; per asset the stretch of each side
    (``work[_UP]``, ``work[_DOWN]``), whether it holds options there (``work[_HELD]``) and
    its bracket interval (``work[_BRLO]``, ``work[_BRHI]``). Returns ``(t1, t_full, w1,
    w2, max_sigma, scale, has_long)``."""
    n_assets = mark.shape[0]
    ivnext = oc[OC_IVNEXT]
    par = oc[OC_PAR]
    t1 = t + int(par[OP_MAX_WINDOW])
    if t1 > steps:
        t1 = steps
    t_full = t1
    w1 = 0.0
    w2 = 0.0
    max_sigma = 0.0
    scale = abs(const[u])
    has_long = False
    ivmult = oc[OC_IVMULT]
    standard = int(par[OP_RULE]) != OPTION_RISK_MATRIX
    slack_opt = slack - const[u]
    for a in range(n_assets):
        slack_opt -= lin[u, a] * mark[a]
    if not steered:  # (an exact check may have left the steering in ``work``)
        option_steer_nb(u, mark, t, mmk_u, slack_opt, qty, pos_asset, pos_entry, pos_kind,
                        unit_pos_start, tiers, oc, work)
    for a in range(n_assets):
        gross = abs(lin[u, a])
        held = False
        long_a = False
        short_a = False
        for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
            if pos_asset[p] == a and pos_kind[p] >= POS_CALL and qty[p] != 0.0:
                gross += abs(qty[p])
                held = True
                if qty[p] > 0.0:
                    long_a = True
                else:
                    short_a = True
        if held:
            has_long = has_long or long_a
            # the window ends before the next change of the implied-vol multiplier, unless
            # (standard rule) the change can only help: a fall for a unit only short
            # options on the asset, a rise for one only long (the bounds take the range)
            m0 = ivmult[t, a]
            tc = ivnext[t, a]
            while standard and tc <= t1 and ((not long_a and ivmult[tc, a] <= m0)
                                             or (not short_a and ivmult[tc, a] >= m0)):
                tc = ivnext[tc, a]
            if tc - 1 < t1:
                t1 = tc - 1
        scale += gross * mark[a]
        # the bound takes every position at its own worst end of the box: it loses
        # ``g_pos`` per relative move down (the positions that gain as the mark rises)
        # and ``g_neg`` per relative move up, so the side where it loses less reaches
        # further (up to FAVOURABLE times)
        lin_usd = lin[u, a] * mark[a]
        g_pos = work[_GPOS, a] + (lin_usd if lin_usd > 0.0 else 0.0)
        g_neg = work[_GNEG, a] + (-lin_usd if lin_usd < 0.0 else 0.0)
        up_f = 1.0
        down_f = 1.0
        work[_HELD, a] = 1.0 if held else 0.0
        work[_BRLO, a], work[_BRHI, a] = bracket_interval_nb(u, a, mark[a], qty, pos_asset,
                                                             pos_kind, unit_pos_start, tiers)
        if held and standard:
            # the bound splits the box at the mark (``_box_bound_nb``): each half loses on
            # its own side only, so the sides are sized to lose alike
            if g_neg > g_pos:
                down_f = min(FAVOURABLE_SPLIT, g_neg / g_pos) if g_pos > 0.0 else \
                    FAVOURABLE_SPLIT
            elif g_pos > g_neg:
                up_f = min(FAVOURABLE_SPLIT, g_pos / g_neg) if g_neg > 0.0 else \
                    FAVOURABLE_SPLIT
            linear = max(g_pos * down_f, g_neg * up_f, SLOPE_FLOOR * gross * mark[a])
            pess = max(up_f, down_f) * work[_PESS, a]
        else:
            if held:
                if g_neg > g_pos:
                    down_f = min(FAVOURABLE, np.sqrt(g_neg / g_pos)) if g_pos > 0.0 else \
                        FAVOURABLE
                elif g_pos > g_neg:
                    up_f = min(FAVOURABLE, np.sqrt(g_pos / g_neg)) if g_neg > 0.0 else \
                        FAVOURABLE
            # the vol pessimism grows with the whole width of the box, both sides
            linear = max(g_pos * down_f + g_neg * up_f, SLOPE_FLOOR * gross * mark[a])
            pess = (up_f + down_f) * work[_PESS, a]
        work[_UP, a] = up_f
        work[_DOWN, a] = down_f
        w1 += (linear + pess) * sigma[a]
        concavity = -work[_CURV, a] if work[_CURV, a] < 0.0 else 0.0
        w2 += concavity * (sigma[a] * max(up_f, down_f)) ** 2
        if sigma[a] > max_sigma:
            max_sigma = sigma[a]
    if t1 < t:
        t1 = t
    return t1, t_full, w1, w2, max_sigma, scale, has_long


def _option_box(u, mark, t, steps, slack, lin, const, sigma, mmk_u, qty, pos_asset, pos_kind,
                  pos_entry, unit_pos_start, tiers, oc, lo, hi, work, span_changes, steered,
                  grow_tries):  # pragma: no cover - jitted
    """Find a box around ``mark`` (written to ``lo, hi``; ``work`` (N_WORK, A) is scratch) and
    a last step ``t1 >= t`` in which option unit ``u`` stays safe; ``slack`` is its
    exact slack, > 0.

    The guess is quadratic: per asset the slack's slope ``g_a`` (``lin M`` plus the option
    part, never below ``SLOPE_FLOOR`` of the gross exposure) and its concavity ``c_a``
    (:func:`option_steer_nb`) give a loss ``k W1 + k^2 W2 / 2`` for moves ``k sigma_a``
    (``W1 = sum g_a sigma_a``, ``W2 = sum c_a sigma_a^2``), and the first box spends
    ``FIRST_SHRINK`` of the slack. The window runs up to the next change of an
    implied-vol multiplier (``ivnext``) and at most ``OP_MAX_WINDOW`` steps. On an asset
    without options the box is one-sided, like a linear band (the slack is linear there);
    on an asset with options it reaches up to ``FAVOURABLE`` times further on the side
    where the slack rises, less where the curvature turns it down again. Until the
    rigorous lower bound of the slack over box and window is positive, the window halves
    (when the unit holds a long option, whose value falls with time, and the box alone
    holds over the current step) or the box shrinks, by the ratio of the slack to what
    the last box lost (between 2 and 10 times). Each box is also cut where a perpetual
    changes bracket, except on an asset with options under the standard rule, where the
    bound takes the change (:func:`_bracket_excess_nb`).

    Returns
    -------
    int
        ``t1``, or -1 when no box was found.
    """
    n_assets = mark.shape[0]
    t1, t_full, w1, w2, max_sigma, scale, has_long = _box_guess_nb(
        u, mark, t, steps, slack, lin, const, sigma, mmk_u, qty, pos_asset, pos_kind,
        pos_entry, unit_pos_start, tiers, oc, work, steered)
    target = SLACK_MARGIN * scale
    if not (slack > target and np.isfinite(slack) and w1 > 0.0 and np.isfinite(w1)
            and np.isfinite(w2)):
        return -1
    shrink = FIRST_SHRINK
    t_cut = t1
    if span_changes:  # first try a window across the vol changes (the bounds take them)
        t1 = t_full
    k_ok = 0.0  # the widest box found so far (0: none yet), kept in work[_BLO], work[_BHI]
    k_fail = np.inf  # the narrowest box that failed after one was found
    tries = 0
    while True:
        tries += 1
        if k_ok == 0.0:
            if tries > BOX_TRIES:
                return -1
            spend = shrink * slack  # k W1 + k^2 W2 / 2 = spend, in its stable form
            k = 2.0 * spend / (w1 + np.sqrt(w1 * w1 + 2.0 * w2 * spend))
            if k * max_sigma < MIN_BOX_WIDTH:
                return -1  # too close to its maintenance for a useful box: checked every round
        else:  # grow the box found: double it until a bound fails, then bisect
            if tries > grow_tries:
                break
            k = 2.0 * k_ok if k_fail == np.inf else np.sqrt(k_ok * k_fail)
        bound = _box_bound_nb(u, k, mark, t, t1, lin, const, sigma, mmk_u, qty, pos_asset,
                              pos_kind, pos_entry, unit_pos_start, tiers, oc, lo, hi, work)
        if bound > target:
            if k_ok == 0.0:
                tries = 0  # the growth has its own budget
            k_ok = k
            for a in range(n_assets):
                work[_BLO, a] = lo[a]
                work[_BHI, a] = hi[a]
            continue
        if k_ok > 0.0:
            k_fail = k
            continue
        if t1 > t_cut:  # the window across a vol change failed: back to the cut one
            t1 = t_cut
            continue
        if t1 > t and has_long:
            # only a long option's value falls with time: the box or the window? The box
            # alone over this step decides
            if _box_bound_nb(u, k, mark, t, t, lin, const, sigma, mmk_u, qty, pos_asset,
                             pos_kind, pos_entry, unit_pos_start, tiers, oc, lo, hi,
                             work) > target:
                t1 = t + (t1 - t) // 2
                continue
        # the slack lost over the box grows about linearly with its width: aim at
        # NEWTON_AIM of the slack, but shrink at least by half and at most tenfold
        lost = slack - bound
        shrink *= min(max(NEWTON_AIM * slack / lost, 0.1), 0.5)
    for a in range(n_assets):
        lo[a] = work[_BLO, a]
        hi[a] = work[_BHI, a]
    return t1


option_box_nb = leaf(_option_box)


@leaf  # called twice by the box search: inlined, it cost 50 s of compilation
def _box_bound_nb(u, k, mark, t, t1, lin, const, sigma, mmk_u, qty, pos_asset, pos_kind,
                  pos_entry, unit_pos_start, tiers, oc, lo, hi, work):  # pragma: no cover
    """Write the box of relative width ``k sigma`` (stretched by ``work[_UP]``,
    ``work[_DOWN]``) around ``mark`` to ``lo, hi`` and return the rigorous lower bound of
    unit ``u``'s slack over it and steps ``t..t1``."""
    n_assets = mark.shape[0]
    standard = int(oc[OC_PAR][OP_RULE]) != OPTION_RISK_MATRIX
    for a in range(n_assets):
        band = k * sigma[a]  # a relative move
        la = lin[u, a]
        up_f = work[_UP, a]
        down_f = work[_DOWN, a]
        if up_f != 1.0 or down_f != 1.0 or work[_HELD, a] != 0.0:
            lo[a] = mark[a] * max(1.0 - band * down_f, MIN_BOX_FLOOR)
            hi[a] = mark[a] * (1.0 + band * up_f)
        else:  # linear in this asset: only the adverse side binds
            lo[a] = mark[a] * (1.0 - band) if la > 0.0 else 0.0
            hi[a] = mark[a] * (1.0 + band) if la < 0.0 else np.inf
        if standard and work[_HELD, a] != 0.0:
            continue  # the bound takes the brackets' change over the box (_bracket_excess_nb)
        b_lo = work[_BRLO, a]  # (bracket_interval_nb, computed once per box)
        b_hi = work[_BRHI, a]
        if b_lo > 0.0 and b_lo * (1.0 + BRACKET_MARGIN) > lo[a]:
            lo[a] = b_lo * (1.0 + BRACKET_MARGIN)
        if b_hi < np.inf and b_hi * (1.0 - BRACKET_MARGIN) < hi[a]:
            hi[a] = b_hi * (1.0 - BRACKET_MARGIN)
    if not standard:
        return _sub_box_bound_nb(u, lo, hi, t, t1, lin, const, mmk_u, qty, pos_asset,
                                 pos_kind, pos_entry, unit_pos_start, tiers, oc)
    # standard rule: the box split at the mark on every asset the unit holds options on;
    # the smallest bound of the sub-boxes bounds the slack over their union, the box
    held_mask = 0
    n_held = 0
    for a in range(n_assets):
        if work[_HELD, a] != 0.0 and n_held < MAX_SPLIT_ASSETS:
            held_mask |= 1 << a
            n_held += 1
    slo = work[_SLO]
    shi = work[_SHI]
    worst = np.inf
    mask = held_mask
    while mask >= 0:  # every subset of held_mask: which assets take their upper half
        for a in range(n_assets):
            slo[a] = lo[a]
            shi[a] = hi[a]
            if (held_mask >> a) & 1:
                cut = min(max(mark[a], lo[a]), hi[a])
                if (mask >> a) & 1:
                    slo[a] = cut
                else:
                    shi[a] = cut
        b = _sub_box_bound_nb(u, slo, shi, t, t1, lin, const, mmk_u, qty, pos_asset,
                              pos_kind, pos_entry, unit_pos_start, tiers, oc)
        b -= _bracket_excess_nb(u, slo, shi, mark, mmk_u, qty, pos_asset, pos_kind,
                                unit_pos_start, tiers)
        if not b >= worst:  # (a NaN bound is kept: it fails the caller's test)
            worst = b
        mask = (mask - 1) & held_mask if mask > 0 else -1
    return worst


@njit(cache=True, inline="always")
def _line_excess_nb(tiers, a, n, k0):  # pragma: no cover - jitted
    """Maintenance of notional ``n`` of asset ``a`` less the line of bracket ``k0``
    (``n rate - cum``) at ``n``: 0 inside that bracket; inf for an infinite notional in
    another bracket."""
    k = bracket_nb(tiers, a, n)
    if k == k0:
        return 0.0
    if n == np.inf:
        return np.inf
    return (n * tiers[a, k, TIER_RATE] - tiers[a, k, TIER_CUM]) - (
        n * tiers[a, k0, TIER_RATE] - tiers[a, k0, TIER_CUM])


@njit(cache=True, inline="always")
def _bracket_excess_nb(u, lo, hi, mark, mmk_u, qty, pos_asset, pos_kind, unit_pos_start,
                       tiers):  # pragma: no cover - jitted
    """Upper bound over the box ``lo, hi`` of how much more maintenance unit ``u``'s linear
    perpetuals need than the slack form ``lin, const`` holds: it holds each one's bracket
    at ``mark``, whose line ``n rate_k - cum_k`` is their maintenance only inside that
    bracket. The maintenance is continuous and piecewise linear in the notional ``n``
    (``bracket_cums``: the engine's tables, ``engine.bracket_table``, always take their
    amounts from it), so the excess is largest at an end of the box or at a bracket cap
    inside it, and those are the points taken (0 where the box stays in the bracket)."""
    extra = 0.0
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        q = abs(qty[p])
        a = pos_asset[p]
        if q == 0.0 or pos_kind[p] != POS_LINEAR or tiers[a, 0, TIER_CAP] == np.inf:
            continue  # no notional that moves, or one bracket
        k0 = bracket_nb(tiers, a, q * mark[a])
        n_lo = q * lo[a]
        n_hi = q * hi[a]
        worst = max(0.0, _line_excess_nb(tiers, a, n_lo, k0),
                    _line_excess_nb(tiers, a, n_hi, k0))
        for k in range(tiers.shape[1] - 1):  # the caps inside the box
            cap = tiers[a, k, TIER_CAP]
            if n_lo < cap < n_hi:
                worst = max(worst, _line_excess_nb(tiers, a, cap, k0))
        extra += worst
    return mmk_u * extra


@njit(cache=True, inline="always")
def _sub_box_bound_nb(u, lo, hi, t, t1, lin, const, mmk_u, qty, pos_asset, pos_kind,
                      pos_entry, unit_pos_start, tiers, oc):  # pragma: no cover - jitted
    """Rigorous lower bound of unit ``u``'s slack over the box ``lo, hi`` and steps
    ``t..t1``: each linear term at its worst end, the options from
    :func:`._option_kernels.option_terms_nb`."""
    bound = const[u]
    for a in range(lo.shape[0]):
        la = lin[u, a]
        if la > 0.0:
            bound += la * lo[a]
        elif la < 0.0:
            bound += la * hi[a]
    v, m = option_terms_inline_nb(u, lo, hi, t, t1, mmk_u, qty, pos_asset, pos_entry,
                                  pos_kind, unit_pos_start, tiers, oc)
    return bound + v - m


@leaf
def push_option_box_nb(u, mark, t, steps, slack, lin, const, sigma, mmk_u, version, h_key,
                       h_unit, h_ver, h_n, qty, pos_asset, pos_kind, pos_entry, unit_pos_start,
                       tiers, oc, lo, hi, work, steered):  # pragma: no cover - jitted
    """Give option unit ``u`` a new box (its version is bumped first): a down and an up
    threshold on every asset it is exposed to, and a due step ``t1 + 1`` on the time heap
    ``2 A`` (key ``0.5 - due``, crossed once ``t >= due``). Returns False when no box
    was found: the caller checks the unit exactly at the next round. ``steered``: the
    exact check (:func:`option_check_nb`) left the steering in ``work``."""
    if oc is None:  # a book without options (``OptionArrays.oc_or_none``): compiles to this
        return False
    n_assets = mark.shape[0]
    version[u] += 1
    ver = version[u]
    t1 = option_box_nb(u, mark, t, steps, slack, lin, const, sigma, mmk_u, qty, pos_asset,
                       pos_kind, pos_entry, unit_pos_start, tiers, oc, lo, hi, work, False,
                       steered, GROW_TRIES)
    if t1 < 0:
        return False
    for a in range(n_assets):
        if not exposed_nb(u, a, lin, qty, pos_asset, unit_pos_start):
            continue
        if lo[a] > 0.0:
            heap_push_nb(h_key, h_unit, h_ver, h_n, 2 * a, lo[a], u, ver, version)
        if hi[a] < np.inf:
            heap_push_nb(h_key, h_unit, h_ver, h_n, 2 * a + 1, -hi[a], u, ver, version)
    if t1 < steps:
        heap_push_nb(h_key, h_unit, h_ver, h_n, 2 * n_assets, 0.5 - (t1 + 1), u, ver,
                     version)
    return True


@njit(cache=True, inline="always")
def exposed_nb(u, a, lin, qty, pos_asset, unit_pos_start):  # pragma: no cover - jitted
    """Whether unit ``u``'s slack moves with the mark of asset ``a``."""
    if lin[u, a] != 0.0:
        return True
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        if pos_asset[p] == a and qty[p] != 0.0:
            return True
    return False
