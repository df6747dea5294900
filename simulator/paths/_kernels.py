"""Numba kernels of the path generator (arrays in, ``out=`` arrays; no Python objects
other than the chunk's ``numpy.random.Generator``, which Numba draws from exactly as NumPy
does). Every kernel keeps the running log price of each asset within the band of
:mod:`simulator.config.limits` (``log s0 + log 1e-12 .. log s0 + log 1e12``).

Importance sampling (:mod:`simulator.rare`): the Gaussian kernels take ``theta``,
float64[steps, A] or ``None``, ``shift``, bool[n_paths], ``logw``, float64[n_paths], and
``znorm``, float64[n_paths, steps, A] or ``None``. With ``theta`` the standard normals
``eps`` of step ``t`` (those that drive the diffusion) of a path with ``shift[i]`` are
shifted to ``x_t = eps_t + theta[t]`` (the others keep ``x_t = eps_t``: a defensive
mixture's plain paths), ``logw[i]`` receives ``log(p / q)`` of the path's normals, the
plain density over the shifted one, ``sum_t (-theta[t] . x_t + |theta[t]|**2 / 2)``, in
log space, and ``znorm[i, t]`` (when given: the pilot's cross-entropy update needs them)
the normals ``x_t``. The draws and their order are those of the plain kernel, so a tilted
run sees the same random numbers. A ``None`` compiles its branch away; without
``theta``, ``logw`` and ``znorm`` are left as they are.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from simulator._kernels.bounds import bound_price_nb
from simulator._kernels.jit import inner
from simulator.config.limits import LOG_PRICE_CAP, LOG_PRICE_FLOOR


@inner
def _draw_normals(rng, z):  # pragma: no cover - jitted
    """Fill ``z`` (steps, A) with standard normals in C order."""
    for t in range(z.shape[0]):
        for a in range(z.shape[1]):
            z[t, a] = rng.standard_normal()


@inner
def _tilt(z, theta_t, shift, znorm, i, t):  # pragma: no cover - jitted
    """Shift the normals ``z`` (float64[A]) of step ``t`` of path ``i`` by ``theta_t`` in
    place when ``shift`` (and keep them in ``znorm[i, t]`` unless it is None); return the
    step's ``log(p / q)`` of the normals as used, ``-theta_t . x + |theta_t|**2 / 2``."""
    d = 0.0
    for a in range(z.shape[0]):
        th = theta_t[a]
        if shift:
            z[a] += th
        d += th * (0.5 * th - z[a])
        if znorm is not None:
            znorm[i, t, a] = z[a]
    return d


@inner
def _start_path(out, i, s0, logp):  # pragma: no cover - jitted
    """Initial prices of path ``i`` and their logs."""
    for a in range(s0.shape[0]):
        out[i, 0, a] = s0[a]
        logp[a] = np.log(s0[a])


@inner
def _log_bounds(s0):  # pragma: no cover - jitted
    """Lowest and highest log price of each asset (``simulator.config.limits``)."""
    lo = np.empty(s0.shape[0])
    hi = np.empty(s0.shape[0])
    for a in range(s0.shape[0]):
        lo[a] = np.log(s0[a]) + LOG_PRICE_FLOOR
        hi[a] = np.log(s0[a]) + LOG_PRICE_CAP
    return lo, hi


@njit(cache=True, nogil=True)
def gbm_paths_nb(rng, s0, drift_step, diff_scale, chol, out, theta, shift, logw, znorm
                 ):  # pragma: no cover - jitted
    """Correlated GBM paths with scheduled shocks.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws ``n_paths * steps * A`` standard normals in C order (path, step, asset),
        the order of ``rng.standard_normal((n_paths, steps, A))``.
    s0 : float64[A]
        Initial prices.
    drift_step : float64[steps, A]
        Log drift of each step, gaps included: ``(mu - vol_t**2 / 2) * dt + log(1 + gap)``.
    diff_scale : float64[steps, A]
        ``vol_t * sqrt(dt)`` of each step (vol shocks included).
    chol : float64[steps, A, A]
        Lower Cholesky factor of the correlation of each step.
    out : float64[n_paths, steps + 1, A]
        Prices; ``out[:, 0]`` is ``s0``.
    theta, shift, logw, znorm : float64[steps, A] or None, bool[n_paths],
            float64[n_paths], float64[n_paths, steps, A] or None
        Importance-sampling shift of the normals, the paths it applies to, the paths' log
        likelihood ratios and their normals (see the module notes).
    """
    n_paths = out.shape[0]
    steps = drift_step.shape[0]
    n_assets = s0.shape[0]
    z = np.empty(n_assets)
    logp = np.empty(n_assets)
    lo, hi = _log_bounds(s0)
    for i in range(n_paths):
        _start_path(out, i, s0, logp)
        lw = 0.0
        for t in range(steps):
            for a in range(n_assets):
                z[a] = rng.standard_normal()
            if theta is not None:
                lw += _tilt(z, theta[t], shift[i], znorm, i, t)
            for a in range(n_assets):
                w = 0.0
                for b in range(a + 1):
                    w += chol[t, a, b] * z[b]
                logp[a] += drift_step[t, a] + diff_scale[t, a] * w
                logp[a] = bound_price_nb(logp[a], lo[a], hi[a])
                out[i, t + 1, a] = np.exp(logp[a])
        if theta is not None:
            logw[i] = lw
    return 0


@inner
def _tilt_rows(z, theta, shift, znorm, i):  # pragma: no cover - jitted
    """:func:`_tilt` of every step of ``z`` (float64[steps, A]) of path ``i``; the summed
    log ratio."""
    lw = 0.0
    for t in range(z.shape[0]):
        lw += _tilt(z[t], theta[t], shift, znorm, i, t)
    return lw


@inner
def _correlate(chol_t, z, a):  # pragma: no cover - jitted
    w = 0.0
    for b in range(a + 1):
        w += chol_t[a, b] * z[b]
    return w


@njit(cache=True, nogil=True)
def student_t_paths_nb(rng, s0, drift_step, diff_scale, chol, dof, out, theta, shift, logw,
                       znorm, mix_tilt, mix_out):  # pragma: no cover - jitted
    """Correlated, variance-normalised multivariate Student-t paths.

    Per path, draws ``steps * A`` normals (C order), then ``steps`` chi-square(dof)
    variates; the innovation of step ``t`` is ``L z_t * sqrt((dof - 2) / W_t)``, which has
    unit variance. Other arguments as :func:`gbm_paths_nb`.

    Importance sampling of the mixing variable: ``mix_tilt`` (float64[steps] or None,
    only with ``theta``) holds ``log c_t``; a shifted path uses ``W_t = c_t X_t`` for the
    chi-square draw ``X_t`` (``c_t < 1``: a smaller ``W``, fatter moves), and ``logw``
    gains ``log(p / q)`` of the ``W_t`` used, ``(dof / 2) log c_t + W_t (1 - c_t) /
    (2 c_t)`` (the density ratio of a chi-square to its scaled form). ``mix_out``
    (float64[n_paths, steps] or None) receives the ``W_t`` used.
    """
    n_paths = out.shape[0]
    steps = drift_step.shape[0]
    n_assets = s0.shape[0]
    z = np.empty((steps, n_assets))
    mix = np.empty(steps)
    logp = np.empty(n_assets)
    lo, hi = _log_bounds(s0)
    for i in range(n_paths):
        _draw_normals(rng, z)
        lw = 0.0
        for t in range(steps):
            wv = rng.chisquare(dof)
            if mix_tilt is not None:
                c = np.exp(mix_tilt[t])
                if shift[i]:
                    wv *= c
                lw += 0.5 * dof * mix_tilt[t] + 0.5 * wv * (1.0 - c) / c
                if mix_out is not None:
                    mix_out[i, t] = wv
            mix[t] = np.sqrt((dof - 2.0) / wv)
        if theta is not None:
            logw[i] = lw + _tilt_rows(z, theta, shift[i], znorm, i)
        _start_path(out, i, s0, logp)
        for t in range(steps):
            for a in range(n_assets):
                w = _correlate(chol[t], z[t], a) * mix[t]
                logp[a] += drift_step[t, a] + diff_scale[t, a] * w
                logp[a] = bound_price_nb(logp[a], lo[a], hi[a])
                out[i, t + 1, a] = np.exp(logp[a])
    return 0


@njit(cache=True, nogil=True)
def merton_paths_nb(rng, s0, drift_step, diff_scale, chol, lam_dt, jump_mean, jump_std,
                    common, out, theta, shift, logw, znorm, jump_tilt, jump_out
                    ):  # pragma: no cover - jitted
    """GBM plus Merton jumps (compound Poisson of normal log jumps).

    Per path, draws ``steps * A`` normals (diffusion, C order); then the jump counts,
    Poisson(``lam_dt``): ``steps`` of them when ``common`` (one arrival process for every
    asset), else ``steps * A``; then one normal per (step, asset) with a jump, in C order:
    the log jump of ``N`` arrivals is ``N * jump_mean + sqrt(N) * jump_std * z``.
    ``drift_step`` must include the jump compensator.

    Importance sampling of the jumps: ``jump_tilt`` (float64[2] or None, only with
    ``theta``) holds ``log kappa`` and ``eta``; a shifted path draws its counts at
    ``kappa * lam_dt`` and shifts each jump normal by ``eta``; ``logw`` gains ``log(p /
    q)`` of the counts ``k`` and jump normals ``x`` used, ``-k log kappa + (kappa - 1)
    lam_dt`` per count draw and ``eta (eta / 2 - x)`` per jump normal. ``jump_out``
    (float64[n_paths, 3] or None) receives per path the sum of the counts, the number of
    jump normals and their sum. (A shifted path's counts come from another Poisson rate,
    so its later draws are not those of a plain path.)
    """
    n_paths = out.shape[0]
    steps = drift_step.shape[0]
    n_assets = s0.shape[0]
    z = np.empty((steps, n_assets))
    counts = np.empty((steps, n_assets), dtype=np.int64)
    logp = np.empty(n_assets)
    lo, hi = _log_bounds(s0)
    for i in range(n_paths):
        _draw_normals(rng, z)
        lam = lam_dt
        lk = 0.0
        eta = 0.0
        if jump_tilt is not None:
            lk = jump_tilt[0]
            eta = jump_tilt[1]
            if shift[i]:
                lam = lam_dt * np.exp(lk)
        lw = 0.0
        n_counts = 0.0
        for t in range(steps):
            if common:
                k = rng.poisson(lam)
                for a in range(n_assets):
                    counts[t, a] = k
                if jump_tilt is not None:
                    lw += -k * lk + np.expm1(lk) * lam_dt
                    n_counts += k
            else:
                for a in range(n_assets):
                    counts[t, a] = rng.poisson(lam)
                    if jump_tilt is not None:
                        lw += -counts[t, a] * lk + np.expm1(lk) * lam_dt
                        n_counts += counts[t, a]
        if theta is not None:
            lw += _tilt_rows(z, theta, shift[i], znorm, i)
        n_normals = 0.0
        sum_normals = 0.0
        _start_path(out, i, s0, logp)
        for t in range(steps):
            for a in range(n_assets):
                w = _correlate(chol[t], z[t], a)
                logp[a] += drift_step[t, a] + diff_scale[t, a] * w
            for a in range(n_assets):
                k = counts[t, a]
                if k > 0:
                    zj = rng.standard_normal()
                    if jump_tilt is not None:
                        if shift[i]:
                            zj += eta
                        lw += eta * (0.5 * eta - zj)
                        n_normals += 1.0
                        sum_normals += zj
                    logp[a] += k * jump_mean + np.sqrt(k) * jump_std * zj
                logp[a] = bound_price_nb(logp[a], lo[a], hi[a])
                out[i, t + 1, a] = np.exp(logp[a])
        if theta is not None:
            logw[i] = lw
        if jump_out is not None:
            jump_out[i, 0] = n_counts
            jump_out[i, 1] = n_normals
            jump_out[i, 2] = sum_normals
    return 0


@njit(cache=True, nogil=True)
def garch_paths_nb(rng, s0, mu_dt, var_dt, vol_mult, gap_log, chol, alpha, beta, out,
                   theta, shift, logw, znorm):  # pragma: no cover - jitted
    """GARCH(1,1) paths with variance targeting and correlated normal innovations.

    Per step, draws ``A`` normals (the same order as :func:`gbm_paths_nb`). The variance
    per step starts at its long-run value ``var_dt`` (= vol**2 dt) and follows
    ``h' = (1 - alpha - beta) var_dt + alpha eps**2 + beta h`` with the innovation
    ``eps = sqrt(h) * (L z)``; the log return is
    ``mu dt - vol_mult**2 h / 2 + vol_mult * eps + gap``. A vol shock scales the returns
    in its window but does not feed the variance recursion (with ``alpha * m**2 + beta >=
    1`` it would explode).

    Parameters
    ----------
    mu_dt, var_dt : float64[A]
        Drift per step and long-run variance per step.
    vol_mult, gap_log : float64[steps, A]
        Vol-shock multipliers and gaps (log).
    """
    n_paths = out.shape[0]
    steps = vol_mult.shape[0]
    n_assets = s0.shape[0]
    z = np.empty(n_assets)
    h = np.empty(n_assets)
    logp = np.empty(n_assets)
    lo, hi = _log_bounds(s0)
    omega_share = 1.0 - alpha - beta
    for i in range(n_paths):
        _start_path(out, i, s0, logp)
        for a in range(n_assets):
            h[a] = var_dt[a]
        lw = 0.0
        for t in range(steps):
            for a in range(n_assets):
                z[a] = rng.standard_normal()
            if theta is not None:
                lw += _tilt(z, theta[t], shift[i], znorm, i, t)
            for a in range(n_assets):
                m = vol_mult[t, a]
                eps = np.sqrt(h[a]) * _correlate(chol[t], z, a)
                logp[a] += mu_dt[a] - 0.5 * m * m * h[a] + m * eps + gap_log[t, a]
                logp[a] = bound_price_nb(logp[a], lo[a], hi[a])
                out[i, t + 1, a] = np.exp(logp[a])
                h[a] = omega_share * var_dt[a] + alpha * eps * eps + beta * h[a]
        if theta is not None:
            logw[i] = lw
    return 0


@njit(cache=True, nogil=True)
def regime_paths_nb(rng, s0, mu_dt, diff_scale, gap_log, chol, chol_stress, stress_mult,
                    p_enter, p_exit, start_stress, states, out, theta, shift, logw,
                    znorm                    ):  # pragma: no cover - jitted
    """Two-state Markov regime-switching GBM.

    Per path, draws ``steps`` uniforms (the transitions: the state of step ``t`` is drawn
    from the state of step ``t - 1``, starting from ``start_stress``), then
    ``steps * A`` normals (C order). In the stress state the diffusion scale is
    multiplied by ``stress_mult`` and ``chol_stress`` replaces the calm correlation.

    Parameters
    ----------
    mu_dt : float64[A]
    diff_scale, gap_log : float64[steps, A]
        Calm ``vol * sqrt(dt)`` (vol shocks included) and gaps (log).
    states : int8[n_paths, steps]
        Output: 1 where the step was in stress.
    """
    n_paths = out.shape[0]
    steps = diff_scale.shape[0]
    n_assets = s0.shape[0]
    z = np.empty((steps, n_assets))
    logp = np.empty(n_assets)
    lo, hi = _log_bounds(s0)
    for i in range(n_paths):
        stress = start_stress
        for t in range(steps):
            u = rng.random()
            if stress:
                stress = u >= p_exit
            else:
                stress = u < p_enter
            states[i, t] = 1 if stress else 0
        _draw_normals(rng, z)
        if theta is not None:
            logw[i] = _tilt_rows(z, theta, shift[i], znorm, i)
        _start_path(out, i, s0, logp)
        for t in range(steps):
            in_stress = states[i, t] == 1
            for a in range(n_assets):
                if in_stress:
                    scale = diff_scale[t, a] * stress_mult
                    w = _correlate(chol_stress, z[t], a)
                else:
                    scale = diff_scale[t, a]
                    w = _correlate(chol[t], z[t], a)
                logp[a] += mu_dt[a] - 0.5 * scale * scale + scale * w + gap_log[t, a]
                logp[a] = bound_price_nb(logp[a], lo[a], hi[a])
                out[i, t + 1, a] = np.exp(logp[a])
    return 0


@njit(cache=True, nogil=True)
def bootstrap_paths_nb(rng, s0, data, block, filtered, omega_share, alpha, beta, sigma0,
                       vol_mult, gap_log, out):  # pragma: no cover - jitted
    """Block bootstrap of whole rows of ``data``, plain or filtered (FHS).

    Per path, draws ``ceil(steps / block)`` uniforms; block ``k`` starts at row
    ``floor(u_k * (rows - block + 1))`` and is copied whole (every asset from the same
    row). Plain: the step's log return is the row's value. Filtered: ``data`` holds
    standardised residuals ``z``, the innovation is ``eps = sqrt(v) * z`` and the variance
    follows ``v' = omega_share * sigma0**2 + alpha * eps**2 + beta * v`` from
    ``v = sigma0**2`` (EWMA: ``omega_share = 0, alpha = 1 - lambda, beta = lambda``;
    GARCH(1,1) with variance targeting otherwise), per asset. Vol shocks multiply the
    return (not the recursion), gaps add.
    """
    n_paths = out.shape[0]
    steps = vol_mult.shape[0]
    n_rows = data.shape[0]
    n_assets = s0.shape[0]
    n_blocks = (steps + block - 1) // block
    starts = np.empty(n_blocks, dtype=np.int64)
    logp = np.empty(n_assets)
    lo, hi = _log_bounds(s0)
    var = np.empty(n_assets)
    for i in range(n_paths):
        for k in range(n_blocks):
            starts[k] = np.int64(rng.random() * (n_rows - block + 1))
        _start_path(out, i, s0, logp)
        for a in range(n_assets):
            var[a] = sigma0[a] * sigma0[a]
        for t in range(steps):
            row = starts[t // block] + t % block
            for a in range(n_assets):
                if filtered:
                    eps = np.sqrt(var[a]) * data[row, a]
                    var[a] = (omega_share[a] * sigma0[a] * sigma0[a] + alpha[a] * eps * eps
                              + beta[a] * var[a])
                else:
                    eps = data[row, a]
                logp[a] += eps * vol_mult[t, a] + gap_log[t, a]
                logp[a] = bound_price_nb(logp[a], lo[a], hi[a])
                out[i, t + 1, a] = np.exp(logp[a])
    return 0
