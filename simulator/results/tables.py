"""Arrow tables of a chunk's outputs (``paths/``, ``events/``, ``prices/``) and the schema
metadata every Parquet file of a run carries (see DESIGN.md for the columns)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from simulator.margin import codes
from simulator.margin.result import ReplayResult

#: the ``account_id`` of the backstop vault's sales in ``events/``
VAULT_ACCOUNT = "(vault)"


def file_metadata(digest: str, seed: int, version: str, **extra: Any) -> dict[bytes, bytes]:
    """Schema metadata stored in every Parquet file of a run."""
    meta = {"marginsim.scenario_sha256": digest, "marginsim.seed": str(seed),
            "marginsim.version": version}
    meta.update({f"marginsim.{k}": str(v) for k, v in extra.items()})
    return {k.encode(): v.encode() for k, v in meta.items()}


def paths_table(res: ReplayResult, first_path_id: int, symbols: tuple[str, ...],
                weight: np.ndarray | None = None, breaker: bool = False,
                vault: bool = False) -> pa.Table:
    """One row per path (see DESIGN.md, ``paths/``); ``weight`` the paths' likelihood
    ratios in rare-event mode (1.0 when not given); ``breaker``: the venue has a circuit
    breaker, whose ``breaker_trips`` and ``breaker_paused_steps`` come next (absent
    without one); ``vault``: the venue has a backstop vault, whose columns (``vault_*``)
    come last."""
    n = res.path_f.shape[0]
    first_step = res.path_i[:, codes.PI_FIRST_STEP]
    columns: dict[str, pa.Array] = {
        "path_id": pa.array(np.arange(first_path_id, first_path_id + n, dtype=np.int64)),
        "n_liquidations": pa.array(res.path_i[:, codes.PI_N_LIQUIDATIONS]),
        "liquidated_notional": pa.array(res.path_f[:, codes.PF_LIQUIDATED_NOTIONAL]),
        "max_cascade_rounds": pa.array(res.path_i[:, codes.PI_MAX_ROUNDS]),
        "bad_debt": pa.array(res.path_f[:, codes.PF_BAD_DEBT]),
        "insurance_fund_end": pa.array(res.path_f[:, codes.PF_FUND_END]),
        "adl_notional": pa.array(res.path_f[:, codes.PF_ADL_NOTIONAL]),
        "first_liquidation_step": pa.array(first_step, mask=first_step < 0, type=pa.int64()),
        "fees": pa.array(res.path_f[:, codes.PF_FEES]),
        "socialised_loss": pa.array(res.path_f[:, codes.PF_SOCIALISED]),
        "fund_depleted": pa.array(res.path_i[:, codes.PI_DEPLETED] > 0),
        "n_adl": pa.array(res.path_i[:, codes.PI_N_ADL]),
        "n_cascade_liquidations": pa.array(res.path_i[:, codes.PI_N_CASCADE]),
        "price_bounded": pa.array(res.path_i[:, codes.PI_PRICE_BOUNDED] > 0),
    }
    # NaN (no ADL fill) written as null, as every undefined figure of a run
    columns.update({name: pa.array(res.path_adl[:, j], from_pandas=True)
                    for j, name in enumerate(codes.ADL_PATH_COLUMNS)})
    for a, sym in enumerate(symbols):
        columns[f"min_price_{sym}"] = pa.array(res.min_price[:, a])
    for a, sym in enumerate(symbols):
        columns[f"final_price_{sym}"] = pa.array(res.final_price[:, a])
    columns["weight"] = pa.array(np.ones(n) if weight is None else weight, type=pa.float64())
    if breaker:
        columns["breaker_trips"] = pa.array(res.path_i[:, codes.PI_BREAKER_TRIPS])
        columns["breaker_paused_steps"] = pa.array(res.path_i[:, codes.PI_BREAKER_PAUSED])
    if vault:
        columns.update(vault_columns(res))
    return pa.table(columns)


def vault_columns(res: ReplayResult) -> dict[str, pa.Array]:
    """The backstop vault's per-path columns (docs/outputs.md): its PnL, largest drawdown
    and inventory left at the final marks (USD), and its take-overs."""
    return {
        "vault_pnl": pa.array(res.path_f[:, codes.PF_VAULT_PNL]),
        "vault_drawdown": pa.array(res.path_f[:, codes.PF_VAULT_DRAWDOWN]),
        "vault_inventory_end_usd": pa.array(res.path_f[:, codes.PF_VAULT_INV_END]),
        "vault_takeovers": pa.array(res.path_i[:, codes.PI_VAULT_TAKEOVERS]),
    }


def _dictionary(indices: np.ndarray, names: tuple[str, ...] | list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)),
                                          pa.array(list(names), type=pa.string()))


#: the event kinds before issue #20: a part's ``kind`` dictionary lists these, and a later
#: kind only when the part has one (so the files of runs without them keep their bytes)
N_KINDS_BEFORE_20 = 6


def _kind_names(kind: np.ndarray) -> tuple[str, ...]:
    """The ``kind`` dictionary of an events part: every kind up to the last it uses."""
    n = max(N_KINDS_BEFORE_20, int(kind.max()) + 1 if len(kind) else 0)
    return codes.KIND_NAMES[:n]


def events_table(res: ReplayResult, first_path_id: int, account_ids: tuple[str, ...],
                 unit_account: np.ndarray, symbols: tuple[str, ...], rows: str = "all"
                 ) -> pa.Table:
    """One row per liquidation, backstop or ADL fill and per socialised loss (see DESIGN.md,
    ``events/``; docs/outputs.md). Asset ``-1`` in the kernel's records is ``USD``.

    ``rows`` (``simulation.events``): ``all``; ``liquidations``, only the liquidation and
    backstop fills; ``none``, no row (the same columns)."""
    ei, ef = res.ev_i, res.ev_f
    if rows == "none":
        ei, ef = ei[:0], ef[:0]
    elif rows == "liquidations":
        kind = ei[:, codes.EI_KIND]
        keep = (kind == codes.KIND_LIQUIDATION) | (kind == codes.KIND_BACKSTOP)
        ei, ef = ei[keep], ef[keep]
    asset = np.where(ei[:, codes.EI_ASSET] < 0, len(symbols), ei[:, codes.EI_ASSET])
    unit = ei[:, codes.EI_UNIT]
    if (unit < 0).any():  # the backstop vault's sales (unit -1): account VAULT_ACCOUNT
        account_ids = (*account_ids, VAULT_ACCOUNT)
        accounts = np.where(unit < 0, len(account_ids) - 1,
                            unit_account[np.maximum(unit, 0)])
    else:
        accounts = unit_account[unit]
    # per part dictionary: only the accounts that appear, so parts stay small (np.unique's
    # sorted values and inverse, without its sort: account numbers are 0 .. n_accounts - 1)
    present = np.zeros(len(account_ids), dtype=bool)
    present[accounts] = True
    used = np.flatnonzero(present)
    local = (np.cumsum(present) - 1)[accounts]
    return pa.table({
        "path_id": pa.array(ei[:, codes.EI_PATH] + first_path_id),
        "step": pa.array(ei[:, codes.EI_STEP]),
        "round": pa.array(ei[:, codes.EI_ROUND]),
        "account_id": _dictionary(local.reshape(-1), [account_ids[j] for j in used]),
        "kind": _dictionary(ei[:, codes.EI_KIND], _kind_names(ei[:, codes.EI_KIND])),
        "symbol": _dictionary(asset, (*symbols, "USD")),
        "qty": pa.array(ef[:, codes.EF_QTY]),
        "mark_price": pa.array(ef[:, codes.EF_MARK]),
        "exec_price": pa.array(ef[:, codes.EF_EXEC]),
        "notional": pa.array(ef[:, codes.EF_NOTIONAL]),
        "fee": pa.array(ef[:, codes.EF_FEE]),
        "bad_debt": pa.array(ef[:, codes.EF_BAD_DEBT]),
        "instrument": _dictionary(ei[:, codes.EI_INSTRUMENT], codes.INSTRUMENT_NAMES),
        "fund_paid": pa.array(ef[:, codes.EF_FUND_PAID]),
    })


def prices_table(marks: np.ndarray, first_path_id: int, symbols: tuple[str, ...]) -> pa.Table:
    """One row per path and step of saved price paths: ``path_id``, ``step``, then one column
    per symbol (``prices/``: the marks, impact included; ``prices_no_impact/``: the
    exogenous paths)."""
    n, n_steps, _ = marks.shape
    columns: dict[str, pa.Array] = {
        "path_id": pa.array(np.repeat(np.arange(first_path_id, first_path_id + n), n_steps)),
        "step": pa.array(np.tile(np.arange(n_steps, dtype=np.int64), n)),
    }
    for a, sym in enumerate(symbols):
        columns[sym] = pa.array(marks[:, :, a].reshape(-1))
    return pa.table(columns)
