"""Uncovered deficits (``docs/engine.md``, "One round", step 6): the fund's second
payment, auto-deleveraging of the opposite side in profit (ranked by PnL x margin ratio or
profit x leverage) and socialised losses."""

from __future__ import annotations

from typing import Any

from .inputs import sign


class Deficits:
    """Step 6 of a round (derivatives or lending): a mixin of :class:`~.path.PathRun`, whose
    state it reads and updates."""

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
        s = sign(c)
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
            if sign(qty_k) != -s:
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
