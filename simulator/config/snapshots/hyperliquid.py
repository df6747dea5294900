"""Hyperliquid ``clearinghouseState`` snapshots (``format = "hyperliquid"``).

Follows the response of the info endpoint's "Retrieve a user's perpetuals account summary"
(``POST /info`` with ``{"type": "clearinghouseState", "user": "0x…"}``) in Hyperliquid's
API documentation (hyperliquid.gitbook.io, *for developers / API / info endpoint /
perpetuals*): ``assetPositions[].position`` with ``coin``, ``szi`` (signed size),
``entryPx``, ``leverage {type: cross | isolated, value, rawUsd}``, ``marginUsed``,
``unrealizedPnl``, ``positionValue``, ``liquidationPx``; ``crossMarginSummary``
(``accountValue``, ``totalRawUsd``, ...), ``marginSummary``, ``withdrawable``, ``time``.
Numbers are decimal strings.

One file holds many users: an object mapping each address to its response, or an array of
``{"user": "0x…", "state": {...}}`` (``"clearinghouseState"`` is accepted for ``"state"``).

Mapping (all amounts are USDC, read as USD):

- The cross part of a user is one cross account, id the address, holding the cross
  positions; its collateral is ``crossMarginSummary.accountValue`` less the cross positions'
  ``unrealizedPnl`` (the USDC the account would hold with every cross position closed at
  its entry price), so that its equity at the snapshot's marks is the venue's cross
  account value. A user without cross positions and with a cross account value of 0 has
  no cross account.
- Each isolated position is an isolated account ``<address>:<coin>`` whose collateral is
  the position's ``marginUsed`` (for an isolated position, the margin allocated to it with
  its unrealized PnL: ``rawUsd + szi x mark``) less its ``unrealizedPnl``: its equity at the
  marks is the venue's isolated margin.
- ``coin`` is the scenario symbol as given (``BTC``), or as ``accounts_file.symbols`` maps it
  (``kPEPE`` is a contract on 1,000 PEPE: map it to an asset priced per 1,000).

Spot balances (``spotClearinghouseState``) are another response and are not read.
"""

from __future__ import annotations

from simulator.config.accounts import Account, Position
from simulator.config.snapshots._common import Node, Reader, keyed_accounts

__all__ = ["read_hyperliquid"]

_EXAMPLE = '{"0xabc…": {"assetPositions": [...], ...}} or [{"user": "0xabc…", "state": {...}}]'


def read_hyperliquid(root: Node, reader: Reader) -> None:
    """Read every user's ``clearinghouseState`` of the file into ``reader``.

    Parameters
    ----------
    root : Node
        The file's JSON value.
    reader : Reader
        Collects the accounts.
    """
    pairs = keyed_accounts(root, id_field="user", body_fields=("state", "clearinghouseState"),
                           bare_fields=("assetPositions", "crossMarginSummary"),
                           example=_EXAMPLE)
    for user, state in pairs:
        reader.account = user
        _read_state(user, state, reader)
    reader.account = ""


def _read_state(user: str, state: Node, reader: Reader) -> None:
    cross_value = state.field("crossMarginSummary").number("accountValue")
    cross: list[Position] = []
    cross_upnl = 0.0
    isolated: list[tuple[Account, Node]] = []
    for item in state.field("assetPositions").items():
        pos = item.field("position")
        coin = pos.text("coin")
        szi = pos.qty("szi")
        if szi == 0.0:
            continue
        entry = pos.price("entryPx")
        upnl = pos.number("unrealizedPnl")
        mode = pos.field("leverage").text("type", ("cross", "isolated"))
        symbol = reader.symbol(coin, pos.child("coin", coin), default=coin, position=True)
        if mode == "cross":
            cross_upnl += upnl  # the position's PnL is in the account value either way
            if symbol is None:
                reader.skip_position(szi, entry)
            else:
                cross.append(Position(symbol=symbol, qty=szi, entry=entry))
            continue
        margin = pos.number("marginUsed")
        if symbol is None:
            reader.skip_position(szi, entry)
            continue
        account = Account(id=f"{user}:{coin}", margin_mode="isolated",
                          collateral=(("USD", margin - upnl),),
                          positions=(Position(symbol=symbol, qty=szi, entry=entry),))
        isolated.append((account, item))
    collateral = cross_value - cross_upnl
    if cross or collateral != 0.0:
        reader.add(Account(id=user, margin_mode="cross",
                           collateral=(("USD", collateral),) if collateral else (),
                           positions=tuple(cross)), state)
    for account, node in isolated:
        reader.add(account, node)
