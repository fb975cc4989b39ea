"""glass_sm.data.samples: candidates, dropped samples, indices not windows, values at samples, lazy cubes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from glass_sm.data import SPLITS, build_samples, values_at
from glass_sm.testing import make_toy_cube


@pytest.mark.parametrize("mode", ["past", "centred"])
def test_every_sample_has_a_finite_label_after_label_start_and_a_window_inside(mode, samples_cfg):
    cube = make_toy_cube(n_lat=4, n_lon=4, start="1999-12-01", end="2000-12-31", labels_before_start=True)
    cfg = samples_cfg(window_mode=mode, split="random")
    s = build_samples(cube, cfg)
    t_start = np.searchsorted(s.time, np.datetime64("2000-02-24"))
    assert s.counts["before_label_start"] > 0  # the cube has labels before 2000-02-24 ...
    for name in SPLITS:
        idx = s.index(name)
        assert (idx[:, 1] >= t_start).all()  # ... that never become targets
        assert (idx[:, 1] + s.offsets[0] >= 0).all() and (idx[:, 1] + s.offsets[-1] < len(s.time)).all()
        assert np.isfinite(s.targets(name)).all()
        np.testing.assert_array_equal(s.targets(name), s.values_at(cube["sm_label"], name))
    c = s.counts
    assert c["candidates"] == c["label_cells"] - c["before_label_start"] - c["window_outside_period"] \
        - c["nan_inputs"]
    assert c["candidates"] == c["train_pool"] + c["val_pool"] + c["test_pool"]
    if mode == "centred":  # labels up to the last day exist, but a centred window would run past it
        assert c["window_outside_period"] > 0
        assert s.index("train")[:, 1].max() <= len(s.time) - 1 - s.offsets[-1]


def test_window_outside_period_when_labels_start_with_the_cube(samples_cfg):
    cube = make_toy_cube(n_lat=3, n_lon=3, start="2000-02-24", end="2000-12-31", n_ocean=0)
    s = build_samples(cube, samples_cfg(split="random"))
    assert s.counts["window_outside_period"] > 0
    assert min(s.index(n)[:, 1].min() for n in SPLITS) == s.window - 1


def test_samples_with_nan_inputs_are_dropped_and_counted(samples_cfg):
    cube = make_toy_cube(n_lat=4, n_lon=4, start="1999-12-01", end="2001-12-31", input_nan_fraction=0.003,
                         seed=5)
    cube["sand"][1, 1] = np.nan  # a land pixel without texture: no sample at all
    cfg = samples_cfg(split="random", max_train_samples=10**7, max_eval_samples=10**7)
    s = build_samples(cube, cfg)
    # brute force: label-finite, in-period candidates whose past window holds a NaN lst or sand
    L = s.window
    expected = 0
    for k, (r, c) in enumerate(s.pixels):
        lab = cube["sm_label"].values[:, r, c]
        lst_nan = np.isnan(cube["lst"].values[:, r, c])
        sand_nan = np.isnan(cube["sand"].values[r, c])
        t0 = np.searchsorted(s.time, np.datetime64("2000-02-24"))
        for t in range(max(t0, L - 1), len(s.time)):
            if np.isfinite(lab[t]) and (sand_nan or lst_nan[t - L + 1:t + 1].any()):
                expected += 1
    assert s.counts["nan_inputs"] == expected > 0
    p_bad = int(np.flatnonzero((s.pixels == [1, 1]).all(axis=1))[0])
    for name in SPLITS:
        assert p_bad not in s.index(name)[:, 0]
        assert np.isfinite(s.windows(name)).all()


def test_samples_store_indices_not_windows(toy_cube, samples_cfg):
    s = build_samples(toy_cube, samples_cfg(split="site"))

    def arrays(obj):
        return {k: v for k, v in vars(obj).items() if isinstance(v, np.ndarray)} | {
            f"_targets.{k}": v for k, v in obj._targets.items()}

    before = arrays(s)
    assert all(a.ndim <= 2 for a in before.values())
    n = sum(len(s.index(k)) for k in SPLITS)
    assert sum(a.nbytes for a in before.values()) < n * 8 * 3 + s.n_pixels * 64
    data = s.arrays()
    assert data is s.arrays()  # cached, loaded once
    assert data.shape == (len(s.time), s.n_pixels, s.n_features) and data.dtype == np.float32
    assert data.nbytes == s.array_nbytes
    after = arrays(s)  # the one 3-D array is the (time, pixel, feature) cube layout, not (n, L, F) windows
    assert [k for k, a in after.items() if a.ndim > 2] == ["_data"]
    s.release()
    assert s._data is None


def test_values_at_fetches_the_truth_at_the_samples(toy_cube_truth, samples_cfg):
    cube, truth = toy_cube_truth
    s = build_samples(cube, samples_cfg(split="random"))
    v = values_at(truth, s, "test")
    for (p, t), val in zip(s.test[:50], v[:50]):
        r, c = s.pixels[p]
        assert val == truth.values[t, r, c]
    # on a larger grid (a truth file covering more than the cube) and with its own time axis
    bigger = truth.pad(lat=(1, 2), lon=(3, 0)).assign_coords(
        lat=np.round(np.r_[truth.lat[0] + 0.05, truth.lat, truth.lat[-1] - 0.05, truth.lat[-1] - 0.1], 6),
        lon=np.round(np.r_[truth.lon[0] - 0.15, truth.lon[0] - 0.1, truth.lon[0] - 0.05, truth.lon], 6))
    np.testing.assert_array_equal(s.values_at(bigger.isel(time=slice(30, None)), "test"), v)
    assert np.abs(s.targets("test") - v).mean() < 0.03  # labels = truth + 0.02 noise
    np.testing.assert_array_equal(s.values_at(cube["sand"], "test"), cube["sand"].values[
        s.pixels[s.test[:, 0], 0], s.pixels[s.test[:, 0], 1]])


def test_missing_cube_variable_is_named(toy_cube, samples_cfg):
    with pytest.raises(KeyError, match="lst"):
        build_samples(toy_cube.drop_vars("lst"), samples_cfg())


def test_pixel_table_and_summary(toy_cube, samples_cfg):
    s = build_samples(toy_cube, samples_cfg(split="site"))
    t = s.pixel_table()
    assert len(t) == s.n_pixels == int((toy_cube["land_mask"] == 1).sum())
    assert (t.loc[s.info["test_pixels"], "n_train"] == 0).all()
    assert t["n_test"].sum() == len(s.test)
    np.testing.assert_allclose(t["lat"], toy_cube["lat"].values[t["row"]])
    summ = s.summary()
    assert isinstance(summ, pd.DataFrame) and "nan_inputs" in set(summ["item"])


def test_a_lazy_zarr_cube_gives_the_same_samples(tmp_path, samples_cfg):
    cube = make_toy_cube(n_lat=4, n_lon=3, start="2000-01-01", end="2000-12-31")
    cube = cube.drop_vars("platform")  # strings are not part of the samples
    cube.chunk({"time": 100, "lat": 2, "lon": 2}).to_zarr(tmp_path / "cube.zarr", consolidated=False)
    lazy = xr.open_zarr(tmp_path / "cube.zarr", consolidated=False)
    cfg = samples_cfg(split="site", block_size=1)
    a, b = build_samples(cube, cfg), build_samples(lazy, cfg)
    for name in SPLITS:
        np.testing.assert_array_equal(a.index(name), b.index(name))
        np.testing.assert_array_equal(a.targets(name), b.targets(name))
    np.testing.assert_array_equal(a.normalizer.mean, b.normalizer.mean)
    np.testing.assert_array_equal(a.arrays(), b.arrays())


def test_unknown_split_strategy_is_refused_before_any_work(toy_cube, samples_cfg):
    with pytest.raises(ValueError, match="unknown split strategy 'pixel'"):
        build_samples(toy_cube.drop_vars("lst"), samples_cfg(), split="pixel")


def test_samples_describe_themselves_as_json(toy_cube, samples_cfg):
    s = build_samples(toy_cube, samples_cfg(split="year"))
    d = json.loads(json.dumps(s.to_dict()))
    assert d["split"] == "year" and d["window"] == 10 and d["features"] == s.feature_names
    assert d["counts"] == s.counts and d["info"]["test_years"] == s.info["test_years"]
    assert d["normalizer"]["mean"] == s.normalizer.mean.tolist()
