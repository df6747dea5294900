"""Numba kernels shared by several packages, and the one way to compile them.

Owns :mod:`~simulator._kernels.jit` (the ``njit`` options every kernel uses),
:mod:`~simulator._kernels.compiling` (the cache folder keyed by the kernels' sources, set
here on first import, before any kernel is defined; a watch on compilation), the price
bound (:mod:`~simulator._kernels.bounds`), Black-Scholes pricing
(:mod:`~simulator._kernels.black_scholes`) and Deribit's option margin
(:mod:`~simulator._kernels.option_margin`): kernels that the path generator, the margin
engine, the book and the options package all call. Arrays and scalars in, no Python
objects, no exceptions.

May import: numba, numpy, :mod:`simulator.config.limits`. Nothing else.
"""

from simulator._kernels.compiling import configure_cache

configure_cache()
