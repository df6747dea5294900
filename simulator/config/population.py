"""The ``[population]`` section: a synthetic book described by distributions.

Frozen dataclasses :class:`Distribution`, :class:`Population` and
:class:`PopulationOptions` (``[population.options]``) and their readers; the draws live in
:mod:`simulator.book.population`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.config._table import Table
from simulator.config.limits import MAX_AMOUNT
from simulator.config.market import (
    Market,
)
from simulator.config.simulation import Simulation
from simulator.config.venue import MARGIN_MODES, Venue


@dataclass(frozen=True)
class Distribution:
    """A one-dimensional distribution used by the synthetic population.

    ``kind`` is ``fixed`` (``value``), ``uniform`` (``low``, ``high``), ``lognormal``
    (``median``, ``sigma``) or ``pareto`` (``scale``, ``alpha`` = tail index);
    draws are clipped to ``[low_clip, high_clip]``.
    """

    kind: str
    params: tuple[tuple[str, float], ...]
    low_clip: float = 0.0
    high_clip: float = math.inf

    def param(self, name: str) -> float:
        """Value of parameter ``name``."""
        return dict(self.params)[name]


@dataclass(frozen=True)
class Population:
    """A synthetic book of accounts drawn from distributions (``[population]``)."""

    count: int
    seed: int
    assets: tuple[str, ...]
    asset_weights: tuple[float, ...]
    long_share: float
    leverage: Distribution
    notional_usd: Distribution
    margin_modes: tuple[tuple[str, float], ...]
    max_positions: int
    collateral: tuple[tuple[str, float], ...]
    id_prefix: str = "pop-"
    inverse_share: float = 0.0
    options: PopulationOptions | None = None


def _read_distribution(t: Table, name: str, default: Distribution) -> Distribution:
    raw = t.raw(name, None)
    if raw is None:
        return default
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = t.number(name, lo=0.0, lo_open=True, hi=MAX_AMOUNT)
        return Distribution("fixed", (("value", value),), value, value)
    d = Table(raw, t.source, t.key(name))
    kind = d.string("dist", choices=("fixed", "uniform", "lognormal", "pareto"))
    if kind == "fixed":
        params = (("value", d.number("value", lo=0.0, lo_open=True, hi=MAX_AMOUNT)),)
    elif kind == "uniform":
        low = d.number("low", lo=0.0, lo_open=True, hi=MAX_AMOUNT)
        high = d.number("high", lo=low, hi=MAX_AMOUNT)
        params = (("low", low), ("high", high))
    elif kind == "lognormal":
        params = (("median", d.number("median", lo=0.0, lo_open=True, hi=MAX_AMOUNT)),
                  ("sigma", d.number("sigma", lo=0.0, hi=10.0)))
    else:
        params = (("scale", d.number("scale", lo=0.0, lo_open=True, hi=MAX_AMOUNT)),
                  ("alpha", d.number("alpha", lo=0.0, lo_open=True, hi=100.0)))
    lo = d.number("min", 0.0, lo=0.0)
    hi = d.number("max", math.inf, lo=lo, allow_inf=True)
    d.finish()
    return Distribution(kind, params, lo, hi)


def _read_shares(t: Table, name: str, default: dict[str, float], valid: tuple[str, ...]
                 ) -> tuple[tuple[str, float], ...]:
    sub = t.table(name, default)
    shares = []
    for key in list(sub.data):
        if key not in valid:
            raise sub.error(key, f"{key!r} is not valid here; valid: {', '.join(valid)}")
        shares.append((key, sub.number(key, lo=0.0)))
    total = sum(v for _, v in shares)
    if total <= 0:
        raise t.error(name, "shares must add up to a positive number")
    return tuple((k, v / total) for k, v in shares)


def _read_population(t: Table, market: Market, venue: Venue, sim: Simulation) -> Population:
    count = t.integer("count", lo=0, hi=10_000_000)
    assets_raw = t.raw("assets", list(market.symbols))
    if not isinstance(assets_raw, list) or not assets_raw or any(
        not isinstance(a, str) or a not in market.symbols for a in assets_raw
    ):
        raise t.error("assets", f"expected a non-empty array of asset symbols from "
                      f"{', '.join(market.symbols)}, got {assets_raw!r}")
    if len(set(assets_raw)) != len(assets_raw):
        raise t.error("assets", "lists an asset twice")
    weights_raw = t.raw("asset_weights", [1.0] * len(assets_raw))
    if (not isinstance(weights_raw, list) or len(weights_raw) != len(assets_raw) or any(
            isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0
            for w in weights_raw) or sum(weights_raw) <= 0):
        raise t.error("asset_weights", f"expected {len(assets_raw)} non-negative numbers, one per "
                      "population asset, with a positive sum")
    total = float(sum(weights_raw))
    return Population(
        count=count,
        seed=t.integer("seed", 1, lo=0),
        assets=tuple(assets_raw),
        asset_weights=tuple(float(w) / total for w in weights_raw),
        long_share=t.number("long_share", 0.5, lo=0.0, hi=1.0),
        leverage=_read_distribution(t, "leverage", Distribution(
            "lognormal", (("median", 10.0), ("sigma", 0.6)), 1.0, 100.0)),
        notional_usd=_read_distribution(t, "notional_usd", Distribution(
            "lognormal", (("median", 20_000.0), ("sigma", 1.5)), 10.0, math.inf)),
        margin_modes=_read_shares(t, "margin_modes", {venue.margin_mode: 1.0}, MARGIN_MODES),
        max_positions=t.integer("max_positions", 1, lo=1,
                                hi=sum(1 for w in weights_raw if w > 0)),
        collateral=_read_shares(t, "collateral", {"USD": 1.0}, ("USD", *market.symbols)),
        id_prefix=t.string("id_prefix", "pop-"),
        inverse_share=t.number("inverse_share", 0.0, lo=0.0, hi=1.0),
        options=_read_population_options(t, venue),
    )


def _read_population_options(t: Table, venue: Venue) -> PopulationOptions | None:
    if not t.has("options"):
        return None
    if venue.lending:
        raise t.error("options", "a lending venue holds loans, not options")
    sub = t.table("options")
    out = read_population_options(sub)
    sub.finish()
    return out


OPTION_TYPES = ("call", "put")


@dataclass(frozen=True)
class PopulationOptions:
    """``[population.options]`` (see the module docstring)."""

    share: float
    short_share: float = 1.0
    types: tuple[tuple[str, float], ...] = (("put", 0.5), ("call", 0.5))
    moneyness: tuple[float, float] = (0.9, 1.1)
    expiry_days: tuple[float, float] = (7.0, 30.0)
    size: float = 1.0
    iv: float | None = None


def _read_range(t: Table, name: str, default: tuple[float, float], lo: float, hi: float
                ) -> tuple[float, float]:
    raw = t.raw(name, list(default))
    ok = (isinstance(raw, list) and len(raw) == 2
          and all(isinstance(x, int | float) and not isinstance(x, bool) for x in raw))
    if not ok or not (lo < raw[0] <= raw[1] <= hi):
        raise t.error(name, f"expected [low, high] with {lo:g} < low <= high <= {hi:g}, "
                      f"got {raw!r}")
    return float(raw[0]), float(raw[1])


def read_population_options(t: Table) -> PopulationOptions:
    """Read ``[population.options]`` (``t`` is that table)."""
    sub = t.table("types", {"put": 0.5, "call": 0.5})
    types = []
    for key in list(sub.data):
        if key not in OPTION_TYPES:
            raise sub.error(key, f"{key!r} is not an option type; valid: call, put")
        types.append((key, sub.number(key, lo=0.0)))
    total = sum(v for _, v in types)
    if total <= 0:
        raise t.error("types", "shares must add up to a positive number")
    return PopulationOptions(
        share=t.number("share", lo=0.0, hi=1.0),
        short_share=t.number("short_share", 1.0, lo=0.0, hi=1.0),
        types=tuple((k, v / total) for k, v in types),
        moneyness=_read_range(t, "moneyness", (0.9, 1.1), 0.0, 10.0),
        expiry_days=_read_range(t, "expiry_days", (7.0, 30.0), 0.0, 36500.0),
        size=t.number("size", 1.0, lo=0.0, lo_open=True, hi=1e6),
        iv=t.number("iv", lo=0.0, lo_open=True, hi=10.0) if t.has("iv") else None,
    )
