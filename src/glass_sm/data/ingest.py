"""Day-major ingest: each source file read once over the whole domain, in parallel, then rechunked to columns.

The tile-by-tile path (:func:`glass_sm.data.cube.assemble_tile`) reads every daily file once per (lat, lon) build
tile: for the real global grid (~2,000 tiles, ~29,000 GLASS files plus ERA5-Land) that is ~10^8 file opens, and a
compressed HDF4 field is decompressed whole for each hyperslab. This module is the standard Pangeo alternative:

Phase 1, :func:`ingest`
    The period is cut into time blocks of :func:`block_days` days (``cube.ingest_block_days``, or with 0, the
    default, the fewest blocks whose tasks fit ``cube.ingest_task_mb``, of at most a year, with at least 4 tasks per
    worker thread: 8 days at the paper's global 0.05 deg grid, 184 for one year of the 5 deg demo on 2 workers).
    **One Dask task per (source, block)** reads that source's files of the block over the **whole run domain**
    through the same readers as the tile path (:func:`~glass_sm.io.glass_avhrr.read_glass_lst`,
    :func:`~glass_sm.io.glass_avhrr.read_glass_albedo`, :func:`~glass_sm.io.era5land.read_era5land_swvl1` +
    :func:`~glass_sm.io.era5land.to_product_grid`, :func:`~glass_sm.io.glass_modis.read_glass_modis_sm`) and writes
    its days into an intermediate zarr store (``data/ingest.zarr``, :attr:`glass_sm.paths.RunPaths.ingest`). One
    source per task (rather than all sources of a block) keeps a task's memory to one source's block and gives the
    cluster four times as many tasks to balance. The daily arrays (``lst``, ``sm_era5land``, ``sm_label``) are
    chunked ``(ingest_block_days, build_tile, build_tile)``; the albedo composites (``albedo_bsa``, ``albedo_wsa``,
    one step per expected composite date of :func:`~glass_sm.io.glass_avhrr.albedo_composites_needed`, NaN where a
    file is missing) are chunked by ``max(1, round(ingest_block_days / cadence))`` composites. A task writes whole
    chunks and no two tasks write the same chunk, so worker processes write without locks.

    *Each GLASS HDF file is read once* (the composite or day it holds belongs to exactly one block); *each ERA5-Land
    byte is read once*: a yearly or monthly file is read by every block it overlaps, each block its own time steps
    (the reader's time window; a worker keeps the file open for its next block:
    :func:`glass_sm.io.era5land._open_kept`). The driver lists each source's files once (names, sizes, ERA5-Land
    time coordinates: :func:`plan_sources`), the names with the coverage table (stage 01 hands the same
    :class:`~glass_sm.data.coverage.SourceListing` to both: each folder is walked once per run), and hands each
    task its files, so no task searches a folder. On a cluster, a fresh store's
    tasks are sent source by source as soon as that source is listed (:data:`SUBMIT_ORDER`), so the workers read
    while the driver lists the remaining folders; when resuming (or in one process) everything is listed first.

    Empty blocks: a block without any file, or whose files hold no valid value (the readers'
    :class:`~glass_sm.io.errors.EmptyDataError`), is stored as NaN and counted (``n_blocks_empty``): the tile path
    reads the whole period at once, so such days are NaN there too. A tile whose whole period is empty in a source
    still raises :class:`~glass_sm.io.errors.EmptyDataError` in phase 2, as the tile path's reader would.

    Resumable: after a task has written its arrays it writes the marker ``<store>/_done/<source>-<k>.json``
    (atomically: temporary file, then rename) with its file count and bytes; a rerun skips every block with a
    marker. The store's attribute ``manifest`` records what the blocks were read from (period, domain, block days,
    reader parameters, and the path, size and modification time of every input file); a store whose manifest
    differs from the run's is rebuilt from scratch (with a warning), as is any store when ``overwrite=True``. A
    fresh store on a cluster gets its manifest once every source is listed (a fraction of a second on the twin, the
    listing of the folders on the real archive): a store killed before that has none and is rebuilt.

Phase 2, :func:`glass_sm.data.rechunk.cube_from_ingest`
    Each build tile's column is read back from the store and harmonized by the tile path's own function
    (:mod:`glass_sm.data.rechunk`).

Memory
    Phase 1, per task: ``block days x domain cells x 4 B x arrays held`` (:func:`block_memory_bytes`; LST and labels
    3 arrays, albedo 2 variables x 3 per composite, ERA5-Land 6 on the product grid for the bilinear regrid's
    float64 accumulators plus its native sub-daily steps), independent of the period's length. Phase 2, per task:
    one tile column over the period, the tile path's bound (:func:`glass_sm.data.cube.assemble_tile`, ~10
    float32 arrays). Per worker: these times ``threads_per_worker``.

Cluster
    ``cube.scheduler_address`` / ``cube.n_workers`` / ``cube.threads_per_worker`` / ``cube.scheduler``
    (:func:`glass_sm.cluster.cluster_client`), or a ``client`` argument (a :class:`distributed.Client`, or
    ``'synchronous'``). Workers must see the data folders and the results folder.

Known difference from the tile path: the GLASS-MODIS reader's ``min_valid_fraction`` counts a cell's source pixels
over the grids (MODIS tiles) seen in the period it reads; when one MODIS tile is absent for a whole block but
present elsewhere in the period, a cell on it can get a label in that block that the tile path (which counts that
tile's pixels as missing) sets to NaN. On the twin and on a complete archive the two are identical (tested).
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import hashlib
import json
import os
import resource
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import zarr
import zarr.api.asynchronous
import zarr.core.sync
from tqdm import tqdm

from glass_sm.cluster import run_tasks, section_client
from glass_sm.data.coverage import SourceListing, check_coverage, era5land_file_times
from glass_sm.grid import Domain
from glass_sm.io import era5land, glass_avhrr, glass_modis
from glass_sm.io.errors import DataWarning, EmptyDataError, TimeGapError
from glass_sm.paths import RunPaths

__all__ = ["IngestReport", "IngestBlock", "ingest", "plan_ingest", "plan_sources", "manifest_of", "n_blocks",
           "block_memory_bytes",
           "block_days", "BLOCK_DAYS_RANGE",
           "STORE_FORMAT", "DAILY_VARS", "ALBEDO_VARS"]

STORE_FORMAT = 2  #: layout version of the intermediate store (a store of another version is rebuilt)
DAILY_VARS = {"lst": "lst", "era5land": "sm_era5land", "label": "sm_label"}  #: source -> daily array
ALBEDO_VARS = ("albedo_bsa", "albedo_wsa")  #: composite arrays (shortwave black-sky, white-sky)
SOURCES = ("albedo", "lst", "era5land", "label")
#: Task submission order (:func:`plan_sources`' order): ERA5-Land first, as its plan needs no folder listing (the
#: files' time axes are read once per process, by the coverage table: the workers start reading while the driver
#: lists the other folders), then the costliest (the labels, a file per day aggregated pixel by pixel), and the
#: cheapest last, so that the last tasks left to a busy cluster are short.
SUBMIT_ORDER = ("era5land", "label", "lst", "albedo")
_ARRAYS_HELD = {"albedo": 6, "lst": 3, "era5land": 6, "label": 3}  # float32 arrays of a block held by a task
#: The intermediate store's codec: zstd at level 1 (zarr's default is level 3). The store is scratch, written once
#: and read once by phase 2, so its writes are on the ingest's critical path: on the 5 deg demo's blocks level 1
#: wrote in 8.6 ms what level 3 wrote in 12.1 ms, for 488 kB instead of 480 kB (2026-12-01, Intel Xeon, one block
#: of each daily array); no compression wrote it in 3.4 ms but for 1,532 kB, which the paper's grid (TB of blocks)
#: cannot afford. Lossless either way: the cube is the same.
STORE_COMPRESSORS = (zarr.codecs.ZstdCodec(level=1),)


@dataclass(frozen=True)
class IngestBlock:
    """One task of phase 1: a source's time steps ``i0:i1`` (days, or composites for albedo).

    ``root``: the deepest folder holding every candidate file of the block (named in the readers' messages; None:
    no file, the block is NaN without reading). ``files``: the files the block reads (ERA5-Land: every file
    overlapping it), handed to the reader with their ``dates`` so that no task searches a folder. ``n_files`` and ``n_bytes``: the files counted for this block (each file counted in one block
    only; ERA5-Land bytes shared between the blocks a file overlaps, by time steps).
    """

    source: str
    k: int
    i0: int
    i1: int
    first: str
    last: str
    root: str | None
    files: tuple[str, ...] = ()
    n_files: int = 0
    n_bytes: float = 0.0
    read: bool = True  # False: outside the label record (labels NaN by definition, nothing to read)
    dates: tuple[str, ...] = ()  # GLASS and labels: the date of each of ``files`` (handed to the reader)

    @property
    def name(self) -> str:
        return f"{self.source}-{self.k:05d}"


@dataclass
class IngestReport:
    """What :func:`ingest` did.

    Attributes
    ----------
    store : Path
        The intermediate store.
    n_files : int
        Distinct source files read (GLASS albedo and LST HDF, ERA5-Land, GLASS-MODIS), each once; includes the
        blocks skipped on a resumed run (their markers' counts), so a resumed ingest reports the same total.
    n_bytes : int
        Their sizes on disk, bytes.
    seconds : float
        Wall time of this call, s.
    n_blocks, n_blocks_skipped, n_blocks_empty : int
        Tasks (source x block); those skipped because a marker said they were done; those stored as NaN (no
        file or no valid value).
    n_files_read, n_bytes_read : int, float
        Files and bytes read by *this* call (excluding skipped blocks): the throughput's numerator.
    peak_rss_bytes : int or None
        Highest peak resident memory of a process that ran a task (``getrusage`` high-water mark of the worker
        process, or of this process when synchronous), bytes.
    block_memory_bytes : int
        The stated bound of one task's arrays (:func:`block_memory_bytes`).
    n_workers : int
        Worker processes that ran tasks (1 when synchronous).
    """

    store: Path
    n_files: int = 0
    n_bytes: int = 0
    seconds: float = 0.0
    n_blocks: int = 0
    n_blocks_skipped: int = 0
    n_blocks_empty: int = 0
    n_files_read: int = 0
    n_bytes_read: float = 0.0
    peak_rss_bytes: int | None = None
    block_memory_bytes: int = 0
    n_workers: int = 1
    warnings: list[str] = field(default_factory=list)

    @property
    def files_per_s(self) -> float:
        """Files read by this call per second of wall time."""
        return self.n_files_read / max(self.seconds, 1e-9)

    @property
    def bytes_per_s(self) -> float:
        """Bytes (on disk) read by this call per second of wall time."""
        return self.n_bytes_read / max(self.seconds, 1e-9)


# ----------------------------------------------------------------------------------------------------------
# planning (driver): list the files once, cut the period into blocks
# ----------------------------------------------------------------------------------------------------------
def _days(cfg) -> pd.DatetimeIndex:
    return pd.date_range(cfg.period.start, cfg.period.end, freq="D")


def _composites(cfg) -> pd.DatetimeIndex:
    return glass_avhrr.albedo_composites_needed(cfg.period.start, cfg.period.end, cfg.data.albedo_cadence_days,
                                                cfg.data.albedo_sample_offset_days)


def _composite_chunk(cfg) -> int:
    cadence = glass_avhrr.CADENCE_DAYS["albedo"] if cfg.data.albedo_cadence_days is None \
        else int(cfg.data.albedo_cadence_days)
    return max(1, round(block_days(cfg) / cadence))


def _folder_of(paths) -> str | None:
    """The deepest folder holding every path (None for no path)."""
    parents = sorted({os.path.dirname(p) for p in paths})
    return os.path.commonpath(parents) if parents else None


def _era5_files(listing: SourceListing) -> list[tuple[str, np.ndarray]]:
    """ERA5-Land files and the UTC days of their time steps (time coordinates only; one open per file)."""
    return [(str(path), era5land_file_times(path)) for path in listing.era5land_files()]


def _size(path, stats: dict | None = None) -> int:
    """The file's size (0 when it cannot be read); ``stats`` collects ``(size, mtime_ns)`` by path, for the
    manifest (:func:`manifest_of`): one ``stat`` per input file, which counts on a parallel file system."""
    try:
        st = os.stat(path)
    except OSError:
        return 0
    if stats is not None:
        stats[str(path)] = (st.st_size, st.st_mtime_ns)
    return st.st_size


def plan_ingest(cfg, listing: SourceListing | None = None) -> tuple[list[IngestBlock], dict]:
    """The blocks of phase 1 and the store's manifest; lists the files once (names, sizes, ERA5-Land times), or
    takes their names from ``listing`` (:func:`plan_sources`).

    Returns
    -------
    blocks : list of IngestBlock
        ERA5-Land, label, LST (day blocks) and albedo (composite blocks) tasks, in this order
        (:data:`SUBMIT_ORDER`, :func:`plan_sources`).
    manifest : dict
        What the store is built from (compared on a rerun): format, period, domain, block sizes, reader
        parameters and a SHA-256 of the input files' paths, sizes and modification times (:func:`manifest_of`).
    """
    blocks: list[IngestBlock] = []
    stats: dict = {}
    for source_blocks in plan_sources(cfg, stats, listing):
        blocks += source_blocks
    return blocks, manifest_of(cfg, blocks, stats)


def n_blocks(cfg) -> int:
    """How many blocks :func:`plan_ingest` cuts the period into (from the configuration alone: no listing)."""
    days, comps = len(_days(cfg)), len(_composites(cfg))
    B, Bc = block_days(cfg), _composite_chunk(cfg)
    return 3 * -(-days // B) + -(-comps // Bc)


def plan_sources(cfg, stats: dict | None = None, listing: SourceListing | None = None):
    """The blocks of phase 1, one source at a time in :data:`SUBMIT_ORDER` (a generator: a source's blocks can be
    sent to the cluster while the next source's files are listed, :func:`ingest`). ``stats``: filled with every
    file's ``(size, mtime_ns)``, for :func:`manifest_of`.

    Each source's folder is listed once (the AVHRR tree once for LST and albedo: :func:`glass_avhrr.list_tree`),
    or not at all when ``listing`` (the run's :class:`~glass_sm.data.coverage.SourceListing`, as stage 01 hands
    over from its coverage table) already holds it; the block of every file is found from the listing, so that
    no task searches a folder. Every file's size and modification time are read here either way.
    """
    listing = SourceListing(cfg) if listing is None else listing.check(cfg)
    d, B = cfg.data, block_days(cfg)
    days, comps = _days(cfg), _composites(cfg)
    Bc = _composite_chunk(cfg)
    starts = range(0, len(days), B)

    def block(source, k, i0, i1, axis, sel, **kw) -> IngestBlock:
        return IngestBlock(source, k, i0, i1, str(axis[i0].date()), str(axis[i1 - 1].date()), _folder_of(sel),
                           tuple(sel), **kw)

    # ERA5-Land: files overlapping each block; a file's bytes shared by its steps' blocks
    step_day = {p: t.astype("datetime64[D]") for p, t in _era5_files(listing)}
    size = {p: _size(p, stats) for p in step_day}
    t_days = days.values.astype("datetime64[D]")
    counted: set[str] = set()
    out = []
    for k, i0 in enumerate(starts):
        i1 = min(i0 + B, len(days))
        lo, hi = t_days[i0], t_days[i1 - 1]
        files, n_new, nbytes = [], 0, 0.0
        for p, td in step_day.items():
            inside = (td >= lo) & (td <= hi)
            if inside.any():
                files.append(p)
                nbytes += size[p] * inside.sum() / max(td.size, 1)
                if p not in counted:
                    counted.add(p)
                    n_new += 1
        out.append(block("era5land", k, i0, i1, days, files, n_files=n_new, n_bytes=nbytes))
    yield out
    # labels: the part of each block inside the label record
    lab0, lab1 = pd.Timestamp(cfg.period.label_start), pd.Timestamp(cfg.period.label_end)
    kept = listing.labels()  # the days of max(start, lab0)..min(end, lab1)
    label_days = sorted(kept)  # each block takes its days by bisection (not a scan of the record per block: 1,826
    out = []                   # 8-day blocks x 7,617 label days at the paper's scale)
    for k, i0 in enumerate(starts):
        i1 = min(i0 + B, len(days))
        a, b = max(days[i0], lab0), min(days[i1 - 1], lab1)
        part = [(str(day), str(p)) for day in label_days[bisect.bisect_left(label_days, a.date()):
                                                         bisect.bisect_right(label_days, b.date())]
                for p in kept[day]] if a <= b else []
        sel = [p for _, p in part]
        out.append(block("label", k, i0, i1, days, sel, n_files=len(sel),
                         n_bytes=float(sum(_size(p, stats) for p in sel)), read=a <= b,
                         dates=tuple(t for t, _ in part)))
    yield out
    # LST and albedo: one walk of the AVHRR tree for both (LST's search is the coverage table's own)
    for source, dates, step in (("lst", days, B), ("albedo", comps, Bc)):
        chosen = listing.glass_files(source, dates[0], dates[-1],
                                     d.albedo_cadence_days if source == "albedo" else 1)
        out = []
        for k, i0 in enumerate(range(0, len(dates), step)):
            i1 = min(i0 + step, len(dates))
            part = [(str(t.date()), p) for t, p in chosen.iloc[i0:i1].items() if p is not None]
            sel = [p for _, p in part]
            out.append(block(source, k, i0, i1, dates, sel, n_files=len(sel),
                             n_bytes=float(sum(_size(p, stats) for p in sel)), dates=tuple(t for t, _ in part)))
        yield out


def manifest_of(cfg, blocks: list[IngestBlock], stats: dict | None = None) -> dict:
    """The store's manifest for ``blocks`` (every block of :func:`plan_sources`): format, period, domain, block
    sizes, reader parameters, the number of label files and a SHA-256 of the input files' paths, sizes and
    modification times (``stats``: those :func:`plan_sources` read, by path; any other file is read here)."""
    days, comps = _days(cfg), _composites(cfg)
    stats = {} if stats is None else stats
    h = hashlib.sha256()
    for p in sorted({f for b in blocks for f in b.files}):
        if p not in stats:
            st = os.stat(p)
            stats[p] = (st.st_size, st.st_mtime_ns)
        size, mtime_ns = stats[p]
        h.update(f"{p}\t{size}\t{mtime_ns}\n".encode())
    domain = Domain.from_config(cfg)
    return {
        "format": STORE_FORMAT, "start": str(days[0].date()), "end": str(days[-1].date()),
        "domain": [domain.row0, domain.col0, domain.nrows, domain.ncols, domain.res],
        "block_days": block_days(cfg), "composite_chunk": _composite_chunk(cfg), "build_tile": int(cfg.cube.build_tile),
        "composites": [str(comps[0].date()), str(comps[-1].date()), len(comps)],
        "params": _reader_params(cfg), "inputs_sha256": h.hexdigest(),
        "n_label_files": int(sum(b.n_files for b in blocks if b.source == "label")),
    }


def _reader_params(cfg) -> dict:
    """Everything the block tasks need from the configuration (plain values: sent to the workers)."""
    d = cfg.data
    return {
        "avhrr_dir": str(d.avhrr_dir), "era5land_dir": str(d.era5land_dir), "glass_modis_dir": str(d.glass_modis_dir),
        "albedo_qc": d.albedo_qc, "albedo_qc_layer": d.albedo_qc_layer, "albedo_cadence_days": d.albedo_cadence_days,
        "lst_qc": d.lst_qc, "lst_qc_layer": d.lst_qc_layer,
        "era5_allow_gaps": "era5land" in cfg.cube.allow_missing_inputs,
        "modis_pattern": d.glass_modis_pattern, "modis_scale": d.glass_modis_scale,
        "label_start": str(cfg.period.label_start), "label_end": str(cfg.period.label_end),
    }


BLOCK_DAYS_RANGE = (8, 368)
"""Auto block length, days: from one albedo cadence (8) to 368 (46 composites, a year): a block of at most a year
keeps the progress bar moving and bounds what a killed ingest reads again (the blocks in flight)."""

TASKS_PER_THREAD = 4
"""Auto block length: the fewest tasks (sources x blocks) per worker thread of ``cube`` (``n_workers`` x
``threads_per_worker``) that the period is cut into, so that the cluster can balance tasks of unequal cost (a
label block costs ~4x an LST block on the twin); the raw-read row (f) of ``make bench`` batches its files the same
way."""


def block_days(cfg) -> int:
    """Days per phase-1 block: ``cube.ingest_block_days``, or when it is 0 (auto) the fewest blocks that

    * keep every task's stated memory (:func:`block_memory_bytes`) within ``cube.ingest_task_mb``,
    * keep a block within the upper limit of :data:`BLOCK_DAYS_RANGE` (a year), and
    * give at least :data:`TASKS_PER_THREAD` tasks (4 sources x blocks) per worker thread of ``cube``
      (``n_workers`` x ``threads_per_worker``; with ``scheduler_address``, state the cluster's size there),

    the period cut into that many blocks of equal length, rounded up to a multiple of 8 days (the albedo cadence,
    so a block holds whole composites; shortened by 8 days at a time where the rounding left fewer blocks), at
    least 8.

    Why: every task pays a fixed cost (the scheduler's round trip, setting up its readers, opening a kept
    ERA5-Land file's variable, laying out and writing its chunks), and on the distributed engine that cost still
    counts above 64 days a block. Measured on the 2-core development machine (Intel Xeon, 2026-12-01, the 5 deg
    demo's year 2020 on 2 workers x 1 thread, alternating ingests in one cluster, 12 of each, in two sets): 32-day
    blocks took 1.50 s (median), 64-day 1.17-1.20 s, 96-day 1.03 s, 128-day 1.06-1.16 s, 184-day 1.05 s. (64 days
    was the upper limit before, chosen from an in-process measurement, which has no scheduler round trip.) At the
    paper's 0.05 deg global grid one day of one source is already ~0.1 GB per array and the memory budget gives the
    8-day minimum (~6.5 GB for ERA5-Land; lower ``cube.ingest_block_days`` explicitly on small workers). On the
    5 deg demo a year on 2 worker threads gives 184-day blocks (9 tasks: 2 blocks of each daily source, 3 of 23
    albedo composites), the 40-year run 368-day blocks.
    """
    if int(cfg.cube.ingest_block_days) > 0:
        return int(cfg.cube.ingest_block_days)
    lo, hi = BLOCK_DAYS_RANGE
    budget = float(cfg.cube.ingest_task_mb) * 1e6
    cells = Domain.from_config(cfg).size  # once: the loop below tries up to 45 lengths
    B_max = lo  # the longest block the memory budget and the range allow
    while B_max + 8 <= hi and _block_bytes(cfg, B_max + 8, cells=cells) <= budget:
        B_max += 8
    days = len(_days(cfg))
    threads = int(cfg.cube.n_workers) * int(cfg.cube.threads_per_worker)
    n = max(-(-days // B_max), -(-TASKS_PER_THREAD * threads // len(SOURCES)), 1)  # blocks
    B = 8 * -(-days // (8 * n))  # equal blocks, a multiple of 8 days
    while B > lo and -(-days // B) < n:  # the rounding up to 8 days left fewer than n blocks
        B -= 8
    return int(min(max(B, lo), B_max))


def block_memory_bytes(cfg, source: str | None = None) -> int:
    """Stated bound of the arrays one phase-1 task holds, bytes: block steps x domain cells x 4 B x arrays held.

    Arrays held (:data:`_ARRAYS_HELD`): LST and labels 3 (output, the reader's slice and mask); albedo 2 variables
    x 3 per composite; ERA5-Land 6 on the product grid (output and the bilinear regrid's two float64
    accumulators), plus its native sub-daily steps, counted as 4 steps a day (6-hourly) on the product grid's cells
    (ERA5-Land's 0.1 deg grid has a quarter of the cells of 0.05 deg; at coarser product grids this term is a
    lower bound). ``source=None``: the largest over the sources.
    """
    return _block_bytes(cfg, block_days(cfg), source)


def _block_bytes(cfg, B: int, source: str | None = None, cells: int | None = None) -> int:
    """:func:`block_memory_bytes` for ``B``-day blocks (``cells``: the domain's, when already known)."""
    cells = Domain.from_config(cfg).size if cells is None else cells
    cadence = glass_avhrr.CADENCE_DAYS["albedo"] if cfg.data.albedo_cadence_days is None \
        else int(cfg.data.albedo_cadence_days)
    steps = {"albedo": max(1, round(B / cadence)), "lst": B, "era5land": B, "label": B}
    extra = {"era5land": 4 * B * cells * 4}
    est = {s: steps[s] * cells * 4 * _ARRAYS_HELD[s] + extra.get(s, 0) for s in SOURCES}
    return int(est[source] if source is not None else max(est.values()))


# ----------------------------------------------------------------------------------------------------------
# the store
# ----------------------------------------------------------------------------------------------------------
def _days_since_epoch(idx: pd.DatetimeIndex) -> np.ndarray:
    return ((idx - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1)).to_numpy().astype(np.int64)


def _create_store(store: Path, cfg, manifest: dict | None) -> None:
    """Lay out the intermediate store: empty arrays (fill NaN), coordinates, the manifest (None: written later).

    Every node is created in one pass of zarr's event loop (its asynchronous API, the arrays concurrently): one
    synchronous call per array, attribute and coordinate write took 22 round trips to that loop, ~30 ms of the
    driver's time before any task could start (2026-12-01, Intel Xeon; ~15 ms this way). Same metadata either way.
    """
    domain = Domain.from_config(cfg)
    days, comps = _days(cfg), _composites(cfg)
    T, B, Bc = int(cfg.cube.build_tile), block_days(cfg), _composite_chunk(cfg)
    ty, tx = min(T, domain.nrows), min(T, domain.ncols)
    coords = {"time": (_days_since_epoch(days), {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian"}),
              "composite": (_days_since_epoch(comps), {"units": "days since 1970-01-01",
                                                       "calendar": "proleptic_gregorian"}),
              "lat": (np.asarray(domain.lat, np.float64), {"units": "degrees_north"}),
              "lon": (np.asarray(domain.lon, np.float64), {"units": "degrees_east"})}

    async def create() -> None:
        g = await zarr.api.asynchronous.open_group(
            store=str(store), mode="w",
            attributes={"manifest": manifest, "title": "glass-sm day-major ingest (intermediate, chunked by time)"})
        data = [g.create_array(name, shape=(n,) + domain.shape, chunks=(c, ty, tx), dtype="float32",
                               fill_value=np.nan, dimension_names=(dim, "lat", "lon"), compressors=STORE_COMPRESSORS)
                for names, n, c, dim in ((DAILY_VARS.values(), len(days), B, "time"),
                                         (ALBEDO_VARS, len(comps), Bc, "composite"))
                for name in names]
        made = await asyncio.gather(*(g.create_array(name, shape=values.shape, dtype=values.dtype,
                                                     dimension_names=(name,), attributes=attrs)
                                      for name, (values, attrs) in coords.items()), *data)
        await asyncio.gather(*(a.setitem(slice(None), values) for a, (values, _) in zip(made, coords.values())))

    zarr.core.sync.sync(create())
    (store / "_done").mkdir(exist_ok=True)


def _replace_store(store: Path, cfg, manifest: dict | None) -> None:
    """A new empty store at ``store`` (any old one removed)."""
    if store.exists():
        shutil.rmtree(store)
    store.parent.mkdir(parents=True, exist_ok=True)
    _create_store(store, cfg, manifest)


def _open_or_create(store: Path, cfg, manifest: dict, overwrite: bool) -> None:
    if store.exists() and not overwrite:
        try:
            old = zarr.open_group(str(store), mode="r").attrs.get("manifest")
        except Exception:  # noqa: BLE001 - a damaged store is rebuilt
            old = None
        if old == json.loads(json.dumps(manifest)):
            (store / "_done").mkdir(exist_ok=True)
            return
        warnings.warn(f"{store}: intermediate store of other inputs or parameters (or damaged, or left before "
                      "its inputs were all listed): rebuilt",
                      stacklevel=3)
    _replace_store(store, cfg, manifest)


def _marker(store: Path, block: IngestBlock) -> Path:
    return Path(store) / "_done" / f"{block.name}.json"


def _write_marker(path: Path, info: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------------------
# one block (runs on a worker)
# ----------------------------------------------------------------------------------------------------------
def _nan(n: int, domain: Domain) -> np.ndarray:
    return np.full((n,) + domain.shape, np.nan, np.float32)


def _glass_series(block: IngestBlock, cadence_days: int | None) -> pd.Series:
    """The block's GLASS files as :func:`~glass_sm.io.glass_products.find_glass_files` would list them: path or
    None for every expected date (composite schedule for albedo, every day for LST) of the block."""
    if block.source == "albedo":
        expected = glass_avhrr.composite_schedule(block.first, block.last,
                                                  glass_avhrr._cadence("albedo", cadence_days))
    else:
        expected = pd.date_range(block.first, block.last, freq="D")
    have = dict(zip(pd.DatetimeIndex(block.dates), block.files))
    return pd.Series([have.get(t) for t in expected], index=pd.DatetimeIndex(expected, name="time"), dtype=object)


def _label_files(block: IngestBlock) -> dict:
    """The block's GLASS-MODIS files by day, as :func:`~glass_sm.io.glass_modis.find_glass_modis_files` returns
    them."""
    out: dict = {}
    for d, p in zip(block.dates, block.files):
        out.setdefault(pd.Timestamp(d).date(), []).append(Path(p))
    return out


def _read_block(block: IngestBlock, domain: Domain, prm: dict) -> tuple[dict[str, np.ndarray], bool]:
    """The block's arrays over the whole domain, and whether it is empty (no file or no valid value)."""
    n = block.i1 - block.i0
    if block.source == "albedo":
        nan = {v: _nan(n, domain) for v in ALBEDO_VARS}
        if block.root is None:
            return nan, True
        try:
            ds = glass_avhrr.read_glass_albedo(block.root, block.first, block.last, domain, bands=("shortwave",),
                                               allow_gaps=True, qc=prm["albedo_qc"], progress=False,
                                               cadence_days=prm["albedo_cadence_days"],
                                               qc_layer=prm["albedo_qc_layer"],
                                               files=_glass_series(block, prm["albedo_cadence_days"]))
        except EmptyDataError:
            return nan, True
        if ds.sizes["time"] != n:
            raise RuntimeError(f"albedo block {block.name}: {ds.sizes['time']} composites read for {n} expected "
                               f"({block.first}..{block.last})")
        return {v: ds[v].transpose("time", "lat", "lon").values.astype(np.float32, copy=False)
                for v in ALBEDO_VARS}, False
    name = DAILY_VARS[block.source]
    days = pd.date_range(block.first, block.last, freq="D")
    if block.source == "lst":
        if block.root is None:
            return {name: _nan(n, domain)}, True
        try:
            da = glass_avhrr.read_glass_lst(block.root, block.first, block.last, domain, allow_gaps=True,
                                            qc=prm["lst_qc"], progress=False, qc_layer=prm["lst_qc_layer"],
                                            files=_glass_series(block, 1))
        except EmptyDataError:
            return {name: _nan(n, domain)}, True
    elif block.source == "era5land":
        if not block.files:
            if prm["era5_allow_gaps"]:
                return {name: _nan(n, domain)}, True
            raise TimeGapError(f"has no swvl1 time step on {block.first}..{block.last} (allow it with "
                               "cube.allow_missing_inputs: [era5land])", file=prm["era5land_dir"], variable="swvl1")
        try:
            da = era5land.read_era5land_swvl1(list(block.files), block.first, block.last, domain=domain,
                                              allow_gaps=prm["era5_allow_gaps"], progress=False)
        except EmptyDataError:
            return {name: _nan(n, domain)}, True
        da = era5land.to_product_grid(da, domain)
    else:  # label
        if not block.read:
            return {name: _nan(n, domain)}, False
        if block.root is None:
            return {name: _nan(n, domain)}, True
        try:
            da = glass_modis.read_glass_modis_sm(block.root, block.first, block.last, domain, progress=False,
                                                 pattern=prm["modis_pattern"], scale=prm["modis_scale"],
                                                 label_start=prm["label_start"], label_end=prm["label_end"],
                                                 files=_label_files(block))
        except EmptyDataError:
            return {name: _nan(n, domain)}, True
    # no copy where none is needed (the readers return float32 on the block's days, lat, lon): the arrays are
    # only written to the store
    if not da.indexes["time"].equals(days):  # (the readers return the block's days: xarray's alignment skipped)
        da = da.reindex(time=days, copy=False)
    arr = da.transpose("time", "lat", "lon").values.astype(np.float32, copy=False)
    return {name: arr}, False


def _peak_rss() -> int:
    """This process's peak resident memory, bytes: ``VmHWM`` of ``/proc/self/status`` (the high-water mark of this
    process's own memory; ``ru_maxrss`` would include the parent's RSS at the fork, which Linux keeps across
    ``exec``), else ``ru_maxrss`` (KiB) where there is no ``/proc``."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


@functools.lru_cache(maxsize=16)
def _opened_array(store: str, name: str, metadata: bytes) -> zarr.Array:
    return zarr.open_array(store=store, path=name, mode="r+")


def _store_array(store: str, name: str) -> zarr.Array:
    """The store's array ``name``, opened once per process for each content of its metadata (keyed by the bytes of
    its ``zarr.json``, ~1 kB: a store rebuilt with other arrays at the same path is opened anew): a worker writes
    many blocks of the same arrays, and opening one (~1.8 ms: its metadata read and parsed) cost about what
    writing a block's chunk does. The array alone is opened, not the group: the driver may be writing the group's
    own metadata (the manifest, :func:`ingest`)."""
    with open(os.path.join(store, name, "zarr.json"), "rb") as fh:
        return _opened_array(store, name, fh.read())


def ingest_block(store: str, block: IngestBlock, domain: Domain, prm: dict) -> dict:
    """Phase-1 task: read ``block`` over ``domain``, write it into ``store``, then its marker. Returns the marker
    (plus the warnings raised while reading and this process's peak memory)."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        # the readers' DataWarnings (every one: counted and reported by ingest), libraries' deprecation notices
        # not at all ("always" on everything made each file pay for formatting rasterio's notice: ~2-5 ms a file)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        warnings.simplefilter("always", DataWarning)
        arrays, empty = _read_block(block, domain, prm)
    for name, arr in arrays.items():
        _store_array(str(store), name)[block.i0:block.i1] = arr
    info = {"block": block.name, "source": block.source, "first": block.first, "last": block.last,
            "n_files": block.n_files, "n_bytes": block.n_bytes, "empty": bool(empty),
            "seconds": round(time.perf_counter() - t0, 4)}
    _write_marker(_marker(Path(store), block), info)
    return {**info, "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
            "peak_rss": _peak_rss(), "pid": os.getpid()}


# ----------------------------------------------------------------------------------------------------------
# phase 1
# ----------------------------------------------------------------------------------------------------------
def ingest(cfg, store: str | os.PathLike | None = None, *, client=None, progress: bool = True,
           overwrite: bool = False, coverage: pd.DataFrame | None = None,
           listing: SourceListing | None = None) -> IngestReport:
    """Phase 1: read every source file once over the whole domain into the time-chunked intermediate store.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        Uses ``period``, ``domain``, ``data`` and ``cube`` (``ingest_block_days``, ``build_tile`` and the cluster
        keys).
    store : path-like, optional
        The intermediate zarr store (default ``results/<run>/data/ingest.zarr``).
    client : distributed.Client or 'synchronous', optional
        Where the tasks run (default: the cluster of ``cfg.cube``, :func:`glass_sm.cluster.cluster_client`).
    progress : bool
        A tqdm bar over the blocks, files/s and MB/s in its postfix.
    overwrite : bool
        Rebuild the store even when its blocks are done (default: resume, skipping blocks with a marker).
    coverage : pandas.DataFrame, optional
        :func:`glass_sm.data.coverage.coverage_table` of ``cfg`` when already listed (as by stage 01 and
        :func:`glass_sm.data.cube.build_cube`; listed here when None).
    listing : glass_sm.data.coverage.SourceListing, optional
        The run's source listing, when already made (stage 01 lists the folders once, for its coverage table and
        this plan: :func:`plan_sources`); listed here when None.

    Returns
    -------
    IngestReport

    Raises
    ------
    glass_sm.data.coverage.InputCoverageError
        A source lacks a long run of days (before any reading), as in the tile path.
    glass_sm.io.errors.DataError
        From the readers (each names the file and the variable).
    """
    t0 = time.perf_counter()
    store = Path(store) if store is not None else RunPaths.from_config(cfg).ingest
    listing = SourceListing(cfg) if listing is None else listing.check(cfg)  # one listing for both
    check_coverage(cfg, coverage, listing)
    domain = Domain.from_config(cfg)
    prm = _reader_params(cfg)
    report = IngestReport(store=store, n_blocks=n_blocks(cfg), block_memory_bytes=block_memory_bytes(cfg))
    bar = tqdm(total=report.n_blocks, desc="ingest blocks", unit="block", disable=not progress, mininterval=1.0)
    caught: dict[str, list[str]] = {}
    pids: set[int] = set()
    seen = [0, 0.0]  # files and bytes of the blocks finished so far (the bar's rates)

    def finished(block: IngestBlock) -> None:
        seen[0] += block.n_files
        seen[1] += block.n_bytes
        wall = max(time.perf_counter() - t0, 1e-9)
        bar.set_postfix_str(f"{seen[0] / wall:,.0f} files/s, {seen[1] / wall / 1e6:,.1f} MB/s", refresh=False)

    def done(res: dict) -> None:
        report.n_files += int(res["n_files"])
        report.n_bytes += int(round(res["n_bytes"]))
        report.n_files_read += int(res["n_files"])
        report.n_bytes_read += float(res["n_bytes"])
        report.n_blocks_empty += bool(res["empty"])
        report.peak_rss_bytes = max(report.peak_rss_bytes or 0, int(res["peak_rss"]))
        pids.add(res["pid"])
        for w in res["warnings"]:
            caught.setdefault(w.split(":", 1)[0], []).append(w)

    def submitted_while_listing():
        """A fresh store on a cluster: each source's blocks go to the workers as soon as its files are listed
        (SUBMIT_ORDER), so that the workers read while the driver lists the other sources; the manifest is
        written once every source is listed (a store killed before that has none and is rebuilt)."""
        blocks: list[IngestBlock] = []
        stats: dict = {}
        for source_blocks in plan_sources(cfg, stats, listing):
            blocks += source_blocks
            yield from source_blocks
        zarr.open_group(str(store), mode="r+").attrs["manifest"] = manifest_of(cfg, blocks, stats)

    try:
        with section_client(cfg.cube, client) as cl:
            if cl is not None and (overwrite or not store.exists()):
                _replace_store(store, cfg, None)
                todo = submitted_while_listing()
            else:  # in this process, or resuming: the whole plan first (its manifest decides what is kept)
                blocks, manifest = plan_ingest(cfg, listing)
                _open_or_create(store, cfg, manifest, overwrite)
                todo = []
                for b in blocks:
                    m = _marker(store, b)
                    if m.exists():
                        info = json.loads(m.read_text())
                        report.n_blocks_skipped += 1
                        report.n_files += int(info["n_files"])
                        report.n_bytes += int(round(info["n_bytes"]))
                        report.n_blocks_empty += bool(info["empty"])
                        bar.update(1)
                    else:
                        todo.append(b)
            # in SUBMIT_ORDER (plan_sources' order; the order changes no value)
            run_tasks(cl, ingest_block, todo, (str(store), domain, prm), "glass-sm-ingest", bar, done, finished)
    finally:
        bar.close()
    report.seconds = time.perf_counter() - t0
    report.n_workers = max(len(pids), 1)
    for category, msgs in caught.items():
        text = f"{len(msgs)} warning(s) while ingesting, e.g. {msgs[0]}"
        report.warnings.append(text)
        warnings.warn(text, stacklevel=2)
    return report


def report_dict(report: IngestReport) -> dict:
    """The report as plain values (for tables and logs)."""
    out = asdict(report)
    out["store"] = str(report.store)
    out.update(files_per_s=report.files_per_s, bytes_per_s=report.bytes_per_s)
    return out
