"""The twin's hidden truth: static fields, weather, vegetation and the bucket over the simulation domain.

:func:`simulate_truth` runs the climate (:mod:`glass_sm.twin.climate`), the soil bucket
(:mod:`glass_sm.twin.soil`) and the ERA5-Land-like rerun of the bucket (:mod:`glass_sm.twin.sensors`) for the
run's period, after one year of spin-up. Its output is what every sensor of :mod:`glass_sm.twin.sensors`
observes and what ``truth.nc`` keeps for evaluation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from glass_sm.twin.climate import simulate_static, simulate_weather, vegetation_cover
from glass_sm.twin.grids import twin_grids
from glass_sm.twin.sensors import era5_soil_moisture
from glass_sm.twin.soil import LAYER_MM, run_bucket

__all__ = ["SPINUP_DAYS", "FREEZING_K", "simulate_truth"]

SPINUP_DAYS = 365               #: bucket / phenology spin-up before the period, days
FREEZING_K = 273.15             #: daily-mean air temperature below which the surface soil counts as frozen, K


def simulate_truth(cfg, progress: bool = False) -> dict:
    """Static fields, weather, vegetation, the true SM and the ERA5-like SM over the simulation domain.

    Parameters
    ----------
    cfg : glass_sm.config.Config
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        ``grids`` (:class:`glass_sm.twin.grids.TwinGrids`), ``dates`` (the period), ``static``
        (:func:`simulate_static`), ``weather`` (:func:`simulate_weather`, period only), ``f_veg`` and ``theta``
        (true 0-5 cm SM, m3 m-3) and ``theta_era5`` (ERA5-like 0-7 cm SM at 0.05 deg before averaging,
        m3 m-3), each ``(time, lat, lon)`` float32 on ``grids.sim``; ``era5_limits`` (the shifted limits),
        ``era5_shift`` (their wet shift, m3 m-3) and ``frozen`` (bool, ``(time, lat, lon)``: daily-mean air
        temperature below ``FREEZING_K``, where the surface's liquid SM is undefined, as the real products flag
        it). Sea and ice cells (``~(static['land'] & ~static['ice'])``) are simulated like land; the writers
        mask them.

    Notes
    -----
    Every field is a function of the seed, the position and the day (:func:`glass_sm.twin.climate.sphere_fields`);
    what a run depends on is only where its spin-up starts: a run of a sub-period matches the long run once the
    bucket has forgotten its start at field capacity (``tests/unit/twin/test_twin_world.py`` measures it).
    """
    grids = twin_grids(cfg)
    dates = pd.date_range(cfg.period.start, cfg.period.end, freq="D")
    ext = pd.date_range(dates[0] - pd.Timedelta(days=SPINUP_DAYS), dates[-1], freq="D")
    static = simulate_static(cfg, grids)
    w = simulate_weather(cfg, static, ext, progress)
    lim = {k: static[k] for k in ("theta_r", "theta_wp", "theta_fc", "theta_s", "ksat", "lam")}
    theta = run_bucket(w["precip"], w["pet"], lim, LAYER_MM, progress=progress, desc="truth bucket")
    f_veg = vegetation_cover(static, w)
    theta_e, lim_e, d = era5_soil_moisture(cfg, static, w, lim, progress=progress, dates=ext)

    keep = slice(SPINUP_DAYS, None)
    weather = {k: (v[keep] if np.ndim(v) == 3 else v) for k, v in w.items()}
    return {"grids": grids, "dates": dates, "static": static, "weather": weather, "f_veg": f_veg[keep],
            "theta": theta[keep], "theta_era5": theta_e[keep], "era5_limits": lim_e, "era5_shift": d,
            "frozen": weather["t_air"] < FREEZING_K}
