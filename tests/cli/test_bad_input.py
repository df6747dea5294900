"""Bad input that the loader tests elsewhere do not reach: TOML's own ``nan`` / ``inf``
literals, empty names, unreadable scenario and data files, absurd magnitudes and ``--set``
on keys that do not exist. Each exits 2 from the CLI with one line naming the file and the
key. (Unknown keys, wrong types, ranges, duplicates, unknown symbols and correlation
matrices: tests/config/test_scenario.py; accounts files: tests/config/test_accounts_file.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator import cli

from ..support.cli_checks import error_line as _error_line
from ..support.toml_text import one_asset_scenario, with_bootstrap

BASE = one_asset_scenario("bad-input", "paths = 10\nsteps = 4\nrisk_levels = [0.95, 0.99]\n",
                          asset_extra="drift = 0.0\n")

BOOTSTRAP = with_bootstrap(BASE)

CASES = [
    # (id, scenario text, needles of the one error line)
    ("toml-inf-price", BASE.replace("price = 60000.0", "price = inf"),
     ("market.assets[0].price", "finite", "inf")),
    ("toml-minus-inf-drift", BASE.replace("drift = 0.0", "drift = -inf"),
     ("market.assets[0].drift", "finite")),
    ("toml-nan-depth", BASE.replace("depth_usd = 2.0e7", "depth_usd = nan"),
     ("market.assets[0].depth_usd", "finite", "nan")),
    ("toml-minus-inf-depth", BASE.replace("depth_usd = 2.0e7", "depth_usd = -inf"),
     ("market.assets[0].depth_usd", ">= 1")),
    ("toml-nan-risk-level", BASE.replace("[0.95, 0.99]", "[nan, 0.99]"),
     ("simulation.risk_levels[0]", "(0.5, 1)")),
    ("toml-inf-paths", BASE.replace("paths = 10", "paths = inf"),
     ("simulation.paths", "expected an integer")),
    ("toml-nan-qty", BASE.replace("qty = 0.1", "qty = nan"),
     ("accounts[0].positions[0].qty", "finite")),
    ("huge-qty", BASE.replace("qty = 0.1", "qty = 1e300"),
     ("accounts[0].positions[0].qty", "<= 1e+12")),
    ("huge-collateral", BASE.replace("USD = 1000.0", "USD = 1.7e308"),
     ("accounts[0].collateral.USD", "<= 1e+15")),
    ("tiny-price", BASE.replace("price = 60000.0", "price = 1e-300"),
     ("market.assets[0].price", "too small")),
    ("tiny-horizon", BASE.replace("steps = 4", "steps = 4\nhorizon_days = 1e-300"),
     ("simulation.horizon_days", "too small")),
    ("empty-symbol", BASE.replace('symbol = "BTC"\n', 'symbol = ""\n'),
     ("market.assets[0].symbol", "not a valid symbol")),
    ("empty-account-id", BASE.replace('id = "a"', 'id = ""'),
     ("accounts[0].id", "non-empty")),
    ("empty-accounts", "accounts = []\n" + BASE.split("[[accounts]]")[0],
     ("accounts", "no accounts")),
    ("empty-asset-list", BASE.split("[[market.assets]]")[0] + "assets = []\n"
     + BASE.split("depth_usd = 2.0e7\n")[1], ("market.assets", "at least one")),
    ("assets-not-tables", BASE.split("[[market.assets]]")[0] + 'assets = ["BTC"]\n'
     + BASE.split("depth_usd = 2.0e7\n")[1], ("market.assets[0]", "expected a table")),
    ("bootstrap-missing", BOOTSTRAP, ("market.bootstrap.file", "cannot read")),
    ("newline-in-a-key", BASE.replace("USD = 1000.0", '"US\\nD" = 1000.0'),
     ('accounts[0].collateral."US\\nD"',)),
    ("newline-in-an-unknown-key", BASE.replace("[simulation]\n", '[simulation]\n"a\\nb" = 1\n'),
     ('simulation."a\\nb"', "unknown key")),
]


@pytest.mark.parametrize(("text", "needles"), [pytest.param(t, n, id=i) for i, t, n in CASES])
def test_bad_scenario_exits_2_with_one_line(tmp_path, capsys, text, needles):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    line = _error_line(capsys, ["validate", str(path)])
    assert str(path) in line
    for needle in needles:
        assert needle in line, (needle, line)


def test_the_base_is_valid(tmp_path, capsys):
    path = tmp_path / "ok.toml"
    path.write_text(BASE, encoding="utf-8")
    assert cli.main(["validate", str(path)]) == 0


@pytest.mark.parametrize("make", ["directory", "not-utf8"])
def test_unreadable_scenario_file(tmp_path, capsys, make):
    path = tmp_path / "scenario.toml"
    if make == "directory":
        path.mkdir()
    else:
        path.write_bytes(BASE.encode().replace(b'"bad-input"', b'"bad-\xff"'))
    line = _error_line(capsys, ["validate", str(path)])
    assert str(path) in line
    assert ("is a directory" if make == "directory" else "cannot read") in line


@pytest.mark.parametrize("make", ["directory", "not-utf8", "not-numbers"])
def test_unreadable_bootstrap_file(tmp_path, capsys, make):
    path = tmp_path / "scenario.toml"
    path.write_text(BOOTSTRAP, encoding="utf-8")
    data = tmp_path / "returns.csv"
    if make == "directory":
        data.mkdir()
    elif make == "not-utf8":
        data.write_bytes(b"BTC\n0.01\n\xff\n")
    else:
        data.write_text("BTC\n0.01\nabc\n")
    line = _error_line(capsys, ["validate", str(path)])
    assert "returns.csv" in line
    if make == "not-numbers":
        assert "row 3" in line and "'abc'" in line


@pytest.mark.parametrize(("override", "needles"), [
    ("nosuch.key=1", ("nosuch", "unknown key")),
    ("simulation.pathz=5", ("simulation.pathz", "unknown key")),
    ("market.assets.0.volatility=0.5", ("market.assets[0].volatility", "unknown key")),
    ("market.assets.3.vol=0.5", ("market.assets.3", "index out of range")),
    ("accounts.0.positions.0.qty=nan", ("accounts[0].positions[0].qty", "finite")),
])
def test_set_on_a_key_that_does_not_exist(tmp_path, capsys, override, needles):
    path = tmp_path / "ok.toml"
    path.write_text(BASE, encoding="utf-8")
    line = _error_line(capsys, ["validate", str(path), "--set", override])
    assert "--set" in line
    for needle in needles:
        assert needle in line, (needle, line)


def test_scenario_paths_are_only_read(tmp_path):
    """Validating touches no file: the scenario's folder is the same afterwards."""
    path = tmp_path / "ok.toml"
    path.write_text(BASE, encoding="utf-8")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    assert cli.main(["validate", str(path)]) == 0
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_no_code_execution_from_input():
    """Nothing in the package can run code that came from a file: no pickle, eval, exec,
    yaml.load, shell=True, os.system or dynamic import."""
    import re

    package = Path(cli.__file__).resolve().parent
    pattern = re.compile(r"\b(pickle|cloudpickle|marshal|shelve)\b|(?<![\w.])(eval|exec)\(|"
                         r"yaml\.(unsafe_)?load\(|shell\s*=\s*True|os\.system\(|os\.popen\(|"
                         r"__import__\(|importlib\.import_module\(")
    hits = [f"{p.relative_to(package)}:{i}: {line.strip()}"
            for p in sorted(package.rglob("*.py"))
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if pattern.search(line)]
    assert hits == []


POPULATION = BASE + "[population]\ncount = 1\n"


@pytest.mark.parametrize(("text", "override", "blamed"), [
    # the file has the table: an error on it is the file's, though a --set wrote under it
    pytest.param(POPULATION + "collateral = { USD = 0.0 }\n", "population.collateral.BTC=0",
                 False, id="table-in-the-file"),
    # the --set created the table on the way to its key: the error is the --set's
    pytest.param(POPULATION, "population.collateral.USD=0", True, id="table-created-by-set"),
    # the --set wrote a table: an error on a key inside it is the --set's
    pytest.param(BASE, "accounts.0.collateral={ USD = -1.0 }", True, id="key-under-a-set"),
])
def test_set_named_only_when_it_created_the_key(tmp_path, capsys, text, override, blamed):
    path = tmp_path / "s.toml"
    path.write_text(text, encoding="utf-8")
    line = _error_line(capsys, ["validate", str(path), "--set", override])
    key = "accounts[0].collateral.USD" if "accounts" in override else "population.collateral"
    if blamed:
        assert line.startswith(f"marginsim: error: --set {override} (on {path}): {key}: "), line
    else:
        assert line.startswith(f"marginsim: error: {path}: {key}: "), line
        assert "--set" not in line, line


@pytest.mark.parametrize("command", ["validate", "verify", "report"])
def test_a_line_break_in_a_file_name_stays_one_line(tmp_path, capsys, command):
    """A path holding a line break (the message quotes it) is still one error line, the
    break written as an escape."""
    name = tmp_path / "a\nb.toml"
    line = _error_line(capsys, [command, str(name)])
    assert "a\\nb.toml" in line
