"""Calibration: fit a scenario's ``[market]`` section to a file of historical prices.

``marginsim calibrate PRICES.csv --model garch`` reads a price file (a timestamp column,
then one column per symbol), fits the volatilities, the correlation and the parameters of
the chosen price model to the log returns, and :mod:`simulator.calibration.block` prints a
``[market]`` block ready to paste into a scenario.

Conventions (the same as the simulator's, see ``DESIGN.md``):

- One step of the data is ``step_days`` days, the median spacing of the timestamps; a year
  has 365 days, so there are ``periods_per_year = 365 / step_days`` steps a year.
- ``vol`` is the annualised standard deviation of log returns (for ``merton``: of the
  diffusion part only) and ``drift`` the annualised arithmetic drift ``mu`` of
  ``dS/S = mu dt + ...``: ``mu = mean_logret * ppy + vol**2 / 2`` (for ``merton`` the jump
  compensator is added, because the simulator's Merton drift includes it).
- ``merton``: an asset's jumps count only when the likelihood ratio against no jumps
  passes ``JUMP_LR_THRESHOLD``; otherwise the asset is counted as intensity 0 with its
  gbm vol and drift.
- The scenario shares every model parameter other than ``vol`` and ``drift`` across
  assets; each asset is fitted on its own and the block reports the average, with the
  per-asset values (and their standard errors) as TOML comments.

The maximum-likelihood fits work on standardised returns ``(r - mean) / sd`` so that the
optimisers see numbers of order one whatever the price scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import optimize, signal, special

from simulator.price_files import load_prices

__all__ = ["FitError", "fit", "fit_garch_standardised", "load_prices"]

#: models that ``fit`` knows
MODELS = ("gbm", "student_t", "merton", "garch")
#: the fewest log returns each model is fitted on
MIN_RETURNS = {"gbm": 2, "student_t": 50, "merton": 100, "garch": 100}
#: bounds of the Student-t degrees of freedom
DOF_BOUNDS = (2.01, 1000.0)
#: number of jumps per step at which the Merton mixture density is truncated
MAX_JUMPS = 10
#: upper bound of the Merton jump probability per step (P(N > 10 | 1) = 1e-8)
MAX_JUMP_PROB = 1.0
#: likelihood ratio (jumps vs none) from which an asset's jumps count: chi2(3) at 1%; the
#: test is non-standard (m and s are not identified without jumps) and conservative: on
#: normal data 98% of the ratios fell below 7 (60 seeds, n = 500 and 5,000)
JUMP_LR_THRESHOLD = 11.34
#: upper bound of GARCH persistence alpha + beta
MAX_PERSISTENCE = 0.9999


class FitError(ValueError):
    """The data cannot be fitted (too few returns, a constant price...).

    Parameters
    ----------
    key : str
        What the problem is about: a symbol column or ``rows``.
    message : str
        What is wrong and what would be valid.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


# --------------------------------------------------------------------------- reading


# --------------------------------------------------------------------------- fitting


def _hessian(grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
             h: np.ndarray) -> np.ndarray:
    """Symmetrised central-difference Jacobian of ``grad`` at ``x`` (steps ``h``)."""
    n = x.size
    hess = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = h[j]
        hess[:, j] = (grad(x + e) - grad(x - e)) / (2.0 * h[j])
    return 0.5 * (hess + hess.T)


def _num_grad(f: Callable[[np.ndarray], float], h: np.ndarray
              ) -> Callable[[np.ndarray], np.ndarray]:
    """Central-difference gradient of ``f`` (steps ``h``)."""
    def grad(x: np.ndarray) -> np.ndarray:
        g = np.empty(x.size)
        for j in range(x.size):
            e = np.zeros(x.size)
            e[j] = h[j]
            g[j] = (f(x + e) - f(x - e)) / (2.0 * h[j])
        return g
    return grad


def _stderr(hess: np.ndarray, free: np.ndarray | None = None) -> np.ndarray:
    """Standard errors from the Hessian of a negative log-likelihood.

    ``nan`` for parameters not in ``free`` (estimates on a bound, where the quadratic
    approximation does not hold) and when the Hessian is not positive definite.
    """
    n = hess.shape[0]
    free = np.ones(n, dtype=bool) if free is None else free
    se = np.full(n, np.nan)
    if not free.any():
        return se
    sub = hess[np.ix_(free, free)]
    try:
        np.linalg.cholesky(sub)
    except np.linalg.LinAlgError:
        return se
    se[free] = np.sqrt(np.diag(np.linalg.inv(sub)))
    return se


def student_t_nll(dof: float, x: np.ndarray) -> float:
    """Negative log-likelihood of unit-variance Student-t(``dof``) at the points ``x``.

    Parameters
    ----------
    dof : float
        Degrees of freedom, > 2.
    x : ndarray
        Standardised returns (mean 0, variance 1).

    Returns
    -------
    float
    """
    s2 = dof - 2.0
    const = (special.gammaln(0.5 * (dof + 1.0)) - special.gammaln(0.5 * dof)
             - 0.5 * math.log(math.pi * s2))
    return float(-(x.size * const - 0.5 * (dof + 1.0) * np.log1p(x * x / s2).sum()))


def _fit_dof(x: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood dof of unit-variance Student-t on standardised ``x``, and its SE.

    The search runs over ``log(dof - 2)``: a grid first (the likelihood can be flat), then
    a bounded Brent refinement around the best grid point. The SE is the observed-
    information one of ``dof`` with the scale free (the standardisation used the sample
    sd, itself an estimate); it can understate the spread for dof <= 4, where the sample
    variance converges slowly.
    """
    lo, hi = math.log(DOF_BOUNDS[0] - 2.0), math.log(DOF_BOUNDS[1] - 2.0)
    grid = np.linspace(lo, hi, 61)
    values = [student_t_nll(2.0 + math.exp(u), x) for u in grid]
    k = int(np.argmin(values))
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    res = optimize.minimize_scalar(lambda u: student_t_nll(2.0 + math.exp(u), x),
                                   bounds=(a, b), method="bounded",
                                   options={"xatol": 1e-7})
    dof = 2.0 + math.exp(float(res.x))
    if dof >= 0.999 * DOF_BOUNDS[1] or dof <= DOF_BOUNDS[0] * 1.001:
        return dof, math.nan
    # observed information of (dof, log scale) at (dof, 0): the returns were standardised
    # with the sample sd, an estimate, and dof and scale are far from orthogonal
    def nll(v: np.ndarray) -> float:
        return student_t_nll(float(v[0]), x * math.exp(-v[1])) + x.size * float(v[1])

    h = np.array([1e-3 * (dof - 2.0), 1e-4])
    hess = _hessian(_num_grad(nll, h), np.array([dof, 0.0]), h)
    return dof, float(_stderr(hess)[0])


def garch_variance(alpha: float, beta: float, x: np.ndarray, h0: float = 1.0) -> np.ndarray:
    """Conditional variances of GARCH(1,1) with variance targeting on standardised ``x``.

    ``h[0] = h0`` and ``h[t] = (1 - alpha - beta) + alpha * x[t-1]**2 + beta * h[t-1]``
    (the long-run variance of standardised returns is 1): the simulator's recursion,
    which also starts at the long-run variance.

    Parameters
    ----------
    alpha, beta : float
    x : ndarray, shape (n,)
    h0 : float

    Returns
    -------
    ndarray, shape (n,)
    """
    u = np.empty(x.size)
    u[0] = h0
    u[1:] = (1.0 - alpha - beta) + alpha * x[:-1] ** 2
    return signal.lfilter([1.0], [1.0, -beta], u)


def garch_nll(params: Sequence[float], x: np.ndarray) -> float:
    """Gaussian negative log-likelihood (without the ``log(2 pi)`` constant) of GARCH(1,1)
    with variance targeting at ``params = (alpha, beta)`` on standardised ``x``."""
    h = garch_variance(float(params[0]), float(params[1]), x)
    if not (h > 0.0).all():
        return math.inf
    return float(0.5 * (np.log(h) + x * x / h).sum())


def fit_garch_standardised(x: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood GARCH(1,1) (alpha, beta), variance targeting, on standardised
    ``x`` (used to filter returns for filtered historical simulation)."""
    ab, _, _ = _fit_garch(x)
    return float(ab[0]), float(ab[1])


def _fit_garch(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Maximum-likelihood (alpha, beta), their SEs and the minimum nll on standardised ``x``.

    The optimiser works on persistence ``p = alpha + beta`` in ``[0, MAX_PERSISTENCE]``
    and the share ``f = alpha / p`` in ``[0, 1]``, a box that is exactly the stationary
    region, starting from the best point of a small grid.
    """
    def nll_pf(v: np.ndarray) -> float:
        return garch_nll((v[0] * v[1], v[0] * (1.0 - v[1])), x)

    grid = [(p, f) for p in (0.3, 0.6, 0.8, 0.9, 0.95, 0.98, 0.995)
            for f in (0.03, 0.08, 0.15, 0.3, 0.6)]
    start = min(grid, key=lambda v: nll_pf(np.array(v)))
    res = optimize.minimize(nll_pf, np.array(start), method="L-BFGS-B",
                            bounds=[(0.0, MAX_PERSISTENCE), (0.0, 1.0)],
                            options={"ftol": 1e-13, "gtol": 1e-9, "maxiter": 500})
    p, f = float(res.x[0]), float(res.x[1])
    ab = np.array([p * f, p * (1.0 - f)])
    # standard errors in (alpha, beta), from the Hessian of the nll; nan on a bound
    h = np.full(2, 1e-4)
    free = (ab > 2e-4) & (ab.sum() < MAX_PERSISTENCE - 2e-4)
    if free.all():
        hess = _hessian(_num_grad(lambda v: garch_nll(v, x), h), ab, h)
        se = _stderr(hess)
    else:
        se = np.full(2, np.nan)
    return ab, se, float(res.fun)


def merton_nll(theta: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log-likelihood of the Merton jump-diffusion per step and its gradient.

    The density of one step's log return is the Poisson mixture
    ``sum_k Pois(k; p) N(c + k m, sigma**2 + k s**2)``, truncated at ``MAX_JUMPS`` jumps.

    Parameters
    ----------
    theta : ndarray, shape (5,)
        ``(c, sigma, log_p, m, s)`` in the units of ``x``: step drift, diffusion sd, log of
        the jump probability per step, mean and sd of one log jump.
    x : ndarray, shape (n,)

    Returns
    -------
    nll : float
    grad : ndarray, shape (5,)
        With respect to ``theta``.
    """
    c, sigma, log_p, m, s = (float(v) for v in theta)
    p = math.exp(log_p)
    k = np.arange(MAX_JUMPS + 1, dtype=np.float64)
    var = sigma * sigma + k * s * s
    log_w = k * log_p - p - special.gammaln(k + 1.0) - 0.5 * np.log(2.0 * math.pi * var)
    a = (x[:, None] - (c + k * m)) / var            # d log-density_k / d mean_k
    comp = log_w - 0.5 * (a * a) * var
    top = comp.max(axis=1, keepdims=True)
    np.subtract(comp, top, out=comp)
    np.maximum(comp, -600.0, out=comp)                # no subnormal numbers (slow)
    resp = np.exp(comp, out=comp)
    total = resp.sum(axis=1, keepdims=True)
    ll = top[:, 0] + np.log(total[:, 0])
    resp /= total                                     # responsibilities of the components
    r_col = resp.sum(axis=0)
    ra = resp * a
    ra_col = ra.sum(axis=0)
    raa_col = (ra * a).sum(axis=0)
    b_col = 0.5 * (raa_col - r_col / var)             # sum_i resp * d log-density / d var_k
    g = np.array([ra_col.sum(), 2.0 * sigma * b_col.sum(), r_col @ (k - p), ra_col @ k,
                  2.0 * s * (b_col @ k)])
    return float(-ll.sum()), -g


def _fit_merton(x: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    """Maximum-likelihood Merton parameters on standardised ``x``; estimates and SEs.

    Returns per-step values in the units of ``x``: ``c``, ``sigma``, ``p`` (jump
    probability per step), ``m``, ``s``. L-BFGS-B with the analytic gradient runs from
    three starts (one from the outliers beyond 3.5 robust sds, two generic ones) and keeps
    the best; SEs are ``nan`` when an estimate is on a bound.
    """
    med = float(np.median(x))
    sig0 = max(1.4826 * float(np.median(np.abs(x - med))), 0.05)
    out = np.abs(x - med) > 3.5 * sig0
    starts = []
    if out.sum() >= 3:
        starts.append((med, sig0, math.log(min(max(out.mean(), 1e-4), 0.5)),
                       float((x[out] - med).mean()), max(float(x[out].std()), sig0)))
    starts += [(med, sig0, math.log(0.05), 0.0, 3.0 * sig0),
               (med, 0.8 * sig0, math.log(0.2), 0.0, 1.5 * sig0)]
    bounds = [(-5.0, 5.0), (0.01, 2.0), (math.log(1e-8), math.log(MAX_JUMP_PROB)),
              (-50.0, 50.0), (0.01, 50.0)]
    best = None
    for start in starts:
        res = optimize.minimize(merton_nll, np.array(start), args=(x,), jac=True,
                                method="L-BFGS-B", bounds=bounds,
                                options={"ftol": 1e-12, "gtol": 1e-7, "maxiter": 1000})
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    c, sigma, log_p, m, s = (float(v) for v in best.x)
    p = math.exp(log_p)
    est = {"c": c, "sigma": sigma, "p": p, "m": m, "s": s}
    # SEs in (c, sigma, p, m, s): Hessian of the analytic gradient, p on its natural scale
    theta = np.array([c, sigma, p, m, s])

    def grad_natural(v: np.ndarray) -> np.ndarray:
        g = merton_nll(np.array([v[0], v[1], math.log(v[2]), v[3], v[4]]), x)[1]
        g[2] /= v[2]
        return g

    on_bound = [abs(best.x[i] - bounds[i][j]) < 1e-6 for i in range(5) for j in (0, 1)]
    se = {key: math.nan for key in est}
    if not any(on_bound) and p > 1e-6:
        h = np.array([1e-4, 1e-4 * sigma, 1e-3 * p, 1e-4 * max(abs(m), s), 1e-4 * s])
        errs = _stderr(_hessian(grad_natural, theta, h))
        se = dict(zip(("c", "sigma", "p", "m", "s"), (float(e) for e in errs), strict=True))
    return est, se


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values))


def fit(prices: np.ndarray, step_days: float, model: str, *,
        symbols: Sequence[str] | None = None) -> dict[str, Any]:
    """Fit the vols, drifts, correlation and model parameters to log returns of ``prices``.

    Parameters
    ----------
    prices : array_like, shape (T, A)
        Positive prices, rows in time order (``T >= 3``).
    step_days : float
        Days between rows; a year has ``periods_per_year = 365 / step_days`` rows.
    model : {"gbm", "student_t", "merton", "garch"}
    symbols : sequence of str, optional
        Names of the columns (default ``A1, A2, ...``).

    Returns
    -------
    dict
        ``model``, ``symbols`` (list), ``step_days``, ``periods_per_year``, ``n_returns``,
        ``vol`` and ``drift`` (ndarray (A,), annualised), ``correlation`` (ndarray (A, A)),
        ``loglik`` (ndarray (A,), the per-asset log-likelihood of the fitted marginal
        model, in the units of the log returns), ``vol_stderr`` and ``drift_stderr``
        (ndarray (A,), normal approximations ``vol / sqrt(2 n)`` and
        ``total vol / sqrt(years)``; for a merton asset with jumps, ``vol_stderr`` is the
        Hessian SE of the diffusion vol), and by model:

        - ``student_t``: ``dof`` (the average);
        - ``merton``: ``intensity`` (per year: the average over assets, 0 for an asset
          without significant jumps), ``mean``, ``std`` (of one log jump; averages
          weighted by intensity), ``common`` (False), ``jump_lr`` (ndarray (A,), the
          likelihood ratio of jumps against none), ``jumps_found`` (ndarray (A,) of bool,
          ``jump_lr >= JUMP_LR_THRESHOLD``), ``total_vol`` (ndarray (A,), diffusion and
          jumps) and ``vol_diffusion_stderr``; an asset without significant jumps gets its
          gbm ``vol`` and ``drift``;
        - ``garch``: ``alpha``, ``beta`` (the averages);

        and for those three ``per_asset`` and ``stderr``: dicts from each parameter name
        to an ndarray (A,) of the per-asset estimates and their standard errors (``nan``
        where the estimate is on a bound).

    Raises
    ------
    FitError
        If there are too few returns for the model or an asset's price never changes.
    ValueError
        If ``model`` is not one of the above or ``prices`` is not a 2-D array of
        positive numbers.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    prices = np.asarray(prices, dtype=np.float64)
    if prices.ndim != 2 or prices.shape[0] < 3 or prices.shape[1] < 1:
        raise ValueError(f"prices must have shape (T >= 3, A >= 1), got {prices.shape}")
    if not (np.isfinite(prices).all() and (prices > 0.0).all()):
        raise ValueError("prices must be positive and finite")
    if not (math.isfinite(step_days) and step_days > 0.0):
        raise ValueError(f"step_days must be positive, got {step_days!r}")
    n_assets = prices.shape[1]
    symbols = [f"A{i + 1}" for i in range(n_assets)] if symbols is None else list(symbols)
    if len(symbols) != n_assets:
        raise ValueError(f"{len(symbols)} symbols for {n_assets} price columns")

    returns = np.diff(np.log(prices), axis=0)
    n = returns.shape[0]
    if n < MIN_RETURNS[model]:
        raise FitError("rows", f"model {model!r} needs at least {MIN_RETURNS[model]} returns "
                       f"({MIN_RETURNS[model] + 1} rows), the data has {n}; use more data or "
                       "--model gbm")
    ppy = 365.0 / step_days
    dt = 1.0 / ppy
    mean = returns.mean(axis=0)
    sd = returns.std(axis=0, ddof=1)
    for a in range(n_assets):
        if not sd[a] > 0.0:
            raise FitError(symbols[a], "the price never changes, so its volatility is 0 and "
                           "its correlation undefined; drop the column")
    x = (returns - mean) / sd
    vol = sd * math.sqrt(ppy)
    vol_se = vol / math.sqrt(2.0 * n)
    drift = mean * ppy + 0.5 * vol**2
    resid = x
    loglik = -0.5 * n * math.log(2.0 * math.pi) - n * np.log(sd) - 0.5 * (x * x).sum(axis=0)
    result: dict[str, Any] = {"model": model, "symbols": symbols, "step_days": float(step_days),
                              "periods_per_year": ppy, "n_returns": n}

    if model == "student_t":
        dofs, dof_se = np.empty(n_assets), np.empty(n_assets)
        for a in range(n_assets):
            dofs[a], dof_se[a] = _fit_dof(x[:, a])
            loglik[a] = -student_t_nll(float(dofs[a]), x[:, a]) - n * math.log(sd[a])
        result["dof"] = _mean(dofs)
        result["per_asset"] = {"dof": dofs}
        result["stderr"] = {"dof": dof_se}
    elif model == "garch":
        ab, ab_se = np.empty((n_assets, 2)), np.empty((n_assets, 2))
        resid = np.empty_like(x)
        for a in range(n_assets):
            ab[a], ab_se[a], nll = _fit_garch(x[:, a])
            resid[:, a] = x[:, a] / np.sqrt(garch_variance(ab[a, 0], ab[a, 1], x[:, a]))
            loglik[a] = -nll - 0.5 * n * math.log(2.0 * math.pi) - n * math.log(sd[a])
        result["alpha"] = _mean(ab[:, 0])
        result["beta"] = _mean(ab[:, 1])
        result["per_asset"] = {"alpha": ab[:, 0].copy(), "beta": ab[:, 1].copy()}
        result["stderr"] = {"alpha": ab_se[:, 0].copy(), "beta": ab_se[:, 1].copy()}
    elif model == "merton":
        keys = ("intensity", "mean", "std", "vol")
        per = {k: np.empty(n_assets) for k in keys}
        per_se = {k: np.empty(n_assets) for k in keys}
        lr = np.empty(n_assets)
        for a in range(n_assets):
            est, se = _fit_merton(x[:, a])
            scale = sd[a]
            per["intensity"][a], per_se["intensity"][a] = est["p"] / dt, se["p"] / dt
            per["mean"][a], per_se["mean"][a] = est["m"] * scale, se["m"] * scale
            per["std"][a], per_se["std"][a] = est["s"] * scale, se["s"] * scale
            root = scale * math.sqrt(ppy)
            per["vol"][a], per_se["vol"][a] = est["sigma"] * root, se["sigma"] * root
            theta = np.array([est["c"], est["sigma"], math.log(est["p"]), est["m"], est["s"]])
            ll_jumps = -merton_nll(theta, x[:, a])[0] - n * math.log(scale)
            lr[a] = 2.0 * (ll_jumps - loglik[a])
            found = lr[a] >= JUMP_LR_THRESHOLD
            if found:
                loglik[a] = ll_jumps
                lam, m, s = per["intensity"][a], per["mean"][a], per["std"][a]
                sig = per["vol"][a]
                vol[a], vol_se[a] = sig, per_se["vol"][a]
                # E[log return] / dt = mu - sig^2/2 - lam kappa + lam m, the drift being
                # compensated (E[dS/S] = mu dt) as in the simulator
                kappa = math.expm1(m + 0.5 * s * s)
                drift[a] = mean[a] * ppy + 0.5 * sig * sig + lam * (kappa - m)
        found = lr >= JUMP_LR_THRESHOLD
        lam_used = np.where(found, per["intensity"], 0.0)
        result["intensity"] = _mean(lam_used)
        if found.any():
            weights = lam_used / lam_used.sum()
            result["mean"] = float(weights @ np.where(found, per["mean"], 0.0))
            result["std"] = float(weights @ np.where(found, per["std"], 0.0))
        else:
            result["mean"] = result["std"] = 0.0
        result["common"] = False
        result["vol_diffusion_stderr"] = per_se["vol"].copy()
        result["total_vol"] = np.where(
            found, np.sqrt(per["vol"] ** 2 + per["intensity"] * (per["mean"] ** 2
                                                                 + per["std"] ** 2)), vol)
        result["jump_lr"] = lr
        result["jumps_found"] = found
        result["per_asset"] = per
        result["stderr"] = per_se

    corr = np.corrcoef(resid, rowvar=False).reshape(n_assets, n_assets)
    corr = 0.5 * (corr + corr.T)
    np.fill_diagonal(corr, 1.0)
    years = n * dt
    result.update(vol=vol, drift=drift, correlation=corr, loglik=loglik,
                  vol_stderr=vol_se,
                  drift_stderr=sd * math.sqrt(ppy) / math.sqrt(years))
    return result
