"""Oracle, index and mark (``docs/engine.md``, "Oracle, index and mark"): the price each
asset is valued at, from the oracle's index, the venue's book price and the EMA of the
basis between them."""

from __future__ import annotations

#: the price an asset may be valued at
PRICE_RULES = ("book", "index", "median")


class MarkRules:
    """The valuation marks of a path. Needs, on the path: ``index`` (``[t][a]``, the
    oracle's index, or None: the exogenous price), ``price_rule`` (one of
    :data:`PRICE_RULES` per asset, or None: every asset at the book), ``ema_weight`` and
    ``basis`` (the EMA of book - index per asset), ``exo``; for an oracle that reads a
    lending venue's book, ``oracle_rule`` (else None) and ``oracle_noise``."""

    index: list[list[float]] | None
    price_rule: list[str] | None
    ema_weight: float
    basis: list[float]
    exo: list[list[float]]

    def index_price(self, t: int, a: int) -> float:
        """The oracle's index of asset ``a`` at step ``t``."""
        return self.exo[t][a] if self.index is None else self.index[t][a]

    def value_marks(self, t: int, book_prices: list[float]) -> list[float]:
        """The marks at step ``t`` given the venue's book prices: per asset the book, the
        index, or the median of index, book and index + basis."""
        if self.price_rule is None:
            return list(book_prices)
        out = []
        for a, rule in enumerate(self.price_rule):
            i, b = self.index_price(t, a), book_prices[a]
            if rule == "index":
                out.append(i)
            elif rule == "median":
                out.append(sorted([i, b, i + self.basis[a]])[1])
            else:
                out.append(b)
        return out

    def publish(self, t: int) -> None:
        """An oracle that reads a lending venue's book (``self.oracle_rule`` = heartbeat,
        deviation, lag; ``self.oracle_noise[t][a]`` the noise factors or None), at the
        start of step ``t``: it reads the book times the noise factor (within the price
        bounds), publishes the reading when its heartbeat is due or it moved by more than
        the deviation since its last publication, and the index of step ``t`` is its
        publication of step ``max(t - lag, 0)``."""
        heartbeat, deviation, lag = self.oracle_rule
        if t == 1:  # in sync at the start
            self.published = [list(self.exo[0])]
            self.pub_step = [0] * len(self.exo[0])
            self.index = [list(self.exo[0])]
        row = []
        for a, last in enumerate(self.published[-1]):
            r = self.book_px[a]
            if self.oracle_noise is not None:
                r = self.clamp(r * self.oracle_noise[t][a], a)
            if t - self.pub_step[a] >= heartbeat or (
                    deviation > 0.0 and abs(r - last) > deviation * last):
                row.append(r)
                self.pub_step[a] = t
            else:
                row.append(last)
        self.published.append(row)
        self.index.append(self.published[max(t - int(lag), 0)])

    def close_basis(self, t: int, book_prices: list[float]) -> None:
        """At step ``t``'s close: ``basis += w * ((book - index) - basis)``."""
        if self.price_rule is None:
            return
        for a in range(len(self.basis)):
            gap = book_prices[a] - self.index_price(t, a)
            self.basis[a] += self.ema_weight * (gap - self.basis[a])
