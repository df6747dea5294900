"""Fuzzing the scenario loader: whatever the input, a Scenario or a MarginsimError.

A valid document that reaches every section (assets, correlation, a model table, venue,
behaviour, shocks, perpetual, inverse and option positions, an accounts file and a
population) is mutated by ``hypothesis``: keys dropped, values replaced by other types,
NaN, infinities, huge, tiny or negative numbers, random text, wrong nesting, extra keys.
Random bytes and damaged TOML text are loaded too. ``load_scenario`` must return a
Scenario or raise :class:`~simulator.errors.MarginsimError`, never anything else; and
``marginsim validate`` (which also builds the book and the path inputs) must exit 0 or 2
with at most one line on stderr. Derandomized, with a bounded number of examples.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import cli
from simulator.config.scenario import Scenario, load_scenario
from simulator.errors import MarginsimError

from ..support.toml_text import dumps as toml_dumps

ACCOUNTS_CSV = ("account_id,margin_mode,symbol,type,qty,entry,strike,expiry_days,collateral_USD\n"
                "f-1,isolated,BTC,,2,58000,,,30000\n"
                "f-2,,ETH,call,-3,,3200,7,5000\n")

BASE: dict[str, Any] = {
    "name": "fuzz",
    "description": "every section of a scenario",
    "simulation": {"paths": 8, "seed": 3, "steps": 6, "horizon_days": 1.0, "chunk_paths": 4,
                   "risk_levels": [0.95, 0.99]},
    "market": {
        "model": "merton",
        "correlation": [[1.0, 0.5], [0.5, 1.0]],
        "jumps": {"intensity": 2.0, "mean": -0.1, "std": 0.05, "common": True},
        "assets": [
            {"symbol": "BTC", "price": 60000.0, "vol": 0.8, "depth_usd": 2.0e7,
             "haircut": 0.05, "spot_vol_beta": 1.0},
            {"symbol": "ETH", "price": 3000.0, "vol": 1.0, "drift": 0.1, "depth_usd": 1.0e7},
        ],
    },
    "liquidity": {"impact": "sqrt", "half_life_steps": 2},
    "venue": {"preset": "binance-usdm", "liquidation": "partial", "target": 1.5,
              "insurance_fund_usd": 1.0e6, "adl": True, "max_cascade_rounds": 10},
    "behaviour": {"margin_call_ratio": 1.5, "answer_probability": 0.5, "action": "top_up"},
    "shocks": [
        {"kind": "gap", "step": 1, "asset": "BTC", "size": -0.1},
        {"kind": "vol", "step": 2, "asset": "*", "size": 2.0, "duration_steps": 2},
        {"kind": "correlation", "step": 3, "asset": "*", "size": 0.9, "duration_steps": 1},
        {"kind": "liquidity", "step": 1, "asset": "ETH", "size": 0.5, "duration_steps": 3},
    ],
    "accounts": [
        {"id": "cross-1", "collateral": {"USD": 10000.0, "BTC": 0.5},
         "positions": [{"symbol": "BTC", "qty": 1.0, "entry": 60000.0},
                       {"symbol": "ETH", "type": "inverse", "qty": 5000.0, "entry": 2900.0},
                       {"symbol": "BTC", "type": "put", "qty": -2.0, "strike": 55000.0,
                        "expiry_days": 7, "iv": 0.7}]},
        {"id": "iso-1", "margin_mode": "isolated", "collateral": {"USD": 5000.0},
         "positions": [{"symbol": "ETH", "qty": 10.0}]},
    ],
    "accounts_file": {"path": "accounts.csv"},
    "population": {"count": 20, "seed": 2, "long_share": 0.6,
                   "leverage": {"dist": "lognormal", "median": 5.0, "sigma": 0.5,
                                "min": 1.0, "max": 50.0},
                   "notional_usd": {"dist": "pareto", "scale": 1000.0, "alpha": 1.5},
                   "margin_modes": {"cross": 0.5, "isolated": 0.5}, "max_positions": 2,
                   "collateral": {"USD": 0.8, "BTC": 0.2}, "id_prefix": "p-",
                   "options": {"share": 0.2}},
}

# --------------------------------------------------------------------------- TOML writing


def dumps(document: dict[str, Any]) -> str:
    """The document as TOML, non-ASCII names and strings kept as they are."""
    return toml_dumps(document, ensure_ascii=False)


# --------------------------------------------------------------------------- strategies

SPECIAL = [math.nan, math.inf, -math.inf, 0, -1, 1, 0.0, -0.0, 0.5, -0.5, 1.5, 1e-300,
           -1e-300, 1e300, -1e300, 1.7976931348623157e308, 2**63, -(2**63), 10**30, 100,
           1_000_000, 10_000_001, "", " ", "BTC", "ETH", "USD", "*", "cross", "isolated",
           "call", "put", "inverse", "gbm", "lending", "aave-v3", "accounts.csv", ".",
           "/", "nope.csv", "x" * 300, True, False, [], {}, [[]], [1.0], [[1.0, 0.5]],
           {"USD": 1.0}, [{"symbol": "BTC"}], {"dist": "fixed"}]

scalars = st.one_of(
    st.sampled_from(SPECIAL),
    st.integers(min_value=-10_000, max_value=10_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
    st.booleans(),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=3)), max_leaves=6)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path (tuples of keys and indices) in a document."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for k, v in items:
        out.append((*prefix, k))
        if isinstance(v, dict | list):
            out.extend(_paths(v, (*prefix, k)))
    return out


def _mutate(document: dict, path: tuple, action: str, value: Any, extra_key: str) -> None:
    node: Any = document
    for part in path[:-1]:
        node = node[part]
    last = path[-1]
    target = node[last]
    if action == "drop":
        del node[last]
    elif action == "replace":
        node[last] = value
    elif action == "wrap":  # wrong nesting
        node[last] = [target] if not isinstance(target, list) else {"x": target}
    elif action == "unwrap":
        if isinstance(target, list) and target:
            node[last] = target[0]
        elif isinstance(target, dict) and target:
            node[last] = next(iter(target.values()))
        else:
            node[last] = value
    elif isinstance(target, dict):  # extra key inside a table
        target[extra_key] = value
    else:
        document[extra_key] = value


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict:
    document = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(document)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["drop", "replace", "replace", "replace", "wrap",
                                       "unwrap", "extra"]))
        _mutate(document, path, action, copy.deepcopy(draw(values)),
                draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)))
    return document


# --------------------------------------------------------------------------- tests

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """One folder for the module (hypothesis runs many examples per test function, so a
    function-scoped tmp_path would be shared between them anyway); pytest removes it."""
    path = tmp_path_factory.mktemp("fuzz")
    (path / "accounts.csv").write_text(ACCOUNTS_CSV, encoding="utf-8")
    return path


def _load(folder: Path, text: str | bytes) -> Scenario | MarginsimError:
    path = folder / "scenario.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    try:
        return load_scenario(path)
    except MarginsimError as exc:
        assert str(exc), "an error without a message"
        assert "\n" not in str(exc), str(exc)
        return exc


def _validate(folder: Path, text: str) -> tuple[int, str]:
    path = folder / "validate.toml"
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(["validate", str(path)])
    return status, err.getvalue()


def test_the_base_document_is_valid(folder):
    sc = _load(folder, dumps(BASE))
    assert isinstance(sc, Scenario), sc
    assert len(sc.all_accounts) == 4 and sc.population.count == 20
    assert _validate(folder, dumps(BASE)) == (0, "")


@FUZZ
@given(mutated_documents())
def test_mutated_documents_load_or_raise_marginsim_error(folder, document):
    _load(folder, dumps(document))


@settings(FUZZ, max_examples=60)
@given(mutated_documents())
def test_validate_exits_0_or_2_with_at_most_one_line(folder, document):
    status, err = _validate(folder, dumps(document))
    assert status in (0, 2)
    assert err.count("\n") <= 1 and "Traceback" not in err, err
    assert (status == 2) == bool(err), err


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(folder, data):
    _load(folder, data)


@FUZZ
@given(st.integers(min_value=0, max_value=10_000), st.text(max_size=4),
       st.integers(min_value=0, max_value=3))
def test_damaged_toml_text(folder, position, insert, cut):
    text = dumps(BASE)
    position %= len(text)
    _load(folder, text[:position] + insert + text[position + cut:])
