"""Options: Black-Scholes pricing and greeks, and option margin, in Python.

Owns the checked, broadcasting Python layer over the option kernels of
:mod:`simulator._kernels`: Black-Scholes prices and greeks of options, and a position's
greeks in USD (:mod:`~simulator.options.pricing`), and the option margin rules, Deribit's
standard margin and the risk matrix (:mod:`~simulator.options.margin`). The book prices a
population's options with them and the engine sets up its option rules from them.

May import: :mod:`simulator._kernels`, numpy. Nothing else in ``simulator``.
"""

from simulator.options.pricing import (
    OptionGreeks,
    PositionGreeksUSD,
    black_scholes,
    position_greeks_usd,
)

__all__ = ["OptionGreeks", "PositionGreeksUSD", "black_scholes", "position_greeks_usd"]
