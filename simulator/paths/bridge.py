"""Between the steps (``simulation.intrastep = "bridge"``): the lowest and highest price of
each asset inside each step, drawn from the exact law of a Brownian bridge.

Conditional on the log prices ``x0`` and ``x1`` at a step's ends, a Brownian motion with
variance ``v`` over the step (and any drift: the bridge does not depend on it) has the
minimum ``m`` with ``P(m <= y) = exp(-2 (x0 - y) (x1 - y) / v)`` for ``y <= min(x0, x1)``
(Borodin & Salminen, *Handbook of Brownian Motion*, 2002, IV.4; Glasserman, *Monte Carlo
Methods in Financial Engineering*, 2004, 6.4). Inverting it with a uniform ``U``:

    m = (x0 + x1 - sqrt((x1 - x0)**2 - 2 v log U)) / 2

and the maximum by symmetry, ``M = (x0 + x1 + sqrt((x1 - x0)**2 - 2 v log U')) / 2``, each
with a uniform of its own (each extreme has its exact law; they are not drawn jointly,
because the engine sweeps the lows and the highs separately: ``docs/engine.md``, "Between the
steps"). ``v`` is the model's variance of the step, ``(vol x vol multiplier)**2 dt`` (the
nominal one for the models whose variance is random: Student-t's mixing, GARCH, regimes).
A scheduled gap at a step is taken to happen at the step's start: the path visits ``x0``,
jumps to ``x0 + gap`` and bridges to ``x1``.

The uniforms are drawn from the chunk's generator after its paths, ``(n, steps, A, 2)`` in C
order, a block of paths at a time: the paths' own draws are those of a run without the
bridge (common random numbers), and the extremes depend only on the chunk's seed.
"""

from __future__ import annotations

import numpy as np

from simulator.config.limits import LOG_PRICE_CAP, LOG_PRICE_FLOOR
from simulator.paths.models import PathInputs

#: paths whose uniforms are drawn and turned into extremes at a time (bounds the scratch)
BLOCK_PATHS = 256


def bridge_extremes(inputs: PathInputs, exo: np.ndarray, rng: np.random.Generator,
                    out: np.ndarray | None = None) -> np.ndarray:
    """The lowest and highest exogenous price of every asset inside every step.

    Parameters
    ----------
    inputs : PathInputs
        The paths' inputs: the step variances ``diff_scale**2`` and the gaps ``gap_log``.
    exo : ndarray, shape (n, steps + 1, A)
        The chunk's exogenous prices.
    rng : numpy.random.Generator
        The chunk's generator, after the paths were drawn; ``n * steps * A * 2`` uniforms
        are drawn from it.
    out : ndarray, shape (n, steps + 1, A, 2), optional

    Returns
    -------
    ndarray, shape (n, steps + 1, A, 2)
        ``[:, t, a, 0]`` the lowest and ``[:, t, a, 1]`` the highest price of asset ``a``
        inside step ``t`` (from ``t - 1`` to ``t``); row 0 holds the initial prices.
    """
    n, rows, n_assets = exo.shape
    steps = rows - 1
    shape = (n, rows, n_assets, 2)
    if out is None:
        out = np.empty(shape)
    elif out.shape != shape or out.dtype != np.float64:
        raise ValueError(f"out must be float64 of shape {shape}")
    var = (inputs.diff_scale ** 2)[None]
    gap = inputs.gap_log[None]
    out[:, 0] = exo[:, 0, :, None]
    for first in range(0, n, BLOCK_PATHS):
        rows_ = slice(first, min(n, first + BLOCK_PATHS))
        u = rng.random((rows_.stop - first, steps, n_assets, 2))
        x = np.log(exo[rows_])
        x0, x1 = x[:, :-1], x[:, 1:]
        y0 = x0 + gap  # after a gap at the step's start
        d2 = (x1 - y0) ** 2
        # -log(1 - u): u in [0, 1), so 1 - u in (0, 1] and the log is finite
        spread_lo = np.sqrt(d2 - 2.0 * var * np.log1p(-u[..., 0]))
        spread_hi = np.sqrt(d2 - 2.0 * var * np.log1p(-u[..., 1]))
        lo = np.minimum(0.5 * (y0 + x1 - spread_lo), x0)
        hi = np.maximum(0.5 * (y0 + x1 + spread_hi), x0)
        log_s0 = np.log(exo[rows_, :1])
        np.clip(lo, log_s0 + LOG_PRICE_FLOOR, log_s0 + LOG_PRICE_CAP, out=lo)
        np.clip(hi, log_s0 + LOG_PRICE_FLOOR, log_s0 + LOG_PRICE_CAP, out=hi)
        out[rows_, 1:, :, 0] = np.exp(lo)
        out[rows_, 1:, :, 1] = np.exp(hi)
    return out
