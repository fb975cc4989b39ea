"""glass_sm.testing: the shipped toy cube has the cube schema of book/design.md and is deterministic."""

from __future__ import annotations

import numpy as np
import pandas as pd

from glass_sm.data.cube import CUBE_ATTRS
from glass_sm.testing import make_toy_cube


def test_toy_cube_has_the_design_schema():
    cube = make_toy_cube(n_lat=6, n_lon=5, start="1999-06-01", end="2002-06-30", seed=1)
    for v in ("albedo_bsa", "albedo_wsa", "lst", "sm_era5land", "sm_label", "albedo_filled", "lst_filled"):
        assert cube[v].dims == ("time", "lat", "lon") and "units" in cube[v].attrs
    for v in ("elevation", "sand", "clay", "silt", "land_mask"):
        assert cube[v].dims == ("lat", "lon")
    assert cube["lst"].dtype == np.float32 and cube["land_mask"].dtype == np.int8
    assert cube["lst_filled"].dtype == np.int8 and cube["lst"].attrs["units"] == "K"
    assert np.all(np.diff(cube["lat"].values) < 0)
    assert cube.attrs["Conventions"] == "CF-1.8"
    before = cube["sm_label"].sel(time=slice(None, "2000-02-23"))
    assert np.isnan(before.values).all()
    land = cube["land_mask"].values == 1
    texture = (cube["sand"] + cube["clay"] + cube["silt"]).values[land]
    np.testing.assert_allclose(texture, 1, atol=1e-6)


def test_toy_cube_variables_carry_the_attributes_of_the_real_cube():
    cube = make_toy_cube(n_lat=3, n_lon=3, start="2000-01-01", end="2000-03-31")
    assert set(CUBE_ATTRS) <= set(cube.data_vars)
    for name, attrs in CUBE_ATTRS.items():
        assert {k: cube[name].attrs[k] for k in attrs} == attrs
    assert cube["platform"].dims == ("time",)


def test_toy_cube_is_deterministic_and_seeded():
    a, ta = make_toy_cube(n_lat=3, n_lon=4, start="2000-01-01", end="2000-12-31", seed=5, with_truth=True)
    b, tb = make_toy_cube(n_lat=3, n_lon=4, start="2000-01-01", end="2000-12-31", seed=5, with_truth=True)
    c = make_toy_cube(n_lat=3, n_lon=4, start="2000-01-01", end="2000-12-31", seed=6)
    assert a.equals(b) and ta.equals(tb)
    assert not np.array_equal(a["lst"].values, c["lst"].values, equal_nan=True)


def test_toy_cube_grid_ocean_and_truth():
    cube, truth = make_toy_cube(n_lat=4, n_lon=5, start="2000-01-01", end="2000-12-31", lat_max=41.0,
                                lon_min=-99.0, n_ocean=3, with_truth=True)
    assert cube.sizes == {"time": 366, "lat": 4, "lon": 5}
    np.testing.assert_allclose(cube["lat"].values, 41.0 - 0.025 - 0.05 * np.arange(4), atol=1e-9)
    np.testing.assert_allclose(cube["lon"].values, -99.0 + 0.025 + 0.05 * np.arange(5), atol=1e-9)
    ocean = cube["land_mask"].values == 0
    assert ocean.sum() == 3 and ocean.reshape(-1)[-3:].all()  # the south-east corner
    for v in ("lst", "sm_era5land", "sm_label", "sand"):
        assert np.isnan(cube[v].values[..., ocean]).all()
    assert truth.name == "sm_true" and truth.attrs["units"] == "m3 m-3" and truth.dims == cube["lst"].dims
    land_truth = truth.values[:, ~ocean]
    assert np.isnan(truth.values[:, ocean]).all()
    assert 0.05 <= land_truth.min() and land_truth.max() <= 0.45
    label = cube["sm_label"].values[:, ~ocean]
    ok = np.isfinite(label)
    assert np.abs(label[ok] - land_truth[ok]).mean() < 0.03  # labels = truth + 0.02 m3 m-3 noise


def test_toy_cube_label_start_gaps_and_unfilled_inputs():
    kw = dict(n_lat=4, n_lon=4, start="1999-12-01", end="2001-12-31", seed=2)
    cube = make_toy_cube(**kw, input_nan_fraction=0.01, label_gap_fraction=0.2, labels_before_start=True)
    time = pd.DatetimeIndex(cube["time"].values)
    land = cube["land_mask"].values == 1
    label = cube["sm_label"].values[:, land]
    assert np.isfinite(label[time < "2000-02-24"]).any()  # labels before label_start when asked
    assert 0.15 < np.isnan(label).mean() < 0.25
    assert 0 < np.isnan(cube["lst"].values[:, land]).mean() < 0.02
    default = make_toy_cube(**kw)
    assert np.isnan(default["sm_label"].values[time < "2000-02-24"]).all()
    assert np.isfinite(default["lst"].values[:, land]).all()
