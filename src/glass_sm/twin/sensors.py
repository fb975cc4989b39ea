"""The twin's sensors: what each product would observe of the simulated world.

* AVHRR-like albedo and LST (:func:`simulate_avhrr`): clouds, QC, the NOAA platform steps and the orbital drift
  of :mod:`glass_sm.platforms`; the albedo's 8-day composites (:func:`albedo_composites`);
* ERA5-Land-like soil moisture (:func:`era5_soil_moisture`, :func:`simulate_era5`): the bucket rerun with
  perturbed rain and a deeper, wetter layer, averaged to the points at spacing 2r (0.1 deg for r = 0.05);
* GLASS-MODIS-like labels (:func:`modis_grid`, :func:`simulate_glass_modis`): the retrieval of
  :mod:`glass_sm.twin.labels` per sinusoidal pixel (or, the ablation, truth + noise);
* ESA-CCI-like soil moisture (:func:`simulate_cci`) at ``twin.cci_resolution``;
* ISMN-like station series (:func:`station_periods`, :func:`simulate_stations`; in ``twin.climate: earth`` placed
  like the real network by :func:`glass_sm.twin.stations.place_stations`).

Every grid is at the run's resolution r (``domain.resolution``, :class:`glass_sm.twin.grids.TwinGrids`). Cells
without soil (sea, and the permanent ice of :func:`soil_mask`) are missing in every product, as over the real
products' sea and ice. Values are physical (dimensionless albedo, K, m3 m-3) with NaN where nothing is retrieved;
the file encodings (scale factors, fill values, formats) are :mod:`glass_sm.twin.writers`'. Equations:
:mod:`glass_sm.twin`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
from rasterio.transform import from_origin
from scipy.signal import lfilter

from glass_sm.grid import Domain, block_mean
from glass_sm.platforms import NOAA_PLATFORMS, equator_crossing_time, platform_index
from glass_sm.twin.climate import cos_sza, day_index, sphere_fields
from glass_sm.twin.grids import component_rng
from glass_sm.twin.soil import run_bucket

__all__ = ["soil_mask", "albedo_model", "lst_model", "simulate_avhrr", "albedo_composites", "composite_window", "ALBEDO_BANDS",
           "era5_shift", "era5_soil_moisture", "simulate_era5",
           "modis_grid", "first_label_day", "simulate_glass_modis", "glass_modis_pixels", "glass_modis_draws",
           "glass_modis_image", "simulate_cci", "station_periods",
           "StationSeries", "network_name", "station_sites", "simulate_stations"]

# ---- AVHRR-like albedo and LST
ALBEDO_VEG_SW, ALBEDO_VEG_VIS = 0.18, 0.05   #: green grass/crop canopy albedo (Oke 1987: 0.16-0.26 SW)
ALBEDO_WET_RATIO = 0.5          #: wet/dry soil albedo (Idso et al. 1975: 0.14/0.31)
ALBEDO_VIS_SOIL_RATIO = 0.7     #: soil VIS / shortwave albedo
EF_VEG = 0.7                    #: evaporative fraction of a transpiring canopy
DT_WET, DT_DRY, RS_REF = 2.0, 16.0, 30.0     #: surface-air temperature excess, K; reference Rs, MJ m-2 d-1
LST_PEAK_H, LST_OMEGA_H, LST_REF_H = 13.0, 12.0, 13.5   #: diurnal LST cosine, local solar hours
LOW_QUALITY_FRACTION = 0.05
MIN_MU0_ALBEDO, LOW_QUALITY_MU0 = 0.17, 0.34  #: no albedo for SZA > 80 deg, low quality for SZA > 70 deg
VIS_SHARE_SW = 0.5              #: share of the visible in shortwave irradiance: SW = 0.5 VIS + 0.5 NIR
ALBEDO_BANDS = ("bsa_sw", "wsa_sw", "bsa_vis", "wsa_vis", "bsa_nir", "wsa_nir")   #: simulate_avhrr albedo keys

# ---- ERA5-Land-like soil moisture
ERA5_LAYER_MM = 70.0            #: ERA5-Land layer 1 (0-7 cm), mm (Munoz-Sabater et al. 2021)
ERA5_DRY_AI = 0.25              #: aridity index at which the ERA5-like wet shift reaches era5_wet_bias
ERA5_ERR_KM = 25.0              #: correlation length of the ERA5-like daily rain error, km

# ---- GLASS-MODIS-like labels: the global MODIS sinusoidal grid
SINU_R = 6371007.181                                 #: sphere radius of the MODIS sinusoidal projection, m
MODIS_X0, MODIS_Y0 = -20015109.354, 10007554.677     #: upper-left corner of the MODIS sinusoidal grid, m

# ---- ESA-CCI-like soil moisture
CCI_EARLY_END = dt.date(2007, 1, 1)           #: before: the sparser, noisier early ESA CCI period

# ---- ISMN-like stations
STATION_RHO, STATION_DIURNAL = 0.9, 0.004     #: AR(1) error persistence; diurnal amplitude, m3 m-3
STATION_DRIFT_PROB = 0.5                      #: probability that a station has one drifting stretch
FROZEN_T, FROZEN_FACTOR = 271.15, 0.6         #: frozen soil: sensors see liquid water only
FROZEN_AIR_T = 273.15                         #: daily-mean air temperature below which the truth is flagged frozen, K
STATION_SENSORS = ("ThetaProbe-ML2X", "Hydraprobe-II-Sdi-12", "CS655", "EC5")   #: ISMN sensor names, in turn
Y2K = pd.Timestamp("2000-01-01")
STATION_NETWORK = "TWIN"                      #: network of the uniformly placed stations (twin.climate: gradient)


def soil_mask(static: dict) -> np.ndarray:
    """Cells with soil on the simulation grid: land and not permanent ice, bool ``(lat, lon)``.

    ``static['land']`` and ``static['ice']`` (:func:`glass_sm.twin.climate.simulate_static`; sea and the ice
    sheets of Antarctica and Greenland in ``twin.climate: earth``) decide; a world without them is all land
    (``twin.climate: gradient``). Every product is missing outside this mask: surface soil moisture is undefined
    over sea and ice, where the real products have no value either.
    """
    shape = np.shape(static["aridity"])
    land = np.asarray(static.get("land", True), bool)
    ice = np.asarray(static.get("ice", False), bool)
    return np.broadcast_to(land & ~ice, shape)


# =========================================================================================================
# AVHRR-like albedo and LST
# =========================================================================================================
def albedo_model(theta, theta_s, f_veg, sand, alpha_veg: float = ALBEDO_VEG_SW) -> np.ndarray:
    """Shortwave white-sky albedo of a soil-vegetation mix, dimensionless (equations in :mod:`glass_sm.twin`).

    Parameters
    ----------
    theta, theta_s : array-like
        Surface SM and saturation, m3 m-3.
    f_veg : array-like
        Vegetation cover, dimensionless.
    sand : array-like
        Sand fraction (sandy soils are brighter: dry albedo 0.22 + 0.15 sand).
    alpha_veg : float
        Canopy albedo.
    """
    a_dry = 0.22 + 0.15 * np.asarray(sand)
    a_soil = a_dry * (1 - (1 - ALBEDO_WET_RATIO) * np.clip(np.asarray(theta) / theta_s, 0, 1))
    return f_veg * alpha_veg + (1 - np.asarray(f_veg)) * a_soil


def lst_model(t_air, dtr, rs, theta, limits: dict, f_veg, hour) -> np.ndarray:
    """Clear-sky LST at local solar time ``hour`` without drift correction, K (equations in :mod:`glass_sm.twin`).

    Parameters
    ----------
    t_air, dtr : array-like
        Daily mean air temperature and diurnal range, K.
    rs : array-like
        Daily shortwave radiation, MJ m-2 d-1.
    theta : array-like
        Surface SM, m3 m-3.
    limits : dict
        ``theta_wp`` and ``theta_fc`` (m3 m-3).
    f_veg : array-like
        Vegetation cover, dimensionless.
    hour : array-like
        Local solar time, h.
    """
    beta = np.clip((theta - limits["theta_wp"]) / (limits["theta_fc"] - limits["theta_wp"]), 0, 1)
    ef = (1 - f_veg) * beta + f_veg * EF_VEG
    peak = t_air + 0.5 * dtr + rs / RS_REF * (DT_WET + DT_DRY * (1 - ef))
    amp = peak - (t_air - 0.5 * dtr)
    return peak - amp * (1 - np.cos(np.pi * np.maximum(np.asarray(hour) - LST_PEAK_H, 0) / LST_OMEGA_H))


def _platform_steps(seed: int, tw) -> tuple[np.ndarray, np.ndarray]:
    """Per-platform (albedo relative step, LST step K), one row of NOAA_PLATFORMS each."""
    rng = component_rng(seed, "platforms")
    n = len(NOAA_PLATFORMS)
    return rng.normal(0, tw.platform_albedo_step, n), rng.normal(0, tw.platform_lst_step, n)


def simulate_avhrr(cfg, sim: dict) -> dict:
    """AVHRR-like albedo and LST on the run's domain, with clouds, QC, platform steps and orbital drift.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        Uses ``run.seed`` and ``twin`` (noise, platform steps, drift residual).
    sim : dict
        Output of :func:`simulate_truth`.

    Returns
    -------
    dict
        ``bsa_sw, wsa_sw, bsa_vis, wsa_vis, bsa_nir, wsa_nir`` (daily clear-sky albedo, dimensionless; NIR from
        ``SW = 0.5 VIS + 0.5 NIR``) and ``lst`` (K): float32 ``(time, lat, lon)`` on ``grids.out``, NaN where not
        retrieved; ``qc_albedo`` / ``qc_lst`` uint8 (bit 0 not retrieved, bit 1
        low quality; sea and ice cells are never retrieved); ``platform`` (str per day), ``overpass_h`` (local solar time per day, h),
        ``lst_clean`` (LST with no platform effect or noise, drift corrected at 13:30, K).
    """
    tw, g = cfg.twin, sim["grids"]
    rs_, cs_ = g.out_in_sim
    st = {k: v[rs_, cs_] for k, v in sim["static"].items() if np.shape(v) == g.sim.shape}
    w = {k: v[:, rs_, cs_] for k, v in sim["weather"].items() if np.ndim(v) == 3}
    theta, f_veg = sim["theta"][:, rs_, cs_], sim["f_veg"][:, rs_, cs_]
    dates = sim["dates"]
    rng = component_rng(cfg.run.seed, "avhrr")
    shape = theta.shape
    pidx = platform_index(dates)
    if np.any(pidx < 0):
        raise ValueError(f"period starts before the AVHRR record ({NOAA_PLATFORMS['start'].iloc[0].date()})")
    hour = equator_crossing_time(dates)[:, None, None]
    doy = dates.day_of_year.values[:, None, None]
    mu0 = cos_sza(doy, st["lat"][None], hour)
    a_step, t_step = _platform_steps(cfg.run.seed, tw)
    extended = (dates.values > NOAA_PLATFORMS["nominal_end"].values[pidx])[:, None, None]

    missing = w["cloudy"] | ~soil_mask(sim["static"])[rs_, cs_][None]     # nothing retrieved over sea and ice
    lowq = (rng.random(shape) < LOW_QUALITY_FRACTION) | extended
    noise_k = np.where(lowq, 3.0, 1.0)

    cal = (1 + a_step[pidx])[:, None, None]
    wsa = albedo_model(theta, st["theta_s"], f_veg, st["sand"]) * cal
    a_dry_vis = ALBEDO_VIS_SOIL_RATIO * (0.22 + 0.15 * st["sand"])
    wsa_vis = (f_veg * ALBEDO_VEG_VIS + (1 - f_veg) * a_dry_vis
               * (1 - (1 - ALBEDO_WET_RATIO) * np.clip(theta / st["theta_s"], 0, 1))) * cal
    bsa_k = 1 + 0.3 * (0.5 - mu0)
    e_sw = rng.normal(0, tw.albedo_noise, shape) * noise_k
    e_vis = rng.normal(0, tw.albedo_noise, shape) * noise_k
    alb_missing = missing | (mu0 < MIN_MU0_ALBEDO)
    alb_lowq = lowq | (mu0 < LOW_QUALITY_MU0)
    out = {}
    for name, val, e in (("wsa_sw", wsa, e_sw), ("bsa_sw", wsa * bsa_k, e_sw * bsa_k),
                         ("wsa_vis", wsa_vis, e_vis), ("bsa_vis", wsa_vis * bsa_k, e_vis * bsa_k)):
        out[name] = np.where(alb_missing, np.nan, np.clip(val + e, 0, 1)).astype(np.float32)
    for sky in ("wsa", "bsa"):   # NIR from SW = s VIS + (1 - s) NIR (no random draw: the other values are unchanged)
        nir = (out[f"{sky}_sw"] - VIS_SHARE_SW * out[f"{sky}_vis"]) / (1 - VIS_SHARE_SW)
        out[f"{sky}_nir"] = np.clip(nir, 0, 1).astype(np.float32)

    lim = {"theta_wp": st["theta_wp"], "theta_fc": st["theta_fc"]}
    args = (w["t_air"], w["dtr"], w["rs"], theta, lim, f_veg)
    lst_ref = lst_model(*args, LST_REF_H)
    lst_h = lst_model(*args, hour)
    lst = (lst_ref + tw.drift_residual * (lst_h - lst_ref) + t_step[pidx][:, None, None]
           + rng.normal(0, tw.lst_noise, shape) * noise_k)
    out["lst"] = np.where(missing, np.nan, lst).astype(np.float32)
    out["lst_clean"] = lst_ref.astype(np.float32)
    out["qc_albedo"] = (alb_missing.astype(np.uint8) | (alb_lowq & ~alb_missing).astype(np.uint8) << 1)
    out["qc_lst"] = (missing.astype(np.uint8) | (lowq & ~missing).astype(np.uint8) << 1)
    out["platform"] = NOAA_PLATFORMS["platform"].to_numpy(dtype=str)[pidx]
    out["overpass_h"] = hour[:, 0, 0]
    return out

def composite_window(cadence_days: int, sample_offset_days: float) -> tuple[int, int]:
    """First and last day (offsets from the file date) averaged into a composite.

    The window of ``cadence_days`` days is placed so that its middle is as close as possible to the time the
    reader takes the composite to represent (file date + ``sample_offset_days``; ties go to the later window):
    8 days and offset 0 (NASA LIS's reading) -> days -3..+4; offset 3.5 (file date = first day) -> 0..+7.
    """
    k0 = int(np.floor(sample_offset_days - (cadence_days - 1) / 2 + 0.5))
    return k0, k0 + cadence_days - 1


def albedo_composites(avhrr: dict, dates: pd.DatetimeIndex, cadence_days: int = 8,
                      sample_offset_days: float = 0.0) -> dict:
    """GLASS02B05-like albedo composites from the daily clear-sky values of :func:`simulate_avhrr`.

    Composite dates follow the product's schedule (day of year 1, 1 + c, ..., restarting each 1 January, as
    :func:`glass_sm.io.glass_avhrr.composite_schedule` expects); every date whose window (:func:`composite_window`)
    overlaps ``dates`` gets a composite, so the period's last days are bracketed by a composite dated after it.
    The value of a composite is the **mean of the clear-sky (retrieved) daily values of its window** (days
    outside ``dates`` are not simulated and do not count). Its QC level (bits 0-1, the product's meaning: 0 good,
    1 acceptable; 2 and 3 are this twin's choice) counts the clear days ``n`` and those of good quality ``g``:
    0 if ``g >= 2``, 1 if ``g == 1`` or ``n >= 2``, 2 if a single low-quality day, 3 (value invalid) if none.

    Parameters
    ----------
    avhrr : dict
        :func:`simulate_avhrr` output (keys of :data:`ALBEDO_BANDS` and ``qc_albedo``).
    dates : pandas.DatetimeIndex
        The simulated days (consecutive).
    cadence_days : int
        Days between composites (``data.albedo_cadence_days``).
    sample_offset_days : float
        Time the reader takes a composite to represent, from its file date (``data.albedo_sample_offset_days``).

    Returns
    -------
    dict
        ``dates`` (composite dates), each key of :data:`ALBEDO_BANDS` ``(n_composites, lat, lon)`` float32 (NaN:
        no clear day), ``qc_level`` uint8, ``n_clear`` uint8, ``window`` (first, last day offsets).
    """
    dates = pd.DatetimeIndex(dates)
    k0, k1 = composite_window(cadence_days, sample_offset_days)
    first, last = dates[0] - pd.Timedelta(days=k1), dates[-1] - pd.Timedelta(days=k0)
    cand = pd.date_range(first, last, freq="D")
    sched = cand[(cand.day_of_year - 1) % cadence_days == 0]   # day of year 1, 1 + c, ...: restarts each year
    clear = np.isfinite(avhrr["wsa_sw"])
    good = clear & ((avhrr["qc_albedo"] & 0b10) == 0)
    shape = (len(sched),) + clear.shape[1:]
    out = {k: np.full(shape, np.nan, np.float32) for k in ALBEDO_BANDS}
    n_clear = np.zeros(shape, np.uint8)
    n_good = np.zeros(shape, np.uint8)
    t0 = dates[0]
    for i, d in enumerate(sched):
        a = int((d - t0).days) + k0
        sl = slice(max(a, 0), max(min(a + cadence_days, len(dates)), 0))
        n = clear[sl].sum(0)
        n_clear[i], n_good[i] = n, good[sl].sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            for k in ALBEDO_BANDS:
                s = np.where(clear[sl], avhrr[k][sl], 0.0).sum(0, dtype=np.float64)
                out[k][i] = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    level = np.where(n_good >= 2, 0, np.where((n_good == 1) | (n_clear >= 2), 1, np.where(n_clear == 1, 2, 3)))
    out.update(dates=sched, qc_level=level.astype(np.uint8), n_clear=n_clear, window=(k0, k1))
    return out


# =========================================================================================================
# ERA5-Land-like soil moisture
# =========================================================================================================
def era5_shift(aridity, wet_bias: float) -> np.ndarray:
    """Wet shift of the ERA5-like soil limits, m3 m-3: ``b min(1, (0.25/AI)^0.7)``.

    Parameters
    ----------
    aridity : array-like
        Aridity index P/PET, dimensionless.
    wet_bias : float
        Shift in a dry climate (``twin.era5_wet_bias``), m3 m-3.
    """
    return wet_bias * np.minimum(1.0, (ERA5_DRY_AI / np.asarray(aridity)) ** 0.7)


def era5_soil_moisture(cfg, static: dict, weather: dict, limits: dict, progress: bool = False,
                       dates=None) -> tuple[np.ndarray, dict, np.ndarray]:
    """ERA5-Land-like 0-7 cm SM on the simulation grid: the bucket rerun with perturbed rain and wetter, deeper soil.

    Rain is multiplied by a smooth lognormal error of coefficient of variation ``twin.era5_precip_error``; the
    wilting point and field capacity are raised by :func:`era5_shift`, saturation by half of it (at most 0.6).
    The error field of a day is :func:`glass_sm.twin.climate.sphere_fields` ``'era5_precip'`` of that day
    (:func:`glass_sm.twin.climate.day_index`) at the cell's position: the reanalysis' rain error, like the rain, belongs to the world,
    so a sub-domain or a sub-period of the same seed sees the same ERA5-Land.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        Uses ``run.seed`` and ``twin.era5_precip_error``, ``twin.era5_wet_bias``.
    static : dict
        :func:`glass_sm.twin.climate.simulate_static` (``lat``, ``lon`` degrees, ``aridity``).
    weather : dict
        :func:`glass_sm.twin.climate.simulate_weather` (``precip``, ``pet``, mm d-1, ``(time, lat, lon)``).
    limits : dict
        The true soil's :func:`glass_sm.twin.soil.hydraulic_limits` (m3 m-3, ksat mm h-1).
    progress : bool
        Show a progress bar.
    dates : pandas.DatetimeIndex, optional
        The simulated days (those of ``weather``, spin-up included). Default: the ``len(weather['precip'])``
        days ending on ``period.end`` (what :func:`glass_sm.twin.truth.simulate_truth` simulates).

    Returns
    -------
    theta_era5 : numpy.ndarray
        ``(time, lat, lon)`` float32, m3 m-3.
    limits_era5 : dict
        The shifted limits, m3 m-3.
    shift : numpy.ndarray
        The wet shift, m3 m-3.
    """
    n = len(weather["precip"])
    if dates is None:
        dates = pd.date_range(end=pd.Timestamp(cfg.period.end), periods=n, freq="D")
    if len(dates) != n:
        raise ValueError(f"era5_soil_moisture: {len(dates)} dates for {n} days of weather")
    cv = cfg.twin.era5_precip_error
    sig = np.sqrt(np.log1p(cv**2))
    eps = sphere_fields(cfg.run.seed, "era5_precip", day_index(dates), static["lat"], static["lon"], ERA5_ERR_KM)
    p_era = (weather["precip"] * np.exp(sig * eps - 0.5 * sig**2)).astype(np.float32)
    d = era5_shift(static["aridity"], cfg.twin.era5_wet_bias)
    lim = limits
    lim_e = dict(lim, theta_wp=lim["theta_wp"] + d, theta_fc=lim["theta_fc"] + d,
                 theta_s=np.minimum(lim["theta_s"] + 0.5 * d, 0.6), theta_r=lim["theta_r"])
    theta_e = run_bucket(p_era, weather["pet"], lim_e, ERA5_LAYER_MM, progress=progress, desc="ERA5 bucket")
    return theta_e, lim_e, d


def simulate_era5(sim: dict) -> np.ndarray:
    """ERA5-like daily SM on the points (spacing 2r) of ``grids``: block means of the r cells with soil, m3 m-3.

    A point is NaN (sea, as ERA5-Land) when none of its 2 x 2 cells has soil: a coastal point with any land cell
    keeps a value, so that every land cell of the product grid has a valid point among its interpolation
    neighbours (the cube's ERA5-Land input is defined on every land cell).

    Returns
    -------
    numpy.ndarray
        ``(time, lat, lon)`` float32, latitude descending, the points of :class:`TwinGrids` ``era5_*``.
    """
    rs_, cs_ = sim["grids"].era5_in_sim
    soil = soil_mask(sim["static"])[rs_, cs_]
    th = sim["theta_era5"][:, rs_, cs_]
    return block_mean(np.where(soil[None], th, np.nan).astype(np.float32), 2)


# =========================================================================================================
# GLASS-MODIS-like labels
# =========================================================================================================
def modis_grid(out: Domain, pixel_m: float) -> tuple:
    """MODIS-sinusoidal raster covering a lat/lon domain, snapped to the global MODIS grid corner.

    Parameters
    ----------
    out : glass_sm.grid.Domain
        The domain to cover (any resolution).
    pixel_m : float
        Pixel size, m.

    Returns
    -------
    transform : affine.Affine
    width, height : int
    cell_index : numpy.ndarray
        ``(height, width)`` flat index (row-major in ``out``) of the cell holding each pixel centre, -1 outside
        the domain (and outside the sinusoidal globe, ``|lon| > 180``).
    """
    lats = np.array([out.south, out.north] + ([0.0] if out.south < 0 < out.north else []))
    xs = [SINU_R * np.deg2rad(lo) * np.cos(np.deg2rad(la)) for lo in (out.west, out.east) for la in lats]
    x0 = MODIS_X0 + np.floor((min(xs) - MODIS_X0) / pixel_m) * pixel_m
    x1 = MODIS_X0 + np.ceil((max(xs) - MODIS_X0) / pixel_m) * pixel_m
    y1 = MODIS_Y0 - np.floor((MODIS_Y0 - SINU_R * np.deg2rad(out.north)) / pixel_m) * pixel_m
    y0 = MODIS_Y0 - np.ceil((MODIS_Y0 - SINU_R * np.deg2rad(out.south)) / pixel_m) * pixel_m
    width, height = int(round((x1 - x0) / pixel_m)), int(round((y1 - y0) / pixel_m))
    xc = x0 + (np.arange(width) + 0.5) * pixel_m
    yc = y1 - (np.arange(height) + 0.5) * pixel_m
    lat = np.rad2deg(yc / SINU_R)[:, None]
    lon = np.rad2deg(xc[None, :] / (SINU_R * np.cos(np.deg2rad(lat))))
    with np.errstate(invalid="ignore"):
        r = np.floor((out.north - lat) / out.res).astype(int) * np.ones_like(lon, int)
        c = np.floor((lon - out.west) / out.res)
    globe = np.abs(lon) <= 180.0
    c = np.where(globe, c, -1).astype(int)
    inside = globe & (r >= 0) & (r < out.nrows) & (c >= 0) & (c < out.ncols)
    idx = np.where(inside, r * out.ncols + c, -1)
    return from_origin(x0, y1, pixel_m, pixel_m), width, height, idx


def first_label_day(cfg, dates: pd.DatetimeIndex) -> int:
    """Index in ``dates`` of the first GLASS-MODIS-like label day (``period.label_start``); ``len(dates)`` if
    the period ends before it."""
    return int(np.searchsorted(dates.values, np.datetime64(pd.Timestamp(cfg.period.label_start))))


def simulate_glass_modis(cfg, sim: dict, cell_index: np.ndarray,
                         labels: np.ndarray | None = None) -> Iterator[tuple[pd.Timestamp, np.ndarray]]:
    """Daily GLASS-MODIS-like SM images on the sinusoidal pixels, from ``period.label_start`` on.

    ``twin.labels``: ``retrieval`` (default): each pixel takes the retrieval's value of the 0.05 deg cell holding
    its centre (``labels``, :func:`glass_sm.twin.labels.retrieval_labels`), without extra noise;
    ``truth_plus_noise`` (the ablation): the cell's truth + N(0, ``twin.label_noise``) per pixel. In both, whole
    cell-days are missing with probability ``twin.label_gap_fraction``, and cells without soil (:func:`soil_mask`)
    always. Drawn one day at a time (memory of one
    image), in day order, from the random stream ``labels``.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        Uses ``run.seed``, ``period.label_start``, ``twin.labels``, ``twin.label_noise`` and
        ``twin.label_gap_fraction``.
    sim : dict
        :func:`glass_sm.twin.truth.simulate_truth`.
    cell_index : numpy.ndarray
        ``(height, width)`` cell of each pixel, -1 outside the domain (:func:`modis_grid`).
    labels : numpy.ndarray, optional
        ``(time, lat, lon)`` retrieval labels on ``grids.out`` from ``period.label_start`` (m3 m-3); required
        when ``twin.labels`` is ``retrieval``.

    Yields
    ------
    day : pandas.Timestamp
    image : numpy.ndarray
        ``(height, width)`` float32 SM, m3 m-3, NaN where missing or outside the domain.
    """
    cell, valid = glass_modis_pixels(sim, cell_index)
    for day, value, gap, noise in glass_modis_draws(cfg, sim, cell_index.shape, labels):
        yield day, glass_modis_image(value, gap, cell, valid, noise)


def glass_modis_pixels(sim: dict, cell_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each sinusoidal pixel's cell (0 outside the domain) and whether it can hold a label (inside, with soil)."""
    rs_, cs_ = sim["grids"].out_in_sim
    cell = np.where(cell_index >= 0, cell_index, 0)
    valid = (cell_index >= 0) & soil_mask(sim["static"])[rs_, cs_].ravel()[cell]
    return cell, valid


def glass_modis_draws(cfg, sim: dict, shape: tuple, labels: np.ndarray | None = None
                      ) -> Iterator[tuple[pd.Timestamp, np.ndarray, np.ndarray, np.ndarray | None]]:
    """The random part of :func:`simulate_glass_modis`, day by day in day order from the stream ``labels``.

    Yields ``(day, value, gap, noise)``: the cells' values (``(lat * lon,)`` on ``grids.out``: the retrieval's
    labels, or the truth for ``truth_plus_noise``), the cells missing that day (bool, same shape) and, for
    ``truth_plus_noise``, the pixels' noise (float32 of ``shape``, the pixel grid's ``(height, width)``; else
    None). :func:`glass_modis_image` makes the image; the other parameters as :func:`simulate_glass_modis`.
    """
    g, tw = sim["grids"], cfg.twin
    rs_, cs_ = g.out_in_sim
    dates = sim["dates"]
    t0 = first_label_day(cfg, dates)
    retrieval = tw.labels == "retrieval"
    if retrieval and (labels is None or len(labels) != len(dates) - t0):
        raise ValueError(f"twin.labels 'retrieval' needs the retrieval labels for the {len(dates) - t0} days from "
                         f"period.label_start (got {None if labels is None else len(labels)}): "
                         "glass_sm.twin.labels.retrieval_labels")
    rng = component_rng(cfg.run.seed, "labels")
    for t in range(t0, len(dates)):
        if retrieval:
            value = labels[t - t0].ravel()
            yield dates[t], value, rng.random(value.size) < tw.label_gap_fraction, None
        else:
            truth = sim["theta"][t, rs_, cs_].ravel()
            gap = rng.random(truth.size) < tw.label_gap_fraction
            yield dates[t], truth, gap, rng.normal(0, tw.label_noise, shape).astype(np.float32)


def glass_modis_image(value: np.ndarray, gap: np.ndarray, cell: np.ndarray, valid: np.ndarray,
                      noise: np.ndarray | None = None) -> np.ndarray:
    """One GLASS-MODIS-like image from one day of :func:`glass_modis_draws` and :func:`glass_modis_pixels`:
    each pixel takes its cell's value (+ its noise, floored at 0), NaN on gaps and where ``valid`` is false."""
    val = value[cell] if noise is None else np.maximum(value[cell] + noise, 0.0)
    return np.where(valid & ~gap[cell], val, np.nan).astype(np.float32)


# =========================================================================================================
# ESA-CCI-like soil moisture
# =========================================================================================================
def simulate_cci(cfg, sim: dict) -> np.ndarray:
    """ESA-CCI-like combined SM on the CCI cells touching the domain (``grids.cci``).

    Truth averaged over the soil cells (:func:`soil_mask`) of the CCI cell x a per-cell scale error N(1,
    ``twin.cci_scale_error``) + noise (x1.5 and sparser before 2007), clipped to 0-0.6; missing on gap days, when
    the air (mean over the same cells) is below 0 degC, and on cells with no soil (sea, ice).

    Parameters
    ----------
    cfg : glass_sm.config.Config
        Uses ``run.seed`` and ``twin.cci_*``.
    sim : dict
        :func:`glass_sm.twin.truth.simulate_truth`.

    Returns
    -------
    numpy.ndarray
        ``(time, lat, lon)`` float32 SM, m3 m-3, NaN where missing.
    """
    g, tw = sim["grids"], cfg.twin
    k = g.cci_factor
    rs_, cs_ = g.cci_in_sim
    soil = soil_mask(sim["static"])[rs_, cs_][None]
    truth = block_mean(np.where(soil, sim["theta"][:, rs_, cs_], np.nan).astype(np.float32), k)
    t_air = block_mean(np.where(soil, sim["weather"]["t_air"][:, rs_, cs_], np.nan).astype(np.float32), k)
    dates = sim["dates"]
    rng = component_rng(cfg.run.seed, "cci")
    scale = rng.normal(1.0, tw.cci_scale_error, truth.shape[1:])
    early = np.asarray(dates < pd.Timestamp(CCI_EARLY_END))[:, None, None]
    noise = rng.normal(0, 1, truth.shape) * tw.cci_noise * np.where(early, 1.5, 1.0)
    gap = rng.random(truth.shape) < np.where(early, tw.cci_early_gap_fraction, tw.cci_gap_fraction)
    with np.errstate(invalid="ignore"):
        sm = np.clip(scale * truth + noise, 0.0, 0.6)
        return np.where(gap | ~(t_air >= FROZEN_AIR_T), np.nan, sm).astype(np.float32)


# =========================================================================================================
# ISMN-like stations
# =========================================================================================================
def station_periods(rng, n: int, frac_pre: float, p0: pd.Timestamp, p1: pd.Timestamp) -> list[tuple]:
    """(kind, start, end) per station: 'before' (ends before 2000), 'across', 'after' (starts 2000 on)."""
    year = pd.Timedelta(days=365)
    if p1 < Y2K:
        kinds = ["before"] * n
    elif p0 >= Y2K:
        kinds = ["after"] * n
    else:
        n_pre = int(round(frac_pre * n))
        kinds = ["across"] * ((n_pre + 1) // 2) + ["before"] * (n_pre // 2) + ["after"] * (n - n_pre)

    def span(lo, hi, min_len):
        lo, hi = pd.Timestamp(lo), pd.Timestamp(hi)
        min_len = min(min_len, 0.5 * (hi - lo))
        start = lo + (hi - min_len - lo) * rng.random()
        length = min_len + (hi - start - min_len) * rng.random()
        return start.normalize(), min(start + length, hi).normalize()

    out = []
    for kind in kinds:
        if kind == "before":
            s, e = span(p0, min(p1, Y2K - pd.Timedelta(days=1)), 2 * year)
        elif kind == "after":
            s, e = span(max(p0, Y2K), p1, 3 * year)
        else:
            s = (p0 + (min(Y2K - pd.Timedelta(days=180), p1) - p0) * rng.random() * 0.5).normalize()
            e = (max(Y2K + year, s) + (p1 - max(Y2K + year, s)) * rng.random()).normalize()
            e = min(max(e, Y2K), p1)
        out.append((kind, s, e))
    return out



@dataclass
class StationSeries:
    """One ISMN-like station: where it is, how it relates to its pixel, and its hourly series.

    Attributes
    ----------
    station, kind, sensor : str
        Name (``TW01`` ...), period kind (``before``/``across``/``after`` 2000) and sensor type.
    start, end : pandas.Timestamp
        First and last day.
    lat, lon : float
        Position, degrees.
    row, col : int
        Cell of the run's domain holding the station.
    a, b : float
        Offset (m3 m-3) and gain (dimensionless) in ``a + b * theta_pixel``.
    elevation : float
        Terrain height at the station, m.
    days : pandas.DatetimeIndex
        The station's days (``start`` .. ``end``).
    hourly : numpy.ndarray
        ``24 * len(days)`` hourly SM, m3 m-3 (hour ``h`` of day ``d`` at ``24 d + h``).
    flags : numpy.ndarray
        ISMN quality flag of each hour (``G``, ``D03`` frozen, ``D05`` drift, ``C01``/``C02`` out of range,
        comma-joined).
    keep : numpy.ndarray
        False for the hours that are missing (random losses and outages).
    network : str
        ISMN network name (``TWIN`` for the uniformly placed stations; in ``twin.climate: earth`` the network of
        :func:`glass_sm.twin.stations.place_stations` the station imitates).
    """

    station: str
    kind: str
    start: pd.Timestamp
    end: pd.Timestamp
    lat: float
    lon: float
    row: int
    col: int
    a: float
    b: float
    sensor: str
    elevation: float
    days: pd.DatetimeIndex
    hourly: np.ndarray
    flags: np.ndarray
    keep: np.ndarray
    network: str = STATION_NETWORK

    def table_row(self) -> dict:
        """The station's row of the station table (network, name, kind, period, position, cell, a, b, sensor)."""
        return {"network": self.network, "station": self.station, "kind": self.kind, "start": self.start, "end": self.end, "lat": self.lat,
                "lon": self.lon, "row": self.row, "col": self.col, "a": self.a, "b": self.b, "sensor": self.sensor}


def network_name(name: str) -> str:
    """An ISMN network name usable in file and folder names: characters other than letters, digits, ``_`` and
    ``-`` become ``-`` (ISMN's own names, e.g. ``RUSWET-GRASS``, already are)."""
    out = re.sub(r"[^A-Za-z0-9_-]", "-", str(name).strip())
    return out or STATION_NETWORK


def station_sites(cfg, grids, static: dict, rng: np.random.Generator,
                  dates: pd.DatetimeIndex) -> Iterator[tuple[str, float, float, str, pd.Timestamp, pd.Timestamp]]:
    """Where and when the stations are: ``(network, lat, lon, kind, start, end)``, one station at a time.

    ``twin.climate: gradient``: periods by :func:`station_periods` (drawn at once), each position uniform in the
    domain (2-98 % of each side) drawn when its station is asked for, network ``TWIN`` (so the stream ``rng``
    interleaves with the consumer's draws as it always did: the same stations as twin version 2).
    ``twin.climate: earth``: :func:`glass_sm.twin.stations.place_stations` (around an ISMN-like table of
    networks, on cells with soil, inside the domain) drawn at once, its periods clipped to the period. Both draw
    from ``rng`` (the stations' own stream).
    """
    tw, out = cfg.twin, grids.out
    if getattr(tw, "climate", "gradient") != "earth":
        periods = station_periods(rng, tw.n_stations, tw.station_pre2000_fraction, dates[0], dates[-1])
        for kind, s, e in periods:
            lat = out.south + out.nrows * out.res * rng.uniform(0.02, 0.98)
            lon = out.west + out.ncols * out.res * rng.uniform(0.02, 0.98)
            yield STATION_NETWORK, lat, lon, kind, s, e
        return
    from glass_sm.twin.stations import place_stations     # helper module of the earth layout

    rs_, cs_ = grids.out_in_sim
    soil = soil_mask(static)[rs_, cs_]

    def land_fn(lat, lon):
        """Whether points (degrees) fall on a cell of the domain with soil."""
        lat, lon = np.broadcast_arrays(np.asarray(lat, float), np.asarray(lon, float))
        r = np.floor((out.north - lat) / out.res).astype(int)
        c = np.floor((lon - out.west) / out.res).astype(int)
        ok = (r >= 0) & (r < out.nrows) & (c >= 0) & (c < out.ncols)
        res = np.zeros(lat.shape, bool)
        res[ok] = soil[r[ok], c[ok]]
        return res if res.ndim else bool(res)

    table = place_stations(rng, tw.n_stations, (out.south, out.north, out.west, out.east), land_fn, dates[0],
                           dates[-1], tw.station_pre2000_fraction)
    table = table.reset_index(drop=True)
    table["start"] = pd.to_datetime(table["start"]).clip(lower=dates[0]).dt.normalize()
    table["end"] = pd.to_datetime(table["end"]).clip(upper=dates[-1]).dt.normalize()
    if len(table) != tw.n_stations or not land_fn(table["lat"].to_numpy(), table["lon"].to_numpy()).all() \
            or (table["start"] > table["end"]).any():
        raise ValueError(f"place_stations returned {len(table)} stations for twin.n_stations {tw.n_stations}, or "
                         "stations off the domain's land, or empty periods")
    for row in table[["network", "lat", "lon", "kind", "start", "end"]].itertuples(index=False):
        yield row.network, float(row.lat), float(row.lon), row.kind, row.start, row.end


def simulate_stations(cfg, sim: dict) -> Iterator[StationSeries]:
    """ISMN-like stations, one at a time: ``a + b theta_pixel + AR(1) error``, hourly, with flags and gaps.

    Hourly values interpolate the daily ones (placed at 12:00) plus a small diurnal sensor cycle and noise;
    frozen days (air below -2 degC) read liquid water only (x0.6, flag D03); half of the stations drift upwards
    over one stretch (D05); range flags C01/C02; 1 % of hours and a few outages of 3-60 days are missing.

    Positions, periods and networks: :func:`station_sites`.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        Uses ``run.seed``, ``twin.climate``, ``twin.n_stations``, ``twin.station_pre2000_fraction`` and
        ``twin.station_noise``.
    sim : dict
        :func:`glass_sm.twin.truth.simulate_truth`.

    Yields
    ------
    StationSeries
        ``twin.n_stations`` stations, in order.
    """
    g, tw = sim["grids"], cfg.twin
    out = g.out
    rs_, cs_ = g.out_in_sim
    dates = sim["dates"]
    rng = component_rng(cfg.run.seed, "stations")
    st = sim["static"]
    hours = np.arange(24)
    for i, (network, lat, lon, kind, s, e) in enumerate(station_sites(cfg, g, st, rng, dates)):
        s, e = pd.Timestamp(s), pd.Timestamp(e)
        r, c = out.index_of(lat, lon)
        a, b = rng.normal(0.0, 0.03), float(np.clip(rng.normal(1.0, 0.12), 0.7, 1.3))
        t0, t1 = dates.get_loc(s), dates.get_loc(e)
        n = t1 - t0 + 1
        pix = sim["theta"][t0:t1 + 1, rs_.start + r, cs_.start + c].astype(np.float64)
        tair = sim["weather"]["t_air"][t0:t1 + 1, rs_.start + r, cs_.start + c]
        sd = tw.station_noise
        e0 = rng.normal(0, sd)
        err = lfilter([1.0], [1.0, -STATION_RHO], rng.normal(0, sd * np.sqrt(1 - STATION_RHO**2), n),
                      zi=[STATION_RHO * e0])[0]
        daily = a + b * pix + err
        flag_drift = np.zeros(n, bool)
        if rng.random() < STATION_DRIFT_PROB and n >= 240:     # a stretch of 60 days fits in a quarter
            L = int(rng.integers(60, min(240, n // 4) + 1))
            k0 = int(rng.integers(0, n - L))
            daily[k0:k0 + L] += np.linspace(0, rng.uniform(0.03, 0.08), L)
            flag_drift[k0:k0 + L] = True
        # hourly: daily values at 12:00, linear in between, + diurnal sensor cycle + noise
        th = np.arange(n * 24) / 24.0 - 0.5
        hourly = np.interp(th, np.arange(n), daily) + STATION_DIURNAL * np.sin(2 * np.pi * (np.tile(hours, n) - 9)
                                                                               / 24)
        hourly += rng.normal(0, 0.001, hourly.size)
        frozen = np.repeat(tair < FROZEN_T, 24)
        hourly = np.where(frozen, hourly * FROZEN_FACTOR, hourly)
        keep = rng.random(hourly.size) > 0.01
        for _ in range(rng.poisson(0.4 * n / 365.25)):
            L = int(rng.integers(3, 61)) * 24
            k0 = int(rng.integers(0, max(hourly.size - L, 1)))
            keep[k0:k0 + L] = False
        flags = np.full(hourly.size, "G", dtype=object)
        parts = [(frozen, "D03"), (np.repeat(flag_drift, 24), "D05"), (hourly < 0, "C01"), (hourly > 0.6, "C02")]
        for mask, code in parts:
            flags[mask] = np.where(flags[mask] == "G", code, flags[mask] + "," + code)
        ff = int(st["fine_factor"])
        elev = float(st["dem_fine"][(rs_.start + r) * ff, (cs_.start + c) * ff])
        yield StationSeries(f"TW{i + 1:02d}", kind, s, e, float(lat), float(lon), r, c, a, b,
                            STATION_SENSORS[i % len(STATION_SENSORS)], elev, dates[t0:t1 + 1], hourly, flags, keep,
                            network_name(network))
