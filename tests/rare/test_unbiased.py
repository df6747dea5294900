"""Rare-event mode is unbiased: on a book where the event has probability about 1e-2, the
weighted estimates agree with a plain run of four times the paths within 4 combined
standard errors (the benchmark ``bench_rare.py`` repeats this against 1,000,000 plain
paths)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq

from simulator.config.scenario import load_scenario
from simulator.execution.runner import run

K = 4.0
#: the flagship's book cut to 300 synthetic accounts over 96 steps; bad debt above 104k USD
#: has a probability of about 1e-2 there
SMALL = ["population.count=300", "simulation.steps=96", "simulation.chunk_paths=5000"]
EVENT = "bad_debt>104000"


def test_weighted_estimates_agree_with_a_plain_run(tmp_path):
    plain = run(load_scenario("two-asset-crash", [*SMALL, "simulation.paths=40000",
                                                  "simulation.seed=1"]), tmp_path / "plain")
    rare = run(load_scenario("two-asset-crash", [*SMALL, "simulation.paths=10000",
                                                 "simulation.seed=2",
                                                 f"simulation.rare_event={EVENT}"]),
               tmp_path / "rare")
    bad = pq.read_table(tmp_path / "plain" / "paths", columns=["bad_debt"]).column(0)
    hit = bad.to_numpy() > 104_000
    p_plain = hit.mean()
    p_plain_se = math.sqrt(p_plain * (1 - p_plain) / hit.size)
    assert 0.004 < p_plain < 0.03
    p = rare.summary["metrics"]["rare_event_prob"]
    assert abs(p["estimate"] - p_plain) < K * math.hypot(p["stderr"], p_plain_se)
    assert 10_000 * p["stderr"] ** 2 < 40_000 * p_plain_se**2 / 2  # per path: 2x at least
    for name in ("bad_debt_mean", "bad_debt_var_99", "bad_debt_es_99", "bad_debt_var_999",
                 "insurance_fund_draw_es_99", "liquidation_prob"):
        a, b = plain.summary["metrics"][name], rare.summary["metrics"][name]
        se = math.hypot(a["stderr"], b["stderr"])
        assert abs(a["estimate"] - b["estimate"]) <= K * se + 1e-9 * abs(a["estimate"]), name
    # the tail metrics the tilt aims at have less variance per path
    for name in ("bad_debt_var_99", "bad_debt_es_99", "bad_debt_es_999"):
        se_rare = rare.summary["metrics"][name]["stderr"]
        se_plain = plain.summary["metrics"][name]["stderr"]
        assert 10_000 * se_rare**2 < 40_000 * se_plain**2, name
    weight = pq.read_table(tmp_path / "plain" / "paths", columns=["weight"]).column(0)
    assert np.all(weight.to_numpy() == 1.0)  # a plain run's weights
