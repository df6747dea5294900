"""Valuation (``docs/engine.md``, "Valuation"): the mutable margin book of one path and
every quantity of a unit at given marks, recomputed from its positions each time."""

from __future__ import annotations

from collections.abc import Sequence

from .inputs import INVERSE, LINEAR
from .options import CALL, PUT, NaiveOptions


class Book:
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
