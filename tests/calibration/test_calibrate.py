"""Calibration: the fits recover known parameters from simulated data, the GARCH fit agrees
with ``arch`` on the S&P 500, bad price files are refused naming the file and the cell, and
the printed ``[market]`` block is valid TOML that the scenario loader accepts.

Tolerances are K standard errors. Where the SE comes from the estimator itself (the
Hessian of the likelihood), the test first checks it against the spread of the estimates
over repeated simulations, measured once offline with the same sample sizes and noted
beside each constant, so a wrong SE cannot make a test pass: a reported SE must lie
between 0.5 and 4 times that spread (too small would mislead users; one sample's SE can
be large where its likelihood is flat).
"""

from __future__ import annotations

import io
import math
import re
import tomllib
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from simulator.calibration.block import calibrate_main, market_block
from simulator.calibration.fit import fit, load_prices, merton_nll
from simulator.errors import ScenarioError

K = 4.0  # tolerance in standard errors


def to_prices(log_returns: np.ndarray, s0: float = 100.0) -> np.ndarray:
    """Prices (T + 1, A) from log returns (T, A)."""
    zero = np.zeros((1, log_returns.shape[1]))
    return s0 * np.exp(np.vstack([zero, np.cumsum(log_returns, axis=0)]))


def simulate_garch(rng, n, alpha, beta, var_step, corr):
    """GARCH(1,1) with variance targeting and correlated normal innovations, as the
    simulator draws it: h starts at the long-run variance."""
    chol = np.linalg.cholesky(corr)
    z = rng.standard_normal((n, len(var_step))) @ chol.T
    eps = np.empty_like(z)
    h = np.array(var_step, dtype=float)
    for t in range(n):
        eps[t] = np.sqrt(h) * z[t]
        h = (1.0 - alpha - beta) * var_step + alpha * eps[t] ** 2 + beta * h
    return eps


def write_csv(path, times, symbols, rows):
    lines = [",".join(["timestamp", *symbols])]
    lines += [",".join([str(t), *(str(v) for v in row)]) for t, row in zip(times, rows,
                                                                           strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def daily(n, start=datetime(2020, 1, 1)):
    return [(start + timedelta(days=i)).date().isoformat() for i in range(n)]


# --------------------------------------------------------------------------- recovery


def test_gbm_recovers_vol_drift_and_correlation():
    # weekly steps (365/7 a year) over 5,000 steps = 96 years, so that the drift's SE,
    # vol / sqrt(years), is small enough to see a missing vol**2 / 2 (1.125 for vol 1.5)
    rng = np.random.default_rng(11)
    n, step_days = 5000, 7.0
    dt = step_days / 365.0
    vol = np.array([0.3, 0.8, 1.5])
    mu = np.array([0.1, -0.2, 0.0])
    corr = np.array([[1.0, 0.7, 0.3], [0.7, 1.0, -0.2], [0.3, -0.2, 1.0]])
    z = rng.standard_normal((n, 3)) @ np.linalg.cholesky(corr).T
    r = (mu - 0.5 * vol**2) * dt + vol * math.sqrt(dt) * z
    got = fit(to_prices(r), step_days, "gbm", symbols=["A", "B", "C"])

    assert got["model"] == "gbm" and got["symbols"] == ["A", "B", "C"]
    assert got["periods_per_year"] == pytest.approx(365.0 / 7.0)
    assert got["n_returns"] == n
    se_vol = vol / math.sqrt(2 * n)                   # sample sd of n normals
    np.testing.assert_array_less(np.abs(got["vol"] - vol), K * se_vol)
    np.testing.assert_allclose(got["vol_stderr"], se_vol, rtol=0.05)
    se_drift = vol / math.sqrt(n * dt)                # mean return over n * dt years
    np.testing.assert_array_less(np.abs(got["drift"] - mu), K * se_drift)
    # Fisher z: atanh(r) ~ N(atanh(rho), 1 / (n - 3))
    iu = np.triu_indices(3, 1)
    dz = np.arctanh(got["correlation"][iu]) - np.arctanh(corr[iu])
    np.testing.assert_array_less(np.abs(dz), K / math.sqrt(n - 3))
    assert np.array_equal(got["correlation"], got["correlation"].T)
    assert np.all(np.diag(got["correlation"]) == 1.0)


def test_student_t_recovers_dof_of_multivariate_t():
    # Offline, 200 seeds of one asset with nu = 5, n = 20,000: mean dof 5.004, sd 0.185,
    # mean reported SE 0.175. The estimate is skewed to the right (1 in 200 asset fits
    # beyond 4 sd), so the tolerance is K x 1.2 x 0.185 = 0.89.
    spread = 0.185
    rng = np.random.default_rng(5)
    n, nu, rho = 20_000, 5.0, 0.6
    vol = np.array([0.5, 0.9])
    dt = 1.0 / 365.0
    z = rng.standard_normal((n, 2)) @ np.linalg.cholesky([[1.0, rho], [rho, 1.0]]).T
    w = rng.chisquare(nu, n)[:, None]                 # one mixing variable per step
    r = vol * math.sqrt(dt) * math.sqrt((nu - 2) / nu) * z / np.sqrt(w / nu)
    got = fit(to_prices(r), 1.0, "student_t")

    dofs, ses = got["per_asset"]["dof"], got["stderr"]["dof"]
    assert np.all((ses > 0.5 * spread) & (ses < 4.0 * spread)), ses
    np.testing.assert_array_less(np.abs(dofs - nu), K * 1.2 * spread)
    assert got["dof"] == pytest.approx(dofs.mean())
    # sample sd of t(5): Var(s^2) = sigma^4 (kurtosis - 1) / n with kurtosis 9 -> SE(s) =
    # sigma sqrt(2 / n)
    np.testing.assert_array_less(np.abs(got["vol"] - vol), K * vol * math.sqrt(2.0 / n))
    # Pearson r of an elliptical law: Var(atanh r) ~ (1 + kappa) / n, kappa = 2 / (nu - 4)
    dz = math.atanh(got["correlation"][0, 1]) - math.atanh(rho)
    assert abs(dz) < K * math.sqrt((1.0 + 2.0 / (nu - 4.0)) / (n - 3))


def test_merton_likelihood_and_gradient_against_naive_sums():
    from scipy import stats

    x = np.random.default_rng(4).standard_normal(50) * 1.3
    theta = np.array([0.05, 0.8, math.log(0.3), -0.7, 1.1])
    c, sigma, p, m, s = 0.05, 0.8, 0.3, -0.7, 1.1
    density = sum(stats.poisson.pmf(k, p) * stats.norm.pdf(x, c + k * m,
                                                           math.sqrt(sigma**2 + k * s * s))
                  for k in range(11))
    nll, grad = merton_nll(theta, x)
    assert nll == pytest.approx(-np.log(density).sum(), rel=1e-12)
    h = 1e-6
    numeric = [(merton_nll(theta + h * e, x)[0] - merton_nll(theta - h * e, x)[0]) / (2 * h)
               for e in np.eye(5)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6)


def test_merton_recovers_jump_parameters():
    # Jumps of -8% +- 4% a day against a daily diffusion sd of 2.1%: identifiable (with
    # jumps of the diffusion's size the likelihood can have two modes, fewer big jumps or
    # more small ones, and the MLE of lambda a heavy tail). Offline, 100 seeds with these
    # parameters and n = 20,000 daily steps (about 820 jumps): sd of the estimates lambda
    # 1.58, m 0.0059, s 0.0033, diffusion vol 0.0027, largest deviation 3.2 sd; Hessian
    # SEs mostly 0.6 to 1.6 x those sds. Tolerance: K x the sd x 1.2 (an sd estimated
    # from 100 draws may be 15% short at 95%).
    spread = {"intensity": 1.58, "mean": 0.0059, "std": 0.0033, "vol": 0.0027}
    rng = np.random.default_rng(23)
    n, dt = 20_000, 1.0 / 365.0
    lam, m, s, sig, mu = 15.0, -0.08, 0.04, 0.4, 0.1
    kappa = math.expm1(m + 0.5 * s * s)
    jumps = rng.poisson(lam * dt, n)
    r = ((mu - 0.5 * sig**2 - lam * kappa) * dt + sig * math.sqrt(dt) * rng.standard_normal(n)
         + jumps * m + np.sqrt(jumps) * s * rng.standard_normal(n))
    got = fit(to_prices(r[:, None]), 1.0, "merton")

    assert got["common"] is False
    assert got["jumps_found"][0] and got["jump_lr"][0] > 100.0
    for key, true in (("intensity", lam), ("mean", m), ("std", s), ("vol", sig)):
        est = got["vol"][0] if key == "vol" else got[key]
        se = got["vol_diffusion_stderr" if key == "vol" else "stderr"]
        se = se[0] if key == "vol" else se[key][0]
        assert 0.5 * spread[key] < se < 4.0 * spread[key], (key, se)
        assert abs(est - true) < K * 1.2 * spread[key], (key, est)
    total = math.sqrt(sig**2 + lam * (m * m + s * s))
    assert got["total_vol"][0] == pytest.approx(total, rel=0.05)
    # drift is the compensated mu; its SE is the total vol over sqrt(years)
    assert abs(got["drift"][0] - mu) < K * total / math.sqrt(n * dt)
    # exactly: the simulator's mean log return per step with the fitted parameters,
    # (mu - vol^2/2 - lam kappa) dt + lam dt m (its drift includes the compensator),
    # is the data's mean log return
    lam_f, m_f, s_f, vol_f = got["intensity"], got["mean"], got["std"], got["vol"][0]
    step_mean = ((got["drift"][0] - 0.5 * vol_f**2 - lam_f * math.expm1(m_f + 0.5 * s_f**2))
                 * dt + lam_f * dt * m_f)
    assert step_mean == pytest.approx(r.mean(), rel=1e-9)


def test_merton_without_jumps_in_the_data_reports_none():
    # the likelihood ratio of jumps against none stays below the threshold on normal
    # returns (98% of 120 offline fits gave < 7, the threshold is 11.34)
    rng = np.random.default_rng(8)
    r = 0.03 * rng.standard_normal((3000, 2))
    got = fit(to_prices(r), 1.0, "merton", symbols=["BTC", "ETH"])
    assert not got["jumps_found"].any()
    assert got["intensity"] == 0.0 and got["mean"] == 0.0 and got["std"] == 0.0
    gbm = fit(to_prices(r), 1.0, "gbm")
    np.testing.assert_allclose(got["vol"], gbm["vol"], rtol=1e-12)
    np.testing.assert_allclose(got["drift"], gbm["drift"], rtol=1e-12)
    text = market_block(got, [1.0, 2.0])
    assert tomllib.loads(text)["market"]["jumps"]["intensity"] == 0.0
    assert "no asset has significant jumps" in text


def naive_garch_residuals(x, alpha, beta):
    """Standardised residuals of variance-targeted GARCH(1,1), one step at a time."""
    x = (x - x.mean()) / x.std(ddof=1)
    out, h = np.empty_like(x), 1.0
    for t in range(x.size):
        out[t] = x[t] / math.sqrt(h)
        h = (1.0 - alpha - beta) + alpha * x[t] ** 2 + beta * h
    return out


def test_garch_recovers_alpha_beta_and_residual_correlation():
    # Offline, 100 seeds of one asset, n = 5,000: sd of the estimates alpha 0.0109,
    # beta 0.0173; mean Hessian SEs 0.0098, 0.0167. Tolerance: K x 1.2 x those sds (an sd
    # from 100 draws may be 15% short at 95%).
    spread = {"alpha": 0.0109, "beta": 0.0173}
    rng = np.random.default_rng(3)
    n, alpha, beta, rho = 5000, 0.1, 0.85, 0.5
    vol = np.array([0.6, 0.9])
    dt = 1.0 / 365.0
    eps = simulate_garch(rng, n, alpha, beta, vol**2 * dt, np.array([[1, rho], [rho, 1]]))
    got = fit(to_prices(0.0002 + eps), 1.0, "garch", symbols=["BTC", "ETH"])

    for key, true in (("alpha", alpha), ("beta", beta)):
        est, se = got["per_asset"][key], got["stderr"][key]
        assert np.all((se > 0.5 * spread[key]) & (se < 4.0 * spread[key])), (key, se)
        np.testing.assert_array_less(np.abs(est - true), K * 1.2 * spread[key])
        assert got[key] == pytest.approx(est.mean())
    assert got["alpha"] + got["beta"] < 1.0
    # the residuals are standardised with each asset's own GARCH variance: their
    # correlation is rho up to Fisher z sampling error
    dz = math.atanh(got["correlation"][0, 1]) - math.atanh(rho)
    assert abs(dz) < K / math.sqrt(n - 3)
    # ... and it is exactly the correlation of the residuals of the per-asset fits
    r = np.diff(np.log(to_prices(0.0002 + eps)), axis=0)
    resid = np.column_stack([naive_garch_residuals(r[:, a], got["per_asset"]["alpha"][a],
                                                   got["per_asset"]["beta"][a]) for a in (0, 1)])
    naive = np.corrcoef(resid, rowvar=False)[0, 1]
    assert got["correlation"][0, 1] == pytest.approx(naive, abs=1e-10)
    assert abs(np.corrcoef(r, rowvar=False)[0, 1] - naive) > 1e-3  # raw returns differ
    # vol is the sample sd annualised. The sample variance of GARCH returns has variance
    # (kurtosis - 1) sigma^4 (1 + 2 sum_k rho_k) / n, rho_k the autocorrelations of eps^2:
    # rho_1 = a (1 - a b - b^2) / (1 - 2 a b - b^2), rho_k = rho_1 (a + b)^(k - 1)
    p = alpha + beta
    kurt = 3.0 * (1 - p**2) / (1 - p**2 - 2 * alpha**2)
    rho1 = alpha * (1 - alpha * beta - beta**2) / (1 - 2 * alpha * beta - beta**2)
    rel_se = 0.5 * math.sqrt((kurt - 1) * (1 + 2 * rho1 / (1 - p)) / n)   # 3.4% here
    np.testing.assert_array_less(np.abs(got["vol"] / vol - 1.0), K * rel_se)


# --------------------------------------------------------------------------- arch


@pytest.fixture(scope="module")
def sp500():
    pytest.importorskip("arch")
    from arch.data import sp500 as data

    prices = data.load()["Adj Close"].to_numpy(dtype=np.float64)
    return prices, fit(prices[:, None], 1.0, "garch")


def test_garch_matches_arch_likelihood_with_variance_targeting(sp500):
    """arch 8 has no variance-targeting GARCH, so maximise arch's own likelihood of a
    constant-mean GARCH(1,1) with normal errors over (alpha, beta), with the constraints
    that calibrate uses: mu = sample mean, omega = (1 - alpha - beta) * sample variance.
    The two fits then differ only in how the variance recursion starts (arch's backcast,
    our long-run variance), an O(1/n) effect: measured |difference| 5e-5, i.e. 0.005 of
    arch's SE. Tolerance 0.1 SE."""
    from arch import arch_model
    from scipy import optimize

    prices, got = sp500
    r = 100.0 * np.diff(np.log(prices))
    model = arch_model(r, mean="Constant", vol="GARCH", p=1, q=1, dist="normal")
    mu, var = r.mean(), r.var(ddof=1)

    def arch_nll(ab):
        a, b = ab
        if a < 0 or b < 0 or a + b >= 1:
            return np.inf
        return -model.fix([mu, (1 - a - b) * var, a, b]).loglikelihood

    ref = optimize.minimize(arch_nll, [0.1, 0.85], method="Nelder-Mead",
                            options={"xatol": 1e-8, "fatol": 1e-10})
    se = model.fit(disp="off", cov_type="classic").std_err
    assert abs(got["alpha"] - ref.x[0]) < 0.1 * se["alpha[1]"]
    assert abs(got["beta"] - ref.x[1]) < 0.1 * se["beta[1]"]
    # and our optimum is as good as arch's under arch's likelihood
    assert arch_nll([got["alpha"], got["beta"]]) <= ref.fun + 0.01


def test_garch_close_to_arch_default_fit(sp500):
    """arch's default fit estimates mu and omega freely (no variance targeting). Under the
    model both estimators are consistent and their difference has variance Var(ours) -
    Var(arch's MLE), smaller than arch's own; so allow 1 robust SE. Measured: alpha 0.1004
    vs 0.1019 (0.12 SE), beta 0.8878 vs 0.8853 (0.18 SE)."""
    from arch import arch_model

    prices, got = sp500
    r = 100.0 * np.diff(np.log(prices))
    res = arch_model(r, mean="Constant", vol="GARCH", p=1, q=1, dist="normal").fit(disp="off")
    assert abs(got["alpha"] - res.params["alpha[1]"]) < res.std_err["alpha[1]"]
    assert abs(got["beta"] - res.params["beta[1]"]) < res.std_err["beta[1]"]
    # our SEs (non-robust, variance-targeted) are of the size of arch's classic ones
    classic = arch_model(r, mean="Constant", vol="GARCH", p=1, q=1,
                         dist="normal").fit(disp="off", cov_type="classic").std_err
    assert 0.5 < got["stderr"]["alpha"][0] / classic["alpha[1]"] < 1.5
    assert 0.5 < got["stderr"]["beta"][0] / classic["beta[1]"] < 1.5


# --------------------------------------------------------------------------- loading


def test_load_prices_csv_iso_epoch_and_parquet(tmp_path):
    start = datetime(2024, 3, 1, tzinfo=UTC)
    stamps = [start + timedelta(hours=i) for i in range(6)]
    rows = [[100.0 + i, 10.0 - 0.5 * i] for i in range(6)]
    iso = write_csv(tmp_path / "iso.csv", [s.isoformat().replace("+00:00", "Z")
                                           for s in stamps], ["BTC", "ETH"], rows)
    prices, symbols, step_days = load_prices(iso)
    assert symbols == ["BTC", "ETH"]
    assert prices.dtype == np.float64 and prices.shape == (6, 2)
    np.testing.assert_array_equal(prices, rows)
    assert step_days == pytest.approx(1.0 / 24.0)

    epoch = write_csv(tmp_path / "epoch.csv", [int(s.timestamp()) for s in stamps],
                      ["BTC", "ETH"], rows)
    assert load_prices(epoch)[2] == pytest.approx(1.0 / 24.0)

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"time": pa.array(stamps, pa.timestamp("ms", tz="UTC")),
                      "BTC": [r[0] for r in rows], "ETH": [r[1] for r in rows]})
    pq.write_table(table, tmp_path / "p.parquet")
    p_prices, p_symbols, p_step = load_prices(tmp_path / "p.parquet")
    np.testing.assert_array_equal(p_prices, prices)
    assert p_symbols == symbols and p_step == pytest.approx(1.0 / 24.0)


BAD_FILES = {
    # name: (CSV text, the key the error must name, a phrase of the message)
    "bad_cell": ("timestamp,BTC,ETH\n2024-01-01,1,2\n2024-01-02,abc,2\n2024-01-03,1,2\n",
                 "column 'BTC', line 3", "not a number"),
    "nan": ("timestamp,BTC,ETH\n2024-01-01,1,2\n2024-01-02,1,2\n2024-01-03,1,nan\n",
            "column 'ETH', line 4", "NaN"),
    "empty_cell": ("timestamp,BTC\n2024-01-01,1\n2024-01-02,\n2024-01-03,1\n",
                   "column 'BTC', line 3", "missing"),
    "negative": ("timestamp,BTC\n2024-01-01,1\n2024-01-02,-1\n2024-01-03,1\n",
                 "column 'BTC', line 3", "positive"),
    "unsorted": ("timestamp,BTC\n2024-01-01,1\n2024-01-03,1\n2024-01-02,1\n2024-01-04,1\n",
                 "column 'timestamp', line 4", "increase"),
    "duplicate_time": ("timestamp,BTC\n2024-01-01,1\n2024-01-02,1\n2024-01-02,1\n",
                       "column 'timestamp', line 4", "repeats"),
    "bad_time": ("timestamp,BTC\n2024-01-01,1\nyesterday,1\n2024-01-03,1\n",
                 "column 'timestamp', line 3", "not a timestamp"),
    "two_rows": ("timestamp,BTC\n2024-01-01,1\n2024-01-02,1\n", "rows", "at least 3"),
    "no_symbols": ("timestamp\n2024-01-01\n2024-01-02\n2024-01-03\n", "columns",
                   "no symbol column"),
    "bad_symbol": ("timestamp,BTC-USD\n2024-01-01,1\n2024-01-02,1\n2024-01-03,1\n",
                   "column 'BTC-USD'", "not a valid symbol"),
    "ragged": ("timestamp,BTC,ETH\n2024-01-01,1,2\n2024-01-02,1\n2024-01-03,1,2\n",
               "line 3", "cells"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_load_prices_refuses_bad_files_naming_file_and_cell(tmp_path, name):
    text, key, phrase = BAD_FILES[name]
    path = tmp_path / f"{name}.csv"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_prices(path)
    assert info.value.source == str(path)
    assert info.value.key == key
    assert phrase in info.value.message
    assert str(path) in str(info.value)


def test_load_prices_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(ScenarioError, match="does not exist") as info:
        load_prices(path)
    assert info.value.source == str(path)


def test_parquet_nan_names_column_and_row(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"t": [0, 60, 120, 180], "SOL": [1.0, 2.0, float("nan"), 3.0]}),
                   path)
    with pytest.raises(ScenarioError, match="NaN") as info:
        load_prices(path)
    assert (info.value.source, info.value.key) == (str(path), "column 'SOL', row 3")


# --------------------------------------------------------------------------- the block


@pytest.fixture(scope="module")
def price_file(tmp_path_factory):
    """Two assets, 800 daily rows of GARCH returns with a few jumps."""
    rng = np.random.default_rng(17)
    n = 800
    eps = simulate_garch(rng, n, 0.1, 0.85, np.array([0.7, 1.0]) ** 2 / 365.0,
                         np.array([[1.0, 0.6], [0.6, 1.0]]))
    eps += (rng.random((n, 2)) < 0.01) * rng.normal(-0.08, 0.03, (n, 2))
    prices = to_prices(eps, 1.0) * np.array([60_000.0, 3_000.0])
    path = tmp_path_factory.mktemp("cal") / "prices.csv"
    return write_csv(path, daily(n + 1), ["BTC", "ETH"], prices), prices


TABLE_KEYS = {"gbm": (None, set()), "student_t": ("student_t", {"dof"}),
              "merton": ("jumps", {"intensity", "mean", "std", "common"}),
              "garch": ("garch", {"alpha", "beta"})}


@pytest.mark.parametrize("model", sorted(TABLE_KEYS))
def test_calibrate_main_prints_valid_market_block(price_file, model):
    path, prices = price_file
    buf = io.StringIO()
    assert calibrate_main(str(path), model, out=buf) == 0
    text = buf.getvalue()
    doc = tomllib.loads(text)
    assert set(doc) == {"market"}
    market = doc["market"]
    assert market["model"] == model
    table, keys = TABLE_KEYS[model]
    others = {"student_t", "jumps", "garch"} - {table}
    assert not others & set(market)
    expected = fit(*load_prices(path)[::2], model)  # the same fit, to compare the numbers
    if table is not None:
        assert set(market[table]) == keys
        for key in keys - {"common"}:
            assert market[table][key] == pytest.approx(expected[key], rel=1e-4)
    assert [a["symbol"] for a in market["assets"]] == ["BTC", "ETH"]
    for i, asset in enumerate(market["assets"]):
        assert set(asset) == {"symbol", "price", "vol", "drift"}
        assert asset["price"] == prices[-1, i]
        assert asset["vol"] == pytest.approx(expected["vol"][i], rel=1e-4)
        assert asset["drift"] == pytest.approx(expected["drift"][i], rel=1e-4, abs=1e-6)
    corr = np.array(market["correlation"])
    np.testing.assert_allclose(corr, expected["correlation"], atol=1e-5)
    assert np.array_equal(corr, corr.T) and np.all(np.diag(corr) == 1.0)
    # the suggested [simulation] makes one step the data's interval (1 day)
    steps = int(re.search(r"^#\s+steps = (\d+)", text, re.M).group(1))
    horizon = float(re.search(r"^#\s+horizon_days = ([0-9.e+-]+)", text, re.M).group(1))
    assert horizon / steps == pytest.approx(1.0)
    assert "1 day" in text
    # per-asset values are printed as comments under the model table
    if table is not None:
        assert re.search(r"^#\s+BTC: ", text, re.M) and re.search(r"^#\s+ETH: ", text, re.M)


@pytest.mark.parametrize("model", sorted(TABLE_KEYS))
def test_printed_block_loads_as_a_scenario(price_file, model):
    from simulator.config import scenario as sc
    from simulator.config.market import IMPLEMENTED_MODELS

    if model not in IMPLEMENTED_MODELS:
        pytest.skip(f"the scenario loader does not implement {model} yet")
    buf = io.StringIO()
    calibrate_main(str(price_file[0]), model, out=buf)
    doc = tomllib.loads(buf.getvalue())
    doc["accounts"] = [{"id": "a", "collateral": {"USD": 1.0}}]
    loaded = sc.scenario_from_dict(doc)
    assert loaded.market.symbols == ("BTC", "ETH")


def test_market_block_number_format_and_sub_day_interval():
    result = {"model": "garch", "symbols": ["X"], "step_days": 5.0 / 1440.0,
              "periods_per_year": 365.0 * 288.0, "n_returns": 1000,
              "vol": np.array([0.123456789]), "drift": np.array([1e-7]),
              "correlation": np.eye(1), "alpha": 0.0912345678, "beta": 0.88,
              "vol_stderr": np.array([0.01]), "drift_stderr": np.array([0.5]),
              "per_asset": {"alpha": np.array([0.0912345678]), "beta": np.array([0.88])},
              "stderr": {"alpha": np.array([np.nan]), "beta": np.array([0.01])}}
    text = market_block(result, [2.5])
    doc = tomllib.loads(text)
    assert "5 minutes" in text and re.search(r"^#\s+steps = 288$", text, re.M)
    assert re.search(r"^#\s+horizon_days = 1\.0\b", text, re.M)
    assert isinstance(doc["market"]["garch"]["beta"], float)   # "0.88", not an integer
    assert re.search(r"^alpha = 0\.091235$", text, re.M)       # 5 significant digits
    assert doc["market"]["assets"][0]["drift"] == pytest.approx(1e-7)
    assert doc["market"]["correlation"] == [[1.0]]


def test_calibrate_main_writes_to_the_current_stdout(price_file, capsys):
    assert calibrate_main(str(price_file[0]), "gbm") == 0
    assert tomllib.loads(capsys.readouterr().out)["market"]["model"] == "gbm"


def test_calibrate_main_refuses_unfittable_data(tmp_path):
    short = write_csv(tmp_path / "short.csv", daily(20), ["BTC"],
                      [[100.0 + (i % 3)] for i in range(20)])
    with pytest.raises(ScenarioError, match="at least 100 returns") as info:
        calibrate_main(str(short), "garch", out=io.StringIO())
    assert (info.value.source, info.value.key) == (str(short), "rows")
    flat = write_csv(tmp_path / "flat.csv", daily(10), ["BTC", "ETH"],
                     [[100.0 + (i % 3), 5.0] for i in range(10)])
    with pytest.raises(ScenarioError, match="never changes") as info:
        calibrate_main(str(flat), "gbm", out=io.StringIO())
    assert info.value.key == "column 'ETH'"
    with pytest.raises(ScenarioError, match="valid: gbm"):
        calibrate_main(str(flat), "heston", out=io.StringIO())


def test_calibrate_main_notes_gaps_of_trading_day_data(tmp_path):
    # weekdays only: the median spacing is 1 day, the mean 1.4 days
    days = [d for d in (datetime(2023, 1, 2) + timedelta(days=i) for i in range(400))
            if d.weekday() < 5]
    rng = np.random.default_rng(2)
    prices = to_prices(0.01 * rng.standard_normal((len(days) - 1, 1)))
    path = write_csv(tmp_path / "weekdays.csv", [d.date().isoformat() for d in days], ["SPX"],
                     prices)
    buf = io.StringIO()
    calibrate_main(str(path), "gbm", out=buf)
    text = buf.getvalue()
    tomllib.loads(text)
    assert "gaps" in text and "sqrt(" in text
