"""The circuit breaker (``docs/engine.md``, "Circuit breaker"), by hand.

- ``"liquidations"``: a long liquidated at step ``s`` without the breaker is liquidated at
  exactly ``s + K`` with it (the band below step ``s``'s move), filled at that step's mark.
- ``"trading"``: the marks stay at the last close during the pause, while the impact
  outstanding keeps decaying; funding is not paid and answers to margin calls wait for the
  pause's end.
- The band is not tested during a pause nor at the step it ends at (no endless halt).
- The keys: defaults leave the scenario digest and the ``paths/`` columns as before; bad
  values, and the breaker with ``intrastep = "bridge"``, are errors naming the key; with a
  breaker, ``paths/`` and ``summary.json`` carry its counts.

Its equality with the slow reference on random books is in
``tests/margin/test_breaker_vs_reference.py``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from simulator.book.build import assemble_book
from simulator.config.behaviour import Behaviour
from simulator.config.market import Liquidity
from simulator.config.scenario import load_scenario, scenario_from_dict
from simulator.config.venue import Venue
from simulator.errors import ScenarioError
from simulator.execution.runner import run
from simulator.margin import EngineRules, codes, replay
from simulator.margin.engine import account_nav_coefficients
from simulator.report.write import write_report
from simulator.sweeps.sweep import sweep

from ..support.flat_books import market

MMR = 0.01
#: one isolated long of 1,000 coins at 100 with 10,000 USD: liquidation price
#: (100,000 - 10,000) / (1,000 x 0.99) = 90.91; and a well-margined short
LONG_LP = 90_000.0 / 990.0


def _book():
    return assemble_book(["long", "short"], np.array([True, True]),
                         np.array([10_000.0, 60_000.0]), np.zeros((2, 1)), np.array([0, 1]),
                         np.array([0, 0]), np.array([1000.0, -1000.0]),
                         np.array([100.0, 100.0]))


def _replay(prices, band=0.0, steps_k=3, halts="liquidations", impact="none", depth=np.inf,
            half_life=0.0, behaviour=None, step_hours=None, **venue):
    exo = np.asarray(prices, dtype=float).reshape(1, -1, 1)
    v = Venue(maintenance_margin_rate=MMR, circuit_breaker_band=band,
              circuit_breaker_steps=steps_k, circuit_breaker_halts=halts, **venue)
    rules = EngineRules.from_scenario(v, Liquidity(impact=impact, half_life_steps=half_life),
                                      market(np.array([100.0]), np.array([0.0]), vols=(0.8,)),
                                      behaviour=behaviour, step_hours=step_hours)
    return replay(exo, np.full((exo.shape[1], 1), depth), _book(), rules, save_marks=1)


#: the long's liquidation step without the breaker: step 2 falls 10.1% (99 -> 89)
PRICES = [100.0, 99.0, 89.0, 88.0, 87.0, 86.0, 85.0, 84.0, 83.0]


def _liquidations(res):
    kind = res.ev_i[:, codes.EI_KIND]
    return res.ev_i[kind == codes.KIND_LIQUIDATION], res.ev_f[kind == codes.KIND_LIQUIDATION]


@pytest.mark.parametrize("steps_k", [1, 3, 5])
def test_a_trip_delays_the_liquidation_by_k_steps(steps_k):
    off = _replay(PRICES)
    ei, ef = _liquidations(off)
    assert ei[:, codes.EI_STEP].tolist() == [2]
    assert ef[0, codes.EF_MARK] == 89.0 < LONG_LP
    s = 2
    on = _replay(PRICES, band=0.10, steps_k=steps_k)  # step 2's move is 10.1% > 10%
    ei, ef = _liquidations(on)
    assert ei[:, codes.EI_STEP].tolist() == [s + steps_k]
    assert ef[0, codes.EF_MARK] == ef[0, codes.EF_EXEC] == PRICES[s + steps_k]  # no impact
    assert on.path_i[0, codes.PI_BREAKER_TRIPS] == 1
    assert on.path_i[0, codes.PI_BREAKER_PAUSED] == steps_k
    assert on.path_i[0, codes.PI_FIRST_STEP] == s + steps_k
    # the marks went on under "liquidations": the closes are the exogenous prices
    np.testing.assert_array_equal(on.marks[0, :, 0], PRICES)


def test_a_band_above_the_move_does_not_trip():
    res = _replay(PRICES, band=0.102)
    assert _liquidations(res)[0][:, codes.EI_STEP].tolist() == [2]
    assert res.path_i[0, codes.PI_BREAKER_TRIPS] == res.path_i[0, codes.PI_BREAKER_PAUSED] == 0


def test_the_band_is_not_tested_in_a_pause_nor_at_its_end():
    # steps 1 and 2 move 20%: a trip at 1 pauses 1, 2; step 3 (the pause's end, -20%)
    # cannot trip; step 4 (-20% from step 3's close) trips again; 5 pauses, 6 ends it
    prices = [100.0, 120.0, 96.0, 76.8, 61.44, 61.44, 61.44]
    res = _replay(prices, band=0.15, steps_k=2)
    assert res.path_i[0, codes.PI_BREAKER_TRIPS] == 2
    assert res.path_i[0, codes.PI_BREAKER_PAUSED] == 4
    # the long (LP 90.91) is liquidated at step 3, the pause's end, at 76.8
    ei, ef = _liquidations(res)
    assert ei[:, codes.EI_STEP].tolist() == [3]
    assert ef[0, codes.EF_MARK] == 76.8


def test_trading_halt_freezes_the_marks_at_the_last_close():
    res = _replay(PRICES, band=0.10, steps_k=3, halts="trading")
    # steps 2, 3, 4 paused at step 1's close (99); step 5 trades again at 86
    np.testing.assert_array_equal(res.marks[0, :, 0], [100.0, 99.0, 99.0, 99.0, 99.0, 86.0,
                                                       85.0, 84.0, 83.0])
    ei, ef = _liquidations(res)
    assert ei[:, codes.EI_STEP].tolist() == [5]
    assert ef[0, codes.EF_MARK] == 86.0
    assert res.path_i[0, codes.PI_BREAKER_PAUSED] == 3
    np.testing.assert_array_equal(res.min_price[0], [83.0])


def test_trading_halt_keeps_decaying_the_impact():
    # step 1 liquidates the long (100 -> 90, inside the 12% band) with impact; step 2
    # falls 15% and trips: steps 2, 3 stay at step 1's close; at step 4 the impact has
    # decayed three times since
    prices = [100.0, 90.0, 76.5, 76.0, 75.0, 75.0]
    half_life = 2.0
    res = _replay(prices, band=0.16, steps_k=2, halts="trading", impact="linear",
                  depth=2.0e5, half_life=half_life)
    assert res.path_i[0, codes.PI_BREAKER_TRIPS] == 0  # 90 -> 76.5 is 15%: inside 16%
    res = _replay(prices, band=0.12, steps_k=2, halts="trading", impact="linear",
                  depth=2.0e5, half_life=half_life)
    ei, _ = _liquidations(res)
    assert ei[:, codes.EI_STEP].tolist() == [1]
    close1 = res.marks[0, 1, 0]
    logimp = math.log(close1 / prices[1])
    assert logimp < -0.004  # the forced sale of 1,000 coins moved the price 0.45%
    decay = 0.5 ** (1.0 / half_life)
    assert res.path_i[0, codes.PI_BREAKER_TRIPS] == 1
    np.testing.assert_array_equal(res.marks[0, 2:4, 0], [close1, close1])
    assert res.marks[0, 4, 0] == pytest.approx(prices[4] * math.exp(logimp * decay ** 3),
                                               rel=1e-12)


def test_trading_halt_pays_no_funding_and_defers_the_answers():
    calls = Behaviour(margin_call_ratio=5.0, answer_probability=1.0, delay_steps=1,
                      action="top_up", target_ratio=6.0, reserve_ratio=1.0)
    # the long (E = 10,000 - 1,000 (100 - M) - funding, MM = 10 M) is called at step 1
    # (M = 94: E = 3,906 < 5 MM) and answers one step later with a top-up; step 2 falls
    # 7.4%, beyond the 7% band
    prices = [100.0, 94.0, 87.0, 87.0, 87.0, 87.0]
    kw = dict(behaviour=calls, step_hours=8.0, insurance_fund_usd=0.0, funding="constant",
              funding_rate=0.001, funding_interval_hours=8.0)
    runs = {"off": _replay(prices, **kw),
            "liquidations": _replay(prices, band=0.07, steps_k=2, **kw),
            "trading": _replay(prices, band=0.07, steps_k=2, halts="trading", **kw)}
    answered = {"off": 2, "liquidations": 2, "trading": 4}  # trading: at the pause's end
    funded = {"off": (1, 2, 3, 4, 5), "liquidations": (1, 2, 3, 4, 5), "trading": (1, 4, 5)}
    book = _book()
    for name, res in runs.items():
        top_up = res.ev_i[:, codes.EI_KIND] == codes.KIND_TOP_UP
        assert res.ev_i[top_up, codes.EI_STEP].tolist() == [answered[name]], name
        assert not (res.ev_i[:, codes.EI_KIND] == codes.KIND_LIQUIDATION).any(), name
        assert res.path_i[0, codes.PI_BREAKER_TRIPS] == (name != "off"), name
        # the short receives 0.1% of its notional at every funded step, at the step's mark
        marks = res.marks[0, :, 0]
        received = sum(1000.0 * marks[t] * 0.001 for t in funded[name])
        pnl = res.account_pnl(account_nav_coefficients(book), np.array([100.0]))
        assert pnl[0, 1] == pytest.approx(-1000.0 * (87.0 - 100.0) + received, rel=1e-12), name
    np.testing.assert_array_equal(runs["trading"].marks[0, :, 0],
                                  [100.0, 94.0, 94.0, 94.0, 87.0, 87.0])


# ---------------------------------------------------------------------------------------
# Keys and outputs
# ---------------------------------------------------------------------------------------


def _doc(**venue):
    return {
        "name": "breaker",
        "simulation": {"paths": 2, "seed": 0, "steps": 6, "horizon_days": 0.25},
        "market": {"assets": [{"symbol": "BTC", "price": 100.0, "vol": 0.0}]},
        "liquidity": {"impact": "none"},
        "venue": {"maintenance_margin_rate": MMR, **venue},
        "shocks": [{"kind": "gap", "step": 2, "asset": "BTC", "size": -0.12}],
        "accounts": [{"id": "long", "margin_mode": "isolated", "collateral": {"USD": 10000.0},
                      "positions": [{"symbol": "BTC", "qty": 1000.0, "entry": 100.0}]}],
    }


def test_defaults_keep_the_digest():
    base = scenario_from_dict(_doc())
    explicit = scenario_from_dict(_doc(circuit_breaker_band=0.0, circuit_breaker_steps=7,
                                       circuit_breaker_halts="trading"))
    assert base.venue.circuit_breaker_band == 0.0
    assert base.venue.circuit_breaker_steps == 5
    assert base.venue.circuit_breaker_halts == "liquidations"
    assert "circuit_breaker_band" not in base.resolved()["venue"]
    assert explicit.digest == base.digest  # off: the other keys do nothing
    on = scenario_from_dict(_doc(circuit_breaker_band=0.05))
    assert on.digest != base.digest
    assert on.resolved()["venue"]["circuit_breaker_steps"] == 5


@pytest.mark.parametrize(("venue", "key", "words"), [
    ({"circuit_breaker_band": -0.1}, "venue.circuit_breaker_band", ">="),
    ({"circuit_breaker_steps": 0}, "venue.circuit_breaker_steps", ">="),
    ({"circuit_breaker_halts": "all"}, "venue.circuit_breaker_halts", "liquidations"),
])
def test_bad_values_name_the_key(venue, key, words):
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(_doc(**venue))
    assert info.value.key == key
    assert words in str(info.value)


def test_the_bridge_is_refused():
    doc = _doc(circuit_breaker_band=0.05)
    doc["simulation"]["intrastep"] = "bridge"
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(doc)
    assert info.value.key == "venue.circuit_breaker_band"
    assert "intrastep" in str(info.value)


def test_the_engine_refuses_a_bridge_with_a_breaker():
    exo = np.array(PRICES).reshape(1, -1, 1)
    rules = EngineRules.from_scenario(Venue(circuit_breaker_band=0.05), Liquidity(),
                                      market(np.array([100.0]), np.array([0.0]), vols=(0.8,)))
    bridge = np.repeat(exo[..., None], 2, axis=-1)
    with pytest.raises(ValueError, match="circuit breaker"):
        replay(exo, np.full((exo.shape[1], 1), np.inf), _book(), rules, bridge=bridge)


def test_run_outputs(tmp_path):
    off = run(scenario_from_dict(_doc()), tmp_path / "off")
    on = run(scenario_from_dict(_doc(circuit_breaker_band=0.1, circuit_breaker_steps=2)),
             tmp_path / "on")
    paths_off = pq.read_table(off.out_dir / "paths")
    paths_on = pq.read_table(on.out_dir / "paths")
    assert "breaker_trips" not in paths_off.column_names
    assert paths_on.column_names[-2:] == ["breaker_trips", "breaker_paused_steps"]
    assert paths_on.column("breaker_trips").to_pylist() == [1, 1]
    assert paths_on.column("breaker_paused_steps").to_pylist() == [2, 2]
    assert paths_off.column("first_liquidation_step").to_pylist() == [2, 2]
    assert paths_on.column("first_liquidation_step").to_pylist() == [4, 4]
    summary_off = json.loads((off.out_dir / "summary.json").read_text())["metrics"]
    summary = json.loads((on.out_dir / "summary.json").read_text())["metrics"]
    assert "breaker_trip_prob" not in summary_off
    assert summary["breaker_trip_prob"] == {"estimate": 1.0, "stderr": 0.0}
    assert summary["breaker_trips_mean"]["estimate"] == 1.0
    assert summary["breaker_paused_steps_mean"]["estimate"] == 2.0


def test_builtin_scenarios_load_without_a_breaker():
    sc = load_scenario("deterministic-gap")
    assert sc.venue.circuit_breaker_band == 0.0
    assert not EngineRules.for_scenario(sc).breaker


def test_sweep_over_the_band(tmp_path):
    """A sweep compares the venue with and without the breaker on the same paths: the
    deterministic gap's cascade (step 1) waits for the pause's end (step 1 + 5); the
    breaker's metrics are null at the point without one."""
    result = sweep("deterministic-gap", [("venue.circuit_breaker_band", [0.0, 0.05])],
                   out_dir=tmp_path / "sweep")
    table = pq.read_table(result.out_dir / "sweep.parquet").to_pydict()
    assert table["venue.circuit_breaker_band"] == [0.0, 0.05]
    assert table["breaker_trip_prob"][0] is None
    assert table["breaker_trip_prob"][1] == 1.0
    assert table["breaker_paused_steps_mean"][1] == 5.0
    assert table["first_liquidation_step_mean"] == [1.0, 6.0]
    assert table["n_liquidations_mean"] == [4.0, 4.0]  # the same cascade, five steps later
    page = write_report(result.out_dir).read_text()
    assert "breaker_trip_prob against venue.circuit_breaker_band" in page
