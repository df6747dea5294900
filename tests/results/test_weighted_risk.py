"""Importance-sampling estimators (rare-event mode) against closed forms and against the
plain estimators when every weight is 1."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from simulator.results import risk

K = 4.0


def _tilted_normal(mu: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Losses drawn from N(mu, 1) with the likelihood ratios of N(0, 1) over N(mu, 1)."""
    x = np.random.default_rng(seed).normal(mu, 1.0, n)
    return x, np.exp(-mu * x + 0.5 * mu * mu)


@pytest.mark.parametrize("alpha", [0.95, 0.99])
def test_unit_weights_give_the_plain_estimates(alpha):
    x = np.random.default_rng(1).standard_normal(2000)  # (1 - alpha) n is whole: same ES
    ones = np.ones_like(x)
    var, _, es, es_se = risk.var_es(x, alpha)
    wvar, _, wes, wes_se = risk.wvar_es(x, ones, alpha)
    assert wvar == var
    assert wes == pytest.approx(es, rel=1e-12)
    assert wes_se == pytest.approx(es_se, rel=0.02)  # sd(ddof=1) vs the tail's variance
    assert risk.wmean_se(x, ones) == risk.mean_se(x)
    assert risk.wquantile_se(x, ones, 0.25)[0] == risk.quantile_se(x, 0.25)[0]
    assert risk.wratio_se(x**2, np.abs(x), ones) == risk.ratio_se(x**2, np.abs(x))
    assert risk.effective_sample_size(ones) == pytest.approx(x.size)


def test_tail_probability_var_and_es_of_a_normal_under_a_mean_shift():
    """P(X > 4) = 3.2e-5, VaR and ES at 99.99% of N(0, 1), from 20,000 draws of N(4, 1):
    within 4 standard errors of the closed forms, and the errors small."""
    x, w = _tilted_normal(4.0, 20_000, 2)
    p, p_se = risk.wprob_se(x > 4.0, w)
    exact = stats.norm.sf(4.0)
    assert abs(p - exact) < K * p_se
    assert p_se / exact < 0.02
    alpha = 1 - 1e-4
    var, var_se, es, es_se = risk.wvar_es(x, w, alpha)
    z = stats.norm.ppf(alpha)
    assert abs(var - z) < K * var_se
    assert abs(es - stats.norm.pdf(z) / (1 - alpha)) < K * es_se
    assert 0 < var_se < 0.02 and 0 < es_se < 0.02


def test_standard_errors_match_the_spread_of_repeated_estimates():
    """Over 200 independent repetitions the reported standard errors of the probability,
    VaR and ES are the spread of the estimates (within 30%)."""
    alpha = 0.999
    runs = np.array([[*risk.wprob_se(x > 3.0, w), *risk.wvar_es(x, w, alpha)]
                     for x, w in (_tilted_normal(3.0, 4000, s) for s in range(200))])
    for est, se in ((0, 1), (2, 3), (4, 5)):
        spread = runs[:, est].std(ddof=1)
        assert runs[:, se].mean() == pytest.approx(spread, rel=0.3)


def test_weighted_quantile_of_a_conditional_distribution():
    """The self-normalised quantile of X given X > 2 (under N(0, 1)), from N(2.5, 1) draws."""
    x, w = _tilted_normal(2.5, 20_000, 3)
    keep = x > 2.0
    q, q_se = risk.wquantile_se(x[keep], w[keep], 0.5)
    tail = stats.norm.sf(2.0)
    exact = stats.norm.isf(0.5 * tail)
    assert abs(q - exact) < K * q_se
    assert q_se < 0.01


def test_effective_sample_size():
    assert risk.effective_sample_size(np.array([1.0, 0.0, 0.0, 0.0])) == 1.0
    assert risk.effective_sample_size(np.array([2.0, 2.0])) == 2.0
    assert risk.effective_sample_size(np.array([3.0, 1.0])) == pytest.approx(16 / 10)


def test_a_tail_without_weight_is_nan():
    x = np.arange(10.0)
    w = np.full(10, 1e-6)
    assert all(math.isnan(v) for v in risk.wvar_es(x, w, 0.99))
