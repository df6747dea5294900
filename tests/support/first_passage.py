"""Closed forms of the first passage of GBM through a barrier, and the liquidation price of
an isolated perpetual: the references of ``tests/margin/test_first_passage.py`` and
``tests/margin/test_intrastep.py``."""

from __future__ import annotations

import math

from scipy.stats import norm

BETA = 0.5825971579390106  # -zeta(1/2) / sqrt(2 pi)


def first_passage_prob(s0: float, barrier: float, mu: float, vol: float, t: float) -> float:
    """P(GBM started at s0 touches ``barrier`` before t), continuous monitoring."""
    nu = mu - 0.5 * vol**2
    h = math.log(barrier / s0)
    sd = vol * math.sqrt(t)
    if barrier < s0:  # down barrier: P(min <= b)
        return norm.cdf((h - nu * t) / sd) + math.exp(2 * nu * h / vol**2) * norm.cdf(
            (h + nu * t) / sd)
    return norm.cdf((-h + nu * t) / sd) + math.exp(2 * nu * h / vol**2) * norm.cdf(
        (-h - nu * t) / sd)


def discrete_prob(s0, barrier, mu, vol, t, dt):
    """BGK: discrete monitoring ~ continuous monitoring of a barrier shifted away from s0."""
    shift = math.exp(BETA * vol * math.sqrt(dt))
    shifted = barrier / shift if barrier < s0 else barrier * shift
    return first_passage_prob(s0, shifted, mu, vol, t)


def liquidation_price(qty, entry, margin, mmr):
    """Isolated liquidation price from E = margin + qty (P - entry) = mmr |qty| P."""
    if qty > 0:
        return (qty * entry - margin) / (qty * (1.0 - mmr))
    return (abs(qty) * entry + margin) / (abs(qty) * (1.0 + mmr))
