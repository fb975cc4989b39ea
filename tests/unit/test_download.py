"""Download helpers (offline: URLs and request dictionaries only) and the real-data parameter file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from glass_sm import download
from glass_sm.config import ConfigError, load
from glass_sm.grid import Domain

ROOT = Path(__file__).resolve().parents[2]
DEMO = Domain.from_bounds(39.0, 40.0, -101.0, -99.0)

LISTING = """<html><head><title>Index of /archive/Albedo/AVHRR/0.05D/1982</title></head><body><pre>
<a href="../">../</a>
<a href="GLASS02B05.V40.A1982001.2019353.hdf">GLASS02B05.V40.A1982001.2019353.hdf</a>   2019-12-19 10:01  9.6M
<a href="GLASS02B05.V40.A1982002.2019353.hdf">GLASS02B05.V40.A1982002.2019353.hdf</a>   2019-12-19 10:02  9.6M
<a href="GLASS02B05.V40.A1982002.2019353.hdf.xml">GLASS02B05.V40.A1982002.2019353.hdf.xml</a>
<a href="GLASS08B31.V40.A1982001.2020001.hdf">GLASS08B31.V40.A1982001.2020001.hdf</a>
</pre></body></html>"""


def test_glass_modis_registry_without_listing():
    reg, urls = download.glass_registry("glass_modis_sm", [2000])
    keys = list(reg)
    assert keys[0] == "2000/GLASS_MODIS_SM.A2000055.tif"  # 2000-02-24 is day 55
    assert keys[-1] == "2000/GLASS_MODIS_SM.A2000366.tif" and len(keys) == 366 - 54
    assert all(v is None for v in reg.values())  # no published hashes
    assert urls[keys[0]] == f"{download.GLASS_BASE_URL}/SM/MODIS/1KM/2000/GLASS_MODIS_SM.A2000055.tif"
    reg2, _ = download.glass_registry("glass_modis_sm", [2001, 2002])
    assert len(reg2) == 365 + 365


def test_avhrr_registry_needs_listing_and_parses_it():
    with pytest.raises(ValueError, match="production date"):
        download.glass_registry("albedo", [1982])
    assert download.parse_listing(LISTING, "albedo") == [
        "GLASS02B05.V40.A1982001.2019353.hdf", "GLASS02B05.V40.A1982002.2019353.hdf"]
    assert download.parse_listing(LISTING, "lst") == ["GLASS08B31.V40.A1982001.2020001.hdf"]
    reg, urls = download.glass_registry("albedo", [1982], listing={1982: LISTING}, base_url="https://example.org/g/")
    assert list(reg) == ["1982/GLASS02B05.V40.A1982001.2019353.hdf", "1982/GLASS02B05.V40.A1982002.2019353.hdf"]
    assert urls["1982/GLASS02B05.V40.A1982001.2019353.hdf"] == \
        "https://example.org/g/Albedo/AVHRR/0.05D/1982/GLASS02B05.V40.A1982001.2019353.hdf"
    reg, _ = download.glass_registry("lst", [1982], listing={1982: ["GLASS08B31.V40.A1982003.2020001.hdf"]})
    assert list(reg) == ["1982/GLASS08B31.V40.A1982003.2020001.hdf"]
    assert download.glass_year_url("lst", 1999) == f"{download.GLASS_BASE_URL}/LST/AVHRR/0.05D/1999/"
    with pytest.raises(ValueError, match="unknown GLASS product"):
        download.glass_year_url("ndvi", 1999)


LISTING_V04 = """<html><body><pre>
<a href="GLASS02B05.V04.A1981361.2018062.hdf">GLASS02B05.V04.A1981361.2018062.hdf</a>
<a href="GLASS02B05.V04.A1982001.2018062.hdf">GLASS02B05.V04.A1982001.2018062.hdf</a>
<a href="GLASS02B05.V04.A1982009.2018062.hdf">GLASS02B05.V04.A1982009.2018062.hdf</a>
<a href="GLASS02B05.V04.A1982009.2018070.hdf">GLASS02B05.V04.A1982009.2018070.hdf</a>
<a href="GLASS02B05.V05.A1982017.2019001.hdf">GLASS02B05.V05.A1982017.2019001.hdf</a>
<a href="GLASS02B05.V04.A1982017.2020001.hdf">GLASS02B05.V04.A1982017.2020001.hdf</a>
</pre></body></html>"""


def test_any_avhrr_version_is_listed():
    """Today's albedo in circulation is V04 (the helper accepted only V40 and fetched nothing)."""
    names = download.parse_listing(LISTING_V04, "albedo")
    assert len(names) == 6 and "GLASS02B05.V05.A1982017.2019001.hdf" in names
    assert download.parse_listing("GLASS08B31.V41.A2020366.2021259.hdf", "lst") == [
        "GLASS08B31.V41.A2020366.2021259.hdf"]
    assert download.GLASS_PRODUCTS["albedo"]["cadence_days"] == 8


def test_needed_dates_map_days_to_bracketing_composites():
    d = dt.date
    assert download.needed_dates("albedo", [d(1982, 1, 1)]) == [d(1982, 1, 1)]
    assert download.needed_dates("albedo", [d(1982, 1, 5)]) == [d(1982, 1, 1), d(1982, 1, 9)]
    assert download.needed_dates("albedo", [d(1981, 12, 29)]) == [d(1981, 12, 27), d(1982, 1, 1)]  # 361 -> 1
    days = [d(1982, 1, 1) + dt.timedelta(days=i) for i in range(365)]
    assert len(download.needed_dates("albedo", days)) == 47  # 46 composites + 1983-001
    assert download.needed_dates("lst", days[:3]) == days[:3]


def test_fetch_glass_picks_highest_version_then_latest_production(tmp_path, monkeypatch):
    import pooch

    fetched = []

    class FakeFetcher:
        def __init__(self, registry, urls):
            self.registry, self.urls = registry, urls

        def fetch(self, key, progressbar=False):
            fetched.append(key)
            return str(tmp_path / key)

    monkeypatch.setattr(pooch, "create", lambda **kw: FakeFetcher(kw["registry"], kw["urls"]))
    days = [dt.date(1982, 1, 3), dt.date(1982, 1, 12)]
    with pytest.warns(UserWarning, match=r"1 file date\(s\) not in the archive listing"):  # 1982-01-25 missing
        out = download.fetch_glass("albedo", days + [dt.date(1982, 1, 20)], tmp_path, listing={1982: LISTING_V04},
                                   progress=False)
    assert fetched == ["1982/GLASS02B05.V04.A1982001.2018062.hdf", "1982/GLASS02B05.V04.A1982009.2018070.hdf",
                       "1982/GLASS02B05.V05.A1982017.2019001.hdf"]
    assert len(out) == 3


def test_era5land_request():
    req = download.era5land_request(DEMO, [1983, 1982], months=[1, 2])
    assert req["variable"] == ["volumetric_soil_water_layer_1"]
    assert req["year"] == ["1982", "1983"] and req["month"] == ["01", "02"]
    assert req["day"][0] == "01" and len(req["day"]) == 31
    assert req["time"] == [f"{h:02d}:00" for h in range(24)]  # hourly
    assert req["area"] == [40.1, -101.1, 38.9, -98.9]  # N, W, S, E: domain + one 0.1 deg cell
    assert req["data_format"] == "netcdf" and req["download_format"] == "unarchived"
    glob = Domain.from_bounds(-60, 80, -180, 180)
    assert download.era5land_area(glob) == [80.1, -180.0, -60.1, 180.0]
    with pytest.raises(ValueError):
        download.era5land_request(DEMO, [1982], months=[13])


def test_download_era5land_with_a_fake_client(tmp_path):
    class FakeClient:
        def __init__(self):
            self.calls = []

        def retrieve(self, name, request, target):
            self.calls.append((name, request, target))
            Path(target).write_bytes(b"CDF\x01")

    client = FakeClient()
    files = download.download_era5land(DEMO, [1982, 1983], tmp_path, client=client)
    assert [f.name for f in files] == ["era5land_swvl1_1982.nc", "era5land_swvl1_1983.nc"]
    assert all(f.is_file() for f in files) and not list(tmp_path.glob("*.partial"))
    assert client.calls[0][0] == "reanalysis-era5-land" and client.calls[0][1]["year"] == ["1982"]
    again = download.download_era5land(DEMO, [1982], tmp_path, client=client)  # present: skipped
    assert again == files[:1] and len(client.calls) == 2
    monthly = download.download_era5land(DEMO, [1984], tmp_path, months=[6, 7], per_month=True,
                                         times=["00:00", "12:00"], client=client)
    assert [f.name for f in monthly] == ["era5land_swvl1_198406.nc", "era5land_swvl1_198407.nc"]
    assert client.calls[-1][1]["month"] == ["07"] and client.calls[-1][1]["time"] == ["00:00", "12:00"]


def test_ismn_instructions():
    text = download.ISMN_INSTRUCTIONS
    assert "https://ismn.earth" in text and "data.stations_dir" in text and "terms of use" in text


def test_global_params_load_with_glass_sm_data(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASS_SM_DATA", str(tmp_path))
    cfg = load(ROOT / "params" / "global.yaml")
    assert cfg.data.source == "real" and not cfg.twin.enabled and not cfg.is_twin
    assert cfg.data.root is None and cfg.data.truth_path is None
    for key in ("avhrr_dir", "era5land_dir", "glass_modis_dir", "static_dir", "stations_dir", "esa_cci_dir"):
        assert Path(getattr(cfg.data, key)).parent == tmp_path, key
    assert (cfg.period.start, cfg.period.end) == (dt.date(1982, 1, 1), dt.date(2021, 12, 31))
    assert (cfg.domain.lat_min, cfg.domain.lat_max, cfg.domain.lon_min, cfg.domain.lon_max) == (-60, 80, -180, 180)
    dom = Domain.from_config(cfg)
    assert dom.shape == (2800, 7200)
    assert cfg.run.name == "global"


def test_global_params_need_a_data_root(monkeypatch):
    monkeypatch.delenv("GLASS_SM_DATA", raising=False)
    with pytest.raises(ConfigError, match="GLASS_SM_DATA"):
        load(ROOT / "params" / "global.yaml")
