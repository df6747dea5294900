"""Market models, Python layer: turn a scenario into the arrays the path kernels take.

Time runs over ``steps`` steps of ``dt = horizon_days / 365 / steps`` years. A shock at
``step = k`` acts on the move from step ``k - 1`` to step ``k``: a ``gap`` multiplies the
price by ``1 + size`` there; ``vol``, ``correlation`` and ``liquidity`` act on steps
``k .. k + duration_steps - 1`` (vol and depth multipliers compound when windows overlap,
a depth multiplier down to ``MIN_DEPTH_MULTIPLIER``; a later correlation shock overrides
an earlier one on the same entries).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.config.limits import LOG_PRICE_CAP, LOG_PRICE_FLOOR
from simulator.config.models import (
    Bootstrap,
    Garch,
    Jumps,
    ModelParams,
    Regime,
    Replay,
    StudentT,
    read_returns_file,
    replay_prices,
)
from simulator.config.rare import TILTABLE_MODELS
from simulator.config.scenario import Scenario, check_correlation
from simulator.errors import ScenarioError
from simulator.paths._kernels import (
    bootstrap_paths_nb,
    garch_paths_nb,
    gbm_paths_nb,
    merton_paths_nb,
    regime_paths_nb,
    student_t_paths_nb,
)
from simulator.paths.replay import recorded_paths, residuals

#: smallest compounded ``liquidity`` multiplier of the depth (a product of shocks below it,
#: at most an underflow to 0, is raised to it: the depth stays positive)
MIN_DEPTH_MULTIPLIER = 1e-300


@dataclass(frozen=True)
class PathInputs:
    """Arrays that define the exogenous price process of a scenario.

    Attributes
    ----------
    s0 : ndarray, shape (A,)
    drift_step : ndarray, shape (steps, A)
        Log drift per step, gaps included.
    diff_scale : ndarray, shape (steps, A)
        ``vol * sqrt(dt)`` per step, vol shocks included.
    chol : ndarray, shape (steps, A, A)
        Cholesky factor of the correlation in force at each step.
    depth_usd : ndarray, shape (steps + 1, A)
        Depth per step, liquidity shocks included (used by the margin engine).
    model : str
        ``gbm``, ``student_t``, ``merton``, ``garch`` or ``regime``.
    params : StudentT, Jumps, Garch, Regime or None
        The model's parameters.
    mu_dt, var_dt : ndarray, shape (A,)
        Drift and long-run variance per step (``mu dt``, ``vol**2 dt``).
    vol_mult, gap_log : ndarray, shape (steps, A)
        Vol-shock multipliers and log gaps per step (already inside ``drift_step`` and
        ``diff_scale``; the GARCH and regime kernels use them directly).
    chol_stress : ndarray, shape (A, A)
        Cholesky factor of the stress correlation (regime model; identity otherwise).
    data : ndarray, shape (rows, A)
        Bootstrap model: the returns file's log returns, or their standardised residuals
        when ``filter`` is ``"ewma"`` or ``"garch"``.
    filter_params : ndarray, shape (3, A)
        Bootstrap filter recursion per asset: ``omega_share``, ``alpha``, ``beta``.
    recorded : ndarray, shape (steps + 1, A)
        Replay model: the recorded prices on the steps (:mod:`simulator.paths.replay`).
    """

    s0: np.ndarray
    drift_step: np.ndarray
    diff_scale: np.ndarray
    chol: np.ndarray
    depth_usd: np.ndarray
    model: str = "gbm"
    params: ModelParams = None
    dt_years: float = 1.0 / 365.0
    mu_dt: np.ndarray | None = None
    var_dt: np.ndarray | None = None
    vol_mult: np.ndarray | None = None
    gap_log: np.ndarray | None = None
    chol_stress: np.ndarray | None = None
    data: np.ndarray | None = None
    filter_params: np.ndarray | None = None
    recorded: np.ndarray | None = None

    @property
    def steps(self) -> int:
        """Number of time steps."""
        return self.drift_step.shape[0]

    @property
    def n_assets(self) -> int:
        """Number of assets."""
        return self.s0.shape[0]


def _window(step: int, duration: int, steps: int) -> slice:
    """Rows ``step - 1 .. step + duration - 2`` of a per-step array (step k -> row k - 1)."""
    return slice(step - 1, min(step - 1 + duration, steps))


def prepare_path_inputs(scenario: Scenario) -> PathInputs:
    """Build the path arrays of ``scenario`` (GBM with its scheduled shocks).

    Parameters
    ----------
    scenario : Scenario

    Returns
    -------
    PathInputs

    Raises
    ------
    ScenarioError
        If a correlation shock makes the matrix not positive definite.
    """
    market = scenario.market
    sim = scenario.simulation
    steps, n = sim.steps, len(market.assets)
    dt = sim.dt_years
    vol = np.array([a.vol for a in market.assets])
    mu = np.array([a.drift for a in market.assets])
    vol_mult = np.ones((steps, n))
    gap_log = np.zeros((steps, n))
    depth_mult = np.ones((steps + 1, n))
    base = np.array(market.correlation)
    corr_by_step: list[np.ndarray | None] = [None] * steps
    for shock in scenario.shocks:
        cols = slice(None) if shock.asset == "*" else market.index(shock.asset)
        rows = _window(shock.step, shock.duration_steps, steps)
        if shock.kind == "gap":
            gap_log[shock.step - 1, cols] += np.log1p(shock.size)
        elif shock.kind == "vol":
            vol_mult[rows, cols] *= shock.size
        elif shock.kind == "liquidity":
            depth_mult[shock.step:shock.step + shock.duration_steps, cols] *= shock.size
        else:
            for t in range(rows.start, rows.stop):
                corr = (corr_by_step[t] if corr_by_step[t] is not None else base).copy()
                if shock.asset == "*":
                    corr[~np.eye(n, dtype=bool)] = shock.size
                else:
                    k = market.index(shock.asset)
                    corr[k, :] = shock.size
                    corr[:, k] = shock.size
                    corr[k, k] = 1.0
                corr_by_step[t] = corr
    chol = np.empty((steps, n, n))
    base_chol = np.linalg.cholesky(base)
    cache: dict[bytes, np.ndarray] = {}
    for t in range(steps):
        corr = corr_by_step[t]
        if corr is None:
            chol[t] = base_chol
            continue
        key = corr.tobytes()
        if key not in cache:
            try:
                cache[key] = check_correlation(corr, scenario.source, "shocks")
            except ScenarioError as exc:
                raise ScenarioError(scenario.source, "shocks", f"a correlation shock at step "
                                    f"{t + 1} gives a matrix that {exc.message}") from None
        chol[t] = cache[key]
    eff_vol = vol[None, :] * vol_mult
    drift_step = (mu[None, :] - 0.5 * eff_vol**2) * dt + gap_log
    params = market.params
    if isinstance(params, Jumps):  # compensator: jumps do not change the mean return
        kappa = np.expm1(params.mean + 0.5 * params.std**2)
        drift_step = drift_step - params.intensity * kappa * dt
    diff_scale = eff_vol * np.sqrt(dt)
    # compounded liquidity multipliers (each in (0, 1e6]) can underflow to 0, which would
    # give a depth of 0 (the impact law divides by it) or NaN (inf * 0 when depth_usd = inf)
    depth_mult = np.maximum(depth_mult, MIN_DEPTH_MULTIPLIER)
    depth = np.array([a.depth_usd for a in market.assets])[None, :] * depth_mult
    s0 = np.array([a.price for a in market.assets])
    chol_stress = np.eye(n)
    if isinstance(params, Regime):
        stress = np.full((n, n), params.correlation)
        np.fill_diagonal(stress, 1.0)
        chol_stress = np.linalg.cholesky(stress)
    data = filter_params = recorded = None
    if isinstance(params, Replay):
        recorded = replay_prices(params, market.symbols, steps)
        s0 = recorded[0].copy()
    if isinstance(params, Bootstrap):
        returns = read_returns_file(Path(params.file), market.symbols, scenario.source,
                                    "market.bootstrap.file")
        data, filter_params = standardise_returns(returns, params)
    return PathInputs(s0=s0, drift_step=drift_step, diff_scale=diff_scale, chol=chol, data=data,
                      depth_usd=depth, model=market.model, params=params, mu_dt=mu * dt,
                      var_dt=vol**2 * dt, vol_mult=vol_mult, gap_log=gap_log,
                      chol_stress=chol_stress, dt_years=dt, filter_params=filter_params,
                      recorded=recorded)


def generate_paths(
    inputs: PathInputs, n_paths: int, rng: np.random.Generator, out: np.ndarray | None = None,
    theta: np.ndarray | None = None, log_weight: np.ndarray | None = None,
    normals: np.ndarray | None = None, shift: np.ndarray | None = None,
    mix_tilt: np.ndarray | None = None, jump_tilt: np.ndarray | None = None,
    mix_out: np.ndarray | None = None, jump_out: np.ndarray | None = None,
) -> np.ndarray:
    """Draw exogenous price paths with the Numba kernel.

    Parameters
    ----------
    inputs : PathInputs
    n_paths : int
    rng : numpy.random.Generator
        The chunk's generator; ``n_paths * steps * A`` normals are drawn from it.
    out : ndarray, shape (n_paths, steps + 1, A), optional
    theta : ndarray, shape (steps, A), optional
        Importance sampling: the shift of the standard normals of each step (the
        innovations before correlation; see :mod:`simulator.paths._kernels`). Only for
        the models of :data:`TILTABLE_MODELS`.
    log_weight : ndarray, shape (n_paths,), optional
        Receives the log likelihood ratio of each path (0 without ``theta``).
    normals : ndarray, shape (n_paths, steps, A), optional
        Receives, with ``theta``, each path's normals as used.
    shift : ndarray of bool, shape (n_paths,), optional
        Which paths ``theta`` shifts (default: every one); the others are drawn plain (a
        defensive mixture), their ``log_weight`` still ``log(p / q)`` of their normals.
    mix_tilt : ndarray, shape (steps,), optional
        ``student_t`` with ``theta``: the log scale ``log c_t`` of each step's mixing
        variable (:func:`~simulator.paths._kernels.student_t_paths_nb`).
    jump_tilt : ndarray, shape (2,), optional
        ``merton`` with ``theta``: ``log kappa`` (the jump intensity's multiplier) and
        ``eta`` (the shift of the jump normals).
    mix_out, jump_out : ndarray, optional
        Receive the mixing variables used, shape (n_paths, steps), and per path the jump
        count, the number of jump normals and their sum, shape (n_paths, 3).

    Returns
    -------
    ndarray, shape (n_paths, steps + 1, A)
        Prices, ``[:, 0]`` the initial prices.
    """
    inputs = _writeable(inputs)
    shape = (n_paths, inputs.steps + 1, inputs.n_assets)
    if out is None:
        out = np.empty(shape)
    elif out.shape != shape or out.dtype != np.float64:
        raise ValueError(f"out must be float64 of shape {shape}")
    logw = np.zeros(n_paths) if log_weight is None else log_weight
    if logw.shape != (n_paths,) or logw.dtype != np.float64:
        raise ValueError(f"log_weight must be float64 of shape ({n_paths},)")
    if theta is not None:
        if inputs.model not in TILTABLE_MODELS:
            raise ValueError(f"model {inputs.model!r} cannot be importance-sampled "
                             f"(models that can: {', '.join(TILTABLE_MODELS)})")
        theta = np.require(theta, dtype=np.float64, requirements=("C", "W"))
        if theta.shape != (inputs.steps, inputs.n_assets):
            raise ValueError(f"theta must have shape {(inputs.steps, inputs.n_assets)}")
    logw[:] = 0.0
    shifted = (np.ones(n_paths, dtype=bool) if shift is None
               else np.require(shift, dtype=bool, requirements=("C", "W")))
    if shifted.shape != (n_paths,):
        raise ValueError(f"shift must have shape ({n_paths},)")
    znorm = normals
    if znorm is not None and (znorm.shape != (n_paths, inputs.steps, inputs.n_assets)
                              or znorm.dtype != np.float64):
        raise ValueError("normals must be float64 of shape "
                         f"{(n_paths, inputs.steps, inputs.n_assets)}")
    if znorm is not None:
        znorm = np.require(znorm, requirements=("C", "W"))
    if (mix_tilt is not None or jump_tilt is not None) and theta is None:
        raise ValueError("mix_tilt and jump_tilt go with theta")
    p = inputs.params
    if isinstance(p, Replay):
        if p.noise == "none":
            return recorded_paths(inputs.recorded, inputs.gap_log, inputs.mu_dt, out)
        generate_paths(_noise_inputs(inputs), n_paths, rng, out, theta, logw, znorm, shift)
        if p.noise == "bootstrap":
            out *= inputs.recorded[None]
        return out
    if isinstance(p, StudentT):
        student_t_paths_nb(rng, inputs.s0, inputs.drift_step, inputs.diff_scale, inputs.chol,
                           p.dof, out, theta, shifted, logw, znorm,
                           _f64(mix_tilt, (inputs.steps,)),
                           _f64(mix_out, (n_paths, inputs.steps)))
    elif isinstance(p, Jumps):
        merton_paths_nb(rng, inputs.s0, inputs.drift_step, inputs.diff_scale, inputs.chol,
                        p.intensity * _dt(inputs), p.mean, p.std, p.common, out, theta,
                        shifted, logw, znorm, _f64(jump_tilt, (2,)),
                        _f64(jump_out, (n_paths, 3)))
    elif isinstance(p, Garch):
        garch_paths_nb(rng, inputs.s0, inputs.mu_dt, inputs.var_dt, inputs.vol_mult,
                       inputs.gap_log, inputs.chol, p.alpha, p.beta, out, theta, shifted,
                       logw, znorm)
    elif isinstance(p, Bootstrap):
        fp = inputs.filter_params
        bootstrap_paths_nb(rng, inputs.s0, inputs.data, p.block, p.filter != "none", fp[0],
                           fp[1], fp[2], np.sqrt(inputs.var_dt), inputs.vol_mult,
                           inputs.gap_log, out)
    elif isinstance(p, Regime):
        states = np.empty((n_paths, inputs.steps), dtype=np.int8)
        regime_paths_nb(rng, inputs.s0, inputs.mu_dt, inputs.diff_scale, inputs.gap_log,
                        inputs.chol, inputs.chol_stress, p.vol_multiplier, p.p_enter,
                        p.p_exit, p.start == "stress", states, out, theta, shifted, logw, znorm)
    else:
        gbm_paths_nb(rng, inputs.s0, inputs.drift_step, inputs.diff_scale, inputs.chol, out,
                     theta, shifted, logw, znorm)
    return out


def _noise_inputs(inputs: PathInputs) -> PathInputs:
    """The inputs of the model that draws a replay's noisy paths
    (:mod:`simulator.paths.replay`): GBM whose drift follows the record (``noise =
    "gbm"``), or the bootstrap of the record's residuals started at 1 (``"bootstrap"``:
    its prices are then multiplied by the record)."""
    p = inputs.params
    assert isinstance(p, Replay) and inputs.recorded is not None
    if p.noise == "gbm":
        return dataclasses.replace(inputs, model="gbm", params=None, drift_step=(
            inputs.drift_step + np.diff(np.log(inputs.recorded), axis=0)))
    n_assets = inputs.n_assets
    return dataclasses.replace(
        inputs, model="bootstrap", s0=np.ones(n_assets),
        params=Bootstrap(file=p.file, block=p.block, sha256=p.sha256),
        data=residuals(inputs.recorded, p.block), filter_params=np.zeros((3, n_assets)),
        gap_log=inputs.gap_log + inputs.mu_dt[None, :])


def _writeable(inputs: PathInputs) -> PathInputs:
    """``inputs`` with every read-only array replaced by a writeable copy (itself when none
    is read-only). joblib memory-maps large arguments read-only in its workers, and Ray and
    Dask may deserialise arrays read-only; to Numba a read-only array is a type of its own,
    so a worker would compile the path kernels again instead of loading the driver's."""
    copies = {f.name: np.array(value) for f in dataclasses.fields(inputs)
              if isinstance(value := getattr(inputs, f.name), np.ndarray)
              and not value.flags.writeable}
    return dataclasses.replace(inputs, **copies) if copies else inputs


def _f64(x: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """``x`` as a C-contiguous float64 array of ``shape`` (None stays None)."""
    if x is None:
        return None
    if x.shape != shape or x.dtype != np.float64 or not x.flags.c_contiguous:
        raise ValueError(f"expected a C-contiguous float64 array of shape {shape}")
    return x if x.flags.writeable else x.copy()


def standardise_returns(returns: np.ndarray, params: Bootstrap
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Devolatilise a returns file for filtered historical simulation.

    ``filter = "none"``: the returns as they are. ``"ewma"``: divided by the RiskMetrics
    forecast ``v_t = lam v_{t-1} + (1 - lam) r_{t-1}^2`` (started at the column's sample
    variance). ``"garch"``: demeaned, divided by the conditional vol of a GARCH(1,1) with
    variance targeting fitted per column by maximum likelihood
    (:mod:`simulator.calibration.fit`). Returns the data and the per-asset recursion
    ``(omega_share, alpha, beta)`` that re-volatilises them, shape (3, A).
    """
    n_assets = returns.shape[1]
    if params.filter == "none":
        return returns, np.zeros((3, n_assets))
    if params.filter == "ewma":
        lam = params.ewma_lambda
        var = np.empty_like(returns)
        var[0] = returns.var(axis=0)
        for t in range(1, len(returns)):
            var[t] = lam * var[t - 1] + (1.0 - lam) * returns[t - 1] ** 2
        recursion = np.tile([[0.0], [1.0 - lam], [lam]], (1, n_assets))
        return returns / np.sqrt(np.maximum(var, 1e-300)), recursion
    from simulator.calibration.fit import fit_garch_standardised, garch_variance

    z = np.empty_like(returns)
    recursion = np.empty((3, n_assets))
    for a in range(n_assets):
        x = returns[:, a] - returns[:, a].mean()
        sd = x.std()
        x = x / sd if sd > 0 else x
        alpha, beta = fit_garch_standardised(x)
        z[:, a] = x / np.sqrt(garch_variance(alpha, beta, x))
        recursion[:, a] = (1.0 - alpha - beta, alpha, beta)
    return z, recursion


def _dt(inputs: PathInputs) -> float:
    """Step length in years."""
    return float(inputs.dt_years)


def _cumulate(s0: np.ndarray, log_returns: np.ndarray) -> np.ndarray:
    """Prices from log returns, the running log price kept within :mod:`simulator.config.limits`."""
    n, steps, n_assets = log_returns.shape
    out = np.empty((n, steps + 1, n_assets))
    out[:, 0] = s0
    lo, hi = np.log(s0) + LOG_PRICE_FLOOR, np.log(s0) + LOG_PRICE_CAP
    logp = np.tile(np.log(s0), (n, 1))
    for t in range(steps):
        logp = np.clip(logp + log_returns[:, t], lo, hi)
        out[:, t + 1] = np.exp(logp)
    return out


def generate_paths_numpy(inputs: PathInputs, n_paths: int, rng: np.random.Generator,
                         theta: np.ndarray | None = None,
                         log_weight: np.ndarray | None = None,
                         normals: np.ndarray | None = None,
                         shift: np.ndarray | None = None,
                         mix_tilt: np.ndarray | None = None,
                         jump_tilt: np.ndarray | None = None) -> np.ndarray:
    """Reference implementation of :func:`generate_paths` in plain NumPy.

    Draws the same random numbers in the same order as the kernels, so from the same
    generator state it gives the same prices (up to floating-point rounding of the sums).
    With ``theta`` the normals of every step of the paths of ``shift`` (default: all) are
    shifted by it, ``log_weight`` receives ``sum_t (-theta_t . x_t + |theta_t|**2 / 2)``
    per path and ``normals`` the normals ``x`` as used, as in the kernels; ``mix_tilt``
    and ``jump_tilt`` tilt the Student-t mixing and the Merton jumps as the kernels do.
    """
    p = inputs.params
    steps, n_assets = inputs.steps, inputs.n_assets
    if log_weight is not None:
        log_weight[:] = 0.0

    if theta is not None and inputs.model not in TILTABLE_MODELS:
        raise ValueError(f"model {inputs.model!r} cannot be importance-sampled")
    if isinstance(p, Replay):
        if p.noise == "none":
            return recorded_paths(inputs.recorded, inputs.gap_log, inputs.mu_dt,
                                  np.empty((n_paths, steps + 1, n_assets)))
        noisy = generate_paths_numpy(_noise_inputs(inputs), n_paths, rng)
        return noisy * inputs.recorded[None] if p.noise == "bootstrap" else noisy

    def draw(shape: tuple[int, ...], path: int | None = None) -> np.ndarray:
        """Standard normals of ``shape``, shifted by ``theta`` (their log ratio recorded
        for every path, or for ``path``)."""
        eps = rng.standard_normal(shape)
        if theta is None:
            return eps
        rows = slice(None) if path is None else path
        on = np.ones(n_paths, dtype=bool) if shift is None else np.asarray(shift, dtype=bool)
        x = eps + theta * (on[rows, None, None] if path is None else on[rows])
        lw = (theta * (0.5 * theta - x)).sum(axis=(-2, -1))
        if log_weight is not None:
            log_weight[rows] = lw
        if normals is not None:
            normals[rows] = x
        return x

    if isinstance(p, Bootstrap):
        n_rows = inputs.data.shape[0]
        n_blocks = -(-steps // p.block)
        log_returns = np.empty((n_paths, steps, n_assets))
        for i in range(n_paths):
            starts = (rng.random(n_blocks) * (n_rows - p.block + 1)).astype(np.int64)
            rows = (starts[:, None] + np.arange(p.block)[None, :]).ravel()[:steps]
            picked = inputs.data[rows].copy()
            if p.filter != "none":
                omega_share, alpha, beta = inputs.filter_params
                var = inputs.var_dt.copy()
                for t in range(steps):
                    eps = np.sqrt(var) * picked[t]
                    var = omega_share * inputs.var_dt + alpha * eps * eps + beta * var
                    picked[t] = eps
            log_returns[i] = picked * inputs.vol_mult + inputs.gap_log
        return _cumulate(inputs.s0, log_returns)
    if isinstance(p, Garch):
        z = draw((n_paths, steps, n_assets))
        w = np.einsum("tab,ntb->nta", inputs.chol, z)
        h = np.tile(inputs.var_dt, (n_paths, 1))
        log_returns = np.empty_like(w)
        for t in range(steps):
            m = inputs.vol_mult[t]
            eps = np.sqrt(h) * w[:, t]
            log_returns[:, t] = inputs.mu_dt - 0.5 * m * m * h + m * eps + inputs.gap_log[t]
            h = (1.0 - p.alpha - p.beta) * inputs.var_dt + p.alpha * eps**2 + p.beta * h
        return _cumulate(inputs.s0, log_returns)
    if p is None:
        z = draw((n_paths, steps, n_assets))
        w = np.einsum("tab,ntb->nta", inputs.chol, z)
        return _cumulate(inputs.s0, inputs.drift_step[None] + inputs.diff_scale[None] * w)
    log_returns = np.empty((n_paths, steps, n_assets))
    for i in range(n_paths):  # these models draw path by path
        if isinstance(p, Regime):
            u = rng.random(steps)
            stress = np.empty(steps, dtype=bool)
            state = p.start == "stress"
            for t in range(steps):
                state = (u[t] >= p.p_exit) if state else (u[t] < p.p_enter)
                stress[t] = state
            z = draw((steps, n_assets), i)
            calm = np.einsum("tab,tb->ta", inputs.chol, z)
            hot = z @ inputs.chol_stress.T
            scale = inputs.diff_scale * np.where(stress[:, None], p.vol_multiplier, 1.0)
            w = np.where(stress[:, None], hot, calm)
            log_returns[i] = inputs.mu_dt - 0.5 * scale**2 + scale * w + inputs.gap_log
            continue
        z = draw((steps, n_assets), i)
        w = np.einsum("tab,tb->ta", inputs.chol, z)
        base = inputs.drift_step + inputs.diff_scale * w
        on = shift is None or bool(shift[i])
        if isinstance(p, StudentT):
            mixing = rng.chisquare(p.dof, steps)
            if mix_tilt is not None:
                c = np.exp(mix_tilt)
                mixing = mixing * c if on else mixing
                if log_weight is not None:
                    log_weight[i] += np.sum(0.5 * p.dof * mix_tilt
                                            + 0.5 * mixing * (1 - c) / c)
            mix = np.sqrt((p.dof - 2.0) / mixing)
            base = inputs.drift_step + inputs.diff_scale * w * mix[:, None]
        elif isinstance(p, Jumps):
            lam_dt = p.intensity * _dt(inputs)
            lk, eta = (0.0, 0.0) if jump_tilt is None else (jump_tilt[0], jump_tilt[1])
            lam = lam_dt * math.exp(lk) if on else lam_dt
            drawn = rng.poisson(lam, steps if p.common else (steps, n_assets))
            counts = np.repeat(drawn[:, None], n_assets, axis=1) if p.common else drawn
            hit = counts > 0
            jumps = np.zeros((steps, n_assets))
            k = counts[hit]
            zj = rng.standard_normal(int(hit.sum())) + (eta if on else 0.0)
            if jump_tilt is not None and log_weight is not None:
                log_weight[i] += (np.sum(-drawn * lk + math.expm1(lk) * lam_dt)
                                  + np.sum(eta * (0.5 * eta - zj)))
            jumps[hit] = k * p.mean + np.sqrt(k) * p.std * zj
            base = base + jumps
        log_returns[i] = base
    return _cumulate(inputs.s0, log_returns)
