"""Slow, obviously correct reference of the options in the margin engine (``docs/engine.md``,
"Options"): Black-Scholes from its closed form, the implied vol of the simulation, Deribit's
standard option maintenance and the risk matrix, evaluated exactly at the current marks (no
bounds, no boxes); and the expiry of options at the start of a step."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

CALL = 2
PUT = 3
#: Deribit standard maintenance, in units of the underlying per coin
MM_BASE = 0.075
#: the risk matrix's vol-down scenario never takes a vol below this (or the vol itself)
MIN_VOL = 0.01
IV_FLOOR = 1e-4


def norm_cdf(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def black_scholes(is_call: bool, spot: float, strike: float, tau: float, vol: float) -> float:
    """Black-Scholes price with zero rates; the intrinsic value when ``tau <= 0`` or the
    vol is 0; never below the intrinsic value."""
    intrinsic = max(spot - strike, 0.0) if is_call else max(strike - spot, 0.0)
    if tau <= 0.0 or vol <= 0.0 or spot <= 0.0:
        if is_call:
            return max(spot, 0.0) - strike if spot > strike else 0.0
        return strike - max(spot, 0.0) if spot < strike else 0.0
    sst = vol * math.sqrt(tau)
    d1 = (math.log(spot / strike) + 0.5 * sst * sst) / sst
    d2 = d1 - sst
    if is_call:
        return max(spot * norm_cdf(d1) - strike * norm_cdf(d2), intrinsic)
    return max(strike * norm_cdf(-d2) - spot * norm_cdf(-d1), intrinsic)


def bs_delta(is_call: bool, spot: float, strike: float, tau: float, vol: float) -> float:
    """Black-Scholes delta (zero rates); at or past expiry the intrinsic's slope (0.5 at
    the money)."""
    if tau <= 0.0 or vol <= 0.0 or spot <= 0.0:
        s = max(spot, 0.0)
        if is_call:
            return 1.0 if s > strike else (0.0 if s < strike else 0.5)
        return -1.0 if s < strike else (0.0 if s > strike else -0.5)
    sst = vol * math.sqrt(tau)
    d1 = (math.log(spot / strike) + 0.5 * sst * sst) / sst
    return norm_cdf(d1) if is_call else norm_cdf(d1) - 1.0


@dataclass
class NaiveOptions:
    """The options of a book and the rules that value and margin them.

    Attributes
    ----------
    tau0, iv0 : list of float
        Per position: years to expiry and implied vol at the start (unused for perps).
    s0, beta : list of float
        Per asset: the price at the start and ``spot_vol_beta``.
    ivmult : list of list of float
        ``[t][a]``: the implied-vol multiplier at step ``t``.
    step_years : float
    rule : str
        ``standard`` or ``risk_matrix``.
    fee_rate : float
        Liquidation fee on an option's underlying notional, at most its value.
    range_pct, n_buckets, vol_up, vol_down, ext_moves, ext_weight
        The risk matrix.
    """

    tau0: list[float]
    iv0: list[float]
    s0: list[float]
    beta: list[float]
    ivmult: list[list[float]]
    step_years: float
    rule: str = "standard"
    fee_rate: float = 0.002
    range_pct: float = 0.16
    n_buckets: int = 8
    vol_up: float = 0.30
    vol_down: float = 0.15
    ext_moves: list[float] = field(default_factory=lambda: [-0.66, -0.33, 0.5, 1.0, 2.0, 3.0,
                                                            4.0, 5.0])
    ext_weight: float = 0.35

    def tau(self, p: int, t: int) -> float:
        """Years left to expiry of option ``p`` at step ``t``."""
        return self.tau0[p] - t * self.step_years

    def settle_step(self, p: int) -> int:
        """The step at which option ``p`` expires: the first ``t >= 1`` with
        ``t >= tau0 / step_years - 1e-9``."""
        t = 1
        while t < self.tau0[p] / self.step_years - 1e-9:
            t += 1
        return t

    def vol(self, p: int, a: int, spot: float, t: int) -> float:
        """``iv0 (spot / S0) ** -beta x multiplier``, floored at 1e-4."""
        iv = self.iv0[p] * (spot / self.s0[a]) ** (-self.beta[a]) * self.ivmult[t][a]
        return iv if iv > IV_FLOOR else IV_FLOOR

    def value(self, kind: int, p: int, a: int, strike: float, spot: float, t: int) -> float:
        """Value of one option on one coin."""
        return black_scholes(kind == CALL, spot, strike, self.tau(p, t), self.vol(p, a, spot, t))

    def delta(self, kind: int, p: int, a: int, strike: float, spot: float, t: int) -> float:
        """Delta of one option."""
        return bs_delta(kind == CALL, spot, strike, self.tau(p, t), self.vol(p, a, spot, t))

    def standard_mm(self, kind: int, qty: float, value: float, spot: float) -> float:
        """Deribit's standard maintenance of one position in USD: short call
        ``|q| (0.075 S + V)``, short put ``|q| (max(0.075 S, 0.075 V) + V)``; 0 long."""
        if qty >= 0.0:
            return 0.0
        if kind == CALL:
            return abs(qty) * (MM_BASE * spot + value)
        return abs(qty) * (max(MM_BASE * spot, MM_BASE * value) + value)

    def matrix(self, book: Any, u: int, a: int, marks: list[float], t: int) -> float:
        """Risk-matrix margin of unit ``u``'s positions on asset ``a``: the worst loss over
        moves ``range x j / n`` (``j = -n..n``) with the vol up, same and down, and over
        the extended moves (vol up; perpetuals only as offsets) at ``ext_weight``; at least
        0."""
        spot = marks[a]
        held = [p for p in book.open_positions(u) if book.asset[p] == a]
        now = {p: self.value(book.kind[p], p, a, book.entry[p], spot, t)
               for p in held if book.kind[p] in (CALL, PUT)}

        def loss(move: float, shift: float, extended: bool) -> float:
            options = 0.0
            perps = 0.0
            for p in held:
                q = book.qty[p]
                if book.kind[p] in (CALL, PUT):
                    vol = self.vol(p, a, spot, t)
                    shocked = vol + shift if shift >= 0.0 else max(vol + shift, min(vol, MIN_VOL))
                    after = black_scholes(book.kind[p] == CALL, spot * (1.0 + move),
                                          book.entry[p], self.tau(p, t), shocked)
                    options += q * (now[p] - after)
                elif book.kind[p] == 0:
                    perps += -q * move * spot
            # an extended move counts the perpetuals only where they offset the options
            return options + (min(perps, 0.0) if extended else perps)

        worst = 0.0
        for shift in (self.vol_up, 0.0, -self.vol_down):
            for j in range(-self.n_buckets, self.n_buckets + 1):
                worst = max(worst, loss(self.range_pct * j / self.n_buckets, shift, False))
        for move in self.ext_moves:
            worst = max(worst, self.ext_weight * loss(move, self.vol_up, True))
        return worst

    def maintenance(self, book: Any, u: int, marks: list[float], t: int) -> float:
        """The option maintenance of unit ``u``: the sum of the standard rule over its short
        options, or the risk matrix of every asset it holds options on minus the bracket
        maintenance of its perpetuals on those assets (which the matrix replaces)."""
        opts = [p for p in book.open_positions(u) if book.kind[p] in (CALL, PUT)]
        if self.rule == "standard":
            total = 0.0
            for p in opts:
                a = book.asset[p]
                v = self.value(book.kind[p], p, a, book.entry[p], marks[a], t)
                total += self.standard_mm(book.kind[p], book.qty[p], v, marks[a])
            return total
        total = 0.0
        for a in sorted({book.asset[p] for p in opts}):
            total += self.matrix(book, u, a, marks, t)
            for p in book.open_positions(u):
                if book.asset[p] == a and book.kind[p] == 0:
                    total -= book.position_maintenance(p, marks)
        return total


class OptionExpiry:
    """Options expiring at a step pay their intrinsic value: a mixin of
    :class:`~.path.PathRun`, whose state it reads and updates."""

    def settle_options(self, t: int) -> None:
        """Options expiring at step ``t`` (``NaiveOptions.settle_step``), in position
        order, pay ``qty x`` their intrinsic value at the mark into their unit's USD."""
        book = self.book
        for p in range(len(book.qty)):
            if not book.is_option(p) or book.qty[p] == 0.0:
                continue
            if book.options.settle_step(p) != t:
                continue
            m = self.marks[book.asset[p]]
            k = book.entry[p]
            intrinsic = max(m - k, 0.0) if book.kind[p] == CALL else max(k - m, 0.0)
            book.usd[book.pos_unit[p]] += book.qty[p] * intrinsic
            book.qty[p] = 0.0
