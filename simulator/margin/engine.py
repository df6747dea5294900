"""Margin engine, Python layer: prepare the book, its liquidation index and the venue
rules, run the replay kernel, and give account PnL back in blocks.

The rules are specified in ``docs/engine.md``. :func:`replay` returns raw arrays; the
runner turns them into Parquet tables and per-account estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..book import Book
from ..scenario import Liquidity, Market, Venue
from . import codes
from ._index_kernels import SLACK_MARGIN
from ._kernels import replay_nb

#: smallest volatility used to split a unit's slack between assets (any split is correct;
#: this one only sets how often a multi-asset unit is re-checked)
SIGMA_FLOOR = 0.05


@dataclass(frozen=True)
class EngineRules:
    """Venue and liquidity rules in the form the kernel takes.

    Attributes
    ----------
    haircut, mmr : ndarray, shape (A,)
        Collateral haircut and maintenance margin rate per asset.
    sigma : ndarray, shape (A,)
        Volatility scale per asset, used to split safe bands between assets.
    fparams : ndarray, shape (codes.N_FP,)
    iparams : ndarray, shape (codes.N_IP,)
    """

    haircut: np.ndarray
    mmr: np.ndarray
    sigma: np.ndarray
    fparams: np.ndarray
    iparams: np.ndarray

    @classmethod
    def from_scenario(cls, venue: Venue, liquidity: Liquidity, market: Market,
                      full_scan: bool = False) -> EngineRules:
        """Build the rules of a scenario's ``[venue]``, ``[liquidity]`` and assets.

        ``full_scan`` checks every unit at every round instead of using the index (same
        results, slower; for tests and benchmarks).
        """
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
        iparams[codes.IP_FULL_SCAN] = full_scan
        haircut = np.array([a.haircut for a in market.assets], dtype=float)
        sigma = np.maximum(np.array([a.vol for a in market.assets], dtype=float), SIGMA_FLOOR)
        mmr = np.full(haircut.shape, venue.maintenance_margin_rate)
        return cls(haircut=haircut, mmr=mmr, sigma=sigma, fparams=fparams, iparams=iparams)


@dataclass(frozen=True)
class BookIndex:
    """The book's initial slack form, NAV form and liquidation index (same on every path).

    Attributes
    ----------
    lin, const, n_open : ndarray
        ``E - MM = const + lin @ M`` per unit, and its number of open positions.
    navk, navc : ndarray
        ``NAV = navc + navk @ M`` per unit (no haircut).
    s_key, s_unit, s_start : ndarray
        Initial band thresholds per heap ``2 a + d`` (d = 0 down, 1 up), descending keys.
    init_pending : ndarray
        Units without a band at the initial prices (checked exactly at the first round).
    """

    lin: np.ndarray
    const: np.ndarray
    n_open: np.ndarray
    navk: np.ndarray
    navc: np.ndarray
    s_key: np.ndarray
    s_unit: np.ndarray
    s_start: np.ndarray
    init_pending: np.ndarray

    @classmethod
    def build(cls, book: Book, rules: EngineRules, s0: np.ndarray) -> BookIndex:
        """Index ``book`` at the initial prices ``s0``."""
        n_units, n_assets = book.n_units, len(s0)
        pos_unit = book.pos_unit
        open_ = book.pos_qty != 0.0
        q = np.where(open_, book.pos_qty, 0.0)
        exposure = np.zeros((n_units, n_assets))
        np.add.at(exposure, (pos_unit, book.pos_asset), q - rules.mmr[book.pos_asset] * np.abs(q))
        lin = book.unit_coll * (1.0 - rules.haircut) + exposure
        const = book.unit_usd - np.bincount(pos_unit, q * book.pos_entry, minlength=n_units)
        n_open = np.bincount(pos_unit, open_, minlength=n_units).astype(np.int64)
        navk = unit_nav_coefficients(book)
        navc = const.copy()

        slack = const + lin @ s0
        scale = np.abs(const) + np.abs(lin) @ s0
        slack_eff = slack - SLACK_MARGIN * scale
        weight = (np.abs(lin) * rules.sigma * s0).sum(axis=1)
        live = n_open > 0
        init_pending = np.flatnonzero(live & (slack_eff <= 0.0)).astype(np.int64)
        banded = live & (slack_eff > 0.0) & (weight > 0.0)
        keys, units, starts = [], [], [0]
        for a in range(n_assets):
            for d in (0, 1):
                rows = np.flatnonzero(banded & ((lin[:, a] > 0) if d == 0 else (lin[:, a] < 0)))
                band = slack_eff[rows] * rules.sigma[a] * s0[a] / weight[rows]
                key = s0[a] - band if d == 0 else -(s0[a] + band)
                order = np.argsort(-key, kind="stable")
                keys.append(key[order])
                units.append(rows[order])
                starts.append(starts[-1] + len(rows))
        return cls(lin=np.ascontiguousarray(lin), const=const, n_open=n_open,
                   navk=np.ascontiguousarray(navk), navc=navc,
                   s_key=np.concatenate(keys), s_unit=np.concatenate(units).astype(np.int64),
                   s_start=np.array(starts, dtype=np.int64), init_pending=init_pending)


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


def unit_nav_coefficients(book: Book) -> np.ndarray:
    """``navk`` such that an unchanged unit's NAV moves by ``navk @ dM``; shape (U, A)."""
    navk = book.unit_coll.copy()
    np.add.at(navk, (book.pos_unit, book.pos_asset), book.pos_qty)
    return navk


def account_nav_coefficients(book: Book) -> np.ndarray:
    """``K`` such that an untouched account's NAV moves by ``K @ dM``; shape (n_acc, A)."""
    out = np.zeros((book.n_accounts, book.unit_coll.shape[1]))
    np.add.at(out, book.unit_account, unit_nav_coefficients(book))
    return out


def replay(exo: np.ndarray, depth_usd: np.ndarray, book: Book, rules: EngineRules,
           initial_events: int = 4096, save_marks: int = 0,
           index: BookIndex | None = None) -> ReplayResult:
    """Replay every path of ``exo`` over ``book``.

    Parameters
    ----------
    exo : ndarray, shape (n, steps + 1, A)
        Exogenous prices; ``exo[:, 0]`` are the initial prices, the same on every path.
    depth_usd : ndarray, shape (steps + 1, A)
        Depth per step.
    book : Book
    rules : EngineRules
    initial_events : int
        Initial size of the event and correction buffers; they double as needed.
    save_marks : int
        Keep the closing mark of every step for the first ``save_marks`` paths.
    index : BookIndex, optional
        Precomputed with :meth:`BookIndex.build` at ``exo[0, 0]``.

    Returns
    -------
    ReplayResult
    """
    exo = np.ascontiguousarray(exo, dtype=float)
    n_paths, _, n_assets = exo.shape
    if index is None:
        s0 = exo[0, 0] if n_paths else np.ones(n_assets)
        index = BookIndex.build(book, rules, s0)
    path_f = np.zeros((n_paths, codes.N_PF))
    path_i = np.zeros((n_paths, codes.N_PI), dtype=np.int64)
    min_price = np.zeros((n_paths, n_assets))
    final_price = np.zeros((n_paths, n_assets))
    acct_liq = np.zeros(book.n_accounts, dtype=np.int64)
    acct_bank = np.zeros(book.n_accounts, dtype=np.int64)
    marks = np.zeros((min(save_marks, n_paths), exo.shape[1], n_assets))
    depth = np.ascontiguousarray(depth_usd, dtype=float)
    coll0 = np.ascontiguousarray(book.unit_coll)
    ev_i_parts, ev_f_parts, ci_parts, cf_parts = [], [], [], []
    ev_cap = corr_cap = max(16, int(initial_events))
    first = 0
    while first < n_paths or not ev_i_parts:
        ev_i = np.empty((ev_cap, codes.N_EI), dtype=np.int64)
        ev_f = np.empty((ev_cap, codes.N_EF))
        corr_i = np.empty((corr_cap, 2), dtype=np.int64)
        corr_f = np.empty(corr_cap)
        n_ev, n_corr, done, overflow = replay_nb(
            exo, depth, rules.haircut, rules.mmr, rules.sigma, book.unit_usd, coll0,
            book.unit_pos_start, book.unit_account, book.pos_unit, book.pos_asset,
            book.pos_qty, book.pos_entry, index.lin, index.const, index.n_open, index.navk,
            index.navc, index.s_key, index.s_unit, index.s_start, index.init_pending,
            rules.fparams, rules.iparams, path_f, path_i, min_price, final_price, marks,
            acct_liq, acct_bank, ev_i, ev_f, corr_i, corr_f, first)
        ev_i_parts.append(ev_i[:n_ev].copy())
        ev_f_parts.append(ev_f[:n_ev].copy())
        ci_parts.append(corr_i[:n_corr].copy())
        cf_parts.append(corr_f[:n_corr].copy())
        if done < n_paths and done == first:  # one path alone did not fit: grow
            if overflow & codes.OVERFLOW_EVENTS:
                ev_cap *= 2
            if overflow & codes.OVERFLOW_CORRECTIONS:
                corr_cap *= 2
        first = done
    corr = np.concatenate(ci_parts)
    return ReplayResult(path_f, path_i, min_price, final_price, marks,
                        np.concatenate(ev_i_parts), np.concatenate(ev_f_parts), acct_liq,
                        acct_bank, corr[:, 0].copy(), corr[:, 1].copy(),
                        np.concatenate(cf_parts))
