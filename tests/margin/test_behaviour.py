"""Behaviour between liquidations, on hand-computed examples: margin calls answered by a
top-up or a reduction after a delay, with a probability; funding paid by longs to shorts;
and reproducibility of the answer draws whatever the number of workers."""

from __future__ import annotations

import numpy as np
import pyarrow.dataset as ds
import pytest

from simulator import load_scenario, prepare, run
from simulator.config.scenario import scenario_from_dict
from simulator.margin import codes, replay
from simulator.paths import generate_paths

QTY, ENTRY, MARGIN, MMR = 2.0, 50_000.0, 10_000.0, 0.01  # 10x, MM 1% flat


def single(behaviour=None, gaps=(), venue=None, steps=4):
    """One isolated 10x BTC long on a zero-vol market with gaps; the engine's result."""
    doc = {
        "name": "behaviour",
        "simulation": {"paths": 1, "seed": 1, "steps": steps, "horizon_days": 1.0},
        "market": {"model": "gbm", "assets": [
            {"symbol": "BTC", "price": ENTRY, "vol": 0.0, "depth_usd": 1e12}]},
        "liquidity": {"impact": "none"},
        "venue": {"maintenance_margin_rate": MMR, "liquidation_fee_rate": 0.0, **(venue or {})},
        "shocks": [{"kind": "gap", "step": s, "asset": "BTC", "size": g} for s, g in gaps],
        "accounts": [{"id": "trader", "margin_mode": "isolated",
                      "collateral": {"USD": MARGIN},
                      "positions": [{"symbol": "BTC", "qty": QTY, "entry": ENTRY}]}],
    }
    if behaviour:
        doc["behaviour"] = behaviour
    prep = prepare(scenario_from_dict(doc))
    exo = generate_paths(prep.inputs, 1, np.random.default_rng(0))
    res = replay(exo, prep.inputs.depth_usd, prep.book, prep.rules, index=prep.index,
                 rng_key=12345)
    pnl = res.account_pnl(prep.acct_navk, prep.inputs.s0)
    return res, exo[0, :, 0], pnl[0, 0]


def equity(price):
    return MARGIN + QTY * (price - ENTRY)


def maintenance(price):
    return QTY * price * MMR


CALL = {"margin_call_ratio": 3.0, "answer_probability": 1.0, "delay_steps": 1,
        "target_ratio": 5.0, "reserve_ratio": 0.5}
# a 4.5% drop: E = 5,500, MM = 955: E / MM = 5.76 > 3, no call; a 9% drop: E = 1,000,
# MM = 910, ratio 1.10: called, not liquidated


def test_no_call_above_the_ratio():
    res, _, _ = single(CALL, gaps=[(1, -0.045)])
    assert len(res.ev_i) == 0


def test_called_account_tops_up_after_the_delay():
    res, price, pnl = single(CALL, gaps=[(1, -0.09)])
    assert len(res.ev_i) == 1
    ei, ef = res.ev_i[0], res.ev_f[0]
    assert ei[codes.EI_KIND] == codes.KIND_TOP_UP
    assert ei[codes.EI_STEP] == 2  # called at step 1, answers one step later
    p = price[2]
    expected = min(0.5 * MARGIN, 5.0 * maintenance(p) - equity(p))
    assert ef[codes.EF_QTY] == pytest.approx(expected, rel=1e-12)
    # PnL leaves the deposit out: it is the price move only
    assert pnl == pytest.approx(QTY * (price[-1] - ENTRY), rel=1e-12)


def test_top_up_saves_the_account_from_a_later_drop():
    """Called at step 1 (-9%), topped up at step 2, then a further -1% at step 3 that would
    liquidate the account without the deposit."""
    gaps = [(1, -0.09), (3, -0.01)]
    res, price, _ = single(CALL, gaps=gaps)
    assert equity(price[3]) < maintenance(price[3])  # would be liquidated without help
    kinds = list(res.ev_i[:, codes.EI_KIND])
    assert kinds == [codes.KIND_TOP_UP]
    res, _, _ = single({**CALL, "answer_probability": 0.0}, gaps=gaps)
    assert list(res.ev_i[:, codes.EI_KIND]) == [codes.KIND_LIQUIDATION]
    assert res.ev_i[0, codes.EI_STEP] == 3


def test_reduce_cuts_positions_to_the_target_ratio():
    res, price, _ = single({**CALL, "action": "reduce"}, gaps=[(1, -0.09)])
    assert list(res.ev_i[:, codes.EI_KIND]) == [codes.KIND_REDUCE]
    p = price[2]
    f = 1.0 - equity(p) / (5.0 * maintenance(p))
    assert res.ev_f[0, codes.EF_QTY] == pytest.approx(-f * QTY, rel=1e-12)
    assert res.ev_f[0, codes.EF_EXEC] == p


def test_gap_straight_through_liquidates_without_a_call():
    res, _, _ = single(CALL, gaps=[(1, -0.2)])
    assert list(res.ev_i[:, codes.EI_KIND]) == [codes.KIND_LIQUIDATION]


def test_constant_funding_is_paid_by_longs_every_interval():
    """8-hour funding on a 1-day, 6-step horizon: steps 2, 4, 6 pay 0.01% of notional."""
    res, price, pnl = single(venue={"funding": "constant", "funding_rate": 0.0001,
                                    "funding_interval_hours": 8.0}, steps=6)
    assert len(res.ev_i) == 0
    paid = sum(QTY * price[t] * 0.0001 for t in (2, 4, 6))
    assert pnl == pytest.approx(QTY * (price[-1] - ENTRY) - paid, rel=1e-12)


def test_funding_interval_must_fit_a_step():
    with pytest.raises(ValueError, match="shorter than a step"):
        single(venue={"funding": "constant", "funding_interval_hours": 1.0}, steps=6)


@pytest.mark.parametrize("action", ["top_up", "reduce"])
def test_answer_draws_do_not_depend_on_workers(tmp_path, action):
    overrides = ["simulation.paths=600", "simulation.chunk_paths=200", "simulation.steps=48",
                 "behaviour.margin_call_ratio=1.5", "behaviour.answer_probability=0.5",
                 f"behaviour.action={action}"]
    sc = load_scenario("two-asset-crash", overrides)
    one = run(sc, tmp_path / "one", jobs=1)
    two = run(sc, tmp_path / "two", jobs=2)
    a = ds.dataset(one.out_dir / "events").to_table().to_pandas()
    b = ds.dataset(two.out_dir / "events").to_table().to_pandas()
    assert (a["kind"] == action).sum() > 10
    assert a.equals(b)
    # about half of the called accounts answer; calls are not events, so compare with a run
    # where everyone answers
    sc_all = load_scenario("two-asset-crash", [*overrides[:-2], "behaviour.answer_probability=1",
                                               f"behaviour.action={action}"])
    c = ds.dataset(run(sc_all, tmp_path / "all").out_dir / "events").to_table().to_pandas()
    n_half = a.loc[a["kind"] == action, ["path_id", "account_id"]].drop_duplicates().shape[0]
    n_all = c.loc[c["kind"] == action, ["path_id", "account_id"]].drop_duplicates().shape[0]
    # each called account answers with probability 0.5, independently: 4 standard errors
    assert abs(n_half / n_all - 0.5) < 4 * (0.25 / n_all) ** 0.5
