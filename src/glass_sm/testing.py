"""Synthetic fixtures shipped with the package: small in-memory data with the exact schemas of ``book/design.md``.

Tests, docstring examples and benchmarks build their data with these functions (as weatherbench2 ships its
schema fixtures), so no test depends on a file that exists on one machine only. They are cheap (a 6 x 5 cube of
five years is ~1 MB) and deterministic (same arguments and seed, same values).

Example
-------
>>> from glass_sm.testing import make_toy_cube
>>> cube, truth = make_toy_cube(n_lat=3, n_lon=3, with_truth=True)
>>> cube["sm_label"].attrs["units"], truth.dims
('m3 m-3', ('time', 'lat', 'lon'))
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import xarray as xr
from scipy.signal import lfilter

from glass_sm.data.cube import CUBE_ATTRS
from glass_sm.grid import RES, Domain, lat_lon_attrs

__all__ = ["make_toy_cube"]

_TOY_ATTRS = {"title": "toy cube (glass_sm.testing.make_toy_cube)", "source": "synthetic twin",
              "history": "made in memory by glass_sm.testing.make_toy_cube", "Conventions": "CF-1.8"}


def make_toy_cube(n_lat: int = 6, n_lon: int = 5, start: str | dt.date = "1998-01-01",
                  end: str | dt.date = "2002-12-31", label_start: str | dt.date = "2000-02-24", seed: int = 0,
                  lat_max: float = 40.0, lon_min: float = -100.0, n_ocean: int = 1,
                  label_gap_fraction: float = 0.05, input_nan_fraction: float = 0.0,
                  labels_before_start: bool = False, with_truth: bool = False):
    """A small synthetic cube with the schema of ``book/design.md`` ("The cube"), in memory.

    The true soil moisture is a seasonal cycle plus AR(1) anomalies (0.05..0.45 m3 m-3); albedo darkens and LST
    cools with wetter soil, ERA5-Land-like SM is wet-biased, labels are truth plus 0.02 m3 m-3 noise. Variable
    attributes are those of the real cube (:data:`glass_sm.data.cube.CUBE_ATTRS`).

    Parameters
    ----------
    n_lat, n_lon : int
        Grid size, cells of 0.05 deg.
    start, end : str or datetime.date
        First and last day.
    label_start : str or datetime.date
        Labels are NaN before this day (unless ``labels_before_start``).
    seed : int
        Random seed.
    lat_max, lon_min : float
        North and west edges, degrees.
    n_ocean : int
        Cells of the south-east corner that are ocean (``land_mask = 0``, NaN inputs).
    label_gap_fraction : float
        Fraction of land pixel-days whose label is NaN, dimensionless.
    input_nan_fraction : float
        Fraction of land pixel-days whose ``lst`` stays NaN (an unfilled gap), dimensionless.
    labels_before_start : bool
        Also write labels before ``label_start`` (to test that they are ignored).
    with_truth : bool
        Also return the true soil moisture ``sm_true(time, lat, lon)``, m3 m-3.

    Returns
    -------
    xarray.Dataset or (xarray.Dataset, xarray.DataArray)
        The cube (and the truth).
    """
    rng = np.random.default_rng(seed)
    time = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D")
    dom = Domain(int(round((90 - lat_max) / RES)), int(round((lon_min + 180) / RES)), n_lat, n_lon)
    T, ny, nx = len(time), n_lat, n_lon
    land = np.ones((ny, nx), np.int8)
    if n_ocean:
        land.reshape(-1)[-min(n_ocean, ny * nx - 1):] = 0
    x = np.linspace(0, 1, nx)[None, :] * np.ones((ny, 1))
    mean_sm = (0.15 + 0.15 * x + 0.03 * rng.standard_normal((ny, nx))).astype(np.float32)
    doy = np.asarray(time.day_of_year, np.float32)
    season = np.sin(2 * np.pi * (doy - 80) / 365.25).astype(np.float32)
    anom = lfilter([1.0], [1.0, -0.95], rng.standard_normal((T, ny * nx)).astype(np.float32), axis=0)
    sm = (mean_sm[None] + 0.05 * season[:, None, None] * (1 - x)[None]
          + 0.02 * anom.reshape(T, ny, nx).astype(np.float32))
    sm = np.clip(sm, 0.05, 0.45).astype(np.float32)
    # independent Gaussian noise fields, drawn in this order (the values depend on it): bsa, wsa, lst, era5, label
    noise_sd = {"bsa": 0.01, "wsa": 0.003, "lst": 1.5, "era5": 0.01, "label": 0.02}
    noise = {k: (sd * rng.standard_normal((T, ny, nx))).astype(np.float32) for k, sd in noise_sd.items()}

    bsa = (0.22 - 0.25 * (sm - 0.25) + 0.02 * season[:, None, None] + noise["bsa"]).astype(np.float32)
    wsa = (bsa + 0.01 + noise["wsa"]).astype(np.float32)
    lst = (290 + 12 * season[:, None, None] - 25 * (sm - 0.25) + noise["lst"]).astype(np.float32)
    era5 = (sm + 0.04 * (1 - x)[None] + noise["era5"]).astype(np.float32)
    label = (sm + noise["label"]).astype(np.float32)
    label[rng.random(label.shape) < label_gap_fraction] = np.nan
    if not labels_before_start:
        label[time < pd.Timestamp(label_start)] = np.nan
    if input_nan_fraction > 0:
        lst[rng.random(lst.shape) < input_nan_fraction] = np.nan
    albedo_filled = (rng.random((T, ny, nx)) < 0.3).astype(np.int8)
    lst_filled = (rng.random((T, ny, nx)) < 0.3).astype(np.int8)
    ocean = land == 0
    for a in (bsa, wsa, lst, era5, label):
        a[:, ocean] = np.nan
    elevation = (800 + 300 * rng.standard_normal((ny, nx))).astype(np.float32)
    sand = rng.uniform(0.2, 0.7, (ny, nx)).astype(np.float32)
    clay = (rng.uniform(0.05, 0.35, (ny, nx)) * (1 - sand)).astype(np.float32)
    silt = (1 - sand - clay).astype(np.float32)
    for a in (elevation, sand, clay, silt):
        a[ocean] = np.nan
    platform = np.where(time.year < 2001, "NOAA-14", "NOAA-16").astype("<U7")
    # 8-day albedo composites (day of year 1, 9, ...): 0 on a composite day, 1 between, 2 where gap-filled
    between = ((np.asarray(time.day_of_year) - 1) % 8 != 0).astype(np.int8)
    composite_flag = np.where(albedo_filled == 1, 2, between[:, None, None]).astype(np.int8)

    dims3, dims2 = ("time", "lat", "lon"), ("lat", "lon")
    data = {"albedo_bsa": bsa, "albedo_wsa": wsa, "lst": lst, "albedo_filled": albedo_filled,
            "albedo_composite_flag": composite_flag, "lst_filled": lst_filled, "sm_era5land": era5, "sm_label": label, "elevation": elevation,
            "sand": sand, "clay": clay, "silt": silt, "land_mask": land}
    variables = {name: xr.Variable(dims3 if a.ndim == 3 else dims2, a, dict(CUBE_ATTRS[name]))
                 for name, a in data.items()}
    variables["platform"] = xr.Variable(("time",), platform, {"long_name": "AVHRR platform of the day"})
    ds = xr.Dataset(variables, coords={"time": time.values, "lat": dom.lat, "lon": dom.lon}, attrs=dict(_TOY_ATTRS))
    ds["time"].attrs.update(standard_name="time", long_name="time", axis="T")
    lat_lon_attrs(ds)
    if not with_truth:
        return ds
    sm[:, ocean] = np.nan
    truth = xr.DataArray(sm, dims=dims3, coords={"time": time.values, "lat": dom.lat, "lon": dom.lon},
                         name="sm_true", attrs={"units": "m3 m-3", "long_name": "true 0-5 cm soil moisture"})
    return ds, lat_lon_attrs(truth)
