"""The replay's event and correction buffers: their first size changes nothing but memory.

:func:`simulator.margin.replay` starts with buffers of ``initial_events`` /
``initial_corrections`` rows, grows them when they fill (re-running the unfinished path)
and hands back views of a buffer that fits the rows, or compact copies of an oversized
one. Whatever the first sizes, every output must be the same bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator import load_scenario, prepare
from simulator.margin import replay
from simulator.margin.engine import VIEW_SLACK
from simulator.paths import generate_paths

FIELDS = ("path_f", "path_i", "min_price", "final_price", "ev_i", "ev_f", "ev_adl",
          "acct_liquidated", "acct_bankrupt", "corr_path", "corr_account", "corr_delta")


@pytest.fixture(scope="module")
def flagship():
    scenario = load_scenario("two-asset-crash", ["population.count=300"])
    prep = prepare(scenario)
    exo = generate_paths(prep.inputs, 24, np.random.default_rng(11))
    depth = np.array(prep.inputs.depth_usd, dtype=float)
    return prep, exo, depth


def _replay(flagship, **sizes):
    prep, exo, depth = flagship
    return replay(exo, depth, prep.book, prep.rules, index=prep.index, rng_key=5, **sizes)


def _assert_same(a, b):
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_first_buffer_sizes_change_no_output(flagship):
    small = _replay(flagship, initial_events=16, initial_corrections=16)  # grows often
    n_ev, n_corr = small.ev_i.shape[0], small.corr_delta.shape[0]
    assert n_ev > 200 and n_corr > 50  # the book liquidates: the buffers grew
    for sizes in ({"initial_events": n_ev, "initial_corrections": n_corr},  # exact
                  {"initial_events": n_ev + 1, "initial_corrections": 17},
                  {"initial_events": 50 * n_ev, "initial_corrections": 50 * n_corr}):
        _assert_same(small, _replay(flagship, **sizes))


def test_results_view_a_buffer_that_fits_and_copy_an_oversized_one(flagship):
    exact = _replay(flagship, initial_events=4096, initial_corrections=4096)
    n_ev = exact.ev_i.shape[0]
    fits = _replay(flagship, initial_events=n_ev + 10)
    assert fits.ev_i.base is not None and fits.ev_i.base.shape[0] == n_ev + 10
    assert fits.ev_i.flags.c_contiguous and fits.ev_f.flags.c_contiguous
    big = _replay(flagship, initial_events=int(3 * VIEW_SLACK * n_ev) + 100)
    for name in ("ev_i", "ev_f", "ev_adl"):  # a compact copy: nothing keeps the buffer
        assert getattr(big, name).base is None, name
    _assert_same(fits, big)


def test_a_chunk_starts_from_the_rows_of_the_last_chunk(monkeypatch):
    from simulator.execution import chunk

    monkeypatch.setattr(chunk, "_ROWS_PER_PATH", {})
    assert chunk._expected_rows("a", 1000) == (4096, 4096)  # none yet
    chunk._ROWS_PER_PATH["a"] = (450.0, 20.0)
    assert chunk._expected_rows("a", 1000) == (int(1.1 * 450.0 * 1000) + 64,
                                               int(1.1 * 20.0 * 1000) + 64)
    assert chunk._expected_rows("b", 1000) == (4096, 4096)  # another scenario


def test_kept_buffers_change_no_output_and_are_reused(flagship):
    """Buffers kept between calls (:class:`RowBuffers`): the same outputs as fresh ones,
    whether they start too small (they grow and keep the grown buffer), fit, or come from a
    call on other paths; the next call writes into the same memory."""
    from simulator.margin.buffers import RowBuffers

    prep, exo, depth = flagship
    fresh = _replay(flagship)
    buffers = RowBuffers()
    first = _replay(flagship, initial_events=16, initial_corrections=16, buffers=buffers)
    _assert_same(fresh, first)
    held = buffers.nbytes()
    assert held >= first.ev_i.nbytes + first.ev_f.nbytes + first.corr_delta.nbytes
    # another chunk's paths (fewer rows) into the kept buffers, then the first again
    other = replay(exo[:7], depth, prep.book, prep.rules, index=prep.index, rng_key=9,
                   initial_events=16, initial_corrections=16, buffers=buffers)
    other_fresh = replay(exo[:7], depth, prep.book, prep.rules, index=prep.index, rng_key=9)
    assert np.shares_memory(other.ev_f, first.ev_f)  # the same memory, written again
    assert buffers.nbytes() == held  # nothing new was allocated
    _assert_same(other_fresh, other)
    again = _replay(flagship, initial_events=16, initial_corrections=16, buffers=buffers)
    _assert_same(fresh, again)


def test_row_buffers_grow_and_keep_the_largest():
    from simulator.margin.buffers import RowBuffers

    buffers = RowBuffers()
    a = buffers.take("x", 10, (3,), np.int64)
    assert a.shape == (10, 3) and a.dtype == np.int64
    b = buffers.take("x", 4, (3,), np.int64)
    assert b is a  # large enough: kept, every row of it
    c = buffers.take("x", 11, (3,), np.int64)
    assert c.shape == (11, 3) and not np.shares_memory(a, c)
    assert buffers.take("x", 2, (3,), np.int64) is c
    d = buffers.take("x", 2, (), np.float64)  # another shape or dtype: a new buffer
    assert d.shape == (11,) or d.shape == (2,)
    assert d.dtype == np.float64 and d.ndim == 1
    assert buffers.nbytes() == d.nbytes
    buffers.clear()
    assert buffers.nbytes() == 0
