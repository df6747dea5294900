"""Between the steps (``simulation.intrastep = "bridge"``).

- One isolated long under GBM without impact, 24 steps a day: with the bridge its
  liquidation probability is the continuous-monitoring first-passage probability of GBM
  (a closed form); without it, it is biased low, by what the Broadie-Glasserman-Kou
  correction for monitoring at 24 points predicts.
- The Numba engine's sweeps equal the slow reference's (``tests/reference``), event by
  event, on random books and paths, indexed and full-scan.
- Off (the default), a run's outputs are those of before (``tests/test_golden_runs.py``);
  on, the paths' own draws are unchanged (common random numbers with a plain run).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from simulator.config.market import Liquidity
from simulator.config.scenario import Venue, scenario_from_dict
from simulator.execution.runner import run
from simulator.margin import EngineRules, replay

from ..reference import naive_replay
from ..support.compare import assert_same, naive_options, reference_kwargs, run_reference
from ..support.first_passage import discrete_prob, first_passage_prob, liquidation_price
from ..support.flat_books import market, random_book, random_paths
from ..support.option_cases import CASES as OPTION_CASES
from ..support.option_cases import HAIRCUT, STEP_HOURS, STEPS, reserve_of
from ..support.option_cases import build as build_option_case
from ..support.option_cases import rules_of as option_rules
from ..support.rule_cases import CASES as RULE_CASES
from ..support.rule_cases import PRICES, tier_tables
from ..support.rule_cases import build as build_rule_case
from ..support.rule_cases import run_naive as run_rule_naive

K = 4.0


def _one_long(intrastep: str, n_paths: int, margin: float, vol: float, drift: float,
              ) -> dict:
    return {
        "name": "one-long",
        "simulation": {"paths": n_paths, "seed": 19, "steps": 24, "horizon_days": 1.0,
                       "chunk_paths": 5000, "intrastep": intrastep},
        "market": {"assets": [{"symbol": "X", "price": 100.0, "vol": vol, "drift": drift}]},
        "liquidity": {"impact": "none"},
        "venue": {"maintenance_margin_rate": 0.01, "insurance_fund_usd": 1e15,
                  "liquidation_fee_rate": 0.0, "margin_mode": "isolated"},
        "accounts": [{"id": "long", "collateral": {"USD": margin},
                      "positions": [{"symbol": "X", "qty": 10.0, "entry": 100.0}]}],
    }


@pytest.mark.parametrize("drift", [0.0, 3.0])
def test_bridge_gives_the_continuous_first_passage_probability(tmp_path, drift):
    vol, margin, n_paths = 1.2, 70.0, 20_000
    t, dt = 1.0 / 365.0, 1.0 / 365.0 / 24
    barrier = liquidation_price(10.0, 100.0, margin, 0.01)
    p_cont = first_passage_prob(100.0, barrier, drift, vol, t)
    p_disc = discrete_prob(100.0, barrier, drift, vol, t, dt)
    assert 0.1 < p_disc < p_cont < 0.9
    # the gap the test must see: over 10 standard errors
    se = math.sqrt(p_cont * (1 - p_cont) / n_paths)
    assert p_cont - p_disc > 10 * se
    probs = {}
    for mode in ("none", "bridge"):
        run(scenario_from_dict(_one_long(mode, n_paths, margin, vol, drift)),
            tmp_path / mode)
        probs[mode] = float(pq.read_table(tmp_path / mode / "accounts.parquet")
                            .column("liquidation_prob")[0].as_py())
    assert abs(probs["bridge"] - p_cont) < K * se, (probs, p_cont)
    # without the bridge: biased low, as discrete monitoring at 24 points is
    se_disc = math.sqrt(p_disc * (1 - p_disc) / n_paths)
    assert probs["none"] < p_cont - 6 * se, (probs, p_cont)
    assert abs(probs["none"] - p_disc) < K * se_disc, (probs, p_disc)


def test_bridge_keeps_the_paths_and_liquidates_at_the_low(tmp_path):
    """The same paths (common random numbers) and, with no impact, every liquidation of
    a bridged run is at the step's bridge low or its close; never later than without."""
    sc = _one_long("none", 2000, 70.0, 1.2, 0.0)
    run(scenario_from_dict(sc), tmp_path / "none")
    sc["simulation"]["intrastep"] = "bridge"
    run(scenario_from_dict(sc), tmp_path / "bridge")
    plain = pq.read_table(tmp_path / "none" / "paths").to_pandas().sort_values("path_id")
    bridged = pq.read_table(tmp_path / "bridge" / "paths").to_pandas().sort_values("path_id")
    np.testing.assert_array_equal(plain["final_price_X"], bridged["final_price_X"])
    # the bridge's low is at most the lowest close; liquidations only come earlier
    assert (bridged["min_price_X"].to_numpy() <= plain["min_price_X"].to_numpy()).all()
    first_p = plain["first_liquidation_step"].fillna(-1).to_numpy()  # null: none
    first_b = bridged["first_liquidation_step"].fillna(-1).to_numpy()
    both = (first_p >= 0) & (first_b >= 0)
    assert (first_b[both] <= first_p[both]).all()
    assert ((first_b >= 0) | (first_p < 0)).all()  # liquidated without: liquidated with
    assert (bridged["n_liquidations"] >= plain["n_liquidations"]).all()


def _bridge(rng: np.random.Generator, exo: np.ndarray, spread: float) -> np.ndarray:
    """Made-up intrastep extremes around the closes (the engines must agree on any)."""
    lo = np.minimum(exo[:, :-1], exo[:, 1:]) * np.exp(-spread * rng.random(exo[:, 1:].shape))
    hi = np.maximum(exo[:, :-1], exo[:, 1:]) * np.exp(spread * rng.random(exo[:, 1:].shape))
    out = np.repeat(exo[..., None], 2, axis=3)
    out[:, 1:, :, 0] = lo
    out[:, 1:, :, 1] = hi
    return out


CASES = [
    # liquidation, impact, adl, half_life, fund
    ("full", "linear", True, 0.0, 2000.0),
    ("partial", "sqrt", False, 2.0, 0.0),
    ("full", "none", True, 3.0, 0.0),
]


@pytest.mark.parametrize(("liquidation", "impact", "adl", "half_life", "fund"), CASES)
@pytest.mark.parametrize("full_scan", [False, True], ids=["indexed", "full-scan"])
def test_sweeps_match_the_reference(liquidation, impact, adl, half_life, fund, full_scan):
    rng = np.random.default_rng(7)
    prices = np.array([100.0, 20.0, 3.0])
    mmr_rate = 0.02
    book = random_book(rng, 25, prices, mmr_rate)
    steps = 12
    exo = random_paths(rng, 6, steps, prices)
    bridge = _bridge(rng, exo, 0.04)
    depth = np.full((steps + 1, 3), 4000.0)
    haircut = np.array([0.1, 0.2, 0.3])
    venue = Venue(liquidation=liquidation, target=1.3, liquidation_fee_rate=0.01,
                  insurance_fund_usd=fund, adl=adl, maintenance_margin_rate=mmr_rate,
                  max_cascade_rounds=8)
    liquidity = Liquidity(impact=impact, half_life_steps=half_life)
    rules = EngineRules.from_scenario(venue, liquidity, market(prices, haircut),
                                      full_scan=full_scan)
    fast = replay(exo, depth, book, rules, initial_events=16, bridge=bridge)
    paths, events, accounts = naive_replay(
        exo, depth, haircut, rules.tier_rate[:, 0], book.unit_account, book.unit_usd,
        book.unit_coll, book.pos_unit, book.pos_asset, book.pos_qty, book.pos_entry,
        n_accounts=book.n_accounts, fee_rate=venue.liquidation_fee_rate,
        partial=liquidation == "partial", target=venue.target, fund0=fund, adl=adl,
        max_rounds=venue.max_cascade_rounds, alpha=liquidity.alpha,
        decay=liquidity.decay_per_step, bridge=bridge)
    assert len(events) > 10
    assert_same(fast, book, paths, events, accounts, prices)
    # the sweeps matter: the same book without them liquidates less
    plain = replay(exo, depth, book, rules, initial_events=16)
    assert len(plain.ev_i) < len(fast.ev_i)


def test_bridge_shape_is_checked():
    rng = np.random.default_rng(1)
    prices = np.array([100.0, 20.0, 3.0])
    book = random_book(rng, 5, prices, 0.02)
    exo = random_paths(rng, 2, 4, prices)
    rules = EngineRules.from_scenario(Venue(), Liquidity(), market(prices, [0.1, 0.1, 0.1]))
    with pytest.raises(ValueError, match="bridge must have shape"):
        replay(exo, np.full((5, 3), 1e6), book, rules, bridge=np.ones((2, 5, 3)))


@pytest.mark.parametrize("case", RULE_CASES, ids=[c.name for c in RULE_CASES])
def test_sweeps_follow_the_venue_rules_as_the_reference(case):
    """Brackets, incremental liquidation, the backstop vault, ADL rankings and the lending
    round: the sweeps of both engines agree there too."""
    s = build_rule_case(case, 3)
    bridge = _bridge(np.random.default_rng(4), s.exo, 0.05)
    rules = EngineRules.from_scenario(s.venue, s.liquidity, s.market)
    fast = replay(s.exo, s.depth, s.book, rules, initial_events=16, bridge=bridge)
    paths, events, accounts = run_rule_naive(
        s, rules.haircut, (rules.tier_cap, rules.tier_rate, rules.tier_cum), bridge=bridge)
    assert len(events) > 10
    assert_same(fast, s.book, paths, events, accounts, PRICES)


@pytest.mark.parametrize("case", OPTION_CASES[:3], ids=[c.name for c in OPTION_CASES[:3]])
@pytest.mark.parametrize("full_scan", [False, True], ids=["indexed", "full-scan"])
def test_sweeps_value_options_as_the_reference(case, full_scan):
    """Option units inside their boxes, margin calls and funding with the sweeps."""
    s = build_option_case(case, 2)
    bridge = _bridge(np.random.default_rng(6), s.exo, 0.05)
    rules = option_rules(s, full_scan)
    reserve = reserve_of(s, rules)
    fast = replay(s.exo, s.depth, s.book, rules, initial_events=16, rng_key=case.rng_key,
                  bridge=bridge)
    kwargs = reference_kwargs(s.venue, s.liquidity, s.book, tier_tables(s.venue),
                              behaviour=s.case.behaviour, step_hours=STEP_HOURS,
                              reserve=reserve, rng_key=s.case.rng_key)
    kwargs["options"] = naive_options(s.book, rules.options, STEPS, PRICES)
    paths, events, accounts = run_reference(s.exo, s.depth, HAIRCUT, s.book, bridge=bridge,
                                            **kwargs)
    assert_same(fast, s.book, paths, events, accounts, PRICES)


def test_bridged_runs_are_the_same_whatever_the_workers(tmp_path):
    """The extremes come from each chunk's own generator: one worker or two, the files
    are identical."""
    doc = _one_long("bridge", 1200, 70.0, 1.2, 0.0)
    doc["simulation"]["chunk_paths"] = 300
    doc["liquidity"] = {"impact": "linear", "half_life_steps": 2}
    doc["market"]["assets"][0]["depth_usd"] = 2000.0
    run(scenario_from_dict(doc), tmp_path / "one", jobs=1)
    run(scenario_from_dict(doc), tmp_path / "two", jobs=2)
    for sub in ("paths", "events"):
        a = pq.read_table(tmp_path / "one" / sub).replace_schema_metadata(None)
        b = pq.read_table(tmp_path / "two" / sub).replace_schema_metadata(None)
        assert a.num_rows > 0 and a.equals(b), sub
    assert pq.read_table(tmp_path / "one" / "accounts.parquet").equals(
        pq.read_table(tmp_path / "two" / "accounts.parquet"))
