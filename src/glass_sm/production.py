"""Stage 04's engine: seamless daily production, tile by tile and year by year, resumable, with Dask.

The trained AtLSTM is applied to every land pixel and every day of the period; :mod:`glass_sm.product` writes the
result as a CF-1.8 NetCDF product like the paper's Zenodo record (file format, flags, readers).

Work decomposition
------------------
The grid is cut into ``production.tile_size`` x ``tile_size`` cell tiles (:func:`make_tiles`); one *task* is one
land tile x one year. A task reads only its tile's inputs for the year plus the ``L - 1`` days of spin-up the
first windows need (through a :class:`TileSource`), normalises them once into a ``(days, pixels, features)`` array
and predicts every window of it with :class:`glass_sm.models.inference.WindowEngine` (the first layer's input
projection once per pixel-day, shared by the overlapping windows; blocks of about ``production.batch_size``
windows, ``model_batch`` per recurrent batch, sized for the CPU caches; arithmetic ``production.precision``),
equal to the module's forward up to fp32 rounding (:func:`predict_tile`), and writes
``product/.work/<year>/<tile>.npz`` (temporary name, then rename). Memory per task is bounded by the tile, not the
domain (:func:`tile_memory_bytes`). Tasks run on a Dask ``distributed`` cluster: a ``LocalCluster(n_workers,
threads_per_worker)`` by default, an existing scheduler when ``production.scheduler_address`` is set (so a
``dask-jobqueue`` cluster on HPC runs the same code), or in the calling process (``production.scheduler =
'synchronous'``, for tests).

When all land tiles of a year exist, the driver assembles them, tile by tile, into the year file and the
annual-mean file (:func:`glass_sm.product.assemble_year`), then deletes the year's scratch. Every land pixel gets
a value every day; ``sm_flag`` says how (:data:`glass_sm.product.FLAG_BITS`).

What is redone, and what is guaranteed
--------------------------------------
* A finished year (both files present) is skipped only while what made it is unchanged: its files record the
  checkpoint SHA-256, the cube's fingerprint (:func:`store_fingerprint`) and the value-changing production
  parameters (:func:`glass_sm.product.production_stamp`). When one differs, or a file cannot be read, the year is
  re-produced with a :class:`ProductionWarning` saying why; the reason of every year produced is the ``reason``
  column of the ``production_timing`` table. ``production.overwrite`` re-produces every requested year.
* The year's scratch folder carries the same record plus the grid and days (``MANIFEST.json``); scratch made
  under anything else is discarded, never mixed in. After a kill, finished tiles are not recomputed; a scratch
  tile that does not load (truncated, garbage, wrong shape, failed checksum) is discarded and recomputed with a
  warning naming it. Tiles are written under per-process temporary names and renamed; the year files under
  temporary names removed on any error, so no half-written file ever has a final name.
* One production per results folder at a time: the run holds ``product/.production.lock`` (pid, host, start
  time). A second run fails at once naming the holder; a lock whose process is gone (same host) is taken over
  with a warning; the lock is released on return, error or interrupt.
* The timing row of a year is written as soon as the year is finished, so a kill keeps the rows of the years
  already done.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import sys
import threading
import time as _time
import uuid
import warnings
import zipfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from distributed import as_completed
from tqdm import tqdm  # text bars (not tqdm.auto widgets): readable in executed notebooks and logs

from glass_sm import config as _config
from glass_sm.cluster import cluster_client
from glass_sm.contract import read_table, write_table
from glass_sm.data.cube import store_fingerprint
from glass_sm.lock import LockedError, hold_lock
from glass_sm.models.checkpoint import load_checkpoint
from glass_sm.models.inference import PRECISIONS, WindowEngine
from glass_sm.models.inference import supports as supports_engine
from glass_sm.paths import RunPaths, atomic_write
from glass_sm.training import model_on, resolve_device
from glass_sm.product import (FLAG_BITS, FLAG_FILL, PRODUCT_GLOB, PRODUCT_NAME, VALID_MAX, VALID_MIN, annual_path,
                              assemble_year, global_attrs, open_product, product_path, production_stamp, read_stamp,
                              stamp_changes)
from glass_sm.tiling import (CubeTileSource, Tile, TileSource, chunk_edge, make_tiles, tile_memory_bytes,
                             year_days)

__all__ = [
    "Tile",
    "TileSource",
    "CubeTileSource",
    "make_tiles",
    "chunk_edge",
    "year_days",
    "tile_memory_bytes",
    "produce_tile",
    "predict_tile",
    "load_model",
    "inference_engine",
    "run_production",
    "check_production_params",
    "store_fingerprint",
    "production_lock",
    "ProductionWarning",
    "ProductionLockedError",
    "LOCK_NAME",
    # the product's files, re-exported from glass_sm.product (their one home)
    "open_product",
    "PRODUCT_GLOB",
    "FLAG_BITS",
    "product_path",
    "annual_path",
]

log = logging.getLogger(__name__)

SCRATCH_FORMAT = 2  #: version of the scratch layout (``MANIFEST.json``, ``<tile>.npz``)
LOCK_NAME = ".production.lock"  #: the results folder's production lock, in ``product/``
COUNT_KEYS = ("n_workers", "threads_per_worker", "torch_threads", "tile_size", "batch_size", "model_batch")
"""``production`` settings that count something and must be >= 1 (``torch_threads`` may also be None)."""


class ProductionWarning(UserWarning):
    """Stage 04 did something the user must know about: re-produced a finished year, discarded scratch, or took
    over a stale lock (the message says which and why)."""


class ProductionLockedError(LockedError):
    """Another production holds the results folder's lock (the message names its pid, host and start time)."""


def _warn(message: str) -> None:
    """A :class:`ProductionWarning` in the run's output (a notebook cell's stderr), attributed to the first caller
    outside this module; not also logged, which would print it twice."""
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, ProductionWarning, stacklevel=level)


# ----------------------------------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------------------------------
def check_production_params(pc) -> None:
    """Refuse counts below 1 (:data:`COUNT_KEYS`) before any work or cluster starts.

    Raises
    ------
    glass_sm.config.ConfigError
        Naming the key, e.g. ``production.n_workers must be >= 1, got 0`` (a cluster without workers would
        wait forever).
    """
    for key in COUNT_KEYS:
        value = getattr(pc, key)
        if key == "torch_threads" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise _config.ConfigError(f"production.{key} must be >= 1, got {value!r}")


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
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 64 << 20)
        libc.mallopt(m_trim_threshold, 128 << 20)
    except (OSError, AttributeError):  # not glibc: nothing to undo
        pass


def load_model(checkpoint):
    """The production model: a ``LoadedModel`` as given, or loaded once per process from ``(path, sha256)``.

    Dask workers call it in every task (the model is cached per process); ``tools/bench.py`` calls it to load
    the model in the workers before its clock starts.

    Raises
    ------
    RuntimeError
        The file at ``path`` no longer has ``sha256`` (the checkpoint changed during production).
    """
    if not isinstance(checkpoint, tuple):
        return checkpoint
    path, sha = checkpoint
    key = (str(path), sha)
    if key not in _MODEL_CACHE:
        lm = load_checkpoint(path)
        if lm.sha256 != sha:
            raise RuntimeError(f"checkpoint {path} changed during production (sha256 {lm.sha256[:12]} != "
                               f"{sha[:12]}); restart the run")
        _MODEL_CACHE.clear()
        _MODEL_CACHE[key] = lm
    return _MODEL_CACHE[key]


_ENGINES: dict = {}


def inference_engine(model, precision: str = "fp32"):
    """The :class:`glass_sm.models.inference.WindowEngine` of ``model`` (built once per model and precision in a
    process), or None when the engine does not support the model (it is then predicted with its forward)."""
    if not supports_engine(model):
        return None
    key = (id(model), precision)
    hit = _ENGINES.get(key)
    if hit is None or hit[0] is not model:
        if len(_ENGINES) > 4:
            _ENGINES.clear()
        hit = _ENGINES[key] = (model, WindowEngine(model, precision))
    return hit[1]


@contextlib.contextmanager
def without_onednn():
    """oneDNN off for the block (``torch.backends.mkldnn.flags`` would also touch TF32 and warn). A process-wide
    switch: used only by the bf16 reference path on CPUs whose oneDNN has no bf16 LSTM."""
    was = torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(False)
    try:
        yield
    finally:
        torch._C._set_mkldnn_enabled(was)


def predict_tile(model, x: np.ndarray, n_out: int, batch_size: int = 8192, model_batch: int = 1024,
                 precision: str = "fp32", method: str = "engine", device: str = "cpu") -> np.ndarray:
    """Predict every window of a normalised ``(T, P, F)`` array: ``(n_out, P)`` float32, m3 m-3.

    Output day ``k`` reads input days ``k .. k + L - 1`` (``T = n_out + L - 1``).

    Parameters
    ----------
    model : torch.nn.Module
        The production model (eval mode).
    x : numpy.ndarray
        ``(T, P, F)`` float32 normalised inputs, finite.
    n_out : int
        Output days.
    batch_size, model_batch : int
        Windows per block of pixels and per model call.
    precision : {'fp32', 'bf16'}
        Arithmetic (:mod:`glass_sm.models.inference`); ``method='module'`` runs bf16 under ``torch.autocast``.
    method : {'engine', 'module'}
        ``'engine'``: :class:`~glass_sm.models.inference.WindowEngine` (the first layer's input projection once
        per pixel-day, time-major day blocks), falling back to ``'module'`` for a model it does not support;
        ``'module'``: the reference, the module's forward on windows gathered as a strided view of a
        pixel-major copy of ``x`` (a contiguous ``(windows, L, F)`` block per batch of pixels).
    device : {'cpu', 'cuda'}
        Where the model runs (``production.device`` resolved by :func:`glass_sm.training.resolve_device`).
        ``'cuda'``: the module path on a copy of the model on the GPU (made once per process), each block of
        windows copied to the GPU and its predictions back; the engine is CPU-only.
    """
    if method not in ("engine", "module"):
        raise ValueError(f"predict_tile: method must be 'engine' or 'module', got {method!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"production.precision must be one of {PRECISIONS}, got {precision!r}")
    if device != "cpu":
        model, method = model_on(model, device), "module"
    engine = inference_engine(model, precision) if method == "engine" else None
    if engine is not None:
        return engine.predict(x, n_out, batch_size, model_batch)
    T, P, F = x.shape
    L = T - n_out + 1
    out = np.empty((P, n_out), np.float32)
    if P == 0 or n_out == 0:
        return out.T
    xp = np.ascontiguousarray(x.transpose(1, 0, 2))  # (P, T, F): each pixel's days contiguous
    view = np.lib.stride_tricks.sliding_window_view(xp, L, axis=1).transpose(0, 1, 3, 2)  # (P, n_out, L, F)
    px_per_batch = max(1, batch_size // n_out)
    cast, lstm_flags = contextlib.nullcontext(), contextlib.nullcontext()
    if precision == "bf16":
        cast = torch.autocast(device, dtype=torch.bfloat16)
        if device == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():  # no oneDNN bf16 LSTM: ATen's
            lstm_flags = without_onednn()
    with torch.inference_mode(), cast, lstm_flags:
        for p0 in range(0, P, px_per_batch):
            p1 = min(P, p0 + px_per_batch)
            xb = np.ascontiguousarray(view[p0:p1]).reshape(-1, L, F)
            yb = out[p0:p1].reshape(-1)
            tb = torch.from_numpy(xb).to(device)
            for s in range(0, len(xb), model_batch):
                yb[s:s + model_batch] = model(tb[s:s + model_batch]).float().cpu().numpy()
    return out.T


def produce_tile(source: TileSource, checkpoint, tile: Tile, year: int, work_dir: str | os.PathLike,
                 batch_size: int = 8192, model_batch: int = 1024, torch_threads: int | None = None,
                 precision: str = "fp32", device: str = "cpu") -> dict:
    """Compute one tile x year and write ``<work_dir>/<tile>.npz`` (``sm`` float32 and ``sm_flag`` uint8,
    ``(days, tile rows, tile cols)``, NaN / 255 off land), atomically under a per-process temporary name.
    Returns timing and size statistics.

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
    precision : {'fp32', 'bf16'}
        Arithmetic of inference (``production.precision``, :func:`predict_tile`).
    device : {'cpu', 'cuda'}
        Where the model runs (``production.device``, resolved; :func:`predict_tile`).
    """
    t_start = _time.perf_counter()
    _tune_malloc()
    if torch_threads:  # in every task: OpenMP thread counts are per calling thread (Dask worker threads)
        torch.set_num_threads(torch_threads)
    lm = load_model(checkpoint)
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

    pred = predict_tile(lm.model, x, n_out, batch_size, model_batch, precision, device=device)  # (n_out, P)
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
    _write_scratch(Path(work_dir) / f"{tile.name}.npz", sm, fl)
    t_end = _time.perf_counter()
    return {"tile": tile.name, "year": year, "pixels": int(len(rows)), "pixel_days": int(len(rows) * n_out),
            "read_s": t_read - t_start, "infer_s": t_infer - t_read, "total_s": t_end - t_start,
            "input_bytes": int(x.nbytes)}


# ----------------------------------------------------------------------------------------------------------
# Scratch tiles
# ----------------------------------------------------------------------------------------------------------
SCRATCH_VARS = (("sm", np.dtype(np.float32)), ("sm_flag", np.dtype(np.uint8)))


def _write_scratch(path: Path, sm: np.ndarray, fl: np.ndarray) -> None:
    """Write a scratch tile under a temporary name unique to this process and thread, then rename it: two writers
    (a retried Dask task, a second production) never share a temporary file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.partial")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, sm=sm, sm_flag=fl)  # through a handle: np.savez would append .npz to the name
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _scratch_problem(path: Path, shape: tuple) -> str | None:
    """What is wrong with a scratch tile, from its zip directory and array headers only (values not read); None
    when it is complete with ``sm`` float32 and ``sm_flag`` uint8 of ``shape``. A damaged value is caught when
    the tile is read for assembly (zip checksum)."""
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as zf:
            names = sorted(zf.namelist())
            if names != sorted(f"{v}.npy" for v, _ in SCRATCH_VARS):
                return f"holds {names}, not sm and sm_flag"
            for var, dtype in SCRATCH_VARS:
                info = zf.getinfo(f"{var}.npy")
                if info.header_offset + info.compress_size > size:
                    return f"truncated: {size} bytes"
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                                   (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if read_header is None:
                        return f"{var}: unknown .npy version {version}"
                    got_shape, _, got_dtype = read_header(fh)
                    header_bytes = fh.tell()
                if tuple(got_shape) != tuple(shape) or got_dtype != dtype:
                    return f"{var} is {got_dtype} {tuple(got_shape)}, expected {dtype} {tuple(shape)}"
                if info.file_size != header_bytes + int(np.prod(shape)) * dtype.itemsize:
                    return f"{var} holds {info.file_size} bytes, expected {header_bytes + np.prod(shape) * dtype.itemsize}"
    except Exception as e:  # noqa: BLE001 (any failure to read our own scratch means: damaged)
        return f"{type(e).__name__}: {e}"
    return None


def _load_scratch(path: Path, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """``(sm, sm_flag)`` of a scratch tile; :class:`_DamagedScratch` (with the reason) when it does not load."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = [z[var] for var, _ in SCRATCH_VARS]
    except Exception as e:  # noqa: BLE001
        raise _DamagedScratch(f"{type(e).__name__}: {e}") from e
    for (var, dtype), a in zip(SCRATCH_VARS, arrays):
        if a.shape != tuple(shape) or a.dtype != dtype:
            raise _DamagedScratch(f"{var} is {a.dtype} {a.shape}, expected {dtype} {tuple(shape)}")
    return arrays[0], arrays[1]


class _DamagedScratch(Exception):
    """A scratch tile that does not load (the message says why)."""


def _prepare_scratch(work_dir: Path, manifest: dict) -> None:
    """Create the year's scratch folder; discard it, with a warning, when its manifest differs (scratch made with
    another checkpoint, cube, production parameters or grid)."""
    mpath = work_dir / "MANIFEST.json"
    if work_dir.exists():
        try:
            old = json.loads(mpath.read_text())
        except (OSError, ValueError):
            old = None
        if old != manifest:
            what = ("no readable MANIFEST.json" if not isinstance(old, dict) else "another " + ", ".join(
                sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))))
            _warn(f"discarding scratch {work_dir}: it was made with {what}")
            shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    for stale in work_dir.glob(".*.partial"):  # temporary tiles of a killed run (the lock excludes live writers)
        stale.unlink(missing_ok=True)
    if not mpath.exists():
        with atomic_write(mpath) as tmp:
            tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))


# ----------------------------------------------------------------------------------------------------------
# The driver
# ----------------------------------------------------------------------------------------------------------
def production_lock(folder: str | os.PathLike):
    """Hold ``<folder>/.production.lock`` for the duration of a ``with`` block (:func:`glass_sm.lock.hold_lock`).

    A lock whose process is gone is taken over with a :class:`ProductionWarning` (its finished tiles are resumed).

    Raises
    ------
    ProductionLockedError
        Another production holds the results folder, naming the holder and the lock file.
    """
    return hold_lock(Path(folder) / LOCK_NAME, "production", ProductionLockedError, _warn)


# ----------------------------------------------------------------------------------------------------------
NOT_PRODUCED = "not produced yet"


@dataclass
class _YearState:
    year: int
    work_dir: Path
    todo: int
    bar: object
    t0: float
    reason: str = NOT_PRODUCED
    pixel_days: int = 0
    compute_s: float = 0.0
    resumed: int = 0
    tiles_done: int = 0


def _why_produce(folder: Path, year: int, stamp: dict, overwrite: bool) -> str | None:
    """Why ``year`` must be produced now, or None when its files are finished and made with ``stamp``."""
    if overwrite:
        return "production.overwrite is true"
    daily, ann = product_path(folder, year), annual_path(folder, year)
    if not daily.exists():
        return NOT_PRODUCED
    if not ann.exists():
        return f"{ann.name} is missing"
    changes: list[str] = []
    for f in (daily, ann):
        try:
            recorded = read_stamp(f)
        except OSError as e:
            return f"{f.name} is unreadable ({e.__cause__ or e})"
        changes += [c for c in stamp_changes(recorded, stamp) if c not in changes]
    return "; ".join(changes) or None


def _remove_product_temporaries(folder: Path) -> None:
    """Temporary year files of a killed run (the lock excludes a live writer)."""
    for d in (folder, folder / "annual"):
        for tmp in d.glob(f".{PRODUCT_NAME}_*.partial"):
            tmp.unlink(missing_ok=True)


def _write_timing(paths: RunPaths, rows: list[dict]) -> None:
    """Add the years just produced to the ``production_timing`` table (replacing earlier rows of those years)."""
    if not rows:
        return
    new = pd.DataFrame(rows)
    if paths.table("production_timing").exists():
        old = read_table(paths, "production_timing")
        old = old[~old["year"].isin(new["year"])]
        new = pd.concat([old, new], ignore_index=True)
    write_table(paths, "production_timing", new.sort_values("year"))


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

    Warns
    -----
    ProductionWarning
        A finished year is re-produced because its checkpoint, cube or production parameters changed (or a file
        is unreadable); scratch of another run is discarded; a damaged scratch tile is recomputed; a stale lock
        is taken over. Each message names the file and the reason.

    Raises
    ------
    glass_sm.config.ConfigError
        A count of :data:`COUNT_KEYS` below 1 (before any work).
    ProductionLockedError
        Another production is writing this results folder.
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
    check_production_params(cfg.production)
    resolve_device(cfg.production.device, "production.device")  # 'cuda' without a GPU: refused before any work
    paths = RunPaths.from_config(cfg)
    paths.product.mkdir(parents=True, exist_ok=True)
    with production_lock(paths.product):
        return _produce(cfg, paths, checkpoint_path, years, progress, client, source)


def _produce(cfg, paths: RunPaths, checkpoint_path, years, progress, client, source) -> list[Path]:
    """:func:`run_production` once the lock is held."""
    pc = cfg.production
    checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else paths.checkpoint
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
    _remove_product_temporaries(folder)
    fingerprint = source.fingerprint() if callable(getattr(source, "fingerprint", None)) else ""
    stamp = production_stamp(cfg, lm.sha256, fingerprint)
    outputs = [product_path(folder, y) for y in years]
    reasons = {}
    for y in years:
        why = _why_produce(folder, y, stamp, pc.overwrite)
        if why is None:
            shutil.rmtree(paths.scratch / str(y), ignore_errors=True)  # leftovers of a kill after assembly
            continue
        reasons[y] = why
        if why != NOT_PRODUCED and not pc.overwrite:
            _warn(f"{product_path(folder, y).name}: re-producing {y} because {why}")
    todo_years = [y for y in years if y in reasons]
    if not todo_years:
        return outputs

    mask = source.land_mask()
    tiles = make_tiles(len(source.lat), len(source.lon), pc.tile_size)
    land_tiles = [t for t in tiles if mask[t.slices].any()]
    land_set = set(land_tiles)
    ce = chunk_edge(pc.tile_size)
    ckpt_ref = (str(checkpoint_path), lm.sha256)

    synchronous = client == "synchronous" or (client is None and pc.scheduler == "synchronous")
    device = resolve_device(pc.device, "production.device")
    own_cluster = contextlib.ExitStack()  # a cluster made here (glass_sm.cluster), closed at the end
    if not synchronous and client is None:
        client = own_cluster.enter_context(cluster_client(pc.scheduler_address, pc.n_workers,
                                                          pc.threads_per_worker, "distributed"))
    torch_threads = pc.torch_threads or 1  # per task; parallelism comes from Dask threads/workers
    args = dict(batch_size=pc.batch_size, model_batch=pc.model_batch, torch_threads=torch_threads,
                precision=pc.precision, device=device)

    def start_year(year: int) -> tuple[_YearState, list[Tile]]:
        a, b = year_days(source.time, year)
        times = source.time[a:b]
        work_dir = paths.scratch / str(year)
        manifest = {"format": SCRATCH_FORMAT, **stamp, "tile_size": pc.tile_size,
                    "lat": [float(source.lat[0]), float(source.lat[-1]), len(source.lat)],
                    "lon": [float(source.lon[0]), float(source.lon[-1]), len(source.lon)],
                    "days": [str(times[0].date()), str(times[-1].date())],
                    "cube_days": [str(source.time[0].date()), str(source.time[-1].date())]}
        _prepare_scratch(work_dir, manifest)
        todo = []
        for t in land_tiles:
            f = work_dir / f"{t.name}.npz"
            if f.exists():
                problem = _scratch_problem(f, (b - a, *t.shape))
                if problem is None:
                    continue
                _warn(f"discarding damaged scratch tile {f} ({problem}); it is recomputed")
                f.unlink(missing_ok=True)
            todo.append(t)
        resumed = len(land_tiles) - len(todo)
        reason = reasons[year]
        if resumed:
            reason = (f"resumed ({resumed} of {len(land_tiles)} tiles from an interrupted run)"
                      + ("" if reason == NOT_PRODUCED else f"; {reason}"))
        bar = tqdm(total=len(land_tiles), initial=resumed, desc=f"{PRODUCT_NAME} {year}",
                   unit="tile", disable=not progress, leave=True, mininterval=1.0)
        st = _YearState(year, work_dir, len(todo), bar, _time.perf_counter(), reason=reason, resumed=resumed)
        return st, todo

    def tile_done(st: _YearState, res: dict) -> None:
        st.pixel_days += res["pixel_days"]
        st.compute_s += res["total_s"]
        st.tiles_done += 1
        st.bar.update(1)
        rate = st.pixel_days / max(_time.perf_counter() - st.t0, 1e-9)
        st.bar.set_postfix_str(f"{rate:,.0f} pixel-days/s")

    timing_rows = []
    t_run = _time.perf_counter()

    def write_timing() -> None:
        run_wall = _time.perf_counter() - t_run  # years overlap in Dask: the run's rate is the honest one
        for r in timing_rows:
            r.update(run_wall_s=round(run_wall, 3),
                     run_pixel_days=sum(x["computed_pixel_days"] for x in timing_rows))
        _write_timing(paths, timing_rows)

    def finish_year(st: _YearState) -> None:
        a, b = year_days(source.time, st.year)
        times = source.time[a:b]
        t_asm = _time.perf_counter()
        attrs = global_attrs(cfg, lm, source, times, cube_fingerprint=fingerprint)
        chunks = (min(32, len(times)), min(ce, len(source.lat)), min(ce, len(source.lon)))

        def read_tile(tile: Tile) -> tuple[np.ndarray, np.ndarray]:
            path, shape = st.work_dir / f"{tile.name}.npz", (len(times), *tile.shape)
            try:
                return _load_scratch(path, shape)
            except _DamagedScratch as e:
                _warn(f"discarding damaged scratch tile {path} ({e}); it is recomputed")
                path.unlink(missing_ok=True)
            res = produce_tile(source, lm, tile, st.year, st.work_dir, **args)
            st.pixel_days += res["pixel_days"]
            st.compute_s += res["total_s"]
            return _load_scratch(path, shape)

        out, ann = assemble_year(st.year, tiles, land_set, read_tile, folder, source.lat, source.lon, times,
                                 pc.encoding, chunks, attrs)
        shutil.rmtree(st.work_dir, ignore_errors=True)
        now = _time.perf_counter()
        st.bar.close()
        land_px = int(mask.sum())
        timing_rows.append({
            "year": st.year, "reason": st.reason, "land_pixels": land_px, "days": len(times),
            "pixel_days": land_px * len(times), "tiles": len(land_tiles), "tiles_resumed": st.resumed,
            "computed_pixel_days": st.pixel_days, "wall_s": round(now - st.t0, 3),
            "task_s": round(st.compute_s, 3), "assemble_s": round(now - t_asm, 3),
            "pixel_days_per_s": round(st.pixel_days / max(now - st.t0, 1e-9), 1),
            "bytes_daily": out.stat().st_size, "bytes_annual": ann.stat().st_size,
            "scheduler": "synchronous" if synchronous else "distributed", "torch_threads": torch_threads,
            "cores": os.cpu_count(), "device": device,
        })
        write_timing()  # now: a kill later in the run keeps this year's row

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
        write_timing()
        own_cluster.close()
    return outputs


def _run_distributed(client, source, ckpt_ref, years, start_year, tile_done, finish_year, args,
                     years_in_flight: int = 2) -> None:
    """Submit the tiles of at most ``years_in_flight`` years; assemble a year as soon as its tiles are done."""
    if not client.scheduler_info().get("workers"):
        _warn("the Dask cluster has no worker yet: the tiles wait until one joins")
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
