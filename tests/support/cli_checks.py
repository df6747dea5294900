"""Checks of what the command line prints, shared by the tests of bad input and of run
directories."""

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


def one_line(capsys, *needles: str) -> str:
    """Check that stderr (from ``capsys``) is one line, without a traceback, holding every
    one of ``needles``; return the line."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
