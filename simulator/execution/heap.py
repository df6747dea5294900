"""How the C library's allocator returns the memory of a run's large arrays.

NumPy's arrays, Numba's and Arrow's buffers (:mod:`simulator.results.arrow_memory`) all
come from ``malloc``. glibc serves a request of at least its *mmap threshold* with a
mapping of its own, unmapped when freed, and anything smaller from its heap, whose freed
space it keeps. The threshold starts at 128 KiB, but glibc raises it to the size of every
mapped block that is freed, up to 32 MiB; after a run's first chunk its arrays of a few
MiB to 32 MiB (event buffers, the account PnL block, Arrow columns) therefore come from the
heap, and the holes their frees leave between blocks still in use stay resident. On
``two-asset-crash`` (``--jobs 1``, chunks of 1,000 paths) ``mallinfo2`` showed 50 to
200 MiB of free heap kept between chunks (the resident memory between chunks wandered from
380 to 570 MiB), so a run of many chunks peaked higher than one of a few: 10x the paths
cost 1.20x to 1.34x the peak RSS (``benchmarks/bench_memory.py``).

:func:`return_large_blocks` fixes the threshold at 16 MiB (which also stops its
adjustment): every block of at least :data:`MMAP_THRESHOLD_BYTES` is mapped, and unmapped
when freed. On the same run the free heap after each chunk stayed at 3 MiB (once 41 MiB)
and the resident memory between chunks at 363-404 MiB; ``bench_memory.py`` gives 1.16x to
1.17x. The price is a fresh, zeroed page for each page of a mapped block written, where
the heap would have reused one: lower thresholds (1 or 4 MiB) cost 3-8% of a flagship run
on the development machine, 32 MiB (the dynamic threshold's ceiling) gave 1.18x to 1.20x
(``docs/performance.md``, "Memory between chunks").

It is process-wide, like Arrow's pool, and a no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["MMAP_THRESHOLD_BYTES", "return_large_blocks"]

#: blocks of at least this many bytes are mapped on their own and unmapped when freed
MMAP_THRESHOLD_BYTES = 16 << 20
#: ``M_MMAP_THRESHOLD`` of glibc's ``mallopt`` (malloc.h)
_M_MMAP_THRESHOLD = -3

_done: list[int] = []


def return_large_blocks(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Make glibc map every block of at least ``threshold_bytes`` (fixed from now on).

    Called at the start of every run and of every chunk (so in every worker process);
    cheap after the first call in a process.

    Parameters
    ----------
    threshold_bytes : int
        The fixed mmap threshold.

    Returns
    -------
    bool
        Whether the threshold is set (False where the C library is not glibc).
    """
    if _done and _done[0] == threshold_bytes:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(ctypes.c_int(_M_MMAP_THRESHOLD), ctypes.c_int(threshold_bytes)) == 1
    except (OSError, AttributeError):  # pragma: no cover - an unusual C library
        return False
    if ok:
        _done[:] = [threshold_bytes]
    return ok
