"""ESA CCI Soil Moisture (COMBINED, 0.25 deg, daily) for the product intercomparison of stage 05.

Real files, one per day, usually in yearly folders (CCI SM v0X.Y, https://climate.esa.int/en/projects/soil-moisture/)::

    <esa_cci_dir>/[<YYYY>/]ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-<YYYYMMDD>000000-fv0X.Y.nc

each with dims ``time`` (1), ``lat`` (720, descending), ``lon`` (1440), variable ``sm`` (float32, m3 m-3,
``_FillValue`` -9999), ``sm_uncertainty``, ``flag`` (0 = no inconsistency detected) and further per-retrieval
variables. The synthetic twin writes one file per year with the same variables and a longer ``time``
dimension::

    <esa_cci_dir>/ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-<YYYY>-fv08.1.nc

Both are read here and returned at the native 0.25 deg resolution, on the cells overlapping the domain (no
regridding here: stage 05 puts it on the product grid, see :mod:`glass_sm.evaluation.intercompare`). Reading the whole
grid (``domain=None``) holds 4 MB per day in memory.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from glass_sm.grid import Domain, lat_lon_attrs
from glass_sm.io.errors import (
    raise_duplicates,
    CorruptFileError,
    EmptyDataError,
    GridMismatchError,
    MissingFileError,
    MissingVariableError,
    UnitsPolicy,
    check_units,
    found_list,
)

__all__ = ["read_esa_cci_sm", "find_esa_cci_files", "esa_cci_daily_filename", "SM_CCI_ATTRS"]

SM_CCI_ATTRS = {
    "standard_name": "volume_fraction_of_condensed_water_in_soil",
    "long_name": "ESA CCI SM COMBINED volumetric surface soil moisture",
    "units": "m3 m-3",
    "valid_min": 0.0,
    "valid_max": 1.0,
}
_DAILY_RE = re.compile(r"^ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-(\d{8})\d{6}-fv(\d+\.\d+)\.nc$")
_YEARLY_RE = re.compile(r"^ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-(\d{4})-fv(\d+\.\d+)\.nc$")


def esa_cci_daily_filename(day: dt.date, version: str = "08.1") -> str:
    """Real daily file name: ``ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-<YYYYMMDD>000000-fv<version>.nc``."""
    return f"ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-{day:%Y%m%d}000000-fv{version}.nc"


def find_esa_cci_files(directory: str | os.PathLike, start: dt.date, end: dt.date) -> list[Path]:
    """ESA CCI SM COMBINED files (daily or yearly) under ``directory`` that overlap ``[start, end]``.

    Where several product versions hold the same day, the highest version wins.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise MissingFileError("folder not found (set data.esa_cci_dir)", file=directory, variable="sm")
    daily: dict[dt.date, tuple[tuple, Path]] = {}
    yearly: dict[int, tuple[tuple, Path]] = {}
    same: dict[str, list[Path]] = {}
    for path in sorted(directory.rglob("ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-*.nc")):
        if m := _DAILY_RE.match(path.name):
            try:
                day = dt.datetime.strptime(m.group(1), "%Y%m%d").date()
            except ValueError:
                continue
            if start <= day <= end:
                ver = tuple(int(x) for x in m.group(2).split("."))
                if day in daily and ver == daily[day][0]:
                    same.setdefault(f"{day} v{m.group(2)}", [daily[day][1]]).append(path)
                elif day not in daily or ver > daily[day][0]:
                    daily[day] = (ver, path)
        elif m := _YEARLY_RE.match(path.name):
            year = int(m.group(1))
            if start.year <= year <= end.year:
                ver = tuple(int(x) for x in m.group(2).split("."))
                if year in yearly and ver == yearly[year][0]:
                    same.setdefault(f"{year} v{m.group(2)}", [yearly[year][1]]).append(path)
                elif year not in yearly or ver > yearly[year][0]:
                    yearly[year] = (ver, path)
    raise_duplicates(same, "ESA CCI SM files", directory)
    files = [p for _, (_, p) in sorted(yearly.items())]
    files += [p for d, (_, p) in sorted(daily.items()) if d.year not in yearly]
    return files


def _open(path: Path) -> xr.Dataset:
    """Open with an explicit engine: letting xarray probe every installed backend loads cfgrib's bundled
    libraries before pyproj's, which crashes the interpreter at exit (cfgrib 0.9.15 / pyproj 3.7 wheels)."""
    errors = []
    for engine in ("netcdf4", "h5netcdf"):
        try:
            return xr.open_dataset(path, engine=engine, mask_and_scale=True, decode_times=True, cache=False)
        except Exception as e:  # netCDF4/h5netcdf raise OSError, ValueError, RuntimeError ... on bad files
            errors.append(f"{engine}: {type(e).__name__}: {e}")
    raise CorruptFileError(f"cannot be opened as netCDF ({'; '.join(errors)})", file=path, variable="sm")


def _box_indices(coord: np.ndarray, lo: float, hi: float, res: float) -> np.ndarray:
    """Indices of cells (centres ``coord``, spacing ``res``) that overlap ``(lo, hi)`` with positive length."""
    return np.flatnonzero((coord > lo - res / 2 + 1e-9) & (coord < hi + res / 2 - 1e-9))


def read_esa_cci_sm(
    directory: str | os.PathLike,
    start: dt.date | str,
    end: dt.date | str,
    domain: Domain | None = None,
    progress: bool = True,
    drop_flagged: bool = False,
    units_policy: UnitsPolicy = "convert",
) -> xr.DataArray:
    """ESA CCI SM COMBINED soil moisture at its native 0.25 deg grid, cut to the domain's box.

    Parameters
    ----------
    directory : path-like
        Folder with the daily (real) or yearly (twin) netCDF files, searched recursively.
    start, end : datetime.date or str
        First and last day (inclusive).
    domain : glass_sm.grid.Domain, optional
        Box to cut: the 0.25 deg cells overlapping it. ``None`` keeps the files' whole grid.
    progress : bool
        tqdm progress bar over the files.
    drop_flagged : bool
        Also mask values whose ``flag`` is not 0 (the product already masks most of them).
    units_policy : {'convert', 'raise'}
        ``sm`` in percent is divided by 100 or rejected (:func:`glass_sm.io.errors.check_units`).

    Returns
    -------
    xarray.DataArray
        ``sm_cci`` (time, lat, lon), float32, m3 m-3, one step per day of ``[start, end]`` (NaN on days without
        a file), latitude descending, longitude -180..180.

    Raises
    ------
    MissingFileError
        Folder missing, or no file for the period.
    MissingVariableError
        A file lacks ``sm`` (or ``flag`` with ``drop_flagged``).
    UnitsError
        ``sm`` units are not volumetric (percent only under ``units_policy='raise'``), or contradict the values.
    GridMismatchError
        The files' grid does not cover the domain.
    CorruptFileError
        A file cannot be opened or read.
    EmptyDataError
        ``sm`` is missing (fill value) everywhere in the box for the whole period.
    """
    start = pd.Timestamp(start).date()
    end = pd.Timestamp(end).date()
    directory = Path(directory)
    files = find_esa_cci_files(directory, start, end)
    if not files:
        raise MissingFileError(
            f"holds no ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-<YYYYMMDD>000000-fv*.nc (or -<YYYY>-fv*.nc) file "
            f"for {start}..{end}",
            file=directory, variable="sm",
        )
    times = pd.date_range(start, end, freq="D")
    pieces = []
    grid = None  # (lat, lon) of the cut, from the first file
    for path in tqdm(files, desc="ESA CCI SM", unit="file", disable=not progress):
        ds = _open(path)
        with ds:
            if "sm" not in ds.variables:
                raise MissingVariableError(f"not found (found: {found_list(sorted(map(str, ds.data_vars)))})",
                                           file=path, variable="sm")
            sm = ds["sm"]
            sm_attrs = dict(sm.attrs)
            lat_name = next((n for n in ("lat", "latitude") if n in sm.dims), None)
            lon_name = next((n for n in ("lon", "longitude") if n in sm.dims), None)
            if lat_name is None or lon_name is None or "time" not in sm.dims:
                raise GridMismatchError(f"has dims {sm.dims}, expected (time, lat, lon)", file=path, variable="sm")
            sm = sm.rename({lat_name: "lat", lon_name: "lon"})
            if drop_flagged:
                if "flag" not in ds.variables:
                    raise MissingVariableError("not found (needed by drop_flagged=True)", file=path,
                                               variable="flag")
                flag = ds["flag"].rename({lat_name: "lat", lon_name: "lon"})
                sm = sm.where(flag.fillna(0) == 0)
            lon = sm["lon"].values
            if lon.max() > 180:
                sm = sm.assign_coords(lon=((lon + 180) % 360) - 180).sortby("lon")
            sm = sm.sortby("lat", ascending=False)
            if domain is not None:
                lat, lon = sm["lat"].values, sm["lon"].values
                res_lat = float(np.median(np.abs(np.diff(lat)))) if lat.size > 1 else 0.25
                res_lon = float(np.median(np.abs(np.diff(lon)))) if lon.size > 1 else 0.25
                covered = (lat.max() + res_lat / 2 >= domain.north - 1e-6 and lat.min() - res_lat / 2 <= domain.south
                           + 1e-6 and lon.max() + res_lon / 2 >= domain.east - 1e-6
                           and lon.min() - res_lon / 2 <= domain.west + 1e-6)
                if not covered:
                    raise GridMismatchError(
                        f"does not cover the domain {domain.bounds_str()}: its cell centres span lat "
                        f"{lat.min():.3f}..{lat.max():.3f}, lon {lon.min():.3f}..{lon.max():.3f}",
                        file=path, variable="sm",
                    )
                iy = _box_indices(lat, domain.south, domain.north, res_lat)
                ix = _box_indices(lon, domain.west, domain.east, res_lon)
                sm = sm.isel(lat=iy, lon=ix)
            sm = sm.sel(time=slice(pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta("1D") - pd.Timedelta("1ns")))
            try:
                values = sm.values.astype(np.float32)
            except Exception as e:  # HDF errors on truncated files
                raise CorruptFileError(f"cannot be read ({type(e).__name__}: {e})", file=path, variable="sm") from e
            values = check_units(values, sm_attrs, "m3 m-3", path, "sm", policy=units_policy).astype(np.float32)
            t = pd.DatetimeIndex(sm["time"].values).normalize()
            this_grid = (sm["lat"].values, sm["lon"].values)
            if grid is None:
                grid = this_grid
            elif grid[0].shape != this_grid[0].shape or grid[1].shape != this_grid[1].shape or \
                    not (np.allclose(grid[0], this_grid[0]) and np.allclose(grid[1], this_grid[1])):
                raise GridMismatchError(f"is on another grid than in the first file {files[0]}", file=path,
                                        variable="sm")
            pieces.append((t, values))
    out = np.full((len(times), grid[0].size, grid[1].size), np.nan, np.float32)
    for t, values in pieces:
        idx = times.get_indexer(t)
        ok = idx >= 0
        out[idx[ok]] = values[ok]
    if not np.isfinite(out).any():
        raise EmptyDataError(f"has no valid value in {len(files)} file(s) ({files[0].name} ..) over "
                             f"{domain.bounds_str() if domain else 'the grid'}", file=directory, variable="sm")
    da = xr.DataArray(out, dims=("time", "lat", "lon"),
                      coords={"time": times, "lat": grid[0].astype(np.float64), "lon": grid[1].astype(np.float64)},
                      name="sm_cci")
    da.attrs.update(SM_CCI_ATTRS, source=f"ESA CCI SM COMBINED files in {directory}", n_files=len(files))
    if drop_flagged:
        da.attrs["comment"] = "values with flag != 0 masked"
    da["time"].attrs.update(standard_name="time", long_name="time", axis="T")
    return lat_lon_attrs(da)
