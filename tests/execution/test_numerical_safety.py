"""Numerical safety: extreme inputs run end to end through the command line and leave no NaN
or infinity in any output file; prices stay within 1e-12 and 1e12 times their initial value
(README "Numerical safety"), and the paths where a bound was reached are flagged, counted
and warned about.

The bounds are checked against the documented values, not the code's constants; the
kernels' bounded paths are compared with the NumPy reference and the bounded replay with
the slow reference engine (``tests/reference``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator import cli
from simulator.config.market import Liquidity
from simulator.config.scenario import Venue, load_scenario
from simulator.margin import EngineRules, codes, replay
from simulator.paths import generate_paths, generate_paths_numpy, prepare_path_inputs

from ..reference import naive_replay
from ..support.compare import assert_same
from ..support.flat_books import market, random_book, random_paths
from ..support.json_checks import assert_json_finite

FLOOR, CAP = 1e-12, 1e12  # README "Numerical safety"
S0 = {"BTC": 100.0, "ETH": 10.0}


def scenario_text(*, vol: float = 0.5, horizon_days: float = 1.0, depth: float = 1e6,
                  qty: float = 10.0, model: str = "gbm", rho: float = 0.5,
                  shocks: str = "") -> str:
    """Two assets and a small book of linear, inverse and cross accounts of size ``qty``."""
    return f"""
name = "extreme"
[simulation]
paths = 60
seed = 3
steps = 40
horizon_days = {horizon_days}
chunk_paths = 25

[market]
model = "{model}"
correlation = [[1.0, {rho!r}], [{rho!r}, 1.0]]

[[market.assets]]
symbol = "BTC"
price = 100.0
vol = {vol}
depth_usd = {depth}

[[market.assets]]
symbol = "ETH"
price = 10.0
vol = {vol}
depth_usd = {depth}

[liquidity]
impact = "sqrt"
half_life_steps = 0

[venue]
margin_mode = "cross"
maintenance_margin_rate = 0.01
liquidation = "full"
liquidation_fee_rate = 0.01
insurance_fund_usd = 1000.0
adl = true

[[accounts]]
id = "long"
collateral = {{ USD = {qty * 20.0} }}
positions = [ {{ symbol = "BTC", qty = {qty}, entry = 100.0 }} ]

[[accounts]]
id = "short"
collateral = {{ USD = {qty * 20.0} }}
positions = [ {{ symbol = "BTC", qty = {-qty}, entry = 100.0 }} ]

[[accounts]]
id = "inverse-long"
collateral = {{ BTC = {qty * 0.5} }}
positions = [ {{ symbol = "BTC", type = "inverse", qty = {qty * 100.0}, entry = 100.0 }} ]

[[accounts]]
id = "cross"
collateral = {{ USD = {qty * 10.0}, ETH = {qty} }}
positions = [ {{ symbol = "ETH", qty = {qty * 5.0} }}, {{ symbol = "BTC", qty = {-qty} }} ]

[[accounts]]
id = "hedger"
collateral = {{ USD = {qty * 1000.0} }}
positions = [ {{ symbol = "BTC", qty = {qty}, entry = 100.0 }},
              {{ symbol = "ETH", qty = {-qty * 5.0} }} ]
{shocks}
"""


def shock(kind: str, step: int, asset: str, size: float, duration: int = 1) -> str:
    return (f"\n[[shocks]]\nkind = \"{kind}\"\nstep = {step}\nasset = \"{asset}\"\n"
            f"size = {size!r}\nduration_steps = {duration}\n")


def no_constants(name: str) -> None:
    raise AssertionError(f"non-finite number {name} in a JSON output")


def scan_run(out: Path) -> dict:
    """Assert every number in every output file is finite and every price within the
    bounds; return the summary."""
    parquet = sorted(out.rglob("*.parquet"))
    assert {p.parent.name for p in parquet} >= {"paths", "events", "chunks", "prices",
                                                "prices_no_impact"}
    for path in parquet:
        table = pq.read_table(path)
        for name in table.column_names:
            col = table.column(name)
            if not pa.types.is_floating(col.type):
                continue
            values = col.drop_null().to_numpy()
            assert np.isfinite(values).all(), (path, name)
            sym = name.removeprefix("min_price_").removeprefix("final_price_")
            if sym in S0 and (name != sym or path.parent.name.startswith("prices")):
                lo, hi = S0[sym] * FLOOR, S0[sym] * CAP
                assert (values >= lo * (1 - 1e-9)).all(), (path, name, values.min())
                assert (values <= hi * (1 + 1e-9)).all(), (path, name, values.max())
    events = pq.read_table(out / "events").to_pandas()
    for sym, s0 in S0.items():
        px = events.loc[events["symbol"] == sym, ["mark_price", "exec_price"]].to_numpy()
        assert ((px >= s0 * FLOOR * (1 - 1e-9)) & (px <= s0 * CAP * (1 + 1e-9))).all()
    assert_json_finite(out / "manifest.json")
    return assert_json_finite(out / "summary.json")


def run_cli(tmp_path: Path, text: str, capsys, *extra: str) -> tuple[Path, dict, str]:
    src = tmp_path / "extreme.toml"
    src.write_text(text)
    out = tmp_path / "run"
    assert cli.main(["run", str(src), "--out", str(out), "--save-prices", "30", "--quiet",
                     *extra]) == 0
    err = capsys.readouterr().err
    summary = scan_run(out)
    flags = pq.read_table(out / "paths", columns=["price_bounded"]).column(0).to_pylist()
    assert summary["price_bounds"] == {"floor_ratio": FLOOR, "cap_ratio": CAP,
                                       "paths_bounded": sum(flags)}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["paths_price_bounded"] == sum(flags)
    if sum(flags):
        assert f"on {sum(flags)} of 60 paths" in err and "warning" in err
    else:
        assert "warning" not in err
    assert cli.main(["verify", str(out)]) == 0
    return out, summary, err


@pytest.mark.parametrize("model", ["gbm", "student_t", "merton", "garch"])
def test_extreme_vol_hits_the_floor(tmp_path, capsys, model):
    """vol = 20 over a year, and a 1e6 vol shock: without the floor prices underflow to 0."""
    text = scenario_text(vol=20.0, horizon_days=365.0, model=model,
                         shocks=shock("vol", 10, "*", 1e6, 5))
    out, summary, _ = run_cli(tmp_path, text, capsys)
    assert summary["price_bounds"]["paths_bounded"] == 60
    final = pq.read_table(out / "paths", columns=["final_price_BTC"]).column(0).to_numpy()
    assert (final <= 100.0 * 1e-6).all()  # crushed, and held at or above the floor


def test_gaps_toward_zero_and_up_are_bounded_exactly(tmp_path, capsys):
    """Zero vol: four -99.99% gaps take BTC to 1e-14 x its price, below the floor; seven
    +10,000% gaps take ETH to 101**7 ~ 1.07e14 x, above the cap. The replay ends at
    the bounds."""
    shocks = "".join(shock("gap", k, "BTC", -0.9999) for k in (5, 6, 7, 8))
    shocks += "".join(shock("gap", k, "ETH", 100.0) for k in range(5, 12))
    out, summary, _ = run_cli(tmp_path, scenario_text(vol=0.0, shocks=shocks), capsys)
    assert summary["price_bounds"]["paths_bounded"] == 60
    paths = pq.read_table(out / "paths").to_pydict()
    for price in paths["final_price_BTC"] + paths["min_price_BTC"]:
        assert math.isclose(price, 100.0 * FLOOR, rel_tol=1e-9)
    for price in paths["final_price_ETH"]:
        assert math.isclose(price, 10.0 * CAP, rel_tol=1e-9)
    prices = pq.read_table(out / "prices_no_impact").to_pydict()
    exo_btc = [p for p, s in zip(prices["BTC"], prices["step"], strict=True)
               if s == 8]
    assert all(math.isclose(p, 100.0 * FLOOR, rel_tol=1e-9) for p in exo_btc)


def test_gap_of_minus_one_is_refused(tmp_path, capsys):
    """A price of exactly 0 has no log price: a gap of -100% is invalid input."""
    src = tmp_path / "zero.toml"
    src.write_text(scenario_text(shocks=shock("gap", 3, "BTC", -1.0)))
    assert cli.main(["run", str(src), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "shocks" in err and "size" in err and "-1" in err
    assert not (tmp_path / "run").exists()


def test_huge_positions_squeeze_to_the_cap(tmp_path, capsys):
    """qty 1e10 (its inverse contracts 1e12, the loader's largest |qty|) against 1e3 USD of
    depth: the first forced purchase alone would move the price by exp(0.01 * sqrt(1e15))
    (an overflow); it is capped and flagged."""
    text = scenario_text(qty=1e10, depth=1e3, shocks=shock("gap", 3, "BTC", 0.5))
    out, summary, _ = run_cli(tmp_path, text, capsys)
    assert summary["price_bounds"]["paths_bounded"] == 60
    events = pq.read_table(out / "events").to_pandas()
    assert len(events) > 0
    # the shorts' forced purchases squeeze BTC to its cap; the longs' sales of ETH drive it
    # to its floor
    btc = events.loc[events["symbol"] == "BTC", "mark_price"]
    assert np.isclose(btc.max(), 100.0 * CAP, rtol=1e-12)
    prices = pq.read_table(out / "prices").to_pandas()
    assert np.isclose(prices["BTC"].max(), 100.0 * CAP, rtol=1e-12)
    assert np.isclose(prices["ETH"].min(), 10.0 * FLOOR, rtol=1e-12)
    # the same files with two workers
    out2 = tmp_path / "run2"
    assert cli.main(["run", str(tmp_path / "extreme.toml"), "--out", str(out2),
                     "--save-prices", "30", "--quiet", "--jobs", "2"]) == 0
    for sub in ("paths", "events", "prices"):
        for part in sorted((out / sub).glob("*.parquet")):
            a = pq.read_table(part).replace_schema_metadata(None)
            b = pq.read_table(out2 / sub / part.name).replace_schema_metadata(None)
            assert a.equals(b), (sub, part.name)


def test_near_singular_correlation(tmp_path, capsys):
    """Correlation 1 - 1e-12 (smallest eigenvalue ~1e-12), with a correlation shock to the
    same value and high vol: finite outputs, no bound reached."""
    rho = 1.0 - 1e-12
    corr = np.array([[1.0, rho], [rho, 1.0]])
    assert np.linalg.eigvalsh(corr)[0] == pytest.approx(1e-12, rel=1e-3)
    text = scenario_text(vol=3.0, rho=rho, shocks=shock("correlation", 2, "*", rho, 10))
    out, summary, _ = run_cli(tmp_path, text, capsys)
    assert summary["price_bounds"]["paths_bounded"] == 0
    paths = pq.read_table(out / "paths").to_pydict()
    # almost perfectly correlated with equal vols: the two log returns agree closely
    # (no shock, no impact beyond noise: check the exogenous prices)
    prices = pq.read_table(out / "prices_no_impact").to_pydict()
    r_btc = np.log(np.array(prices["BTC"]) / 100.0)
    r_eth = np.log(np.array(prices["ETH"]) / 10.0)
    np.testing.assert_allclose(r_btc, r_eth, atol=1e-4)
    assert len(paths["path_id"]) == 60


def test_benign_run_flags_nothing(tmp_path, capsys):
    _, summary, err = run_cli(tmp_path, scenario_text(shocks=shock("gap", 3, "BTC", -0.2)),
                              capsys)
    assert summary["price_bounds"]["paths_bounded"] == 0


@pytest.mark.parametrize("model", ["gbm", "student_t", "merton", "garch"])
def test_bounded_kernels_match_numpy_reference(tmp_path, model):
    """With the floor reached, the kernels and the NumPy reference still agree, and both sit
    at the documented floor."""
    src = tmp_path / "s.toml"
    src.write_text(scenario_text(vol=20.0, horizon_days=36.5, model=model,
                                 shocks=shock("vol", 10, "BTC", 1e3, 3)))
    inputs = prepare_path_inputs(load_scenario(src))
    fast = generate_paths(inputs, 40, np.random.default_rng(5))
    ref = generate_paths_numpy(inputs, 40, np.random.default_rng(5))
    assert np.isfinite(fast).all()
    np.testing.assert_allclose(fast, ref, rtol=1e-9)
    at_floor = np.isclose(fast[:, :, 0], 100.0 * FLOOR, rtol=1e-9)
    assert at_floor[:, 10:13].all()  # at the floor during the shock (steps 10 to 12)
    assert not at_floor[:, :10].any()  # and not before it
    assert (fast[:, 13:, 0] > 100.0 * FLOOR * 1.5).any()  # a path continues from it
    assert (fast >= np.array([100.0, 10.0]) * FLOOR * (1 - 1e-12)).all()


@pytest.mark.parametrize("half_life", [0.0, 3.0])
def test_bounded_replay_matches_naive(half_life):
    """Depth 1e-3 USD makes every forced sale overflow the impact law, and BTC's exogenous
    path drops below the floor: the engine and the slow reference clamp, flag and settle
    alike."""
    rng = np.random.default_rng(11)
    prices = np.array([100.0, 20.0, 3.0])
    book = random_book(rng, 25, prices, 0.02)
    steps = 12
    exo = random_paths(rng, 6, steps, prices)
    exo[2, 6:, 0] = 100.0 * 1e-14  # below the floor
    depth = np.full((steps + 1, 3), 1e-3)
    haircut = np.array([0.1, 0.2, 0.3])
    venue = Venue(liquidation="full", liquidation_fee_rate=0.01, insurance_fund_usd=100.0,
                  adl=True, maintenance_margin_rate=0.02, max_cascade_rounds=8)
    liquidity = Liquidity(impact="sqrt", half_life_steps=half_life)
    rules = EngineRules.from_scenario(venue, liquidity, market(prices, haircut))
    fast = replay(exo, depth, book, rules, initial_events=16)
    paths, events, accounts = naive_replay(
        exo, depth, haircut, rules.tier_rate[:, 0], book.unit_account, book.unit_usd,
        book.unit_coll, book.pos_unit, book.pos_asset, book.pos_qty, book.pos_entry,
        n_accounts=book.n_accounts, fee_rate=venue.liquidation_fee_rate,
        partial=False, target=venue.target, fund0=venue.insurance_fund_usd, adl=True,
        max_rounds=venue.max_cascade_rounds, alpha=liquidity.alpha,
        decay=liquidity.decay_per_step)
    assert len(events) > 10
    # account PnL is linear in the final marks plus corrections: at marks near the cap its
    # rounding error is that of USD values ~1e15, so it is compared at that scale
    scale = float(np.abs(accounts["pnl"]).max())
    assert_same(fast, book, paths, events, accounts, prices, pnl_atol=1e-14 * scale)
    flags = fast.path_i[:, codes.PI_PRICE_BOUNDED]
    assert flags[2] == 1 and flags.sum() > 2  # the floor, and impact clamped
    assert np.isfinite(fast.ev_f).all() and np.isfinite(fast.path_f).all()
    lo, hi = prices * FLOOR, prices * CAP
    assert ((fast.final_price >= lo) & (fast.final_price <= hi)).all()


def test_bound_price_kernel_matches_reference():
    from simulator._kernels.bounds import bound_price, bound_price_nb

    lo, hi = 1e-10, 1e14
    cases = [0.0, -1.0, 1e-300, lo, 5e-11, 1.0, hi, 2e14, math.inf, -math.inf, math.nan]
    expected = [lo, lo, lo, lo, lo, 1.0, hi, hi, hi, lo, lo]  # by hand: NaN -> floor
    assert [bound_price(x, lo, hi) for x in cases] == expected
    assert [bound_price_nb(x, lo, hi) for x in cases] == expected


@pytest.mark.parametrize("depth", [1e6, math.inf])
def test_zerodiv_compounded_liquidity_shocks_keep_the_depth_positive(tmp_path, capsys, depth):
    """Two overlapping liquidity shocks of 1e-200 compound to 1e-400, an underflow to 0:
    the impact law then divided by a depth of 0 (ZeroDivisionError out of the engine) or,
    with depth_usd = inf, by NaN (inf * 0), which sent every impacted mark to the floor.
    The compounded multiplier is held at 1e-300 (README "How shocks act")."""
    shocks = 2 * shock("liquidity", 3, "*", 1e-200, 6) + shock("gap", 4, "*", -0.5)
    text = scenario_text(depth=depth, shocks=shocks)
    src = tmp_path / "src.toml"
    src.write_text(text)
    got = prepare_path_inputs(load_scenario(str(src))).depth_usd
    window = np.zeros(got.shape[0], dtype=bool)
    window[3:9] = True
    assert (got[~window] == depth).all()
    assert (got[window] == depth * 1e-300).all()  # 1e-294, or inf: still no impact
    out = tmp_path / "run"
    assert cli.main(["run", str(src), "--out", str(out), "--save-prices", "30",
                     "--quiet"]) == 0
    summary = assert_json_finite(out / "summary.json")
    for sub in ("paths", "events", "prices"):
        table = pq.read_table(out / sub)
        for name in table.column_names:
            if pa.types.is_floating(table.column(name).type):
                assert np.isfinite(table.column(name).drop_null().to_numpy()).all(), name
    events = pq.read_table(out / "events").to_pandas()
    assert (events["step"] == 4).any()  # forced sales inside the window
    marks = pq.read_table(out / "prices").to_pandas()
    exo = pq.read_table(out / "prices_no_impact").to_pandas()
    if math.isinf(depth):  # no impact at any depth multiplier
        assert summary["price_bounds"]["paths_bounded"] == 0
        pd_equal = (marks[["BTC", "ETH"]].to_numpy() == exo[["BTC", "ETH"]].to_numpy())
        assert pd_equal.all()
    else:  # a forced sale against a book of ~1e-294 USD takes its asset to the floor
        assert summary["price_bounds"]["paths_bounded"] > 0
        assert math.isclose(marks["BTC"].min(), 100.0 * FLOOR, rel_tol=1e-9)


def test_infinite_depth_is_echoed_as_strict_json(tmp_path, capsys):
    """``depth_usd = inf`` (the default: an infinitely deep book) was echoed in
    manifest.json as ``Infinity``, which strict JSON readers refuse: it is the string
    "inf" now, and every JSON file of the run parses without non-standard constants."""
    out, _, _ = run_cli(tmp_path, scenario_text(depth=math.inf), capsys)
    manifest = json.loads((out / "manifest.json").read_text(), parse_constant=no_constants)
    depths = [a["depth_usd"] for a in manifest["scenario_resolved"]["market"]["assets"]]
    assert depths == ["inf", "inf"]
    assert cli.main(["verify", str(out)]) == 0


@pytest.mark.parametrize("value", [None, "inf", "-inf"])
def test_json_check_catches_what_write_json_writes_for_non_finite(tmp_path, value):
    """The scans above read summary.json and manifest.json with assert_json_finite: NaN is
    written as null and an infinity as "inf", which plain parsing accepts; the check does
    not (outside a stderr and the scenario echoes)."""
    path = tmp_path / "summary.json"
    metrics = {"liquidation_prob": {"estimate": 1.0, "stderr": 0.0},
               "bad_debt_mean": {"estimate": value, "stderr": None}}
    path.write_text(json.dumps({"metrics": metrics, "scenario": {"depth_usd": "inf"}}))
    with pytest.raises(AssertionError, match="bad_debt_mean.estimate"):
        assert_json_finite(path)
    metrics["bad_debt_mean"]["estimate"] = 1.0
    path.write_text(json.dumps({"metrics": metrics, "scenario": {"depth_usd": "inf"}}))
    assert assert_json_finite(path)["metrics"] == metrics


def test_sweep_warns_when_points_reach_a_price_bound(tmp_path, capsys):
    """``run`` warns about bounded prices; a sweep did not. Now one line names the points
    where a bound was reached (here the tiny-depth point only)."""
    src = tmp_path / "extreme.toml"
    src.write_text(scenario_text(qty=1e10, shocks=shock("gap", 3, "BTC", 0.5)))
    out = tmp_path / "sweep"
    assert cli.main(["sweep", str(src), "--grid", "market.assets.0.depth_usd=1e3,1e30",
                     "--grid", "market.assets.1.depth_usd=1e30", "--out", str(out),
                     "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "of 1 of 2 points" in err and "floor or cap" in err
