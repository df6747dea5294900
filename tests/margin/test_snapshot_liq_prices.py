"""Venue snapshots in, liquidation prices out: the accounts read from the Hyperliquid and
Binance fixtures (``tests/data/snapshots``, written from the venues' API documentation)
get, at the snapshots' marks, the liquidation price each venue's published formula gives
(``VENUES.md``), to 1e-9 relative.

The fixtures' own ``liquidationPx`` / ``liquidationPrice`` fields were worked out from those
formulas with the presets' rates when the fixtures were written (one-way positions);
Binance's hedge-mode account is checked against the formula's full form (both sides of the
symbol move together), worked out here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from simulator import load_scenario, prepare
from simulator.margin.liq_prices import liquidation_prices

from ..support import DATA

SNAPSHOTS = DATA / "snapshots"
REL = 1e-9


def _scenario(tmp_path: Path, fmt: str, preset: str) -> Path:
    shutil.copy(SNAPSHOTS / f"{fmt}.json", tmp_path / f"{fmt}.json")
    text = ('name = "snapshot-liq"\n[simulation]\npaths = 4\nsteps = 4\n[market]\n'
            '[[market.assets]]\nsymbol = "BTC"\nprice = 97000.0\nvol = 0.6\n'
            '[[market.assets]]\nsymbol = "ETH"\nprice = 3500.0\nvol = 0.7\n'
            '[[market.assets]]\nsymbol = "SOL"\nprice = 200.0\nvol = 0.9\n'
            f'[venue]\npreset = "{preset}"\n'
            f'[accounts_file]\npath = "{fmt}.json"\nformat = "{fmt}"\n')
    (tmp_path / "scenario.toml").write_text(text)
    return tmp_path / "scenario.toml"


def _prices(path: Path) -> dict[tuple[str, str], float]:
    """(account id, symbol) -> liquidation price at the start."""
    prep = prepare(load_scenario(path))
    table = liquidation_prices(prep.book, prep.rules, prep.inputs.s0)
    symbols = ("BTC", "ETH", "SOL")
    return {(acct, sym): float(table[i, j]) for i, acct in enumerate(prep.book.account_ids)
            for j, sym in enumerate(symbols)}


def test_hyperliquid_positions_liquidate_at_the_published_formula(tmp_path):
    got = _prices(_scenario(tmp_path, "hyperliquid", "hyperliquid"))
    checked = 0
    for address, state in json.loads((SNAPSHOTS / "hyperliquid.json").read_text()).items():
        for item in state["assetPositions"]:
            pos = item["position"]
            expected = float(pos["liquidationPx"])
            isolated = pos["leverage"]["type"] == "isolated"
            acct = f"{address}:{pos['coin']}" if isolated else address
            assert got[(acct, pos["coin"])] == pytest.approx(expected, rel=REL), (acct, pos)
            checked += 1
    assert checked >= 4


def test_hyperliquid_cross_by_hand():
    """One case worked here from the formula: liq = p - side * (AV - MM) / (|Q| (1 - MMR
    side)); account A is cross long 0.5 BTC (entry 95,000) and short 10 ETH (entry 3,600)
    on 10,000 USD, at 97,000 and 3,500: AV = 10,000 + 1,000 + 1,000 = 12,000, MM = 0.5 x
    97,000 x 1.25% + 10 x 3,500 x 2% = 606.25 + 700 = 1,306.25."""
    av, mm = 12_000.0, 1_306.25
    btc = 97_000.0 - (av - mm) / (0.5 * (1 - 0.0125))
    eth = 3_500.0 + (av - mm) / (10.0 * (1 + 0.02))
    state = json.loads((SNAPSHOTS / "hyperliquid.json").read_text())
    positions = {p["position"]["coin"]: p["position"]
                 for p in state["0x8c1f4b2e7d3a5f6091c2b3a4d5e6f708192a3b4c"]["assetPositions"]}
    assert float(positions["BTC"]["liquidationPx"]) == pytest.approx(btc, rel=1e-11)
    assert float(positions["ETH"]["liquidationPx"]) == pytest.approx(eth, rel=1e-11)


def test_binance_positions_liquidate_at_the_published_formula(tmp_path):
    got = _prices(_scenario(tmp_path, "binance", "binance-usdm"))
    document = json.loads((SNAPSHOTS / "binance.json").read_text())
    checked = 0
    for acct_id, pair in document.items():
        for pos in pair["positionRisk"]:
            if float(pos["positionAmt"]) == 0.0 or pos["positionSide"] != "BOTH":
                continue  # closed, or hedge mode (below)
            symbol = pos["symbol"].removesuffix("USDT")
            acct = f"{acct_id}:{pos['symbol']}" if pos["marginType"] == "isolated" else acct_id
            assert got[(acct, symbol)] == pytest.approx(float(pos["liquidationPrice"]),
                                                        rel=REL), (acct, pos)
            checked += 1
    assert checked == 2
    # hedge mode, cross, BTCUSDT long 0.3 @ 96,000 and short 0.1 @ 98,000 on a wallet of
    # 8,000 USDT, no other cross position; both sides in bracket 1 (0.4%, cum 0) there and
    # at the answer. Binance's formula with both sides of the symbol:
    # LP = (WB + cumL + cumS - Q_L EP_L + Q_S EP_S) / (Q_L MMR_L + Q_S MMR_S - Q_L + Q_S)
    lp = (8_000.0 - 0.3 * 96_000.0 + 0.1 * 98_000.0) / (0.3 * 0.004 + 0.1 * 0.004 - 0.3 + 0.1)
    assert lp * 0.3 < 50_000.0  # bracket 1 at the answer
    assert got[("binance-sub-2", "BTC")] == pytest.approx(lp, rel=REL)
    # the isolated SOL short of hedge mode: the short formula of VENUES.md,
    # LP = (|Q| EP + WB + cum) / (|Q| (1 + MMR)); SOL is in Binance's default table
    sol = got[("binance-sub-2:SOLUSDT:SHORT", "SOL")]
    short = next(p for p in document["binance-sub-2"]["positionRisk"]
                 if p["symbol"] == "SOLUSDT")
    assert sol == pytest.approx(float(short["liquidationPrice"]), rel=REL)
    assert np.isnan(got[("binance-sub-1", "SOL")])  # no SOL exposure: null
