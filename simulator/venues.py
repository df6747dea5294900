"""Venue presets: the ``[venue]`` keys filled from a venue's published rules.

Numbers come from ``VENUES.md`` in the project's shared notes (snapshot of November 2026);
the source of each is given beside it. This first version uses a flat maintenance margin
rate per venue (the first tier of the venue's BTC perpetual). Tiered brackets, per-symbol
tables and venue-specific liquidation mechanics come with the venue rulebook; an explicit
key in a scenario always overrides the preset.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

#: Preset name -> ``[venue]`` keys. Read-only.
PRESETS: MappingProxyType[str, MappingProxyType[str, Any]] = MappingProxyType(
    {
        # Binance USD-M futures: BTCUSDT bracket 1 (notional <= 50,000 USDT) MMR 0.40%;
        # liquidation clearance fee 1.25% (BTCUSDT `liquidationFee`); ADL behind the fund.
        # Source: Binance "Leverage and Margin of USDⓈ-M Futures", liquidation FAQ.
        "binance-usdm": MappingProxyType(
            {
                "maintenance_margin_rate": 0.004,
                "liquidation_fee_rate": 0.0125,
                "liquidation": "full",
                "adl": True,
            }
        ),
        # Hyperliquid: BTC max leverage 40x, maintenance = 1 / (2 * 40) = 1.25%;
        # no clearance fee; ADL. Source: Hyperliquid docs, "Margining", "Liquidations".
        "hyperliquid": MappingProxyType(
            {
                "maintenance_margin_rate": 0.0125,
                "liquidation_fee_rate": 0.0,
                "liquidation": "full",
                "adl": True,
            }
        ),
        # dYdX v4: Large-Cap liquidity tier IMF 5%, maintenance fraction 0.6 -> MMF 3%;
        # insurance fund fee 1.5% of fill notional. Source: dydx v4-chain x/perpetuals, x/clob.
        "dydx-v4": MappingProxyType(
            {
                "maintenance_margin_rate": 0.03,
                "liquidation_fee_rate": 0.015,
                "liquidation": "full",
                "adl": True,
            }
        ),
        # Deribit BTC futures: MM 1% (+0.005% per BTC of size, not modelled here);
        # liquidation fee 0.75% for BTC futures. Source: Deribit knowledge base, "Margin".
        "deribit": MappingProxyType(
            {
                "maintenance_margin_rate": 0.01,
                "liquidation_fee_rate": 0.0075,
                "liquidation": "partial",
                "adl": True,
            }
        ),
    }
)

#: Presets that are documented but need engine features not available yet.
PENDING_PRESETS = {"aave-v3": "a lending market (health factor, close factor, bonus)"}
