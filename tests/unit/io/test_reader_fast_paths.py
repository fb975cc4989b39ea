"""The readers' fused per-cell paths (issue 17, the ingest's throughput) give exactly what the plain ones gave:
GLASS HDF unpacking and QC decoding, the units checks on one statistic (errors.units_probe), ERA5-Land's
copy-free reordering (era5land._take) and its cache-sized bilinear regrid, each against the former code."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from glass_sm.grid import Domain
from glass_sm.io import era5land, glass_hdf
from glass_sm.io.errors import UnitsError, check_units, check_units_on_probe, check_units_upper_bound, units_probe

RNG = np.random.default_rng(17)


# ----------------------------------------------------------------------------------------------------------
# GLASS HDF
# ----------------------------------------------------------------------------------------------------------
def unpack_reference(stored, packing):
    """glass_hdf._unpack's values before the in-place rewrite (the invalid mask written as one expression)."""
    stored = np.asarray(stored)
    lo, hi = packing.valid
    bad = (np.isin(stored, list(packing.fills)) | (lo is not None and stored < lo) | (hi is not None and stored > hi)
           | (packing.negative_invalid and stored < 0)
           | (not np.issubdtype(stored.dtype, np.integer) and ~np.isfinite(stored)))
    if packing.calibrated:
        out = (stored.astype(np.float64) - packing.offset) * packing.scale
    else:
        out = stored.astype(np.float64) * packing.scale + packing.offset
    out = out.astype(np.float32)
    out[np.broadcast_to(bad, out.shape)] = np.nan
    return out


def stored_values(dtype, n=4000):
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return RNG.integers(info.min, info.max, n, endpoint=True).astype(dtype)
    v = RNG.normal(0, 1e4, n).astype(dtype)
    v[::17], v[::19] = np.nan, np.inf
    return v


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.uint8, np.int32, np.float32, np.float64])
def test_unpack_equals_reference(dtype):
    st = stored_values(dtype)
    for calibrated in (False, True):
        for fills in ((), (0,), (0, 255)):
            for valid in ((None, None), (0, 100), (-5, None)):
                for neg in (False, True):
                    p = glass_hdf.Packing(1e-4 if calibrated else 0.01, 3.5, "file", calibrated, fills, "x", valid,
                                          "x", neg)
                    a, b = glass_hdf._unpack(st, p), unpack_reference(st, p)
                    assert a.dtype == np.float32 and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32])
def test_qc_bad_equals_int64_decoding(dtype):
    st = stored_values(dtype)
    q = st.astype(np.int64)
    for kind, keeps in (("level", (0, 1, 2)), ("bits", (1, 3))):
        rules = glass_hdf.ProductRules("X", 1, "1", 1.0, 0.0, None, False, (), (0.0, 1.0), kind, "x")
        for keep in keeps:
            for attrs in ({}, {"_FillValue": 255}, {"fillvalue": -1}):
                ref = ((q & glass_hdf.QC_LEVEL_BITS) > keep) if kind == "level" else ((q & keep) != 0)
                for f in attrs.values():
                    ref |= st == f
                np.testing.assert_array_equal(glass_hdf._qc_bad(st, attrs, rules, keep), ref)


def outcome(fn, *args, **kw):
    """What a check does: ('raise', message) or ('ok', whether it returned its input, the values returned)."""
    try:
        out = fn(*args, **kw)
    except UnitsError as e:
        return ("raise", str(e))
    return ("ok", out is args[0], None if out is None else np.asarray(out).tobytes())


@pytest.mark.parametrize("units, attrs, centre, spread", [
    ("K", {"units": "K"}, 290.0, 20.0), ("K", {}, 290.0, 20.0), ("K", {"units": "K"}, 30.0, 5.0),   # degC as K
    ("K", {"units": "K"}, 30000.0, 50.0), ("K", {"units": "degC"}, 20.0, 10.0),                     # packed; degC
    ("K", {"units": "degC"}, 290.0, 5.0), ("K", {"units": "m"}, 290.0, 5.0),                         # K as degC; bad
    ("1", {}, 0.3, 0.1), ("1", {"units": "1"}, 30.0, 10.0), ("1", {"units": "%"}, 30.0, 10.0)])
@pytest.mark.parametrize("n_finite", [0, 1, 2, 501])
def test_units_probe_decides_as_the_values(units, attrs, centre, spread, n_finite):
    v = np.full(800, np.nan, np.float32)
    v[:n_finite] = RNG.normal(centre, spread, n_finite).astype(np.float32)
    RNG.shuffle(v)
    probe = units_probe(v, units)
    assert probe.dtype == v.dtype and probe.size == min(n_finite, 1)
    full = outcome(check_units, v, attrs, units, "f.hdf", "X")
    short = outcome(check_units, probe, attrs, units, "f.hdf", "X")
    assert full[:2] == short[:2]  # the same message, or both return their input, or both convert
    if full[1] is True:  # the reader checks the upper bound on the probe when nothing was converted
        assert outcome(check_units_upper_bound, v, units, "f.hdf", "X", how="h") == \
            outcome(check_units_upper_bound, probe, units, "f.hdf", "X", how="h")
    # the readers' entry point: the same message, or the same values (the same object when not converted)
    assert outcome(lambda x: check_units_on_probe(x, attrs, units, "f.hdf", "X")[0], v) == full


# ----------------------------------------------------------------------------------------------------------
# ERA5-Land
# ----------------------------------------------------------------------------------------------------------
def test_take_returns_the_input_for_the_identity_only():
    a = np.arange(24.0).reshape(4, 3, 2)
    for axis in range(3):
        n = a.shape[axis]
        assert era5land._take(a, np.arange(n), axis) is a
        for idx in (np.arange(n)[::-1], np.arange(n - 1), np.r_[np.arange(n), 0]):
            np.testing.assert_array_equal(era5land._take(a, idx, axis), np.take(a, idx, axis=axis))


def regrid_reference(flat, lat, lon, tlat, tlon):
    """to_product_grid's bilinear loop before the rewrite (valid corners added with ``where``)."""
    y0, y1, wy = era5land._linear_weights(lat, tlat)
    x0, x1, wx = era5land._linear_weights(lon, tlon)
    corners = [(y0, x0, (1 - wy)[:, None] * (1 - wx)[None, :]), (y0, x1, (1 - wy)[:, None] * wx[None, :]),
               (y1, x0, wy[:, None] * (1 - wx)[None, :]), (y1, x1, wy[:, None] * wx[None, :])]
    block = flat.reshape(flat.shape[0], -1)
    num = np.zeros((block.shape[0], tlat.size * tlon.size))
    den = np.zeros_like(num)
    for iy, ix, w in corners:
        idx, w = (iy[:, None] * lon.size + ix[None, :]).ravel(), w.ravel()
        v = np.take(block, idx, axis=1)
        ok = np.isfinite(v)
        if np.isfinite(w).all():
            with np.errstate(invalid="ignore"):
                np.add(num, v * w, out=num, where=ok)
            np.add(den, np.broadcast_to(w, den.shape), out=den, where=ok)
        else:
            num += np.where(ok, v, 0.0) * w
            den += ok * w
    with np.errstate(invalid="ignore", divide="ignore"):
        res = num / den
    res[den <= 1e-9] = np.nan
    return res.astype(np.float32).reshape(flat.shape[0], tlat.size, tlon.size)


@pytest.mark.parametrize("mask", ["none", "fixed", "varying", "signed_zeros"])
@pytest.mark.parametrize("repeated_lon", [False, True])
def test_bilinear_regrid_equals_reference(mask, repeated_lon, monkeypatch):
    dom = Domain.from_bounds(-9.0, 18.0, -30.0, 9.0, 0.75)  # 36 x 52 cells
    lat = np.arange(dom.north + 3.0, dom.south - 3.0, -2.0)
    lon = np.arange(dom.west - 3.0, dom.east + 3.0, 2.0)
    if repeated_lon:
        lon = np.sort(np.r_[lon, lon[3]])  # two points at one longitude: non-finite weights
    v = RNG.random((9, lat.size, lon.size)).astype(np.float32)
    if mask == "fixed":
        v[:, RNG.random((lat.size, lon.size)) < 0.4] = np.nan
    elif mask == "varying":
        v[RNG.random(v.shape) < 0.3] = np.nan
    elif mask == "signed_zeros":
        v[..., ::3] = -0.0
        v[0, 0, 0] = np.inf
    da = xr.DataArray(v, dims=("time", "lat", "lon"), coords={"lat": lat, "lon": lon}, name="x")
    ref = regrid_reference(v, lat, lon, dom.lat, dom.lon)
    for cells in (era5land._REGRID_CELLS, 2 * dom.size + 1):  # whole blocks, then 2 steps at a time
        monkeypatch.setattr(era5land, "_REGRID_CELLS", cells)
        out = era5land.to_product_grid(da, dom)
        assert out.dtype == np.float32 and out.values.tobytes() == ref.tobytes()
