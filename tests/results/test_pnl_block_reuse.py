"""The per-account aggregates of a chunk, against the PnL matrix written out in full.

:func:`simulator.results.accounts.chunk_partial` forms the (accounts x paths) matrix in
blocks and reuses one block's memory from chunk to chunk (per thread); chunks of other
sizes in between must not leak into a later chunk's figures.
"""

from __future__ import annotations

import numpy as np

from simulator.results import accounts, risk


def _chunk(seed: int, n_paths: int, n_acc: int, n_assets: int = 2):
    rng = np.random.default_rng(seed)
    s0 = np.array([100.0, 20.0, 5.0])[:n_assets]
    final = s0 * np.exp(rng.normal(0.0, 0.2, (n_paths, n_assets)))
    navk = rng.normal(0.0, 3.0, (n_acc, n_assets))
    n_corr = 3 * n_paths
    corr_path = rng.integers(0, n_paths, n_corr)
    corr_account = rng.integers(0, n_acc, n_corr)
    corr_delta = rng.normal(0.0, 50.0, n_corr)
    counts = rng.integers(0, 3, n_acc)
    return final, s0, navk, corr_path, corr_account, corr_delta, counts


def _naive(final, s0, navk, corr_path, corr_account, corr_delta, keep):
    losses = np.array([[navk[i] @ (s0 - final[j]) for j in range(final.shape[0])]
                       for i in range(navk.shape[0])])
    for p, a, d in zip(corr_path, corr_account, corr_delta, strict=True):
        losses[a, p] -= d
    return -losses.sum(axis=1), (losses**2).sum(axis=1), np.sort(losses, axis=1)[:, -keep:]


def _partial(final, s0, navk, corr_path, corr_account, corr_delta, counts, n_total):
    return accounts.chunk_partial(final, s0, navk, corr_path, corr_account, corr_delta,
                                  counts, counts, "exact", n_total)


def test_chunks_of_other_sizes_in_between_change_nothing():
    n_total = 400
    keep = risk.tail_size(n_total, accounts.ALPHA)
    a = _chunk(1, 120, 37)
    first = _partial(*a, n_total)
    _partial(*_chunk(2, 300, 90), n_total)  # a larger block: the scratch grows
    _partial(*_chunk(3, 7, 5), n_total)  # a smaller one: it is viewed
    again = _partial(*a, n_total)
    for name in ("pnl_sum", "pnl_sumsq", "tail"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    pnl_sum, pnl_sumsq, tail = _naive(*a[:6], keep)
    np.testing.assert_allclose(first.pnl_sum, pnl_sum, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(first.pnl_sumsq, pnl_sumsq, rtol=1e-12)
    np.testing.assert_allclose(np.sort(first.tail, axis=1), tail, rtol=1e-12, atol=1e-9)


def test_corrections_in_books_small_and_large(monkeypatch):
    """Corrections reach their (account, path) cell in any book: the sort of the
    corrections by account takes 16-bit keys up to 65,536 accounts, the full ones above;
    several corrections of one cell add up. (Blocks of 16 accounts: each takes the
    corrections of its accounts from the sorted ones.)"""
    monkeypatch.setattr(accounts, "PNL_BLOCK_BYTES", 16 * 8 * 4)
    n_total = 200
    keep = risk.tail_size(n_total, accounts.ALPHA)
    for n_acc in (50, 1 << 16, (1 << 16) + 1, 70_000):  # 16-bit keys up to 65,536
        final, s0, navk, _, _, _, counts = _chunk(5, 4, n_acc)
        rng = np.random.default_rng(n_acc)
        corr_account = np.concatenate([rng.integers(0, n_acc, 40), [n_acc - 1] * 3, [0, 0]])
        corr_path = np.concatenate([rng.integers(0, 4, 40), [3, 3, 1], [0, 0]])
        corr_delta = rng.normal(0.0, 50.0, corr_account.size)
        got = _partial(final, s0, navk, corr_path, corr_account, corr_delta, counts, n_total)
        pnl_sum, pnl_sumsq, tail = _naive(final, s0, navk, corr_path, corr_account,
                                          corr_delta, keep)
        np.testing.assert_allclose(got.pnl_sum, pnl_sum, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(got.pnl_sumsq, pnl_sumsq, rtol=1e-12)
        np.testing.assert_allclose(np.sort(got.tail, axis=1), tail, rtol=1e-12, atol=1e-9)
