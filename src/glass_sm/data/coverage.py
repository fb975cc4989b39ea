"""Input coverage: the days each source holds, listed against the run's period before any file is read.

A whole year of LST files missing used to be filled silently from the day-of-year climatology (only the per-day
flag showed it). Now :func:`glass_sm.data.cube.build_cube` first lists, cheaply, what every source has:

============  =========================================================  ============================================
source        listed (nothing is read but names or a time coordinate)    days it must cover
============  =========================================================  ============================================
albedo        GLASS02B05 file names under ``data.avhrr_dir``             ``period.start`` .. ``period.end``: one file
                                                                         per ``data.albedo_cadence_days`` composite
lst           GLASS08B31 file names under ``data.avhrr_dir``             the same, one file a day
era5land      the time steps of each file under ``data.era5land_dir``    the same (a UTC day with one step counts)
              (its time coordinate only)
glass_modis   GLASS-MODIS SM file names under ``data.glass_modis_dir``   the period within the label record,
                                                                         ``period.label_start`` (.. ``label_end``):
                                                                         days outside it are not missing
static        ``dem``, ``sand``, ``clay``, ``silt`` under                no days: each layer must exist
              ``data.static_dir``
============  =========================================================  ============================================

Rule
----
A *missing run* is a stretch of consecutive days on which a source has no file (no time step; for a composite
product, the days its missing composites stand for). A run of at most ``cube.max_missing_run_days`` days (default
30, as ``cube.max_gap_days``: a cloud season, a few lost files) is a short gap: filled and flagged by the cube as
before. A longer run (a whole month or more) in a source not named in ``cube.allow_missing_inputs`` is an
:class:`InputCoverageError` before any reading, naming the source, the first and last day of each such run (five
listed, then a count) and how to allow it. An allowed source is built anyway (albedo and LST filled from the
climatology and flagged, ERA5-Land filled, labels left NaN); its runs are in the coverage table
(:func:`coverage_table`: stage 01's ``input_coverage``) and in the cube's ``missing_inputs`` attribute. A missing
static layer or source folder is a :class:`~glass_sm.io.errors.MissingFileError` (nothing to fill from).

Cadence: GLASS AVHRR albedo is an 8-day composite (files at day of year 1, 9, ..., 361; ``data.albedo_cadence_days``):
one file is expected per composite date (the table's ``days_expected`` counts files), and a missing composite
stands for the days up to the next date, so one missing composite is a short gap and four in a row a long one.
"""

from __future__ import annotations

import os

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from glass_sm.io import era5land, glass_avhrr, glass_modis, static
from glass_sm.io.errors import MissingFileError, TimeGapError, found_list

__all__ = ["SOURCES", "STATIC_LAYERS", "COLUMNS", "InputCoverageError", "SourceDays", "SourceListing",
           "list_inputs", "composite_days", "avhrr_days", "era5land_days", "format_runs", "coverage_row",
           "coverage_table", "check_coverage", "allowed_runs_text"]

SOURCES = ("albedo", "lst", "era5land", "glass_modis")
"""The dated sources, as named in ``cube.allow_missing_inputs`` and in the table's ``source`` column."""
STATIC_LAYERS = ("dem", "sand", "clay", "silt")
RUNS_LISTED = 5  #: missing runs listed by name in a message or a table cell; the rest are counted
COLUMNS = ["source", "first_day", "last_day", "cadence_days", "days_expected", "days_present", "days_missing",
           "long_runs", "long_run_days", "longest_run_days", "first_missing", "last_missing", "long_run_list",
           "allowed", "status", "where", "what"]
"""Columns of the coverage table, one row per source (and one for the static layers)."""


class InputCoverageError(TimeGapError):
    """Sources lack files on a run of days longer than ``cube.max_missing_run_days`` and are not allowed to.

    Attributes
    ----------
    sources : list of str
        The sources at fault.
    table : pandas.DataFrame
        The whole coverage table (:func:`coverage_table`).
    """

    def __init__(self, detail: str, *, sources=(), table: pd.DataFrame | None = None, **kw):
        super().__init__(detail, **kw)
        self.sources = list(sources)
        self.table = table


@dataclass(frozen=True)
class SourceDays:
    """The days on which a source should have a file (a time step), and whether it has one.

    Parameters
    ----------
    source : str
        One of :data:`SOURCES`.
    where : str
        The folder listed.
    what : str
        What was listed (file pattern or time steps), for messages.
    days : pandas.DatetimeIndex
        The dates of the expected files: every day of the period for a daily source; for a composite source
        (``cadence_days`` > 1) the composite dates, the first one possibly before the period (its composite
        covers the period's first day).
    present : numpy.ndarray of bool
        Whether the source has the file of that date.
    first, last : pandas.DatetimeIndex, optional
        The days of the period each file stands for: ``days`` clipped to the period (daily, the default), or
        from the composite date to the day before the next one.
    cadence_days : int
        1 for a daily source, 8 for GLASS 8-day composites.
    """

    source: str
    where: str
    what: str
    days: pd.DatetimeIndex
    present: np.ndarray
    first: pd.DatetimeIndex | None = None
    last: pd.DatetimeIndex | None = None
    cadence_days: int = 1

    def missing_runs(self) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """``(first, last)`` day of the period of each run of consecutive missing files, in time order (for a
        composite source, the days its missing composites stand for)."""
        m = ~np.asarray(self.present, bool)
        if not m.any():
            return []
        first = self.days if self.first is None else self.first
        last = self.days if self.last is None else self.last
        starts = np.flatnonzero(m & ~np.r_[False, m[:-1]])
        ends = np.flatnonzero(m & ~np.r_[m[1:], False])
        return [(first[a], last[b]) for a, b in zip(starts, ends)]

    def period(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """The first and last day of the period the source covers (None, None when nothing is expected)."""
        if len(self.days) == 0:
            return None, None
        return ((self.days if self.first is None else self.first)[0],
                (self.days if self.last is None else self.last)[-1])


def _run_days(run: tuple[pd.Timestamp, pd.Timestamp]) -> int:
    return (run[1] - run[0]).days + 1


def format_runs(runs, limit: int = RUNS_LISTED) -> str:
    """``'1999-01-01..1999-12-31 (365 days), 2000-03-01 (1 day)'``: the first ``limit`` runs, then a count."""
    def one(run):
        n = _run_days(run)
        span = f"{run[0]:%Y-%m-%d}" if n == 1 else f"{run[0]:%Y-%m-%d}..{run[1]:%Y-%m-%d}"
        return f"{span} ({n} day{'s' if n != 1 else ''})"

    text = ", ".join(one(r) for r in runs[:limit])
    if len(runs) > limit:
        more = len(runs) - limit
        text += f" and {more} more run{'s' if more != 1 else ''}"
    return text


# ----------------------------------------------------------------------------------------------------------
# listing
# ----------------------------------------------------------------------------------------------------------
class SourceListing:
    """The run's source folders listed once, for the coverage table and the day-major ingest's plan alike.

    Stage 01 lists what every source holds twice: for the coverage table (:func:`coverage_table`, before any
    reading) and to plan the ingest (:func:`glass_sm.data.ingest.plan_sources`). On the real archive each listing
    walks ~24,000 names on a parallel file system (on the 40-year twin: ~55 ms of the driver's CPU for the ingest
    plan of one year, ~70 ms for the coverage table, which walked the AVHRR tree once for albedo and again for LST).
    One instance, handed to both (``listing=``), walks each folder once per run: each part is listed the first time
    it is asked for and kept, so the folders are listed in the order, and with the errors, of the code that asks
    (:class:`~glass_sm.io.errors.MissingFileError` for a missing folder, as before).

    What is kept: the AVHRR tree's names (:func:`glass_sm.io.glass_avhrr.list_tree`, for albedo and LST), the
    GLASS-MODIS files by day of the period's part of the label record
    (:func:`glass_sm.io.glass_modis.find_glass_modis_files`) and the ERA5-Land files
    (:func:`glass_sm.io.era5land.list_era5land_files`; their time axes are kept per process by
    :func:`era5land_file_times`). A listing is the folders' state when it was made: a file added later is not
    seen (as by the coverage table made from it); the ingest's plan reads every listed file's size and time then.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        The run's ``data`` folders and ``period``; a listing is used only with a configuration of the same
        folders, file-name pattern and period (:meth:`check`).
    """

    def __init__(self, cfg):
        self.key = self._key(cfg)
        self._cfg = cfg
        self._parts: dict = {}

    @staticmethod
    def _key(cfg) -> tuple:
        d = cfg.data
        return (str(d.avhrr_dir), str(d.glass_modis_dir), getattr(d, "glass_modis_pattern", None),
                str(d.era5land_dir), str(cfg.period.start), str(cfg.period.end), str(cfg.period.label_start),
                str(getattr(cfg.period, "label_end", None)))

    def check(self, cfg) -> SourceListing:
        """This listing, after checking that it was made for ``cfg``'s folders and period (ValueError if not)."""
        other = self._key(cfg)
        if other != self.key:
            names = ("data.avhrr_dir", "data.glass_modis_dir", "data.glass_modis_pattern", "data.era5land_dir",
                     "period.start", "period.end", "period.label_start", "period.label_end")
            diff = [f"{n}: {a!r} (listing) vs {b!r}" for n, a, b in zip(names, self.key, other) if a != b]
            raise ValueError(f"the source listing was made for another run ({'; '.join(diff)}): list the sources "
                             "of this configuration (SourceListing(cfg))")
        return self

    def _part(self, name, make):
        if name not in self._parts:
            self._parts[name] = make()
        return self._parts[name]

    def avhrr_tree(self):
        """:func:`glass_sm.io.glass_avhrr.list_tree` of ``data.avhrr_dir`` (None when the folder does not exist:
        the product searches then raise the missing folder's error themselves)."""
        root = self._cfg.data.avhrr_dir
        return self._part("avhrr", lambda: glass_avhrr.list_tree(root) if Path(root).is_dir() else None)

    def glass_files(self, product: str, first, last, cadence_days: int | None = None) -> pd.Series:
        """:func:`glass_sm.io.glass_avhrr.find_glass_files` of ``data.avhrr_dir`` (gaps allowed) from
        :meth:`avhrr_tree`, kept by its arguments: the coverage table and the ingest's plan search the same LST
        dates, and the search is made once (its warnings, e.g. files off the cadence schedule, given once). The
        series is shared: read it, do not modify it."""
        cadence = glass_avhrr.CADENCE_DAYS[product] if cadence_days is None else int(cadence_days)
        return self._part(
            ("glass", product, pd.Timestamp(first), pd.Timestamp(last), cadence),
            lambda: glass_avhrr.find_glass_files(self._cfg.data.avhrr_dir, product, first, last, allow_gaps=True,
                                                 cadence_days=cadence, listing=self.avhrr_tree()))

    def label_window(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """The period's part of the label record (first and last day), None when they do not overlap."""
        p = self._cfg.period
        first = max(pd.Timestamp(p.start), pd.Timestamp(p.label_start))
        label_end = getattr(p, "label_end", None)
        last = min(pd.Timestamp(p.end), pd.Timestamp(label_end)) if label_end is not None else pd.Timestamp(p.end)
        return (first.normalize(), last.normalize()) if first.normalize() <= last.normalize() else None

    def labels(self) -> dict:
        """The GLASS-MODIS files by day of :meth:`label_window` (``{}`` when it is None)."""
        def make():
            window = self.label_window()
            if window is None:
                return {}
            pattern = getattr(self._cfg.data, "glass_modis_pattern", None)
            return glass_modis.find_glass_modis_files(self._cfg.data.glass_modis_dir, window[0].date(),
                                                      window[1].date(),
                                                      **({"pattern": pattern} if pattern is not None else {}))
        return self._part("labels", make)

    def era5land_files(self) -> list[Path]:
        """:func:`glass_sm.io.era5land.list_era5land_files` of ``data.era5land_dir``."""
        return self._part("era5land", lambda: list(era5land.list_era5land_files(self._cfg.data.era5land_dir)))


def _daily(first, last) -> pd.DatetimeIndex:
    first, last = pd.Timestamp(first).normalize(), pd.Timestamp(last).normalize()
    return pd.date_range(first, last, freq="D") if first <= last else pd.DatetimeIndex([])


def _valid_times(ds) -> np.ndarray:
    """Valid times (datetime64[ns], NaT dropped) of ``swvl1`` in an opened ERA5-Land dataset: its time
    coordinate (``valid_time`` or ``time``, plus ``step`` when the file is archived forecast-style)."""
    da = ds[era5land.VAR]
    tdim = "valid_time" if "valid_time" in da.dims else ("time" if "time" in da.dims else None)
    if tdim is None:  # a single step: a scalar time coordinate
        tdim = "valid_time" if "valid_time" in da.coords else "time"
        if tdim not in da.coords:
            return np.array([], "datetime64[ns]")
    if "step" in da.dims:  # forecast-style archive: valid time = time + step
        vt = np.atleast_1d(da[tdim].values)[:, None] + da["step"].values[None, :]
    elif tdim == "valid_time" or ("valid_time" in da.coords and da["valid_time"].dims == (tdim,)):
        vt = np.atleast_1d(da["valid_time"].values)
    else:
        vt = np.atleast_1d(da[tdim].values)
        if "step" in da.coords and da["step"].ndim == 0:
            vt = vt + da["step"].values
    vt = np.asarray(vt).astype("datetime64[ns]").ravel()
    return vt[~np.isnat(vt)]


_FILE_TIMES: dict[tuple, np.ndarray] = {}  #: valid times by (path, size, mtime): see era5land_file_times


def era5land_file_times(path) -> np.ndarray:
    """The valid times (:func:`_valid_times`) of one ERA5-Land file, read once per process for each version of the
    file (keyed by path, size and modification time): stage 01 lists them for the coverage table and again to plan
    the day-major ingest, and opening a file for its time axis costs ~35 ms."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _FILE_TIMES:
        ds, lsm = era5land._open(Path(path))
        try:
            _FILE_TIMES[key] = _valid_times(ds)
        finally:
            ds.close()
            if lsm is not None and lsm is not ds:
                lsm.close()
    return _FILE_TIMES[key]


def era5land_days(directory, first, last, files=None) -> SourceDays:
    """The UTC days of ``first..last`` on which the ERA5-Land files under ``directory`` have a time step.

    Only the time coordinates of each file are read: ``time`` (legacy CDS netCDF), ``valid_time`` (current CDS
    netCDF) or ``time`` + ``step`` (forecast-style archives). The files are opened lazily through
    :mod:`glass_sm.io.era5land` (for GRIB, cfgrib scans the message headers), so a damaged file is a
    :class:`~glass_sm.io.errors.CorruptFileError` naming it. ``files``: the folder's files when already listed
    (:meth:`SourceListing.era5land_files`).
    """
    days = _daily(first, last)
    have = [np.array([], "datetime64[D]")]
    for path in era5land.list_era5land_files(directory) if files is None else files:
        have.append(np.unique(era5land_file_times(path).astype("datetime64[D]")))
    present = np.isin(days.values.astype("datetime64[D]"), np.concatenate(have))
    return SourceDays("era5land", str(directory), "ERA5-Land swvl1 time steps", days, present)


def composite_days(first, last, cadence_days: int) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex, pd.DatetimeIndex]:
    """The composite dates whose composites cover ``first..last`` and the days of it each stands for.

    The dates are :func:`glass_sm.io.glass_avhrr.composite_schedule`'s (day of year 1, 1 + c, 1 + 2c, ..., restarting
    every 1 January; c = ``cadence_days``); each stands for the days up to the day before the next date (the last
    of a year up to 31 December). With c = 1 every day is its own date.

    Returns
    -------
    dates, first_days, last_days : pandas.DatetimeIndex
        The composite dates (the first one possibly before ``first``: its composite covers ``first``) and the first
        and last day of ``first..last`` each stands for.
    """
    first, last = pd.Timestamp(first).normalize(), pd.Timestamp(last).normalize()
    c = int(cadence_days)
    dates = glass_avhrr.composite_schedule(first - pd.Timedelta(days=c - 1), last, c)
    year_end = pd.DatetimeIndex([pd.Timestamp(y, 12, 31) for y in dates.year])
    ends = pd.DatetimeIndex(np.minimum(dates + pd.Timedelta(days=c - 1), year_end))
    keep = ends >= first
    dates, ends = dates[keep], ends[keep]
    return dates, pd.DatetimeIndex(np.maximum(dates, first)), pd.DatetimeIndex(np.minimum(ends, last))


def avhrr_days(avhrr_dir, product: str, first, last, cadence_days: int | None = None,
               listing: SourceListing | None = None) -> SourceDays:
    """A GLASS AVHRR product's files (``'albedo'`` or ``'lst'``, names only) against ``first..last``.

    ``cadence_days``: days between the product's files (default :data:`glass_sm.io.glass_avhrr.CADENCE_DAYS`:
    8-day albedo composites, daily LST); one file is expected per date of :func:`composite_days`. ``listing``: the
    run's listing of ``avhrr_dir`` (:meth:`SourceListing.glass_files`), else the folder is walked here.
    """
    cadence = glass_avhrr.CADENCE_DAYS[product] if cadence_days is None else int(cadence_days)
    dates, firsts, lasts = composite_days(first, last, cadence)
    if listing is not None:
        files = listing.glass_files(product, dates[0], dates[-1], cadence)
    else:
        files = glass_avhrr.find_glass_files(avhrr_dir, product, dates[0], dates[-1], allow_gaps=True,
                                             cadence_days=cadence)
    short = glass_avhrr.PRODUCTS[product]
    what = f"{short} files" + (f" ({cadence}-day composites)" if cadence > 1 else "")
    present = files.reindex(dates).notna().to_numpy()
    return SourceDays(product, str(avhrr_dir), what, dates, present, firsts, lasts, cadence)


def _label_days(cfg, listing: SourceListing) -> SourceDays:
    """GLASS-MODIS SM files against the part of the period within the label record
    (``period.label_start`` .. ``period.label_end`` where the configuration has an end)."""
    label_end = getattr(cfg.period, "label_end", None)
    window = listing.label_window()
    days = _daily(*window) if window is not None else pd.DatetimeIndex([])
    what = (f"GLASS-MODIS SM files (labels {cfg.period.label_start}.."
            f"{label_end if label_end is not None else ''})")
    if len(days) == 0:  # the period lies outside the label record: nothing to list
        return SourceDays("glass_modis", str(cfg.data.glass_modis_dir), what, days, np.zeros(0, bool))
    found = listing.labels()
    return SourceDays("glass_modis", str(cfg.data.glass_modis_dir), what, days,
                      np.array([d in found for d in days.date], bool))


def _check_static(static_dir) -> list[Path]:
    """The static layers' files; every missing layer named at once (:class:`MissingFileError`)."""
    paths, missing = [], []
    for name in STATIC_LAYERS:
        try:
            paths.append(static._layer_path(Path(static_dir), name))
        except MissingFileError:
            missing.append(name)
    if missing:
        found = sorted(p.name for p in Path(static_dir).iterdir()) if Path(static_dir).is_dir() else []
        raise MissingFileError(
            f"lacks the static layer(s) {', '.join(missing)} (<name>.tif, .tiff or .vrt; found: "
            f"{found_list(found) if found else 'nothing' if Path(static_dir).is_dir() else 'no such folder'}); "
            "data.static_dir must hold dem, sand, clay and silt", file=static_dir)
    return paths


def list_inputs(cfg, listing: SourceListing | None = None) -> list[SourceDays]:
    """Every dated source's days against the run's period (see the module's table), after checking that the
    static layers exist; nothing is read but file names and ERA5-Land's time coordinates.

    ``listing``: the run's :class:`SourceListing` (to share its folder walks with the ingest's plan; a new one
    when None).

    Raises
    ------
    MissingFileError
        A source folder does not exist or holds no file of the period, or a static layer is missing.
    DuplicateFileError, CorruptFileError
        From the listings of :mod:`glass_sm.io` (two copies of one day; an unreadable ERA5-Land file).
    """
    listing = SourceListing(cfg) if listing is None else listing.check(cfg)
    start, end = cfg.period.start, cfg.period.end
    _check_static(cfg.data.static_dir)
    return [avhrr_days(cfg.data.avhrr_dir, "albedo", start, end, cfg.data.albedo_cadence_days, listing=listing),
            avhrr_days(cfg.data.avhrr_dir, "lst", start, end, listing=listing),
            era5land_days(cfg.data.era5land_dir, start, end, files=listing.era5land_files()),
            _label_days(cfg, listing)]


# ----------------------------------------------------------------------------------------------------------
# the table and the rule
# ----------------------------------------------------------------------------------------------------------
def _day(ts) -> str:
    return "" if ts is None else f"{pd.Timestamp(ts):%Y-%m-%d}"


def coverage_row(src: SourceDays, max_run_days: int, allowed: bool) -> dict:
    """One row of the coverage table (:data:`COLUMNS`) for ``src``: runs longer than ``max_run_days`` are
    *long*; ``status`` is ``complete``, ``short gaps``, ``long gaps, allowed``, ``long gaps, refused`` or
    ``none expected`` (labels of a period before ``period.label_start``)."""
    runs = src.missing_runs()
    long = [r for r in runs if _run_days(r) > max_run_days]
    n = len(src.days)
    first, last = src.period()
    if n == 0:
        status = "none expected"
    elif not runs:
        status = "complete"
    elif not long:
        status = "short gaps"
    else:
        status = "long gaps, allowed" if allowed else "long gaps, refused"
    return {
        "source": src.source, "first_day": _day(first), "last_day": _day(last), "cadence_days": src.cadence_days,
        "days_expected": n, "days_present": int(np.count_nonzero(src.present)),
        "days_missing": int(n - np.count_nonzero(src.present)), "long_runs": len(long),
        "long_run_days": sum(_run_days(r) for r in long),
        "longest_run_days": max((_run_days(r) for r in runs), default=0),
        "first_missing": _day(runs[0][0]) if runs else "", "last_missing": _day(runs[-1][1]) if runs else "",
        "long_run_list": format_runs(long), "allowed": bool(allowed), "status": status, "where": src.where,
        "what": src.what,
    }


def coverage_table(cfg, listed: list[SourceDays] | None = None, listing: SourceListing | None = None
                   ) -> pd.DataFrame:
    """The coverage table: one row per dated source (:func:`coverage_row`) and one for the static layers.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        ``period``, ``data`` (folders), ``cube.max_missing_run_days``, ``cube.allow_missing_inputs``.
    listed : list of SourceDays, optional
        What :func:`list_inputs` returns (listed now when None).
    listing : SourceListing, optional
        The run's listing, for :func:`list_inputs` (stage 01 hands the same to the ingest).
    """
    listed = list_inputs(cfg, listing) if listed is None else listed
    allow = set(cfg.cube.allow_missing_inputs)
    rows = [coverage_row(src, cfg.cube.max_missing_run_days, src.source in allow) for src in listed]
    counts = dict.fromkeys(("cadence_days", "days_expected", "days_present", "days_missing", "long_runs",
                            "long_run_days", "longest_run_days"), 0)
    rows.append({**dict.fromkeys(COLUMNS, ""), **counts, "source": "static", "allowed": False, "status": "complete",
                 "where": str(cfg.data.static_dir), "what": f"layers {', '.join(STATIC_LAYERS)}"})
    return pd.DataFrame(rows, columns=COLUMNS)


def check_coverage(cfg, table: pd.DataFrame | None = None, listing: SourceListing | None = None) -> pd.DataFrame:
    """Raise :class:`InputCoverageError` when a source not allowed has a long missing run; return the table.

    Parameters
    ----------
    cfg : glass_sm.config.Config
    table : pandas.DataFrame, optional
        :func:`coverage_table` of ``cfg`` (listed now when None, from ``listing`` when given).
    listing : SourceListing, optional

    Raises
    ------
    InputCoverageError
        Naming each source at fault, the first and last day of its long runs and the parameters that allow it.
    """
    table = coverage_table(cfg, listing=listing) if table is None else table
    bad = table[table["status"] == "long gaps, refused"]
    if bad.empty:
        return table
    limit = cfg.cube.max_missing_run_days
    parts = [f"{r.source} ({r.what} under {r.where}) lacks {r.long_run_days} days in {r.long_runs} run(s) longer "
             f"than {limit} days: {r.long_run_list}" for r in bad.itertuples()]
    names = list(bad["source"])
    allow = sorted(set(cfg.cube.allow_missing_inputs) | set(names), key=SOURCES.index)
    raise InputCoverageError(
        f"input coverage of {cfg.period.start}..{cfg.period.end}: {'; '.join(parts)}. Those days would be filled "
        "from the climatology (albedo, LST, ERA5-Land) or left without a label (glass_modis). Add the files, "
        f"shorten the period (period.start/period.end), raise cube.max_missing_run_days (now {limit}), or build "
        f"anyway with cube.allow_missing_inputs: [{', '.join(allow)}] (the days are then filled and flagged, and "
        "counted in stage 01's table input_coverage)", sources=names, table=table)


def allowed_runs_text(table: pd.DataFrame) -> str:
    """``'lst: 1999-01-01..1999-12-31 (365 days)'`` for each allowed source with long runs; ``''`` if none."""
    ok = table[table["status"] == "long gaps, allowed"]
    return "; ".join(f"{r.source}: {r.long_run_list}" for r in ok.itertuples())
