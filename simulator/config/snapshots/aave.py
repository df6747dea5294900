"""Aave v3 user reserves, as the Aave v3 subgraph returns them (``format = "aave"``).

Follows the ``UserReserve`` entity of the Aave protocol subgraph (``aave/protocol-subgraphs``,
``schemas/v3.schema.graphql``), queried as ``userReserves(where: {user_in: [...]})``:
``user { id }``, ``reserve { symbol, decimals, underlyingAsset, ... }``,
``currentATokenBalance``, ``currentVariableDebt``, ``currentStableDebt`` (absent in newer
deployments: read as 0) and ``usageAsCollateralEnabledOnUser``. Amounts are raw integers
(strings of digits) scaled by ``10^reserve.decimals``: ``"1500000"`` of USDC (6 decimals)
is 1.5 USDC.

The file is the GraphQL response ``{"data": {"userReserves": [...]}}``, its
``{"userReserves": [...]}``, or the bare array; rows of many users, in any order (each row
names its user). ``user`` may also be the address as a plain string.

Mapping (a lending venue: ``venue.type = "lending"``, for example ``preset = "aave-v3"``):

- One account per user, id the address, cross (all collateral backs all debt).
- An aToken balance with ``usageAsCollateralEnabledOnUser`` is collateral; one without is
  passed over (it backs nothing and cannot be seized). Variable and stable debt add up to
  the account's debt in that reserve.
- ``reserve.symbol`` maps to the scenario: ``WETH`` -> ``ETH``, ``WBTC`` -> ``BTC``,
  stablecoins (``USDC``, ``USDT``, ``DAI``, ``GHO``, ...) -> ``USD``, others as given
  (``wstETH``: define that asset, or map it with ``accounts_file.symbols``). Rows whose
  balances are all zero are passed over, whatever their symbol.
"""

from __future__ import annotations

from simulator.config.accounts import Account
from simulator.config.snapshots._common import Node, Reader, balances, check_collateral, merge

__all__ = ["read_aave"]


def _rows(root: Node) -> Node:
    """The ``userReserves`` array of the file."""
    if root.is_object():
        if root.has("data"):
            root = root.field("data")
        return root.field("userReserves", "the array of user reserves")
    if not isinstance(root.value, list):
        root.expect_object('{"data": {"userReserves": [...]}} or an array of user reserves')
    return root


def read_aave(root: Node, reader: Reader) -> None:
    """Read every user's reserves of the file into ``reader``.

    Parameters
    ----------
    root : Node
        The file's JSON value.
    reader : Reader
        Collects the accounts.
    """
    users: dict[str, tuple[dict[str, float], dict[str, float], Node]] = {}
    for row in _rows(root).items():
        user_node = row.field("user")
        user = (user_node.value if isinstance(user_node.value, str) and user_node.value
                else row.field("user").text("id"))
        reader.account = user
        reserve = row.field("reserve")
        name = reserve.text("symbol")
        decimals = reserve.integer("decimals", 0, 77)
        supplied = row.raw_amount("currentATokenBalance", decimals)
        debt = (row.raw_amount("currentVariableDebt", decimals)
                + row.raw_amount("currentStableDebt", decimals, 0.0))
        as_collateral = row.flag("usageAsCollateralEnabledOnUser")
        collateral_map, debt_map, _ = users.setdefault(user, ({}, {}, row))
        if not ((supplied > 0 and as_collateral) or debt > 0):
            continue
        symbol = reader.symbol(name, reserve.child("symbol", name), default=name,
                               position=False)
        if symbol is None:
            reader.skip_balance()
            continue
        if supplied > 0 and as_collateral:
            merge(collateral_map, symbol, supplied)
        if debt > 0:
            merge(debt_map, symbol, debt)
    for user, (collateral_map, debt_map, node) in users.items():
        reader.account = user
        check_collateral(collateral_map, node)
        if collateral_map or debt_map:
            reader.add(Account(id=user, margin_mode="cross",
                               collateral=balances(collateral_map), positions=(),
                               debt=balances(debt_map)), node)
    reader.account = ""
