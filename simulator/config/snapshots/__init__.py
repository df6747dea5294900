"""Venue account snapshots: ``[accounts_file] format = "hyperliquid"`` (or ``"binance"``,
``"aave"``, ``"dydx"``).

A snapshot file holds many accounts in the shape each venue's public API returns them
(one module per venue says which document it follows, the wrapper that puts many
accounts in one file, and how the venue's numbers become the scenario's accounts). The
readers share :mod:`simulator.config.snapshots._common`: JSON read with field paths,
strict numbers, symbol rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from simulator.config.snapshots._common import (
    STABLECOINS,
    WRAPPED,
    Node,
    Reader,
    SnapshotOptions,
    parse_json,
)
from simulator.config.snapshots.aave import read_aave
from simulator.config.snapshots.binance import read_binance
from simulator.config.snapshots.dydx import read_dydx
from simulator.config.snapshots.hyperliquid import read_hyperliquid
from simulator.errors import ScenarioError

if TYPE_CHECKING:
    from simulator.config.accounts import Account
    from simulator.config.market import Market
    from simulator.config.venue import Venue

__all__ = ["FORMATS", "STABLECOINS", "WRAPPED", "SnapshotOptions", "read_snapshot"]

_READERS: dict[str, Callable[[Node, Reader], None]] = {
    "hyperliquid": read_hyperliquid,
    "binance": read_binance,
    "aave": read_aave,
    "dydx": read_dydx,
}
#: the snapshot formats, in the order the documentation lists them
FORMATS = tuple(_READERS)
#: formats of lending markets (the others hold perpetuals)
LENDING_FORMATS = ("aave",)


def read_snapshot(data: bytes, source: str, options: SnapshotOptions, market: Market,
                  venue: Venue, taken: dict[str, str]) -> tuple[Account, ...]:
    """The accounts of a venue snapshot file.

    Parameters
    ----------
    data : bytes
        The file's bytes (UTF-8 JSON).
    source : str
        The file, for messages.
    options : SnapshotOptions
        The format and the symbol rules.
    market : Market
        The scenario's assets.
    venue : Venue
        The scenario's venue: a lending format needs a lending venue, the others a
        derivatives venue.
    taken : dict of str to str
        Account ids already used and where.

    Returns
    -------
    tuple of Account
        In file order; for a venue account holding cross and isolated positions, its cross
        account first, then one isolated account per isolated position.

    Raises
    ------
    ScenarioError
        Naming the file, the JSON field path, the account, the bad value and what is valid.
    """
    lending = options.format in LENDING_FORMATS
    if lending != venue.lending:
        need = ("a lending venue (venue.type = \"lending\", or preset = \"aave-v3\")" if lending
                else "a derivatives venue (it holds perpetuals; venue.type is \"lending\")")
        raise ScenarioError(source, "", f"format = {options.format!r} reads "
                            f"{'collateral and debt' if lending else 'perpetual positions'}"
                            f" and needs {need}")
    reader = Reader(source, market, options, taken)
    _READERS[options.format](Node(parse_json(data, source), "", reader), reader)
    return reader.finish()
