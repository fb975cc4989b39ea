"""GLASS-MODIS labels: the per-file aggregation over valid pixels only (glass_modis._valid_values) is bit-identical
to the straightforward one (every mapped pixel, float64 physical values with NaN where invalid, zeros added for
the invalid ones), for every storage the reader accepts and for mappings with cells that hold no pixel centre."""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from glass_sm.grid import Domain
from glass_sm.io import glass_modis

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import fixtures_real as fx  # noqa: E402

# rasterio 1.4's from_origin uses affine's deprecated ``*``; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")

SINU = fx.SINU
DOM = Domain.from_bounds(-12.0, 48.0, -30.0, 30.0, res=3.0)   # 20 x 20 cells


def reference(arr, nodata, scale, offset, mapping, size):
    """The aggregation as the reader did it before (per file, every mapped pixel): sums, counts, maximum."""
    stored = arr.ravel().astype(np.float64)
    valid = np.isfinite(stored) & (stored != glass_modis.NODATA)
    if nodata is not None and np.isfinite(nodata):
        valid &= stored != float(nodata)
    values = stored * scale + offset if (scale != 1.0 or offset != 0.0) else stored
    values = np.where(valid, values, np.nan)
    ok = valid[mapping.pix]
    s = np.bincount(mapping.cell, weights=np.where(ok, values[mapping.pix], 0.0), minlength=size)
    n = np.bincount(mapping.cell, weights=ok, minlength=size)
    finite = values[np.isfinite(values)]
    return s, n, (float(finite.max()) if finite.size else None)


def fast(arr, nodata, scale, offset, mapping, size):
    """The reader's path: valid pixels only."""
    values, cells, vmax = glass_modis._valid_values(arr, nodata, scale, offset, mapping)
    n = np.zeros(size)
    n += np.bincount(cells, minlength=size)
    return np.bincount(cells, weights=values, minlength=size), n, vmax


def mapping_of(tmp_path, pixel_m: float, name: str):
    """The mapping of a sinusoidal grid of ``pixel_m`` pixels over DOM (and its window's shape)."""
    return fx.sinusoidal_mapping(tmp_path, pixel_m, name, DOM)


@pytest.fixture(scope="module")
def mappings(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mappings")
    fine = mapping_of(tmp, 100_000.0, "fine")      # ~3 x 3 pixels per cell: every cell holds pixel centres
    coarse = mapping_of(tmp, 500_000.0, "coarse")  # pixels coarser than the cells: cells without a centre
    return {"fine": fine, "coarse": coarse}


def test_mapping_order_premises(mappings):
    """What the bit-identity rests on: the pixel-centre pairs come in pixel order, then one pair per cell that
    holds no centre, those cells being reached by no other pair."""
    fine, _ = mappings["fine"]
    coarse, _ = mappings["coarse"]
    assert fine.extra_pix.size == 0 and coarse.extra_pix.size > 0
    for m in (fine, coarse):
        main = m.lookup >= 0
        assert np.array_equal(m.pix[:main.sum()], np.flatnonzero(main))
        assert np.unique(m.extra_cell).size == m.extra_cell.size
        assert not np.isin(m.extra_cell, m.lookup[main]).any()
        np.testing.assert_array_equal(m.n_total, np.bincount(m.cell, minlength=DOM.size))


def _stored(shape, dtype, rng):
    """Stored values with every kind of invalid value the reader knows, and signed zeros."""
    if np.dtype(dtype).kind == "f":
        a = rng.uniform(0.0, 0.6, shape).astype(dtype)
        flat = a.reshape(-1)
        k = flat.size
        flat[rng.choice(k, k // 5, replace=False)] = -9999.0
        flat[rng.choice(k, 7, replace=False)] = np.nan
        flat[rng.choice(k, 3, replace=False)] = np.inf
        flat[rng.choice(k, 3, replace=False)] = -np.inf
        flat[rng.choice(k, 5, replace=False)] = -0.0
        flat[rng.choice(k, 9, replace=False)] = dtype(0.1)     # a float32 0.1 (not the float64 0.1)
        flat[rng.choice(k, 9, replace=False)] = dtype(-1.0)
        return a
    info = np.iinfo(dtype)
    a = rng.integers(max(info.min, -10), min(info.max, 6000), shape).astype(dtype)
    flat = a.reshape(-1)
    flat[rng.choice(flat.size, flat.size // 5, replace=False)] = -9999 if info.min < -9999 else info.max
    flat[rng.choice(flat.size, 9, replace=False)] = 5
    return a


CASES = [  # dtype, declared NoData, scale, offset
    (np.float32, -9999.0, 1.0, 0.0),
    (np.float32, None, 1.0, 0.0),
    (np.float32, -1.0, 1.0, 0.0),
    (np.float32, 0.1, 1.0, 0.0),            # not a float32: equals no float32 value (0.1f stays valid)
    (np.float32, float(np.float32(0.1)), 1.0, 0.0),
    (np.float32, float("nan"), 1.0, 0.0),
    (np.float32, 1e40, 1.0, 0.0),           # beyond float32
    (np.float32, -9999.0, 0.5, 0.01),
    (np.float64, -1.0, 1.0, 0.0),
    (np.int16, 5.0, 1e-4, 0.0),
    (np.int16, None, 1e-4, 0.02),
    (np.uint16, 5.0, 1e-4, 0.0),
    (np.int32, -9999.0, 1e-4, 0.0),
    (np.uint8, 5.0, 0.004, 0.0),
]


@pytest.mark.parametrize("grid", ["fine", "coarse"])
@pytest.mark.parametrize("dtype, nodata, scale, offset", CASES)
def test_valid_pixel_aggregation_is_bit_identical(mappings, grid, dtype, nodata, scale, offset):
    m, shape = mappings[grid]
    rng = np.random.default_rng(zlib.crc32(f"{grid} {np.dtype(dtype).name} {nodata} {scale} {offset}".encode()))
    for _ in range(3):
        arr = _stored(shape, dtype, rng)
        s0, n0, v0 = reference(arr, nodata, scale, offset, m, DOM.size)
        s1, n1, v1 = fast(arr, nodata, scale, offset, m, DOM.size)
        assert s1.dtype == s0.dtype == np.float64 and n1.dtype == n0.dtype
        assert np.array_equal(s0.view(np.uint64), s1.view(np.uint64))   # bit for bit, signed zeros included
        assert np.array_equal(n0, n1) and n0.sum() > 0
        assert v0 == v1


def test_no_valid_pixel_gives_no_maximum(mappings):
    m, shape = mappings["coarse"]
    arr = np.full(shape, -9999.0, np.float32)
    values, cells, vmax = glass_modis._valid_values(arr, -9999.0, 1.0, 0.0, m)
    assert vmax is None and values.size == 0 and cells.size == 0


def test_percent_file_is_converted_on_the_used_pixels_exactly(tmp_path):
    """A file tagged % is divided by 100 (reader's units policy): the label equals the reference mean of the
    converted values bit for bit."""
    dom = Domain.from_bounds(0.0, 6.0, 0.0, 6.0, res=3.0)
    rng = np.random.default_rng(3)
    a = rng.uniform(5.0, 45.0, (60, 60)).astype(np.float32)
    a[:7] = -9999.0
    path = tmp_path / "2004" / glass_modis.glass_modis_filename(np.datetime64("2004-01-01").astype(object))
    path.parent.mkdir(parents=True)
    with rasterio.open(path, "w", driver="GTiff", width=60, height=60, count=1, dtype="float32", crs="EPSG:4326",
                       transform=from_origin(0.0, 6.0, 0.1, 0.1), nodata=-9999.0) as ds:
        ds.write(a, 1)
        ds.update_tags(1, units="%")
    da = glass_modis.read_glass_modis_sm(tmp_path, "2004-01-01", "2004-01-01", dom, progress=False)
    with rasterio.open(path) as ds:
        m = glass_modis._build_mapping(ds, dom, path, 1)
    stored = a.ravel().astype(np.float64)
    valid = stored != -9999.0
    values = np.where(valid, stored, np.nan) / 100.0
    ok = valid[m.pix]
    s = np.bincount(m.cell, weights=np.where(ok, values[m.pix], 0.0), minlength=dom.size)
    n = np.bincount(m.cell, weights=ok, minlength=dom.size)
    expect = (s / n).astype(np.float32).reshape(dom.shape)
    assert np.isfinite(expect).all()
    assert np.array_equal(da.values[0].view(np.uint32), expect.view(np.uint32))
