"""Write ``event-heavy-2000.csv``, the book of ``event-heavy-2000.toml`` (issue #17's
event-heavy workload), from a fixed seed: 1,000 isolated accounts, each one perpetual on
one of the 5 assets at 3-25x, and 1,000 cross accounts holding perpetuals on 3 distinct
assets (all long or all short) against USD collateral at 2-15x. Notional lognormal, median
20,000 USD, sigma 1.2; 60% long. The population keys cannot give the two halves different
leverages, so the book is a file; run this script again to rebuild it (same bytes).

Usage::

    python benchmarks/scenarios/make_event_heavy_book.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

SYMBOLS = ("BTC", "ETH", "SOL", "XRP", "DOGE")
PRICES = (60000.0, 3000.0, 150.0, 0.6, 0.15)
OUT = Path(__file__).with_name("event-heavy-2000.csv")


def main() -> None:
    rng = np.random.default_rng(17)
    rows = []
    for i in range(2000):
        isolated = i < 1000
        side = 1.0 if rng.random() < 0.6 else -1.0
        notional = 20000.0 * np.exp(1.2 * rng.standard_normal())
        leverage = rng.uniform(3.0, 25.0) if isolated else rng.uniform(2.0, 15.0)
        assets = rng.choice(5, size=1 if isolated else 3, replace=False)
        margin = notional / leverage
        for k, a in enumerate(sorted(assets)):
            qty = side * notional / len(assets) / PRICES[a]
            rows.append([f"{'iso' if isolated else 'cross'}-{i:04d}",
                         "isolated" if isolated else "cross", SYMBOLS[a], f"{qty:.10g}",
                         f"{margin:.2f}" if k == 0 else ""])
    with OUT.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["account_id", "margin_mode", "symbol", "qty", "collateral_USD"])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
