"""The ``marginsim`` console script and ``python -m simulator``: signal handlers first.

A Ctrl-C or SIGTERM while the command line is still being imported ends the process at
once with one line and status 130 or 143, instead of a traceback from the middle of an
import. :func:`simulator.cli.entry` then installs the handlers of the command itself.
"""

from __future__ import annotations

import os
import signal
from typing import Any


def _early_exit(signum: int, frame: Any) -> None:
    os.write(2, b"marginsim: interrupted\n")
    os._exit(128 + signum)


def main() -> None:
    """Install the early handlers, then run :func:`simulator.cli.entry`."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _early_exit)
    from simulator.cli import entry

    entry()
