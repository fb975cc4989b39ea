"""glass_sm.io.ismn on the real ISMN sample stations of the ismn sdist (fixture ``ismn_testdata``).

Line endings of the sample files (inspected byte by byte):

- CR only (classic Mac): ``format_header_values/SMOSMANIA/...Narbonne...stm`` and
  ``format_ceop_sep/SMOSMANIA/...Narbonne...stm`` (loose files: no station folder);
- CRLF: every ``.stm`` of ``Data_seperate_files_20170810_20180809`` (CEOP) and
  ``Data_seperate_files_header_20170810_20180809`` (header+values);
- LF: ``archive_sample/ismn_archive.zip`` (RSMN Adamclisi).

Expected values are parsed from the raw bytes in this file, independently of the ``ismn`` library.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glass_sm.io import ismn as ismn_io
from glass_sm.io.errors import (
    CorruptFileError,
    DataError,
    EmptyDataError,
    MissingFileError,
    MissingVariableError,
)
from glass_sm.io.ismn import STATION_COLUMNS, daily_means, read_ismn

pytestmark = pytest.mark.network

HEADER = "Data_seperate_files_header_20170810_20180809"
CEOP = "Data_seperate_files_20170810_20180809"
ARM1 = "COSMOS/ARM-1/Cosmic-ray-Probe/0-0.19m"
ARM1_FILE = "COSMOS/ARM-1/COSMOS_COSMOS_ARM-1_sm_0.000000_0.190000_Cosmic-ray-Probe_20170810_20180809.stm"
NARBONNE_FILE = "SMOSMANIA/SMOSMANIA_SMOSMANIA_Narbonne_sm_0.050000_0.050000_ThetaProbe-ML2X_20070101_20070131.stm"
NARBONNE = "SMOSMANIA/Narbonne/ThetaProbe-ML2X/0.05-0.05m"


def line_ending(path: Path) -> str:
    b = path.read_bytes()
    if b"\r\n" in b:
        return "CRLF"
    return "CR" if b"\r" in b else "LF"


def raw_records(path: Path) -> tuple[list[str], pd.DataFrame]:
    """(header fields, records time/value/flag) of an .stm file, parsed from bytes (any line ending)."""
    lines = [ln.decode("ascii").split() for ln in path.read_bytes().splitlines() if ln.strip()]
    if len(lines[0]) == 15:  # CEOP: every line holds the station fields
        header = lines[0][4:12]
        recs = [(f"{f[0]} {f[1]}", float(f[12]), f[13]) for f in lines]
    else:
        header = lines[0]
        recs = [(f"{f[0]} {f[1]}", float(f[2]), f[3]) for f in lines[1:]]
    df = pd.DataFrame(recs, columns=["time", "value", "flag"])
    df["time"] = pd.to_datetime(df["time"], format="%Y/%m/%d %H:%M")
    return header, df.set_index("time")


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def test_line_endings_of_the_sample_files(ismn_testdata):
    assert line_ending(ismn_testdata / "format_header_values" / NARBONNE_FILE) == "CR"
    assert line_ending(ismn_testdata / "format_ceop_sep" / NARBONNE_FILE) == "CR"
    assert line_ending(ismn_testdata / HEADER / ARM1_FILE) == "CRLF"
    assert line_ending(ismn_testdata / CEOP / ARM1_FILE) == "CRLF"
    with zipfile.ZipFile(ismn_testdata / "archive_sample" / "ismn_archive.zip") as zf:
        name = next(n for n in zf.namelist() if n.endswith(".stm"))
        b = zf.read(name)
    assert b"\r" not in b and b"\n" in b


def test_header_values_crlf_values_flags_and_coordinates(ismn_testdata, cache):
    stations, daily, hourly = read_ismn(ismn_testdata / HEADER, depth=(0.0, 0.25), cache_dir=cache,
                                        progress=False, return_hourly=True)
    assert list(stations.columns) == STATION_COLUMNS
    assert set(stations.index) == {ARM1, "COSMOS/Barrow-ARM/Cosmic-ray-Probe/0-0.21m"}
    header, raw = raw_records(ismn_testdata / HEADER / ARM1_FILE)
    row = stations.loc[ARM1]
    # coordinates and depths from the file's header line: COSMOS COSMOS ARM-1 36.60540 -97.48780 322.00 0.00 0.19
    assert (row.lat, row.lon, row.elevation) == (float(header[3]), float(header[4]), float(header[5]))
    assert (row.lat, row.lon) == (36.6054, -97.4878)
    assert (row.depth_from, row.depth_to, row.sensor) == (0.0, 0.19, "Cosmic-ray-Probe")
    # first record: 2017/08/10 00:00 0.1410 G M
    h = hourly[ARM1]
    assert h.index[0] == pd.Timestamp("2017-08-10 00:00") == raw.index[0]
    assert h["value"].iloc[0] == pytest.approx(0.141) and h["flag"].iloc[0] == "G"
    assert len(h) == len(raw) == 6865
    np.testing.assert_allclose(h["value"].values, raw["value"].values)
    assert (h["flag"].values == raw["flag"].values).all()
    # flag filter: only G values are used
    assert row.n_hourly == int((raw["flag"] == "G").sum()) == 6514
    assert row.start == pd.Timestamp("2017-08-10 00:00") and row.note == ""
    assert daily[ARM1].attrs["units"] == "m3 m-3"


def test_daily_mean_by_hand_and_minimum_count(ismn_testdata, cache):
    _, raw = raw_records(ismn_testdata / HEADER / ARM1_FILE)
    good = raw[raw["flag"] == "G"]["value"]
    _, daily = read_ismn(ismn_testdata / HEADER, depth=(0.0, 0.2), cache_dir=cache, progress=False)
    s = daily[ARM1]
    day = good["2017-08-10"]
    assert len(day) == 24
    assert s.loc["2017-08-10"] == pytest.approx(day.sum() / len(day), rel=1e-12)
    # days with fewer than 12 good hourly values are dropped, the others kept
    counts = good.groupby(good.index.floor("D")).count()
    few = counts[(counts > 0) & (counts < 12)].index
    assert len(few) > 0
    assert not set(few) & set(s.index)
    assert set(s.index) == set(counts[counts >= 12].index)
    # a stricter minimum drops more days
    _, strict = read_ismn(ismn_testdata / HEADER, depth=(0.0, 0.2), cache_dir=cache, progress=False,
                          min_obs_per_day=24)
    assert set(strict[ARM1].index) == set(counts[counts >= 24].index)


def test_ceop_crlf_equals_header_values(ismn_testdata, cache):
    st_h, d_h = read_ismn(ismn_testdata / HEADER, depth=(0.0, 0.25), cache_dir=cache, progress=False)
    st_c, d_c = read_ismn(ismn_testdata / CEOP, depth=(0.0, 0.25), cache_dir=cache, progress=False)
    assert set(st_c.index) == set(st_h.index) | {"FR_Aqui/fraye/ThetaProbe-ML2X/0.05-0.05m"}
    for sid in st_h.index:
        pd.testing.assert_series_equal(d_c[sid], d_h[sid])
        assert st_c.loc[sid, ["lat", "lon", "n_hourly"]].tolist() == st_h.loc[sid, ["lat", "lon", "n_hourly"]].tolist()
    # CEOP lines repeat the coordinates: FR_Aqui fraye 44.46700 -0.72690 52.42
    header, raw = raw_records(next((ismn_testdata / CEOP / "FR_Aqui" / "fraye").glob("*.stm")))
    fr = st_c.loc["FR_Aqui/fraye/ThetaProbe-ML2X/0.05-0.05m"]
    assert (fr.lat, fr.lon, fr.elevation) == (float(header[3]), float(header[4]), float(header[5]))
    assert fr.n_hourly == int((raw["flag"] == "G").sum())


def test_cr_only_files_both_formats(ismn_testdata, cache):
    for folder in ("format_header_values", "format_ceop_sep"):
        header, raw = raw_records(ismn_testdata / folder / NARBONNE_FILE)
        assert len(raw) == 741
        st, daily, hourly = read_ismn(ismn_testdata / folder, cache_dir=cache, progress=False,
                                      good_only=False, return_hourly=True)
        assert list(st.index) == [NARBONNE]
        row = st.loc[NARBONNE]
        assert (row.lat, row.lon, row.elevation) == (43.15, 2.9567, 112.0)
        h = hourly[NARBONNE]
        assert h.index[0] == pd.Timestamp("2007-01-01 01:00")
        assert h["value"].iloc[0] == pytest.approx(0.2140) and h["flag"].iloc[0] == "U"
        assert len(h) == 741 and row.n_hourly == 741
        # 2007-01-01 starts at 01:00: 23 values
        jan1 = raw.loc["2007-01-01", "value"]
        assert len(jan1) == 23
        assert daily[NARBONNE].loc["2007-01-01"] == pytest.approx(jan1.mean(), rel=1e-12)
        # the sample's flags are U (unchecked) and D05: nothing is 'G'
        st_g, daily_g = read_ismn(ismn_testdata / folder, cache_dir=cache, progress=False)
        assert st_g.loc[NARBONNE, "n_daily"] == 0 and daily_g[NARBONNE].empty
        assert "no good (flag G) values" in st_g.loc[NARBONNE, "note"]


def test_lf_zip_flag_filtering(ismn_testdata, cache, tmp_path):
    zpath = ismn_testdata / "archive_sample" / "ismn_archive.zip"
    with zipfile.ZipFile(zpath) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".stm"))
        (tmp_path / "raw.stm").write_bytes(zf.read(name))
    header, raw = raw_records(tmp_path / "raw.stm")
    st, daily = read_ismn(zpath, cache_dir=cache, progress=False)
    sid = "RSMN/Adamclisi/Meter-5TM_1_1/0-0.05m"
    assert list(st.index) == [sid]
    assert (st.loc[sid, "lat"], st.loc[sid, "lon"]) == (float(header[3]), float(header[4]))
    assert set(raw["flag"]) > {"G"}  # there are D.. flags to filter out
    assert st.loc[sid, "n_hourly"] == int((raw["flag"] == "G").sum())
    st_all, _ = read_ismn(zpath, cache_dir=cache, progress=False, good_only=False)
    assert st_all.loc[sid, "n_hourly"] == len(raw)


def test_depth_selection(ismn_testdata, cache):
    def ids(depth):
        st, _ = read_ismn(ismn_testdata / CEOP, depth=depth, cache_dir=cache, progress=False)
        return set(st.index)

    fraye = "FR_Aqui/fraye/ThetaProbe-ML2X/0.05-0.05m"
    barrow = "COSMOS/Barrow-ARM/Cosmic-ray-Probe/0-0.21m"
    assert ids((0.0, 0.05)) == {fraye}             # 0-0.19 m and 0-0.21 m are not within 0-5 cm
    assert ids((0.0, 0.2)) == {fraye, ARM1}
    assert ids((0.0, 0.25)) == {fraye, ARM1, barrow}
    assert ids((0.1, 0.3)) == set()


def test_period_selection(ismn_testdata, cache):
    st, daily = read_ismn(ismn_testdata / HEADER, depth=(0, 0.2), start="2017-08-10", end="2017-08-11",
                          cache_dir=cache, progress=False)
    assert list(daily[ARM1].index) == list(pd.to_datetime(["2017-08-10", "2017-08-11"]))
    assert st.loc[ARM1, "n_hourly"] == 48


def test_zip_equals_folder(ismn_testdata, cache):
    st_z, d_z = read_ismn(ismn_testdata / "zip_archives" / "ceop" / f"{CEOP}.zip", depth=(0, 0.25),
                          cache_dir=cache, progress=False)
    st_f, d_f = read_ismn(ismn_testdata / CEOP, depth=(0, 0.25), cache_dir=cache, progress=False)
    # the zip holds the two COSMOS stations only
    assert set(st_z.index) == {ARM1, "COSMOS/Barrow-ARM/Cosmic-ray-Probe/0-0.21m"}
    for sid in st_z.index:
        pd.testing.assert_series_equal(d_z[sid], d_f[sid])


def test_failing_station_is_reported_and_others_continue(ismn_testdata, cache, tmp_path):
    data = tmp_path / "archive"
    shutil.copytree(ismn_testdata / HEADER, data)
    # 1) ARM-1: a damaged line in the middle (the library's scan reads only the first/last lines)
    arm = data / ARM1_FILE
    lines = arm.read_bytes().split(b"\r\n")
    lines[100] = b"2017/08/14 XX:YY   garbage ? ?"
    arm.write_bytes(b"\r\n".join(lines))
    # 2) a station whose only file is empty: the library's scan skips it
    bad = data / "COSMOS" / "Empty-1"
    bad.mkdir()
    (bad / "COSMOS_COSMOS_Empty-1_sm_0.000000_0.050000_Probe_20170810_20180809.stm").write_bytes(b"")
    st, daily = read_ismn(data, depth=(0.0, 0.25), cache_dir=cache, progress=False)
    assert "read failed" in st.loc[ARM1, "note"] and ARM1_FILE.split("/")[-1] in st.loc[ARM1, "note"]
    assert daily[ARM1].empty and st.loc[ARM1, "n_daily"] == 0
    barrow = "COSMOS/Barrow-ARM/Cosmic-ray-Probe/0-0.21m"
    assert st.loc[barrow, "note"] == "" and st.loc[barrow, "n_daily"] > 200
    skipped = st[st["station"] == "Empty-1"]
    assert len(skipped) == 1 and "skipped by the ismn metadata scan" in skipped["note"].iloc[0]


def test_non_utf8_byte_in_a_real_static_csv_keeps_the_station(ismn_testdata, cache, tmp_path):
    """Issue 13: one Latin-1 byte in ARM-1's static_variables.csv made the library's scan drop the station."""
    data = tmp_path / "archive"
    shutil.copytree(ismn_testdata / HEADER, data)
    csv = data / "COSMOS" / "ARM-1" / "COSMOS_COSMOS_ARM-1_static_variables.csv"
    raw = csv.read_bytes()
    i = raw.index(b"Harmonized World Soil Database")  # line 2, as an 'é' in Latin-1 would do
    csv.write_bytes(raw[:i] + b"\xe9" + raw[i:])
    st, daily = read_ismn(data, depth=(0.0, 0.25), cache_dir=cache, progress=False)
    _, intact = read_ismn(ismn_testdata / HEADER, depth=(0.0, 0.25), cache_dir=cache, progress=False)
    assert set(st.index) == {ARM1, "COSMOS/Barrow-ARM/Cosmic-ray-Probe/0-0.21m"}
    note = st.loc[ARM1, "note"]
    assert str(csv) in note and f"byte 0xe9 at offset {i} (line 2)" in note and not note.startswith("read failed")
    pd.testing.assert_series_equal(daily[ARM1], intact[ARM1])  # the values do not depend on the static csv
    assert (st.loc[ARM1, "lat"], st.loc[ARM1, "lon"]) == (36.6054, -97.4878)


def test_impossible_good_value_in_a_real_file_is_dropped(ismn_testdata, cache, tmp_path):
    """Issue 13: a value of 55 m3 m-3 flagged G was averaged into the daily mean."""
    data = tmp_path / "archive"
    shutil.copytree(ismn_testdata / HEADER, data)
    arm = data / ARM1_FILE
    b = arm.read_bytes()
    line = b"2017/08/10 05:00   0.1470 G M"
    assert b.count(line) == 1
    arm.write_bytes(b.replace(line, b"2017/08/10 05:00  55.0000 G M"))
    _, raw = raw_records(ismn_testdata / HEADER / ARM1_FILE)
    good = raw[raw["flag"] == "G"]["value"]
    st, daily = read_ismn(data, depth=(0.0, 0.2), cache_dir=cache, progress=False)
    assert st.loc[ARM1, "n_out_of_range"] == 1 and st.loc[ARM1, "n_hourly"] == len(good) - 1
    assert "1 hourly value(s) outside the physical range [0, 1]" in st.loc[ARM1, "note"]
    day = good["2017-08-10"].drop(pd.Timestamp("2017-08-10 05:00"))
    assert daily[ARM1].loc["2017-08-10"] == pytest.approx(day.mean(), rel=1e-12)
    intact, _ = read_ismn(ismn_testdata / HEADER, depth=(0.0, 0.2), cache_dir=cache, progress=False)
    assert intact.loc[ARM1, "n_out_of_range"] == 0 and intact.loc[ARM1, "note"] == ""


def test_metadata_cache_reused_and_refreshed(ismn_testdata, cache, tmp_path):
    data = tmp_path / "archive"
    shutil.copytree(ismn_testdata / HEADER, data)
    (data / "COSMOS" / "Barrow-ARM").rename(tmp_path / "Barrow-ARM")
    st1, _ = read_ismn(data, depth=(0, 0.25), cache_dir=cache, progress=False)
    assert list(st1.index) == [ARM1]
    metas = list(cache.glob("meta-*/*.csv"))
    assert len(metas) == 1
    stamp = metas[0].stat().st_mtime_ns
    read_ismn(data, depth=(0, 0.25), cache_dir=cache, progress=False)
    assert metas[0].stat().st_mtime_ns == stamp  # reused, not rebuilt
    (tmp_path / "Barrow-ARM").rename(data / "COSMOS" / "Barrow-ARM")  # the archive changed
    st2, _ = read_ismn(data, depth=(0, 0.25), cache_dir=cache, progress=False)
    assert len(st2) == 2


def test_metadata_default_and_read_only_fallback(ismn_testdata, tmp_path, monkeypatch):
    data = tmp_path / "archive"
    shutil.copytree(ismn_testdata / HEADER, data)
    read_ismn(data, depth=(0, 0.25), progress=False)
    assert list((data / "python_metadata").glob("*.csv"))  # the library's default place, next to the data
    ro = tmp_path / "readonly"
    shutil.copytree(ismn_testdata / HEADER, ro)
    monkeypatch.setenv("GLASS_SM_CACHE", str(tmp_path / "usercache"))
    monkeypatch.setattr(ismn_io.os, "access", lambda p, mode: False)  # as if the data folder were read-only
    st, _ = read_ismn(ro, depth=(0, 0.25), progress=False)
    assert len(st) == 2
    assert not (ro / "python_metadata").exists()
    assert list((tmp_path / "usercache" / "ismn").glob("meta-*/*.csv"))


def test_missing_variable_and_no_sensor_in_depth(ismn_testdata, cache):
    with pytest.raises(MissingVariableError) as e:
        read_ismn(ismn_testdata / HEADER, variable="soil_temperature", cache_dir=cache, progress=False)
    msg = str(e.value)
    assert str(ismn_testdata / HEADER) in msg and "soil_temperature" in msg and "'soil_moisture'" in msg
    st, daily = read_ismn(ismn_testdata / HEADER, depth=(0.5, 1.0), cache_dir=cache, progress=False)
    assert st.empty and daily == {} and list(st.columns) == STATION_COLUMNS


def test_bad_inputs(tmp_path):
    with pytest.raises(MissingFileError) as e:
        read_ismn(tmp_path / "nope.zip", progress=False)
    assert "nope.zip" in str(e.value) and "soil_moisture" in str(e.value)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CorruptFileError) as e:
        read_ismn(broken, progress=False)
    assert "broken.zip" in str(e.value) and "soil_moisture" in str(e.value)
    empty = tmp_path / "empty"
    (empty / "NET" / "ST").mkdir(parents=True)
    with pytest.raises(EmptyDataError) as e:
        read_ismn(empty, progress=False)
    assert str(empty) in str(e.value) and isinstance(e.value, DataError)


def test_daily_means_closed_form():
    t = pd.date_range("2020-01-01", periods=48, freq="h")
    v = pd.Series(np.r_[np.full(24, 0.2), np.full(24, 0.3)], index=t)
    v.iloc[30:45] = np.nan  # day 2 keeps 9 values
    out = daily_means(v, min_obs_per_day=12)
    assert list(out.index) == [pd.Timestamp("2020-01-01")] and out.iloc[0] == pytest.approx(0.2)
    assert daily_means(v, min_obs_per_day=9).iloc[1] == pytest.approx(0.3)
