"""dYdX v4 indexer subaccounts (``format = "dydx"``).

Follows the ``GetAddress`` operation of the dYdX v4 Indexer API documentation
(docs.dydx.exchange, *Indexer API*: ``GET /v4/addresses/{address}``), whose response is
``{"subaccounts": [SubaccountResponseObject, ...]}``: ``address``, ``subaccountNumber``,
``equity``, ``freeCollateral``, ``marginEnabled``, ``openPerpetualPositions`` (a map
market -> ``{market, status, side LONG | SHORT, size, entryPrice, unrealizedPnl, ...}``) and
``assetPositions`` (a map symbol -> ``{symbol, side, size, assetId}``). Numbers are
decimal strings. A perpetual's ``size`` is signed as the indexer stores it (negative for
a SHORT; a SHORT with a positive size is read as short too); an asset position's ``size``
is unsigned and its ``side`` gives the sign (a SHORT USDC position is borrowed USDC).

One file holds many addresses: an object mapping each address to its response, an array
of responses, or one response (each subaccount names its address). The response of
``GET /v4/addresses/{address}/subaccountNumber/{n}`` (``{"subaccount": {...}}``) is
accepted in their place.

Mapping: every subaccount is one cross account (dYdX margins a subaccount as a whole; an
isolated position lives in a subaccount of its own, numbers 128 and up), id
``<address>/<subaccountNumber>``. Its collateral is its USDC (signed; other assets as the
scenario's) plus ``size x entryPrice`` of each perpetual: total net collateral is defined
as USDC + Σ size x oracle price, so the account's equity at the oracle prices is the
indexer's ``equity``, whatever the indexer's ``unrealizedPnl`` holds. Markets lose their
quote (``BTC-USD`` -> ``BTC``). Positions whose ``status`` is not ``OPEN`` or whose size
is 0 are passed over.
"""

from __future__ import annotations

from simulator.config.accounts import Account, Position
from simulator.config.snapshots._common import Node, Reader, balances, check_collateral, merge

__all__ = ["read_dydx"]

_SIDES = ("LONG", "SHORT")


def _responses(root: Node) -> list[tuple[str | None, Node]]:
    """``(address the file keys it by, or None; response)`` pairs."""
    if root.is_object() and not (root.has("subaccounts") or root.has("subaccount")):
        return list(root.entries())
    if root.is_object():
        return [(None, root)]
    return [(None, item) for item in root.items()]


def _subaccounts(response: Node) -> list[Node]:
    response.expect_object('an address response {"subaccounts": [...]}')
    if response.has("subaccount") and not response.has("subaccounts"):
        return [response.field("subaccount")]
    return response.field("subaccounts", "the address's subaccounts").items()


def read_dydx(root: Node, reader: Reader) -> None:
    """Read every subaccount of the file into ``reader``.

    Parameters
    ----------
    root : Node
        The file's JSON value.
    reader : Reader
        Collects the accounts.
    """
    for key, response in _responses(root):
        for sub in _subaccounts(response):
            address = sub.text("address")
            if key is not None and address != key:
                raise sub.child("address", address).error(
                    f"{address!r} differs from the address {key!r} the file keys it by")
            number = sub.integer("subaccountNumber", 0, 2**31)
            reader.account = f"{address}/{number}"
            _read_subaccount(reader.account, sub, reader)
    reader.account = ""


def _read_subaccount(account_id: str, sub: Node, reader: Reader) -> None:
    collateral: dict[str, float] = {}
    assets = sub.field("assetPositions")
    for key, item in assets.entries():
        name = item.text("symbol", default=key)
        side = item.text("side", _SIDES)
        size = item.number("size")
        if side == "LONG" and size < 0:
            raise item.child("size", item.value["size"]).error(
                "is negative on a LONG asset position; give the size unsigned")
        amount = -abs(size) if side == "SHORT" else size
        if amount == 0.0:
            continue
        symbol = reader.symbol(name, item.child("symbol", name), default=name,
                               position=False)
        if symbol is None:
            reader.skip_balance()
            continue
        merge(collateral, symbol, amount)
    check_collateral(collateral, assets)
    positions: list[Position] = []
    for key, item in sub.field("openPerpetualPositions").entries():
        market = item.text("market", default=key)
        if item.text("status", default="OPEN") != "OPEN":
            continue
        side = item.text("side", _SIDES)
        size = item.qty("size")
        if side == "LONG" and size < 0:
            raise item.child("size", item.value["size"]).error(
                f"is negative on a LONG position ({market}); a LONG position's size is > 0")
        qty = -abs(size) if side == "SHORT" else size
        if qty == 0.0:
            continue
        entry = item.price("entryPrice")
        merge(collateral, "USD", qty * entry)  # USDC + size x entry: see the module notes
        base = market[:-len("-USD")] if market.endswith("-USD") else market
        symbol = reader.symbol(market, item.child("market", market), default=base,
                               position=True)
        if symbol is None:
            reader.skip_position(qty, entry)
            continue
        positions.append(Position(symbol=symbol, qty=qty, entry=entry))
    if positions or any(collateral.values()):
        reader.add(Account(id=account_id, margin_mode="cross",
                           collateral=balances(collateral), positions=tuple(positions)), sub)
