"""The leaf-kernel decorator: no reference counts where Numba allows it, loud failure
when a leaf kernel would allocate."""

from __future__ import annotations

import numpy as np
import pytest

from simulator._kernels.jit import NRT_OPTION, leaf
from simulator.margin._kernels import index as _index_kernels
from simulator.margin._kernels import option_boxes as _option_box_kernels
from simulator.margin._kernels import options as _option_kernels
from simulator.margin._kernels import state as _state_kernels


def test_engine_leaf_kernels_are_compiled_without_reference_counts():
    assert NRT_OPTION, "this Numba no longer knows _nrt: the engine runs ~2x slower"
    for kernel in (_state_kernels.refresh_unit_nb, _index_kernels.push_band_nb,
                   _option_kernels.option_terms_nb, _option_box_kernels.option_box_nb):
        assert kernel.targetoptions.get("_nrt") is False
        assert kernel._cache.__class__.__name__ == "FunctionCache"  # cache=True


def test_leaf_kernel_reads_and_writes_its_arrays():
    @leaf
    def axpy(a, x, y):  # pragma: no cover - jitted
        for i in range(x.shape[0]):
            y[i] += a * x[i]
        return y.shape[0]

    x = np.arange(5.0)
    y = np.ones(5)
    assert axpy(2.0, x, y) == 5
    np.testing.assert_array_equal(y, 1.0 + 2.0 * np.arange(5.0))


@pytest.mark.skipif(not NRT_OPTION, reason="plain njit fallback allocates normally")
def test_leaf_kernel_that_allocates_fails_to_compile():
    @leaf
    def allocates(n):  # pragma: no cover - jitted
        return np.zeros(n).sum()

    with pytest.raises(Exception):  # noqa: B017 - Numba's lowering error type varies
        allocates(3)
