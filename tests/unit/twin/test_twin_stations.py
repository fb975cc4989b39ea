"""glass_sm.twin.stations: ISMN-like station placement (networks, kinds, land, bounds, determinism, errors)."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

from glass_sm.twin import stations as st
from glass_sm.twin.grids import component_rng

GLOBAL = (-60.0, 84.0, -180.0, 180.0)
BY_NAME = {net.name: net for net in st.NETWORKS}
# crude continents (south, north, west, east), deg: a toy land mask independent of glass_sm.twin.earth
BOXES = {"North America": (15, 72, -168, -55), "Europe": (36, 71, -10, 60), "Asia": (5, 72, 60, 145),
         "Africa": (-35, 36, -18, 52), "South America": (-56, 12, -82, -35), "Oceania": (-40, -11, 113, 154)}


def toy_land(lat, lon):
    lat, lon = np.asarray(lat), np.mod(np.asarray(lon) + 180.0, 360.0) - 180.0
    out = np.zeros(lat.shape, bool)
    for s, n, w, e in BOXES.values():
        out |= (lat >= s) & (lat <= n) & (lon >= w) & (lon <= e)
    return out


def toy_continent(lat, lon):
    names = np.full(np.shape(lat), "", dtype=object)
    for name, (s, n, w, e) in BOXES.items():
        inside = (lat >= s) & (lat <= n) & (lon >= w) & (lon <= e) & (names == "")
        names[inside] = name
    return names


def place(seed=1, n=50, bounds=GLOBAL, land=toy_land, start="1982-01-01", end="2021-12-31", frac=0.4):
    return st.place_stations(component_rng(seed, "stations"), n, bounds, land, start, end, frac)


def test_network_table_is_documented_and_sane():
    tab = st.network_table()
    assert tab["name"].is_unique and (tab["weight"] > 0).all() and (tab["spread"] > 0).all()
    assert tab["lat"].between(-90, 90).all() and tab["lon"].between(-180, 180).all()
    last = tab["last"].fillna(9999)
    assert (tab["first"] <= last).all()
    # the Data Bank networks named by Robock et al. (2000) carry the pre-2000 records
    assert set(tab.loc[tab["pre2000"], "name"]) >= {"RUSWET-GRASS", "RUSWET-AGRO", "CHINA", "MONGOLIA", "ICN"}
    assert (BY_NAME["CHINA"].first, BY_NAME["CHINA"].last) == (1981, 1999)
    assert (BY_NAME["MONGOLIA"].first, BY_NAME["MONGOLIA"].last) == (1964, 2002)
    assert (BY_NAME["ICN"].first, BY_NAME["ICN"].last) == (1981, 2010)
    # ISMN is dominated by North America and Europe (Dorigo et al. 2021): most of the modern weight there
    modern = tab[~tab["pre2000"]]
    cont = toy_continent(modern["lat"].to_numpy(), modern["lon"].to_numpy())
    share = modern["weight"][np.isin(cont, ["North America", "Europe"])].sum() / modern["weight"].sum()
    assert share > 0.7


@pytest.mark.parametrize("n,frac", [(50, 0.4), (7, 0.3), (10, 0.0), (9, 1.0)])
def test_counts_per_kind_match_fraction(n, frac):
    df = place(n=n, frac=frac)
    n_pre = int(round(frac * n))
    counts = df["kind"].value_counts()
    assert len(df) == n
    assert counts.get("across", 0) == (n_pre + 1) // 2
    assert counts.get("before", 0) == n_pre // 2
    assert counts.get("after", 0) == n - n_pre


def test_periods_follow_kind_network_years_and_run():
    p0, p1 = pd.Timestamp("1982-01-01"), pd.Timestamp("2021-12-31")
    df = place(n=80, start=p0, end=p1)
    assert list(df.columns) == ["network", "lat", "lon", "start", "end", "kind"]
    assert (df["start"] == df["start"].dt.normalize()).all() and (df["end"] == df["end"].dt.normalize()).all()
    assert (df["start"] >= p0).all() and (df["end"] <= p1).all() and (df["start"] <= df["end"]).all()
    y2k = pd.Timestamp("2000-01-01")
    k = df["kind"]
    assert (df.loc[k == "before", "end"] < y2k).all()
    assert (df.loc[k == "after", "start"] >= y2k).all()
    assert ((df.loc[k == "across", "start"] < y2k) & (df.loc[k == "across", "end"] >= y2k)).all()
    for row in df.itertuples():
        net = BY_NAME[row.network]
        assert row.start.year >= net.first and (net.last is None or row.end.year <= net.last)
        # pre-2000 stations only in the Data Bank networks
        assert net.pre2000 or row.kind == "after"
        # minimum lengths as sensors.station_periods: 2 years before 2000, 3 after, clipped to half the window
        lo, hi = st._window(net, row.kind, p0, p1)
        need = {"before": st.MIN_LEN_BEFORE, "after": st.MIN_LEN_AFTER, "across": pd.Timedelta(0)}[row.kind]
        assert row.end - row.start >= min(need, 0.5 * (hi - lo)) - pd.Timedelta(days=1)


def test_whole_period_before_or_after_2000():
    assert set(place(n=12, start="1983-01-01", end="1995-12-31")["kind"]) == {"before"}
    after = place(n=12, start="2005-01-01", end="2010-12-31")
    assert set(after["kind"]) == {"after"}
    # smoke-like period straddling 2000: CHINA/MONGOLIA/ICN still give before and across
    smoke = place(n=6, start="1998-01-01", end="2002-12-31")
    assert smoke["kind"].value_counts().to_dict() == {"after": 4, "across": 1, "before": 1}


@pytest.mark.parametrize("bounds", [GLOBAL, (25.0, 50.0, -125.0, -65.0), (35.0, 72.0, -12.0, 45.0),
                                    (-50.0, 84.0, 0.0, 360.0)])
def test_stations_on_land_and_in_bounds(bounds):
    df = place(n=40, bounds=bounds)
    s, n, w, e = bounds
    lat, lon = df["lat"], df["lon"]
    assert toy_land(lat.to_numpy(), lon.to_numpy()).all()
    assert ((lat > s) & (lat < n) & (lon >= w) & (lon < e)).all()   # 0..360 domain: longitudes in 0..360


def test_regional_domain_draws_only_networks_inside():
    europe = (35.0, 72.0, -12.0, 30.0)
    df = place(n=30, bounds=europe, start="2005-01-01", end="2020-12-31")
    inside = {net.name for net in st.NETWORKS if st._touches(net, europe)}
    assert set(df["network"]) <= inside
    assert not {"SCAN", "SNOTEL", "CTP_SMTMN", "OZNET"} & inside


def test_nearest_land_fallback_when_draws_miss():
    # land only in a 0.5 deg box 2.3 deg (11 spreads) south of REMEDHUS: Gaussian draws never reach it
    def island(lat, lon):
        return (np.abs(np.asarray(lat) - 39.0) < 0.25) & (np.abs(np.asarray(lon) - (-5.4)) < 0.25)
    spain = (38.0, 42.5, -8.0, -3.0)     # REMEDHUS only (SMOSMANIA's footprint ends at 2.6 W)
    df = place(n=3, bounds=spain, land=island, start="2006-01-01", end="2015-12-31", frac=0.0)
    assert set(df["network"]) == {"REMEDHUS"}
    assert island(df["lat"].to_numpy(), df["lon"].to_numpy()).all()


def test_clear_errors():
    with pytest.raises(ValueError, match="REMEDHUS"):       # no land anywhere near the only network
        place(n=2, bounds=(38.0, 42.5, -8.0, -3.0), land=lambda la, lo: np.zeros(np.shape(la), bool),
              start="2006-01-01", end="2015-12-31", frac=0.0)
    with pytest.raises(ValueError, match="twin.climate: earth"):   # South Pacific: no network
        place(n=5, bounds=(-50.0, -30.0, -150.0, -110.0))
    with pytest.raises(ValueError, match="before 2000"):     # Iberia has no Data Bank network
        place(n=10, bounds=(36.0, 44.0, -10.0, 4.0), frac=0.4)
    assert len(place(n=10, bounds=(36.0, 44.0, -10.0, 4.0), frac=0.0)) == 10
    with pytest.raises(ValueError, match="frac_pre2000"):
        place(frac=1.5)
    with pytest.raises(ValueError, match="bounds"):
        place(bounds=(50.0, 40.0, 0.0, 10.0))
    with pytest.raises(ValueError, match="before start"):
        place(start="2010-01-01", end="2005-01-01")
    with pytest.raises(ValueError, match="same shape"):
        place(land=lambda la, lo: True)
    assert len(place(n=0)) == 0


def test_deterministic_for_a_seed():
    a, b = place(seed=7, n=30), place(seed=7, n=30)
    pd.testing.assert_frame_equal(a, b)
    assert not place(seed=8, n=30)[["lat", "lon"]].equals(a[["lat", "lon"]])


def test_real_land_mask_mostly_north_america_and_europe():
    """With the twin's Natural Earth land mask (glass_sm.twin.earth, helper B): skipped until it exists."""
    try:
        earth = importlib.import_module("glass_sm.twin.earth")
        earth.land_mask(np.array([50.0]), np.array([10.0]), 1.0)
    except (ImportError, AttributeError, NotImplementedError):
        pytest.skip("glass_sm.twin.earth.land_mask not implemented yet (land mask of issue 16, helper B)")

    def land(lat, lon):      # NE land covering half of a 1 deg cell, permanent ice excluded (its default)
        return np.asarray(earth.land_mask(lat, lon, 1.0), bool)

    df = place(n=60, bounds=(-60.0, 84.0, -180.0, 180.0), land=land)
    lat, lon = df["lat"].to_numpy(), df["lon"].to_numpy()
    assert land(lat, lon).all()
    try:
        cont = np.asarray(earth.continent(lat, lon))
    except NotImplementedError:
        cont = toy_continent(lat, lon)
    assert np.isin(cont, ["North America", "Europe"]).mean() > 0.5
