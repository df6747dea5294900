"""Checks of what the command line prints, shared by the tests of bad input."""

from __future__ import annotations

from simulator import cli


def error_line(capsys, argv: list[str]) -> str:
    """Run ``marginsim ARGV``; check it exits 2 with one line on stderr and no traceback;
    return the line."""
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]
