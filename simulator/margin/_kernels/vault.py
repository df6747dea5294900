"""Numba kernels of the backstop vault's gradual disposal (``docs/engine.md``, "The backstop
vault's inventory"): the take-over into inventory, the sales at the start of each step's
rounds, and the vault's marked value at the step's close and the path's end.

Each kernel takes ``RuleArrays.vault_on`` first: an empty array (``vault_disposal =
"instant"``, or no backstop) returns at once. An array, not None (the pattern of
``calls_on``): a None would make the replay kernel a type of its own for the feature, about
45 s of compilation the first time a scenario uses it, against about a second for these
small leaf kernels compiled once for every scenario.
"""

from __future__ import annotations

import numpy as np

from simulator._kernels.bounds import bound_price_nb
from simulator._kernels.jit import leaf
from simulator.margin._kernels.state import put_event_nb
from simulator.margin.codes import (
    FP_ALPHA,
    FP_VAULT_DEPTH_SHARE,
    FP_VAULT_SHARE,
    INSTRUMENT_COLLATERAL,
    KIND_VAULT_SALE,
    PF_VAULT_DRAWDOWN,
    PF_VAULT_INV_END,
    PF_VAULT_PNL,
    PI_PRICE_BOUNDED,
    POS_INVERSE,
    POS_LINEAR,
)


@leaf
def vault_take_nb(on, u, mark, closed, pos_asset, pos_kind, unit_pos_start, coll, inv, base,
                  cash):  # pragma: no cover - jitted
    """Unit ``u``, just closed at the marks ``mark`` by a backstop take-over (``closed[p]``
    the quantity closed of each of its positions; its collateral not yet sold), goes into
    the vault's inventory: per asset ``q = coll[u, a] + sum closed (linear) + sum closed /
    mark (inverse: the contracts' coins)``; the vault pays ``q x mark`` (``cash[0]``), and
    ``base[a] = |inv[a]|`` for every asset whose inventory changed. Options stay out (closed
    at their value, as an instant take-over does)."""
    if on.shape[0] == 0:  # instant disposal (``RuleArrays.vault_on``)
        return
    start, stop = unit_pos_start[u], unit_pos_start[u + 1]
    for a in range(mark.shape[0]):
        q = coll[u, a]
        for p in range(start, stop):
            if closed[p] != 0.0 and pos_asset[p] == a:
                if pos_kind[p] == POS_LINEAR:
                    q += closed[p]
                elif pos_kind[p] == POS_INVERSE:
                    q += closed[p] / mark[a]
        if q != 0.0:
            inv[a] += q
            cash[0] -= q * mark[a]
            base[a] = abs(inv[a])


@leaf
def vault_sales_nb(on, i, t, depth_t, fparams, mark, logimp, p_lo, p_hi, inv, base, cash,
                   path_i, ev_i, ev_f, n_ev):  # pragma: no cover - jitted
    """The vault's sales at step ``t`` of path ``i`` (after the marks, expiries, funding and
    margin-call answers, before the step's rounds): per asset holding inventory, it sells
    ``min(share x base, depth_share x depth / mark, |inv|)`` toward zero through the
    market: the impact law of a round moves the mark (``logimp`` takes the move) and the
    sale fills at ``M + (M2 - M) / (1 + alpha)``. One event per sale (kind ``vault_sale``,
    instrument ``collateral``, unit -1, round 0). Returns ``(n_ev, overflow)``; on overflow
    the sales not recorded are not made."""
    if on.shape[0] == 0:  # instant disposal (``RuleArrays.vault_on``)
        return n_ev, False
    share = fparams[FP_VAULT_SHARE]
    depth_share = fparams[FP_VAULT_DEPTH_SHARE]
    alpha = fparams[FP_ALPHA]
    for a in range(mark.shape[0]):
        held = inv[a]
        if held == 0.0:
            continue
        if n_ev >= ev_i.shape[0]:
            return n_ev, True
        m = mark[a]
        size = share * base[a]
        cap = depth_share * depth_t[a] / m
        if cap < size:
            size = cap
        if not size > 0.0:  # no depth this step
            continue
        whole = size >= abs(held)
        if whole:
            size = abs(held)
        s = size if held > 0.0 else -size  # coins sold (< 0: bought back)
        q_usd = s * m
        m2 = m
        x = m
        if alpha != 0.0 and q_usd != 0.0:
            sgn = 1.0 if q_usd > 0.0 else -1.0
            d = -sgn * 0.01 * (abs(q_usd) / depth_t[a]) ** alpha
            m2 = m * np.exp(d)
            if not (p_lo[a] <= m2 <= p_hi[a]):  # the impact law is unbounded
                path_i[i, PI_PRICE_BOUNDED] = 1
                m2 = bound_price_nb(m2, p_lo[a], p_hi[a])
                d = np.log(m2 / m)
            x = m + (m2 - m) / (1.0 + alpha)
            logimp[a] += d
            mark[a] = m2
        cash[0] += s * x
        inv[a] = 0.0 if whole else held - s
        put_event_nb(ev_i, ev_f, n_ev, i, t, 0, -1, KIND_VAULT_SALE, INSTRUMENT_COLLATERAL, a,
                     -s, m, x, abs(s) * x, 0.0, 0.0, 0.0)
        n_ev += 1
    return n_ev, False


@leaf
def vault_value_nb(on, i, mark, inv, cash, path_f, final):  # pragma: no cover - jitted
    """The vault's marked value at a step's close, ``kept + cash + inv . mark``
    (``path_f[i, PF_VAULT_PNL]`` holds ``kept + cash`` while the path runs): its running
    peak (``cash[1]``, from 0) and largest drawdown. ``final``: the path's end, where
    ``PF_VAULT_INV_END`` takes the inventory's value and ``PF_VAULT_PNL`` the whole value."""
    if on.shape[0] == 0:  # instant disposal: the PnL is the equity kept, no drawdown
        return
    held = 0.0
    for a in range(mark.shape[0]):
        if inv[a] != 0.0:
            held += inv[a] * mark[a]
    value = path_f[i, PF_VAULT_PNL] + cash[0] + held
    if value > cash[1]:
        cash[1] = value
    if cash[1] - value > path_f[i, PF_VAULT_DRAWDOWN]:
        path_f[i, PF_VAULT_DRAWDOWN] = cash[1] - value
    if final:
        path_f[i, PF_VAULT_INV_END] = held
        path_f[i, PF_VAULT_PNL] = value


@leaf
def vault_reset_nb(on, inv, base, cash):  # pragma: no cover - jitted
    """An empty vault at the start of a path."""
    if on.shape[0] == 0:
        return
    for a in range(inv.shape[0]):
        inv[a] = 0.0
        base[a] = 0.0
    cash[0] = 0.0
    cash[1] = 0.0
