"""Samples as (pixel, day) indices: candidates, splits without leakage, windows, normalization, gathering."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from glass_sm import config
from glass_sm.data import samples as S

OVERRIDES = {"samples.block_size": 2, "samples.window": 10, "run.seed": 3}


def make_cfg(**over):
    return config.load(None, {**OVERRIDES, **{f"samples.{k}" if "." not in k else k: v for k, v in over.items()}})


@pytest.fixture(scope="module")
def cube():
    return S.make_toy_cube(n_lat=6, n_lon=5, start="1999-06-01", end="2002-06-30", seed=1)


@pytest.fixture(scope="module")
def cube_truth():
    return S.make_toy_cube(n_lat=4, n_lon=4, start="1999-10-01", end="2001-03-31", seed=2, with_truth=True)


def pairs(idx):
    return set(map(tuple, np.asarray(idx).tolist()))


def manual_window(cube, s, p, t):
    """The normalised window of sample (p, t), sliced straight from the cube."""
    r, c = s.pixels[p]
    days = t + s.offsets
    cols = []
    for name, kind in zip(s.feature_names, s.features.kinds):
        if kind in ("dynamic", "flag"):
            v = cube[name].isel(lat=r, lon=c).values[days].astype(np.float64)
        elif kind == "static":
            v = np.full(len(days), float(cube[name].isel(lat=r, lon=c)))
        else:
            ang = 2 * np.pi * s.time[days].day_of_year.values / 365.25
            v = np.sin(ang) if name == "doy_sin" else np.cos(ang)
        cols.append(v)
    raw = np.stack(cols, axis=1)
    return (raw - s.normalizer.mean) / s.normalizer.sd


# ---- the toy cube -------------------------------------------------------------------------------------
def test_toy_cube_has_the_design_schema(cube):
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


# ---- candidates --------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["past", "centred"])
def test_every_sample_has_a_finite_label_after_label_start_and_a_window_inside(mode):
    cube = S.make_toy_cube(n_lat=4, n_lon=4, start="1999-12-01", end="2000-12-31", labels_before_start=True)
    cfg = make_cfg(window_mode=mode, split="random")
    s = S.build_samples(cube, cfg)
    t_start = np.searchsorted(s.time, np.datetime64("2000-02-24"))
    assert s.counts["before_label_start"] > 0  # the cube has labels before 2000-02-24 ...
    for name in S.SPLITS:
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


def test_window_outside_period_when_labels_start_with_the_cube():
    cube = S.make_toy_cube(n_lat=3, n_lon=3, start="2000-02-24", end="2000-12-31", n_ocean=0)
    s = S.build_samples(cube, make_cfg(split="random"))
    assert s.counts["window_outside_period"] > 0
    assert min(s.index(n)[:, 1].min() for n in S.SPLITS) == s.window - 1


def test_samples_with_nan_inputs_are_dropped_and_counted():
    cube = S.make_toy_cube(n_lat=4, n_lon=4, start="1999-12-01", end="2001-12-31", input_nan_fraction=0.003,
                           seed=5)
    cube["sand"][1, 1] = np.nan  # a land pixel without texture: no sample at all
    cfg = make_cfg(split="random", max_train_samples=10**7, max_eval_samples=10**7)
    s = S.build_samples(cube, cfg)
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
    for name in S.SPLITS:
        assert p_bad not in s.index(name)[:, 0]
        assert np.isfinite(s.windows(name)).all()


# ---- splits -------------------------------------------------------------------------------------------
def test_random_split_is_disjoint_and_proportioned(cube):
    s = S.build_samples(cube, make_cfg(split="random"))
    tr, va, te = pairs(s.train), pairs(s.val), pairs(s.test)
    assert not (tr & va) and not (tr & te) and not (va & te)
    n = s.counts["candidates"]
    assert abs(len(te) / n - 0.2) < 0.01
    assert abs(len(va) / (n - len(te)) - 0.1) < 0.01


def test_site_split_holds_out_whole_blocks(cube):
    s = S.build_samples(cube, make_cfg(split="site"))
    test_pix = set(s.test[:, 0])
    assert test_pix and not test_pix & set(s.train[:, 0]) and not test_pix & set(s.val[:, 0])
    assert test_pix == set(s.info["test_pixels"])
    blocks = {tuple(b) for b in s.info["test_blocks"]}
    bs = s.info["block_size"]
    for p, (r, c) in enumerate(s.pixels):  # a pixel is held out iff its block is
        assert ((r // bs, c // bs) in blocks) == (p in test_pix)
    frac = len(test_pix) / s.n_pixels
    assert 0.2 <= frac < 0.2 + 4 / s.n_pixels + 1e-9  # "at least test_fraction", by whole blocks
    assert set(s.val[:, 0]) <= set(s.train[:, 0])  # validation: other samples of the training pixels
    assert not pairs(s.train) & pairs(s.val)


@pytest.mark.parametrize("test_years", [[], [2001]])
def test_year_split_never_puts_a_test_year_target_in_train_or_val(cube, test_years):
    s = S.build_samples(cube, make_cfg(split="year", test_years=test_years))
    held = s.info["test_years"]
    if test_years:
        assert held == test_years
    assert set(s.dates("test").year) <= set(held)
    for name in ("train", "val"):
        assert not set(s.dates(name).year) & set(held)
    assert not pairs(s.train) & pairs(s.val)


def test_year_split_rejects_years_without_labels(cube):
    with pytest.raises(ValueError, match="test_years"):
        S.build_samples(cube, make_cfg(split="year", test_years=[1990]))


def test_subsampling_is_capped_deterministic_and_drawn_from_the_pool(cube):
    cfg = make_cfg(split="site", max_train_samples=500, max_eval_samples=200)
    a, b = S.build_samples(cube, cfg), S.build_samples(cube, cfg)
    full = S.build_samples(cube, make_cfg(split="site"))
    assert (len(a.train), len(a.val), len(a.test)) == (500, 200, 200)
    for name in S.SPLITS:
        np.testing.assert_array_equal(a.index(name), b.index(name))
        assert pairs(a.index(name)) <= pairs(full.index(name))
        idx = a.index(name)
        assert (np.lexsort((idx[:, 1], idx[:, 0])) == np.arange(len(idx))).all()  # sorted by pixel, day


def test_seed_decides_everything(cube):
    cfg = make_cfg(split="random", max_train_samples=1000)
    a, b = S.build_samples(cube, cfg), S.build_samples(cube, cfg)
    c = S.build_samples(cube, cfg, seed=99)
    for name in S.SPLITS:
        np.testing.assert_array_equal(a.index(name), b.index(name))
    np.testing.assert_array_equal(a.normalizer.mean, b.normalizer.mean)
    assert not np.array_equal(a.train, c.train)
    blocks = {str(S.build_samples(cube, make_cfg(split="site"), seed=k).info["test_blocks"]) for k in range(4)}
    years = {str(S.build_samples(cube, make_cfg(split="year"), seed=k).info["test_years"]) for k in range(6)}
    assert len(blocks) > 1 and len(years) > 1


# ---- windows ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,window", [("past", 10), ("centred", 10), ("centred", 7), ("past", 1)])
def test_windows_match_a_manual_slice_of_the_cube(cube, mode, window):
    s = S.build_samples(cube, make_cfg(split="random", window=window, window_mode=mode,
                                       include_filled_flags=True))
    assert s.feature_names == ["albedo_bsa", "albedo_wsa", "lst", "sm_era5land", "albedo_filled", "lst_filled",
                               "elevation", "sand", "clay", "doy_sin", "doy_cos"]
    expected_offsets = np.arange(-(window - 1), 1) if mode == "past" else \
        np.arange(-(window // 2), (window - 1) // 2 + 1)
    np.testing.assert_array_equal(s.offsets, expected_offsets)
    rng = np.random.default_rng(0)
    pick = s.test[rng.choice(len(s.test), 25, replace=False)]
    x = S.gather_windows(s.arrays(), pick, s.window, s.window_mode)
    assert x.shape == (25, window, s.n_features) and x.dtype == np.float32
    for i, (p, t) in enumerate(pick):
        np.testing.assert_allclose(x[i], manual_window(cube, s, p, t), rtol=1e-5, atol=1e-5)
    flags = x[..., 4:6]
    assert set(np.unique(flags)) <= {0.0, 1.0}  # flags are passed unnormalised


def test_gather_windows_equals_the_dataset_and_the_batches(cube):
    s = S.build_samples(cube, make_cfg(split="year", window_mode="centred"))
    ds = s.dataset("val")
    x_all, y_all = s.xy("val")
    for i in (0, 7, len(ds) - 1):
        x, y = ds[i]
        assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.shape == (s.window, s.n_features)
        assert y.dtype == torch.float32 and y.ndim == 0
        np.testing.assert_array_equal(x.numpy(), x_all[i])
        assert float(y) == pytest.approx(float(y_all[i]))
    ordered = S.batch_iterator(s, "val", batch_size=64, shuffle=False)
    assert isinstance(ordered, torch.utils.data.DataLoader)  # accepted by glass_sm.training as is
    assert len(ordered) == -(-len(s.val) // 64)
    xb = torch.cat([x for x, _ in ordered]).numpy()
    yb = torch.cat([y for _, y in ordered]).numpy()
    np.testing.assert_array_equal(xb, x_all)
    np.testing.assert_array_equal(yb, y_all)
    shuffled = S.batch_iterator(s, "val", batch_size=64, shuffle=True, seed=1)
    y1 = torch.cat([y for _, y in shuffled]).numpy()
    y2 = torch.cat([y for _, y in shuffled]).numpy()  # a second pass (epoch) reshuffles
    y1b = torch.cat([y for _, y in S.batch_iterator(s, "val", 64, True, seed=1)]).numpy()
    np.testing.assert_array_equal(np.sort(y1), np.sort(y_all))
    assert not np.array_equal(y1, y2)
    np.testing.assert_array_equal(y1, y1b)
    capped = S.batch_iterator(s, "train", batch_size=32, max_batches=3, drop_last=True)
    assert len(capped) == 3 and [len(y) for _, y in capped] == [32, 32, 32]


def test_gather_windows_rejects_windows_outside_the_data():
    data = np.zeros((20, 3, 2), np.float32)
    with pytest.raises(IndexError):
        S.gather_windows(data, np.array([[0, 3]]), 5, "past")
    with pytest.raises(IndexError):
        S.gather_windows(data, np.array([[0, 18]]), 5, "centred")
    assert S.gather_windows(data, np.array([[2, 4]]), 5, "past").shape == (1, 5, 2)


def test_shorter_windows_reuse_the_samples(cube):
    s = S.build_samples(cube, make_cfg(split="random", window=10))
    short = s.with_window(4)
    np.testing.assert_array_equal(short.test, s.test)
    np.testing.assert_array_equal(short.windows("test"), s.windows("test")[:, -4:])
    with pytest.raises(ValueError):
        s.with_window(12)


# ---- normalization ------------------------------------------------------------------------------------
def _coverage(s):
    cov = np.zeros((len(s.time), s.n_pixels), bool)
    for p, t in s.train:
        cov[t + s.offsets, p] = True
    return cov


def test_normalizer_statistics_are_those_of_the_training_windows(cube):
    s = S.build_samples(cube, make_cfg(split="random", max_train_samples=800))
    cov = _coverage(s)
    rows, cols = s.pixels[:, 0], s.pixels[:, 1]
    for j, name in enumerate(s.features.dynamic):
        vals = cube[name].values[:, rows, cols][cov].astype(np.float64)
        assert s.normalizer.mean[j] == pytest.approx(vals.mean(), rel=1e-6)
        assert s.normalizer.sd[j] == pytest.approx(vals.std(), rel=1e-6)
    train_pix = np.unique(s.train[:, 0])
    j0 = len(s.features.dynamic) + len(s.features.flags)
    for j, name in enumerate(s.features.static, start=j0):
        vals = cube[name].values[rows[train_pix], cols[train_pix]].astype(np.float64)
        assert s.normalizer.mean[j] == pytest.approx(vals.mean(), rel=1e-6)
    assert s.normalizer.fitted_on["cells"] == int(cov.sum())


@pytest.mark.parametrize("split", ["site", "random", "year"])
def test_changing_data_outside_the_training_windows_leaves_the_statistics_unchanged(cube, split):
    cfg = make_cfg(split=split, max_train_samples=1500)
    s = S.build_samples(cube, cfg)
    cov = _coverage(s)
    changed = cube.copy(deep=True)
    rows, cols = s.pixels[:, 0], s.pixels[:, 1]
    for name in s.features.dynamic:
        a = changed[name].values
        sub = a[:, rows, cols]
        sub[~cov] = sub[~cov] * 3 + 10  # every cell no training window reads
        a[:, rows, cols] = sub
    if split == "site":  # static fields of the held-out pixels too
        test_pix = np.array(s.info["test_pixels"])
        for name in s.features.static:
            changed[name].values[rows[test_pix], cols[test_pix]] += 123
    s2 = S.build_samples(changed, cfg)
    np.testing.assert_array_equal(s2.train, s.train)
    np.testing.assert_array_equal(s2.normalizer.mean, s.normalizer.mean)
    np.testing.assert_array_equal(s2.normalizer.sd, s.normalizer.sd)
    # ... while changing the training cells does change them
    hit = changed.copy(deep=True)
    hit["lst"].values[:, rows, cols] += 5
    assert S.build_samples(hit, cfg).normalizer.mean[2] == pytest.approx(s.normalizer.mean[2] + 5, rel=1e-6)


def test_normalizer_travels_as_json(cube, tmp_path):
    s = S.build_samples(cube, make_cfg(include_filled_flags=True))
    d = json.loads(json.dumps(s.normalizer.to_dict()))
    back = S.Normalizer.from_dict(d)
    assert back.names == s.feature_names and back.spec.units["lst"] == "K"
    assert back.spec.units["sm_era5land"] == "m3 m-3"
    np.testing.assert_array_equal(back.mean, s.normalizer.mean)
    np.testing.assert_array_equal(back.sd, s.normalizer.sd)
    path = s.normalizer.save(tmp_path / "normalizer.json")
    again = S.Normalizer.load(path)
    np.testing.assert_array_equal(again.sd, s.normalizer.sd)
    z = again.apply(np.array([[0.2, 0.21, 290.0, 0.3, 0, 1, 800, 0.4, 0.2, 0.5, 0.5]]))
    np.testing.assert_allclose(again.inverse(z), [[0.2, 0.21, 290.0, 0.3, 0, 1, 800, 0.4, 0.2, 0.5, 0.5]],
                               rtol=1e-5)
    flags_doy = [k in ("flag", "doy") for k in s.features.kinds]
    assert (s.normalizer.mean[flags_doy] == 0).all() and (s.normalizer.sd[flags_doy] == 1).all()
    json.dumps(s.to_dict())
    assert list(s.features.table()["units"])[:4] == ["1", "1", "K", "m3 m-3"]


# ---- memory, truth, errors ------------------------------------------------------------------------------
def test_samples_store_indices_not_windows(cube):
    s = S.build_samples(cube, make_cfg(split="site"))

    def arrays(obj):
        return {k: v for k, v in vars(obj).items() if isinstance(v, np.ndarray)} | {
            f"_targets.{k}": v for k, v in obj._targets.items()}

    before = arrays(s)
    assert all(a.ndim <= 2 for a in before.values())
    n = sum(len(s.index(k)) for k in S.SPLITS)
    assert sum(a.nbytes for a in before.values()) < n * 8 * 3 + s.n_pixels * 64
    data = s.arrays()
    assert data is s.arrays()  # cached, loaded once
    assert data.shape == (len(s.time), s.n_pixels, s.n_features) and data.dtype == np.float32
    assert data.nbytes == s.array_nbytes
    after = arrays(s)  # the one 3-D array is the (time, pixel, feature) cube layout, not (n, L, F) windows
    assert [k for k, a in after.items() if a.ndim > 2] == ["_data"]
    s.release()
    assert s._data is None


def test_values_at_fetches_the_truth_at_the_samples(cube_truth):
    cube, truth = cube_truth
    s = S.build_samples(cube, make_cfg(split="random"))
    v = S.values_at(truth, s, "test")
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


def test_missing_cube_variable_is_named(cube):
    with pytest.raises(KeyError, match="lst"):
        S.build_samples(cube.drop_vars("lst"), make_cfg())


def test_pixel_table_and_summary(cube):
    s = S.build_samples(cube, make_cfg(split="site"))
    t = s.pixel_table()
    assert len(t) == s.n_pixels == int((cube["land_mask"] == 1).sum())
    assert (t.loc[s.info["test_pixels"], "n_train"] == 0).all()
    assert t["n_test"].sum() == len(s.test)
    np.testing.assert_allclose(t["lat"], cube["lat"].values[t["row"]])
    summ = s.summary()
    assert isinstance(summ, pd.DataFrame) and "nan_inputs" in set(summ["item"])


def test_a_lazy_zarr_cube_gives_the_same_samples(tmp_path):
    import xarray as xr

    cube = S.make_toy_cube(n_lat=4, n_lon=3, start="2000-01-01", end="2000-12-31")
    cube = cube.drop_vars("platform")  # strings are not part of the samples
    cube.chunk({"time": 100, "lat": 2, "lon": 2}).to_zarr(tmp_path / "cube.zarr", consolidated=False)
    lazy = xr.open_zarr(tmp_path / "cube.zarr", consolidated=False)
    cfg = make_cfg(split="site", block_size=1)
    a, b = S.build_samples(cube, cfg), S.build_samples(lazy, cfg)
    for name in S.SPLITS:
        np.testing.assert_array_equal(a.index(name), b.index(name))
        np.testing.assert_array_equal(a.targets(name), b.targets(name))
    np.testing.assert_array_equal(a.normalizer.mean, b.normalizer.mean)
    np.testing.assert_array_equal(a.arrays(), b.arrays())
