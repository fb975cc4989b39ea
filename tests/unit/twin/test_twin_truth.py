"""glass_sm.twin.truth: the simulated true and ERA5-like soil moisture stay physical and depend on the seed."""

from __future__ import annotations

import numpy as np

from glass_sm import twin as gtwin
from glass_sm.twin import truth


def test_theta_within_hydraulic_limits(smoke_sim):
    _, s, _ = smoke_sim
    st, th = s["static"], s["theta"]
    assert len(s["dates"]) == th.shape[0] and th.shape[1:] == s["grids"].sim.shape   # spin-up removed
    assert np.all(th >= st["theta_r"] - 1e-6) and np.all(th <= st["theta_s"] + 1e-6)
    assert np.all(th >= st["theta_wp"] - 1e-6)              # ET stops at the wilting point
    te, le = s["theta_era5"], s["era5_limits"]
    assert np.all(te >= le["theta_r"] - 1e-6) and np.all(te <= le["theta_s"] + 1e-6)
    s1 = th[:-1].ravel()
    assert np.corrcoef(s1, th[1:].ravel())[0, 1] > 0.5      # memory: day-to-day persistence
    assert te.mean() > th.mean() + 0.01                     # the ERA5-like layer is wetter


def test_seed_changes_the_world_not_the_grids(smoke_sim, make_cfg, tmp_path):
    cfg, same, _ = smoke_sim
    other = truth.simulate_truth(make_cfg(tmp_path, **{"run.seed": cfg.run.seed + 1}))
    assert not np.allclose(other["theta"], same["theta"])
    assert other["grids"] == same["grids"] and gtwin.simulate_truth is truth.simulate_truth
