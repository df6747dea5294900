"""Path generator: the Numba kernel equals the NumPy reference, and the paths have the
statistical fingerprint of correlated GBM with the scheduled shocks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.config.scenario import scenario_from_dict
from simulator.errors import ScenarioError
from simulator.paths import generate_paths, generate_paths_numpy, prepare_path_inputs

K = 4.0  # tolerance in standard errors


def scenario(assets, correlation=None, shocks=(), steps=48, horizon_days=1.0):
    doc = {
        "simulation": {"steps": steps, "horizon_days": horizon_days},
        "market": {"assets": assets},
        "shocks": list(shocks),
        "accounts": [{"id": "a", "collateral": {"USD": 1.0}}],
    }
    if correlation is not None:
        doc["market"]["correlation"] = correlation
    return scenario_from_dict(doc)


TWO = [{"symbol": "BTC", "price": 60000.0, "vol": 0.8, "drift": 0.1},
       {"symbol": "ETH", "price": 3000.0, "vol": 1.1, "drift": -0.2}]


def test_kernel_equals_numpy_reference_from_same_seed():
    sc = scenario(TWO + [{"symbol": "SOL", "price": 150.0, "vol": 1.3}],
                  [[1, 0.7, 0.5], [0.7, 1, 0.6], [0.5, 0.6, 1]],
                  shocks=[{"kind": "gap", "step": 3, "asset": "BTC", "size": -0.1},
                          {"kind": "vol", "step": 5, "size": 2.0, "duration_steps": 4},
                          {"kind": "correlation", "step": 10, "size": 0.9, "duration_steps": 5}])
    inputs = prepare_path_inputs(sc)
    seed = np.random.SeedSequence(42).spawn(3)[2]
    fast = generate_paths(inputs, 300, np.random.default_rng(seed))
    ref = generate_paths_numpy(inputs, 300, np.random.default_rng(seed))
    np.testing.assert_allclose(fast, ref, rtol=1e-12)
    # the generator state advanced identically: the next draw agrees too
    g1, g2 = np.random.default_rng(seed), np.random.default_rng(seed)
    generate_paths(inputs, 7, g1)
    generate_paths_numpy(inputs, 7, g2)
    assert g1.standard_normal() == g2.standard_normal()


def test_log_returns_have_gbm_moments_and_correlation():
    rho = 0.6
    sc = scenario(TWO, [[1, rho], [rho, 1]], steps=4, horizon_days=365.0)
    inputs = prepare_path_inputs(sc)
    n = 40_000
    prices = generate_paths(inputs, n, np.random.default_rng(1))
    r = np.log(prices[:, -1] / prices[:, 0])  # log return over one year
    T = 1.0
    for a, asset in enumerate(TWO):
        mu, vol = asset["drift"], asset["vol"]
        mean_expected = (mu - 0.5 * vol**2) * T
        assert abs(r[:, a].mean() - mean_expected) < K * vol * math.sqrt(T / n)
        # standard error of a sample variance of normals: sigma^2 sqrt(2/(n-1))
        var_expected = vol**2 * T
        assert abs(r[:, a].var(ddof=1) - var_expected) < K * var_expected * math.sqrt(2 / (n - 1))
    # Fisher z standard error of a correlation: 1/sqrt(n-3)
    z_hat = np.arctanh(np.corrcoef(r[:, 0], r[:, 1])[0, 1])
    assert abs(z_hat - np.arctanh(rho)) < K / math.sqrt(n - 3)
    # E[S_T] = S_0 exp(mu T) (the drift is the arithmetic drift)
    st = prices[:, -1, 0] / prices[:, 0, 0]
    assert abs(st.mean() - math.exp(TWO[0]["drift"])) < K * st.std(ddof=1) / math.sqrt(n)


def test_zero_vol_path_is_the_deterministic_shock():
    assets = [{"symbol": "X", "price": 100.0, "vol": 0.0, "drift": 0.0}]
    sc = scenario(assets, shocks=[{"kind": "gap", "step": 2, "asset": "X", "size": -0.25},
                                  {"kind": "gap", "step": 4, "size": 0.1}], steps=5)
    prices = generate_paths(prepare_path_inputs(sc), 3, np.random.default_rng(0))
    expected = [100.0, 100.0, 75.0, 75.0, 82.5, 82.5]
    for path in prices:
        np.testing.assert_allclose(path[:, 0], expected, rtol=1e-14)


def test_vol_shock_multiplies_realised_vol_in_its_window_only():
    assets = [{"symbol": "X", "price": 100.0, "vol": 0.5}]
    steps = 40
    sc = scenario(assets, shocks=[{"kind": "vol", "step": 11, "size": 3.0, "duration_steps": 10}],
                  steps=steps)
    n = 5000
    prices = generate_paths(prepare_path_inputs(sc), n, np.random.default_rng(3))
    r = np.diff(np.log(prices[:, :, 0]), axis=1)  # r[:, k] is the move into step k + 1
    inside = r[:, 10:20].ravel()
    outside = np.concatenate([r[:, :10].ravel(), r[:, 20:].ravel()])
    dt = 1.0 / 365.0 / steps
    for sample, vol in [(inside, 1.5), (outside, 0.5)]:
        var = vol**2 * dt
        assert abs(sample.var(ddof=1) - var) < K * var * math.sqrt(2 / (len(sample) - 1))


def test_correlation_shock_raises_correlation_in_its_window():
    sc = scenario(TWO, [[1, 0.2], [0.2, 1]], steps=30,
                  shocks=[{"kind": "correlation", "step": 11, "size": 0.95, "duration_steps": 10}])
    n = 4000
    prices = generate_paths(prepare_path_inputs(sc), n, np.random.default_rng(5))
    r = np.diff(np.log(prices), axis=1)
    for window, rho in [(slice(10, 20), 0.95), (slice(0, 10), 0.2), (slice(20, 30), 0.2)]:
        x = r[:, window, 0].ravel()
        y = r[:, window, 1].ravel()
        z_hat = np.arctanh(np.corrcoef(x, y)[0, 1])
        assert abs(z_hat - np.arctanh(rho)) < K / math.sqrt(len(x) - 3)


def test_liquidity_shock_scales_depth_over_its_window():
    assets = [{"symbol": "X", "price": 1.0, "vol": 0.1, "depth_usd": 1e6},
              {"symbol": "Y", "price": 1.0, "vol": 0.1, "depth_usd": 2e6}]
    sc = scenario(assets, steps=10, shocks=[
        {"kind": "liquidity", "step": 3, "asset": "Y", "size": 0.25, "duration_steps": 2},
        {"kind": "liquidity", "step": 4, "size": 0.5, "duration_steps": 3}])
    depth = prepare_path_inputs(sc).depth_usd
    expected_y = np.full(11, 2e6)
    expected_y[3:5] *= 0.25
    expected_y[4:7] *= 0.5
    expected_x = np.full(11, 1e6)
    expected_x[4:7] *= 0.5
    np.testing.assert_allclose(depth[:, 1], expected_y)
    np.testing.assert_allclose(depth[:, 0], expected_x)


def test_correlation_shock_that_breaks_positive_definiteness_is_refused():
    three = TWO + [{"symbol": "SOL", "price": 150.0, "vol": 1.0}]
    corr = [[1, 0.9, -0.9], [0.9, 1, -0.9], [-0.9, -0.9, 1]]
    with pytest.raises(ScenarioError, match="positive definite"):
        prepare_path_inputs(scenario(three, corr, shocks=[
            {"kind": "correlation", "step": 2, "asset": "BTC", "size": 0.95}]))
