"""Executing a scenario: prepare, chunk work, progress, backends, the runner.

Owns :func:`~simulator.execution.prepare.prepare` (scenario -> book, path inputs, rules,
index), the chunk plan and the worker (:mod:`~simulator.execution.chunk`), the progress
line, resource checks (:mod:`~simulator.execution.budget`), the loky/Dask/Ray dispatch
(:mod:`~simulator.execution.backends`) and :func:`~simulator.execution.runner.run`, which
drives a run directory from start to ``complete``. (Named ``execution`` so that the
package never shadows the public function ``simulator.run``.)

May import: every package below it: :mod:`simulator.config`, :mod:`simulator.book`,
:mod:`simulator.paths`, :mod:`simulator.margin`, :mod:`simulator.results`,
:mod:`simulator.rare` (the rare-event pilot), :mod:`simulator.report` (the headline table),
:mod:`simulator.errors`, :mod:`simulator.input_files`, :mod:`simulator._version`, and of
the shared kernels only :mod:`simulator._kernels.compiling` (compiling the kernels in the
driver before the workers start); joblib, Dask and Ray (lazily).
"""
