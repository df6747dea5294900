"""The ``replay`` model: a recorded price path, alone or wrapped in independent noise.

The recorded prices ``R`` (shape (steps + 1, A), :func:`simulator.config.models.replay_prices`)
are the path of every draw with ``noise = "none"``. The other noises multiply ``R`` by an
independent noise path that starts at 1, so a run gives a distribution around history:

- ``"gbm"``: a mean-one GBM with each asset's ``vol`` and the market's correlation, i.e.
  the GBM kernel with the per-step drift ``log(R[t+1] / R[t]) + (mu - vol**2 / 2) dt``;
- ``"bootstrap"``: the exponential of the window's own log returns, demeaned (with the
  weights at which the bootstrap draws each row, :func:`block_weights`), resampled whole
  (rows kept across assets) in blocks of ``block`` steps (the bootstrap kernel).

Scheduled shocks apply on top, as on every model: a ``gap`` multiplies the price from its
step on, a ``vol`` shock scales the noise, ``correlation`` correlates it, ``liquidity``
thins the depth. An asset's ``drift`` adds ``mu dt`` per step.
"""

from __future__ import annotations

import numpy as np

from simulator.config.limits import LOG_PRICE_CAP, LOG_PRICE_FLOOR


def residuals(recorded: np.ndarray, block: int) -> np.ndarray:
    """The ``bootstrap`` noise's rows: the record's log returns per step, demeaned with the
    weights at which a block bootstrap draws each row (:func:`block_weights`)."""
    log_r = np.diff(np.log(recorded), axis=0)
    return np.ascontiguousarray(log_r - block_weights(len(log_r), block) @ log_r)


def block_weights(n_rows: int, block: int) -> np.ndarray:
    """How often each row is drawn by a block bootstrap of ``n_rows`` rows in blocks of
    ``block`` (block starts uniform on ``0 .. n_rows - block``), as weights summing to 1.

    The rows near the ends are drawn less than the others (fewer blocks cover them), so the
    record's returns are demeaned with these weights: a whole block of the noise then has
    an expected log of 0, and the noise does not drift.
    """
    starts = n_rows - block + 1
    cover = np.zeros(n_rows)
    for j in range(block):
        cover[j:j + starts] += 1.0
    return cover / cover.sum()


def recorded_paths(recorded: np.ndarray, gap_log: np.ndarray, mu_dt: np.ndarray,
                   out: np.ndarray) -> np.ndarray:
    """``noise = "none"``: every path of ``out`` (n, steps + 1, A) the record, times the
    gaps (``gap_log``, (steps, A)) and the drift (``mu_dt``, (A,)): exactly the record
    when there are none; within the price bounds of the limits."""
    log_m = np.cumsum(gap_log + mu_dt[None, :], axis=0)
    path = recorded.copy()
    path[1:] *= np.exp(log_m)
    s0 = recorded[0]
    log_rel = np.log(path / s0)
    outside = (log_rel < LOG_PRICE_FLOOR) | (log_rel > LOG_PRICE_CAP)
    if outside.any():
        path = np.where(outside, s0 * np.exp(np.clip(log_rel, LOG_PRICE_FLOOR, LOG_PRICE_CAP)),
                        path)
    out[:] = path[None]
    return out
