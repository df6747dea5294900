"""Numba kernels of the liquidation index: safe bands in price space.

The margin slack of a unit, ``s(M) = E - MM = const + sum_a lin[a] * M[a]``, is linear in
the marks while its positions and collateral do not change. After an exact check at marks
``M`` finds ``s > 0``, the unit stays safe while every mark stays inside a band: only moves
against the sign of ``lin[a]`` lower the slack, so it suffices that

    sum_a |lin[a]| * |adverse move of M[a]| < s.

The slack is split between the assets in proportion to ``|lin[a]| * sigma[a] * M[a]``
(each asset's band is then the same number of its own volatilities wide), which gives one
threshold per asset: a *down* threshold ``M[a] - band[a]`` when ``lin[a] > 0`` and an *up*
threshold ``M[a] + band[a]`` when ``lin[a] < 0``. For a unit exposed to one asset the
threshold is its exact liquidation price (minus a rounding margin).

Thresholds live in one max-heap per (asset, direction), keyed by ``+threshold`` (down) or
``-threshold`` (up), so that "the mark has left the band" reads ``key > sign * mark`` in
both. The initial thresholds are the same on every path; they are kept as a static sorted
array with a cursor per heap, and only re-checked units are pushed into the heaps. Every
entry carries the unit's band *version*; a unit's older entries are stale and skipped.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from simulator._kernels.jit import leaf
from simulator.margin.codes import FLAG_DIRTY, POS_LINEAR, TIER_CAP

#: relative rounding margin taken off the slack before it is turned into bands
SLACK_MARGIN = 1e-12
#: relative margin by which a band stops short of a bracket boundary
BRACKET_MARGIN = 1e-12
#: smallest split weight ``sum_a |lin[a]| sigma[a] M[a]`` (USD) a band is cut from. Below it
#: the weight may be 0 (underflow: tiny quantities at marks near the price floor) or lose
#: its relative precision (subnormal terms), and a band cut from it could be too wide, so
#: the unit gets no band and is checked exactly at every round instead
MIN_BAND_WEIGHT = 1e-200


@njit(cache=True, inline="always")
def bracket_nb(tiers, a, notional):  # pragma: no cover - jitted
    """Index of the bracket of asset ``a`` that holds ``notional`` (first cap >= it)."""
    k = 0
    last = tiers.shape[1] - 1
    while k < last and notional > tiers[a, k, TIER_CAP]:
        k += 1
    return k


@leaf
def heap_push_nb(h_key, h_unit, h_ver, h_n, hid, key, unit, ver, version):  # pragma: no cover
    """Push ``(key, unit, ver)`` onto max-heap ``hid``; compacts stale entries when full."""
    if h_n[hid] == h_key.shape[1]:
        heap_compact_nb(h_key, h_unit, h_ver, h_n, hid, version)
    i = h_n[hid]
    h_n[hid] = i + 1
    while i > 0:
        parent = (i - 1) // 2
        if h_key[hid, parent] >= key:
            break
        h_key[hid, i] = h_key[hid, parent]
        h_unit[hid, i] = h_unit[hid, parent]
        h_ver[hid, i] = h_ver[hid, parent]
        i = parent
    h_key[hid, i] = key
    h_unit[hid, i] = unit
    h_ver[hid, i] = ver


@leaf
def _sift_down_nb(h_key, h_unit, h_ver, n, hid, i):  # pragma: no cover - jitted
    key = h_key[hid, i]
    unit = h_unit[hid, i]
    ver = h_ver[hid, i]
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and h_key[hid, child + 1] > h_key[hid, child]:
            child += 1
        if h_key[hid, child] <= key:
            break
        h_key[hid, i] = h_key[hid, child]
        h_unit[hid, i] = h_unit[hid, child]
        h_ver[hid, i] = h_ver[hid, child]
        i = child
    h_key[hid, i] = key
    h_unit[hid, i] = unit
    h_ver[hid, i] = ver


@leaf
def heap_pop_nb(h_key, h_unit, h_ver, h_n, hid):  # pragma: no cover - jitted
    """Remove the top of heap ``hid``; return its unit and version."""
    unit = h_unit[hid, 0]
    ver = h_ver[hid, 0]
    n = h_n[hid] - 1
    h_n[hid] = n
    if n > 0:
        h_key[hid, 0] = h_key[hid, n]
        h_unit[hid, 0] = h_unit[hid, n]
        h_ver[hid, 0] = h_ver[hid, n]
        _sift_down_nb(h_key, h_unit, h_ver, n, hid, 0)
    return unit, ver


@leaf
def heap_compact_nb(h_key, h_unit, h_ver, h_n, hid, version):  # pragma: no cover - jitted
    """Drop stale entries of heap ``hid`` and restore the heap order."""
    n = 0
    for i in range(h_n[hid]):
        u = h_unit[hid, i]
        if h_ver[hid, i] == version[u]:
            h_key[hid, n] = h_key[hid, i]
            h_unit[hid, n] = u
            h_ver[hid, n] = h_ver[hid, i]
            n += 1
    h_n[hid] = n
    for i in range(n // 2 - 1, -1, -1):
        _sift_down_nb(h_key, h_unit, h_ver, n, hid, i)


@leaf
def bracket_interval_nb(u, a, mark_a, qty, pos_asset, pos_kind, unit_pos_start, tiers
                        ):  # pragma: no cover - jitted
    """Marks of asset ``a`` between which no position of unit ``u`` changes bracket.

    A position of size ``|q|`` is in bracket ``k`` while ``cap[k-1] < |q| M <= cap[k]``.
    Returns ``(lo, hi)``: ``(0, inf)`` for an asset with one bracket.
    """
    lo = 0.0
    hi = np.inf
    if tiers[a, 0, TIER_CAP] == np.inf:
        return lo, hi
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        q = abs(qty[p])
        if q == 0.0 or pos_asset[p] != a or pos_kind[p] != POS_LINEAR:
            continue  # an inverse position's notional does not move; an option has none
        k = 0
        last = tiers.shape[1] - 1
        while k < last and q * mark_a > tiers[a, k, TIER_CAP]:
            k += 1
        if k > 0 and tiers[a, k - 1, TIER_CAP] / q > lo:
            lo = tiers[a, k - 1, TIER_CAP] / q
        if tiers[a, k, TIER_CAP] / q < hi:
            hi = tiers[a, k, TIER_CAP] / q
    return lo, hi


@leaf(entry=True)
def push_band_nb(u, mark, lin, const, sigma, version, h_key, h_unit, h_ver, h_n, qty,
                 pos_asset, pos_kind, unit_pos_start, tiers):  # pragma: no cover - jitted
    """Give unit ``u`` a new band around ``mark`` (its version is bumped first).

    The band of each asset is also cut where one of the unit's positions would change
    bracket (``bracket_interval_nb``), so the linear slack form stays exact inside it.

    Returns
    -------
    bool
        False when the slack is too small for a band, or the split weight
        ``sum_a |lin[a]| sigma[a] M[a]`` of an exposed unit is below ``MIN_BAND_WEIGHT``
        (0 included): the caller must check the unit exactly at every round until its
        state or the marks change that.
    """
    n_assets = mark.shape[0]
    version[u] += 1
    ver = version[u]
    slack = const[u]
    scale = abs(const[u])
    weight = 0.0
    for a in range(n_assets):
        slack += lin[u, a] * mark[a]
        scale += abs(lin[u, a]) * mark[a]
        weight += abs(lin[u, a]) * sigma[a] * mark[a]
    slack -= SLACK_MARGIN * scale
    if not (slack > 0.0 and np.isfinite(slack) and np.isfinite(weight)):
        return False  # no band (also for NaN / inf marks): checked exactly every round
    if not weight >= MIN_BAND_WEIGHT:
        for a in range(n_assets):
            if lin[u, a] != 0.0:
                return False  # the slack cannot be split reliably: checked every round
    for a in range(n_assets):
        la = lin[u, a]
        down = -np.inf
        up = np.inf
        if la != 0.0:
            band = slack * sigma[a] * mark[a] / weight
            if la > 0.0:
                down = mark[a] - band
            else:
                up = mark[a] + band
        lo, hi = bracket_interval_nb(u, a, mark[a], qty, pos_asset, pos_kind, unit_pos_start,
                                     tiers)
        if lo > 0.0 and lo * (1.0 + BRACKET_MARGIN) > down:
            down = lo * (1.0 + BRACKET_MARGIN)
        if hi < np.inf and hi * (1.0 - BRACKET_MARGIN) < up:
            up = hi * (1.0 - BRACKET_MARGIN)
        if down > -np.inf:
            heap_push_nb(h_key, h_unit, h_ver, h_n, 2 * a, down, u, ver, version)
        if up < np.inf:
            heap_push_nb(h_key, h_unit, h_ver, h_n, 2 * a + 1, -up, u, ver, version)
    return True


@leaf
def heap_bound_nb(hid, mark, t):  # pragma: no cover - jitted
    """What the keys of heap ``hid`` are compared with: ``+mark`` (down thresholds),
    ``-mark`` (up thresholds), or ``-t`` for the time heap ``2 A`` of option units (key
    ``0.5 - due``: crossed once ``t >= due``)."""
    n_assets = mark.shape[0]
    if hid == 2 * n_assets:
        return -float(t)
    return mark[hid // 2] if hid % 2 == 0 else -mark[hid // 2]


@leaf
def collect_crossed_nb(mark, t, s_key, s_unit, s_start, cursor, h_key, h_unit, h_ver, h_n,
                       version, flag, dirty, n_dirty):  # pragma: no cover - jitted
    """Append to ``dirty`` every unit whose band the marks (or, for an option unit's box,
    the step ``t``) have left.

    ``flag[u] & FLAG_DIRTY`` marks units already in ``dirty``. Static entries are valid only
    while the unit's version is 0. Returns the new length of ``dirty``.
    """
    for hid in range(h_n.shape[0]):
        bound = heap_bound_nb(hid, mark, t)
        c = cursor[hid]
        end = s_start[hid + 1]
        while c < end and s_key[c] > bound:
            u = s_unit[c]
            if version[u] == 0 and (flag[u] & FLAG_DIRTY) == 0:
                flag[u] |= FLAG_DIRTY
                dirty[n_dirty] = u
                n_dirty += 1
            c += 1
        cursor[hid] = c
        while h_n[hid] > 0 and h_key[hid, 0] > bound:
            u, ver = heap_pop_nb(h_key, h_unit, h_ver, h_n, hid)
            if ver == version[u] and (flag[u] & FLAG_DIRTY) == 0:
                flag[u] |= FLAG_DIRTY
                dirty[n_dirty] = u
                n_dirty += 1
    return n_dirty
