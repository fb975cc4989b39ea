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

import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from glass_sm.grid import Domain, lat_lon_attrs
from glass_sm.io.errors import DataWarning, EmptyDataError, TimeGapError, UnitsPolicy, format_dates, found_list
from glass_sm.io.composites import *  # noqa: F401,F403
from glass_sm.io.glass_hdf import *  # noqa: F401,F403
from glass_sm.io.glass_products import *  # noqa: F401,F403
from glass_sm.io.glass_hdf import _dms_to_deg, _file_grid, _hyperslab, _qc_keep, _read_file  # noqa: F401 (tests)
from glass_sm.io.glass_products import _cadence, _platform, _product_key

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
    "list_tree",
    "glass_filename",
    "qc_layer_candidates",
    "sds_packing",
    "parse_struct_metadata",
    "read_glass_albedo",
    "read_glass_albedo_daily",
    "albedo_composites_needed",
    "interpolate_composites",
    "composites_to_daily",
    "read_glass_lst",
]


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
                 progress: bool, cadence_days: int | None, files: pd.Series | None = None) -> _Series:
    rules = RULES[_product_key(product)]
    keep = _qc_keep(rules, qc)
    if files is None:
        files = find_glass_files(root, product, start, end, allow_gaps=allow_gaps, cadence_days=cadence_days)
    else:
        files = _given_files(files, product, start, end, allow_gaps, cadence_days)
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


def _given_files(files: pd.Series, product: str, start, end, allow_gaps: bool, cadence_days: int | None) -> pd.Series:
    """A file list handed to a reader (``files=``), checked to be :func:`find_glass_files`' answer for the period:
    one entry (path or None) per expected date of ``start..end``, named by the product's short name."""
    expected = composite_schedule(start, end, _cadence(_product_key(product), cadence_days)) \
        if _product_key(product) == "albedo" else pd.date_range(pd.Timestamp(start).normalize(),
                                                                 pd.Timestamp(end).normalize(), freq="D")
    index = pd.DatetimeIndex(files.index)
    if len(index) != len(expected) or not (index == expected).all():
        raise ValueError(f"files= holds dates {index[:1].tolist()}..{index[-1:].tolist()} ({len(index)}), not the "
                         f"{len(expected)} expected {PRODUCTS[_product_key(product)]} dates of {start}..{end}")
    missing = index[files.isna().to_numpy()]
    if len(missing) and not allow_gaps:
        raise TimeGapError(f"has no {PRODUCTS[_product_key(product)]} file for {format_dates(missing)}",
                           file=str(next((f for f in files if f), "files=")))
    out = files.copy()
    out.name = PRODUCTS[_product_key(product)]
    out.index.name = "time"
    return out


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
                      cadence_days: int | None = None, qc_layer: str | Sequence[str] | None = None,
                      files: pd.Series | None = None) -> xr.Dataset:
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
    files : pandas.Series, optional
        The files to read, as :func:`find_glass_files` returns them for this period (path or None per expected
        date): the folder is not searched (the day-major ingest lists the archive once and hands each task its
        files). Checked to hold exactly the period's expected dates.

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
                     progress, cadence, files)
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


def albedo_composites_needed(start, end, cadence_days: int | None = None,
                             sample_offset_days: float = 0.0) -> pd.DatetimeIndex:
    """The composite (file) dates whose samples bracket every day of ``start..end``.

    From the last composite sampled on or before ``start`` to the first one sampled on or after ``end``
    (sample time = file date + ``sample_offset_days``), on the product's schedule (:func:`composite_schedule`).
    These are the composites :func:`read_glass_albedo_daily` reads, and those the day-major ingest
    (:mod:`glass_sm.data.ingest`) stores, so that both interpolate the same composites.

    Parameters
    ----------
    start, end : date-like
        First and last day of the period, inclusive.
    cadence_days : int, optional
        Days between composites (default 8: the GLASS02B05 schedule).
    sample_offset_days : float
        Sample time of a composite = file date + this, days.

    Returns
    -------
    pandas.DatetimeIndex
        Expected composite dates (whether or not a file exists), named ``time``.
    """
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
    return sched[i0:i1 + 1]


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
    needed = albedo_composites_needed(start, end, cadence, sample_offset_days)
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
                   qc_layer: str | Sequence[str] | None = None, files: pd.Series | None = None) -> xr.DataArray:
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
    files : pandas.Series, optional
        The files to read (path or None per day), as :func:`find_glass_files` returns them; the folder is not
        searched (see :func:`read_glass_albedo`).

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
                     allow_gaps, units_policy, progress, 1, files)
    times = pd.DatetimeIndex(s.files.index)
    platform, psrc = _platform(times, s.satellite)
    da = xr.DataArray(s.arrays[0], dims=("time", "lat", "lon"), coords=_coords(times, domain, platform, psrc),
                      name="lst",
                      attrs={"standard_name": "surface_temperature",
                             "long_name": "land surface temperature (GLASS08B31 AVHRR)",
                             "units": "K", "source_variable": "LST", "source": str(root), **_var_attrs(s, 0, qc, rules),
                             "n_files": int(s.files.notna().sum()), "n_files_without_qc": int(s.n_without_qc)})
    return lat_lon_attrs(da)
