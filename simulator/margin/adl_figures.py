"""Per-path and per-account ADL figures of a replay, from its whole event buffer (every ADL
fill of every path, whatever ``simulation.events`` keeps in ``events/``) and the per-fill
record ``ReplayResult.ev_adl`` (``docs/outputs.md``, "ADL figures")."""

from __future__ import annotations

import numpy as np

from simulator.margin import codes

__all__ = ["ADL_PATH_COLUMNS", "account_adl_counts", "path_adl_figures"]

#: the ``paths/`` columns of :func:`path_adl_figures`, in order
ADL_PATH_COLUMNS = codes.ADL_PATH_COLUMNS


def _sums(group: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """``np.bincount(group, weights, n)`` as float64 (NumPy gives int64 on empty input)."""
    return np.bincount(group, weights=weights, minlength=n).astype(np.float64)


def _group_median(group: np.ndarray, x: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of ``x`` within each group ``0 .. n_groups - 1`` (NaN for an empty one): the
    middle value, or the mean of the two middle ones."""
    out = np.full(n_groups, np.nan)
    if x.size == 0:
        return out
    order = np.lexsort((x, group))
    g, xs = group[order], x[order]
    count = np.bincount(g, minlength=n_groups)
    start = np.concatenate(([0], np.cumsum(count)[:-1]))
    has = count > 0
    lo = start[has] + (count[has] - 1) // 2
    hi = start[has] + count[has] // 2
    out[has] = 0.5 * (xs[lo] + xs[hi])
    return out


def path_adl_figures(ev_i: np.ndarray, ev_f: np.ndarray, ev_adl: np.ndarray,
                     adl_notional: np.ndarray) -> np.ndarray:
    """The ADL columns of ``paths/`` for ``n = len(adl_notional)`` paths.

    Parameters
    ----------
    ev_i, ev_f : ndarray
        The replay's events (paths counted from 0).
    ev_adl : ndarray, shape (n_events, codes.N_EA)
        The per-fill record (read on ADL rows only).
    adl_notional : ndarray, shape (n,)
        Each path's ADL notional (``path_f[:, PF_ADL_NOTIONAL]``).

    Returns
    -------
    ndarray, shape (n, 6)
        The columns :data:`ADL_PATH_COLUMNS`: ``adl_covered`` (the bad debt of the path's ADL fills,
        USD; 0 without ADL), ``adl_overshoot`` (``adl_notional / adl_covered``), the mean
        and median of the fills' leverage (fills whose unit had equity <= 0 left out),
        the mean of their unrealised PnL and the share of fills with PnL > 0. Each is NaN
        on a path without ADL fills (the leverage ones also when every fill's unit had
        equity <= 0; the overshoot when nothing was covered).
    """
    n = adl_notional.shape[0]
    adl = ev_i[:, codes.EI_KIND] == codes.KIND_ADL
    path = ev_i[adl, codes.EI_PATH]
    covered = _sums(path, ev_f[adl, codes.EF_BAD_DEBT], n)
    fills = np.bincount(path, minlength=n)
    lev = ev_adl[adl, codes.EA_LEVERAGE]
    pnl = ev_adl[adl, codes.EA_PNL]
    ok = ~np.isnan(lev)
    n_lev = np.bincount(path[ok], minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        overshoot = np.where(covered > 0.0, adl_notional / covered, np.nan)
        lev_mean = np.where(n_lev > 0, _sums(path[ok], lev[ok], n) / n_lev, np.nan)
        pnl_mean = np.where(fills > 0, _sums(path, pnl, n) / fills, np.nan)
        profit = np.where(fills > 0, _sums(path, (pnl > 0.0).astype(float), n) / fills,
                          np.nan)
    return np.column_stack([covered, overshoot, lev_mean, _group_median(path[ok], lev[ok], n),
                            pnl_mean, profit])


def account_adl_counts(ev_i: np.ndarray, unit_account: np.ndarray, n_accounts: int,
                       path_weight: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Per account, the number of paths on which any of its positions was ADL'd, and the
    sums over those paths of the path's weight and its square (``path_weight``, 1.0 when
    not given).

    Returns
    -------
    counts : ndarray of int64, shape (n_accounts,)
    weighted : ndarray, shape (n_accounts, 2)
    """
    adl = ev_i[:, codes.EI_KIND] == codes.KIND_ADL
    path = ev_i[adl, codes.EI_PATH]
    account = unit_account[ev_i[adl, codes.EI_UNIT]]
    span = int(path.max()) + 1 if path.size else 1
    pairs = np.unique(account.astype(np.int64) * span + path)  # (one sort of int64 keys:
    acc, on = np.divmod(pairs, span)                            # unique(axis=1) was slow)
    counts = np.bincount(acc, minlength=n_accounts).astype(np.int64)
    w = np.ones(on.size) if path_weight is None else np.asarray(path_weight)[on]
    weighted = np.column_stack([_sums(acc, w, n_accounts), _sums(acc, w * w, n_accounts)])
    return counts, weighted
