"""Numba kernels for the state of one margin unit inside the replay: its slack form,
valuation, bookkeeping of touched units and their restoration, and event records."""

from __future__ import annotations

import numpy as np
from numba import njit

from simulator._kernels.jit import inner, leaf
from simulator.margin._kernels.index import bracket_nb
from simulator.margin._kernels.options import option_terms_nb, spot_factor_nb, value_factored_nb
from simulator.margin.codes import (
    EF_BAD_DEBT,
    EF_EXEC,
    EF_FEE,
    EF_FUND_PAID,
    EF_MARK,
    EF_NOTIONAL,
    EF_QTY,
    EI_ASSET,
    EI_INSTRUMENT,
    EI_KIND,
    EI_PATH,
    EI_ROUND,
    EI_STEP,
    EI_UNIT,
    FLAG_BANKRUPT,
    FLAG_CHANGED,
    FLAG_LIQUIDATED,
    FLAG_MOVED,
    FLAG_PENDING,
    FLAG_TOUCHED,
    INSTRUMENT_CALL,
    INSTRUMENT_INVERSE,
    INSTRUMENT_PERP,
    INSTRUMENT_PUT,
    OC_UNIT_OPT,
    POS_CALL,
    POS_INVERSE,
    POS_PUT,
    TIER_CUM,
    TIER_RATE,
)


@leaf
def refresh_unit_nb(u, marks, usd, coll, qty, pos_asset, pos_entry, pos_kind, unit_pos_start,
                    haircut, tiers, mmk, lin, const, n_open):  # pragma: no cover - jitted
    """Recompute the linear slack coefficients of unit ``u`` from its state, with the
    brackets its positions are in at ``marks`` and its maintenance multiplier ``mmk[u]``
    (the margin-call ratio while it is armed, else 1); ``n_open`` counts open positions,
    plus one for a negative USD or coin balance (a live unit).

    An inverse position of ``q`` USD contracts is worth ``q * (M / entry - 1)`` USD and
    needs a constant ``|q| * rate - cum`` of maintenance; a coin balance below zero (a debt
    left by realised inverse losses) counts without haircut. Options are left out (an
    option unit adds :func:`option_slack_nb` to the form)."""
    n_assets = lin.shape[1]
    k = 1 if usd[u] < 0.0 else 0
    for a in range(n_assets):
        if coll[u, a] >= 0.0:
            lin[u, a] = coll[u, a] * (1.0 - haircut[a])
        else:
            lin[u, a] = coll[u, a]
            k += 1
    c = usd[u]
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        q = qty[p]
        if q != 0.0:
            a = pos_asset[p]
            if pos_kind[p] >= POS_CALL:  # an option: outside the linear form
                k += 1
                continue
            if pos_kind[p] == POS_INVERSE:
                b = bracket_nb(tiers, a, abs(q))
                lin[u, a] += q / pos_entry[p]
                c -= q + mmk[u] * (abs(q) * tiers[a, b, TIER_RATE] - tiers[a, b, TIER_CUM])
            else:
                b = bracket_nb(tiers, a, abs(q) * marks[a])
                lin[u, a] += q - mmk[u] * tiers[a, b, TIER_RATE] * abs(q)
                c += mmk[u] * tiers[a, b, TIER_CUM] - q * pos_entry[p]
            k += 1
    const[u] = c
    n_open[u] = k


@leaf
def unit_values_nb(u, marks, usd, coll, qty, pos_asset, pos_entry, pos_kind, unit_pos_start,
                   haircut, tiers, t, oc):  # pragma: no cover - jitted
    """Equity, maintenance, notional and wallet of unit ``u`` at ``marks`` and step ``t``;
    the notional is that of the perpetuals (options are closed only in full)."""
    wallet = usd[u]
    for a in range(marks.shape[0]):
        if coll[u, a] >= 0.0:
            wallet += coll[u, a] * marks[a] * (1.0 - haircut[a])
        else:
            wallet += coll[u, a] * marks[a]
    equity = wallet
    maint = 0.0
    notional = 0.0
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        q = qty[p]
        if q != 0.0:
            a = pos_asset[p]
            m = marks[a]
            if pos_kind[p] >= POS_CALL:
                continue
            if pos_kind[p] == POS_INVERSE:
                n = abs(q)
                equity += q * (m / pos_entry[p] - 1.0)
            else:
                n = abs(q) * m
                equity += q * (m - pos_entry[p])
            b = bracket_nb(tiers, a, n)
            notional += n
            maint += n * tiers[a, b, TIER_RATE] - tiers[a, b, TIER_CUM]
    if oc is not None and oc[OC_UNIT_OPT][u]:  # (None: a book without options)
        v, mo = option_terms_nb(u, marks, marks, t, t, 1.0, qty, pos_asset, pos_entry, pos_kind,
                                unit_pos_start, tiers, oc)
        equity += v
        maint += mo
    return equity, maint, notional, wallet


@njit(cache=True, inline="always")
def instrument_nb(kind):  # pragma: no cover - jitted
    """Event instrument code of a position kind (``codes.POS_INSTRUMENT``)."""
    if kind == POS_INVERSE:
        return INSTRUMENT_INVERSE
    if kind == POS_CALL:
        return INSTRUMENT_CALL
    if kind == POS_PUT:
        return INSTRUMENT_PUT
    return INSTRUMENT_PERP


@inner
def position_value_nb(q, mark_a, entry, kind):  # pragma: no cover - jitted
    """Unrealised PnL in USD of a position: linear ``q (M - entry)``, inverse
    ``q (M / entry - 1)``."""
    if kind == POS_INVERSE:
        return q * (mark_a / entry - 1.0)
    return q * (mark_a - entry)


@leaf
def close_position_nb(u, p, c, price, usd, coll, pos_asset, pos_entry, pos_kind
                      ):  # pragma: no cover - jitted
    """Realise ``c`` of position ``p`` (unit ``u``) at ``price``; returns the USD notional.

    A linear position's PnL is paid in USD; an inverse position's in its coin:
    ``c (1/entry - 1/price)`` coins.
    """
    a = pos_asset[p]
    if pos_kind[p] == POS_INVERSE:
        coll[u, a] += c * (1.0 / pos_entry[p] - 1.0 / price)
        return abs(c)
    usd[u] += c * (price - pos_entry[p])
    return abs(c) * abs(price)


# 14 stores, inlined: as a call, each mix of argument types at its 13 call sites cost a
# compilation of its own (12 of them, 4.6 s)
@njit(cache=True, inline="always")
def put_event_nb(ev_i, ev_f, n, path, step, rnd, unit, kind, instrument, asset, qty, mark, xprice,
                 notional, fee, bad_debt, fund_paid):  # pragma: no cover - jitted
    ev_i[n, EI_PATH] = path
    ev_i[n, EI_STEP] = step
    ev_i[n, EI_ROUND] = rnd
    ev_i[n, EI_UNIT] = unit
    ev_i[n, EI_KIND] = kind
    ev_i[n, EI_INSTRUMENT] = instrument
    ev_i[n, EI_ASSET] = asset
    ev_f[n, EF_QTY] = qty
    ev_f[n, EF_MARK] = mark
    ev_f[n, EF_EXEC] = xprice
    ev_f[n, EF_NOTIONAL] = notional
    ev_f[n, EF_FEE] = fee
    ev_f[n, EF_BAD_DEBT] = bad_debt
    ev_f[n, EF_FUND_PAID] = fund_paid


@leaf
def sort_head_nb(values, n):  # pragma: no cover - jitted
    """Sort ``values[:n]`` in place, ascending (a unit list, in increasing unit index).

    A heapsort: in place, O(n log n), and, on integers, the same result as any other sort.
    (``np.sort`` allocates and its slice assignment brings Numba's shape-checking and
    string-formatting code with it: 5 s of compilation for a sort.)"""
    for start in range(n // 2 - 1, -1, -1):
        _sift_nb(values, start, n)
    for end in range(n - 1, 0, -1):
        v = values[0]
        values[0] = values[end]
        values[end] = v
        _sift_nb(values, 0, end)


@njit(cache=True, inline="always")
def _sift_nb(values, root, n):  # pragma: no cover - jitted
    """Move ``values[root]`` down the max-heap ``values[:n]`` to its place."""
    v = values[root]
    while True:
        child = 2 * root + 1
        if child >= n:
            break
        if child + 1 < n and values[child + 1] > values[child]:
            child += 1
        if values[child] <= v:
            break
        values[root] = values[child]
        root = child
    values[root] = v


@leaf
def enqueue_nb(u, flag, bit, queue, n):  # pragma: no cover - jitted
    """Append ``u`` to ``queue`` unless its ``bit`` says it is there; return the length."""
    if (flag[u] & bit) == 0:
        flag[u] |= bit
        queue[n] = u
        n += 1
    return n


@leaf
def touch_nb(u, flag, touched, n_touched):  # pragma: no cover - jitted
    """Remember that unit ``u`` must be restored at the end of the path."""
    return enqueue_nb(u, flag, FLAG_TOUCHED, touched, n_touched)


@leaf
def state_changed_nb(u, marks, usd, coll, qty, pos_asset, pos_entry, pos_kind, unit_pos_start,
                     haircut, tiers, mmk, lin, const, n_open, version, flag, pending, n_pending
                     ):  # pragma: no cover - jitted
    """After a change to unit ``u``: new slack form, old bands void, exact check next round."""
    refresh_unit_nb(u, marks, usd, coll, qty, pos_asset, pos_entry, pos_kind, unit_pos_start,
                    haircut, tiers, mmk, lin, const, n_open)
    version[u] += 1
    flag[u] |= FLAG_CHANGED | FLAG_MOVED
    return enqueue_nb(u, flag, FLAG_PENDING, pending, n_pending)


@leaf
def end_path_nb(i, mark, usd, coll, qty, pos_asset, pos_entry, pos_kind, unit_pos_start,
                unit_account, navk, navc, deposit, touched, n_touched, flag, corr_i, corr_f,
                n_corr, acct_liq, acct_bank, w, acct_w, stamp_liq, stamp_bank, t_end, oc,
                ivfac):  # pragma: no cover
    """Account outputs of path ``i``: PnL corrections of changed units and liquidation
    counts (and the sums of the path's weight ``w`` and its square in ``acct_w``); options
    at their value at step ``t_end``, with the implied vol's spot factor of each asset
    computed once (``ivfac``, float64[A], scratch; ``oc`` None: a book without options).
    Returns the new number of corrections, or -1 if they do not fit."""
    n_assets = mark.shape[0]
    for a in range(n_assets):
        ivfac[a] = np.nan  # computed when an option on the asset first needs it
    need = 0
    for j in range(n_touched):
        if flag[touched[j]] & FLAG_CHANGED:
            need += 1
    if n_corr + need > corr_i.shape[0]:
        return -1
    for j in range(n_touched):
        u = touched[j]
        acc = unit_account[u]
        if flag[u] & FLAG_CHANGED:
            nav = usd[u]
            linear = navc[u]
            for a in range(n_assets):
                nav += coll[u, a] * mark[a]
                linear += navk[u, a] * mark[a]
            for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
                if qty[p] != 0.0:
                    if oc is not None and pos_kind[p] >= POS_CALL:  # (None: no options)
                        a = pos_asset[p]
                        if ivfac[a] != ivfac[a]:
                            ivfac[a] = spot_factor_nb(a, mark[a], oc)
                        nav += qty[p] * value_factored_nb(p, a, pos_kind[p], mark[a],
                                                          pos_entry[p], t_end, ivfac[a], oc)
                    else:
                        nav += position_value_nb(qty[p], mark[pos_asset[p]], pos_entry[p],
                                                 pos_kind[p])
            corr_i[n_corr, 0] = i
            corr_i[n_corr, 1] = acc
            corr_f[n_corr] = nav - linear - deposit[u]  # PnL leaves deposits out
            n_corr += 1
        if (flag[u] & FLAG_LIQUIDATED) and stamp_liq[acc] != i:
            stamp_liq[acc] = i
            acct_liq[acc] += 1
            acct_w[acc, 0] += w
            acct_w[acc, 1] += w * w
        if (flag[u] & FLAG_BANKRUPT) and stamp_bank[acc] != i:
            stamp_bank[acc] = i
            acct_bank[acc] += 1
            acct_w[acc, 2] += w
            acct_w[acc, 3] += w * w
    return n_corr


@leaf
def restore_nb(touched, n_touched, usd, coll, qty, lin, const, n_open, version, flag, mmk,
               deposit, unit_usd0, unit_coll0, pos_qty0, lin0, const0, n_open0, mmk0,
               unit_pos_start):  # pragma: no cover - jitted
    """Put the touched units back in their initial state."""
    n_assets = coll.shape[1]
    for j in range(n_touched):
        u = touched[j]
        usd[u] = unit_usd0[u]
        for a in range(n_assets):
            coll[u, a] = unit_coll0[u, a]
            lin[u, a] = lin0[u, a]
        for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
            qty[p] = pos_qty0[p]
        const[u] = const0[u]
        n_open[u] = n_open0[u]
        mmk[u] = mmk0[u]
        deposit[u] = 0.0
        version[u] = 0
        flag[u] = 0
