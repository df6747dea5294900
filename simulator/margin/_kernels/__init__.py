"""The margin engine's numba kernels: the replay loop and its stages.

One module per stage of ``docs/engine.md``: account state and events
(:mod:`.state`), the liquidation index (:mod:`.index`), the start of a step and the check
that opens a round (:mod:`.step`), cascade rounds (:mod:`.round`, :mod:`.settle`),
backstops (:mod:`.backstop`), behaviour (:mod:`.behaviour`), lending (:mod:`.lending`),
options (:mod:`.options`, :mod:`.option_boxes`, :mod:`.stages`) and the replay driver
(:mod:`.replay`), which takes the records of :mod:`simulator.margin.records`; besides the
replay, the slack of units at trial prices for the liquidation prices at the start
(:mod:`.liq_prices`). Private to
:mod:`simulator.margin`.

May import: numba, numpy, :mod:`simulator._kernels`, :mod:`simulator.margin.codes`,
:mod:`simulator._kernels.bounds` (which re-exports the price band of
:mod:`simulator.config.limits`).
"""
