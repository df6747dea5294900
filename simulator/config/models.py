"""Parameters of the price models other than GBM (``[market.student_t]``,
``[market.jumps]``, ``[market.garch]``, ``[market.regime]``, ``[market.bootstrap]``,
``[market.replay]``), read and validated; and the check of a correlation matrix
(``market.correlation`` and correlation shocks).

Every model keeps the meaning of each asset's ``vol`` (annualised standard deviation of
log returns) and ``drift`` (annualised arithmetic drift), so switching the model changes
the shape of the distribution, not its scale; the exception is ``merton``, where ``vol``
is the diffusion's and the jumps add ``intensity * (mean**2 + std**2)`` of variance per
year (the drift stays the total, through the jump compensator).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulator.config._table import Table, fmt_number
from simulator.errors import ScenarioError
from simulator.input_files import read_regular_bytes, read_regular_text
from simulator.price_files import (
    MAX_EPOCH_S,
    format_time,
    parse_time,
    read_price_file,
    resample_prices,
)

#: sub-table of [market] that each model reads
MODEL_TABLES = {"student_t": "student_t", "merton": "jumps", "garch": "garch",
                "regime": "regime", "bootstrap": "bootstrap", "replay": "replay"}
#: ``[market.replay] noise``: what wraps the recorded path
REPLAY_NOISE = ("none", "bootstrap", "gbm")


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


@dataclass(frozen=True)
class Bootstrap:
    """Block bootstrap of a returns file (rows kept whole across assets).

    ``filter = "none"`` resamples the log returns themselves; ``"ewma"`` and ``"garch"``
    are filtered historical simulation: returns are devolatilised by their EWMA
    volatility (``ewma_lambda``) or by a GARCH(1,1) fitted to each column, the
    standardised rows are resampled, and each path re-volatilises them with the same
    recursion, started at the asset's ``vol`` and updated along the simulated path.
    """

    file: str
    block: int = 12
    filter: str = "none"
    ewma_lambda: float = 0.94
    sha256: str = ""


@dataclass(frozen=True)
class Replay:
    """A recorded price path, replayed (``model = "replay"``, ``[market.replay]``).

    The file (CSV or Parquet: a timestamp column, then one price column per symbol, as
    ``marginsim calibrate`` reads) is resampled onto the scenario's steps: the price at
    step ``k`` is that of the last row at or before ``start + k * step``. ``noise =
    "none"`` makes every path the recorded one; ``"gbm"`` multiplies it by an independent
    mean-one GBM with each asset's ``vol`` (and the market's correlation);
    ``"bootstrap"`` by the exponential of the window's own demeaned log returns,
    resampled in blocks of ``block`` steps (at most ``(steps + 1) // 3``).

    Attributes
    ----------
    file : str
        The price file (resolved against the scenario's folder).
    start_s, end_s : float
        The window, epoch seconds: ``end_s = start_s + horizon_days * 86400``.
    start_prices : tuple of float
        The recorded prices at ``start_s``, in the order of the assets (the assets' prices).
    """

    file: str
    start_s: float
    end_s: float
    start_prices: tuple[float, ...]
    noise: str = "none"
    block: int = 12
    sha256: str = ""

    @property
    def start(self) -> str:
        """The window's start, ISO 8601 UTC."""
        return format_time(self.start_s)


ModelParams = StudentT | Jumps | Garch | Regime | Bootstrap | Replay | None


def read_model_params(market: Table, model: str, n_assets: int, base_dir: Path | None = None,
                      symbols: tuple[str, ...] = (), steps: int = 1,
                      horizon_days: float = 1.0) -> ModelParams:
    """Read the parameter table of ``model`` from ``[market]``; refuse the others.

    ``steps`` and ``horizon_days`` (the scenario's) place a replay's window."""
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
                          f"{fmt_number(alpha)} + {fmt_number(beta)}")
        params = Garch(alpha=alpha, beta=beta)
    elif model == "replay":
        params = _read_replay(t, base_dir, symbols, steps, horizon_days)
    elif model == "bootstrap":
        name = t.string("file")
        path = resolve_data_path(name, base_dir)
        returns = read_returns_file(path, symbols, t.source, t.key("file"))
        block = t.integer("block", 12, lo=1, hi=len(returns))
        params = Bootstrap(file=str(path), block=block,
                           filter=t.string("filter", "none",
                                           choices=("none", "ewma", "garch")),
                           ewma_lambda=t.number("ewma_lambda", 0.94, lo=0.0, hi=1.0,
                                                hi_open=True),
                           sha256=_sha256(path, t))
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


def _read_time(t: Table, name: str) -> float | None:
    """``start`` / ``end`` of ``[market.replay]``: a TOML date or datetime, an ISO string
    or epoch seconds (naive times are UTC); None when not given."""
    raw = t.raw(name, None)
    if raw is None:
        return None
    if isinstance(raw, dt.datetime):  # (TOML datetimes lie in years 1 .. 9999)
        return (raw if raw.tzinfo else raw.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(raw, dt.date):
        return dt.datetime(raw.year, raw.month, raw.day, tzinfo=dt.UTC).timestamp()
    if isinstance(raw, str | int | float) and not isinstance(raw, bool):
        try:
            value = parse_time(str(raw))
        except (ValueError, OverflowError):
            value = math.nan
        if math.isfinite(value) and abs(value) <= MAX_EPOCH_S:
            return value
    raise t.error(name, f"{raw!r} is not a time up to the year 9999; give a TOML datetime "
                  "(2025-10-10T12:00:00Z), an ISO string or epoch seconds")


def _read_replay(t: Table, base_dir: Path | None, symbols: tuple[str, ...], steps: int,
                 horizon_days: float) -> Replay:
    """``[market.replay]``: the file read, checked and resampled (errors name its row and
    column), the window placed on the scenario's steps."""
    name = t.string("file")
    path = resolve_data_path(name, base_dir)
    noise = t.string("noise", "none", choices=REPLAY_NOISE)
    if noise != "bootstrap" and t.has("block"):
        raise t.error("block", "is read only with noise = \"bootstrap\"")
    # at least 2 x block places a block can start: else the noise hardly varies (block =
    # steps leaves one, and every path the same)
    most = max(1, (steps + 1) // 3)
    block = t.integer("block", min(12, most), lo=1, hi=most)
    start_s, end_s = _read_time(t, "start"), _read_time(t, "end")
    if not path.is_file():  # (the reader's own error would not name the key)
        what = "is a directory" if path.is_dir() else "does not exist or is not a regular file"
        raise t.error("file", f"{path} {what}; give a CSV or Parquet file of prices (a "
                      "timestamp column, then one column per symbol)")
    try:  # read once: what is parsed is what is hashed
        data = read_regular_bytes(path)
    except OSError as exc:
        raise t.error("file", f"cannot read {path}: {exc}") from None
    recorded = read_price_file(path, min_rows=1, data=data)
    if start_s is None:
        start_s = float(recorded.times[0])
    horizon_s = horizon_days * 86400.0
    if end_s is not None and abs(end_s - start_s - horizon_s) > 1.0:
        if end_s <= start_s:
            raise t.error("end", f"{format_time(end_s)} is not after the start "
                          f"({format_time(start_s)})")
        raise t.error("end", f"the window {format_time(start_s)} .. {format_time(end_s)} is "
                      f"{(end_s - start_s) / 86400.0:.6g} days; simulation.horizon_days "
                      f"is {fmt_number(horizon_days)}: set horizon_days to the window's "
                      "length, or leave end out (the window is then start + horizon_days)")
    prices = resample_prices(recorded, symbols, start_s, horizon_s / steps, steps)
    return Replay(file=str(path), start_s=start_s, end_s=start_s + horizon_s,
                  start_prices=tuple(float(x) for x in prices[0]), noise=noise, block=block,
                  sha256=hashlib.sha256(data).hexdigest())


def replay_prices(params: Replay, symbols: tuple[str, ...], steps: int) -> np.ndarray:
    """The recorded prices of a replay on the scenario's steps, shape (steps + 1, A).

    Raises
    ------
    ScenarioError
        If the file changed since the scenario was loaded.
    """
    path = Path(params.file)
    try:
        data = read_regular_bytes(path)
    except OSError:
        data = None
    if data is None or hashlib.sha256(data).hexdigest() != params.sha256:
        raise ScenarioError(str(path), "", "the replayed price file changed after the "
                            "scenario was loaded; load the scenario again")
    recorded = read_price_file(path, min_rows=1, data=data)
    return resample_prices(recorded, symbols, params.start_s,
                           (params.end_s - params.start_s) / steps, steps)


def _sha256(path: Path, t: Table) -> str:
    """SHA-256 of a data file that ``t``'s ``file`` key names."""
    try:
        return hashlib.sha256(read_regular_bytes(path)).hexdigest()
    except OSError as exc:  # (replaced since it was read)
        raise t.error("file", f"cannot read {path}: {exc}") from None


def resolve_data_path(name: str, base_dir: Path | None) -> Path:
    """A data file named in a scenario: relative paths resolve against its folder."""
    path = Path(name)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def read_returns_file(path: Path, symbols: tuple[str, ...], source: str, key: str
                      ) -> np.ndarray:
    """Read a CSV of log returns per step: a header row, one column per symbol (others,
    such as a timestamp, are ignored). Returns an array (rows, len(symbols)).

    Raises
    ------
    ScenarioError
        Naming the scenario file and key, or the data file, its row and column.
    """
    try:
        lines = read_regular_text(path).splitlines()  # not /dev/zero, not a FIFO
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(source, key, f"cannot read {path}: {exc}") from None
    rows = [ln.split(",") for ln in lines if ln.strip()]
    if len(rows) < 2:
        raise ScenarioError(str(path), "", "needs a header row and at least one row of returns")
    header = [h.strip() for h in rows[0]]
    missing = [s for s in symbols if s not in header]
    if missing:
        raise ScenarioError(str(path), "header", f"no column for {', '.join(missing)}; the "
                            f"file has {', '.join(header)}")
    cols = [header.index(s) for s in symbols]
    out = np.empty((len(rows) - 1, len(symbols)))
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ScenarioError(str(path), f"row {i}", f"has {len(row)} fields, the header "
                                f"has {len(header)}")
        for j, c in enumerate(cols):
            try:
                value = float(row[c])
            except ValueError:
                raise ScenarioError(str(path), f"row {i}, column {symbols[j]}",
                                    f"{row[c].strip()!r} is not a number") from None
            if not np.isfinite(value) or value <= -50 or value >= 50:
                raise ScenarioError(str(path), f"row {i}, column {symbols[j]}",
                                    f"{value!r} is not a finite log return")
            out[i - 2, j] = value
    return out


def read_matrix(t: Table, name: str, raw: Any, n: int) -> np.ndarray:
    """Read ``name`` (``raw``) as an ``n`` x ``n`` array of finite numbers."""
    if not isinstance(raw, list) or len(raw) != n or any(
        not isinstance(r, list) or len(r) != n for r in raw
    ):
        raise t.error(name, f"must be a {n}x{n} array of arrays (one row per asset, in the "
                      "order of [[market.assets]])")
    for i, row in enumerate(raw):
        for j, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise t.error(name, f"entry [{i}][{j}] must be a finite number, got {v!r}")
    return np.array(raw, dtype=float)


def check_correlation(corr: np.ndarray, source: str, key: str) -> np.ndarray:
    """Check a correlation matrix and return its Cholesky factor.

    Raises
    ------
    ScenarioError
        If it is not symmetric, has a diagonal other than 1, entries outside [-1, 1], or is
        not positive definite.
    """
    if np.max(np.abs(np.diag(corr) - 1.0)) > 1e-12:
        raise ScenarioError(source, key, "diagonal entries must be 1")
    if np.max(np.abs(corr - corr.T)) > 1e-12:
        raise ScenarioError(source, key, "must be symmetric")
    if np.any(np.abs(corr) > 1.0):
        raise ScenarioError(source, key, "entries must lie in [-1, 1]")
    try:
        return np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        smallest = float(np.linalg.eigvalsh(corr)[0])
        raise ScenarioError(
            source, key, f"is not positive definite (smallest eigenvalue {smallest:.3g}); "
            "lower the largest correlations or make them consistent",
        ) from None
