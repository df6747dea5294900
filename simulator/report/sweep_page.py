"""The sweep page of ``marginsim report``: key metrics against the grid (a line with error
bars for a 1-D grid, heatmaps for a 2-D grid) and the sweep table. The page frame and the
drawing helpers are :mod:`simulator.report.html`'s.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from simulator.report._widgets import (
    _BLUE,
    _RED,
    _fmt,
    _img,
    _is_missing,
    _label,
    _metric_kind,
    _new_figure,
    _note,
    _num_cell,
    _read_json,
    _read_table,
    _table,
    _usd_axis,
)

#: Sweep metrics drawn as figures, when the sweep has them.
SWEEP_METRICS = ("liquidation_prob", "bad_debt_mean", "bad_debt_es_99", "n_liquidations_mean",
                 "insurance_fund_depletion_prob")
_NOT_GRID = {"point_dir", "meets_target"}
#: the figures of each family of venue policy keys (key prefixes), drawn and tabulated
#: besides :data:`SWEEP_METRICS` when a key of the family is swept
POLICY_METRICS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("venue.adl",), ("adl_notional_mean", "adl_overshoot", "adl_leverage_mean",
                      "adl_in_profit_share", "socialised_loss_mean")),
    (("venue.backstop_ratio", "venue.vault_"), ("vault_pnl_mean", "vault_drawdown_mean",
                                                "vault_inventory_end_usd_mean")),
    (("venue.circuit_breaker_",), ("breaker_trip_prob", "breaker_paused_steps_mean")),
    (("venue.mark_", "venue.collateral_price", "market.oracle"),
     ("liquidated_notional_mean", "max_cascade_rounds_mean")),
)


def sweep_metrics(keys: list[str], columns: Iterable[str],
                  base: tuple[str, ...] = SWEEP_METRICS) -> tuple[str, ...]:
    """The key metrics of a sweep over ``keys``: ``base``, then the figures of the policy
    families swept (:data:`POLICY_METRICS`), those among ``columns``."""
    names = list(base)
    for prefixes, metrics in POLICY_METRICS:
        if any(k.startswith(prefixes) for k in keys):
            names += [m for m in metrics if m not in names]
    present = set(columns)
    return tuple(m for m in names if m in present)


def grid_keys(run_dir: Path, columns: list[str]) -> list[str]:
    """The grid keys of a sweep directory (from ``sweep.json``) among ``columns``."""
    for name in ("sweep.json", "manifest.json"):
        if (run_dir / name).is_file():
            grid = _read_json(run_dir / name).get("grid")
            keys = list(grid) if isinstance(grid, dict | list) else []
            keys = [k for k in keys if isinstance(k, str) and k in columns]
            if keys:
                return keys
    return [c for c in columns if c not in _NOT_GRID and not c.endswith("_stderr")
            and f"{c}_stderr" not in columns]


def _axis_values(values: list[Any]) -> tuple[np.ndarray, list[str] | None]:
    """Numeric positions of grid values, and tick labels when they are not numbers."""
    try:
        return np.asarray(values, dtype=float), None
    except (TypeError, ValueError):
        return np.arange(len(values), dtype=float), [str(v) for v in values]


def _sweep_line(rows: list[dict[str, Any]], key: str, metric: str) -> str:
    points = sorted(rows, key=lambda r: (isinstance(r[key], str), r[key]))
    x, labels = _axis_values([r[key] for r in points])
    y = np.array([np.nan if _is_missing(r[metric]) else r[metric] for r in points], dtype=float)
    se = np.array([np.nan if _is_missing(r.get(f"{metric}_stderr")) else r[f"{metric}_stderr"]
                   for r in points], dtype=float)
    scale = 100.0 if _metric_kind(metric) == "pct" else 1.0
    fig = _new_figure(7.0, 4.0)
    ax = fig.add_subplot()
    ax.errorbar(x, y * scale, yerr=2 * np.nan_to_num(se) * scale, fmt="o-", color=_BLUE,
                ecolor=_RED, capsize=4, label=f"{metric} ± 2 standard errors")
    if labels is not None:
        ax.set_xticks(x, labels)
    ax.set_xlabel(key)
    ax.set_ylabel(_label(metric))
    if _metric_kind(metric) == "usd":
        _usd_axis(ax, "y")
    ax.set_title(f"{metric} against {key}")
    ax.legend(loc="best")
    return _img(fig, f"sweep_{metric}", f"{metric} against {key} with error bars of two "
                "standard errors")


def _sweep_heatmap(rows: list[dict[str, Any]], keys: list[str], metric: str) -> str:
    kx, ky = keys
    xs = sorted({r[kx] for r in rows}, key=lambda v: (isinstance(v, str), v))
    ys = sorted({r[ky] for r in rows}, key=lambda v: (isinstance(v, str), v))
    grid = np.full((len(ys), len(xs)), np.nan)
    for r in rows:
        if not _is_missing(r[metric]):
            grid[ys.index(r[ky]), xs.index(r[kx])] = r[metric]
    kind = _metric_kind(metric)
    scale = 100.0 if kind == "pct" else 1.0
    fig = _new_figure(7.0, 4.8)
    ax = fig.add_subplot()
    im = ax.imshow(grid * scale, origin="lower", aspect="auto", cmap="viridis")
    bar = fig.colorbar(im, ax=ax, label=_label(metric))
    if kind == "usd":
        _usd_axis(bar.ax, "y")
    ax.set_xticks(np.arange(len(xs)), [str(v) for v in xs])
    ax.set_yticks(np.arange(len(ys)), [str(v) for v in ys])
    finite = grid[np.isfinite(grid)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for (i, j), v in np.ndenumerate(grid):
        ax.text(j, i, _fmt(v, kind), ha="center", va="center", fontsize="small",
                color="black" if np.isfinite(v) and v > mid else "white")
    ax.set_xlabel(kx)
    ax.set_ylabel(ky)
    ax.set_title(f"{metric} over the grid")
    return _img(fig, f"sweep_{metric}", f"Heatmap of {metric} over {kx} and {ky}")


def sweep_page(run_dir: Path) -> tuple[str, dict[str, str], str]:
    """The title, the header facts and the body of a sweep directory's report."""
    table = _read_table(run_dir / "sweep.parquet")
    assert table is not None
    columns = table.column_names
    rows = table.to_pylist()
    keys = grid_keys(run_dir, columns)
    info = _read_json(run_dir / "sweep.json") if (run_dir / "sweep.json").is_file() else {}
    metrics = [c for c in columns if f"{c}_stderr" in columns]

    paths = None
    first_dir = run_dir / str(rows[0].get("point_dir") or "") if rows else None
    if first_dir is not None and (first_dir / "summary.json").is_file():
        point = _read_json(first_dir / "summary.json")
        paths = point.get("paths")
        info.setdefault("scenario", point.get("scenario"))
        info.setdefault("seed", point.get("seed"))
    scenario = str(info.get("scenario") or run_dir.name)
    meta = {"scenario": scenario, "paths": "n/a" if paths is None else f"{int(paths):,} per point",
            "seed": str(info.get("seed", "n/a")), "grid": ", ".join(keys) or "n/a",
            "points": f"{len(rows):,}", "directory": str(run_dir)}
    if info.get("threshold") is not None:
        meta["threshold"] = str(info["threshold"])

    parts = ["<h2>Key metrics across the grid</h2>"]
    shown = list(sweep_metrics(keys, columns))
    if not rows:
        parts.append(_note("sweep.parquet has no rows."))
    elif len(keys) == 1:
        parts.append("<p>Error bars are ±2 standard errors. The points share their random "
                     "numbers, so differences between them are mostly the parameter's.</p>")
        parts += [_sweep_line(rows, keys[0], m) for m in shown]
    elif len(keys) == 2:
        parts += [_sweep_heatmap(rows, keys, m) for m in shown]
    else:
        parts.append(_note(f"The grid has {len(keys)} keys ({', '.join(keys)}): figures are "
                           "drawn for 1-D and 2-D grids only; see the table below."))
    if rows and not shown:
        parts.append(_note("sweep.parquet has none of the key metrics: "
                           + ", ".join(SWEEP_METRICS)))

    header = keys + [c for c in ("point_dir", "meets_target") if c in columns] + metrics
    body = []
    for r in rows:
        cells = []
        for c in header:
            if c in metrics:
                kind = _metric_kind(c)
                text = f"{_fmt(r[c], kind)} ± {_fmt(r[f'{c}_stderr'], kind)}"
                raw = "" if _is_missing(r[c]) else f' data-value="{float(r[c])!r}"'
                cells.append(f'<td class="num"{raw}>{html.escape(text)}</td>')
            elif c in keys and not isinstance(r[c], str):
                cells.append(_num_cell(r[c], "num"))
            else:
                cells.append(f"<td>{html.escape(_fmt(r[c], 'num'))}</td>")
        body.append("".join(cells))
    parts += ["<h2>Sweep table</h2><p>One row per grid point: estimate ± standard error.</p>",
              _table("sweep-table", header, body)]
    return f"marginsim sweep report: {scenario}", meta, "\n".join(parts)
