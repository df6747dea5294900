"""The book: every account of a scenario as flat arrays of margin units and positions.

The engine knows *margin units*, not accounts. A cross-margined account is one unit; an
isolated account is one unit per position, its collateral split between them in proportion
to each position's entry notional (``docs/engine.md``). Explicit ``[[accounts]]`` come
first, then those of the ``[accounts_file]``, then the synthetic population
(:mod:`simulator.book.population`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator._kernels.black_scholes import bs_price_nb
from simulator.book.population import draw_population
from simulator.config.scenario import Scenario

CROSS, ISOLATED = 0, 1
POS_CALL = 2  # = simulator.margin.codes.POS_CALL
DAYS_PER_YEAR = 365.0
_KIND_CODES = {"perp": 0, "inverse": 1, "call": 2, "put": 3}


@dataclass(frozen=True)
class Book:
    """Accounts, margin units and positions as arrays.

    Attributes
    ----------
    account_ids : tuple of str
        Account ids, in account order.
    account_isolated : ndarray of bool, shape (n_accounts,)
    unit_account : ndarray of int64, shape (U,)
        Account of each unit; non-decreasing.
    unit_usd : ndarray of float64, shape (U,)
        USD balance of each unit.
    unit_coll : ndarray of float64, shape (U, A)
        Collateral amount of each asset held by each unit.
    unit_pos_start : ndarray of int64, shape (U + 1,)
        Positions of unit ``u`` are ``unit_pos_start[u]:unit_pos_start[u + 1]``.
    pos_asset, pos_qty, pos_entry : ndarray, shape (P,)
        Asset index, signed quantity and entry price of each position (an option's
        strike in place of its entry price).
    pos_kind : ndarray of int64, shape (P,)
        ``0`` a linear perpetual (qty in coins), ``1`` an inverse one (qty in USD
        contracts, PnL paid in the coin), ``2`` a call, ``3`` a put (qty in options on one
        coin); see :mod:`simulator.margin.codes`. Within a unit, options come last.
    pos_expiry_years, pos_iv : ndarray, shape (P,)
        Options: time to expiry at the start, in years, and implied vol at the start
        (0 for perpetuals).
    """

    account_ids: tuple[str, ...]
    account_isolated: np.ndarray
    unit_account: np.ndarray
    unit_usd: np.ndarray
    unit_coll: np.ndarray
    unit_pos_start: np.ndarray
    pos_asset: np.ndarray
    pos_qty: np.ndarray
    pos_entry: np.ndarray
    pos_kind: np.ndarray
    pos_expiry_years: np.ndarray | None = None
    pos_iv: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.pos_qty)
        for name in ("pos_expiry_years", "pos_iv"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros(n))

    @property
    def has_options(self) -> bool:
        """Whether any position is an option."""
        return bool(np.any(self.pos_kind >= POS_CALL))

    @property
    def n_accounts(self) -> int:
        """Number of accounts."""
        return len(self.account_ids)

    @property
    def n_units(self) -> int:
        """Number of margin units."""
        return len(self.unit_account)

    @property
    def pos_unit(self) -> np.ndarray:
        """Unit of each position."""
        counts = np.diff(self.unit_pos_start)
        return np.repeat(np.arange(self.n_units, dtype=np.int64), counts)

    def option_values(self, prices: np.ndarray) -> np.ndarray:
        """``qty x`` Black-Scholes value of every option position at ``prices``, with its
        implied vol and time to expiry at the start, shape (P,); 0 for perpetuals."""
        out = np.zeros(len(self.pos_qty))
        mark = prices[self.pos_asset]
        for p in np.flatnonzero(self.pos_kind >= POS_CALL):
            out[p] = self.pos_qty[p] * bs_price_nb(self.pos_kind[p] == POS_CALL, mark[p],
                                                   self.pos_entry[p],
                                                   self.pos_expiry_years[p], self.pos_iv[p])
        return out

    def unit_nav(self, prices: np.ndarray) -> np.ndarray:
        """Net asset value of every unit at ``prices`` (no haircut), shape (U,); options at
        their value with the initial implied vol and time to expiry."""
        mark = prices[self.pos_asset]
        upnl = np.where(self.pos_kind == 1, self.pos_qty * (mark / self.pos_entry - 1.0),
                        self.pos_qty * (mark - self.pos_entry))
        upnl = np.where(self.pos_kind >= POS_CALL, self.option_values(prices), upnl)
        return (self.unit_usd + self.unit_coll @ prices
                + np.bincount(self.pos_unit, upnl, minlength=self.n_units))


def assemble_book(
    account_ids: list[str],
    isolated: np.ndarray,
    usd: np.ndarray,
    coll: np.ndarray,
    pos_account: np.ndarray,
    pos_asset: np.ndarray,
    pos_qty: np.ndarray,
    pos_entry: np.ndarray,
    pos_kind: np.ndarray | None = None,
    pos_expiry_years: np.ndarray | None = None,
    pos_iv: np.ndarray | None = None,
) -> Book:
    """Split accounts into margin units.

    Parameters
    ----------
    account_ids : list of str
    isolated : ndarray of bool, shape (n,)
    usd : ndarray, shape (n,)
        USD collateral per account.
    coll : ndarray, shape (n, A)
        Asset collateral per account.
    pos_account, pos_asset, pos_qty, pos_entry : ndarray, shape (P,)
        Positions, with ``pos_account`` non-decreasing.
    pos_kind : ndarray, shape (P,), optional
        ``1`` for an inverse perpetual, ``2`` / ``3`` for a call / put; all linear when
        left out.
    pos_expiry_years, pos_iv : ndarray, shape (P,), optional
        Options' time to expiry and implied vol at the start.

    Returns
    -------
    Book
    """
    n = len(account_ids)
    pos_account = np.asarray(pos_account, dtype=np.int64)
    if np.any(np.diff(pos_account) < 0):
        raise ValueError("positions must be sorted by account")
    isolated = np.asarray(isolated, dtype=bool)
    n_pos = np.bincount(pos_account, minlength=n)
    units_per_account = np.where(isolated & (n_pos > 0), n_pos, 1)
    unit_account = np.repeat(np.arange(n, dtype=np.int64), units_per_account)
    n_units = len(unit_account)
    first_unit = np.concatenate([[0], np.cumsum(units_per_account)[:-1]]).astype(np.int64)
    first_pos = np.concatenate([[0], np.cumsum(n_pos)[:-1]]).astype(np.int64)
    rank = np.arange(len(pos_account), dtype=np.int64) - first_pos[pos_account]
    pos_unit = first_unit[pos_account] + np.where(isolated[pos_account], rank, 0)
    unit_pos_start = np.concatenate(
        [[0], np.cumsum(np.bincount(pos_unit, minlength=n_units))]).astype(np.int64)
    pos_kind = (np.zeros(len(pos_account), dtype=np.int64) if pos_kind is None
                else np.asarray(pos_kind, dtype=np.int64))
    # entry notional in USD: an inverse position's qty is already USD; an option's is its
    # strike notional
    notional = np.where(pos_kind == 1, np.abs(pos_qty), np.abs(pos_qty) * pos_entry)
    account_notional = np.bincount(pos_account, notional, minlength=n)[unit_account]
    unit_notional = np.bincount(pos_unit, notional, minlength=n_units)
    share = np.divide(unit_notional, account_notional, out=1.0 / units_per_account[unit_account],
                      where=account_notional > 0)
    return Book(
        account_ids=tuple(account_ids),
        account_isolated=isolated,
        unit_account=unit_account,
        unit_usd=np.asarray(usd, dtype=float)[unit_account] * share,
        unit_coll=np.asarray(coll, dtype=float)[unit_account] * share[:, None],
        unit_pos_start=unit_pos_start,
        pos_asset=np.asarray(pos_asset, dtype=np.int64),
        pos_qty=np.asarray(pos_qty, dtype=float),
        pos_entry=np.asarray(pos_entry, dtype=float),
        pos_kind=pos_kind,
        pos_expiry_years=(np.zeros(len(pos_kind)) if pos_expiry_years is None
                          else np.asarray(pos_expiry_years, dtype=float)),
        pos_iv=np.zeros(len(pos_kind)) if pos_iv is None else np.asarray(pos_iv, dtype=float),
    )


def build_book(scenario: Scenario) -> Book:
    """All accounts of ``scenario``: explicit ones, the accounts file's, then the population.

    Parameters
    ----------
    scenario : Scenario

    Returns
    -------
    Book
    """
    market = scenario.market
    n_assets = len(market.assets)
    ids: list[str] = []
    isolated: list[bool] = []
    usd: list[float] = []
    coll_rows: list[np.ndarray] = []
    pos_account: list[int] = []
    pos_asset: list[int] = []
    pos_qty: list[float] = []
    pos_entry: list[float] = []
    pos_kind: list[int] = []
    pos_expiry: list[float] = []
    pos_iv: list[float] = []
    for i, account in enumerate(scenario.all_accounts):
        ids.append(account.id)
        isolated.append(account.margin_mode == "isolated")
        row = np.zeros(n_assets)
        cash = 0.0
        for symbol, amount in account.collateral:
            if symbol == "USD":
                cash += amount
            else:
                row[market.index(symbol)] += amount
        for symbol, amount in account.debt:  # lending: a debt is a short at entry 0
            if symbol == "USD":
                cash -= amount
            elif amount > 0:
                pos_account.append(i)
                pos_asset.append(market.index(symbol))
                pos_qty.append(-amount)
                pos_entry.append(0.0)
                pos_kind.append(0)
                pos_expiry.append(0.0)
                pos_iv.append(0.0)
        usd.append(cash)
        coll_rows.append(row)
        # perpetuals first, options last: a liquidation closes them in that order
        for p in sorted(account.positions, key=lambda p: p.is_option):
            pos_account.append(i)
            pos_asset.append(market.index(p.symbol))
            pos_qty.append(p.qty)
            pos_entry.append(p.strike if p.is_option else p.entry)
            pos_kind.append(_KIND_CODES[p.kind])
            pos_expiry.append(p.expiry_days / DAYS_PER_YEAR)
            pos_iv.append(p.iv)
    parts = [(ids, np.array(isolated, dtype=bool), np.array(usd, dtype=float),
              np.array(coll_rows, dtype=float).reshape(len(ids), n_assets),
              np.array(pos_account, dtype=np.int64), np.array(pos_asset, dtype=np.int64),
              np.array(pos_qty, dtype=float), np.array(pos_entry, dtype=float),
              np.array(pos_kind, dtype=np.int64), np.array(pos_expiry, dtype=float),
              np.array(pos_iv, dtype=float))]
    if scenario.population is not None and scenario.population.count > 0:
        parts.append(draw_population(scenario.population, market, scenario.venue,
                                     with_kinds=True))
    offset = 0
    n_fields = 11
    merged: list[list] = [[] for _ in range(n_fields)]
    for part in parts:
        merged[0].extend(part[0])
        n_pos = len(part[4])
        for k in range(1, n_fields):
            value = part[k] if k < len(part) else np.zeros(n_pos)
            merged[k].append(value + offset if k == 4 else value)
        offset += len(part[0])
    return assemble_book(merged[0], *(np.concatenate(m) for m in merged[1:]))
