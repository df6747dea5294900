"""What users hand in, read safely: regular files only.

A file that a user names (a scenario, an ``[accounts_file]``, a ``[market.bootstrap]``
returns file, a price file for ``marginsim calibrate``) is read only when it is a regular
file: ``/dev/zero`` would be read until memory runs out, and a FIFO would block until
something writes to it. :func:`open_regular` opens without blocking (``O_NONBLOCK``:
opening a FIFO that has no writer returns at once) and checks the open descriptor with
``fstat``, so the file cannot be swapped between the check and the read.

The depth limits of TOML documents live in :mod:`simulator.config.toml`.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path
from typing import BinaryIO

#: file name suffixes read as Parquet (any other is read as CSV)
PARQUET_SUFFIXES = (".parquet", ".pq")

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISDIR, "a directory"))


def file_kind(mode: int) -> str:
    """What a ``st_mode`` describes, for messages: ``"a FIFO (named pipe)"``, ...

    Parameters
    ----------
    mode : int
        ``os.stat_result.st_mode``.

    Returns
    -------
    str
    """
    if stat.S_ISREG(mode):
        return "a regular file"
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "not a file"


class NotRegularFileError(OSError):
    """A named data file is a FIFO, a device or a socket, not a regular file.

    ``str()`` of it is its ``strerror``, ``"a FIFO (named pipe), not a regular file
    (...)"``, without the errno, so that callers can write ``f"cannot read {path}: {exc}"``.
    """

    def __init__(self, path: str | Path, kind: str) -> None:
        super().__init__(errno.EINVAL, f"{kind}, not a regular file (reading it would block "
                         "or never end)", str(path))
        self.kind = kind

    def __str__(self) -> str:
        return str(self.strerror)


def non_regular_kind(path: str | Path) -> str | None:
    """What ``path`` is when it exists but is neither a regular file nor a directory.

    Parameters
    ----------
    path : str or Path
        Symbolic links are followed.

    Returns
    -------
    str or None
        ``"a FIFO (named pipe)"``, ``"a character device"``, ...; None for a regular file,
        a directory, or a path that does not exist or cannot be examined.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return file_kind(mode)


def open_regular(path: str | Path) -> BinaryIO:
    """Open a regular file for binary reading, refusing anything else before reading.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    BinaryIO
        The open file (the caller closes it).

    Raises
    ------
    IsADirectoryError
        When ``path`` is a directory.
    NotRegularFileError
        When it is a FIFO, a device or a socket.
    OSError
        When it cannot be opened (missing, permissions, ...).
    """
    nonblock = getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, os.O_RDONLY | nonblock | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(path, file_kind(mode))
        if nonblock:
            os.set_blocking(fd, True)  # (no effect on a regular file; plain reads after)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_bytes(path: str | Path) -> bytes:
    """The contents of a regular file (see :func:`open_regular` for what is refused)."""
    with open_regular(path) as handle:
        return handle.read()


def read_regular_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The text of a regular file, newlines translated as :meth:`Path.read_text` does."""
    with open_regular(path) as handle, io.TextIOWrapper(handle, encoding=encoding) as text:
        return text.read()






