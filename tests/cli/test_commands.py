"""Command line and run directory: every documented output, reproducibility across
workers and chunk dispatch, and clean refusal of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import simulator
from simulator import cli
from simulator.config.scenario import builtin_scenarios, load_scenario
from simulator.execution.chunk import ChunkContext, plan_chunks, run_chunk
from simulator.execution.runner import run

DESIGN_METRICS = ("liquidation_prob", "n_liquidations_mean", "liquidated_notional_mean",
                  "bad_debt_mean", "bad_debt_var_99", "bad_debt_es_99",
                  "insurance_fund_depletion_prob", "max_cascade_rounds_mean")
PATH_COLUMNS = ("path_id", "n_liquidations", "liquidated_notional", "max_cascade_rounds",
                "bad_debt", "insurance_fund_end", "adl_notional", "first_liquidation_step")
EVENT_COLUMNS = ("path_id", "step", "round", "account_id", "kind", "symbol", "qty",
                 "mark_price", "exec_price", "notional", "fee", "bad_debt")
ACCOUNT_COLUMNS = ("account_id", "liquidation_prob", "bankruptcy_prob", "mean_pnl", "var_99",
                   "es_99")
SMALL = ["--set", "simulation.steps=24", "--set", "simulation.chunk_paths=40"]


def test_run_writes_every_documented_output(tmp_path, capsys):
    out = tmp_path / "run"
    status = cli.main(["run", "two-asset-crash", "--paths", "100", "--seed", "3", "--out",
                       str(out), "--save-prices", "5", *SMALL])
    assert status == 0
    printed = capsys.readouterr().out
    assert "P(any liquidation)" in printed and "bad debt ES 99%" in printed
    for name in ("paths", "events", "prices", "accounts.parquet", "summary.json",
                 "manifest.json"):
        assert (out / name).exists(), name
    assert sorted(p.name for p in (out / "paths").iterdir()) == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary files
    paths = pq.read_table(out / "paths")
    assert set(PATH_COLUMNS) <= set(paths.column_names)
    for sym in ("BTC", "ETH"):
        assert f"min_price_{sym}" in paths.column_names
        assert f"final_price_{sym}" in paths.column_names
    assert paths.column("path_id").to_pylist() == list(range(100))
    events = pq.read_table(out / "events")
    assert set(EVENT_COLUMNS) <= set(events.column_names)
    assert events.num_rows > 0
    assert set(events.column("kind").to_pylist()) <= {"liquidation", "adl"}
    accounts = pq.read_table(out / "accounts.parquet")
    assert set(ACCOUNT_COLUMNS) <= set(accounts.column_names)
    assert accounts.num_rows == 3003
    summary = json.loads((out / "summary.json").read_text())
    for metric in DESIGN_METRICS:
        assert set(summary["metrics"][metric]) == {"estimate", "stderr"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["paths"] == 100 and manifest["n_chunks"] == 3
    assert manifest["scenario"]["simulation"]["steps"] == 24
    assert {"numpy", "numba", "scipy", "pyarrow", "joblib", "marginsim"} <= set(
        manifest["versions"])
    files = manifest["files"]
    assert "summary.json" in files and "paths/part-00002.parquet" in files
    digest = load_scenario("two-asset-crash", ["simulation.paths=100", "simulation.seed=3",
                                               "simulation.steps=24",
                                               "simulation.chunk_paths=40"]).digest
    for part in ("paths/part-00000.parquet", "events/part-00001.parquet", "accounts.parquet"):
        meta = pq.read_schema(out / part).metadata
        assert meta[b"marginsim.scenario_sha256"].decode() == digest
        assert meta[b"marginsim.seed"] == b"3"
        assert meta[b"marginsim.version"]
    prices = pq.read_table(out / "prices").to_pandas()
    assert len(prices) == 5 * 25 and set(prices.path_id) == set(range(5))
    last = prices[prices.step == 24].set_index("path_id").BTC
    final = paths.to_pandas().set_index("path_id").final_price_BTC.loc[last.index]
    np.testing.assert_allclose(last, final, rtol=0)


def _tables(run_dir: Path, sub: str):
    return {p.name: pq.read_table(p).replace_schema_metadata(None)
            for p in sorted((run_dir / sub).glob("*.parquet"))}


def test_same_seed_same_outputs_with_one_or_two_workers(tmp_path):
    sc = load_scenario("two-asset-crash", ["simulation.paths=120", "simulation.steps=24",
                                           "simulation.chunk_paths=30"])
    run(sc, tmp_path / "one", jobs=1)
    run(sc, tmp_path / "two", jobs=2)
    for sub in ("paths", "events"):
        one, two = _tables(tmp_path / "one", sub), _tables(tmp_path / "two", sub)
        assert list(one) == list(two) and len(one) == 4
        for name in one:
            assert one[name].equals(two[name]), (sub, name)
        # byte for byte, not only equal values
        for name in one:
            assert (tmp_path / "one" / sub / name).read_bytes() == (
                tmp_path / "two" / sub / name).read_bytes()
    a1 = pq.read_table(tmp_path / "one" / "accounts.parquet")
    a2 = pq.read_table(tmp_path / "two" / "accounts.parquet")
    assert a1.equals(a2)


def test_chunks_do_not_depend_on_their_count_or_dispatch_order(tmp_path):
    """Chunk i is the same whether the run has 3 or 5 chunks and in whatever order the
    chunks are executed."""
    base = ["simulation.steps=24", "simulation.chunk_paths=25"]
    short = load_scenario("two-asset-crash", base + ["simulation.paths=75"])
    run(short, tmp_path / "short", jobs=1)
    long_ = load_scenario("two-asset-crash", base + ["simulation.paths=125"])
    run(long_, tmp_path / "long", jobs=2)
    for sub in ("paths", "events"):
        s, lg = _tables(tmp_path / "short", sub), _tables(tmp_path / "long", sub)
        assert len(s) == 3 and len(lg) == 5
        for name in s:
            assert s[name].equals(lg[name]), (sub, name)
    # the same chunks executed by hand in reverse order
    full = run(long_, tmp_path / "ref", jobs=1)
    ctx_dir = tmp_path / "reversed"
    for sub in ("paths", "events", "chunks"):
        (ctx_dir / sub).mkdir(parents=True)
    ctx = ChunkContext.build(long_, ctx_dir, 0, simulator.__version__)
    for task in reversed(plan_chunks(125, 25, long_.simulation.seed)):
        run_chunk(ctx, task)
    for sub in ("paths", "events"):
        ref, rev = _tables(full.out_dir, sub), _tables(ctx_dir, sub)
        for name in ref:
            assert ref[name].equals(rev[name])


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.mark.parametrize(("edit", "needles"), [
    (lambda s: s.replace("vol = 0.8", "vol = -0.8"), ("market.assets[0].vol", ">= 0")),
    (lambda s: s.replace('symbol = "ETH"', 'symbol = "BTC"'), ("market.assets", "duplicate")),
    (lambda s: s.replace("[venue]", "[venue]\nmaintenance_margin = 0.01"),
     ("venue.maintenance_margin", "unknown key")),
    (lambda s: s.replace("[[0.8", "[[1.0, 0.8], [0.8, 1.0], [0.0").replace("[1.0, 0.8], [0.8, "
                                                                            "1.0]]", "x]]"),
     ("malformed TOML",)),
    (lambda s: s.replace("correlation = [[1.0, 0.8], [0.8, 1.0]]",
                         "correlation = [[1.0, 1.2], [1.2, 1.0]]"), ("market.correlation",)),
    (lambda s: s.replace('asset = "BTC"', 'asset = "DOGE"', 1), ("shocks[0].asset", "DOGE")),
])
def test_bad_scenario_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch,
                                                                 edit, needles):
    text = (Path(builtin_scenarios()["two-asset-crash"])).read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(edit(text))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", str(bad)]) == 2
    _one_line_error(capsys, "bad.toml", *needles)
    assert not (tmp_path / "runs").exists()
    assert cli.main(["run", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()
    assert cli.main(["validate", str(bad)]) == 2


def test_bad_override_and_missing_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "two-asset-crash", "--set", "venue.nonsense=1"]) == 2
    _one_line_error(capsys, "venue.nonsense", "unknown key")
    assert cli.main(["run", "two-asset-crash", "--set", "venue.adl=maybe"]) == 2
    _one_line_error(capsys, "venue.adl", "true or false")
    assert cli.main(["run", "no-such-scenario.toml"]) == 2
    _one_line_error(capsys, "no-such-scenario.toml", "two-asset-crash")
    assert cli.main(["run", "two-asset-crash", "--paths", "0"]) == 2
    _one_line_error(capsys, "simulation.paths")
    assert not (tmp_path / "runs").exists()


def test_existing_run_directory_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert cli.main(["run", "deterministic-gap", "--out", str(out)]) == 2
    _one_line_error(capsys, str(out), "not empty")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_force_replaces_a_run_only_when_the_new_one_is_complete(tmp_path, capsys,
                                                                  monkeypatch):
    out = tmp_path / "run"
    args = ["run", "deterministic-gap", "--out", str(out), "--quiet"]
    assert cli.main([*args, "--set", "venue.maintenance_margin_rate=0.02"]) == 0
    old = json.loads((out / "manifest.json").read_text())
    # a --force run that dies part-way leaves the old run whole and no staging directory
    from simulator.execution import runner

    def dying(ctx, task):
        (ctx.out_dir / "paths" / "part-00000.parquet").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_chunk", dying)
    assert cli.main([*args, "--force"]) == 130
    monkeypatch.undo()
    assert json.loads((out / "manifest.json").read_text()) == old
    assert cli.main(["verify", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    # a failing scenario touches nothing either
    assert cli.main([*args, "--force", "--set", "venue.adl=maybe"]) == 2
    assert json.loads((out / "manifest.json").read_text()) == old
    capsys.readouterr()
    # a complete --force run replaces it
    assert cli.main([*args, "--force"]) == 0
    new = json.loads((out / "manifest.json").read_text())
    assert new["scenario_sha256"] != old["scenario_sha256"]
    assert new["status"] == "complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing left aside
    assert cli.main(["verify", str(out)]) == 0
    # --force on a missing or empty directory is a plain run
    assert cli.main(["run", "deterministic-gap", "--out", str(tmp_path / "new"), "--quiet",
                     "--force"]) == 0


def test_force_killed_with_sigkill_leaves_a_staging_directory_that_is_reported(tmp_path,
                                                                                  capsys):
    """A --force run killed with SIGKILL cannot clean up: its ``.NAME.new-PID`` staging
    directory stays beside the run. It is never deleted automatically (the PID may be a live
    run on another host); ``verify`` notes it and the next run of that directory warns."""
    out = tmp_path / "run"
    args = ["run", "deterministic-gap", "--out", str(out), "--quiet", "--paths", "20"]
    assert cli.main(args) == 0
    stale = tmp_path / ".run.new-999999"  # what the killed run left
    (stale / "paths").mkdir(parents=True)
    capsys.readouterr()
    assert cli.main(["verify", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"note: {stale}: left by an interrupted --force run" in printed
    assert cli.main([*args, "--force"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"warning: {stale} was left by an interrupted" in err
    assert stale.is_dir()  # reported, not deleted
    assert cli.main(["verify", str(tmp_path / "elsewhere")]) == 2  # unrelated: no note


def test_force_through_a_symbolic_link(tmp_path, capsys):
    """--out LINK, a symbolic link to a run directory: the run it names is replaced, the
    link kept (swap_in called rmtree on the link: a traceback, the link replaced by a
    directory and a dangling .LINK.old-PID left beside it)."""
    real, link = tmp_path / "real", tmp_path / "latest"
    assert cli.main(["run", "deterministic-gap", "--out", str(real), "--quiet",
                     "--paths", "20"]) == 0
    link.symlink_to(real, target_is_directory=True)
    assert cli.main(["run", "deterministic-gap", "--out", str(link), "--quiet", "--paths",
                     "30", "--force"]) == 0, capsys.readouterr().err
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert json.loads((real / "manifest.json").read_text())["paths"] == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "real"]
    assert cli.main(["verify", str(link)]) == 0


def test_force_refuses_what_is_not_a_run_directory(tmp_path, capsys, monkeypatch):
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert cli.main(["run", "deterministic-gap", "--out", str(out), "--force"]) == 2
    _one_line_error(capsys, str(out), "not a marginsim run directory", "no manifest.json")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert cli.main(["run", "deterministic-gap", "--out", str(a_file), "--force"]) == 2
    _one_line_error(capsys, str(a_file), "not a directory")
    assert a_file.read_text() == "x"
    run_dir = tmp_path / "run"
    assert cli.main(["run", "deterministic-gap", "--out", str(run_dir), "--quiet"]) == 0
    assert cli.main(["run", "deterministic-gap", "--out", str(run_dir), "--force",
                     "--resume"]) == 2
    _one_line_error(capsys, "--force and --resume")
    monkeypatch.chdir(run_dir)
    assert cli.main(["run", "deterministic-gap", "--out", ".", "--force"]) == 2
    _one_line_error(capsys, "working directory")
    assert (run_dir / "summary.json").is_file()


def test_sweep_force(tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", "deterministic-gap", "--grid", "venue.maintenance_margin_rate=0.01,0.02",
            "--out", str(out), "--quiet"]
    assert cli.main(args) == 0
    assert cli.main(args) == 2
    _one_line_error(capsys, str(out), "--force")
    # a file marginsim did not write is never deleted: --force refuses, naming it
    stale = out / "points" / "stale.txt"
    stale.write_text("someone's notes")
    assert cli.main([*args, "--force"]) == 2
    _one_line_error(capsys, str(out), "points/stale.txt", "remove it yourself")
    assert stale.read_text() == "someone's notes"
    stale.unlink()
    assert cli.main([*args, "--force"]) == 0
    assert json.loads((out / "sweep.json").read_text())["status"] == "complete"
    assert cli.main(["verify", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "x.txt").write_text("x")
    assert cli.main([*args[:-3], "--out", str(plain), "--force"]) == 2
    _one_line_error(capsys, str(plain), "not a marginsim sweep directory", "sweep.json")


def test_console_script_reports_bad_input_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[market]\nmodel = "gbm"\n[[market.assets]]\nsymbol = "A"\n'
                   'price = "high"\nvol = 0.5\n')
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "simulator", "validate", str(bad)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "market.assets[0].price" in proc.stderr and "bad.toml" in proc.stderr


def test_scenarios_and_validate_commands(capsys):
    assert cli.main(["scenarios"]) == 0
    listed = capsys.readouterr().out
    names = list(builtin_scenarios())
    assert len(names) >= 3
    for name in names:
        assert name in listed
        assert cli.main(["validate", name]) == 0
        assert capsys.readouterr().out.startswith("ok: ")


@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_every_shipped_scenario_runs(tmp_path, name):
    sc = load_scenario(name, ["simulation.paths=40", "simulation.chunk_paths=20"])
    result = run(sc, tmp_path / name, jobs=1)
    metrics = result.summary["metrics"]
    for metric in DESIGN_METRICS:
        assert metrics[metric]["estimate"] is not None
    assert pq.read_table(tmp_path / name / "paths").num_rows == 40


def test_default_run_directory_and_flagship(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--paths", "20", "--quiet", *SMALL]) == 0
    (run_dir,) = list((tmp_path / "runs").iterdir())
    assert run_dir.name.startswith("two-asset-crash-")
    assert (run_dir / "summary.json").exists()
    assert cli.main(["report", str(run_dir)]) == 0
    assert "P(any liquidation)" in capsys.readouterr().out


@pytest.mark.slow
def test_batch_var_es_agrees_with_exact_when_tails_exceed_the_budget(tmp_path):
    """Over the memory budget, per-account VaR/ES are batch means over chunks: the same
    sums, and VaR/ES within their standard errors of the exact order statistics."""
    base = ["simulation.paths=6000", "simulation.chunk_paths=1500", "simulation.steps=48"]
    exact = run(load_scenario("calm-baseline", base), tmp_path / "exact").out_dir
    batch = run(load_scenario("calm-baseline", [*base, "simulation.account_tail_budget_mb=0"]),
                tmp_path / "batch").out_dir
    e = pq.read_table(exact / "accounts.parquet").to_pandas()
    b = pq.read_table(batch / "accounts.parquet").to_pandas()
    assert set(e.var_es_method) == {"exact"} and set(b.var_es_method) == {"batch"}
    np.testing.assert_allclose(b.mean_pnl, e.mean_pnl, rtol=1e-12)
    np.testing.assert_array_equal(b.liquidation_prob, e.liquidation_prob)
    for col in ("var_99", "es_99"):
        se = np.sqrt(b[f"{col}_stderr"] ** 2 + e[f"{col}_stderr"] ** 2)
        inside = np.abs(b[col] - e[col]) <= 4 * se + 1e-9 * np.abs(e[col])
        assert inside.mean() > 0.95, (col, inside.mean())


def test_progress_line_on_stderr(tmp_path, capsys):
    sc = load_scenario("deterministic-gap", ["simulation.paths=30", "simulation.chunk_paths=10"])
    run(sc, tmp_path / "run", progress=True)
    err = capsys.readouterr().err
    assert "chunks 3/3" in err and "paths/s" in err and "ETA" in err
    run(sc, tmp_path / "quiet", progress=False)
    assert capsys.readouterr().err == ""


def test_saved_prices_carry_the_exogenous_path(tmp_path):
    """``prices_no_impact/`` holds the generated path, in the layout of ``prices/``: the
    marks equal it without impact, and the flagship's forced sales mostly push its BTC marks
    below it."""
    from simulator.config.scenario import load_scenario
    from simulator.paths import generate_paths, prepare_path_inputs

    for impact, out in (("none", tmp_path / "none"), ("linear", tmp_path / "linear")):
        assert cli.main(["run", "two-asset-crash", "--paths", "40", "--out", str(out),
                         "--save-prices", "40", "--quiet", "--set",
                         f"liquidity.impact={impact}", *SMALL]) == 0
        order = [("path_id", "ascending"), ("step", "ascending")]
        prices = pq.read_table(out / "prices").sort_by(order)
        exogenous = pq.read_table(out / "prices_no_impact").sort_by(order)
        assert exogenous.column_names == prices.column_names == ["path_id", "step", "BTC",
                                                                 "ETH"]
        btc, free = prices.column("BTC").to_numpy(), exogenous.column("BTC").to_numpy()
        if impact == "none":
            np.testing.assert_array_equal(btc, free)
        else:
            assert np.mean(btc < free) > 0.5  # the crowded longs' sales drag BTC down
            np.testing.assert_array_equal(btc.reshape(40, 25)[:, 0], free.reshape(40, 25)[:, 0])
    sc = load_scenario("two-asset-crash", ["simulation.paths=40", "simulation.steps=24",
                                           "simulation.chunk_paths=40"])
    inputs = prepare_path_inputs(sc)
    exo = generate_paths(inputs, 40, np.random.default_rng(
        np.random.SeedSequence(sc.simulation.seed).spawn(1)[0]))
    np.testing.assert_array_equal(free.reshape(40, 25), exo[:, :, 0])
