"""``[population.options]``: option buyers and sellers drawn into a synthetic book.

Checked independently of the draw: the share of accounts with an option and of sellers
within SE-derived tolerances, strikes and expiries inside their ranges, option sizes equal
to the first perpetual's, sellers credited their premium plus Deribit's standard initial
margin (recomputed here from the published formula with SciPy's Black-Scholes), every
account above its maintenance at the start (by the slow reference engine), the rest of
the book unchanged, and the loader's errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from simulator.book.build import build_book
from simulator.config.scenario import scenario_from_dict
from simulator.errors import ScenarioError

from .. import reference
from ..support.compare import naive_options

N = 4000


def doc(options=None, venue=None):
    d = {
        "name": "pop-options",
        "simulation": {"paths": 10, "steps": 24, "horizon_days": 1.0},
        "market": {"assets": [{"symbol": "BTC", "price": 60000.0, "vol": 0.6},
                              {"symbol": "ETH", "price": 3000.0, "vol": 0.8}],
                   "correlation": [[1.0, 0.8], [0.8, 1.0]]},
        "venue": venue or {"maintenance_margin_rate": 0.01},
        "population": {"count": N, "seed": 5, "leverage": 5.0,
                       "margin_modes": {"cross": 0.6, "isolated": 0.4}, "max_positions": 2},
    }
    if options is not None:
        d["population"]["options"] = options
    return d


def bs(is_call, s, k, tau, vol):
    sd = vol * math.sqrt(tau)
    d1 = (math.log(s / k) + 0.5 * sd * sd) / sd
    if is_call:
        return s * norm.cdf(d1) - k * norm.cdf(d1 - sd)
    return k * norm.cdf(sd - d1) - s * norm.cdf(-d1)


OPTIONS = {"share": 0.25, "short_share": 0.8, "types": {"put": 3, "call": 1},
           "moneyness": [0.85, 1.05], "expiry_days": [3.0, 20.0], "size": 0.5}


def test_population_options_shares_ranges_sizes_and_margin():
    plain = build_book(scenario_from_dict(doc()))
    sc = scenario_from_dict(doc(OPTIONS))
    book = build_book(sc)
    opt = book.pos_kind >= 2
    holders = np.unique(book.unit_account[book.pos_unit[opt]])
    assert abs(len(holders) / N - 0.25) < 4 * math.sqrt(0.25 * 0.75 / N)
    assert opt.sum() == len(holders)  # one option each
    short = book.pos_qty[opt] < 0
    assert abs(short.mean() - 0.8) < 4 * math.sqrt(0.8 * 0.2 / opt.sum())
    puts = book.pos_kind[opt] == 3
    assert abs(puts.mean() - 0.75) < 4 * math.sqrt(0.75 * 0.25 / opt.sum())
    prices = np.array([60000.0, 3000.0])
    spot = prices[book.pos_asset[opt]]
    money = book.pos_entry[opt] / spot
    assert money.min() >= 0.85 and money.max() <= 1.05
    days = book.pos_expiry_years[opt] * 365.0
    assert days.min() >= 3.0 and days.max() <= 20.0
    np.testing.assert_allclose(book.pos_iv[opt], np.where(book.pos_asset[opt] == 0, 0.6, 0.8))
    # the perpetuals are those of the book without options, in the same order
    perp = ~opt
    np.testing.assert_array_equal(book.pos_qty[perp], plain.pos_qty)
    np.testing.assert_array_equal(book.pos_asset[perp], plain.pos_asset)
    # an option sits on the asset of its account's first perpetual, half its size, and
    # after it; its account is cross-margined
    for p in np.flatnonzero(opt)[:300]:
        u = book.pos_unit[p]
        first = book.unit_pos_start[u]
        assert first < p and book.pos_kind[first] == 0
        assert book.pos_asset[first] == book.pos_asset[p]
        assert abs(book.pos_qty[p]) == pytest.approx(0.5 * abs(book.pos_qty[first]),
                                                      rel=1e-12)
        assert not book.account_isolated[book.unit_account[u]]
    # sellers get premium + Deribit IM in USD; buyers nothing: compare the USD of each
    # holder with the account in the book without options (cross there too, or isolated)
    acct_usd = np.bincount(book.unit_account, book.unit_usd, minlength=N)
    plain_usd = np.bincount(plain.unit_account, plain.unit_usd, minlength=N)
    for p in np.flatnonzero(opt)[:300]:
        acc = book.unit_account[book.pos_unit[p]]
        q, k, s = book.pos_qty[p], book.pos_entry[p], prices[book.pos_asset[p]]
        is_call = book.pos_kind[p] == 2
        v = bs(is_call, s, k, book.pos_expiry_years[p], book.pos_iv[p])
        otm = max(k - s, 0.0) if is_call else max(s - k, 0.0)
        mark = v / s
        im = max(0.15 - otm / s, 0.10) + mark
        if not is_call:
            im = max(im, max(0.075, 0.075 * mark) + mark)
        credit = abs(q) * (v + im * s) if q < 0 else 0.0
        assert acct_usd[acc] - plain_usd[acc] == pytest.approx(credit, rel=1e-9, abs=1e-6)


def test_population_options_start_above_maintenance(prepared):
    prep = prepared(doc(OPTIONS))
    book, rules, index = prep.book, prep.rules, prep.index
    prices = prep.inputs.s0  # 60,000 and 3,000: the index is built there
    ref = reference.Book([0.0, 0.0], [[math.inf]] * 2, [[0.01]] * 2, [[0.0]] * 2,
                         book.unit_usd.tolist(), book.unit_coll.tolist(), book.pos_unit.tolist(),
                         book.pos_asset.tolist(), book.pos_qty.tolist(), book.pos_entry.tolist(),
                         book.pos_kind.tolist(),
                         naive_options(book, rules.options, prep.scenario.simulation.steps,
                                       prices))
    for u in index.options.opt_units:
        assert ref.equity(u, prices.tolist()) > ref.maintenance(u, prices.tolist()), u


@pytest.mark.parametrize("options, venue, key, message", [
    ({"short_share": 0.5}, None, "population.options.share", "required"),
    ({"share": 1.5}, None, "population.options.share", "<= 1"),
    ({"share": 0.1, "types": {"straddle": 1}}, None, "population.options.types.straddle",
     "not an option type"),
    ({"share": 0.1, "moneyness": [1.2, 0.9]}, None, "population.options.moneyness",
     "low <= high"),
    ({"share": 0.1, "expiry_days": [0, 5]}, None, "population.options.expiry_days", "0 < low"),
    ({"share": 0.1, "colour": "red"}, None, "population.options.colour", "unknown"),
    ({"share": 0.1}, {"preset": "aave-v3"}, "population.options", "lending"),
])
def test_population_options_errors(options, venue, key, message):
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict(doc(options, venue), source="pop.toml")
    text = str(err.value)
    assert "pop.toml" in text and key in text and message in text, text
