"""Per-account and venue-level estimates, built from chunk outputs in bounded memory.

An account's PnL on a path is a linear function of the path's final marks (what its
initial book is worth there) plus a correction for each of its units that changed on the
path (liquidated, deleveraged). Each chunk writes the corrections
(``chunks/pnl-NNNNN.parquet``) and per-account liquidation / bankruptcy counts
(``chunks/accounts-NNNNN.parquet``), and reduces its (paths x accounts) PnL matrix, in
blocks, to an :class:`AccountPartial`: per account, the sum and sum of squares of its PnL
and either

- ``exact`` mode: its largest losses (``risk.tail_size`` of them, enough for the exact
  VaR/ES of the whole run and their standard errors), or
- ``batch`` mode: the chunk's own VaR/ES estimates and standard errors.

Workers return their partial; after ``--resume`` the partials of chunks finished earlier
are rebuilt from their files, bit for bit: in exact mode from the corrections, in batch
mode from the chunk's own estimates, which its accounts part then holds (its corrections
part is left empty: :func:`chunk_tables`).

Exact mode is used while the merged tails of all accounts fit in
``simulation.account_tail_budget_mb``; beyond it (many paths x many accounts) the run's
VaR/ES per account is the path-weighted mean of the chunk estimates (batch means), whose
standard error combines the chunks' standard errors. Its bias is that of the empirical
quantile on one chunk, O(1 / chunk_paths). ``accounts.parquet`` says which mode was used.

The driver merges chunk files in chunk order, one at a time, so its memory does not grow
with the number of chunks, and the result does not depend on the order chunks finished.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simulator.book.build import Book
from simulator.margin.result import ReplayResult
from simulator.results import risk

ALPHA = 0.99
#: memory for one block of the (paths x accounts) PnL matrix of a chunk
PNL_BLOCK_BYTES = 64 << 20


def tail_mode(n_paths: int, n_accounts: int, budget_mb: float,
              levels: tuple[float, ...] = (ALPHA,), force_batch: bool = False) -> str:
    """``exact`` when the per-account loss tails of the whole run fit the budget.

    The tail kept is that of the lowest level (the longest). The driver holds one merged
    tail and one chunk's tail at a time. ``batch`` is forced (``force_batch``) for weighted
    runs (rare-event mode: how many of the largest losses hold a weighted tail mass is not
    known in advance) and Sobol runs (their errors come from the spread of the chunks).
    """
    if force_batch:
        return "batch"
    need = risk.tail_size(n_paths, min(levels)) * n_accounts * 8
    return "exact" if need <= budget_mb * (1 << 20) else "batch"


@dataclass
class AccountPartial:
    """Per-account aggregates of one chunk (see the module notes)."""

    n: int
    liquidated: np.ndarray
    bankrupt: np.ndarray
    pnl_sum: np.ndarray
    pnl_sumsq: np.ndarray
    tail: np.ndarray | None = None  # exact mode: largest losses, (n_acc, keep), any order
    batch: np.ndarray | None = None  # batch mode: (L, 4, n_acc) var, var_se, es, es_se
    #: rare-event mode: (n_acc, 4) sums of w and w**2 over liquidated, then bankrupt paths
    counts: np.ndarray | None = None
    #: paths on which any of the account's positions was ADL'd (and, in rare-event mode,
    #: (n_acc, 2) the sums of w and w**2 over them)
    adl: np.ndarray | None = None
    adl_counts: np.ndarray | None = None


def chunk_partial(final_price: np.ndarray, s0: np.ndarray, acct_navk: np.ndarray,
                  corr_path: np.ndarray, corr_account: np.ndarray, corr_delta: np.ndarray,
                  liquidated: np.ndarray, bankrupt: np.ndarray, mode: str,
                  n_paths_total: int, levels: tuple[float, ...] = (ALPHA,),
                  weight: np.ndarray | None = None,
                  weighted_counts: np.ndarray | None = None, adl: np.ndarray | None = None,
                  adl_weighted: np.ndarray | None = None) -> AccountPartial:
    """Per-account aggregates of one chunk from its final marks and PnL corrections.

    ``corr_path`` counts paths from the start of the chunk. The (paths x accounts) PnL
    matrix is formed in blocks of at most ``PNL_BLOCK_BYTES``. In rare-event mode
    ``weight`` holds the paths' likelihood ratios and ``weighted_counts`` the engine's
    per-account weight sums (``ReplayResult.acct_weighted``); the partial then holds
    weighted sums (``pnl_sum`` of ``w pnl``, ``pnl_sumsq`` of ``(w pnl)**2``, ``counts``)
    and its mode must be ``batch``, with weighted VaR/ES per chunk. ``adl`` counts the
    paths on which each account was ADL'd (``ReplayResult.acct_adl``; zeros when not
    given) and ``adl_weighted`` their weight sums (``acct_adl_weighted``, rare-event mode).
    """
    if weight is not None and mode == "exact":
        raise ValueError("weighted runs aggregate accounts in batch mode")
    n_acc = acct_navk.shape[0]
    n = final_price.shape[0]
    pnl_sum = np.zeros(n_acc)
    pnl_sumsq = np.zeros(n_acc)
    keep = risk.tail_size(n_paths_total, min(levels))
    tail = np.empty((n_acc, min(keep, n))) if mode == "exact" else None
    batch = np.empty((len(levels), 4, n_acc)) if mode != "exact" else None
    # weighted VaR/ES sort whole rows and keep a few arrays of the block's size: smaller
    # blocks hold the peak memory near the plain one's
    block_bytes = PNL_BLOCK_BYTES if weight is None else PNL_BLOCK_BYTES // 4
    block = max(1, block_bytes // (8 * max(n, 1)))
    if block < n_acc:  # the corrections by account, for the blocks (a stable sort: each cell
        # of the matrix gets its corrections in the same order, so the same sums, as in one
        # block; a stable sort of 16-bit keys is a radix sort, ~8x faster than of int64 ones)
        keys = corr_account.astype(np.uint16) if n_acc <= 1 << 16 else corr_account
        order = np.argsort(keys, kind="stable")
        corr_path, corr_account = corr_path[order], corr_account[order]
        corr_delta = corr_delta[order]
    for start in range(0, n_acc, block):
        stop = min(n_acc, start + block)
        # one row per account, one column per path
        losses = np.matmul(acct_navk[start:stop], (s0 - final_price).T,
                           out=_pnl_block(stop - start, n))
        lo, hi = (np.searchsorted(corr_account, [start, stop]) if block < n_acc
                  else (0, corr_account.shape[0]))
        # (NumPy's fast path of ufunc.at is for one index array: flat indices, the same
        # additions in the same order)
        np.add.at(losses.reshape(-1), (corr_account[lo:hi] - start) * n + corr_path[lo:hi],
                  -corr_delta[lo:hi])
        wl = losses if weight is None else losses * weight[None, :]
        pnl_sum[start:stop] = -wl.sum(axis=1)
        pnl_sumsq[start:stop] = np.einsum("ij,ij->i", wl, wl)
        if tail is not None:
            tail[start:stop] = risk.top_rows(losses, keep, overwrite=True)  # (last use)
        elif weight is not None:
            batch[:, :, start:stop] = risk.wvar_es_levels(losses, weight, levels)
        else:
            batch[:, :, start:stop] = risk.var_es_rows_levels(losses, levels, overwrite=True)
    return AccountPartial(n, liquidated.astype(np.int64), bankrupt.astype(np.int64), pnl_sum,
                          pnl_sumsq, tail, batch,
                          None if weighted_counts is None else weighted_counts.copy(),
                          np.zeros(n_acc, np.int64) if adl is None else adl.astype(np.int64),
                          None if adl_weighted is None else np.array(adl_weighted, float))


#: the exact tails are merged in blocks of rows of at most this many bytes
MERGE_BLOCK_BYTES = 4 << 20

_scratch = threading.local()


def _pnl_block(rows: int, n: int) -> np.ndarray:
    """A (rows, n) float64 block of the PnL matrix, reused by the chunks of this thread.

    A block is up to :data:`PNL_BLOCK_BYTES`; a fresh one every chunk would be mapped
    afresh (:mod:`simulator.execution.heap`) and each of its pages faulted in and zeroed
    again: 40-45 ms a chunk of the flagship's 1,000 paths x 3,003 accounts on the
    development machine, about 6% of the run. The block is overwritten before it is read.
    """
    need = rows * n
    buf = getattr(_scratch, "pnl", None)
    if buf is None or buf.size < need:
        buf = _scratch.pnl = np.empty(need)
    return buf[:need].reshape(rows, n)


#: columns of ``chunks/accounts-NNNNN.parquet`` in rare-event mode, after the counts: the
#: columns of ``ReplayResult.acct_weighted``
WEIGHTED_COUNTS = ("liquidated_w", "liquidated_w2", "bankrupt_w", "bankrupt_w2")
#: the same for ADL (``ReplayResult.acct_adl_weighted``), after the ``adl`` count
WEIGHTED_ADL = ("adl_w", "adl_w2")


#: the statistics of a level in the batch columns of ``chunks/accounts-NNNNN.parquet``
#: (``var_95``, ``var_se_95``, ...), in the order of ``AccountPartial.batch``
BATCH_STATS = ("var", "var_se", "es", "es_se")


def batch_columns(levels: tuple[float, ...]) -> list[str]:
    """Columns of a batch-mode chunk's own estimates in ``chunks/accounts-NNNNN.parquet``:
    ``pnl_sum``, ``pnl_sumsq``, then ``var_<L>``, ``var_se_<L>``, ``es_<L>``, ``es_se_<L>``
    per level (:func:`risk.level_suffix`)."""
    return ["pnl_sum", "pnl_sumsq"] + [f"{stat}_{risk.level_suffix(level)}"
                                       for level in levels for stat in BATCH_STATS]


def chunk_tables(res: ReplayResult, first_path: int, index: int, weighted: bool = False,
                 partial: AccountPartial | None = None, levels: tuple[float, ...] = (ALPHA,)
                 ) -> dict[str, pa.Table]:
    """What :func:`load_chunk_partial` needs besides the ``paths/`` part, by relative path
    (``chunks/accounts-NNNNN.parquet``, ``chunks/pnl-NNNNN.parquet``); ``weighted``: with
    the weighted counts of rare-event mode.

    A batch-mode ``partial`` (its VaR/ES per chunk, ``levels``) is written whole, as the
    columns :func:`batch_columns` of the accounts part, and the PnL corrections part is
    left empty: a resumed run reads the chunk's estimates back instead of forming its PnL
    matrix again, and a million flagship paths no longer write 3.5 GB of corrections
    (416 a path) that only a resume would read. In exact mode the corrections are written:
    the run's tail of the largest losses needs every path's PnL.
    """
    columns = {"liquidated": res.acct_liquidated, "bankrupt": res.acct_bankrupt}
    if weighted:
        columns.update({name: res.acct_weighted[:, j] for j, name in enumerate(WEIGHTED_COUNTS)})
    columns["adl"] = res.acct_adl
    if weighted:
        columns.update({name: res.acct_adl_weighted[:, j] for j, name in enumerate(WEIGHTED_ADL)})
    batch = partial is not None and partial.batch is not None
    if batch:
        assert partial is not None and partial.batch is not None  # (for the type checker)
        estimates = [partial.pnl_sum, partial.pnl_sumsq] + [
            partial.batch[i_level, k] for i_level in range(len(levels))
            for k in range(len(BATCH_STATS))]
        columns.update({name: pa.array(value, type=pa.float64(), from_pandas=True)
                        for name, value in zip(batch_columns(levels), estimates, strict=True)})
        # (NaN written as null, as in accounts.parquet; read back as NaN)
    counts = pa.table(columns)
    rows = slice(0, 0) if batch else slice(None)
    corr = pa.table({"path_id": res.corr_path[rows] + first_path,
                     "account": res.corr_account[rows].astype(np.int32),
                     "pnl_correction": res.corr_delta[rows]})
    return {f"chunks/accounts-{index:05d}.parquet": counts,
            f"chunks/pnl-{index:05d}.parquet": corr}


def load_chunk_partial(out_dir: Path, index: int, first_path: int, symbols: tuple[str, ...],
                       s0: np.ndarray, acct_navk: np.ndarray, mode: str,
                       n_paths_total: int, levels: tuple[float, ...] = (ALPHA,),
                       weighted: bool = False) -> AccountPartial:
    """Rebuild a finished chunk's :class:`AccountPartial` from its files (for resume): in
    batch mode from the estimates its accounts part holds (:func:`chunk_tables`), else
    from its final marks and PnL corrections."""
    name = f"part-{index:05d}.parquet"
    paths = pq.read_table(out_dir / "paths" / name,
                          columns=[f"final_price_{s}" for s in symbols] + ["weight"] * weighted)
    final = np.column_stack([paths.column(i).to_numpy() for i in range(len(symbols))])
    weight = paths.column("weight").to_numpy() if weighted else None
    counts = pq.read_table(out_dir / "chunks" / f"accounts-{index:05d}.parquet")
    wcounts = (np.column_stack([counts.column(c).to_numpy() for c in WEIGHTED_COUNTS])
               if weighted else None)
    adl = counts.column("adl").to_numpy() if "adl" in counts.column_names else None
    wadl = (np.column_stack([counts.column(c).to_numpy() for c in WEIGHTED_ADL])
            if weighted and adl is not None else None)
    liquidated = counts.column("liquidated").to_numpy()
    bankrupt = counts.column("bankrupt").to_numpy()
    names = batch_columns(levels)
    if mode != "exact" and set(names) <= set(counts.column_names):
        est = [counts.column(c).to_numpy() for c in names]
        n_acc = acct_navk.shape[0]
        batch = np.array(est[2:], dtype=float).reshape(len(levels), len(BATCH_STATS), n_acc)
        return AccountPartial(final.shape[0], liquidated.astype(np.int64),
                              bankrupt.astype(np.int64), np.array(est[0], dtype=float),
                              np.array(est[1], dtype=float), None, batch,
                              None if wcounts is None else np.array(wcounts, dtype=float),
                              np.zeros(n_acc, np.int64) if adl is None
                              else adl.astype(np.int64),
                              None if wadl is None else np.array(wadl, dtype=float))
    corr = pq.read_table(out_dir / "chunks" / f"pnl-{index:05d}.parquet")
    return chunk_partial(final, s0, acct_navk,
                         corr.column("path_id").to_numpy() - first_path,
                         corr.column("account").to_numpy().astype(np.int64),
                         corr.column("pnl_correction").to_numpy(),
                         liquidated, bankrupt, mode, n_paths_total, levels,
                         weight, wcounts, adl, wadl)


@dataclass
class AccountTotals:
    """Per-account aggregates merged over chunks (in chunk order).

    With ``spread`` (``simulation.variance_reduction = "sobol"``: chunks of equal size,
    each an independent scramble) the standard errors come from the spread of the chunk
    estimates, ``sqrt(var_k(chunk estimates) / k)``: ``chunk_sq`` sums their squares.
    """

    mode: str
    keep: int
    levels: tuple[float, ...] = (ALPHA,)
    n: int = 0
    liquidated: np.ndarray | None = None
    bankrupt: np.ndarray | None = None
    pnl_sum: np.ndarray | None = None
    pnl_sumsq: np.ndarray | None = None
    #: exact mode: the largest losses so far, negated, in the first ``held`` columns (in no
    #: particular order); the columns after them take the next chunk's
    neg_tail: np.ndarray | None = None
    held: int = 0
    var_w: np.ndarray | None = None
    var_se2: np.ndarray | None = None
    es_w: np.ndarray | None = None
    es_se2: np.ndarray | None = None
    counts: np.ndarray | None = None
    adl: np.ndarray | None = None
    adl_counts: np.ndarray | None = None
    spread: bool = False
    chunks: int = 0
    chunk_sq: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def tail(self) -> np.ndarray | None:
        """Exact mode: the ``keep`` largest losses of each account so far (all of them
        while there are fewer), in no particular order; None before the first chunk."""
        return None if self.neg_tail is None else -self.neg_tail[:, :self.held]

    def _merge_tail(self, part_tail: np.ndarray) -> None:
        """Keep the ``keep`` largest of the losses so far and ``part_tail``'s, in place.

        The losses are held negated in one buffer of ``keep`` columns, so that a partition
        puts the largest first; the merge runs through blocks of rows
        (:data:`MERGE_BLOCK_BYTES` of losses so far and the chunk's), where
        :func:`risk.merge_tails` made three arrays of about the tail's size per chunk
        (mapped and faulted in afresh: on ``two-asset-crash`` with 40,000 paths, 48 MiB
        each, a tenth of the driver's time).
        """
        rows, cols = part_tail.shape
        width = self.held + cols
        if self.neg_tail is None or self.neg_tail.shape[1] < min(width, self.keep):
            grown = np.empty((rows, min(width, self.keep)))
            if self.neg_tail is not None:
                grown[:, :self.held] = self.neg_tail[:, :self.held]
            self.neg_tail = grown
        if width <= self.keep:  # room for them all
            np.negative(part_tail, out=self.neg_tail[:, self.held:width])
        else:
            step = max(1, MERGE_BLOCK_BYTES // (8 * width))
            work = np.empty((min(step, rows), width))
            for lo in range(0, rows, step):
                hi = min(rows, lo + step)
                block = work[:hi - lo]
                block[:, :self.held] = self.neg_tail[lo:hi, :self.held]
                np.negative(part_tail[lo:hi], out=block[:, self.held:])
                block.partition(self.keep - 1, axis=1)
                self.neg_tail[lo:hi, :self.keep] = block[:, :self.keep]
        self.held = min(width, self.keep)

    def _square(self, name: str, value: np.ndarray) -> None:
        sq = np.square(value)
        self.chunk_sq[name] = sq if name not in self.chunk_sq else self.chunk_sq[name] + sq

    def add(self, part: AccountPartial) -> None:
        """Merge one chunk's aggregates (call in chunk order)."""
        if self.liquidated is None:
            self.liquidated, self.bankrupt = part.liquidated.copy(), part.bankrupt.copy()
            self.pnl_sum, self.pnl_sumsq = part.pnl_sum.copy(), part.pnl_sumsq.copy()
        else:
            self.liquidated += part.liquidated
            self.bankrupt += part.bankrupt
            self.pnl_sum += part.pnl_sum
            self.pnl_sumsq += part.pnl_sumsq
        if part.counts is not None:
            self.counts = part.counts.copy() if self.counts is None else self.counts + part.counts
        if part.adl is not None:
            self.adl = part.adl.copy() if self.adl is None else self.adl + part.adl
        if part.adl_counts is not None:
            self.adl_counts = (part.adl_counts.copy() if self.adl_counts is None
                               else self.adl_counts + part.adl_counts)
        self.n += part.n
        m = part.n
        if self.spread:
            self.chunks += 1
            self._square("pnl", part.pnl_sum / m)
            self._square("liq", part.liquidated / m)
            self._square("bank", part.bankrupt / m)
            if part.adl is not None:
                self._square("adl", part.adl / m)
            if part.batch is not None:
                self._square("var", part.batch[:, 0])
                self._square("es", part.batch[:, 2])
        if self.mode == "exact":
            self._merge_tail(part.tail)
        else:
            var, var_se, es, es_se = part.batch.transpose(1, 0, 2)  # each (L, n_acc)
            if self.var_w is None:
                self.var_w, self.es_w = np.zeros_like(var), np.zeros_like(es)
                self.var_se2, self.es_se2 = np.zeros_like(var), np.zeros_like(es)
            self.var_w += m * var
            self.es_w += m * es
            self.var_se2 += (m * var_se) ** 2
            self.es_se2 += (m * es_se) ** 2


def liq_price_columns(prices: np.ndarray, symbols: tuple[str, ...]) -> dict[str, pa.Array]:
    """The ``liq_price_<SYM>`` columns of ``accounts.parquet`` from the accounts'
    liquidation prices at the start, shape (n_accounts, A), USD (NaN, written as null:
    none; :func:`simulator.margin.liq_prices.liquidation_prices`)."""
    if prices.shape[1] != len(symbols):
        raise ValueError(f"{prices.shape[1]} columns of prices for {len(symbols)} symbols")
    return {f"liq_price_{sym}": pa.array(prices[:, a], type=pa.float64(), from_pandas=True)
            for a, sym in enumerate(symbols)}


def accounts_table(book: Book, agg: AccountTotals,
                   greeks: dict[str, np.ndarray] | None = None,
                   liq_prices: dict[str, pa.Array] | None = None) -> pa.Table:
    """Per-account estimates (``accounts.parquet``): losses are positive USD; then the
    account's greeks at the start in USD (``greeks``: ``delta_usd``, ``gamma_usd``,
    ``vega_usd``, see :func:`simulator.margin.option_setup.account_greeks_usd`), then its
    liquidation price in each asset at the start (``liq_prices``:
    :func:`liq_price_columns`)."""
    n = agg.n
    n_acc = book.n_accounts
    mean = agg.pnl_sum / n
    var_pnl = np.maximum(agg.pnl_sumsq / n - mean**2, 0.0) * (n / max(n - 1, 1))
    liq = agg.liquidated / n
    bank = agg.bankrupt / n
    liq_se = np.sqrt(liq * (1 - liq) / n)
    bank_se = np.sqrt(bank * (1 - bank) / n)
    if agg.counts is not None:  # rare-event mode: mean(w 1{...}) and sd(w 1{...}) / sqrt(n)
        liq, bank = agg.counts[:, 0] / n, agg.counts[:, 2] / n
        liq_se = np.sqrt(np.maximum(agg.counts[:, 1] / n - liq**2, 0.0) / max(n - 1, 1))
        bank_se = np.sqrt(np.maximum(agg.counts[:, 3] / n - bank**2, 0.0) / max(n - 1, 1))
    adl_count = agg.adl if agg.adl is not None else np.zeros(n_acc)
    adl = adl_count / n
    adl_se = np.sqrt(adl * (1 - adl) / n)
    if agg.counts is not None and agg.adl_counts is not None:  # rare-event mode
        adl = agg.adl_counts[:, 0] / n
        adl_se = np.sqrt(np.maximum(agg.adl_counts[:, 1] / n - adl**2, 0.0) / max(n - 1, 1))
    pnl_se = np.sqrt(var_pnl / n)
    if agg.spread:  # Sobol: the spread of the k chunk estimates, whose mean is the estimate
        liq_se, bank_se = _spread_se(agg, "liq", liq), _spread_se(agg, "bank", bank)
        pnl_se = _spread_se(agg, "pnl", mean)
        if "adl" in agg.chunk_sq:
            adl_se = _spread_se(agg, "adl", adl)
    tail_cols: dict[str, np.ndarray] = {}
    se_cols: dict[str, np.ndarray] = {}
    tail = risk.sorted_desc(agg.tail) if agg.mode == "exact" else None
    for i_level, level in enumerate(agg.levels):
        if tail is not None:
            est = np.array([risk.var_es_from_tail(tail[j], n, level) for j in range(n_acc)]
                           ).reshape(n_acc, 4)
            var, var_se, es, es_se = est.T
        else:
            var, es = agg.var_w[i_level] / n, agg.es_w[i_level] / n
            var_se = np.sqrt(agg.var_se2[i_level]) / n
            es_se = np.sqrt(agg.es_se2[i_level]) / n
            if agg.spread:
                var_se = _spread_se(agg, "var", var, i_level)
                es_se = _spread_se(agg, "es", es, i_level)
        suffix = risk.level_suffix(level)
        tail_cols[f"var_{suffix}"], tail_cols[f"es_{suffix}"] = var, es
        # an error that cannot be estimated (one loss in the tail) is null, not NaN
        se_cols[f"var_{suffix}_stderr"] = pa.array(var_se, from_pandas=True)
        se_cols[f"es_{suffix}_stderr"] = pa.array(es_se, from_pandas=True)
    first = {k: tail_cols.pop(k) for k in ("var_99", "es_99")}  # DESIGN.md's columns first
    return pa.table({
        "account_id": pa.array(book.account_ids).dictionary_encode(),
        "margin_mode": pa.array(np.where(book.account_isolated, "isolated", "cross")
                                ).dictionary_encode(),
        "liquidation_prob": liq,
        "bankruptcy_prob": bank,
        "mean_pnl": mean,
        **first,
        **tail_cols,
        "liquidation_prob_stderr": liq_se,
        "bankruptcy_prob_stderr": bank_se,
        "mean_pnl_stderr": pnl_se,
        **se_cols,
        "var_es_method": pa.array([agg.mode] * n_acc).dictionary_encode(),
        "adl_probability": adl,
        "adl_probability_stderr": adl_se,
        **(greeks or {}),
        **(liq_prices or {}),
    })


def _spread_se(agg: AccountTotals, name: str, mean: np.ndarray, level: int | None = None
               ) -> np.ndarray:
    """Standard error of the mean of ``agg.chunks`` equal chunks' estimates from their
    spread, ``sqrt(var / k)`` with the unbiased variance (``level``: a row of the levels)."""
    k = agg.chunks
    sq = agg.chunk_sq[name] if level is None else agg.chunk_sq[name][level]
    var = np.maximum(sq / k - mean**2, 0.0) * k / max(k - 1, 1)
    return np.sqrt(var / k)
