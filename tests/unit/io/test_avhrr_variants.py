"""GLASS AVHRR readers on every file variant the evidence allows (``../shared/REAL_FORMATS.md``, issue 14).

One section per rule: cadence (8-day albedo composites, any version), composites -> daily (closed forms), QC
layers and their meaning, fallbacks for absent attributes (scale, fill spellings, -1 invalid, plausibility,
units upper bound), platform without a ``Satellite`` attribute, and the grid from ``StructMetadata.0``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import fixtures_real as fx  # noqa: E402

from glass_sm.grid import Domain  # noqa: E402
from glass_sm.io import glass_avhrr as ga  # noqa: E402
from glass_sm.io.errors import (  # noqa: E402
    DataWarning,
    GridMismatchError,
    TimeGapError,
    UnitsError,
    check_units_upper_bound,
    fill_attribute,
)

TILE = Domain.from_bounds(40.0, 41.0, -100.0, -98.0)  # the fixtures' default sub-tile (NW corner 41 N 100 W)
CDAY = pd.Timestamp("1999-02-02")  # day of year 33: an albedo composite date
SW = ("ABD_BSA_shortwave", "ABD_WSA_shortwave")


def _alb(value=0.2, shape=TILE.shape):
    return {n: np.full(shape, value, float) for n in SW}


def _read(root, day=CDAY, **kw):
    kw.setdefault("progress", False)
    return ga.read_glass_albedo(root, day, day, TILE, **kw)


# ----------------------------------------------------------------------------------------------------------
# 1. cadence: 8-day composites at day of year 1, 9, ..., 361; versions V\d+
# ----------------------------------------------------------------------------------------------------------
def test_composite_schedule_days_of_year():
    s = ga.composite_schedule("1999-01-01", "1999-12-31", 8)
    assert len(s) == 46 and list(s.day_of_year[:3]) == [1, 9, 17] and s.day_of_year[-1] == 361
    leap = ga.composite_schedule("2000-12-20", "2001-01-10", 8)
    assert [d.strftime("%Y-%j") for d in leap] == ["2000-361", "2001-001", "2001-009"]  # restarts on 1 January
    assert len(ga.composite_schedule("1999-01-02", "1999-01-08", 8)) == 0
    assert len(ga.composite_schedule("1999-01-01", "1999-01-31", 1)) == 31
    assert ga.CADENCE_DAYS == {"albedo": 8, "lst": 1}


def test_find_files_expects_composite_days_only(tmp_path):
    """The fault of issue 14: with daily expectations 7 of 8 albedo days were reported as gaps."""
    sched = ga.composite_schedule("1999-01-01", "1999-03-31", 8)
    for d in sched.delete(3):
        fx.write_glass_hdf(fx.glass_path(tmp_path, "albedo", d), "albedo", _alb(shape=(2, 2)))
    s = ga.find_glass_files(tmp_path, "albedo", "1999-01-01", "1999-03-31", allow_gaps=True)
    assert list(s.index) == list(sched) and s.isna().sum() == 1 and s.iloc[3] is None
    with pytest.raises(TimeGapError, match=r"has no GLASS02B05 file for 1 day\(s\): 1999-01-25 in"):
        ga.find_glass_files(tmp_path, "albedo", "1999-01-01", "1999-03-31")
    full = ga.find_glass_files(tmp_path, "albedo", "1999-02-01", "1999-03-31")  # no gap in this part
    assert full.notna().all() and full.index[0] == pd.Timestamp("1999-02-02")


def test_off_schedule_files_warned_once_and_ignored(tmp_path):
    fx.write_glass_hdf(fx.glass_path(tmp_path, "albedo", "1999-01-09"), "albedo", _alb(shape=(2, 2)))
    for d in pd.date_range("1999-01-02", "1999-01-05"):
        fx.write_glass_hdf(fx.glass_path(tmp_path, "albedo", d), "albedo", _alb(shape=(2, 2)))
    with pytest.warns(DataWarning, match=r"4 GLASS02B05 file\(s\) at dates off the 8-day schedule .*cadence_days=1"):
        s = ga.find_glass_files(tmp_path, "albedo", "1999-01-01", "1999-01-16", allow_gaps=True)
    assert s.notna().tolist() == [False, True]
    daily = ga.find_glass_files(tmp_path, "albedo", "1999-01-02", "1999-01-05", cadence_days=1)
    assert len(daily) == 4


@pytest.mark.parametrize("version", [4, 40, 5, 123])
def test_any_version_is_read(tmp_path, version):
    fx.write_glass_hdf(fx.glass_path(tmp_path, "albedo", CDAY, version=version), "albedo", _alb())
    assert fx.glass_path(tmp_path, "albedo", CDAY, version=version).name.startswith(f"GLASS02B05.V{version:02d}.")
    np.testing.assert_allclose(_read(tmp_path).albedo_bsa.values, 0.2, atol=1e-4)


def test_highest_version_wins(tmp_path):
    fx.write_glass_hdf(fx.glass_path(tmp_path, "albedo", CDAY, version=4, production="2018062"), "albedo",
                       _alb(0.2))
    fx.write_glass_hdf(fx.glass_path(tmp_path, "albedo", CDAY, version=40, production="2017001"), "albedo",
                       _alb(0.3))
    np.testing.assert_allclose(_read(tmp_path).albedo_bsa.values, 0.3, atol=1e-4)
    assert ga.parse_glass_filename("GLASS02B05.V04.A1981169.2018062.hdf") == {
        "short": "GLASS02B05", "product": "albedo", "version": 4, "date": pd.Timestamp("1981-06-18"),
        "production": "2018062"}
    assert ga.parse_glass_filename("GLASS02B05.V04.A1981169.hdf") is None
    assert ga.glass_filename("albedo", "1981-06-18", production="2018062") == "GLASS02B05.V04.A1981169.2018062.hdf"
    assert ga.glass_filename("lst", "2000-02-14", production="2021250") == "GLASS08B31.V40.A2000045.2021250.hdf"


# ----------------------------------------------------------------------------------------------------------
# 1b. composites -> daily values (closed forms)
# ----------------------------------------------------------------------------------------------------------
def _linear(t, a=0.1, b=0.002):
    """a + b * days since 1999-01-01."""
    return a + b * ((pd.DatetimeIndex(t) - pd.Timestamp("1999-01-01")) / pd.Timedelta(days=1)).to_numpy()


def test_interpolation_is_exact_for_a_linear_signal():
    samples = ga.composite_schedule("1999-01-01", "1999-03-31", 8)
    days = pd.date_range("1999-01-01", "1999-03-26")
    vals = _linear(samples)[:, None, None] * np.ones((1, 2, 3))
    out, flag = ga.interpolate_composites(vals, samples, days)
    np.testing.assert_allclose(out[:, 1, 2], _linear(days), rtol=0, atol=1e-6)
    on = days.isin(samples)
    assert (flag[on] == ga.FLAG_COMPOSITE_DAY).all() and (flag[~on] == ga.FLAG_INTERPOLATED).all()
    assert out.dtype == np.float32 and flag.dtype == np.int8 and out.shape == (len(days), 2, 3)


def test_interpolation_weights_across_the_year_end():
    """Day 361 of 1999 -> 1 January 2000 is 5 days: weights k/5."""
    samples = pd.DatetimeIndex(["1999-12-27", "2000-01-01"])
    days = pd.date_range("1999-12-27", "2000-01-01")
    out, flag = ga.interpolate_composites(np.array([0.0, 1.0]), samples, days)
    np.testing.assert_allclose(out, [0, 0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-7)
    assert flag.tolist() == [0, 1, 1, 1, 1, 0]


def test_interpolation_flags_gaps_and_never_bridges_them():
    samples = ga.composite_schedule("1999-01-01", "1999-02-10", 8)  # 1, 9, 17, 25, 33, 41
    vals = _linear(samples)[:, None] * np.ones((1, 2))
    vals[2, 0] = np.nan  # pixel 0: composite of 1999-01-17 missing
    days = pd.date_range("1998-12-30", "1999-02-15")
    out, flag = ga.interpolate_composites(vals, samples, days)
    f0 = pd.Series(flag[:, 0], index=days)
    assert (f0[:"1998-12-31"] == ga.FLAG_GAP).all()  # before the first composite
    assert (f0["1999-01-10":"1999-01-24"] == ga.FLAG_GAP).all()  # both intervals touching the missing one
    assert f0["1999-01-09"] == ga.FLAG_COMPOSITE_DAY and f0["1999-01-25"] == ga.FLAG_COMPOSITE_DAY
    assert (f0["1999-02-11":] == ga.FLAG_GAP).all()  # after the last composite
    assert np.isnan(out[flag == ga.FLAG_GAP]).all() and np.isfinite(out[flag != ga.FLAG_GAP]).all()
    assert (flag[:, 1][(days >= "1999-01-01") & (days <= "1999-02-10")] != ga.FLAG_GAP).all()
    # samples further apart than max_span_days (a missing composite left out of the list) are not bridged
    out2, flag2 = ga.interpolate_composites(np.array([0.0, 1.0]), samples[[0, 2]], days[2:20], max_span_days=8)
    assert (flag2[1:16] == ga.FLAG_GAP).all() and flag2[0] == flag2[16] == ga.FLAG_COMPOSITE_DAY


def test_sample_offset_moves_the_sample_time():
    samples = ga.composite_schedule("1999-01-01", "1999-01-31", 8)
    comp = _composite_ds(samples, _linear(samples))
    days = pd.date_range("1999-01-01", "1999-01-31")
    d0 = ga.composites_to_daily(comp, days)
    d35 = ga.composites_to_daily(comp, days, sample_offset_days=3.5)
    # offset 3.5: the composite of day d is the value of day d + 3.5 -> a linear signal shifted by 3.5 days
    v = d35.albedo_bsa.values[:, 0, 0]
    ok = np.isfinite(v)
    np.testing.assert_allclose(v[ok], _linear(days[ok]) - 0.002 * 3.5, atol=1e-6)
    assert not ok[:4].any() and (d35.composite_flag.values[ok] == ga.FLAG_INTERPOLATED).all()
    assert (d0.composite_flag.values[days.isin(samples)] == ga.FLAG_COMPOSITE_DAY).all()
    assert d35.attrs["sample_offset_days"] == 3.5


def _composite_ds(times, values, wsa_nan=None):
    import xarray as xr

    bsa = np.asarray(values, np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    wsa = bsa.copy()
    if wsa_nan is not None:
        wsa[wsa_nan] = np.nan
    return xr.Dataset({"albedo_bsa": (("time", "lat", "lon"), bsa, {"units": "1", "long_name": "bsa composite"}),
                       "albedo_wsa": (("time", "lat", "lon"), wsa, {"units": "1"})},
                      coords={"time": times, "lat": [40.975, 40.925], "lon": [-99.975, -99.925]},
                      attrs={"cadence_days": 8})


def test_composites_to_daily_masks_jointly_and_flags():
    samples = ga.composite_schedule("1999-01-01", "1999-01-31", 8)
    comp = _composite_ds(samples, _linear(samples), wsa_nan=(1, 0, 0))  # wsa invalid in one pixel-composite
    d = ga.composites_to_daily(comp, pd.date_range("1999-01-01", "1999-01-25"), max_span_days=8)
    f = d.composite_flag.values
    assert d.composite_flag.attrs["flag_meanings"] == "composite_day between_composites composite_missing"
    assert (f[1:16, 0, 0] == ga.FLAG_GAP).all() and np.isnan(d.albedo_bsa.values[1:16, 0, 0]).all()
    assert f[16, 0, 0] == ga.FLAG_COMPOSITE_DAY and (f[1:16, 1, 1] != ga.FLAG_GAP).all()
    assert np.isnan(d.albedo_wsa.values[f == ga.FLAG_GAP]).all()
    assert d.platform.values.tolist() == ["NOAA-14"] * 25 and "platform_of" in d.platform.attrs["source"]
    assert d.albedo_bsa.attrs["units"] == "1" and "interpolated linearly" in d.albedo_bsa.attrs["long_name"]
    total = d.fraction_composite_day + d.fraction_between_composites + d.fraction_composite_missing
    assert total == pytest.approx(1.0)


def test_read_glass_albedo_daily_end_to_end(tmp_path):
    sched = ga.composite_schedule("1998-12-27", "1999-03-10", 8)
    truth = _linear(sched)
    for d, v in zip(sched, truth):
        if d == pd.Timestamp("1999-02-02"):
            continue  # a missing composite
        qc = np.zeros(TILE.shape, np.int16)
        if d == pd.Timestamp("1999-01-17"):
            qc[0, 0] = 2  # masked by the default QC policy in one pixel
        fx.albedo_real_variant(fx.glass_path(tmp_path, "albedo", d), _alb(v), qc)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about
        ds = ga.read_glass_albedo_daily(tmp_path, "1999-01-01", "1999-02-28", TILE, progress=False)
    days = pd.date_range("1999-01-01", "1999-02-28")
    assert list(ds.time.values) == list(days.values) and ds.attrs["composites_read"] == "1999-01-01..1999-03-06"
    f = pd.Series(ds.composite_flag.values[:, 5, 5], index=days)
    assert (f["1999-01-26":"1999-02-09"] == ga.FLAG_GAP).all()  # around the missing composite only
    ok = (f != ga.FLAG_GAP).to_numpy()
    np.testing.assert_allclose(ds.albedo_bsa.values[ok, 5, 5], _linear(days[ok]), atol=1e-4)
    f00 = pd.Series(ds.composite_flag.values[:, 0, 0], index=days)
    assert (f00["1999-01-10":"1999-01-24"] == ga.FLAG_GAP).all()
    assert ds.attrs["fraction_composite_missing"] > 0 and ds.attrs["cadence_days"] == 8
    with pytest.raises(TimeGapError, match=r"no GLASS02B05 file for 1 day\(s\): 1999-02-02, composite"):
        ga.read_glass_albedo_daily(tmp_path, "1999-01-01", "1999-02-28", TILE, allow_gaps=False, progress=False)


# ----------------------------------------------------------------------------------------------------------
# 2. QC layers: found from a documented list, meaning per product, files without QC read with one warning
# ----------------------------------------------------------------------------------------------------------
def test_qc_layer_candidates():
    assert ga.qc_layer_candidates("albedo", "shortwave") == ("QC_shortwave", "QC_VIS", "QC")
    assert ga.qc_layer_candidates("albedo", "VIS") == ("QC_VIS", "QC")
    assert ga.qc_layer_candidates("lst") == ("QC",)
    assert ga.qc_layer_candidates("albedo", "NIR", qc_layer="MyQC") == ("MyQC",)


@pytest.mark.parametrize("qc_names, used", [(("QC",), "QC"), (("QC_VIS",), "QC_VIS"),
                                            (("QC_shortwave", "QC_VIS", "QC_NIR"), "QC_shortwave")])
def test_albedo_qc_layer_variants(tmp_path, qc_names, used):
    qc = np.zeros(TILE.shape, np.int16)
    qc[0, :3] = [1, 2, 3]  # acceptable, poor, (undocumented) 3
    fx.albedo_real_variant(fx.glass_path(tmp_path, "albedo", CDAY), _alb(), qc, qc_names=qc_names)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = _read(tmp_path)
    b = ds.albedo_bsa.values[0]
    assert np.isfinite(b[0, 0]) and np.isnan(b[0, 1:3]).all() and np.isfinite(b[1:]).all()
    assert ds.albedo_bsa.attrs["qc_layer"] == used and ds.attrs["n_files_without_qc"] == 0


def test_per_band_qc_layer_is_preferred(tmp_path):
    path = fx.glass_path(tmp_path, "albedo", CDAY)
    values = {**_alb(), "ABD_BSA_VIS": np.full(TILE.shape, 0.1), "ABD_WSA_VIS": np.full(TILE.shape, 0.1)}
    bad_row0 = np.zeros(TILE.shape, np.int16)
    bad_row0[0] = 3
    fx.albedo_real_variant(path, values, bad_row0, qc_names=("QC_VIS",))
    # add a good QC_shortwave next to the bad QC_VIS
    from pyhdf.SD import SD, SDC

    sd = SD(str(path), SDC.WRITE)
    s = sd.create("QC_shortwave", SDC.INT16, TILE.shape)
    s[:] = np.zeros(TILE.shape, np.int16)
    s.endaccess()
    sd.end()
    ds = _read(tmp_path, bands=("shortwave", "VIS"))
    assert np.isfinite(ds.albedo_bsa.values).all()
    assert np.isnan(ds.albedo_bsa_vis.values[0, 0]).all() and np.isfinite(ds.albedo_bsa_vis.values[0, 1:]).all()
    assert ds.albedo_bsa.attrs["qc_layer"] == "QC_shortwave" and ds.albedo_bsa_vis.attrs["qc_layer"] == "QC_VIS"
    # the qc_layer argument replaces the list: QC_VIS for every band
    forced = _read(tmp_path, qc_layer="QC_VIS")
    assert np.isnan(forced.albedo_bsa.values[0, 0]).all() and forced.albedo_bsa.attrs["qc_layer"] == "QC_VIS"


def test_files_without_qc_are_read_with_one_warning(tmp_path):
    sched = ga.composite_schedule("1999-01-01", "1999-02-10", 8)
    for d in sched:
        fx.albedo_real_variant(fx.glass_path(tmp_path, "albedo", d), _alb(), qc_names=())
    first = fx.glass_path(tmp_path, "albedo", sched[0])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ds = ga.read_glass_albedo(tmp_path, sched[0], sched[-1], TILE, progress=False)
    msgs = [str(w.message) for w in rec if issubclass(w.category, DataWarning)]
    assert len(msgs) == 1, msgs
    assert "6 of 6 GLASS02B05 file(s) have no QC layer" in msgs[0] and str(first) in msgs[0]
    assert "'QC_shortwave', 'QC_VIS', 'QC'" in msgs[0]
    assert ds.attrs["n_files_without_qc"] == 6 and ds.albedo_bsa.attrs["qc_layer"] == "none"
    assert np.isfinite(ds.albedo_bsa.values).all()
    with warnings.catch_warnings():  # qc='none' does not look for QC: no warning
        warnings.simplefilter("error")
        ga.read_glass_albedo(tmp_path, sched[0], sched[-1], TILE, qc="none", progress=False)


def test_lst_qc_semantics_are_a_parameter(tmp_path):
    qc = np.zeros(TILE.shape, np.uint8)
    qc[0, 0], qc[0, 1] = 1, 2
    fx.write_glass_hdf(fx.glass_path(tmp_path, "lst", CDAY), "lst", {"LST": np.full(TILE.shape, 290.0)}, qc=qc,
                       satellite=None)
    cloud = ga.read_glass_lst(tmp_path, CDAY, CDAY, TILE, progress=False).values[0]
    strict = ga.read_glass_lst(tmp_path, CDAY, CDAY, TILE, qc="strict", progress=False).values[0]
    assert np.isnan(cloud[0, 0]) and np.isfinite(cloud[0, 1]) and np.isnan(strict[0, :2]).all()
    fx.write_glass_hdf(fx.glass_path(tmp_path / "b", "lst", CDAY), "lst", {"LST": np.full(TILE.shape, 290.0)},
                       qc_names=())
    with pytest.warns(DataWarning, match=r"1 of 1 GLASS08B31 file\(s\) have no QC layer \(looked for 'QC'\)"):
        lst = ga.read_glass_lst(tmp_path / "b", CDAY, CDAY, TILE, progress=False)
    assert lst.attrs["n_files_without_qc"] == 1 and np.isfinite(lst.values).all()


# ----------------------------------------------------------------------------------------------------------
# 3. absent attributes: per-product fallbacks, fill spellings, -1 invalid, plausibility, units upper bound
# ----------------------------------------------------------------------------------------------------------
def test_albedo_without_scale_attribute_uses_1e_4(tmp_path):
    fx.albedo_real_variant(fx.glass_path(tmp_path, "albedo", CDAY), _alb(0.2345), scale_attr=False)
    ds = _read(tmp_path)
    np.testing.assert_allclose(ds.albedo_bsa.values, 0.2345, atol=1e-6)
    assert "scale 0.0001 (fallback)" in ds.albedo_bsa.attrs["packing"]
    assert "valid stored range 0..10000 (valid_range)" in ds.albedo_bsa.attrs["packing"]


def test_albedo_minus_one_is_invalid_without_any_attribute(tmp_path):
    v = _alb(0.3)
    v["ABD_BSA_shortwave"][0, :4] = np.nan  # written as -1
    raw = np.full(TILE.shape, 3000, np.int16)
    raw[1, :3] = [-1, -5, 20000]  # negative invalid; 20000 outside the fallback valid range 0..10000
    fx.write_glass_hdf(fx.glass_path(tmp_path, "albedo", CDAY), "albedo", {"ABD_BSA_shortwave": v["ABD_BSA_shortwave"]},
                       raw={"ABD_WSA_shortwave": raw}, nan_as=-1, fill_attr=None,
                       sds_attrs={n: {"valid_range": None, "scale_factor": None, "add_offset": None} for n in SW})
    ds = _read(tmp_path)
    assert np.isnan(ds.albedo_bsa.values[0, 0, :4]).all() and np.isfinite(ds.albedo_bsa.values[0, 1:]).all()
    assert np.isnan(ds.albedo_wsa.values[0, 1, :3]).all() and float(ds.albedo_wsa.values[0, 2, 0]) == \
        pytest.approx(0.3)
    assert "fill none (none); valid stored range 0..10000 (fallback); any negative" in ds.albedo_bsa.attrs["packing"]


def test_albedo_negative_invalid_even_if_valid_range_allows_it(tmp_path):
    raw = np.full(TILE.shape, 2000, np.int16)
    raw[0, 0] = -1
    fx.write_glass_hdf(fx.glass_path(tmp_path, "albedo", CDAY), "albedo", {},
                       raw={n: raw for n in SW}, sds_attrs={n: {"valid_range": [-100, 10000]} for n in SW})
    b = _read(tmp_path).albedo_bsa.values[0]
    assert np.isnan(b[0, 0]) and np.isfinite(b[0, 1])


@pytest.mark.parametrize("spelling", ["_FillValue", "FillValue", "fillvalue", "fill_value", "missing_value"])
def test_fill_attribute_spellings(tmp_path, spelling):
    v = _alb(0.4)
    v["ABD_BSA_shortwave"][2, 2] = np.nan  # stored as the fill 9999, inside the valid range 0..10000
    fx.write_glass_hdf(fx.glass_path(tmp_path, "albedo", CDAY), "albedo", v, fill_attr=spelling,
                       sds_attrs={n: {"_FillValue": 9999} for n in SW})
    b = _read(tmp_path).albedo_bsa
    assert np.isnan(b.values[0, 2, 2]) and np.isfinite(b.values[0, 2, 3])
    assert f"fill 9999 ({spelling})" in b.attrs["packing"]


def test_fill_attribute_helper():
    assert fill_attribute({"FillValue": np.array([7], np.int16), "missing_value": -9}) == ("FillValue", [7, -9])
    assert fill_attribute({"FILLVALUE": 3}) == ("FILLVALUE", [3])
    assert fill_attribute({"units": "K"}) == (None, [])


def test_lst_without_scale_attribute_uses_0_01_K(tmp_path):
    """LST stored as ~30000 without a scale attribute is 300 K, not 30000 K."""
    raw = np.full(TILE.shape, 30000, np.uint16)
    raw[0, 0] = 0  # the fallback fill
    fx.write_glass_hdf(fx.glass_path(tmp_path, "lst", CDAY), "lst", {}, raw={"LST": raw}, fill_attr=None,
                       sds_attrs={"LST": {"scale_factor": None, "add_offset": None, "units": None}})
    lst = ga.read_glass_lst(tmp_path, CDAY, CDAY, TILE, progress=False)
    assert np.isnan(lst.values[0, 0, 0]) and float(lst.values[0, 1, 1]) == pytest.approx(300.0)
    assert lst.attrs["n_masked_implausible"] == 0
    assert "scale 0.01 (fallback)" in lst.attrs["packing"] and "fill 0, 65535 (fallback)" in lst.attrs["packing"]


def test_lst_still_packed_fails_the_units_upper_bound(tmp_path):
    p = fx.write_glass_hdf(fx.glass_path(tmp_path, "lst", CDAY), "lst", {},
                           raw={"LST": np.full(TILE.shape, 30000, np.uint16)}, sds_attrs={"LST": {"scale_factor": 1.0}})
    with pytest.raises(UnitsError, match=rf"{p}: variable 'LST' has a median value of 30000 after unpacking "
                                         r"\(scale_factor 1 \(file\)\), above 400 K: .*still packed"):
        ga.read_glass_lst(tmp_path, CDAY, CDAY, TILE, progress=False)
    check_units_upper_bound(np.array([290.0, np.nan]), "K", "f", "LST")  # passes
    check_units_upper_bound(np.array([5.0]), "1", "f", "albedo")  # no upper bound for albedo here


def test_implausible_values_are_masked_counted_and_warned(tmp_path):
    v = np.full(TILE.shape, 290.0)
    v[0, :3] = [120.0, 360.0, 349.0]
    for i, d in enumerate(pd.date_range(CDAY, periods=2)):
        fx.write_glass_hdf(fx.glass_path(tmp_path, "lst", d), "lst", {"LST": v})
    with pytest.warns(DataWarning, match=r"4 value\(s\) of LST outside the plausible range 150\.\.350 K masked"):
        lst = ga.read_glass_lst(tmp_path, CDAY, CDAY + pd.Timedelta(days=1), TILE, progress=False)
    assert lst.attrs["n_masked_implausible"] == 4 and lst.attrs["plausible_range"] == [150.0, 350.0]
    assert np.isnan(lst.values[:, 0, :2]).all() and np.isfinite(lst.values[:, 0, 2]).all()
    # albedo above 1 (a scale_factor of 2e-4 makes stored 6000 -> 1.2)
    fx.write_glass_hdf(fx.glass_path(tmp_path / "a", "albedo", CDAY), "albedo", {},
                       raw={n: np.full(TILE.shape, 6000, np.int16) for n in SW},
                       sds_attrs={n: {"scale_factor": 2e-4} for n in SW})
    fx.write_glass_hdf(fx.glass_path(tmp_path / "a", "albedo", CDAY + pd.Timedelta(days=8)), "albedo", _alb())
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ds = ga.read_glass_albedo(tmp_path / "a", CDAY, CDAY + pd.Timedelta(days=8), TILE, progress=False)
    (msg,) = [str(w.message) for w in rec]  # one warning per read call
    assert msg.startswith("800 value(s) of ABD_BSA_shortwave, 800 value(s) of ABD_WSA_shortwave outside the "
                          "plausible range 0..1 (dimensionless) masked")
    assert ds.albedo_bsa.attrs["n_masked_implausible"] == 800


# ----------------------------------------------------------------------------------------------------------
# 4. platform without a 'Satellite' attribute
# ----------------------------------------------------------------------------------------------------------
def test_platform_from_the_platform_table(tmp_path):
    days = [pd.Timestamp("2000-12-26"), pd.Timestamp("2001-01-01")]  # NOAA-14 -> NOAA-16
    for d in days:
        fx.albedo_real_variant(fx.glass_path(tmp_path, "albedo", d), _alb())
    ds = ga.read_glass_albedo(tmp_path, days[0], days[1], TILE, progress=False)
    assert ds.platform.values.tolist() == ["NOAA-14", "NOAA-16"]
    assert ds.platform.attrs["source"].startswith("glass_sm.platforms.platform_of")
    fx.write_glass_hdf(fx.glass_path(tmp_path / "s", "lst", days[0]), "lst", {"LST": np.full(TILE.shape, 280.0)},
                       satellite="NOAA-11")
    lst = ga.read_glass_lst(tmp_path / "s", days[0], days[0], TILE, progress=False)
    assert lst.platform.values.tolist() == ["NOAA-11"] and lst.platform.attrs["source"] == "file attribute 'Satellite'"


# ----------------------------------------------------------------------------------------------------------
# 5. the grid: geolocation attributes, HDF-EOS2 StructMetadata.0 (sub-tile, global, DMS or plain degrees)
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("geolocation", ["attributes", "struct", "struct_plain"])
def test_sub_tile_geolocation_variants(tmp_path, geolocation):
    rng = np.random.default_rng(3)
    v = rng.uniform(0.1, 0.3, TILE.shape)
    fx.write_glass_hdf(fx.glass_path(tmp_path, "albedo", CDAY), "albedo", {n: v for n in SW},
                       geolocation=geolocation, satellite=None)
    sub = Domain.from_bounds(40.2, 40.5, -99.5, -99.0)
    rows, cols = sub.slices_in(TILE)
    ds = ga.read_glass_albedo(tmp_path, CDAY, CDAY, sub, progress=False)
    np.testing.assert_allclose(ds.albedo_bsa.values[0], v[rows, cols], atol=6e-5)


def test_global_struct_metadata_file(tmp_path):
    block = np.random.default_rng(5).uniform(0.1, 0.3, (30, 50))
    fx.albedo_real_variant(fx.glass_path(tmp_path, "albedo", CDAY), {n: block for n in SW},
                           global_offset=(980, 1600))
    dom = Domain(985, 1610, 20, 30)
    ds = ga.read_glass_albedo(tmp_path, CDAY, CDAY, dom, progress=False)
    np.testing.assert_allclose(ds.albedo_bsa.values[0], block[5:25, 10:40], atol=6e-5)


def test_struct_metadata_parsing_and_mismatch(tmp_path):
    text = fx.struct_metadata("GLASS02B05", {"ABD_BSA_VIS": "INT16", "QC_VIS": "INT16"}, 3600, 7200)
    (g,) = ga.parse_struct_metadata(text)
    assert g["name"] == "GLASS02B05" and (g["xdim"], g["ydim"]) == (7200, 3600) and g["projection"] == "GCTP_GEO"
    assert g["upper_left"] == pytest.approx((-180.0, 90.0)) and g["lower_right"] == pytest.approx((180.0, -90.0))
    assert g["fields"] == ["ABD_BSA_VIS", "QC_VIS"]
    assert "UpperLeftPointMtrs=(-180000000.000000,90000000.000000)" in text
    sub = ga.parse_struct_metadata(fx.struct_metadata("G", {}, 20, 40, 40.55, -99.65))[0]
    assert sub["upper_left"] == pytest.approx((-99.65, 40.55)) and sub["lower_right"] == pytest.approx((-97.65, 39.55))
    assert ga._dms_to_deg(-99039000.0) == pytest.approx(-99.65)
    # a StructMetadata.0 whose dimensions contradict the SDS shape is an error naming both
    p = fx.glass_path(tmp_path, "albedo", CDAY)
    fx.write_glass_hdf(p, "albedo", _alb(), geolocation="attributes", upper_left=None, satellite=None)
    from pyhdf.SD import SD, SDC

    sd = SD(str(p), SDC.WRITE)
    sd.attr("StructMetadata.0").set(SDC.CHAR8, fx.struct_metadata("GLASS02B05", {}, 10, 40, 41.0, -100.0))
    sd.end()
    with pytest.raises(GridMismatchError,
                       match=r"has shape 20 x 40 but StructMetadata\.0 grid 'GLASS02B05' is YDim 10"):
        _read(tmp_path)
