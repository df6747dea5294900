"""The library of built-in stress scenarios and its documentation (scenarios/README.md).

Every built-in scenario must have a row in the README's scenario table, and every row must
either cite a source (a link) or say that its numbers are illustrative. The historical
scenarios the project promises must ship.
"""

from __future__ import annotations

import re

import pytest

from simulator.config.scenario import builtin_dir, builtin_scenarios, load_scenario

README = builtin_dir() / "README.md"

#: Historical and mechanism scenarios the library promises, besides the calm baseline.
REQUIRED = (
    "calm-baseline",
    "black-thursday-2020",
    "may-2021",
    "luna-ust-2022",
    "ftx-2022",
    "october-2025-cascade",
    "stablecoin-depeg",
    "vol-spike",
    "correlation-breakdown",
)


def scenario_table(text: str) -> dict[str, str]:
    """Rows of the README's scenario table, by scenario name.

    The table is the first one whose header starts with ``| scenario |``; it ends at the
    first line that is not a table row. A row's name is the first backquoted word of its
    first cell.
    """
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| scenario |"))
    rows: dict[str, str] = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        first_cell = line.split("|")[1]
        match = re.search(r"`([^`]+)`", first_cell)
        assert match, f"table row without a backquoted scenario name: {line[:80]!r}"
        assert match.group(1) not in rows, f"scenario {match.group(1)!r} has two rows"
        rows[match.group(1)] = line
    return rows


@pytest.fixture(scope="module")
def table() -> dict[str, str]:
    return scenario_table(README.read_text(encoding="utf-8"))


def test_the_readme_table_is_found(table):
    assert len(table) >= 8
    assert all(row.count("|") >= 5 for row in table.values())


def test_at_least_eight_scenarios_ship():
    assert len(builtin_scenarios()) >= 8


@pytest.mark.parametrize("name", REQUIRED)
def test_required_scenario_ships(name):
    assert name in builtin_scenarios()


@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_every_builtin_has_a_readme_row(table, name):
    assert name in table, f"scenarios/README.md has no table row for built-in {name!r}"


def test_every_readme_row_is_a_builtin(table):
    assert set(table) <= set(builtin_scenarios())


@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_every_row_cites_a_source_or_says_illustrative(table, name):
    row = table[name]
    assert "http" in row or "illustrative" in row.lower(), (
        f"the README row of {name!r} neither links a source nor says 'illustrative'")


def test_historical_rows_link_their_sources(table):
    for name in REQUIRED[1:6]:
        assert re.search(r"\]\(https?://", table[name]), f"{name}: no markdown link to a source"


@pytest.mark.parametrize("name", REQUIRED)
def test_library_scenarios_are_sized_for_a_quick_default_run(name):
    sc = load_scenario(name)
    sim = sc.simulation
    assert sim.paths <= 10_000
    assert sim.chunk_paths >= 1_000 or sim.chunk_paths >= sim.paths
    assert sim.steps <= 288
    n_accounts = len(sc.accounts) + (sc.population.count if sc.population else 0)
    assert n_accounts <= 5_100
