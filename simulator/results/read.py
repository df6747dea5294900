"""Reading a finished run directory from Python or a notebook.

:func:`paths`, :func:`events`, :func:`accounts` and :func:`prices` read the tables of a
complete run (docs/outputs.md lists their columns) as a pandas DataFrame (the default),
a pyarrow Table, a polars DataFrame or a lazy :class:`pyarrow.dataset.Dataset`::

    >>> from simulator.results import read
    >>> liq = read.events("runs/demo", columns=["path_id", "step", "notional"],
    ...                   filter=[("kind", "==", "liquidation")])  # doctest: +SKIP

Only the files the run lists in ``manifest.json`` are read (for an older manifest
without a file list, the folder's ``part-NNNNN.parquet`` parts): a stray file dropped
into ``paths/`` or ``events/`` is never picked up, a listed part that is missing is an
error, and so is a file reached through a symbolic link. Dictionary columns
(``account_id``, ``kind``, ``symbol``, ``instrument``, ``margin_mode``) come back as
pandas categoricals; every part has its own dictionary, which pyarrow unifies.

A ``filter`` is a :class:`pyarrow.compute.Expression` (``pc.field("path_id") < 100``) or
the disjunctive normal form of :func:`pyarrow.parquet.read_table`: a list of
``(column, op, value)`` tuples that must all hold, or a list of such lists of which one
must hold; ``op`` is one of ``==`` (or ``=``), ``!=``, ``<``, ``<=``, ``>``, ``>=``,
``in`` and ``not in``. Rows are read in path order (parts in chunk order).

Every problem is a :class:`~simulator.errors.MarginsimError` that says what to do: not a
run directory, an incomplete run, an unknown column (the valid ones are listed), a table
the run did not save (``prices`` without ``--save-prices``) or an unknown ``as_``.

pandas and polars are optional: they are imported only when asked for.
"""

from __future__ import annotations

import json
import operator
import re
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from simulator.errors import MarginsimError
from simulator.input_files import read_regular_text
from simulator.results.integrity import plain_file

if TYPE_CHECKING:  # pragma: no cover
    from typing import TypeAlias

    import pandas
    import polars

    #: What a reader returns, by ``as_``.
    Frame: TypeAlias = pandas.DataFrame | pa.Table | polars.DataFrame | ds.Dataset

#: The forms a reader returns: ``as_`` values.
FORMS = ("pandas", "arrow", "polars", "dataset")
#: The tables of a run directory: name -> the folder (one part per chunk) or file.
TABLES = {"paths": "paths", "events": "events", "accounts": "accounts.parquet",
          "prices": "prices", "prices_no_impact": "prices_no_impact"}
#: Tables that a run writes only when asked to (``--save-prices``).
OPTIONAL = ("prices", "prices_no_impact")

Form = Literal["pandas", "arrow", "polars", "dataset"]
Predicate = tuple[str, str, Any]
Filter = pc.Expression | Predicate | Sequence[Predicate] | Sequence[Sequence[Predicate]] | None

_PART = re.compile(r"part-\d{5}\.parquet")
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def manifest(run_dir: str | Path) -> dict[str, Any]:
    """The ``manifest.json`` of a complete run directory.

    Parameters
    ----------
    run_dir : str or Path
        A run directory, as written by :func:`simulator.run` or ``marginsim run``.

    Returns
    -------
    dict
        The manifest (its ``status`` is ``"complete"``).

    Raises
    ------
    MarginsimError
        When ``run_dir`` is not a run directory (no folder, no ``manifest.json``, a sweep
        directory, a manifest that is not marginsim's) or the run is not complete (the
        message gives the command that finishes it).
    """
    run_dir = Path(run_dir)
    where = run_dir / "manifest.json"
    if not run_dir.is_dir():
        raise MarginsimError(f"{run_dir}: not a run directory (no such folder); give the "
                             "folder that marginsim run --out (or simulator.run) wrote")
    if not where.is_file():
        if (run_dir / "sweep.json").is_file():
            raise MarginsimError(f"{run_dir}: a sweep directory, not a run directory; read "
                                 "one of its points (the point_dir column of sweep.parquet)")
        raise MarginsimError(f"{run_dir}: not a run directory (no manifest.json); give the "
                             "folder that marginsim run --out (or simulator.run) wrote")
    try:
        found = json.loads(read_regular_text(where))
    except (OSError, ValueError) as exc:
        raise MarginsimError(f"{where}: cannot read: {exc}") from None
    if not isinstance(found, dict) or not isinstance(found.get("status"), str):
        raise MarginsimError(f"{where}: not a marginsim manifest (no status); "
                             f"marginsim verify {shlex.quote(str(run_dir))} says more")
    if found["status"] != "complete":
        from simulator.results.verify import _resume_command

        raise MarginsimError(
            f"{run_dir}: incomplete run (manifest status {found['status']!r}): its tables "
            "are not all written yet; wait for it to finish, or finish an interrupted run "
            f"with: {_resume_command(run_dir, found)}")
    return found


def files(run_dir: str | Path, table: str) -> list[Path]:
    """The files of ``table`` that the complete run in ``run_dir`` lists, in chunk order.

    Parameters
    ----------
    run_dir : str or Path
        A complete run directory.
    table : str
        One of :data:`TABLES`.

    Returns
    -------
    list of Path
        ``[run_dir/accounts.parquet]`` for ``accounts``, else the parts
        ``run_dir/TABLE/part-NNNNN.parquet`` listed in ``manifest.json``.

    Raises
    ------
    MarginsimError
        As :func:`manifest`; for an unknown ``table``; for a table the run did not save
        (``prices`` without ``--save-prices``: the message says how to get it); for a
        listed file that is missing or reached through a symbolic link.
    """
    if table not in TABLES:
        raise MarginsimError(f"unknown table {table!r}; a run directory has "
                             f"{', '.join(TABLES)}")
    run_dir = Path(run_dir)
    found = manifest(run_dir)
    where = TABLES[table]
    listed = found.get("files")
    if isinstance(listed, dict):  # the files the run wrote, with their checksums
        rels = [rel for rel in listed if isinstance(rel, str) and _belongs(rel, where)]
    elif where.endswith(".parquet"):  # an older manifest: the run's own layout
        rels = [where] if (run_dir / where).exists() else []
    else:
        folder = run_dir / where
        rels = ([f"{where}/{p.name}" for p in folder.iterdir() if _PART.fullmatch(p.name)]
                if folder.is_dir() else [])
    if not rels:
        raise MarginsimError(_absent(run_dir, table, found))
    out = []
    for rel in sorted(rels):
        path = run_dir / rel
        if not path.exists():
            raise MarginsimError(f"{path}: missing (listed in manifest.json): the run "
                                 "directory is damaged; marginsim verify "
                                 f"{shlex.quote(str(run_dir))} lists what is wrong")
        if not plain_file(run_dir, rel):
            raise MarginsimError(f"{path}: not a regular file of the run (a symbolic link "
                                 "or a folder); not read")
        out.append(path)
    return out


def _belongs(rel: str, where: str) -> bool:
    if where.endswith(".parquet"):
        return rel == where
    folder, _, name = rel.partition("/")
    return folder == where and _PART.fullmatch(name) is not None


def _absent(run_dir: Path, table: str, found: dict[str, Any]) -> str:
    """Why ``table`` has no file in the run, and how to get it."""
    if table in OPTIONAL:
        if not found.get("save_prices"):
            source = shlex.quote(str(found.get("scenario_source", "SCENARIO")))
            sets = "".join(f" --set {shlex.quote(str(o))}"
                           for o in (found.get("overrides") or []))
            return (f"{run_dir}: no {table}/: this run was made without --save-prices, which "
                    "saves the price paths of the first K paths; run it again with, for "
                    f"example: marginsim run {source}{sets} --paths {found.get('paths')} "
                    f"--seed {found.get('seed')} --save-prices 100 --out NEW_DIR (or "
                    "simulator.run(scenario, out_dir, save_prices=100)). Without them, "
                    "paths() has each asset's min_price_<SYM> and final_price_<SYM>")
        return f"{run_dir}: no {table}/ part listed in manifest.json; the run is damaged"
    return (f"{run_dir}: no {TABLES[table]} listed in manifest.json: the run directory is "
            f"damaged; marginsim verify {shlex.quote(str(run_dir))} lists what is wrong")


def dataset(run_dir: str | Path, table: str) -> ds.Dataset:
    """The whole of ``table`` as a lazy pyarrow dataset of the files the run lists.

    Parameters
    ----------
    run_dir : str or Path
        A complete run directory.
    table : str
        One of :data:`TABLES`.

    Returns
    -------
    pyarrow.dataset.Dataset

    Raises
    ------
    MarginsimError
        As :func:`files`, or when a file cannot be read as Parquet.
    """
    parts = files(run_dir, table)
    try:
        return ds.dataset([str(p) for p in parts], format="parquet")
    except (OSError, pa.ArrowException) as exc:
        raise MarginsimError(f"{Path(run_dir) / TABLES[table]}: cannot read: {exc}") from None


def to_expression(filter: Filter, names: Sequence[str]) -> pc.Expression | None:
    """A ``filter`` argument as a pyarrow expression over the columns ``names``.

    Parameters
    ----------
    filter : pyarrow.compute.Expression, tuple, list or None
        An expression (returned as it is), one ``(column, op, value)`` tuple, a list of
        tuples (all must hold) or a list of lists of tuples (one list must hold).
    names : sequence of str
        The table's columns.

    Returns
    -------
    pyarrow.compute.Expression or None
        ``None`` when ``filter`` is ``None``.

    Raises
    ------
    MarginsimError
        For a malformed filter, an unknown column (the valid ones are listed) or an
        unknown operator.
    """
    if filter is None or isinstance(filter, pc.Expression):
        return filter
    if isinstance(filter, tuple):
        filter = [filter]
    if not isinstance(filter, Sequence) or isinstance(filter, str) or not filter:
        raise MarginsimError(f"filter: {filter!r}: give a pyarrow.compute expression or a "
                             "list of (column, op, value) tuples")
    groups = [filter] if all(isinstance(f, tuple) for f in filter) else filter
    either = None
    for group in groups:
        if isinstance(group, tuple | str) or not isinstance(group, Sequence) or not group \
                or not all(isinstance(p, tuple) for p in group):
            raise MarginsimError(f"filter: {group!r}: expected a non-empty list of (column, "
                                 "op, value) tuples (a list of such lists means 'or')")
        every = None
        for predicate in group:
            term = _predicate(predicate, names)
            every = term if every is None else every & term
        either = every if either is None else either | every
    return either


def _predicate(predicate: tuple[Any, ...], names: Sequence[str]) -> pc.Expression:
    if len(predicate) != 3:
        raise MarginsimError(f"filter: {predicate!r}: expected (column, op, value)")
    column, op, value = predicate
    if not isinstance(column, str) or column not in names:
        raise MarginsimError(f"filter: {predicate!r}: unknown column {column!r}; valid "
                             f"columns: {', '.join(names)}")
    op = op.strip().lower() if isinstance(op, str) else op
    field = pc.field(column)
    if op in ("in", "not in"):
        if isinstance(value, str | bytes) or not isinstance(value, Sequence | set | frozenset):
            raise MarginsimError(f"filter: {predicate!r}: {op!r} takes a list of values")
        member = field.isin(list(value))
        return member if op == "in" else ~member
    if op not in _OPS:
        raise MarginsimError(f"filter: {predicate!r}: unknown operator {op!r}; valid: "
                             f"{', '.join([*_OPS, 'in', 'not in'])}")
    return _OPS[op](field, value)


def read(run_dir: str | Path, table: str, columns: Sequence[str] | None = None,
         filter: Filter = None, as_: Form = "pandas") -> Frame:
    """Read a table of a complete run directory.

    Parameters
    ----------
    run_dir : str or Path
        A complete run directory.
    table : str
        One of :data:`TABLES`: ``paths``, ``events``, ``accounts``, ``prices`` or
        ``prices_no_impact``.
    columns : sequence of str, optional
        The columns to read, in this order; all by default.
    filter : pyarrow.compute.Expression or list of tuples, optional
        The rows to keep (see the module's description); all by default.
    as_ : {"pandas", "arrow", "polars", "dataset"}
        The form returned: a pandas DataFrame, a pyarrow Table, a polars DataFrame or a
        lazy pyarrow Dataset (holding only ``columns``, with ``filter`` applied when it is
        scanned; a filter on a column outside ``columns`` is then refused).

    Returns
    -------
    pandas.DataFrame, pyarrow.Table, polars.DataFrame or pyarrow.dataset.Dataset

    Raises
    ------
    MarginsimError
        For an unknown ``as_``; as :func:`files`; for an unknown column (the valid ones are
        listed); for a filter that does not fit the table's columns or types; when pandas
        or polars is asked for and not installed.
    """
    if as_ not in FORMS:
        raise MarginsimError(f"as_={as_!r}: expected one of {', '.join(map(repr, FORMS))}")
    if columns is not None and (isinstance(columns, str) or not isinstance(columns, Sequence)
                                or not all(isinstance(c, str) for c in columns)):
        raise MarginsimError(f"columns={columns!r}: expected a list of column names")
    data = dataset(run_dir, table)
    names = data.schema.names
    where = Path(run_dir) / TABLES[table]
    if columns is not None:
        unknown = [c for c in columns if c not in names]
        if unknown:
            raise MarginsimError(f"{where}: unknown column(s) {', '.join(map(repr, unknown))};"
                                 f" valid columns: {', '.join(names)}")
        columns = list(dict.fromkeys(columns))
    expression = to_expression(filter, names)
    _bind(data, expression, where, names)
    if as_ == "dataset":
        return _narrowed(data, columns, expression, where)
    try:
        result = data.to_table(columns=columns, filter=expression)
    except (OSError, pa.ArrowException) as exc:
        raise MarginsimError(f"{where}: cannot read: {exc}") from None
    if as_ == "arrow":
        return result
    if as_ == "polars":
        return _module("polars").from_arrow(result)
    _module("pandas")
    return result.to_pandas()


def _bind(data: ds.Dataset, expression: pc.Expression | None, where: Path,
          names: Sequence[str]) -> None:
    """Refuse a filter that names no column of ``data`` or compares the wrong types."""
    if expression is None:
        return
    try:
        data.scanner(columns=[], filter=expression)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        text = str(exc).splitlines()[0]
        name = re.search(r"FieldRef\.Name\(([^)]*)\)", text)
        if name:
            raise MarginsimError(f"{where}: filter {expression}: unknown column "
                                 f"{name.group(1)!r}; valid columns: {', '.join(names)}"
                                 ) from None
        raise MarginsimError(f"{where}: filter {expression}: {text} (compare each column "
                             "with a value of its type)") from None


def _narrowed(data: ds.Dataset, columns: list[str] | None, expression: pc.Expression | None,
              where: Path) -> ds.Dataset:
    """``data`` holding only ``columns``, with ``expression`` as its filter."""
    if columns is not None:
        schema = pa.schema([data.schema.field(c) for c in columns],
                           metadata=data.schema.metadata)
        data = ds.dataset(list(data.files), format="parquet", schema=schema)
        if expression is not None:
            try:
                data.scanner(columns=[], filter=expression)
            except pa.ArrowException:
                raise MarginsimError(f"{where}: the filter {expression} names a column "
                                     f"outside columns={columns}; add it to columns, or "
                                     "read with as_='arrow' or 'pandas'") from None
    return data if expression is None else data.filter(expression)


def _module(name: str) -> Any:
    """Import an optional dependency, or say how to install it."""
    try:
        if name == "pandas":
            import pandas as module
        else:
            import polars as module
    except ImportError:
        raise MarginsimError(f"as_={name!r} needs {name}, which is not installed: pip "
                             f"install {name} (or read with as_='arrow')") from None
    return module


def paths(run_dir: str | Path, columns: Sequence[str] | None = None, filter: Filter = None,
          as_: Form = "pandas") -> Frame:
    """One row per path (``paths/``): losses, liquidations, the fund, prices reached.

    Parameters
    ----------
    run_dir : str or Path
        A complete run directory.
    columns : sequence of str, optional
        The columns to read (all by default).
    filter : pyarrow.compute.Expression or list of tuples, optional
        The rows to keep, for example ``[("bad_debt", ">", 0)]``.
    as_ : {"pandas", "arrow", "polars", "dataset"}
        The form returned (see :func:`read`).

    Returns
    -------
    pandas.DataFrame, pyarrow.Table, polars.DataFrame or pyarrow.dataset.Dataset

    Raises
    ------
    MarginsimError
        See :func:`read`.
    """
    return read(run_dir, "paths", columns, filter, as_)


def events(run_dir: str | Path, columns: Sequence[str] | None = None, filter: Filter = None,
           as_: Form = "pandas") -> Frame:
    """One row per liquidation, backstop or ADL fill, socialised loss or margin-call answer
    (``events/``).

    Parameters
    ----------
    run_dir : str or Path
        A complete run directory.
    columns : sequence of str, optional
        The columns to read (all by default).
    filter : pyarrow.compute.Expression or list of tuples, optional
        The rows to keep, for example ``[("kind", "==", "liquidation")]``.
    as_ : {"pandas", "arrow", "polars", "dataset"}
        The form returned (see :func:`read`).

    Returns
    -------
    pandas.DataFrame, pyarrow.Table, polars.DataFrame or pyarrow.dataset.Dataset

    Raises
    ------
    MarginsimError
        See :func:`read`.
    """
    return read(run_dir, "events", columns, filter, as_)


def accounts(run_dir: str | Path, columns: Sequence[str] | None = None, filter: Filter = None,
             as_: Form = "pandas") -> Frame:
    """One row per account (``accounts.parquet``): liquidation and bankruptcy
    probabilities, mean PnL, VaR and ES of the loss, greeks, and the liquidation price in
    each asset at the start (``liq_price_<SYM>``, null where there is none).

    Parameters
    ----------
    run_dir : str or Path
        A complete run directory.
    columns : sequence of str, optional
        The columns to read (all by default).
    filter : pyarrow.compute.Expression or list of tuples, optional
        The rows to keep, for example ``[("margin_mode", "==", "cross")]``.
    as_ : {"pandas", "arrow", "polars", "dataset"}
        The form returned (see :func:`read`).

    Returns
    -------
    pandas.DataFrame, pyarrow.Table, polars.DataFrame or pyarrow.dataset.Dataset

    Raises
    ------
    MarginsimError
        See :func:`read`.
    """
    return read(run_dir, "accounts", columns, filter, as_)


def prices(run_dir: str | Path, columns: Sequence[str] | None = None, filter: Filter = None,
           as_: Form = "pandas", *, impact: bool = True) -> Frame:
    """Saved price paths, one row per path and step: ``path_id``, ``step``, then one
    column per symbol (``prices/``, or ``prices_no_impact/`` with ``impact=False``).

    Only a run made with ``--save-prices K`` (``save_prices=K``) has them, for its first K
    paths.

    Parameters
    ----------
    run_dir : str or Path
        A complete run directory.
    columns : sequence of str, optional
        The columns to read (all by default).
    filter : pyarrow.compute.Expression or list of tuples, optional
        The rows to keep, for example ``[("path_id", "<", 10)]``.
    as_ : {"pandas", "arrow", "polars", "dataset"}
        The form returned (see :func:`read`).
    impact : bool
        The closing marks, impact of forced sales included (default), or the exogenous
        price paths without it.

    Returns
    -------
    pandas.DataFrame, pyarrow.Table, polars.DataFrame or pyarrow.dataset.Dataset

    Raises
    ------
    MarginsimError
        See :func:`read`; a run made without ``--save-prices`` has no prices (the message
        says how to get them).
    """
    return read(run_dir, "prices" if impact else "prices_no_impact", columns, filter, as_)
