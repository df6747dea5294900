"""Numba kernels of the path generator (arrays in, ``out=`` arrays; no Python objects
other than the chunk's ``numpy.random.Generator``, which Numba draws from exactly as NumPy
does)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def gbm_paths_nb(rng, s0, drift_step, diff_scale, chol, out):  # pragma: no cover - jitted
    """Correlated GBM paths with scheduled shocks.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws ``n_paths * steps * A`` standard normals in C order (path, step, asset),
        the order of ``rng.standard_normal((n_paths, steps, A))``.
    s0 : float64[A]
        Initial prices.
    drift_step : float64[steps, A]
        Log drift of each step, gaps included: ``(mu - vol_t**2 / 2) * dt + log(1 + gap)``.
    diff_scale : float64[steps, A]
        ``vol_t * sqrt(dt)`` of each step (vol shocks included).
    chol : float64[steps, A, A]
        Lower Cholesky factor of the correlation of each step.
    out : float64[n_paths, steps + 1, A]
        Prices; ``out[:, 0]`` is ``s0``.
    """
    n_paths = out.shape[0]
    steps = drift_step.shape[0]
    n_assets = s0.shape[0]
    z = np.empty(n_assets)
    log_s0 = np.log(s0)
    logp = np.empty(n_assets)
    for i in range(n_paths):
        for a in range(n_assets):
            out[i, 0, a] = s0[a]
            logp[a] = log_s0[a]
        for t in range(steps):
            for a in range(n_assets):
                z[a] = rng.standard_normal()
            for a in range(n_assets):
                w = 0.0
                for b in range(a + 1):
                    w += chol[t, a, b] * z[b]
                logp[a] += drift_step[t, a] + diff_scale[t, a] * w
                out[i, t + 1, a] = np.exp(logp[a])
    return 0
