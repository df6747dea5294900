"""Run-directory outputs: Arrow schemas, atomic Parquet parts and JSON files, checksums.

Every file is written under a hidden temporary name in its final folder and renamed into
place (``os.replace`` is atomic on one filesystem), so a reader or a resumed run only ever
sees whole files. Parquet files carry the scenario hash, seed and package version in their
schema metadata (keys ``marginsim.*``), are compressed with zstd, and store ids and names
dictionary-encoded.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import RunDirectoryError
from .margin import codes
from .margin.engine import ReplayResult


def file_metadata(digest: str, seed: int, version: str, **extra: Any) -> dict[bytes, bytes]:
    """Schema metadata stored in every Parquet file of a run."""
    meta = {"marginsim.scenario_sha256": digest, "marginsim.seed": str(seed),
            "marginsim.version": version}
    meta.update({f"marginsim.{k}": str(v) for k, v in extra.items()})
    return {k.encode(): v.encode() for k, v in meta.items()}


def paths_table(res: ReplayResult, first_path_id: int, symbols: tuple[str, ...]) -> pa.Table:
    """One row per path (see DESIGN.md, ``paths/``)."""
    n = res.path_f.shape[0]
    first_step = res.path_i[:, codes.PI_FIRST_STEP]
    columns: dict[str, pa.Array] = {
        "path_id": pa.array(np.arange(first_path_id, first_path_id + n, dtype=np.int64)),
        "n_liquidations": pa.array(res.path_i[:, codes.PI_N_LIQUIDATIONS]),
        "liquidated_notional": pa.array(res.path_f[:, codes.PF_LIQUIDATED_NOTIONAL]),
        "max_cascade_rounds": pa.array(res.path_i[:, codes.PI_MAX_ROUNDS]),
        "bad_debt": pa.array(res.path_f[:, codes.PF_BAD_DEBT]),
        "insurance_fund_end": pa.array(res.path_f[:, codes.PF_FUND_END]),
        "adl_notional": pa.array(res.path_f[:, codes.PF_ADL_NOTIONAL]),
        "first_liquidation_step": pa.array(first_step, mask=first_step < 0, type=pa.int64()),
        "fees": pa.array(res.path_f[:, codes.PF_FEES]),
        "socialised_loss": pa.array(res.path_f[:, codes.PF_SOCIALISED]),
        "fund_depleted": pa.array(res.path_i[:, codes.PI_DEPLETED] > 0),
        "n_adl": pa.array(res.path_i[:, codes.PI_N_ADL]),
        "n_cascade_liquidations": pa.array(res.path_i[:, codes.PI_N_CASCADE]),
        "price_bounded": pa.array(res.path_i[:, codes.PI_PRICE_BOUNDED] > 0),
    }
    for a, sym in enumerate(symbols):
        columns[f"min_price_{sym}"] = pa.array(res.min_price[:, a])
    for a, sym in enumerate(symbols):
        columns[f"final_price_{sym}"] = pa.array(res.final_price[:, a])
    return pa.table(columns)


def _dictionary(indices: np.ndarray, names: tuple[str, ...] | list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)),
                                          pa.array(list(names), type=pa.string()))


def events_table(res: ReplayResult, first_path_id: int, account_ids: tuple[str, ...],
                 unit_account: np.ndarray, symbols: tuple[str, ...]) -> pa.Table:
    """One row per liquidation, backstop or ADL fill and per socialised loss (see DESIGN.md,
    ``events/``; README "Outputs"). Asset ``-1`` in the kernel's records is ``USD``."""
    ei, ef = res.ev_i, res.ev_f
    asset = np.where(ei[:, codes.EI_ASSET] < 0, len(symbols), ei[:, codes.EI_ASSET])
    accounts = unit_account[ei[:, codes.EI_UNIT]]
    # per part dictionary: only the accounts that appear, so parts stay small
    used, local = np.unique(accounts, return_inverse=True)
    return pa.table({
        "path_id": pa.array(ei[:, codes.EI_PATH] + first_path_id),
        "step": pa.array(ei[:, codes.EI_STEP]),
        "round": pa.array(ei[:, codes.EI_ROUND]),
        "account_id": _dictionary(local.reshape(-1), [account_ids[j] for j in used]),
        "kind": _dictionary(ei[:, codes.EI_KIND], codes.KIND_NAMES),
        "symbol": _dictionary(asset, (*symbols, "USD")),
        "qty": pa.array(ef[:, codes.EF_QTY]),
        "mark_price": pa.array(ef[:, codes.EF_MARK]),
        "exec_price": pa.array(ef[:, codes.EF_EXEC]),
        "notional": pa.array(ef[:, codes.EF_NOTIONAL]),
        "fee": pa.array(ef[:, codes.EF_FEE]),
        "bad_debt": pa.array(ef[:, codes.EF_BAD_DEBT]),
        "instrument": _dictionary(ei[:, codes.EI_INSTRUMENT], codes.INSTRUMENT_NAMES),
        "fund_paid": pa.array(ef[:, codes.EF_FUND_PAID]),
    })


def prices_table(marks: np.ndarray, first_path_id: int, symbols: tuple[str, ...]) -> pa.Table:
    """One row per path and step of saved price paths: ``path_id``, ``step``, then one column
    per symbol (``prices/``: the marks, impact included; ``prices_no_impact/``: the
    exogenous paths)."""
    n, n_steps, _ = marks.shape
    columns: dict[str, pa.Array] = {
        "path_id": pa.array(np.repeat(np.arange(first_path_id, first_path_id + n), n_steps)),
        "step": pa.array(np.tile(np.arange(n_steps, dtype=np.int64), n)),
    }
    for a, sym in enumerate(symbols):
        columns[sym] = pa.array(marks[:, :, a].reshape(-1))
    return pa.table(columns)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_parquet(table: pa.Table, path: Path, metadata: dict[bytes, bytes]) -> None:
    """Write ``table`` to ``path`` atomically, with ``metadata`` in its schema."""
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    tmp = _temporary(path)
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def write_json(obj: Any, path: Path) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically.

    JSON has no infinities or NaN: an infinite float (for example an omitted
    ``depth_usd``, an infinitely deep book, echoed in the manifest) is written as the string
    ``"inf"`` or ``"-inf"`` and NaN as ``null``, so that every reader parses the file.
    """
    tmp = _temporary(path)
    tmp.write_text(json.dumps(_json_safe(obj), indent=2, sort_keys=False, allow_nan=False,
                              default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_safe(obj: Any) -> Any:
    """``obj`` with infinite floats as ``"inf"`` / ``"-inf"`` and NaN as ``None``."""
    if isinstance(obj, float | np.floating):
        if math.isnan(obj):
            return None
        return float(obj) if math.isfinite(obj) else str(float(obj))
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def read_json(path: Path) -> Any:
    """Read a JSON file written by :func:`write_json`.

    Raises
    ------
    RunDirectoryError
        If it cannot be read or parsed.
    """
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RunDirectoryError(f"{path}: cannot read: {exc}") from None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer | np.floating):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def part_name(chunk: int) -> str:
    """File name of a chunk's part: ``part-00000.parquet``."""
    return f"part-{chunk:05d}.parquet"


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checksums(run_dir: Path, exclude: tuple[str, ...] = ("manifest.json",)) -> dict[str, str]:
    """SHA-256 of every file of a run directory, by relative path (hidden files skipped)."""
    out = {}
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir).as_posix()
        if path.is_file() and not path.name.startswith(".") and rel not in exclude:
            out[rel] = sha256_file(path)
    return out


def parquet_rows(run_dir: Path, files: dict[str, str]) -> dict[str, int]:
    """Row count of every Parquet file among ``files`` (relative paths), from its footer."""
    return {rel: pq.ParquetFile(run_dir / rel).metadata.num_rows
            for rel in files if rel.endswith(".parquet")}


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`write_parquet`'s or :func:`write_json`'s
    temporary names (left behind by an interrupted write)."""
    return name.startswith(".") and name.endswith(".tmp")


def remove_temporaries(run_dir: Path) -> int:
    """Delete the temporary files an interrupted run left in ``run_dir``; return how many."""
    n = 0
    for path in run_dir.rglob(".*.tmp"):
        if path.is_file() and is_temporary(path.name):
            path.unlink()
            n += 1
    return n


def check_replaceable(out_dir: Path, marker: str, what: str) -> bool:
    """Whether ``--force`` has an old ``what`` directory to replace at ``out_dir``.

    ``False`` when there is nothing to replace (no such path, or an empty directory);
    ``True`` for a directory holding ``marker`` (``manifest.json`` of a run, ``sweep.json``
    of a sweep) that is neither the working directory nor one of its parents.

    Raises
    ------
    RunDirectoryError
        For anything else: ``--force`` never deletes what marginsim did not write.
    """
    if not out_dir.exists():
        return False
    if not out_dir.is_dir():
        raise RunDirectoryError(f"{out_dir}: exists and is not a directory; --force replaces "
                                f"only a {what} directory")
    if not any(out_dir.iterdir()):
        return False
    if not (out_dir / marker).is_file():
        raise RunDirectoryError(f"{out_dir}: not a marginsim {what} directory (no {marker}); "
                                "--force replaces only those: choose another --out or remove "
                                "it yourself")
    cwd = Path.cwd().resolve()
    if out_dir.resolve() in (cwd, *cwd.parents):
        raise RunDirectoryError(f"{out_dir}: is the working directory or one of its parents; "
                                "--force will not replace it")
    return True


def _replaced(out_dir: Path) -> Path:
    """The directory ``--force`` replaces: ``out_dir``, or the target of a symbolic link
    (the link is kept and then names the new run)."""
    return out_dir.resolve() if out_dir.is_symlink() else out_dir


def staging_dir(out_dir: Path) -> Path:
    """A fresh hidden sibling of ``out_dir`` (of its target, for a symbolic link) to write a
    replacement into."""
    real = _replaced(out_dir)
    return real.parent / f".{real.name}.new-{os.getpid()}"


def leftover_staging(out_dir: Path) -> list[Path]:
    """Hidden siblings of ``out_dir`` that a ``--force`` run killed before its swap left:
    ``.NAME.new-PID`` (a partial replacement) and ``.NAME.old-PID`` (a whole old run, if it
    died between the two renames). They are never deleted automatically: the PID may be a
    live run on another host sharing the filesystem."""
    real = _replaced(out_dir)
    if not real.parent.is_dir():
        return []
    return sorted(p for p in real.parent.glob(f".{real.name}.*-*")
                  if p.is_dir() and p.name.rsplit("-", 1)[0] in (f".{real.name}.new",
                                                                  f".{real.name}.old"))


def swap_in(staging: Path, out_dir: Path) -> None:
    """Replace the directory ``out_dir`` by the finished ``staging`` one.

    The old directory is renamed aside first (``.NAME.old-PID``), the new one renamed into
    place, and only then is the old one deleted, so at every moment a whole run exists:
    under ``out_dir``, or (if the process dies between the two renames) under the aside
    name. Through a symbolic link, its target is replaced and the link kept.
    """
    out_dir = _replaced(out_dir)
    aside = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    os.replace(out_dir, aside)
    os.replace(staging, out_dir)
    shutil.rmtree(aside)
