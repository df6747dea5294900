"""Rare-event runs: the weights are the likelihood ratios of the recorded tilt (checked
against the NumPy reference generator), their mean is 1 under the plain measure, the
files are bit-identical whatever the workers, ``--resume`` keeps the tilt, and a sweep's
points share the tilted paths and weights."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from simulator import cli
from simulator.config.scenario import load_scenario
from simulator.execution import runner
from simulator.execution.runner import run
from simulator.paths import generate_paths_numpy, prepare_path_inputs
from simulator.results import risk
from simulator.sweeps.sweep import sweep

from ..support.run_dirs import killed_in_chunk

K = 4.0
SMALL = ["population.count=200", "simulation.steps=48", "simulation.paths=600",
         "simulation.chunk_paths=200", "simulation.rare_pilot_paths=500",
         "simulation.rare_event=bad_debt>90000"]
ARGS = [f"--set={s}" for s in SMALL]


def _weights(run_dir):
    return pq.read_table(run_dir / "paths", columns=["weight"]).column(0).to_numpy()


def test_weights_are_the_likelihood_ratios_of_the_recorded_tilt(tmp_path):
    sc = load_scenario("two-asset-crash", SMALL)
    result = run(sc, tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    theta = np.array(manifest["rare_event"]["theta"])
    assert theta.shape == (48, 2) and np.abs(theta).max() > 0
    share = manifest["rare_event"]["defensive_share"]
    assert share == 0.1  # the default
    # chunk 0 again, with the NumPy reference generator from the chunk's own seed: every
    # tenth path plain (path ids 9, 19, ...), the weight p / (0.1 p + 0.9 q)
    seed = np.random.SeedSequence(sc.simulation.seed).spawn(3)[0]
    shift = np.arange(200) % 10 != 9
    log_ratio = np.empty(200)
    generate_paths_numpy(prepare_path_inputs(sc), 200, np.random.default_rng(seed),
                         theta=theta, log_weight=log_ratio, shift=shift)
    w = _weights(tmp_path / "run")
    np.testing.assert_allclose(w[:200], 1.0 / (share + (1 - share) / np.exp(log_ratio)),
                               rtol=1e-10)
    assert w.max() <= 1 / share * (1 + 1e-12)
    rare = result.summary["rare_event"]
    assert rare["effective_sample_size"] == pytest.approx(w.sum() ** 2 / (w @ w), rel=1e-12)
    assert rare["mean_weight"] == pytest.approx(w.mean(), rel=1e-12)
    assert rare["condition"] == "bad_debt>90000" and rare["method"] == "importance"
    assert result.summary["metrics"]["rare_event_prob"] == rare["probability"]
    assert manifest["rare_event"]["theta"] == rare["theta"]


def test_the_weights_average_one_under_the_plain_measure():
    """E_Q[w] = 1: 40,000 paths of a fixed tilt, the mean weight within 4 standard errors
    of 1 (and the effective sample size below the number of paths)."""
    sc = load_scenario("two-asset-crash", ["simulation.steps=48"])
    inputs = prepare_path_inputs(sc)
    theta = np.zeros((48, 2))
    theta[0] = (-1.5, -0.5)  # the gap's step, as the pilot tilts it
    theta[1:12] = -0.1
    from simulator.paths import generate_paths

    log_w = np.empty(40_000)
    generate_paths(inputs, 40_000, np.random.default_rng(3), theta=theta, log_weight=log_w)
    w = np.exp(log_w)
    mean, se = risk.mean_se(w)
    assert abs(mean - 1.0) < K * se
    second = math.exp(float((theta**2).sum()))  # E_Q[w**2] = exp(|theta|**2)
    assert np.mean(w**2) == pytest.approx(second, rel=0.15)
    assert risk.effective_sample_size(w) < 0.5 * w.size


def _manifest_files(run_dir):
    return json.loads((run_dir / "manifest.json").read_text())["files"]


@pytest.mark.slow
def test_files_are_bit_identical_across_jobs_and_resume_keeps_the_tilt(tmp_path, monkeypatch):
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli.main(["run", "two-asset-crash", *ARGS, "--out", str(one), "--quiet"]) == 0
    assert cli.main(["run", "two-asset-crash", *ARGS, "--out", str(two), "--quiet",
                     "--jobs", "2"]) == 0
    assert _manifest_files(one) == _manifest_files(two)

    # killed in its last chunk, then resumed without a pilot: the same files
    killed = tmp_path / "killed"
    assert killed_in_chunk(["run", "two-asset-crash", *ARGS, "--out", str(killed), "--quiet"],
                           monkeypatch) == 130

    def no_pilot(*args, **kwargs):
        raise AssertionError("a resumed run tunes no tilt: it keeps the recorded one")

    monkeypatch.setattr(runner, "tune_rare_tilt", no_pilot)
    assert cli.main(["run", "two-asset-crash", *ARGS, "--out", str(killed), "--quiet",
                     "--resume"]) == 0
    assert _manifest_files(killed) == _manifest_files(one)
    assert json.loads((killed / "manifest.json").read_text())["chunks_run"] == 1


@pytest.mark.slow
def test_a_sweep_shares_one_tilt_and_its_weights(tmp_path):
    res = sweep("two-asset-crash", [("venue.liquidation_fee_rate", [0.01, 0.02])],
                overrides=SMALL, out_dir=tmp_path / "sw")
    info = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert info["rare_event"]["event"] == "bad_debt>90000"
    dirs = [tmp_path / "sw" / row["point_dir"] for row in res.rows]
    w0, w1 = _weights(dirs[0]), _weights(dirs[1])
    assert np.array_equal(w0, w1) and not np.all(w0 == 1.0)
    for d in dirs:
        theta = json.loads((d / "manifest.json").read_text())["rare_event"]["theta"]
        assert theta == info["rare_event"]["theta"]
    table = pq.read_table(tmp_path / "sw" / "sweep.parquet")
    assert "rare_event_prob" in table.column_names
    assert "rare_event_prob_stderr" in table.column_names
