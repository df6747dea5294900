"""The liquidation index: heaps against Python's heapq, safe bands that are truly safe, and
the indexed engine equal to the full scan, bit for bit, on large books with cascades."""

from __future__ import annotations

import dataclasses
import heapq

import numpy as np
import pytest

from simulator.config.market import Asset, Market
from simulator.config.scenario import Venue, load_scenario
from simulator.config.venue_presets import Bracket
from simulator.margin import EngineRules, replay
from simulator.margin._kernels.index import heap_pop_nb, heap_push_nb, push_band_nb
from simulator.margin._kernels.state import refresh_unit_nb, unit_values_nb
from simulator.margin.option_setup import no_options
from simulator.margin.rules import bracket_table
from simulator.paths import generate_paths


def test_heap_matches_heapq_with_stale_entries_and_compaction():
    rng = np.random.default_rng(0)
    n_units = 50
    cap = 2 * n_units + 64
    h_key = np.empty((1, cap))
    h_unit = np.empty((1, cap), dtype=np.int64)
    h_ver = np.empty((1, cap), dtype=np.int64)
    h_n = np.zeros(1, dtype=np.int64)
    version = np.zeros(n_units, dtype=np.int64)
    ref: list[tuple[float, int, int]] = []  # (-key, unit, ver) min-heap = max-heap on key
    popped, popped_ref = [], []
    for _ in range(5000):
        if rng.random() < 0.6:
            u = int(rng.integers(n_units))
            version[u] += 1
            key = float(rng.normal())
            heap_push_nb(h_key, h_unit, h_ver, h_n, 0, key, u, version[u], version)
            heapq.heappush(ref, (-key, u, int(version[u])))
        else:  # pop the best live entry on both sides (stale ones are skipped)
            while h_n[0] > 0:
                u, ver = heap_pop_nb(h_key, h_unit, h_ver, h_n, 0)
                if ver == version[u]:
                    popped.append(int(u))
                    break
            while ref:
                _, ru, rv = heapq.heappop(ref)
                if rv == version[ru]:
                    popped_ref.append(ru)
                    break
        assert h_n[0] <= cap
    assert len(popped) > 500
    assert popped == popped_ref


NO_POSITIONS = (np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                np.zeros(2, dtype=np.int64))
FLAT_TIERS = np.array([[[np.inf, 0.01, 0.0]]] * 8)


def test_a_unit_inside_its_band_keeps_positive_slack():
    """Random slack forms and random moves that stay inside every threshold never make
    the slack negative (the band is conservative)."""
    rng = np.random.default_rng(1)
    n_assets = 4
    for trial in range(2000):
        lin = rng.normal(size=(1, n_assets)) * rng.integers(0, 2, size=(1, n_assets))
        mark = rng.uniform(0.5, 2.0, n_assets)
        const = np.array([rng.uniform(0.01, 1.0) - float(lin[0] @ mark)])  # slack in (0, 1)
        sigma = rng.uniform(0.05, 1.5, n_assets)
        version = np.zeros(1, dtype=np.int64)
        h_key = np.empty((2 * n_assets, 16))
        h_unit = np.empty((2 * n_assets, 16), dtype=np.int64)
        h_ver = np.empty((2 * n_assets, 16), dtype=np.int64)
        h_n = np.zeros(2 * n_assets, dtype=np.int64)
        assert push_band_nb(0, mark, lin, const, sigma, version, h_key, h_unit, h_ver, h_n,
                            *NO_POSITIONS, FLAT_TIERS[:n_assets])
        lower = np.full(n_assets, -np.inf)
        upper = np.full(n_assets, np.inf)
        for a in range(n_assets):
            if h_n[2 * a]:
                lower[a] = h_key[2 * a, 0]
            if h_n[2 * a + 1]:
                upper[a] = -h_key[2 * a + 1, 0]
        # the worst move allowed by the band: every threshold reached at once
        worst = np.where(lin[0] > 0, lower, np.where(lin[0] < 0, upper, mark))
        assert const[0] + lin[0] @ worst > 0.0, trial
        # and one step beyond a threshold can break it (the band is not vacuous)
        exposed = np.flatnonzero(lin[0])
        if exposed.size == 1:
            a = exposed[0]
            edge = worst.copy()
            edge[a] += (worst[a] - mark[a]) * 1e-6 + np.sign(worst[a] - mark[a]) * 1e-9
            assert const[0] + lin[0] @ edge < 1e-6


@pytest.mark.parametrize(("name", "overrides"), [
    ("two-asset-crash", []),
    ("two-asset-crash", ["venue.insurance_fund_usd=1000.0", "liquidity.impact=sqrt"]),
    ("liquidity-drought", []),
    ("liquidity-drought", ["venue.liquidation=full", "venue.adl=false"]),
])
def test_indexed_engine_equals_full_scan_bit_for_bit(name, overrides, prepared):
    sc = load_scenario(name, ["simulation.steps=36", *overrides])
    indexed, scan = prepared(sc), prepared(sc, full_scan=True)
    exo = generate_paths(indexed.inputs, 40, np.random.default_rng(5))
    fast, ref = (replay(exo, p.inputs.depth_usd, p.book, p.rules, save_marks=3, index=p.index)
                 for p in (indexed, scan))
    assert len(ref.ev_i) > 1000  # real cascades
    for field in ("path_f", "path_i", "min_price", "final_price", "marks", "ev_i", "ev_f",
                  "acct_liquidated", "acct_bankrupt", "corr_path", "corr_account",
                  "corr_delta"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(ref, field), err_msg=field)


TEST_BRACKETS = (("*", (Bracket(5_000, 0.005, 100), Bracket(20_000, 0.01, 50),
                         Bracket(80_000, 0.02, 25), Bracket(float("inf"), 0.05, 10))),)


def test_band_stops_at_bracket_boundaries():
    """With tiered brackets the band never reaches past a price where a position would
    change bracket, and inside it the true (tiered) slack stays positive."""
    rng = np.random.default_rng(3)
    tiers = bracket_table(Venue(brackets=TEST_BRACKETS),
                          Market("gbm", (Asset("A", 100.0, 0.8), Asset("B", 10.0, 1.0)),
                                 ((1, 0), (0, 1))))
    for trial in range(500):
        qty = rng.choice([-1, 1], 3) * rng.lognormal(np.log(200.0), 1.0, 3) / np.array(
            [100.0, 10.0, 100.0])
        pos_asset = np.array([0, 1, 0])
        start = np.array([0, 3])
        mark = np.array([100.0, 10.0]) * rng.uniform(0.8, 1.2, 2)
        usd = np.array([abs(qty[0]) * 100 * 0.3 + abs(qty[1]) * 10 * 0.3])
        coll = np.zeros((1, 2))
        entry = np.array([100.0, 10.0, 100.0])
        NO_OPTIONS = no_options(1, 3, 2)  # noqa: N806
        lin, const, n_open = np.zeros((1, 2)), np.zeros(1), np.zeros(1, dtype=np.int64)
        kind = np.zeros(3, dtype=np.int64)
        refresh_unit_nb(0, mark, usd, coll, qty, pos_asset, entry, kind, start, np.zeros(2),
                        tiers, np.ones(1), lin, const, n_open)
        e, mm, _, _ = unit_values_nb(0, mark, usd, coll, qty, pos_asset, entry, kind, start,
                                     np.zeros(2), tiers, 0, NO_OPTIONS)
        assert const[0] + lin[0] @ mark == pytest.approx(e - mm, rel=1e-9, abs=1e-9)
        if e - mm <= 1e-6:
            continue
        version = np.zeros(1, dtype=np.int64)
        h_key = np.empty((4, 16))
        h_unit = np.empty((4, 16), dtype=np.int64)
        h_ver = np.empty((4, 16), dtype=np.int64)
        h_n = np.zeros(4, dtype=np.int64)
        assert push_band_nb(0, mark, lin, const, np.array([0.8, 1.0]), version, h_key, h_unit,
                            h_ver, h_n, qty, pos_asset, kind, start, tiers)
        lower = [h_key[0, 0] if h_n[0] else 0.0, h_key[2, 0] if h_n[2] else 0.0]
        upper = [-h_key[1, 0] if h_n[1] else np.inf, -h_key[3, 0] if h_n[3] else np.inf]
        for a in range(2):
            caps = tiers[a, :, 0]
            for p in np.flatnonzero(pos_asset == a):
                k = np.searchsorted(caps, abs(qty[p]) * mark[a])
                assert k == 0 or abs(qty[p]) * lower[a] > caps[k - 1], trial
                assert abs(qty[p]) * min(upper[a], 1e12) <= caps[k], trial
        # every corner of the box keeps the true slack positive
        for corner in [(lo0, lo1) for lo0 in (lower[0], min(upper[0], 1e9))
                       for lo1 in (lower[1], min(upper[1], 1e9))]:
            m = np.array(corner, dtype=float)
            if not np.all(np.isfinite(m)) or np.any(m > 1e8):
                continue
            e, mm, _, _ = unit_values_nb(0, m, usd, coll, qty, pos_asset, entry, kind, start,
                                         np.zeros(2), tiers, 0, NO_OPTIONS)
            assert e - mm > 0.0, (trial, corner)


def test_indexed_engine_equals_full_scan_with_brackets(prepared):
    """Bit for bit with tiered brackets that positions cross during the cascades."""
    prep = prepared("two-asset-crash", "simulation.steps=36")
    sc = prep.scenario
    venue = dataclasses.replace(sc.venue, brackets=TEST_BRACKETS)  # rules made here
    exo = generate_paths(prep.inputs, 40, np.random.default_rng(5))
    out = {}
    for full_scan in (False, True):
        rules = EngineRules.from_scenario(venue, sc.liquidity, sc.market, full_scan=full_scan)
        out[full_scan] = replay(exo, prep.inputs.depth_usd, prep.book, rules, save_marks=3)
    fast, ref = out[False], out[True]
    assert len(ref.ev_i) > 1000
    for field in ("path_f", "path_i", "min_price", "final_price", "marks", "ev_i", "ev_f",
                  "acct_liquidated", "acct_bankrupt", "corr_path", "corr_account",
                  "corr_delta"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(ref, field), err_msg=field)


def test_index_starts_with_units_that_are_already_below_maintenance(prepared):
    """Accounts that start under-margined have no band: they are checked at step 1."""
    prep = prepared("deterministic-gap", "venue.maintenance_margin_rate=0.09")
    assert len(prep.index.init_pending) > 0
    exo = generate_paths(prep.inputs, 1, np.random.default_rng(0))
    fast = replay(exo, prep.inputs.depth_usd, prep.book, prep.rules, index=prep.index)
    scan = prepared(prep.scenario, full_scan=True)
    ref = replay(exo, scan.inputs.depth_usd, scan.book, scan.rules, index=scan.index)
    np.testing.assert_array_equal(fast.ev_i, ref.ev_i)
    np.testing.assert_array_equal(fast.ev_f, ref.ev_f)


def _band_heaps(n_assets: int) -> tuple[np.ndarray, ...]:
    return (np.zeros(1, dtype=np.int64), np.empty((2 * n_assets, 16)),
            np.empty((2 * n_assets, 16), dtype=np.int64),
            np.empty((2 * n_assets, 16), dtype=np.int64), np.zeros(2 * n_assets, dtype=np.int64))


@pytest.mark.parametrize("lin_btc", [2e-312, 1e-300, 0.0])
def test_zerodiv_band_of_a_dust_exposure(lin_btc):
    """A unit exposed to 2e-312 coins at a mark of 1e-13 has a split weight
    ``|lin| sigma M`` that underflows to 0: the band divided by it (ZeroDivisionError).
    At 1e-300 it is subnormal (1e-314) and too imprecise to cut a band from. Both get no
    band (checked exactly every round); a unit with no exposure keeps its empty band."""
    mark = np.array([1e-13, 1.0])
    lin = np.array([[lin_btc, 0.0]])
    const = np.array([1.0])  # slack 1 USD
    sigma = np.array([0.5, 0.5])
    version, h_key, h_unit, h_ver, h_n = _band_heaps(2)
    banded = push_band_nb(0, mark, lin, const, sigma, version, h_key, h_unit, h_ver, h_n,
                          *NO_POSITIONS, FLAT_TIERS[:2])
    assert banded == (lin_btc == 0.0)
    assert version[0] == 1 and h_n.sum() == 0


DUST = """
name = "dust"
[simulation]
paths = 4
seed = 1
steps = 4
[market]
model = "gbm"
[[market.assets]]
symbol = "BTC"
price = 1.0e-12
vol = 0.5
depth_usd = 1.0e6
[[shocks]]
kind = "gap"
step = 2
asset = "BTC"
size = -0.9
[venue]
maintenance_margin_rate = 0.01
[[accounts]]
id = "dust"
collateral = { USD = 1.0 }
positions = [ { symbol = "BTC", qty = 2.0e-312 } ]
[[accounts]]
id = "long"
collateral = { USD = 1.0e-13 }
positions = [ { symbol = "BTC", qty = 1.0 } ]
"""


def test_zerodiv_dust_exposure_is_checked_exactly_every_round(tmp_path, prepared):
    """End to end: the dust unit's weight is 0 at the start (it used to get a band cut
    from a weight of 1, crossed by the -90% gap) and at the gap (the ZeroDivisionError).
    It starts without a band, and the indexed engine equals the full scan."""
    (tmp_path / "dust.toml").write_text(DUST)
    prep = prepared(tmp_path / "dust.toml")
    assert prep.index.init_pending.tolist() == [0]
    exo = generate_paths(prep.inputs, 4, np.random.default_rng(5))
    fast = replay(exo, prep.inputs.depth_usd, prep.book, prep.rules, index=prep.index)
    scan = prepared(prep.scenario, full_scan=True)
    ref = replay(exo, scan.inputs.depth_usd, scan.book, scan.rules, index=scan.index)
    assert len(ref.ev_i) == 4  # the 1x long goes at the gap; the dust unit never does
    for field in ("path_f", "path_i", "final_price", "ev_i", "ev_f"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(ref, field), err_msg=field)
