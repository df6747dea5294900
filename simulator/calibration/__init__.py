"""Calibration: fitting price models to historical price files.

Owns reading price files (CSV or Parquet, :mod:`~simulator.calibration.price_files`),
the maximum-likelihood fits of every model (:mod:`~simulator.calibration.fit`) and the
``marginsim calibrate`` block writer (:mod:`~simulator.calibration.block`).

May import: :mod:`simulator.errors`, :mod:`simulator.input_files`, numpy, scipy.
"""
