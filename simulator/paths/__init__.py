"""Exogenous price paths: the market models and their Numba kernels.

Owns :func:`~simulator.paths.models.prepare_path_inputs` (a scenario's market, shocks and
liquidity as arrays), :func:`~simulator.paths.models.generate_paths` (correlated log
returns of every model: gbm, student_t, merton, garch, regime, bootstrap) with its NumPy
reference :func:`~simulator.paths.models.generate_paths_numpy`, and the kernels in
:mod:`simulator.paths._kernels`.

May import: :mod:`simulator.config`, :mod:`simulator.kernels`,
:mod:`simulator.calibration` (GARCH filtering of a bootstrap's history),
:mod:`simulator.errors`, numpy, numba (kernel modules only).
"""

from simulator.paths.models import (
    PathInputs,
    generate_paths,
    generate_paths_numpy,
    prepare_path_inputs,
)

__all__ = ["PathInputs", "generate_paths", "generate_paths_numpy", "prepare_path_inputs"]
