"""Parameter sweeps on common random numbers, and the search for a threshold.

``marginsim sweep SCENARIO --grid KEY=V1,V2,... [--grid ...]`` runs every point of the
cartesian grid as a whole run (a run directory per point under ``DIR/points/``) with the
scenario's seed, so every point replays the same random numbers: as long as the swept keys
do not change the price model, every point sees the same price paths, and differences
between rows are the parameters' effect, not noise. ``DIR/sweep.parquet`` has one row per
point: the grid keys as columns named as given, ``point_dir``, then every summary metric
and its ``_stderr``, and for every mean of a path figure its difference from the first
point, estimated path by path on the shared random numbers (``<metric>_diff`` and its
``_stderr``, :mod:`simulator.sweeps.paired`). ``DIR/sweep.json`` records the grid (and the target).

``--target "METRIC<=VALUE"`` with a single ``--grid KEY=LO,HI`` finds the smallest value of
``KEY`` in ``[LO, HI]`` whose run meets the goal, by bisection on common random numbers
(the goal is assumed monotone in the key, as a maintenance rate or a fund size is); VALUE
is a number or a scenario key such as ``venue.insurance_fund_usd``, read from each point's
scenario. Every evaluated point is a row of ``sweep.parquet``, with ``meets_target``.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
import sys
import tomllib
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from simulator.config.scenario import Scenario, load_scenario
from simulator.config.toml import parse_toml_value
from simulator.errors import MarginsimError, RunDirectoryError
from simulator.execution.runner import RunResult, run
from simulator.execution.tilting import tune_rare_tilt
from simulator.results import atomic as output
from simulator.results import lock as run_lock
from simulator.results import rundir as run_dir
from simulator.results import tables
from simulator.sweeps.paired import paired_differences

if TYPE_CHECKING:  # pragma: no cover
    from simulator.rare import Tilt

#: comparison operators a target may use
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
#: most runs a target search makes (the two ends included)
MAX_TARGET_RUNS = 24


@dataclass(frozen=True)
class Target:
    """A goal ``metric OP value`` (``value`` a number or a scenario key path)."""

    metric: str
    op: str
    value: float | str

    def threshold(self, scenario: Scenario) -> float:
        """The goal's right-hand side for ``scenario``."""
        if isinstance(self.value, float):
            return self.value
        node: Any = scenario.resolved()
        for part in self.value.split("."):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise MarginsimError(f"--target: {self.value!r} is neither a number nor a "
                                     "scenario key")
        if isinstance(node, bool) or not isinstance(node, int | float):
            raise MarginsimError(f"--target: scenario key {self.value!r} is {node!r}, not "
                                 "a number")
        return float(node)

    def met(self, summary: dict[str, Any], scenario: Scenario) -> bool:
        """Whether a run's summary meets the goal (a metric without estimate does not)."""
        metrics = summary["metrics"]
        if self.metric not in metrics:
            known = ", ".join(sorted(metrics)[:12])
            raise MarginsimError(f"--target: unknown metric {self.metric!r}; the summary "
                                 f"has {known}, ...")
        est = metrics[self.metric]["estimate"]
        return est is not None and _OPS[self.op](est, self.threshold(scenario))

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value}"


def parse_target(text: str) -> Target:
    """Parse ``METRIC<=VALUE`` (also ``>=``, ``<``, ``>``)."""
    m = re.fullmatch(r"\s*([A-Za-z0-9_]+)\s*(<=|>=|<|>)\s*(\S+)\s*", text)
    if m is None:
        raise MarginsimError(f"--target: expected METRIC<=VALUE (or >=, <, >), for example "
                             f"'bad_debt_es_99<=venue.insurance_fund_usd'; got {text!r}")
    metric, op, raw = m.groups()
    try:
        value: float | str = float(raw)
    except ValueError:
        value = raw
    return Target(metric, op, value)


def parse_grid(spec: str) -> tuple[str, list[Any]]:
    """Parse ``KEY=V1,V2,...``: a dotted scenario key and TOML values (bare words are
    strings)."""
    key, sep, raw = spec.partition("=")
    key = key.strip()
    if not sep or not key or not raw.strip():
        raise MarginsimError(f"--grid: expected KEY=V1,V2,..., for example "
                             f"venue.maintenance_margin_rate=0.005,0.01; got {spec!r}")
    values = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            raise MarginsimError(f"--grid {key}: empty value in {raw!r}")
        try:
            values.append(parse_toml_value(item, key))  # (refuses values nested too deep)
        except tomllib.TOMLDecodeError:
            values.append(item)
    if len(set(map(repr, values))) != len(values):
        raise MarginsimError(f"--grid {key}: repeated value in {raw!r}")
    return key, values


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _slug(point: dict[str, Any]) -> str:
    text = "_".join(f"{k.split('.')[-1]}={v}" for k, v in point.items())
    return re.sub(r"[^A-Za-z0-9_.=+-]", "-", text)[:120]


@dataclass(frozen=True)
class SweepResult:
    """What :func:`sweep` produced.

    Attributes
    ----------
    out_dir : Path
        The sweep directory (``sweep.parquet``, ``sweep.json``, ``points/``).
    rows : list of dict
        One per evaluated point: the grid values, ``point_dir`` and the summary metrics.
    threshold : float or None
        With a target: the smallest value of the key that meets it (None if none does).
    """

    out_dir: Path
    rows: list[dict[str, Any]]
    threshold: float | None = None


class _Runner:
    """Runs points into ``out_dir/points`` and remembers their rows."""

    def __init__(self, scenario: str | Path, overrides: list[str], out_dir: Path, jobs: int,
                 progress: bool, keys: list[str], tilt: Tilt | None = None) -> None:
        self.scenario, self.overrides, self.out_dir = scenario, overrides, out_dir
        self.jobs, self.progress, self.keys, self.tilt = jobs, progress, keys, tilt
        self.rows: list[dict[str, Any]] = []

    def scenario_at(self, point: dict[str, Any]) -> Scenario:
        sets = [f"{k}={_toml(v)}" for k, v in point.items()]
        return load_scenario(self.scenario, [*self.overrides, *sets])

    def run(self, point: dict[str, Any]) -> tuple[RunResult, Scenario]:
        sc = self.scenario_at(point)
        n = len(self.rows)
        where = self.out_dir / "points" / f"{n:03d}-{_slug(point)}"
        if self.progress:
            sys.stderr.write(f"sweep point {n + 1}: "
                             + ", ".join(f"{k}={v}" for k, v in point.items()) + "\n")
        result = run(sc, where, jobs=self.jobs, progress=self.progress, notice=self.progress,
                     tilt=self.tilt)
        row: dict[str, Any] = dict(point)
        row["point_dir"] = str(where.relative_to(self.out_dir))
        for name, m in result.summary["metrics"].items():
            row[name] = m["estimate"]
            row[f"{name}_stderr"] = m["stderr"]
        self.rows.append(row)
        return result, sc


def _write(out_dir: Path, keys: list[str], rows: list[dict[str, Any]], info: dict[str, Any],
           meta: dict[bytes, bytes]) -> None:
    columns: dict[str, Any] = {}
    # every row's names, in the order they come: a metric some points lack (a circuit
    # breaker's, at the points without one) is null there
    for name in dict.fromkeys(n for r in rows for n in r):
        values = [r.get(name) for r in rows]
        if name in keys and any(isinstance(v, str) for v in values):
            columns[name] = pa.array([str(v) for v in values]).dictionary_encode()
        elif name == "point_dir":
            columns[name] = pa.array(values, type=pa.string())
        elif name == "meets_target":
            columns[name] = pa.array(values, type=pa.bool_())
        else:
            columns[name] = pa.array([math.nan if v is None else float(v) for v in values],
                                     type=pa.float64(), from_pandas=True)
    table = output.write_parquet(pa.table(columns), out_dir / "sweep.parquet", meta)
    # what verify checks the sweep against: the table's and every point's manifest's SHA-256
    info["files"] = {"sweep.parquet": table["sha256"]}
    info["points"] = {row["point_dir"]: output.sha256_file(out_dir / row["point_dir"]
                                                           / "manifest.json") for row in rows}
    output.write_json(info, out_dir / "sweep.json")


def sweep(scenario: str | Path, grid: list[tuple[str, list[Any]]], *,
          overrides: list[str] | tuple[str, ...] = (), out_dir: str | Path | None = None,
          jobs: int = 1, progress: bool = False, target: Target | None = None,
          rel_tol: float = 0.01, force: bool = False) -> SweepResult:
    """Run a parameter grid (or a threshold search) on common random numbers.

    Parameters
    ----------
    scenario : str or Path
        A built-in scenario's name or a scenario file.
    grid : list of (key, values)
        Dotted scenario keys and their values (:func:`parse_grid`); the cartesian product
        is run. With ``target``: exactly one key and two values, the search interval.
    overrides : list of str
        ``KEY=VALUE`` applied to every point first (``--set``).
    out_dir : str or Path, optional
        The sweep directory (default ``runs/<name>-sweep-<time>``); never overwritten
        unless ``force``.
    jobs : int
        Worker processes of each run.
    progress : bool
        Report each point (and each run's progress bar) on stderr.
    target : Target, optional
        Find the smallest value of the key meeting it, by bisection.
    rel_tol : float
        The search stops when the bracket is narrower than ``rel_tol x |HI|`` (integer
        keys: when it is one apart).
    force : bool
        Replace an existing sweep directory (one with a ``sweep.json``; anything else is
        refused): the new sweep is written beside it and swapped in when complete.

    Returns
    -------
    SweepResult

    Examples
    --------
    >>> from simulator.sweeps.sweep import sweep
    >>> res = sweep("deterministic-gap",  # doctest: +SKIP
    ...             [("venue.maintenance_margin_rate", [0.005, 0.01, 0.02])])
    """
    overrides = list(overrides)
    if not grid:
        raise MarginsimError("sweep: give at least one --grid KEY=V1,V2,...")
    keys = [k for k, _ in grid]
    if len(set(keys)) != len(keys):
        raise MarginsimError(f"--grid: a key appears twice: {keys}")
    base = load_scenario(scenario, overrides)
    points = [dict(zip(keys, combo, strict=True))
              for combo in itertools.product(*(values for _, values in grid))]
    if target is not None:
        if len(grid) != 1 or len(grid[0][1]) != 2:
            raise MarginsimError("--target: give exactly one --grid KEY=LO,HI, the interval "
                                 "to search")
        lo, hi = grid[0][1]
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in (lo, hi)):
            raise MarginsimError(f"--target: the interval of {keys[0]} must be numbers, "
                                 f"got {lo!r}, {hi!r}")
        if not lo < hi:
            raise MarginsimError(f"--target: expected LO < HI for {keys[0]}, got {lo}, {hi}")
    final = (Path(out_dir) if out_dir is not None
             else run_dir.default_run_dir(base.name, suffix="sweep")).absolute()
    with ExitStack() as held:
        replace = force and run_dir.check_replaceable(final, "sweep")
        real, old_lock = run_dir.replaced(final), None
        if replace:  # hold the old sweep's lock: no live sweep is swapped away
            old_lock = held.enter_context(run_lock.acquire(real, "marginsim sweep"))
            run_dir.check_replaceable(real, "sweep")
        elif final.exists() and (not final.is_dir() or any(
                p.name != run_lock.LOCK_NAME for p in final.iterdir())):
            raise RunDirectoryError(f"{final}: the sweep directory exists and is not empty; "
                                    "choose another --out, or --force to replace it (sweeps "
                                    "are never overwritten without --force)")
        out = run_dir.staging_dir(real) if replace else final
        runner = _Runner(scenario, overrides, out, jobs, progress, keys)
        for point in points:  # every point is checked before anything is written
            runner.scenario_at(point)
        if base.simulation.rare_event:  # one tilt for every point: the same weights
            fixed = [k for k in keys if k.startswith(("simulation.rare_",
                                                      "simulation.variance_reduction"))]
            if fixed:
                raise MarginsimError(f"--grid {fixed[0]}: a rare-event sweep tunes one tilt "
                                     "for every point, so the event and its settings are "
                                     "the same at every point; run one sweep per event")
            runner.tilt = tune_rare_tilt(base, notice=progress)
        created = run_dir.missing_root(out)
        meta = tables.file_metadata(base.digest, base.simulation.seed, _version())
        info: dict[str, Any] = {"scenario": base.name, "seed": base.simulation.seed,
                                "grid": {k: v for k, v in grid}, "overrides": overrides,
                                "status": "running"}
        if runner.tilt is not None:
            info["rare_event"] = runner.tilt.record()
        lock = None
        try:
            with run_dir.signals_deferred():  # no signal between mkdir and the lock
                out.mkdir(parents=True, exist_ok=True)
                lock = held.enter_context(run_lock.acquire(out, "marginsim sweep"))
            output.write_json(info, out / "sweep.json")  # marks the directory as a sweep's
            threshold = _run_points(runner, points, keys, grid, target, rel_tol, info)
            rows = runner.rows
            if target is not None:
                rows.sort(key=lambda r: r[keys[0]])
            else:  # every point against the first, path by path
                paired_differences(out, rows)
            info["status"] = "complete"
            _write(out, keys, rows, info, meta)
            if replace:
                run_dir.swap_in(out, real, "sweep", old_lock)
                lock.directory = real
        except BaseException:
            if lock is None:  # refused before anything was written (the folder may be
                run_dir.remove_empty(out, created)  # another's now: only if empty)
            elif replace or not runner.rows:  # nothing worth keeping: our own files only
                run_dir.remove_own(out, "sweep", None)
                lock.release()
                run_dir.remove_empty(out, created)
            raise
    return SweepResult(final, rows, threshold)


def _run_points(runner: _Runner, points: list[dict[str, Any]], keys: list[str],
                grid: list[tuple[str, list[Any]]], target: Target | None, rel_tol: float,
                info: dict[str, Any]) -> float | None:
    """Run every point of the grid, or the target search; return the threshold found."""
    threshold = None
    if target is None:
        for point in points:
            runner.run(point)
    else:
        threshold = _search(runner, keys[0], grid[0][1], target, rel_tol, info)
    return threshold


def _search(runner: _Runner, key: str, interval: list[Any], target: Target, rel_tol: float,
            info: dict[str, Any]) -> float | None:
    """Bisection for the smallest value of ``key`` meeting ``target``."""
    lo, hi = interval
    integer = isinstance(lo, int) and isinstance(hi, int)

    def meets(value: float) -> bool:
        result, sc = runner.run({key: value})
        ok = target.met(result.summary, sc)
        runner.rows[-1]["meets_target"] = ok
        return ok

    info["target"] = {"goal": str(target), "key": key, "interval": [lo, hi]}
    threshold: float | None
    if not meets(hi):
        threshold = None
        info["target"].update(threshold=None, note=f"not met at {key}={hi}")
    elif meets(lo):
        threshold = lo
        info["target"].update(threshold=lo, bracket=[lo, lo], note="met at the low end")
    else:
        runs = 2
        while runs < MAX_TARGET_RUNS:
            if integer and hi - lo <= 1:
                break
            if not integer and hi - lo <= rel_tol * abs(hi):
                break
            mid = (lo + hi) // 2 if integer else 0.5 * (lo + hi)
            if meets(mid):
                hi = mid
            else:
                lo = mid
            runs += 1
        threshold = hi
        info["target"].update(threshold=hi, bracket=[lo, hi],
                              note="smallest value that meets the goal, within the bracket")
    return threshold


def _version() -> str:
    from simulator._version import __version__

    return __version__


#: the metrics of a sweep's plain-text table (the command line adds the swept policies')
TABLE_METRICS = ("liquidation_prob", "n_liquidations_mean", "bad_debt_mean",
                 "bad_debt_mean_diff", "bad_debt_es_99")


def sweep_table(rows: list[dict[str, Any]], keys: list[str],
                metrics: tuple[str, ...] = TABLE_METRICS) -> str:
    """A plain-text table of a sweep: the grid keys, then a few metrics +- their errors."""
    head = [*keys, *metrics] + (["meets_target"] if rows and "meets_target" in rows[0] else [])
    lines = ["  ".join(f"{h:>22}" for h in head)]
    for r in rows:
        cells = [f"{r[k]!s:>22}" for k in keys]
        for m in metrics:
            est, se = r.get(m), r.get(f"{m}_stderr")
            est = None if est is None else float(est)
            cells.append(f"{'-' if est is None or not np.isfinite(est) else f'{est:,.4g}'}"
                         f" ± {'-' if se is None or not np.isfinite(se) else f'{se:.2g}'}"
                         .rjust(22))
        if "meets_target" in head:
            cells.append(f"{r.get('meets_target')!s:>22}")
        lines.append("  ".join(cells))
    return "\n".join(lines)
