"""Randomised quasi-Monte Carlo paths: scrambled Sobol points with Brownian-bridge order.

``simulation.variance_reduction = "sobol"`` draws each chunk's normals from its own
scrambled Sobol sequence (:class:`scipy.stats.qmc.Sobol`, Owen's scrambling seeded by the
chunk's generator), so each chunk is one independent randomisation of the same
low-discrepancy point set and the spread of the chunk estimates gives the standard errors
(L'Ecuyer & Lemieux, "Recent advances in randomized quasi-Monte Carlo methods", 2002).

The point's coordinates are assigned in Brownian-bridge order (Moskowitz & Caflisch,
1996; Glasserman, *Monte Carlo Methods in Financial Engineering*, 2003, §3.1): the first
coordinate of each asset sets its Brownian motion at the horizon, the next ones the
midpoints, and so on, so that the best-distributed coordinates decide the path's coarse
shape. The bridge's increments are independent standard normals, as a plain run's are;
the market model then treats them exactly as it treats the plain draws (correlation,
volatility per step, shocks, price bounds). ``student_t`` takes one more coordinate per
step, its chi-square mixing variable by the inverse distribution function.

Pure NumPy and SciPy: the generator is not a kernel (it costs little beside the margin
engine), and it is its own reference; the tests check the bridge's covariance exactly.
"""

from __future__ import annotations

import numpy as np

from simulator.config.models import StudentT
from simulator.config.rare import SOBOL_MODELS
from simulator.paths.models import PathInputs, _cumulate

#: uniforms are kept inside (U_MIN, 1 - U_MIN) before the inverse normal
U_MIN = 1e-15


def bridge_plan(steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                     np.ndarray, np.ndarray]:
    """The Brownian bridge's construction order over times ``1 .. steps`` (unit variance per
    step), for :func:`bridge_increments`.

    Returns
    -------
    (point, left, right, w_left, w_right, sd) : tuple of ndarray, each shape (steps,)
        The ``k``-th coordinate sets ``W[point[k]] = w_left W[left] + w_right W[right] +
        sd z_k``; index 0 is time 0 (``W = 0``). The first sets the horizon,
        ``W[steps] = sqrt(steps) z_0``.
    """
    point = np.empty(steps, dtype=np.int64)
    left = np.zeros(steps, dtype=np.int64)
    right = np.zeros(steps, dtype=np.int64)
    w_left = np.zeros(steps)
    w_right = np.zeros(steps)
    sd = np.empty(steps)
    point[0], sd[0] = steps, np.sqrt(steps)
    k = 1
    queue = [(0, steps)]
    while queue:
        nxt = []
        for a, b in queue:
            if b - a < 2:
                continue
            m = (a + b) // 2
            point[k], left[k], right[k] = m, a, b
            w_left[k], w_right[k] = (b - m) / (b - a), (m - a) / (b - a)
            sd[k] = np.sqrt((m - a) * (b - m) / (b - a))
            k += 1
            nxt += [(a, m), (m, b)]
        queue = nxt
    return point, left, right, w_left, w_right, sd


def bridge_increments(z: np.ndarray, plan: tuple[np.ndarray, ...] | None = None
                      ) -> np.ndarray:
    """Standard-normal increments from normals in bridge order.

    Parameters
    ----------
    z : ndarray, shape (n, steps, A)
        ``z[:, k]`` is the ``k``-th coordinate of the bridge (see :func:`bridge_plan`).

    Returns
    -------
    ndarray, shape (n, steps, A)
        ``W[t] - W[t - 1]`` for ``t = 1 .. steps``: independent standard normals when ``z``
        is.
    """
    n, steps, n_assets = z.shape
    point, left, right, w_left, w_right, sd = plan or bridge_plan(steps)
    w = np.zeros((n, steps + 1, n_assets))
    for k in range(steps):
        w[:, point[k]] = (w_left[k] * w[:, left[k]] + w_right[k] * w[:, right[k]]
                          + sd[k] * z[:, k])
    return np.diff(w, axis=1)


def sobol_uniforms(n_paths: int, dims: int, rng: np.random.Generator) -> np.ndarray:
    """``n_paths`` points of a Sobol sequence in ``dims`` dimensions, scrambled with a seed
    drawn from ``rng`` (the chunk's generator), kept inside ``(U_MIN, 1 - U_MIN)``."""
    from scipy import stats  # here: scipy.stats costs every run's start-up half a second

    sampler = stats.qmc.Sobol(d=dims, scramble=True, seed=rng)
    return np.clip(sampler.random(n_paths), U_MIN, 1.0 - U_MIN)


def generate_paths_sobol(inputs: PathInputs, n_paths: int, rng: np.random.Generator
                         ) -> np.ndarray:
    """Prices of ``n_paths`` paths from one scrambled Sobol point set (see the module
    notes); ``n_paths`` should be a power of 2 (the scenario checks it).

    Returns
    -------
    ndarray, shape (n_paths, steps + 1, A)
    """
    if inputs.model not in SOBOL_MODELS:
        raise ValueError(f"model {inputs.model!r} has no Sobol mode (models that do: "
                         f"{', '.join(SOBOL_MODELS)})")
    from scipy import special, stats

    steps, n_assets = inputs.steps, inputs.n_assets
    mixing = isinstance(inputs.params, StudentT)
    u = sobol_uniforms(n_paths, steps * n_assets + (steps if mixing else 0), rng)
    z = special.ndtri(u[:, :steps * n_assets]).reshape(n_paths, steps, n_assets)
    eps = bridge_increments(z)
    w = np.einsum("tab,ntb->nta", inputs.chol, eps)
    if mixing:
        dof = inputs.params.dof
        chi = stats.chi2.ppf(u[:, steps * n_assets:], dof)
        w = w * np.sqrt((dof - 2.0) / chi)[:, :, None]
    return _cumulate(inputs.s0, inputs.drift_step[None] + inputs.diff_scale[None] * w)
