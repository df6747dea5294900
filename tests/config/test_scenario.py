"""Tests of the scenario loader: TOML files and ``--set`` overrides into a frozen Scenario.

Covers :func:`simulator.config.scenario.load_scenario`,
:func:`~simulator.config.scenario.scenario_from_dict` and
:func:`~simulator.config.overrides.apply_overrides`: every built-in scenario loads (by name and by
path) into frozen dataclasses; every invalid input is a :class:`~simulator.errors.ScenarioError`
whose message names the file and the exact key path; overrides reach numbers, booleans, bare
words, nested keys and array elements; venue presets fill the venue keys and explicit keys win;
the scenario digest is stable and follows the values.

Scenario files are written into pytest's ``tmp_path`` from small Python documents, so each
test states exactly what it changes.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest

from simulator.config.overrides import override_for
from simulator.config.scenario import (
    Scenario,
    Venue,
    apply_overrides,
    builtin_scenarios,
    load_scenario,
    scenario_from_dict,
)
from simulator.config.venue_presets import PRESETS, Bracket
from simulator.errors import ScenarioError

from ..support.toml_text import dumps

DELETE = object()


# --------------------------------------------------------------------------- helpers


def base_doc() -> dict[str, Any]:
    """A small valid scenario document: two assets, a gap, a cross and an isolated account."""
    return {
        "name": "unit-test",
        "description": "small valid scenario for loader tests",
        "simulation": {"paths": 10, "seed": 1, "steps": 10, "horizon_days": 1.0,
                       "chunk_paths": 5},
        "market": {
            "model": "gbm",
            "correlation": [[1.0, 0.5], [0.5, 1.0]],
            "assets": [
                {"symbol": "BTC", "price": 60000.0, "vol": 0.8, "depth_usd": 2.0e7,
                 "haircut": 0.05},
                {"symbol": "ETH", "price": 3000.0, "vol": 1.0, "depth_usd": 1.0e7},
            ],
        },
        "liquidity": {"impact": "linear", "half_life_steps": 0},
        "venue": {"maintenance_margin_rate": 0.005, "liquidation_fee_rate": 0.0125},
        "shocks": [{"kind": "gap", "step": 1, "asset": "BTC", "size": -0.1}],
        "accounts": [
            {"id": "cross-1", "collateral": {"USD": 10000.0, "BTC": 0.5},
             "positions": [{"symbol": "BTC", "qty": 1.0, "entry": 60000.0},
                           {"symbol": "ETH", "qty": -5.0}]},
            {"id": "iso-1", "margin_mode": "isolated", "collateral": {"USD": 5000.0},
             "positions": [{"symbol": "ETH", "qty": 10.0, "entry": 2900.0}]},
        ],
    }


def write(tmp_path: Path, document: dict[str, Any], name: str = "scenario.toml") -> Path:
    """Write ``document`` as TOML under ``tmp_path`` and return the file."""
    path = tmp_path / name
    path.write_text(dumps(document), encoding="utf-8")
    return path


def set_path(document: dict[str, Any], dotted: str, value: Any) -> None:
    """Set (or with ``DELETE`` remove) a dotted key; numeric parts index arrays.

    An index equal to the array's length appends.
    """
    parts = dotted.split(".")
    node: Any = document
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        i = int(last)
        if value is DELETE:
            del node[i]
        elif i == len(node):
            node.append(value)
        else:
            node[i] = value
    elif value is DELETE:
        del node[last]
    else:
        node[last] = value


def load_error(tmp_path: Path, document: dict[str, Any],
               overrides: tuple[str, ...] = ()) -> tuple[Path, ScenarioError]:
    """Write ``document``, load it and return the ScenarioError it must raise."""
    path = write(tmp_path, document)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, list(overrides))
    return path, info.value


# --------------------------------------------------------------------------- loading


def test_helper_writes_the_document_it_was_given(tmp_path):
    doc = base_doc()
    assert tomllib.loads(write(tmp_path, doc).read_text()) == doc


def test_base_document_loads_with_its_values(tmp_path):
    sc = load_scenario(write(tmp_path, base_doc()))
    assert isinstance(sc, Scenario)
    assert sc.name == "unit-test"
    assert sc.simulation.paths == 10 and sc.simulation.steps == 10
    assert sc.simulation.dt_years == pytest.approx(1.0 / 365.0 / 10)
    assert sc.market.symbols == ("BTC", "ETH")
    assert sc.market.correlation == ((1.0, 0.5), (0.5, 1.0))
    assert sc.market.assets[0].haircut == 0.05
    assert sc.market.assets[1].haircut == 0.0
    assert sc.market.assets[1].depth_usd == 1.0e7
    assert [a.id for a in sc.accounts] == ["cross-1", "iso-1"]
    cross, iso = sc.accounts
    assert cross.margin_mode == "cross"  # the venue default
    assert iso.margin_mode == "isolated"
    assert dict(cross.collateral) == {"USD": 10000.0, "BTC": 0.5}
    assert cross.positions[1].entry == 3000.0  # entry defaults to the asset's price
    assert iso.positions[0].entry == 2900.0
    assert sc.shocks[0].kind == "gap" and sc.shocks[0].size == -0.1
    assert sc.source == str(write(tmp_path, base_doc()))


def test_correlation_defaults_to_identity(tmp_path):
    doc = base_doc()
    del doc["market"]["correlation"]
    sc = load_scenario(write(tmp_path, doc))
    assert sc.market.correlation == ((1.0, 0.0), (0.0, 1.0))


def test_builtin_scenarios_exist():
    names = builtin_scenarios()
    assert "two-asset-crash" in names
    assert all(p.is_file() and p.suffix == ".toml" for p in names.values())


@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_builtin_scenario_loads_by_name_and_by_path(name):
    path = builtin_scenarios()[name]
    by_name = load_scenario(name)
    by_path = load_scenario(path)
    by_str = load_scenario(str(path))
    assert by_name == by_path == by_str
    assert by_name.digest == by_path.digest
    assert by_name.name == name
    assert by_name.accounts or (by_name.population and by_name.population.count > 0)


def test_builtin_loads_with_overrides():
    sc = load_scenario("two-asset-crash", ["simulation.paths=100"])
    assert sc.simulation.paths == 100
    assert load_scenario("two-asset-crash").simulation.paths != 100


def test_scenario_is_frozen(tmp_path):
    sc = load_scenario(write(tmp_path, base_doc()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        sc.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sc.simulation.paths = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sc.market.assets[0].vol = 0.1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sc.venue.adl = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sc.accounts[0].positions[0].qty = 2.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        sc.market.assets[0] = sc.market.assets[1]  # type: ignore[index]


def test_zero_vol_is_valid(tmp_path):
    doc = base_doc()
    doc["market"]["assets"][0]["vol"] = 0
    doc["market"]["assets"][1]["vol"] = 0.0
    sc = load_scenario(write(tmp_path, doc))
    assert [a.vol for a in sc.market.assets] == [0.0, 0.0]


def test_integral_float_is_accepted_as_integer(tmp_path):
    doc = base_doc()
    doc["simulation"]["paths"] = 1e4
    sc = load_scenario(write(tmp_path, doc))
    assert sc.simulation.paths == 10000 and isinstance(sc.simulation.paths, int)


# --------------------------------------------------------------------------- errors

NOT_PD = [[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]
SOL = {"symbol": "SOL", "price": 150.0, "vol": 1.2}

ERROR_CASES = [
    # (id, mutations, exact key path, fragment of the message)
    ("unknown-top", [("nmae", "x")], "nmae", "unknown key"),
    ("unknown-table", [("venu", {"adl": True})], "venu", "unknown key"),
    ("unknown-asset-key", [("market.assets.0.volatility", 0.8)],
     "market.assets[0].volatility", "unknown key"),
    ("unknown-simulation-key", [("simulation.pathz", 5)], "simulation.pathz", "unknown key"),
    ("unknown-position-key", [("accounts.1.positions.0.leverage", 3)],
     "accounts[1].positions[0].leverage", "unknown key"),
    ("unknown-shock-key", [("shocks.0.sizes", 1.0)], "shocks[0].sizes", "unknown key"),
    ("string-for-number", [("market.assets.1.vol", "high")], "market.assets[1].vol",
     "expected a number"),
    ("string-for-integer", [("simulation.paths", "100")], "simulation.paths",
     "expected an integer"),
    ("bool-for-integer", [("simulation.steps", True)], "simulation.steps",
     "expected an integer"),
    ("bool-for-number", [("market.assets.0.price", True)], "market.assets[0].price",
     "expected a number"),
    ("fraction-for-integer", [("simulation.paths", 1.5)], "simulation.paths",
     "expected an integer"),
    ("number-for-bool", [("venue.adl", 1)], "venue.adl", "expected true or false"),
    ("number-for-string", [("market.assets.0.symbol", 5)], "market.assets[0].symbol",
     "expected a string"),
    ("nan-price", [("market.assets.0.price", math.nan)], "market.assets[0].price", "finite"),
    ("inf-vol", [("market.assets.1.vol", math.inf)], "market.assets[1].vol", "finite"),
    ("nan-fee", [("venue.liquidation_fee_rate", math.nan)], "venue.liquidation_fee_rate",
     "finite"),
    ("inf-fund", [("venue.insurance_fund_usd", math.inf)], "venue.insurance_fund_usd",
     "finite"),
    ("nan-qty", [("accounts.0.positions.0.qty", math.nan)], "accounts[0].positions[0].qty",
     "finite"),
    ("nan-seed", [("simulation.seed", math.nan)], "simulation.seed", "expected an integer"),
    ("negative-vol", [("market.assets.0.vol", -0.1)], "market.assets[0].vol", ">= 0"),
    ("zero-price", [("market.assets.0.price", 0.0)], "market.assets[0].price", "> 0"),
    ("haircut-above-1", [("market.assets.0.haircut", 1.5)], "market.assets[0].haircut",
     "<= 1"),
    ("paths-zero", [("simulation.paths", 0)], "simulation.paths", ">= 1"),
    ("horizon-zero", [("simulation.horizon_days", 0.0)], "simulation.horizon_days", "> 0"),
    ("negative-mmr", [("venue.maintenance_margin_rate", -0.01)],
     "venue.maintenance_margin_rate", ">= 0"),
    ("gap-minus-one", [("shocks.0.size", -1.0)], "shocks[0].size", "> -1"),
    ("gap-below-minus-one", [("shocks.0.size", -1.5)], "shocks[0].size", "> -1"),
    ("shock-step-beyond-steps", [("shocks.0.step", 11)], "shocks[0].step", "<= 10"),
    ("shock-step-zero", [("shocks.0.step", 0)], "shocks[0].step", ">= 1"),
    ("unknown-shock-kind", [("shocks.0.kind", "tsunami")], "shocks[0].kind", "not valid"),
    ("negative-collateral", [("accounts.0.collateral.USD", -1.0)],
     "accounts[0].collateral.USD", ">= 0"),
    ("empty-assets", [("market.assets", [])], "market.assets", "at least one"),
    ("missing-assets", [("market.assets", DELETE)], "market.assets", "at least one"),
    ("missing-market", [("market", DELETE)], "market", "required"),
    ("missing-price", [("market.assets.0.price", DELETE)], "market.assets[0].price",
     "required"),
    ("usd-as-asset", [("market.assets.0.symbol", "USD")], "market.assets[0].symbol",
     "numeraire"),
    ("duplicate-symbol", [("market.assets.1.symbol", "BTC")], "market.assets[1].symbol",
     "duplicate"),
    ("duplicate-account-id", [("accounts.1.id", "cross-1")], "accounts[1].id", "duplicate"),
    ("position-unknown-symbol", [("accounts.0.positions.1.symbol", "DOGE")],
     "accounts[0].positions[1].symbol", "DOGE"),
    ("collateral-unknown-symbol", [("accounts.1.collateral.DOGE", 1.0)],
     "accounts[1].collateral.DOGE", "DOGE"),
    ("shock-unknown-asset", [("shocks.0.asset", "DOGE")], "shocks[0].asset", "DOGE"),
    ("correlation-too-small", [("market.correlation", [[1.0]])], "market.correlation",
     "2x2"),
    ("correlation-ragged", [("market.correlation", [[1.0, 0.5], [0.5]])],
     "market.correlation", "2x2"),
    ("correlation-not-array", [("market.correlation", 0.5)], "market.correlation", "2x2"),
    ("correlation-nan", [("market.correlation", [[1.0, math.nan], [math.nan, 1.0]])],
     "market.correlation", "finite"),
    ("correlation-asymmetric", [("market.correlation", [[1.0, 0.5], [0.2, 1.0]])],
     "market.correlation", "symmetric"),
    ("correlation-diagonal", [("market.correlation", [[0.9, 0.5], [0.5, 1.0]])],
     "market.correlation", "diagonal"),
    ("correlation-above-one", [("market.correlation", [[1.0, 1.5], [1.5, 1.0]])],
     "market.correlation", "[-1, 1]"),
    ("correlation-not-pd", [("market.assets.2", SOL), ("market.correlation", NOT_PD)],
     "market.correlation", "not positive definite"),
    ("correlation-singular", [("market.correlation", [[1.0, 1.0], [1.0, 1.0]])],
     "market.correlation", "not positive definite"),
    ("unknown-model", [("market.model", "heston")], "market.model", "not valid"),
    ("bootstrap-needs-a-file", [("market.model", "bootstrap")], "market.bootstrap.file",
     "is required"),
    ("option-with-entry", [("accounts.0.positions.0", {"symbol": "BTC", "type": "call",
                                                       "qty": -5.0, "strike": 65000.0,
                                                       "expiry_days": 30, "entry": 100.0})],
     "accounts[0].positions[0].entry", "no entry price"),
    ("option-without-strike", [("accounts.0.positions.0", {"symbol": "BTC", "type": "put",
                                                           "qty": 1.0, "expiry_days": 30})],
     "accounts[0].positions[0].strike", "required"),
    ("option-expired", [("accounts.0.positions.0", {"symbol": "BTC", "type": "put",
                                                    "qty": 1.0, "strike": 5.0,
                                                    "expiry_days": 0})],
     "accounts[0].positions[0].expiry_days", "> 0"),
    ("strike-on-a-perp", [("accounts.0.positions.0", {"symbol": "BTC", "qty": 1.0,
                                                      "strike": 5.0})],
     "accounts[0].positions[0].strike", "is for options"),
    ("unknown-option-rule", [("venue.option_margin", "span")], "venue.option_margin",
     "not valid"),
    ("spot-vol-beta-out-of-range", [("market.assets.0.spot_vol_beta", 9.0)],
     "market.assets[0].spot_vol_beta", "<= 5"),
    ("unknown-preset", [("venue.preset", "ftx")], "venue.preset", "not a known venue"),
    ("lending-adl", [("venue.preset", "aave-v3"), ("venue.adl", True)], "venue.adl",
     "no auto-deleveraging"),
    ("lending-funding", [("venue.preset", "aave-v3"), ("venue.funding", "premium")],
     "venue.funding", "lending venue has none"),
    ("funding-mode", [("venue.funding", "hourly")], "venue.funding", "premium"),
    ("call-ratio-below-one", [("behaviour.margin_call_ratio", 0.9)],
     "behaviour.margin_call_ratio", "must be above 1"),
    ("call-action", [("behaviour.action", "pray")], "behaviour.action", "reduce"),
    ("inverse-option", [("accounts.0.positions.0.type", "future")],
     "accounts[0].positions[0].type", "inverse"),
    ("bracket-order", [("venue.brackets", {"BTC": [{"max_notional_usd": 5e4, "rate": 0.01},
                                                   {"max_notional_usd": 4e4, "rate": 0.02}]})],
     "venue.brackets.BTC[1].max_notional_usd", "must be above"),
    ("bracket-rate-falls", [("venue.brackets", {"BTC": [{"max_notional_usd": 5e4, "rate": 0.01},
                                                        {"rate": 0.005}]})],
     "venue.brackets.BTC[1].rate", "must not be below"),
    ("bracket-cum", [("venue.brackets", {"BTC": [{"max_notional_usd": 5e4, "rate": 0.004},
                                                 {"rate": 0.005, "cum": 51.0}]})],
     "venue.brackets.BTC[1].cum", "continuity"),
    ("bracket-unknown-key", [("venue.brackets", {"BTC": [{"rate": 0.004, "tier": 1}]})],
     "venue.brackets.BTC[0].tier", "unknown key"),
    ("liquidation-mode", [("venue.liquidation", "gradual")], "venue.liquidation",
     "incremental"),
    ("adl-ranking", [("venue.adl_ranking", "random")], "venue.adl_ranking", "profit_leverage"),
    ("unknown-margin-mode", [("accounts.1.margin_mode", "portfolio")],
     "accounts[1].margin_mode", "not valid"),
    ("unknown-impact", [("liquidity.impact", "cubic")], "liquidity.impact", "not valid"),
    ("accounts-file-missing", [("accounts_file", {"path": "a.csv"})], "accounts_file.path",
     "cannot read"),
    ("accounts-file-unknown-key", [("accounts_file", {"file": "a.csv"})], "accounts_file.path",
     "is required"),
    ("no-accounts", [("accounts", DELETE)], "accounts", "no accounts"),
    ("market-not-table", [("market", 5)], "market", "expected a table"),
]


@pytest.mark.parametrize(("mutations", "key", "fragment"),
                         [pytest.param(m, k, f, id=i) for i, m, k, f in ERROR_CASES])
def test_invalid_value_names_file_and_key(tmp_path, mutations, key, fragment):
    doc = base_doc()
    for path, value in mutations:
        set_path(doc, path, value)
    path, err = load_error(tmp_path, doc)
    message = str(err)
    assert err.key == key
    assert err.source == str(path)
    assert message.startswith(f"{path}: {key}: ")
    assert path.name in message
    assert fragment in message


@pytest.mark.parametrize(("mutations", "key"),
                         [pytest.param(m, k, id=i) for i, m, k, _ in ERROR_CASES[:6]])
def test_scenario_from_dict_uses_the_given_source(mutations, key):
    doc = base_doc()
    for path, value in mutations:
        set_path(doc, path, value)
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(doc, source="memory.toml")
    assert info.value.key == key
    assert str(info.value).startswith(f"memory.toml: {key}: ")


def test_scenario_from_dict_does_not_mutate_its_input():
    doc = base_doc()
    doc["venue"] = {"preset": "hyperliquid"}
    before = copy.deepcopy(doc)
    scenario_from_dict(doc)
    assert doc == before


def test_slightly_asymmetric_correlation_is_refused_or_symmetrised(tmp_path):
    doc = base_doc()
    doc["market"]["correlation"] = [[1.0, 0.5], [0.500001, 1.0]]
    path = write(tmp_path, doc)
    try:
        sc = load_scenario(path)
    except ScenarioError as err:
        assert err.key == "market.correlation"
        return
    corr = sc.market.correlation
    assert corr[0][1] == corr[1][0]


def test_malformed_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\n[market\nmodel = "gbm"\n', encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert "broken.toml" in str(info.value)
    assert "malformed TOML" in str(info.value)
    assert info.value.source == str(path)


def test_duplicate_toml_key_is_malformed(tmp_path):
    path = tmp_path / "twice.toml"
    path.write_text('name = "x"\nname = "y"\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match="malformed TOML"):
        load_scenario(path)


def test_missing_file_lists_builtins(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError) as info:
        load_scenario(missing)
    message = str(info.value)
    assert "nope.toml" in message
    assert builtin_scenarios()
    for name in builtin_scenarios():
        assert name in message


def test_unknown_builtin_name_lists_builtins():
    with pytest.raises(ScenarioError) as info:
        load_scenario("no-such-scenario")
    assert "no-such-scenario" in str(info.value)
    for name in builtin_scenarios():
        assert name in str(info.value)


def test_not_positive_definite_names_the_fix(tmp_path):
    doc = base_doc()
    doc["market"]["assets"].append(dict(SOL))
    doc["market"]["correlation"] = NOT_PD
    _, err = load_error(tmp_path, doc)
    assert "positive definite" in err.message
    assert "eigenvalue" in err.message


# --------------------------------------------------------------------------- overrides


def test_override_numbers(tmp_path):
    path = write(tmp_path, base_doc())
    sc = load_scenario(path, ["simulation.paths=123", "venue.liquidation_fee_rate=0.01",
                              "simulation.horizon_days=2"])
    assert sc.simulation.paths == 123
    assert sc.venue.liquidation_fee_rate == 0.01
    assert sc.simulation.horizon_days == 2.0


def test_override_booleans(tmp_path):
    doc = base_doc()
    doc["venue"]["adl"] = False
    path = write(tmp_path, doc)
    assert load_scenario(path).venue.adl is False
    assert load_scenario(path, ["venue.adl=true"]).venue.adl is True
    assert load_scenario(path, ["venue.adl = true"]).venue.adl is True


def test_override_strings(tmp_path):
    path = write(tmp_path, base_doc())
    sc = load_scenario(path, ["venue.liquidation=partial", "liquidity.impact=sqrt",
                              'name="quoted name"', "description=two words"])
    assert sc.venue.liquidation == "partial"
    assert sc.liquidity.impact == "sqrt"
    assert sc.name == "quoted name"
    assert sc.description == "two words"


def test_override_nested_and_array_index(tmp_path):
    path = write(tmp_path, base_doc())
    sc = load_scenario(path, ["shocks.0.size=-0.2", "market.assets.1.vol=0.5",
                              "accounts.0.collateral.USD=7", "accounts.1.positions.0.qty=-3",
                              "market.correlation.1.0=0.25", "market.correlation.0.1=0.25"])
    assert sc.shocks[0].size == -0.2
    assert sc.market.assets[1].vol == 0.5
    assert sc.market.assets[0].vol == 0.8
    assert dict(sc.accounts[0].collateral)["USD"] == 7.0
    assert sc.accounts[1].positions[0].qty == -3.0
    assert sc.market.correlation == ((1.0, 0.25), (0.25, 1.0))


def test_override_whole_array(tmp_path):
    path = write(tmp_path, base_doc())
    sc = load_scenario(path, ["market.correlation=[[1.0, 0.3], [0.3, 1.0]]"])
    assert sc.market.correlation == ((1.0, 0.3), (0.3, 1.0))


def test_override_key_absent_from_file(tmp_path):
    doc = base_doc()
    del doc["venue"]
    del doc["liquidity"]
    path = write(tmp_path, doc)
    assert load_scenario(path).venue.adl is True
    sc = load_scenario(path, ["venue.adl=false", "liquidity.half_life_steps=4",
                              "market.assets.1.haircut=0.2"])
    assert sc.venue.adl is False
    assert sc.liquidity.half_life_steps == 4.0
    assert sc.market.assets[1].haircut == 0.2


def test_override_unknown_key_is_refused(tmp_path):
    path = write(tmp_path, base_doc())
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, ["venue.nonsense=1"])
    assert info.value.key == "venue.nonsense"
    assert "venue.nonsense" in str(info.value)
    assert "unknown key" in str(info.value)


def test_override_invalid_value_is_refused(tmp_path):
    path = write(tmp_path, base_doc())
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, ["market.assets.0.vol=-1"])
    assert info.value.key == "market.assets[0].vol"
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, ["simulation.steps=0"])
    assert info.value.key == "simulation.steps"


@pytest.mark.parametrize(("override", "key"), [
    ("shocks.3.size=0.1", "shocks.3"),
    ("market.assets.2.vol=0.5", "market.assets.2"),
    ("market.assets.x.vol=0.5", "market.assets.x"),
    ("market.correlation.2=[1.0, 0.0]", "market.correlation.2"),
])
def test_override_index_out_of_range(tmp_path, override, key):
    path = write(tmp_path, base_doc())
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, [override])
    assert info.value.source == "--set"
    assert info.value.key == key
    assert "out of range" in str(info.value)


def test_override_index_into_absent_array(tmp_path):
    doc = base_doc()
    del doc["shocks"]
    path = write(tmp_path, doc)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, ["shocks.0.size=0.1"])
    assert info.value.source == "--set"
    assert info.value.key == "shocks.0"


@pytest.mark.parametrize("override", ["venue.adl", "=1", "venue..adl=true", ".adl=true"])
def test_override_malformed(override):
    with pytest.raises(ScenarioError) as info:
        apply_overrides(base_doc(), [override])
    assert info.value.source == "--set"


def test_override_through_a_scalar_is_refused():
    with pytest.raises(ScenarioError) as info:
        apply_overrides(base_doc(), ["name.first=x"])
    assert info.value.key == "name.first"
    with pytest.raises(ScenarioError) as info:
        apply_overrides(base_doc(), ["name.first.second=x"])
    assert info.value.key == "name.first"


def test_override_non_ascii_digit_index_is_a_scenario_error():
    with pytest.raises(ScenarioError):
        apply_overrides(base_doc(), ["shocks.².size=0.1"])


def test_apply_overrides_returns_a_copy():
    doc = base_doc()
    before = copy.deepcopy(doc)
    out = apply_overrides(doc, ["shocks.0.size=-0.3", "venue.adl=false"])
    assert doc == before
    assert out["shocks"][0]["size"] == -0.3
    assert out["venue"]["adl"] is False


def test_later_override_wins():
    out = apply_overrides(base_doc(), ["simulation.paths=5", "simulation.paths=7"])
    assert out["simulation"]["paths"] == 7


def test_override_origins_record_what_each_set_wrote_or_created():
    origins: dict[str, str] = {}
    sets = ["simulation.paths=5", "new.deep.key=1", "shocks.00.size=-0.3", "simulation.paths=7"]
    apply_overrides(base_doc(), sets, origins)
    assert origins == {"simulation.paths": sets[3], "new": sets[1], "new.deep": sets[1],
                       "new.deep.key": sets[1], "shocks.0.size": sets[2]}
    # "simulation" and "shocks" were in the document: no --set owns them
    assert override_for("simulation", origins) is None
    assert override_for("shocks[0]", origins) is None
    assert override_for("shocks[0].size", origins) == sets[2]
    assert override_for("new.deep.other", origins) == sets[1]
    # a later --set that replaces a table drops what was written inside it
    origins = {}
    apply_overrides(base_doc(), ["new.deep.key=1", "new=2"], origins)
    assert origins == {"new": "new=2"}


# --------------------------------------------------------------------------- presets


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_venue_preset_fills_keys(tmp_path, preset):
    doc = base_doc()
    doc["venue"] = {"preset": preset}
    if preset == "aave-v3":  # a lending market: loans, not positions
        doc["accounts"] = [{"id": "borrower", "collateral": {"ETH": 10.0},
                            "debt": {"USD": 15_000.0}}]
    sc = load_scenario(write(tmp_path, doc))
    assert sc.venue.preset == preset
    defaults = Venue()
    assert any(getattr(defaults, k) != v for k, v in PRESETS[preset].items())
    for key, value in PRESETS[preset].items():
        if key in ("brackets", "liquidation_thresholds"):
            assert dict(getattr(sc.venue, key)) == dict(value), key
        else:
            assert getattr(sc.venue, key) == value, key


def test_explicit_key_overrides_preset(tmp_path):
    preset = "hyperliquid"
    doc = base_doc()
    doc["venue"] = {"preset": preset, "maintenance_margin_rate": 0.02}
    path = write(tmp_path, doc)
    sc = load_scenario(path)
    assert "maintenance_margin_rate" not in PRESETS[preset]
    assert sc.venue.maintenance_margin_rate == 0.02
    # an explicit flat rate replaces the preset's brackets for every symbol
    assert sc.venue.brackets == ()
    assert sc.venue.brackets_for("BTC") == (Bracket(float("inf"), 0.02),)
    assert sc.venue.liquidation_fee_rate == PRESETS[preset]["liquidation_fee_rate"]
    sc = load_scenario(path, ["venue.liquidation_fee_rate=0.003"])
    assert sc.venue.liquidation_fee_rate == 0.003
    assert sc.venue.maintenance_margin_rate == 0.02


def test_preset_set_by_override(tmp_path):
    path = write(tmp_path, base_doc())  # explicit mmr 0.005 and fee 0.0125 in the file
    sc = load_scenario(path, ["venue.preset=deribit"])
    assert sc.venue.preset == "deribit"
    assert sc.venue.liquidation == PRESETS["deribit"]["liquidation"]
    assert sc.venue.maintenance_margin_rate == 0.005


# --------------------------------------------------------------------------- digest


def test_digest_is_stable_for_the_same_input(tmp_path):
    path = write(tmp_path, base_doc())
    a = load_scenario(path)
    b = load_scenario(path)
    assert a.digest == b.digest
    assert len(a.digest) == 64 and int(a.digest, 16) >= 0
    assert scenario_from_dict(base_doc()).digest == a.digest
    reordered = dict(reversed(list(base_doc().items())))
    assert scenario_from_dict(reordered).digest == a.digest


@pytest.mark.parametrize("override", [
    "venue.liquidation_fee_rate=0.02",
    "shocks.0.size=-0.2",
    "market.assets.1.vol=0.5",
    "simulation.seed=2",
    "venue.adl=false",
    "name=other",
])
def test_digest_changes_with_a_value(tmp_path, override):
    path = write(tmp_path, base_doc())
    assert load_scenario(path, [override]).digest != load_scenario(path).digest


def test_digest_covers_preset_values(tmp_path):
    a = base_doc()
    a["venue"] = {"preset": "hyperliquid"}
    b = base_doc()
    b["venue"] = {"preset": "dydx-v4"}
    assert scenario_from_dict(a).digest != scenario_from_dict(b).digest


# --------------------------------------------------------------------------- population


def population_doc(**population: Any) -> dict[str, Any]:
    """The base document with a ``[population]`` table."""
    doc = base_doc()
    doc["population"] = {"count": 100, "seed": 3, **population}
    return doc


def test_population_loads_with_defaults():
    sc = scenario_from_dict(population_doc())
    pop = sc.population
    assert pop is not None
    assert pop.count == 100 and pop.seed == 3
    assert pop.assets == ("BTC", "ETH")
    assert pop.asset_weights == (0.5, 0.5)
    assert pop.margin_modes == (("cross", 1.0),)
    assert pop.collateral == (("USD", 1.0),)
    assert pop.id_prefix == "pop-"


def test_population_shares_are_normalised():
    sc = scenario_from_dict(population_doc(asset_weights=[3, 1],
                                           margin_modes={"cross": 2, "isolated": 2},
                                           collateral={"USD": 1, "BTC": 3}))
    assert sc.population.asset_weights == (0.75, 0.25)
    assert dict(sc.population.margin_modes) == {"cross": 0.5, "isolated": 0.5}
    assert dict(sc.population.collateral) == {"USD": 0.25, "BTC": 0.75}


@pytest.mark.parametrize(("population", "key"), [
    ({"asset_weights": [1.0]}, "population.asset_weights"),
    ({"assets": ["BTC", "DOGE"]}, "population.assets"),
    ({"assets": ["BTC", "BTC"]}, "population.assets"),
    ({"max_positions": 3}, "population.max_positions"),
    ({"long_share": 1.5}, "population.long_share"),
    ({"collateral": {"DOGE": 1.0}}, "population.collateral.DOGE"),
    ({"margin_modes": {"cross": 0.0}}, "population.margin_modes"),
    ({"leverage": {"dist": "lognormal", "median": 5.0}}, "population.leverage.sigma"),
    ({"leverage": {"dist": "gamma"}}, "population.leverage.dist"),
    ({"leverage": {"dist": "fixed", "value": 5.0, "scale": 2.0}},
     "population.leverage.scale"),
    ({"id_prefix": "cross-"}, "population.id_prefix"),
    ({"colour": "red"}, "population.colour"),
])
def test_population_errors(population, key):
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(population_doc(**population), source="pop.toml")
    assert info.value.key == key
    assert str(info.value).startswith(f"pop.toml: {key}: ")


def test_explicit_brackets_merge_with_the_preset_symbol_by_symbol(tmp_path):
    doc = base_doc()
    doc["venue"] = {"preset": "binance-usdm",
                    "brackets": {"SOL": [{"max_notional_usd": 5e4, "rate": 0.005},
                                         {"rate": 0.01}]}}
    sc = load_scenario(write(tmp_path, doc))
    tables = dict(sc.venue.brackets)
    assert tables["SOL"] == (Bracket(5e4, 0.005), Bracket(float("inf"), 0.01))
    assert tables["BTC"] == PRESETS["binance-usdm"]["brackets"]["BTC"]
    assert "*" in tables
    # an explicit flat rate drops the preset's tables but keeps the scenario's own
    doc["venue"]["maintenance_margin_rate"] = 0.02
    sc = load_scenario(write(tmp_path, doc))
    assert [s for s, _ in sc.venue.brackets] == ["SOL"]
    assert sc.venue.brackets_for("BTC") == (Bracket(float("inf"), 0.02),)
