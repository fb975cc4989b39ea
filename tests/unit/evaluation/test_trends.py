"""Closed forms of glass_sm.evaluation.trends: Sen's slope, Mann-Kendall, per-pixel trend maps and their tables."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from glass_sm.evaluation import trends
from glass_sm.evaluation.trends import mann_kendall, sens_slope, trend_map, trend_summary, trend_table


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


# ---- trend tables --------------------------------------------------------------------------------------
def test_trend_table_and_summary_against_a_reference():
    years = np.arange(1982, 2002)
    days = pd.date_range("1982-01-01", "2001-12-31", freq="D")
    frac = (days.year - 1982).to_numpy()[:, None, None]
    slope = np.array([[0.01, -0.01], [0.02, 0.0]])  # per year
    vals = 0.25 + frac * slope[None] + 0 * np.zeros((days.size, 2, 2))
    da = xr.DataArray(vals, dims=("time", "lat", "lon"), coords={"time": days, "lat": [1.0, 0.0], "lon": [0.0, 1.0]})
    maps = {"a": trend_map(da, min_periods=8), "b": trend_map(da * 1.0, min_periods=8)}
    table = trend_table(maps)
    assert set(table["dataset"]) == {"a", "b"} and len(table) == 8
    a = table[table["dataset"] == "a"].set_index(["lat", "lon"])
    assert a.loc[(1.0, 0.0), "slope"] == pytest.approx(0.1)  # per decade
    annual = {"a": pd.Series(0.25 + 0.005 * (years - 1982), index=years), "b": pd.Series(0.25, index=years[:5])}
    summ = trend_summary(table, reference="b", annual_means=annual, min_periods=8).set_index("dataset")
    assert summ.loc["a", "slope_r"] == pytest.approx(1.0) and summ.loc["a", "sign_agreement"] == 1.0
    assert summ.loc["a", "slope_rmsd"] == pytest.approx(0.0, abs=1e-12)
    assert summ.loc["a", "domain_slope"] == pytest.approx(0.05) and summ.loc["a", "n_years"] == 20
    assert np.isnan(summ.loc["b", "domain_slope"]) and summ.loc["b", "n_years"] == 5
    assert summ.loc["a", "n_pixels"] == 4
