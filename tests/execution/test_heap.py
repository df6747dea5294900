"""A run fixes glibc's mmap threshold, so that freed large arrays leave the process
(``simulator/execution/heap.py``).

Each check runs in a fresh interpreter: the threshold is process-wide, and glibc's
dynamic threshold (the behaviour the fix removes) is seen only before anything fixes it.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from simulator.execution.heap import MMAP_THRESHOLD_BYTES

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="glibc's allocator only")

# Allocate and free a block above the threshold, then allocate a slightly smaller one:
# is the second block mapped on its own (mallinfo2's hblkhd grows by its size)?
PROBE = """
import ctypes, json, sys
import numpy as np
libc = ctypes.CDLL("libc.so.6")
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = MallInfo2
set_by = sys.argv[1]
if set_by == "call":
    from simulator.execution.heap import return_large_blocks
    print(json.dumps({"set": return_large_blocks()}))
elif set_by == "run":
    from simulator.config.scenario import load_scenario
    from simulator.execution.runner import run
    run(load_scenario("deterministic-gap", ["simulation.paths=20"]), sys.argv[2],
        progress=False)
big = int(sys.argv[3])
first = np.ones(big // 8)
del first  # glibc's dynamic threshold rises to this block's size here
before = libc.mallinfo2().hblkhd
second = np.ones((big - (2 << 20)) // 8)  # still above the fixed threshold
print(json.dumps({"mapped": libc.mallinfo2().hblkhd - before >= second.nbytes}))
"""


def _second_block_mapped(set_by: str, tmp_path) -> bool:
    big = MMAP_THRESHOLD_BYTES + (4 << 20)  # below glibc's 32 MiB cap of its dynamic threshold
    out = subprocess.run([sys.executable, "-c", PROBE, set_by, str(tmp_path / "run"),
                          str(big)], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["mapped"]


def test_without_the_fix_glibc_keeps_a_freed_block_size_on_its_heap(tmp_path):
    assert not _second_block_mapped("none", tmp_path)  # the behaviour being fixed


def test_the_fix_maps_every_large_block(tmp_path):
    assert _second_block_mapped("call", tmp_path)


def test_a_run_applies_the_fix(tmp_path):
    assert _second_block_mapped("run", tmp_path)
