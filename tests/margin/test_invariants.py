"""Invariants of the margin engine, recomputed from its outputs alone (``docs/engine.md``).

``tests/margin/test_venue_properties.py`` checks the fund identity, the signs of bad debt, that no
unit is left liquidatable, a monotonicity and determinism. The properties here read the
replay's events, its saved closing marks and the exogenous paths, and rebuild from them,
with the rules written out in ``tests/support/ledger.py`` (not the engine's code), what must hold
on random books (cross and isolated, linear and inverse perpetuals, asset collateral),
venues (every liquidation mode, backstop, ADL, flat or tiered maintenance, funding, margin
calls) and paths (random walks with gaps, with and without impact):

- **conservation**: every dollar an account gains or loses is accounted for by the mark
  moves of what the book holds, the fills' cost against the mark (impact), fees, bad debt
  written off, ADL transfers and funding (``tests/support/ledger.py``, ``conservation_terms``,
  states the identity);
- **liquidations only below maintenance**: replaying each unit's balance, collateral and
  positions from the events, every unit liquidated in a round had equity below its
  maintenance at that round's marks, every live unit not liquidated did not, and none is
  left below after a step's last round (on a lending venue: a health factor below 1);
- the account PnL the engine reports is what that rebuilt ledger says;
- on the CLI's files for four shipped scenarios: ``paths/`` are the sums of ``events/``,
  the fund identity, the saved marks' minimum and final prices, and the conservation
  identity against ``accounts.parquet``'s mean PnL.

The book's and paths' numpy seed is drawn by ``hypothesis`` (derandomised, bounded), so a
failure prints all that is needed to rebuild it.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import cli
from simulator.book.build import Book, build_book
from simulator.config.behaviour import Behaviour
from simulator.config.market import Liquidity
from simulator.config.scenario import Venue, load_scenario
from simulator.margin import EngineRules, ReplayResult, codes, replay
from simulator.margin.engine import account_nav_coefficients

from ..support.ledger import (
    LIQ_KINDS,
    RTOL,
    STEP_HOURS,
    Funding,
    Ledger,
    book_scale,
    check_units,
    conservation_terms,
    path_events,
    step_start_marks,
)
from ..support.venue_draws import (
    Setup,
    derivatives_setup,
    half_lives,
    impacts,
    lending_setup,
    lending_venues,
    n_assets_st,
    seeds,
    venues,
)

SETTINGS = settings(max_examples=50, deadline=None, database=None, derandomize=True,
                    print_blob=True, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------
# Setups: the random books of support/venue_draws, some positions made inverse
# ---------------------------------------------------------------------------------------


def with_inverse(book: Book, rng: np.random.Generator, share: float) -> Book:
    """The same book with about ``share`` of its positions inverse (coin-margined): the
    same USD notional ``qty x entry`` as contracts of 1 USD. Unit splits depend only on
    that notional, so the units are unchanged."""
    inverse = rng.random(len(book.pos_qty)) < share
    return replace(book, pos_kind=np.where(inverse, codes.POS_INVERSE, codes.POS_LINEAR),
                   pos_qty=np.where(inverse, book.pos_qty * book.pos_entry, book.pos_qty))


@st.composite
def behaviours(draw) -> Behaviour | None:
    """No margin calls, or calls at 1.5 x maintenance answered by a top-up or a cut."""
    if draw(st.booleans()):
        return None
    return Behaviour(margin_call_ratio=1.5, answer_probability=draw(st.sampled_from([0.5, 1.0])),
                     delay_steps=draw(st.integers(1, 2)),
                     action=draw(st.sampled_from(["top_up", "reduce"])), target_ratio=2.0,
                     reserve_ratio=0.5)


@st.composite
def funded_venues(draw, adl=None) -> Venue:
    """A venue of ``venue_draws.venues``, with funding off, constant or premium."""
    venue = draw(venues(adl=adl))
    mode = draw(st.sampled_from(["off", "constant", "premium"]))
    if mode == "off":
        return venue
    return replace(venue, funding=mode,
                   funding_rate=draw(st.sampled_from([-0.002, 0.0005, 0.003])),
                   funding_interval_hours=draw(st.sampled_from([1.0, 2.0])) * STEP_HOURS,
                   funding_cap=0.01)


def replay_setup(s: Setup, venue: Venue, liquidity: Liquidity,
                 behaviour: Behaviour | None = None, full_scan: bool = False,
                 rng_key: int = 12345) -> ReplayResult:
    """Replay ``s`` keeping every path's closing marks."""
    rules = EngineRules.from_scenario(venue, liquidity, s.market, full_scan=full_scan,
                                      behaviour=behaviour, step_hours=STEP_HOURS)
    return replay(s.exo, s.depth, s.book, rules, initial_events=64, save_marks=s.exo.shape[0],
                  rng_key=rng_key)


# ---------------------------------------------------------------------------------------
# (a) Conservation: the book's PnL closes against the market, the fund and the venue
# ---------------------------------------------------------------------------------------


def check_conservation(res: ReplayResult, s: Setup, venue: Venue, liquidity: Liquidity,
                       ) -> None:
    """The identity of :func:`conservation_terms` on every path, to ``RTOL`` of the gross
    flows; the engine's account PnL is the left-hand side."""
    book = s.book
    s0 = s.exo[0, 0]
    pnl = res.account_pnl(account_nav_coefficients(book), s0).sum(axis=1)
    funding = Funding.of(venue)
    fund0 = venue.insurance_fund_usd
    for i in range(s.exo.shape[0]):
        t_ = conservation_terms(*path_events(res, i), s.exo[i], res.marks[i], book,
                                liquidity.decay_per_step, funding, venue.lending)
        pf = res.path_f[i]
        scale = t_["gross"] + book_scale(book, s0) + book_scale(book, res.final_price[i])
        tol = RTOL * scale
        if venue.lending:
            rhs = t_["mtm"] + t_["transfer"] + t_["bad_debt"]
        else:
            rhs = (t_["mtm"] - t_["impact"] - t_["adl"] - t_["fees"] + t_["bad_debt"]
                   - t_["funding"])
        assert abs(pnl[i] - rhs) <= tol, (i, pnl[i], rhs, t_)
        # the per-path records are the sums the identity used
        assert abs(t_["fees"] - pf[codes.PF_FEES]) <= tol, i
        assert abs(t_["bad_debt"] - pf[codes.PF_BAD_DEBT]) <= tol, i
        assert abs(t_["socialised"] - pf[codes.PF_SOCIALISED]) <= tol, i
        # each ADL counterparty gives up exactly the bad debt it covers
        assert abs(t_["adl"] - t_["adl_covered"]) <= tol, (i, t_)
        # accounts and fund together: MTM - IMPACT - FUNDING + SOCIALISED (+ fees on a
        # lending venue, where the protocol's fee comes out of the liquidators' bonus)
        together = pnl[i] + pf[codes.PF_FUND_END] - fund0
        if venue.lending:
            expect = t_["mtm"] + t_["transfer"] + t_["fees"] + t_["socialised"]
        else:
            expect = t_["mtm"] - t_["impact"] - t_["funding"] + t_["socialised"]
        assert abs(together - expect) <= tol + RTOL * fund0, (i, together, expect, t_)


# ---------------------------------------------------------------------------------------
# (b) Liquidations only below maintenance: a ledger of every unit, rebuilt from the events
# ---------------------------------------------------------------------------------------


def lending_marks(marks: np.ndarray, ev_i: np.ndarray, ev_f: np.ndarray, depth: np.ndarray,
                  alpha: float) -> np.ndarray:
    """Marks after a lending round: liquidators sell what they seize and buy what they
    repay, ``flow[a] = -sum qty`` of the round's events in ``a``, and the marks move by
    ``exp(-sign(Q) 0.01 (|Q| / depth) ** alpha)``, ``Q = flow x M``."""
    new = marks.copy()
    for a in range(len(marks)):
        on = ev_i[:, codes.EI_ASSET] == a
        q = -ev_f[on, codes.EF_QTY].sum() * marks[a]
        if alpha > 0.0 and q != 0.0:
            new[a] = marks[a] * math.exp(-math.copysign(0.01, q) * (abs(q) / depth[a]) ** alpha)
    return new


def check_liquidations_below_maintenance(res: ReplayResult, s: Setup, venue: Venue,
                                         liquidity: Liquidity) -> dict[str, int]:
    """Rebuild every unit on every path from the events and check, at each round's marks,
    that the units liquidated are exactly the live units with ``E < MM`` (up to rounding),
    and that after a step's last round none is below. The marks are rebuilt too: the
    step-start marks from the exogenous path and the previous close, each round's from
    its events (``mark`` is the round-start mark, and ``exec = M + (M2 - M) / (1 + alpha)``
    gives the next one), and they must meet the saved closing marks. Returns counts of
    what was checked."""
    book = s.book
    haircut = 1.0 - np.array([venue.collateral_weight(a.symbol, a.haircut)
                              for a in s.market.assets])
    alpha, decay = liquidity.alpha, liquidity.decay_per_step
    funding = Funding.of(venue)
    acct_navk = account_nav_coefficients(book)
    pnl = res.account_pnl(acct_navk, s.exo[0, 0])
    seen = dict(liquidated=0, checked=0)
    for i in range(s.exo.shape[0]):
        exo, close = s.exo[i], res.marks[i]
        ledger = Ledger(book, venue, haircut, exo[0])
        nav0 = np.array([ledger.nav(u, exo[0]) for u in range(book.n_units)])
        ev_i, ev_f = path_events(res, i)

        for t in range(1, exo.shape[0]):
            marks = step_start_marks(exo, close, t, decay)
            rate = funding.rates(t, marks, exo[t])
            if rate is not None:
                ledger.fund(rate, marks)
            on = ev_i[:, codes.EI_STEP] == t
            rnd, kind = ev_i[:, codes.EI_ROUND], ev_i[:, codes.EI_KIND]
            for k in np.flatnonzero(on & (rnd == 0)):  # answers to margin calls
                assert kind[k] in (codes.KIND_TOP_UP, codes.KIND_REDUCE)
                if kind[k] == codes.KIND_REDUCE:
                    a = ev_i[k, codes.EI_ASSET]
                    assert math.isclose(ev_f[k, codes.EF_MARK], marks[a], rel_tol=1e-12)
                ledger.fill(ev_i[k], ev_f[k])
            n_rounds = int(rnd[on].max()) if on.any() else 0
            for r in range(1, n_rounds + 1):
                here = on & (rnd == r)
                settle = np.flatnonzero(here & np.isin(kind, LIQ_KINDS))
                assert len(settle), (i, t, r, "a round without a liquidation")
                for k in settle:
                    a = ev_i[k, codes.EI_ASSET]
                    if a >= 0:
                        assert math.isclose(ev_f[k, codes.EF_MARK], marks[a], rel_tol=1e-10)
                        marks[a] = ev_f[k, codes.EF_MARK]
                units = {int(u) for u in ev_i[settle, codes.EI_UNIT]}
                seen["liquidated"] += len(units)
                check_units(ledger, marks, units, (i, t, r), seen)
                new = marks.copy()
                for k in settle:
                    ledger.fill(ev_i[k], ev_f[k])
                    a = ev_i[k, codes.EI_ASSET]
                    if a >= 0 and kind[k] == codes.KIND_LIQUIDATION and not venue.lending:
                        m, x = ev_f[k, codes.EF_MARK], ev_f[k, codes.EF_EXEC]
                        new[a] = m + (1.0 + alpha) * (x - m)
                if venue.lending:  # fills at the oracle price: the impact law, from the flow
                    new = lending_marks(marks, ev_i[settle], ev_f[settle], s.depth[t], alpha)
                for u in units:  # bankrupt units end at exactly 0
                    if ev_f[settle[ev_i[settle, codes.EI_UNIT] == u], codes.EF_BAD_DEBT].sum():
                        if venue.lending:
                            ledger.write_off(u)
                            continue
                        assert abs(ledger.usd[u]) <= RTOL * ledger.yardstick(u), ledger.usd[u]
                        ledger.usd[u] = 0.0
                marks = new
                for k in np.flatnonzero(here & ~np.isin(kind, LIQ_KINDS)):
                    assert kind[k] in (codes.KIND_ADL, codes.KIND_SOCIALISED), kind[k]
                    a = ev_i[k, codes.EI_ASSET]
                    if a >= 0:
                        assert math.isclose(ev_f[k, codes.EF_MARK], marks[a], rel_tol=1e-10)
                    if kind[k] == codes.KIND_ADL:
                        ledger.fill(ev_i[k], ev_f[k])
            np.testing.assert_allclose(marks, close[t], rtol=1e-10)
            check_units(ledger, close[t], set(), (i, t, "after the cascade"), seen)
        # the engine's account PnL: final NAV - initial NAV - top-ups, per account
        nav_end = np.array([ledger.nav(u, close[-1]) for u in range(book.n_units)])
        mine = np.bincount(book.unit_account, nav_end - nav0 - ledger.topups,
                           minlength=book.n_accounts)
        scale = book_scale(book, exo[0]) + book_scale(book, close[-1]) + ledger.flow.sum()
        np.testing.assert_allclose(pnl[i], mine, rtol=0, atol=RTOL * scale)
    return seen


# ---------------------------------------------------------------------------------------
# The properties
# ---------------------------------------------------------------------------------------


def derivatives_case(seed: int, venue: Venue, n_assets: int, n_accounts: int, n_paths: int,
                     steps: int, inverse_share: float, p_isolated: float = 0.5) -> Setup:
    s = derivatives_setup(seed, venue, n_assets, n_accounts, n_paths, steps, p_isolated)
    rng = np.random.default_rng(seed + 1)
    return replace(s, book=with_inverse(s.book, rng, inverse_share))


@SETTINGS
@given(seed=seeds, venue=funded_venues(), behaviour=behaviours(), impact=impacts,
       half_life=half_lives, inverse_share=st.sampled_from([0.0, 0.4]), n_assets=n_assets_st,
       n_accounts=st.integers(2, 20), n_paths=st.integers(1, 4), steps=st.integers(2, 10))
def test_conservation_of_the_book_pnl(seed, venue, behaviour, impact, half_life,
                                      inverse_share, n_assets, n_accounts, n_paths, steps):
    """Derivatives: the accounts' PnL closes against mark moves, impact, fees, bad debt,
    ADL and funding on every path (:func:`conservation_terms`); and a second replay, and
    the full-scan kernel, give the same bytes."""
    s = derivatives_case(seed, venue, n_assets, n_accounts, n_paths, steps, inverse_share)
    liquidity = Liquidity(impact=impact, half_life_steps=half_life)
    res = replay_setup(s, venue, liquidity, behaviour)
    check_conservation(res, s, venue, liquidity)
    for full_scan in (False, True):
        again = replay_setup(s, venue, liquidity, behaviour, full_scan=full_scan)
        for key, arr in res.__dict__.items():
            assert arr.tobytes() == getattr(again, key).tobytes(), (full_scan, key)


@SETTINGS
@given(seed=seeds, venue=lending_venues(), impact=impacts, half_life=half_lives,
       n_assets=n_assets_st, n_accounts=st.integers(2, 20), n_paths=st.integers(1, 4),
       steps=st.integers(2, 10))
def test_conservation_on_a_lending_venue(seed, venue, impact, half_life, n_assets, n_accounts,
                                         n_paths, steps):
    """Lending: the accounts' PnL is the mark moves, less the liquidators' bonus, plus the
    debt written off."""
    s = lending_setup(seed, n_assets, n_accounts, n_paths, steps)
    liquidity = Liquidity(impact=impact, half_life_steps=half_life)
    check_conservation(replay_setup(s, venue, liquidity), s, venue, liquidity)


@SETTINGS
@given(seed=seeds, venue=funded_venues(), behaviour=behaviours(), impact=impacts,
       half_life=half_lives, inverse_share=st.sampled_from([0.0, 0.4]),
       p_isolated=st.sampled_from([0.0, 0.5, 1.0]), n_assets=n_assets_st,
       n_accounts=st.integers(2, 30), n_paths=st.integers(1, 4), steps=st.integers(2, 10))
def test_liquidations_only_below_maintenance(seed, venue, behaviour, impact, half_life,
                                             inverse_share, p_isolated, n_assets, n_accounts,
                                             n_paths, steps):
    """Each round liquidates exactly the live units with equity below maintenance at its
    marks, none is left below after a step, and account PnL is the rebuilt ledger's."""
    s = derivatives_case(seed, venue, n_assets, n_accounts, n_paths, steps, inverse_share,
                         p_isolated)
    liquidity = Liquidity(impact=impact, half_life_steps=half_life)
    check_liquidations_below_maintenance(replay_setup(s, venue, liquidity, behaviour), s,
                                         venue, liquidity)


@SETTINGS
@given(seed=seeds, venue=lending_venues(), impact=impacts, half_life=half_lives,
       n_assets=n_assets_st, n_accounts=st.integers(2, 30), n_paths=st.integers(1, 4),
       steps=st.integers(2, 10))
def test_lending_liquidations_only_below_a_health_factor_of_one(seed, venue, impact,
                                                                half_life, n_assets,
                                                                n_accounts, n_paths, steps):
    """Lending: each round liquidates exactly the accounts with a health factor below 1
    (``E < 0`` with liquidation thresholds as weights), none is left below after a step,
    and account PnL is the rebuilt ledger's; the marks after a round follow the impact
    law from the liquidators' flow."""
    s = lending_setup(seed, n_assets, n_accounts, n_paths, steps)
    liquidity = Liquidity(impact=impact, half_life_steps=half_life)
    check_liquidations_below_maintenance(replay_setup(s, venue, liquidity), s, venue,
                                         liquidity)


def test_the_invariants_see_real_cascades():
    """On fixed draws the checks above meet multi-round cascades, partial closes, ADL,
    backstops, inverse positions, funding and margin-call answers, and the ledger checks
    thousands of units on both sides of maintenance."""
    seen: set[str] = set()
    counts = dict(liquidated=0, checked=0)
    for seed in range(3):
        for mode, adl, backstop, impact in (("full", True, 0.0, "linear"),
                                            ("partial", False, 2.0 / 3.0, "sqrt"),
                                            ("incremental", True, 0.0, "none")):
            venue = Venue(liquidation=mode, adl=adl, backstop_ratio=backstop,
                          insurance_fund_usd=100.0, liquidation_fee_rate=0.01,
                          maintenance_margin_rate=0.02, max_cascade_rounds=10_000,
                          funding="premium", funding_interval_hours=2.0, funding_rate=0.001)
            behaviour = Behaviour(margin_call_ratio=1.5, answer_probability=1.0,
                                  action="reduce" if seed % 2 else "top_up")
            s = derivatives_case(seed, venue, 3, 20, 4, 8, 0.4)
            liquidity = Liquidity(impact, 0.0)
            res = replay_setup(s, venue, liquidity, behaviour)
            check_conservation(res, s, venue, liquidity)
            got = check_liquidations_below_maintenance(res, s, venue, liquidity)
            counts = {k: counts[k] + got[k] for k in counts}
            seen |= {codes.KIND_NAMES[k] for k in np.unique(res.ev_i[:, codes.EI_KIND])}
            seen |= {codes.INSTRUMENT_NAMES[k]
                     for k in np.unique(res.ev_i[:, codes.EI_INSTRUMENT])}
            if (res.path_i[:, codes.PI_MAX_ROUNDS] > 1).any():
                seen.add("rounds>1")
    expected = {"liquidation", "adl", "backstop", "socialised", "top_up", "reduce", "perp",
                "inverse", "collateral", "rounds>1"}
    assert expected <= seen, expected - seen
    assert counts["liquidated"] > 50 and counts["checked"] > 1000, counts


# ---------------------------------------------------------------------------------------
# (c) The CLI's files: paths/ are the sums of events/
# ---------------------------------------------------------------------------------------

CLI_RUNS = {
    # Hyperliquid preset: tiered maintenance, 20% slices, backstop vault, ADL, no fund
    "october-2025-cascade": 30,
    # partial liquidation, fund runs dry, ADL and socialised losses
    "ftx-2022": 30,
    # lending: close factor, bonus, protocol share
    "defi-lending-crash": 30,
    # brackets, full liquidation, the fund never runs dry
    "luna-ust-2022": 30,
}
POSITION_NAMES = ("perp", "inverse", "call", "put")


@pytest.mark.parametrize("name", sorted(CLI_RUNS))
def test_cli_paths_are_the_sums_of_their_events(tmp_path, name):
    """For every path of a small run of a shipped scenario: fees, bad debt, socialised
    losses, ADL and liquidated notionals, the number of liquidations (one per margin unit
    and round: a cross account is one unit, an isolated one a unit per position), cascade
    rounds and the first liquidation step are what ``events/`` says; the fund ends at
    ``start + fees - what it paid``, which is ``start + fees - bad debt`` on the paths where
    it never runs dry; and the saved marks give the minimum and final prices."""
    n_paths = CLI_RUNS[name]
    out = tmp_path / "run"
    args = ["--set", "simulation.chunk_paths=16"]
    assert cli.main(["run", name, "--paths", str(n_paths), "--seed", "11", "--out", str(out),
                     "--save-prices", str(n_paths), "--quiet", *args]) == 0
    scenario = load_scenario(name, [f"simulation.paths={n_paths}", "simulation.seed=11",
                                    "simulation.chunk_paths=16"])
    book = build_book(scenario)
    isolated = dict(zip(book.account_ids, book.account_isolated, strict=True))
    fund0 = scenario.venue.insurance_fund_usd
    paths = pq.read_table(out / "paths").to_pandas().set_index("path_id").sort_index()
    events = pq.read_table(out / "events").to_pandas()
    prices = pq.read_table(out / "prices").to_pandas()
    assert list(paths.index) == list(range(n_paths))
    for col in ("kind", "instrument", "symbol", "account_id"):
        events[col] = events[col].astype(str)

    def per_path(frame, column: str) -> np.ndarray:
        return frame.groupby("path_id")[column].sum().reindex(paths.index,
                                                              fill_value=0.0).to_numpy()

    liq = events[events.kind.isin(["liquidation", "backstop"])]
    adl = events[events.kind == "adl"]
    soc = events[events.kind == "socialised"]
    scale = fund0 + paths.fees.to_numpy() + paths.bad_debt.to_numpy() + 1.0
    tol = dict(rtol=0, atol=RTOL * scale.max())
    assert (events.bad_debt >= 0).all() and (events.fee >= 0).all()
    assert (events.fund_paid >= 0).all() and (paths.insurance_fund_end >= 0).all()
    np.testing.assert_allclose(per_path(events, "fee"), paths.fees, **tol)
    np.testing.assert_allclose(per_path(liq, "bad_debt"), paths.bad_debt, **tol)
    np.testing.assert_allclose(per_path(soc, "bad_debt"), paths.socialised_loss, **tol)
    np.testing.assert_allclose(per_path(adl, "notional"), paths.adl_notional, **tol)
    assert (adl.groupby("path_id").size().reindex(paths.index, fill_value=0)
            == paths.n_adl).all()
    paid = per_path(events, "fund_paid")
    np.testing.assert_allclose(paths.insurance_fund_end, fund0 + paths.fees - paid, **tol)
    # bad debt = fund paid + covered by ADL + socialised
    np.testing.assert_allclose(paths.bad_debt, paid + per_path(adl, "bad_debt")
                               + paths.socialised_loss, **tol)
    depleted = paths.fund_depleted.to_numpy()
    assert (depleted == ((per_path(adl, "notional") > 0) | (per_path(soc, "bad_debt") > 0))
            ).all()
    dry = ~depleted
    np.testing.assert_allclose(paths.insurance_fund_end[dry],
                               fund0 + paths.fees[dry] - paths.bad_debt[dry], **tol)
    # liquidated notional: closed positions (repaid debt on a lending venue)
    closed = liq[liq.instrument.isin(["debt"] if scenario.venue.lending else POSITION_NAMES)]
    np.testing.assert_allclose(per_path(closed, "notional"), paths.liquidated_notional,
                               rtol=RTOL, atol=1e-6)
    # unit liquidations: a cross account is one unit; an isolated unit holds one position
    # (or, having closed none, gets one `debt` event)
    units = liq[liq.account_id.map(isolated).astype(bool)
                & liq.instrument.isin([*POSITION_NAMES, "debt"])]
    keys = ["path_id", "step", "round", "account_id"]
    cross = liq[~liq.account_id.map(isolated).astype(bool)].drop_duplicates(keys)
    count = pd.concat([units[keys], cross[keys]])
    n_liq = count.groupby("path_id").size().reindex(paths.index, fill_value=0)
    assert (n_liq == paths.n_liquidations).all()
    n_cascade = count[count["round"] > 1].groupby("path_id").size().reindex(
        paths.index, fill_value=0)
    assert (n_cascade == paths.n_cascade_liquidations).all()
    rounds = liq.groupby("path_id")["round"].max().reindex(paths.index, fill_value=0)
    assert (rounds == paths.max_cascade_rounds).all()
    first = liq.groupby("path_id")["step"].min().reindex(paths.index)
    np.testing.assert_array_equal(first.fillna(-1).to_numpy(),
                                  paths.first_liquidation_step.fillna(-1).to_numpy())
    assert (paths.n_liquidations > 0).mean() > 0.5  # the run is not vacuous
    # prices/: the closing marks of every step
    for sym in scenario.market.symbols:
        by_path = prices.groupby("path_id")[sym]
        np.testing.assert_array_equal(by_path.min().to_numpy(), paths[f"min_price_{sym}"])
        np.testing.assert_array_equal(by_path.last().to_numpy(), paths[f"final_price_{sym}"])
    # conservation on the files: the accounts' mean PnL times the paths is the sum over
    # paths of the identity's right-hand side, rebuilt from events/ and prices/ (closing
    # marks, and prices_no_impact/, the exogenous prices)
    free = pq.read_table(out / "prices_no_impact").to_pandas()
    check_file_conservation(out, scenario, book, events, prices, free, n_paths)


def check_file_conservation(out, scenario, book: Book, events: pd.DataFrame,
                            prices: pd.DataFrame, free: pd.DataFrame, n_paths: int
                            ) -> None:
    """:func:`conservation_terms` on a run directory's files, summed over paths, against
    ``sum(accounts.mean_pnl) x paths``."""
    assert not scenario.behaviour.calls and not book.has_options
    symbols = scenario.market.symbols
    ev_i = np.zeros((len(events), codes.N_EI), dtype=np.int64)
    ev_f = np.zeros((len(events), codes.N_EF))
    ev_i[:, codes.EI_PATH] = events.path_id
    ev_i[:, codes.EI_STEP] = events.step
    ev_i[:, codes.EI_ROUND] = events["round"]
    ev_i[:, codes.EI_KIND] = events.kind.map(codes.KIND_NAMES.index)
    ev_i[:, codes.EI_INSTRUMENT] = events.instrument.map(codes.INSTRUMENT_NAMES.index)
    ev_i[:, codes.EI_ASSET] = events.symbol.map(lambda sym: -1 if sym == "USD"
                                                else symbols.index(sym))
    for col, name in ((codes.EF_QTY, "qty"), (codes.EF_MARK, "mark_price"),
                      (codes.EF_EXEC, "exec_price"), (codes.EF_NOTIONAL, "notional"),
                      (codes.EF_FEE, "fee"), (codes.EF_BAD_DEBT, "bad_debt"),
                      (codes.EF_FUND_PAID, "fund_paid")):
        ev_f[:, col] = events[name]
    prices = prices.sort_values(["path_id", "step"])
    close = prices[list(symbols)].to_numpy().reshape(n_paths, -1, len(symbols))
    free = free.sort_values(["path_id", "step"])
    exo = free[list(symbols)].to_numpy().reshape(close.shape)
    step_hours = scenario.simulation.dt_years * 365.0 * 24.0
    funding = Funding.of(scenario.venue, step_hours)
    lending = scenario.venue.lending
    total = gross = 0.0
    for i in range(n_paths):
        on = ev_i[:, codes.EI_PATH] == i
        t_ = conservation_terms(ev_i[on], ev_f[on], exo[i], close[i], book,
                                scenario.liquidity.decay_per_step, funding, lending)
        if lending:
            total += t_["mtm"] + t_["transfer"] + t_["bad_debt"]
        else:
            total += (t_["mtm"] - t_["impact"] - t_["adl"] - t_["fees"] + t_["bad_debt"]
                      - t_["funding"])
        gross += t_["gross"] + book_scale(book, exo[i, 0]) + book_scale(book, close[i, -1])
    accounts = pq.read_table(out / "accounts.parquet").to_pandas()
    assert len(accounts) == book.n_accounts
    pnl = accounts.mean_pnl.sum() * n_paths
    assert abs(pnl - total) <= RTOL * gross, (pnl, total, gross)
