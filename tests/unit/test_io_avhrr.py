"""glass_sm.io.glass_avhrr (GLASS AVHRR albedo/LST HDF4) and glass_sm.io.errors (messages, units policy).

Fixtures are HDF4 files in the real layout (book/design.md), written by tests/fixtures_real.py with pyhdf.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures_real as fx  # noqa: E402

from glass_sm.grid import Domain  # noqa: E402
from glass_sm.io.errors import (  # noqa: E402
    CorruptFileError,
    DataError,
    EmptyDataError,
    GridMismatchError,
    MissingFileError,
    MissingVariableError,
    TimeGapError,
    UnitsError,
    check_units,
    format_dates,
)
from glass_sm.io.glass_avhrr import find_glass_files, glass_filename, read_glass_albedo, read_glass_lst  # noqa: E402

# the tile written by default: NW corner 41 N 100 W, 20 x 40 cells of 0.05 deg
TILE = Domain.from_bounds(40.0, 41.0, -100.0, -98.0)
DAY = pd.Timestamp("1999-02-01")
CDAY = pd.Timestamp("1999-02-02")  # day of year 33: an albedo composite date (1, 9, 17, 25, 33, ...)


def _lst(shape=TILE.shape, seed=0):
    return np.random.default_rng(seed).uniform(260.0, 320.0, shape)


def _write_lst_days(root, days, values=None, **kw):
    for i, d in enumerate(days):
        fx.write_glass_hdf(fx.glass_path(root, "lst", d), "lst", {"LST": _lst(seed=i) if values is None else values},
                           day=d, **kw)


# ----------------------------------------------------------------------------------------------------------
# errors module
# ----------------------------------------------------------------------------------------------------------
def test_error_message_names_file_variable_and_found():
    e = MissingVariableError("not found (found: 'LST_night', 'QC')",
                             file="/d/GLASS08B31.V40.A1999032.2019001.hdf", variable="LST")
    assert str(e) == "/d/GLASS08B31.V40.A1999032.2019001.hdf: variable 'LST' not found (found: 'LST_night', 'QC')"
    assert isinstance(e, DataError) and isinstance(e, KeyError)
    assert isinstance(MissingFileError("x", file="f"), FileNotFoundError)
    back = pickle.loads(pickle.dumps(CorruptFileError("is truncated", file="/d/f.hdf")))
    assert type(back) is CorruptFileError and str(back) == "/d/f.hdf: is truncated"


def test_format_dates_compresses_runs():
    text = format_dates(["1999-01-03", "1999-01-01", "1999-01-02", "1999-01-10"])
    assert text == "4 day(s): 1999-01-01..1999-01-03, 1999-01-10"


@pytest.mark.parametrize("units", ["K", "kelvin", "degK", None])
def test_check_units_accepts_kelvin_spellings(units):
    v = np.array([280.0, 300.0])
    attrs = {} if units is None else {"units": units}
    assert check_units(v, attrs, "K", "f", "LST") is v


@pytest.mark.parametrize("units", ["m3 m-3", "m**3 m**-3", "m3/m3", "m^3 m^-3", "1", "(0 - 1)"])
def test_check_units_accepts_volumetric_spellings(units):
    v = np.array([0.1, 0.4])
    assert check_units(v, {"units": units}, "m3 m-3", "f", "swvl1") is v


def test_check_units_converts_or_raises_per_policy():
    c = np.array([20.0, np.nan, 25.0], np.float32)
    k = check_units(c, {"units": "degC"}, "K", "f.hdf", "LST")
    assert k.dtype == np.float32 and np.allclose(k[[0, 2]], [293.15, 298.15]) and np.isnan(k[1])
    assert np.allclose(check_units(np.array([25.0]), {"units": "%"}, "m3 m-3", "f", "sm"), 0.25)
    with pytest.raises(UnitsError, match=r"f\.hdf: variable 'LST' has units 'degC'.*units_policy='raise'"):
        check_units(c, {"units": "degC"}, "K", "f.hdf", "LST", policy="raise")
    with pytest.raises(UnitsError, match=r"variable 'sm' has units 'kg m-2'"):
        check_units(np.array([10.0]), {"units": "kg m-2"}, "m3 m-3", "f", "sm")


def test_check_units_catches_lying_attributes():
    with pytest.raises(UnitsError, match=r"'K'.*median value is 22\.50.*degrees Celsius"):
        check_units(np.array([20.0, 25.0]), {"units": "K"}, "K", "f", "LST")
    with pytest.raises(UnitsError, match=r"Celsius.*look like kelvin"):
        check_units(np.array([290.0, 300.0]), {"units": "degC"}, "K", "f", "LST")
    with pytest.raises(UnitsError, match=r"maximum value is 35.*percent"):
        check_units(np.array([10.0, 35.0]), {"units": "m3 m-3"}, "m3 m-3", "f", "sm")
    # all-NaN (an all-cloud day) cannot be judged and passes
    v = np.full(3, np.nan)
    assert check_units(v, {"units": "K"}, "K", "f", "LST") is v


# ----------------------------------------------------------------------------------------------------------
# finding files
# ----------------------------------------------------------------------------------------------------------
def test_find_files_picks_newest_version_and_reports_gaps(tmp_path):
    days = pd.date_range("1999-12-30", "2000-01-03")
    for d in days.delete(2):  # 2000-01-01 missing
        fx.write_glass_hdf(fx.glass_path(tmp_path, "lst", d), "lst", {"LST": _lst((2, 2))})
    old = fx.glass_path(tmp_path, "lst", days[0])
    newer = fx.glass_path(tmp_path, "lst", days[0], production="2020100")
    fx.write_glass_hdf(newer, "lst", {"LST": _lst((2, 2))})
    assert glass_filename("lst", days[0]) == old.name
    s = find_glass_files(tmp_path, "lst", days[0], days[-1], allow_gaps=True)
    assert list(s.index) == list(days) and s.index.name == "time"
    assert s.iloc[0] == str(newer) and s.iloc[2] is None
    with pytest.raises(TimeGapError, match=r"has no GLASS08B31 file for 1 day\(s\): 2000-01-01"):
        find_glass_files(tmp_path, "lst", days[0], days[-1])
    # the other product is not picked up from the same tree
    with pytest.raises(MissingFileError, match="no GLASS02B05"):
        find_glass_files(tmp_path, "albedo", days[0], days[-1])


def test_missing_folder_names_the_folder(tmp_path):
    with pytest.raises(MissingFileError, match=rf"{tmp_path / 'nowhere'}: folder not found"):
        read_glass_lst(tmp_path / "nowhere", DAY, DAY, TILE, progress=False)


def test_time_gaps_raise_or_become_nan(tmp_path):
    days = pd.date_range(DAY, periods=4)
    _write_lst_days(tmp_path, days[[0, 3]])
    with pytest.raises(TimeGapError, match=rf"{tmp_path}: .*2 day\(s\): 1999-02-02\.\.1999-02-03"):
        read_glass_lst(tmp_path, days[0], days[-1], TILE, allow_gaps=False, progress=False)
    lst = read_glass_lst(tmp_path, days[0], days[-1], TILE, progress=False)
    assert lst.isnull().all(("lat", "lon")).values.tolist() == [False, True, True, False]
    # the platform is a property of the date: from the file's attribute, else glass_sm.platforms
    assert lst.platform.values.tolist() == ["NOAA-14"] * 4


# ----------------------------------------------------------------------------------------------------------
# values: unpacking, fill, valid_range, QC, hyperslab
# ----------------------------------------------------------------------------------------------------------
def test_albedo_roundtrip_fill_range_qc_and_cf(tmp_path):
    rng = np.random.default_rng(1)
    bsa = rng.uniform(0.05, 0.4, TILE.shape)
    wsa = bsa * 1.1
    bsa[0, 0] = np.nan  # fill
    raw_wsa = np.round(wsa / 1e-4).astype(np.int16)
    raw_wsa[0, 1] = 12000  # outside valid_range 0..10000
    qc = np.zeros(TILE.shape, np.uint8)
    qc[1, :5] = 1  # level 1: acceptable
    qc[2, :5] = 2  # level 2: worse than acceptable
    qc[3, 0] = 255  # QC fill
    qc[4, :5] = 0b100  # bits above 0-1 do not change the level
    vis = rng.uniform(0.02, 0.2, TILE.shape)
    fx.write_glass_hdf(fx.glass_path(tmp_path, "albedo", CDAY), "albedo",
                       {"ABD_BSA_shortwave": bsa, "ABD_BSA_VIS": vis, "ABD_WSA_VIS": vis},
                       raw={"ABD_WSA_shortwave": raw_wsa}, qc=qc, satellite="NOAA-14", day=CDAY)
    ds = read_glass_albedo(tmp_path, CDAY, CDAY, TILE, bands=("shortwave", "VIS"), progress=False)
    b, w = ds.albedo_bsa.isel(time=0).values, ds.albedo_wsa.isel(time=0).values
    assert ds.albedo_bsa.dtype == np.float32 and ds.albedo_bsa.dims == ("time", "lat", "lon")
    assert np.isnan(b[0, 0]) and np.isnan(w[0, 1])
    assert np.isfinite(b[1, :5]).all()  # acceptable kept by the default 'acceptable' policy
    assert np.isnan(b[2, :5]).all() and np.isnan(b[3, 0]) and np.isfinite(b[4, :5]).all()
    ok = np.isfinite(b)
    assert np.allclose(b[ok], bsa[ok], atol=6e-5)  # packing step 1e-4
    assert np.allclose(ds.albedo_bsa_vis.values[0][ok], vis[ok], atol=6e-5)
    assert set(ds.data_vars) == {"albedo_bsa", "albedo_wsa", "albedo_bsa_vis", "albedo_wsa_vis"}
    assert ds.albedo_bsa.attrs["units"] == "1" and ds.albedo_bsa.attrs["standard_name"] == "surface_albedo"
    assert ds.albedo_bsa.attrs["qc_layer"] == "QC" and ds.albedo_bsa.attrs["qc_policy"] == "acceptable"
    assert ds.lat.attrs["units"] == "degrees_north" and ds.Conventions == "CF-1.8"
    assert np.all(np.diff(ds.lat.values) < 0) and np.allclose(ds.lat.values, TILE.lat)
    assert ds.platform.values.tolist() == ["NOAA-14"] and ds.cadence_days == 8
    good = read_glass_albedo(tmp_path, CDAY, CDAY, TILE, qc="good", progress=False).albedo_bsa.values[0]
    assert np.isnan(good[1, :5]).all() and np.isfinite(good[4, :5]).all()
    poor = read_glass_albedo(tmp_path, CDAY, CDAY, TILE, qc="poor", progress=False).albedo_bsa.values[0]
    assert np.isfinite(poor[2, :5]).all() and np.isnan(poor[3, 0])
    none = read_glass_albedo(tmp_path, CDAY, CDAY, TILE, qc="none", progress=False).albedo_bsa.values[0]
    assert np.isfinite(none[2, :5]).all() and np.isfinite(none[3, 0]) and np.isnan(none[0, 0])
    with pytest.raises(ValueError, match=r"qc for GLASS02B05 must be one of \['good', 'acceptable'"):
        read_glass_albedo(tmp_path, CDAY, CDAY, TILE, qc="cloud", progress=False)


def test_lst_subdomain_hyperslab_and_scale_only(tmp_path):
    values = _lst()
    fx.write_glass_hdf(fx.glass_path(tmp_path, "lst", DAY), "lst", {"LST": values},
                       sds_attrs={"LST": {"add_offset": None}}, satellite="NOAA-16")  # scale_factor only
    sub = Domain.from_bounds(40.2, 40.5, -99.5, -99.0)
    rows, cols = sub.slices_in(TILE)
    lst = read_glass_lst(tmp_path, DAY, DAY, sub, progress=False)
    assert lst.shape == (1, 6, 10) and lst.attrs["units"] == "K" and lst.name == "lst"
    assert np.allclose(lst.values[0], values[rows, cols], atol=0.006)
    assert lst.platform.item() == "NOAA-16"


@pytest.fixture(scope="session")
def global_lst_file(tmp_path_factory):
    """A global 3600 x 7200 GLASS LST file (no geolocation attributes) with data in one block only."""
    root = tmp_path_factory.mktemp("global")
    block = _lst((30, 50), seed=5)
    offset = (980, 1600)  # rows/cols of the block in the global grid
    qc = np.zeros(block.shape, np.uint8)
    qc[0, 0] = 1
    fx.write_glass_hdf(fx.glass_path(root, "lst", DAY), "lst", {"LST": block}, qc=qc, global_offset=offset,
                       upper_left=None)
    return root, block, offset


def test_global_file_reads_only_the_domain(global_lst_file):
    root, block, (r0, c0) = global_lst_file
    dom = Domain(r0 + 5, c0 + 10, 20, 30)  # inside the written block
    lst = read_glass_lst(root, DAY, DAY, dom, progress=False)
    assert np.allclose(lst.values[0], block[5:25, 10:40], atol=0.006)
    assert np.allclose(lst.lat.values, dom.lat) and np.allclose(lst.lon.values, dom.lon)
    corner = read_glass_lst(root, DAY, DAY, Domain(r0, c0, 2, 2), progress=False).values[0]
    assert np.isnan(corner[0, 0]) and np.isfinite(corner[1, 1])  # QC bit 0 on the global QC SDS


def test_read_many_files(tmp_path):
    """Two years of 8-day composites read into one (time, lat, lon) array (the per-file cost is measured by
    `make bench`, not asserted here: timed tests fail on a loaded machine)."""
    from glass_sm.io.glass_avhrr import composite_schedule

    days = composite_schedule("1999-01-01", "2000-12-31", 8)
    assert len(days) == 92  # 46 a year
    bsa = np.full(TILE.shape, 0.2)
    for d in days:
        fx.write_glass_hdf(fx.glass_path(tmp_path, "albedo", d), "albedo",
                           {"ABD_BSA_shortwave": bsa, "ABD_WSA_shortwave": bsa})
    ds = read_glass_albedo(tmp_path, days[0], days[-1], TILE, progress=False)
    assert ds.albedo_bsa.shape == (92, 20, 40) and list(ds.time.values) == list(days.values)
    np.testing.assert_allclose(ds.albedo_bsa.values, 0.2, atol=1e-4)


# ----------------------------------------------------------------------------------------------------------
# bad inputs: each message names the file and the variable
# ----------------------------------------------------------------------------------------------------------
def test_missing_variable(tmp_path):
    p = fx.write_glass_hdf(fx.glass_path(tmp_path, "lst", DAY), "lst", {"LST_night": _lst()})
    with pytest.raises(MissingVariableError) as e:
        read_glass_lst(tmp_path, DAY, DAY, TILE, progress=False)
    assert str(e.value) == f"{p}: variable 'LST' not found (found: 'LST_night', 'QC')"


def test_lst_in_celsius_is_converted_or_rejected(tmp_path):
    values = _lst() - 273.15
    p = fx.write_glass_hdf(fx.glass_path(tmp_path, "lst", DAY), "lst", {"LST": np.clip(values, 0, None)},
                           sds_attrs={"LST": {"units": "degC"}})
    lst = read_glass_lst(tmp_path, DAY, DAY, TILE, progress=False)
    assert lst.attrs["units"] == "K" and float(lst.median()) > 273.15
    with pytest.raises(UnitsError, match=rf"{p}: variable 'LST' has units 'degC'"):
        read_glass_lst(tmp_path, DAY, DAY, TILE, units_policy="raise", progress=False)


def test_lst_lying_kelvin_attribute(tmp_path):
    p = fx.write_glass_hdf(fx.glass_path(tmp_path, "lst", DAY), "lst", {"LST": np.full(TILE.shape, 21.5)})
    with pytest.raises(UnitsError, match=rf"{p}: variable 'LST' has units 'K'.*median value is 21\.50"):
        read_glass_lst(tmp_path, DAY, DAY, TILE, progress=False)


def test_albedo_in_percent_lying(tmp_path):
    p = fx.write_glass_hdf(fx.glass_path(tmp_path, "albedo", CDAY), "albedo",
                           {n: np.full(TILE.shape, 25.0) for n in ("ABD_BSA_shortwave", "ABD_WSA_shortwave")},
                           sds_attrs={n: {"scale_factor": 1.0, "valid_range": None}
                                      for n in ("ABD_BSA_shortwave", "ABD_WSA_shortwave")})
    with pytest.raises(UnitsError, match=rf"{p}: variable 'ABD_BSA_shortwave' has units 'dimensionless'.*percent"):
        read_glass_albedo(tmp_path, CDAY, CDAY, TILE, progress=False)


def test_all_fill_period_is_empty_but_one_cloudy_day_is_fine(tmp_path):
    days = pd.date_range(DAY, periods=3)
    cloudy = np.ones(TILE.shape, np.uint8)
    fx.write_glass_hdf(fx.glass_path(tmp_path, "lst", days[0]), "lst", {"LST": _lst()}, qc=cloudy)
    fx.write_glass_hdf(fx.glass_path(tmp_path, "lst", days[1]), "lst", {"LST": np.full(TILE.shape, np.nan)})
    fx.write_glass_hdf(fx.glass_path(tmp_path, "lst", days[2]), "lst", {"LST": _lst()})
    lst = read_glass_lst(tmp_path, days[0], days[2], TILE, progress=False)
    assert lst.isnull().all(("lat", "lon")).values.tolist() == [True, True, False]
    with pytest.raises(EmptyDataError, match=rf"{tmp_path}: variable 'LST' has no valid value .* 2 date\(s\)"):
        read_glass_lst(tmp_path, days[0], days[1], TILE, progress=False)


def test_domain_outside_file(tmp_path):
    p = fx.write_glass_hdf(fx.glass_path(tmp_path, "lst", DAY), "lst", {"LST": _lst()})
    outside = Domain.from_bounds(40.5, 41.5, -99.0, -98.0)  # north of the tile
    with pytest.raises(GridMismatchError, match=rf"{p}: variable 'LST' does not cover the domain lat 40\.500"):
        read_glass_lst(tmp_path, DAY, DAY, outside, progress=False)


def test_file_at_coarser_resolution(tmp_path):
    p = fx.write_glass_hdf(fx.glass_path(tmp_path, "lst", DAY), "lst", {"LST": _lst((10, 20))}, resolution=0.1)
    msg = rf"{p}: variable 'LST' is on a 0\.1 deg grid but the domain needs 0\.05 deg"
    with pytest.raises(GridMismatchError, match=msg):
        read_glass_lst(tmp_path, DAY, DAY, TILE, progress=False)


def test_global_file_without_attributes_at_wrong_shape(tmp_path):
    # a file without geolocation attributes is global: 1800 x 3600 means 0.1 deg (hyperslab arithmetic only)
    import glass_sm.io.glass_avhrr as mod

    p = fx.write_glass_hdf(fx.glass_path(tmp_path / "a", "lst", DAY), "lst", {"LST": _lst((18, 30))}, upper_left=None)
    with pytest.raises(GridMismatchError, match=rf"{p}: variable 'LST' has no UpperLeftLatitude.*shape is 18 x 30"):
        read_glass_lst(tmp_path / "a", DAY, DAY, TILE, progress=False)
    p = fx.write_glass_hdf(fx.glass_path(tmp_path / "b", "lst", DAY), "lst", {"LST": _lst((18, 36))}, upper_left=None)
    with pytest.raises(GridMismatchError, match=rf"{p}: variable 'LST' is on a 10 deg grid .*global grid, no geoloc"):
        read_glass_lst(tmp_path / "b", DAY, DAY, TILE, progress=False)
    grid = mod._file_grid({}, (1800, 3600), "f.hdf", "LST")
    with pytest.raises(GridMismatchError, match=r"0\.1 deg grid"):
        mod._hyperslab(grid, TILE, "f.hdf", "LST")
    g = mod._file_grid({}, (3600, 7200), "f.hdf", "LST")
    assert mod._hyperslab(g, TILE, "f.hdf", "LST") == (TILE.row0, TILE.row0 + 20, TILE.col0, TILE.col0 + 40)


def test_corrupt_and_truncated_files(tmp_path):
    a = fx.write_glass_hdf(fx.glass_path(tmp_path / "a", "lst", DAY), "lst", {"LST": _lst()})
    a.write_bytes(a.read_bytes()[: a.stat().st_size // 2])
    with pytest.raises(CorruptFileError, match=rf"{a}: cannot be opened as HDF4"):
        read_glass_lst(tmp_path / "a", DAY, DAY, TILE, progress=False)
    b = fx.glass_path(tmp_path / "b", "lst", DAY)
    b.parent.mkdir(parents=True)
    b.write_bytes(os.urandom(4096))
    with pytest.raises(CorruptFileError, match=rf"{b}: .*not an HDF4 file"):
        read_glass_lst(tmp_path / "b", DAY, DAY, TILE, progress=False)
