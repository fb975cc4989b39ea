"""GLASS-MODIS label reader, cheaper per file with every output unchanged (issue 17): the helpers of
:mod:`glass_sm.io.glass_modis` against copies of the code they replace.

- ``_valid_values`` (the used-pixel mask folded into the validity mask, the maximum read off the stored values)
  returns the same values bit for bit, the same cells and the same maximum as the former per-file code, for
  every storage, NoData and scale the reader accepts, windows without a valid pixel, NaN and infinities;
- ``_grid_key`` (the WKT remembered by the CRS's WKT2, the geotransform without an Affine) is the former key,
  and two files of one grid but different CRSs are two grids (not one file twice).
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from glass_sm.grid import Domain
from glass_sm.io import glass_modis
from glass_sm.io.errors import DuplicateFileError

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import fixtures_real as fx  # noqa: E402

# rasterio 1.4's from_origin uses affine's deprecated ``*``; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")

SINU = fx.SINU
DOM = Domain.from_bounds(-12.0, 48.0, -30.0, 30.0, res=3.0)   # 20 x 20 cells
NODATA = -9999.0


# --------------------------------------------------------------------------------------------------------------
# copies of the code replaced (glass_modis before issue 17)
# --------------------------------------------------------------------------------------------------------------
def former_valid_values(arr, nodata, scale, offset, mapping):
    flat = arr.ravel()
    if flat.dtype != np.float32:
        flat = flat.astype(np.float64, copy=False)
    valid = np.isfinite(flat)
    valid &= flat != flat.dtype.type(NODATA)
    if nodata is not None and np.isfinite(nodata) and float(nodata) != NODATA:
        nd = float(nodata)
        with np.errstate(over="ignore"):
            nd_t = flat.dtype.type(nd)
        if float(nd_t) == nd:
            valid &= flat != nd_t
    trivial = scale == 1.0 and offset == 0.0

    def phys(stored):
        stored = stored.astype(np.float64, copy=False)
        return stored * scale + offset if not trivial else stored

    values = phys(flat[valid])
    finite = values if trivial else values[np.isfinite(values)]
    vmax = float(finite.max()) if finite.size else None
    cell = mapping.lookup[valid]
    used = cell >= 0
    values, cell = values[used], cell[used]
    if mapping.extra_pix.size:
        ok = valid[mapping.extra_pix]
        values = np.concatenate([values, phys(flat[mapping.extra_pix[ok]])])
        cell = np.concatenate([cell, mapping.extra_cell[ok]])
    return values, cell, vmax


def former_grid_key(ds):
    crs = ds.crs
    return ((crs.wkt or None) if crs is not None else None, tuple(ds.transform)[:6], ds.width, ds.height)


# --------------------------------------------------------------------------------------------------------------
# _valid_values
# --------------------------------------------------------------------------------------------------------------
def mapping_of(tmp_path, pixel_m: float, name: str):
    """The mapping of a sinusoidal grid of ``pixel_m`` pixels over DOM (and its window's shape)."""
    return fx.sinusoidal_mapping(tmp_path, pixel_m, name, DOM)


@pytest.fixture(scope="module")
def mappings(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("label_mappings")
    return {"fine": mapping_of(tmp, 100_000.0, "fine"),       # every cell holds pixel centres
            "coarse": mapping_of(tmp, 500_000.0, "coarse")}   # cells without a centre (extra pairs)


def stored(shape, dtype, rng, *, top=None, nonfinite=True):
    """Stored values with -9999, signed zeros, a float32 0.1, -1 and 5, NaN and infinities (floats), and
    optionally ``top`` (a NoData, or a value above the data) written on a few pixels."""
    dtype = np.dtype(dtype)
    k = int(np.prod(shape))
    if dtype.kind == "f":
        flat = rng.uniform(-0.2, 0.6, k).astype(dtype)
        flat[rng.choice(k, k // 4, replace=False)] = NODATA
        for v, n in ((-0.0, 5), (0.0, 5), (dtype.type(0.1), 9), (-1.0, 9), (5.0, 3)):
            flat[rng.choice(k, n, replace=False)] = v
        if nonfinite:
            for v, n in ((np.nan, 3), (np.inf, 2), (-np.inf, 2)):
                flat[rng.choice(k, n, replace=False)] = v
    else:
        info = np.iinfo(dtype)
        flat = rng.integers(max(info.min, -10), min(info.max, 6000), k).astype(dtype)
        flat[rng.choice(k, k // 4, replace=False)] = NODATA if info.min <= NODATA else info.max
        flat[rng.choice(k, 9, replace=False)] = 5
    if top is not None:
        flat[rng.choice(k, 4, replace=False)] = top
    return flat.reshape(shape)


CASES = [  # dtype, file NoData, scale, offset, value put on top (None: none), NaN/inf in the data
    (np.float32, NODATA, 1.0, 0.0, None, False),        # the product as documented: the stored maximum
    (np.float32, NODATA, 1.0, 0.0, None, True),         # NaN: the maximum over the valid values
    (np.float32, None, 1.0, 0.0, None, False),
    (np.float32, -1.0, 1.0, 0.0, None, False),
    (np.float32, 5.0, 1.0, 0.0, None, False),           # the file's NoData is the largest stored value
    (np.float32, 0.1, 1.0, 0.0, None, False),           # not a float32: equals no float32 (0.1f stays valid)
    (np.float32, float(np.float32(0.1)), 1.0, 0.0, None, False),
    (np.float32, float("nan"), 1.0, 0.0, None, False),
    (np.float32, 1e40, 1.0, 0.0, None, False),          # beyond float32
    (np.float32, 3.0e38, 1.0, 0.0, np.float32(3.0e38), False),
    (np.float32, None, 1.0, 0.0, np.inf, False),         # +inf on top, no NaN
    (np.float32, NODATA, 0.5, 0.01, None, False),
    (np.float32, NODATA, 0.5, 0.01, None, True),
    (np.float32, NODATA, 1.0, -0.25, None, False),
    (np.float32, NODATA, 2.0, 0.0, np.float32(1e38), False),   # the scaled maximum overflows: maximum of the rest
    (np.float32, NODATA, -0.5, 0.0, None, False),       # a negative scale (a file's own): not monotone increasing
    (np.float32, NODATA, 0.5, float("nan"), None, False),
    (np.float32, NODATA, 0.5, float("inf"), None, False),
    (np.float64, -1.0, 1.0, 0.0, None, True),
    (np.float64, NODATA, 1e300, 0.0, 1e10, False),      # overflow to inf
    (np.int16, 5.0, 1e-4, 0.0, None, False),
    (np.int16, None, 1e-4, 0.02, None, False),
    (np.int16, None, 1.0, 0.0, None, False),
    (np.int16, 32767.0, 1e-4, 0.0, 32767, False),
    (np.uint16, 65535.0, 1e-4, 0.0, 65535, False),      # the NoData on top: maximum over the valid values
    (np.uint16, 5.0, 1e-4, 0.0, None, False),
    (np.int32, NODATA, 1e-4, 0.0, None, False),
    (np.uint8, 5.0, 0.004, 0.0, None, False),
    (np.uint8, 255.0, 0.004, 0.0, 255, False),
]


def assert_same(got, expect):
    (v1, c1, m1), (v0, c0, m0) = got, expect
    assert v1.dtype == v0.dtype == np.float64 and c1.dtype == c0.dtype
    assert np.array_equal(v1.view(np.uint64), v0.view(np.uint64))   # bit for bit, signed zeros included
    assert np.array_equal(c1, c0)
    assert (m1 is None) == (m0 is None) and (m0 is None or (m1 == m0 and type(m1) is type(m0) is float))


@pytest.mark.parametrize("grid", ["fine", "coarse"])
@pytest.mark.parametrize("dtype, nodata, scale, offset, top, nonfinite", CASES)
def test_valid_values_equal_the_former_code(mappings, grid, dtype, nodata, scale, offset, top, nonfinite):
    m, shape = mappings[grid]
    rng = np.random.default_rng(zlib.crc32(f"{grid} {np.dtype(dtype).name} {nodata} {scale} {offset} {top} "
                                           f"{nonfinite}".encode()))
    for _ in range(3):
        arr = stored(shape, dtype, rng, top=top, nonfinite=nonfinite)
        with np.errstate(over="ignore", invalid="ignore"):
            expect = former_valid_values(arr, nodata, scale, offset, m)
            got = glass_modis._valid_values(arr, nodata, scale, offset, m)
        assert expect[0].size > 0
        assert_same(got, expect)


@pytest.mark.parametrize("grid", ["fine", "coarse"])
@pytest.mark.parametrize("fill, dtype, nodata", [(NODATA, np.float32, NODATA), (np.nan, np.float32, None),
                                                 (7.0, np.float32, 7.0), (65535, np.uint16, 65535.0),
                                                 (-np.inf, np.float64, None)])
def test_window_without_a_valid_pixel(mappings, grid, fill, dtype, nodata):
    m, shape = mappings[grid]
    arr = np.full(shape, fill, dtype)
    got = glass_modis._valid_values(arr, nodata, 1e-4 if dtype == np.uint16 else 1.0, 0.0, m)
    assert_same(got, former_valid_values(arr, nodata, 1e-4 if dtype == np.uint16 else 1.0, 0.0, m))
    assert got[2] is None and got[0].size == 0 and got[1].size == 0


def test_only_unused_pixels_valid_still_give_the_maximum(mappings):
    """The maximum is over every valid pixel of the window, the pixels that hold no cell included."""
    m, shape = mappings["fine"]
    arr = np.full(shape, NODATA, np.float32)
    unused = np.flatnonzero(~m.used)
    assert unused.size
    arr.reshape(-1)[unused[:3]] = [0.2, 1.7, 0.4]
    got = glass_modis._valid_values(arr, NODATA, 1.0, 0.0, m)
    assert_same(got, former_valid_values(arr, NODATA, 1.0, 0.0, m))
    assert got[2] == float(np.float32(1.7)) and got[0].size == 0


def test_used_mask_is_the_lookup_and_read_only(mappings):
    for m, _ in mappings.values():
        assert np.array_equal(m.used, m.lookup >= 0) and m.used is m.used
        with pytest.raises(ValueError):
            m.used[0] = not m.used[0]


# --------------------------------------------------------------------------------------------------------------
# _grid_key
# --------------------------------------------------------------------------------------------------------------
EXT = ('PROJCS["unknown",GEOGCS["unknown",DATUM["unknown",SPHEROID["unknown",6371007.181,0]],PRIMEM["Greenwich",0],'
       'UNIT["degree",0.0174532925199433]],PROJECTION["Sinusoidal"],PARAMETER["longitude_of_center",0],'
       'PARAMETER["false_easting",0],PARAMETER["false_northing",0],UNIT["metre",1],AXIS["Easting",EAST],'
       'AXIS["Northing",NORTH]{}]')
CRSS = {
    "sinu": SINU,
    "sinu_lon10": SINU.replace("+lon_0=0", "+lon_0=10"),
    "sinu_wkt": EXT.format(""),
    # the same parameters, differing only in a PROJ4 extension (which only the WKT1 names): other WKTs
    "sinu_ext": EXT.format(',EXTENSION["PROJ4","+proj=sinu +lon_0=0 +R=6371007.181 +units=m +no_defs"]'),
    "sinu_ext_null": EXT.format(',EXTENSION["PROJ4","+proj=sinu +lon_0=0 +R=6371007.181 +units=m +nadgrids=@null '
                                '+wktext +no_defs"]'),
    "wgs84": "EPSG:4326",
    "utm": "EPSG:32633",
    "none": None,
}


def write(path, crs, transform=None, shape=(6, 8), dtype="float32", values=None):
    h, w = shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype=dtype, crs=crs,
                       transform=transform or from_origin(-1_000_000, 1_000_000, 250_000, 250_000),
                       nodata=NODATA) as ds:
        ds.write(np.full(shape, 0.25, dtype) if values is None else values, 1)
    return path


@pytest.fixture(scope="module")
def crs_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crs")
    return {name: write(tmp / f"{name}.tif", crs) for name, crs in CRSS.items()}


def test_grid_key_is_the_former_key(crs_files):
    glass_modis._WKT_OF.clear()
    formers = set()
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", GDAL_PAM_ENABLED="NO"):
        for _ in range(2):  # first the WKT exported, then remembered
            for name, path in crs_files.items():
                with rasterio.open(path) as ds:
                    key, former = glass_modis._grid_key(ds), former_grid_key(ds)
                assert key == former and repr(key) == repr(former), name
                formers.add(former[0])
    # one WKT remembered per CRS the files hold (a GeoTIFF keeps no PROJ4 extension: fewer than written)
    assert len(glass_modis._WKT_OF) == len(formers - {None}) >= 4


def test_same_transform_other_crs_is_another_grid(crs_files):
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", GDAL_PAM_ENABLED="NO"):
        keys, formers = {}, {}
        for name, path in crs_files.items():
            with rasterio.open(path) as ds:
                keys[name], formers[name] = glass_modis._grid_key(ds), former_grid_key(ds)
    assert len({k[1:] for k in keys.values()}) == 1                      # one geotransform and size
    distinct = ("sinu", "sinu_lon10", "wgs84", "utm", "none")
    assert len({keys[n] for n in distinct}) == len(distinct)             # every CRS its own grid
    for a in keys:                                                       # grouped as the former keys group
        for b in keys:
            assert (keys[a] == keys[b]) == (formers[a] == formers[b]), (a, b)


def test_two_files_of_one_day_same_transform_other_crs_are_two_grids(tmp_path):
    """Same geotransform and size, sinusoidal CRSs 10 degrees apart: two grids (read and averaged), whereas
    the same CRS twice is one file twice (an error)."""
    dom = Domain.from_bounds(-10.0, 10.0, -10.0, 20.0, res=5.0)  # inside both rasters
    t = from_origin(-2_500_000, 1_200_000, 100_000, 100_000)
    a = write(tmp_path / "GLASS_MODIS_SM.A2010182.a.tif", SINU, t, (24, 50), values=np.full((24, 50), 0.2,
                                                                                            np.float32))
    b = write(tmp_path / "GLASS_MODIS_SM.A2010182.b.tif", CRSS["sinu_lon10"], t, (24, 50),
              values=np.full((24, 50), 0.4, np.float32))
    da = glass_modis.read_glass_modis_sm(tmp_path, "2010-07-01", "2010-07-01", dom, progress=False)
    v = da.values[0]
    assert da.attrs["n_files"] == 2 and np.isfinite(v).all()
    assert ((v > 0.2) & (v < 0.4)).all()  # every cell averages pixels of both files
    write(b, SINU, t, (24, 50))  # the same CRS: the same area twice
    with pytest.raises(DuplicateFileError) as e:
        glass_modis.read_glass_modis_sm(tmp_path, "2010-07-01", "2010-07-01", dom, progress=False)
    assert str(a) in str(e.value) and str(b) in str(e.value)


def test_wkt_remembered_by_wkt2_is_the_crs_wkt():
    glass_modis._WKT_OF.clear()
    crss = {name: CRS.from_user_input(c) for name, c in CRSS.items() if c is not None}
    for crs in crss.values():
        assert glass_modis._crs_wkt(crs) == crs.wkt
        again = CRS.from_wkt(crs.to_wkt())  # another object, its WKT2 remembered (or not): its own WKT
        assert glass_modis._crs_wkt(again) == again.wkt
    # CRSs whose WKT1 differs only in a PROJ4 extension (kept by a CRS object, not by a GeoTIFF) stay apart
    wkts = [glass_modis._crs_wkt(crss[n]) for n in ("sinu_wkt", "sinu_ext", "sinu_ext_null")]
    assert len(set(wkts)) == 3 and wkts == [crss[n].wkt for n in ("sinu_wkt", "sinu_ext", "sinu_ext_null")]
    # and a GDAL CENTER_LONG extension (PROJJSON drops it; GDAL exports such a CRS as its WKT1 in any form)
    geo = ('GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],'
           'UNIT["degree",0.0174532925199433]{}]')
    pair = [CRS.from_wkt(geo.format(e)) for e in ("", ',EXTENSION["CENTER_LONG","180"]')]
    wkts = [glass_modis._crs_wkt(c) for c in pair]
    assert wkts[0] != wkts[1] and wkts == [c.wkt for c in pair]
