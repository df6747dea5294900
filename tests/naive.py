"""Slow, literal pure-Python reference of the margin replay engine.

This module implements ``docs/engine.md`` step by step with plain Python floats, lists and
loops (``math`` only). It exists so that tests can compare the fast Numba engine against an
implementation that is easy to read and check by hand. Nothing is cached: equity,
maintenance, notional and wallet are recomputed from the positions every time they are
needed, and every operation happens in the order the specification gives.

Input arrays (NumPy arrays or nested sequences) are converted to Python lists of floats or
ints on entry; nothing else from NumPy is used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["naive_replay"]


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


# ---------------------------------------------------------------------------------------
# The book
# ---------------------------------------------------------------------------------------


class _Book:
    """Mutable margin book: units, their USD, collateral and positions.

    Parameters
    ----------
    haircut : list of float
        Collateral haircut per asset.
    mmr : list of float
        Maintenance margin rate per asset.
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
    """

    def __init__(
        self,
        haircut: list[float],
        mmr: list[float],
        usd: list[float],
        coll: list[list[float]],
        pos_unit: list[int],
        pos_asset: list[int],
        pos_qty: list[float],
        pos_entry: list[float],
    ) -> None:
        self.n_assets = len(haircut)
        self.n_units = len(usd)
        self.haircut = list(haircut)
        self.mmr = list(mmr)
        self.usd = list(usd)
        self.coll = [list(row) for row in coll]
        self.pos_unit = list(pos_unit)
        self.asset = list(pos_asset)
        self.qty = list(pos_qty)
        self.entry = list(pos_entry)
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

    def notional(self, u: int, marks: Sequence[float]) -> float:
        """Notional ``N_u = sum_p |qty_p| * M[asset_p]``.

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
            total += abs(self.qty[p]) * marks[self.asset[p]]
        return total

    def maintenance(self, u: int, marks: Sequence[float]) -> float:
        """Maintenance ``MM_u = sum_p |qty_p| * M[asset_p] * mmr[asset_p]``.

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
            a = self.asset[p]
            total += abs(self.qty[p]) * marks[a] * self.mmr[a]
        return total

    def wallet(self, u: int, marks: Sequence[float]) -> float:
        """Wallet ``W_u = usd_u + sum_a coll[u,a] * M[a] * (1 - h[a])``.

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
            total += self.coll[u][a] * marks[a] * (1.0 - self.haircut[a])
        return total

    def equity(self, u: int, marks: Sequence[float]) -> float:
        """Equity ``E_u = W_u + sum_p qty_p * (M[asset_p] - entry_p)``.

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
        total = self.usd[u]
        for a in range(self.n_assets):
            total += self.coll[u][a] * marks[a] * (1.0 - self.haircut[a])
        for p in self.open_positions(u):
            total += self.qty[p] * (marks[self.asset[p]] - self.entry[p])
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
            ``usd_u + sum_a coll[u,a] * M[a] + sum_p qty_p * (M[asset_p] - entry_p)``.
        """
        total = self.usd[u]
        for a in range(self.n_assets):
            total += self.coll[u][a] * marks[a]
        for p in self.open_positions(u):
            total += self.qty[p] * (marks[self.asset[p]] - self.entry[p])
        return total

    def liquidatable(self, u: int, marks: Sequence[float]) -> bool:
        """Whether unit ``u`` has an open position and ``E_u < MM_u``.

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
        if not self.open_positions(u):
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
    venue : dict
        ``fee_rate``, ``partial``, ``target``, ``fund0``, ``adl``, ``max_rounds``,
        ``alpha``, ``decay``.
    events : list of dict
        Shared event list, appended to in order.
    """

    def __init__(
        self,
        path: int,
        exo: list[list[float]],
        depth: list[list[float]],
        book: _Book,
        unit_account: list[int],
        n_accounts: int,
        venue: dict[str, Any],
        events: list[dict[str, Any]],
    ) -> None:
        self.path = path
        self.exo = exo
        self.depth = depth
        self.book = book
        self.unit_account = unit_account
        self.n_accounts = n_accounts
        self.fee_rate = float(venue["fee_rate"])
        self.partial = bool(venue["partial"])
        self.target = float(venue["target"])
        self.fund = float(venue["fund0"])
        self.adl = bool(venue["adl"])
        self.max_rounds = int(venue["max_rounds"])
        self.alpha = float(venue["alpha"])
        self.decay = float(venue["decay"])
        self.events = events

        n_assets = book.n_assets
        self.logimp = [0.0] * n_assets
        self.marks = list(exo[0])

        # Per-path records.
        self.n_liquidations = 0
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
            Per account: any unit liquidated.
        bankrupt : list of bool
            Per account: any bad debt.
        pnl : list of float
            Per account: final NAV minus initial NAV, summed over its units.
        """
        book = self.book
        n_assets = book.n_assets
        initial_prices = list(self.exo[0])
        nav0 = [book.nav(u, initial_prices) for u in range(book.n_units)]

        steps = len(self.exo) - 1
        for t in range(1, steps + 1):
            for a in range(n_assets):
                self.logimp[a] *= self.decay
            self.marks = [self.exo[t][a] * math.exp(self.logimp[a]) for a in range(n_assets)]
            r = 0
            while r < self.max_rounds:
                liq = [u for u in range(book.n_units) if book.liquidatable(u, self.marks)]
                if not liq:
                    break
                r = r + 1
                self.run_round(t, r, liq)
            if r > self.max_cascade_rounds:
                self.max_cascade_rounds = r
            # The step's closing mark.
            for a in range(n_assets):
                if self.marks[a] < self.min_price[a]:
                    self.min_price[a] = self.marks[a]

        pnl = [0.0] * self.n_accounts
        for u in range(book.n_units):
            pnl[self.unit_account[u]] += book.nav(u, self.marks) - nav0[u]

        record = {
            "n_liquidations": self.n_liquidations,
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
        }
        return record, list(self.acc_liquidated), list(self.acc_bankrupt), pnl

    # -- one round -----------------------------------------------------------------------

    def fraction(self, u: int) -> float:
        """Step 1: the fraction ``f_u`` of unit ``u`` to close, at the round-start marks.

        Parameters
        ----------
        u : int
            A liquidatable unit.

        Returns
        -------
        float
            ``1.0`` for a full liquidation, else a value in ``[0, 1)``.
        """
        if not self.partial:
            return 1.0
        book = self.book
        e = book.equity(u, self.marks)
        mm = book.maintenance(u, self.marks)
        n = book.notional(u, self.marks)
        den = self.target * mm - self.fee_rate * n
        if e <= 0.0 or den <= 0.0:
            return 1.0
        f = (self.target * mm - e) / den
        if f >= 1.0:
            return 1.0
        if f < 0.0:
            f = 0.0
        return f

    def run_round(self, t: int, r: int, liq: list[int]) -> None:
        """Run one cascade round (steps 1 to 6 of the specification).

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
        n_assets = book.n_assets
        marks = self.marks  # M: the round-start marks (not mutated below)

        # 1. Fractions.
        fracs = [self.fraction(u) for u in liq]

        # 2. Flow (asset units, positive = net selling) and net notional.
        flow = [0.0] * n_assets
        for u, f in zip(liq, fracs, strict=True):
            for p in book.open_positions(u):
                flow[book.asset[p]] += f * book.qty[p]
            if f == 1.0:
                for a in range(n_assets):
                    flow[a] += book.coll[u][a]
        net = [flow[a] * marks[a] for a in range(n_assets)]

        # 3. Impact: d, new marks M2 and execution prices X.
        d = [0.0] * n_assets
        new_marks = [0.0] * n_assets
        exec_px = [0.0] * n_assets
        for a in range(n_assets):
            q_usd = net[a]
            if self.alpha == 0.0 or q_usd == 0.0:
                d[a] = 0.0
            else:
                depth = self.depth[t][a]
                if not depth > 0.0:
                    raise ValueError(f"depth[{t}, {a}] must be positive, got {depth!r}")
                d[a] = -_sign(q_usd) * 0.01 * (abs(q_usd) / depth) ** self.alpha
            new_marks[a] = marks[a] * math.exp(d[a])
            if d[a] == 0.0:
                exec_px[a] = marks[a]
            else:
                exec_px[a] = marks[a] + (new_marks[a] - marks[a]) / (1.0 + self.alpha)

        # 4. Settle, unit by unit.
        remembered: list[tuple[int, list[tuple[int, float, float]], float]] = []
        for u, f in zip(liq, fracs, strict=True):
            full = f == 1.0
            account = self.unit_account[u]
            self.n_liquidations += 1
            self.acc_liquidated[account] = True
            if self.first_liquidation_step is None:
                self.first_liquidation_step = t

            closed: list[tuple[int, float, float]] = []  # (position, c, n_p)
            for p in book.open_positions(u):
                a = book.asset[p]
                qty = book.qty[p]
                c = qty if full else f * qty
                book.usd[u] += c * (exec_px[a] - book.entry[p])
                book.qty[p] = 0.0 if full else qty - c
                n_p = abs(c) * exec_px[a]
                closed.append((p, c, n_p))

            sales: list[tuple[int, float]] = []  # (asset, amount)
            if full:
                for a in range(n_assets):
                    amount = book.coll[u][a]
                    if amount > 0.0:
                        book.usd[u] += amount * exec_px[a]
                        book.coll[u][a] = 0.0
                        sales.append((a, amount))

            e2 = book.equity(u, new_marks)

            sum_n = 0.0
            for _, _, n_p in closed:
                sum_n += n_p
            fee = min(self.fee_rate * sum_n, max(e2, 0.0))
            book.usd[u] -= fee
            self.fund += fee
            self.fees += fee

            bd = 0.0
            uncovered = 0.0
            if full and book.usd[u] < 0.0:
                bd = -book.usd[u]
                book.usd[u] = 0.0
                paid = min(bd, self.fund)
                self.fund -= paid
                uncovered = bd - paid
                if uncovered > 0.0:
                    self.fund_depleted = True
            self.bad_debt += bd
            if bd > 0.0:
                self.acc_bankrupt[account] = True

            for p, c, n_p in closed:
                a = book.asset[p]
                self.liquidated_notional += n_p
                self.events.append(
                    {
                        "path": self.path,
                        "step": t,
                        "round": r,
                        "account": account,
                        "kind": "liquidation",
                        "instrument": "perp",
                        "asset": a,
                        "qty": -c,
                        "mark_price": marks[a],
                        "exec_price": exec_px[a],
                        "notional": n_p,
                        "fee": fee * n_p / sum_n if sum_n != 0.0 else 0.0,
                        "bad_debt": bd * n_p / sum_n if sum_n != 0.0 else 0.0,
                    }
                )
            for a, amount in sales:
                self.events.append(
                    {
                        "path": self.path,
                        "step": t,
                        "round": r,
                        "account": account,
                        "kind": "liquidation",
                        "instrument": "collateral",
                        "asset": a,
                        "qty": -amount,
                        "mark_price": marks[a],
                        "exec_price": exec_px[a],
                        "notional": amount * exec_px[a],
                        "fee": 0.0,
                        "bad_debt": 0.0,
                    }
                )

            if uncovered > 0.0:
                remembered.append((u, closed, uncovered))

        # 5. Marks.
        self.marks = new_marks
        for a in range(n_assets):
            self.logimp[a] += d[a]

        # 6. Uncovered deficits.
        for u, closed, uncovered in remembered:
            if not self.adl:
                self.socialised_loss += uncovered
                continue
            sum_n = 0.0
            for _, _, n_p in closed:
                sum_n += n_p
            if sum_n == 0.0:
                # Shares are undefined (every closed notional is 0): socialise all of D.
                self.socialised_loss += uncovered
                continue
            for p, c, n_p in closed:
                d_p = uncovered * n_p / sum_n
                self.deleverage(t, r, u, book.asset[p], c, d_p)

    def deleverage(self, t: int, r: int, u: int, a: int, c: float, d_p: float) -> None:
        """Step 6 with ADL on: cover the share ``D_p`` of one closed bankrupt position.

        Parameters
        ----------
        t : int
            Step index.
        r : int
            Round number.
        u : int
            The bankrupt unit.
        a : int
            Asset of the closed position.
        c : float
            Closed (signed) quantity of the bankrupt position.
        d_p : float
            Uncovered deficit attributed to this position.
        """
        book = self.book
        marks = self.marks  # post-round marks
        s = _sign(c)
        q = abs(c)
        price = marks[a] + s * d_p / q

        # Candidates and their scores, computed once over the current state.
        scored: list[tuple[float, int]] = []
        for k in range(len(book.qty)):
            qty_k = book.qty[k]
            if qty_k == 0.0 or book.asset[k] != a:
                continue
            if _sign(qty_k) != -s:
                continue
            v = book.pos_unit[k]
            if v == u:
                continue
            g_k = qty_k * (marks[a] - book.entry[k])
            if not g_k > 0.0:
                continue
            w_v = book.wallet(v, marks)
            mm_v = book.maintenance(v, marks)
            e_v = book.equity(v, marks)
            ratio = mm_v / e_v if e_v > 0.0 else 0.0
            score = (g_k / max(1.0, w_v)) * ratio
            scored.append((score, k))
        scored.sort(key=lambda item: (-item[0], item[1]))

        rem = q
        for _, k in scored:
            if rem <= 0.0:
                break
            v = book.pos_unit[k]
            qty_k = book.qty[k]
            dq = min(rem, abs(qty_k))
            book.usd[v] += (-s * dq) * (price - book.entry[k])
            book.qty[k] = 0.0 if dq == abs(qty_k) else qty_k + s * dq
            b = dq * d_p / q
            rem -= dq
            notional = dq * abs(price)
            self.adl_notional += notional
            self.events.append(
                {
                    "path": self.path,
                    "step": t,
                    "round": r,
                    "account": self.unit_account[v],
                    "kind": "adl",
                    "instrument": "perp",
                    "asset": a,
                    "qty": s * dq,
                    "mark_price": marks[a],
                    "exec_price": price,
                    "notional": notional,
                    "fee": 0.0,
                    "bad_debt": b,
                }
            )
        self.socialised_loss += d_p * rem / q


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
    partial: bool,
    target: float,
    fund0: float,
    adl: bool,
    max_rounds: int,
    alpha: float,
    decay: float,
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
        Collateral haircut per asset.
    mmr : array_like of float, shape (A,)
        Maintenance margin rate per asset.
    unit_account : array_like of int, shape (U,)
        Account index of each margin unit.
    unit_usd : array_like of float, shape (U,)
        USD balance of each unit.
    unit_coll : array_like of float, shape (U, A)
        Collateral amounts of each unit.
    pos_unit : array_like of int, shape (P,)
        Unit of each position (non-decreasing).
    pos_asset : array_like of int, shape (P,)
        Asset of each position.
    pos_qty : array_like of float, shape (P,)
        Signed quantity of each position.
    pos_entry : array_like of float, shape (P,)
        Entry price of each position.
    n_accounts : int
        Number of accounts.
    fee_rate : float
        Liquidation fee rate.
    partial : bool
        ``True`` for partial mode, ``False`` for full mode.
    target : float
        Partial-liquidation target ratio (> 1).
    fund0 : float
        Initial insurance fund in USD.
    adl : bool
        Whether auto-deleveraging covers uncovered deficits.
    max_rounds : int
        Maximum cascade rounds per step.
    alpha : float
        Impact exponent: ``0.0`` means impact kind ``none``, ``1.0`` linear, ``0.5`` sqrt.
    decay : float
        Per-step factor on the accumulated log impact.

    Returns
    -------
    paths : list of dict
        One record per path: ``n_liquidations``, ``liquidated_notional``,
        ``max_cascade_rounds``, ``bad_debt``, ``insurance_fund_end``, ``adl_notional``,
        ``socialised_loss``, ``fees``, ``fund_depleted``, ``first_liquidation_step``,
        ``min_price`` and ``final_price`` (lists of A floats).
    events : list of dict
        Events in the order produced, path after path: ``path``, ``step``, ``round``,
        ``account``, ``kind``, ``instrument``, ``asset``, ``qty``, ``mark_price``,
        ``exec_price``, ``notional``, ``fee``, ``bad_debt``.
    accounts : dict
        ``liquidated`` and ``bankrupt`` (``[path][account]`` bools) and ``pnl``
        (``[path][account]`` floats).
    """
    exo_l = _floats3(exo)
    depth_l = _floats2(depth)
    haircut_l = _floats1(haircut)
    mmr_l = _floats1(mmr)
    unit_account_l = _ints1(unit_account)
    unit_usd_l = _floats1(unit_usd)
    unit_coll_l = _floats2(unit_coll)
    pos_unit_l = _ints1(pos_unit)
    pos_asset_l = _ints1(pos_asset)
    pos_qty_l = _floats1(pos_qty)
    pos_entry_l = _floats1(pos_entry)

    venue = {
        "fee_rate": fee_rate,
        "partial": partial,
        "target": target,
        "fund0": fund0,
        "adl": adl,
        "max_rounds": max_rounds,
        "alpha": alpha,
        "decay": decay,
    }

    paths: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    liquidated: list[list[bool]] = []
    bankrupt: list[list[bool]] = []
    pnl: list[list[float]] = []
    for path_index, path_exo in enumerate(exo_l):
        book = _Book(
            haircut_l,
            mmr_l,
            unit_usd_l,
            unit_coll_l,
            pos_unit_l,
            pos_asset_l,
            pos_qty_l,
            pos_entry_l,
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
        )
        record, acc_liq, acc_bank, acc_pnl = run.run()
        paths.append(record)
        liquidated.append(acc_liq)
        bankrupt.append(acc_bank)
        pnl.append(acc_pnl)

    accounts = {"liquidated": liquidated, "bankrupt": bankrupt, "pnl": pnl}
    return paths, events, accounts
