"""The twin's soil: texture -> hydraulic limits (pedotransfer) and the daily surface bucket.

Saxton & Rawls (2006) pedotransfer functions give the wilting point, field capacity, saturation and saturated
conductivity of a texture, Rawls & Brakensiek (1985) the residual water content (:func:`hydraulic_limits`).
The true 0-5 cm soil moisture is a bucket of depth ``LAYER_MM`` stepped daily in the order drainage,
evapotranspiration, infiltration (:func:`bucket_step`, :func:`run_bucket`); the equations are in
:mod:`glass_sm.twin`.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

__all__ = ["LAYER_MM", "OM_PERCENT", "hydraulic_limits", "bucket_step", "run_bucket"]

LAYER_MM = 50.0                 #: true layer depth (0-5 cm), mm (TWIN.md)
OM_PERCENT = 2.5                #: soil organic matter for Saxton & Rawls, % weight (their Table 3 value)


def hydraulic_limits(sand, clay, om: float = OM_PERCENT) -> dict[str, np.ndarray]:
    """Soil hydraulic limits from texture: Saxton & Rawls (2006) + residual water of Rawls & Brakensiek (1985).

    Parameters
    ----------
    sand, clay : array-like
        Mass fractions, dimensionless (0-1).
    om : float
        Organic matter, % weight (2.5 in Saxton & Rawls' Table 3).

    Returns
    -------
    dict of numpy.ndarray
        ``theta_r``, ``theta_wp`` (-1500 kPa), ``theta_fc`` (-33 kPa), ``theta_s`` (saturation) in m3 m-3;
        ``ksat`` saturated conductivity, mm h-1; ``lam`` the pore-size index lambda = 1/B, dimensionless.

    Notes
    -----
    Saxton & Rawls (2006), eqs. 1-5, 15-16 (S, C fractions, OM %)::

        t1500t = -0.024S + 0.487C + 0.006OM + 0.005 S OM - 0.013 C OM + 0.068 S C + 0.031
        theta_wp = t1500t + (0.14 t1500t - 0.02)
        t33t = -0.251S + 0.195C + 0.011OM + 0.006 S OM - 0.027 C OM + 0.452 S C + 0.299
        theta_fc = t33t + (1.283 t33t^2 - 0.374 t33t - 0.015)
        ts33t = 0.278S + 0.034C + 0.022OM - 0.018 S OM - 0.027 C OM - 0.584 S C + 0.078
        ts33 = ts33t + (0.636 ts33t - 0.107)
        theta_s = theta_fc + ts33 - 0.097S + 0.043
        B = (ln 1500 - ln 33) / (ln theta_fc - ln theta_wp);  lambda = 1/B
        Ks = 1930 (theta_s - theta_fc)^(3 - lambda)   [mm h-1]

    Rawls & Brakensiek (1985) residual water (S, C in %, clipped to their 5-70 % sand, 5-60 % clay; phi =
    theta_s)::

        theta_r = -0.0182482 + 0.00087269 S + 0.00513488 C + 0.02939286 phi - 0.00015395 C^2
                  - 0.0010827 S phi - 0.00018233 C^2 phi^2 + 0.00030703 C^2 phi - 0.0023584 phi^2 C

    Loam (S 0.40, C 0.20): theta_wp 0.14, theta_fc 0.28, theta_s 0.46, Ks 15 mm/h; sand (0.88, 0.05): 0.05,
    0.10, 0.46, 108 mm/h; clay (0.25, 0.50): 0.30, 0.42, 0.50, 1.1 mm/h (cf. Saxton & Rawls 2006, Table 3).
    """
    S, C = np.asarray(sand, float), np.asarray(clay, float)
    if np.any((S < 0) | (C < 0) | (S + C > 1 + 1e-9)):
        raise ValueError("sand and clay must be fractions with sand + clay <= 1")
    OM = float(om)
    t1500t = -0.024 * S + 0.487 * C + 0.006 * OM + 0.005 * S * OM - 0.013 * C * OM + 0.068 * S * C + 0.031
    wp = t1500t + (0.14 * t1500t - 0.02)
    t33t = -0.251 * S + 0.195 * C + 0.011 * OM + 0.006 * S * OM - 0.027 * C * OM + 0.452 * S * C + 0.299
    fc = t33t + (1.283 * t33t**2 - 0.374 * t33t - 0.015)
    ts33t = 0.278 * S + 0.034 * C + 0.022 * OM - 0.018 * S * OM - 0.027 * C * OM - 0.584 * S * C + 0.078
    ts33 = ts33t + (0.636 * ts33t - 0.107)
    sat = fc + ts33 - 0.097 * S + 0.043
    B = (np.log(1500.0) - np.log(33.0)) / (np.log(fc) - np.log(wp))
    lam = 1.0 / B
    ksat = 1930.0 * (sat - fc) ** (3.0 - lam)
    Sp, Cp = np.clip(S * 100, 5, 70), np.clip(C * 100, 5, 60)
    phi = sat
    res = (-0.0182482 + 0.00087269 * Sp + 0.00513488 * Cp + 0.02939286 * phi - 0.00015395 * Cp**2
           - 0.0010827 * Sp * phi - 0.00018233 * Cp**2 * phi**2 + 0.00030703 * Cp**2 * phi
           - 0.0023584 * phi**2 * Cp)
    res = np.clip(res, 0.0, 0.9 * wp)
    return {"theta_r": res, "theta_wp": wp, "theta_fc": fc, "theta_s": sat, "ksat": ksat, "lam": lam}


def bucket_step(theta, precip, pet, limits: dict, z_mm: float = LAYER_MM):
    """One day of the surface bucket (drainage, then ET, then infiltration; equations in :mod:`glass_sm.twin`).

    Parameters
    ----------
    theta : numpy.ndarray
        Volumetric SM at the start of the day, m3 m-3.
    precip, pet : numpy.ndarray
        Precipitation and potential evapotranspiration of the day, mm d-1.
    limits : dict
        Output of :func:`hydraulic_limits` (``theta_r, theta_wp, theta_fc, theta_s`` m3 m-3, ``ksat`` mm h-1,
        ``lam``).
    z_mm : float
        Layer depth, mm.

    Returns
    -------
    theta_new, et, drainage, runoff : numpy.ndarray
        SM at the end of the day (m3 m-3) and the day's fluxes (mm d-1).
    """
    r, wp, fc, s = limits["theta_r"], limits["theta_wp"], limits["theta_fc"], limits["theta_s"]
    c = 3.0 + 2.0 / limits["lam"]
    excess = np.maximum(theta - fc, 0.0)
    drain = np.minimum(24.0 * limits["ksat"] * (excess / (s - fc)) ** c, excess * z_mm)
    th = theta - drain / z_mm
    beta = np.clip((th - wp) / (fc - wp), 0.0, 1.0)
    et = np.minimum(pet * beta, np.maximum(th - wp, 0.0) * z_mm)
    th = th - et / z_mm
    infil = np.clip((s - th) * z_mm, 0.0, precip)
    runoff = precip - infil
    th = np.clip(th + infil / z_mm, r, s)
    return th, et, drain, runoff


def run_bucket(precip: np.ndarray, pet: np.ndarray, limits: dict, z_mm: float = LAYER_MM,
               theta0: np.ndarray | None = None, progress: bool = False, desc: str = "bucket") -> np.ndarray:
    """Integrate :func:`bucket_step` over the leading (time) axis.

    Parameters
    ----------
    precip, pet : numpy.ndarray
        ``(time, ...)`` forcing, mm d-1.
    limits : dict
        :func:`hydraulic_limits` fields broadcastable to ``precip.shape[1:]``.
    z_mm : float
        Layer depth, mm.
    theta0 : numpy.ndarray, optional
        Initial SM, m3 m-3 (default: field capacity).
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    numpy.ndarray
        ``(time, ...)`` float32 SM at the end of each day, m3 m-3.
    """
    lim = {k: np.asarray(v, np.float64) for k, v in limits.items()}
    theta = np.array(lim["theta_fc"] if theta0 is None else theta0, np.float64) * np.ones(precip.shape[1:])
    out = np.empty(precip.shape, np.float32)
    for t in tqdm(range(precip.shape[0]), desc=desc, disable=not progress, mininterval=1.0, leave=False):
        theta = bucket_step(theta, precip[t], pet[t], lim, z_mm)[0]
        out[t] = theta
    return out
