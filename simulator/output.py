"""Run-directory outputs: Arrow schemas, atomic Parquet parts and JSON files, checksums.

Every file is written as databases write theirs: under a hidden temporary name in its
final folder, flushed to disk, renamed into place (``os.replace`` is atomic on one
filesystem), then the folder flushed, so a reader or a resumed run only ever sees whole
files, after a crash or a power loss too. Writers return the SHA-256, size and row count of
what they wrote (chunk records, the manifest's checksums). Parquet files carry the scenario
hash, seed and package version in their schema metadata (keys ``marginsim.*``), are
compressed with zstd, store ids and names dictionary-encoded, and have page checksums.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import RunDirectoryError
from .input_files import read_regular_text
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


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk, where the system allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # a system without directory file descriptors
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the rename is still atomic
    finally:
        os.close(fd)


def write_bytes_atomic(data: bytes | memoryview | pa.Buffer, path: Path) -> None:
    """Write ``data`` to ``path`` as databases do: a temporary file in the same folder,
    flushed to disk (``fsync``), renamed into place, then the folder flushed, so that after
    a crash or power loss ``path`` holds either its old bytes or all the new ones."""
    tmp = _temporary(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_parquet(table: pa.Table, path: Path, metadata: dict[bytes, bytes]
                  ) -> dict[str, Any]:
    """Write ``table`` to ``path`` atomically, with ``metadata`` in its schema.

    Pages carry CRC checksums (``write_page_checksum``), which readers may verify.

    Returns
    -------
    dict
        ``{"sha256", "bytes", "rows"}`` of the bytes written (a chunk's record, the
        manifest's checksums).
    """
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", write_page_checksum=True)
    data = sink.getvalue()
    write_bytes_atomic(data, path)
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": data.size,
            "rows": table.num_rows}


def write_json(obj: Any, path: Path) -> dict[str, Any]:
    """Write ``obj`` as indented JSON to ``path`` atomically (see
    :func:`write_bytes_atomic`); return ``{"sha256", "bytes"}`` of what was written.

    JSON has no infinities or NaN: an infinite float (for example an omitted
    ``depth_usd``, an infinitely deep book, echoed in the manifest) is written as the string
    ``"inf"`` or ``"-inf"`` and NaN as ``null``, so that every reader parses the file.
    """
    data = (json.dumps(_json_safe(obj), indent=2, sort_keys=False, allow_nan=False,
                       default=_json_default) + "\n").encode()
    write_bytes_atomic(data, path)
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


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
        return json.loads(read_regular_text(path))
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
