"""The text of ``marginsim calibrate``: a :func:`simulator.calibration.fit.fit` result as a
``[market]`` block ready to paste into a scenario, with the fit's standard errors and the
per-asset values as TOML comments.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import numpy as np

from simulator.calibration.fit import DOF_BOUNDS, JUMP_LR_THRESHOLD, MODELS, FitError, fit
from simulator.errors import ScenarioError
from simulator.price_files import load_price_file

__all__ = ["calibrate_main", "describe_interval", "market_block"]


def _num(value: float, digits: int = 6) -> str:
    """A TOML float with ``digits`` significant digits (always with a '.' or an exponent)."""
    value = float(value)
    if not math.isfinite(value):
        return "nan"
    text = f"{value:.{digits}g}"
    if "e" not in text and "." not in text:
        text += ".0"
    return text


def _se(value: float) -> str:
    return "n/a (on a bound)" if not math.isfinite(value) else f"{value:.2g}"


def describe_interval(step_days: float) -> str:
    """``step_days`` in words: ``5 minutes``, ``1 hour``, ``1 day``, ``2.5 days``."""
    seconds = step_days * 86400.0
    for unit, size in (("day", 86400.0), ("hour", 3600.0), ("minute", 60.0), ("second", 1.0)):
        if seconds >= size or unit == "second":
            count = seconds / size
            text = f"{count:.4g}"
            return f"{text} {unit}" + ("" if text == "1" else "s")
    raise AssertionError("unreachable")  # pragma: no cover


def _suggest_steps(step_days: float) -> tuple[int, float]:
    """``steps`` and ``horizon_days`` such that one step is ``step_days``."""
    if step_days < 1.0:
        steps = max(1, round(1.0 / step_days))
    else:
        steps = 30
    return steps, steps * step_days


def _correlation_text(corr: np.ndarray) -> tuple[str, bool]:
    """TOML array of the correlation rounded to 6 (or more) digits; whether it is PD."""
    for digits in (6, 10, 17):
        rows = [[_num(v, digits) if i != j else "1.0" for j, v in enumerate(row)]
                for i, row in enumerate(corr)]
        parsed = np.array([[float(v) for v in row] for row in rows])
        try:
            np.linalg.cholesky(parsed)
        except np.linalg.LinAlgError:
            continue
        return "[" + ", ".join("[" + ", ".join(r) + "]" for r in rows) + "]", True
    return "[" + ", ".join("[" + ", ".join(r) + "]" for r in rows) + "]", False


def _quote(text: str) -> str:
    """A TOML basic string."""
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{out}"'


def market_block(fit_result: dict[str, Any], last_prices: Sequence[float]) -> str:
    """The ``[market]`` section of a scenario, as TOML text, from a :func:`fit` result.

    Parameters
    ----------
    fit_result : dict
        What :func:`fit` returned.
    last_prices : sequence of float, shape (A,)
        The price of each asset in the scenario (usually the last row of the data).

    Returns
    -------
    str
        Comments (the sampling interval, the ``[simulation]`` steps that make one step
        equal to it, per-asset fits and standard errors), then ``[market]`` with
        ``model`` and ``correlation``, the model's parameter table (``[market.student_t]``,
        ``[market.jumps]`` or ``[market.garch]``; none for gbm) and one
        ``[[market.assets]]`` per symbol with ``symbol``, ``price``, ``vol`` and ``drift``.
        Ends with a newline; valid TOML.
    """
    model = fit_result["model"]
    symbols = fit_result["symbols"]
    step_days = fit_result["step_days"]
    ppy = fit_result["periods_per_year"]
    n = fit_result["n_returns"]
    last = [float(p) for p in last_prices]
    if len(last) != len(symbols):
        raise ValueError(f"{len(last)} prices for {len(symbols)} symbols")
    steps, horizon = _suggest_steps(step_days)
    interval = describe_interval(step_days)
    lines = [
        f"# sampling interval: {interval} (median spacing); {n} log returns",
        f"# vol and drift annualised with a 365-day year: {_num(ppy, 6)} steps a year",
        "# so that one simulation step equals the data's interval, use in [simulation]:",
        f"#   steps = {steps}",
        f"#   horizon_days = {_num(horizon, 6)}    # steps x {interval}",
        "[market]",
        f"model = {_quote(model)}",
    ]
    corr_text, pd_ok = _correlation_text(np.asarray(fit_result["correlation"]))
    if model in ("garch", "student_t"):
        lines.append("# correlation of the standardised residuals")
    else:
        lines.append("# correlation of the log returns")
    if not pd_ok:
        lines.append("# warning: this matrix is not positive definite (fewer returns than "
                     "assets, or a duplicated column?); the scenario loader refuses it")
    lines.append(f"correlation = {corr_text}")
    per = fit_result.get("per_asset", {})
    ses = fit_result.get("stderr", {})

    def per_asset_comments(names: Sequence[str]) -> list[str]:
        out = []
        for i, sym in enumerate(symbols):
            parts = [f"{k} = {_num(per[k][i], 4)} (se {_se(ses[k][i])})" for k in names]
            out.append(f"#   {sym}: " + ", ".join(parts))
        return out

    if model == "student_t":
        lines += ["", "[market.student_t]",
                  "# variance-normalised multivariate Student-t; dof fitted per asset by maximum",
                  "# likelihood of the standardised returns; the scenario shares one dof, so",
                  "# this is the average of the per-asset fits:"]
        lines += per_asset_comments(["dof"])
        if fit_result["dof"] >= 0.999 * DOF_BOUNDS[1]:
            lines.append("# dof is at its upper bound: no fat tails found, gbm fits as well")
        lines.append(f"dof = {_num(fit_result['dof'], 5)}")
    elif model == "merton":
        lines += ["", "[market.jumps]",
                  "# Merton jumps (intensity per year, mean and std of one log jump) fitted per",
                  "# asset by maximum likelihood of the per-step mixture density. An asset's",
                  "# jumps count when the likelihood ratio against no jumps is >= "
                  f"{JUMP_LR_THRESHOLD:g};",
                  "# the scenario shares the parameters: intensity = the average over assets",
                  "# (0 for those without jumps), mean and std = intensity-weighted averages."]
        for i, sym in enumerate(symbols):
            parts = ", ".join(f"{k} = {_num(per[k][i], 4)} (se {_se(ses[k][i])})"
                              for k in ("intensity", "mean", "std"))
            if fit_result["jumps_found"][i]:
                lines.append(f"#   {sym}: {parts}")
            else:
                lines.append(f"#   {sym}: no significant jumps (likelihood ratio "
                             f"{fit_result['jump_lr'][i]:.3g}), counted as intensity 0;")
                lines.append(f"#     its best fit: {parts}")
        if not np.any(fit_result["jumps_found"]):
            lines.append("# no asset has significant jumps: gbm fits as well")
        lines += [f"intensity = {_num(fit_result['intensity'], 5)}",
                  f"mean = {_num(fit_result['mean'], 5)}",
                  f"std = {_num(fit_result['std'], 5)}",
                  "common = false"]
    elif model == "garch":
        lines += ["", "[market.garch]",
                  "# GARCH(1,1), variance targeting (long-run variance = sample variance), normal",
                  "# innovations, constant mean; fitted per asset by maximum likelihood; the",
                  "# scenario shares alpha and beta, so these are the averages of the per-asset",
                  "# fits:"]
        lines += per_asset_comments(["alpha", "beta"])
        lines += [f"alpha = {_num(fit_result['alpha'], 5)}",
                  f"beta = {_num(fit_result['beta'], 5)}"]
    for i, sym in enumerate(symbols):
        lines += ["", "[[market.assets]]", f"symbol = {_quote(sym)}",
                  f"price = {repr(last[i])}"]
        vol_note = "diffusion only; " if model == "merton" else ""
        lines.append(f"# vol: {vol_note}se {_se(fit_result['vol_stderr'][i])}; drift: se "
                     f"{_se(fit_result['drift_stderr'][i])} (normal approximations; drift "
                     "estimates are noisy)")
        if model == "merton":
            lam, m, s = fit_result["intensity"], fit_result["mean"], fit_result["std"]
            shared = math.sqrt(fit_result["vol"][i] ** 2 + lam * (m * m + s * s))
            lines.append(f"# total vol: {_num(fit_result['total_vol'][i], 4)} fitted, "
                         f"{_num(shared, 4)} with the shared jumps; drift includes the jump "
                         "compensator")
        lines += [f"vol = {_num(fit_result['vol'][i], 5)}",
                  f"drift = {_num(fit_result['drift'][i], 5)}"]
    return "\n".join(lines) + "\n"


def calibrate_main(prices_path: str, model: str, out: TextIO | None = None) -> int:
    """``marginsim calibrate``: load a price file, fit ``model``, print the ``[market]`` block.

    Parameters
    ----------
    prices_path : str
        CSV or Parquet file of prices (see :func:`load_prices`).
    model : {"gbm", "student_t", "merton", "garch"}
    out : text stream, optional
        Where the block goes; by default ``sys.stdout`` as it is at the call (so that a
        redirected or captured standard output receives it).

    Returns
    -------
    int
        0.

    Raises
    ------
    ScenarioError
        For a bad file (see :func:`load_prices`), an unknown model, or data the model
        cannot be fitted to (too few rows, a constant price).
    """
    if model not in MODELS:
        raise ScenarioError("--model", "", f"{model!r} is not a model that can be calibrated; "
                            f"valid: {', '.join(MODELS)}")
    prices, symbols, times = load_price_file(prices_path)
    spacing = np.diff(times) / 86400.0
    step_days = float(np.median(spacing))
    try:
        result = fit(prices, step_days, model, symbols=symbols)
    except FitError as exc:
        key = f"column {exc.key!r}" if exc.key in symbols else exc.key
        raise ScenarioError(str(prices_path), key, exc.message) from None
    first, last = (datetime.fromtimestamp(t, tz=UTC).isoformat().replace("+00:00", "Z")
                   for t in (times[0], times[-1]))
    header = [f"# marginsim calibrate --model {model}: fitted to {prices_path}",
              f"# {prices.shape[0]} prices from {first} to {last}"]
    ratio = float(spacing.mean()) / step_days
    if ratio > 1.2:
        per_year = result["n_returns"] / (float(times[-1] - times[0]) / 86400.0 / 365.0)
        header += [
            f"# note: the timestamps have gaps (mean spacing {ratio:.3g} x the median): a "
            "return across a gap",
            f"# counts as one step. With closed markets (weekends) there are about "
            f"{per_year:.0f} returns a year,",
            f"# not {result['periods_per_year']:.0f}: multiply vol by sqrt({per_year:.0f}/"
            f"{result['periods_per_year']:.0f}) = "
            f"{math.sqrt(per_year / result['periods_per_year']):.3g} for calendar-time vol.",
        ]
    (sys.stdout if out is None else out).write("\n".join(header) + "\n"
                                              + market_block(result, prices[-1]))
    return 0
