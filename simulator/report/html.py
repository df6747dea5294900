"""A self-contained HTML report of a run or sweep directory: ``DIR/report.html``.

The page embeds every figure as a base64 PNG (drawn with matplotlib's Agg canvas, no
pyplot and no global state), so it has no external files, no JavaScript and no network
access. Each figure is an ``<img>`` with an ``alt`` text and a ``data-figure="NAME"``
attribute:

- a run directory: first the table ``headline`` (the rows that ``marginsim run`` prints,
  :func:`simulator.report.text.headline_html`), then the figures ``loss_distribution``,
  ``liquidations_fan``, ``cascade_depth``, ``price_fan_<SYM>`` per asset, the table
  ``riskiest-accounts`` (``data-figure="riskiest_accounts"``) and last the table
  ``summary-metrics`` of every metric in ``summary.json``;
- a sweep directory (``sweep.parquet``): ``sweep_<metric>`` per key metric (a plot
  against the parameter for a 1-D grid, a heatmap for a 2-D grid) and the table
  ``sweep-table`` (drawn by :mod:`simulator.report.sweep_page`).

matplotlib is an optional dependency: ``pip install "marginsim[report]"``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from simulator.report._widgets import (
    _BLUE,
    _ORANGE,
    _RED,
    _floats,
    _fmt,
    _img,
    _is_missing,
    _metric_kind,
    _new_figure,
    _note,
    _num_cell,
    _read_json,
    _read_table,
    _schema_names,
    _table,
    _usd_axis,
)
from simulator.report.text import headline_html

#: Paths of ``events/`` read for the liquidations fan (the first ones by ``path_id``).
MAX_EVENT_PATHS = 2000
#: Accounts in the riskiest-accounts table.
TOP_ACCOUNTS = 20
#: Quantiles of the fan charts: outer band, inner band, median.
FAN_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)








































def _fan(ax: Any, x: np.ndarray, values: np.ndarray, color: str, label: str,
         outline: bool = False, steps: bool = False) -> None:
    """Quantile bands (5-95%, 25-75%) and the median of ``values`` (paths × steps).

    With ``outline`` the bands are drawn as dashed lines (5%, 95%) and a dashed median, so
    that a second fan can be laid over a filled one and both stay readable.
    """
    q = np.nanquantile(values, FAN_QUANTILES, axis=0)
    drawstyle = "steps-post" if steps else "default"
    if outline:
        ax.plot(x, q[0], color=color, lw=1.0, ls=":", drawstyle=drawstyle,
                label=f"{label}: 5% and 95%")
        ax.plot(x, q[4], color=color, lw=1.0, ls=":", drawstyle=drawstyle)
        ax.plot(x, q[2], color=color, lw=1.8, ls="--", drawstyle=drawstyle,
                label=f"{label}: median")
        return
    where = "post" if steps else None
    ax.fill_between(x, q[0], q[4], color=color, alpha=0.15, lw=0, step=where,
                    label=f"{label}: 5-95%")
    ax.fill_between(x, q[1], q[3], color=color, alpha=0.35, lw=0, step=where,
                    label=f"{label}: 25-75%")
    ax.plot(x, q[2], color=color, lw=1.8, drawstyle=drawstyle, label=f"{label}: median")


def _step_label(manifest: dict[str, Any]) -> str:
    sim = (manifest.get("scenario_resolved") or {}).get("simulation") or {}
    steps, days = sim.get("steps"), sim.get("horizon_days")
    if steps and days:
        minutes = days * 24 * 60 / steps
        size = f"{minutes:g} min" if minutes < 120 else f"{minutes / 60:g} h"
        return f"step (1 step = {size})"
    return "step"


def _bins(values: np.ndarray, n: int) -> np.ndarray:
    """``n`` bin edges over ``values``; when they are all equal, 11 bins of ±5% around them."""
    if values.size == 0:
        return np.linspace(0.0, 1.0, n + 1)
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= 1e-9 * max(1.0, abs(lo), abs(hi)):
        width = max(0.05 * abs(lo), 1.0)
        return np.linspace(lo - width, lo + width, 12)
    return np.linspace(lo, hi, n + 1)


def _loss_distribution(paths: pa.Table, metrics: dict[str, Any]) -> str:
    loss = _floats(paths, "bad_debt")
    loss = loss[np.isfinite(loss)]
    fig = _new_figure()
    ax = fig.add_subplot()
    lines: list[str] = []
    ax.hist(loss, bins=_bins(loss, min(60, max(10, int(np.sqrt(loss.size))))), color=_BLUE,
            alpha=0.75, label=f"bad debt per path ({loss.size:,} paths)")
    zero_share = float(np.mean(loss <= 0)) if loss.size else 0.0
    if zero_share > 0.5:
        ax.set_yscale("log")
    for key, color, style, text in (("bad_debt_es_99", _RED, "-", "ES 99%"),
                                    ("bad_debt_var_99", _ORANGE, "--", "VaR 99%")):
        value = (metrics.get(key) or {}).get("estimate")
        if not _is_missing(value):
            lines.append(f"{text} = {_fmt(value, 'usd')}")
            ax.axvline(value, color=color, ls=style, lw=2, label=lines[-1])
    _usd_axis(ax)
    ax.set_xlabel("bad debt per path (USD)")
    ax.set_ylabel("paths" + (" (log scale)" if zero_share > 0.5 else ""))
    ax.set_title("Loss distribution: bad debt per path")
    ax.legend(loc="upper right")
    return _img(fig, "loss_distribution", "Histogram of the bad debt per path with the 99% VaR "
                "and ES marked as vertical lines",
                f"{100 * zero_share:.1f}% of the paths end without bad debt. Vertical lines: "
                + ("; ".join(lines) if lines else "none (no VaR or ES in summary.json)") + ".")


def _liquidations_fan(run_dir: Path, n_paths: int, manifest: dict[str, Any]) -> str:
    n = min(n_paths, MAX_EVENT_PATHS)
    if n <= 0 or not (run_dir / "events").is_dir():
        return _note("No events/ dataset (or no paths) in this run directory: no fan chart.")
    path_id = step = np.zeros(0, dtype=np.int64)
    if {"path_id", "step", "kind"} <= set(_schema_names(run_dir / "events")):
        events = _read_table(run_dir / "events", ["path_id", "step"], filter=(
            (ds.field("path_id") < n) & (ds.field("kind") == "liquidation")))
        assert events is not None
        path_id = events["path_id"].to_numpy().astype(np.int64)
        step = events["step"].to_numpy().astype(np.int64)
    steps = ((manifest.get("scenario_resolved") or {}).get("simulation") or {}).get("steps")
    last = int(max(steps or 0, step.max() if step.size else 0, 1))
    counts = np.zeros((n, last + 1), dtype=np.int64)
    np.add.at(counts, (path_id, step), 1)
    cumulative = np.cumsum(counts, axis=1)
    fig = _new_figure()
    ax = fig.add_subplot()
    _fan(ax, np.arange(last + 1), cumulative, _BLUE, "liquidation events", steps=True)
    ax.set_xlabel(_step_label(manifest))
    ax.set_ylabel("cumulative liquidation events per path")
    ax.set_title("Liquidations over time (quantiles across paths)")
    ax.legend(loc="best")
    return _img(fig, "liquidations_fan", "Fan chart of the cumulative number of liquidation "
                "events per path over steps: 5-95% and 25-75% bands and the median",
                f"The first {n:,} of {n_paths:,} paths; one event is one events/ row with "
                "kind = liquidation (one per liquidated position).")


def _cascade_depth(paths: pa.Table) -> str:
    depth = _floats(paths, "max_cascade_rounds")
    depth = depth[np.isfinite(depth)].astype(np.int64)
    counts = np.bincount(depth) if depth.size else np.zeros(1, dtype=np.int64)
    fig = _new_figure(7.0, 3.8)
    ax = fig.add_subplot()
    ax.bar(np.arange(counts.size), counts, color=_BLUE, width=0.8,
           label=f"paths ({depth.size:,})")
    ax.set_xticks(np.arange(counts.size))
    ax.set_xlabel("deepest cascade on the path (rounds in one step)")
    ax.set_ylabel("paths")
    ax.set_title("Cascade depth")
    ax.legend(loc="upper right")
    return _img(fig, "cascade_depth", "Bar chart of the number of paths by their deepest "
                "liquidation cascade (max_cascade_rounds)")


def _price_fans(run_dir: Path, manifest: dict[str, Any], symbols: list[str]) -> list[str]:
    prices = _read_table(run_dir / "prices")
    if prices is None or prices.num_rows == 0:
        parts = [_note("This run was made without --save-prices, so there are no price "
                       "paths: the figures show the distribution of each asset's lowest and "
                       "final price from paths/ instead.")]
        paths = _read_table(run_dir / "paths", [f"{p}_price_{s}" for s in symbols
                                                 for p in ("min", "final")])
        for sym in symbols:
            parts.append(_price_distribution(paths, sym))
        return parts
    free = _read_table(run_dir / "prices_no_impact")
    n_saved = np.unique(prices["path_id"].to_numpy()).size
    parts = []
    for sym in [c for c in prices.column_names if c not in ("path_id", "step")]:
        fig = _new_figure()
        ax = fig.add_subplot()
        drawn = 0
        for table, color, label, outline in ((prices, _BLUE, "with impact", False),
                                             (free, _ORANGE, "no impact", True)):
            if table is None or sym not in table.column_names:
                continue
            grid = _path_grid(table, sym)
            _fan(ax, np.arange(grid.shape[1]), grid, color, label, outline)
            drawn += 1
        ax.set_xlabel(_step_label(manifest))
        ax.set_ylabel(f"{sym} mark price (USD)")
        _usd_axis(ax, "y")
        ax.set_title(f"{sym} price paths (quantiles across {n_saved:,} saved paths)")
        ax.legend(loc="best", fontsize="small")
        both = drawn == 2
        parts.append(_img(fig, f"price_fan_{sym}", f"Fan chart of the {sym} mark price over "
                          "steps" + (", with and without market impact" if both else ""),
                          "" if both else "Marks include the impact of forced sales; the run "
                          "did not save the exogenous (no-impact) price."))
    return parts


def _path_grid(table: pa.Table, column: str) -> np.ndarray:
    """``column`` of a ``prices/``-layout table as a (paths × steps + 1) array."""
    path_id = table["path_id"].to_numpy().astype(np.int64)
    step = table["step"].to_numpy().astype(np.int64)
    _, row = np.unique(path_id, return_inverse=True)
    grid = np.full((int(row.max()) + 1, int(step.max()) + 1), np.nan)
    grid[row, step] = _floats(table, column)
    return grid


def _price_distribution(paths: pa.Table | None, sym: str) -> str:
    fig = _new_figure()
    ax = fig.add_subplot()
    cols = [c for c in (f"min_price_{sym}", f"final_price_{sym}")
            if paths is not None and c in paths.column_names]
    values = {c: _floats(paths, c) for c in cols}
    values = {c: v[np.isfinite(v)] for c, v in values.items()}
    edges = _bins(np.concatenate([np.zeros(0), *values.values()]), 50)  # shared bins
    for col, v in values.items():
        low = col.startswith("min_")
        ax.hist(v, bins=edges, color=_RED if low else _BLUE, alpha=0.5,
                label=f"{'lowest' if low else 'final'} {sym} mark ({col})")
    _usd_axis(ax)
    ax.set_xlabel(f"{sym} price (USD)")
    ax.set_ylabel("paths")
    ax.set_title(f"{sym}: lowest and final mark per path")
    ax.legend(loc="best")
    return _img(fig, f"price_fan_{sym}", f"Histograms of the lowest and the final {sym} mark "
                "price per path")



def _summary_table(metrics: dict[str, Any]) -> str:
    rows = []
    for name, m in metrics.items():
        m = m if isinstance(m, dict) else {"estimate": m, "stderr": None}
        kind = _metric_kind(name)
        rows.append(f"<td><code>{html.escape(name)}</code></td>"
                    + _num_cell(m.get("estimate"), kind) + _num_cell(m.get("stderr"), kind))
    return _table("summary-metrics", ["metric", "estimate", "standard error"], rows)


def _riskiest_accounts(run_dir: Path) -> str:
    cols = ["account_id", "margin_mode", "es_99", "var_99", "liquidation_prob",
            "bankruptcy_prob", "mean_pnl"]
    accounts = _read_table(run_dir / "accounts.parquet", cols)
    if accounts is None or "es_99" not in accounts.column_names:
        return _note("No accounts.parquet with an es_99 column: no riskiest-accounts table.")
    # a stable sort: ties keep book order; NaN and null ES go last
    order = np.argsort(-_floats(accounts, "es_99"), kind="stable")
    top = accounts.take(pa.array(order[:TOP_ACCOUNTS])).to_pylist()
    header = ["rank"] + [c for c in cols if c in accounts.column_names]
    rows = []
    for rank, acc in enumerate(top, 1):
        cells = [f'<td class="num">{rank}</td>']
        for c in header[1:]:
            if c in ("account_id", "margin_mode"):
                cells.append(f"<td>{html.escape(str(acc[c]))}</td>")
            else:
                cells.append(_num_cell(acc[c], _metric_kind(c)))
        rows.append("".join(cells))
    return _table("riskiest-accounts", header, rows, figure="riskiest_accounts")



def _run_page(run_dir: Path) -> tuple[str, dict[str, str], str]:
    summary = _read_json(run_dir / "summary.json")
    manifest = (_read_json(run_dir / "manifest.json")
                if (run_dir / "manifest.json").is_file() else {})
    metrics = summary.get("metrics") or {}
    n_paths = int(summary.get("paths") or manifest.get("paths") or 0)
    scenario = str(summary.get("scenario") or manifest.get("scenario_name") or run_dir.name)
    resolved = manifest.get("scenario_resolved") or {}
    meta = {"scenario": scenario, "paths": f"{n_paths:,}", "seed": str(summary.get("seed", ""))}
    if resolved.get("description"):
        meta["description"] = str(resolved["description"])
    sim = resolved.get("simulation") or {}
    if sim.get("steps"):
        meta["steps"] = f"{sim['steps']:,} over {sim.get('horizon_days', '?')} days"
    for key in ("n_accounts", "created"):
        if key in manifest:
            meta[key.replace("n_", "")] = (f"{manifest[key]:,}" if isinstance(manifest[key], int)
                                           else str(manifest[key]))
    if (manifest.get("versions") or {}).get("marginsim"):
        meta["marginsim"] = str(manifest["versions"]["marginsim"])
    meta["directory"] = str(run_dir)

    path_cols = _schema_names(run_dir / "paths")
    symbols = [c.removeprefix("min_price_") for c in path_cols if c.startswith("min_price_")]
    paths = _read_table(run_dir / "paths", ["bad_debt", "max_cascade_rounds"])
    parts = ["<h2>Headline</h2>", "<p>The numbers that <code>marginsim run</code> prints: each "
             "estimate over the paths with its Monte Carlo standard error (±). Losses are "
             "positive USD. Every metric of <code>summary.json</code> is in the table at the "
             "end of the page.</p>",
             f'<div class="scroll">{headline_html({**summary, "metrics": metrics}, caption=False)}'
             "</div>"]
    rare = summary.get("rare_event")
    if isinstance(rare, dict):
        parts.append(_note(
            f"This run is importance-sampled towards {rare.get('event')} (rare-event "
            "mode): its paths were drawn from the tilted measure. The table's estimates are "
            "weighted back to the real one; the figures below show the paths as drawn, "
            "unweighted, so they overstate the event. Weight the paths/ weight column to "
            "redraw them."))
    parts.append("<h2>Loss distribution</h2>")
    if paths is None:
        parts.append(_note("No paths/ dataset in this run directory."))
    else:
        parts.append(_loss_distribution(paths, metrics))
    parts += ["<h2>Liquidations over time</h2>", _liquidations_fan(run_dir, n_paths, manifest)]
    parts.append("<h2>Cascade depth</h2>")
    if paths is not None and "max_cascade_rounds" in paths.column_names:
        parts.append(_cascade_depth(paths))
    parts.append("<h2>Prices</h2>")
    parts += _price_fans(run_dir, manifest, symbols)
    parts += [f"<h2>Riskiest accounts</h2><p>The {TOP_ACCOUNTS} accounts with the largest 99% "
              "expected shortfall of their loss (<code>es_99</code>, USD).</p>",
              _riskiest_accounts(run_dir)]
    parts += ["<h2>All summary metrics</h2>", "<p>Every metric of <code>summary.json</code> "
              "with its Monte Carlo standard error. Losses are positive USD.</p>",
              _summary_table(metrics)]
    return f"marginsim report: {scenario}", meta, "\n".join(parts)


