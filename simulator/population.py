"""Synthetic populations: thousands of accounts drawn from a few distributions.

Each account draws, independently: a margin mode (``margin_modes`` shares), a side (long
with probability ``long_share``; all its positions share the side), a total notional
(``notional_usd``), a leverage (``leverage``), a number of positions (uniform on
``1..max_positions``) on distinct assets (drawn without replacement with
``asset_weights``), and a collateral currency (``collateral`` shares). Notional is split
equally between the positions, all entered at the asset's initial price. Margin =
notional / leverage, held in the collateral currency and sized so that its haircut value
equals the margin. Leverage is capped at ``0.95 / maintenance_margin_rate`` so that no
account starts below maintenance.

The population uses its own seed (``population.seed``), so the book stays the same when
the Monte Carlo seed changes.
"""

from __future__ import annotations

import numpy as np

from .scenario import Distribution, Market, Population


def draw_distribution(dist: Distribution, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` values of ``dist``, clipped to its ``[min, max]``.

    Parameters
    ----------
    dist : Distribution
    n : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (n,)
    """
    if dist.kind == "fixed":
        values = np.full(n, dist.param("value"))
    elif dist.kind == "uniform":
        values = rng.uniform(dist.param("low"), dist.param("high"), n)
    elif dist.kind == "lognormal":
        values = dist.param("median") * np.exp(dist.param("sigma") * rng.standard_normal(n))
    elif dist.kind == "pareto":
        values = dist.param("scale") * (1.0 + rng.pareto(dist.param("alpha"), n))
    else:  # pragma: no cover - the loader refuses other kinds
        raise ValueError(dist.kind)
    return np.clip(values, dist.low_clip, dist.high_clip)


def draw_population(
    pop: Population, market: Market, maintenance_margin_rate: float
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
           np.ndarray]:
    """Draw the accounts of a population.

    Parameters
    ----------
    pop : Population
    market : Market
    maintenance_margin_rate : float
        Caps leverage at ``0.95 / rate``.

    Returns
    -------
    ids, isolated, usd, coll, pos_account, pos_asset, pos_qty, pos_entry
        In the form :func:`simulator.book.assemble_book` takes.
    """
    rng = np.random.default_rng(pop.seed)
    n = pop.count
    n_assets = len(market.assets)
    prices = np.array([a.price for a in market.assets])
    haircuts = np.array([a.haircut for a in market.assets])
    mode_names = [m for m, _ in pop.margin_modes]
    mode = rng.choice(len(mode_names), size=n, p=[s for _, s in pop.margin_modes])
    isolated = np.array([name == "isolated" for name in mode_names])[mode]
    side = np.where(rng.random(n) < pop.long_share, 1.0, -1.0)
    notional = draw_distribution(pop.notional_usd, n, rng)
    leverage = draw_distribution(pop.leverage, n, rng)
    if maintenance_margin_rate > 0:
        leverage = np.minimum(leverage, 0.95 / maintenance_margin_rate)
    leverage = np.maximum(leverage, 1e-9)
    k = rng.integers(1, pop.max_positions + 1, size=n)
    # k distinct assets per account, weighted, without replacement (Gumbel top-k).
    pool = np.array([market.index(s) for s in pop.assets])
    with np.errstate(divide="ignore"):
        keys = np.log(np.array(pop.asset_weights)) + rng.gumbel(size=(n, len(pool)))
    chosen = pool[np.argsort(-keys, axis=1, kind="stable")]
    currency_names = [c for c, _ in pop.collateral]
    currency = rng.choice(len(currency_names), size=n, p=[s for _, s in pop.collateral])

    margin = notional / leverage
    usd = np.zeros(n)
    coll = np.zeros((n, n_assets))
    for c, name in enumerate(currency_names):
        rows = currency == c
        if name == "USD":
            usd[rows] = margin[rows]
        else:
            a = market.index(name)
            value_per_unit = prices[a] * (1.0 - haircuts[a])
            if value_per_unit > 0:
                coll[rows, a] = margin[rows] / value_per_unit
            else:  # a 100% haircut makes the asset worthless as collateral: hold USD
                usd[rows] = margin[rows]

    pos_account = np.repeat(np.arange(n, dtype=np.int64), k)
    rank = np.arange(len(pos_account)) - np.repeat(np.cumsum(k) - k, k)
    pos_asset = chosen[pos_account, rank].astype(np.int64)
    pos_entry = prices[pos_asset]
    pos_qty = side[pos_account] * (notional[pos_account] / k[pos_account]) / pos_entry
    width = max(6, len(str(max(n - 1, 0))))
    ids = [f"{pop.id_prefix}{i:0{width}d}" for i in range(n)]
    return ids, isolated, usd, coll, pos_account, pos_asset, pos_qty, pos_entry
