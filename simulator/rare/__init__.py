"""Rare-event mode: importance sampling of the exogenous drivers towards an event.

Owns the tilt (:class:`~simulator.rare.tilt.Tilt`: a shift of each step's standard
normals, of Student-t mixing and Merton jumps, a defensive share of plain paths, and the
weights that follow) and the pilot that tunes it by multi-level cross-entropy on seeds of
its own (:func:`~simulator.rare.pilot.tune_tilt`). The event's grammar and the
scenario keys are :mod:`simulator.config.rare`'s; the kernels that shift the normals and
compute the likelihood ratios are :mod:`simulator.paths`'; the weighted estimators are
:mod:`simulator.results.risk`'s.

May import: :mod:`simulator.config`, :mod:`simulator.paths`, :mod:`simulator.margin`,
:mod:`simulator.results`, :mod:`simulator.book`, :mod:`simulator.errors`, numpy.
"""

from simulator.rare.pilot import tune_tilt
from simulator.rare.tilt import Tilt

__all__ = ["Tilt", "tune_tilt"]
