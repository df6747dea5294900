"""Running a scenario: chunking, seeding, joblib dispatch, aggregation, run directory.

Paths are split into chunks of ``simulation.chunk_paths``; chunk ``i`` draws from
``numpy.random.default_rng(SeedSequence(seed).spawn(n_chunks)[i])`` and writes its own
Parquet parts. Nothing in a chunk depends on the number of workers, and per-account
aggregates are merged in chunk order, so the same seed and chunk size give bit-identical
files with any ``jobs``. ``SeedSequence.spawn`` children depend only on their index, so a
run with more paths repeats the chunks of a shorter one and adds new ones.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from joblib import Parallel, delayed

from . import output, risk
from .book import Book, build_book
from .errors import RunDirectoryError
from .margin import EngineRules, codes, replay
from .paths import PathInputs, generate_paths, prepare_path_inputs
from .scenario import Scenario

ALPHA = 0.99


@dataclass(frozen=True)
class ChunkTask:
    """One unit of parallel work: a contiguous range of paths and its seed."""

    index: int
    first_path: int
    n_paths: int
    seed: np.random.SeedSequence


@dataclass(frozen=True)
class ChunkContext:
    """Everything a chunk needs, shipped once per task to the worker."""

    book: Book
    inputs: PathInputs
    rules: EngineRules
    symbols: tuple[str, ...]
    out_dir: Path
    save_prices: int
    n_paths_total: int
    metadata: dict[bytes, bytes]


@dataclass
class AccountPartial:
    """Per-account aggregates of one or more chunks (mergeable)."""

    n: int
    liquidated: np.ndarray
    bankrupt: np.ndarray
    pnl_sum: np.ndarray
    pnl_sumsq: np.ndarray
    loss_tail: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)

    def merge(self, other: AccountPartial, keep: int) -> AccountPartial:
        """Combine with the aggregates of another chunk (call in chunk order)."""
        secs = {k: self.seconds.get(k, 0.0) + other.seconds.get(k, 0.0)
                for k in {*self.seconds, *other.seconds}}
        return AccountPartial(self.n + other.n, self.liquidated + other.liquidated,
                              self.bankrupt + other.bankrupt, self.pnl_sum + other.pnl_sum,
                              self.pnl_sumsq + other.pnl_sumsq,
                              risk.merge_tails(self.loss_tail, other.loss_tail, keep), secs)


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
    """

    out_dir: Path
    summary: dict
    n_paths: int
    wall_seconds: float


def plan_chunks(n_paths: int, chunk_paths: int, seed: int) -> list[ChunkTask]:
    """Split ``n_paths`` into chunks and give each its child seed sequence."""
    n_chunks = -(-n_paths // chunk_paths)
    seeds = np.random.SeedSequence(seed).spawn(n_chunks)
    return [ChunkTask(i, i * chunk_paths, min(chunk_paths, n_paths - i * chunk_paths), seeds[i])
            for i in range(n_chunks)]


def run_chunk(ctx: ChunkContext, task: ChunkTask) -> AccountPartial:
    """Simulate one chunk, write its parts, return its per-account aggregates."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(task.seed)
    exo = generate_paths(ctx.inputs, task.n_paths, rng)
    t1 = time.perf_counter()
    n_save = max(0, min(task.n_paths, ctx.save_prices - task.first_path))
    res = replay(exo, ctx.inputs.depth_usd, ctx.book, ctx.rules, save_marks=n_save)
    t2 = time.perf_counter()
    name = output.part_name(task.index)
    meta = {**ctx.metadata, b"marginsim.chunk": str(task.index).encode()}
    output.write_parquet(output.events_table(res, task.first_path, ctx.book.account_ids,
                                             ctx.book.unit_account, ctx.symbols),
                         ctx.out_dir / "events" / name, meta)
    if n_save:
        output.write_parquet(output.prices_table(res.marks, task.first_path, ctx.symbols),
                             ctx.out_dir / "prices" / name, meta)
    output.write_parquet(output.paths_table(res, task.first_path, ctx.symbols),
                         ctx.out_dir / "paths" / name, meta)
    t3 = time.perf_counter()
    losses = -res.acct_pnl
    keep = risk.tail_size(ctx.n_paths_total, ALPHA)
    empty = np.empty((0, losses.shape[1]))
    return AccountPartial(
        n=task.n_paths,
        liquidated=((res.acct_flags & codes.FLAG_LIQUIDATED) > 0).sum(axis=0),
        bankrupt=((res.acct_flags & codes.FLAG_BANKRUPT) > 0).sum(axis=0),
        pnl_sum=res.acct_pnl.sum(axis=0),
        pnl_sumsq=(res.acct_pnl**2).sum(axis=0),
        loss_tail=risk.merge_tails(empty, losses, keep),
        seconds={"paths": t1 - t0, "engine": t2 - t1, "write": t3 - t2},
    )


class Progress:
    """A one-line progress display on stderr (chunks, paths/s, ETA)."""

    def __init__(self, total_paths: int, n_chunks: int, enabled: bool) -> None:
        self.total, self.n_chunks, self.enabled = total_paths, n_chunks, enabled
        self.start = time.perf_counter()
        self.done_paths = 0
        self.done_chunks = 0

    def update(self, n_paths: int) -> None:
        """Record one finished chunk of ``n_paths`` paths."""
        self.done_paths += n_paths
        self.done_chunks += 1
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        rate = self.done_paths / elapsed if elapsed > 0 else 0.0
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


def default_run_dir(scenario: Scenario, root: Path = Path("runs")) -> Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>``, with a suffix if that exists already."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = root / f"{scenario.name}-{stamp}"
    k = 1
    while path.exists():
        k += 1
        path = root / f"{scenario.name}-{stamp}-{k}"
    return path


def prepare_run_dir(out_dir: Path, save_prices: int) -> None:
    """Create the run directory; refuse one that exists and is not empty."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise RunDirectoryError(f"{out_dir}: the run directory exists and is not empty; "
                                "choose another --out (runs are never overwritten)")
    try:
        for sub in ("paths", "events") + (("prices",) if save_prices else ()):
            (out_dir / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirectoryError(f"{out_dir}: cannot create the run directory: {exc}") from None


def run(scenario: Scenario, out_dir: str | Path | None = None, *, jobs: int = 1,
        save_prices: int = 0, progress: bool = False) -> RunResult:
    """Run a scenario into a run directory.

    Parameters
    ----------
    scenario : Scenario
        From :func:`simulator.load_scenario`.
    out_dir : str or Path, optional
        The run directory (must not exist or be empty); default
        ``runs/<name>-<time>``.
    jobs : int
        Worker processes (joblib loky); 1 runs in this process; -1 uses every core.
    save_prices : int
        Write the mark price paths of the first ``save_prices`` paths to ``prices/``.
    progress : bool
        Show a progress line on stderr.

    Returns
    -------
    RunResult

    Examples
    --------
    >>> from simulator import load_scenario, run
    >>> result = run(load_scenario("two-asset-crash", ["simulation.paths=200"]), "/tmp/x")
    ... # doctest: +SKIP
    """
    wall0 = time.perf_counter()
    book = build_book(scenario)
    inputs = prepare_path_inputs(scenario)
    rules = EngineRules.from_scenario(scenario.venue, scenario.liquidity,
                                      np.array([a.haircut for a in scenario.market.assets]))
    out = Path(out_dir) if out_dir is not None else default_run_dir(scenario)
    prepare_run_dir(out, save_prices)
    sim = scenario.simulation
    version = _version()
    ctx = ChunkContext(book=book, inputs=inputs, rules=rules, symbols=scenario.market.symbols,
                       out_dir=out, save_prices=save_prices, n_paths_total=sim.paths,
                       metadata=output.file_metadata(scenario.digest, sim.seed, version))
    tasks = plan_chunks(sim.paths, sim.chunk_paths, sim.seed)
    keep = risk.tail_size(sim.paths, ALPHA)
    bar = Progress(sim.paths, len(tasks), progress)
    total: AccountPartial | None = None
    n_jobs = min(jobs if jobs > 0 else (os.cpu_count() or 1), len(tasks))
    parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator")
    try:
        for task, part in zip(tasks, parallel(delayed(run_chunk)(ctx, t) for t in tasks),
                              strict=True):
            total = part if total is None else total.merge(part, keep)
            bar.update(task.n_paths)
    finally:
        bar.close()
    assert total is not None
    accounts = accounts_table(book, total)
    output.write_parquet(accounts, out / "accounts.parquet", ctx.metadata)
    summary = summarise(out, scenario)
    output.write_json(summary, out / "summary.json")
    wall = time.perf_counter() - wall0
    manifest = {
        "scenario": scenario.document,
        "scenario_resolved": scenario.resolved(),
        "scenario_name": scenario.name,
        "scenario_source": scenario.source,
        "scenario_sha256": scenario.digest,
        "seed": sim.seed,
        "paths": sim.paths,
        "chunk_paths": sim.chunk_paths,
        "n_chunks": len(tasks),
        "jobs": n_jobs,
        "save_prices": save_prices,
        "n_accounts": book.n_accounts,
        "n_margin_units": book.n_units,
        "versions": _versions(version),
        "timings_seconds": {"wall": wall, **{f"{k}_cpu": v for k, v in total.seconds.items()}},
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "files": output.checksums(out),
    }
    output.write_json(manifest, out / "manifest.json")
    return RunResult(out_dir=out, summary=summary, n_paths=sim.paths, wall_seconds=wall)


def accounts_table(book: Book, agg: AccountPartial) -> pa.Table:
    """Per-account estimates (``accounts.parquet``): losses are positive USD."""
    n = agg.n
    mean = agg.pnl_sum / n
    var_pnl = np.maximum(agg.pnl_sumsq / n - mean**2, 0.0) * (n / max(n - 1, 1))
    liq = agg.liquidated / n
    bank = agg.bankrupt / n
    var99 = np.empty(book.n_accounts)
    es99 = np.empty(book.n_accounts)
    var_se = np.empty(book.n_accounts)
    es_se = np.empty(book.n_accounts)
    for j in range(book.n_accounts):
        var99[j], var_se[j], es99[j], es_se[j] = risk.var_es_from_tail(agg.loss_tail[:, j], n,
                                                                        ALPHA)
    return pa.table({
        "account_id": pa.array(book.account_ids).dictionary_encode(),
        "margin_mode": pa.array(np.where(book.account_isolated, "isolated", "cross")
                                ).dictionary_encode(),
        "liquidation_prob": liq,
        "bankruptcy_prob": bank,
        "mean_pnl": mean,
        "var_99": var99,
        "es_99": es99,
        "liquidation_prob_stderr": np.sqrt(liq * (1 - liq) / n),
        "bankruptcy_prob_stderr": np.sqrt(bank * (1 - bank) / n),
        "mean_pnl_stderr": np.sqrt(var_pnl / n),
        "var_99_stderr": var_se,
        "es_99_stderr": es_se,
    })


def summarise(out_dir: Path, scenario: Scenario) -> dict[str, Any]:
    """Venue-level estimates with standard errors, from the ``paths/`` dataset."""
    table = pq.read_table(out_dir / "paths", columns=[
        "n_liquidations", "liquidated_notional", "max_cascade_rounds", "bad_debt",
        "insurance_fund_end", "adl_notional", "socialised_loss", "fees", "fund_depleted",
        "first_liquidation_step"])
    col = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    metrics: dict[str, tuple[float, float]] = {}
    metrics["liquidation_prob"] = risk.prob_se(col["n_liquidations"] > 0)
    for name in ("n_liquidations", "liquidated_notional", "bad_debt", "max_cascade_rounds",
                 "adl_notional", "socialised_loss", "fees", "insurance_fund_end"):
        metrics[f"{name}_mean"] = risk.mean_se(col[name])
    var, var_se, es, es_se = risk.var_es(col["bad_debt"], ALPHA)
    metrics["bad_debt_var_99"] = (var, var_se)
    metrics["bad_debt_es_99"] = (es, es_se)
    metrics["insurance_fund_depletion_prob"] = risk.prob_se(col["fund_depleted"])
    metrics["bad_debt_prob"] = risk.prob_se(col["bad_debt"] > 0)
    metrics["adl_prob"] = risk.prob_se(col["adl_notional"] > 0)
    first = col["first_liquidation_step"]
    first = first[~np.isnan(first.astype(float))]
    metrics["first_liquidation_step_mean"] = risk.mean_se(first)
    return {
        "scenario": scenario.name,
        "paths": int(len(col["bad_debt"])),
        "seed": scenario.simulation.seed,
        "metrics": {k: {"estimate": _finite(v[0]), "stderr": _finite(v[1])}
                    for k, v in metrics.items()},
    }


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


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
