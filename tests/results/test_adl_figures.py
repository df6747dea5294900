"""The ADL figures of a run (issue #20) against a recomputation from its ``events/`` table,
and the same figures when ``simulation.events`` keeps no event (they come from the chunk's
whole event buffer, not from the table): a small ``october-2025-cascade`` run, where the
backstop vault and ADL cover the crash's bad debt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from simulator import load_scenario, run
from simulator.results import risk

OVERRIDES = ["simulation.paths=16", "simulation.chunk_paths=8"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for events in ("all", "none"):
        d = tmp_path_factory.mktemp(f"oct-{events}")
        run(load_scenario("october-2025-cascade", [*OVERRIDES, f"simulation.events={events}"]),
            d)
        out[events] = d
    return out


def test_path_figures_match_the_events_table(runs):
    paths = pq.read_table(runs["all"] / "paths").to_pandas().set_index("path_id")
    ev = pq.read_table(runs["all"] / "events").to_pandas()
    adl = ev[ev["kind"] == "adl"]
    assert len(adl) > 100  # the comparison covers real ADL
    covered = adl.groupby("path_id")["bad_debt"].sum().reindex(paths.index, fill_value=0.0)
    notional = adl.groupby("path_id")["notional"].sum().reindex(paths.index, fill_value=0.0)
    fills = adl.groupby("path_id").size().reindex(paths.index, fill_value=0)
    np.testing.assert_allclose(paths["adl_covered"], covered, rtol=1e-9)
    np.testing.assert_allclose(paths["adl_notional"], notional, rtol=1e-9)
    assert (paths["n_adl"] == fills).all()
    with np.errstate(invalid="ignore", divide="ignore"):
        np.testing.assert_allclose(paths["adl_overshoot"], np.where(
            covered > 0, notional / covered, np.nan), rtol=1e-9)
    has = fills > 0
    for name in ("adl_leverage_mean", "adl_leverage_median", "adl_pnl_mean",
                 "adl_in_profit_share"):
        assert paths.loc[has, name].notna().all() and paths.loc[~has, name].isna().all()
    assert (paths.loc[has, "adl_leverage_median"] > 0).all()
    share = paths.loc[has, "adl_in_profit_share"]
    assert ((share >= 0) & (share <= 1)).all()


def test_summary_pools_over_paths(runs):
    paths = pq.read_table(runs["all"] / "paths").to_pandas()
    metrics = json.loads((runs["all"] / "summary.json").read_text())["metrics"]
    est, se = risk.ratio_se(paths["adl_notional"], paths["adl_covered"])
    assert metrics["adl_overshoot"] == {"estimate": pytest.approx(est),
                                        "stderr": pytest.approx(se)}
    n = paths["n_adl"].to_numpy(float)
    pnl = paths["adl_pnl_mean"].fillna(0.0).to_numpy()
    assert metrics["adl_pnl_mean"]["estimate"] == pytest.approx((n * pnl).sum() / n.sum())
    medians = paths["adl_leverage_median"].dropna()
    assert metrics["adl_leverage_median_mean"]["estimate"] == pytest.approx(medians.mean())
    for name in ("adl_covered_mean", "adl_leverage_mean", "adl_in_profit_share"):
        assert metrics[name]["stderr"] is not None


def test_adl_probability_matches_the_events(runs):
    accounts = pq.read_table(runs["all"] / "accounts.parquet").to_pandas()
    ev = pq.read_table(runs["all"] / "events").to_pandas()
    adl = ev[ev["kind"] == "adl"]
    n_paths = 16
    per_account = adl.groupby(adl["account_id"].astype(str))["path_id"].nunique()
    want = (accounts["account_id"].astype(str).map(per_account).fillna(0) / n_paths).to_numpy()
    np.testing.assert_allclose(accounts["adl_probability"], want, rtol=1e-12)
    assert (want > 0).sum() > 10
    p = accounts["adl_probability"].to_numpy()
    np.testing.assert_allclose(accounts["adl_probability_stderr"],
                               np.sqrt(p * (1 - p) / n_paths), rtol=1e-12)


def test_figures_do_not_depend_on_the_events_kept(runs):
    assert pq.read_table(runs["none"] / "events").num_rows == 0
    cols = ["adl_covered", "adl_overshoot", "adl_leverage_mean", "adl_leverage_median",
            "adl_pnl_mean", "adl_in_profit_share"]
    a = pq.read_table(runs["all"] / "paths", columns=cols).to_pandas()
    b = pq.read_table(runs["none"] / "paths", columns=cols).to_pandas()
    assert a.equals(b)
    acc = [pq.read_table(runs[k] / "accounts.parquet", columns=["adl_probability"])
           for k in ("all", "none")]
    assert acc[0].equals(acc[1])
