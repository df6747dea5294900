"""Parameters of the price models other than GBM (``[market.student_t]``,
``[market.jumps]``, ``[market.garch]``, ``[market.regime]``), read and validated.

Every model keeps the meaning of each asset's ``vol`` (annualised standard deviation of
log returns) and ``drift`` (annualised arithmetic drift), so switching the model changes
the shape of the distribution, not its scale.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._validate import Table

#: sub-table of [market] that each model reads
MODEL_TABLES = {"student_t": "student_t", "merton": "jumps", "garch": "garch",
                "regime": "regime"}


@dataclass(frozen=True)
class StudentT:
    """Multivariate Student-t innovations, variance-normalised: ``dof > 2``."""

    dof: float = 4.0


@dataclass(frozen=True)
class Jumps:
    """Merton jumps: Poisson arrivals (``intensity`` per year) of normal log jumps.

    With ``common = true`` one arrival process drives every asset (a crash hits them all
    in the same step); each asset still draws its own jump size.
    """

    intensity: float = 2.0
    mean: float = -0.1
    std: float = 0.05
    common: bool = False


@dataclass(frozen=True)
class Garch:
    """GARCH(1,1) with variance targeting: long-run variance = the asset's ``vol``."""

    alpha: float = 0.1
    beta: float = 0.85


@dataclass(frozen=True)
class Regime:
    """Two-state Markov regime: calm (the assets' vols, the market correlation) and
    stress (vols x ``vol_multiplier``, every off-diagonal correlation = ``correlation``).
    ``p_enter`` / ``p_exit`` are per-step transition probabilities."""

    vol_multiplier: float = 2.5
    correlation: float = 0.9
    p_enter: float = 0.01
    p_exit: float = 0.1
    start: str = "calm"


ModelParams = StudentT | Jumps | Garch | Regime | None


def read_model_params(market: Table, model: str, n_assets: int) -> ModelParams:
    """Read the parameter table of ``model`` from ``[market]``; refuse the others."""
    for other_model, name in MODEL_TABLES.items():
        if other_model != model and market.has(name):
            market.raw(name)
            raise market.error(name, f"is only read with model = \"{other_model}\" (the model "
                               f"is \"{model}\")")
    if model not in MODEL_TABLES:
        return None
    t = market.table(MODEL_TABLES[model], {})
    if model == "student_t":
        params: ModelParams = StudentT(dof=t.number("dof", StudentT.dof, lo=2.0, lo_open=True,
                                                    hi=1e6))
    elif model == "merton":
        params = Jumps(intensity=t.number("intensity", Jumps.intensity, lo=0.0, hi=1e5),
                       mean=t.number("mean", Jumps.mean, lo=-20.0, hi=20.0),
                       std=t.number("std", Jumps.std, lo=0.0, hi=20.0),
                       common=t.boolean("common", Jumps.common))
    elif model == "garch":
        alpha = t.number("alpha", Garch.alpha, lo=0.0, hi=1.0)
        beta = t.number("beta", Garch.beta, lo=0.0, hi=1.0)
        if alpha + beta >= 1.0:
            raise t.error("beta", f"alpha + beta must be < 1 (a stationary variance), got "
                          f"{alpha:g} + {beta:g}")
        params = Garch(alpha=alpha, beta=beta)
    else:
        lo_corr = -1.0 / (n_assets - 1) if n_assets > 1 else -1.0
        params = Regime(
            vol_multiplier=t.number("vol_multiplier", Regime.vol_multiplier, lo=0.0, hi=1e3),
            correlation=t.number("correlation", Regime.correlation, lo=lo_corr, lo_open=True,
                                 hi=1.0, hi_open=True),
            p_enter=t.number("p_enter", Regime.p_enter, lo=0.0, hi=1.0),
            p_exit=t.number("p_exit", Regime.p_exit, lo=0.0, hi=1.0),
            start=t.string("start", Regime.start, choices=("calm", "stress")))
    t.finish()
    return params
