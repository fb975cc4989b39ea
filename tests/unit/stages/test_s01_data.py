"""glass_sm.stages.s01_data: stage 01's tables, numbers and figures on a toy cube (glass_sm.testing)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from glass_sm import stages
from glass_sm.contract import read_table
from glass_sm.data import coverage
from glass_sm.data.coverage import InputCoverageError, SourceDays
from glass_sm.evaluation.aggregate import domain_mean
from glass_sm.stages import s01_data as s01
from glass_sm.testing import make_toy_cube

SMOKE = Path(__file__).resolve().parents[3] / "params" / "smoke.yaml"


@pytest.fixture
def ctx(tmp_path):
    return stages.setup(SMOKE, {"run.results_dir": str(tmp_path)}, "01_data_preparation")


@pytest.fixture(scope="module")
def toy():
    """``(cube, truth)`` on the smoke grid (8 x 8 cells at 40.0-40.4 N, 100.0-99.6 W) and period."""
    cube, truth = make_toy_cube(n_lat=8, n_lon=8, lat_max=40.4, lon_min=-100.0, n_ocean=0, seed=4, with_truth=True)
    return cube, truth


def _listed(lst_present=None):
    """What :func:`glass_sm.data.coverage.list_inputs` returns for the smoke period, without files: 8-day albedo
    composites, daily LST (all present unless ``lst_present`` says), ERA5-Land and labels from 2000-02-24."""
    days = pd.date_range("1998-01-01", "2002-12-31")
    dates, first, last = coverage.composite_days(days[0], days[-1], 8)
    labels = days[days >= "2000-02-24"]
    every = np.ones(len(days), bool)
    return [SourceDays("albedo", "/raw/avhrr", "GLASS02B05 files", dates, np.ones(len(dates), bool), first, last, 8),
            SourceDays("lst", "/raw/avhrr", "GLASS08B31 files", days, every if lst_present is None else lst_present),
            SourceDays("era5land", "/raw/era5land", "ERA5-Land swvl1 time steps", days, every),
            SourceDays("glass_modis", "/raw/glass_modis", "GLASS-MODIS SM files", labels, np.ones(len(labels), bool))]


def test_input_coverage_written_then_checked(ctx, tmp_path, monkeypatch):
    monkeypatch.setattr(coverage, "list_inputs", lambda cfg, listing=None: _listed())
    table = s01.input_coverage(ctx)
    assert list(table["source"]) == ["albedo", "lst", "era5land", "glass_modis", "static"]
    assert set(table["status"]) == {"complete"}
    written = read_table(ctx.paths, "input_coverage", keep_default_na=False)
    assert list(written["days_expected"]) == [230, 1826, 1826, 1042, 0] and not written["allowed"].any()
    text = s01.coverage_text(table)
    assert "* Albedo: 230 of 230 composites 1998-01-01..2002-12-31." in text
    assert "* GLASS-MODIS labels: 1042 of 1042 days 2000-02-24..2002-12-31." in text
    # a whole year of LST missing: the table is written, then the stage stops, naming the source and the days
    no_1999 = np.asarray(pd.date_range("1998-01-01", "2002-12-31").year != 1999)
    monkeypatch.setattr(coverage, "list_inputs", lambda cfg, listing=None: _listed(no_1999))
    with pytest.raises(InputCoverageError, match=r"lst .*1999-01-01\.\.1999-12-31 \(365 days\)"):
        s01.input_coverage(ctx)
    assert read_table(ctx.paths, "input_coverage").set_index("source").loc["lst", "status"] == "long gaps, refused"
    # allowed: returned, and the text says what is filled
    allowed = stages.setup(SMOKE, {"run.results_dir": str(tmp_path), "cube.allow_missing_inputs": ["lst"]},
                           "01_data_preparation")
    lst = s01.input_coverage(allowed).set_index("source").loc["lst"]
    assert (lst["days_missing"], lst["long_runs"], lst["allowed"]) == (365, 1, True)
    assert ("LST: 1461 of 1826 days 1998-01-01..2002-12-31; 365 days in 1 run(s) longer than the limit, allowed by "
            "cube.allow_missing_inputs: 1999-01-01..1999-12-31 (365 days).") in s01.coverage_text(
                s01.input_coverage(allowed))


def test_gap_fractions_written_and_counted_from_the_label_start(ctx, toy):
    cube, _ = toy
    gaps = s01.gap_fractions(ctx, cube)
    assert list(gaps["variable"]) == ["albedo", "lst", "sm_label"]
    g = gaps.set_index("variable")["gap_fraction"]
    assert g["albedo"] == pytest.approx(float(cube.albedo_filled.mean()))
    labels = cube.sm_label.sel(time=slice("2000-02-24", None))
    assert g["sm_label"] == pytest.approx(float(labels.isnull().mean()))       # not the days before the start
    assert gaps.set_index("variable").loc["sm_label", "counted_from"] == "2000-02-24"
    pd.testing.assert_frame_equal(read_table(ctx.paths, "gap_fractions"), gaps)
    early = cube.sel(time=slice(None, "1999-12-31"))                             # period before any label
    assert np.isnan(s01.gap_fractions(ctx, early).set_index("variable").loc["sm_label", "gap_fraction"])


def test_era5_bias_table_stats_and_text(ctx, toy):
    cube, truth = toy
    assert s01.era5_bias(ctx, cube, None) is None and s01.era5_bias_stats(None) is None
    assert "real data" in s01.era5_bias_text(None)
    bias, table = s01.era5_bias(ctx, cube, truth)
    assert bias.dims == ("lat", "lon") and len(table) == 64
    expected = (cube.sm_era5land - truth).mean("time")
    np.testing.assert_allclose(table["era5_bias"], expected.values.ravel(), rtol=1e-5)
    np.testing.assert_allclose(table["mean_truth"], truth.mean("time").values.ravel(), rtol=1e-6)
    written = read_table(ctx.paths, "era5_bias")
    np.testing.assert_allclose(written.to_numpy(), table.to_numpy(), rtol=1e-6)
    stats = s01.era5_bias_stats((bias, table))
    assert stats["mean"] == pytest.approx(float(domain_mean(bias)))              # area-weighted
    assert stats["min"] <= stats["mean"] <= stats["max"] and stats["n_cells"] == 64
    assert stats["mean"] > 0                                                     # the toy's ERA5 is wet-biased
    assert f"{stats['mean']:+.4f}" in s01.era5_bias_text(stats)


def test_era5_bias_stats_closed_form():
    lat = np.array([0.0, 60.0])
    bias = xr.DataArray([[0.01, 0.01], [0.04, 0.04]], coords={"lat": lat, "lon": [0.0, 1.0]}, dims=("lat", "lon"))
    stats = s01.era5_bias_stats((bias, None))
    # cos-latitude weights 1 and 0.5: (0.01 + 0.5 * 0.04) / 1.5 = 0.02, not the unweighted 0.025
    assert stats["mean"] == pytest.approx(0.02) and (stats["min"], stats["max"]) == (0.01, 0.04)


def test_summary_text_formats_the_returned_tables():
    gaps = pd.DataFrame({"variable": ["albedo", "lst", "sm_label"], "gap_fraction": [0.5167, 0.4462, 0.0499],
                         "counted_from": ["1998-01-01", "1998-01-01", "2000-02-24"]})
    text = s01.summary_text(gaps, {"mean": 0.02534, "min": 0.0108, "max": 0.05, "n_cells": 64})
    assert "albedo 51.7 %" in text and "LST 44.6 %" in text and "5.0 %" in text
    assert "+0.025 m3 m-3 on the domain mean, +0.011 to +0.050" in text
    assert len(s01.summary_text(gaps).splitlines()) == 1                          # no truth, no bias line


def test_observed_anomaly_shows_a_step_and_ignores_filled_values():
    time = pd.date_range("1998-01-01", "2002-12-31")
    doy = time.day_of_year.to_numpy()
    step = np.where(time >= "2001-01-01", 1.0, -1.0)
    lst = 290 + 10 * np.sin(2 * np.pi * doy / 365.25) + step
    values = np.repeat(lst[:, None, None], 2, axis=1).repeat(3, axis=2)
    filled = np.zeros(values.shape, np.int8)
    filled[::7] = 1
    values[::7] = 400.0                                                           # filled values: ignored
    ds = xr.Dataset({"lst": (("time", "lat", "lon"), values), "lst_filled": (("time", "lat", "lon"), filled)},
                    coords={"time": time, "lat": [40.1, 40.05], "lon": [-100.0, -99.95, -99.9]})
    a = s01.observed_anomaly(ds, "lst", "lst_filled")
    assert isinstance(a, pd.Series) and len(a) == len(time)
    assert a["1999-03-01":"2000-09-30"].mean() == pytest.approx(-0.8, abs=0.25)  # -1 K + mean removed
    assert a["2001-03-01":"2002-09-30"].mean() == pytest.approx(1.2, abs=0.25)
    assert a.max() < 5                                                            # the 400 K fills never enter


def test_small_helpers(ctx, toy):
    cube, _ = toy
    assert s01.CONFIG_SECTIONS == ("run", "domain", "period", "twin", "data", "cube", "figures")
    assert s01.map_day(ctx.cfg) == pd.Timestamp("2001-07-15")
    summary = s01.cube_summary(cube)
    assert summary.loc["lst", "units"] == "K" and summary.loc["sand", "dims"] == "lat x lon"
    assert summary.loc["albedo_filled", "max"] == 1.0
    plat = s01.platforms_seen(cube)
    assert list(plat["platform"]) == ["NOAA-14", "NOAA-16"] and plat["days"].sum() == cube.sizes["time"]
    assert plat.loc[1, "first"] == pd.Timestamp("2001-01-01")
    written = {"albedo": [Path("a/x1.hdf"), Path("a/x2.hdf")], "truth": Path("d/truth.nc"),
               "manifest": Path("d/twin_manifest.json"), "regenerated": False}
    files = s01.twin_files(written)
    assert files.set_index("kind")["files"].to_dict() == {"albedo": 2, "truth": 1, "manifest": 1}
    assert "4 files" in s01.inputs_text(ctx, written) and "reused" in s01.inputs_text(ctx, written)
    assert s01.twin_files(None).empty and "real data" in s01.inputs_text(ctx, None)


def test_run_writes_every_table_and_figure(ctx, toy, monkeypatch):
    cube, truth = toy
    monkeypatch.setattr(s01, "make_twin", lambda ctx, progress=False: None)
    monkeypatch.setattr(coverage, "list_inputs", lambda cfg, listing=None: _listed())
    monkeypatch.setattr(s01, "build_cube", lambda ctx, progress=False, coverage=None, listing=None: cube)
    monkeypatch.setattr(s01, "open_truth", lambda ctx: truth)
    out = s01.run(ctx)
    for name in ("01_input_maps", "01_pixel_series", "01_era5_wet_bias", "01_sensor_transitions"):
        assert isinstance(out[name], plt.Figure)
        assert all(ctx.paths.figure(name, fmt).is_file() for fmt in ctx.cfg.figures.formats)
    for name in ("input_coverage", "gap_fractions", "era5_bias"):
        assert not read_table(ctx.paths, name).empty
    assert out["input_coverage"]["status"].eq("complete").all()
    assert out["era5_bias_stats"]["n_cells"] == 64 and len(out["01_input_maps"].axes) == 12   # 6 maps + colorbars


def test_ingest_text_names_the_path_that_ran():
    import xarray as xr

    from glass_sm.stages import s01_data

    assert "day-major" in s01_data.ingest_text(xr.Dataset(attrs={"ingest_method": "day_major"}))
    assert "tile by tile" in s01_data.ingest_text(xr.Dataset(attrs={"ingest_method": "tile"}))
    assert "tile by tile" in s01_data.ingest_text(xr.Dataset())  # cubes built before the attribute existed
