"""Numba kernels of the option boxes that are the same on every path
(:mod:`..option_boxes`, ``docs/engine.md``): finding them once per index, and giving an
unchanged unit its box of the current stage in the replay."""

from __future__ import annotations

import numpy as np
from numba import njit

from simulator._kernels.jit import leaf
from simulator.margin._kernels.index import heap_push_nb
from simulator.margin._kernels.option_boxes import (
    N_WORK,
    STATIC_GROW_TRIES,
    exposed_nb,
    option_box_nb,
)
from simulator.margin._kernels.options import option_slack_nb


@leaf
def push_stage_box_nb(u, j, k, mark, t, steps, stage_lo, stage_hi, stage_due, version, h_key,
                      h_unit, h_ver, h_n, on):  # pragma: no cover - jitted
    """Give option unit ``u`` (row ``j`` of the option units) its box of stage ``k``
    (:mod:`..option_boxes`) if the marks are inside it and step ``t`` in its window; the
    caller has made sure the unit's state is the one at the start of the path. Returns
    whether it did (else the unit is checked exactly); ``on``: ``OptionArrays.options_on``
    (None, a book without options, which never calls it, compiles to a return)."""
    if on is None:
        return False
    due = stage_due[k, j]
    if due <= t:  # no box (-1), or its window ended
        return False
    n_assets = mark.shape[0]
    for a in range(n_assets):
        if not (stage_lo[k, j, a] <= mark[a] <= stage_hi[k, j, a]):
            return False
    version[u] += 1
    ver = version[u]
    for a in range(n_assets):  # (0 / inf where the unit is not exposed)
        if stage_lo[k, j, a] > 0.0:
            heap_push_nb(h_key, h_unit, h_ver, h_n, 2 * a, stage_lo[k, j, a], u, ver, version)
        if stage_hi[k, j, a] < np.inf:
            heap_push_nb(h_key, h_unit, h_ver, h_n, 2 * a + 1, -stage_hi[k, j, a], u, ver,
                         version)
    if due <= steps:
        heap_push_nb(h_key, h_unit, h_ver, h_n, 2 * n_assets, 0.5 - due, u, ver, version)
    return True


@njit(cache=True)
def static_boxes_nb(units, mark, t0, steps, lin, const, sigma, mmk0, qty, pos_asset,
                    pos_kind, pos_entry, unit_pos_start, tiers, oc, out_lo, out_hi, out_due
                    ):  # pragma: no cover - jitted
    """Boxes of the option units ``units`` around ``mark`` from step ``t0``, with their state
    at the start of the path and the slack form ``lin, const`` at ``mark``: the same on
    every path (:mod:`..option_boxes`). Writes ``out_lo, out_hi`` (rows of ``units``;
    ``lo = 0`` / ``hi = inf``: no down / up threshold on that asset) and the due step
    ``out_due`` (``steps + 1``: none; ``-1``: no box, check at once)."""
    n_assets = mark.shape[0]
    lo = np.empty(n_assets)
    hi = np.empty(n_assets)
    work = np.empty((N_WORK, n_assets))
    for j in range(units.shape[0]):
        u = units[j]
        s = const[u]
        for a in range(n_assets):
            s += lin[u, a] * mark[a]
        s += option_slack_nb(u, mark, t0, mmk0[u], qty, pos_asset, pos_entry, pos_kind,
                             unit_pos_start, tiers, oc)
        t1 = -1
        if s > 0.0:
            t1 = option_box_nb(u, mark, t0, steps, s, lin, const, sigma, mmk0[u], qty,
                               pos_asset, pos_kind, pos_entry, unit_pos_start, tiers, oc,
                               lo, hi, work, True, False, STATIC_GROW_TRIES)
        if t1 < 0:
            out_due[j] = -1
            for a in range(n_assets):
                out_lo[j, a] = 0.0
                out_hi[j, a] = np.inf
            continue
        out_due[j] = t1 + 1 if t1 < steps else steps + 1
        for a in range(n_assets):
            if exposed_nb(u, a, lin, qty, pos_asset, unit_pos_start):
                out_lo[j, a] = lo[a]
                out_hi[j, a] = hi[a]
            else:
                out_lo[j, a] = 0.0
                out_hi[j, a] = np.inf
    return 0
