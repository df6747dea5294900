"""Exogenous price paths: market models and their Numba kernels."""

from simulator.paths.models import (
    PathInputs,
    generate_paths,
    generate_paths_numpy,
    prepare_path_inputs,
)

__all__ = ["PathInputs", "generate_paths", "generate_paths_numpy", "prepare_path_inputs"]
