"""Assemble the harmonized 0.05 deg analysis-ready cube (zarr) from the readers.

Steps (schema in ``book/design.md``):

0. Before any reading, each source's days are listed against the period (:mod:`glass_sm.data.coverage`): a run of
   missing days longer than ``cube.max_missing_run_days`` is an error naming the source and the days, unless the
   source is in ``cube.allow_missing_inputs`` (then its runs are recorded in the ``missing_inputs`` attribute).
1. AVHRR albedo (BSA/WSA shortwave) and LST from the GLASS HDF4 files, cloudy/fill/bad-QC values masked.
2. Gap filling in time, per pixel: linear interpolation across gaps of at most ``cube.max_gap_days`` days,
   longer gaps (and the period edges) from the pixel's smoothed day-of-year climatology
   :math:`\\bar x_p(d)` (31-day circular moving mean of the all-years mean by day of year), and where even that is
   missing, the domain mean of the day. A flag variable (``albedo_filled``, ``lst_filled``) keeps 1 where a value
   was filled, so models and users know which values were observed.
3. ERA5-Land swvl1: hourly/6-hourly -> daily mean at 0.1 deg -> bilinear to 0.05 deg.
4. GLASS-MODIS SM: mean of the fine pixels in each 0.05 deg cell (labels; NaN outside period.label_start..period.label_end,
   by default 2000-02-24..2020-12-31, and in gaps).
5. DEM and sand/clay/silt -> 0.05 deg.

The cube is written to a temporary sibling and renamed when complete (:func:`glass_sm.paths.atomic_write`), so an
interrupted build never leaves a cube that looks finished.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from glass_sm.data.coverage import SourceListing, allowed_runs_text, check_coverage
from glass_sm.grid import Domain, lat_lon_attrs
from glass_sm.io import era5land, glass_avhrr, glass_modis, static
from glass_sm.paths import RunPaths, atomic_write

__all__ = ["fill_gaps", "doy_climatology", "build_tiles", "read_tile_inputs", "harmonize", "assemble_tile",
           "build_cube", "INGEST_METHODS", "choose_ingest_method", "open_cube", "CUBE_ATTRS",
           "MAX_LOAD_BYTES", "maybe_load", "store_fingerprint", "dataset_fingerprint", "ZARR_METADATA_FILES"]

MAX_LOAD_BYTES = 1.5e9  #: arrays up to this size (bytes) are loaded into memory for fast numpy reductions

CUBE_ATTRS = {
    "albedo_bsa": dict(long_name="shortwave black-sky albedo (AVHRR, GLASS02B05), gaps filled",
                       standard_name="surface_albedo", units="1"),
    "albedo_wsa": dict(long_name="shortwave white-sky albedo (AVHRR, GLASS02B05), gaps filled",
                       standard_name="surface_albedo", units="1"),
    "lst": dict(long_name="land surface temperature (AVHRR, GLASS08B31), gaps filled",
                standard_name="surface_temperature", units="K"),
    "albedo_filled": dict(long_name="albedo value was gap-filled", units="1", flag_values=[0, 1],
                          flag_meanings="observed filled"),
    "albedo_composite_flag": dict(long_name="albedo from the composites: 0 on a composite's day, 1 interpolated "
                                            "linearly between two composites, 2 composite missing (gap-filled, "
                                            "see albedo_filled)", units="1", flag_values=[0, 1, 2],
                                  flag_meanings="composite_day between_composites composite_missing"),
    "lst_filled": dict(long_name="LST value was gap-filled", units="1", flag_values=[0, 1],
                       flag_meanings="observed filled"),
    "sm_era5land": dict(long_name="ERA5-Land volumetric soil water layer 1 (0-7 cm), daily mean, bilinear to the product grid",
                        standard_name="volume_fraction_of_condensed_water_in_soil", units="m3 m-3"),
    "sm_label": dict(long_name="GLASS-MODIS surface soil moisture aggregated to the product grid (training label)",
                     standard_name="volume_fraction_of_condensed_water_in_soil", units="m3 m-3"),
    "elevation": dict(long_name="terrain height above sea level", standard_name="height_above_mean_sea_level",
                      units="m"),
    "sand": dict(long_name="sand mass fraction of the topsoil", units="1"),
    "clay": dict(long_name="clay mass fraction of the topsoil", units="1"),
    "silt": dict(long_name="silt mass fraction of the topsoil", units="1"),
    "land_mask": dict(long_name="land mask", units="1", flag_values=[0, 1], flag_meanings="water land"),
}


def doy_climatology(values: np.ndarray, doy: np.ndarray, window: int = 31) -> np.ndarray:
    """Smoothed day-of-year climatology of ``values`` (time, ...) ignoring NaN.

    Returns an array (366, ...) : the mean of all values on each day of year (1..366 -> rows 0..365),
    smoothed by a circular moving mean of ``window`` days over the valid days-of-year.
    """
    values = np.asarray(values, dtype=np.float64)
    idx = np.asarray(doy) - 1
    shape = (366,) + values.shape[1:]
    s = np.zeros(shape)
    n = np.zeros(shape)
    valid = np.isfinite(values)
    np.add.at(s, idx, np.where(valid, values, 0.0))
    np.add.at(n, idx, valid)
    half = window // 2
    kernel = np.ones(window)
    pad_s = np.concatenate([s[-half:], s, s[:half]], axis=0)
    pad_n = np.concatenate([n[-half:], n, n[:half]], axis=0)
    ss = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="valid"), 0, pad_s)
    nn = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="valid"), 0, pad_n)
    with np.errstate(invalid="ignore", divide="ignore"):
        clim = ss / nn
    clim[nn == 0] = np.nan
    return clim


def fill_gaps(values: np.ndarray, times: pd.DatetimeIndex, max_gap_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Fill NaN gaps along axis 0 (time) of ``values`` (time, ...).

    Linear interpolation within gaps of at most ``max_gap_days`` consecutive missing days; the rest from the
    day-of-year climatology (:func:`doy_climatology`), then from the mean of the day over all pixels.

    Returns
    -------
    filled : ndarray float32, same shape, no NaN unless the input is all NaN
    flag : ndarray int8, 1 where a value was filled
    """
    v = np.asarray(values, dtype=np.float64)
    shape = v.shape
    flat = v.reshape(shape[0], -1)
    missing = ~np.isfinite(flat)
    out = flat.copy()
    t = np.arange(shape[0], dtype=np.float64)
    for j in np.flatnonzero(missing.any(axis=0)):
        m = missing[:, j]
        if m.all():
            continue
        # length of the NaN run each missing day belongs to
        starts = np.flatnonzero(m & ~np.r_[False, m[:-1]])
        ends = np.flatnonzero(m & ~np.r_[m[1:], False]) + 1
        run_len = np.zeros(len(m), dtype=int)
        for a, b in zip(starts, ends):
            inner = a > 0 and b < len(m)  # bounded by observations on both sides
            run_len[a:b] = (b - a) if inner else max_gap_days + 1
        short = m & (run_len <= max_gap_days)
        if short.any():
            out[short, j] = np.interp(t[short], t[~m], flat[~m, j])
    still = ~np.isfinite(out)
    if still.any():
        doy = np.asarray(times.dayofyear)
        clim = doy_climatology(flat, doy).reshape(366, -1)
        rows, cols = np.nonzero(still)
        out[rows, cols] = clim[doy[rows] - 1, cols]
        still = ~np.isfinite(out)
        for j in np.flatnonzero(still.any(axis=0)):  # per pixel, tile-independent: linear in time, edges held
            ok = np.isfinite(out[:, j])
            if ok.any():
                out[~ok, j] = np.interp(t[~ok], t[ok], out[ok, j])
        still = ~np.isfinite(out)
        if still.any():  # pixels without any value: the day's mean over the tile's pixels
            day_mean = np.nanmean(np.where(np.isfinite(out), out, np.nan), axis=1) if out.shape[1] else None
            rows, cols = np.nonzero(still)
            out[rows, cols] = day_mean[rows]
    return out.reshape(shape).astype(np.float32), missing.reshape(shape).astype(np.int8)


def _dates(cfg) -> pd.DatetimeIndex:
    """Every day of the period."""
    return pd.date_range(cfg.period.start, cfg.period.end, freq="D")


def _check_memory(domain: Domain, ntime: int, limit_gb: float = 8.0) -> None:
    """Refuse a tile whose ~10 float32 arrays of ``ntime`` days would exceed ``limit_gb`` GB."""
    gb = domain.size * ntime * 4 * 10 / 1e9
    if gb > limit_gb:
        raise MemoryError(
            f"one cube tile ({domain.nrows} x {domain.ncols} cells x {ntime} days) needs ~{gb:.1f} GB in memory "
            f"(> {limit_gb} GB): lower cube.build_tile"
        )


def build_tiles(domain: Domain, edge: int) -> list[Domain]:
    """Split ``domain`` into tiles of at most ``edge`` x ``edge`` cells (row-major), covering it exactly once."""
    return [
        Domain(domain.row0 + r, domain.col0 + c, min(edge, domain.nrows - r), min(edge, domain.ncols - c),
               domain.res)
        for r in range(0, domain.nrows, edge)
        for c in range(0, domain.ncols, edge)
    ]


def read_tile_inputs(cfg, domain: Domain, progress: bool = True) -> dict:
    """Read every input of one (lat, lon) tile through :mod:`glass_sm.io` (the tile-by-tile path).

    Returns
    -------
    dict
        ``albedo``: daily albedo Dataset (:func:`glass_sm.io.glass_avhrr.read_glass_albedo_daily`: ``albedo_bsa``,
        ``albedo_wsa``, ``composite_flag``, coordinate ``platform``); ``lst``, ``era5land`` (on the product grid),
        ``label``: ``(time, lat, lon)`` DataArrays; ``static``: the static Dataset. The day-major path
        (:func:`glass_sm.data.rechunk.cube_from_ingest`) builds the same dict from its intermediate store, and both
        pass it to :func:`harmonize`.
    """
    start, end = cfg.period.start, cfg.period.end
    d = cfg.data
    alb = glass_avhrr.read_glass_albedo_daily(d.avhrr_dir, start, end, domain, progress=progress,
                                              allow_gaps=True, qc=d.albedo_qc, qc_layer=d.albedo_qc_layer,
                                              cadence_days=d.albedo_cadence_days,
                                              sample_offset_days=d.albedo_sample_offset_days)
    lst = glass_avhrr.read_glass_lst(d.avhrr_dir, start, end, domain, progress=progress, qc=d.lst_qc,
                                     qc_layer=d.lst_qc_layer)
    e5 = era5land.read_era5land_swvl1(cfg.data.era5land_dir, start, end, domain=domain, progress=progress,
                                      allow_gaps="era5land" in cfg.cube.allow_missing_inputs)
    e5 = era5land.to_product_grid(e5, domain)
    label = glass_modis.read_glass_modis_sm(cfg.data.glass_modis_dir, start, end, domain, progress=progress,
                                            pattern=cfg.data.glass_modis_pattern, scale=cfg.data.glass_modis_scale,
                                            label_start=cfg.period.label_start, label_end=cfg.period.label_end)
    stat = static.read_static(cfg.data.static_dir, domain)
    return {"albedo": alb, "lst": lst, "era5land": e5, "label": label, "static": stat}


def assemble_tile(cfg, domain: Domain, progress: bool = True) -> xr.Dataset:
    """Read every input for one (lat, lon) tile through :mod:`glass_sm.io` and harmonize it (in memory):
    :func:`harmonize` of :func:`read_tile_inputs`.

    Gap filling works per pixel in time; its last fallback (the day's mean over pixels) uses the tile's pixels.
    """
    _check_memory(domain, len(_dates(cfg)))
    return harmonize(cfg, domain, read_tile_inputs(cfg, domain, progress))


def harmonize(cfg, domain: Domain, raw: dict) -> xr.Dataset:
    """Harmonize one tile's inputs (:func:`read_tile_inputs`' dict) into the cube's variables, in memory.

    Every line after reading is here, shared by the tile-by-tile path (:func:`assemble_tile`) and the day-major
    path (:func:`glass_sm.data.rechunk.cube_from_ingest`), so that both build the same cube. Gap filling works per
    pixel in time; its last fallback (the day's mean over pixels) uses the tile's pixels.
    """
    times = _dates(cfg)
    alb, lst, e5, label, stat = (raw[k] for k in ("albedo", "lst", "era5land", "label", "static"))

    def on_grid(arr: xr.DataArray) -> np.ndarray:
        arr = arr.reindex(time=times)  # days without a file -> NaN
        return arr.transpose("time", "lat", "lon").values.astype(np.float32)

    # albedo: daily values interpolated between the 8-day composites; NaN only where a composite is missing
    # (composite_flag 2), so albedo_filled counts real gaps, not the days between composites
    albedo_source = alb["composite_flag"].transpose("time", "lat", "lon").values.astype(np.int8)
    bsa, bsa_flag = fill_gaps(on_grid(alb["albedo_bsa"]), times, cfg.cube.max_gap_days)
    wsa, _ = fill_gaps(on_grid(alb["albedo_wsa"]), times, cfg.cube.max_gap_days)
    lst_f, lst_flag = fill_gaps(on_grid(lst), times, cfg.cube.max_gap_days)
    e5v = on_grid(e5)
    if np.isnan(e5v).any():  # ERA5-Land days missing (allowed gaps, NaN days) -> filled the same way
        e5v, _ = fill_gaps(e5v, times, cfg.cube.max_gap_days)
    lab = on_grid(label)
    lab[(times < pd.Timestamp(cfg.period.label_start)) | (times > pd.Timestamp(cfg.period.label_end))] = np.nan
    # cells without soil (sea, lakes, permanent ice: the static layers' NoData) have no soil moisture: every
    # dynamic variable NaN there (nothing filled), flags 0 (nothing was gap-filled), composite flag 2 (no value)
    sea = ~np.isfinite(stat["elevation"].values)
    if sea.any():
        for arr in (bsa, wsa, lst_f, e5v, lab):
            arr[:, sea] = np.nan
        for arr in (bsa_flag, lst_flag):
            arr[:, sea] = 0
        albedo_source[:, sea] = 2

    dims3 = ("time", "lat", "lon")
    ds = xr.Dataset(
        {
            "albedo_bsa": (dims3, bsa),
            "albedo_wsa": (dims3, wsa),
            "lst": (dims3, lst_f),
            "albedo_filled": (dims3, bsa_flag),
            "albedo_composite_flag": (dims3, albedo_source),
            "lst_filled": (dims3, lst_flag),
            "sm_era5land": (dims3, e5v),
            "sm_label": (dims3, lab),
            "elevation": (("lat", "lon"), stat["elevation"].values.astype(np.float32)),
            "sand": (("lat", "lon"), stat["sand"].values.astype(np.float32)),
            "clay": (("lat", "lon"), stat["clay"].values.astype(np.float32)),
            "silt": (("lat", "lon"), stat["silt"].values.astype(np.float32)),
            "land_mask": (("lat", "lon"), np.isfinite(stat["elevation"].values).astype(np.int8)),
        },
        coords={"time": times, "lat": domain.lat, "lon": domain.lon},
    )
    if "platform" in alb.coords:
        plat = alb["platform"].reindex(time=times).values.astype(object)
        ds = ds.assign_coords(platform=("time", np.where(pd.isna(plat), "none", plat).astype(str)))
        ds["platform"].attrs["long_name"] = "AVHRR platform"
    return ds


def _finish_attrs(ds: xr.Dataset, cfg, domain: Domain, coverage: pd.DataFrame | None = None,
                  method: str = "tile") -> xr.Dataset:
    """CF attributes of the variables, coordinates and the store (:data:`CUBE_ATTRS`); ``missing_inputs`` lists
    the allowed long runs of missing days of the ``coverage`` table (absent when there are none);
    ``ingest_method`` says which path read the sources (``'tile'`` or ``'day_major'``; not part of the cube's
    content: both paths build the same variables)."""
    for name, attrs in CUBE_ATTRS.items():
        if name in ds.variables:
            ds[name].attrs.update(attrs)
    lat_lon_attrs(ds)
    ds["time"].attrs.update(standard_name="time", long_name="time", axis="T")
    ds.attrs.update(
        title=f"glass-sm harmonized {domain.res:g} deg analysis-ready cube",
        source="glass-sm synthetic twin" if cfg.is_twin else "real data (see params)",
        Conventions="CF-1.8",
        history=f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d} built by glass_sm.data.cube.build_cube",
        references="Zhang et al. (2025), ESSD 17, 5181-5207, doi:10.5194/essd-17-5181-2025",
        geospatial_bounds=domain.bounds_str(),
        max_gap_days=cfg.cube.max_gap_days,
        ingest_method=method,
    )
    missing = allowed_runs_text(coverage) if coverage is not None else ""
    if missing:
        ds.attrs["missing_inputs"] = (
            f"{missing} (runs longer than cube.max_missing_run_days = {cfg.cube.max_missing_run_days} days, allowed "
            "by cube.allow_missing_inputs: albedo/LST filled from the climatology and flagged in *_filled, "
            "ERA5-Land filled, labels NaN; counted in stage 01's table input_coverage)")
    return ds


INGEST_METHODS = ("auto", "tile", "day_major")
"""Values of ``cube.ingest`` (:func:`build_cube`)."""


def choose_ingest_method(cfg, method: str | None = None) -> str:
    """``'tile'`` or ``'day_major'``: ``method`` (default ``cfg.cube.ingest``), with ``'auto'`` resolved by the rule
    measured in :func:`build_cube`'s docstring: the tile path for a domain of one build tile, day-major otherwise."""
    method = cfg.cube.ingest if method is None else method
    if method not in INGEST_METHODS:
        raise ValueError(f"cube.ingest must be one of {', '.join(INGEST_METHODS)}, got {method!r}")
    if method != "auto":
        return method
    return "tile" if len(build_tiles(Domain.from_config(cfg), cfg.cube.build_tile)) == 1 else "day_major"


def build_cube(cfg, progress: bool = True, path: str | os.PathLike | None = None,
               overwrite: bool = False, coverage: pd.DataFrame | None = None, method: str | None = None,
               client=None, listing=None) -> Path:
    """Read every input through :mod:`glass_sm.io`, harmonize to 0.05 deg and write ``data/cube.zarr``.

    Before any reading, each source's days are checked against the period
    (:func:`glass_sm.data.coverage.check_coverage`): a long run of missing days in a source not allowed by
    ``cube.allow_missing_inputs`` raises :class:`~glass_sm.data.coverage.InputCoverageError`.

    The domain is processed in (lat, lon) tiles of ``cube.build_tile`` cells (all days of a tile at once, since
    gap filling works along time), each written into its region of the zarr store, so memory is bounded by one
    tile whatever the domain; a domain of one tile is written in one go. Two ways to read the sources
    (``method``, default ``cube.ingest``), the same cube either way (every line after reading is
    :func:`harmonize`; tested, except the ``history`` and ``ingest_method`` attributes):

    ``'tile'``
        :func:`assemble_tile` per tile: every file of every source is opened once per tile (for the real
        global grid ~2,000 tiles x ~30,000 files). Memory: one tile x the period (~10 float32 arrays).
    ``'day_major'``
        :func:`glass_sm.data.ingest.ingest` reads each file once over the whole domain, in parallel on the Dask
        cluster of ``cube.scheduler_address`` / ``cube.n_workers`` (or ``client``), into the time-chunked
        ``data/ingest.zarr``, then :func:`glass_sm.data.rechunk.cube_from_ingest` rechunks it tile by tile
        (memory per task: one time block x the domain, then one tile x the period). The intermediate store is
        removed once the cube is complete (a killed ingest resumes from it).
    ``'auto'``
        :func:`choose_ingest_method`: ``'tile'`` when the domain is one build tile, else ``'day_major'``.
        Measured on the 2-core development machine (shared with other jobs), smoke twin (8 x 8 cells, 1998-2002,
        blocks of 8 days): one tile: tile 29 s, day-major 73 s in-process and 115 s on a 2-worker LocalCluster
        (the day-major path pays ~80 ms per (source, block) task: a directory walk of a year folder, the reader's
        setup, a zarr write); four tiles of 4 x 4: tile 100 s (every file read four times), day-major 100 s on 2
        workers. The tile path's cost grows with the number of tiles, the day-major path's does not (phase 2 is
        cheap), so day-major wins from a few tiles on and is the only workable path for the real global grid
        (~2,000 tiles); with one tile the tile path already reads each file once and wins.

    Parameters
    ----------
    cfg : glass_sm.config.Config
    progress : bool
        Show progress bars while reading the daily files.
    path : path-like, optional
        Output zarr store (default ``results/<run>/data/cube.zarr``).
    overwrite : bool
        Rebuild an existing cube.
    coverage : pandas.DataFrame, optional
        :func:`glass_sm.data.coverage.coverage_table` of ``cfg`` when already listed (listed here when None).
    listing : glass_sm.data.coverage.SourceListing, optional
        The run's source listing (stage 01 makes one for its coverage table); the coverage table and the
        day-major ingest's plan share it, so each folder is walked once (made here when None).
    method : {'auto', 'tile', 'day_major'}, optional
        How the sources are read (default ``cfg.cube.ingest``).
    client : distributed.Client or 'synchronous', optional
        The day-major path's cluster (default: from ``cfg.cube``, :func:`glass_sm.cluster.cluster_client`).

    Returns
    -------
    pathlib.Path of the zarr store; its attribute ``ingest_method`` names the path that ran.
    """
    path = Path(path) if path is not None else RunPaths.from_config(cfg).cube
    if path.exists() and not overwrite:
        return path
    method = choose_ingest_method(cfg, method)
    domain = Domain.from_config(cfg)
    tc, sc = cfg.cube.time_chunk, cfg.cube.space_chunk
    edge = cfg.cube.build_tile
    if edge % sc:
        raise ValueError(f"cube.build_tile ({edge}) must be a multiple of cube.space_chunk ({sc})")
    listing = SourceListing(cfg) if listing is None else listing.check(cfg)
    coverage = check_coverage(cfg, coverage, listing)  # before any reading
    if method == "day_major":
        from glass_sm.cluster import section_client  # noqa: PLC0415
        from glass_sm.data import ingest as _ingest  # noqa: PLC0415 (ingest and rechunk import this module)
        from glass_sm.data import rechunk as _rechunk  # noqa: PLC0415

        store = path.with_name(f".{path.stem}.ingest.zarr") if path != RunPaths.from_config(cfg).cube \
            else RunPaths.from_config(cfg).ingest
        with section_client(cfg.cube, client) as cl:
            cl = "synchronous" if cl is None else cl
            _ingest.ingest(cfg, store, client=cl, progress=progress, coverage=coverage, listing=listing)
            _rechunk.cube_from_ingest(cfg, store, path, client=cl, progress=progress, coverage=coverage)
        shutil.rmtree(store, ignore_errors=True)
        return path
    tiles = build_tiles(domain, edge)

    def encoding_of(ds: xr.Dataset) -> dict:
        t = min(tc, ds.sizes["time"])
        y, x = min(sc, domain.nrows), min(sc, domain.ncols)
        return {name: {"chunks": (t, y, x) if var.ndim == 3 else (y, x)} for name, var in ds.data_vars.items()}

    with atomic_write(path) as partial:
        if len(tiles) == 1:
            ds = _finish_attrs(assemble_tile(cfg, domain, progress), cfg, domain, coverage)
            ds.to_zarr(partial, mode="w", encoding=encoding_of(ds), consolidated=True)
        else:
            for k, tile in enumerate(tqdm(tiles, desc="cube tiles", disable=not progress, unit="tile")):
                ds = assemble_tile(cfg, tile, progress=False)
                if k == 0:  # lay out the whole store from the first tile: same variables, full coordinates
                    full = _empty_store(ds, domain)
                    full = _finish_attrs(full, cfg, domain, coverage)
                    full.to_zarr(partial, mode="w", encoding=encoding_of(full), consolidated=True, compute=False)
                rs, cs = tile.slices_in(domain)
                region = ds.drop_vars(["time", "platform"], errors="ignore").drop_vars(["lat", "lon"])
                region.to_zarr(partial, region={"lat": rs, "lon": cs}, mode="r+")
    return path


def _empty_store(tile: xr.Dataset, domain: Domain) -> xr.Dataset:
    """A lazy all-zero dataset over ``domain`` with the variables, dtypes and time axis of one assembled tile."""
    full = xr.Dataset(coords={"time": tile.time, "lat": domain.lat, "lon": domain.lon})
    if "platform" in tile.coords:
        full = full.assign_coords(platform=tile["platform"])
    for name, var in tile.data_vars.items():
        shape = (tile.sizes["time"],) + domain.shape if var.ndim == 3 else domain.shape
        full[name] = (var.dims, da.zeros(shape, dtype=var.dtype, chunks=-1))
    return full


def open_cube(path: str | os.PathLike) -> xr.Dataset:
    """Open a cube written by :func:`build_cube` (lazily, with dask)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"cube not found: {path} (run stage 01 / glass_sm.data.cube.build_cube first)")
    return xr.open_zarr(path, consolidated=True)


def maybe_load(obj, max_bytes: float = MAX_LOAD_BYTES):
    """``obj.load()`` when it fits in ``max_bytes`` (demo and smoke runs: fast numpy reductions), else ``obj``
    unchanged (lazy, dask: a large domain is reduced chunk by chunk)."""
    return obj.load() if obj.nbytes <= max_bytes else obj


# ----------------------------------------------------------------------------------------------------------
# Identity of a cube (recorded by the product, so that finished years are redone on another cube)
# ----------------------------------------------------------------------------------------------------------
ZARR_METADATA_FILES = frozenset({".zmetadata", ".zgroup", ".zarray", ".zattrs", "zarr.json"})


def store_fingerprint(path: str | os.PathLike) -> str:
    """A cheap fingerprint of a zarr store (a folder), 64 hex digits; *not* a content hash.

    SHA-256 over, in sorted order of relative path, the content of each metadata file (:data:`ZARR_METADATA_FILES`:
    consolidated ``.zmetadata`` or ``zarr.json`` and the per-array ones) and the path and size of every other
    (chunk) file. Rebuilding the cube from other inputs changes chunk sizes (compressed) or metadata; copying the
    store does not (file times are not read). A chunk rewritten in place with other values of the same compressed
    size would go unnoticed; reading every chunk would cost as much as the production's own reads.
    """
    root = Path(path)
    entries = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            full = os.path.join(dirpath, name)
            entries.append((os.path.relpath(full, root).replace(os.sep, "/"), full, name))
    h = hashlib.sha256()
    for rel, full, name in sorted(entries):
        if name in ZARR_METADATA_FILES:
            with open(full, "rb") as fh:
                h.update(f"{rel}\tsha256:{hashlib.sha256(fh.read()).hexdigest()}\n".encode())
        else:
            h.update(f"{rel}\t{os.path.getsize(full)}\n".encode())
    return h.hexdigest()


def dataset_fingerprint(ds: xr.Dataset) -> str:
    """SHA-256 of an in-memory Dataset's variables (names, dtypes, shapes, values) and attributes."""
    h = hashlib.sha256(repr(sorted(ds.attrs.items())).encode())
    for name in sorted(map(str, ds.variables)):
        v = ds[name]
        h.update(f"{name}\t{v.dtype}\t{v.dims}\t{v.shape}\t{sorted(v.attrs.items())!r}\n".encode())
        h.update(np.ascontiguousarray(v.values).tobytes())
    return h.hexdigest()
