"""``[accounts_file]``: accounts read from a CSV or Parquet file, one row per position.

Columns (names as in ``[[accounts]]``; only ``account_id`` is always required):

- ``account_id``: the account; its rows need not be adjacent.
- ``margin_mode``: ``cross`` or ``isolated``; blank takes the venue's ``margin_mode``.
- ``symbol``, ``qty`` (required on a derivatives venue), ``type`` (``perp`` when blank,
  ``inverse``, ``call``, ``put``), ``entry`` (perpetuals; blank takes the asset's
  price), ``strike``, ``expiry_days``, ``iv`` (options).
- ``collateral_<SYM>`` (``SYM`` is ``USD`` or an asset) and, on a lending venue,
  ``debt_<SYM>``: the account's amounts. A row with a blank ``symbol`` holds only
  collateral (or debt). An account's amount may be given on one of its rows or repeated
  on several (as a join of positions and balances exports it); repeated values must agree.

Blank cells (CSV) and nulls (Parquet) mean "not given". Every value goes through the
same checks as ``[[accounts]]`` (:mod:`simulator.config.accounts`); errors name the file,
the row (``row N``: the N-th data row, with ``line L`` of a CSV file or ``index N-1`` of
a Parquet file) and the column.

``format`` names what the file holds: ``positions`` (the default: the CSV or Parquet file
above) or a venue's account snapshot, ``hyperliquid``, ``binance``, ``aave`` or ``dydx``
(JSON as the venue's API returns it, many accounts in one file; see
:mod:`simulator.config.snapshots`), with ``symbols`` (venue names mapped to the
scenario's symbols) and ``unknown_symbols`` (``error`` or ``skip``).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.config._table import Table, fmt_number
from simulator.config.accounts import Account, Position, read_position
from simulator.config.limits import MAX_AMOUNT
from simulator.config.venue import MARGIN_MODES, Venue
from simulator.errors import ScenarioError

if TYPE_CHECKING:
    from simulator.config.market import Market
    from simulator.config.snapshots import SnapshotOptions

__all__ = ["FILE_FORMATS", "AccountsFile", "read_accounts_file"]

#: what an accounts file may hold: rows of positions, or a venue's account snapshot
FILE_FORMATS = ("positions", "hyperliquid", "binance", "aave", "dydx")

_STRING_COLUMNS = ("account_id", "margin_mode", "symbol", "type")
_POSITION_COLUMNS = ("symbol", "qty", "type", "entry", "strike", "expiry_days", "iv")
_NUMBER_COLUMNS = ("qty", "entry", "strike", "expiry_days", "iv")
_AMOUNT_PREFIXES = ("collateral_", "debt_")


@dataclass(frozen=True)
class AccountsFile:
    """The accounts of an ``[accounts_file]``.

    Attributes
    ----------
    path : str
        The file as the scenario names it (relative to the scenario's folder).
    sha256 : str
        SHA-256 of the file's bytes (it enters the scenario digest).
    accounts : tuple of Account
        In order of first appearance in the file; positions in row order.
    format : str
        One of :data:`FILE_FORMATS`.
    symbols : tuple of (str, str)
        A snapshot's ``symbols``: venue names and the scenario symbols they stand for.
    unknown_symbols : str
        A snapshot's ``unknown_symbols``: ``error`` or ``skip``.
    """

    path: str
    sha256: str
    accounts: tuple[Account, ...] = field(repr=False)
    format: str = "positions"
    symbols: tuple[tuple[str, str], ...] = ()
    unknown_symbols: str = "error"

    def summary(self) -> dict[str, Any]:
        """The file, its checksum and its counts (what a resolved scenario records); a
        snapshot's format and symbol rules too (left out at their defaults, so that the
        digests of scenarios older than the snapshot formats hold)."""
        out: dict[str, Any] = {"path": self.path, "sha256": self.sha256,
                               "n_accounts": len(self.accounts),
                               "n_positions": sum(len(a.positions) for a in self.accounts)}
        if self.format != "positions":
            out["format"] = self.format
        if self.symbols:
            out["symbols"] = dict(self.symbols)
        if self.unknown_symbols != "error":
            out["unknown_symbols"] = self.unknown_symbols
        return out


class _Row(Table):
    """One data row read as a table: errors name the row and the column."""

    def key(self, name: str) -> str:
        """``row N (line L), column 'name'``."""
        return f"{self.path}, column {name!r}"


# --------------------------------------------------------------------------- reading


def _read_csv(data: bytes, source: str) -> tuple[list[str], list[list[Any]], list[str]]:
    """Header, rows of cells (``None`` for blank, else the stripped text) and row labels."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ScenarioError(source, f"line {line}", f"is not UTF-8 text ({exc.reason}, byte "
                            f"{data[exc.start:exc.start + 1]!r}); save the CSV as UTF-8 or use "
                            "Parquet") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise ScenarioError(source, "", "the file is empty; expected a header row "
                                "(account_id, symbol, qty, ...) and one row per position")
        header = [h.strip() for h in header]
        rows: list[list[Any]] = []
        labels: list[str] = []
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            label = f"row {len(rows) + 1} (line {reader.line_num})"
            if len(cells) != len(header):
                raise ScenarioError(source, label, f"has {len(cells)} cells, the header has "
                                    f"{len(header)}; leave a cell empty rather than out")
            rows.append([c.strip() or None for c in cells])
            labels.append(label)
    except csv.Error as exc:
        raise ScenarioError(source, f"line {reader.line_num}", f"is not valid CSV ({exc})"
                            ) from None
    for j, name in enumerate(header):
        if name not in _NUMBER_COLUMNS and not name.startswith(_AMOUNT_PREFIXES):
            continue
        for row in rows:
            if row[j] is not None:
                row[j] = _csv_number(row[j])
    return header, rows, labels


def _csv_number(text: str) -> Any:
    """A number cell as a float; text that is no number stays text (refused later)."""
    try:
        return float(text)
    except ValueError:
        return text


def _read_parquet(data: bytes, source: str) -> tuple[list[str], list[list[Any]], list[str]]:
    """Header, rows of cells (``None`` for null) and row labels of a Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (OSError, pa.ArrowException) as exc:
        raise ScenarioError(source, "", f"cannot be read as Parquet ({exc}); give a Parquet "
                            "file, or a CSV file named .csv") from None
    header = [str(n).strip() for n in table.column_names]
    labels = [f"row {i + 1} (index {i})" for i in range(table.num_rows)]
    columns = []
    for j, name in enumerate(header):
        col = table.column(j)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        values = col.to_pylist()
        _check_parquet_type(col.type, name, values, labels, source)
        if pa.types.is_decimal(col.type):
            values = [None if v is None else float(v) for v in values]
        columns.append(values)
    return header, [list(r) for r in zip(*columns, strict=True)], labels


def _check_parquet_type(dtype: Any, name: str, values: list, labels: list[str],
                        source: str) -> None:
    """Refuse a column whose Parquet type cannot hold what the column means."""
    import pyarrow as pa

    if pa.types.is_null(dtype):
        return  # every cell blank
    if name in _NUMBER_COLUMNS or name.startswith(_AMOUNT_PREFIXES):
        ok = (pa.types.is_integer(dtype) or pa.types.is_floating(dtype)
              or pa.types.is_decimal(dtype))
        valid = "numbers (an integer, floating-point or decimal column)"
    elif name == "account_id":
        ok = pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or \
            pa.types.is_integer(dtype)
        valid = "ids (a string or integer column)"
    elif name in _STRING_COLUMNS:
        ok = pa.types.is_string(dtype) or pa.types.is_large_string(dtype)
        valid = "text (a string column)"
    else:
        return  # an unknown column: refused by name later
    if ok:
        return
    i = next((k for k, v in enumerate(values) if v is not None), 0)
    value = values[i] if values else None
    raise ScenarioError(source, f"{labels[i] if labels else 'row 1 (index 0)'}, column {name!r}",
                        f"the column has type {dtype} (value {value!r}); expected {valid}")


# --------------------------------------------------------------------------- checking


def _check_header(header: list[str], source: str, market: Market, venue: Venue) -> None:
    symbols = ("USD", *market.symbols)
    prefixes = ("collateral_", "debt_") if venue.lending else ("collateral_",)
    fixed = ("account_id", "margin_mode") + (() if venue.lending else _POSITION_COLUMNS)
    valid = ", ".join((*fixed, *(f"{p}<SYM>" for p in prefixes))) + \
        f" (SYM: {', '.join(symbols)})"
    seen: set[str] = set()
    for name in header:
        where = f"column {name!r}"
        if name in seen:
            raise ScenarioError(source, where, "appears twice; give each column once")
        seen.add(name)
        prefix = next((p for p in _AMOUNT_PREFIXES if name.startswith(p)), None)
        if name in fixed or (prefix in prefixes and name[len(prefix or ""):] in symbols):
            continue
        if venue.lending and name in _POSITION_COLUMNS:
            raise ScenarioError(source, where, "a lending venue (venue.type = \"lending\") "
                                "holds collateral and debt, not positions; use columns "
                                "collateral_<SYM> and debt_<SYM>")
        if prefix == "debt_" and not venue.lending:
            raise ScenarioError(source, where, "debt is for lending venues (venue.type = "
                                "\"lending\"); on a derivatives venue an account holds "
                                "collateral and positions")
        if prefix is not None:
            raise ScenarioError(source, where, f"{name[len(prefix):]!r} is not an asset; "
                                f"valid: {', '.join(symbols)}")
        raise ScenarioError(source, where, f"unknown column; valid: {valid}")
    required = ("account_id",) if venue.lending else ("account_id", "symbol", "qty")
    missing = [c for c in required if c not in seen]
    if missing:
        raise ScenarioError(source, f"column {missing[0]!r}", f"is missing; the file has "
                            f"{', '.join(header) or 'no columns'}; required: "
                            f"{', '.join(required)}")


class _Builder:
    """Accounts being collected from rows, with where each value was first given."""

    def __init__(self, source: str, venue: Venue, taken: dict[str, str]) -> None:
        self.source = source
        self.venue = venue
        self.taken = taken
        self.order: list[str] = []
        self.first_row: dict[str, str] = {}
        self.mode: dict[str, tuple[str, str]] = {}
        self.amounts: dict[str, dict[str, tuple[float, str]]] = {}
        self.positions: dict[str, list[Position]] = {}
        self.position_rows: dict[tuple, str] = {}

    def account(self, row: _Row, raw: Any) -> str:
        if raw is None or raw == "":
            raise row.error("account_id", "is missing; every row needs the id of its account")
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise row.error("account_id", f"expected an id, got {raw!r}")
        account_id = str(raw)
        if account_id not in self.first_row:
            if account_id in self.taken:
                raise row.error("account_id", f"{account_id!r} is also the id of "
                                f"{self.taken[account_id]}; account ids must be unique")
            self.first_row[account_id] = row.path
            self.order.append(account_id)
            self.amounts[account_id] = {}
            self.positions[account_id] = []
        return account_id

    def margin_mode(self, row: _Row, account_id: str) -> None:
        if row.data.get("margin_mode") is None:
            return
        mode = row.string("margin_mode", choices=MARGIN_MODES)
        first = self.mode.setdefault(account_id, (mode, row.path))
        if first[0] != mode:
            raise row.error("margin_mode", f"{mode!r} differs from {first[0]!r} on {first[1]} "
                            f"for account {account_id!r}; an account has one margin mode")

    def amount(self, row: _Row, account_id: str, column: str) -> None:
        value = row.number(column, lo=0.0, hi=MAX_AMOUNT)
        first = self.amounts[account_id].setdefault(column, (value, row.path))
        if first[0] != value:
            raise row.error(column, f"{fmt_number(value)} differs from {fmt_number(first[0])} "
                            f"on {first[1]} for account {account_id!r}; give an account's "
                            "amount once, or the same on each of its rows")

    def position(self, row: _Row, account_id: str, market: Market) -> None:
        position = read_position(row, market)
        key: tuple = (account_id, position.symbol, position.kind)
        if position.is_option:
            key += (position.strike, position.expiry_days)
        if key in self.position_rows:
            what = (f"a {position.kind} on {position.symbol}" if not position.is_option else
                    f"a {position.kind} on {position.symbol} with the same strike and expiry")
            raise row.error("symbol", f"duplicate position: account {account_id!r} already "
                            f"holds {what} ({self.position_rows[key]}); one row per position "
                            "(add up the quantities)")
        self.position_rows[key] = row.path
        self.positions[account_id].append(position)

    def build(self) -> tuple[Account, ...]:
        out = []
        for account_id in self.order:
            mode = self.mode.get(account_id, (self.venue.margin_mode, ""))[0]
            amounts = self.amounts[account_id]
            collateral = tuple((c[len("collateral_"):], v) for c, (v, _) in amounts.items()
                               if c.startswith("collateral_"))
            debt = tuple((c[len("debt_"):], v) for c, (v, _) in amounts.items()
                         if c.startswith("debt_"))
            out.append(Account(id=account_id, margin_mode="cross" if self.venue.lending
                               else mode, collateral=collateral,
                               positions=tuple(self.positions[account_id]), debt=debt))
        return tuple(out)


def _accounts_from_rows(header: list[str], rows: list[list[Any]], labels: list[str],
                        source: str, market: Market, venue: Venue, taken: dict[str, str]
                        ) -> tuple[Account, ...]:
    _check_header(header, source, market, venue)
    amount_columns = [c for c in header if c.startswith(_AMOUNT_PREFIXES)]
    builder = _Builder(source, venue, taken)
    for cells, label in zip(rows, labels, strict=True):
        data = {name: value for name, value in zip(header, cells, strict=True)
                if value is not None}
        row = _Row(data, source, label)
        account_id = builder.account(row, data.get("account_id"))
        builder.margin_mode(row, account_id)
        for column in amount_columns:
            if column in data:
                builder.amount(row, account_id, column)
        if "symbol" in data:
            position = {k: v for k, v in data.items() if k in _POSITION_COLUMNS}
            builder.position(_Row(position, source, label), account_id, market)
        else:
            given = [c for c in _POSITION_COLUMNS if c in data]
            if given:
                raise row.error(given[0], "is given on a row without a symbol; a row without "
                                "a symbol holds only collateral: give the position's symbol")
    return builder.build()


def read_accounts_file(t: Table, market: Market, venue: Venue, base_dir: Path | None,
                       taken: dict[str, str]) -> AccountsFile:
    """Read the ``[accounts_file]`` table and the file it names.

    Parameters
    ----------
    t : Table
        The ``[accounts_file]`` table: ``path``, relative to ``base_dir`` unless absolute;
        ``format`` (:data:`FILE_FORMATS`; ``positions``, the default, is a CSV (``.csv``) or
        Parquet (``.parquet``, ``.pq``) file, the others a venue's JSON (``.json``)); for a
        snapshot, ``symbols`` and ``unknown_symbols``.
    market : Market
        The scenario's assets (symbols and prices).
    venue : Venue
        Its venue: the default margin mode, and whether accounts hold positions or debt.
    base_dir : Path or None
        The scenario file's folder.
    taken : dict of str to str
        Account ids already used and where (``accounts[0]``); a file account with one of
        them is an error.

    Returns
    -------
    AccountsFile

    Raises
    ------
    ScenarioError
        Naming the scenario and the ``accounts_file`` key when the file is missing, has
        another extension or a key is wrong, or naming the accounts file, the row and the
        column (a snapshot: the JSON field path) for anything wrong inside it.
    """
    from simulator.config.models import resolve_data_path
    from simulator.input_files import PARQUET_SUFFIXES, read_regular_bytes

    name = t.string("path")
    fmt = t.string("format", "positions", choices=FILE_FORMATS)
    snapshot = _snapshot_options(t, fmt, market)
    suffix = Path(name).suffix.lower()
    what = "a JSON snapshot" if snapshot else "a CSV or Parquet file of positions"
    if snapshot is not None and suffix != ".json":
        raise t.error("path", f"{name!r} is not named .json; format = {fmt!r} reads the "
                      "venue's JSON responses (name the file .json)")
    if snapshot is None and suffix != ".csv" and suffix not in PARQUET_SUFFIXES:
        hint = (" (a venue's JSON snapshot needs format = \"hyperliquid\", \"binance\", "
                "\"aave\" or \"dydx\")" if suffix == ".json" else "")
        raise t.error("path", f"{name!r} is neither CSV nor Parquet: name the file "
                      f".csv, .parquet or .pq{hint}")
    path = resolve_data_path(name, base_dir)
    try:
        data = read_regular_bytes(path)  # not /dev/zero, not a FIFO
    except IsADirectoryError:
        raise t.error("path", f"{path} is a directory; give {what}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise t.error("path", f"cannot read {path}: {reason}; give {what}") from None
    source = str(path)
    sha256 = hashlib.sha256(data).hexdigest()
    if snapshot is not None:
        from simulator.config.snapshots import read_snapshot

        accounts = read_snapshot(data, source, snapshot, market, venue, taken)
        return AccountsFile(path=name, sha256=sha256, accounts=accounts, format=fmt,
                            symbols=snapshot.symbols,
                            unknown_symbols=snapshot.unknown_symbols)
    read = _read_csv if suffix == ".csv" else _read_parquet
    header, rows, labels = read(data, source)
    accounts = _accounts_from_rows(header, rows, labels, source, market, venue, taken)
    return AccountsFile(path=name, sha256=sha256, accounts=accounts)


def _snapshot_options(t: Table, fmt: str, market: Market) -> SnapshotOptions | None:
    """``symbols`` and ``unknown_symbols`` of a snapshot format (None for ``positions``,
    which takes neither)."""
    from simulator.config.snapshots import SnapshotOptions

    if fmt == "positions":
        for key in ("symbols", "unknown_symbols"):
            if t.has(key):
                raise t.error(key, "is for venue snapshots (format = \"hyperliquid\", "
                              "\"binance\", \"aave\" or \"dydx\"); a positions file names "
                              "the scenario's symbols itself")
        return None
    table = t.table("symbols", {})
    valid = ("USD", *market.symbols)
    symbols = []
    for venue_name in list(table.data):
        target = table.string(venue_name)
        if target not in valid:
            raise table.error(venue_name, f"{target!r} is not an asset; valid: "
                              f"{', '.join(valid)}")
        symbols.append((venue_name, target))
    unknown = t.string("unknown_symbols", "error", choices=("error", "skip"))
    return SnapshotOptions(format=fmt, symbols=tuple(symbols), unknown_symbols=unknown)
