"""A global twin (``twin.climate: earth``) at r = 6 deg for one year: files at r, sea and ice missing in every product,
land present, ERA5 points round the globe, the truth's frozen flag, ISMN-like networks, and a sub-domain that
samples the same world."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest
import rasterio
import xarray as xr

from glass_sm.data.cube import assemble_tile
from glass_sm.grid import Domain
from glass_sm.io import era5land, esa_cci, glass_avhrr, glass_modis, ismn
from glass_sm.twin import generate_twin, sensors, simulate_truth

R = 6.0
GLOBE = {"domain.lat_min": -78.0, "domain.lat_max": 84.0, "domain.lon_min": -180.0, "domain.lon_max": 180.0,
         "domain.resolution": R, "twin.climate": "earth", "twin.cci_resolution": R, "twin.static_resolution": 1.0,
         "twin.modis_pixel_m": 100000.0, "period.start": "2001-01-01", "period.end": "2001-12-31",
         "twin.n_stations": 6, "twin.station_pre2000_fraction": 0.0}
"""27 x 60 cells of 6 deg (84 N .. 78 S), one year after the spin-up year, 6 stations: ~20 s."""

SUB = {"domain.lat_min": 30.0, "domain.lat_max": 60.0, "domain.lon_min": -132.0, "domain.lon_max": -60.0}
"""North America at the same resolution: 5 x 12 cells of the global grid."""


@pytest.fixture(scope="module")
def globe(tmp_path_factory, make_cfg):
    """``(cfg, files, sim, soil)``: the global twin written once; ``soil`` its cells with soil on the domain."""
    cfg = make_cfg(tmp_path_factory.mktemp("twin_globe"), **GLOBE)
    files = generate_twin(cfg, progress=False)
    sim = simulate_truth(cfg)
    rs, cs = sim["grids"].out_in_sim
    return cfg, files, sim, sensors.soil_mask(sim["static"])[rs, cs]


def test_global_domain_and_land_share(globe):
    cfg, files, sim, soil = globe
    g = sim["grids"]
    assert g.global_lon and g.out.shape == (27, 60) and g.sim.col0 == -1
    # Earth's ice-free land is ~ 26 % of the globe's surface (29 % land minus Antarctica and Greenland), more of
    # the cells between 78 S and 84 N; at 6 deg a coarse mask: a broad band
    assert 0.15 < soil.mean() < 0.45
    land = sim["static"]["land"][g.out_in_sim]
    ice = sim["static"]["ice"][g.out_in_sim]
    assert ice.any() and (land & ~ice == soil).all()
    assert all(p.exists() for k, v in files.items() if isinstance(v, list) for p in v)


def test_every_product_is_missing_over_sea_and_ice_and_present_on_land(globe):
    cfg, files, sim, soil = globe
    out = sim["grids"].out
    ds = assemble_tile(cfg, out, progress=False)
    np.testing.assert_allclose(ds.lat.values, out.lat)
    np.testing.assert_allclose(ds.lon.values, out.lon)
    # static nodata -> the cube's land mask is the soil mask
    np.testing.assert_array_equal(ds["land_mask"].values == 1, soil)
    # AVHRR-like LST and albedo: never retrieved over sea and ice; retrieved on land
    lst = glass_avhrr.read_glass_lst(cfg.data.avhrr_dir, cfg.period.start, cfg.period.end, out, progress=False)
    assert np.isnan(lst.values[:, ~soil]).all() and np.isfinite(lst.values[:, soil]).any(0).all()
    alb = glass_avhrr.read_glass_albedo(cfg.data.avhrr_dir, cfg.period.start, cfg.period.end, out, progress=False)
    assert np.isnan(alb["albedo_wsa"].values[:, ~soil]).all()
    assert np.isfinite(alb["albedo_wsa"].values[:, soil]).any(0).mean() > 0.9    # polar night: some never lit
    # GLASS-MODIS-like labels: nodata over sea and ice (on land: test_labels_reach_every_land_cell)
    lab = glass_modis.read_glass_modis_sm(cfg.data.glass_modis_dir, cfg.period.start, cfg.period.end, out,
                                          progress=False)
    assert np.isnan(lab.values[:, ~soil]).all()
    # ESA-CCI-like (at r): NaN over sea and ice
    cci = esa_cci.read_esa_cci_sm(cfg.data.esa_cci_dir, cfg.period.start, cfg.period.end, out, progress=False)
    assert cci.shape[1:] == out.shape and np.isnan(cci.values[:, ~soil]).all()
    assert np.isfinite(cci.values[:, soil]).any(0).mean() > 0.8          # frozen all year: masked
    # ERA5-Land-like: a point is NaN when none of its 2 x 2 cells has soil; the cube has a value on every land cell
    g = sim["grids"]
    rs, cs = g.era5_in_sim
    s2 = sensors.soil_mask(sim["static"])[rs, cs]
    point_soil = s2.reshape(s2.shape[0] // 2, 2, s2.shape[1] // 2, 2).any((1, 3))
    e5 = sensors.simulate_era5(sim)
    assert np.isnan(e5[:, ~point_soil]).all() and np.isfinite(e5[:, point_soil]).all()
    assert np.isfinite(ds["sm_era5land"].values[:, soil]).all()
    # the cube: every dynamic variable NaN where there is no soil (nothing filled there), flags 0
    for name in ("albedo_wsa", "albedo_bsa", "lst", "sm_era5land", "sm_label"):
        assert np.isnan(ds[name].values[:, ~soil]).all(), name
    for name in ("albedo_filled", "lst_filled"):
        assert (ds[name].values[:, ~soil] == 0).all(), name
    assert np.isfinite(ds["lst"].values[:, soil]).all()
    # truth: NaN over sea and ice
    with xr.open_dataset(files["truth"]) as t:
        sm = t["sm_true"].values
        assert np.isnan(sm[:, ~soil]).all() and np.isfinite(sm[:, soil]).all()
        np.testing.assert_array_equal(t["land"].values == 1, sim["static"]["land"][g.out_in_sim])


def test_labels_reach_every_land_cell(globe):
    cfg, files, sim, soil = globe
    out = sim["grids"].out
    lab = glass_modis.read_glass_modis_sm(cfg.data.glass_modis_dir, cfg.period.start, cfg.period.end, out,
                                          progress=False)
    assert np.isfinite(lab.values[:, soil]).any(0).all()


def test_era5_points_go_round_the_globe_once(globe):
    cfg, files, sim, _ = globe
    with netCDF4.Dataset(files["era5land"][0]) as nc:
        lon = np.asarray(nc["longitude"][:])
        lat = np.asarray(nc["latitude"][:])
    n = int(360 / (2 * R))
    # written in 0..360, west to east from the antimeridian: 180, 192, ..., 348, 0, ..., 168
    np.testing.assert_allclose(lon, (-180 + 2 * R * np.arange(n)) % 360)
    assert lon[0] == 180.0 and len(np.unique(lon)) == n
    np.testing.assert_allclose(np.diff(lat), -2 * R)
    # the reader sees a global grid: -180..168 ascending, and a domain at the dateline gets both neighbours
    e5 = era5land.read_era5land_swvl1(cfg.data.era5land_dir, cfg.period.start, cfg.period.end, progress=False)
    np.testing.assert_allclose(e5.lon.values, -180 + 2 * R * np.arange(n))
    edge = Domain.from_bounds(30.0, 42.0, 168.0, 180.0, R)
    part = era5land.read_era5land_swvl1(cfg.data.era5land_dir, cfg.period.start, cfg.period.end, domain=edge,
                                        progress=False)
    assert part.lon.values.max() > 180.0                 # the point at -180 taken from the other side as 180
    on_grid = era5land.to_product_grid(part, edge)
    assert on_grid.shape[1:] == edge.shape


def test_truth_frozen_flag_follows_air_temperature(globe):
    cfg, files, sim, soil = globe
    with xr.open_dataset(files["truth"], mask_and_scale=False) as t:
        frozen = t["frozen"].values
        tair = t["t_air"].values
        assert t["frozen"].attrs["flag_meanings"] == "not_frozen frozen"
        np.testing.assert_array_equal(t["frozen"].attrs["flag_values"], [0, 1])
    ok = np.isfinite(tair)
    clear = ok & (np.abs(tair - 273.15) > 0.006)            # t_air is stored rounded to 0.01 K
    np.testing.assert_array_equal(frozen[clear] == 1, tair[clear] < 273.15)
    assert (frozen[ok] >= 0).all() and (frozen[~ok] == -1).all()
    # the world has both: frozen winters in the north, never frozen in the tropics
    lat = sim["grids"].out.lat
    assert frozen[:, lat > 50][:, soil[lat > 50]].mean() > 0.2
    assert frozen[:, np.abs(lat) < 15][:, soil[np.abs(lat) < 15]].max() == 0


def test_stations_stand_on_land_in_ismn_like_networks(globe):
    cfg, files, sim, soil = globe
    with xr.open_dataset(files["truth"]) as t:
        nets = [str(x) for x in t["station_network"].values]
        lat, lon = t["station_lat"].values, t["station_lon"].values
    assert len(nets) == cfg.twin.n_stations and "TWIN" not in nets
    out = sim["grids"].out
    for la, lo in zip(lat, lon):
        assert soil[out.index_of(la, lo)]
    # the .stm files are in their network's folder, and the ISMN headers carry the network
    stm = [p for p in files["stations"] if p.suffix == ".stm"]
    assert sorted({p.parent.parent.name for p in stm}) == sorted(set(nets))
    heads = ismn.read_station_headers(cfg.data.stations_dir)
    assert sorted(heads["network"]) == sorted(nets)
    np.testing.assert_allclose(np.sort(heads["lat"].to_numpy()), np.sort(lat), atol=1e-5)


def test_a_sub_domain_samples_the_same_world(globe, make_cfg, tmp_path):
    cfg, files, sim, _ = globe
    sub = make_cfg(tmp_path, **{**GLOBE, **SUB})
    s2 = simulate_truth(sub)
    g, g2 = sim["grids"], s2["grids"]
    rows, cols = g2.out.slices_in(g.out)
    a = sim["theta"][:, g.out_in_sim[0], g.out_in_sim[1]][:, rows, cols]
    b = s2["theta"][:, g2.out_in_sim[0], g2.out_in_sim[1]]
    np.testing.assert_allclose(b, a, atol=1e-5)
    for k in ("land", "ice", "aridity", "elevation", "sand"):
        np.testing.assert_array_equal(s2["static"][k][g2.out_in_sim], sim["static"][k][g.out_in_sim][rows, cols])
    # the static GeoTIFF of the global run holds the sub-domain's values (the cube reads the same soil)
    with rasterio.open(next(p for p in files["static"] if p.name == "sand.tif")) as src:
        f = int(round(R / cfg.twin.static_resolution))
        win = src.read(1)[rows.start * f:rows.stop * f, cols.start * f:cols.stop * f]
    st = s2["static"]
    ff = int(st["fine_factor"])
    rs, cs = g2.out_in_sim
    fine = st["sand_fine"][rs.start * ff:rs.stop * ff, cs.start * ff:cs.stop * ff]
    soil2 = np.repeat(np.repeat(sensors.soil_mask(st)[rs, cs], ff, 0), ff, 1)
    np.testing.assert_array_equal(win[soil2], fine[soil2])
