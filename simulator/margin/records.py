"""The replay kernel's inputs, outputs and scratch as named records of arrays.

:func:`simulator.margin._kernels.replay.replay_nb` takes eleven of these records instead of
one argument per array; Numba passes a namedtuple of arrays to the kernels it calls and
compiles one specialisation per combination of record types. This module builds every one
of them, with fixed dtypes and C-contiguous arrays, so that a record type is always the
same Numba type (no copy is made of an array that already has both).

The records, in the order :func:`replay_nb` takes them: :class:`Prices`,
:class:`BookArrays`, :class:`IndexArrays`, :class:`RuleArrays`, :class:`OptionArrays` (the
inputs, read only), :class:`Outputs` (written), and :class:`UnitState`, :class:`Heaps`,
:class:`UnitLists`, :class:`AssetWork`, :class:`RoundWork` (the scratch of one call, built
afresh for every call by :func:`scratch`). The scratch is split by use into small records
because the kernels read a field of a record by loading the whole record: the fewer
fields a record has, the less code there is to compile.
"""

from __future__ import annotations

from collections import namedtuple
from typing import TYPE_CHECKING

import numpy as np

from simulator.margin import codes
from simulator.margin.buffers import RowBuffers

if TYPE_CHECKING:  # (engine imports this module)
    from simulator.book.build import Book
    from simulator.margin.index import BookIndex
    from simulator.margin.option_setup import OptionData
    from simulator.margin.rules import EngineRules

__all__ = ["AssetWork", "BookArrays", "Heaps", "IndexArrays", "OptionArrays", "Outputs",
           "Prices", "RoundWork", "RuleArrays", "UnitLists", "UnitState", "kernel_inputs",
           "outputs", "price_rules", "scratch"]

#: exogenous prices float64[n_paths, steps + 1, A], depth in USD float64[steps + 1, A] and
#: the intrastep extremes ``bridge`` float64[n_paths, steps + 1, A, 2] (the lowest and the
#: highest exogenous price inside each step; shape (0, 0, 0, 2) without them); the oracle's
#: index ``oracle`` float64[n_paths, steps + 1, A] (:mod:`simulator.paths.oracle`; shape
#: (0, 0, 0) when every price is the book's and the index is the exogenous price; written
#: by the replay, with its publications, when the oracle reads a lending venue's book:
#: ``RuleArrays.oracle_rule``) and then the noise factors of its readings ``oracle_noise``
#: float64[n_paths, steps + 1, A] (shape (0, 0, 0) without noise)
Prices = namedtuple("Prices", ["exo", "depth", "bridge", "oracle", "oracle_noise"])

#: the book at the start of every path: ``unit_usd`` float64[U], ``unit_coll``
#: float64[U, A], ``unit_pos_start`` int64[U + 1], ``unit_account`` int64[U], ``pos_unit``,
#: ``pos_asset`` int64[P], ``pos_qty``, ``pos_entry`` float64[P], ``pos_kind`` int64[P]
#: (:class:`simulator.book.build.Book`); for ADL, the open positions of asset ``a``, kind
#: ``k`` and side ``s`` (1 long, 0 short) in increasing index, ``group_pos[group_start[g]:
#: group_start[g + 1]]`` with ``g = (a N_POS_KINDS + k) 2 + s``, and their units
#: ``group_unit`` (int64[P], int64[P], int64[G + 1]; a position never changes side: ADL,
#: liquidations and margin calls only shrink it)
BookArrays = namedtuple("BookArrays", [
    "unit_usd", "unit_coll", "unit_pos_start", "unit_account", "pos_unit", "pos_asset",
    "pos_qty", "pos_entry", "pos_kind", "group_pos", "group_unit", "group_start"])

#: the liquidation index (:class:`simulator.margin.index.BookIndex`): slack form ``lin``
#: float64[U, A], ``const`` float64[U], ``n_open`` int64[U]; NAV form ``navk``
#: float64[U, A], ``navc`` float64[U]; band thresholds ``s_key`` float64[S], ``s_unit``
#: int64[S], ``s_start`` int64[2 A + 2]; ``init_pending`` int64[K]; the maintenance
#: multiplier ``mmk`` float64[U] and the margin-call reserve ``reserve`` float64[U]
IndexArrays = namedtuple("IndexArrays", [
    "lin", "const", "n_open", "navk", "navc", "s_key", "s_unit", "s_start", "init_pending",
    "mmk", "reserve"])

#: venue and liquidity rules (:class:`simulator.margin.rules.EngineRules`): ``haircut``,
#: ``sigma`` float64[A], ``tiers`` float64[A, K, 3], ``fparams`` float64[N_FP], ``iparams``
#: int64[N_IP] (its ``IP_RNG_KEY`` set to the call's key); ``calls_on``, ``funding_on``,
#: ``lending_on``: True when the venue has margin calls, funding, lending, else None (the
#: kernels given them compile to nothing for a venue without); ``vault_on`` int64[1] for a
#: backstop vault that holds what it takes over (``vault_disposal = "gradual"``), else
#: int64[0] (checked at run time: :mod:`simulator.margin._kernels.vault`); with an
#: oracle, the price each asset is valued at ``price_rule`` int64[A] (``codes.PRICE_*``)
#: and the weight of the step's close in the EMA of the basis ``mark_ema_w`` float64[A]
#: (both used only when ``Prices.oracle`` is not empty); ``oracle_rule`` float64[3], the
#: heartbeat (steps), deviation and lag (steps) of an oracle that reads a lending venue's
#: book, published by the replay (shape (0,) otherwise: the index is ``Prices.oracle`` as
#: given)
RuleArrays = namedtuple("RuleArrays", ["haircut", "tiers", "sigma", "fparams", "iparams",
                                       "calls_on", "funding_on", "lending_on", "vault_on",
                                       "price_rule", "mark_ema_w", "oracle_rule"])

#: the options (:class:`simulator.margin.option_setup.OptionData` and
#: :class:`simulator.margin.option_boxes.OptionBoxes`): ``oc`` the option tuple
#: (``codes.OC_*``); options expiring at step ``t`` are
#: ``set_pos[set_start[t]:set_start[t + 1]]`` (int64); ``opt_units`` int64[O] the option
#: units and ``opt_row`` int64[U] each unit's row among them (-1: none); the later stages'
#: boxes ``stage_step`` int64[K], ``stage_lo``, ``stage_hi`` float64[K, O, A],
#: ``stage_due`` int64[K, O]; ``oc_or_none`` is ``oc`` when the book holds options, else
#: None: the option kernels given it compile to nothing for a book without options;
#: ``options_on`` True or None likewise, for the kernels that need only the switch (one
#: word to pass instead of the tuple's arrays)
OptionArrays = namedtuple("OptionArrays", [
    "oc", "set_pos", "set_start", "opt_units", "opt_row", "stage_step", "stage_lo",
    "stage_hi", "stage_due", "oc_or_none", "options_on"])

#: what the replay writes: the per-path records ``path_f`` float64[n_paths, N_PF] and
#: ``path_i`` int64[n_paths, N_PI], ``min_price``, ``final_price`` float64[n_paths, A],
#: the closing marks ``marks`` float64[n_save, steps + 1, A], the account counts
#: ``acct_liq``, ``acct_bank`` int64[n_accounts], the event buffers ``ev_i``
#: int64[capacity, N_EI] and ``ev_f`` float64[capacity, N_EF], the PnL corrections
#: ``corr_i`` int64[corr_capacity, 2] and ``corr_f`` float64[corr_capacity]; the
#: weighted account counts ``acct_w`` float64[n_accounts, 4] (sums over the paths on
#: which the account was liquidated of the path's weight and its square, then the same
#: for bankruptcy) and the paths' weights ``path_w`` float64[n_paths] (an input: the
#: likelihood ratios of importance sampling, 1.0 in a plain run); the per-fill ADL record
#: ``ev_adl`` float64[capacity, N_EA] (``codes.EA_*``; rows of the event buffer, written for
#: ADL fills only)
Outputs = namedtuple("Outputs", [
    "path_f", "path_i", "min_price", "final_price", "marks", "acct_liq", "acct_bank", "ev_i",
    "ev_f", "corr_i", "corr_f", "acct_w", "path_w", "ev_adl"])

#: the state of every unit on the current path (the touched ones are restored at its end):
#: ``usd`` float64[U], ``coll`` float64[U, A], ``qty`` float64[P], the slack form ``lin``
#: float64[U, A], ``const`` float64[U], ``n_open`` int64[U], ``mmk`` float64[U], the band
#: ``version`` int64[U], ``flag`` uint8[U] (``codes.FLAG_*``) and ``deposit`` float64[U]
UnitState = namedtuple("UnitState", [
    "usd", "coll", "qty", "lin", "const", "n_open", "mmk", "version", "flag", "deposit"])

#: the heaps of band thresholds, one per asset and direction and one of due steps
#: (``2 A + 1``): ``key`` float64[H, cap], ``unit``, ``ver`` int64[H, cap], their sizes
#: ``n`` int64[H] and the cursors ``cursor`` int64[H] into the initial thresholds
Heaps = namedtuple("Heaps", ["key", "unit", "ver", "n", "cursor"])

#: lists of units: ``touched`` (to restore at the end of the path), ``pending`` (to check
#: at the next round), ``dirty`` (to check at this round), ``liq`` (this round's
#: liquidatable units), ``due_units`` (answering a margin call now) and the margin-call
#: queue ``q_unit``, ``q_due`` (int64[U]); the per-account stamps ``stamp_liq``,
#: ``stamp_bank`` (int64[n_accounts], the last path counted); and the counters ``count``
#: int64[N_COUNT] (``codes.CNT_*``)
UnitLists = namedtuple("UnitLists", [
    "touched", "pending", "dirty", "liq", "due_units", "q_unit", "q_due", "stamp_liq",
    "stamp_bank", "count"])

#: per-asset scratch (float64[A]): the marks ``mark``, after the round's impact ``mark2``,
#: the execution prices ``xprice``, the log moves ``dlog``, the round's flow ``flow``, the
#: impact outstanding ``logimp``, the price bounds ``p_lo``, ``p_hi``, the funding rates
#: ``funding_rate``, the implied vols' spot factors ``ivfac``, and a box ``box_lo``,
#: ``box_hi`` with its scratch ``box_work`` float64[N_BOX_WORK, A]; the backstop vault's
#: inventory ``vault_inv`` (coins, + long) and the quantity its disposal is a share of
#: ``vault_base`` (float64[A]), its cash and running peak value ``vault_cash`` (float64[2]);
#: the venue's book price ``book`` (the exogenous price times the impact outstanding),
#: after the round's impact ``book2``, and the EMA of the basis book - index ``basis``
#: (``mark`` is ``book`` unless an oracle prices some asset); an oracle reading a lending
#: venue's book: its last publication ``pub_value`` and the step it was made ``pub_step``
AssetWork = namedtuple("AssetWork", [
    "mark", "mark2", "xprice", "dlog", "flow", "logimp", "p_lo", "p_hi", "funding_rate",
    "ivfac", "box_lo", "box_hi", "box_work", "vault_inv", "vault_base", "vault_cash", "book",
    "book2", "basis", "pub_value", "pub_step"])

#: one round's scratch: per liquidatable unit its event kind ``kind`` (int64), fraction
#: ``frac`` and lending plan ``plan_g``, ``plan_k``, ``plan_r``, ``plan_s`` (float64),
#: ``plan_c`` (bool) (rows of ``UnitLists.liq``); per position what it closed, ``closed``
#: and ``closed_notional`` (float64[P]); the bankrupt units ``bank_unit``,
#: ``bank_deficit`` and their events ``bank_ev_lo``, ``bank_ev_hi`` (U rows); the ADL keys
#: of the positions in ``BookArrays.group_pos`` order ``adl_key`` (float64[P]), the unit
#: version each was computed at ``adl_key_ver`` (int64[P]) and the step 6 each group's
#: were computed in ``adl_group_gen`` (int64[G], -1: none); per unit the
#: equity, maintenance, wallet and notional its ADL scores used ``adl_e``, ``adl_mm``,
#: ``adl_w``, ``adl_n`` (float64[U]: a fill's leverage and PnL read them again), with
#: the step 6 they belong to ``adl_gen`` (int64[U], -1: none) and the unit's version then
#: ``adl_ver`` (int64[U]); the count of steps 6 so far ``adl_clock``
#: (int64[1]); the per-step ADL cap's ``adl_used`` (float64[3]: path, step, ADL notional
#: used in it; :func:`simulator.margin._kernels.adl.adl_allowance_nb`)
RoundWork = namedtuple("RoundWork", [
    "kind", "frac", "plan_g", "plan_k", "plan_r", "plan_s", "plan_c", "closed",
    "closed_notional", "bank_unit", "bank_deficit", "bank_ev_lo", "bank_ev_hi", "adl_key",
    "adl_key_ver", "adl_group_gen", "adl_e", "adl_mm", "adl_w", "adl_n", "adl_gen",
    "adl_ver", "adl_clock", "adl_used"])


#: what every array handed to the replay kernel is: C-contiguous and writeable. A read-only
#: array (joblib memory-maps a large argument read-only in its workers; Ray and Dask may
#: deserialise arrays read-only) is a type of its own to Numba, so the kernel, compiled
#: once in the driver, would be compiled again in every worker; such an array is copied.
_KERNEL_ARRAY = ("C", "W")


def _f(array: np.ndarray) -> np.ndarray:
    """``array`` as C-contiguous, writeable float64 (itself when it already is)."""
    return np.require(array, dtype=np.float64, requirements=_KERNEL_ARRAY)


def _i(array: np.ndarray) -> np.ndarray:
    """``array`` as C-contiguous, writeable int64 (itself when it already is)."""
    return np.require(array, dtype=np.int64, requirements=_KERNEL_ARRAY)


def kernel_inputs(exo: np.ndarray, depth: np.ndarray, book: Book, index: BookIndex,
                  rules: EngineRules, options: OptionData, rng_key: int,
                  bridge: np.ndarray | None = None, oracle: np.ndarray | None = None,
                  oracle_noise: np.ndarray | None = None
                  ) -> tuple[Prices, BookArrays, IndexArrays, RuleArrays, OptionArrays]:
    """The read-only records of a replay.

    Parameters
    ----------
    exo : ndarray, shape (n, steps + 1, A)
    depth : ndarray, shape (steps + 1, A)
    book : Book
    index : BookIndex
    rules : EngineRules
    options : OptionData
        The options' data for paths of ``steps`` steps (``index.options`` when the index was
        built for them).
    rng_key : int
        Key of the counter-based draws, written to the ``IP_RNG_KEY`` of a copy of
        ``rules.iparams``.
    bridge : ndarray, shape (n, steps + 1, A, 2), optional
        The lowest and highest exogenous price inside each step (``simulation.intrastep =
        "bridge"``); None: the step closes only.
    oracle : ndarray, shape (n, steps + 1, A), optional
        The oracle's index (:func:`simulator.paths.oracle.oracle_index`); None: every asset
        is valued at the venue's book and the index is the exogenous price. With
        ``rules.oracle_reads_book``, the array the replay writes the index to.
    oracle_noise : ndarray, shape (n, steps + 1, A), optional
        With ``rules.oracle_reads_book``: the noise factors of the oracle's readings
        (:func:`simulator.paths.oracle.noise_factors`); None: none.

    Returns
    -------
    tuple
        ``(Prices, BookArrays, IndexArrays, RuleArrays, OptionArrays)``.
    """
    iparams = _i(rules.iparams).copy()
    iparams[codes.IP_RNG_KEY] = rng_key
    oc = options.oc
    oc = (_f(oc[codes.OC_POS]), _f(oc[codes.OC_ASSET]), _f(oc[codes.OC_IVMULT]),
          _i(oc[codes.OC_IVNEXT]),
          np.require(oc[codes.OC_UNIT_OPT], dtype=np.bool_, requirements=_KERNEL_ARRAY),
          _f(oc[codes.OC_PAR]))
    opt_units = _i(options.opt_units)
    opt_row = np.full(book.n_units, -1, dtype=np.int64)  # option unit -> its stage row
    opt_row[opt_units] = np.arange(len(opt_units))
    boxes = index.boxes
    no_bridge = np.empty((0, 0, 0, 2))
    no_oracle = np.empty((0, 0, 0))
    return (Prices(_f(exo), _f(depth), _f(no_bridge if bridge is None else bridge),
                   _f(no_oracle if oracle is None else oracle),
                   _f(no_oracle if oracle_noise is None else oracle_noise)),
            BookArrays(_f(book.unit_usd), _f(book.unit_coll), _i(book.unit_pos_start),
                       _i(book.unit_account), _i(book.pos_unit), _i(book.pos_asset),
                       _f(book.pos_qty), _f(book.pos_entry), _i(book.pos_kind),
                       *_position_groups(book.pos_asset, book.pos_kind, book.pos_qty,
                                         book.pos_unit, book.unit_coll.shape[1])),
            IndexArrays(_f(index.lin), _f(index.const), _i(index.n_open), _f(index.navk),
                        _f(index.navc), _f(index.s_key), _i(index.s_unit), _i(index.s_start),
                        _i(index.init_pending), _f(index.mmk0), _f(index.reserve)),
            RuleArrays(_f(rules.haircut), _f(rules.tiers), _f(rules.sigma),
                       _f(rules.fparams), iparams,
                       _on(rules.call_ratio > 0.0 and rules.fparams[codes.FP_CALL_PROB] > 0.0),
                       _on(iparams[codes.IP_FUNDING_INTERVAL] > 0),
                       _on(iparams[codes.IP_LENDING] != 0), _flag(rules.vault_gradual),
                       price_rules(rules, book),
                       np.full(book.unit_coll.shape[1], rules.mark_ema_weight),
                       _f(np.asarray(rules.oracle_rule, dtype=float))),
            OptionArrays(oc, _i(options.set_pos), _i(options.set_start), opt_units, opt_row,
                         _i(boxes.stage_step), _f(boxes.stage_lo), _f(boxes.stage_hi),
                         _i(boxes.stage_due), oc if len(opt_units) else None,
                         _on(len(opt_units) > 0)))


def price_rules(rules: EngineRules, book: Book) -> np.ndarray:
    """The price each asset is valued at (``codes.PRICE_*``, int64[A]): ``rules.mark_rule``
    for an asset the book holds positions in (debts, perpetuals, options), else
    ``rules.collateral_rule`` (an asset held only as collateral)."""
    out = np.full(book.unit_coll.shape[1], rules.collateral_rule, dtype=np.int64)
    out[np.unique(np.asarray(book.pos_asset, dtype=np.int64))] = rules.mark_rule
    return out


def _on(flag: bool) -> bool | None:
    """A switch of a kernel record: True, or None for a feature the call never uses."""
    return True if flag else None


def _flag(flag: bool) -> np.ndarray:
    """A switch read at run time: int64[1] when on, int64[0] when off (one compiled type)."""
    return np.ones(1 if flag else 0, dtype=np.int64)


def _position_groups(pos_asset: np.ndarray, pos_kind: np.ndarray, pos_qty: np.ndarray,
                    pos_unit: np.ndarray, n_assets: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(group_pos, group_unit, group_start)`` of :class:`BookArrays`: the open positions
    grouped by asset, kind and side, each group in increasing position index."""
    n_groups = n_assets * codes.N_POS_KINDS * 2
    group = (_i(pos_asset) * codes.N_POS_KINDS + _i(pos_kind)) * 2 + (pos_qty > 0.0)
    group[pos_qty == 0.0] = n_groups  # never a candidate: a closed position stays closed
    order = np.argsort(group, kind="stable").astype(np.int64)
    start = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(group, minlength=n_groups + 1)[:n_groups], out=start[1:])
    return order, _i(pos_unit)[order], start


def outputs(n_paths: int, steps: int, n_assets: int, n_accounts: int, save_marks: int,
            capacity: int, path_weight: np.ndarray | None = None,
            corr_capacity: int | None = None, buffers: RowBuffers | None = None) -> Outputs:
    """Zeroed outputs for ``n_paths`` paths, with event buffers of ``capacity`` rows and
    correction buffers of ``corr_capacity`` (``capacity`` when not given; both
    uninitialised) and the closing marks of the first ``save_marks`` paths;
    ``path_weight`` the paths' weights (1.0 when not given). With ``buffers`` the event and
    correction buffers are those it keeps (at least as many rows: every row it holds)."""
    if path_weight is None:
        path_weight = np.ones(n_paths)
    if corr_capacity is None:
        corr_capacity = capacity
    if buffers is None:
        buffers = RowBuffers()  # (fresh arrays, not kept)
    # (the kept buffers of a kind are grown together; the same rows for each, whatever
    # they hold, since the kernel takes the capacity from one of them)
    ev_i, ev_f, ev_adl = _same_rows(buffers.take("ev_i", capacity, (codes.N_EI,), np.int64),
                                    buffers.take("ev_f", capacity, (codes.N_EF,), np.float64),
                                    buffers.take("ev_adl", capacity, (codes.N_EA,),
                                                 np.float64))
    corr_i, corr_f = _same_rows(buffers.take("corr_i", corr_capacity, (2,), np.int64),
                                buffers.take("corr_f", corr_capacity, (), np.float64))
    return Outputs(path_f=np.zeros((n_paths, codes.N_PF)),
                   path_i=np.zeros((n_paths, codes.N_PI), dtype=np.int64),
                   min_price=np.zeros((n_paths, n_assets)),
                   final_price=np.zeros((n_paths, n_assets)),
                   marks=np.zeros((min(save_marks, n_paths), steps + 1, n_assets)),
                   acct_liq=np.zeros(n_accounts, dtype=np.int64),
                   acct_bank=np.zeros(n_accounts, dtype=np.int64),
                   ev_i=ev_i, ev_f=ev_f, corr_i=corr_i, corr_f=corr_f,
                   acct_w=np.zeros((n_accounts, 4)),
                   path_w=_f(path_weight),
                   ev_adl=ev_adl)


def _same_rows(*arrays: np.ndarray) -> list[np.ndarray]:
    """The arrays cut to the rows of the shortest (views)."""
    rows = min(a.shape[0] for a in arrays)
    return [a[:rows] for a in arrays]


def scratch(book: BookArrays, index: IndexArrays, n_accounts: int
            ) -> tuple[UnitState, Heaps, UnitLists, AssetWork, RoundWork]:
    """The scratch of one call of the replay kernel: every unit in its initial state, empty
    heaps and lists, zeroed counters.

    Parameters
    ----------
    book : BookArrays
    index : IndexArrays
    n_accounts : int

    Returns
    -------
    tuple
        ``(UnitState, Heaps, UnitLists, AssetWork, RoundWork)``.
    """
    n_units, n_assets = book.unit_coll.shape
    n_pos = book.pos_qty.shape[0]
    state = UnitState(usd=book.unit_usd.copy(), coll=book.unit_coll.copy(),
                      qty=book.pos_qty.copy(), lin=index.lin.copy(),
                      const=index.const.copy(), n_open=index.n_open.copy(),
                      mmk=index.mmk.copy(), version=np.zeros(n_units, dtype=np.int64),
                      flag=np.zeros(n_units, dtype=np.uint8), deposit=np.zeros(n_units))
    n_heaps = 2 * n_assets + 1
    heap_cap = 2 * n_units + 64
    heaps = Heaps(key=np.empty((n_heaps, heap_cap)),
                  unit=np.empty((n_heaps, heap_cap), dtype=np.int64),
                  ver=np.empty((n_heaps, heap_cap), dtype=np.int64),
                  n=np.zeros(n_heaps, dtype=np.int64), cursor=np.zeros(n_heaps, dtype=np.int64))

    def units(dtype: type = np.int64) -> np.ndarray:
        return np.empty(n_units, dtype=dtype)

    def assets() -> np.ndarray:
        return np.empty(n_assets)

    lists = UnitLists(touched=units(), pending=units(), dirty=units(), liq=units(),
                      due_units=units(), q_unit=units(), q_due=units(),
                      stamp_liq=np.full(n_accounts, -1, dtype=np.int64),
                      stamp_bank=np.full(n_accounts, -1, dtype=np.int64),
                      count=np.zeros(codes.N_COUNT, dtype=np.int64))
    asset_work = AssetWork(mark=assets(), mark2=assets(), xprice=assets(), dlog=assets(),
                           flow=assets(), logimp=assets(), p_lo=assets(), p_hi=assets(),
                           funding_rate=assets(), ivfac=assets(), box_lo=assets(),
                           box_hi=assets(), box_work=np.empty((codes.N_BOX_WORK, n_assets)),
                           vault_inv=np.zeros(n_assets), vault_base=np.zeros(n_assets),
                           vault_cash=np.zeros(2), book=assets(), book2=assets(),
                           basis=np.zeros(n_assets), pub_value=assets(), pub_step=assets())
    round_work = RoundWork(kind=units(), frac=units(np.float64), plan_g=units(np.float64),
                           plan_k=units(np.float64), plan_r=units(np.float64),
                           plan_s=units(np.float64), plan_c=units(np.bool_),
                           closed=np.zeros(n_pos), closed_notional=np.zeros(n_pos),
                           bank_unit=units(), bank_deficit=units(np.float64),
                           bank_ev_lo=units(), bank_ev_hi=units(),
                           adl_key=np.empty(n_pos), adl_key_ver=np.empty(n_pos, np.int64),
                           adl_group_gen=np.full(book.group_start.shape[0] - 1, -1,
                                                 np.int64),
                           adl_e=units(np.float64), adl_mm=units(np.float64),
                           adl_w=units(np.float64), adl_n=units(np.float64),
                           adl_gen=np.full(n_units, -1, np.int64),
                           adl_ver=units(),
                           adl_clock=np.zeros(1, dtype=np.int64),
                           adl_used=np.full(3, -1.0))
    return state, heaps, lists, asset_work, round_work
