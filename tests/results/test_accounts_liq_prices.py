"""``accounts.parquet``'s ``liq_price_<SYM>`` columns (issue #19) in whole runs: after every
other column, one per symbol, float64 with nulls; the explicit accounts of the flagship
at the prices worked out by hand here (Binance's isolated formula with a flat 0.5% rate,
and the cross slack solved for each asset); the same columns in a plain, a rare-event
(weighted) and a Sobol run of the same book, and after ``--resume``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator import cli
from simulator.config.scenario import load_scenario
from simulator.execution.runner import run

from ..support.run_dirs import killed_in_chunk

SMALL = ["population.count=60", "simulation.steps=12", "simulation.events=none"]
PLAIN = [*SMALL, "simulation.paths=40", "simulation.chunk_paths=20"]


def _liq(run_dir):
    table = pq.read_table(run_dir / "accounts.parquet")
    return table, {name: table.column(name).to_pylist() for name in table.column_names
                   if name.startswith("liq_price_")}


def test_flagship_accounts_have_their_liquidation_prices(tmp_path):
    run(load_scenario("two-asset-crash", PLAIN), tmp_path / "plain")
    table, liq = _liq(tmp_path / "plain")
    assert table.column_names[-2:] == ["liq_price_BTC", "liq_price_ETH"]
    assert table.column_names[-5:-2] == ["delta_usd", "gamma_usd", "vega_usd"]
    for name in liq:
        assert table.schema.field(name).type == pa.float64()
    ids = table.column("account_id").to_pylist()
    row = {acct: {sym: liq[f"liq_price_{sym}"][i] for sym in ("BTC", "ETH")}
           for i, acct in enumerate(ids)}
    # isolated long 40 BTC at 60,000 with 250,000 USD, 0.5% maintenance:
    # (Q EP - WB) / (Q (1 - MMR))
    assert row["whale-iso-btc"]["BTC"] == pytest.approx(
        (40 * 60_000 - 250_000) / (40 * 0.995), rel=1e-9)
    assert row["whale-iso-btc"]["ETH"] is None
    # cross: 400,000 USD + 5 BTC (5% haircut), long 60 BTC at 59,000 and 600 ETH at 2,950
    eth_part = 600 * (3_000 - 2_950) - 0.005 * 600 * 3_000
    btc = (60 * 59_000 - 400_000 - eth_part) / (5 * 0.95 + 60 - 0.005 * 60)
    assert row["whale-cross"]["BTC"] == pytest.approx(btc, rel=1e-9)
    btc_part = 5 * 60_000 * 0.95 + 60 * (60_000 - 59_000) - 0.005 * 60 * 60_000
    eth = (600 * 2_950 - 400_000 - btc_part) / (600 - 0.005 * 600)
    assert row["whale-cross"]["ETH"] == pytest.approx(eth, rel=1e-9)
    # short 150 BTC at 61,000 with 1.5M USD: (Q EP + WB) / (Q (1 + MMR))
    assert row["short-basis"]["BTC"] == pytest.approx(
        (150 * 61_000 + 1_500_000) / (150 * 1.005), rel=1e-9)
    assert row["short-basis"]["ETH"] is None
    # the population: most accounts have a price in the assets they hold
    assert sum(v is not None for v in liq["liq_price_BTC"]) > 20


@pytest.mark.slow
def test_weighted_sobol_and_resumed_runs_write_the_same_columns(tmp_path, monkeypatch):
    run(load_scenario("two-asset-crash", PLAIN), tmp_path / "plain")
    _, want = _liq(tmp_path / "plain")
    rare = [*SMALL, "simulation.paths=200", "simulation.chunk_paths=100",
            "simulation.rare_pilot_paths=200", "simulation.rare_event=bad_debt>90000"]
    run(load_scenario("two-asset-crash", rare), tmp_path / "rare")
    sobol = [*SMALL, "simulation.variance_reduction=sobol", "simulation.paths=1024",
             "simulation.chunk_paths=512"]
    run(load_scenario("two-asset-crash", sobol), tmp_path / "sobol")
    killed = tmp_path / "killed"
    argv = ["run", "two-asset-crash", *(f"--set={s}" for s in PLAIN), "--out", str(killed),
            "--quiet"]
    assert killed_in_chunk(argv, monkeypatch, chunk=1) == 130
    assert cli.main([*argv, "--resume"]) == 0
    for name in ("rare", "sobol", "killed"):
        table, got = _liq(tmp_path / name)
        assert got == want, name
        assert table.column_names[-2:] == list(want), name
    weights = pq.read_table(tmp_path / "rare" / "paths", columns=["weight"]).column(0)
    assert not np.allclose(weights.to_numpy(), 1.0)  # a weighted run indeed
