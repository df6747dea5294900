"""Running a scenario: chunking, seeding, dispatch (loky, Dask or Ray), resume, aggregation.

Paths are split into chunks of ``simulation.chunk_paths``; chunk ``i`` draws from
``numpy.random.default_rng(SeedSequence(seed).spawn(n_chunks)[i])`` and writes its own
files. Nothing in a chunk depends on the number of workers or on the backend, and
per-account aggregates are merged in chunk order, so the same seed and chunk size give
bit-identical files with any ``jobs`` or backend. ``SeedSequence.spawn`` children depend
only on their index, so a run with more paths repeats the chunks of a shorter one.

A chunk writes its parts (``events/``, ``prices/`` and ``prices_no_impact/`` (optional),
``chunks/``, ``paths/``), each atomically, and last its record ``chunks/chunk-NNNNN.json``
with their checksums (:mod:`simulator.results.integrity`); a chunk is complete when its record and
parts match. ``manifest.json`` is written when the run starts (``"status": "running"``) and
again at the end (``"complete"``, with timings, checksums and row counts taken from the
chunk records, which ``marginsim verify`` checks).

The run holds the directory's lock (:mod:`simulator.results.lock`) while it writes, so a second
run, ``--resume`` or ``--force`` of the same directory is refused while it lives; workers
write nothing once their driver is gone. ``--resume`` re-checks every finished chunk
against its record, runs again any that does not match (with a warning), and refuses a
directory holding files that no chunk of the run writes. ``force`` writes a new run beside
an old one and swaps it in when complete (:func:`simulator.results.rundir.swap_in`), and only
replaces what marginsim wrote. A run that fails before any chunk is complete leaves
nothing behind; one that fails later keeps its complete chunks for ``--resume``.
"""

from __future__ import annotations

import dataclasses
import html
import json
import platform
import shlex
import time
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.config.scenario import Scenario
from simulator.errors import Interrupted, MarginsimError, RunDirectoryError
from simulator.execution import backends, budget
from simulator.execution.chunk import (
    ChunkContext,
    CompileNotice,
    compile_kernels,
    plan_chunks,
    run_chunk,
)
from simulator.execution.heap import return_large_blocks
from simulator.execution.progress import Progress
from simulator.execution.tilting import recorded_tilt, tune_rare_tilt
from simulator.input_files import read_regular_text
from simulator.margin.liq_prices import liquidation_prices
from simulator.margin.option_setup import account_greeks_usd
from simulator.rare import Tilt
from simulator.results import accounts as aggregate
from simulator.results import atomic as output
from simulator.results import integrity, risk
from simulator.results import lock as run_lock
from simulator.results import read as reader
from simulator.results import rundir as run_dir
from simulator.results.arrow_memory import use_system_memory_pool
from simulator.results.summary import summarise

if TYPE_CHECKING:  # pragma: no cover
    from simulator.results.read import Frame


@dataclass(frozen=True)
class RunResult:
    """What :func:`run` produced, or a complete run opened again with :meth:`open`.

    Its tables are read with :meth:`paths`, :meth:`events`, :meth:`accounts` and
    :meth:`prices` (see :mod:`simulator.results.read`). In a notebook it shows as the
    headline table that ``marginsim run`` prints.

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

    Examples
    --------
    >>> from simulator import RunResult
    >>> result = RunResult.open("runs/demo")  # doctest: +SKIP
    >>> result.events(columns=["step", "notional"],
    ...               filter=[("kind", "==", "liquidation")])  # doctest: +SKIP
    """

    out_dir: Path
    summary: dict
    n_paths: int
    wall_seconds: float
    chunks_run: int = 0

    @classmethod
    def open(cls, run_dir: str | Path) -> RunResult:
        """Open a complete run directory written earlier.

        Parameters
        ----------
        run_dir : str or Path
            A run directory whose run is complete.

        Returns
        -------
        RunResult
            ``summary`` from ``summary.json``; ``n_paths``, ``wall_seconds`` and
            ``chunks_run`` from ``manifest.json`` (those of the call that completed the
            run; ``0`` where an older manifest lacks them).

        Raises
        ------
        MarginsimError
            When ``run_dir`` is not a run directory, the run is incomplete, or
            ``summary.json`` cannot be read or is not a marginsim summary.
        """
        manifest = reader.manifest(run_dir)
        out_dir = Path(run_dir).absolute()
        where = out_dir / "summary.json"
        try:
            summary = json.loads(read_regular_text(where))
        except (OSError, ValueError) as exc:
            raise MarginsimError(f"{where}: cannot read: {exc}") from None
        if not isinstance(summary, dict) or not isinstance(summary.get("metrics"), dict):
            raise MarginsimError(f"{where}: not a marginsim summary (no metrics); marginsim "
                                 f"verify {shlex.quote(str(out_dir))} says more")
        timings = manifest.get("timings_seconds")
        wall = timings.get("wall") if isinstance(timings, dict) else None
        n_paths = manifest.get("paths", summary.get("paths"))
        return cls(out_dir=out_dir, summary=summary, n_paths=int(n_paths or 0),
                   wall_seconds=float(wall or 0.0),
                   chunks_run=int(manifest.get("chunks_run") or 0))

    def paths(self, columns: Sequence[str] | None = None, filter: reader.Filter = None,
              as_: reader.Form = "pandas") -> Frame:
        """One row per path: :func:`simulator.results.read.paths` of :attr:`out_dir`."""
        return reader.paths(self.out_dir, columns, filter, as_)

    def events(self, columns: Sequence[str] | None = None, filter: reader.Filter = None,
               as_: reader.Form = "pandas") -> Frame:
        """One row per fill: :func:`simulator.results.read.events` of :attr:`out_dir`."""
        return reader.events(self.out_dir, columns, filter, as_)

    def accounts(self, columns: Sequence[str] | None = None, filter: reader.Filter = None,
                 as_: reader.Form = "pandas") -> Frame:
        """One row per account: :func:`simulator.results.read.accounts` of
        :attr:`out_dir`."""
        return reader.accounts(self.out_dir, columns, filter, as_)

    def prices(self, columns: Sequence[str] | None = None, filter: reader.Filter = None,
               as_: reader.Form = "pandas", *, impact: bool = True) -> Frame:
        """Saved price paths (``save_prices``): :func:`simulator.results.read.prices` of
        :attr:`out_dir`."""
        return reader.prices(self.out_dir, columns, filter, as_, impact=impact)

    def __repr__(self) -> str:
        metrics = self.summary.get("metrics") if isinstance(self.summary, dict) else None
        scenario = self.summary.get("scenario") if isinstance(self.summary, dict) else None
        return (f"RunResult(out_dir={str(self.out_dir)!r}, scenario={scenario!r}, "
                f"n_paths={self.n_paths:,}, wall_seconds={self.wall_seconds:.2f}, "
                f"chunks_run={self.chunks_run}, metrics={len(metrics or {})})")

    def _repr_html_(self) -> str:
        """The headline table of ``marginsim run`` as HTML (Jupyter shows it)."""
        from simulator.report.text import headline_html  # plain Python; no matplotlib

        try:
            table = headline_html(self.summary)
        except (KeyError, TypeError, AttributeError):  # not a marginsim summary
            return f"<pre>{html.escape(repr(self))}</pre>"
        return (f"<div><p>marginsim run in <code>{html.escape(str(self.out_dir))}</code>: "
                f"{self.n_paths:,} paths in {self.wall_seconds:.1f}s</p>\n{table}</div>")


def _identity(scenario: Scenario, save_prices: int) -> dict[str, Any]:
    sim = scenario.simulation
    return {"scenario_sha256": scenario.digest, "seed": sim.seed, "paths": sim.paths,
            "chunk_paths": sim.chunk_paths, "save_prices": save_prices}


def _open_run_dir(out_dir: Path, resume: bool) -> None:
    """Check, reading only, that ``out_dir`` can take the run; create it if missing.

    Nothing is written into an existing directory here: its lock is taken only once it is
    known to be a new run's or this run's.
    """
    if resume:
        if not (out_dir / "manifest.json").is_file():
            raise RunDirectoryError(f"{out_dir}: nothing to resume (no manifest.json); "
                                    "start a new run without --resume")
        foreign = run_dir.foreign_entries(out_dir)
        if foreign:
            raise RunDirectoryError(f"{out_dir}: cannot resume: it holds what marginsim did "
                                    f"not write ({'; '.join(foreign[:3])}); remove it, then "
                                    "--resume")
        return
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirectoryError(f"{out_dir}: exists and is not a directory; choose another "
                                "--out (a run directory is a folder)")
    if out_dir.is_dir() and any(p.name != run_lock.LOCK_NAME for p in out_dir.iterdir()):
        raise RunDirectoryError(f"{out_dir}: the run directory exists and is not empty; "
                                "choose another --out, add --resume to finish it, or "
                                "--force to replace it (runs are never overwritten "
                                "without --force)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirectoryError(f"{out_dir}: cannot create the run directory: "
                                f"{exc.strerror or exc}") from None


def prepare_run_dir(out_dir: Path, scenario: Scenario, save_prices: int, resume: bool) -> None:
    """Under the lock: check that ``resume`` continues the same run, or that a new run's
    directory is still empty; create the per-chunk folders."""
    if resume:
        manifest = output.read_json(out_dir / "manifest.json")
        if not isinstance(manifest, dict):
            raise RunDirectoryError(f"{out_dir / 'manifest.json'}: not a marginsim manifest")
        expected = _identity(scenario, save_prices)
        written_by = (manifest.get("versions") or {}).get("marginsim") \
            if isinstance(manifest.get("versions"), dict) else None
        if written_by != _version():  # one run, one engine: chunks of two are not mixed
            raise RunDirectoryError(
                f"{out_dir}: cannot resume: written by marginsim {written_by}, this is "
                f"{_version()}; finish it with that version, or start again with --force")
        for key, value in expected.items():
            if manifest.get(key) != value:
                raise RunDirectoryError(
                    f"{out_dir}: cannot resume: {key} is {manifest.get(key)!r} in the run "
                    f"directory but {value!r} now; resume with the same scenario, --set "
                    "values, --paths, --seed and --save-prices")
    elif any(p.name != run_lock.LOCK_NAME for p in out_dir.iterdir()):
        raise RunDirectoryError(f"{out_dir}: another process wrote into the run directory "
                                "while this run was starting; choose another --out")
    try:
        saved = ("prices", "prices_no_impact") if save_prices else ()
        for sub in ("paths", "events", "chunks", *saved):
            (out_dir / sub).mkdir(exist_ok=True)
    except OSError as exc:
        raise RunDirectoryError(f"{out_dir}: cannot create the run directory: "
                                f"{exc.strerror or exc}") from None


def resume_command(scenario: Scenario, out_dir: Path, save_prices: int) -> str:
    """The command that finishes an interrupted run of ``scenario`` in ``out_dir``."""
    sim = scenario.simulation
    sets = [f"--set {shlex.quote(o)}" for o in scenario.overrides]
    saved = f" --save-prices {save_prices}" if save_prices else ""
    return (f"marginsim run {shlex.quote(scenario.source)} --out {shlex.quote(str(out_dir))} "
            f"--resume{''.join(' ' + s for s in sets)} --paths {sim.paths} --seed "
            f"{sim.seed}{saved}")


def run(scenario: Scenario, out_dir: str | Path | None = None, *, jobs: int = 1,
        save_prices: int = 0, progress: bool = False, resume: bool = False,
        backend: str = "loky", scheduler: str | None = None, force: bool = False,
        notice: bool = False, tilt: Tilt | None = None) -> RunResult:
    """Run a scenario into a run directory.

    Parameters
    ----------
    scenario : Scenario
        From :func:`simulator.load_scenario`.
    out_dir : str or Path, optional
        The run directory (must not exist or be empty, unless ``resume`` or ``force``);
        default ``runs/<name>-<time>`` under the working directory (the name reduced to a
        safe slug).
    jobs : int
        Worker processes for the loky backend; 1 runs in this process; -1 = every core.
    save_prices : int
        Write the mark price paths of the first ``save_prices`` paths to ``prices/``.
    progress : bool
        Show a progress line on stderr.
    resume : bool
        Finish an interrupted run in ``out_dir``: chunks whose record and files match are
        kept, every other chunk is run.
    backend : {"loky", "dask", "ray"}
        Where chunks run: local processes, a Dask cluster at ``scheduler``, or a Ray
        cluster at ``scheduler`` (a local Ray instance of ``jobs`` CPUs without one).
    scheduler : str, optional
        Dask scheduler or Ray address; the run directory must be visible to the workers.
    force : bool
        Replace an existing run directory (one that marginsim wrote and that holds nothing
        else; anything else is refused): the new run is written beside it and swapped in
        when complete, so the old run stays whole until then.
    notice : bool
        Say on stderr when the kernels compile (``compiling kernels, first run only``, then
        the seconds it took): once per installed version, later runs load them from the
        cache; and the rounds of a rare-event pilot.
    tilt : Tilt, optional
        Rare-event mode (``simulation.rare_event``): the tilt to use instead of tuning
        one with the pilot (a sweep tunes one for all its points). A resumed run keeps
        the tilt its manifest records.

    Returns
    -------
    RunResult

    Raises
    ------
    RunDirectoryError
        When the directory is held by a live run, is not marginsim's to replace or
        resume, or an operating-system error stops the run (the message says what was
        kept and how to finish it).
    Interrupted
        On Ctrl-C or SIGTERM (a ``KeyboardInterrupt``), saying what was kept.

    Warns
    -----
    simulator.results.lock.RunDirectoryWarning
        When a dead run's lock is taken over, or ``--resume`` runs a damaged chunk again.

    Examples
    --------
    >>> from simulator import load_scenario, run
    >>> result = run(load_scenario("two-asset-crash", ["simulation.paths=200"]), "/tmp/x")
    ... # doctest: +SKIP
    """
    use_system_memory_pool()  # freed Arrow buffers go back to the system (peak memory)
    return_large_blocks()  # and freed large arrays too, whatever their size
    backends.check_backend(backend)
    if force and resume:
        raise MarginsimError("--force and --resume contradict each other: --resume finishes "
                             "the run in --out, --force replaces it; give one of them")
    wall0 = time.perf_counter()
    version = _version()
    final = (Path(out_dir) if out_dir is not None
             else run_dir.default_run_dir(scenario.name)).absolute()
    # what cannot fit is refused before anything is allocated or written
    budget.check_resources(scenario, jobs=jobs if backend == "loky" else 1,
                           save_prices=save_prices, out_dir=final)
    compiled = CompileNotice(notice)
    sim = scenario.simulation
    if tilt is not None and not sim.rare_event:
        raise MarginsimError("a tilt was given for a run that is not in rare-event mode "
                             "(simulation.rare_event is not set)")
    with compiled.watch():
        ctx = ChunkContext.build(scenario, final, save_prices, version)  # bad input: no files
        if sim.rare_event:
            tilt = recorded_tilt(final, scenario, tilt) if resume else tilt
            if tilt is None:  # the pilot's kernels, compiled before it speaks
                compile_kernels(dataclasses.replace(ctx, tilt=Tilt.zero(scenario)))
    if sim.rare_event:  # the pilot's errors too come before any file
        if tilt is not None and tilt.theta.shape != (sim.steps, ctx.inputs.n_assets):
            raise MarginsimError(f"the tilt has shape {tilt.theta.shape}; this scenario has "
                                 f"{sim.steps} steps of {ctx.inputs.n_assets} assets (a "
                                 "sweep's grid may not change simulation.steps or the "
                                 "assets in rare-event mode)")
        if tilt is None:
            compiled.done()
            tilt = tune_rare_tilt(scenario, ctx, notice or progress)
        ctx = dataclasses.replace(ctx, tilt=tilt)
    command = "marginsim run" + (" --resume" if resume else " --force" if force else "")
    complete, came = False, []  # a signal once the run is complete says so
    try:
        with ExitStack() as held:
            replace = force and run_dir.check_replaceable(final, "run")
            real, old_lock = run_dir.replaced(final), None
            if replace:  # hold the old run's lock: no live run is swapped away
                old_lock = held.enter_context(run_lock.acquire(real, command))
                run_dir.check_replaceable(real, "run")
            out = run_dir.staging_dir(real) if replace else final
            created, lock = run_dir.missing_root(out), None
            try:
                with run_dir.signals_deferred():  # no signal between mkdir and the lock
                    _open_run_dir(out, resume)
                    lock = held.enter_context(run_lock.acquire(out, command))
                ctx = dataclasses.replace(ctx, out_dir=out, owner_token=lock.token)
                with backends.session(backend, scheduler, jobs):
                    prepare_run_dir(out, scenario, save_prices, resume)
                    if resume:
                        run_dir.remove_temporaries(out)
                    result = _run_prepared(scenario, ctx, out, jobs, save_prices, progress,
                                           resume, backend, version, wall0, compiled,
                                           ctx.tilt)
                with run_dir.signals_held(came):  # the swap and its bookkeeping: whole
                    if replace:
                        run_dir.swap_in(out, real, "run", old_lock)
                        lock.directory = real
                        result = dataclasses.replace(result, out_dir=final)
                    complete = True
            except BaseException as exc:
                if lock is None:  # refused before anything was written (the folder may be
                    run_dir.remove_empty(out, created)  # another run's now: only if empty)
                    raise
                kept = _clean_up_failed(out, replace, created, resume, lock)
                _raise_for_failure(exc, kept, scenario, final, save_prices, replace)
                raise
            run_dir.deliver(came)  # a signal that came during the swap: the run is complete
    except KeyboardInterrupt as exc:
        if not complete:
            raise
        raise Interrupted(f"the run is complete in {final}",
                          getattr(exc, "signum", Interrupted.SIGINT)) from None
    return result


def _clean_up_failed(out: Path, replace: bool, created: Path | None, resume: bool,
                     lock: run_lock.RunLock) -> int:
    """After a failure: drop a ``--force`` replacement, or a new run with no complete chunk
    (its own files, under the lock, then the folders it created if empty: nothing
    half-written is left, nothing of anyone else's is touched); otherwise keep the complete
    chunks. Returns how many chunks are kept."""
    kept = len(list((out / "chunks").glob("chunk-*.json"))) if out.is_dir() else 0
    if replace or (not resume and kept == 0):
        run_dir.remove_own(out, "run", None)
        lock.release()
        run_dir.remove_empty(out, created)
        return 0
    return kept


def _raise_for_failure(exc: BaseException, kept: int, scenario: Scenario, final: Path,
                       save_prices: int, replace: bool) -> None:
    """Turn an interrupt, an operating-system error, a memory error or a dead worker into
    one clear error saying what was kept; return for anything else (raised as it is)."""
    if kept:
        n_chunks = -(-scenario.simulation.paths // scenario.simulation.chunk_paths)
        after = (f"{kept} of {n_chunks} chunks are complete in {final}; finish the run with: "
                 f"{resume_command(scenario, final, save_prices)}")
    else:
        after = "nothing was kept"
    if replace:
        after = f"{final} still holds the old run, unchanged"
    if isinstance(exc, KeyboardInterrupt):
        raise Interrupted(after, getattr(exc, "signum", Interrupted.SIGINT)) from None
    if isinstance(exc, MarginsimError):
        return
    if isinstance(exc, OSError):
        where = exc.filename or final
        raise RunDirectoryError(f"{where}: {exc.strerror or exc}; {after}") from None
    if isinstance(exc, MemoryError):
        raise MarginsimError(f"out of memory: lower simulation.chunk_paths or --jobs; "
                             f"{after}") from None
    if backends.is_dead_worker(exc):
        raise MarginsimError(f"a worker process died ({str(exc).splitlines()[0][:200]}); "
                             "the system may have killed it for lack of memory: lower "
                             f"simulation.chunk_paths or --jobs; {after}") from None


def _finished_chunks(out: Path, specs: list[integrity.ChunkSpec], identity: dict[str, Any]
                     ) -> dict[int, dict[str, dict[str, Any]]]:
    """The chunks of an interrupted run that are complete and intact (with their files);
    every other chunk's files are removed, with a warning for each damaged one."""
    stray = integrity.unexpected_files(out, specs)
    if stray:
        raise RunDirectoryError(f"{stray[0]}: not a file of this run ({len(stray)} such "
                                "file(s) in its per-chunk folders, which readers would "
                                "include); remove them, then --resume")
    done: dict[int, dict[str, dict[str, Any]]] = {}
    for spec in specs:
        files, problem = integrity.check_chunk(out, spec, identity)
        if files is not None:
            done[spec.index] = files
            continue
        if (out / spec.record).exists() or any((out / rel).exists() for rel in spec.files):
            if (out / spec.record).exists():
                warnings.warn(f"{problem}; running chunk {spec.index} again",
                              run_lock.RunDirectoryWarning, stacklevel=3)
            integrity.remove_chunk(out, spec)
    return done


def _run_prepared(scenario: Scenario, ctx: ChunkContext, out: Path, jobs: int,
                  save_prices: int, progress: bool, resume: bool, backend: str,
                  version: str, wall0: float, compiled: CompileNotice,
                  tilt: Tilt | None = None) -> RunResult:
    sim = scenario.simulation
    tasks = plan_chunks(sim.paths, sim.chunk_paths, sim.seed)
    specs = integrity.chunk_specs(sim.paths, sim.chunk_paths, save_prices, sim.steps,
                                  ctx.book.n_accounts)
    files = _finished_chunks(out, specs, ctx.identity) if resume else {}
    done = set(files)
    todo = [t for t in tasks if t.index not in done]
    manifest = {"status": "running", **_identity(scenario, save_prices),
                "scenario_name": scenario.name, "scenario_source": scenario.source,
                "scenario": scenario.document, "scenario_resolved": scenario.resolved(),
                "overrides": list(scenario.overrides),
                "n_chunks": len(tasks), "n_accounts": ctx.book.n_accounts,
                "layout_version": integrity.LAYOUT_VERSION, "versions": _versions(version)}
    if tilt is not None:
        manifest["rare_event"] = tilt.record()
    output.write_json(manifest, out / "manifest.json")
    bar = Progress(sim.paths, len(tasks), progress,
                   sum(t.n_paths for t in tasks if t.index in done), len(done))
    totals = aggregate.AccountTotals(ctx.tail_mode, risk.tail_size(sim.paths, min(ctx.levels)),
                                     ctx.levels, spread=ctx.sobol)
    seconds: dict[str, float] = {}
    if todo:  # here, so that workers load the kernels from the cache
        with compiled.watch():
            compile_kernels(ctx)
    compiled.done()
    results = None
    try:
        results = iter(backends.dispatch(run_chunk, ctx, todo, backend, jobs))
        for task in tasks:  # merge in chunk order, whatever finished first
            if task.index in done:
                totals.add(aggregate.load_chunk_partial(
                    out, task.index, task.first_path, ctx.symbols, ctx.inputs.s0,
                    ctx.acct_navk, ctx.tail_mode, sim.paths, ctx.levels, ctx.weighted))
                continue
            partial, secs, files[task.index] = next(results)
            totals.add(partial)
            for key, value in secs.items():
                seconds[key] = seconds.get(key, 0.0) + value
            bar.update(task.n_paths)
    finally:
        if hasattr(results, "close"):  # joblib's generator: its cleanup runs here, whole (a
            with run_dir.signals_deferred():  # signal inside it would be lost, printed)
                results.close()
        bar.close()
    stray = integrity.unexpected_files(out, specs)
    if stray:  # readers of the folders would include them; the summary too
        raise RunDirectoryError(f"{stray[0]}: appeared in the run directory while the run "
                                f"was writing it ({len(stray)} file(s) of no chunk); the "
                                "run is not finished: remove them, then --resume")
    greeks = account_greeks_usd(ctx.book, ctx.inputs.s0)
    liq = aggregate.liq_price_columns(liquidation_prices(ctx.book, ctx.rules, ctx.inputs.s0),
                                      ctx.symbols)
    written = {rel: entry for chunk_files in files.values() for rel, entry in chunk_files.items()}
    written["accounts.parquet"] = output.write_parquet(
        aggregate.accounts_table(ctx.book, totals, greeks, liq), out / "accounts.parquet",
        ctx.metadata)
    summary = summarise(out, scenario, None if tilt is None else tilt.record())
    n_bounded = summary["price_bounds"]["paths_bounded"]
    written["summary.json"] = output.write_json(summary, out / "summary.json")
    wall = time.perf_counter() - wall0
    manifest.update({
        "status": "complete",
        "jobs": jobs,
        "backend": backend,
        "n_accounts": ctx.book.n_accounts,
        "n_margin_units": ctx.book.n_units,
        "account_var_es_method": ctx.tail_mode,
        "chunks_run": len(todo),
        "timings_seconds": {"wall": wall, "compile": compiled.seconds,
                            **{f"{k}_cpu": v for k, v in seconds.items()}},
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "paths_price_bounded": n_bounded,
        "files": {rel: written[rel]["sha256"] for rel in sorted(written)},
        "rows": {rel: written[rel]["rows"] for rel in sorted(written) if "rows" in written[rel]},
    })
    output.write_json(manifest, out / "manifest.json")
    return RunResult(out_dir=out, summary=summary, n_paths=sim.paths, wall_seconds=wall,
                     chunks_run=len(todo))


def _version() -> str:
    from simulator._version import __version__

    return __version__


def _versions(version: str) -> dict[str, str]:
    out = {"marginsim": version, "python": platform.python_version()}
    for dist in ("numpy", "numba", "scipy", "pyarrow", "joblib", "llvmlite"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out
