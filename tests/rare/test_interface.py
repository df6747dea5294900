"""Rare-event mode's interface: the event's grammar, the keys, ``--rare`` on the command
line, and the errors for what cannot work (each one line, exit status 2, nothing
written)."""

from __future__ import annotations

import json

import pytest

from simulator import cli
from simulator.config.rare import NAMED_EVENTS, event_columns, parse_event
from simulator.config.scenario import load_scenario
from simulator.errors import ScenarioError

from ..support.cli_checks import error_line
from ..support.toml_text import one_asset_scenario, with_bootstrap

SYMBOLS = ("BTC", "ETH")


@pytest.mark.parametrize(("text", "column", "op", "value"), [
    ("n_liquidations>0", "n_liquidations", ">", 0.0),
    ("bad_debt >= 1e6", "bad_debt", ">=", 1e6),
    ("insurance_fund_end<=0", "insurance_fund_end", "<=", 0.0),
    ("min_price_BTC<30000", "min_price_BTC", "<", 30000.0),
    ("fund_depletion", "fund_depleted", ">", 0.0),
    ("socialised_loss", "socialised_loss", ">", 0.0),
])
def test_events_parse(text, column, op, value):
    event = parse_event(text, SYMBOLS, "f.toml")
    assert (event.column, event.op, event.value) == (column, op, value)


def test_event_holds():
    import numpy as np

    x = np.array([-1.0, 0.0, 1.0, np.nan])
    assert parse_event("bad_debt>0", SYMBOLS, "f").holds(x).tolist() == [0, 0, 1, 0]
    assert parse_event("bad_debt>=0", SYMBOLS, "f").holds(x).tolist() == [0, 1, 1, 0]
    assert parse_event("bad_debt<0", SYMBOLS, "f").holds(x).tolist() == [1, 0, 0, 0]
    assert parse_event("bad_debt<=0", SYMBOLS, "f").holds(x).tolist() == [1, 1, 0, 0]


def test_every_event_column_is_a_paths_column():
    """The grammar's columns are columns of ``paths/`` (read from a real table)."""
    import numpy as np

    from simulator.margin import replay
    from simulator.paths import generate_paths

    from ..conftest import _prepare

    prep = _prepare("two-asset-crash", "population.count=10", "simulation.steps=4")
    exo = generate_paths(prep.inputs, 2, np.random.default_rng(0))
    res = replay(exo, prep.inputs.depth_usd, prep.book, prep.rules, index=prep.index)
    from simulator.results import tables

    names = tables.paths_table(res, 0, SYMBOLS).column_names
    assert set(event_columns(SYMBOLS)) <= set(names)
    assert "weight" in names
    for condition in NAMED_EVENTS.values():
        assert parse_event(condition, SYMBOLS, "f").column in names


@pytest.mark.parametrize(("text", "needles"), [
    ("foo>1", ["'foo' is not a numeric paths/ column", "min_price_BTC", "fund_depletion"]),
    ("bad_debt=1", ["is not an event", "COLUMN>VALUE"]),
    ("bad_debt>lots", ["'lots' is not a finite number"]),
    ("bad_debt>nan", ["is not a finite number"]),
    ("min_price_SOL<10", ["'min_price_SOL' is not a numeric paths/ column"]),
])
def test_bad_events_name_the_key_and_what_is_valid(text, needles):
    with pytest.raises(ScenarioError) as info:
        parse_event(text, SYMBOLS, "f.toml")
    message = str(info.value)
    assert "f.toml" in message and "simulation.rare_event" in message
    for needle in needles:
        assert needle in message


def test_the_keys():
    sc = load_scenario("two-asset-crash", ["simulation.rare_event=fund_depletion"])
    assert (sc.simulation.rare_event, sc.simulation.variance_reduction) == (
        "fund_depletion", "importance")
    plain = load_scenario("two-asset-crash")
    assert plain.simulation.variance_reduction == "none"
    assert "rare_event" not in plain.resolved()["simulation"]  # older digests hold
    assert sc.digest != plain.digest
    with pytest.raises(ScenarioError, match="needs the event to aim at"):
        load_scenario("two-asset-crash", ["simulation.variance_reduction=importance"])
    with pytest.raises(ScenarioError, match="simulation.variance_reduction"):
        load_scenario("two-asset-crash", ["simulation.variance_reduction=sobolev"])
    with pytest.raises(ScenarioError, match="rare_pilot_paths"):
        load_scenario("two-asset-crash", ["simulation.rare_event=adl",
                                          "simulation.rare_pilot_paths=5"])


def test_cli_bad_event_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    line = error_line(capsys, ["run", "two-asset-crash", "--rare", "bad_dept>1", "--out",
                               str(out)])
    assert "simulation.rare_event" in line and "'bad_dept'" in line and "bad_debt" in line
    assert not out.exists()


def test_an_event_the_pilot_never_sees_is_a_clear_error(tmp_path, capsys):
    """A price that cannot fall to 1 USD in a day: the message names the event, the
    closest the pilot came and what to try; nothing is written."""
    path = tmp_path / "s.toml"
    path.write_text(one_asset_scenario("never", "paths = 200\nsteps = 24\n"
                                       "rare_pilot_paths = 200\n"))
    out = tmp_path / "run"
    line = error_line(capsys, ["run", str(path), "--rare", "min_price_BTC<1", "--out",
                               str(out), "--quiet"])
    for needle in (str(path), "simulation.rare_event", "'min_price_BTC<1'",
                   "never happened in the pilot", "the closest path came to min_price_BTC",
                   "simulation.rare_pilot_paths"):
        assert needle in line, needle
    assert not out.exists()


def test_a_model_without_gaussian_innovations_is_refused(tmp_path, capsys):
    (tmp_path / "returns.csv").write_text(
        "timestamp,BTC\n" + "".join(f"{i},{0.001 * (i % 7 - 3)}\n" for i in range(50)))
    path = tmp_path / "s.toml"
    path.write_text(with_bootstrap(one_asset_scenario("boot")))
    line = error_line(capsys, ["run", str(path), "--rare", "liquidation", "--out",
                               str(tmp_path / "run")])
    assert "simulation.rare_event" in line and "'bootstrap'" in line and "gbm" in line


def test_validate_and_sweep_take_rare(tmp_path, capsys):
    assert cli.main(["validate", "two-asset-crash", "--set",
                     "simulation.rare_event=fund_depletion"]) == 0
    capsys.readouterr()
    line = error_line(capsys, ["sweep", "two-asset-crash", "--rare", "nope", "--grid",
                               "venue.insurance_fund_usd=1e6,2e6", "--out",
                               str(tmp_path / "sw")])
    assert "simulation.rare_event" in line
    assert not (tmp_path / "sw").exists()


def test_a_tilt_belongs_to_rare_event_mode_and_to_its_run(tmp_path):
    """A tilt given to a plain run is refused; a resumed run keeps the tilt its manifest
    records and refuses another, or a record it cannot read back."""
    import numpy as np

    from simulator.errors import MarginsimError, RunDirectoryError
    from simulator.execution.runner import run
    from simulator.rare import Tilt

    sets = ["population.count=50", "simulation.steps=12", "simulation.paths=200",
            "simulation.chunk_paths=100", "simulation.rare_pilot_paths=200"]
    plain = load_scenario("two-asset-crash", sets)
    rare = load_scenario("two-asset-crash", [*sets, "simulation.rare_event=bad_debt>1"])
    other = Tilt(parse_event("bad_debt>1", SYMBOLS, "x"), np.full((12, 2), -0.1))
    with pytest.raises(MarginsimError, match="not in rare-event mode"):
        run(plain, tmp_path / "plain", tilt=other)
    assert not (tmp_path / "plain").exists()
    out = tmp_path / "rare"
    run(rare, out)
    with pytest.raises(RunDirectoryError, match="another rare-event tilt"):
        run(rare, out, resume=True, tilt=other)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["rare_event"]["theta"] = [[0.0]]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunDirectoryError, match="cannot read the recorded rare-event tilt"):
        run(rare, out, resume=True)


def test_a_rare_sweep_refuses_to_grid_the_event(tmp_path, capsys):
    line = error_line(capsys, ["sweep", "two-asset-crash", "--rare", "bad_debt>1", "--grid",
                               "simulation.rare_defensive_share=0.1,0.2", "--out",
                               str(tmp_path / "sw")])
    assert "simulation.rare_defensive_share" in line and "one tilt" in line
    assert not (tmp_path / "sw").exists()
