"""``marginsim verify DIR``: check a run (or sweep) directory against its manifest.

A complete run's ``manifest.json`` lists every other file with its SHA-256 (``files``) and
every Parquet file's row count (``rows``). Verification checks, independently of how the
run was written:

- every listed file is present and has the listed checksum;
- every Parquet file reads to the end, with the listed number of rows, and the number the
  run's layout implies (a ``paths/`` part: its chunk's paths; ``chunks/accounts-*`` and
  ``accounts.parquet``: one row per account; a ``prices/`` or ``prices_no_impact/`` part:
  saved paths x (steps + 1));
- each of ``n_chunks`` chunks has its parts: ``paths/``, ``events/``, ``chunks/accounts-``,
  ``chunks/pnl-`` and, for chunks holding one of the first ``save_prices`` paths,
  ``prices/`` and ``prices_no_impact/``; no other file sits in those folders (readers of a
  folder would include it);
- each chunk's record (``chunks/chunk-NNNNN.json``) names the run's scenario, seed and
  paths and lists the same checksums as the manifest;
- every Parquet file names the run's scenario and seed (and its chunk) in its metadata,
  and its page checksums hold;
- no temporary file of an interrupted write (``.NAME.PID.tmp``) is left anywhere;
- no process holds the directory's lock (a run still writing it is not yet verifiable).

Only files inside the run directory are read: a manifest naming a path outside it, or a
symbolic link, is a problem, never followed. A manifest's chunk count must agree with its
paths and chunk size and stay within :data:`simulator.config.limits.MAX_CHUNKS`.

A run whose manifest still says ``running`` was interrupted: its finished chunks are
checked against their records and the report says how to finish it with ``--resume``. A
sweep directory's points are each verified as runs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from simulator.config.limits import MAX_CHUNKS
from simulator.errors import MarginsimError
from simulator.input_files import read_regular_text
from simulator.results import integrity
from simulator.results import lock as run_lock
from simulator.results.atomic import sha256_file
from simulator.results.integrity import DATASETS
from simulator.results.rundir import leftover_staging


@dataclass
class VerifyReport:
    """What :func:`verify` found.

    Attributes
    ----------
    problems : list of str
        One line per problem, each starting with the file (or directory) concerned.
    notes : list of str
        Remarks that are not problems (for example an older manifest without row counts).
    summary : str
        What was checked, for the ``ok`` line.
    """

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: str = ""

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems


def verify(path: str | Path) -> VerifyReport:
    """Verify a run directory or a sweep directory.

    Parameters
    ----------
    path : str or Path
        A directory with ``manifest.json`` (a run) or ``sweep.json`` (a sweep).

    Returns
    -------
    VerifyReport

    Raises
    ------
    MarginsimError
        If ``path`` is neither a run nor a sweep directory.
    """
    path = Path(path)
    if not path.is_dir():
        raise MarginsimError(f"{path}: no such directory (verify takes a run or sweep "
                             "directory)")
    if (path / "manifest.json").is_file():
        report = VerifyReport()
        _check_not_locked(path, report)
        report.summary = _verify_run(path, report)
        report.notes += [f"note: {p}: left by an interrupted --force run (not part of this "
                         "run; remove it once no run is writing there)"
                         for p in leftover_staging(path)]
        return report
    if (path / "sweep.json").is_file():
        report = _verify_sweep(path)
        _check_not_locked(path, report)
        return report
    raise MarginsimError(f"{path}: not a run or sweep directory (no manifest.json or "
                         "sweep.json)")


def _check_not_locked(path: Path, report: VerifyReport) -> None:
    owner = run_lock.holder(path)
    if owner is not None:
        report.problems.append(f"{path}: in use by a live marginsim process "
                               f"({run_lock.describe(owner)}); its files may still change: "
                               "verify once it has finished")


@dataclass(frozen=True)
class _Layout:
    """The files a run's manifest implies, with the rows each must hold (None: any)."""

    specs: list[integrity.ChunkSpec]
    n_accounts: int | None
    records: bool

    @property
    def n_chunks(self) -> int:
        return len(self.specs)

    def all_files(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for spec in self.specs:
            out.update(spec.files)
            if self.records:
                out[spec.record] = None
        return out


def _steps(manifest: dict[str, Any]) -> int | None:
    """``simulation.steps`` of the manifest's resolved scenario (None if not there)."""
    resolved = manifest.get("scenario_resolved")
    simulation = resolved.get("simulation") if isinstance(resolved, dict) else None
    steps = simulation.get("steps") if isinstance(simulation, dict) else None
    return steps if isinstance(steps, int) and not isinstance(steps, bool) else None


def _layout(manifest: dict[str, Any]) -> _Layout:
    n_accounts = manifest.get("n_accounts")
    specs = integrity.chunk_specs(int(manifest["paths"]), int(manifest["chunk_paths"]),
                                  int(manifest.get("save_prices") or 0), _steps(manifest),
                                  n_accounts)
    records = manifest.get("layout_version", 1) >= integrity.RECORDS_SINCE
    return _Layout(specs, n_accounts, records)


def _read_manifest(run_dir: Path, report: VerifyReport) -> dict[str, Any] | None:
    where = run_dir / "manifest.json"
    try:
        manifest = json.loads(read_regular_text(where))
    except (OSError, ValueError) as exc:
        report.problems.append(f"{where}: cannot be read ({exc}); nothing else can be checked")
        return None
    missing = [k for k in ("paths", "chunk_paths", "n_chunks", "status")
               if not isinstance(manifest, dict) or k not in manifest]
    if missing:
        report.problems.append(f"{where}: not a marginsim manifest (no {', '.join(missing)}); "
                               "nothing else can be checked")
        return None
    wrong = [f"{k} = {manifest[k]!r}" for k in ("paths", "chunk_paths", "n_chunks")
             if isinstance(manifest[k], bool) or not isinstance(manifest[k], int)
             or manifest[k] < (0 if k == "paths" else 1)]
    wrong += [f"{k} = {manifest[k]!r}" for k, kind in (("save_prices", int), ("files", dict),
                                                       ("rows", dict), ("n_accounts", int),
                                                       ("layout_version", int), ("seed", int),
                                                       ("scenario_sha256", str),
                                                       ("scenario_resolved", dict))
              if manifest.get(k) is not None and (not isinstance(manifest[k], kind)
                                                  or isinstance(manifest[k], bool))]
    wrong += [f"no {k}" for k in ("scenario_sha256", "seed") if k not in manifest]
    wrong += [f"{name}[{rel!r}] = {value!r}" for name, kind in (("files", str), ("rows", int))
              if isinstance(manifest.get(name), dict)
              for rel, value in manifest[name].items()
              if not isinstance(value, kind) or isinstance(value, bool)][:3]
    if not wrong and manifest["n_chunks"] != -(-manifest["paths"] // manifest["chunk_paths"]):
        wrong.append(f"n_chunks = {manifest['n_chunks']!r} for {manifest['paths']!r} paths in "
                     f"chunks of {manifest['chunk_paths']!r}")
    if not wrong and manifest["n_chunks"] > MAX_CHUNKS:
        wrong.append(f"n_chunks = {manifest['n_chunks']!r}, more than a run can have "
                     f"({MAX_CHUNKS:,})")
    if wrong:
        report.problems.append(f"{where}: not a marginsim manifest ({', '.join(wrong)}); "
                               "nothing else can be checked")
        return None
    outside = [rel for rel in (manifest.get("files") or {}) if not _inside(rel)]
    if outside:
        report.problems.append(f"{where}: lists files outside the run directory "
                               f"({', '.join(map(repr, outside[:3]))}); they are not read, "
                               "and nothing else can be checked")
        return None
    return manifest


def _inside(rel: Any) -> bool:
    """Whether ``rel`` is a plain relative path that stays inside the run directory."""
    return (isinstance(rel, str) and rel != "" and "\\" not in rel and "\0" not in rel
            and not rel.startswith("/") and all(part not in ("", ".", "..")
                                                for part in rel.split("/")))


def _parquet_rows(path: Path) -> int:
    """Rows of a Parquet file, read to the end (every page decompressed and decoded, page
    checksums checked where the file has them)."""
    n = 0
    with pq.ParquetFile(path, page_checksum_verification=True) as f:
        for batch in f.iter_batches(batch_size=65536):
            n += batch.num_rows
    return n


def _check_parquet(run_dir: Path, rel: str, expected: list[tuple[int | None, str]],
                   report: VerifyReport) -> int | None:
    """Read ``rel`` to the end; compare its row count to each ``(rows, source)``."""
    try:
        n = _parquet_rows(run_dir / rel)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types on bad files
        report.problems.append(f"{run_dir / rel}: unreadable Parquet file (truncated or "
                               f"corrupt): {str(exc).splitlines()[0]}")
        return None
    for rows, source in expected:
        if rows is not None and n != rows:
            report.problems.append(f"{run_dir / rel}: {n:,} rows, {source} says {rows:,}")
            break
    return n


def _is_temporary(name: str) -> bool:
    return re.fullmatch(r"\..+\.\d+\.tmp", name) is not None


def _stray_files(run_dir: Path, layout: _Layout, report: VerifyReport, hint: str) -> None:
    """Temporary files anywhere; symbolic links anywhere (never followed); files of no
    chunk in the per-chunk folders."""
    known = layout.all_files()
    for path in sorted(_walk(run_dir)):
        rel = path.relative_to(run_dir).as_posix()
        if path.is_symlink():
            report.problems.append(f"{path}: a symbolic link (marginsim writes none; not "
                                   "followed)")
        elif path.is_file() and _is_temporary(path.name):
            report.problems.append(f"{path}: stray temporary file left by an interrupted "
                                   f"write{hint}")
        elif (path.is_file() and not path.name.startswith(".")
              and rel.split("/", 1)[0] in DATASETS and rel not in known):
            report.problems.append(f"{path}: unexpected file, part of none of the run's "
                                   f"{layout.n_chunks} chunks (readers of "
                                   f"{rel.split('/', 1)[0]}/ would include it)")


def _walk(top: Path) -> list[Path]:
    """Every entry under ``top``, without following symbolic links."""
    out = []
    for folder, dirs, names in os.walk(top, followlinks=False):
        base = Path(folder)
        out += [base / n for n in names]
        out += [base / d for d in dirs if (base / d).is_symlink()]
    return out


def _chunk_of(rel: str) -> int | None:
    m = re.search(r"-(\d{5,})\.parquet$", rel)
    return int(m.group(1)) if m and rel.split("/", 1)[0] in DATASETS else None


def _check_record(run_dir: Path, spec: integrity.ChunkSpec, identity: dict[str, Any],
                  listed: dict[str, str], report: VerifyReport) -> None:
    """A complete run's chunk record agrees with the run and with manifest.json."""
    where = run_dir / spec.record
    try:
        record = json.loads(read_regular_text(where))
    except (OSError, ValueError):
        return  # reported as missing or by its checksum
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        report.problems.append(f"{where}: not a chunk record")
        return
    expected = {"chunk": spec.index, "first_path": spec.first_path, "n_paths": spec.n_paths,
                **identity}
    wrong = [f"{k} {record.get(k)!r}, expected {v!r}" for k, v in expected.items()
             if record.get(k) != v]
    files = record["files"]
    if set(files) != set(spec.files):
        wrong.append(f"lists {sorted(files)}")
    wrong += [f"another checksum of {rel} than manifest.json" for rel in sorted(files)
              if rel in listed and isinstance(files[rel], dict)
              and files[rel].get("sha256") != listed[rel]]
    if wrong:
        report.problems.append(f"{where}: does not match the run ({'; '.join(wrong)})")


def _verify_run(run_dir: Path, report: VerifyReport) -> str:
    """Check one run directory; return the summary of what was checked."""
    manifest = _read_manifest(run_dir, report)
    if manifest is None:
        return ""
    layout = _layout(manifest)
    identity = {"scenario_sha256": manifest.get("scenario_sha256"),
                "seed": manifest.get("seed")}
    if manifest["status"] != "complete":
        return _verify_incomplete(run_dir, manifest, layout, identity, report)
    _stray_files(run_dir, layout, report, "")
    files: dict[str, str] = manifest.get("files") or {}
    rows: dict[str, int] = manifest.get("rows") or {}
    if "rows" not in manifest:
        report.notes.append(f"note: {run_dir / 'manifest.json'}: no row counts (written by "
                            "an older marginsim); rows checked against the run's layout only")
    if not layout.records:
        report.notes.append(f"note: {run_dir / 'manifest.json'}: no chunk records (written "
                            "by an older marginsim); files checked against the manifest only")
    expected = {**layout.all_files(), "accounts.parquet": layout.n_accounts,
                "summary.json": None}
    for rel in expected:
        if rel not in files and (run_dir / rel).is_file():
            report.problems.append(f"{run_dir / rel}: not listed in manifest.json (no "
                                   "checksum to check it against)")
    for rel in sorted(set(files) | set(expected)):
        path = run_dir / rel
        if path.exists() and not integrity.plain_file(run_dir, rel):
            report.problems.append(f"{path}: reached through a symbolic link; not read")
            continue
        if not path.is_file():
            listed = " (listed in manifest.json)" if rel in files else ""
            report.problems.append(f"{path}: missing{listed}")
            continue
        if rel in files and sha256_file(path) != files[rel]:
            report.problems.append(f"{path}: checksum differs from manifest.json (the file "
                                   "was changed or is corrupt)")
        if rel.endswith(".parquet"):
            n = _check_parquet(run_dir, rel, [(rows.get(rel), "manifest.json"),
                                              (expected.get(rel), "the run's layout")], report)
            problem = None if n is None else integrity.metadata_problem(path, identity,
                                                                        _chunk_of(rel))
            if problem:
                report.problems.append(f"{path}: {problem}")
    if layout.records:
        for spec in layout.specs:
            _check_record(run_dir, spec, identity, files, report)
    return (f"complete run, {layout.n_chunks} chunk(s), {int(manifest['paths']):,} paths, "
            f"{len(files)} files checked")


def _verify_incomplete(run_dir: Path, manifest: dict[str, Any], layout: _Layout,
                       identity: dict[str, Any], report: VerifyReport) -> str:
    """Check the finished chunks of an interrupted run and say how to finish it."""
    _stray_files(run_dir, layout, report, " (--resume deletes it)")
    digest = cache(sha256_file)
    done, missing = 0, []
    for spec in layout.specs:
        names = [*spec.files, spec.record] if layout.records else list(spec.files)
        present = [rel for rel in names if (run_dir / rel).is_file()]
        complete = len(present) == len(names)
        if layout.records and (run_dir / spec.record).is_file():
            _, problem = integrity.check_chunk(run_dir, spec, identity, digest)
            if problem:
                report.problems.append(f"{problem}; --resume runs chunk {spec.index} again")
                continue
        for rel in present:
            if rel.endswith(".parquet"):
                _check_parquet(run_dir, rel, [(spec.files[rel], "the run's layout")], report)
        if complete:
            done += 1
        elif present:
            absent = ", ".join(rel for rel in names if rel not in present)
            report.problems.append(f"{run_dir}: chunk {spec.index} is partly written ({absent} "
                                   "missing); --resume runs it again")
        else:
            missing.append(spec.index)
    report.problems.append(
        f"{run_dir}: incomplete run (manifest status {manifest['status']!r}): {done} of "
        f"{layout.n_chunks} chunks complete{_ranges(missing)}, no accounts.parquet or "
        f"final checksums yet; it can be resumed: {_resume_command(run_dir, manifest)}")
    return ""


def _resume_command(run_dir: Path, manifest: dict[str, Any]) -> str:
    """The command that finishes the interrupted run of ``manifest``."""
    source = shlex.quote(str(manifest.get("scenario_source", "SCENARIO")))
    overrides = manifest.get("overrides")
    sets = "".join(f" --set {shlex.quote(str(o))}" for o in overrides) \
        if isinstance(overrides, list) else ""
    save = manifest.get("save_prices") or 0
    tail = (f" --paths {manifest['paths']} --seed {manifest.get('seed')}"
            f"{f' --save-prices {save}' if save else ''}")
    if not isinstance(overrides, list):  # an older manifest: the overrides are not known
        tail += " (with the same --set values)"
    return f"marginsim run {source} --out {shlex.quote(str(run_dir))} --resume{sets}{tail}"


def _ranges(chunks: list[int]) -> str:
    """``"; chunks 3-5, 9 not run"`` (empty for none)."""
    if not chunks:
        return ""
    parts, start = [], chunks[0]
    for a, b in zip(chunks, [*chunks[1:], None], strict=True):
        if b != a + 1:
            parts.append(f"{start}" if start == a else f"{start}-{a}")
            start = b
    return f"; chunk(s) {', '.join(parts)} not run"


def _check_sweep_checksums(sweep_dir: Path, info: dict[str, Any], points: list[str],
                           report: VerifyReport) -> None:
    """``sweep.parquet`` and every point's ``manifest.json`` have the SHA-256 that
    ``sweep.json`` recorded (a table edited, a point replaced by another run)."""
    files, recorded = info.get("files"), info.get("points")
    if info.get("status") != "complete":
        return
    if not isinstance(files, dict) or not isinstance(recorded, dict):
        report.notes.append(f"note: {sweep_dir / 'sweep.json'}: no checksums (written by an "
                            "older marginsim); the table and points checked as they are")
        return
    table = sweep_dir / "sweep.parquet"
    if table.is_file() and not table.is_symlink() \
            and sha256_file(table) != files.get("sweep.parquet"):
        report.problems.append(f"{table}: checksum differs from sweep.json (the table was "
                               "changed or is corrupt)")
    for rel in points:
        manifest = sweep_dir / rel / "manifest.json"
        if rel not in recorded:
            report.problems.append(f"{sweep_dir / rel}: not a point sweep.json records")
        elif _inside(rel) and manifest.is_file() and not manifest.is_symlink() \
                and not (sweep_dir / rel).is_symlink() \
                and sha256_file(manifest) != recorded[rel]:
            report.problems.append(f"{manifest}: checksum differs from sweep.json (the point "
                                   "was run again or replaced since the sweep)")


def _verify_sweep(sweep_dir: Path) -> VerifyReport:
    """Check a sweep directory: ``sweep.json``, ``sweep.parquet`` and every point's run."""
    report = VerifyReport()
    try:
        info = json.loads(read_regular_text(sweep_dir / "sweep.json"))
    except (OSError, ValueError) as exc:
        report.problems.append(f"{sweep_dir / 'sweep.json'}: cannot be read ({exc})")
        info = {}
    if not isinstance(info, dict):
        report.problems.append(f"{sweep_dir / 'sweep.json'}: not a marginsim sweep.json "
                               f"(expected a JSON object, got {type(info).__name__})")
        info = {}
    table_path = sweep_dir / "sweep.parquet"
    points: list[str] = []
    if table_path.is_file():
        try:
            points = [str(p) for p in pq.read_table(table_path, columns=["point_dir"])
                      .column(0).to_pylist()]
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types on bad files
            report.problems.append(f"{table_path}: unreadable Parquet file: "
                                   f"{str(exc).splitlines()[0]}")
    elif info.get("status") == "running":
        report.problems.append(f"{sweep_dir}: incomplete sweep (sweep.json status "
                               "'running', no sweep.parquet): run it again with --force")
    else:
        report.problems.append(f"{table_path}: missing")
    _check_sweep_checksums(sweep_dir, info, points, report)
    on_disk = sorted(p.relative_to(sweep_dir).as_posix()
                     for p in (sweep_dir / "points").glob("*") if p.is_dir())
    if info.get("status") == "complete":
        report.problems += [f"{sweep_dir / rel}: a point directory that sweep.parquet does not "
                            "list" for rel in on_disk if rel not in points]
    outside = [rel for rel in points if not _inside(rel)]
    if outside:
        report.problems.append(f"{table_path}: names point directories outside the sweep "
                               f"({', '.join(map(repr, outside[:3]))}); not read")
        points = [rel for rel in points if _inside(rel)]
    for rel in sorted(set(points) | set(on_disk)):
        point = sweep_dir / rel
        if point.is_symlink():
            report.problems.append(f"{point}: a symbolic link (marginsim writes none; not "
                                   "followed)")
            continue
        if not (point / "manifest.json").is_file():
            report.problems.append(f"{point}: missing (a point of sweep.parquet)"
                                   if rel in points else f"{point}: no manifest.json")
            continue
        _verify_run(point, report)
    report.summary = f"sweep, {len(points)} point(s), each a verified run"
    return report
