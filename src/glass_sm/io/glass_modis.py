"""GLASS-MODIS surface soil moisture (daily GeoTIFF, ~1 km sinusoidal) aggregated to the 0.05 deg grid.

The GLASS-MODIS SM product (the training label of the paper, available from 2000-02-24, MODIS Terra) comes as
one single-band float32 GeoTIFF per day (``book/design.md``)::

    <glass_modis_dir>/<YYYY>/GLASS_MODIS_SM.A<YYYY><DDD>.tif      (flat folders are accepted too)

NoData ``-9999``, units m3 m-3, MODIS sinusoidal projection (any CRS that rasterio/PROJ reads is accepted).

Aggregation
-----------
For every distinct source grid (CRS, transform, size) met in the files, the mapping *source pixel -> 0.05 deg
cell* is computed **once**: the centres of the pixels of the window that covers the domain are transformed to
longitude/latitude with pyproj and binned into the domain's cells. A cell that contains no pixel centre (source
pixels coarser than the cell) takes the pixel under its own centre. Each day is then one windowed read and two
``np.bincount`` calls:

.. math::

    \\overline{SM}_c = \\frac{\\sum_{p \\in c} v_p\\, SM_p}{\\sum_{p \\in c} v_p},
    \\qquad v_p = 1 \\text{ if pixel } p \\text{ is valid (not NoData, finite)}

and the cell is NaN when fewer than ``min_valid_fraction`` of its pixels are valid (default 0.5: at least
half of the cell observed, so that a mean of one or two pixels at a coast or cloud edge does not pass as the
cell's value). Days without a file (before 2000-02-24, and gaps) are NaN.

Units follow the policy of :func:`glass_sm.io.errors.check_units`: a ``units`` tag (band or dataset metadata,
or the GDAL band unit) of m3 m-3 or none is taken as volumetric, ``%`` is divided by 100 (or rejected with
``units_policy='raise'``), anything else raises :class:`~glass_sm.io.errors.UnitsError`, and values above 1.5
in a volumetric file raise too (a percent file with a wrong tag).

Memory: the mapping holds two int64 arrays of the window's pixel count (about 16 bytes per source pixel); for a
domain of more than a few hundred thousand 0.05 deg cells call the reader per tile.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from dataclasses import dataclass
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
)

__all__ = [
    "read_glass_modis_sm",
    "find_glass_modis_files",
    "glass_modis_filename",
    "SM_LABEL_ATTRS",
    "MODIS_SM_START",
    "NODATA",
]

#: first day of the GLASS-MODIS SM record (MODIS Terra science data start)
MODIS_SM_START = dt.date(2000, 2, 24)
#: NoData value of the GeoTIFFs (used when a file declares none)
NODATA = -9999.0
#: CF attributes of the aggregated label
SM_LABEL_ATTRS = {
    "standard_name": "volume_fraction_of_condensed_water_in_soil",
    "long_name": "GLASS-MODIS surface soil moisture aggregated to 0.05 deg (training label)",
    "units": "m3 m-3",
    "valid_min": 0.0,
    "valid_max": 1.0,
}

_NAME_RE = re.compile(r"^GLASS_MODIS_SM\.A(\d{4})(\d{3})(?:\..*)?\.tiff?$", re.IGNORECASE)
_VARIABLE = "soil moisture (band {band})"


def glass_modis_filename(day: dt.date) -> str:
    """File name of one day: ``GLASS_MODIS_SM.A<YYYY><DDD>.tif``."""
    return f"GLASS_MODIS_SM.A{day.year:04d}{day.timetuple().tm_yday:03d}.tif"


def find_glass_modis_files(directory: str | os.PathLike, start: dt.date | None = None,
                           end: dt.date | None = None) -> dict[dt.date, Path]:
    """Daily GLASS-MODIS SM files under ``directory`` (``<YYYY>/`` subfolders or flat), by date.

    Parameters
    ----------
    directory : path-like
        Folder holding the files (searched recursively).
    start, end : datetime.date, optional
        Keep only days in ``[start, end]`` (inclusive).

    Returns
    -------
    dict
        ``{date: path}`` sorted by date. When a day has several files (a re-processed copy in another folder),
        the one in the ``<YYYY>`` folder wins, else the first in sorted order.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise MissingFileError(
            "folder not found (expected <YYYY>/GLASS_MODIS_SM.A<YYYY><DDD>.tif files; set data.glass_modis_dir)",
            file=directory, variable="sm_label",
        )
    found: dict[dt.date, list[Path]] = {}
    for path in sorted(directory.rglob("GLASS_MODIS_SM.A*")):
        m = _NAME_RE.match(path.name)
        if not m or not path.is_file():
            continue
        year, doy = int(m.group(1)), int(m.group(2))
        try:
            day = dt.date(year, 1, 1) + dt.timedelta(days=doy - 1)
        except (ValueError, OverflowError):
            continue
        if day.year != year:  # DDD beyond the year's length: not a valid name
            continue
        if (start and day < start) or (end and day > end):
            continue
        found.setdefault(day, []).append(path)
    raise_duplicates({f"{d:%Y-%m-%d}": v for d, v in found.items()}, "GLASS-MODIS SM days", directory)
    return {d: v[0] for d, v in sorted(found.items())}


# ----------------------------------------------------------------------------------------------------------
# The pixel -> cell mapping
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Mapping:
    """Where the pixels of one source grid go: ``pix`` (flat index in the window) -> ``cell`` (flat domain)."""

    window: "object"  # rasterio.windows.Window
    pix: np.ndarray
    cell: np.ndarray
    n_total: np.ndarray  # pixels mapped to each cell (float64, domain.size)


def _boundary_lonlat(domain: Domain, per_edge: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Points along the domain's edges (lon, lat), densified so curved projected edges are followed."""
    n = per_edge or max(5, min(400, max(domain.nrows, domain.ncols) + 1))
    lons = np.linspace(domain.west, domain.east, n)
    lats = np.linspace(domain.south, domain.north, n)
    lon = np.concatenate([lons, lons, np.full(n, domain.west), np.full(n, domain.east)])
    lat = np.concatenate([np.full(n, domain.south), np.full(n, domain.north), lats, lats])
    return lon, lat


def _build_mapping(ds, domain: Domain, path: Path, band: int) -> _Mapping:
    """Compute the window of ``ds`` covering ``domain`` and the pixel -> cell pairs (see module docstring)."""
    from pyproj import Transformer  # noqa: PLC0415
    from rasterio.windows import Window  # noqa: PLC0415

    variable = _VARIABLE.format(band=band)
    if ds.crs is None:
        raise GridMismatchError("has no CRS in the GeoTIFF (no georeferencing)", file=path, variable=variable)
    t = ds.transform
    if t.b != 0 or t.d != 0:
        raise GridMismatchError(f"has a rotated geotransform ({t}), not supported", file=path, variable=variable)
    to_src = Transformer.from_crs("EPSG:4326", ds.crs, always_xy=True)
    to_geo = Transformer.from_crs(ds.crs, "EPSG:4326", always_xy=True)

    # 1. does the raster cover the domain?  (boundary densified, in the source CRS)
    blon, blat = _boundary_lonlat(domain)
    bx, by = to_src.transform(blon, blat)
    bx, by = np.asarray(bx), np.asarray(by)
    left, bottom, right, top = ds.bounds
    tol_x, tol_y = abs(t.a), abs(t.e)
    outside = ~np.isfinite(bx) | ~np.isfinite(by) | (bx < left - tol_x) | (bx > right + tol_x) | \
        (by < bottom - tol_y) | (by > top + tol_y)
    if outside.any():
        raise GridMismatchError(
            f"does not cover the domain {domain.bounds_str()}: the raster's bounds are {left:.0f}, {bottom:.0f}, "
            f"{right:.0f}, {top:.0f} in {ds.crs.to_string()} ({int(outside.sum())} of {outside.size} points of "
            "the domain's boundary fall outside)",
            file=path, variable=variable,
        )

    # 2. window of the raster covering the domain (rounded outwards, one pixel margin, clipped)
    inv = ~t
    cols, rows = inv @ (bx, by)
    col0 = max(int(math.floor(np.min(cols))) - 1, 0)
    row0 = max(int(math.floor(np.min(rows))) - 1, 0)
    col1 = min(int(math.ceil(np.max(cols))) + 1, ds.width)
    row1 = min(int(math.ceil(np.max(rows))) + 1, ds.height)
    window = Window(col0, row0, col1 - col0, row1 - row0)
    h, w = row1 - row0, col1 - col0

    # 3. pixel centres -> lon/lat -> cell
    cc, rr = np.meshgrid(np.arange(col0, col1) + 0.5, np.arange(row0, row1) + 0.5)
    x, y = t @ (cc.ravel(), rr.ravel())
    lon, lat = to_geo.transform(x, y)
    lon, lat = np.asarray(lon), np.asarray(lat)
    r = np.floor((domain.north - lat) / domain.res)
    c = np.floor((lon - domain.west) / domain.res)
    inside = np.isfinite(r) & np.isfinite(c) & (r >= 0) & (r < domain.nrows) & (c >= 0) & (c < domain.ncols)
    pix = np.flatnonzero(inside)
    cell = (r[inside] * domain.ncols + c[inside]).astype(np.int64)

    # 4. cells without a pixel centre take the pixel under their own centre
    counts = np.bincount(cell, minlength=domain.size)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        lon_c = domain.lon[empty % domain.ncols]
        lat_c = domain.lat[empty // domain.ncols]
        xc, yc = to_src.transform(lon_c, lat_c)
        pc, pr = inv @ (np.asarray(xc), np.asarray(yc))
        pc = np.floor(pc).astype(np.int64) - col0
        pr = np.floor(pr).astype(np.int64) - row0
        ok = (pc >= 0) & (pc < w) & (pr >= 0) & (pr < h)
        if not ok.all():  # pragma: no cover - guarded by the coverage check above
            raise GridMismatchError(f"{int((~ok).sum())} domain cells fall outside the raster", file=path,
                                    variable=variable)
        pix = np.concatenate([pix, pr * w + pc])
        cell = np.concatenate([cell, empty])
        counts = np.bincount(cell, minlength=domain.size)
    return _Mapping(window=window, pix=pix.astype(np.int64), cell=cell, n_total=counts.astype(np.float64))


# ----------------------------------------------------------------------------------------------------------
# Units and values
# ----------------------------------------------------------------------------------------------------------
def _declared_units(ds, band: int) -> str | None:
    for tags in (ds.tags(band), ds.tags()):
        for key in ("units", "Units", "UNITS", "unit"):
            if tags.get(key):
                return str(tags[key])
    try:
        u = ds.units[band - 1]
    except (IndexError, TypeError):  # pragma: no cover - defensive
        u = None
    return u or None


# ----------------------------------------------------------------------------------------------------------
# The reader
# ----------------------------------------------------------------------------------------------------------
def read_glass_modis_sm(
    directory: str | os.PathLike,
    start: dt.date | str,
    end: dt.date | str,
    domain: Domain,
    progress: bool = True,
    min_valid_fraction: float = 0.5,
    band: int = 1,
    units_policy: UnitsPolicy = "convert",
) -> xr.DataArray:
    """Daily GLASS-MODIS soil moisture, mean-aggregated onto the 0.05 deg cells of ``domain``.

    Parameters
    ----------
    directory : path-like
        Folder with ``<YYYY>/GLASS_MODIS_SM.A<YYYY><DDD>.tif`` (or the files directly).
    start, end : datetime.date or str
        First and last day (inclusive).
    domain : glass_sm.grid.Domain
        Target 0.05 deg cells.
    progress : bool
        Show a tqdm progress bar over the files.
    min_valid_fraction : float
        Minimum fraction (0..1] of a cell's source pixels that must be valid for the cell to get a value;
        otherwise the cell is NaN. Default 0.5.
    band : int
        Band holding the soil moisture (1-based).
    units_policy : {'convert', 'raise'}
        A file tagged ``units=%`` is divided by 100 or rejected (:func:`glass_sm.io.errors.check_units`); a file
        without a ``units`` tag is read as m3 m-3.

    Returns
    -------
    xarray.DataArray
        ``sm_label`` (time, lat, lon), float32, m3 m-3, one step per day of ``[start, end]``, latitude
        descending; NaN where no file exists (before 2000-02-24, gaps) or too few pixels are valid.

    Raises
    ------
    MissingFileError
        The folder does not exist, or the period reaches past 2000-02-24 and no file of the period is found.
    MissingVariableError
        A file has no band ``band``.
    GridMismatchError
        A file has no CRS or does not cover the domain.
    UnitsError
        Units that are not volumetric (or percent under ``units_policy='raise'``), or values above 1.5 in a
        file that declares (or implies) m3 m-3.
    CorruptFileError
        A file cannot be opened or read (truncated, not a GeoTIFF).
    EmptyDataError
        No valid pixel at all over the domain in the whole period although files exist.
    """
    import rasterio  # noqa: PLC0415
    from rasterio.errors import RasterioError  # noqa: PLC0415

    if not 0 < min_valid_fraction <= 1:
        raise ValueError(f"min_valid_fraction must be in (0, 1], got {min_valid_fraction}")
    start = pd.Timestamp(start).date()
    end = pd.Timestamp(end).date()
    directory = Path(directory)
    times = pd.date_range(start, end, freq="D")
    files = find_glass_modis_files(directory, start, end)
    if not files and end >= MODIS_SM_START:
        raise MissingFileError(
            f"holds no GLASS_MODIS_SM.A<YYYY><DDD>.tif file for {max(start, MODIS_SM_START)}..{end}",
            file=directory, variable="sm_label",
        )

    out = np.full((len(times), domain.nrows, domain.ncols), np.nan, np.float32)
    mappings: dict[tuple, tuple] = {}  # grid -> (crs, mapping)
    n_valid_total = 0
    t0 = times[0]
    variable = _VARIABLE.format(band=band)
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", GDAL_PAM_ENABLED="NO"):
        for day, path in tqdm(files.items(), desc="GLASS-MODIS SM", unit="file", disable=not progress):
            try:
                ds = rasterio.open(path)
            except (RasterioError, OSError) as e:
                raise CorruptFileError(f"cannot be opened as a GeoTIFF ({e})", file=path, variable=variable) from e
            with ds:
                if ds.count < band:
                    raise MissingVariableError(f"not found: the file has {ds.count} band(s)", file=path,
                                               variable=variable)
                crs = ds.crs
                key = (tuple(ds.transform), ds.width, ds.height)
                cached = mappings.get(key)
                if cached is None or cached[0] != crs:
                    cached = mappings[key] = (crs, _build_mapping(ds, domain, path, band))
                mapping = cached[1]
                units = _declared_units(ds, band)
                try:
                    arr = ds.read(band, window=mapping.window)
                except (RasterioError, OSError) as e:
                    raise CorruptFileError(f"cannot be read ({e})", file=path, variable=variable) from e
                nodata = ds.nodatavals[band - 1]
                scale = ds.scales[band - 1] if ds.scales else 1.0
                offset = ds.offsets[band - 1] if ds.offsets else 0.0
            flat = arr.ravel()
            valid = np.isfinite(flat) if np.issubdtype(flat.dtype, np.floating) else np.ones(flat.shape, bool)
            valid &= flat != (NODATA if nodata is None else nodata)
            values = flat.astype(np.float64)
            if scale not in (None, 1.0) or offset not in (None, 0.0):
                values = values * (scale or 1.0) + (offset or 0.0)
            values = np.where(valid, values, np.nan)
            values = check_units(values, {"units": units} if units is not None else {}, "m3 m-3", path,
                                 variable, policy=units_policy)
            ok = valid[mapping.pix]
            v = np.where(ok, values[mapping.pix], 0.0)
            s = np.bincount(mapping.cell, weights=v, minlength=domain.size)
            n = np.bincount(mapping.cell, weights=ok, minlength=domain.size)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = s / n
            mean[(n == 0) | (n < min_valid_fraction * mapping.n_total - 1e-9)] = np.nan
            n_valid_total += int(np.isfinite(mean).sum())
            out[(pd.Timestamp(day) - t0).days] = mean.reshape(domain.shape)
    if files and n_valid_total == 0:
        first, last = next(iter(files.values())), list(files.values())[-1]
        raise EmptyDataError(
            f"is NoData over the domain {domain.bounds_str()} in all {len(files)} files ({first.name} .. "
            f"{last.name})",
            file=directory, variable=variable,
        )

    da = xr.DataArray(out, dims=("time", "lat", "lon"),
                      coords={"time": times, "lat": domain.lat, "lon": domain.lon}, name="sm_label")
    da.attrs.update(SM_LABEL_ATTRS)
    da.attrs.update(
        source=f"GLASS-MODIS SM GeoTIFFs in {directory}",
        cell_methods="area: mean (over valid source pixels)",
        min_valid_fraction=float(min_valid_fraction),
        n_files=len(files),
    )
    da["time"].attrs.update(standard_name="time", long_name="time", axis="T")
    return lat_lon_attrs(da)
