"""Risk estimators: VaR/ES against the normal closed form, streaming tails against the full
sample, and honest standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from simulator.results import risk

K = 4.0


def normal_var_es(mu, sigma, alpha):
    z = norm.ppf(alpha)
    return mu + sigma * z, mu + sigma * norm.pdf(z) / (1 - alpha)


@pytest.mark.parametrize("alpha", [0.95, 0.99])
def test_var_es_of_normal_losses_match_closed_form(alpha):
    mu, sigma, n = 1.0, 2.0, 200_000
    losses = np.random.default_rng(7).normal(mu, sigma, n)
    var, var_se, es, es_se = risk.var_es(losses, alpha)
    var_true, es_true = normal_var_es(mu, sigma, alpha)
    # asymptotic standard errors of the normal quantile and ES, independent of the code
    q_se = math.sqrt(alpha * (1 - alpha) / n) / (norm.pdf(norm.ppf(alpha)) / sigma)
    assert abs(var - var_true) < K * q_se
    assert abs(es - es_true) < K * es_se
    assert var_se == pytest.approx(q_se, rel=0.25)


def test_streamed_tails_equal_the_full_sample():
    rng = np.random.default_rng(1)
    n_paths, n_accounts = 5000, 7
    losses = rng.standard_t(3, size=(n_paths, n_accounts))
    keep = risk.tail_size(n_paths, 0.99)
    tail = np.empty((n_accounts, 0))
    for chunk in np.array_split(losses, 9):
        tail = risk.merge_tails(tail, risk.top_rows(np.ascontiguousarray(chunk.T), keep), keep)
    tail = risk.sorted_desc(tail)
    for j in range(n_accounts):
        assert risk.var_es_from_tail(tail[j], n_paths, 0.99) == pytest.approx(
            risk.var_es(losses[:, j], 0.99), rel=1e-12)


def test_var_is_the_order_statistic_and_es_the_tail_mean():
    losses = np.arange(1, 1001, dtype=float)  # 1..1000
    var, _, es, _ = risk.var_es(losses, 0.99)
    # k = 10 largest: 991..1000
    assert var == 991.0
    assert es == pytest.approx(np.mean(np.arange(991, 1001)))


def test_mean_and_probability_standard_errors():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    m, se = risk.mean_se(x)
    assert m == 2.5 and se == pytest.approx(np.std(x, ddof=1) / 2)
    p, pse = risk.prob_se(np.array([True, False, False, False]))
    assert p == 0.25 and pse == pytest.approx(math.sqrt(0.25 * 0.75 / 4))


@pytest.mark.slow
def test_standard_errors_are_honest_over_repeated_seeds():
    """About 95% of +/-1.96 SE intervals cover the true VaR and ES (binomial check)."""
    alpha, n, reps = 0.99, 4000, 400
    var_true, es_true = normal_var_es(0.0, 1.0, alpha)
    rng = np.random.default_rng(11)
    cover_var = cover_es = 0
    for _ in range(reps):
        var, var_se, es, es_se = risk.var_es(rng.standard_normal(n), alpha)
        cover_var += abs(var - var_true) <= 1.96 * var_se
        cover_es += abs(es - es_true) <= 1.96 * es_se
    se_cover = math.sqrt(0.95 * 0.05 / reps)
    for cover in (cover_var / reps, cover_es / reps):
        assert abs(cover - 0.95) < K * se_cover, cover


@pytest.mark.parametrize("n", [1, 2, 5, 50, 333, 4096])
@pytest.mark.parametrize("alpha", [0.95, 0.99, 0.999])
def test_var_es_of_all_rows_at_once_is_var_es_of_each_bit_for_bit(n, alpha):
    """The per-account batch estimates are computed block by block (``var_es_rows``); they
    must be the very numbers of the one-account function, ties and zeros included."""
    rng = np.random.default_rng(n)
    losses = rng.standard_normal((40, n)) * 1e4
    losses[:, ::3] = np.round(losses[:, ::3], -3)  # ties
    losses[rng.random((40, n)) < 0.3] = 0.0  # accounts that lose nothing on most paths
    got = risk.var_es_rows(losses, alpha)
    expected = np.array([risk.var_es(row, alpha) for row in losses]).T
    assert np.array_equal(got, expected, equal_nan=True)
    # in place (the chunk's PnL block), level after level on the same partitioned rows
    scratch = losses.copy()
    for level in (0.999, alpha, 0.9):
        want = np.array([risk.var_es(row, level) for row in losses]).T
        assert np.array_equal(risk.var_es_rows(scratch, level, overwrite=True), want,
                              equal_nan=True)
    assert np.array_equal(np.sort(scratch, axis=1), np.sort(losses, axis=1))  # same values


@pytest.mark.parametrize("sizes", [(50, 50, 50, 13), (7, 7, 7), (30, 90, 5, 60), (200,)])
@pytest.mark.parametrize("keep", [1, 20, 64, 500])
@pytest.mark.parametrize("block_bytes", [None, 1, 8 * 2 * 150])
def test_account_totals_keep_the_largest_losses_in_one_buffer(sizes, keep, block_bytes,
                                                              monkeypatch):
    """Chunk after chunk (of any widths, a wider one included) the per-account tail holds
    the ``keep`` largest losses of everything seen: the same values a sort of all of them
    gives, ties included; whatever the blocks of rows it is merged in (one row, two, all)."""
    from simulator.results import accounts
    from simulator.results.accounts import AccountPartial, AccountTotals

    if block_bytes is not None:
        monkeypatch.setattr(accounts, "MERGE_BLOCK_BYTES", block_bytes)

    rng = np.random.default_rng(keep + len(sizes))
    n_acc = 6
    totals = AccountTotals(mode="exact", keep=keep)
    seen = np.empty((n_acc, 0))
    for m in sizes:
        losses = np.round(rng.standard_normal((n_acc, m)), 1)  # ties on purpose
        part_tail = risk.top_rows(np.ascontiguousarray(losses), keep)
        zeros = np.zeros(n_acc)
        totals.add(AccountPartial(n=m, liquidated=zeros, bankrupt=zeros, pnl_sum=zeros,
                                  pnl_sumsq=zeros, tail=part_tail))
        seen = np.concatenate([seen, losses], axis=1)
        want = -np.sort(-seen, axis=1)[:, :min(keep, seen.shape[1])]
        np.testing.assert_array_equal(risk.sorted_desc(totals.tail), want)


def test_var_es_rows_levels_equal_one_call_per_level():
    """One partition and one sort for every level: bit for bit the numbers of
    :func:`var_es` per row and level (ties included)."""
    rng = np.random.default_rng(5)
    for n in (1, 7, 200, 1000):
        losses = np.round(rng.standard_t(3, size=(25, n)), 1)  # many ties
        levels = (0.9, 0.95, 0.99, 0.999)
        got = risk.var_es_rows_levels(losses.copy(), levels, overwrite=True)
        assert got.shape == (len(levels), 4, 25)
        for i_level, level in enumerate(levels):
            want = np.array([risk.var_es(row, level) for row in losses]).T
            np.testing.assert_array_equal(got[i_level], want)
            np.testing.assert_array_equal(risk.var_es_rows(losses, level), want)
