"""The replay kernel's inputs: one compiled type whatever the arrays a caller hands over.

joblib memory-maps a large argument read-only in its workers, and Ray and Dask may
deserialise arrays read-only. To Numba a read-only array is a type of its own, so such a
run compiled the whole replay kernel a second time in every worker (about 45 s on this
machine), after the driver had compiled it for the workers to load.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from simulator import load_scenario, prepare
from simulator.margin import records, replay
from simulator.margin._kernels.replay import replay_nb
from simulator.paths import generate_paths


def _leaves(value):
    """Every array inside nested tuples and named tuples."""
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from _leaves(item)


def _freeze(obj, seen=None):
    """Make every array reachable from ``obj`` (dataclasses, tuples, dicts) read-only."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        obj.setflags(write=False)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for field in dataclasses.fields(obj):
            _freeze(getattr(obj, field.name), seen)
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            _freeze(item, seen)
    elif isinstance(obj, dict):
        for item in obj.values():
            _freeze(item, seen)


def _inputs(frozen: bool):
    scenario = load_scenario("two-asset-crash", ["simulation.paths=8",
                                                 "population.count=200"])
    prepared = prepare(scenario)
    exo = generate_paths(prepared.inputs, 8, np.random.default_rng(7))
    depth = np.array(prepared.inputs.depth_usd, dtype=float)
    if frozen:
        for obj in (prepared.book, prepared.rules, prepared.index, exo, depth):
            _freeze(obj)
    return prepared, exo, depth


def test_read_only_arrays_become_writeable_contiguous_copies():
    prepared, exo, depth = _inputs(frozen=True)
    assert not prepared.book.unit_usd.flags.writeable  # the freeze took
    assert not exo.flags.writeable
    got = records.kernel_inputs(exo, depth, prepared.book, prepared.index, prepared.rules,
                                prepared.index.options, 1)
    leaves = list(_leaves(got))
    assert len(leaves) > 40
    for arr in leaves:
        assert arr.flags.writeable and arr.flags.c_contiguous


def test_read_only_book_same_outputs_and_no_new_compilation():
    prepared, exo, depth = _inputs(frozen=False)
    plain = replay(exo, depth, prepared.book, prepared.rules, index=prepared.index, rng_key=3)
    n_signatures = len(replay_nb.signatures)
    frozen, exo_f, depth_f = _inputs(frozen=True)
    again = replay(exo_f, depth_f, frozen.book, frozen.rules, index=frozen.index, rng_key=3)
    assert len(replay_nb.signatures) == n_signatures
    for name in ("path_f", "path_i", "min_price", "final_price", "ev_i", "ev_f",
                 "acct_liquidated", "corr_delta"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(again, name))
    assert plain.ev_i.shape[0] > 0  # the paths liquidate: the events are compared
