"""Command line: ``marginsim run | validate | scenarios | calibrate | sweep | report | verify``.

Bad input ends with one line on stderr naming the file, the key and what is wrong, and
exit status 2; nothing is written. So does every operating-system error (a full disk, a
permission), a memory error, a worker process that died and input nested too deeply.
Ctrl-C exits with 130 and SIGTERM, handled the same way, with 143: one line saying what
was kept and how to finish it. Warnings are one line each, ``marginsim: warning: ...``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simulator.errors import Interrupted, MarginsimError
from simulator.execution.backends import BACKENDS
from simulator.input_files import read_regular_text
from simulator.results.lock import RunDirectoryWarning

FLAGSHIP = "two-asset-crash"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"marginsim: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The ``marginsim`` argument parser."""
    parser = _Parser(prog="marginsim", description="Monte Carlo stress testing of margin "
                     "accounts: liquidation cascades, bad debt, insurance fund and ADL.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p_run = sub.add_parser("run", help="run a scenario into a run directory")
    p_run.add_argument("scenario", nargs="?", default=FLAGSHIP,
                       help=f"scenario file or built-in name (default: {FLAGSHIP})")
    p_run.add_argument("--paths", type=int, help="number of Monte Carlo paths")
    p_run.add_argument("--seed", type=int, help="random seed")
    p_run.add_argument("--events", choices=("all", "liquidations", "none"),
                       help="rows of events/: all (default), liquidations (no ADL or "
                       "socialised-loss rows) or none; paths, accounts and the summary are "
                       "the same whichever is chosen (simulation.events)")
    p_run.add_argument("--rare", metavar="EVENT",
                       help="rare-event mode: importance sampling towards EVENT, a condition on a "
                       "paths/ column (COLUMN>VALUE, >=, <, <=: bad_debt>1e6, "
                       "min_price_BTC<30000) or a name (fund_depletion, socialised_loss, "
                       "bad_debt, adl, liquidation, cascade); every estimate is weighted "
                       "(simulation.rare_event)")
    p_run.add_argument("--jobs", type=int, default=1,
                       help="worker processes (default 1; -1 = every core)")
    p_run.add_argument("--out", type=Path, help="run directory (default runs/<name>-<time>)")
    p_run.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="override a scenario key, e.g. "
                       "venue.liquidation_fee_rate=0.01 (repeatable)")
    p_run.add_argument("--save-prices", type=int, default=0, metavar="K",
                       help="write the mark price paths of the first K paths to prices/")
    p_run.add_argument("--resume", action="store_true",
                       help="finish an interrupted run in --out: only missing chunks are run")
    p_run.add_argument("--force", action="store_true",
                       help="replace the run directory --out (only one with a manifest.json); "
                       "the old run is removed once the new one is complete")
    p_run.add_argument("--backend", choices=BACKENDS, default="loky",
                       help="where chunks run: local processes (loky, default), a Dask "
                       "cluster (needs --scheduler) or Ray (a cluster at --scheduler, or "
                       "a local instance of --jobs CPUs)")
    p_run.add_argument("--scheduler", metavar="ADDRESS",
                       help="Dask scheduler address (tcp://127.0.0.1:8786) or Ray address "
                       "(HOST:6379, ray://HOST:10001, auto)")
    p_run.add_argument("--quiet", action="store_true", help="no progress line or summary table")

    p_val = sub.add_parser("validate", help="check a scenario and describe it")
    p_val.add_argument("scenario")
    p_val.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE")

    sub.add_parser("scenarios", help="list the built-in scenarios")

    p_cal = sub.add_parser("calibrate", help="fit a price model to a price file and print a "
                           "[market] block")
    p_cal.add_argument("prices", help="CSV or Parquet: a timestamp column, then one price "
                       "column per symbol")
    p_cal.add_argument("--model", choices=("gbm", "student_t", "merton", "garch"),
                       default="gbm", help="model to fit (default gbm)")

    p_sw = sub.add_parser("sweep", help="run a parameter grid on common random numbers "
                          "(or search a threshold with --target)")
    p_sw.add_argument("scenario", help="built-in scenario name or scenario file")
    p_sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                      help="a scenario key and its values (repeat for a cartesian grid)")
    p_sw.add_argument("--target", metavar="METRIC<=VALUE",
                      help="find the smallest value of the one --grid KEY=LO,HI meeting "
                      "the goal (VALUE: a number or a scenario key), by bisection")
    p_sw.add_argument("--tol", type=float, default=0.01,
                      help="relative width of the final --target bracket (default 0.01)")
    p_sw.add_argument("--paths", type=int, help="Monte Carlo paths of every point")
    p_sw.add_argument("--seed", type=int, help="random seed (shared by every point)")
    p_sw.add_argument("--rare", metavar="EVENT", help="rare-event mode at every point: one "
                      "tilt, tuned on the scenario as given, for all of them (see run --rare)")
    p_sw.add_argument("--jobs", type=int, default=1, help="worker processes of each run")
    p_sw.add_argument("--out", type=Path, help="sweep directory (default "
                      "runs/<name>-sweep-<time>)")
    p_sw.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE", help="override a scenario key at every point")
    p_sw.add_argument("--force", action="store_true",
                      help="replace the sweep directory --out (only one with a sweep.json); "
                      "the old sweep is removed once the new one is complete")
    p_sw.add_argument("--quiet", action="store_true", help="no progress or table")

    p_rep = sub.add_parser("report", help="write DIR/report.html (figures) and print the "
                           "summary table of a run or sweep directory")
    p_rep.add_argument("run_dir", type=Path)
    p_rep.add_argument("--no-html", action="store_true",
                       help="only print the table (no report.html, no matplotlib needed)")
    p_rep.add_argument("--unverified", action="store_true",
                       help="report a directory that fails `marginsim verify` anyway (with a "
                       "warning line); by default such a directory is refused")

    p_ver = sub.add_parser("verify", help="check a run (or sweep) directory against its "
                           "manifest: files, checksums, Parquet parts and row counts")
    p_ver.add_argument("run_dir", type=Path)
    return parser


def _overrides(args: argparse.Namespace) -> list[str]:
    extra = []
    if getattr(args, "paths", None) is not None:
        extra.append(f"simulation.paths={args.paths}")
    if getattr(args, "seed", None) is not None:
        extra.append(f"simulation.seed={args.seed}")
    if getattr(args, "events", None) is not None:
        extra.append(f"simulation.events={args.events}")
    if getattr(args, "rare", None) is not None:
        extra.append(f"simulation.rare_event={args.rare}")
    return list(args.overrides) + extra


def _cmd_run(args: argparse.Namespace) -> int:
    from simulator.config.scenario import load_scenario
    from simulator.execution.runner import run
    from simulator.report.text import summary_table

    if args.save_prices < 0:
        raise MarginsimError(f"--save-prices: must be >= 0, got {args.save_prices}")
    if args.jobs == 0 or args.jobs < -1:
        raise MarginsimError(f"--jobs: must be a positive number or -1, got {args.jobs}")
    scenario = load_scenario(args.scenario, _overrides(args))
    show = not args.quiet and sys.stderr.isatty()
    if args.resume and args.out is None:
        raise MarginsimError("--resume: give the run directory to finish with --out DIR")
    result = run(scenario, args.out, jobs=args.jobs, save_prices=args.save_prices,
                 progress=show, resume=args.resume, backend=args.backend,
                 scheduler=args.scheduler, force=args.force, notice=not args.quiet)
    try:
        _warn_price_bounds(result.summary, result.n_paths)
        _warn_leftover_staging(result.out_dir)
        if not args.quiet:
            print(summary_table(result.summary))
            print(f"{result.n_paths:,} paths ({result.chunks_run} chunks run) in "
                  f"{result.wall_seconds:.1f}s -> {result.out_dir}")
    except KeyboardInterrupt as exc:  # while printing: the run itself is complete
        raise Interrupted(f"the run is complete in {result.out_dir}",
                          getattr(exc, "signum", signal.SIGINT)) from None
    return 0


def _warn_price_bounds(summary: dict[str, Any], n_paths: int) -> None:
    """A warning line on stderr when prices reached the floor or cap on some paths."""
    bounds = summary.get("price_bounds") or {}
    k = bounds.get("paths_bounded", 0)
    if k:
        sys.stderr.write(f"marginsim: warning: a price reached its floor or cap "
                         f"({bounds['floor_ratio']:g} or {bounds['cap_ratio']:g} x its initial "
                         f"price) on {k:,} of {n_paths:,} paths; their results are bounded, "
                         "not exact (paths/ column price_bounded; docs/model.md 'Numerical "
                         "safety')\n")


def _warn_sweep_price_bounds(out_dir: Path, rows: list[dict[str, Any]]) -> None:
    """One warning line when prices reached their floor or cap at some points of a sweep."""
    bounded = []
    for row in rows:
        try:
            point = out_dir / str(row["point_dir"])
            summary = json.loads(read_regular_text(point / "summary.json"))
        except (KeyError, OSError, ValueError):
            continue
        if (summary.get("price_bounds") or {}).get("paths_bounded", 0):
            bounded.append(str(row["point_dir"]))
    if bounded:
        sys.stderr.write(f"marginsim: warning: a price reached its floor or cap on some paths "
                         f"of {len(bounded)} of {len(rows)} points ({', '.join(bounded[:5])}"
                         f"{', ...' if len(bounded) > 5 else ''}); their results are bounded, "
                         "not exact (each point's summary.json price_bounds; docs/model.md "
                         "'Numerical safety')\n")


def _warn_leftover_staging(out_dir: Path) -> None:
    """A warning line per directory that an interrupted ``--force`` left beside the run."""
    from simulator.results.rundir import leftover_staging

    for path in leftover_staging(out_dir):
        sys.stderr.write(f"marginsim: warning: {path} was left by an interrupted --force "
                         "run; remove it once no run is writing there\n")


def _cmd_verify(args: argparse.Namespace) -> int:
    from simulator.results.verify import verify

    report = verify(args.run_dir)
    for line in report.problems:
        print(line)
    for line in report.notes:
        print(line)
    if report.ok:
        print(f"ok: {args.run_dir}: {report.summary}")
        return 0
    print(f"{len(report.problems)} problem(s) in {args.run_dir}", file=sys.stderr)
    return 1


def _cmd_sweep(args: argparse.Namespace) -> int:
    from simulator.report.sweep_page import sweep_metrics
    from simulator.sweeps.sweep import (
        TABLE_METRICS,
        parse_grid,
        parse_target,
        sweep,
        sweep_table,
    )

    if args.jobs == 0 or args.jobs < -1:
        raise MarginsimError(f"--jobs: must be a positive number or -1, got {args.jobs}")
    if not 0.0 < args.tol < 1.0:
        raise MarginsimError(f"--tol: must be in (0, 1), got {args.tol}")
    grid = [parse_grid(spec) for spec in args.grid]
    target = parse_target(args.target) if args.target else None
    show = not args.quiet and sys.stderr.isatty()
    result = sweep(args.scenario, grid, overrides=_overrides(args), out_dir=args.out,
                   jobs=args.jobs, progress=show, target=target, rel_tol=args.tol,
                   force=args.force)
    _warn_sweep_price_bounds(result.out_dir, result.rows)
    if not args.quiet:
        keys = [k for k, _ in grid]
        print(sweep_table(result.rows, keys, sweep_metrics(keys, result.rows[0],
                                                           TABLE_METRICS)))
        if target is not None:
            found = ("none in the interval" if result.threshold is None
                     else f"{grid[0][0]} = {result.threshold:g}")
            print(f"target {target}: {found}")
        print(f"{len(result.rows)} points -> {result.out_dir}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from simulator.config.scenario import load_scenario
    from simulator.execution.budget import check_book
    from simulator.execution.prepare import prepare

    scenario = load_scenario(args.scenario, args.overrides)
    check_book(scenario)  # a book that cannot fit is refused before it is built
    book = prepare(scenario).book  # the book, path inputs, rules and index all build
    sim = scenario.simulation
    print(f"ok: {scenario.source}: {scenario.name!r}, {len(scenario.market.assets)} assets "
          f"({', '.join(scenario.market.symbols)}), {book.n_accounts:,} accounts "
          f"({book.n_units:,} margin units), {len(scenario.shocks)} shocks, "
          f"{sim.paths:,} paths x {sim.steps} steps over {sim.horizon_days:g} day(s)")
    return 0


def _cmd_scenarios(_: argparse.Namespace) -> int:
    from simulator.config.catalogue import builtin_scenarios, describe

    for name, path in builtin_scenarios().items():
        print(f"{name:<24} {describe(path)}")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from simulator.calibration.block import calibrate_main

    return calibrate_main(args.prices, args.model)


def _cmd_report(args: argparse.Namespace) -> int:
    from simulator.report.text import summary_table

    if not args.run_dir.is_dir():
        raise MarginsimError(f"{args.run_dir}: no such run or sweep directory")
    _check_before_report(args.run_dir, args.unverified)
    html_path = None
    if not args.no_html:
        from simulator.report.write import write_report

        html_path = write_report(args.run_dir)
    if (args.run_dir / "sweep.parquet").is_file():
        import pyarrow as pa
        import pyarrow.parquet as pq

        from simulator.report.sweep_page import grid_keys, sweep_metrics
        from simulator.sweeps.sweep import TABLE_METRICS, sweep_table

        table_path = args.run_dir / "sweep.parquet"
        try:
            table = pq.read_table(table_path)
        except (OSError, pa.ArrowException) as exc:
            raise MarginsimError(f"{table_path}: cannot read: "
                                 f"{str(exc).splitlines()[0]}") from None
        keys = grid_keys(args.run_dir, table.column_names)
        print(sweep_table(table.to_pylist(), keys,
                          sweep_metrics(keys, table.column_names, TABLE_METRICS)))
    else:
        _print_summary(args.run_dir, summary_table)
    if html_path is not None:
        print(f"report: {html_path}")
    return 0


def _check_before_report(run_dir: Path, unverified: bool) -> None:
    """Refuse to report a finished run or sweep that fails ``verify`` (edited, damaged or
    still being written), unless ``unverified``: then one warning line."""
    from simulator.results.verify import verify

    if not ((run_dir / "summary.json").is_file() or (run_dir / "sweep.parquet").is_file()):
        return  # nothing finished to report: the report's own message says what is missing
    try:
        problems = verify(run_dir).problems
    except MarginsimError as exc:  # neither a run's nor a sweep's: nothing to check against
        problems = [str(exc)]
    if not problems:
        return
    first = problems[0]
    more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
    if not unverified:
        raise MarginsimError(f"{run_dir}: fails verification, not reported ({first}{more}); "
                             f"see marginsim verify {run_dir}, or add --unverified to report "
                             "it anyway")
    _show_warning(f"{run_dir}: fails verification ({first}{more}); reported anyway "
                  "(--unverified): its figures may be wrong", UserWarning, "", 0)


def _print_summary(run_dir: Path, summary_table: Any) -> None:
    path = run_dir / "summary.json"
    try:
        summary = json.loads(read_regular_text(path))
    except (OSError, ValueError) as exc:
        raise MarginsimError(f"{path}: cannot read the run summary: {exc}") from None
    if not isinstance(summary, dict):
        raise MarginsimError(f"{path}: not a run summary (expected a JSON object, got "
                             f"{type(summary).__name__})")
    print(summary_table(summary))


def _one_line(text: str) -> str:
    """``text`` on one line whatever it holds (a file name or a library's text may hold a
    line break): breaks are written as the escapes \\n and \\r."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _show_warning(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: Any = None, line: str | None = None) -> None:
    sys.stderr.write(f"marginsim: warning: {_one_line(str(message))}\n")


#: a signal that came inside a C callback, to raise once out of it
_pending: list[int] = []


def _in_c_callback(frame: Any) -> bool:
    """Whether Python code called back from C (llvmlite's object cache, while Numba loads
    or compiles a kernel) is running: an exception raised there is printed as a traceback
    and dropped, so the signal waits until the callback has returned."""
    while frame is not None:
        if "llvmlite" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _on_signal(signum: int, frame: Any) -> None:
    """SIGINT and SIGTERM: an :class:`Interrupted` in the main thread (deferred by a few
    milliseconds while a C callback runs)."""
    if _in_c_callback(frame):
        _pending.append(signum)
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        return
    _pending.clear()
    raise Interrupted("", signum)


def _on_alarm(signum: int, frame: Any) -> None:
    if _pending:
        _on_signal(_pending[-1], frame)


@contextmanager
def _handled_signals_and_warnings() -> Iterator[None]:
    """Ctrl-C and SIGTERM raise :class:`Interrupted` (so that a run cleans up and says what
    it kept), warnings are one line each; the previous handlers are restored after."""
    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum, handler in ((signal.SIGINT, _on_signal), (signal.SIGTERM, _on_signal),
                                (signal.SIGALRM, _on_alarm)):
            old[signum] = signal.signal(signum, handler)
    with warnings.catch_warnings():
        warnings.simplefilter("always", RunDirectoryWarning)  # every run's, not once
        warnings.showwarning = _show_warning
        try:
            yield
        finally:
            if old:
                signal.setitimer(signal.ITIMER_REAL, 0)
            for signum, handler in old.items():
                signal.signal(signum, handler)
            _pending.clear()


def _error_line(exc: BaseException) -> str:
    """The one line for an error that is not bad input but the system's."""
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    if isinstance(exc, MemoryError):
        return "out of memory: lower simulation.chunk_paths, simulation.steps or --jobs"
    if isinstance(exc, RecursionError):
        return "input nested too deeply to process"
    return f"a worker process died ({str(exc).splitlines()[0] if str(exc) else exc!r})"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 for bad input or a system error, 130 after Ctrl-C, 143 after
        SIGTERM; ``verify``: 1 when it found problems.
    """
    status = _main(argv)
    _finished.append(status)
    return status


def _main(argv: list[str] | None) -> int:
    from concurrent.futures.process import BrokenProcessPool

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from simulator._version import __version__

        print(f"marginsim {__version__}")
        return 0
    handlers = {"run": _cmd_run, "sweep": _cmd_sweep, "validate": _cmd_validate,
                "scenarios": _cmd_scenarios,
                "calibrate": _cmd_calibrate, "report": _cmd_report, "verify": _cmd_verify}
    if args.command is None:
        parser.print_help()
        return 2
    try:
        with _handled_signals_and_warnings():
            status = handlers[args.command](args)
            _finished.append(status)  # a signal from here on ends with this status
            return status
    except MarginsimError as exc:
        sys.stderr.write(f"marginsim: error: {_one_line(str(exc))}\n")
        return 2
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        what = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
        detail = f": {_one_line(str(exc))}" if str(exc) else ""
        sys.stderr.write(f"marginsim: {what}{detail}\n")
        return 128 + int(signum)
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except (OSError, MemoryError, RecursionError, BrokenProcessPool) as exc:
        sys.stderr.write(f"marginsim: error: {_one_line(_error_line(exc))}\n")
        return 2


#: the status of the command that :func:`main` finished (for a signal that comes after)
_finished: list[int] = []


def _exit_now(signum: int, frame: Any) -> None:
    """Outside the command's work (start-up, clean-up at exit): end at once, with the
    finished command's status, or as a signal would (128 + its number)."""
    if _finished:
        os._exit(_finished[-1])
    os.write(2, b"marginsim: interrupted\n")
    os._exit(128 + signum)


def _ignore_late_signals() -> None:
    """The last clean-up step: the interpreter resets Python's handlers to the default
    when it finalises, where a signal would kill the process without a word; ignoring
    them is the same as ending with the command's status a moment later."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


def entry() -> None:
    """The ``marginsim`` console script: :func:`main`, with no signal able to turn into a
    traceback before it starts or after it is done (its output is flushed first; a late
    Ctrl-C or SIGTERM ends the process at once with the command's status)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _exit_now)
    atexit.register(_ignore_late_signals)  # registered first, so it runs last
    status = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    sys.exit(status)
