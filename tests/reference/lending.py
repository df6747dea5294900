"""A lending round (``docs/engine.md``, "A lending round"): close factor, bonus,
protocol share and the write-off of a cleared unit's remaining debt."""

from __future__ import annotations

from typing import Any


class LendingRound:
    """Steps 1 to 5 of a lending round: a mixin of :class:`~.path.PathRun`, whose state it
    reads and updates (impact and marks from :class:`~.round.DerivativesRound`, step 6 from
    :class:`~.deficits.Deficits`)."""

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
