"""GLASS AVHRR albedo (GLASS02B05, 8-day composites) and land surface temperature (GLASS08B31, daily), HDF4.

What the real files are (evidence and confidence: ``../shared/REAL_FORMATS.md``, summarised in
``book/real_data.md``): HDF4 / HDF-EOS2 grids on the global 0.05 deg grid (7200 x 3600, row 0 at 90 N,
column 0 at 180 W), one file per *composite* for albedo (day of year 1, 9, 17, ..., 361: 46 a year, version
``V04`` in circulation, e.g. ``GLASS02B05.V04.A1981169.2018062.hdf``) and one file per *day* for LST
(``GLASS08B31.V40.A2000045.2021250.hdf``). The last part of a name is the production date.

File names and cadence
----------------------
``<SHORT>.V<vv>.A<YYYY><DDD>.<production YYYYDDD>.hdf`` anywhere below the root folder (usually
``<root>/albedo/<YYYY>/`` and ``<root>/lst/<YYYY>/``); any version ``V\\d+`` is accepted; when a date has several
files the highest version, then the latest production date, wins. Each product has a **cadence**
(:data:`CADENCE_DAYS`: albedo 8 days, LST 1 day; the ``cadence_days`` argument changes it): the expected file
dates are day of year ``1, 1 + c, 1 + 2c, ...`` of every year (:func:`composite_schedule`; the schedule restarts
on 1 January, so the last albedo composite of a year is day 361 and the next is day 1), and only those are
reported as gaps. A file at a date off the schedule is ignored with one warning (pass ``cadence_days=1`` to read
daily files).

Albedo composites and daily values
----------------------------------
:func:`read_glass_albedo` returns the composites on their own dates (one time step per expected composite, NaN
where a file is missing). :func:`read_glass_albedo_daily` turns them into daily values the way NASA LIS does:
each composite is a sample at ``file date + sample_offset_days`` and each day is interpolated linearly in time
between the two composites that bracket it (:func:`interpolate_composites`, :func:`composites_to_daily`), with a
per pixel-day flag (:data:`FLAG_COMPOSITE_DAY` 0: the day is a composite's sample day and the composite is
valid; :data:`FLAG_INTERPOLATED` 1: between two valid composites; :data:`FLAG_GAP` 2: a bracketing composite is
missing (no file, invalid or masked by QC), value NaN: a real gap, left to the caller's gap filling).
**Whether the file date is the start or the centre of the 8 days is not documented anywhere we could find**:
``sample_offset_days = 0`` (the default) takes the file date as the sample time, as LIS does; 3.5 would say the
file date is the first of the 8 days (the composite then represents their middle).

Reading rules
-------------
- **Only the domain is read**: the row/column hyperslab of the requested :class:`~glass_sm.grid.Domain` is
  computed from the file's grid and only that slice is read (``sds[r0:r1, c0:c1]``). The grid comes, in this
  order, from the global attributes ``UpperLeftLatitude``/``UpperLeftLongitude`` (cell edges, degrees) and
  ``GridResolution`` (degrees); from the HDF-EOS2 ``StructMetadata.0`` (the grid whose ``GridName`` is the
  short name, else the one whose ``XDim``/``YDim`` match the SDS: ``UpperLeftPointMtrs``/``LowerRightMtrs`` of a
  ``GCTP_GEO`` grid in packed degrees ``DDDMMMSSS.SS``, or plain degrees when all four are within +-360); else
  the file is taken as global (3600 x 7200; another shape is read as a global grid of spacing 180 / rows and
  rejected by the resolution check).
- **Unpacking** (:func:`sds_packing`): ``physical = stored * scale_factor + add_offset``; files written through
  the HDF4 calibration interface (a ``calibrated_nt`` attribute) use ``scale_factor * (stored - add_offset)``.
  Missing attributes take the product's fallbacks (:data:`RULES`, integer SDS only; a float SDS without
  ``scale_factor`` has scale 1): albedo scale 1e-4, valid stored range 0..10000; LST scale 0.01 K, stored 0
  and 65535 taken as fill. The fill value is read under any of the spellings
  :data:`glass_sm.io.errors.FILL_ATTRIBUTES` (``_FillValue``, ``FillValue``, ``fillvalue``, ``fill_value``,
  ``missing_value``). Stored values equal to a fill value or outside ``valid_range``
  (``valid_min``/``valid_max``) become NaN; for albedo **any negative stored value is invalid** (the product
  writes -1), whatever the attributes say.
- **Units** are checked with :func:`glass_sm.io.errors.check_units` and, from above, with
  :func:`glass_sm.io.errors.check_units_upper_bound` (an LST median above 400 K is still packed: raises).
- **Physical plausibility**: values outside :attr:`ProductRules.plausible` (albedo 0..1, LST 150..350 K) after
  unpacking are masked and counted: each variable's attribute ``n_masked_implausible``, and one
  :class:`~glass_sm.io.errors.DataWarning` per read call when the count is not 0.
- **Quality control** (per product, :data:`RULES`): the QC layer is looked up in the file from a documented list
  of names (:func:`qc_layer_candidates`, or the ``qc_layer`` argument):

  * albedo, band ``b``: ``QC_<b>`` (V04 has per-band layers; ``QC_VIS`` is the one NASA LIS reads), then
    ``QC_VIS`` (LIS's choice for every band), then ``QC`` (collection 1). Bits 0-1 are an overall quality
    **level**: 0 good, 1 acceptable (2 and 3 are undocumented: taken as worse). ``qc='acceptable'`` (default)
    keeps level <= 1, ``'good'`` keeps level 0, ``'poor'`` keeps <= 2, ``'none'`` reads no QC.
  * LST: ``QC`` (the real layer's name and meaning are unknown; **assumed**: bit 0 = cloudy / not retrieved,
    bit 1 = low quality). ``qc='cloud'`` (default) masks bit 0, ``'strict'`` bits 0 and 1, ``'none'`` reads no QC.

  A QC value equal to the layer's fill attribute is masked. A file **without any QC layer is read unmasked**:
  one :class:`~glass_sm.io.errors.DataWarning` per read call counts such files and names the first; the count
  is the dataset attribute ``n_files_without_qc``.
- **Platform**: coordinate ``platform(time)`` from the global attribute ``Satellite`` where a file has it (the
  real files do not), else :func:`glass_sm.platforms.platform_of` of the date (attribute ``platform_source``).
- **Missing files**: :func:`find_glass_files` raises :class:`~glass_sm.io.errors.TimeGapError` listing the
  expected dates without a file, unless ``allow_gaps=True`` (the readers' default): then they are all-NaN.
- A date on which the whole domain is invalid is fine; a *period* with no valid value at all raises
  :class:`~glass_sm.io.errors.EmptyDataError`.

A file that HDF4 cannot open raises :class:`~glass_sm.io.errors.CorruptFileError`. (HDF4 keeps such a file in
its table of open files until the process ends, so after repairing it, restart the process before reading it
again.) ``python -m glass_sm.io.inspect FILE`` prints what these rules make of one file.

Cost: opening a file, reading the attributes and two or three small slices takes about 0.2 ms per file for a
40 x 20 cell domain, so 40 years of files read in a few seconds.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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
    CorruptFileError,
    DataError,
    DataWarning,
    EmptyDataError,
    GridMismatchError,
    MissingFileError,
    MissingVariableError,
    TimeGapError,
    UnitsPolicy,
    check_units,
    check_units_upper_bound,
    fill_attribute,
    format_dates,
    found_list,
    raise_duplicates,
)
from glass_sm.platforms import platform_of

__all__ = [
    "PRODUCTS",
    "CADENCE_DAYS",
    "VERSIONS",
    "RULES",
    "ProductRules",
    "ALBEDO_QC_POLICIES",
    "LST_QC_POLICIES",
    "QC_CLOUD",
    "QC_LOW_QUALITY",
    "QC_LEVEL_BITS",
    "FLAG_COMPOSITE_DAY",
    "FLAG_INTERPOLATED",
    "FLAG_GAP",
    "COMPOSITE_FLAG_ATTRS",
    "Packing",
    "composite_schedule",
    "parse_glass_filename",
    "find_glass_files",
    "glass_filename",
    "qc_layer_candidates",
    "sds_packing",
    "parse_struct_metadata",
    "read_glass_albedo",
    "read_glass_albedo_daily",
    "interpolate_composites",
    "composites_to_daily",
    "read_glass_lst",
]

#: product key -> GLASS short name (file-name prefix)
PRODUCTS = {"albedo": "GLASS02B05", "lst": "GLASS08B31"}
#: product key -> days between two files (albedo: 8-day composites; LST: daily)
CADENCE_DAYS = {"albedo": 8, "lst": 1}

QC_CLOUD = 0b01  #: LST QC bit 0 (assumed): cloudy / not retrieved
QC_LOW_QUALITY = 0b10  #: LST QC bit 1 (assumed): low quality
QC_LEVEL_BITS = 0b11  #: albedo QC bits 0-1: overall quality level (0 good, 1 acceptable)
#: albedo ``qc`` policy -> highest quality level kept (None: QC not read)
ALBEDO_QC_POLICIES = {"good": 0, "acceptable": 1, "poor": 2, "none": None}
#: LST ``qc`` policy -> QC bits that mask a value (0: QC not read)
LST_QC_POLICIES = {"cloud": QC_CLOUD, "strict": QC_CLOUD | QC_LOW_QUALITY, "none": 0}

FLAG_COMPOSITE_DAY = 0  #: the day is a composite's sample day and the composite is valid
FLAG_INTERPOLATED = 1  #: the day lies between two valid composites: linear interpolation in time
FLAG_GAP = 2  #: a bracketing composite is missing (no file, invalid, masked by QC): NaN
COMPOSITE_FLAG_ATTRS = {
    "long_name": "how the daily value was obtained from the composites",
    "units": "1",
    "flag_values": [FLAG_COMPOSITE_DAY, FLAG_INTERPOLATED, FLAG_GAP],
    "flag_meanings": "composite_day between_composites composite_missing",
}

_GRID_TOL = 1e-6  # degrees: resolution equality
_ALIGN_TOL = 1e-3  # cells: how close to a whole cell the domain's offset must be
_GEO_KEYS = ("UpperLeftLatitude", "UpperLeftLongitude", "GridResolution")

QCPolicy = Literal["good", "acceptable", "poor", "cloud", "strict", "none"]


@dataclass(frozen=True)
class ProductRules:
    """What a reader assumes of a product when the file does not say (see the module docstring).

    Attributes
    ----------
    short : str
        GLASS short name.
    cadence_days : int
        Days between two files.
    units : str
        Unit returned (``'1'`` or ``'K'``).
    scale, offset : float
        Fallback ``scale_factor`` / ``add_offset`` of an integer SDS that declares none.
    valid_stored : tuple of int or None
        Fallback valid range of the stored integers when the SDS declares no ``valid_range``/``valid_min``/
        ``valid_max``.
    negative_invalid : bool
        Any negative stored value is invalid, whatever the attributes (albedo: -1 = invalid).
    fill_stored : tuple of int
        Fallback fill values of the stored integers when the SDS declares none.
    plausible : (float, float)
        Physical plausibility bounds in ``units``: values outside are masked and counted.
    qc_kind : {'level', 'bits'}
        QC semantics: a 2-bit quality level (bits 0-1) or flag bits.
    qc_default : str
        Default ``qc`` policy.
    """

    short: str
    cadence_days: int
    units: str
    scale: float
    offset: float
    valid_stored: tuple | None
    negative_invalid: bool
    fill_stored: tuple
    plausible: tuple[float, float]
    qc_kind: str
    qc_default: str


RULES = {
    "albedo": ProductRules("GLASS02B05", 8, "1", 1e-4, 0.0, (0, 10000), True, (), (0.0, 1.0), "level",
                           "acceptable"),
    "lst": ProductRules("GLASS08B31", 1, "K", 0.01, 0.0, None, False, (0, 65535), (150.0, 350.0), "bits", "cloud"),
}


# ----------------------------------------------------------------------------------------------------------
# names, cadence, finding files
# ----------------------------------------------------------------------------------------------------------
#: product key -> collection version in circulation (evidence: ``GLASS02B05.V04...``, ``GLASS08B31.V40...``)
VERSIONS = {"albedo": 4, "lst": 40}


def glass_filename(product: str, day: dt.date, version: int | None = None, production: str = "2019001") -> str:
    """The GLASS file name of one date, e.g. ``GLASS02B05.V04.A1999033.2019001.hdf``.

    Parameters
    ----------
    product : {'albedo', 'lst'} or a GLASS short name
    day : datetime.date
    version : int, optional
        Collection version (default :data:`VERSIONS`: ``V04`` albedo, ``V40`` LST).
    production : str
        Production date ``YYYYDDD``.
    """
    short = _short_name(product)
    version = VERSIONS[_product_key(product)] if version is None else version
    day = pd.Timestamp(day)
    return f"{short}.V{version:02d}.A{day.year:04d}{day.day_of_year:03d}.{production}.hdf"


_NAME = re.compile(r"^(GLASS[0-9A-Z]+)\.V(\d+)\.A(\d{4})(\d{3})\.(\d+)\.hdf$", re.IGNORECASE)


def parse_glass_filename(name: str) -> dict | None:
    """``{'short', 'product', 'version', 'date', 'production'}`` of a GLASS file name, or None if it is not one.

    ``product`` is the key of :data:`PRODUCTS` (None for another GLASS product), ``date`` a
    :class:`pandas.Timestamp` (None when the day of year does not exist).
    """
    m = _NAME.match(Path(name).name)
    if not m:
        return None
    short = m.group(1).upper()
    year, doy = int(m.group(3)), int(m.group(4))
    try:
        day = pd.Timestamp(dt.date(year, 1, 1) + dt.timedelta(days=doy - 1))
        if doy < 1 or day.year != year:
            day = None
    except (ValueError, OverflowError):
        day = None
    product = next((k for k, v in PRODUCTS.items() if v == short), None)
    return {"short": short, "product": product, "version": int(m.group(2)), "date": day,
            "production": m.group(5)}


def _short_name(product: str) -> str:
    if product in PRODUCTS:
        return PRODUCTS[product]
    if product.upper() in PRODUCTS.values():
        return product.upper()
    raise ValueError(f"unknown GLASS product {product!r}; valid: {', '.join(PRODUCTS)} "
                     f"(or {', '.join(PRODUCTS.values())})")


def _product_key(product: str) -> str:
    short = _short_name(product)
    return next(k for k, v in PRODUCTS.items() if v == short)


def _cadence(product: str, cadence_days) -> int:
    c = CADENCE_DAYS[_product_key(product)] if cadence_days is None else cadence_days
    if int(c) != c or c < 1:
        raise ValueError(f"cadence_days must be a whole number of days >= 1, got {cadence_days!r}")
    return int(c)


def composite_schedule(start, end, cadence_days: int) -> pd.DatetimeIndex:
    """The expected file dates in ``start..end`` (inclusive): day of year 1, 1 + c, 1 + 2c, ... of every year.

    The schedule restarts on 1 January (the GLASS / MODIS convention): with ``c = 8`` the dates are days 1, 9,
    ..., 361 (46 a year) and the interval from day 361 to the next 1 January is 5 days (6 in a leap year).
    ``c = 1`` gives every day.

    Returns
    -------
    pandas.DatetimeIndex
        Named ``time``.
    """
    first, last = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    c = int(cadence_days)
    if c < 1:
        raise ValueError(f"cadence_days must be >= 1, got {cadence_days!r}")
    if c == 1:
        return pd.date_range(first, last, freq="D", name="time")
    out = []
    for year in range(first.year, last.year + 1):
        jan1 = pd.Timestamp(year=year, month=1, day=1)
        n = 366 if pd.Timestamp(year=year, month=12, day=31).day_of_year == 366 else 365
        out += [jan1 + pd.Timedelta(days=k) for k in range(0, n, c)]
    idx = pd.DatetimeIndex(out, name="time")
    return idx[(idx >= first) & (idx <= last)]


def find_glass_files(root: str | os.PathLike, product: str, start, end, allow_gaps: bool = False,
                     cadence_days: int | None = None) -> pd.Series:
    """Find the GLASS HDF files of a product and period below a folder, one per expected date.

    The tree is searched recursively for ``<SHORT>.V<vv>.A<YYYY><DDD>.*.hdf`` (any version, case-insensitive);
    when a date has several files the highest version, then the latest production date, wins. The expected dates
    are the product's cadence schedule (:func:`composite_schedule`): every 8th day for albedo, every day for LST.

    Parameters
    ----------
    root : path-like
        Folder to search (e.g. the ``avhrr_dir`` holding ``albedo/`` and ``lst/``, or a product folder).
    product : {'albedo', 'lst'}
        ``'albedo'`` = GLASS02B05, ``'lst'`` = GLASS08B31 (the short names are accepted too).
    start, end : date-like
        First and last day, inclusive.
    allow_gaps : bool
        If False, raise :class:`TimeGapError` listing the expected dates without a file; if True, those dates
        hold ``None``.
    cadence_days : int, optional
        Days between files (default :data:`CADENCE_DAYS` of the product). Files at dates off the schedule are
        ignored with one :class:`~glass_sm.io.errors.DataWarning`.

    Returns
    -------
    pandas.Series
        Path (str) or None for every expected date, indexed by a ``DatetimeIndex`` named ``time``; the series'
        name is the short name.

    Raises
    ------
    MissingFileError
        ``root`` does not exist, or holds no file of the product on the schedule of the period.
    TimeGapError
        Expected dates without a file (``allow_gaps=False``).
    """
    short = _short_name(product)
    cadence = _cadence(product, cadence_days)
    root = Path(root)
    first, last = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if first > last:
        raise ValueError(f"empty period: start {start} is after end {end}")
    days = composite_schedule(first, last, cadence)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "folder not found"
        raise MissingFileError(f"{what} (looking for {short} files)", file=root)
    expected = set(days)
    best: dict[pd.Timestamp, tuple[tuple[int, int], str]] = {}
    same: dict[tuple, list[str]] = {}
    off_schedule: list[str] = []
    n_seen = 0
    for folder, _dirs, names in sorted(os.walk(root)):
        for name in sorted(names):
            info = parse_glass_filename(name)
            if info is None or info["short"] != short:
                continue
            n_seen += 1
            day = info["date"]
            if day is None or day < first or day > last:
                continue
            path = os.path.join(folder, name)
            if day not in expected:
                off_schedule.append(path)
                continue
            rank = (info["version"], int(info["production"]))
            if day in best and rank == best[day][0]:
                same.setdefault((day, rank), [best[day][1]]).append(path)
            elif day not in best or rank > best[day][0]:
                best[day] = (rank, path)
    # the same day, version and production date at two paths: which copy is right is undecidable -> error
    raise_duplicates({f"{d:%Y-%m-%d} V{r[0]} {r[1]}": p for (d, r), p in same.items() if best[d][0] == r},
                     f"{short} files", root)
    if off_schedule:
        warnings.warn(f"{root}: {len(off_schedule)} {short} file(s) at dates off the {cadence}-day schedule "
                      f"(day of year 1, {1 + cadence}, ...) ignored, e.g. {Path(off_schedule[0]).name} "
                      f"(pass cadence_days=1 to read daily files)", DataWarning, stacklevel=3)
    series = pd.Series([best[d][1] if d in best else None for d in days], index=days, name=short, dtype=object)
    if not best:
        what = f"{cadence}-day schedule" if cadence > 1 else "period"
        if len(days) == 0:
            seen = f"no date of the {cadence}-day schedule (day of year 1, {1 + cadence}, ...) in the period"
        elif off_schedule:
            seen = f"{len(off_schedule)} file(s) off the {cadence}-day schedule only"
        elif n_seen:
            seen = f"{n_seen} {short} file(s) outside the period"
        else:
            seen = f"no {short}.V*.A<YYYY><DDD>.*.hdf file"
        raise MissingFileError(f"holds no {short} file on the {what} of {first.date()}..{last.date()} "
                               f"(found {seen})", file=root)
    missing = days[series.isna().to_numpy()]
    if len(missing) and not allow_gaps:
        raise TimeGapError(f"has no {short} file for {format_dates(missing)} in {first.date()}..{last.date()} "
                           "(pass allow_gaps=True to read them as all-NaN)", file=root)
    return series


# ----------------------------------------------------------------------------------------------------------
# QC layers and packing
# ----------------------------------------------------------------------------------------------------------
def qc_layer_candidates(product: str, band: str | None = None,
                        qc_layer: str | Sequence[str] | None = None) -> tuple[str, ...]:
    """The QC layer names looked up, in order, for one product (and albedo band).

    Albedo band ``b``: ``QC_<b>``, ``QC_VIS``, ``QC`` (duplicates removed); LST: ``QC``. ``qc_layer`` (a name or
    a list of names) replaces the list.
    """
    if qc_layer is not None:
        return (qc_layer,) if isinstance(qc_layer, str) else tuple(qc_layer)
    if _product_key(product) == "lst":
        return ("QC",)
    names = [f"QC_{band}" if band else None, "QC_VIS", "QC"]
    return tuple(dict.fromkeys(n for n in names if n))


@dataclass(frozen=True)
class Packing:
    """How one SDS's stored integers become physical values, and where each number came from.

    Attributes
    ----------
    scale, offset : float
    scale_source : str
        ``'file'`` (attribute), ``'fallback'`` (:data:`RULES`) or ``'float SDS'`` (scale 1).
    calibrated : bool
        HDF4 calibration convention ``scale * (stored - offset)`` (``calibrated_nt`` attribute).
    fills : tuple
        Stored fill values.
    fill_source : str
        The attribute's name, ``'fallback'`` or ``'none'``.
    valid : (lo, hi)
        Valid stored range (either may be None).
    valid_source : str
        ``'valid_range'``, ``'valid_min/valid_max'``, ``'fallback'`` or ``'none'``.
    negative_invalid : bool
        Negative stored values are invalid (albedo).
    """

    scale: float
    offset: float
    scale_source: str
    calibrated: bool
    fills: tuple
    fill_source: str
    valid: tuple
    valid_source: str
    negative_invalid: bool

    def describe(self) -> str:
        """One line: scale, offset, fill and valid range in force, with their sources."""
        lo, hi = self.valid
        conv = "scale * (stored - offset)" if self.calibrated else "stored * scale + offset"
        fills = ", ".join(str(f) for f in self.fills) if self.fills else "none"
        return (f"{conv}: scale {self.scale:g} ({self.scale_source}), offset {self.offset:g}; fill {fills} "
                f"({self.fill_source}); valid stored range {lo}..{hi} ({self.valid_source})"
                + ("; any negative stored value invalid" if self.negative_invalid else ""))


def _scalar(v):
    return np.ravel(v)[0] if v is not None and np.size(v) else None


def sds_packing(attrs: dict, dtype, rules: ProductRules) -> Packing:
    """The :class:`Packing` in force for an SDS with attributes ``attrs`` and stored type ``dtype``.

    Attributes present in the file win; absent ones take the product's fallbacks (integer SDS only).
    """
    integer = np.issubdtype(np.dtype(dtype), np.integer)
    if "scale_factor" in attrs:
        scale, src = float(_scalar(attrs["scale_factor"])), "file"
    elif integer:
        scale, src = rules.scale, "fallback"
    else:
        scale, src = 1.0, "float SDS"
    if "add_offset" in attrs:
        offset = float(_scalar(attrs["add_offset"]))
    else:
        offset = rules.offset if integer else 0.0
    name, fills = fill_attribute(attrs)
    if name is not None:
        fill_source = name
    elif integer and rules.fill_stored:
        fills, fill_source = list(rules.fill_stored), "fallback"
    else:
        fills, fill_source = [], "none"
    vr = attrs.get("valid_range")
    if vr is not None and np.size(vr) >= 2:
        lo, hi = (np.ravel(vr)[:2].tolist())
        vsrc = "valid_range"
    elif "valid_min" in attrs or "valid_max" in attrs:
        lo, hi = _scalar(attrs.get("valid_min")), _scalar(attrs.get("valid_max"))
        lo, hi = (None if lo is None else lo.item() if hasattr(lo, "item") else lo,
                  None if hi is None else hi.item() if hasattr(hi, "item") else hi)
        vsrc = "valid_min/valid_max"
    elif integer and rules.valid_stored is not None:
        (lo, hi), vsrc = rules.valid_stored, "fallback"
    else:
        lo, hi, vsrc = None, None, "none"
    return Packing(scale, offset, src, "calibrated_nt" in attrs, tuple(fills), fill_source, (lo, hi), vsrc,
                   rules.negative_invalid)


def _unpack(stored: np.ndarray, packing: Packing) -> np.ndarray:
    """Stored values -> float32 physical values, fill / invalid as NaN."""
    stored = np.asarray(stored)
    bad = np.zeros(stored.shape, bool)
    for f in packing.fills:
        bad |= stored == f
    lo, hi = packing.valid
    if lo is not None:
        bad |= stored < lo
    if hi is not None:
        bad |= stored > hi
    if packing.negative_invalid:
        bad |= stored < 0
    if not np.issubdtype(stored.dtype, np.integer):
        bad |= ~np.isfinite(stored)
    if packing.calibrated:  # HDF4 SDsetcal convention
        out = (stored.astype(np.float64) - packing.offset) * packing.scale
    else:
        out = stored.astype(np.float64) * packing.scale + packing.offset
    out = out.astype(np.float32)
    out[bad] = np.nan
    return out


def _qc_bad(stored: np.ndarray, attrs: dict, rules: ProductRules, keep) -> np.ndarray:
    """True where the QC layer says: do not use (``keep``: max level for 'level', mask bits for 'bits')."""
    q = np.asarray(stored).astype(np.int64)
    if rules.qc_kind == "level":
        bad = (q & QC_LEVEL_BITS) > keep
    else:
        bad = (q & keep) != 0
    _, fills = fill_attribute(attrs)
    for f in fills:
        bad |= np.asarray(stored) == f
    return bad


def _qc_keep(rules: ProductRules, qc: str):
    table = ALBEDO_QC_POLICIES if rules.qc_kind == "level" else LST_QC_POLICIES
    if qc not in table:
        raise ValueError(f"qc for {rules.short} must be one of {list(table)}, got {qc!r}")
    keep = table[qc]
    return None if keep is None or (rules.qc_kind == "bits" and keep == 0) else keep


# ----------------------------------------------------------------------------------------------------------
# the file's grid
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


def _dms_to_deg(v: float) -> float:
    """HDF-EOS packed degrees ``DDDMMMSSS.SS`` -> decimal degrees."""
    sign = -1.0 if v < 0 else 1.0
    a = abs(v)
    d = math.floor(a / 1e6)
    m = math.floor((a - d * 1e6) / 1e3)
    s = a - d * 1e6 - m * 1e3
    return sign * (d + m / 60.0 + s / 3600.0)


_PAIR = r"\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\)"


def parse_struct_metadata(text: str) -> list[dict]:
    """The grids of an HDF-EOS2 ``StructMetadata.0`` text.

    Returns
    -------
    list of dict
        One per ``GROUP=GRID_<n>``: ``name``, ``xdim``, ``ydim``, ``projection`` and, when present,
        ``upper_left`` / ``lower_right`` as (lon, lat) in decimal degrees (packed ``DDDMMMSSS.SS`` converted;
        plain degrees kept when all four numbers are within +-360), ``fields`` (data field names).
    """
    grids = []
    for m in re.finditer(r"GROUP=(GRID_\d+)(.*?)END_GROUP=\1", text, re.DOTALL):
        body = m.group(2)

        def get(key, body=body):
            mm = re.search(rf"^\s*{key}\s*=\s*(.+?)\s*$", body, re.MULTILINE)
            return mm.group(1).strip().strip('"') if mm else None

        g = {"name": get("GridName"), "projection": get("Projection"), "xdim": None, "ydim": None}
        for k in ("xdim", "ydim"):
            v = get("XDim" if k == "xdim" else "YDim")
            g[k] = int(float(v)) if v is not None else None
        corners = []
        for key in ("UpperLeftPointMtrs", "LowerRightMtrs"):
            mm = re.search(rf"{key}\s*=\s*{_PAIR}", body)
            corners.append((float(mm.group(1)), float(mm.group(2))) if mm else None)
        if all(c is not None for c in corners):
            plain = all(abs(x) <= 360.0 for c in corners for x in c)
            conv = (lambda x: x) if plain else _dms_to_deg
            g["upper_left"] = tuple(conv(x) for x in corners[0])
            g["lower_right"] = tuple(conv(x) for x in corners[1])
        g["fields"] = re.findall(r'DataFieldName\s*=\s*"?([^"\n]+?)"?\s*$', body, re.MULTILINE)
        grids.append(g)
    return grids


def _struct_metadata(gattrs: dict) -> str | None:
    parts = sorted((k for k in gattrs if re.fullmatch(r"StructMetadata\.\d+", str(k))),
                   key=lambda k: int(str(k).split(".")[1]))
    if not parts:
        return None
    return "".join(str(gattrs[k]) for k in parts)


def _file_grid(gattrs: dict, shape: Sequence[int], path: str, var: str, short: str | None = None) -> _FileGrid:
    nrows, ncols = int(shape[0]), int(shape[1])
    present = [k for k in _GEO_KEYS if k in gattrs]
    if present and len(present) < 3:
        missing = [k for k in _GEO_KEYS if k not in gattrs]
        raise GridMismatchError(f"has geolocation attribute(s) {found_list(present)} but not {found_list(missing)}: "
                                "cannot place the sub-tile", file=path, variable=var)
    if present:
        try:
            north, west, res = (float(np.ravel(gattrs[k])[0]) for k in _GEO_KEYS)
        except (TypeError, ValueError) as e:
            raise GridMismatchError(f"has unreadable geolocation attributes ({e})", file=path, variable=var) from None
        return _FileGrid(north, west, res, nrows, ncols, "UpperLeftLatitude/UpperLeftLongitude/GridResolution")
    text = _struct_metadata(gattrs)
    if text is not None:
        grids = [g for g in parse_struct_metadata(text) if "upper_left" in g]
        g = next((g for g in grids if short and g["name"] == short), None)
        g = g or next((g for g in grids if (g["ydim"], g["xdim"]) == (nrows, ncols)), None)
        if g is not None:
            where = f"StructMetadata.0 grid {g['name']!r}"
            if g["projection"] not in (None, "GCTP_GEO"):
                raise GridMismatchError(f"{where} has projection {g['projection']}; only GCTP_GEO (lat/lon) is "
                                        "supported", file=path, variable=var)
            if (g["ydim"], g["xdim"]) != (nrows, ncols):
                raise GridMismatchError(f"has shape {nrows} x {ncols} but {where} is YDim {g['ydim']} x XDim "
                                        f"{g['xdim']}", file=path, variable=var)
            (w, n), (e, s) = g["upper_left"], g["lower_right"]
            rx, ry = (e - w) / ncols, (n - s) / nrows
            if abs(rx - ry) > _GRID_TOL or rx <= 0:
                raise GridMismatchError(f"{where} has cells of {rx:g} x {ry:g} deg (lon x lat): not a square "
                                        "north-up grid", file=path, variable=var)
            return _FileGrid(n, w, rx, nrows, ncols, where)
    res = 180.0 / nrows
    if abs(ncols * res - 360.0) > 1e-6:
        raise GridMismatchError(f"has no UpperLeftLatitude/UpperLeftLongitude/GridResolution attributes nor a "
                                f"usable StructMetadata.0, so it should be a global grid ({NROWS} x {NCOLS}), but "
                                f"its shape is {nrows} x {ncols}", file=path, variable=var)
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


# ----------------------------------------------------------------------------------------------------------
# one file
# ----------------------------------------------------------------------------------------------------------
@dataclass
class _FileRead:
    arrays: list  # one float32 array per requested SDS, QC and plausibility applied
    satellite: str  # '' when the file has no 'Satellite' attribute
    qc_used: list  # per SDS: the QC layer applied, or None
    no_qc: bool  # QC was wanted and no candidate layer exists
    implausible: list  # per SDS: number of values masked as implausible
    packing: list = field(default_factory=list)


def _open(path: str) -> SD:
    try:
        return SD(path, SDC.READ)
    except HDF4Error as e:
        size = os.path.getsize(path) if os.path.exists(path) else None
        raise CorruptFileError(f"cannot be opened as HDF4 ({e}; {size} bytes): truncated or not an HDF4 file",
                               file=path) from None


def _read_slab(sd: SD, available: dict, name: str, gattrs: dict, domain: Domain, path: str, short: str,
               window):
    shape = available[name][1]
    if len(shape) != 2:
        raise GridMismatchError(f"has {len(shape)} dimensions {tuple(shape)}; expected 2 (rows, columns)",
                                file=path, variable=name)
    slab = _hyperslab(_file_grid(gattrs, shape, path, name, short), domain, path, name)
    if window is not None and slab != window:
        raise GridMismatchError(f"has shape {tuple(shape)} unlike the other SDS of the file", file=path,
                                variable=name)
    r0, r1, c0, c1 = slab
    sds = sd.select(name)
    try:
        attrs = sds.attributes()
        stored = np.asarray(sds[r0:r1, c0:c1])
    finally:
        sds.endaccess()
    return slab, attrs, stored


def _read_file(path: str, sds_names: Sequence[str], qc_names: Sequence[tuple[str, ...]], domain: Domain,
               rules: ProductRules, keep, units_policy: UnitsPolicy) -> _FileRead:
    """Read the domain's slice of each SDS of one file, with QC (``keep`` None: no QC) and plausibility."""
    sd = _open(path)
    try:
        gattrs = sd.attributes()
        available = sd.datasets()
        window = None
        values, packs = [], []
        for name in sds_names:
            if name not in available:
                raise MissingVariableError(f"not found (found: {found_list(available)})", file=path, variable=name)
            window, attrs, stored = _read_slab(sd, available, name, gattrs, domain, path, rules.short, window)
            pack = sds_packing(attrs, stored.dtype, rules)
            v = _unpack(stored, pack)
            v = check_units(v, attrs, rules.units, path, name, policy=units_policy)
            check_units_upper_bound(v, rules.units, path, name,
                                    how=f"scale_factor {pack.scale:g} ({pack.scale_source})")
            values.append(np.asarray(v, dtype=np.float32))
            packs.append(pack)
        qc_used, no_qc, cache = [], False, {}
        if keep is not None:
            for v, cands in zip(values, qc_names):
                layer = next((c for c in cands if c in available), None)
                qc_used.append(layer)
                if layer is None:
                    no_qc = True
                    continue
                if layer not in cache:
                    window, attrs, stored = _read_slab(sd, available, layer, gattrs, domain, path, rules.short,
                                                       window)
                    cache[layer] = _qc_bad(stored, attrs, rules, keep)
                v[cache[layer]] = np.nan
        else:
            qc_used = [None] * len(values)
        lo, hi = rules.plausible
        implausible = []
        for v in values:
            with np.errstate(invalid="ignore"):
                out = (v < lo) | (v > hi)
            implausible.append(int(out.sum()))
            v[out] = np.nan
        sat = gattrs.get("Satellite")
        sat = str(sat).strip() if sat is not None else ""
        return _FileRead(values, sat, qc_used, no_qc, implausible, packs)
    except DataError:
        raise
    except HDF4Error as e:
        raise CorruptFileError(f"cannot be read ({e}): truncated or damaged HDF4 file", file=path) from None
    finally:
        try:
            sd.end()
        except HDF4Error:  # pragma: no cover - closing a damaged file
            pass


# ----------------------------------------------------------------------------------------------------------
# many files
# ----------------------------------------------------------------------------------------------------------
@dataclass
class _Series:
    files: pd.Series
    arrays: list
    satellite: np.ndarray
    qc_used: list  # per SDS: sorted names of the QC layers applied
    n_without_qc: int
    implausible: list  # per SDS
    packing: list  # per SDS: Packing of the first file read (None if no file)


def _read_series(root, product: str, start, end, domain: Domain, sds_names: Sequence[str],
                 qc_names: Sequence[tuple[str, ...]], qc: str, allow_gaps: bool, units_policy: UnitsPolicy,
                 progress: bool, cadence_days: int | None) -> _Series:
    rules = RULES[_product_key(product)]
    keep = _qc_keep(rules, qc)
    files = find_glass_files(root, product, start, end, allow_gaps=allow_gaps, cadence_days=cadence_days)
    nt = len(files)
    out = [np.full((nt, domain.nrows, domain.ncols), np.nan, np.float32) for _ in sds_names]
    satellite = np.full(nt, "", dtype=object)
    qc_used = [set() for _ in sds_names]
    implausible = [0] * len(sds_names)
    packing = [None] * len(sds_names)
    no_qc, bad_files = [], {}
    paths = files.to_numpy()
    for i in tqdm(range(nt), disable=not progress, desc=f"{files.name} files", unit="file"):
        path = paths[i]
        if path is None:
            continue
        r = _read_file(path, sds_names, qc_names, domain, rules, keep, units_policy)
        for k, a in enumerate(r.arrays):
            out[k][i] = a
            implausible[k] += r.implausible[k]
            if r.implausible[k]:
                bad_files.setdefault(k, path)
            if r.qc_used[k]:
                qc_used[k].add(r.qc_used[k])
            if packing[k] is None:
                packing[k] = r.packing[k]
        if r.no_qc:
            no_qc.append(path)
        satellite[i] = r.satellite
    present = [p for p in paths if p is not None]
    short = files.name
    if no_qc:
        looked = list(dict.fromkeys(c for cands in qc_names for c in cands))
        warnings.warn(f"{len(no_qc)} of {len(present)} {short} file(s) have no QC layer (looked for "
                      f"{found_list(looked)}): read without quality masking, e.g. {no_qc[0]}", DataWarning,
                      stacklevel=3)
    lo, hi = rules.plausible
    if any(implausible):
        units = "(dimensionless)" if rules.units == "1" else rules.units
        counts = ", ".join(f"{n} value(s) of {name}" for name, n in zip(sds_names, implausible) if n)
        example = bad_files[min(bad_files)]
        warnings.warn(f"{counts} outside the plausible range {lo:g}..{hi:g} {units} masked ({short}, e.g. "
                      f"{example})", DataWarning, stacklevel=3)
    for o, name in zip(out, sds_names):
        if not np.isfinite(o).any():
            raise EmptyDataError(
                f"has no valid value in {domain.bounds_str()} on any of {len(present)} date(s) "
                f"{files.index[0].date()}..{files.index[-1].date()} (all fill, invalid, masked by qc={qc!r} or "
                f"implausible; files {Path(present[0]).name} .. {Path(present[-1]).name})",
                file=root, variable=name)
    return _Series(files, out, satellite, [sorted(s) for s in qc_used], len(no_qc), implausible, packing)


_PLATFORM_ATTR = "file attribute 'Satellite'"
_PLATFORM_FUNC = "glass_sm.platforms.platform_of(date) (no 'Satellite' attribute)"


def _platform(times: pd.DatetimeIndex, satellite: np.ndarray | None) -> tuple[np.ndarray, str]:
    """Platform per time: the file's ``Satellite`` attribute where present, else :func:`platform_of`."""
    derived = platform_of(times).astype(object)
    if satellite is None:
        return derived.astype(str), _PLATFORM_FUNC
    has = np.array([bool(s) for s in satellite])
    out = np.where(has, satellite, derived).astype(str)
    source = _PLATFORM_ATTR if has.all() else _PLATFORM_FUNC if not has.any() else \
        f"{_PLATFORM_ATTR} where present, else glass_sm.platforms.platform_of(date)"
    return out, source


def _coords(times: pd.DatetimeIndex, domain: Domain, platform: np.ndarray, source: str) -> dict:
    time = xr.Variable("time", times.to_numpy().astype("datetime64[ns]"),
                       {"standard_name": "time", "long_name": "time", "axis": "T"})
    return {"time": time, "lat": domain.lat, "lon": domain.lon,
            "platform": xr.Variable("time", platform, {"long_name": "AVHRR platform of the date",
                                                       "source": source})}


def _check_domain(domain) -> Domain:
    if not isinstance(domain, Domain):
        raise TypeError(f"domain must be a glass_sm.grid.Domain, got {type(domain).__name__}")
    return domain


def _var_attrs(s: _Series, k: int, qc: str, rules: ProductRules) -> dict:
    pack = s.packing[k]
    return {
        "qc_policy": qc,
        "qc_layer": ", ".join(s.qc_used[k]) if s.qc_used[k] else "none",
        "n_masked_implausible": int(s.implausible[k]),
        "plausible_range": [float(rules.plausible[0]), float(rules.plausible[1])],
        "packing": pack.describe() if pack is not None else "no file read",
    }


def _albedo_vars(bands: Iterable[str]):
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
    return sds_names, var_names, meta


def read_glass_albedo(root: str | os.PathLike, start, end, domain: Domain,
                      bands: Iterable[str] = ("shortwave",), allow_gaps: bool = True, qc: QCPolicy = "acceptable",
                      units_policy: UnitsPolicy = "convert", progress: bool = True, *,
                      cadence_days: int | None = None, qc_layer: str | Sequence[str] | None = None) -> xr.Dataset:
    """Read GLASS AVHRR albedo composites (GLASS02B05) on a domain, one time step per composite date.

    Parameters
    ----------
    root : path-like
        Folder searched recursively for ``GLASS02B05.V<vv>.A<YYYY><DDD>.*.hdf``.
    start, end : date-like
        First and last day, inclusive; the composites dated in this period are read.
    domain : glass_sm.grid.Domain
        Cells to read (0.05 deg grid).
    bands : iterable of str
        Spectral bands: ``'shortwave'`` (SDS ``ABD_BSA_shortwave``/``ABD_WSA_shortwave`` -> ``albedo_bsa``,
        ``albedo_wsa``), ``'VIS'`` (-> ``albedo_bsa_vis``, ``albedo_wsa_vis``), ``'NIR'``, any ``<band>`` likewise.
    allow_gaps : bool
        Expected composite dates without a file become all-NaN (True) or raise :class:`TimeGapError` (False).
    qc : {'acceptable', 'good', 'poor', 'none'}
        Highest QC quality level kept (bits 0-1: 0 good, 1 acceptable), or no QC (module docstring).
    units_policy : {'convert', 'raise'}
        Percent albedo is divided by 100 or rejected (:func:`glass_sm.io.errors.check_units`).
    progress : bool
        Show a tqdm progress bar over the files.
    cadence_days : int, optional
        Days between composites (default 8: day of year 1, 9, ..., 361).
    qc_layer : str or list of str, optional
        QC layer name(s) to look up instead of :func:`qc_layer_candidates` (``QC_<band>``, ``QC_VIS``, ``QC``).

    Returns
    -------
    xarray.Dataset
        ``albedo_bsa``, ``albedo_wsa`` (and per-band variables) ``(time, lat, lon)`` float32, units ``1``, lat
        descending, ``time`` = the composite (file) dates; coordinate ``platform(time)``. Variable attributes
        ``qc_layer`` (layer(s) applied), ``qc_policy``, ``n_masked_implausible``, ``packing``; dataset
        attributes ``cadence_days``, ``n_files``, ``n_files_without_qc``, ``n_composites_missing``.

    Raises
    ------
    MissingFileError, MissingVariableError, UnitsError, EmptyDataError, TimeGapError, GridMismatchError,
    CorruptFileError
        See :mod:`glass_sm.io.errors`; each names the file and the SDS.

    See Also
    --------
    read_glass_albedo_daily : the same composites interpolated to daily values, with a flag.
    """
    domain = _check_domain(domain)
    cadence = _cadence("albedo", cadence_days)
    sds_names, var_names, meta = _albedo_vars(bands)
    qc_names = [qc_layer_candidates("albedo", band, qc_layer) for _, band in meta]
    rules = RULES["albedo"]
    s = _read_series(root, "albedo", start, end, domain, sds_names, qc_names, qc, allow_gaps, units_policy,
                     progress, cadence)
    data_vars = {}
    for k, (name, sds, arr, (sky, band)) in enumerate(zip(var_names, sds_names, s.arrays, meta)):
        data_vars[name] = (("time", "lat", "lon"), arr, {
            "standard_name": "surface_albedo",
            "long_name": f"{sky} surface albedo, {band} band, {cadence}-day composite (GLASS02B05 AVHRR)",
            "units": "1",
            "source_variable": sds,
            **_var_attrs(s, k, qc, rules),
        })
    times = pd.DatetimeIndex(s.files.index)
    platform, psrc = _platform(times, s.satellite)
    ds = xr.Dataset(data_vars, coords=_coords(times, domain, platform, psrc))
    n_files = int(s.files.notna().sum())
    ds.attrs.update(title=f"GLASS AVHRR albedo {cadence}-day composites (GLASS02B05)", source=str(root),
                    history=f"read by glass_sm.io.glass_avhrr.read_glass_albedo from {n_files} files",
                    Conventions="CF-1.8", cadence_days=cadence, n_files=n_files,
                    n_files_without_qc=int(s.n_without_qc), n_composites_missing=int(s.files.isna().sum()))
    return lat_lon_attrs(ds)


# ----------------------------------------------------------------------------------------------------------
# composites -> daily
# ----------------------------------------------------------------------------------------------------------
def interpolate_composites(values: np.ndarray, sample_times, days, max_span_days: float | None = None,
                           chunk_days: int = 366) -> tuple[np.ndarray, np.ndarray]:
    """Daily values from composites by linear interpolation in time between the two that bracket each day.

    Day ``t`` with bracketing samples ``s_k <= t < s_{k+1}`` gets
    ``v_k + (t - s_k) / (s_{k+1} - s_k) * (v_{k+1} - v_k)`` (flag :data:`FLAG_INTERPOLATED`) where both are
    valid; ``t == s_k`` gets ``v_k`` (flag :data:`FLAG_COMPOSITE_DAY`) where it is valid; everything else
    is NaN with flag :data:`FLAG_GAP`: a bracketing composite is NaN, the day is before the first or after the
    last sample, or the samples are more than ``max_span_days`` apart. Pass every *expected* composite (NaN
    where it is missing), so that a gap is never bridged silently.

    Parameters
    ----------
    values : numpy.ndarray
        ``(n_composites, ...)`` composite values, NaN = missing.
    sample_times : array-like of datetime-like
        Time each composite represents (increasing), e.g. file date + sample offset.
    days : array-like of datetime-like
        The days to produce (their time of day is kept: midnight for dates).
    max_span_days : float, optional
        Longest interval between two samples that is interpolated.
    chunk_days : int
        Days processed at once (bounds the temporaries).

    Returns
    -------
    daily : numpy.ndarray
        ``(n_days, ...)`` float32.
    flag : numpy.ndarray
        ``(n_days, ...)`` int8 of :data:`FLAG_COMPOSITE_DAY`, :data:`FLAG_INTERPOLATED`, :data:`FLAG_GAP`.
    """
    values = np.asarray(values)
    st = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(sample_times)))).as_unit("ns")
    dd = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(days)))).as_unit("ns")
    if len(st) != values.shape[0]:
        raise ValueError(f"{len(st)} sample times for {values.shape[0]} composites")
    if len(st) > 1 and not (np.diff(st.asi8) > 0).all():
        raise ValueError("sample_times must be strictly increasing")
    n = len(st)
    out = np.full((len(dd),) + values.shape[1:], np.nan, np.float32)
    flag = np.full(out.shape, FLAG_GAP, np.int8)
    if n == 0 or len(dd) == 0:
        return out, flag
    s_ns, d_ns = st.asi8.astype(np.float64), dd.asi8.astype(np.float64)
    tol = 1e9  # 1 s, in ns
    k = np.searchsorted(s_ns, d_ns + tol, side="right") - 1  # last sample <= day (within 1 s)
    exact = (k >= 0) & (np.abs(d_ns - s_ns[np.clip(k, 0, n - 1)]) <= tol)
    inside = (k >= 0) & (k < n - 1) & ~exact
    kk = np.clip(k, 0, n - 1)
    k1 = np.clip(k + 1, 0, n - 1)
    span = (s_ns[k1] - s_ns[kk]) / 86400e9
    if max_span_days is not None:
        inside &= span <= max_span_days + 1e-9
    w = np.where(inside, (d_ns - s_ns[kk]) / np.where(span > 0, span * 86400e9, 1.0), 0.0)
    extra = (1,) * (values.ndim - 1)
    valid = np.isfinite(values)
    for a in range(0, len(dd), chunk_days):
        sl = slice(a, a + chunk_days)
        v0, ok0 = values[kk[sl]].astype(np.float32), valid[kk[sl]]
        v1, ok1 = values[k1[sl]].astype(np.float32), valid[k1[sl]]
        ex, ins = exact[sl].reshape(-1, *extra), inside[sl].reshape(-1, *extra)
        ww = w[sl].reshape(-1, *extra).astype(np.float32)
        on_day = ex & ok0
        between = ins & ok0 & ok1
        with np.errstate(invalid="ignore"):
            interp = v0 + ww * (v1 - v0)
        out[sl] = np.where(on_day, v0, np.where(between, interp, np.nan))
        flag[sl] = np.where(on_day, FLAG_COMPOSITE_DAY, np.where(between, FLAG_INTERPOLATED, FLAG_GAP))
    return out, flag


def composites_to_daily(composites: xr.Dataset, days, sample_offset_days: float = 0.0,
                        max_span_days: float | None = None) -> xr.Dataset:
    """Interpolate every ``(time, lat, lon)`` variable of a composite dataset to daily values, with one flag.

    A composite pixel counts only when **every** variable is valid in it (otherwise all are set to NaN there),
    so one flag describes them all.

    Parameters
    ----------
    composites : xarray.Dataset
        As returned by :func:`read_glass_albedo`: one time step per expected composite, NaN where missing.
    days : array-like of datetime-like
        The days wanted.
    sample_offset_days : float
        Sample time of a composite = its ``time`` + this many days (0: the file date, as NASA LIS; 3.5: the
        middle of 8 days starting on the file date).
    max_span_days : float, optional
        See :func:`interpolate_composites`.

    Returns
    -------
    xarray.Dataset
        The variables on ``days`` (float32, attributes kept, ``interpolation`` attribute added), the int8
        ``composite_flag(time, lat, lon)`` (:data:`COMPOSITE_FLAG_ATTRS`), coordinate ``platform(time)`` from
        :func:`glass_sm.platforms.platform_of`, dataset attributes of the composites plus
        ``sample_offset_days`` and the fraction of pixel-days of each flag value.
    """
    days = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(days))), name="time")
    names = [n for n, v in composites.data_vars.items() if v.dims == ("time", "lat", "lon")]
    if not names:
        raise ValueError("composites has no (time, lat, lon) variable")
    ctimes = pd.DatetimeIndex(composites["time"].values)
    samples = ctimes + pd.to_timedelta(float(sample_offset_days), unit="D")
    arrays = {n: composites[n].values.astype(np.float32) for n in names}
    joint = np.logical_and.reduce([np.isfinite(a) for a in arrays.values()])
    data_vars, flag = {}, None
    for n in names:
        a = np.where(joint, arrays[n], np.nan).astype(np.float32)
        daily, f = interpolate_composites(a, samples, days, max_span_days=max_span_days)
        flag = f if flag is None else flag
        attrs = dict(composites[n].attrs)
        attrs["long_name"] = str(attrs.get("long_name", n)).replace(" composite", " composites") + \
            ", interpolated linearly in time to daily values"
        attrs["interpolation"] = (f"linear in time between the bracketing composites (sample time = file date + "
                                  f"{float(sample_offset_days):g} d); NaN where composite_flag = {FLAG_GAP}")
        data_vars[n] = (("time", "lat", "lon"), daily, attrs)
    data_vars["composite_flag"] = (("time", "lat", "lon"), flag, dict(COMPOSITE_FLAG_ATTRS))
    platform, psrc = _platform(days, None)
    ds = xr.Dataset(data_vars, coords={"time": days, "lat": composites["lat"].values,
                                       "lon": composites["lon"].values,
                                       "platform": ("time", platform, {"long_name": "AVHRR platform of the day",
                                                                       "source": psrc})})
    ds["time"].attrs.update(standard_name="time", long_name="time", axis="T")
    ds.attrs.update(composites.attrs)
    total = max(flag.size, 1)
    ds.attrs.update(sample_offset_days=float(sample_offset_days),
                    fraction_composite_day=float((flag == FLAG_COMPOSITE_DAY).sum() / total),
                    fraction_between_composites=float((flag == FLAG_INTERPOLATED).sum() / total),
                    fraction_composite_missing=float((flag == FLAG_GAP).sum() / total))
    return lat_lon_attrs(ds)


def read_glass_albedo_daily(root: str | os.PathLike, start, end, domain: Domain,
                            bands: Iterable[str] = ("shortwave",), allow_gaps: bool = True,
                            qc: QCPolicy = "acceptable", units_policy: UnitsPolicy = "convert",
                            progress: bool = True, *, cadence_days: int | None = None,
                            sample_offset_days: float = 0.0,
                            qc_layer: str | Sequence[str] | None = None) -> xr.Dataset:
    """Daily GLASS AVHRR albedo on a domain: the composites interpolated linearly in time, with a flag.

    Reads the composites that bracket the period (the last one sampled on or before ``start`` to the first one
    on or after ``end``) with :func:`read_glass_albedo` and interpolates them with :func:`composites_to_daily`.

    Parameters
    ----------
    root, start, end, domain, bands, qc, units_policy, progress, cadence_days, qc_layer
        As :func:`read_glass_albedo`.
    allow_gaps : bool
        False raises :class:`TimeGapError` when a composite needed by a day of the period has no file.
    sample_offset_days : float
        Sample time of a composite = file date + this (default 0, NASA LIS's choice; whether the file date is
        the start or the centre of the 8 days is undocumented).

    Returns
    -------
    xarray.Dataset
        Daily ``albedo_bsa``, ``albedo_wsa`` (...) float32 on every day of ``start..end`` (NaN where
        ``composite_flag`` is :data:`FLAG_GAP`), ``composite_flag`` int8 (0 composite day, 1 between composites,
        2 composite missing), coordinate ``platform(time)``; attributes as :func:`composites_to_daily`.
    """
    domain = _check_domain(domain)
    cadence = _cadence("albedo", cadence_days)
    days = pd.date_range(pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize(), freq="D", name="time")
    if len(days) == 0:
        raise ValueError(f"empty period: start {start} is after end {end}")
    off = pd.to_timedelta(float(sample_offset_days), unit="D")
    pad = pd.Timedelta(days=cadence + math.ceil(abs(float(sample_offset_days))) + 1)
    sched = composite_schedule(days[0] - pad, days[-1] + pad, cadence)
    samples = sched + off
    i0 = max(int(np.searchsorted(samples, days[0], side="right")) - 1, 0)
    i1 = min(int(np.searchsorted(samples, days[-1], side="left")), len(sched) - 1)
    needed = sched[i0:i1 + 1]
    comp = read_glass_albedo(root, needed[0], needed[-1], domain, bands=bands, allow_gaps=True, qc=qc,
                             units_policy=units_policy, progress=progress, cadence_days=cadence, qc_layer=qc_layer)
    missing = needed[comp[next(iter(comp.data_vars))].isnull().all(("lat", "lon")).values]
    if len(missing) and not allow_gaps:
        paths = find_glass_files(root, "albedo", needed[0], needed[-1], allow_gaps=True, cadence_days=cadence)
        nofile = paths.index[paths.isna().to_numpy()]
        if len(nofile):
            raise TimeGapError(f"has no GLASS02B05 file for {format_dates(nofile)}, composite(s) needed to "
                               f"interpolate {days[0].date()}..{days[-1].date()} (pass allow_gaps=True to leave "
                               "those days NaN, flagged)", file=root)
    ds = composites_to_daily(comp, days, sample_offset_days=sample_offset_days, max_span_days=cadence)
    ds.attrs.update(title="GLASS AVHRR albedo (GLASS02B05), daily by linear interpolation of the "
                          f"{cadence}-day composites",
                    history=f"read by glass_sm.io.glass_avhrr.read_glass_albedo_daily from {comp.attrs['n_files']} "
                            "files",
                    composites_read=f"{needed[0].date()}..{needed[-1].date()}")
    return ds


# ----------------------------------------------------------------------------------------------------------
# LST
# ----------------------------------------------------------------------------------------------------------
def read_glass_lst(root: str | os.PathLike, start, end, domain: Domain, allow_gaps: bool = True,
                   qc: QCPolicy = "cloud", units_policy: UnitsPolicy = "convert", progress: bool = True, *,
                   qc_layer: str | Sequence[str] | None = None) -> xr.DataArray:
    """Read GLASS AVHRR daily land surface temperature (GLASS08B31, SDS ``LST``) on a domain.

    Parameters
    ----------
    root : path-like
        Folder searched recursively for ``GLASS08B31.V<vv>.A<YYYY><DDD>.*.hdf``.
    start, end : date-like
        First and last day, inclusive.
    domain : glass_sm.grid.Domain
        Cells to read (0.05 deg grid).
    allow_gaps : bool
        Days without a file become all-NaN (True) or raise :class:`TimeGapError` (False).
    qc : {'cloud', 'strict', 'none'}
        QC masking policy (module docstring; the LST QC layer's meaning is an assumption).
    units_policy : {'convert', 'raise'}
        LST in degC is converted to K or rejected (:func:`glass_sm.io.errors.check_units`).
    progress : bool
        Show a tqdm progress bar over the files.
    qc_layer : str or list of str, optional
        QC layer name(s) to look up instead of ``QC``.

    Returns
    -------
    xarray.DataArray
        ``lst (time, lat, lon)`` float32 in K, lat descending; coordinate ``platform(time)``; attributes
        ``qc_layer``, ``qc_policy``, ``n_masked_implausible``, ``n_files``, ``n_files_without_qc``, ``packing``.

    Raises
    ------
    MissingFileError, MissingVariableError, UnitsError, EmptyDataError, TimeGapError, GridMismatchError,
    CorruptFileError
        See :mod:`glass_sm.io.errors`; each names the file and the SDS.
    """
    domain = _check_domain(domain)
    rules = RULES["lst"]
    s = _read_series(root, "lst", start, end, domain, ["LST"], [qc_layer_candidates("lst", None, qc_layer)], qc,
                     allow_gaps, units_policy, progress, 1)
    times = pd.DatetimeIndex(s.files.index)
    platform, psrc = _platform(times, s.satellite)
    da = xr.DataArray(s.arrays[0], dims=("time", "lat", "lon"), coords=_coords(times, domain, platform, psrc),
                      name="lst",
                      attrs={"standard_name": "surface_temperature",
                             "long_name": "land surface temperature (GLASS08B31 AVHRR)",
                             "units": "K", "source_variable": "LST", "source": str(root), **_var_attrs(s, 0, qc, rules),
                             "n_files": int(s.files.notna().sum()), "n_files_without_qc": int(s.n_without_qc)})
    return lat_lon_attrs(da)
