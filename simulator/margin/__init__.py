"""Margin engine: valuation, liquidation cascades with impact, insurance fund and ADL."""

from .engine import EngineRules, ReplayResult, replay

__all__ = ["EngineRules", "ReplayResult", "replay"]
