"""The oracle's index price (``[market.oracle]``; ``docs/engine.md``, "Oracle, index and
mark"): each asset's exogenous price read by ``sources`` noisy sources, their median
published by a heartbeat and deviation rule, as Chainlink's price feeds do, and seen
``lag_steps`` late.

At step ``t >= 1`` source ``k`` reads ``exo[t, a] * exp(noise * z[t, a, k])`` (``z``
standard normal) and the oracle's reading ``r[t, a]`` is the median of its sources; at
``t = 0`` every source reads ``exo[0, a]`` exactly (the oracle starts in sync with the
market, as the book does). It publishes ``r[t, a]`` at step ``t`` when ``t - t_last >=
heartbeat_steps`` or, with ``deviation > 0``, when ``|r[t, a] - P| > deviation * P``
(``P`` its last publication, made at ``t_last``; ``P = r[0, a]``, ``t_last = 0`` at the
start), else it keeps ``P``. The index at step ``t`` is what it had published at step
``max(t - lag_steps, 0)``. With the defaults (``heartbeat_steps = 1``, ``lag_steps = 0``,
``noise = 0``) the index is the exogenous price.

The normals are drawn from the chunk's generator after everything else it draws (the paths
and the intrastep bridge's uniforms), ``(n, steps, A, sources)`` in C order, a block of
paths at a time: the paths are those of a run without the oracle's noise (common random
numbers), and the index depends only on the chunk's seed.

A lending venue's oracle reads the venue's own book, which its liquidations move: the
replay kernel publishes it (:func:`simulator.margin._kernels.step.publish_nb`), from the
noise factors :func:`noise_factors` draws here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from simulator.config.limits import LOG_PRICE_CAP, LOG_PRICE_FLOOR
from simulator.config.scenario import Scenario

__all__ = ["noise_factors", "oracle_args", "oracle_arrays", "oracle_index"]

#: paths whose normals are drawn and turned into readings at a time (bounds the scratch)
BLOCK_PATHS = 256


def oracle_args(scenario: Scenario) -> dict[str, Any] | None:
    """``scenario``'s ``[market.oracle]`` as :func:`oracle_arrays` takes it, or None when a
    run needs no oracle arrays: every price is the book's and the index is the exogenous
    price (the defaults). ``reads_book``: the oracle of a lending venue, which reads the
    venue's own book (the replay publishes it)."""
    oracle, venue = scenario.market.oracle, scenario.venue
    if oracle.exact and venue.mark_price == "book" and venue.collateral_price == "book":
        return None
    return {**dataclasses.asdict(oracle), "reads_book": venue.lending}


def oracle_arrays(exo: np.ndarray, rng: np.random.Generator, args: dict[str, Any] | None
                  ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(oracle, oracle_noise)`` of :func:`simulator.margin.replay` for the paths ``exo``
    and the oracle ``args`` (:func:`oracle_args`): the index (the oracle reads the
    exogenous price), or the noise factors of its readings when it reads a lending
    venue's book (None without noise)."""
    if args is None:
        return None, None
    rule = {k: v for k, v in args.items() if k != "reads_book"}
    if not args["reads_book"]:
        return oracle_index(exo, rng, **rule), None
    if rule["noise"] == 0.0:
        return None, None
    return None, noise_factors(exo.shape, rng, sources=rule["sources"], noise=rule["noise"])


def noise_factors(shape: tuple[int, int, int], rng: np.random.Generator | None, *,
                  sources: int = 1, noise: float = 0.0) -> np.ndarray:
    """The factor by which the oracle's reading of every asset at every step differs from
    the price: the median over its ``sources`` of ``exp(noise z)`` (the median of the
    sources' readings is the price times it); 1 at step 0.

    Parameters
    ----------
    shape : tuple of int
        ``(n, steps + 1, A)``.
    rng : numpy.random.Generator
        The chunk's generator (its next ``n x steps x A x sources`` normals, in C order, a
        block of :data:`BLOCK_PATHS` paths at a time).
    sources : int
    noise : float

    Returns
    -------
    ndarray, shape ``shape``
    """
    n, n_t, n_a = shape
    out = np.ones(shape)
    if noise > 0.0 and n_t > 1:
        if rng is None:
            raise ValueError("a noisy oracle needs the chunk's generator")
        for lo in range(0, n, BLOCK_PATHS):
            hi = min(lo + BLOCK_PATHS, n)
            z = rng.standard_normal((hi - lo, n_t - 1, n_a, sources))
            out[lo:hi, 1:] = np.median(np.exp(noise * z), axis=3)
    return out


def oracle_index(exo: np.ndarray, rng: np.random.Generator | None, *, heartbeat_steps: int = 1,
                 deviation: float = 0.0, lag_steps: int = 0, sources: int = 1,
                 noise: float = 0.0) -> np.ndarray:
    """The oracle's index of every asset at every step.

    Parameters
    ----------
    exo : ndarray, shape (n, steps + 1, A)
        Exogenous prices.
    rng : numpy.random.Generator or None
        The chunk's generator, for the sources' noise (not used, and may be None, when
        ``noise`` is 0).
    heartbeat_steps : int
        The oracle publishes at least every ``heartbeat_steps`` steps (>= 1).
    deviation : float
        It also publishes when its reading moved by more than this fraction since its last
        publication (0: that trigger off).
    lag_steps : int
        The index at step ``t`` is the publication of step ``t - lag_steps``.
    sources : int
        Sources read per asset (their median is the reading).
    noise : float
        Log-scale of each source's error.

    Returns
    -------
    ndarray, shape (n, steps + 1, A)
        The index, within the price bounds (``1e-12`` to ``1e12`` times ``exo[:, 0]``).
    """
    exo = np.asarray(exo, dtype=float)
    if heartbeat_steps < 1 or lag_steps < 0 or sources < 1 or deviation < 0 or noise < 0:
        raise ValueError("heartbeat_steps >= 1, lag_steps >= 0, sources >= 1, deviation >= 0 "
                         "and noise >= 0")
    n, n_t, n_a = exo.shape
    reading = exo.copy()
    if noise > 0.0 and n_t > 1:
        reading *= noise_factors(exo.shape, rng, sources=sources, noise=noise)
    if heartbeat_steps == 1:
        published = reading  # it publishes every step
    else:
        published = np.empty_like(reading)
        last_value = reading[:, 0].copy()
        last_step = np.zeros((n, n_a), dtype=np.int64)
        published[:, 0] = last_value
        for t in range(1, n_t):
            r = reading[:, t]
            due = t - last_step >= heartbeat_steps
            if deviation > 0.0:
                due |= np.abs(r - last_value) > deviation * last_value
            last_value = np.where(due, r, last_value)
            last_step = np.where(due, t, last_step)
            published[:, t] = last_value
    if lag_steps > 0:
        lagged = np.empty_like(published)
        k = min(lag_steps, n_t)
        lagged[:, :k] = published[:, :1]
        lagged[:, k:] = published[:, :n_t - k]
        published = lagged
    if published is exo:
        return published.copy()
    s0 = exo[:, :1, :]
    return np.clip(published, s0 * np.exp(LOG_PRICE_FLOOR), s0 * np.exp(LOG_PRICE_CAP))
