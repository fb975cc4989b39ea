"""glass_sm.data.coverage: each source's days are listed against the period before any reading; a long run of
missing days is an error naming the source and the days, unless allowed (then built, flagged and counted)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from glass_sm import config, twin
from glass_sm.config import ConfigError
from glass_sm.data import coverage, cube
from glass_sm.data.coverage import InputCoverageError, SourceDays
from glass_sm.io import era5land, glass_avhrr, glass_modis, static
from glass_sm.io.errors import MissingFileError
from glass_sm.paths import RunPaths

SMOKE = Path(__file__).resolve().parents[3] / "params" / "smoke.yaml"
# the smoke domain's western half over two years: a whole year can go missing and the other one remains
TWO_YEARS = {"period.start": "1999-01-01", "period.end": "2000-12-31", "domain.lon_max": -99.8,
             "twin.n_stations": 1}


def _cfg(root, **over):
    return config.load(SMOKE, {"run.results_dir": str(root), **TWO_YEARS, **over})


@pytest.fixture(scope="module")
def twin_raw(tmp_path_factory):
    """The twin's input folder (``data/raw``), written once for the module (~5 s); read-only."""
    cfg = _cfg(tmp_path_factory.mktemp("coverage_twin"))
    twin.generate_twin(cfg, progress=False)
    return Path(cfg.data.avhrr_dir).parent


@pytest.fixture
def inputs(twin_raw, tmp_path):
    """The configuration of a run under ``tmp_path`` whose inputs are a (hard-linked) copy of the twin's files:
    a test deletes some of them without touching the module's twin."""
    cfg = _cfg(tmp_path)
    raw = Path(cfg.data.avhrr_dir).parent
    shutil.copytree(twin_raw, raw, copy_function=os.link, ignore=shutil.ignore_patterns("ismn", "esa_cci"))
    return cfg


def _no_reading(monkeypatch):
    """Make every reader of the cube fail: what happens before them reads no file."""
    def fail(*args, **kwargs):
        raise AssertionError("an input file was read before the coverage check")

    for module, name in ((glass_avhrr, "read_glass_albedo"), (glass_avhrr, "read_glass_lst"),
                         (era5land, "read_era5land_swvl1"), (glass_modis, "read_glass_modis_sm"),
                         (static, "read_static")):
        monkeypatch.setattr(module, name, fail)


def _row(table: pd.DataFrame, source: str) -> pd.Series:
    return table.set_index("source").loc[source]


# ---------------------------------------------------------------------------------------------------------
# the fault: a whole year of LST missing was filled from climatology without a word
# ---------------------------------------------------------------------------------------------------------
def test_a_whole_year_without_lst_files_is_an_error_before_any_reading(inputs, monkeypatch):
    shutil.rmtree(Path(inputs.data.avhrr_dir) / "lst" / "1999")
    _no_reading(monkeypatch)
    with pytest.raises(InputCoverageError) as err:
        cube.build_cube(inputs, progress=False)
    msg = str(err.value)
    assert err.value.sources == ["lst"]                                      # only the source that lacks files
    assert "lst" in msg and "GLASS08B31" in msg and "1999-01-01..1999-12-31 (365 days)" in msg
    assert "cube.allow_missing_inputs: [lst]" in msg and "cube.max_missing_run_days" in msg
    assert not RunPaths.from_config(inputs).cube.exists()
    # a limit above the run's length accepts it (nothing is read here either: the readers still fail)
    relaxed = _cfg(inputs.run.results_dir, **{"cube.max_missing_run_days": 400})
    assert _row(coverage.check_coverage(relaxed), "lst")["status"] == "short gaps"


def test_an_allowed_missing_year_is_built_filled_flagged_and_counted(inputs):
    shutil.rmtree(Path(inputs.data.avhrr_dir) / "lst" / "1999")
    cfg = _cfg(inputs.run.results_dir, **{"cube.allow_missing_inputs": ["lst"]})
    table = coverage.check_coverage(cfg)
    lst = _row(table, "lst")
    assert (lst["days_expected"], lst["days_present"], lst["days_missing"]) == (731, 366, 365)
    assert (lst["long_runs"], lst["long_run_days"], lst["longest_run_days"]) == (1, 365, 365)
    assert (lst["first_missing"], lst["last_missing"]) == ("1999-01-01", "1999-12-31")
    assert lst["allowed"] and lst["status"] == "long gaps, allowed"
    assert "1999-01-01..1999-12-31 (365 days)" in lst["long_run_list"]
    for source in ("albedo", "era5land", "glass_modis"):
        assert _row(table, source)["status"] == "complete" and not _row(table, source)["allowed"]
    ds = cube.open_cube(cube.build_cube(cfg, progress=False, coverage=table)).load()
    assert (ds.lst_filled.sel(time="1999") == 1).all() and bool(np.isfinite(ds.lst).all())
    assert float(ds.lst_filled.sel(time="2000").mean()) < 1                 # observed days stay observed
    assert "lst: 1999-01-01..1999-12-31 (365 days)" in ds.attrs["missing_inputs"]


def test_a_single_missing_day_is_a_short_gap_not_an_error(inputs):
    day = pd.Timestamp("2000-04-10")
    (one,) = (Path(inputs.data.avhrr_dir) / "lst" / "2000").glob(f"GLASS08B31.V*.A{day:%Y%j}.*.hdf")
    one.unlink()
    table = coverage.check_coverage(inputs)
    lst = _row(table, "lst")
    assert (lst["days_missing"], lst["long_runs"], lst["status"]) == (1, 0, "short gaps")
    assert lst["first_missing"] == lst["last_missing"] == "2000-04-10"
    ds = cube.open_cube(cube.build_cube(inputs, progress=False, coverage=table))
    assert (ds.lst_filled.sel(time=day) == 1).all() and "missing_inputs" not in ds.attrs


# ---------------------------------------------------------------------------------------------------------
# each source
# ---------------------------------------------------------------------------------------------------------
def test_labels_are_expected_from_the_label_start_only(inputs, monkeypatch):
    _no_reading(monkeypatch)
    labels = _row(coverage.coverage_table(inputs), "glass_modis")
    # 1999 and 2000-01-01..02-23 are before the GLASS-MODIS record: not missing
    assert (labels["first_day"], labels["days_expected"], labels["status"]) == ("2000-02-24", 312, "complete")
    for day in pd.date_range("2000-06-01", "2000-07-31"):
        (Path(inputs.data.glass_modis_dir) / "2000" / glass_modis.glass_modis_filename(day.date())).unlink()
    with pytest.raises(InputCoverageError, match=r"glass_modis .*2000-06-01\.\.2000-07-31 \(61 days\)"):
        coverage.check_coverage(inputs)
    later = _cfg(inputs.run.results_dir, **{"period.label_start": "2000-08-01"})
    assert _row(coverage.check_coverage(later), "glass_modis")["days_missing"] == 0


def test_era5land_days_come_from_the_time_steps_of_its_files(inputs, monkeypatch):
    _no_reading(monkeypatch)
    path = Path(inputs.data.era5land_dir) / "era5land_swvl1_1999.nc"
    with xr.open_dataset(path, mask_and_scale=False, decode_times=False) as ds:
        first_half = ds.isel(time=slice(0, 4 * 181)).load()               # 6-hourly steps of 1999-01-01..06-30
    path.unlink()
    first_half.to_netcdf(path, format="NETCDF3_64BIT")             # the name still says the whole year
    with pytest.raises(InputCoverageError, match=r"era5land .*1999-07-01\.\.1999-12-31 \(184 days\)"):
        coverage.check_coverage(inputs)
    allowed = _cfg(inputs.run.results_dir, **{"cube.allow_missing_inputs": ["era5land"]})
    table = coverage.check_coverage(allowed)
    row = _row(table, "era5land")
    assert (row["days_present"], row["days_missing"], row["allowed"]) == (547, 184, True)
    monkeypatch.undo()                                                      # allowed: read, filled, recorded
    ds = cube.open_cube(cube.build_cube(allowed, progress=False, coverage=table))
    assert bool(ds.sm_era5land.notnull().all()) and "era5land: 1999-07-01..1999-12-31" in ds.attrs["missing_inputs"]


def test_a_missing_static_layer_is_named_before_reading(inputs, monkeypatch):
    _no_reading(monkeypatch)
    (Path(inputs.data.static_dir) / "sand.tif").unlink()
    (Path(inputs.data.static_dir) / "silt.tif").unlink()
    with pytest.raises(MissingFileError, match="sand, silt"):
        coverage.coverage_table(inputs)


# ---------------------------------------------------------------------------------------------------------
# the rule, without files
# ---------------------------------------------------------------------------------------------------------
def test_missing_runs_are_counted_and_a_few_listed_then_a_count():
    days = pd.date_range("2001-01-01", "2001-12-31")
    present = np.ones(len(days), bool)
    for k in range(8):                                                      # eight runs of 3 missing days
        present[10 + 30 * k: 13 + 30 * k] = False
    present[-1] = False                                                     # and the last day
    src = SourceDays("lst", "/data/lst", "GLASS08B31 files", days, present)
    runs = src.missing_runs()
    assert len(runs) == 9 and runs[0] == (pd.Timestamp("2001-01-11"), pd.Timestamp("2001-01-13"))
    assert runs[-1] == (pd.Timestamp("2001-12-31"), pd.Timestamp("2001-12-31"))
    text = coverage.format_runs(runs[:8], limit=5)
    assert text.count("(3 days)") == 5 and text.endswith("and 3 more runs")
    row = coverage.coverage_row(src, max_run_days=2, allowed=False)
    assert (row["days_missing"], row["long_runs"], row["long_run_days"], row["status"]) == (25, 8, 24,
                                                                                         "long gaps, refused")
    assert coverage.coverage_row(src, max_run_days=3, allowed=False)["status"] == "short gaps"
    empty = SourceDays("glass_modis", "/data/sm", "labels", days[:0], np.zeros(0, bool))
    assert coverage.coverage_row(empty, 30, False)["status"] == "none expected"


def test_unknown_source_in_allow_missing_inputs_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="allow_missing_inputs"):
        _cfg(tmp_path, **{"cube.allow_missing_inputs": ["lsts"]})
    with pytest.raises(ConfigError, match="max_missing_run_days"):
        _cfg(tmp_path, **{"cube.max_missing_run_days": -1})


def test_8_day_albedo_composites_are_expected_on_their_dates_only(tmp_path):
    folder = tmp_path / "albedo" / "2001"
    folder.mkdir(parents=True)
    dates, first, last = coverage.composite_days("2001-01-05", "2001-12-31", 8)
    assert dates[0] == pd.Timestamp("2001-01-01") and first[0] == pd.Timestamp("2001-01-05")  # covers the start
    assert len(dates) == 46 and dates[-1].day_of_year == 361 and last[-1] == pd.Timestamp("2001-12-31")
    for day in dates:
        if not pd.Timestamp("2001-03-01") <= day <= pd.Timestamp("2001-04-30"):   # 7 composites missing
            (folder / f"GLASS02B05.V04.A{day:%Y%j}.2018062.hdf").touch()          # names only: nothing is read
    src = coverage.avhrr_days(tmp_path, "albedo", "2001-01-05", "2001-12-31", cadence_days=8)
    assert src.cadence_days == 8 and (len(src.days), int(src.present.sum())) == (46, 39)
    # the composites of 03-06 .. 04-23 are missing: the days they stand for, 03-06 .. 04-30
    assert src.missing_runs() == [(pd.Timestamp("2001-03-06"), pd.Timestamp("2001-04-30"))]
    row = coverage.coverage_row(src, max_run_days=30, allowed=False)
    assert (row["first_day"], row["days_expected"], row["long_run_days"]) == ("2001-01-05", 46, 56)
    assert row["status"] == "long gaps, refused"
    (folder / "GLASS02B05.V04.A2001057.2018062.hdf").unlink()                   # one more: 02-26 .. 04-30
    assert coverage.avhrr_days(tmp_path, "albedo", "2001-01-05", "2001-12-31").missing_runs()[0][0] == \
        pd.Timestamp("2001-02-26")


def test_era5land_time_steps_of_every_layout(tmp_path):
    """Legacy (``time``), current CDS (``valid_time``) and forecast-style (``time`` + ``step``) netCDF files."""
    grid = {"latitude": [40.1, 40.0], "longitude": [260.0, 260.1]}

    def write(name, dims, coords, n):
        sm = xr.DataArray(np.full((*n, 2, 2), 0.2, np.float32), dims=(*dims, "latitude", "longitude"),
                          attrs={"units": "m**3 m**-3"})
        xr.Dataset({"swvl1": sm}, coords={**coords, **grid}).to_netcdf(tmp_path / name)

    write("legacy.nc", ("time",), {"time": pd.date_range("2001-01-01", periods=8, freq="6h")}, (8,))  # 01-01..02
    write("current.nc", ("valid_time",), {"valid_time": pd.date_range("2001-01-04", periods=2, freq="D"),
                                          "number": 0, "expver": ("valid_time", ["0001", "0005"])}, (2,))
    write("steps.nc", ("time", "step"), {"time": pd.to_datetime(["2001-01-06"]),
                                         "step": pd.to_timedelta([6, 30], unit="h")}, (1, 2))   # 01-06, 01-07
    src = coverage.era5land_days(tmp_path, "2001-01-01", "2001-01-08")
    assert [d.day for d in src.days[src.present]] == [1, 2, 4, 5, 6, 7]
    assert src.missing_runs() == [(pd.Timestamp("2001-01-03"),) * 2, (pd.Timestamp("2001-01-08"),) * 2]
