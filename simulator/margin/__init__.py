"""The margin engine: valuation, liquidation cascades with impact, insurance fund and ADL.

Owns the replay of a book along price paths, specified in ``docs/engine.md``:
:mod:`~simulator.margin.rules` (the one module that reads configuration: venue, market,
liquidity and behaviour into :class:`~simulator.margin.rules.EngineRules`), the
liquidation index (:mod:`~simulator.margin.index`, :mod:`~simulator.margin.slack_form`,
:mod:`~simulator.margin.option_boxes`, :mod:`~simulator.margin.option_setup`), the
integer codes shared with the kernels (:mod:`~simulator.margin.codes`), the Python
driver :func:`~simulator.margin.engine.replay` and its Numba kernels
(:mod:`simulator.margin._kernels`).

May import: :mod:`simulator.config` (in ``rules`` only), :mod:`simulator.book`,
:mod:`simulator.kernels`, :mod:`simulator.options`, :mod:`simulator.errors`, numpy, numba
(kernel modules only).
"""

from simulator.margin.engine import ReplayResult, replay
from simulator.margin.rules import EngineRules

__all__ = ["EngineRules", "ReplayResult", "replay"]
