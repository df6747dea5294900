"""Venue and liquidity rules in the form the replay kernel takes.

:class:`EngineRules` is built from a scenario by :meth:`EngineRules.for_scenario`; this is
the one module of :mod:`simulator.margin` that reads configuration (venue, market,
liquidity, behaviour). Everything else in the package takes an :class:`EngineRules`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.config.behaviour import Behaviour
from simulator.config.market import Liquidity, Market
from simulator.config.scenario import Scenario
from simulator.config.venue import Venue
from simulator.config.venue_presets import bracket_cums
from simulator.margin import codes
from simulator.margin.option_setup import OptionRules

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
    mark_rule, collateral_rule : int
        The price (``codes.PRICE_*``) of an asset the book holds positions in, and of one it
        holds only as collateral (``venue.mark_price``, ``venue.collateral_price``).
    mark_ema_weight : float
        Weight of a step's close in the EMA of the basis book - index,
        ``1 - 0.5 ** (1 / mark_ema_halflife_steps)``.
    oracle_rule : tuple of float
        ``(heartbeat_steps, deviation, lag_steps)`` of an oracle that reads a lending
        venue's own book (published by the replay kernel); empty otherwise.
    """

    haircut: np.ndarray
    tiers: np.ndarray
    sigma: np.ndarray
    fparams: np.ndarray
    iparams: np.ndarray
    call_ratio: float = 0.0
    reserve_ratio: float = 0.0
    options: OptionRules = OptionRules()
    mark_rule: int = codes.PRICE_BOOK
    collateral_rule: int = codes.PRICE_BOOK
    mark_ema_weight: float = 0.0
    oracle_rule: tuple[float, ...] = ()

    @property
    def oracle_reads_book(self) -> bool:
        """Whether the oracle reads a lending venue's book (its index is published by the
        replay kernel)."""
        return len(self.oracle_rule) > 0

    @property
    def priced_by_oracle(self) -> bool:
        """Whether some asset may be valued at the oracle's index (not only the book)."""
        return (self.mark_rule != codes.PRICE_BOOK
                or self.collateral_rule != codes.PRICE_BOOK)

    @property
    def breaker(self) -> bool:
        """Whether the venue has a circuit breaker (``venue.circuit_breaker_band > 0``)."""
        return bool(self.fparams[codes.FP_BREAKER_BAND] > 0.0)

    @property
    def has_vault(self) -> bool:
        """Whether the venue has a backstop vault (a derivatives venue, ``backstop_ratio >
        0``): its runs report the vault's columns."""
        return bool(self.fparams[codes.FP_BACKSTOP] > 0.0 and not self.iparams[codes.IP_LENDING])

    @property
    def vault_gradual(self) -> bool:
        """Whether the backstop vault holds what it takes over and sells it gradually."""
        return bool(self.fparams[codes.FP_VAULT_SHARE] > 0.0)

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
        fparams[codes.FP_ADL_CAP] = venue.adl_max_notional_per_step_usd
        if venue.vault_disposal == "gradual" and venue.backstop_ratio > 0.0 and not venue.lending:
            fparams[codes.FP_VAULT_SHARE] = venue.vault_disposal_share
            fparams[codes.FP_VAULT_DEPTH_SHARE] = venue.vault_depth_share
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
        if venue.circuit_breaker_band > 0.0:
            fparams[codes.FP_BREAKER_BAND] = venue.circuit_breaker_band
            iparams[codes.IP_BREAKER_STEPS] = venue.circuit_breaker_steps
            iparams[codes.IP_BREAKER_HALT] = codes.HALT_NAMES.index(
                venue.circuit_breaker_halts)
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
                   reserve_ratio=behaviour.reserve_ratio, options=options,
                   mark_ema_weight=1.0 - 0.5 ** (1.0 / venue.mark_ema_halflife_steps),
                   **_price_rules(venue, market))

    @classmethod
    def for_scenario(cls, scenario: Scenario, full_scan: bool = False) -> EngineRules:
        """The rules of a whole scenario (venue, liquidity, assets, behaviour, step length)."""
        return cls.from_scenario(scenario.venue, scenario.liquidity, scenario.market,
                                 full_scan=full_scan, behaviour=scenario.behaviour,
                                 step_hours=scenario.simulation.dt_years * 365.0 * 24.0,
                                 iv_multiplier=iv_multipliers(scenario))


def _price_rules(venue: Venue, market: Market) -> dict:
    """``mark_rule``, ``collateral_rule`` and ``oracle_rule`` of :class:`EngineRules`: a
    lending venue with an oracle other than the exact one values everything at the index
    its oracle publishes from its own book (``docs/engine.md``, "Oracle, index and
    mark")."""
    oracle = market.oracle
    if venue.lending and not oracle.exact:
        return {"mark_rule": codes.PRICE_INDEX, "collateral_rule": codes.PRICE_INDEX,
                "oracle_rule": (float(oracle.heartbeat_steps), float(oracle.deviation),
                                float(oracle.lag_steps))}
    return {"mark_rule": codes.PRICE_NAMES.index(venue.mark_price),
            "collateral_rule": codes.PRICE_NAMES.index(venue.collateral_price)}


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


def iv_multipliers(scenario: Scenario) -> np.ndarray:
    """Implied-vol multiplier of every asset at every step, shape (steps + 1, A): the
    product of the ``vol`` shocks whose window holds the step (as the paths apply them to
    the returns of steps ``step .. step + duration_steps - 1``); 1 at step 0."""
    steps, symbols = scenario.simulation.steps, scenario.market.symbols
    out = np.ones((steps + 1, len(symbols)))
    for shock in scenario.shocks:
        if shock.kind != "vol":
            continue
        cols = slice(None) if shock.asset == "*" else symbols.index(shock.asset)
        out[shock.step:min(shock.step + shock.duration_steps, steps + 1), cols] *= shock.size
    return out
