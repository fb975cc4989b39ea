"""glass_sm.twin.soil: Saxton & Rawls pedotransfer against textbook values, the bucket's water balance."""

from __future__ import annotations

import numpy as np
import pytest

from glass_sm.twin import soil


def test_saxton_rawls_textbook_values():
    # Saxton & Rawls (2006) Table 3 (OM 2.5 %), wilting point / field capacity / saturation, m3 m-3:
    # loam about 0.12-0.14 / 0.26-0.28 / 0.46; sand 0.05 / 0.10 / 0.46; clay 0.30 / 0.42 / 0.50
    loam = soil.hydraulic_limits(0.40, 0.20)
    assert 0.11 <= loam["theta_wp"] <= 0.145
    assert 0.25 <= loam["theta_fc"] <= 0.29
    assert 0.42 <= loam["theta_s"] <= 0.48
    sand = soil.hydraulic_limits(0.88, 0.05)
    clay = soil.hydraulic_limits(0.25, 0.50)
    assert sand["theta_fc"] == pytest.approx(0.10, abs=0.03)
    assert clay["theta_wp"] == pytest.approx(0.30, abs=0.03)
    assert sand["ksat"] > loam["ksat"] > clay["ksat"]
    S = np.array([0.92, 0.65, 0.40, 0.20, 0.30, 0.10])  # sand, sandy loam, loam, silt loam, clay loam, clay
    C = np.array([0.05, 0.10, 0.20, 0.15, 0.35, 0.60])
    h = soil.hydraulic_limits(S, C)
    assert np.all((0 <= h["theta_r"]) & (h["theta_r"] < h["theta_wp"]))
    assert np.all((h["theta_wp"] < h["theta_fc"]) & (h["theta_fc"] < h["theta_s"]))
    with pytest.raises(ValueError, match="fractions"):
        soil.hydraulic_limits(0.8, 0.4)


def test_bucket_step_balance_and_bounds():
    lim = soil.hydraulic_limits(np.full(5, 0.4), np.full(5, 0.2))
    theta = np.array([lim["theta_r"][0], 0.15, 0.27, 0.35, lim["theta_s"][0]])
    precip = np.array([0.0, 5.0, 0.0, 40.0, 80.0])
    pet = np.full(5, 6.0)
    new, et, drain, runoff = soil.bucket_step(theta, precip, pet, lim, 50.0)
    infil = precip - runoff
    np.testing.assert_allclose((new - theta) * 50.0, infil - et - drain, atol=1e-9)   # water balance
    assert np.all((new >= lim["theta_r"]) & (new <= lim["theta_s"]))
    assert et[0] == 0.0 and drain[1] == 0.0 and drain[3] > 0.0                     # no ET below wp
    assert runoff[4] > 0.0 and np.all(runoff >= 0)                                 # saturated: excess runs off


def test_run_bucket_dries_towards_wilting_point_and_steps_like_bucket_step():
    lim = soil.hydraulic_limits(np.full(3, 0.4), np.full(3, 0.2))
    days = 200
    precip, pet = np.zeros((days, 3)), np.full((days, 3), 5.0)
    theta = soil.run_bucket(precip, pet, lim, soil.LAYER_MM)
    assert theta.shape == (days, 3) and theta.dtype == np.float32
    assert np.all(np.diff(theta, axis=0) <= 1e-7)                                  # no rain: never wetter
    np.testing.assert_allclose(theta[-1], lim["theta_wp"], atol=1e-3)              # ET stops at the wilting point
    first = soil.bucket_step(lim["theta_fc"], precip[0], pet[0], lim, soil.LAYER_MM)[0]
    np.testing.assert_allclose(theta[0], first, rtol=1e-6)                         # starts at field capacity
