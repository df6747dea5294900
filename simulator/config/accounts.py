"""Explicit accounts and their positions (``[[accounts]]``): dataclasses and readers.

The readers take a :class:`simulator.config._table.Table`, so the same checks serve the
scenario file's ``[[accounts]]`` and the rows of an accounts file
(:mod:`simulator.config.accounts_file`), each error naming where the bad value came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulator.config._table import Table, read_each
from simulator.config.limits import MAX_AMOUNT, MAX_PRICE, MAX_QTY, MIN_PRICE
from simulator.config.venue import MARGIN_MODES, Venue

if TYPE_CHECKING:
    from simulator.config.market import Market

__all__ = ["MAX_AMOUNT", "MAX_PRICE", "MAX_QTY", "MIN_PRICE", "Account", "Position",
           "read_account", "read_position"]


@dataclass(frozen=True)
class Position:
    """A position: a perpetual (signed quantity and entry price) or a European option.

    ``kind`` is ``perp`` (linear: ``qty`` in coins, PnL in USD), ``inverse``
    (coin-margined: ``qty`` in USD contracts of 1 USD face, PnL ``qty (1/entry - 1/mark)``
    paid in the coin), ``call`` or ``put`` (``qty`` options on 1 coin each, > 0 long,
    < 0 short; ``strike`` in USD, ``expiry_days`` from the start, ``iv`` the implied vol
    at the start, by default the asset's ``vol``; the premium is already in the account's
    collateral, so an option adds ``qty x`` its mark to the equity).
    """

    symbol: str
    qty: float
    entry: float
    kind: str = "perp"
    strike: float = 0.0
    expiry_days: float = 0.0
    iv: float = 0.0

    @property
    def is_option(self) -> bool:
        """Whether this is a call or a put."""
        return self.kind in ("call", "put")


@dataclass(frozen=True)
class Account:
    """An explicit account (``[[accounts]]``)."""

    id: str
    margin_mode: str
    collateral: tuple[tuple[str, float], ...]
    positions: tuple[Position, ...]
    debt: tuple[tuple[str, float], ...] = ()


def read_account(t: Table, market: Market, venue: Venue) -> Account:
    """Read one ``[[accounts]]`` table (its unknown keys are left to ``t.finish()``)."""
    raw_id = t.raw("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id) == "":
        raise t.error("id", f"expected a non-empty string, got {raw_id!r}")
    mode = t.string("margin_mode", venue.margin_mode, choices=MARGIN_MODES)
    coll_table = t.table("collateral", {})
    collateral = []
    for sym in list(coll_table.data):
        if sym != "USD" and sym not in market.symbols:
            raise coll_table.error(sym, f"{sym!r} is not an asset; valid: USD, "
                                   f"{', '.join(market.symbols)}")
        amount = coll_table.number(sym, lo=0.0, hi=MAX_AMOUNT)
        collateral.append((sym, amount))
    positions = read_each(t.tables("positions"), lambda p: read_position(p, market))
    debt = []
    if venue.lending:
        if positions:
            raise t.error("positions", "a lending venue (venue.type = \"lending\") holds "
                          "collateral and debt, not positions; use debt = { USD = ... }")
        debt_table = t.table("debt", {})
        for sym in list(debt_table.data):
            if sym != "USD" and sym not in market.symbols:
                raise debt_table.error(sym, f"{sym!r} is not an asset; valid: USD, "
                                       f"{', '.join(market.symbols)}")
            debt.append((sym, debt_table.number(sym, lo=0.0, hi=MAX_AMOUNT)))
        mode = "cross"  # a lending account is one position: all collateral backs all debt
    elif t.has("debt"):
        raise t.error("debt", "debt is for lending venues (venue.type = \"lending\"); on a "
                      "derivatives venue an account holds collateral and positions")
    return Account(id=str(raw_id), margin_mode=mode, collateral=tuple(collateral),
                   positions=positions, debt=tuple(debt))


def read_position(t: Table, market: Market) -> Position:
    """Read one position table: a perpetual (``perp``, ``inverse``) or an option."""
    symbol = t.string("symbol")
    if symbol not in market.symbols:
        raise t.error("symbol", f"{symbol!r} is not an asset; valid: {', '.join(market.symbols)}")
    kind = t.string("type", "perp", choices=("perp", "inverse", "call", "put"))
    asset = market.assets[market.index(symbol)]
    price = asset.price
    if kind in ("call", "put"):
        if t.has("entry"):
            raise t.error("entry", "an option has no entry price: its premium is already in "
                          "the collateral; give strike, expiry_days and optionally iv")
        iv = t.number("iv", asset.vol, lo=0.0, lo_open=True, hi=10.0)
        if not iv > 0.0:
            raise t.error("iv", f"the option needs an implied vol > 0; {symbol} has vol = 0, "
                          "so set iv on the position")
        return Position(symbol=symbol, qty=t.number("qty", lo=-MAX_QTY, hi=MAX_QTY), entry=0.0,
                        kind=kind, strike=t.number("strike", lo=0.0, lo_open=True,
                                                   hi=MAX_PRICE, floor=MIN_PRICE),
                        expiry_days=t.number("expiry_days", lo=0.0, lo_open=True, hi=36500.0),
                        iv=iv)
    for key in ("strike", "expiry_days", "iv"):
        if t.has(key):
            raise t.error(key, f"{key} is for options (type = \"call\" or \"put\"), not "
                          f"a {kind} position")
    return Position(
        symbol=symbol,
        qty=t.number("qty", lo=-MAX_QTY, hi=MAX_QTY),
        entry=t.number("entry", price, lo=0.0, lo_open=True, hi=MAX_PRICE,
                       floor=MIN_PRICE),
        kind=kind,
    )
