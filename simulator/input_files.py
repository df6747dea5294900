"""What users hand in, read safely: regular files only, TOML documents of bounded depth.

A file that a user names (a scenario, an ``[accounts_file]``, a ``[market.bootstrap]``
returns file, a price file for ``marginsim calibrate``) is read only when it is a regular
file: ``/dev/zero`` would be read until memory runs out, and a FIFO would block until
something writes to it. :func:`open_regular` opens without blocking (``O_NONBLOCK``:
opening a FIFO that has no writer returns at once) and checks the open descriptor with
``fstat``, so the file cannot be swapped between the check and the read.

A scenario document is nested at most :data:`MAX_DEPTH` tables and arrays deep (a real
one needs five: ``venue.brackets.BTC[0].rate``). Deeper TOML makes :mod:`tomllib` (and
``copy.deepcopy``, and every walk of the document) recurse until Python's recursion limit,
so :func:`parse_toml` turns a :class:`RecursionError` of the parser into one
:class:`~simulator.errors.ScenarioError`, and :func:`check_depth` refuses a parsed document
(or a ``--set`` value, or a document from Python) that is too deep, without recursing,
before anything walks it.
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import tomllib
from pathlib import Path
from typing import Any, BinaryIO

from .errors import ScenarioError

#: the deepest nesting of tables and arrays a scenario document may have
MAX_DEPTH = 32

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


def check_depth(document: Any, source: str, prefix: str = "") -> None:
    """Refuse a document nested more than :data:`MAX_DEPTH` tables and arrays deep.

    The walk uses its own stack, never Python's, so it is safe on any depth.

    Parameters
    ----------
    document : object
        A parsed TOML document, or a value of one.
    source : str
        The file (or ``--set``) for the error.
    prefix : str
        The key path of ``document`` (``""`` for the top level).

    Raises
    ------
    ScenarioError
        Naming the key path at which the document is too deep.
    """
    stack: list[tuple[Any, int, str]] = [(document, 0, prefix)]
    while stack:
        node, depth, path = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth >= MAX_DEPTH:
            shown = path if len(path) <= 160 else path[:157] + "..."
            raise ScenarioError(source, shown or "(top level)", f"nested too deeply: more than "
                                f"{MAX_DEPTH} levels of tables and arrays (a scenario needs "
                                "at most 5)")
        if isinstance(node, dict):
            for key, value in node.items():
                name = key if str(key).isprintable() else json.dumps(key)
                stack.append((value, depth + 1, f"{path}.{name}" if path else str(name)))
        else:
            for i, value in enumerate(node):
                stack.append((value, depth + 1, f"{path}[{i}]"))


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """Parse a scenario's TOML text and check its depth.

    Parameters
    ----------
    text : str
    source : str
        The file, for errors.

    Returns
    -------
    dict

    Raises
    ------
    ScenarioError
        On malformed TOML, an integer too long to read, or nesting deeper than
        :data:`MAX_DEPTH` (which makes the parser itself recurse without bound).
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, "", f"malformed TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(source, "", f"nested too deeply: arrays or inline tables nested "
                            f"hundreds of levels deep (at most {MAX_DEPTH}; a scenario needs "
                            "at most 5)") from None
    except ValueError as exc:  # an integer of thousands of digits, for one
        raise ScenarioError(source, "", f"malformed TOML: {str(exc).splitlines()[0]}") from None
    check_depth(document, source)
    return document


def parse_toml_value(text: str, key: str = "") -> Any:
    """Read ``text`` as one TOML value, with the depth limit of :func:`check_depth`.

    Parameters
    ----------
    text : str
        What follows ``=`` in ``--set KEY=VALUE`` or in a ``--grid`` list item.
    key : str
        The key it is for, named in errors.

    Returns
    -------
    object
        The value.

    Raises
    ------
    tomllib.TOMLDecodeError
        When ``text`` is not one TOML value (callers take it as a bare string).
    ScenarioError
        With source ``--set`` and ``key`` when it is nested too deeply or holds an
        integer too long to read.
    """
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except RecursionError:
        raise ScenarioError("--set", key, f"the value is nested too deeply (at most "
                            f"{MAX_DEPTH} levels of arrays and tables)") from None
    except tomllib.TOMLDecodeError:
        raise
    except ValueError as exc:  # an integer of thousands of digits, for one
        raise ScenarioError("--set", key, f"cannot read the value: "
                            f"{str(exc).splitlines()[0]}") from None
    check_depth(value, "--set", key)
    return value
