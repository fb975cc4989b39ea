"""GLASS-MODIS SM labels as the evidence allows them to be (``shared/REAL_FORMATS.md``, issue 14).

The real product is a 1 km daily sinusoidal GeoTIFF with NoData -9999 covering 2000-2020; its file naming, its
tiling (global mosaic or MODIS h/v tiles), data type and scale were NOT FOUND. So each of these is a parameter
of :func:`glass_sm.io.glass_modis.read_glass_modis_sm`, and every variant is exercised here:

- names: today's ``GLASS_MODIS_SM.A<YYYY><DDD>[.<anything>].tif`` and a MODIS-style tiled name;
- tiles: real MODIS h/v tile geometry (1200 x 1200 pixels of 926.6 m), several tiles per day mosaicked;
- storage: float32 m3 m-3, and int16 x 1e-4 (scale from the parameter or from the file's own tags);
- period: no label after ``label_end`` (2020-12-31 by default).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin

from glass_sm import config
from glass_sm.grid import Domain
from glass_sm.io import glass_modis
from glass_sm.io.errors import DuplicateFileError, GridMismatchError, UnitsError
from glass_sm.io.glass_modis import (MODIS_SM_END, NAME_PATTERNS, compile_name_pattern, find_glass_modis_files,
                                     glass_modis_filename, read_glass_modis_sm)

# rasterio 1.4's from_origin uses affine's deprecated ``*``; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")

SINU = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
X0, Y0 = -20015109.354, 10007554.677  # upper-left corner of the global MODIS sinusoidal grid, m
TILE = 1111950.5197665  # MODIS tile edge, m (36 x 18 tiles)
NPIX = 1200  # 1 km product: 1200 x 1200 pixels of 926.625 m per tile
# the corner of tiles h08v04, h09v04, h08v05, h09v05 lies at 40 N, 117.49 W: this domain straddles all four
DOM4 = Domain.from_bounds(39.8, 40.2, -117.7, -117.3)
TILES4 = [(8, 4), (9, 4), (8, 5), (9, 5)]


def touch(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def tile_transform(h: int, v: int, npix: int = NPIX):
    return from_origin(X0 + h * TILE, Y0 - v * TILE, TILE / npix, TILE / npix)


def tile_lonlat(h: int, v: int, npix: int = NPIX):
    """Longitude and latitude of the pixel centres of tile h, v (degrees)."""
    px = TILE / npix
    xc = X0 + h * TILE + (np.arange(npix) + 0.5) * px
    yc = Y0 - v * TILE - (np.arange(npix) + 0.5) * px
    X, Y = np.meshgrid(xc, yc)
    lon, lat = Transformer.from_crs(SINU, "EPSG:4326", always_xy=True).transform(X, Y)
    return np.asarray(lon), np.asarray(lat)


def sm_field(lon, lat, day: int = 0):
    """A smooth soil-moisture field, m3 m-3 (different every day)."""
    return (0.2 + 0.1 * np.sin(3 * np.deg2rad(lon) + 0.3 * day) + 0.05 * np.cos(5 * np.deg2rad(lat))).astype(
        np.float32)


def write_tile(path: Path, arr, transform, nodata=-9999.0, dtype="float32", scale=None, tags=None,
               crs=SINU) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(arr)
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1, dtype=dtype,
                       crs=crs, transform=transform, nodata=nodata, compress="deflate") as ds:
        ds.write(arr.astype(dtype), 1)
        if scale is not None:
            ds.scales = (scale,)
        if tags:
            ds.update_tags(1, **tags)
    return path


def binned_mean(lons, lats, values, dom: Domain) -> np.ndarray:
    """Independent reference: mean of the valid pixel values whose centre lies in each cell (NaN: none)."""
    s, n = np.zeros(dom.size), np.zeros(dom.size)
    for lon, lat, v in zip(lons, lats, values):
        r = np.floor((dom.north - lat) / dom.res).astype(int)
        c = np.floor((lon - dom.west) / dom.res).astype(int)
        sel = (r >= 0) & (r < dom.nrows) & (c >= 0) & (c < dom.ncols) & np.isfinite(v)
        np.add.at(s, r[sel] * dom.ncols + c[sel], v[sel].astype(np.float64))
        np.add.at(n, r[sel] * dom.ncols + c[sel], 1)
    with np.errstate(invalid="ignore"):
        return (s / n).reshape(dom.shape)


@pytest.fixture(scope="module")
def four_tiles():
    """Pixel centres of the four real MODIS tiles around DOM4 (computed once: 4 x 1.44 M points)."""
    return {hv: tile_lonlat(*hv) for hv in TILES4}


# ----------------------------------------------------------------------------------------------------------
# Rule 1: the file-name pattern is a documented parameter (naming unverified)
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, pattern, expect", [
    ("GLASS_MODIS_SM.A2000055.tif", "default", (dt.date(2000, 2, 24), None)),
    ("GLASS_MODIS_SM.A2000055.2022021.tif", "default", (dt.date(2000, 2, 24), None)),
    ("GLASS_MODIS_SM.A2020366.anything.else.tiff", "default", (dt.date(2020, 12, 31), None)),
    ("GLASS_MODIS_SM.A2000055.h08v05.tif", "default", (dt.date(2000, 2, 24), "h08v05")),
    ("GLASS_MODIS_SM.A2000055.h08v05.2022021.tif", "default", (dt.date(2000, 2, 24), "h08v05")),
    ("GLASS09A01.V01.A2000055.h08v05.2022021.tif", "modis_tiled", (dt.date(2000, 2, 24), "h08v05")),
    ("GLASS_SM.V02.A2013200.h35v10.tif", "modis_tiled", (dt.date(2013, 7, 19), "h35v10")),
    ("SM_1km_2005_031_h10v04.tif", r"^SM_1km_(?P<year>\d{4})_(?P<doy>\d{3})_(?P<tile>h\d\dv\d\d)\.tif$",
     (dt.date(2005, 1, 31), "h10v04")),
])
def test_name_patterns_default_tiled_and_custom(tmp_path, name, pattern, expect):
    touch(tmp_path / "x" / name)
    files = find_glass_modis_files(tmp_path, pattern=pattern)
    assert list(files) == [expect[0]] and [p.name for p in files[expect[0]]] == [name]
    m = compile_name_pattern(pattern).match(name)
    assert m and (m.groupdict().get("tile") or None) == expect[1]


def test_names_the_pattern_does_not_match_are_ignored(tmp_path):
    touch(tmp_path / "GLASS_MODIS_SM.A2000055.tif")
    touch(tmp_path / "GLASS_MODIS_SM.A2001999.tif")  # day 999: not a date
    touch(tmp_path / "GLASS09A01.V01.A2000056.h08v05.2022021.tif")  # tiled name: not the default pattern
    touch(tmp_path / "GLASS_MODIS_SM.A2000057.hdf")
    assert list(find_glass_modis_files(tmp_path)) == [dt.date(2000, 2, 24)]
    assert list(find_glass_modis_files(tmp_path, pattern="modis_tiled")) == [dt.date(2000, 2, 25)]


def test_bad_pattern_is_an_error_naming_the_groups():
    with pytest.raises(ValueError, match="year.*doy"):
        compile_name_pattern(r"^SM_(\d{4})(\d{3})\.tif$")
    with pytest.raises(ValueError, match="not a regular expression"):
        compile_name_pattern(r"^SM_(?P<year>\d{4}(?P<doy>\d{3})\.tif$")


def test_naming_is_documented_as_unverified():
    doc = (glass_modis.__doc__ or "") + (read_glass_modis_sm.__doc__ or "")
    assert "unverified" in doc.lower() and "NOT FOUND" in doc
    assert set(NAME_PATTERNS) >= {"default", "modis_tiled"}
    assert glass_modis_filename(dt.date(2000, 2, 24), tile="h08v05") == "GLASS_MODIS_SM.A2000055.h08v05.tif"


def test_config_declares_pattern_and_scale():
    cfg = config.load(None)
    assert cfg.data.glass_modis_pattern == "default" and cfg.data.glass_modis_scale == 1.0
    cfg = config.load(None, {"data.glass_modis_pattern": "modis_tiled", "data.glass_modis_scale": 1e-4})
    assert cfg.data.glass_modis_pattern == "modis_tiled" and cfg.data.glass_modis_scale == 1e-4


# ----------------------------------------------------------------------------------------------------------
# Rule 2: several tiles per day; the same tile twice is an error
# ----------------------------------------------------------------------------------------------------------
def test_several_tiles_of_one_day_are_all_listed(tmp_path):
    a = touch(tmp_path / "2000" / "055" / "GLASS_MODIS_SM.A2000055.h08v05.tif")
    b = touch(tmp_path / "2000" / "055" / "GLASS_MODIS_SM.A2000055.h09v05.tif")
    files = find_glass_modis_files(tmp_path)
    assert files == {dt.date(2000, 2, 24): [a, b]}


def test_same_tile_at_two_paths_is_an_error(tmp_path):
    a = touch(tmp_path / "2000" / "GLASS_MODIS_SM.A2000055.h08v05.tif")
    b = touch(tmp_path / "copy" / "GLASS_MODIS_SM.A2000055.h08v05.tif")
    touch(tmp_path / "2000" / "GLASS_MODIS_SM.A2000055.h09v05.tif")
    with pytest.raises(DuplicateFileError) as e:
        find_glass_modis_files(tmp_path)
    assert str(a) in str(e.value) and str(b) in str(e.value) and "h09v05" not in str(e.value)


def test_same_tile_under_two_names_is_an_error(tmp_path):
    a = touch(tmp_path / "GLASS_MODIS_SM.A2000055.h08v05.tif")
    b = touch(tmp_path / "GLASS_MODIS_SM.A2000055.h08v05.old.tif")
    with pytest.raises(DuplicateFileError) as e:
        find_glass_modis_files(tmp_path)
    assert str(a) in str(e.value) and str(b) in str(e.value)


def test_newest_production_of_a_tile_wins(tmp_path):
    touch(tmp_path / "a" / "GLASS09A01.V01.A2000055.h08v05.2021001.tif")
    touch(tmp_path / "b" / "GLASS09A01.V01.A2000055.h08v05.2021001.tif")  # copies of the superseded file
    new = touch(tmp_path / "GLASS09A01.V01.A2000055.h08v05.2022021.tif")
    assert find_glass_modis_files(tmp_path, pattern="modis_tiled") == {dt.date(2000, 2, 24): [new]}


def test_four_real_modis_tiles_are_mosaicked(tmp_path, four_tiles, monkeypatch):
    """Every tile of a day contributes its pixels: the result is the mean over the pixel centres of all tiles;
    the pixel -> cell map is computed once per source grid, and a tile far from the domain is skipped."""
    calls = []
    build = glass_modis._build_mapping
    monkeypatch.setattr(glass_modis, "_build_mapping", lambda ds, *a, **k: calls.append(ds.name) or build(ds, *a, **k))
    days = [dt.date(2010, 7, 1), dt.date(2010, 7, 2), dt.date(2010, 7, 3)]
    expect = {}
    for i, day in enumerate(days):
        vals = []
        for h, v in TILES4:
            lon, lat = four_tiles[(h, v)]
            arr = sm_field(lon, lat, i)
            if i == 1 and (h, v) == (8, 4):
                arr[:] = -9999.0  # a whole tile of NoData that day
            write_tile(tmp_path / f"{day:%Y}" / glass_modis_filename(day, tile=f"h{h:02d}v{v:02d}"), arr,
                       tile_transform(h, v))
            vals.append(np.where(arr == -9999.0, np.nan, arr))
        write_tile(tmp_path / f"{day:%Y}" / glass_modis_filename(day, tile="h20v05"), np.zeros((8, 8)),
                   tile_transform(20, 5, 8))
        expect[day] = binned_mean([four_tiles[hv][0] for hv in TILES4], [four_tiles[hv][1] for hv in TILES4],
                                  vals, DOM4)
    da = read_glass_modis_sm(tmp_path, days[0], days[-1], DOM4, progress=False)
    assert len(calls) == 5  # four tiles around the domain + the far tile, once each (three days)
    for day in (days[0], days[2]):
        assert np.isfinite(expect[day]).all()
        np.testing.assert_allclose(da.sel(time=str(day)).values, expect[day], rtol=1e-6)
    # day 2: cells wholly in the NoData tile are NaN; a cell straddling it keeps a value only where at least
    # half of its pixels (of all tiles) are valid
    got = da.sel(time=str(days[1])).values
    assert np.isnan(got).any() and np.isfinite(got).any()
    ok = np.isfinite(got)
    np.testing.assert_allclose(got[ok], expect[days[1]][ok], rtol=1e-6)
    assert da.attrs["n_files"] == 15 and da.attrs["n_files_outside_domain"] == 3


def test_a_tile_missing_on_a_day_counts_as_invalid_pixels(tmp_path, four_tiles):
    """min_valid_fraction counts the pixels of every tile of the period: a cell half in a tile that is
    missing that day is as incomplete as a cell half NoData."""
    days = [dt.date(2010, 7, 1), dt.date(2010, 7, 2)]
    for i, day in enumerate(days):
        for h, v in TILES4:
            if i == 1 and (h, v) == (8, 4):
                continue
            lon, lat = four_tiles[(h, v)]
            write_tile(tmp_path / glass_modis_filename(day, tile=f"h{h:02d}v{v:02d}"), sm_field(lon, lat),
                       tile_transform(h, v))
    da = read_glass_modis_sm(tmp_path, days[0], days[1], DOM4, progress=False)
    (tmp_path / glass_modis_filename(days[0], tile="h08v04")).unlink()
    with pytest.warns(UserWarning, match="cells of the domain .* are covered by no GLASS-MODIS SM file"):
        ref = read_glass_modis_sm(tmp_path, days[0], days[0], DOM4, progress=False)  # day 1 without h08v04
    lon, lat = four_tiles[(8, 4)]
    r = np.floor((DOM4.north - lat) / DOM4.res).astype(int)
    c = np.floor((lon - DOM4.west) / DOM4.res).astype(int)
    sel = (r >= 0) & (r < DOM4.nrows) & (c >= 0) & (c < DOM4.ncols)
    in_tile = np.zeros(DOM4.size, bool)
    in_tile[r[sel] * DOM4.ncols + c[sel]] = True
    in_tile = in_tile.reshape(DOM4.shape)
    day2 = da.isel(time=1).values
    assert np.isnan(day2[in_tile]).sum() > np.isnan(ref.values[0][in_tile]).sum()
    assert np.isfinite(da.isel(time=0).values).all() and np.isfinite(day2[~in_tile]).all()
    assert ref.attrs["n_cells_not_covered"] > 0 and da.attrs["n_cells_not_covered"] == 0


def test_two_files_over_the_same_area_on_one_day_is_an_error(tmp_path, four_tiles):
    lon, lat = four_tiles[(8, 5)]
    a = write_tile(tmp_path / "GLASS_MODIS_SM.A2010182.h08v05.tif", sm_field(lon, lat), tile_transform(8, 5))
    b = write_tile(tmp_path / "GLASS_MODIS_SM.A2010182.mosaic.tif", sm_field(lon, lat), tile_transform(8, 5))
    with pytest.raises(DuplicateFileError) as e:
        read_glass_modis_sm(tmp_path, "2010-07-01", "2010-07-01", DOM4, progress=False)
    assert str(a) in str(e.value) and str(b) in str(e.value) and "overlap" in str(e.value)


def test_no_file_reaching_the_domain_is_a_grid_error(tmp_path):
    p = write_tile(tmp_path / glass_modis_filename(dt.date(2010, 7, 1), tile="h20v05"), np.zeros((8, 8)),
                   tile_transform(20, 5, 8))
    with pytest.raises(GridMismatchError) as e:
        read_glass_modis_sm(tmp_path, "2010-07-01", "2010-07-01", DOM4, progress=False)
    assert str(p) in str(e.value) and "does not cover" in str(e.value)


# ----------------------------------------------------------------------------------------------------------
# Rule 3: scale a parameter (or the file's own tags); NoData -9999 honoured
# ----------------------------------------------------------------------------------------------------------
SMALL = Domain.from_bounds(39.8, 40.0, -117.7, -117.5)  # inside tile h08v05 only


def int16_tile(four_tiles):
    """Tile h08v05 stored as int16 x 1e-4 with every third pixel of every other row NoData (-9999)."""
    lon, lat = four_tiles[(8, 5)]
    stored = np.round(sm_field(lon, lat) / 1e-4).astype(np.int16)
    stored[::2, ::3] = -9999
    return stored, np.where(stored == -9999, np.nan, stored * 1e-4)


@pytest.mark.parametrize("how", ["parameter", "gdal_scale", "scale_factor_tag"])
def test_int16_with_scale_1e4(tmp_path, four_tiles, how):
    stored, physical = int16_tile(four_tiles)
    path = tmp_path / glass_modis_filename(dt.date(2010, 7, 1))
    write_tile(path, stored, tile_transform(8, 5), nodata=None, dtype="int16",  # NoData -9999 not declared
               scale=1e-4 if how == "gdal_scale" else None,
               tags={"scale_factor": "0.0001", "add_offset": "0"} if how == "scale_factor_tag" else None)
    scale = 1e-4 if how == "parameter" else 1.0
    da = read_glass_modis_sm(tmp_path, "2010-07-01", "2010-07-01", SMALL, progress=False, scale=scale)
    lon, lat = four_tiles[(8, 5)]
    np.testing.assert_allclose(da.values[0], binned_mean([lon], [lat], [physical], SMALL), rtol=1e-5)
    assert da.attrs["units"] == "m3 m-3" and float(da.max()) < 0.5


def test_nodata_minus_9999_honoured_beside_another_declared_nodata(tmp_path, four_tiles):
    stored, physical = int16_tile(four_tiles)
    stored[1::2, ::4] = -32768  # the file's own NoData
    physical[1::2, ::4] = np.nan
    write_tile(tmp_path / glass_modis_filename(dt.date(2010, 7, 1)), stored, tile_transform(8, 5), nodata=-32768,
               dtype="int16")
    da = read_glass_modis_sm(tmp_path, "2010-07-01", "2010-07-01", SMALL, progress=False, scale=1e-4)
    lon, lat = four_tiles[(8, 5)]
    np.testing.assert_allclose(da.values[0], binned_mean([lon], [lat], [physical], SMALL), rtol=1e-5)
    assert float(da.min()) > 0


def test_int16_without_any_scale_is_a_units_error_naming_the_parameter(tmp_path, four_tiles):
    stored, _ = int16_tile(four_tiles)
    p = write_tile(tmp_path / glass_modis_filename(dt.date(2010, 7, 1)), stored, tile_transform(8, 5),
                   dtype="int16")
    with pytest.raises(UnitsError) as e:
        read_glass_modis_sm(tmp_path, "2010-07-01", "2010-07-01", SMALL, progress=False)
    assert str(p) in str(e.value) and "int16" in str(e.value) and "scale" in str(e.value)


def test_scale_parameter_contradicting_the_file_is_an_error(tmp_path, four_tiles):
    stored, _ = int16_tile(four_tiles)
    p = write_tile(tmp_path / glass_modis_filename(dt.date(2010, 7, 1)), stored, tile_transform(8, 5),
                   dtype="int16", scale=1e-4)
    with pytest.raises(UnitsError) as e:
        read_glass_modis_sm(tmp_path, "2010-07-01", "2010-07-01", SMALL, progress=False, scale=1e-3)
    assert str(p) in str(e.value) and "0.0001" in str(e.value) and "0.001" in str(e.value)
    # the same value in both places is fine
    da = read_glass_modis_sm(tmp_path, "2010-07-01", "2010-07-01", SMALL, progress=False, scale=1e-4)
    assert np.isfinite(da.values).any()


# ----------------------------------------------------------------------------------------------------------
# Rule 4: labels from 2000-02-24 to 2020-12-31 by default
# ----------------------------------------------------------------------------------------------------------
def test_period_label_end_default_and_override():
    assert MODIS_SM_END == dt.date(2020, 12, 31)
    cfg = config.load(None)
    assert cfg.period.label_start == dt.date(2000, 2, 24) and cfg.period.label_end == MODIS_SM_END
    assert config.load(None, {"period.label_end": "2019-06-30"}).period.label_end == dt.date(2019, 6, 30)


def test_no_label_after_label_end(tmp_path, four_tiles):
    lon, lat = four_tiles[(8, 5)]
    days = [dt.date(2020, 12, 30), dt.date(2020, 12, 31), dt.date(2021, 1, 1), dt.date(2021, 1, 2)]
    for day in days:
        write_tile(tmp_path / f"{day:%Y}" / glass_modis_filename(day), sm_field(lon, lat), tile_transform(8, 5))
    da = read_glass_modis_sm(tmp_path, days[0], days[-1], SMALL, progress=False)
    assert np.isfinite(da.sel(time=slice("2020-12-30", "2020-12-31")).values).all()
    assert np.isnan(da.sel(time=slice("2021-01-01", None)).values).all()
    assert da.attrs["n_files"] == 2 and da.attrs["n_files_outside_label_period"] == 2
    assert da.attrs["label_end"] == "2020-12-31"
    # a later label_end takes them
    later = read_glass_modis_sm(tmp_path, days[0], days[-1], SMALL, progress=False, label_end="2021-12-31")
    assert np.isfinite(later.values).all()
    # a period wholly after label_end expects no file: all NaN, no error
    after = read_glass_modis_sm(tmp_path / "none", "2021-06-01", "2021-06-03", SMALL, progress=False)
    assert after.shape[0] == 3 and np.isnan(after.values).all()
