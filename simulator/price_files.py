"""Price files: a timestamp column, then one price column per symbol.

CSV or Parquet, read for ``marginsim calibrate`` and for the ``replay`` price model (which
resamples the recorded prices onto a scenario's steps: :func:`resample_prices`). Every
problem is a :class:`simulator.errors.ScenarioError` naming the file and the column and
line (CSV) or row (Parquet).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from simulator.errors import ScenarioError
from simulator.input_files import PARQUET_SUFFIXES, non_regular_kind, open_regular


def _valid_symbol(name: str) -> bool:
    """The scenario loader's rule for symbols: letters, digits and _, not USD."""
    return bool(name) and name.replace("_", "").isalnum() and name.upper() != "USD"


def parse_time(text: str) -> float:
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


def _open(path: Path, data: bytes | None) -> io.BufferedIOBase:
    """The file's bytes: ``data`` when the caller already read them (and hashed them),
    else the regular file itself."""
    return io.BytesIO(data) if data is not None else open_regular(path)


def _read_csv(path: Path, source: str, data: bytes | None = None
              ) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Header, epoch seconds, prices and the row labels (``line N``) of a CSV file."""
    try:
        handle = io.TextIOWrapper(_open(path, data), encoding="utf-8-sig", newline="")
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
                    times.append(parse_time(cells[0]))
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


def _read_parquet(path: Path, source: str, data: bytes | None = None
                  ) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Header, epoch seconds, prices and the row labels (``row N``, from 1) of a Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with _open(path, data) as handle:
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
                times[i] = parse_time(text)
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


@dataclass(frozen=True)
class PriceFile:
    """A checked price file: rows in strictly increasing time.

    Attributes
    ----------
    path : str
    times : ndarray, shape (T,)
        Epoch seconds of the rows.
    prices : ndarray, shape (T, A)
        Positive finite prices.
    symbols : list of str
        The price columns, in file order.
    labels : list of str
        Where each row is, for errors: ``line N`` (CSV) or ``row N`` (Parquet, from 1).
    time_column : str
        The name of the timestamp column.
    """

    path: str
    times: np.ndarray
    prices: np.ndarray
    symbols: list[str]
    labels: list[str]
    time_column: str


def read_price_file(path: str | Path, min_rows: int = 3, data: bytes | None = None
                    ) -> PriceFile:
    """Read and check a price file (see :func:`load_prices` for the format and errors).

    ``min_rows``: the fewest rows accepted (3 for a fit; 1 for a replay). ``data``: the
    file's bytes, when the caller has read them already (to hash exactly what is parsed).
    """
    path = Path(path)
    source = str(path)
    if data is None and not path.is_file():
        kind = non_regular_kind(path)
        what = ("is a directory" if path.is_dir() else "does not exist" if kind is None else
                f"is {kind}, not a regular file (reading it would block or never end)")
        raise ScenarioError(source, "", f"{what}; give a CSV or Parquet file of prices "
                            "(a timestamp column, then one column per symbol)")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        header, times, prices, labels = _read_parquet(path, source, data)
    else:
        header, times, prices, labels = _read_csv(path, source, data)
    if prices.shape[0] < min_rows:
        need = ("at least 3 are needed (2 returns), and far more for a useful fit"
                if min_rows >= 3 else f"at least {min_rows} needed")
        raise ScenarioError(source, "rows", f"found {prices.shape[0]} row(s) of prices; {need}")
    if not np.isfinite(times).all():
        i = int(np.flatnonzero(~np.isfinite(times))[0])
        raise ScenarioError(source, f"column {header[0]!r}, {labels[i]}",
                            "the timestamp is not finite; use ISO dates or epoch seconds")
    far = np.flatnonzero(np.abs(times) > MAX_EPOCH_S)
    if far.size:
        i = int(far[0])
        hint = (" (epoch milliseconds? give seconds: divide by 1,000)"
                if times[i] < 1000.0 * MAX_EPOCH_S else "")
        raise ScenarioError(source, f"column {header[0]!r}, {labels[i]}",
                            f"the timestamp {times[i]:.17g} is beyond the year 9999 in epoch "
                            f"seconds{hint}; use ISO dates or epoch seconds")
    steps = np.diff(times)
    if (steps <= 0.0).any():
        i = int(np.flatnonzero(steps <= 0.0)[0]) + 1
        what = "repeats" if steps[i - 1] == 0.0 else "comes before"
        raise ScenarioError(source, f"column {header[0]!r}, {labels[i]}",
                            f"the timestamp {what} the one of the previous row "
                            f"({labels[i - 1]}); timestamps must increase strictly: sort the "
                            "file by time and drop duplicate rows")
    return PriceFile(source, times, prices, header[1:], labels, header[0])


def load_price_file(path: str | Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Read and check a price file; prices, symbols and epoch seconds of the rows."""
    f = read_price_file(path)
    return f.prices, f.symbols, f.times


#: the latest time accepted, epoch seconds (the end of the year 9999)
MAX_EPOCH_S = 253_402_300_799.0


def format_time(epoch_s: float) -> str:
    """An epoch time as ISO 8601 in UTC (``2025-10-10T12:00:00Z``); a time no calendar
    date can show, as its epoch seconds."""
    try:
        stamp = datetime.fromtimestamp(epoch_s, tz=UTC)
    except (OverflowError, ValueError, OSError):
        return f"{epoch_s:.17g} (epoch seconds)"
    text = stamp.isoformat(timespec="seconds" if stamp.microsecond == 0 else "microseconds")
    return text.replace("+00:00", "Z")


#: two times closer than this (seconds) are the same time
TIME_TOLERANCE_S = 1e-3
#: a gap is an interval between two rows longer than this many times the file's median
#: spacing (and longer than a step)
GAP_FACTOR = 3.0


def resample_prices(f: PriceFile, symbols: tuple[str, ...], start_s: float, step_s: float,
                    steps: int) -> np.ndarray:
    """The recorded prices of ``symbols`` at the times ``start_s + k step_s``, ``k = 0 ..
    steps``: at each, the price of the last row at or before it.

    Parameters
    ----------
    f : PriceFile
    symbols : tuple of str
        Columns wanted, in this order (others are ignored).
    start_s, step_s : float
        The first step time (epoch seconds) and the step length (seconds).
    steps : int

    Returns
    -------
    ndarray, shape (steps + 1, len(symbols))

    Raises
    ------
    ScenarioError
        Naming the file, when a symbol has no column, the window starts before the first
        row or ends after the last, or the rows the window uses have a gap: two rows more
        than ``max(GAP_FACTOR x the file's median spacing, step_s)`` apart (missing data,
        which holding the last price would hide).
    """
    missing = [s for s in symbols if s not in f.symbols]
    if missing:
        raise ScenarioError(f.path, "header", f"no column for {', '.join(missing)}; the file "
                            f"has {', '.join(f.symbols)} (one price column per asset symbol)")
    end_s = start_s + steps * step_s
    first, last = float(f.times[0]), float(f.times[-1])
    if start_s < first - TIME_TOLERANCE_S:
        raise ScenarioError(f.path, f"column {f.time_column!r}, {f.labels[0]}",
                            f"the replay window starts at {format_time(start_s)}, before the "
                            f"file's first row ({format_time(first)}); start at or after it")
    if end_s > last + TIME_TOLERANCE_S:
        raise ScenarioError(f.path, f"column {f.time_column!r}, {f.labels[-1]}",
                            f"the replay window {format_time(start_s)} .. {format_time(end_s)} "
                            f"ends after the file's last row ({format_time(last)}); start "
                            "earlier, shorten simulation.horizon_days or extend the file")
    when = start_s + np.arange(steps + 1) * step_s
    # (a row stamped at a step time is that step's price, whatever the rounding of the sum)
    rows = np.searchsorted(f.times, when + TIME_TOLERANCE_S, side="right") - 1
    i0, i1 = int(rows[0]), int(rows[-1])
    if i0 == i1 and steps > 0:
        raise ScenarioError(f.path, f"column {f.time_column!r}, {f.labels[i0]}",
                            f"the replay window {format_time(start_s)} .. "
                            f"{format_time(end_s)} lies within this row's interval: every "
                            "step would hold its price; move the window or give a finer file")
    spacing = np.diff(f.times)
    if spacing.size:
        allowed = max(GAP_FACTOR * float(np.median(spacing)), step_s)
        # the intervals the window's steps fall in: from the first row used to the row after
        # the last one used when the window ends after it
        stop = i1 + 1 if i1 + 1 < len(f.times) and end_s > f.times[i1] + TIME_TOLERANCE_S \
            else i1
        used = spacing[i0:stop]
        if used.size and used.max() > allowed * (1.0 + 1e-12):
            k = i0 + int(np.argmax(used > allowed * (1.0 + 1e-12))) + 1
            raise ScenarioError(f.path, f"column {f.time_column!r}, {f.labels[k]}",
                                f"a gap of {spacing[k - 1]:g} s before this row (from "
                                f"{format_time(f.times[k - 1])} to {format_time(f.times[k])}),"
                                f" inside the replay window; the rows are {np.median(spacing):g}"
                                f" s apart (median), and a step is {step_s:g} s: fill the "
                                "missing rows or move the window")
    cols = [f.symbols.index(s) for s in symbols]
    return np.ascontiguousarray(f.prices[rows][:, cols])


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
