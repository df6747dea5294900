"""The accounting of a replay rebuilt from its outputs alone: the book's conservation
identity (:func:`conservation_terms`) and every margin unit's ledger (:class:`Ledger`),
with the rules of ``docs/engine.md`` written out here rather than taken from the engine.
Used by ``tests/margin/test_invariants.py``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.book.build import Book
from simulator.config.scenario import Venue
from simulator.margin import ReplayResult, codes

from .venue_draws import SYMBOLS, maintenance

#: relative tolerance of every identity, on the gross flows it adds up (rounding is
#: ~1e-16 of them)
RTOL = 1e-9
#: hours per step of the random setups (funding intervals are multiples of it)
STEP_HOURS = 1.0

LIQ_KINDS = (codes.KIND_LIQUIDATION, codes.KIND_BACKSTOP)
FILL_KINDS = (codes.KIND_LIQUIDATION, codes.KIND_BACKSTOP, codes.KIND_REDUCE,
              codes.KIND_VAULT_SALE)
POSITION_INSTRUMENTS = (codes.INSTRUMENT_PERP, codes.INSTRUMENT_INVERSE)


def step_start_marks(exo: np.ndarray, close: np.ndarray, t: int, decay: float) -> np.ndarray:
    """Marks at the start of step ``t``, before any round: the exogenous price times the
    previous step's accumulated impact (``close / exo``), decayed once."""
    return exo[t] * np.exp(decay * np.log(close[t - 1] / exo[t - 1]))


@dataclass(frozen=True)
class Funding:
    """Funding every ``interval`` steps (0: off) at ``rate``, or at the premium."""

    interval: int
    rate: float
    premium: bool
    cap: float

    @classmethod
    def of(cls, venue: Venue, step_hours: float = STEP_HOURS) -> Funding:
        if venue.funding == "off" or venue.lending:
            return cls(0, 0.0, False, 0.0)
        return cls(round(venue.funding_interval_hours / step_hours), venue.funding_rate,
                   venue.funding == "premium", venue.funding_cap)

    def rates(self, t: int, marks: np.ndarray, exo_t: np.ndarray) -> np.ndarray | None:
        """Funding rate per asset paid at step ``t``, or None when none is due."""
        if self.interval == 0 or t % self.interval:
            return None
        if not self.premium:
            return np.full(len(marks), self.rate)
        return np.clip(self.rate + (marks / exo_t - 1.0), -self.cap, self.cap)


def path_events(res: ReplayResult, path: int) -> tuple[np.ndarray, np.ndarray]:
    on = res.ev_i[:, codes.EI_PATH] == path
    return res.ev_i[on], res.ev_f[on]


def book_scale(book: Book, prices: np.ndarray) -> float:
    """Gross USD size of the book at ``prices``: balances, collateral and both legs of
    every position (a yardstick for rounding)."""
    inverse = book.pos_kind == codes.POS_INVERSE
    mark = prices[book.pos_asset]
    per_contract = np.divide(mark, book.pos_entry, out=np.zeros(len(mark)), where=inverse)
    legs = np.abs(book.pos_qty) * np.where(inverse, 1.0 + per_contract, book.pos_entry + mark)
    return float(np.abs(book.unit_usd).sum() + (np.abs(book.unit_coll) @ prices).sum()
                 + legs.sum())


def conservation_terms(ev_i: np.ndarray, ev_f: np.ndarray, exo: np.ndarray,
                       close: np.ndarray, book: Book, decay: float, funding: Funding,
                       lending: bool, vault: bool = False) -> dict[str, float]:
    """The terms of the conservation identity of one path, from its events (in the
    engine's order), exogenous prices and closing marks, shape (steps + 1, A).

    Let ``X_a`` be the book's net coin exposure in asset ``a``: summed over every unit,
    its collateral ``coll[u, a]`` plus linear quantities plus inverse ``qty / entry``.
    Its NAV is ``sum_u usd_u + sum_a X_a M_a`` less constants (the positions' entry
    costs), so between two events the book's NAV moves by ``X . dM``, and at an event by
    what the event moves. Summed over accounts (``pnl`` leaves top-ups out):

    ``sum pnl = MTM - IMPACT - ADL - FEES + BAD_DEBT - FUNDING``   (derivatives)
    ``sum pnl = MTM + TRANSFER + BAD_DEBT``                         (lending)

    - ``MTM = sum over every mark change of X_a dM_a``: the exogenous moves and the
      impact of the book's own flow; ``X_a`` changes only at events in ``a`` (and
      inverse funding), whose mark is the mark of that moment;
    - ``IMPACT = sum qty (exec - mark) k`` over liquidation, backstop and reduce fills
      and collateral sales (``k = 1``; ``1 / exec`` for an inverse fill, whose ``qty`` is
      USD contracts and whose PnL is paid in coin, so the coin it leaves is
      ``qty / exec``): what the market took for taking the flow;
    - ``ADL`` the same sum over ADL fills: each counterparty closes at the bankruptcy
      price and gives up exactly the bad debt it covers (checked: ``ADL`` equals the
      ADL events' ``bad_debt``);
    - ``FEES`` the fees to the fund; ``BAD_DEBT`` the negative balances written off
      (paid by the fund, by ADL counterparties, or socialised);
    - ``FUNDING = sum over funding steps and assets of rate (QL_a M_a + QI_a)``, ``QL`` /
      ``QI`` the book's net linear / inverse quantities: what the book pays the venue
      (zero when longs and shorts balance);
    - lending: ``TRANSFER = sum qty mark`` over the liquidation events (debt repaid,
      collateral seized, both at the oracle price) = ``-(seized - repaid)``, the bonus
      (the protocol's fee included); a written-off asset debt also leaves the book's
      exposure (``bad_debt / mark`` coins).
    - ``vault`` (``vault_disposal = "gradual"``): the backstop vault's inventory counts in
      ``X``: a take-over moves exposure from a unit to the vault (``X`` unchanged, the
      unit's linear and inverse quantities leave ``QL`` / ``QI``: the vault holds coins,
      which pay no funding), and the vault's sales are fills like any other (their cost
      against the mark in ``IMPACT``). The vault's trading PnL, ``vault_pnl`` less the
      equity it kept (the take-overs' fees), then joins the accounts and the fund.

    With ``fund_end - fund0 = FEES - fund paid`` and ``BAD_DEBT = fund paid + ADL +
    socialised`` it reads, on a derivatives venue,
    ``sum pnl + (fund_end - fund0) + IMPACT + FUNDING = MTM + SOCIALISED``: what the
    accounts and the fund gain together is what the marks paid the book's exposure, less
    what the market took for immediacy and the net funding, plus the losses socialised
    away (which no account pays).
    """
    inverse = book.pos_kind == codes.POS_INVERSE
    n_assets = exo.shape[1]
    coin = np.divide(book.pos_qty, book.pos_entry, out=book.pos_qty.copy(), where=inverse)
    x = book.unit_coll.sum(axis=0) + np.bincount(book.pos_asset, coin, minlength=n_assets)
    ql = np.bincount(book.pos_asset, np.where(inverse, 0.0, book.pos_qty), minlength=n_assets)
    qi = np.bincount(book.pos_asset, np.where(inverse, book.pos_qty, 0.0), minlength=n_assets)
    last = exo[0].copy()
    t_ = dict(mtm=0.0, impact=0.0, adl=0.0, fees=0.0, bad_debt=0.0, funding=0.0,
              transfer=0.0, socialised=0.0, adl_covered=0.0, gross=0.0)

    def move(a: int, mark: float) -> None:
        t_["mtm"] += x[a] * (mark - last[a])
        t_["gross"] += abs(x[a]) * (abs(mark) + abs(last[a]))
        last[a] = mark

    steps = exo.shape[0] - 1
    for t in range(1, steps + 1):
        m0 = step_start_marks(exo, close, t, decay)
        for a in range(n_assets):
            move(a, m0[a])
        rate = funding.rates(t, m0, exo[t])
        if rate is not None:
            pay = rate * (ql * m0 + qi)
            t_["funding"] += pay.sum()
            t_["gross"] += np.abs(pay).sum()
            x -= qi * rate / m0
        for k in np.flatnonzero(ev_i[:, codes.EI_STEP] == t):
            kind, inst, a = (int(v) for v in ev_i[k, [codes.EI_KIND, codes.EI_INSTRUMENT,
                                                      codes.EI_ASSET]])
            qty, mark, exe = ev_f[k, [codes.EF_QTY, codes.EF_MARK, codes.EF_EXEC]]
            fee, bd = ev_f[k, codes.EF_FEE], ev_f[k, codes.EF_BAD_DEBT]
            if a >= 0:
                move(a, mark)
            t_["gross"] += abs(qty * mark) + abs(qty * exe) + fee + bd
            if kind == codes.KIND_SOCIALISED:
                t_["socialised"] += bd
                continue
            if kind == codes.KIND_TOP_UP:
                continue  # a deposit: left out of pnl
            if lending:
                assert kind == codes.KIND_LIQUIDATION
                t_["transfer"] += qty * mark
                t_["bad_debt"] += bd
                t_["fees"] += fee
                if a >= 0:
                    x[a] += qty
                    if inst == codes.INSTRUMENT_DEBT:
                        x[a] += bd / mark  # the rest of the debt, written off
                continue
            if a >= 0 and inst != codes.INSTRUMENT_DEBT:
                cost = qty * (exe - mark)
                kept = vault and kind == codes.KIND_BACKSTOP  # the exposure stays, the vault's
                if inst == codes.INSTRUMENT_INVERSE:
                    cost /= exe
                    x[a] += 0.0 if kept else qty / exe
                    qi[a] += qty
                else:
                    x[a] += 0.0 if kept else qty
                    if inst == codes.INSTRUMENT_PERP:
                        ql[a] += qty
                if kind == codes.KIND_ADL:
                    t_["adl"] += cost
                    t_["adl_covered"] += bd
                    continue
                assert kind in FILL_KINDS, kind
                t_["impact"] += cost
            t_["fees"] += fee
            t_["bad_debt"] += bd
        for a in range(n_assets):
            move(a, close[t, a])
    return t_


class Ledger:
    """Every unit's USD balance, collateral and positions on one path, moved by the
    events as ``docs/engine.md`` settles them, and its equity and maintenance at any
    marks (computed here from the venue's brackets, not by the engine)."""

    def __init__(self, book: Book, venue: Venue, haircut: np.ndarray,
                 prices: np.ndarray) -> None:
        self.book, self.venue, self.haircut, self.prices = book, venue, haircut, prices
        self.usd = book.unit_usd.copy()
        self.coll = book.unit_coll.copy()
        self.qty = book.pos_qty.copy()
        self.inverse = book.pos_kind == codes.POS_INVERSE
        self.pos_unit = book.pos_unit
        self.topups = np.zeros(book.n_units)
        key = [(int(u), int(a), int(k)) for u, a, k in
               zip(self.pos_unit, book.pos_asset, book.pos_kind, strict=True)]
        assert len(set(key)) == len(key), "one position per unit, asset and kind"
        self.position = {k: p for p, k in enumerate(key)}
        # rounding yardstick per unit: its gross size at the initial prices (a balance
        # rebuilt by sums is "0" within it)
        legs = np.abs(book.pos_qty) * np.where(self.inverse, 2.0, 2.0 * book.pos_entry)
        self.size0 = (np.abs(book.unit_usd) + np.abs(book.unit_coll) @ prices
                      + np.bincount(self.pos_unit, legs, minlength=book.n_units))
        self.flow = np.zeros(book.n_units)  # gross USD moved in and out of each unit

    def yardstick(self, u: int) -> float:
        """Rounding yardstick of unit ``u``: its initial size and what has flowed through."""
        return float(self.size0[u] + self.flow[u])

    def pos(self, u: int, a: int, inst: int) -> int:
        kind = codes.POS_INVERSE if inst == codes.INSTRUMENT_INVERSE else codes.POS_LINEAR
        return self.position[(u, a, kind)]

    def live(self, u: int) -> bool:
        lo, hi = self.book.unit_pos_start[u], self.book.unit_pos_start[u + 1]
        tol = RTOL * self.yardstick(u)
        return bool((self.qty[lo:hi] != 0.0).any() or self.usd[u] < -tol
                    or (self.coll[u] * self.prices < -tol).any())

    def equity_mm_scale(self, u: int, marks: np.ndarray) -> tuple[float, float, float]:
        """Equity, maintenance and a rounding yardstick of unit ``u`` at ``marks``."""
        coll = self.coll[u]
        weight = np.where(coll >= 0.0, 1.0 - self.haircut, 1.0)
        equity = self.usd[u] + float((coll * marks * weight).sum())
        scale = abs(self.usd[u]) + float(np.abs(coll * marks).sum())
        mm = 0.0
        for p in range(self.book.unit_pos_start[u], self.book.unit_pos_start[u + 1]):
            q = self.qty[p]
            if q == 0.0:
                continue
            a, entry, m = self.book.pos_asset[p], self.book.pos_entry[p], marks[
                self.book.pos_asset[p]]
            if self.inverse[p]:
                equity += q * (m / entry - 1.0)
                notional = abs(q)
                scale += abs(q) * (m / entry + 1.0)
            else:
                equity += q * (m - entry)
                notional = abs(q) * m
                scale += abs(q) * (m + entry)
            mm += maintenance(self.venue, SYMBOLS[a], notional)
        return equity, mm, scale + mm + self.yardstick(u)

    def nav(self, u: int, marks: np.ndarray) -> float:
        """Net asset value (no haircut) of unit ``u`` at ``marks``."""
        lo, hi = self.book.unit_pos_start[u], self.book.unit_pos_start[u + 1]
        q, entry = self.qty[lo:hi], self.book.pos_entry[lo:hi]
        m = marks[self.book.pos_asset[lo:hi]]
        inverse = self.inverse[lo:hi]
        ratio = np.divide(m, entry, out=np.ones(len(m)), where=inverse)
        value = np.where(inverse, q * (ratio - 1.0), q * (m - entry))
        return float(self.usd[u] + self.coll[u] @ marks + value.sum())

    def fund(self, rate: np.ndarray, marks: np.ndarray) -> None:
        """Funding: linear payers in USD, inverse ones in coin."""
        for p in np.flatnonzero(self.qty != 0.0):
            u, a = self.pos_unit[p], self.book.pos_asset[p]
            if self.inverse[p]:
                self.coll[u, a] -= self.qty[p] * rate[a] / marks[a]
                self.flow[u] += abs(self.qty[p] * rate[a])
            else:
                self.usd[u] -= self.qty[p] * marks[a] * rate[a]
                self.flow[u] += abs(self.qty[p] * marks[a] * rate[a])

    def fill(self, ei: np.ndarray, ef: np.ndarray) -> None:
        """Apply one liquidation, backstop, ADL, reduce, top-up or collateral event."""
        u, inst, a = int(ei[codes.EI_UNIT]), int(ei[codes.EI_INSTRUMENT]), int(ei[codes.EI_ASSET])
        qty, exe = ef[codes.EF_QTY], ef[codes.EF_EXEC]
        usd_qty = abs(qty) * (2.0 if inst == codes.INSTRUMENT_INVERSE
                              else abs(exe) + abs(ef[codes.EF_MARK]))
        self.flow[u] += usd_qty + ef[codes.EF_FEE] + ef[codes.EF_BAD_DEBT]
        if int(ei[codes.EI_KIND]) == codes.KIND_TOP_UP:
            self.usd[u] += qty
            self.topups[u] += qty
            return
        if self.venue.lending:
            self.lending_fill(u, inst, a, qty)
            return
        if inst in POSITION_INSTRUMENTS:
            p = self.pos(u, a, inst)
            c = -qty  # the closed quantity
            entry = self.book.pos_entry[p]
            if inst == codes.INSTRUMENT_INVERSE:
                self.coll[u, a] += c * (1.0 / entry - 1.0 / exe)
            else:
                self.usd[u] += c * (exe - entry)
            left = self.qty[p] - c
            # a full close sets the quantity to exactly 0
            self.qty[p] = 0.0 if abs(left) <= 1e-12 * abs(self.qty[p]) else left
        elif inst == codes.INSTRUMENT_COLLATERAL and a >= 0:
            sold = -qty  # a full liquidation sells all of it (buys back a coin debt)
            assert math.isclose(sold, self.coll[u, a], rel_tol=1e-9,
                                abs_tol=1e-12 * (1.0 + abs(sold))), (sold, self.coll[u, a])
            self.usd[u] += sold * exe
            self.coll[u, a] = 0.0
        self.usd[u] -= ef[codes.EF_FEE]
        if int(ei[codes.EI_KIND]) in LIQ_KINDS:
            self.usd[u] += ef[codes.EF_BAD_DEBT]  # the negative balance written off

    def lending_fill(self, u: int, inst: int, a: int, qty: float) -> None:
        """A lending liquidation event: liquidators repay debt (``qty > 0``) and seize
        collateral (``qty < 0``), USD (asset -1) or an asset; no fee leaves the unit (the
        protocol's share comes out of the bonus)."""
        if a < 0:
            self.usd[u] += qty
        elif inst == codes.INSTRUMENT_DEBT:
            self.qty[self.pos(u, a, codes.INSTRUMENT_PERP)] += qty
        else:
            assert inst == codes.INSTRUMENT_COLLATERAL and -qty <= self.coll[u, a] * (1 + 1e-12)
            self.coll[u, a] += qty

    def write_off(self, u: int) -> None:
        """A cleared lending unit's remaining debt is written off."""
        self.usd[u] = max(self.usd[u], 0.0)
        lo, hi = self.book.unit_pos_start[u], self.book.unit_pos_start[u + 1]
        self.qty[lo:hi] = 0.0


def check_units(ledger: Ledger, marks: np.ndarray, liquidated: set[int], where: tuple,
                seen: dict[str, int]) -> None:
    """The units ``liquidated`` at ``marks`` are exactly the live ones with ``E < MM``
    (units within rounding of ``E = MM`` are skipped)."""
    for u in range(ledger.book.n_units):
        if not ledger.live(u):
            assert u not in liquidated, (where, u, "not live")
            continue
        equity, mm, scale = ledger.equity_mm_scale(u, marks)
        if abs(equity - mm) <= RTOL * scale:
            continue
        seen["checked"] += 1
        assert (equity < mm) == (u in liquidated), (where, u, equity, mm)
