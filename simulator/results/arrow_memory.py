"""Where Arrow's buffers come from while marginsim builds and writes its tables.

pyarrow's default memory pool on Linux (jemalloc) keeps the pages of freed buffers for a
while before it hands them back to the system, so a long run's resident memory keeps the
high-water mark of every chunk's tables on top of the engine's arrays. Buffers from the C
library's allocator (``pyarrow.system_memory_pool``) are returned as they are freed: on
``two-asset-crash`` with ``--jobs 1`` the peak RSS of 4,000 and 40,000 paths went from 563
and 714 MiB to 473 and 562 MiB, with no loss of speed (``benchmarks/bench_memory.py``).
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["use_system_memory_pool"]


def use_system_memory_pool() -> None:
    """Make the C library's allocator Arrow's default memory pool in this process.

    Called at the start of every run and of every chunk (so in every worker process). It is
    process-wide: a program that imports marginsim and wants another pool sets it again
    after the run (``pyarrow.set_memory_pool``).
    """
    pool = pa.system_memory_pool()
    if pa.default_memory_pool().backend_name != pool.backend_name:
        pa.set_memory_pool(pool)
