"""Where the compiled kernels are cached, and a watch on compilation.

Numba's own cache checks only the source file of the kernel it compiled: a kernel that
calls one in another file, or bakes in a constant from :mod:`simulator.margin.codes`,
would be loaded stale from the cache after that other file changed. marginsim therefore
caches its kernels in a folder of their own, named by a hash of every file a kernel is
compiled from (:func:`kernel_sources`): a change to any of them gives a new, empty
folder, so a stale kernel can never be loaded and nobody ever has to clear a cache. The
folder is ``$NUMBA_CACHE_DIR/marginsim-kernels-<hash>`` when ``NUMBA_CACHE_DIR`` is set,
else under ``$XDG_CACHE_HOME/marginsim`` (``~/.cache/marginsim``).
:func:`configure_cache` sets it when :mod:`simulator._kernels` is first imported, before
any kernel is defined (Numba fixes a kernel's cache folder when it is decorated); every
kernel module imports :mod:`simulator._kernels` first.

:func:`watch_compilation` reports the compilations that happen while it is open (Numba's
event API), so that a run can say it is compiling and how long it took.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numba
from numba.core import config, event

#: the package whose kernels are cached
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
#: the modules outside the kernel modules that kernels import (their constants are compiled
#: in); ``tests/test_layout.py`` checks that kernels import nothing else of marginsim
KERNEL_DEPENDENCIES = ("margin/codes.py", "config/limits.py")
#: prefix of the cache folders
CACHE_PREFIX = "marginsim-kernels-"


def is_kernel_module(relative: Path) -> bool:
    """Whether the file at ``relative`` (to the package root) is a kernel module: a file of
    a ``_kernels`` package or a ``_kernels.py`` file."""
    return "_kernels" in relative.parts[:-1] or relative.name == "_kernels.py"


def kernel_sources(root: Path = PACKAGE_ROOT) -> list[Path]:
    """Every file a kernel is compiled from: the kernel modules and
    :data:`KERNEL_DEPENDENCIES`, in a fixed order.

    Parameters
    ----------
    root : Path
        The ``simulator`` package folder.

    Returns
    -------
    list of Path
    """
    files = {p for p in root.rglob("*.py") if is_kernel_module(p.relative_to(root))}
    files |= {root / dep for dep in KERNEL_DEPENDENCIES}
    return sorted(files)


def source_key(root: Path = PACKAGE_ROOT) -> str:
    """Hash of the kernels' sources (names and bytes) and of the Python and Numba versions.

    Parameters
    ----------
    root : Path
        The ``simulator`` package folder.

    Returns
    -------
    str
        16 hexadecimal digits.
    """
    digest = hashlib.sha256()
    digest.update(f"{sys.version_info[:2]} numba {numba.__version__}\0".encode())
    for path in kernel_sources(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_dir(environ: Mapping[str, str] = os.environ, root: Path = PACKAGE_ROOT) -> Path:
    """The folder of this source tree's compiled kernels.

    Parameters
    ----------
    environ : mapping
        The environment (``NUMBA_CACHE_DIR``, ``XDG_CACHE_HOME``).
    root : Path
        The ``simulator`` package folder.

    Returns
    -------
    Path
    """
    base = environ.get("NUMBA_CACHE_DIR")
    if not base:
        xdg = environ.get("XDG_CACHE_HOME")
        if not xdg:
            try:
                xdg = str(Path.home() / ".cache")
            except RuntimeError:  # no home directory: the temporary folder
                xdg = tempfile.gettempdir()
        base = str(Path(xdg) / "marginsim")
    return Path(base) / f"{CACHE_PREFIX}{source_key(root)}"


def configure_cache() -> Path:
    """Point Numba's cache at :func:`cache_dir` for every kernel defined from now on.

    Returns
    -------
    Path
        The folder.
    """
    folder = cache_dir()
    config.CACHE_DIR = str(folder)
    return folder


@dataclass
class Compilation:
    """What :func:`watch_compilation` saw: kernels compiled and the seconds it took."""

    count: int = 0
    seconds: float = 0.0


class _Listener(event.Listener):
    """Counts the outermost compilations and times them."""

    def __init__(self, seen: Compilation, on_first: Callable[[], None] | None) -> None:
        self.seen, self.on_first, self.depth, self.t0 = seen, on_first, 0, 0.0

    def on_start(self, ev: event.Event) -> None:
        if self.depth == 0:
            if self.seen.count == 0 and self.on_first is not None:
                self.on_first()
            self.t0 = time.perf_counter()
        self.depth += 1
        self.seen.count += 1

    def on_end(self, ev: event.Event) -> None:
        self.depth -= 1
        if self.depth == 0:
            self.seen.seconds += time.perf_counter() - self.t0


@contextlib.contextmanager
def watch_compilation(on_first: Callable[[], None] | None = None) -> Iterator[Compilation]:
    """Count and time the kernels compiled (not loaded from the cache) inside the block.

    Parameters
    ----------
    on_first : callable, optional
        Called once, when the first compilation starts.

    Yields
    ------
    Compilation
        Filled in as compilations happen.
    """
    seen = Compilation()
    listener = _Listener(seen, on_first)
    event.register("numba:compile", listener)
    try:
        yield seen
    finally:
        event.unregister("numba:compile", listener)
