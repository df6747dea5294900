"""Typed reading of TOML tables with the file and key path in every error.

The scenario loader reads each table through a :class:`Table`, which checks types and
ranges, remembers which keys were read, and reports unknown keys. Nothing here knows the
scenario's meaning; :mod:`simulator.config.scenario` does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from typing import Any

from simulator.errors import ScenarioError

_MISSING = object()


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


class Table:
    """A TOML table being read, with its key path for error messages.

    Parameters
    ----------
    data : dict
        The table's contents.
    source : str
        The file name (or ``--set``) used in error messages.
    path : str
        The table's key path, ``""`` for the top level.
    """

    def __init__(self, data: Any, source: str, path: str) -> None:
        if not isinstance(data, dict):
            raise ScenarioError(source, path or "(top level)",
                                f"expected a table, got {_type_name(data)}")
        self.data = data
        self.source = source
        self.path = path
        self._read: set[str] = set()

    def key(self, name: str) -> str:
        """Return the full key path of ``name`` in this table (a name with a newline or
        another unprintable character is quoted with escapes, so errors stay one line)."""
        if not name.isprintable():
            name = json.dumps(name)
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, message: str) -> ScenarioError:
        """Build an error about key ``name`` of this table."""
        return ScenarioError(self.source, self.key(name) if name else self.path, message)

    def has(self, name: str) -> bool:
        """Whether the table holds ``name``."""
        return name in self.data

    def raw(self, name: str, default: Any = _MISSING) -> Any:
        """Return the raw value of ``name`` (marking it read)."""
        self._read.add(name)
        if name not in self.data:
            if default is _MISSING:
                raise self.error(name, "is required")
            return default
        return self.data[name]

    def number(
        self,
        name: str,
        default: Any = _MISSING,
        *,
        lo: float | None = None,
        hi: float | None = None,
        lo_open: bool = False,
        hi_open: bool = False,
        allow_inf: bool = False,
        floor: float | None = None,
    ) -> float:
        """Read a finite number (an integer is accepted) within optional bounds.

        ``floor`` is a smallest magnitude checked after the bounds: with ``lo = 0`` open,
        zero reads "must be > 0" and a positive value below ``floor`` "is too small".
        """
        value = self.raw(name, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(name, f"expected a number, got {_type_name(value)} {value!r}")
        value = float(value)
        if math.isnan(value) or (math.isinf(value) and not allow_inf):
            raise self.error(name, f"must be a finite number, got {value}")
        _check_range(self, name, value, lo, hi, lo_open, hi_open)
        if floor is not None and abs(value) < floor:
            raise self.error(name, f"{fmt_number(value)} is too small; must be at least "
                             f"{fmt_number(floor)}")
        return value

    def integer(
        self, name: str, default: Any = _MISSING, *, lo: int | None = None, hi: int | None = None
    ) -> int:
        """Read an integer (an integral float such as ``1e4`` is accepted) within bounds."""
        value = self.raw(name, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"expected an integer, got {_type_name(value)} {value!r}")
        _check_range(self, name, value, lo, hi, False, False)
        return value

    def boolean(self, name: str, default: Any = _MISSING) -> bool:
        """Read a boolean."""
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {_type_name(value)} {value!r}")
        return value

    def string(self, name: str, default: Any = _MISSING, *,
               choices: Iterable[str] | None = None) -> str:
        """Read a string, optionally one of ``choices``."""
        value = self.raw(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str):
            raise self.error(name, f"expected a string, got {_type_name(value)} {value!r}")
        if choices is not None:
            options = list(choices)
            if value not in options:
                raise self.error(name, f"{value!r} is not valid; valid: {', '.join(options)}")
        return value

    def table(self, name: str, default: Any = _MISSING) -> Table | None:
        """Read a sub-table (``None`` when absent and the default is ``None``)."""
        value = self.raw(name, default)
        if value is None:
            return None
        return Table(value, self.source, self.key(name))

    def tables(self, name: str) -> list[Table]:
        """Read an array of tables (empty when absent)."""
        value = self.raw(name, [])
        if not isinstance(value, list):
            raise self.error(name, f"expected an array of tables, got {_type_name(value)}")
        return [Table(item, self.source, f"{self.key(name)}[{i}]") for i, item in enumerate(value)]

    def finish(self) -> None:
        """Raise on the first key that was never read (an unknown key)."""
        for name in self.data:
            if name not in self._read:
                known = sorted(self._read)
                hint = f"; known keys here: {', '.join(known)}" if known else ""
                raise self.error(name, f"unknown key{hint}")


def fmt_int(value: int) -> str:
    """An integer for a message: ``1,000,000``; one of more than 21 digits as
    ``1.00e+30`` (the exact digits would not help, and past 4,300 cannot be printed)."""
    if abs(value) < 10**21:
        return f"{value:,}"
    cut = max(int(abs(value).bit_length() * math.log10(2)) - 3, 0)
    head = str(abs(value) // 10**cut)  # 3 or 4 leading digits
    return f"{'-' if value < 0 else ''}{head[0]}.{head[1:3]}e+{len(head) - 1 + cut}"


def fmt_number(value: float) -> str:
    """A number for a message, visibly itself: ``:g`` where that reads back as the same
    value (``50``, ``1e+12``), otherwise the shortest form that does (``50.000001``, not
    the ``50`` of ``:g``); see :func:`fmt_int` for integers that ``:g`` rounds."""
    try:
        text = f"{value:g}"
        if float(text) == value:
            return text
    except OverflowError:  # an integer beyond the floats
        pass
    if isinstance(value, int):
        return fmt_int(value).replace(",", "")
    return repr(float(value))


def _check_range(
    table: Table,
    name: str,
    value: float,
    lo: float | None,
    hi: float | None,
    lo_open: bool,
    hi_open: bool,
) -> None:
    if lo is not None and (value < lo or (lo_open and value == lo)):
        op = ">" if lo_open else ">="
        raise table.error(name, f"must be {op} {fmt_number(lo)}, got {fmt_number(value)}")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        op = "<" if hi_open else "<="
        raise table.error(name, f"must be {op} {fmt_number(hi)}, got {fmt_number(value)}")


def read_each(tables: list[Table], reader: Callable[[Table], Any]) -> tuple:
    """Apply ``reader`` to every table and check each for unknown keys."""
    out = []
    for t in tables:
        out.append(reader(t))
        t.finish()
    return tuple(out)


def check_unique(values: list[str], source: str, array: str, key: str) -> None:
    seen: dict[str, int] = {}
    for i, v in enumerate(values):
        if v in seen:
            raise ScenarioError(source, f"{array}[{i}].{key}",
                                f"duplicate {key} {v!r} (first at {array}[{seen[v]}])")
        seen[v] = i
