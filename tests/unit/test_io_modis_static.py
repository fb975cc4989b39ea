"""GLASS-MODIS SM GeoTIFF -> 0.05 deg (glass_sm.io.glass_modis) and static layers (glass_sm.io.static).

Fixtures are real-layout GeoTIFFs written here with rasterio (EPSG:4326, MODIS sinusoidal, SoilGrids-like
Homolosine), so the expected 0.05 deg means are known in closed form.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin

from glass_sm.grid import Domain, block_mean
from glass_sm.io.errors import (
    CorruptFileError,
    EmptyDataError,
    GridMismatchError,
    MissingFileError,
    MissingVariableError,
    UnitsError,
)
from glass_sm.io.glass_modis import find_glass_modis_files, glass_modis_filename, read_glass_modis_sm
from glass_sm.io.static import read_layer, read_static

# rasterio 1.4's from_origin uses affine's deprecated ``*``; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")

SINU = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
HOMOLOSINE = "ESRI:54052"  # Interrupted Goode Homolosine, the CRS of SoilGrids 2.0
DOM = Domain.from_bounds(39.0, 39.4, -100.0, -99.5)  # 8 x 10 cells
BIG = Domain.from_bounds(38.8, 39.6, -100.2, -99.3)  # the files' extent (larger than DOM)
F = 5  # 0.01 deg source pixels per 0.05 deg cell


def write_tif(path: Path, arr: np.ndarray, transform, crs=None, nodata=None, tags=None, band_tags=None,
              dtype=None) -> Path:
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[None]
    path.parent.mkdir(parents=True, exist_ok=True)
    kw = dict(driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0],
              dtype=dtype or arr.dtype, transform=transform, nodata=nodata)
    if crs is not None:
        kw["crs"] = crs
    with rasterio.open(path, "w", **kw) as ds:
        ds.write(arr.astype(kw["dtype"]))
        if tags:
            ds.update_tags(**tags)
        if band_tags:
            ds.update_tags(1, **band_tags)
    return path


def fine_4326(dom: Domain = BIG, f: int = F):
    """Transform and cell-centre lat/lon of a 0.05/f deg grid aligned with the product grid over ``dom``."""
    res = dom.res / f
    tr = from_origin(dom.west, dom.north, res, res)
    lat = dom.north - (np.arange(dom.nrows * f) + 0.5) * res
    lon = dom.west + (np.arange(dom.ncols * f) + 0.5) * res
    return tr, lat, lon


def sinu_grid(dom: Domain, pixel: float):
    """A sinusoidal grid (transform, width, height, lat, lon of pixel centres) covering ``dom`` with margin."""
    t = Transformer.from_crs("EPSG:4326", SINU, always_xy=True)
    lo, la = np.meshgrid(np.linspace(dom.west, dom.east, 30), np.linspace(dom.south, dom.north, 30))
    x, y = t.transform(lo, la)
    x0 = np.floor(x.min() / pixel - 3) * pixel
    y1 = np.ceil(y.max() / pixel + 3) * pixel
    w = int(np.ceil((x.max() - x0) / pixel)) + 3
    h = int(np.ceil((y1 - y.min()) / pixel)) + 3
    tr = from_origin(x0, y1, pixel, pixel)
    xc = x0 + (np.arange(w) + 0.5) * pixel
    yc = y1 - (np.arange(h) + 0.5) * pixel
    X, Y = np.meshgrid(xc, yc)
    lon, lat = Transformer.from_crs(SINU, "EPSG:4326", always_xy=True).transform(X, Y)
    return tr, w, h, lat, lon


# ----------------------------------------------------------------------------------------------------------
# GLASS-MODIS SM
# ----------------------------------------------------------------------------------------------------------
def modis_path(root: Path, day: dt.date, flat: bool = False) -> Path:
    return (root if flat else root / f"{day.year:04d}") / glass_modis_filename(day)


def test_filename_and_discovery(tmp_path):
    assert glass_modis_filename(dt.date(2000, 2, 24)) == "GLASS_MODIS_SM.A2000055.tif"
    tr, lat, lon = fine_4326()
    a = np.full((lat.size, lon.size), 0.2, np.float32)
    write_tif(modis_path(tmp_path, dt.date(2001, 1, 1)), a, tr, "EPSG:4326", -9999)
    write_tif(modis_path(tmp_path, dt.date(2001, 1, 2), flat=True), a, tr, "EPSG:4326", -9999)
    (tmp_path / "GLASS_MODIS_SM.A2001999.tif").write_bytes(b"")  # day 999: not a date, ignored
    files = find_glass_modis_files(tmp_path, dt.date(2001, 1, 1), dt.date(2001, 12, 31))
    assert list(files) == [dt.date(2001, 1, 1), dt.date(2001, 1, 2)]


def test_epsg4326_equals_block_mean_and_missing_days(tmp_path):
    tr, lat, lon = fine_4326()
    rng = np.random.default_rng(0)
    days = [dt.date(2000, 2, 24), dt.date(2000, 2, 26)]
    fields = {}
    for d in days:
        a = rng.uniform(0.05, 0.45, (lat.size, lon.size)).astype(np.float32)
        write_tif(modis_path(tmp_path, d, flat=(d.day == 26)), a, tr, "EPSG:4326", -9999,
                  band_tags={"units": "m3 m-3"})
        fields[d] = a
    da = read_glass_modis_sm(tmp_path, "2000-02-22", "2000-02-27", DOM, progress=False)
    assert da.name == "sm_label" and da.dims == ("time", "lat", "lon") and da.dtype == np.float32
    assert da.shape == (6, DOM.nrows, DOM.ncols)
    assert da.attrs["units"] == "m3 m-3" and da.attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
    assert da["lat"].attrs["units"] == "degrees_north" and np.all(np.diff(da["lat"].values) < 0)
    np.testing.assert_allclose(da["lat"].values, DOM.lat)
    r, c = DOM.slices_in(BIG)
    for d, a in fields.items():
        expect = block_mean(a.astype(np.float64), F)[r, c]
        np.testing.assert_allclose(da.sel(time=str(d)).values, expect, rtol=1e-6)
    # days before the MODIS record and days without a file are NaN
    for d in ("2000-02-22", "2000-02-23", "2000-02-25", "2000-02-27"):
        assert np.isnan(da.sel(time=d).values).all()


def test_min_valid_fraction(tmp_path):
    tr, lat, lon = fine_4326()
    a = np.full((lat.size, lon.size), 0.3, np.float32)
    r0, c0 = (DOM.row0 - BIG.row0) * F, (DOM.col0 - BIG.col0) * F  # first domain cell in the fine grid
    a[r0:r0 + F, c0:c0 + F] = 0.1
    a[r0:r0 + 2, c0:c0 + F] = -9999  # 10 of the cell's 25 pixels are NoData: 60 % valid
    write_tif(modis_path(tmp_path, dt.date(2005, 6, 1)), a, tr, "EPSG:4326", -9999)
    half = read_glass_modis_sm(tmp_path, "2005-06-01", "2005-06-01", DOM, progress=False)
    assert half.values[0, 0, 0] == pytest.approx(0.1)  # mean of the 15 valid pixels
    strict = read_glass_modis_sm(tmp_path, "2005-06-01", "2005-06-01", DOM, progress=False,
                                 min_valid_fraction=0.7)
    assert np.isnan(strict.values[0, 0, 0]) and strict.values[0, 0, 1] == pytest.approx(0.3)


@pytest.mark.parametrize("pixel", [1000.0, 7000.0])
def test_sinusoidal_mean_matches_pixel_centres(tmp_path, pixel):
    """A smooth field on the sinusoidal grid: each cell's value is the mean of the pixels centred in it.

    With 7 km pixels (coarser than the ~4.3 x 5.6 km cells) some cells hold no pixel centre and take the pixel
    under their own centre: every cell still gets a value.
    """
    tr, w, h, lat, lon = sinu_grid(DOM, pixel)
    field = (0.1 + 0.2 * (lat - 39.0) + 0.1 * (lon + 100.0)).astype(np.float32)
    write_tif(modis_path(tmp_path, dt.date(2010, 7, 1)), field, tr, SINU, -9999)
    da = read_glass_modis_sm(tmp_path, "2010-07-01", "2010-07-01", DOM, progress=False).values[0]
    assert np.isfinite(da).all()
    # expected: the field is linear in lat/lon, and every pixel used lies within half a cell (centre inside the
    # cell) or half a pixel (pixel under the cell centre) of the cell centre: |error| <= gradient x distance
    la, lo = np.meshgrid(DOM.lat, DOM.lon, indexing="ij")
    centre = 0.1 + 0.2 * (la - 39.0) + 0.1 * (lo + 100.0)
    half_lat = max(DOM.res, pixel / 111_195.0) / 2
    half_lon = max(DOM.res, pixel / (111_195.0 * np.cos(np.deg2rad(39.0)))) / 2
    tol = 0.2 * half_lat + 0.1 * half_lon + 1e-4
    np.testing.assert_allclose(da, centre, atol=tol)
    if pixel == 1000.0:  # exact check against an independent binning of the pixel centres
        rr = np.floor((DOM.north - lat) / DOM.res).astype(int)
        cc = np.floor((lon - DOM.west) / DOM.res).astype(int)
        sel = (rr >= 0) & (rr < DOM.nrows) & (cc >= 0) & (cc < DOM.ncols)
        s = np.zeros(DOM.size)
        n = np.zeros(DOM.size)
        np.add.at(s, rr[sel] * DOM.ncols + cc[sel], field[sel].astype(np.float64))
        np.add.at(n, rr[sel] * DOM.ncols + cc[sel], 1)
        np.testing.assert_allclose(da.ravel(), s / n, rtol=1e-6)


def test_percent_units(tmp_path):
    tr, lat, lon = fine_4326()
    a = np.full((lat.size, lon.size), 25.0, np.float32)
    path = write_tif(modis_path(tmp_path, dt.date(2003, 3, 3)), a, tr, "EPSG:4326", -9999,
                     band_tags={"units": "%"})
    da = read_glass_modis_sm(tmp_path, "2003-03-03", "2003-03-03", DOM, progress=False)
    assert da.values[0, 0, 0] == pytest.approx(0.25)  # converted under the default policy
    with pytest.raises(UnitsError) as e:
        read_glass_modis_sm(tmp_path, "2003-03-03", "2003-03-03", DOM, progress=False, units_policy="raise")
    assert str(path) in str(e.value) and "soil moisture (band 1)" in str(e.value) and "%" in str(e.value)


def test_bad_inputs_modis(tmp_path):
    tr, lat, lon = fine_4326()
    a = np.full((lat.size, lon.size), 0.2, np.float32)
    var = "soil moisture (band 1)"

    def expect(exc, root, *args, **kw):
        with pytest.raises(exc) as e:
            read_glass_modis_sm(root, "2004-01-01", "2004-01-01", DOM, *args, progress=False, **kw)
        return str(e.value)

    # missing folder, and a folder without files for the period
    msg = expect(MissingFileError, tmp_path / "nope")
    assert str(tmp_path / "nope") in msg and "sm_label" in msg
    (tmp_path / "empty").mkdir()
    msg = expect(MissingFileError, tmp_path / "empty")
    assert str(tmp_path / "empty") in msg and "sm_label" in msg
    # missing band
    root = tmp_path / "band"
    p = write_tif(modis_path(root, dt.date(2004, 1, 1)), a, tr, "EPSG:4326", -9999)
    msg = expect(MissingVariableError, root, band=2)
    assert str(p) in msg and "band 2" in msg
    # percent values behind a volumetric tag
    root = tmp_path / "lying"
    p = write_tif(modis_path(root, dt.date(2004, 1, 1)), a * 100, tr, "EPSG:4326", -9999,
                  band_tags={"units": "m3 m-3"})
    msg = expect(UnitsError, root)
    assert str(p) in msg and var in msg
    # non-volumetric units
    root = tmp_path / "kgm2"
    p = write_tif(modis_path(root, dt.date(2004, 1, 1)), a, tr, "EPSG:4326", -9999, band_tags={"units": "kg m-2"})
    msg = expect(UnitsError, root)
    assert str(p) in msg and var in msg and "kg m-2" in msg
    # all NoData over the domain
    root = tmp_path / "nodata"
    write_tif(modis_path(root, dt.date(2004, 1, 1)), np.full_like(a, -9999), tr, "EPSG:4326", -9999)
    msg = expect(EmptyDataError, root)
    assert str(root) in msg and var in msg
    # a grid that does not cover the domain (shifted 1 deg east)
    root = tmp_path / "elsewhere"
    p = write_tif(modis_path(root, dt.date(2004, 1, 1)), a, from_origin(BIG.west + 1.0, BIG.north, 0.01, 0.01),
                  "EPSG:4326", -9999)
    msg = expect(GridMismatchError, root)
    assert str(p) in msg and var in msg and "does not cover" in msg
    # no CRS
    root = tmp_path / "nocrs"
    p = write_tif(modis_path(root, dt.date(2004, 1, 1)), a, tr, None, -9999)
    msg = expect(GridMismatchError, root)
    assert str(p) in msg and "CRS" in msg
    # truncated file, and a file that is not a GeoTIFF
    root = tmp_path / "truncated"
    p = write_tif(modis_path(root, dt.date(2004, 1, 1)), a, tr, "EPSG:4326", -9999)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])
    msg = expect(CorruptFileError, root)
    assert str(p) in msg and var in msg
    root = tmp_path / "text"
    p = modis_path(root, dt.date(2004, 1, 1))
    p.parent.mkdir(parents=True)
    p.write_text("not a tiff")
    msg = expect(CorruptFileError, root)
    assert str(p) in msg and var in msg


# ----------------------------------------------------------------------------------------------------------
# Static layers
# ----------------------------------------------------------------------------------------------------------
def texture_fields(shape, seed=1):
    rng = np.random.default_rng(seed)
    sand = rng.integers(100, 700, shape)
    clay = rng.integers(50, 300, shape)
    silt = 1000 - sand - clay + rng.integers(-15, 16, shape)  # SoilGrids sums are not exactly 1000
    return sand.astype(np.int16), clay.astype(np.int16), silt.astype(np.int16)


def write_static_set(root: Path, units_tag=None, scale=1.0, dem_tags=None, crs="EPSG:4326"):
    tr, lat, lon = fine_4326()
    shape = (lat.size, lon.size)
    sand, clay, silt = texture_fields(shape)
    dem = (1000 + 50 * np.sin(lat)[:, None] + 10 * np.cos(lon)[None, :]).astype(np.float32)
    dem[:F, :F] = -9999  # NoData corner (outside DOM)
    r0, c0 = (DOM.row0 - BIG.row0) * F, (DOM.col0 - BIG.col0) * F
    dem[r0:r0 + 2, c0:c0 + F] = -9999  # 10 of 25 pixels of the first domain cell
    sand[r0 + 2: r0 + F, c0 + F: c0 + 2 * F] = -32768  # part of the second cell has no sand
    tags = {"units": units_tag} if units_tag else None
    for name, arr in (("sand", sand), ("clay", clay), ("silt", silt)):
        out = np.where(arr == -32768, -32768, arr * scale)
        write_tif(root / f"{name}.tif", out, tr, crs, -32768, band_tags=tags,
                  dtype="int16" if scale == 1.0 else "float32")
    write_tif(root / "dem.tif", dem, tr, crs, -9999, band_tags=dem_tags or {"units": "m"})
    return dict(sand=sand, clay=clay, silt=silt, dem=dem)


def masked_block_mean(a, nodata):
    a = a.astype(np.float64)
    a[a == nodata] = np.nan
    r, c = DOM.slices_in(BIG)
    return block_mean(a, F)[r, c]


def test_static_epsg4326_block_means_and_renormalisation(tmp_path):
    src = write_static_set(tmp_path, units_tag="g/kg")
    ds = read_static(tmp_path, DOM)
    assert set(ds.data_vars) == {"elevation", "sand", "clay", "silt"}
    assert ds["elevation"].attrs["units"] == "m" and ds["sand"].attrs["units"] == "1"
    assert ds["elevation"].attrs["standard_name"] == "height_above_mean_sea_level"
    np.testing.assert_allclose(ds["lat"].values, DOM.lat)
    # DEM: area mean of the valid pixels (NoData ignored)
    np.testing.assert_allclose(ds["elevation"].values, masked_block_mean(src["dem"], -9999), rtol=1e-6)
    s, c, si = (masked_block_mean(src[k], -32768) for k in ("sand", "clay", "silt"))
    tot = s + c + si
    np.testing.assert_allclose(ds["sand"].values, s / tot, rtol=1e-5)
    np.testing.assert_allclose(ds["clay"].values, c / tot, rtol=1e-5)
    total = (ds["sand"] + ds["clay"] + ds["silt"]).values
    np.testing.assert_allclose(total, 1.0, rtol=1e-6)


@pytest.mark.parametrize("units_tag, scale", [("%", 0.1), (None, 0.1), (None, 1e-3), ("1", 1e-3)])
def test_texture_units_percent_and_fraction(tmp_path, units_tag, scale):
    write_static_set(tmp_path / "gkg", units_tag="g/kg")
    ref = read_static(tmp_path / "gkg", DOM)
    write_static_set(tmp_path / "other", units_tag=units_tag, scale=scale)
    ds = read_static(tmp_path / "other", DOM)
    for k in ("sand", "clay", "silt"):
        np.testing.assert_allclose(ds[k].values, ref[k].values, rtol=1e-5)


def test_static_other_crs(tmp_path):
    """Layers in the SoilGrids Homolosine projection are reprojected with an area mean: a constant stays exact."""
    t = Transformer.from_crs("EPSG:4326", HOMOLOSINE, always_xy=True)
    x, y = t.transform([BIG.west, BIG.east, BIG.west, BIG.east], [BIG.south, BIG.south, BIG.north, BIG.north])
    res = 250.0
    x0, y1 = np.floor(min(x) / res) * res - 5000, np.ceil(max(y) / res) * res + 5000
    w, h = int((max(x) - x0) / res) + 40, int((y1 - min(y)) / res) + 40
    tr = from_origin(x0, y1, res, res)
    for name, v in (("sand", 400), ("clay", 200), ("silt", 400)):
        write_tif(tmp_path / f"{name}.tif", np.full((h, w), v, np.int16), tr, HOMOLOSINE, -32768)
    write_tif(tmp_path / "dem.tif", np.full((h, w), 321.0, np.float32), tr, HOMOLOSINE, -9999)
    ds = read_static(tmp_path, DOM)
    np.testing.assert_allclose(ds["elevation"].values, 321.0, rtol=1e-6)
    np.testing.assert_allclose(ds["sand"].values, 0.4, rtol=1e-6)
    np.testing.assert_allclose(ds["clay"].values, 0.2, rtol=1e-6)


def test_bad_inputs_static(tmp_path):
    def expect(exc, root):
        with pytest.raises(exc) as e:
            read_static(root, DOM)
        return str(e.value)

    # missing folder / missing layer
    msg = expect(MissingFileError, tmp_path / "nope")
    assert str(tmp_path / "nope") in msg
    root = tmp_path / "nodem"
    write_static_set(root)
    (root / "dem.tif").unlink()
    msg = expect(MissingFileError, root)
    assert str(root / "dem.tif") in msg and "elevation" in msg
    # missing band
    with pytest.raises(MissingVariableError) as e:
        read_layer(root / "sand.tif", DOM, "sand", band=2)
    assert str(root / "sand.tif") in str(e.value) and "sand" in str(e.value)
    # texture sums far from 1000 g/kg: clay in % next to sand and silt in g/kg
    root = tmp_path / "mixed"
    write_static_set(root)
    tr, lat, lon = fine_4326()
    write_tif(root / "clay.tif", np.full((lat.size, lon.size), 20, np.int16), tr, "EPSG:4326", -32768)
    msg = expect(UnitsError, root)
    assert str(root / "clay.tif") in msg and "sand + clay + silt" in msg
    # a texture tag that contradicts the values (percent tag on g/kg values), and an unknown unit
    root = tmp_path / "tagged"
    write_static_set(root, units_tag="%")
    msg = expect(UnitsError, root)
    assert str(root / "sand.tif") in msg and "sand + clay + silt" in msg
    root = tmp_path / "kgm3"
    write_static_set(root, units_tag="kg/m3")
    msg = expect(UnitsError, root)
    assert "sand.tif" in msg and "'sand'" in msg and "kg/m3" in msg
    # elevation in feet
    root = tmp_path / "feet"
    write_static_set(root, dem_tags={"units": "ft"})
    msg = expect(UnitsError, root)
    assert str(root / "dem.tif") in msg and "elevation" in msg
    # all-NoData DEM tile
    root = tmp_path / "empty"
    write_static_set(root)
    write_tif(root / "dem.tif", np.full((lat.size, lon.size), -9999, np.float32), tr, "EPSG:4326", -9999)
    msg = expect(EmptyDataError, root)
    assert str(root / "dem.tif") in msg and "elevation" in msg
    # a grid that does not cover the domain
    root = tmp_path / "shifted"
    write_static_set(root)
    write_tif(root / "silt.tif", np.full((lat.size, lon.size), 300, np.int16),
              from_origin(BIG.west, BIG.north - 2.0, 0.01, 0.01), "EPSG:4326", -32768)
    msg = expect(GridMismatchError, root)
    assert str(root / "silt.tif") in msg and "silt" in msg and "does not cover" in msg
    # corrupt: truncated GeoTIFF, and text with a .tif name
    root = tmp_path / "truncated"
    write_static_set(root)
    p = root / "clay.tif"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])
    msg = expect(CorruptFileError, root)
    assert str(p) in msg and "clay" in msg
    root = tmp_path / "text"
    write_static_set(root)
    (root / "dem.tif").write_text("not a tiff")
    msg = expect(CorruptFileError, root)
    assert str(root / "dem.tif") in msg and "elevation" in msg
