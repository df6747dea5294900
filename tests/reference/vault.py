"""The backstop vault's inventory (``docs/engine.md``, "The backstop vault's inventory"):
with ``vault_disposal = "gradual"`` the vault holds what it takes over and sells it through
the market, a share per step capped by the depth; its PnL and drawdown."""

from __future__ import annotations

import math
from typing import Any

from .inputs import sign


class VaultSteps:
    """The vault's take-overs, sales and value: a mixin of :class:`~.path.PathRun`, whose
    state it reads and updates."""

    def init_vault(self) -> None:
        """An empty vault at the start of the path."""
        n_assets = self.book.n_assets
        self.vault_inv = [0.0] * n_assets  # coins, + long
        self.vault_base = [0.0] * n_assets  # what a step's share is taken of
        self.vault_cash = 0.0
        self.vault_kept = 0.0  # the equity kept (its fees, paid into the fund)
        self.vault_peak = 0.0
        self.vault_drawdown = 0.0
        self.vault_takeovers = 0

    @property
    def vault_gradual(self) -> bool:
        """Whether the vault holds what it takes over."""
        return self.venue.vault_disposal == "gradual" and self.venue.backstop_ratio > 0.0

    def vault_take(self, u: int, closed: list[tuple[int, float, float]]) -> None:
        """Unit ``u``, just closed at the round-start marks by a take-over, goes into the
        inventory: per asset its collateral (its inverse positions' coin PnL included),
        plus the linear quantities closed, plus the inverse contracts closed over the mark
        (their coins); the vault pays for it at the marks. Options stay out."""
        if not self.vault_gradual:
            return
        book = self.book
        for a in range(book.n_assets):
            q = book.coll[u][a]
            for p, c, _ in closed:
                if book.asset[p] != a or book.is_option(p):
                    continue
                q += c / self.marks[a] if book.inverse(p) else c
            if q != 0.0:
                self.vault_inv[a] += q
                self.vault_cash -= q * self.marks[a]
                self.vault_base[a] = abs(self.vault_inv[a])

    def vault_kept_equity(self, fee: float) -> None:
        """A take-over's fee (the unit's equity left) is the vault's."""
        self.vault_kept += fee
        self.vault_takeovers += 1

    def vault_sales(self, t: int) -> None:
        """The sales of step ``t``, before its rounds: per asset, ``min(share x base,
        depth_share x depth / M, |inventory|)`` sold toward zero with a round's impact law,
        filled at ``M + (M2 - M) / (1 + alpha)``."""
        if not self.vault_gradual:
            return
        venue = self.venue
        alpha = venue.alpha
        for a in range(self.book.n_assets):
            held = self.vault_inv[a]
            if held == 0.0:
                continue
            m = self.marks[a]
            size = min(venue.vault_disposal_share * self.vault_base[a],
                       venue.vault_depth_share * self.depth[t][a] / m)
            if not size > 0.0:
                continue
            whole = size >= abs(held)
            if whole:
                size = abs(held)
            s = size * sign(held)
            m2, x = m, m
            if alpha != 0.0:
                d = -sign(s * m) * 0.01 * (abs(s * m) / self.depth[t][a]) ** alpha
                try:
                    m2 = m * math.exp(d)
                except OverflowError:
                    m2 = math.inf
                if not self.lo[a] <= m2 <= self.hi[a]:
                    self.price_bounded = True
                    m2 = self.clamp(m2, a)
                    d = math.log(m2 / m)
                x = m + (m2 - m) / (1.0 + alpha)
                self.logimp[a] += d
                self.marks = [m2 if b == a else self.marks[b] for b in range(len(self.marks))]
            self.vault_cash += s * x
            self.vault_inv[a] = 0.0 if whole else held - s
            self.events.append({
                "path": self.path, "step": t, "round": 0, "account": -1, "kind": "vault_sale",
                "instrument": "collateral", "asset": a, "qty": -s, "mark_price": m,
                "exec_price": x, "notional": abs(s) * x, "fee": 0.0, "bad_debt": 0.0,
                "fund_paid": 0.0})

    def vault_value(self) -> float:
        """The vault's marked value: the equity kept, its cash and its inventory."""
        held = sum(q * m for q, m in zip(self.vault_inv, self.marks, strict=True) if q != 0.0)
        return self.vault_kept + self.vault_cash + held

    def vault_close_step(self) -> None:
        """At a step's close: the running peak of the value (from 0) and the drawdown."""
        if not self.vault_gradual:
            return
        value = self.vault_value()
        self.vault_peak = max(self.vault_peak, value)
        self.vault_drawdown = max(self.vault_drawdown, self.vault_peak - value)

    def vault_record(self) -> dict[str, Any]:
        """The vault's per-path outputs."""
        if not self.vault_gradual:
            return {"vault_pnl": self.vault_kept, "vault_drawdown": 0.0,
                    "vault_inventory_end_usd": 0.0, "vault_takeovers": self.vault_takeovers}
        held = sum(q * m for q, m in zip(self.vault_inv, self.marks, strict=True) if q != 0.0)
        return {"vault_pnl": self.vault_value(), "vault_drawdown": self.vault_drawdown,
                "vault_inventory_end_usd": held, "vault_takeovers": self.vault_takeovers}
