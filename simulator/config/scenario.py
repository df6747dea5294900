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

from simulator.config._table import Table, read_each
from simulator.config.accounts import Account, Position, read_account
from simulator.config.accounts_file import AccountsFile, read_accounts_file
from simulator.config.models import check_correlation
from simulator.config.overrides import apply_overrides, override_for, parse_override
from simulator.config.toml import check_depth, parse_toml
from simulator.errors import ScenarioError
from simulator.input_files import read_regular_text

__all__ = ["Account", "AccountsFile", "Asset", "Distribution", "Liquidity", "Market", "Population",
           "Position", "Scenario", "Shock", "Simulation", "Venue", "apply_overrides",
           "builtin_dir", "builtin_scenarios", "check_correlation", "load_scenario",
           "parse_override", "resolve_scenario_path", "scenario_from_dict"]
from simulator.config._table import check_unique
from simulator.config.behaviour import Behaviour, read_behaviour
from simulator.config.catalogue import builtin_dir, builtin_scenarios, resolve_scenario_path
from simulator.config.market import (
    Asset,
    Liquidity,
    Market,
    Oracle,
    Shock,
    _read_market,
    _read_shock,
)
from simulator.config.population import (
    Distribution,
    Population,
    _read_population,
)
from simulator.config.rare import MAX_SOBOL_DIMS, SOBOL_MODELS, TILTABLE_MODELS, parse_event
from simulator.config.simulation import Simulation, _read_simulation
from simulator.config.venue import Venue, read_venue

#: the longest ``name`` (it names the default run directory)
MAX_NAME_LENGTH = 200
















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
        for key, default in (("events", "all"), ("intrastep", "none")):
            if out["simulation"][key] == default:  # defaults: digests of older scenarios
                out["simulation"].pop(key)  # hold
        if out["venue"]["circuit_breaker_band"] == 0.0:  # no circuit breaker: likewise
            for key in ("circuit_breaker_band", "circuit_breaker_steps",
                        "circuit_breaker_halts"):
                out["venue"].pop(key)
        if not out["simulation"]["rare_event"]:  # rare-event mode off: likewise
            for key in ("rare_event", "rare_pilot_paths", "rare_defensive_share"):
                out["simulation"].pop(key)
        if out["simulation"]["variance_reduction"] == "none":
            out["simulation"].pop("variance_reduction")
        if math.isinf(out["venue"]["adl_max_notional_per_step_usd"]):  # no cap: likewise
            out["venue"].pop("adl_max_notional_per_step_usd")
        if out["venue"]["vault_disposal"] == "instant":  # the backstop as before: digests of
            for key in ("vault_disposal", "vault_disposal_share", "vault_depth_share"):
                out["venue"].pop(key)  # older scenarios hold
        _drop_default_prices(out, self)
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


def _drop_default_prices(out: dict[str, Any], scenario: Scenario) -> None:
    """The oracle and the venue's price keys at their defaults are left out of the resolved
    scenario: digests of older scenarios hold."""
    if scenario.market.oracle == Oracle():
        out["market"].pop("oracle")
    for key in ("mark_price", "mark_ema_halflife_steps", "collateral_price"):
        if getattr(scenario.venue, key) == getattr(Venue, key):
            out["venue"].pop(key)


def _check_prices(simulation: Simulation, market: Market, sim_table: Table,
                  venue: Venue, venue_table: Table) -> None:
    """Combinations of the oracle and the marks the engine refuses (docs/engine.md,
    "Oracle, index and mark")."""
    moved = [key for key, on in (("venue.mark_price", venue.mark_price != "book"),
                                 ("venue.collateral_price", venue.collateral_price != "book"),
                                 ("market.oracle", not market.oracle.exact)) if on]
    marks = [key for key in moved if key.startswith("venue.")]
    if venue.vault_disposal == "gradual" and marks:
        raise venue_table.error("vault_disposal", f"the vault's gradual disposal sells at the "
                                f"marks, which {marks[0]} moves off the venue's book: leave "
                                "vault_disposal = \"instant\" or the marks at \"book\"")
    if simulation.intrastep == "bridge" and moved:
        raise sim_table.error("intrastep", f"the intrastep bridge sweeps the book's price "
                              f"inside a step, where no oracle publishes: it is not combined "
                              f"with {', '.join(moved)} (set simulation.intrastep = \"none\", "
                              "or leave those at their defaults)")


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


def _check_rare_event(simulation: Simulation, market: Any, sim_table: Table) -> None:
    """The event names a column of this market's ``paths/`` and the model can be tilted."""
    parse_event(simulation.rare_event, market.symbols, sim_table.source,
                sim_table.key("rare_event"))
    if market.model not in TILTABLE_MODELS:
        raise sim_table.error("rare_event", f"importance sampling shifts the Gaussian "
                              f"innovations of the models {', '.join(TILTABLE_MODELS)}; "
                              f"market.model is {market.model!r}, which has none (use a "
                              "plain run, or one of those models)")


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
    market = _read_market(market_table, base_dir, simulation)
    market_table.finish()
    if simulation.rare_event:
        _check_rare_event(simulation, market, sim_table)
    if simulation.variance_reduction == "sobol":
        if market.model not in SOBOL_MODELS:
            raise sim_table.error("variance_reduction", f"the sobol mode draws the increments "
                                  f"of the models {', '.join(SOBOL_MODELS)}; market.model is "
                                  f"{market.model!r}")
        dims = simulation.steps * (len(market.assets) + (market.model == "student_t"))
        if dims > MAX_SOBOL_DIMS:
            raise sim_table.error("variance_reduction", f"the sobol mode needs one dimension "
                                  f"per step and asset ({dims:,} here); Sobol points have at "
                                  f"most {MAX_SOBOL_DIMS:,}: use fewer steps or the plain mode")
    liq_table = top.table("liquidity", {})
    liquidity = Liquidity(
        impact=liq_table.string("impact", "linear", choices=("none", "linear", "sqrt")),
        half_life_steps=liq_table.number("half_life_steps", 0.0, lo=0.0),
    )
    liq_table.finish()
    venue_table = top.table("venue", {})
    venue = read_venue(venue_table)
    venue_table.finish()
    if venue.circuit_breaker_band > 0.0 and simulation.intrastep == "bridge":
        raise venue_table.error("circuit_breaker_band", "a circuit breaker checks the band at "
                                "the steps' closes; it is not defined with simulation.intrastep "
                                "= \"bridge\" (set intrastep = \"none\", or "
                                "circuit_breaker_band = 0)")
    _check_prices(simulation, market, sim_table, venue, venue_table)
    behaviour_table = top.table("behaviour", {})
    behaviour = read_behaviour(behaviour_table)
    behaviour_table.finish()
    if venue.lending and behaviour.calls:
        raise behaviour_table.error("margin_call_ratio", "margin calls apply to derivatives "
                                    "venues; a lending venue has no maintenance margin")
    shocks = read_each(top.tables("shocks"), lambda t: _read_shock(t, market, simulation))
    accounts = read_each(top.tables("accounts"), lambda t: read_account(t, market, venue))
    check_unique([a.id for a in accounts], source, "accounts", "id")
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


















