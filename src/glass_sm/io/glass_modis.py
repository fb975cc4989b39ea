"""GLASS-MODIS surface soil moisture (daily GeoTIFF, ~1 km sinusoidal) aggregated to the 0.05 deg grid.

What the evidence says (``shared/REAL_FORMATS.md``): the GLASS-MODIS SM product (the training label of the
paper) is global, 1 km, daily, 0-5 cm volumetric, **2000-2020**, GeoTIFF in the **sinusoidal** projection with
NoData **-9999** (ESSD 15, 2055, 2023; NCDC record; confidence high). Its first day is NOT FOUND (the
MODIS-based GLASS LST starts 2000-055, i.e. 2000-02-24, which is the default ``period.label_start``); the last
day is 2020-12-31 (``period.label_end``): days after it have no label.

File naming, tiling, data type, scale: NOT FOUND (unverified)
-------------------------------------------------------------
Nothing public shows a real file's name, whether the product is a global mosaic or MODIS h/v tiles, its data
type or its scale. Every MODIS-based GLASS product seen is tiled
(``.../MODIS/Daily/1KM/<YYYY>/<DDD>/GLASS06A01.V01.A2000055.h08v05.2022021.hdf``), so each of these is a
parameter, and the reader takes every variant:

* **name** (``pattern``, ``data.glass_modis_pattern``): a regular expression with the named groups ``year``
  (4 digits) and ``doy`` (day of year, 3 digits), optionally ``tile`` (which part of the globe the file holds)
  and ``production`` (a production date: of two files of one day and tile, the newest wins), matched against
  the file name (case-insensitive) anywhere below the folder; or the name of a preset of :data:`NAME_PATTERNS`:

  - ``'default'``: ``GLASS_MODIS_SM.A<YYYY><DDD>[.h<HH>v<VV>][.<YYYYDDD>][.<anything>].tif`` (the twin's
    names; a MODIS tile or a production date right after the date are recognised);
  - ``'modis_tiled'``: ``GLASS<anything>.V<NN>.A<YYYY><DDD>.h<HH>v<VV>[.<YYYYDDD>].tif`` (the naming of the
    other MODIS-based GLASS products, with ``.tif``).

  Check a real file's name against the pattern before a run: ``find_glass_modis_files(folder, pattern=...)``.
* **tiles**: every file of a day contributes its pixels (see Aggregation); a file whose raster does not reach
  the domain is skipped (counted in ``n_files_outside_domain``). Two files of the same day and tile (same
  ``tile`` group, or without one the same name) are :class:`~glass_sm.io.errors.DuplicateFileError`, as are
  two files of one day whose rasters (in the same CRS) overlap by more than half a pixel (the same area twice);
  two files of one day with different names and no ``tile`` group are two tiles.
* **data type and scale** (``scale``, ``data.glass_modis_scale``): physical = stored x scale + offset. The
  file's own scale/offset (GDAL band scale/offset, or ``scale_factor``/``add_offset`` tags) is used when it
  declares one (a scale of 1 or an offset of 0 count as none); otherwise ``scale`` (default 1: the stored values
  are m3 m-3, e.g. float32; an int16 file of 0..10000 needs ``scale=1e-4``). A ``scale`` other than 1 that
  contradicts the file's own is an error, and so is an integer file without any scale whose values exceed 1.5.
* **NoData**: -9999 (the product's documented NoData) is always invalid, and so is the NoData value the file
  declares, if another one; non-finite values too.

Aggregation
-----------
For every distinct source grid (CRS, transform, size) met in the files, the mapping *source pixel -> 0.05 deg
cell* is computed **once**: the centres of the pixels of the window of the raster that covers the domain (all
of the domain, or its part in a tile) are transformed to longitude/latitude with pyproj and binned into the
domain's cells. A cell that contains no pixel centre of a grid but whose own centre lies in that grid (source
pixels coarser than the cell) takes the pixel under its centre. Each day is then one windowed read per file
and two ``np.bincount`` calls per file over its valid pixels, summed over all files of the day:

.. math::

    \\overline{SM}_c = \\frac{\\sum_{p \\in c} v_p\\, SM_p}{\\sum_{p \\in c} v_p},
    \\qquad v_p = 1 \\text{ if pixel } p \\text{ is valid (not NoData, finite)}

where :math:`p` runs over the pixels of every file of the day. The cell is NaN when fewer than
``min_valid_fraction`` (default 0.5) of its pixels are valid, its pixels being those of **every source grid met
in the period**: a tile missing on one day counts as invalid pixels, so a cell half in that tile is as
incomplete as a cell half NoData. Cells that no file of the period covers are NaN, counted in the output's
``n_cells_not_covered`` attribute and reported by a warning. Days without a file (before ``label_start``,
after ``label_end``, gaps) are NaN.

Units follow the policy of :func:`glass_sm.io.errors.check_units`: a ``units`` tag (band or dataset metadata,
or the GDAL band unit) of m3 m-3 or none is taken as volumetric, ``%`` is divided by 100 (or rejected with
``units_policy='raise'``), anything else raises :class:`~glass_sm.io.errors.UnitsError`, and values above 1.5
in a volumetric file raise too (a percent file with a wrong tag).

Memory: a mapping holds one int64 array of its window's pixel count (8 bytes per source pixel); while
reading, the valid-pixel counts of each label day are kept next to the output (one more float32 array of the
output's size). For a domain of more than a few hundred thousand 0.05 deg cells call the reader per tile.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from glass_sm.grid import Domain, lat_lon_attrs
from glass_sm.io.errors import (
    raise_duplicates,
    CorruptFileError,
    DuplicateFileError,
    EmptyDataError,
    GridMismatchError,
    MissingFileError,
    MissingVariableError,
    UnitsError,
    UnitsPolicy,
    check_units_on_probe,
)

__all__ = [
    "read_glass_modis_sm",
    "find_glass_modis_files",
    "glass_modis_filename",
    "compile_name_pattern",
    "NAME_PATTERNS",
    "SM_LABEL_ATTRS",
    "MODIS_SM_START",
    "MODIS_SM_END",
    "NODATA",
]

#: first day of the GLASS-MODIS SM record (NOT FOUND; the MODIS-based GLASS LST starts 2000-02-24)
MODIS_SM_START = dt.date(2000, 2, 24)
#: last day of the GLASS-MODIS SM record (ESSD 15, 2055, 2023 and the NCDC record: 2000-2020)
MODIS_SM_END = dt.date(2020, 12, 31)
#: NoData value of the GeoTIFFs (NCDC record); always invalid, besides the NoData a file declares
NODATA = -9999.0
#: CF attributes of the aggregated label
SM_LABEL_ATTRS = {
    "standard_name": "volume_fraction_of_condensed_water_in_soil",
    "long_name": "GLASS-MODIS surface soil moisture aggregated to 0.05 deg (training label)",
    "units": "m3 m-3",
    "valid_min": 0.0,
    "valid_max": 1.0,
}

#: File-name presets (the real naming is NOT FOUND: unverified, see the module docstring)
NAME_PATTERNS = {
    "default": r"^GLASS_MODIS_SM\.A(?P<year>\d{4})(?P<doy>\d{3})(?:\.(?P<tile>h\d{2}v\d{2}))?"
               r"(?:\.(?P<production>\d{7}))?(?:\..+)?\.tiff?$",
    "modis_tiled": r"^GLASS[^.]*\.V\d+\.A(?P<year>\d{4})(?P<doy>\d{3})\.(?P<tile>h\d{2}v\d{2})"
                   r"(?:\.(?P<production>\d{7}))?\.tiff?$",
}
_VARIABLE = "soil moisture (band {band})"
_PATH = type(Path())  # the concrete Path class of this system


def compile_name_pattern(pattern: str) -> re.Pattern:
    """The compiled file-name pattern: a preset of :data:`NAME_PATTERNS` or a regular expression.

    Raises
    ------
    ValueError
        Not a valid regular expression, or without the named groups ``year`` and ``doy``.
    """
    regex = NAME_PATTERNS.get(pattern, pattern)
    try:
        compiled = re.compile(regex, re.IGNORECASE)
    except re.error as e:
        raise ValueError(f"GLASS-MODIS file-name pattern {pattern!r} is not a regular expression ({e}); use a "
                         f"preset ({', '.join(NAME_PATTERNS)}) or a regex with the groups (?P<year>...) and "
                         "(?P<doy>...)") from None
    missing = {"year", "doy"} - set(compiled.groupindex)
    if missing:
        raise ValueError(f"GLASS-MODIS file-name pattern {pattern!r} lacks the named group(s) "
                         f"{', '.join(sorted(missing))}: it needs (?P<year>\\d{{4}}) and (?P<doy>\\d{{3}}) "
                         f"(presets: {', '.join(NAME_PATTERNS)})")
    return compiled


def glass_modis_filename(day: dt.date, tile: str | None = None) -> str:
    """File name of one day (and tile) in the default naming: ``GLASS_MODIS_SM.A<YYYY><DDD>[.<tile>].tif``."""
    return f"GLASS_MODIS_SM.A{day.year:04d}{day.timetuple().tm_yday:03d}{'.' + tile if tile else ''}.tif"


def _tile_id(m: re.Match) -> str:
    """Which part of the globe a file holds: its ``tile`` group, else its name without the production date."""
    groups = m.groupdict()
    if groups.get("tile"):
        return groups["tile"].lower()
    name = m.string
    if groups.get("production"):
        a = m.start("production")
        a -= a > 0 and name[a - 1] in "._-"  # with its separator
        name = name[:a] + name[m.end("production"):]
    return name.lower()


def find_glass_modis_files(directory: str | os.PathLike, start: dt.date | None = None,
                           end: dt.date | None = None, pattern: str = "default") -> dict[dt.date, list[Path]]:
    """GLASS-MODIS SM files under ``directory`` (searched recursively), by day; several tiles per day.

    Parameters
    ----------
    directory : path-like
        Folder holding the files (``<YYYY>/``, ``<YYYY>/<DDD>/`` subfolders or flat).
    start, end : datetime.date, optional
        Keep only days in ``[start, end]`` (inclusive).
    pattern : str
        File-name pattern: a preset of :data:`NAME_PATTERNS` or a regular expression with the groups ``year``
        and ``doy`` (optional ``tile``, ``production``); see the module docstring (naming unverified).

    Returns
    -------
    dict
        ``{date: [path, ...]}`` sorted by date, the paths of a day sorted. Of two files of one day and tile whose
        names differ only in the ``production`` group, the newest production is kept.

    Raises
    ------
    MissingFileError
        The folder does not exist.
    DuplicateFileError
        The same file name at several paths, or one day and tile under several names (listing every path).
    """
    regex = compile_name_pattern(pattern)
    directory = Path(directory)
    if not directory.is_dir():
        raise MissingFileError(
            f"folder not found (expected GLASS-MODIS SM GeoTIFFs named like {pattern!r}; set "
            "data.glass_modis_dir)", file=directory, variable="sm_label",
        )
    start = pd.Timestamp(start).date() if start is not None else None
    end = pd.Timestamp(end).date() if end is not None else None
    # (day, tile) -> {name: (production, [paths])}
    found: dict[tuple[dt.date, str], dict[str, tuple[str, list[Path]]]] = {}
    for folder, _, names in os.walk(directory):
        for name in names:
            m = regex.match(name)
            if not m:
                continue
            year, doy = int(m.group("year")), int(m.group("doy"))
            if (start and year < start.year) or (end and year > end.year):  # outside the period, whatever its day
                continue
            try:
                day = dt.date(year, 1, 1) + dt.timedelta(days=doy - 1)
            except (ValueError, OverflowError):
                continue
            if day.year != year or doy < 1:  # DDD beyond the year's length: not a valid name
                continue
            if (start and day < start) or (end and day > end):
                continue
            entry = found.setdefault((day, _tile_id(m)), {}).setdefault(name, (m.groupdict().get("production") or "",
                                                                               []))
            entry[1].append(Path(folder) / name)
    kept: dict[tuple[dt.date, str], tuple[str, list[Path]]] = {}
    ambiguous: dict[str, list[Path]] = {}
    for (day, tile), names in found.items():
        newest = max(prod for prod, _ in names.values())
        best = [(name, paths) for name, (prod, paths) in names.items() if prod == newest]
        if len(best) > 1:
            ambiguous[f"{day:%Y-%m-%d} {tile}"] = [p for _, paths in best for p in paths]
        kept[(day, tile)] = best[0]
    raise_duplicates({name: paths for name, paths in kept.values()}, "GLASS-MODIS SM files", directory)
    raise_duplicates(ambiguous, "GLASS-MODIS SM day/tile pairs under several names", directory)
    out: dict[dt.date, list[Path]] = {}
    for (day, _), (_, paths) in sorted(kept.items(), key=lambda kv: (kv[0][0], str(kv[1][1][0]))):
        out.setdefault(day, []).append(paths[0])
    return out


# ----------------------------------------------------------------------------------------------------------
# The pixel -> cell mapping
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Mapping:
    """Where the pixels of one source grid go, as the ordered pairs ``pix`` (flat index in the window) -> ``cell``
    (flat domain index): first every pixel whose centre lies in a cell, in pixel order (held as ``lookup``, the
    window's cell of each pixel, -1 for none), then one pixel for each cell that contains no pixel centre (step 3
    of :func:`_build_mapping`: ``extra_pix`` -> ``extra_cell``, cells that the first part never reaches)."""

    window: "object"  # rasterio.windows.Window
    lookup: np.ndarray  # (window pixels,) int64: cell or -1
    extra_pix: np.ndarray  # int64
    extra_cell: np.ndarray  # int64
    n_total: np.ndarray  # pixels mapped to each cell (float64, domain.size)

    @cached_property
    def used(self) -> np.ndarray:
        """``lookup >= 0``: the window pixels whose centre lies in a cell (computed once; read-only)."""
        used = self.lookup >= 0
        used.flags.writeable = False
        return used

    @property
    def pix(self) -> np.ndarray:
        """Window pixel of each pair, in the aggregation's order."""
        return np.concatenate([np.flatnonzero(self.lookup >= 0), self.extra_pix]).astype(np.int64)

    @property
    def cell(self) -> np.ndarray:
        """Cell of each pair, in the aggregation's order."""
        return np.concatenate([self.lookup[self.lookup >= 0], self.extra_cell])


def _boundary_lonlat(domain: Domain, per_edge: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Points along the domain's edges (lon, lat), densified so curved projected edges are followed."""
    n = per_edge or max(5, min(400, max(domain.nrows, domain.ncols) + 1))
    lons = np.linspace(domain.west, domain.east, n)
    lats = np.linspace(domain.south, domain.north, n)
    lon = np.concatenate([lons, lons, np.full(n, domain.west), np.full(n, domain.east)])
    lat = np.concatenate([np.full(n, domain.south), np.full(n, domain.north), lats, lats])
    return lon, lat


_WKT_OF: dict[str, str] = {}  #: a CRS's WKT (``crs.wkt``) by its WKT2 (see _crs_wkt)
_WKT_OF_MAX = 256


def _crs_wkt(crs) -> str:
    """``crs.wkt`` (GDAL's WKT1), remembered per process by the CRS's WKT2:2019.

    Exporting the WKT1 costs ~0.2 ms a file (more than all of the file's other metadata); the WKT2 ~0.05 ms.
    Both are exports of the same PROJ object, the WKT2 the complete one (it keeps what the WKT1 drops, and
    what the WKT1 alone carries, a ``PROJ4`` extension, as a ``REMARK``): equal WKT2s mean equal WKT1s, so
    the WKT1 returned is exactly the one ``crs.wkt`` would export. Any failure of the WKT2 export: the WKT1.
    """
    from rasterio.errors import CRSError  # noqa: PLC0415

    try:
        wkt2 = crs.to_wkt(version="WKT2_2019")
    except CRSError:  # a CRS the WKT2 cannot describe: its WKT1, exported as before
        return crs.wkt
    if not wkt2:  # an unnamed CRS exports nothing in either form
        return crs.wkt
    wkt = _WKT_OF.get(wkt2)
    if wkt is None:
        wkt = crs.wkt
        if len(_WKT_OF) >= _WKT_OF_MAX:
            _WKT_OF.pop(next(iter(_WKT_OF)))
        _WKT_OF[wkt2] = wkt
    return wkt


def _grid_key(ds) -> tuple:
    """What identifies a source grid: CRS (its WKT), geotransform ``(a, b, c, d, e, f)`` and size."""
    crs = ds.crs
    # the WKT as ``crs.wkt`` exports it (``if ds.crs`` would export it a first time: CRS.__bool__), through
    # _crs_wkt. The geotransform as ``tuple(ds.transform)[:6]`` holds it, read in GDAL's own order
    # (c, a, b, f, d, e) without building an Affine (``ds.transform`` is ``Affine.from_gdal(*ds.get_transform())``)
    c, a, b, f, d, e = ds.get_transform()
    return ((_crs_wkt(crs) or None) if crs is not None else None, (a, b, c, d, e, f), ds.width, ds.height)


def _build_mapping(ds, domain: Domain, path: Path, band: int) -> _Mapping | None:
    """The window of ``ds`` covering (its part of) ``domain`` and the pixel -> cell pairs; ``None`` when the
    raster does not reach the domain (see module docstring)."""
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

    # 1. window of the raster covering the domain's bounding box in the source CRS (boundary densified, one
    #    pixel margin, clipped to the raster): empty when the raster does not reach the domain
    blon, blat = _boundary_lonlat(domain)
    bx, by = to_src.transform(blon, blat)
    bx, by = np.asarray(bx), np.asarray(by)
    ok = np.isfinite(bx) & np.isfinite(by)
    if not ok.any():
        return None
    inv = ~t
    cols, rows = inv @ (bx[ok], by[ok])
    col0 = max(int(math.floor(np.min(cols))) - 1, 0)
    row0 = max(int(math.floor(np.min(rows))) - 1, 0)
    col1 = min(int(math.ceil(np.max(cols))) + 1, ds.width)
    row1 = min(int(math.ceil(np.max(rows))) + 1, ds.height)
    if col1 <= col0 or row1 <= row0:
        return None
    window = Window(col0, row0, col1 - col0, row1 - row0)
    h, w = row1 - row0, col1 - col0

    # 2. pixel centres -> lon/lat -> cell
    cc, rr = np.meshgrid(np.arange(col0, col1) + 0.5, np.arange(row0, row1) + 0.5)
    x, y = t @ (cc.ravel(), rr.ravel())
    lon, lat = to_geo.transform(x, y)
    lon, lat = np.asarray(lon), np.asarray(lat)
    # pixels off the Earth (the corners of a sinusoidal raster beyond |lon| = 180, as in the edge tiles of the
    # MODIS grid): PROJ wraps their longitude back into -180..180, which would bin them (NoData) into a cell of
    # the other side; a pixel is on the Earth when its centre maps back onto itself
    xb, yb = to_src.transform(lon, lat)
    on_earth = (np.abs(np.asarray(xb) - x) <= 1e-3 * abs(t.a)) & (np.abs(np.asarray(yb) - y) <= 1e-3 * abs(t.e))
    r = np.floor((domain.north - lat) / domain.res)
    c = np.floor((lon - domain.west) / domain.res)
    inside = (on_earth & np.isfinite(r) & np.isfinite(c) & (r >= 0) & (r < domain.nrows) & (c >= 0)
              & (c < domain.ncols))
    pix = np.flatnonzero(inside)
    cell = (r[inside] * domain.ncols + c[inside]).astype(np.int64)

    # 3. cells without a pixel centre whose own centre lies in the raster take the pixel under it
    counts = np.bincount(cell, minlength=domain.size)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        lon_c = domain.lon[empty % domain.ncols]
        lat_c = domain.lat[empty // domain.ncols]
        xc, yc = to_src.transform(lon_c, lat_c)
        pc, pr = inv @ (np.asarray(xc), np.asarray(yc))
        good = np.isfinite(pc) & np.isfinite(pr)
        pc = np.floor(np.where(good, pc, -1)).astype(np.int64) - col0
        pr = np.floor(np.where(good, pr, -1)).astype(np.int64) - row0
        good &= (pc >= 0) & (pc < w) & (pr >= 0) & (pr < h)
        pix = np.concatenate([pix, pr[good] * w + pc[good]])
        cell = np.concatenate([cell, empty[good]])
        counts = np.bincount(cell, minlength=domain.size)
    if cell.size == 0:
        return None
    n_main = int(inside.sum())
    lookup = np.full(h * w, -1, np.int64)
    lookup[pix[:n_main]] = cell[:n_main]
    return _Mapping(window=window, lookup=lookup, extra_pix=pix[n_main:].astype(np.int64),
                    extra_cell=cell[n_main:].astype(np.int64), n_total=counts.astype(np.float64))


_MAPPINGS: dict[tuple, _Mapping | None] = {}  #: this process's mappings by (grid, domain); see _cached_mapping
_MAPPINGS_MAX = 64


def _cached_mapping(ds, domain: Domain, path: Path, band: int, key: tuple) -> _Mapping | None:
    """:func:`_build_mapping` remembered per process by (grid key, domain).

    A mapping is a function of the source grid (CRS, geotransform, size: :func:`_grid_key`) and of the domain
    only (the path and band serve error messages, raised before anything is computed), so a reader called block
    after block (the day-major ingest) or tile after tile builds each grid's mapping once per process instead of
    once per call (~20 ms each, most of it PROJ's transformer setup). At most :data:`_MAPPINGS_MAX` kept (oldest
    dropped). Mappings are read-only once built.
    """
    k = (key, domain.row0, domain.col0, domain.nrows, domain.ncols, float(domain.res))
    if k not in _MAPPINGS:
        mapping = _build_mapping(ds, domain, path, band)
        if len(_MAPPINGS) >= _MAPPINGS_MAX:
            _MAPPINGS.pop(next(iter(_MAPPINGS)))
        _MAPPINGS[k] = mapping
    return _MAPPINGS[k]


def _overlap(a: tuple, b: tuple) -> bool:
    """Whether two rasters (bounds, pixel size) of the same CRS share more than half a pixel each way."""
    (la, ba, ra, ta), (pxa, pya) = a
    (lb, bb, rb, tb), (pxb, pyb) = b
    return (min(ra, rb) - max(la, lb) > 0.5 * min(pxa, pxb)) and (min(ta, tb) - max(ba, bb) > 0.5 * min(pya, pyb))


# ----------------------------------------------------------------------------------------------------------
# Units and values
# ----------------------------------------------------------------------------------------------------------
def _declared_units(ds, band: int, tags: tuple[dict, dict] | None = None) -> str | None:
    """The units the file declares: a ``units`` tag of the band, else of the dataset, else the GDAL band unit.
    ``tags``: ``(ds.tags(), ds.tags(band))`` when already read."""
    ds_tags, band_tags = tags if tags is not None else (ds.tags(), ds.tags(band))
    for t in (band_tags, ds_tags):
        for key in ("units", "Units", "UNITS", "unit"):
            if t.get(key):
                return str(t[key])
    try:
        u = ds.units[band - 1]
    except (IndexError, TypeError):  # pragma: no cover - defensive
        u = None
    return u or None


def _float_tag(tags: dict, names: tuple[str, ...]) -> float | None:
    for key in names:
        try:
            return float(tags[key])
        except (KeyError, TypeError, ValueError):
            continue
    return None


def _file_scale_offset(ds, band: int, tags: tuple[dict, dict] | None = None) -> tuple[float | None, float | None]:
    """The scale and offset the file declares (GDAL band scale/offset, else ``scale_factor``/``add_offset``
    tags); ``None`` for none (a scale of 1 and an offset of 0 count as none: GDAL reports them by default).
    ``tags``: ``(ds.tags(), ds.tags(band))`` when already read."""
    scale = ds.scales[band - 1] if ds.scales else None
    offset = ds.offsets[band - 1] if ds.offsets else None
    ds_tags, band_tags = tags if tags is not None else (ds.tags(), ds.tags(band))
    tags = {**ds_tags, **band_tags}
    if scale in (None, 1.0):
        scale = _float_tag(tags, ("scale_factor", "SCALE_FACTOR", "Scale_Factor"))
    if offset in (None, 0.0):
        offset = _float_tag(tags, ("add_offset", "ADD_OFFSET", "Add_Offset"))
    return (None if scale in (None, 1.0) else scale), (None if offset in (None, 0.0) else offset)


def _valid_values(arr: np.ndarray, nodata, scale: float, offset: float,
                  mapping: _Mapping) -> tuple[np.ndarray, np.ndarray, float | None]:
    """One file's window -> (physical values of its valid pixels that ``mapping`` uses, float64, and their cells,
    both in the mapping's order; the largest finite physical value over every valid pixel of the window, None
    when there is none).

    A pixel is valid when its stored value is finite, not :data:`NODATA` and not the file's own finite NoData
    (compared as the float64 of the stored value); physical = stored x ``scale`` + ``offset`` in float64. Only the
    valid pixels are gathered: a cell's sum takes the same values in the same order as a sum over all of its
    pixels with zeros for the invalid ones (adding +0.0 changes no partial sum), so the result is bit-identical
    to it at a fraction of the cost (over the sea and off the Earth most of a window is NoData).

    The largest value is the window's stored maximum when that is a valid value (no NaN, no +inf, not a NoData:
    then it is the largest valid one), scaled: physical = stored x scale + offset is monotone for a scale > 0
    (each rounding is), so it is the largest physical value when finite. Otherwise (a NoData or a non-finite
    value on top, a scale <= 0, an overflow) it is taken over the gathered valid values as before.
    """
    flat = arr.ravel()
    if flat.dtype != np.float32:
        flat = flat.astype(np.float64, copy=False)  # any other type compared and scaled as float64
    nodata_t = flat.dtype.type(NODATA)  # -9999 is exact in float32 and float64
    valid = np.isfinite(flat)
    valid &= flat != nodata_t
    own_t = None  # the file's own NoData in the stored type, when it is one
    if nodata is not None and np.isfinite(nodata) and float(nodata) != NODATA:  # NODATA: excluded just above
        nd = float(nodata)
        with np.errstate(over="ignore"):
            nd_t = flat.dtype.type(nd)
        if float(nd_t) == nd:  # a float32 NoData that is not a float32 equals no float32 value in float64
            valid &= flat != nd_t
            own_t = nd_t
    trivial = scale == 1.0 and offset == 0.0

    def phys(stored: np.ndarray) -> np.ndarray:
        stored = stored.astype(np.float64, copy=False)
        return stored * scale + offset if not trivial else stored

    vmax = None
    top = flat.max() if flat.size else None
    if top is not None and np.isfinite(top) and top != nodata_t and (own_t is None or top != own_t):
        top = np.float64(top)  # exact; scaled as phys() scales each value
        if trivial:
            vmax = float(top)
        elif scale > 0:
            scaled = top * scale + offset
            vmax = float(scaled) if np.isfinite(scaled) else None
    if vmax is None:  # no valid value on top, or not simply scaled: over the gathered valid values
        values = phys(flat[valid])
        finite = values if trivial else values[np.isfinite(values)]  # valid stored values are finite
        vmax = float(finite.max()) if finite.size else None
    # the valid pixels that hold a cell, in window order, gathered by the mask itself (cheaper than indices)
    sel = valid & mapping.used
    values = phys(flat[sel])
    cell = mapping.lookup[sel]
    if mapping.extra_pix.size:  # the cells holding no pixel centre come after the others (mapping order)
        ok = valid[mapping.extra_pix]
        values = np.concatenate([values, phys(flat[mapping.extra_pix[ok]])])
        cell = np.concatenate([cell, mapping.extra_cell[ok]])
    return values, cell, vmax


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
    pattern: str = "default",
    scale: float = 1.0,
    label_start: dt.date | str = MODIS_SM_START,
    label_end: dt.date | str = MODIS_SM_END,
    files: dict | None = None,
) -> xr.DataArray:
    """Daily GLASS-MODIS soil moisture, mean-aggregated onto the 0.05 deg cells of ``domain``.

    The real product's file naming, tiling, data type and scale are NOT FOUND in the evidence: ``pattern`` and
    ``scale`` are unverified assumptions to check on one real file (module docstring).

    Parameters
    ----------
    directory : path-like
        Folder with the GeoTIFFs (any subfolders, e.g. ``<YYYY>/`` or ``<YYYY>/<DDD>/``).
    start, end : datetime.date or str
        First and last day (inclusive) of the output.
    domain : glass_sm.grid.Domain
        Target 0.05 deg cells.
    progress : bool
        Show a tqdm progress bar over the days.
    min_valid_fraction : float
        Minimum fraction (0..1] of a cell's source pixels (of all files of the period) that must be valid for
        the cell to get a value; otherwise the cell is NaN. Default 0.5.
    band : int
        Band holding the soil moisture (1-based).
    units_policy : {'convert', 'raise'}
        A file tagged ``units=%`` is divided by 100 or rejected (:func:`glass_sm.io.errors.check_units`); a file
        without a ``units`` tag is read as m3 m-3.
    pattern : str
        File-name pattern (unverified): a preset of :data:`NAME_PATTERNS` (``'default'``: today's
        ``GLASS_MODIS_SM.A<YYYY><DDD>[.h<HH>v<VV>][.<anything>].tif``; ``'modis_tiled'``) or a regular expression
        with the groups ``year`` and ``doy`` (optional ``tile``, ``production``).
    scale : float
        Physical (m3 m-3) = stored x ``scale`` when the file declares no scale of its own (unverified; default 1:
        the stored values are m3 m-3; ``1e-4`` for an int16 file of 0..10000). A value other than 1 that
        contradicts the file's own scale raises.
    label_start, label_end : datetime.date or str
        The label record (default 2000-02-24 .. 2020-12-31, ``period.label_start`` / ``period.label_end``):
        days outside it are NaN, files outside it are not read (counted in ``n_files_outside_label_period``).
    files : dict, optional
        The files to read by day, as :func:`find_glass_modis_files` returns them for ``start..end``: the folder is
        not searched (the day-major ingest lists the archive once and hands each task its days' files). Days
        outside the period are an error.

    Returns
    -------
    xarray.DataArray
        ``sm_label`` (time, lat, lon), float32, m3 m-3, one step per day of ``[start, end]``, latitude
        descending; NaN outside ``[label_start, label_end]``, on days without a file, where too few pixels are
        valid and where no file covers the cell. Attributes ``n_files`` (files read), ``n_files_outside_domain``,
        ``n_files_outside_label_period``, ``n_cells_not_covered``, ``label_start``, ``label_end``,
        ``name_pattern``, ``scale``.

    Raises
    ------
    MissingFileError
        The period overlaps ``[label_start, label_end]`` and the folder does not exist or holds no file of
        that overlap.
    DuplicateFileError
        One day and tile twice (same name at two paths, several names), or two files of one day over the same
        area.
    MissingVariableError
        A file has no band ``band``.
    GridMismatchError
        A file has no CRS, or no file reaches the domain.
    UnitsError
        Units that are not volumetric (or percent under ``units_policy='raise'``), values above 1.5 in a file
        that declares (or implies) m3 m-3, an integer file without a scale, or a ``scale`` that contradicts the
        file's own.
    CorruptFileError
        A file cannot be opened or read (truncated, not a GeoTIFF).
    EmptyDataError
        No valid pixel at all over the domain in the whole period although files exist.
    """
    import rasterio  # noqa: PLC0415
    from rasterio.errors import RasterioError  # noqa: PLC0415

    if not 0 < min_valid_fraction <= 1:
        raise ValueError(f"min_valid_fraction must be in (0, 1], got {min_valid_fraction}")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    start, end = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    label_start, label_end = pd.Timestamp(label_start).date(), pd.Timestamp(label_end).date()
    if label_start > label_end:
        raise ValueError(f"label_start {label_start} is after label_end {label_end}")
    directory = Path(directory)
    files_given = files
    times = pd.date_range(start, end, freq="D")
    out = np.full((len(times), domain.nrows, domain.ncols), np.nan, np.float32)
    first, last = max(start, label_start), min(end, label_end)
    files: dict[dt.date, list[Path]] = {}
    n_outside_period = 0
    if first <= last:
        if files_given is None:
            found = find_glass_modis_files(directory, start, end, pattern)
        else:
            found = {(d if type(d) is dt.date else pd.Timestamp(d).date()):  # dates and Paths kept (else: copies)
                     [x if type(x) is _PATH else Path(x) for x in ps] for d, ps in files_given.items()}
            outside = sorted(d for d in found if not start <= d <= end)
            if outside:
                raise ValueError(f"files= holds days outside {start}..{end}: {outside[:3]}")
        files = {d: p for d, p in found.items() if first <= d <= last}
        n_outside_period = sum(len(p) for d, p in found.items() if d not in files)
        if not files:
            raise MissingFileError(
                f"holds no GLASS-MODIS SM file named like {pattern!r} for {first}..{last} (found "
                f"{n_outside_period} outside {label_start}..{label_end}; check data.glass_modis_pattern)",
                file=directory, variable="sm_label",
            )

    variable = _VARIABLE.format(band=band)
    day_index = [(day - start).days for day in files]  # dates (midnights): the days from the first
    n_valid = np.zeros((len(files), domain.size), np.float32)  # valid pixels per label day and cell
    mappings: dict[tuple, _Mapping | None] = {}
    grids: dict[tuple, tuple] = {}  # grid reaching the domain -> (bounds, pixel size)
    overlapping: set[frozenset] = set()  # pairs of grids (same CRS) covering the same area
    n_total = np.zeros(domain.size)  # pixels of each cell over every grid of the period
    n_read = n_far = 0
    far: tuple | None = None  # (path, bounds, crs) of a file that does not reach the domain
    # rasterio.open's decorator enters a nested Env at each call and rebuilds GDAL's environment on leaving it
    # (~0.2 ms a file); inside the Env below it adds nothing for a local Path (no credentials to set), so the
    # undecorated function opens the files (the same datasets, the same errors)
    open_ = getattr(rasterio.open, "__wrapped__", rasterio.open)
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", GDAL_PAM_ENABLED="NO"):
        for k, (day, paths) in enumerate(tqdm(files.items(), desc="GLASS-MODIS SM", unit="day",
                                              disable=not progress)):
            s = np.zeros(domain.size)
            n = np.zeros(domain.size)
            day_grids: dict[tuple, Path] = {}
            for path in paths:
                n_read += 1
                try:
                    ds = open_(path)
                except (RasterioError, OSError) as e:
                    raise CorruptFileError(f"cannot be opened as a GeoTIFF ({e})", file=path,
                                           variable=variable) from e
                with ds:
                    if ds.count < band:
                        raise MissingVariableError(f"not found: the file has {ds.count} band(s)", file=path,
                                                   variable=variable)
                    key = _grid_key(ds)
                    if key not in mappings:
                        mapping = mappings[key] = _cached_mapping(ds, domain, path, band, key)
                        if mapping is not None:
                            info = (tuple(ds.bounds), (abs(ds.transform.a), abs(ds.transform.e)))
                            overlapping.update(frozenset((key, other)) for other, o in grids.items()
                                               if other[0] == key[0] and _overlap(info, o))
                            grids[key] = info
                            n_total += mapping.n_total
                        elif far is None:
                            far = (path, ds.bounds, ds.crs)
                    mapping = mappings[key]
                    if mapping is None:
                        n_far += 1
                        continue
                    if key in day_grids:
                        raise DuplicateFileError(
                            f"two GLASS-MODIS SM files of {day} overlap (the same raster grid): "
                            f"{day_grids[key]} | {path}; keep one", file=directory, variable=variable)
                    day_grids[key] = path
                    try:
                        arr = ds.read(band, window=mapping.window)
                    except (RasterioError, OSError) as e:
                        raise CorruptFileError(f"cannot be read ({e})", file=path, variable=variable) from e
                    tags = (ds.tags(), ds.tags(band))  # read once for both
                    units = _declared_units(ds, band, tags)
                    f_scale, f_offset = _file_scale_offset(ds, band, tags)
                    nodata = ds.nodatavals[band - 1]
                if f_scale is not None and scale != 1.0 and not math.isclose(scale, f_scale, rel_tol=1e-6):
                    raise UnitsError(f"declares a scale of {f_scale:g} but the scale parameter is {scale:g} "
                                     "(data.glass_modis_scale): set it to 1 to use the file's own, or fix the file",
                                     file=path, variable=variable)
                eff_scale = f_scale if f_scale is not None else scale
                values, cells, vmax = _valid_values(arr, nodata, eff_scale, f_offset or 0.0, mapping)
                if (units is None and eff_scale == 1.0 and f_offset is None and vmax is not None and vmax > 1.5
                        and np.issubdtype(arr.dtype, np.integer)):
                    raise UnitsError(
                        f"stores {arr.dtype} integers (maximum {vmax:g}) without a scale of its own "
                        "and the scale parameter is 1: set the scale of the stored values (data.glass_modis_scale, "
                        "e.g. 0.0001 for 0..10000) or a scale_factor tag in the file", file=path, variable=variable)
                # the units check sees the window's largest value, as it would on the whole window; a conversion
                # (percent) is elementwise, so it is applied to the values used
                attrs = {"units": units} if units is not None else {}
                probe = np.array([vmax] if vmax is not None else [], np.float64)
                values, _ = check_units_on_probe(values, attrs, "m3 m-3", path, variable, policy=units_policy,
                                                 probe=probe)
                s += np.bincount(cells, weights=values, minlength=domain.size)
                n += np.bincount(cells, minlength=domain.size)
            for pair in overlapping:
                if pair <= day_grids.keys():
                    a, b = sorted(str(day_grids[g]) for g in pair)
                    raise DuplicateFileError(f"two GLASS-MODIS SM files of {day} overlap (the same area twice): "
                                             f"{a} | {b}; keep one", file=directory, variable=variable)
            if day_grids:
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[day_index[k]] = (s / n).reshape(domain.shape)
                n_valid[k] = n

    if files and not grids:
        path, b, crs = far
        raise GridMismatchError(
            f"does not cover the domain {domain.bounds_str()}: the raster's bounds are {b.left:.0f}, {b.bottom:.0f}, "
            f"{b.right:.0f}, {b.top:.0f} in {crs.to_string()}, and none of the {n_read} files of the period reaches "
            "the domain", file=path, variable=variable,
        )
    if files:
        flat = out.reshape(len(times), domain.size)  # a view
        needed = min_valid_fraction * n_total - 1e-6
        any_valid = False
        for k, t in enumerate(day_index):
            flat[t, (n_valid[k] == 0) | (n_valid[k] < needed)] = np.nan
            any_valid = any_valid or bool(np.isfinite(flat[t]).any())
        if not any_valid:
            names = [p.name for ps in files.values() for p in ps]
            raise EmptyDataError(f"is NoData over the domain {domain.bounds_str()} in all {n_read} files "
                                 f"({names[0]} .. {names[-1]})", file=directory, variable=variable)
    n_not_covered = int((n_total == 0).sum()) if files else 0
    if n_not_covered:
        warnings.warn(f"{directory}: {n_not_covered} of {domain.size} cells of the domain {domain.bounds_str()} "
                      f"are covered by no GLASS-MODIS SM file of {first}..{last} (NaN labels; a tile not in the "
                      "folder?)", stacklevel=2)

    da = xr.DataArray(out, dims=("time", "lat", "lon"),
                      coords={"time": times, "lat": domain.lat, "lon": domain.lon}, name="sm_label")
    da.attrs.update(SM_LABEL_ATTRS)
    da.attrs.update(
        source=f"GLASS-MODIS SM GeoTIFFs in {directory}",
        cell_methods="area: mean (over valid source pixels of all tiles)",
        min_valid_fraction=float(min_valid_fraction),
        n_files=n_read,
        n_files_outside_domain=n_far,
        n_files_outside_label_period=n_outside_period,
        n_cells_not_covered=n_not_covered,
        label_start=str(label_start),
        label_end=str(label_end),
        name_pattern=str(pattern),
        scale=float(scale),
    )
    da["time"].attrs.update(standard_name="time", long_name="time", axis="T")
    return lat_lon_attrs(da)
