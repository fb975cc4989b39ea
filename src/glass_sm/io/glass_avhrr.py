"""GLASS AVHRR daily albedo (GLASS02B05) and land surface temperature (GLASS08B31), HDF4.

File layout (``book/design.md``, "GLASS AVHRR albedo / LST"): one HDF4 file per day named
``GLASS02B05.V<vv>.A<YYYY><DDD>.<production YYYYDDD>.hdf`` (albedo) or ``GLASS08B31...`` (LST), anywhere below
the root folder (the usual tree is ``<root>/albedo/<YYYY>/`` and ``<root>/lst/<YYYY>/``).

Reading rules
-------------
- **Only the domain is read**: the row/column hyperslab of the requested :class:`~glass_sm.grid.Domain` is
  computed from the file's grid and only that slice is read (``sds[r0:r1, c0:c1]``), never the global field.
  The grid is global (3600 x 7200, 0.05 deg, north-west corner 90 N 180 W) unless the global attributes
  ``UpperLeftLatitude``/``UpperLeftLongitude`` (cell edges, degrees) and ``GridResolution`` (degrees) say the
  file is a sub-tile. A file without them whose shape is not 3600 x 7200 is read as a global grid of spacing
  180 / rows (a 1800 x 3600 file is 0.1 deg) and rejected by the resolution check.
- **Unpacking**: ``physical = stored * scale_factor + add_offset`` (either attribute may be missing: 1 and 0).
  Files written through the HDF4 calibration interface (``SDsetcal``, recognisable by a ``calibrated_nt``
  attribute) use the HDF4 convention ``scale_factor * (stored - add_offset)`` instead. Stored values equal to
  ``_FillValue`` or outside ``valid_range`` (or ``valid_min``/``valid_max``), in stored units, become NaN.
- **Quality control** (``qc`` argument, ``QC`` SDS, uint8): ``'cloud'`` (default) masks bit 0 (cloudy / not
  retrieved) and the QC fill value; ``'strict'`` also masks bit 1 (low quality); ``'none'`` does not read QC.
- **Units** are checked with :func:`glass_sm.io.errors.check_units` (policy in that module): LST is returned
  in K, albedo as a dimensionless fraction.
- **Missing days**: :func:`find_glass_files` raises :class:`~glass_sm.io.errors.TimeGapError` listing them,
  unless ``allow_gaps=True`` (the readers' default), in which case they are all-NaN days.
- **Duplicates**: when several files exist for one day, the highest version and then the latest production
  date wins.
- A day on which the whole domain is cloudy is fine; a *period* with no valid value at all raises
  :class:`~glass_sm.io.errors.EmptyDataError`.

A file that HDF4 cannot open raises :class:`~glass_sm.io.errors.CorruptFileError`. (HDF4 keeps such a file in
its table of open files until the process ends, so after repairing it, restart the process before reading it
again.)

Cost: opening a file, reading the attributes and two or three small slices takes about 0.2 ms per file for a
40 x 20 cell domain, so 40 years of daily files read in a few seconds.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
from pyhdf.error import HDF4Error
from pyhdf.SD import SD, SDC
from tqdm import tqdm

from glass_sm.grid import NCOLS, NROWS, Domain, lat_lon_attrs
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

__all__ = [
    "PRODUCTS",
    "QC_CLOUD",
    "QC_LOW_QUALITY",
    "find_glass_files",
    "glass_filename",
    "read_glass_albedo",
    "read_glass_lst",
]

#: product key -> GLASS short name (file-name prefix)
PRODUCTS = {"albedo": "GLASS02B05", "lst": "GLASS08B31"}
QC_CLOUD = 0b01  #: QC bit 0: cloudy / not retrieved
QC_LOW_QUALITY = 0b10  #: QC bit 1: low quality
_QC_BITS = {"cloud": QC_CLOUD, "strict": QC_CLOUD | QC_LOW_QUALITY, "none": 0}
_GRID_TOL = 1e-6  # degrees: resolution equality
_ALIGN_TOL = 1e-3  # cells: how close to a whole cell the domain's offset must be

QCPolicy = Literal["cloud", "strict", "none"]


def glass_filename(product: str, day: dt.date, version: int = 40, production: str = "2019001") -> str:
    """The GLASS file name of one day, e.g. ``GLASS02B05.V40.A1999032.2019001.hdf``.

    Parameters
    ----------
    product : {'albedo', 'lst'} or a GLASS short name
    day : datetime.date
    version : int
        Collection version (``V40``).
    production : str
        Production date ``YYYYDDD``.
    """
    short = _short_name(product)
    day = pd.Timestamp(day)
    return f"{short}.V{version:02d}.A{day.year:04d}{day.day_of_year:03d}.{production}.hdf"


def _short_name(product: str) -> str:
    if product in PRODUCTS:
        return PRODUCTS[product]
    if product.upper() in PRODUCTS.values():
        return product.upper()
    raise ValueError(f"unknown GLASS product {product!r}; valid: {', '.join(PRODUCTS)} "
                     f"(or {', '.join(PRODUCTS.values())})")


def find_glass_files(root: str | os.PathLike, product: str, start, end, allow_gaps: bool = False) -> pd.Series:
    """Find the daily GLASS HDF files of a product and period below a folder.

    The tree is searched recursively for ``<SHORT>.V*.A<YYYY><DDD>.*.hdf`` (case-insensitive); when a day
    has several files the highest version, then the latest production date, wins.

    Parameters
    ----------
    root : path-like
        Folder to search (e.g. the ``avhrr_dir`` holding ``albedo/`` and ``lst/``, or a product folder).
    product : {'albedo', 'lst'}
        ``'albedo'`` = GLASS02B05, ``'lst'`` = GLASS08B31 (the short names are accepted too).
    start, end : date-like
        First and last day, inclusive.
    allow_gaps : bool
        If False, raise :class:`TimeGapError` listing the days without a file; if True, those days hold
        ``None``.

    Returns
    -------
    pandas.Series
        Path (str) or None for every day, indexed by a daily ``DatetimeIndex`` named ``time``; the series'
        name is the short name.

    Raises
    ------
    MissingFileError
        ``root`` does not exist, or holds no file of the product in the period.
    TimeGapError
        Days without a file (``allow_gaps=False``).
    """
    short = _short_name(product)
    root = Path(root)
    days = pd.date_range(pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize(), freq="D", name="time")
    if len(days) == 0:
        raise ValueError(f"empty period: start {start} is after end {end}")
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "folder not found"
        raise MissingFileError(f"{what} (looking for {short} files)", file=root)
    pattern = re.compile(rf"^{short}\.V(\d+)\.A(\d{{4}})(\d{{3}})\.(\d+)\.hdf$", re.IGNORECASE)
    first, last = days[0], days[-1]
    best: dict[pd.Timestamp, tuple[tuple[int, int], str]] = {}
    same: dict[tuple, list[str]] = {}
    n_seen = 0
    for folder, _dirs, names in sorted(os.walk(root)):
        for name in names:
            m = pattern.match(name)
            if not m:
                continue
            n_seen += 1
            year, doy = int(m.group(2)), int(m.group(3))
            try:
                day = pd.Timestamp(dt.date(year, 1, 1) + dt.timedelta(days=doy - 1))
            except (ValueError, OverflowError):
                continue
            if doy < 1 or day.year != year or day < first or day > last:
                continue
            rank = (int(m.group(1)), int(m.group(4)))
            path = os.path.join(folder, name)
            if day in best and rank == best[day][0]:
                same.setdefault((day, rank), [best[day][1]]).append(path)
            elif day not in best or rank > best[day][0]:
                best[day] = (rank, path)
    # the same day, version and production date at two paths: which copy is right is undecidable -> error
    raise_duplicates({f"{d:%Y-%m-%d} V{r[0]} {r[1]}": p for (d, r), p in same.items() if best[d][0] == r},
                     f"{short} files", root)
    series = pd.Series([best[d][1] if d in best else None for d in days], index=days, name=short, dtype=object)
    if not best:
        seen = f"{n_seen} {short} file(s) outside the period" if n_seen else f"no {short}.V*.A<YYYY><DDD>.*.hdf file"
        raise MissingFileError(f"holds no {short} file for {first.date()}..{last.date()} (found {seen})",
                               file=root)
    missing = days[series.isna().to_numpy()]
    if len(missing) and not allow_gaps:
        raise TimeGapError(f"has no {short} file for {format_dates(missing)} in {first.date()}..{last.date()} "
                           "(pass allow_gaps=True to read them as all-NaN days)", file=root)
    return series


# ----------------------------------------------------------------------------------------------------------
# one file
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _FileGrid:
    north: float  # upper edge, degrees
    west: float  # left edge, degrees
    res: float  # degrees
    nrows: int
    ncols: int
    source: str  # how the grid was known, for messages

    def describe(self) -> str:
        south = self.north - self.nrows * self.res
        east = self.west + self.ncols * self.res
        return (f"{self.nrows} x {self.ncols} cells of {self.res:g} deg, lat {south:.3f}..{self.north:.3f}, "
                f"lon {self.west:.3f}..{east:.3f} ({self.source})")


def _file_grid(gattrs: dict, shape: Sequence[int], path: str, var: str) -> _FileGrid:
    nrows, ncols = int(shape[0]), int(shape[1])
    keys = ("UpperLeftLatitude", "UpperLeftLongitude", "GridResolution")
    present = [k for k in keys if k in gattrs]
    if present and len(present) < 3:
        missing = [k for k in keys if k not in gattrs]
        raise GridMismatchError(f"has geolocation attribute(s) {found_list(present)} but not {found_list(missing)}: "
                                "cannot place the sub-tile", file=path, variable=var)
    if present:
        try:
            north, west, res = (float(np.ravel(gattrs[k])[0]) for k in keys)
        except (TypeError, ValueError) as e:
            raise GridMismatchError(f"has unreadable geolocation attributes ({e})", file=path, variable=var) from None
        return _FileGrid(north, west, res, nrows, ncols, "UpperLeftLatitude/UpperLeftLongitude/GridResolution")
    res = 180.0 / nrows
    if abs(ncols * res - 360.0) > 1e-6:
        raise GridMismatchError(f"has no UpperLeftLatitude/UpperLeftLongitude/GridResolution attributes, so it "
                                f"should be a global grid ({NROWS} x {NCOLS}), but its shape is {nrows} x {ncols}",
                                file=path, variable=var)
    return _FileGrid(90.0, -180.0, res, nrows, ncols, "global grid, no geolocation attributes")


def _hyperslab(grid: _FileGrid, domain: Domain, path: str, var: str) -> tuple[int, int, int, int]:
    """Rows ``r0:r1`` and columns ``c0:c1`` of ``domain`` in the file's grid."""
    if abs(grid.res - domain.res) > _GRID_TOL:
        raise GridMismatchError(f"is on a {grid.res:g} deg grid but the domain needs {domain.res:g} deg "
                                f"(file grid: {grid.describe()})", file=path, variable=var)
    r0f = (grid.north - domain.north) / grid.res
    c0f = (domain.west - grid.west) / grid.res
    if abs(r0f - round(r0f)) > _ALIGN_TOL or abs(c0f - round(c0f)) > _ALIGN_TOL:
        raise GridMismatchError(f"grid is not aligned with the domain's cells (offset {r0f:.3f} rows, {c0f:.3f} "
                                f"columns; file grid: {grid.describe()})", file=path, variable=var)
    r0, c0 = int(round(r0f)), int(round(c0f))
    r1, c1 = r0 + domain.nrows, c0 + domain.ncols
    if r0 < 0 or c0 < 0 or r1 > grid.nrows or c1 > grid.ncols:
        raise GridMismatchError(f"does not cover the domain {domain.bounds_str()} (file grid: {grid.describe()})",
                                file=path, variable=var)
    return r0, r1, c0, c1


def _unpack(stored: np.ndarray, attrs: dict) -> np.ndarray:
    """Stored integers -> float32 physical values with fill / out-of-range as NaN."""
    bad = np.zeros(stored.shape, bool)
    fill = attrs.get("_FillValue")
    if fill is not None:
        bad |= stored == np.ravel(fill)[0]
    vr = attrs.get("valid_range")
    lo, hi = (np.ravel(vr)[:2] if vr is not None and np.size(vr) >= 2 else
              (attrs.get("valid_min"), attrs.get("valid_max")))
    if lo is not None:
        bad |= stored < np.ravel(lo)[0]
    if hi is not None:
        bad |= stored > np.ravel(hi)[0]
    scale = float(np.ravel(attrs.get("scale_factor", 1.0))[0])
    offset = float(np.ravel(attrs.get("add_offset", 0.0))[0])
    if "calibrated_nt" in attrs:  # HDF4 SDsetcal convention
        out = (stored.astype(np.float64) - offset) * scale
    else:
        out = stored.astype(np.float64) * scale + offset
    out = out.astype(np.float32)
    out[bad] = np.nan
    return out


def _read_file(path: str, sds_names: Sequence[str], domain: Domain, qc_bits: int, qc_name: str,
               expected: str, units_policy: UnitsPolicy) -> tuple[list[np.ndarray], str]:
    """Read the domain's slice of each SDS of one file; returns (arrays, satellite)."""
    try:
        sd = SD(path, SDC.READ)
    except HDF4Error as e:
        size = os.path.getsize(path) if os.path.exists(path) else None
        raise CorruptFileError(f"cannot be opened as HDF4 ({e}; {size} bytes): truncated or not an HDF4 file",
                               file=path) from None
    try:
        gattrs = sd.attributes()
        available = sd.datasets()
        arrays = []
        window = None
        wanted = list(sds_names) + ([qc_name] if qc_bits else [])
        for name in wanted:
            if name not in available:
                raise MissingVariableError(f"not found (found: {found_list(available)})", file=path, variable=name)
            shape = available[name][1]
            if len(shape) != 2:
                raise GridMismatchError(f"has {len(shape)} dimensions {tuple(shape)}; expected 2 (rows, columns)",
                                        file=path, variable=name)
            grid = _file_grid(gattrs, shape, path, name)
            slab = _hyperslab(grid, domain, path, name)
            if window is not None and slab != window:
                raise GridMismatchError(f"has shape {tuple(shape)} unlike the other SDS of the file", file=path,
                                        variable=name)
            window = slab
            r0, r1, c0, c1 = slab
            sds = sd.select(name)
            try:
                attrs = sds.attributes()
                stored = sds[r0:r1, c0:c1]
            finally:
                sds.endaccess()
            if name == qc_name and qc_bits:
                qc_fill = attrs.get("_FillValue", 255)
                bad = ((stored.astype(np.int64) & qc_bits) != 0) | (stored == np.ravel(qc_fill)[0])
                for a in arrays:
                    a[bad] = np.nan
                continue
            values = _unpack(np.asarray(stored), attrs)
            values = check_units(values, attrs, expected, path, name, policy=units_policy)
            arrays.append(np.asarray(values, dtype=np.float32))
        satellite = gattrs.get("Satellite", "")
        return arrays, str(satellite).strip() if satellite is not None else ""
    except DataError:
        raise
    except HDF4Error as e:
        raise CorruptFileError(f"cannot be read ({e}): truncated or damaged HDF4 file", file=path) from None
    finally:
        try:
            sd.end()
        except HDF4Error:  # pragma: no cover - closing a damaged file
            pass


def _read_series(root, product: str, start, end, domain: Domain, sds_names: Sequence[str], expected: str,
                 qc: QCPolicy, allow_gaps: bool, units_policy: UnitsPolicy, progress: bool,
                 qc_name: str = "QC"):
    if qc not in _QC_BITS:
        raise ValueError(f"qc must be one of {list(_QC_BITS)}, got {qc!r}")
    files = find_glass_files(root, product, start, end, allow_gaps=allow_gaps)
    nt = len(files)
    out = [np.full((nt, domain.nrows, domain.ncols), np.nan, np.float32) for _ in sds_names]
    platform = np.full(nt, "", dtype=object)
    paths = files.to_numpy()
    for i in tqdm(range(nt), disable=not progress, desc=f"{files.name} files", unit="file"):
        path = paths[i]
        if path is None:
            continue
        arrays, sat = _read_file(path, sds_names, domain, _QC_BITS[qc], qc_name, expected, units_policy)
        for o, a in zip(out, arrays):
            o[i] = a
        platform[i] = sat
    present = [p for p in paths if p is not None]
    for o, name in zip(out, sds_names):
        if not np.isfinite(o).any():
            raise EmptyDataError(
                f"has no valid value in {domain.bounds_str()} on any of {len(present)} day(s) "
                f"{files.index[0].date()}..{files.index[-1].date()} (all fill, outside valid_range or masked by "
                f"qc={qc!r}; files {Path(present[0]).name} .. {Path(present[-1]).name})",
                file=root, variable=name)
    return files, out, platform


def _coords(files: pd.Series, domain: Domain, platform: np.ndarray) -> dict:
    time = xr.Variable("time", files.index.to_numpy().astype("datetime64[ns]"),
                       {"standard_name": "time", "long_name": "time", "axis": "T"})
    coords = {"time": time, "lat": domain.lat, "lon": domain.lon}
    if any(platform):
        coords["platform"] = xr.Variable(
            "time", platform.astype(str),
            {"long_name": "AVHRR platform of the day (global attribute 'Satellite'; empty: no file)"})
    return coords


def _check_domain(domain) -> Domain:
    if not isinstance(domain, Domain):
        raise TypeError(f"domain must be a glass_sm.grid.Domain, got {type(domain).__name__}")
    return domain


def read_glass_albedo(root: str | os.PathLike, start, end, domain: Domain,
                      bands: Iterable[str] = ("shortwave",), allow_gaps: bool = True, qc: QCPolicy = "cloud",
                      units_policy: UnitsPolicy = "convert", progress: bool = True) -> xr.Dataset:
    """Read GLASS AVHRR daily black- and white-sky albedo (GLASS02B05) on a domain.

    Parameters
    ----------
    root : path-like
        Folder searched recursively for ``GLASS02B05.V*.A<YYYY><DDD>.*.hdf``.
    start, end : date-like
        First and last day, inclusive.
    domain : glass_sm.grid.Domain
        Cells to read (0.05 deg grid).
    bands : iterable of str
        Spectral bands: ``'shortwave'`` (SDS ``ABD_BSA_shortwave``/``ABD_WSA_shortwave`` -> ``albedo_bsa``,
        ``albedo_wsa``), ``'VIS'`` (-> ``albedo_bsa_vis``, ``albedo_wsa_vis``), any other ``<band>`` likewise.
    allow_gaps : bool
        Days without a file become all-NaN (True) or raise :class:`TimeGapError` (False).
    qc : {'cloud', 'strict', 'none'}
        QC masking policy (module docstring).
    units_policy : {'convert', 'raise'}
        Percent albedo is divided by 100 or rejected (:func:`glass_sm.io.errors.check_units`).
    progress : bool
        Show a tqdm progress bar over the files.

    Returns
    -------
    xarray.Dataset
        ``albedo_bsa``, ``albedo_wsa`` (and per-band variables) ``(time, lat, lon)`` float32, dimensionless
        (units ``1``), lat descending; coordinate ``platform(time)`` from the files' ``Satellite`` attribute.

    Raises
    ------
    MissingFileError, MissingVariableError, UnitsError, EmptyDataError, TimeGapError, GridMismatchError,
    CorruptFileError
        See :mod:`glass_sm.io.errors`; each names the file and the SDS.
    """
    domain = _check_domain(domain)
    bands = list(bands)
    if not bands:
        raise ValueError("bands is empty")
    sds_names, var_names, meta = [], [], []
    for band in bands:
        suffix = "" if band == "shortwave" else f"_{band.lower()}"
        for kind, sky in (("BSA", "black-sky"), ("WSA", "white-sky")):
            sds_names.append(f"ABD_{kind}_{band}")
            var_names.append(f"albedo_{kind.lower()}{suffix}")
            meta.append((sky, band))
    files, arrays, platform = _read_series(root, "albedo", start, end, domain, sds_names, "1", qc, allow_gaps,
                                           units_policy, progress)
    data_vars = {}
    for name, sds, arr, (sky, band) in zip(var_names, sds_names, arrays, meta):
        data_vars[name] = (("time", "lat", "lon"), arr, {
            "standard_name": "surface_albedo",
            "long_name": f"{sky} surface albedo, {band} band (GLASS02B05 AVHRR)",
            "units": "1",
            "source_variable": sds,
            "qc_policy": qc,
        })
    ds = xr.Dataset(data_vars, coords=_coords(files, domain, platform))
    ds.attrs.update(title="GLASS AVHRR daily albedo (GLASS02B05)", source=str(root),
                    history=f"read by glass_sm.io.glass_avhrr.read_glass_albedo from {int(files.notna().sum())} files",
                    Conventions="CF-1.8")
    return lat_lon_attrs(ds)


def read_glass_lst(root: str | os.PathLike, start, end, domain: Domain, allow_gaps: bool = True,
                   qc: QCPolicy = "cloud", units_policy: UnitsPolicy = "convert",
                   progress: bool = True) -> xr.DataArray:
    """Read GLASS AVHRR daily land surface temperature (GLASS08B31, SDS ``LST``) on a domain.

    Parameters
    ----------
    root : path-like
        Folder searched recursively for ``GLASS08B31.V*.A<YYYY><DDD>.*.hdf``.
    start, end : date-like
        First and last day, inclusive.
    domain : glass_sm.grid.Domain
        Cells to read (0.05 deg grid).
    allow_gaps : bool
        Days without a file become all-NaN (True) or raise :class:`TimeGapError` (False).
    qc : {'cloud', 'strict', 'none'}
        QC masking policy (module docstring).
    units_policy : {'convert', 'raise'}
        LST in degC is converted to K or rejected (:func:`glass_sm.io.errors.check_units`).
    progress : bool
        Show a tqdm progress bar over the files.

    Returns
    -------
    xarray.DataArray
        ``lst (time, lat, lon)`` float32 in K, lat descending; coordinate ``platform(time)``.

    Raises
    ------
    MissingFileError, MissingVariableError, UnitsError, EmptyDataError, TimeGapError, GridMismatchError,
    CorruptFileError
        See :mod:`glass_sm.io.errors`; each names the file and the SDS.
    """
    domain = _check_domain(domain)
    files, (arr,), platform = _read_series(root, "lst", start, end, domain, ["LST"], "K", qc, allow_gaps,
                                           units_policy, progress)
    da = xr.DataArray(arr, dims=("time", "lat", "lon"), coords=_coords(files, domain, platform), name="lst",
                      attrs={"standard_name": "surface_temperature",
                             "long_name": "land surface temperature (GLASS08B31 AVHRR)",
                             "units": "K", "source_variable": "LST", "qc_policy": qc, "source": str(root)})
    return lat_lon_attrs(da)
