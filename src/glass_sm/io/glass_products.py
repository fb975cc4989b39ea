"""The GLASS AVHRR products' rules: short names, versions, cadence (8-day albedo composites, daily LST), QC
semantics, attribute fallbacks, file names and finding the files of a period (see :mod:`glass_sm.io.glass_avhrr`)."""

from __future__ import annotations

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from glass_sm.io.errors import DataWarning, MissingFileError, TimeGapError, format_dates, raise_duplicates
from glass_sm.platforms import platform_of


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
    if first.year <= last.year and first.tz is None and last.tz is None:  # each year's dates from numpy (remembered)
        days = np.concatenate([_year_schedule(year, c) for year in range(first.year, last.year + 1)])
        keep = (days >= first.as_unit("us").asm8) & (days <= last.as_unit("us").asm8)  # midnights: exact in us
        return pd.DatetimeIndex(days[keep], name="time")
    return _schedule_by_timestamps(first, last, c)


def _schedule_by_timestamps(first: pd.Timestamp, last: pd.Timestamp, c: int) -> pd.DatetimeIndex:
    """:func:`composite_schedule` of midnights ``first..last`` built one Timestamp at a time: its definition (the
    numpy path is tested against it) and its path for dates with a time zone."""
    out = []
    for year in range(first.year, last.year + 1):
        jan1 = pd.Timestamp(year=year, month=1, day=1)
        n = 366 if pd.Timestamp(year=year, month=12, day=31).day_of_year == 366 else 365
        out += [jan1 + pd.Timedelta(days=k) for k in range(0, n, c)]
    idx = pd.DatetimeIndex(out, name="time")
    return idx[(idx >= first) & (idx <= last)]


@functools.lru_cache(maxsize=4096)
def _year_schedule(year: int, c: int) -> np.ndarray:
    """Day of year 1, 1 + c, ... of ``year`` as datetime64[us] (the unit of the ``Timestamp`` s
    :func:`composite_schedule` computes them as), read-only."""
    n = 366 if pd.Timestamp(year=year, month=12, day=31).day_of_year == 366 else 365
    out = np.datetime64(pd.Timestamp(year=year, month=1, day=1).as_unit("us").asm8) + \
        np.arange(0, n, c).astype("timedelta64[D]")
    out.flags.writeable = False
    return out


def list_tree(root: str | os.PathLike) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Every folder below ``root`` (itself included) with the names of its files, folders and names sorted: the
    order :func:`find_glass_files` searches in. One walk of a tree, to hand to several :func:`find_glass_files`
    calls on it (``listing=``), as :func:`glass_sm.data.ingest.plan_ingest` does for albedo and LST."""
    return tuple((folder, tuple(sorted(names))) for folder, _dirs, names in sorted(os.walk(root)))


@functools.lru_cache(maxsize=64)
def _product_regex(short: str, y0: int | None, y1: int | None, multiline: bool) -> re.Pattern:
    """:data:`_NAME` for one product's files (the short name in the pattern, case-insensitive as there) of the years
    ``y0..y1`` (any year when None); ``multiline``: for names joined by newlines, the whole name its only group
    (what ``findall`` returns), else the year as the group ``year``."""
    years = r"\d{4}" if y0 is None else "|".join(f"{y:04d}" for y in range(y0, y1 + 1))
    body = rf"{re.escape(short)}\.V\d+\.A(?{':' if multiline else 'P<year>'}{years})\d{{3}}\.\d+\.hdf"
    if multiline:
        return re.compile(rf"^({body})$", re.IGNORECASE | re.MULTILINE)
    return re.compile(rf"^{body}$", re.IGNORECASE)


def _product_names(short: str, names, y0: int | None = None, y1: int | None = None) -> list[str]:
    r"""The names among ``names`` (in their order) that :data:`_NAME` matches with the short name ``short`` and a
    year in ``y0..y1`` (any year when None): one regular-expression search of the names joined by newlines, so
    that the names of other products and years cost no Python step (the 40-year twin's AVHRR tree, 16,000 names,
    in ~2 ms instead of ~20 ms name by name). Names with a newline or a non-ASCII character (never GLASS names:
    the pattern's ``\d`` matches non-ASCII digits too) are matched one by one, the year compared as a number."""
    text = "\n".join(names)
    if text.isascii() and text.count("\n") == max(len(names) - 1, 0):
        return _product_regex(short, y0, y1, True).findall(text)
    one = _product_regex(short, None, None, False)
    return [n for n, m in zip(names, map(one.match, names))
            if m and (y0 is None or y0 <= int(m.group("year")) <= y1)]


def find_glass_files(root: str | os.PathLike, product: str, start, end, allow_gaps: bool = False,
                     cadence_days: int | None = None,
                     listing: tuple[tuple[str, tuple[str, ...]], ...] | None = None) -> pd.Series:
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
    listing : tuple, optional
        :func:`list_tree` of ``root``, when the caller has walked it already (searching several products in one
        tree); default: ``root`` is walked here.

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
    tree = list_tree(root) if listing is None else listing
    for folder, names in tree:
        # the product's names of the period's years first (one regular-expression search of the folder): the full
        # parse (a Timestamp per file) only for them, so listing one year in a 40-year archive costs what walking
        # it costs (~12 ms for 16,000 names instead of ~250 ms); the same files kept
        for name in _product_names(short, names, first.year, last.year):
            info = parse_glass_filename(name)
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
        elif n_seen := sum(len(_product_names(short, names)) for _, names in tree):
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
