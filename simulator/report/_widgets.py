"""Parts shared by the run and sweep pages: CSS, number formats, tables, figures and the
page frame."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from simulator.errors import MarginsimError

_USD_PREFIXES = ("bad_debt", "liquidated_notional", "adl_notional", "socialised_loss", "fees",
                 "insurance_fund_end", "insurance_fund_draw", "mean_pnl", "var_", "es_")


_BLUE, _ORANGE, _RED, _GREEN = "#1f77b4", "#ff7f0e", "#d62728", "#2ca02c"
_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { border-bottom: 2px solid #1f77b4; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: .2em 1.5em; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
table { border-collapse: collapse; margin: .5em 0 1.5em; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; }
th { background: #f0f4f8; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafafa; }
.scroll { overflow-x: auto; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: .9em; }
.note { background: #fff8e1; border-left: 4px solid #ffb300; padding: .4em .8em; }
code { background: #f3f3f3; padding: 0 .2em; }
"""


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; a file that is unreadable or holds no object is refused."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MarginsimError(f"{path}: cannot read: {exc}") from None
    if not isinstance(obj, dict):
        raise MarginsimError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _read_table(path: Path, columns: list[str] | None = None,
                filter: Any = None) -> pa.Table | None:
    """Read a Parquet file or dataset (``None`` when absent), only ``columns`` if given."""
    if not path.exists():
        return None
    try:
        if path.is_dir():
            dataset = ds.dataset(path, format="parquet")
            names = dataset.schema.names
            cols = None if columns is None else [c for c in columns if c in names]
            return dataset.to_table(columns=cols, filter=filter)
        names = pq.read_schema(path).names
        cols = None if columns is None else [c for c in columns if c in names]
        return pq.read_table(path, columns=cols)
    except (OSError, pa.ArrowException) as exc:
        raise MarginsimError(f"{path}: cannot read: {exc}") from None


def _schema_names(path: Path) -> list[str]:
    if not path.exists():
        return []
    try:
        return ds.dataset(path, format="parquet").schema.names
    except (OSError, pa.ArrowException) as exc:
        raise MarginsimError(f"{path}: cannot read: {exc}") from None


def _floats(table: pa.Table, name: str) -> np.ndarray:
    """A column as float64 with nulls as NaN."""
    col = pc.cast(table[name], pa.float64())
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=float)


def _is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def _metric_kind(name: str) -> str:
    """``pct``, ``usd`` or ``num``: how a summary metric (or account column) is shown."""
    base = name.removesuffix("_stderr")
    if base.endswith("_prob") or base == "cascade_share":
        return "pct"
    if base.startswith(_USD_PREFIXES):
        return "usd"
    return "num"


def _fmt(x: Any, kind: str) -> str:
    """Format a number: ``pct`` as a percentage, ``usd`` as dollars, ``num`` plainly."""
    if _is_missing(x):
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, str):
        return x
    x = float(x)
    if kind == "pct":
        return f"{100 * x:.2f}%"
    if kind == "usd":
        sign = "-" if x < 0 else ""
        return f"{sign}${abs(x):,.0f}" if abs(x) >= 100 else f"{sign}${abs(x):,.2f}"
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


def _usd_axis(ax: Any, axis: str = "x") -> None:
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _pos: _fmt(v, "usd"))
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(fmt)


def _label(name: str) -> str:
    kind = _metric_kind(name)
    unit = {"pct": " (%)", "usd": " (USD)", "num": ""}[kind]
    return name + unit


def _num_cell(x: Any, kind: str) -> str:
    raw = "" if _is_missing(x) or isinstance(x, str) else f' data-value="{float(x)!r}"'
    return f'<td class="num"{raw}>{html.escape(_fmt(x, kind))}</td>'


def _table(table_id: str, header: list[str], rows: list[str], figure: str = "") -> str:
    attr = f' data-figure="{figure}"' if figure else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "\n".join(f"<tr>{r}</tr>" for r in rows)
    return (f'<div class="scroll"><table id="{table_id}"{attr}>\n<thead><tr>{head}</tr></thead>'
            f"\n<tbody>\n{body}\n</tbody></table></div>")


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _new_figure(width: float = 8.0, height: float = 4.2) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _img(fig: Any, name: str, alt: str, caption: str = "") -> str:
    """Render ``fig`` to an embedded PNG ``<figure>`` with ``data-figure=name``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" '
            f'data-figure="{html.escape(name)}">{cap}</figure>')


def _page(title: str, meta: dict[str, str], body: str) -> str:
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>"
                    for k, v in meta.items())
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n<dl class=\"meta\">{items}</dl>\n{body}\n"
            "</body>\n</html>\n")
