"""The same input file at two paths is an error listing both paths, never a choice by directory-listing order."""

from __future__ import annotations

import datetime as dt

import pytest

from glass_sm.io.era5land import list_era5land_files
from glass_sm.io.errors import DuplicateFileError
from glass_sm.io.esa_cci import find_esa_cci_files
from glass_sm.io.glass_avhrr import find_glass_files
from glass_sm.io.glass_modis import find_glass_modis_files


def _touch(path, content=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_glass_same_name_in_two_folders(tmp_path):
    name = "GLASS08B31.V40.A1998001.2021250.hdf"
    a = _touch(tmp_path / "lst" / "1998" / name, b"a")
    b = _touch(tmp_path / "lst" / "reprocessed" / name, b"b")
    with pytest.raises(DuplicateFileError) as e:
        find_glass_files(tmp_path, "lst", "1998-01-01", "1998-01-01")
    assert str(a) in str(e.value) and str(b) in str(e.value)


def test_glass_newer_production_still_wins_without_error(tmp_path):
    old = _touch(tmp_path / "GLASS08B31.V40.A1998001.2021250.hdf")
    new = _touch(tmp_path / "sub" / "GLASS08B31.V40.A1998001.2021259.hdf")
    files = find_glass_files(tmp_path, "lst", "1998-01-01", "1998-01-01")
    assert files.iloc[0] == str(new) and str(old) != files.iloc[0]


def test_glass_duplicate_of_a_superseded_file_is_not_an_error(tmp_path):
    # two copies of the older production, one newer file: the newer wins, the copies do not matter
    _touch(tmp_path / "a" / "GLASS08B31.V40.A1998001.2021250.hdf")
    _touch(tmp_path / "b" / "GLASS08B31.V40.A1998001.2021250.hdf")
    new = _touch(tmp_path / "GLASS08B31.V40.A1998001.2021259.hdf")
    assert find_glass_files(tmp_path, "lst", "1998-01-01", "1998-01-01").iloc[0] == str(new)


def test_glass_modis_same_day_twice(tmp_path):
    a = _touch(tmp_path / "2000" / "GLASS_MODIS_SM.A2000055.tif")
    b = _touch(tmp_path / "copy" / "GLASS_MODIS_SM.A2000055.tif")
    with pytest.raises(DuplicateFileError) as e:
        find_glass_modis_files(tmp_path, dt.date(2000, 2, 1), dt.date(2000, 3, 1))
    assert str(a) in str(e.value) and str(b) in str(e.value)


def test_esa_cci_same_version_twice(tmp_path):
    name = "ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-20100101000000-fv09.1.nc"
    a = _touch(tmp_path / "2010" / name)
    b = _touch(tmp_path / "old" / name)
    with pytest.raises(DuplicateFileError) as e:
        find_esa_cci_files(tmp_path, dt.date(2010, 1, 1), dt.date(2010, 1, 2))
    assert str(a) in str(e.value) and str(b) in str(e.value)


def test_era5land_same_name_twice(tmp_path):
    a = _touch(tmp_path / "2000" / "era5land_swvl1_2000.nc")
    b = _touch(tmp_path / "backup" / "era5land_swvl1_2000.nc")
    with pytest.raises(DuplicateFileError) as e:
        list_era5land_files(tmp_path)
    assert str(a) in str(e.value) and str(b) in str(e.value)
