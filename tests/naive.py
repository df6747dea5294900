"""Slow, literal pure-Python reference of the margin replay engine.

This module implements ``docs/engine.md`` step by step with plain Python floats, lists and
loops (``math`` only). It exists so that tests can compare the fast Numba engine against an
implementation that is easy to read and check by hand. Nothing is cached: equity,
maintenance, notional and wallet are recomputed from the positions every time they are
needed, and every operation happens in the order the specification gives.

Covered: tiered maintenance brackets, full / partial / incremental liquidation, the
backstop vault, the insurance fund, ADL (both rankings) and socialised losses on a
derivatives venue, the lending round (close factor, bonus, protocol share, bad-debt
write-off) on a lending venue, and the behaviour between liquidations on a derivatives
venue: perpetual funding (constant or premium) and margin calls answered by a top-up or a
reduction after a delay, with a counter-based (splitmix64) answer draw. Positions are linear
or inverse (coin-margined: ``qty`` in USD contracts, constant notional ``|qty|``, PnL paid
into the coin balance, which may go negative: a coin debt, counted without haircut and
bought back in a full liquidation; ADL only among positions of the same kind).

Input arrays (NumPy arrays or nested sequences) are converted to Python lists of floats or
ints on entry; nothing else from NumPy is used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .naive_options import CALL, PUT, NaiveOptions

__all__ = ["draw", "naive_replay", "splitmix64"]

MODES = ("full", "partial", "incremental")
ADL_RANKINGS = ("pnl_margin_ratio", "profit_leverage")
CALL_ACTIONS = ("top_up", "reduce")
#: Position kinds (``pos_kind``): a linear perpetual (``qty`` in coins, PnL in USD) or an
#: inverse (coin-margined) one (``qty`` in USD contracts, PnL paid in the coin).
LINEAR = 0
INVERSE = 1
#: 64-bit wrapping arithmetic on Python ints.
MASK64 = 0xFFFFFFFFFFFFFFFF
#: Relative tolerance when given bracket ``cum`` values are checked against the continuity
#: rule of the specification.
CUM_RTOL = 1e-9


# ---------------------------------------------------------------------------------------
# Input conversion
# ---------------------------------------------------------------------------------------


def _floats1(values: Any) -> list[float]:
    """Convert a 1-D array-like to a list of Python floats.

    Parameters
    ----------
    values : array_like
        One-dimensional numeric input.

    Returns
    -------
    list of float
        The values as Python floats.
    """
    return [float(v) for v in values]


def _ints1(values: Any) -> list[int]:
    """Convert a 1-D array-like to a list of Python ints.

    Parameters
    ----------
    values : array_like
        One-dimensional integer input.

    Returns
    -------
    list of int
        The values as Python ints.
    """
    return [int(v) for v in values]


def _floats2(values: Any) -> list[list[float]]:
    """Convert a 2-D array-like to a list of lists of Python floats.

    Parameters
    ----------
    values : array_like
        Two-dimensional numeric input.

    Returns
    -------
    list of list of float
        The values as nested Python lists.
    """
    return [_floats1(row) for row in values]


def _floats3(values: Any) -> list[list[list[float]]]:
    """Convert a 3-D array-like to nested lists of Python floats.

    Parameters
    ----------
    values : array_like
        Three-dimensional numeric input.

    Returns
    -------
    list of list of list of float
        The values as nested Python lists.
    """
    return [_floats2(block) for block in values]


def _sign(x: float) -> float:
    """Return the sign of ``x`` as a float.

    Parameters
    ----------
    x : float
        Any number.

    Returns
    -------
    float
        ``1.0`` if ``x > 0``, ``-1.0`` if ``x < 0``, else ``0.0``.
    """
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    return 0.0


def splitmix64(z: int) -> int:
    """Steele, Lea and Flood's splitmix64 finaliser, in 64-bit wrapping arithmetic.

    Parameters
    ----------
    z : int
        The counter, taken modulo ``2**64``.

    Returns
    -------
    int
        The mixed value, in ``[0, 2**64)``.
    """
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    return z


def draw(rng_key: int, path: int, u: int) -> float:
    """The answer draw of unit ``u`` on a path: a uniform number on ``[0, 1)``.

    ``draw(path, u) = (splitmix64(rng_key + path * 2**32 + u) >> 11) * 2**-53``, the
    counter taken modulo ``2**64``.

    Parameters
    ----------
    rng_key : int
        Key of the replay's draws.
    path : int
        The path's index in the replay (0-based).
    u : int
        Unit index.

    Returns
    -------
    float
        The draw (exact: the top 53 bits of the mixed counter, scaled by ``2**-53``).
    """
    z = splitmix64((rng_key + path * 2**32 + u) & MASK64)
    return float(z >> 11) * 2.0**-53


def _check_brackets(
    cap: list[list[float]], rate: list[list[float]], cum: list[list[float]]
) -> None:
    """Check bracket tables against the rules of the specification.

    Every asset has the same number ``K >= 1`` of rows; the last cap is ``+inf``; caps
    do not decrease; ``cum[a][0] = 0`` and, wherever the previous cap is finite,
    ``cum[a][k] = cum[a][k-1] + cap[a][k-1] * (rate[a][k] - rate[a][k-1])`` (to a relative
    tolerance ``CUM_RTOL``). Rows after the first infinite cap are padding (repeats of the
    last row) and are not checked against the continuity rule.

    Parameters
    ----------
    cap, rate, cum : list of list of float
        Bracket tables, ``[a][k]``.

    Raises
    ------
    ValueError
        When a table breaks one of the rules.
    """
    if not (len(cap) == len(rate) == len(cum)):
        raise ValueError("cap, rate and cum must have one row per asset")
    for a in range(len(cap)):
        n_rows = len(cap[a])
        if n_rows == 0 or len(rate[a]) != n_rows or len(cum[a]) != n_rows:
            raise ValueError(f"asset {a}: cap, rate and cum need the same K >= 1 rows")
        if not math.isinf(cap[a][-1]):
            raise ValueError(f"asset {a}: the last bracket cap must be +inf")
        if cum[a][0] != 0.0:
            raise ValueError(f"asset {a}: cum[0] must be 0, got {cum[a][0]!r}")
        for k in range(1, n_rows):
            if cap[a][k] < cap[a][k - 1]:
                raise ValueError(f"asset {a}: bracket caps must not decrease")
            if math.isinf(cap[a][k - 1]):
                continue  # padding after the last real bracket
            expected = cum[a][k - 1] + cap[a][k - 1] * (rate[a][k] - rate[a][k - 1])
            if not math.isclose(cum[a][k], expected, rel_tol=CUM_RTOL, abs_tol=1e-9):
                raise ValueError(
                    f"asset {a}: cum[{k}] = {cum[a][k]!r} breaks continuity (expected {expected!r})"
                )


# ---------------------------------------------------------------------------------------
# The venue
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Venue:
    """Venue and impact parameters of the replay (see ``naive_replay`` for each).

    Attributes
    ----------
    lending : bool
        True for a lending venue (lending rounds), False for a derivatives venue.
    mode : str
        ``"full"``, ``"partial"`` or ``"incremental"``.
    fee_rate, target : float
        Liquidation fee rate and partial-liquidation target ratio.
    step_fraction, step_min_usd, step_max_usd, full_below_usd : float
        Incremental-mode parameters.
    backstop_ratio : float
        Backstop vault threshold as a multiple of maintenance (0 = no vault).
    fund0 : float
        Initial insurance fund.
    adl : bool
        Whether ADL covers uncovered deficits (derivatives venues only).
    adl_ranking : str
        ``"pnl_margin_ratio"`` or ``"profit_leverage"``.
    max_rounds : int
        Maximum cascade rounds per step.
    alpha, decay : float
        Impact exponent (0 = none) and per-step decay of the accumulated log impact.
    close_factor, full_close_below_hf, full_close_below_usd, bonus, protocol_share : float
        Lending-venue parameters.
    """

    lending: bool
    mode: str
    fee_rate: float
    target: float
    step_fraction: float
    step_min_usd: float
    step_max_usd: float
    full_below_usd: float
    backstop_ratio: float
    fund0: float
    adl: bool
    adl_ranking: str
    max_rounds: int
    alpha: float
    decay: float
    close_factor: float
    full_close_below_hf: float
    full_close_below_usd: float
    bonus: float
    protocol_share: float


@dataclass(frozen=True)
class _Behaviour:
    """Funding and margin-call parameters of the replay (see ``naive_replay`` for each).

    Attributes
    ----------
    funding_interval : int
        Funding every ``funding_interval`` steps (0 = off).
    funding_rate : float
        Rate ``phi`` per interval.
    funding_premium : bool
        Premium mode (``phi`` plus the mark's premium over the index, capped) instead of
        constant.
    funding_cap : float
        Cap ``c`` of the premium rate.
    call_ratio : float
        Margin-call ratio ``kappa`` (0 = off).
    call_prob : float
        Answer probability ``pi``.
    call_delay : int
        Delay ``d`` in steps between a call and its answer.
    call_action : str
        ``"top_up"`` or ``"reduce"``.
    call_target : float
        Target ratio ``tau`` of an answer.
    reserve : list of float
        USD each unit may deposit when it answers (``top_up``).
    rng_key : int
        Key of the answer draws.
    """

    funding_interval: int
    funding_rate: float
    funding_premium: bool
    funding_cap: float
    call_ratio: float
    call_prob: float
    call_delay: int
    call_action: str
    call_target: float
    reserve: list[float]
    rng_key: int


# ---------------------------------------------------------------------------------------
# The book
# ---------------------------------------------------------------------------------------


class _Book:
    """Mutable margin book: units, their USD, collateral and positions.

    Parameters
    ----------
    haircut : list of float
        Collateral haircut per asset.
    cap, rate, cum : list of list of float
        Maintenance bracket tables, ``[a][k]``.
    usd : list of float
        USD balance per unit (copied).
    coll : list of list of float
        Collateral amounts per unit and asset (copied).
    pos_unit : list of int
        Unit of each position.
    pos_asset : list of int
        Asset of each position.
    pos_qty : list of float
        Signed quantity of each position (copied).
    pos_entry : list of float
        Entry price of each position.
    pos_kind : list of int, optional
        Kind of each position: ``LINEAR`` (0) or ``INVERSE`` (1); all linear when None.
    """

    def __init__(
        self,
        haircut: list[float],
        cap: list[list[float]],
        rate: list[list[float]],
        cum: list[list[float]],
        usd: list[float],
        coll: list[list[float]],
        pos_unit: list[int],
        pos_asset: list[int],
        pos_qty: list[float],
        pos_entry: list[float],
        pos_kind: list[int] | None = None,
        options: NaiveOptions | None = None,
    ) -> None:
        self.options = options
        self.t = 0  # the step: options are valued at it
        self.n_assets = len(haircut)
        self.n_units = len(usd)
        self.haircut = list(haircut)
        self.cap = cap
        self.rate = rate
        self.cum = cum
        self.usd = list(usd)
        self.coll = [list(row) for row in coll]
        self.pos_unit = list(pos_unit)
        self.asset = list(pos_asset)
        self.qty = list(pos_qty)
        self.entry = list(pos_entry)
        self.kind = [LINEAR] * len(self.qty) if pos_kind is None else list(pos_kind)
        # Position indices of each unit, in position order (the book's static structure).
        self.unit_positions: list[list[int]] = [[] for _ in range(self.n_units)]
        for p, u in enumerate(self.pos_unit):
            self.unit_positions[u].append(p)

    def open_positions(self, u: int) -> list[int]:
        """Return the open positions (``qty != 0``) of unit ``u`` in position order.

        Parameters
        ----------
        u : int
            Unit index.

        Returns
        -------
        list of int
            Position indices.
        """
        return [p for p in self.unit_positions[u] if self.qty[p] != 0.0]

    def inverse(self, p: int) -> bool:
        """Whether position ``p`` is an inverse (coin-margined) perpetual.

        Parameters
        ----------
        p : int
            Position index.

        Returns
        -------
        bool
            True for an inverse position (``qty`` in USD contracts, PnL in the coin),
            False for a linear one.
        """
        return self.kind[p] == INVERSE

    def is_option(self, p: int) -> bool:
        """Whether position ``p`` is a call or a put."""
        return self.kind[p] in (CALL, PUT)

    def option_value(self, p: int, spot: float) -> float:
        """Value of one option of position ``p`` (per coin) at ``spot`` and the current step."""
        return self.options.value(self.kind[p], p, self.asset[p], self.entry[p], spot, self.t)

    def instrument(self, p: int) -> str:
        """The instrument of position ``p``'s events.

        Parameters
        ----------
        p : int
            Position index.

        Returns
        -------
        str
            ``"inverse"`` for an inverse position, ``"perp"`` for a linear one,
            ``"call"`` / ``"put"`` for an option.
        """
        if self.is_option(p):
            return "call" if self.kind[p] == CALL else "put"
        return "inverse" if self.inverse(p) else "perp"

    def position_notional(self, p: int, marks: Sequence[float]) -> float:
        """Notional of one position: ``|qty_p| * M[a]`` (linear) or ``|qty_p|`` (inverse).

        Parameters
        ----------
        p : int
            Position index.
        marks : sequence of float
            Mark price per asset.

        Returns
        -------
        float
            The position's notional in USD (an inverse position's is constant; an option
            has none: it is in no bracket).
        """
        if self.is_option(p):
            return 0.0
        if self.inverse(p):
            return abs(self.qty[p])
        return abs(self.qty[p]) * marks[self.asset[p]]

    def position_value(self, p: int, marks: Sequence[float]) -> float:
        """Value (unrealised PnL in USD) of one position.

        Parameters
        ----------
        p : int
            Position index.
        marks : sequence of float
            Mark price per asset.

        Returns
        -------
        float
            ``V_p = qty_p * (M[a] - entry_p)`` (linear) or ``qty_p * (M[a] / entry_p - 1)``
            (inverse).
        """
        m = marks[self.asset[p]]
        if self.is_option(p):
            return self.qty[p] * self.option_value(p, m)
        if self.inverse(p):
            return self.qty[p] * (m / self.entry[p] - 1.0)
        return self.qty[p] * (m - self.entry[p])

    def realise(self, u: int, p: int, c: float, price: float) -> float:
        """Realise the closed quantity ``c`` of position ``p`` (of unit ``u``) at ``price``.

        Linear: ``usd_u += c * (price - entry_p)``. Inverse: the PnL is paid in the coin,
        ``coll[u, a] += c * (1/entry_p - 1/price)`` (the balance may go negative: a coin
        debt). The position's quantity is left to the caller.

        Parameters
        ----------
        u : int
            The position's unit (for an ADL candidate, the candidate's unit).
        p : int
            Position index.
        c : float
            Signed quantity closed.
        price : float
            The price it is realised at.

        Returns
        -------
        float
            The closed notional: ``|c| * |price|`` (linear) or ``|c|`` (inverse). An
            option is sold at its value with the underlying at ``price``: ``usd_u += c V``,
            its notional ``|c| * price``.
        """
        if self.is_option(p):
            self.usd[u] += c * self.option_value(p, price)
            return abs(c) * abs(price)
        if self.inverse(p):
            self.coll[u][self.asset[p]] += c * (1.0 / self.entry[p] - 1.0 / price)
            return abs(c)
        self.usd[u] += c * (price - self.entry[p])
        return abs(c) * abs(price)

    def notional(self, u: int, marks: Sequence[float]) -> float:
        """Notional ``N_u = sum_p n_p`` over the open positions of ``u``.

        Parameters
        ----------
        u : int
            Unit index.
        marks : sequence of float
            Mark price per asset.

        Returns
        -------
        float
            The unit's notional.
        """
        total = 0.0
        for p in self.open_positions(u):
            total += self.position_notional(p, marks)
        return total

    def bracket(self, a: int, n: float) -> int:
        """The bracket of a notional ``n`` in asset ``a``: smallest ``k`` with ``n <= cap``.

        Parameters
        ----------
        a : int
            Asset index.
        n : float
            Position notional in USD.

        Returns
        -------
        int
            Bracket row ``k``.
        """
        caps = self.cap[a]
        for k in range(len(caps)):
            if n <= caps[k]:
                return k
        raise ValueError(f"notional {n!r} of asset {a} is above every bracket cap")

    def position_maintenance(self, p: int, marks: Sequence[float]) -> float:
        """Maintenance of one position: ``MM_p = n_p * rate[a, k] - cum[a, k]``.

        Parameters
        ----------
        p : int
            Position index.
        marks : sequence of float
            Mark price per asset.

        Returns
        -------
        float
            The position's maintenance requirement, its notional ``n_p`` in bracket ``k``.
        """
        if self.is_option(p):
            return 0.0  # options: at the unit (option_maintenance)
        a = self.asset[p]
        n = self.position_notional(p, marks)
        k = self.bracket(a, n)
        return n * self.rate[a][k] - self.cum[a][k]

    def maintenance(self, u: int, marks: Sequence[float]) -> float:
        """Maintenance ``MM_u = sum_p MM_p`` over the open positions of ``u``.

        Parameters
        ----------
        u : int
            Unit index.
        marks : sequence of float
            Mark price per asset.

        Returns
        -------
        float
            The unit's maintenance requirement.
        """
        total = 0.0
        for p in self.open_positions(u):
            total += self.position_maintenance(p, marks)
        return total + self.option_maintenance(u, marks)

    def option_maintenance(self, u: int, marks: Sequence[float]) -> float:
        """The option rule's maintenance of unit ``u`` (0 without options)."""
        if not any(self.is_option(p) for p in self.open_positions(u)):
            return 0.0
        return self.options.maintenance(self, u, list(marks), self.t)

    def wallet(self, u: int, marks: Sequence[float]) -> float:
        """Wallet ``W_u = usd_u + C_u``.

        The collateral value ``C_u = sum_a coll[u,a] * M[a] * w`` counts a holding with
        ``w = 1 - h[a]`` and a coin debt (``coll < 0``) with ``w = 1``.

        Parameters
        ----------
        u : int
            Unit index.
        marks : sequence of float
            Mark price per asset.

        Returns
        -------
        float
            The unit's wallet (equity without unrealised PnL).
        """
        total = self.usd[u]
        for a in range(self.n_assets):
            amount = self.coll[u][a]
            weight = 1.0 if amount < 0.0 else 1.0 - self.haircut[a]
            total += amount * marks[a] * weight
        return total

    def equity(self, u: int, marks: Sequence[float]) -> float:
        """Equity ``E_u = W_u + sum_p V_p``.

        Parameters
        ----------
        u : int
            Unit index.
        marks : sequence of float
            Mark price per asset.

        Returns
        -------
        float
            The unit's equity.
        """
        total = self.wallet(u, marks)
        for p in self.open_positions(u):
            total += self.position_value(p, marks)
        return total

    def nav(self, u: int, marks: Sequence[float]) -> float:
        """Net asset value (no haircut), used for account PnL only.

        Parameters
        ----------
        u : int
            Unit index.
        marks : sequence of float
            Mark price per asset.

        Returns
        -------
        float
            ``usd_u + sum_a coll[u,a] * M[a] + sum_p V_p``.
        """
        total = self.usd[u]
        for a in range(self.n_assets):
            total += self.coll[u][a] * marks[a]
        for p in self.open_positions(u):
            total += self.position_value(p, marks)
        return total

    def live(self, u: int) -> bool:
        """Whether unit ``u`` has an open position, a negative USD balance or a coin debt.

        Parameters
        ----------
        u : int
            Unit index.

        Returns
        -------
        bool
            True when the unit is live.
        """
        if self.open_positions(u) or self.usd[u] < 0.0:
            return True
        return any(amount < 0.0 for amount in self.coll[u])

    def liquidatable(self, u: int, marks: Sequence[float]) -> bool:
        """Whether unit ``u`` is live and ``E_u < MM_u``.

        Parameters
        ----------
        u : int
            Unit index.
        marks : sequence of float
            Mark price per asset.

        Returns
        -------
        bool
            True when the unit is liquidatable.
        """
        if not self.live(u):
            return False
        return self.equity(u, marks) < self.maintenance(u, marks)


# ---------------------------------------------------------------------------------------
# One path
# ---------------------------------------------------------------------------------------


class _PathRun:
    """State and records of the replay of one path.

    Parameters
    ----------
    path : int
        Path index (for events).
    exo : list of list of float
        Exogenous prices of this path, ``[t][a]``.
    depth : list of list of float
        Depth in USD, ``[t][a]``.
    book : _Book
        A fresh copy of the initial book (mutated in place).
    unit_account : list of int
        Account of each unit.
    n_accounts : int
        Number of accounts.
    venue : _Venue
        Venue and impact parameters.
    events : list of dict
        Shared event list, appended to in order.
    behaviour : _Behaviour
        Funding and margin-call parameters (off on a lending venue).
    """

    def __init__(
        self,
        path: int,
        exo: list[list[float]],
        depth: list[list[float]],
        book: _Book,
        unit_account: list[int],
        n_accounts: int,
        venue: _Venue,
        events: list[dict[str, Any]],
        behaviour: _Behaviour,
    ) -> None:
        self.path = path
        self.exo = exo
        self.depth = depth
        self.book = book
        self.unit_account = unit_account
        self.n_accounts = n_accounts
        self.venue = venue
        self.behaviour = behaviour
        self.fund = venue.fund0
        self.events = events

        # Margin calls: every unit starts armed (if kappa > 0); the answers due, per step.
        self.armed = [behaviour.call_ratio > 0.0] * book.n_units
        self.answers_due: dict[int, list[int]] = {}
        # USD each unit deposited answering a margin call (left out of its PnL).
        self.top_ups = [0.0] * book.n_units

        n_assets = book.n_assets
        self.logimp = [0.0] * n_assets
        self.marks = list(exo[0])
        # Price bounds (docs/engine.md, "Price bounds"): 1e-12 to 1e12 x the initial price.
        self.lo = [p * 1e-12 for p in exo[0]]
        self.hi = [p * 1e12 for p in exo[0]]
        self.price_bounded = False

        # Per-path records.
        self.n_liquidations = 0
        self.n_cascade = 0
        self.liquidated_notional = 0.0
        self.max_cascade_rounds = 0
        self.bad_debt = 0.0
        self.adl_notional = 0.0
        self.socialised_loss = 0.0
        self.fees = 0.0
        self.fund_depleted = False
        self.first_liquidation_step: int | None = None
        self.min_price = list(self.marks)
        # Per-account records.
        self.acc_liquidated = [False] * n_accounts
        self.acc_bankrupt = [False] * n_accounts

    # -- the step loop -------------------------------------------------------------------

    def run(self) -> tuple[dict[str, Any], list[bool], list[bool], list[float]]:
        """Replay every step of the path.

        Returns
        -------
        record : dict
            The per-path record.
        liquidated : list of bool
            Per account: any unit liquidated (or taken over by the backstop vault).
        bankrupt : list of bool
            Per account: any bad debt.
        pnl : list of float
            Per account: final NAV minus initial NAV minus top-ups, summed over its units.
        """
        book = self.book
        n_assets = book.n_assets
        initial_prices = list(self.exo[0])
        book.t = 0
        nav0 = [book.nav(u, initial_prices) for u in range(book.n_units)]

        steps = len(self.exo) - 1
        funding_interval = self.behaviour.funding_interval
        for t in range(1, steps + 1):
            for a in range(n_assets):
                self.logimp[a] *= self.venue.decay
            marks = [self.exo[t][a] * math.exp(self.logimp[a]) for a in range(n_assets)]
            for a in range(n_assets):
                lo, hi = self.lo[a] * (1 + 1e-9), self.hi[a] * (1 - 1e-9)
                for x in (self.exo[t][a], marks[a]):  # the exogenous price and the mark
                    if math.isnan(x) or x <= lo or x >= hi:
                        self.price_bounded = True
                marks[a] = self.clamp(marks[a], a)
            self.marks = marks
            book.t = t
            self.settle_options(t)
            if funding_interval > 0 and t % funding_interval == 0:
                self.pay_funding(t)
            self.answer_calls(t)
            r = 0
            while r < self.venue.max_rounds:
                self.margin_calls(t)
                liq = [u for u in range(book.n_units) if book.liquidatable(u, self.marks)]
                if not liq:
                    break
                r = r + 1
                before = self.n_liquidations
                if self.venue.lending:
                    self.run_lending_round(t, r, liq)
                else:
                    self.run_round(t, r, liq)
                if r > 1:  # liquidations the cascade's own forced sales caused
                    self.n_cascade += self.n_liquidations - before
            if r > self.max_cascade_rounds:
                self.max_cascade_rounds = r
            # The step's closing mark.
            for a in range(n_assets):
                if self.marks[a] < self.min_price[a]:
                    self.min_price[a] = self.marks[a]

        # Account PnL leaves deposits out: NAV_end - NAV_start - top-ups.
        pnl = [0.0] * self.n_accounts
        for u in range(book.n_units):
            pnl[self.unit_account[u]] += book.nav(u, self.marks) - nav0[u] - self.top_ups[u]

        record = {
            "n_liquidations": self.n_liquidations,
            "n_cascade_liquidations": self.n_cascade,
            "liquidated_notional": self.liquidated_notional,
            "max_cascade_rounds": self.max_cascade_rounds,
            "bad_debt": self.bad_debt,
            "insurance_fund_end": self.fund,
            "adl_notional": self.adl_notional,
            "socialised_loss": self.socialised_loss,
            "fees": self.fees,
            "fund_depleted": self.fund_depleted,
            "first_liquidation_step": self.first_liquidation_step,
            "min_price": list(self.min_price),
            "final_price": list(self.marks),
            "price_bounded": self.price_bounded,
        }
        return record, list(self.acc_liquidated), list(self.acc_bankrupt), pnl

    # -- shared pieces -------------------------------------------------------------------

    def new_event(
        self,
        t: int,
        r: int,
        u: int,
        kind: str,
        instrument: str,
        asset: int,
        qty: float,
        mark: float,
        exec_price: float,
        notional: float,
        fee: float = 0.0,
        bad_debt: float = 0.0,
        fund_paid: float = 0.0,
    ) -> dict[str, Any]:
        """Build one event of unit ``u``'s account (not yet recorded).

        Parameters
        ----------
        t, r : int
            Step and round.
        u : int
            Unit whose account the event belongs to.
        kind : str
            ``"liquidation"``, ``"adl"``, ``"backstop"``, ``"socialised"``, ``"top_up"``
            or ``"reduce"``.
        instrument : str
            ``"perp"``, ``"inverse"``, ``"collateral"`` or ``"debt"``.
        asset : int
            Asset index, ``-1`` for USD.
        qty, mark, exec_price, notional, fee, bad_debt, fund_paid : float
            The event's fields.

        Returns
        -------
        dict
            The event.
        """
        return {
            "path": self.path,
            "step": t,
            "round": r,
            "account": self.unit_account[u],
            "kind": kind,
            "instrument": instrument,
            "asset": asset,
            "qty": qty,
            "mark_price": mark,
            "exec_price": exec_price,
            "notional": notional,
            "fee": fee,
            "bad_debt": bad_debt,
            "fund_paid": fund_paid,
        }

    def event(self, *args: Any, **kwargs: Any) -> None:
        """Build an event with :meth:`new_event` and record it.

        Parameters
        ----------
        *args, **kwargs
            The arguments of :meth:`new_event`.
        """
        self.events.append(self.new_event(*args, **kwargs))

    def count_liquidation(self, t: int, u: int) -> None:
        """Record that unit ``u`` is liquidated (or taken over) in a round of step ``t``.

        Parameters
        ----------
        t : int
            Step index.
        u : int
            Unit index.
        """
        self.n_liquidations += 1
        self.acc_liquidated[self.unit_account[u]] = True
        self.armed[u] = False  # a liquidation disarms the margin call
        if self.first_liquidation_step is None:
            self.first_liquidation_step = t

    def impact(self, t: int, flow: list[float]) -> tuple[list[float], list[float], list[float]]:
        """Step 3: impact of the round's net flow.

        Parameters
        ----------
        t : int
            Step index (selects the depth).
        flow : list of float
            Net selling per asset, in asset units.

        Returns
        -------
        d : list of float
            Log impact per asset.
        new_marks : list of float
            ``M2[a] = M[a] * exp(d[a])``.
        exec_px : list of float
            Fill price ``X[a]`` per asset.
        """
        marks = self.marks
        alpha = self.venue.alpha
        n_assets = self.book.n_assets
        net = [flow[a] * marks[a] for a in range(n_assets)]
        d = [0.0] * n_assets
        new_marks = [0.0] * n_assets
        exec_px = [0.0] * n_assets
        for a in range(n_assets):
            q_usd = net[a]
            if alpha == 0.0 or q_usd == 0.0:
                d[a] = 0.0
            else:
                depth = self.depth[t][a]
                if not depth > 0.0:
                    raise ValueError(f"depth[{t}, {a}] must be positive, got {depth!r}")
                d[a] = -_sign(q_usd) * 0.01 * (abs(q_usd) / depth) ** alpha
            try:
                new_marks[a] = marks[a] * math.exp(d[a])
            except OverflowError:
                new_marks[a] = math.inf
            if not self.lo[a] <= new_marks[a] <= self.hi[a]:  # the impact law is unbounded
                self.price_bounded = True
                new_marks[a] = self.clamp(new_marks[a], a)
                d[a] = math.log(new_marks[a] / marks[a])
            if d[a] == 0.0:
                exec_px[a] = marks[a]
            else:
                exec_px[a] = marks[a] + (new_marks[a] - marks[a]) / (1.0 + alpha)
        return d, new_marks, exec_px

    def clamp(self, price: float, a: int) -> float:
        """A price kept within asset ``a``'s bounds (NaN goes to the floor)."""
        if math.isnan(price) or price < self.lo[a]:
            return self.lo[a]
        return min(price, self.hi[a])

    def move_marks(self, d: list[float], new_marks: list[float]) -> None:
        """Step 5: ``M = M2`` and ``logimp[a] += d[a]``.

        Parameters
        ----------
        d : list of float
            Log impact of the round per asset.
        new_marks : list of float
            Post-impact marks.
        """
        self.marks = new_marks
        for a in range(self.book.n_assets):
            self.logimp[a] += d[a]

    def socialise(
        self, t: int, r: int, u: int, asset: int, amount: float, position: int | None = None
    ) -> None:
        """Record a socialised loss of the bankrupt unit ``u``.

        For an asset (``asset >= 0``) the event has the instrument of the bankrupt position
        (``perp`` or ``inverse``) and mark and exec price ``M[asset]`` (the post-round
        marks); for ``asset = -1`` (USD) instrument ``debt`` and price 1, as for every USD
        event. ``qty``, notional, fee and fund paid are 0.

        Parameters
        ----------
        t, r : int
            Step and round.
        u : int
            The bankrupt unit.
        asset : int
            Asset of the share, or ``-1`` for a loss not attached to a position.
        amount : float
            The amount socialised.
        position : int, optional
            The closed position whose share this is (None for a loss not attached to a
            position): its kind names the event's instrument.
        """
        if asset >= 0:
            instrument = "perp" if position is None else self.book.instrument(position)
            price = self.marks[asset]
        else:
            instrument = "debt"
            price = 1.0
        self.socialised_loss += amount
        self.event(
            t, r, u, "socialised", instrument, asset, 0.0, price, price, 0.0, bad_debt=amount
        )

    # -- behaviour: funding and margin calls ---------------------------------------------

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

    def funding_rates(self, t: int) -> list[float]:
        """The funding rate of every asset at step ``t``, at the current marks.

        Parameters
        ----------
        t : int
            Step index (selects the index price ``exo[t]``).

        Returns
        -------
        list of float
            ``phi`` (constant), or ``min(max(phi + M[a] / exo[t, a] - 1, -c), c)``
            (premium).
        """
        beh = self.behaviour
        rates = []
        for a in range(self.book.n_assets):
            if beh.funding_premium:
                premium = beh.funding_rate + (self.marks[a] / self.exo[t][a] - 1.0)
                rates.append(min(max(premium, -beh.funding_cap), beh.funding_cap))
            else:
                rates.append(beh.funding_rate)
        return rates

    def pay_funding(self, t: int) -> None:
        """Funding at step ``t``, unit by unit.

        ``usd_u -= pay_u`` with ``pay_u = sum_p qty_p * M[a_p] * rate[a_p]`` over the open
        linear positions (summed first, in position order); then each open inverse position,
        in order, pays in its coin: ``coll[u, a_p] -= qty_p * rate[a_p] / M[a_p]``. Longs
        pay shorts when the rate is positive. No events.

        Parameters
        ----------
        t : int
            Step index.
        """
        book = self.book
        rates = self.funding_rates(t)
        for u in range(book.n_units):
            pay = 0.0
            for p in book.open_positions(u):
                if book.kind[p] == LINEAR:  # options pay no funding
                    a = book.asset[p]
                    pay += book.qty[p] * self.marks[a] * rates[a]
            book.usd[u] -= pay
            for p in book.open_positions(u):
                if book.inverse(p):
                    a = book.asset[p]
                    book.coll[u][a] -= book.qty[p] * rates[a] / self.marks[a]

    def answer_calls(self, t: int) -> None:
        """Answers to the margin calls due at step ``t``, in increasing unit index.

        Only a live unit answers, at the current marks (after funding). ``top_up``
        deposits ``x = min(reserve[u], max(tau * MM_u - E_u, 0))``; ``reduce`` closes the
        fraction ``f = 1 - E_u / (tau * MM_u)`` (at most 1) of every open position at the
        mark, without fee or impact, realised as in a liquidation (an inverse position's
        PnL in its coin). Events have round 0.

        Parameters
        ----------
        t : int
            Step index.
        """
        book = self.book
        beh = self.behaviour
        marks = self.marks
        tau = beh.call_target
        for u in sorted(self.answers_due.pop(t, [])):
            if not book.live(u):
                continue
            e = book.equity(u, marks)
            mm = book.maintenance(u, marks)
            if beh.call_action == "top_up":
                x = min(beh.reserve[u], max(tau * mm - e, 0.0))
                if x > 0.0:
                    book.usd[u] += x
                    self.top_ups[u] += x
                    self.event(t, 0, u, "top_up", "collateral", -1, x, 1.0, 1.0, x)
                continue
            # reduce
            if not mm > 0.0:
                continue
            f = 1.0 - e / (tau * mm)
            if not f > 0.0:
                continue
            f = min(f, 1.0)
            for p in book.open_positions(u):
                a = book.asset[p]
                c = f * book.qty[p]
                price = book.option_value(p, marks[a]) if book.is_option(p) else marks[a]
                n_p = book.realise(u, p, c, marks[a])
                book.qty[p] -= c
                self.event(t, 0, u, "reduce", book.instrument(p), a, -c, price, price, n_p)

    def call_unit(self, t: int, u: int) -> bool:
        """Call unit ``u`` at step ``t``: disarm it, and schedule its answer if it answers.

        Parameters
        ----------
        t : int
            Step index.
        u : int
            The unit called.

        Returns
        -------
        bool
            Whether it will answer (at step ``t + d``): ``draw(path, u) < pi``.
        """
        beh = self.behaviour
        self.armed[u] = False
        answers = draw(beh.rng_key, self.path, u) < beh.call_prob
        if answers:
            self.answers_due.setdefault(t + beh.call_delay, []).append(u)
        return answers

    def margin_calls(self, t: int) -> None:
        """Margin calls at one check of the round loop, before ``L`` is formed.

        Every armed live unit with ``MM_u <= E_u < kappa * MM_u`` at the current marks is
        called, in increasing unit index.

        Parameters
        ----------
        t : int
            Step index.
        """
        book = self.book
        kappa = self.behaviour.call_ratio
        for u in range(book.n_units):
            if not self.armed[u] or not book.live(u):
                continue
            e = book.equity(u, self.marks)
            mm = book.maintenance(u, self.marks)
            if mm <= e < kappa * mm:
                self.call_unit(t, u)

    # -- one derivatives round -----------------------------------------------------------

    def fraction(self, u: int) -> tuple[bool, float]:
        """Step 1: backstop or fraction ``f_u`` of unit ``u``, at the round-start marks.

        Parameters
        ----------
        u : int
            A liquidatable unit.

        Returns
        -------
        backstop : bool
            True when the unit goes to the backstop vault (its fraction is then 1).
        f : float
            ``1.0`` for a full liquidation, else a value in ``[0, 1)``.
        """
        venue = self.venue
        book = self.book
        e = book.equity(u, self.marks)
        mm = book.maintenance(u, self.marks)
        n = book.notional(u, self.marks)  # of the perpetuals: options have none
        if venue.backstop_ratio > 0.0 and e < venue.backstop_ratio * mm:
            return True, 1.0
        if venue.mode == "full":
            return False, 1.0
        if venue.mode == "partial":
            # the option maintenance stays (options are closed only with the whole unit)
            mm_linear = mm - book.option_maintenance(u, self.marks)
            den = venue.target * mm_linear - venue.fee_rate * n
            if e <= 0.0 or den <= 0.0:
                return False, 1.0
            f = (venue.target * mm - e) / den
            if f >= 1.0:
                return False, 1.0
            if f < 0.0:
                f = 0.0
            return False, f
        # incremental
        if e <= 0.0 or n <= venue.full_below_usd:
            return False, 1.0
        c = min(max(venue.step_fraction * n, venue.step_min_usd), venue.step_max_usd)
        f = c / n
        if f >= 1.0:
            return False, 1.0
        return False, f

    def run_round(self, t: int, r: int, liq: list[int]) -> None:
        """Run one derivatives cascade round (steps 1 to 6 of the specification).

        Parameters
        ----------
        t : int
            Step index.
        r : int
            Round number (1-based).
        liq : list of int
            Liquidatable units at the round-start marks, in increasing unit index.
        """
        book = self.book
        venue = self.venue
        n_assets = book.n_assets
        marks = self.marks  # M: the round-start marks (not mutated below)

        # 1. Fractions (and backstop take-overs).
        plans = [self.fraction(u) for u in liq]

        # 2. Flow (asset units, positive = net selling); backstop units add nothing.
        flow = [0.0] * n_assets
        for u, (backstop, f) in zip(liq, plans, strict=True):
            if backstop:
                continue
            for p in book.open_positions(u):
                a = book.asset[p]
                if book.is_option(p):
                    # closed only in full; its taker hedges: sells qty x delta coins
                    if f == 1.0:
                        flow[a] += book.qty[p] * book.options.delta(
                            book.kind[p], p, a, book.entry[p], marks[a], t)
                    continue
                c = f * book.qty[p]
                if book.inverse(p):
                    # USD contracts -> coins; a full liquidation also sells the coin its
                    # PnL will add to the balance.
                    flow[a] += c / marks[a]
                    if f == 1.0:
                        flow[a] += c * (1.0 / book.entry[p] - 1.0 / marks[a])
                else:
                    flow[a] += c
            if f == 1.0:
                # Every non-zero coin balance: a coin debt counts negative (bought back).
                for a in range(n_assets):
                    flow[a] += book.coll[u][a]

        # 3. Impact: d, new marks M2 and execution prices X.
        d, new_marks, exec_px = self.impact(t, flow)

        # 4. Settle, unit by unit.
        remembered: list[tuple[int, list[tuple[int, float, float]], float]] = []
        for u, (backstop, f) in zip(liq, plans, strict=True):
            full = f == 1.0
            kind = "backstop" if backstop else "liquidation"
            # A backstop unit is settled at the round-start marks.
            px = marks if backstop else exec_px
            account = self.unit_account[u]
            self.count_liquidation(t, u)

            closed: list[tuple[int, float, float]] = []  # (position, c, n_p)
            perp_n = 0.0
            option_fee = 0.0
            for p in book.open_positions(u):
                a = book.asset[p]
                qty = book.qty[p]
                if book.is_option(p):
                    if not full:
                        continue  # options go only with the whole unit
                    value = book.option_value(p, px[a])
                    n_p = book.realise(u, p, qty, px[a])
                    book.qty[p] = 0.0
                    closed.append((p, qty, n_p))
                    option_fee += min(book.options.fee_rate * n_p, abs(qty) * value)
                    continue
                c = qty if full else f * qty
                # Linear: usd_u += c (X - entry), n_p = |c| X; inverse: coll[u, a] +=
                # c (1/entry - 1/X), n_p = |c|.
                n_p = book.realise(u, p, c, px[a])
                book.qty[p] = 0.0 if full else qty - c
                closed.append((p, c, n_p))
                perp_n += n_p

            sales: list[tuple[int, float]] = []  # (asset, amount); amount < 0: a purchase
            if full:
                for a in range(n_assets):
                    amount = book.coll[u][a]
                    if amount != 0.0:
                        book.usd[u] += amount * px[a]
                        book.coll[u][a] = 0.0
                        sales.append((a, amount))

            e2 = book.equity(u, new_marks)

            sum_n = 0.0
            for _, _, n_p in closed:
                sum_n += n_p
            if backstop:
                # The vault keeps what is left; it is booked as the fee, like any fee.
                fee = max(e2, 0.0)
            else:
                fee = min(venue.fee_rate * perp_n + option_fee, max(e2, 0.0))
            book.usd[u] -= fee
            self.fund += fee
            self.fees += fee

            bd = 0.0
            paid = 0.0
            uncovered = 0.0
            if full and book.usd[u] < 0.0:
                bd = -book.usd[u]
                book.usd[u] = 0.0
                paid = min(bd, self.fund)
                self.fund -= paid
                uncovered = bd - paid
            self.bad_debt += bd
            if bd > 0.0:
                self.acc_bankrupt[account] = True

            first_event = len(self.events)
            for p, c, n_p in closed:
                a = book.asset[p]
                self.liquidated_notional += n_p
                share = n_p / sum_n if sum_n != 0.0 else 0.0
                mark_p, exec_p = marks[a], px[a]
                if book.is_option(p):  # an option's own mark and execution price
                    mark_p, exec_p = book.option_value(p, marks[a]), book.option_value(p, px[a])
                self.event(
                    t,
                    r,
                    u,
                    kind,
                    book.instrument(p),
                    a,
                    -c,
                    mark_p,
                    exec_p,
                    n_p,
                    fee=fee * share,
                    bad_debt=bd * share,
                    fund_paid=paid * share,
                )
            if sum_n == 0.0 and (bd > 0.0 or fee > 0.0):
                # Nothing closed (a unit with only a negative balance): an event of its own.
                self.event(
                    t,
                    r,
                    u,
                    kind,
                    "debt",
                    -1,
                    0.0,
                    1.0,
                    1.0,
                    0.0,
                    fee=fee,
                    bad_debt=bd,
                    fund_paid=paid,
                )
            for a, amount in sales:
                self.event(
                    t, r, u, kind, "collateral", a, -amount, marks[a], px[a], abs(amount) * px[a]
                )

            if uncovered > 0.0:
                remembered.append((u, closed, uncovered, self.events[first_event:]))

        # 5. Marks.
        self.move_marks(d, new_marks)

        # 6. Uncovered deficits.
        self.cover_deficits(t, r, remembered)

    def pay_again(self, unit_events: list[dict[str, Any]], uncovered: float) -> float:
        """The fund's second payment of a deficit (step 6), before ADL or socialisation.

        Fees of units settled later in the round may have refilled the fund: it pays
        ``min(D, fund)`` now, added to the fund-paid field of the unit's events of this
        round in proportion to their bad debt.

        Parameters
        ----------
        unit_events : list of dict
            The bankrupt unit's events of this round.
        uncovered : float
            Its deficit ``D``.

        Returns
        -------
        float
            What is still uncovered.
        """
        paid = min(uncovered, self.fund)
        if paid > 0.0:
            self.fund -= paid
            uncovered -= paid
            total = 0.0
            for ev in unit_events:
                total += ev["bad_debt"]
            if total > 0.0:
                for ev in unit_events:
                    ev["fund_paid"] += paid * ev["bad_debt"] / total
        return uncovered

    def cover_deficits(self, t: int, r: int, remembered: list[Any]) -> None:
        """Step 6: the fund pays again, then ADL or socialisation of what is left.

        Parameters
        ----------
        t, r : int
            Step and round.
        remembered : list
            ``(unit, closed positions, D, the unit's events)`` in settlement order.
        """
        book = self.book
        venue = self.venue
        for u, closed, uncovered, unit_events in remembered:
            uncovered = self.pay_again(unit_events, uncovered)
            if uncovered <= 0.0:
                continue
            self.fund_depleted = True
            sum_n = 0.0
            for _, _, n_p in closed:
                sum_n += n_p
            if sum_n == 0.0:
                # No closed notional to share D between: one socialised event in USD.
                self.socialise(t, r, u, -1, uncovered)
                continue
            for p, c, n_p in closed:
                d_p = uncovered * n_p / sum_n
                if not venue.adl or book.is_option(p):  # options are not deleveraged
                    self.socialise(t, r, u, book.asset[p], d_p, position=p)
                else:
                    self.deleverage(t, r, u, p, c, d_p)

    def adl_score(self, k: int) -> float:
        """ADL ranking score of candidate position ``k`` at the current marks.

        Parameters
        ----------
        k : int
            A candidate position (open, profitable, opposite side, same kind).

        Returns
        -------
        float
            ``pnl_margin_ratio``: ``(g_k / max(1, W_v)) * (MM_v / E_v if E_v > 0 else 0)``
            with ``g_k = V_k``; ``profit_leverage``: ``rho_k * (n_k / E_v if E_v > 0 else
            0)`` with ``n_k`` the position's notional.
        """
        book = self.book
        marks = self.marks
        a = book.asset[k]
        v = book.pos_unit[k]
        qty_k = book.qty[k]
        e_v = book.equity(v, marks)
        if self.venue.adl_ranking == "pnl_margin_ratio":
            g_k = book.position_value(k, marks)
            w_v = book.wallet(v, marks)
            mm_v = book.maintenance(v, marks)
            ratio = mm_v / e_v if e_v > 0.0 else 0.0
            return (g_k / max(1.0, w_v)) * ratio
        # profit_leverage
        rho = marks[a] / book.entry[k] if qty_k > 0.0 else book.entry[k] / marks[a]
        leverage = book.position_notional(k, marks) / e_v if e_v > 0.0 else 0.0
        return rho * leverage

    def deleverage(self, t: int, r: int, u: int, p: int, c: float, d_p: float) -> None:
        """Step 6 with ADL on: cover the share ``D_p`` of one closed bankrupt position.

        The ADL price is ``P = M[a] + s * D_p / q`` for a linear position and
        ``P = M[a] / (1 - s * D_p / q)`` for an inverse one, which needs ``s * D_p / q < 1``
        (otherwise nobody can be deleveraged and the whole share is socialised).
        Candidates are positions of the same kind.

        Parameters
        ----------
        t : int
            Step index.
        r : int
            Round number.
        u : int
            The bankrupt unit.
        p : int
            The closed bankrupt position (its asset and kind select the candidates).
        c : float
            Closed (signed) quantity of the bankrupt position.
        d_p : float
            Uncovered deficit attributed to this position.
        """
        book = self.book
        marks = self.marks  # post-round marks
        a = book.asset[p]
        inverse = book.inverse(p)
        s = _sign(c)
        q = abs(c)
        if inverse and not s * d_p / q < 1.0:
            # Each contract would give up at least its 1 USD face: no bankruptcy price.
            self.socialise(t, r, u, a, d_p, position=p)
            return
        price = marks[a] / (1.0 - s * d_p / q) if inverse else marks[a] + s * d_p / q

        # Candidates and their scores, computed once over the current state.
        scored: list[tuple[float, int]] = []
        for k in range(len(book.qty)):
            qty_k = book.qty[k]
            if qty_k == 0.0 or book.asset[k] != a or book.kind[k] != book.kind[p]:
                continue
            if _sign(qty_k) != -s:
                continue
            if book.pos_unit[k] == u:
                continue
            g_k = book.position_value(k, marks)
            if not g_k > 0.0:
                continue
            scored.append((self.adl_score(k), k))
        scored.sort(key=lambda item: (-item[0], item[1]))

        rem = q
        for _, k in scored:
            if rem <= 0.0:
                break
            v = book.pos_unit[k]
            qty_k = book.qty[k]
            dq = min(rem, abs(qty_k))
            # The candidate closes dq, realising -s dq at P as in a liquidation; the notional
            # is dq |P| (linear) or dq (inverse).
            notional = book.realise(v, k, -s * dq, price)
            book.qty[k] = 0.0 if dq == abs(qty_k) else qty_k + s * dq
            b = dq * d_p / q
            rem -= dq
            self.adl_notional += notional
            self.event(
                t, r, v, "adl", book.instrument(k), a, s * dq, marks[a], price, notional, bad_debt=b
            )
        left = d_p * rem / q
        if left > 0.0:
            self.socialise(t, r, u, a, left, position=p)

    # -- one lending round ---------------------------------------------------------------

    def lending_plan(self, u: int) -> tuple[float, float, float, float, float, bool]:
        """Lending step 1: the plan of a liquidatable unit at the round-start marks.

        Parameters
        ----------
        u : int
            A liquidatable unit.

        Returns
        -------
        repay : float
            ``R``, the debt value repaid.
        seize : float
            ``S``, the collateral value seized.
        g : float
            Share of every debt repaid, ``R / Dv``.
        k : float
            Share of every collateral seized, ``S / Cv`` (1 when cleared).
        debt_value : float
            ``Dv``.
        cleared : bool
            Whether all the collateral is seized.
        """
        venue = self.venue
        book = self.book
        marks = self.marks
        usd = book.usd[u]
        debt_value = max(-usd, 0.0)
        for p in book.open_positions(u):
            debt_value += abs(book.qty[p]) * marks[book.asset[p]]
        coll_value = max(usd, 0.0)
        weighted = max(usd, 0.0)
        for a in range(book.n_assets):
            coll_value += book.coll[u][a] * marks[a]
            weighted += book.coll[u][a] * marks[a] * (1.0 - book.haircut[a])
        hf = weighted / debt_value
        if (
            hf <= venue.full_close_below_hf
            or coll_value < venue.full_close_below_usd
            or debt_value < venue.full_close_below_usd
        ):
            cf = 1.0
        else:
            cf = venue.close_factor
        repay = cf * debt_value
        seize = repay * (1.0 + venue.bonus)
        cleared = False
        if seize >= coll_value:
            seize = coll_value
            repay = coll_value / (1.0 + venue.bonus)
            cleared = True
        g = repay / debt_value
        k = 1.0 if cleared else seize / coll_value
        return repay, seize, g, k, debt_value, cleared

    def run_lending_round(self, t: int, r: int, liq: list[int]) -> None:
        """Run one lending round (steps 1 to 5 of the lending section).

        Parameters
        ----------
        t : int
            Step index.
        r : int
            Round number (1-based).
        liq : list of int
            Liquidatable units at the round-start marks, in increasing unit index.
        """
        book = self.book
        venue = self.venue
        n_assets = book.n_assets
        marks = self.marks  # M: the round-start marks (not mutated below)

        # 1. Plans.
        plans = [self.lending_plan(u) for u in liq]

        # 2. Flow: liquidators sell the seized collateral and buy the repaid debt.
        flow = [0.0] * n_assets
        for u, (_, _, g, k, _, _) in zip(liq, plans, strict=True):
            for a in range(n_assets):
                debt_qty = 0.0
                for p in book.open_positions(u):
                    if book.asset[p] == a:
                        debt_qty += abs(book.qty[p])
                flow[a] += k * book.coll[u][a] - g * debt_qty

        # 3. Impact.
        d, new_marks, _ = self.impact(t, flow)

        # 4. Settle, unit by unit, at the round-start marks M.
        remembered: list[Any] = []
        for u, (repay, seize, g, k, _, cleared) in zip(liq, plans, strict=True):
            account = self.unit_account[u]
            self.count_liquidation(t, u)
            usd_debt: list[dict[str, Any]] = []  # at most one event each
            usd_coll: list[dict[str, Any]] = []
            pos_debt: list[dict[str, Any]] = []
            asset_coll: list[dict[str, Any]] = []
            unpaid: list[float] = []  # debt value each debt event leaves unpaid

            # USD: repay a USD debt or seize USD collateral.
            usd = book.usd[u]
            if usd < 0.0:
                repaid = g * (-usd)
                book.usd[u] += repaid
                usd_debt.append(
                    self.new_event(t, r, u, "liquidation", "debt", -1, repaid, 1.0, 1.0, repaid)
                )
                unpaid.append(max(-book.usd[u], 0.0))
            elif usd > 0.0:
                seized = k * usd
                book.usd[u] = 0.0 if cleared else usd - seized
                usd_coll.append(
                    self.new_event(
                        t, r, u, "liquidation", "collateral", -1, -seized, 1.0, 1.0, seized
                    )
                )

            # Each debt position, in order.
            for p in book.open_positions(u):
                a = book.asset[p]
                rp = g * abs(book.qty[p])
                book.qty[p] = 0.0 if g == 1.0 else book.qty[p] + rp
                pos_debt.append(
                    self.new_event(
                        t, r, u, "liquidation", "debt", a, rp, marks[a], marks[a], rp * marks[a]
                    )
                )
                unpaid.append(abs(book.qty[p]) * marks[a])

            # Each collateral asset, in order.
            for a in range(n_assets):
                amount = book.coll[u][a]
                if amount > 0.0:
                    sa = amount if cleared else k * amount
                    book.coll[u][a] = 0.0 if cleared else amount - sa
                    asset_coll.append(
                        self.new_event(
                            t,
                            r,
                            u,
                            "liquidation",
                            "collateral",
                            a,
                            -sa,
                            marks[a],
                            marks[a],
                            sa * marks[a],
                        )
                    )

            debt_events = usd_debt + pos_debt
            coll_events = usd_coll + asset_coll

            # Protocol fee, to the fund, shared between the collateral events.
            fee = venue.protocol_share * (seize - repay)
            self.fund += fee
            self.fees += fee
            coll_notional = 0.0
            for ev in coll_events:
                coll_notional += ev["notional"]
            for ev in coll_events:
                ev["fee"] = fee * ev["notional"] / coll_notional if coll_notional != 0.0 else 0.0

            # Bad debt: a cleared unit's remaining debt is written off.
            bd = 0.0
            paid = 0.0
            uncovered = 0.0
            if cleared:
                bd = max(-book.usd[u], 0.0)
                for p in book.open_positions(u):
                    bd += abs(book.qty[p]) * marks[book.asset[p]]
                if book.usd[u] < 0.0:
                    book.usd[u] = 0.0
                for p in book.unit_positions[u]:
                    book.qty[p] = 0.0
                paid = min(bd, self.fund)
                self.fund -= paid
                uncovered = bd - paid
                unpaid_total = 0.0
                for value in unpaid:
                    unpaid_total += value
                for ev, value in zip(debt_events, unpaid, strict=True):
                    share = value / unpaid_total if unpaid_total != 0.0 else 0.0
                    ev["bad_debt"] = bd * share
                    ev["fund_paid"] = paid * share
            self.bad_debt += bd
            if bd > 0.0:
                self.acc_bankrupt[account] = True
            self.liquidated_notional += repay

            # Events: debts (USD, then positions), then collateral (USD, then assets).
            self.events.extend(debt_events)
            self.events.extend(coll_events)
            if uncovered > 0.0:
                remembered.append((u, [], uncovered, debt_events + coll_events))

        # 5. Marks, 6. deficits (no ADL on a lending venue: no closed notional, so what the
        # fund cannot pay is one socialised event in USD).
        self.move_marks(d, new_marks)
        self.cover_deficits(t, r, remembered)


# ---------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------


def naive_replay(
    exo: Any,
    depth: Any,
    haircut: Any,
    mmr: Any,
    unit_account: Any,
    unit_usd: Any,
    unit_coll: Any,
    pos_unit: Any,
    pos_asset: Any,
    pos_qty: Any,
    pos_entry: Any,
    *,
    n_accounts: int,
    fee_rate: float,
    partial: bool = False,
    target: float,
    fund0: float,
    adl: bool,
    max_rounds: int,
    alpha: float,
    decay: float,
    brackets: tuple[Any, Any, Any] | None = None,
    mode: str | None = None,
    step_fraction: float = 0.0,
    step_min_usd: float = 0.0,
    step_max_usd: float = math.inf,
    full_below_usd: float = 0.0,
    backstop_ratio: float = 0.0,
    adl_ranking: str = "pnl_margin_ratio",
    lending: bool = False,
    close_factor: float = 0.5,
    full_close_below_hf: float = 0.95,
    full_close_below_usd: float = 0.0,
    bonus: float = 0.0,
    protocol_share: float = 0.0,
    funding_interval: int = 0,
    funding_rate: float = 0.0,
    funding_premium: bool = False,
    funding_cap: float = 0.0,
    call_ratio: float = 0.0,
    call_prob: float = 0.0,
    call_delay: int = 1,
    call_action: str = "top_up",
    call_target: float = 2.0,
    reserve: Any = None,
    rng_key: int = 0,
    pos_kind: Any = None,
    options: NaiveOptions | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Replay every path through the margin engine of ``docs/engine.md``, slowly.

    Every path starts from the same initial book (copied per path).

    Parameters
    ----------
    exo : array_like of float, shape (n_paths, steps + 1, A)
        Exogenous prices.
    depth : array_like of float, shape (steps + 1, A)
        Depth in USD per step and asset.
    haircut : array_like of float, shape (A,)
        Collateral haircut per asset (on a lending venue, 1 - liquidation threshold).
    mmr : array_like of float, shape (A,), or None
        Flat maintenance margin rate per asset: one bracket ``cap = +inf``,
        ``rate = mmr[a]``, ``cum = 0``. Ignored (may be None) when ``brackets`` is given.
    unit_account : array_like of int, shape (U,)
        Account index of each margin unit.
    unit_usd : array_like of float, shape (U,)
        USD balance of each unit (negative: a USD debt).
    unit_coll : array_like of float, shape (U, A)
        Collateral amounts of each unit.
    pos_unit : array_like of int, shape (P,)
        Unit of each position (non-decreasing).
    pos_asset : array_like of int, shape (P,)
        Asset of each position.
    pos_qty : array_like of float, shape (P,)
        Signed quantity of each position (on a lending venue a debt: ``qty < 0``).
    pos_entry : array_like of float, shape (P,)
        Entry price of each position (on a lending venue 0).
    n_accounts : int
        Number of accounts.
    fee_rate : float
        Liquidation fee rate.
    partial : bool, default False
        Legacy switch, used only when ``mode`` is None: ``True`` for partial mode,
        ``False`` for full mode.
    target : float
        Partial-liquidation target ratio (> 1).
    fund0 : float
        Initial insurance fund in USD.
    adl : bool
        Whether auto-deleveraging covers uncovered deficits (ignored on a lending venue).
    max_rounds : int
        Maximum cascade rounds per step.
    alpha : float
        Impact exponent: ``0.0`` means impact kind ``none``, ``1.0`` linear, ``0.5`` sqrt.
    decay : float
        Per-step factor on the accumulated log impact.
    brackets : tuple of three array_like of float, each shape (A, K), optional
        ``(cap, rate, cum)`` maintenance bracket tables; replaces ``mmr``.
    mode : {"full", "partial", "incremental"}, optional
        Liquidation mode; default ``"partial" if partial else "full"``.
    step_fraction, step_min_usd, step_max_usd, full_below_usd : float
        Incremental mode: each round closes ``min(max(step_fraction * N, step_min_usd),
        step_max_usd)`` of the notional ``N``, all of it when ``N <= full_below_usd``.
    backstop_ratio : float, default 0.0
        A liquidatable unit with ``E < backstop_ratio * MM`` goes to the backstop vault
        (0 = no vault).
    adl_ranking : {"pnl_margin_ratio", "profit_leverage"}
        Order of the ADL candidates.
    lending : bool, default False
        Lending venue: lending rounds instead of derivatives rounds.
    close_factor : float, default 0.5
        Lending: share of the debt one liquidation repays.
    full_close_below_hf : float, default 0.95
        Lending: below this health factor the whole debt may be repaid.
    full_close_below_usd : float, default 0.0
        Lending: with collateral or debt value below this, the whole debt may be repaid.
    bonus : float, default 0.0
        Lending: liquidation bonus on the seized collateral.
    protocol_share : float, default 0.0
        Lending: share of the bonus paid to the fund.
    funding_interval : int, default 0
        Funding every ``funding_interval`` steps, at the steps that are multiples of it
        (0 = no funding). Derivatives venues only.
    funding_rate : float, default 0.0
        Funding rate ``phi`` per interval (longs pay shorts when the rate is positive).
    funding_premium : bool, default False
        Premium funding: ``rate[a] = min(max(phi + (M[a] / exo[t, a] - 1), -c), c)``;
        otherwise constant, ``rate[a] = phi``.
    funding_cap : float, default 0.0
        Cap ``c`` of the premium rate.
    call_ratio : float, default 0.0
        Margin-call ratio ``kappa``: an armed live unit with ``MM <= E < kappa * MM`` is
        called (0 = no margin calls, else > 1). Derivatives venues only.
    call_prob : float, default 0.0
        Answer probability ``pi``: a called unit answers when its draw is below it.
    call_delay : int, default 1
        Steps ``d >= 1`` between a call and its answer.
    call_action : {"top_up", "reduce"}, default "top_up"
        How a called unit answers: a deposit from its reserve, or a cut of every position.
    call_target : float, default 2.0
        Target ratio ``tau`` (>= ``kappa``) the answer aims for.
    reserve : array_like of float, shape (U,), optional
        USD each unit may deposit when it answers (zeros if None).
    rng_key : int, default 0
        Key of the answer draws (see :func:`draw`).
    pos_kind : array_like of int, shape (P,), optional
        Kind of each position: ``0`` linear (``qty`` in coins, PnL in USD) or ``1``
        inverse (``qty`` in USD contracts, entry in USD per coin, PnL paid in the coin);
        all linear when None. Derivatives venues only.

    Returns
    -------
    paths : list of dict
        One record per path: ``n_liquidations``, ``liquidated_notional``,
        ``max_cascade_rounds``, ``bad_debt``, ``insurance_fund_end``, ``adl_notional``,
        ``socialised_loss``, ``fees``, ``fund_depleted``, ``first_liquidation_step``,
        ``min_price`` and ``final_price`` (lists of A floats).
    events : list of dict
        Events in the order produced, path after path: ``path``, ``step``, ``round``,
        ``account``, ``kind`` (``liquidation``, ``adl``, ``backstop``, ``socialised``,
        ``top_up``, ``reduce``; the last two, answers to margin calls, have round 0),
        ``instrument`` (``perp``, ``inverse``, ``collateral``, ``debt``), ``asset``
        (``-1``: USD),
        ``qty``, ``mark_price``, ``exec_price``, ``notional``, ``fee``, ``bad_debt``,
        ``fund_paid``.
    accounts : dict
        ``liquidated`` and ``bankrupt`` (``[path][account]`` bools) and ``pnl``
        (``[path][account]`` floats: final NAV minus initial NAV minus top-ups).

    Raises
    ------
    ValueError
        On an unknown mode, ranking or call action, inconsistent ``partial`` / ``mode``,
        bracket tables that break the specification, (lending) a position that is not a
        debt, position kinds other than 0 / 1 (or an inverse position on a lending venue,
        or with an entry price that is not positive), or behaviour parameters outside
        their ranges.
    """
    exo_l = _floats3(exo)
    depth_l = _floats2(depth)
    haircut_l = _floats1(haircut)
    unit_account_l = _ints1(unit_account)
    unit_usd_l = _floats1(unit_usd)
    unit_coll_l = _floats2(unit_coll)
    pos_unit_l = _ints1(pos_unit)
    pos_asset_l = _ints1(pos_asset)
    pos_qty_l = _floats1(pos_qty)
    pos_entry_l = _floats1(pos_entry)
    pos_kind_l = [LINEAR] * len(pos_qty_l) if pos_kind is None else _ints1(pos_kind)
    n_assets = len(haircut_l)

    if mode is None:
        mode = "partial" if partial else "full"
    elif partial and mode != "partial":
        raise ValueError(f"partial=True contradicts mode={mode!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if adl_ranking not in ADL_RANKINGS:
        raise ValueError(f"adl_ranking must be one of {ADL_RANKINGS}, got {adl_ranking!r}")

    if brackets is None:
        mmr_l = _floats1(mmr)
        cap_l = [[math.inf] for _ in range(n_assets)]
        rate_l = [[mmr_l[a]] for a in range(n_assets)]
        cum_l = [[0.0] for _ in range(n_assets)]
    else:
        cap_l, rate_l, cum_l = (_floats2(table) for table in brackets)
    if not (len(cap_l) == len(rate_l) == len(cum_l) == n_assets):
        raise ValueError("the bracket tables need one row per asset")
    _check_brackets(cap_l, rate_l, cum_l)

    if len(pos_kind_l) != len(pos_qty_l):
        raise ValueError("pos_kind needs one value per position")
    for p, kind in enumerate(pos_kind_l):
        if kind not in (LINEAR, INVERSE, CALL, PUT):
            raise ValueError(f"position {p}: kind must be 0 (linear), 1 (inverse), 2 (call) "
                             f"or 3 (put), got {kind}")
        if kind in (CALL, PUT) and options is None:
            raise ValueError(f"position {p} is an option: pass options=NaiveOptions(...)")
        if kind == INVERSE and lending:
            raise ValueError(f"lending venue: position {p} cannot be inverse")
        if kind == INVERSE and not pos_entry_l[p] > 0.0:
            raise ValueError(f"inverse position {p} needs a positive entry price")
    if lending:
        for p in range(len(pos_qty_l)):
            if not (pos_qty_l[p] <= 0.0 and pos_entry_l[p] == 0.0):
                raise ValueError(
                    f"lending venue: position {p} must be a debt (qty <= 0, entry = 0)"
                )

    reserve_l = [0.0] * len(unit_usd_l) if reserve is None else _floats1(reserve)
    if len(reserve_l) != len(unit_usd_l):
        raise ValueError("reserve needs one value per unit")
    if call_action not in CALL_ACTIONS:
        raise ValueError(f"call_action must be one of {CALL_ACTIONS}, got {call_action!r}")
    if int(funding_interval) < 0:
        raise ValueError(f"funding_interval must be >= 0, got {funding_interval!r}")
    if call_ratio != 0.0:
        if not call_ratio > 1.0:
            raise ValueError(f"call_ratio must be 0 or above 1, got {call_ratio!r}")
        if int(call_delay) < 1:
            raise ValueError(f"call_delay must be >= 1, got {call_delay!r}")
        if not call_target >= call_ratio:
            raise ValueError(f"call_target {call_target!r} is below call_ratio {call_ratio!r}")
    # Funding and margin calls apply on derivatives venues only.
    behaviour = _Behaviour(
        funding_interval=0 if lending else int(funding_interval),
        funding_rate=float(funding_rate),
        funding_premium=bool(funding_premium),
        funding_cap=float(funding_cap),
        call_ratio=0.0 if lending else float(call_ratio),
        call_prob=float(call_prob),
        call_delay=int(call_delay),
        call_action=call_action,
        call_target=float(call_target),
        reserve=reserve_l,
        rng_key=int(rng_key),
    )

    venue = _Venue(
        lending=bool(lending),
        mode=mode,
        fee_rate=float(fee_rate),
        target=float(target),
        step_fraction=float(step_fraction),
        step_min_usd=float(step_min_usd),
        step_max_usd=float(step_max_usd),
        full_below_usd=float(full_below_usd),
        backstop_ratio=float(backstop_ratio),
        fund0=float(fund0),
        adl=bool(adl),
        adl_ranking=adl_ranking,
        max_rounds=int(max_rounds),
        alpha=float(alpha),
        decay=float(decay),
        close_factor=float(close_factor),
        full_close_below_hf=float(full_close_below_hf),
        full_close_below_usd=float(full_close_below_usd),
        bonus=float(bonus),
        protocol_share=float(protocol_share),
    )

    paths: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    liquidated: list[list[bool]] = []
    bankrupt: list[list[bool]] = []
    pnl: list[list[float]] = []
    for path_index, path_exo in enumerate(exo_l):
        book = _Book(
            haircut_l,
            cap_l,
            rate_l,
            cum_l,
            unit_usd_l,
            unit_coll_l,
            pos_unit_l,
            pos_asset_l,
            pos_qty_l,
            pos_entry_l,
            pos_kind_l,
            options,
        )
        run = _PathRun(
            path_index,
            path_exo,
            depth_l,
            book,
            unit_account_l,
            int(n_accounts),
            venue,
            events,
            behaviour,
        )
        record, acc_liq, acc_bank, acc_pnl = run.run()
        paths.append(record)
        liquidated.append(acc_liq)
        bankrupt.append(acc_bank)
        pnl.append(acc_pnl)

    accounts = {"liquidated": liquidated, "bankrupt": bankrupt, "pnl": pnl}
    return paths, events, accounts
