"""Stage 04: seamless daily production, tile by tile and year by year, resumable, with Dask.

The trained AtLSTM is applied to every land pixel and every day of the period, and the result is written as
a CF-1.8 NetCDF product like the paper's Zenodo record.

Work decomposition
------------------
The grid is cut into ``production.tile_size`` x ``tile_size`` cell tiles (:func:`make_tiles`); one *task* is one
land tile x one year. A task reads only its tile's inputs for the year plus the ``L - 1`` days of spin-up the
first windows need (through a :class:`TileSource`), normalises them once into a ``(days, pixels, features)``
array, forms every window as a strided *view* of that array (no copy, no per-window Python), predicts in
batches of ``production.batch_size`` windows (``model_batch`` per model call, sized for the CPU caches) under
``torch.inference_mode``, and writes ``product/.work/<year>/<tile>.npz`` (temporary name, then rename). Memory
per task is bounded by the tile, not the domain (:func:`tile_memory_bytes`). Tasks run on a Dask
``distributed`` cluster: a ``LocalCluster(n_workers, threads_per_worker)`` by default, an existing scheduler
when ``production.scheduler_address`` is set (so a ``dask-jobqueue`` cluster on HPC runs the same code), or in
the calling process (``production.scheduler = 'synchronous'``, for tests).

When all land tiles of a year exist, the driver assembles them, tile by tile, into the year file and the
annual-mean file (written to hidden temporary names and renamed), then deletes the year's scratch. A finished
year is skipped unless ``production.overwrite``; after a kill, finished tiles are never recomputed. The scratch
folder carries a manifest (checkpoint SHA-256, grid, tiles, days); scratch from another checkpoint or grid is
discarded, never mixed in.

Seamless values, flags and the period edges
-------------------------------------------
Every land pixel (``land_mask == 1``) gets a value every day. ``sm_flag`` (uint8 bit field) says how:

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

Files (``results/<run>/product/``)
----------------------------------
``GLASS_AVHRR_SM_<YYYY>.nc``
    ``sm(time, lat, lon)`` daily surface soil moisture, m3 m-3, int16 with ``scale_factor = 1e-4``,
    ``add_offset = 0``, ``_FillValue = -32768`` (or float32 with ``production.encoding``), zlib level 4 with
    shuffle, chunks ``(32, c, c)`` with ``c`` the largest divisor of the tile edge up to 64 (tiles never split a
    chunk); ``sm_flag(time, lat, lon)``; latitude descending. ``xarray.open_mfdataset("product/*.nc")`` opens
    the whole record.
``annual/GLASS_AVHRR_SM_annual_mean_<YYYY>.nc``
    ``sm(time=1, lat, lon)`` mean of the year's days, with ``time_bnds`` and ``cell_methods = "time: mean"``.

The bytes are deterministic: no wall-clock time is written (``history`` names the software and the
checkpoint, not a date), paths in the ``params`` attribute are relative to the run folder, and tiles are
always assembled in the same order, so a resumed run writes files byte-identical to an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time as _time
import uuid
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import xarray as xr
import yaml

import glass_sm
from glass_sm import config as _config
from glass_sm.paths import RunPaths

__all__ = [
    "open_product",
    "PRODUCT_GLOB",
    "FLAG_BITS",
    "Tile",
    "TileSource",
    "CubeTileSource",
    "make_tiles",
    "chunk_edge",
    "year_days",
    "tile_memory_bytes",
    "produce_tile",
    "predict_tile",
    "assemble_year",
    "run_production",
    "product_path",
    "annual_path",
    "measure_product_bytes",
    "global_land_pixels",
    "paper_scale_estimate",
]

log = logging.getLogger(__name__)

PRODUCT_NAME = "GLASS_AVHRR_SM"
FLAG_BITS = {
    "albedo_gap_filled": 1,
    "lst_gap_filled": 2,
    "window_padded_at_period_edge": 4,
    "clipped_to_valid_range": 8,
    "input_missing_replaced_by_training_mean": 16,
}
"""Bits of ``sm_flag`` (CF ``flag_masks`` / ``flag_meanings``)."""
FLAG_FILL = 255
SM_SCALE = 1e-4
INT16_FILL = -32768
FLOAT_FILL = -9999.0
VALID_MIN, VALID_MAX = 0.0, 1.0
SCRATCH_FORMAT = 1
SPIN_UP_DOC = ("windows reaching outside the cube's days are padded by repeating the first (last) available day; "
               "such days carry sm_flag bit 4 (with past windows of L days: the first L-1 days of the period)")


# ----------------------------------------------------------------------------------------------------------
# Tiles and days
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Tile:
    """A block of cells ``[row0, row1) x [col0, col1)`` of the source grid (rows north to south)."""

    row0: int
    row1: int
    col0: int
    col1: int

    @property
    def name(self) -> str:
        """File-name-safe id, e.g. ``r0040_c0020``."""
        return f"r{self.row0:04d}_c{self.col0:04d}"

    @property
    def shape(self) -> tuple[int, int]:
        return (self.row1 - self.row0, self.col1 - self.col0)

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.row0, self.row1), slice(self.col0, self.col1)


def make_tiles(nrows: int, ncols: int, tile_size: int) -> list[Tile]:
    """Cut an ``nrows x ncols`` grid into tiles of at most ``tile_size`` cells a side, row-major.

    Every cell belongs to exactly one tile; the last row and column of tiles may be smaller.
    """
    if tile_size < 1:
        raise ValueError(f"production.tile_size must be >= 1 cell, got {tile_size}")
    if nrows < 1 or ncols < 1:
        raise ValueError(f"empty grid {nrows} x {ncols}")
    return [Tile(r, min(r + tile_size, nrows), c, min(c + tile_size, ncols))
            for r in range(0, nrows, tile_size) for c in range(0, ncols, tile_size)]


def chunk_edge(tile_size: int, max_edge: int = 64, min_edge: int = 16) -> int:
    """Spatial chunk edge of the product: the largest divisor of ``tile_size`` <= ``max_edge`` (so a tile never
    splits a chunk), or ``min(tile_size, max_edge)`` when that divisor would be below ``min_edge``."""
    best = max(d for d in range(1, min(tile_size, max_edge) + 1) if tile_size % d == 0)
    return best if best >= min(min_edge, tile_size) else min(tile_size, max_edge)


def year_days(time: pd.DatetimeIndex, year: int) -> tuple[int, int]:
    """Positions ``[a, b)`` of ``year``'s days in ``time``; raises ValueError when there are none."""
    years = np.asarray(time.year)
    idx = np.flatnonzero(years == year)
    if idx.size == 0:
        raise ValueError(f"year {year} is outside the source's days {time[0].date()}..{time[-1].date()}")
    return int(idx[0]), int(idx[-1]) + 1


def tile_memory_bytes(tile_size: int, window: int, n_features: int, batch_size: int, days: int = 366) -> int:
    """Upper bound of the array memory of one task, bytes; it depends on the tile, never on the domain.

    Inputs ``(days + L - 1, cells, F)`` float32 twice (read + pixel-major copy), one gathered batch
    ``(batch_size + days, L, F)``, the outputs ``(days, cells)`` float32 + flags, and per-cell masks.
    """
    cells = tile_size * tile_size
    inputs = (days + window - 1) * cells * n_features * 4
    batch = (batch_size + days) * window * n_features * 4
    outputs = days * cells * (4 + 1 + 4)
    masks = (days + window) * cells * 2
    return int(2 * inputs + batch + outputs + masks)


# ----------------------------------------------------------------------------------------------------------
# Where the inputs come from
# ----------------------------------------------------------------------------------------------------------
@runtime_checkable
class TileSource(Protocol):
    """Anything that can hand production the inputs of one tile and a range of days.

    The cube implementation is :class:`CubeTileSource`; a real-data source can read the GLASS HDF4, ERA5-Land
    and static files per tile instead and plug in here unchanged. Sources are pickled to Dask workers, so
    they should hold paths, not open files.

    Attributes
    ----------
    lat, lon : numpy.ndarray
        Cell centres of the source grid, degrees (latitude descending).
    time : pandas.DatetimeIndex
        Consecutive days available.
    source : str
        ``'synthetic twin'`` or ``'real data'`` (goes into the product's ``source`` attribute).
    """

    lat: np.ndarray
    lon: np.ndarray
    time: pd.DatetimeIndex
    source: str

    def land_mask(self) -> np.ndarray:
        """``(nlat, nlon)`` bool, True on land."""

    def check(self, model) -> None:
        """Raise :class:`glass_sm.models.CheckpointMismatchError` if the inputs do not fit the model."""

    def read_features(self, rows: np.ndarray, cols: np.ndarray, time: slice, normalizer) -> np.ndarray:
        """Normalised features ``(T, P, F)`` float32 of cells ``(rows, cols)`` and days ``time``; NaN if missing."""

    def read_gap_flags(self, rows: np.ndarray, cols: np.ndarray, time: slice) -> np.ndarray:
        """``(T, P)`` uint8 with :data:`FLAG_BITS` ``albedo_gap_filled`` / ``lst_gap_filled`` set."""


class CubeTileSource:
    """:class:`TileSource` reading the analysis-ready cube (``data/cube.zarr``, ``book/design.md``).

    Parameters
    ----------
    cube : path-like or xarray.Dataset
        A zarr store path (opened lazily without Dask in each process, so a tile reads only the chunks it
        touches) or an open Dataset (pickled with the task: keep it small, e.g. a test cube).
    """

    def __init__(self, cube):
        if isinstance(cube, xr.Dataset):
            self.path, self._ds = None, cube
        else:
            self.path, self._ds = Path(cube), None
            if not self.path.exists():
                raise FileNotFoundError(f"cube not found: {self.path} (run stage 01 first)")
        ds = self.ds
        for v in ("land_mask",):
            if v not in ds.variables:
                raise KeyError(f"cube {self.path or '(in memory)'} lacks '{v}'; found {sorted(ds.data_vars)}")
        self.lat = np.asarray(ds["lat"].values, np.float64)
        self.lon = np.asarray(ds["lon"].values, np.float64)
        self.time = pd.DatetimeIndex(ds["time"].values)
        src = str(ds.attrs.get("source", ""))
        self.source = "synthetic twin" if "twin" in src.lower() else "real data"
        self.flag_vars = [v for v in ("albedo_filled", "lst_filled") if v in ds.variables]

    @property
    def ds(self) -> xr.Dataset:
        if self._ds is None:
            with warnings.catch_warnings():  # a store without consolidated metadata is fine, just slower to open
                warnings.simplefilter("ignore", RuntimeWarning)
                self._ds = xr.open_zarr(self.path, consolidated=None, chunks=None)
        return self._ds

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.path is not None:
            state["_ds"] = None  # reopened lazily in the worker
        return state

    def land_mask(self) -> np.ndarray:
        if getattr(self, "_mask", None) is None:
            self._mask = np.nan_to_num(np.asarray(self.ds["land_mask"].transpose("lat", "lon").values)) == 1
        return self._mask

    def check(self, model) -> None:
        model.check_cube(self.ds)

    def read_features(self, rows, cols, time, normalizer) -> np.ndarray:
        from glass_sm.data.samples import feature_array  # noqa: PLC0415

        return feature_array(self.ds, normalizer, rows, cols, time)

    def read_gap_flags(self, rows, cols, time) -> np.ndarray:
        from glass_sm.data.samples import FeatureSpec, Normalizer, feature_array  # noqa: PLC0415

        n_days = len(range(*time.indices(len(self.time))))
        out = np.zeros((n_days, len(rows)), np.uint8)
        if not self.flag_vars:
            return out
        identity = Normalizer(FeatureSpec([], list(self.flag_vars)), np.zeros(len(self.flag_vars)),
                              np.ones(len(self.flag_vars)))
        raw = feature_array(self.ds, identity, rows, cols, time)
        for j, v in enumerate(self.flag_vars):
            bit = FLAG_BITS["albedo_gap_filled" if v.startswith("albedo") else "lst_gap_filled"]
            out |= np.where(np.nan_to_num(raw[:, :, j]) > 0, bit, 0).astype(np.uint8)
        return out


# ----------------------------------------------------------------------------------------------------------
# One task: a tile x a year
# ----------------------------------------------------------------------------------------------------------
_MODEL_CACHE: dict = {}
_MALLOC_TUNED = False


def _tune_malloc() -> None:
    """Undo, once per process, the small glibc trim threshold that Dask's nanny sets for its workers.

    The nanny exports ``MALLOC_TRIM_THRESHOLD_=65536``; setting it freezes glibc's mmap threshold at 128 KiB, so
    every LSTM intermediate tensor of a batch (hundreds of KiB) is an ``mmap``/``munmap`` pair with fresh page
    faults, which halves the inference rate. Raising both thresholds (64 MiB mmap, 128 MiB trim) restores the
    in-process speed; memory is still returned to the system above 128 MiB of free heap.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED or not os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return
    _MALLOC_TUNED = True
    try:
        import ctypes  # noqa: PLC0415

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 64 << 20)
        libc.mallopt(m_trim_threshold, 128 << 20)
    except (OSError, AttributeError):  # not glibc: nothing to undo
        pass


def _get_model(checkpoint):
    """A LoadedModel as given, or loaded once per process from ``(path, sha256)``."""
    if not isinstance(checkpoint, tuple):
        return checkpoint
    path, sha = checkpoint
    key = (str(path), sha)
    if key not in _MODEL_CACHE:
        from glass_sm.models.checkpoint import load_checkpoint  # noqa: PLC0415

        lm = load_checkpoint(path)
        if lm.sha256 != sha:
            raise RuntimeError(f"checkpoint {path} changed during production (sha256 {lm.sha256[:12]} != "
                               f"{sha[:12]}); restart the run")
        _MODEL_CACHE.clear()
        _MODEL_CACHE[key] = lm
    return _MODEL_CACHE[key]


def predict_tile(model, x: np.ndarray, n_out: int, batch_size: int = 8192, model_batch: int = 256) -> np.ndarray:
    """Predict every window of a normalised ``(T, P, F)`` array: ``(n_out, P)`` float32, m3 m-3.

    Output day ``k`` reads input days ``k .. k + L - 1`` (``T = n_out + L - 1``); the windows are a strided
    view of a pixel-major copy of ``x``, copied to a contiguous ``(windows, L, F)`` block one batch of pixels at
    a time (about ``batch_size`` windows), then fed to the model ``model_batch`` windows per call.
    """
    import torch  # noqa: PLC0415

    T, P, F = x.shape
    L = T - n_out + 1
    out = np.empty((P, n_out), np.float32)
    if P == 0 or n_out == 0:
        return out.T
    xp = np.ascontiguousarray(x.transpose(1, 0, 2))  # (P, T, F): each pixel's days contiguous
    view = np.lib.stride_tricks.sliding_window_view(xp, L, axis=1).transpose(0, 1, 3, 2)  # (P, n_out, L, F)
    px_per_batch = max(1, batch_size // n_out)
    with torch.inference_mode():
        for p0 in range(0, P, px_per_batch):
            p1 = min(P, p0 + px_per_batch)
            xb = np.ascontiguousarray(view[p0:p1]).reshape(-1, L, F)
            yb = out[p0:p1].reshape(-1)
            tb = torch.from_numpy(xb)
            for s in range(0, len(xb), model_batch):
                yb[s:s + model_batch] = model(tb[s:s + model_batch]).numpy()
    return out.T


def produce_tile(source: TileSource, checkpoint, tile: Tile, year: int, work_dir: str | os.PathLike,
                 batch_size: int = 8192, model_batch: int = 256, torch_threads: int | None = None) -> dict:
    """Compute one tile x year and write ``<work_dir>/<tile>.npz`` (``sm`` float32 and ``sm_flag`` uint8,
    ``(days, tile rows, tile cols)``, NaN / 255 off land), atomically. Returns timing and size statistics.

    Parameters
    ----------
    source : TileSource
        Inputs.
    checkpoint : LoadedModel or (path, sha256)
        The model (loaded once per process from a path).
    tile : Tile
        Cells of the source grid.
    year : int
        Calendar year; its days inside ``source.time`` are produced.
    work_dir : path-like
        The year's scratch folder.
    batch_size, model_batch : int
        Windows gathered per batch and per model call.
    torch_threads : int, optional
        ``torch.set_num_threads`` for this task (None: leave as is).
    """
    import torch  # noqa: PLC0415

    t_start = _time.perf_counter()
    _tune_malloc()
    if torch_threads:  # in every task: OpenMP thread counts are per calling thread (Dask worker threads)
        torch.set_num_threads(torch_threads)
    lm = _get_model(checkpoint)
    mask = source.land_mask()[tile.slices]
    r_in, c_in = np.nonzero(mask)
    rows, cols = r_in + tile.row0, c_in + tile.col0
    a, b = year_days(source.time, year)
    n_out, T = b - a, len(source.time)
    off = lm.offsets
    lo, hi = int(off[0]), int(off[-1])
    i0, i1 = max(0, a + lo), min(T, b + hi)  # days available to read
    pre, post = i0 - (a + lo), (b + hi) - i1  # days to pad by repetition

    x = source.read_features(rows, cols, slice(i0, i1), lm.normalizer)
    if pre or post:
        x = np.pad(x, ((pre, post), (0, 0), (0, 0)), mode="edge")
    missing = ~np.isfinite(x).all(axis=2)  # (T_ext, P)
    if missing.any():
        x = np.where(np.isfinite(x), x, np.float32(0.0))
    t_read = _time.perf_counter()

    pred = predict_tile(lm.model, x, n_out, batch_size, model_batch)  # (n_out, P)
    t_infer = _time.perf_counter()

    flags = source.read_gap_flags(rows, cols, slice(a, b))
    if missing.any():
        c = np.concatenate([np.zeros((1, len(rows)), np.int32), np.cumsum(missing, axis=0, dtype=np.int32)])
        L = hi - lo + 1
        flags |= np.where(c[L:] - c[:-L] > 0, FLAG_BITS["input_missing_replaced_by_training_mean"], 0).astype(np.uint8)
    days = np.arange(a, b)
    padded = (days + lo < 0) | (days + hi > T - 1)
    flags[padded] |= FLAG_BITS["window_padded_at_period_edge"]
    bad = ~np.isfinite(pred)
    if bad.any():
        raise FloatingPointError(f"tile {tile.name} {year}: {int(bad.sum())} non-finite predictions from finite "
                                 "inputs; the checkpoint is broken")
    clipped = (pred < VALID_MIN) | (pred > VALID_MAX)
    flags[clipped] |= FLAG_BITS["clipped_to_valid_range"]
    pred = np.clip(pred, VALID_MIN, VALID_MAX)

    ny, nx = tile.shape
    sm = np.full((n_out, ny, nx), np.nan, np.float32)
    fl = np.full((n_out, ny, nx), FLAG_FILL, np.uint8)
    sm[:, r_in, c_in] = pred
    fl[:, r_in, c_in] = flags
    work_dir = Path(work_dir)
    path = work_dir / f"{tile.name}.npz"
    tmp = work_dir / f".{tile.name}.{os.getpid()}.partial.npz"
    with open(tmp, "wb") as fh:
        np.savez(fh, sm=sm, sm_flag=fl)
    os.replace(tmp, path)
    t_end = _time.perf_counter()
    return {"tile": tile.name, "year": year, "pixels": int(len(rows)), "pixel_days": int(len(rows) * n_out),
            "read_s": t_read - t_start, "infer_s": t_infer - t_read, "total_s": t_end - t_start,
            "input_bytes": int(x.nbytes)}


# ----------------------------------------------------------------------------------------------------------
# Year files
# ----------------------------------------------------------------------------------------------------------
def product_path(folder: str | os.PathLike, year: int) -> Path:
    """``<folder>/GLASS_AVHRR_SM_<YYYY>.nc``."""
    return Path(folder) / f"{PRODUCT_NAME}_{year}.nc"


PRODUCT_GLOB = "GLASS_AVHRR_SM_[0-9][0-9][0-9][0-9].nc"  #: the daily year files of the product


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
    folder = Path(folder)
    files = sorted(folder.glob(PRODUCT_GLOB))
    if not files:
        raise FileNotFoundError(f"no product file {PRODUCT_GLOB} in {folder}: run stage 04 "
                                "(notebooks/04_global_production.ipynb) first")
    ds = xr.open_mfdataset([str(f) for f in files], engine=engine, combine="by_coords",
                           data_vars="minimal", coords="minimal", compat="override")
    if variable not in ds:
        raise KeyError(f"product files in {folder} lack variable '{variable}' (found {sorted(ds.data_vars)})")
    da = ds[variable]
    da.attrs.setdefault("units", "m3 m-3")
    da.name = name
    return da


def annual_path(folder: str | os.PathLike, year: int) -> Path:
    """``<folder>/annual/GLASS_AVHRR_SM_annual_mean_<YYYY>.nc``."""
    return Path(folder) / "annual" / f"{PRODUCT_NAME}_annual_mean_{year}.nc"


def _days_since_epoch(times: pd.DatetimeIndex) -> np.ndarray:
    return ((times.values.astype("datetime64[D]") - np.datetime64("1970-01-01", "D"))
            .astype(np.int64).astype(np.int32))


def _define_file(path: Path, lat, lon, times: pd.DatetimeIndex, encoding: str, chunks: tuple, attrs: dict,
                 annual: bool = False, time_bnds: np.ndarray | None = None):
    import netCDF4  # noqa: PLC0415

    nc = netCDF4.Dataset(path, "w", format="NETCDF4")
    nc.createDimension("time", len(times))
    nc.createDimension("lat", len(lat))
    nc.createDimension("lon", len(lon))
    tv = nc.createVariable("time", "i4", ("time",))
    tv.setncatts({"standard_name": "time", "long_name": "time", "units": "days since 1970-01-01 00:00:00",
                  "calendar": "proleptic_gregorian", "axis": "T"})
    if annual:
        nc.createDimension("nv", 2)
        tv.setncattr("bounds", "time_bnds")
        bv = nc.createVariable("time_bnds", "i4", ("time", "nv"))
        bv[:] = time_bnds
    tv[:] = _days_since_epoch(times)
    for name, vals, std, units, axis in (("lat", lat, "latitude", "degrees_north", "Y"),
                                         ("lon", lon, "longitude", "degrees_east", "X")):
        v = nc.createVariable(name, "f8", (name,))
        v.setncatts({"standard_name": std, "long_name": std, "units": units, "axis": axis})
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
                  "units": "m3 m-3"})
    if annual:
        sm.setncattr("cell_methods", "time: mean")
    sm.set_auto_maskandscale(False)
    fl = None
    if not annual:
        fl = nc.createVariable("sm_flag", "u1", dims, zlib=True, complevel=4, shuffle=True, chunksizes=chunks,
                               fill_value=np.uint8(FLAG_FILL))
        fl.setncatts({"long_name": "quality flags of sm", "standard_name": "status_flag",
                      "flag_masks": np.array(list(FLAG_BITS.values()), np.uint8),
                      "flag_meanings": " ".join(FLAG_BITS), "valid_range": np.array([0, 31], np.uint8),
                      "comment": SPIN_UP_DOC})
        fl.set_auto_maskandscale(False)
    nc.setncatts(attrs)
    return nc, sm, fl


def _encode(sm: np.ndarray, encoding: str) -> np.ndarray:
    if encoding == "int16":
        out = np.full(sm.shape, INT16_FILL, np.int16)
        ok = np.isfinite(sm)
        out[ok] = np.rint(sm[ok] / SM_SCALE).astype(np.int16)
        return out
    return np.where(np.isfinite(sm), sm, np.float32(FLOAT_FILL)).astype(np.float32)


def assemble_year(year: int, tiles: list[Tile], land_tiles: set, work_dir: Path, folder: Path, lat, lon,
                  times: pd.DatetimeIndex, encoding: str, chunks: tuple, attrs: dict) -> tuple[Path, Path]:
    """Write the year file and the annual-mean file from the year's tile scratch files, tile by tile.

    Tiles without land are not written (the file's fill value); only one tile is in memory at a time. Both
    files are written under hidden ``.partial`` names and renamed, the annual file first, so the presence of
    the daily file means the year is complete.
    """
    out, ann = product_path(folder, year), annual_path(folder, year)
    ann.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.partial")
    tmp_ann = ann.with_name(f".{ann.name}.partial")
    first = int(_days_since_epoch(times[:1])[0])
    bnds = np.array([[first, first + len(times)]], np.int32)
    ann_attrs = {**attrs, "title": attrs["title"] + ", annual mean",
                 "comment": f"mean of the {len(times)} daily values of {year} produced in this run"}
    nc, sm_v, fl_v = _define_file(tmp_out, lat, lon, times, encoding, chunks, attrs)
    try:
        nca, sma_v, _ = _define_file(tmp_ann, lat, lon, times[:1], encoding, (1, chunks[1], chunks[2]),
                                     ann_attrs, annual=True, time_bnds=bnds)
        try:
            for tile in tiles:
                if tile not in land_tiles:
                    continue
                with np.load(work_dir / f"{tile.name}.npz") as z:
                    sm, fl = z["sm"], z["sm_flag"]
                rs, cs = tile.slices
                sm_v[:, rs, cs] = _encode(sm, encoding)
                fl_v[:, rs, cs] = fl
                ok = np.isfinite(sm)
                n = ok.sum(axis=0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    mean = np.where(ok, sm, 0).sum(axis=0, dtype=np.float64) / n
                mean[n == 0] = np.nan
                sma_v[0:1, rs, cs] = _encode(mean.astype(np.float32)[None], encoding)
        finally:
            nca.close()
    finally:
        nc.close()
    os.replace(tmp_ann, ann)
    os.replace(tmp_out, out)
    return out, ann


EXECUTION_KEYS = ("years", "scheduler_address", "n_workers", "threads_per_worker", "overwrite", "scheduler",
                  "torch_threads")
"""``production`` settings left out of the files' ``params`` attribute: they decide how the work is scheduled,
not the values, so a run resumed with other workers writes the same bytes."""


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
    d["source_file"] = os.path.basename(d["source_file"]) if d.get("source_file") else None
    return yaml.safe_dump(d, sort_keys=False)


def _global_attrs(cfg, lm, source: TileSource, times: pd.DatetimeIndex) -> dict:
    twin = source.source == "synthetic twin"
    tag = "synthetic twin" if twin else "real data"
    return {
        "title": f"GLASS-AVHRR-like seamless daily 0.05 degree surface soil moisture (glass-sm, {tag})",
        "source": f"AtLSTM applied to AVHRR albedo/LST, ERA5-Land, terrain, soil texture ({tag})",
        "references": ("Zhang et al. (2025), GLASS-AVHRR soil moisture, Earth Syst. Sci. Data 17, 5181-5207, "
                       "https://doi.org/10.5194/essd-17-5181-2025"),
        "history": (f"glass_sm.production.run_production (glass-sm {glass_sm.__version__}): model "
                    f"'{lm.name}' from {Path(lm.path).name if lm.path else 'memory'} applied tile by tile"),
        "Conventions": "CF-1.8",
        "crs": "EPSG:4326 (WGS 84 latitude/longitude), cell centres",
        "product_version": glass_sm.__version__,
        "checkpoint_sha256": lm.sha256,
        "model": lm.name,
        "window_days": np.int32(lm.window),
        "window_mode": lm.window_mode,
        "spin_up": SPIN_UP_DOC,
        "time_coverage_start": str(times[0].date()),
        "time_coverage_end": str(times[-1].date()),
        "geospatial_lat_min": float(source.lat.min() - 0.025), "geospatial_lat_max": float(source.lat.max() + 0.025),
        "geospatial_lon_min": float(source.lon.min() - 0.025), "geospatial_lon_max": float(source.lon.max() + 0.025),
        "params": _params_yaml(cfg),
    }


def measure_product_bytes(folder: str | os.PathLike) -> dict:
    """Sizes of the written year files: ``files``, ``bytes``, ``pixel_days`` (land x days), ``bytes_per_pixel_day``."""
    folder = Path(folder)
    files = sorted(folder.glob(f"{PRODUCT_NAME}_*.nc"))
    total, pd_count = 0, 0
    for f in files:
        total += f.stat().st_size
        with xr.open_dataset(f, mask_and_scale=False) as ds:
            flag = ds["sm_flag"].isel(time=0).values
            pd_count += int((flag != FLAG_FILL).sum()) * ds.sizes["time"]
    return {"files": len(files), "bytes": total, "pixel_days": pd_count,
            "bytes_per_pixel_day": total / pd_count if pd_count else float("nan")}


# ----------------------------------------------------------------------------------------------------------
# The driver
# ----------------------------------------------------------------------------------------------------------
@dataclass
class _YearState:
    year: int
    work_dir: Path
    todo: int
    bar: object
    t0: float
    pixel_days: int = 0
    compute_s: float = 0.0
    resumed: int = 0
    tiles_done: int = 0


def _prepare_scratch(work_dir: Path, manifest: dict) -> None:
    """Create the year's scratch folder; discard it when its manifest differs (other checkpoint or grid)."""
    mpath = work_dir / "MANIFEST.json"
    if work_dir.exists():
        try:
            old = json.loads(mpath.read_text())
        except (OSError, ValueError):
            old = None
        if old != manifest:
            log.warning("discarding scratch %s written for another checkpoint/grid", work_dir)
            shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    for stale in work_dir.glob(".*.partial.npz"):
        stale.unlink(missing_ok=True)
    if not mpath.exists():
        tmp = work_dir / ".MANIFEST.json.partial"
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        os.replace(tmp, mpath)


def _write_timing(paths: RunPaths, rows: list[dict]) -> None:
    if not rows:
        return
    path = paths.table("production_timing")
    new = pd.DataFrame(rows)
    if path.exists():
        old = pd.read_csv(path)
        old = old[~old["year"].isin(new["year"])]
        new = pd.concat([old, new], ignore_index=True)
    tmp = path.with_name(f".{path.name}.partial")
    new.sort_values("year").to_csv(tmp, index=False)
    os.replace(tmp, path)


def run_production(cfg, checkpoint_path: str | os.PathLike | None = None, years: list[int] | None = None,
                   progress: bool = True, client=None, source: TileSource | None = None) -> list[Path]:
    """Produce the seamless daily product for the run's grid and years; resumable, tile by tile.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        Uses ``cfg.production`` (tiles, scheduler, batches, encoding, overwrite) and the run's folders.
    checkpoint_path : path-like, optional
        Production checkpoint (default ``results/<run>/models/atlstm_final.pt``).
    years : list of int, optional
        Years to produce (default ``cfg.production.years``, or every year of the source's days).
    progress : bool
        One tqdm bar per year over tiles, pixel-days/s in the postfix.
    client : distributed.Client or 'synchronous', optional
        An existing Dask client, or ``'synchronous'`` to compute in this process. Default: the scheduler at
        ``cfg.production.scheduler_address``, else a ``LocalCluster(n_workers, threads_per_worker)`` created
        and closed here, else in-process when ``cfg.production.scheduler == 'synchronous'``.
    source : TileSource, optional
        Inputs (default: :class:`CubeTileSource` on ``results/<run>/data/cube.zarr``).

    Returns
    -------
    list of Path
        The year files ``product/GLASS_AVHRR_SM_<YYYY>.nc`` of the requested years (existing ones included).

    Raises
    ------
    glass_sm.models.CheckpointMismatchError
        The cube does not provide the checkpoint's features in the same units and ranges.

    Notes
    -----
    On HPC, start a cluster with ``dask-jobqueue`` (e.g. ``SLURMCluster(cores=..., processes=...)``, one thread
    per core) and pass its client, or put its address in ``production.scheduler_address``; the workers must see
    the same file system as the driver (cube, checkpoint, ``product/``). Each worker thread runs one tile-year
    with ``production.torch_threads`` (default 1) torch threads. Memory per thread is about
    :func:`tile_memory_bytes` plus the model.
    """
    from tqdm import tqdm  # noqa: PLC0415 (text bars: readable in executed notebooks and logs)

    from glass_sm.models.checkpoint import load_checkpoint  # noqa: PLC0415

    pc = cfg.production
    paths = RunPaths.from_config(cfg)
    checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else paths.models / "atlstm_final.pt"
    source = source if source is not None else CubeTileSource(paths.cube)
    lm = load_checkpoint(checkpoint_path)
    source.check(lm)

    all_years = sorted(set(int(y) for y in source.time.year))
    years = [int(y) for y in (years if years is not None else (pc.years or all_years))]
    missing = [y for y in years if y not in all_years]
    if missing:
        raise ValueError(f"years {missing} are outside the source's days {source.time[0].date()}.."
                         f"{source.time[-1].date()}")
    folder = paths.product
    folder.mkdir(parents=True, exist_ok=True)
    outputs = [product_path(folder, y) for y in years]
    todo_years = [y for y in years if pc.overwrite or not (product_path(folder, y).exists()
                                                           and annual_path(folder, y).exists())]
    for y in years:
        if y not in todo_years:
            shutil.rmtree(folder / ".work" / str(y), ignore_errors=True)  # leftovers of a kill after assembly
    if not todo_years:
        return outputs

    mask = source.land_mask()
    tiles = make_tiles(len(source.lat), len(source.lon), pc.tile_size)
    land_tiles = [t for t in tiles if mask[t.slices].any()]
    land_set = set(land_tiles)
    ce = chunk_edge(pc.tile_size)
    ckpt_ref = (str(checkpoint_path), lm.sha256)

    synchronous = client == "synchronous" or (client is None and pc.scheduler == "synchronous")
    own_cluster = None
    if not synchronous and client is None:
        from distributed import Client, LocalCluster  # noqa: PLC0415

        if pc.scheduler_address:
            client = Client(pc.scheduler_address)
            own_cluster = client
        else:
            cluster = LocalCluster(n_workers=pc.n_workers, threads_per_worker=pc.threads_per_worker,
                                   processes=True, dashboard_address=None, scheduler_port=0)
            client = Client(cluster)
            own_cluster = (client, cluster)
    torch_threads = pc.torch_threads or 1  # per task; parallelism comes from Dask threads/workers

    def start_year(year: int) -> tuple[_YearState, list[Tile]]:
        a, b = year_days(source.time, year)
        times = source.time[a:b]
        work_dir = folder / ".work" / str(year)
        manifest = {"format": SCRATCH_FORMAT, "checkpoint_sha256": lm.sha256, "tile_size": pc.tile_size,
                    "lat": [float(source.lat[0]), float(source.lat[-1]), len(source.lat)],
                    "lon": [float(source.lon[0]), float(source.lon[-1]), len(source.lon)],
                    "days": [str(times[0].date()), str(times[-1].date())],
                    "cube_days": [str(source.time[0].date()), str(source.time[-1].date())]}
        _prepare_scratch(work_dir, manifest)
        todo = [t for t in land_tiles if not (work_dir / f"{t.name}.npz").exists()]
        bar = tqdm(total=len(land_tiles), initial=len(land_tiles) - len(todo), desc=f"{PRODUCT_NAME} {year}",
                   unit="tile", disable=not progress, leave=True, mininterval=1.0)
        st = _YearState(year, work_dir, len(todo), bar, _time.perf_counter(), resumed=len(land_tiles) - len(todo))
        return st, todo

    def tile_done(st: _YearState, res: dict) -> None:
        st.pixel_days += res["pixel_days"]
        st.compute_s += res["total_s"]
        st.tiles_done += 1
        st.bar.update(1)
        rate = st.pixel_days / max(_time.perf_counter() - st.t0, 1e-9)
        st.bar.set_postfix_str(f"{rate:,.0f} pixel-days/s")

    timing_rows = []

    def finish_year(st: _YearState) -> None:
        a, b = year_days(source.time, st.year)
        times = source.time[a:b]
        t_asm = _time.perf_counter()
        attrs = _global_attrs(cfg, lm, source, times)
        chunks = (min(32, len(times)), min(ce, len(source.lat)), min(ce, len(source.lon)))
        out, ann = assemble_year(st.year, tiles, land_set, st.work_dir, folder, source.lat, source.lon, times,
                                 pc.encoding, chunks, attrs)
        shutil.rmtree(st.work_dir, ignore_errors=True)
        now = _time.perf_counter()
        st.bar.close()
        land_px = int(mask.sum())
        timing_rows.append({
            "year": st.year, "land_pixels": land_px, "days": len(times), "pixel_days": land_px * len(times),
            "tiles": len(land_tiles), "tiles_resumed": st.resumed, "computed_pixel_days": st.pixel_days,
            "wall_s": round(now - st.t0, 3), "task_s": round(st.compute_s, 3),
            "assemble_s": round(now - t_asm, 3),
            "pixel_days_per_s": round(st.pixel_days / max(now - st.t0, 1e-9), 1),
            "bytes_daily": out.stat().st_size, "bytes_annual": ann.stat().st_size,
            "scheduler": "synchronous" if synchronous else "distributed", "torch_threads": torch_threads,
            "cores": os.cpu_count(),
        })

    args = dict(batch_size=pc.batch_size, model_batch=pc.model_batch, torch_threads=torch_threads)
    t_run = _time.perf_counter()
    try:
        if synchronous:
            for year in todo_years:
                st, todo = start_year(year)
                for t in todo:
                    tile_done(st, produce_tile(source, lm, t, year, st.work_dir, **args))
                finish_year(st)
        else:
            _run_distributed(client, source, ckpt_ref, todo_years, start_year, tile_done, finish_year, args)
    finally:
        run_wall = _time.perf_counter() - t_run  # years overlap in Dask: the run's rate is the honest one
        for r in timing_rows:
            r.update(run_wall_s=round(run_wall, 3),
                     run_pixel_days=sum(x["computed_pixel_days"] for x in timing_rows))
        _write_timing(paths, timing_rows)
        if own_cluster is not None:
            for obj in (own_cluster if isinstance(own_cluster, tuple) else (own_cluster,)):
                obj.close()
    return outputs


def _run_distributed(client, source, ckpt_ref, years, start_year, tile_done, finish_year, args,
                     years_in_flight: int = 2) -> None:
    """Submit the tiles of at most ``years_in_flight`` years; assemble a year as soon as its tiles are done."""
    from distributed import as_completed  # noqa: PLC0415

    queue = deque(years)
    active: dict[int, tuple] = {}
    ac = as_completed()
    in_memory = isinstance(source, CubeTileSource) and source.path is None
    src_future = client.scatter(source, broadcast=True) if in_memory else source
    run_token = uuid.uuid4().hex[:8]  # task keys only; never written to files
    try:
        while queue or active:
            while queue and len(active) < years_in_flight:
                year = queue.popleft()
                st, todo = start_year(year)
                if not todo:
                    finish_year(st)
                    continue
                futs = [client.submit(produce_tile, src_future, ckpt_ref, t, year, str(st.work_dir), **args,
                                      key=f"glass-sm-tile-{year}-{t.name}-{run_token}", pure=False,
                                      retries=1)
                        for t in todo]
                active[year] = (st, len(futs))
                ac.update(futs)
            if not active:
                continue
            fut = next(ac)
            res = fut.result()
            st, n = active[res["year"]]
            tile_done(st, res)
            if st.tiles_done == n:
                del active[res["year"]]
                finish_year(st)
    except BaseException:
        for f in list(ac.futures):
            f.cancel()
        raise


# ----------------------------------------------------------------------------------------------------------
# Paper-scale arithmetic
# ----------------------------------------------------------------------------------------------------------
def global_land_pixels(south_limit: float = -60.0) -> dict:
    """Land cells of the global 0.05 deg grid: Natural Earth 1:50m land polygons rasterized at the cell centres
    (offline, from the shipped shapefiles).

    Returns
    -------
    dict
        ``all_land`` and ``land_north_of_<limit>`` (Antarctica excluded), cells.
    """
    from rasterio import features  # noqa: PLC0415
    from rasterio.transform import from_origin  # noqa: PLC0415

    from glass_sm.figures import style as plots  # noqa: PLC0415
    from glass_sm.grid import NCOLS, NROWS, RES  # noqa: PLC0415

    plots.offline_cartopy()
    import cartopy.io.shapereader as shpreader  # noqa: PLC0415

    path = shpreader.natural_earth(resolution="50m", category="physical", name="land")
    geoms = list(shpreader.Reader(path).geometries())
    mask = features.rasterize(((g, 1) for g in geoms), out_shape=(NROWS, NCOLS),
                              transform=from_origin(-180, 90, RES, RES), fill=0, dtype="uint8")
    lat = 90 - (np.arange(NROWS) + 0.5) * RES
    return {"all_land": int(mask.sum()), f"land_north_of_{abs(south_limit):g}S": int(mask[lat > south_limit].sum())}


def paper_scale_estimate(land_pixels: int, days: int, rate_pixel_days_per_s: float, cores: int,
                         bytes_per_pixel_day: float, gpu_rate_pixel_days_per_s: float | None = None) -> pd.DataFrame:
    """Cost of the paper-scale production at measured rates, as a table (quantity, value, unit, how).

    Parameters
    ----------
    land_pixels : int
        Land cells of the 0.05 deg grid.
    days : int
        Days of the record (1982-2021: 14610).
    rate_pixel_days_per_s : float
        Measured end-to-end production rate on ``cores`` CPU cores, pixel-days/s.
    cores : int
        Cores the rate was measured on.
    bytes_per_pixel_day : float
        Measured size of the written daily files per land pixel-day, bytes.
    gpu_rate_pixel_days_per_s : float, optional
        Measured rate on one GPU (None: not measured, GPU-hours left empty).
    """
    pixel_days = float(land_pixels) * days
    per_core = rate_pixel_days_per_s / cores
    rows = [
        ("land pixels", land_pixels, "cells", "0.05 deg cells on land"),
        ("days", days, "days", "length of the record"),
        ("pixel-days", pixel_days, "pixel-days", "land pixels x days"),
        ("measured rate", rate_pixel_days_per_s, "pixel-days/s", f"end to end on {cores} CPU cores"),
        ("core-hours", pixel_days / per_core / 3600, "core-h", "pixel-days / (rate / cores) / 3600"),
        ("wall time on 1000 cores", pixel_days / (per_core * 1000) / 3600, "h", "perfect scaling assumed"),
        ("GPU-hours", (pixel_days / gpu_rate_pixel_days_per_s / 3600) if gpu_rate_pixel_days_per_s else np.nan,
         "GPU-h", "pixel-days / measured GPU rate / 3600" if gpu_rate_pixel_days_per_s else
         "not measured: no GPU on this machine"),
        ("bytes per pixel-day", bytes_per_pixel_day, "B", "measured on the written daily files"),
        ("daily product volume", pixel_days * bytes_per_pixel_day / 1e12, "TB", "pixel-days x bytes per pixel-day"),
    ]
    return pd.DataFrame(rows, columns=["quantity", "value", "unit", "how"])
