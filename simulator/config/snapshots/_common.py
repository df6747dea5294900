"""What every venue snapshot reader shares: JSON values read with their field path, strict
numbers, the mapping of venue names to the scenario's symbols, and the accounts collected.

A reader walks the venue's response through :class:`Node`, so every error names the file,
the JSON field path (``["0xab…"].assetPositions[1].position.szi``), the account, the bad
value and what is valid. Numbers arrive as strings in these APIs (``"0.0335"``); they are
read strictly: a decimal number as a string or a JSON number, nothing else.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulator.config._table import fmt_number
from simulator.config.accounts import Account
from simulator.config.limits import MAX_AMOUNT, MAX_PRICE, MAX_QTY, MIN_PRICE
from simulator.errors import ScenarioError

if TYPE_CHECKING:
    from simulator.config.market import Market

__all__ = ["STABLECOINS", "WRAPPED", "Node", "Reader", "SnapshotOptions", "balances",
           "check_collateral", "keyed_accounts", "merge", "parse_json"]

#: venue names read as ``USD`` (price 1) unless ``accounts_file.symbols`` says otherwise
STABLECOINS = frozenset({"USD", "USDC", "USDC.e", "USDbC", "USDT", "USDT0", "DAI", "FDUSD",
                         "BUSD", "TUSD", "USDP", "PYUSD", "LUSD", "GHO", "FRAX", "USDS"})
#: wrapped coins read as the coin
WRAPPED = {"WETH": "ETH", "WBTC": "BTC"}

# ASCII digits only: ``\d`` and ``float()`` also take other scripts' digits ("\u0661" is 1)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DIGITS = re.compile(r"[0-9]+")
_BARE = re.compile(r"[A-Za-z0-9_-]+")
_MISSING = object()


@dataclass(frozen=True)
class SnapshotOptions:
    """The ``[accounts_file]`` keys of a venue snapshot.

    Attributes
    ----------
    format : str
        ``hyperliquid``, ``binance``, ``aave`` or ``dydx``.
    symbols : tuple of (str, str)
        ``accounts_file.symbols``: a venue's name (as the file spells it) and the scenario
        symbol (or ``USD``) it stands for; it overrides the default rules.
    unknown_symbols : str
        ``error`` (the default) or ``skip``: what a name that maps to no asset does.
    """

    format: str
    symbols: tuple[tuple[str, str], ...] = ()
    unknown_symbols: str = "error"


def parse_json(data: bytes, source: str) -> Any:
    """The file's JSON value; malformed JSON is an error naming the line and column.

    ``NaN`` and ``Infinity`` (which Python's parser accepts) and a key given twice in one
    object are refused: the first is no JSON, the second would silently drop a value.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ScenarioError(source, f"line {line}", f"is not UTF-8 text ({exc.reason}); "
                            "save the snapshot as UTF-8 JSON") from None

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON value; give numbers as decimal strings")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ValueError(f"the key {key!r} appears twice in one object")
            out[key] = value
        return out

    try:
        return json.loads(text, parse_constant=constant, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise ScenarioError(source, f"line {exc.lineno}, column {exc.colno}",
                            f"is not valid JSON ({exc.msg})") from None
    except ValueError as exc:
        raise ScenarioError(source, "", f"is not valid JSON: {exc}") from None
    except RecursionError:
        raise ScenarioError(source, "", "is nested too deeply to be a venue's response"
                            ) from None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _show(value: Any) -> str:
    """A value for a message, cut short."""
    text = json.dumps(value) if not isinstance(value, dict | list) else _type_name(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _child_path(path: str, name: str) -> str:
    key = name if _BARE.fullmatch(name) else f"[{json.dumps(name)}]"
    if not path:
        return key
    return f"{path}{key}" if key.startswith("[") else f"{path}.{key}"


class Node:
    """A JSON value of the snapshot, with its field path for error messages.

    Parameters
    ----------
    value : Any
        The parsed JSON value.
    path : str
        Its field path from the top of the file (``""`` for the top).
    reader : Reader
        The snapshot being read (the file, and the account being read, for messages).
    """

    def __init__(self, value: Any, path: str, reader: Reader) -> None:
        self.value = value
        self.path = path
        self.reader = reader

    # ---------------------------------------------------------------- structure
    def error(self, message: str) -> ScenarioError:
        """An error about this value: the file, its path, the account and ``message``."""
        account = self.reader.account
        where = f" (account {account!r})" if account and account not in self.path else ""
        return ScenarioError(self.reader.source, self.path or "(top level)",
                             f"{message}{where}")

    def child(self, name: str, value: Any) -> Node:
        """The node of ``value`` found under ``name`` of this one."""
        return Node(value, _child_path(self.path, name), self.reader)

    def is_object(self) -> bool:
        """Whether the value is a JSON object."""
        return isinstance(self.value, dict)

    def expect_object(self, what: str = "an object") -> dict[str, Any]:
        """The value as a dict, or an error naming what was expected."""
        if not isinstance(self.value, dict):
            raise self.error(f"expected {what}, got {_type_name(self.value)}")
        return self.value

    def has(self, name: str) -> bool:
        """Whether this object holds ``name`` with a value other than null."""
        return isinstance(self.value, dict) and self.value.get(name) is not None

    def field(self, name: str, what: str = "") -> Node:
        """The required field ``name`` of this object (null counts as missing)."""
        data = self.expect_object()
        node = self.child(name, data.get(name))
        if node.value is None:
            hint = f" ({what})" if what else ""
            given = ", ".join(list(data)[:12]) or "none"
            raise node.error(f"is missing{hint}; the object has the fields {given}")
        return node

    def items(self) -> list[Node]:
        """The elements of this array."""
        if not isinstance(self.value, list):
            raise self.error(f"expected an array, got {_type_name(self.value)}")
        return [Node(v, f"{self.path}[{i}]", self.reader) for i, v in enumerate(self.value)]

    def entries(self) -> Iterator[tuple[str, Node]]:
        """The ``(key, node)`` pairs of this object."""
        for key, value in self.expect_object().items():
            yield key, self.child(key, value)

    # ---------------------------------------------------------------- values
    def text(self, name: str, choices: tuple[str, ...] | None = None,
             default: Any = _MISSING, *, fold: bool = False) -> str:
        """The string field ``name``, optionally one of ``choices`` (compared in lower
        case when ``fold``)."""
        if default is not _MISSING and not self.has(name):
            return default
        node = self.field(name)
        value = node.value
        if not isinstance(value, str) or not value:
            raise node.error(f"expected a non-empty string, got {_show(value)}")
        if choices is not None:
            key = value.lower() if fold else value
            if key not in choices:
                raise node.error(f"{value!r} is not valid; valid: {', '.join(choices)}")
            return key
        return value

    def number(self, name: str, *, lo: float = -MAX_AMOUNT, hi: float = MAX_AMOUNT,
               default: Any = _MISSING) -> float:
        """The decimal field ``name``: a string such as ``"-0.0335"`` or a JSON number,
        finite and within ``[lo, hi]``."""
        if default is not _MISSING and not self.has(name):
            return default
        node = self.field(name)
        value = node.value
        if isinstance(value, str) and _DECIMAL.fullmatch(value):
            number = float(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        else:
            raise node.error(f"expected a decimal number (a string such as \"-0.5\" or a "
                             f"JSON number), got {_show(value)}")
        if not math.isfinite(number):
            raise node.error(f"must be a finite number, got {_show(value)}")
        if not lo <= number <= hi:
            raise node.error(f"must be within [{fmt_number(lo)}, {fmt_number(hi)}], got "
                             f"{_show(value)}")
        return number

    def price(self, name: str) -> float:
        """A price field: > 0 and within the simulator's price bounds."""
        value = self.number(name, lo=0.0, hi=MAX_PRICE)
        if value < MIN_PRICE:
            raise self.child(name, self.value[name]).error(
                f"must be a price > 0 (at least {fmt_number(MIN_PRICE)}), got "
                f"{_show(self.value[name])}")
        return value

    def qty(self, name: str) -> float:
        """A signed quantity field, within ``MAX_QTY`` in size."""
        return self.number(name, lo=-MAX_QTY, hi=MAX_QTY)

    def integer(self, name: str, lo: int, hi: int) -> int:
        """An integer field (a JSON integer or a string of digits) within ``[lo, hi]``."""
        node = self.field(name)
        value = node.value
        if isinstance(value, str) and _DIGITS.fullmatch(value):
            value = int(value)
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise node.error(f"expected an integer, got {_show(node.value)}")
        if not lo <= value <= hi:
            raise node.error(f"must be within [{lo}, {hi}], got {value}")
        return value

    def raw_amount(self, name: str, decimals: int, default: Any = _MISSING) -> float:
        """A token amount given as a raw integer string scaled by ``10**decimals``
        (``"1500000"`` with 6 decimals is 1.5), read exactly and rounded once."""
        if default is not _MISSING and not self.has(name):
            return default
        node = self.field(name)
        value = node.value
        if isinstance(value, str) and _DIGITS.fullmatch(value) and len(value) <= 80:
            raw = int(value)
        elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            raw = value
        else:
            raise node.error(f"expected a raw token amount (a string of digits, the amount "
                             f"times 10^decimals), got {_show(value)}")
        amount = raw / 10**decimals  # int / int: correctly rounded
        if amount > MAX_AMOUNT:
            raise node.error(f"{fmt_number(amount)} (with {decimals} decimals) exceeds "
                             f"{fmt_number(MAX_AMOUNT)}; check reserve.decimals")
        return amount

    def flag(self, name: str) -> bool:
        """A boolean field (``true`` / ``false``, or the strings ``"true"`` / ``"false"``)."""
        node = self.field(name)
        value = node.value
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            raise node.error(f"expected true or false, got {_show(value)}")
        return value


class Reader:
    """A snapshot being read: the accounts collected, the symbol rules, what was skipped.

    Parameters
    ----------
    source : str
        The snapshot file, for messages.
    market : Market
        The scenario's assets.
    options : SnapshotOptions
    taken : dict of str to str
        Account ids already used and where; a snapshot account with one of them is an error.
    """

    def __init__(self, source: str, market: Market, options: SnapshotOptions,
                 taken: dict[str, str]) -> None:
        self.source = source
        self.market = market
        self.options = options
        self.overrides = dict(options.symbols)
        self.taken = taken
        self.account = ""  # the venue account being read, for messages
        self.accounts: list[Account] = []
        self.where: dict[str, str] = {}
        self.skipped_positions = 0
        self.skipped_notional = 0.0
        self.skipped_balances = 0
        self.skipped_names: set[str] = set()

    def symbol(self, name: str, node: Node, *, default: str, position: bool) -> str | None:
        """The scenario symbol (or ``USD``) that the venue's ``name`` stands for.

        Parameters
        ----------
        name : str
            The venue's name as the file gives it (``BTCUSDT``, ``WETH``, ``BTC-USD``).
        node : Node
            Where the name was read (for errors).
        default : str
            The name after the venue's own rule (quote currency stripped).
        position : bool
            A position's symbol must be an asset; a balance may also be ``USD``.

        Returns
        -------
        str or None
            None when the name is unknown and ``unknown_symbols = "skip"``.
        """
        if name in self.overrides:
            target = self.overrides[name]
        else:
            target = WRAPPED.get(default, default)
            if target in STABLECOINS:
                target = "USD"
        if target == "USD" and position:
            raise node.error(f"{name!r} reads as USD, which has no perpetual; map it to an "
                             f"asset with accounts_file.symbols = {{ {_toml_key(name)} = "
                             "\"...\" }")
        if target == "USD" or target in self.market.symbols:
            return target
        if self.options.unknown_symbols == "skip":
            self.skipped_names.add(name)
            return None
        read = f" (read as {target!r})" if target != name else ""
        raise node.error(
            f"{name!r}{read} is not an asset of the scenario; valid: "
            f"{', '.join(self.market.symbols)}{'' if position else ', USD'}. Add a "
            f"[[market.assets]] with symbol = {target!r}, map the name with "
            f"accounts_file.symbols = {{ {_toml_key(name)} = \"...\" }}, or leave such "
            "positions and balances out with accounts_file.unknown_symbols = \"skip\"")

    def skip_position(self, qty: float, entry: float) -> None:
        """Count a position left out (its symbol is unknown)."""
        self.skipped_positions += 1
        self.skipped_notional += abs(qty) * entry

    def skip_balance(self) -> None:
        """Count a balance (collateral or debt) left out."""
        self.skipped_balances += 1

    def add(self, account: Account, node: Node) -> None:
        """Collect ``account``, read at ``node``; its id must be new."""
        if account.id in self.taken or account.id in self.where:
            first = self.taken.get(account.id) or self.where[account.id]
            raise node.error(f"account id {account.id!r} is also the id of {first}; "
                             "account ids must be unique")
        self.where[account.id] = f"{node.path or 'the top level'} in {self.source}"
        self.accounts.append(account)

    def finish(self) -> tuple[Account, ...]:
        """The accounts, after one warning saying what ``unknown_symbols = "skip"`` left
        out (if anything)."""
        if self.skipped_names:
            what = []
            if self.skipped_positions:
                what.append(f"{self.skipped_positions} position(s) (entry notional "
                            f"{self.skipped_notional:,.0f} USD)")
            if self.skipped_balances:
                what.append(f"{self.skipped_balances} balance(s)")
            warnings.warn(f"{self.source}: left out {' and '.join(what) or 'nothing held'} "
                          f"on {', '.join(sorted(self.skipped_names))}, which the scenario "
                          "does not define (accounts_file.unknown_symbols = \"skip\")",
                          UserWarning, stacklevel=2)
        return tuple(self.accounts)


def _toml_key(name: str) -> str:
    """``name`` as a TOML key (quoted unless bare)."""
    return name if _BARE.fullmatch(name) else json.dumps(name)


def merge(amounts: dict[str, float], symbol: str, amount: float) -> None:
    """Add ``amount`` to ``amounts[symbol]``."""
    amounts[symbol] = amounts.get(symbol, 0.0) + amount


def balances(amounts: dict[str, float]) -> tuple[tuple[str, float], ...]:
    """Non-zero amounts as an account's ``collateral`` / ``debt`` tuple."""
    return tuple((s, a) for s, a in amounts.items() if a != 0.0)


def keyed_accounts(root: Node, *, id_field: str, body_fields: tuple[str, ...],
                   bare_fields: tuple[str, ...], example: str) -> list[tuple[str, Node]]:
    """The ``(account id, response)`` pairs of a file holding many accounts.

    The file is either an object mapping each account id to the venue's response, or an
    array of objects each holding the id under ``id_field`` and the response under one of
    ``body_fields`` (or, when ``body_fields`` is empty, beside it); one such object alone
    is read as an array of one.

    Parameters
    ----------
    root : Node
        The file's JSON value.
    id_field : str
        The id's field in the array form (``user``, ``id``).
    body_fields : tuple of str
        The response's field in the array form (its accepted spellings).
    bare_fields : tuple of str
        Fields of the response itself: an object holding them is one response without its
        account id, an error saying how to wrap it.
    example : str
        The wrapper, for that error.

    Returns
    -------
    list of (str, Node)
    """
    single = root.is_object() and id_field in root.value and (
        not body_fields or any(f in root.value for f in body_fields))
    if root.is_object() and not single:
        data = root.value
        bare = [f for f in bare_fields if f in data]
        if bare:
            raise root.error(f"holds {bare[0]!r}: one account's response without its id; "
                             f"wrap the responses as {example}")
        out = []
        for key, node in root.entries():
            if not key:
                raise node.error("an account id must be a non-empty string")
            out.append((key, node))
        return out
    if not single and not isinstance(root.value, list):
        raise root.error(f"expected an object or an array of accounts ({example}), got "
                         f"{_type_name(root.value)}")
    out = []
    for item in [root] if single else root.items():
        item.expect_object(f"an object with {id_field!r} and the response")
        account_id = item.text(id_field)
        if not body_fields:
            out.append((account_id, item))
            continue
        name = next((f for f in body_fields if item.has(f)), body_fields[0])
        out.append((account_id, item.field(name, "the venue's response")))
    return out


def check_collateral(amounts: dict[str, float], node: Node) -> None:
    """A negative balance is only read for USD (a debt of cash, as a negative USDC
    position); one of a priced asset has no meaning in the model."""
    for symbol, amount in amounts.items():
        if symbol != "USD" and amount < 0:
            raise node.error(f"a negative balance of {symbol} ({fmt_number(amount)}) cannot be "
                             "read; only USD collateral may be negative")
