"""Results: what a run writes and what is read back from it.

Owns the Arrow schemas of the output tables (:mod:`~simulator.results.tables`), atomic
writes and checksums (:mod:`~simulator.results.atomic`), the run directory's lock, swap-in
and integrity records (:mod:`~simulator.results.lock`, :mod:`~simulator.results.rundir`,
:mod:`~simulator.results.integrity`), the per-account and summary estimators
(:mod:`~simulator.results.accounts`, :mod:`~simulator.results.summary`), the risk maths
with standard errors (:mod:`~simulator.results.risk`), ``verify``
(:mod:`~simulator.results.verify`) and readers for notebooks
(:mod:`~simulator.results.read`).

May import: :mod:`simulator.config`, :mod:`simulator.book`, :mod:`simulator.margin`
(its codes and result arrays), :mod:`simulator.errors`, :mod:`simulator.input_files`,
numpy, pyarrow.
"""
