"""Crash safety and backends: a run killed with SIGKILL and resumed equals an uninterrupted
run; a Dask cluster on loopback gives files identical to loky."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from simulator import cli
from simulator.config.scenario import load_scenario
from simulator.execution.runner import run

ARGS = ["--paths", "1600", "--set", "simulation.chunk_paths=50", "--set",
        "simulation.steps=96", "--seed", "5"]


def _data(run_dir: Path, sub: str):
    return {p.name: pq.read_table(p).replace_schema_metadata(None)
            for p in sorted((run_dir / sub).glob("*.parquet"))}


def _same_run(a: Path, b: Path) -> None:
    for sub in ("paths", "events", "chunks"):
        ta, tb = _data(a, sub), _data(b, sub)
        assert list(ta) == list(tb) and ta, sub
        for name in ta:
            assert ta[name].equals(tb[name]), (sub, name)
    assert pq.read_table(a / "accounts.parquet").equals(pq.read_table(b / "accounts.parquet"))
    sa = json.loads((a / "summary.json").read_text())
    sb = json.loads((b / "summary.json").read_text())
    assert sa == sb


@pytest.mark.slow
def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path):
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "simulator", "run", "two-asset-crash", *ARGS, "--out",
           str(killed), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((killed / "chunks").glob("chunk-*.json"))) >= 2:
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # a chunk is complete when its record is written (last, after its parts)
    done_before = len(list((killed / "chunks").glob("chunk-*.json")))
    assert 2 <= done_before < 32, "the run must be interrupted part-way"
    assert not (killed / "summary.json").exists()
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["status"] == "running"

    # a plain rerun into the same directory is refused; --resume finishes it
    assert cli.main(["run", "two-asset-crash", *ARGS, "--out", str(killed)]) == 2
    assert cli.main(["run", "two-asset-crash", *ARGS, "--out", str(killed), "--resume",
                     "--quiet"]) == 0
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["chunks_run"] == 32 - done_before
    assert not [p for p in killed.rglob("*") if p.name.startswith(".")]  # no temp files

    whole = tmp_path / "whole"
    assert cli.main(["run", "two-asset-crash", *ARGS, "--out", str(whole), "--quiet"]) == 0
    _same_run(killed, whole)


def test_resume_refuses_a_different_run(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["run", "deterministic-gap", "--out", str(out), "--quiet"]
    assert cli.main(base) == 0
    assert cli.main([*base, "--resume", "--seed", "9"]) == 2
    assert "seed" in capsys.readouterr().err
    assert cli.main([*base, "--resume", "--set", "venue.liquidation_fee_rate=0.02"]) == 2
    assert "scenario_sha256" in capsys.readouterr().err
    # resuming a complete run runs no chunk and changes no result
    before = (out / "summary.json").read_text()
    assert cli.main([*base, "--resume"]) == 0
    assert json.loads((out / "manifest.json").read_text())["chunks_run"] == 0
    assert (out / "summary.json").read_text() == before
    assert cli.main(["run", "deterministic-gap", "--resume", "--out",
                     str(tmp_path / "nothing-here")]) == 2


@pytest.mark.slow
def test_dask_backend_matches_loky(tmp_path):
    distributed = pytest.importorskip("distributed")
    sc = load_scenario("two-asset-crash", ["simulation.paths=240", "simulation.chunk_paths=40",
                                           "simulation.steps=48"])
    run(sc, tmp_path / "loky", jobs=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        run(sc, tmp_path / "dask", backend="dask", scheduler=cluster.scheduler_address)
    _same_run(tmp_path / "loky", tmp_path / "dask")
    for sub in ("paths", "events"):
        for part in (tmp_path / "loky" / sub).iterdir():
            assert part.read_bytes() == (tmp_path / "dask" / sub / part.name).read_bytes()


def test_dask_backend_needs_a_scheduler(tmp_path, capsys):
    assert cli.main(["run", "deterministic-gap", "--backend", "dask", "--out",
                     str(tmp_path / "x")]) == 2
    assert "--scheduler" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def _same_files(a: Path, b: Path) -> None:
    """Every file of the two runs' manifests has the same bytes (checksums)."""
    fa = json.loads((a / "manifest.json").read_text())["files"]
    fb = json.loads((b / "manifest.json").read_text())["files"]
    assert fa == fb and any(name.startswith("events/") for name in fa)


@pytest.mark.slow
def test_ray_backend_matches_loky(tmp_path):
    """A private Ray instance on loopback (no --scheduler) gives the loky run's bytes."""
    pytest.importorskip("ray")
    sc = load_scenario("two-asset-crash", ["simulation.paths=240", "simulation.chunk_paths=40",
                                           "simulation.steps=48"])
    run(sc, tmp_path / "loky", jobs=2)
    assert cli.main(["run", "two-asset-crash", "--paths", "240", "--set",
                     "simulation.chunk_paths=40", "--set", "simulation.steps=48",
                     "--backend", "ray", "--jobs", "2", "--quiet",
                     "--out", str(tmp_path / "ray")]) == 0
    _same_run(tmp_path / "loky", tmp_path / "ray")
    _same_files(tmp_path / "loky", tmp_path / "ray")
    assert json.loads((tmp_path / "ray" / "manifest.json").read_text())["backend"] == "ray"


def test_ray_backend_unreachable_scheduler_is_one_line(tmp_path, capsys):
    """An address where nothing listens fails in seconds (Ray alone retries for minutes)."""
    pytest.importorskip("ray")
    assert cli.main(["run", "deterministic-gap", "--backend", "ray", "--scheduler",
                     "127.0.0.1:1", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "127.0.0.1:1" in err and "Ray" in err
    assert not (tmp_path / "x").exists()


def test_the_workers_generator_is_closed_with_signals_held(tmp_path, monkeypatch):
    """A Ctrl-C that landed while joblib's result generator was being cleaned up (at the
    end of the run, when it was garbage collected) was raised inside that cleanup: Python
    printed it as "Exception ignored in: <generator ...>" with a traceback, and the signal
    was lost. The runner now closes the generator itself, with signals held."""
    from contextlib import contextmanager

    from simulator.execution import backends
    from simulator.results import rundir

    held = {"now": False, "cleanup_held": None}
    real_deferred, real_dispatch = rundir.signals_deferred, backends.dispatch

    @contextmanager
    def deferred():
        with real_deferred():
            held["now"] = True
            try:
                yield
            finally:
                held["now"] = False

    def dispatch(*args, **kwargs):
        def gen():
            try:
                yield from real_dispatch(*args, **kwargs)
                yield None  # never reached: the runner stops after its last chunk
            finally:
                held["cleanup_held"] = held["now"]
        return gen()

    monkeypatch.setattr(rundir, "signals_deferred", deferred)
    monkeypatch.setattr(backends, "dispatch", dispatch)
    run(load_scenario("deterministic-gap"), tmp_path / "run")
    assert held["cleanup_held"] is True
