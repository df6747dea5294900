"""The kernels' cache folder is keyed by every file they are compiled from, so a stale
compiled kernel can never load; the compilation watch sees compilations, not cache loads."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import numpy as np
from numba import njit
from numba.core.dispatcher import Dispatcher

from simulator._kernels import compiling

PACKAGE = Path(compiling.__file__).resolve().parent.parent


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "simulator"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_key_changes_with_every_file_a_kernel_is_compiled_from(tmp_path):
    root = _tree(tmp_path)
    key = compiling.source_key(root)
    assert compiling.source_key(root) == key  # deterministic
    # a callee in another file than its caller (the case Numba's own cache misses), a
    # constant the kernels compile in, a shared kernel, the path generator
    for rel in ("margin/_kernels/state.py", "margin/codes.py", "config/limits.py",
                "_kernels/black_scholes.py", "paths/_kernels.py"):
        path = root / rel
        original = path.read_bytes()
        path.write_bytes(original + b"\n# edited\n")
        assert compiling.source_key(root) != key, rel
        path.write_bytes(original)
    assert compiling.source_key(root) == key
    (root / "cli.py").write_text("# not compiled by numba\n")  # not a kernel's source
    assert compiling.source_key(root) == key


def test_kernel_sources_are_the_kernel_modules_and_their_constants():
    rels = {p.relative_to(PACKAGE).as_posix() for p in compiling.kernel_sources()}
    assert {"margin/_kernels/replay.py", "margin/_kernels/state.py", "paths/_kernels.py",
            "_kernels/jit.py", "margin/codes.py", "config/limits.py"} <= rels
    assert not {"cli.py", "margin/engine.py", "paths/models.py"} & rels


def test_cache_folder_follows_numba_cache_dir_then_xdg(tmp_path):
    key = compiling.source_key()
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "nb")}
    assert compiling.cache_dir(env) == tmp_path / "nb" / f"marginsim-kernels-{key}"
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert compiling.cache_dir(env) == tmp_path / "xdg" / "marginsim" / f"marginsim-kernels-{key}"


def test_every_kernel_caches_in_the_keyed_folder():
    folder = str(compiling.cache_dir())
    seen = 0
    for path in compiling.kernel_sources():
        rel = path.relative_to(PACKAGE).with_suffix("")
        if not compiling.is_kernel_module(path.relative_to(PACKAGE)) or rel.name == "__init__":
            continue
        module = importlib.import_module("simulator." + ".".join(rel.parts))
        for value in vars(module).values():
            if isinstance(value, Dispatcher) and value.py_func.__module__ == module.__name__:
                assert value._cache._cache_path.startswith(folder), value.py_func.__qualname__
                seen += 1
    assert seen > 50  # the engine, the path generators and the shared kernels


def test_watch_counts_compilations_and_calls_back_once():
    calls = []

    @njit  # not cached: compiled here, whatever the cache holds
    def twice(x):  # pragma: no cover - jitted
        return 2.0 * x

    with compiling.watch_compilation(lambda: calls.append(1)) as seen:
        assert twice(np.float64(1.5)) == 3.0
        assert twice(np.int64(2)) == 4.0  # a second specialisation
    assert seen.count == 2 and calls == [1] and seen.seconds > 0.0
    with compiling.watch_compilation(lambda: calls.append(1)) as again:
        assert twice(np.float64(2.5)) == 5.0  # already compiled: nothing to watch
    assert again.count == 0 and again.seconds == 0.0 and calls == [1]
