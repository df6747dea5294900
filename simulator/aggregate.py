"""Per-account and venue-level estimates, built from chunk outputs in bounded memory.

Each chunk writes ``chunks/accounts-NNNNN.parquet``: per account, the number of paths on
which it was liquidated / bankrupt, the sum and sum of squares of its PnL, and either

- ``exact`` mode: its largest losses (``risk.tail_size`` of them, enough for the exact
  VaR/ES of the whole run and their standard errors), or
- ``batch`` mode: the chunk's own VaR/ES estimates and standard errors.

Exact mode is used while the merged tails of all accounts fit in
``simulation.account_tail_budget_mb``; beyond it (many paths x many accounts) the run's
VaR/ES per account is the path-weighted mean of the chunk estimates (batch means), whose
standard error combines the chunks' standard errors. Its bias is that of the empirical
quantile on one chunk, O(1 / chunk_paths). ``accounts.parquet`` says which mode was used.

The driver merges chunk files in chunk order, one at a time, so its memory does not grow
with the number of chunks, and the result does not depend on the order chunks finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import risk
from .book import Book
from .margin.engine import ReplayResult
from .scenario import Scenario

ALPHA = 0.99
#: memory for one block of the (paths x accounts) PnL matrix of a chunk
PNL_BLOCK_BYTES = 64 << 20


def tail_mode(n_paths: int, n_accounts: int, budget_mb: float) -> str:
    """``exact`` when the per-account loss tails of the whole run fit the budget."""
    need = risk.tail_size(n_paths, ALPHA) * n_accounts * 8
    return "exact" if need <= budget_mb * (1 << 20) else "batch"


def chunk_account_table(res: ReplayResult, acct_navk: np.ndarray, s0: np.ndarray, mode: str,
                        n_paths_total: int) -> pa.Table:
    """Per-account partial aggregates of one chunk (see the module notes)."""
    n_acc = acct_navk.shape[0]
    n = res.final_price.shape[0]
    pnl_sum = np.zeros(n_acc)
    pnl_sumsq = np.zeros(n_acc)
    keep = risk.tail_size(n_paths_total, ALPHA)
    tails: list[np.ndarray] = []
    var = np.zeros(n_acc)
    var_se = np.zeros(n_acc)
    es = np.zeros(n_acc)
    es_se = np.zeros(n_acc)
    block = max(1, PNL_BLOCK_BYTES // (8 * max(n, 1)))
    for start in range(0, n_acc, block):
        stop = min(n_acc, start + block)
        pnl = res.account_pnl(acct_navk, s0, start, stop)
        pnl_sum[start:stop] = pnl.sum(axis=0)
        pnl_sumsq[start:stop] = (pnl * pnl).sum(axis=0)
        losses = -pnl
        if mode == "exact":
            tails.append(risk.merge_tails(np.empty((0, stop - start)), losses, keep))
        else:
            for j in range(stop - start):
                var[start + j], var_se[start + j], es[start + j], es_se[start + j] = (
                    risk.var_es(losses[:, j], ALPHA))
    columns: dict[str, Any] = {
        "paths": pa.array(np.full(n_acc, n, dtype=np.int64)),
        "liquidated": pa.array(res.acct_liquidated),
        "bankrupt": pa.array(res.acct_bankrupt),
        "pnl_sum": pa.array(pnl_sum),
        "pnl_sumsq": pa.array(pnl_sumsq),
    }
    if mode == "exact":
        tail = np.concatenate(tails, axis=1) if tails else np.empty((0, n_acc))
        k = tail.shape[0]
        columns["loss_tail"] = pa.FixedSizeListArray.from_arrays(
            pa.array(np.ascontiguousarray(tail.T).reshape(-1)), k)
    else:
        columns.update({"var_99": var, "var_99_stderr": var_se, "es_99": es,
                        "es_99_stderr": es_se})
    return pa.table(columns)


@dataclass
class AccountTotals:
    """Per-account aggregates merged over chunks (in chunk order)."""

    mode: str
    n: int = 0
    liquidated: np.ndarray | None = None
    bankrupt: np.ndarray | None = None
    pnl_sum: np.ndarray | None = None
    pnl_sumsq: np.ndarray | None = None
    tail: np.ndarray | None = None
    var_w: np.ndarray | None = None
    var_se2: np.ndarray | None = None
    es_w: np.ndarray | None = None
    es_se2: np.ndarray | None = None

    def add(self, table: pa.Table, keep: int) -> None:
        """Merge one chunk's table."""
        col = {name: table.column(name).to_numpy() for name in
               ("liquidated", "bankrupt", "pnl_sum", "pnl_sumsq")}
        m = int(table.column("paths")[0].as_py()) if table.num_rows else 0
        if self.liquidated is None:
            self.liquidated, self.bankrupt = col["liquidated"].copy(), col["bankrupt"].copy()
            self.pnl_sum, self.pnl_sumsq = col["pnl_sum"].copy(), col["pnl_sumsq"].copy()
        else:
            self.liquidated += col["liquidated"]
            self.bankrupt += col["bankrupt"]
            self.pnl_sum += col["pnl_sum"]
            self.pnl_sumsq += col["pnl_sumsq"]
        self.n += m
        if self.mode == "exact":
            arr = table.column("loss_tail").combine_chunks()
            width = arr.type.list_size
            tail = arr.flatten().to_numpy().reshape(-1, width).T
            self.tail = tail if self.tail is None else risk.merge_tails(self.tail, tail, keep)
        else:
            parts = {k: table.column(k).to_numpy() for k in
                     ("var_99", "var_99_stderr", "es_99", "es_99_stderr")}
            if self.var_w is None:
                self.var_w, self.es_w = np.zeros_like(parts["var_99"]), np.zeros_like(
                    parts["es_99"])
                self.var_se2, self.es_se2 = np.zeros_like(self.var_w), np.zeros_like(self.es_w)
            self.var_w += m * parts["var_99"]
            self.es_w += m * parts["es_99"]
            self.var_se2 += (m * parts["var_99_stderr"]) ** 2
            self.es_se2 += (m * parts["es_99_stderr"]) ** 2


def merge_chunk_tables(paths: list[Path], mode: str, n_paths_total: int) -> AccountTotals:
    """Read chunk account tables one at a time, in the given (chunk) order, and merge."""
    totals = AccountTotals(mode=mode)
    keep = risk.tail_size(n_paths_total, ALPHA)
    for path in paths:
        totals.add(pq.read_table(path), keep)
    return totals


def accounts_table(book: Book, agg: AccountTotals) -> pa.Table:
    """Per-account estimates (``accounts.parquet``): losses are positive USD."""
    n = agg.n
    n_acc = book.n_accounts
    mean = agg.pnl_sum / n
    var_pnl = np.maximum(agg.pnl_sumsq / n - mean**2, 0.0) * (n / max(n - 1, 1))
    liq = agg.liquidated / n
    bank = agg.bankrupt / n
    if agg.mode == "exact":
        est = np.array([risk.var_es_from_tail(agg.tail[:, j], n, ALPHA) for j in range(n_acc)]
                       ).reshape(n_acc, 4)
        var99, var_se, es99, es_se = est.T
    else:
        var99, es99 = agg.var_w / n, agg.es_w / n
        var_se, es_se = np.sqrt(agg.var_se2) / n, np.sqrt(agg.es_se2) / n
    return pa.table({
        "account_id": pa.array(book.account_ids).dictionary_encode(),
        "margin_mode": pa.array(np.where(book.account_isolated, "isolated", "cross")
                                ).dictionary_encode(),
        "liquidation_prob": liq,
        "bankruptcy_prob": bank,
        "mean_pnl": mean,
        "var_99": var99,
        "es_99": es99,
        "liquidation_prob_stderr": np.sqrt(liq * (1 - liq) / n),
        "bankruptcy_prob_stderr": np.sqrt(bank * (1 - bank) / n),
        "mean_pnl_stderr": np.sqrt(var_pnl / n),
        "var_99_stderr": var_se,
        "es_99_stderr": es_se,
        "var_es_method": pa.array([agg.mode] * n_acc).dictionary_encode(),
    })


def summarise(out_dir: Path, scenario: Scenario) -> dict[str, Any]:
    """Venue-level estimates with standard errors, from the ``paths/`` dataset."""
    table = pq.read_table(out_dir / "paths", columns=[
        "n_liquidations", "liquidated_notional", "max_cascade_rounds", "bad_debt",
        "insurance_fund_end", "adl_notional", "socialised_loss", "fees", "fund_depleted",
        "first_liquidation_step"])
    col = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    metrics: dict[str, tuple[float, float]] = {}
    metrics["liquidation_prob"] = risk.prob_se(col["n_liquidations"] > 0)
    for name in ("n_liquidations", "liquidated_notional", "bad_debt", "max_cascade_rounds",
                 "adl_notional", "socialised_loss", "fees", "insurance_fund_end"):
        metrics[f"{name}_mean"] = risk.mean_se(col[name])
    var, var_se, es, es_se = risk.var_es(col["bad_debt"], ALPHA)
    metrics["bad_debt_var_99"] = (var, var_se)
    metrics["bad_debt_es_99"] = (es, es_se)
    metrics["insurance_fund_depletion_prob"] = risk.prob_se(col["fund_depleted"])
    metrics["bad_debt_prob"] = risk.prob_se(col["bad_debt"] > 0)
    metrics["adl_prob"] = risk.prob_se(col["adl_notional"] > 0)
    first = col["first_liquidation_step"]
    first = first[~np.isnan(first.astype(float))]
    metrics["first_liquidation_step_mean"] = risk.mean_se(first)
    return {
        "scenario": scenario.name,
        "paths": int(len(col["bad_debt"])),
        "seed": scenario.simulation.seed,
        "metrics": {k: {"estimate": _finite(v[0]), "stderr": _finite(v[1])}
                    for k, v in metrics.items()},
    }


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
