"""Numba kernels of a lending venue's liquidation (Aave-style): health factor, close factor,
liquidation bonus, protocol fee and bad-debt write-off (``docs/engine.md``, "A lending
round"). Debts are positions with ``qty < 0`` and ``entry = 0``; a USD debt is a negative
USD balance; everything settles at the oracle price (the round-start mark)."""

from __future__ import annotations

from simulator._kernels.jit import leaf
from simulator.margin._kernels.state import put_event_nb
from simulator.margin.codes import (
    FP_BONUS,
    FP_CLOSE_FACTOR,
    FP_FULL_CLOSE_HF,
    FP_FULL_CLOSE_USD,
    FP_PROTOCOL_SHARE,
    INSTRUMENT_COLLATERAL,
    INSTRUMENT_DEBT,
    KIND_LIQUIDATION,
)


@leaf
def lending_plan_nb(u, mark, usd, coll, qty, pos_asset, unit_pos_start, haircut, fparams
                    ):  # pragma: no cover - jitted
    """What one liquidation of unit ``u`` repays and seizes at ``mark``.

    Returns
    -------
    g : float
        Share of every debt repaid.
    k : float
        Share of every collateral seized (1 when cleared).
    repaid_usd, seized_usd : float
        ``R`` and ``S``.
    cleared : bool
        All collateral is seized (what debt is left is then written off).
    """
    debt = -usd[u] if usd[u] < 0.0 else 0.0
    cv = usd[u] if usd[u] > 0.0 else 0.0
    weighted = cv
    for a in range(mark.shape[0]):
        value = coll[u, a] * mark[a]
        cv += value
        weighted += value * (1.0 - haircut[a])
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        if qty[p] != 0.0:
            debt += abs(qty[p]) * mark[pos_asset[p]]
    if debt <= 0.0:
        return 0.0, 0.0, 0.0, 0.0, False
    cf = fparams[FP_CLOSE_FACTOR]
    floor_usd = fparams[FP_FULL_CLOSE_USD]
    if weighted / debt <= fparams[FP_FULL_CLOSE_HF] or cv < floor_usd or debt < floor_usd:
        cf = 1.0
    bonus = fparams[FP_BONUS]
    repaid = cf * debt
    seized = repaid * (1.0 + bonus)
    cleared = False
    if seized >= cv:
        seized = cv
        repaid = cv / (1.0 + bonus)
        cleared = True
    k = 1.0 if cleared else seized / cv
    return repaid / debt, k, repaid, seized, cleared


@leaf
def lending_flow_nb(u, g, k, coll, qty, pos_asset, unit_pos_start, flow
                    ):  # pragma: no cover - jitted
    """Add the liquidators' trades for unit ``u`` to ``flow`` (asset units, + = selling)."""
    for a in range(flow.shape[0]):
        flow[a] += k * coll[u, a]
    for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
        if qty[p] != 0.0:
            flow[pos_asset[p]] -= g * abs(qty[p])


@leaf
def lending_settle_nb(on, i, t, r, u, g, k, repaid_usd, seized_usd, cleared, mark, usd, coll, qty,
                      pos_asset, unit_pos_start, fparams, fund, ev_i, ev_f, n_ev
                      ):  # pragma: no cover - jitted
    """Apply the liquidation of unit ``u`` planned by :func:`lending_plan_nb`.

    Returns
    -------
    fund, fee, bad_debt, paid : float
    deficit : float
        What the fund could not pay (handled with the round's other deficits).
    n_ev : int
    overflow : bool
        The event buffer is too small (nothing was changed).
    """
    if on is None:  # not a lending venue (``RuleArrays.lending_on``): compiles to this
        return fund, 0.0, 0.0, 0.0, 0.0, n_ev, False
    n_assets = mark.shape[0]
    start, stop = unit_pos_start[u], unit_pos_start[u + 1]
    usd0 = usd[u]
    # pass 1: amounts, write-off and the number of events
    need = 1 if usd0 != 0.0 else 0
    left_total = 0.0
    if usd0 < 0.0:
        left_total += -usd0 - g * -usd0
    for p in range(start, stop):
        if qty[p] != 0.0:
            need += 1
            left = 0.0 if g == 1.0 else abs(qty[p]) - g * abs(qty[p])
            left_total += left * mark[pos_asset[p]]
    seized_total = usd0 * k if usd0 > 0.0 else 0.0
    for a in range(n_assets):
        if coll[u, a] > 0.0:
            need += 1
            seized_total += (coll[u, a] if cleared else k * coll[u, a]) * mark[a]
    bd = left_total if cleared else 0.0
    if bd < 0.0:
        bd = 0.0
    fee = fparams[FP_PROTOCOL_SHARE] * (seized_usd - repaid_usd)
    fund += fee
    paid = bd if bd < fund else fund
    fund -= paid
    deficit = bd - paid
    if n_ev + need > ev_i.shape[0]:
        return fund, 0.0, 0.0, 0.0, 0.0, n_ev, True
    # pass 2: debts (USD, then positions), collateral (USD, then assets), write-off
    if usd0 < 0.0:
        rep = g * -usd0
        left = -usd0 - rep
        share = left / left_total if bd > 0.0 and left_total > 0.0 else 0.0
        put_event_nb(ev_i, ev_f, n_ev, i, t, r, u, KIND_LIQUIDATION, INSTRUMENT_DEBT, -1, rep,
                     1.0, 1.0, rep, 0.0, bd * share, paid * share)
        n_ev += 1
        usd[u] = 0.0 if cleared else usd0 + rep
    for p in range(start, stop):
        q = qty[p]
        if q == 0.0:
            continue
        a = pos_asset[p]
        rep = g * abs(q)
        left = 0.0 if g == 1.0 else abs(q) - rep
        share = left * mark[a] / left_total if bd > 0.0 and left_total > 0.0 else 0.0
        put_event_nb(ev_i, ev_f, n_ev, i, t, r, u, KIND_LIQUIDATION, INSTRUMENT_DEBT, a, rep,
                     mark[a], mark[a], rep * mark[a], 0.0, bd * share, paid * share)
        n_ev += 1
        qty[p] = 0.0 if (g == 1.0 or cleared) else q + rep
    if usd0 > 0.0:
        amount = usd0 if cleared else k * usd0
        fee_share = fee * amount / seized_total if seized_total > 0.0 else 0.0
        put_event_nb(ev_i, ev_f, n_ev, i, t, r, u, KIND_LIQUIDATION, INSTRUMENT_COLLATERAL, -1,
                     -amount, 1.0, 1.0, amount, fee_share, 0.0, 0.0)
        n_ev += 1
        usd[u] = 0.0 if cleared else usd0 - amount
    for a in range(n_assets):
        c = coll[u, a]
        if c > 0.0:
            amount = c if cleared else k * c
            value = amount * mark[a]
            fee_share = fee * value / seized_total if seized_total > 0.0 else 0.0
            put_event_nb(ev_i, ev_f, n_ev, i, t, r, u, KIND_LIQUIDATION, INSTRUMENT_COLLATERAL,
                         a, -amount, mark[a], mark[a], value, fee_share, 0.0, 0.0)
            n_ev += 1
            coll[u, a] = 0.0 if cleared else c - amount
    return fund, fee, bd, paid, deficit, n_ev, False
