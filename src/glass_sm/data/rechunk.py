"""Phase 2 of the day-major ingest: the cube from the time-chunked intermediate store, tile column by tile column.

:func:`glass_sm.data.ingest.ingest` (phase 1) writes every source's blocks into ``data/ingest.zarr``, chunked
``(block days, build_tile, build_tile)``. Here, for each (lat, lon) tile of ``cube.build_tile`` cells
(:func:`glass_sm.data.cube.build_tiles`, the tile path's tiles), one task reads the tile's column (all days; each
intermediate chunk read once), interpolates the albedo composites to days
(:func:`~glass_sm.io.glass_avhrr.composites_to_daily`, as :func:`~glass_sm.io.glass_avhrr.read_glass_albedo_daily`
does), reads the tile's static layers from their files (on the tile's window, as the tile path does: GDAL's area
average over another window differs in the last float bit) and harmonizes it with
:func:`glass_sm.data.cube.harmonize`, the very function of the tile path. Tiles write disjoint regions of the cube
store (``build_tile`` is a multiple of ``space_chunk``), laid out first as the tile path does; the store is renamed
into place when complete. ``rechunker`` 0.5.4 does not run on zarr 3, so the rechunk is this bounded zarr read.
Memory per task: one tile column over the period (the tile path's bound, :func:`glass_sm.data.cube.assemble_tile`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from tqdm import tqdm

from glass_sm.cluster import run_tasks, section_client
from glass_sm.data import cube as _cube
from glass_sm.data.coverage import check_coverage
from glass_sm.data.ingest import ALBEDO_VARS, DAILY_VARS, _composites, _days, _reader_params
from glass_sm.grid import Domain
from glass_sm.io import glass_avhrr, glass_modis, static
from glass_sm.io.errors import EmptyDataError
from glass_sm.paths import atomic_write

__all__ = ["cube_from_ingest", "tile_inputs_from_store", "cube_tile"]


def _check_complete(store: Path, cfg) -> dict:
    if not store.exists():
        raise FileNotFoundError(f"intermediate store not found: {store} (run glass_sm.data.ingest.ingest first)")
    g = zarr.open_group(str(store), mode="r")
    manifest = g.attrs.get("manifest") or {}
    domain = Domain.from_config(cfg)
    want = {"start": str(_days(cfg)[0].date()), "end": str(_days(cfg)[-1].date()),
            "domain": [domain.row0, domain.col0, domain.nrows, domain.ncols, domain.res],
            "params": json.loads(json.dumps(_reader_params(cfg)))}
    diff = [k for k, v in want.items() if manifest.get(k) != v]
    if diff:
        raise ValueError(f"{store}: ingested for other {', '.join(diff)} than this run (rerun ingest)")
    B, Bc = int(manifest["block_days"]), int(manifest["composite_chunk"])
    nd, nc = len(_days(cfg)), int(manifest["composites"][2])
    expected = sum(-(-n // s) for n, s in ((nc, Bc), (nd, B), (nd, B), (nd, B)))
    done = len(list((store / "_done").glob("*.json")))
    if done != expected:
        raise RuntimeError(f"{store}: {done} of {expected} blocks ingested (rerun glass_sm.data.ingest.ingest to "
                           "finish it)")
    return manifest


def _empty(what: str, where, variable: str, tile: Domain) -> EmptyDataError:
    return EmptyDataError(f"has no valid value in {tile.bounds_str()} on any {what} of the period (day-major "
                          "ingest; the tile path's reader raises the same)", file=where, variable=variable)


def tile_inputs_from_store(cfg, store: str | os.PathLike, domain: Domain, tile: Domain) -> dict:
    """:func:`glass_sm.data.cube.read_tile_inputs`' dict for ``tile``, from the intermediate store (plus the tile's
    static layers, read from their files on the tile's window as the tile path does)."""
    g = zarr.open_group(str(store), mode="r")
    manifest = g.attrs.get("manifest") or {}
    rs, cs = tile.slices_in(domain)
    days, comps = _days(cfg), _composites(cfg)
    d = cfg.data
    coords = {"lat": tile.lat, "lon": tile.lon}
    comp = xr.Dataset({v: (("time", "lat", "lon"), g[v][:, rs, cs]) for v in ALBEDO_VARS},
                      coords={"time": comps, **coords})
    if not np.isfinite(comp["albedo_bsa"].values).any():
        raise _empty("composite", d.avhrr_dir, "ABD_BSA_shortwave", tile)
    cadence = glass_avhrr.CADENCE_DAYS["albedo"] if d.albedo_cadence_days is None else int(d.albedo_cadence_days)
    alb = glass_avhrr.composites_to_daily(comp, days, sample_offset_days=d.albedo_sample_offset_days,
                                          max_span_days=cadence)
    out = {"albedo": alb}
    for key, name in DAILY_VARS.items():
        out[key] = xr.DataArray(g[name][:, rs, cs], dims=("time", "lat", "lon"), coords={"time": days, **coords},
                                name=name)
    if not np.isfinite(out["lst"].values).any():
        raise _empty("day", d.avhrr_dir, "LST", tile)
    if not np.isfinite(out["era5land"].values).any():
        raise _empty("day", d.era5land_dir, "swvl1", tile)
    if manifest.get("n_label_files") and not np.isfinite(out["label"].values).any():
        raise _empty("day", d.glass_modis_dir, glass_modis._VARIABLE.format(band=1), tile)
    out["static"] = static.read_static(d.static_dir, tile)
    return out


def cube_tile(cfg, store: str, domain: Domain, tile: Domain, partial: str | None) -> xr.Dataset | None:
    """Phase-2 task: harmonize ``tile`` from the store; write its region into the cube store ``partial`` (then
    return None), or return it (``partial`` None)."""
    ds = _cube.harmonize(cfg, tile, tile_inputs_from_store(cfg, store, domain, tile))
    if partial is None:
        return ds
    rs, cs = tile.slices_in(domain)
    region = ds.drop_vars(["time", "platform"], errors="ignore").drop_vars(["lat", "lon"])
    region.to_zarr(partial, region={"lat": rs, "lon": cs}, mode="r+")
    return None


def cube_from_ingest(cfg, store: str | os.PathLike, path: str | os.PathLike, *, client=None,
                     progress: bool = True, coverage: pd.DataFrame | None = None) -> Path:
    """Phase 2: build the cube from the intermediate store, tile column by tile column (bounded memory).

    Parameters
    ----------
    cfg : glass_sm.config.Config
    store : path-like
        The store written by :func:`ingest` (every block done).
    path : path-like
        The cube (zarr), written to a temporary sibling and renamed when complete.
    client : distributed.Client or 'synchronous', optional
        Where the tile tasks run (default: the cluster of ``cfg.cube``).
    progress : bool
        A tqdm bar over the tiles.
    coverage : pandas.DataFrame, optional
        The coverage table (for the cube's ``missing_inputs`` attribute; listed here when None).

    Returns
    -------
    pathlib.Path of the cube.
    """
    store, path = Path(store), Path(path)
    _check_complete(store, cfg)
    domain = Domain.from_config(cfg)
    edge, sc, tc = cfg.cube.build_tile, cfg.cube.space_chunk, cfg.cube.time_chunk
    if edge % sc:
        raise ValueError(f"cube.build_tile ({edge}) must be a multiple of cube.space_chunk ({sc})")
    coverage = check_coverage(cfg, coverage)
    tiles = _cube.build_tiles(domain, edge)
    _cube._check_memory(tiles[0], len(_days(cfg)))

    def encoding_of(ds: xr.Dataset) -> dict:
        t = min(tc, ds.sizes["time"])
        y, x = min(sc, domain.nrows), min(sc, domain.ncols)
        return {name: {"chunks": (t, y, x) if var.ndim == 3 else (y, x)} for name, var in ds.data_vars.items()}

    with atomic_write(path) as partial:
        first = cube_tile(cfg, str(store), domain, tiles[0], None)
        if len(tiles) == 1:
            ds = _cube._finish_attrs(first, cfg, domain, coverage, method="day_major")
            ds.to_zarr(partial, mode="w", encoding=encoding_of(ds), consolidated=True)
            return path
        full = _cube._finish_attrs(_cube._empty_store(first, domain), cfg, domain, coverage, method="day_major")
        full.to_zarr(partial, mode="w", encoding=encoding_of(full), consolidated=True, compute=False)
        rs, cs = tiles[0].slices_in(domain)
        region = first.drop_vars(["time", "platform"], errors="ignore").drop_vars(["lat", "lon"])
        region.to_zarr(partial, region={"lat": rs, "lon": cs}, mode="r+")
        del first, region
        bar = tqdm(total=len(tiles), initial=1, desc="cube tiles (day-major)", unit="tile", disable=not progress)
        try:
            with section_client(cfg.cube, client) as cl:
                run_tasks(cl, _tile_task, tiles[1:], (cfg, str(store), domain, str(partial)), "glass-sm-cube",
                          bar, lambda res: None)
        finally:
            bar.close()
    return path


def _tile_task(cfg, tile: Domain, store: str, domain: Domain, partial: str) -> None:
    cube_tile(cfg, store, domain, tile, partial)
