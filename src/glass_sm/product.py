"""The product's files: CF-1.8 / ACDD-1.3 NetCDF year files and annual means, written and read here (one home).

:mod:`glass_sm.production` computes the values tile by tile; this module owns the file format: names
(:func:`product_path`, :func:`annual_path`), variables and attributes, the assembly of a year's tiles into its two
files (:func:`assemble_year`), and the readers every later stage uses (:func:`open_product`, :func:`open_record`).

Files (``results/<run>/product/``)
----------------------------------
``GLASS_AVHRR_SM_<YYYY>.nc``
    ``sm(time, lat, lon)`` daily surface soil moisture, m3 m-3, int16 with ``scale_factor = 1e-4``,
    ``add_offset = 0``, ``_FillValue = -32768`` (or float32 with ``production.encoding``), zlib level 4 with
    shuffle, chunks ``(32, c, c)`` with ``c`` the largest divisor of the tile edge up to 64 (tiles never split a
    chunk); ``sm_flag(time, lat, lon)``; latitude descending. ``xarray.open_mfdataset("product/*.nc")`` opens
    the whole record. ``lat``/``lon`` are cell centres (each cell extends 0.025 degree either side).
``annual/GLASS_AVHRR_SM_annual_mean_<YYYY>.nc``
    ``sm(time=1, lat, lon)`` mean of the year's days, with ``time_bnds`` and ``cell_methods = "time: mean"``.

Flags
-----
Every land pixel (``land_mask == 1``) gets a value every day. ``sm_flag`` says how: a bit field stored as CF
``byte`` (int8; CF-1.8 has no unsigned types) with ``flag_masks`` / ``flag_meanings``, ``_FillValue = -1`` off land
(:data:`FLAG_FILL_STORED`; the production's uint8 scratch tiles use :data:`FLAG_FILL` = 255, the same byte):

==== ===================================================================================================
bit  meaning
==== ===================================================================================================
1    albedo of the day was gap-filled in the cube (``albedo_filled``)
2    LST of the day was gap-filled in the cube (``lst_filled``)
4    *padded window*: the window reaches before the first (or, centred windows, after the last) day of
     the cube; the missing days repeat the first (last) available day. With ``past`` windows of ``L`` days
     this flags the first ``L - 1`` days of the period (spin-up).
8    the prediction fell outside ``[0, 1]`` m3 m-3 and was clipped
16   an input of the window was missing (NaN) and was replaced by its training mean (0 after normalising)
==== ===================================================================================================

Metadata
--------
The files follow CF-1.8 and ACDD-1.3 (``Conventions = "CF-1.8, ACDD-1.3"``, checked with the IOOS
compliance-checker in the tests): title, summary, keywords, ``coverage_content_type`` on every variable, who made
them (the glass-sm compendium), licence, source, history, references (the paper's DOI), time coverage, duration
and resolution, geospatial extent (:func:`global_attrs`). ``geospatial_lat_min`` ... ``geospatial_lon_max`` and
the ``geospatial_bounds`` polygon give the extreme cell *centres* (what the coordinates hold); the cells reach
0.025 degree further (``geospatial_lat_resolution``). ``date_created`` is never the wall clock
(:func:`creation_date`): ``SOURCE_DATE_EPOCH`` when set, else the newest date the inputs that fix the values
record (the cube's build date, the checkpoint's ``created`` date when it has one).

What made a year file
---------------------
Four global attributes record what the values and the layout depend on (:func:`production_stamp`), and stage 04
re-produces a finished year exactly when one of them differs from the current run (:func:`stamp_changes`):

``product_format_version``
    :data:`PRODUCT_FORMAT_VERSION`, raised when the file layout or metadata change (a file of another version, or
    one without the attribute: version 1, is rewritten).

``checkpoint_sha256``
    SHA-256 of the production checkpoint file.
``cube_fingerprint``
    A cheap *fingerprint* of the cube store, not a content hash: SHA-256 over the content of its (consolidated)
    metadata files and the sorted relative path and size of every chunk file
    (:func:`glass_sm.data.cube.store_fingerprint`). Rebuilding the cube from other inputs changes it; copying the
    store (new file times) does not.
``production_params``
    JSON of the ``production`` settings that can change the stored bytes (:func:`production_params`): every
    setting except the scheduling ones of :data:`EXECUTION_KEYS`. The tile edge sets the chunks, the encoding the
    stored values, and the batch sizes the shapes of the model's matrix products (floating-point sums may round
    differently in the last bit).

The bytes are deterministic: no wall-clock time is written (``history`` names the software and the
checkpoint, not a date), paths in the ``params`` attribute are relative to the run folder, and tiles are
always assembled in the same order, so a resumed run writes files byte-identical to an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Callable, Iterable

import netCDF4
import numpy as np
import pandas as pd
import xarray as xr
import yaml

import glass_sm
from glass_sm import config as _config
from glass_sm.paths import atomic_write

__all__ = [
    "PRODUCT_NAME",
    "PRODUCT_GLOB",
    "FLAG_BITS",
    "FLAG_FILL",
    "FLAG_FILL_STORED",
    "PRODUCT_FORMAT_VERSION",
    "VALID_MIN",
    "VALID_MAX",
    "EXECUTION_KEYS",
    "CUBE_EXECUTION_KEYS",
    "STAMP_ATTRS",
    "product_path",
    "annual_path",
    "open_record",
    "open_product",
    "global_attrs",
    "creation_date",
    "file_id",
    "production_params",
    "production_stamp",
    "read_stamp",
    "stamp_changes",
    "assemble_year",
    "measure_product_bytes",
    "flag_fractions",
]

PRODUCT_NAME = "GLASS_AVHRR_SM"
PRODUCT_GLOB = "GLASS_AVHRR_SM_[0-9][0-9][0-9][0-9].nc"  #: the daily year files of the product
ANNUAL_GLOB = "GLASS_AVHRR_SM_annual_mean_[0-9][0-9][0-9][0-9].nc"  #: the annual-mean files (in ``annual/``)
FLAG_BITS = {
    "albedo_gap_filled": 1,
    "lst_gap_filled": 2,
    "window_padded_at_period_edge": 4,
    "clipped_to_valid_range": 8,
    "input_missing_replaced_by_training_mean": 16,
}
"""Bits of ``sm_flag`` (CF ``flag_masks`` / ``flag_meanings``)."""
FLAG_FILL = 255  #: ``sm_flag`` off land in the production's uint8 scratch tiles (:mod:`glass_sm.production`)
FLAG_FILL_STORED = -1  #: ``sm_flag`` off land in the files (int8, CF ``byte``: the same byte as :data:`FLAG_FILL`)
PRODUCT_FORMAT_VERSION = 2
"""Version of the files' layout and metadata (1: uint8 ``sm_flag``, CF-1.8 only; 2: int8 ``sm_flag``, ACDD-1.3)."""
SM_SCALE = 1e-4  #: int16 ``scale_factor`` of ``sm``, m3 m-3
INT16_FILL = -32768
FLOAT_FILL = -9999.0
VALID_MIN, VALID_MAX = 0.0, 1.0  #: valid range of ``sm``, m3 m-3 (predictions outside are clipped, bit 8)
SPIN_UP_DOC = ("windows reaching outside the cube's days are padded by repeating the first (last) available day; "
               "such days carry sm_flag bit 4 (with past windows of L days: the first L-1 days of the period)")
EXECUTION_KEYS = ("years", "scheduler_address", "n_workers", "threads_per_worker", "overwrite", "scheduler",
                  "torch_threads")
"""``production`` settings left out of the files' ``params`` attribute: they decide how the work is scheduled,
not the values, so a run resumed with other workers writes the same bytes."""
CUBE_EXECUTION_KEYS = ("ingest", "ingest_block_days", "ingest_task_mb", "scheduler_address", "n_workers",
                       "threads_per_worker", "scheduler")
"""``cube`` settings left out of the files' ``params`` attribute: how stage 01 read the sources (tile by tile or
day-major, on which cluster), not what the cube holds (:mod:`glass_sm.data.ingest`: the same cube either way)."""
STAMP_ATTRS = ("checkpoint_sha256", "cube_fingerprint", "production_params", "product_format_version")
"""Global attributes recording what a year file's values and layout depend on (:func:`production_stamp`)."""


# ----------------------------------------------------------------------------------------------------------
# Names and readers
# ----------------------------------------------------------------------------------------------------------
def product_path(folder: str | os.PathLike, year: int) -> Path:
    """``<folder>/GLASS_AVHRR_SM_<YYYY>.nc``."""
    return Path(folder) / f"{PRODUCT_NAME}_{year}.nc"


def annual_path(folder: str | os.PathLike, year: int) -> Path:
    """``<folder>/annual/GLASS_AVHRR_SM_annual_mean_<YYYY>.nc``."""
    return Path(folder) / "annual" / f"{PRODUCT_NAME}_annual_mean_{year}.nc"


def open_record(folder: str | os.PathLike, annual: bool = False, engine: str = "netcdf4") -> xr.Dataset:
    """The whole record as one lazy Dataset: the daily year files, or (``annual``) the annual means.

    Parameters
    ----------
    folder : path-like
        ``results/<run>/product``.
    annual : bool
        Open ``<folder>/annual/GLASS_AVHRR_SM_annual_mean_<YYYY>.nc`` instead of the daily files.
    engine : str
        xarray backend.

    Returns
    -------
    xarray.Dataset
        ``sm`` (m3 m-3) and, daily, ``sm_flag`` on ``(time, lat, lon)``, decoded (fill -> NaN, scaled).

    Raises
    ------
    FileNotFoundError
        No such file (stage 04 has not run), naming the folder and the pattern.
    """
    folder = Path(folder) / "annual" if annual else Path(folder)
    pattern = ANNUAL_GLOB if annual else PRODUCT_GLOB
    files = sorted(folder.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no product file {pattern} in {folder}: run stage 04 "
                                "(notebooks/04_global_production.ipynb) first")
    return xr.open_mfdataset([str(f) for f in files], engine=engine, combine="by_coords",
                             data_vars="minimal", coords="minimal", compat="override")


def open_product(folder: str | os.PathLike, name: str = "GLASS-AVHRR", variable: str = "sm",
                 engine: str = "netcdf4") -> xr.DataArray:
    """The daily product ``<folder>/GLASS_AVHRR_SM_<YYYY>.nc`` as one lazy ``(time, lat, lon)`` DataArray, m3 m-3.

    Parameters
    ----------
    folder : path-like
        ``results/<run>/product`` (the annual means in ``annual/`` are not read).
    name : str
        Name given to the returned DataArray (the product's label in tables and legends).
    variable : str
        Variable to return (``sm`` or ``sm_flag``).
    engine : str
        xarray backend.

    Raises
    ------
    FileNotFoundError
        No year file in ``folder`` (stage 04 has not run), naming the folder and the pattern.
    KeyError
        The files lack ``variable`` (the variables found are listed).
    """
    ds = open_record(folder, engine=engine)
    if variable not in ds:
        raise KeyError(f"product files in {folder} lack variable '{variable}' (found {sorted(ds.data_vars)})")
    da = ds[variable]
    da.attrs.setdefault("units", "m3 m-3")
    da.name = name
    return da


# ----------------------------------------------------------------------------------------------------------
# Writing a year
# ----------------------------------------------------------------------------------------------------------
def _days_since_epoch(times: pd.DatetimeIndex) -> np.ndarray:
    return ((times.values.astype("datetime64[D]") - np.datetime64("1970-01-01", "D"))
            .astype(np.int64).astype(np.int32))


def _define_file(path: Path, lat, lon, times: pd.DatetimeIndex, encoding: str, chunks: tuple, attrs: dict,
                 annual: bool = False, time_bnds: np.ndarray | None = None):
    """Create ``path`` with its dimensions, coordinates, variables and attributes; returns ``(nc, sm, sm_flag)``."""
    nc = netCDF4.Dataset(path, "w", format="NETCDF4")
    nc.createDimension("time", len(times))
    nc.createDimension("lat", len(lat))
    nc.createDimension("lon", len(lon))
    tv = nc.createVariable("time", "i4", ("time",))
    tv.setncatts({"standard_name": "time", "long_name": "time", "units": "days since 1970-01-01 00:00:00",
                  "calendar": "proleptic_gregorian", "axis": "T", "coverage_content_type": "coordinate"})
    if annual:
        nc.createDimension("nv", 2)
        tv.setncattr("bounds", "time_bnds")
        bv = nc.createVariable("time_bnds", "i4", ("time", "nv"))
        bv.setncattr("coverage_content_type", "coordinate")
        bv[:] = time_bnds
    tv[:] = _days_since_epoch(times)
    for name, vals, std, units, axis in (("lat", lat, "latitude", "degrees_north", "Y"),
                                         ("lon", lon, "longitude", "degrees_east", "X")):
        v = nc.createVariable(name, "f8", (name,))
        v.setncatts({"standard_name": std, "long_name": f"{std} of the cell centre", "units": units, "axis": axis,
                     "coverage_content_type": "coordinate"})
        v[:] = vals
    dims = ("time", "lat", "lon")
    if encoding == "int16":
        sm = nc.createVariable("sm", "i2", dims, zlib=True, complevel=4, shuffle=True, chunksizes=chunks,
                               fill_value=np.int16(INT16_FILL))
        sm.setncatts({"scale_factor": np.float32(SM_SCALE), "add_offset": np.float32(0.0),
                      "valid_range": np.array([0, int(round(VALID_MAX / SM_SCALE))], np.int16)})
    else:
        sm = nc.createVariable("sm", "f4", dims, zlib=True, complevel=4, shuffle=True, chunksizes=chunks,
                               fill_value=np.float32(FLOAT_FILL))
        sm.setncattr("valid_range", np.array([VALID_MIN, VALID_MAX], np.float32))
    sm.setncatts({"standard_name": "volume_fraction_of_condensed_water_in_soil",
                  "long_name": ("annual mean of daily surface (0-5 cm) soil moisture" if annual
                                else "daily surface (0-5 cm) soil moisture"),
                  "units": "m3 m-3", "coverage_content_type": "modelResult"})
    if annual:
        sm.setncattr("cell_methods", "time: mean")
    sm.set_auto_maskandscale(False)
    fl = None
    if not annual:
        # CF-1.8 knows no unsigned types: a signed byte holds the five bits (0..31), -1 off land
        fl = nc.createVariable("sm_flag", "i1", dims, zlib=True, complevel=4, shuffle=True, chunksizes=chunks,
                               fill_value=np.int8(FLAG_FILL_STORED))
        fl.setncatts({"long_name": "quality flags of sm", "standard_name": "status_flag",
                      "flag_masks": np.array(list(FLAG_BITS.values()), np.int8),
                      "flag_meanings": " ".join(FLAG_BITS),
                      "valid_range": np.array([0, sum(FLAG_BITS.values())], np.int8),
                      "coverage_content_type": "qualityInformation", "comment": SPIN_UP_DOC})
        fl.set_auto_maskandscale(False)
    nc.setncatts(attrs)
    return nc, sm, fl


def _encode(sm: np.ndarray, encoding: str) -> np.ndarray:
    """Stored values of ``sm`` (m3 m-3, NaN off land): scaled int16 or float32 with the fill value."""
    if encoding == "int16":
        out = np.full(sm.shape, INT16_FILL, np.int16)
        ok = np.isfinite(sm)
        out[ok] = np.rint(sm[ok] / SM_SCALE).astype(np.int16)
        return out
    return np.where(np.isfinite(sm), sm, np.float32(FLOAT_FILL)).astype(np.float32)


def assemble_year(year: int, tiles: list, land_tiles: set, read_tile: Callable, folder: Path, lat, lon,
                  times: pd.DatetimeIndex, encoding: str, chunks: tuple, attrs: dict) -> tuple[Path, Path]:
    """Write the year file and the annual-mean file from the year's tiles, one tile in memory at a time.

    Parameters
    ----------
    year : int
        Calendar year.
    tiles : list of glass_sm.production.Tile
        Every tile of the grid, in the order they are written.
    land_tiles : set of Tile
        Tiles with land (the others are left at the fill value).
    read_tile : callable
        ``read_tile(tile) -> (sm, sm_flag)``: the tile's ``(days, rows, cols)`` values, float32 m3 m-3 (NaN off
        land), and flags, uint8 (the production's scratch files, :mod:`glass_sm.production`).
    folder : Path
        ``results/<run>/product``.
    lat, lon : numpy.ndarray
        Cell centres, degrees (latitude descending).
    times : pandas.DatetimeIndex
        The year's days.
    encoding : {'int16', 'float32'}
        Storage of ``sm``.
    chunks : tuple of int
        ``(days, lat cells, lon cells)`` of a chunk.
    attrs : dict
        Global attributes (:func:`global_attrs`).

    Notes
    -----
    Tiles without land are not written (the file's fill value). Both files are written under hidden temporary
    names and renamed, the annual file first, so the presence of the daily file means the year is complete; on
    any error (or interrupt) both temporaries are removed.
    """
    out, ann = product_path(folder, year), annual_path(folder, year)
    first = int(_days_since_epoch(times[:1])[0])
    bnds = np.array([[first, first + len(times)]], np.int32)
    ann_attrs = {**attrs, "title": attrs["title"] + ", annual mean",
                 "comment": f"mean of the {len(times)} daily values of {year} produced in this run; "
                            + attrs.get("comment", ""),
                 "time_coverage_resolution": "P1Y"}
    if "id" in attrs:
        ann_attrs["id"] = attrs["id"].replace(f"{PRODUCT_NAME}_{year}", f"{PRODUCT_NAME}_annual_mean_{year}")
    with atomic_write(out) as tmp_out, atomic_write(ann) as tmp_ann:  # ann renamed first (inner context)
        nc, sm_v, fl_v = _define_file(tmp_out, lat, lon, times, encoding, chunks, attrs)
        try:
            nca, sma_v, _ = _define_file(tmp_ann, lat, lon, times[:1], encoding, (1, chunks[1], chunks[2]),
                                         ann_attrs, annual=True, time_bnds=bnds)
            try:
                for tile in tiles:
                    if tile in land_tiles:
                        sm, fl = read_tile(tile)
                        _write_tile(sm, fl, tile.slices, sm_v, fl_v, sma_v, encoding)
            finally:
                nca.close()
        finally:
            nc.close()
    return out, ann


def _stored_flags(fl: np.ndarray) -> np.ndarray:
    """The production's uint8 flags (:data:`FLAG_FILL` off land) as the files store them: int8, same bits,
    :data:`FLAG_FILL_STORED` off land."""
    out = np.asarray(fl).astype(np.int8)  # 0..31 unchanged
    out[np.asarray(fl) == FLAG_FILL] = FLAG_FILL_STORED
    return out


def _write_tile(sm: np.ndarray, fl: np.ndarray, slices: tuple[slice, slice], sm_v, fl_v, sma_v,
                encoding: str) -> None:
    """Copy one tile's values and flags into the open year file and its annual mean into the annual file."""
    rs, cs = slices
    sm_v[:, rs, cs] = _encode(sm, encoding)
    fl_v[:, rs, cs] = _stored_flags(fl)
    ok = np.isfinite(sm)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, sm, 0).sum(axis=0, dtype=np.float64) / n
    mean[n == 0] = np.nan
    sma_v[0:1, rs, cs] = _encode(mean.astype(np.float32)[None], encoding)


def _params_yaml(cfg) -> str:
    """The resolved parameters as YAML, with paths inside the run folder written relative to it and the
    scheduling settings (:data:`EXECUTION_KEYS`) left out."""
    d = _config.to_dict(cfg)
    root = str(cfg.results)

    def rel(v):
        if isinstance(v, str) and (v == root or v.startswith(root + os.sep)):
            return "{results}" + v[len(root):]
        if isinstance(v, list):
            return [rel(x) for x in v]
        return v

    for sec, vals in d.items():
        if isinstance(vals, dict):
            d[sec] = {k: rel(v) for k, v in vals.items()}
    d["run"]["results_dir"] = "{results_dir}"
    for key in EXECUTION_KEYS:  # how the work was scheduled does not change the values
        d["production"].pop(key, None)
    for key in CUBE_EXECUTION_KEYS:  # nor how stage 01 read the sources (the same cube either way, tested)
        d["cube"].pop(key, None)
    d["source_file"] = os.path.basename(d["source_file"]) if d.get("source_file") else None
    return yaml.safe_dump(d, sort_keys=False)


def production_params(cfg) -> dict:
    """The ``production`` settings that can change a year file's bytes: all but :data:`EXECUTION_KEYS`."""
    return {k: v for k, v in _config.to_dict(cfg)["production"].items() if k not in EXECUTION_KEYS}


def production_stamp(cfg, checkpoint_sha256: str, cube_fingerprint: str) -> dict:
    """The :data:`STAMP_ATTRS` of a year file made now: checkpoint SHA-256, cube fingerprint, the JSON of
    :func:`production_params` (sorted keys) and :data:`PRODUCT_FORMAT_VERSION`, all strings."""
    return {"checkpoint_sha256": checkpoint_sha256, "cube_fingerprint": cube_fingerprint,
            "production_params": json.dumps(production_params(cfg), sort_keys=True),
            "product_format_version": str(PRODUCT_FORMAT_VERSION)}


def read_stamp(path: str | os.PathLike) -> dict:
    """The :data:`STAMP_ATTRS` a product file records (None for an attribute it lacks).

    Raises
    ------
    OSError
        The file cannot be opened as NetCDF (damaged or truncated), naming it.
    """
    try:
        with netCDF4.Dataset(path) as nc:
            return {k: (str(nc.getncattr(k)) if k in nc.ncattrs() else None) for k in STAMP_ATTRS}
    except OSError as e:
        raise OSError(f"{path}: not a readable NetCDF file ({e})") from e


def stamp_changes(recorded: dict, wanted: dict) -> list[str]:
    """Why a file stamped ``recorded`` is not what a run stamped ``wanted`` would write; empty when it is.

    Each item names what changed: ``checkpoint changed (sha256 1a2b3c4d5e6f -> ...)``, ``cube changed
    (fingerprint ... -> ...)``, ``production parameters changed: batch_size 500 -> 400``, ``file format changed
    (version 1 -> 2)`` (a file without ``product_format_version`` is of version 1); another attribute the file
    lacks (a file of an older version) reads ``file records no <attribute>``. A key ``wanted`` lacks is not
    compared.
    """
    out = []
    if "product_format_version" in wanted:
        old, new = recorded.get("product_format_version") or "1", wanted["product_format_version"]
        if old != new:
            out.append(f"file format changed (version {old} -> {new})")
    for key, what, kind in (("checkpoint_sha256", "checkpoint", "sha256"), ("cube_fingerprint", "cube", "fingerprint")):
        old, new = recorded.get(key), wanted[key]
        if old is None:
            out.append(f"file records no {key}")
        elif old != new:
            out.append(f"{what} changed ({kind} {old[:12]} -> {new[:12]})")
    old, new = recorded.get("production_params"), wanted["production_params"]
    if old is None:
        out.append("file records no production_params")
    elif old != new:
        try:
            a = json.loads(old)
        except ValueError:
            a = None
        a = a if isinstance(a, dict) else {}
        b = json.loads(new)
        diff = [f"{k} {a.get(k, '(unset)')} -> {b.get(k, '(unset)')}" for k in sorted(set(a) | set(b))
                if a.get(k, "(unset)") != b.get(k, "(unset)")]
        out.append("production parameters changed: " + (", ".join(diff) or "(unreadable record)"))
    return out


CREATOR = "the glass-sm contributors"  #: who made the files (ACDD ``creator_name``)
NAMING_AUTHORITY = "glass-sm"  #: ACDD ``naming_authority`` of the files' ``id``
PAPER_DOI = "10.5194/essd-17-5181-2025"  #: Zhang et al. (2025), the paper the compendium reproduces
PROCESSING_LEVEL = "L4: seamless (gap-free) daily model estimates on a regular latitude-longitude grid"
KEYWORDS = ("EARTH SCIENCE > LAND SURFACE > SOILS > SOIL MOISTURE/WATER CONTENT, soil moisture, "
            "surface soil moisture, AVHRR, GLASS, ERA5-Land, deep learning, attention LSTM")
STANDARD_NAME_VOCABULARY = "CF Standard Name Table v93"
"""The table the standard names are taken from (the one compliance-checker 6.1 ships, so it checks offline)."""
_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?))?")


def file_id(cfg, year: int, annual: bool = False) -> str:
    """ACDD ``id`` of a year file, unique within :data:`NAMING_AUTHORITY`: ``<run>.GLASS_AVHRR_SM_<YYYY>`` or
    ``<run>.GLASS_AVHRR_SM_annual_mean_<YYYY>`` (white space in the run name becomes ``_``)."""
    run = re.sub(r"\s+", "_", str(cfg.run.name).strip()) or "run"
    return f"{run}.{PRODUCT_NAME}_{'annual_mean_' if annual else ''}{year}"


def _dates_in(value) -> list[pd.Timestamp]:
    out = []
    for m in _DATE.finditer(str(value or "")):
        try:
            out.append(pd.Timestamp(m.group(1) + (f"T{m.group(2)}" if m.group(2) else "")))
        except ValueError:
            continue
    return out


def creation_date(lm, source) -> str | None:
    """ACDD ``date_created`` of the files: when the inputs that fix the values were made, never the wall clock.

    ``SOURCE_DATE_EPOCH`` (seconds since 1970, the reproducible-builds convention) when set; else the newest of
    the dates the checkpoint (``extra['created']`` or ``extra['date_created']``) and the source (a cube's
    ``date_created`` attribute, or the date its ``history`` starts with, which :func:`glass_sm.data.cube.build_cube`
    writes) record; None when neither records one. A rerun or a resumed run over the same checkpoint and cube thus
    writes the same bytes, and a new cube or checkpoint (which re-produces the files anyway) moves the date.

    Returns
    -------
    str or None
        ISO 8601 (``2025-06-01`` or ``2025-06-01T12:00:00Z``).
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return pd.Timestamp(int(epoch), unit="s").strftime("%Y-%m-%dT%H:%M:%SZ")
    dates = []
    extra = getattr(lm, "extra", None) or {}
    for key in ("created", "date_created"):
        dates += _dates_in(extra.get(key))[:1]
    ds = getattr(source, "ds", None)  # a cube source's Dataset (other sources may have none)
    attrs = getattr(ds, "attrs", {}) or {}
    if attrs.get("date_created"):
        dates += _dates_in(attrs["date_created"])[:1]
    elif attrs.get("history"):
        dates += _dates_in(str(attrs["history"]).strip().splitlines()[0])[:1]
    if not dates:
        return None
    newest = max(d.tz_localize(None) if d.tzinfo else d for d in dates)
    return newest.strftime("%Y-%m-%d") if newest == newest.normalize() else newest.strftime("%Y-%m-%dT%H:%M:%SZ")


def _license(twin: bool) -> str:
    code = "made with the glass-sm code (MIT licence)"
    if twin:
        return f"Synthetic data of the glass-sm synthetic twin, {code}; contains no third-party data."
    return (f"Derived data, {code}; the terms of its inputs apply: ERA5-Land under the Licence to use Copernicus "
            "Products, GLASS AVHRR albedo and LST under the GLASS team's terms, and those of the terrain and "
            "soil-texture inputs named in the run's parameters (attribute params).")


def _acknowledgement(twin: bool, year: int) -> str:
    if twin:
        return ("Reproduces the method of Zhang et al. (2025) on the glass-sm synthetic twin, a synthetic world "
                "whose true soil moisture is known; no real observation was used.")
    return (f"Contains modified Copernicus Climate Change Service information (ERA5-Land, {year}); neither the "
            "European Commission nor ECMWF is responsible for any use that may be made of the Copernicus "
            "information or data it contains. GLASS AVHRR products by the GLASS team (Liang et al. 2021, "
            "https://doi.org/10.1175/BAMS-D-18-0341.1).")


def _wkt_box(south: float, north: float, west: float, east: float) -> str:
    """``POLYGON`` of a lat/lon box in EPSG:4326 axis order (latitude first), as ACDD 1.3's example."""
    pts = [(south, west), (south, east), (north, east), (north, west), (south, west)]
    return "POLYGON ((" + ", ".join(f"{la:.4f} {lo:.4f}" for la, lo in pts) + "))"


def global_attrs(cfg, lm, source, times: pd.DatetimeIndex, cube_fingerprint: str = "") -> dict:
    """CF-1.8 and ACDD-1.3 global attributes of a year file.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        The run's parameters (written, relative to the run folder, as ``params``).
    lm : glass_sm.models.LoadedModel
        The production checkpoint (name, SHA-256, window).
    source : glass_sm.production.TileSource
        The inputs (``source`` label, cell centres in degrees).
    times : pandas.DatetimeIndex
        The file's days.
    cube_fingerprint : str
        :func:`glass_sm.data.cube.store_fingerprint` of the inputs (recorded with the checkpoint SHA-256 and the
        production parameters, :func:`production_stamp`).

    Notes
    -----
    Nothing depends on the wall clock or the machine (``date_created``: :func:`creation_date`; paths in
    ``params`` relative to the run folder), so reruns write the same bytes. The geospatial extent is that of the
    cell centres, as the coordinates hold them (the cells reach ``geospatial_lat_resolution / 2`` further).
    """
    twin = source.source == "synthetic twin"
    tag = "synthetic twin" if twin else "real data"
    year = int(times[0].year)
    south, north = float(np.min(source.lat)), float(np.max(source.lat))
    west, east = float(np.min(source.lon)), float(np.max(source.lon))
    first, last = times[0].date(), times[-1].date()
    twin_note = (" Made on the glass-sm synthetic twin: every value describes a synthetic world whose true soil "
                 "moisture is known, not the real GLASS-AVHRR product." if twin else "")
    res = float(cfg.domain.resolution)
    grid = "the 0.05 degree GLASS grid" if abs(res - 0.05) < 1e-9 else f"a regular {res:g} degree grid"
    attrs = {
        "title": f"GLASS-AVHRR-like seamless daily {res:g} degree surface soil moisture (glass-sm, {tag})",
        "summary": (f"Seamless daily surface (0-5 cm) volumetric soil moisture (m3 m-3) on {grid}, "
                    f"{first} to {last}, every land cell every day, estimated by an attention-based LSTM "
                    "(AtLSTM) from AVHRR albedo and land surface temperature, ERA5-Land soil moisture, terrain and "
                    "soil texture, following Zhang et al. (2025). sm_flag says how each value was made (gap-filled "
                    f"inputs, spin-up padding, clipping).{twin_note}"),
        "keywords": KEYWORDS,
        "keywords_vocabulary": "GCMD:GCMD Science Keywords (the first keyword; the others are free text)",
        "source": f"AtLSTM applied to AVHRR albedo/LST, ERA5-Land, terrain, soil texture ({tag})",
        "references": ("Zhang et al. (2025), GLASS-AVHRR soil moisture, Earth Syst. Sci. Data 17, 5181-5207, "
                       f"https://doi.org/{PAPER_DOI}"),
        "history": (f"glass_sm.production.run_production (glass-sm {glass_sm.__version__}): model "
                    f"'{lm.name}' from {Path(lm.path).name if lm.path else 'memory'} applied tile by tile"),
        "comment": (f"lat and lon are cell centres of the {res:g} degree grid (each cell extends {res / 2:g} degree "
                    "either side); sm_flag is a bit field (flag_masks/flag_meanings); attribute params holds the run's "
                    "resolved parameters."),
        "Conventions": "CF-1.8, ACDD-1.3",
        "standard_name_vocabulary": STANDARD_NAME_VOCABULARY,
        "id": file_id(cfg, year),
        "naming_authority": NAMING_AUTHORITY,
        "product_version": glass_sm.__version__,
        "processing_level": PROCESSING_LEVEL,
        "cdm_data_type": "Grid",
        "project": "glass-sm: reproducible research compendium of the GLASS-AVHRR daily soil-moisture product",
        "institution": f"{CREATOR} (glass-sm research compendium)",
        "creator_name": CREATOR,
        "creator_type": "group",
        "license": _license(twin),
        "acknowledgement": _acknowledgement(twin, year),
        "crs": "EPSG:4326 (WGS 84 latitude/longitude), cell centres",
        **production_stamp(cfg, lm.sha256, cube_fingerprint),
        "model": lm.name,
        "window_days": np.int32(lm.window),
        "window_mode": lm.window_mode,
        "spin_up": SPIN_UP_DOC,
        "time_coverage_start": str(first),
        "time_coverage_end": str(last),
        "time_coverage_duration": f"P{len(times)}D",
        "time_coverage_resolution": "P1D",
        "geospatial_lat_min": south, "geospatial_lat_max": north,
        "geospatial_lon_min": west, "geospatial_lon_max": east,
        "geospatial_lat_units": "degrees_north", "geospatial_lon_units": "degrees_east",
        "geospatial_lat_resolution": f"{res:g} degree", "geospatial_lon_resolution": f"{res:g} degree",
        "geospatial_bounds": _wkt_box(south, north, west, east),
        "geospatial_bounds_crs": "EPSG:4326",
        "params": _params_yaml(cfg),
    }
    created = creation_date(lm, source)
    if created is not None:
        attrs["date_created"] = created
    return attrs


# ----------------------------------------------------------------------------------------------------------
# What the files hold
# ----------------------------------------------------------------------------------------------------------
def measure_product_bytes(folder: str | os.PathLike) -> dict:
    """Sizes of the written year files.

    Returns
    -------
    dict
        ``files`` (count), ``bytes``, ``pixel_days`` (land pixels x days) and ``bytes_per_pixel_day`` (B).
    """
    files = sorted(Path(folder).glob(PRODUCT_GLOB))
    total, pd_count = 0, 0
    for f in files:
        total += f.stat().st_size
        with xr.open_dataset(f, mask_and_scale=False) as ds:
            var = ds["sm_flag"]
            fill = var.attrs.get("_FillValue", var.encoding.get("_FillValue", FLAG_FILL_STORED))  # 255: version 1
            pd_count += int((var.isel(time=0).values != fill).sum()) * ds.sizes["time"]
    return {"files": len(files), "bytes": total, "pixel_days": pd_count,
            "bytes_per_pixel_day": total / pd_count if pd_count else float("nan")}


def flag_fractions(files: Iterable[str | os.PathLike], land_mask: np.ndarray) -> pd.DataFrame:
    """Fraction of land pixel-days with each bit of ``sm_flag`` set, over the given year files.

    Parameters
    ----------
    files : iterable of path-like
        Daily year files.
    land_mask : numpy.ndarray
        ``(lat, lon)`` bool, True on land (the pixels counted).

    Returns
    -------
    pandas.DataFrame
        One row per :data:`FLAG_BITS` entry: ``flag``, ``bit``, ``fraction_of_land_pixel_days`` (dimensionless).
    """
    counts, total = {name: 0 for name in FLAG_BITS}, 0
    for f in files:
        with xr.open_dataset(f, mask_and_scale=False) as one:
            flags = one["sm_flag"].values[:, land_mask]
        total += flags.size
        for name, bit in FLAG_BITS.items():
            counts[name] += int(((flags & bit) > 0).sum())
    return pd.DataFrame({"flag": list(counts), "bit": list(FLAG_BITS.values()),
                         "fraction_of_land_pixel_days": [v / total if total else np.nan for v in counts.values()]})
