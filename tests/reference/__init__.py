"""Slow, literal pure-Python reference of the margin replay engine.

This package implements ``docs/engine.md`` step by step with plain Python floats, lists and
loops (``math`` only), one module per section of the specification:

- :mod:`.inputs` ("Inputs"): constants, the conversion of array inputs, the bracket tables'
  check and the venue's parameters;
- :mod:`.book` ("Valuation"): the margin book and every value of a unit at given marks;
- :mod:`.options` ("Options"): Black-Scholes, the implied vol, the option maintenance
  rules and the expiry of options;
- :mod:`.path` ("One path"): the state of one path and its step loop, a class composed of
  the steps below;
- :mod:`.behaviour` ("Behaviour: funding and margin calls"): funding, margin calls, their
  answers and the counter-based answer draw;
- :mod:`.round` ("One round", steps 1 to 5) and :mod:`.deficits` (step 6: the fund's
  second payment, ADL and socialised losses);
- :mod:`.lending` ("A lending round");
- :mod:`.marks` ("Oracle, index and mark"): the price each asset is valued at, from the
  oracle's index, the venue's book price and the EMA of the basis;
- :mod:`.records` ("Per-path records"): events, per-path records and account PnL;
- :mod:`.replay`: :func:`naive_replay`, the entry point.

It exists so that tests can compare the fast Numba engine against an implementation that is
easy to read and check by hand. Nothing is cached: equity, maintenance, notional and wallet
are recomputed from the positions every time they are needed, and every operation happens
in the order the specification gives. It imports nothing from ``simulator``.

Covered: tiered maintenance brackets, full / partial / incremental liquidation, the
backstop vault, the insurance fund, ADL (both rankings) and socialised losses on a
derivatives venue, the lending round (close factor, bonus, protocol share, bad-debt
write-off) on a lending venue, and the behaviour between liquidations on a derivatives
venue: perpetual funding (constant or premium) and margin calls answered by a top-up or a
reduction after a delay, with a counter-based (splitmix64) answer draw. Positions are linear
or inverse (coin-margined: ``qty`` in USD contracts, constant notional ``|qty|``, PnL paid
into the coin balance, which may go negative: a coin debt, counted without haircut and
bought back in a full liquidation; ADL only among positions of the same kind), or European
calls and puts.

Tests that watch the reference at work wrap the methods of :class:`PathRun`, :class:`Book`
or :class:`NaiveOptions` (``monkeypatch.setattr(reference.PathRun, "fraction", ...)``).
"""

from __future__ import annotations

from .behaviour import draw, splitmix64
from .book import Book
from .options import CALL, PUT, NaiveOptions
from .path import PathRun
from .replay import naive_replay

__all__ = ["CALL", "PUT", "Book", "NaiveOptions", "PathRun", "draw", "naive_replay",
           "splitmix64"]
