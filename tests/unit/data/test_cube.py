"""glass_sm.data.cube: gap filling (closed forms and invariants), tiled building, atomic writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glass_sm import config, twin
from glass_sm.data import cube
from glass_sm.data.cube import doy_climatology, fill_gaps
from glass_sm.grid import Domain
from glass_sm.paths import RunPaths, atomic_path
from glass_sm.testing import make_toy_cube

SMOKE = Path(__file__).resolve().parents[3] / "params" / "smoke.yaml"
SHORT = {"period.start": "2000-01-01", "period.end": "2000-12-31", "domain.lon_max": -99.8, "twin.n_stations": 2}


def _cfg(root, **over):
    return config.load(SMOKE, {"run.results_dir": str(root), **SHORT, **over})


@pytest.fixture(scope="module")
def small_twin(tmp_path_factory):
    """The smoke domain's twin over two months (a few seconds)."""
    cfg = _cfg(tmp_path_factory.mktemp("cube_twin"))
    twin.generate_twin(cfg, progress=False)
    return cfg


def _toy_tile(cfg):
    """A toy tile on the run's grid and period, standing in for :func:`glass_sm.data.cube.assemble_tile`."""
    d = Domain.from_config(cfg)
    ds = make_toy_cube(n_lat=d.nrows, n_lon=d.ncols, start=cfg.period.start, end=cfg.period.end,
                       lat_max=d.north, lon_min=d.west, n_ocean=0)
    return ds.assign_coords(lat=d.lat, lon=d.lon)


# ---------------------------------------------------------------------------------------------------------
# gap filling
# ---------------------------------------------------------------------------------------------------------
def test_short_gap_linear_interpolation_and_flags():
    t = pd.date_range("2001-01-01", periods=10)
    v = np.arange(10, dtype=float)[:, None].repeat(2, axis=1)
    v[3:6, 0] = np.nan
    out, flag = fill_gaps(v, t, max_gap_days=5)
    assert np.allclose(out[:, 0], np.arange(10))
    assert flag[:, 0].tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    assert flag[:, 1].sum() == 0 and out.dtype == np.float32
    # observed values are never changed
    assert np.array_equal(out[~flag.astype(bool)], v[~flag.astype(bool)].astype(np.float32))


def test_long_gap_uses_climatology_not_interpolation():
    t = pd.date_range("2000-01-01", "2003-12-31")
    doy = t.dayofyear.values
    clim = 10 + np.sin(2 * np.pi * doy / 365.25)
    v = clim[:, None].copy()
    gap = (t >= "2002-03-01") & (t < "2002-06-01")  # 92 days
    v[gap, 0] = np.nan
    out, flag = fill_gaps(v, t, max_gap_days=30)
    assert flag[gap, 0].all()
    # a 31-day moving mean damps a unit annual sine by 1 - sinc(31/365.25) ~ 0.012
    assert np.max(np.abs(out[gap, 0] - clim[gap])) < 0.03


def test_edges_and_all_nan_pixel_use_day_mean():
    t = pd.date_range("2001-01-01", periods=6)
    v = np.array([[np.nan, 1.0], [np.nan, 2.0], [np.nan, 3.0], [np.nan, 4.0], [np.nan, 5.0], [np.nan, 6.0]])
    out, flag = fill_gaps(v, t, max_gap_days=3)
    assert np.allclose(out[:, 0], out[:, 1])  # day mean of the other pixel
    assert flag[:, 0].all()


def test_doy_climatology_constant_field():
    t = pd.date_range("2001-01-01", "2002-12-31")
    v = np.full((len(t), 3), 2.5)
    c = doy_climatology(v, t.dayofyear.values)
    assert c.shape == (366, 3)
    assert np.allclose(c, 2.5)


# ---------------------------------------------------------------------------------------------------------
# building the store
# ---------------------------------------------------------------------------------------------------------
def test_build_cube_is_atomic_and_respects_overwrite(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    path = RunPaths.from_config(cfg).cube
    monkeypatch.setattr(cube, "check_coverage", lambda cfg, table=None, listing=None: table)  # no input files
    monkeypatch.setattr(cube, "assemble_tile", lambda cfg, domain, progress=True: _toy_tile(cfg))
    assert cube.build_cube(cfg, progress=False) == path                  # default: the run's data/cube.zarr
    first = cube.open_cube(path)
    assert first.sizes == {"time": 366, "lat": 8, "lon": 4} and first["lst"].attrs["units"] == "K"
    assert first.attrs["max_gap_days"] == cfg.cube.max_gap_days

    def broken(cfg, domain, progress=True):
        raise RuntimeError("reader failed half-way")

    monkeypatch.setattr(cube, "assemble_tile", broken)
    assert cube.build_cube(cfg, progress=False) == path                  # exists, no overwrite: not rebuilt
    with pytest.raises(RuntimeError, match="half-way"):
        cube.build_cube(cfg, progress=False, overwrite=True)
    assert not atomic_path(path).exists()                                 # no half-written store left
    np.testing.assert_array_equal(cube.open_cube(path)["lst"].values, first["lst"].values)   # old cube intact
    with pytest.raises(FileNotFoundError, match="stage 01"):
        cube.open_cube(tmp_path / "missing.zarr")


def test_build_tiles_cover_the_domain_once():
    d = Domain.from_config(config.load(SMOKE))
    tiles = cube.build_tiles(d, 3)
    assert [t.shape for t in tiles[:3]] == [(3, 3), (3, 3), (3, 2)] and len(tiles) == 9
    covered = np.zeros(d.shape, int)
    for t in tiles:
        rs, cs = t.slices_in(d)
        covered[rs, cs] += 1
    assert np.all(covered == 1)


def test_maybe_load_threshold():
    toy = make_toy_cube(n_lat=2, n_lon=2, end="1998-01-31").chunk()
    assert cube.maybe_load(toy["lst"], max_bytes=10).chunks is not None            # over the threshold: lazy
    assert cube.maybe_load(toy["lst"]).chunks is None                              # small: loaded


def test_cube_built_by_tiles_equals_cube_built_at_once(small_twin, tmp_path):
    cfg = small_twin
    whole = cube.build_cube(cfg, progress=False, path=tmp_path / "whole.zarr")
    # two build tiles: 'auto' takes the day-major path, here in-process (a LocalCluster's spawned workers only
    # cost their start-up; the distributed run is byte-identical: tests/integration/test_dask_cluster.py)
    tiled_cfg = _cfg(cfg.run.results_dir, **{"cube.build_tile": 4, "cube.space_chunk": 4,
                                             "cube.scheduler": "synchronous"})
    tiled = cube.build_cube(tiled_cfg, progress=False, path=tmp_path / "tiled.zarr")
    a, b = cube.open_cube(whole).load(), cube.open_cube(tiled).load()
    assert len(cube.build_tiles(Domain.from_config(cfg), 4)) == 2
    assert (a.attrs["ingest_method"], b.attrs["ingest_method"]) == ("tile", cube.choose_ingest_method(tiled_cfg))
    assert set(a.data_vars) == set(b.data_vars) and a["lst"].attrs == b["lst"].attrs
    np.testing.assert_array_equal(a["platform"].values, b["platform"].values)
    for name in a.data_vars:
        # gap filling is per pixel; only its last fallback (day mean over pixels) can differ between tilings
        if name in ("albedo_bsa", "albedo_wsa", "lst"):
            np.testing.assert_allclose(a[name].values, b[name].values, atol=1e-3)
        elif name in ("elevation", "sand", "clay", "silt"):  # reprojection of a smaller window: float rounding
            np.testing.assert_allclose(a[name].values, b[name].values, rtol=1e-6)
        else:
            np.testing.assert_array_equal(a[name].values, b[name].values)
