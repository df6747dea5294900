"""Per-path records (``docs/engine.md``, "Per-path records"): the events, the counts and
sums of a path, and each account's flags and PnL."""

from __future__ import annotations

from typing import Any


class Records:
    """Events and per-path and per-account records: a mixin of :class:`~.path.PathRun`,
    whose state it reads and updates."""

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

    def path_record(self) -> dict[str, Any]:
        """The per-path record, after the last step.

        Returns
        -------
        dict
            ``n_liquidations``, ``n_cascade_liquidations``, ``liquidated_notional``,
            ``max_cascade_rounds``, ``bad_debt``, ``insurance_fund_end``, ``adl_notional``,
            ``socialised_loss``, ``fees``, ``fund_depleted``, ``first_liquidation_step``,
            ``min_price`` and ``final_price`` (the closing marks), ``price_bounded``,
            ``breaker_trips`` and ``breaker_paused_steps``.
        """
        return {
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
            "breaker_trips": self.breaker_trips,
            "breaker_paused_steps": self.breaker_paused_steps,
        }

    def account_pnl(self, nav0: list[float]) -> list[float]:
        """Each account's PnL, which leaves deposits out: ``NAV_end - NAV_start - top-ups``
        summed over its units.

        Parameters
        ----------
        nav0 : list of float
            Each unit's NAV at the initial prices.

        Returns
        -------
        list of float
            Per account.
        """
        book = self.book
        pnl = [0.0] * self.n_accounts
        for u in range(book.n_units):
            pnl[self.unit_account[u]] += book.nav(u, self.marks) - nav0[u] - self.top_ups[u]
        return pnl
