"""Numba kernels of a cascade round once its liquidatable units are known
(``docs/engine.md``, "One round"): 1. fractions and 2. flow (:mod:`.round`), 3. impact,
and 4. settle (derivatives here, lending in :mod:`.lending`); 5. marks are set by
:func:`.replay.replay_nb` and 6. the uncovered deficits are in :mod:`.backstop`.

Stages of :func:`.replay.replay_nb`, inlined into it, like those of :mod:`.step`: they take
the replay's records (:mod:`simulator.margin.records`), bind the arrays they use to local
names once, and keep the counters in ``lists.count`` (``codes.CNT_*``) and the path's
records in ``out.path_f``, ``out.path_i``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from simulator._kernels.bounds import bound_price_nb
from simulator.margin._kernels.lending import lending_settle_nb
from simulator.margin._kernels.options import close_option_nb, option_event_prices_nb
from simulator.margin._kernels.round import round_flow_nb, round_fractions_nb
from simulator.margin._kernels.state import (
    close_position_nb,
    instrument_nb,
    put_event_nb,
    state_changed_nb,
    touch_nb,
    unit_values_nb,
)
from simulator.margin._kernels.step import index_step_nb, value_marks_nb
from simulator.margin.codes import (
    CNT_EVENTS,
    CNT_PENDING,
    CNT_TOUCHED,
    FLAG_BANKRUPT,
    FLAG_LIQUIDATED,
    FP_ALPHA,
    FP_FEE_RATE,
    INSTRUMENT_COLLATERAL,
    INSTRUMENT_DEBT,
    IP_MODE,
    KIND_BACKSTOP,
    OC_PAR,
    OP_FEE_RATE,
    PF_BAD_DEBT,
    PF_FEES,
    PF_FUND_END,
    PF_LIQUIDATED_NOTIONAL,
    PI_FIRST_STEP,
    PI_N_CASCADE,
    PI_N_LIQUIDATIONS,
    PI_PRICE_BOUNDED,
    POS_CALL,
)


@njit(cache=True, inline="always")
def start_round_nb(i, t, n_l, prices, book, rules, options, out, state, lists, assets, rnd
                   ):  # pragma: no cover - jitted
    """Steps 1 to 3 of a round of step ``t`` of path ``i`` over the ``n_l`` liquidatable
    units ``lists.liq``: fractions (derivatives) or plans (lending), the net flow, and the
    impact: the marks after the round (``assets.mark2``), their log move (``assets.dlog``)
    and the execution prices (``assets.xprice``)."""
    path_i = out.path_i
    if path_i[i, PI_FIRST_STEP] < 0:
        path_i[i, PI_FIRST_STEP] = t
    liq = lists.liq
    mark = assets.mark
    coll = state.coll
    qty = state.qty
    pos_asset = book.pos_asset
    pos_entry = book.pos_entry
    pos_kind = book.pos_kind
    unit_pos_start = book.unit_pos_start
    kind = rnd.kind
    frac = rnd.frac
    plan_g = rnd.plan_g
    plan_k = rnd.plan_k
    flow = assets.flow
    round_fractions_nb(liq, n_l, rules.lending_on, rules.iparams[IP_MODE], rules.fparams, mark,
                       state.usd, coll, qty, pos_asset, pos_entry, pos_kind, unit_pos_start,
                       rules.haircut, rules.tiers, kind, frac, plan_g, plan_k, rnd.plan_r,
                       rnd.plan_s, rnd.plan_c, t, options.oc_or_none)
    round_flow_nb(liq, n_l, rules.lending_on, kind, frac, plan_g, plan_k, mark, coll, qty,
                  pos_asset, pos_entry, pos_kind, unit_pos_start, flow, t, options.oc_or_none)
    alpha = rules.fparams[FP_ALPHA]
    depth = prices.depth
    book = assets.book  # the fills execute on the venue's book
    book2 = assets.book2
    xprice = assets.xprice
    dlog = assets.dlog
    p_lo = assets.p_lo
    p_hi = assets.p_hi
    for a in range(mark.shape[0]):
        q_usd = flow[a] * book[a]
        if alpha == 0.0 or q_usd == 0.0:
            dlog[a] = 0.0
            book2[a] = book[a]
            xprice[a] = book[a]
        else:
            sgn = 1.0 if q_usd > 0.0 else -1.0
            dlog[a] = -sgn * 0.01 * (abs(q_usd) / depth[t, a]) ** alpha
            book2[a] = book[a] * np.exp(dlog[a])
            if not (p_lo[a] <= book2[a] <= p_hi[a]):  # the impact law is unbounded
                path_i[i, PI_PRICE_BOUNDED] = 1
                book2[a] = bound_price_nb(book2[a], p_lo[a], p_hi[a])
                dlog[a] = np.log(book2[a] / book[a])
            xprice[a] = book[a] + (book2[a] - book[a]) / (1.0 + alpha)
    mark2 = assets.mark2
    for a in range(mark.shape[0]):
        mark2[a] = book2[a]
    oracle = prices.oracle
    if oracle.shape[0] > 0:  # the marks after the round: the index does not move
        value_marks_nb(oracle[i, index_step_nb(t, rules)], book2, assets.basis,
                       rules.price_rule, mark2)


@njit(cache=True, inline="always")
def settle_lending_nb(i, t, r, j, u, book, rules, out, state, lists, assets, rnd
                      ):  # pragma: no cover - jitted
    """Step 4 on a lending venue for unit ``u`` (``lists.liq[j]``): its plan
    (:func:`.lending.lending_settle_nb`). Returns ``(fee, bad_debt, deficit, repaid,
    overflow)``; on overflow nothing was changed."""
    closed = rnd.closed
    closed_notional = rnd.closed_notional
    unit_pos_start = book.unit_pos_start
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        closed[p] = 0.0  # a lending deficit is socialised as a whole
        closed_notional[p] = 0.0
    count = lists.count
    path_f = out.path_f
    repaid = rnd.plan_r[j]
    fund, fee, bd, paid, deficit, count[CNT_EVENTS], overflow = lending_settle_nb(
        rules.lending_on, i, t, r, u, rnd.plan_g[j], rnd.plan_k[j], repaid, rnd.plan_s[j],
        rnd.plan_c[j], assets.mark, state.usd, state.coll, state.qty, book.pos_asset,
        unit_pos_start, rules.fparams, path_f[i, PF_FUND_END], out.ev_i, out.ev_f,
        count[CNT_EVENTS])
    path_f[i, PF_FUND_END] = fund
    return fee, bd, deficit, repaid, overflow


@njit(cache=True, inline="always")
def close_unit_nb(t, j, u, book, options, state, assets, rnd):  # pragma: no cover - jitted
    """Step 4 on a derivatives venue, first part: close the fraction ``rnd.frac[j]`` of unit
    ``u``'s positions at the execution prices (a backstop takes them at the marks; options
    only in a full close, at their value), recording each in ``rnd.closed`` and
    ``rnd.closed_notional``. Returns ``(closed notional, perpetual notional, option
    fee)``."""
    f = rnd.frac[j]
    full = f == 1.0
    px = assets.mark if rnd.kind[j] == KIND_BACKSTOP else assets.xprice
    oc = options.oc
    usd = state.usd
    coll = state.coll
    qty = state.qty
    pos_asset = book.pos_asset
    pos_entry = book.pos_entry
    pos_kind = book.pos_kind
    unit_pos_start = book.unit_pos_start
    closed = rnd.closed
    closed_notional = rnd.closed_notional
    opt_fee_rate = oc[OC_PAR][OP_FEE_RATE]
    sum_n = 0.0
    option_fee = 0.0
    perp_n = 0.0
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        closed[p] = 0.0
        closed_notional[p] = 0.0
        if qty[p] != 0.0:
            a = pos_asset[p]
            if pos_kind[p] >= POS_CALL:  # options: only in a full close
                if not full:
                    continue
                c = qty[p]
                n_opt, v_opt = close_option_nb(u, p, c, px[a], t, options.oc_or_none, usd,
                                               pos_asset, pos_entry, pos_kind)
                closed_notional[p] = n_opt
                fee_opt = opt_fee_rate * n_opt
                option_fee += min(fee_opt, abs(c) * v_opt)
                qty[p] = 0.0
                closed[p] = c
                sum_n += n_opt
                continue
            c = qty[p] if full else f * qty[p]
            closed_notional[p] = close_position_nb(u, p, c, px[a], usd, coll, pos_asset,
                                                   pos_entry, pos_kind)
            perp_n += closed_notional[p]
            if full:
                qty[p] = 0.0
            else:
                qty[p] -= c
            closed[p] = c
            sum_n += closed_notional[p]
    return sum_n, perp_n, option_fee


@njit(cache=True, inline="always")
def charge_unit_nb(i, t, j, u, perp_n, option_fee, book, rules, options, out, state, assets,
                   rnd):  # pragma: no cover - jitted
    """Step 4 on a derivatives venue, second part, after :func:`close_unit_nb`: a full close
    sells the collateral into USD; the fee (a backstop keeps the equity left) goes to the
    fund, which pays what it can of the bad debt. Returns ``(fee, bad_debt, paid,
    deficit)``."""
    usd = state.usd
    coll = state.coll
    full = rnd.frac[j] == 1.0
    backstopped = rnd.kind[j] == KIND_BACKSTOP
    px = assets.mark if backstopped else assets.xprice
    if full:
        for a in range(px.shape[0]):
            if coll[u, a] != 0.0:
                usd[u] += coll[u, a] * px[a]
        e2 = usd[u]
    else:
        e2, mm2, nn2, w2 = unit_values_nb(u, assets.mark2, usd, coll, state.qty, book.pos_asset,
                                          book.pos_entry, book.pos_kind, book.unit_pos_start,
                                          rules.haircut, rules.tiers, t,
                                          options.oc_or_none)
    room = e2 if e2 > 0.0 else 0.0
    fee = room if backstopped else rules.fparams[FP_FEE_RATE] * perp_n + option_fee
    if fee > room:
        fee = room
    path_f = out.path_f
    fund = path_f[i, PF_FUND_END]
    usd[u] -= fee
    fund += fee
    bd = 0.0
    paid = 0.0
    deficit = 0.0
    if full and usd[u] < 0.0:
        bd = -usd[u]
        usd[u] = 0.0
        paid = bd if bd < fund else fund
        fund -= paid
        deficit = bd - paid
    path_f[i, PF_FUND_END] = fund
    return fee, bd, paid, deficit


@njit(cache=True, inline="always")
def unit_events_nb(i, t, r, j, u, fee, bd, paid, sum_n, book, options, out, state, lists,
                   assets, rnd):  # pragma: no cover - jitted
    """Step 4 on a derivatives venue, last part: the events of unit ``u`` (``lists.liq[j]``),
    one per closed position (fee, bad debt and fund paid shared by notional), one for a
    unit that closed nothing but pays a fee or leaves bad debt, then (a full close) one per
    collateral sold, which zeroes it. Returns True when the event buffer is full."""
    ev_i = out.ev_i
    ev_f = out.ev_f
    capacity = ev_i.shape[0]
    mark = assets.mark
    kind_j = rnd.kind[j]
    px = mark if kind_j == KIND_BACKSTOP else assets.xprice
    closed = rnd.closed
    closed_notional = rnd.closed_notional
    pos_asset = book.pos_asset
    pos_entry = book.pos_entry
    pos_kind = book.pos_kind
    coll = state.coll
    count = lists.count
    n_ev = count[CNT_EVENTS]
    overflow = False
    for p in range(book.unit_pos_start[u], book.unit_pos_start[u + 1]):
        if closed[p] != 0.0:
            if n_ev >= capacity:
                overflow = True
                break
            share = closed_notional[p] / sum_n if sum_n > 0.0 else 0.0
            a = pos_asset[p]
            m_ev = mark[a]
            x_ev = px[a]
            if pos_kind[p] >= POS_CALL:  # an option's own prices
                m_ev, x_ev = option_event_prices_nb(p, a, pos_kind[p], mark[a], px[a],
                                                    pos_entry[p], t, options.oc_or_none)
            put_event_nb(ev_i, ev_f, n_ev, i, t, r, u, kind_j, instrument_nb(pos_kind[p]), a,
                         -closed[p], m_ev, x_ev, closed_notional[p], fee * share, bd * share,
                         paid * share)
            n_ev += 1
    if sum_n == 0.0 and (bd > 0.0 or fee > 0.0) and not overflow:
        # nothing closed (a unit with only a negative balance): its fee and bad debt get an
        # event of their own
        if n_ev >= capacity:
            overflow = True
        else:
            put_event_nb(ev_i, ev_f, n_ev, i, t, r, u, kind_j, INSTRUMENT_DEBT, -1, 0.0, 1.0,
                         1.0, 0.0, fee, bd, paid)
            n_ev += 1
    if rnd.frac[j] == 1.0 and not overflow:
        for a in range(mark.shape[0]):
            amount = coll[u, a]
            if amount != 0.0:  # < 0: a coin debt bought back
                if n_ev >= capacity:
                    overflow = True
                    break
                put_event_nb(ev_i, ev_f, n_ev, i, t, r, u, kind_j, INSTRUMENT_COLLATERAL, a,
                             -amount, mark[a], px[a], abs(amount) * px[a], 0.0, 0.0, 0.0)
                n_ev += 1
                coll[u, a] = 0.0
    count[CNT_EVENTS] = n_ev
    return overflow


@njit(cache=True, inline="always")
def settled_nb(i, r, u, fee, bd, sum_n, deficit, ev_lo, n_b, book, rules, out, state, lists,
               assets, rnd):  # pragma: no cover - jitted
    """Step 4, after unit ``u`` is settled in round ``r``: the path's records, its flags
    (liquidated, bankrupt; its margin call disarmed), its slack form at the new marks, and
    (``deficit > 0``) its place in the round's list of bankrupt units, whose events start
    at ``ev_lo``. Returns the new length ``n_b`` of that list."""
    path_f = out.path_f
    path_i = out.path_i
    flag = state.flag
    count = lists.count
    path_f[i, PF_FEES] += fee
    flag[u] |= FLAG_LIQUIDATED
    if bd > 0.0:
        flag[u] |= FLAG_BANKRUPT
    path_i[i, PI_N_LIQUIDATIONS] += 1
    if r > 1:  # a later round: brought below maintenance by the cascade
        path_i[i, PI_N_CASCADE] += 1
    path_f[i, PF_LIQUIDATED_NOTIONAL] += sum_n
    path_f[i, PF_BAD_DEBT] += bd
    count[CNT_TOUCHED] = touch_nb(u, flag, lists.touched, count[CNT_TOUCHED])
    mmk = state.mmk
    mmk[u] = 1.0  # a liquidation disarms the margin call
    count[CNT_PENDING] = state_changed_nb(
        u, assets.mark2, state.usd, state.coll, state.qty, book.pos_asset, book.pos_entry,
        book.pos_kind, book.unit_pos_start, rules.haircut, rules.tiers, mmk, state.lin,
        state.const, state.n_open, state.version, flag, lists.pending, count[CNT_PENDING])
    if deficit > 0.0:
        rnd.bank_unit[n_b] = u
        rnd.bank_deficit[n_b] = deficit
        rnd.bank_ev_lo[n_b] = ev_lo
        rnd.bank_ev_hi[n_b] = count[CNT_EVENTS]
        n_b += 1
    return n_b
