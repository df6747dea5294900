"""Numba kernels of the margin engine: the step-by-step replay with liquidation cascades.

Implements ``docs/engine.md`` exactly; ``tests/naive.py`` is the slow reference it is
tested against. Arrays in, ``out=`` arrays; no Python objects, no exceptions: the event
buffer reports overflow by returning the first path it could not finish.

For speed the liquidation test of unit ``u`` uses the linear form of its margin slack,
``E_u - MM_u = const[u] + sum_a lin[u, a] * M[a]``, refreshed whenever the unit changes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .codes import (
    EF_BAD_DEBT,
    EF_EXEC,
    EF_FEE,
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
    FLAG_LIQUIDATED,
    FP_ALPHA,
    FP_DECAY,
    FP_FEE_RATE,
    FP_FUND0,
    FP_TARGET,
    INSTRUMENT_COLLATERAL,
    INSTRUMENT_PERP,
    IP_ADL,
    IP_MAX_ROUNDS,
    IP_PARTIAL,
    KIND_ADL,
    KIND_LIQUIDATION,
    PF_ADL_NOTIONAL,
    PF_BAD_DEBT,
    PF_FEES,
    PF_FUND_END,
    PF_LIQUIDATED_NOTIONAL,
    PF_SOCIALISED,
    PI_DEPLETED,
    PI_FIRST_STEP,
    PI_MAX_ROUNDS,
    PI_N_ADL,
    PI_N_LIQUIDATIONS,
)


@njit(cache=True)
def refresh_unit_nb(u, usd, coll, qty, pos_asset, pos_entry, unit_pos_start, haircut, mmr,
                    lin, const, n_open):  # pragma: no cover - jitted
    """Recompute the linear slack coefficients of unit ``u`` from its state."""
    n_assets = lin.shape[1]
    for a in range(n_assets):
        lin[u, a] = coll[u, a] * (1.0 - haircut[a])
    c = usd[u]
    k = 0
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        q = qty[p]
        if q != 0.0:
            a = pos_asset[p]
            lin[u, a] += q - mmr[a] * abs(q)
            c -= q * pos_entry[p]
            k += 1
    const[u] = c
    n_open[u] = k


@njit(cache=True)
def unit_values_nb(u, marks, usd, coll, qty, pos_asset, pos_entry, unit_pos_start, haircut,
                   mmr):  # pragma: no cover - jitted
    """Equity, maintenance, notional and wallet of unit ``u`` at ``marks``."""
    wallet = usd[u]
    for a in range(marks.shape[0]):
        wallet += coll[u, a] * marks[a] * (1.0 - haircut[a])
    equity = wallet
    maint = 0.0
    notional = 0.0
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        q = qty[p]
        if q != 0.0:
            m = marks[pos_asset[p]]
            equity += q * (m - pos_entry[p])
            notional += abs(q) * m
            maint += abs(q) * m * mmr[pos_asset[p]]
    return equity, maint, notional, wallet


@njit(cache=True)
def _put_event(ev_i, ev_f, n, path, step, rnd, unit, kind, instrument, asset, qty, mark, xprice,
               notional, fee, bad_debt):  # pragma: no cover - jitted
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


@njit(cache=True)
def replay_nb(exo, depth, haircut, mmr, unit_usd0, unit_coll0, unit_pos_start, unit_account,
              unit_nav0, pos_unit, pos_asset, pos_qty0, pos_entry, fparams, iparams,
              path_f, path_i, min_price, final_price, acct_pnl, acct_flags, marks_out, ev_i,
              ev_f, first_path):  # pragma: no cover - jitted
    """Replay paths ``first_path..n_paths-1`` over the book.

    Parameters
    ----------
    exo : float64[n_paths, steps + 1, A]
        Exogenous prices.
    depth : float64[steps + 1, A]
        Depth in USD per step.
    haircut, mmr : float64[A]
    unit_usd0 : float64[U]
    unit_coll0 : float64[U, A]
    unit_pos_start : int64[U + 1]
    unit_account : int64[U]
    unit_nav0 : float64[U]
        Net asset value of each unit at the initial prices.
    pos_unit, pos_asset : int64[P]
    pos_qty0, pos_entry : float64[P]
    fparams : float64[N_FP]
        Fee rate, target, initial fund, impact alpha, impact decay per step.
    iparams : int64[N_IP]
        Partial mode (0/1), ADL (0/1), max cascade rounds.
    path_f : float64[n_paths, N_PF]
    path_i : int64[n_paths, N_PI]
    min_price, final_price : float64[n_paths, A]
    acct_pnl : float64[n_paths, n_accounts]
    acct_flags : uint8[n_paths, n_accounts]
    marks_out : float64[n_save, steps + 1, A]
        Closing mark of every step for the first ``n_save`` paths (``n_save`` may be 0).
    ev_i : int64[capacity, N_EI]
    ev_f : float64[capacity, N_EF]
        Event buffers.
    first_path : int
        First path to replay.

    Returns
    -------
    n_events : int
        Events written (paths ``first_path..done-1``).
    done : int
        First path not replayed: ``n_paths`` when all are done, otherwise the path whose
        events did not fit in the buffer.
    """
    n_paths = exo.shape[0]
    steps = exo.shape[1] - 1
    n_assets = exo.shape[2]
    n_units = unit_usd0.shape[0]
    n_pos = pos_qty0.shape[0]
    capacity = ev_i.shape[0]
    fee_rate = fparams[FP_FEE_RATE]
    target = fparams[FP_TARGET]
    fund0 = fparams[FP_FUND0]
    alpha = fparams[FP_ALPHA]
    decay = fparams[FP_DECAY]
    partial = iparams[IP_PARTIAL] != 0
    adl_on = iparams[IP_ADL] != 0
    max_rounds = iparams[IP_MAX_ROUNDS]

    usd = np.empty(n_units)
    coll = np.empty((n_units, n_assets))
    qty = np.empty(n_pos)
    lin = np.empty((n_units, n_assets))
    const = np.empty(n_units)
    n_open = np.empty(n_units, dtype=np.int64)
    logimp = np.empty(n_assets)
    mark = np.empty(n_assets)
    mark2 = np.empty(n_assets)
    xprice = np.empty(n_assets)
    dlog = np.empty(n_assets)
    flow = np.empty(n_assets)
    liq = np.empty(n_units, dtype=np.int64)
    frac = np.empty(n_units)
    closed = np.zeros(n_pos)
    closed_notional = np.zeros(n_pos)
    bank_unit = np.empty(n_units, dtype=np.int64)
    bank_deficit = np.empty(n_units)
    cand = np.empty(n_pos, dtype=np.int64)
    cand_key = np.empty(n_pos)

    n_save = marks_out.shape[0]
    n_ev = 0
    for i in range(first_path, n_paths):
        ev_start = n_ev
        usd[:] = unit_usd0
        coll[:, :] = unit_coll0
        qty[:] = pos_qty0
        for u in range(n_units):
            refresh_unit_nb(u, usd, coll, qty, pos_asset, pos_entry, unit_pos_start, haircut,
                            mmr, lin, const, n_open)
        acct_flags[i, :] = 0
        acct_pnl[i, :] = 0.0
        fund = fund0
        n_liq = 0
        max_r = 0
        first_step = -1
        depleted = 0
        n_adl = 0
        liq_notional = 0.0
        bad_debt_total = 0.0
        adl_notional = 0.0
        socialised = 0.0
        fees = 0.0
        for a in range(n_assets):
            logimp[a] = 0.0
            min_price[i, a] = exo[i, 0, a]
            if i < n_save:
                marks_out[i, 0, a] = exo[i, 0, a]
        overflow = False
        for t in range(1, steps + 1):
            for a in range(n_assets):
                logimp[a] *= decay
                mark[a] = exo[i, t, a] * np.exp(logimp[a])
            r = 0
            while r < max_rounds:
                # 1. liquidatable units
                n_l = 0
                for u in range(n_units):
                    if n_open[u] > 0:
                        s = const[u]
                        for a in range(n_assets):
                            s += lin[u, a] * mark[a]
                        if s < 0.0:
                            liq[n_l] = u
                            n_l += 1
                if n_l == 0:
                    break
                r += 1
                if first_step < 0:
                    first_step = t
                # fractions
                for j in range(n_l):
                    f = 1.0
                    if partial:
                        e, mm, nn, w = unit_values_nb(liq[j], mark, usd, coll, qty, pos_asset,
                                                      pos_entry, unit_pos_start, haircut, mmr)
                        den = target * mm - fee_rate * nn
                        if e > 0.0 and den > 0.0:
                            f = (target * mm - e) / den
                            if f >= 1.0:
                                f = 1.0
                            elif f < 0.0:
                                f = 0.0
                    frac[j] = f
                # 2. flow
                for a in range(n_assets):
                    flow[a] = 0.0
                for j in range(n_l):
                    u = liq[j]
                    full = frac[j] == 1.0
                    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
                        if qty[p] != 0.0:
                            if full:
                                flow[pos_asset[p]] += qty[p]
                            else:
                                flow[pos_asset[p]] += frac[j] * qty[p]
                    if full:
                        for a in range(n_assets):
                            flow[a] += coll[u, a]
                # 3. impact
                for a in range(n_assets):
                    q_usd = flow[a] * mark[a]
                    if alpha == 0.0 or q_usd == 0.0:
                        dlog[a] = 0.0
                        mark2[a] = mark[a]
                        xprice[a] = mark[a]
                    else:
                        sgn = 1.0 if q_usd > 0.0 else -1.0
                        dlog[a] = -sgn * 0.01 * (abs(q_usd) / depth[t, a]) ** alpha
                        mark2[a] = mark[a] * np.exp(dlog[a])
                        xprice[a] = mark[a] + (mark2[a] - mark[a]) / (1.0 + alpha)
                # 4. settle
                n_b = 0
                for j in range(n_l):
                    u = liq[j]
                    f = frac[j]
                    full = f == 1.0
                    sum_n = 0.0
                    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
                        closed[p] = 0.0
                        closed_notional[p] = 0.0
                        if qty[p] != 0.0:
                            a = pos_asset[p]
                            c = qty[p] if full else f * qty[p]
                            usd[u] += c * (xprice[a] - pos_entry[p])
                            if full:
                                qty[p] = 0.0
                            else:
                                qty[p] -= c
                            closed[p] = c
                            closed_notional[p] = abs(c) * xprice[a]
                            sum_n += closed_notional[p]
                    if full:
                        for a in range(n_assets):
                            if coll[u, a] > 0.0:
                                usd[u] += coll[u, a] * xprice[a]
                        e2 = usd[u]
                    else:
                        e2, mm2, nn2, w2 = unit_values_nb(u, mark2, usd, coll, qty, pos_asset,
                                                          pos_entry, unit_pos_start, haircut, mmr)
                    fee = fee_rate * sum_n
                    room = e2 if e2 > 0.0 else 0.0
                    if fee > room:
                        fee = room
                    usd[u] -= fee
                    fund += fee
                    fees += fee
                    bd = 0.0
                    deficit = 0.0
                    if full and usd[u] < 0.0:
                        bd = -usd[u]
                        usd[u] = 0.0
                        paid = bd if bd < fund else fund
                        fund -= paid
                        deficit = bd - paid
                        if deficit > 0.0:
                            depleted = 1
                    acc = unit_account[u]
                    acct_flags[i, acc] |= FLAG_LIQUIDATED
                    if bd > 0.0:
                        acct_flags[i, acc] |= FLAG_BANKRUPT
                    n_liq += 1
                    liq_notional += sum_n
                    bad_debt_total += bd
                    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
                        if closed[p] != 0.0:
                            if n_ev >= capacity:
                                overflow = True
                                break
                            share = closed_notional[p] / sum_n if sum_n > 0.0 else 0.0
                            a = pos_asset[p]
                            _put_event(ev_i, ev_f, n_ev, i, t, r, u, KIND_LIQUIDATION,
                                       INSTRUMENT_PERP, a, -closed[p], mark[a], xprice[a],
                                       closed_notional[p], fee * share, bd * share)
                            n_ev += 1
                    if full:
                        for a in range(n_assets):
                            amount = coll[u, a]
                            if amount > 0.0:
                                if n_ev >= capacity:
                                    overflow = True
                                    break
                                _put_event(ev_i, ev_f, n_ev, i, t, r, u, KIND_LIQUIDATION,
                                           INSTRUMENT_COLLATERAL, a, -amount, mark[a],
                                           xprice[a], amount * xprice[a], 0.0, 0.0)
                                n_ev += 1
                                coll[u, a] = 0.0
                    refresh_unit_nb(u, usd, coll, qty, pos_asset, pos_entry, unit_pos_start,
                                    haircut, mmr, lin, const, n_open)
                    if deficit > 0.0:
                        bank_unit[n_b] = u
                        bank_deficit[n_b] = deficit
                        n_b += 1
                    if overflow:
                        break
                if overflow:
                    break
                # 5. marks
                for a in range(n_assets):
                    mark[a] = mark2[a]
                    logimp[a] += dlog[a]
                # 6. uncovered deficits
                for b in range(n_b):
                    u = bank_unit[b]
                    deficit = bank_deficit[b]
                    if not adl_on:
                        socialised += deficit
                        continue
                    sum_n = 0.0
                    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
                        sum_n += closed_notional[p]
                    if sum_n <= 0.0:
                        socialised += deficit
                        continue
                    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
                        if closed[p] == 0.0:
                            continue
                        a = pos_asset[p]
                        d_p = deficit * closed_notional[p] / sum_n
                        side = 1.0 if closed[p] > 0.0 else -1.0
                        q = abs(closed[p])
                        adl_price = mark[a] + side * d_p / q
                        n_c = 0
                        for k in range(n_pos):
                            qk = qty[k]
                            if pos_asset[k] != a or pos_unit[k] == u or qk == 0.0:
                                continue
                            if (qk > 0.0) == (side > 0.0):
                                continue
                            gain = qk * (mark[a] - pos_entry[k])
                            if gain <= 0.0:
                                continue
                            e, mm, nn, w = unit_values_nb(pos_unit[k], mark, usd, coll, qty,
                                                          pos_asset, pos_entry, unit_pos_start,
                                                          haircut, mmr)
                            ratio = mm / e if e > 0.0 else 0.0
                            cand[n_c] = k
                            cand_key[n_c] = -(gain / max(1.0, w) * ratio)
                            n_c += 1
                        order = np.argsort(cand_key[:n_c], kind="mergesort")
                        rem = q
                        for o in range(n_c):
                            if rem <= 0.0:
                                break
                            k = cand[order[o]]
                            v = pos_unit[k]
                            size = abs(qty[k])
                            dq = rem if rem < size else size
                            usd[v] += (-side * dq) * (adl_price - pos_entry[k])
                            if dq == size:
                                qty[k] = 0.0
                            else:
                                qty[k] += side * dq
                            covered = dq * d_p / q
                            rem -= dq
                            refresh_unit_nb(v, usd, coll, qty, pos_asset, pos_entry,
                                            unit_pos_start, haircut, mmr, lin, const, n_open)
                            if n_ev >= capacity:
                                overflow = True
                                break
                            _put_event(ev_i, ev_f, n_ev, i, t, r, v, KIND_ADL, INSTRUMENT_PERP,
                                       a, side * dq, mark[a], adl_price, dq * abs(adl_price),
                                       0.0, covered)
                            n_ev += 1
                            adl_notional += dq * abs(adl_price)
                            n_adl += 1
                        if overflow:
                            break
                        if rem > 0.0:
                            socialised += d_p * rem / q
                    if overflow:
                        break
                if overflow:
                    break
            if overflow:
                break
            if r > max_r:
                max_r = r
            for a in range(n_assets):
                if mark[a] < min_price[i, a]:
                    min_price[i, a] = mark[a]
                if i < n_save:
                    marks_out[i, t, a] = mark[a]
        if overflow:
            return ev_start, i
        for a in range(n_assets):
            final_price[i, a] = mark[a]
        for u in range(n_units):
            nav = usd[u]
            for a in range(n_assets):
                nav += coll[u, a] * mark[a]
            for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
                if qty[p] != 0.0:
                    nav += qty[p] * (mark[pos_asset[p]] - pos_entry[p])
            acct_pnl[i, unit_account[u]] += nav - unit_nav0[u]
        path_f[i, PF_LIQUIDATED_NOTIONAL] = liq_notional
        path_f[i, PF_BAD_DEBT] = bad_debt_total
        path_f[i, PF_FUND_END] = fund
        path_f[i, PF_ADL_NOTIONAL] = adl_notional
        path_f[i, PF_SOCIALISED] = socialised
        path_f[i, PF_FEES] = fees
        path_i[i, PI_N_LIQUIDATIONS] = n_liq
        path_i[i, PI_MAX_ROUNDS] = max_r
        path_i[i, PI_FIRST_STEP] = first_step
        path_i[i, PI_DEPLETED] = depleted
        path_i[i, PI_N_ADL] = n_adl
    return n_ev, n_paths
