"""How marginsim's Parquet files are encoded: zstd, page checksums, and dictionaries only
for the columns that repeat (every column but the floating-point ones)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simulator.results.atomic import dictionary_columns, write_parquet


def _table(n: int = 50_000) -> pa.Table:
    rng = np.random.default_rng(5)
    return pa.table({
        "path_id": np.repeat(np.arange(n // 100), 100),
        "kind": pa.array(rng.choice(["liquidation", "adl"], n)).dictionary_encode(),
        "flag": rng.random(n) < 0.5,
        "price": rng.lognormal(size=n),
        "qty32": rng.random(n).astype(np.float32),
    })


def test_dictionary_columns_are_the_non_float_ones():
    assert dictionary_columns(_table(100).schema) == ["path_id", "kind", "flag"]


def test_written_file_keeps_dictionaries_for_ids_only_and_reads_back_equal(tmp_path):
    table = _table()
    record = write_parquet(table, tmp_path / "t.parquet", {b"k": b"v"})
    meta = pq.ParquetFile(tmp_path / "t.parquet").metadata
    assert record["rows"] == table.num_rows == meta.num_rows
    row_group = meta.row_group(0)
    encodings = {row_group.column(i).path_in_schema: row_group.column(i).encodings
                 for i in range(row_group.num_columns)}
    for name in ("path_id", "kind"):
        assert "RLE_DICTIONARY" in encodings[name], encodings[name]
    for name in ("price", "qty32"):
        assert "RLE_DICTIONARY" not in encodings[name], encodings[name]
        assert "PLAIN_DICTIONARY" not in encodings[name], encodings[name]
    assert all(row_group.column(i).compression == "ZSTD"
               for i in range(row_group.num_columns))
    back = pq.read_table(tmp_path / "t.parquet")
    assert back.equals(table)  # the same values and types (the dictionary column too)
    assert back.schema.metadata[b"k"] == b"v"
