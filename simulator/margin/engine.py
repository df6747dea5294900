"""Margin engine, Python layer: prepare the book, its liquidation index and the venue
rules, run the replay kernel, and give account PnL back in blocks.

The rules are specified in ``docs/engine.md``. :func:`replay` returns raw arrays; the
runner turns them into Parquet tables and per-account estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..behaviour_config import Behaviour
from ..book import Book
from ..scenario import Liquidity, Market, Scenario, Venue
from ..venues import bracket_cums
from . import codes
from ._index_kernels import BRACKET_MARGIN, MIN_BAND_WEIGHT, SLACK_MARGIN
from ._kernels import replay_nb
from ._option_box_kernels import static_boxes_nb
from .option_setup import (
    OptionData,
    OptionRules,
    iv_multipliers,
    option_context,
)

#: smallest volatility used to split a unit's slack between assets (any split is correct;
#: this one only sets how often a multi-asset unit is re-checked)
SIGMA_FLOOR = 0.05


@dataclass(frozen=True)
class EngineRules:
    """Venue and liquidity rules in the form the kernel takes.

    Attributes
    ----------
    haircut : ndarray, shape (A,)
        Collateral haircut per asset; on a lending venue ``1 -`` its liquidation threshold.
    tiers : ndarray, shape (A, K, 3)
        Maintenance brackets per asset: notional cap, rate, cum (``codes.TIER_*``); shorter
        tables repeat their last row.
    sigma : ndarray, shape (A,)
        Volatility scale per asset, used to split safe bands between assets.
    fparams : ndarray, shape (codes.N_FP,)
    iparams : ndarray, shape (codes.N_IP,)
    call_ratio, reserve_ratio : float
        Margin-call ratio (0: no calls) and reserve as a multiple of initial equity.
    options : OptionRules
        Option margin rule, fees and implied-vol dynamics.
    """

    haircut: np.ndarray
    tiers: np.ndarray
    sigma: np.ndarray
    fparams: np.ndarray
    iparams: np.ndarray
    call_ratio: float = 0.0
    reserve_ratio: float = 0.0
    options: OptionRules = OptionRules()

    @property
    def tier_cap(self) -> np.ndarray:
        """Bracket notional caps, shape (A, K)."""
        return self.tiers[:, :, codes.TIER_CAP]

    @property
    def tier_rate(self) -> np.ndarray:
        """Bracket maintenance rates, shape (A, K)."""
        return self.tiers[:, :, codes.TIER_RATE]

    @property
    def tier_cum(self) -> np.ndarray:
        """Bracket maintenance amounts, shape (A, K)."""
        return self.tiers[:, :, codes.TIER_CUM]

    @classmethod
    def from_scenario(cls, venue: Venue, liquidity: Liquidity, market: Market,
                      full_scan: bool = False, behaviour: Behaviour | None = None,
                      step_hours: float | None = None,
                      iv_multiplier: np.ndarray | None = None) -> EngineRules:
        """Build the rules of a scenario's ``[venue]``, ``[liquidity]``, assets and
        ``[behaviour]``.

        ``full_scan`` checks every unit at every round instead of using the index (same
        results, slower; for tests and benchmarks). ``step_hours`` (the length of a step)
        is needed when the venue pays funding or the book holds options;
        ``iv_multiplier`` (steps + 1, A) carries the ``vol`` shocks into implied vols.
        """
        behaviour = behaviour or Behaviour()
        fparams = np.zeros(codes.N_FP)
        fparams[codes.FP_FEE_RATE] = venue.liquidation_fee_rate
        fparams[codes.FP_TARGET] = venue.target
        fparams[codes.FP_FUND0] = venue.insurance_fund_usd
        fparams[codes.FP_ALPHA] = liquidity.alpha
        fparams[codes.FP_DECAY] = liquidity.decay_per_step
        fparams[codes.FP_STEP_FRACTION] = venue.step_fraction
        fparams[codes.FP_STEP_MIN] = venue.step_min_usd
        fparams[codes.FP_STEP_MAX] = venue.step_max_usd
        fparams[codes.FP_FULL_BELOW] = venue.full_below_usd
        fparams[codes.FP_BACKSTOP] = venue.backstop_ratio
        fparams[codes.FP_CLOSE_FACTOR] = venue.close_factor
        fparams[codes.FP_FULL_CLOSE_HF] = venue.full_close_below_hf
        fparams[codes.FP_FULL_CLOSE_USD] = venue.full_close_below_usd
        fparams[codes.FP_BONUS] = venue.liquidation_bonus
        fparams[codes.FP_PROTOCOL_SHARE] = venue.protocol_share
        iparams = np.zeros(codes.N_IP, dtype=np.int64)
        iparams[codes.IP_MODE] = codes.MODE_NAMES.index(venue.liquidation)
        iparams[codes.IP_ADL] = venue.adl and not venue.lending
        iparams[codes.IP_MAX_ROUNDS] = venue.max_cascade_rounds
        iparams[codes.IP_FULL_SCAN] = full_scan
        iparams[codes.IP_LENDING] = venue.lending
        iparams[codes.IP_ADL_RANKING] = codes.RANK_NAMES.index(venue.adl_ranking)
        calls = behaviour.calls and not venue.lending
        fparams[codes.FP_CALL_PROB] = behaviour.answer_probability
        fparams[codes.FP_CALL_TARGET] = behaviour.target_ratio
        iparams[codes.IP_CALL_DELAY] = behaviour.delay_steps
        iparams[codes.IP_CALL_ACTION] = codes.ACTION_NAMES.index(behaviour.action)
        if venue.funding != "off" and not venue.lending:
            if step_hours is None:
                raise ValueError("funding needs the length of a step (step_hours)")
            interval = round(venue.funding_interval_hours / step_hours)
            if interval < 1:
                raise ValueError(f"funding every {venue.funding_interval_hours:g} h is shorter "
                                 f"than a step ({step_hours:g} h)")
            iparams[codes.IP_FUNDING_INTERVAL] = interval
            iparams[codes.IP_FUNDING_PREMIUM] = venue.funding == "premium"
            fparams[codes.FP_FUNDING_RATE] = venue.funding_rate
            fparams[codes.FP_FUNDING_CAP] = venue.funding_cap
        haircut = np.array([1.0 - venue.collateral_weight(a.symbol, a.haircut)
                            for a in market.assets], dtype=float)
        sigma = np.maximum(np.array([a.vol for a in market.assets], dtype=float), SIGMA_FLOOR)
        options = OptionRules(
            rule=venue.option_margin, fee_rate=venue.option_liquidation_fee_rate,
            range_pct=venue.risk_matrix_range_pct,
            spot_vol_beta=np.array([a.spot_vol_beta for a in market.assets], dtype=float),
            step_years=None if step_hours is None else step_hours / 24.0 / 365.0,
            iv_multiplier=iv_multiplier)
        return cls(haircut=haircut, tiers=bracket_table(venue, market), sigma=sigma,
                   fparams=fparams, iparams=iparams,
                   call_ratio=behaviour.margin_call_ratio if calls else 0.0,
                   reserve_ratio=behaviour.reserve_ratio, options=options)

    @classmethod
    def for_scenario(cls, scenario: Scenario, full_scan: bool = False) -> EngineRules:
        """The rules of a whole scenario (venue, liquidity, assets, behaviour, step length)."""
        return cls.from_scenario(scenario.venue, scenario.liquidity, scenario.market,
                                 full_scan=full_scan, behaviour=scenario.behaviour,
                                 step_hours=scenario.simulation.dt_years * 365.0 * 24.0,
                                 iv_multiplier=iv_multipliers(scenario))


def bracket_table(venue: Venue, market: Market) -> np.ndarray:
    """Maintenance brackets of every asset as one array, shape (A, K, 3)."""
    tables = [venue.brackets_for(a.symbol) for a in market.assets]
    n_rows = max(len(t) for t in tables)
    out = np.empty((len(tables), n_rows, 3))
    for a, table in enumerate(tables):
        cums = bracket_cums(table)
        for k in range(n_rows):
            j = min(k, len(table) - 1)
            out[a, k] = (table[j].max_notional_usd, table[j].rate, cums[j])
    return out


def position_notional(book: Book, prices: np.ndarray) -> np.ndarray:
    """USD notional of every perpetual at ``prices`` (an inverse one's is its qty); 0 for
    an option (it has no bracket)."""
    size = np.where(book.pos_kind >= codes.POS_CALL, 0.0, np.abs(book.pos_qty))
    return np.where(book.pos_kind == codes.POS_INVERSE, size, size * prices[book.pos_asset])


def position_brackets(book: Book, tiers: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """Bracket index of every position at ``prices`` (first cap >= its notional)."""
    notional = position_notional(book, prices)
    k = np.zeros(len(notional), dtype=np.int64)
    for a in range(tiers.shape[0]):
        rows = book.pos_asset == a
        caps = tiers[a, :-1, codes.TIER_CAP]
        k[rows] = np.searchsorted(caps, notional[rows], side="left")
    return k


@dataclass(frozen=True)
class BookIndex:
    """The book's initial slack form, NAV form and liquidation index (same on every path).

    Attributes
    ----------
    lin, const, n_open : ndarray
        ``E - MM = const + lin @ M`` per unit, and its number of open positions.
    navk, navc : ndarray
        ``NAV = navc + navk @ M`` per unit (no haircut).
    s_key, s_unit, s_start : ndarray
        Initial band thresholds per heap ``2 a + d`` (d = 0 down, 1 up), descending keys.
    init_pending : ndarray
        Units without a band at the initial prices (checked exactly at the first round).
    mmk0 : ndarray
        Maintenance multiplier of each unit's slack form: the margin-call ratio (armed) or 1.
    reserve : ndarray
        USD each unit may deposit when it answers a margin call.
    options : OptionData
        The options' data for the kernels (:func:`option_setup.option_context`).
    steps : int
        Steps of the paths this index was built for.
    """

    lin: np.ndarray
    const: np.ndarray
    n_open: np.ndarray
    navk: np.ndarray
    navc: np.ndarray
    s_key: np.ndarray
    s_unit: np.ndarray
    s_start: np.ndarray
    init_pending: np.ndarray
    mmk0: np.ndarray
    reserve: np.ndarray
    options: OptionData | None = None
    steps: int = -1

    @classmethod
    def build(cls, book: Book, rules: EngineRules, s0: np.ndarray,
              steps: int | None = None) -> BookIndex:
        """Index ``book`` at the initial prices ``s0`` for paths of ``steps`` steps (needed
        when the book holds options: their boxes span windows of steps)."""
        n_units, n_assets = book.n_units, len(s0)
        if steps is None:
            if book.has_options:
                raise ValueError("indexing a book with options needs the number of steps")
            steps = 0
        opt_data = option_context(book, rules.options, steps, s0)
        oc = opt_data.oc
        pos_unit, pos_asset = book.pos_unit, book.pos_asset
        open_ = book.pos_qty != 0.0
        option = book.pos_kind >= codes.POS_CALL
        q = np.where(open_ & ~option, book.pos_qty, 0.0)  # the linear form leaves options out
        k = position_brackets(book, rules.tiers, s0)
        inverse = book.pos_kind == codes.POS_INVERSE
        mmk0 = np.full(n_units, rules.call_ratio if rules.call_ratio > 0 else 1.0)
        rate = rules.tiers[pos_asset, k, codes.TIER_RATE] * mmk0[pos_unit]
        cum = (np.where(open_ & ~option, rules.tiers[pos_asset, k, codes.TIER_CUM], 0.0)
               * mmk0[pos_unit])
        # linear: q M - q entry - (|q| M rate - cum); inverse: (q / entry) M - q - (|q| rate - cum)
        coin_qty = _coin_qty(book, q)
        exposure = np.zeros((n_units, n_assets))
        np.add.at(exposure, (pos_unit, pos_asset),
                  coin_qty - np.where(inverse, 0.0, rate * np.abs(q)))
        coll = book.unit_coll
        lin = np.where(coll >= 0, coll * (1.0 - rules.haircut), coll) + exposure
        cost = np.where(inverse, q, q * book.pos_entry)
        fixed_mm = np.where(inverse, rate * np.abs(q), 0.0)
        const = book.unit_usd + np.bincount(pos_unit, cum - cost - fixed_mm, minlength=n_units)
        n_open = (np.bincount(pos_unit, open_, minlength=n_units) + (book.unit_usd < 0)
                  + (coll < 0).sum(axis=1)).astype(np.int64)
        navk = unit_nav_coefficients(book)
        value0 = np.bincount(pos_unit, book.option_values(s0), minlength=n_units)
        navc = book.unit_usd - np.bincount(pos_unit, cost, minlength=n_units) + value0
        lo, hi = _bracket_intervals(book, rules.tiers, s0, k, open_)
        equity0 = const + lin @ s0 + np.bincount(pos_unit, rate * position_notional(book, s0)
                                                 - cum, minlength=n_units) + value0
        reserve = rules.reserve_ratio * np.maximum(equity0, 0.0)

        slack = const + lin @ s0
        scale = np.abs(const) + np.abs(lin) @ s0
        slack_eff = slack - SLACK_MARGIN * scale
        weight = (np.abs(lin) * rules.sigma * s0).sum(axis=1)
        unit_opt = oc[codes.OC_UNIT_OPT]
        live = (n_open > 0) & ~unit_opt
        # as push_band_nb: no band where the split weight of an exposed unit is too small
        splittable = (weight >= MIN_BAND_WEIGHT) | ~(lin != 0.0).any(axis=1)
        banded = live & (slack_eff > 0.0) & splittable
        init_pending = np.flatnonzero(live & ~banded).astype(np.int64)
        box_units = opt_data.opt_units
        box_lo = np.empty((len(box_units), n_assets))
        box_hi = np.empty((len(box_units), n_assets))
        box_due = np.empty(len(box_units), dtype=np.int64)
        if len(box_units):
            static_boxes_nb(box_units, np.ascontiguousarray(s0, dtype=float), steps,
                            np.ascontiguousarray(lin), const, rules.sigma, mmk0, book.pos_qty,
                            pos_asset, book.pos_kind, book.pos_entry, book.unit_pos_start,
                            rules.tiers, oc, box_lo, box_hi, box_due)
            init_pending = np.sort(np.concatenate([init_pending,
                                                   box_units[box_due < 0]])).astype(np.int64)
        boxed = box_due >= 0
        safe_weight = np.where(weight > 0.0, weight, 1.0)  # 0: no exposure, no band needed
        keys, units, starts = [], [], [0]
        for a in range(n_assets):
            band = slack_eff * rules.sigma[a] * s0[a] / safe_weight
            down = np.where(lin[:, a] > 0, s0[a] - band, -np.inf)
            down = np.where(lo[:, a] > 0, np.maximum(down, lo[:, a] * (1.0 + BRACKET_MARGIN)),
                            down)
            up = np.where(lin[:, a] < 0, s0[a] + band, np.inf)
            up = np.where(np.isfinite(hi[:, a]),
                          np.minimum(up, hi[:, a] * (1.0 - BRACKET_MARGIN)), up)
            for d, threshold in ((0, down), (1, up)):
                rows = np.flatnonzero(banded & np.isfinite(threshold))
                key = threshold[rows] if d == 0 else -threshold[rows]
                edge = boxed & ((box_lo[:, a] > 0.0) if d == 0 else np.isfinite(box_hi[:, a]))
                box_key = box_lo[edge, a] if d == 0 else -box_hi[edge, a]
                rows = np.concatenate([rows, box_units[edge]])
                key = np.concatenate([key, box_key])
                order = np.argsort(-key, kind="stable")
                keys.append(key[order])
                units.append(rows[order])
                starts.append(starts[-1] + len(rows))
        timed = boxed & (box_due <= steps)
        key = 0.5 - box_due[timed]
        order = np.argsort(-key, kind="stable")
        keys.append(key[order].astype(float))
        units.append(box_units[timed][order])
        starts.append(starts[-1] + int(timed.sum()))
        return cls(lin=np.ascontiguousarray(lin), const=const, n_open=n_open,
                   navk=np.ascontiguousarray(navk), navc=navc,
                   s_key=np.concatenate(keys), s_unit=np.concatenate(units).astype(np.int64),
                   s_start=np.array(starts, dtype=np.int64), init_pending=init_pending,
                   mmk0=mmk0, reserve=reserve, options=opt_data, steps=steps)


def _bracket_intervals(book: Book, tiers: np.ndarray, s0: np.ndarray, k: np.ndarray,
                       open_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per unit and asset, the marks between which no position changes bracket."""
    lo = np.zeros((book.n_units, len(s0)))
    hi = np.full((book.n_units, len(s0)), np.inf)
    size = np.abs(book.pos_qty)
    rows = (open_ & (tiers[book.pos_asset, 0, codes.TIER_CAP] < np.inf)
            & (book.pos_kind == codes.POS_LINEAR))  # an inverse notional does not move
    if rows.any():
        a, kk, q, u = book.pos_asset[rows], k[rows], size[rows], book.pos_unit[rows]
        below = np.where(kk > 0, tiers[a, np.maximum(kk - 1, 0), codes.TIER_CAP] / q, 0.0)
        above = tiers[a, kk, codes.TIER_CAP] / q
        np.maximum.at(lo, (u, a), below)
        np.minimum.at(hi, (u, a), above)
    return lo, hi


@dataclass
class ReplayResult:
    """Raw outputs of the replay of ``n`` paths.

    Attributes
    ----------
    path_f : ndarray, shape (n, codes.N_PF)
    path_i : ndarray, shape (n, codes.N_PI)
    min_price, final_price : ndarray, shape (n, A)
        Minimum and last closing mark price.
    marks : ndarray, shape (n_save, steps + 1, A)
        Closing marks of the first paths (see ``save_marks``).
    ev_i : ndarray, shape (n_events, codes.N_EI)
    ev_f : ndarray, shape (n_events, codes.N_EF)
    acct_liquidated, acct_bankrupt : ndarray, shape (n_accounts,)
        Number of paths on which each account was liquidated / bankrupt.
    corr_path, corr_account : ndarray of int64, shape (n_corr,)
    corr_delta : ndarray, shape (n_corr,)
        Account PnL corrections (see :meth:`account_pnl`).
    """

    path_f: np.ndarray
    path_i: np.ndarray
    min_price: np.ndarray
    final_price: np.ndarray
    marks: np.ndarray
    ev_i: np.ndarray
    ev_f: np.ndarray
    acct_liquidated: np.ndarray
    acct_bankrupt: np.ndarray
    corr_path: np.ndarray
    corr_account: np.ndarray
    corr_delta: np.ndarray

    def account_pnl(self, acct_navk: np.ndarray, s0: np.ndarray, start: int = 0,
                    stop: int | None = None) -> np.ndarray:
        """PnL of accounts ``start:stop`` on every path, shape (n, stop - start).

        An account's PnL is ``acct_navk @ (final marks - s0)`` (what its initial book is
        worth at the final marks) plus the corrections of its units that changed.
        """
        stop = acct_navk.shape[0] if stop is None else stop
        pnl = (self.final_price - s0) @ acct_navk[start:stop].T
        sel = (self.corr_account >= start) & (self.corr_account < stop)
        np.add.at(pnl, (self.corr_path[sel], self.corr_account[sel] - start),
                  self.corr_delta[sel])
        return pnl


def _coin_qty(book: Book, qty: np.ndarray) -> np.ndarray:
    """Coin exposure per position: ``qty`` (linear), ``qty / entry`` (inverse), 0 (an
    option: outside the linear forms)."""
    inverse = book.pos_kind == codes.POS_INVERSE
    out = np.divide(qty, book.pos_entry, out=np.array(qty, dtype=float), where=inverse)
    out[book.pos_kind >= codes.POS_CALL] = 0.0
    return out


def unit_nav_coefficients(book: Book) -> np.ndarray:
    """``navk`` such that an unchanged unit's NAV moves by ``navk @ dM``; shape (U, A)."""
    navk = book.unit_coll.copy()
    coin_qty = _coin_qty(book, book.pos_qty)
    np.add.at(navk, (book.pos_unit, book.pos_asset), coin_qty)
    return navk


def account_nav_coefficients(book: Book) -> np.ndarray:
    """``K`` such that an untouched account's NAV moves by ``K @ dM``; shape (n_acc, A)."""
    out = np.zeros((book.n_accounts, book.unit_coll.shape[1]))
    np.add.at(out, book.unit_account, unit_nav_coefficients(book))
    return out


def replay(exo: np.ndarray, depth_usd: np.ndarray, book: Book, rules: EngineRules,
           initial_events: int = 4096, save_marks: int = 0,
           index: BookIndex | None = None, rng_key: int = 0) -> ReplayResult:
    """Replay every path of ``exo`` over ``book``.

    Parameters
    ----------
    exo : ndarray, shape (n, steps + 1, A)
        Exogenous prices; ``exo[:, 0]`` are the initial prices, the same on every path.
    depth_usd : ndarray, shape (steps + 1, A)
        Depth per step, USD, positive (inf: no impact).
    book : Book
    rules : EngineRules
    initial_events : int
        Initial size of the event and correction buffers; they double as needed.
    save_marks : int
        Keep the closing mark of every step for the first ``save_marks`` paths.
    index : BookIndex, optional
        Precomputed with :meth:`BookIndex.build` at ``exo[0, 0]``.
    rng_key : int
        Key of the counter-based draws (whether a called account answers), in
        ``[0, 2**63)``; the runner derives one per chunk from its seed.

    Returns
    -------
    ReplayResult
    """
    exo = np.ascontiguousarray(exo, dtype=float)
    n_paths, _, n_assets = exo.shape
    steps = exo.shape[1] - 1
    if index is None:
        s0 = exo[0, 0] if n_paths else np.ones(n_assets)
        index = BookIndex.build(book, rules, s0, steps)
    opt_data = index.options
    if index.steps != steps or opt_data is None:
        if book.has_options:
            raise ValueError(f"the index was built for {index.steps} steps; the paths have "
                             f"{steps}")
        opt_data = option_context(book, rules.options, steps, exo[0, 0] if n_paths else
                                  np.ones(n_assets))
    path_f = np.zeros((n_paths, codes.N_PF))
    path_i = np.zeros((n_paths, codes.N_PI), dtype=np.int64)
    min_price = np.zeros((n_paths, n_assets))
    final_price = np.zeros((n_paths, n_assets))
    acct_liq = np.zeros(book.n_accounts, dtype=np.int64)
    acct_bank = np.zeros(book.n_accounts, dtype=np.int64)
    marks = np.zeros((min(save_marks, n_paths), exo.shape[1], n_assets))
    depth = np.ascontiguousarray(depth_usd, dtype=float)
    if not (depth > 0.0).all():  # the impact law divides by it (prepare_path_inputs keeps it)
        raise ValueError("depth_usd must be positive (inf: no impact) at every step")
    coll0 = np.ascontiguousarray(book.unit_coll)
    iparams = rules.iparams.copy()
    iparams[codes.IP_RNG_KEY] = rng_key
    ev_i_parts, ev_f_parts, ci_parts, cf_parts = [], [], [], []
    ev_cap = corr_cap = max(16, int(initial_events))
    first = 0
    while first < n_paths or not ev_i_parts:
        ev_i = np.empty((ev_cap, codes.N_EI), dtype=np.int64)
        ev_f = np.empty((ev_cap, codes.N_EF))
        corr_i = np.empty((corr_cap, 2), dtype=np.int64)
        corr_f = np.empty(corr_cap)
        n_ev, n_corr, done, overflow = replay_nb(
            exo, depth, rules.haircut, rules.tiers, rules.sigma, book.unit_usd, coll0,
            book.unit_pos_start, book.unit_account, book.pos_unit, book.pos_asset,
            book.pos_qty, book.pos_entry, book.pos_kind, index.lin, index.const, index.n_open,
            index.navk, index.navc, index.s_key, index.s_unit, index.s_start, index.init_pending,
            index.mmk0, index.reserve, rules.fparams, iparams, path_f, path_i, min_price,
            final_price, marks, acct_liq, acct_bank, ev_i, ev_f, corr_i, corr_f, first,
            opt_data.oc, opt_data.set_pos, opt_data.set_start, opt_data.opt_units)
        ev_i_parts.append(ev_i[:n_ev].copy())
        ev_f_parts.append(ev_f[:n_ev].copy())
        ci_parts.append(corr_i[:n_corr].copy())
        cf_parts.append(corr_f[:n_corr].copy())
        if done < n_paths:  # a buffer filled up: grow it, so the calls stay O(log rows)
            if overflow & codes.OVERFLOW_EVENTS:
                ev_cap *= 2
            if overflow & codes.OVERFLOW_CORRECTIONS:
                corr_cap *= 2
        first = done
    corr = np.concatenate(ci_parts)
    return ReplayResult(path_f, path_i, min_price, final_price, marks,
                        np.concatenate(ev_i_parts), np.concatenate(ev_f_parts), acct_liq,
                        acct_bank, corr[:, 0].copy(), corr[:, 1].copy(),
                        np.concatenate(cf_parts))
