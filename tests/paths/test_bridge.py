"""The intrastep extremes (:func:`simulator.paths.bridge_extremes`) have the exact law of a
Brownian bridge's minimum and maximum, honour gaps, stay within the price bounds and depend
only on the generator's state (drawn in blocks of paths, equal to one draw of all)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from simulator.config.limits import LOG_PRICE_FLOOR
from simulator.paths import bridge_extremes

K = 4.0


def _inputs(var: np.ndarray, gap: np.ndarray | None = None) -> SimpleNamespace:
    """The two fields bridge_extremes reads: per-step sd and log gaps, shape (steps, A)."""
    return SimpleNamespace(diff_scale=np.sqrt(var),
                           gap_log=np.zeros_like(var) if gap is None else gap)


def _one_step(n: int, x0: float, x1: float) -> np.ndarray:
    exo = np.empty((n, 2, 1))
    exo[:, 0, 0] = math.exp(x0)
    exo[:, 1, 0] = math.exp(x1)
    return exo


@pytest.mark.parametrize(("x0", "x1", "v"), [(0.0, 0.3, 0.04), (0.0, -0.1, 0.09),
                                             (0.2, 0.2, 0.01)])
def test_extremes_have_the_bridge_law(x0, x1, v):
    n = 40_000
    out = bridge_extremes(_inputs(np.array([[v]])), _one_step(n, x0, x1),
                          np.random.default_rng(5))
    lo, hi = np.log(out[:, 1, 0, 0]), np.log(out[:, 1, 0, 1])
    assert (lo <= min(x0, x1) + 1e-12).all() and (hi >= max(x0, x1) - 1e-12).all()
    # P(min <= y) = exp(-2 (x0 - y)(x1 - y) / v) for y <= min(x0, x1); the max by symmetry
    for q in (0.5, 1.0, 2.0):
        y = min(x0, x1) - q * math.sqrt(v) / 2
        p = math.exp(-2.0 * (x0 - y) * (x1 - y) / v)
        se = math.sqrt(p * (1 - p) / n)
        assert abs((lo <= y).mean() - p) < K * se, (y, (lo <= y).mean(), p)
        y = max(x0, x1) + q * math.sqrt(v) / 2
        p = math.exp(-2.0 * (y - x0) * (y - x1) / v)
        assert abs((hi >= y).mean() - p) < K * math.sqrt(p * (1 - p) / n)


def test_extremes_against_a_finely_sampled_bridge():
    """An independent check of the law: the minimum of a Brownian bridge drawn on 2,048
    points (a little above the true minimum: the grid misses the very lowest point, by
    about 0.58 sd x sqrt(1/2048))."""
    rng = np.random.default_rng(11)
    n, m, x0, x1, v = 4000, 2048, 0.0, 0.1, 0.04
    w = np.cumsum(rng.standard_normal((n, m)) * math.sqrt(v / m), axis=1)
    s = np.arange(1, m + 1) / m
    path = x0 + w - s * (w[:, -1:] - (x1 - x0))
    grid_min = np.minimum(path.min(axis=1), x0)
    out = bridge_extremes(_inputs(np.array([[v]])), _one_step(n, x0, x1),
                          np.random.default_rng(12))
    exact_min = np.log(out[:, 1, 0, 0])
    bias = 0.5826 * math.sqrt(v / m)
    se = math.sqrt(grid_min.var() / n + exact_min.var() / n)
    assert abs(exact_min.mean() - (grid_min.mean() - bias)) < K * se


def test_zero_variance_and_gaps():
    """Without variance the extremes are the ends; a gap happens at the step's start."""
    exo = np.array([[[100.0], [90.0], [99.0], [99.0]]])
    gap = np.log(np.array([[0.8], [1.0], [1.25]]))
    out = bridge_extremes(_inputs(np.zeros((3, 1)), gap), exo, np.random.default_rng(1))
    np.testing.assert_allclose(out[0, 1:, 0, 0], [80.0, 90.0, 99.0])
    np.testing.assert_allclose(out[0, 1:, 0, 1], [100.0, 99.0, 123.75])
    np.testing.assert_array_equal(out[0, 0, 0], [100.0, 100.0])


def test_blocks_equal_one_draw_and_bounds_hold():
    rng = np.random.default_rng(3)
    n, steps, n_assets = 600, 5, 2
    var = rng.random((steps, n_assets)) * 0.02
    exo = np.exp(np.cumsum(rng.standard_normal((n, steps + 1, n_assets)) * 0.1, axis=1))
    exo[:, 0] = 1.0
    got = bridge_extremes(_inputs(var), exo, np.random.default_rng(9))
    u = np.random.default_rng(9).random((n, steps, n_assets, 2))
    x = np.log(exo)
    d2 = (x[:, 1:] - x[:, :-1]) ** 2
    lo = 0.5 * (x[:, :-1] + x[:, 1:] - np.sqrt(d2 - 2 * var * np.log(1 - u[..., 0])))
    hi = 0.5 * (x[:, :-1] + x[:, 1:] + np.sqrt(d2 - 2 * var * np.log(1 - u[..., 1])))
    np.testing.assert_allclose(got[:, 1:, :, 0], np.exp(lo), rtol=1e-12)
    np.testing.assert_allclose(got[:, 1:, :, 1], np.exp(hi), rtol=1e-12)
    # a huge variance: the lows are held at the price floor
    huge = bridge_extremes(_inputs(np.full((steps, n_assets), 1e6)), exo,
                           np.random.default_rng(9))
    assert (np.log(huge[:, 1:, :, 0]) >= LOG_PRICE_FLOOR - 1e-9).all()
    assert np.isfinite(huge).all()
