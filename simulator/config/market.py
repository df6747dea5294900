"""The ``[market]`` section: assets, price model, liquidity and shocks.

Frozen dataclasses :class:`Asset`, :class:`Market`, :class:`Liquidity`, :class:`Shock`
and their readers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.config._table import Table, check_unique, read_each
from simulator.config.limits import MAX_PRICE, MIN_PRICE
from simulator.config.models import (
    ModelParams,
    Replay,
    check_correlation,
    read_matrix,
    read_model_params,
)
from simulator.config.simulation import Simulation

#: price models a scenario may name (`market.model`)
MODELS = ("gbm", "student_t", "merton", "garch", "regime", "bootstrap", "replay")
IMPLEMENTED_MODELS = MODELS
#: kinds of scheduled shocks (`[[shocks]] kind`)
SHOCK_KINDS = ("gap", "vol", "correlation", "liquidity")


@dataclass(frozen=True)
class Asset:
    """One asset (``[[market.assets]]``)."""

    symbol: str
    price: float
    vol: float
    drift: float = 0.0
    depth_usd: float = math.inf
    haircut: float = 0.0
    spot_vol_beta: float = 0.0


@dataclass(frozen=True)
class Oracle:
    """The oracle that publishes each asset's index price (``[market.oracle]``;
    ``docs/engine.md``, "Oracle, index and mark").

    Attributes
    ----------
    heartbeat_steps : int
        It publishes at least every ``heartbeat_steps`` steps.
    deviation : float
        It also publishes at a step when its reading moved by more than this fraction since
        its last publication (0: that trigger off).
    lag_steps : int
        The index at step ``t`` is what it published from its reading at ``t - lag_steps``.
    sources : int
        Sources read per asset; the reading is their median.
    noise : float
        Each source reads the price times ``exp(noise z)``, ``z`` standard normal.
    """

    heartbeat_steps: int = 1
    deviation: float = 0.0
    lag_steps: int = 0
    sources: int = 1
    noise: float = 0.0

    @property
    def exact(self) -> bool:
        """Whether the index is its source's price at every step (the defaults)."""
        return self.heartbeat_steps == 1 and self.lag_steps == 0 and self.noise == 0.0


@dataclass(frozen=True)
class Market:
    """Price model and assets (``[market]``)."""

    model: str
    assets: tuple[Asset, ...]
    correlation: tuple[tuple[float, ...], ...]
    params: ModelParams = None
    oracle: Oracle = Oracle()

    @property
    def symbols(self) -> tuple[str, ...]:
        """Asset symbols in order."""
        return tuple(a.symbol for a in self.assets)

    def index(self, symbol: str) -> int:
        """Position of ``symbol`` among the assets."""
        return self.symbols.index(symbol)


@dataclass(frozen=True)
class Liquidity:
    """Market impact of liquidation flow (``[liquidity]``)."""

    impact: str = "linear"
    half_life_steps: float = 0.0

    @property
    def alpha(self) -> float:
        """Impact exponent: 1 (linear), 0.5 (square root), 0 (none)."""
        return {"none": 0.0, "linear": 1.0, "sqrt": 0.5}[self.impact]

    @property
    def decay_per_step(self) -> float:
        """Factor applied to the accumulated log impact at every step."""
        return 1.0 if self.half_life_steps == 0 else 0.5 ** (1.0 / self.half_life_steps)


@dataclass(frozen=True)
class Shock:
    """A scheduled overlay on the paths (``[[shocks]]``)."""

    kind: str
    step: int
    asset: str
    size: float
    duration_steps: int = 1


def _read_asset(t: Table, price_default: float | None = None) -> Asset:
    """One ``[[market.assets]]``; ``price_default`` (a replay's recorded start price) makes
    ``price`` optional, and a price given must then equal it."""
    symbol = t.string("symbol")
    valid = symbol.replace("_", "").isalnum() and symbol.upper() != "USD"
    if not valid:
        raise t.error("symbol", f"{symbol!r} is not a valid symbol: use letters, digits and _, "
                      "not USD (the numeraire)")
    if price_default is None:
        price = t.number("price", lo=0.0, lo_open=True, hi=MAX_PRICE, floor=MIN_PRICE)
    else:
        if not MIN_PRICE <= price_default <= MAX_PRICE:
            raise t.error("price", f"the replayed file's price at the window's start, "
                          f"{price_default!r}, is outside {MIN_PRICE:g} .. {MAX_PRICE:g} USD; "
                          "rescale the file's prices (a price per 1,000 units, say)")
        price = t.number("price", price_default, lo=0.0, lo_open=True, hi=MAX_PRICE,
                         floor=MIN_PRICE)
        if abs(price - price_default) > 1e-9 * price_default:
            raise t.error("price", f"{price!r} differs from the replayed file's price at the "
                          f"window's start, {price_default!r}; leave price out (it is taken "
                          "from the file) or set it to that")
    return Asset(
        symbol=symbol,
        price=price,
        vol=t.number("vol", lo=0.0, hi=50.0),
        drift=t.number("drift", 0.0, lo=-50.0, hi=50.0),
        depth_usd=t.number("depth_usd", math.inf, lo=1.0, allow_inf=True),
        haircut=t.number("haircut", 0.0, lo=0.0, hi=1.0),
        spot_vol_beta=t.number("spot_vol_beta", 0.0, lo=-5.0, hi=5.0),
    )


def _read_market(t: Table, base_dir: Path | None = None, sim: Simulation | None = None
                 ) -> Market:
    model = t.string("model", "gbm", choices=MODELS)
    if model not in IMPLEMENTED_MODELS:
        raise t.error("model", f"{model!r} is not implemented yet; available: "
                      f"{', '.join(IMPLEMENTED_MODELS)}")
    asset_tables = t.tables("assets")
    if not asset_tables:
        raise t.error("assets", "at least one [[market.assets]] is required")
    sim = Simulation() if sim is None else sim
    replay: Replay | None = None
    if model == "replay":  # the assets' prices come from the file
        symbols = tuple(a.string("symbol") for a in asset_tables)
        check_unique(list(symbols), t.source, t.key("assets"), "symbol")
        replay = read_model_params(t, model, len(symbols), base_dir, symbols, sim.steps,
                                   sim.horizon_days)
        assets = read_each(asset_tables, lambda a: _read_asset(
            a, replay.start_prices[symbols.index(a.string("symbol"))]))
    else:
        assets = read_each(asset_tables, _read_asset)
    check_unique([a.symbol for a in assets], t.source, t.key("assets"), "symbol")
    n = len(assets)
    raw = t.raw("correlation", None)
    if raw is None:
        corr = np.eye(n)
    else:
        corr = read_matrix(t, "correlation", raw, n)
    check_correlation(corr, t.source, t.key("correlation"))
    params = replay if replay is not None else read_model_params(
        t, model, n, base_dir, tuple(a.symbol for a in assets), sim.steps, sim.horizon_days)
    oracle_table = t.table("oracle", {})
    oracle = _read_oracle(oracle_table)
    oracle_table.finish()
    return Market(model=model, assets=assets, correlation=tuple(tuple(r) for r in corr.tolist()),
                  params=params, oracle=oracle)


def _read_oracle(t: Table) -> Oracle:
    """``[market.oracle]``: every key optional, the defaults publish the price every step."""
    d = Oracle()
    return Oracle(heartbeat_steps=t.integer("heartbeat_steps", d.heartbeat_steps, lo=1),
                  deviation=t.number("deviation", d.deviation, lo=0.0, hi=100.0),
                  lag_steps=t.integer("lag_steps", d.lag_steps, lo=0),
                  sources=t.integer("sources", d.sources, lo=1, hi=1000),
                  noise=t.number("noise", d.noise, lo=0.0, hi=10.0))


def _read_shock(t: Table, market: Market, sim: Simulation) -> Shock:
    kind = t.string("kind", choices=SHOCK_KINDS)
    step = t.integer("step", lo=1, hi=sim.steps)
    asset = t.string("asset", "*")
    if asset != "*" and asset not in market.symbols:
        raise t.error("asset", f"{asset!r} is not an asset; valid: *, {', '.join(market.symbols)}")
    if kind == "gap":
        size = t.number("size", lo=-1.0, lo_open=True, hi=100.0)
        duration = t.integer("duration_steps", 1, lo=1, hi=1)
    elif kind == "correlation":
        size = t.number("size", lo=-1.0, hi=1.0, hi_open=True)
        duration = t.integer("duration_steps", 1, lo=1)
    else:
        size = t.number("size", lo=0.0, lo_open=kind == "liquidity", hi=1e6)
        duration = t.integer("duration_steps", 1, lo=1)
    return Shock(kind=kind, step=step, asset=asset, size=size, duration_steps=duration)
