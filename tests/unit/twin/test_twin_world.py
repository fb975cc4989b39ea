"""glass_sm.twin: the world as a function of position and day (sphere fields, sub-periods, the earth layout)."""

from __future__ import annotations

import numpy as np
import pytest

from glass_sm.twin import climate
from glass_sm.twin.grids import EARTH_RADIUS_KM


def _chord_km(lat1, lon1, lat2, lon2):
    """Chord distance between two points of the sphere of radius EARTH_RADIUS_KM, km."""
    a = climate._sphere_xyz(lat1, lon1)[:, 0]
    b = climate._sphere_xyz(lat2, lon2)[:, 0]
    return float(np.linalg.norm(a - b))


def test_sphere_fields_unit_variance_and_gaussian_correlation():
    L = 500.0
    # point pairs in three directions (north-south at 40 N, east-west at the equator, across the antimeridian)
    pairs = [((40.0, -100.0), (44.0, -100.0)), ((0.0, 20.0), (0.0, 26.0)), ((-30.0, 178.0), (-30.0, -176.0)),
             ((60.0, 10.0), (60.0, 11.0)), ((10.0, 0.0), (10.0, 12.0))]
    lat = np.array([p[i][0] for p in pairs for i in (0, 1)])
    lon = np.array([p[i][1] for p in pairs for i in (0, 1)])
    # average the sample correlation over 12 independent sets of wave vectors (names): the covariance of one
    # set of K = 64 waves scatters by ~K^-1/2 around the Gaussian kernel
    r_sum, var_all = np.zeros(len(pairs)), []
    for n in range(12):
        g = climate.sphere_fields(7, f"test{n}", np.arange(2000), lat, lon, L, dtype=np.float64)
        var_all.append(g.var(axis=0))
        r_sum += [np.corrcoef(g[:, 2 * i], g[:, 2 * i + 1])[0, 1] for i in range(len(pairs))]
    assert np.mean(var_all, axis=0) == pytest.approx(np.ones(len(lat)), abs=0.03)      # unit variance
    expected = [np.exp(-_chord_km(*a, *b) ** 2 / (2 * L**2)) for a, b in pairs]
    # (chords of 445, 667, 578, 56 and 1300 km: correlations 0.67, 0.41, 0.51, 0.99, 0.03)
    np.testing.assert_allclose(r_sum / 12, expected, atol=0.06)


def test_sphere_fields_continuity_subsets_calls_and_antimeridian():
    lat = np.linspace(-60.0, 80.0, 57)
    lon = np.linspace(-180.0, 180.0, 73)                       # first and last column: the same meridian
    LA, LO = np.meshgrid(lat, lon, indexing="ij")
    for dtype in (np.float32, np.float64):
        full = climate.sphere_fields(3, "w", np.arange(40), LA, LO, 300.0, dtype=dtype)
        assert full.shape == (40,) + LA.shape and full.dtype == dtype
        np.testing.assert_array_equal(full[:, :, 0], full[:, :, -1])              # 180 == -180
        sub = climate.sphere_fields(3, "w", [17, 5], LA[10:20, 30:37], LO[10:20, 30:37], 300.0, dtype=dtype)
        np.testing.assert_array_equal(sub[1], full[5, 10:20, 30:37])             # other points, other indices
        np.testing.assert_array_equal(sub[0], full[17, 10:20, 30:37])
        one = climate.sphere_fields(3, "w", [5], 12.3, 45.6 + 360.0, 300.0, dtype=dtype)   # wrapped lon
        np.testing.assert_array_equal(one, climate.sphere_fields(3, "w", [5], 12.3, 45.6, 300.0, dtype=dtype))
    # another seed, name or index: another field
    a = climate.sphere_fields(3, "w", [5], LA, LO, 300.0)
    for other in (climate.sphere_fields(4, "w", [5], LA, LO, 300.0), climate.sphere_fields(3, "v", [5], LA, LO, 300.0),
                  climate.sphere_fields(3, "w", [6], LA, LO, 300.0)):
        assert abs(np.corrcoef(a.ravel(), other.ravel())[0, 1]) < 0.3
    with pytest.raises(ValueError, match="length_km"):
        climate.sphere_fields(3, "w", [0], LA, LO, 0.0)


def test_sphere_xyz_on_the_sphere():
    xyz = climate._sphere_xyz([90.0, 0.0, -45.0], [0.0, 90.0, 180.0])
    np.testing.assert_allclose(np.linalg.norm(xyz, axis=0), EARTH_RADIUS_KM)
    np.testing.assert_allclose(xyz[:, 0], [0, 0, EARTH_RADIUS_KM], atol=1e-9)
    np.testing.assert_allclose(xyz[:, 1], [0, EARTH_RADIUS_KM, 0], atol=1e-9)


def test_sub_period_sees_the_same_world(make_cfg, tmp_path):
    """A run of the last year of a 3-year period (with its own year of spin-up) samples the same world as the long
    run: static fields and weather identical, the truth within 1e-4 m3 m-3 from day 60 on (measured on the smoke
    box, seed 7: identical from the first day, the bucket having forgotten its start at field capacity during
    both spin-ups)."""
    from glass_sm.twin.truth import simulate_truth

    long = simulate_truth(make_cfg(tmp_path / "a", **{"period.start": "2001-01-01", "period.end": "2003-12-31"}))
    sub = simulate_truth(make_cfg(tmp_path / "b", **{"period.start": "2003-01-01", "period.end": "2003-12-31"}))
    n = len(sub["dates"])
    assert (long["dates"][-n:] == sub["dates"]).all()
    for k in ("elevation", "sand", "clay", "aridity", "theta_fc", "lat", "lon"):
        np.testing.assert_array_equal(sub["static"][k], long["static"][k], err_msg=k)
    for k in ("precip", "t_air", "pet", "cloudy"):      # the wet-day chain forgets its first day within days
        np.testing.assert_array_equal(sub["weather"][k][30:], long["weather"][k][-n + 30:], err_msg=k)
    assert np.abs(sub["theta"] - long["theta"][-n:])[60:].max() < 1e-4
    assert np.array_equal(sub["frozen"], sub["weather"]["t_air"] < 273.15) and sub["frozen"].dtype == bool
    assert sub["static"]["land"].all() and not sub["static"]["ice"].any()          # gradient: all land
    # a smaller box: the same terrain and air temperature (the gradient layout's aridity and texture are
    # relative to the domain's edges by design; the earth layout's are not, see the earth tests)
    box = simulate_truth(make_cfg(tmp_path / "c", **{"period.start": "2003-01-01", "period.end": "2003-12-31",
                                                     "domain.lat_min": 40.1, "domain.lon_max": -99.8}))
    r, c = box["grids"].sim.slices_in(sub["grids"].sim)
    np.testing.assert_array_equal(box["static"]["elevation"], sub["static"]["elevation"][r, c])
    np.testing.assert_array_equal(box["weather"]["t_air"][5:], sub["weather"]["t_air"][5:, r, c])


# ---- twin.climate: earth ---------------------------------------------------------------------------------------
def _box(lat, lon, half=1.5, res=1.0, **over):
    """Overrides for an ``earth`` run of a small box centred at (lat, lon), degrees, at ``res`` deg, 2001-2003."""
    return {"domain.lat_min": lat - half, "domain.lat_max": lat + half, "domain.lon_min": lon - half,
            "domain.lon_max": lon + half, "domain.resolution": res, "twin.climate": "earth",
            "twin.static_resolution": res / 2, "twin.cci_resolution": res, "period.start": "2001-01-01",
            "period.end": "2003-12-31", **over}


def _centre(sim, lat, lon):
    """(row, col) of the simulation cell holding (lat, lon)."""
    st = sim["static"]
    return np.unravel_index(np.argmin((st["lat"] - lat) ** 2 + (st["lon"] - lon) ** 2), st["lat"].shape)


@pytest.fixture(scope="module")
def earth_points(make_cfg, tmp_path_factory):
    """Three years of the earth twin at 1 deg around the Sahara (23 N, 10 E), the Amazon (2 S, 60 W), South Africa's
    Karoo (30 S, 25 E) and central Siberia (62 N, 110 E): ``{name: (sim, row, col)}``."""
    from glass_sm.twin.truth import simulate_truth

    out = {}
    for name, (la, lo) in {"sahara": (23.0, 10.0), "amazon": (-2.0, -60.0), "karoo": (-30.0, 25.0),
                           "siberia": (62.0, 110.0)}.items():
        sim = simulate_truth(make_cfg(tmp_path_factory.mktemp(name), **_box(la, lo)))
        out[name] = (sim,) + _centre(sim, la, lo)
    return out


def test_earth_desert_is_drier_than_rainforest(earth_points):
    (sd, i, j), (sw, k, m) = earth_points["sahara"], earth_points["amazon"]
    for s, a, b in ((sd, i, j), (sw, k, m)):
        assert s["static"]["land"][a, b] and not s["static"]["ice"][a, b]
    assert sd["static"]["aridity"][i, j] < 0.2 < 1.0 < sw["static"]["aridity"][k, m]     # UNEP arid vs humid
    p_d, p_w = (float(s["weather"]["precip"][:, a, b].mean()) * 365.25 for s, a, b in ((sd, i, j), (sw, k, m)))
    assert p_d < 250 < 1500 < p_w                                                          # mm yr-1
    assert sd["theta"][:, i, j].mean() < sw["theta"][:, k, m].mean() - 0.02                # m3 m-3
    assert sd["static"]["sand"][i, j] > sw["static"]["sand"][k, m]                          # sandier where dry


def test_earth_seasons_follow_the_hemisphere_and_frozen_soil(earth_points):
    def warmest_month(s, a, b):
        m = s["dates"].month
        return 1 + int(np.argmax([s["weather"]["t_air"][m == k, a, b].mean() for k in range(1, 13)]))

    assert warmest_month(*earth_points["karoo"]) in (1, 2)             # southern summer
    assert warmest_month(*earth_points["sahara"]) in (6, 7, 8)
    s, a, b = earth_points["siberia"]
    fz, m = s["frozen"][:, a, b], s["dates"].month
    assert fz[m == 1].mean() > 0.9 and fz[m == 7].mean() == 0.0        # frozen winters, thawed summers
    assert not earth_points["amazon"][0]["frozen"].any()


def test_earth_world_is_the_same_in_a_sub_box_and_at_another_resolution(make_cfg, tmp_path):
    """The earth layout has no domain-relative part: a smaller box sees identical static fields and weather; a
    0.5 deg run's elevation, texture and aridity averaged over 2 x 2 cells give the 1 deg run's (both sample
    the same fine 0.5 deg points)."""
    from glass_sm.twin import earth
    from glass_sm.twin.truth import simulate_truth

    big = simulate_truth(make_cfg(tmp_path / "a", **_box(40.0, -8.0, half=3.0)))      # Iberia and the Atlantic
    small = simulate_truth(make_cfg(tmp_path / "b", **_box(41.0, -7.0, half=1.0)))
    r, c = small["grids"].sim.slices_in(big["grids"].sim)
    for k in ("elevation", "sand", "aridity", "theta_fc", "land", "ice", "t_amp", "t_sea_level", "p_peak_doy"):
        np.testing.assert_array_equal(small["static"][k], big["static"][k][r, c], err_msg=k)
    for k in ("precip", "t_air", "pet"):
        np.testing.assert_array_equal(small["weather"][k][30:], big["weather"][k][30:, r, c], err_msg=k)
    st = big["static"]
    np.testing.assert_array_equal(st["land"], earth.land_mask(st["lat"], st["lon"], 1.0, include_ice=True))
    assert st["land"].any() and not st["land"].all()                   # the box holds land and sea

    half = climate.simulate_static(make_cfg(tmp_path / "c", **_box(40.0, -8.0, half=3.0, res=0.5,
                                                                    **{"twin.static_resolution": 0.5})))
    g = big["grids"].sim
    for k in ("elevation", "aridity", "sand"):
        # the 0.5 deg cells inside the 1 deg simulation grid, averaged 2 x 2
        lat0 = np.round(half["lat"][:, 0], 6)
        i0 = int(np.flatnonzero(lat0 == np.round(g.north - 0.25, 6))[0])
        lon0 = np.round(half["lon"][0], 6)
        j0 = int(np.flatnonzero(lon0 == np.round(g.west + 0.25, 6))[0])
        sub = half[k][i0:i0 + 2 * g.nrows, j0:j0 + 2 * g.ncols]
        coarse = sub.reshape(g.nrows, 2, g.ncols, 2).mean(axis=(1, 3))
        np.testing.assert_allclose(coarse, st[k], rtol=1e-6, atol=2e-3 if k == "sand" else 1e-6, err_msg=k)
