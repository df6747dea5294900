"""Numba kernel of the liquidation prices: the engine's exact margin slack of units at
trial prices of one asset, the other marks held at the start.

:func:`slack_at_nb` evaluates ``E_u - MM_u`` (``docs/engine.md``, "Valuation", options
included) with :func:`~simulator.margin._kernels.state.unit_values_nb`, the function the
replay itself tests units with, at step 0 (the start: every option's time to expiry and
implied vol as at the start, its vol moving with the spot by the asset's
``spot_vol_beta``). The Python layer (:mod:`simulator.margin.liq_prices`) brackets the
roots of units holding options with it and refines them by bisection; the slow reference
is ``tests/reference`` (``Book.equity - Book.maintenance``), which the tests compare.
"""

from __future__ import annotations

from numba import njit

from simulator.margin._kernels.state import unit_values_nb


@njit(cache=True)
def slack_at_nb(unit, asset, price, s0, usd, coll, qty, pos_asset, pos_entry, pos_kind,
                unit_pos_start, haircut, tiers, oc, marks, out):  # pragma: no cover - jitted
    """``out[i] = E - MM`` of unit ``unit[i]`` at step 0 with the mark of asset
    ``asset[i]`` at ``price[i]`` and every other mark at ``s0``.

    Parameters
    ----------
    unit, asset : ndarray of int64, shape (n,)
    price : ndarray of float64, shape (n,)
        Trial marks, USD.
    s0 : ndarray of float64, shape (A,)
        Start prices, USD.
    usd, coll, qty, pos_asset, pos_entry, pos_kind, unit_pos_start
        The book's arrays (:class:`simulator.book.build.Book`).
    haircut, tiers
        The rules' arrays (:class:`simulator.margin.rules.EngineRules`).
    oc : tuple
        The book's option data (:func:`simulator.margin.option_setup.option_context`).
    marks : ndarray of float64, shape (A,)
        Work space (overwritten).
    out : ndarray of float64, shape (n,)
        The slack, USD.
    """
    for a in range(s0.shape[0]):
        marks[a] = s0[a]
    for i in range(unit.shape[0]):
        a = asset[i]
        marks[a] = price[i]
        equity, maint, _, _ = unit_values_nb(unit[i], marks, usd, coll, qty, pos_asset,
                                             pos_entry, pos_kind, unit_pos_start, haircut,
                                             tiers, 0, oc)
        out[i] = equity - maint
        marks[a] = s0[a]
