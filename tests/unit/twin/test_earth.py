"""The Earth's layout (glass_sm.twin.earth): known places, invariants, wrap, determinism and speed.

Expected values are textbook climatology (station normals, UNEP aridity classes, Köppen maps: Kottek et al.
2006) with ranges wide enough for a layout that is approximate by design.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from glass_sm.twin import earth, geography

PLACES = {  # (lat, lon), degrees
    "Sahara": (23.0, 10.0), "Amazon": (-3.0, -62.0), "Congo": (0.0, 20.0), "Borneo": (0.0, 114.0),
    "Paris": (48.85, 2.35), "Moscow": (55.75, 37.6), "Yakutsk": (62.0, 129.7), "Ireland": (53.0, -8.0),
    "Atacama": (-23.0, -69.8), "Namib": (-23.0, 15.2), "Australian interior": (-25.0, 133.0),
    "Sonora": (30.0, -112.5), "Arabia": (22.0, 47.0), "SE China": (25.0, 113.0), "SE US": (33.7, -84.4),
    "Pacific NW": (47.5, -123.5), "Kansas": (38.5, -99.0), "Kazakhstan": (47.0, 67.0),
    "Tibet": (33.0, 88.0), "Altiplano": (-17.0, -68.0), "Netherlands": (52.2, 5.3), "Svalbard": (78.2, 15.6),
    "Lagos": (6.5, 3.4), "Brasilia": (-15.8, -47.9), "Canberra": (-35.3, 149.1), "Denver": (39.7, -105.0),
    "Beijing": (39.9, 116.4), "central Asia": (45.0, 85.0), "Los Angeles": (34.2, -118.2),
    "Perth": (-31.9, 115.9), "mid-Pacific": (0.0, -150.0), "mid-Atlantic": (30.0, -40.0),
}


def at(*names):
    lat = np.array([PLACES[n][0] for n in names])
    lon = np.array([PLACES[n][1] for n in names])
    return lat, lon


@pytest.fixture(scope="module")
def layout():
    names = list(PLACES)
    lat, lon = at(*names)
    out = earth.climate_layout(lat, lon)
    return {k: dict(zip(names, v)) for k, v in out.items()}


# ---- land, ice, coasts ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("res", [0.05, 1.0, 2.0])
def test_land_and_sea_at_known_points(res):
    land = earth.land_mask(*at("Sahara", "Amazon", "Paris", "Moscow"), res)
    sea = earth.land_mask(*at("mid-Pacific", "mid-Atlantic"), res)
    assert land.all() and not sea.any()


def test_land_fraction_of_a_global_1deg_grid():
    """NE land minus lakes over 60 S-84 N: ~133 of the band's 474 million km2 (0.28 by area); counting cells
    weights the land-rich high northern latitudes more -> about 0.29 of cells."""
    lat, lon = np.meshgrid(np.arange(-59.5, 84, 1.0), np.arange(-179.5, 180, 1.0), indexing="ij")
    no_ice = earth.land_mask(lat, lon, 1.0).mean()
    with_ice = earth.land_mask(lat, lon, 1.0, include_ice=True).mean()
    print(f"land fraction of 1-deg cells 60S-84N: {no_ice:.4f} (ice excluded), {with_ice:.4f} (ice included)")
    assert 0.27 < no_ice < 0.31
    assert no_ice < with_ice < no_ice + 0.015            # Greenland's ice sheet: ~500 of 51840 cells


def test_land_fraction_is_an_exact_area_integral():
    """The fraction of a 1-deg cell equals the mean of its 400 0.05-deg sub-cells (integral image, exact)."""
    lat0, lon0 = 51.5, 4.5                                   # a coastal cell (the Dutch coast)
    sub = np.arange(-0.475, 0.5, 0.05)
    la, lo = np.meshgrid(lat0 + sub, lon0 + sub, indexing="ij")
    coarse = geography._land_fraction(np.array([lat0]), np.array([lon0]), 1.0)[0]
    fine = geography._land_fraction(la, lo, 0.05).mean()
    assert 0 < coarse < 1
    assert coarse == pytest.approx(fine, abs=1e-9)


def test_ice_mask():
    lat = np.array([-75.0, 72.0, 64.18, 48.85, 78.2])       # Antarctica, Greenland centre, Nuuk, Paris, Svalbard
    lon = np.array([0.0, -40.0, -51.7, 2.35, 15.6])
    assert earth.ice_mask(lat, lon).tolist() == [True, True, False, False, False]
    # the ice sheet covers ~81 % of Greenland (Kargel et al. 2012): area-weighted share of NE Greenland
    codes, greenland = geography._countries()
    lats = 90 - 0.1 * (np.arange(greenland.shape[0]) + 0.5)
    lons = -180 + 0.1 * (np.arange(greenland.shape[1]) + 0.5)
    glat, glon = np.meshgrid(lats, lons, indexing="ij")
    g_lat, g_lon = glat[greenland], glon[greenland]
    w = np.cos(np.deg2rad(g_lat))
    share = (earth.ice_mask(g_lat, g_lon) * w).sum() / w.sum()
    print(f"ice share of Greenland: {share:.3f}")
    assert 0.75 < share < 0.88


def test_coast_distance():
    d = earth.coast_distance_km(*at("mid-Pacific", "Netherlands", "central Asia", "Paris", "Moscow"))
    sea, nl, asia, paris, moscow = d
    assert sea == 0
    assert 0 < nl < 60
    assert asia > 1500                                       # the most continental place on Earth (~2500 km)
    assert paris < moscow < asia
    # great-circle exactness: a point 1 deg of latitude inland from a straight E-W coast (Gulf of Guinea,
    # 4.5-5 N) is ~111 km away, less a little for the coast's bends
    assert 60 < earth.coast_distance_km(6.3, -1.5) < 140


# ---- terrain --------------------------------------------------------------------------------------------------
def test_elevation_at_known_places():
    z = dict(zip(["Tibet", "Altiplano", "Netherlands", "mid-Pacific", "Amazon", "Denver"],
                 earth.elevation_m(*at("Tibet", "Altiplano", "Netherlands", "mid-Pacific", "Amazon", "Denver"))))
    print({k: round(v) for k, v in z.items()})
    assert z["Tibet"] > 4000 and z["Altiplano"] > 3000
    assert z["Netherlands"] < 150 and z["Amazon"] < 300
    assert z["mid-Pacific"] == 0
    assert 1000 < z["Denver"] < 2500


# ---- climate layout -----------------------------------------------------------------------------------------
def test_layout_keys_shapes_and_ranges():
    lat, lon = np.meshgrid(np.linspace(-55, 75, 14), np.linspace(-180, 170, 36), indexing="ij")
    out = earth.climate_layout(lat, lon)
    assert set(out) == {"aridity", "p_peak_doy", "p_seas_amp", "t_amp", "t_peak_doy", "t_sea_level"}
    for v in out.values():
        assert v.shape == lat.shape and np.isfinite(v).all()
    assert (out["aridity"] >= earth.ARIDITY_MIN).all()
    assert ((out["p_peak_doy"] >= 1) & (out["p_peak_doy"] <= 365)).all()
    assert ((out["p_seas_amp"] >= 0) & (out["p_seas_amp"] <= 1)).all()
    assert (out["t_amp"] >= earth.T_AMP_MIN).all()


def test_wet_tropics_dry_subtropics(layout):
    ai = layout["aridity"]
    print({k: round(float(v), 3) for k, v in ai.items()})
    for wet in ("Amazon", "Congo", "Borneo"):
        assert ai[wet] > 1.5, wet
    for desert in ("Sahara", "Atacama", "Namib"):
        assert ai[desert] < 0.1, desert                      # hyper-arid to arid (UNEP 1997)
    for dry in ("Australian interior", "Sonora", "Arabia"):
        assert 0.03 < ai[dry] < 0.3, dry
    assert ai["Sahara"] < ai["Amazon"] / 10
    assert ai["SE China"] > 0.65 and ai["SE US"] > 0.65       # humid eastern subtropics ...
    assert ai["SE China"] > 10 * ai["Atacama"]                # ... against the west-coast desert
    assert ai["Ireland"] > 1 and ai["Pacific NW"] > 1         # storm tracks on windward coasts
    for interior in ("Kansas", "Kazakhstan"):
        assert 0.15 < ai[interior] < 0.6, interior            # semi-arid continental interiors


def test_temperature_layout(layout):
    t, amp, peak = layout["t_sea_level"], layout["t_amp"], layout["t_peak_doy"]
    assert t["Amazon"] > 295 and t["Svalbard"] < 268
    assert t["Amazon"] > t["Paris"] > t["Moscow"] > t["Yakutsk"]
    assert amp["Yakutsk"] > 20 and amp["Paris"] < 9 and amp["Amazon"] < 3
    assert amp["Moscow"] > amp["Paris"]                       # continentality
    assert 190 < peak["Paris"] < 215 and 190 < peak["Yakutsk"] < 215
    assert 5 < peak["Brasilia"] < 35 and 5 < peak["Canberra"] < 35


def test_t_peak_is_smooth_across_the_equator():
    lat = np.linspace(-20, 20, 401)
    peak = earth.climate_layout(lat, 20.0, elevation_m=0.0, coast_km=500.0)["t_peak_doy"]
    assert np.max(np.abs(np.diff(peak))) < 5                 # from ~17 (south) to ~200 (north) without a jump
    assert peak[0] < 40 and peak[-1] > 180


def test_precipitation_seasonality(layout):
    pk, amp = layout["p_peak_doy"], layout["p_seas_amp"]

    def summer_nh(d):
        return 120 < d < 270
    assert summer_nh(pk["SE China"]) and summer_nh(pk["Beijing"])        # summer monsoon
    assert not summer_nh(pk["Los Angeles"])                              # Mediterranean: winter rain
    assert summer_nh(pk["Perth"])                                        # SH Mediterranean: austral winter
    assert amp["SE China"] > 0.5 and amp["Amazon"] < 0.3


def test_elevation_cools_and_dries():
    lat, lon = np.full(3, 33.0), np.full(3, 88.0)
    ai = earth.climate_layout(lat, lon, elevation_m=np.array([0.0, 2000.0, 4000.0]), coast_km=1000.0)["aridity"]
    assert ai.shape == (3,) and np.isfinite(ai).all()
    # t_sea_level is a sea-level quantity: independent of the local elevation
    t = earth.climate_layout(lat, lon, elevation_m=np.array([0.0, 2000.0, 4000.0]), coast_km=1000.0)["t_sea_level"]
    assert np.ptp(t) == 0


# ---- zones and continents -------------------------------------------------------------------------------------
def test_koppen_zones():
    zones = dict(zip(["Amazon", "Sahara", "Paris", "Moscow", "Yakutsk", "Svalbard", "Atacama", "Congo"],
                     earth.climate_zone(*at("Amazon", "Sahara", "Paris", "Moscow", "Yakutsk", "Svalbard",
                                           "Atacama", "Congo"))))
    assert zones == {"Amazon": "A tropical", "Sahara": "B arid", "Paris": "C temperate", "Moscow": "D cold",
                     "Yakutsk": "D cold", "Svalbard": "E polar", "Atacama": "B arid", "Congo": "A tropical"}
    assert earth.climate_zone(82.0, -40.0) == "E polar"     # northern Greenland


def test_continents():
    names = ["Paris", "Lagos", "Brasilia", "Canberra", "Denver", "Beijing", "Yakutsk", "Moscow", "mid-Pacific"]
    got = earth.continent(*at(*names), res=0.25)
    assert got.tolist() == ["Europe", "Africa", "South America", "Oceania", "North America", "Asia", "Asia",
                            "Europe", ""]
    assert earth.continent(4.0, -53.0).item() == "South America"        # French Guiana (France overseas)
    assert earth.continent(-75.0, 0.0).item() == "Antarctica"
    # with res, a coastal land cell keeps its continent although its centre lies at sea
    lat, lon = np.meshgrid(np.arange(-59.5, 84, 1.0), np.arange(-179.5, 180, 1.0), indexing="ij")
    c = earth.continent(lat, lon, res=1.0)
    assert ((c != "") == earth.land_mask(lat, lon, 1.0, include_ice=True)).all()
    assert set(np.unique(c)) == {""} | set(earth.CONTINENTS) - {"Antarctica"}    # 60 S-84 N


# ---- invariants -------------------------------------------------------------------------------------------------
FUNCTIONS = {
    "land_mask": lambda la, lo: earth.land_mask(la, lo, 1.0),
    "ice_mask": earth.ice_mask,
    "coast_distance_km": earth.coast_distance_km,
    "elevation_m": earth.elevation_m,
    "aridity": lambda la, lo: earth.climate_layout(la, lo)["aridity"],
    "climate_zone": earth.climate_zone,
    "continent": earth.continent,
}


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_shape_wrap_and_determinism(name):
    f = FUNCTIONS[name]
    rng = np.random.default_rng(3)
    lat = rng.uniform(-70, 80, (4, 5))
    lon = rng.uniform(-180, 180, (4, 5))
    a = f(lat, lon)
    assert a.shape == (4, 5)
    np.testing.assert_array_equal(a, f(lat, lon))                      # deterministic
    if a.dtype.kind == "f":                                            # lon wrapped (+360: rounding of lon)
        np.testing.assert_allclose(a, f(lat, lon + 360.0), rtol=1e-12)
    else:
        np.testing.assert_array_equal(a, f(lat, lon + 360.0))
    np.testing.assert_array_equal(a.ravel(), f(lat.ravel(), lon.ravel()))   # shape-free
    np.testing.assert_array_equal(f(np.array([40.0]), np.array([190.0])), f(np.array([40.0]), np.array([-170.0])))
    assert np.ndim(f(40.0, 10.0)) == 0                                 # scalars in, a 0-d array out


def test_bad_latitude_is_an_error():
    with pytest.raises(ValueError, match="latitude"):
        earth.elevation_m(95.0, 0.0)
    with pytest.raises(ValueError, match="res"):
        earth.land_mask(0.0, 0.0, 45.0)


def test_speed_at_200k_points():
    """Timing is printed, not asserted (shared CI machines)."""
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-60, 80, 200_000), rng.uniform(-180, 180, 200_000)
    t0 = time.perf_counter()
    earth.climate_zone(0.0, 0.0)                                       # caches
    earth.continent(0.0, 0.0)
    earth.land_mask(0.0, 0.0, 1.0)
    print(f"\ncaches (cold only when this test runs alone): {time.perf_counter() - t0:.1f} s")
    for name, f in FUNCTIONS.items():
        t0 = time.perf_counter()
        f(lat, lon)
        print(f"{name}: {time.perf_counter() - t0:.2f} s at 200,000 points")
