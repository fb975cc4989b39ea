"""ERA5-Land volumetric soil water of layer 1 (``swvl1``, 0-7 cm): CDS netCDF (legacy and current) and GRIB.

:func:`read_era5land_swvl1` returns the daily mean on the native grid (0.1 deg for ERA5-Land), and
:func:`to_product_grid` interpolates it onto the product's 0.05 deg domain.

Accepted layouts (``book/design.md``, "ERA5-Land")
--------------------------------------------------
(a) **Legacy CDS netCDF** (``grib_to_netcdf``, before 2024): dims ``time, latitude, longitude``; ``swvl1`` int16
    packed with ``scale_factor``/``add_offset``, ``_FillValue``/``missing_value`` -32767, units ``m**3 m**-3``.
    Requests spanning final ERA5 and ERA5T rows have an extra ``expver`` *dimension* (1 = final, 5 = ERA5T,
    NaN in the row that has no data).
(b) **Current CDS netCDF** (2024 on): dims ``valid_time, latitude, longitude``; scalar (or size-1) ``number``;
    ``expver`` as a string coordinate along ``valid_time`` (``'0001'`` final, ``'0005'`` ERA5T).
(c) **GRIB** (editions 1 and 2) read through cfgrib (``engine='cfgrib'``, ``filter_by_keys={'shortName':
    'swvl1'}``, ``indexpath=''``: no ``.idx`` file is written next to possibly read-only data). A ``step``
    dimension (forecast-style archiving) is flattened into valid times.

The format is recognised from the file's first bytes, not its suffix. A truncated netCDF-3 file (which the
netCDF library opens without complaint, returning fill for the missing bytes) is caught by checking that every
variable of the header lies inside the file; truncated netCDF-4 files are refused by HDF5 itself. A folder is searched recursively for
``*.nc``, ``*.nc4``, ``*.grib``, ``*.grb``, ``*.grib2``, ``*.grb2``.

Processing rules
----------------
- **Where ERA5T and final ERA5 overlap, final wins** (an ``expver`` dimension is combined row by row, final
  first, ERA5T filling its gaps; duplicate time steps across files keep the final one). Any other
  ``expver`` ranks after both.
- **Longitudes** are converted to -180..180 and sorted ascending; **latitudes** are returned descending.
- **Domain**: with a ``domain`` only the source points needed to interpolate onto it are read: every point
  within one source grid spacing of the domain's edges (a :class:`~glass_sm.io.errors.GridMismatchError` if
  their cells do not contain the domain). For a grid that goes round the globe and a domain touching the
  dateline, the margin points from the other side keep continuous longitudes (e.g. 180.1), so that the
  interpolation sees real neighbours; every other longitude is in -180..180.
- **Sea**: when the file also holds a land-sea mask ``lsm`` (ERA5 single-level downloads; ERA5-Land files
  are already NaN over the sea), cells with ``lsm < 0.5`` are set to NaN (``mask_sea=True``).
- **Units** are checked by :func:`glass_sm.io.errors.check_units` (``m**3 m**-3`` and the other spellings of
  m3 m-3 are accepted; percent is converted or rejected by ``units_policy``; other units raise).
- **Small negative values**: the IFS land surface scheme produces slightly negative ``swvl1`` in very dry
  soils (the real 2010-01-01 ERA5 sample has -0.0033 m3 m-3 in the Sahara). Values in
  ``[-negative_tolerance, 0)`` are set to 0 (their count is in the ``n_negative_clipped`` attribute); values
  below ``-negative_tolerance`` raise :class:`~glass_sm.io.errors.DataError`.
- **Daily mean over UTC days** of all time steps of the day (4 for 6-hourly, 24 for hourly downloads),
  ignoring NaN steps per cell. Days with fewer steps than the other days are *kept*; the coordinate
  ``n_steps(time)`` gives the number of steps averaged each day (0 for a missing day), so a user can drop
  partial days; ``min_steps`` sets days with fewer steps to NaN.
- **Missing days** between ``start`` and ``end`` (or between the first and last day found) raise
  :class:`~glass_sm.io.errors.TimeGapError` unless ``allow_gaps=True``.

Memory: all selected steps are held at once (steps x cells x 4 bytes: 40 years of 6-hourly steps on a
20 x 30 point window is 140 MB); read long periods of large domains in pieces.
"""

from __future__ import annotations

import collections
import os
import threading
import warnings
from pathlib import Path
from typing import Literal

with warnings.catch_warnings():
    # pyproj must be loaded before ecCodes (cfgrib): both wheels bundle their own libproj/libcurl/libsqlite,
    # and with ecCodes first the interpreter aborts at exit ("double free or corruption"). The warning is
    # pyproj's own note about its data folder, irrelevant here.
    warnings.simplefilter("ignore")
    import pyproj  # noqa: F401

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from glass_sm.grid import Domain, lat_lon_attrs, nearest_index
from glass_sm.io.errors import (
    raise_duplicates,
    CorruptFileError,
    DataError,
    EmptyDataError,
    GridMismatchError,
    MissingFileError,
    MissingVariableError,
    TimeGapError,
    UnitsPolicy,
    check_units,
    format_dates,
    found_list,
)

__all__ = ["read_era5land_swvl1", "to_product_grid", "list_era5land_files"]

VAR = "swvl1"
_SUFFIXES = (".nc", ".nc4", ".netcdf", ".grib", ".grb", ".grib1", ".grb1", ".grib2", ".grb2")
_ATTRS = {
    "standard_name": "volume_fraction_of_condensed_water_in_soil",
    "long_name": "ERA5-Land volumetric soil water, layer 1 (0-7 cm), daily mean",
    "units": "m3 m-3",
    "cell_methods": "time: mean (interval: 1 day, UTC)",
    "source_variable": VAR,
}


# ----------------------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------------------
def list_era5land_files(paths_or_dir) -> list[Path]:
    """The files to read: a folder (searched recursively by suffix), one file, or a list of files.

    Raises
    ------
    MissingFileError
        A path does not exist, or a folder holds no netCDF/GRIB file.
    """
    if isinstance(paths_or_dir, (str, os.PathLike)):
        p = Path(paths_or_dir)
        if p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in _SUFFIXES)
            if not files:
                found = sorted(q.name for q in p.iterdir())
                raise MissingFileError(f"holds no netCDF/GRIB file ({', '.join('*' + s for s in _SUFFIXES)}); "
                                       f"found: {found_list(found)}", file=p)
            by_name: dict[str, list[Path]] = {}
            for q in files:
                by_name.setdefault(q.name, []).append(q)
            raise_duplicates(by_name, "ERA5-Land file names", p)
            return files
        paths = [p]
    else:
        paths = [Path(q) for q in paths_or_dir]
        if not paths:
            raise MissingFileError("no ERA5-Land file given (empty list)")
    for q in paths:
        if not q.is_file():
            raise MissingFileError("file not found" if not q.exists() else "is not a file", file=q,
                                   variable=VAR)
    return paths


def _sniff(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise CorruptFileError(f"cannot be read ({e})", file=path) from None
    if head[:4] == b"GRIB":
        return "grib"
    if head[:3] == b"CDF" or head[:8] == b"\x89HDF\r\n\x1a\n":
        return "netcdf"
    raise CorruptFileError(f"is neither netCDF nor GRIB (first bytes {head!r}, {path.stat().st_size} bytes)",
                           file=path)


def _check_netcdf3_complete(path: Path) -> None:
    """Raise CorruptFileError if a classic / 64-bit-offset netCDF file is shorter than its header says.

    The netCDF-C library opens a truncated netCDF-3 file without complaint and returns fill or garbage for the
    missing bytes; scipy's reader maps every variable onto the file (no data is read) and fails when a
    variable's bytes lie beyond the end of the file.
    """
    with open(path, "rb") as f:
        version = f.read(4)[3:4]
    if version not in (b"\x01", b"\x02"):  # CDF-5 is not understood by scipy: not checked
        return
    from scipy.io import netcdf_file  # noqa: PLC0415

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nc = netcdf_file(path, "r", mmap=True)
            nc.close()
    except Exception as e:  # noqa: BLE001
        raise CorruptFileError(f"cannot be opened as netcdf: the netCDF-3 header describes more data than the "
                               f"file's {path.stat().st_size} bytes hold, i.e. it is truncated ({e})",
                               file=path) from None


def _open(path: Path) -> tuple[xr.Dataset, xr.Dataset | None]:
    """(dataset holding swvl1, dataset holding lsm or None)."""
    kind = _sniff(path)
    if kind == "netcdf":
        _check_netcdf3_complete(path)
    try:
        if kind == "netcdf":
            ds = xr.open_dataset(path, engine="netcdf4", cache=False, decode_timedelta=True)
            lsm = ds if "lsm" in ds.data_vars else None
        else:
            kw = {"indexpath": ""}
            ds = xr.open_dataset(path, engine="cfgrib", cache=False, decode_timedelta=True,
                                 backend_kwargs={**kw, "filter_by_keys": {"shortName": VAR}})
            lsm = None
            if VAR in ds.data_vars:
                lsm = xr.open_dataset(path, engine="cfgrib", cache=False, decode_timedelta=True,
                                      backend_kwargs={**kw, "filter_by_keys": {"shortName": "lsm"}})
                lsm = lsm if "lsm" in lsm.data_vars else None
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - any backend failure on a damaged file
        raise CorruptFileError(f"cannot be opened as {kind} ({type(e).__name__}: {e}): truncated or damaged",
                               file=path) from None
    if VAR not in ds.data_vars:
        if kind == "grib":
            try:
                import cfgrib  # noqa: PLC0415

                found = sorted({v for d in cfgrib.open_datasets(str(path), backend_kwargs={"indexpath": ""})
                                for v in d.data_vars})
            except Exception:  # noqa: BLE001
                found = ["(cannot list the GRIB messages)"]
        else:
            found = list(ds.data_vars)
        ds.close()
        raise MissingVariableError(f"not found (found: {found_list(found)})", file=path, variable=VAR)
    return ds, lsm


#: Datasets kept open in this process by :func:`_open_kept`, most recently used last.
_KEPT: "collections.OrderedDict[tuple, tuple[xr.Dataset, xr.Dataset | None]]" = collections.OrderedDict()
KEEP_OPEN = 4  #: files :func:`_open_kept` keeps open per process
_KEPT_LOCK = threading.Lock()
BOX_READ_MAX = 2.0  #: read the selected rows x columns in one piece when its bounding box is at most this times larger


def _open_kept(path: Path) -> tuple[xr.Dataset, xr.Dataset | None]:
    """:func:`_open`, kept open in this process for the next reads of the same version of the file (keyed by path,
    inode, size and modification time; the :data:`KEEP_OPEN` most recently used files).

    A yearly or monthly file is read by every ingest block (or build tile) it overlaps, each for its own time
    steps: opening it (netCDF: the header and the coordinates, ~12 ms for the twin's yearly file; GRIB: cfgrib's
    scan of every message) each time cost more than the block's reading. A dropped dataset is closed by xarray's
    file manager when it is collected (not here: another thread of the worker may still be reading it)."""
    st = os.stat(path)
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    with _KEPT_LOCK:  # a worker's threads share the table
        opened = _KEPT.get(key)
        if opened is not None:
            _KEPT.move_to_end(key)
            return opened
    opened = _open(path)
    with _KEPT_LOCK:
        _KEPT[key] = opened
        while len(_KEPT) > KEEP_OPEN:
            _KEPT.popitem(last=False)
    return opened


# ----------------------------------------------------------------------------------------------------------
# one file -> (valid times, expver rank, values (n, lat, lon)) on the selected window
# ----------------------------------------------------------------------------------------------------------
def _expver_rank(value) -> int:
    """0 = final ERA5 ('0001', 1), 1 = ERA5T ('0005', 5), 2 = anything else."""
    if isinstance(value, bytes):
        value = value.decode()
    try:
        v = int(str(value).strip())
    except ValueError:
        return 2
    return {1: 0, 5: 1}.get(v, 2)


def _runs(mask: np.ndarray) -> list[slice]:
    """Contiguous runs of True as slices."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    stops = np.r_[idx[breaks], idx[-1]] + 1
    return [slice(int(a), int(b)) for a, b in zip(starts, stops)]


def _clean_coord(x: np.ndarray, dtype=None) -> np.ndarray:
    dtype = np.asarray(x).dtype if dtype is None else dtype
    return np.round(np.asarray(x, np.float64), 4 if np.dtype(dtype).itemsize <= 4 else 6)


def _spacing(x: np.ndarray) -> float:
    return float(np.median(np.abs(np.diff(x)))) if x.size > 1 else np.nan


def _read_file(path: Path, t0, t1, domain: Domain | None, mask_sea: bool, units_policy: UnitsPolicy,
               negative_tolerance: float):
    ds, lsm_ds = _open_kept(path)
    da = ds[VAR]
    latn = next((n for n in ("latitude", "lat") if n in da.dims), None)
    lonn = next((n for n in ("longitude", "lon") if n in da.dims), None)
    if latn is None or lonn is None:
        raise GridMismatchError(f"has dims {da.dims}: no latitude/longitude dimension", file=path, variable=VAR)
    # size-1 extra dims (number, surface level) go; larger ones other than the time axes are not ours
    for d in da.dims:
        if d in (latn, lonn, "time", "valid_time", "step", "expver"):
            continue
        if da.sizes[d] == 1:
            da = da.isel({d: 0})
        else:
            raise DataError(f"has a dimension {d!r} of size {da.sizes[d]} (e.g. an ensemble); expected one "
                            "deterministic field", file=path, variable=VAR)
    tdim = "valid_time" if "valid_time" in da.dims else ("time" if "time" in da.dims else None)
    if tdim is None:  # a single step: scalar time coordinate
        tname = "valid_time" if "valid_time" in da.coords else "time"
        if tname not in da.coords:
            raise MissingVariableError(f"has no time coordinate (coords: {found_list(da.coords)})", file=path,
                                       variable=VAR)
        da = da.expand_dims(tname)
        tdim = tname
    # valid times of every (time[, step]) element
    if "step" in da.dims:
        vt = (da[tdim].values[:, None] + da["step"].values[None, :]).astype("datetime64[ns]")
    elif "valid_time" in da.coords and da["valid_time"].dims == (tdim,):
        vt = da["valid_time"].values.astype("datetime64[ns]")
    else:
        vt = da[tdim].values.astype("datetime64[ns]")
        if "step" in da.coords and da["step"].ndim == 0:
            vt = vt + da["step"].values
    # time window
    keep = np.ones(vt.shape, bool)
    if t0 is not None:
        keep &= vt >= t0
    if t1 is not None:
        keep &= vt < t1
    rows = keep if keep.ndim == 1 else keep.any(axis=1)
    if not rows.any():
        return None
    r = np.flatnonzero(rows)
    tsel = slice(int(r[0]), int(r[-1]) + 1)
    # space window
    # coordinates are rounded to their storage precision so that 40.2 stays 40.2: float32 (legacy files,
    # 7 significant digits: 3e-5 deg at 360) to 1e-4 deg, float64 to 1e-6 deg
    lat = _clean_coord(da[latn].values)
    lon_raw = _clean_coord(da[lonn].values)
    lon = _clean_coord((lon_raw + 180.0) % 360.0 - 180.0, da[lonn].dtype)
    # longitudes sorted ascending in -180..180; a grid that goes round the globe is repeated at -360 and
    # +360 so that a domain touching the dateline gets its neighbours from the other side
    order = np.argsort(lon, kind="stable")
    lon_sorted = lon[order]
    global_lon = lon.size > 1 and abs(_spacing(lon_sorted) * lon.size - 360.0) < 1e-3
    if global_lon:
        lon_ext = np.concatenate([lon_sorted - 360.0, lon_sorted, lon_sorted + 360.0])
        idx_ext = np.concatenate([order, order, order])
    else:
        lon_ext, idx_ext = lon_sorted, order
    if domain is not None:
        m_lat = (_spacing(lat) if lat.size > 1 else 0.0) + 1e-6
        m_lon = (_spacing(lon_sorted) if lon.size > 1 else 0.0) + 1e-6
        lat_mask = (lat >= domain.south - m_lat) & (lat <= domain.north + m_lat)
        lon_mask = (lon_ext >= domain.west - m_lon) & (lon_ext <= domain.east + m_lon)
        if not lat_mask.any() or not lon_mask.any():
            raise GridMismatchError(
                f"does not cover the domain {domain.bounds_str()} (file: lat {lat.min():.3f}..{lat.max():.3f}, "
                f"lon {lon.min():.3f}..{lon.max():.3f} after conversion to -180..180)", file=path, variable=VAR)
    else:
        lat_mask = np.ones(lat.size, bool)
        lon_mask = np.zeros(lon_ext.size, bool)
        lon_mask[lon.size if global_lon else 0:][:lon.size] = True  # the -180..180 copy only
    lon_idx = idx_ext[lon_mask]
    sel_lon = _clean_coord(lon_ext[lon_mask])
    lat_runs = _runs(lat_mask)
    cut = np.flatnonzero(np.diff(lon_idx) != 1) + 1  # runs of consecutive file columns, in output order
    lon_runs = [slice(int(a[0]), int(a[-1]) + 1) for a in np.split(lon_idx, cut)]
    sel_lat = np.concatenate([lat[s] for s in lat_runs])
    if domain is not None:
        _check_covers(sel_lat, sel_lon, domain, path, VAR)
    order_dims = [tdim] + (["step"] if "step" in da.dims else []) + (["expver"] if "expver" in da.dims else [])

    # the runs' rows and columns are read in one piece (their bounding box) when it holds at most twice the
    # selected points: a global domain's columns come in three runs (the grid's last column, all of it, its first:
    # the margins across the dateline), and reading them one by one decompresses a chunked file's chunks three
    # times; a small domain across the dateline (its runs at both ends of the file) keeps one read per run
    box_lat = slice(lat_runs[0].start, lat_runs[-1].stop)
    box_lon = slice(min(c.start for c in lon_runs), max(c.stop for c in lon_runs))
    rows = np.concatenate([np.arange(r.start, r.stop) for r in lat_runs]) - box_lat.start
    cols = np.concatenate([np.arange(c.start, c.stop) for c in lon_runs]) - box_lon.start
    one_read = (box_lat.stop - box_lat.start) * (box_lon.stop - box_lon.start) <= BOX_READ_MAX * rows.size * cols.size

    def load(var: xr.DataArray) -> np.ndarray:
        var = var.transpose(*order_dims, latn, lonn) if set(order_dims) <= set(var.dims) else var
        if one_read:  # the same values as the runs' pieces below (decoding is elementwise), in their order
            box = np.asarray(var.isel({latn: box_lat, lonn: box_lon}).values, np.float32)
            return box[..., rows[:, None], cols[None, :]]
        blocks = []
        for ls in lat_runs:
            blocks.append(np.concatenate(
                [np.asarray(var.isel({latn: ls, lonn: cs}).values, np.float32) for cs in lon_runs], axis=-1))
        return np.concatenate(blocks, axis=-2)

    values = load(da.isel({tdim: tsel}))

    values = np.asarray(check_units(values, da.attrs, "m3 m-3", path, VAR, policy=units_policy), np.float32)
    if mask_sea and lsm_ds is not None:
        lsm = lsm_ds["lsm"]
        for d in lsm.dims:
            if d not in (latn, lonn, "expver"):
                lsm = lsm.isel({d: 0})
        if "expver" in lsm.dims:  # the mask is constant: take whichever expver row has it
            lsm = lsm.transpose("expver", latn, lonn)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                sea = np.nanmax(np.stack([load(lsm.isel(expver=k)) for k in range(lsm.sizes["expver"])]),
                                axis=0) < 0.5
        else:
            sea = load(lsm) < 0.5
        values[..., sea] = np.nan
    neg = values < 0
    n_neg = int(neg.sum())
    if n_neg:
        worst = float(np.nanmin(values))
        if worst < -negative_tolerance:
            raise DataError(f"has values down to {worst:.4g} m3 m-3, below -{negative_tolerance:g} "
                            "(negative_tolerance): not a rounding artefact", file=path, variable=VAR)
        values[neg] = 0.0
    # time-structure -> flat steps
    vt_sel = vt[tsel]
    keep_sel = keep[tsel]
    if "expver" in da.dims:  # legacy ERA5 + ERA5T request: combine rows, final first
        ranks = np.array([_expver_rank(v) for v in da["expver"].values])
        order = np.argsort(ranks, kind="stable")
        combined = np.full(values.shape[:-3] + values.shape[-2:], np.nan, np.float32)
        used_rank = np.full(values.shape[:-3], 9, np.int64)
        for k in order:
            row = values[..., k, :, :]
            fill = np.isnan(combined) & ~np.isnan(row)
            combined = np.where(fill, row, combined)
            has = np.isfinite(row).any(axis=(-2, -1))
            used_rank = np.where(has & (used_rank == 9), ranks[k], used_rank)
        values = combined
        step_rank = np.where(used_rank == 9, 2, used_rank)
    else:
        ev = ds.coords.get("expver", ds.data_vars.get("expver")) if "expver" in ds.variables else None
        if ev is not None and ev.ndim == 1 and ev.dims[0] == tdim:
            step_rank = np.array([_expver_rank(v) for v in ev.values[tsel]])
        elif ev is not None and ev.ndim == 0:
            step_rank = np.full(vt_sel.shape[0], _expver_rank(ev.values.item()))
        else:
            step_rank = np.zeros(vt_sel.shape[0], np.int64)
    if vt_sel.ndim == 2:  # (time, step) -> flat
        nt, ns = vt_sel.shape
        values = values.reshape(nt * ns, *values.shape[-2:])
        step_rank = np.repeat(step_rank, ns)
        vt_sel = vt_sel.reshape(-1)
        keep_sel = keep_sel.reshape(-1)
    values, vt_sel, step_rank = values[keep_sel], vt_sel[keep_sel], np.asarray(step_rank)[keep_sel]
    valid = ~np.isnat(vt_sel)
    return dict(times=vt_sel[valid], rank=step_rank[valid], values=values[valid], lat=sel_lat, lon=sel_lon,
                n_neg=n_neg, units=str(da.attrs.get("units", "")))


def read_era5land_swvl1(paths_or_dir, start=None, end=None, domain: Domain | None = None, *,
                        allow_gaps: bool = False, min_steps: int = 1, mask_sea: bool = True,
                        units_policy: UnitsPolicy = "convert", negative_tolerance: float = 0.01,
                        progress: bool = True) -> xr.DataArray:
    """Read ERA5-Land ``swvl1`` and return its daily mean on the native grid.

    Parameters
    ----------
    paths_or_dir : path-like or sequence of path-like
        A folder (searched recursively), one file or a list of files: CDS netCDF (legacy or current layout)
        or GRIB.
    start, end : date-like, optional
        First and last day (UTC), inclusive. Default: the first and last day in the files.
    domain : glass_sm.grid.Domain, optional
        Product domain (0.05 deg): only the source points within one source grid spacing of it are read.
        Default: the whole file.
    allow_gaps : bool
        Days of the period without any step become NaN (True) or raise :class:`TimeGapError` (False).
    min_steps : int
        Days averaged from fewer time steps become NaN (default 1: keep every day with data).
    mask_sea : bool
        Set cells with ``lsm < 0.5`` to NaN when the file carries a land-sea mask ``lsm``.
    units_policy : {'convert', 'raise'}
        Soil moisture in percent is divided by 100 or rejected (:func:`glass_sm.io.errors.check_units`).
    negative_tolerance : float
        Negative values down to ``-negative_tolerance`` m3 m-3 are set to 0; lower ones raise.
    progress : bool
        Show a tqdm progress bar over the files.

    Returns
    -------
    xarray.DataArray
        ``sm_era5land (time, lat, lon)`` float32 in m3 m-3: daily means (``time`` at 00 UTC of each day), lat
        descending, lon ascending in -180..180 (degrees); coordinate ``n_steps(time)`` = number of time
        steps averaged that day.

    Raises
    ------
    MissingFileError, MissingVariableError, UnitsError, EmptyDataError, TimeGapError, GridMismatchError,
    CorruptFileError, DataError
        See :mod:`glass_sm.io.errors`; each names the file and ``swvl1``.
    """
    files = list_era5land_files(paths_or_dir)
    day0 = None if start is None else pd.Timestamp(start).normalize()
    day1 = None if end is None else pd.Timestamp(end).normalize()
    if day0 is not None and day1 is not None and day0 > day1:
        raise ValueError(f"empty period: start {start} is after end {end}")
    t0 = None if day0 is None else np.datetime64(day0.to_datetime64(), "ns")
    t1 = None if day1 is None else np.datetime64((day1 + pd.Timedelta(days=1)).to_datetime64(), "ns")
    parts = []
    grid = None
    for path in tqdm(files, disable=not progress, desc="ERA5-Land files", unit="file"):
        part = _read_file(path, t0, t1, domain, mask_sea, units_policy, negative_tolerance)
        if part is None or part["times"].size == 0:
            continue
        if grid is None:
            grid = (part["lat"], part["lon"], path)
        elif part["lat"].shape != grid[0].shape or part["lon"].shape != grid[1].shape or not (
                np.allclose(part["lat"], grid[0], atol=1e-4) and np.allclose(part["lon"], grid[1], atol=1e-4)):
            raise GridMismatchError(
                f"grid ({part['lat'].size} x {part['lon'].size} points, lat {part['lat'].min():.3f}.."
                f"{part['lat'].max():.3f}, lon {part['lon'].min():.3f}..{part['lon'].max():.3f}) differs from "
                f"that of {grid[2]} ({grid[0].size} x {grid[1].size} points)", file=path, variable=VAR)
        parts.append(part)
    where = files[0].parent if len(files) > 1 else files[0]
    if not parts:
        raise TimeGapError(f"no {VAR} time step in {day0.date() if day0 is not None else '...'}.."
                           f"{day1.date() if day1 is not None else '...'} in {len(files)} file(s)",
                           file=where, variable=VAR)
    lat, lon = grid[0], grid[1]
    times = np.concatenate([p["times"] for p in parts])
    ranks = np.concatenate([p["rank"] for p in parts])
    values = np.concatenate([p["values"] for p in parts], axis=0)
    n_neg = sum(p["n_neg"] for p in parts)
    # one value per valid time: final ERA5 before ERA5T before anything else
    # (the values are copied only where an order or a selection changes them: _take)
    order = np.lexsort((ranks, times))
    times, values = times[order], _take(values, order, 0)
    first = np.r_[True, times[1:] != times[:-1]]
    times, values = times[first], _take(values, np.flatnonzero(first), 0)
    # spatial order: lat descending, lon ascending
    ilat = np.argsort(-lat, kind="stable")
    ilon = np.argsort(lon, kind="stable")
    lat, lon = lat[ilat], lon[ilon]
    values = _take(_take(values, ilat, 1), ilon, 2)
    _, ulon = np.unique(lon, return_index=True)
    if ulon.size != lon.size:  # a 0..360 grid holding both 0 and 360
        lon, values = lon[ulon], values[:, :, ulon]
    # daily mean over UTC days
    day_of = times.astype("datetime64[D]")
    udays, starts, n_steps = np.unique(day_of, return_index=True, return_counts=True)
    finite = np.isfinite(values)
    sums = np.add.reduceat(np.where(finite, values, 0.0).astype(np.float64), starts, axis=0)
    counts = np.add.reduceat(finite.astype(np.int32), starts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        daily = (sums / counts).astype(np.float32)
    daily[counts == 0] = np.nan
    daily[n_steps < min_steps] = np.nan
    full = pd.date_range(day0 if day0 is not None else pd.Timestamp(udays[0]),
                         day1 if day1 is not None else pd.Timestamp(udays[-1]), freq="D")
    pos = pd.Index(pd.DatetimeIndex(udays.astype("datetime64[ns]"))).get_indexer(full)
    missing = full[pos < 0]
    if len(missing) and not allow_gaps:
        raise TimeGapError(f"has no time step on {format_dates(missing)} (period {full[0].date()}.."
                           f"{full[-1].date()}; pass allow_gaps=True to get NaN days)", file=where, variable=VAR)
    out = np.full((len(full), lat.size, lon.size), np.nan, np.float32)
    out[pos >= 0] = daily[pos[pos >= 0]]
    steps = np.zeros(len(full), np.int16)
    steps[pos >= 0] = n_steps[pos[pos >= 0]]
    if not np.isfinite(out).any():
        raise EmptyDataError(f"has no valid value in {full[0].date()}..{full[-1].date()}"
                             + (f" on {domain.bounds_str()}" if domain is not None else "")
                             + " (all fill or sea)", file=where, variable=VAR)
    da = xr.DataArray(
        out, dims=("time", "lat", "lon"), name="sm_era5land",
        coords={
            "time": xr.Variable("time", full.to_numpy().astype("datetime64[ns]"),
                                {"standard_name": "time", "long_name": "day (UTC)", "axis": "T"}),
            "lat": lat, "lon": lon,
            "n_steps": xr.Variable("time", steps, {"long_name": "number of sub-daily steps averaged",
                                                   "units": "1"}),
        },
        attrs={**_ATTRS, "source": ", ".join(str(f) for f in files[:3]) + (" ..." if len(files) > 3 else ""),
               "n_negative_clipped": n_neg, "source_units": parts[0]["units"],
               "grid_spacing_deg": round(_spacing(lat), 6) if lat.size > 1 else np.nan},
    )
    return lat_lon_attrs(da)


def _take(a: np.ndarray, index: np.ndarray, axis: int) -> np.ndarray:
    """``np.take(a, index, axis)``, or ``a`` itself when ``index`` is ``0, 1, ..., n - 1`` over the whole axis (the
    same values, without the copy)."""
    if index.size == a.shape[axis] and (index.size == 0 or (index == np.arange(index.size)).all()):
        return a
    return np.take(a, index, axis=axis)


# ----------------------------------------------------------------------------------------------------------
# regridding
# ----------------------------------------------------------------------------------------------------------
def _linear_weights(src: np.ndarray, dst: np.ndarray):
    """Indices (i0, i1) into ``src`` and weight of i1 for linear interpolation, nearest beyond the ends."""
    asc = src.size < 2 or src[-1] > src[0]
    s = src if asc else src[::-1]
    if s.size == 1:
        z = np.zeros(dst.size, np.int64)
        return z, z, np.zeros(dst.size)
    t = np.clip(dst, s[0], s[-1])
    i0 = np.clip(np.searchsorted(s, t, side="right") - 1, 0, s.size - 2)
    w = (t - s[i0]) / (s[i0 + 1] - s[i0])
    i1 = i0 + 1
    if not asc:
        i0, i1 = s.size - 1 - i0, s.size - 1 - i1
    return i0, i1, w


def _check_covers(lat: np.ndarray, lon: np.ndarray, domain: Domain, file, variable) -> None:
    """GridMismatchError unless the source cells (points +- half a spacing) contain the domain."""
    hlat = _spacing(lat) / 2 if lat.size > 1 else 0.0
    hlon = _spacing(lon) / 2 if lon.size > 1 else 0.0
    tol = 1e-6
    s_lat, n_lat = lat.min() - hlat, lat.max() + hlat
    w_lon, e_lon = lon.min() - hlon, lon.max() + hlon
    if (domain.south < s_lat - tol or domain.north > n_lat + tol or domain.west < w_lon - tol
            or domain.east > e_lon + tol):
        raise GridMismatchError(
            f"covers lat {s_lat:.3f}..{n_lat:.3f}, lon {w_lon:.3f}..{e_lon:.3f} (cell edges), which does not "
            f"contain the domain {domain.bounds_str()}", file=file, variable=variable)


_REGRID_CELLS = 1 << 16  #: targets x steps regridded at once (float64 sums of 512 kB each: they stay in cache)


def to_product_grid(da: xr.DataArray, domain: Domain, method: Literal["bilinear", "nearest"] = "bilinear",
                    time_chunk: int = 366) -> xr.DataArray:
    """Interpolate a (time, lat, lon) field from its regular grid (e.g. ERA5-Land 0.1 deg) onto a domain.

    Bilinear (default): separable linear interpolation in latitude and longitude between the four source
    points around each target cell centre. NaN source points (sea) are left out and the weights of the valid
    ones renormalised, so coastal cells take the value of their land neighbours; a target with no valid
    neighbour is NaN. Targets beyond the outermost source points (at most half a source cell, inside the
    coverage check below) take the value at the border point along that axis (nearest extrapolation).

    Nearest: the value of the source point nearest to the target centre (for 0.1 -> 0.05 deg each source cell
    gives its value to the 2 x 2 target cells it contains).

    Parameters
    ----------
    da : xarray.DataArray
        ``(time, lat, lon)`` or ``(lat, lon)``, lat/lon in degrees (any order; lon in -180..180).
    domain : glass_sm.grid.Domain
        Target cells.
    method : {'bilinear', 'nearest'}
    time_chunk : int
        Most days interpolated at once (bounds memory). The bilinear method takes fewer when the domain is
        large: at most :data:`_REGRID_CELLS` target values (days x cells) at once, so that its float64 sums stay
        in the CPU cache (the values do not depend on either).

    Returns
    -------
    xarray.DataArray
        Same name, attributes (plus ``regrid_method``) and non-spatial coordinates, on ``domain.lat``,
        ``domain.lon``; float32.

    Raises
    ------
    GridMismatchError
        The source cells (points +- half a spacing) do not cover the domain.
    """
    if method not in ("bilinear", "nearest"):
        raise ValueError(f"method must be 'bilinear' or 'nearest', got {method!r}")
    lat = np.asarray(da["lat"].values, np.float64)
    lon = np.asarray(da["lon"].values, np.float64)
    hlat = _spacing(lat) / 2 if lat.size > 1 else 0.0
    hlon = _spacing(lon) / 2 if lon.size > 1 else 0.0
    _check_covers(lat, lon, domain, da.attrs.get("source"), da.name)
    tlat, tlon = domain.lat, domain.lon
    data = da.transpose(..., "lat", "lon")
    lead_dims = data.dims[:-2]
    arr = np.asarray(data.values, np.float32)
    flat = arr.reshape(-1, lat.size, lon.size)
    out = np.empty((flat.shape[0], tlat.size, tlon.size), np.float32)
    if method == "nearest":
        iy, ix = nearest_index(lat, tlat)[0], nearest_index(lon, tlon)[0]
        for a in range(0, flat.shape[0], time_chunk):
            out[a:a + time_chunk] = flat[a:a + time_chunk][:, iy][:, :, ix]
    else:
        y0, y1, wy = _linear_weights(lat, tlat)
        x0, x1, wx = _linear_weights(lon, tlon)
        corners = [(y0, x0, (1 - wy)[:, None] * (1 - wx)[None, :]), (y0, x1, (1 - wy)[:, None] * wx[None, :]),
                   (y1, x0, wy[:, None] * (1 - wx)[None, :]), (y1, x1, wy[:, None] * wx[None, :])]
        # each corner as one gather of flat source indices. Every corner adds its weighted value and its weight
        # for every target, with the invalid (NaN) source points set to 0 once on the source grid before the
        # gathers: an invalid corner adds +0.0 to both sums, which changes no partial sum (they start at +0.0 and
        # never become -0.0), so this equals adding the valid corners only (with a non-finite weight, from repeated
        # coordinates, 0 x w is NaN there, as it always was). When the block's valid points are the same at every
        # step (a fixed sea mask), the weight sums are computed once for one step and broadcast: the same
        # additions in the same order, so the same values.
        corners = [((iy[:, None] * lon.size + ix[None, :]).ravel(), w.ravel()) for iy, ix, w in corners]
        flat2 = flat.reshape(flat.shape[0], -1)
        out2 = out.reshape(out.shape[0], -1)
        # steps of at most _REGRID_CELLS targets at a time (within time_chunk): the float64 sums stay in cache
        step = max(1, min(int(time_chunk), _REGRID_CELLS // max(tlat.size * tlon.size, 1)))
        for a in range(0, flat.shape[0], step):
            block = flat2[a:a + step]
            ok = np.isfinite(block)
            src = block if ok.all() else np.where(ok, block, np.float32(0.0))
            fixed = bool((ok == ok[:1]).all())
            num = np.zeros((block.shape[0], tlat.size * tlon.size))
            den = np.zeros((1 if fixed else block.shape[0], tlat.size * tlon.size))
            term = np.empty_like(num)
            for idx, w in corners:
                np.multiply(np.take(src, idx, axis=1), w, out=term)
                num += term
                with np.errstate(invalid="ignore"):
                    den += np.take(ok[:1] if fixed else ok, idx, axis=1) * w
            with np.errstate(invalid="ignore", divide="ignore"):
                res = np.divide(num, den, out=num)
            res[np.broadcast_to(den <= 1e-9, res.shape)] = np.nan
            out2[a:a + step] = res
    out = out.reshape(*arr.shape[:-2], tlat.size, tlon.size)
    coords = {k: v for k, v in da.coords.items() if "lat" not in v.dims and "lon" not in v.dims}
    coords.update(lat=tlat, lon=tlon)
    res_da = xr.DataArray(out, dims=(*lead_dims, "lat", "lon"), coords=coords, name=da.name,
                          attrs={**da.attrs, "regrid_method": (
                              f"{method} from {2 * hlat:g} x {2 * hlon:g} deg to {domain.res:g} deg"
                              + (" (NaN neighbours left out, weights renormalised; nearest beyond the outermost "
                                 "points)" if method == "bilinear" else ""))})
    return lat_lon_attrs(res_da)
