"""Numba kernels of the margin engine: the step-by-step replay with liquidation cascades.

Implements ``docs/engine.md`` exactly; ``tests/naive.py`` is the slow reference it is
tested against. Arrays in, ``out=`` arrays; no Python objects, no exceptions: the event
buffer reports overflow by returning the first path it could not finish.

For speed the liquidation test of unit ``u`` uses the linear form of its margin slack,
``E_u - MM_u = const[u] + sum_a lin[u, a] * M[a]``, refreshed whenever the unit changes,
and only units whose safe band the marks have left are tested at all
(``_index_kernels.py``); ``full_scan`` tests every unit at every round instead, for
checking. The cost of a path is then that of its events, not accounts x steps: the state
of the units a path touched is restored at its end, and account PnL is reported as a
linear function of the final marks plus corrections for the units that changed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from simulator.config.limits import BOUND_REL_TOL, PRICE_CAP_RATIO, PRICE_FLOOR_RATIO
from simulator.kernels.bounds import bound_price_nb
from simulator.margin._kernels.backstop import cover_deficit_nb, share_fund_paid_nb
from simulator.margin._kernels.behaviour import answer_calls_nb, draw_nb, pay_funding_nb
from simulator.margin._kernels.index import collect_crossed_nb, heap_bound_nb, push_band_nb
from simulator.margin._kernels.lending import lending_settle_nb
from simulator.margin._kernels.option_boxes import N_WORK, option_check_nb, push_option_box_nb
from simulator.margin._kernels.options import (
    close_option_nb,
    option_slack_nb,
    settle_option_nb,
    value_at_nb,
)
from simulator.margin._kernels.round import round_flow_nb, round_fractions_nb
from simulator.margin._kernels.stages import push_stage_box_nb
from simulator.margin._kernels.state import (
    close_position_nb,
    end_path_nb,
    enqueue_nb,
    instrument_nb,
    put_event_nb,
    refresh_unit_nb,
    restore_nb,
    state_changed_nb,
    touch_nb,
    unit_values_nb,
)
from simulator.margin.codes import (
    FLAG_BANKRUPT,
    FLAG_CHANGED,
    FLAG_DIRTY,
    FLAG_LIQUIDATED,
    FLAG_MOVED,
    FLAG_PENDING,
    FLAG_TOUCHED,
    FP_ALPHA,
    FP_CALL_PROB,
    FP_CALL_TARGET,
    FP_DECAY,
    FP_FEE_RATE,
    FP_FUND0,
    FP_FUNDING_CAP,
    FP_FUNDING_RATE,
    INSTRUMENT_COLLATERAL,
    INSTRUMENT_DEBT,
    IP_ADL,
    IP_ADL_RANKING,
    IP_CALL_ACTION,
    IP_CALL_DELAY,
    IP_FULL_SCAN,
    IP_FUNDING_INTERVAL,
    IP_FUNDING_PREMIUM,
    IP_LENDING,
    IP_MAX_ROUNDS,
    IP_MODE,
    IP_RNG_KEY,
    KIND_BACKSTOP,
    OC_PAR,
    OC_UNIT_OPT,
    OP_FEE_RATE,
    OVERFLOW_CORRECTIONS,
    OVERFLOW_EVENTS,
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
    PI_N_CASCADE,
    PI_N_LIQUIDATIONS,
    PI_PRICE_BOUNDED,
    POS_CALL,
    TIER_CAP,
)


@njit(cache=True, nogil=True)
def replay_nb(exo, depth, haircut, tiers, sigma, unit_usd0, unit_coll0, unit_pos_start,
              unit_account, pos_unit, pos_asset, pos_qty0, pos_entry, pos_kind, lin0, const0,
              n_open0, navk, navc, s_key, s_unit, s_start, init_pending, mmk0, reserve, fparams,
              iparams, path_f, path_i, min_price, final_price, marks_out, acct_liq, acct_bank,
              ev_i, ev_f, corr_i, corr_f, first_path, n_ev0, n_corr0, oc, set_pos, set_start,
              opt_units, stage_step, stage_lo, stage_hi, stage_due
              ):  # pragma: no cover - jitted
    """Replay paths ``first_path..n_paths-1`` over the book.

    Parameters
    ----------
    exo : float64[n_paths, steps + 1, A]
        Exogenous prices.
    depth : float64[steps + 1, A]
        Depth in USD per step.
    haircut : float64[A]
        Collateral haircut (lending: 1 - liquidation threshold).
    tiers : float64[A, K, 3]
        Maintenance brackets per asset: cap, rate, cum (``codes.TIER_*``).
    sigma : float64[A]
        Volatility scale of each asset, used only to split safe bands between assets.
    unit_usd0 : float64[U]
    unit_coll0 : float64[U, A]
    unit_pos_start : int64[U + 1]
    unit_account : int64[U]
    pos_unit, pos_asset : int64[P]
    pos_qty0, pos_entry : float64[P]
    pos_kind : int64[P]
        ``codes.POS_LINEAR`` or ``codes.POS_INVERSE`` (qty in USD contracts, PnL in the coin).
    lin0, const0, n_open0 : float64[U, A], float64[U], int64[U]
        Initial slack form of every unit (``refresh_unit_nb``).
    navk, navc : float64[U, A], float64[U]
        Initial net asset value as a linear function of the marks: ``navc + navk @ M``.
    s_key, s_unit, s_start : float64[S], int64[S], int64[2 A + 2]
        Initial band thresholds, per heap ``2 a + d`` sorted by descending key; heap
        ``2 A`` holds the option units' due steps (key ``0.5 - due``).
    init_pending : int64[K]
        Units to check exactly at the first round (no band at the initial prices).
    mmk0 : float64[U]
        Initial maintenance multiplier of each unit's slack form: the margin-call ratio
        (armed) or 1.
    reserve : float64[U]
        USD each unit can deposit when it answers a margin call.
    fparams : float64[N_FP]
        Venue and impact parameters (``codes.FP_*``).
    iparams : int64[N_IP]
        Mode, ADL, max cascade rounds, full scan, lending, ADL ranking (``codes.IP_*``).
    path_f : float64[n_paths, N_PF]
    path_i : int64[n_paths, N_PI]
    min_price, final_price : float64[n_paths, A]
    marks_out : float64[n_save, steps + 1, A]
        Closing mark of every step for the first ``n_save`` paths (``n_save`` may be 0).
    acct_liq, acct_bank : int64[n_accounts]
        Incremented once per path in which an account is liquidated / bankrupt.
    ev_i : int64[capacity, N_EI]
    ev_f : float64[capacity, N_EF]
        Event buffers.
    corr_i : int64[corr_capacity, 2]
    corr_f : float64[corr_capacity]
        PnL corrections ``(path, account) -> nav - (navc + navk @ M_final)`` of the units
        whose state changed.
    first_path : int
        First path to replay.
    n_ev0, n_corr0 : int
        Rows of ``ev_i, ev_f`` and ``corr_i, corr_f`` already written (by the paths before
        ``first_path``): the rows of this call follow them.
    oc : tuple
        The options' data (``_option_kernels``; :func:`option_setup.option_context`).
    set_pos, set_start : int64[E], int64[steps + 2]
        Options expiring at step ``t``: positions ``set_pos[set_start[t]:set_start[t + 1]]``.
    opt_units : int64[O]
        The units that hold options.
    stage_step, stage_lo, stage_hi, stage_due : int64[K], float64[K, O, A] (twice), int64[K, O]
        The option units' boxes at the later stages (``option_boxes.OptionBoxes``): a unit
        whose state is still the initial one gets its box of the stage instead of an exact
        check when it is inside it.

    Returns
    -------
    n_events, n_corrections : int
        Rows written in all, those before ``first_path`` included, for the paths up to
        ``done - 1``.
    done : int
        First path not replayed: ``n_paths`` when all are done.
    overflow : int
        0, or which buffer was too small for path ``done`` (OVERFLOW_* bits).
    """
    n_paths = exo.shape[0]
    steps = exo.shape[1] - 1
    n_assets = exo.shape[2]
    n_units = unit_usd0.shape[0]
    n_pos = pos_qty0.shape[0]
    capacity = ev_i.shape[0]
    fee_rate = fparams[FP_FEE_RATE]
    opt_fee_rate = oc[OC_PAR][OP_FEE_RATE]
    fund0 = fparams[FP_FUND0]
    alpha = fparams[FP_ALPHA]
    decay = fparams[FP_DECAY]
    mode = iparams[IP_MODE]
    adl_on = iparams[IP_ADL] != 0
    max_rounds = iparams[IP_MAX_ROUNDS]
    full_scan = iparams[IP_FULL_SCAN] != 0
    lending = iparams[IP_LENDING] != 0
    ranking = iparams[IP_ADL_RANKING]
    call_prob = fparams[FP_CALL_PROB]
    call_target = fparams[FP_CALL_TARGET]
    call_delay = iparams[IP_CALL_DELAY]
    call_action = iparams[IP_CALL_ACTION]
    funding_every = iparams[IP_FUNDING_INTERVAL]
    funding_premium = iparams[IP_FUNDING_PREMIUM] != 0
    rng_key = iparams[IP_RNG_KEY]
    tiered = False
    for a in range(n_assets):
        if tiers[a, 0, TIER_CAP] < np.inf:
            tiered = True
    n_save = marks_out.shape[0]

    usd = unit_usd0.copy()
    coll = unit_coll0.copy()
    qty = pos_qty0.copy()
    lin = lin0.copy()
    const = const0.copy()
    n_open = n_open0.copy()
    version = np.zeros(n_units, dtype=np.int64)
    flag = np.zeros(n_units, dtype=np.uint8)
    touched = np.empty(n_units, dtype=np.int64)
    pending = np.empty(n_units, dtype=np.int64)
    dirty = np.empty(n_units, dtype=np.int64)
    stamp_liq = np.full(acct_liq.shape[0], -1, dtype=np.int64)
    stamp_bank = np.full(acct_liq.shape[0], -1, dtype=np.int64)
    n_heaps = 2 * n_assets + 1
    heap_cap = 2 * n_units + 64
    h_key = np.empty((n_heaps, heap_cap))
    h_unit = np.empty((n_heaps, heap_cap), dtype=np.int64)
    h_ver = np.empty((n_heaps, heap_cap), dtype=np.int64)
    h_n = np.zeros(n_heaps, dtype=np.int64)
    cursor = np.zeros(n_heaps, dtype=np.int64)
    unit_opt = oc[OC_UNIT_OPT]
    box_lo = np.empty(n_assets)
    box_hi = np.empty(n_assets)
    box_work = np.empty((N_WORK, n_assets))
    ivfac = np.empty(n_assets)
    logimp = np.empty(n_assets)
    p_lo = np.empty(n_assets)
    p_hi = np.empty(n_assets)
    mark = np.empty(n_assets)
    mark2 = np.empty(n_assets)
    xprice = np.empty(n_assets)
    dlog = np.empty(n_assets)
    flow = np.empty(n_assets)
    liq = np.empty(n_units, dtype=np.int64)
    frac = np.empty(n_units)
    mmk = mmk0.copy()
    deposit = np.zeros(n_units)
    q_unit = np.empty(n_units, dtype=np.int64)
    q_due = np.empty(n_units, dtype=np.int64)
    due_units = np.empty(n_units, dtype=np.int64)
    funding_rate = np.empty(n_assets)
    kind = np.empty(n_units, dtype=np.int64)
    plan_g = np.empty(n_units)
    plan_k = np.empty(n_units)
    plan_r = np.empty(n_units)
    plan_s = np.empty(n_units)
    plan_c = np.empty(n_units, dtype=np.bool_)
    closed = np.zeros(n_pos)
    closed_notional = np.zeros(n_pos)
    bank_unit = np.empty(n_units, dtype=np.int64)
    bank_deficit = np.empty(n_units)
    bank_ev_lo = np.empty(n_units, dtype=np.int64)
    bank_ev_hi = np.empty(n_units, dtype=np.int64)
    cand = np.empty(n_pos, dtype=np.int64)
    cand_key = np.empty(n_pos)
    n_stages = stage_step.shape[0]
    opt_row = np.full(n_units, -1, dtype=np.int64)  # option unit -> its row in the stages
    for j in range(opt_units.shape[0]):
        opt_row[opt_units[j]] = j

    n_ev = n_ev0
    n_corr = n_corr0
    for i in range(first_path, n_paths):
        ev_start = n_ev
        for h in range(n_heaps):
            h_n[h] = 0
            cursor[h] = s_start[h]
        n_touched = 0
        n_pending = 0
        for j in range(opt_units.shape[0]):  # an option unit's PnL is never linear
            u = opt_units[j]
            n_touched = touch_nb(u, flag, touched, n_touched)
            flag[u] |= FLAG_CHANGED
        if not full_scan:
            for j in range(init_pending.shape[0]):
                u = init_pending[j]
                n_pending = enqueue_nb(u, flag, FLAG_PENDING, pending, n_pending)
                n_touched = touch_nb(u, flag, touched, n_touched)
        fund = fund0
        q_head = 0
        q_tail = 0
        n_liq = 0
        n_cascade = 0
        max_r = 0
        first_step = -1
        depleted = 0
        n_adl = 0
        liq_notional = 0.0
        bad_debt_total = 0.0
        adl_notional = 0.0
        socialised = 0.0
        fees = 0.0
        bounded = 0
        for a in range(n_assets):
            logimp[a] = 0.0
            min_price[i, a] = exo[i, 0, a]
            p_lo[a] = exo[i, 0, a] * PRICE_FLOOR_RATIO
            p_hi[a] = exo[i, 0, a] * PRICE_CAP_RATIO
            if i < n_save:
                marks_out[i, 0, a] = exo[i, 0, a]
        overflow = False
        stage = -1  # the latest later stage started (-1: the first)
        for t in range(1, steps + 1):
            while stage + 1 < n_stages and stage_step[stage + 1] <= t:
                stage += 1
            for a in range(n_assets):
                x = exo[i, t, a]
                if logimp[a] == 0.0:  # no impact outstanding: skip the exp
                    mark[a] = x
                else:
                    logimp[a] *= decay
                    mark[a] = x * np.exp(logimp[a])
                lo_in = p_lo[a] * (1.0 + BOUND_REL_TOL)
                hi_in = p_hi[a] * (1.0 - BOUND_REL_TOL)
                if x <= lo_in or not x < hi_in or mark[a] <= lo_in or not mark[a] < hi_in:
                    bounded = 1  # at a bound (or beyond it, and clamped now)
                    mark[a] = bound_price_nb(mark[a], p_lo[a], p_hi[a])
            for j in range(set_start[t], set_start[t + 1]):  # options expiring now
                u = settle_option_nb(set_pos[j], mark, qty, pos_unit, pos_asset, pos_entry,
                                     pos_kind, usd)
                if u >= 0:
                    n_pending = state_changed_nb(u, mark, usd, coll, qty, pos_asset, pos_entry,
                                                 pos_kind, unit_pos_start, haircut, tiers, mmk,
                                                 lin, const, n_open, version, flag, pending,
                                                 n_pending)
            if funding_every > 0 and t % funding_every == 0:
                n_pending, n_touched = pay_funding_nb(
                    t, mark, exo[i, t], funding_rate, fparams[FP_FUNDING_RATE],
                    fparams[FP_FUNDING_CAP], funding_premium, usd, coll, qty, pos_asset,
                    pos_entry, pos_kind, unit_pos_start, haircut, tiers, mmk, lin, const,
                    n_open, version, flag, pending, n_pending, touched, n_touched)
            n_due = 0
            while q_head < q_tail and q_due[q_head] == t:
                due_units[n_due] = q_unit[q_head]
                n_due += 1
                q_head += 1
            if n_due > 0:
                due_units[:n_due] = np.sort(due_units[:n_due])
                n_pending, n_touched, n_ev, overflow = answer_calls_nb(
                    i, t, due_units, n_due, call_action, call_target, reserve, deposit, mark,
                    usd, coll, qty, pos_asset, pos_entry, pos_kind, unit_pos_start, haircut,
                    tiers, mmk, lin, const, n_open, version, flag, pending, n_pending, touched,
                    n_touched, ev_i, ev_f, n_ev, oc)
                if overflow:
                    break
            r = 0
            while r < max_rounds:
                # 1. liquidatable units: exact check of the units that may be
                n_dirty = 0
                if full_scan:
                    for u in range(n_units):
                        if n_open[u] > 0:
                            dirty[n_dirty] = u
                            n_dirty += 1
                else:
                    for j in range(n_pending):
                        u = pending[j]
                        flag[u] &= ~np.uint8(FLAG_PENDING)
                        if (flag[u] & FLAG_DIRTY) == 0:
                            flag[u] |= FLAG_DIRTY
                            dirty[n_dirty] = u
                            n_dirty += 1
                    n_pending = 0
                    crossed = False  # inline test first: most steps cross no band
                    for h in range(n_heaps):
                        bound = heap_bound_nb(h, mark, t)
                        if (cursor[h] < s_start[h + 1] and s_key[cursor[h]] > bound) or (
                                h_n[h] > 0 and h_key[h, 0] > bound):
                            crossed = True
                            break
                    if crossed:
                        n_dirty = collect_crossed_nb(mark, t, s_key, s_unit, s_start, cursor, h_key,
                                                     h_unit, h_ver, h_n, version, flag, dirty,
                                                     n_dirty)
                n_l = 0
                for j in range(n_dirty):
                    u = dirty[j]
                    flag[u] &= ~np.uint8(FLAG_DIRTY)
                    if n_open[u] == 0:
                        continue
                    if (stage >= 0 and unit_opt[u] and not full_scan
                            and (flag[u] & FLAG_MOVED) == 0
                            and push_stage_box_nb(u, opt_row[u], stage, mark, t, steps,
                                                  stage_lo, stage_hi, stage_due, version,
                                                  h_key, h_unit, h_ver, h_n)):
                        continue  # its state is the initial one, inside its stage's box
                    if tiered:  # brackets may have changed with the marks
                        refresh_unit_nb(u, mark, usd, coll, qty, pos_asset, pos_entry, pos_kind,
                                        unit_pos_start, haircut, tiers, mmk, lin, const, n_open)
                        n_touched = touch_nb(u, flag, touched, n_touched)
                    s = const[u]
                    for a in range(n_assets):
                        s += lin[u, a] * mark[a]
                    steered = False
                    if unit_opt[u]:  # exact, and the steering of its next box
                        s_opt, steered = option_check_nb(u, mark, t, mmk[u], qty, pos_asset,
                                                         pos_entry, pos_kind, unit_pos_start,
                                                         tiers, oc, box_work)
                        s += s_opt
                    if s < 0.0 and mmk[u] != 1.0:  # armed, below the margin-call level
                        e, mm, nn, w = unit_values_nb(u, mark, usd, coll, qty, pos_asset,
                                                      pos_entry, pos_kind, unit_pos_start,
                                                      haircut, tiers, t, oc)
                        if e >= mm:  # called, not liquidatable: disarm, maybe answer later
                            mmk[u] = 1.0
                            flag[u] |= FLAG_MOVED
                            refresh_unit_nb(u, mark, usd, coll, qty, pos_asset, pos_entry, pos_kind,
                                            unit_pos_start, haircut, tiers, mmk, lin, const,
                                            n_open)
                            n_touched = touch_nb(u, flag, touched, n_touched)
                            if draw_nb(rng_key, i, u) < call_prob:
                                q_unit[q_tail] = u
                                q_due[q_tail] = t + call_delay
                                q_tail += 1
                            s = const[u]
                            for a in range(n_assets):
                                s += lin[u, a] * mark[a]
                            if unit_opt[u]:
                                s += option_slack_nb(u, mark, t, 1.0, qty, pos_asset,
                                                     pos_entry, pos_kind, unit_pos_start,
                                                     tiers, oc)
                                steered = False  # steered at the call level: redo
                            if s < 0.0:  # rounding: E >= MM exactly at the boundary
                                s = 0.0
                    if s < 0.0:
                        liq[n_l] = u
                        n_l += 1
                    elif not full_scan:
                        n_touched = touch_nb(u, flag, touched, n_touched)
                        if unit_opt[u]:
                            banded = push_option_box_nb(u, mark, t, steps, s, lin, const, sigma,
                                                        mmk[u], version, h_key, h_unit, h_ver,
                                                        h_n, qty, pos_asset, pos_kind, pos_entry,
                                                        unit_pos_start, tiers, oc, box_lo,
                                                        box_hi, box_work, steered)
                        else:
                            banded = push_band_nb(u, mark, lin, const, sigma, version, h_key,
                                                  h_unit, h_ver, h_n, qty, pos_asset, pos_kind,
                                                  unit_pos_start, tiers)
                        if not banded:
                            n_pending = enqueue_nb(u, flag, FLAG_PENDING, pending, n_pending)
                if n_l == 0:
                    break
                if not full_scan:
                    liq[:n_l] = np.sort(liq[:n_l])
                r += 1
                if first_step < 0:
                    first_step = t
                # 1. fractions (derivatives) or plans (lending); 2. flow
                round_fractions_nb(liq, n_l, lending, mode, fparams, mark, usd, coll, qty,
                                   pos_asset, pos_entry, pos_kind, unit_pos_start, haircut, tiers,
                                   kind, frac, plan_g, plan_k, plan_r, plan_s, plan_c, t, oc)
                round_flow_nb(liq, n_l, lending, kind, frac, plan_g, plan_k, mark, coll, qty,
                              pos_asset, pos_entry, pos_kind, unit_pos_start, flow, t, oc)
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
                        if not (p_lo[a] <= mark2[a] <= p_hi[a]):  # the impact law is unbounded
                            bounded = 1
                            mark2[a] = bound_price_nb(mark2[a], p_lo[a], p_hi[a])
                            dlog[a] = np.log(mark2[a] / mark[a])
                        xprice[a] = mark[a] + (mark2[a] - mark[a]) / (1.0 + alpha)
                # 4. settle
                n_b = 0
                for j in range(n_l):
                    u = liq[j]
                    ev_lo = n_ev
                    if lending:
                        for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
                            closed[p] = 0.0  # a lending deficit is socialised as a whole
                            closed_notional[p] = 0.0
                        fund, fee, bd, paid, deficit, n_ev, overflow = lending_settle_nb(
                            i, t, r, u, plan_g[j], plan_k[j], plan_r[j], plan_s[j], plan_c[j],
                            mark, usd, coll, qty, pos_asset, unit_pos_start, fparams, fund,
                            ev_i, ev_f, n_ev)
                        if overflow:
                            break
                        sum_n = plan_r[j]
                    else:
                        f = frac[j]
                        full = f == 1.0
                        backstopped = kind[j] == KIND_BACKSTOP
                        px = mark if backstopped else xprice
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
                                    n_opt, v_opt = close_option_nb(u, p, c, px[a], t, oc, usd,
                                                                   pos_asset, pos_entry,
                                                                   pos_kind)
                                    closed_notional[p] = n_opt
                                    fee_opt = opt_fee_rate * n_opt
                                    option_fee += min(fee_opt, abs(c) * v_opt)
                                    qty[p] = 0.0
                                    closed[p] = c
                                    sum_n += n_opt
                                    continue
                                c = qty[p] if full else f * qty[p]
                                closed_notional[p] = close_position_nb(
                                    u, p, c, px[a], usd, coll, pos_asset, pos_entry, pos_kind)
                                perp_n += closed_notional[p]
                                if full:
                                    qty[p] = 0.0
                                else:
                                    qty[p] -= c
                                closed[p] = c
                                sum_n += closed_notional[p]
                        if full:
                            for a in range(n_assets):
                                if coll[u, a] != 0.0:
                                    usd[u] += coll[u, a] * px[a]
                            e2 = usd[u]
                        else:
                            e2, mm2, nn2, w2 = unit_values_nb(u, mark2, usd, coll, qty, pos_asset,
                                                              pos_entry, pos_kind, unit_pos_start,
                                                              haircut, tiers, t, oc)
                        room = e2 if e2 > 0.0 else 0.0
                        fee = room if backstopped else fee_rate * perp_n + option_fee
                        if fee > room:
                            fee = room
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
                        for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
                            if closed[p] != 0.0:
                                if n_ev >= capacity:
                                    overflow = True
                                    break
                                share = closed_notional[p] / sum_n if sum_n > 0.0 else 0.0
                                a = pos_asset[p]
                                m_ev = mark[a]
                                x_ev = px[a]
                                if pos_kind[p] >= POS_CALL:  # an option's own prices
                                    m_ev = value_at_nb(p, a, pos_kind[p], mark[a], pos_entry[p],
                                                       t, oc)
                                    x_ev = value_at_nb(p, a, pos_kind[p], px[a], pos_entry[p],
                                                       t, oc)
                                put_event_nb(ev_i, ev_f, n_ev, i, t, r, u, kind[j],
                                             instrument_nb(pos_kind[p]), a, -closed[p], m_ev,
                                             x_ev, closed_notional[p], fee * share,
                                             bd * share, paid * share)
                                n_ev += 1
                        if sum_n == 0.0 and (bd > 0.0 or fee > 0.0) and not overflow:
                            # nothing closed (a unit with only a negative balance): its fee
                            # and bad debt get an event of their own
                            if n_ev >= capacity:
                                overflow = True
                            else:
                                put_event_nb(ev_i, ev_f, n_ev, i, t, r, u, kind[j],
                                             INSTRUMENT_DEBT, -1, 0.0, 1.0, 1.0, 0.0, fee, bd,
                                             paid)
                                n_ev += 1
                        if full and not overflow:
                            for a in range(n_assets):
                                amount = coll[u, a]
                                if amount != 0.0:  # < 0: a coin debt bought back
                                    if n_ev >= capacity:
                                        overflow = True
                                        break
                                    put_event_nb(ev_i, ev_f, n_ev, i, t, r, u, kind[j],
                                                 INSTRUMENT_COLLATERAL, a, -amount, mark[a],
                                                 px[a], abs(amount) * px[a], 0.0, 0.0, 0.0)
                                    n_ev += 1
                                    coll[u, a] = 0.0
                    fees += fee
                    flag[u] |= FLAG_LIQUIDATED
                    if bd > 0.0:
                        flag[u] |= FLAG_BANKRUPT
                    n_liq += 1
                    if r > 1:  # a later round: brought below maintenance by the cascade
                        n_cascade += 1
                    liq_notional += sum_n
                    bad_debt_total += bd
                    n_touched = touch_nb(u, flag, touched, n_touched)
                    mmk[u] = 1.0  # a liquidation disarms the margin call
                    n_pending = state_changed_nb(u, mark2, usd, coll, qty, pos_asset, pos_entry,
                                                 pos_kind, unit_pos_start, haircut, tiers, mmk, lin,
                                                 const, n_open, version, flag, pending,
                                                 n_pending)
                    if deficit > 0.0:
                        bank_unit[n_b] = u
                        bank_deficit[n_b] = deficit
                        bank_ev_lo[n_b] = ev_lo
                        bank_ev_hi[n_b] = n_ev
                        n_b += 1
                    if overflow:
                        break
                if overflow:
                    break
                # 5. marks
                for a in range(n_assets):
                    mark[a] = mark2[a]
                    logimp[a] += dlog[a]
                # 6. uncovered deficits: ADL, or socialised
                for b in range(n_b):
                    # fees paid in later in the round refill the fund: it pays first
                    deficit = bank_deficit[b]
                    paid = deficit if deficit < fund else fund
                    if paid > 0.0:
                        fund -= paid
                        deficit -= paid
                        share_fund_paid_nb(ev_f, bank_ev_lo[b], bank_ev_hi[b], paid)
                    if deficit <= 0.0:
                        continue
                    depleted = 1
                    n_pending, n_touched, n_ev, adl_add, soc_add, n_adl_add, overflow = \
                        cover_deficit_nb(i, t, r, bank_unit[b], deficit, mark, usd,
                                         coll, qty, pos_unit, pos_asset, pos_entry, pos_kind,
                                         unit_pos_start, haircut, tiers, mmk, lin, const,
                                         n_open, version, flag, pending, n_pending, touched,
                                         n_touched, closed, closed_notional, cand, cand_key,
                                         adl_on, ranking, ev_i, ev_f, n_ev, oc)
                    adl_notional += adl_add
                    socialised += soc_add
                    n_adl += n_adl_add
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
            return ev_start, n_corr, i, OVERFLOW_EVENTS
        for a in range(n_assets):
            final_price[i, a] = mark[a]
        if 16 * n_touched > n_units:  # outputs in unit order: one pass over the flags
            n_touched = 0  # (cheaper than a sort when many units were touched)
            for u in range(n_units):
                if flag[u] & FLAG_TOUCHED:
                    touched[n_touched] = u
                    n_touched += 1
        else:
            touched[:n_touched] = np.sort(touched[:n_touched])
        n_corr_new = end_path_nb(i, mark, usd, coll, qty, pos_asset, pos_entry, pos_kind,
                                 unit_pos_start, unit_account, navk, navc, deposit, touched,
                                 n_touched, flag, corr_i, corr_f, n_corr, acct_liq, acct_bank,
                                 stamp_liq, stamp_bank, steps, oc, ivfac)
        if n_corr_new < 0:
            return ev_start, n_corr, i, OVERFLOW_CORRECTIONS
        n_corr = n_corr_new
        for j in range(n_pending):
            flag[pending[j]] &= ~np.uint8(FLAG_PENDING)
        restore_nb(touched, n_touched, usd, coll, qty, lin, const, n_open, version, flag, mmk,
                   deposit, unit_usd0, unit_coll0, pos_qty0, lin0, const0, n_open0, mmk0,
                   unit_pos_start)
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
        path_i[i, PI_N_CASCADE] = n_cascade
        path_i[i, PI_PRICE_BOUNDED] = bounded
    return n_ev, n_corr, n_paths, 0
