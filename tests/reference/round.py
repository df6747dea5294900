"""One derivatives round (``docs/engine.md``, "One round"): fractions (and backstop
take-overs), the flow, its impact, the settlement unit by unit and the new marks; step 6,
the uncovered deficits, is in :mod:`.deficits`. The impact and the marks serve the lending
round too."""

from __future__ import annotations

import math

from .inputs import sign


class DerivativesRound:
    """Steps 1 to 5 of a derivatives round: a mixin of :class:`~.path.PathRun`, whose state
    it reads and updates."""

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
            The marks after the round (docs/engine.md, "Oracle, index and mark") from the
            book's ``B2[a] = B[a] * exp(d[a])`` (kept in ``self.book2`` for
            :meth:`move_marks`; ``B`` is the book price, the marks without an oracle).
        exec_px : list of float
            Fill price ``X[a]`` per asset.
        """
        marks = self.book_px  # the fills execute on the venue's book
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
                d[a] = -sign(q_usd) * 0.01 * (abs(q_usd) / depth) ** alpha
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
        self.book2 = new_marks
        return d, self.value_marks(t, new_marks), exec_px

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
        self.book_px = self.book2
        for a in range(self.book.n_assets):
            self.logimp[a] += d[a]

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

            if backstop:  # gradual disposal: into the vault's inventory
                self.vault_take(u, closed)

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
            if backstop:
                self.vault_kept_equity(fee)

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
