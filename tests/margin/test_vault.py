"""The backstop vault's gradual disposal (``docs/engine.md``, "The backstop vault's
inventory"): a take-over computed by hand, the engine against the reference on random
books, and the conservation of value with the vault's inventory in the book."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from simulator import prepare
from simulator.config.scenario import scenario_from_dict
from simulator.errors import ScenarioError
from simulator.margin import EngineRules, codes, replay
from simulator.margin.engine import account_nav_coefficients
from simulator.paths import generate_paths
from simulator.results import tables

from ..support.compare import assert_same
from ..support.ledger import RTOL, Funding, book_scale, conservation_terms, path_events
from ..support.rule_cases import _DERIV, PRICES, TIERS, Case, build, run_naive

#: gradual cases: incremental with ADL and a fund (inverse positions too), full without ADL
GRADUAL = [
    Case("gradual-adl", {**_DERIV, "brackets": TIERS, "liquidation": "incremental",
                         "step_fraction": 0.2, "full_below_usd": 2000.0,
                         "backstop_ratio": 2.0 / 3.0, "liquidation_fee_rate": 0.0,
                         "insurance_fund_usd": 200.0, "adl": True,
                         "vault_disposal": "gradual", "vault_disposal_share": 0.3,
                         "vault_depth_share": 0.5}),
    Case("gradual-no-adl", {**_DERIV, "brackets": TIERS, "liquidation": "full",
                            "backstop_ratio": 2.0 / 3.0, "insurance_fund_usd": 0.0,
                            "adl": False, "vault_disposal": "gradual",
                            "vault_disposal_share": 1.0, "vault_depth_share": 0.05},
         impact="sqrt", half_life=3.0),
]


def _inverse(s, share: float, seed: int):
    """``s`` with about ``share`` of its positions inverse (the same USD notional)."""
    book = s.book
    inverse = np.random.default_rng(seed).random(len(book.pos_qty)) < share
    return replace(s, book=replace(
        book, pos_kind=np.where(inverse, codes.POS_INVERSE, codes.POS_LINEAR),
        pos_qty=np.where(inverse, book.pos_qty * book.pos_entry, book.pos_qty)))


@pytest.mark.parametrize("case", GRADUAL, ids=[c.name for c in GRADUAL])
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("full_scan", [False, True], ids=["indexed", "full-scan"])
def test_engine_matches_reference_gradual(case, seed, full_scan):
    s = build(case, seed)
    if seed == 2:
        s = _inverse(s, 0.4, seed)
    rules = EngineRules.from_scenario(s.venue, s.liquidity, s.market, full_scan=full_scan)
    assert rules.vault_gradual
    fast = replay(s.exo, s.depth, s.book, rules, initial_events=16)
    paths, events, accounts = run_naive(
        s, rules.haircut, (rules.tier_cap, rules.tier_rate, rules.tier_cum))
    kinds = {ev["kind"] for ev in events}
    assert {"backstop", "vault_sale"} <= kinds, kinds
    assert sum(p["vault_takeovers"] for p in paths) > 0
    assert_same(fast, s.book, paths, events, accounts, PRICES)


# ---------------------------------------------------------------------------------------
# Conservation: accounts, fund and the vault's trading close against the market
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", GRADUAL, ids=[c.name for c in GRADUAL])
@pytest.mark.parametrize("seed", [1, 2])
def test_conservation_with_the_vault(case, seed):
    """``sum pnl + (fund_end - fund0) + (vault_pnl - kept) + IMPACT + FUNDING = MTM +
    SOCIALISED`` on every path, with the vault's inventory in the book's exposure and its
    sales among the fills (``tests/support/ledger.py``); ``kept`` is the take-overs' fees.
    Without the vault's terms the identity fails where the vault holds inventory."""
    s = build(case, seed)
    if seed == 2:
        s = _inverse(s, 0.4, seed)
    rules = EngineRules.from_scenario(s.venue, s.liquidity, s.market)
    res = replay(s.exo, s.depth, s.book, rules, initial_events=16, save_marks=s.exo.shape[0])
    s0 = s.exo[0, 0]
    pnl = res.account_pnl(account_nav_coefficients(s.book), s0).sum(axis=1)
    fund0 = s.venue.insurance_fund_usd
    n_off = 0
    for i in range(s.exo.shape[0]):
        ev_i, ev_f = path_events(res, i)
        t_ = conservation_terms(ev_i, ev_f, s.exo[i], res.marks[i], s.book,
                                s.liquidity.decay_per_step, Funding.of(s.venue), False,
                                vault=True)
        pf = res.path_f[i]
        kept = ev_f[ev_i[:, codes.EI_KIND] == codes.KIND_BACKSTOP, codes.EF_FEE].sum()
        trading = pf[codes.PF_VAULT_PNL] - kept
        together = pnl[i] + pf[codes.PF_FUND_END] - fund0 + trading
        expect = t_["mtm"] - t_["impact"] - t_["funding"] + t_["socialised"]
        tol = RTOL * (t_["gross"] + book_scale(s.book, s0)
                      + book_scale(s.book, res.final_price[i]) + fund0)
        assert abs(together - expect) <= tol, (i, together, expect, t_)
        # the vault's drawdown is at most what it ever held, and never negative
        assert pf[codes.PF_VAULT_DRAWDOWN] >= 0.0
        if abs(trading) > 1e3 * tol:
            n_off += 1
    assert n_off > 0  # the vault's trading is not negligible: the check has teeth


# ---------------------------------------------------------------------------------------
# By hand: one take-over, sold off step by step
# ---------------------------------------------------------------------------------------

S0, GAP, DEPTH, QTY, MARGIN = 100.0, -0.08, 1.0e5, 1000.0, 8500.0


def hand_scenario(share: float, depth_share: float, steps: int, disposal: str = "gradual",
                  others: tuple[dict, ...] = ()):
    """One isolated long of 1,000 @ 100 with $8,500; the price gaps 8% down at step 1 and
    stays at 92 (no volatility). At 92: E = 8,500 - 8,000 = 500, MM = 1% x 92,000 = 920
    and 500 < 2/3 x 920: the vault takes it over in round 1 of step 1, keeps $500, holds
    1,000 coins and pays $92,000 for them. Linear impact, permanent."""
    return scenario_from_dict({
        "name": "vault-by-hand",
        "simulation": {"paths": 1, "seed": 0, "steps": steps, "horizon_days": steps / 24.0},
        "market": {"assets": [{"symbol": "BTC", "price": S0, "vol": 0.0, "depth_usd": DEPTH}]},
        "liquidity": {"impact": "linear"},
        "venue": {"maintenance_margin_rate": 0.01, "liquidation_fee_rate": 0.01,
                  "insurance_fund_usd": 0.0, "margin_mode": "isolated",
                  "backstop_ratio": 2.0 / 3.0, "vault_disposal": disposal,
                  "vault_disposal_share": share, "vault_depth_share": depth_share},
        "shocks": [{"kind": "gap", "step": 1, "asset": "BTC", "size": GAP}],
        "accounts": [{"id": "taken", "margin_mode": "isolated",
                      "collateral": {"USD": MARGIN},
                      "positions": [{"symbol": "BTC", "qty": QTY, "entry": S0}]},
                     *others],
    })


def hand_vault(share: float, depth_share: float, steps: int):
    """The vault step by step, written out: at the start of each step t >= 2 it sells
    ``min(share x 1,000, depth_share x DEPTH / M, what it holds)`` coins; the mark moves
    by ``exp(-0.01 x notional / DEPTH)`` (permanent) and the sale fills half way."""
    m, inv, cash, kept = S0 * (1.0 + GAP), QTY, -QTY * S0 * (1.0 + GAP), MARGIN - 8000.0
    peak, drawdown = max(0.0, kept + cash + inv * m), 0.0
    sales = []
    for _ in range(2, steps + 1):
        if inv == 0.0:  # sold out
            break
        size = min(share * QTY, depth_share * DEPTH / m, inv)
        m2 = m * math.exp(-0.01 * size * m / DEPTH)
        x = m + (m2 - m) / 2.0
        cash += size * x
        inv -= size
        m = m2
        sales.append((size, x, inv, cash))
        value = kept + cash + inv * m
        peak = max(peak, value)
        drawdown = max(drawdown, peak - value)
    return sales, kept + cash + inv * m, drawdown, inv * m, m


@pytest.mark.parametrize(("share", "depth_share", "steps"),
                         [(0.25, 0.1, 12), (0.3, 1.0, 3)], ids=["depth-binds", "share-binds"])
def test_disposal_by_hand(share, depth_share, steps):
    prep = prepare(hand_scenario(share, depth_share, steps))
    exo = generate_paths(prep.inputs, 1, np.random.default_rng(0))
    np.testing.assert_allclose(exo[0, 1:, 0], 92.0, rtol=1e-12)
    res = replay(exo, prep.inputs.depth_usd, prep.book, prep.rules, index=prep.index)
    kind = res.ev_i[:, codes.EI_KIND]
    take = kind == codes.KIND_BACKSTOP
    assert take.sum() == 1 and res.ev_i[take, codes.EI_STEP][0] == 1
    assert res.ev_f[take, codes.EF_FEE][0] == pytest.approx(500.0, rel=1e-12)
    sold = kind == codes.KIND_VAULT_SALE
    sales, pnl, drawdown, inv_end, m_end = hand_vault(share, depth_share, steps)
    assert sold.sum() == len(sales)
    np.testing.assert_array_equal(res.ev_i[sold, codes.EI_STEP], np.arange(2, len(sales) + 2))
    assert np.all(res.ev_i[sold, codes.EI_UNIT] == -1)
    assert np.all(res.ev_i[sold, codes.EI_ROUND] == 0)
    held = QTY
    for ef, (size, x, inv, _cash) in zip(res.ev_f[sold], sales, strict=True):
        assert ef[codes.EF_QTY] == pytest.approx(-size, rel=1e-12)
        assert ef[codes.EF_EXEC] == pytest.approx(x, rel=1e-12)
        held += ef[codes.EF_QTY]
        assert held == pytest.approx(inv, rel=1e-9, abs=1e-9)  # the inventory after it
    # the first sale, by hand
    if depth_share == 0.1:  # $10,000 at 92: d = -0.001
        assert sales[0][0] == pytest.approx(1e4 / 92.0, rel=1e-12)
        assert sales[0][1] == pytest.approx(46.0 * (1.0 + math.exp(-0.001)), rel=1e-12)
        assert sales[-1][2] == 0.0 and sales[-1][0] < sales[-2][0]  # the rest, sold last
    else:  # 300 coins a step; 400 left at the end
        assert [s[0] for s in sales] == [300.0, 300.0]
        assert inv_end == pytest.approx(400.0 * m_end, rel=1e-12)
    pf = res.path_f[0]
    assert pf[codes.PF_VAULT_PNL] == pytest.approx(pnl, rel=1e-9)
    assert pf[codes.PF_VAULT_DRAWDOWN] == pytest.approx(drawdown, rel=1e-9)
    assert pf[codes.PF_VAULT_INV_END] == pytest.approx(inv_end, rel=1e-9, abs=1e-9)
    assert res.path_i[0, codes.PI_VAULT_TAKEOVERS] == 1
    assert res.final_price[0, 0] == pytest.approx(m_end, rel=1e-12)
    assert drawdown > 0.0 and pnl < 500.0  # selling into its own impact costs the vault
    # the columns of paths/ and the vault's rows of events/
    table = tables.paths_table(res, 0, ("BTC",), vault=True)
    assert table.column_names[-4:] == ["vault_pnl", "vault_drawdown",
                                       "vault_inventory_end_usd", "vault_takeovers"]
    assert table.column("vault_pnl").to_pylist() == [pf[codes.PF_VAULT_PNL]]
    events = tables.events_table(res, 0, prep.book.account_ids, prep.book.unit_account,
                                 ("BTC",)).to_pydict()
    rows = [k for k, v in enumerate(events["kind"]) if v == "vault_sale"]
    assert len(rows) == len(sales)
    assert {events["account_id"][k] for k in rows} == {tables.VAULT_ACCOUNT}


def test_instant_disposal_keeps_the_equity():
    """``instant`` (the default): the take-over is closed at the mark, no sale follows; the
    vault's PnL is the $500 it kept, without drawdown or inventory."""
    prep = prepare(hand_scenario(0.2, 0.1, 4, disposal="instant"))
    assert not prep.rules.vault_gradual and prep.rules.has_vault
    exo = generate_paths(prep.inputs, 1, np.random.default_rng(0))
    res = replay(exo, prep.inputs.depth_usd, prep.book, prep.rules, index=prep.index)
    assert not (res.ev_i[:, codes.EI_KIND] == codes.KIND_VAULT_SALE).any()
    pf = res.path_f[0]
    assert pf[codes.PF_VAULT_PNL] == pytest.approx(500.0, rel=1e-12)
    assert pf[codes.PF_VAULT_DRAWDOWN] == 0.0 and pf[codes.PF_VAULT_INV_END] == 0.0
    assert res.final_price[0, 0] == pytest.approx(92.0, rel=1e-12)


def test_keys_and_digest():
    """The keys' errors name them; at their defaults they leave the digest alone."""
    base = hand_scenario(0.2, 0.1, 4, disposal="instant")
    doc = dict(base.document)
    venue = {k: v for k, v in doc["venue"].items() if not k.startswith("vault_")}
    plain = scenario_from_dict({**doc, "venue": venue})
    assert base.digest == plain.digest
    assert hand_scenario(0.2, 0.1, 4).digest != plain.digest
    for key, value, words in [("vault_disposal", "slow", "vault_disposal"),
                              ("vault_disposal_share", 0.0, "vault_disposal_share"),
                              ("vault_disposal_share", 1.5, "vault_disposal_share"),
                              ("vault_depth_share", 0.0, "vault_depth_share")]:
        with pytest.raises(ScenarioError, match=words):
            scenario_from_dict({**doc, "venue": {**venue, "vault_disposal": "gradual",
                                                 key: value}})
    with pytest.raises(ScenarioError, match="backstop_ratio"):
        scenario_from_dict({**doc, "venue": {**venue, "backstop_ratio": 0.0,
                                             "vault_disposal": "gradual"}})


def test_the_vaults_sales_liquidate():
    """A long of 100 @ 100 with $896.95 is liquidated below (10,000 - 896.95) / 99 =
    91.95: safe at 92, it falls to the vault's first sale (92 -> 92 e^-0.001 = 91.908) in
    round 1 of step 2 (a plain liquidation: its equity is above 2/3 of its maintenance).
    With ``instant`` disposal the price stays at 92 and it survives."""
    other = {"id": "near", "margin_mode": "isolated", "collateral": {"USD": 896.95},
             "positions": [{"symbol": "BTC", "qty": 100.0, "entry": S0}]}
    for disposal in ("gradual", "instant"):
        prep = prepare(hand_scenario(0.25, 0.1, 4, disposal, others=(other,)))
        exo = generate_paths(prep.inputs, 1, np.random.default_rng(0))
        res = replay(exo, prep.inputs.depth_usd, prep.book, prep.rules, index=prep.index)
        near = prep.book.account_ids.index("near")
        mine = prep.book.unit_account[res.ev_i[:, codes.EI_UNIT].clip(0)] == near
        mine &= res.ev_i[:, codes.EI_UNIT] >= 0
        if disposal == "instant":
            assert not mine.any()
            continue
        assert mine.any()
        ei = res.ev_i[mine][0]
        assert (ei[codes.EI_KIND], ei[codes.EI_STEP], ei[codes.EI_ROUND]) == (
            codes.KIND_LIQUIDATION, 2, 1)
        assert res.ev_f[mine][0, codes.EF_MARK] == pytest.approx(92.0 * math.exp(-0.001),
                                                                 rel=1e-12)
