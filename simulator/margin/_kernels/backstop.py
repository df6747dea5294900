"""Numba kernels of the backstops behind the insurance fund: auto-deleveraging of the
opposite side at the bankruptcy price, and socialised losses (``docs/engine.md``, step 6).

:func:`cover_round_deficits_nb` is the step as a stage of :func:`.replay.replay_nb`,
inlined into it (it takes the replay's records, :mod:`simulator.margin.records`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from simulator._kernels.jit import allocating, leaf
from simulator.margin._kernels.adl import adl_allowance_nb, adl_fill_nb, pro_rata_cover_nb
from simulator.margin._kernels.state import (
    instrument_nb,
    position_value_nb,
    put_event_nb,
    unit_values_nb,
)
from simulator.margin.codes import (
    CNT_EVENTS,
    CNT_PENDING,
    CNT_TOUCHED,
    EF_BAD_DEBT,
    EF_FUND_PAID,
    FP_ADL_CAP,
    INSTRUMENT_DEBT,
    IP_ADL,
    IP_ADL_RANKING,
    KIND_SOCIALISED,
    N_POS_KINDS,
    PF_ADL_NOTIONAL,
    PF_FUND_END,
    PF_SOCIALISED,
    PI_DEPLETED,
    PI_N_ADL,
    POS_CALL,
    POS_INVERSE,
    RANK_BYBIT,
    RANK_PRO_RATA,
    RANK_PROFIT_LEVERAGE,
)


@njit(cache=True, inline="always")
def adl_rank_nb(qk, mark_a, entry, kind, gain, e, mm, w, ranking):  # pragma: no cover
    """ADL priority of a position in profit (``gain > 0``) of a unit with equity ``e``,
    maintenance ``mm`` and wallet ``w`` (:func:`.state.unit_values_nb`)."""
    if ranking == RANK_PROFIT_LEVERAGE:
        rho = mark_a / entry if qk > 0.0 else entry / mark_a
        notional = abs(qk) if kind == POS_INVERSE else abs(qk) * mark_a
        return rho * (notional / e if e > 0.0 else 0.0)
    if ranking == RANK_BYBIT:  # PnL percentage x effective leverage (docs/engine.md)
        inverse = kind == POS_INVERSE
        entry_value = abs(qk) if inverse else abs(qk) * entry
        notional = abs(qk) if inverse else abs(qk) * mark_a
        return gain / entry_value * (notional / e if e > 0.0 else 0.0)
    return gain / max(1.0, w) * (mm / e if e > 0.0 else 0.0)


#: ADL candidates picked one by one before the rest are sorted
PICKS_BEFORE_SORT = 32


@leaf
def next_best_nb(keys, n):  # pragma: no cover - jitted
    """Index of the smallest of ``keys[:n]`` (the first one on ties)."""
    best = 0
    for j in range(1, n):
        if keys[j] < keys[best]:
            best = j
    return best


@allocating  # (a leaf kernel, the replay's path, calls it)
def stable_order_nb(keys):  # pragma: no cover - jitted
    """The order that sorts ``keys`` ascending, ties in index order: ``np.argsort(keys,
    kind="mergesort")`` (a bottom-up merge sort; Numba's own took 3 s to compile)."""
    n = keys.shape[0]
    order = np.empty(n, dtype=np.int64)
    for j in range(n):
        order[j] = j
    tmp = np.empty(n, dtype=np.int64)
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                if keys[order[j]] < keys[order[i]]:  # the left one first on ties: stable
                    tmp[k] = order[j]
                    j += 1
                else:
                    tmp[k] = order[i]
                    i += 1
                k += 1
            while i < mid:
                tmp[k] = order[i]
                i += 1
                k += 1
            while j < hi:
                tmp[k] = order[j]
                j += 1
                k += 1
        order, tmp = tmp, order
        width *= 2
    return order


@allocating  # (it sorts its candidates, and a leaf kernel, the replay's path, calls it)
def cover_deficit_nb(i, t, r, u, deficit, mark, usd, coll, qty, pos_unit, pos_asset,
                     pos_entry, pos_kind, unit_pos_start, haircut, tiers, mmk, lin, const,
                     n_open, version, flag, pending, n_pending, touched, n_touched, closed,
                     closed_notional, adl_on, ranking, ev_i, ev_f, n_ev, oc, group_pos,
                     group_unit, group_start, adl_key, adl_key_ver, adl_group_gen, adl_e,
                     adl_mm, adl_w, adl_n, adl_gen, adl_ver, gen, ev_adl, cap, adl_used
                     ):  # pragma: no cover - jitted
    """Cover the uncovered deficit of bankrupt unit ``u`` by ADL, or socialise it.

    The share of a closed option is socialised: options are not auto-deleveraged.

    The candidates for a position closed on asset ``a`` are the open positions in profit of
    the same asset and kind on the other side: a group of ``group_pos`` (``group_unit``
    their units), in increasing index. A candidate's key (minus its score) depends on the
    marks, fixed during step 6, and on its unit's state, which within step 6 only ADL
    changes (and every change bumps the unit's ``version``). Each position's key is
    therefore kept (``adl_key``, +inf for no candidate) with the unit version it was
    computed at (``adl_key_ver``) for the whole step 6 (``gen``, stamped per group in
    ``adl_group_gen``), and the unit values behind it once per unit and version
    (``adl_e``, ``adl_mm``, ``adl_w``, ``adl_gen``, ``adl_ver``): a pick recomputes only
    the keys of units changed since, exactly as if it computed all of them again. (A
    cascade's bankruptcies come in few rounds: on ``october-2025-cascade`` about 400
    bankrupt positions a path in 5 rounds.)

    ``ranking`` ``pro_rata`` and ``leverage_pro_rata`` share the quantity instead
    (:func:`.adl.pro_rata_cover_nb`, ``adl_key`` its scratch). ADL closes at most
    :func:`.adl.adl_allowance_nb` of each position under the per-step cap ``cap``
    (``adl_used``); each fill's unit is recorded in ``ev_adl`` (its event's row).

    Returns
    -------
    n_pending, n_touched, n_ev : int
    adl_notional, socialised : float
    n_adl : int
    overflow : bool
        The event buffer is full; the path must be replayed with a larger one.
    """
    capacity = ev_i.shape[0]
    adl_notional = 0.0
    socialised = 0.0
    n_adl = 0
    sum_n = 0.0
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        sum_n += closed_notional[p]
    if sum_n <= 0.0:
        if n_ev >= capacity:
            return n_pending, n_touched, n_ev, adl_notional, socialised, n_adl, True
        put_event_nb(ev_i, ev_f, n_ev, i, t, r, u, KIND_SOCIALISED, INSTRUMENT_DEBT, -1, 0.0,
                     1.0, 1.0, 0.0, 0.0, deficit, 0.0)
        return n_pending, n_touched, n_ev + 1, adl_notional, deficit, n_adl, False
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        if closed[p] == 0.0:
            continue
        a = pos_asset[p]
        d_p = deficit * closed_notional[p] / sum_n
        side = 1.0 if closed[p] > 0.0 else -1.0
        q = abs(closed[p])
        rem = q
        held = 0.0  # what the per-step cap keeps from ADL
        inverse = pos_kind[p] == POS_INVERSE
        # bankruptcy price: each unit closed gives up d_p / q of USD (an inverse contract
        # gives it up in the coin, which needs side * d_p / q < 1)
        tradeable = pos_kind[p] < POS_CALL and (not inverse or side * d_p / q < 1.0)
        if adl_on and tradeable:
            if inverse:
                adl_price = mark[a] / (1.0 - side * d_p / q)
            else:
                adl_price = mark[a] + side * d_p / q
            g = (a * N_POS_KINDS + pos_kind[p]) * 2 + (1 if side < 0.0 else 0)
            lo = group_start[g]
            n_c = group_start[g + 1] - lo
            q_adl = adl_allowance_nb(q, adl_price, inverse, cap, adl_used, i, t)
            held = q - q_adl
            rem = q_adl
            if ranking >= RANK_PRO_RATA:
                (n_pending, n_touched, n_ev, rem, add_notional, add_n,
                 overflow) = pro_rata_cover_nb(
                    i, t, r, u, a, pos_kind[p], side, q, q_adl, d_p, adl_price, mark, usd,
                    coll, qty, pos_unit, pos_asset, pos_entry, pos_kind, unit_pos_start,
                    haircut, tiers, mmk, lin, const, n_open, version, flag, pending, n_pending,
                    touched, n_touched, ranking, ev_i, ev_f, ev_adl, n_ev, oc, group_pos,
                    group_unit, lo, n_c, adl_key[lo:lo + n_c], cap, adl_used)
                adl_notional += add_notional
                n_adl += add_n
                if overflow:
                    return n_pending, n_touched, n_ev, adl_notional, socialised, n_adl, True
            else:  # the ranked walk
                if adl_group_gen[g] != gen:  # first use in this step 6: every key is stale
                    adl_group_gen[g] = gen
                    for j in range(lo, lo + n_c):
                        adl_key_ver[j] = -1
                for j in range(lo, lo + n_c):  # the keys of units changed since, fresh
                    v = group_unit[j]
                    if v == u:  # not its own counterparty: out of this pick, fresh next time
                        adl_key[j] = np.inf
                        adl_key_ver[j] = -1
                        continue
                    if adl_key_ver[j] == version[v]:
                        continue
                    adl_key_ver[j] = version[v]
                    k = group_pos[j]
                    qk = qty[k]
                    adl_key[j] = np.inf  # not a candidate: closed, or not in profit
                    if qk == 0.0:
                        continue
                    gain = position_value_nb(qk, mark[a], pos_entry[k], pos_kind[k])
                    if gain <= 0.0:
                        continue
                    if adl_gen[v] != gen or adl_ver[v] != version[v]:
                        e, mm, nn, w = unit_values_nb(v, mark, usd, coll, qty, pos_asset,
                                                      pos_entry, pos_kind, unit_pos_start,
                                                      haircut, tiers, t, oc)
                        adl_e[v] = e
                        adl_mm[v] = mm
                        adl_w[v] = w
                        adl_n[v] = nn
                        adl_gen[v] = gen
                        adl_ver[v] = version[v]
                    adl_key[j] = -adl_rank_nb(qk, mark[a], pos_entry[k], pos_kind[k], gain,
                                              adl_e[v], adl_mm[v], adl_w[v], ranking)
                keys = adl_key[lo:lo + n_c]
                # best first (ties: lowest position index). A deficit is usually covered by the
                # first few candidates, so they are picked one at a time; past PICKS_BEFORE_SORT
                # the rest are sorted once (taken ones, keyed +inf, sort last). A taken
                # candidate's unit changes, so its key is fresh at the next pick
                order = np.empty(0, dtype=np.int64)
                for o in range(n_c):
                    if rem <= 0.0:
                        break
                    if o < PICKS_BEFORE_SORT:
                        best = next_best_nb(keys, n_c)
                    else:
                        if o == PICKS_BEFORE_SORT:
                            order = stable_order_nb(keys)
                        best = order[o - PICKS_BEFORE_SORT]
                    if keys[best] == np.inf:  # no candidate left
                        break
                    keys[best] = np.inf  # taken
                    k = group_pos[lo + best]
                    v = pos_unit[k]
                    size = abs(qty[k])
                    dq = rem if rem < size else size
                    if adl_gen[v] == gen and adl_ver[v] == version[v]:  # its key's values
                        e, nn, w = adl_e[v], adl_n[v], adl_w[v]  # (the marks hold in step 6)
                    else:
                        e, mm, nn, w = unit_values_nb(v, mark, usd, coll, qty, pos_asset,
                                                      pos_entry, pos_kind, unit_pos_start,
                                                      haircut, tiers, t, oc)
                    n_pending, n_touched, n_ev, notional, overflow = adl_fill_nb(
                        i, t, r, v, k, a, inverse, side, dq, size, adl_price, dq * d_p / q, e,
                        nn, w, (mark, usd, coll, qty, pos_asset, pos_entry, pos_kind,
                                unit_pos_start, haircut, tiers, mmk, lin, const, n_open,
                                version, flag, pending, touched), n_pending, n_touched,
                        (ev_i, ev_f, ev_adl), n_ev, cap, adl_used)
                    if overflow:
                        return n_pending, n_touched, n_ev, adl_notional, socialised, n_adl, True
                    rem -= dq
                    adl_notional += notional
                    n_adl += 1
        if rem + held > 0.0:
            loss = d_p * (rem + held) / q
            socialised += loss
            if n_ev >= capacity:
                return n_pending, n_touched, n_ev, adl_notional, socialised, n_adl, True
            put_event_nb(ev_i, ev_f, n_ev, i, t, r, u, KIND_SOCIALISED,
                         instrument_nb(pos_kind[p]), a, 0.0, mark[a], mark[a], 0.0, 0.0, loss,
                         0.0)
            n_ev += 1
    return n_pending, n_touched, n_ev, adl_notional, socialised, n_adl, False


@leaf
def share_fund_paid_nb(ev_f, lo, hi, paid):  # pragma: no cover - jitted
    """Add ``paid`` to the fund-paid column of events ``lo:hi`` in proportion to their bad
    debt (the events of one bankrupt unit in this round)."""
    total = 0.0
    for e in range(lo, hi):
        total += ev_f[e, EF_BAD_DEBT]
    if total <= 0.0:
        return
    for e in range(lo, hi):
        ev_f[e, EF_FUND_PAID] += paid * ev_f[e, EF_BAD_DEBT] / total


@njit(cache=True, inline="always")
def cover_round_deficits_nb(i, t, r, n_b, book, rules, options, out, state, lists, assets,
                            rnd):  # pragma: no cover - jitted
    """Step 6 of round ``r``: the uncovered deficits of the round's ``n_b`` bankrupt units
    (``rnd.bank_*``), in order. The fund pays what it now can (fees paid in later in the
    round refill it), shared over the unit's events of the round by bad debt; the rest is
    covered by ADL or socialised (:func:`cover_deficit_nb`). Returns True when the event
    buffer is full."""
    overflow = False
    if n_b == 0:
        return overflow
    path_f = out.path_f
    path_i = out.path_i
    count = lists.count
    bank_deficit = rnd.bank_deficit
    adl_on = rules.iparams[IP_ADL] != 0
    ranking = rules.iparams[IP_ADL_RANKING]
    rnd.adl_clock[0] += 1  # this step 6: scores of earlier ones are stale
    gen = rnd.adl_clock[0]
    for b in range(n_b):
        deficit = bank_deficit[b]
        fund = path_f[i, PF_FUND_END]
        paid = deficit if deficit < fund else fund
        if paid > 0.0:
            path_f[i, PF_FUND_END] = fund - paid
            deficit -= paid
            share_fund_paid_nb(out.ev_f, rnd.bank_ev_lo[b], rnd.bank_ev_hi[b], paid)
        if deficit <= 0.0:
            continue
        path_i[i, PI_DEPLETED] = 1
        (count[CNT_PENDING], count[CNT_TOUCHED], count[CNT_EVENTS], adl_add, soc_add,
         n_adl_add, overflow) = cover_deficit_nb(
            i, t, r, rnd.bank_unit[b], deficit, assets.mark, state.usd, state.coll, state.qty,
            book.pos_unit, book.pos_asset, book.pos_entry, book.pos_kind, book.unit_pos_start,
            rules.haircut, rules.tiers, state.mmk, state.lin, state.const, state.n_open,
            state.version, state.flag, lists.pending, count[CNT_PENDING], lists.touched,
            count[CNT_TOUCHED], rnd.closed, rnd.closed_notional, adl_on, ranking, out.ev_i,
            out.ev_f, count[CNT_EVENTS], options.oc_or_none, book.group_pos, book.group_unit,
            book.group_start, rnd.adl_key, rnd.adl_key_ver, rnd.adl_group_gen, rnd.adl_e,
            rnd.adl_mm, rnd.adl_w, rnd.adl_n, rnd.adl_gen, rnd.adl_ver, gen, out.ev_adl,
            rules.fparams[FP_ADL_CAP], rnd.adl_used)
        path_f[i, PF_ADL_NOTIONAL] += adl_add
        path_f[i, PF_SOCIALISED] += soc_add
        path_i[i, PI_N_ADL] += n_adl_add
        if overflow:
            break
    return overflow
