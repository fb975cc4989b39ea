"""Round trip: the twin's files read back through the package's own readers (``glass_sm.io``) reproduce the
values the twin simulated, with CF units and fills masked — the same readers that open real files."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from glass_sm.grid import Domain
from glass_sm.io import era5land, esa_cci, glass_avhrr, glass_modis, ismn, static
from glass_sm.twin import sensors


@pytest.fixture(scope="module")
def twin(smoke_sim):
    """``(cfg, domain, sim, avhrr)`` of the session's smoke twin (files written by the ``smoke_twin`` fixture)."""
    cfg, s, av = smoke_sim
    return cfg, Domain.from_config(cfg), s, av


def test_avhrr_readers_round_trip(twin):
    """The default twin exercises the real path: 8-day composites, per-band QC, no Satellite attribute."""
    cfg, dom, s, av = twin
    comp = sensors.albedo_composites(av, s["dates"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                   # no missing QC, nothing implausible
        alb = glass_avhrr.read_glass_albedo(cfg.data.avhrr_dir, cfg.period.start, cfg.period.end, dom,
                                            progress=False)
        lst = glass_avhrr.read_glass_lst(cfg.data.avhrr_dir, cfg.period.start, cfg.period.end, dom, progress=False)
    n = len(alb.time)
    assert n == 5 * 46 and list(alb.time.values) == list(comp["dates"][:n].values)
    assert alb["albedo_wsa"].attrs["units"] == "1" and lst.attrs["units"] == "K"
    assert alb["albedo_wsa"].attrs["qc_layer"] == "QC_shortwave" and alb.attrs["n_files_without_qc"] == 0
    np.testing.assert_allclose(alb["lat"], dom.lat)
    # composites with QC level <= 1 kept (default 'acceptable'), within the int16 quantisation
    expected = np.where(comp["qc_level"][:n] <= 1, comp["wsa_sw"][:n], np.nan)
    np.testing.assert_array_equal(np.isnan(alb["albedo_wsa"].values), np.isnan(expected))
    np.testing.assert_allclose(alb["albedo_wsa"].values, expected, atol=6e-5, equal_nan=True)
    np.testing.assert_array_equal(np.isnan(lst.values), np.isnan(av["lst"]))
    np.testing.assert_allclose(lst.values, av["lst"], atol=6e-3, equal_nan=True)
    assert list(np.unique(alb["platform"].values)) == ["NOAA-14", "NOAA-16"]
    assert alb.platform.attrs["source"].startswith("glass_sm.platforms.platform_of")
    assert list(np.unique(lst["platform"].values)) == ["NOAA-14", "NOAA-16"]


def test_albedo_daily_from_the_twin(twin):
    cfg, dom, s, av = twin
    d = glass_avhrr.read_glass_albedo_daily(cfg.data.avhrr_dir, cfg.period.start, cfg.period.end, dom,
                                            progress=False)
    assert list(d.time.values) == list(s["dates"].values)
    flag = d.composite_flag.values
    on_day = np.asarray((s["dates"].day_of_year - 1) % 8 == 0)
    assert set(np.unique(flag[~on_day])) <= {glass_avhrr.FLAG_INTERPOLATED, glass_avhrr.FLAG_GAP}
    # the last days of 2002 are bracketed by the composite of 2003-01-01 (made of the period's last days): where
    # that composite passes QC, the period's last day is no gap
    comp = glass_avhrr.read_glass_albedo(cfg.data.avhrr_dir, cfg.period.start, pd.Timestamp("2003-01-01"), dom,
                                         progress=False)
    valid_end = np.isfinite(comp.albedo_wsa.sel(time="2003-01-01").values)
    assert valid_end.any()
    assert (flag[-1][valid_end] != glass_avhrr.FLAG_GAP).all()
    # daily values follow the clear-sky signal: correlated with the 8-day running mean of the daily retrievals
    ok = np.isfinite(d.albedo_wsa.values)
    assert 0.75 < ok.mean() < 1.0
    run = pd.DataFrame(av["wsa_sw"].reshape(len(s["dates"]), -1)).rolling(8, center=True, min_periods=1).mean()
    run = run.to_numpy().reshape(av["wsa_sw"].shape)
    both = ok & np.isfinite(run)
    assert np.corrcoef(d.albedo_wsa.values[both], run[both])[0, 1] > 0.9


def test_era5land_reader_round_trip_and_wet_bias(twin):
    cfg, dom, s, _ = twin
    e5 = era5land.read_era5land_swvl1(cfg.data.era5land_dir, cfg.period.start, cfg.period.end, domain=dom,
                                      progress=False)
    assert e5.attrs["units"] == "m3 m-3"
    assert np.all(np.diff(e5["lat"].values) < 0) and e5["lon"].min() > -180
    fine = era5land.to_product_grid(e5, dom)
    assert fine.shape == (len(s["dates"]),) + dom.shape and not np.isnan(fine.values).any()
    truth = xr.open_dataset(cfg.data.truth_path, engine="netcdf4")["sm_true"].load()
    assert float((fine - truth.values).mean()) > 0.01  # the reanalysis' wet bias survives reading


def test_glass_modis_reader_recovers_the_labels(twin, smoke_retrieval):
    cfg, dom, s, _ = twin
    _, _, retrieval = smoke_retrieval
    lab = glass_modis.read_glass_modis_sm(cfg.data.glass_modis_dir, cfg.period.start, cfg.period.end, dom,
                                          progress=False)
    before = lab.sel(time=slice(None, "2000-02-23"))
    assert before.isnull().all()  # no labels before MODIS Terra
    after = lab.sel(time=slice("2000-02-24", None)).values
    ok = np.isfinite(after)
    assert ok.sum() > 0.8 * 0.9 * after.size
    # each cell: the mean of its pixels, which all hold the cell's retrieval value
    np.testing.assert_allclose(after[ok], retrieval.sm[ok], rtol=1e-6)


def test_static_reader_round_trip(twin):
    cfg, dom, s, _ = twin
    st = static.read_static(cfg.data.static_dir, dom)
    texture = st["sand"] + st["clay"] + st["silt"]
    np.testing.assert_allclose(texture.values, 1.0, atol=1e-5)
    assert st["elevation"].attrs["units"] == "m" and float(st["elevation"].min()) > 0


def test_cci_and_ismn_readers(twin):
    cfg, dom, s, _ = twin
    cci = esa_cci.read_esa_cci_sm(cfg.data.esa_cci_dir, cfg.period.start, cfg.period.end, domain=dom)
    assert abs(float(cci["lat"][0] - cci["lat"][1])) == pytest.approx(0.25)
    assert 0 < float(cci.isnull().mean()) < 1
    stations, daily = ismn.read_ismn(cfg.data.stations_dir, depth=(0.0, 0.05), progress=False)
    assert len(stations) == cfg.twin.n_stations
    assert all(0 <= v.min() and v.max() < 0.7 for v in daily.values() if len(v))
