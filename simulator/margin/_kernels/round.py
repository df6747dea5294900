"""Numba kernels of the first steps of a cascade round (``docs/engine.md``, "One round"):
how much of each liquidatable unit is closed, and the round's net flow per asset."""

from __future__ import annotations

from simulator._kernels.jit import leaf
from simulator.margin._kernels.lending import lending_flow_nb, lending_plan_nb
from simulator.margin._kernels.options import delta_at_nb, option_terms_nb
from simulator.margin._kernels.state import unit_values_nb
from simulator.margin.codes import (
    FP_BACKSTOP,
    FP_FEE_RATE,
    FP_FULL_BELOW,
    FP_STEP_FRACTION,
    FP_STEP_MAX,
    FP_STEP_MIN,
    FP_TARGET,
    KIND_BACKSTOP,
    KIND_LIQUIDATION,
    MODE_FULL,
    MODE_INCREMENTAL,
    MODE_PARTIAL,
    OC_UNIT_OPT,
    POS_CALL,
    POS_INVERSE,
)


@leaf
def round_fractions_nb(liq, n_l, lending_on, mode, fparams, mark, usd, coll, qty, pos_asset,
                       pos_entry, pos_kind, unit_pos_start, haircut, tiers, kind, frac, plan_g,
                       plan_k, plan_r, plan_s, plan_c, t, oc):  # pragma: no cover - jitted
    """Step 1: for each unit ``liq[j]``, its event kind and closed fraction ``frac[j]``
    (derivatives: full, partial, incremental or backstop), or its lending plan
    (``lending_on`` not None: ``RuleArrays.lending_on``; ``oc`` None: a book without
    options, ``OptionArrays.oc_or_none``: neither compiles the other kind's code).

    A fraction below 1 applies to the perpetuals only: an option unit's options are closed
    when the whole unit is (futures and perpetuals first, options next). Its partial
    fraction keeps the option maintenance ``mo`` as it is:
    ``f = (target MM - E) / (target (MM - mo) - fee x notional)``."""
    backstop = fparams[FP_BACKSTOP]
    target = fparams[FP_TARGET]
    fee_rate = fparams[FP_FEE_RATE]
    for j in range(n_l):
        u = liq[j]
        f = 1.0
        kind[j] = KIND_LIQUIDATION
        if lending_on is not None:
            g, kk, rep, sz, clr = lending_plan_nb(u, mark, usd, coll, qty, pos_asset,
                                                  unit_pos_start, haircut, fparams)
            plan_g[j] = g
            plan_k[j] = kk
            plan_r[j] = rep
            plan_s[j] = sz
            plan_c[j] = clr
        elif mode != MODE_FULL or backstop > 0.0:
            e, mm, nn, w = unit_values_nb(u, mark, usd, coll, qty, pos_asset, pos_entry,
                                          pos_kind, unit_pos_start, haircut, tiers, t, oc)
            mm_linear = mm
            if oc is not None and oc[OC_UNIT_OPT][u]:  # (None: a book without options)
                v, mo = option_terms_nb(u, mark, mark, t, t, 1.0, qty, pos_asset, pos_entry,
                                        pos_kind, unit_pos_start, tiers, oc)
                mm_linear = mm - mo
            if backstop > 0.0 and e < backstop * mm:
                kind[j] = KIND_BACKSTOP
            elif mode == MODE_PARTIAL:
                den = target * mm_linear - fee_rate * nn
                if e > 0.0 and den > 0.0:
                    f = (target * mm - e) / den
                    if f >= 1.0:
                        f = 1.0
                    elif f < 0.0:
                        f = 0.0
            elif mode == MODE_INCREMENTAL and e > 0.0 and nn > fparams[FP_FULL_BELOW]:
                c_usd = fparams[FP_STEP_FRACTION] * nn
                if c_usd < fparams[FP_STEP_MIN]:
                    c_usd = fparams[FP_STEP_MIN]
                if c_usd > fparams[FP_STEP_MAX]:
                    c_usd = fparams[FP_STEP_MAX]
                f = c_usd / nn
                if f >= 1.0:
                    f = 1.0
        frac[j] = f


@leaf
def round_flow_nb(liq, n_l, lending_on, kind, frac, plan_g, plan_k, mark, coll, qty, pos_asset,
                  pos_entry, pos_kind, unit_pos_start, flow, t, oc):  # pragma: no cover - jitted
    """Step 2: the round's net flow per asset, in asset units (+ = selling).

    An option closed (only in a full close) reaches the underlying through its hedge:
    whoever takes it over sells ``c x delta`` coins (delta at the round's marks).
    ``lending_on`` and ``oc`` as in :func:`round_fractions_nb`."""
    n_assets = flow.shape[0]
    for a in range(n_assets):
        flow[a] = 0.0
    for j in range(n_l):
        u = liq[j]
        if lending_on is not None:
            lending_flow_nb(u, plan_g[j], plan_k[j], coll, qty, pos_asset, unit_pos_start, flow)
            continue
        if kind[j] == KIND_BACKSTOP:
            continue  # the vault takes the positions over: nothing reaches the market
        full = frac[j] == 1.0
        for p in range(unit_pos_start[u], unit_pos_start[u + 1]):
            if qty[p] != 0.0:
                a = pos_asset[p]
                if pos_kind[p] >= POS_CALL:
                    if oc is not None and full:  # (None: a book without options)
                        flow[a] += qty[p] * delta_at_nb(p, a, pos_kind[p], mark[a],
                                                        pos_entry[p], t, oc)
                    continue
                c = qty[p] if full else frac[j] * qty[p]
                if pos_kind[p] == POS_INVERSE:
                    flow[a] += c / mark[a]  # USD contracts -> coins
                    if full:  # the coin PnL it realises is sold with the rest
                        flow[a] += c * (1.0 / pos_entry[p] - 1.0 / mark[a])
                else:
                    flow[a] += c
        if full:
            for a in range(n_assets):
                flow[a] += coll[u, a]
