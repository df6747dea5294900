"""Run directories for the tests of runs that cannot lie: a small multi-chunk run of the
flagship, a run interrupted in its last chunk, and the count of its chunk records. Shared by
``tests/results/test_run_safety.py`` and ``tests/results/test_run_dir_races.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from simulator import cli
from simulator.execution import runner

#: a small multi-chunk run of the flagship
SMALL = ["--paths", "90", "--set", "simulation.chunk_paths=30", "--set", "simulation.steps=24",
         "--seed", "3"]


def chunk_records(path: Path) -> int:
    """The number of chunk records (complete chunks) of the run directory ``path``."""
    return len(list((path / "chunks").glob("chunk-*.json"))) if (path / "chunks").is_dir() \
        else 0


def killed_in_chunk(argv: list[str], monkeypatch, chunk: int = 2) -> int:
    """Run ``marginsim ARGV`` with a Ctrl-C in chunk ``chunk`` (the earlier ones complete);
    return its exit status."""
    real = runner.run_chunk

    def dying(ctx, task):
        if task.index < chunk:
            return real(ctx, task)
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_chunk", dying)
    try:
        return cli.main(argv)
    finally:
        monkeypatch.undo()


def interrupted_run(tmp_path: Path, monkeypatch, name: str = "run") -> Path:
    """A run of 3 chunks killed (Ctrl-C) in its last chunk: chunks 0 and 1 complete."""
    out = tmp_path / name
    assert killed_in_chunk(["run", "two-asset-crash", *SMALL, "--out", str(out), "--quiet"],
                           monkeypatch) == 130
    assert chunk_records(out) == 2
    return out


def run_data(path: Path) -> dict[str, object]:
    """Every Parquet table (without metadata) and summary.json of a run directory."""
    out: dict[str, object] = {p.relative_to(path).as_posix():
                              pq.read_table(p).replace_schema_metadata(None)
                              for p in sorted(path.rglob("*.parquet"))}
    out["summary.json"] = json.loads((path / "summary.json").read_text())
    return out


def assert_same_run(a: Path, b: Path) -> None:
    """Two run directories hold the same Parquet tables and summary.json."""
    da, db = run_data(a), run_data(b)
    assert list(da) == list(db)
    for key in da:
        assert da[key] == db[key] if key == "summary.json" else da[key].equals(db[key]), key
