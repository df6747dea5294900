"""The run directory as research data: pandas, polars and DuckDB read it as it is and give
the same answers to the README's questions; ids are dictionary-encoded and every column
chunk is zstd-compressed."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from simulator.cli import main

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")
duckdb = pytest.importorskip("duckdb")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("research") / "demo"
    assert main(["run", "two-asset-crash", "--paths", "300", "--set", "population.count=400",
                 "--set", "simulation.chunk_paths=100", "--out", str(out), "--quiet"]) == 0
    return out


def test_the_same_question_in_pandas_polars_and_duckdb(run_dir):
    """Liquidation fills and notional per step, per path; and the five accounts with the
    largest ES99."""
    events = pd.read_parquet(run_dir / "events")
    n_paths = len(pd.read_parquet(run_dir / "paths"))
    liq = events[(events["kind"] == "liquidation") & (events["instrument"] == "perp")]
    by_pandas = (liq.groupby("step").agg(fills=("qty", "size"), notional=("notional", "sum"))
                 / n_paths).reset_index()
    by_polars = (pl.scan_parquet(f"{run_dir}/events/*.parquet")
                 .filter((pl.col("kind") == "liquidation") & (pl.col("instrument") == "perp"))
                 .group_by("step")
                 .agg(pl.len().alias("fills"), pl.col("notional").sum().alias("notional"))
                 .with_columns(pl.col("fills") / n_paths, pl.col("notional") / n_paths)
                 .sort("step").collect())
    by_duckdb = duckdb.sql(f"""
        SELECT step, count(*) / {n_paths} AS fills, sum(notional) / {n_paths} AS notional
        FROM '{run_dir}/events/*.parquet'
        WHERE kind = 'liquidation' AND instrument = 'perp'
        GROUP BY step ORDER BY step""").fetchnumpy()
    assert len(by_pandas) > 3
    for other in (by_polars["step"].to_numpy(), by_duckdb["step"]):
        np.testing.assert_array_equal(by_pandas["step"].to_numpy(), other)
    for col in ("fills", "notional"):
        np.testing.assert_allclose(by_polars[col].to_numpy(), by_pandas[col], rtol=1e-9)
        np.testing.assert_allclose(by_duckdb[col], by_pandas[col], rtol=1e-9)
    top_pandas = pd.read_parquet(run_dir / "accounts.parquet").nlargest(5, "es_99")
    top_polars = pl.read_parquet(run_dir / "accounts.parquet").sort(
        "es_99", descending=True).head(5)
    top_duckdb = duckdb.sql(f"SELECT account_id FROM '{run_dir}/accounts.parquet' "
                            "ORDER BY es_99 DESC LIMIT 5").fetchall()
    ids = [str(x) for x in top_pandas["account_id"]]
    assert ids == top_polars["account_id"].cast(pl.String).to_list()
    assert ids == [row[0] for row in top_duckdb]


def test_ids_are_dictionary_encoded_and_files_zstd(run_dir):
    schema = pq.read_schema(next((run_dir / "events").glob("part-*.parquet")))
    for name in ("account_id", "kind", "symbol", "instrument"):
        assert str(schema.field(name).type).startswith("dictionary"), name
    files = [run_dir / "accounts.parquet", *sorted((run_dir / "events").glob("*.parquet")),
             *sorted((run_dir / "paths").glob("*.parquet"))]
    for path in files:
        meta = pq.ParquetFile(path).metadata
        for rg in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                assert meta.row_group(rg).column(c).compression == "ZSTD", (path, c)


def test_weighting_a_rare_event_run_in_pandas_polars_and_duckdb(tmp_path):
    """The README's rare-event recipes (docs/rare-events.md): the weighted probability and
    its error, in each of the three, equal what summary.json reports."""
    import json

    out = tmp_path / "rare"
    assert main(["run", "two-asset-crash", "--paths", "2000", "--rare", "bad_debt>700000",
                 "--set", "population.count=400", "--set", "simulation.steps=48",
                 "--set", "simulation.chunk_paths=500", "--set",
                 "simulation.rare_pilot_paths=500", "--events", "none", "--out", str(out),
                 "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())["rare_event"]["probability"]
    paths = pd.read_parquet(out / "paths")
    hit = paths["bad_debt"] > 700_000
    by_pandas = ((paths["weight"] * hit).mean(),
                 (paths["weight"] * hit).std(ddof=1) / len(paths) ** 0.5)
    flag = (pl.col("bad_debt") > 700_000).cast(pl.Float64)
    by_polars = pl.scan_parquet(f"{out}/paths/*.parquet").select(
        (pl.col("weight") * flag).mean().alias("p"),
        ((pl.col("weight") * flag).std() / pl.len().sqrt()).alias("stderr")).collect().row(0)
    by_duckdb = duckdb.sql(f"""
        SELECT avg(weight * (bad_debt > 700000)::INT),
               stddev_samp(weight * (bad_debt > 700000)::INT) / sqrt(count(*))
        FROM '{out}/paths/*.parquet'""").fetchall()[0]
    for p, se in (by_pandas, by_polars, by_duckdb):
        assert p == pytest.approx(summary["estimate"], rel=1e-9)
        assert se == pytest.approx(summary["stderr"], rel=1e-9)
    assert 0 < summary["estimate"] < 0.05
