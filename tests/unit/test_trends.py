"""Closed forms and calibration of glass_sm.evaluation.trends (Sen's slope, Mann-Kendall, anomalies, break tests)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from glass_sm.evaluation import trends
from glass_sm.platforms import transition_dates
from glass_sm.evaluation.trends import (anomalies, break_test, breaks_at_transitions, climatology, lag1_autocorrelation,
                             mann_kendall, sens_slope, trend_map)


def ar1(n, rho, sd, rng):
    """AR(1) noise with lag-1 autocorrelation ``rho`` and marginal standard deviation ``sd``."""
    e = np.empty(n)
    e[0] = sd * rng.standard_normal()
    innov = sd * np.sqrt(1 - rho**2) * rng.standard_normal(n)
    for i in range(1, n):
        e[i] = rho * e[i - 1] + innov[i]
    return e


def daily_sm(start, end, rng, rho=0.8, sd=0.02, step=0.0, step_date=None):
    """Daily soil moisture (m3 m-3): seasonal cycle + AR(1) anomalies (+ a step at ``step_date``)."""
    t = pd.date_range(start, end, freq="D")
    y = 0.25 + 0.06 * np.sin(2 * np.pi * t.day_of_year.to_numpy() / 365.25) + ar1(t.size, rho, sd, rng)
    if step:
        y = y + step * (t >= pd.Timestamp(step_date))
    return pd.Series(y, index=t)


# ---- Sen's slope ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("slope", [-0.003, 0.0, 0.0125])
def test_sens_slope_of_a_line_is_its_slope(slope):
    t = np.arange(1982, 2022, dtype=float)
    assert sens_slope(0.2 + slope * (t - 1982), t) == pytest.approx(slope, abs=1e-15)


def test_sens_slope_is_robust_to_outliers_and_nan():
    t = np.arange(30.0)
    y = 0.5 * t + 1
    y[[3, 17]] = [500.0, -400.0]
    y[10] = np.nan
    assert sens_slope(y, t) == pytest.approx(0.5)
    assert sens_slope(y) == pytest.approx(0.5)  # default t = 0, 1, 2, ...
    assert np.isnan(sens_slope([1.0]))


def test_sens_slope_uneven_times():
    t = np.array([0.0, 1.0, 3.0, 7.0])
    assert sens_slope(2 * t - 5, t) == pytest.approx(2.0)


# ---- Mann-Kendall --------------------------------------------------------------------------------------
def test_mann_kendall_monotone_closed_form():
    n = 20
    res = mann_kendall(np.arange(n, dtype=float))
    assert res.s == n * (n - 1) / 2
    assert res.var_s == pytest.approx(n * (n - 1) * (2 * n + 5) / 18)
    assert res.z == pytest.approx((res.s - 1) / np.sqrt(res.var_s))
    assert res.tau == 1.0
    assert res.p < 0.01
    down = mann_kendall(-np.arange(n, dtype=float))
    assert down.s == -res.s and down.z == pytest.approx(-res.z) and down.p == pytest.approx(res.p)


def test_mann_kendall_white_noise_not_significant():
    rng = np.random.default_rng(3)
    assert mann_kendall(rng.standard_normal(40)).p > 0.1
    # calibrated: ~5 % of white-noise series are "significant" at 5 %
    p = np.array([mann_kendall(rng.standard_normal(30)).p for _ in range(400)])
    assert 0.02 < np.mean(p < 0.05) < 0.09


def test_mann_kendall_ties_correction():
    y = [1, 2, 2, 3, 3, 3, 4]
    res = mann_kendall(y)
    # n = 7: 7*6*19 = 798; tie groups of 2 and 3: 2*1*9 + 3*2*11 = 84
    assert res.var_s == pytest.approx((798 - 84) / 18)
    assert res.s == 17  # 21 pairs, 4 tied pairs, all others increasing
    assert res.p == pytest.approx(2 * stats.norm.sf((17 - 1) / np.sqrt((798 - 84) / 18)))


def test_mann_kendall_agrees_with_kendall_tau():
    rng = np.random.default_rng(5)
    y = np.cumsum(rng.standard_normal(25))
    tau, _ = stats.kendalltau(np.arange(25), y)
    assert mann_kendall(y).tau == pytest.approx(tau)


def test_mann_kendall_too_short():
    res = mann_kendall([1.0, np.nan, 2.0])
    assert res.n == 2 and np.isnan(res.p)


# ---- per-pixel trend map -------------------------------------------------------------------------------
@pytest.fixture
def trend_cube():
    """Daily cube 1982-2021, 3x4 pixels: slope 0.01 m3 m-3 per decade plus noise; one all-NaN pixel."""
    t = pd.date_range("1982-01-01", "2021-12-31", freq="D")
    rng = np.random.default_rng(1)
    years = (t.year - 1982).to_numpy(float)[:, None, None]
    slopes = np.array([[0.001, 0.0, -0.002, 0.001], [0.0005, 0.001, 0.001, 0.0], [0.003, 0.001, 0.001, 0.001]])
    data = 0.25 + slopes[None] * years + 0.02 * rng.standard_normal((t.size, 3, 4))
    data[:, 1, 3] = np.nan
    data[t.year < 1987, 0, 0] = np.nan  # first five years missing
    data[(t.year == 1990) & (t.month < 8), 0, 0] = np.nan  # 1990 under half observed: no annual mean
    return xr.DataArray(data, dims=("time", "lat", "lon"), coords={"time": t, "lat": [41.0, 40.95, 40.9],
                        "lon": [-100.0, -99.95, -99.9, -99.85]}, attrs={"units": "m3 m-3"}), slopes


def test_trend_map_recovers_slopes_per_decade(trend_cube):
    da, slopes = trend_cube
    ds = trend_map(da)
    ok = np.isfinite(ds["slope"].values)
    assert not ok[1, 3] and ok.sum() == 11
    np.testing.assert_allclose(ds["slope"].values[ok], 10 * slopes[ok], atol=0.0015)
    assert ds["slope"].attrs["units"] == "m3 m-3 decade-1"
    assert int(ds["n_periods"][0, 0]) == 34 and int(ds["n_periods"][0, 1]) == 40
    assert ds["p_value"].values[2, 0] < 0.01  # 0.03 per decade is unmistakable
    assert ds["p_value"].values[0, 1] > 0.01  # no trend


def test_trend_map_matches_scalar_functions(trend_cube):
    da, _ = trend_cube
    ds = trend_map(da)
    annual = da[:, 0, 2].resample(time="YS").mean()
    years = annual["time"].dt.year.to_numpy().astype(float)
    assert float(ds["slope"][0, 2]) == pytest.approx(10 * sens_slope(annual.values, years), rel=1e-12)
    assert float(ds["p_value"][0, 2]) == pytest.approx(mann_kendall(annual.values).p, rel=1e-12)
    assert float(ds["z"][0, 2]) == pytest.approx(mann_kendall(annual.values).z, rel=1e-12)


def test_trend_kernel_ties_match_scalar():
    rng = np.random.default_rng(0)
    v = np.round(rng.normal(size=(50, 12)), 0)  # many ties
    v[0, 3] = np.nan
    t = np.arange(12.0)
    slope, z, p, n = trends._trend_kernel(v, t, min_n=3)
    for k in (0, 7, 31):
        ref = mann_kendall(v[k])
        assert z[k] == pytest.approx(ref.z) and p[k] == pytest.approx(ref.p) and n[k] == ref.n
        assert slope[k] == pytest.approx(sens_slope(v[k], t))


def test_trend_map_dask_equals_numpy(trend_cube):
    pytest.importorskip("dask")
    da, _ = trend_cube
    eager = trend_map(da)
    lazy = trend_map(da.chunk({"time": 4000, "lat": 1}))
    assert lazy["slope"].chunks is not None
    xr.testing.assert_allclose(eager, lazy.compute())


# ---- climatology and anomalies -------------------------------------------------------------------------
def test_anomalies_of_a_pure_annual_cycle_vanish():
    t = pd.date_range("2001-01-01", "2008-12-31", freq="D")
    doy = np.where(t.is_leap_year & (t.day_of_year >= 60), t.day_of_year - 1, t.day_of_year)
    s = pd.Series(0.2 + 0.05 * np.cos(2 * np.pi * doy / 365), index=t)
    np.testing.assert_allclose(anomalies(s, window_days=1).to_numpy(), 0.0, atol=1e-12)
    # a 31-day running mean damps the cycle by 1 - sin(31 pi/365) / (31 sin(pi/365)) = 1.2 %
    damp = 1 - np.sin(31 * np.pi / 365) / (31 * np.sin(np.pi / 365))
    assert np.abs(anomalies(s).to_numpy()).max() == pytest.approx(0.05 * damp, rel=0.02)


def test_climatology_leap_day_and_offset():
    t = pd.date_range("2003-01-01", "2006-12-31", freq="D")
    s = pd.Series(np.arange(t.size, dtype=float) % 3, index=t)
    clim = climatology(s, window_days=1)
    assert len(clim) == 365 and clim.index[0] == 1
    a = anomalies(s + 0.1, window_days=1)
    np.testing.assert_allclose(a.to_numpy(), anomalies(s, window_days=1).to_numpy(), atol=1e-12)
    # 29 February 2004 takes the climatology of 28 February
    assert a.loc["2004-02-29"] == pytest.approx(s.loc["2004-02-29"] - clim.loc[59])


def test_lag1_autocorrelation_of_ar1():
    rng = np.random.default_rng(2)
    s = pd.Series(ar1(20000, 0.7, 1.0, rng), index=pd.date_range("1990-01-01", periods=20000))
    assert lag1_autocorrelation(s) == pytest.approx(0.7, abs=0.02)
    s.iloc[::5] = np.nan  # gaps: only consecutive present days count
    assert lag1_autocorrelation(s) == pytest.approx(0.7, abs=0.03)


# ---- break test ----------------------------------------------------------------------------------------
def test_break_test_detects_injected_step():
    rng = np.random.default_rng(11)
    s = daily_sm("1997-01-01", "2004-12-31", rng, step=0.02, step_date="2001-01-01")
    res = break_test(s, "2001-01-01")
    assert res["status"] == "ok"
    assert res["p"] < 0.01
    assert res["step"] == pytest.approx(0.02, abs=0.006)
    assert res["n_before"] == res["n_after"] == 730
    assert res["n_eff_before"] < 0.2 * res["n_before"]  # AR(1) rho 0.8 -> n* ~ n/9


def test_break_test_no_step_not_significant():
    rng = np.random.default_rng(12)
    s = daily_sm("1997-01-01", "2004-12-31", rng)
    res = break_test(s, "2001-01-01")
    assert res["p"] > 0.05
    assert abs(res["step"]) < 0.01


def test_break_test_false_alarm_rate_needs_ar1_adjustment():
    """Without the effective sample size, autocorrelated noise gives far too many 'breaks'."""
    rng = np.random.default_rng(13)
    p_adj, p_raw = [], []
    for _ in range(60):
        s = daily_sm("2001-01-01", "2004-12-31", rng, rho=0.9)
        p_adj.append(break_test(s, "2003-01-01", window_days=365)["p"])
        p_raw.append(break_test(s, "2003-01-01", window_days=365, ar1_adjust=False)["p"])
    assert np.mean(np.array(p_adj) < 0.05) <= 0.15
    assert np.mean(np.array(p_raw) < 0.05) >= 0.4


def test_break_test_against_scipy_welch_without_adjustment():
    rng = np.random.default_rng(4)
    s = daily_sm("2000-01-01", "2003-12-31", rng, rho=0.0)
    res = break_test(s, "2002-01-01", window_days=731, deseasonalize=False, ar1_adjust=False)
    before, after = s[:"2001-12-31"], s["2002-01-01":]
    ref = stats.ttest_ind(after, before, equal_var=False)
    assert res["t"] == pytest.approx(ref.statistic)
    assert res["p"] == pytest.approx(ref.pvalue)


def test_break_test_too_few_days():
    rng = np.random.default_rng(0)
    s = daily_sm("2000-01-01", "2000-12-31", rng)
    res = break_test(s, "2000-12-20", min_days=30)
    assert np.isnan(res["p"]) and res["status"].startswith("too few days (before=")


def test_breaks_at_transitions_flags_only_the_real_step():
    rng = np.random.default_rng(21)
    s = daily_sm("1995-01-01", "2008-12-31", rng, step=0.02, step_date="2001-01-01")
    out = breaks_at_transitions(s, transition_dates("1995-01-01", "2008-12-31"))
    assert list(out["date"]) == [pd.Timestamp("2001-01-01"), pd.Timestamp("2005-09-01")]
    assert list(out["platform_before"]) == ["NOAA-14", "NOAA-16"]
    assert list(out["platform_after"]) == ["NOAA-16", "NOAA-18"]
    assert list(out["significant"]) == [True, False]
    # the default transitions are the platform changes inside the series
    pd.testing.assert_frame_equal(breaks_at_transitions(s), out)
    # a table with labels keeps them
    table = pd.DataFrame({"date": pd.to_datetime(["2001-01-01"]), "change": ["NOAA-14 -> NOAA-16"]})
    labelled = breaks_at_transitions(s, table)
    assert labelled.loc[0, "change"] == "NOAA-14 -> NOAA-16" and labelled.loc[0, "significant"]
    tuples = breaks_at_transitions(s, [(pd.Timestamp("2001-01-01"), "NOAA-14", "NOAA-16")])
    assert tuples.loc[0, "label"] == "NOAA-14 -> NOAA-16"
