"""Parquet parts: statistics on every column but the dictionary (string) ones; the run's own
``chunks/pnl-`` parts LZ4-compressed; every part readable with its page checksums."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simulator.results import atomic


def test_statistics_on_every_column_but_the_dictionary_ones(tmp_path):
    table = pa.table({"path_id": pa.array(np.arange(50)),
                      "kind": pa.array(["liquidation", "adl"] * 25).dictionary_encode(),
                      "qty": pa.array(np.linspace(-1.0, 1.0, 50))})
    info = atomic.write_parquet(table, tmp_path / "a.parquet", {b"k": b"v"})
    meta = pq.ParquetFile(tmp_path / "a.parquet").metadata
    stats = {meta.row_group(0).column(i).path_in_schema:
             meta.row_group(0).column(i).is_stats_set for i in range(meta.num_columns)}
    assert stats == {"path_id": True, "kind": False, "qty": True}
    assert meta.row_group(0).column(0).statistics.max == 49
    assert meta.row_group(0).column(0).compression == "ZSTD"
    read = pq.ParquetFile(tmp_path / "a.parquet", page_checksum_verification=True).read()
    assert read.replace_schema_metadata(None).equals(table) and info["rows"] == 50


def test_fast_parts_are_lz4_and_read_back_the_same(tmp_path):
    table = pa.table({"path_id": pa.array(np.arange(7)), "pnl": pa.array(np.ones(7) / 3)})
    atomic.write_parquet(table, tmp_path / "f.parquet", {}, fast=True)
    meta = pq.ParquetFile(tmp_path / "f.parquet").metadata
    assert meta.row_group(0).column(0).compression.startswith("LZ4")
    read = pq.ParquetFile(tmp_path / "f.parquet", page_checksum_verification=True).read()
    assert read.replace_schema_metadata(None).equals(table)
