"""The decorator of the margin engine's leaf kernels: compiled without reference counting.

Numba counts references to every array a compiled function holds: each call of a
non-inlined function, and each array bound to a new name (an inlined function's
arguments, a member taken out of a tuple), costs an atomic increment and decrement per
array unless its refcount pruning pass can pair them up, which it cannot across the
branches and loops of the engine. The engine's functions take 10 to 25 arrays each and
are called a few hundred times per path, so before this decorator about 70% of the
engine's time went to those atomic operations (profiled with ``perf`` on the
``option-sellers`` book; ``benchmarks/bench_options.py`` shows the effect).

A *leaf* kernel allocates nothing and returns no array: it only reads and writes the
arrays it is given, which their owner (the replay kernel, or NumPy) keeps alive for the
whole call. Such a function needs no reference counts at all, and Numba compiles it
without them under its ``_nrt=False`` option. The option is private (Numba's developers
use it in their own benchmarks of refcount overhead, numba/numba#2350) but has been
stable since 2015; where a Numba version does not know it, :data:`leaf` falls back to a
plain ``njit(cache=True)``, which computes the same numbers, only slower. A leaf kernel
that tried to allocate would fail to compile, loudly, never silently.

A kernel compiled for a call from a leaf kernel inherits its ``_nrt=False`` unless it
sets the option itself; one that allocates (a sort, a temporary array) and is called from
a leaf kernel is therefore compiled with :func:`allocating`, which turns reference counts
on for itself whoever calls it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from numba import njit
from numba.core.cpu import CPUTargetOptions

#: whether this Numba can compile a function without reference counting
NRT_OPTION = hasattr(CPUTargetOptions, "_nrt")


def leaf(func: Callable[..., Any] | None = None, *, nogil: bool = False
         ) -> Callable[..., Any]:
    """Compile ``func`` as a leaf kernel: ``njit(cache=True)`` without reference counts.

    Parameters
    ----------
    func : callable
        A kernel that allocates no array and returns none (scalars and tuples of scalars
        only). Left out, :func:`leaf` returns the decorator (``@leaf(nogil=True)``).
    nogil : bool
        Release the GIL while it runs (an entry point called from Python).

    Returns
    -------
    numba dispatcher
        The compiled kernel, callable from Python and from other kernels.
    """
    if func is None:
        return functools.partial(leaf, nogil=nogil)
    if NRT_OPTION:
        return njit(cache=True, nogil=nogil, _nrt=False)(func)
    return njit(cache=True, nogil=nogil)(func)  # pragma: no cover - older or newer Numba


def allocating(func: Callable[..., Any]) -> Callable[..., Any]:
    """Compile ``func`` as a kernel that may allocate: ``njit(cache=True)`` with reference
    counts always on, even when a leaf kernel calls it.

    Parameters
    ----------
    func : callable
        A kernel that allocates (its temporaries are freed before it returns).

    Returns
    -------
    numba dispatcher
        The compiled kernel, callable from Python, from other kernels and from leaf kernels.
    """
    if NRT_OPTION:
        return njit(cache=True, _nrt=True)(func)
    return njit(cache=True)(func)  # pragma: no cover - older or newer Numba
