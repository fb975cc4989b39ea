"""glass_sm.evaluation.aggregate: climate classes, per-class bias, area-weighted domain means (closed forms)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from glass_sm.evaluation.aggregate import (aridity_class, area_weights, bias_by_class, domain_mean,
                                           domain_mean_series, monthly_domain_mean, season_of, sm_class)

DAYS = pd.date_range("1998-01-01", "1998-03-31", freq="D")
LAT = np.array([40.375, 40.325, 40.275])
LON = np.array([-99.975, -99.925])


def test_aridity_and_sm_classes_use_left_closed_bins():
    cls = aridity_class([0.01, 0.05, 0.3, 0.5, 0.65, 2.0, np.nan])
    assert list(cls[:6]) == ["hyper-arid", "arid", "semi-arid", "dry sub-humid", "humid", "humid"]
    assert pd.isna(cls[6])
    assert aridity_class([np.nan], unknown="unknown")[0] == "unknown"
    sm = sm_class([0.05, 0.1, 0.35], [0.0, 0.1, 0.2, 1.0])
    assert list(sm) == ["0.00-0.10", "0.10-0.20", "0.20-1.00"]
    assert list(season_of(pd.to_datetime(["2001-01-15", "2001-04-01", "2001-12-01"]))) == ["DJF", "MAM", "DJF"]


def test_bias_by_class_means_medians_and_total():
    frame = pd.DataFrame({"k": ["a", "a", "b"], "p": [0.01, -0.03, 0.02], "e": [0.05, 0.07, np.nan]})
    out = bias_by_class(frame, "k", {"P": "p", "E": "e"}).set_index(["class", "estimate"])
    assert out.loc[("a", "P"), "bias_mean"] == pytest.approx(-0.01)
    assert out.loc[("a", "P"), "abs_bias_mean"] == pytest.approx(0.02)
    assert out.loc[("b", "E"), "n"] == 0 and np.isnan(out.loc[("b", "E"), "bias_mean"])
    assert out.loc[("all", "P"), "n"] == 3 and out.loc[("all", "E"), "bias_median"] == pytest.approx(0.06)


def test_domain_mean_respects_the_mask_and_weights_by_cell_area():
    row0 = np.where(np.arange(LAT.size) == 0, 1.0, 0.0)[None, :, None]
    da = xr.DataArray(row0 + np.zeros((DAYS.size, LAT.size, LON.size)), dims=("time", "lat", "lon"),
                      coords={"time": DAYS, "lat": LAT, "lon": LON})
    mask = xr.DataArray(np.array([[True, True], [False, False], [False, False]]), dims=("lat", "lon"),
                        coords={"lat": LAT, "lon": LON})
    assert (domain_mean_series(da, mask) == 1.0).all()
    w = np.cos(np.deg2rad(LAT))
    s = domain_mean_series(da)
    assert s.iloc[0] == pytest.approx(w[0] / w.sum(), rel=1e-12)  # a third, weighted: slightly less than 1/3
    assert s.iloc[0] < 1 / 3
    assert s.index[0] == DAYS[0] and s.dtype == np.float64
    np.testing.assert_allclose(area_weights(LAT).values, w)


def test_monthly_domain_mean_averages_each_cell_first():
    da = xr.DataArray(np.full((DAYS.size, LAT.size, LON.size), 0.2), dims=("time", "lat", "lon"),
                      coords={"time": DAYS, "lat": LAT, "lon": LON})
    da[:, 0, 0] = 0.4
    da[:5, 1:, :] = np.nan  # a gappy start: months with few valid days still count when >= min_fraction
    m = monthly_domain_mean(da)
    assert len(m) == 3
    expected = float(domain_mean(da.isel(time=slice(40, 41))).values[0])
    assert m.iloc[1] == pytest.approx(expected)
    assert np.isnan(monthly_domain_mean(da.where(da > 1)).iloc[0])
