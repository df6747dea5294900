"""Exogenous price paths: market models and their Numba kernels.

Owns the translation of a scenario's market, price model and scheduled shocks into the
arrays the path generators take (:func:`~simulator.paths.models.prepare_path_inputs`,
:class:`~simulator.paths.models.PathInputs`), and the generators of every model: Numba
kernels (``simulator.paths._kernels``) and a plain NumPy reference for the tests
(:func:`~simulator.paths.models.generate_paths_numpy`); importance sampling's shifts and
likelihood ratios inside those kernels; scrambled Sobol paths with Brownian-bridge order
(:func:`~simulator.paths.qmc.generate_paths_sobol`); a recorded path replayed
(:mod:`~simulator.paths.replay`); the extremes of a Brownian bridge inside each step
(:func:`~simulator.paths.bridge.bridge_extremes`); the oracle's index of each asset, seen
through a heartbeat, deviation, lag and noisy sources
(:func:`~simulator.paths.oracle.oracle_index`). Prices stay within the bounds of
:mod:`simulator.config.limits`.

May import: :mod:`simulator.config`, :mod:`simulator._kernels`, :mod:`simulator.errors`,
:mod:`simulator.calibration` (lazily: the GARCH filter of a filtered bootstrap), numpy,
scipy (the Sobol points); numba in ``_kernels`` only.
"""

from simulator.paths.bridge import bridge_extremes
from simulator.paths.models import (
    PathInputs,
    generate_paths,
    generate_paths_numpy,
    prepare_path_inputs,
)
from simulator.paths.oracle import oracle_args, oracle_arrays, oracle_index
from simulator.paths.qmc import generate_paths_sobol

__all__ = ["PathInputs", "bridge_extremes", "generate_paths", "generate_paths_numpy",
           "generate_paths_sobol", "oracle_args", "oracle_arrays", "oracle_index",
           "prepare_path_inputs"]
