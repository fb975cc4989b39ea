"""The zoom's aggregation onto coarse cells and its agreement table (closed-form checks on synthetic fields)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from glass_sm.grid import Domain
from glass_sm.zoom import aggregate_to_grid, zoom_agreement


def _field(domain: Domain, values: np.ndarray, times=None) -> xr.DataArray:
    coords = {"lat": domain.lat, "lon": domain.lon}
    dims = ("lat", "lon")
    if times is not None:
        coords = {"time": times, **coords}
        dims = ("time",) + dims
    return xr.DataArray(values, dims=dims, coords=coords, name="sm", attrs={"units": "m3 m-3"})


def test_aggregate_is_the_block_mean_and_skips_nan():
    fine = Domain.from_bounds(36.0, 38.0, -102.0, -100.0)          # 40 x 40 cells of 0.05 deg = 2 x 2 cells of 1 deg
    rng = np.random.default_rng(0)
    a = rng.random(fine.shape)
    a[:3, :3] = np.nan
    out = aggregate_to_grid(_field(fine, a), 1.0)
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out["lat"], [37.5, 36.5])
    np.testing.assert_allclose(out["lon"], [-101.5, -100.5])
    blocks = a.reshape(2, 20, 2, 20)
    np.testing.assert_allclose(out.values, np.nanmean(blocks, axis=(1, 3)), rtol=1e-6)
    assert out.attrs["units"] == "m3 m-3"


def test_aggregate_keeps_leading_dims_and_all_nan_cells():
    fine = Domain.from_bounds(0.0, 1.0, 10.0, 12.0)
    t = pd.date_range("2015-01-01", periods=3)
    a = np.ones((3,) + fine.shape) * np.arange(3)[:, None, None]
    a[:, :, :20] = np.nan                                               # the western 1-deg cell is all sea
    out = aggregate_to_grid(_field(fine, a, t), 1.0)
    assert out.dims == ("time", "lat", "lon") and out.shape == (3, 1, 2)
    assert np.isnan(out.values[:, 0, 0]).all()
    np.testing.assert_allclose(out.values[:, 0, 1], [0, 1, 2])


def test_agreement_recovers_a_known_offset_and_the_subcell_spread():
    fine = Domain.from_bounds(36.0, 38.0, -102.0, -100.0)
    coarse = Domain.from_bounds(35.0, 39.0, -103.0, -99.0, res=1.0)
    t = pd.date_range("2015-01-01", periods=50)
    rng = np.random.default_rng(1)
    signal = 0.2 + 0.05 * np.sin(np.arange(50) / 5.0)
    pattern = np.where((np.arange(40) // 10) % 2 == 0, 0.01, -0.01)     # +-0.01 stripes: within-cell sd 0.01
    f = signal[:, None, None] + pattern[None, None, :] + np.zeros((50,) + fine.shape)
    c = signal[:, None, None] - 0.02 + np.zeros((50,) + coarse.shape)
    table = zoom_agreement(_field(fine, f, t), _field(coarse, c, t))
    assert len(table) == 4                                             # the four 1-deg cells the zoom covers
    np.testing.assert_allclose(table["bias"], 0.02, atol=1e-6)
    np.testing.assert_allclose(table["rmse"], 0.02, atol=1e-6)
    np.testing.assert_allclose(table["r"], 1.0, atol=1e-6)
    np.testing.assert_allclose(table["sd_within"], 0.01, atol=1e-5)
    np.testing.assert_allclose(table["coverage"], 1.0)


def test_agreement_drops_partly_covered_cells():
    fine = Domain.from_bounds(36.0, 36.4, -102.0, -101.0)             # 40 % of one 1-deg cell
    coarse = Domain.from_bounds(35.0, 38.0, -103.0, -100.0, res=1.0)
    t = pd.date_range("2015-01-01", periods=10)
    f = np.full((10,) + fine.shape, 0.3)
    c = np.full((10,) + coarse.shape, 0.3)
    assert zoom_agreement(_field(fine, f, t), _field(coarse, c, t)).empty
    table = zoom_agreement(_field(fine, f, t), _field(coarse, c, t), min_fraction=0.3)
    assert len(table) == 1 and table["coverage"].iloc[0] == pytest.approx(0.4)
    assert np.isnan(table["r"].iloc[0]) and abs(table["bias"].iloc[0]) < 1e-6   # constant series: r undefined


def test_the_zoom_of_the_earth_world_aggregates_back_to_the_coarse_cells(tmp_path):
    """The same seed sampled at 1 deg and at 0.05 deg: the fine truth averaged onto each 1 deg cell agrees with it.

    A coarse cell takes the weather at its centre (a point of the world), its soil and terrain as block means; the
    mean of its 400 fine cells averages storms and soils, and the bucket is non-linear. So the daily values differ
    by sub-cell variability, while the climatological means agree: tolerances (written before the first run) are
    |time-mean bias| < 0.02 m3 m-3 and below half the sub-cell spatial sd, and daily r > 0.6.
    """
    from glass_sm import config
    from glass_sm.twin.truth import simulate_truth

    base = {"run.results_dir": str(tmp_path), "twin.climate": "earth", "period.start": "2014-01-01",
            "period.end": "2015-12-31", "twin.station_pre2000_fraction": 0.0, "twin.n_stations": 2}
    coarse = config.load("params/smoke.yaml", {**base, "domain.lat_min": 36.0, "domain.lat_max": 39.0,
                                               "domain.lon_min": -102.0, "domain.lon_max": -96.0,
                                               "domain.resolution": 1.0, "twin.static_resolution": 0.25,
                                               "twin.cci_resolution": 1.0})
    fine = config.load("params/smoke.yaml", {**base, "period.start": "2015-01-01", "domain.lat_min": 37.0,
                                             "domain.lat_max": 38.0, "domain.lon_min": -100.0, "domain.lon_max": -98.0,
                                             "twin.static_resolution": 0.01})

    def truth(cfg):
        sim = simulate_truth(cfg)
        g = sim["grids"]
        rs, cs = g.out_in_sim
        return xr.DataArray(sim["theta"][:, rs, cs], dims=("time", "lat", "lon"),
                            coords={"time": sim["dates"], "lat": g.out.lat, "lon": g.out.lon})

    table = zoom_agreement(truth(fine), truth(coarse))
    assert len(table) == 2 and (table["coverage"] == 1.0).all() and (table["n_days"] == 365).all()
    assert (table["bias"].abs() < 0.02).all()
    assert (table["bias"].abs() < 0.5 * table["sd_within"]).all()
    assert (table["r"] > 0.6).all()
