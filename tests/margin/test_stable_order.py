"""The ADL candidates' sort: NumPy's stable argsort, ties and infinities included."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.margin._kernels.backstop import stable_order_nb


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 64, 1000, 4097])
def test_same_order_as_numpy_mergesort(n):
    rng = np.random.default_rng(n)
    keys = rng.integers(-5, 5, size=n).astype(np.float64)  # many ties
    keys[rng.random(n) < 0.2] = np.inf  # taken candidates
    keys[rng.random(n) < 0.1] = -rng.random() * 1e9
    expected = np.argsort(keys, kind="mergesort")
    assert np.array_equal(stable_order_nb(keys), expected)
