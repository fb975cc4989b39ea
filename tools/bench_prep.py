"""Data-preparation rows of ``make bench`` (issue 17): what stage 01's reading costs against what the files allow.

(f) **raw read**: every source file of one year of the run (the AVHRR albedo composites and daily LST, the
    GLASS-MODIS daily files of that year, the ERA5-Land file(s) holding its days) opened with its format's library,
    **its metadata and every array decompressed in full** (pyhdf for HDF4, netCDF4 / cfgrib for ERA5-Land, rasterio
    for GeoTIFF; :func:`read_whole`), nothing else: the disk / decompression limit. Files/s and MB/s (bytes on
    disk), on the same Dask cluster shape as the ingest (``cube.n_workers`` worker processes of
    ``cube.threads_per_worker`` threads), files spread over the workers in equal batches. The files are read once
    untimed first, so the page cache is warm for (f) and (g) alike: the rows measure parsing and decompression, not
    the disk. (f) and (g) are measured in alternation, :data:`PAIRS_FULL` pairs (quick: :data:`PAIRS_QUICK`), and
    each row keeps its fastest run (:func:`best_of_pairs`); the (g/f) row lists every pair's own ratio too.
(g) **ingest**: :func:`glass_sm.data.ingest.ingest` of the same year on the same cluster shape into a fresh store
    (the last run's store deleted first, untimed), files/s and MB/s, and its ratio to (f) (target >= 0.7). The
    sources are listed before, untimed, as (f) is handed its file list: stage 01 lists them once
    (:class:`glass_sm.data.coverage.SourceListing`) for its coverage table and hands the listing to the ingest's
    plan, and (f)'s file list comes from the same listing; their seconds (the listing, (f)'s list, the coverage
    table) are a row of their own. The
    ingest does what (f) does plus QC masking, unpacking, the sinusoidal aggregation of the labels, ERA5-Land's
    daily means and bilinear interpolation, and the zarr writes.
(cpu) **where the CPU goes** in the fastest (f) and (g) runs: the driver process's CPU seconds (for (g): planning
    the blocks from the listing and reading the files' sizes, laying out the store, sending the tasks, the
    LocalCluster's scheduler) and the worker processes' CPU
    seconds (:func:`cluster_cpu`). On a machine with as many cores as workers the driver's CPU is taken from them.
(h) **ingest memory**: peak RSS of a child process running the ingest in-process (the synchronous scheduler: one
    process = one worker's load) over the same days on two twin domains the benchmark generates: the run's domain
    and one with 4x the cells (the resolution halved), both with the run's ``cube.build_tile``; their ratio (target
    within 1 +- 0.2: memory bound by the block and the tile, not the domain), and the analytic bound per task of
    :func:`glass_sm.data.ingest` (``IngestReport.block_bytes``).
(g/f1) **the same ratio in one process, by file size**: in the (h) child, after its measured run (imports done, page
    cache warm), (f) on that run's files and the ingest again (its sources and coverage table listed before,
    untimed, as for (g)), both synchronous, alternating :data:`PAIRS_QUICK` times and the fastest of each kept, for
    the run's domain and the 4x one (files about 3x larger): whether the ratio rises as a file's fixed cost
    (opening, metadata, Python per file) weighs less against its arrays, as it would towards the real archive's
    files of megabytes, or falls because the ingest's own work per cell (QC, unpacking, the labels' aggregation, the
    regrid, the writes) grows faster than decompression. Measured here (2026-12-01, Intel Xeon 2 cores, e2cfa8d, the
    5 deg demo, full mode, two runs): 0.61 and 0.57 at 17 kB per file, 0.58 and 0.55 at 43 kB: flat, so file size
    alone does not explain the gap to 0.7. (At e2cfbd0 the second ingest also listed the coverage table, which (g)
    does not time: 0.45 and 0.30 then.)
(runs) ``make bench-prep`` (:func:`main`, :func:`repeat_fg`): the (f)/(g) section alone, repeated (default 12 runs, each
    on a fresh LocalCluster, in one process), one row per run in table ``bench_prep_runs`` and the spread of g/f
    printed (:func:`summarize_ratios`): one ``make bench`` draws one g/f, which on the 2-core development machine
    spread over 0.54-0.81 for the same code (2026-12-01).
(s01) **stage 01 at the paper's scale**, from the last (g) run's own task seconds per source (its blocks'
    markers): the real archive's files (the volume table of ``book/real_data.md``, :data:`ARCHIVE`) at the twin's
    cost per file (a lower end) and at its cost per byte (an upper end: a twin file is mostly the fixed cost of
    opening it), in core-hours and in wall hours on 1000 workers (:func:`stage01_bounds`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from glass_sm.data.ingest import TASKS_PER_THREAD
from glass_sm.io import era5land, glass_modis
from glass_sm.io.glass_avhrr import albedo_composites_needed
from glass_sm.io.glass_products import find_glass_files

#: The real archive for 1982-2021 (book/real_data.md, "Inputs"): files and bytes on disk per source. GLASS-MODIS
#: counts one global file per day (its tiles together hold the same bytes); ERA5-Land one file per month.
ARCHIVE = {
    "GLASS albedo (GLASS02B05, 8-day)": {"files": 1_840, "bytes": 0.86e12},
    "GLASS LST (GLASS08B31, daily)": {"files": 14_610, "bytes": 1.1e12},
    "GLASS-MODIS SM (daily, 2000-2020)": {"files": 7_617, "bytes": 28e12},
    "ERA5-Land swvl1 (hourly, monthly files)": {"files": 480, "bytes": 3.5e12},
}


# ----------------------------------------------------------------------------------------------------------
# the run's files
# ----------------------------------------------------------------------------------------------------------
def bench_year(cfg) -> int:
    """The year (f), (g) and (h) read: the last whole calendar year of the period inside the label period
    (the files of every source exist), else the period's first whole year."""
    s, e = pd.Timestamp(cfg.period.start), pd.Timestamp(cfg.period.end)
    ls, le = pd.Timestamp(cfg.period.label_start), pd.Timestamp(cfg.period.label_end)
    years = [y for y in range(s.year, e.year + 1) if pd.Timestamp(y, 1, 1) >= s and pd.Timestamp(y, 12, 31) <= e]
    inside = [y for y in years if pd.Timestamp(y, 1, 1) >= ls and pd.Timestamp(y, 12, 31) <= le]
    if inside:
        return inside[-1]
    if years:
        return years[0]
    raise ValueError(f"period {s.date()}..{e.date()} holds no whole calendar year to benchmark")


def source_files(cfg, start, end, listing=None) -> list[Path]:
    """Every file stage 01's ingest opens for the days ``start..end``: the albedo composites that bracket them, the
    daily LST and GLASS-MODIS files, the ERA5-Land files holding any of the days (the static layers, four small
    2-D files read by the cube's tile step, are not part of the ingest). ``listing``: the run's
    :class:`glass_sm.data.coverage.SourceListing` when ``start..end`` is ``cfg``'s period (its folder walks and
    searches are then the ones the ingest plans from); else the folders are walked here."""
    d = cfg.data
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    whole = listing is not None and (start, end) == (pd.Timestamp(cfg.period.start), pd.Timestamp(cfg.period.end))
    listing = listing.check(cfg) if whole else None
    comps = albedo_composites_needed(start, end, d.albedo_cadence_days, d.albedo_sample_offset_days)
    if listing is not None:
        found = [listing.glass_files("albedo", comps[0], comps[-1], d.albedo_cadence_days),
                 listing.glass_files("lst", start, end)]
    else:
        found = [find_glass_files(d.avhrr_dir, "albedo", comps[0], comps[-1], allow_gaps=True,
                                  cadence_days=d.albedo_cadence_days),
                 find_glass_files(d.avhrr_dir, "lst", start, end, allow_gaps=True)]
    files = [p for series in found for p in series if p]
    ls, le = max(start, pd.Timestamp(cfg.period.label_start)), min(end, pd.Timestamp(cfg.period.label_end))
    if ls <= le:
        by_day = listing.labels() if listing is not None else glass_modis.find_glass_modis_files(
            d.glass_modis_dir, ls.date(), le.date(), pattern=d.glass_modis_pattern)
        files += [p for day in sorted(by_day) for p in by_day[day]]
    era5 = listing.era5land_files() if listing is not None else era5land.list_era5land_files(d.era5land_dir)
    files += [p for p in era5 if _era5_overlaps(p, start, end)]
    return [Path(p) for p in files]


def _era5_overlaps(path: Path, start: pd.Timestamp, end: pd.Timestamp) -> bool:
    """Whether an ERA5-Land file holds a day of ``start..end`` (its time axis, read once per process and shared
    with the coverage table and the ingest plan: :func:`glass_sm.data.coverage.era5land_file_times`)."""
    from glass_sm.data.coverage import era5land_file_times  # noqa: PLC0415

    t = pd.DatetimeIndex(era5land_file_times(path))
    return bool(((t >= start) & (t < end + pd.Timedelta(days=1))).any())


# ----------------------------------------------------------------------------------------------------------
# (f) raw read
# ----------------------------------------------------------------------------------------------------------
def read_whole(path: str | os.PathLike) -> int:
    """Read one file's whole content with its format's library: every attribute (metadata) and every array,
    decompressed. Returns the number of array values read.

    HDF4: the global attributes and each SDS's attributes (through :func:`glass_sm.io.glass_hdf.hdf_attributes`,
    the fastest exact reader of pyhdf's attributes) and its data; GeoTIFF: the dataset's and each band's tags and
    every band; netCDF: every variable's attributes and data; GRIB: every message's values (cfgrib).
    """
    path = str(path)
    n = 0
    if path.endswith(".hdf"):
        from pyhdf.SD import SD, SDC  # noqa: PLC0415

        from glass_sm.io.glass_hdf import hdf_attributes  # noqa: PLC0415

        sd = SD(path, SDC.READ)
        try:
            hdf_attributes(sd)
            for name in sd.datasets():
                sds = sd.select(name)
                hdf_attributes(sds)
                n += np.asarray(sds[:]).size
                sds.endaccess()
        finally:
            sd.end()
    elif path.endswith((".tif", ".tiff")):
        import rasterio  # noqa: PLC0415

        with rasterio.open(path) as ds:
            ds.tags()
            for b in range(1, ds.count + 1):
                ds.tags(b)
            n += ds.read().size
    elif era5land._sniff(Path(path)) == "grib":
        import xarray as xr  # noqa: PLC0415

        with xr.open_dataset(path, engine="cfgrib", cache=False, backend_kwargs={"indexpath": ""}) as ds:
            n += sum(np.asarray(v.values).size for v in ds.data_vars.values())
    else:
        import netCDF4  # noqa: PLC0415

        with netCDF4.Dataset(path) as ds:
            ds.__dict__
            for v in ds.variables.values():
                v.ncattrs()
                n += np.asarray(v[:]).size
    return n


#: (f, g) pairs measured, alternating (``make bench`` / ``--quick``): on the 2-core development machine one raw read
#: of the demo's year took 0.50-0.82 s and one ingest 0.94-1.50 s in consecutive runs, so one pair could give any
#: ratio from 0.35 to 0.85; the rows keep the fastest of each, and list every pair's ratio.
PAIRS_FULL, PAIRS_QUICK = 5, 3


def best_of_pairs(f_runs: list[dict], g_runs: list) -> tuple[dict, object, list[float]]:
    """The fastest (f) run, the fastest (g) run (:class:`~glass_sm.data.ingest.IngestReport`) and each
    alternating pair's ratio g/f in files/s, in the order measured. Best against best is the usual benchmark
    reading: each is the closest its run came to the machine's limit, and noise only ever slows a run down."""
    if not f_runs or len(f_runs) != len(g_runs):
        raise ValueError(f"need as many (f) as (g) runs, at least one: {len(f_runs)} and {len(g_runs)}")
    f = max(f_runs, key=lambda r: r["files_per_s"])
    g = max(g_runs, key=lambda r: r.files_per_s)
    return f, g, [gr.files_per_s / fr["files_per_s"] for fr, gr in zip(f_runs, g_runs)]


def _import_readers() -> None:
    """A worker's once-per-process imports: the ingest's modules, the libraries its readers import lazily, and
    xarray's backend registry (its first ``open_dataset`` imports every installed engine: ~0.15 s of CPU)."""
    import importlib  # noqa: PLC0415

    importlib.import_module("glass_sm.data.ingest")
    for name in ("rasterio", "pyproj", "pyhdf.SD", "netCDF4"):
        importlib.import_module(name)
    from xarray.backends import list_engines  # noqa: PLC0415

    list_engines()


def _read_batch(paths: list[str]) -> int:
    return sum(read_whole(p) for p in paths)


def cluster_cpu(client, since: tuple[float, float] | None = None) -> tuple[float, float]:
    """CPU seconds used so far by this (the driver's) process and by all of ``client``'s worker processes together
    (``time.process_time`` in each); with ``since`` (an earlier reading), the CPU used since then."""
    now = (time.process_time(), float(sum(client.run(time.process_time).values())))
    return now if since is None else (now[0] - since[0], now[1] - since[1])


def raw_read_rate(files: list[Path], client=None, n_batches: int | None = None) -> dict:
    """(f): read ``files`` whole (:func:`read_whole`) on ``client``'s workers (in-process when None), in
    ``n_batches`` equal batches (default: :data:`glass_sm.data.ingest.TASKS_PER_THREAD`, 4, per worker thread, as
    the ingest's automatic block length cuts its tasks). Returns files, bytes, seconds, files/s, MB/s."""
    paths = [str(p) for p in files]
    nbytes = sum(os.path.getsize(p) for p in paths)
    if client is None:
        t = time.perf_counter()
        _read_batch(paths)
        secs = time.perf_counter() - t
    else:
        threads = sum(client.nthreads().values())
        k = n_batches or max(1, TASKS_PER_THREAD * threads)  # the ingest's own task granularity
        batches = [paths[i::k] for i in range(k) if paths[i::k]]
        t = time.perf_counter()
        client.gather(client.map(_read_batch, batches, pure=False))
        secs = time.perf_counter() - t
    return {"files": len(paths), "bytes": nbytes, "seconds": secs, "files_per_s": len(paths) / secs,
            "mb_per_s": nbytes / 1e6 / secs}


# ----------------------------------------------------------------------------------------------------------
# (h) peak memory of the ingest in a child process
# ----------------------------------------------------------------------------------------------------------
MEM_CHILD = r"""
import json, sys, time
from glass_sm import config
from glass_sm.data.ingest import ingest
params, overrides, store = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
cfg = config.load(params, overrides)
def hwm():  # this process's own high-water mark (ru_maxrss would include the parent's RSS, kept across exec)
    return [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
base = hwm()
t = time.perf_counter()
rep = ingest(cfg, store, client="synchronous", progress=False, overwrite=True)
secs = time.perf_counter() - t
out = {"peak_rss": hwm(), "import_rss": base, "seconds": secs, "files": rep.n_files, "bytes": rep.n_bytes,
       "block_bytes": rep.block_memory_bytes}
if len(sys.argv) > 4:  # (f) and (g) in this one process, after the run above (imports done, page cache warm)
    sys.path.insert(0, sys.argv[5])
    import shutil
    from bench_prep import PAIRS_QUICK, raw_read_rate
    from glass_sm.data.coverage import SourceListing, coverage_table
    paths = json.load(open(sys.argv[4]))
    listing = SourceListing(cfg)  # listed before, as for (g): stage 01 lists the sources once, for its coverage
    cov = coverage_table(cfg, listing=listing)  # table and the ingest's plan
    raws, warms = [], []
    for _ in range(PAIRS_QUICK):  # alternating, the fastest of each kept, as for (f) and (g)
        raws.append(raw_read_rate(paths))
        shutil.rmtree(store)  # a fresh store, as the run above had: deleting the old one is not the ingest's work
        t = time.perf_counter()
        again = ingest(cfg, store, client="synchronous", progress=False, overwrite=True, coverage=cov,
                       listing=listing)
        warms.append({"files": again.n_files_read, "seconds": time.perf_counter() - t})
    out["raw"] = max(raws, key=lambda r: r["files_per_s"])
    out["ingest_warm"] = min(warms, key=lambda r: r["seconds"])
print(json.dumps(out))
"""


def ingest_memory(params: str, overrides: dict, store: Path, repo: Path, files: list | None = None) -> dict:
    """Run :func:`glass_sm.data.ingest.ingest` in a child process (synchronous scheduler) and return its peak RSS
    (bytes), the RSS after imports, seconds, files and bytes read. With ``files`` (the same run's source files,
    :func:`source_files`) the child then measures, after that first run, (f) on them (``raw``,
    :func:`raw_read_rate` in the process) and the ingest once more (``ingest_warm``: files, seconds): both in one
    process with imports done and the page cache warm, so their ratio compares the work per file alone."""
    argv = [sys.executable, "-c", MEM_CHILD, params, json.dumps(overrides), str(store)]
    if files is not None:
        listing = Path(store).with_suffix(".files.json")
        listing.write_text(json.dumps([str(p) for p in files]))
        argv += [str(listing), str(Path(__file__).resolve().parent)]
    res = subprocess.run(argv, capture_output=True, text=True, cwd=repo)
    if res.returncode != 0:
        raise RuntimeError(f"ingest memory child failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])



# ----------------------------------------------------------------------------------------------------------
# (h) twins of two domain sizes, and the whole section
# ----------------------------------------------------------------------------------------------------------
def memory_domains(cfg, params: str, base: dict, tmp: Path, days: int) -> dict[str, dict]:
    """The overrides of the two (h) runs: the run's domain and one with 4x the cells (resolution halved; the
    twin's CCI, static and ERA5-Land grids follow their own rules), each a twin of ``days`` days inside the label
    record written under ``tmp``."""
    from glass_sm import config  # noqa: PLC0415

    year = bench_year(cfg)
    start = pd.Timestamp(year, 3, 1)
    end = start + pd.Timedelta(days=days - 1)
    out = {}
    for tag, res in (("1x", cfg.domain.resolution), ("4x", cfg.domain.resolution / 2)):
        over = {**base, "run.results_dir": str(tmp / f"prep_{tag}"), "period.start": str(start.date()),
                "period.end": str(end.date()), "domain.resolution": res, "zoom.enabled": False,
                "cube.ingest_block_days": 0}
        sr = cfg.twin.static_resolution
        if sr is not None and sr < res and abs(res / sr - round(res / sr)) > 1e-9:
            over["twin.static_resolution"] = res / max(1, round(res / sr))  # a divisor of the halved grid
        config.load(params, over)  # raises a ConfigError naming the key when the halved grid is not allowed
        out[tag] = over
    return out


def _by_source(store: Path) -> dict[str, dict]:
    """Files, bytes and task seconds per source from an ingest store's block markers."""
    out: dict[str, dict] = {}
    for m in sorted((Path(store) / "_done").glob("*.json")):
        d = json.loads(m.read_text())
        s = out.setdefault(d["source"], {"files": 0, "bytes": 0.0, "seconds": 0.0})
        s["files"] += int(d["n_files"])
        s["bytes"] += float(d["n_bytes"])
        s["seconds"] += float(d["seconds"])
    return out


SOURCE_OF = {"GLASS albedo (GLASS02B05, 8-day)": "albedo", "GLASS LST (GLASS08B31, daily)": "lst",
             "GLASS-MODIS SM (daily, 2000-2020)": "label", "ERA5-Land swvl1 (hourly, monthly files)": "era5land"}


def year_sources(cfg, params: str, base: dict):
    """The year the (f)/(g) rows measure (:func:`bench_year`) and its sources, listed as stage 01 lists them: its
    configuration, one :class:`glass_sm.data.coverage.SourceListing`, (f)'s files from it (:func:`source_files`),
    the coverage table from it (None when there is no file) and the seconds all this took (untimed in (g)).
    Returns ``(year, ycfg, listing, files, cov, seconds)``."""
    from glass_sm import config  # noqa: PLC0415
    from glass_sm.data.coverage import SourceListing, coverage_table  # noqa: PLC0415

    year = bench_year(cfg)
    ycfg = config.load(params, {**base, "period.start": f"{year}-01-01", "period.end": f"{year}-12-31",
                                "cube.ingest_block_days": 0})
    t = time.perf_counter()  # stage 01 lists the sources once, for its coverage table and the ingest's plan;
    listing = SourceListing(ycfg)  # (f)'s files come from the same listing
    files = source_files(ycfg, ycfg.period.start, ycfg.period.end, listing)
    cov = coverage_table(ycfg, listing=listing) if files else None
    return year, ycfg, listing, files, cov, time.perf_counter() - t


def fg_pairs(ycfg, listing, cov, files: list[Path], n_workers: int, threads: int, n_pairs: int,
             store: Path) -> dict:
    """(f) and (g) in ``n_pairs`` alternating pairs on a fresh LocalCluster of ``n_workers`` x ``threads``: the
    raw read of ``files`` (:func:`raw_read_rate`) and the ingest of ``ycfg`` into a fresh ``store`` from the run's
    ``listing`` and coverage table ``cov``, after one untimed raw read (page cache warm) and the workers' imports.
    Returns the (f) runs, the (g) reports and each run's CPU seconds (driver, workers: :func:`cluster_cpu`)
    (``f_runs``, ``g_runs``, ``f_cpu``, ``g_cpu``), the fastest of each and every pair's ratio
    (:func:`best_of_pairs`: ``f``, ``g``, ``pairs``) and the CPU of those fastest runs (``f_best_cpu``,
    ``g_best_cpu``)."""
    from glass_sm.cluster import cluster_client  # noqa: PLC0415
    from glass_sm.data.ingest import ingest  # noqa: PLC0415

    f_runs, g_runs, f_cpu, g_cpu = [], [], [], []
    with cluster_client(None, n_workers, threads, "distributed") as client:
        raw_read_rate(files, client)  # untimed: the page cache is warm for (f) and (g) alike
        client.run(_import_readers)    # and the workers' imports done (a once-per-worker cost in a real run)
        for _ in range(n_pairs):  # (f) and (g) alternate, so a slow spell of the machine meets both
            c0 = cluster_cpu(client)
            f_runs.append(raw_read_rate(files, client))
            f_cpu.append(cluster_cpu(client, c0))
            shutil_rmtree(store)  # each (g) builds a fresh store, as a first run does: deleting the last
            c0 = cluster_cpu(client)  # run's store is not the ingest's work
            g_runs.append(ingest(ycfg, store, client=client, progress=False, overwrite=True, coverage=cov,
                                 listing=listing))
            g_cpu.append(cluster_cpu(client, c0))
    f, g, pairs = best_of_pairs(f_runs, g_runs)
    return {"f_runs": f_runs, "g_runs": g_runs, "f_cpu": f_cpu, "g_cpu": g_cpu, "f": f, "g": g, "pairs": pairs,
            "f_best_cpu": f_cpu[f_runs.index(f)], "g_best_cpu": g_cpu[g_runs.index(g)]}


def run_prep(cfg, params: str, base: dict, repo: Path, tmp: Path, quick: bool, row) -> dict:
    """Measure (f), (g), (h) and (s) and report them through ``row(key, quantity, value, unit, note)``.

    Returns the details for ``bench.json`` (``prep``)."""
    from glass_sm import config, twin  # noqa: PLC0415
    from glass_sm.data.ingest import block_memory_bytes  # noqa: PLC0415
    from glass_sm.grid import Domain  # noqa: PLC0415

    info: dict = {}
    year, ycfg, listing, files, cov, t_list = year_sources(cfg, params, base)
    if not files:
        row("f", "raw read: the run's source files", float("nan"), "files/s", "no source file yet: run stage 01")
    else:
        nw, tpw = int(cfg.cube.n_workers), int(cfg.cube.threads_per_worker)
        n_rep = PAIRS_QUICK if quick else PAIRS_FULL
        m = fg_pairs(ycfg, listing, cov, files, nw, tpw, n_rep, tmp / "prep_ingest.zarr")
        f_runs, g_runs, f_cpu, g_cpu = m["f_runs"], m["g_runs"], m["f_cpu"], m["g_cpu"]
        f, rep, pairs, fc, gc = m["f"], m["g"], m["pairs"], m["f_best_cpu"], m["g_best_cpu"]
        shape = f"{nw} worker(s) x {tpw} thread(s), warm page cache, best of {n_rep}"
        row("f", f"raw read of {year}'s source files ({f['files']:,} files, {f['bytes'] / 1e6:,.0f} MB)",
            f["files_per_s"], "files/s", shape)
        row("f", "raw read", f["mb_per_s"], "MB/s", "metadata + every array decompressed (read_whole)")
        row("g", f"day-major ingest of {year} ({rep.n_files_read:,} files)", rep.files_per_s, "files/s",
            f"{rep.n_blocks} blocks, {shape}")
        row("g", "day-major ingest", rep.bytes_per_s / 1e6, "MB/s")
        row("g", f"listing the sources of {year}, (f)'s files and the coverage table (untimed in (g))", t_list, "s",
            "once per stage-01 run (SourceListing: the table and the ingest's plan share it), as (f) is handed "
            "its file list")
        row("g/f", "ingest / raw read (files/s), best (g) / best (f)", rep.files_per_s / f["files_per_s"], "fraction",
            "target >= 0.7; each pair's: " + ", ".join(f"{x:.2f}" for x in pairs))
        for key, what, (drv, wrk) in (("f", "raw read", fc), ("g", "ingest", gc)):
            row("cpu", f"{what} ({key}), its fastest run: CPU of the driver process", drv, "s",
                f"worker processes {wrk:.2f} s; on {nw * tpw} core(s) the driver's CPU is taken from the workers'"
                + ("" if key == "f" else " (the driver plans the blocks, lays out the store, sends 1 task per block)"))
        info.update(raw=f, ingest={"files": rep.n_files_read, "bytes": rep.n_bytes_read, "seconds": rep.seconds,
                                   "blocks": rep.n_blocks, "files_listed": len(files)},
                    pairs={"raw_seconds": [r["seconds"] for r in f_runs], "ingest_seconds": [r.seconds for r in g_runs],
                           "ratios": pairs, "raw_cpu_driver_workers": f_cpu, "ingest_cpu_driver_workers": g_cpu})
        info["paper_scale_stage01"] = stage01_rows(_by_source(tmp / "prep_ingest.zarr"), row)
    if not cfg.twin.enabled:
        row("h", "ingest peak memory", float("nan"), "MiB", "twin runs only: the benchmark generates its domains")
        return info
    days = 32 if quick else 64
    runs = {}
    for tag, over in memory_domains(cfg, params, base, tmp, days).items():
        tcfg = config.load(params, over)
        twin.generate_twin(tcfg, progress=False)
        store = tmp / f"prep_{tag}.zarr"
        m = ingest_memory(params, over, store, repo,
                          files=source_files(tcfg, tcfg.period.start, tcfg.period.end))
        m.update(cells=Domain.from_config(tcfg).size, bound=block_memory_bytes(tcfg), sources=_by_source(store))
        runs[tag] = m
        row("h", f"ingest peak RSS, {tag} domain ({m['cells']:,} cells x {days} d, resolution "
            f"{tcfg.domain.resolution:g} deg)", m["peak_rss"] / 2**20, "MiB",
            f"after imports {m['import_rss'] / 2**20:,.0f} MiB; one process (synchronous)")
        row("h", f"analytic bound per ingest task, {tag} domain (block_memory_bytes)", m["bound"] / 2**20, "MiB")
        raw, warm = m["raw"], m["ingest_warm"]
        g_rate = warm["files"] / warm["seconds"] if warm["seconds"] > 0 else float("nan")
        kb = raw["bytes"] / max(raw["files"], 1) / 1e3
        row("g/f1", f"ingest / raw read in one process, {tag} domain ({kb:,.0f} kB per file)",
            g_rate / raw["files_per_s"], "fraction",
            f"f {raw['files_per_s']:,.0f} files/s, g {g_rate:,.0f} files/s; synchronous, warm")
        shutil_rmtree(store)
    ratio = runs["4x"]["peak_rss"] / runs["1x"]["peak_rss"]
    row("h", "ingest peak RSS ratio 4x / 1x", ratio, "ratio", "target within 0.8-1.2")
    info["memory"] = runs
    return info


def stage01_bounds(by_source: dict[str, dict], workers: int = 1000, archive: dict | None = None) -> pd.DataFrame:
    """Stage 01 at the paper's scale from the (g) ingest's own task seconds per source (one task = one worker
    process), two ways:

    - ``core_hours_per_file``: the real files cost what a twin file costs (the measured seconds per file): a lower
      end, since a real file holds 10^3-10^5 times the twin's bytes;
    - ``core_hours_per_byte``: the real bytes cost what a twin byte costs (the measured seconds per byte): an
      upper end, since a twin file's time is mostly the fixed cost of opening it, here charged to its few bytes.

    The truth lies between; a year of real files read with stage 01's progress bars (files/s, MB/s) settles it.
    Wall hours on ``workers`` workers assume perfect scaling (the shared file system's bandwidth, not modelled, is
    the likely limit at the upper end).
    """
    rows = []
    for name, a in (archive or ARCHIVE).items():
        m = by_source.get(SOURCE_OF[name])
        if not m or not m["files"] or not m["bytes"]:
            continue
        per_file = a["files"] * m["seconds"] / m["files"] / 3600
        per_byte = a["bytes"] * m["seconds"] / m["bytes"] / 3600
        rows.append({"source": name, "files": a["files"], "TB": a["bytes"] / 1e12,
                     "twin_s_per_file": m["seconds"] / m["files"], "twin_MB_per_s": m["bytes"] / m["seconds"] / 1e6,
                     "core_hours_per_file": per_file, "core_hours_per_byte": per_byte,
                     f"wall_hours_on_{workers}_workers_per_byte": per_byte / workers})
    return pd.DataFrame(rows)


def stage01_rows(by_source: dict[str, dict], row, workers: int = 1000, archive: dict | None = None) -> list[dict]:
    """:func:`stage01_bounds` as bench rows ``s01``; returns the table's records."""
    t = stage01_bounds(by_source, workers, archive)
    for _, r in t.iterrows():
        row("s01", f"stage 01, paper scale, {r['source']}: {r['files']:,} files, {r['TB']:.2f} TB",
            r["core_hours_per_file"], "core-h", f"per-file end ({r['twin_s_per_file'] * 1e3:.2f} ms/file); per-byte "
            f"end {r['core_hours_per_byte']:,.0f} core-h ({r['twin_MB_per_s']:.2f} MB/s)")
    if len(t):
        lo, hi = t["core_hours_per_file"].sum(), t["core_hours_per_byte"].sum()
        row("s01", "stage 01, paper scale, total (per-file end .. per-byte end)", lo, "core-h",
            f"..{hi:,.0f} core-h; {lo / workers:.3f}..{hi / workers:.1f} h on {workers} workers")
    return t.to_dict(orient="records")


def shutil_rmtree(path: Path) -> None:
    import shutil  # noqa: PLC0415

    shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------
# make bench-prep: the (f)/(g) section repeated, and the spread of its g/f
# ----------------------------------------------------------------------------------------------------------
#: (g) / (f) target of issue 17 ("(g) >= 0.7 of (f) on this machine")
TARGET_G_OVER_F = 0.7


def summarize_ratios(ratios, target: float = TARGET_G_OVER_F) -> dict:
    """The spread of ``ratios`` (one g/f per run): n, median, min, max, quartiles (linear interpolation, numpy's
    default) and how many runs reach ``target``. NaN ratios (a run without files) are left out and counted."""
    r = np.asarray(list(ratios), float)
    ok = r[np.isfinite(r)]
    if ok.size == 0:
        raise ValueError("no finite g/f ratio to summarise")
    q1, med, q3 = np.percentile(ok, [25, 50, 75])
    return {"n": int(ok.size), "n_nan": int(r.size - ok.size), "median": float(med), "q1": float(q1),
            "q3": float(q3), "min": float(ok.min()), "max": float(ok.max()),
            "n_at_target": int((ok >= target).sum()), "target": float(target)}


def repeat_fg(cfg, params: str, base: dict, runs: int, n_pairs: int, tmp: Path, say=print) -> pd.DataFrame:
    """Run the (f)/(g) section of :func:`run_prep` ``runs`` times, each on a fresh LocalCluster of the run's shape
    (``cube.n_workers`` x ``cube.threads_per_worker``), with ``n_pairs`` alternating pairs each, on the year
    :func:`bench_year` picks; the sources are listed once, before the runs (as stage 01 lists them once). One row
    per run (table ``bench_prep_runs``); ``say`` gets a line per run."""
    if runs < 1 or n_pairs < 1:
        raise ValueError(f"runs and pairs must be >= 1, got {runs} and {n_pairs}")
    year, ycfg, listing, files, cov, _ = year_sources(cfg, params, base)
    if not files:
        raise FileNotFoundError(f"no source file of {year} under the run's data folders: run stage 01 first")
    nw, tpw = int(cfg.cube.n_workers), int(cfg.cube.threads_per_worker)
    rows = []
    for k in range(runs):
        started = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
        m = fg_pairs(ycfg, listing, cov, files, nw, tpw, n_pairs, tmp / "prep_runs.zarr")
        f, g, pairs, fc, gc = m["f"], m["g"], m["pairs"], m["f_best_cpu"], m["g_best_cpu"]
        rows.append({"run": k + 1, "year": year, "files": f["files"], "pairs": n_pairs,
                     "f_files_per_s": f["files_per_s"], "g_files_per_s": g.files_per_s,
                     "g_over_f": g.files_per_s / f["files_per_s"], "pair_ratios": " ".join(f"{x:.3f}" for x in pairs),
                     "f_driver_cpu_s": fc[0], "f_workers_cpu_s": fc[1], "g_driver_cpu_s": gc[0],
                     "g_workers_cpu_s": gc[1], "started": started})
        say(f"run {k + 1}/{runs}: g/f {rows[-1]['g_over_f']:.3f} (pairs {rows[-1]['pair_ratios']})")
    shutil_rmtree(tmp / "prep_runs.zarr")
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    """``python tools/bench_prep.py [params] [--runs N] [--pairs P]`` (``make bench-prep``): the (f)/(g) section
    of ``make bench`` repeated ``N`` times, written to ``<results>/<run>/tables/bench_prep_runs.csv``, and the
    spread of g/f printed. One run of ``make bench`` gives one draw of g/f; on a 2-core machine whose runs of the
    same code spread by +-0.1 around the target, only the distribution over runs says where the target stands."""
    import argparse  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    from glass_sm import config  # noqa: PLC0415
    from glass_sm.contract import write_table  # noqa: PLC0415
    from glass_sm.paths import RunPaths  # noqa: PLC0415

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pipeline import find_repo, results_root  # noqa: PLC0415

    ap = argparse.ArgumentParser(description=main.__doc__.split("\n\n")[0])
    ap.add_argument("params", nargs="?", default="params/demo.yaml")
    ap.add_argument("--runs", type=int, default=12, help="repetitions of the (f)/(g) section (default 12)")
    ap.add_argument("--pairs", type=int, default=PAIRS_FULL,
                    help=f"alternating (f)/(g) pairs per run (default {PAIRS_FULL}, as make bench)")
    ap.add_argument("--results-dir", default=None, help="override run.results_dir (default: the params file's)")
    args = ap.parse_args(argv)
    repo = find_repo()
    params = str(Path(args.params).resolve())
    base = {"run.results_dir": args.results_dir} if args.results_dir else {}
    cfg = config.load(params, base)
    tmp = Path(tempfile.mkdtemp(prefix="glass_sm_bench_prep_"))
    try:
        table = repeat_fg(cfg, params, base, args.runs, args.pairs, tmp)
    except FileNotFoundError as e:  # a missing folder (MissingFileError) or no file of the year
        print(f"bench-prep: {e}\nthe run's source files are written by stage 01: run `make all` (or `make stages`) "
              "first", file=sys.stderr)
        return 2
    finally:
        shutil_rmtree(tmp)
    out = write_table(RunPaths(results_root(cfg, repo)), "bench_prep_runs", table)
    s = summarize_ratios(table["g_over_f"])
    print(f"g/f over {s['n']} runs: median {s['median']:.3f} (quartiles {s['q1']:.3f}-{s['q3']:.3f}, range "
          f"{s['min']:.3f}-{s['max']:.3f}); {s['n_at_target']} of {s['n']} at >= {s['target']:g}\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
