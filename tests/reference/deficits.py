"""Uncovered deficits (``docs/engine.md``, "One round", step 6): the fund's second
payment, auto-deleveraging of the opposite side in profit (ranked by PnL x margin ratio,
profit x leverage or Bybit's PnL percentage x effective leverage, or shared pro rata by size
or by size x leverage, under a per-step cap on ADL notional) and socialised losses."""

from __future__ import annotations

import math
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
            0)`` with ``n_k`` the position's notional; ``bybit``: ``g_k / entry value *
            (n_k / E_v if E_v > 0 else 0)``, the entry value ``|qty_k| * entry_k`` (inverse:
            ``|qty_k|``).
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
        if self.venue.adl_ranking == "bybit":
            g_k = book.position_value(k, marks)
            if book.inverse(k):
                entry_value = abs(qty_k)
            else:
                entry_value = abs(qty_k) * book.entry[k]
            leverage = book.position_notional(k, marks) / e_v if e_v > 0.0 else 0.0
            return g_k / entry_value * leverage
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

        # The per-step cap: ADL may close at most B / |P| (inverse: B) of q, B the notional
        # left to this step; the rest is socialised with what the candidates cannot cover.
        if self.adl_step != t:
            self.adl_step = t
            self.adl_used = 0.0
        q_adl = q
        if self.venue.adl_cap != math.inf:
            budget = self.venue.adl_cap - self.adl_used
            if budget <= 0.0:
                q_adl = 0.0
            else:
                limit = budget if inverse else budget / abs(price)
                q_adl = min(q, limit)
        held = q - q_adl

        if self.venue.adl_ranking in ("pro_rata", "leverage_pro_rata"):
            rem = self.share_pro_rata(t, r, u, p, s, q, q_adl, d_p, price)
            left = d_p * (rem + held) / q
            if left > 0.0:
                self.socialise(t, r, u, a, left, position=p)
            return

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

        rem = q_adl
        for _, k in scored:
            if rem <= 0.0:
                break
            qty_k = book.qty[k]
            dq = min(rem, abs(qty_k))
            self.adl_fill(t, r, k, s, dq, q, d_p, price)
            rem -= dq
        left = d_p * (rem + held) / q
        if left > 0.0:
            self.socialise(t, r, u, a, left, position=p)

    def adl_fill(self, t: int, r: int, k: int, s: float, dq: float, q: float, d_p: float,
                 price: float) -> None:
        """Candidate ``k`` closes ``dq`` (it trades ``s * dq``) at the ADL price ``price``.

        It realises ``-s * dq`` at ``price`` as in a liquidation (notional ``dq * |P|``,
        inverse ``dq``) and covers ``b = dq * D_p / q``. The event also records the
        unit's leverage ``N_v / E_v`` (NaN when ``E_v <= 0``; ``N_v`` the notional of its
        perpetuals) and unrealised PnL ``E_v - W_v`` just before the fill, and the notional
        counts toward the step's cap.
        """
        book = self.book
        marks = self.marks
        a = book.asset[k]
        v = book.pos_unit[k]
        qty_k = book.qty[k]
        e_v = book.equity(v, marks)
        w_v = book.wallet(v, marks)
        n_v = 0.0
        for j in book.open_positions(v):
            if not book.is_option(j):
                n_v += book.position_notional(j, marks)
        notional = book.realise(v, k, -s * dq, price)
        book.qty[k] = 0.0 if dq == abs(qty_k) else qty_k + s * dq
        b = dq * d_p / q
        self.adl_notional += notional
        self.adl_used += notional
        self.event(
            t, r, v, "adl", book.instrument(k), a, s * dq, marks[a], price, notional, bad_debt=b
        )
        self.events[-1]["leverage"] = n_v / e_v if e_v > 0.0 else math.nan
        self.events[-1]["pnl"] = e_v - w_v

    def share_pro_rata(self, t: int, r: int, u: int, p: int, s: float, q: float,
                       q_adl: float, d_p: float, price: float) -> float:
        """``pro_rata`` / ``leverage_pro_rata``: share ``q_adl`` of bankrupt position ``p``
        between every candidate (as for the rankings) in increasing position index.

        Weights, over the state before any fill: ``w_k = |qty_k|`` (``pro_rata``) or
        ``|qty_k| * (N_v / E_v)`` (``leverage_pro_rata``; 0 when ``E_v <= 0``, and a
        candidate of weight 0 takes nothing), ``W`` their sum. Candidate ``k``'s target is
        ``x_k = q_adl * w_k / W``, the last one's ``q_adl`` minus the targets before it
        (so that the targets add up to ``q_adl``); it closes ``min(x_k, |qty_k|)`` (nothing
        when that is not positive).

        Returns
        -------
        float
            What the candidates left of ``q_adl`` (``q_adl`` minus what they closed).
        """
        book = self.book
        marks = self.marks
        a = book.asset[p]
        candidates: list[int] = []
        weights: list[float] = []
        for k in range(len(book.qty)):
            qty_k = book.qty[k]
            if qty_k == 0.0 or book.asset[k] != a or book.kind[k] != book.kind[p]:
                continue
            if sign(qty_k) != -s or book.pos_unit[k] == u:
                continue
            if not book.position_value(k, marks) > 0.0:
                continue
            w_k = abs(qty_k)
            if self.venue.adl_ranking == "leverage_pro_rata":
                v = book.pos_unit[k]
                e_v = book.equity(v, marks)
                n_v = 0.0
                for j in book.open_positions(v):
                    if not book.is_option(j):
                        n_v += book.position_notional(j, marks)
                w_k = w_k * (n_v / e_v) if e_v > 0.0 else 0.0
            if w_k > 0.0:
                candidates.append(k)
                weights.append(w_k)
        total = 0.0
        for w_k in weights:
            total += w_k
        rem = q_adl
        targets_left = q_adl
        for n, k in enumerate(candidates):
            if n == len(candidates) - 1:
                x = targets_left
            else:
                x = q_adl * weights[n] / total
                targets_left -= x
            dq = min(x, abs(book.qty[k]))
            if dq <= 0.0:
                continue
            self.adl_fill(t, r, k, s, dq, q, d_p, price)
            rem -= dq
        return rem

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
