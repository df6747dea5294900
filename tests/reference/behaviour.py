"""Behaviour between liquidations (``docs/engine.md``, "Behaviour: funding and margin
calls"): perpetual funding (constant or premium), margin calls and their answers (a top-up
from a reserve or a reduction of every position) after a delay, with a counter-based
(splitmix64) answer draw."""

from __future__ import annotations

from dataclasses import dataclass

from .inputs import LINEAR, MASK64


def splitmix64(z: int) -> int:
    """Steele, Lea and Flood's splitmix64 finaliser, in 64-bit wrapping arithmetic.

    Parameters
    ----------
    z : int
        The counter, taken modulo ``2**64``.

    Returns
    -------
    int
        The mixed value, in ``[0, 2**64)``.
    """
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    return z


def draw(rng_key: int, path: int, u: int) -> float:
    """The answer draw of unit ``u`` on a path: a uniform number on ``[0, 1)``.

    ``draw(path, u) = (splitmix64(rng_key + path * 2**32 + u) >> 11) * 2**-53``, the
    counter taken modulo ``2**64``.

    Parameters
    ----------
    rng_key : int
        Key of the replay's draws.
    path : int
        The path's index in the replay (0-based).
    u : int
        Unit index.

    Returns
    -------
    float
        The draw (exact: the top 53 bits of the mixed counter, scaled by ``2**-53``).
    """
    z = splitmix64((rng_key + path * 2**32 + u) & MASK64)
    return float(z >> 11) * 2.0**-53


@dataclass(frozen=True)
class Behaviour:
    """Funding and margin-call parameters of the replay (see ``naive_replay`` for each).

    Attributes
    ----------
    funding_interval : int
        Funding every ``funding_interval`` steps (0 = off).
    funding_rate : float
        Rate ``phi`` per interval.
    funding_premium : bool
        Premium mode (``phi`` plus the mark's premium over the index, capped) instead of
        constant.
    funding_cap : float
        Cap ``c`` of the premium rate.
    call_ratio : float
        Margin-call ratio ``kappa`` (0 = off).
    call_prob : float
        Answer probability ``pi``.
    call_delay : int
        Delay ``d`` in steps between a call and its answer.
    call_action : str
        ``"top_up"`` or ``"reduce"``.
    call_target : float
        Target ratio ``tau`` of an answer.
    reserve : list of float
        USD each unit may deposit when it answers (``top_up``).
    rng_key : int
        Key of the answer draws.
    """

    funding_interval: int
    funding_rate: float
    funding_premium: bool
    funding_cap: float
    call_ratio: float
    call_prob: float
    call_delay: int
    call_action: str
    call_target: float
    reserve: list[float]
    rng_key: int


class BehaviourSteps:
    """Funding, answers to margin calls and the calls themselves: a mixin of
    :class:`~.path.PathRun`, whose state (``book``, ``marks``, ``exo``, ``behaviour``,
    ``armed``, ``answers_due``, ``top_ups``) it reads and updates; events through
    ``event``.
    """

    def funding_rates(self, t: int) -> list[float]:
        """The funding rate of every asset at step ``t``, at the current marks.

        Parameters
        ----------
        t : int
            Step index (selects the index price ``exo[t]``).

        Returns
        -------
        list of float
            ``phi`` (constant), or ``min(max(phi + M[a] / exo[t, a] - 1, -c), c)``
            (premium).
        """
        beh = self.behaviour
        rates = []
        for a in range(self.book.n_assets):
            if beh.funding_premium:
                premium = beh.funding_rate + (self.marks[a] / self.index_price(t, a) - 1.0)
                rates.append(min(max(premium, -beh.funding_cap), beh.funding_cap))
            else:
                rates.append(beh.funding_rate)
        return rates

    def pay_funding(self, t: int) -> None:
        """Funding at step ``t``, unit by unit.

        ``usd_u -= pay_u`` with ``pay_u = sum_p qty_p * M[a_p] * rate[a_p]`` over the open
        linear positions (summed first, in position order); then each open inverse position,
        in order, pays in its coin: ``coll[u, a_p] -= qty_p * rate[a_p] / M[a_p]``. Longs
        pay shorts when the rate is positive. No events.

        Parameters
        ----------
        t : int
            Step index.
        """
        book = self.book
        rates = self.funding_rates(t)
        for u in range(book.n_units):
            pay = 0.0
            for p in book.open_positions(u):
                if book.kind[p] == LINEAR:  # options pay no funding
                    a = book.asset[p]
                    pay += book.qty[p] * self.marks[a] * rates[a]
            book.usd[u] -= pay
            for p in book.open_positions(u):
                if book.inverse(p):
                    a = book.asset[p]
                    book.coll[u][a] -= book.qty[p] * rates[a] / self.marks[a]

    def answer_calls(self, t: int) -> None:
        """Answers to the margin calls due at step ``t`` (or before it, deferred by a
        circuit breaker's pause under ``"trading"``), in increasing unit index.

        Only a live unit answers, at the current marks (after funding). ``top_up``
        deposits ``x = min(reserve[u], max(tau * MM_u - E_u, 0))``; ``reduce`` closes the
        fraction ``f = 1 - E_u / (tau * MM_u)`` (at most 1) of every open position at the
        mark, without fee or impact, realised as in a liquidation (an inverse position's
        PnL in its coin). Events have round 0.

        Parameters
        ----------
        t : int
            Step index.
        """
        book = self.book
        beh = self.behaviour
        marks = self.marks
        tau = beh.call_target
        due = [s for s in self.answers_due if s <= t]  # (< t: deferred by a pause)
        for u in sorted(u for s in due for u in self.answers_due.pop(s)):
            if not book.live(u):
                continue
            e = book.equity(u, marks)
            mm = book.maintenance(u, marks)
            if beh.call_action == "top_up":
                x = min(beh.reserve[u], max(tau * mm - e, 0.0))
                if x > 0.0:
                    book.usd[u] += x
                    self.top_ups[u] += x
                    self.event(t, 0, u, "top_up", "collateral", -1, x, 1.0, 1.0, x)
                continue
            # reduce
            if not mm > 0.0:
                continue
            f = 1.0 - e / (tau * mm)
            if not f > 0.0:
                continue
            f = min(f, 1.0)
            for p in book.open_positions(u):
                a = book.asset[p]
                c = f * book.qty[p]
                price = book.option_value(p, marks[a]) if book.is_option(p) else marks[a]
                n_p = book.realise(u, p, c, marks[a])
                book.qty[p] -= c
                self.event(t, 0, u, "reduce", book.instrument(p), a, -c, price, price, n_p)

    def call_unit(self, t: int, u: int) -> bool:
        """Call unit ``u`` at step ``t``: disarm it, and schedule its answer if it answers.

        Parameters
        ----------
        t : int
            Step index.
        u : int
            The unit called.

        Returns
        -------
        bool
            Whether it will answer (at step ``t + d``): ``draw(path, u) < pi``.
        """
        beh = self.behaviour
        self.armed[u] = False
        answers = draw(beh.rng_key, self.path, u) < beh.call_prob
        if answers:
            self.answers_due.setdefault(t + beh.call_delay, []).append(u)
        return answers

    def margin_calls(self, t: int) -> None:
        """Margin calls at one check of the round loop, before ``L`` is formed.

        Every armed live unit with ``MM_u <= E_u < kappa * MM_u`` at the current marks is
        called, in increasing unit index.

        Parameters
        ----------
        t : int
            Step index.
        """
        book = self.book
        kappa = self.behaviour.call_ratio
        for u in range(book.n_units):
            if not self.armed[u] or not book.live(u):
                continue
            e = book.equity(u, self.marks)
            mm = book.maintenance(u, self.marks)
            if mm <= e < kappa * mm:
                self.call_unit(t, u)
