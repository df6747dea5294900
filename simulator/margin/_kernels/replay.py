"""Numba kernels of the margin engine: the step-by-step replay with liquidation cascades.

Implements ``docs/engine.md`` exactly; ``tests/reference/`` is the slow reference it is
tested against. Records of arrays in (:mod:`simulator.margin.records`), the ``Outputs``
record written; no Python objects, no exceptions: the event buffer reports overflow by
returning the first path it could not finish.

For speed the liquidation test of unit ``u`` uses the linear form of its margin slack,
``E_u - MM_u = const[u] + sum_a lin[u, a] * M[a]``, refreshed whenever the unit changes,
and only units whose safe band the marks have left are tested at all (:mod:`.index`);
``full_scan`` tests every unit at every round instead, for checking. The cost of a path is
then that of its events, not accounts x steps: the state of the units a path touched is
restored at its end, and account PnL is reported as a linear function of the final marks
plus corrections for the units that changed.

:func:`replay_nb` is a leaf kernel (:mod:`simulator._kernels.jit`): the loops over paths,
steps, rounds and settled units, and the stages they call, inlined into it (``inline=
"always"``): a path's start and end and a step's end here, the start of a step and the
check that opens a round in :mod:`.step`, steps 1 to 4 of a round in :mod:`.settle` and
step 6 in :mod:`.backstop`. The stages are small and inline little themselves, on
purpose: Numba copies an inlined function's IR once per block of it, with all its
variables each time, so inlining a stage that has inlined others costs time that grows
with the square of its size (inlining the whole loop of a path took 12 s of compilation).
The circuit breaker's two stages (:mod:`.breaker`) are leaf kernels called, not inlined.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from simulator._kernels.bounds import PRICE_CAP_RATIO, PRICE_FLOOR_RATIO
from simulator._kernels.jit import leaf
from simulator.margin._kernels.backstop import cover_round_deficits_nb
from simulator.margin._kernels.breaker import breaker_check_nb, breaker_open_nb
from simulator.margin._kernels.settle import (
    charge_unit_nb,
    close_unit_nb,
    settle_lending_nb,
    settled_nb,
    start_round_nb,
    unit_events_nb,
)
from simulator.margin._kernels.state import (
    end_path_nb,
    enqueue_nb,
    restore_nb,
    sort_head_nb,
    touch_nb,
)
from simulator.margin._kernels.step import (
    behaviour_nb,
    check_units_nb,
    collect_dirty_nb,
    expire_options_nb,
    index_step_nb,
    step_marks_nb,
    sweep_marks_nb,
)
from simulator.margin._kernels.vault import (
    vault_reset_nb,
    vault_sales_nb,
    vault_take_nb,
    vault_value_nb,
)
from simulator.margin.codes import (
    CNT_CORRECTIONS,
    CNT_EVENTS,
    CNT_PENDING,
    CNT_QUEUE_HEAD,
    CNT_QUEUE_TAIL,
    CNT_STAGE,
    CNT_TOUCHED,
    FLAG_CHANGED,
    FLAG_PENDING,
    FLAG_TOUCHED,
    FP_FUND0,
    HALT_NONE,
    HALT_TRADING,
    IP_FULL_SCAN,
    IP_LENDING,
    IP_MAX_ROUNDS,
    KIND_BACKSTOP,
    OVERFLOW_CORRECTIONS,
    OVERFLOW_EVENTS,
    PF_FUND_END,
    PF_VAULT_PNL,
    PI_FIRST_STEP,
    PI_MAX_ROUNDS,
    PI_VAULT_TAKEOVERS,
    TIER_CAP,
)


@leaf(nogil=True)
def replay_nb(prices, book, index, rules, options, out, state, heaps, lists, assets, rnd,
              first_path, n_ev0, n_corr0):  # pragma: no cover - jitted
    """Replay paths ``first_path..n_paths-1`` over the book.

    Parameters
    ----------
    prices : records.Prices
        Exogenous prices float64[n_paths, steps + 1, A] and depth in USD per step.
    book : records.BookArrays
        The book at the start of every path.
    index : records.IndexArrays
        Its slack and NAV forms, band thresholds, units pending at the first round,
        margin-call multipliers and reserves.
    rules : records.RuleArrays
        Haircuts, brackets, volatility scales, ``fparams`` (``codes.FP_*``) and ``iparams``
        (``codes.IP_*``).
    options : records.OptionArrays
        The options' data (``oc``), expiries, the option units and their boxes at the later
        stages: a unit whose state is still the initial one gets its box of the stage
        instead of an exact check when it is inside it.
    out : records.Outputs
        Per-path records, prices and closing marks, account counts, and the event and
        correction buffers: PnL corrections ``(path, account) -> nav - (navc + navk @
        M_final)`` of the units whose state changed.
    state, heaps, lists, assets, rnd : records.UnitState, records.Heaps, records.UnitLists,
        records.AssetWork, records.RoundWork
        Scratch, as :func:`simulator.margin.records.scratch` builds it (every unit in its
        initial state).
    first_path : int
        First path to replay.
    n_ev0, n_corr0 : int
        Rows of the event and correction buffers already written (by the paths before
        ``first_path``): the rows of this call follow them.

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
    n_paths = prices.exo.shape[0]
    steps = prices.exo.shape[1] - 1
    max_rounds = rules.iparams[IP_MAX_ROUNDS]
    lending = rules.iparams[IP_LENDING] != 0
    tiers = rules.tiers
    tiered = False  # brackets may change with the marks
    for a in range(tiers.shape[0]):
        if tiers[a, 0, TIER_CAP] < np.inf:
            tiered = True
    count = lists.count
    liq = lists.liq
    mark = assets.mark
    mark2 = assets.mark2
    logimp = assets.logimp
    dlog = assets.dlog
    book_px = assets.book
    book2 = assets.book2
    n_ev = n_ev0
    n_corr = n_corr0
    n_sweeps = 2 if prices.bridge.shape[0] > 0 else 0  # intrastep: a low and a high sweep
    for i in range(first_path, n_paths):
        _start_path_nb(i, n_ev, n_corr, prices, index, rules, options, out, state, heaps,
                       lists, assets)
        vault_reset_nb(rules.vault_on, assets.vault_inv, assets.vault_base, assets.vault_cash)
        overflow = False
        for t in range(1, steps + 1):
            r_top = 0
            halt = HALT_NONE  # a paused step (circuit breaker) runs no check and no round
            for sweep in range(n_sweeps + 1):
                if sweep < n_sweeps:  # inside the step: marks at the bridge's extremes
                    sweep_marks_nb(i, t, sweep, prices, rules, options, out, lists, assets)
                else:  # the step's close
                    breaker_open_nb(i, t, prices, rules, lists, assets)
                    step_marks_nb(i, t, prices, rules, options, out, lists, assets)
                    halt = breaker_check_nb(i, t, rules, out, lists, assets)
                    expire_options_nb(t, book, rules, options, state, lists, assets)
                    if halt != HALT_TRADING and behaviour_nb(i, t, prices, book, index, rules,
                                                             options, out, state, lists,
                                                             assets):
                        overflow = True
                        break
                    if halt != HALT_TRADING:  # (a halted book does not trade)
                        count[CNT_EVENTS], overflow = vault_sales_nb(
                            rules.vault_on, i, t, prices.depth[t], rules.fparams, book_px,
                            logimp, assets.p_lo, assets.p_hi, assets.vault_inv,
                            assets.vault_base, assets.vault_cash, out.path_i, out.ev_i,
                            out.ev_f, count[CNT_EVENTS])
                        if overflow:
                            break
                        if rules.vault_on.shape[0] > 0:  # sold on the book (its marks are the
                            for a in range(mark.shape[0]):  # book's: not with an oracle)
                                mark[a] = book_px[a]
                r = 0
                while halt == HALT_NONE and r < max_rounds:
                    n_dirty = collect_dirty_nb(t, index, rules, state, heaps, lists, assets)
                    n_l = check_units_nb(i, t, steps, tiered, n_dirty, book, rules, options, state,
                                         heaps, lists, assets)
                    if n_l == 0:
                        break
                    r += 1
                    start_round_nb(i, t, n_l, prices, book, rules, options, out, state, lists,
                                   assets, rnd)
                    n_b = 0
                    for j in range(n_l):  # 4. settle, in increasing unit index
                        u = liq[j]
                        ev_lo = count[CNT_EVENTS]
                        if lending:
                            fee, bd, deficit, sum_n, overflow = settle_lending_nb(
                                i, t, r, j, u, book, rules, out, state, lists, assets, rnd)
                            if overflow:
                                break
                        else:
                            sum_n, perp_n, option_fee = close_unit_nb(t, j, u, book, options, state,
                                                                      assets, rnd)
                            if rnd.kind[j] == KIND_BACKSTOP:  # into the vault's inventory
                                vault_take_nb(rules.vault_on, u, mark, rnd.closed,
                                              book.pos_asset, book.pos_kind,
                                              book.unit_pos_start, state.coll,
                                              assets.vault_inv, assets.vault_base,
                                              assets.vault_cash)
                            fee, bd, paid, deficit = charge_unit_nb(i, t, j, u, perp_n, option_fee,
                                                                    book, rules, options, out,
                                                                    state, assets, rnd)
                            overflow = unit_events_nb(i, t, r, j, u, fee, bd, paid, sum_n, book,
                                                      options, out, state, lists, assets, rnd)
                        n_b = settled_nb(i, r, u, fee, bd, sum_n, deficit, ev_lo, n_b, book, rules,
                                         out, state, lists, assets, rnd)
                        if not lending and rnd.kind[j] == KIND_BACKSTOP:  # the equity kept
                            out.path_f[i, PF_VAULT_PNL] += fee
                            out.path_i[i, PI_VAULT_TAKEOVERS] += 1
                        if overflow:
                            break
                    if overflow:
                        break
                    for a in range(mark.shape[0]):  # 5. marks
                        mark[a] = mark2[a]
                        book_px[a] = book2[a]
                        logimp[a] += dlog[a]
                    if cover_round_deficits_nb(i, t, r, n_b, book, rules, options, out, state,
                                               lists, assets, rnd):  # 6. ADL, or socialised
                        overflow = True
                        break
                if overflow:
                    break
                if r > r_top:
                    r_top = r
                if sweep < n_sweeps:
                    _sweep_low_nb(i, out, assets)
            if overflow:
                break
            _close_step_nb(i, t, r_top, out, assets)
            vault_value_nb(rules.vault_on, i, mark, assets.vault_inv, assets.vault_cash,
                           out.path_f, t == steps)
            if prices.oracle.shape[0] > 0:  # the EMA of the basis, at the step's close
                _close_basis_nb(prices.oracle[i, index_step_nb(t, rules)], rules.mark_ema_w,
                                assets)
        if overflow:
            return n_ev, n_corr, i, OVERFLOW_EVENTS
        if not _finish_path_nb(i, steps, book, index, options, out, state, lists, assets):
            return n_ev, n_corr, i, OVERFLOW_CORRECTIONS
        n_ev = count[CNT_EVENTS]
        n_corr = count[CNT_CORRECTIONS]
    return n_ev, n_corr, n_paths, 0


@njit(cache=True, inline="always")
def _start_path_nb(i, n_ev, n_corr, prices, index, rules, options, out, state, heaps, lists,
                   assets):  # pragma: no cover - jitted
    """The start of path ``i``: the initial thresholds and empty heaps, the option units
    touched (their PnL is never linear) and the units without a band pending, the counters,
    the path's records (``insurance_fund_end`` holds the fund as it goes) and the price
    bounds from the initial prices."""
    exo = prices.exo
    flag = state.flag
    touched = lists.touched
    pending = lists.pending
    h_n = heaps.n
    cursor = heaps.cursor
    s_start = index.s_start
    for h in range(h_n.shape[0]):
        h_n[h] = 0
        cursor[h] = s_start[h]
    n_touched = 0
    n_pending = 0
    opt_units = options.opt_units
    for j in range(opt_units.shape[0]):  # an option unit's PnL is never linear
        u = opt_units[j]
        n_touched = touch_nb(u, flag, touched, n_touched)
        flag[u] |= FLAG_CHANGED
    if rules.iparams[IP_FULL_SCAN] == 0:
        init_pending = index.init_pending
        for j in range(init_pending.shape[0]):
            u = init_pending[j]
            n_pending = enqueue_nb(u, flag, FLAG_PENDING, pending, n_pending)
            n_touched = touch_nb(u, flag, touched, n_touched)
    count = lists.count
    count[CNT_EVENTS] = n_ev
    count[CNT_CORRECTIONS] = n_corr
    count[CNT_TOUCHED] = n_touched
    count[CNT_PENDING] = n_pending
    count[CNT_QUEUE_HEAD] = 0
    count[CNT_QUEUE_TAIL] = 0
    count[CNT_STAGE] = -1  # the latest later stage started (-1: the first)
    path_f = out.path_f
    path_i = out.path_i
    for k in range(path_f.shape[1]):
        path_f[i, k] = 0.0
    path_f[i, PF_FUND_END] = rules.fparams[FP_FUND0]
    for k in range(path_i.shape[1]):
        path_i[i, k] = 0
    path_i[i, PI_FIRST_STEP] = -1
    min_price = out.min_price
    marks = out.marks
    logimp = assets.logimp
    p_lo = assets.p_lo
    p_hi = assets.p_hi
    basis = assets.basis
    reads_book = rules.oracle_rule.shape[0] > 0  # the oracle of a lending venue: in sync
    for a in range(exo.shape[2]):
        logimp[a] = 0.0
        basis[a] = 0.0
        if reads_book:
            assets.pub_value[a] = exo[i, 0, a]
            assets.pub_step[a] = 0.0
            prices.oracle[i, 0, a] = exo[i, 0, a]
        min_price[i, a] = exo[i, 0, a]
        p_lo[a] = exo[i, 0, a] * PRICE_FLOOR_RATIO
        p_hi[a] = exo[i, 0, a] * PRICE_CAP_RATIO
        if i < marks.shape[0]:
            marks[i, 0, a] = exo[i, 0, a]


@leaf
def _sweep_low_nb(i, out, assets):  # pragma: no cover - jitted
    """The end of an intrastep sweep: the path's minimum marks."""
    mark = assets.mark
    min_price = out.min_price
    for a in range(mark.shape[0]):
        if mark[a] < min_price[i, a]:
            min_price[i, a] = mark[a]


@njit(cache=True, inline="always")
def _close_step_nb(i, t, r, out, assets):  # pragma: no cover - jitted
    """The end of step ``t`` after ``r`` rounds: the path's most rounds, its minimum marks
    and (for the first paths) the step's closing marks."""
    path_i = out.path_i
    if r > path_i[i, PI_MAX_ROUNDS]:
        path_i[i, PI_MAX_ROUNDS] = r
    mark = assets.mark
    min_price = out.min_price
    marks = out.marks
    for a in range(mark.shape[0]):
        if mark[a] < min_price[i, a]:
            min_price[i, a] = mark[a]
        if i < marks.shape[0]:
            marks[i, t, a] = mark[a]


@leaf
def _close_basis_nb(index, weight, assets):  # pragma: no cover - jitted
    """The EMA of the basis book - index at a step's close: ``basis += w (book - index -
    basis)``."""
    basis = assets.basis
    book = assets.book
    for a in range(basis.shape[0]):
        basis[a] += weight[a] * ((book[a] - index[a]) - basis[a])


@njit(cache=True, inline="always")
def _finish_path_nb(i, steps, book, index, options, out, state, lists, assets
                    ):  # pragma: no cover - jitted
    """The end of path ``i``: its final marks, the account outputs of the touched units
    (:func:`.state.end_path_nb`, in unit order), and the touched units put back in their
    initial state. Returns False, having restored nothing, when the corrections do not
    fit."""
    mark = assets.mark
    final_price = out.final_price
    for a in range(mark.shape[0]):
        final_price[i, a] = mark[a]
    flag = state.flag
    touched = lists.touched
    count = lists.count
    n_units = flag.shape[0]
    n_touched = count[CNT_TOUCHED]
    if 16 * n_touched > n_units:  # outputs in unit order: one pass over the flags
        n_touched = 0  # (cheaper than a sort when many units were touched)
        for u in range(n_units):
            if flag[u] & FLAG_TOUCHED:
                touched[n_touched] = u
                n_touched += 1
    else:
        sort_head_nb(touched, n_touched)
    usd = state.usd
    coll = state.coll
    qty = state.qty
    deposit = state.deposit
    unit_pos_start = book.unit_pos_start
    n_corr = end_path_nb(i, mark, usd, coll, qty, book.pos_asset, book.pos_entry,
                         book.pos_kind, unit_pos_start, book.unit_account, index.navk,
                         index.navc, deposit, touched, n_touched, flag, out.corr_i, out.corr_f,
                         count[CNT_CORRECTIONS], out.acct_liq, out.acct_bank, out.path_w[i],
                         out.acct_w, lists.stamp_liq,
                         lists.stamp_bank, steps, options.oc_or_none, assets.ivfac)
    if n_corr < 0:
        return False
    count[CNT_CORRECTIONS] = n_corr
    pending = lists.pending
    for j in range(count[CNT_PENDING]):
        flag[pending[j]] &= ~np.uint8(FLAG_PENDING)
    restore_nb(touched, n_touched, usd, coll, qty, state.lin, state.const, state.n_open,
               state.version, flag, state.mmk, deposit, book.unit_usd, book.unit_coll,
               book.pos_qty, index.lin, index.const, index.n_open, index.mmk, unit_pos_start)
    return True
