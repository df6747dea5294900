"""Numba kernels of account and venue behaviour between liquidations: funding payments on
perpetuals, and answers to margin calls (``docs/engine.md``, "Behaviour")."""

from __future__ import annotations

import numpy as np

from simulator._kernels.jit import leaf
from simulator.margin._kernels.options import close_option_nb
from simulator.margin._kernels.state import (
    close_position_nb,
    enqueue_nb,
    instrument_nb,
    put_event_nb,
    refresh_unit_nb,
    state_changed_nb,
    touch_nb,
    unit_values_nb,
)
from simulator.margin.codes import (
    ACTION_TOP_UP,
    FLAG_CHANGED,
    FLAG_MOVED,
    FLAG_PENDING,
    INSTRUMENT_COLLATERAL,
    KIND_REDUCE,
    KIND_TOP_UP,
    POS_CALL,
    POS_INVERSE,
    POS_LINEAR,
)


@leaf
def draw_nb(key, path, unit):  # pragma: no cover - jitted
    """A uniform number on [0, 1) for (``path``, ``unit``): splitmix64 of a counter.

    Counter-based, so it does not depend on the order in which units are visited, nor on
    how the work is split between processes.
    """
    z = np.uint64(key) + np.uint64(path) * np.uint64(4294967296) + np.uint64(unit)
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@leaf
def pay_funding_nb(on, t, mark, exo_t, rate, fparams_rate, fparams_cap, premium, usd, coll, qty,
                   pos_asset, pos_entry, pos_kind, unit_pos_start, haircut, tiers, mmk, lin,
                   const, n_open, version, flag, pending, n_pending, touched, n_touched
                   ):  # pragma: no cover - jitted
    """Funding at step ``t``: every open position pays ``rate`` on its notional, a linear one
    in USD (``qty * mark * rate``), an inverse one in its coin (``qty * rate / mark``).

    A payer's slack falls: its band is void and it is checked exactly at the next round. A
    unit that only receives USD keeps its band. Returns ``n_pending, n_touched``.
    """
    if on is None:  # a venue without funding (``RuleArrays.funding_on``): compiles to this
        return n_pending, n_touched
    for a in range(mark.shape[0]):
        r = fparams_rate
        if premium:
            r += mark[a] / exo_t[a] - 1.0
            if r > fparams_cap:
                r = fparams_cap
            elif r < -fparams_cap:
                r = -fparams_cap
        rate[a] = r
    for u in range(usd.shape[0]):
        pay = 0.0
        coin = False
        for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
            if qty[p] != 0.0:
                a = pos_asset[p]
                if pos_kind[p] == POS_INVERSE:
                    coll[u, a] -= qty[p] * rate[a] / mark[a]
                    coin = True
                elif pos_kind[p] == POS_LINEAR:  # options pay no funding
                    pay += qty[p] * mark[a] * rate[a]
        if pay == 0.0 and not coin:
            continue
        usd[u] -= pay
        const[u] -= pay
        flag[u] |= FLAG_CHANGED | FLAG_MOVED
        n_touched = touch_nb(u, flag, touched, n_touched)
        if coin:
            refresh_unit_nb(u, mark, usd, coll, qty, pos_asset, pos_entry, pos_kind,
                            unit_pos_start, haircut, tiers, mmk, lin, const, n_open)
        if pay > 0.0 or coin:
            version[u] += 1
            n_pending = enqueue_nb(u, flag, FLAG_PENDING, pending, n_pending)
    return n_pending, n_touched


@leaf
def answer_calls_nb(on, i, t, units, n, action, target, reserve, deposit, mark, usd, coll, qty,
                    pos_asset, pos_entry, pos_kind, unit_pos_start, haircut, tiers, mmk, lin,
                    const, n_open, version, flag, pending, n_pending, touched, n_touched, ev_i,
                    ev_f, n_ev, oc):  # pragma: no cover - jitted
    """Answers to margin calls due now (step ``t``), for ``units[:n]`` (sorted by unit).

    A reduction cuts every position by the same fraction at the mark, options included
    (at their value).

    Returns ``n_pending, n_touched, n_ev, overflow``.
    """
    if on is None:  # a venue without margin calls (``RuleArrays.calls_on``): compiles to this
        return n_pending, n_touched, n_ev, False
    capacity = ev_i.shape[0]
    for j in range(n):
        u = units[j]
        if n_open[u] == 0:
            continue
        e, mm, nn, w = unit_values_nb(u, mark, usd, coll, qty, pos_asset, pos_entry, pos_kind,
                                      unit_pos_start, haircut, tiers, t, oc)
        if action == ACTION_TOP_UP:
            x = target * mm - e
            if x > reserve[u]:
                x = reserve[u]
            if not x > 0.0:
                continue
            if n_ev >= capacity:
                return n_pending, n_touched, n_ev, True
            usd[u] += x
            deposit[u] += x
            put_event_nb(ev_i, ev_f, n_ev, i, t, 0, u, KIND_TOP_UP, INSTRUMENT_COLLATERAL, -1, x,
                         1.0, 1.0, x, 0.0, 0.0, 0.0)
            n_ev += 1
        else:
            if not mm > 0.0:
                continue
            f = 1.0 - e / (target * mm)
            if not f > 0.0:
                continue
            if f > 1.0:
                f = 1.0
            for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
                q = qty[p]
                if q == 0.0:
                    continue
                if n_ev >= capacity:
                    return n_pending, n_touched, n_ev, True
                a = pos_asset[p]
                c = q if f == 1.0 else f * q
                price = mark[a]
                if pos_kind[p] >= POS_CALL:
                    notional, price = close_option_nb(u, p, c, mark[a], t, oc, usd, pos_asset,
                                                      pos_entry, pos_kind)
                else:
                    notional = close_position_nb(u, p, c, mark[a], usd, coll, pos_asset,
                                                 pos_entry, pos_kind)
                qty[p] = 0.0 if f == 1.0 else q - c
                put_event_nb(ev_i, ev_f, n_ev, i, t, 0, u, KIND_REDUCE,
                             instrument_nb(pos_kind[p]), a, -c, price, price, notional, 0.0,
                             0.0, 0.0)
                n_ev += 1
        n_touched = touch_nb(u, flag, touched, n_touched)
        n_pending = state_changed_nb(u, mark, usd, coll, qty, pos_asset, pos_entry, pos_kind,
                                     unit_pos_start, haircut, tiers, mmk, lin, const, n_open,
                                     version, flag, pending, n_pending)
    return n_pending, n_touched, n_ev, False
