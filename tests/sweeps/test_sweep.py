"""Sweeps on common random numbers and the threshold search.

On common random numbers, a higher maintenance rate liquidates an isolated account
earlier on every path (its liquidation price is higher) and, without impact, never at a
worse price, so liquidation counts cannot fall and bad debt cannot rise from row to row,
path by path: an exact, not a statistical, property. The threshold search is checked
against a brute-force grid of the same runs.
"""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from simulator.cli import main
from simulator.results.atomic import read_json
from simulator.sweeps.sweep import parse_grid, parse_target, sweep

from ..support import DATA

BOOK = DATA / "sweep-book.toml"
RATES = [0.002, 0.005, 0.01, 0.02, 0.04]
COMMON = ["simulation.paths=400", "simulation.chunk_paths=150"]


@pytest.fixture(scope="module")
def rate_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "s"
    return sweep(BOOK, [("venue.maintenance_margin_rate", RATES)], overrides=COMMON,
                 out_dir=out, jobs=1)


def test_sweep_parquet_has_grid_keys_then_metrics_and_errors(rate_sweep):
    table = pq.read_table(rate_sweep.out_dir / "sweep.parquet")
    assert table.column_names[0] == "venue.maintenance_margin_rate"
    assert table.column("venue.maintenance_margin_rate").to_pylist() == RATES
    for name in ("liquidation_prob", "bad_debt_es_99", "n_liquidations_mean"):
        assert name in table.column_names and f"{name}_stderr" in table.column_names
    info = read_json(rate_sweep.out_dir / "sweep.json")
    assert info["grid"] == {"venue.maintenance_margin_rate": RATES}
    for row in table.to_pylist():  # each point is a whole run directory
        assert (rate_sweep.out_dir / row["point_dir"] / "summary.json").is_file()


def test_points_share_their_random_numbers(rate_sweep):
    finals = [pq.read_table(rate_sweep.out_dir / r["point_dir"] / "paths",
                            columns=["path_id", "final_price_X"]).sort_by("path_id")
              .column("final_price_X").to_numpy() for r in rate_sweep.rows]
    for other in finals[1:]:  # no impact: the marks are the exogenous paths themselves
        np.testing.assert_array_equal(other, finals[0])


def test_maintenance_rate_sweep_is_exactly_monotone(rate_sweep):
    rows = rate_sweep.rows
    liq = [r["n_liquidations_mean"] for r in rows]
    prob = [r["liquidation_prob"] for r in rows]
    debt = [r["bad_debt_mean"] for r in rows]
    assert all(a <= b for a, b in zip(liq, liq[1:], strict=False)), liq
    assert all(a <= b for a, b in zip(prob, prob[1:], strict=False)), prob
    assert all(a >= b for a, b in zip(debt, debt[1:], strict=False)), debt
    assert liq[-1] > liq[0] and debt[-1] < debt[0]  # the sweep does move them
    per_path = []
    for r in rows:
        t = pq.read_table(rate_sweep.out_dir / r["point_dir"] / "paths").sort_by("path_id")
        per_path.append((t.column("n_liquidations").to_numpy(),
                         t.column("bad_debt").to_numpy()))
    for (n0, d0), (n1, d1) in zip(per_path, per_path[1:], strict=False):
        assert np.all(n1 >= n0) and np.all(d1 <= d0 + 1e-9)  # path by path


def test_paired_differences_against_the_first_point(rate_sweep):
    """Each point's ``<metric>_diff`` is the difference of its summary mean and the first
    point's (computed by the summary, not by the pairing), and its error that of the
    per-path differences, paired by ``path_id`` with pandas."""
    table = pq.read_table(rate_sweep.out_dir / "sweep.parquet").to_pylist()
    first = rate_sweep.out_dir / table[0]["point_dir"] / "paths"
    base = pq.read_table(first).to_pandas().set_index("path_id")
    assert table[0]["n_liquidations_mean_diff"] == 0.0
    assert table[0]["n_liquidations_mean_diff_stderr"] == 0.0
    missing = base["first_liquidation_step"].isna().any()  # missing values: no difference
    assert np.isnan(table[-1]["first_liquidation_step_mean_diff"]) == missing
    for row in table[1:]:
        here = pq.read_table(rate_sweep.out_dir / row["point_dir"] / "paths").to_pandas()
        here = here.set_index("path_id").loc[base.index]
        for col in ("n_liquidations", "bad_debt", "liquidated_notional", "fees"):
            d = (here[col] - base[col]).to_numpy(dtype=float)
            est = row[f"{col}_mean"] - table[0][f"{col}_mean"]
            assert row[f"{col}_mean_diff"] == pytest.approx(est, rel=1e-9, abs=1e-9)
            se = d.std(ddof=1) / np.sqrt(d.size)
            assert row[f"{col}_mean_diff_stderr"] == pytest.approx(se, rel=1e-9, abs=1e-12)
        # a higher rate liquidates more on every path: the pairing removes most of the noise
        se_independent = np.hypot(row["n_liquidations_mean_stderr"],
                                  table[0]["n_liquidations_mean_stderr"])
        assert row["n_liquidations_mean_diff"] > 0
        assert row["n_liquidations_mean_diff_stderr"] < se_independent


def test_target_matches_a_brute_force_grid(tmp_path):
    """The smallest maintenance rate with mean bad debt under a goal: the bisection's
    answer meets it, its bracket's low end does not, and a brute-force grid of the same
    runs agrees on which side of the bracket every value falls."""
    goal = 2000.0
    target = parse_target(f"bad_debt_mean<={goal}")
    res = sweep(BOOK, [("venue.maintenance_margin_rate", [0.001, 0.05])], overrides=COMMON,
                out_dir=tmp_path / "t", target=target, rel_tol=0.02)
    info = read_json(tmp_path / "t" / "sweep.json")["target"]
    lo, hi = info["bracket"]
    assert res.threshold == hi and hi - lo <= 0.02 * hi
    rows = {r["venue.maintenance_margin_rate"]: r for r in res.rows}
    assert rows[hi]["bad_debt_mean"] <= goal < rows[lo]["bad_debt_mean"]
    assert all(r["meets_target"] == (r["bad_debt_mean"] <= goal) for r in res.rows)
    grid = [0.001, 0.5 * (lo + 0.001), lo, hi, 0.5 * (hi + 0.05), 0.05]
    brute = sweep(BOOK, [("venue.maintenance_margin_rate", sorted(set(grid)))],
                  overrides=COMMON, out_dir=tmp_path / "b")
    for r in brute.rows:
        rate = r["venue.maintenance_margin_rate"]
        assert (r["bad_debt_mean"] <= goal) == (rate >= hi), (rate, r["bad_debt_mean"])


def test_cli_sweep_and_its_errors(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["sweep", str(BOOK), "--grid", "venue.liquidation_fee_rate=0.005,0.01",
                 "--paths", "200", "--out", str(out)]) == 0
    assert "2 points" in capsys.readouterr().out
    assert pq.read_table(out / "sweep.parquet").num_rows == 2
    for argv, words in (
            (["--grid", "venue.no_such_key=1,2"], "no_such_key"),
            (["--grid", "venue.maintenance_margin_rate"], "KEY=V1,V2"),
            (["--grid", "venue.maintenance_margin_rate=0.01,0.01"], "repeated"),
            (["--grid", "venue.maintenance_margin_rate=-1,0.01"], "maintenance_margin_rate"),
            (["--grid", "venue.adl=true,false", "--grid", "venue.liquidation_fee_rate=0,1",
              "--target", "bad_debt_mean<=1"], "exactly one"),
            (["--grid", "venue.maintenance_margin_rate=0.01,0.02", "--target", "bad debt"],
             "METRIC<=VALUE")):
        bad = tmp_path / "bad"
        assert main(["sweep", str(BOOK), *argv, "--out", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and words in err, err
        assert not bad.exists()  # nothing written


def test_parse_grid_values_are_toml():
    assert parse_grid("venue.adl=true,false") == ("venue.adl", [True, False])
    assert parse_grid("a.b=1,2.5,x") == ("a.b", [1, 2.5, "x"])


def test_a_swept_policy_adds_its_figures_to_the_table_and_the_page():
    from simulator.report.sweep_page import SWEEP_METRICS, sweep_metrics

    columns = [*SWEEP_METRICS, "adl_overshoot", "vault_pnl_mean", "breaker_trip_prob"]
    assert sweep_metrics(["venue.maintenance_margin_rate"], columns) == SWEEP_METRICS
    adl = sweep_metrics(["venue.adl_ranking"], columns)
    assert adl == (*SWEEP_METRICS, "adl_overshoot")  # (the others are not in the columns)
    both = sweep_metrics(["venue.vault_disposal", "venue.circuit_breaker_band"], columns)
    assert both == (*SWEEP_METRICS, "vault_pnl_mean", "breaker_trip_prob")
    assert sweep_metrics(["venue.adl_ranking"], ["adl_overshoot"], base=("x",)) == (
        "adl_overshoot",)
