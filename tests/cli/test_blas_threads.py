"""The command's process runs NumPy's OpenBLAS on one thread unless told otherwise: an idle
OpenBLAS thread spins on a core after each call (10 s of CPU over 100,000 flagship paths
with ``--jobs 1``), and the command's products are small."""

from __future__ import annotations

import os
import subprocess
import sys

import simulator.cli
from simulator import _entry

PROBE = ("import os, sys, simulator.cli as c; c.entry = lambda: print("
         "os.environ.get('OPENBLAS_NUM_THREADS'), 'numpy' in sys.modules); "
         "import simulator._entry as e; e.main()")


def _probe(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, check=True)
    return done.stdout.strip()


def test_one_blas_thread_set_before_numpy_unless_the_user_set_it():
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    # set by the entry point; NumPy not imported before it (else the value is read too late)
    assert _probe(env) == "1 False"
    assert _probe({**env, "OPENBLAS_NUM_THREADS": "4"}) == "4 False"


def test_the_entry_point_runs_the_command_line(monkeypatch):
    seen = []
    monkeypatch.setattr(simulator.cli, "entry", lambda: seen.append(True))
    monkeypatch.setattr(_entry.signal, "signal", lambda *a: None)  # (pytest keeps its own)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    _entry.main()
    assert seen == [True] and os.environ["OPENBLAS_NUM_THREADS"] == "3"
