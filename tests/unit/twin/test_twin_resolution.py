"""The twin at a coarse resolution r (``domain.resolution``): config checks, grids in closed form, and a small
box written at r = 1 deg read back through the cube's readers at r."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest
import rasterio
from pyhdf.SD import SD

from glass_sm import config
from glass_sm.config import ConfigError
from glass_sm.data.cube import assemble_tile
from glass_sm.grid import Domain
from glass_sm.io import era5land, esa_cci, glass_modis
from glass_sm.twin import generate_twin, grids, sensors, simulate_truth, twin_grids

BOX = {"domain.lat_min": 36.0, "domain.lat_max": 40.0, "domain.lon_min": -104.0, "domain.lon_max": -98.0,
       "domain.resolution": 1.0, "twin.cci_resolution": 2.0, "twin.static_resolution": 0.25,
       "twin.modis_pixel_m": 25000.0, "period.start": "2001-01-01", "period.end": "2001-12-31",
       "twin.n_stations": 3, "twin.station_pre2000_fraction": 0.0}
"""4 x 6 cells of 1 deg, one year (+ the spin-up year), 3 stations: seconds."""


@pytest.mark.parametrize("over, match", [
    ({"domain.resolution": 0.07}, r"domain\.resolution: 0\.07 is not a multiple of 0\.05 deg that divides 180"),
    ({"domain.resolution": 0.35}, r"domain\.resolution: 0\.35 is not a multiple of 0\.05 deg that divides 180"),
    ({"domain.resolution": 1.0, "data.source": "real", "twin.enabled": False},
     r"domain\.resolution: real data runs on the product grid 0\.05 only"),
    ({"domain.resolution": 1.0, "twin.cci_resolution": 0.25}, r"twin\.cci_resolution: 0\.25 is not a multiple of 1 deg"),
    ({"domain.resolution": 1.0, "twin.cci_resolution": 1.0, "twin.static_resolution": 0.3},
     r"twin\.static_resolution: 0\.3 does not divide 1 deg"),
    ({"domain.lat_min": 80.0, "domain.lat_max": 85.0}, r"domain\.lat_min / domain\.lat_max: .*-80\.\.84 only"),
    ({"domain.lat_min": -81.0, "domain.lat_max": -79.0}, r"domain\.lat_min / domain\.lat_max: .*-80\.\.84 only"),
    ({"domain.lon_min": 170.0, "domain.lon_max": 180.0}, r"domain\.lon_max: a twin domain ending at longitude 180 "
                                                         r"must be global"),
])
def test_resolution_and_domain_checks_name_the_key(make_cfg, tmp_path, over, match):
    with pytest.raises(ConfigError, match=match):
        make_cfg(tmp_path, **over)


def test_coarse_resolutions_accepted_for_the_twin(make_cfg, tmp_path):
    for r in (0.05, 0.25, 1.0, 2.0, 3.0):
        cfg = make_cfg(tmp_path, **{**BOX, "domain.resolution": r, "twin.cci_resolution": 2 * r,
                                    "twin.static_resolution": r / 2})
        assert cfg.domain.resolution == r
    assert grids.LAT_LIMITS == config.TWIN_LAT_LIMITS
    with pytest.raises(ValueError, match="does not divide 180"):
        grids.check_resolution(7.0)


def test_grids_at_r_in_closed_form(make_cfg, tmp_path):
    cfg = make_cfg(tmp_path, **BOX)
    g = twin_grids(cfg)
    r = 1.0
    assert g.res == r and g.out.shape == (4, 6) and not g.global_lon
    assert (g.out.row0, g.out.col0) == (50, 76)                      # 90 - 40 = 50 rows, -104 + 180 = 76 columns
    # ERA5 points at spacing 2r: point m at latitude 90 - 2 r m covers rows 2m-1, 2m
    m0, m1 = g.era5_rows
    n0, n1 = g.era5_cols
    assert (m0, m1) == ((50 + 1) // 2, (50 + 4) // 2) and (n0, n1) == ((76 + 1) // 2, (76 + 6) // 2)
    np.testing.assert_allclose(g.era5_lat, 90 - 2 * r * np.arange(m0, m1 + 1))
    np.testing.assert_allclose(g.era5_lon, (-180 + 2 * r * np.arange(n0, n1 + 1)) % 360)
    assert np.all(np.diff(g.era5_lat) == -2 * r) and np.all(np.diff(g.era5_lon) == 2 * r)
    rs, cs = g.era5_in_sim
    assert (rs.stop - rs.start) == 2 * (m1 - m0 + 1) and (cs.stop - cs.start) == 2 * (n1 - n0 + 1)
    # each point's latitude is the centre of its 2 x 2 cells
    lat_cells = g.sim.lat[rs]
    np.testing.assert_allclose(0.5 * (lat_cells[0::2] + lat_cells[1::2]), g.era5_lat)
    lon_cells = g.sim.lon[cs]
    np.testing.assert_allclose((0.5 * (lon_cells[0::2] + lon_cells[1::2])) % 360, g.era5_lon)
    # CCI cells of 2r: whole cells of r, covering the domain
    assert g.cci.res == 2.0 and g.cci_factor == 2
    crs, ccs = g.cci_in_sim
    assert crs.stop - crs.start == 2 * g.cci.nrows and ccs.stop - ccs.start == 2 * g.cci.ncols
    assert g.cci.north >= g.out.north and g.cci.south <= g.out.south
    assert g.cci.west <= g.out.west and g.cci.east >= g.out.east
    ors, ocs = g.out_in_sim
    np.testing.assert_allclose(g.sim.lat[ors], g.out.lat)
    np.testing.assert_allclose(g.sim.lon[ocs], g.out.lon)


def test_global_grids_wrap_round_the_antimeridian(make_cfg, tmp_path):
    cfg = make_cfg(tmp_path, **{**BOX, "domain.lat_min": -60.0, "domain.lat_max": 60.0, "domain.lon_min": -180.0,
                                "domain.lon_max": 180.0, "domain.resolution": 3.0, "twin.cci_resolution": 6.0,
                                "twin.static_resolution": 1.0})
    g = twin_grids(cfg)
    assert g.global_lon and g.out.ncols == 120
    # every ERA5 point once: 360 / (2r) longitudes, the first at -180 (written 180), none repeated
    assert g.era5_cols == (0, 59) and len(g.era5_lon) == 60 and len(np.unique(g.era5_lon)) == 60
    assert g.era5_lon[0] == 180.0 and g.era5_lon[30] == 0.0
    # the simulation grid reaches one column past the antimeridian (column -1 = the last column's place on Earth)
    assert g.sim.col0 == -1 and g.sim.col0 + g.sim.ncols == 120
    assert g.sim.lon[0] == -181.5 and g.sim_lon[0] == g.sim_lon[-1] == 178.5
    np.testing.assert_array_equal(grids.wrap_lon([-181.5, 180.0, 178.5, -180.0]), [178.5, -180.0, 178.5, -180.0])
    # the CCI cells go round the globe exactly once
    assert g.cci.ncols == 60 and g.cci.west == -180.0 and g.cci.east == 180.0
    # a CCI resolution that does not divide 360 cannot
    bad = make_cfg(tmp_path, **{**BOX, "domain.lat_min": -60.0, "domain.lat_max": 60.0, "domain.lon_min": -180.0,
                                "domain.lon_max": 180.0, "domain.resolution": 3.0, "twin.cci_resolution": 21.0,
                                "twin.static_resolution": 1.0})
    with pytest.raises(ValueError, match="does not divide 360"):
        twin_grids(bad)


def test_modis_grid_at_r():
    out = Domain.from_bounds(36.0, 40.0, -104.0, -98.0, 1.0)
    transform, width, height, idx = sensors.modis_grid(out, 25000.0)
    assert transform.a == 25000.0 and -transform.e == 25000.0
    inside = idx >= 0
    assert set(np.unique(idx[inside])) == set(range(out.size))         # every 1 deg cell gets pixels
    # about (111 km / 25 km)^2 cos(lat) pixels per cell
    counts = np.bincount(idx[inside], minlength=out.size)
    assert 12 <= counts.min() and counts.max() <= 22


@pytest.fixture(scope="module")
def box_twin(tmp_path_factory, make_cfg):
    """``(cfg, files, sim)``: the box at r = 1 deg written once."""
    cfg = make_cfg(tmp_path_factory.mktemp("twin_r1"), **BOX)
    files = generate_twin(cfg, progress=False)
    return cfg, files, simulate_truth(cfg)


def test_box_at_r1_files_describe_r_and_read_back_through_the_cube(box_twin):
    cfg, files, sim = box_twin
    g = sim["grids"]
    out = g.out
    # HDF-EOS grid of the AVHRR files: 6 x 4 cells of 1 deg
    f = SD(str(files["lst"][0]))
    meta = f.attributes()["StructMetadata.0"]
    f.end()
    assert "XDim=6" in meta and "YDim=4" in meta
    assert "UpperLeftPointMtrs=(-104000000.000000,40000000.000000)" in meta
    # static GeoTIFFs at twin.static_resolution
    with rasterio.open(next(p for p in files["static"] if p.name == "dem.tif")) as src:
        assert src.transform.a == 0.25 and src.shape == (16, 24)
        assert (src.bounds.left, src.bounds.top) == (-104.0, 40.0)
    # ERA5 points at 2 deg
    with netCDF4.Dataset(files["era5land"][0]) as nc:
        np.testing.assert_allclose(nc["latitude"][:], g.era5_lat)
        np.testing.assert_allclose(nc["longitude"][:], g.era5_lon)
    # the cube's read path at r
    ds = assemble_tile(cfg, out, progress=False)
    np.testing.assert_allclose(ds.lat.values, out.lat)
    np.testing.assert_allclose(ds.lon.values, out.lon)
    assert ds["land_mask"].values.all()                               # gradient: all land
    rs, cs = g.out_in_sim
    np.testing.assert_allclose(ds["elevation"].values, sim["static"]["elevation"][rs, cs], rtol=1e-5)
    assert np.isfinite(ds["lst"].values).all() and np.isfinite(ds["sm_era5land"].values).all()
    lab = ds["sm_label"].values
    assert np.isfinite(lab).mean() > 0.8
    # ERA5 daily means at the 2 deg points: the mean of the four 6-hourly steps interpolated between the daily
    # values at 12 UTC, 0.75 d + 0.1875 d(t-1) + 0.0625 d(t+1) (within the int16 packing)
    e5 = era5land.read_era5land_swvl1(cfg.data.era5land_dir, cfg.period.start, cfg.period.end, progress=False)
    d = sensors.simulate_era5(sim).astype(np.float64)
    np.testing.assert_allclose(e5.lat.values, g.era5_lat)
    np.testing.assert_allclose(e5.lon.values % 360, g.era5_lon)
    np.testing.assert_allclose(e5.values[1:-1], 0.75 * d[1:-1] + 0.1875 * d[:-2] + 0.0625 * d[2:], atol=1e-4)
    # GLASS-MODIS-like pixels aggregated back onto 1 deg cells: the retrieval's cell values
    lab2 = glass_modis.read_glass_modis_sm(cfg.data.glass_modis_dir, cfg.period.start, cfg.period.end, out,
                                           progress=False)
    np.testing.assert_allclose(lab2.values, lab, equal_nan=True)
    cci = esa_cci.read_esa_cci_sm(cfg.data.esa_cci_dir, cfg.period.start, cfg.period.end, out, progress=False)
    assert float(cci["lat"][1] - cci["lat"][0]) == pytest.approx(-2.0)
