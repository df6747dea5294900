"""Margin engine, Python layer: prepare the book, its liquidation index and the venue
rules, run the replay kernel, and give account PnL back in blocks.

The rules are specified in ``docs/engine.md``. :func:`replay` returns raw arrays; the
runner turns them into Parquet tables and per-account estimates.
"""

from __future__ import annotations

import numpy as np

from simulator.book.build import Book
from simulator.margin import codes, records
from simulator.margin._kernels.replay import replay_nb
from simulator.margin.adl_figures import account_adl_counts, path_adl_figures
from simulator.margin.buffers import RowBuffers
from simulator.margin.index import BookIndex
from simulator.margin.option_setup import option_context
from simulator.margin.result import ReplayResult
from simulator.margin.rules import EngineRules, bracket_table
from simulator.margin.slack_form import (
    account_nav_coefficients,
    position_brackets,
    position_notional,
    unit_nav_coefficients,
)

__all__ = ["BookIndex", "EngineRules", "ReplayResult", "RowBuffers", "account_nav_coefficients",
           "bracket_table", "position_brackets", "position_notional", "replay",
           "unit_nav_coefficients"]


def replay(exo: np.ndarray, depth_usd: np.ndarray, book: Book, rules: EngineRules,
           initial_events: int = 4096, save_marks: int = 0,
           index: BookIndex | None = None, rng_key: int = 0,
           path_weight: np.ndarray | None = None,
           bridge: np.ndarray | None = None,
           oracle: np.ndarray | None = None,
           oracle_noise: np.ndarray | None = None,
           initial_corrections: int | None = None,
           buffers: RowBuffers | None = None) -> ReplayResult:
    """Replay every path of ``exo`` over ``book``.

    Parameters
    ----------
    exo : ndarray, shape (n, steps + 1, A)
        Exogenous prices; ``exo[:, 0]`` are the initial prices, the same on every path.
    depth_usd : ndarray, shape (steps + 1, A)
        Depth per step, USD, positive (inf: no impact).
    book : Book
    rules : EngineRules
    initial_events : int
        Initial size of the event buffers (and of the correction buffers, unless
        ``initial_corrections`` is given). A full buffer grows to what the paths so far
        need per path times the paths left (with a 25% margin, and at least doubling),
        keeping its rows. The results view a buffer that is at most
        :data:`VIEW_SLACK` times its rows, else hold a compact copy of them: a caller
        that knows how many rows to expect (the runner, from the chunks before) saves
        the copy and its memory.
    save_marks : int
        Keep the closing mark of every step for the first ``save_marks`` paths.
    index : BookIndex, optional
        Precomputed with :meth:`BookIndex.build` at ``exo[0, 0]``.
    rng_key : int
        Key of the counter-based draws (whether a called account answers), in
        ``[0, 2**63)``; the runner derives one per chunk from its seed.
    path_weight : ndarray, shape (n,), optional
        The paths' likelihood ratios (importance sampling); the result's ``acct_weighted``
        sums them per account over the paths on which it was liquidated / bankrupt.
    bridge : ndarray, shape (n, steps + 1, A, 2), optional
        ``simulation.intrastep = "bridge"``: the lowest (``[..., 0]``) and highest
        (``[..., 1]``) exogenous price inside each step ``t >= 1``
        (:func:`simulator.paths.bridge_extremes`). Each step is then swept at them before its
        close (``docs/engine.md``, "Between the steps").
    oracle : ndarray, shape (n, steps + 1, A), optional
        The oracle's index of every asset (:func:`simulator.paths.oracle.oracle_index`),
        for the assets ``rules`` value at it and for premium funding
        (``docs/engine.md``, "Oracle, index and mark"). None: the exogenous price when
        ``rules`` value some asset at the index, else nothing (every price the book's).
        Not given when ``rules.oracle_reads_book`` (a lending venue's oracle: the replay
        publishes it from the venue's book).
    oracle_noise : ndarray, shape (n, steps + 1, A), optional
        With ``rules.oracle_reads_book``: the noise factors of the oracle's readings
        (:func:`simulator.paths.oracle.noise_factors`); None: none.
    initial_corrections : int, optional
        Initial size of the PnL correction buffers (``initial_events`` when not given).
    buffers : RowBuffers, optional
        Event and correction buffers kept from the call before
        (:mod:`simulator.margin.buffers`): the result's event and correction arrays are
        then views of them, valid until the next call given the same buffers. None: fresh
        buffers.

    Returns
    -------
    ReplayResult
    """
    exo = np.ascontiguousarray(exo, dtype=float)
    n_paths, _, n_assets = exo.shape
    steps = exo.shape[1] - 1
    if index is None:
        s0 = exo[0, 0] if n_paths else np.ones(n_assets)
        index = BookIndex.build(book, rules, s0, steps)
    opt_data = index.options
    if index.steps != steps or opt_data is None:
        if book.has_options:
            raise ValueError(f"the index was built for {index.steps} steps; the paths have "
                             f"{steps}")
        opt_data = option_context(book, rules.options, steps, exo[0, 0] if n_paths else
                                  np.ones(n_assets))
    if path_weight is not None and np.shape(path_weight) != (n_paths,):
        raise ValueError(f"path_weight must have shape ({n_paths},)")
    if bridge is not None and np.shape(bridge) != (*exo.shape, 2):
        raise ValueError(f"bridge must have shape {(*exo.shape, 2)}")
    if bridge is not None and rules.breaker:
        raise ValueError("a circuit breaker is not defined with the intrastep bridge")
    if rules.oracle_reads_book:
        if oracle is not None:
            raise ValueError("a lending venue's oracle reads its book: the replay publishes "
                             "the index (pass oracle_noise, not oracle)")
        oracle = np.empty_like(exo)  # written by the replay
    elif oracle is None and rules.priced_by_oracle:
        oracle = exo  # the exact oracle: the index is the exogenous price
    for name, arr in (("oracle", oracle), ("oracle_noise", oracle_noise)):
        if arr is not None and np.shape(arr) != exo.shape:
            raise ValueError(f"{name} must have shape {exo.shape}")
    depth = np.ascontiguousarray(depth_usd, dtype=float)
    if not (depth > 0.0).all():  # the impact law divides by it (prepare_path_inputs keeps it)
        raise ValueError("depth_usd must be positive (inf: no impact) at every step")
    prices, book_arrays, index_arrays, rule_arrays, option_arrays = records.kernel_inputs(
        exo, depth, book, index, rules, opt_data, rng_key, bridge, oracle,
        None if not rules.oracle_reads_book else oracle_noise)
    out = records.outputs(n_paths, steps, n_assets, book.n_accounts, save_marks,
                          max(16, int(initial_events)), path_weight,
                          None if initial_corrections is None
                          else max(16, int(initial_corrections)), buffers)
    n_ev = n_corr = first = 0
    while True:
        # fresh scratch for every call (a call that stops at a full buffer leaves its
        # unfinished path's units as they were), freed when the call returns, before a
        # buffer grows
        n_ev, n_corr, done, overflow = replay_nb(
            prices, book_arrays, index_arrays, rule_arrays, option_arrays, out,
            *records.scratch(book_arrays, index_arrays, book.n_accounts), first, n_ev, n_corr)
        if done >= n_paths:
            break
        # a buffer filled up at path ``done``: grow it to what the paths so far need per path
        # (at least doubling, so the calls stay O(log rows)); the rows written are kept
        grown = RowBuffers() if buffers is None else buffers
        if overflow & codes.OVERFLOW_EVENTS:
            cap = _grown_capacity(out.ev_i.shape[0], n_ev, done, n_paths)
            out = out._replace(**{name: _grow(getattr(out, name), n_ev, cap, grown, name)
                                  for name in ("ev_i", "ev_f", "ev_adl")})
        if overflow & codes.OVERFLOW_CORRECTIONS:
            cap = _grown_capacity(out.corr_i.shape[0], n_corr, done, n_paths)
            out = out._replace(**{name: _grow(getattr(out, name), n_corr, cap, grown, name)
                                  for name in ("corr_i", "corr_f")})
        del grown  # (fresh ones: held by ``out`` alone)
        first = done
    # the rows written: views of a buffer that fits them, else compact copies (a view
    # would keep an oversized buffer alive with the results: the peak memory of a long
    # run grew by 4% with them), each made once the buffer before it is released
    rows = {}
    for name, n_rows in (("ev_i", n_ev), ("ev_f", n_ev), ("ev_adl", n_ev),
                         ("corr_i", n_corr), ("corr_f", n_corr)):
        buffer = getattr(out, name)
        rows[name] = buffer[:n_rows] if buffers is not None else _rows(buffer, n_rows)
        out = out._replace(**{name: None})
    ev_i, ev_f, ev_adl, corr_i, corr_f = rows.values()
    del rows, buffer
    # the rows the kernel left, column by column (a boolean index of whole rows is 2-3x
    # slower)
    not_adl = ev_i[:, codes.EI_KIND] != codes.KIND_ADL
    for k in range(ev_adl.shape[1]):
        ev_adl[:, k][not_adl] = np.nan
    del not_adl
    # the ADL figures from every fill of every path (whatever events/ keeps)
    acct_adl, acct_adl_w = account_adl_counts(ev_i, book.unit_account, book.n_accounts,
                                              path_weight)
    return ReplayResult(out.path_f, out.path_i, out.min_price, out.final_price, out.marks,
                        ev_i, ev_f, out.acct_liq, out.acct_bank, corr_i[:, 0].copy(),
                        corr_i[:, 1].copy(), corr_f, out.acct_w,
                        ev_adl, path_adl_figures(ev_i, ev_f, ev_adl,
                                                 out.path_f[:, codes.PF_ADL_NOTIONAL]),
                        acct_adl, acct_adl_w)


#: a grown buffer holds this much more than the paths so far need per path
GROWTH_SLACK = 1.25
#: the results view a buffer of at most this many times their rows (else copy them)
VIEW_SLACK = 1.25


def _rows(buffer: np.ndarray, n_rows: int) -> np.ndarray:
    """The first ``n_rows`` rows of ``buffer``: a view when the buffer holds at most
    :data:`VIEW_SLACK` times as many (and 64 more), else a compact copy."""
    if buffer.shape[0] <= VIEW_SLACK * n_rows + 64:
        return buffer[:n_rows]
    return buffer[:n_rows].copy()


def _grown_capacity(capacity: int, n_rows: int, n_done: int, n_paths: int) -> int:
    """Rows a buffer of ``capacity`` rows grows to when it is full after ``n_done`` of
    ``n_paths`` paths wrote ``n_rows``: the rate so far over all paths, with a margin, and
    at least twice the capacity."""
    if n_done <= 0:
        return 2 * capacity
    projected = n_rows + GROWTH_SLACK * n_rows / n_done * (n_paths - n_done)
    return max(2 * capacity, int(projected) + 16)


def _grow(buffer: np.ndarray, n_rows: int, capacity: int, buffers: RowBuffers, name: str
          ) -> np.ndarray:
    """A buffer of at least ``capacity`` rows (``buffers``' ``name``) holding the first
    ``n_rows`` rows of ``buffer``."""
    out = buffers.take(name, capacity, buffer.shape[1:], buffer.dtype)
    out[:n_rows] = buffer[:n_rows]
    return out
