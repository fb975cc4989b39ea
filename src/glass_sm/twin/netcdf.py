"""The twin's netCDF files: ERA5-Land-like swvl1 (legacy CDS netCDF), ESA-CCI-like SM (netCDF-4) and ``truth.nc``.

Split from :mod:`glass_sm.twin.writers` (which re-exports every name here); the conventions are that module's.
Each writer has a ``submit_*`` form that hands the encoding to :class:`glass_sm.twin.jobs.Jobs` (one job per
file: a year of ERA5-Land or CCI, or ``truth.nc``); ``write_*`` runs the same jobs in the calling process, so both
write the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
from tqdm import tqdm

from glass_sm.grid import Domain
from glass_sm.paths import atomic_write
from glass_sm.twin.grids import TWIN_VERSION
from glass_sm.twin.jobs import Jobs, Shared, resolve
from glass_sm.twin.sensors import FROZEN_AIR_T, simulate_cci, simulate_era5, soil_mask

__all__ = ["CCI_FILL", "ERA5_FILL", "era5_filename", "cci_filename", "write_era5", "submit_era5", "write_cci",
           "submit_cci", "write_truth", "submit_truth"]

CCI_FILL, ERA5_FILL = -9999.0, -32767


def era5_filename(year: int) -> str:
    """``era5land_swvl1_<YYYY>.nc``."""
    return f"era5land_swvl1_{year:04d}.nc"


def cci_filename(year: int) -> str:
    """``ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-<YYYY>-fv08.1.nc`` (one file per year: a twin deviation)."""
    return f"ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-{year:04d}-fv08.1.nc"


# ---- ERA5-Land-like netCDF ---------------------------------------------------------------------------------
def _pack_int16(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """grib_to_netcdf-style packing: offset = mid-range, scale = range / 65532 (fill -32767 kept free)."""
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    scale = (hi - lo) / 65532.0 if hi > lo else 1e-6
    offset = 0.5 * (hi + lo)
    q = np.round((x - offset) / scale)
    return np.where(np.isfinite(x), q, ERA5_FILL).astype(np.int16), scale, offset


def write_era5(cfg, sim: dict, progress: bool = False) -> list[Path]:
    """ERA5-Land-like swvl1, legacy CDS netCDF (NETCDF3 64-bit offset, int16 packed), one file per year.

    The daily values of :func:`glass_sm.twin.sensors.simulate_era5` (placed at 12 UTC) are written 6-hourly
    (00, 06, 12, 18 UTC) by linear interpolation.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        ``data.era5land_dir`` receives ``era5land_swvl1_<YYYY>.nc``.
    sim : dict
        :func:`glass_sm.twin.truth.simulate_truth`.
    progress : bool

    Returns
    -------
    list of pathlib.Path
    """
    with Jobs(0) as jobs:
        return resolve(submit_era5(cfg, sim, jobs, progress))


def submit_era5(cfg, sim: dict, jobs: Jobs, progress: bool = False) -> list:
    """:func:`write_era5` as jobs of ``jobs`` (:mod:`glass_sm.twin.jobs`), one per year (views of the 6-hourly
    values, packed and written by the job)."""
    g = sim["grids"]
    daily = simulate_era5(sim).astype(np.float64)
    dates = sim["dates"]
    root = Path(cfg.data.era5land_dir)
    root.mkdir(parents=True, exist_ok=True)
    prev = np.concatenate([daily[:1], daily[:-1]])
    nxt = np.concatenate([daily[1:], daily[-1:]])
    steps = np.stack([0.5 * (prev + daily), 0.75 * daily + 0.25 * prev, daily, 0.75 * daily + 0.25 * nxt], 1)
    base = pd.Timestamp("1900-01-01")
    handles = []
    for year in tqdm(sorted(set(dates.year)), desc="ERA5-Land netCDF", disable=not progress):
        sel = np.flatnonzero(dates.year == year)
        data = steps[sel[0]:sel[-1] + 1].reshape(-1, *daily.shape[1:])      # the days of a year are consecutive
        hours = ((dates[sel] - base) / pd.Timedelta(hours=1)).values.astype(np.int64)
        hours = (hours[:, None] + np.array([0, 6, 12, 18])[None]).ravel().astype(np.int32)
        handles.append(jobs.submit(_era5_job, root / era5_filename(year), data, hours, g.era5_lon, g.era5_lat))
    return handles


def _era5_job(path: Path, data: np.ndarray, hours: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> list[Path]:
    """Pack (:func:`_pack_int16`) and write one year of 6-hourly swvl1 ``(time, lat, lon)``."""
    packed, scale, offset = _pack_int16(data)
    with atomic_write(path) as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF3_64BIT_OFFSET") as nc:
        nc.createDimension("longitude", data.shape[2])
        nc.createDimension("latitude", data.shape[1])
        nc.createDimension("time", None)
        v = nc.createVariable("longitude", "f4", ("longitude",))
        v.units, v.long_name = "degrees_east", "longitude"
        v[:] = lon
        v = nc.createVariable("latitude", "f4", ("latitude",))
        v.units, v.long_name = "degrees_north", "latitude"
        v[:] = lat
        v = nc.createVariable("time", "i4", ("time",))
        v.units, v.long_name, v.calendar = "hours since 1900-01-01 00:00:0.0", "time", "gregorian"
        v[:] = hours
        v = nc.createVariable("swvl1", "i2", ("time", "latitude", "longitude"), fill_value=ERA5_FILL)
        v.set_auto_maskandscale(False)
        v.scale_factor, v.add_offset = scale, offset
        v.missing_value = np.int16(ERA5_FILL)
        v.units, v.long_name = "m**3 m**-3", "Volumetric soil water layer 1"
        v[:] = packed
        nc.Conventions = "CF-1.6"
        nc.history = ("glass-sm synthetic twin, written in the legacy CDS layout of "
                      "grib_to_netcdf-2.6.0 (no timestamp, for reproducible bytes)")
    return [path]


# ---- ESA-CCI-like netCDF -----------------------------------------------------------------------------------
def write_cci(cfg, sim: dict, progress: bool = False) -> list[Path]:
    """ESA-CCI-like combined SM, one netCDF per year, on the CCI cells touching the domain.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        ``data.esa_cci_dir`` receives ``ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-<YYYY>-fv08.1.nc``.
    sim : dict
        :func:`glass_sm.twin.truth.simulate_truth`.
    progress : bool

    Returns
    -------
    list of pathlib.Path
    """
    with Jobs(0) as jobs:
        return resolve(submit_cci(cfg, sim, jobs, progress))


def submit_cci(cfg, sim: dict, jobs: Jobs, progress: bool = False) -> list:
    """:func:`write_cci` as jobs of ``jobs`` (:mod:`glass_sm.twin.jobs`), one per year (views of the values)."""
    g = sim["grids"]
    sm = simulate_cci(cfg, sim)
    sm = np.where(np.isnan(sm), CCI_FILL, sm).astype(np.float32)
    dates = sim["dates"]
    root = Path(cfg.data.esa_cci_dir)
    root.mkdir(parents=True, exist_ok=True)
    handles = []
    for year in tqdm(sorted(set(dates.year)), desc="ESA-CCI netCDF", disable=not progress):
        sel = np.flatnonzero(dates.year == year)
        days = ((dates[sel] - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).values
        handles.append(jobs.submit(_cci_job, root / cci_filename(year), days, g.cci.lat, g.cci.lon,
                                   sm[sel[0]:sel[-1] + 1]))
    return handles


def _cci_job(path: Path, days: np.ndarray, lat: np.ndarray, lon: np.ndarray, sm: np.ndarray) -> list[Path]:
    """Write one year of ESA-CCI-like SM ``(time, lat, lon)`` (fill already in place); ``days`` since 1970."""
    with atomic_write(path) as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF4_CLASSIC") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", len(lat))
        nc.createDimension("lon", len(lon))
        v = nc.createVariable("time", "f8", ("time",))
        v.units, v.calendar, v.standard_name = "days since 1970-01-01 00:00:00 UTC", "standard", "time"
        v[:] = days
        for name, vals, std, units in (("lat", lat, "latitude", "degrees_north"),
                                       ("lon", lon, "longitude", "degrees_east")):
            v = nc.createVariable(name, "f4", (name,))
            v.standard_name, v.units = std, units
            v[:] = vals
        v = nc.createVariable("sm", "f4", ("time", "lat", "lon"), fill_value=np.float32(CCI_FILL),
                              zlib=True, complevel=4, chunksizes=(1, len(lat), len(lon)))
        v.long_name, v.units = "Volumetric Soil Moisture", "m3 m-3"
        v.standard_name = "volume_fraction_of_condensed_water_in_soil"
        v.valid_range = np.array([0.0, 1.0], np.float32)
        v.set_auto_mask(False)
        v[:] = sm
        nc.title = "ESA CCI Surface Soil Moisture Product (COMBINED), synthetic-twin imitation"
        nc.source = "glass-sm synthetic twin"
        nc.product_version = "08.1"
        nc.Conventions = "CF-1.8"
        nc.comment = ("One file per year (real CCI: one per day). Truth at 0.25 deg x per-cell scale "
                      "error + noise; sparser and noisier before 2007; frozen days masked.")
    return [path]


# ---- truth ---------------------------------------------------------------------------------------------
#: The ``(lat, lon)`` variables of ``truth.nc``: name, source (``sim['static']``, ``sim['weather']`` or ``sim``), key,
#: units, long name.
_TRUTH_PLANES = (
    ("theta_r", "static", "theta_r", "m3 m-3", "residual water content (Rawls & Brakensiek 1985)"),
    ("theta_wp", "static", "theta_wp", "m3 m-3", "wilting point, -1500 kPa (Saxton & Rawls 2006)"),
    ("theta_fc", "static", "theta_fc", "m3 m-3", "field capacity, -33 kPa (Saxton & Rawls 2006)"),
    ("theta_s", "static", "theta_s", "m3 m-3", "saturation (Saxton & Rawls 2006)"),
    ("ksat", "static", "ksat", "mm h-1", "saturated hydraulic conductivity (Saxton & Rawls 2006)"),
    ("elevation", "static", "elevation", "m", "mean elevation of the cell"),
    ("sand", "static", "sand", "1", "sand mass fraction"),
    ("clay", "static", "clay", "1", "clay mass fraction"),
    ("silt", "static", "silt", "1", "silt mass fraction"),
    ("aridity_index", "static", "aridity", "1", "design aridity index P/PET"),
    ("precip_mean", "weather", "precip_clim_mean", "kg m-2 d-1", "climatological mean precipitation"),
    ("pet_mean", "weather", "pet_clim_mean", "kg m-2 d-1", "climatological mean potential evapotranspiration"),
    ("era5_wet_shift", "sim", "era5_shift", "m3 m-3", "wet shift of the ERA5-like soil limits"),
)


def write_truth(cfg, sim: dict, stations: pd.DataFrame, path: Path) -> Path:
    """``truth.nc``: the hidden true SM and the twin's soil, climate and station parameters (CF-1.8).

    ``sm_true`` is NaN on the cells without soil (sea, ice; ``land`` and ``ice`` say which); ``frozen`` flags the
    cell-days whose daily-mean air temperature is below 0 degC (surface liquid soil moisture undefined, as the
    real products flag or mask them).

    Parameters
    ----------
    cfg : glass_sm.config.Config
    sim : dict
        :func:`glass_sm.twin.truth.simulate_truth`.
    stations : pandas.DataFrame
        The station table of :func:`write_stations`.
    path : pathlib.Path
        Output file (``data.truth_path``).

    Returns
    -------
    pathlib.Path
    """
    with Jobs(0) as jobs:
        return resolve([submit_truth(cfg, sim, stations, path, jobs)])[0]


def submit_truth(cfg, sim: dict, stations: pd.DataFrame, path: Path, jobs: Jobs):
    """:func:`write_truth` as one job of ``jobs`` (:mod:`glass_sm.twin.jobs`): the domain's daily fields go to
    the job through :meth:`glass_sm.twin.jobs.Jobs.share`; returns the job's handle (its result: ``[path]``)."""
    g = sim["grids"]
    rs_, cs_ = g.out_in_sim
    st, w = sim["static"], sim["weather"]
    soil = soil_mask(st)
    land = np.broadcast_to(np.asarray(st.get("land", True), bool), soil.shape)
    ice = np.broadcast_to(np.asarray(st.get("ice", False), bool), soil.shape)
    cube = {"sm_true": sim["theta"], "precipitation": w["precip"], "t_air": w["t_air"], "pet": w["pet"],
            "f_veg": sim["f_veg"]}
    cube = jobs.share({k: v[:, rs_, cs_] for k, v in cube.items()})
    source = {"static": st, "weather": w, "sim": sim}
    planes = {name: np.asarray(source[src][key])[rs_, cs_] for name, src, key, _, _ in _TRUTH_PLANES}
    planes.update(soil=soil[rs_, cs_], land=land[rs_, cs_], ice=ice[rs_, cs_])
    return jobs.submit(_truth_job, Path(path), cube, planes, g.out, sim["dates"], stations, cfg.run.seed)


def _truth_job(path: Path, shared: Shared, planes: dict, out: Domain, dates: pd.DatetimeIndex,
               stations: pd.DataFrame, seed: int) -> list[Path]:
    """Write ``truth.nc`` from the domain's daily fields (``shared``: ``sm_true``, ``precipitation``, ``t_air``,
    ``pet``, ``f_veg``, ``(time, lat, lon)``) and ``(lat, lon)`` fields (``planes``: :data:`_TRUTH_PLANES`,
    ``soil``, ``land``, ``ice``)."""
    cube = shared.arrays()
    chunks = (min(365, len(dates)), out.nrows, out.ncols)
    with atomic_write(path) as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        nc.createDimension("time", len(dates))
        nc.createDimension("lat", out.nrows)
        nc.createDimension("lon", out.ncols)
        nc.createDimension("station", len(stations))
        v = nc.createVariable("time", "i4", ("time",))
        v.units, v.calendar, v.standard_name = f"days since {dates[0]:%Y-%m-%d}", "proleptic_gregorian", "time"
        v[:] = np.arange(len(dates))
        for name, vals, std, units, axis in (("lat", out.lat, "latitude", "degrees_north", "Y"),
                                             ("lon", out.lon, "longitude", "degrees_east", "X")):
            v = nc.createVariable(name, "f8", (name,))
            v.standard_name, v.long_name, v.units, v.axis = std, std, units, axis
            v[:] = vals

        def var3(name, data, units, long_name, std=None, digits=None, mask=None):
            v = nc.createVariable(name, "f4", ("time", "lat", "lon"), zlib=True, complevel=1, shuffle=True,
                                  chunksizes=chunks)
            v.units, v.long_name = units, long_name
            if std:
                v.standard_name = std
            d = data
            if mask is not None:
                d = np.where(mask[None], d, np.nan)
            v[:] = np.round(d, digits) if digits is not None else d

        var3("sm_true", cube["sm_true"], "m3 m-3", "true volumetric soil moisture, 0-5 cm (NaN over sea and ice)",
             "volume_fraction_of_condensed_water_in_soil", mask=planes["soil"])
        var3("precipitation", cube["precipitation"], "kg m-2", "daily precipitation", "precipitation_amount", 2)
        var3("t_air", cube["t_air"], "K", "daily mean air temperature", "air_temperature", 2)
        var3("pet", cube["pet"], "kg m-2", "daily potential evapotranspiration (Hargreaves)",
             "water_potential_evaporation_amount", 2)
        var3("f_veg", cube["f_veg"], "1", "fractional vegetation cover", "vegetation_area_fraction", 3)
        v = nc.createVariable("frozen", "i1", ("time", "lat", "lon"), zlib=True, complevel=1, fill_value=np.int8(-1),
                              chunksizes=chunks)
        v.long_name = "frozen day: daily-mean air temperature below 0 degC (surface liquid soil moisture undefined)"
        v.flag_values = np.array([0, 1], np.int8)
        v.flag_meanings = "not_frozen frozen"
        v.comment = f"t_air < {FROZEN_AIR_T} K; fill where t_air is undefined"
        ta = cube["t_air"]
        with np.errstate(invalid="ignore"):
            v[:] = np.where(np.isfinite(ta), ta < FROZEN_AIR_T, -1).astype(np.int8)
        for name, meaning in (("land", "sea land"), ("ice", "no_ice permanent_ice")):
            v = nc.createVariable(name, "i1", ("lat", "lon"))
            v.long_name = {"land": "land (Natural Earth land mask; all land in twin.climate: gradient)",
                           "ice": "permanent ice sheet (land without soil: no soil moisture)"}[name]
            v.flag_values = np.array([0, 1], np.int8)
            v.flag_meanings = meaning
            v[:] = planes[name].astype(np.int8)

        for name, _, _, units, long_name in _TRUTH_PLANES:
            v = nc.createVariable(name, "f4", ("lat", "lon"))
            v.units, v.long_name = units, long_name
            v[:] = planes[name]
        v = nc.createVariable("station_name", str, ("station",))
        v.long_name = "ISMN station name"
        for i, s in enumerate(stations.get("station", [])):
            v[i] = s
        v = nc.createVariable("station_network", str, ("station",))
        v.long_name = "ISMN network of the station"
        for i, s in enumerate(stations.get("network", [])):
            v[i] = s
        for name, units, long_name in (("lat", "degrees_north", "station latitude"),
                                       ("lon", "degrees_east", "station longitude"),
                                       ("a", "m3 m-3", "station offset a in a + b * theta_pixel"),
                                       ("b", "1", "station gain b in a + b * theta_pixel")):
            v = nc.createVariable(f"station_{name}", "f8", ("station",))
            v.units, v.long_name = units, long_name
            if len(stations):
                v[:] = stations[name].to_numpy(float)
        nc.title = "glass-sm synthetic twin: hidden truth"
        nc.source = "glass-sm synthetic twin"
        nc.Conventions = "CF-1.8"
        nc.history = f"glass_sm.twin (twin version {TWIN_VERSION}), seed {seed}"
        nc.references = "Zhang et al. (2025), ESSD 17, 5181-5207; see glass_sm.twin for the physics"
    return [path]
