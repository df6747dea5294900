"""``[accounts_file] format = "hyperliquid" | "binance" | "aave" | "dydx"``: venue snapshots.

The fixtures in ``tests/data/snapshots/`` are written in the shape of each venue's
published API responses (several accounts per file; cross and isolated; long and short;
Binance with its account and position-risk responses, V2 and V3; Aave with collateral and
debt in reserves of 6, 8 and 18 decimals; dYdX with USDC asset positions and perpetuals),
all at one set of marks: BTC 97,000, ETH 3,500, SOL 200. The expected accounts below are
worked out by hand from the fixtures' numbers (the arithmetic is in the comments), and each
account's equity at those marks is checked against the venue's own account value.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from simulator import cli
from simulator.book.build import build_book
from simulator.config.scenario import load_scenario
from simulator.errors import ScenarioError
from simulator.execution.runner import run

from ..support import DATA

SNAPSHOTS = DATA / "snapshots"
MARKS = np.array([97_000.0, 3_500.0, 200.0])  # BTC, ETH, SOL at the snapshots' time

ASSETS = {
    "BTC": 'price = 97000.0\nvol = 0.6\ndepth_usd = 5.0e7',
    "ETH": 'price = 3500.0\nvol = 0.7\ndepth_usd = 2.0e7',
    "SOL": 'price = 200.0\nvol = 0.9\ndepth_usd = 5.0e6',
}
PRESETS = {"hyperliquid": "hyperliquid", "binance": "binance-usdm", "aave": "aave-v3",
           "dydx": "dydx-v4"}

HL_A = "0x8c1f4b2e7d3a5f6091c2b3a4d5e6f708192a3b4c"
HL_B = "0x3e5b7a9c1d2f4e6a8b0c2d4e6f8a0b1c2d3e4f5a"
HL_C = "0xd0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3"
AAVE_1 = "0x4f1b2c3d4e5f60718293a4b5c6d7e8f901a2b3c4"
AAVE_2 = "0x9a8b7c6d5e4f30211203f4e5d6c7b8a9f0e1d2c3"
AAVE_3 = "0x1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d"
DYDX_A = "dydx1q8n3w6m0h5a2v7c4x9z2k6r8t0y3u5p7s9d2f4"
DYDX_B = "dydx1z7x5c3v1b9n7m5l3k1j9h7g5f3d1s9a7p5q3w1"

# (id, margin mode, collateral, positions as (symbol, qty, entry), debt)
EXPECTED = {
    "hyperliquid": [
        # cross: accountValue 12,000 - uPnL (1,000 BTC + 1,000 ETH) = 10,000
        (HL_A, "cross", {"USD": 10_000.0}, [("BTC", 0.5, 95_000.0), ("ETH", -10.0, 3_600.0)],
         {}),
        # isolated SOL: marginUsed 3,200 - uPnL (-1,000) = 4,200 (= 21,000 entry notional / 5x)
        (f"{HL_A}:SOL", "isolated", {"USD": 4_200.0}, [("SOL", 100.0, 210.0)], {}),
        # cross: accountValue 4,800 - uPnL (-200) = 5,000
        (HL_B, "cross", {"USD": 5_000.0}, [("ETH", -4.0, 3_450.0)], {}),
        # isolated BTC: marginUsed 21,200 - uPnL 2,000 = 19,200 (= 192,000 / 10x)
        (f"{HL_B}:BTC", "isolated", {"USD": 19_200.0}, [("BTC", 2.0, 96_000.0)], {}),
        (HL_C, "cross", {"USD": 2_500.0}, [], {}),
    ],
    "binance": [
        # crossWalletBalance of USDT; USDC and BNB are 0; SOLUSDT and DOGEUSDT hold 0
        ("binance-sub-1", "cross", {"USD": 20_000.0}, [("BTC", 0.8, 94_000.0)], {}),
        ("binance-sub-1:ETHUSDT", "isolated", {"USD": 5_200.0}, [("ETH", -15.0, 3_400.0)], {}),
        # hedge mode (V3 responses, no marginType): both BTC sides cross, SOL short isolated
        ("binance-sub-2", "cross", {"USD": 8_000.0},
         [("BTC", 0.3, 96_000.0), ("BTC", -0.1, 98_000.0)], {}),
        ("binance-sub-2:SOLUSDT:SHORT", "isolated", {"USD": 2_000.0},
         [("SOL", -50.0, 190.0)], {}),
    ],
    "aave": [
        # 10.5e18 wei WETH, 0.5e8 sat WBTC as collateral; 15,000e6 USDC debt; DAI not collateral
        (AAVE_1, "cross", {"ETH": 10.5, "BTC": 0.5}, [], {"USD": 15_000.0}),
        # 50,000e6 USDC; WETH debt 8 variable + 0.25 stable
        (AAVE_2, "cross", {"USD": 50_000.0}, [], {"ETH": 8.25}),
        # LINK row all zero: passed over although LINK is no asset
        (AAVE_3, "cross", {"ETH": 2.0}, [], {"USD": 3_000.0}),
    ],
    "dydx": [
        # USDC -5,000 + 0.4 x 95,000 - 5 x 3,600 = 15,000
        (f"{DYDX_A}/0", "cross", {"USD": 15_000.0},
         [("BTC", 0.4, 95_000.0), ("ETH", -5.0, 3_600.0)], {}),
        # USDC -6,300 + 40 x 195 = 1,500
        (f"{DYDX_A}/128", "cross", {"USD": 1_500.0}, [("SOL", 40.0, 195.0)], {}),
        (f"{DYDX_B}/0", "cross", {"USD": 2_500.0}, [], {}),
    ],
}

# the venue's own value of each account (its equity at the marks)
VENUE_VALUE = {
    "hyperliquid": {HL_A: 12_000.0, f"{HL_A}:SOL": 3_200.0,  # crossMarginSummary / marginUsed
                    HL_B: 4_800.0, f"{HL_B}:BTC": 21_200.0, HL_C: 2_500.0},
    "binance": {"binance-sub-1": 22_400.0,  # crossWalletBalance + crossUnPnl
                "binance-sub-1:ETHUSDT": 3_700.0,  # isolatedMargin
                "binance-sub-2": 8_400.0, "binance-sub-2:SOLUSDT:SHORT": 1_500.0},
    "aave": {AAVE_1: 10.5 * 3_500 + 0.5 * 97_000 - 15_000,  # 70,250
             AAVE_2: 50_000 - 8.25 * 3_500,  # 21,125
             AAVE_3: 2 * 3_500 - 3_000},  # 4,000
    "dydx": {f"{DYDX_A}/0": 16_300.0, f"{DYDX_A}/128": 1_700.0,  # the indexer's equity
             f"{DYDX_B}/0": 2_500.0},
}
# marginSummary.accountValue (Hyperliquid) and totalMarginBalance (Binance) of each venue
# account: the sum over the model accounts it became
VENUE_TOTAL = {"hyperliquid": {HL_A: 15_200.0, HL_B: 26_000.0, HL_C: 2_500.0},
               "binance": {"binance-sub-1": 26_100.0, "binance-sub-2": 9_900.0}}


def _scenario(folder: Path, fmt: str, *, file: str | None = None, extra: str = "",
              assets: tuple[str, ...] = ("BTC", "ETH", "SOL"), copy: bool = True) -> Path:
    """A scenario reading ``file`` (by default the fixture of ``fmt``) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    name = file or f"{fmt}.json"
    if copy:
        shutil.copy(SNAPSHOTS / f"{fmt}.json", folder / name)
    text = 'name = "snapshot-test"\n[simulation]\npaths = 16\nsteps = 4\nchunk_paths = 16\n' \
           '[market]\nmodel = "gbm"\n'
    for symbol in assets:
        text += f'[[market.assets]]\nsymbol = "{symbol}"\n{ASSETS[symbol]}\n'
    text += f'[venue]\npreset = "{PRESETS.get(fmt, "hyperliquid")}"\n'
    text += f'[accounts_file]\npath = "{name}"\nformat = "{fmt}"\n{extra}'
    path = folder / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _edit(folder: Path, fmt: str, change) -> Path:
    """The fixture of ``fmt`` after ``change(document)``, saved in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    document = json.loads((SNAPSHOTS / f"{fmt}.json").read_text())
    document = change(document) or document
    path = folder / f"{fmt}.json"
    path.write_text(json.dumps(document, indent=1))
    return path


def _error(path: Path) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return info.value


def _as_tuples(accounts) -> list:
    return [(a.id, a.margin_mode, dict(a.collateral),
             [(p.symbol, p.qty, p.entry) for p in a.positions], dict(a.debt))
            for a in accounts]


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_snapshot_gives_the_hand_computed_accounts(tmp_path, fmt):
    scenario = load_scenario(_scenario(tmp_path, fmt))
    assert all(p.kind == "perp" for a in scenario.all_accounts for p in a.positions)
    assert _as_tuples(scenario.all_accounts) == EXPECTED[fmt]


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_equity_at_the_marks_is_the_venue_account_value(tmp_path, fmt):
    book = build_book(load_scenario(_scenario(tmp_path, fmt)))
    with np.errstate(divide="ignore", invalid="ignore"):  # a debt's entry price is 0
        nav = np.bincount(book.unit_account, book.unit_nav(MARKS), minlength=book.n_accounts)
    equity = dict(zip(book.account_ids, nav, strict=True))
    assert equity == pytest.approx(VENUE_VALUE[fmt], rel=1e-12)
    for venue_account, total in VENUE_TOTAL.get(fmt, {}).items():
        parts = [v for k, v in equity.items() if k.split(":")[0] == venue_account]
        assert sum(parts) == pytest.approx(total, rel=1e-12)


def test_book_units_of_a_hyperliquid_snapshot(tmp_path):
    book = build_book(load_scenario(_scenario(tmp_path, "hyperliquid")))
    # one unit per account: each isolated account holds one position
    assert book.n_units == 5
    np.testing.assert_array_equal(book.account_isolated, [False, True, False, True, False])
    np.testing.assert_array_equal(book.unit_pos_start, [0, 2, 3, 4, 5, 5])
    np.testing.assert_array_equal(book.pos_asset, [0, 1, 2, 1, 0])
    np.testing.assert_array_equal(book.pos_qty, [0.5, -10.0, 100.0, -4.0, 2.0])
    np.testing.assert_array_equal(book.pos_entry, [95_000.0, 3_600.0, 210.0, 3_450.0, 96_000.0])
    np.testing.assert_array_equal(book.unit_usd, [10_000.0, 4_200.0, 5_000.0, 19_200.0, 2_500.0])


def test_book_of_an_aave_snapshot_holds_collateral_and_debt(tmp_path):
    book = build_book(load_scenario(_scenario(tmp_path, "aave")))
    # USD debt is negative cash; an asset debt a short at entry 0
    np.testing.assert_array_equal(book.unit_usd, [-15_000.0, 50_000.0, -3_000.0])
    np.testing.assert_array_equal(book.unit_coll, [[0.5, 10.5, 0.0], [0, 0, 0], [0, 2.0, 0]])
    np.testing.assert_array_equal(book.pos_asset, [1])
    np.testing.assert_array_equal(book.pos_qty, [-8.25])


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_a_snapshot_book_runs(tmp_path, fmt):
    # every asset gaps 30% down at step 1: below every long's liquidation price
    gap = '[[shocks]]\nkind = "gap"\nstep = 1\nasset = "*"\nsize = -0.3\n'
    path = _scenario(tmp_path, fmt)
    path.write_text(path.read_text().replace("[accounts_file]", gap + "[accounts_file]"))
    run(load_scenario(path), tmp_path / "out", jobs=1)
    accounts = pq.read_table(tmp_path / "out" / "accounts.parquet").to_pydict()
    assert accounts["account_id"] == [e[0] for e in EXPECTED[fmt]]
    if fmt == "hyperliquid":  # the isolated BTC long (liquidationPx 87,493.67) at 67,900
        prob = dict(zip(accounts["account_id"], accounts["liquidation_prob"], strict=True))
        assert prob[f"{HL_B}:BTC"] == 1.0 and prob[HL_C] == 0.0


# --------------------------------------------------------------------------- wrappers


def _same_accounts(tmp_path: Path, fmt: str, change) -> None:
    _edit(tmp_path / "v", fmt, change)
    scenario = load_scenario(_scenario(tmp_path / "v", fmt, copy=False))
    assert _as_tuples(scenario.all_accounts) == EXPECTED[fmt]


def test_hyperliquid_array_of_user_and_state(tmp_path):
    _same_accounts(tmp_path, "hyperliquid", lambda d: [
        {"user": user, "state" if i else "clearinghouseState": state}
        for i, (user, state) in enumerate(d.items())])


def test_binance_array_of_id_account_and_position_risk(tmp_path):
    _same_accounts(tmp_path, "binance", lambda d: [{"id": k, **v} for k, v in d.items()])


def test_aave_bare_array_and_plain_user(tmp_path):
    def change(d):
        rows = d["data"]["userReserves"]
        rows[0]["user"] = rows[0]["user"]["id"]
        del rows[0]["currentStableDebt"]  # absent in newer subgraphs: 0
        return rows
    _same_accounts(tmp_path, "aave", change)


@pytest.mark.parametrize("shape", ["array", "merged"])
def test_dydx_array_of_responses_or_one_response(tmp_path, shape):
    def change(d):
        if shape == "array":
            return list(d.values())
        return {"subaccounts": [s for r in d.values() for s in r["subaccounts"]]}
    _same_accounts(tmp_path, "dydx", change)


@pytest.mark.parametrize(("fmt", "change", "n"), [
    ("hyperliquid", lambda d: {"user": HL_A, "state": d[HL_A]}, 2),
    ("binance", lambda d: {"id": "binance-sub-2", **d["binance-sub-2"]}, 2),
])
def test_one_account_with_its_id_alone(tmp_path, fmt, change, n):
    _edit(tmp_path, fmt, change)
    accounts = load_scenario(_scenario(tmp_path, fmt, copy=False)).all_accounts
    expected = [e for e in EXPECTED[fmt] if e[0].split(":")[0] == accounts[0].id]
    assert _as_tuples(accounts) == expected and len(expected) == n


@pytest.mark.parametrize(("fmt", "change", "field"), [
    ("hyperliquid", lambda d: d[HL_A], "'assetPositions'"),
    ("binance", lambda d: d["binance-sub-1"], "'account'"),
])
def test_a_bare_response_is_refused_with_the_wrapper_to_use(tmp_path, fmt, change, field):
    _edit(tmp_path, fmt, change)
    error = _error(_scenario(tmp_path, fmt, copy=False))
    assert error.key == "(top level)" and "without its id" in error.message
    assert field in error.message and "wrap the responses as {" in error.message


# --------------------------------------------------------------------------- symbols


def test_symbols_override_the_default_rules(tmp_path):
    # The scenario calls bitcoin XBT: the venue's BTC maps to it.
    ASSETS["XBT"] = ASSETS["BTC"]
    try:
        path = _scenario(tmp_path, "hyperliquid", assets=("XBT", "ETH", "SOL"),
                         extra='symbols = { BTC = "XBT" }\n')
        accounts = load_scenario(path).all_accounts
    finally:
        del ASSETS["XBT"]
    assert [p.symbol for a in accounts for p in a.positions] == ["XBT", "ETH", "SOL", "ETH",
                                                                 "XBT"]
    assert accounts[3].id == f"{HL_B}:BTC"  # ids keep the venue's names


def test_unknown_symbol_is_an_error_naming_field_account_and_fixes(tmp_path):
    error = _error(_scenario(tmp_path, "dydx", assets=("BTC", "ETH")))
    assert error.source == str(tmp_path / "dydx.json")
    assert error.key == (f"{DYDX_A}.subaccounts[1].openPerpetualPositions.SOL-USD.market")
    for needle in ("'SOL-USD'", "(read as 'SOL')", "valid: BTC, ETH", "[[market.assets]]",
                   "accounts_file.symbols = { SOL-USD = ", 'unknown_symbols = "skip"'):
        assert needle in error.message


def test_unknown_symbols_skip_leaves_them_out_with_one_warning(tmp_path):
    path = _scenario(tmp_path, "hyperliquid", assets=("BTC", "ETH"),
                     extra='unknown_symbols = "skip"\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        accounts = load_scenario(path).all_accounts
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    # the SOL isolated position: 100 x 210 = 21,000 at entry
    assert "1 position(s) (entry notional 21,000 USD)" in messages[0] and "SOL" in messages[0]
    assert [a.id for a in accounts] == [HL_A, HL_B, f"{HL_B}:BTC", HL_C]


def test_a_skipped_cross_position_keeps_the_account_cash(tmp_path):
    # dYdX: the SOL subaccount keeps USDC + size x entry, as if closed at its entry price
    path = _scenario(tmp_path, "dydx", assets=("BTC", "ETH"), extra='unknown_symbols = "skip"\n')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        accounts = load_scenario(path).all_accounts
    assert _as_tuples(accounts)[1] == (f"{DYDX_A}/128", "cross", {"USD": 1_500.0}, [], {})


def test_a_symbol_mapped_to_no_asset_is_an_error(tmp_path):
    error = _error(_scenario(tmp_path, "aave", extra='symbols = { WETH = "DOGE" }\n'))
    assert error.key == "accounts_file.symbols.WETH" and "'DOGE' is not an asset" in error.message


# --------------------------------------------------------------------------- bad files


def _drop_szi(d):
    del d[HL_A]["assetPositions"][1]["position"]["szi"]


def _bad_amount(d):
    d["binance-sub-1"]["positionRisk"][0]["positionAmt"] = "0.8.0"


def _long_negative(d):
    d["binance-sub-2"]["positionRisk"][0]["positionAmt"] = "-0.3"


def _nan_string(d):
    d[DYDX_A]["subaccounts"][0]["openPerpetualPositions"]["BTC-USD"]["entryPrice"] = "NaN"


def _decimal_raw(d):
    d["data"]["userReserves"][1]["currentATokenBalance"] = "0.5"


@pytest.mark.parametrize(("fmt", "change", "key", "needles"), [
    ("hyperliquid", _drop_szi, f"{HL_A}.assetPositions[1].position.szi",
     ("is missing", "coin, cumFunding")),
    ("binance", _bad_amount, "binance-sub-1.positionRisk[0].positionAmt",
     ('"0.8.0"', "decimal number")),
    ("binance", _long_negative, "binance-sub-2.positionRisk[0].positionAmt",
     ("LONG", "negative")),
    ("dydx", _nan_string, f"{DYDX_A}.subaccounts[0].openPerpetualPositions.BTC-USD.entryPrice",
     ('"NaN"', "decimal number", f"account '{DYDX_A}/0'")),
    ("aave", _decimal_raw, "data.userReserves[1].currentATokenBalance",
     ('"0.5"', "raw token amount", f"account '{AAVE_1}'")),
])
def test_bad_field_names_file_path_value_and_what_is_valid(tmp_path, fmt, change, key,
                                                           needles):
    _edit(tmp_path, fmt, change)
    error = _error(_scenario(tmp_path, fmt, copy=False))
    assert error.source == str(tmp_path / f"{fmt}.json")
    assert error.key == key
    for needle in needles:
        assert needle in error.message


@pytest.mark.parametrize("value", ["1,000", " 1", "1 ", "NaN", "Infinity", "", "0x10", "1e999",
                                   True, None, [1], "\u0661", "1\u0660"])
def test_numbers_are_parsed_strictly(tmp_path, value):
    # (Arabic-Indic digits are digits to Python's float() and regex \d, not to JSON APIs)
    def change(d):
        d["binance-sub-1"]["positionRisk"][1]["entryPrice"] = value
    _edit(tmp_path, "binance", change)
    error = _error(_scenario(tmp_path, "binance", copy=False))
    assert error.key == "binance-sub-1.positionRisk[1].entryPrice"
    assert any(w in error.message for w in ("decimal number", "finite", "is missing"))


@pytest.mark.parametrize(("value", "qty"), [("-15", -15.0), (-15, -15.0), ("-1.5e1", -15.0),
                                            ("-15.", -15.0)])
def test_decimal_strings_and_json_numbers_are_read(tmp_path, value, qty):
    def change(d):
        d["binance-sub-1"]["positionRisk"][1]["positionAmt"] = value
    _edit(tmp_path, "binance", change)
    accounts = load_scenario(_scenario(tmp_path, "binance", copy=False)).all_accounts
    assert accounts[1].positions[0].qty == qty


def test_a_negative_balance_of_an_asset_is_refused(tmp_path):
    def change(d):
        d["binance-sub-1"]["account"]["assets"][2]["crossWalletBalance"] = "-1.5"  # BNB
    _edit(tmp_path, "binance", change)
    path = _scenario(tmp_path, "binance", copy=False, extra='symbols = { BNB = "SOL" }\n')
    error = _error(path)
    assert error.key == "binance-sub-1.account.assets"
    assert "negative balance of SOL (-1.5)" in error.message


def test_malformed_json_names_the_line(tmp_path):
    text = (SNAPSHOTS / "binance.json").read_text().splitlines()
    text[6] = text[6].rstrip(",")  # line 7: a missing comma
    (tmp_path / "binance.json").write_text("\n".join(text))
    error = _error(_scenario(tmp_path, "binance", copy=False))
    assert error.key.startswith("line 8, column") and "not valid JSON" in error.message


def test_unknown_format_name(tmp_path):
    path = _scenario(tmp_path, "hyperliquid")
    path.write_text(path.read_text().replace('format = "hyperliquid"', 'format = "bybit"'))
    error = _error(path)
    assert error.key == "accounts_file.format"
    assert "'bybit' is not valid; valid: positions, hyperliquid, binance, aave, dydx" in \
        error.message


def test_lending_format_needs_a_lending_venue_and_back(tmp_path):
    path = _scenario(tmp_path / "a", "aave")
    path.write_text(path.read_text().replace('"aave-v3"', '"hyperliquid"'))
    assert "needs a lending venue" in _error(path).message
    path = _scenario(tmp_path / "h", "hyperliquid")
    path.write_text(path.read_text().replace('preset = "hyperliquid"', 'preset = "aave-v3"'))
    assert "needs a derivatives venue" in _error(path).message


def test_snapshot_must_be_json_and_a_json_positions_file_is_pointed_at_format(tmp_path):
    path = _scenario(tmp_path, "dydx", file="dydx.csv")
    assert "is not named .json" in _error(path).message
    path.write_text(path.read_text().replace('"dydx.csv"', '"dydx.json"')
                    .replace('format = "dydx"\n', ""))
    shutil.copy(SNAPSHOTS / "dydx.json", tmp_path / "dydx.json")
    assert 'format = \\"hyperliquid\\"' in json.dumps(_error(path).message)


def test_positions_format_takes_no_symbol_keys(tmp_path):
    (tmp_path / "a.csv").write_text("account_id,symbol,qty\na,BTC,1\n")
    path = _scenario(tmp_path, "hyperliquid", copy=False)
    path.write_text(path.read_text().replace('"hyperliquid.json"', '"a.csv"')
                    .replace('format = "hyperliquid"', 'format = "positions"\n'
                             'unknown_symbols = "skip"'))
    error = _error(path)
    assert error.key == "accounts_file.unknown_symbols" and "venue snapshots" in error.message


def test_an_id_clashing_with_an_explicit_account(tmp_path):
    path = _scenario(tmp_path, "dydx")
    text = path.read_text().replace(
        "[accounts_file]", f'[[accounts]]\nid = "{DYDX_B}/0"\ncollateral = {{ USD = 1.0 }}\n'
        "[accounts_file]")
    path.write_text(text)
    error = _error(path)
    assert error.key == f"{DYDX_B}.subaccounts[0]"
    assert "accounts[0]" in error.message and "unique" in error.message


def test_bad_snapshot_exits_2_with_one_line(tmp_path, capsys):
    _edit(tmp_path, "hyperliquid", _drop_szi)
    assert cli.main(["validate", str(_scenario(tmp_path, "hyperliquid", copy=False))]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert f"hyperliquid.json: {HL_A}.assetPositions[1].position.szi: is missing" in lines[0]


# --------------------------------------------------------------------------- digest


def test_digest_records_the_format_and_symbol_rules(tmp_path):
    plain = load_scenario(_scenario(tmp_path / "a", "hyperliquid"))
    summary = plain.resolved()["accounts_file"]
    assert summary["format"] == "hyperliquid" and "symbols" not in summary
    assert "unknown_symbols" not in summary
    ruled = load_scenario(_scenario(tmp_path / "b", "hyperliquid",
                                    extra='symbols = { ETH = "ETH" }\n'))
    assert ruled.resolved()["accounts_file"]["symbols"] == {"ETH": "ETH"}
    assert ruled.digest != plain.digest  # same file, same accounts: the rules still count


def test_a_positions_file_summary_is_as_before(tmp_path):
    (tmp_path / "a.csv").write_text("account_id,symbol,qty\na,BTC,1\n")
    path = _scenario(tmp_path, "hyperliquid", copy=False)
    path.write_text(path.read_text().replace('"hyperliquid.json"', '"a.csv"')
                    .replace('format = "hyperliquid"', 'format = "positions"'))
    summary = load_scenario(path).resolved()["accounts_file"]
    assert sorted(summary) == ["n_accounts", "n_positions", "path", "sha256"]
