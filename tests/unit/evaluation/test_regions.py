"""glass_sm.evaluation.regions and aggregate.bias_by_region: the bias of estimates per climate zone and continent,
over land pixel-days (area-weighted) and over stations, on toy data with closed-form means."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from glass_sm.evaluation import aggregate, regions as reg

LAT, LON = np.array([60.0, 0.0]), np.array([10.0, 11.0, 12.0])
BIAS = np.array([[0.10, 0.02, -0.04],
                 [0.06, 0.50, 0.01]])  # per-pixel constant bias, m3 m-3; (0, 11) is sea below
DAYS = pd.date_range("2001-01-01", periods=4)


def toy_regions(lat, lon):
    """Zones by longitude (10-11 E 'B arid', 12 E 'C temperate'); continent 'Europe', '' (sea) at 12 E, 60 N."""
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    zone = np.where(lon < 11.5, "B arid", "C temperate").astype(object)
    cont = np.where((lon > 11.5) & (lat > 30), "", "Europe").astype(object)
    return {"climate_zone": zone, "continent": cont}


def _fields():
    truth = xr.DataArray(np.full((DAYS.size, 2, 3), 0.2), dims=("time", "lat", "lon"),
                         coords={"time": DAYS, "lat": LAT, "lon": LON})
    truth[:2, 1, 0] = np.nan  # pixel (0 N, 10 E) has 2 pixel-days, the others 4
    est = truth.fillna(0.2) + xr.DataArray(BIAS, dims=("lat", "lon"), coords={"lat": LAT, "lon": LON})
    land = xr.DataArray(np.array([[True, True, True], [True, False, True]]), dims=("lat", "lon"),
                        coords={"lat": LAT, "lon": LON})
    return est, truth, land


def test_pixel_bias_by_region_is_the_area_weighted_mean_over_land_pixel_days():
    est, truth, land = _fields()
    t = reg.pixel_bias_by_region({"E": est, "zero": truth}, truth, land, regions=toy_regions)
    w60, w0 = np.cos(np.deg2rad(60.0)), 1.0
    arid = t[(t.class_kind == "climate_zone") & (t["class"] == "B arid") & (t.estimate == "E")].iloc[0]
    # land pixels of 'B arid': (60, 10) 4 days, (60, 11) 4 days, (0, 10) 2 days; (0, 11) is sea
    num = w60 * 4 * 0.10 + w60 * 4 * 0.02 + w0 * 2 * 0.06
    den = w60 * 4 + w60 * 4 + w0 * 2
    assert arid["n"] == 10 and arid["n_pixels"] == 3
    assert arid["bias_mean"] == pytest.approx(num / den)
    assert arid["abs_bias_mean"] == pytest.approx(num / den)  # all positive: |mean| = mean
    # the weighted median of the pixel biases 0.10 (w60*4=2), 0.02 (2), 0.06 (w0*2=2): the middle one
    assert arid["bias_median"] == pytest.approx(0.06)
    temp = t[(t.class_kind == "climate_zone") & (t["class"] == "C temperate") & (t.estimate == "E")].iloc[0]
    assert temp["bias_mean"] == pytest.approx((w60 * 4 * -0.04 + w0 * 4 * 0.01) / (w60 * 4 + w0 * 4))
    assert temp["abs_bias_mean"] == pytest.approx((w60 * 4 * 0.04 + w0 * 4 * 0.01) / (w60 * 4 + w0 * 4))
    # an estimate equal to the truth has no bias anywhere
    assert np.allclose(t.loc[t.estimate == "zero", "bias_mean"], 0.0)
    # continents: the cell whose centre is at sea ('') is 'unassigned', never dropped
    cont = t[(t.class_kind == "continent") & (t.estimate == "E")].set_index("class")
    assert set(cont.index) == {"Europe", aggregate.UNASSIGNED}
    assert cont.loc[aggregate.UNASSIGNED, "n_pixels"] == 1
    assert cont.loc[aggregate.UNASSIGNED, "bias_mean"] == pytest.approx(-0.04)
    assert cont["n"].sum() == 4 + 4 + 4 + 2 + 4  # every land pixel-day exactly once per kind


def test_bias_by_region_rejects_labels_of_another_grid():
    est, truth, land = _fields()
    sums = {"E": aggregate.bias_sums(est, truth, land)}
    bad = {"climate_zone": xr.DataArray(np.array(["a", "b"], dtype=object), dims="x")}
    with pytest.raises(ValueError, match="climate_zone"):
        aggregate.bias_by_region(sums, bad)


def test_weighted_median():
    assert aggregate.weighted_median([3.0, 1.0, 2.0], [1, 1, 1]) == 2.0
    assert aggregate.weighted_median([1.0, 2.0, 10.0], [1, 1, 5]) == 10.0
    assert aggregate.weighted_median([1.0, np.nan, 2.0], [1, 1, 0]) == 1.0
    assert np.isnan(aggregate.weighted_median([np.nan], [1]))


def test_station_bias_by_region_groups_the_sensors_by_their_pixel():
    sites = pd.DataFrame({
        "product": ["GLASS-AVHRR", "ERA5-Land"] * 3 + ["GLASS-AVHRR"],
        "sensor_id": ["a", "a", "b", "b", "c", "c", "d"],
        "lat": [59.9, 59.9, 0.1, 0.1, 60.1, 60.1, 0.0], "lon": [10.1, 10.1, 10.2, 10.2, 12.1, 12.1, 10.0],
        "pixel_lat": [60.0, 60.0, 0.0, 0.0, 60.0, 60.0, np.nan],
        "pixel_lon": [10.0, 10.0, 10.0, 10.0, 12.0, 12.0, np.nan],
        "bias": [0.01, 0.05, 0.03, 0.09, -0.02, 0.04, 9.0],
        "status": ["ok"] * 6 + ["outside the product"]})
    t = reg.station_bias_by_region(sites, {"GLASS-AVHRR": "bias_product", "ERA5-Land": "bias_era5"},
                                   regions=toy_regions)
    z = t[t.class_kind == "climate_zone"].set_index(["class", "estimate"])
    assert z.loc[("B arid", "ERA5-Land"), "bias_mean"] == pytest.approx(0.07)
    assert z.loc[("B arid", "GLASS-AVHRR"), "bias_mean"] == pytest.approx(0.02)
    assert z.loc[("B arid", "GLASS-AVHRR"), "n"] == 2
    assert z.loc[("C temperate", "ERA5-Land"), "bias_mean"] == pytest.approx(0.04)
    c = t[t.class_kind == "continent"].set_index(["class", "estimate"])
    assert c.loc[(aggregate.UNASSIGNED, "GLASS-AVHRR"), "n"] == 1  # sensor c: its pixel centre is at sea
    assert "all" not in set(t["class"])
    empty = reg.station_bias_by_region(sites.assign(status="too few days"), {"GLASS-AVHRR": "bias_product"},
                                       regions=toy_regions)
    assert empty.empty and "bias_mean" in empty


@pytest.mark.skipif(importlib.util.find_spec("glass_sm.twin.earth") is None, reason="glass_sm.twin.earth not yet")
def test_earth_regions_name_koppen_groups_and_continents():
    out = reg.earth_regions(np.array([[-3.0, 23.0]]), np.array([[-60.0, 13.0]]))  # Amazon; Sahara (Libya)
    assert out["climate_zone"].shape == (1, 2) and out["continent"].shape == (1, 2)
    assert list(out["climate_zone"][0]) == ["A tropical", "B arid"]
    assert list(out["continent"][0]) == ["South America", "Africa"]
