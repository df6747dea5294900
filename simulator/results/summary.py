"""``summary.json``: the run's headline metrics with standard errors, read from its
``paths/`` table (VaR/ES, probabilities, means and distribution quantiles)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from simulator.config.limits import PRICE_CAP_RATIO, PRICE_FLOOR_RATIO
from simulator.config.rare import parse_event
from simulator.config.scenario import Scenario
from simulator.results import risk

#: venue quantities (per path, USD) that get VaR / ES at every level of ``risk_levels``
TAIL_METRICS = ("bad_debt", "insurance_fund_draw", "liquidated_notional", "adl_notional",
                "n_liquidations")


#: the ``paths/`` ADL columns the pooled ADL figures read
ADL_COLUMNS = ("adl_covered", "adl_leverage_mean", "adl_leverage_median", "adl_pnl_mean",
               "adl_in_profit_share")

#: the backstop vault's columns of ``paths/`` (a venue with ``backstop_ratio > 0``)
VAULT_COLUMNS = ("vault_pnl", "vault_drawdown", "vault_inventory_end_usd", "vault_takeovers")

#: rare-event mode: fewer effective paths in the event than this earn a warning
RELIABLE_ESS = 100

#: quantiles of the time to the first liquidation and of the cascade depth
DISTRIBUTION_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def summarise(out_dir: Path, scenario: Scenario,
              rare: dict[str, Any] | None = None) -> dict[str, Any]:
    """Venue-level estimates with standard errors, from the ``paths/`` dataset.

    Every metric is ``{"estimate", "stderr"}`` (see :mod:`simulator.results.risk` for the
    estimators). Besides the means and probabilities: VaR and ES of the bad debt, the
    insurance fund's draw (what it paid out: fund at the start + fees - fund at the end),
    the liquidated notional (*liquidations at risk*), the ADL notional and the number of
    liquidations at every level of ``simulation.risk_levels`` (``NAME_var_99``,
    ``NAME_es_999``, ...); the cascade share (liquidations in a step's later rounds, brought
    below maintenance by the forced sales of its earlier rounds, over all liquidations);
    quantiles of the first liquidation's step (paths with one) and of the cascade depth;
    with a circuit breaker, the means of ``breaker_trips`` and ``breaker_paused_steps`` and
    the probability of a trip.
    ``distributions`` holds the cascade-depth histogram and the quantiles' table,
    ``price_bounds`` the price bounds of :mod:`simulator.config.limits` and the number of
    paths on which a price reached one (the ``paths/`` table is read once for all of it).

    Rare-event mode (``rare``, the tilt's record, :meth:`simulator.rare.Tilt.record`):
    every estimate is the importance-sampling one, weighted by the ``weight`` column
    (:mod:`simulator.results.risk`, "weighted"); the histogram holds estimated
    probabilities instead of counts; ``rare_event`` holds the method, the event, its
    probability, the effective sample size and the tilt.
    """
    names = ["n_liquidations", "liquidated_notional", "max_cascade_rounds", "bad_debt",
             "insurance_fund_end", "adl_notional", "socialised_loss", "fees", "fund_depleted",
             "first_liquidation_step", "n_cascade_liquidations", "price_bounded", "n_adl",
             *ADL_COLUMNS]
    vault = scenario.venue.backstop_ratio > 0.0 and not scenario.venue.lending
    if vault:  # the backstop vault's columns (docs/outputs.md)
        names += list(VAULT_COLUMNS)
    condition = None
    if rare is not None:
        condition = parse_event(str(rare["event"]), scenario.market.symbols, scenario.source)
        names = list(dict.fromkeys([*names, condition.column, "weight"]))
    breaker = scenario.venue.circuit_breaker_band > 0.0
    if breaker:
        names += ["breaker_trips", "breaker_paused_steps"]
    sobol = scenario.simulation.variance_reduction == "sobol"
    if sobol:
        names.append("path_id")
    table = pq.read_table(out_dir / "paths", columns=names)
    col = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    w = col["weight"] if rare is not None else None
    est = (_ChunkSpread(col["path_id"] // scenario.simulation.chunk_paths) if sobol
           else _Estimators(w))
    col["insurance_fund_draw"] = np.maximum(
        scenario.venue.insurance_fund_usd + col["fees"] - col["insurance_fund_end"], 0.0)
    metrics: dict[str, tuple[float, float]] = {}
    metrics["liquidation_prob"] = est.prob(col["n_liquidations"] > 0)
    for name in ("n_liquidations", "liquidated_notional", "bad_debt", "max_cascade_rounds",
                 "adl_notional", "socialised_loss", "fees", "insurance_fund_end",
                 "insurance_fund_draw", "n_cascade_liquidations"):
        metrics[f"{name}_mean"] = est.mean(col[name])
    for level in scenario.simulation.risk_levels:
        suffix = risk.level_suffix(level)
        for name in TAIL_METRICS:
            var, var_se, es, es_se = est.var_es(col[name].astype(float), level)
            metrics[f"{name}_var_{suffix}"] = (var, var_se)
            metrics[f"{name}_es_{suffix}"] = (es, es_se)
    if vault:
        metrics.update(_vault_metrics(est, col, scenario.simulation.risk_levels))
    metrics["insurance_fund_depletion_prob"] = est.prob(col["fund_depleted"])
    metrics["insurance_fund_draw_prob"] = est.prob(col["insurance_fund_draw"] > 0)
    metrics["bad_debt_prob"] = est.prob(col["bad_debt"] > 0)
    metrics["adl_prob"] = est.prob(col["adl_notional"] > 0)
    metrics["cascade_share"] = est.ratio(col["n_cascade_liquidations"], col["n_liquidations"])
    metrics["cascade_prob"] = est.prob(col["n_cascade_liquidations"] > 0)
    metrics.update(_adl_metrics(col, est))
    if breaker:  # the circuit breaker's (absent without one: older summaries hold)
        metrics["breaker_trips_mean"] = est.mean(col["breaker_trips"])
        metrics["breaker_paused_steps_mean"] = est.mean(col["breaker_paused_steps"])
        metrics["breaker_trip_prob"] = est.prob(col["breaker_trips"] > 0)
    first = col["first_liquidation_step"]
    has_first = ~np.isnan(first.astype(float))
    w_first = None if w is None else w[has_first]
    first = first[has_first].astype(float)
    if sobol:  # a ratio over all paths: the chunks' spread gives its error
        metrics["first_liquidation_step_mean"] = est.ratio(
            np.nan_to_num(col["first_liquidation_step"].astype(float)), has_first.astype(float))
    elif w is None:
        metrics["first_liquidation_step_mean"] = risk.mean_se(first)
    else:
        metrics["first_liquidation_step_mean"] = risk.wratio_se(first, np.ones_like(first),
                                                                w_first)
    depth = col["max_cascade_rounds"].astype(float)
    quantiles: dict[str, dict[str, float | None]] = {}
    for q in DISTRIBUTION_QUANTILES:
        tag = f"p{round(100 * q):02d}"
        for name, x, wx in (("first_liquidation_step", first, w_first),
                            ("max_cascade_rounds", depth, w)):
            if sobol:
                q_est, q_se = est.quantile(x, q, has_first if name.startswith("first") else None)
            elif wx is None:
                q_est, q_se = risk.quantile_se(x, q)
            else:
                q_est, q_se = risk.wquantile_se(x, wx, q)
            metrics[f"{name}_{tag}"] = (q_est, q_se)
            quantiles.setdefault(name, {})[tag] = _finite(q_est)
    values, counts = np.unique(col["max_cascade_rounds"], return_counts=True)
    if w is None:
        histogram: dict[str, float] = {str(int(v)): int(c) for v, c in zip(values, counts,
                                                                            strict=True)}
    else:  # estimated probabilities: counts of tilted paths mean nothing
        histogram = {str(int(v)): float(w[col["max_cascade_rounds"] == v].sum() / w.size)
                     for v in values}
    out = {
        "scenario": scenario.name,
        "paths": int(len(col["bad_debt"])),
        "seed": scenario.simulation.seed,
        "risk_levels": list(scenario.simulation.risk_levels),
        "metrics": {k: {"estimate": _finite(v[0]), "stderr": _finite(v[1])}
                    for k, v in metrics.items()},
        "distributions": {
            "max_cascade_rounds": histogram,
            "quantiles": quantiles,
            "paths_with_a_liquidation": int(first.size),
        },
        "price_bounds": {"floor_ratio": PRICE_FLOOR_RATIO, "cap_ratio": PRICE_CAP_RATIO,
                         "paths_bounded": int(np.count_nonzero(col["price_bounded"]))},
    }
    if sobol:
        out["variance_reduction"] = {"method": "sobol", "scrambles": est.k,
                                     "stderr_from": "the spread of the chunk estimates"}
    if rare is not None:
        hit = condition.holds(col[condition.column].astype(float))
        p, p_se = risk.wprob_se(hit, w)
        out["metrics"]["rare_event_prob"] = {"estimate": _finite(p), "stderr": _finite(p_se)}
        out["rare_event"] = {
            **rare,
            "probability": {"estimate": _finite(p), "stderr": _finite(p_se)},
            "relative_stderr": _finite(p_se / p) if p > 0 else None,
            "paths_in_event": int(hit.sum()),
            "effective_sample_size": risk.effective_sample_size(w),
            "effective_sample_size_in_event": risk.effective_sample_size(w[hit]),
            "mean_weight": float(w.mean()),
        }
        ess = out["rare_event"]["effective_sample_size_in_event"]
        if ess < RELIABLE_ESS:
            out["rare_event"]["warning"] = (
                f"only {ess:,.0f} effective paths in the event (fewer than {RELIABLE_ESS}): "
                "its probability and error may be unreliable; raise simulation.paths (or "
                "simulation.rare_pilot_paths for a better tilt)")
    return out


def _adl_metrics(col: dict[str, np.ndarray], est: Any) -> dict[str, tuple[float, float]]:
    """The pooled ADL figures (ratio estimators over paths, ``docs/outputs.md``):
    ``adl_overshoot`` = sum of ADL notional / sum of bad debt ADL covered; the mean over
    ADL fills of the ADL'd units' leverage, unrealised PnL and share in profit (each path's
    mean weighted by its ADL fills; for the leverage exact when no ADL'd unit had equity
    <= 0, whose fills have no leverage); ``adl_leverage_median_mean``, the mean over paths
    with ADL of their median leverage (not a pooled median); ``adl_covered_mean``."""
    fills = col["n_adl"].astype(float)
    out = {"adl_covered_mean": est.mean(col["adl_covered"]),
           "adl_overshoot": est.ratio(col["adl_notional"], col["adl_covered"])}
    for metric, name in (("adl_leverage_mean", "adl_leverage_mean"),
                         ("adl_pnl_mean", "adl_pnl_mean"),
                         ("adl_in_profit_share", "adl_in_profit_share")):
        x = col[name].astype(float)
        has = np.isfinite(x)
        out[metric] = est.ratio(np.where(has, x * fills, 0.0), np.where(has, fills, 0.0))
    median = col["adl_leverage_median"].astype(float)
    has = np.isfinite(median)
    out["adl_leverage_median_mean"] = est.ratio(np.where(has, median, 0.0), has.astype(float))
    return out


class _Estimators:
    """The plain estimators, or their importance-sampling forms with weights ``w``."""

    def __init__(self, w: np.ndarray | None) -> None:
        self.w = w

    def mean(self, x: np.ndarray) -> tuple[float, float]:
        return risk.mean_se(x) if self.w is None else risk.wmean_se(x, self.w)

    def prob(self, flags: np.ndarray) -> tuple[float, float]:
        return risk.prob_se(flags) if self.w is None else risk.wprob_se(flags, self.w)

    def var_es(self, x: np.ndarray, level: float) -> tuple[float, float, float, float]:
        return risk.var_es(x, level) if self.w is None else risk.wvar_es(x, self.w, level)

    def ratio(self, y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
        return risk.ratio_se(y, x) if self.w is None else risk.wratio_se(y, x, self.w)


class _ChunkSpread:
    """Randomised QMC: the estimate over all paths, its standard error the spread of the
    ``k`` chunks' own estimates (independent scrambles of equal size), ``sd / sqrt(k)``.
    ``chunk`` (each path's chunk) is non-decreasing: the ``paths/`` parts are read in
    order."""

    def __init__(self, chunk: np.ndarray) -> None:
        self.chunk = chunk
        self.k = int(np.unique(chunk).size)

    @staticmethod
    def _groups(chunk: np.ndarray, *cols: np.ndarray) -> list[tuple[np.ndarray, ...]]:
        cuts = np.flatnonzero(np.diff(chunk)) + 1
        return list(zip(*(np.split(c, cuts) for c in cols), strict=True))

    @staticmethod
    def _se(parts: list[float]) -> float:
        x = np.asarray(parts, dtype=float)
        x = x[np.isfinite(x)]
        return float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else math.nan

    def mean(self, x: np.ndarray) -> tuple[float, float]:
        x = np.asarray(x, dtype=float)
        return float(x.mean()), self._se([g[0].mean() for g in self._groups(self.chunk, x)])

    def prob(self, flags: np.ndarray) -> tuple[float, float]:
        return self.mean(np.asarray(flags, dtype=bool).astype(float))

    def var_es(self, x: np.ndarray, level: float) -> tuple[float, float, float, float]:
        var, _, es, _ = risk.var_es(x, level)
        parts = [risk.var_es(g[0], level) for g in self._groups(self.chunk, x)]
        return var, self._se([p[0] for p in parts]), es, self._se([p[2] for p in parts])

    def ratio(self, y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
        y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
        est = float(y.sum() / x.sum()) if x.sum() else math.nan
        parts = [a.sum() / b.sum() if b.sum() else math.nan
                 for a, b in self._groups(self.chunk, y, x)]
        return est, self._se(parts)

    def quantile(self, x: np.ndarray, q: float, subset: np.ndarray | None
                 ) -> tuple[float, float]:
        chunk = self.chunk if subset is None else self.chunk[subset]
        parts = [risk.quantile_se(g[0], q)[0] for g in self._groups(chunk, x)]
        return risk.quantile_se(x, q)[0], self._se(parts)


def _vault_metrics(est: Any, col: dict[str, np.ndarray], levels: tuple[float, ...]
                   ) -> dict[str, tuple[float, float]]:
    """The backstop vault's metrics: the means of its columns, the probability that it
    loses, and VaR / ES of its loss (``-vault_pnl``) and of its drawdown at every level."""
    metrics = {f"{name}_mean": est.mean(col[name].astype(float)) for name in VAULT_COLUMNS}
    metrics["vault_loss_prob"] = est.prob(col["vault_pnl"] < 0.0)
    tails = {"vault_loss": -col["vault_pnl"].astype(float),
             "vault_drawdown": col["vault_drawdown"].astype(float)}
    for level in levels:
        suffix = risk.level_suffix(level)
        for name, x in tails.items():
            var, var_se, es, es_se = est.var_es(x, level)
            metrics[f"{name}_var_{suffix}"] = (var, var_se)
            metrics[f"{name}_es_{suffix}"] = (es, es_se)
    return metrics


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
