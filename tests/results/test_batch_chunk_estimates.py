"""Batch-mode chunks keep their own VaR/ES estimates, not their PnL corrections.

In batch mode (``simulation.account_tail_budget_mb`` too small for the exact tail) a chunk
writes its per-account sums and VaR/ES at every level as columns of
``chunks/accounts-NNNNN.parquet`` and an empty ``chunks/pnl-`` part; ``--resume`` reads the
estimates back. A resumed run must equal an uninterrupted one bit for bit, and an exact-mode
run must still write the corrections its tail needs.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq

from simulator import cli, load_scenario, prepare
from simulator.results import accounts

from ..support.run_dirs import SMALL, assert_same_run, killed_in_chunk

BATCH = [*SMALL, "--set", "simulation.account_tail_budget_mb=0"]


def test_batch_chunks_hold_their_estimates_and_resume_from_them(tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    assert cli.main(["run", "two-asset-crash", *BATCH, "--out", str(whole), "--quiet"]) == 0
    manifest = json.loads((whole / "manifest.json").read_text())
    assert manifest["account_var_es_method"] == "batch"
    levels = (0.95, 0.99, 0.999)
    names = accounts.batch_columns(levels)
    assert names[:6] == ["pnl_sum", "pnl_sumsq", "var_95", "var_se_95", "es_95", "es_se_95"]
    for c in range(3):
        part = pq.read_table(whole / "chunks" / f"accounts-{c:05d}.parquet")
        assert set(names) <= set(part.column_names)
        assert pq.read_table(whole / "chunks" / f"pnl-{c:05d}.parquet").num_rows == 0
    # the columns are the chunk's estimates from its PnL: rebuilt here from the corrections
    # an exact-mode run of the same paths writes
    exact = tmp_path / "exact"
    assert cli.main(["run", "two-asset-crash", *SMALL, "--out", str(exact), "--quiet"]) == 0
    prep = prepare(load_scenario("two-asset-crash", ["simulation.steps=24"]))
    rebuilt = accounts.load_chunk_partial(exact, 1, 30, ("BTC", "ETH"), prep.inputs.s0,
                                          prep.acct_navk, "batch", 90, levels)
    stored = pq.read_table(whole / "chunks" / "accounts-00001.parquet")
    got = [stored.column(c).to_numpy() for c in names]
    want = [rebuilt.pnl_sum, rebuilt.pnl_sumsq] + [rebuilt.batch[i, k] for i in range(3)
                                                   for k in range(4)]
    for name, g, w in zip(names, got, want, strict=True):
        np.testing.assert_array_equal(g, w, err_msg=name)

    # interrupted in its last chunk, then resumed: chunks 0 and 1 are read back
    resumed = tmp_path / "resumed"
    assert killed_in_chunk(["run", "two-asset-crash", *BATCH, "--out", str(resumed),
                            "--quiet"], monkeypatch) == 130
    assert cli.main(["run", "two-asset-crash", *BATCH, "--out", str(resumed), "--resume",
                     "--quiet"]) == 0
    assert json.loads((resumed / "manifest.json").read_text())["chunks_run"] == 1
    assert_same_run(whole, resumed)
    assert cli.main(["verify", str(resumed)]) == 0


def test_exact_chunks_keep_their_corrections(tmp_path):
    out = tmp_path / "exact"
    assert cli.main(["run", "two-asset-crash", *SMALL, "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "manifest.json").read_text())["account_var_es_method"] == "exact"
    part = pq.read_table(out / "chunks" / "accounts-00000.parquet")
    assert "pnl_sum" not in part.column_names
    assert pq.read_table(out / "chunks" / "pnl-00000.parquet").num_rows > 0
