"""glass_sm.twin.climate: random fields, radiation (FAO-56 worked example), static fields and weather."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glass_sm.twin import climate


def test_sphere_fields_variance_and_correlation():
    # points along the equator 0, 5, 50 and 300 km from the first (more in test_twin_world.py)
    lon = np.array([0.0, 5.0, 50.0, 300.0]) / (np.pi / 180 * 6371.0)
    g = climate.sphere_fields(0, "t", np.arange(4000), np.zeros(4), lon, length_km=50.0, dtype=np.float64)
    assert g.std(axis=0) == pytest.approx(np.ones(4), abs=0.05)
    r = np.corrcoef(g.T)
    assert r[0, 1] > 0.95 and 0.3 < r[0, 2] < 0.9 and abs(r[0, 3]) < 0.2


def test_extraterrestrial_radiation_fao56_example_and_solar_geometry():
    # FAO-56 (Allen et al. 1998) Example 8: 20 deg S, 3 September (day 246): Ra = 32.2 MJ m-2 d-1
    assert climate.extraterrestrial_radiation(246, -20.0) == pytest.approx(32.2, abs=0.1)
    # polar night: no radiation; polar day in June larger than at the equator
    assert climate.extraterrestrial_radiation(355, 80.0) == pytest.approx(0.0, abs=1e-6)
    assert climate.extraterrestrial_radiation(172, 80.0) > climate.extraterrestrial_radiation(172, 0.0)
    # noon sun near the equinox (declination ~0): cos(SZA) = cos(latitude); 6 h later the sun sets
    assert climate.cos_sza(81, 40.0, 12.0) == pytest.approx(np.cos(np.deg2rad(40.0)), abs=0.01)
    assert climate.cos_sza(81, 40.0, 18.0) == pytest.approx(0.0, abs=0.01)


def test_static_fields_texture_and_terrain(smoke_sim):
    cfg, s, _ = smoke_sim
    st = s["static"]
    np.testing.assert_allclose(st["sand"] + st["clay"] + st["silt"], 1.0, atol=1e-9)
    assert np.all(st["sand_fine"] + st["clay_fine"] + st["silt_fine"] == 1000)     # g/kg, as SoilGrids
    assert np.all(st["dem_fine"] > 0)
    assert st["elevation"].shape == s["grids"].sim.shape
    ai = st["aridity"]
    assert ai[:, : ai.shape[1] // 3].mean() < ai[:, -(ai.shape[1] // 3):].mean()   # dry west, wetter east


def test_weather_generator_statistics(make_cfg, tmp_path):
    cfg = make_cfg(tmp_path)
    st = climate.simulate_static(cfg)
    dates = pd.date_range("2001-01-01", "2002-12-31")
    w = climate.simulate_weather(cfg, st, dates)
    assert w["precip"].shape == (len(dates),) + st["lat"].shape
    assert np.all(w["precip"] >= 0) and np.all(w["precip"][~w["wet"]] == 0)
    assert 0.05 < w["wet"].mean() < 0.6                                            # wet-day frequency
    wet = w["wet"].reshape(len(dates), -1)
    p11 = (wet[1:] & wet[:-1]).sum() / wet[:-1].sum()
    assert p11 > wet.mean()                                                        # wet spells persist
    summer = dates.month.isin([6, 7, 8])
    assert w["t_air"][summer].mean() > w["t_air"][~summer].mean() + 5              # seasonal cycle, K
    assert np.all(w["pet"] >= 0) and w["cloudy"][w["wet"]].mean() > w["cloudy"][~w["wet"]].mean()
    f = climate.vegetation_cover(st, w)
    assert f.shape == w["precip"].shape and np.all((f >= climate.F_VEG_MIN - 1e-6) & (f <= 0.9 + 1e-6))
