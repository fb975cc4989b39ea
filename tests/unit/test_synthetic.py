"""Tests of the synthetic twin (glass_sm.twin) and the NOAA platform history (glass_sm.platforms).

One smoke-size twin is generated per module (``twin`` fixture, ~5 s) and checked file by file with the real
readers' libraries (pyhdf, rasterio, netCDF4, ismn); physics checks use the in-memory simulation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glass_sm import config
from glass_sm import twin as gtwin
from glass_sm.grid import block_mean
from glass_sm.platforms import NOAA_PLATFORMS, equator_crossing_time, platform_of, transition_dates

SMOKE = Path(__file__).resolve().parents[2] / "params" / "smoke.yaml"


def _cfg(root, **over):
    return config.load(SMOKE, {"run.results_dir": str(root), **over})


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    cfg = _cfg(tmp_path_factory.mktemp("twin"))
    return cfg, gtwin.generate_twin(cfg, progress=False)


@pytest.fixture(scope="module")
def sim(twin):
    cfg, _ = twin
    s = gtwin.simulate_truth(cfg)
    return cfg, s, gtwin.simulate_avhrr(cfg, s)


# ---------------------------------------------------------------------------------------------------------
# platforms
# ---------------------------------------------------------------------------------------------------------
def test_platform_history():
    got = platform_of(["1981-08-23", "1981-08-24", "1994-11-15", "1995-01-01", "2000-12-31", "2001-01-01",
                       "2009-06-01", "2021-12-31"])
    assert got.tolist() == ["", "NOAA-7", "NOAA-11", "NOAA-14", "NOAA-14", "NOAA-16", "NOAA-19", "NOAA-19"]
    assert transition_dates("1998-01-01", "2002-12-31").strftime("%Y-%m-%d").tolist() == ["2001-01-01"]
    assert len(transition_dates("1982-01-01", "2021-12-31")) == 6
    # contiguous record: each platform starts the day after the previous one ends
    gaps = NOAA_PLATFORMS["start"].values[1:] - NOAA_PLATFORMS["end"].values[:-1]
    assert np.all(gaps == np.timedelta64(1, "D"))
    # orbital drift: the overpass gets later with platform age, and resets at a platform change
    ect = equator_crossing_time(["2001-01-01", "2005-08-31", "2005-09-01"])
    assert ect[1] > ect[0] + 1.0 and ect[2] < ect[1] - 1.0
    assert np.isnan(equator_crossing_time(["1980-01-01"])[0])


# ---------------------------------------------------------------------------------------------------------
# pure physics
# ---------------------------------------------------------------------------------------------------------
def test_saxton_rawls_textbook_values():
    # Saxton & Rawls (2006) Table 3 (OM 2.5 %), wilting point / field capacity / saturation, m3 m-3:
    # loam about 0.12-0.14 / 0.26-0.28 / 0.46; sand 0.05 / 0.10 / 0.46; clay 0.30 / 0.42 / 0.50
    loam = gtwin.hydraulic_limits(0.40, 0.20)
    assert 0.11 <= loam["theta_wp"] <= 0.145
    assert 0.25 <= loam["theta_fc"] <= 0.29
    assert 0.42 <= loam["theta_s"] <= 0.48
    sand = gtwin.hydraulic_limits(0.88, 0.05)
    clay = gtwin.hydraulic_limits(0.25, 0.50)
    assert sand["theta_fc"] == pytest.approx(0.10, abs=0.03)
    assert clay["theta_wp"] == pytest.approx(0.30, abs=0.03)
    assert sand["ksat"] > loam["ksat"] > clay["ksat"]
    S = np.array([0.92, 0.65, 0.40, 0.20, 0.30, 0.10])  # sand, sandy loam, loam, silt loam, clay loam, clay
    C = np.array([0.05, 0.10, 0.20, 0.15, 0.35, 0.60])
    h = gtwin.hydraulic_limits(S, C)
    assert np.all((0 <= h["theta_r"]) & (h["theta_r"] < h["theta_wp"]))
    assert np.all((h["theta_wp"] < h["theta_fc"]) & (h["theta_fc"] < h["theta_s"]))
    with pytest.raises(ValueError, match="fractions"):
        gtwin.hydraulic_limits(0.8, 0.4)


def test_bucket_step_balance_and_bounds():
    lim = gtwin.hydraulic_limits(np.full(5, 0.4), np.full(5, 0.2))
    theta = np.array([lim["theta_r"][0], 0.15, 0.27, 0.35, lim["theta_s"][0]])
    precip = np.array([0.0, 5.0, 0.0, 40.0, 80.0])
    pet = np.full(5, 6.0)
    new, et, drain, runoff = gtwin.bucket_step(theta, precip, pet, lim, 50.0)
    infil = precip - runoff
    np.testing.assert_allclose((new - theta) * 50.0, infil - et - drain, atol=1e-9)   # water balance
    assert np.all((new >= lim["theta_r"]) & (new <= lim["theta_s"]))
    assert et[0] == 0.0 and drain[1] == 0.0 and drain[3] > 0.0                     # no ET below wp
    assert runoff[4] > 0.0 and np.all(runoff >= 0)                                 # saturated: excess runs off


def test_smooth_fields_variance_and_correlation():
    rng = np.random.default_rng(0)
    x = np.array([0.0, 5.0, 50.0, 300.0])
    g = gtwin.smooth_fields(rng, 4000, x, np.zeros_like(x), length_km=50.0, dtype=np.float64)
    assert g.std(axis=0) == pytest.approx(np.ones(4), abs=0.05)
    r = np.corrcoef(g.T)
    assert r[0, 1] > 0.95 and 0.3 < r[0, 2] < 0.9 and abs(r[0, 3]) < 0.2


# ---------------------------------------------------------------------------------------------------------
# the simulated world
# ---------------------------------------------------------------------------------------------------------
def test_theta_within_hydraulic_limits(sim):
    _, s, _ = sim
    st, th = s["static"], s["theta"]
    assert np.all(th >= st["theta_r"] - 1e-6) and np.all(th <= st["theta_s"] + 1e-6)
    assert np.all(th >= st["theta_wp"] - 1e-6)              # ET stops at the wilting point
    te, le = s["theta_era5"], s["era5_limits"]
    assert np.all(te >= le["theta_r"] - 1e-6) and np.all(te <= le["theta_s"] + 1e-6)
    s1 = th[:-1].ravel()
    assert np.corrcoef(s1, th[1:].ravel())[0, 1] > 0.5      # memory: day-to-day persistence
    sand, clay, silt = st["sand"], st["clay"], st["silt"]
    np.testing.assert_allclose(sand + clay + silt, 1.0, atol=1e-9)
    assert np.all(st["dem_fine"] > 0)


def test_albedo_darker_when_wet(sim):
    _, s, av = sim
    rs, cs = s["grids"].out_in_sim
    theta, fveg = s["theta"][:, rs, cs], s["f_veg"][:, rs, cs]
    # model: at fixed vegetation cover, albedo falls as the soil wets
    wet = gtwin.albedo_model(0.35, 0.45, 0.3, 0.4)
    dry = gtwin.albedo_model(0.10, 0.45, 0.3, 0.4)
    assert wet < dry
    # simulation: soil albedo retrieved on cloud-free days, vegetation removed, anti-correlates with theta
    ok = np.isfinite(av["wsa_sw"]) & (fveg < 0.8)
    soil = (av["wsa_sw"] - fveg * gtwin.ALBEDO_VEG_SW) / (1 - fveg)
    assert np.corrcoef(soil[ok], theta[ok])[0, 1] < -0.5
    assert not np.isfinite(av["wsa_sw"][s["weather"]["cloudy"][:, rs, cs]]).any()   # cloudy -> missing
    assert (av["bsa_sw"][ok] >= 0).all() and (av["bsa_sw"][ok] <= 1).all()


def test_lst_cooler_when_wet(sim):
    _, s, av = sim
    lim = {"theta_wp": 0.12, "theta_fc": 0.27}
    args = dict(t_air=295.0, dtr=12.0, rs=25.0, limits=lim, f_veg=0.3, hour=13.7)
    assert gtwin.lst_model(theta=0.30, **args) < gtwin.lst_model(theta=0.13, **args) - 3.0
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


def test_platform_step_visible_in_lst_files(twin, sim):
    cfg, files = twin
    _, s, av = sim
    from pyhdf.SD import SD

    dates = s["dates"]
    i = dates.get_loc(pd.Timestamp("2001-01-01"))
    resid = []
    for t in range(i - 45, i + 45):
        f = SD(str(Path(cfg.data.avhrr_dir) / "lst" / f"{dates[t].year}" /
                   gtwin.avhrr_filename("lst", dates[t])))
        sds = f.select("LST")
        raw, scale = sds.get().astype(float), sds.attributes()["scale_factor"]
        assert f.attributes()["Satellite"] == ("NOAA-14" if t < i else "NOAA-16")
        f.end()
        resid.append(np.where(raw > 0, raw * scale, np.nan) - av["lst_clean"][t])
    before, after = np.nanmean(resid[:45]), np.nanmean(resid[45:])
    # NOAA-14 at the end of 2000 has drifted ~3 h late (cool afternoon); NOAA-16 is new: a jump of K
    assert after - before > 1.0


# ---------------------------------------------------------------------------------------------------------
# files in the real formats
# ---------------------------------------------------------------------------------------------------------
def test_hdf4_albedo_and_lst_attributes(twin, sim):
    cfg, files = twin
    _, s, av = sim
    from pyhdf.SD import SD

    assert len(files["albedo"]) == len(files["lst"]) == len(s["dates"])
    t = 200
    f = SD(str(files["albedo"][t]))
    ga = f.attributes()
    out = s["grids"].out
    assert ga["UpperLeftLatitude"] == pytest.approx(out.north) and ga["GridResolution"] == 0.05
    assert ga["UpperLeftLongitude"] == pytest.approx(out.west) and ga["Satellite"] == "NOAA-14"
    sds = f.select("ABD_WSA_shortwave")
    a = sds.attributes()
    assert a["scale_factor"] == 1e-4 and a["add_offset"] == 0 and a["_FillValue"] == 32767
    assert list(a["valid_range"]) == [0, 10000] and a["units"] == "dimensionless"
    assert list(sds.dimensions()) == ["YDim:GLASS02B05", "XDim:GLASS02B05"]
    raw = sds.get()
    qc = f.select("QC").get()
    f.end()
    miss = raw == 32767
    np.testing.assert_array_equal(miss, (qc & 1).astype(bool))
    np.testing.assert_allclose(raw[~miss] * 1e-4, av["wsa_sw"][t][~miss], atol=6e-5)
    f = SD(str(files["lst"][t]))
    sds = f.select("LST")
    a, raw = sds.attributes(), sds.get()
    f.end()
    assert a["scale_factor"] == 0.01 and a["_FillValue"] == 0 and a["units"] == "K"
    assert raw.dtype == np.uint16
    np.testing.assert_allclose(raw[raw > 0] * 0.01, av["lst"][t][raw > 0], atol=6e-3)
    assert np.array_equal(raw == 0, ~np.isfinite(av["lst"][t]))


def test_glass_modis_geotiffs(twin, sim):
    import rasterio

    cfg, files = twin
    _, s, _ = sim
    days = [pd.to_datetime(p.name[16:23], format="%Y%j") for p in files["glass_modis"]]
    assert min(days) == pd.Timestamp(cfg.period.label_start)            # labels absent before label_start
    assert len(days) == (pd.Timestamp(cfg.period.end) - pd.Timestamp(cfg.period.label_start)).days + 1
    out = s["grids"].out
    _, _, _, idx = gtwin.modis_grid(out, cfg.twin.modis_pixel_m)
    rs, cs = s["grids"].out_in_sim
    errs = []
    for k in (0, 300, 700):
        with rasterio.open(files["glass_modis"][k]) as r:
            assert r.crs.to_dict()["proj"] == "sinu" and r.crs.to_dict()["R"] == 6371007.181
            assert r.res == (cfg.twin.modis_pixel_m, cfg.twin.modis_pixel_m)
            assert r.nodata == -9999 and r.dtypes[0] == "float32"
            a = r.read(1)
        t = s["dates"].get_loc(days[k])
        ok = (a != -9999) & (idx >= 0)
        n = np.bincount(idx[ok], minlength=out.size)
        mean = np.bincount(idx[ok], a[ok], minlength=out.size) / np.maximum(n, 1)
        errs.append((mean - s["theta"][t, rs, cs].ravel())[n > 0])
    err = np.concatenate(errs)
    assert abs(err.mean()) < 0.005 and err.std() < cfg.twin.label_noise      # noise averages down per cell


def test_static_geotiffs(twin, sim):
    import rasterio

    cfg, files = twin
    _, s, _ = sim
    arr = {}
    for p in files["static"]:
        with rasterio.open(p) as r:
            assert r.crs.to_epsg() == 4326 and r.res == pytest.approx((cfg.twin.static_resolution,) * 2)
            assert r.bounds.left == pytest.approx(s["grids"].out.west)
            arr[p.stem] = (r.read(1), r.nodata, r.dtypes[0])
    assert arr["dem"][1:] == (-9999.0, "float32")
    assert all(arr[k][1:] == (-32768, "int16") for k in ("sand", "clay", "silt"))
    assert np.all(arr["sand"][0] + arr["clay"][0] + arr["silt"][0] == 1000)     # g/kg


def test_era5_netcdf_wet_bias(twin, sim):
    import netCDF4

    cfg, files = twin
    _, s, _ = sim
    g = s["grids"]
    real_file = Path(__file__).resolve().parents[3] / "shared/realdata/era5/era5_cds_legacy_5deg_20100101.nc"
    real_attrs = set(netCDF4.Dataset(real_file)["swvl1"].ncattrs()) if real_file.exists() else None
    daily = []
    for p in files["era5land"]:
        with netCDF4.Dataset(p) as nc:
            v = nc["swvl1"]
            assert nc.data_model == "NETCDF3_64BIT_OFFSET" and v.dtype == np.int16
            assert v.units == "m**3 m**-3" and v.long_name == "Volumetric soil water layer 1"
            assert v._FillValue == -32767 and nc["time"].units.startswith("hours since 1900-01-01")
            lat, lon = nc["latitude"][:], nc["longitude"][:]
            assert np.all(np.diff(lat) < 0) and np.all((lon >= 0) & (lon < 360))
            assert np.all(np.diff(nc["time"][:]) == 6)
            if real_attrs is not None:                            # same attributes as a real CDS file
                assert set(v.ncattrs()) == real_attrs
            daily.append(v[:].reshape(-1, 4, len(lat), len(lon)).mean(1))
    era = np.concatenate(daily)
    rs, cs = g.era5_in_sim
    truth = block_mean(s["theta"][:, rs, cs], 2)
    bias = (era - truth).mean(0)
    west, east = bias[:, : bias.shape[1] // 2].mean(), bias[:, -(bias.shape[1] // 2):].mean()
    assert bias.mean() > 0.01 and west > east                     # wet, and wetter in the dry west
    np.testing.assert_allclose(lat, g.era5_lat, atol=1e-4)        # ERA5-Land 0.1 deg points


def test_cci_and_truth_netcdf(twin, sim):
    import netCDF4

    cfg, files = twin
    _, s, _ = sim
    assert [p.name for p in files["esa_cci"]][0] == "ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-1998-fv08.1.nc"
    valid = {}
    for p in files["esa_cci"]:
        with netCDF4.Dataset(p) as nc:
            v = nc["sm"]
            assert v.dtype == np.float32 and v._FillValue == -9999 and v.units == "m3 m-3"
            valid[int(p.name.split("-")[-2])] = float(np.mean(v[:].filled(np.nan) == v[:].filled(np.nan)))
    assert valid[1998] < valid[2002]                              # early CCI period is sparser
    with netCDF4.Dataset(files["truth"]) as nc:
        assert nc.source == "glass-sm synthetic twin" and nc.Conventions == "CF-1.8"
        sm = nc["sm_true"]
        assert sm.units == "m3 m-3" and sm.dimensions == ("time", "lat", "lon")
        assert np.all(np.diff(nc["lat"][:]) < 0)
        for k in ("theta_r", "theta_wp", "theta_fc", "theta_s", "aridity_index", "precipitation"):
            assert k in nc.variables
        assert len(nc["station_name"][:]) == cfg.twin.n_stations


def test_stations_readable_by_ismn(twin, sim, tmp_path):
    from ismn.interface import ISMN_Interface

    cfg, files = twin
    _, s, _ = sim
    ds = ISMN_Interface(cfg.data.stations_dir, meta_path=tmp_path / "meta")
    stations = list(ds["TWIN"].iter_stations())
    assert len(stations) == cfg.twin.n_stations
    spans, flags = [], set()
    rs, cs = s["grids"].out_in_sim
    for st in stations:
        (sensor,) = list(st.iter_sensors())
        assert (sensor.depth.start, sensor.depth.end) == (0.0, 0.05)
        d = sensor.read_data()
        spans.append((d.index[0], d.index[-1]))
        flags |= set(d["soil_moisture_flag"].unique())
        good = d[d["soil_moisture_flag"] == "G"]["soil_moisture"].resample("D").mean().dropna()
        r, c = s["grids"].out.index_of(st.lat, st.lon)
        truth = pd.Series(s["theta"][:, rs, cs][:, r, c], index=s["dates"]).reindex(good.index)
        assert np.corrcoef(good, truth)[0, 1] > 0.6              # a point is not a pixel, but close
    y2k = pd.Timestamp("2000-01-01")
    assert any(e < y2k for _, e in spans) and any(b >= y2k for b, _ in spans)
    assert any(b < y2k <= e for b, e in spans)                   # before only, after only, across
    assert "G" in flags and flags <= {"G", "D03", "D05", "C01", "C02", "D03,D05", "D05,C02", "D03,C01",
                                      "D05,C01"}


# ---------------------------------------------------------------------------------------------------------
# reproducibility and the manifest
# ---------------------------------------------------------------------------------------------------------
def test_same_seed_same_bytes_other_seed_differs(twin, tmp_path):
    cfg1, f1 = twin
    cfg2 = _cfg(tmp_path)
    f2 = gtwin.generate_twin(cfg2, progress=False)
    picks = [("albedo", 0), ("albedo", -1), ("lst", 400), ("glass_modis", 10), ("era5land", 2), ("esa_cci", 4),
             ("static", 0), ("stations", 0)]
    for key, i in picks:
        assert f1[key][i].read_bytes() == f2[key][i].read_bytes(), f"{key}[{i}] differs"
    assert f1["truth"].read_bytes() == f2["truth"].read_bytes()
    other = gtwin.simulate_truth(_cfg(tmp_path, **{"run.seed": cfg1.run.seed + 1}))
    same = gtwin.simulate_truth(cfg1)
    assert not np.allclose(other["theta"], same["theta"])


def test_manifest_skips_and_detects_changes(twin, tmp_path):
    cfg, files = twin
    again = gtwin.generate_twin(cfg, progress=False)
    assert again["regenerated"] is False
    doc = json.loads(files["manifest"].read_text())
    assert doc["hash"] == gtwin.twin_hash(cfg) and doc["counts"]["albedo"] == len(files["albedo"])
    assert gtwin.twin_hash(_cfg(tmp_path, **{"twin.label_noise": 0.03})) != doc["hash"]
    assert not list(Path(cfg.data.avhrr_dir).rglob("*.partial"))
    with pytest.raises(ValueError, match="real"):                # never writes over real-data folders
        gtwin.generate_twin(_cfg(tmp_path, **{"data.source": "real", "twin.enabled": False}))
    # a small twin in another folder: a missing file forces a regeneration
    small = _cfg(tmp_path, **{"period.start": "2000-12-01", "period.end": "2001-01-31", "twin.n_stations": 2})
    first = gtwin.generate_twin(small, progress=False)
    first["lst"][5].unlink()
    redo = gtwin.generate_twin(small, progress=False)
    assert redo["regenerated"] is True and redo["lst"][5].exists()
