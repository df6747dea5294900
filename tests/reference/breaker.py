"""The circuit breaker (``docs/engine.md``, "Circuit breaker"): a price band per step
that, when a mark leaves it, pauses the liquidations (or all trading) for ``K`` steps."""

from __future__ import annotations


class BreakerSteps:
    """The breaker's test at a step's close: a mixin of :class:`~.path.PathRun`, whose
    state (``venue``, ``marks``, ``breaker_resume``, ``breaker_trips``,
    ``breaker_paused_steps``) it reads and updates.
    """

    def breaker(self, t: int, close: list[float]) -> str:
        """Whether step ``t`` is paused, its marks just computed; ``close`` the previous
        step's closing marks (the initial prices at ``t = 1``).

        Off (band 0), never. Otherwise, at a step after the one the latest pause ended at
        (every step before the first trip), the breaker trips when
        ``|M[a] / close[a] - 1| > band`` for any asset: steps ``t .. t + K - 1`` are
        paused, and step ``t + K`` runs normally without this test. Under ``"trading"``
        a paused step's marks are put back to ``close``.

        Parameters
        ----------
        t : int
            Step index.
        close : list of float
            The previous step's closing marks.

        Returns
        -------
        str
            ``""`` (the step runs normally), ``"liquidations"`` or ``"trading"`` (what the
            pause stops).
        """
        venue = self.venue
        if venue.breaker_band <= 0.0:
            return ""
        if t > self.breaker_resume:
            if any(abs(self.marks[a] / close[a] - 1.0) > venue.breaker_band
                   for a in range(len(close))):
                self.breaker_trips += 1
                self.breaker_resume = t + venue.breaker_steps
        if t >= self.breaker_resume:
            return ""
        self.breaker_paused_steps += 1
        if venue.breaker_halts == "trading":
            self.marks = list(close)
        return venue.breaker_halts
