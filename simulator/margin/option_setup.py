"""Options in the margin engine, Python layer: the option data the kernels take (``oc``),
the implied-vol multipliers of a scenario's ``vol`` shocks, and each account's greeks.

The rules are specified in ``docs/engine.md`` ("Options"); the kernels are in
``_option_kernels.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator._kernels.black_scholes import bs_greeks_nb
from simulator.book.build import Book
from simulator.margin import codes
from simulator.options.margin import (
    DEFAULT_EXTENDED_MOVES,
    DEFAULT_EXTENDED_WEIGHT,
    DEFAULT_N_BUCKETS,
    DEFAULT_VOL_DOWN,
    DEFAULT_VOL_UP,
)

#: longest window of steps an option unit's box may cover (the boxes halve it as needed)
MAX_WINDOW_STEPS = 1_000_000_000


@dataclass(frozen=True)
class OptionRules:
    """The venue's option rules and the market's implied-vol dynamics.

    Attributes
    ----------
    rule : str
        ``standard`` or ``risk_matrix`` (``Venue.option_margin``).
    fee_rate : float
        Liquidation fee on a closed option's underlying notional, capped at its value.
    range_pct : float
        Largest price move of the risk matrix.
    spot_vol_beta : ndarray, shape (A,)
        Per asset: ``iv = iv0 (M / S0) ** -beta x multiplier``.
    step_years : float or None
        Length of a step in years (needed when the book holds options).
    iv_multiplier : ndarray, shape (steps + 1, A), optional
        Multiplier of every implied vol at each step (the ``vol`` shocks); ones if left out.
    """

    rule: str = "standard"
    fee_rate: float = 0.002
    range_pct: float = 0.16
    spot_vol_beta: np.ndarray | None = None
    step_years: float | None = None
    iv_multiplier: np.ndarray | None = None


def next_change(ivmult: np.ndarray) -> np.ndarray:
    """``ivnext[t, a]``: the first step after ``t`` at which asset ``a``'s multiplier
    differs from its value at ``t`` (``steps + 1`` if none)."""
    n_rows, n_assets = ivmult.shape
    out = np.empty((n_rows, n_assets), dtype=np.int64)
    t = np.arange(n_rows)
    for a in range(n_assets):
        changes = np.flatnonzero(np.diff(ivmult[:, a]) != 0) + 1  # steps where it changes
        k = np.searchsorted(changes, t, side="right")
        out[:, a] = np.where(k < len(changes), changes[np.minimum(k, len(changes) - 1)]
                             if len(changes) else n_rows, n_rows)
    return out


@dataclass(frozen=True)
class OptionData:
    """The options of a book, ready for the kernels.

    Attributes
    ----------
    oc : tuple
        ``(pos_opt, asset_opt, ivmult, ivnext, unit_opt, opt_par)`` (members named by
        ``codes.OC_*``; see ``_option_kernels.py``).
    set_pos, set_start : ndarray of int64
        Options expiring at step ``t``: ``set_pos[set_start[t]:set_start[t + 1]]``.
    opt_units : ndarray of int64
        The units that hold options.
    """

    oc: tuple
    set_pos: np.ndarray
    set_start: np.ndarray
    opt_units: np.ndarray


def option_context(book: Book, options: OptionRules, steps: int, s0: np.ndarray
                   ) -> OptionData:
    """The option data of ``book`` for paths of ``steps`` steps from prices ``s0``; a book
    without options gets empty, valid arrays.

    Raises
    ------
    ValueError
        If the book holds options and the step length or the multipliers do not fit.
    """
    n_assets = len(s0)
    is_option = book.pos_kind >= codes.POS_CALL
    step_years = options.step_years
    if is_option.any() and not (step_years and step_years > 0):
        raise ValueError("a book with options needs the length of a step (step_years)")
    step_years = float(step_years or 1.0)
    ivmult = (np.ones((steps + 1, n_assets))
              if options.iv_multiplier is None or not is_option.any()
              else np.ascontiguousarray(options.iv_multiplier, dtype=float))
    if ivmult.shape != (steps + 1, n_assets):
        raise ValueError(f"iv_multiplier has shape {ivmult.shape}; expected "
                         f"{(steps + 1, n_assets)}")
    beta = (np.zeros(n_assets) if options.spot_vol_beta is None
            else np.asarray(options.spot_vol_beta, dtype=float))
    unit_opt = np.zeros(book.n_units, dtype=np.bool_)
    unit_opt[book.pos_unit[is_option & (book.pos_qty != 0.0)]] = True
    par = np.zeros(codes.N_PAR)
    par[codes.OP_RULE] = codes.OPTION_RULE_NAMES.index(options.rule)
    par[codes.OP_STEP_YEARS] = step_years
    par[codes.OP_FEE_RATE] = options.fee_rate
    par[codes.OP_RANGE] = options.range_pct
    par[codes.OP_N_BUCKETS] = DEFAULT_N_BUCKETS
    par[codes.OP_VOL_UP] = DEFAULT_VOL_UP
    par[codes.OP_VOL_DOWN] = DEFAULT_VOL_DOWN
    par[codes.OP_EXT_WEIGHT] = DEFAULT_EXTENDED_WEIGHT
    par[codes.OP_MAX_WINDOW] = MAX_WINDOW_STEPS
    par[codes.N_OP:] = DEFAULT_EXTENDED_MOVES
    # an option expires at the first step whose time is at or past its expiry
    settle = np.full(len(is_option), steps + 1, dtype=np.int64)
    opt = np.flatnonzero(is_option)
    settle[opt] = [max(1, math.ceil(tau / step_years - 1e-9))
                   for tau in book.pos_expiry_years[opt]]
    due = opt[settle[opt] <= steps]
    order = np.argsort(settle[due], kind="stable")
    set_pos = due[order].astype(np.int64)
    set_start = np.searchsorted(settle[set_pos], np.arange(steps + 2), side="left")
    pos_opt = np.ascontiguousarray(np.column_stack([book.pos_expiry_years, book.pos_iv]),
                                   dtype=float).reshape(len(is_option), 2)
    asset_opt = np.ascontiguousarray(np.column_stack([s0, beta]), dtype=float)
    oc = (pos_opt, asset_opt, ivmult, next_change(ivmult), unit_opt, par)
    return OptionData(oc, set_pos, set_start.astype(np.int64),
                      np.flatnonzero(unit_opt).astype(np.int64))


def account_greeks_usd(book: Book, s0: np.ndarray) -> dict[str, np.ndarray]:
    """Greeks of every account at the start, in USD (``position_greeks_usd``'s units).

    ``delta_usd``: the USD change of the account's value per 1 (100%) relative move of
    every asset, taken one by one and summed: coins held and perpetuals count their
    notional (an inverse contract ``qty M / entry``), options ``qty delta M``.
    ``gamma_usd``: the second-order USD PnL of a 1% move, ``0.5 qty gamma (0.01 M)**2``.
    ``vega_usd``: USD per vol point (0.01), ``qty vega x 0.01``. Collateral counts
    without haircut (the account's value, not its margin).
    """
    n = book.n_accounts
    acct_of_pos = book.unit_account[book.pos_unit]
    delta = np.zeros(n)
    gamma = np.zeros(n)
    vega = np.zeros(n)
    coll_usd = book.unit_coll * s0
    np.add.at(delta, book.unit_account, coll_usd.sum(axis=1))
    mark = s0[book.pos_asset]
    kind = book.pos_kind
    linear = kind == codes.POS_LINEAR
    inverse = kind == codes.POS_INVERSE
    np.add.at(delta, acct_of_pos[linear], book.pos_qty[linear] * mark[linear])
    np.add.at(delta, acct_of_pos[inverse],
              book.pos_qty[inverse] * mark[inverse] / book.pos_entry[inverse])
    for p in np.flatnonzero(kind >= codes.POS_CALL):
        _, d, g, v = bs_greeks_nb(kind[p] == codes.POS_CALL, mark[p], book.pos_entry[p],
                                  book.pos_expiry_years[p], book.pos_iv[p])
        q, acc = book.pos_qty[p], acct_of_pos[p]
        delta[acc] += q * d * mark[p]
        gamma[acc] += 0.5 * q * g * (0.01 * mark[p]) ** 2
        vega[acc] += q * v * 0.01
    return {"delta_usd": delta, "gamma_usd": gamma, "vega_usd": vega}


def no_options(n_units: int, n_pos: int, n_assets: int, steps: int = 0) -> tuple:
    """A valid ``oc`` for a book without options (for calling the kernels directly)."""
    par = np.zeros(codes.N_PAR)
    par[codes.OP_STEP_YEARS] = 1.0
    par[codes.N_OP:] = DEFAULT_EXTENDED_MOVES
    return (np.zeros((n_pos, 2)), np.column_stack([np.ones(n_assets), np.zeros(n_assets)]),
            np.ones((steps + 1, n_assets)), np.full((steps + 1, n_assets), steps + 1,
                                                    dtype=np.int64),
            np.zeros(n_units, dtype=np.bool_), par)
