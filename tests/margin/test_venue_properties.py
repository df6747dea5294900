"""Properties of the margin engine on random venues, books and paths (``docs/engine.md``).

``test_replay_vs_reference.py`` and ``test_rules_vs_reference.py`` (in ``tests/margin``)
compare the engine with the reference implementation on a few fixed cases; the tests here
draw the venue (liquidation mode, impact law, ADL, fund, flat or tiered maintenance,
backstop vault), the book (cross and isolated accounts, 1 to 3 assets, USD and asset
collateral; ``tests/support/venue_draws.py``) and the paths (random walks with gaps) with
``hypothesis``, and check what must hold whatever the rules:

- the cascade of a step leaves no unit liquidatable: replaying the last step's exogenous
  prices once more with permanent impact (the marks then equal the previous closing marks)
  liquidates nothing and changes nothing before it;
- bad debt, fund payments and socialised losses are never negative, and the insurance fund
  is conserved: ``fund_end = fund0 + fees - fund paid`` and ``bad_debt = fund paid +
  covered by ADL + socialised``;
- with isolated margin, no impact and no ADL every unit evolves alone, so a higher
  maintenance requirement on the same paths liquidates every (path, account) that a lower
  one liquidates;
- a replay is deterministic, and the indexed and full-scan kernels give identical bytes;
- on a lending venue: the same conservation laws, and no account is left with a health
  factor below 1 after a step's last round.

The numpy seed of each example is drawn by ``hypothesis``, so a failure prints everything
needed to rebuild it.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.book.build import Book
from simulator.config.market import Liquidity
from simulator.config.scenario import Venue
from simulator.config.venue_presets import Bracket
from simulator.margin import EngineRules, ReplayResult, codes, replay

from ..support.venue_draws import (
    MAX_ROUNDS,
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

RTOL = 1e-9

SETTINGS = settings(max_examples=40, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow])

LIQ_KINDS = (codes.KIND_LIQUIDATION, codes.KIND_BACKSTOP)


def run(s: Setup, venue: Venue, liquidity: Liquidity, full_scan: bool = False,
        exo: np.ndarray | None = None, depth: np.ndarray | None = None) -> ReplayResult:
    rules = EngineRules.from_scenario(venue, liquidity, s.market, full_scan=full_scan)
    return replay(s.exo if exo is None else exo, s.depth if depth is None else depth, s.book,
                  rules, initial_events=64, save_marks=s.exo.shape[0])


# ---------------------------------------------------------------------------------------
# Checks shared by the derivatives and the lending properties
# ---------------------------------------------------------------------------------------


def check_extra_step_is_quiet(s: Setup, venue: Venue, liquidity: Liquidity) -> None:
    """Replaying the last step's exogenous prices once more liquidates nothing.

    With permanent impact (``half_life_steps = 0``) the marks at the repeated step are the
    previous step's closing marks (up to rounding in ``exp``), at which the cascade ended
    with no liquidatable unit. Everything recorded for the original steps is unchanged.
    """
    assert liquidity.half_life_steps == 0.0
    steps = s.exo.shape[1] - 1
    base = run(s, venue, liquidity)
    # the cascades ended by themselves, never at the round limit
    assert (base.path_i[:, codes.PI_MAX_ROUNDS] < MAX_ROUNDS).all()
    exo2 = np.concatenate([s.exo, s.exo[:, -1:]], axis=1)
    depth2 = np.concatenate([s.depth, s.depth[-1:]], axis=0)
    for full_scan in (False, True):
        ext = run(s, venue, liquidity, full_scan=full_scan, exo=exo2, depth=depth2)
        extra = ext.ev_i[:, codes.EI_STEP] == steps + 1
        assert not extra.any(), (
            f"full_scan={full_scan}: events at the repeated step {steps + 1}",
            ext.ev_i[extra], ext.ev_f[extra])
        np.testing.assert_array_equal(ext.ev_i, base.ev_i)
        np.testing.assert_array_equal(ext.ev_f, base.ev_f)
        np.testing.assert_array_equal(ext.path_i, base.path_i)
        np.testing.assert_array_equal(ext.path_f, base.path_f)
        np.testing.assert_array_equal(ext.acct_liquidated, base.acct_liquidated)
        np.testing.assert_array_equal(ext.acct_bankrupt, base.acct_bankrupt)
        np.testing.assert_array_equal(ext.marks[:, :steps + 1], base.marks)
        # the repeated step's marks: exo x exp(sum of log impacts) vs the product of the
        # rounds' factors, equal up to rounding
        np.testing.assert_allclose(ext.marks[:, steps + 1], base.marks[:, steps], rtol=1e-12)
        np.testing.assert_allclose(ext.final_price, base.final_price, rtol=1e-12)
        np.testing.assert_allclose(ext.min_price, base.min_price, rtol=1e-12)


def check_accounting(res: ReplayResult, fund0: float) -> None:
    """Signs of bad debt and fund payments, and the insurance-fund identities per path."""
    ev_i, ev_f, path_f = res.ev_i, res.ev_f, res.path_f
    assert (ev_f[:, codes.EF_BAD_DEBT] >= 0.0).all()
    assert (ev_f[:, codes.EF_FUND_PAID] >= 0.0).all()
    assert (ev_f[:, codes.EF_FEE] >= 0.0).all()
    assert (ev_f[:, codes.EF_FUND_PAID]
            <= ev_f[:, codes.EF_BAD_DEBT] * (1.0 + 1e-12) + 1e-12).all()
    for col in (codes.PF_BAD_DEBT, codes.PF_FUND_END, codes.PF_SOCIALISED, codes.PF_FEES,
                codes.PF_ADL_NOTIONAL, codes.PF_LIQUIDATED_NOTIONAL):
        assert (path_f[:, col] >= 0.0).all(), col
    kind = ev_i[:, codes.EI_KIND]
    for i in range(path_f.shape[0]):
        on = ev_i[:, codes.EI_PATH] == i
        liq = on & np.isin(kind, LIQ_KINDS)
        adl = on & (kind == codes.KIND_ADL)
        soc = on & (kind == codes.KIND_SOCIALISED)
        fund_paid = ev_f[on, codes.EF_FUND_PAID].sum()
        bad_debt = path_f[i, codes.PF_BAD_DEBT]
        fees = path_f[i, codes.PF_FEES]
        scale = fund0 + fees + bad_debt + 1.0
        tol = dict(rel_tol=RTOL, abs_tol=RTOL * scale)
        assert math.isclose(path_f[i, codes.PF_FUND_END], fund0 + fees - fund_paid, **tol), i
        covered = ev_f[adl, codes.EF_BAD_DEBT].sum()
        socialised = ev_f[soc, codes.EF_BAD_DEBT].sum()
        assert math.isclose(bad_debt, fund_paid + covered + socialised, **tol), i
        # the per-path totals are the sums of their events
        assert math.isclose(bad_debt, ev_f[liq, codes.EF_BAD_DEBT].sum(), **tol), i
        # ... fees included: a unit that closes no position (a backstop take-over of a unit
        # left with collateral and a negative balance) gets a USD `debt` event for its fee
        assert math.isclose(ev_f[on, codes.EF_FEE].sum(), fees, **tol), i
        assert math.isclose(path_f[i, codes.PF_SOCIALISED], socialised, **tol), i
        assert math.isclose(path_f[i, codes.PF_ADL_NOTIONAL],
                            ev_f[adl, codes.EF_NOTIONAL].sum(), rel_tol=RTOL, abs_tol=1e-9), i
        # fund paid only to bankrupt units' events; ADL and socialised events pay nothing
        assert (ev_f[on & ~np.isin(kind, LIQ_KINDS), codes.EF_FUND_PAID] == 0.0).all()
        assert bool(res.path_i[i, codes.PI_DEPLETED]) == bool(adl.any() or soc.any())


# ---------------------------------------------------------------------------------------
# Derivatives venues
# ---------------------------------------------------------------------------------------


@SETTINGS
@given(seed=seeds, venue=venues(), impact=impacts, n_assets=n_assets_st,
       n_accounts=st.integers(2, 25), n_paths=st.integers(1, 5), steps=st.integers(2, 10))
def test_no_unit_left_liquidatable_after_the_cascade(seed, venue, impact, n_assets,
                                                     n_accounts, n_paths, steps):
    """Metamorphic: repeating the last step (permanent impact) adds no liquidation."""
    s = derivatives_setup(seed, venue, n_assets, n_accounts, n_paths, steps)
    check_extra_step_is_quiet(s, venue, Liquidity(impact=impact, half_life_steps=0.0))


@SETTINGS
@given(seed=seeds, venue=venues(), impact=impacts, half_life=half_lives,
       n_assets=n_assets_st, n_accounts=st.integers(2, 25), n_paths=st.integers(1, 5),
       steps=st.integers(2, 10))
def test_bad_debt_and_fund_accounting(seed, venue, impact, half_life, n_assets, n_accounts,
                                      n_paths, steps):
    """Bad debt >= 0, fund >= 0, and the fund identity of every path."""
    s = derivatives_setup(seed, venue, n_assets, n_accounts, n_paths, steps)
    res = run(s, venue, Liquidity(impact=impact, half_life_steps=half_life))
    check_accounting(res, venue.insurance_fund_usd)


def _scaled(venue: Venue, factor: float) -> Venue:
    """The same venue with every maintenance rate multiplied by ``factor``."""
    if venue.brackets:
        tables = tuple((sym, tuple(Bracket(b.max_notional_usd, b.rate * factor)
                                   for b in table)) for sym, table in venue.brackets)
        return replace(venue, brackets=tables)
    return replace(venue, maintenance_margin_rate=venue.maintenance_margin_rate * factor)


def _first_liquidations(res: ReplayResult, book: Book) -> dict[tuple[int, int], int]:
    """First step at which each liquidated (path, account) pair was liquidated."""
    sel = np.isin(res.ev_i[:, codes.EI_KIND], LIQ_KINDS)
    first: dict[tuple[int, int], int] = {}
    for path, unit, step in res.ev_i[sel][:, [codes.EI_PATH, codes.EI_UNIT, codes.EI_STEP]]:
        key = (int(path), int(book.unit_account[unit]))
        first[key] = min(first.get(key, int(step)), int(step))
    return first


@SETTINGS
@given(seed=seeds, venue=venues(adl=False), factor=st.sampled_from([1.05, 1.5, 3.0]),
       n_assets=n_assets_st, n_accounts=st.integers(2, 25), n_paths=st.integers(1, 5),
       steps=st.integers(2, 10))
def test_higher_maintenance_liquidates_more_isolated_accounts(seed, venue, factor, n_assets,
                                                              n_accounts, n_paths, steps):
    """Isolated units, no impact, no ADL: a higher maintenance requirement liquidates a
    superset of (path, account) pairs on the same paths, each no later.

    Each unit then evolves alone on the exogenous prices: nothing it does moves the marks
    (no impact), touches another unit (no ADL; a backstop take-over or a socialised loss
    changes no other unit), or depends on the fund. Until its first liquidation its state is
    the same under both rates, and every maintenance requirement is larger under the higher
    rates (brackets keep their caps, so ``cum`` scales with the rates too), so its first
    liquidation comes no later. This holds in every mode: partial and incremental modes
    change what happens *after* the first liquidation (how many rounds, the notional), not
    whether the unit is liquidated on the path, which is all ``acct_liquidated`` and the
    (path, account) pairs record.
    """
    s = derivatives_setup(seed, venue, n_assets, n_accounts, n_paths, steps, p_isolated=1.0)
    assert s.book.account_isolated.all()
    liquidity = Liquidity(impact="none", half_life_steps=0.0)
    low = run(s, venue, liquidity)
    high_venue = _scaled(venue, factor)
    high = run(s, high_venue, liquidity)
    assert (high.acct_liquidated >= low.acct_liquidated).all(), (
        low.acct_liquidated, high.acct_liquidated)
    first_low = _first_liquidations(low, s.book)
    first_high = _first_liquidations(high, s.book)
    missing = set(first_low) - set(first_high)
    assert not missing, sorted(missing)
    # ... and no later
    later = {k: (v, first_high[k]) for k, v in first_low.items() if first_high[k] > v}
    assert not later, later
    # the pairs are what acct_liquidated counts
    for res, first in ((low, first_low), (high, first_high)):
        counts = np.bincount([a for _, a in first], minlength=s.book.n_accounts)
        np.testing.assert_array_equal(counts, res.acct_liquidated)


def _result_arrays(res: ReplayResult) -> dict[str, np.ndarray]:
    return {k: v for k, v in res.__dict__.items() if isinstance(v, np.ndarray)}


@SETTINGS
@given(seed=seeds, venue=venues(), impact=impacts, half_life=half_lives,
       n_assets=n_assets_st, n_accounts=st.integers(2, 25), n_paths=st.integers(1, 5),
       steps=st.integers(2, 10))
def test_replay_is_deterministic(seed, venue, impact, half_life, n_assets, n_accounts, n_paths,
                                 steps):
    """Twice the same replay, and the full-scan kernel, give bit-identical arrays."""
    s = derivatives_setup(seed, venue, n_assets, n_accounts, n_paths, steps)
    liquidity = Liquidity(impact=impact, half_life_steps=half_life)
    first = _result_arrays(run(s, venue, liquidity))
    for full_scan in (False, True):
        again = _result_arrays(run(s, venue, liquidity, full_scan=full_scan))
        assert again.keys() == first.keys()
        for key, arr in first.items():
            assert arr.dtype == again[key].dtype and arr.shape == again[key].shape, key
            assert arr.tobytes() == again[key].tobytes(), (full_scan, key)


# ---------------------------------------------------------------------------------------
# Lending venues
# ---------------------------------------------------------------------------------------


@SETTINGS
@given(seed=seeds, venue=lending_venues(), impact=impacts, n_assets=n_assets_st,
       n_accounts=st.integers(2, 25), n_paths=st.integers(1, 5), steps=st.integers(2, 10))
def test_lending_accounting_and_no_health_factor_below_one(seed, venue, impact, n_assets,
                                                           n_accounts, n_paths, steps):
    """Lending: bad debt >= 0, the fund identity, and no health factor < 1 after a step
    (repeating the last step liquidates nothing)."""
    s = lending_setup(seed, n_assets, n_accounts, n_paths, steps)
    liquidity = Liquidity(impact=impact, half_life_steps=0.0)
    check_accounting(run(s, venue, liquidity), venue.insurance_fund_usd)
    check_extra_step_is_quiet(s, venue, liquidity)


# ---------------------------------------------------------------------------------------
# The generators are not vacuous
# ---------------------------------------------------------------------------------------


def test_generators_exercise_the_mechanisms():
    """On a few fixed draws, the books and paths above produce multi-round cascades, bad
    debt, fund depletion, ADL, socialised losses, backstop take-overs, partial closes and
    lending write-offs, so the properties are checked on real events."""
    seen = set()
    tiers = (("*", (Bracket(1_000.0, 0.01), Bracket(5_000.0, 0.02), Bracket(math.inf, 0.05))),)
    for seed in range(4):
        for mode, adl, backstop in (("full", True, 0.0), ("partial", False, 2.0 / 3.0),
                                    ("incremental", True, 0.0)):
            venue = Venue(liquidation=mode, adl=adl, backstop_ratio=backstop,
                          insurance_fund_usd=100.0, liquidation_fee_rate=0.01, brackets=tiers,
                          max_cascade_rounds=MAX_ROUNDS)
            s = derivatives_setup(seed, venue, 3, 25, 5, 10)
            res = run(s, venue, Liquidity("linear", 0.0))
            kind = res.ev_i[:, codes.EI_KIND]
            seen |= {codes.KIND_NAMES[k] for k in np.unique(kind)}
            if (res.path_i[:, codes.PI_MAX_ROUNDS] > 1).any():
                seen.add("rounds>1")
            if (res.path_f[:, codes.PF_BAD_DEBT] > 0).any():
                seen.add("bad_debt")
            if res.path_i[:, codes.PI_DEPLETED].any():
                seen.add("depleted")
            # a unit liquidated again in a later round or step (partial closes)
            liq = res.ev_i[kind == codes.KIND_LIQUIDATION]
            cols = [codes.EI_PATH, codes.EI_UNIT]
            once = len(np.unique(liq[:, cols], axis=0))
            rounds = len(np.unique(liq[:, cols + [codes.EI_STEP, codes.EI_ROUND]], axis=0))
            if mode != "full" and rounds > once:
                seen.add(f"{mode}-repeat")
        lend = Venue(type="lending", adl=False, maintenance_margin_rate=0.0,
                     liquidation_fee_rate=0.0, insurance_fund_usd=0.0,
                     max_cascade_rounds=MAX_ROUNDS)
        s = lending_setup(seed, 3, 25, 5, 10)
        res = run(s, lend, Liquidity("sqrt", 0.0))
        if (res.path_f[:, codes.PF_BAD_DEBT] > 0).any():
            seen.add("lending_bad_debt")
        if (res.path_i[:, codes.PI_N_LIQUIDATIONS] > 0).any():
            seen.add("lending_liquidation")
    expected = {"liquidation", "adl", "backstop", "socialised", "rounds>1", "bad_debt",
                "depleted", "partial-repeat", "incremental-repeat", "lending_bad_debt",
                "lending_liquidation"}
    assert expected <= seen, expected - seen
