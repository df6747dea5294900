"""Hostile input files and documents: refused at once with one line, never read, never a hang.

Regression tests of the input-side points of the hardening issue. Each test's docstring
gives the attack as it was reproduced; each failed before the fix (a hang, memory
exhausted, a 3,000-line traceback, or a misleading message) and exits 2 with one line now.
Files that must not be read (FIFOs, ``/dev/zero``) are guarded: opening one through
Python's ``open`` fails the test instead of blocking or filling memory, and an alarm
stops a test that blocks anyway.
"""

from __future__ import annotations

import builtins
import io
import os
import signal
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from simulator import cli
from simulator.config.scenario import load_scenario
from simulator.config.toml import MAX_DEPTH, check_depth
from simulator.errors import ScenarioError
from simulator.input_files import read_regular_bytes
from simulator.price_files import load_prices

from ..support.cli_checks import error_line as _error_line
from ..support.toml_text import one_asset_scenario, with_bootstrap

BASE = one_asset_scenario("input-safety")

BOOTSTRAP = with_bootstrap(BASE)
ACCOUNTS_FILE = BASE + '[accounts_file]\npath = "accounts.csv"\n'

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo") or not hasattr(signal, "SIGALRM"),
                                reason="FIFOs and alarms are POSIX")
needs_dev_zero = pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")


# --------------------------------------------------------------------------- guards


class Blocked(Exception):
    """The test ran into its alarm: something blocked."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`Blocked` in the test if it is still running after ``seconds``."""
    def on_alarm(signum, frame):
        raise Blocked(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _special(target) -> bool:
    """Whether ``target`` (a path or a descriptor) is something other than a regular file or
    a directory; ``stat`` does not open, so a FIFO does not block here."""
    try:
        mode = os.fstat(target).st_mode if isinstance(target, int) else os.stat(target).st_mode
    except (OSError, TypeError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


@pytest.fixture
def no_special_reads(monkeypatch):
    """Fail the test where Python's ``open`` (and so ``Path.read_bytes``, ``read_text``,
    ``os.fdopen``) is asked to open a FIFO or a device: such a read would block, or fill
    memory from ``/dev/zero``, before the test could report anything."""
    real_open = io.open

    def guarded(file, *args, **kwargs):
        if _special(file):
            raise AssertionError(f"opened {file!r}, which is not a regular file")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(io, "open", guarded)
    monkeypatch.setattr(builtins, "open", guarded)


def _special_file(tmp_path: Path, name: str, kind: str) -> Path:
    """``tmp_path / name`` as a FIFO, or as a link to ``/dev/zero``."""
    path = tmp_path / name
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    return path


KINDS = [pytest.param("fifo", marks=needs_fifo, id="fifo"),
         pytest.param("zero", marks=needs_dev_zero, id="dev-zero")]


# --------------------------------------------------------------------------- regular files


@pytest.mark.parametrize("kind", KINDS)
def test_accounts_file_that_is_not_a_regular_file(tmp_path, capsys, no_special_reads, kind):
    """``[accounts_file] path = "accounts.csv"`` where ``accounts.csv`` is a FIFO
    (``mkfifo accounts.csv``) hung ``marginsim validate`` for ever; a link to
    ``/dev/zero`` was read until memory ran out."""
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(ACCOUNTS_FILE)
    data = _special_file(tmp_path, "accounts.csv", kind)
    with deadline(20):
        line = _error_line(capsys, ["validate", str(scenario)])
    for needle in (str(scenario), "accounts_file.path", str(data), "not a regular file"):
        assert needle in line, (needle, line)


@pytest.mark.parametrize("kind", KINDS)
def test_bootstrap_file_that_is_not_a_regular_file(tmp_path, capsys, no_special_reads, kind):
    """``[market.bootstrap] file = "/dev/zero"`` read ``/dev/zero`` until memory ran out; a
    FIFO there hung ``marginsim validate``."""
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(BOOTSTRAP)
    data = _special_file(tmp_path, "returns.csv", kind)
    with deadline(20):
        line = _error_line(capsys, ["validate", str(scenario)])
    for needle in (str(scenario), "market.bootstrap.file", str(data), "not a regular file"):
        assert needle in line, (needle, line)


def test_bootstrap_file_dev_zero_itself(tmp_path, capsys, no_special_reads):
    """The attack as written: ``file = "/dev/zero"`` (an absolute path, no link)."""
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(BOOTSTRAP.replace('"returns.csv"', '"/dev/zero"'))
    line = _error_line(capsys, ["validate", str(scenario)])
    assert "/dev/zero" in line and "character device, not a regular file" in line, line


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_calibrate_price_file_that_is_not_a_regular_file(tmp_path, capsys, no_special_reads,
                                                        kind, suffix):
    """``marginsim calibrate prices.csv`` with ``prices.csv`` a FIFO or a link to
    ``/dev/zero`` said "does not exist"; it says what the file is."""
    data = _special_file(tmp_path, f"prices{suffix}", kind)
    with deadline(20):
        line = _error_line(capsys, ["calibrate", str(data)])
    assert str(data) in line and "not a regular file" in line, line
    with deadline(20), pytest.raises(ScenarioError, match="not a regular file") as info:
        load_prices(data)
    assert info.value.source == str(data)


@pytest.mark.parametrize("kind", KINDS)
def test_scenario_file_that_is_not_a_regular_file(tmp_path, capsys, no_special_reads, kind):
    """``marginsim validate scenario.toml`` with ``scenario.toml`` a FIFO or a link to
    ``/dev/zero`` said "no such file or built-in scenario"; it says what the file is."""
    path = _special_file(tmp_path, "scenario.toml", kind)
    with deadline(20):
        line = _error_line(capsys, ["validate", str(path)])
        assert str(path) in line and "not a regular file" in line, line
        line = _error_line(capsys, ["run", str(path), "--out", str(tmp_path / "run")])
    assert "not a regular file" in line
    assert not (tmp_path / "run").exists()


@needs_dev_zero
def test_dev_zero_as_the_scenario(capsys, no_special_reads):
    """``marginsim validate /dev/zero``."""
    line = _error_line(capsys, ["validate", "/dev/zero"])
    assert line.startswith("marginsim: error: /dev/zero: ") and "not a regular file" in line


@needs_fifo
def test_read_regular_bytes_opens_a_fifo_without_blocking(tmp_path):
    """The check is made on the open descriptor, and opening does not wait for a writer."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with deadline(10), pytest.raises(OSError, match="FIFO"):
        read_regular_bytes(fifo)
    with pytest.raises(IsADirectoryError):
        read_regular_bytes(tmp_path)
    (tmp_path / "ok.txt").write_bytes(b"a\r\nb")
    assert read_regular_bytes(tmp_path / "ok.txt") == b"a\r\nb"


# --------------------------------------------------------------------------- nesting

DEEP_VALUES = {
    "array": "[" * 500 + "]" * 500,
    "inline-table": "{ a = " * 500 + "1" + " }" * 500,
}


@pytest.mark.parametrize("shape", sorted(DEEP_VALUES))
def test_toml_nested_500_deep(tmp_path, capsys, shape):
    """``name = "x"`` then ``deep = [[[[...]]]]`` (500 deep), or an inline table nested 500
    deep, in a scenario: ``tomllib`` recursed into a RecursionError and a 3,000-line
    traceback."""
    path = tmp_path / "deep.toml"
    path.write_text(f"deep = {DEEP_VALUES[shape]}\n" + BASE)
    line = _error_line(capsys, ["validate", str(path)])
    assert str(path) in line and "nested too deeply" in line, line
    assert len(line) < 400


def test_toml_nested_deep_but_parseable(tmp_path, capsys):
    """100 levels parse, and ``copy.deepcopy`` and the validation walk were next; a dotted
    key 2,000 parts long (``x.a.a.a... = 1``) parses without recursion, then
    ``copy.deepcopy`` raised RecursionError."""
    path = tmp_path / "deep.toml"
    path.write_text(BASE.replace("[simulation]\n", "[simulation]\nx = " + "[" * 100
                                 + "]" * 100 + "\n"))
    line = _error_line(capsys, ["validate", str(path)])
    assert "simulation.x[0][0]" in line and "nested too deeply" in line, line
    path.write_text("x." + ".".join(["a"] * 2000) + " = 1\n" + BASE)
    line = _error_line(capsys, ["validate", str(path)])
    assert "x.a.a.a" in line and "nested too deeply" in line and len(line) < 500, line


@pytest.mark.parametrize("override", [
    "deep=" + "[" * 500 + "]" * 500,
    "deep=" + "{ a = " * 500 + "1" + " }" * 500,
    ".".join(["a"] * 2000) + "=1",
    "simulation.deep=" + "[" * 40 + "]" * 40,
])
def test_set_nested_too_deeply(tmp_path, capsys, override):
    """``marginsim validate s.toml --set 'deep=[[[[...]]]]'`` (500 deep) and ``--set
    a.a.a...=1`` (2,000 parts) ended in RecursionError tracebacks."""
    path = tmp_path / "s.toml"
    path.write_text(BASE)
    line = _error_line(capsys, ["validate", str(path), "--set", override])
    assert "--set" in line and ("too deep" in line or "at most" in line), line
    assert len(line) < 600


def test_depth_limit_is_generous_for_real_scenarios():
    """The deepest key of a real scenario (``venue.brackets.BTC[0].rate``) is far inside."""
    check_depth({"venue": {"brackets": {"BTC": [{"rate": 0.01}]}}}, "x")
    nested: object = 1
    for _ in range(MAX_DEPTH - 1):
        nested = [nested]
    check_depth({"k": nested}, "x")
    with pytest.raises(ScenarioError, match="nested too deeply"):
        check_depth({"k": [nested]}, "x")


def test_integer_of_thousands_of_digits(tmp_path, capsys):
    """``steps = 999...9`` (400 digits) raised OverflowError from the ``:g`` of the range
    message; 5,000 digits raised ValueError from ``tomllib`` itself."""
    path = tmp_path / "s.toml"
    path.write_text(BASE.replace("steps = 4", "steps = " + "9" * 400))
    line = _error_line(capsys, ["validate", str(path)])
    assert "simulation.steps" in line and "9.99e+399" in line, line
    path.write_text(BASE.replace("steps = 4", "steps = " + "9" * 5000))
    line = _error_line(capsys, ["validate", str(path)])
    assert "malformed TOML" in line and len(line) < 400, line
    path.write_text(BASE)
    line = _error_line(capsys, ["validate", str(path), "--set", "simulation.steps=" + "9" * 5000])
    assert "--set" in line and "simulation.steps" in line and len(line) < 400, line


# --------------------------------------------------------------------------- name


@pytest.mark.parametrize(("name", "needle"), [
    ('"a\\u0000b"', "U+0000"),
    ('"run\\nname"', "U+000A"),
    ('"\\u001b[31mred"', "U+001B"),
    ('"evil\\u202egpj.toml"', "U+202E"),
])
def test_name_with_control_characters(tmp_path, capsys, name, needle):
    """``name = "a\\u0000b"`` passed ``validate`` and made ``run`` fail with a ValueError
    traceback ("embedded null byte") when it created ``runs/a\\x00b-<time>``."""
    path = tmp_path / "s.toml"
    path.write_text(BASE.replace('"input-safety"', name))
    line = _error_line(capsys, ["run", str(path), "--out", str(tmp_path / "run")])
    assert f"{path}: name: " in line and needle in line and "printable" in line, line
    assert not (tmp_path / "run").exists()


def test_name_too_long(tmp_path, capsys):
    """``name = "aaa..."`` (300 characters) made ``run`` fail with "File name too long"."""
    path = tmp_path / "s.toml"
    path.write_text(BASE.replace('"input-safety"', '"' + "a" * 300 + '"'))
    line = _error_line(capsys, ["validate", str(path)])
    assert f"{path}: name: is 300 characters long; at most 200" in line, line
    path.write_text(BASE.replace('"input-safety"', '"' + "é" * 200 + '"'))
    assert cli.main(["validate", str(path)]) == 0


@pytest.mark.parametrize("override", ['name="a\\u0000b"', "name=" + "n" * 201])
def test_name_from_set_names_the_set(tmp_path, capsys, override):
    """``--set 'name="a\\u0000b"'``: the error names the ``--set``."""
    path = tmp_path / "s.toml"
    path.write_text(BASE)
    line = _error_line(capsys, ["validate", str(path), "--set", override])
    assert line.startswith(f"marginsim: error: --set {override} (on {path}): name: "), line


# --------------------------------------------------------------------------- messages


def test_out_of_range_value_is_printed_as_itself(tmp_path, capsys):
    """``vol = 50.000001`` said "must be <= 50, got 50"."""
    path = tmp_path / "s.toml"
    path.write_text(BASE.replace("vol = 0.8", "vol = 50.000001"))
    line = _error_line(capsys, ["validate", str(path)])
    assert "market.assets[0].vol: must be <= 50, got 50.000001" in line, line
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, ["market.assets.0.vol=-1e-7"])
    assert info.value.message == "must be >= 0, got -1e-07"
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, ["simulation.steps=1000001"])
    assert info.value.message == "must be <= 1e+06, got 1000001"


@pytest.mark.parametrize(("text", "needle"), [
    ("[behaviour]\nmargin_call_ratio = 0.9999999\n", "got 0.9999999"),
    ("[market.garch]\nalpha = 0.5\nbeta = 0.5000001\n", "0.5 + 0.5000001"),
])
def test_other_messages_print_values_as_themselves(tmp_path, text, needle):
    """``margin_call_ratio = 0.9999999`` said "must be above 1 ..., got 1"; GARCH
    ``alpha = 0.5, beta = 0.5000001`` said "alpha + beta must be < 1, got 0.5 + 0.5"."""
    path = tmp_path / "s.toml"
    base = BASE.replace('model = "gbm"', 'model = "garch"') if "garch" in text else BASE
    path.write_text(base + text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert needle in info.value.message, info.value.message


def test_huge_paths_are_refused_by_the_loader(tmp_path):
    """``--paths 1000000000000``: 244 million chunks, whose seeds alone took 5.5 GB."""
    path = tmp_path / "s.toml"
    path.write_text(BASE)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, ["simulation.paths=1000000000000"])
    assert info.value.key == "simulation.paths"
    assert "simulation.chunk_paths" in info.value.message
    assert "244,140,625 chunks" in info.value.message
