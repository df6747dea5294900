"""Binance USDⓈ-M futures snapshots (``format = "binance"``).

Follows two responses of Binance's *Derivatives / USDⓈ-M Futures* REST API documentation
(developers.binance.com):

- *Account Information V2 / V3* (``GET /fapi/v2/account``, ``GET /fapi/v3/account``):
  ``assets[]`` with ``asset``, ``walletBalance``, ``crossWalletBalance``,
  ``unrealizedProfit``, ``marginBalance``, ...; totals ``totalWalletBalance``,
  ``totalMarginBalance``, ... . Its ``positions[]`` are not read (V3's lack the entry
  price): positions come from
- *Position Information V2 / V3* (``GET /fapi/v2/positionRisk``, ``GET /fapi/v3/positionRisk``):
  ``symbol``, ``positionAmt`` (signed), ``entryPrice``, ``markPrice``,
  ``unRealizedProfit``, ``liquidationPrice``, ``isolatedMargin``, ``isolatedWallet``,
  ``positionSide`` (``BOTH`` in one-way mode, ``LONG`` / ``SHORT`` in hedge mode) and, in
  V2, ``marginType`` (``cross`` / ``isolated``). Without ``marginType`` (V3) a position is
  isolated when its ``isolatedWallet`` is above 0.

Numbers are decimal strings. One file holds many accounts, each with both responses: an
object mapping each account's name to ``{"account": {...}, "positionRisk": [...]}``, or an
array of ``{"id": "…", "account": {...}, "positionRisk": [...]}``.

Mapping:

- The account's cross part is one cross account, id the name: its collateral is each
  asset's ``crossWalletBalance`` (the wallet without the isolated wallets, before
  unrealized PnL), USDT / USDC / FDUSD / BUSD read as USD, other assets (multi-assets
  mode: BNB, BTC, ...) as the scenario's assets. Its equity at the marks is then the
  cross margin balance, ``crossWalletBalance + crossUnPnl``.
- Each isolated position is an isolated account ``<name>:<symbol>`` (``<name>:<symbol>:LONG``
  / ``:SHORT`` in hedge mode) whose collateral is its ``isolatedWallet`` (its isolated
  margin less its unrealized PnL; ``isolatedMargin - unRealizedProfit`` when
  ``isolatedWallet`` is absent).
- Positions of size 0 (V2 lists every symbol) and zero balances are passed over, whatever
  their symbol. A symbol loses its quote currency (``BTCUSDT`` -> ``BTC``; ``1000PEPEUSDT``
  -> ``1000PEPE``, a contract on 1,000 PEPE) and a delivery suffix (``BTCUSDT_250328``).
"""

from __future__ import annotations

import re

from simulator.config.accounts import Account, Position
from simulator.config.snapshots._common import (
    Node,
    Reader,
    balances,
    check_collateral,
    keyed_accounts,
    merge,
)

__all__ = ["read_binance", "strip_quote"]

_QUOTES = ("FDUSD", "BUSD", "USDT", "USDC")
_DELIVERY = re.compile(r"_\d{6}$")
_EXAMPLE = ('{"sub-1": {"account": {...}, "positionRisk": [...]}} or '
            '[{"id": "sub-1", "account": {...}, "positionRisk": [...]}]')


def strip_quote(symbol: str) -> str:
    """A Binance contract's base: ``BTCUSDT`` -> ``BTC``, ``ETHUSDC_250328`` -> ``ETH``."""
    base = _DELIVERY.sub("", symbol)
    for quote in _QUOTES:
        if base.endswith(quote) and len(base) > len(quote):
            return base[:-len(quote)]
    return base


def read_binance(root: Node, reader: Reader) -> None:
    """Read every account (account and position-risk responses) of the file into ``reader``.

    Parameters
    ----------
    root : Node
        The file's JSON value.
    reader : Reader
        Collects the accounts.
    """
    pairs = keyed_accounts(root, id_field="id", body_fields=(),
                           bare_fields=("account", "positionRisk", "assets", "totalWalletBalance"),
                           example=_EXAMPLE)
    for name, entry in pairs:
        reader.account = name
        _read_account(name, entry, reader)
    reader.account = ""


def _read_account(name: str, entry: Node, reader: Reader) -> None:
    account = entry.field("account", "the account information response")
    risk = entry.field("positionRisk", "the position information response")
    collateral: dict[str, float] = {}
    for item in account.field("assets").items():
        asset = item.text("asset")
        amount = item.number("crossWalletBalance")
        if amount == 0.0:
            continue
        symbol = reader.symbol(asset, item.child("asset", asset), default=asset,
                               position=False)
        if symbol is None:
            reader.skip_balance()
            continue
        merge(collateral, symbol, amount)
    check_collateral(collateral, account.field("assets"))
    cross: list[Position] = []
    isolated: list[tuple[Account, Node]] = []
    for item in risk.items():
        amount = item.qty("positionAmt")
        if amount == 0.0:
            continue
        contract = item.text("symbol")
        side = item.text("positionSide", ("BOTH", "LONG", "SHORT"), "BOTH")
        if side == "LONG" and amount < 0:
            raise item.child("positionAmt", item.value["positionAmt"]).error(
                f"is negative on a LONG position ({contract}); a LONG position's amount "
                "is > 0")
        qty = -abs(amount) if side == "SHORT" else amount
        entry_price = item.price("entryPrice")
        upnl = item.number("unRealizedProfit")
        symbol = reader.symbol(contract, item.child("symbol", contract),
                               default=strip_quote(contract), position=True)
        if symbol is None:
            reader.skip_position(qty, entry_price)
            continue
        position = Position(symbol=symbol, qty=qty, entry=entry_price)
        if not _is_isolated(item):
            cross.append(position)
            continue
        if item.has("isolatedWallet"):
            wallet = item.number("isolatedWallet")
        else:
            wallet = item.number("isolatedMargin") - upnl
        suffix = "" if side == "BOTH" else f":{side}"
        isolated.append((Account(id=f"{name}:{contract}{suffix}", margin_mode="isolated",
                                 collateral=(("USD", wallet),), positions=(position,)), item))
    if cross or collateral:
        reader.add(Account(id=name, margin_mode="cross", collateral=balances(collateral),
                           positions=tuple(cross)), entry)
    for acc, node in isolated:
        reader.add(acc, node)


def _is_isolated(item: Node) -> bool:
    """``marginType`` (V2), else whether an isolated wallet is held (V3)."""
    if item.has("marginType"):
        return item.text("marginType", ("cross", "crossed", "isolated"), fold=True) == \
            "isolated"
    if not item.has("isolatedWallet"):
        item.field("marginType", "or isolatedWallet: how the position is margined")
    return item.number("isolatedWallet") > 0.0
