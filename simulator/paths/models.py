"""Market models, Python layer: turn a scenario into the arrays the path kernels take.

Time runs over ``steps`` steps of ``dt = horizon_days / 365 / steps`` years. A shock at
``step = k`` acts on the move from step ``k - 1`` to step ``k``: a ``gap`` multiplies the
price by ``1 + size`` there; ``vol``, ``correlation`` and ``liquidity`` act on steps
``k .. k + duration_steps - 1`` (vol and depth multipliers compound when windows overlap;
a later correlation shock overrides an earlier one on the same entries).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ScenarioError
from ..scenario import Scenario, check_correlation
from ._kernels import gbm_paths_nb


@dataclass(frozen=True)
class PathInputs:
    """Arrays that define the exogenous price process of a scenario.

    Attributes
    ----------
    s0 : ndarray, shape (A,)
    drift_step : ndarray, shape (steps, A)
        Log drift per step, gaps included.
    diff_scale : ndarray, shape (steps, A)
        ``vol * sqrt(dt)`` per step, vol shocks included.
    chol : ndarray, shape (steps, A, A)
        Cholesky factor of the correlation in force at each step.
    depth_usd : ndarray, shape (steps + 1, A)
        Depth per step, liquidity shocks included (used by the margin engine).
    """

    s0: np.ndarray
    drift_step: np.ndarray
    diff_scale: np.ndarray
    chol: np.ndarray
    depth_usd: np.ndarray

    @property
    def steps(self) -> int:
        """Number of time steps."""
        return self.drift_step.shape[0]

    @property
    def n_assets(self) -> int:
        """Number of assets."""
        return self.s0.shape[0]


def _window(step: int, duration: int, steps: int) -> slice:
    """Rows ``step - 1 .. step + duration - 2`` of a per-step array (step k -> row k - 1)."""
    return slice(step - 1, min(step - 1 + duration, steps))


def prepare_path_inputs(scenario: Scenario) -> PathInputs:
    """Build the path arrays of ``scenario`` (GBM with its scheduled shocks).

    Parameters
    ----------
    scenario : Scenario

    Returns
    -------
    PathInputs

    Raises
    ------
    ScenarioError
        If a correlation shock makes the matrix not positive definite.
    """
    market = scenario.market
    sim = scenario.simulation
    steps, n = sim.steps, len(market.assets)
    dt = sim.dt_years
    vol = np.array([a.vol for a in market.assets])
    mu = np.array([a.drift for a in market.assets])
    vol_mult = np.ones((steps, n))
    gap_log = np.zeros((steps, n))
    depth_mult = np.ones((steps + 1, n))
    base = np.array(market.correlation)
    corr_by_step: list[np.ndarray | None] = [None] * steps
    for shock in scenario.shocks:
        cols = slice(None) if shock.asset == "*" else market.index(shock.asset)
        rows = _window(shock.step, shock.duration_steps, steps)
        if shock.kind == "gap":
            gap_log[shock.step - 1, cols] += np.log1p(shock.size)
        elif shock.kind == "vol":
            vol_mult[rows, cols] *= shock.size
        elif shock.kind == "liquidity":
            depth_mult[shock.step:shock.step + shock.duration_steps, cols] *= shock.size
        else:
            for t in range(rows.start, rows.stop):
                corr = (corr_by_step[t] if corr_by_step[t] is not None else base).copy()
                if shock.asset == "*":
                    corr[~np.eye(n, dtype=bool)] = shock.size
                else:
                    k = market.index(shock.asset)
                    corr[k, :] = shock.size
                    corr[:, k] = shock.size
                    corr[k, k] = 1.0
                corr_by_step[t] = corr
    chol = np.empty((steps, n, n))
    base_chol = np.linalg.cholesky(base)
    cache: dict[bytes, np.ndarray] = {}
    for t in range(steps):
        corr = corr_by_step[t]
        if corr is None:
            chol[t] = base_chol
            continue
        key = corr.tobytes()
        if key not in cache:
            try:
                cache[key] = check_correlation(corr, scenario.source, "shocks")
            except ScenarioError as exc:
                raise ScenarioError(scenario.source, "shocks", f"a correlation shock at step "
                                    f"{t + 1} gives a matrix that {exc.message}") from None
        chol[t] = cache[key]
    eff_vol = vol[None, :] * vol_mult
    drift_step = (mu[None, :] - 0.5 * eff_vol**2) * dt + gap_log
    diff_scale = eff_vol * np.sqrt(dt)
    depth = np.array([a.depth_usd for a in market.assets])[None, :] * depth_mult
    s0 = np.array([a.price for a in market.assets])
    return PathInputs(s0=s0, drift_step=drift_step, diff_scale=diff_scale, chol=chol,
                      depth_usd=depth)


def generate_paths(
    inputs: PathInputs, n_paths: int, rng: np.random.Generator, out: np.ndarray | None = None
) -> np.ndarray:
    """Draw exogenous price paths with the Numba kernel.

    Parameters
    ----------
    inputs : PathInputs
    n_paths : int
    rng : numpy.random.Generator
        The chunk's generator; ``n_paths * steps * A`` normals are drawn from it.
    out : ndarray, shape (n_paths, steps + 1, A), optional

    Returns
    -------
    ndarray, shape (n_paths, steps + 1, A)
        Prices, ``[:, 0]`` the initial prices.
    """
    shape = (n_paths, inputs.steps + 1, inputs.n_assets)
    if out is None:
        out = np.empty(shape)
    elif out.shape != shape or out.dtype != np.float64:
        raise ValueError(f"out must be float64 of shape {shape}")
    gbm_paths_nb(rng, inputs.s0, inputs.drift_step, inputs.diff_scale, inputs.chol, out)
    return out


def generate_paths_numpy(inputs: PathInputs, n_paths: int, rng: np.random.Generator) -> np.ndarray:
    """Reference implementation of :func:`generate_paths` in plain NumPy.

    Draws the same normals in the same order, so from the same generator state it gives
    the same prices (up to floating-point rounding of the sums).
    """
    z = rng.standard_normal((n_paths, inputs.steps, inputs.n_assets))
    w = np.einsum("tab,ntb->nta", inputs.chol, z)
    log_returns = inputs.drift_step[None] + inputs.diff_scale[None] * w
    out = np.empty((n_paths, inputs.steps + 1, inputs.n_assets))
    out[:, 0] = inputs.s0
    out[:, 1:] = np.exp(np.log(inputs.s0)[None, None, :] + np.cumsum(log_returns, axis=1))
    return out
