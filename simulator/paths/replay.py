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

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from simulator.config.limits import LOG_PRICE_CAP, LOG_PRICE_FLOOR
from simulator.config.models import Bootstrap, Replay

if TYPE_CHECKING:  # (models imports this module)
    from simulator.paths.models import PathInputs


def noise_inputs(inputs: PathInputs) -> PathInputs:
    """The inputs of the model that draws a replay's noisy paths: GBM whose drift follows
    the record (``noise = "gbm"``), or the bootstrap of the record's residuals started at
    1 (``"bootstrap"``: its prices are then multiplied by the record)."""
    p = inputs.params
    assert isinstance(p, Replay) and inputs.recorded is not None
    log_r = np.diff(np.log(inputs.recorded), axis=0)
    if p.noise == "gbm":
        return dataclasses.replace(inputs, model="gbm", params=None,
                                   drift_step=inputs.drift_step + log_r)
    residuals = log_r - block_weights(len(log_r), p.block) @ log_r
    n_assets = inputs.n_assets
    return dataclasses.replace(
        inputs, model="bootstrap", s0=np.ones(n_assets),
        params=Bootstrap(file=p.file, block=p.block, sha256=p.sha256),
        data=np.ascontiguousarray(residuals), filter_params=np.zeros((3, n_assets)),
        gap_log=inputs.gap_log + inputs.mu_dt[None, :])


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


def recorded_paths(inputs: PathInputs, out: np.ndarray) -> np.ndarray:
    """``noise = "none"``: every path the record, times the gaps and the drift (exactly
    the record when there are none), within the price bounds of the limits."""
    recorded = inputs.recorded
    assert recorded is not None
    log_m = np.cumsum(inputs.gap_log + inputs.mu_dt[None, :], axis=0)
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
