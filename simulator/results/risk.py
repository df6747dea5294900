"""Risk estimates with standard errors: means, probabilities, VaR and expected shortfall.

Conventions (losses are positive numbers):

- With ``n`` samples and level ``alpha`` (0.99), ``k = ceil((1 - alpha) * n)`` samples lie in
  the tail. ``VaR`` is the k-th largest loss (an order statistic, the empirical
  ``alpha``-quantile) and ``ES`` the mean of the ``k`` largest losses.
- Standard error of VaR: from the distribution-free confidence interval of a quantile (the
  ranks ``n*alpha +/- z*sqrt(n*alpha*(1-alpha))``, ``z = 1``): half the distance between
  the order statistics at those ranks.
- Standard error of ES: the asymptotic formula
  ``Var = (Var(L | L >= VaR) + alpha * (ES - VaR)**2) / (n * (1 - alpha))``.
- Means: sample standard deviation / sqrt(n); probabilities: sqrt(p (1 - p) / n).

Per-account VaR/ES are computed from each account's largest losses only (the *tail*),
which is all that needs to be kept while chunks stream in; :func:`tail_size` says how
many to keep so that both the estimate and its standard error are exact.
"""

from __future__ import annotations

import math

import numpy as np


def mean_se(x: np.ndarray) -> tuple[float, float]:
    """Sample mean and its standard error.

    Parameters
    ----------
    x : ndarray, shape (n,)

    Returns
    -------
    (mean, stderr) : tuple of float
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    if n == 0:
        return math.nan, math.nan
    sd = float(np.std(x, ddof=1)) if n > 1 else 0.0
    return float(np.mean(x)), sd / math.sqrt(n)


def prob_se(flags: np.ndarray) -> tuple[float, float]:
    """Share of true values and its binomial standard error."""
    flags = np.asarray(flags, dtype=bool)
    n = flags.size
    if n == 0:
        return math.nan, math.nan
    p = float(flags.mean())
    return p, math.sqrt(p * (1.0 - p) / n)


def tail_count(n: int, alpha: float) -> int:
    """Number of samples in the ``1 - alpha`` tail: ``ceil((1 - alpha) n)``, at least 1."""
    return max(1, math.ceil((1.0 - alpha) * n - 1e-9))


def _rank_halfwidth(n: int, alpha: float) -> int:
    return math.ceil(math.sqrt(n * alpha * (1.0 - alpha))) + 1


def tail_size(n: int, alpha: float) -> int:
    """How many of the largest losses :func:`var_es_from_tail` needs (at most ``n``)."""
    return min(n, tail_count(n, alpha) + _rank_halfwidth(n, alpha) + 1)


def var_es_from_tail(tail_desc: np.ndarray, n: int, alpha: float
                     ) -> tuple[float, float, float, float]:
    """VaR and ES with standard errors from the largest losses of ``n`` samples.

    Parameters
    ----------
    tail_desc : ndarray
        At least ``tail_size(n, alpha)`` largest losses in descending order (or all ``n``).
    n : int
        Number of samples the tail was taken from.
    alpha : float
        Confidence level, e.g. 0.99.

    Returns
    -------
    (var, var_se, es, es_se) : tuple of float
    """
    if n == 0:
        return (math.nan,) * 4
    tail_desc = np.asarray(tail_desc, dtype=float)
    k = tail_count(n, alpha)
    top = tail_desc[:k]
    var = float(top[-1])
    es = float(top.mean())
    h = _rank_halfwidth(n, alpha)
    hi = tail_desc[max(0, k - 1 - h)]
    lo = tail_desc[min(len(tail_desc) - 1, n - 1, k - 1 + h)]
    var_se = 0.5 * float(hi - lo)
    if k < 2:  # one sample in the tail: its spread, and so the error, is unknown
        return var, var_se, es, math.nan
    tail_var = float(np.var(top, ddof=1))
    es_se = math.sqrt(max(0.0, (tail_var + alpha * (es - var) ** 2) / (n * (1.0 - alpha))))
    return var, var_se, es, es_se


def var_es(losses: np.ndarray, alpha: float) -> tuple[float, float, float, float]:
    """VaR and ES with standard errors of a full sample of losses (see module notes)."""
    losses = np.asarray(losses, dtype=float)
    n = losses.size
    if n == 0:
        return (math.nan,) * 4
    m = tail_size(n, alpha)
    tail = -np.sort(-np.partition(losses, n - m)[n - m:]) if m < n else -np.sort(-losses)
    return var_es_from_tail(tail, n, alpha)


def var_es_rows(losses: np.ndarray, alpha: float, overwrite: bool = False) -> np.ndarray:
    """:func:`var_es` of every row of ``losses`` at once, bit for bit the same numbers.

    Parameters
    ----------
    losses : ndarray, shape (m, n)
        One row of losses per account (C-contiguous).
    alpha : float
    overwrite : bool
        Partition ``losses`` in place (no second array of its size): each row keeps its
        values, in another order, so a later call on it gives the same numbers.

    Returns
    -------
    ndarray, shape (4, m)
        ``var, var_se, es, es_se`` per row.
    """
    return var_es_rows_levels(losses, (alpha,), overwrite)[0]


def var_es_rows_levels(losses: np.ndarray, levels: tuple[float, ...],
                       overwrite: bool = False) -> np.ndarray:
    """:func:`var_es_rows` at several levels, from one partition and one sort.

    The largest losses a level needs (:func:`tail_size`) are the first of those the lowest
    level needs, in the same descending order, so every level reads the one sorted tail:
    the same numbers as a call of :func:`var_es_rows` per level.

    Returns
    -------
    ndarray, shape (len(levels), 4, m)
        ``var, var_se, es, es_se`` per level and row.
    """
    losses = np.asarray(losses, dtype=float)
    rows, n = losses.shape
    out = np.full((len(levels), 4, rows), np.nan)
    if n == 0 or rows == 0 or not levels:
        return out
    m_all = max(tail_size(n, alpha) for alpha in levels)
    if m_all < n and overwrite and losses.flags.writeable:
        losses.partition(n - m_all, axis=1)
        part = losses[:, n - m_all:]
    else:
        part = np.partition(losses, n - m_all, axis=1)[:, n - m_all:] if m_all < n else losses
    tail_all = np.negative(part)
    tail_all.sort(axis=1)
    np.negative(tail_all, out=tail_all)
    for i_level, alpha in enumerate(levels):
        tail = tail_all[:, :tail_size(n, alpha)]
        k = tail_count(n, alpha)
        top = np.ascontiguousarray(tail[:, :k])
        res = out[i_level]
        res[0] = top[:, -1]
        res[2] = top.mean(axis=1)
        h = _rank_halfwidth(n, alpha)
        hi = tail[:, max(0, k - 1 - h)]
        lo = tail[:, min(tail.shape[1] - 1, n - 1, k - 1 + h)]
        res[1] = 0.5 * (hi - lo)
        if k >= 2:
            tail_var = np.var(top, axis=1, ddof=1)
            res[3] = np.sqrt(np.maximum(0.0, (tail_var + alpha * (res[2] - res[0]) ** 2)
                                        / (n * (1.0 - alpha))))
    return out


def top_rows(values: np.ndarray, keep: int, overwrite: bool = False) -> np.ndarray:
    """The ``keep`` largest values of each row, in no particular order.

    Parameters
    ----------
    values : ndarray, shape (m, w)
        One row per account (C-contiguous rows make this fast).
    keep : int
    overwrite : bool
        Partition ``values`` in place (no second array of its size).

    Returns
    -------
    ndarray, shape (m, min(keep, w))
        A compact array: a view would keep the whole partitioned array alive.
    """
    w = values.shape[1]
    if w <= keep:
        return values
    if overwrite:
        values.partition(w - keep, axis=1)
    else:
        values = np.partition(values, w - keep, axis=1)
    return np.ascontiguousarray(values[:, w - keep:])


def merge_tails(a: np.ndarray, b: np.ndarray, keep: int) -> np.ndarray:
    """Keep the ``keep`` largest values of each row of two tails (no particular order).

    Parameters
    ----------
    a, b : ndarray, shape (m, ka) and (m, kb)
        Largest losses per row (account), any order.
    keep : int

    Returns
    -------
    ndarray, shape (m, min(keep, ka + kb))
    """
    return top_rows(np.concatenate([a, b], axis=1), keep, overwrite=True)


def sorted_desc(tail: np.ndarray) -> np.ndarray:
    """Rows of a tail in descending order (what :func:`var_es_from_tail` takes)."""
    out = np.negative(tail)
    out.sort(axis=1)
    return np.negative(out, out=out)


def level_suffix(level: float) -> str:
    """Name suffix of a confidence level: 0.95 -> ``95``, 0.99 -> ``99``, 0.999 -> ``999``,
    0.9 -> ``90``."""
    digits = f"{level:.6f}".rstrip("0").split(".")[1]
    return digits.ljust(2, "0")


def quantile_se(x: np.ndarray, q: float) -> tuple[float, float]:
    """Empirical ``q``-quantile (the ``ceil(q n)``-th smallest value) and its standard
    error, half the distance between the order statistics at ranks
    ``n q +/- sqrt(n q (1 - q))`` (the distribution-free interval used for VaR)."""
    x = np.sort(np.asarray(x, dtype=float))
    n = x.size
    if n == 0:
        return math.nan, math.nan
    k = min(n, max(1, math.ceil(q * n - 1e-9)))
    h = _rank_halfwidth(n, q)
    lo = x[max(0, k - 1 - h)]
    hi = x[min(n - 1, k - 1 + h)]
    return float(x[k - 1]), 0.5 * float(hi - lo)


def ratio_se(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Ratio of sums ``sum y / sum x`` over paths and its delta-method standard error,
    ``sqrt(sum (y - R x)^2 / (n (n - 1))) / mean(x)`` (NaN when ``sum x = 0``)."""
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    n = x.size
    if n == 0 or x.sum() == 0.0:
        return math.nan, math.nan
    r = float(y.sum() / x.sum())
    if n < 2:
        return r, 0.0
    resid = y - r * x
    return r, math.sqrt(float(resid @ resid) / (n * (n - 1))) / float(x.mean())


# ------------------------------------------------------------------ weighted (rare-event mode)
#
# Importance sampling draws paths from a tilted measure Q and weights each by its likelihood
# ratio w = dP/dQ (mean 1 under Q). The estimators below are the standard unbiased ones of
# P-expectations, ``mean(w x)``; tail probabilities are ``mean(w 1{L > l})``, so VaR is the
# loss at which the weighted tail mass reaches ``1 - alpha`` (Glynn 1996) and ES is
# ``VaR + mean(w (L - VaR)+) / (1 - alpha)`` (Rockafellar-Uryasev; its error does not depend
# on VaR's to first order, so its standard error is that of the mean). With every weight 1
# they give the plain estimates (the plain functions above are used there, bit for bit).


def wmean_se(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Importance-sampling mean ``mean(w x)`` and its standard error ``sd(w x) / sqrt(n)``."""
    return mean_se(np.asarray(w, dtype=float) * np.asarray(x, dtype=float))


def wprob_se(flags: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Importance-sampling probability ``mean(w 1{flag})`` and its standard error."""
    return wmean_se(np.asarray(flags, dtype=bool).astype(float), w)


def effective_sample_size(w: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)**2 / sum w**2`` (n when every weight is equal)."""
    w = np.asarray(w, dtype=float)
    s2 = float(w @ w)
    return float(w.sum()) ** 2 / s2 if s2 > 0 else 0.0


def wvar_es(losses: np.ndarray, w: np.ndarray, alpha: float
            ) -> tuple[float, float, float, float]:
    """VaR and ES at ``alpha`` with standard errors from importance-weighted losses.

    ``VaR`` is the largest loss ``l`` whose weighted tail mass ``mean(w 1{L >= l})``
    reaches ``1 - alpha``; its standard error is half the distance between the losses at
    tail masses ``1 - alpha -/+ s``, with ``s`` the standard error of the tail mass at VaR
    (the weighted form of the distribution-free interval of :func:`var_es`). ``ES = VaR +
    mean(w (L - VaR)+) / (1 - alpha)`` with standard error ``sd(w (L - VaR)+) / (sqrt(n)
    (1 - alpha))``, which is the asymptotic formula of :func:`var_es` when every weight is
    1. A tail that holds no weight (no path in it) gives NaN.
    """
    losses = np.asarray(losses, dtype=float)
    out = wvar_es_levels(losses.reshape(1, losses.size), np.asarray(w, dtype=float),
                         (alpha,))[0]
    return float(out[0, 0]), float(out[1, 0]), float(out[2, 0]), float(out[3, 0])


def _first_reaching(cum: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Per row, the first column at which ``cum`` (rising along rows) reaches ``mass``
    (the last column when it never does)."""
    reach = cum >= (mass - 1e-15 * np.maximum(mass, 1.0))[:, None]
    return np.where(reach.any(axis=1), reach.argmax(axis=1), cum.shape[1] - 1)


def wvar_es_levels(losses: np.ndarray, w: np.ndarray, levels: tuple[float, ...]
                   ) -> np.ndarray:
    """:func:`wvar_es` of every row of ``losses`` (shape (m, n); one weight per column, the
    path's) at every level of ``levels``, the rows sorted once; shape (L, 4, m):
    ``var, var_se, es, es_se``."""
    losses = np.asarray(losses, dtype=float)
    w = np.asarray(w, dtype=float)
    m, n = losses.shape
    out = np.full((len(levels), 4, m), np.nan)
    if n == 0 or m == 0:
        return out
    order = np.argsort(-losses, axis=1, kind="stable")
    desc = np.take_along_axis(losses, order, axis=1)
    cum = np.cumsum(w[order], axis=1) / n
    del order
    rows = np.arange(m)
    for i, alpha in enumerate(levels):
        p = 1.0 - alpha
        ok = cum[:, -1] >= p * (1 - 1e-12)  # else the weights never reach the tail mass
        var = desc[rows, _first_reaching(cum, np.full(m, p))]
        in_tail = w[None, :] * (losses >= var[:, None])
        s = np.sqrt(np.var(in_tail, axis=1, ddof=1) / n) if n > 1 else np.zeros(m)
        del in_tail
        hi = desc[rows, _first_reaching(cum, np.maximum(p - s, 0.0))]
        lo = desc[rows, _first_reaching(cum, p + s)]
        excess = w[None, :] * np.maximum(losses - var[:, None], 0.0)
        es = var + excess.mean(axis=1) / p
        es_se = (np.std(excess, axis=1, ddof=1) / (np.sqrt(n) * p) if n > 1
                 else np.full(m, np.nan))
        out[i][:, ok] = np.stack([var, 0.5 * (hi - lo), es, es_se])[:, ok]
    return out


def wquantile_se(x: np.ndarray, w: np.ndarray, q: float) -> tuple[float, float]:
    """Weighted (self-normalised) ``q``-quantile: the smallest ``x`` whose weighted share
    ``sum w 1{X <= x} / sum w`` reaches ``q``; standard error half the distance between
    the quantiles at ``q -/+ s``, ``s = sqrt(sum w**2 (1{X <= x} - q)**2) / sum w`` (the
    delta method of the self-normalised share; the rank interval of :func:`quantile_se`
    when every weight is 1)."""
    x = np.asarray(x, dtype=float)
    w = np.asarray(w, dtype=float)
    if x.size == 0 or w.sum() <= 0:
        return math.nan, math.nan
    order = np.argsort(x, kind="stable")
    xs, ws = x[order], w[order]
    total = float(ws.sum())
    cum = np.cumsum(ws) / total

    def at(level: float) -> float:
        k = int(np.searchsorted(cum, min(max(level, 0.0), 1.0) - 1e-12, side="left"))
        return float(xs[min(k, xs.size - 1)])

    est = at(q)
    s = math.sqrt(float(np.sum(ws**2 * ((xs <= est) - q) ** 2))) / total
    return est, 0.5 * (at(q + s) - at(q - s))


def wratio_se(y: np.ndarray, x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """:func:`ratio_se` with importance weights: ``sum w y / sum w x`` and the delta-method
    error of the weighted sums."""
    w = np.asarray(w, dtype=float)
    return ratio_se(w * np.asarray(y, dtype=float), w * np.asarray(x, dtype=float))
