"""The twin's climate: terrain and texture fields, a stochastic weather generator and vegetation phenology.

Everything here is defined on the 0.05 deg simulation grid of :class:`glass_sm.twin.grids.TwinGrids`: smooth
Gaussian random fields (:func:`smooth_fields`) make terrain, texture, storms and clouds spatially coherent;
:func:`simulate_static` draws terrain, texture and the aridity index; :func:`simulate_weather` the daily
precipitation (Richardson 1981; Wilks 1999), air temperature, radiation (FAO-56) and PET (Hargreaves & Samani
1985); :func:`vegetation_cover` the vegetation lagging rain. Equations and references: :mod:`glass_sm.twin`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from scipy.special import gammaincinv, ndtr
from tqdm import tqdm

from glass_sm.grid import RES, block_mean
from glass_sm.twin.grids import TwinGrids, component_rng, km_coords, twin_grids
from glass_sm.twin.soil import hydraulic_limits

__all__ = ["smooth_fields", "extraterrestrial_radiation", "cos_sza", "simulate_static", "simulate_weather",
           "vegetation_cover"]

LAPSE_RATE = 6.5e-3             #: K m-1 (ICAO standard atmosphere)
T_SEA_0, T_SEA_LAT = 303.0, 0.35    #: mean sea-level air temperature T0 - a|lat|, K (about 289 K at 40 N)
T_AMP_0, T_AMP_LAT = 2.0, 0.28      #: seasonal amplitude of air temperature, K (13 K at 40 N, continental)
T_PEAK_DOY = 200                #: warmest day of year (mid-July, ~30 d after the solstice)
T_ANOM_RHO, T_ANOM_SD, T_ANOM_KM = 0.7, 3.0, 500.0   #: AR(1) synoptic temperature anomalies (K, km)
DTR_DRY, DTR_AI_SLOPE = 16.0, 4.0   #: clear-sky diurnal air-temperature range 16 - 4 min(AI, 1.5), K
P_PEAK_DOY, P_SEAS_AMP = 170, 0.6   #: precipitation seasonality (June peak, as the US Great Plains)
F_WET_0, F_WET_AI = 0.12, 0.12      #: wet-day frequency 0.12 + 0.12 min(AI, 2) (Richardson & Wright 1984)
OCC_PERSISTENCE = 0.35          #: r = p11 - p01, lag-1 persistence of wet days (Wilks 1999: 0.2-0.4)
GAMMA_SHAPE = 0.75              #: gamma shape of wet-day amounts (Wilks 1999: 0.6-0.9)
AMOUNT_KM, CLOUD_KM = 30.0, 40.0  #: correlation lengths of daily rain amounts and clouds, km
CLOUD_FRAC_CLOUDY, CLOUD_FRAC_CLEAR = 0.8, 0.2
F_VEG_MIN = 0.05                #: bare-season vegetation cover


def smooth_fields(rng: np.random.Generator, n: int, x_km: np.ndarray, y_km: np.ndarray, length_km: float,
                  n_modes: int = 64, dtype=np.float32) -> np.ndarray:
    """``n`` independent smooth Gaussian random fields of unit variance at points ``(x_km, y_km)``.

    Random Fourier features (Rahimi & Recht 2007): ``g(x) = K^-1/2 sum_k a_k cos(w_k.x) + b_k sin(w_k.x)``
    with ``a, b ~ N(0, 1)`` and wave vectors ``w_k ~ N(0, I / length_km^2)``, so that
    ``cov(g(x), g(x')) ~ exp(-|x - x'|^2 / (2 length_km^2))`` and ``var g = 1`` exactly at every point.

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
        Number of fields (e.g. days).
    x_km, y_km : numpy.ndarray
        Point coordinates, km (any shape, the same for both).
    length_km : float
        Correlation length, km.
    n_modes : int
        Number of Fourier modes K.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,) + x_km.shape``, dimensionless.
    """
    shape = np.shape(x_km)
    w = rng.normal(0.0, 1.0 / length_km, size=(n_modes, 2))
    phase = w[:, :1] * np.ravel(x_km)[None, :] + w[:, 1:] * np.ravel(y_km)[None, :]
    basis = np.concatenate([np.cos(phase), np.sin(phase)]) / np.sqrt(n_modes)     # (2K, npts)
    coef = rng.standard_normal((n, 2 * n_modes))
    return (coef @ basis).astype(dtype).reshape((n,) + shape)

def extraterrestrial_radiation(doy, lat_deg) -> np.ndarray:
    """Daily extraterrestrial radiation Ra, MJ m-2 d-1 (FAO-56, Allen et al. 1998, eqs. 21-25).

    Parameters
    ----------
    doy : array-like
        Day of year, 1-366.
    lat_deg : array-like
        Latitude, degrees north (broadcast against ``doy``).
    """
    doy = np.asarray(doy, float)
    phi = np.deg2rad(np.asarray(lat_deg, float))
    dr = 1 + 0.033 * np.cos(2 * np.pi * doy / 365)
    delta = 0.409 * np.sin(2 * np.pi * doy / 365 - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1, 1))
    return (24 * 60 / np.pi * 0.0820 * dr
            * (ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws)))


def cos_sza(doy, lat_deg, hour) -> np.ndarray:
    """Cosine of the solar zenith angle at local solar time ``hour`` (FAO-56 declination), dimensionless.

    Parameters
    ----------
    doy : array-like
        Day of year, 1-366.
    lat_deg : array-like
        Latitude, degrees north.
    hour : array-like
        Local solar time, h (12 = solar noon).
    """
    phi = np.deg2rad(np.asarray(lat_deg, float))
    delta = 0.409 * np.sin(2 * np.pi * np.asarray(doy, float) / 365 - 1.39)
    return (np.sin(phi) * np.sin(delta)
            + np.cos(phi) * np.cos(delta) * np.cos(np.deg2rad(15.0 * (np.asarray(hour, float) - 12.0))))


def _hargreaves(ra, t_air_k, dtr) -> np.ndarray:
    """Hargreaves & Samani (1985) reference ET, mm d-1, from Ra (MJ m-2 d-1), T (K) and DTR (K)."""
    return np.maximum(0.0023 * 0.408 * ra * (t_air_k - 273.15 + 17.8) * np.sqrt(np.maximum(dtr, 0)), 0.0)


def _ema(x: np.ndarray, days: float) -> np.ndarray:
    """Exponential moving average along axis 0 with e-folding ``days``, started at ``x[0]``."""
    a = 1.0 - np.exp(-1.0 / days)
    zi = (1 - a) * x[:1]
    return lfilter([a], [1.0, -(1.0 - a)], x, axis=0, zi=zi)[0]


def simulate_static(cfg, grids: TwinGrids | None = None) -> dict[str, np.ndarray]:
    """Terrain, texture and climate fields of the simulation domain.

    Returns
    -------
    dict
        Fine grids (``twin.static_resolution``) over ``grids.sim``: ``dem_fine`` (m, float32),
        ``sand_fine``/``clay_fine``/``silt_fine`` (g kg-1, int16, summing to 1000). 0.05 deg fields over
        ``grids.sim`` (block means of the fine grids, as a reader aggregates them): ``elevation`` (m),
        ``sand``/``clay``/``silt`` (fractions), ``aridity`` (P/PET, dimensionless), ``lat``/``lon`` (2-D,
        degrees), ``x_km``/``y_km``, and the :func:`hydraulic_limits` fields.
    """
    grids = grids or twin_grids(cfg)
    S, tw = grids.sim, cfg.twin
    f = 0.05 / tw.static_resolution
    if abs(f - round(f)) > 1e-6 or round(f) < 1:
        raise ValueError(f"twin.static_resolution {tw.static_resolution} must divide 0.05 deg")
    f = round(f)
    rng = component_rng(cfg.run.seed, "static")
    res_f = RES / f
    lat_f = S.north - (np.arange(S.nrows * f) + 0.5) * res_f
    lon_f = S.west + (np.arange(S.ncols * f) + 0.5) * res_f
    LATf, LONf = np.meshgrid(lat_f, lon_f, indexing="ij")
    lat0, lon0 = 0.5 * (S.north + S.south), 0.5 * (S.west + S.east)
    xf, yf = km_coords(LATf, LONf, lat0, lon0)

    g = smooth_fields(rng, 1, xf, yf, 40.0, dtype=np.float64)[0]
    ridge_g = smooth_fields(rng, 1, xf, yf, 25.0, dtype=np.float64)[0]
    ridge = (np.exp(-2 * ridge_g**2) - 1 / np.sqrt(5)) / np.sqrt(1 / 3 - 1 / 5)   # standardised ridges
    h = 0.6 * g + 0.8 * ridge                                                      # unit variance
    # lognormal heights: positive, mean = mean_elevation and sd = relief exactly, sharp peaks, flat valleys
    s_ln = np.sqrt(np.log1p((tw.relief / tw.mean_elevation) ** 2))
    dem = (tw.mean_elevation * np.exp(s_ln * h - 0.5 * s_ln**2)).astype(np.float32)

    out = grids.out
    ai_w, ai_e = (float(v) for v in tw.aridity_west_east)
    dryness = np.clip((out.east - LONf) / (out.east - out.west), 0, 1)             # 1 at the western edge
    g_s, g_c = smooth_fields(rng, 2, xf, yf, 20.0, dtype=np.float64)
    logit_sand = 0.35 * h + 0.5 * g_s + 0.6 * dryness
    logit_clay = np.log(0.5) - 0.3 * h + 0.5 * g_c
    e = np.exp(np.stack([logit_sand, logit_clay, np.zeros_like(h)]))
    frac = e / e.sum(0)
    sand_gkg = np.round(frac[0] * 1000).astype(np.int16)
    clay_gkg = np.round(frac[1] * 1000).astype(np.int16)
    silt_gkg = (1000 - sand_gkg - clay_gkg).astype(np.int16)

    st: dict[str, np.ndarray] = {"dem_fine": dem, "sand_fine": sand_gkg, "clay_fine": clay_gkg,
                                 "silt_fine": silt_gkg, "fine_factor": np.array(f)}
    st["elevation"] = block_mean(dem.astype(np.float64), f)
    for k in ("sand", "clay", "silt"):
        st[k] = block_mean(st[f"{k}_fine"].astype(np.float64), f) / 1000.0
    LAT, LON = np.meshgrid(S.lat, S.lon, indexing="ij")
    st["lat"], st["lon"] = LAT, LON
    st["x_km"], st["y_km"] = km_coords(LAT, LON, lat0, lon0)
    frac_we = (LON - out.west) / (out.east - out.west)
    g_ai = smooth_fields(rng, 1, st["x_km"], st["y_km"], 50.0, dtype=np.float64)[0]
    st["aridity"] = np.maximum((ai_w + (ai_e - ai_w) * frac_we) * np.exp(0.1 * g_ai), 0.05)
    st.update(hydraulic_limits(st["sand"], st["clay"]))
    return st


def simulate_weather(cfg, static: dict, dates: pd.DatetimeIndex, progress: bool = False) -> dict:
    """Daily weather over the simulation domain (equations in :mod:`glass_sm.twin`).

    Parameters
    ----------
    cfg : glass_sm.config.Config
    static : dict
        Output of :func:`simulate_static`.
    dates : pandas.DatetimeIndex
        Days to simulate.

    Returns
    -------
    dict of numpy.ndarray, each ``(time, lat, lon)``
        ``precip`` (mm d-1), ``wet`` (bool), ``t_air`` (K, daily mean), ``dtr`` (K), ``pet`` (mm d-1),
        ``rs`` (MJ m-2 d-1), ``cloudy`` (bool), plus ``pet_clim_mean`` and ``precip_clim_mean`` (lat, lon; mm
        d-1).
    """
    tw = cfg.twin
    rng = component_rng(cfg.run.seed, "weather")
    T = len(dates)
    doy = dates.day_of_year.values.astype(float)[:, None, None]
    lat, elev, ai = static["lat"], static["elevation"], static["aridity"]
    x, y = static["x_km"], static["y_km"]

    ra = extraterrestrial_radiation(doy, lat[None])
    rs_clear = (0.75 + 2e-5 * elev) * ra
    t_mean = T_SEA_0 - T_SEA_LAT * np.abs(lat) - LAPSE_RATE * elev
    t_amp = T_AMP_0 + T_AMP_LAT * np.abs(lat)
    t_clim = t_mean + t_amp * np.cos(2 * np.pi * (doy - T_PEAK_DOY) / 365.25)
    innov = smooth_fields(rng, T, x, y, T_ANOM_KM) * (T_ANOM_SD * np.sqrt(1 - T_ANOM_RHO**2))
    t_air = t_clim + lfilter([1.0], [1.0, -T_ANOM_RHO], innov, axis=0).astype(np.float32)

    dtr_clear = DTR_DRY - DTR_AI_SLOPE * np.minimum(ai, 1.5)
    c_mean = tw.cloud_base * CLOUD_FRAC_CLOUDY + (1 - tw.cloud_base) * CLOUD_FRAC_CLEAR
    pet_clim_mean = _hargreaves(ra, t_clim, dtr_clear * (1 - 0.6 * c_mean)).mean(0)
    p_mean = ai * pet_clim_mean
    sp = np.cos(2 * np.pi * (doy - P_PEAK_DOY) / 365.25)
    p_clim = p_mean * (1 + P_SEAS_AMP * sp)
    f_wet = np.clip((F_WET_0 + F_WET_AI * np.minimum(ai, 2.0)) * (1 + 0.5 * P_SEAS_AMP * sp), 0.02, 0.8)
    p01 = f_wet * (1 - OCC_PERSISTENCE)
    p11 = p01 + OCC_PERSISTENCE
    u_occ = ndtr(smooth_fields(rng, T, x, y, tw.storm_length_km))
    wet = np.empty(u_occ.shape, bool)
    prev = u_occ[0] < f_wet[0]
    for t in tqdm(range(T), desc="weather", disable=not progress, mininterval=1.0, leave=False):
        prev = u_occ[t] < np.where(prev, p11[t], p01[t])
        wet[t] = prev
    # gamma quantiles through a table in normal-score space (exact to interpolation error, fast)
    zgrid = np.linspace(-7, 7, 4001)
    qgrid = gammaincinv(GAMMA_SHAPE, ndtr(zgrid))
    z_amt = smooth_fields(rng, T, x, y, AMOUNT_KM)
    mu = np.broadcast_to(p_clim / f_wet, wet.shape)
    precip = np.zeros(wet.shape, np.float32)
    precip[wet] = np.interp(z_amt[wet], zgrid, qgrid) * mu[wet] / GAMMA_SHAPE

    u_cld = ndtr(smooth_fields(rng, T, x, y, CLOUD_KM))
    cloudy = u_cld < np.where(wet, tw.cloud_wet, tw.cloud_base)
    c = np.where(cloudy, CLOUD_FRAC_CLOUDY, CLOUD_FRAC_CLEAR)
    rs = (rs_clear * (1 - 0.75 * c**3.4)).astype(np.float32)
    dtr = (dtr_clear * (1 - 0.6 * c)).astype(np.float32)
    pet = _hargreaves(ra, t_air, dtr).astype(np.float32)
    return {"precip": precip, "wet": wet, "t_air": t_air.astype(np.float32), "dtr": dtr, "pet": pet,
            "rs": rs, "cloudy": cloudy, "pet_clim_mean": pet_clim_mean,
            "precip_clim_mean": p_mean}


def vegetation_cover(static: dict, w: dict) -> np.ndarray:
    """Fractional vegetation cover, dimensionless, lagging rain (equations in :mod:`glass_sm.twin`).

    Parameters
    ----------
    static : dict
        :func:`simulate_static` (``aridity``, dimensionless).
    w : dict
        :func:`simulate_weather` (``precip``, ``pet`` mm d-1 and ``t_air`` K, ``(time, lat, lon)``).

    Returns
    -------
    numpy.ndarray
        ``(time, lat, lon)`` float32, between ``F_VEG_MIN`` and 0.9.
    """
    m = _ema(w["precip"].astype(np.float64), 30) / np.maximum(_ema(w["pet"].astype(np.float64), 30), 0.5)
    warm = np.clip((_ema(w["t_air"].astype(np.float64), 10) - 278.15) / 10.0, 0, 1)
    G = _ema(np.clip(m, 0, 1) * warm, 20)
    f_max = np.clip(0.35 + 0.4 * static["aridity"], 0.35, 0.9)
    return (F_VEG_MIN + (f_max - F_VEG_MIN) * G).astype(np.float32)
