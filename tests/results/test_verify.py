"""``marginsim verify``: a fresh run passes; every kind of damage is reported, one line per
problem, with exit status 1; an interrupted run is reported as resumable, and passes once
resumed; bad input exits 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from simulator import cli
from simulator.execution import runner

ARGS = ["two-asset-crash", "--paths", "100", "--seed", "4", "--save-prices", "50", "--set",
        "simulation.steps=24", "--set", "simulation.chunk_paths=40", "--quiet"]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("verify") / "run"
    assert cli.main(["run", *ARGS, "--out", str(out)]) == 0
    return out


@pytest.fixture
def damaged(fresh, tmp_path) -> Path:
    """A copy of the fresh run to damage."""
    out = tmp_path / "copy"
    shutil.copytree(fresh, out)
    return out


def _verify(path: Path, capsys) -> tuple[int, list[str], str]:
    status = cli.main(["verify", str(path)])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


def test_fresh_run_verifies(fresh, capsys):
    status, lines, _ = _verify(fresh, capsys)
    assert status == 0
    # 3 x (paths, events, chunks/accounts, chunks/pnl) + 2 x (prices, prices_no_impact)
    # + 3 chunk records (chunks/chunk-NNNNN.json) + accounts.parquet + summary.json
    assert lines == [f"ok: {fresh}: complete run, 3 chunk(s), 100 paths, 21 files checked"]


def test_manifest_row_counts_match_the_files(fresh):
    """``rows`` lists every Parquet file with its row count, counted here by pyarrow."""
    manifest = json.loads((fresh / "manifest.json").read_text())
    parquet = sorted(p.relative_to(fresh).as_posix() for p in fresh.rglob("*.parquet"))
    assert sorted(manifest["rows"]) == parquet
    for rel, n in manifest["rows"].items():
        assert pq.read_table(fresh / rel).num_rows == n, rel
    # 100 paths in chunks of 40, 40, 20; prices: the first 50 paths x 25 marks
    assert [manifest["rows"][f"paths/part-0000{c}.parquet"] for c in range(3)] == [40, 40, 20]
    assert manifest["rows"]["prices/part-00000.parquet"] == 40 * 25
    assert manifest["rows"]["prices/part-00001.parquet"] == 10 * 25
    assert manifest["rows"]["prices_no_impact/part-00001.parquet"] == 10 * 25
    assert manifest["rows"]["accounts.parquet"] == 3003


def test_truncated_part(damaged, capsys):
    part = damaged / "events" / "part-00001.parquet"
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    status, lines, err = _verify(damaged, capsys)
    assert status == 1
    assert lines == [f"{part}: checksum differs from manifest.json (the file was changed or "
                     "is corrupt)",
                     f"{part}: unreadable Parquet file (truncated or corrupt): " +
                     lines[1].split("(truncated or corrupt): ", 1)[1]]
    assert "2 problem(s)" in err


def test_missing_part(damaged, capsys):
    part = damaged / "paths" / "part-00002.parquet"
    part.unlink()
    status, lines, _ = _verify(damaged, capsys)
    assert status == 1
    assert lines == [f"{part}: missing (listed in manifest.json)"]


def test_edited_summary(damaged, capsys):
    path = damaged / "summary.json"
    summary = json.loads(path.read_text())
    summary["metrics"]["bad_debt_mean"]["estimate"] = 0.0
    path.write_text(json.dumps(summary, indent=2) + "\n")
    status, lines, _ = _verify(damaged, capsys)
    assert status == 1
    assert lines == [f"{path}: checksum differs from manifest.json (the file was changed or "
                     "is corrupt)"]


def test_flipped_byte_in_a_part(damaged, capsys):
    part = damaged / "prices" / "part-00000.parquet"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    status, lines, _ = _verify(damaged, capsys)
    assert status == 1
    assert lines[0] == (f"{part}: checksum differs from manifest.json (the file was changed "
                        "or is corrupt)")
    assert all(line.startswith(str(part)) for line in lines)


def test_wrong_row_count_and_stray_files(damaged, capsys):
    """A part rewritten with fewer rows (checksum updated to hide it) is caught by the row
    counts and by its chunk's record, which still holds the checksum it was written with; a
    left-over temporary file and an extra part are caught too."""
    part = damaged / "paths" / "part-00000.parquet"
    pq.write_table(pq.read_table(part).slice(0, 39), part)
    manifest_path = damaged / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    from simulator.results.atomic import sha256_file

    manifest["files"]["paths/part-00000.parquet"] = sha256_file(part)
    manifest_path.write_text(json.dumps(manifest))
    tmp = damaged / "events" / ".part-00002.parquet.123.tmp"
    tmp.write_bytes(b"half")
    extra = damaged / "paths" / "part-00007.parquet"
    shutil.copy(damaged / "paths" / "part-00001.parquet", extra)
    status, lines, _ = _verify(damaged, capsys)
    assert status == 1
    assert sorted(lines) == sorted([
        f"{part}: 39 rows, manifest.json says 40",
        f"{damaged / 'chunks' / 'chunk-00000.json'}: does not match the run (another "
        "checksum of paths/part-00000.parquet than manifest.json)",
        f"{tmp}: stray temporary file left by an interrupted write",
        f"{extra}: unexpected file, part of none of the run's 3 chunks (readers of paths/ "
        "would include it)"])


def test_interrupted_run_is_reported_resumable(tmp_path, capsys, monkeypatch):
    """Chunk 2 of 3 dies after writing its events part (and a temporary file): verify says
    the run is incomplete and how to resume it; after --resume it verifies."""
    out = tmp_path / "killed"
    real = runner.run_chunk

    def dying(ctx, task):
        if task.index < 2:
            return real(ctx, task)
        (ctx.out_dir / "events" / "part-00002.parquet").write_bytes(b"")  # replaced below
        shutil.copy(ctx.out_dir / "events" / "part-00000.parquet",
                    ctx.out_dir / "events" / "part-00002.parquet")
        (ctx.out_dir / "paths" / ".part-00002.parquet.99.tmp").write_bytes(b"PAR1")
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_chunk", dying)
    assert cli.main(["run", *ARGS, "--out", str(out)]) == 130
    monkeypatch.undo()
    capsys.readouterr()
    status, lines, _ = _verify(out, capsys)
    assert status == 1
    tmp = out / "paths" / ".part-00002.parquet.99.tmp"
    assert lines[0] == (f"{tmp}: stray temporary file left by an interrupted write "
                        "(--resume deletes it)")
    assert lines[1].startswith(f"{out}: chunk 2 is partly written (paths/part-00002.parquet,")
    assert lines[2].startswith(f"{out}: incomplete run (manifest status 'running'): 2 of 3 "
                               "chunks complete")
    assert "it can be resumed: marginsim run" in lines[2] and "--resume" in lines[2]
    assert len(lines) == 3
    assert cli.main(["run", *ARGS, "--out", str(out), "--resume"]) == 0
    status, lines, _ = _verify(out, capsys)
    assert status == 0, lines
    assert not tmp.exists()


def test_bad_input_exits_2(tmp_path, capsys):
    assert cli.main(["verify", str(tmp_path / "nope")]) == 2
    assert "no such directory" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("x")
    assert cli.main(["verify", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"marginsim: error: {tmp_path}: not a run or sweep directory (no "
                   "manifest.json or sweep.json)\n")


def test_unreadable_manifest(damaged, capsys):
    (damaged / "manifest.json").write_text("{not json")
    status, lines, _ = _verify(damaged, capsys)
    assert status == 1
    assert len(lines) == 1 and lines[0].startswith(f"{damaged / 'manifest.json'}: cannot be "
                                                   "read")


def test_sweep_points_are_verified(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert cli.main(["sweep", "deterministic-gap", "--grid",
                     "venue.maintenance_margin_rate=0.01,0.02", "--out", str(out),
                     "--quiet"]) == 0
    status, lines, _ = _verify(out, capsys)
    assert status == 0
    assert lines == [f"ok: {out}: sweep, 2 point(s), each a verified run"]
    summary = next((out / "points").glob("001-*")) / "summary.json"
    summary.write_text(summary.read_text().replace("\"paths\": 1", "\"paths\": 2"))
    status, lines, _ = _verify(out, capsys)
    assert status == 1
    assert lines == [f"{summary}: checksum differs from manifest.json (the file was changed "
                     "or is corrupt)"]


def test_sweep_json_not_an_object(tmp_path, capsys):
    """A sweep.json holding JSON that is no object is a problem, not a pass (nor a crash)."""
    out = tmp_path / "sweep"
    (out / "points").mkdir(parents=True)
    (out / "sweep.json").write_text("[1]")
    status, lines, _ = _verify(out, capsys)
    assert status == 1
    assert lines[0] == (f"{out / 'sweep.json'}: not a marginsim sweep.json (expected a JSON "
                        "object, got list)")


@pytest.mark.parametrize("key, value", [("paths", "many"), ("n_chunks", 0),
                                        ("rows", [1]), ("files", "x")])
def test_manifest_with_wrong_types(damaged, capsys, key, value):
    """A manifest whose fields have the wrong type is one problem line (these raised)."""
    manifest = json.loads((damaged / "manifest.json").read_text())
    manifest[key] = value
    (damaged / "manifest.json").write_text(json.dumps(manifest))
    status, lines, _ = _verify(damaged, capsys)
    assert status == 1
    assert lines == [f"{damaged / 'manifest.json'}: not a marginsim manifest ({key} = "
                     f"{value!r}); nothing else can be checked"]
