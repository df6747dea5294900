"""Parameter sweeps on common random numbers, and threshold searches.

Owns :func:`~simulator.sweeps.sweep.sweep`: a grid of ``--set`` overrides run point by
point on the same seed, collected in ``sweep.parquet`` and ``sweep.json``. (Named
``sweeps`` so that the package never shadows the public function ``simulator.sweep``.)

May import: :mod:`simulator.config`, :mod:`simulator.execution`, :mod:`simulator.results`,
:mod:`simulator.rare` (the tilt's type), :mod:`simulator.errors`,
:mod:`simulator.input_files`, :mod:`simulator._version`.
"""
