"""Fixtures shared by every test folder. Plain helpers (builders, comparisons, checks) are in
``tests/support``; the slow reference engine is ``tests/reference``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from simulator import Prepared, load_scenario, prepare
from simulator.config.scenario import Scenario, scenario_from_dict


def _prepare(scenario: Scenario | dict | str | Path, *overrides: str,
             full_scan: bool = False) -> Prepared:
    if isinstance(scenario, dict):
        if overrides:
            raise TypeError("overrides apply to a scenario name or file, not a document")
        scenario = scenario_from_dict(scenario)
    elif not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, list(overrides))
    elif overrides:
        raise TypeError("overrides apply to a scenario name or file, not a Scenario")
    return prepare(scenario, full_scan=full_scan)


@pytest.fixture
def prepared() -> Callable[..., Prepared]:
    """:func:`simulator.prepare` as a factory: ``prepared(scenario, *overrides,
    full_scan=False)`` gives the book, path inputs, rules, liquidation index and account NAV
    coefficients of ``scenario``, a :class:`Scenario`, a scenario document (a dict) or a
    built-in name or file path (loaded with the ``--set`` style ``overrides``)."""
    return _prepare
