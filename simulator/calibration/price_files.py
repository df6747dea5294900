"""Price files for calibration: a timestamp column, then one price column per symbol.

CSV or Parquet. Every problem is a :class:`simulator.errors.ScenarioError` naming the
file and the column and line (CSV) or row (Parquet).
"""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from simulator.errors import ScenarioError
from simulator.input_files import PARQUET_SUFFIXES, non_regular_kind, open_regular


def _valid_symbol(name: str) -> bool:
    """The scenario loader's rule for symbols: letters, digits and _, not USD."""
    return bool(name) and name.replace("_", "").isalnum() and name.upper() != "USD"


def _parse_time(text: str) -> float:
    """Seconds since the epoch of an ISO date/datetime (naive = UTC) or of a number."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _read_csv(path: Path, source: str) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Header, epoch seconds, prices and the row labels (``line N``) of a CSV file."""
    try:
        handle = io.TextIOWrapper(open_regular(path), encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ScenarioError(source, "", f"cannot be read ({exc.strerror}); give a readable "
                            "CSV or Parquet file of prices") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise ScenarioError(source, "", "the file is empty; expected a header row "
                                    "(timestamp, then one column per symbol) and rows of prices")
            header = [h.strip() for h in header]
            _check_header(header, source)
            times: list[float] = []
            rows: list[list[float]] = []
            labels: list[str] = []
            for cells in reader:
                if not cells or all(not c.strip() for c in cells):
                    continue
                label = f"line {reader.line_num}"
                if len(cells) != len(header):
                    raise ScenarioError(source, label, f"has {len(cells)} cells, the header has "
                                        f"{len(header)}; every row needs a timestamp and one "
                                        "price per symbol")
                try:
                    times.append(_parse_time(cells[0]))
                except (ValueError, OverflowError):
                    raise ScenarioError(source, f"column {header[0]!r}, {label}",
                                        f"{cells[0]!r} is not a timestamp; use ISO dates or "
                                        "datetimes (2024-01-31, 2024-01-31T12:05:00Z) or epoch "
                                        "seconds") from None
                rows.append([_parse_price(c, header[j + 1], label, source)
                             for j, c in enumerate(cells[1:])])
                labels.append(label)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ScenarioError(source, f"line {reader.line_num}", f"is not valid CSV ({exc}); "
                                "give a UTF-8 CSV file with a header row") from None
    prices = np.array(rows, dtype=np.float64).reshape(len(rows), len(header) - 1)
    return header, np.array(times, dtype=np.float64), prices, labels


def _parse_price(cell: str, column: str, label: str, source: str) -> float:
    """One price cell as a positive finite float, or a ScenarioError naming the cell."""
    where = f"column {column!r}, {label}"
    text = cell.strip()
    if not text:
        raise ScenarioError(source, where, "the price is missing (NaN); fill or drop the row: "
                            "prices must be positive numbers")
    try:
        value = float(text)
    except ValueError:
        raise ScenarioError(source, where, f"{cell!r} is not a number; prices must be positive "
                            "numbers") from None
    return _check_price(value, where, source)


def _check_price(value: float, where: str, source: str) -> float:
    if math.isnan(value):
        raise ScenarioError(source, where, "the price is NaN; fill or drop the row: prices "
                            "must be positive numbers")
    if not math.isfinite(value) or value <= 0.0:
        raise ScenarioError(source, where, f"the price is {value!r}; prices must be positive "
                            "finite numbers")
    return value


def _check_header(header: list[str], source: str) -> None:
    if len(header) < 2:
        raise ScenarioError(source, "columns", f"found {len(header)} column(s) and no symbol "
                            "column; expected a timestamp column, then one column of prices "
                            "per symbol")
    seen: set[str] = set()
    for name in header[1:]:
        if not _valid_symbol(name):
            raise ScenarioError(source, f"column {name!r}", "is not a valid symbol: rename the "
                                "column with letters, digits and _ only (not USD, the "
                                "numeraire)")
        if name in seen:
            raise ScenarioError(source, f"column {name!r}", "appears twice; each symbol needs "
                                "exactly one column")
        seen.add(name)


def _read_parquet(path: Path, source: str
                  ) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Header, epoch seconds, prices and the row labels (``row N``, from 1) of a Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with open_regular(path) as handle:
            table = pq.read_table(handle)
    except (OSError, pa.ArrowException) as exc:
        raise ScenarioError(source, "", f"cannot be read as Parquet ({exc}); give a CSV or "
                            "Parquet file of prices") from None
    header = [str(n).strip() for n in table.column_names]
    _check_header(header, source)
    n = table.num_rows
    labels = [f"row {i + 1}" for i in range(n)]
    tcol = table.column(0)
    tname = header[0]
    if tcol.null_count:
        i = int(np.flatnonzero(tcol.is_null().to_numpy(zero_copy_only=False))[0])
        raise ScenarioError(source, f"column {tname!r}, {labels[i]}", "the timestamp is missing; "
                            "every row needs a timestamp")
    ttype = tcol.type
    if pa.types.is_timestamp(ttype) or pa.types.is_date(ttype):
        if pa.types.is_timestamp(ttype) and ttype.tz is not None:
            tcol = tcol.cast(pa.timestamp(ttype.unit))
        stamps = tcol.to_numpy().astype("datetime64[ns]")
        times = stamps.astype(np.int64).astype(np.float64) / 1e9
    elif pa.types.is_integer(ttype) or pa.types.is_floating(ttype):
        times = tcol.to_numpy().astype(np.float64)
    elif pa.types.is_string(ttype) or pa.types.is_large_string(ttype):
        times = np.empty(n)
        for i, text in enumerate(tcol.to_pylist()):
            try:
                times[i] = _parse_time(text)
            except (ValueError, OverflowError):
                raise ScenarioError(source, f"column {tname!r}, {labels[i]}",
                                    f"{text!r} is not a timestamp; use ISO dates or datetimes "
                                    "or epoch seconds") from None
    else:
        raise ScenarioError(source, f"column {tname!r}", f"has type {ttype}; timestamps must "
                            "be timestamps, dates, ISO strings or epoch seconds")
    prices = np.empty((n, len(header) - 1))
    for j, name in enumerate(header[1:]):
        col = table.column(j + 1)
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
                or pa.types.is_decimal(col.type)):
            raise ScenarioError(source, f"column {name!r}", f"has type {col.type}; prices must "
                                "be positive numbers")
        values = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
        bad = ~(np.isfinite(values) & (values > 0.0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            _check_price(float(values[i]), f"column {name!r}, {labels[i]}", source)
        prices[:, j] = values
    return header, times, prices, labels


def load_price_file(path: str | Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Read and check a price file; prices, symbols and epoch seconds of the rows."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        kind = non_regular_kind(path)
        what = ("is a directory" if path.is_dir() else "does not exist" if kind is None else
                f"is {kind}, not a regular file (reading it would block or never end)")
        raise ScenarioError(source, "", f"{what}; give a CSV or Parquet file of prices "
                            "(a timestamp column, then one column per symbol)")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        header, times, prices, labels = _read_parquet(path, source)
    else:
        header, times, prices, labels = _read_csv(path, source)
    if prices.shape[0] < 3:
        raise ScenarioError(source, "rows", f"found {prices.shape[0]} row(s) of prices; at "
                            "least 3 are needed (2 returns), and far more for a useful fit")
    if not np.isfinite(times).all():
        i = int(np.flatnonzero(~np.isfinite(times))[0])
        raise ScenarioError(source, f"column {header[0]!r}, {labels[i]}",
                            "the timestamp is not finite; use ISO dates or epoch seconds")
    steps = np.diff(times)
    if (steps <= 0.0).any():
        i = int(np.flatnonzero(steps <= 0.0)[0]) + 1
        what = "repeats" if steps[i - 1] == 0.0 else "comes before"
        raise ScenarioError(source, f"column {header[0]!r}, {labels[i]}",
                            f"the timestamp {what} the one of the previous row "
                            f"({labels[i - 1]}); timestamps must increase strictly: sort the "
                            "file by time and drop duplicate rows")
    return prices, header[1:], times


def load_prices(path: str | Path) -> tuple[np.ndarray, list[str], float]:
    """Read a file of prices: a timestamp column, then one column of prices per symbol.

    Parameters
    ----------
    path : str or Path
        A CSV file with a header row, or a Parquet file (suffix ``.parquet`` or ``.pq``).
        The first column holds the timestamps: ISO dates or datetimes (naive ones are
        read as UTC) or epoch seconds; in Parquet also timestamp or date columns. Every
        other column is a symbol (letters, digits and ``_``) and holds positive prices.

    Returns
    -------
    prices : ndarray, shape (T, A)
        float64 prices, rows in time order.
    symbols : list of str
        The symbol columns, in file order.
    step_days : float
        The median spacing of the timestamps, in days.

    Raises
    ------
    ScenarioError
        Naming the file and the column or row, when the file is missing or unreadable,
        has fewer than 3 rows or no symbol column, a price that is missing, NaN, not a
        number or not positive, or timestamps that repeat or go back in time.
    """
    prices, symbols, times = load_price_file(path)
    return prices, symbols, float(np.median(np.diff(times))) / 86400.0
