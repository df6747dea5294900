"""Path kernels given read-only inputs (a joblib memory map, Ray's or Dask's deserialised
arrays): the same paths, and no compilation of a read-only specialisation of their own."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simulator import load_scenario
from simulator.paths import generate_paths
from simulator.paths._kernels import gbm_paths_nb, student_t_paths_nb
from simulator.paths.models import prepare_path_inputs


def _frozen(inputs):
    """A copy of ``inputs`` whose every array is read-only."""
    copies = {}
    for field in dataclasses.fields(inputs):
        value = getattr(inputs, field.name)
        if isinstance(value, np.ndarray):
            value = value.copy()
            value.setflags(write=False)
            copies[field.name] = value
    return dataclasses.replace(inputs, **copies)


@pytest.mark.parametrize("overrides, kernel", [
    ([], gbm_paths_nb),
    (['market.model="student_t"'], student_t_paths_nb),
])
def test_read_only_inputs_same_paths_no_new_compilation(overrides, kernel):
    inputs = prepare_path_inputs(load_scenario("two-asset-crash", overrides))
    theta = np.full((inputs.steps, inputs.n_assets), -0.01)
    plain = generate_paths(inputs, 64, np.random.default_rng(3))
    plain_tilted = generate_paths(inputs, 64, np.random.default_rng(3), theta=theta)
    n_signatures = len(kernel.signatures)
    assert n_signatures >= 2  # (untilted and tilted)
    frozen = _frozen(inputs)
    assert not frozen.s0.flags.writeable and not frozen.chol.flags.writeable
    theta.setflags(write=False)
    again = generate_paths(frozen, 64, np.random.default_rng(3))
    tilted = generate_paths(frozen, 64, np.random.default_rng(3), theta=theta)
    assert len(kernel.signatures) == n_signatures
    np.testing.assert_array_equal(plain, again)
    np.testing.assert_array_equal(plain_tilted, tilted)
    assert not np.array_equal(plain, tilted)  # the tilt was applied
    assert not frozen.s0.flags.writeable  # the caller's arrays are left as they were
