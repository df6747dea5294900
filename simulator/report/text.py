"""Human-readable summaries: the table ``marginsim run`` prints at the end."""

from __future__ import annotations

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
    if kind == "pct":
        return f"{100 * value:.2f}%"
    if kind == "usd":
        return f"{value:,.0f}"
    return f"{value:,.3f}"


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
    metrics = summary["metrics"]
    lines = [f"{summary.get('scenario', '')}: {summary.get('paths', 0):,} paths, "
             f"seed {summary.get('seed', '')}"]
    rows = []
    for key, label, kind in _ROWS:
        if key in metrics:
            m = metrics[key]
            rows.append((label, _fmt(m["estimate"], kind), "± " + _fmt(m["stderr"], kind)))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = max(len(r[2]) for r in rows)
    lines.append(f"  {'metric':<{w0}}  {'estimate':>{w1}}  {'(stderr)':>{w2}}")
    lines.extend(f"  {a:<{w0}}  {b:>{w1}}  {c:>{w2}}" for a, b, c in rows)
    return "\n".join(lines)
