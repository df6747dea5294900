"""Chunk records: what each finished chunk wrote, with checksums, checked before any reuse.

A chunk writes its parts (``paths/``, ``events/``, ``chunks/accounts-``, ``chunks/pnl-`` and,
for chunks holding one of the first ``save_prices`` paths, ``prices/`` and
``prices_no_impact/``) and then, last, its record ``chunks/chunk-NNNNN.json``: the chunk's
index, first path and number of paths, the scenario's SHA-256 and seed, and the SHA-256,
size and row count of each part. The record marks the chunk complete.

``--resume`` accepts a chunk only when its record matches the run (scenario, seed, paths)
and every part matches its record byte for byte and names the run's scenario, seed and
chunk in its Parquet metadata; any other chunk is run again. ``marginsim verify`` makes
the same checks. A flipped bit, a truncated or deleted part, or a part copied from another
scenario or chunk is therefore never accepted.

This module knows the run directory's per-chunk layout; it imports :mod:`simulator.results.atomic`
and :mod:`simulator.input_files` only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from simulator.input_files import read_regular_text
from simulator.results.atomic import part_name, sha256_file, write_json

#: folders holding one file per chunk (readers of ``paths/``, ``events/`` and ``prices*/``
#: read every part in them)
DATASETS = ("paths", "events", "chunks", "prices", "prices_no_impact")
#: manifest ``layout_version`` from which every chunk has a record
RECORDS_SINCE = 2
#: the layout this version writes
LAYOUT_VERSION = 2


def record_name(chunk: int) -> str:
    """Relative path of chunk ``chunk``'s record: ``chunks/chunk-00000.json``."""
    return f"chunks/chunk-{chunk:05d}.json"


@dataclass(frozen=True)
class ChunkSpec:
    """A chunk of a run: its index, paths and the files it writes (relative paths, with the
    rows each must hold where the layout fixes it, ``None`` otherwise)."""

    index: int
    first_path: int
    n_paths: int
    files: dict[str, int | None]

    @property
    def record(self) -> str:
        """Relative path of the chunk's record."""
        return record_name(self.index)


def chunk_specs(n_paths: int, chunk_paths: int, save_prices: int, steps: int | None,
                n_accounts: int | None) -> list[ChunkSpec]:
    """The chunks of a run and the files each writes (``steps`` and ``n_accounts`` fix row
    counts where known)."""
    specs = []
    n_chunks = -(-n_paths // chunk_paths)
    for c in range(n_chunks):
        first = c * chunk_paths
        n = min(chunk_paths, n_paths - first)
        name = part_name(c)
        files: dict[str, int | None] = {
            f"paths/{name}": n, f"events/{name}": None,
            f"chunks/accounts-{c:05d}.parquet": n_accounts,
            f"chunks/pnl-{c:05d}.parquet": None}
        if first < save_prices:
            n_save = min(n, save_prices - first)
            for sub in ("prices", "prices_no_impact"):
                files[f"{sub}/{name}"] = None if steps is None else n_save * (steps + 1)
        specs.append(ChunkSpec(c, first, n, files))
    return specs


def write_record(out_dir: Path, spec: ChunkSpec, identity: dict[str, Any],
                 files: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Write chunk ``spec``'s record (last, after its parts); return the files of the chunk,
    the record included, each with its ``sha256`` (and ``bytes``, ``rows``)."""
    record = {"chunk": spec.index, "first_path": spec.first_path, "n_paths": spec.n_paths,
              **identity, "files": files}
    return {**files, spec.record: write_json(record, out_dir / spec.record)}


def plain_file(out_dir: Path, rel: str) -> bool:
    """Whether ``out_dir / rel`` is a regular file reached without any symbolic link (a
    linked file or a linked folder on the way may lead outside the run directory)."""
    path = out_dir / rel
    try:
        return path.is_file() and path.resolve() == out_dir.resolve().joinpath(rel)
    except (OSError, RuntimeError):
        return False


def _parquet_identity(path: Path) -> dict[str, str]:
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(errors="replace").removeprefix("marginsim."): v.decode(errors="replace")
            for k, v in meta.items() if k.startswith(b"marginsim.")}


def metadata_problem(path: Path, identity: dict[str, Any], chunk: int | None) -> str | None:
    """What is wrong with a Parquet part's ``marginsim.*`` metadata (None: it names this
    run's scenario, seed and, for a chunk's part, the chunk)."""
    try:
        meta = _parquet_identity(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types on bad files
        return f"unreadable Parquet footer: {str(exc).splitlines()[0]}"
    if meta.get("scenario_sha256") != identity["scenario_sha256"]:
        return (f"written for another scenario (scenario_sha256 "
                f"{meta.get('scenario_sha256', 'missing')[:12]}..., this run's "
                f"{identity['scenario_sha256'][:12]}...)")
    if meta.get("seed") != str(identity["seed"]):
        return f"written with another seed ({meta.get('seed')}, this run's {identity['seed']})"
    if chunk is not None and meta.get("chunk") != str(chunk):
        return f"written by another chunk ({meta.get('chunk')}, expected {chunk})"
    return None


def _read_record(path: Path) -> dict[str, Any] | str:
    try:
        record = json.loads(read_regular_text(path))
    except (OSError, ValueError) as exc:
        return f"unreadable record ({exc})"
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        return "not a chunk record"
    return record


def check_chunk(out_dir: Path, spec: ChunkSpec, identity: dict[str, Any],
                digest: Callable[[Path], str] = sha256_file
                ) -> tuple[dict[str, dict[str, Any]] | None, str | None]:
    """Whether chunk ``spec`` of the run ``identity`` (``scenario_sha256``, ``seed``) is
    complete and intact in ``out_dir``.

    Returns
    -------
    files : dict or None
        When intact: the chunk's files (record included) with their ``sha256``, ``bytes``
        and ``rows``, as :func:`write_record` returns them.
    problem : str or None
        Otherwise, what is wrong, starting with the file concerned.
    """
    where = out_dir / spec.record
    record = _read_record(where) if plain_file(out_dir, spec.record) \
        else "no record (the chunk did not finish)"
    if isinstance(record, str):
        return None, f"{where}: {record}"
    expected = {"chunk": spec.index, "first_path": spec.first_path, "n_paths": spec.n_paths,
                **identity}
    for key, value in expected.items():
        if record.get(key) != value:
            return None, (f"{where}: {key} is {record.get(key)!r}, this run's chunk has "
                          f"{value!r}")
    files: dict[str, dict[str, Any]] = record["files"]
    if set(files) != set(spec.files):
        return None, (f"{where}: lists {sorted(files)}, the chunk writes "
                      f"{sorted(spec.files)}")
    for rel in sorted(files):
        path = out_dir / rel
        entry = files[rel]
        if not isinstance(entry, dict):
            return None, f"{where}: entry of {rel} is not an object"
        if not plain_file(out_dir, rel):
            return None, f"{path}: missing, or reached through a symbolic link (listed in " \
                f"{spec.record})"
        if os.stat(path).st_size != entry.get("bytes"):
            return None, (f"{path}: {os.stat(path).st_size:,} bytes, its record says "
                          f"{entry.get('bytes')} (truncated or replaced)")
        if digest(path) != entry.get("sha256"):
            return None, f"{path}: checksum differs from {spec.record} (changed or corrupt)"
        problem = metadata_problem(path, identity, spec.index)
        if problem:
            return None, f"{path}: {problem}"
    return {**files, spec.record: {"sha256": digest(where), "bytes": where.stat().st_size}}, None


def unexpected_files(out_dir: Path, specs: list[ChunkSpec]) -> list[Path]:
    """Files in the per-chunk folders that belong to none of the run's chunks (hidden files
    and temporaries aside): readers of those folders would include them."""
    known = {rel for s in specs for rel in (*s.files, s.record)}
    out = []
    for sub in DATASETS:
        folder = out_dir / sub
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(out_dir).as_posix()
            if (path.is_file() or path.is_symlink()) and not path.name.startswith(".") \
                    and rel not in known:
                out.append(path)
    return out


def remove_chunk(out_dir: Path, spec: ChunkSpec) -> None:
    """Delete a chunk's record, then its parts (before running it again)."""
    for rel in (spec.record, *spec.files):
        (out_dir / rel).unlink(missing_ok=True)
