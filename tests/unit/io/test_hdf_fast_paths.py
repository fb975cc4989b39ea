"""The GLASS HDF4 readers' fast paths give exactly what the plain ones give: the median of the units checks,
pyhdf's attributes / dataset table / slab read, the composite schedule and the platform of a day."""

import warnings

import numpy as np
import pandas as pd
import pytest
from pyhdf.SD import SD, SDC

from glass_sm import platforms
from glass_sm.io import errors
from glass_sm.io import glass_hdf as gh
from glass_sm.io.glass_products import _schedule_by_timestamps, composite_schedule


# ----------------------------------------------------------------------------------------------------------
# errors._median
# ----------------------------------------------------------------------------------------------------------
def _same(a, b):
    return type(a) is type(b) and (a == b or (np.isnan(a) and np.isnan(b))) and np.signbit(a) == np.signbit(b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_median_equals_numpy(dtype):
    rng = np.random.default_rng(7)
    sizes = list(range(1, 25)) + [100, 101, 1944, 1945]
    for n in sizes:
        for rep in range(12):
            a = (rng.normal(size=n) * [1.0, 300.0, 1e30][rep % 3] - (50.0 if rep % 4 == 0 else 0.0)).astype(dtype)
            if rep % 5 == 1:
                a = np.round(a)  # ties
            if rep % 6 == 2:
                a[rng.random(n) < 0.4] = -0.0
                a[rng.random(n) < 0.3] = 0.0
            if rep % 7 == 3 and n > 2:
                a[0], a[-1] = np.inf, -np.inf
            got, ref = errors._median(a), np.median(a)
            assert _same(got, ref), (dtype, n, rep, got, ref)


def test_median_sizes_one_two_and_other_types():
    assert _same(errors._median(np.array([-3.5], np.float32)), np.median(np.array([-3.5], np.float32)))
    assert _same(errors._median(np.array([1.0, 2.0], np.float32)), np.float32(1.5))
    assert _same(errors._median(np.array([np.inf, 1.0])), np.median(np.array([np.inf, 1.0])))
    with np.errstate(invalid="ignore"):  # inf - inf: numpy's NaN, quietly
        assert _same(errors._median(np.array([np.inf, -np.inf])), np.median(np.array([np.inf, -np.inf])))
    for a in (np.arange(4), np.arange(5, dtype=np.int16), np.array([1.0, 2.0], np.float16)):
        assert _same(errors._median(a), np.median(a))


def test_median_overflow_warns_as_numpy():
    a = np.array([3e38, 3.2e38], np.float32)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        got = errors._median(a)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        ref = np.median(a)
    assert _same(got, ref) and [str(w.message) for w in ours] == [str(w.message) for w in theirs]


def test_units_checks_messages_print_numpys_median():
    v = np.array([[20.5, 21.0], [np.nan, 22.25]], np.float32)
    with pytest.raises(errors.UnitsError, match=f"median value is {np.median(v[np.isfinite(v)]):.2f}"):
        errors.check_units(v, {"units": "K"}, "K", "f.hdf", "LST")
    hot = np.array([30000.0, 30010.0, np.nan, 29990.0, 30001.0], np.float64)
    with pytest.raises(errors.UnitsError, match=f"median value of {np.median(hot[np.isfinite(hot)]):.6g}"):
        errors.check_units_upper_bound(hot, "K", "f.hdf", "LST")
    probe = errors.units_probe(v + 273.15, "K")
    assert probe.dtype == np.float32 and probe[0] == np.median((v + 273.15)[np.isfinite(v)])


# ----------------------------------------------------------------------------------------------------------
# pyhdf: attributes of every numeric type, the dataset table, the slab read
# ----------------------------------------------------------------------------------------------------------
_TYPES = [(SDC.INT8, np.int8), (SDC.UINT8, np.uint8), (SDC.UCHAR8, np.uint8), (SDC.INT16, np.int16),
          (SDC.UINT16, np.uint16), (SDC.INT32, np.int32), (SDC.UINT32, np.uint32), (SDC.FLOAT32, np.float32),
          (SDC.FLOAT64, np.float64)]


def _write(path):
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    sd.attr("Satellite").set(SDC.CHAR8, "NOAA-14")
    sd.attr("GridResolution").set(SDC.FLOAT64, 0.05)
    rng = np.random.default_rng(3)
    for k, (kind, dt) in enumerate(_TYPES):
        name = f"v{k}"
        sds = sd.create(name, SDC.INT16 if kind == SDC.UCHAR8 else kind, (6, 7 + k))
        info = np.iinfo(dt) if np.issubdtype(dt, np.integer) else None
        data = (rng.integers(info.min, info.max, (6, 7 + k), endpoint=True) if info is not None
                else rng.normal(size=(6, 7 + k)) * 1e3).astype(np.int16 if kind == SDC.UCHAR8 else dt)
        sds[:] = data
        one = [int(info.max)] if info is not None else [0.1]
        many = [int(info.min), 0, int(info.max)] if info is not None else [-1.5e-7, 0.1, 3.0e30]
        sds.attr("one").set(kind, one)
        sds.attr("many").set(kind, many)
        sds.attr("units").set(SDC.CHAR8, "K")
        sds.endaccess()
    sds = sd.create("line", SDC.FLOAT32, (5,))
    sds[:] = np.arange(5, dtype=np.float32)
    sds.endaccess()
    sd.end()


def test_attributes_of_every_type_equal_pyhdf(tmp_path):
    path = tmp_path / "types.hdf"
    _write(path)
    sd = SD(str(path), SDC.READ)
    try:
        assert gh.hdf_attributes(sd) == sd.attributes()
        for name in sd.datasets():
            sds = sd.select(name)
            ours, ref = gh.hdf_attributes(sds), sds.attributes()
            natts = sds.info()[4]
            assert gh.hdf_attributes(sds, natts) == ref
            sds.endaccess()
            assert ours == ref and list(ours) == list(ref)
            for k in ref:  # same Python types (int / float / list), not only equal values
                assert type(ours[k]) is type(ref[k])
                if isinstance(ref[k], list):
                    assert [type(x) for x in ours[k]] == [type(x) for x in ref[k]]
    finally:
        sd.end()


def test_sds_table_equals_datasets_and_slab_read_equals_pyhdf(tmp_path):
    path = tmp_path / "types.hdf"
    _write(path)
    sd = SD(str(path), SDC.READ)
    try:
        table, ref = gh._sds_table(sd), sd.datasets()
        assert list(table) == list(ref)
        assert {k: v[0] for k, v in table.items()} == {k: v[1] for k, v in ref.items()}
        assert {k: v[1] for k, v in table.items()} == {k: v[2] for k, v in ref.items()}
        for name, (shape, kind, _) in table.items():
            if len(shape) != 2:
                continue
            r0, r1, c0, c1 = 1, shape[0] - 1, 2, shape[1]
            sds = sd.select(name)
            want = np.asarray(sds[r0:r1, c0:c1])
            sds.endaccess()
            got = gh._hdfext._SDreaddata_0(sd.select(name)._id, kind, [r0, c0], [r1 - r0, c1 - c0], [1, 1])
            assert got.dtype == want.dtype and np.array_equal(got, want)
    finally:
        sd.end()


def test_sds_table_falls_back_to_pyhdf(monkeypatch, tmp_path):
    path = tmp_path / "types.hdf"
    _write(path)
    real = gh._hdfext

    class Broken:  # pyhdf's C module with a failing SDgetinfo, for the fast table only
        def __getattr__(self, name):
            if name == "SDgetinfo":
                raise TypeError("no table")
            return getattr(real, name)

    monkeypatch.setattr(gh, "_hdfext", Broken())
    sd = SD(str(path), SDC.READ)
    try:
        table, ref = gh._sds_table(sd), sd.datasets()
    finally:
        sd.end()
    assert list(table) == list(ref)
    assert {k: v[0] for k, v in table.items()} == {k: v[1] for k, v in ref.items()}
    assert all(v[1] is None and v[2] is None for v in table.values())


# ----------------------------------------------------------------------------------------------------------
# composite schedule and platforms
# ----------------------------------------------------------------------------------------------------------
def _schedule_reference(start, end, c):
    """The schedule built one Timestamp at a time (the definition, glass_products._schedule_by_timestamps)."""
    return _schedule_by_timestamps(pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize(), c)


def test_composite_schedule_equals_reference():
    rng = np.random.default_rng(11)
    cases = [("2020-01-01", "2020-02-26", 8), ("2019-12-01", "2021-01-10", 8), ("2020-12-30", "2020-12-31", 8),
             ("2020-01-05", "2020-01-06", 8), ("1700-03-01", "1702-02-01", 16), ("2020-01-01 13:00", "2020-01-09", 8),
             (pd.Timestamp("2020-01-01").as_unit("s"), pd.Timestamp("2020-12-31").as_unit("ns"), 5)]
    for _ in range(60):
        a = pd.Timestamp("1981-01-01") + pd.Timedelta(days=int(rng.integers(0, 15000)))
        cases.append((a, a + pd.Timedelta(days=int(rng.integers(-3, 900))), int(rng.choice([2, 8, 16, 365, 400]))))
    cases += [(pd.Timestamp("2262-01-01").as_unit("ns"), pd.Timestamp("2262-04-11").as_unit("ns"), 8),
              (pd.Timestamp("1677-09-22").as_unit("ns"), pd.Timestamp("1678-02-01").as_unit("ns"), 8)]
    for a, b, c in cases:
        got, ref = composite_schedule(a, b, c), _schedule_reference(a, b, c)
        assert got.equals(ref) and got.dtype == ref.dtype and got.name == ref.name and got.freq == ref.freq, (a, b, c)
    with pytest.raises(ValueError):
        composite_schedule(cases[0][0], cases[0][1], 0)
    for a, b in (("2020-01-01T00:00+02:00", "2020-03-01"), ("2020-01-01", "2020-03-01T00:00Z")):
        with pytest.raises(TypeError) as ours:
            composite_schedule(a, b, 8)
        with pytest.raises(TypeError) as ref:
            _schedule_reference(a, b, 8)
        assert str(ours.value) == str(ref.value)


def test_days_of_a_datetimeindex_equal_normalize_even_at_the_extremes():
    extremes = pd.DatetimeIndex([pd.Timestamp.min, pd.Timestamp("1677-09-22 05:00"), pd.Timestamp.max]).as_unit("ns")
    for idx in (extremes, extremes[1:2], pd.DatetimeIndex(["1500-01-01 13:00", None]).as_unit("s"),
                pd.date_range("1969-12-30", "1970-01-02", freq="5h").as_unit("ms"),
                pd.date_range("2020-01-01", "2020-03-04", freq="D")):
        try:
            ref = idx.normalize()
        except ValueError as e:  # pandas cannot floor the ns extremes: neither can we
            with pytest.raises(ValueError, match=str(e)):
                platforms._as_days(idx)
            continue
        got = platforms._as_days(idx)
        assert got.equals(ref) and got.dtype == ref.dtype


def test_platform_of_datetimeindex_equals_generic_path():
    for idx in (pd.date_range("1981-08-20", "1981-08-30", freq="6h"),
                pd.date_range("1985-01-01", "2012-01-01", freq="13D").as_unit("ns"),
                pd.DatetimeIndex(["1994-12-31 23:00", "1995-01-01", None]).as_unit("s"),
                pd.date_range("1960-01-01", "1960-01-03", freq="7h"), pd.DatetimeIndex([])):
        as_list = [str(t) if t is not pd.NaT else None for t in idx]
        assert np.array_equal(platforms.platform_of(idx), platforms.platform_of(np.array(idx.to_numpy())))
        assert np.array_equal(platforms.platform_index(idx), platforms.platform_index(idx.to_numpy()))
        ours, ref = platforms.equator_crossing_time(idx), platforms.equator_crossing_time(idx.to_numpy())
        assert np.array_equal(ours, ref, equal_nan=True)
        if None not in as_list:
            assert platforms.platform_of(idx).tolist() == platforms.platform_of(as_list).tolist()
