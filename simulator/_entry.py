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


#: the BLAS threads of the command's process, unless the environment sets them
BLAS_THREADS = "1"


def main() -> None:
    """Install the early handlers, then run :func:`simulator.cli.entry`.

    NumPy's OpenBLAS gets one thread (``OPENBLAS_NUM_THREADS``, unless set), before NumPy
    is imported: the command's only BLAS calls are small products (a chunk's PnL block is
    accounts x assets times assets x paths), and an idle OpenBLAS thread spins on a core
    for a while after each call, where a worker process could run: 8 s of CPU over
    100,000 flagship paths with ``--jobs 1``. Workers of ``--jobs N`` get one thread from
    joblib already; the numbers do not depend on it.
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _early_exit)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", BLAS_THREADS)
    from simulator.cli import entry

    entry()
