"""glass_sm.data.features: feature spec, normalizer fitted on the training windows only, feature array."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from glass_sm.data import (DEFAULT_UNITS, FeatureSpec, Normalizer, build_samples, daily_time, doy_harmonics,
                           feature_array, land_pixels, pixel_values, to_jsonable)
from glass_sm.data.cube import CUBE_ATTRS


def _coverage(s):
    cov = np.zeros((len(s.time), s.n_pixels), bool)
    for p, t in s.train:
        cov[t + s.offsets, p] = True
    return cov


def test_normalizer_statistics_are_those_of_the_training_windows(toy_cube, samples_cfg):
    s = build_samples(toy_cube, samples_cfg(split="random", max_train_samples=800))
    cov = _coverage(s)
    rows, cols = s.pixels[:, 0], s.pixels[:, 1]
    for j, name in enumerate(s.features.dynamic):
        vals = toy_cube[name].values[:, rows, cols][cov].astype(np.float64)
        assert s.normalizer.mean[j] == pytest.approx(vals.mean(), rel=1e-6)
        assert s.normalizer.sd[j] == pytest.approx(vals.std(), rel=1e-6)
    train_pix = np.unique(s.train[:, 0])
    j0 = len(s.features.dynamic) + len(s.features.flags)
    for j, name in enumerate(s.features.static, start=j0):
        vals = toy_cube[name].values[rows[train_pix], cols[train_pix]].astype(np.float64)
        assert s.normalizer.mean[j] == pytest.approx(vals.mean(), rel=1e-6)
    assert s.normalizer.fitted_on["cells"] == int(cov.sum())


@pytest.mark.parametrize("split", ["site", "random", "year"])
def test_changing_data_outside_the_training_windows_leaves_the_statistics_unchanged(toy_cube, split, samples_cfg):
    cfg = samples_cfg(split=split, max_train_samples=1500)
    s = build_samples(toy_cube, cfg)
    cov = _coverage(s)
    changed = toy_cube.copy(deep=True)
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
    s2 = build_samples(changed, cfg)
    np.testing.assert_array_equal(s2.train, s.train)
    np.testing.assert_array_equal(s2.normalizer.mean, s.normalizer.mean)
    np.testing.assert_array_equal(s2.normalizer.sd, s.normalizer.sd)
    # ... while changing the training cells does change them
    hit = changed.copy(deep=True)
    hit["lst"].values[:, rows, cols] += 5
    assert build_samples(hit, cfg).normalizer.mean[2] == pytest.approx(s.normalizer.mean[2] + 5, rel=1e-6)


def test_normalizer_travels_as_json(toy_cube, tmp_path, samples_cfg):
    s = build_samples(toy_cube, samples_cfg(include_filled_flags=True))
    d = json.loads(json.dumps(s.normalizer.to_dict()))
    back = Normalizer.from_dict(d)
    assert back.names == s.feature_names and back.spec.units["lst"] == "K"
    assert back.spec.units["sm_era5land"] == "m3 m-3"
    np.testing.assert_array_equal(back.mean, s.normalizer.mean)
    np.testing.assert_array_equal(back.sd, s.normalizer.sd)
    path = s.normalizer.save(tmp_path / "normalizer.json")
    again = Normalizer.load(path)
    np.testing.assert_array_equal(again.sd, s.normalizer.sd)
    z = again.apply(np.array([[0.2, 0.21, 290.0, 0.3, 0, 1, 800, 0.4, 0.2, 0.5, 0.5]]))
    np.testing.assert_allclose(again.inverse(z), [[0.2, 0.21, 290.0, 0.3, 0, 1, 800, 0.4, 0.2, 0.5, 0.5]],
                               rtol=1e-5)
    flags_doy = [k in ("flag", "doy") for k in s.features.kinds]
    assert (s.normalizer.mean[flags_doy] == 0).all() and (s.normalizer.sd[flags_doy] == 1).all()
    json.dumps(s.to_dict())
    assert list(s.features.table()["units"])[:4] == ["1", "1", "K", "m3 m-3"]


# ---- the feature spec, units, cube access, the feature array -------------------------------------------------
def test_feature_spec_from_config_finds_each_flag_once(toy_cube, samples_cfg):
    cfg = samples_cfg(include_filled_flags=True)
    spec = FeatureSpec.from_config(cfg, toy_cube)
    assert spec.flags == ["albedo_filled", "lst_filled"]  # albedo_bsa and albedo_wsa share one; ERA5 has none
    assert spec.kinds == ["dynamic"] * 4 + ["flag"] * 2 + ["static"] * 3 + ["doy"] * 2
    assert spec.cube_variables == [*spec.dynamic, *spec.flags, *spec.static]
    assert spec.n_features == len(spec.names) == len(spec.table())
    assert FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert FeatureSpec.from_config(samples_cfg(include_filled_flags=False), toy_cube).flags == []
    with pytest.raises(ValueError, match="pass it"):
        FeatureSpec.from_config(cfg)


def test_units_come_from_the_cube_or_the_cube_schema(toy_cube, samples_cfg):
    assert {k: v for k, v in DEFAULT_UNITS.items() if k in CUBE_ATTRS} == {k: a["units"] for k, a in
                                                                           CUBE_ATTRS.items()}
    assert DEFAULT_UNITS["doy_sin"] == DEFAULT_UNITS["doy_cos"] == "1"
    bare = toy_cube.copy(deep=True)
    for v in bare.variables:
        bare[v].attrs.pop("units", None)
    assert "units" not in bare["lst"].attrs and toy_cube["lst"].attrs["units"] == "K"
    cfg = samples_cfg(include_filled_flags=True)
    assert FeatureSpec.from_config(cfg, bare).units == FeatureSpec.from_config(cfg, toy_cube).units
    assert FeatureSpec.from_config(samples_cfg()).units["lst"] == "K"  # without a cube


def test_normalizer_checks_shapes_and_names(toy_cube, samples_cfg):
    spec = FeatureSpec.from_config(samples_cfg(), toy_cube)
    with pytest.raises(ValueError, match="shape"):
        Normalizer(spec, np.zeros(spec.n_features + 1), np.ones(spec.n_features))
    d = Normalizer(spec, np.zeros(spec.n_features), np.ones(spec.n_features)).to_dict()
    d["names"] = d["names"][::-1]
    with pytest.raises(ValueError, match="do not match"):
        Normalizer.from_dict(d)
    table = Normalizer(spec, np.arange(spec.n_features), np.ones(spec.n_features)).table()
    assert list(table.columns) == ["index", "name", "kind", "units", "mean", "sd"]


def test_to_jsonable_turns_numpy_into_python():
    out = to_jsonable({1: np.int64(3), "a": (np.float32(0.5), np.arange(2)), "s": "x"})
    assert out == {"1": 3, "a": [0.5, [0, 1]], "s": "x"}
    assert json.dumps(out) and type(out["1"]) is int


def test_cube_access_helpers(toy_cube):
    rows, cols = land_pixels(toy_cube)
    land = toy_cube["land_mask"].values == 1
    assert len(rows) == land.sum() and land[rows, cols].all()
    assert (np.diff(rows * 100 + cols) > 0).all()  # row-major: north to south, west to east
    lst = pixel_values(toy_cube["lst"], rows, cols)
    assert lst.shape == (toy_cube.sizes["time"], len(rows)) and lst.dtype == np.float32
    np.testing.assert_array_equal(lst, toy_cube["lst"].values[:, rows, cols])
    np.testing.assert_array_equal(pixel_values(toy_cube["lst"], rows[3:5], cols[3:5], slice(10, 20)),
                                  toy_cube["lst"].values[10:20, rows[3:5], cols[3:5]])
    np.testing.assert_array_equal(pixel_values(toy_cube["sand"], rows, cols), toy_cube["sand"].values[rows, cols])
    with pytest.raises(ValueError, match="no land cell"):
        land_pixels(toy_cube.assign(land_mask=toy_cube["land_mask"] * 0))
    time = daily_time(toy_cube)
    assert len(time) == toy_cube.sizes["time"]
    with pytest.raises(ValueError, match="consecutive days"):
        daily_time(toy_cube.isel(time=[0, 1, 3]))


def test_doy_harmonics_closed_form():
    time = pd.to_datetime(["2001-01-01", "2001-04-02", "2004-12-31"])
    h = doy_harmonics(time)
    ang = 2 * np.pi * np.array([1, 92, 366]) / 365.25
    np.testing.assert_allclose(h, np.stack([np.sin(ang), np.cos(ang)], axis=1), atol=1e-7)
    assert h.dtype == np.float32


def test_feature_array_of_a_tile_is_a_slice_of_the_full_array(toy_cube, samples_cfg):
    s = build_samples(toy_cube, samples_cfg(include_filled_flags=True))
    full = s.arrays()
    tile = [2, 3, 7]
    part = feature_array(toy_cube, s.normalizer, s.pixels[tile, 0], s.pixels[tile, 1], slice(100, 160))
    assert part.flags.c_contiguous and part.dtype == np.float32
    np.testing.assert_array_equal(part, full[100:160, tile])
    with pytest.raises(KeyError, match="sand"):
        feature_array(toy_cube.drop_vars("sand"), s.normalizer, s.pixels[:, 0], s.pixels[:, 1])
