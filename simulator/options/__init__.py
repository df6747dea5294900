"""Options: Black-Scholes pricing and greeks (kernels in ``_kernels``), option margin."""

from simulator.options.pricing import (
    OptionGreeks,
    PositionGreeksUSD,
    black_scholes,
    position_greeks_usd,
)

__all__ = ["OptionGreeks", "PositionGreeksUSD", "black_scholes", "position_greeks_usd"]
