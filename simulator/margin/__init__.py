"""Margin engine: valuation, liquidation cascades with impact, insurance fund and ADL.

Owns the replay of a book over price paths, exactly as ``docs/engine.md`` specifies it:
the venue, liquidity and behaviour rules in the kernel's form and the maintenance brackets
(:mod:`~simulator.margin.rules`), the kernel's codes (:mod:`~simulator.margin.codes`), the
liquidation index of safe bands and option boxes (:mod:`~simulator.margin.index`,
:mod:`~simulator.margin.slack_form`, :mod:`~simulator.margin.option_setup`,
:mod:`~simulator.margin.option_boxes`), :func:`~simulator.margin.engine.replay`, which runs
the replay kernel and gives account PnL back in blocks, each account's liquidation prices
at the start (:mod:`~simulator.margin.liq_prices`, for ``accounts.parquet``), and the Numba
kernels themselves (``simulator.margin._kernels``, private to this package).

May import: :mod:`simulator.config`, :mod:`simulator.book`, :mod:`simulator._kernels`,
:mod:`simulator.options`, numpy; numba in ``_kernels`` only.
"""

from simulator.margin.engine import replay
from simulator.margin.result import ReplayResult
from simulator.margin.rules import EngineRules

__all__ = ["EngineRules", "ReplayResult", "replay"]
