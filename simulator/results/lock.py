"""The lock of a run (or sweep) directory: one writer at a time, and workers that know it.

``run``, ``run --resume``, ``run --force`` and ``sweep`` hold ``DIR/.marginsim.lock`` for as
long as they write into ``DIR``. The file names its owner (host, PID, command, start time
and a random token) and is held with an exclusive ``flock``, which the operating system
releases when the owner dies, however it dies (``kill -9`` included). So:

- a second writer finds the lock held and is refused, with the owner named;
- a lock whose owner died is free: the next writer reports the dead owner and takes it over;
- a worker checks, before it writes, that the lock is still held and still names its run's
  token (:func:`owner_alive`): once its driver is gone, or the directory was removed and
  reused by another run, it writes nothing.

Where the filesystem has no ``flock`` (some network or FUSE filesystems), liveness falls
back to the PID on the same host; a lock of another host is then refused, with the file to
remove if that run is known to be dead.

This module imports only the standard library and :mod:`simulator.errors`.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import socket
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from simulator.errors import RunDirectoryError

#: the lock file's name inside a run or sweep directory (hidden: checksums skip it)
LOCK_NAME = ".marginsim.lock"
#: errors of ``flock`` on a filesystem that does not support it
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class RunDirectoryWarning(UserWarning):
    """Something about a run directory worth a line on stderr (a dead owner taken over)."""


@dataclass
class RunLock:
    """A held lock (see :func:`acquire`); release it with :meth:`release` or ``with``.

    Attributes
    ----------
    directory : Path
        The locked directory.
    token : str
        The random token written in the lock file, which workers check before writing.
    """

    directory: Path
    token: str
    _fd: int | None = None

    def release(self) -> None:
        """Remove the lock file (if it is still ours) and release the lock."""
        if self._fd is None:
            return
        try:
            path = self.directory / LOCK_NAME
            if _same_file(self._fd, path):
                path.unlink()
        except OSError:
            pass  # the directory was removed or swapped away: nothing left to unlink
        finally:
            os.close(self._fd)
            self._fd = None

    def still_held_here(self, directory: Path) -> bool:
        """Whether ``directory`` is still the folder whose lock this is (its lock file is
        the one held), not a folder put in its place since."""
        return self._fd is not None and _same_file(self._fd, directory / LOCK_NAME)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _flock(fd: int, operation: int) -> bool | None:
    """``True`` when locked, ``False`` when another holds it, ``None`` without flock."""
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in _NO_FLOCK:
            return None
        raise
    return True


def _read_owner(fd: int) -> dict[str, Any] | None:
    """The owner recorded in an open lock file (None: empty or unreadable)."""
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", errors="replace")
        owner = json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def describe(owner: dict[str, Any] | None) -> str:
    """``"pid 123 on host, marginsim run, since 2026-12-06T21:00:00+00:00"``."""
    if not owner:
        return "an unknown process"
    return (f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}, "
            f"{owner.get('command', 'marginsim')}, since {owner.get('started', '?')}")


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fallback_live(owner: dict[str, Any] | None) -> bool:
    """Liveness without flock: the PID on this host; another host's lock counts as live."""
    if not owner:
        return False
    return owner.get("host") != socket.gethostname() or _pid_alive(owner.get("pid"))


def acquire(directory: Path, command: str) -> RunLock:
    """Take the lock of ``directory`` (which must exist) for ``command``.

    Parameters
    ----------
    directory : Path
        A run or sweep directory.
    command : str
        What the owner is doing, for the message a second writer gets (``"marginsim run
        --resume"``).

    Returns
    -------
    RunLock

    Raises
    ------
    RunDirectoryError
        When a live process holds the lock (its host, PID, command and start are named),
        or the lock file cannot be created.

    Warns
    -----
    RunDirectoryWarning
        When the lock of a dead owner is taken over.
    """
    path = directory / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise RunDirectoryError(f"{path}: cannot create the run directory's lock: "
                                    f"{exc.strerror or exc}") from None
        try:
            held = _flock(fd, fcntl.LOCK_EX)
            previous = _read_owner(fd)
            if held is False or (held is None and _fallback_live(previous)):
                raise RunDirectoryError(
                    f"{directory}: in use by another marginsim process ({describe(previous)})"
                    f"; wait until it has finished or stop it (if it is known to be dead, "
                    f"remove {path})")
            if not _same_file(fd, path):  # the previous owner released it meanwhile: retry
                os.close(fd)
                continue
            token = secrets.token_hex(16)
            owner = {"host": socket.gethostname(), "pid": os.getpid(), "command": command,
                     "started": datetime.now().astimezone().isoformat(timespec="seconds"),
                     "token": token}
            data = json.dumps(owner).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        if previous and previous.get("token"):
            warnings.warn(f"{directory}: taking over the lock of a marginsim process that is "
                          f"gone ({describe(previous)})", RunDirectoryWarning, stacklevel=2)
        return RunLock(directory, token, fd)


def _probe(directory: Path) -> tuple[dict[str, Any] | None, bool] | None:
    """The owner recorded in ``directory``'s lock and whether a live process holds it;
    None when there is no lock file. Probes with a shared lock, released at once."""
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        owner = _read_owner(fd)
        free = _flock(fd, fcntl.LOCK_SH)
        if free:
            fcntl.flock(fd, fcntl.LOCK_UN)
        return owner, free is False or (free is None and _fallback_live(owner))
    finally:
        os.close(fd)


def owner_alive(directory: Path, token: str) -> bool:
    """Whether the process that took ``directory``'s lock with ``token`` still holds it.

    Workers call this before they write: ``False`` when the lock file is gone, names another
    owner (the directory was reused), or is no longer held (its owner died).
    """
    probe = _probe(directory)
    return probe is not None and probe[1] and bool(probe[0]) \
        and probe[0].get("token") == token


def holder(directory: Path) -> dict[str, Any] | None:
    """The owner of ``directory``'s lock if a live process holds it, else ``None``
    (for ``verify`` and ``report``: a run being written is not to be trusted yet)."""
    probe = _probe(directory)
    return (probe[0] or {}) if probe is not None and probe[1] else None
