"""The public API survives the layout redesign (issue #16): every name the README documented
(``load_scenario``, ``run``, ``sweep``, ``Scenario``, ``RunResult``, ``SweepResult``, the
errors) plus ``prepare`` / ``Prepared`` is importable from ``simulator``, is the object it
names, and stays so whatever was imported first. (A subpackage named ``run`` or ``sweep``
would replace the function of that name on the package once imported: the packages are
``execution`` and ``sweeps`` for that reason.)
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

import simulator

FUNCTIONS = ("load_scenario", "prepare", "run", "sweep")
CLASSES = ("Scenario", "Prepared", "RunResult", "SweepResult", "MarginsimError",
           "ScenarioError")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_functions(name):
    assert inspect.isfunction(getattr(simulator, name))
    assert name in simulator.__all__


@pytest.mark.parametrize("name", CLASSES)
def test_classes(name):
    assert inspect.isclass(getattr(simulator, name))
    assert name in simulator.__all__


def test_errors_are_one_family():
    assert issubclass(simulator.ScenarioError, simulator.MarginsimError)
    from simulator import errors

    assert errors.MarginsimError is simulator.MarginsimError


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'runner'"):
        simulator.runner  # noqa: B018


@pytest.mark.parametrize("first", ["simulator.execution.runner", "simulator.sweeps.sweep",
                                   "simulator.cli", "simulator.execution.prepare"])
def test_names_survive_any_import_order(first):
    """Import a module that defines or uses them first, then take the names: still the
    functions (in a fresh interpreter, so nothing is cached)."""
    code = (f"import {first}\nimport inspect\nfrom simulator import run, sweep, prepare, "
            "load_scenario\nprint(all(map(inspect.isfunction, (run, sweep, prepare, "
            "load_scenario))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "True"


def test_run_on_the_public_api(tmp_path):
    """The README's example, end to end on a tiny scenario."""
    scenario = simulator.load_scenario("deterministic-gap")
    result = simulator.run(scenario, tmp_path / "r")
    assert isinstance(result, simulator.RunResult)
    assert result.summary["paths"] == scenario.simulation.paths
    prep = simulator.prepare(scenario)
    assert isinstance(prep, simulator.Prepared)
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert prep.book.n_accounts == manifest["n_accounts"] > 0
    assert prep.scenario is scenario
