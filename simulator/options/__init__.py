"""Options: Black-Scholes pricing and greeks, and Deribit's option margin, for Python callers.

Owns :mod:`~simulator.options.pricing` (prices and greeks of European options, per unit
and per position in USD) and :mod:`~simulator.options.margin` (Deribit's standard
initial and maintenance margin of option positions). Their kernels are shared with the
engine and live in :mod:`simulator.kernels`.

May import: :mod:`simulator.kernels`, :mod:`simulator.errors`, numpy.
"""

from simulator.options.pricing import (
    OptionGreeks,
    PositionGreeksUSD,
    black_scholes,
    position_greeks_usd,
)

__all__ = ["OptionGreeks", "PositionGreeksUSD", "black_scholes", "position_greeks_usd"]
