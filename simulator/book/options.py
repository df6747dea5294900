"""Options in a synthetic population (``[population.options]``): which accounts also hold a
European call or put, on which side, at which strike and expiry, and the margin they bring.

``share`` of the population's accounts (drawn independently) hold one option on the asset
of their first position: short with probability ``short_share``, a call or a put by the
``types`` shares, ``size`` times that position's size in coins, strike = price x a
uniform draw from ``moneyness``, expiry uniform in ``expiry_days``, implied vol ``iv``
(default: the asset's vol). An option seller is credited the premium it received plus
Deribit's standard initial margin of the option in USD, so every account starts above its
maintenance; a buyer has paid its premium already (its option adds its value to the
equity). Accounts with options are cross-margined (a venue margins options with the rest
of the account). The draws come after all others, so the rest of the book does not depend
on these keys.

Example::

    [population.options]
    share = 0.2                        # of the accounts
    short_share = 0.9                  # of those: sellers
    types = { put = 0.7, call = 0.3 }
    moneyness = [0.85, 1.0]            # strike / price
    expiry_days = [7.0, 30.0]
    size = 1.0                         # x the first position's size
"""

from __future__ import annotations

import numpy as np

from simulator.config.population import (
    PopulationOptions,
)


def draw_options(opts: PopulationOptions, rng: np.random.Generator, first_asset: np.ndarray,
                 first_coins: np.ndarray, prices: np.ndarray, vols: np.ndarray
                 ) -> dict[str, np.ndarray]:
    """Draw the options of ``n`` accounts whose first position is on ``first_asset`` with
    ``first_coins`` coins (its size).

    Returns
    -------
    dict
        ``account`` (indices of the accounts with an option), ``asset``, ``qty``
        (signed), ``strike``, ``kind`` (2 call, 3 put), ``expiry_years``, ``iv``, and
        ``margin_usd`` (premium plus initial margin credited to each seller, 0 for a
        buyer), one entry per option.
    """
    from simulator.options.margin import deribit_standard_margin
    from simulator.options.pricing import DAYS_PER_YEAR, black_scholes

    n = len(first_asset)
    has = rng.random(n) < opts.share
    short = rng.random(n) < opts.short_share
    names = [k for k, _ in opts.types]
    kind_idx = rng.choice(len(names), size=n, p=[s for _, s in opts.types])
    money = rng.uniform(*opts.moneyness, size=n)
    expiry_days = rng.uniform(*opts.expiry_days, size=n)
    acct = np.flatnonzero(has)
    asset = first_asset[acct]
    spot = prices[asset]
    coins = opts.size * first_coins[acct]
    qty = np.where(short[acct], -coins, coins)
    strike = spot * money[acct]
    kind_names = np.array(names)[kind_idx[acct]]
    iv = vols[asset] if opts.iv is None else np.full(len(acct), opts.iv)
    iv = np.where(iv > 0, iv, 0.5)  # an asset with vol 0 gets a 50% implied vol
    margin = np.zeros(len(acct))
    if len(acct):
        premium = black_scholes(kind_names, spot, strike, expiry_days[acct], iv).price
        for j in range(len(acct)):
            if qty[j] < 0:
                im, _ = deribit_standard_margin([str(kind_names[j])], [qty[j]], [strike[j]],
                                                float(spot[j]), [premium[j]])
                margin[j] = coins[j] * premium[j] + float(im[0])
    return {"account": acct, "asset": asset, "qty": qty, "strike": strike,
            "kind": np.where(kind_names == "call", 2, 3).astype(np.int64),
            "expiry_years": expiry_days[acct] / DAYS_PER_YEAR, "iv": iv, "margin_usd": margin}
