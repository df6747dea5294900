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

Most kernels are called only by other kernels. Numba still compiles, for every kernel and
every signature, a CPython wrapper (to call it from Python) and a C wrapper (to take its
address), and those wrappers were about a fifth of a cold run's compilation (the flagship:
40 s, 33 s without them). A kernel decorated here is therefore compiled *without* them
unless it is an entry point (``entry=True``, which ``nogil=True`` implies), one that the
Python layer calls. It stays callable from Python all the same: such a call goes to
:attr:`KernelDispatcher.from_python`, a twin of the kernel compiled with the wrappers and
cached under a name of its own (the tests call kernels that way), while calls from other
kernels use the lean compilation.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

from numba import njit
from numba.core import config
from numba.core import types as numba_types
from numba.core.caching import CompileResultCacheImpl, FunctionCache
from numba.core.cpu import CPUTargetOptions
from numba.core.registry import CPUDispatcher

#: whether this Numba can compile a function without reference counting
NRT_OPTION = hasattr(CPUTargetOptions, "_nrt")
#: Numba's options that leave out the CPython and C wrappers of a compiled kernel
NO_WRAPPERS = {"no_cpython_wrapper": True, "no_cfunc_wrapper": True}
#: suffix of the name under which a kernel's twin for calls from Python is cached
TWIN_SUFFIX = "_from_python"
#: suffix of the name under which a kernel-only kernel's compilations are cached
KERNEL_CACHE_SUFFIX = "_kernel_only"


class _KernelCacheImpl(CompileResultCacheImpl):
    """Numba's cache of compile results, its files named ``<name>_kernel_only-...``.

    Numba names a kernel's cache files by its module, qualified name and line, and keys
    their entries by signature and target machine only, not by the compile options: a
    plain dispatcher of the same function (an ``inline="always"`` alias, say) would load a
    kernel-only compilation, without its CPython wrapper, and crash the interpreter when
    called from Python.
    """

    def get_filename_base(self, fullname: str, abiflags: str) -> str:
        return super().get_filename_base(fullname + KERNEL_CACHE_SUFFIX, abiflags)


class _KernelCache(FunctionCache):
    """:class:`~numba.core.caching.FunctionCache` in files of its own
    (:class:`_KernelCacheImpl`)."""

    _impl_class = _KernelCacheImpl


class KernelDispatcher(CPUDispatcher):
    """A Numba dispatcher whose compilations have no CPython or C wrapper: only other
    kernels call them. A call from Python goes to :attr:`from_python` instead (calling
    code without a CPython wrapper from Python would crash the interpreter)."""

    _twin: CPUDispatcher | None = None

    @property
    def from_python(self) -> CPUDispatcher:
        """The kernel's twin with the wrappers: a plain cached dispatcher of a copy of the
        same function, named ``<name>_from_python`` (so that its cache entries are its own).
        """
        if self._twin is None:
            func = self.py_func
            copy = types.FunctionType(func.__code__, func.__globals__, func.__name__,
                                      func.__defaults__, func.__closure__)
            copy.__qualname__ = func.__qualname__ + TWIN_SUFFIX
            copy.__module__, copy.__doc__ = func.__module__, func.__doc__
            options = {k: v for k, v in self.targetoptions.items() if k not in NO_WRAPPERS}
            twin = CPUDispatcher(py_func=copy, locals=dict(self.locals),
                                 targetoptions=options)
            twin.enable_caching()
            self._twin = twin
        return self._twin

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.from_python(*args, **kwargs)

    def enable_caching(self) -> None:
        """Cache the compilations in files of their own (:class:`_KernelCacheImpl`)."""
        self._cache = _KernelCache(self.py_func)

    def get_call_template(self, args: tuple, kws: dict) -> Any:
        """Type a call from another kernel with its integer constants as plain integers.

        Numba types a constant argument (``sort_head_nb(units, 0)``, a flag bit) as a
        literal type of its own and would compile the kernel once more for every constant
        it meets (ten such copies in a flagship run). No kernel prunes a branch on an
        integer argument (they prune on ``None``), so one compilation serves them all.
        """
        args = tuple(_plain(a) for a in args)
        kws = {k: _plain(v) for k, v in kws.items()}
        return super().get_call_template(args, kws)


def _plain(ty: Any) -> Any:
    """``ty`` without its literal value if it is an integer literal."""
    return numba_types.unliteral(ty) if isinstance(ty, numba_types.IntegerLiteral) else ty


def _compile(func: Callable[..., Any], entry: bool, **options: Any) -> Callable[..., Any]:
    """``njit(cache=True, **options)(func)``, without wrappers unless ``entry``."""
    if entry or config.DISABLE_JIT:  # (NUMBA_DISABLE_JIT: njit returns ``func``)
        return njit(cache=True, **options)(func)
    disp = KernelDispatcher(py_func=func, locals={},
                            targetoptions={"nopython": True, "boundscheck": None,
                                           **options, **NO_WRAPPERS})
    disp.enable_caching()
    return disp


def leaf(func: Callable[..., Any] | None = None, *, nogil: bool = False,
         entry: bool = False) -> Callable[..., Any]:
    """Compile ``func`` as a leaf kernel: ``njit(cache=True)`` without reference counts
    (and without wrappers unless it is an entry point).

    Parameters
    ----------
    func : callable
        A kernel that allocates no array and returns none (scalars and tuples of scalars
        only). Left out, :func:`leaf` returns the decorator (``@leaf(nogil=True)``).
    nogil : bool
        Release the GIL while it runs (an entry point called from Python; implies
        ``entry``).
    entry : bool
        The Python layer calls it: compiled with the wrappers.

    Returns
    -------
    numba dispatcher
        The compiled kernel, callable from Python and from other kernels.
    """
    if func is None:
        return functools.partial(leaf, nogil=nogil, entry=entry)
    entry = entry or nogil
    extra = {"nogil": True} if nogil else {}
    if NRT_OPTION:
        return _compile(func, entry, _nrt=False, **extra)
    return _compile(func, entry, **extra)  # pragma: no cover - older or newer Numba


def allocating(func: Callable[..., Any]) -> Callable[..., Any]:
    """Compile ``func`` as a kernel that may allocate: ``njit(cache=True)`` with reference
    counts always on, even when a leaf kernel calls it, and without wrappers (only
    kernels call it).

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
        return _compile(func, False, _nrt=True)
    return _compile(func, False)  # pragma: no cover - older or newer Numba


def inner(func: Callable[..., Any]) -> Callable[..., Any]:
    """Compile ``func`` as ``njit(cache=True)`` without wrappers: a kernel that only other
    kernels call (reference counts as its caller has them).

    Parameters
    ----------
    func : callable
        The kernel.

    Returns
    -------
    numba dispatcher
        The compiled kernel, callable from Python (through its twin) and from kernels.
    """
    return _compile(func, False)
