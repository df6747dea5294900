"""Calibration: fitting price models to historical price files.

Owns the maximum-likelihood fits of every model (:mod:`~simulator.calibration.fit`) and the
``marginsim calibrate`` block writer (:mod:`~simulator.calibration.block`).

Price files (CSV or Parquet) are read by :mod:`simulator.price_files`, which the
``replay`` price model shares.

May import: :mod:`simulator.errors`, :mod:`simulator.input_files`,
:mod:`simulator.price_files`, numpy, scipy.
"""
