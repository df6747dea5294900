"""One path (``docs/engine.md``, "One path"): the state of a path's replay and its step
loop. The steps it calls are mixins, one per section of the specification."""

from __future__ import annotations

import math
from typing import Any

from .behaviour import Behaviour, BehaviourSteps
from .book import Book
from .breaker import BreakerSteps
from .deficits import Deficits
from .inputs import Venue
from .lending import LendingRound
from .marks import MarkRules
from .options import OptionExpiry
from .records import Records
from .round import DerivativesRound
from .vault import VaultSteps


class PathRun(Records, OptionExpiry, BehaviourSteps, DerivativesRound, Deficits,
              LendingRound, BreakerSteps, VaultSteps, MarkRules):
    """State and records of the replay of one path.

    The steps are those of the mixins, one per section of ``docs/engine.md``: records
    (:class:`~.records.Records`), option expiry (:class:`~.options.OptionExpiry`),
    funding and margin calls (:class:`~.behaviour.BehaviourSteps`), a derivatives round
    (:class:`~.round.DerivativesRound`), its uncovered deficits
    (:class:`~.deficits.Deficits`), a lending round (:class:`~.lending.LendingRound`) and
    the circuit breaker (:class:`~.breaker.BreakerSteps`).

    Parameters
    ----------
    path : int
        Path index (for events).
    exo : list of list of float
        Exogenous prices of this path, ``[t][a]``.
    depth : list of list of float
        Depth in USD, ``[t][a]``.
    book : Book
        A fresh copy of the initial book (mutated in place).
    unit_account : list of int
        Account of each unit.
    n_accounts : int
        Number of accounts.
    venue : Venue
        Venue and impact parameters.
    events : list of dict
        Shared event list, appended to in order.
    behaviour : Behaviour
        Funding and margin-call parameters (off on a lending venue).
    bridge : list of list of list of float, optional
        ``[t][a]`` = ``[low, high]``: the extremes of the exogenous price inside step ``t``
        (``docs/engine.md``, "Between the steps"); None: the step closes only.
    index : list of list of float, optional
        ``[t][a]``: the oracle's index (``docs/engine.md``, "Oracle, index and mark");
        None: the exogenous price.
    price_rule : list of str, optional
        Per asset the price it is valued at (``book``, ``index``, ``median``); None: every
        asset at the book.
    ema_weight : float
        Weight of a step's close in the EMA of the basis.
    oracle_rule : tuple of float, optional
        ``(heartbeat_steps, deviation, lag_steps)`` of an oracle that reads the venue's
        book (a lending venue's), published at each step's start; None: ``index``.
    oracle_noise : list of list of float, optional
        ``[t][a]``: the noise factors of that oracle's readings; None: none.
    """

    def __init__(
        self,
        path: int,
        exo: list[list[float]],
        depth: list[list[float]],
        book: Book,
        unit_account: list[int],
        n_accounts: int,
        venue: Venue,
        events: list[dict[str, Any]],
        behaviour: Behaviour,
        bridge: list[list[list[float]]] | None = None,
        index: list[list[float]] | None = None,
        price_rule: list[str] | None = None,
        ema_weight: float = 0.0,
        oracle_rule: tuple[float, float, float] | None = None,
        oracle_noise: list[list[float]] | None = None,
    ) -> None:
        self.path = path
        self.index = index
        self.price_rule = price_rule
        self.ema_weight = ema_weight
        self.oracle_rule = oracle_rule
        self.oracle_noise = oracle_noise
        self.basis = [0.0] * book.n_assets
        self.bridge = bridge
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
        self.book_px = list(exo[0])  # the venue's book price (docs/engine.md, "Oracle ...")
        self.book2 = list(exo[0])
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
        # ADL notional used in the step ``adl_step`` (the per-step cap)
        self.adl_step = -1
        self.adl_used = 0.0
        self.socialised_loss = 0.0
        self.fees = 0.0
        self.fund_depleted = False
        self.first_liquidation_step: int | None = None
        self.min_price = list(self.marks)
        # Circuit breaker: the step its latest pause ends at (0: none yet), its counts.
        self.breaker_resume = 0
        self.breaker_trips = 0
        self.breaker_paused_steps = 0
        # Per-account records.
        self.acc_liquidated = [False] * n_accounts
        self.acc_bankrupt = [False] * n_accounts
        self.init_vault()

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
            top = 0
            close = list(self.marks)  # the previous step's close (the circuit breaker's)
            if self.bridge is not None:  # inside the step: a low and a high sweep
                move = sum(math.log(self.exo[t][a] / self.exo[t - 1][a])
                           for a in range(n_assets))
                for side in ((0, 1) if move >= 0.0 else (1, 0)):
                    marks = []
                    for a in range(n_assets):
                        x = self.bridge[t][a][side]
                        # the impact outstanding, decayed by the step (not stored)
                        mark = x if self.logimp[a] == 0.0 else \
                            x * math.exp(self.logimp[a] * self.venue.decay)
                        self.check_bounds(a, x, mark)
                        marks.append(self.clamp(mark, a))
                    self.marks = marks
                    self.book_px = list(marks)  # (no oracle with the bridge)
                    book.t = t
                    top = max(top, self.cascade(t))
                    self.record_lows()
            for a in range(n_assets):
                self.logimp[a] *= self.venue.decay
            marks = [self.exo[t][a] * math.exp(self.logimp[a]) for a in range(n_assets)]
            for a in range(n_assets):
                self.check_bounds(a, self.exo[t][a], marks[a])
                marks[a] = self.clamp(marks[a], a)
            self.book_px = marks
            if self.oracle_rule is not None:
                self.publish(t)
            self.marks = self.value_marks(t, marks)
            halt = self.breaker(t, close)  # a paused step runs no margin call, no round
            book.t = t
            self.settle_options(t)
            if halt != "trading":  # no funding; answers wait for the pause's end
                if funding_interval > 0 and t % funding_interval == 0:
                    self.pay_funding(t)
                self.answer_calls(t)
                self.vault_sales(t)  # (a halted book does not trade)
                if self.vault_gradual:  # sold on the book (the marks are the book's)
                    self.book_px = list(self.marks)
            r = top if halt else max(top, self.cascade(t))
            if r > self.max_cascade_rounds:
                self.max_cascade_rounds = r
            self.record_lows()  # the step's closing mark
            self.close_basis(t, self.book_px)
            self.vault_close_step()

        return ({**self.path_record(), **self.vault_record()}, list(self.acc_liquidated),
                list(self.acc_bankrupt), self.account_pnl(nav0))

    def check_bounds(self, a: int, exo_price: float, mark: float) -> None:
        """Flag the path when asset ``a``'s exogenous price or mark is at a price bound."""
        lo, hi = self.lo[a] * (1 + 1e-9), self.hi[a] * (1 - 1e-9)
        for x in (exo_price, mark):
            if math.isnan(x) or x <= lo or x >= hi:
                self.price_bounded = True

    def cascade(self, t: int) -> int:
        """The rounds of step ``t`` at the current marks, until one liquidates no one (or
        the most rounds); returns their number."""
        book = self.book
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
        return r

    def record_lows(self) -> None:
        """The path's lowest marks so far."""
        for a in range(self.book.n_assets):
            if self.marks[a] < self.min_price[a]:
                self.min_price[a] = self.marks[a]
