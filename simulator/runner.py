"""Running a scenario: chunking, seeding, dispatch (loky, Dask or Ray), resume, aggregation.

Paths are split into chunks of ``simulation.chunk_paths``; chunk ``i`` draws from
``numpy.random.default_rng(SeedSequence(seed).spawn(n_chunks)[i])`` and writes its own
files. Nothing in a chunk depends on the number of workers or on the backend, and
per-account aggregates are merged in chunk order, so the same seed and chunk size give
bit-identical files with any ``jobs`` or backend. ``SeedSequence.spawn`` children depend
only on their index, so a run with more paths repeats the chunks of a shorter one.

A chunk writes ``events/``, ``prices/`` and ``prices_no_impact/`` (optional) and
``chunks/`` first and its ``paths/`` part last, each atomically; a chunk whose files all
exist is complete.
``manifest.json`` is written when the run starts (``"status": "running"``) and again at
the end (``"complete"``, with timings and checksums); ``--resume`` checks that it
describes the same scenario, deletes the temporary files an interrupted write left, and
runs only the missing chunks. ``force`` writes a new run beside an old one and swaps it in
when complete (:func:`simulator.output.swap_in`). The final manifest also holds the row
count of every Parquet file (``rows``), which ``marginsim verify`` checks.
"""

from __future__ import annotations

import platform
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import aggregate, backends, output, risk
from .book import Book, build_book
from .bounds import PRICE_CAP_RATIO, PRICE_FLOOR_RATIO
from .errors import MarginsimError, RunDirectoryError
from .margin import EngineRules, replay
from .margin.engine import BookIndex, account_nav_coefficients
from .margin.option_setup import account_greeks_usd
from .paths import PathInputs, generate_paths, prepare_path_inputs
from .scenario import Scenario


@dataclass(frozen=True)
class ChunkTask:
    """One unit of parallel work: a contiguous range of paths and its seed."""

    index: int
    first_path: int
    n_paths: int
    seed: np.random.SeedSequence


@dataclass(frozen=True)
class ChunkContext:
    """Everything a chunk needs, shipped to the worker with each task."""

    book: Book
    inputs: PathInputs
    rules: EngineRules
    index: BookIndex
    acct_navk: np.ndarray
    symbols: tuple[str, ...]
    out_dir: Path
    save_prices: int
    n_paths_total: int
    tail_mode: str
    metadata: dict[bytes, bytes]
    levels: tuple[float, ...] = (aggregate.ALPHA,)

    @classmethod
    def build(cls, scenario: Scenario, out_dir: Path, save_prices: int, version: str,
              full_scan: bool = False) -> ChunkContext:
        """Prepare the book, path inputs, rules and index of ``scenario``."""
        book = build_book(scenario)
        inputs = prepare_path_inputs(scenario)
        rules = EngineRules.for_scenario(scenario, full_scan=full_scan)
        sim = scenario.simulation
        return cls(book=book, inputs=inputs, rules=rules,
                   index=BookIndex.build(book, rules, inputs.s0, sim.steps, inputs.gap_log),
                   acct_navk=account_nav_coefficients(book), symbols=scenario.market.symbols,
                   out_dir=out_dir, save_prices=save_prices, n_paths_total=sim.paths,
                   tail_mode=aggregate.tail_mode(sim.paths, book.n_accounts,
                                                 sim.account_tail_budget_mb, sim.risk_levels),
                   metadata=output.file_metadata(scenario.digest, sim.seed, version),
                   levels=sim.risk_levels)


@dataclass(frozen=True)
class RunResult:
    """What :func:`run` produced.

    Attributes
    ----------
    out_dir : Path
        The run directory.
    summary : dict
        The contents of ``summary.json``.
    n_paths : int
    wall_seconds : float
    chunks_run : int
        Chunks simulated by this call (fewer than all after ``resume``).
    """

    out_dir: Path
    summary: dict
    n_paths: int
    wall_seconds: float
    chunks_run: int = 0


def plan_chunks(n_paths: int, chunk_paths: int, seed: int) -> list[ChunkTask]:
    """Split ``n_paths`` into chunks and give each its child seed sequence."""
    n_chunks = -(-n_paths // chunk_paths)
    seeds = np.random.SeedSequence(seed).spawn(n_chunks)
    return [ChunkTask(i, i * chunk_paths, min(chunk_paths, n_paths - i * chunk_paths), seeds[i])
            for i in range(n_chunks)]


def behaviour_key(seed: np.random.SeedSequence) -> int:
    """Key of a chunk's counter-based behaviour draws: a child of its seed sequence that
    no other draw uses, in ``[0, 2**63)``."""
    child = np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, 2**31))
    return int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))


def run_chunk(ctx: ChunkContext, task: ChunkTask
              ) -> tuple[aggregate.AccountPartial, dict[str, float]]:
    """Simulate one chunk and write its files; return its account aggregates and timings."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(task.seed)
    exo = generate_paths(ctx.inputs, task.n_paths, rng)
    t1 = time.perf_counter()
    n_save = max(0, min(task.n_paths, ctx.save_prices - task.first_path))
    res = replay(exo, ctx.inputs.depth_usd, ctx.book, ctx.rules, save_marks=n_save,
                 index=ctx.index, rng_key=behaviour_key(task.seed))
    saved_exo = exo[:n_save].copy() if n_save else None
    del exo
    t2 = time.perf_counter()
    partial = aggregate.chunk_partial(res.final_price, ctx.inputs.s0, ctx.acct_navk,
                                      res.corr_path, res.corr_account, res.corr_delta,
                                      res.acct_liquidated, res.acct_bankrupt, ctx.tail_mode,
                                      ctx.n_paths_total, ctx.levels)
    t3 = time.perf_counter()
    name = output.part_name(task.index)
    meta = {**ctx.metadata, b"marginsim.chunk": str(task.index).encode()}
    output.write_parquet(output.events_table(res, task.first_path, ctx.book.account_ids,
                                             ctx.book.unit_account, ctx.symbols),
                         ctx.out_dir / "events" / name, meta)
    if n_save:
        output.write_parquet(output.prices_table(res.marks, task.first_path, ctx.symbols),
                             ctx.out_dir / "prices" / name, meta)
        output.write_parquet(output.prices_table(saved_exo, task.first_path, ctx.symbols),
                             ctx.out_dir / "prices_no_impact" / name, meta)
    aggregate.write_chunk_files(res, task.first_path, ctx.out_dir, task.index, meta)
    output.write_parquet(output.paths_table(res, task.first_path, ctx.symbols),
                         ctx.out_dir / "paths" / name, meta)  # last: marks the chunk done
    t4 = time.perf_counter()
    return partial, {"paths": t1 - t0, "engine": t2 - t1, "accounts": t3 - t2,
                     "write": t4 - t3}


class Progress:
    """A one-line progress display on stderr (chunks, paths/s, ETA)."""

    def __init__(self, total_paths: int, n_chunks: int, enabled: bool, done_paths: int = 0,
                 done_chunks: int = 0) -> None:
        self.total, self.n_chunks, self.enabled = total_paths, n_chunks, enabled
        self.start = time.perf_counter()
        self.skipped = done_paths
        self.done_paths = done_paths
        self.done_chunks = done_chunks

    def update(self, n_paths: int) -> None:
        """Record one finished chunk of ``n_paths`` paths."""
        self.done_paths += n_paths
        self.done_chunks += 1
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        rate = (self.done_paths - self.skipped) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done_paths) / rate if rate > 0 else 0.0
        sys.stderr.write(f"\r  chunks {self.done_chunks}/{self.n_chunks}  paths "
                         f"{self.done_paths:,}/{self.total:,}  {rate:,.0f} paths/s  "
                         f"ETA {eta:,.0f}s   ")
        sys.stderr.flush()

    def close(self) -> None:
        """End the progress line."""
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def default_run_dir(scenario: Scenario, root: Path = Path("runs"), suffix: str = "") -> Path:
    """``runs/<name>[-suffix]-<YYYYmmdd-HHMMSS>``, with a number if that exists already."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{scenario.name}-{suffix}" if suffix else scenario.name
    path = root / f"{name}-{stamp}"
    k = 1
    while path.exists():
        k += 1
        path = root / f"{name}-{stamp}-{k}"
    return path


def _identity(scenario: Scenario, save_prices: int) -> dict[str, Any]:
    sim = scenario.simulation
    return {"scenario_sha256": scenario.digest, "seed": sim.seed, "paths": sim.paths,
            "chunk_paths": sim.chunk_paths, "save_prices": save_prices}


def prepare_run_dir(out_dir: Path, scenario: Scenario, save_prices: int, resume: bool) -> None:
    """Create the run directory, or check that ``resume`` continues the same run."""
    if resume:
        manifest_path = out_dir / "manifest.json"
        if not manifest_path.is_file():
            raise RunDirectoryError(f"{out_dir}: nothing to resume (no manifest.json); "
                                    "start a new run without --resume")
        manifest = output.read_json(manifest_path)
        expected = _identity(scenario, save_prices)
        for key, value in expected.items():
            if manifest.get(key) != value:
                raise RunDirectoryError(
                    f"{out_dir}: cannot resume: {key} is {manifest.get(key)!r} in the run "
                    f"directory but {value!r} now; resume with the same scenario, --set "
                    "values, --paths, --seed and --save-prices")
    elif out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise RunDirectoryError(f"{out_dir}: the run directory exists and is not empty; "
                                "choose another --out, add --resume to finish it, or "
                                "--force to replace it (runs are never overwritten "
                                "without --force)")
    try:
        saved = ("prices", "prices_no_impact") if save_prices else ()
        for sub in ("paths", "events", "chunks", *saved):
            (out_dir / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirectoryError(f"{out_dir}: cannot create the run directory: {exc}") from None


def run(scenario: Scenario, out_dir: str | Path | None = None, *, jobs: int = 1,
        save_prices: int = 0, progress: bool = False, resume: bool = False,
        backend: str = "loky", scheduler: str | None = None, force: bool = False
        ) -> RunResult:
    """Run a scenario into a run directory.

    Parameters
    ----------
    scenario : Scenario
        From :func:`simulator.load_scenario`.
    out_dir : str or Path, optional
        The run directory (must not exist or be empty, unless ``resume`` or ``force``);
        default ``runs/<name>-<time>``.
    jobs : int
        Worker processes for the loky backend; 1 runs in this process; -1 = every core.
    save_prices : int
        Write the mark price paths of the first ``save_prices`` paths to ``prices/``.
    progress : bool
        Show a progress line on stderr.
    resume : bool
        Finish an interrupted run in ``out_dir``: only missing chunks are simulated.
    backend : {"loky", "dask", "ray"}
        Where chunks run: local processes, a Dask cluster at ``scheduler``, or a Ray
        cluster at ``scheduler`` (a local Ray instance of ``jobs`` CPUs without one).
    scheduler : str, optional
        Dask scheduler or Ray address; the run directory must be visible to the workers.
    force : bool
        Replace an existing run directory (one with a ``manifest.json``; anything else is
        refused): the new run is written beside it and swapped in when complete, so the old
        run stays whole until then.

    Returns
    -------
    RunResult

    Examples
    --------
    >>> from simulator import load_scenario, run
    >>> result = run(load_scenario("two-asset-crash", ["simulation.paths=200"]), "/tmp/x")
    ... # doctest: +SKIP
    """
    backends.check_backend(backend)
    if force and resume:
        raise MarginsimError("--force and --resume contradict each other: --resume finishes "
                             "the run in --out, --force replaces it; give one of them")
    wall0 = time.perf_counter()
    version = _version()
    final = (Path(out_dir) if out_dir is not None else default_run_dir(scenario)).absolute()
    replace = force and output.check_replaceable(final, "manifest.json", "run")
    out = output.staging_dir(final) if replace else final
    ctx = ChunkContext.build(scenario, out, save_prices, version)
    try:
        with backends.session(backend, scheduler, jobs):
            prepare_run_dir(out, scenario, save_prices, resume)
            if resume:
                output.remove_temporaries(out)
            result = _run_prepared(scenario, ctx, out, jobs, save_prices, progress, resume,
                                   backend, version, wall0)
    except BaseException:
        if replace:  # the old run is untouched; drop the half-written new one
            shutil.rmtree(out, ignore_errors=True)
        raise
    if replace:
        output.swap_in(out, final)
        result = RunResult(out_dir=final, summary=result.summary, n_paths=result.n_paths,
                           wall_seconds=result.wall_seconds, chunks_run=result.chunks_run)
    return result


def _run_prepared(scenario: Scenario, ctx: ChunkContext, out: Path, jobs: int,
                  save_prices: int, progress: bool, resume: bool, backend: str,
                  version: str, wall0: float) -> RunResult:
    sim = scenario.simulation
    tasks = plan_chunks(sim.paths, sim.chunk_paths, sim.seed)
    done = {t.index for t in tasks if resume and aggregate.chunk_files_exist(out, t.index)}
    todo = [t for t in tasks if t.index not in done]
    manifest = {"status": "running", **_identity(scenario, save_prices),
                "scenario_name": scenario.name, "scenario_source": scenario.source,
                "scenario": scenario.document, "scenario_resolved": scenario.resolved(),
                "n_chunks": len(tasks), "n_accounts": ctx.book.n_accounts,
                "versions": _versions(version)}
    if not resume:
        output.write_json(manifest, out / "manifest.json")
    bar = Progress(sim.paths, len(tasks), progress,
                   sum(t.n_paths for t in tasks if t.index in done), len(done))
    totals = aggregate.AccountTotals(ctx.tail_mode, risk.tail_size(sim.paths, min(ctx.levels)),
                                     ctx.levels)
    seconds: dict[str, float] = {}
    try:
        results = iter(backends.dispatch(run_chunk, ctx, todo, backend, jobs))
        for task in tasks:  # merge in chunk order, whatever finished first
            if task.index in done:
                totals.add(aggregate.load_chunk_partial(
                    out, task.index, task.first_path, ctx.symbols, ctx.inputs.s0,
                    ctx.acct_navk, ctx.tail_mode, sim.paths, ctx.levels))
                continue
            partial, secs = next(results)
            totals.add(partial)
            for key, value in secs.items():
                seconds[key] = seconds.get(key, 0.0) + value
            bar.update(task.n_paths)
    finally:
        bar.close()
    greeks = account_greeks_usd(ctx.book, ctx.inputs.s0)
    output.write_parquet(aggregate.accounts_table(ctx.book, totals, greeks),
                         out / "accounts.parquet", ctx.metadata)
    summary = aggregate.summarise(out, scenario)
    n_bounded = _count_price_bounded(out)
    summary["price_bounds"] = {"floor_ratio": PRICE_FLOOR_RATIO,
                               "cap_ratio": PRICE_CAP_RATIO, "paths_bounded": n_bounded}
    output.write_json(summary, out / "summary.json")
    wall = time.perf_counter() - wall0
    manifest.update({
        "status": "complete",
        "jobs": jobs,
        "backend": backend,
        "n_accounts": ctx.book.n_accounts,
        "n_margin_units": ctx.book.n_units,
        "account_var_es_method": ctx.tail_mode,
        "chunks_run": len(todo),
        "timings_seconds": {"wall": wall, **{f"{k}_cpu": v for k, v in seconds.items()}},
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "paths_price_bounded": n_bounded,
        "files": output.checksums(out),
    })
    manifest["rows"] = output.parquet_rows(out, manifest["files"])
    output.write_json(manifest, out / "manifest.json")
    return RunResult(out_dir=out, summary=summary, n_paths=sim.paths, wall_seconds=wall,
                     chunks_run=len(todo))


def _count_price_bounded(out: Path) -> int:
    """Paths on which a price reached a bound of :mod:`simulator.bounds`."""
    flags = pq.read_table(out / "paths", columns=["price_bounded"]).column(0)
    return int(pc.sum(flags).as_py() or 0)


def _version() -> str:
    from . import __version__

    return __version__


def _versions(version: str) -> dict[str, str]:
    out = {"marginsim": version, "python": platform.python_version()}
    for dist in ("numpy", "numba", "scipy", "pyarrow", "joblib", "llvmlite"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out
