"""Margin engine, Python layer: prepare the book and the venue rules, run the replay kernel.

The rules are specified in ``docs/engine.md``. :func:`replay` returns raw arrays; the
runner turns them into Parquet tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..book import Book
from ..scenario import Liquidity, Venue
from . import codes
from ._kernels import replay_nb


@dataclass(frozen=True)
class EngineRules:
    """Venue and liquidity rules in the form the kernel takes.

    Attributes
    ----------
    haircut, mmr : ndarray, shape (A,)
        Collateral haircut and maintenance margin rate per asset.
    fparams : ndarray, shape (codes.N_FP,)
    iparams : ndarray, shape (codes.N_IP,)
    """

    haircut: np.ndarray
    mmr: np.ndarray
    fparams: np.ndarray
    iparams: np.ndarray

    @classmethod
    def from_scenario(cls, venue: Venue, liquidity: Liquidity, haircut: np.ndarray
                      ) -> EngineRules:
        """Build the rules of a scenario's ``[venue]`` and ``[liquidity]``."""
        fparams = np.zeros(codes.N_FP)
        fparams[codes.FP_FEE_RATE] = venue.liquidation_fee_rate
        fparams[codes.FP_TARGET] = venue.target
        fparams[codes.FP_FUND0] = venue.insurance_fund_usd
        fparams[codes.FP_ALPHA] = liquidity.alpha
        fparams[codes.FP_DECAY] = liquidity.decay_per_step
        iparams = np.zeros(codes.N_IP, dtype=np.int64)
        iparams[codes.IP_PARTIAL] = venue.liquidation == "partial"
        iparams[codes.IP_ADL] = venue.adl
        iparams[codes.IP_MAX_ROUNDS] = venue.max_cascade_rounds
        haircut = np.asarray(haircut, dtype=float)
        mmr = np.full(haircut.shape, venue.maintenance_margin_rate)
        return cls(haircut=haircut, mmr=mmr, fparams=fparams, iparams=iparams)


@dataclass
class ReplayResult:
    """Raw outputs of the replay of ``n`` paths.

    Attributes
    ----------
    path_f : ndarray, shape (n, codes.N_PF)
    path_i : ndarray, shape (n, codes.N_PI)
    min_price, final_price : ndarray, shape (n, A)
        Minimum and last closing mark price.
    acct_pnl : ndarray, shape (n, n_accounts)
    acct_flags : ndarray of uint8, shape (n, n_accounts)
    ev_i : ndarray, shape (n_events, codes.N_EI)
    ev_f : ndarray, shape (n_events, codes.N_EF)
    marks : ndarray, shape (n_save, steps + 1, A)
        Closing marks of the first paths (see ``save_marks``).
    """

    path_f: np.ndarray
    path_i: np.ndarray
    min_price: np.ndarray
    final_price: np.ndarray
    acct_pnl: np.ndarray
    acct_flags: np.ndarray
    ev_i: np.ndarray
    ev_f: np.ndarray
    marks: np.ndarray


def replay(exo: np.ndarray, depth_usd: np.ndarray, book: Book, rules: EngineRules,
           initial_events: int = 4096, save_marks: int = 0) -> ReplayResult:
    """Replay every path of ``exo`` over ``book``.

    Parameters
    ----------
    exo : ndarray, shape (n, steps + 1, A)
        Exogenous prices.
    depth_usd : ndarray, shape (steps + 1, A)
        Depth per step.
    book : Book
    rules : EngineRules
    initial_events : int
        Initial event buffer size; it doubles as needed.
    save_marks : int
        Keep the closing mark of every step for the first ``save_marks`` paths.

    Returns
    -------
    ReplayResult
    """
    exo = np.ascontiguousarray(exo, dtype=float)
    n_paths, _, n_assets = exo.shape
    unit_nav0 = book.unit_nav(exo[0, 0]) if n_paths else np.zeros(book.n_units)
    path_f = np.zeros((n_paths, codes.N_PF))
    path_i = np.zeros((n_paths, codes.N_PI), dtype=np.int64)
    min_price = np.zeros((n_paths, n_assets))
    final_price = np.zeros((n_paths, n_assets))
    acct_pnl = np.zeros((n_paths, book.n_accounts))
    acct_flags = np.zeros((n_paths, book.n_accounts), dtype=np.uint8)
    marks = np.zeros((min(save_marks, n_paths), exo.shape[1], n_assets))
    ev_i_parts, ev_f_parts = [], []
    capacity = max(16, int(initial_events))
    first = 0
    while first < n_paths or not ev_i_parts:
        ev_i = np.empty((capacity, codes.N_EI), dtype=np.int64)
        ev_f = np.empty((capacity, codes.N_EF))
        n_ev, done = replay_nb(
            exo, np.ascontiguousarray(depth_usd, dtype=float), rules.haircut, rules.mmr,
            book.unit_usd, np.ascontiguousarray(book.unit_coll), book.unit_pos_start,
            book.unit_account, unit_nav0, book.pos_unit, book.pos_asset, book.pos_qty,
            book.pos_entry, rules.fparams, rules.iparams, path_f, path_i, min_price,
            final_price, acct_pnl, acct_flags, marks, ev_i, ev_f, first)
        ev_i_parts.append(ev_i[:n_ev].copy())
        ev_f_parts.append(ev_f[:n_ev].copy())
        if done < n_paths and done == first:
            capacity *= 2  # one path alone did not fit
        first = done
    return ReplayResult(path_f, path_i, min_price, final_price, acct_pnl, acct_flags,
                        np.concatenate(ev_i_parts), np.concatenate(ev_f_parts), marks)
