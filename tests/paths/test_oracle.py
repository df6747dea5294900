"""The oracle's index (``[market.oracle]``, :func:`simulator.paths.oracle.oracle_index`):
the heartbeat, deviation and lag rules on a known path, published at the steps a hand
computation gives; the median of noiseless sources is the price; noisy sources are the
chunk generator's next normals; a run's paths do not change with the oracle's noise."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from simulator.config.scenario import scenario_from_dict
from simulator.errors import ScenarioError
from simulator.execution.runner import run
from simulator.paths.oracle import oracle_index

#: one path, one asset
PATH = np.array([100.0, 101.0, 103.0, 99.0, 99.5, 104.0, 104.0, 90.0, 91.0])


def index_of(**rule) -> list[float]:
    return oracle_index(PATH[None, :, None], None, **rule)[0, :, 0].tolist()


def test_defaults_are_the_price():
    assert index_of() == PATH.tolist()
    assert index_of(sources=5) == PATH.tolist()  # noiseless sources: their median


def test_heartbeat_publishes_every_k_steps():
    # published at t = 0, 3, 6
    assert index_of(heartbeat_steps=3) == [100, 100, 100, 99, 99, 99, 104, 104, 104]


def test_deviation_publishes_a_move_above_d():
    # K = 3, d = 2%: t=1 moved 1 (< 2) keeps 100; t=2 moved 3 > 2: 103; t=3 moved 4 > 2.06:
    # 99; t=4 moved 0.5 < 1.98 keeps 99; t=5 moved 5: 104; t=6 flat; t=7 moved 14: 90;
    # t=8 moved 1 < 1.8 keeps 90 (and the heartbeat, last at 7, is not due)
    assert index_of(heartbeat_steps=3, deviation=0.02) == [100, 100, 103, 99, 99, 104, 104,
                                                           90, 90]
    # the trigger is strict: a move of exactly d does not publish
    exact = np.array([100.0, 102.0, 102.0])
    got = oracle_index(exact[None, :, None], None, heartbeat_steps=5, deviation=0.02)
    assert got[0, :, 0].tolist() == [100, 100, 100]


def test_lag_shows_the_publication_of_t_minus_lag():
    assert index_of(lag_steps=2) == [100, 100, 100, 101, 103, 99, 99.5, 104, 104]
    assert index_of(heartbeat_steps=3, lag_steps=1) == [100, 100, 100, 100, 99, 99, 99,
                                                        104, 104]
    assert index_of(lag_steps=50) == [100.0] * len(PATH)


def test_noisy_sources_are_the_generators_next_normals():
    rng = np.random.default_rng(7)
    exo = 100.0 * np.exp(np.cumsum(0.01 * rng.standard_normal((3, 6, 2)), axis=1))
    exo = np.concatenate([np.full((3, 1, 2), 100.0), exo], axis=1)
    got = oracle_index(exo, np.random.default_rng(11), sources=3, noise=0.05)
    z = np.random.default_rng(11).standard_normal((3, 6, 2, 3))
    reads = exo[:, 1:, :, None] * np.exp(0.05 * z)
    np.testing.assert_array_equal(got[:, 1:], np.sort(reads, axis=3)[..., 1])
    np.testing.assert_array_equal(got[:, 0], exo[:, 0])  # in sync at the start


def _scenario(**oracle) -> dict:
    return {
        "name": "one-long",
        "simulation": {"paths": 300, "seed": 5, "steps": 24, "horizon_days": 1.0,
                       "chunk_paths": 100},
        "market": {"assets": [{"symbol": "X", "price": 100.0, "vol": 1.0}],
                   **({"oracle": oracle} if oracle else {})},
        "liquidity": {"impact": "none"},
        "venue": {"maintenance_margin_rate": 0.01, "liquidation_fee_rate": 0.0},
        "accounts": [{"id": "long", "collateral": {"USD": 100.0},
                      "positions": [{"symbol": "X", "qty": 10.0, "entry": 100.0}]}],
    }


def test_a_noisy_oracle_keeps_the_paths(tmp_path):
    """Common random numbers: the oracle's normals come after the paths' draws, so a run
    whose marks are the book's has the paths of a run without the oracle; valued at the
    index, the same run's final marks are the index's."""
    plain = _scenario()
    noisy = _scenario(noise=0.02, sources=3, heartbeat_steps=4)
    run(scenario_from_dict(plain), tmp_path / "plain")
    run(scenario_from_dict(noisy), tmp_path / "noisy")
    noisy["venue"]["mark_price"] = "index"
    run(scenario_from_dict(noisy), tmp_path / "index")

    def final(name):
        table = pq.read_table(tmp_path / name / "paths").to_pandas().sort_values("path_id")
        return table["final_price_X"].to_numpy()

    np.testing.assert_array_equal(final("plain"), final("noisy"))
    moved = final("index") != final("plain")
    assert moved.mean() > 0.5


@pytest.mark.parametrize("key,value", [("heartbeat_steps", 0), ("lag_steps", -1),
                                       ("sources", 0), ("noise", -0.1), ("deviation", -1.0),
                                       ("heartbeat", 2)])
def test_bad_oracle_keys_are_scenario_errors(key, value):
    with pytest.raises(ScenarioError, match=f"market.oracle.{key}"):
        scenario_from_dict(_scenario(**{key: value}))


def test_the_bridge_refuses_an_oracle():
    doc = _scenario(heartbeat_steps=2)
    doc["simulation"]["intrastep"] = "bridge"
    with pytest.raises(ScenarioError, match="simulation.intrastep.*market.oracle"):
        scenario_from_dict(doc)
    doc = _scenario()
    doc["simulation"]["intrastep"] = "bridge"
    doc["venue"]["mark_price"] = "median"
    with pytest.raises(ScenarioError, match="venue.mark_price"):
        scenario_from_dict(doc)


def test_the_index_counts_in_a_chunks_memory():
    """A chunk also holds the index (one more price per price) and, with noise, a block
    of its sources' readings."""
    from simulator.config.scenario import load_scenario
    from simulator.execution.budget import chunk_memory_bytes
    from simulator.paths.oracle import BLOCK_PATHS

    args = ["simulation.paths=1000", "simulation.chunk_paths=500"]
    plain = load_scenario("two-asset-crash", args)
    sim, n_assets = plain.simulation, len(plain.market.assets)
    index = 500 * (sim.steps + 1) * n_assets * 8
    lagged = load_scenario("two-asset-crash", [*args, "market.oracle.lag_steps=2"])
    assert chunk_memory_bytes(lagged) - chunk_memory_bytes(plain) == index
    noisy = load_scenario("two-asset-crash", [*args, "market.oracle.noise=0.01",
                                              "market.oracle.sources=3"])
    reads = 3 * min(500, BLOCK_PATHS) * sim.steps * n_assets * 3 * 8
    assert chunk_memory_bytes(noisy) - chunk_memory_bytes(plain) == index + reads


@pytest.mark.parametrize("oracle,mark_price,step", [
    ({}, "book", 5),  # the book falls below 88 at step 5
    ({"heartbeat_steps": 4, "deviation": 0.07}, "book", 5),  # the index is not used
    ({"heartbeat_steps": 4, "deviation": 0.07}, "index", 6),  # published at 2 and 6
    ({"heartbeat_steps": 4, "deviation": 0.07, "lag_steps": 1}, "index", 7),
    ({"heartbeat_steps": 4, "deviation": 0.07}, "median", 6),  # median(index, book, ...)
])
def test_a_run_liquidates_at_the_published_index(tmp_path, oracle, mark_price, step):
    """A deterministic path (vol 0, gaps of -10% at step 2 and -5% at step 5): 100, 100,
    90, 90, 90, 85.5, ... The oracle (K = 4, d = 7%) publishes 90 at step 2 (a 10% move)
    and 85.5 at step 6 (its heartbeat; the 5% move is under d). A long whose liquidation
    price is 88 is liquidated when its mark crosses 88: at step 5 on the book, at 6 at the
    index (7 with a lag of 1 step); the median of index, book and index + basis (the
    basis is 0 without impact) is the index."""
    doc = _scenario(**oracle)
    doc["simulation"].update({"steps": 8, "paths": 2, "chunk_paths": 2})
    doc["market"]["assets"][0]["vol"] = 0.0
    doc["shocks"] = [{"kind": "gap", "step": 2, "asset": "X", "size": -0.1},
                     {"kind": "gap", "step": 5, "asset": "X", "size": -0.05}]
    doc["venue"]["mark_price"] = mark_price
    doc["accounts"][0]["collateral"] = {"USD": 128.8}  # liquidation price 88
    run(scenario_from_dict(doc), tmp_path / "run")
    table = pq.read_table(tmp_path / "run" / "paths").to_pandas()
    assert table["first_liquidation_step"].tolist() == [step, step]


def test_defaults_keep_the_digest():
    """The oracle's and the marks' keys at their defaults are left out of the digest (the
    digests of older scenarios hold); another value changes it."""
    plain = scenario_from_dict(_scenario()).digest
    explicit = _scenario(heartbeat_steps=1, deviation=0.0, lag_steps=0, sources=1, noise=0.0)
    explicit["venue"].update({"mark_price": "book", "collateral_price": "book",
                              "mark_ema_halflife_steps": 10})
    assert scenario_from_dict(explicit).digest == plain
    assert "oracle" not in scenario_from_dict(explicit).resolved()["market"]
    for key, value in (("mark_price", "median"), ("collateral_price", "index"),
                       ("mark_ema_halflife_steps", 3)):
        doc = _scenario()
        doc["venue"][key] = value
        assert scenario_from_dict(doc).digest != plain, key
    assert scenario_from_dict(_scenario(lag_steps=1)).digest != plain


def test_a_lending_venue_refuses_index_marks():
    """A lending venue values everything at its oracle: the venue's price keys stay."""
    doc = _scenario()
    doc["venue"] = {"type": "lending", "adl": False, "collateral_price": "index"}
    doc["accounts"] = [{"id": "a", "collateral": {"X": 1.0}, "debt": {"USD": 50.0}}]
    with pytest.raises(ScenarioError, match="venue.collateral_price"):
        scenario_from_dict(doc)


@pytest.mark.parametrize("oracle,step", [
    ({}, 2),  # the exact oracle: today's lending engine
    ({"lag_steps": 2}, 4),
    ({"heartbeat_steps": 3, "deviation": 0.2}, 3),  # the 10% move is under d: heartbeat
    ({"heartbeat_steps": 3, "deviation": 0.05}, 2),  # over d: published at once
])
def test_a_lending_oracle_delays_liquidations(tmp_path, oracle, step):
    """A deterministic path (vol 0, a -10% gap at step 2: 100, 100, 90, ...): a borrower
    of 80 USD against 1 X at a liquidation threshold of 0.85 (health factor below 1 under
    94.12) is liquidated when the oracle publishes 90."""
    doc = _scenario(**oracle)
    doc["simulation"].update({"steps": 6, "paths": 2, "chunk_paths": 2})
    doc["market"]["assets"][0].update({"vol": 0.0, "haircut": 0.15})
    doc["shocks"] = [{"kind": "gap", "step": 2, "asset": "X", "size": -0.1}]
    doc["venue"] = {"type": "lending", "adl": False}
    doc["accounts"] = [{"id": "a", "collateral": {"X": 1.0}, "debt": {"USD": 80.0}}]
    run(scenario_from_dict(doc), tmp_path / "run")
    table = pq.read_table(tmp_path / "run" / "paths").to_pandas()
    assert table["first_liquidation_step"].tolist() == [step, step]


def test_gradual_vault_disposal_refuses_marks_off_the_book():
    doc = _scenario()
    doc["venue"].update({"backstop_ratio": 0.5, "vault_disposal": "gradual",
                         "mark_price": "index"})
    with pytest.raises(ScenarioError, match="venue.vault_disposal.*venue.mark_price"):
        scenario_from_dict(doc)
    doc["venue"]["mark_price"] = "book"
    scenario_from_dict(doc)  # the book's marks: allowed
