"""Limits that keep a run finite: price bounds, and the most chunks a run may have.

Every simulated price stays within a fixed band around its initial price.

Path generators keep each asset's log price within ``log(s0) + log(PRICE_FLOOR_RATIO)``
and ``log(s0) + log(PRICE_CAP_RATIO)`` (the bound is applied to the running log price, so
a path that reaches it continues from it), and the margin engine keeps every mark (impact
included) within ``[s0 * PRICE_FLOOR_RATIO, s0 * PRICE_CAP_RATIO]``. Without them extreme
inputs (vol shocks compounding to thousands of percent, gaps toward -100%, forced flow far
beyond the depth) underflow a price to 0 or overflow it to ``inf``, and NaN spreads into
every output. A path on which a bound was reached is flagged (``price_bounded`` in
``paths/``) and counted in ``summary.json`` and ``manifest.json``.
"""

from __future__ import annotations

import math

#: lowest price, as a fraction of the asset's initial price
PRICE_FLOOR_RATIO = 1e-12
#: highest price, as a multiple of the asset's initial price
PRICE_CAP_RATIO = 1e12
#: their logs, the bounds of ``log(price / s0)`` in the path generators
LOG_PRICE_FLOOR = math.log(PRICE_FLOOR_RATIO)
LOG_PRICE_CAP = math.log(PRICE_CAP_RATIO)
#: a price within this relative distance of a bound counts as having reached it (the path
#: generators bound the log price, whose ``exp`` may round a few ulps inside the band)
BOUND_REL_TOL = 1e-9

#: the most chunks a run may have: ``SeedSequence(seed).spawn(n_chunks)`` and the chunk
#: plan take about 430 bytes per chunk (430 MiB and 10 s for a million, measured), and a
#: run needs a task per chunk. The loader refuses more; ``verify`` refuses a manifest
#: that claims more.
MAX_CHUNKS = 1_000_000

#: largest quantity of one position: coins, options or USD contracts (inverse)
MAX_QTY = 1e12
#: largest collateral or debt of one account, in its unit
MAX_AMOUNT = 1e15
#: largest and smallest USD price: entry and strike prices, as asset prices
MAX_PRICE = 1e12
MIN_PRICE = 1e-12
