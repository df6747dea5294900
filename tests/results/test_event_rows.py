"""``simulation.events`` / ``--events``: which rows ``events/`` keeps. Paths, accounts and
the summary are the same whatever is chosen; the kept rows are exactly those of ``all``
of the chosen kinds; the default leaves the scenario digest of older scenarios alone."""

from __future__ import annotations

import json

import pyarrow.dataset as ds
import pytest

from simulator import load_scenario, run
from simulator.cli import main
from simulator.errors import ScenarioError

SETS = ["simulation.paths=60", "simulation.chunk_paths=30"]
#: a scenario whose paths have liquidations, backstop fills and ADL fills
SCENARIO = "october-2025-cascade"


def _table(out, sub):
    """A run's table, its parts in chunk order (file names sort as chunks do)."""
    return ds.dataset(out / sub, format="parquet").to_table()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("event-rows")
    out = {}
    for rows in ("all", "liquidations", "none"):
        sc = load_scenario(SCENARIO, [*SETS, f"simulation.events={rows}"])
        out[rows] = run(sc, base / rows).out_dir
    return out


def test_paths_accounts_and_summary_do_not_depend_on_the_event_rows(runs):
    for rows in ("liquidations", "none"):
        assert _table(runs[rows], "paths").equals(_table(runs["all"], "paths"))
        for name in ("accounts.parquet",):
            assert (ds.dataset(runs[rows] / name).to_table()
                    .equals(ds.dataset(runs["all"] / name).to_table()))
        a = json.loads((runs[rows] / "summary.json").read_text())
        b = json.loads((runs["all"] / "summary.json").read_text())
        a.pop("scenario"), b.pop("scenario")  # names the choice, through the digest
        assert a == b


def test_kept_rows_are_those_of_all_of_the_chosen_kinds(runs):
    every = _table(runs["all"], "events").to_pandas()
    kinds = set(every["kind"].astype(str))
    assert {"liquidation", "adl"} <= kinds  # the scenario exercises the filter
    liq = _table(runs["liquidations"], "events").to_pandas()
    expected = every[every["kind"].astype(str).isin(["liquidation", "backstop"])]
    assert len(liq) == len(expected) < len(every)
    cols = ["path_id", "step", "round", "qty", "notional", "bad_debt"]
    assert (liq[cols].reset_index(drop=True)
            .equals(expected[cols].reset_index(drop=True)))
    none = _table(runs["none"], "events")
    assert none.num_rows == 0
    assert none.schema.names == _table(runs["all"], "events").schema.names


def test_the_default_keeps_older_digests_and_a_choice_changes_it():
    default = load_scenario(SCENARIO)
    assert "events" not in default.resolved()["simulation"]
    assert load_scenario(SCENARIO, ["simulation.events=all"]).digest == default.digest
    assert load_scenario(SCENARIO, ["simulation.events=none"]).digest != default.digest


def test_a_bad_choice_names_the_key_and_the_valid_ones(tmp_path, capsys):
    with pytest.raises(ScenarioError, match="simulation.events.*valid: all, liquidations, "
                                            "none"):
        load_scenario(SCENARIO, ["simulation.events=some"])
    with pytest.raises(SystemExit) as exit_:  # argparse's own check of choices
        main(["run", "deterministic-gap", "--events", "some", "--out", str(tmp_path / "x")])
    assert exit_.value.code == 2
    assert "--events" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_cli_flag_sets_the_key(tmp_path):
    assert main(["run", "deterministic-gap", "--events", "none", "--quiet", "--out",
                 str(tmp_path / "r")]) == 0
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["scenario_resolved"]["simulation"]["events"] == "none"
    assert ds.dataset(tmp_path / "r" / "events").to_table().num_rows == 0
