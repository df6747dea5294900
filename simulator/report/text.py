"""Human-readable summaries: the headline table ``marginsim run`` prints at the end, as text
(:func:`summary_table`) and as an HTML ``<table>`` (:func:`headline_html`, shown at the top
of ``report.html`` and by :class:`~simulator.execution.runner.RunResult` in a notebook).

Both forms show the same rows (:func:`headline_rows`) with the same number formats.
"""

from __future__ import annotations

import html
import math
from typing import Any

#: (metric, label, format) in display order.
_ROWS = (
    ("liquidation_prob", "P(any liquidation)", "pct"),
    ("n_liquidations_mean", "liquidations per path", "num"),
    ("liquidated_notional_mean", "liquidated notional (USD)", "usd"),
    ("liquidated_notional_var_99", "liquidations at risk 99% (USD)", "usd"),
    ("max_cascade_rounds_mean", "deepest cascade (rounds)", "num"),
    ("cascade_share", "share caused by the cascade", "pct"),
    ("first_liquidation_step_p50", "first liquidation, median step", "num"),
    ("bad_debt_prob", "P(bad debt)", "pct"),
    ("bad_debt_mean", "bad debt, mean (USD)", "usd"),
    ("bad_debt_var_99", "bad debt VaR 99% (USD)", "usd"),
    ("bad_debt_es_99", "bad debt ES 99% (USD)", "usd"),
    ("insurance_fund_depletion_prob", "P(insurance fund exhausted)", "pct"),
    ("insurance_fund_end_mean", "insurance fund at end (USD)", "usd"),
    ("insurance_fund_draw_es_99", "insurance fund draw ES 99% (USD)", "usd"),
    ("adl_notional_mean", "ADL notional (USD)", "usd"),
    ("socialised_loss_mean", "socialised loss (USD)", "usd"),
)


def _fmt(value: float | None, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)  # not a number: shown as it is
    if kind == "pct":
        if 0 < abs(value) < 1e-3:  # a rare event's probability: significant digits
            return f"{100 * value:.3g}%"
        return f"{100 * value:.2f}%"
    if kind == "usd":
        return f"{value:,.0f}"
    return f"{value:,.3f}"


def _title(summary: dict[str, Any]) -> str:
    title = (f"{summary.get('scenario', '')}: {summary.get('paths', 0):,} paths, "
             f"seed {summary.get('seed', '')}")
    rare = summary.get("rare_event")
    if isinstance(rare, dict):
        ess = rare.get("effective_sample_size_in_event")
        title += (f"; importance sampling towards {rare.get('event')}"
                  f" ({rare.get('paths_in_event', 0):,} paths in it, effective sample "
                  f"size {ess:,.0f})" if isinstance(ess, int | float) else "")
    return title


def _headline(summary: dict[str, Any]) -> list[tuple[str, str, str, Any, Any]]:
    """(metric, label, kind, estimate, stderr) of the headline metrics in ``summary``."""
    metrics = summary["metrics"]
    rows = []
    spec = list(_ROWS)
    rare = summary.get("rare_event")
    if isinstance(rare, dict) and "rare_event_prob" in metrics:
        spec.insert(0, ("rare_event_prob", f"P({rare.get('event')})", "pct"))
    for key, label, kind in spec:
        if key in metrics:
            m = metrics[key]
            est, se = (m.get("estimate"), m.get("stderr")) if isinstance(m, dict) else (m, None)
            rows.append((key, label, kind, est, se))
    return rows


def headline_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The rows of the headline table, formatted as the terminal shows them.

    Parameters
    ----------
    summary : dict
        As written to ``summary.json``.

    Returns
    -------
    list of (str, str, str)
        ``(label, estimate, "± stderr")`` for each headline metric that ``summary`` has,
        in display order.
    """
    return [(label, _fmt(est, kind), "± " + _fmt(se, kind))
            for _key, label, kind, est, se in _headline(summary)]


def summary_table(summary: dict[str, Any]) -> str:
    """Format ``summary.json`` contents as an aligned text table.

    Parameters
    ----------
    summary : dict
        As written to ``summary.json``.

    Returns
    -------
    str
    """
    lines = [_title(summary)]
    rows = headline_rows(summary)
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = max(len(r[2]) for r in rows)
    lines.append(f"  {'metric':<{w0}}  {'estimate':>{w1}}  {'(stderr)':>{w2}}")
    lines.extend(f"  {a:<{w0}}  {b:>{w1}}  {c:>{w2}}" for a, b, c in rows)
    rare = summary.get("rare_event")
    if isinstance(rare, dict) and rare.get("warning"):
        lines.append(f"  warning: {rare['warning']}")
    return "\n".join(lines)


def _value_attr(x: Any) -> str:
    """A ``data-value`` attribute holding the raw number (none for a missing value)."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return ""
    return f' data-value="{float(x)!r}"'


def headline_html(summary: dict[str, Any], table_id: str = "headline",
                  caption: bool = True) -> str:
    """The headline table of :func:`summary_table` as an HTML ``<table>``.

    Parameters
    ----------
    summary : dict
        As written to ``summary.json``.
    table_id : str
        The table's ``id``.
    caption : bool
        Whether to give the table a ``<caption>``: the scenario, paths and seed (the first
        line of :func:`summary_table`).

    Returns
    -------
    str
        A ``<table>`` with the columns metric, estimate and (stderr); every text is
        escaped and each number cell carries the raw value in ``data-value``. The strings
        shown are those of :func:`summary_table`.
    """
    rows = []
    for key, label, kind, est, se in _headline(summary):
        rows.append(f'<tr data-metric="{html.escape(key)}"><td>{html.escape(label)}</td>'
                    f'<td class="num"{_value_attr(est)}>{html.escape(_fmt(est, kind))}</td>'
                    f'<td class="num"{_value_attr(se)}>'
                    f"{html.escape('± ' + _fmt(se, kind))}</td></tr>")
    cap = f"<caption>{html.escape(_title(summary))}</caption>" if caption else ""
    return (f'<table id="{html.escape(table_id)}">{cap}\n<thead><tr><th>metric</th>'
            "<th>estimate</th><th>(stderr)</th></tr></thead>\n<tbody>\n" + "\n".join(rows)
            + "\n</tbody></table>")
