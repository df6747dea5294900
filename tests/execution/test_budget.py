"""Refusing the impossible up front (``simulator.execution.budget``): runs and books too
large for the
machine are refused before anything is allocated, with one line naming the figures and the
keys to change. Nothing here allocates the amounts it refuses: the available memory and
free disk are patched down where a test needs a refusal, and the functions that would
allocate are guarded.
"""

from __future__ import annotations

import os
import shutil
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from simulator import cli
from simulator.config.limits import MAX_CHUNKS
from simulator.config.scenario import load_scenario, scenario_from_dict
from simulator.errors import MarginsimError, ScenarioError
from simulator.execution import backends, budget, runner
from simulator.paths import generate_paths, prepare_path_inputs

from ..support.cli_checks import error_line as _error_line
from ..support.toml_text import one_asset_scenario

GIB = 1 << 30
MIB = 1 << 20

BASE = one_asset_scenario("budget", "paths = 4096\nchunk_paths = 4096\nsteps = 288\n")

POPULATION = BASE + "[population]\ncount = 10000000\n"


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(BASE)
    return path


def _forbid(monkeypatch, module, name: str) -> None:
    """Make ``module.name`` fail the test if called (it would allocate what is refused)."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"{name} was called: the run was not refused up front")

    monkeypatch.setattr(module, name, refuse, raising=False)


def _memory(monkeypatch, nbytes: int) -> None:
    monkeypatch.setattr(budget, "available_memory_bytes", lambda: nbytes)


# --------------------------------------------------------------------------- through the CLI


def test_huge_paths_refused_quickly(tmp_path, capsys, monkeypatch):
    """``marginsim run two-asset-crash --paths 1000000000000``: 244 million chunks, and
    ``numpy.random.SeedSequence(seed).spawn(n_chunks)`` allocated 5.5 GB, then crashed."""
    _forbid(monkeypatch, runner, "plan_chunks")
    out = tmp_path / "run"
    start = time.perf_counter()
    line = _error_line(capsys, ["run", "two-asset-crash", "--paths", "1000000000000",
                                "--out", str(out)])
    assert time.perf_counter() - start < 10
    for needle in ("simulation.paths", "1,000,000,000,000", "simulation.chunk_paths",
                   f"at most {MAX_CHUNKS:,}"):
        assert needle in line, (needle, line)
    assert not out.exists()


def test_million_steps_refused_before_allocation(scenario_file, tmp_path, capsys, monkeypatch):
    """``marginsim run s.toml --set simulation.steps=1000000 --paths 8192 --jobs 2``: each
    chunk of 4,096 paths allocated a 4,096 x 1,000,001 float64 price array (30.5 GiB) in
    each of 2 workers, and the run died out of memory after creating its run directory.
    (Available memory is set to 20 GiB here, so the refusal is the same on any machine.)"""
    _memory(monkeypatch, 20 * GIB)
    _forbid(monkeypatch, runner, "generate_paths")  # (in this process)
    _forbid(monkeypatch, backends, "dispatch")  # (before any worker starts)
    out = tmp_path / "run"
    start = time.perf_counter()
    line = _error_line(capsys, ["run", str(scenario_file), "--set", "simulation.steps=1000000",
                                "--paths", "8192", "--jobs", "2", "--out", str(out)])
    assert time.perf_counter() - start < 15
    for needle in ("simulation.chunk_paths = 4,096", "simulation.steps = 1,000,000",
                   "one chunk needs about 30.5 GiB", "2 workers", "20.0 GiB available",
                   "--jobs"):
        assert needle in line, (needle, line)
    assert not out.exists()


# --------------------------------------------------------------------------- the loader


def test_max_chunks_is_checked_by_the_loader(scenario_file):
    assert budget.MAX_CHUNKS == MAX_CHUNKS == 1_000_000
    most = f"simulation.paths={MAX_CHUNKS * 4096}"
    assert load_scenario(scenario_file, [most]).simulation.paths == MAX_CHUNKS * 4096
    with pytest.raises(ScenarioError) as info:
        load_scenario(scenario_file, [f"simulation.paths={MAX_CHUNKS * 4096 + 1}"])
    assert info.value.key == "simulation.paths"
    assert "1,000,001 chunks" in info.value.message
    assert "raise simulation.chunk_paths" in info.value.message


# --------------------------------------------------------------------------- estimates


def test_chunk_estimate_covers_the_price_array_and_tracks_the_measured_peak(tmp_path):
    """The estimate is at least the exogenous price array ``generate_paths`` allocates, and
    within 20x of the ``tracemalloc`` peak of ``run_chunk`` (which also holds the
    events, which the estimate cannot know)."""
    doc = {"simulation": {"paths": 2000, "chunk_paths": 1000, "steps": 288},
           "market": {"assets": [
               {"symbol": "BTC", "price": 6e4, "vol": 0.8, "depth_usd": 2e7},
               {"symbol": "ETH", "price": 3e3, "vol": 1.0, "depth_usd": 1e7}]},
           "shocks": [{"kind": "gap", "step": 1, "asset": "BTC", "size": -0.1}],
           "population": {"count": 200, "seed": 3}}
    sc = scenario_from_dict(doc)
    exo = generate_paths(prepare_path_inputs(sc), 1000, np.random.default_rng(1))
    for save in (0, 300):
        estimate = budget.chunk_memory_bytes(sc, save)
        assert estimate >= exo.nbytes + save * 289 * 2 * 8
        out = tmp_path / f"run-{save}"
        for sub in ("paths", "events", "chunks", "prices", "prices_no_impact"):
            (out / sub).mkdir(parents=True)
        ctx = runner.ChunkContext.build(sc, out, save, "0")
        tasks = runner.plan_chunks(2000, 1000, 7)
        runner.run_chunk(ctx, tasks[1])  # compiled and warm
        tracemalloc.start()
        try:
            runner.run_chunk(ctx, tasks[0])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak / 20 <= estimate <= 20 * peak, (estimate, peak)


def test_book_estimate_matches_a_measured_build():
    """The per-account figures against a fresh ``tracemalloc`` measurement: 20,000 accounts
    with up to 2 positions each, half of them isolated."""
    doc = {"simulation": {"paths": 10, "steps": 4},
           "market": {"assets": [{"symbol": "BTC", "price": 6e4, "vol": 0.8},
                                 {"symbol": "ETH", "price": 3e3, "vol": 1.0}]},
           "population": {"count": 20_000, "max_positions": 2,
                          "margin_modes": {"cross": 0.5, "isolated": 0.5}}}
    sc = scenario_from_dict(doc)
    small = scenario_from_dict({**doc, "population": {"count": 10}})
    runner.ChunkContext.build(small, Path("unused"), 0, "0")  # imports and kernels warm
    tracemalloc.start()
    try:
        runner.ChunkContext.build(sc, Path("unused"), 0, "0")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    estimate = budget.book_memory_bytes(sc)
    assert 0.6 * peak <= estimate <= 2.0 * peak, (estimate, peak)


def test_disk_lower_bound_is_below_a_real_run(scenario_file, tmp_path):
    """``paths/`` and ``prices/`` of a small run take more than the lower bound."""
    out = tmp_path / "run"
    assert cli.main(["run", str(scenario_file), "--paths", "2000", "--set",
                     "simulation.chunk_paths=1000", "--save-prices", "20", "--out", str(out),
                     "--quiet"]) == 0
    written = sum(p.stat().st_size for sub in ("paths", "prices", "prices_no_impact")
                  for p in (out / sub).rglob("*") if p.is_file())
    sc = load_scenario(scenario_file, ["simulation.paths=2000"])
    assert 0 < budget.run_disk_bytes(sc, 20) <= written
    assert budget.run_disk_bytes(sc, 0) < budget.run_disk_bytes(sc, 20)
    fixed = load_scenario(scenario_file, ["market.assets.0.vol=0"])
    assert budget.run_disk_bytes(fixed, 20) == 0  # identical paths compress to nothing


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(("sets", "save", "jobs", "needles"), [
    pytest.param(["simulation.steps=100000"], 0, 1,
                 ("simulation.chunk_paths = 4,096 paths x simulation.steps = 100,000 x 1 asset",
                  "one chunk needs about", "lower simulation.chunk_paths (or simulation.steps)"),
                 id="steps"),
    pytest.param(["simulation.steps=20000", "simulation.paths=40960"], 0, 4,
                 ("4 workers", "(or simulation.steps, or --jobs)"), id="jobs"),
    pytest.param(["simulation.steps=20000"], 4096, 1,
                 ("--save-prices 4,096", "lower --save-prices"), id="save-prices"),
    pytest.param(["population.count=10000000"], 0, 1,
                 ("population.count = 10,000,000", "the book of 10,000,001 accounts",
                  "lower population.count"), id="population"),
])
def test_memory_refusals_name_figures_and_keys(scenario_file, tmp_path, monkeypatch, sets, save,
                                               jobs, needles):
    sc = load_scenario(scenario_file, sets)
    _memory(monkeypatch, 512 * MIB)
    with pytest.raises(MarginsimError) as info:
        budget.check_resources(sc, jobs=jobs, save_prices=save, out_dir=tmp_path / "run")
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{scenario_file}: ")
    assert "512 MiB available" in text
    for needle in needles:
        assert needle in text, (needle, text)
    _memory(monkeypatch, 1 << 50)
    budget.check_resources(sc, jobs=jobs, save_prices=save, out_dir=tmp_path / "run")


def test_workers_hold_a_copy_of_the_book_each(scenario_file, monkeypatch, tmp_path):
    sc = load_scenario(scenario_file, ["population.count=1000000", "simulation.paths=40960"])
    book = budget.book_memory_bytes(sc)
    chunk = budget.chunk_memory_bytes(sc)
    one = book + chunk
    _memory(monkeypatch, int(1.5 * one))
    budget.check_resources(sc, jobs=1, save_prices=0, out_dir=tmp_path)
    with pytest.raises(MarginsimError, match=r"in each of 3 processes \(the run and 2 workers\)"):
        budget.check_resources(sc, jobs=2, save_prices=0, out_dir=tmp_path)


def test_disk_refusal(scenario_file, tmp_path, monkeypatch):
    sc = load_scenario(scenario_file, ["simulation.paths=100000000"])
    _memory(monkeypatch, 1 << 50)
    monkeypatch.setattr(budget, "_free_disk_bytes", lambda out_dir: 100 * MIB)
    with pytest.raises(MarginsimError) as info:
        budget.check_resources(sc, jobs=1, save_prices=100, out_dir=tmp_path / "run")
    text = str(info.value)
    for needle in ("simulation.paths = 100,000,000", "--save-prices 100", "at least 763 MiB",
                   "100 MiB free at", "lower simulation.paths (or --save-prices)", "--out"):
        assert needle in text, (needle, text)


def test_free_disk_of_a_directory_not_yet_made(tmp_path):
    free = budget._free_disk_bytes(tmp_path / "a" / "b" / "c")
    assert free is not None and free > 0
    assert abs(free - shutil.disk_usage(tmp_path).free) < 1 << 30


def test_check_book_refuses_before_building(tmp_path, monkeypatch):
    """``marginsim validate`` of ``[population] count = 10000000`` (the documented maximum)
    took 4.6 GB building the book; with less memory it died. Now it is refused first."""
    path = tmp_path / "pop.toml"
    path.write_text(POPULATION)
    sc = load_scenario(path)
    assert 3 * GIB < budget.book_memory_bytes(sc) < 8 * GIB
    _forbid(monkeypatch, budget, "build_book")
    _memory(monkeypatch, 2 * GIB)
    with pytest.raises(MarginsimError) as info:
        budget.check_book(sc)
    text = str(info.value)
    for needle in (str(path), "population.count = 10,000,000", "10,000,001 accounts",
                   "GiB; 2.00 GiB available", "lower population.count"):
        assert needle in text, (needle, text)
    _memory(monkeypatch, 64 * GIB)
    budget.check_book(sc)


# --------------------------------------------------------------------------- the machine


def test_available_memory_is_plausible():
    avail = budget.available_memory_bytes()
    assert avail > 16 * MIB
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        assert avail <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def test_meminfo():
    text = "MemTotal:       16000000 kB\nMemFree: 1 kB\nMemAvailable:    8000000 kB\n"
    assert budget._meminfo_available(text) == 8_000_000 * 1024
    assert budget._meminfo_available("MemTotal: 1 kB\n") is None


def test_cgroup_limits(tmp_path):
    proc = tmp_path / "cgroup"
    root = tmp_path / "fs"
    root.mkdir()
    proc.write_text("0::/\n")
    assert budget._cgroup_available(root, proc) is None
    (root / "memory.max").write_text("max\n")
    assert budget._cgroup_available(root, proc) is None
    (root / "memory.max").write_text(f"{4 * GIB}\n")
    assert budget._cgroup_available(root, proc) == 4 * GIB  # no usage known: the limit
    (root / "memory.current").write_text(f"{3 * GIB}\n")
    (root / "memory.stat").write_text(f"anon 1\ninactive_file {GIB // 2}\n")
    assert budget._cgroup_available(root, proc) == GIB + GIB // 2
    # a tighter limit on this process's own cgroup (v2) and a v1 hierarchy
    proc.write_text("0::/job\n4:memory:/v1job\n")
    (root / "job").mkdir()
    (root / "job" / "memory.max").write_text(f"{GIB}\n")
    (root / "job" / "memory.current").write_text(f"{GIB // 4}\n")
    assert budget._cgroup_available(root, proc) == 3 * GIB // 4
    (root / "memory" / "v1job").mkdir(parents=True)
    (root / "memory" / "v1job" / "memory.limit_in_bytes").write_text(f"{GIB // 2}\n")
    (root / "memory" / "v1job" / "memory.usage_in_bytes").write_text(f"{GIB // 2}\n")
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert budget._cgroup_available(root, proc) == 0


def test_fmt_bytes():
    assert budget.fmt_bytes(512) == "512 bytes"
    assert budget.fmt_bytes(30.5 * GIB) == "30.5 GiB"
    assert budget.fmt_bytes(1000 * GIB) == "1,000 GiB"
    assert budget.fmt_bytes(3 * 1024 * GIB) == "3.00 TiB"
    assert budget.fmt_bytes(10**400) == "more than 1e308 bytes"


def test_the_bridge_counts_in_a_chunks_memory():
    """With intrastep = "bridge" a chunk also holds each price's intrastep low and high:
    twice the exogenous prices more."""
    from simulator.config.scenario import load_scenario
    from simulator.execution.budget import chunk_memory_bytes

    args = ["simulation.paths=4096", "simulation.chunk_paths=4096"]
    plain = load_scenario("two-asset-crash", args)
    bridged = load_scenario("two-asset-crash", [*args, "simulation.intrastep=bridge"])
    exo = 4096 * 289 * 2 * 8
    assert chunk_memory_bytes(bridged) - chunk_memory_bytes(plain) == 2 * exo
