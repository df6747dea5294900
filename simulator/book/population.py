"""Synthetic populations: thousands of accounts drawn from a few distributions.

Each account draws, independently: a margin mode (``margin_modes`` shares), a side (long
with probability ``long_share``; all its positions share the side), a total notional
(``notional_usd``), a leverage (``leverage``), a number of positions (uniform on
``1..max_positions``) on distinct assets (drawn without replacement with
``asset_weights``), and a collateral currency (``collateral`` shares). Notional is split
equally between the positions, all entered at the asset's initial price. Margin =
notional / leverage, held in the collateral currency and sized so that its haircut value
equals the margin. Leverage is capped by the venue: at the maximum leverage of the
bracket each position falls in, and so that the account starts with equity of at least
1 / 0.95 times its maintenance margin (no account starts below maintenance).

On a lending venue (``venue.type = "lending"``) an account is a loan instead: a long
account deposits ``notional_usd`` of collateral, split equally between its assets, and
borrows USD; a short one deposits ``notional_usd`` of USD and borrows its assets. Either
way ``leverage`` = collateral / equity, so the debt is ``notional_usd * (1 - 1/leverage)``,
capped at 0.95 of the collateral's liquidation-threshold value (a health factor of at
least 1 / 0.95 at the start). Lending accounts are cross-margined.

The population uses its own seed (``population.seed``), so the book stays the same when
the Monte Carlo seed changes.

Every draw of a distribution is at most 1e15 (``MAX_DRAW``, the loader's bound on
distribution parameters and collateral), whatever its ``max``, so the book is finite.

``inverse_share`` of the accounts hold inverse (coin-margined) perpetuals instead: the same
USD notional as USD contracts, entered at the asset's price. ``[population.options]`` gives
some accounts an option as well (:mod:`simulator.book.options`).
"""

from __future__ import annotations

import numpy as np

from simulator.book.options import draw_options
from simulator.config.limits import MAX_AMOUNT
from simulator.config.market import Market
from simulator.config.population import Distribution, Population
from simulator.config.venue import Venue
from simulator.config.venue_presets import bracket_cums

# Every draw is at most this, whatever ``max``: the loader's bound on a distribution's
# parameters and on an account's collateral (a Pareto with a small tail index otherwise
# draws inf, and an account with infinite notional makes the run's outputs inf or nan).
MAX_DRAW = MAX_AMOUNT


def draw_distribution(dist: Distribution, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` values of ``dist``, clipped to its ``[min, max]`` and to ``MAX_DRAW``.

    ``MAX_DRAW`` (1e15, the loader's bound on distribution parameters and on collateral)
    keeps every draw finite: a Pareto with a small tail index ``alpha`` overflows to inf.

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
        with np.errstate(over="ignore"):  # inf for a tiny alpha: clipped to MAX_DRAW below
            values = dist.param("scale") * (1.0 + rng.pareto(dist.param("alpha"), n))
    else:  # pragma: no cover - the loader refuses other kinds
        raise ValueError(dist.kind)
    high = min(dist.high_clip, MAX_DRAW)
    return np.clip(values, min(dist.low_clip, high), high)


def draw_population(
    pop: Population, market: Market, venue: Venue, with_kinds: bool = False
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
           np.ndarray]:
    """Draw the accounts of a population.

    Parameters
    ----------
    pop : Population
    market : Market
    venue : Venue
        Its brackets cap the leverage; a lending venue makes loans instead of positions.
    with_kinds : bool
        Also return each position's kind (0 linear, 1 inverse, 2 call, 3 put), as a ninth
        array, and with ``[population.options]`` the options' years to expiry and implied
        vols (0 for perpetuals) as a tenth and eleventh.

    Returns
    -------
    ids, isolated, usd, coll, pos_account, pos_asset, pos_qty, pos_entry
        In the form :func:`simulator.book.build.assemble_book` takes.
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
    leverage = np.maximum(draw_distribution(pop.leverage, n, rng), 1e-9)
    k = rng.integers(1, pop.max_positions + 1, size=n)
    # k distinct assets per account, weighted, without replacement (Gumbel top-k).
    pool = np.array([market.index(s) for s in pop.assets])
    with np.errstate(divide="ignore"):
        keys = np.log(np.array(pop.asset_weights)) + rng.gumbel(size=(n, len(pool)))
    chosen = pool[np.argsort(-keys, axis=1, kind="stable")]
    currency_names = [c for c, _ in pop.collateral]
    currency = rng.choice(len(currency_names), size=n, p=[s for _, s in pop.collateral])

    pos_account = np.repeat(np.arange(n, dtype=np.int64), k)
    rank = np.arange(len(pos_account)) - np.repeat(np.cumsum(k) - k, k)
    pos_asset = chosen[pos_account, rank].astype(np.int64)
    width = max(6, len(str(max(n - 1, 0))))
    ids = [f"{pop.id_prefix}{i:0{width}d}" for i in range(n)]
    if venue.lending:
        loans = _draw_loans(market, venue, ids, side, notional, leverage, k, pos_account,
                            pos_asset)
        return (*loans, np.zeros(len(loans[4]), dtype=np.int64)) if with_kinds else loans
    leverage = np.minimum(leverage, _leverage_caps(market, venue, notional, k, pos_account,
                                                   pos_asset))
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

    pos_entry = prices[pos_asset]
    pos_usd = side[pos_account] * (notional[pos_account] / k[pos_account])
    pos_qty = pos_usd / pos_entry
    # inverse accounts (drawn last, so the rest of the book does not depend on the share)
    inverse = (rng.random(n) < pop.inverse_share)[pos_account]
    pos_qty = np.where(inverse, pos_usd, pos_qty)  # inverse: qty in USD contracts
    pos_kind = inverse.astype(np.int64)
    if pop.options is not None and pop.options.share > 0:
        if not with_kinds:
            raise ValueError("a population with options needs with_kinds=True")
        first = np.cumsum(k) - k
        drawn = draw_options(pop.options, rng, pos_asset[first],
                             np.abs(pos_usd[first]) / pos_entry[first], prices,
                             np.array([a.vol for a in market.assets]))
        acct = drawn["account"]
        isolated[acct] = False  # an account with options is cross-margined
        usd[acct] += drawn["margin_usd"]
        n_opt = len(acct)
        all_account = np.concatenate([pos_account, acct])
        is_option = np.concatenate([np.zeros(len(pos_account), dtype=bool),
                                    np.ones(n_opt, dtype=bool)])
        order = np.lexsort((is_option, all_account))  # options last within each account
        zeros = np.zeros(len(pos_account))
        return (ids, isolated, usd, coll, all_account[order],
                np.concatenate([pos_asset, drawn["asset"]])[order],
                np.concatenate([pos_qty, drawn["qty"]])[order],
                np.concatenate([pos_entry, drawn["strike"]])[order],
                np.concatenate([pos_kind, drawn["kind"]])[order],
                np.concatenate([zeros, drawn["expiry_years"]])[order],
                np.concatenate([zeros, drawn["iv"]])[order])
    out = (ids, isolated, usd, coll, pos_account, pos_asset, pos_qty, pos_entry)
    return (*out, pos_kind) if with_kinds else out


def _leverage_caps(market: Market, venue: Venue, notional: np.ndarray, k: np.ndarray,
                   pos_account: np.ndarray, pos_asset: np.ndarray) -> np.ndarray:
    """Largest leverage each account may take: its brackets' maximum leverage, and equity
    of at least maintenance / 0.95 at the start."""
    n = len(notional)
    pos_notional = notional[pos_account] / k[pos_account]
    cap = np.full(n, np.inf)
    maint = np.zeros(n)
    for a, asset in enumerate(market.assets):
        rows = pos_asset == a
        if not rows.any():
            continue
        brackets = venue.brackets_for(asset.symbol)
        cums = np.array(bracket_cums(brackets))
        caps = np.array([b.max_notional_usd for b in brackets])
        j = np.minimum(np.searchsorted(caps, pos_notional[rows], side="left"), len(caps) - 1)
        rate = np.array([b.rate for b in brackets])[j]
        max_lev = np.array([b.max_leverage for b in brackets])[j]
        np.minimum.at(cap, pos_account[rows], max_lev)
        np.add.at(maint, pos_account[rows], pos_notional[rows] * rate - cums[j])
    with np.errstate(divide="ignore"):
        return np.minimum(cap, np.where(maint > 0, 0.95 * notional / maint, np.inf))


def _draw_loans(market: Market, venue: Venue, ids: list[str], side: np.ndarray,
                notional: np.ndarray, leverage: np.ndarray, k: np.ndarray,
                pos_account: np.ndarray, pos_asset: np.ndarray
                ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                           np.ndarray, np.ndarray, np.ndarray]:
    """Loans on a lending venue (see the module docstring), in assemble_book's form."""
    n = len(ids)
    prices = np.array([a.price for a in market.assets])
    weight = np.array([venue.collateral_weight(a.symbol, a.haircut) for a in market.assets])
    share = notional[pos_account] / k[pos_account]  # USD per chosen asset
    long_ = side > 0
    coll = np.zeros((n, len(prices)))
    rows = long_[pos_account]
    np.add.at(coll, (pos_account[rows], pos_asset[rows]), share[rows] / prices[pos_asset[rows]])
    weighted = np.where(long_, coll @ (prices * weight), notional)  # USD collateral weighs 1
    debt = np.minimum(notional * (1.0 - 1.0 / np.maximum(leverage, 1.0)), 0.95 * weighted)
    usd = np.where(long_, -debt, notional)
    short_pos = ~rows
    debt_share = (debt / notional)[pos_account] * share
    return (ids, np.zeros(n, dtype=bool), usd, coll, pos_account[short_pos],
            pos_asset[short_pos], -debt_share[short_pos] / prices[pos_asset[short_pos]],
            np.zeros(int(short_pos.sum())))
