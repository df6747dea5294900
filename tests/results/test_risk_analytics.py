"""Risk analytics through a whole run: per-account VaR/ES at every level against an
independent sample of the exact law, venue tail metrics against NumPy on the paths file,
the insurance fund's draw against the events, and honest standard errors.

References: the terminal prices of correlated GBM are exactly lognormal, so a large NumPy
sample of ``S0 exp((mu - vol^2/2) T + vol sqrt(T) L z)`` (``L`` the Cholesky factor of the
correlation) gives the PnL law of a linear book without liquidations, independently of the
path kernels and the engine. Tolerances are 4 combined standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from simulator.config.scenario import scenario_from_dict
from simulator.errors import ScenarioError
from simulator.execution.runner import run
from simulator.results import risk
from simulator.results.atomic import read_json

K = 4.0
PRICES = {"X": 100.0, "Y": 40.0}
VOLS = {"X": 0.8, "Y": 1.1}
RHO = 0.6
QTY = {"long-both": {"X": 3.0, "Y": 5.0}, "spread": {"X": 2.0, "Y": -6.0}}


def linear_book(paths: int, seed: int, extra: dict | None = None) -> dict:
    accounts = [{"id": name, "collateral": {"USD": 1.0e7},
                 "positions": [{"symbol": s, "qty": q} for s, q in qty.items()]}
                for name, qty in QTY.items()]
    doc = {
        "name": "linear-book",
        "simulation": {"paths": paths, "steps": 4, "horizon_days": 10.0, "seed": seed,
                       "chunk_paths": 5000},
        "market": {"model": "gbm", "correlation": [[1.0, RHO], [RHO, 1.0]],
                   "assets": [{"symbol": s, "price": PRICES[s], "vol": VOLS[s]}
                              for s in PRICES]},
        "liquidity": {"impact": "none"},
        "venue": {"insurance_fund_usd": 0.0},
        "accounts": accounts,
    }
    for key, value in (extra or {}).items():
        doc[key] = {**doc.get(key, {}), **value}
    return doc


def reference_losses(name: str, n: int, horizon_days: float = 10.0) -> np.ndarray:
    """Losses of account ``name`` from an exact sample of the terminal prices."""
    rng = np.random.default_rng(12345)
    t = horizon_days / 365.0
    chol = np.linalg.cholesky(np.array([[1.0, RHO], [RHO, 1.0]]))
    z = rng.standard_normal((n, 2)) @ chol.T
    pnl = np.zeros(n)
    for j, sym in enumerate(PRICES):
        vol = VOLS[sym]
        s_t = PRICES[sym] * np.exp(-0.5 * vol**2 * t + vol * math.sqrt(t) * z[:, j])
        pnl += QTY[name][sym] * (s_t - PRICES[sym])
    return -pnl


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("linear") / "run"
    return run(scenario_from_dict(linear_book(40_000, 3)), out).out_dir


def test_account_var_es_at_every_level_match_the_exact_law(linear_run):
    rows = {r["account_id"]: r for r in pq.read_table(linear_run / "accounts.parquet")
            .to_pylist()}
    for name in QTY:
        losses = reference_losses(name, 2_000_000)
        for level, suffix in ((0.95, "95"), (0.99, "99"), (0.999, "999")):
            var_ref, var_ref_se, es_ref, es_ref_se = risk.var_es(losses, level)
            row = rows[name]
            for key, ref, ref_se in (("var", var_ref, var_ref_se), ("es", es_ref, es_ref_se)):
                got, se = row[f"{key}_{suffix}"], row[f"{key}_{suffix}_stderr"]
                assert se > 0.0
                assert abs(got - ref) <= K * math.hypot(se, ref_se), (name, key, level, got,
                                                                      ref, se)


def test_venue_tail_metrics_equal_numpy_on_the_paths_file(tmp_path):
    """Every level of ``risk_levels`` gives VaR (the ``k``-th largest loss,
    ``k = ceil((1 - level) n)``) and ES (the mean of those ``k``) of each venue
    quantity; the insurance fund's draw per path is what the events say it paid."""
    doc = scenario_from_dict({
        **linear_book(2000, 5),
        "simulation": {"paths": 2000, "steps": 24, "horizon_days": 1.0, "seed": 5,
                       "chunk_paths": 700, "risk_levels": [0.9, 0.99]},
        "liquidity": {"impact": "linear"},
        "market": {"model": "gbm", "assets": [{"symbol": "X", "price": 100.0, "vol": 1.5,
                                               "depth_usd": 2.0e5}]},
        "venue": {"insurance_fund_usd": 2000.0},
        "accounts": [],
        "population": {"count": 300, "seed": 2, "assets": ["X"],
                       "leverage": {"dist": "lognormal", "median": 15.0, "sigma": 0.6,
                                    "min": 1.0, "max": 50.0},
                       "notional_usd": {"dist": "lognormal", "median": 5000.0, "sigma": 1.0,
                                        "min": 100.0, "max": 1.0e5}},
    })
    out = run(doc, tmp_path / "r").out_dir
    summary = read_json(out / "summary.json")
    assert summary["risk_levels"] == [0.9, 0.99]
    metrics = summary["metrics"]
    paths = pq.read_table(out / "paths").to_pandas().sort_values("path_id")
    events = ds.dataset(out / "events").to_table(columns=["path_id", "fund_paid"]).to_pandas()
    paid = events.groupby("path_id")["fund_paid"].sum().reindex(paths["path_id"],
                                                                 fill_value=0.0)
    draw = 2000.0 + paths["fees"].to_numpy() - paths["insurance_fund_end"].to_numpy()
    np.testing.assert_allclose(draw, paid.to_numpy(), atol=1e-6)
    assert (paths["n_liquidations"] > 0).mean() > 0.3  # the book does get liquidated
    quantities = {"bad_debt": paths["bad_debt"], "insurance_fund_draw": paid,
                  "liquidated_notional": paths["liquidated_notional"],
                  "n_liquidations": paths["n_liquidations"]}
    n = len(paths)
    for name, values in quantities.items():
        x = np.asarray(values, dtype=float)
        for level, suffix in ((0.9, "90"), (0.99, "99")):
            # the k-th largest loss, k = ceil((1 - level) n): the tail ES averages
            k = math.ceil((1 - level) * n - 1e-9)
            desc = np.sort(x)[::-1]
            var, es = desc[k - 1], desc[:k].mean()
            assert metrics[f"{name}_var_{suffix}"]["estimate"] == pytest.approx(var, abs=1e-6)
            assert metrics[f"{name}_es_{suffix}"]["estimate"] == pytest.approx(es, rel=1e-9,
                                                                              abs=1e-6)
    assert "bad_debt_var_95" not in metrics  # only the levels asked for (and 0.99)
    share = paths["n_cascade_liquidations"].sum() / paths["n_liquidations"].sum()
    assert metrics["cascade_share"]["estimate"] == pytest.approx(share)
    assert 0.0 < share < 1.0
    first = paths["first_liquidation_step"].dropna().to_numpy()
    assert metrics["first_liquidation_step_p50"]["estimate"] == np.sort(first)[
        math.ceil(0.5 * len(first)) - 1]
    hist = summary["distributions"]["max_cascade_rounds"]
    counts = paths["max_cascade_rounds"].value_counts()
    assert hist == {str(k): int(v) for k, v in sorted(counts.items())}


@pytest.mark.parametrize("levels, message", [
    ([0.99, 1.2], "risk_levels[1]"), ("high", "risk_levels"), ([], "risk_levels"),
    ([True], "risk_levels[0]")])
def test_bad_risk_levels_are_refused_with_their_key(levels, message):
    doc = linear_book(10, 1)
    doc["simulation"]["risk_levels"] = levels
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        scenario_from_dict(doc)


@pytest.mark.slow
def test_account_var_standard_errors_are_honest_over_seeds(tmp_path):
    """Over repeated seeds, about 95% of the reported +/-1.96 SE intervals of an account's
    VaR99 and ES99 cover the exact figures (binomial tolerance, 4 of its SE)."""
    losses = reference_losses("long-both", 4_000_000)
    var_ref, _, es_ref, _ = risk.var_es(losses, 0.99)
    reps = 200
    cover = {"var_99": 0, "es_99": 0}
    for seed in range(reps):
        out = run(scenario_from_dict(linear_book(3000, 100 + seed)), tmp_path / f"r{seed}",
                  progress=False).out_dir
        row = next(r for r in pq.read_table(out / "accounts.parquet").to_pylist()
                   if r["account_id"] == "long-both")
        cover["var_99"] += abs(row["var_99"] - var_ref) <= 1.96 * row["var_99_stderr"]
        cover["es_99"] += abs(row["es_99"] - es_ref) <= 1.96 * row["es_99_stderr"]
    se = math.sqrt(0.95 * 0.05 / reps)
    for key, hits in cover.items():
        assert abs(hits / reps - 0.95) < K * se, (key, hits / reps)
