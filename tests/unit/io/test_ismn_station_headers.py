"""glass_sm.io.ismn.read_station_headers: station positions from the first line of each .stm file (no scan)."""

import pandas as pd
import pytest

from glass_sm.io.ismn import HEADER_COLUMNS, read_station_headers


def _stm(folder, name, first_line, newline="\n"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes((first_line + newline + "1999/01/01 00:00 0.2 G M" + newline).encode())


def test_header_values_layout_one_row_per_station(tmp_path):
    st = tmp_path / "ismn" / "NET" / "ST1"
    _stm(st, "NET_NET_ST1_sm_0.000000_0.050000_Probe_19990101_20011231.stm",
         "NET NET ST1 39.10000 -100.90000 250.0 0.0000 0.0500 'Probe'")
    _stm(st, "NET_NET_ST1_sm_0.050000_0.100000_Probe_19970101_20001231.stm",
         "NET NET ST1 39.10000 -100.90000 250.0 0.0500 0.1000 'Probe'", newline="\r")  # CR-only line ends
    _stm(tmp_path / "ismn" / "python_metadata", "NET_NET_X_sm_0.0_0.05_P_19990101_20011231.stm",
         "NET NET X 1 2 3 0 0.05 'P'")  # the ismn library's cache is not data
    t = read_station_headers(tmp_path / "ismn")
    assert list(t.columns) == HEADER_COLUMNS
    assert t.station.tolist() == ["ST1"] and t.lat[0] == pytest.approx(39.1)
    assert t.loc[0, "depth_from"] == 0.0 and t.loc[0, "depth_to"] == pytest.approx(0.1)
    assert t.loc[0, "first"] == pd.Timestamp("1997-01-01") and t.loc[0, "last"] == pd.Timestamp("2001-12-31")
    assert t.loc[0, "elevation"] == 250.0


def test_ceop_layout_and_bad_files(tmp_path):
    _stm(tmp_path / "A", "CSE_COSMOS_ARM-1_sm_0.000000_0.190000_Cosmic-ray-Probe_20170810_20180809.stm",
         "2017/08/10 00:00 2017/08/10 00:00 CSE COSMOS ARM-1 36.60000 -97.49000 314.00 0.00 0.19 0.25 G M",
         newline="\r\n")
    _stm(tmp_path / "B", "broken.stm", "not a header at all")
    t = read_station_headers(tmp_path)
    assert t[["network", "station"]].values.tolist() == [["COSMOS", "ARM-1"]]
    assert t.lon[0] == pytest.approx(-97.49) and t.depth_to[0] == pytest.approx(0.19)
    assert t["first"][0] == pd.Timestamp("2017-08-10")
    empty = read_station_headers(tmp_path / "B")
    assert empty.empty and list(empty.columns) == HEADER_COLUMNS
