"""One chunk of a run: its plan, its seeds and the worker that simulates it and writes its
files (paths, replay, per-account partials, Parquet parts and the chunk record)."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulator._kernels.compiling import watch_compilation
from simulator.book.build import Book
from simulator.config.scenario import Scenario
from simulator.errors import RunDirectoryError
from simulator.execution.heap import return_large_blocks
from simulator.execution.prepare import prepare
from simulator.margin import EngineRules, replay
from simulator.margin.engine import BookIndex, RowBuffers
from simulator.margin.liq_prices import exact_slack
from simulator.paths import (
    PathInputs,
    bridge_extremes,
    generate_paths,
    generate_paths_sobol,
    oracle_args,
    oracle_arrays,
)
from simulator.rare import Tilt
from simulator.results import accounts as aggregate
from simulator.results import atomic as output
from simulator.results import integrity, tables
from simulator.results import lock as run_lock
from simulator.results.arrow_memory import use_system_memory_pool


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
    #: scenario hash and seed, as each chunk record holds them
    identity: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: the run directory lock's token; "" when the caller holds no lock (tests by hand)
    owner_token: str = ""
    #: the rows ``events/`` keeps (``simulation.events``)
    events: str = "all"
    #: rare-event mode: the importance-sampling tilt (:class:`simulator.rare.Tilt`);
    #: ``None`` in a plain run
    tilt: Tilt | None = None
    #: ``simulation.variance_reduction = "sobol"``: each chunk one scrambled Sobol set
    sobol: bool = False
    #: ``simulation.intrastep = "bridge"``: each step also swept at its bridge's extremes
    intrastep: bool = False
    #: ``[market.oracle]`` as :func:`simulator.paths.oracle_arrays` takes it, when the
    #: venue's index is not the exogenous price or some asset is valued at the index;
    #: ``None`` otherwise
    oracle: dict[str, Any] | None = None

    @property
    def weighted(self) -> bool:
        """Whether the paths carry importance-sampling weights."""
        return self.tilt is not None


    @classmethod
    def build(cls, scenario: Scenario, out_dir: Path, save_prices: int, version: str,
              full_scan: bool = False) -> ChunkContext:
        """Prepare the book, path inputs, rules and index of ``scenario``."""
        prep = prepare(scenario, full_scan=full_scan)
        book, sim = prep.book, scenario.simulation
        return cls(book=book, inputs=prep.inputs, rules=prep.rules, index=prep.index,
                   acct_navk=prep.acct_navk, symbols=scenario.market.symbols,
                   out_dir=out_dir, save_prices=save_prices, n_paths_total=sim.paths,
                   tail_mode=aggregate.tail_mode(sim.paths, book.n_accounts,
                                                 sim.account_tail_budget_mb, sim.risk_levels,
                                                 sim.variance_reduction != "none"),
                   metadata=tables.file_metadata(scenario.digest, sim.seed, version),
                   levels=sim.risk_levels, identity=run_identity(scenario),
                   events=sim.events, sobol=sim.variance_reduction == "sobol",
                   intrastep=sim.intrastep == "bridge", oracle=oracle_args(scenario))


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


#: the notice on stderr while the kernels compile
COMPILING = "compiling kernels, first run only"


class CompileNotice:
    """The one-line notice on stderr of a run whose kernels compile: :data:`COMPILING` when
    the first compilation starts, the seconds all of them took at :meth:`done`.

    Parameters
    ----------
    enabled : bool
        Write the notice (else only count the seconds).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.started, self.seconds = enabled, False, 0.0

    def _start(self) -> None:
        if not self.started and self.enabled:
            sys.stderr.write(f"{COMPILING} ...")
            sys.stderr.flush()
        self.started = True

    @contextlib.contextmanager
    def watch(self) -> Iterator[None]:
        """Count the compilations inside the block (loads from the cache are not)."""
        with watch_compilation(self._start) as seen:
            yield
        self.seconds += seen.seconds

    def done(self) -> None:
        """End the notice with the seconds the compilation took (nothing if none)."""
        if self.started and self.enabled:
            sys.stderr.write(f" {self.seconds:.0f} s\n")
            sys.stderr.flush()
            self.enabled = False


def compile_kernels(ctx: ChunkContext) -> None:
    """Compile every kernel a chunk of this run calls, or load it from the cache, here in
    the driver before any worker starts: the workers then load it from the cache instead
    of each compiling it. Runs the path generator and the replay on one path of their own
    (its own seed: no chunk's output depends on it), and, on a book with options, the
    kernel of the liquidation prices the driver writes in ``accounts.parquet`` (so that
    its compilation counts as such).

    Parameters
    ----------
    ctx : ChunkContext
        The run's chunk context.
    """
    tilted = {} if ctx.tilt is None else ctx.tilt.path_args()
    exo = generate_paths(ctx.inputs, 1, np.random.default_rng(0), **tilted)
    replay(exo, ctx.inputs.depth_usd, ctx.book, ctx.rules, save_marks=min(1, ctx.save_prices),
           index=ctx.index, rng_key=0)
    if ctx.book.has_options:  # the liquidation prices of accounts.parquet scan option units
        s0 = ctx.inputs.s0
        exact_slack(ctx.book, ctx.rules, s0, np.zeros(1), np.zeros(1), s0[:1])


#: event and correction rows per path of the last chunk this process ran, by scenario
#: digest: the next chunk's first buffers hold that many (and :data:`ROWS_SLACK` more), so
#: that they seldom grow (each growth copies the rows so far) and the results can view
#: them instead of copying their rows (the peak memory of a chunk; the outputs do not
#: depend on the buffers' size)
_ROWS_PER_PATH: dict[str, tuple[float, float]] = {}
#: the margin of the first buffers over the last chunk's rows
ROWS_SLACK = 1.1


def _expected_rows(key: str, n_paths: int) -> tuple[int, int]:
    """First sizes of a chunk's event and correction buffers (4,096 rows each when this
    process has not run a chunk of the scenario yet)."""
    if key not in _ROWS_PER_PATH:
        return 4096, 4096
    return tuple(int(ROWS_SLACK * rate * n_paths) + 64  # type: ignore[return-value]
                 for rate in _ROWS_PER_PATH[key])


_thread = threading.local()


def _row_buffers() -> RowBuffers:
    """This thread's event and correction buffers, kept from chunk to chunk
    (:mod:`simulator.margin.buffers`): a chunk is done with its replay's rows before the
    next chunk of the thread replays."""
    buffers = getattr(_thread, "row_buffers", None)
    if buffers is None:
        buffers = _thread.row_buffers = RowBuffers()
    return buffers


def run_chunk(ctx: ChunkContext, task: ChunkTask
              ) -> tuple[aggregate.AccountPartial, dict[str, float], dict[str, dict[str, Any]]]:
    """Simulate one chunk and write its files; return its account aggregates, timings and
    files (with their checksums, as its record lists them).

    Every file is written only while the driver still holds the run directory's lock (a
    loky worker also ends as soon as its driver is gone: :func:`backends.watch_driver`).
    """
    t0 = time.perf_counter()
    use_system_memory_pool()  # (in a worker process too)
    return_large_blocks()
    rng = np.random.default_rng(task.seed)
    log_weight = np.zeros(task.n_paths)
    tilted = {} if ctx.tilt is None else {
        **ctx.tilt.path_args(), "shift": ctx.tilt.shifted(task.first_path, task.n_paths)}
    exo = (generate_paths_sobol(ctx.inputs, task.n_paths, rng) if ctx.sobol else
           generate_paths(ctx.inputs, task.n_paths, rng, log_weight=log_weight, **tilted))
    weight = None if ctx.tilt is None else ctx.tilt.weights(log_weight)
    bridge = bridge_extremes(ctx.inputs, exo, rng) if ctx.intrastep else None
    oracle, oracle_noise = oracle_arrays(exo, rng, ctx.oracle)
    t1 = time.perf_counter()
    n_save = max(0, min(task.n_paths, ctx.save_prices - task.first_path))
    rows_key = ctx.identity.get("scenario_sha256", "")
    n_ev, n_corr = _expected_rows(rows_key, task.n_paths)
    res = replay(exo, ctx.inputs.depth_usd, ctx.book, ctx.rules, save_marks=n_save,
                 index=ctx.index, rng_key=behaviour_key(task.seed), path_weight=weight,
                 bridge=bridge, oracle=oracle, oracle_noise=oracle_noise,
                 initial_events=n_ev, initial_corrections=n_corr, buffers=_row_buffers())
    _ROWS_PER_PATH[rows_key] = (res.ev_i.shape[0] / max(task.n_paths, 1),
                                res.corr_delta.shape[0] / max(task.n_paths, 1))
    saved_exo = exo[:n_save].copy() if n_save else None
    del exo, bridge, oracle, oracle_noise
    t2 = time.perf_counter()
    partial = aggregate.chunk_partial(res.final_price, ctx.inputs.s0, ctx.acct_navk,
                                      res.corr_path, res.corr_account, res.corr_delta,
                                      res.acct_liquidated, res.acct_bankrupt, ctx.tail_mode,
                                      ctx.n_paths_total, ctx.levels, weight,
                                      res.acct_weighted if ctx.weighted else None,
                                      res.acct_adl,
                                      res.acct_adl_weighted if ctx.weighted else None)
    t3 = time.perf_counter()
    name = output.part_name(task.index)
    meta = {**ctx.metadata, b"marginsim.chunk": str(task.index).encode()}
    files: dict[str, dict[str, Any]] = {}

    def put(table: Any, rel: str) -> None:
        _check_owner(ctx, task.index)
        files[rel] = output.write_parquet(table, ctx.out_dir / rel, meta,
                                          fast=rel.startswith("chunks/pnl-"))

    put(tables.events_table(res, task.first_path, ctx.book.account_ids,
                            ctx.book.unit_account, ctx.symbols, ctx.events), f"events/{name}")
    if n_save:
        put(tables.prices_table(res.marks, task.first_path, ctx.symbols), f"prices/{name}")
        put(tables.prices_table(saved_exo, task.first_path, ctx.symbols),
            f"prices_no_impact/{name}")
    for rel, table in aggregate.chunk_tables(res, task.first_path, task.index,
                                             ctx.weighted, partial, ctx.levels).items():
        put(table, rel)
    put(tables.paths_table(res, task.first_path, ctx.symbols, weight, ctx.rules.breaker,
                           vault=ctx.rules.has_vault), f"paths/{name}")
    _check_owner(ctx, task.index)
    spec = integrity.ChunkSpec(task.index, task.first_path, task.n_paths, {})
    written = integrity.write_record(ctx.out_dir, spec, ctx.identity, files)  # last
    t4 = time.perf_counter()
    return partial, {"paths": t1 - t0, "engine": t2 - t1, "accounts": t3 - t2,
                     "write": t4 - t3}, written


def _check_owner(ctx: ChunkContext, chunk: int) -> None:
    """Refuse to write when the run that owns the directory is gone or another took it."""
    if ctx.owner_token and not run_lock.owner_alive(ctx.out_dir, ctx.owner_token):
        raise RunDirectoryError(f"{ctx.out_dir}: the run that owns this directory is gone "
                                f"(or another run took it over); chunk {chunk} not written")


def run_identity(scenario: Scenario) -> dict[str, Any]:
    """What every file of a run names: the scenario's digest and the seed."""
    return {"scenario_sha256": scenario.digest, "seed": scenario.simulation.seed}
