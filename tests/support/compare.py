"""The comparison of the fast engine with the slow reference (``tests/reference``), shared
by every engine-vs-reference test module."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.book.build import Book
from simulator.config.behaviour import Behaviour
from simulator.margin import codes
from simulator.margin.engine import account_nav_coefficients

from ..reference import NaiveOptions, naive_replay


@dataclass
class Setup:
    """One random case of an engine-vs-reference test: its configuration, venue and
    liquidity, the book, the exogenous paths and the depth per step."""

    case: Any
    venue: Any
    liquidity: Any
    book: Book
    exo: np.ndarray
    depth: np.ndarray


def gapped_walks(rng: np.random.Generator, prices: np.ndarray, n_paths: int, steps: int,
                 step_sd: float, gaps: tuple) -> np.ndarray:
    """Random walks of the log prices with ``step_sd`` per step from ``prices``, plus at
    each ``(step, (low, high))`` of ``gaps`` a gap factor drawn per path and asset from
    ``uniform(low, high)``; shape (n_paths, steps + 1, A)."""
    n_assets = len(prices)
    log_returns = step_sd * rng.standard_normal((n_paths, steps, n_assets))
    for step, (low, high) in gaps:
        log_returns[:, step, :] += np.log(rng.uniform(low, high, size=(n_paths, n_assets)))
    exo = np.empty((n_paths, steps + 1, n_assets))
    exo[:, 0] = prices
    exo[:, 1:] = prices * np.exp(np.cumsum(log_returns, axis=1))
    return exo


def reference_kwargs(venue, liquidity, book: Book, brackets, *,
                     behaviour: Behaviour | None = None, step_hours: float | None = None,
                     reserve=None, rng_key: int = 0) -> dict:
    """Keyword arguments of ``naive_replay`` for a venue, liquidity and behaviour: the same
    parameters the fast engine reads from them (``EngineRules.from_scenario``)."""
    v, beh = venue, behaviour or Behaviour()
    interval = 0
    if v.funding != "off" and not v.lending:
        interval = round(v.funding_interval_hours / step_hours)
    return dict(
        n_accounts=book.n_accounts, fee_rate=v.liquidation_fee_rate, target=v.target,
        fund0=v.insurance_fund_usd, adl=v.adl, max_rounds=v.max_cascade_rounds,
        alpha=liquidity.alpha, decay=liquidity.decay_per_step, brackets=brackets,
        mode=v.liquidation, step_fraction=v.step_fraction, step_min_usd=v.step_min_usd,
        step_max_usd=v.step_max_usd, full_below_usd=v.full_below_usd,
        backstop_ratio=v.backstop_ratio, adl_ranking=v.adl_ranking,
        adl_max_notional_per_step_usd=v.adl_max_notional_per_step_usd, lending=v.lending,
        close_factor=v.close_factor, full_close_below_hf=v.full_close_below_hf,
        full_close_below_usd=v.full_close_below_usd, bonus=v.liquidation_bonus,
        protocol_share=v.protocol_share, funding_interval=interval,
        funding_rate=v.funding_rate, funding_premium=v.funding == "premium",
        funding_cap=v.funding_cap,
        call_ratio=beh.margin_call_ratio if not v.lending else 0.0,
        call_prob=beh.answer_probability, call_delay=beh.delay_steps, call_action=beh.action,
        call_target=beh.target_ratio, reserve=reserve, rng_key=rng_key,
        pos_kind=book.pos_kind, breaker_band=v.circuit_breaker_band,
        breaker_steps=v.circuit_breaker_steps, breaker_halts=v.circuit_breaker_halts,
        vault_disposal=v.vault_disposal, vault_disposal_share=v.vault_disposal_share,
        vault_depth_share=v.vault_depth_share)


def naive_options(book: Book, options, steps: int, s0) -> NaiveOptions | None:
    """The reference's options for ``book`` under ``options`` (an ``OptionRules``), or None
    when the book holds none."""
    if not book.has_options:
        return None
    n_assets = len(s0)
    ivmult = (np.ones((steps + 1, n_assets)) if options.iv_multiplier is None
              else np.asarray(options.iv_multiplier))
    beta = np.zeros(n_assets) if options.spot_vol_beta is None else options.spot_vol_beta
    return NaiveOptions(tau0=[float(x) for x in book.pos_expiry_years],
                        iv0=[float(x) for x in book.pos_iv], s0=[float(x) for x in s0],
                        beta=[float(x) for x in beta], ivmult=ivmult.tolist(),
                        step_years=float(options.step_years), rule=options.rule,
                        fee_rate=options.fee_rate, range_pct=options.range_pct)


def run_reference(exo, depth, haircut, book: Book, **kwargs):
    """``naive_replay`` of ``book`` (its arrays) with ``kwargs`` (see
    :func:`reference_kwargs`)."""
    return naive_replay(exo, depth, haircut, None, book.unit_account, book.unit_usd,
                        book.unit_coll, book.pos_unit, book.pos_asset, book.pos_qty,
                        book.pos_entry, **kwargs)


#: relative tolerance: the two engines do the same arithmetic in the same order, up to
#: floating-point association
RTOL = 1e-9


def assert_same(fast, book: Book, paths, events, accounts, prices,
                pnl_atol: float = 1e-6) -> None:
    """Every event field, per-path record and account output of the fast engine's
    ``fast`` (a ReplayResult) and the reference's ``paths, events, accounts`` agree;
    ``prices`` are the initial prices (for account PnL)."""
    assert len(fast.ev_i) == len(events)
    for k, ev in enumerate(events):
        ei, ef = fast.ev_i[k], fast.ev_f[k]
        assert ei[codes.EI_PATH] == ev["path"], k
        assert ei[codes.EI_STEP] == ev["step"], k
        assert ei[codes.EI_ROUND] == ev["round"], k
        unit = ei[codes.EI_UNIT]
        assert (book.unit_account[unit] if unit >= 0 else -1) == ev["account"], k
        assert codes.KIND_NAMES[ei[codes.EI_KIND]] == ev["kind"], k
        assert codes.INSTRUMENT_NAMES[ei[codes.EI_INSTRUMENT]] == ev["instrument"], k
        assert ei[codes.EI_ASSET] == ev["asset"], k
        for col, key in [(codes.EF_QTY, "qty"), (codes.EF_MARK, "mark_price"),
                         (codes.EF_EXEC, "exec_price"), (codes.EF_NOTIONAL, "notional"),
                         (codes.EF_FEE, "fee"), (codes.EF_BAD_DEBT, "bad_debt"),
                         (codes.EF_FUND_PAID, "fund_paid")]:
            assert math.isclose(ef[col], ev[key], rel_tol=RTOL, abs_tol=1e-9), (k, key)
        if ev["kind"] == "adl":  # the ADL'd unit before its fill
            for col, key in [(codes.EA_LEVERAGE, "leverage"), (codes.EA_PNL, "pnl")]:
                got, want = fast.ev_adl[k, col], ev[key]
                assert (math.isnan(got) and math.isnan(want)) or math.isclose(
                    got, want, rel_tol=RTOL, abs_tol=1e-9), (k, key)
    for i, rec in enumerate(paths):
        assert fast.path_i[i, codes.PI_N_LIQUIDATIONS] == rec["n_liquidations"], i
        assert fast.path_i[i, codes.PI_MAX_ROUNDS] == rec["max_cascade_rounds"], i
        assert fast.path_i[i, codes.PI_N_CASCADE] == rec["n_cascade_liquidations"], i
        first = rec["first_liquidation_step"]
        assert fast.path_i[i, codes.PI_FIRST_STEP] == (-1 if first is None else first), i
        assert bool(fast.path_i[i, codes.PI_DEPLETED]) == rec["fund_depleted"], i
        n_adl = sum(1 for ev in events if ev["path"] == i and ev["kind"] == "adl")
        assert fast.path_i[i, codes.PI_N_ADL] == n_adl, i
        assert bool(fast.path_i[i, codes.PI_PRICE_BOUNDED]) == rec.get("price_bounded", False), i
        assert fast.path_i[i, codes.PI_BREAKER_TRIPS] == rec.get("breaker_trips", 0), i
        assert fast.path_i[i, codes.PI_BREAKER_PAUSED] == rec.get("breaker_paused_steps", 0), i
        for col, key in [(codes.PF_LIQUIDATED_NOTIONAL, "liquidated_notional"),
                         (codes.PF_BAD_DEBT, "bad_debt"),
                         (codes.PF_FUND_END, "insurance_fund_end"),
                         (codes.PF_ADL_NOTIONAL, "adl_notional"),
                         (codes.PF_SOCIALISED, "socialised_loss"), (codes.PF_FEES, "fees")]:
            assert math.isclose(fast.path_f[i, col], rec[key], rel_tol=RTOL,
                                abs_tol=1e-7), (i, key)
        if "vault_pnl" in rec:  # the backstop vault's outputs
            assert fast.path_i[i, codes.PI_VAULT_TAKEOVERS] == rec["vault_takeovers"], i
            for col, key in [(codes.PF_VAULT_PNL, "vault_pnl"),
                             (codes.PF_VAULT_DRAWDOWN, "vault_drawdown"),
                             (codes.PF_VAULT_INV_END, "vault_inventory_end_usd")]:
                assert math.isclose(fast.path_f[i, col], rec[key], rel_tol=RTOL,
                                    abs_tol=1e-7), (i, key)
        np.testing.assert_allclose(fast.min_price[i], rec["min_price"], rtol=RTOL)
        np.testing.assert_allclose(fast.final_price[i], rec["final_price"], rtol=RTOL)
    np.testing.assert_array_equal(fast.acct_liquidated, np.sum(accounts["liquidated"], axis=0))
    np.testing.assert_array_equal(fast.acct_bankrupt, np.sum(accounts["bankrupt"], axis=0))
    pnl = fast.account_pnl(account_nav_coefficients(book), prices)
    np.testing.assert_allclose(pnl, accounts["pnl"], rtol=1e-8, atol=pnl_atol)
