"""Inverse (coin-margined) perpetuals: the Numba engine follows the slow reference engine.

``docs/engine.md`` gives a position a kind, linear or inverse. An inverse position's
``qty`` is in USD contracts: its value is ``qty (M / entry - 1)``, its notional the constant
``|qty|`` (which sets its bracket), and what it realises is paid into the coin balance,
``coll[u, a] += c (1/entry - 1/price)``, which may go negative (a coin debt, counted without
haircut, that keeps the unit live and is bought back in a full liquidation). Its forced flow
is ``c / M`` coins (plus, in a full liquidation, the coin its PnL adds), ADL matches it only
with inverse positions at ``P = M / (1 - s D_p / q)`` (the share is socialised when
``s D_p / q >= 1``), funding is paid in the coin and a margin-call reduction realises it
like a liquidation.

Random books mix linear accounts, inverse accounts margined in the coin or in USD, and
cross accounts holding both; random paths gap down and up (a short inverse loses when the
price rises, a long inverse margined in its coin is hit twice by a crash). Every case is
replayed by both engines, indexed and full-scan, on seeds 1 and 2, and every event field,
per-path record and account output (PnL included) is compared with ``tests/reference``.
``test_cases_exercise_every_mechanism`` shows, on the reference engine alone, that the
inverse mechanisms really happen in these cases; the ``by_hand`` tests check the reference
engine itself on tiny books.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from simulator.book.build import Book, assemble_book
from simulator.config.behaviour import Behaviour
from simulator.config.market import Liquidity
from simulator.config.scenario import Venue
from simulator.margin import EngineRules, codes, replay
from simulator.margin.engine import BookIndex

from .. import reference
from ..reference import naive_replay
from ..support.compare import Setup, assert_same, gapped_walks, reference_kwargs, run_reference
from ..support.rule_cases import PRICES, STEP_HOURS, TIERS, maintenance, market, tier_tables

STEPS = 12
N_PATHS = 6
N_ACCOUNTS = 30
#: A0 (a BTC-like coin, haircut 0) and A1 (haircut 15%: a coin debt there shows that debts
#: count without haircut) carry inverse positions; A2 only linear ones.
HAIRCUT = np.array([0.0, 0.15, 0.3])
INVERSE_ASSETS = (0, 1)


@dataclass(frozen=True)
class Case:
    """One venue, behaviour and path configuration replayed by both engines."""

    name: str
    venue: dict[str, Any]
    behaviour: Behaviour = Behaviour()
    impact: str = "linear"
    half_life: float = 0.0
    rng_key: int = 0
    #: range of the per-asset gap factor a third of the way (a second, milder gap of either
    #: sign comes two thirds of the way)
    gap: tuple[float, float] = (0.75, 1.3)
    #: mechanisms this case must show in ``test_cases_exercise_every_mechanism``
    shows: tuple[str, ...] = field(default=())


_FLAT = {"maintenance_margin_rate": 0.02, "target": 1.3, "liquidation_fee_rate": 0.01,
         "max_cascade_rounds": 8}
_TIERED = {**_FLAT, "brackets": TIERS}
_LIQ = ("inverse_long_liquidation", "inverse_short_liquidation", "coin_debt",
        "coin_debt_bought_back")


def _reduce(prob: float, delay: int) -> Behaviour:
    return Behaviour(margin_call_ratio=1.6, answer_probability=prob, delay_steps=delay,
                     action="reduce", target_ratio=2.5)


CASES = [
    Case("full-adl-pnl-margin",
         {**_FLAT, "liquidation": "full", "insurance_fund_usd": 0.0, "adl": True},
         shows=(*_LIQ, "inverse_adl", "linear_adl")),
    Case("full-tiers-adl-profit-leverage",
         {**_TIERED, "liquidation": "full", "insurance_fund_usd": 300.0, "adl": True,
          "adl_ranking": "profit_leverage"},
         impact="sqrt", half_life=3.0, shows=(*_LIQ, "inverse_adl")),
    Case("partial-tiers-adl",
         {**_TIERED, "liquidation": "partial", "insurance_fund_usd": 100.0, "adl": True},
         shows=(*_LIQ, "inverse_partial", "inverse_adl")),
    Case("incremental-tiers-no-adl",
         {**_TIERED, "liquidation": "incremental", "step_fraction": 0.3,
          "full_below_usd": 500.0, "insurance_fund_usd": 0.0, "adl": False},
         half_life=2.0, shows=(*_LIQ, "inverse_partial", "inverse_socialised")),
    Case("backstop-incremental-adl-profit-leverage",
         {**_TIERED, "liquidation": "incremental", "step_fraction": 0.25,
          "backstop_ratio": 2.0 / 3.0, "insurance_fund_usd": 0.0, "adl": True,
          "adl_ranking": "profit_leverage"},
         impact="sqrt", shows=("inverse_backstop", "inverse_partial", "inverse_adl")),
    Case("premium-funding-partial-adl-profit-leverage",
         {**_FLAT, "liquidation": "partial", "insurance_fund_usd": 0.0, "adl": True,
          "adl_ranking": "profit_leverage", "funding": "premium", "funding_rate": 0.001,
          "funding_cap": 0.01, "funding_interval_hours": 8.0},
         half_life=3.0,
         shows=("inverse_funding_paid", "inverse_funding_received", "funding_changes_pnl",
                "premium_moves", "inverse_adl")),
    Case("constant-funding-shorts-pay-full",
         {**_TIERED, "liquidation": "full", "insurance_fund_usd": 200.0, "adl": True,
          "funding": "constant", "funding_rate": -0.004, "funding_interval_hours": 16.0},
         shows=("inverse_funding_paid", "inverse_funding_received", "funding_changes_pnl")),
    Case("calls-reduce-full-tiers",
         {**_TIERED, "liquidation": "full", "insurance_fund_usd": 0.0, "adl": True},
         behaviour=_reduce(1.0, 1), rng_key=5,
         shows=("inverse_reduce", "linear_reduce", "coin_debt_from_reduce", "inverse_adl")),
    Case("calls-reduce-partial-funding",
         {**_FLAT, "liquidation": "partial", "insurance_fund_usd": 100.0, "adl": False,
          "funding": "constant", "funding_rate": 0.003, "funding_interval_hours": 8.0},
         behaviour=_reduce(0.5, 2), impact="sqrt", half_life=2.0, rng_key=2**62 + 3,
         shows=("inverse_reduce", "inverse_funding_paid", "inverse_socialised")),
    Case("calls-top-up-incremental",
         {**_FLAT, "liquidation": "incremental", "step_fraction": 0.4,
          "insurance_fund_usd": 50.0, "adl": True},
         behaviour=Behaviour(margin_call_ratio=1.5, answer_probability=1.0, delay_steps=1,
                             action="top_up", target_ratio=2.0, reserve_ratio=0.3),
         rng_key=17, shows=("inverse_top_up",)),
    Case("crash-full-adl",
         {**_FLAT, "liquidation": "full", "insurance_fund_usd": 0.0, "adl": True},
         gap=(0.2, 1.2), shows=(*_LIQ, "inverse_adl", "inverse_share_untradeable")),
]


# ---------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------


def random_book(rng: np.random.Generator, tables) -> Book:
    """A random book of linear, inverse and mixed accounts.

    - linear (35%): as in ``tests/margin/test_rules_vs_reference.py``, USD or coin margin;
    - inverse (45%): one or two inverse positions in A0 / A1 of a few thousand USD
      contracts, entry within 3% of the price, margined in the coin of one of them (70%,
      worth the margin after haircut) or in USD, cross or isolated;
    - mixed (20%): cross, a linear position and a smaller inverse one, USD or coin
      margin.

    Leverage is drawn up to ~0.9 / (the account's maintenance rate at the initial prices),
    so accounts start above maintenance and a gap liquidates many of them.
    """
    n_assets = len(PRICES)
    isolated = np.zeros(N_ACCOUNTS, dtype=bool)
    usd = np.zeros(N_ACCOUNTS)
    coll = np.zeros((N_ACCOUNTS, n_assets))
    pos_account, pos_asset, pos_qty, pos_entry, pos_kind = [], [], [], [], []
    for i in range(N_ACCOUNTS):
        roll = rng.random()
        kind = "linear" if roll < 0.35 else "inverse" if roll < 0.8 else "mixed"
        isolated[i] = kind != "mixed" and rng.random() < 0.4
        if kind == "linear":
            legs = [(int(a), codes.POS_LINEAR) for a in
                    rng.choice(n_assets, size=int(rng.integers(1, 3)), replace=False)]
        elif kind == "inverse":
            legs = [(int(a), codes.POS_INVERSE) for a in
                    rng.choice(INVERSE_ASSETS, size=int(rng.integers(1, 3)), replace=False)]
        else:
            legs = [(int(rng.integers(n_assets)), codes.POS_LINEAR),
                    (int(rng.choice(INVERSE_ASSETS)), codes.POS_INVERSE)]
        notional = mm = 0.0
        for a, pk in legs:
            side = 1.0 if rng.random() < 0.55 else -1.0
            entry = PRICES[a] * float(rng.uniform(0.97, 1.03))
            # a mixed account's inverse leg is the smaller one (after a crash of more than
            # half, its share of the deficit can exceed its face: s D_p / q >= 1)
            mixed = kind == "mixed"
            if pk == codes.POS_INVERSE:
                size_usd = float(rng.lognormal(np.log(800.0 if mixed else 3000.0), 0.7))
                qty = side * size_usd  # USD contracts
            else:
                size_usd = float(rng.lognormal(np.log(2000.0 if mixed else 1000.0), 1.0))
                qty = side * size_usd / entry
            pos_account.append(i)
            pos_asset.append(a)
            pos_qty.append(qty)
            pos_entry.append(entry)
            pos_kind.append(pk)
            notional += size_usd
            mm += maintenance(size_usd, a, tables)
        margin = notional / float(rng.uniform(1.5, 0.9 * notional / mm))
        coin_share = {"linear": 0.3, "inverse": 0.7, "mixed": 0.5}[kind]
        if rng.random() < coin_share and (kind == "inverse" or not isolated[i]):
            # coin margin: the coin of an inverse leg (or any coin for a linear account),
            # worth the margin after its haircut, plus a little USD now and then
            inv = [a for a, pk in legs if pk == codes.POS_INVERSE]
            a = int(rng.choice(inv)) if inv else int(rng.integers(n_assets))
            coll[i, a] = margin / (PRICES[a] * (1.0 - HAIRCUT[a]))
            usd[i] = 0.1 * margin if rng.random() < 0.3 else 0.0
        else:
            usd[i] = margin
    ids = [f"acct-{i}" for i in range(N_ACCOUNTS)]
    return assemble_book(ids, isolated, usd, coll, np.array(pos_account),
                         np.array(pos_asset), np.array(pos_qty), np.array(pos_entry),
                         pos_kind=np.array(pos_kind))


def random_paths(rng: np.random.Generator, gap: tuple[float, float]) -> np.ndarray:
    """Random walks with 1.5% steps, a gap drawn from ``gap`` per asset a third of the way
    and a second one of +-15% two thirds of the way."""
    return gapped_walks(rng, PRICES, N_PATHS, STEPS, 0.015,
                        ((STEPS // 3, gap), (2 * STEPS // 3, (0.85, 1.15))))


def build(case: Case, seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    venue = Venue(**case.venue)
    book = random_book(rng, tier_tables(venue))
    exo = random_paths(rng, case.gap)
    depth = np.full((STEPS + 1, len(PRICES)), 6000.0)
    depth[STEPS // 3] *= 0.5
    return Setup(case, venue, Liquidity(impact=case.impact, half_life_steps=case.half_life),
                 book, exo, depth)


def rules_of(s: Setup, full_scan: bool = False) -> EngineRules:
    return EngineRules.from_scenario(s.venue, s.liquidity, market(HAIRCUT),
                                     full_scan=full_scan, behaviour=s.case.behaviour,
                                     step_hours=STEP_HOURS)


def reference_book(s: Setup) -> reference.Book:
    """The initial book as the reference engine holds it."""
    b = s.book
    return reference.Book(HAIRCUT.tolist(), *(t.tolist() for t in tier_tables(s.venue)),
                          b.unit_usd.tolist(), b.unit_coll.tolist(), b.pos_unit.tolist(),
                          b.pos_asset.tolist(), b.pos_qty.tolist(), b.pos_entry.tolist(),
                          b.pos_kind.tolist())


def reserve_of(s: Setup, rules: EngineRules) -> list[float]:
    """The engine's per-unit reserve, checked against reserve_ratio x max(E_u at t = 0, 0)
    with the reference engine's equity (inverse values included)."""
    reserve = BookIndex.build(s.book, rules, s.exo[0, 0]).reserve
    ref = reference_book(s)
    ratio = s.case.behaviour.reserve_ratio
    expected = [ratio * max(ref.equity(u, PRICES.tolist()), 0.0)
                for u in range(s.book.n_units)]
    np.testing.assert_allclose(reserve, expected, rtol=1e-12, atol=1e-9)
    return reserve.tolist()


def run_naive(s: Setup, reserve, **overrides):
    """The reference engine on a setup, with the venue's and the behaviour's parameters."""
    kwargs = reference_kwargs(s.venue, s.liquidity, s.book, tier_tables(s.venue),
                              behaviour=s.case.behaviour, step_hours=STEP_HOURS,
                              reserve=reserve, rng_key=s.case.rng_key)
    kwargs.update(overrides)
    return run_reference(s.exo, s.depth, HAIRCUT, s.book, **kwargs)


# ---------------------------------------------------------------------------------------
# Fast engine vs reference
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("full_scan", [False, True], ids=["indexed", "full-scan"])
def test_engine_matches_naive_inverse(case, seed, full_scan):
    s = build(case, seed)
    assert (s.book.pos_kind == codes.POS_INVERSE).sum() > 10
    rules = rules_of(s, full_scan)
    np.testing.assert_allclose(rules.haircut, HAIRCUT, rtol=1e-15)
    reserve = reserve_of(s, rules)
    fast = replay(s.exo, s.depth, s.book, rules, initial_events=16, rng_key=case.rng_key)
    paths, events, accounts = run_naive(s, reserve)
    assert sum(1 for ev in events if ev["instrument"] == "inverse") > 5
    assert_same(fast, s.book, paths, events, accounts, PRICES)


# ---------------------------------------------------------------------------------------
# The cases are not vacuous (reference engine only)
# ---------------------------------------------------------------------------------------


def _record(monkeypatch) -> dict[str, list]:
    """Wrap the reference engine to record what happens to inverse positions and coin
    balances: fractions, realisations, funding, answers, deleveraging and socialisation."""
    seen: dict[str, list] = {"fractions": [], "realised": [], "funding": [], "answers": [],
                             "untradeable": [], "inverse_shares": [], "liquidated": [],
                             "rates": []}
    cls, book_cls = reference.PathRun, reference.Book
    originals = {name: getattr(cls, name) for name in
                 ("fraction", "pay_funding", "answer_calls", "deleverage", "socialise",
                  "count_liquidation", "funding_rates")}
    original_realise = book_cls.realise

    def coins(book):
        return [list(row) for row in book.coll]

    def fraction(self, u):
        backstop, f = originals["fraction"](self, u)
        inverse = any(self.book.inverse(p) for p in self.book.open_positions(u))
        seen["fractions"].append((backstop, f, inverse))
        return backstop, f

    def realise(self, u, p, c, price):
        notional = original_realise(self, u, p, c, price)
        seen["realised"].append((self.inverse(p), self.coll[u][self.asset[p]],
                                 self.haircut[self.asset[p]]))
        return notional

    def pay_funding(self, t):
        before = coins(self.book)
        originals["pay_funding"](self, t)
        seen["funding"].append((before, coins(self.book)))

    def answer_calls(self, t):
        before = coins(self.book)
        originals["answer_calls"](self, t)
        seen["answers"].append((before, coins(self.book)))

    def deleverage(self, t, r, u, p, c, d_p):
        if self.book.inverse(p) and math.copysign(1.0, c) * d_p / abs(c) >= 1.0:
            seen["untradeable"].append((self.path, t, u, p, c, d_p))
        return originals["deleverage"](self, t, r, u, p, c, d_p)

    def socialise(self, t, r, u, asset, amount, position=None):
        originals["socialise"](self, t, r, u, asset, amount, position=position)
        if position is not None and self.book.inverse(position):
            seen["inverse_shares"].append(amount)

    def count_liquidation(self, t, u):
        book = self.book
        seen["liquidated"].append((bool(book.open_positions(u)),
                                   any(x < 0.0 for x in book.coll[u])))
        return originals["count_liquidation"](self, t, u)

    def funding_rates(self, t):
        rates = originals["funding_rates"](self, t)
        seen["rates"].append(rates)
        return rates

    for name, wrapper in (("fraction", fraction), ("pay_funding", pay_funding),
                          ("answer_calls", answer_calls), ("deleverage", deleverage),
                          ("socialise", socialise), ("count_liquidation", count_liquidation),
                          ("funding_rates", funding_rates)):
        monkeypatch.setattr(cls, name, wrapper)
    monkeypatch.setattr(book_cls, "realise", realise)
    return seen


def _mechanisms(s: Setup, reserve, seen, paths, events, accounts) -> set[str]:
    """Which inverse mechanisms occurred in one replay of a case."""
    shown: set[str] = set()
    book = s.book
    inverse_account = np.zeros(book.n_accounts, dtype=bool)
    inverse_account[book.unit_account[book.pos_unit[book.pos_kind == codes.POS_INVERSE]]] = True
    for ev in events:
        kind, instrument = ev["kind"], ev["instrument"]
        if kind == "liquidation" and instrument == "inverse":
            # qty is the trade: a long is closed by selling
            shown.add("inverse_long_liquidation" if ev["qty"] < 0 else
                      "inverse_short_liquidation")
            assert ev["notional"] == abs(ev["qty"])  # constant notional: the contracts
        if kind in ("liquidation", "backstop") and instrument == "collateral" and ev["qty"] > 0:
            shown.add("coin_debt_bought_back")  # a negative balance bought back
        if kind == "backstop" and instrument == "inverse":
            shown.add("inverse_backstop")
        if kind == "adl":
            shown.add("inverse_adl" if instrument == "inverse" else "linear_adl")
        if kind == "reduce":
            shown.add("inverse_reduce" if instrument == "inverse" else "linear_reduce")
        if kind == "top_up" and inverse_account[ev["account"]]:
            shown.add("inverse_top_up")
    for backstop, f, inverse in seen["fractions"]:
        if inverse and not backstop and f < 1.0:
            shown.add("inverse_partial")
    for inverse, balance, haircut in seen["realised"]:
        if inverse and balance < 0.0:
            shown.add("coin_debt")
            if haircut > 0.0:
                shown.add("coin_debt_with_haircut")  # counted at w = 1, not 1 - h
    for has_positions, coin_debt in seen["liquidated"]:
        if coin_debt:
            shown.add("coin_debt_unit_liquidated")
            if not has_positions:
                shown.add("coin_debt_only_unit_liquidated")
    for before, after in seen["funding"]:
        for row0, row1 in zip(before, after, strict=True):
            if any(x1 < x0 for x0, x1 in zip(row0, row1, strict=True)):
                shown.add("inverse_funding_paid")
            if any(x1 > x0 for x0, x1 in zip(row0, row1, strict=True)):
                shown.add("inverse_funding_received")
    for before, after in seen["answers"]:
        for row0, row1 in zip(before, after, strict=True):
            if any(x1 < 0.0 <= x0 for x0, x1 in zip(row0, row1, strict=True)):
                shown.add("coin_debt_from_reduce")
    if seen["untradeable"]:
        shown.add("inverse_share_untradeable")
    if seen["inverse_shares"]:
        shown.add("inverse_socialised")
    v = s.venue
    if v.funding == "premium":
        for rates in seen["rates"]:
            if any(r != v.funding_rate for r in rates):
                shown.add("premium_moves")
    if v.funding != "off":
        _, _, no_accounts = run_naive(s, reserve, funding_interval=0)
        if not np.allclose(no_accounts["pnl"], accounts["pnl"], rtol=1e-6, atol=1e-6):
            shown.add("funding_changes_pnl")
    return shown


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cases_exercise_every_mechanism(case, monkeypatch):
    """Each case shows the mechanisms it is there for, on seed 1 and on seed 2."""
    for seed in (1, 2):
        s = build(case, seed)
        reserve = reserve_of(s, rules_of(s))
        seen = _record(monkeypatch)
        paths, events, accounts = run_naive(s, reserve)
        monkeypatch.undo()
        shown = _mechanisms(s, reserve, seen, paths, events, accounts)
        missing = set(case.shows) - shown
        assert not missing, (case.name, seed, missing, sorted(shown))


# ---------------------------------------------------------------------------------------
# Tiny books checked by hand against docs/engine.md (and replayed by both engines)
# ---------------------------------------------------------------------------------------

#: haircuts of the tiny books: A1's 50% shows that a coin debt counts without haircut
TINY_HAIRCUT = np.array([0.0, 0.5, 0.3])
_TINY_VENUE = {"maintenance_margin_rate": 0.05, "target": 1.25, "liquidation_fee_rate": 0.0,
               "insurance_fund_usd": 0.0, "adl": False, "liquidation": "full",
               "max_cascade_rounds": 8}


def _tiny(moves, usd, coll, pos_asset, qty, entry, kind, *, behaviour=None, **venue):
    """A tiny book replayed by both engines on one path; the reference engine's output.

    One cross account per unit; ``usd`` per unit, ``coll`` as ``(unit, asset, amount)``
    rows, positions as ``(unit, asset)`` rows in ``pos_asset`` with ``qty``, ``entry`` and
    ``kind``; ``moves`` give the prices of ``t = 1, 2, ...`` as ``{asset: price}`` changes
    from the initial ``PRICES``. No impact, flat 5% maintenance, venue ``_TINY_VENUE``
    updated by ``venue``. The engine's output must equal the reference engine's.
    """
    behaviour = Behaviour() if behaviour is None else behaviour
    rows = [PRICES.copy()]
    for move in moves:
        row = rows[-1].copy()
        for a, price in move.items():
            row[a] = price
        rows.append(row)
    exo = np.array([rows])
    n_units = len(usd)
    coll_rows = np.zeros((n_units, len(PRICES)))
    for u, a, amount in coll:
        coll_rows[u, a] = amount
    pos_unit = np.array([row[0] for row in pos_asset], dtype=np.int64)
    assets = np.array([row[1] for row in pos_asset], dtype=np.int64)
    book = assemble_book([f"u{u}" for u in range(n_units)], np.zeros(n_units, dtype=bool),
                         np.array(usd, dtype=float), coll_rows, pos_unit, assets,
                         np.array(qty, dtype=float), np.array(entry, dtype=float),
                         pos_kind=np.array(kind))
    v = Venue(**{**_TINY_VENUE, **venue})
    s = Setup(Case("tiny", {}, behaviour=behaviour), v, Liquidity(impact="none"), book, exo,
              np.full((len(rows), len(PRICES)), 1e6))
    rules = EngineRules.from_scenario(v, s.liquidity, market(TINY_HAIRCUT),
                                      behaviour=behaviour, step_hours=STEP_HOURS)
    reserve = BookIndex.build(book, rules, PRICES).reserve.tolist()
    fast = replay(exo, s.depth, book, rules, initial_events=4)
    interval = 0 if v.funding == "off" else round(v.funding_interval_hours / STEP_HOURS)
    out = naive_replay(
        exo, s.depth, TINY_HAIRCUT, [0.05] * len(PRICES), book.unit_account, book.unit_usd,
        book.unit_coll, book.pos_unit, book.pos_asset, book.pos_qty, book.pos_entry,
        n_accounts=book.n_accounts, fee_rate=v.liquidation_fee_rate, target=v.target,
        fund0=v.insurance_fund_usd, adl=v.adl, max_rounds=v.max_cascade_rounds, alpha=0.0,
        decay=1.0, mode=v.liquidation, funding_interval=interval, funding_rate=v.funding_rate,
        call_ratio=behaviour.margin_call_ratio, call_prob=behaviour.answer_probability,
        call_delay=behaviour.delay_steps, call_action=behaviour.action,
        call_target=behaviour.target_ratio, reserve=reserve, pos_kind=book.pos_kind)
    literal = [dict(ev) for ev in out[1]]
    assert_same(fast, book, *out, PRICES)
    return out[0], literal, out[2]


def _fields(ev):
    return (ev["step"], ev["round"], ev["account"], ev["kind"], ev["instrument"], ev["asset"])


def test_naive_by_hand_inverse_long_coin_debt_bought_back():
    """Long 1000 USD contracts @ 100 with $100, MM 5% of the constant notional = 50, fee 1%.

    At 94: V = 1000 (94/100 - 1) = -60, E = 40 < 50: fully liquidated at 94. The PnL goes
    to the coin, 1000 (1/100 - 1/94) = -0.6383 coins, a coin debt bought back for $60
    (a collateral event with qty +0.6383, notional |amount| X = 60); fee min(10, 40) = 10.
    PnL = 30 - 100 = -70.
    """
    paths, events, accounts = _tiny([{0: 94.0}], [100.0], [], [(0, 0)], [1000.0], [100.0],
                                    [1], liquidation_fee_rate=0.01)
    debt = 1000.0 * (1.0 / 100.0 - 1.0 / 94.0)
    assert [_fields(ev) for ev in events] == [
        (1, 1, 0, "liquidation", "inverse", 0), (1, 1, 0, "liquidation", "collateral", 0)]
    liq, buy = events
    assert (liq["qty"], liq["mark_price"], liq["exec_price"]) == (-1000.0, 94.0, 94.0)
    assert liq["notional"] == 1000.0
    assert math.isclose(liq["fee"], 10.0, rel_tol=1e-12)
    assert math.isclose(buy["qty"], -debt, rel_tol=1e-12) and buy["qty"] > 0
    assert math.isclose(buy["notional"], 60.0, rel_tol=1e-12)
    assert paths[0]["bad_debt"] == 0.0
    assert math.isclose(paths[0]["liquidated_notional"], 1000.0, rel_tol=1e-12)
    assert math.isclose(accounts["pnl"][0][0], -70.0, rel_tol=1e-12)


def test_naive_by_hand_coin_covered_short_never_liquidated():
    """Short 1000 contracts @ 100 margined with 10 coins (haircut 0): NAV
    10 M - 1000 (M / 100 - 1) = 1000 whatever the price, so it is never liquidated."""
    paths, events, accounts = _tiny([{0: 300.0}, {0: 20.0}, {0: 150.0}], [0.0],
                                    [(0, 0, 10.0)], [(0, 0)], [-1000.0], [100.0], [1])
    assert events == []
    assert math.isclose(accounts["pnl"][0][0], 0.0, abs_tol=1e-9)


def test_naive_by_hand_partial_short_coin_debt_without_haircut():
    """Short 1000 contracts @ 20 in A1 (haircut 50%) with $100; partial to 1.25 x MM.

    At 21.2: V = -60, E = 40 < MM = 50; f = (62.5 - 40) / 62.5 = 0.36 closes 360
    contracts, realising 360 (1/21.2 - 1/20) = -1.0189 coins (-$21.6: a coin debt at
    w = 1). After it E = 100 - 21.6 - 640 x 0.06 = 40 = 1.25 x MM (32): not liquidatable
    (a debt haircut at 50% would give 50.8). At 26: E = 100 - 26.49 - 192 < 0: full; the
    rest realises -7.3846 coins and the whole debt is bought back at 26, usd = -118.49;
    the fund ($1000) pays the bad debt.
    """
    paths, events, accounts = _tiny([{1: 21.2}, {1: 26.0}], [100.0], [], [(0, 1)],
                                    [-1000.0], [20.0], [1], liquidation="partial",
                                    insurance_fund_usd=1000.0)
    debt1 = -360.0 * (1.0 / 20.0 - 1.0 / 21.2)
    debt2 = debt1 - 640.0 * (1.0 / 20.0 - 1.0 / 26.0)
    assert [_fields(ev) for ev in events] == [
        (1, 1, 0, "liquidation", "inverse", 1), (2, 1, 0, "liquidation", "inverse", 1),
        (2, 1, 0, "liquidation", "collateral", 1)]
    first, second, buy = events
    assert math.isclose(first["qty"], 360.0, rel_tol=1e-12)
    assert math.isclose(first["notional"], 360.0, rel_tol=1e-12)
    assert math.isclose(second["qty"], 640.0, rel_tol=1e-12)
    assert math.isclose(buy["qty"], -debt2, rel_tol=1e-12)
    assert math.isclose(buy["notional"], -debt2 * 26.0, rel_tol=1e-12)
    bd = debt2 * 26.0 + 100.0
    assert bd < 0
    assert math.isclose(paths[0]["bad_debt"], -bd, rel_tol=1e-12)
    assert math.isclose(second["bad_debt"], -bd, rel_tol=1e-12)
    assert math.isclose(second["fund_paid"], -bd, rel_tol=1e-12)
    assert paths[0]["n_liquidations"] == 2
    assert math.isclose(accounts["pnl"][0][0], -100.0, rel_tol=1e-12)


def test_naive_by_hand_reduce_leaves_a_coin_debt_that_is_liquidated():
    """Short 1000 contracts @ 100 with $100, MM 50, kappa 1.5, tau 2, reduce, delay 1.

    At 103: E = 70 in [50, 75): called. At 112 the answer comes first: E = -20, so
    f = 1 - E / (2 MM) = 1.2, capped at 1: everything closes at the mark (event
    ``reduce``, instrument ``inverse``, qty +1000, notional 1000), realising
    1000 (1/112 - 1/100) = -1.0714 coins. The unit has no position left, but its coin debt
    keeps it live: E = 100 - 120 = -20 < MM = 0, so round 1 liquidates it: the debt is
    bought back ($120), bad debt $20 gets a USD debt event and, with no fund and no
    closed notional, one socialised USD event.
    """
    calls = Behaviour(margin_call_ratio=1.5, answer_probability=1.0, delay_steps=1,
                      action="reduce", target_ratio=2.0)
    paths, events, accounts = _tiny([{0: 103.0}, {0: 112.0}], [100.0], [], [(0, 0)],
                                    [-1000.0], [100.0], [1], behaviour=calls, adl=True)
    debt = -1000.0 * (1.0 / 100.0 - 1.0 / 112.0)
    assert [_fields(ev) for ev in events] == [
        (2, 0, 0, "reduce", "inverse", 0), (2, 1, 0, "liquidation", "debt", -1),
        (2, 1, 0, "liquidation", "collateral", 0), (2, 1, 0, "socialised", "debt", -1)]
    reduce, bad, buy, social = events
    assert (reduce["qty"], reduce["mark_price"], reduce["exec_price"]) == (1000.0, 112.0,
                                                                            112.0)
    assert reduce["notional"] == 1000.0
    assert math.isclose(buy["qty"], -debt, rel_tol=1e-12)
    assert math.isclose(buy["notional"], 120.0, rel_tol=1e-12)
    assert math.isclose(bad["bad_debt"], 20.0, rel_tol=1e-9)
    assert math.isclose(social["bad_debt"], 20.0, rel_tol=1e-9)
    assert math.isclose(accounts["pnl"][0][0], -100.0, rel_tol=1e-12)


def test_naive_by_hand_reduce_part_of_an_inverse_long():
    """Long 1000 contracts @ 100 with $100: at 96 E = 60 in [MM, 1.5 MM) = [50, 75): called.
    The answer at t = 2 closes f = 1 - 60 / 100 = 0.4 at 96, realising 400 (1/100 - 1/96)
    coins (-$16): E stays 60 and MM falls to 30 (E / MM = tau = 2)."""
    calls = Behaviour(margin_call_ratio=1.5, answer_probability=1.0, delay_steps=1,
                      action="reduce", target_ratio=2.0)
    _, events, accounts = _tiny([{0: 96.0}, {0: 96.0}], [100.0], [], [(0, 0)], [1000.0],
                                [100.0], [1], behaviour=calls)
    assert [_fields(ev) for ev in events] == [(2, 0, 0, "reduce", "inverse", 0)]
    assert math.isclose(events[0]["qty"], -400.0, rel_tol=1e-12)
    assert events[0]["mark_price"] == events[0]["exec_price"] == 96.0
    assert math.isclose(events[0]["notional"], 400.0, rel_tol=1e-12)
    assert math.isclose(accounts["pnl"][0][0], -40.0, rel_tol=1e-12)


def test_naive_by_hand_inverse_adl_price():
    """Long 1000 contracts @ 100 with $60 falls to 90: E = -40, fully liquidated, the coin
    debt 1000 (1/90 - 1/100) is bought back for $100, bad debt 40 (no fund).

    ADL at P = M / (1 - D_p / q) = 90 / 0.96 = 93.75: the profitable inverse short (unit 1,
    -2000 @ 100) closes 1000 contracts, realising -1000 (1/100 - 1/93.75) = +0.6667 coins
    ($60 at 90 instead of the $100 it would get at the mark: it covers b = 40). The linear
    short in the same asset (unit 2) is not a candidate: ADL stays within a kind.
    """
    paths, events, accounts = _tiny(
        [{0: 90.0}], [60.0, 1000.0, 1000.0], [], [(0, 0), (1, 0), (2, 0)],
        [1000.0, -2000.0, -20.0], [100.0, 100.0, 100.0], [1, 1, 0], adl=True)
    assert [_fields(ev) for ev in events] == [
        (1, 1, 0, "liquidation", "inverse", 0), (1, 1, 0, "liquidation", "collateral", 0),
        (1, 1, 1, "adl", "inverse", 0)]
    adl = events[2]
    assert adl["qty"] == 1000.0 and adl["mark_price"] == 90.0
    assert math.isclose(adl["exec_price"], 93.75, rel_tol=1e-12)
    assert adl["notional"] == 1000.0  # inverse: dq
    assert math.isclose(adl["bad_debt"], 40.0, rel_tol=1e-9)
    assert math.isclose(paths[0]["adl_notional"], 1000.0, rel_tol=1e-12)
    assert paths[0]["socialised_loss"] == 0.0
    np.testing.assert_allclose(accounts["pnl"][0], [-60.0, 160.0, 200.0], rtol=1e-9)


def test_naive_by_hand_inverse_share_untradeable():
    """A linear long of 50 A1 @ 20 and an inverse long of 100 contracts in A0 @ 100, with
    $60. A1 falls to 8: E = -540, fully liquidated, closed notional 400 + 100, bad debt 540
    (no fund). The linear share 432 goes to ADL at 8 + 432 / 50 = 16.64 (unit 2's linear
    short); the inverse share 108 is more than its 100 contracts' face (s D_p / q = 1.08 >=
    1): nobody can be deleveraged, it is socialised although unit 1's inverse short is in
    profit. The socialised event has the instrument of the bankrupt position, ``inverse``."""
    paths, events, accounts = _tiny(
        [{1: 8.0}], [60.0, 100.0, 500.0], [], [(0, 1), (0, 0), (1, 0), (2, 1)],
        [50.0, 100.0, -500.0, -100.0], [20.0, 100.0, 110.0, 20.0], [0, 1, 1, 0], adl=True)
    assert [_fields(ev) for ev in events] == [
        (1, 1, 0, "liquidation", "perp", 1), (1, 1, 0, "liquidation", "inverse", 0),
        (1, 1, 2, "adl", "perp", 1), (1, 1, 0, "socialised", "inverse", 0)]
    adl, social = events[2], events[3]
    assert math.isclose(adl["exec_price"], 16.64, rel_tol=1e-12)
    assert math.isclose(adl["bad_debt"], 432.0, rel_tol=1e-12)
    assert math.isclose(social["bad_debt"], 108.0, rel_tol=1e-12)
    assert math.isclose(paths[0]["socialised_loss"], 108.0, rel_tol=1e-12)


def test_naive_by_hand_inverse_funding():
    """Funding of 1% every 2 steps at a flat 100. The inverse long (1000 contracts, 2
    coins) pays 1000 x 1% / 100 = 0.1 coin each time, the inverse short receives it; a
    unit holding a linear long (10 @ 100) and the inverse long pays $10 in USD and 0.1
    coin each time. Two fundings in 4 steps."""
    _, events, accounts = _tiny(
        [{}, {}, {}, {}], [0.0, 500.0, 500.0], [(0, 0, 2.0)], [(0, 0), (1, 0), (2, 0), (2, 0)],
        [1000.0, -1000.0, 10.0, 1000.0], [100.0, 100.0, 100.0, 100.0], [1, 1, 0, 1],
        funding="constant", funding_rate=0.01, funding_interval_hours=16.0)
    assert events == []
    np.testing.assert_allclose(accounts["pnl"][0], [-20.0, 20.0, -40.0], rtol=1e-9)


def test_socialised_share_of_an_inverse_position_instrument():
    """A short of 1000 contracts @ 100 with $100, no fund, no ADL; at 130 it is fully
    liquidated with bad debt 200, socialised, with the instrument of the bankrupt
    position (``inverse``) in both engines."""
    rows = np.array([[PRICES, [130.0, 20.0, 3.0]]])
    book = assemble_book(["u0"], np.zeros(1, dtype=bool), np.array([100.0]), np.zeros((1, 3)),
                         np.array([0]), np.array([0]), np.array([-1000.0]),
                         np.array([100.0]), pos_kind=np.array([codes.POS_INVERSE]))
    v = Venue(**_TINY_VENUE)
    rules = EngineRules.from_scenario(v, Liquidity(impact="none"), market(TINY_HAIRCUT))
    fast = replay(rows, np.full((2, 3), 1e6), book, rules, initial_events=4)
    _, events, _ = naive_replay(
        rows, np.full((2, 3), 1e6), TINY_HAIRCUT, [0.05] * 3, book.unit_account,
        book.unit_usd, book.unit_coll, book.pos_unit, book.pos_asset, book.pos_qty,
        book.pos_entry, n_accounts=1, fee_rate=0.0, target=1.25, fund0=0.0, adl=False,
        max_rounds=8, alpha=0.0, decay=1.0, pos_kind=book.pos_kind)
    assert events[-1]["kind"] == "socialised"
    assert math.isclose(events[-1]["bad_debt"], 200.0, rel_tol=1e-12)
    assert events[-1]["instrument"] == "inverse"
    assert codes.INSTRUMENT_NAMES[fast.ev_i[-1, codes.EI_INSTRUMENT]] == events[-1]["instrument"]
