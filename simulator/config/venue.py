"""The ``[venue]`` table: margin, liquidation and backstop rules, and venue presets.

A preset (``venue.preset``) fills the venue keys from a venue's published rules
(:mod:`simulator.config.venue_presets`); every key given explicitly in the scenario
overrides it, and the
per-symbol tables (``[venue.brackets]``, ``[venue.liquidation_thresholds]``) merge symbol by
symbol. An explicit ``maintenance_margin_rate`` drops the preset's brackets: a flat rate for
every symbol not in the scenario's own ``[venue.brackets]``, so a sweep over the rate works
the same with or without a preset.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simulator.config._table import Table, fmt_number
from simulator.config.venue_presets import PRESETS, Bracket, bracket_cums

__all__ = ["ADL_RANKINGS", "LIQUIDATION_MODES", "MARGIN_MODES", "VENUE_TYPES", "Venue",
           "read_venue"]

MARGIN_MODES = ("cross", "isolated")
LIQUIDATION_MODES = ("full", "partial", "incremental")
ADL_RANKINGS = ("pnl_margin_ratio", "profit_leverage", "bybit", "pro_rata",
                "leverage_pro_rata")
VENUE_TYPES = ("derivatives", "lending")
OPTION_MARGIN_RULES = ("standard", "risk_matrix")
FUNDING_MODES = ("off", "constant", "premium")
#: what a tripped circuit breaker pauses (``circuit_breaker_halts``)
BREAKER_HALTS = ("liquidations", "trading")
VAULT_DISPOSALS = ("instant", "gradual")
#: what ``venue.mark_price`` and ``venue.collateral_price`` may name
MARK_PRICES = ("book", "index", "median")
COLLATERAL_PRICES = ("book", "index")
#: relative tolerance when a user-given ``cum`` is checked against the continuity rule
CUM_RTOL = 1e-9


@dataclass(frozen=True)
class Venue:
    """Margin and liquidation rules (``[venue]``).

    Attributes
    ----------
    preset : str or None
        Name of the preset the values came from.
    type : str
        ``derivatives`` (perpetuals with maintenance margin) or ``lending`` (a lending
        market: health factor, close factor, liquidation bonus).
    margin_mode : str
        Default margin mode of accounts, ``cross`` or ``isolated``.
    maintenance_margin_rate : float
        Flat maintenance rate for symbols without a bracket table.
    brackets : tuple of (str, tuple of Bracket)
        Maintenance brackets per symbol; ``"*"`` for any other symbol.
    liquidation : str
        ``full``, ``partial`` (to ``target`` x maintenance) or ``incremental`` (``step_*``).
    step_fraction, step_min_usd, step_max_usd, full_below_usd : float
        Incremental liquidation: each round closes ``clamp(step_fraction x notional,
        step_min_usd, step_max_usd)`` of notional, all of it at or below ``full_below_usd``.
    backstop_ratio : float
        Below ``backstop_ratio`` x maintenance a backstop vault takes the account over at
        the mark (0 = no vault).
    liquidation_thresholds : tuple of (str, float)
        Lending venues: liquidation threshold per collateral symbol (``"*"`` for others);
        a symbol without one uses ``1 - haircut``.
    close_factor, full_close_below_hf, full_close_below_usd, liquidation_bonus, protocol_share
        Lending venues: share of the debt one liquidation may repay, and below which
        health factor, or collateral / debt value in USD, it may repay all; bonus on the
        seized collateral; protocol's share of the bonus (paid to the fund).
    funding, funding_rate, funding_interval_hours, funding_cap
        Perpetual funding: ``off``, ``constant`` (``funding_rate`` per interval, longs pay
        shorts when positive) or ``premium`` (``funding_rate`` plus the mark's premium over
        the index, clamped to ``funding_cap``), paid every ``funding_interval_hours``.
    option_margin : str
        Maintenance of option positions: ``standard`` (Deribit's per-option rule) or
        ``risk_matrix`` (worst loss of the unit's options and perpetuals on each
        underlying over price x vol scenarios, ``risk_matrix_range_pct`` wide).
    risk_matrix_range_pct : float
        Largest price move of the risk matrix (Deribit BTC: 0.16).
    option_liquidation_fee_rate : float
        Liquidation fee on a closed option, as a share of its underlying notional, never
        more than the option's value.
    adl, adl_ranking : bool, str
        Auto-deleveraging of the opposite side in profit, and who goes first:
        ``pnl_margin_ratio`` (Binance), ``profit_leverage`` (Hyperliquid), ``bybit`` (PnL
        percentage x effective leverage), or the quantity shared by all candidates,
        ``pro_rata`` (by size) or ``leverage_pro_rata`` (by size x leverage).
    adl_max_notional_per_step_usd : float
        Most ADL notional per step across the venue, USD (inf: no cap); what the cap
        leaves is socialised.
    circuit_breaker_band, circuit_breaker_steps, circuit_breaker_halts
        Circuit breaker (``docs/engine.md``, "Circuit breaker"): when a step moves a mark
        more than the band (a fraction; 0 = no breaker) from the previous close, that step
        and the ``circuit_breaker_steps - 1`` after it run no margin calls and no
        liquidations (``"liquidations"``), or do not trade at all (``"trading"``).
    vault_disposal : str
        What the backstop vault does with what it takes over: ``instant`` (closed at the
        mark, without market impact) or ``gradual`` (held as inventory and sold through
        the market, ``vault_disposal_share`` of the quantity taken over per step, at most
        ``vault_depth_share`` of the step's depth per asset).
    vault_disposal_share, vault_depth_share : float
        Gradual disposal: share of the inventory taken over sold per step, in (0, 1]; cap
        per step and asset as a share of that step's ``depth_usd`` (notional at the mark).
    mark_price : str
        What liquidation tests, valuation and ADL price an asset with positions at:
        ``book`` (the exogenous price times the venue's impact), ``index`` (the oracle's,
        ``[market.oracle]``) or ``median`` (of index, book and index + an EMA of the basis
        book - index, ``mark_ema_halflife_steps``).
    mark_ema_halflife_steps : float
        Half-life in steps of the EMA of ``median``'s basis.
    collateral_price : str
        The price of an asset the book holds only as collateral: ``book`` or ``index``.
    """

    preset: str | None = None
    type: str = "derivatives"
    margin_mode: str = "cross"
    maintenance_margin_rate: float = 0.005
    brackets: tuple[tuple[str, tuple[Bracket, ...]], ...] = ()
    liquidation: str = "full"
    target: float = 1.25
    step_fraction: float = 0.2
    step_min_usd: float = 0.0
    step_max_usd: float = math.inf
    full_below_usd: float = 0.0
    backstop_ratio: float = 0.0
    liquidation_fee_rate: float = 0.0125
    insurance_fund_usd: float = 1.0e6
    adl: bool = True
    adl_ranking: str = "pnl_margin_ratio"
    max_cascade_rounds: int = 100
    liquidation_thresholds: tuple[tuple[str, float], ...] = ()
    close_factor: float = 0.5
    full_close_below_hf: float = 0.95
    full_close_below_usd: float = 2000.0
    liquidation_bonus: float = 0.05
    protocol_share: float = 0.1
    funding: str = "off"
    funding_rate: float = 0.0001
    funding_interval_hours: float = 8.0
    funding_cap: float = 0.0075
    option_margin: str = "standard"
    risk_matrix_range_pct: float = 0.16
    option_liquidation_fee_rate: float = 0.002
    adl_max_notional_per_step_usd: float = math.inf
    circuit_breaker_band: float = 0.0
    circuit_breaker_steps: int = 5
    circuit_breaker_halts: str = "liquidations"
    vault_disposal: str = "instant"
    vault_disposal_share: float = 0.2
    vault_depth_share: float = 0.1
    mark_price: str = "book"
    mark_ema_halflife_steps: float = 10.0
    collateral_price: str = "book"

    @property
    def lending(self) -> bool:
        """Whether this is a lending market."""
        return self.type == "lending"

    def brackets_for(self, symbol: str) -> tuple[Bracket, ...]:
        """Maintenance brackets of ``symbol`` (one flat bracket when none is set).

        On a lending venue there is no maintenance margin: one bracket at rate 0.
        """
        if self.lending:
            return (Bracket(math.inf, 0.0),)
        table = dict(self.brackets)
        if symbol in table:
            return table[symbol]
        if "*" in table:
            return table["*"]
        return (Bracket(math.inf, self.maintenance_margin_rate),)

    def collateral_weight(self, symbol: str, haircut: float) -> float:
        """Share of a collateral's mark value that counts toward margin.

        ``1 - haircut`` on a derivatives venue; the liquidation threshold on a lending one.
        """
        if self.lending:
            table = dict(self.liquidation_thresholds)
            if symbol in table:
                return table[symbol]
            if "*" in table:
                return table["*"]
        return 1.0 - haircut


def read_venue(t: Table) -> Venue:
    """Read ``[venue]``, filling the keys it leaves out from its preset."""
    preset = t.string("preset", None)
    explicit_mmr = t.has("maintenance_margin_rate")
    if preset is not None:
        if preset not in PRESETS:
            raise t.error("preset", f"{preset!r} is not a known venue; valid: {', '.join(PRESETS)}")
        for key, value in PRESETS[preset].items():
            if key == "brackets" and explicit_mmr:
                continue  # an explicit flat rate replaces the preset's brackets
            if key in ("brackets", "liquidation_thresholds") and isinstance(t.data.get(key),
                                                                             dict):
                # per-symbol tables merge: the scenario's symbols replace the preset's
                t.data[key] = {**_plain(value), **t.data[key]}
                continue
            t.data.setdefault(key, _plain(value))
    d = Venue()
    venue_type = t.string("type", d.type, choices=VENUE_TYPES)
    lending = venue_type == "lending"
    liquidation = t.string("liquidation", d.liquidation, choices=LIQUIDATION_MODES)
    step_min = t.number("step_min_usd", d.step_min_usd, lo=0.0)
    adl = t.boolean("adl", False if lending else d.adl)
    if lending and adl:
        raise t.error("adl", "a lending venue has no auto-deleveraging; set adl = false "
                      "(uncovered bad debt is socialised)")
    funding = t.string("funding", "off", choices=FUNDING_MODES)
    if lending and funding != "off":
        raise t.error("funding", "funding is paid on perpetuals; a lending venue has none "
                      "(set funding = \"off\")")
    vault = _read_vault(t, lending)
    return Venue(
        preset=preset,
        type=venue_type,
        margin_mode=t.string("margin_mode", d.margin_mode, choices=MARGIN_MODES),
        maintenance_margin_rate=t.number("maintenance_margin_rate", d.maintenance_margin_rate,
                                         lo=0.0, hi=1.0, hi_open=True),
        brackets=_read_bracket_tables(t),
        liquidation=liquidation,
        target=t.number("target", d.target, lo=1.0, lo_open=True, hi=100.0),
        step_fraction=t.number("step_fraction", d.step_fraction, lo=0.0, lo_open=True, hi=1.0),
        step_min_usd=step_min,
        step_max_usd=t.number("step_max_usd", d.step_max_usd, lo=max(step_min, 0.0),
                              lo_open=True, allow_inf=True),
        full_below_usd=t.number("full_below_usd", d.full_below_usd, lo=0.0, allow_inf=True),
        backstop_ratio=t.number("backstop_ratio", d.backstop_ratio, lo=0.0, hi=1.0,
                                hi_open=True),
        liquidation_fee_rate=t.number("liquidation_fee_rate", d.liquidation_fee_rate,
                                      lo=0.0, hi=1.0),
        insurance_fund_usd=t.number("insurance_fund_usd", d.insurance_fund_usd, lo=0.0),
        adl=adl,
        adl_ranking=t.string("adl_ranking", d.adl_ranking, choices=ADL_RANKINGS),
        max_cascade_rounds=t.integer("max_cascade_rounds", d.max_cascade_rounds, lo=1,
                                     hi=1_000_000),
        liquidation_thresholds=_read_thresholds(t),
        close_factor=t.number("close_factor", d.close_factor, lo=0.0, lo_open=True, hi=1.0),
        full_close_below_hf=t.number("full_close_below_hf", d.full_close_below_hf, lo=0.0,
                                     hi=1.0),
        full_close_below_usd=t.number("full_close_below_usd", d.full_close_below_usd, lo=0.0),
        liquidation_bonus=t.number("liquidation_bonus", d.liquidation_bonus, lo=0.0, hi=1.0),
        protocol_share=t.number("protocol_share", d.protocol_share, lo=0.0, hi=1.0),
        funding=funding,
        funding_rate=t.number("funding_rate", d.funding_rate, lo=-1.0, hi=1.0),
        funding_interval_hours=t.number("funding_interval_hours", d.funding_interval_hours,
                                        lo=0.0, lo_open=True),
        funding_cap=t.number("funding_cap", d.funding_cap, lo=0.0, hi=1.0),
        option_margin=t.string("option_margin", d.option_margin, choices=OPTION_MARGIN_RULES),
        risk_matrix_range_pct=t.number("risk_matrix_range_pct", d.risk_matrix_range_pct,
                                       lo=0.0, lo_open=True, hi=0.9),
        option_liquidation_fee_rate=t.number("option_liquidation_fee_rate",
                                             d.option_liquidation_fee_rate, lo=0.0, hi=1.0),
        adl_max_notional_per_step_usd=t.number("adl_max_notional_per_step_usd",
                                               d.adl_max_notional_per_step_usd, lo=0.0,
                                               lo_open=True, allow_inf=True),
        circuit_breaker_band=t.number("circuit_breaker_band", d.circuit_breaker_band, lo=0.0),
        circuit_breaker_steps=t.integer("circuit_breaker_steps", d.circuit_breaker_steps,
                                        lo=1, hi=1_000_000),
        circuit_breaker_halts=t.string("circuit_breaker_halts", d.circuit_breaker_halts,
                                       choices=BREAKER_HALTS),
        **vault,
        **_read_prices(t, lending),
    )


def _read_vault(t: Table, lending: bool) -> dict[str, Any]:
    """The backstop vault's disposal keys (``vault_*``): ``gradual`` needs a backstop
    (``backstop_ratio > 0``) on a derivatives venue."""
    d = Venue()
    disposal = t.string("vault_disposal", d.vault_disposal, choices=VAULT_DISPOSALS)
    if disposal == "gradual":
        if lending:
            raise t.error("vault_disposal", "a lending venue has no backstop vault; set "
                          "vault_disposal = \"instant\"")
        if not t.number("backstop_ratio", d.backstop_ratio) > 0.0:
            raise t.error("vault_disposal", "\"gradual\" disposal needs a backstop vault: set "
                          "backstop_ratio above 0, or vault_disposal = \"instant\"")
    return {
        "vault_disposal": disposal,
        "vault_disposal_share": t.number("vault_disposal_share", d.vault_disposal_share,
                                         lo=0.0, lo_open=True, hi=1.0),
        "vault_depth_share": t.number("vault_depth_share", d.vault_depth_share, lo=0.0,
                                      lo_open=True),
    }


def _read_prices(t: Table, lending: bool) -> dict[str, Any]:
    """``mark_price``, ``mark_ema_halflife_steps`` and ``collateral_price``; a lending venue
    prices everything at its oracle (``[market.oracle]``): only the defaults."""
    d = Venue()
    out = {"mark_price": t.string("mark_price", d.mark_price, choices=MARK_PRICES),
           "mark_ema_halflife_steps": t.number("mark_ema_halflife_steps",
                                               d.mark_ema_halflife_steps, lo=0.0, lo_open=True,
                                               hi=1e9),
           "collateral_price": t.string("collateral_price", d.collateral_price,
                                        choices=COLLATERAL_PRICES)}
    if lending:
        for key in ("mark_price", "collateral_price"):
            if out[key] != "book":
                raise t.error(key, f"{out[key]!r}: a lending venue values debts and collateral "
                              "at its oracle, which reads its market (set the oracle's rule in "
                              "[market.oracle]); leave it \"book\"")
    return out


def _plain(value: Any) -> Any:
    """A preset value as plain TOML-like data (dicts, lists, numbers)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Bracket):
        return {"max_notional_usd": value.max_notional_usd, "rate": value.rate,
                "max_leverage": value.max_leverage}
    return value


def _read_thresholds(t: Table) -> tuple[tuple[str, float], ...]:
    sub = t.table("liquidation_thresholds", {})
    out = []
    for sym in list(sub.data):
        out.append((sym, sub.number(sym, lo=0.0, lo_open=True, hi=1.0)))
    return tuple(out)


def _read_bracket_tables(t: Table) -> tuple[tuple[str, tuple[Bracket, ...]], ...]:
    raw = t.raw("brackets", {})
    if not isinstance(raw, dict):
        raise t.error("brackets", "expected a table of symbol = [ {max_notional_usd, rate, "
                      "max_leverage}, ... ]")
    out = []
    for sym, rows in raw.items():
        out.append((sym, _read_brackets(t, sym, rows)))
    return tuple(out)


def _read_brackets(t: Table, sym: str, rows: object) -> tuple[Bracket, ...]:
    key = f"brackets.{sym}"
    if not isinstance(rows, list) or not rows:
        raise t.error(key, "expected a non-empty array of brackets "
                      "{max_notional_usd = ..., rate = ..., max_leverage = ...}")
    out: list[Bracket] = []
    cums: list[float | None] = []
    for i, row in enumerate(rows):
        b = Table(row, t.source, t.key(f"{key}[{i}]"))
        last = i == len(rows) - 1
        if last:
            cap = b.number("max_notional_usd", math.inf, lo=0.0, lo_open=True, allow_inf=True)
        else:
            cap = b.number("max_notional_usd", lo=0.0, lo_open=True)
        if out and cap <= out[-1].max_notional_usd:
            raise b.error("max_notional_usd", f"must be above the previous bracket's "
                          f"{fmt_number(out[-1].max_notional_usd)}")
        rate = b.number("rate", lo=0.0, hi=1.0, hi_open=True)
        if out and rate < out[-1].rate:
            raise b.error("rate", f"must not be below the previous bracket's "
                          f"{fmt_number(out[-1].rate)} (the requirement must grow with the "
                          "notional)")
        lev = b.number("max_leverage", math.inf, lo=1.0, allow_inf=True)
        cums.append(b.number("cum", None) if b.has("cum") else None)
        b.finish()
        out.append(Bracket(cap, rate, lev))
    if not math.isinf(out[-1].max_notional_usd):
        out[-1] = Bracket(math.inf, out[-1].rate, out[-1].max_leverage)
    for i, (given, expected) in enumerate(zip(cums, bracket_cums(tuple(out)), strict=True)):
        if given is not None and not math.isclose(given, expected, rel_tol=CUM_RTOL,
                                                   abs_tol=1e-6):
            raise t.error(f"{key}[{i}].cum", f"{fmt_number(given)} breaks the continuity of the "
                          f"requirement; the brackets give {fmt_number(expected)}")
    return tuple(out)
