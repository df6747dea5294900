"""Where runs go and what ``--force`` may replace: default directories, ownership, swap-in.

- The default directory of a run or sweep is ``runs/<slug>-<time>`` under the working
  directory, whatever the scenario's name holds (``../x``, an absolute path, ``a/b``, control
  characters): the name is reduced to a safe slug.
- ``--force`` replaces only what marginsim wrote (:func:`check_replaceable`): a run directory
  whose ``manifest.json`` parses with marginsim's own fields, or a sweep directory whose
  ``sweep.json`` does, and that holds nothing but marginsim's own files and folders. A
  foreign file, a symbolic link or an unknown folder anywhere inside is refused, never
  deleted.
- The replacement is written beside the old directory and swapped in when complete
  (:func:`swap_in`), so a whole run exists at every moment.

This module imports :mod:`simulator.errors`, :mod:`simulator.input_files`,
:mod:`simulator.results.lock` and the standard library only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from simulator.errors import RunDirectoryError
from simulator.input_files import read_regular_text
from simulator.results.lock import LOCK_NAME, RunLock, holder

#: top-level files of a run directory
RUN_FILES = ("manifest.json", "summary.json", "accounts.parquet", "report.html")
#: per-chunk folders of a run and the names of the files in them
RUN_FOLDERS = {
    "paths": r"part-\d{5,}\.parquet",
    "events": r"part-\d{5,}\.parquet",
    "prices": r"part-\d{5,}\.parquet",
    "prices_no_impact": r"part-\d{5,}\.parquet",
    "chunks": r"(accounts|pnl)-\d{5,}\.parquet|chunk-\d{5,}\.json",
}
#: top-level files of a sweep directory
SWEEP_FILES = ("sweep.json", "sweep.parquet", "report.html")
#: fields every manifest and sweep.json written by marginsim has
MANIFEST_FIELDS = ("status", "scenario_sha256", "seed", "paths", "chunk_paths", "n_chunks")
SWEEP_FIELDS = ("status", "scenario", "seed", "grid")
#: the longest slug of a scenario name in a default directory's name
MAX_SLUG = 80


def slug(name: str) -> str:
    """A scenario name as a safe directory name: letters, digits, ``.``, ``_`` and ``-``
    only, no leading dot or dash, at most :data:`MAX_SLUG` characters (``"run"`` if
    nothing is left)."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:MAX_SLUG].rstrip(".-")
    return text or "run"


def default_run_dir(name: str, suffix: str = "", root: Path | None = None) -> Path:
    """``<cwd>/runs/<slug>[-suffix]-<YYYYmmdd-HHMMSS>``, with a number if it exists.

    Always inside ``root`` (default ``runs/`` under the working directory), whatever
    ``name`` holds.
    """
    root = (Path.cwd() / "runs") if root is None else root
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{slug(name)}-{suffix}" if suffix else slug(name)
    path = root / f"{base}-{stamp}"
    k = 1
    while path.exists():
        k += 1
        path = root / f"{base}-{stamp}-{k}"
    return path


def missing_root(path: Path) -> Path | None:
    """The topmost folder of ``path`` that does not exist yet (``path`` itself, or the
    first missing parent), which removing undoes creating ``path``; None if it exists."""
    if path.exists():
        return None
    while not path.parent.exists() and path.parent != path:
        path = path.parent
    return path


def remove_own(path: Path, what: str, root: Path | None) -> None:
    """Undo what a failed run (``what`` ``"run"``) or sweep (``"sweep"``) wrote in ``path``:
    its own files and folders only, never anything else; then ``path`` and its parents up
    to ``root`` (the first folder the run created; None: none), each only if empty. Call
    it holding the directory's lock (with ``root`` None), then :func:`remove_empty`.

    What marginsim did not write stays, and so does every folder holding it.
    """
    if path.is_dir() and not path.is_symlink():
        files = SWEEP_FILES if what == "sweep" else RUN_FILES
        for entry in path.iterdir():
            name = entry.name
            if entry.is_symlink():
                continue
            if entry.is_file() and (name in files or _temporary_of(name, set(files))):
                entry.unlink()
            elif what == "sweep" and name == "points" and entry.is_dir():
                for point in entry.iterdir():
                    if point.is_dir() and not point.is_symlink():
                        remove_own(point, "run", point)
                _rmdir(entry)
            elif what == "run" and name in RUN_FOLDERS and entry.is_dir() \
                    and not _chunk_files(RUN_FOLDERS[name])(entry):
                shutil.rmtree(entry)
    remove_empty(path, root)


def remove_empty(path: Path, root: Path | None) -> None:
    """Remove ``path`` and its parents up to ``root`` (None: none), each only if empty."""
    if root is None:
        return
    while _rmdir(path) and path != root and root in path.parents:
        path = path.parent


def _rmdir(path: Path) -> bool:
    """Remove ``path`` if it is an empty folder; whether it was removed."""
    try:
        path.rmdir()
    except OSError:
        return False
    return True


def _temporary_of(name: str, allowed: set[str] | str) -> bool:
    """Whether ``name`` is ``.X.PID.tmp`` for an allowed ``X`` (a write cut short)."""
    m = re.fullmatch(r"\.(.+)\.\d+\.tmp", name)
    if not m:
        return False
    if isinstance(allowed, str):
        return re.fullmatch(allowed, m.group(1)) is not None
    return m.group(1) in allowed


def _read_own_json(path: Path, fields: tuple[str, ...]) -> str | None:
    """What makes ``path`` not a JSON file of marginsim's (None when it is one)."""
    if path.is_symlink() or not path.is_file():
        return f"no {path.name}"
    try:
        doc = json.loads(read_regular_text(path))
    except (OSError, ValueError):
        return f"{path.name} is not JSON"
    if not isinstance(doc, dict):
        return f"{path.name} is not a JSON object"
    missing = [k for k in fields if k not in doc]
    if missing:
        return f"{path.name} lacks marginsim's fields ({', '.join(missing)})"
    return None


def _foreign_in(folder: Path, files: tuple[str, ...],
                folders: dict[str, Callable[[Path], list[str]]]) -> list[str]:
    """What in ``folder`` is none of ``files`` (or their temporaries, or the lock) and no
    folder of ``folders``, whose check lists what inside it marginsim did not write."""
    out = []
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if entry.is_symlink():
            out.append(f"{name}: a symbolic link")
        elif entry.is_dir() and name in folders:
            out += [f"{name}/{why}" for why in folders[name](entry)]
        elif not (entry.is_file() and (name in files or name == LOCK_NAME
                                       or _temporary_of(name, set(files)))):
            out.append(f"{name}: not a file or folder marginsim writes")
    return out


def _chunk_files(pattern: str) -> Callable[[Path], list[str]]:
    """The check of a per-chunk folder: only its own part files (and their temporaries)."""
    def check(folder: Path) -> list[str]:
        return [f"{p.name}: not a file marginsim writes there" for p in sorted(folder.iterdir())
                if p.is_symlink() or not p.is_file()
                or not (re.fullmatch(pattern, p.name) or _temporary_of(p.name, pattern))]
    return check


def _points(folder: Path) -> list[str]:
    """The check of a sweep's ``points/``: run directories, each holding only its own."""
    out = []
    for point in sorted(folder.iterdir()):
        if point.is_symlink() or not point.is_dir():
            out.append(f"{point.name}: not a point's run directory")
        else:
            out += [f"{point.name}/{why}"
                    for why in foreign_entries(point, manifest_required=False)]
    return out


def foreign_entries(run_dir: Path, manifest_required: bool = True) -> list[str]:
    """What in ``run_dir`` marginsim did not write (as ``"NAME: why"``), empty when the
    directory holds nothing but a run's own files."""
    why = _read_own_json(run_dir / "manifest.json", MANIFEST_FIELDS) \
        if manifest_required else None
    return ([why] if why else []) + _foreign_in(
        run_dir, RUN_FILES, {name: _chunk_files(pattern) for name, pattern in
                             RUN_FOLDERS.items()})


def _foreign_sweep_entries(sweep_dir: Path) -> list[str]:
    why = _read_own_json(sweep_dir / "sweep.json", SWEEP_FIELDS)
    return ([why] if why else []) + _foreign_in(sweep_dir, SWEEP_FILES, {"points": _points})


def check_replaceable(out_dir: Path, what: str) -> bool:
    """Whether ``--force`` has an old ``what`` (``"run"`` or ``"sweep"``) to replace.

    ``False`` when there is nothing to replace (no such path, or an empty directory);
    ``True`` for a directory that marginsim wrote, holding nothing else, that is neither
    the working directory nor one of its parents. Reads only; call it again once the
    directory is locked.

    Raises
    ------
    RunDirectoryError
        For anything else, naming what marginsim did not write: ``--force`` never deletes
        it.
    """
    if not out_dir.exists():
        return False
    if not out_dir.is_dir():
        raise RunDirectoryError(f"{out_dir}: exists and is not a directory; --force replaces "
                                f"only a {what} directory")
    real = replaced(out_dir)
    entries = [p for p in real.iterdir() if p.name != LOCK_NAME]
    if not entries:
        return False
    foreign = _foreign_sweep_entries(real) if what == "sweep" else foreign_entries(real)
    if what == "sweep" and (real / "points").is_dir():
        foreign += [f"points/{point.name}: in use by a live marginsim process"
                    for point in sorted((real / "points").iterdir())
                    if point.is_dir() and not point.is_symlink() and holder(point) is not None]
    if foreign:
        shown = "; ".join(foreign[:3]) + (f"; {len(foreign) - 3} more" if len(foreign) > 3
                                          else "")
        raise RunDirectoryError(f"{out_dir}: not a marginsim {what} directory, or it holds "
                                f"what marginsim did not write ({shown}); --force replaces "
                                "only marginsim's own directories: choose another --out or "
                                "remove it yourself")
    cwd = Path.cwd().resolve()
    if real.resolve() in (cwd, *cwd.parents):
        raise RunDirectoryError(f"{out_dir}: is the working directory or one of its parents; "
                                "--force will not replace it")
    return True


def replaced(out_dir: Path) -> Path:
    """The directory ``--force`` replaces: ``out_dir``, or the target of a symbolic link
    (the link is kept and then names the new run)."""
    return out_dir.resolve() if out_dir.is_symlink() else out_dir


def staging_dir(out_dir: Path) -> Path:
    """A fresh hidden sibling of ``out_dir`` (of its target, for a symbolic link) to write a
    replacement into."""
    real = replaced(out_dir)
    return real.parent / f".{real.name}.new-{os.getpid()}"


def leftover_staging(out_dir: Path) -> list[Path]:
    """Hidden siblings of ``out_dir`` that a ``--force`` run killed before its swap left:
    ``.NAME.new-PID`` (a partial replacement) and ``.NAME.old-PID`` (a whole old run, if it
    died between the two renames). They are never deleted automatically: the PID may be a
    live run on another host sharing the filesystem."""
    real = replaced(out_dir)
    if not real.parent.is_dir():
        return []
    return sorted(p for p in real.parent.glob(f".{real.name}.*-*")
                  if p.is_dir() and p.name.rsplit("-", 1)[0] in (f".{real.name}.new",
                                                                  f".{real.name}.old"))


@contextmanager
def signals_held(came: list[int]) -> Iterator[None]:
    """Record Ctrl-C and SIGTERM in ``came`` for the block instead of handling them; the
    caller hands them on (:func:`deliver`) where it is ready to. Python runs signal
    handlers in the main thread whichever thread the system delivers a signal to, so
    replacing the handlers covers every thread. Outside the main thread it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {signum: signal.signal(signum, lambda signum, frame: came.append(signum))
           for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)


def deliver(came: list[int]) -> None:
    """Hand the last signal recorded by :func:`signals_held` to the handler now in place."""
    if came:
        signal.raise_signal(came[-1])


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back for the block and handle them when it ends, so that a
    sequence of steps (two renames; a folder created and locked) is never cut in the
    middle (see :func:`signals_held`)."""
    came: list[int] = []
    try:
        with signals_held(came):
            yield
    finally:
        deliver(came)


def swap_in(staging: Path, real: Path, what: str, old_lock: RunLock) -> None:
    """Replace the directory ``real`` (what ``--force`` resolved and locked at its start,
    holding ``old_lock``) by the finished ``staging`` one.

    Just before, under the lock, ``real`` must still be the directory that was locked (not
    moved away and replaced) and still hold nothing but marginsim's own files (nothing of
    the user's was added meanwhile); otherwise nothing is replaced. The old directory is
    then renamed aside (``.NAME.old-PID``), the new one renamed into place, and only then is
    the old one deleted, so at every moment a whole run exists: under ``real``, or (if the
    process dies between the two renames) under the aside name. Ctrl-C and SIGTERM wait
    until both renames and the deletion are done.

    Raises
    ------
    RunDirectoryError
        When ``real`` changed while the new run was being written.
    """
    if not old_lock.still_held_here(real):
        raise RunDirectoryError(f"{real}: was moved or replaced while the new {what} was "
                                "being written; nothing was replaced")
    foreign = _foreign_sweep_entries(real) if what == "sweep" else foreign_entries(real)
    if foreign:
        raise RunDirectoryError(f"{real}: now holds what marginsim did not write "
                                f"({'; '.join(foreign[:3])}); nothing was replaced: move it "
                                "out and run again")
    aside = real.parent / f".{real.name}.old-{os.getpid()}"
    with signals_deferred():
        os.replace(real, aside)
        os.replace(staging, real)
        shutil.rmtree(aside)


def remove_temporaries(run_dir: Path) -> int:
    """Delete the temporary files (``.NAME.PID.tmp``) that interrupted writes left in a
    run directory that this process has locked; return how many."""
    n = 0
    for path in run_dir.rglob(".*.tmp"):
        if path.is_file() and not path.is_symlink() and re.fullmatch(r"\..+\.\d+\.tmp",
                                                                     path.name):
            path.unlink()
            n += 1
    return n

