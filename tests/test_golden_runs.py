"""The layout redesign (issue #16) kept every number: four small runs give the same files.

``tests/data/golden_runs.json`` holds, for ``deterministic-gap``, ``two-asset-crash``,
``option-sellers`` and ``defi-lending-crash`` (small path counts, several chunks, saved
prices), the SHA-256 of every Parquet part (its bytes, and its decoded content: schema and
every column's values) and of every ``summary.json`` entry. Before the first move, the
same fingerprints of every part, and of every ``summary.json`` section, were taken from
commit 013f70e; the file was written once the redesigned code was seen to match them all.
The bytes are compared only with the pyarrow version that recorded them (the writer's
version is in every file's footer); the decoded content and the metrics always.

Issue #18 added the ``weight`` column to ``paths/`` (the likelihood ratio of rare-event
mode, 1.0 in a plain run). The content fingerprint leaves it out after checking that it is
1.0 on every row, so the content recorded before still holds; the bytes of the ``paths/``
parts were re-recorded then (their content fingerprints unchanged).

Issue #19 added the ``liq_price_<SYM>`` columns to ``accounts.parquet`` (each account's
liquidation price at the start, after the existing columns). The content fingerprint
leaves them out, so the content recorded before still holds; they are fingerprinted on
their own (``liq_prices``: their names, in order after every other column, and values) and
checked separately. The bytes of ``accounts.parquet`` were re-recorded then (its content
fingerprint unchanged, as every other file's bytes and content).

Issue #20 added the ADL figures: six columns of ``paths/`` (``adl_covered`` ...
``adl_in_profit_share``), ``adl_probability`` and its standard error in
``accounts.parquet``, the ``adl`` count of ``chunks/accounts-NNNNN.parquet``, and six
``summary.json`` metrics. The content fingerprint leaves those columns out, so the content
recorded before still holds; the bytes of the parts that have them and the new metrics'
entries were recorded then (every other entry unchanged).

Since floating-point columns are no longer dictionary-encoded
(:func:`simulator.results.atomic.dictionary_columns`, a faster writer and smaller files),
the bytes of every part were re-recorded: 34 ``bytes_sha256`` entries, and no other (every
content fingerprint and ``summary.json`` entry unchanged).

Issue #17 changed the writer's options twice: no page statistics on the dictionary (string)
columns, and ``chunks/pnl-`` parts LZ4-compressed and plainly encoded. Every part's bytes
changed, its content did not. The bytes of this machine's record were re-recorded then
(every content fingerprint, ``liq_prices`` and ``summary.json`` entry checked unchanged
first), and a record names the writer's options it was made with (``writer``,
:data:`WRITER`): the first record's bytes, written with the options before, are no longer
compared (its content still is).

The decoded content is the same bit for bit only on the same kind of machine: on a Xeon
with AVX-512 (December 2026, glibc 2.36) the code of ee77d9a gave other last bits in the
floating-point columns of ``paths/``, ``events/``, ``chunks/pnl-*``, ``accounts.parquet``
(``liq_price_*`` included, computed in NumPy) and in the summary entries made from them, with
the same counts (every ``chunks/accounts-*`` part) and the same ``prices/`` parts
(NumPy's and OpenBLAS's kernels, and the C library's maths, are chosen by the CPU). The file
therefore holds one record per kind of machine: the first, then ``platforms``, each
recorded from unchanged code (that one from ee77d9a, before the change it checked); a run
must match every fingerprint of one of them.
To re-record after a deliberate change of numbers (explain it in the commit):
``python tests/test_golden_runs.py tests/data/golden_runs.json``; to add a machine's
record from unchanged code, ``python tests/test_golden_runs.py tests/data/golden_runs.json
"<label>"``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow
import pyarrow.parquet as pq
import pytest

from simulator import load_scenario, run

GOLDEN = Path(__file__).with_name("data") / "golden_runs.json"
#: the writer's options the bytes were recorded with (:func:`simulator.results.atomic.
#: write_parquet`); a record of other options (none: before issue #17's) is compared by
#: content only
WRITER = "no statistics on dictionary columns; chunks/pnl- LZ4 and plain"

#: scenario -> (overrides, save_prices)
RUNS: dict[str, tuple[list[str], int]] = {
    "deterministic-gap": ([], 1),
    "two-asset-crash": (["simulation.paths=300", "simulation.chunk_paths=100"], 2),
    "option-sellers": (["simulation.paths=200", "simulation.chunk_paths=100"], 1),
    "defi-lending-crash": (["simulation.paths=200", "simulation.chunk_paths=100"], 0),
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: the columns issue #20 added (the ADL figures), left out of the content fingerprint
ADL_COLUMNS = ("adl_covered", "adl_overshoot", "adl_leverage_mean", "adl_leverage_median",
               "adl_pnl_mean", "adl_in_profit_share", "adl_probability",
               "adl_probability_stderr", "adl", "adl_w", "adl_w2")


def content_sha256(path: Path) -> str:
    """SHA-256 of a Parquet file's schema (without metadata) and every column's values."""
    table = pq.read_table(path)
    if path.name == "accounts.parquet":
        table = table.drop_columns(_liq_columns(table))
    table = table.drop_columns([c for c in ADL_COLUMNS if c in table.column_names])
    if "weight" in table.column_names and path.parent.name == "paths":
        weight = table.column("weight").to_pylist()
        assert all(w == 1.0 for w in weight), f"{path}: a plain run's weights are 1.0"
        table = table.drop_columns(["weight"])
    h = hashlib.sha256()
    h.update(repr(table.schema.remove_metadata()).encode())
    for name in table.column_names:
        h.update(name.encode())
        h.update(json.dumps(table.column(name).to_pylist(), default=repr).encode())
    return h.hexdigest()


def _liq_columns(table: pyarrow.Table) -> list[str]:
    return [c for c in table.column_names if c.startswith("liq_price_")]


def liq_prices_sha256(path: Path) -> str:
    """SHA-256 of the ``liq_price_<SYM>`` columns of ``accounts.parquet`` (issue #19):
    they come last, one per symbol of the scenario; names and values (nulls included)."""
    table = pq.read_table(path)
    names = _liq_columns(table)
    assert names and table.column_names[-len(names):] == names, "liq_price_* come last"
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode())
        h.update(json.dumps(table.column(name).to_pylist(), default=repr).encode())
    return h.hexdigest()


def fingerprint(run_dir: Path) -> dict[str, Any]:
    """Fingerprints of every Parquet part and every summary entry of a run directory."""
    parts = {p.relative_to(run_dir).as_posix(): {"bytes_sha256": _sha(p.read_bytes()),
                                                   "content_sha256": content_sha256(p)}
             for p in sorted(run_dir.rglob("*.parquet"))}
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics: dict[str, str] = {}
    for key, value in summary.items():
        items = value.items() if isinstance(value, dict) else [("", value)]
        for sub, v in items:
            name = f"{key}.{sub}" if sub else key
            metrics[name] = _sha(json.dumps(v, sort_keys=True).encode())
    return {"parts": parts, "summary": metrics,
            "liq_prices": liq_prices_sha256(run_dir / "accounts.parquet")}


def run_fingerprint(name: str, out_dir: Path) -> dict[str, Any]:
    overrides, save_prices = RUNS[name]
    run(load_scenario(name, overrides), out_dir, save_prices=save_prices)
    return fingerprint(out_dir)


def _records(golden: dict[str, Any]) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """``(recorded_with, runs)`` of the first record, then of every platform added since."""
    return [(golden["recorded_with"], golden["runs"])] + [
        (variant["recorded_with"], variant["runs"]) for variant in golden.get("platforms", [])]


def _assert_matches(got: dict[str, Any], want: dict[str, Any],
                    recorded_with: dict[str, str]) -> None:
    assert sorted(got["parts"]) == sorted(want["parts"]), "a different set of Parquet parts"
    same_writer = (recorded_with["pyarrow"] == pyarrow.__version__
                   and recorded_with.get("writer") == WRITER)
    for rel, fp in want["parts"].items():
        assert got["parts"][rel]["content_sha256"] == fp["content_sha256"], rel
        if same_writer:
            assert got["parts"][rel]["bytes_sha256"] == fp["bytes_sha256"], rel
    assert got["liq_prices"] == want["liq_prices"], "accounts.parquet: liq_price_* changed"
    changed = [k for k in want["summary"] if got["summary"].get(k) != want["summary"][k]]
    assert not changed, f"summary.json entries changed: {changed}"
    assert sorted(got["summary"]) == sorted(want["summary"])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNS))
def test_run_files_unchanged(name: str, tmp_path: Path) -> None:
    got = run_fingerprint(name, tmp_path / name)
    failures = []
    for recorded_with, runs in _records(json.loads(GOLDEN.read_text())):
        try:
            _assert_matches(got, runs[name], recorded_with)
            return  # every fingerprint of one platform's record
        except AssertionError as exc:
            failures.append(f"{recorded_with.get('platform', 'the first record')}: {exc}")
    pytest.fail("the run matches no platform's record:\n" + "\n".join(failures))


def _record(path: Path, platform: str | None = None) -> None:  # pragma: no cover
    """Write a new record (``platform`` None), or add this platform's record to it."""
    import tempfile

    import numba
    import numpy

    recorded_with = {"pyarrow": pyarrow.__version__, "numpy": numpy.__version__,
                     "numba": numba.__version__, "writer": WRITER}
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(RUNS):
            runs[name] = run_fingerprint(name, Path(tmp) / name)
    if platform is None:
        out: dict[str, Any] = {"recorded_with": recorded_with, "runs": runs}
    else:
        out = json.loads(path.read_text())
        out.setdefault("platforms", []).append(
            {"recorded_with": {**recorded_with, "platform": platform}, "runs": runs})
    path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":  # pragma: no cover
    _record(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
