"""Scenario files: TOML -> frozen, typed, validated objects.

A scenario is read in three steps: the TOML text is parsed, ``--set KEY=VALUE`` overrides
are applied to the parsed document, and the document is validated section by section into
frozen dataclasses. Every error names the file (or ``--set``), the key path and what would
be valid. The resolved document is kept (``Scenario.document``) so a run directory can
record exactly what ran, and hashed (``Scenario.digest``).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._validate import Table, fmt_int, read_each
from .accounts_config import MAX_AMOUNT, MAX_PRICE, MIN_PRICE, Account, Position, read_account
from .accounts_file import AccountsFile, read_accounts_file
from .bounds import MAX_CHUNKS
from .errors import ScenarioError
from .input_files import check_depth, non_regular_kind, parse_toml, read_regular_text
from .models_config import ModelParams, check_correlation, read_matrix, read_model_params
from .overrides import apply_overrides, override_for, parse_override

__all__ = ["Account", "AccountsFile", "Asset", "Distribution", "Liquidity", "Market", "Population",
           "Position", "Scenario", "Shock", "Simulation", "Venue", "apply_overrides",
           "builtin_dir", "builtin_scenarios", "check_correlation", "load_scenario",
           "parse_override", "resolve_scenario_path", "scenario_from_dict"]
from .behaviour_config import Behaviour, read_behaviour
from .population_options import PopulationOptions, read_population_options
from .venue_config import MARGIN_MODES, Venue, read_venue

MODELS = ("gbm", "student_t", "merton", "garch", "regime", "bootstrap")
IMPLEMENTED_MODELS = MODELS
SHOCK_KINDS = ("gap", "vol", "correlation", "liquidity")
#: the longest ``name`` (it names the default run directory)
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class Simulation:
    """Monte Carlo settings (``[simulation]``)."""

    paths: int = 10_000
    seed: int = 0
    steps: int = 288
    horizon_days: float = 1.0
    chunk_paths: int = 4096
    account_tail_budget_mb: float = 64.0
    risk_levels: tuple[float, ...] = (0.95, 0.99, 0.999)

    @property
    def dt_years(self) -> float:
        """Length of one step in years (365-day year: crypto trades every day)."""
        return self.horizon_days / 365.0 / self.steps


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
class Market:
    """Price model and assets (``[market]``)."""

    model: str
    assets: tuple[Asset, ...]
    correlation: tuple[tuple[float, ...], ...]
    params: ModelParams = None

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


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. Build it with :func:`load_scenario`."""

    name: str
    description: str
    simulation: Simulation
    market: Market
    liquidity: Liquidity
    venue: Venue
    shocks: tuple[Shock, ...]
    accounts: tuple[Account, ...]
    population: Population | None
    behaviour: Behaviour = field(default_factory=Behaviour)
    accounts_file: AccountsFile | None = None
    source: str = "<memory>"
    document: dict = field(default_factory=dict, compare=False, repr=False)
    #: the ``--set KEY=VALUE`` overrides it was loaded with (not part of the digest)
    overrides: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def all_accounts(self) -> tuple[Account, ...]:
        """The explicit ``[[accounts]]``, then those of the ``[accounts_file]``."""
        if self.accounts_file is None:
            return self.accounts
        return self.accounts + self.accounts_file.accounts

    def resolved(self) -> dict[str, Any]:
        """Every setting with defaults and presets filled in, as plain JSON-able values.

        An ``[accounts_file]`` is recorded by its path, SHA-256 and counts, not row by row.
        """
        accounts_file = self.accounts_file
        out = dataclasses.asdict(dataclasses.replace(self, accounts_file=None))
        out.pop("accounts_file")
        if accounts_file is not None:  # absent otherwise: digests of older scenarios hold
            out["accounts_file"] = accounts_file.summary()
        for key in ("document", "source", "overrides"):
            out.pop(key)
        return _json_safe(out)

    @property
    def digest(self) -> str:
        """SHA-256 of the resolved scenario (canonical JSON of :meth:`resolved`).

        Defaults and presets count, the spelling of the file does not: ``paths = 100`` and
        ``paths = 100.0`` give the same digest.
        """
        text = json.dumps(self.resolved(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _json_safe(value: Any) -> Any:
    """Infinite floats as the strings ``"inf"`` / ``"-inf"`` (strict JSON has no infinity)."""
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


# --------------------------------------------------------------------------- loading


def builtin_dir() -> Path:
    """Folder holding the built-in scenarios (the repository's ``scenarios/``)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "scenarios", here / "_builtin_scenarios"):
        if candidate.is_dir():
            return candidate
    return here.parent / "scenarios"


def builtin_scenarios() -> dict[str, Path]:
    """Built-in scenario names and their files."""
    return {p.stem: p for p in sorted(builtin_dir().glob("*.toml"))}


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """Turn a path or a built-in scenario name into a file path."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.is_dir():
        raise ScenarioError(str(path), "", "is a directory; give a scenario TOML file or the "
                            "name of a built-in scenario (marginsim scenarios lists them)")
    kind = non_regular_kind(path)
    if kind is not None:  # /dev/zero would be read forever, a FIFO would block
        raise ScenarioError(str(path), "", f"is {kind}, not a regular file (reading it would "
                            "block or never end); give a scenario TOML file or the name of a "
                            "built-in scenario")
    builtins = builtin_scenarios()
    if str(name_or_path) in builtins:
        return builtins[str(name_or_path)]
    valid = ", ".join(builtins) or "(none installed)"
    raise ScenarioError(
        str(name_or_path), "", f"no such file or built-in scenario; built-in scenarios: {valid}"
    )


def load_scenario(
    name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()
) -> Scenario:
    """Load, override and validate a scenario.

    Parameters
    ----------
    name_or_path : str or Path
        A TOML file, or the name of a built-in scenario (see ``marginsim scenarios``).
    overrides : list of str
        ``KEY=VALUE`` strings; ``KEY`` is a dotted key path (``venue.adl``,
        ``market.assets.0.vol``), ``VALUE`` a TOML value (a bare word is a string).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        With the file, the key path and what would be valid.

    Examples
    --------
    >>> sc = load_scenario("two-asset-crash", ["simulation.paths=100"])
    >>> sc.simulation.paths
    100
    """
    path = resolve_scenario_path(name_or_path)
    source = str(path)
    try:
        text = read_regular_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(source, "", f"cannot read the file: {exc}") from None
    document = parse_toml(text, source)  # (at most MAX_DEPTH deep: nothing below recurses)
    origins: dict[str, str] = {}
    document = apply_overrides(document, overrides, origins)
    try:
        scenario = scenario_from_dict(document, source=source, base_dir=path.parent)
    except ScenarioError as exc:
        setter = override_for(exc.key, origins) if exc.source == source else None
        if setter is None:
            raise
        raise ScenarioError(f"--set {setter} (on {source})", exc.key, exc.message) from None
    return dataclasses.replace(scenario, overrides=tuple(overrides))


def scenario_from_dict(
    document: dict, *, source: str = "<memory>", base_dir: Path | None = None
) -> Scenario:
    """Validate a parsed scenario document (see :func:`load_scenario`)."""
    check_depth(document, source)  # before copy.deepcopy, which recurses
    document = copy.deepcopy(document)
    top = Table(document, source, "")
    name = _read_name(top)
    description = top.string("description", "")
    sim_table = top.table("simulation", {})
    simulation = _read_simulation(sim_table)
    sim_table.finish()
    market_table = top.table("market")
    market = _read_market(market_table, base_dir)
    market_table.finish()
    liq_table = top.table("liquidity", {})
    liquidity = Liquidity(
        impact=liq_table.string("impact", "linear", choices=("none", "linear", "sqrt")),
        half_life_steps=liq_table.number("half_life_steps", 0.0, lo=0.0),
    )
    liq_table.finish()
    venue_table = top.table("venue", {})
    venue = read_venue(venue_table)
    venue_table.finish()
    behaviour_table = top.table("behaviour", {})
    behaviour = read_behaviour(behaviour_table)
    behaviour_table.finish()
    if venue.lending and behaviour.calls:
        raise behaviour_table.error("margin_call_ratio", "margin calls apply to derivatives "
                                    "venues; a lending venue has no maintenance margin")
    shocks = read_each(top.tables("shocks"), lambda t: _read_shock(t, market, simulation))
    accounts = read_each(top.tables("accounts"), lambda t: read_account(t, market, venue))
    _check_unique([a.id for a in accounts], source, "accounts", "id")
    accounts_file = None
    file_table = top.table("accounts_file", None)
    if file_table is not None:
        taken = {a.id: f"accounts[{i}] in {source}" for i, a in enumerate(accounts)}
        accounts_file = read_accounts_file(file_table, market, venue, base_dir, taken)
        file_table.finish()
    pop_table = top.table("population", None)
    population = None
    if pop_table is not None:
        population = _read_population(pop_table, market, venue, simulation)
        pop_table.finish()
        ids = {a.id for a in accounts}
        if accounts_file is not None:
            ids.update(a.id for a in accounts_file.accounts)
        if population.count and any(i.startswith(population.id_prefix) for i in ids):
            raise pop_table.error("id_prefix", f"explicit account ids start with "
                                  f"{population.id_prefix!r}; choose another id_prefix")
    top.finish()
    if (not accounts and (accounts_file is None or not accounts_file.accounts)
            and (population is None or population.count == 0)):
        empty_file = ("" if accounts_file is None else
                      f" (the accounts file {accounts_file.path!r} has no rows)")
        raise ScenarioError(source, "accounts", f"the scenario has no accounts{empty_file}: add "
                            "[[accounts]], rows to an [accounts_file] or a [population] with "
                            "count > 0")
    return Scenario(
        name=name,
        description=description,
        simulation=simulation,
        market=market,
        liquidity=liquidity,
        venue=venue,
        behaviour=behaviour,
        shocks=shocks,
        accounts=accounts,
        accounts_file=accounts_file,
        population=population,
        source=source,
        document=document,
    )


def _check_unique(values: list[str], source: str, array: str, key: str) -> None:
    seen: dict[str, int] = {}
    for i, v in enumerate(values):
        if v in seen:
            raise ScenarioError(source, f"{array}[{i}].{key}",
                                f"duplicate {key} {v!r} (first at {array}[{seen[v]}])")
        seen[v] = i


def _read_name(top: Table) -> str:
    """``name``: printable, at most :data:`MAX_NAME_LENGTH` characters (it names the run
    directory: a NUL or a line break there is an error or a trap)."""
    name = top.string("name", "scenario")
    if len(name) > MAX_NAME_LENGTH:
        raise top.error("name", f"is {len(name):,} characters long; at most "
                        f"{MAX_NAME_LENGTH} (it names the run directory)")
    for i, char in enumerate(name):
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise top.error("name", f"{name!r} holds the control character U+{ord(char):04X} "
                            f"at position {i}; use printable characters only (it names the "
                            "run directory)")
    return name


def _read_simulation(t: Table) -> Simulation:
    paths = t.integer("paths", Simulation.paths, lo=1)
    chunk_paths = t.integer("chunk_paths", Simulation.chunk_paths, lo=1)
    n_chunks = -(-paths // chunk_paths)
    if n_chunks > MAX_CHUNKS:  # (SeedSequence.spawn(n_chunks) would take it all)
        raise t.error("paths", f"{fmt_int(paths)} paths in chunks of simulation.chunk_paths = "
                      f"{fmt_int(chunk_paths)} make {fmt_int(n_chunks)} chunks; at most "
                      f"{MAX_CHUNKS:,}: lower simulation.paths or raise "
                      "simulation.chunk_paths")
    return Simulation(
        paths=paths,
        seed=t.integer("seed", Simulation.seed, lo=0),
        steps=t.integer("steps", Simulation.steps, lo=1, hi=1_000_000),
        horizon_days=t.number("horizon_days", Simulation.horizon_days, lo=0.0, lo_open=True,
                              hi=36500.0, floor=1e-4),
        chunk_paths=chunk_paths,
        account_tail_budget_mb=t.number("account_tail_budget_mb",
                                        Simulation.account_tail_budget_mb, lo=0.0),
        risk_levels=_read_levels(t),
    )


def _read_levels(t: Table) -> tuple[float, ...]:
    """``risk_levels``: VaR/ES confidence levels in (0.5, 1), 0.99 always among them."""
    raw = t.raw("risk_levels", None)
    if raw is None:
        return Simulation.risk_levels
    if not isinstance(raw, list) or not raw:
        raise t.error("risk_levels", f"expected a non-empty list of levels such as "
                                     f"[0.95, 0.99, 0.999], got {raw!r}")
    for i, v in enumerate(raw):
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0.5 < v < 1.0:
            raise t.error(f"risk_levels[{i}]", f"must be a number in (0.5, 1), got {v!r}")
    return tuple(sorted({float(v) for v in raw} | {0.99}))


def _read_asset(t: Table) -> Asset:
    symbol = t.string("symbol")
    valid = symbol.replace("_", "").isalnum() and symbol.upper() != "USD"
    if not valid:
        raise t.error("symbol", f"{symbol!r} is not a valid symbol: use letters, digits and _, "
                      "not USD (the numeraire)")
    return Asset(
        symbol=symbol,
        price=t.number("price", lo=0.0, lo_open=True, hi=MAX_PRICE, floor=MIN_PRICE),
        vol=t.number("vol", lo=0.0, hi=50.0),
        drift=t.number("drift", 0.0, lo=-50.0, hi=50.0),
        depth_usd=t.number("depth_usd", math.inf, lo=1.0, allow_inf=True),
        haircut=t.number("haircut", 0.0, lo=0.0, hi=1.0),
        spot_vol_beta=t.number("spot_vol_beta", 0.0, lo=-5.0, hi=5.0),
    )


def _read_market(t: Table, base_dir: Path | None = None) -> Market:
    model = t.string("model", "gbm", choices=MODELS)
    if model not in IMPLEMENTED_MODELS:
        raise t.error("model", f"{model!r} is not implemented yet; available: "
                      f"{', '.join(IMPLEMENTED_MODELS)}")
    asset_tables = t.tables("assets")
    if not asset_tables:
        raise t.error("assets", "at least one [[market.assets]] is required")
    assets = read_each(asset_tables, _read_asset)
    _check_unique([a.symbol for a in assets], t.source, t.key("assets"), "symbol")
    n = len(assets)
    raw = t.raw("correlation", None)
    if raw is None:
        corr = np.eye(n)
    else:
        corr = read_matrix(t, "correlation", raw, n)
    check_correlation(corr, t.source, t.key("correlation"))
    params = read_model_params(t, model, n, base_dir, tuple(a.symbol for a in assets))
    return Market(model=model, assets=assets, correlation=tuple(tuple(r) for r in corr.tolist()),
                  params=params)


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
