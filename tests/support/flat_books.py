"""Random derivatives books on a flat maintenance rate, over three assets, and random paths
with a gap: the inputs of the flat-rate engine-vs-reference tests
(``tests/margin/test_replay_vs_reference.py``) and of the bounded replay
(``tests/execution/test_numerical_safety.py``)."""

from __future__ import annotations

import numpy as np

from simulator.book.build import assemble_book
from simulator.config.market import Asset, Market


def random_book(rng: np.random.Generator, n_accounts: int, prices: np.ndarray, mmr: float):
    """A random book whose accounts start above maintenance, with leverage up to ~0.9/mmr."""
    n_assets = len(prices)
    isolated = rng.random(n_accounts) < 0.5
    usd = np.zeros(n_accounts)
    coll = np.zeros((n_accounts, n_assets))
    pos_account, pos_asset, pos_qty, pos_entry = [], [], [], []
    for i in range(n_accounts):
        k = rng.integers(1, n_assets + 1)
        assets = rng.choice(n_assets, size=k, replace=False)
        notional = 0.0
        for a in assets:
            size_usd = float(rng.lognormal(np.log(1000.0), 1.0))
            side = 1.0 if rng.random() < 0.55 else -1.0
            entry = prices[a] * float(rng.uniform(0.97, 1.03))
            pos_account.append(i)
            pos_asset.append(int(a))
            pos_qty.append(side * size_usd / entry)
            pos_entry.append(entry)
            notional += size_usd
        leverage = float(rng.uniform(2.0, 0.9 / mmr))
        margin = notional / leverage
        if not isolated[i] and rng.random() < 0.3:
            a = int(rng.integers(n_assets))
            coll[i, a] = margin / prices[a] * 1.2
            usd[i] = 0.1 * margin
        else:
            usd[i] = margin
    ids = [f"acct-{i}" for i in range(n_accounts)]
    return assemble_book(ids, isolated, usd, coll, np.array(pos_account), np.array(pos_asset),
                         np.array(pos_qty), np.array(pos_entry))


def random_paths(rng: np.random.Generator, n_paths: int, steps: int, prices: np.ndarray):
    n_assets = len(prices)
    log_returns = 0.01 * rng.standard_normal((n_paths, steps, n_assets))
    log_returns[:, steps // 3, :] += np.log(rng.uniform(0.8, 1.05, size=(n_paths, n_assets)))
    exo = np.empty((n_paths, steps + 1, n_assets))
    exo[:, 0] = prices
    exo[:, 1:] = prices * np.exp(np.cumsum(log_returns, axis=1))
    return exo


def market(prices, haircut, vols=(0.8, 1.0, 1.3)):
    assets = tuple(Asset(f"A{i}", float(p), vol=v, haircut=float(h))
                   for i, (p, h, v) in enumerate(zip(prices, haircut, vols, strict=True)))
    return Market("gbm", assets, tuple(tuple(float(i == j) for j in range(len(prices)))
                                       for i in range(len(prices))))
