"""Readers of a run directory (``simulator.results.read``) and ``RunResult``'s methods,
checked against independent readers of the same files: pyarrow.parquet, pandas boolean
masks, polars and DuckDB."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import simulator
from simulator import RunResult
from simulator.errors import MarginsimError
from simulator.results import read

SAVED = 30  # price paths saved by the run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """two-asset-crash, 300 paths in three chunks, the first 30 paths' prices saved."""
    sc = simulator.load_scenario("two-asset-crash",
                                 ["simulation.paths=300", "simulation.chunk_paths=100"])
    return simulator.run(sc, tmp_path_factory.mktemp("read") / "r", save_prices=SAVED)


@pytest.fixture(scope="module")
def run_dir(run: RunResult) -> Path:
    return run.out_dir


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run without --save-prices."""
    sc = simulator.load_scenario("deterministic-gap", ["simulation.paths=20"])
    return simulator.run(sc, tmp_path_factory.mktemp("read") / "plain").out_dir


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "copy"))


def _where(table: str) -> str:
    return "accounts.parquet" if table == "accounts" else table


def _reference(run_dir: Path, table: str) -> pa.Table:
    """The table as pyarrow.parquet reads the folder (or file)."""
    return pq.read_table(run_dir / _where(table))


@pytest.mark.parametrize("table", ["paths", "events", "accounts", "prices", "prices_no_impact"])
def test_tables_equal_pyarrow_parquet(run_dir: Path, table: str) -> None:
    ref = _reference(run_dir, table)
    impact = {"impact": table == "prices"} if table.startswith("prices") else {}
    reader = getattr(read, "prices" if impact else table)
    got = reader(run_dir, as_="arrow", **impact)
    assert got.schema.remove_metadata() == ref.schema.remove_metadata()
    assert got.num_rows == ref.num_rows > 0 and got.equals(ref)
    frame = reader(run_dir, **impact)  # pandas, the default
    pd.testing.assert_frame_equal(frame, ref.to_pandas())
    lazy = reader(run_dir, as_="dataset", **impact)
    assert isinstance(lazy, ds.Dataset) and lazy.to_table().equals(ref)
    listed = json.loads((run_dir / "manifest.json").read_text())["files"]
    assert sorted(Path(f).relative_to(run_dir).as_posix() for f in lazy.files) == sorted(
        rel for rel in listed if rel.split("/")[0] == _where(table))


def test_row_counts_and_prices(run_dir: Path) -> None:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert len(read.paths(run_dir)) == 300
    assert read.paths(run_dir, columns=["path_id"])["path_id"].tolist() == list(range(300))
    assert len(read.accounts(run_dir)) == manifest["n_accounts"]
    steps = manifest["scenario_resolved"]["simulation"]["steps"]
    prices = read.prices(run_dir)
    assert len(prices) == SAVED * (steps + 1)
    assert sorted(prices["path_id"].unique()) == list(range(SAVED))
    assert list(prices.columns) == ["path_id", "step", "BTC", "ETH"]
    free = read.prices(run_dir, impact=False)
    assert free.shape == prices.shape and not free.equals(prices)


def test_columns_in_the_order_asked(run_dir: Path) -> None:
    got = read.paths(run_dir, columns=["bad_debt", "path_id"])
    assert list(got.columns) == ["bad_debt", "path_id"]
    ref = pq.read_table(run_dir / "paths", columns=["bad_debt", "path_id"]).to_pandas()
    pd.testing.assert_frame_equal(got, ref)
    lazy = read.paths(run_dir, columns=["bad_debt", "path_id"], as_="dataset")
    assert lazy.schema.names == ["bad_debt", "path_id"]
    assert lazy.to_table().to_pandas().equals(ref)


def test_dictionary_columns_are_categoricals(run_dir: Path) -> None:
    events = read.events(run_dir)
    ref = pq.read_table(run_dir / "events")
    for name in ("account_id", "kind", "symbol", "instrument"):
        assert isinstance(events[name].dtype, pd.CategoricalDtype), name
        strings = pc.cast(ref[name], pa.string()).to_pylist()
        assert events[name].astype(str).tolist() == strings, name
    assert set(events["kind"].unique()) <= {"liquidation", "adl", "backstop", "socialised",
                                            "top_up", "reduce"}
    accounts = read.accounts(run_dir)
    assert isinstance(accounts["margin_mode"].dtype, pd.CategoricalDtype)


EVENT_FILTERS = [
    ([("kind", "==", "liquidation"), ("path_id", "<", 50)],
     lambda e: (e["kind"] == "liquidation") & (e["path_id"] < 50)),
    ([("kind", "=", "liquidation"), ("step", ">=", 2), ("step", "<=", 5)],
     lambda e: (e["kind"] == "liquidation") & e["step"].between(2, 5)),
    ([[("step", "==", 1), ("round", ">", 1)], [("symbol", "in", ["ETH", "USD"])]],
     lambda e: ((e["step"] == 1) & (e["round"] > 1)) | e["symbol"].isin(["ETH", "USD"])),
    ([("instrument", "not in", ["perp"]), ("notional", "!=", 0.0)],
     lambda e: ~e["instrument"].isin(["perp"]) & (e["notional"] != 0.0)),
    (("account_id", "==", "whale-cross"), lambda e: e["account_id"] == "whale-cross"),
    (pc.field("notional") > 1e5, lambda e: e["notional"] > 1e5),
    ((pc.field("kind") == "liquidation") & pc.field("path_id").isin([3, 77, 150, 299]),
     lambda e: (e["kind"] == "liquidation") & e["path_id"].isin([3, 77, 150, 299])),
]


@pytest.mark.parametrize(("flt", "mask"), EVENT_FILTERS)
def test_event_filters_equal_pandas_masks(run_dir: Path, flt, mask) -> None:
    everything = pq.read_table(run_dir / "events").to_pandas()
    expected = everything[mask(everything)].reset_index(drop=True)
    got = read.events(run_dir, filter=flt)
    assert 0 < len(got) < len(everything)
    pd.testing.assert_frame_equal(got, expected, check_categorical=False)
    arrow = read.events(run_dir, filter=flt, as_="arrow")
    assert arrow.num_rows == len(expected)
    if not isinstance(flt, pc.Expression):  # the same DNF as pyarrow.parquet's filters
        ref = pq.read_table(run_dir / "events", filters=[flt] if isinstance(flt, tuple) else flt)
        pd.testing.assert_frame_equal(got, ref.to_pandas(), check_categorical=False)


def test_paths_filter_and_columns(run_dir: Path) -> None:
    everything = pq.read_table(run_dir / "paths").to_pandas()
    mask = (everything["bad_debt"] > everything["bad_debt"].median()) & (
        everything["path_id"] >= 100)
    got = read.paths(run_dir, columns=["path_id", "bad_debt"],
                     filter=[("bad_debt", ">", float(everything["bad_debt"].median())),
                             ("path_id", ">=", 100)])
    pd.testing.assert_frame_equal(
        got, everything.loc[mask, ["path_id", "bad_debt"]].reset_index(drop=True))
    # a filter on a column that is not read
    got = read.paths(run_dir, columns=["path_id"], filter=pc.field("n_liquidations") > 400)
    assert got["path_id"].tolist() == everything.loc[
        everything["n_liquidations"] > 400, "path_id"].tolist()


def test_polars_and_duckdb_agree(run_dir: Path) -> None:
    flt = [("kind", "==", "liquidation"), ("instrument", "==", "perp"), ("path_id", "<", 150)]
    got = read.events(run_dir, columns=["path_id", "step", "account_id", "notional"],
                      filter=flt, as_="polars")
    assert isinstance(got, pl.DataFrame)
    ref = (pl.scan_parquet(str(run_dir / "events" / "*.parquet"))
           .filter((pl.col("kind") == "liquidation") & (pl.col("instrument") == "perp")
                   & (pl.col("path_id") < 150))
           .select("path_id", "step", "account_id", "notional").collect())
    assert got.with_columns(pl.col("account_id").cast(pl.String)).equals(
        ref.with_columns(pl.col("account_id").cast(pl.String)))
    frame = read.events(run_dir, filter=flt)
    per_step = frame.groupby("step")["notional"].agg(["size", "sum"]).reset_index()
    sql = (f"SELECT step, count(*) AS n, sum(notional) AS s FROM "
           f"read_parquet('{run_dir / 'events' / '*.parquet'}') WHERE kind = 'liquidation' "
           "AND instrument = 'perp' AND path_id < 150 GROUP BY step ORDER BY step")
    duck = duckdb.sql(sql).df()
    assert per_step["step"].tolist() == duck["step"].tolist()
    assert per_step["size"].tolist() == duck["n"].tolist()
    np.testing.assert_allclose(per_step["sum"], duck["s"], rtol=1e-12)
    paths = read.paths(run_dir, as_="polars")
    parts = run_dir / "paths" / "*.parquet"
    total = duckdb.sql(f"SELECT sum(bad_debt) FROM read_parquet('{parts}')").fetchall()[0][0]
    assert paths["bad_debt"].sum() == pytest.approx(total, rel=1e-12)


def test_dataset_form_keeps_the_filter(run_dir: Path) -> None:
    flt = pc.field("kind") == "liquidation"
    lazy = read.events(run_dir, columns=["path_id", "kind"], filter=flt, as_="dataset")
    assert lazy.schema.names == ["path_id", "kind"]
    expected = read.events(run_dir, columns=["path_id", "kind"], filter=flt, as_="arrow")
    assert lazy.to_table().equals(expected)
    with pytest.raises(MarginsimError, match=r"outside columns=\['path_id'\].*add it"):
        read.events(run_dir, columns=["path_id"], filter=flt, as_="dataset")


def test_only_the_listed_files_are_read(run_dir: Path, tmp_path: Path) -> None:
    copy = _copy(run_dir, tmp_path)
    shutil.copy(copy / "paths" / "part-00000.parquet", copy / "paths" / "part-00099.parquet")
    shutil.copy(copy / "paths" / "part-00001.parquet", copy / "paths" / "stray.parquet")
    assert pq.read_table(copy / "paths").num_rows == 500  # a folder reader takes them all
    got = read.paths(copy, as_="arrow")
    assert got.num_rows == 300 and got.equals(_reference(run_dir, "paths"))
    (copy / "events" / "part-00002.parquet").unlink()
    with pytest.raises(MarginsimError, match=r"part-00002\.parquet: missing \(listed in "
                                             r"manifest\.json\).*marginsim verify"):
        read.events(copy)


def test_an_older_manifest_without_a_file_list(run_dir: Path, tmp_path: Path) -> None:
    copy = _copy(run_dir, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["files"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    (copy / "paths" / "notes.parquet").write_bytes(b"not parquet")  # not a part: skipped
    assert read.paths(copy, as_="arrow").equals(_reference(run_dir, "paths"))
    assert read.accounts(copy, as_="arrow").equals(_reference(run_dir, "accounts"))


def test_errors(run_dir: Path, plain_run: Path, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MarginsimError, match="not a run directory .no such folder"):
        read.paths(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MarginsimError, match=r"not a run directory \(no manifest\.json\)"):
        read.paths(tmp_path / "empty")
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "sweep.json").write_text("{}")
    with pytest.raises(MarginsimError, match="a sweep directory.*point_dir"):
        read.paths(tmp_path / "sweep")

    copy = _copy(run_dir, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    with pytest.raises(MarginsimError, match=r"incomplete run \(manifest status 'running'\)"
                                             r".*marginsim run .*--resume"):
        read.events(copy)
    with pytest.raises(MarginsimError, match="incomplete run"):
        RunResult.open(copy)
    (copy / "manifest.json").write_text("[1]")
    with pytest.raises(MarginsimError, match="not a marginsim manifest"):
        read.paths(copy)

    with pytest.raises(MarginsimError) as err:
        read.events(run_dir, columns=["path_id", "bogus"])
    message = str(err.value)
    assert "unknown column(s) 'bogus'" in message
    assert message.endswith(", ".join(pq.read_schema(run_dir / "events" / "part-00000.parquet")
                                      .names))
    with pytest.raises(MarginsimError, match=r"unknown column 'bogus'; valid columns: path_id"):
        read.paths(run_dir, filter=[("bogus", "<", 1)])
    with pytest.raises(MarginsimError, match=r"unknown column 'bogus'; valid columns: path_id"):
        read.paths(run_dir, filter=pc.field("bogus") < 1)
    with pytest.raises(MarginsimError, match="compare each column with a value of its type"):
        read.events(run_dir, filter=pc.field("kind") == 3)
    with pytest.raises(MarginsimError, match="unknown operator 'like'"):
        read.events(run_dir, filter=[("kind", "like", "liq%")])
    with pytest.raises(MarginsimError, match="takes a list of values"):
        read.events(run_dir, filter=[("kind", "in", "liquidation")])
    with pytest.raises(MarginsimError, match="give a pyarrow.compute expression"):
        read.events(run_dir, filter="kind == 'liquidation'")
    with pytest.raises(MarginsimError, match="expected a list of column names"):
        read.events(run_dir, columns="kind")
    with pytest.raises(MarginsimError, match=r"as_='numpy': expected one of 'pandas', "
                                             r"'arrow', 'polars', 'dataset'"):
        read.paths(run_dir, as_="numpy")
    with pytest.raises(MarginsimError, match="unknown table 'trades'"):
        read.read(run_dir, "trades")

    for impact in (True, False):
        with pytest.raises(MarginsimError, match=r"without --save-prices.*--save-prices 100 "
                                                 r"--out NEW_DIR"):
            read.prices(plain_run, impact=impact)
    assert len(read.paths(plain_run)) == 20

    monkeypatch.setitem(sys.modules, "polars", None)  # import polars fails
    with pytest.raises(MarginsimError, match="needs polars.*pip install polars"):
        read.paths(run_dir, as_="polars")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MarginsimError, match="needs pandas.*pip install pandas"):
        read.paths(run_dir)
    assert read.paths(run_dir, as_="arrow").num_rows == 300  # arrow needs neither


def test_run_result_open_and_methods(run: RunResult, run_dir: Path) -> None:
    opened = RunResult.open(str(run_dir))
    summary = json.loads((run_dir / "summary.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert opened.out_dir == run_dir.absolute()
    assert opened.summary == summary == run.summary
    assert opened.n_paths == run.n_paths == 300
    assert opened.chunks_run == run.chunks_run == 3
    assert opened.wall_seconds == manifest["timings_seconds"]["wall"]
    for name in ("paths", "events", "accounts"):
        ref = _reference(run_dir, name)
        assert getattr(opened, name)(as_="arrow").equals(ref)
        assert getattr(run, name)(as_="arrow").equals(ref)
    flt = [("kind", "==", "adl")]
    pd.testing.assert_frame_equal(run.events(["path_id", "qty"], flt),
                                  read.events(run_dir, ["path_id", "qty"], flt))
    assert run.prices(as_="arrow").equals(_reference(run_dir, "prices"))
    assert run.prices(impact=False, as_="arrow").equals(_reference(run_dir, "prices_no_impact"))
    assert isinstance(run.accounts(as_="dataset"), ds.Dataset)

    text = repr(opened)
    assert text.startswith("RunResult(") and repr(str(run_dir)) in text
    assert "two-asset-crash" in text and "n_paths=300" in text and "chunks_run=3" in text
    assert len(text) < 300  # not the whole summary


def test_run_result_open_refuses_a_bad_summary(run_dir: Path, tmp_path: Path) -> None:
    copy = _copy(run_dir, tmp_path)
    (copy / "summary.json").write_text('{"paths": 3}')
    with pytest.raises(MarginsimError, match="not a marginsim summary"):
        RunResult.open(copy)
    (copy / "summary.json").unlink()
    with pytest.raises(MarginsimError, match=r"summary\.json: cannot read"):
        RunResult.open(copy)
    with pytest.raises(MarginsimError, match="not a run directory"):
        RunResult.open(tmp_path / "nothing")
