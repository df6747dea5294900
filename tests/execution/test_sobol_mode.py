"""``simulation.variance_reduction = "sobol"``: each chunk one scrambled Sobol point set,
standard errors from the spread of the chunks; its estimates agree with a plain run, its
errors are smaller, its files do not depend on the workers, and bad settings are refused."""

from __future__ import annotations

import json
import math

import pytest

from simulator.config.scenario import load_scenario
from simulator.errors import ScenarioError
from simulator.execution.runner import run

K = 4.0
SMALL = ["population.count=200", "simulation.steps=48", "simulation.events=none"]
SOBOL = [*SMALL, "simulation.variance_reduction=sobol", "simulation.paths=4096",
         "simulation.chunk_paths=512"]


@pytest.mark.parametrize(("sets", "needles"), [
    (["simulation.chunk_paths=1000"], ["chunk_paths", "power of 2", "1,024"]),
    (["simulation.paths=5000"], ["not a multiple of chunk_paths"]),
    (["simulation.paths=512"], ["fewer than 2"]),
    (["simulation.rare_event=fund_depletion"], ["rare-event mode is importance sampling"]),
    (["market.model=merton"], ["the sobol mode draws the increments", "merton"]),
    (["simulation.steps=20000"], ["40,000 here", "at most 21,201"]),
])
def test_bad_sobol_settings_name_the_key(sets, needles):
    with pytest.raises(ScenarioError) as info:
        load_scenario("two-asset-crash", [*SOBOL, *sets])
    for needle in needles:
        assert needle in str(info.value)


def test_the_digest_holds_the_mode():
    plain = load_scenario("two-asset-crash", SMALL)
    assert "variance_reduction" not in plain.resolved()["simulation"]
    assert load_scenario("two-asset-crash", SOBOL).resolved()["simulation"][
        "variance_reduction"] == "sobol"


@pytest.mark.slow
def test_sobol_agrees_with_plain_and_is_sharper(tmp_path):
    qmc = run(load_scenario("two-asset-crash", SOBOL), tmp_path / "sobol", jobs=2)
    plain = run(load_scenario("two-asset-crash", [*SMALL, "simulation.paths=16384",
                                                  "simulation.chunk_paths=4096",
                                                  "simulation.seed=3"]), tmp_path / "plain")
    assert qmc.summary["variance_reduction"] == {
        "method": "sobol", "scrambles": 8, "stderr_from": "the spread of the chunk estimates"}
    for name in ("bad_debt_mean", "n_liquidations_mean", "liquidated_notional_mean",
                 "insurance_fund_end_mean", "bad_debt_var_99", "bad_debt_es_99"):
        a, b = qmc.summary["metrics"][name], plain.summary["metrics"][name]
        assert abs(a["estimate"] - b["estimate"]) < K * math.hypot(a["stderr"], b["stderr"]), name
    # smooth means: the error of plain Monte Carlo with 4 times the paths, at least
    for name in ("bad_debt_mean", "liquidated_notional_mean", "insurance_fund_end_mean"):
        se_q = qmc.summary["metrics"][name]["stderr"]
        se_p = plain.summary["metrics"][name]["stderr"]
        assert 4096 * se_q**2 * 4 < 16384 * se_p**2, name
    # the same files with one worker
    again = run(load_scenario("two-asset-crash", SOBOL), tmp_path / "one", jobs=1)
    files = [json.loads((d / "manifest.json").read_text())["files"]
             for d in (tmp_path / "sobol", tmp_path / "one")]
    assert files[0] == files[1]
    assert again.summary == qmc.summary


@pytest.mark.slow
def test_sobol_resume_and_dask_give_the_same_files(tmp_path, monkeypatch):
    """A Sobol run killed in its last chunk and resumed, and the same run on a Dask
    cluster on loopback, write the files of the uninterrupted loky run."""
    from simulator import cli

    from ..support.run_dirs import killed_in_chunk

    args = ["run", "two-asset-crash", *[f"--set={s}" for s in SMALL],
            "--set=simulation.variance_reduction=sobol", "--paths", "768",
            "--set=simulation.chunk_paths=256", "--quiet"]
    assert cli.main([*args, "--out", str(tmp_path / "whole")]) == 0
    assert killed_in_chunk([*args, "--out", str(tmp_path / "killed")], monkeypatch) == 130
    assert cli.main([*args, "--out", str(tmp_path / "killed"), "--resume"]) == 0
    files = [json.loads((tmp_path / d / "manifest.json").read_text())["files"]
             for d in ("whole", "killed")]
    assert files[0] == files[1]

    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        assert cli.main([*args, "--out", str(tmp_path / "dask"), "--backend", "dask",
                         "--scheduler", cluster.scheduler_address]) == 0
        rare = ["run", "two-asset-crash", *[f"--set={s}" for s in SMALL], "--paths", "600",
                "--set=simulation.chunk_paths=200", "--set=simulation.rare_pilot_paths=300",
                "--rare", "bad_debt>90000", "--quiet"]
        assert cli.main([*rare, "--out", str(tmp_path / "rare-dask"), "--backend", "dask",
                         "--scheduler", cluster.scheduler_address]) == 0
    assert cli.main([*rare, "--out", str(tmp_path / "rare-loky"), "--jobs", "2"]) == 0
    for a, b in (("whole", "dask"), ("rare-loky", "rare-dask")):
        fa, fb = (json.loads((tmp_path / d / "manifest.json").read_text())["files"]
                  for d in (a, b))
        assert fa == fb, (a, b)
