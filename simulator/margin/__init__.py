"""Margin engine: valuation, liquidation cascades with impact, insurance fund and ADL."""

from simulator.margin.engine import ReplayResult, replay
from simulator.margin.rules import EngineRules

__all__ = ["EngineRules", "ReplayResult", "replay"]
