"""The Numba engine follows the venue rules exactly as the slow reference engine does.

``tests/margin/test_replay_vs_reference.py`` covers the flat-rate derivatives engine; this module
covers the rules added with the venue rulebook (``docs/engine.md``): tiered maintenance
brackets, incremental liquidation with its step bounds, the backstop vault, ADL ranked by
profit x leverage, socialised losses, and the lending round (close factor, bonus, protocol
share, bad-debt write-off). Random books are replayed over random paths with gaps, and
every event field and every per-path and per-account output is compared with
``tests/reference``. ``test_cases_exercise_every_mechanism`` shows, on the reference engine
alone, that each mechanism really happens in these cases, so the comparison is not vacuous.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest

from simulator.config.scenario import Venue
from simulator.margin import EngineRules, replay

from .. import reference
from ..reference import naive_replay
from ..support.compare import assert_same
from ..support.rule_cases import (
    CASES,
    INF,
    PRICES,
    SYMBOLS,
    Case,
    Setup,
    build,
    run_naive,
    tier_tables,
)


def assert_tiers_match(rules: EngineRules, venue: Venue) -> None:
    """The engine's brackets are ``tier_tables``', row for row (up to the first +inf
    cap)."""
    expected = tier_tables(venue)
    got = (rules.tier_cap, rules.tier_rate, rules.tier_cum)
    for a in range(len(SYMBOLS)):
        n_rows = int(np.argmax(np.isinf(expected[0][a]))) + 1
        for exp_t, got_t in zip(expected, got, strict=True):
            np.testing.assert_allclose(np.asarray(got_t)[a, :n_rows], exp_t[a, :n_rows],
                                       rtol=1e-12)
        assert np.isinf(np.asarray(rules.tier_cap)[a, n_rows - 1])


# ---------------------------------------------------------------------------------------
# Fast engine vs reference
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("full_scan", [False, True], ids=["indexed", "full-scan"])
def test_engine_matches_naive_rules(case, seed, full_scan):
    s = build(case, seed)
    book = s.book
    rules = EngineRules.from_scenario(s.venue, s.liquidity, s.market, full_scan=full_scan)
    assert_tiers_match(rules, s.venue)
    np.testing.assert_allclose(rules.haircut, s.haircut, rtol=1e-15)
    fast = replay(s.exo, s.depth, book, rules, initial_events=16)
    paths, events, accounts = run_naive(
        s, rules.haircut, (rules.tier_cap, rules.tier_rate, rules.tier_cum))

    assert len(events) > 10
    assert_same(fast, book, paths, events, accounts, PRICES)
    assert len(fast.corr_delta) <= len(events) + book.n_units


# ---------------------------------------------------------------------------------------
# The cases are not vacuous (reference engine only)
# ---------------------------------------------------------------------------------------


def _record_mechanisms(monkeypatch) -> dict[str, list]:
    """Wrap three steps of the reference engine to record what they decide."""
    seen: dict[str, list] = {"brackets": [], "fractions": [], "plans": []}
    original_mm = reference.Book.position_maintenance
    original_fraction = reference.PathRun.fraction
    original_plan = reference.PathRun.lending_plan

    def position_maintenance(self, p, marks):
        a = self.asset[p]
        seen["brackets"].append((p, self.bracket(a, abs(self.qty[p]) * marks[a])))
        return original_mm(self, p, marks)

    def fraction(self, u):
        backstop, f = original_fraction(self, u)
        e = self.book.equity(u, self.marks)
        n = self.book.notional(u, self.marks)
        seen["fractions"].append((self.venue, backstop, f, e, n))
        return backstop, f

    def lending_plan(self, u):
        plan = original_plan(self, u)
        seen["plans"].append(plan)
        return plan

    monkeypatch.setattr(reference.Book, "position_maintenance", position_maintenance)
    monkeypatch.setattr(reference.PathRun, "fraction", fraction)
    monkeypatch.setattr(reference.PathRun, "lending_plan", lending_plan)
    return seen


def _mechanisms(case: Case, s: Setup, seen, paths, events) -> set[str]:
    """Which mechanisms occurred in one replay of ``case``."""
    shown: set[str] = set()
    tables = tier_tables(s.venue)
    by_position = defaultdict(set)
    for p, k in seen["brackets"]:
        by_position[p].add(k)
    if any(len(ks) > 1 for ks in by_position.values()):
        shown.add("bracket_change")
    for ev in events:
        if ev["kind"] == "liquidation" and ev["instrument"] == "perp":
            n = abs(ev["qty"]) * ev["mark_price"]
            if n > tables[0][ev["asset"], 0]:
                shown.add("liquidation_in_upper_bracket")
    for venue, backstop, f, e, n in seen["fractions"]:
        if backstop:
            shown.add("backstop")
            continue
        if f < 1.0 and venue.mode == "partial":
            shown.add("partial_close")
        if venue.mode != "incremental":
            continue
        step = min(max(venue.step_fraction * n, venue.step_min_usd), venue.step_max_usd)
        if 0.0 < f < 1.0:
            shown.add("incremental_close")
            if venue.step_fraction * n < venue.step_min_usd:
                shown.add("step_min_binds")
            if venue.step_fraction * n > venue.step_max_usd:
                shown.add("step_max_binds")
        if f == 1.0 and e > 0.0 and 0.0 < n <= venue.full_below_usd and step < n:
            shown.add("full_below_binds")
    for _repay, _seize, g, _k, _debt_value, cleared in seen["plans"]:
        if not cleared and math.isclose(g, s.venue.close_factor, rel_tol=1e-12):
            shown.add("lending_close_factor")
        if not cleared and g == 1.0:
            shown.add("lending_full_close")
    adl_fills: dict[tuple, int] = defaultdict(int)  # per bankrupt position's share
    adl_step: dict[tuple, float] = defaultdict(float)  # ADL notional per path and step
    for ev in events:
        if ev["kind"] == "adl":
            adl_fills[ev["path"], ev["step"], ev["round"], ev["asset"], ev["exec_price"]] += 1
            adl_step[ev["path"], ev["step"]] += ev["notional"]
    if any(n > 1 for n in adl_fills.values()):
        shown.add("adl_shared")
    cap = s.venue.adl_max_notional_per_step_usd
    for ev in events:
        if (ev["kind"] == "socialised" and ev["bad_debt"] > 0.0
                and adl_step[ev["path"], ev["step"]] >= cap * (1.0 - 1e-9)):
            shown.add("adl_cap_binds")
        assert adl_step[ev["path"], ev["step"]] <= cap * (1.0 + 1e-9)
    for ev in events:
        kind, instrument = ev["kind"], ev["instrument"]
        if kind == "adl":
            shown.add("adl")
        if kind == "socialised" and ev["bad_debt"] > 0.0:
            shown.add("socialised")
        if kind == "backstop" and ev["bad_debt"] > 0.0:
            shown.add("backstop_bad_debt")
        if case.lending and kind == "liquidation":
            if instrument == "debt":
                shown.add("lending_usd_debt" if ev["asset"] == -1 else "lending_debt")
                if ev["bad_debt"] > 0.0:
                    shown.add("lending_bad_debt")
            if instrument == "collateral":
                shown.add("lending_usd_collateral" if ev["asset"] == -1
                          else "lending_collateral")
    return shown


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cases_exercise_every_mechanism(case, monkeypatch):
    """Each case shows the mechanisms it is there for, on seed 1 and on seed 2."""
    for seed in (1, 2):
        s = build(case, seed)
        brackets = tier_tables(s.venue)
        seen = _record_mechanisms(monkeypatch)
        paths, events, _ = run_naive(s, s.haircut, brackets)
        shown = _mechanisms(case, s, seen, paths, events)
        if "ranking_matters" in case.shows:
            _, other, _ = run_naive(s, s.haircut, brackets, adl_ranking="pnl_margin_ratio")
            if [e for e in other if e["kind"] == "adl"] != [e for e in events
                                                              if e["kind"] == "adl"]:
                shown.add("ranking_matters")
        missing = set(case.shows) - shown
        assert not missing, (case.name, seed, missing)
        monkeypatch.undo()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_naive_accounting_identities(case):
    """The reference engine keeps the fund identity of the specification.

    ``fund_end = fund0 + fees - (bad_debt - uncovered)``, where the uncovered part is what
    ADL covered plus what was socialised; the per-path ADL notional and socialised loss are
    the sums of their events; the bad debt and fund payments on the events never exceed the
    path's (a unit that closed no notional carries its bad debt on no event).
    """
    for seed in (1, 2):
        s = build(case, seed)
        paths, events, _ = run_naive(s, s.haircut, tier_tables(s.venue))
        per_path: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for ev in events:
            tot = per_path[ev["path"]]
            tot[ev["kind"] + "_bad_debt"] += ev["bad_debt"]
            tot["fees"] += ev["fee"]
            tot["fund_paid"] += ev["fund_paid"]
            if ev["kind"] == "adl":
                tot["adl_notional"] += ev["notional"]
            assert ev["bad_debt"] >= 0.0 and ev["fee"] >= 0.0 and ev["fund_paid"] >= 0.0
            assert ev["fund_paid"] <= ev["bad_debt"] * (1.0 + 1e-12)
        fund0 = s.venue.insurance_fund_usd
        for i, rec in enumerate(paths):
            tot = per_path[i]
            uncovered = tot["adl_bad_debt"] + tot["socialised_bad_debt"]
            assert rec["bad_debt"] >= 0.0 and rec["insurance_fund_end"] >= -1e-9
            assert math.isclose(rec["insurance_fund_end"],
                                fund0 + rec["fees"] - (rec["bad_debt"] - uncovered),
                                rel_tol=1e-9, abs_tol=1e-7)
            assert rec["fund_depleted"] == (uncovered > 0.0)
            assert math.isclose(rec["socialised_loss"], tot["socialised_bad_debt"],
                                rel_tol=1e-9, abs_tol=1e-9)
            assert math.isclose(rec["adl_notional"], tot["adl_notional"], rel_tol=1e-9,
                                abs_tol=1e-9)
            # every dollar of bad debt and fees is on an event (a unit that closes nothing
            # gets a USD `debt` event of its own)
            on_events = tot["liquidation_bad_debt"] + tot["backstop_bad_debt"]
            assert math.isclose(on_events, rec["bad_debt"], rel_tol=1e-9, abs_tol=1e-7)
            assert uncovered <= rec["bad_debt"] * (1.0 + 1e-9) + 1e-9
            assert math.isclose(tot["fund_paid"], rec["bad_debt"] - uncovered, rel_tol=1e-9,
                                abs_tol=1e-7)
            assert math.isclose(tot["fees"], rec["fees"], rel_tol=1e-9, abs_tol=1e-7)


# ---------------------------------------------------------------------------------------
# The reference engine on tiny books, checked by hand against docs/engine.md
# ---------------------------------------------------------------------------------------


def _tiny(exo, haircut, usd, coll, pos_unit, pos_asset, pos_qty, pos_entry, **kwargs):
    n_units = len(usd)
    base = dict(n_accounts=n_units, fee_rate=0.0, target=1.25, fund0=0.0, adl=True,
                max_rounds=8, alpha=0.0, decay=1.0)
    base.update(kwargs)
    depth = np.full((len(exo[0]), len(haircut)), 1e6)
    return naive_replay(exo, depth, haircut, base.pop("mmr", [0.0] * len(haircut)),
                        list(range(n_units)), usd, coll, pos_unit, pos_asset, pos_qty,
                        pos_entry, **base)


def test_naive_by_hand_brackets_incremental():
    """Long 50 @ 100 with $250; brackets 1% <= 2,000 < 2% <= 10,000 < 4% (cum 0, 20, 220).

    At 96: N = 4,800, MM = 96 - 20 = 76 > E = 50. Round 1 closes min(0.6 N, 2,400) = 2,400
    (step_max binds, f = 0.5): qty 25 at 96, usd 250 - 100 = 150, fee 1% = 24 -> usd 126.
    Round 2: N = 2,400 is still in bracket 1, MM = 48 - 20 = 28 > E = 126 - 100 = 26 (the
    flat first-bracket rate would give 24 and stop here); it closes 0.6 x 2,400 = 1,440:
    qty 15, usd 126 - 60 - 14.4 = 51.6. Round 3: N = 960 in bracket 0, MM = 9.6 < E = 11.6.
    """
    cap = [[2000.0, 10000.0, INF]]
    rate = [[0.01, 0.02, 0.04]]
    cum = [[0.0, 20.0, 220.0]]
    paths, events, accounts = _tiny(
        [[[100.0], [96.0]]], [0.0], [250.0], [[0.0]], [0], [0], [50.0], [100.0],
        brackets=(cap, rate, cum), mode="incremental", step_fraction=0.6, step_max_usd=2400.0,
        fee_rate=0.01, fund0=7.0)
    assert [(e["round"], e["kind"], e["instrument"]) for e in events] == [
        (1, "liquidation", "perp"), (2, "liquidation", "perp")]
    for ev, qty, fee in zip(events, (-25.0, -15.0), (24.0, 14.4), strict=True):
        assert math.isclose(ev["qty"], qty, rel_tol=1e-12)
        assert math.isclose(ev["notional"], -qty * 96.0, rel_tol=1e-12)
        assert ev["exec_price"] == ev["mark_price"] == 96.0
        assert math.isclose(ev["fee"], fee, rel_tol=1e-12)
        assert ev["bad_debt"] == ev["fund_paid"] == 0.0
    rec = paths[0]
    assert rec["n_liquidations"] == 2 and rec["max_cascade_rounds"] == 2
    assert math.isclose(rec["fees"], 38.4, rel_tol=1e-12)
    assert math.isclose(rec["insurance_fund_end"], 45.4, rel_tol=1e-12)
    assert math.isclose(rec["liquidated_notional"], 3840.0, rel_tol=1e-12)
    assert math.isclose(accounts["pnl"][0][0], 11.6 - 250.0, rel_tol=1e-12)
    # a flat 2% (bracket 1's rate without its cum) would go on: at round 3 MM = 19.2 > 11.6
    _, flat, _ = _tiny(
        [[[100.0], [96.0]]], [0.0], [250.0], [[0.0]], [0], [0], [50.0], [100.0],
        mmr=[0.02], mode="incremental", step_fraction=0.6, step_max_usd=2400.0,
        fee_rate=0.01)
    assert [e["round"] for e in flat][:3] == [1, 2, 3]


def _backstop_book(**kwargs):
    # U0 long 10 @ 100 with $60; U1 short 4 @ 110 with $100; U2 short 8 @ 100 with $200.
    return _tiny([[[100.0], [80.0]]], [0.0], [60.0, 100.0, 200.0], [[0.0], [0.0], [0.0]],
                 [0, 1, 2], [0, 0, 0], [10.0, -4.0, -8.0], [100.0, 110.0, 100.0],
                 mmr=[0.05], fund0=40.0, backstop_ratio=2.0 / 3.0, **kwargs)


def test_naive_by_hand_backstop_and_adl_ranking():
    """At 80, U0 has E = -140 < 2/3 x MM = 26.7: the backstop takes it over at the mark.

    usd = 60 + 10 x (80 - 100) = -140: fee max(-140, 0) = 0, bad debt 140, the fund pays 40,
    D = 100. ADL price P = 80 + 100 / 10 = 90. profit_leverage scores: U1 (110/80) x
    (320/220) = 2.0, U2 (100/80) x (640/360) = 2.22, so U2 closes 8 (covers 80) and then U1
    closes 2 (covers 20). pnl_margin_ratio scores: U1 (120/100) x (16/220) = 0.087, U2
    (160/200) x (32/360) = 0.071: U1 first (4), then U2 (6).
    """
    paths, events, accounts = _backstop_book(adl_ranking="profit_leverage")
    bs, adl1, adl2 = events
    assert (bs["kind"], bs["account"], bs["qty"], bs["exec_price"], bs["notional"]) == (
        "backstop", 0, -10.0, 80.0, 800.0)
    assert (bs["fee"], bs["bad_debt"], bs["fund_paid"]) == (0.0, 140.0, 40.0)
    assert [(e["kind"], e["account"], e["qty"], e["exec_price"]) for e in (adl1, adl2)] == [
        ("adl", 2, 8.0, 90.0), ("adl", 1, 2.0, 90.0)]
    assert [(e["notional"], e["bad_debt"], e["mark_price"]) for e in (adl1, adl2)] == [
        (720.0, 80.0, 80.0), (180.0, 20.0, 80.0)]
    rec = paths[0]
    assert (rec["bad_debt"], rec["insurance_fund_end"], rec["adl_notional"]) == (
        140.0, 0.0, 900.0)
    assert rec["socialised_loss"] == 0.0 and rec["fund_depleted"]
    # U0 loses its 60; U1: usd 100 + 2 x (110 - 90) = 140 and a short 2 @ 110 worth 60 at
    # 80, NAV 200 against 140 at 100 (+60); U2: usd 200 + 8 x (100 - 90) = 280 (+80)
    assert accounts["pnl"][0] == [-60.0, 60.0, 80.0]

    _, events, _ = _backstop_book(adl_ranking="pnl_margin_ratio")
    assert [(e["account"], e["qty"], e["bad_debt"]) for e in events[1:]] == [
        (1, 4.0, 40.0), (2, 6.0, 60.0)]


def test_naive_by_hand_backstop_socialised():
    """The same take-over with ADL off: D = 100 is one socialised share of the long."""
    paths, events, _ = _backstop_book(adl=False)
    assert [e["kind"] for e in events] == ["backstop", "socialised"]
    soc = events[1]
    assert (soc["account"], soc["instrument"], soc["asset"], soc["qty"]) == (0, "perp", 0, 0.0)
    assert (soc["mark_price"], soc["exec_price"], soc["notional"], soc["bad_debt"]) == (
        80.0, 80.0, 0.0, 100.0)
    assert paths[0]["socialised_loss"] == 100.0 and paths[0]["insurance_fund_end"] == 0.0


def test_naive_by_hand_lending():
    """Lending round, thresholds 80% (asset 0), bonus 5%, protocol share 10%, fund 0.

    U0: 10 of asset 0 and $700 of USD debt. At 85: HF = 680 / 700 = 0.971 (>= 0.95, close
    factor 0.5): R = 350, S = 367.5, k = 367.5 / 850; the fund gets 0.1 x 17.5 = 1.75.
    Afterwards HF = 0.8 x 482.5 / 350 = 1.10: no second round.
    U1: 2 of asset 0 and a debt of 14 of asset 1 (10 -> 12). HF = 136 / 168 = 0.81 < 0.95:
    R = 168, S = 176.4 >= Cv = 170, so it is cleared: R = 170 / 1.05 = 161.905, k = 1,
    g = R / 168; fee 0.1 x (170 - R) = 0.810; the debt left, 168 - R = 6.095, is written
    off: the fund (1.75 + 0.810) pays 2.560 and 3.536 is socialised.
    """
    paths, events, accounts = _tiny(
        [[[100.0, 10.0], [85.0, 12.0]]], [0.2, 0.0], [-700.0, 0.0],
        [[10.0, 0.0], [2.0, 0.0]], [1], [1], [-14.0], [0.0],
        lending=True, close_factor=0.5, full_close_below_hf=0.95, bonus=0.05,
        protocol_share=0.1, adl=False)
    layout = [(e["account"], e["kind"], e["instrument"], e["asset"]) for e in events]
    assert layout == [(0, "liquidation", "debt", -1), (0, "liquidation", "collateral", 0),
                      (1, "liquidation", "debt", 1), (1, "liquidation", "collateral", 0),
                      (1, "socialised", "debt", -1)]
    usd_debt, coll0, debt1, coll1, soc = events
    assert (usd_debt["qty"], usd_debt["mark_price"], usd_debt["notional"]) == (350.0, 1.0, 350.0)
    assert math.isclose(coll0["qty"], -10.0 * 367.5 / 850.0, rel_tol=1e-12)
    assert math.isclose(coll0["notional"], 367.5, rel_tol=1e-12)
    assert math.isclose(coll0["fee"], 1.75, rel_tol=1e-12)
    repay = 170.0 / 1.05
    assert math.isclose(debt1["qty"], 14.0 * repay / 168.0, rel_tol=1e-12)
    assert debt1["mark_price"] == debt1["exec_price"] == 12.0
    assert math.isclose(debt1["notional"], repay, rel_tol=1e-12)
    assert math.isclose(debt1["bad_debt"], 168.0 - repay, rel_tol=1e-9)
    fund = 1.75 + 0.1 * (170.0 - repay)
    assert math.isclose(debt1["fund_paid"], fund, rel_tol=1e-9)
    assert (coll1["qty"], coll1["notional"]) == (-2.0, 170.0)
    assert math.isclose(coll1["fee"], 0.1 * (170.0 - repay), rel_tol=1e-9)
    assert math.isclose(soc["bad_debt"], 168.0 - repay - fund, rel_tol=1e-9)
    rec = paths[0]
    assert rec["n_liquidations"] == 2 and rec["max_cascade_rounds"] == 1
    assert math.isclose(rec["liquidated_notional"], 350.0 + repay, rel_tol=1e-12)
    assert math.isclose(rec["fees"], fund, rel_tol=1e-12)
    assert abs(rec["insurance_fund_end"]) < 1e-12 and rec["fund_depleted"]
    assert accounts["bankrupt"][0] == [False, True]


def test_naive_by_hand_live_without_positions():
    """A unit with no position but a USD debt is live: E = -50 + 1 x 100 x 0.4 = -10 < 0.

    It is a full liquidation (E <= 0): it sells its collateral at the mark (no impact), usd
    becomes 50 and the fee (1% of no closed notional) is 0. A unit with no position and
    usd >= 0 is never tested.
    """
    paths, events, _ = _tiny([[[100.0], [100.0]]], [0.6], [-50.0, 0.0], [[1.0], [1.0]],
                             [], [], [], [], mmr=[0.05], fee_rate=0.01, mode="partial")
    assert [(e["account"], e["instrument"], e["qty"], e["notional"]) for e in events] == [
        (0, "collateral", -1.0, 100.0)]
    assert paths[0]["n_liquidations"] == 1 and paths[0]["fees"] == 0.0
