"""glass_sm.twin.writers (and generate_twin): the twin's files in the real formats, read with the real formats'
libraries (pyhdf, rasterio, netCDF4, ismn), byte-reproducible, with a manifest that skips or redoes the work."""

from __future__ import annotations

import json
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import rasterio
from ismn.interface import ISMN_Interface
from pyhdf.SD import SD

from glass_sm import twin as gtwin
from glass_sm.grid import block_mean
from glass_sm.io import glass_avhrr
from glass_sm.twin import sensors, writers


# ---------------------------------------------------------------------------------------------------------
# files in the real formats
# ---------------------------------------------------------------------------------------------------------
def test_hdf4_albedo_composites_as_the_real_files(smoke_twin, smoke_sim):
    """8-day V04 composites at the real days of year, HDF-EOS2 grid named after the short name, the six real
    SDS, per-band QC levels, -1 invalid, no Satellite attribute."""
    cfg, files = smoke_twin
    _, s, av = smoke_sim
    comp = sensors.albedo_composites(av, s["dates"])
    days = [pd.to_datetime(p.name[16:23], format="%Y%j") for p in files["albedo"]]
    assert days == list(comp["dates"]) and len(days) == 5 * 46 + 1     # 1998-2002 + 2003-001 (brackets the end)
    assert all((d.day_of_year - 1) % 8 == 0 for d in days) and days[-1] == pd.Timestamp("2003-01-01")
    assert all(p.name.startswith("GLASS02B05.V04.A") for p in files["albedo"])
    i = days.index(pd.Timestamp("1998-07-12"))                          # day of year 193
    f = SD(str(files["albedo"][i]))
    ga = f.attributes()
    names = set(f.datasets())
    assert names == set(writers.ALBEDO_SDS) | {"QC_shortwave", "QC_VIS", "QC_NIR"}
    assert "Satellite" not in ga and "UpperLeftLatitude" not in ga
    (grid,) = glass_avhrr.parse_struct_metadata(ga["StructMetadata.0"])
    out = s["grids"].out
    assert grid["name"] == "GLASS02B05" and grid["projection"] == "GCTP_GEO"
    assert (grid["xdim"], grid["ydim"]) == (out.ncols, out.nrows)
    assert grid["upper_left"] == pytest.approx((out.west, out.north)) and \
        grid["lower_right"] == pytest.approx((out.east, out.south))
    assert set(grid["fields"]) == names and 'SHORTNAME' in ga["CoreMetadata.0"]
    sds = f.select("ABD_WSA_shortwave")
    a = sds.attributes()
    assert a["scale_factor"] == 1e-4 and a["add_offset"] == 0 and "_FillValue" not in a
    assert list(a["valid_range"]) == [0, 10000] and a["units"] == "dimensionless"
    assert list(sds.dimensions()) == ["YDim:GLASS02B05", "XDim:GLASS02B05"]
    raw = sds.get()
    qc = f.select("QC_VIS").get()
    f.end()
    assert raw.dtype == np.int16 and qc.dtype == np.int16
    np.testing.assert_array_equal(raw == -1, qc == 3)                   # no clear day: invalid, level 3
    ok = raw >= 0
    np.testing.assert_allclose(raw[ok] * 1e-4, comp["wsa_sw"][i][ok], atol=6e-5)
    np.testing.assert_array_equal(qc, comp["qc_level"][i])


def test_hdf4_lst_attributes(smoke_twin, smoke_sim):
    cfg, files = smoke_twin
    _, s, av = smoke_sim
    assert len(files["lst"]) == len(s["dates"])
    assert all(p.name.startswith("GLASS08B31.V40.A") for p in files["lst"])
    t = 200
    f = SD(str(files["lst"][t]))
    assert "Satellite" not in f.attributes()
    (grid,) = glass_avhrr.parse_struct_metadata(f.attributes()["StructMetadata.0"])
    assert grid["name"] == "GLASS08B31"
    sds = f.select("LST")
    a, raw = sds.attributes(), sds.get()
    f.end()
    assert a["scale_factor"] == 0.01 and a["_FillValue"] == 0 and a["units"] == "K"
    assert raw.dtype == np.uint16
    np.testing.assert_allclose(raw[raw > 0] * 0.01, av["lst"][t][raw > 0], atol=6e-3)
    assert np.array_equal(raw == 0, ~np.isfinite(av["lst"][t]))


def test_satellite_attribute_only_on_request(smoke_sim, make_cfg, tmp_path):
    cfg0, s, av = smoke_sim
    cfg = make_cfg(tmp_path, **{"twin.avhrr_satellite_attribute": True})
    n = 20
    sub = {k: (v[:n] if isinstance(v, np.ndarray) and len(v) == len(s["dates"]) else v) for k, v in av.items()}
    files = writers.write_avhrr(cfg, sub, s["dates"][:n], s["grids"].out)
    for p in files["albedo"] + files["lst"][:2]:
        f = SD(str(p))
        assert f.attributes()["Satellite"] == "NOAA-14"
        f.end()
    assert [p.name[16:23] for p in files["albedo"]] == ["1998001", "1998009", "1998017"]


def test_glass_modis_geotiffs(smoke_twin, smoke_retrieval):
    cfg, files = smoke_twin
    _, s, retrieval = smoke_retrieval
    days = [pd.to_datetime(p.name[16:23], format="%Y%j") for p in files["glass_modis"]]
    assert min(days) == pd.Timestamp(cfg.period.label_start)            # labels absent before label_start
    assert len(days) == (pd.Timestamp(cfg.period.end) - pd.Timestamp(cfg.period.label_start)).days + 1
    out = s["grids"].out
    _, _, _, idx = gtwin.modis_grid(out, cfg.twin.modis_pixel_m)
    for k in (0, 300, 700):
        with rasterio.open(files["glass_modis"][k]) as r:
            assert r.crs.to_dict()["proj"] == "sinu" and r.crs.to_dict()["R"] == 6371007.181
            assert r.res == (cfg.twin.modis_pixel_m, cfg.twin.modis_pixel_m)
            assert r.nodata == -9999 and r.dtypes[0] == "float32"
            a = r.read(1)
        ok = (a != -9999) & (idx >= 0)
        assert (a[idx < 0] == -9999).all()
        # every pixel holds its cell's retrieval value (twin.labels: retrieval, the default)
        np.testing.assert_array_equal(a[ok], retrieval.sm[k].ravel()[idx[ok]])


def test_static_geotiffs(smoke_twin, smoke_sim):
    cfg, files = smoke_twin
    _, s, _ = smoke_sim
    arr = {}
    for p in files["static"]:
        with rasterio.open(p) as r:
            assert r.crs.to_epsg() == 4326 and r.res == pytest.approx((cfg.twin.static_resolution,) * 2)
            assert r.bounds.left == pytest.approx(s["grids"].out.west)
            arr[p.stem] = (r.read(1), r.nodata, r.dtypes[0])
    assert arr["dem"][1:] == (-9999.0, "float32")
    assert all(arr[k][1:] == (-32768, "int16") for k in ("sand", "clay", "silt"))
    assert np.all(arr["sand"][0] + arr["clay"][0] + arr["silt"][0] == 1000)     # g/kg


def test_era5_netcdf_wet_bias(smoke_twin, smoke_sim):
    cfg, files = smoke_twin
    _, s, _ = smoke_sim
    g = s["grids"]
    real_file = Path(__file__).resolve().parents[4] / "shared/realdata/era5/era5_cds_legacy_5deg_20100101.nc"
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


def test_cci_and_truth_netcdf(smoke_twin, smoke_sim):
    cfg, files = smoke_twin
    _, s, _ = smoke_sim
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


def test_stations_readable_by_ismn(smoke_twin, smoke_sim, tmp_path):
    cfg, files = smoke_twin
    _, s, _ = smoke_sim
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
def test_same_seed_same_bytes(smoke_twin, make_cfg, tmp_path):
    cfg1, f1 = smoke_twin
    f2 = gtwin.generate_twin(make_cfg(tmp_path), progress=False)
    for key in ("albedo", "lst", "label_retrieval", "glass_modis", "era5land", "esa_cci", "static", "stations"):
        assert len(f1[key]) == len(f2[key])
        for a, b in zip(f1[key], f2[key]):                       # every file, whatever folder it was written to
            assert a.name == b.name and a.read_bytes() == b.read_bytes(), f"{key}: {a.name} differs"
    assert f1["truth"].read_bytes() == f2["truth"].read_bytes()
    assert not list(Path(tmp_path).rglob("*.partial")) and not list(Path(tmp_path).rglob(".staging*"))


def test_manifest_skips_and_detects_changes(smoke_twin, make_cfg, tmp_path):
    cfg, files = smoke_twin
    again = gtwin.generate_twin(cfg, progress=False)
    assert again["regenerated"] is False
    doc = json.loads(files["manifest"].read_text())
    assert doc["hash"] == gtwin.twin_hash(cfg) and doc["counts"]["albedo"] == len(files["albedo"])
    assert gtwin.twin_hash(make_cfg(tmp_path, **{"twin.label_noise": 0.03})) != doc["hash"]
    assert not list(Path(cfg.data.avhrr_dir).rglob("*.partial"))
    with pytest.raises(ValueError, match="real"):                # never writes over real-data folders
        gtwin.generate_twin(make_cfg(tmp_path, **{"data.source": "real", "twin.enabled": False}))
    # a small twin in another folder: a missing file forces a regeneration
    small = make_cfg(tmp_path, **{"period.start": "2000-12-01", "period.end": "2001-01-31", "twin.n_stations": 2})
    first = gtwin.generate_twin(small, progress=False)
    first["lst"][5].unlink()
    redo = gtwin.generate_twin(small, progress=False)
    assert redo["regenerated"] is True and redo["lst"][5].exists()
