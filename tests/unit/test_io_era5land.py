"""glass_sm.io.era5land: ERA5-Land swvl1 from CDS netCDF (legacy / current layouts) and GRIB, daily means,
regridding to the 0.05 deg product grid, and loud errors on bad inputs.

Real files: ``shared/realdata/era5/`` (see its README: a real legacy-CDS ERA5 netCDF and a real ECMWF GRIB);
the tests skip when that folder is not next to (or inside) the checkout. Other fixtures are written in the real
layouts by tests/fixtures_real.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures_real as fx  # noqa: E402

from glass_sm.grid import Domain  # noqa: E402
from glass_sm.io.era5land import read_era5land_swvl1, to_product_grid  # noqa: E402
from glass_sm.io.errors import (  # noqa: E402
    CorruptFileError,
    DataError,
    EmptyDataError,
    GridMismatchError,
    MissingFileError,
    MissingVariableError,
    TimeGapError,
    UnitsError,
)

_REPO = Path(__file__).resolve().parents[2]
_REAL = next((p for p in (_REPO / "shared" / "realdata" / "era5", _REPO.parent / "shared" / "realdata" / "era5")
              if p.is_dir()), None)
real = pytest.mark.skipif(_REAL is None, reason="shared/realdata/era5 not found next to the checkout")

DOM = Domain.from_bounds(40.0, 40.5, -100.0, -99.0)  # 10 x 20 cells of 0.05 deg


def _field(lat, lon, times, base=0.25):
    """A smooth field varying in time, lat and lon (m3 m-3)."""
    t = np.arange(len(times))[:, None, None]
    return base + 0.01 * np.sin(t / 3.0) + 0.02 * (lat[None, :, None] - 40) + 0.003 * (lon[None, None, :] % 360 - 260)


def _grid(lon_west=259.5, lon_east=261.5):  # 0..360 like the CDS, covering DOM with margin
    return fx.era5_grid(41.0, 39.5, lon_west, lon_east)


# ----------------------------------------------------------------------------------------------------------
# real files
# ----------------------------------------------------------------------------------------------------------
@real
def test_real_legacy_cds_netcdf_daily_mean_matches_hand_mean():
    import netCDF4

    path = _REAL / "era5_cds_legacy_5deg_20100101.nc"
    da = read_era5land_swvl1(path, progress=False)
    assert da.name == "sm_era5land" and da.dims == ("time", "lat", "lon") and da.dtype == np.float32
    assert list(da.time.values) == [np.datetime64("2010-01-01", "ns")] and da.n_steps.values.tolist() == [4]
    assert np.all(np.diff(da.lat.values) < 0) and da.lat.values[0] == 90.0
    assert np.all(np.diff(da.lon.values) > 0) and da.lon.values[0] == -180.0 and da.lon.values[-1] == 175.0
    v = da.values[np.isfinite(da.values)]
    assert v.size > 500 and v.min() >= 0.0 and v.max() <= 0.8
    assert da.attrs["units"] == "m3 m-3" and da.attrs["source_units"] == "m**3 m**-3"
    # by hand: netCDF4 unpacks, mean of the 4 steps, sea (lsm < 0.5) excluded, lon 0..360 -> -180..180
    with netCDF4.Dataset(path) as nc:
        sm = np.asarray(nc["swvl1"][:], np.float64)
        lsm = np.asarray(nc["lsm"][0], np.float64)
        lon = np.asarray(nc["longitude"][:], np.float64)
    hand = np.clip(sm, 0, None).mean(axis=0)  # the few tiny negatives (>= -0.0033) are clipped to 0 by the reader
    hand[lsm < 0.5] = np.nan
    hand = hand[:, np.argsort((lon + 180) % 360 - 180)]
    assert np.allclose(da.values[0], hand, atol=1e-6, equal_nan=True)
    # 0.25 m3 m-3 at 45 N 10 E (land) read directly
    j, i = 9, int(np.flatnonzero(lon == 10.0)[0])
    assert da.sel(lat=45.0, lon=10.0).item() == pytest.approx(sm[:, j, i].mean(), abs=1e-6)


@real
def test_real_grib_via_cfgrib_writes_no_index():
    path = _REAL / "erainterim_5deg_20000101.grb"
    before = set(os.listdir(_REAL))
    da = read_era5land_swvl1(path, start="2000-01-01", end="2000-01-01", progress=False)
    assert set(os.listdir(_REAL)) == before  # no .idx next to the data
    assert da.shape == (1, 37, 72) and da.n_steps.item() == 4
    v = da.values[np.isfinite(da.values)]
    assert v.min() >= 0.0 and v.max() <= 0.8 and v.size > 500
    assert np.all(np.diff(da.lat.values) < 0) and da.lon.min() == -180.0 and da.lon.max() == 175.0


@real
def test_grib_with_forecast_steps_is_flattened_to_valid_times(tmp_path):
    # messages cloned from the real GRIB: reference times 00/12 UTC, steps 0 and 6 h -> (time, step) in cfgrib
    records = [(pd.Timestamp("2001-05-01") + pd.Timedelta(hours=12 * k), s) for k in range(4) for s in (0, 6)]
    values = np.stack([np.full((37, 72), 0.1 + 0.01 * i) for i in range(8)])
    p = fx.write_grib_swvl1(_REAL / "erainterim_5deg_20000101.grb", tmp_path / "swvl1.grib", records, values,
                            data_type="fc")
    da = read_era5land_swvl1(tmp_path, progress=False)
    assert da.n_steps.values.tolist() == [4, 4] and os.listdir(tmp_path) == [p.name]
    assert np.allclose(da.values[:, 20, 30], [values[:4, 0, 0].mean(), values[4:, 0, 0].mean()], atol=1e-5)
    second = read_era5land_swvl1(p, start="2001-05-02", end="2001-05-02", progress=False)
    assert second.sizes["time"] == 1 and second.values[0, 20, 30] == pytest.approx(0.155, abs=1e-5)


@real
def test_real_file_on_a_domain_then_product_grid():
    dom = Domain.from_bounds(44.0, 46.0, 9.0, 11.0)
    da = read_era5land_swvl1(_REAL / "era5_cds_legacy_5deg_20100101.nc", domain=dom, progress=False)
    assert da.lat.values.tolist() == [50.0, 45.0, 40.0] and da.lon.values.tolist() == [5.0, 10.0, 15.0]
    out = to_product_grid(da, dom)
    assert out.shape == (1, 40, 40) and np.isfinite(out.values).all()


# ----------------------------------------------------------------------------------------------------------
# layouts
# ----------------------------------------------------------------------------------------------------------
def test_legacy_layout_hourly_daily_mean_partial_day_and_domain(tmp_path):
    lat, lon = _grid()
    times = pd.date_range("2001-03-01", "2001-03-03 11:00", freq="h")  # last day: 12 of 24 steps
    sm = _field(lat, lon, times)
    fx.write_era5_legacy_nc(tmp_path / "era5land_swvl1_2001.nc", times, lat, lon, sm)
    da = read_era5land_swvl1(tmp_path, domain=DOM, progress=False)
    assert da.n_steps.values.tolist() == [24, 24, 12]
    assert np.all(np.diff(da.lat.values) < 0) and np.all(np.diff(da.lon.values) > 0)
    assert da.lon.min() >= -180 and da.lon.max() < -98.8
    assert da.lat.max() <= 40.6 + 1e-9 and da.lat.min() >= 39.9 - 1e-9  # one 0.1 deg spacing of margin
    j = int(np.flatnonzero(np.isclose(lat, 40.2))[0])
    i = int(np.flatnonzero(np.isclose(lon, 260.3))[0])
    for k, day in enumerate(["2001-03-01", "2001-03-02", "2001-03-03"]):
        hand = sm[(times.normalize() == day), j, i].mean()
        assert da.sel(lat=40.2, lon=-99.7).values[k] == pytest.approx(hand, abs=2e-5)  # int16 packing
    assert np.isnan(read_era5land_swvl1(tmp_path, domain=DOM, min_steps=24, progress=False).values[2]).all()


def test_current_cds_layout_prefers_final_over_era5t(tmp_path):
    lat, lon = fx.era5_grid(41.0, 39.5, -100.5, -98.5)  # the current CDS also serves -180..180
    times = pd.date_range("2023-06-01", periods=8, freq="6h")
    final = np.full((8, lat.size, lon.size), 0.30, np.float32)
    era5t = np.full((8, lat.size, lon.size), 0.10, np.float32)
    # file 1: day 1 final, day 2 ERA5T; file 2: day 2 final (re-download after ERA5T became final)
    fx.write_era5_cds_nc(tmp_path / "a.nc", times, lat, lon, np.concatenate([final[:4], era5t[4:]]),
                         expver=["0001"] * 4 + ["0005"] * 4)
    fx.write_era5_cds_nc(tmp_path / "b.nc", times[4:], lat, lon, final[4:], expver=["0001"] * 4)
    da = read_era5land_swvl1([tmp_path / "b.nc", tmp_path / "a.nc"], domain=DOM, progress=False)
    assert np.allclose(da.values, 0.30) and da.n_steps.values.tolist() == [4, 4]
    only_a = read_era5land_swvl1(tmp_path / "a.nc", progress=False)
    assert np.allclose(only_a.values[1], 0.10)  # ERA5T used where it is all there is


def test_legacy_expver_dimension_is_combined(tmp_path):
    lat, lon = _grid()
    times = pd.date_range("2019-12-31", periods=8, freq="6h")
    shape = (8, lat.size, lon.size)
    final = np.full(shape, 0.2)
    final[4:] = np.nan
    era5t = np.full(shape, 0.4)
    era5t[:4] = np.nan
    era5t[2] = 0.9  # overlap: final wins
    fx.write_era5_expver_dim_nc(tmp_path / "mix.nc", times, lat, lon, final, era5t)
    da = read_era5land_swvl1(tmp_path / "mix.nc", domain=DOM, progress=False)
    assert np.allclose(da.values[0], 0.2, atol=1e-4) and np.allclose(da.values[1], 0.4, atol=1e-4)


def test_longitude_roll_across_greenwich(tmp_path):
    lat = fx.era5_grid(41.0, 39.5, 0, 0)[0]
    lon = np.round(np.arange(3600) * 0.1, 6)  # global 0..359.9
    times = pd.date_range("2005-01-01", periods=4, freq="6h")
    sm = np.broadcast_to(((lon + 180) % 360 - 180)[None, None, :] * 0.001 + 0.3, (4, lat.size, lon.size))
    fx.write_era5_legacy_nc(tmp_path / "g.nc", times, lat, lon, sm)
    dom = Domain.from_bounds(40.0, 40.5, -0.5, 0.5)
    da = read_era5land_swvl1(tmp_path / "g.nc", domain=dom, progress=False)
    assert np.allclose(da.lon.values, np.round(np.arange(-0.6, 0.65, 0.1), 6))
    out = to_product_grid(da, dom)
    assert np.allclose(out.values[0, 0], out.lon.values * 0.001 + 0.3, atol=2e-5)
    # a domain touching the dateline takes its neighbours from the other side of it
    east = Domain.from_bounds(40.0, 40.5, 179.0, 180.0)
    de = read_era5land_swvl1(tmp_path / "g.nc", domain=east, progress=False)
    assert de.lon.values[-1] == 180.1 and de.sel(lon=180.0).values[0, 0] == pytest.approx(0.3 - 0.18, abs=2e-5)
    assert to_product_grid(de, east).shape == (1, 10, 20)


# ----------------------------------------------------------------------------------------------------------
# regridding
# ----------------------------------------------------------------------------------------------------------
def _daily(lat, lon, values):
    import xarray as xr

    return xr.DataArray(values[None].astype(np.float32), dims=("time", "lat", "lon"), name="sm_era5land",
                        coords={"time": [np.datetime64("2001-01-01", "ns")], "lat": lat, "lon": lon},
                        attrs={"units": "m3 m-3"})


def test_bilinear_is_exact_for_a_linear_field_and_nearest_copies_cells():
    lat = np.round(np.arange(40.6, 39.85, -0.1), 6)
    lon = np.round(np.arange(-100.1, -98.85, 0.1), 6)
    f = 0.2 + 0.05 * (lat[:, None] - 40) + 0.01 * (lon[None, :] + 100)
    da = _daily(lat, lon, f)
    out = to_product_grid(da, DOM)
    expect = 0.2 + 0.05 * (DOM.lat[:, None] - 40) + 0.01 * (DOM.lon[None, :] + 100)
    assert out.shape == (1, 10, 20) and np.allclose(out.values[0], expect, atol=1e-6)
    assert out.attrs["units"] == "m3 m-3" and "bilinear" in out.attrs["regrid_method"]
    assert out.lat.attrs["standard_name"] == "latitude"
    near = to_product_grid(da, DOM, method="nearest").values[0]
    # each 0.1 deg source cell (centred on 40.4, ...) gives its value to the 2 x 2 product cells it contains
    assert np.allclose(near[1:9:2, 1:19:2], near[2:10:2, 2:20:2]) and near[0, 0] == pytest.approx(f[1, 1])
    assert np.allclose(near[1:9:2, 1:19:2], f[2:6, 2:11], atol=1e-7)


def test_bilinear_edges_nearest_and_nan_renormalised():
    lat = np.round(np.arange(40.45, 40.0, -0.1), 6)  # points 40.45..40.05: the domain's edge rows lie outside
    lon = np.round(np.arange(-99.95, -99.0, 0.1), 6)
    f = np.tile(np.linspace(0.1, 0.5, lat.size)[:, None], (1, lon.size))
    f[2, 3] = np.nan  # a sea point
    out = to_product_grid(_daily(lat, lon, f), Domain.from_bounds(40.0, 40.5, -100.0, -99.0)).values[0]
    assert np.allclose(out[0, 5:], f[0, 5]) and np.allclose(out[-1, 5:], f[-1, 5])  # nearest beyond the edges
    assert np.isfinite(out).all()  # NaN neighbour left out, weights renormalised


def test_regrid_refuses_an_uncovered_domain():
    lat = np.round(np.arange(40.6, 39.85, -0.1), 6)
    lon = np.round(np.arange(-100.1, -98.85, 0.1), 6)
    da = _daily(lat, lon, np.full((lat.size, lon.size), 0.2))
    with pytest.raises(GridMismatchError, match=r"variable 'sm_era5land' covers lat 39\.850\.\.40\.650.*41\.000"):
        to_product_grid(da, Domain.from_bounds(40.0, 41.0, -100.0, -99.0))


# ----------------------------------------------------------------------------------------------------------
# bad inputs: each message names the file and the variable
# ----------------------------------------------------------------------------------------------------------
def _legacy(tmp_path, name="era5land_swvl1_2001.nc", values=None, **kw):
    lat, lon = _grid()
    times = pd.date_range("2001-03-01", periods=8, freq="6h")
    sm = _field(lat, lon, times) if values is None else np.broadcast_to(values, (8, lat.size, lon.size))
    return fx.write_era5_legacy_nc(tmp_path / name, times, lat, lon, sm, **kw)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(MissingFileError, match=rf"{tmp_path / 'x.nc'}: variable 'swvl1' file not found"):
        read_era5land_swvl1(tmp_path / "x.nc", progress=False)
    (tmp_path / "notes.txt").write_text("no data")
    with pytest.raises(MissingFileError, match=rf"{tmp_path}: holds no netCDF/GRIB file.*found: 'notes.txt'"):
        read_era5land_swvl1(tmp_path, progress=False)


def test_missing_variable(tmp_path):
    p = _legacy(tmp_path, varname="swvl2")
    with pytest.raises(MissingVariableError, match=rf"^{p}: variable 'swvl1' not found \(found: 'swvl2'\)$"):
        read_era5land_swvl1(p, progress=False)


def test_percent_units_are_converted_or_rejected(tmp_path):
    p = _legacy(tmp_path, values=25.0, units="%")
    assert np.allclose(read_era5land_swvl1(p, progress=False).values, 0.25, atol=1e-4)
    with pytest.raises(UnitsError, match=rf"{p}: variable 'swvl1' has units '%'"):
        read_era5land_swvl1(p, units_policy="raise", progress=False)


def test_lying_units(tmp_path):
    p = _legacy(tmp_path, values=25.0)  # says m**3 m**-3, holds percent
    with pytest.raises(UnitsError, match=rf"{p}: variable 'swvl1' has units 'm\*\*3 m\*\*-3'.*maximum value is 25"):
        read_era5land_swvl1(p, progress=False)


def test_all_fill_is_empty_and_negative_values_raise(tmp_path):
    p = _legacy(tmp_path, values=np.nan)
    with pytest.raises(EmptyDataError, match=rf"{p}: variable 'swvl1' has no valid value"):
        read_era5land_swvl1(p, progress=False)
    q = _legacy(tmp_path, name="neg.nc", values=-0.2)
    with pytest.raises(DataError, match=rf"{q}: variable 'swvl1' has values down to -0\.2"):
        read_era5land_swvl1(q, progress=False)


def test_time_gaps(tmp_path):
    p = _legacy(tmp_path)  # 2001-03-01 and 03-02
    with pytest.raises(TimeGapError, match=rf"{p}: variable 'swvl1' has no time step on 2 day\(s\): "
                                           r"2001-03-03\.\.2001-03-04"):
        read_era5land_swvl1(p, start="2001-03-01", end="2001-03-04", progress=False)
    da = read_era5land_swvl1(p, start="2001-03-01", end="2001-03-04", allow_gaps=True, progress=False)
    assert da.n_steps.values.tolist() == [4, 4, 0, 0] and np.isnan(da.values[2:]).all()


def test_grid_mismatch_domain_outside_and_files_disagree(tmp_path):
    p = _legacy(tmp_path)
    with pytest.raises(GridMismatchError, match=rf"{p}: variable 'swvl1' does not cover the domain lat 10\.000"):
        read_era5land_swvl1(p, domain=Domain.from_bounds(10, 11, 20, 21), progress=False)
    msg = rf"{p}: variable 'swvl1' covers lat 39\.850\.\.41\.050.*contain the domain lat 40\.000\.\.42"
    with pytest.raises(GridMismatchError, match=msg):
        read_era5land_swvl1(p, domain=Domain.from_bounds(40, 42, -100, -99), progress=False)  # partly outside
    lat, lon = fx.era5_grid(41.0, 39.5, 259.5, 261.5, res=0.25)
    times = pd.date_range("2001-03-03", periods=4, freq="6h")
    q = fx.write_era5_legacy_nc(tmp_path / "coarse.nc", times, lat, lon, _field(lat, lon, times))
    with pytest.raises(GridMismatchError, match=rf"{q}: variable 'swvl1' grid .* differs from that of {p}"):
        read_era5land_swvl1([p, q], domain=DOM, progress=False)


def test_corrupt_and_truncated_files(tmp_path):
    p = _legacy(tmp_path)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])
    with pytest.raises(CorruptFileError, match=rf"{p}: cannot be opened as netcdf"):
        read_era5land_swvl1(p, progress=False)
    q = tmp_path / "random.grib"
    q.write_bytes(os.urandom(2048))
    with pytest.raises(CorruptFileError, match=rf"{q}: is neither netCDF nor GRIB"):
        read_era5land_swvl1(q, progress=False)
    g = tmp_path / "cut.grib"
    g.write_bytes(b"GRIB" + os.urandom(500))
    with pytest.raises(CorruptFileError, match=rf"{g}: cannot be opened as grib"):
        read_era5land_swvl1(g, progress=False)


# ----------------------------------------------------------------------------------------------------------
# files kept open between reads (_open_kept)
# ----------------------------------------------------------------------------------------------------------
@pytest.fixture
def kept(monkeypatch):
    """era5land with an empty _KEPT (emptied again afterwards) and ``_open`` counted: the list of paths opened."""
    from glass_sm.io import era5land

    era5land._KEPT.clear()
    opened = []
    real_open = era5land._open
    monkeypatch.setattr(era5land, "_open", lambda path: (opened.append(Path(path)), real_open(path))[1])
    yield era5land, opened
    era5land._KEPT.clear()


def test_open_kept_reuses_the_datasets_of_a_file(kept, tmp_path):
    era5land, opened = kept
    p = _legacy(tmp_path)
    first = era5land._open_kept(p)
    again = era5land._open_kept(p)
    assert again is first and again[0] is first[0] and again[1] is first[1]
    assert opened == [p] and len(era5land._KEPT) == 1
    a = read_era5land_swvl1(p, domain=DOM, progress=False)
    b = read_era5land_swvl1(p, domain=DOM, progress=False)
    assert opened == [p]  # the reads use the dataset already open
    np.testing.assert_array_equal(a.values, b.values)


def test_open_kept_sees_a_rewritten_file(kept, tmp_path):
    era5land, opened = kept
    p = _legacy(tmp_path, values=0.2)
    st0 = p.stat()
    before = read_era5land_swvl1(p, domain=DOM, progress=False)
    assert np.allclose(before.values, 0.2, atol=1e-4) and before.sizes["time"] == 2
    lat, lon = _grid()
    times = pd.date_range("2001-03-01", periods=12, freq="6h")  # one day more: another size
    fx.write_era5_legacy_nc(p, times, lat, lon, np.full((12, lat.size, lon.size), 0.35))
    if p.stat().st_mtime_ns == st0.st_mtime_ns:  # a coarse clock: make the new version's time differ
        os.utime(p, ns=(st0.st_atime_ns, st0.st_mtime_ns + 10**9))
    after = read_era5land_swvl1(p, domain=DOM, progress=False)
    assert after.sizes["time"] == 3 and np.allclose(after.values, 0.35, atol=1e-4)
    assert opened == [p, p]  # opened again for the new version, once each


def test_open_kept_keeps_the_most_recent_files(kept, tmp_path):
    era5land, opened = kept
    n = era5land.KEEP_OPEN + 2
    paths = [_legacy(tmp_path, name=f"f{i}.nc", values=0.1 + 0.01 * i) for i in range(n)]
    for p in paths[:-2]:
        era5land._open_kept(p)
    era5land._open_kept(paths[0])  # used again: now the most recent
    for p in paths[-2:]:
        era5land._open_kept(p)
    assert len(era5land._KEPT) == era5land.KEEP_OPEN
    kept_paths = [Path(k[0]) for k in era5land._KEPT]
    assert kept_paths == [*paths[3:n - 2], paths[0], *paths[-2:]]  # paths[1], paths[2]: the oldest, dropped
    assert len(opened) == n
    era5land._open_kept(paths[1])  # dropped: opened again
    assert opened[-1] == paths[1] and len(opened) == n + 1 and len(era5land._KEPT) == era5land.KEEP_OPEN
    ds, _ = era5land._open_kept(paths[-1])
    assert len(opened) == n + 1 and float(ds["swvl1"].isel(time=0, latitude=0, longitude=0)) == \
        pytest.approx(0.1 + 0.01 * (n - 1), abs=1e-4)


@pytest.mark.parametrize("bounds", [(-90.0, 90.0, -180.0, 180.0), (40.0, 40.5, 179.0, 180.0),
                                    (-10.0, 10.0, 170.0, 180.0), (40.0, 40.5, -0.5, 0.5)])
def test_one_box_read_gives_the_runs_values(tmp_path, monkeypatch, bounds):
    """The selected rows x columns read in one piece (their bounding box, BOX_READ_MAX) give exactly what reading
    each run of rows and columns alone gives: a global domain (its columns in three runs across the dateline, NaN
    sea points included), domains at the dateline, and one at Greenwich (on the CDS's 0..360 grid its columns lie at
    both ends of the file: read run by run either way)."""
    from glass_sm.io import era5land

    lat = np.round(np.arange(90.0, -90.1, -2.5), 6)
    lon = np.round(np.arange(0.0, 360.0, 2.5), 6)  # 0..357.5 like the CDS: the domain's columns wrap
    times = pd.date_range("2005-01-01", periods=8, freq="6h")
    rng = np.random.default_rng(3)
    sm = rng.uniform(0.05, 0.45, (times.size, lat.size, lon.size))
    sm[:, ::7, ::5] = np.nan  # sea points (the fill value)
    path = fx.write_era5_legacy_nc(tmp_path / "g.nc", times, lat, lon, sm)
    dom = Domain.from_bounds(*bounds, res=2.5) if bounds[0] == -90.0 else Domain.from_bounds(*bounds)
    monkeypatch.setattr(era5land, "_KEPT", type(era5land._KEPT)())
    box = read_era5land_swvl1(path, domain=dom, progress=False)
    monkeypatch.setattr(era5land, "BOX_READ_MAX", 0.0)  # every run read alone
    runs = read_era5land_swvl1(path, domain=dom, progress=False)
    assert box.shape == runs.shape and box.shape[1] > 0 and box.shape[2] > 0
    np.testing.assert_array_equal(box.values, runs.values)
    np.testing.assert_array_equal(box.lon.values, runs.lon.values)
    assert np.isfinite(box.values).any() and (np.isnan(box.values).any() or bounds[0] != -90.0)
