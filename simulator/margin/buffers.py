"""Row buffers of the replay kept from one call of :func:`simulator.margin.engine.replay`
to the next.

A chunk of the flagship's 1,000 paths writes about 520,000 event rows (128 bytes each,
with the ADL columns) and 416,000 PnL corrections (24 bytes): some 75 MiB of buffers.
Blocks that large are mapped afresh for every chunk and unmapped when freed
(:mod:`simulator.execution.heap`), so every chunk faulted in and zeroed each of their pages
again: about a sixth of the run's CPU time went to the kernel's page handling (``sys`` in
``/usr/bin/time``). A :class:`RowBuffers` keeps the buffers of the last call instead,
resident, and hands them to the next one: the memory held between chunks is that of one
chunk's rows, which the chunk held anyway.

The arrays of a :class:`~simulator.margin.result.ReplayResult` built with buffers are
views of them, valid until the next call given the same buffers: the caller (the runner's
chunk, :mod:`simulator.execution.chunk`) is done with one result before it replays the
next chunk. Not thread-safe: one per thread.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RowBuffers"]


class RowBuffers:
    """Named row buffers (first axis: rows), each kept at the largest size asked for.

    Examples
    --------
    >>> buffers = RowBuffers()
    >>> a = buffers.take("ev_f", 100, (7,), np.float64)
    >>> a.shape
    (100, 7)
    >>> b = buffers.take("ev_f", 50, (7,), np.float64)  # the same memory, every row of it
    >>> b.shape, np.shares_memory(a, b)
    ((100, 7), True)
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def take(self, name: str, rows: int, width: tuple[int, ...], dtype: type | np.dtype
             ) -> np.ndarray:
        """The buffer ``name`` with at least ``rows`` rows of shape ``width`` (uninitialised).

        Returns the kept buffer, all of its rows, when it is large enough; otherwise a new
        one of ``rows`` rows, which is kept in its place (the old one is released here;
        arrays that still view it keep it alive).
        """
        dtype = np.dtype(dtype)
        buf = self._arrays.get(name)
        if buf is None or buf.shape[0] < rows or buf.shape[1:] != tuple(width) \
                or buf.dtype != dtype:
            self._arrays.pop(name, None)
            del buf
            buf = self._arrays[name] = np.empty((rows, *width), dtype=dtype)
        return buf

    def nbytes(self) -> int:
        """Bytes held."""
        return sum(a.nbytes for a in self._arrays.values())

    def clear(self) -> None:
        """Release every buffer."""
        self._arrays.clear()
