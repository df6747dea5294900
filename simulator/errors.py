"""Errors raised for users: each names where the bad input is and what would be valid."""

from __future__ import annotations

import signal


class MarginsimError(Exception):
    """Base class of the errors that the command line reports as one line, exit status 2."""


class ScenarioError(MarginsimError):
    """A scenario (or an override of it) is invalid.

    Parameters
    ----------
    source : str
        The file (or ``--set``) the bad value came from.
    key : str
        The key path, for example ``market.assets[1].vol``.
    message : str
        What is wrong and what would be valid.
    """

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        self.message = message
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {message}")


class RunDirectoryError(MarginsimError):
    """The output directory cannot be used (exists and is not empty, not writable...)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped the work; the message says what was kept.

    A ``KeyboardInterrupt``, so that code catching Ctrl-C catches it. The command line
    exits with :attr:`exit_status`: 130 for SIGINT, 143 for SIGTERM.

    Parameters
    ----------
    message : str
        What was kept and how to finish (may be empty).
    signum : int
        The signal: ``signal.SIGINT`` or ``signal.SIGTERM``.
    """

    SIGINT = signal.SIGINT

    def __init__(self, message: str = "", signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = int(signum)

    @property
    def exit_status(self) -> int:
        """128 plus the signal's number, as shells report a process a signal ended."""
        return 128 + self.signum
