"""Run directories under concurrent change: what a review of issue #15's fixes found.

Each test's docstring holds the reproduction as it was found.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from simulator import cli
from simulator.execution import runner

from ..support.cli_checks import one_line
from ..support.run_dirs import SMALL, interrupted_run


def _hooked(monkeypatch, hook):
    """Run ``hook(ctx)`` before chunk 0 of the next run (in this process: --jobs 1)."""
    real = runner.run_chunk

    def chunk(ctx, task):
        if task.index == 0:
            hook(ctx)
        return real(ctx, task)

    monkeypatch.setattr(runner, "run_chunk", chunk)


def test_a_failed_run_never_deletes_what_others_put_in_a_folder_it_created(tmp_path,
                                                                         monkeypatch, capsys):
    """Review: ``run --out np/a`` (``np`` new), then ``np/b`` (another run) and
    ``np/notes.txt`` written meanwhile, then Ctrl-C before the first chunk completes:
    ``np`` was deleted with everything in it. Now only the run's own folder goes, and a
    parent it created only while it is empty."""
    notes = tmp_path / "np" / "notes.txt"

    def meanwhile(ctx):
        notes.write_text("mine")
        raise KeyboardInterrupt

    _hooked(monkeypatch, meanwhile)
    assert cli.main(["run", "two-asset-crash", *SMALL, "--out", str(tmp_path / "np" / "a"),
                     "--quiet"]) == 130
    assert notes.read_text() == "mine"
    assert sorted(p.name for p in (tmp_path / "np").iterdir()) == ["notes.txt"]
    # with nothing else there, the folders it created are removed
    _hooked(monkeypatch, lambda ctx: (_ for _ in ()).throw(KeyboardInterrupt))
    assert cli.main(["run", "two-asset-crash", *SMALL, "--out",
                     str(tmp_path / "new" / "deep" / "a"), "--quiet"]) == 130
    assert not (tmp_path / "new").exists()
    capsys.readouterr()


def _old_run(tmp_path: Path, name: str = "R") -> Path:
    out = tmp_path / name
    assert cli.main(["run", "deterministic-gap", "--paths", "20", "--out", str(out),
                     "--quiet"]) == 0
    return out


def test_force_never_swaps_into_a_target_that_changed(tmp_path, monkeypatch, capsys):
    """Review: ``--force --out latest`` (a link to ``runs/a``), and the link retargeted to
    ``mydata`` during the run: ``mydata`` was deleted and replaced by the new run. And
    ``mv R R.bak; mkdir R`` during ``--force R``: the new, unchecked ``R`` was deleted. Now
    the directory checked and locked at the start is the one replaced, or nothing is."""
    runs = tmp_path / "runs"
    runs.mkdir()
    old = _old_run(runs, "a")
    mydata = tmp_path / "mydata"
    mydata.mkdir()
    (mydata / "thesis.tex").write_text("precious")
    link = tmp_path / "latest"
    link.symlink_to(old, target_is_directory=True)

    def retarget(ctx):
        link.unlink()
        link.symlink_to(mydata, target_is_directory=True)

    _hooked(monkeypatch, retarget)
    assert cli.main(["run", "two-asset-crash", *SMALL, "--out", str(link), "--force",
                     "--quiet"]) == 0
    assert (mydata / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in mydata.iterdir()) == ["thesis.tex"]
    assert json.loads((old / "manifest.json").read_text())["scenario_name"] == "two-asset-crash"
    assert cli.main(["verify", str(old)]) == 0

    target = _old_run(tmp_path)
    before = json.loads((target / "manifest.json").read_text())

    def move_away(ctx):
        target.rename(tmp_path / "R.bak")
        target.mkdir()
        (target / "new.txt").write_text("mine")

    _hooked(monkeypatch, move_away)
    capsys.readouterr()
    assert cli.main(["run", "two-asset-crash", *SMALL, "--out", str(target), "--force",
                     "--quiet"]) == 2
    one_line(capsys, "was moved or replaced", "nothing was replaced")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert json.loads((tmp_path / "R.bak" / "manifest.json").read_text()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".R.")]


def test_force_never_deletes_files_added_while_it_ran(tmp_path, monkeypatch, capsys):
    """Review: ``--force fx`` and, while it ran, ``fx/my-notes.txt`` and ``fx/plots/``
    written: both silently deleted at the swap. Now the swap is refused, both runs kept."""
    target = _old_run(tmp_path, "fx")

    def add(ctx):
        (target / "my-notes.txt").write_text("mine")
        (target / "plots").mkdir()

    _hooked(monkeypatch, add)
    assert cli.main(["run", "two-asset-crash", *SMALL, "--out", str(target), "--force",
                     "--quiet"]) == 2
    one_line(capsys, "my-notes.txt", "nothing was replaced")
    assert (target / "my-notes.txt").read_text() == "mine" and (target / "plots").is_dir()
    assert (target / "summary.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fx"]


SWEEP = ["sweep", "deterministic-gap", "--paths", "20", "--grid",
         "venue.liquidation_fee_rate=0.01,0.02", "--quiet"]


def test_sweep_force_refuses_while_a_point_is_in_use(tmp_path, capsys):
    """Review: a live ``run --force`` into a point of a sweep, then ``sweep --force`` of the
    sweep: not refused, and the live run died ("chunk 5 not written"). Now refused."""
    out = tmp_path / "S"
    assert cli.main([*SWEEP, "--out", str(out)]) == 0
    point = next((out / "points").iterdir())
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from pathlib import Path; from simulator.results import lock as run_lock; "
        f"lock = run_lock.acquire(Path({str(point)!r}), 'marginsim run --force'); "
        "print('held', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert cli.main([*SWEEP, "--out", str(out), "--force"]) == 2
        one_line(capsys, f"points/{point.name}: in use by a live marginsim process")
    finally:
        holder.kill()
        holder.wait()
    assert cli.main([*SWEEP, "--out", str(out), "--force"]) == 0


def test_verify_catches_an_edited_sweep_table_or_a_replaced_point(tmp_path, capsys):
    """Review: ``sweep.parquet`` edited (``bad_debt_mean`` x 100), or a point replaced by
    another run (``run --set venue.liquidation_fee_rate=0.05 --seed 7 --out POINT
    --force``): ``verify`` said ok and ``report`` printed the numbers. Now both are
    problems; a point directory the table does not list too."""
    out = tmp_path / "sw"
    assert cli.main([*SWEEP, "--out", str(out)]) == 0
    assert cli.main(["verify", str(out)]) == 0
    table_path = out / "sweep.parquet"
    table = pq.read_table(table_path)
    column = table.column_names.index("bad_debt_mean")
    edited = table.set_column(column, "bad_debt_mean",
                              pc.multiply(table.column("bad_debt_mean"), 100.0))
    original = table_path.read_bytes()
    pq.write_table(edited, table_path)
    capsys.readouterr()
    assert cli.main(["verify", str(out)]) == 1
    assert "sweep.parquet: checksum differs from sweep.json" in capsys.readouterr().out
    assert cli.main(["report", "--no-html", str(out)]) == 2
    table_path.write_bytes(original)
    point = next((out / "points").iterdir())
    assert cli.main(["run", "deterministic-gap", "--paths", "20", "--set",
                     "venue.liquidation_fee_rate=0.05", "--seed", "7", "--out", str(point),
                     "--force", "--quiet"]) == 0
    (out / "points" / "999-extra").mkdir()
    capsys.readouterr()
    assert cli.main(["verify", str(out)]) == 1
    printed = capsys.readouterr().out
    assert f"{point / 'manifest.json'}: checksum differs from sweep.json" in printed
    assert "999-extra: a point directory that sweep.parquet does not list" in printed


@pytest.mark.parametrize(("key", "value", "status"), [
    ("scenario_sha256", None, 1), ("scenario_resolved", [1], 1),
    ("scenario_resolved", {"simulation": 5}, 0), ("layout_version", "2", 1),
    ("rows", {"accounts.parquet": "x"}, 1), ("seed", "7", 1), ("files", {"summary.json": 1}, 1),
])
def test_verify_of_malformed_manifest_fields_is_a_problem_line(tmp_path, capsys, key, value,
                                                               status):
    """Review: a manifest without ``scenario_sha256``, with ``scenario_resolved`` not a
    table, ``layout_version`` a string or a row count a string made ``verify`` (and so
    ``report``) fail with a Python traceback. Now one problem line, exit 1 (a resolved
    scenario without a ``simulation`` table only leaves the saved prices' row count
    unchecked: nothing is saved here, so the run verifies)."""
    out = _old_run(tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    if value is None:
        del manifest[key]
    else:
        manifest[key] = value
    (out / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert cli.main(["verify", str(out)]) == status
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "manifest.json" in captured.out if status else captured.out.startswith("ok:")


def test_verify_never_reads_through_a_linked_folder(tmp_path, capsys, monkeypatch):
    """Review: with ``run/chunks`` a symbolic link to another run's ``chunks/``, ``verify``
    reported the link but hashed the files through it."""
    from simulator.results import verify as verify_module

    out, other = _old_run(tmp_path, "run"), _old_run(tmp_path, "other")
    shutil.rmtree(out / "chunks")
    (out / "chunks").symlink_to(other / "chunks", target_is_directory=True)
    read: list[Path] = []
    real = verify_module.sha256_file
    monkeypatch.setattr(verify_module, "sha256_file",
                        lambda p: read.append(Path(p).resolve()) or real(p))
    capsys.readouterr()
    assert cli.main(["verify", str(out)]) == 1
    assert "reached through a symbolic link" in capsys.readouterr().out
    assert not [p for p in read if str(p).startswith(str(other.resolve()))]


def test_resume_refuses_another_version(tmp_path, monkeypatch, capsys):
    """Review: a run interrupted under one marginsim version and resumed under another
    mixed the two engines' chunks and verified. Now refused."""
    out = interrupted_run(tmp_path, monkeypatch)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["versions"]["marginsim"] = "0.0.1"
    (out / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert cli.main(["run", "two-asset-crash", *SMALL, "--out", str(out), "--resume"]) == 2
    one_line(capsys, "written by marginsim 0.0.1")
