"""A perpetual-only book compiles no option code, and a venue without lending no lending
code (issue #17: compile only what a scenario uses).

The replay kernel reaches the Black-Scholes kernels and the lending plan only through
leaf kernels that take ``OptionArrays.oc_or_none`` or ``RuleArrays.lending_on``: None for
a book or venue without them, and Numba then prunes the branch before typing it. Each
test compiles a fresh, uncached copy of a leaf for the types a perpetual-only book hands
it and looks for the other kind's kernels in its LLVM IR; the same leaf given the option
tuple (or the lending switch) must reference them, so the check can fail.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from simulator import load_scenario, prepare
from simulator.margin import records
from simulator.margin._kernels.options import close_option_nb, option_event_prices_nb
from simulator.margin._kernels.round import round_flow_nb, round_fractions_nb
from simulator.margin._kernels.state import end_path_nb
from simulator.paths import generate_paths

BLACK_SCHOLES = "black_scholes"  # in the mangled name of every Black-Scholes kernel
LENDING = "lending_plan_nb"


@pytest.fixture(scope="module")
def perp_records():
    """The kernel records of a small perpetual-only book (the flagship's population)."""
    scenario = load_scenario("two-asset-crash", ["simulation.paths=2", "population.count=40"])
    prepared = prepare(scenario)
    assert prepared.book.n_units > 0
    exo = generate_paths(prepared.inputs, 2, np.random.default_rng(3))
    depth = np.array(prepared.inputs.depth_usd, dtype=float)
    prices, book, index, rules, options = records.kernel_inputs(
        exo, depth, prepared.book, prepared.index, prepared.rules, prepared.index.options, 1)
    assert options.oc_or_none is None and rules.lending_on is None  # a perpetual venue
    out = records.outputs(2, exo.shape[1] - 1, exo.shape[2], prepared.book.n_accounts, 0, 16)
    state, heaps, lists, assets, rnd = records.scratch(book, index, prepared.book.n_accounts)
    return {"book": book, "index": index, "rules": rules, "options": options, "out": out,
            "state": state, "lists": lists, "assets": assets, "rnd": rnd}


def _llvm(kernel, *args) -> str:
    """The LLVM IR of a fresh, uncached copy of ``kernel`` compiled for ``args``' types."""
    fresh = numba.njit(kernel.py_func)
    signature = tuple(numba.typeof(arg) for arg in args)
    fresh.compile(signature)
    return fresh.inspect_llvm(signature)


def _round_flow_args(r, lending_on, oc):
    book, state, assets, rnd = r["book"], r["state"], r["assets"], r["rnd"]
    return (r["lists"].liq, 0, lending_on, rnd.kind, rnd.frac, rnd.plan_g, rnd.plan_k,
            assets.mark, state.coll, state.qty, book.pos_asset, book.pos_entry, book.pos_kind,
            book.unit_pos_start, assets.flow, 1, oc)


def _round_fractions_args(r, lending_on, oc):
    book, state, assets, rnd, rules = r["book"], r["state"], r["assets"], r["rnd"], r["rules"]
    return (r["lists"].liq, 0, lending_on, 0, rules.fparams, assets.mark, state.usd,
            state.coll, state.qty, book.pos_asset, book.pos_entry, book.pos_kind,
            book.unit_pos_start, rules.haircut, rules.tiers, rnd.kind, rnd.frac, rnd.plan_g,
            rnd.plan_k, rnd.plan_r, rnd.plan_s, rnd.plan_c, 1, oc)


def _end_path_args(r, oc):
    book, index, state, lists, out = r["book"], r["index"], r["state"], r["lists"], r["out"]
    return (0, r["assets"].mark, state.usd, state.coll, state.qty, book.pos_asset,
            book.pos_entry, book.pos_kind, book.unit_pos_start, book.unit_account, index.navk,
            index.navc, state.deposit, lists.touched, 0, state.flag, out.corr_i, out.corr_f, 0,
            out.acct_liq, out.acct_bank, out.path_w[0], out.acct_w, lists.stamp_liq,
            lists.stamp_bank, 288, oc, r["assets"].ivfac)


def _close_option_args(r, oc):
    book = r["book"]
    return (0, 0, 1.0, 100.0, 1, oc, r["state"].usd, book.pos_asset, book.pos_entry,
            book.pos_kind)


def _event_prices_args(oc):
    return (0, 0, 3, 100.0, 99.0, 90.0, 1, oc)


@pytest.mark.parametrize("case", ["round_flow", "end_path", "close_option", "event_prices"])
def test_a_book_without_options_compiles_no_black_scholes(perp_records, case):
    r = perp_records
    oc = r["options"].oc  # the option tuple (empty for this book): what the leaf got before
    kernel, without, with_options = {
        "round_flow": (round_flow_nb, _round_flow_args(r, None, None),
                       _round_flow_args(r, None, oc)),
        "end_path": (end_path_nb, _end_path_args(r, None), _end_path_args(r, oc)),
        "close_option": (close_option_nb, _close_option_args(r, None),
                         _close_option_args(r, oc)),
        "event_prices": (option_event_prices_nb, _event_prices_args(None),
                         _event_prices_args(oc)),
    }[case]
    assert BLACK_SCHOLES not in _llvm(kernel, *without)
    assert BLACK_SCHOLES in _llvm(kernel, *with_options)


@pytest.mark.parametrize("kernel, args", [(round_fractions_nb, _round_fractions_args),
                                          (round_flow_nb, _round_flow_args)])
def test_a_venue_without_lending_compiles_no_lending_plan(perp_records, kernel, args):
    lending_ir = _llvm(kernel, *args(perp_records, True, None))
    name = LENDING if kernel is round_fractions_nb else "lending_flow_nb"
    assert name in lending_ir
    assert name not in _llvm(kernel, *args(perp_records, None, None))


def test_option_leaves_given_none_leave_perpetual_values_alone(perp_records):
    """What the pruned leaves return (they are never reached on such a book, but a wrong
    constant would be silent)."""
    usd = perp_records["state"].usd.copy()
    args = list(_close_option_args(perp_records, None))
    args[6] = usd
    assert close_option_nb(*args) == (0.0, 0.0)
    np.testing.assert_array_equal(usd, perp_records["state"].usd)
    assert option_event_prices_nb(*_event_prices_args(None)) == (100.0, 99.0)
