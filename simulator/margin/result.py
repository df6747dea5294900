"""The replay's result record: the raw arrays of :func:`simulator.margin.engine.replay`.

A plain dataclass with no kernel behind it, so that :mod:`simulator.results` reads what
the engine returns without importing the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ReplayResult"]


@dataclass
class ReplayResult:
    """Raw outputs of the replay of ``n`` paths.

    Attributes
    ----------
    path_f : ndarray, shape (n, codes.N_PF)
    path_i : ndarray, shape (n, codes.N_PI)
    min_price, final_price : ndarray, shape (n, A)
        Minimum and last closing mark price.
    marks : ndarray, shape (n_save, steps + 1, A)
        Closing marks of the first paths (see ``save_marks``).
    ev_i : ndarray, shape (n_events, codes.N_EI)
    ev_f : ndarray, shape (n_events, codes.N_EF)
    acct_liquidated, acct_bankrupt : ndarray, shape (n_accounts,)
        Number of paths on which each account was liquidated / bankrupt.
    corr_path, corr_account : ndarray of int64, shape (n_corr,)
    corr_delta : ndarray, shape (n_corr,)
        Account PnL corrections (see :meth:`account_pnl`).
    acct_weighted : ndarray, shape (n_accounts, 4)
        Per account, over the paths on which it was liquidated: the sum of the paths'
        weights and of their squares; then the same over the paths on which it was
        bankrupt (with weights 1.0: the counts).
    ev_adl : ndarray, shape (n_events, codes.N_EA)
        Per event row, for ADL fills only (other rows NaN): the ADL'd unit's
        leverage and unrealised PnL just before the fill (``codes.EA_*``).
    path_adl : ndarray, shape (n, 6)
        The per-path ADL figures, columns
        :data:`simulator.margin.adl_figures.ADL_PATH_COLUMNS`.
    acct_adl : ndarray of int64, shape (n_accounts,)
        Number of paths on which any of each account's positions was ADL'd.
    acct_adl_weighted : ndarray, shape (n_accounts, 2)
        Over those paths, the sums of the paths' weights and of their squares.
    """

    path_f: np.ndarray
    path_i: np.ndarray
    min_price: np.ndarray
    final_price: np.ndarray
    marks: np.ndarray
    ev_i: np.ndarray
    ev_f: np.ndarray
    acct_liquidated: np.ndarray
    acct_bankrupt: np.ndarray
    corr_path: np.ndarray
    corr_account: np.ndarray
    corr_delta: np.ndarray
    acct_weighted: np.ndarray | None = None
    ev_adl: np.ndarray | None = None
    path_adl: np.ndarray | None = None
    acct_adl: np.ndarray | None = None
    acct_adl_weighted: np.ndarray | None = None

    def account_pnl(self, acct_navk: np.ndarray, s0: np.ndarray, start: int = 0,
                    stop: int | None = None) -> np.ndarray:
        """PnL of accounts ``start:stop`` on every path, shape (n, stop - start).

        An account's PnL is ``acct_navk @ (final marks - s0)`` (what its initial book is
        worth at the final marks) plus the corrections of its units that changed.
        """
        stop = acct_navk.shape[0] if stop is None else stop
        pnl = (self.final_price - s0) @ acct_navk[start:stop].T
        sel = (self.corr_account >= start) & (self.corr_account < stop)
        np.add.at(pnl, (self.corr_path[sel], self.corr_account[sel] - start),
                  self.corr_delta[sel])
        return pnl
