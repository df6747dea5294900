"""Venue presets: the ``[venue]`` keys filled from a venue's published rules.

Numbers come from ``VENUES.md`` in the project's shared notes (snapshot of November 2026)
and the venue pages named beside each; venues change them often, so every number can be
overridden by an explicit key in a scenario. Maintenance brackets are per symbol, matched
on the scenario's asset symbols (``BTC``, ``ETH``, ...); ``"*"`` is the table for any other
symbol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["Bracket", "PRESETS", "bracket_cums", "brackets_from_max_leverage"]


@dataclass(frozen=True)
class Bracket:
    """One maintenance-margin bracket of a symbol.

    Attributes
    ----------
    max_notional_usd : float
        Upper bound of the position notional in this bracket (``inf`` for the last).
    rate : float
        Maintenance margin rate of the bracket.
    max_leverage : float
        Largest leverage a position in this bracket may open with (initial margin
        ``notional / leverage``); used when a synthetic population is drawn.
    """

    max_notional_usd: float
    rate: float
    max_leverage: float = math.inf


def bracket_cums(brackets: tuple[Bracket, ...]) -> tuple[float, ...]:
    """Maintenance amounts ``cum`` that keep the requirement continuous in the notional.

    ``cum_0 = 0`` and ``cum_k = cum_{k-1} + cap_{k-1} * (rate_k - rate_{k-1})``, so that
    ``notional * rate_k - cum_k`` takes the same value on both sides of every bracket
    boundary (Binance "maintenance amount", Hyperliquid "deduction").

    Examples
    --------
    >>> bracket_cums((Bracket(50_000, 0.004), Bracket(600_000, 0.005), Bracket(math.inf, 0.0065)))
    (0.0, 50.0, 950.0)
    """
    cums = [0.0]
    for prev, cur in zip(brackets, brackets[1:], strict=False):
        cums.append(cums[-1] + prev.max_notional_usd * (cur.rate - prev.rate))
    return tuple(cums)


def brackets_from_max_leverage(rows: tuple[tuple[float, float], ...]) -> tuple[Bracket, ...]:
    """Hyperliquid-style brackets: maintenance rate = 1 / (2 x the bracket's max leverage).

    ``rows`` are ``(max_notional_usd, max_leverage)`` pairs.
    """
    return tuple(Bracket(cap, 1.0 / (2.0 * lev), lev) for cap, lev in rows)


_INF = math.inf

# Binance USD-M, BTCUSDT (VENUES.md snapshot; cum verified arithmetically: 0, 50, 950,
# 11,450, 131,450, 481,450, 2,981,450). The 230M bracket is the last listed; positions
# above it keep its 5% rate (Binance's higher brackets were not in the snapshot).
_BINANCE_BTC = (
    Bracket(50_000, 0.004, 125), Bracket(600_000, 0.005, 100), Bracket(3_000_000, 0.0065, 75),
    Bracket(12_000_000, 0.01, 50), Bracket(70_000_000, 0.02, 25), Bracket(100_000_000, 0.025, 20),
    Bracket(_INF, 0.05, 10),
)
# ETHUSDT: <=50k 100x 0.50%, <=600k 75x 0.65%, <=3M 50x 1.00% (VENUES.md snapshot). The
# snapshot does not confirm the brackets above 3M; they follow BTCUSDT's 2% / 2.5% / 5%
# steps at BTCUSDT's caps (an assumption, stated in docs/venues.md).
_BINANCE_ETH = (
    Bracket(50_000, 0.005, 100), Bracket(600_000, 0.0065, 75), Bracket(3_000_000, 0.01, 50),
    Bracket(70_000_000, 0.02, 25), Bracket(100_000_000, 0.025, 20), Bracket(_INF, 0.05, 10),
)
# Any other symbol: the 50x alt-coin table Binance published on 2021-03-18 ("Updates to
# Leverage and Margin Tiers of Binance Futures Contracts": XEM, COTI, CHR, MANA, HBAR, ALICE).
_BINANCE_DEFAULT = (
    Bracket(5_000, 0.01, 50), Bracket(25_000, 0.025, 20), Bracket(100_000, 0.05, 10),
    Bracket(250_000, 0.10, 5), Bracket(1_000_000, 0.125, 2), Bracket(_INF, 0.50, 1),
)
# Hyperliquid (docs "Margin tiers"): BTC <= $150M 40x then 20x; ETH <= $100M 25x then 15x;
# SOL <= $70M and XRP <= $40M 20x then 10x; most alts <= $20M 10x then 5x.
_HL_BTC = brackets_from_max_leverage(((150e6, 40.0), (_INF, 20.0)))
_HL_ETH = brackets_from_max_leverage(((100e6, 25.0), (_INF, 15.0)))
_HL_SOL = brackets_from_max_leverage(((70e6, 20.0), (_INF, 10.0)))
_HL_XRP = brackets_from_max_leverage(((40e6, 20.0), (_INF, 10.0)))
_HL_DEFAULT = brackets_from_max_leverage(((20e6, 10.0), (_INF, 5.0)))
# dYdX v4 liquidity tiers (x/perpetuals): maintenance = IMF x maintenance fraction, flat in
# the notional (open-interest scaling moves only the initial margin). Large-Cap (BTC, ETH):
# IMF 5%, MF 0.6 -> 3%, 20x; Small-Cap (default here): IMF 10%, MF 0.5 -> 5%, 10x.
_DYDX_LARGE = (Bracket(_INF, 0.03, 20),)
_DYDX_SMALL = (Bracket(_INF, 0.05, 10),)
# Deribit futures: MM 1% (+0.005% per BTC of size, not modelled), IM 2% -> 50x.
_DERIBIT = (Bracket(_INF, 0.01, 50),)


def _freeze(d: dict[str, Any]) -> MappingProxyType[str, Any]:
    return MappingProxyType(d)


#: Preset name -> ``[venue]`` keys. Read-only. ``brackets`` maps symbol -> brackets.
PRESETS: MappingProxyType[str, MappingProxyType[str, Any]] = MappingProxyType(
    {
        # Binance USD-M: brackets above; clearance fee 1.25% (BTCUSDT `liquidationFee`);
        # liquidation by IOC orders until compliant (modelled as full); insurance fund
        # then ADL ranked by PnL% x margin ratio. Sources: Binance "Leverage and Margin of
        # USDⓈ-M Futures", "Liquidation", "Auto-Deleveraging (ADL)".
        # Mark price (not set here; ``mark_price = "median"`` has its shape): the median of
        # price 1 = index x (1 + last funding x time to funding / 8), price 2 = index + a
        # moving average of the basis (30 s since 18 Sep 2025) and the last price. Source:
        # Binance FAQ "Mark Price in Perpetual Futures" (binance.com/en/support/faq/
        # fff6ec1b3f5845d19f1fb924644a0877) and "What are Mark Price and Price Index"
        # (.../360033525071). Left out because it would change the built-in scenarios that
        # use the preset (their golden outputs and digests): docs/scenario-file.md.
        "binance-usdm": _freeze({
            "type": "derivatives",
            "brackets": _freeze({"BTC": _BINANCE_BTC, "ETH": _BINANCE_ETH,
                                 "*": _BINANCE_DEFAULT}),
            "liquidation_fee_rate": 0.0125,
            "liquidation": "full",
            "adl": True,
            "adl_ranking": "pnl_margin_ratio",
        }),
        # Hyperliquid: maintenance = 1 / (2 x max leverage) by bracket; no clearance fee;
        # positions above $100k are liquidated 20% at a time; below 2/3 of maintenance the
        # backstop vault takes the account over (the maintenance is not returned); ADL
        # ranked by (mark / entry) x (notional / account value). Source: Hyperliquid docs,
        # "Margining", "Liquidations", "Auto-deleveraging".
        # Mark price (not set here, for the same reason as Binance's): the median of oracle
        # + a 150-second EMA of (mid - oracle), the median of best bid, best ask and last
        # trade, and the median of CEX perpetual mids; the oracle, published every 3 s, is a
        # weighted median of CEX spot prices. Source: Hyperliquid docs "Robust price
        # indices" and "Oracle" (hyperliquid.gitbook.io/hyperliquid-docs/hypercore/oracle).
        "hyperliquid": _freeze({
            "type": "derivatives",
            "brackets": _freeze({"BTC": _HL_BTC, "ETH": _HL_ETH, "SOL": _HL_SOL,
                                 "XRP": _HL_XRP, "*": _HL_DEFAULT}),
            "liquidation_fee_rate": 0.0,
            "liquidation": "incremental",
            "step_fraction": 0.2,
            "step_min_usd": 0.0,
            "full_below_usd": 100_000.0,
            "backstop_ratio": 2.0 / 3.0,
            "adl": True,
            "adl_ranking": "profit_leverage",
        }),
        # dYdX v4: maintenance by liquidity tier; the fund takes min(1.5% of the fill,
        # what is left) (`liquidation_fee_rate` with the engine's fee cap); per block at
        # most max($1,000, 10% of the position) and $100k of notional per subaccount
        # (`step_*`: a cascade round plays the part of a block). Source: dydxprotocol
        # v4-chain x/perpetuals, x/clob liquidation config.
        "dydx-v4": _freeze({
            "type": "derivatives",
            "brackets": _freeze({"BTC": _DYDX_LARGE, "ETH": _DYDX_LARGE, "*": _DYDX_SMALL}),
            "liquidation_fee_rate": 0.015,
            "liquidation": "incremental",
            "step_fraction": 0.1,
            "step_min_usd": 1_000.0,
            "step_max_usd": 100_000.0,
            "full_below_usd": 0.0,
            "adl": True,
            "adl_ranking": "pnl_margin_ratio",
        }),
        # Deribit futures: MM 1%; incremental (partial) liquidation; fee 0.75% of BTC
        # futures to the insurance fund (VENUES.md, older docs; a newer docs page shows
        # 0.5%). When the fund is empty, losses are socialised among the day's winners, not
        # auto-deleveraged (Deribit "Insurance Fund"). Sources: Deribit knowledge base,
        # "Margin", "Liquidations", "Insurance Fund". Options: standard margin (short call
        # MM 0.075 + mark, short put max(0.075, 0.075 mark) + mark, in the underlying);
        # liquidation fee about 0.2% of the underlying on options (VENUES.md, older docs);
        # portfolio margin's risk matrix spans +-16% for BTC.
        "deribit": _freeze({
            "type": "derivatives",
            "brackets": _freeze({"*": _DERIBIT}),
            "option_margin": "standard",
            "option_liquidation_fee_rate": 0.002,
            "risk_matrix_range_pct": 0.16,
            "liquidation_fee_rate": 0.0075,
            "liquidation": "partial",
            "adl": False,
        }),
        # Aave v3 (Ethereum market): health factor from liquidation thresholds (WETH 83%,
        # WBTC 78%, stablecoins 78%); close factor 50%, 100% below HF 0.95 or when the
        # collateral or debt is under $2,000 (v3.3); bonus 5% (WETH), protocol share 10% of
        # the bonus; remaining debt of an account without collateral is written to a
        # deficit (bad debt). No ADL. Sources: Aave v3 docs "Liquidations", Aave v3.3
        # release notes, market parameters on app.aave.com (November 2026).
        "aave-v3": _freeze({
            "type": "lending",
            "liquidation_thresholds": _freeze({"ETH": 0.83, "WETH": 0.83, "BTC": 0.78,
                                               "WBTC": 0.78, "*": 0.78}),
            "close_factor": 0.5,
            "full_close_below_hf": 0.95,
            "full_close_below_usd": 2_000.0,
            "liquidation_bonus": 0.05,
            "protocol_share": 0.1,
            "liquidation_fee_rate": 0.0,
            "adl": False,
        }),
    }
)
