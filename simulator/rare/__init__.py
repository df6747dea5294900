"""Rare-event mode: importance sampling of the exogenous drivers towards an event.

Owns the tilt (:class:`~simulator.rare.tilt.Tilt`: a shift of the standard normals of every
step, the same for each step) and the pilot that tunes it by multi-level cross-entropy
(:func:`~simulator.rare.tilt.tune_tilt`), on seeds of its own. The event's grammar and the
scenario keys are :mod:`simulator.config.rare`'s; the kernels that shift the normals and
compute the likelihood ratios are :mod:`simulator.paths`'; the weighted estimators are
:mod:`simulator.results.risk`'s.

May import: :mod:`simulator.config`, :mod:`simulator.paths`, :mod:`simulator.margin`,
:mod:`simulator.results`, :mod:`simulator.book`, :mod:`simulator.errors`, numpy.
"""

from simulator.rare.tilt import Tilt, tune_tilt

__all__ = ["Tilt", "tune_tilt"]
