"""The leaf-kernel decorator: no reference counts where Numba allows it, loud failure
when a leaf kernel would allocate."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba.core import types as numba_types
from numba.core.caching import FunctionCache
from numba.core.registry import CPUDispatcher

from simulator._kernels.compiling import PACKAGE_ROOT, is_kernel_module, kernel_sources
from simulator._kernels.jit import (
    KERNEL_CACHE_SUFFIX,
    NRT_OPTION,
    TWIN_SUFFIX,
    KernelDispatcher,
    allocating,
    inner,
    leaf,
)
from simulator.margin._kernels import index as _index_kernels
from simulator.margin._kernels import option_boxes as _option_box_kernels
from simulator.margin._kernels import options as _option_kernels
from simulator.margin._kernels import state as _state_kernels


def test_engine_leaf_kernels_are_compiled_without_reference_counts():
    assert NRT_OPTION, "this Numba no longer knows _nrt: the engine runs ~2x slower"
    for kernel in (_state_kernels.refresh_unit_nb, _index_kernels.push_band_nb,
                   _option_kernels.option_terms_nb, _option_box_kernels.option_box_nb):
        assert kernel.targetoptions.get("_nrt") is False
        assert isinstance(kernel._cache, FunctionCache)  # cache=True


def test_leaf_kernel_reads_and_writes_its_arrays():
    @leaf
    def axpy(a, x, y):  # pragma: no cover - jitted
        for i in range(x.shape[0]):
            y[i] += a * x[i]
        return y.shape[0]

    x = np.arange(5.0)
    y = np.ones(5)
    assert axpy(2.0, x, y) == 5
    np.testing.assert_array_equal(y, 1.0 + 2.0 * np.arange(5.0))


@pytest.mark.skipif(not NRT_OPTION, reason="plain njit fallback allocates normally")
def test_leaf_kernel_that_allocates_fails_to_compile():
    @leaf
    def allocates(n):  # pragma: no cover - jitted
        return np.zeros(n).sum()

    with pytest.raises(Exception):  # noqa: B017 - Numba's lowering error type varies
        allocates(3)


def _has_cpython_wrapper(kernel, sig) -> bool:
    """Whether the compilation of ``kernel`` for ``sig`` holds a CPython wrapper."""
    cres = kernel.overloads[sig]
    return cres.library.get_pointer_to_function(cres.fndesc.llvm_cpython_wrapper_name) != 0


def test_kernel_only_leaf_compiles_without_wrappers_and_python_calls_a_twin():
    @leaf
    def scale(a, x):  # pragma: no cover - jitted
        for i in range(x.shape[0]):
            x[i] *= a
        return x.shape[0]

    @leaf(entry=True)
    def scale_twice(a, x):  # pragma: no cover - jitted
        return scale(a, x) + scale(a, x)

    assert isinstance(scale, KernelDispatcher) and not isinstance(scale_twice, KernelDispatcher)
    x = np.arange(4.0)
    assert scale_twice(3.0, x) == 8
    np.testing.assert_array_equal(x, 9.0 * np.arange(4.0))
    (sig,) = scale.signatures  # compiled for the call from the entry kernel
    assert not _has_cpython_wrapper(scale, sig)
    assert _has_cpython_wrapper(scale_twice, scale_twice.signatures[0])
    # a call from Python goes to the twin: a plain, cached dispatcher of its own name
    y = np.arange(4.0)
    assert scale(3.0, y) == 4
    np.testing.assert_array_equal(y, 3.0 * np.arange(4.0))
    twin = scale.from_python
    assert type(twin) is CPUDispatcher and twin is scale.from_python
    assert twin.py_func.__qualname__ == scale.py_func.__qualname__ + TWIN_SUFFIX
    assert twin._cache.__class__.__name__ == "FunctionCache"
    assert twin.targetoptions.get("_nrt") is scale.targetoptions.get("_nrt")
    assert _has_cpython_wrapper(twin, twin.signatures[0])
    assert scale.signatures == [sig]  # the Python call compiled nothing more of the kernel


def test_allocating_and_inner_kernels_are_kernel_only():
    @inner
    def total(x):  # pragma: no cover - jitted
        return x.sum()

    @allocating
    def doubled_total(x):  # pragma: no cover - jitted
        return total(np.concatenate((x, x)))

    assert isinstance(total, KernelDispatcher) and isinstance(doubled_total, KernelDispatcher)
    assert doubled_total(np.arange(3.0)) == 6.0
    assert total(np.arange(3.0)) == 3.0


def _kernel_dispatchers() -> dict[str, CPUDispatcher]:
    """Every dispatcher defined in a kernel module, by name."""
    found = {}
    for path in kernel_sources():
        rel = path.relative_to(PACKAGE_ROOT)
        if not is_kernel_module(rel):
            continue
        module = importlib.import_module(".".join(("simulator", *rel.with_suffix("").parts)))
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == module.__name__:
                found[name] = obj
    return found


def test_python_layer_calls_only_entry_kernels():
    """A kernel the Python layer calls must be an entry (compiled with its wrappers): a
    kernel-only one would compile its twin as well on every first run."""
    kernels = _kernel_dispatchers()
    layer = "\n".join(p.read_text() for p in PACKAGE_ROOT.rglob("*.py")
                      if not is_kernel_module(p.relative_to(PACKAGE_ROOT)))
    called = {name for name in kernels if re.search(rf"\b{name}\b", layer)}
    kernel_only = {name for name, obj in kernels.items() if isinstance(obj, KernelDispatcher)}
    assert called and kernel_only
    assert not called & kernel_only, sorted(called & kernel_only)
    for name in ("replay_nb", "gbm_paths_nb", "push_band_nb", "bs_price_nb"):
        assert name in called and name not in kernel_only
    for name in ("refresh_unit_nb", "heap_push_nb", "cover_deficit_nb", "norm_cdf_nb",
                 "bound_price_nb", "_correlate"):
        assert name in kernel_only


def test_integer_constants_share_one_compilation():
    @leaf
    def add_bit(flags, i, bit):  # pragma: no cover - jitted
        flags[i] |= bit
        return flags[i]

    @leaf(entry=True)
    def add_bits(flags):  # pragma: no cover - jitted
        return add_bit(flags, 0, 8) + add_bit(flags, 1, 32) + add_bit(flags, 0, 1)

    flags = np.zeros(2, dtype=np.int64)
    assert add_bits(flags) == 8 + 32 + 9
    np.testing.assert_array_equal(flags, [9, 32])
    (sig,) = add_bit.signatures  # not one per constant
    assert all(not isinstance(t, numba_types.Literal) for t in sig)


def test_kernel_only_compilations_are_cached_apart_from_plain_ones():
    """Numba keys a cache entry by signature and machine, not by the compile options: a
    plain dispatcher of the same function would load a compilation without its CPython
    wrapper. The option terms have both (a leaf kernel and an inlined alias)."""
    kernel, alias = _option_kernels.option_terms_nb, _option_kernels.option_terms_inline_nb
    assert kernel.py_func is alias.py_func
    assert KERNEL_CACHE_SUFFIX in kernel._cache._impl.filename_base
    assert kernel._cache._impl.filename_base != alias._cache._impl.filename_base
    twin = kernel.from_python
    assert len({kernel._cache._impl.filename_base, alias._cache._impl.filename_base,
                twin._cache._impl.filename_base}) == 3


MODULE = """
from numba import njit
from simulator._kernels.jit import leaf

def _bump(x):  # pragma: no cover - jitted
    x[0] += 1.0
    return x.shape[0]

bump_nb = leaf(_bump)
bump_alias = njit(cache=True, inline="always")(_bump)

@leaf(entry=True)
def bump_twice(x):  # pragma: no cover - jitted
    return bump_nb(x) + bump_nb(x)
"""


def test_plain_alias_called_from_python_after_kernel_only_compilation(tmp_path):
    """One process compiles the kernel-only kernel (for a call from an entry kernel) and
    caches it; the next calls the plain alias of the same function from Python. Without
    separate cache files it loaded the wrapper-less code and crashed."""
    (tmp_path / "bumps.py").write_text(textwrap.dedent(MODULE))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PACKAGE_ROOT.parent)])}
    for call, expected in (("bump_twice", "6"), ("bump_alias", "3")):
        code = f"import numpy as np, bumps; print(bumps.{call}(np.zeros(3)))"
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, (call, done.returncode, done.stderr[-2000:])
        assert done.stdout.strip() == expected
