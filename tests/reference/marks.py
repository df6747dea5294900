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
    ``basis`` (the EMA of book - index per asset), ``exo``."""

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

    def close_basis(self, t: int, book_prices: list[float]) -> None:
        """At step ``t``'s close: ``basis += w * ((book - index) - basis)``."""
        if self.price_rule is None:
            return
        for a in range(len(self.basis)):
            gap = book_prices[a] - self.index_price(t, a)
            self.basis[a] += self.ema_weight * (gap - self.basis[a])
