"""The ``replay`` model: a recorded price file resampled onto the scenario's steps, replayed
as it is or wrapped in noise, with shocks and impact on top; bad files are errors that name
the file, the row and the column."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator import load_scenario, run
from simulator.errors import ScenarioError
from simulator.paths import generate_paths, generate_paths_numpy, prepare_path_inputs

from ..support.toml_text import dumps

K = 4.0
#: a recorded BTC path: hourly from 12:00 UTC, with a half-hour row the hourly steps skip
ROWS = [("2025-10-10T12:00:00Z", 100.0), ("2025-10-10T13:00:00Z", 98.0),
        ("2025-10-10T14:00:00Z", 95.0), ("2025-10-10T15:00:00Z", 90.0),
        ("2025-10-10T15:30:00Z", 87.0), ("2025-10-10T16:00:00Z", 85.0),
        ("2025-10-10T17:00:00Z", 92.0), ("2025-10-10T18:00:00Z", 96.0),
        ("2025-10-10T19:00:00Z", 97.0)]


def _write_csv(path: Path, rows: list[tuple], header: str = "timestamp,BTC") -> Path:
    path.write_text(header + "\n" + "".join(",".join(str(c) for c in r) + "\n" for r in rows))
    return path


def _scenario(tmp_path: Path, replay: dict, paths: int = 1, steps: int = 6,
              horizon_days: float = 0.25, asset: dict | None = None,
              assets: list[dict] | None = None, market: dict | None = None, **extra) -> Path:
    doc = {
        "name": "replay",
        "simulation": {"paths": paths, "seed": 3, "steps": steps, "horizon_days": horizon_days,
                       "chunk_paths": max(1, paths // 2)},
        "market": {"model": "replay", "replay": replay, **(market or {}),
                   "assets": assets or [asset or {"symbol": "BTC", "vol": 0.6}]},
        "liquidity": {"impact": "none"},
        "venue": {"margin_mode": "isolated", "maintenance_margin_rate": 0.01,
                  "liquidation_fee_rate": 0.0, "insurance_fund_usd": 1000.0},
        "accounts": [{"id": "long", "collateral": {"USD": 120.0},
                      "positions": [{"symbol": "BTC", "qty": 10.0, "entry": 100.0}]}],
        **extra,
    }
    path = tmp_path / "scenario.toml"
    path.write_text(dumps(doc))
    return path


def test_hand_made_file_liquidates_at_the_step_and_price_computed_by_hand(tmp_path):
    """10 BTC long from 100 on 120 USD, maintenance 1%: E = 120 + 10 (P - 100) falls below
    0.1 P when P < 880 / 9.9 = 88.89. The hourly steps read 100, 98, 95, 90, 85, 92, 96
    (the 15:30 row at 87 is between steps and skipped): the liquidation is at step 4
    (16:00) at 85, leaving E = 120 + 10 (85 - 100) = -30 of bad debt."""
    _write_csv(tmp_path / "prices.csv", ROWS)
    sc = load_scenario(_scenario(tmp_path, {"file": "prices.csv"}, paths=3))
    assert sc.market.assets[0].price == 100.0  # from the file
    run(sc, tmp_path / "run")
    events = pq.read_table(tmp_path / "run" / "events").to_pandas()
    assert len(events) == 3  # every path is the record
    assert set(events["step"]) == {4}
    assert (events["mark_price"] == 85.0).all() and (events["exec_price"] == 85.0).all()
    assert (events["qty"] == -10.0).all() and (events["bad_debt"] == 30.0).all()
    paths = pq.read_table(tmp_path / "run" / "paths").to_pandas()
    assert (paths["min_price_BTC"] == 85.0).all() and (paths["final_price_BTC"] == 96.0).all()
    assert (paths["bad_debt"] == 30.0).all() and (paths["first_liquidation_step"] == 4).all()


def test_resampling_takes_the_last_price_at_or_before_each_step(tmp_path):
    _write_csv(tmp_path / "prices.csv", ROWS)
    # from 12:10, 30-minute steps: 12:10 12:40 13:10 13:40 14:10 14:40 15:10 15:40 16:10
    sc = load_scenario(_scenario(tmp_path, {"file": "prices.csv",
                                            "start": "2025-10-10T12:10:00Z"},
                                 steps=8, horizon_days=4 / 24))
    inputs = prepare_path_inputs(sc)
    np.testing.assert_array_equal(inputs.recorded[:, 0],
                                  [100, 100, 98, 98, 95, 95, 90, 87, 85])
    out = generate_paths(inputs, 2, np.random.default_rng(0))
    np.testing.assert_array_equal(out[:, :, 0], np.tile(inputs.recorded[:, 0], (2, 1)))
    # epoch seconds and Parquet read the same
    times = [1760097600 + 3600 * k for k in range(7)]
    pq.write_table(pa.table({"time": times, "BTC": [r[1] for r in ROWS[:4] + ROWS[5:8]]}),
                   tmp_path / "prices.parquet")
    sc = load_scenario(_scenario(tmp_path, {"file": "prices.parquet", "start": 1760097600,
                                            "end": "2025-10-10T18:00:00Z"}))
    np.testing.assert_array_equal(prepare_path_inputs(sc).recorded[:, 0],
                                  [100, 98, 95, 90, 85, 92, 96])


def test_shocks_apply_on_top(tmp_path):
    _write_csv(tmp_path / "prices.csv", ROWS)
    path = _scenario(tmp_path, {"file": "prices.csv"},
                     shocks=[{"kind": "gap", "step": 2, "asset": "BTC", "size": -0.1}])
    out = generate_paths(prepare_path_inputs(load_scenario(path)), 1,
                         np.random.default_rng(0))[0, :, 0]
    np.testing.assert_allclose(out, [100, 98, 95 * 0.9, 90 * 0.9, 85 * 0.9, 92 * 0.9,
                                     96 * 0.9], rtol=1e-14)


def _daily_file(tmp_path: Path, n: int = 97) -> Path:
    """15-minute BTC and ETH prices over a day, a random walk."""
    rng = np.random.default_rng(8)
    lr = rng.standard_normal((n - 1, 2)) * 0.01
    prices = np.exp(np.vstack([np.zeros(2), np.cumsum(lr, axis=0)])) * [100.0, 10.0]
    rows = [(1760097600 + 900 * k, *prices[k]) for k in range(n)]
    return _write_csv(tmp_path / "day.csv", rows, "time,BTC,ETH")


@pytest.mark.parametrize("noise", ["gbm", "bootstrap"])
def test_noise_wraps_the_record_and_matches_numpy(tmp_path, noise):
    _daily_file(tmp_path)
    path = _scenario(tmp_path, {"file": "day.csv", "noise": noise}, steps=96,
                     horizon_days=1.0, assets=[{"symbol": "BTC", "vol": 0.8},
                                               {"symbol": "ETH", "vol": 1.0}],
                     market={"correlation": [[1.0, 0.5], [0.5, 1.0]]})
    inputs = prepare_path_inputs(load_scenario(path))
    n = 20_000
    fast = generate_paths(inputs, n, np.random.default_rng(1))
    slow = generate_paths_numpy(inputs, 500, np.random.default_rng(1))
    np.testing.assert_allclose(fast[:500], slow, rtol=1e-12)
    ratio = fast / inputs.recorded[None]
    np.testing.assert_allclose(ratio[:, 0], 1.0)
    log_ratio = np.log(ratio[:, -1])
    if noise == "gbm":  # a mean-one GBM: E[S_T / R_T] = 1, var log = vol**2 T
        m, se = ratio[:, -1].mean(axis=0), ratio[:, -1].std(axis=0) / math.sqrt(n)
        assert (np.abs(m - 1.0) < K * se).all(), (m, se)
        var = np.array([0.8, 1.0]) ** 2 / 365.0
        assert (np.abs(log_ratio.var(axis=0) / var - 1.0) < K * math.sqrt(2 / n)).all()
        corr = np.corrcoef(log_ratio.T)[0, 1]
        assert abs(corr - 0.5) < K * (1 - 0.25) / math.sqrt(n)
    else:  # each step's noise is one of the record's demeaned returns, rows kept whole
        lr = np.diff(np.log(inputs.recorded), axis=0)
        starts = len(lr) - 12 + 1  # each row's share of the bootstrap's draws
        weight = np.array([min(r + 1, 12, starts, len(lr) - r) for r in range(len(lr))])
        resid = lr - weight @ lr / weight.sum()
        steps_noise = np.diff(np.log(ratio[:50]), axis=1).reshape(-1, 2)
        dist = np.abs(steps_noise[:, None, :] - resid[None]).max(axis=2).min(axis=1)
        assert dist.max() < 1e-9
        # demeaned with the bootstrap's own row weights (the rows near the ends are drawn
        # less): 8 whole blocks of 12 steps, so the noise's log is 0 in expectation
        se = log_ratio.std(axis=0) / math.sqrt(n)
        assert (np.abs(log_ratio.mean(axis=0)) < K * se + 1e-12).all()


BAD_FILES = [
    # (rows or text, scenario replay keys, expected fragments of the error)
    ("timestamp,BTC\n2025-10-10T12:00:00Z,100\n2025-10-10T12:00:00Z,99\n", {},
     ["line 3", "repeats"]),
    ("timestamp,BTC\n2025-10-10T13:00:00Z,100\n2025-10-10T12:00:00Z,99\n", {},
     ["line 3", "comes before"]),
    ("timestamp,BTC\n2025-10-10T12:00:00Z,100\n2025-10-10T13:00:00Z,0\n", {},
     ["column 'BTC', line 3", "positive"]),
    ("timestamp,BTC\n2025-10-10T12:00:00Z,100\n2025-10-10T13:00:00Z,-5\n", {},
     ["column 'BTC', line 3", "positive"]),
    ("timestamp,BTC\n2025-10-10T12:00:00Z,100\n2025-10-10T13:00:00Z,\n", {},
     ["column 'BTC', line 3", "missing"]),
    ("timestamp,ETH\n2025-10-10T12:00:00Z,100\n2025-10-10T18:00:00Z,99\n", {},
     ["no column for BTC"]),
    ("\n".join(["timestamp,BTC"] + [f"2025-10-10T{h:02d}:00:00Z,100" for h in range(24)
                                     if h not in (14, 15, 16, 17)]) + "\n", {},
     ["line 16", "gap of 18000 s", "inside the replay window"]),
    ("\n".join(["timestamp,BTC"] + [f"2025-10-10T{h:02d}:00:00Z,100" for h in range(12, 16)])
     + "\n", {}, ["line 5", "ends after the file's last row"]),
    # a gap after the last row the window uses: the last steps would hold an old price
    ("\n".join(["timestamp,BTC"] + [f"2025-10-10T{h:02d}:00:00Z,100" for h in range(10, 16)]
               + ["2025-10-10T23:00:00Z,90"]) + "\n", {}, ["line 8", "gap of 28800 s"]),
    # the whole window between two rows
    ("timestamp,BTC\n2025-10-10T11:00:00Z,100\n2025-10-10T19:00:00Z,90\n", {},
     ["line 2", "within this row's interval"]),
    # epoch milliseconds, the usual exchange export
    ("time,BTC\n1760097600000,100\n1760101200000,99\n", {"start": 1760097600},
     ["line 2", "epoch milliseconds"]),
    ("\n".join(["timestamp,BTC"] + [f"2025-10-10T{h:02d}:00:00Z,100" for h in range(12, 24)])
     + "\n", {"start": "2025-10-10T11:00:00Z"}, ["line 2", "before the file's first row"]),
]


@pytest.mark.parametrize(("text", "keys", "fragments"), BAD_FILES)
def test_bad_files_name_file_row_and_column(tmp_path, text, keys, fragments):
    (tmp_path / "bad.csv").write_text(text)
    start = {} if "start" in keys else {"start": "2025-10-10T12:00:00Z"}
    with pytest.raises(ScenarioError) as err:
        load_scenario(_scenario(tmp_path, {"file": "bad.csv", **start, **keys}))
    message = str(err.value)
    assert str(tmp_path / "bad.csv") in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize(("keys", "asset", "fragments"), [
    ({"end": "2025-10-10T20:00:00Z"}, None, ["market.replay.end", "0.333333 days",
                                             "horizon_days"]),
    ({"noise": "brownian"}, None, ["market.replay.noise"]),
    ({"block": 3}, None, ["market.replay.block", "bootstrap"]),
    ({"start": "yesterday"}, None, ["market.replay.start", "not a time"]),
    ({"start": 1e20}, None, ["market.replay.start", "not a time up to the year 9999"]),
    ({"noise": "bootstrap", "block": 3}, None, ["market.replay.block", "<= 2"]),
    ({}, {"symbol": "BTC", "vol": 0.6, "price": 101.0}, ["market.assets[0].price",
                                                         "leave price out"]),
])
def test_bad_keys_name_the_key(tmp_path, keys, asset, fragments):
    _write_csv(tmp_path / "prices.csv", ROWS)
    with pytest.raises(ScenarioError) as err:
        load_scenario(_scenario(tmp_path, {"file": "prices.csv", **keys}, asset=asset))
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)


def test_bootstrap_noise_varies_on_a_short_window(tmp_path):
    """6 steps: the block is at most (6 + 1) // 3 = 2 (the default here), so blocks have
    several places to start and the paths differ."""
    _write_csv(tmp_path / "prices.csv", ROWS)
    sc = load_scenario(_scenario(tmp_path, {"file": "prices.csv", "noise": "bootstrap"}))
    assert sc.market.params.block == 2
    out = generate_paths(prepare_path_inputs(sc), 50, np.random.default_rng(2))[:, :, 0]
    assert len({tuple(row) for row in out.round(9)}) > 10


def test_a_price_beyond_the_limits_is_refused(tmp_path):
    _write_csv(tmp_path / "prices.csv", [(t, p * 1e13) for t, p in ROWS])
    with pytest.raises(ScenarioError, match=r"market.assets\[0\].price.*outside"):
        load_scenario(_scenario(tmp_path, {"file": "prices.csv"}))


def test_a_missing_file_names_the_key(tmp_path):
    with pytest.raises(ScenarioError) as err:
        load_scenario(_scenario(tmp_path, {"file": "nowhere.csv"}))
    assert "market.replay.file" in str(err.value) and "nowhere.csv" in str(err.value)


def test_replay_refuses_importance_sampling(tmp_path):
    _write_csv(tmp_path / "prices.csv", ROWS)
    with pytest.raises(ScenarioError, match="rare_event"):
        load_scenario(_scenario(tmp_path, {"file": "prices.csv"}),
                      ["simulation.rare_event=bad_debt"])
