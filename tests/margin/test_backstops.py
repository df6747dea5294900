"""Backstops behind a liquidation: the insurance fund's accounting, ADL only when the fund is
dry, only onto opposite-side accounts in profit, in the preset's ranking order, and the
events that say which backstop covered each dollar."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import prepare
from simulator.config.scenario import load_scenario, scenario_from_dict
from simulator.margin import codes, replay
from simulator.paths import generate_paths

VENUES = [
    ("binance", ["venue.preset=binance-usdm", "venue.insurance_fund_usd=20000.0"]),
    ("hyperliquid", ["venue.preset=hyperliquid", "venue.insurance_fund_usd=5000.0"]),
    ("no-adl", ["venue.insurance_fund_usd=10000.0", "venue.adl=false"]),
    ("partial", ["venue.liquidation=partial", "venue.insurance_fund_usd=0.0"]),
]


def flagship_run(overrides):
    sc = load_scenario("two-asset-crash", ["simulation.steps=48", *overrides])
    # the preset's brackets apply only when the file's flat rate is not set explicitly
    doc = dict(sc.document)
    doc["venue"] = {k: v for k, v in doc["venue"].items()
                    if k != "maintenance_margin_rate" or "venue.preset" not in str(overrides)}
    prep = prepare(scenario_from_dict(doc))
    exo = generate_paths(prep.inputs, 60, np.random.default_rng(11))
    return prep.scenario, prep.book, replay(exo, prep.inputs.depth_usd, prep.book, prep.rules,
                                            index=prep.index)


@pytest.fixture(scope="module", params=VENUES, ids=[v[0] for v in VENUES])
def run(request):
    return flagship_run(request.param[1])


def per_path(res, values, mask):
    return np.bincount(res.ev_i[mask, codes.EI_PATH], values[mask], minlength=len(res.path_f))


def test_fund_end_is_start_plus_fees_minus_covered_bad_debt(run):
    sc, _, res = run
    ef, kind = res.ev_f, res.ev_i[:, codes.EI_KIND]
    everything = np.ones(len(kind), dtype=bool)
    fees = per_path(res, ef[:, codes.EF_FEE], everything)
    paid = per_path(res, ef[:, codes.EF_FUND_PAID], everything)
    fund0 = sc.venue.insurance_fund_usd
    fund_end = res.path_f[:, codes.PF_FUND_END]
    scale = fund0 + fees + paid + 1.0
    np.testing.assert_allclose(fund_end, fund0 + fees - paid, rtol=0, atol=1e-9 * scale.max())
    np.testing.assert_allclose(fees, res.path_f[:, codes.PF_FEES], rtol=1e-12, atol=1e-6)
    assert np.all(fund_end >= 0.0)
    # every dollar of bad debt is paid by the fund, covered by ADL or socialised
    liq = np.isin(kind, (codes.KIND_LIQUIDATION, codes.KIND_BACKSTOP))
    bad = per_path(res, ef[:, codes.EF_BAD_DEBT], liq)
    adl = per_path(res, ef[:, codes.EF_BAD_DEBT], kind == codes.KIND_ADL)
    soc = per_path(res, ef[:, codes.EF_BAD_DEBT], kind == codes.KIND_SOCIALISED)
    np.testing.assert_allclose(bad, res.path_f[:, codes.PF_BAD_DEBT], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(soc, res.path_f[:, codes.PF_SOCIALISED], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(bad, paid + adl + soc, rtol=1e-9, atol=1e-6)
    assert np.all(ef[:, codes.EF_BAD_DEBT] >= 0.0)
    assert bad.sum() > 0  # the comparison covers real bad debt


def test_adl_only_when_the_fund_is_dry(run):
    """Walking the events in order, the fund is empty whenever an ADL fill happens."""
    sc, _, res = run
    if not sc.venue.adl:
        assert not (res.ev_i[:, codes.EI_KIND] == codes.KIND_ADL).any()
        return
    fund0 = sc.venue.insurance_fund_usd
    n_adl = 0
    fund = {}
    for ei, ef in zip(res.ev_i, res.ev_f, strict=True):
        path = ei[codes.EI_PATH]
        f = fund.get(path, fund0) + ef[codes.EF_FEE] - ef[codes.EF_FUND_PAID]
        fund[path] = f
        if ei[codes.EI_KIND] == codes.KIND_ADL:
            n_adl += 1
            assert f <= 1e-9 * (fund0 + 1.0)
    assert n_adl > 0


def test_adl_only_onto_opposite_side_accounts_in_profit(run):
    sc, book, res = run
    adl = res.ev_i[:, codes.EI_KIND] == codes.KIND_ADL
    assert adl.any() == sc.venue.adl
    for ei, ef in zip(res.ev_i[adl], res.ev_f[adl], strict=True):
        u, a = ei[codes.EI_UNIT], ei[codes.EI_ASSET]
        rows = slice(book.unit_pos_start[u], book.unit_pos_start[u + 1])
        mine = book.pos_asset[rows] == a
        qty, entry = book.pos_qty[rows][mine], book.pos_entry[rows][mine]
        assert len(qty) == 1
        assert np.sign(qty[0]) == -np.sign(ef[codes.EF_QTY])  # the opposite side
        assert qty[0] * (ef[codes.EF_MARK] - entry[0]) > 0.0  # in profit at the mark


# --------------------------------------------------------------------------- ranking


def ranking_book(ranking):
    """A bankrupt 20x long and four shorts; the fund is empty."""
    shorts = [("A", 60_000.0, 1_000.0), ("B", 55_000.0, 5_000.0), ("C", 62_000.0, 100_000.0),
              ("D-loss", 40_000.0, 50_000.0)]
    accounts = [{"id": "bankrupt", "margin_mode": "isolated", "collateral": {"USD": 30_000.0},
                 "positions": [{"symbol": "BTC", "qty": 10.0, "entry": 60_000.0}]},
                {"id": "same-side", "collateral": {"USD": 10_000.0},
                 "positions": [{"symbol": "BTC", "qty": 1.0, "entry": 40_000.0}]}]
    accounts += [{"id": name, "collateral": {"USD": usd},
                  "positions": [{"symbol": "BTC", "qty": -4.0, "entry": entry}]}
                 for name, entry, usd in shorts]
    doc = {
        "name": "adl-ranking",
        "simulation": {"paths": 1, "seed": 1, "steps": 2, "horizon_days": 0.01},
        "market": {"model": "gbm", "assets": [
            {"symbol": "BTC", "price": 60_000.0, "vol": 0.0, "depth_usd": 1e9}]},
        "liquidity": {"impact": "none"},
        "venue": {"preset": "binance-usdm", "insurance_fund_usd": 0.0,
                  "liquidation_fee_rate": 0.0, "adl_ranking": ranking},
        "shocks": [{"kind": "gap", "step": 1, "asset": "BTC", "size": -0.2}],
        "accounts": accounts,
    }
    prep = prepare(scenario_from_dict(doc))
    book = prep.book
    exo = generate_paths(prep.inputs, 1, np.random.default_rng(0))
    res = replay(exo, prep.inputs.depth_usd, book, prep.rules, index=prep.index)
    return shorts, book, res


def binance_score(entry, usd, mark=48_000.0, qty=4.0):
    """PnL% x margin ratio, as Binance publishes it (BTC bracket 2: 0.5%, cum 50)."""
    pnl = qty * (entry - mark)
    mm = qty * mark * 0.005 - 50.0
    return max(pnl, 0.0) / max(1.0, usd) * mm / (usd + pnl)


def hyperliquid_score(entry, usd, mark=48_000.0, qty=4.0):
    """(entry / mark for a short) x notional / account value."""
    return entry / mark * qty * mark / (usd + qty * (entry - mark))


@pytest.mark.parametrize(("ranking", "score"), [("pnl_margin_ratio", binance_score),
                                                 ("profit_leverage", hyperliquid_score)])
def test_adl_fills_in_ranking_order_at_the_bankruptcy_price(ranking, score):
    shorts, book, res = ranking_book(ranking)
    adl = res.ev_i[:, codes.EI_KIND] == codes.KIND_ADL
    got = [book.account_ids[book.unit_account[u]] for u in res.ev_i[adl, codes.EI_UNIT]]
    in_profit = [(name, score(entry, usd)) for name, entry, usd in shorts if entry > 48_000.0]
    expected = [name for name, _ in sorted(in_profit, key=lambda x: -x[1])]
    assert got == expected[:len(got)]
    assert got[:2] == expected[:2] and "D-loss" not in got and "same-side" not in got
    # 10 BTC to cover, 4 per candidate: the third fills the last 2
    np.testing.assert_allclose(res.ev_f[adl, codes.EF_QTY], [4.0, 4.0, 2.0])
    # bankruptcy price: mark + deficit / qty, with a deficit of 90,000 over 10 BTC
    np.testing.assert_allclose(res.ev_f[adl, codes.EF_EXEC], 48_000.0 + 9_000.0, rtol=1e-12)
    assert res.ev_f[adl, codes.EF_BAD_DEBT].sum() == pytest.approx(90_000.0, rel=1e-12)


def test_the_two_rankings_differ_on_this_book():
    """So the test above can tell them apart."""
    shorts, _, _ = ranking_book("pnl_margin_ratio")
    live = [s for s in shorts if s[1] > 48_000.0]
    order_b = sorted(live, key=lambda s: -binance_score(s[1], s[2]))
    order_h = sorted(live, key=lambda s: -hyperliquid_score(s[1], s[2]))
    assert [s[0] for s in order_b] != [s[0] for s in order_h]


def test_socialised_loss_events_when_adl_is_off():
    """With ADL off, what the fund does not pay is socialised, one event per share."""
    sc, _, res = flagship_run(["venue.insurance_fund_usd=0.0", "venue.adl=false"])
    kind, ef = res.ev_i[:, codes.EI_KIND], res.ev_f
    assert not (kind == codes.KIND_ADL).any()
    soc = kind == codes.KIND_SOCIALISED
    assert soc.any()
    n = len(res.path_f)
    total = np.bincount(res.ev_i[soc, codes.EI_PATH], ef[soc, codes.EF_BAD_DEBT], minlength=n)
    paid = np.bincount(res.ev_i[:, codes.EI_PATH], ef[:, codes.EF_FUND_PAID], minlength=n)
    np.testing.assert_allclose(total, res.path_f[:, codes.PF_SOCIALISED], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(total, res.path_f[:, codes.PF_BAD_DEBT] - paid, rtol=1e-9,
                               atol=1e-6)
    # the fund starts empty, so everything it paid came from fees of the same round
    assert np.all(paid <= res.path_f[:, codes.PF_FEES] + 1e-6)


def test_adl_order_holds_past_the_first_picks():
    """A deficit spread over 60 counterparties (the engine picks the first few one by one
    and sorts the rest): fills still follow the ranking, highest score first."""
    rng = np.random.default_rng(4)
    n = 80
    entries = rng.uniform(50_000.0, 62_000.0, n)
    usds = rng.uniform(500.0, 20_000.0, n)
    accounts = [{"id": "bankrupt", "margin_mode": "isolated", "collateral": {"USD": 30_000.0},
                 "positions": [{"symbol": "BTC", "qty": 12.0, "entry": 60_000.0}]}]
    accounts += [{"id": f"s{i}", "collateral": {"USD": float(usds[i])},
                  "positions": [{"symbol": "BTC", "qty": -0.2, "entry": float(entries[i])}]}
                 for i in range(n)]
    doc = {
        "name": "adl-many",
        "simulation": {"paths": 1, "seed": 1, "steps": 2, "horizon_days": 0.01},
        "market": {"model": "gbm", "assets": [
            {"symbol": "BTC", "price": 60_000.0, "vol": 0.0, "depth_usd": 1e9}]},
        "liquidity": {"impact": "none"},
        "venue": {"maintenance_margin_rate": 0.005, "insurance_fund_usd": 0.0,
                  "liquidation_fee_rate": 0.0},
        "shocks": [{"kind": "gap", "step": 1, "asset": "BTC", "size": -0.2}],
        "accounts": accounts,
    }
    prep = prepare(scenario_from_dict(doc))
    book = prep.book
    exo = generate_paths(prep.inputs, 1, np.random.default_rng(0))
    res = replay(exo, prep.inputs.depth_usd, book, prep.rules, index=prep.index)
    adl = res.ev_i[:, codes.EI_KIND] == codes.KIND_ADL
    got = [book.account_ids[book.unit_account[u]] for u in res.ev_i[adl, codes.EI_UNIT]]
    mark = 48_000.0

    def score(entry, usd):  # flat 0.5%: PnL% x margin ratio
        pnl = 0.2 * (entry - mark)
        return pnl / max(1.0, usd) * (0.2 * mark * 0.005) / (usd + pnl)

    ranked = sorted((i for i in range(n) if entries[i] > mark),
                    key=lambda i: (-score(entries[i], usds[i]), i))
    assert len(got) > 40  # past the one-by-one picks
    assert got == [f"s{i}" for i in ranked[:len(got)]]
