"""glass_sm.evaluation.intercompare: regridding, per-pixel comparison maps and their summaries, closed forms."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from glass_sm.evaluation import metrics
from glass_sm.evaluation.intercompare import compare_by_period, compare_products, maps_table, regrid_like, summary_table
from glass_sm.grid import Domain, block_mean, upsample_repeat


# ----------------------------------------------------------------------------------------------------------
# Product vs product
# ----------------------------------------------------------------------------------------------------------
@pytest.fixture
def grids():
    d05 = Domain.from_bounds(40.0, 41.0, -100.0, -99.0)  # 20 x 20 at 0.05 deg
    return d05, d05.coarsen(2), Domain.from_bounds(40.0, 41.0, -100.0, -99.0, res=0.01)


def test_compare_coarser_reference_nearest(grids):
    d05, d10, _ = grids
    rng = np.random.default_rng(0)
    t = pd.date_range("2001-01-01", periods=90)
    era = xr.DataArray(rng.uniform(0.1, 0.4, (90, *d10.shape)), dims=("time", "latitude", "longitude"),
                       coords={"time": t, "latitude": d10.lat, "longitude": np.mod(d10.lon, 360)}, name="era5")
    ours = xr.DataArray(upsample_repeat(era.values, 2) + 0.03, dims=("time", "lat", "lon"),
                        coords={"time": t + pd.Timedelta(hours=12), "lat": d05.lat, "lon": d05.lon}, name="ours")
    ds = compare_products(ours, era)
    np.testing.assert_allclose(ds["bias"], 0.03, atol=1e-12)
    np.testing.assert_allclose(ds["rmse"], 0.03, atol=1e-12)
    np.testing.assert_allclose(ds["ubrmse"], 0.0, atol=1e-12)
    np.testing.assert_allclose(ds["r"], 1.0, atol=1e-12)
    assert (ds["n"] == 90).all() and ds.attrs["regrid"] == "lat: nearest, lon: nearest"


def test_compare_finer_reference_block_mean(grids):
    d05, _, d01 = grids
    rng = np.random.default_rng(1)
    t = pd.date_range("2001-01-01", periods=40)
    fine = rng.uniform(0.1, 0.4, (40, *d01.shape))
    fine[:, 3, 4] = np.nan
    ref = xr.DataArray(fine[:, ::-1], dims=("time", "lat", "lon"),  # ascending latitude
                       coords={"time": t, "lat": d01.lat[::-1], "lon": d01.lon}, name="fine")
    ours = xr.DataArray(block_mean(fine, 5) - 0.01, dims=("time", "lat", "lon"),
                        coords={"time": t, "lat": d05.lat, "lon": d05.lon}, name="ours")
    ds = compare_products(ours, ref)
    np.testing.assert_allclose(ds["bias"], -0.01, atol=1e-12)
    np.testing.assert_allclose(ds["ubrmse"], 0.0, atol=1e-12)
    assert ds.attrs["regrid"] == "lat: mean, lon: mean"
    np.testing.assert_allclose(regrid_like(ref, ours).sel(lat=ours.lat).values, block_mean(fine, 5), atol=1e-12)


def test_compare_per_pixel_equals_metrics_module(grids):
    d05, d10, _ = grids
    rng = np.random.default_rng(2)
    t = pd.date_range("2001-01-01", periods=120)
    truth = rng.uniform(0.1, 0.4, (120, *d05.shape))
    a = truth + 0.02 * rng.standard_normal(truth.shape)
    a[rng.random(a.shape) < 0.2] = np.nan
    b = block_mean(truth, 2) + 0.05 + 0.03 * rng.standard_normal((120, *d10.shape))
    b[rng.random(b.shape) < 0.1] = np.nan
    a_da = xr.DataArray(a, dims=("time", "lat", "lon"), coords={"time": t, "lat": d05.lat, "lon": d05.lon})
    b_da = xr.DataArray(b, dims=("time", "lat", "lon"), coords={"time": t, "lat": d10.lat, "lon": d10.lon})
    ds = compare_products(a_da, b_da, min_pairs=30)
    b_up = upsample_repeat(b, 2)
    for i, j in [(0, 0), (7, 13), (19, 2)]:
        assert int(ds["n"][i, j]) == metrics.n_valid(a[:, i, j], b_up[:, i, j])
        for name in ("bias", "r", "rmse", "ubrmse"):
            assert float(ds[name][i, j]) == pytest.approx(metrics.METRICS[name](a[:, i, j], b_up[:, i, j]),
                                                          rel=1e-9)
    # too few common days: NaN metrics, n still given
    ds_strict = compare_products(a_da, b_da, min_pairs=200)
    assert np.isnan(ds_strict["bias"]).all() and int(ds_strict["n"][0, 0]) == int(ds["n"][0, 0])


def test_compare_dask_equals_numpy(grids):
    pytest.importorskip("dask")
    d05, d10, _ = grids
    rng = np.random.default_rng(3)
    t = pd.date_range("2001-01-01", periods=60)
    a = xr.DataArray(rng.uniform(0, 0.4, (60, *d05.shape)), dims=("time", "lat", "lon"),
                     coords={"time": t, "lat": d05.lat, "lon": d05.lon})
    b = xr.DataArray(rng.uniform(0, 0.4, (60, *d10.shape)), dims=("time", "lat", "lon"),
                     coords={"time": t, "lat": d10.lat, "lon": d10.lon})
    lazy = compare_products(a.chunk({"time": 25}), b.chunk({"time": 20}))
    assert lazy["bias"].chunks is not None
    xr.testing.assert_allclose(lazy.compute(), compare_products(a, b))


def test_compare_no_common_day():
    a = xr.DataArray(np.zeros((2, 1, 1)), dims=("time", "lat", "lon"),
                     coords={"time": pd.date_range("2001-01-01", periods=2), "lat": [40.0], "lon": [0.0]}, name="a")
    b = a.assign_coords(time=pd.date_range("2005-01-01", periods=2)).rename("b")
    with pytest.raises(ValueError, match="no common day"):
        compare_products(a, b)


def test_summary_table_weights_and_regions():
    lat, lon = np.array([60.0, 0.0]), np.array([10.0, 20.0])
    bias = np.array([[0.1, 0.1], [0.0, np.nan]])
    ds = xr.Dataset({k: (("lat", "lon"), bias) for k in ("bias", "r", "rmse", "ubrmse")},
                    coords={"lat": lat, "lon": lon})
    ds["n"] = (("lat", "lon"), np.full((2, 2), 100))
    tab = summary_table({"x vs y": ds})
    assert tab.loc["x vs y", "n_pixels"] == 3
    assert tab.loc["x vs y", "bias_median"] == pytest.approx(0.1)
    # cos 60 = 0.5: weights 0.5, 0.5, 1 -> (0.05 + 0.05 + 0) / 2
    assert tab.loc["x vs y", "bias_mean"] == pytest.approx(0.05)
    regions = xr.DataArray([["north", "north"], ["south", "south"]], dims=("lat", "lon"),
                           coords={"lat": lat, "lon": lon})
    by_region = summary_table({"x vs y": ds}, regions=regions)
    assert by_region.loc[("x vs y", "south"), "bias_mean"] == 0.0
    assert by_region.loc[("x vs y", "north"), "n_pixels"] == 2


def test_maps_table_one_row_per_pixel_and_map(grids):
    d05, _, _ = grids
    t = pd.date_range("2001-01-01", periods=40)
    a = xr.DataArray(np.random.default_rng(4).uniform(0.1, 0.4, (40, *d05.shape)), dims=("time", "lat", "lon"),
                     coords={"time": t, "lat": d05.lat, "lon": d05.lon})
    maps = {"x": compare_products(a + 0.01, a), "y": compare_products(a - 0.02, a)}
    out = maps_table(maps, "comparison", ("n", "bias"))
    assert list(out.columns) == ["comparison", "lat", "lon", "n", "bias"]
    assert len(out) == 2 * d05.shape[0] * d05.shape[1]
    np.testing.assert_allclose(out.groupby("comparison")["bias"].mean(), [0.01, -0.02], atol=1e-12)


def test_compare_by_period_periods_masks_and_regions(grids):
    d05, _, _ = grids
    t = pd.date_range("1998-01-01", "2001-12-31")
    rng = np.random.default_rng(5)
    truth = xr.DataArray(rng.uniform(0.1, 0.4, (t.size, *d05.shape)), dims=("time", "lat", "lon"),
                         coords={"time": t, "lat": d05.lat, "lon": d05.lon}, name="truth")
    wet_early = truth + xr.where(truth["time"] < np.datetime64("2000-01-01"), 0.05, 0.01)
    labels = (truth + 0.02).where(truth["time"] >= np.datetime64("2000-01-01"))  # no value before 2000
    mask = xr.ones_like(truth.isel(time=0), dtype=bool)
    mask[0, 0] = False
    regions = xr.where(mask["lon"] < -99.5, "west", "east").broadcast_like(mask)
    periods = {"all": slice(None, None), "pre-2000": slice(None, "1999-12-31"), "post-2000": slice("2000-01-01", None)}
    table, maps = compare_by_period({"p": wet_early, "l": labels}, truth, periods, mask=mask,
                                    regions=regions.transpose("lat", "lon"), min_pairs=30)
    assert list(table.columns[:3]) == ["estimate", "period", "pixels"] and "comparison" not in table
    assert set(maps) == {("p", "all"), ("p", "pre-2000"), ("p", "post-2000"), ("l", "all"), ("l", "post-2000")}
    row = table.set_index(["estimate", "period", "pixels"])
    assert row.loc[("p", "pre-2000", "all"), "bias_median"] == pytest.approx(0.05)
    assert row.loc[("p", "post-2000", "all"), "bias_median"] == pytest.approx(0.01)
    assert row.loc[("l", "all", "all"), "bias_median"] == pytest.approx(0.02)
    n = d05.shape[0] * d05.shape[1]
    assert row.loc[("p", "all", "all"), "n_pixels"] == n - 1  # the masked pixel
    assert row.loc[("p", "all", "west"), "n_pixels"] + row.loc[("p", "all", "east"), "n_pixels"] == n - 1
    with pytest.raises(ValueError, match="no estimate has a valid value"):
        compare_by_period({"l": labels}, truth, {"pre-2000": periods["pre-2000"]})


def _paths_fixture(grid, seed=5, n_time=70, inf=False):
    rng = np.random.default_rng(seed)
    t = pd.date_range("2001-01-01", periods=n_time)
    a = rng.uniform(0.05, 0.45, (n_time, *grid.shape)).astype(np.float32)
    a[rng.random(a.shape) < 0.25] = np.nan
    a[:, 0, 0] = np.nan  # a pixel without any day
    b = a + rng.normal(0.04, 0.02, a.shape)
    b[rng.random(b.shape) < 0.1] = np.nan
    if inf:
        b[3, 2, 2] = np.inf  # the reference's infinities count as missing, as regrid_like makes them NaN
    coords = {"time": t, "lat": grid.lat, "lon": grid.lon}
    return (xr.DataArray(a, dims=("time", "lat", "lon"), coords=coords, name="a", attrs={"units": "m3 m-3"}),
            xr.DataArray(b, dims=("time", "lat", "lon"), coords=coords, name="b"))


def test_compare_numpy_paths_equal_the_xarray_path_bit_for_bit(grids, monkeypatch):
    """Same grid (no regridding), a regridded reference and small pixel blocks all give the xarray path's maps."""
    from glass_sm.evaluation import intercompare

    d05, d10, _ = grids
    a, b = _paths_fixture(d05, inf=True)
    coarse = b.coarsen(lat=2, lon=2).mean().assign_coords(lat=d10.lat, lon=d10.lon)
    fast = {"same": compare_products(a, b, min_pairs=20), "regridded": compare_products(a, coarse, min_pairs=20)}
    monkeypatch.setattr(intercompare, "_BLOCK_BYTES", 8 * 70 * 3)  # blocks of 3 pixels, 133 blocks
    small = {"same": compare_products(a, b, min_pairs=20), "regridded": compare_products(a, coarse, min_pairs=20)}
    monkeypatch.setattr(intercompare, "_pixel_stats", lambda a, b: None)  # the xarray path
    slow = {"same": compare_products(a, b, min_pairs=20), "regridded": compare_products(a, coarse, min_pairs=20)}
    for key in slow:
        xr.testing.assert_identical(fast[key], slow[key])
        xr.testing.assert_identical(small[key], slow[key])
        for v in slow[key].data_vars:  # identical() compares values with ==; here every bit
            assert np.array_equal(fast[key][v].values, slow[key][v].values, equal_nan=True)
            assert fast[key][v].dtype == slow[key][v].dtype
    assert int(fast["same"]["n"][0, 0]) == 0 and np.isnan(fast["same"]["bias"][0, 0])
    assert fast["same"].attrs["regrid"] == "lat: nearest, lon: nearest"


def test_compare_infinite_product_value_takes_the_xarray_path(grids):
    d05, _, _ = grids
    a, b = _paths_fixture(d05)
    a[5, 3, 3] = np.inf
    with np.errstate(invalid="ignore"):  # inf - inf in the centred terms of that pixel
        ds = compare_products(a, b, min_pairs=20)
    assert np.isinf(ds["bias"][3, 3]) and np.isfinite(ds["bias"][4, 4])
