"""Numba kernels of the ADL policies beyond the two rankings: the pro-rata shares
(``pro_rata``, ``leverage_pro_rata``), the per-step cap on ADL notional, and the record of
each ADL fill's unit (its leverage and unrealised PnL just before the fill), see
``docs/engine.md``, "ADL policies and the per-step cap"."""

from __future__ import annotations

import numpy as np
from numba import njit

from simulator._kernels.jit import leaf
from simulator.margin._kernels.state import (
    close_position_nb,
    position_value_nb,
    put_event_nb,
    state_changed_nb,
    touch_nb,
    unit_values_nb,
)
from simulator.margin.codes import (
    EA_LEVERAGE,
    EA_PNL,
    INSTRUMENT_INVERSE,
    INSTRUMENT_PERP,
    KIND_ADL,
    POS_INVERSE,
    RANK_LEVERAGE_PRO_RATA,
)


@leaf(entry=True)
def adl_allowance_nb(q, adl_price, inverse, cap, adl_used, i, t):  # pragma: no cover
    """The quantity of a bankrupt position's ``q`` that ADL may still close in step ``t``
    of path ``i`` under the cap ``cap`` (USD of ADL notional per step; inf: none):
    ``min(q, B / |P|)`` (linear) or ``min(q, B)`` (inverse) with ``B = max(cap - used, 0)``.
    ``adl_used`` (float64[3]: path, step, notional used) starts afresh at a new step."""
    if cap == np.inf:
        return q
    if adl_used[0] != i or adl_used[1] != t:
        adl_used[0] = i
        adl_used[1] = t
        adl_used[2] = 0.0
    budget = cap - adl_used[2]
    if budget <= 0.0:
        return 0.0
    lim = budget if inverse else budget / abs(adl_price)
    return lim if lim < q else q


@njit(cache=True, inline="always")
def record_fill_nb(ev_adl, n, e, nn, w):  # pragma: no cover - jitted
    """Row ``n`` of the per-fill ADL record: leverage ``nn / e`` (NaN when ``e <= 0``) and
    unrealised PnL ``e - w`` of the ADL'd unit before its fill."""
    ev_adl[n, EA_LEVERAGE] = nn / e if e > 0.0 else np.nan
    ev_adl[n, EA_PNL] = e - w


@leaf
def pro_rata_cover_nb(i, t, r, u, a, kind, side, q, q_adl, d_p, adl_price, mark, usd, coll,
                      qty, pos_unit, pos_asset, pos_entry, pos_kind, unit_pos_start, haircut,
                      tiers, mmk, lin, const, n_open, version, flag, pending, n_pending,
                      touched, n_touched, ranking, ev_i, ev_f, ev_adl, n_ev, oc, group_pos,
                      group_unit, lo, n_c, weight, cap, adl_used):  # pragma: no cover - jitted
    """Spread ``q_adl`` of a closed bankrupt position (side ``side``, ``q`` closed, share
    ``d_p`` of the deficit) over the candidates of its group (``group_pos[lo:lo + n_c]``)
    in proportion to their weights: ``|qty_k|`` (``pro_rata``) or ``|qty_k| N_v / E_v``
    (``leverage_pro_rata``, 0 when ``E_v <= 0``), computed over the state before any
    fill into ``weight`` (float64[n_c], scratch). Candidate ``k``'s target is
    ``x_k = q_adl w_k / W`` in increasing index, the last one's ``q_adl`` minus the
    targets before it; it closes ``min(x_k, |qty_k|)`` at ``adl_price``. Under a cap
    (``cap`` finite) each fill's notional is added to ``adl_used[2]``.

    Returns
    -------
    n_pending, n_touched, n_ev : int
    rem : float
        What the candidates left of ``q_adl``.
    adl_notional : float
    n_adl : int
    overflow : bool
    """
    total = 0.0
    last = -1
    for j in range(n_c):
        weight[j] = 0.0
        v = group_unit[lo + j]
        if v == u:
            continue
        k = group_pos[lo + j]
        qk = qty[k]
        if qk == 0.0:
            continue
        if position_value_nb(qk, mark[a], pos_entry[k], pos_kind[k]) <= 0.0:
            continue
        wk = abs(qk)
        if ranking == RANK_LEVERAGE_PRO_RATA:
            e, mm, nn, w = unit_values_nb(v, mark, usd, coll, qty, pos_asset, pos_entry,
                                          pos_kind, unit_pos_start, haircut, tiers, t, oc)
            wk = wk * (nn / e) if e > 0.0 else 0.0
        if wk > 0.0:
            weight[j] = wk
            total += wk
            last = j
    rem = q_adl
    adl_notional = 0.0
    n_adl = 0
    if last < 0:
        return n_pending, n_touched, n_ev, rem, adl_notional, n_adl, False
    target_rem = q_adl
    inverse = kind == POS_INVERSE
    for j in range(last + 1):
        if weight[j] <= 0.0:
            continue
        if j == last:
            x = target_rem
        else:
            x = q_adl * weight[j] / total
            target_rem -= x
        k = group_pos[lo + j]
        v = pos_unit[k]
        size = abs(qty[k])
        dq = x if x < size else size
        if dq <= 0.0:
            continue
        e, mm, nn, w = unit_values_nb(v, mark, usd, coll, qty, pos_asset, pos_entry, pos_kind,
                                      unit_pos_start, haircut, tiers, t, oc)
        n_pending, n_touched, n_ev, notional, overflow = adl_fill_nb(
            i, t, r, v, k, a, inverse, side, dq, size, adl_price, dq * d_p / q, e, nn, w,
            (mark, usd, coll, qty, pos_asset, pos_entry, pos_kind, unit_pos_start, haircut,
             tiers, mmk, lin, const, n_open, version, flag, pending, touched), n_pending,
            n_touched, (ev_i, ev_f, ev_adl), n_ev, cap, adl_used)
        if overflow:
            return n_pending, n_touched, n_ev, rem, adl_notional, n_adl, True
        rem -= dq
        adl_notional += notional
        n_adl += 1
    return n_pending, n_touched, n_ev, rem, adl_notional, n_adl, False


@njit(cache=True, inline="always")
def adl_fill_nb(i, t, r, v, k, a, inverse, side, dq, size, adl_price, covered, e, nn, w,
                units, n_pending, n_touched, events, n_ev, cap, adl_used
                ):  # pragma: no cover - jitted
    """One ADL fill, whatever the policy: candidate position ``k`` of unit ``v`` (``size``
    = ``|qty[k]|``) closes ``dq`` against a bankrupt position of side ``side`` on asset
    ``a`` at ``adl_price``, covering ``covered`` USD of its deficit. The unit is touched and
    re-indexed (:func:`.state.state_changed_nb`), the fill is event row ``n_ev`` with its
    unit's values before it (``e``, ``nn``, ``w``: :func:`record_fill_nb`), and under a cap
    (``cap`` finite) its notional is added to ``adl_used[2]``. ``units`` is the tuple
    ``(mark, usd, coll, qty, pos_asset, pos_entry, pos_kind, unit_pos_start, haircut, tiers,
    mmk, lin, const, n_open, version, flag, pending, touched)`` and ``events`` ``(ev_i,
    ev_f, ev_adl)`` (inlined into its two callers, the ranked walk and the pro-rata
    shares: a call with this many arrays cost 5% of ``october-2025-cascade``'s engine
    time; Python passes more than 30 arguments as a tuple, which Numba cannot inline).

    Returns
    -------
    n_pending, n_touched, n_ev : int
    notional : float
        The fill's notional.
    overflow : bool
        The event buffer is full (the fill is made, its row is not written).
    """
    (mark, usd, coll, qty, pos_asset, pos_entry, pos_kind, unit_pos_start, haircut, tiers, mmk,
     lin, const, n_open, version, flag, pending, touched) = units
    ev_i, ev_f, ev_adl = events
    notional = close_position_nb(v, k, -side * dq, adl_price, usd, coll, pos_asset,
                                 pos_entry, pos_kind)
    if dq == size:
        qty[k] = 0.0
    else:
        qty[k] += side * dq
    n_touched = touch_nb(v, flag, touched, n_touched)
    n_pending = state_changed_nb(v, mark, usd, coll, qty, pos_asset, pos_entry, pos_kind,
                                 unit_pos_start, haircut, tiers, mmk, lin, const, n_open,
                                 version, flag, pending, n_pending)
    if n_ev >= ev_i.shape[0]:
        return n_pending, n_touched, n_ev, notional, True
    put_event_nb(ev_i, ev_f, n_ev, i, t, r, v, KIND_ADL,
                 INSTRUMENT_INVERSE if inverse else INSTRUMENT_PERP, a, side * dq, mark[a],
                 adl_price, notional, 0.0, covered, 0.0)
    record_fill_nb(ev_adl, n_ev, e, nn, w)
    if cap != np.inf:
        adl_used[2] += notional
    return n_pending, n_touched, n_ev + 1, notional, False
