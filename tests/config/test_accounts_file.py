"""``[accounts_file]``: accounts from a CSV or Parquet file, one row per position.

The shipped example ``tests/data/accounts.csv`` is written out by hand below as
``[[accounts]]`` (the reference); the file must give the same accounts, the same book and
the same run outputs. CSV and Parquet give the same accounts. Every bad file exits 2 from
the CLI with one line naming the file, the row and the column, the bad value and what
would be valid.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator import cli
from simulator.book.build import build_book
from simulator.config.scenario import load_scenario
from simulator.errors import ScenarioError
from simulator.execution.runner import run

from ..support import DATA

EXAMPLE = DATA / "accounts.csv"

BASE = """\
name = "accounts-file-test"
[simulation]
paths = 240
seed = 5
steps = 12
horizon_days = 2.0
chunk_paths = 120

[market]
model = "gbm"
correlation = [[1.0, 0.6], [0.6, 1.0]]
[[market.assets]]
symbol = "BTC"
price = 60000.0
vol = 0.9
depth_usd = 2.0e7
haircut = 0.1
[[market.assets]]
symbol = "ETH"
price = 3000.0
vol = 1.1
depth_usd = 1.0e7

[venue]
maintenance_margin_rate = 0.02

[[shocks]]
kind = "gap"
step = 2
asset = "*"
size = -0.2
"""

# tests/data/accounts.csv, written by hand as [[accounts]]
EXPLICIT = """
[[accounts]]
id = "whale-1"
margin_mode = "isolated"
collateral = { USD = 250000.0 }
positions = [ { symbol = "BTC", qty = 40.0, entry = 60000.0 },
              { symbol = "ETH", qty = -200.0, entry = 3100.0 } ]

[[accounts]]
id = "cross-1"
collateral = { USD = 10000.0, BTC = 0.5 }
positions = [ { symbol = "BTC", qty = 1.5 },
              { symbol = "ETH", type = "inverse", qty = 90000.0, entry = 2950.0 } ]

[[accounts]]
id = "vol-seller"
margin_mode = "cross"
collateral = { USD = 50000.0, BTC = 1.0 }
[[accounts.positions]]
symbol = "BTC"
type = "call"
qty = -5.0
strike = 65000.0
expiry_days = 30
[[accounts.positions]]
symbol = "BTC"
type = "put"
qty = 2.0
strike = 50000.0
expiry_days = 30
iv = 0.9

[[accounts]]
id = "treasury"
collateral = { USD = 20000.0 }
"""

HEADER = "account_id,margin_mode,symbol,type,qty,entry,collateral_USD"


def _scenario(folder: Path, *, extra: str = "", file: str | None = "accounts.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = BASE + extra
    if file is not None:
        text += f'\n[accounts_file]\npath = "{file}"\n'
    path = folder / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _with_example(folder: Path, name: str = "accounts.csv") -> Path:
    path = _scenario(folder, file=name)
    shutil.copy(EXAMPLE, folder / name)
    return path


def _example_as_parquet(path: Path) -> None:
    """The example file as a typed Parquet table (nulls where the CSV is blank)."""
    f64 = pa.float64()
    table = pa.table({
        "account_id": pa.array(["whale-1", "whale-1", "cross-1", "cross-1", "vol-seller",
                                "vol-seller", "treasury"]),
        "margin_mode": pa.array(["isolated", "isolated", None, None, "cross", None, None]),
        "symbol": pa.array(["BTC", "ETH", "BTC", "ETH", "BTC", "BTC", None]),
        "type": pa.array([None, None, None, "inverse", "call", "put", None]),
        "qty": pa.array([40, -200, 1.5, 90000, -5, 2, None], f64),
        "entry": pa.array([60000, 3100, None, 2950, None, None, None], f64),
        "strike": pa.array([None, None, None, None, 65000, 50000, None], pa.int64()),
        "expiry_days": pa.array([None, None, None, None, 30, 30, None], f64),
        "iv": pa.array([None, None, None, None, None, 0.9, None], f64),
        "collateral_USD": pa.array([250000, 250000, 10000, 10000, 50000, None, 20000], f64),
        "collateral_BTC": pa.array([None, None, 0.5, 0.5, 1, None, None], f64),
    })
    pq.write_table(table, path)


# --------------------------------------------------------------------------- equivalence


def test_file_gives_the_accounts_written_as_explicit_accounts(tmp_path):
    from_file = load_scenario(_with_example(tmp_path / "file"))
    explicit = load_scenario(_scenario(tmp_path / "explicit", extra=EXPLICIT, file=None))
    assert from_file.accounts == ()
    assert from_file.all_accounts == explicit.accounts
    assert [a.id for a in from_file.all_accounts] == ["whale-1", "cross-1", "vol-seller",
                                                      "treasury"]
    book_f, book_e = build_book(from_file), build_book(explicit)
    assert book_f.account_ids == book_e.account_ids
    for name in ("account_isolated", "unit_account", "unit_usd", "unit_coll", "unit_pos_start",
                 "pos_asset", "pos_qty", "pos_entry", "pos_kind", "pos_expiry_years", "pos_iv"):
        assert np.array_equal(getattr(book_f, name), getattr(book_e, name)), name


def test_file_and_explicit_accounts_give_the_same_run(tmp_path):
    from_file = load_scenario(_with_example(tmp_path / "file"))
    explicit = load_scenario(_scenario(tmp_path / "explicit", extra=EXPLICIT, file=None))
    run(from_file, tmp_path / "out-file", jobs=1)
    run(explicit, tmp_path / "out-explicit", jobs=1)
    for sub in ("paths", "events"):
        parts = sorted(p.name for p in (tmp_path / "out-file" / sub).glob("*.parquet"))
        assert parts == sorted(p.name for p in (tmp_path / "out-explicit" / sub).glob("*.parquet"))
        assert len(parts) == 2
        for name in parts:
            a = pq.read_table(tmp_path / "out-file" / sub / name)
            b = pq.read_table(tmp_path / "out-explicit" / sub / name)
            assert a.equals(b), (sub, name)
    events = pq.read_table(tmp_path / "out-file" / "events").num_rows
    assert events > 0  # the gap liquidates someone: the comparison is not vacuous
    a = pq.read_table(tmp_path / "out-file" / "accounts.parquet")
    b = pq.read_table(tmp_path / "out-explicit" / "accounts.parquet")
    assert a.equals(b)


def test_csv_and_parquet_give_the_same_accounts(tmp_path):
    csv_sc = load_scenario(_with_example(tmp_path / "csv"))
    folder = tmp_path / "pq"
    path = _scenario(folder, file="accounts.parquet")
    _example_as_parquet(folder / "accounts.parquet")
    pq_sc = load_scenario(path)
    assert pq_sc.all_accounts == csv_sc.all_accounts


def test_relative_path_resolves_against_the_scenario_folder(tmp_path, monkeypatch):
    folder = tmp_path / "deep" / "er"
    _scenario(folder, file="books/today.csv")
    (folder / "books").mkdir()
    shutil.copy(EXAMPLE, folder / "books" / "today.csv")
    monkeypatch.chdir(tmp_path)
    sc = load_scenario(Path("deep/er/scenario.toml"))
    assert len(sc.all_accounts) == 4
    assert sc.resolved()["accounts_file"]["path"] == "books/today.csv"


def test_absolute_path(tmp_path):
    sc = load_scenario(_scenario(tmp_path / "s", file=str(EXAMPLE.resolve())))
    assert len(sc.all_accounts) == 4


def test_file_joins_explicit_accounts_and_the_population(tmp_path):
    extra = '\n[[accounts]]\nid = "solo"\ncollateral = { USD = 1000.0 }\n' \
            'positions = [ { symbol = "ETH", qty = 1.0 } ]\n[population]\ncount = 25\n'
    path = _scenario(tmp_path, extra=extra)
    shutil.copy(EXAMPLE, tmp_path / "accounts.csv")
    sc = load_scenario(path)
    book = build_book(sc)
    assert book.account_ids[:5] == ("solo", "whale-1", "cross-1", "vol-seller", "treasury")
    assert book.n_accounts == 5 + 25
    assert len(set(book.account_ids)) == book.n_accounts


def test_digest_follows_the_file_content_not_its_spelling(tmp_path):
    a = load_scenario(_with_example(tmp_path / "a"))
    b = load_scenario(_with_example(tmp_path / "b"))
    assert a.digest == b.digest
    resolved = a.resolved()["accounts_file"]
    assert resolved["n_accounts"] == 4 and resolved["n_positions"] == 6
    assert len(resolved["sha256"]) == 64
    text = EXAMPLE.read_text().replace("-200,", "-201,")
    (tmp_path / "b" / "accounts.csv").write_text(text)
    assert load_scenario(tmp_path / "b" / "scenario.toml").digest != a.digest


def test_join_style_and_union_style_exports_agree(tmp_path):
    """Collateral repeated on every position row, or on a row of its own: same account."""
    join = f"{HEADER}\na,,BTC,,1,,5000\na,,ETH,,-2,,5000\n"
    union = f"{HEADER}\na,,,,,,5000\na,,BTC,,1,,\na,,ETH,,-2,,\n"
    out = []
    for name, text in (("join", join), ("union", union)):
        path = _scenario(tmp_path / name)
        (tmp_path / name / "accounts.csv").write_text(text)
        out.append(load_scenario(path).all_accounts)
    assert out[0] == out[1]
    assert out[0][0].collateral == (("USD", 5000.0),)


def test_lending_file_reads_collateral_and_debt(tmp_path):
    venue = '\n[venue]\npreset = "aave-v3"\n'
    base = BASE.replace("[venue]\nmaintenance_margin_rate = 0.02\n", "")
    folder = tmp_path / "lend"
    folder.mkdir()
    (folder / "accounts.csv").write_text(
        "account_id,collateral_ETH,collateral_BTC,debt_USD,debt_ETH\n"
        "b1,10,,15000,\nb2,,1,,4\n")
    (folder / "scenario.toml").write_text(
        base + venue + '\n[accounts_file]\npath = "accounts.csv"\n')
    (folder / "explicit.toml").write_text(
        base + venue + '\n[[accounts]]\nid = "b1"\ncollateral = { ETH = 10.0 }\n'
        'debt = { USD = 15000.0 }\n[[accounts]]\nid = "b2"\ncollateral = { BTC = 1.0 }\n'
        'debt = { ETH = 4.0 }\n')
    assert (load_scenario(folder / "scenario.toml").all_accounts
            == load_scenario(folder / "explicit.toml").accounts)


# --------------------------------------------------------------------------- errors

ROW2 = "row 2 (line 3)"

CSV_ERRORS = [
    # (id, file text, needles that the one error line must hold)
    ("not-a-number", f"{HEADER}\na,,BTC,,1,,100\nb,,ETH,,abc,,100\n",
     (ROW2, "column 'qty'", "'abc'", "expected a number")),
    ("nan", f"{HEADER}\na,,BTC,,1,,100\nb,,ETH,,nan,,100\n",
     (ROW2, "column 'qty'", "nan", "finite")),
    ("inf", f"{HEADER}\na,,BTC,,1,,100\nb,,ETH,,2,inf,100\n",
     (ROW2, "column 'entry'", "inf", "finite")),
    ("negative-entry", f"{HEADER}\na,,BTC,,1,,100\nb,,ETH,,2,-3000,100\n",
     (ROW2, "column 'entry'", "-3000", "> 0")),
    ("negative-collateral", f"{HEADER}\na,,BTC,,1,,100\nb,,ETH,,2,,-5\n",
     (ROW2, "column 'collateral_USD'", "-5", ">= 0")),
    ("unknown-symbol", f"{HEADER}\na,,BTC,,1,,100\nb,,DOGE,,2,,100\n",
     (ROW2, "column 'symbol'", "'DOGE'", "valid: BTC, ETH")),
    ("bad-margin-mode", f"{HEADER}\na,,BTC,,1,,100\nb,portfolio,ETH,,2,,100\n",
     (ROW2, "column 'margin_mode'", "'portfolio'", "valid: cross, isolated")),
    ("bad-type", f"{HEADER}\na,,BTC,,1,,100\nb,,ETH,future,2,,100\n",
     (ROW2, "column 'type'", "'future'", "perp, inverse, call, put")),
    ("modes-differ", f"{HEADER}\na,cross,BTC,,1,,100\na,isolated,ETH,,2,,100\n",
     (ROW2, "column 'margin_mode'", "'isolated'", "differs", "row 1 (line 2)")),
    ("collateral-differs", f"{HEADER}\na,,BTC,,1,,100\na,,ETH,,2,,200\n",
     (ROW2, "column 'collateral_USD'", "200", "differs", "row 1 (line 2)")),
    ("duplicate-position", f"{HEADER}\na,,BTC,,1,,100\na,,BTC,,2,,100\n",
     (ROW2, "column 'symbol'", "duplicate position", "row 1 (line 2)")),
    ("missing-id", f"{HEADER}\na,,BTC,,1,,100\n,,ETH,,2,,100\n",
     (ROW2, "column 'account_id'", "is missing")),
    ("qty-without-symbol", f"{HEADER}\na,,BTC,,1,,100\nb,,,,2,,100\n",
     (ROW2, "column 'qty'", "without a symbol")),
    ("ragged-row", f"{HEADER}\na,,BTC,,1,,100\nb,,ETH,,2\n", (ROW2, "has 5 cells", "7")),
    ("missing-qty-cell", f"{HEADER}\na,,BTC,,1,,100\nb,,ETH,,,,100\n",
     (ROW2, "column 'qty'", "is required")),
    ("option-with-entry", "account_id,symbol,type,qty,entry,strike,expiry_days\n"
     "a,BTC,call,-1,100,65000,30\n", ("row 1 (line 2)", "column 'entry'", "no entry price")),
    ("missing-column", "account_id,symbol,collateral_USD\na,BTC,100\n",
     ("column 'qty'", "is missing", "required: account_id, symbol, qty")),
    ("unknown-column", "account_id,symbol,qty,leverage\na,BTC,1,5\n",
     ("column 'leverage'", "unknown column", "collateral_<SYM>")),
    ("collateral-unknown-asset", "account_id,symbol,qty,collateral_DOGE\na,BTC,1,5\n",
     ("column 'collateral_DOGE'", "'DOGE' is not an asset", "USD, BTC, ETH")),
    ("duplicate-column", "account_id,symbol,qty,qty\na,BTC,1,5\n",
     ("column 'qty'", "appears twice")),
    ("debt-on-derivatives", "account_id,symbol,qty,debt_USD\na,BTC,1,5\n",
     ("column 'debt_USD'", "lending venues")),
    ("empty", "", ("the file is empty",)),
    ("not-utf8", b"account_id,symbol,qty\n\xff\xfe,BTC,1\n", ("line 2", "not UTF-8", "xff")),
    ("id-clash", f"{HEADER}\nsolo,,BTC,,1,,100\n",
     ("row 1 (line 2)", "column 'account_id'", "'solo'", "accounts[0]", "unique")),
]


def _cli_error(capsys, scenario: Path) -> str:
    assert cli.main(["validate", str(scenario)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0].removeprefix("marginsim: error: ")


@pytest.mark.parametrize(("text", "needles"),
                         [pytest.param(t, n, id=i) for i, t, n in CSV_ERRORS])
def test_bad_csv_exits_2_naming_file_row_and_column(tmp_path, capsys, text, needles):
    extra = ""
    if "solo" in str(text):
        extra = '\n[[accounts]]\nid = "solo"\ncollateral = { USD = 1.0 }\n'
    path = _scenario(tmp_path, extra=extra)
    data = text if isinstance(text, bytes) else text.encode()
    (tmp_path / "accounts.csv").write_bytes(data)
    line = _cli_error(capsys, path)
    assert line.startswith(f"{tmp_path / 'accounts.csv'}: "), line
    for needle in needles:
        assert needle in line, (needle, line)
    with pytest.raises(ScenarioError):
        load_scenario(path)


def _typed(**columns) -> pa.Table:
    base = {"account_id": pa.array(["a", "b"]), "symbol": pa.array(["BTC", "ETH"]),
            "qty": pa.array([1.0, 2.0])}
    base.update(columns)
    return pa.table(base)


PARQUET_ERRORS = [
    ("string-qty", _typed(qty=pa.array(["1", "x"])),
     ("row 1 (index 0)", "column 'qty'", "type string", "'1'", "expected numbers")),
    ("float-id", _typed(account_id=pa.array([1.0, 2.0])),
     ("column 'account_id'", "type double", "expected ids")),
    ("number-symbol", _typed(symbol=pa.array([None, 7])),
     ("row 2 (index 1)", "column 'symbol'", "type int64", "7", "expected text")),
    ("nan-qty", _typed(qty=pa.array([1.0, float("nan")])),
     ("row 2 (index 1)", "column 'qty'", "nan", "finite")),
    ("inf-collateral", _typed(collateral_USD=pa.array([1.0, float("inf")])),
     ("row 2 (index 1)", "column 'collateral_USD'", "inf", "finite")),
    ("bool-qty", _typed(qty=pa.array([True, False])),
     ("column 'qty'", "type bool", "expected numbers")),
    ("unknown-symbol", _typed(symbol=pa.array(["BTC", "XRP"])),
     ("row 2 (index 1)", "column 'symbol'", "'XRP'", "valid: BTC, ETH")),
]


@pytest.mark.parametrize(("table", "needles"),
                         [pytest.param(t, n, id=i) for i, t, n in PARQUET_ERRORS])
def test_bad_parquet_exits_2_naming_file_row_and_column(tmp_path, capsys, table, needles):
    path = _scenario(tmp_path, file="accounts.parquet")
    pq.write_table(table, tmp_path / "accounts.parquet")
    line = _cli_error(capsys, path)
    assert line.startswith(f"{tmp_path / 'accounts.parquet'}: "), line
    for needle in needles:
        assert needle in line, (needle, line)


def test_dictionary_encoded_parquet_strings_are_read(tmp_path):
    path = _scenario(tmp_path, file="accounts.parquet")
    table = _typed(symbol=pa.array(["BTC", "ETH"]).dictionary_encode())
    pq.write_table(table, tmp_path / "accounts.parquet")
    assert [p.symbol for a in load_scenario(path).all_accounts for p in a.positions] == [
        "BTC", "ETH"]


@pytest.mark.parametrize(("setup", "file", "needles"), [
    pytest.param(None, "nope.csv", ("accounts_file.path", "cannot read", "nope.csv"),
                 id="missing"),
    pytest.param("dir", "adir.csv", ("accounts_file.path", "is a directory"), id="directory"),
    pytest.param(None, "accounts.xlsx", ("accounts_file.path", "neither CSV nor Parquet",
                                         ".parquet"), id="extension"),
    pytest.param("junk", "junk.parquet", ("junk.parquet", "cannot be read as Parquet"),
                 id="corrupt-parquet"),
])
def test_unreadable_file_exits_2(tmp_path, capsys, setup, file, needles):
    path = _scenario(tmp_path, file=file)
    if setup == "dir":
        (tmp_path / file).mkdir()
    elif setup == "junk":
        (tmp_path / file).write_bytes(b"PAR1 this is not parquet")
    line = _cli_error(capsys, path)
    assert "scenario.toml" in line or setup == "junk"
    for needle in needles:
        assert needle in line, (needle, line)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_file_with_a_header_and_no_rows_gives_no_accounts(tmp_path, kind):
    """An empty export of a sub-book is valid: the file adds no account, the rest stays."""
    extra = '\n[[accounts]]\nid = "solo"\ncollateral = { USD = 1000.0 }\n' \
            'positions = [ { symbol = "ETH", qty = 1.0 } ]\n[population]\ncount = 3\n'
    name = f"accounts.{kind}"
    path = _scenario(tmp_path, extra=extra, file=name)
    if kind == "csv":
        (tmp_path / name).write_text(f"{HEADER}\n", encoding="utf-8")
    else:
        pq.write_table(_typed().slice(0, 0), tmp_path / name)
    sc = load_scenario(path)
    assert sc.accounts_file is not None and sc.accounts_file.accounts == ()
    assert sc.accounts_file.summary()["n_accounts"] == 0
    book = build_book(sc)
    assert book.account_ids == ("solo", "pop-000000", "pop-000001", "pop-000002")


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_an_empty_file_and_no_other_account_is_an_error(tmp_path, capsys, kind):
    name = f"accounts.{kind}"
    path = _scenario(tmp_path, file=name)
    if kind == "csv":
        (tmp_path / name).write_text(f"{HEADER}\n", encoding="utf-8")
    else:
        pq.write_table(_typed().slice(0, 0), tmp_path / name)
    line = _cli_error(capsys, path)
    assert line.startswith(f"{path}: accounts: the scenario has no accounts"), line
    assert f"the accounts file '{name}' has no rows" in line, line


def test_a_header_only_file_is_still_checked(tmp_path, capsys):
    """No rows does not mean no checks: a bad header is refused as before."""
    path = _scenario(tmp_path, extra='\n[population]\ncount = 3\n')
    (tmp_path / "accounts.csv").write_text("account_id,symbol,qty,leverage\n")
    line = _cli_error(capsys, path)
    assert "column 'leverage'" in line and "unknown column" in line


def test_unknown_key_in_the_accounts_file_table(tmp_path, capsys):
    path = _scenario(tmp_path)
    shutil.copy(EXAMPLE, tmp_path / "accounts.csv")
    path.write_text(path.read_text() + "delimiter = \";\"\n")
    line = _cli_error(capsys, path)
    assert "accounts_file.delimiter" in line and "unknown key" in line


def test_population_prefix_clashing_with_file_ids(tmp_path):
    path = _scenario(tmp_path, extra="\n[population]\ncount = 3\nid_prefix = \"whale\"\n")
    shutil.copy(EXAMPLE, tmp_path / "accounts.csv")
    with pytest.raises(ScenarioError, match="id_prefix"):
        load_scenario(path)


def test_lending_file_refuses_position_columns(tmp_path):
    base = BASE.replace("[venue]\nmaintenance_margin_rate = 0.02\n",
                        '[venue]\npreset = "aave-v3"\n')
    (tmp_path / "accounts.csv").write_text("account_id,symbol,qty\na,BTC,1\n")
    (tmp_path / "s.toml").write_text(base + '\n[accounts_file]\npath = "accounts.csv"\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "s.toml")
    assert info.value.key == "column 'symbol'" and "lending venue" in info.value.message
