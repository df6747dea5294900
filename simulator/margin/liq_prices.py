"""Liquidation prices at the start: per margin unit and asset, then per account.

The liquidation price of a margin unit ``u`` in asset ``a`` is a mark ``x`` of ``a``, every
other mark held at its start price, at which the unit's margin slack
``s_u(x) = E_u - MM_u`` (``docs/engine.md``, "Valuation": tiered brackets, collateral
haircuts, inverse perpetuals, options at Black-Scholes as at the start, lending debts) is 0:
the price at which it reaches maintenance (on a lending venue, a health factor of 1).

- Only roots inside the engine's price band ``[s0 * PRICE_FLOOR_RATIO, s0 *
  PRICE_CAP_RATIO]`` (:mod:`simulator.config.limits`: the engine clamps every mark to it)
  count; with none the price is NaN (null in ``accounts.parquet``), as it is for a unit
  not exposed to ``a`` (no position on ``a``, no collateral in it) or never liquidatable
  (not *live*: no open position, no debt).
- Of several roots (options, books long one asset and short through another position, a
  unit already below maintenance) the one nearest the start price in log distance
  ``|ln(x / s0)|`` is kept; of two at the same distance, the lower.
- A unit already below maintenance at the start gets the same: the root nearest the start,
  there the price at which it would be back at maintenance.
- An account's price is that of its one unit (cross), or, for an isolated account (one
  unit per position), the nearest to the start among its units exposed to ``a``: with USD
  collateral only, the unit of its position on ``a``.

Without options on ``a`` the slack is continuous and piecewise linear in ``x``: linear
between the prices where one of the unit's perpetuals on ``a`` changes bracket
(``x = cap_k / |qty|``). It is solved in closed form on each such segment with the
segment's brackets, ``x = -C / L``, and a root is kept only if it falls inside its own
segment (Binance's "if the liquidation price falls in another tier, recompute with that
tier"). With options on ``a`` the slack is evaluated by the engine's own function
(:func:`~simulator.margin._kernels.liq_prices.slack_at_nb`) on a grid of log-price
offsets, symmetric about the start, :data:`GRID_STEP` apart within ``+-GRID_INNER`` and
widening by :data:`GRID_GROWTH` per point beyond, to the price band. The grid is scanned
outward in rings (:data:`SCAN_RINGS`), both sides alike, until a ring shows a sign change;
the nearest sign change on each side (of those that can hold the nearest root) is refined
by the Illinois method with regular bisection steps until its ends are adjacent
floating-point numbers. Two roots inside one grid cell (a slack that dips below
maintenance and back within about 2% of the price) can be missed; a slack that touches 0
without crossing it is not a liquidation (the engine liquidates at ``E < MM``) and is not
looked for.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from simulator._kernels.bounds import PRICE_CAP_RATIO, PRICE_FLOOR_RATIO
from simulator.book.build import Book
from simulator.margin import codes
from simulator.margin._kernels.liq_prices import slack_at_nb
from simulator.margin.option_setup import option_context
from simulator.margin.rules import EngineRules
from simulator.margin.slack_form import slack_form

#: grid of the option units' scan, in log-price offsets from the start: steps of
#: ``GRID_STEP`` within ``+-GRID_INNER``, then each step ``GRID_GROWTH`` times the last
GRID_STEP = 0.02
GRID_INNER = 1.0
GRID_GROWTH = 1.15
#: a closed-form root this close (relative) outside its segment still belongs to it
SEGMENT_TOL = 1e-12
#: the scan of option units in rings of log distance from the start: a unit stops after
#: the ring in which its slack first changes sign
SCAN_RINGS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.5, 2.0, 3.0, 5.0, np.inf)
#: most refinement steps, and every how many steps one is a bisection (a double is
#: bisected to adjacent floats in about 60 steps; regula falsi takes a few)
MAX_REFINE_STEPS = 300
BISECT_EVERY = 4


def log_grid() -> np.ndarray:
    """Log-price offsets of the scan of option units: increasing, symmetric about 0 (which
    it holds), both ends at the log of the price band's ratios
    (:mod:`simulator.config.limits`, whose band is symmetric in log)."""
    hi = np.log(PRICE_CAP_RATIO)
    inner = GRID_STEP * np.arange(1, round(GRID_INNER / GRID_STEP) + 1)
    outer = GRID_INNER + np.cumsum(GRID_STEP * GRID_GROWTH ** np.arange(1, 200))
    half = np.concatenate([inner, outer[outer < hi], [hi]])
    return np.concatenate([-half[::-1], [0.0], half])


def _option_data(book: Book, rules: EngineRules, s0: np.ndarray) -> tuple:
    """The option tuple ``oc`` of the kernels, at step 0 (the start)."""
    opts = rules.options
    mult = None if opts.iv_multiplier is None else np.asarray(opts.iv_multiplier)[:1]
    opts = replace(opts, iv_multiplier=mult, step_years=opts.step_years or 1.0)
    return option_context(book, opts, 0, s0).oc


def exact_slack(book: Book, rules: EngineRules, s0: np.ndarray, unit: np.ndarray,
                asset: np.ndarray, price: np.ndarray, oc: tuple | None = None) -> np.ndarray:
    """The engine's ``E - MM`` of units at the start, one asset's mark moved.

    Parameters
    ----------
    book : Book
    rules : EngineRules
    s0 : ndarray, shape (A,)
        Start prices, USD.
    unit, asset : array_like of int, shape (n,)
    price : array_like of float, shape (n,)
        Mark of ``asset[i]`` for unit ``unit[i]``, USD; the other marks at ``s0``.
    oc : tuple, optional
        The book's option data at step 0 (built when left out).

    Returns
    -------
    ndarray, shape (n,)
        Margin slack in USD.
    """
    s0 = np.ascontiguousarray(s0, dtype=float)
    oc = _option_data(book, rules, s0) if oc is None else oc
    unit = np.ascontiguousarray(unit, dtype=np.int64)
    out = np.empty(len(unit))
    slack_at_nb(unit, np.ascontiguousarray(asset, dtype=np.int64),
                np.ascontiguousarray(price, dtype=float), s0, book.unit_usd, book.unit_coll,
                book.pos_qty, book.pos_asset, book.pos_entry, book.pos_kind,
                book.unit_pos_start, rules.haircut, rules.tiers, oc, np.empty(len(s0)), out)
    return out


def _exposure(book: Book) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(live, exposed, with_options)``: live units (U,), units exposed to each asset
    (U, A), and units holding open options on it (U, A)."""
    open_ = book.pos_qty != 0.0
    pos_unit = book.pos_unit
    exposed = book.unit_coll != 0.0
    exposed[pos_unit[open_], book.pos_asset[open_]] = True
    opt = open_ & (book.pos_kind >= codes.POS_CALL)
    with_options = np.zeros_like(exposed)
    with_options[pos_unit[opt], book.pos_asset[opt]] = True
    live = (np.bincount(pos_unit[open_], minlength=book.n_units) > 0) | (book.unit_usd < 0.0)
    live |= np.any(book.unit_coll < 0.0, axis=1)
    return live, exposed, with_options


def _nearest(pair: np.ndarray, root: np.ndarray, start: np.ndarray, n_pairs: int
             ) -> np.ndarray:
    """Per pair, the candidate root nearest its start price in log distance (the lower of
    two equally near); NaN where a pair has none. ``start`` is per candidate."""
    out = np.full(n_pairs, np.nan)
    ok = np.isfinite(root)
    pair, root, start = pair[ok], root[ok], start[ok]
    if len(pair) == 0:
        return out
    dist = np.abs(np.log(root / start))
    order = np.lexsort((root, dist, pair))
    first = np.ones(len(order), dtype=bool)
    first[1:] = pair[order][1:] != pair[order][:-1]
    out[pair[order][first]] = root[order][first]
    return out


def _linear_roots(book: Book, rules: EngineRules, s0: np.ndarray, units: np.ndarray, a: int,
                  lin0: np.ndarray, const0: np.ndarray, k0: np.ndarray,
                  opt_part: np.ndarray) -> np.ndarray:
    """Liquidation prices in asset ``a`` of ``units`` (none holding options on ``a``), by
    the closed form on each bracket segment; NaN where there is none."""
    n = len(units)
    lo, hi = s0[a] * PRICE_FLOOR_RATIO, s0[a] * PRICE_CAP_RATIO
    slot = np.full(book.n_units, -1, dtype=np.int64)
    slot[units] = np.arange(n)
    # the unit's perpetuals on ``a`` that change bracket with the mark: open linear ones
    perp = ((book.pos_asset == a) & (book.pos_kind == codes.POS_LINEAR)
            & (book.pos_qty != 0.0))
    perp &= slot[book.pos_unit] >= 0
    p_idx = np.flatnonzero(perp)  # sorted by unit, as positions are
    p_slot = slot[book.pos_unit[p_idx]]
    size = np.abs(book.pos_qty[p_idx])
    caps = rules.tiers[a, :-1, codes.TIER_CAP]
    caps = np.unique(caps[np.isfinite(caps)])
    # segment ends: the band's ends and every bracket change inside it
    bp = (caps[None, :] / size[:, None]).ravel()
    bp_slot = np.repeat(p_slot, len(caps))
    inside = (bp > lo) & (bp < hi)
    ends = np.concatenate([bp[inside], np.full(n, lo), np.full(n, hi)])
    end_slot = np.concatenate([bp_slot[inside], np.arange(n), np.arange(n)])
    order = np.lexsort((ends, end_slot))
    ends, end_slot = ends[order], end_slot[order]
    seg = (end_slot[1:] == end_slot[:-1]) & (ends[1:] > ends[:-1])
    x_lo, x_hi, s_slot = ends[:-1][seg], ends[1:][seg], end_slot[:-1][seg]
    mid = np.sqrt(x_lo) * np.sqrt(x_hi)  # strictly inside: the segment's brackets
    # the slack on a segment: C + L x, from the form at the start with the brackets of the
    # unit's perpetuals on ``a`` changed to the segment's
    u = units[s_slot]
    others = s0.copy()
    others[a] = 0.0
    slope = lin0[u, a].copy()
    const = const0[u] + lin0[u] @ others + opt_part[u]
    # every (segment, perpetual of its unit on ``a``): the unit's perpetuals are
    # p_idx[first[slot]:first[slot + 1]]; the j-th of a segment's is first[slot] + j
    first = np.searchsorted(p_slot, np.arange(n + 1))
    count = np.diff(first)[s_slot]
    pair_seg = np.repeat(np.arange(len(s_slot)), count)
    rank = np.arange(len(pair_seg)) - np.repeat(np.cumsum(count) - count, count)
    pair_pos = p_idx[first[s_slot][pair_seg] + rank]
    notional = np.abs(book.pos_qty[pair_pos]) * mid[pair_seg]
    k = np.searchsorted(rules.tiers[a, :-1, codes.TIER_CAP], notional, side="left")
    k_start = k0[pair_pos]
    rate, cum = rules.tiers[a, :, codes.TIER_RATE], rules.tiers[a, :, codes.TIER_CUM]
    size_p = np.abs(book.pos_qty[pair_pos])
    slope += np.bincount(pair_seg, (rate[k_start] - rate[k]) * size_p,
                         minlength=len(s_slot))
    const += np.bincount(pair_seg, cum[k] - cum[k_start], minlength=len(s_slot))
    with np.errstate(divide="ignore", invalid="ignore"):
        root = -const / slope
    ok = ((slope != 0.0) & (root >= x_lo * (1.0 - SEGMENT_TOL))
          & (root <= x_hi * (1.0 + SEGMENT_TOL)))
    root = np.where(ok, np.clip(root, x_lo, x_hi), np.nan)
    return _nearest(s_slot, root, np.full(len(root), s0[a]), n)


def _refine(book: Book, rules: EngineRules, s0: np.ndarray, oc: tuple, unit: np.ndarray,
            asset: np.ndarray, a_x: np.ndarray, b_x: np.ndarray, f_a: np.ndarray,
            f_b: np.ndarray) -> np.ndarray:
    """Roots of the slack inside ``[a_x, b_x]`` (a sign change: ``f_a``, ``f_b`` the slack
    at the ends, of opposite signs, or one of them 0), all refined together by the
    Illinois method (regula falsi that halves the value of an end kept twice), with a
    bisection every :data:`BISECT_EVERY` steps, until the ends are adjacent floats."""
    a_x, b_x, f_a, f_b = a_x.copy(), b_x.copy(), f_a.copy(), f_b.copy()
    root = np.where(f_a == 0.0, a_x, b_x)
    active = np.flatnonzero((f_a != 0.0) & (f_b != 0.0))
    for step in range(MAX_REFINE_STEPS):
        if len(active) == 0:
            break
        a, b, fa, fb = a_x[active], b_x[active], f_a[active], f_b[active]
        mid = 0.5 * (a + b)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        moving = (mid > lo) & (mid < hi)  # else the ends are adjacent floats: done
        root[active[~moving]] = np.where(np.abs(fa) < np.abs(fb), a, b)[~moving]
        active, a, b, fa, fb, mid, lo, hi = (v[moving] for v in (active, a, b, fa, fb, mid,
                                                                   lo, hi))
        if len(active) == 0:
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            x = b - fb * (b - a) / (fb - fa)
        if step % BISECT_EVERY == BISECT_EVERY - 1:
            x = mid
        x = np.where((x > lo) & (x < hi), x, mid)
        fx = exact_slack(book, rules, s0, unit[active], asset[active], x, oc)
        flip = np.sign(fx) != np.sign(fb)  # the root lies between b and x: b becomes a
        a_new = np.where(flip, b, a)
        fa_new = np.where(flip, fb, 0.5 * fa)
        a_x[active], f_a[active] = a_new, fa_new
        b_x[active], f_b[active] = x, fx
        zero = fx == 0.0
        root[active[zero]] = x[zero]
        active = active[~zero]
    return root


def _option_roots(book: Book, rules: EngineRules, s0: np.ndarray, oc: tuple,
                  unit: np.ndarray, asset: np.ndarray) -> np.ndarray:
    """Liquidation prices of units holding options, one per ``(unit[i], asset[i])``, by a
    scan of the exact slack outward from the start and a refinement of the nearest sign
    changes; NaN where there is none.

    The grid is symmetric about the start; it is scanned in rings of growing distance
    (:data:`SCAN_RINGS`), both sides alike, and a unit stops at the end of the ring in
    which its slack first changes sign (no nearer change can lie beyond it)."""
    n = len(unit)
    grid = log_grid()
    n_grid = len(grid)
    m = int(np.flatnonzero(grid == 0.0)[0])
    start = s0[asset]
    x = start[:, None] * np.exp(grid)[None, :]
    x[:, 0], x[:, -1], x[:, m] = start * PRICE_FLOOR_RATIO, start * PRICE_CAP_RATIO, start
    f = np.full((n, n_grid), np.nan)
    f[:, m] = exact_slack(book, rules, s0, unit, asset, start, oc)
    active = np.arange(n)
    inner = 0.0
    cells = np.arange(n_grid - 1)
    for ring in SCAN_RINGS:
        cols = np.flatnonzero((np.abs(grid) > inner) & (np.abs(grid) <= ring))
        inner = ring
        if len(active) == 0 or len(cols) == 0:
            continue
        rows = np.repeat(active, len(cols))
        f[active[:, None], cols[None, :]] = exact_slack(
            book, rules, s0, unit[rows], asset[rows], x[rows, np.tile(cols, len(active))],
            oc).reshape(len(active), len(cols))
        sign = np.sign(f[active])
        found = ((sign[:, :-1] * sign[:, 1:] < 0.0) | (sign[:, :-1] == 0.0)).any(axis=1)
        active = active[~found]
    sign = np.sign(f)  # NaN where not scanned: no sign change there
    cross = (sign[:, :-1] * sign[:, 1:] < 0.0) | (sign[:, :-1] == 0.0)  # cell j: [x_j, x_j+1]
    below = np.where(cross & (cells[None, :] < m), cells[None, :], -1).max(axis=1)
    above = np.where(cross & (cells[None, :] >= m), cells[None, :], n_grid).min(axis=1)
    has_below, has_above = below >= 0, above < n_grid - 1
    # a side's cell is needed unless the other side's cell lies wholly nearer
    near_above = np.where(has_above, grid[np.minimum(above, n_grid - 2)], np.inf)
    far_above = np.where(has_above, grid[np.minimum(above + 1, n_grid - 1)], np.inf)
    near_below = np.where(has_below, -grid[np.minimum(below + 1, n_grid - 1)], np.inf)
    far_below = np.where(has_below, -grid[np.maximum(below, 0)], np.inf)
    use_below = has_below & (near_below <= far_above)
    use_above = has_above & (near_above <= far_below)
    cand_pair = np.concatenate([np.flatnonzero(use_below), np.flatnonzero(use_above)])
    cand_cell = np.concatenate([below[use_below], above[use_above]])
    root = _refine(book, rules, s0, oc, unit[cand_pair], asset[cand_pair],
                   x[cand_pair, cand_cell], x[cand_pair, cand_cell + 1],
                   f[cand_pair, cand_cell], f[cand_pair, cand_cell + 1])
    return _nearest(cand_pair, root, start[cand_pair], n)


def unit_liquidation_prices(book: Book, rules: EngineRules, s0: np.ndarray) -> np.ndarray:
    """Liquidation price of every margin unit in every asset at the start (module notes).

    Parameters
    ----------
    book : Book
    rules : EngineRules
    s0 : ndarray, shape (A,)
        Start prices, USD.

    Returns
    -------
    ndarray, shape (U, A)
        USD; NaN where there is none in the price band.
    """
    s0 = np.ascontiguousarray(s0, dtype=float)
    n_assets = len(s0)
    out = np.full((book.n_units, n_assets), np.nan)
    live, exposed, with_options = _exposure(book)
    form = slack_form(book, rules, s0, np.ones(book.n_units))
    opt_part = np.zeros(book.n_units)
    oc = None
    opt_units = np.flatnonzero(with_options.any(axis=1))
    if len(opt_units):  # the option part of the slack at the start, outside the form
        oc = _option_data(book, rules, s0)
        exact = exact_slack(book, rules, s0, opt_units, np.zeros(len(opt_units)),
                            np.full(len(opt_units), s0[0]), oc)
        opt_part[opt_units] = exact - (form.const[opt_units] + form.lin[opt_units] @ s0)
    for a in range(n_assets):
        units = np.flatnonzero(live & exposed[:, a] & ~with_options[:, a])
        if len(units):
            out[units, a] = _linear_roots(book, rules, s0, units, a, form.lin, form.const,
                                          form.bracket, opt_part)
    pair_u, pair_a = np.nonzero(live[:, None] & with_options)
    if len(pair_u):
        out[pair_u, pair_a] = _option_roots(book, rules, s0, oc, pair_u, pair_a)
    return out


def liquidation_prices(book: Book, rules: EngineRules, s0: np.ndarray) -> np.ndarray:
    """Liquidation price of every account in every asset at the start (module notes).

    Parameters
    ----------
    book : Book
    rules : EngineRules
    s0 : ndarray, shape (A,)
        Start prices, USD.

    Returns
    -------
    ndarray, shape (n_accounts, A)
        USD; NaN where there is none: no exposure to the asset, or no root in the price
        band. An isolated account takes the nearest to the start of its units' prices.
    """
    s0 = np.ascontiguousarray(s0, dtype=float)
    per_unit = unit_liquidation_prices(book, rules, s0)
    n_acc, n_assets = book.n_accounts, len(s0)
    out = np.full((n_acc, n_assets), np.nan)
    for a in range(n_assets):
        out[:, a] = _nearest(book.unit_account, per_unit[:, a],
                             np.full(book.n_units, s0[a]), n_acc)
    return out
