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
- no temporary file of an interrupted write (``.NAME.PID.tmp``) is left anywhere.

A run whose manifest still says ``running`` was interrupted: its finished chunks are
checked the same way (without checksums, which are written at the end) and the report says
how to finish it with ``--resume``. A sweep directory's points are each verified as runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from .errors import MarginsimError
from .output import is_temporary, leftover_staging, part_name, sha256_file

#: folders holding one file per chunk
DATASETS = ("paths", "events", "chunks", "prices", "prices_no_impact")


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
        report.summary = _verify_run(path, report)
        report.notes += [f"note: {p}: left by an interrupted --force run (not part of this "
                         "run; remove it once no run is writing there)"
                         for p in leftover_staging(path)]
        return report
    if (path / "sweep.json").is_file():
        return _verify_sweep(path)
    raise MarginsimError(f"{path}: not a run or sweep directory (no manifest.json or "
                         "sweep.json)")


@dataclass(frozen=True)
class _Layout:
    """The files a run's manifest implies, with the rows each must hold (None: any)."""

    n_chunks: int
    chunk_files: dict[int, dict[str, int | None]]
    n_accounts: int | None

    def all_files(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for files in self.chunk_files.values():
            out.update(files)
        return out


def _layout(manifest: dict[str, Any]) -> _Layout:
    n_paths, chunk_paths = int(manifest["paths"]), int(manifest["chunk_paths"])
    n_chunks = int(manifest["n_chunks"])
    save = int(manifest.get("save_prices", 0))
    n_accounts = manifest.get("n_accounts")
    steps = (manifest.get("scenario_resolved") or {}).get("simulation", {}).get("steps")
    chunks: dict[int, dict[str, int | None]] = {}
    for c in range(n_chunks):
        first = c * chunk_paths
        n = min(chunk_paths, n_paths - first)
        name = part_name(c)
        files: dict[str, int | None] = {
            f"paths/{name}": n, f"events/{name}": None,
            f"chunks/accounts-{c:05d}.parquet": n_accounts,
            f"chunks/pnl-{c:05d}.parquet": None}
        if first < save:
            n_save = min(n, save - first)
            for sub in ("prices", "prices_no_impact"):
                files[f"{sub}/{name}"] = None if steps is None else n_save * (int(steps) + 1)
        chunks[c] = files
    return _Layout(n_chunks, chunks, n_accounts)


def _read_manifest(run_dir: Path, report: VerifyReport) -> dict[str, Any] | None:
    where = run_dir / "manifest.json"
    try:
        manifest = json.loads(where.read_text())
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
                                                       ("rows", dict), ("n_accounts", int))
              if manifest.get(k) is not None and not isinstance(manifest[k], kind)]
    if wrong:
        report.problems.append(f"{where}: not a marginsim manifest ({', '.join(wrong)}); "
                               "nothing else can be checked")
        return None
    return manifest


def _parquet_rows(path: Path) -> int:
    """Rows of a Parquet file, read to the end (every page decompressed and decoded)."""
    n = 0
    with pq.ParquetFile(path) as f:
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


def _stray_files(run_dir: Path, layout: _Layout, report: VerifyReport, hint: str) -> None:
    """Temporary files anywhere; files of no chunk in the per-chunk folders."""
    known = layout.all_files()
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir).as_posix()
        if path.is_file() and is_temporary(path.name):
            report.problems.append(f"{path}: stray temporary file left by an interrupted "
                                   f"write{hint}")
        elif (path.is_file() and not path.name.startswith(".")
              and rel.split("/", 1)[0] in DATASETS and rel not in known):
            report.problems.append(f"{path}: unexpected file, part of none of the run's "
                                   f"{layout.n_chunks} chunks (readers of "
                                   f"{rel.split('/', 1)[0]}/ would include it)")


def _verify_run(run_dir: Path, report: VerifyReport) -> str:
    """Check one run directory; return the summary of what was checked."""
    manifest = _read_manifest(run_dir, report)
    if manifest is None:
        return ""
    layout = _layout(manifest)
    if manifest["status"] != "complete":
        return _verify_incomplete(run_dir, manifest, layout, report)
    _stray_files(run_dir, layout, report, "")
    files: dict[str, str] = manifest.get("files") or {}
    rows: dict[str, int] = manifest.get("rows") or {}
    if "rows" not in manifest:
        report.notes.append(f"note: {run_dir / 'manifest.json'}: no row counts (written by "
                            "an older marginsim); rows checked against the run's layout only")
    expected = {**layout.all_files(), "accounts.parquet": layout.n_accounts,
                "summary.json": None}
    for rel in expected:
        if rel not in files and (run_dir / rel).is_file():
            report.problems.append(f"{run_dir / rel}: not listed in manifest.json (no "
                                   "checksum to check it against)")
    for rel in sorted(set(files) | set(expected)):
        path = run_dir / rel
        if not path.is_file():
            listed = " (listed in manifest.json)" if rel in files else ""
            report.problems.append(f"{path}: missing{listed}")
            continue
        if rel in files and sha256_file(path) != files[rel]:
            report.problems.append(f"{path}: checksum differs from manifest.json (the file "
                                   "was changed or is corrupt)")
        if rel.endswith(".parquet"):
            _check_parquet(run_dir, rel, [(rows.get(rel), "manifest.json"),
                                          (expected.get(rel), "the run's layout")], report)
    return (f"complete run, {layout.n_chunks} chunk(s), {int(manifest['paths']):,} paths, "
            f"{len(files)} files checked")


def _verify_incomplete(run_dir: Path, manifest: dict[str, Any], layout: _Layout,
                       report: VerifyReport) -> str:
    """Check the finished chunks of an interrupted run and say how to finish it."""
    hint = " (--resume deletes it)"
    _stray_files(run_dir, layout, report, hint)
    done, missing = 0, []
    for c, files in layout.chunk_files.items():
        present = [rel for rel in files if (run_dir / rel).is_file()]
        for rel in present:
            if rel.endswith(".parquet"):
                _check_parquet(run_dir, rel, [(files[rel], "the run's layout")], report)
        if len(present) == len(files):
            done += 1
        elif present:
            absent = ", ".join(rel for rel in files if rel not in present)
            report.problems.append(f"{run_dir}: chunk {c} is partly written ({absent} "
                                   "missing); --resume runs it again")
        else:
            missing.append(c)
    source = manifest.get("scenario_source", "SCENARIO")
    report.problems.append(
        f"{run_dir}: incomplete run (manifest status {manifest['status']!r}): {done} of "
        f"{layout.n_chunks} chunks complete{_ranges(missing)}, no accounts.parquet or "
        f"final checksums yet; it can be resumed: marginsim run {source} --out {run_dir} "
        "--resume (with the same --set, --paths, --seed and --save-prices)")
    return ""


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


def _verify_sweep(sweep_dir: Path) -> VerifyReport:
    """Check a sweep directory: ``sweep.json``, ``sweep.parquet`` and every point's run."""
    report = VerifyReport()
    try:
        info = json.loads((sweep_dir / "sweep.json").read_text())
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
    on_disk = sorted(p.relative_to(sweep_dir).as_posix()
                     for p in (sweep_dir / "points").glob("*") if p.is_dir())
    for rel in sorted(set(points) | set(on_disk)):
        point = sweep_dir / rel
        if not (point / "manifest.json").is_file():
            report.problems.append(f"{point}: missing (a point of sweep.parquet)"
                                   if rel in points else f"{point}: no manifest.json")
            continue
        _verify_run(point, report)
    report.summary = f"sweep, {len(points)} point(s), each a verified run"
    return report
