"""The USDe case (issue #20): collateral priced at the venue's own thin book depegs when a
liquidation sells it and liquidates others; priced at the index it holds.

A hand-made book on a derivatives venue (1% maintenance, no fee, linear impact, permanent):
BTC with no impact (infinite depth), USDE held only as collateral on a book 30 USD deep.
At step 1 BTC falls from 100 to 90 (USDE's exogenous price stays 1):

- ``whale``: long 100 BTC at 100, 1,080 USDE. E = 1,080 - 1,000 = 80 < MM = 90: liquidated
  in round 1, under either rule. Its 1,080 USDE move the book by
  ``d1 = -0.01 x 1,080 / 30``; it sells at ``X1 = (1 + e^d1) / 2`` and leaves
  ``1,000 - 1,080 X1`` of bad debt.
- ``b``: long 10 BTC at 96, 75 USDE; ``d``: long 10 BTC at 100, 115 USDE;
  ``safe``: long 10 BTC at 90, 20 USDE. Each has E >= MM = 9 at USDE = 1.
- ``collateral_price = "book"``: USDE is marked at ``B1 = e^d1 = 0.698``; ``b`` (E = 52.3 -
  60) and ``d`` (E = 80.2 - 100) are liquidated in round 2, selling 190 USDE at
  ``X2 = (B1 + B2) / 2``, ``B2 = B1 e^(-0.01 x 190 B1 / 30)``, each with bad debt
  ``loss - coll x X2``; ``safe`` holds (E = 20 B2 = 13.4 >= 9).
- ``collateral_price = "index"``: USDE is marked at its index, 1: only the whale.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.config.scenario import scenario_from_dict
from simulator.execution.prepare import prepare
from simulator.margin import codes, replay


def _scenario(collateral_price: str) -> dict:
    def long(name, entry, qty, usde):
        return {"id": name, "collateral": {"USDE": usde},
                "positions": [{"symbol": "BTC", "qty": qty, "entry": entry}]}

    return {
        "name": "usde",
        "simulation": {"paths": 1, "steps": 2, "horizon_days": 1.0},
        "market": {"assets": [{"symbol": "BTC", "price": 100.0, "vol": 0.5},
                              {"symbol": "USDE", "price": 1.0, "vol": 0.01,
                               "depth_usd": 30.0}]},
        "liquidity": {"impact": "linear"},
        "venue": {"maintenance_margin_rate": 0.01, "liquidation_fee_rate": 0.0,
                  "insurance_fund_usd": 1e6, "collateral_price": collateral_price},
        "accounts": [long("whale", 100.0, 100.0, 1080.0), long("b", 96.0, 10.0, 75.0),
                     long("d", 100.0, 10.0, 115.0), long("safe", 90.0, 10.0, 20.0)],
    }


def _replay(collateral_price: str):
    prep = prepare(scenario_from_dict(_scenario(collateral_price)))
    exo = np.array([[[100.0, 1.0], [90.0, 1.0], [90.0, 1.0]]])
    return prep.book, replay(exo, prep.inputs.depth_usd, prep.book, prep.rules,
                             index=prep.index)


def _hand() -> dict:
    d1 = -0.01 * 1080.0 / 30.0
    b1 = math.exp(d1)
    x1 = (1.0 + b1) / 2.0
    b2 = b1 * math.exp(-0.01 * 190.0 * b1 / 30.0)
    x2 = (b1 + b2) / 2.0
    assert 20.0 * b2 >= 9.0  # "safe" holds under the book
    return {"b1": b1, "x1": x1, "b2": b2, "x2": x2, "bd_whale": 1000.0 - 1080.0 * x1,
            "bd_b": 60.0 - 75.0 * x2, "bd_d": 100.0 - 115.0 * x2}


@pytest.mark.parametrize("collateral_price", ["book", "index"])
def test_usde_collateral_on_the_book_depegs_on_the_index_holds(collateral_price):
    h = _hand()
    book, res = _replay(collateral_price)
    ids = list(book.account_ids)
    on_book = collateral_price == "book"
    liquidated = {ids[a] for a in np.flatnonzero(res.acct_liquidated)}
    assert liquidated == ({"whale", "b", "d"} if on_book else {"whale"})
    assert res.path_i[0, codes.PI_N_LIQUIDATIONS] == (3 if on_book else 1)
    assert res.path_i[0, codes.PI_MAX_ROUNDS] == (2 if on_book else 1)
    bad_debt = h["bd_whale"] + (h["bd_b"] + h["bd_d"] if on_book else 0.0)
    assert res.path_f[0, codes.PF_BAD_DEBT] == pytest.approx(bad_debt, rel=1e-12)
    # the USDE sales fill on the book under either rule; only the marks differ
    coll = res.ev_i[:, codes.EI_INSTRUMENT] == codes.INSTRUMENT_COLLATERAL
    fills = res.ev_f[coll, codes.EF_EXEC]
    marks = res.ev_f[coll, codes.EF_MARK]
    if on_book:
        np.testing.assert_allclose(fills, [h["x1"], h["x2"], h["x2"]], rtol=1e-12)
        np.testing.assert_allclose(marks, [1.0, h["b1"], h["b1"]], rtol=1e-12)
        assert res.final_price[0, 1] == pytest.approx(h["b2"], rel=1e-12)
    else:
        np.testing.assert_allclose(fills, [h["x1"]], rtol=1e-12)
        np.testing.assert_allclose(marks, [1.0], rtol=1e-12)
        assert res.final_price[0, 1] == 1.0  # valued at the index, the book at B1


def test_the_book_rule_is_todays_engine():
    """``collateral_price = "book"`` (the default) is what the scenario gives without the
    key."""
    doc = _scenario("book")
    del doc["venue"]["collateral_price"]
    prep = prepare(scenario_from_dict(doc))
    exo = np.array([[[100.0, 1.0], [90.0, 1.0], [90.0, 1.0]]])
    plain = replay(exo, prep.inputs.depth_usd, prep.book, prep.rules, index=prep.index)
    _, res = _replay("book")
    np.testing.assert_array_equal(plain.ev_f, res.ev_f)
    np.testing.assert_array_equal(plain.path_f, res.path_f)
