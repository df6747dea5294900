"""Numba kernels of the start of a step and of the check that opens every cascade round
(``docs/engine.md``, "One path"): the marks from the exogenous prices, expiring options,
funding and answers to margin calls, then the units that may be liquidatable (the index),
their exact check and the margin calls.

Stages of :func:`.replay.replay_nb`, inlined into it: they take the replay's records
(:mod:`simulator.margin.records`), bind the arrays they use to local names once (Numba
loads a whole record for every attribute read, and LLVM takes time to clean each load up:
reading the arrays once per stage, with the scratch split into small records, took a
quarter off the replay kernel's compilation), and keep the counters in ``lists.count``
(``codes.CNT_*``) and the path's records in ``out.path_f``, ``out.path_i``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from simulator._kernels.bounds import BOUND_REL_TOL, bound_price_nb
from simulator._kernels.jit import leaf
from simulator.margin._kernels.behaviour import answer_calls_nb, draw_nb, pay_funding_nb
from simulator.margin._kernels.index import collect_crossed_nb, heap_bound_nb, push_band_nb
from simulator.margin._kernels.option_boxes import option_check_nb, push_option_box_nb
from simulator.margin._kernels.options import option_slack_nb, settle_option_nb
from simulator.margin._kernels.stages import push_stage_box_nb
from simulator.margin._kernels.state import (
    enqueue_nb,
    refresh_unit_nb,
    sort_head_nb,
    state_changed_nb,
    touch_nb,
    unit_values_nb,
)
from simulator.margin.codes import (
    CNT_EVENTS,
    CNT_PENDING,
    CNT_QUEUE_HEAD,
    CNT_QUEUE_TAIL,
    CNT_STAGE,
    CNT_TOUCHED,
    FLAG_DIRTY,
    FLAG_MOVED,
    FLAG_PENDING,
    FP_CALL_PROB,
    FP_CALL_TARGET,
    FP_DECAY,
    FP_FUNDING_CAP,
    FP_FUNDING_RATE,
    IP_CALL_ACTION,
    IP_CALL_DELAY,
    IP_FULL_SCAN,
    IP_FUNDING_INTERVAL,
    IP_FUNDING_PREMIUM,
    IP_RNG_KEY,
    OC_UNIT_OPT,
    PI_PRICE_BOUNDED,
    PRICE_INDEX,
    PRICE_MEDIAN,
)


@njit(cache=True, inline="always")
def enter_stage_nb(t, options, lists):  # pragma: no cover - jitted
    """The latest later stage of the option boxes that step ``t`` is in
    (``lists.count[CNT_STAGE]``)."""
    count = lists.count
    stage_step = options.stage_step
    stage = count[CNT_STAGE]
    while stage + 1 < stage_step.shape[0] and stage_step[stage + 1] <= t:
        stage += 1
    count[CNT_STAGE] = stage


@njit(cache=True, inline="always")
def bounded_mark_nb(i, x, mark, lo, hi, out):  # pragma: no cover - jitted
    """``mark`` (from the exogenous price ``x``) clamped to the price bounds ``lo``, ``hi``;
    path ``i`` is flagged when either lies at a bound (or beyond it, and is clamped now)."""
    lo_in = lo * (1.0 + BOUND_REL_TOL)
    hi_in = hi * (1.0 - BOUND_REL_TOL)
    if x <= lo_in or not x < hi_in or mark <= lo_in or not mark < hi_in:
        out.path_i[i, PI_PRICE_BOUNDED] = 1
        return bound_price_nb(mark, lo, hi)
    return mark


@njit(cache=True, inline="always")
def step_marks_nb(i, t, prices, rules, options, out, lists, assets):  # pragma: no cover - jitted
    """The start of step ``t`` of path ``i``: the later stage of the option boxes it is in,
    and the marks: the exogenous prices with the impact outstanding, decayed, clamped to the
    price bounds (a path at a bound is flagged)."""
    enter_stage_nb(t, options, lists)
    exo = prices.exo
    decay = rules.fparams[FP_DECAY]
    logimp = assets.logimp
    mark = assets.mark
    book = assets.book
    p_lo = assets.p_lo
    p_hi = assets.p_hi
    for a in range(mark.shape[0]):
        x = exo[i, t, a]
        if logimp[a] == 0.0:  # no impact outstanding: skip the exp
            book[a] = x
        else:
            logimp[a] *= decay
            book[a] = x * np.exp(logimp[a])
        book[a] = bounded_mark_nb(i, x, book[a], p_lo[a], p_hi[a], out)
        mark[a] = book[a]
    oracle = prices.oracle
    if oracle.shape[0] > 0:  # some asset valued at the oracle's index
        if rules.oracle_rule.shape[0] > 0:  # it reads a lending venue's book: publish
            publish_nb(i, t, prices, rules, assets)
        value_marks_nb(oracle[i, index_step_nb(t, rules)], book, assets.basis,
                       rules.price_rule, mark)


@njit(cache=True, inline="always")
def index_step_nb(t, rules):  # pragma: no cover - jitted
    """The row of ``Prices.oracle`` that holds the index of step ``t``: ``t``, or for an
    oracle that reads a lending venue's book, its publication of step ``t - lag``."""
    oracle_rule = rules.oracle_rule
    if oracle_rule.shape[0] == 0:
        return t
    k = t - int(oracle_rule[2])
    return k if k > 0 else 0


@leaf(entry=True)
def publish_nb(i, t, prices, rules, assets):  # pragma: no cover - jitted
    """The oracle of a lending venue at the start of step ``t`` of path ``i``: it reads the
    book (times the noise factor of its sources, within the price bounds) and publishes the
    reading to ``prices.oracle[i, t]`` when its heartbeat is due or the reading moved by
    more than the deviation since its last publication, else its last publication again."""
    oracle_rule = rules.oracle_rule
    heartbeat = oracle_rule[0]
    deviation = oracle_rule[1]
    noise = prices.oracle_noise
    book = assets.book
    pub_value = assets.pub_value
    pub_step = assets.pub_step
    p_lo = assets.p_lo
    p_hi = assets.p_hi
    out = prices.oracle
    for a in range(book.shape[0]):
        r = book[a]
        if noise.shape[0] > 0:
            r = bound_price_nb(r * noise[i, t, a], p_lo[a], p_hi[a])
        if t - pub_step[a] >= heartbeat or (
                deviation > 0.0 and abs(r - pub_value[a]) > deviation * pub_value[a]):
            pub_value[a] = r
            pub_step[a] = t
        out[i, t, a] = pub_value[a]


@njit(cache=True, inline="always")
def median3_nb(x, y, z):  # pragma: no cover - jitted
    """The median of three numbers."""
    if x > y:
        x, y = y, x
    if y > z:
        y = z
    return x if x > y else y


@leaf
def value_marks_nb(index, book, basis, price_rule, out):  # pragma: no cover - jitted
    """The marks ``out`` each asset is valued at (``codes.PRICE_*``): its book price, the
    oracle's ``index``, or the median of index, book and index + the EMA of the basis."""
    for a in range(out.shape[0]):
        rule = price_rule[a]
        if rule == PRICE_INDEX:
            out[a] = index[a]
        elif rule == PRICE_MEDIAN:
            out[a] = median3_nb(index[a], book[a], index[a] + basis[a])
        else:
            out[a] = book[a]


@leaf
def sweep_marks_nb(i, t, sweep, prices, rules, options, out, lists, assets
                   ):  # pragma: no cover - jitted
    """Intrastep sweep ``sweep`` (0 or 1) of step ``t`` of path ``i``: the later stage of
    the option boxes it is in, and the marks at every asset's lowest (a *low* sweep) or
    highest (a *high* sweep) exogenous price inside the step, ``prices.bridge``, with the
    impact outstanding decayed by the step's factor (not stored: the close decays it),
    clamped to the price bounds. The low sweep comes first, unless the step's exogenous
    log returns sum to less than 0 (a falling step tends to reach its high early)."""
    enter_stage_nb(t, options, lists)
    exo = prices.exo
    bridge = prices.bridge
    move = 0.0
    for a in range(exo.shape[2]):
        move += np.log(exo[i, t, a] / exo[i, t - 1, a])
    side = sweep if move >= 0.0 else 1 - sweep  # 0: the lows, 1: the highs
    decay = rules.fparams[FP_DECAY]
    logimp = assets.logimp
    mark = assets.mark
    p_lo = assets.p_lo
    p_hi = assets.p_hi
    for a in range(mark.shape[0]):
        x = bridge[i, t, a, side]
        if logimp[a] == 0.0:
            mark[a] = x
        else:
            mark[a] = x * np.exp(logimp[a] * decay)
        mark[a] = bounded_mark_nb(i, x, mark[a], p_lo[a], p_hi[a], out)
        assets.book[a] = mark[a]  # (an oracle is not combined with the bridge)


@njit(cache=True, inline="always")
def expire_options_nb(t, book, rules, options, state, lists, assets
                      ):  # pragma: no cover - jitted
    """Options expiring at step ``t`` pay their intrinsic value at the marks."""
    set_start = options.set_start
    set_pos = options.set_pos
    mark = assets.mark
    pos_unit = book.pos_unit
    pos_asset = book.pos_asset
    pos_entry = book.pos_entry
    pos_kind = book.pos_kind
    unit_pos_start = book.unit_pos_start
    usd = state.usd
    coll = state.coll
    qty = state.qty
    haircut = rules.haircut
    tiers = rules.tiers
    mmk = state.mmk
    lin = state.lin
    const = state.const
    n_open = state.n_open
    version = state.version
    flag = state.flag
    pending = lists.pending
    count = lists.count
    n_pending = count[CNT_PENDING]
    for j in range(set_start[t], set_start[t + 1]):
        u = settle_option_nb(set_pos[j], mark, qty, pos_unit, pos_asset, pos_entry, pos_kind,
                             usd, options.options_on)
        if u >= 0:
            n_pending = state_changed_nb(u, mark, usd, coll, qty, pos_asset, pos_entry,
                                         pos_kind, unit_pos_start, haircut, tiers, mmk, lin,
                                         const, n_open, version, flag, pending, n_pending)
    count[CNT_PENDING] = n_pending


@njit(cache=True, inline="always")
def behaviour_nb(i, t, prices, book, index, rules, options, out, state, lists, assets
                 ):  # pragma: no cover - jitted
    """Funding at step ``t`` if it is due, then the answers to the margin calls due at
    ``t`` (or before it: deferred by a circuit breaker's ``trading`` pause, whose steps do
    not call this) in increasing unit index. Returns True when the event buffer is full."""
    fparams = rules.fparams
    iparams = rules.iparams
    count = lists.count
    q_due = lists.q_due
    funding_every = iparams[IP_FUNDING_INTERVAL]
    mark = assets.mark
    pos_asset = book.pos_asset
    pos_entry = book.pos_entry
    pos_kind = book.pos_kind
    unit_pos_start = book.unit_pos_start
    usd = state.usd
    coll = state.coll
    qty = state.qty
    haircut = rules.haircut
    tiers = rules.tiers
    mmk = state.mmk
    lin = state.lin
    const = state.const
    n_open = state.n_open
    version = state.version
    flag = state.flag
    pending = lists.pending
    touched = lists.touched
    if funding_every > 0 and t % funding_every == 0:
        count[CNT_PENDING], count[CNT_TOUCHED] = pay_funding_nb(
            rules.funding_on, t, mark,
            prices.oracle[i, index_step_nb(t, rules)] if prices.oracle.shape[0] > 0
            else prices.exo[i, t],
            assets.funding_rate,
            fparams[FP_FUNDING_RATE], fparams[FP_FUNDING_CAP], iparams[IP_FUNDING_PREMIUM] != 0,
            usd, coll, qty, pos_asset, pos_entry, pos_kind, unit_pos_start, haircut, tiers, mmk,
            lin, const, n_open, version, flag, pending, count[CNT_PENDING], touched,
            count[CNT_TOUCHED])
    due_units = lists.due_units
    q_unit = lists.q_unit
    q_head = count[CNT_QUEUE_HEAD]
    n_due = 0
    while q_head < count[CNT_QUEUE_TAIL] and q_due[q_head] <= t:  # (< t: deferred by a pause)
        due_units[n_due] = q_unit[q_head]
        n_due += 1
        q_head += 1
    count[CNT_QUEUE_HEAD] = q_head
    if n_due == 0:
        return False
    sort_head_nb(due_units, n_due)
    count[CNT_PENDING], count[CNT_TOUCHED], count[CNT_EVENTS], overflow = answer_calls_nb(
        rules.calls_on, i, t, due_units, n_due, iparams[IP_CALL_ACTION], fparams[FP_CALL_TARGET],
        index.reserve, state.deposit, mark, usd, coll, qty, pos_asset, pos_entry, pos_kind,
        unit_pos_start, haircut, tiers, mmk, lin, const, n_open, version, flag, pending,
        count[CNT_PENDING], touched, count[CNT_TOUCHED], out.ev_i, out.ev_f,
        count[CNT_EVENTS], options.oc_or_none)
    return overflow


@njit(cache=True, inline="always")
def collect_dirty_nb(t, index, rules, state, heaps, lists, assets):  # pragma: no cover - jitted
    """Write the units to check exactly at this round to ``lists.dirty`` and return their
    number: every live unit under ``full_scan``; else the pending units (the list is
    emptied) and those whose band or box the marks or the step ``t`` have left."""
    flag = state.flag
    dirty = lists.dirty
    n_dirty = 0
    if rules.iparams[IP_FULL_SCAN] != 0:
        n_open = state.n_open
        for u in range(n_open.shape[0]):
            if n_open[u] > 0:
                dirty[n_dirty] = u
                n_dirty += 1
        return n_dirty
    pending = lists.pending
    count = lists.count
    for j in range(count[CNT_PENDING]):
        u = pending[j]
        flag[u] &= ~np.uint8(FLAG_PENDING)
        if (flag[u] & FLAG_DIRTY) == 0:
            flag[u] |= FLAG_DIRTY
            dirty[n_dirty] = u
            n_dirty += 1
    count[CNT_PENDING] = 0
    mark = assets.mark
    s_key = index.s_key
    s_start = index.s_start
    cursor = heaps.cursor
    h_key = heaps.key
    h_n = heaps.n
    crossed = False  # inline test first: most steps cross no band
    for h in range(h_n.shape[0]):
        bound = heap_bound_nb(h, mark, t)
        if (cursor[h] < s_start[h + 1] and s_key[cursor[h]] > bound) or (
                h_n[h] > 0 and h_key[h, 0] > bound):
            crossed = True
            break
    if crossed:
        n_dirty = collect_crossed_nb(mark, t, s_key, index.s_unit, s_start, cursor, h_key,
                                     heaps.unit, heaps.ver, h_n, state.version, flag, dirty,
                                     n_dirty)
    return n_dirty


@njit(cache=True, inline="always")
def check_units_nb(i, t, steps, tiered, n_dirty, book, rules, options, state, heaps, lists,
                   assets):  # pragma: no cover - jitted
    """The check that opens a round of step ``t``: the ``n_dirty`` units that may be
    liquidatable (``lists.dirty``, :func:`collect_dirty_nb`) are checked exactly; the
    liquidatable ones are written to ``lists.liq`` in increasing unit index, the others get
    a new band or box (or stay pending), and an armed unit below its margin-call level is
    called. ``tiered``: some asset has more than one bracket. Returns the number of
    liquidatable units."""
    full_scan = rules.iparams[IP_FULL_SCAN] != 0
    oc = options.oc
    unit_opt = oc[OC_UNIT_OPT]
    opt_row = options.opt_row
    stage_lo = options.stage_lo
    stage_hi = options.stage_hi
    stage_due = options.stage_due
    mark = assets.mark
    flag = state.flag
    n_open = state.n_open
    version = state.version
    h_key = heaps.key
    h_unit = heaps.unit
    h_ver = heaps.ver
    h_n = heaps.n
    dirty = lists.dirty
    liq = lists.liq
    stage = lists.count[CNT_STAGE]
    n_l = 0
    for j in range(n_dirty):
        u = dirty[j]
        flag[u] &= ~np.uint8(FLAG_DIRTY)
        if n_open[u] == 0:
            continue
        if (stage >= 0 and unit_opt[u] and not full_scan and (flag[u] & FLAG_MOVED) == 0
                and push_stage_box_nb(u, opt_row[u], stage, mark, t, steps, stage_lo,
                                      stage_hi, stage_due, version, h_key, h_unit, h_ver,
                                      h_n, options.options_on)):
            continue  # its state is the initial one, inside its stage's box
        s, steered = _exact_slack_nb(i, t, u, tiered, book, rules, options, state, lists,
                                     assets)
        if s < 0.0:
            liq[n_l] = u
            n_l += 1
        elif not full_scan:
            _rebox_nb(u, t, steps, s, steered, book, rules, options, state, heaps, lists,
                      assets)
    if n_l > 0 and not full_scan:
        sort_head_nb(liq, n_l)
    return n_l


@njit(cache=True, inline="always")
def _exact_slack_nb(i, t, u, tiered, book, rules, options, state, lists, assets
                    ):  # pragma: no cover - jitted
    """Exact margin slack of unit ``u`` at the marks (its slack form refreshed first when
    brackets may have changed; an option unit's options valued exactly). An armed unit
    below its margin-call level that is not liquidatable is called: disarmed, queued to
    answer at ``t + delay`` if its draw says so, and its slack (at least 0) taken again.
    Returns ``(slack, steered)``: whether the exact check left the steering of the unit's
    next box in ``assets.box_work``."""
    mark = assets.mark
    count = lists.count
    oc = options.oc
    unit_opt = oc[OC_UNIT_OPT]
    pos_asset = book.pos_asset
    pos_entry = book.pos_entry
    pos_kind = book.pos_kind
    unit_pos_start = book.unit_pos_start
    usd = state.usd
    coll = state.coll
    qty = state.qty
    haircut = rules.haircut
    tiers = rules.tiers
    mmk = state.mmk
    lin = state.lin
    const = state.const
    n_open = state.n_open
    flag = state.flag
    touched = lists.touched
    if tiered:  # brackets may have changed with the marks
        refresh_unit_nb(u, mark, usd, coll, qty, pos_asset, pos_entry, pos_kind,
                        unit_pos_start, haircut, tiers, mmk, lin, const, n_open)
        count[CNT_TOUCHED] = touch_nb(u, flag, touched, count[CNT_TOUCHED])
    s = const[u]
    for a in range(mark.shape[0]):
        s += lin[u, a] * mark[a]
    steered = False
    if unit_opt[u]:  # exact, and the steering of its next box
        s_opt, steered = option_check_nb(u, mark, t, mmk[u], qty, pos_asset, pos_entry,
                                         pos_kind, unit_pos_start, tiers, options.oc_or_none,
                                         assets.box_work)
        s += s_opt
    if s < 0.0 and mmk[u] != 1.0:  # armed, below the margin-call level
        e, mm, nn, w = unit_values_nb(u, mark, usd, coll, qty, pos_asset, pos_entry, pos_kind,
                                      unit_pos_start, haircut, tiers, t, options.oc_or_none)
        if e >= mm:  # called, not liquidatable: disarm, maybe answer later
            mmk[u] = 1.0
            flag[u] |= FLAG_MOVED
            refresh_unit_nb(u, mark, usd, coll, qty, pos_asset, pos_entry, pos_kind,
                            unit_pos_start, haircut, tiers, mmk, lin, const, n_open)
            count[CNT_TOUCHED] = touch_nb(u, flag, touched, count[CNT_TOUCHED])
            if draw_nb(rules.iparams[IP_RNG_KEY], i, u) < rules.fparams[FP_CALL_PROB]:
                q_tail = count[CNT_QUEUE_TAIL]
                lists.q_unit[q_tail] = u
                lists.q_due[q_tail] = t + rules.iparams[IP_CALL_DELAY]
                count[CNT_QUEUE_TAIL] = q_tail + 1
            s = const[u]
            for a in range(mark.shape[0]):
                s += lin[u, a] * mark[a]
            if unit_opt[u]:
                s += option_slack_nb(u, mark, t, 1.0, qty, pos_asset, pos_entry, pos_kind,
                                     unit_pos_start, tiers, options.oc_or_none)
                steered = False  # steered at the call level: redo
            if s < 0.0:  # rounding: E >= MM exactly at the boundary
                s = 0.0
    return s, steered


@njit(cache=True, inline="always")
def _rebox_nb(u, t, steps, s, steered, book, rules, options, state, heaps, lists, assets
              ):  # pragma: no cover - jitted
    """Give unit ``u``, found safe with slack ``s > 0`` at step ``t``, a new band (or box,
    for an option unit); without one it is checked again at the next round."""
    count = lists.count
    flag = state.flag
    count[CNT_TOUCHED] = touch_nb(u, flag, lists.touched, count[CNT_TOUCHED])
    oc = options.oc
    if oc[OC_UNIT_OPT][u]:
        banded = push_option_box_nb(u, assets.mark, t, steps, s, state.lin, state.const,
                                    rules.sigma, state.mmk[u], state.version, heaps.key,
                                    heaps.unit, heaps.ver, heaps.n, state.qty, book.pos_asset,
                                    book.pos_kind, book.pos_entry, book.unit_pos_start,
                                    rules.tiers, options.oc_or_none, assets.box_lo,
                                    assets.box_hi, assets.box_work, steered)
    else:
        banded = push_band_nb(u, assets.mark, state.lin, state.const, rules.sigma,
                              state.version, heaps.key, heaps.unit, heaps.ver, heaps.n,
                              state.qty, book.pos_asset, book.pos_kind, book.unit_pos_start,
                              rules.tiers)
    if not banded:
        count[CNT_PENDING] = enqueue_nb(u, flag, FLAG_PENDING, lists.pending,
                                        count[CNT_PENDING])
