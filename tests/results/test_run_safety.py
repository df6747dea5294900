"""Runs that cannot lie: the attacks on the run directory of issue #15, one test each.

Each test's docstring holds the attack's reproduction as it was found (before the fix).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

import simulator
from simulator import cli
from simulator.config.scenario import builtin_scenarios, load_scenario
from simulator.errors import RunDirectoryError
from simulator.execution import runner
from simulator.results import atomic as output
from simulator.results import lock as run_lock
from simulator.results import rundir as run_dir

from ..support.cli_checks import one_line
from ..support.run_dirs import SMALL, chunk_records, interrupted_run
from ..support.run_dirs import assert_same_run as _same

#: a flagship run that takes seconds (40 chunks), for live-run attacks
LONG = ["--paths", "4000", "--set", "simulation.chunk_paths=100", "--seed", "1"]


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "simulator", *args]


def _wait_for(predicate, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- 1 and 5: a lock per run directory ------------------------------------------------------

@pytest.mark.slow
def test_live_run_is_never_forced_resumed_or_verified(tmp_path, capsys):
    """Attack: ``marginsim run --seed 1 --out D &`` then, while it runs, ``marginsim run --seed
    2 --out D --force``: the folder was swapped away, the live run went on writing parts into
    the new folder and wrote a "complete" manifest over a mix of two scenarios (16 of 20
    ``paths/`` parts from the other seed), which ``verify`` passed; ``--resume`` against the
    live run deleted its temporary files and crashed it. Now both are refused naming the
    owner, ``verify`` says the run is still being written, and once the owner is killed
    ``--resume`` takes the lock over (with a warning) and finishes a run equal to an
    uninterrupted one."""
    out = tmp_path / "live"
    proc = subprocess.Popen(_cmd("run", "two-asset-crash", *LONG, "--out", str(out),
                                 "--quiet"), stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: chunk_records(out) >= 1)
        assert cli.main(["run", "two-asset-crash", *LONG, "--seed", "2", "--out", str(out),
                         "--force", "--quiet"]) == 2
        one_line(capsys, str(out), "in use by another marginsim process",
                 f"pid {proc.pid}", "marginsim run")
        assert cli.main(["run", "two-asset-crash", *LONG, "--out", str(out), "--resume",
                         "--quiet"]) == 2
        one_line(capsys, f"pid {proc.pid}")
        assert cli.main(["verify", str(out)]) == 1
        assert f"in use by a live marginsim process (pid {proc.pid}" in capsys.readouterr().out
        assert proc.poll() is None, "the live run must not be disturbed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (out / "summary.json").exists()
    assert cli.main(["run", "two-asset-crash", *LONG, "--out", str(out), "--resume",
                     "--quiet"]) == 0
    one_line(capsys, "warning:", "taking over the lock", f"pid {proc.pid}", "gone")
    assert not (out / run_lock.LOCK_NAME).exists()
    assert cli.main(["verify", str(out)]) == 0
    whole = tmp_path / "whole"
    assert cli.main(["run", "two-asset-crash", *LONG, "--out", str(whole), "--quiet",
                     "--jobs", "2"]) == 0
    _same(out, whole)


def test_lock_refuses_a_live_holder_and_takes_over_a_dead_one(tmp_path):
    """The lock itself: held by a live process, refused; that process killed (SIGKILL: no
    clean-up), taken over with a warning naming it; released, the file is gone."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; "
        "from simulator.results import lock as run_lock; "
        f"lock = run_lock.acquire(Path({str(tmp_path)!r}), 'test holder'); "
        "print('held', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirectoryError, match=f"pid {holder.pid} .*test holder"):
            run_lock.acquire(tmp_path, "second")
        assert run_lock.holder(tmp_path)["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    assert run_lock.holder(tmp_path) is None
    with pytest.warns(run_lock.RunDirectoryWarning, match=f"gone \\(pid {holder.pid}"):
        lock = run_lock.acquire(tmp_path, "third")
    assert run_lock.owner_alive(tmp_path, lock.token)
    assert not run_lock.owner_alive(tmp_path, "another token")
    lock.release()
    assert not (tmp_path / run_lock.LOCK_NAME).exists()
    assert not run_lock.owner_alive(tmp_path, lock.token)


# --- 2: --resume checks every chunk against its record ---------------------------------------


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flipped bit", "truncated", "deleted", "other scenario",
                                    "other scenario with its record"])
def test_resume_never_accepts_a_damaged_or_foreign_chunk(tmp_path, monkeypatch, capsys,
                                                         damage):
    """Attack: an interrupted run, one part damaged, then ``--resume``. It treated any
    existing part as finished: a flipped bit decoded silently to other numbers (92% of
    single-bit flips), and resume recomputed summary.json and accounts.parquet from it with
    fresh checksums; a truncated part gave a traceback; an ``events`` part copied from
    another scenario (another ``scenario_sha256`` in its metadata) was accepted; a deleted
    ``events`` part was not rewritten (exit 0). Now the chunk is run again, with a warning,
    and the result equals an uninterrupted run."""
    out = interrupted_run(tmp_path, monkeypatch)
    part = out / "events" / "part-00001.parquet"
    if damage == "flipped bit":
        _flip_byte(part)
    elif damage == "truncated":
        part.write_bytes(part.read_bytes()[:-100])
    elif damage == "deleted":
        part.unlink()
    else:
        other = tmp_path / "other"
        assert cli.main(["run", "two-asset-crash", *SMALL, "--set",
                         "venue.liquidation_fee_rate=0.02", "--out", str(other),
                         "--quiet"]) == 0
        shutil.copy(other / "events" / "part-00001.parquet", part)
        if damage.endswith("record"):
            shutil.copy(other / "chunks" / "chunk-00001.json", out / "chunks" / "chunk-00001.json")
    capsys.readouterr()
    assert cli.main(["run", "two-asset-crash", *SMALL, "--out", str(out), "--resume",
                     "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if damage != "deleted":
        assert f"warning: {out / 'chunks' / 'chunk-00001.json' if 'record' in damage else part}" \
            in err and "running chunk 1 again" in err, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["chunks_run"] == 2  # chunk 1 again, chunk 2 for the first time
    assert cli.main(["verify", str(out)]) == 0
    whole = tmp_path / "whole"
    assert cli.main(["run", "two-asset-crash", *SMALL, "--out", str(whole), "--quiet"]) == 0
    _same(out, whole)


def test_resume_refuses_a_file_of_no_chunk(tmp_path, monkeypatch, capsys):
    """A part that belongs to no chunk of the run (readers of ``paths/`` would include it
    in every figure) makes ``--resume`` refuse, naming it; it is not deleted."""
    out = interrupted_run(tmp_path, monkeypatch)
    extra = out / "paths" / "part-00009.parquet"
    shutil.copy(out / "paths" / "part-00000.parquet", extra)
    capsys.readouterr()
    assert cli.main(["run", "two-asset-crash", *SMALL, "--out", str(out), "--resume"]) == 2
    one_line(capsys, str(extra), "remove them, then --resume")
    assert extra.is_file()


# --- 3: --force replaces only what marginsim wrote -------------------------------------------

def test_force_never_deletes_a_folder_that_is_not_a_run(tmp_path, capsys):
    """Attack: ``mkdir -p ext/src; echo '{"manifest_version":3}' > ext/manifest.json;
    marginsim run deterministic-gap --out ext --force`` deleted ``ext/src`` (any folder with
    a file called manifest.json was replaced, through symbolic links too). Now refused,
    nothing touched; so is a real run holding a file of the user's."""
    ext = tmp_path / "ext"
    (ext / "src").mkdir(parents=True)
    (ext / "src" / "main.js").write_text("code")
    (ext / "manifest.json").write_text('{"manifest_version":3}')
    link = tmp_path / "link"
    link.symlink_to(ext, target_is_directory=True)
    for target in (ext, link):
        assert cli.main(["run", "deterministic-gap", "--out", str(target), "--force"]) == 2
        one_line(capsys, str(target), "not a marginsim run directory", "lacks marginsim's "
                 "fields", "remove it yourself")
        assert (ext / "src" / "main.js").read_text() == "code"
    run = tmp_path / "run"
    assert cli.main(["run", "deterministic-gap", "--out", str(run), "--quiet"]) == 0
    (run / "events" / "notes.txt").write_text("mine")
    assert cli.main(["run", "deterministic-gap", "--out", str(run), "--force"]) == 2
    one_line(capsys, "events/notes.txt")
    assert (run / "events" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ext", "link", "run"]


# --- 4: workers die with their driver, and never write after it ------------------------------

def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_workers_die_with_a_killed_driver(tmp_path):
    """Attack: ``marginsim run ... --jobs 2 &``, then ``kill -9`` of the main process: the
    loky workers finished their chunk about 20 s later, wrote it, then blocked for good
    (about 0.5 GB each); in a directory removed and reused meanwhile they overwrote the new
    run's parts. Now they are gone within seconds and write nothing more."""
    out = tmp_path / "run"
    proc = subprocess.Popen(_cmd("run", "two-asset-crash", "--paths", "16000", "--set",
                                 "simulation.chunk_paths=4000", "--jobs", "2", "--out",
                                 str(out), "--quiet"), stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: len([c for c in _children(proc.pid)
                               if "loky" in Path(f"/proc/{c}/cmdline").read_text()]) >= 2)
        workers = [c for c in _children(proc.pid)
                   if "loky" in Path(f"/proc/{c}/cmdline").read_text()]
        time.sleep(1.5)  # the workers are computing their first chunks
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed = time.monotonic()
    _wait_for(lambda: not any(_alive(w) for w in workers), seconds=10)
    gone_after = time.monotonic() - killed
    assert gone_after < 5, gone_after
    files = sorted(p.name for p in out.rglob("*"))
    time.sleep(2)
    assert sorted(p.name for p in out.rglob("*")) == files


def test_a_chunk_is_not_written_once_its_run_lost_the_directory(tmp_path):
    """A worker whose driver is gone (its lock free) or whose directory another run has
    taken over (another token in the lock) writes nothing."""
    sc = load_scenario("deterministic-gap", ["simulation.paths=20"])
    out = tmp_path / "run"
    for sub in ("paths", "events", "chunks"):
        (out / sub).mkdir(parents=True)
    ctx = runner.ChunkContext.build(sc, out, 0, simulator.__version__)
    task = runner.plan_chunks(20, sc.simulation.chunk_paths, sc.simulation.seed)[0]
    lock = run_lock.acquire(out, "the new run")  # another run took the directory over
    with pytest.raises(RunDirectoryError, match="not written"):
        runner.run_chunk(dataclasses.replace(ctx, owner_token="the old run's token"), task)
    lock.release()  # the owner is gone
    with pytest.raises(RunDirectoryError, match="not written"):
        runner.run_chunk(dataclasses.replace(ctx, owner_token=lock.token), task)
    assert not list(out.rglob("*.parquet"))


# --- 6: the default directory stays inside runs/ ---------------------------------------------

@pytest.mark.parametrize("name", ["../../escaped", "/tmp/marginsim-abs-escape", "a/b/c",
                                  "..", "-rf"])
def test_scenario_name_never_escapes_runs(tmp_path, monkeypatch, name):
    """Attack: ``name = "../../escaped"`` (or an absolute name, or ``a/b/c``) decided where
    the default run directory went; ``sweep`` shares the code. Now the name is a slug and
    the directory is always directly inside ``runs/`` under the working directory."""
    text = Path(builtin_scenarios()["deterministic-gap"]).read_text()
    scenario = tmp_path / "s.toml"
    lines = [f"name = {json.dumps(name)}" if line.startswith("name =") else line
             for line in text.splitlines()]
    scenario.write_text("\n".join(lines) + "\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert cli.main(["run", str(scenario), "--quiet", "--paths", "10"]) == 0
    assert cli.main(["sweep", str(scenario), "--quiet", "--paths", "10", "--grid",
                     "venue.liquidation_fee_rate=0.01"]) == 0
    made = sorted(p.name for p in (work / "runs").iterdir())
    assert len(made) == 2 and all("/" not in m and not m.startswith((".", "-")) for m in made)
    assert sorted(p.name for p in work.iterdir()) == ["runs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml", "work"]
    assert not Path("/tmp/marginsim-abs-escape").exists()
    assert run_dir.slug(name) in made[0]


# --- 8: one line and exit 2, 130 or 143 --------------------------------------------------

_REAL_RUN_CHUNK = runner.run_chunk


def _die_in_chunk_1(ctx, task):
    """A chunk function whose worker is killed, as the out-of-memory killer would."""
    if task.index == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return _REAL_RUN_CHUNK(ctx, task)


@pytest.mark.slow
def test_killed_worker_is_one_line_and_the_run_resumable(tmp_path, monkeypatch, capsys):
    """Attack: a worker killed by the out-of-memory killer: a ``TerminatedWorkerError``
    traceback. Now one line (exit 2) saying a worker died, what to lower and how to
    finish; ``--resume`` finishes the run."""
    out = tmp_path / "run"
    monkeypatch.setattr(runner, "run_chunk", _die_in_chunk_1)
    assert cli.main(["run", "two-asset-crash", *SMALL, "--jobs", "2", "--out", str(out),
                     "--quiet"]) == 2
    monkeypatch.undo()
    line = one_line(capsys, "a worker process died", "lower simulation.chunk_paths or --jobs")
    if chunk_records(out):
        assert "--resume" in line
        assert cli.main(["run", "two-asset-crash", *SMALL, "--out", str(out), "--resume",
                         "--quiet"]) == 0
        assert cli.main(["verify", str(out)]) == 0
    else:
        assert "nothing was kept" in line and not out.exists()


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True)
    return done.returncode == 0


@pytest.mark.parametrize("size", ["4k", "160k"])
def test_disk_full_is_one_line_and_leaves_nothing_half_written(tmp_path, capsys, monkeypatch,
                                                               size):
    """Attack: a run on a full disk: 20-58 lines of ``OSError: [Errno 28]`` traceback, and a
    disk full at the start left a folder holding only a temporary manifest that nothing
    could resume or replace. Now a disk that is too small is refused up front, with the
    figure; one that fills anyway (the estimate is a lower bound; here it is bypassed) ends
    with one line naming the file and the error (exit 2): a run that kept no chunk leaves
    nothing, one that kept some says how to finish."""
    from simulator.execution import budget

    small = tmp_path / "small"
    if not _mount_tmpfs(small, size):
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        out = small / "run"
        args = ["run", "two-asset-crash", "--paths", "400", "--set",
                "simulation.chunk_paths=50", "--out", str(out), "--quiet"]
        if size == "4k":
            assert cli.main(args) == 2
            one_line(capsys, "the run writes at least", "choose another --out")
            assert list(small.iterdir()) == []
        monkeypatch.setattr(budget, "_free_disk_bytes", lambda path: 1 << 40)
        status = cli.main(args)
        assert status == 2
        line = one_line(capsys, "No space left on device")
        if chunk_records(out):
            assert "finish the run with: marginsim run" in line
            assert not [p for p in out.rglob("*.tmp")]
        else:
            assert "nothing was kept" in line
            assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=False)


def _complete(out: Path) -> bool:
    try:
        return json.loads((out / "manifest.json").read_text())["status"] == "complete"
    except (OSError, ValueError, KeyError):
        return False


def _signal_sweep(tmp_path: Path, signum: int, delays: list[float]) -> list[int]:
    statuses = []
    for k, delay in enumerate(delays):
        out = tmp_path / f"r{k}"
        proc = subprocess.Popen(_cmd("run", "two-asset-crash", *SMALL, "--out", str(out),
                                     "--quiet"), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        if delay < 0:  # the last moment: the final manifest is written
            _wait_for(lambda: _complete(out) or proc.poll() is not None)  # noqa: B023
        else:
            _wait_for(lambda: out.exists() or proc.poll() is not None)  # noqa: B023
            time.sleep(delay)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, err
        assert len(err.strip().splitlines()) <= 1, err
        assert proc.returncode in (0, 128 + signum), (proc.returncode, err)
        statuses.append(proc.returncode)
        assert not [p for p in tmp_path.rglob("*.tmp")]
        if proc.returncode == 0 or "the run is complete" in err:
            assert cli.main(["verify", str(out)]) == 0
        elif chunk_records(out):
            assert "finish the run with: marginsim run" in err
        else:
            assert not out.exists() and "nothing was kept" in err
    return statuses


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_at_any_moment_is_one_line(tmp_path, capsys, signum):
    """Attack: Ctrl-C in the last moment of a run printed a traceback and exited 0; SIGTERM
    was not handled (exit 143 with temporary files left). Now, whenever the signal comes,
    the exit is 0 (the run was complete) or 128 + the signal with one line saying what was
    kept, with no traceback and no temporary file."""
    statuses = _signal_sweep(tmp_path, signum, [0.0, 0.05, 0.2, 0.5, 1.0, -1])
    assert 128 + signum in statuses


def test_force_interrupted_by_sigterm_leaves_the_old_run_and_no_staging(tmp_path, capsys):
    """SIGTERM during a --force run: the old run stays whole and the staging folder
    ``.NAME.new-PID`` is removed (it was left before)."""
    out = tmp_path / "run"
    assert cli.main(["run", "two-asset-crash", *SMALL, "--out", str(out), "--quiet"]) == 0
    proc = subprocess.Popen(_cmd("run", "two-asset-crash", *LONG, "--out", str(out),
                                 "--force", "--quiet"), stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: any(p.name.startswith(".run.new-") and chunk_records(p)
                          for p in tmp_path.iterdir()))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "still holds the old run" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert cli.main(["verify", str(out)]) == 0


def test_verify_of_a_manifest_claiming_a_billion_chunks(tmp_path, capsys):
    """Attack: ``verify`` of a manifest claiming 1e9 chunks ran out of memory building the
    layout. Now one problem line, at once."""
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"status": "running", "paths": 4096 * 10**9, "chunk_paths": 4096, "n_chunks": 10**9,
         "scenario_sha256": "0" * 64, "seed": 1}))
    start = time.monotonic()
    assert cli.main(["verify", str(tmp_path)]) == 1
    assert time.monotonic() - start < 5
    assert "more than a run can have" in capsys.readouterr().out


# --- 9: report checks before it draws; verify reads only inside the run ----------------------

def test_report_refuses_what_verify_rejects(tmp_path, capsys):
    """Attack: an edited ``summary.json`` was printed by ``report`` as it stood, and figures
    were drawn over parts that ``verify`` rejects. Now ``report`` refuses (exit 2, one
    line), or with ``--unverified`` reports with one warning line."""
    out = tmp_path / "run"
    assert cli.main(["run", "deterministic-gap", "--paths", "30", "--out", str(out),
                     "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    summary["metrics"]["bad_debt_mean"]["estimate"] = 0.0
    (out / "summary.json").write_text(json.dumps(summary))
    capsys.readouterr()
    assert cli.main(["report", "--no-html", str(out)]) == 2
    one_line(capsys, "fails verification", "summary.json: checksum differs",
             "--unverified")
    assert cli.main(["report", "--no-html", "--unverified", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "warning:" in captured.err
    assert "P(any liquidation)" in captured.out


def test_verify_never_reads_outside_the_run(tmp_path, capsys, monkeypatch):
    """Attack: a crafted manifest listing ``../secret`` made ``verify`` hash files outside
    the run folder (a symbolic link inside did too). Now both are problems, never read."""
    out = tmp_path / "run"
    assert cli.main(["run", "deterministic-gap", "--paths", "30", "--out", str(out),
                     "--quiet"]) == 0
    secret = tmp_path / "secret"
    secret.write_text("not yours")
    read: list[Path] = []
    from simulator.results import verify as verify_module

    real = verify_module.sha256_file
    monkeypatch.setattr(verify_module, "sha256_file",
                        lambda p: read.append(Path(p).resolve()) or real(p))
    manifest = json.loads((out / "manifest.json").read_text())
    crafted = dict(manifest, files={**manifest["files"], "../secret": "0" * 64})
    (out / "manifest.json").write_text(json.dumps(crafted))
    capsys.readouterr()
    assert cli.main(["verify", str(out)]) == 1
    assert "outside the run directory" in capsys.readouterr().out
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "paths" / "part-00000.parquet").unlink()
    (out / "paths" / "part-00000.parquet").symlink_to(secret)
    assert cli.main(["verify", str(out)]) == 1
    assert "a symbolic link" in capsys.readouterr().out
    assert secret.resolve() not in read
    assert all(str(p).startswith(str(out.resolve())) for p in read)


# --- 10: messages and durability ------------------------------------------------------------

def test_out_naming_a_file_says_so(tmp_path, capsys):
    """``--out`` naming a file said "exists and is not empty"."""
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert cli.main(["run", "deterministic-gap", "--out", str(a_file)]) == 2
    one_line(capsys, str(a_file), "exists and is not a directory")
    assert a_file.read_text() == "x"


def test_files_are_flushed_before_and_after_the_rename(tmp_path, monkeypatch):
    """``write_parquet`` and ``write_json`` never called fsync before renaming: a power loss
    could leave a renamed but empty file. Now: the file is flushed before the rename and
    its folder after, as databases do."""
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append("fsync-dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync-file")
        real_fsync(fd)

    def replace(a, b):
        calls.append("rename")
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    record = output.write_parquet(pa.table({"x": [1, 2, 3]}), tmp_path / "t.parquet", {})
    assert calls == ["fsync-file", "rename", "fsync-dir"]
    assert record["rows"] == 3 and record["sha256"] == output.sha256_file(tmp_path / "t.parquet")
    calls.clear()
    output.write_json({"a": 1}, tmp_path / "t.json")
    assert calls == ["fsync-file", "rename", "fsync-dir"]


def test_resume_hint_of_an_interrupted_sweep_point_holds_its_grid_values(tmp_path,
                                                                          monkeypatch, capsys):
    """The ``--resume`` command that ``verify`` printed for an interrupted sweep point
    omitted the grid's ``--set``: followed as printed, it was refused (another scenario).
    Now it holds every ``--set`` of the point, and following it finishes the point."""
    out = tmp_path / "sweep"
    real = runner.run_chunk

    def dying(ctx, task):
        if "0.02" in ctx.out_dir.name and task.index == 1:
            raise KeyboardInterrupt
        return real(ctx, task)

    monkeypatch.setattr(runner, "run_chunk", dying)
    assert cli.main(["sweep", "two-asset-crash", *SMALL, "--grid",
                     "venue.maintenance_margin_rate=0.01,0.02", "--out", str(out),
                     "--quiet"]) == 130
    monkeypatch.undo()
    point = next((out / "points").glob("001-*"))
    capsys.readouterr()
    assert cli.main(["verify", str(point)]) == 1
    hint = capsys.readouterr().out.strip().splitlines()[-1].split("it can be resumed: ")[1]
    assert "--set venue.maintenance_margin_rate=0.02" in hint
    args = shlex.split(hint)
    assert args[:2] == ["marginsim", "run"]
    assert cli.main([*args[1:], "--quiet"]) == 0
    assert cli.main(["verify", str(point)]) == 0
