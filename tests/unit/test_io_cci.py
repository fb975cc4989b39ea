"""ESA CCI SM COMBINED reader (glass_sm.io.esa_cci) on real-layout netCDF files written here.

Daily files follow the real product (global 0.25 deg, lat 89.875..-89.875, ``sm`` float32 with _FillValue
-9999, ``flag``, ``sm_uncertainty``, time in days since 1970-01-01); yearly files follow the twin's deviation
(one file per year over the cells touching the domain).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest

from glass_sm.grid import Domain
from glass_sm.io.errors import (
    CorruptFileError,
    EmptyDataError,
    GridMismatchError,
    MissingFileError,
    MissingVariableError,
    UnitsError,
)
from glass_sm.io.esa_cci import esa_cci_daily_filename, find_esa_cci_files, read_esa_cci_sm

DOM = Domain.from_bounds(39.0, 40.0, -101.0, -99.0)  # the demo box: 4 x 8 CCI cells
GLAT = 89.875 - 0.25 * np.arange(720)
GLON = -179.875 + 0.25 * np.arange(1440)
FILL = -9999.0


def sm_field(lat, lon, day: int) -> np.ndarray:
    """A known field, m3 m-3: smooth in lat/lon, shifted by day."""
    return (0.2 + 0.002 * (lat[:, None] - 39) + 0.001 * (lon[None, :] + 100) + 0.001 * day).astype(np.float32)


def write_cci(path: Path, days, lat=GLAT, lon=GLON, sm=None, units="m3 m-3", with_sm=True, flag=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w", format="NETCDF4_CLASSIC") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", len(lat))
        nc.createDimension("lon", len(lon))
        v = nc.createVariable("time", "f8", ("time",))
        v.units, v.calendar, v.standard_name = "days since 1970-01-01 00:00:00 UTC", "standard", "time"
        v[:] = [(pd.Timestamp(d) - pd.Timestamp("1970-01-01")).days for d in days]
        for name, vals, units_ in (("lat", lat, "degrees_north"), ("lon", lon, "degrees_east")):
            v = nc.createVariable(name, "f4", (name,))
            v.units = units_
            v[:] = vals
        if with_sm:
            v = nc.createVariable("sm", "f4", ("time", "lat", "lon"), fill_value=np.float32(FILL), zlib=True)
            v.units, v.long_name = units, "Volumetric Soil Moisture"
            v[:] = sm if sm is not None else np.stack(
                [sm_field(np.asarray(lat), np.asarray(lon), pd.Timestamp(d).day_of_year) for d in days])
        v = nc.createVariable("sm_uncertainty", "f4", ("time", "lat", "lon"), fill_value=np.float32(FILL), zlib=True)
        v[:] = 0.04
        v = nc.createVariable("flag", "i1", ("time", "lat", "lon"), zlib=True)
        v[:] = 0 if flag is None else flag
    return path


def expected_box():
    iy = np.flatnonzero((GLAT > 39.0) & (GLAT < 40.0))
    ix = np.flatnonzero((GLON > -101.0) & (GLON < -99.0))
    return GLAT[iy], GLON[ix]


def test_daily_real_files_box_and_gaps(tmp_path):
    days = [dt.date(2010, 5, 1), dt.date(2010, 5, 2), dt.date(2010, 5, 4)]
    for d in days:
        sub = tmp_path / f"{d.year}"
        write_cci(sub / esa_cci_daily_filename(d, "08.1"), [d])
    da = read_esa_cci_sm(tmp_path, "2010-05-01", "2010-05-05", DOM, progress=False)
    lat, lon = expected_box()
    assert da.name == "sm_cci" and da.dims == ("time", "lat", "lon") and da.dtype == np.float32
    assert da.shape == (5, 4, 8)
    np.testing.assert_allclose(da["lat"].values, lat)
    np.testing.assert_allclose(da["lat"].values, [39.875, 39.625, 39.375, 39.125])  # descending
    np.testing.assert_allclose(da["lon"].values, lon)
    assert da.attrs["units"] == "m3 m-3" and da["lat"].attrs["standard_name"] == "latitude"
    np.testing.assert_allclose(da.sel(time="2010-05-02").values, sm_field(lat, lon, 122), rtol=1e-6)
    assert np.isnan(da.sel(time="2010-05-03").values).all()  # no file
    assert np.isnan(da.sel(time="2010-05-05").values).all()


def test_fill_values_flags_and_versions(tmp_path):
    d = dt.date(2012, 1, 1)
    sm = sm_field(GLAT, GLON, 1)[None].copy()
    iy, ix = np.flatnonzero(GLAT == 39.625)[0], np.flatnonzero(GLON == -100.125)[0]
    sm[0, iy, ix] = FILL
    flag = np.zeros_like(sm, np.int8)
    flag[0, iy + 1, ix] = 4
    write_cci(tmp_path / esa_cci_daily_filename(d, "08.1"), [d], sm=sm, flag=flag)
    write_cci(tmp_path / "old" / esa_cci_daily_filename(d, "07.1"), [d], sm=np.zeros_like(sm))
    da = read_esa_cci_sm(tmp_path, d, d, DOM, progress=False)
    assert np.isnan(da.sel(lat=39.625, lon=-100.125).values).all()  # fill value
    assert float(da.sel(lat=39.375, lon=-100.125)[0]) > 0.1  # v08.1 wins over v07.1 (zeros)
    dropped = read_esa_cci_sm(tmp_path, d, d, DOM, progress=False, drop_flagged=True)
    assert np.isnan(dropped.sel(lat=39.375, lon=-100.125).values).all()
    assert np.isfinite(dropped.values).sum() == 4 * 8 - 2
    assert [p.name for p in find_esa_cci_files(tmp_path, d, d)] == [esa_cci_daily_filename(d, "08.1")]


def test_yearly_twin_files_ascending_lat_and_0_360(tmp_path):
    lat = np.arange(38.875, 40.2, 0.25)  # ascending, a few cells around the domain
    lon = np.arange(258.875, 261.2, 0.25)  # 0..360 convention
    days = pd.date_range("2001-01-01", "2001-12-31")
    sm = np.stack([sm_field(lat, lon - 360, d.day_of_year) for d in days])
    write_cci(tmp_path / "ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-2001-fv08.1.nc", days, lat=lat, lon=lon, sm=sm)
    write_cci(tmp_path / "ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-2002-fv08.1.nc", [dt.date(2002, 1, 1)],
              lat=lat, lon=lon, sm=sm[:1])
    da = read_esa_cci_sm(tmp_path, "2001-12-30", "2002-01-01", DOM, progress=False)
    blat, blon = expected_box()
    np.testing.assert_allclose(da["lat"].values, blat)
    np.testing.assert_allclose(da["lon"].values, blon)
    np.testing.assert_allclose(da.sel(time="2001-12-31").values, sm_field(blat, blon, 365), rtol=1e-6)
    np.testing.assert_allclose(da.sel(time="2002-01-01").values, sm_field(blat, blon, 1), rtol=1e-6)
    full = read_esa_cci_sm(tmp_path, "2001-01-01", "2001-01-02", None, progress=False)
    assert full.shape == (2, lat.size, lon.size) and full["lon"].values.max() < 0


def test_percent_units(tmp_path):
    d = dt.date(2015, 7, 1)
    path = write_cci(tmp_path / esa_cci_daily_filename(d), [d], sm=sm_field(GLAT, GLON, 1)[None] * 100, units="%")
    da = read_esa_cci_sm(tmp_path, d, d, DOM, progress=False)
    assert 0.1 < float(da.max()) < 0.4
    with pytest.raises(UnitsError) as e:
        read_esa_cci_sm(tmp_path, d, d, DOM, progress=False, units_policy="raise")
    assert str(path) in str(e.value) and "'sm'" in str(e.value)


def test_bad_inputs_cci(tmp_path):
    d = dt.date(2015, 7, 1)

    def expect(exc, root, domain=DOM):
        with pytest.raises(exc) as e:
            read_esa_cci_sm(root, d, d, domain, progress=False)
        return str(e.value)

    msg = expect(MissingFileError, tmp_path / "nope")
    assert str(tmp_path / "nope") in msg and "'sm'" in msg
    (tmp_path / "empty").mkdir()
    msg = expect(MissingFileError, tmp_path / "empty")
    assert str(tmp_path / "empty") in msg and "'sm'" in msg
    p = write_cci(tmp_path / "novar" / esa_cci_daily_filename(d), [d], with_sm=False)
    msg = expect(MissingVariableError, tmp_path / "novar")
    assert str(p) in msg and "'sm'" in msg and "sm_uncertainty" in msg  # says what was found instead
    p = write_cci(tmp_path / "lying" / esa_cci_daily_filename(d), [d], sm=sm_field(GLAT, GLON, 1)[None] * 100)
    msg = expect(UnitsError, tmp_path / "lying")
    assert str(p) in msg and "'sm'" in msg
    p = write_cci(tmp_path / "kgm2" / esa_cci_daily_filename(d), [d], units="kg m-2")
    msg = expect(UnitsError, tmp_path / "kgm2")
    assert str(p) in msg and "kg m-2" in msg
    p = write_cci(tmp_path / "fill" / esa_cci_daily_filename(d), [d], sm=np.full((1, 720, 1440), FILL, np.float32))
    msg = expect(EmptyDataError, tmp_path / "fill")
    assert str(tmp_path / "fill") in msg and "'sm'" in msg
    p = write_cci(tmp_path / "small" / esa_cci_daily_filename(d), [d], lat=np.arange(10.125, 12, 0.25),
                  lon=np.arange(10.125, 12, 0.25))
    msg = expect(GridMismatchError, tmp_path / "small")
    assert str(p) in msg and "'sm'" in msg and "does not cover" in msg
    p = write_cci(tmp_path / "trunc" / esa_cci_daily_filename(d), [d])
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    msg = expect(CorruptFileError, tmp_path / "trunc")
    assert str(p) in msg and "'sm'" in msg
