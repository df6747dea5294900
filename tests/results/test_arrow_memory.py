"""A run takes Arrow's buffers from the C library's allocator (freed pages go back to the
system: ``simulator/results/arrow_memory.py``)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from simulator.config.scenario import load_scenario
from simulator.execution.runner import run


@pytest.fixture
def jemalloc_pool():
    before = pa.default_memory_pool()
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc
        pool = pa.mimalloc_memory_pool()
    pa.set_memory_pool(pool)
    yield pool
    pa.set_memory_pool(before)


def test_a_run_switches_arrow_to_the_system_pool(tmp_path, jemalloc_pool):
    sc = load_scenario("deterministic-gap", ["simulation.paths=40"])
    assert pa.default_memory_pool().backend_name == jemalloc_pool.backend_name != "system"
    run(sc, tmp_path / "a")
    assert pa.default_memory_pool().backend_name == "system"
