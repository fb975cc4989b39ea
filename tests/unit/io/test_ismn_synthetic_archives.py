"""glass_sm.io.ismn.read_ismn on tiny ISMN archives written here (header+values layout, LF), damaged on purpose.

1. Nothing is dropped silently: every ``.stm`` file named for the variable and depth ends as a row of the
   station table, with a note naming the file when it could not be read (issue 13: one non-UTF-8 byte in a
   station's ``static_variables.csv`` made the ``ismn`` library's scan leave the whole station out).
2. Values outside the physical range (0-1 m3 m-3 for soil moisture) are dropped before the daily means, whatever
   their flag, and counted per sensor in ``n_out_of_range`` (issue 13: a ``G`` value of 55 was averaged in).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glass_sm.io.errors import CorruptFileError
from glass_sm.io.ismn import SM_PHYSICAL_RANGE, STATION_COLUMNS, read_ismn

DAYS = 3
STATIC_HEADER = ("quantity_name;unit;depth_from[m];depth_to[m];value;description;quantity_source_name;"
                 "quantity_source_description;quantity_source_provider;quantity_source_version;"
                 "quantity_source_resolution;quantity_source_timerange;quantity_source_url;")


def hourly_times(days: int = DAYS) -> pd.DatetimeIndex:
    return pd.date_range("2020-01-01", periods=24 * days, freq="h")


def write_station(root: Path, station: str, values=None, flags=None, *, depth=(0.0, 0.05), code: str = "sm",
                  header_depth=None, static: bool = True) -> Path:
    """One ISMN station ``NET/<station>/``: an ``.stm`` file (header+values) and its static variables csv.

    ``values`` (m3 m-3, one per hour from 2020-01-01 00:00; default 0.20 + 0.001 * hour) and ``flags``
    (default all ``G``); ``header_depth`` writes other depths in the header line than in the file name.
    """
    t = hourly_times()
    values = 0.20 + 0.001 * np.arange(t.size) if values is None else np.asarray(values, float)
    flags = ["G"] * t.size if flags is None else list(flags)
    hd = depth if header_depth is None else header_depth
    folder = root / "NET" / station
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"NET NET {station} 40.00000 10.00000 100.0 {hd[0]:.4f} {hd[1]:.4f} 'Probe'"]
    lines += [f"{ti:%Y/%m/%d %H:%M} {v:.4f} {f} M" for ti, v, f in zip(t, values, flags)]
    stm = folder / (f"NET_NET_{station}_{code}_{depth[0]:.6f}_{depth[1]:.6f}_Probe_"
                    f"{t[0]:%Y%m%d}_{t[-1]:%Y%m%d}.stm")
    stm.write_text("\n".join(lines) + "\n")
    if static:
        src = "test;test soil;glass-sm;1;0.05deg;;;"
        (folder / f"NET_NET_{station}_static_variables.csv").write_text("\n".join([
            STATIC_HEADER, f"saturation;m^3*m^-3;0.00;0.30;0.45;;{src}",
            f"clay fraction;% weight;0.00;0.30;20.0;;{src}",
            "land cover classification;;;;130;Grassland;CCI_landcover_2010;ESA CCI Land Cover;ESA;2010;300m;;;",
            "climate classification;;;;BSk;Arid - Steppe - Cold;koeppen_geiger_2007;KG;;Peel2007;0.1deg;;;"]) + "\n")
    return stm


def static_csv(root: Path, station: str) -> Path:
    return root / "NET" / station / f"NET_NET_{station}_static_variables.csv"


def archive(root: Path, kind: str) -> Path:
    """``root`` itself (``folder``) or a zip of its content (``zip``, members ``NET/<station>/...``)."""
    if kind == "folder":
        return root
    zpath = root.parent / f"{root.name}.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in sorted(root.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(root).as_posix())
    return zpath


def shown(arch: Path, stm: Path, root: Path) -> str:
    """How a note names a file of the archive: its path, or the zip's path joined with the member."""
    return str(stm) if arch == root else str(arch / stm.relative_to(root))


def read(arch: Path, tmp_path: Path, **kwargs):
    return read_ismn(arch, cache_dir=tmp_path / "cache", progress=False, **kwargs)


# ---- 1. every data file a row ------------------------------------------------------------------------------
def _bad_byte(path: Path, old: bytes, new: bytes) -> None:
    raw = path.read_bytes()
    assert old in raw
    path.write_bytes(raw.replace(old, new, 1))


# damage -> (what it does to station B, fragments of B's note, whether B's values are still read)
DAMAGES = {
    "csv_non_utf8_byte": (lambda stm, csv: _bad_byte(csv, b"Grassland", b"Grass\xe9land"),
                          ["static_variables.csv", "byte 0xe9", "not UTF-8", "read directly"], True),
    "csv_empty": (lambda stm, csv: csv.write_bytes(b""), ["static_variables.csv", "empty file"], True),
    "csv_garbled": (lambda stm, csv: csv.write_bytes(b"hello\n1;2\n"), ["static_variables.csv", "not readable"],
                    True),
    "csv_missing": (lambda stm, csv: csv.unlink(), ["no static_variables.csv"], True),
    "stm_header_non_utf8_byte": (lambda stm, csv: _bad_byte(stm, b"NET NET B", b"NET NET B\xff"),
                                 ["read failed", "byte 0xff", "line 1"], False),
    "stm_record_non_utf8_byte": (lambda stm, csv: _bad_byte(stm, b"2020/01/02 05:00", b"2020/01/02 05:00\xe9"),
                                 ["read failed", "byte 0xe9", "line 31"], False),
    # the last record cut in its value: "2020/01/03 23:00 0.27" (of 0.2710 G M), no flag
    "stm_truncated_mid_line": (lambda stm, csv: stm.write_bytes(stm.read_bytes()[:-7]),
                               ["1 damaged record(s) skipped", "truncated"], True),
    "stm_header_only": (lambda stm, csv: stm.write_bytes(stm.read_bytes().split(b"\n")[0] + b"\n"),
                        ["read failed", "no data records"], False),
    "stm_empty": (lambda stm, csv: stm.write_bytes(b""), ["read failed", "empty file"], False),
    "stm_random_bytes": (lambda stm, csv: stm.write_bytes(np.random.default_rng(0).bytes(3000)),
                         ["read failed", "not UTF-8"], False),
}


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_non_utf8_byte_in_static_csv_keeps_the_station(tmp_path, kind):
    """The issue-13 case: the station was missing from the table, with no note."""
    root = tmp_path / "ismn"
    write_station(root, "A")
    write_station(root, "B")
    _bad_byte(static_csv(root, "B"), b"Grassland", b"Grass\xe9land")
    st, daily = read(archive(root, kind), tmp_path)
    assert sorted(st["station"]) == ["A", "B"]
    b = st[st["station"] == "B"].iloc[0]
    assert b["n_daily"] == DAYS and b["n_hourly"] == 24 * DAYS and b["lat"] == 40.0
    assert "NET_NET_B_static_variables.csv" in b["note"] and "byte 0xe9" in b["note"]
    assert not b["note"].startswith("read failed")  # its values are used
    assert st.loc[st["station"] == "A", "note"].iloc[0] == ""


@pytest.mark.parametrize("kind", ["folder", "zip"])
@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_station_ends_as_a_row_with_a_note(tmp_path, kind, damage):
    root = tmp_path / "ismn"
    write_station(root, "A")
    stm = write_station(root, "B")
    spoil, fragments, has_values = DAMAGES[damage]
    spoil(stm, static_csv(root, "B"))
    arch = archive(root, kind)
    st, daily = read(arch, tmp_path)
    assert list(st.columns) == STATION_COLUMNS and set(daily) == set(st.index)
    assert sorted(st["station"]) == ["A", "B"]
    a = st[st["station"] == "A"].iloc[0]
    assert a["note"] == "" and a["n_daily"] == DAYS
    sid, b = next((sid, row) for sid, row in st.iterrows() if row["station"] == "B")
    assert sid == "NET/B/Probe/0-0.05m"
    for fragment in fragments:
        assert fragment in b["note"], b["note"]
    if has_values:
        assert b["n_daily"] >= 1 and not daily[sid].empty
    else:
        assert b["note"].startswith(f"read failed: {shown(arch, stm, root)}: variable soil_moisture: ")
        assert b["n_daily"] == 0 and daily[sid].empty


def test_damaged_zip_member_is_a_row_with_a_note(tmp_path):
    root = tmp_path / "ismn"
    write_station(root, "A")
    stm = write_station(root, "B")
    arch = tmp_path / "ismn.zip"
    with zipfile.ZipFile(arch, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(root.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(root).as_posix())
    with zipfile.ZipFile(arch) as zf:
        info = zf.getinfo(stm.relative_to(root).as_posix())
    raw = bytearray(arch.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + 20  # inside B's compressed data
    raw[start:start + 8] = bytes(8)
    arch.write_bytes(bytes(raw))
    st, daily = read(arch, tmp_path)
    assert sorted(st["station"]) == ["A", "B"] and st.loc["NET/A/Probe/0-0.05m", "n_daily"] == DAYS
    note = st.loc["NET/B/Probe/0-0.05m", "note"]
    assert note.startswith(f"read failed: {shown(arch, stm, root)}: variable soil_moisture: ")


def test_archive_the_library_cannot_scan_at_all_is_read_file_by_file(tmp_path):
    """The only station's csv is unreadable: the library's scan finds nothing and fails (was CorruptFileError)."""
    root = tmp_path / "ismn"
    write_station(root, "B")
    _bad_byte(static_csv(root, "B"), b"Grassland", b"Grass\xe9land")
    st, daily = read(root, tmp_path)
    assert list(st.index) == ["NET/B/Probe/0-0.05m"] and st["n_daily"].iloc[0] == DAYS
    assert "scan" in st["note"].iloc[0]


def test_bad_archive_with_nothing_to_read_still_fails_loudly(tmp_path):
    root = tmp_path / "ismn"
    write_station(root, "B", depth=(0.1, 0.2))  # outside the depth asked for: nothing named for it
    _bad_byte(static_csv(root, "B"), b"Grassland", b"Grass\xe9land")
    with pytest.raises(CorruptFileError, match="cannot be scanned"):
        read(root, tmp_path)


def test_every_data_file_named_for_variable_and_depth_has_one_row(tmp_path):
    """Several damages at once, a header contradicting its name and a loose zip member: one row per file."""
    root = tmp_path / "ismn"
    write_station(root, "A")
    write_station(root, "B")
    _bad_byte(static_csv(root, "B"), b"Grassland", b"Gr\xe9ssland")
    write_station(root, "C").write_bytes(b"")
    write_station(root, "D", header_depth=(0.1, 0.2))  # named 0-5 cm, its header says 10-20 cm
    write_station(root, "E", code="ts")                   # soil temperature: not asked for
    write_station(root, "F", depth=(0.1, 0.2))            # 10-20 cm: not asked for
    loose = write_station(tmp_path / "loose", "G")
    arch = archive(root, "zip")
    with zipfile.ZipFile(arch, "a") as zf:  # a member outside any NETWORK/STATION/ folder
        zf.write(loose, loose.name)
    with zipfile.ZipFile(arch) as zf:
        named = [n for n in zf.namelist() if "_sm_0.000000_0.050000_" in n]
    st, daily = read(arch, tmp_path)
    assert len(named) == 5 and len(st) == 5 and set(daily) == set(st.index)
    assert sorted(st["station"]) == ["A", "B", "C", "D", "G"]
    notes = st.set_index("station")["note"]
    assert notes["A"] == ""
    assert "static_variables.csv" in notes["B"] and st.set_index("station").loc["B", "n_daily"] == DAYS
    assert notes["C"].startswith("read failed") and "empty file" in notes["C"]
    assert notes["D"].startswith("not selected") and "0.1-0.2 m" in notes["D"]
    assert "NETWORK/STATION" in notes["G"] and st.set_index("station").loc["G", "n_daily"] == DAYS


# ---- 2. physical range -------------------------------------------------------------------------------------
def test_physically_impossible_good_values_are_dropped_and_counted(tmp_path):
    """The issue-13 case: a 55 m3 m-3 value flagged G was averaged into the daily mean."""
    root = tmp_path / "ismn"
    t = hourly_times()
    values = 0.20 + 0.001 * np.arange(t.size)
    flags = ["G"] * t.size
    values[5], values[6], values[7] = 55.0, -0.1, 70.0  # day 1: two impossible G values, one flagged C02
    flags[7] = "C02"
    write_station(root, "A", values, flags)
    st, daily, hourly = read(root, tmp_path, return_hourly=True)
    sid = "NET/A/Probe/0-0.05m"
    row = st.loc[sid]
    assert STATION_COLUMNS[-1] == "n_out_of_range" and list(st.columns) == STATION_COLUMNS
    assert row["n_out_of_range"] == 2  # the C02 value is dropped by its flag first
    assert row["n_hourly"] == t.size - 3
    assert "2 hourly value(s) outside the physical range [0, 1]" in row["note"]
    day1 = np.r_[values[:5], values[8:24]]
    assert daily[sid].loc["2020-01-01"] == pytest.approx(day1.mean(), rel=1e-12)
    assert daily[sid].loc["2020-01-02"] == pytest.approx(values[24:48].mean(), rel=1e-12)
    assert hourly[sid]["value"].iloc[5] == 55.0  # the hourly records are as read
    assert st.attrs["valid_range"] == list(SM_PHYSICAL_RANGE) == [0.0, 1.0]


def test_valid_range_parameter(tmp_path):
    root = tmp_path / "ismn"
    t = hourly_times()
    values = np.full(t.size, 0.30)
    values[0], values[1] = 0.7, 55.0
    write_station(root, "A", values)
    sid = "NET/A/Probe/0-0.05m"
    st, _ = read(root, tmp_path)
    assert st.loc[sid, "n_out_of_range"] == 1
    tight, _ = read(root, tmp_path, valid_range=(0.0, 0.6))  # ISMN's own C02 limit
    assert tight.loc[sid, "n_out_of_range"] == 2 and tight.attrs["valid_range"] == [0.0, 0.6]
    off, daily = read(root, tmp_path, valid_range=(-np.inf, np.inf))
    assert off.loc[sid, "n_out_of_range"] == 0 and off.loc[sid, "note"] == ""
    assert daily[sid].iloc[0] == pytest.approx((22 * 0.3 + 0.7 + 55.0) / 24)
    with pytest.raises(ValueError, match="valid_range"):
        read(root, tmp_path, valid_range=(1.0, 0.0))


def test_sensor_with_only_impossible_values(tmp_path):
    root = tmp_path / "ismn"
    write_station(root, "A", np.full(24 * DAYS, 55.0))
    st, daily = read(root, tmp_path)
    row = st.loc["NET/A/Probe/0-0.05m"]
    assert row["n_out_of_range"] == 24 * DAYS and row["n_hourly"] == 0 and row["n_daily"] == 0
    assert row["note"].startswith("no good (flag G) values within the physical range")
    assert f"{24 * DAYS} hourly value(s) outside" in row["note"]


def test_no_default_range_for_other_variables(tmp_path):
    root = tmp_path / "ismn"
    write_station(root, "A", np.full(24 * DAYS, 15.0), code="ts")  # soil temperature, degC
    st, daily = read(root, tmp_path, variable="soil_temperature")
    assert st["n_out_of_range"].tolist() == [0] and daily[st.index[0]].iloc[0] == pytest.approx(15.0)
    assert st.attrs["valid_range"] is None


def test_unreadable_rows_have_zero_counts(tmp_path):
    root = tmp_path / "ismn"
    write_station(root, "A").write_bytes(b"")
    write_station(root, "B")
    st, _ = read(root, tmp_path)
    assert st["n_out_of_range"].tolist() == [0, 0] and st["n_out_of_range"].dtype.kind == "i"
