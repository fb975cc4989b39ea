"""The twin's climate: random fields on the sphere, terrain and texture, a weather generator, vegetation phenology.

The world is a function of the seed, the position and the day, never of the run's domain: smooth Gaussian random
fields on the sphere (:func:`sphere_fields`, indexed by days since 1970-01-01 for daily fields, :func:`day_index`)
make terrain, texture, storms and clouds spatially coherent; :func:`simulate_static` samples terrain, texture,
the aridity index and the seasonal layout (``twin.climate``: a west-east ``gradient`` tile, or the ``earth``
layout of :mod:`glass_sm.twin.earth`) on the run's simulation grid; :func:`simulate_weather` the daily
precipitation (Richardson 1981; Wilks 1999), air temperature, radiation (FAO-56) and PET (Hargreaves & Samani
1985); :func:`vegetation_cover` the vegetation lagging rain. Equations and references: :mod:`glass_sm.twin`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from scipy.special import gammaincinv, ndtr
from tqdm import tqdm

from glass_sm.grid import block_mean
from glass_sm.twin.grids import EARTH_RADIUS_KM, TwinGrids, component_rng, twin_grids, wrap_lon
from glass_sm.twin.soil import hydraulic_limits

__all__ = ["sphere_fields", "day_index", "extraterrestrial_radiation", "cos_sza", "simulate_static",
           "simulate_weather", "vegetation_cover"]

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
EARTH_RELIEF_CV = 0.25          #: earth: local relief sd / large-scale height (Montgomery & Brandon 2002; module doc)
AI_ARID, AI_HUMID = 0.2, 0.65   #: UNEP aridity-class limits (arid below, humid above; Middleton & Thomas 1997)
EARTH_SAND_DRYNESS = 1.25
"""earth: sand-logit increase of an arid cell (dryness 1): its median texture is then 70 % sand, 10 % clay, 20 %
silt, the sandy loam to loamy sand of the Sahara, Arabian and Australian deserts in SoilGrids (Hengl et al. 2017,
PLoS ONE 12, e0169748), against 40/20/40 % (loam) in humid climates. The ``gradient`` tile keeps 0.6 (its dry
edge is semi-arid, AI 0.25)."""
LAYOUT_KEYS = ("p_peak_doy", "p_seas_amp", "t_amp", "t_peak_doy", "t_sea_level")   #: static seasonal layout
EPOCH = pd.Timestamp("1970-01-01")   #: day 0 of the daily random fields (:func:`day_index`)


SPHERE_BLOCK_POINTS = 32768     #: points per block of the basis in :func:`sphere_fields` (bounds its memory)


def _sphere_xyz(lat, lon) -> np.ndarray:
    """Earth-centred Cartesian coordinates (km), shape ``(3, npts)``, of flattened ``lat``/``lon`` (degrees).

    The longitude is wrapped to [-180, 180) and both coordinates are rounded to 1e-9 deg (0.1 mm) first, so that
    180 and -180 (or 190.05 and -169.95), or a cell centre computed by two grids that differ in the last bit,
    give the same bits.
    """
    lat_r = np.deg2rad(np.round(np.ravel(np.asarray(lat, np.float64)), 9))
    lon_w = np.round((np.ravel(np.asarray(lon, np.float64)) + 180.0) % 360.0 - 180.0, 9)
    lon_r = np.deg2rad(lon_w)
    c = np.cos(lat_r)
    return EARTH_RADIUS_KM * np.stack([c * np.cos(lon_r), c * np.sin(lon_r), np.sin(lat_r)])


def sphere_fields(seed: int, name: str, index, lat, lon, length_km: float, n_modes: int = 64,
                  dtype=np.float32) -> np.ndarray:
    r"""Smooth unit-variance Gaussian random fields on the sphere, shape ``(len(index),) + lat.shape``.

    Random Fourier features (Rahimi & Recht 2007) in 3-D Earth-centred coordinates :math:`\mathbf{x}` (km,
    sphere of radius ``EARTH_RADIUS_KM``)::

        g_i(x) = K^-1/2 sum_k a_ik cos(w_k . x) + b_ik sin(w_k . x)

    with wave vectors ``w_k ~ N(0, I3 / length_km^2)`` drawn from ``component_rng(seed, name)`` and the
    coefficients ``a_ik, b_ik ~ N(0, 1)`` of field *i* from ``component_rng(seed, f"{name}#{index[i]}")``. So
    ``var g = 1`` exactly in expectation over the coefficients at every point, ``cov(g(x), g(x')) =
    E_w cos(w.(x - x')) = exp(-d^2 / (2 length_km^2))`` with *d* the chord distance (equal to the great-circle
    distance to 0.5 % up to 1100 km), and field *i* depends only on ``(seed, name, index[i], position)``: never
    on the other indices, on the points asked for or on the run's domain. A sub-domain, another resolution or a
    sub-period samples the same world.

    Parameters
    ----------
    seed : int
        The run's seed (``run.seed``).
    name : str
        Component name (one set of wave vectors per name: one correlation structure).
    index : array-like of int
        Absolute index of each field: days since 1970-01-01 for daily fields, 0..k-1 for static ones.
    lat, lon : array-like
        Latitude and longitude of the points, degrees (broadcast together; longitude wraps: 180 == -180).
    length_km : float
        Correlation length, km.
    n_modes : int
        Number of Fourier modes K (64: a field is then a sum of 64 plane waves; the marginal is Gaussian to
        the central-limit accuracy of 128 terms).
    dtype : numpy dtype
        Output type. float64 (the few static fields): the sum over modes runs in a fixed order, so the values
        are bit-identical whatever points or indices are asked for together. Otherwise (the many daily
        fields): one float64 BLAS product, rounded to ``dtype``; the BLAS may sum in another order for another
        shape (differences ~1e-16), which survives the rounding to float32 with probability ~1e-9 per value.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(index),) + broadcast(lat, lon).shape``, dimensionless.
    """
    lat, lon = np.broadcast_arrays(np.asarray(lat, np.float64), np.asarray(lon, np.float64))
    idx = np.atleast_1d(np.asarray(index)).astype(np.int64)
    if idx.ndim != 1:
        raise ValueError(f"sphere_fields({name!r}): index must be one-dimensional, got shape {idx.shape}")
    if not length_km > 0:
        raise ValueError(f"sphere_fields({name!r}): length_km must be positive, got {length_km}")
    w = component_rng(seed, name).normal(0.0, 1.0 / length_km, size=(n_modes, 3))
    coef = np.empty((len(idx), 2 * n_modes))
    for i, j in enumerate(idx):
        coef[i] = component_rng(seed, f"{name}#{int(j)}").standard_normal(2 * n_modes)
    xyz = _sphere_xyz(lat, lon)
    npts = xyz.shape[1]
    exact = np.dtype(dtype) == np.float64
    out = np.empty((len(idx), npts), dtype)
    for p0 in range(0, npts, SPHERE_BLOCK_POINTS):
        phase = w @ xyz[:, p0:p0 + SPHERE_BLOCK_POINTS]                               # (K, nb), rad
        basis = np.concatenate([np.cos(phase), np.sin(phase)]) / np.sqrt(n_modes)     # (2K, nb)
        if exact:                   # fixed summation order: bit-identical whatever the points asked for
            acc = np.zeros((len(idx), basis.shape[1]))
            for k in range(2 * n_modes):
                acc += coef[:, k:k + 1] * basis[k]
            out[:, p0:p0 + SPHERE_BLOCK_POINTS] = acc
        else:
            out[:, p0:p0 + SPHERE_BLOCK_POINTS] = coef @ basis
    return out.reshape((len(idx),) + lat.shape)


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


def day_index(dates) -> np.ndarray:
    """Days since 1970-01-01 of ``dates`` (int64): the absolute index of the daily :func:`sphere_fields`."""
    return ((pd.DatetimeIndex(dates) - EPOCH) // pd.Timedelta(days=1)).to_numpy(np.int64)


def _earth():
    """:mod:`glass_sm.twin.earth` (imported on use: only ``twin.climate: earth`` needs Natural Earth)."""
    from glass_sm.twin import earth
    return earth


def _layout(lat, lon, earth_mode: bool) -> dict[str, np.ndarray]:
    """The climate layout at points ``lat``/``lon`` (degrees): aridity and the seasonal cycles (see module doc).

    ``gradient``: the fixed summer-peaked seasonality of a mid-latitude continental interior (aridity left to the
    caller, NaN here). ``earth``: :func:`glass_sm.twin.earth.climate_layout` with the large-scale elevation
    ``elevation_m`` (also returned, m); values it leaves undefined (NaN) fall back to the gradient ones.
    """
    lat = np.asarray(lat, np.float64)
    base = {"aridity": np.full(lat.shape, np.nan), "p_peak_doy": np.full(lat.shape, float(P_PEAK_DOY)),
            "p_seas_amp": np.full(lat.shape, P_SEAS_AMP), "t_amp": T_AMP_0 + T_AMP_LAT * np.abs(lat),
            "t_peak_doy": np.full(lat.shape, float(T_PEAK_DOY)), "t_sea_level": T_SEA_0 - T_SEA_LAT * np.abs(lat),
            "elevation_m": np.zeros(lat.shape)}
    if not earth_mode:
        return base
    e = _earth()
    lat1, lon1 = np.ravel(lat), np.ravel(np.broadcast_to(np.asarray(lon, np.float64), lat.shape))
    zb = _like(e.elevation_m(lat1, lon1), lat, "elevation_m")
    lay = e.climate_layout(lat1, lon1, elevation_m=np.ravel(zb))
    out = {"elevation_m": np.where(np.isfinite(zb), zb, 0.0)}
    for k in ("aridity", "p_peak_doy", "p_seas_amp", "t_amp", "t_peak_doy", "t_sea_level"):
        v = _like(lay[k], lat, f"climate_layout()['{k}']")
        fill = 1.0 if k == "aridity" else base[k]
        out[k] = np.where(np.isfinite(v), v, fill)
    return out


def _like(v, lat: np.ndarray, what: str, dtype=np.float64) -> np.ndarray:
    """``v`` (one value per point of ``lat``, any shape holding ``lat.size`` values) as an array shaped like ``lat``."""
    v = np.asarray(v, dtype)
    if v.size == lat.size:
        return v.reshape(lat.shape)
    if v.size == 1:
        return np.full(lat.shape, v.item(), dtype)
    raise ValueError(f"glass_sm.twin.earth.{what}: {v.size} values for {lat.size} points")


def _dryness_from_aridity(ai) -> np.ndarray:
    """Dryness of a climate for the texture, 0 (humid, AI >= 0.65) .. 1 (arid, AI <= 0.2), log-linear between.

    The thresholds are the UNEP aridity classes (Middleton & Thomas 1997): below 0.2 arid and hyper-arid, above
    0.65 humid. Arid soils are coarser (little chemical weathering to clay, wind sorting: Aridisols and
    Entisols); the dryness plays the role of the west-east position of the ``gradient`` layout.
    """
    return np.clip(np.log(AI_HUMID / np.maximum(ai, 1e-6)) / np.log(AI_HUMID / AI_ARID), 0.0, 1.0)


def simulate_static(cfg, grids: TwinGrids | None = None) -> dict[str, np.ndarray]:
    """Terrain, texture and climate fields of the simulation domain (equations in :mod:`glass_sm.twin`).

    Every random field is a :func:`sphere_fields` of position (components ``static.terrain``,
    ``static.ridges``, ``static.texture``, ``static.aridity``), so another domain or resolution of the same
    seed samples the same world.

    Returns
    -------
    dict
        Fine grids (``twin.static_resolution``) over ``grids.sim``: ``dem_fine`` (m, float32),
        ``sand_fine``/``clay_fine``/``silt_fine`` (g kg-1, int16, summing to 1000), ``fine_factor`` (fine cells
        per cell along an axis). Cell fields (the run's resolution r) over ``grids.sim`` (block means of the
        fine grids, as a reader aggregates them): ``elevation`` (m), ``sand``/``clay``/``silt`` (fractions),
        ``aridity`` (P/PET, dimensionless), ``lat``/``lon`` (2-D cell centres, degrees; longitude wrapped to
        [-180, 180)), ``land`` and ``ice`` (bool; all land, no ice in ``twin.climate: gradient``), the
        seasonal layout ``p_peak_doy`` (day of year), ``p_seas_amp`` (dimensionless), ``t_amp`` (K),
        ``t_peak_doy`` (day of year), ``t_sea_level`` (K), and the :func:`hydraulic_limits` fields.
    """
    grids = grids or twin_grids(cfg)
    S, tw, seed = grids.sim, cfg.twin, cfg.run.seed
    earth_mode = tw.climate == "earth"
    r = float(S.res)
    f = r / tw.static_resolution
    if abs(f - round(f)) > 1e-6 or round(f) < 1:
        raise ValueError(f"twin.static_resolution {tw.static_resolution} must divide domain.resolution {r} deg")
    f = round(f)
    res_f = r / f
    lat_f = np.round(S.north - (np.arange(S.nrows * f) + 0.5) * res_f, 9)
    lon_raw = np.round(S.west + (np.arange(S.ncols * f) + 0.5) * res_f, 9)
    LATf, LONf = np.meshgrid(lat_f, wrap_lon(lon_raw), indexing="ij")

    g = sphere_fields(seed, "static.terrain", [0], LATf, LONf, 40.0, dtype=np.float64)[0]
    ridge_g = sphere_fields(seed, "static.ridges", [0], LATf, LONf, 25.0, dtype=np.float64)[0]
    ridge = (np.exp(-2 * ridge_g**2) - 1 / np.sqrt(5)) / np.sqrt(1 / 3 - 1 / 5)   # standardised ridges
    h = 0.6 * g + 0.8 * ridge                                                      # unit variance
    lay_f = _layout(LATf, LONf, earth_mode)
    if earth_mode:      # lognormal relief about the large-scale terrain, sd growing with its height
        s_ln = np.sqrt(np.log1p(EARTH_RELIEF_CV**2))
        z_mean = lay_f["elevation_m"]
    else:               # lognormal heights: mean = mean_elevation and sd = relief exactly
        s_ln = np.sqrt(np.log1p((tw.relief / tw.mean_elevation) ** 2))
        z_mean = tw.mean_elevation
    dem = (z_mean * np.exp(s_ln * h - 0.5 * s_ln**2)).astype(np.float32)

    out = grids.out
    g_ai = sphere_fields(seed, "static.aridity", [0], LATf, LONf, 50.0, dtype=np.float64)[0]
    if earth_mode:
        ai_f = lay_f["aridity"] * np.exp(0.1 * g_ai)
        dryness = _dryness_from_aridity(ai_f)
    else:
        ai_w, ai_e = (float(v) for v in tw.aridity_west_east)
        LONr = lon_raw[None, :]
        ai_f = (ai_w + (ai_e - ai_w) * (LONr - out.west) / (out.east - out.west)) * np.exp(0.1 * g_ai)
        dryness = np.broadcast_to(np.clip((out.east - LONr) / (out.east - out.west), 0, 1), LATf.shape)
    g_s, g_c = sphere_fields(seed, "static.texture", [0, 1], LATf, LONf, 20.0, dtype=np.float64)
    logit_sand = 0.35 * h + 0.5 * g_s + (EARTH_SAND_DRYNESS if earth_mode else 0.6) * dryness
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
    st["aridity"] = np.maximum(block_mean(ai_f, f), 0.05)
    LAT, LON = np.meshgrid(grids.sim_lat, grids.sim_lon, indexing="ij")
    st["lat"], st["lon"] = LAT, LON
    lay = _layout(LAT, LON, earth_mode)
    for k in LAYOUT_KEYS:
        st[k] = lay[k]
    if earth_mode:
        e = _earth()
        st["land"] = _like(e.land_mask(LAT.ravel(), LON.ravel(), r, include_ice=True), LAT, "land_mask", bool)
        st["ice"] = _like(e.ice_mask(LAT.ravel(), LON.ravel()), LAT, "ice_mask", bool) & st["land"]
    else:
        st["land"], st["ice"] = np.ones(LAT.shape, bool), np.zeros(LAT.shape, bool)
    st.update(hydraulic_limits(st["sand"], st["clay"]))
    return st


def simulate_weather(cfg, static: dict, dates: pd.DatetimeIndex, progress: bool = False) -> dict:
    """Daily weather over the simulation domain (equations in :mod:`glass_sm.twin`).

    The daily random fields are :func:`sphere_fields` of position and day (:func:`day_index`; components
    ``weather.t_anomaly``, ``weather.occurrence``, ``weather.amount``, ``weather.cloud``), and the climatology
    depends on the day of year only: a sub-period or sub-domain of the same seed sees the same weather once the
    memory of the wet-day Markov chain (days) and of the AR(1) temperature anomalies (e-folding 2.8 days) has
    forgotten the first day.

    Parameters
    ----------
    cfg : glass_sm.config.Config
    static : dict
        Output of :func:`simulate_static` (``lat``, ``lon``, ``elevation``, ``aridity`` and the seasonal layout).
    dates : pandas.DatetimeIndex
        Days to simulate (consecutive).

    Returns
    -------
    dict of numpy.ndarray, each ``(time, lat, lon)``
        ``precip`` (mm d-1), ``wet`` (bool), ``t_air`` (K, daily mean), ``dtr`` (K), ``pet`` (mm d-1),
        ``rs`` (MJ m-2 d-1), ``cloudy`` (bool), plus ``pet_clim_mean`` and ``precip_clim_mean`` (lat, lon; mm
        d-1, means over the climatological year).
    """
    tw, seed = cfg.twin, cfg.run.seed
    days = day_index(dates)
    lat, lon, elev, ai = static["lat"], static["lon"], static["elevation"], static["aridity"]
    lay = {k: static[k] if k in static else v for k, v in _layout(lat, lon, False).items()}

    # climatology per day of year 1..366 (tables indexed by the day of year: the (time, lat, lon) arrays are the
    # random fields and their results only)
    doy_tab = np.arange(1, 367, dtype=float)[:, None, None]
    i_doy = np.asarray(dates.day_of_year.values) - 1
    ra_tab = extraterrestrial_radiation(doy_tab, lat[None])                                  # MJ m-2 d-1
    t_clim_tab = (lay["t_sea_level"] - LAPSE_RATE * elev) \
        + lay["t_amp"] * np.cos(2 * np.pi * (doy_tab - lay["t_peak_doy"]) / 365.25)         # K
    dtr_clear = DTR_DRY - DTR_AI_SLOPE * np.minimum(ai, 1.5)
    c_mean = tw.cloud_base * CLOUD_FRAC_CLOUDY + (1 - tw.cloud_base) * CLOUD_FRAC_CLEAR
    # the climatological year (days 1..365): a cell's mean does not depend on the period simulated
    pet_clim_mean = _hargreaves(ra_tab[:365], t_clim_tab[:365], dtr_clear * (1 - 0.6 * c_mean)).mean(0)
    p_mean = ai * pet_clim_mean
    amp = lay["p_seas_amp"]
    sp_tab = np.cos(2 * np.pi * (doy_tab - lay["p_peak_doy"]) / 365.25)
    f_wet_tab = np.clip((F_WET_0 + F_WET_AI * np.minimum(ai, 2.0)) * (1 + 0.5 * amp * sp_tab), 0.02, 0.8)
    mu_tab = (p_mean * (1 + amp * sp_tab) / f_wet_tab).astype(np.float32)        # mean wet-day amount, mm d-1
    p01_tab = f_wet_tab * (1 - OCC_PERSISTENCE)
    p11_tab = p01_tab + OCC_PERSISTENCE

    innov = sphere_fields(seed, "weather.t_anomaly", days, lat, lon, T_ANOM_KM) \
        * np.float32(T_ANOM_SD * np.sqrt(1 - T_ANOM_RHO**2))
    t_air = lfilter([1.0], [1.0, -T_ANOM_RHO], innov, axis=0).astype(np.float32)
    del innov
    t_air += t_clim_tab.astype(np.float32)[i_doy]

    u_occ = ndtr(sphere_fields(seed, "weather.occurrence", days, lat, lon, tw.storm_length_km))
    wet = np.empty(u_occ.shape, bool)
    prev = u_occ[0] < f_wet_tab[i_doy[0]]
    for t in tqdm(range(len(days)), desc="weather", disable=not progress, mininterval=1.0, leave=False):
        prev = u_occ[t] < np.where(prev, p11_tab[i_doy[t]], p01_tab[i_doy[t]])
        wet[t] = prev
    del u_occ
    # gamma quantiles through a table in normal-score space (exact to interpolation error, fast)
    zgrid = np.linspace(-7, 7, 4001)
    qgrid = gammaincinv(GAMMA_SHAPE, ndtr(zgrid))
    z_amt = sphere_fields(seed, "weather.amount", days, lat, lon, AMOUNT_KM)
    precip = np.zeros(wet.shape, np.float32)
    precip[wet] = np.interp(z_amt[wet], zgrid, qgrid) * mu_tab[i_doy][wet] / GAMMA_SHAPE
    del z_amt

    u_cld = ndtr(sphere_fields(seed, "weather.cloud", days, lat, lon, CLOUD_KM))
    cloudy = u_cld < np.where(wet, tw.cloud_wet, tw.cloud_base)
    del u_cld
    c = np.where(cloudy, np.float32(CLOUD_FRAC_CLOUDY), np.float32(CLOUD_FRAC_CLEAR))
    ra = ra_tab.astype(np.float32)[i_doy]
    rs = ((0.75 + 2e-5 * elev).astype(np.float32) * ra * (1 - 0.75 * c**3.4)).astype(np.float32)
    dtr = (dtr_clear.astype(np.float32) * (1 - 0.6 * c)).astype(np.float32)
    pet = _hargreaves(ra, t_air, dtr).astype(np.float32)
    return {"precip": precip, "wet": wet, "t_air": t_air, "dtr": dtr, "pet": pet,
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
