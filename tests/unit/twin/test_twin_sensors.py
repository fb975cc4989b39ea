"""glass_sm.twin.sensors: what each product sees of the simulated world (physics, gaps, noise, platforms)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyhdf.SD import SD

from glass_sm import twin as gtwin
from glass_sm.grid import block_mean
from glass_sm.twin import sensors


def test_albedo_darker_when_wet(smoke_sim):
    _, s, av = smoke_sim
    rs, cs = s["grids"].out_in_sim
    theta, fveg = s["theta"][:, rs, cs], s["f_veg"][:, rs, cs]
    # model: at fixed vegetation cover, albedo falls as the soil wets
    wet = sensors.albedo_model(0.35, 0.45, 0.3, 0.4)
    dry = sensors.albedo_model(0.10, 0.45, 0.3, 0.4)
    assert wet < dry
    # simulation: soil albedo retrieved on cloud-free days, vegetation removed, anti-correlates with theta
    ok = np.isfinite(av["wsa_sw"]) & (fveg < 0.8)
    soil = (av["wsa_sw"] - fveg * gtwin.ALBEDO_VEG_SW) / (1 - fveg)
    assert np.corrcoef(soil[ok], theta[ok])[0, 1] < -0.5
    assert not np.isfinite(av["wsa_sw"][s["weather"]["cloudy"][:, rs, cs]]).any()   # cloudy -> missing
    assert (av["bsa_sw"][ok] >= 0).all() and (av["bsa_sw"][ok] <= 1).all()


def test_lst_cooler_when_wet(smoke_sim):
    _, s, av = smoke_sim
    lim = {"theta_wp": 0.12, "theta_fc": 0.27}
    args = dict(t_air=295.0, dtr=12.0, rs=25.0, limits=lim, f_veg=0.3, hour=13.7)
    assert sensors.lst_model(theta=0.30, **args) < sensors.lst_model(theta=0.13, **args) - 3.0
    # simulation: at given radiation, vegetation and air-temperature range, wetter days have a smaller
    # LST - T_air excess (multiple regression over the clear-sky retrievals)
    rs, cs = s["grids"].out_in_sim
    w = {k: s["weather"][k][:, rs, cs] for k in ("t_air", "rs", "dtr")}
    ok = np.isfinite(av["lst"])
    y = (av["lst"] - w["t_air"])[ok]
    X = np.column_stack([s["theta"][:, rs, cs][ok], w["rs"][ok], w["dtr"][ok], s["f_veg"][:, rs, cs][ok],
                         np.ones(ok.sum())])
    coef, res, *_ = np.linalg.lstsq(X, y, rcond=None)
    se = np.sqrt(res[0] / (len(y) - X.shape[1]) * np.linalg.inv(X.T @ X)[0, 0])
    assert coef[0] < 0 and coef[0] / se < -10            # K per m3 m-3, strongly significant


def test_platform_step_visible_in_lst_files(smoke_twin, smoke_sim):
    cfg, _ = smoke_twin
    _, s, av = smoke_sim
    dates = s["dates"]
    i = dates.get_loc(pd.Timestamp("2001-01-01"))
    resid = []
    for t in range(i - 45, i + 45):
        f = SD(str(Path(cfg.data.avhrr_dir) / "lst" / f"{dates[t].year}" /
                   gtwin.avhrr_filename("lst", dates[t])))
        sds = f.select("LST")
        raw, scale = sds.get().astype(float), sds.attributes()["scale_factor"]
        assert "Satellite" not in f.attributes()      # like the real files: the platform comes from the date
        f.end()
        resid.append(np.where(raw > 0, raw * scale, np.nan) - av["lst_clean"][t])
    before, after = np.nanmean(resid[:45]), np.nanmean(resid[45:])
    # NOAA-14 at the end of 2000 has drifted ~3 h late (cool afternoon); NOAA-16 is new: a jump of K
    assert after - before > 1.0


def test_era5_like_wet_shift_largest_in_dry_climates(smoke_sim):
    cfg, s, _ = smoke_sim
    shift = sensors.era5_shift(np.array([0.1, 0.25, 0.5, 2.0]), 0.06)
    assert shift[0] == shift[1] == 0.06 and shift[1] > shift[2] > shift[3] > 0      # m3 m-3
    era = sensors.simulate_era5(s)
    g = s["grids"]
    assert era.shape == (len(s["dates"]), len(g.era5_lat), len(g.era5_lon))
    rs, cs = g.era5_in_sim
    assert (era - block_mean(s["theta"][:, rs, cs], 2)).mean() > 0.01


def test_glass_modis_like_images(smoke_sim, make_cfg, tmp_path):
    """The truth_plus_noise ablation (the retrieval's images: tests/unit/twin/test_labels.py)."""
    _, s, _ = smoke_sim
    cfg = make_cfg(tmp_path, **{"twin.labels": "truth_plus_noise"})
    _, width, height, idx = sensors.modis_grid(s["grids"].out, cfg.twin.modis_pixel_m)
    t0 = sensors.first_label_day(cfg, s["dates"])
    assert s["dates"][t0] == pd.Timestamp(cfg.period.label_start)
    images = sensors.simulate_glass_modis(cfg, s, idx)
    day, img = next(images)
    assert day == s["dates"][t0] and img.shape == (height, width) and img.dtype == np.float32
    assert np.all(np.isnan(img[idx < 0]))                          # outside the domain: no value
    inside = img[idx >= 0]
    gaps = np.isnan(inside).mean()
    assert 0 < gaps < 4 * cfg.twin.label_gap_fraction and np.nanmin(inside) >= 0
    rs, cs = s["grids"].out_in_sim
    truth = s["theta"][t0, rs, cs].ravel()[idx[(idx >= 0) & np.isfinite(img)]]
    err = img[(idx >= 0) & np.isfinite(img)] - truth
    assert abs(err.mean()) < 0.01 and abs(err.std() - cfg.twin.label_noise) < 0.005


def test_cci_like_product(smoke_sim):
    cfg, s, _ = smoke_sim
    sm = sensors.simulate_cci(cfg, s)
    g = s["grids"]
    assert sm.shape == (len(s["dates"]), g.cci.nrows, g.cci.ncols) and sm.dtype == np.float32
    assert np.nanmin(sm) >= 0 and np.nanmax(sm) <= 0.6
    assert s["dates"][-1] < pd.Timestamp(sensors.CCI_EARLY_END)                    # smoke: the sparse early CCI
    missing = np.isnan(sm).mean()                                                   # gaps + frozen days
    assert cfg.twin.cci_early_gap_fraction - 0.03 < missing < cfg.twin.cci_early_gap_fraction + 0.15
    np.testing.assert_array_equal(sm, sensors.simulate_cci(cfg, s), strict=True)     # same seed, same values


def test_station_periods_and_series(smoke_sim):
    cfg, s, _ = smoke_sim
    rng = np.random.default_rng(0)
    y2k = pd.Timestamp("2000-01-01")
    periods = sensors.station_periods(rng, 6, 0.5, pd.Timestamp("1998-01-01"), pd.Timestamp("2002-12-31"))
    assert [k for k, _, _ in periods] == ["across", "across", "before", "after", "after", "after"]
    for kind, start, end in periods:
        assert start <= end
        assert {"before": end < y2k, "after": start >= y2k, "across": start < y2k <= end}[kind]
    stations = list(sensors.simulate_stations(cfg, s))
    assert len(stations) == cfg.twin.n_stations and stations[0].station == "TW01"
    for st in stations:
        assert st.hourly.shape == st.flags.shape == st.keep.shape == (24 * len(st.days),)
        assert st.days[0] == st.start and st.days[-1] == st.end and 0.7 <= st.b <= 1.3
        assert 0 <= st.row < s["grids"].out.nrows and st.elevation > 0
        assert set(st.table_row()) == {"network", "station", "kind", "start", "end", "lat", "lon", "row", "col",
                                       "a", "b", "sensor"}
        assert st.network == "TWIN"                               # twin.climate: gradient


def test_albedo_composites_are_window_means_with_quality_levels():
    dates = pd.date_range("1999-12-20", "2000-01-20")
    n = len(dates)
    rng = np.random.default_rng(0)
    wsa = rng.uniform(0.1, 0.3, (n, 1, 3)).astype(np.float32)
    wsa[:, 0, 1] = np.nan                                   # pixel 1: never clear
    wsa[:, 0, 2] = np.nan
    wsa[dates.get_loc(pd.Timestamp("2000-01-10")), 0, 2] = 0.25   # pixel 2: one clear day, low quality
    qc = np.zeros((n, 1, 3), np.uint8)
    qc[dates.get_loc(pd.Timestamp("2000-01-10")), 0, 2] = 2
    av = {k: wsa.copy() for k in sensors.ALBEDO_BANDS}
    av["qc_albedo"] = qc
    c = sensors.albedo_composites(av, dates)
    # every composite whose window (-3..+4 days) overlaps the simulated days: 1999-12-19 .. 2000-01-17
    assert [d.strftime("%Y-%j") for d in c["dates"]] == ["1999-353", "1999-361", "2000-001", "2000-009", "2000-017"]
    assert c["window"] == (-3, 4)
    for i, d in enumerate(c["dates"]):
        sel = (dates >= d - pd.Timedelta(days=3)) & (dates <= d + pd.Timedelta(days=4))
        assert c["wsa_sw"][i, 0, 0] == pytest.approx(float(wsa[sel, 0, 0].mean()), rel=1e-6)
    assert np.isnan(c["wsa_sw"][:, 0, 1]).all() and (c["qc_level"][:, 0, 1] == 3).all()
    assert c["qc_level"][3, 0, 2] == 2 and c["wsa_sw"][3, 0, 2] == pytest.approx(0.25)
    assert (c["qc_level"][:, 0, 0] == 0).all() and c["n_clear"][0, 0, 0] == 4 and c["n_clear"][1, 0, 0] == 8
    # the reader's other reading: the file date is the first of the 8 days
    assert sensors.composite_window(8, 3.5) == (0, 7) and sensors.composite_window(8, 0.0) == (-3, 4)


def test_nir_albedo_closes_the_shortwave_budget(smoke_sim):
    _, s, av = smoke_sim
    ok = np.isfinite(av["wsa_sw"]) & (av["wsa_nir"] > 0) & (av["wsa_nir"] < 1)
    np.testing.assert_allclose(0.5 * av["wsa_vis"][ok] + 0.5 * av["wsa_nir"][ok], av["wsa_sw"][ok], atol=1e-6)
    assert np.nanmean(av["wsa_nir"]) > np.nanmean(av["wsa_vis"])          # vegetation and soil: NIR brighter
