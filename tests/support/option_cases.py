"""The option cases replayed by the fast engine and the reference: random books of option
sellers and buyers and perpetual accounts, paths that gap while a vol shock lifts every
implied vol, the rules and the reference run of a case, and the option boxes the engine
finds. Shared by ``tests/margin/test_options_vs_reference.py`` and
``tests/margin/test_option_stages.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.book.build import Book, assemble_book
from simulator.config.behaviour import Behaviour
from simulator.config.market import Liquidity
from simulator.config.scenario import Venue
from simulator.margin import EngineRules, codes
from simulator.margin.engine import BookIndex

from .. import reference
from .compare import Setup, gapped_walks, naive_options, reference_kwargs, run_reference
from .rule_cases import PRICES, TIERS, maintenance, market, tier_tables

STEPS = 12
STEP_HOURS = 8.0  # 12 steps = 4 days: options of 1 to 3 days expire inside
N_PATHS = 6
N_ACCOUNTS = 30
HAIRCUT = np.array([0.0, 0.1, 0.2])
#: implied vols rise by 60% for steps 5..8 (a vol shock)
IV_MULT = np.ones((STEPS + 1, len(PRICES)))
IV_MULT[5:9] = 1.6
BETA = np.array([1.2, 0.5, 0.0])


@dataclass(frozen=True)
class Case:
    """One venue, behaviour and path configuration replayed by both engines."""

    name: str
    venue: dict[str, Any]
    behaviour: Behaviour = Behaviour()
    impact: str = "linear"
    gap: tuple[float, float] = (0.75, 1.25)
    rng_key: int = 0
    shows: tuple[str, ...] = field(default=())


BASE = {"maintenance_margin_rate": 0.02, "target": 1.3, "liquidation_fee_rate": 0.01,
         "max_cascade_rounds": 8, "option_liquidation_fee_rate": 0.003}
_LIQ = ("option_closed", "option_expired", "option_flow")

CASES = [
    Case("standard-full-adl", {**BASE, "liquidation": "full", "insurance_fund_usd": 0.0,
                               "adl": True},
         shows=(*_LIQ, "option_socialised", "short_option_liquidated")),
    Case("standard-partial-tiers", {**BASE, "brackets": TIERS, "liquidation": "partial",
                                    "insurance_fund_usd": 200.0, "adl": True},
         shows=(*_LIQ, "perps_first")),
    Case("matrix-full", {**BASE, "option_margin": "risk_matrix", "liquidation": "full",
                         "insurance_fund_usd": 0.0, "adl": False},
         impact="sqrt", gap=(0.55, 1.6), shows=(*_LIQ, "option_socialised")),
    Case("matrix-incremental-tiers", {**BASE, "brackets": TIERS, "option_margin": "risk_matrix",
                                      "risk_matrix_range_pct": 0.2,
                                      "liquidation": "incremental", "step_fraction": 0.3,
                                      "full_below_usd": 300.0, "insurance_fund_usd": 0.0,
                                      "adl": True},
         shows=(*_LIQ, "perps_first")),
    Case("standard-backstop", {**BASE, "liquidation": "partial", "backstop_ratio": 0.6,
                               "insurance_fund_usd": 0.0, "adl": True},
         shows=("option_backstop",)),
    Case("calls-reduce-funding", {**BASE, "liquidation": "full", "insurance_fund_usd": 50.0,
                                  "funding": "constant", "funding_rate": 0.002,
                                  "funding_interval_hours": 8.0},
         behaviour=Behaviour(margin_call_ratio=1.5, answer_probability=0.7, delay_steps=1,
                             action="reduce", target_ratio=2.0), rng_key=11,
         shows=("option_reduced",)),
    Case("calls-top-up-matrix", {**BASE, "option_margin": "risk_matrix",
                                 "liquidation": "partial", "insurance_fund_usd": 50.0},
         behaviour=Behaviour(margin_call_ratio=1.4, answer_probability=1.0, delay_steps=2,
                             action="top_up", target_ratio=1.8, reserve_ratio=0.4),
         rng_key=3, shows=("option_top_up",)),
]


def random_book(rng: np.random.Generator, tables) -> Book:
    """A random book: option sellers (55%: a naked put or call, a call covered by coins, a
    short straddle or a put spread, with or without a perpetual hedge), option buyers (15%:
    a long call or put and a perpetual) and perpetual accounts (30%), cross or isolated.
    Strikes within 15% of the price, expiries from 1 to 20 days, implied vols 0.5 to 1.2;
    the margin is 1.3 to 4 times the maintenance at the start."""
    n_assets = len(PRICES)
    isolated = np.zeros(N_ACCOUNTS, dtype=bool)
    usd = np.zeros(N_ACCOUNTS)
    coll = np.zeros((N_ACCOUNTS, n_assets))
    cols: dict[str, list] = {k: [] for k in ("account", "asset", "qty", "entry", "kind",
                                             "expiry", "iv")}

    def add(i, a, qty, entry, kind, expiry=0.0, iv=0.0):
        for key, value in zip(cols, (i, a, qty, entry, kind, expiry, iv), strict=True):
            cols[key].append(value)

    for i in range(N_ACCOUNTS):
        roll = rng.random()
        a = int(rng.integers(n_assets))
        s = float(PRICES[a])
        size = float(rng.lognormal(np.log(1500.0), 0.6)) / s  # coins
        expiry = float(rng.choice([1.0, 2.0, 3.0, 7.0, 20.0])) / 365.0
        iv = float(rng.uniform(0.5, 1.2))
        strike = s * float(rng.uniform(0.85, 1.15))
        isolated[i] = rng.random() < 0.3
        value = 0.0
        if roll < 0.3:  # perpetuals only
            side = 1.0 if rng.random() < 0.5 else -1.0
            add(i, a, side * size, s * float(rng.uniform(0.97, 1.03)), codes.POS_LINEAR)
            need = maintenance(size * s, a, tables)
        elif roll < 0.45:  # a buyer
            kind = codes.POS_CALL if rng.random() < 0.5 else codes.POS_PUT
            side = 1.0 if rng.random() < 0.5 else -1.0
            add(i, a, side * size, s * float(rng.uniform(0.98, 1.02)), codes.POS_LINEAR)
            add(i, a, size, strike, kind, expiry, iv)
            need = maintenance(size * s, a, tables)
        else:  # a seller
            style = rng.choice(["naked", "covered", "straddle", "spread"])
            if rng.random() < 0.3 and style != "covered":
                add(i, a, 0.5 * size * (1 if rng.random() < 0.5 else -1), s, codes.POS_LINEAR)
            if style == "naked":
                add(i, a, -size, strike, codes.POS_PUT if rng.random() < 0.6 else codes.POS_CALL,
                    expiry, iv)
            elif style == "covered":
                add(i, a, -size, strike, codes.POS_CALL, expiry, iv)
                if not isolated[i]:
                    coll[i, a] = size
            elif style == "straddle":
                add(i, a, -size, s, codes.POS_CALL, expiry, iv)
                add(i, a, -size, s, codes.POS_PUT, expiry, iv)
            else:
                add(i, a, -size, strike, codes.POS_PUT, expiry, iv)
                add(i, a, size, strike * 0.9, codes.POS_PUT, expiry, iv)
            need = 0.12 * size * s + maintenance(0.5 * size * s, a, tables)
            value = 0.05 * size * s
        usd[i] = value + need * float(rng.uniform(1.3, 4.0))
    ids = [f"acct-{i}" for i in range(N_ACCOUNTS)]
    order = np.lexsort((np.array(cols["kind"]) >= codes.POS_CALL, cols["account"]))
    arr = {k: np.array(v)[order] for k, v in cols.items()}
    return assemble_book(ids, isolated, usd, coll, arr["account"], arr["asset"], arr["qty"],
                         arr["entry"], pos_kind=arr["kind"], pos_expiry_years=arr["expiry"],
                         pos_iv=arr["iv"])


def random_paths(rng: np.random.Generator, gap: tuple[float, float]) -> np.ndarray:
    """Random walks with 2% steps, a gap drawn from ``gap`` per asset at step 4 (with the
    vol shock) and one of +-12% at step 8."""
    return gapped_walks(rng, PRICES, N_PATHS, STEPS, 0.02, ((4, gap), (8, (0.88, 1.12))))


def build(case: Case, seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    venue = Venue(**case.venue)
    book = random_book(rng, tier_tables(venue))
    exo = random_paths(rng, case.gap)
    depth = np.full((STEPS + 1, len(PRICES)), 5000.0)
    return Setup(case, venue, Liquidity(impact=case.impact), book, exo, depth)


def rules_of(s: Setup, full_scan: bool = False) -> EngineRules:
    mk = market(HAIRCUT)
    mk = type(mk)(mk.model, tuple(type(a)(a.symbol, a.price, a.vol, haircut=a.haircut,
                                          spot_vol_beta=float(b))
                                  for a, b in zip(mk.assets, BETA, strict=True)),
                  mk.correlation)
    return EngineRules.from_scenario(s.venue, s.liquidity, mk, full_scan=full_scan,
                                     behaviour=s.case.behaviour, step_hours=STEP_HOURS,
                                     iv_multiplier=IV_MULT)


def run_naive(s: Setup, rules: EngineRules, reserve):
    kwargs = reference_kwargs(s.venue, s.liquidity, s.book, tier_tables(s.venue),
                              behaviour=s.case.behaviour, step_hours=STEP_HOURS,
                              reserve=reserve, rng_key=s.case.rng_key)
    kwargs["options"] = naive_options(s.book, rules.options, STEPS, PRICES)
    return run_reference(s.exo, s.depth, HAIRCUT, s.book, **kwargs)


def reserve_of(s: Setup, rules: EngineRules) -> list[float]:
    return BookIndex.build(s.book, rules, s.exo[0, 0], STEPS).reserve.tolist()


def index_book_and_reference(s, rules):
    """The engine's index of a built case, its book, and the reference engine's book."""

    index = BookIndex.build(s.book, rules, PRICES, STEPS)
    book = s.book
    ref = reference.Book(HAIRCUT.tolist(), *(t.tolist() for t in tier_tables(s.venue)),
                         book.unit_usd.tolist(), book.unit_coll.tolist(), book.pos_unit.tolist(),
                         book.pos_asset.tolist(), book.pos_qty.tolist(), book.pos_entry.tolist(),
                         book.pos_kind.tolist(), naive_options(book, rules.options, STEPS, PRICES))
    return index, book, ref


def boxes_after_checks(s, rules, index, seed: int, n_draws: int, sd: float):
    """Yield ``(u, marks, t, t1, lo, hi)`` for every box that ``option_box_nb`` finds, as
    the engine calls it after an exact check, for the option units of the case ``s`` at
    ``n_draws`` random marks (log-normal around the prices, ``sd``) and steps."""
    from simulator.margin._kernels import option_boxes as box
    from simulator.margin._kernels import options as opt
    from simulator.margin._kernels.state import refresh_unit_nb
    book, oc = s.book, index.options.oc
    n_assets = len(PRICES)
    work = np.zeros((box.N_WORK, n_assets))
    lin, const = index.lin.copy(), index.const.copy()
    n_open = index.n_open.copy()
    mmk = np.ones(book.n_units)
    rng = np.random.default_rng(seed)
    for _ in range(n_draws):
        marks = np.ascontiguousarray(PRICES * np.exp(rng.normal(0.0, sd, n_assets)))
        t = int(rng.integers(0, STEPS + 1))
        for u in index.options.opt_units:
            refresh_unit_nb(u, marks, book.unit_usd, book.unit_coll, book.pos_qty,
                            book.pos_asset, book.pos_entry, book.pos_kind, book.unit_pos_start,
                            rules.haircut, rules.tiers, mmk, lin, const, n_open)
            slack = const[u] + lin[u] @ marks + opt.option_slack_nb(
                u, marks, t, 1.0, book.pos_qty, book.pos_asset, book.pos_entry, book.pos_kind,
                book.unit_pos_start, rules.tiers, oc)
            if not slack > 0.0:
                continue
            lo, hi = np.empty(n_assets), np.empty(n_assets)
            t1 = box.option_box_nb(u, marks, t, STEPS, slack, lin, const, rules.sigma, 1.0,
                                   book.pos_qty, book.pos_asset, book.pos_kind, book.pos_entry,
                                   book.unit_pos_start, rules.tiers, oc, lo, hi, work, False,
                                   False, box.GROW_TRIES)
            if t1 >= 0:
                yield u, marks, t, t1, lo, hi
