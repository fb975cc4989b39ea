"""Stage 04 — global production: the one module notebook ``04_global_production`` calls.

Every function takes the :class:`~glass_sm.stages.StageContext` (and what an earlier call returned), writes its
table through :func:`glass_sm.contract.write_table` or its figure through ``ctx.savefig``, and returns it; the
``*_text`` functions turn a returned table into the sentence the notebook prints. The engine is
:mod:`glass_sm.production` (tiles, Dask, resume); the file format is :mod:`glass_sm.product`.

Tables: ``production_timing`` (written by :func:`glass_sm.production.run_production`), ``04_self_check``,
``04_pixel_metrics``, ``04_truth_metrics`` (twin only), ``04_flag_fractions``, ``04_paper_scale_estimate``,
``04_zoom_agreement`` (runs with a ``zoom``).
Figures: ``04_tiles``, ``04_daily_maps``, ``04_annual_mean``, ``04_pixel_series``.
Beside the product: the STAC catalog ``product/catalog.json`` (:func:`write_catalog`, :mod:`glass_sm.catalog`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import cartopy.io.shapereader as shpreader
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.patches import Rectangle
from rasterio import features as rio_features
from rasterio.transform import from_origin

from glass_sm import catalog, product
from glass_sm import zoom as zoom_mod
from glass_sm.contract import read_table, write_table
from glass_sm.evaluation import metrics
from glass_sm.evaluation.aggregate import domain_mean
from glass_sm.figures import maps
from glass_sm.grid import NCOLS, NROWS, RES
from glass_sm.models.checkpoint import LoadedModel, load_checkpoint
from glass_sm.production import CubeTileSource, make_tiles, run_production, tile_memory_bytes
from glass_sm.stages import StageContext

__all__ = [
    "CONFIG_SECTIONS", "PAPER_PERIOD", "load_inputs", "checkpoint_text", "tile_layout", "tile_text", "plot_tiles",
    "produce", "timing", "production_rate", "production_text", "self_check", "self_check_text", "open_files",
    "encoding_summary", "write_catalog", "catalog_text", "catalog_table", "plot_daily_maps", "plot_annual_means",
    "central_pixel", "pixel_series", "pixel_metrics", "plot_pixel_series", "pixel", "truth_metrics", "truth_text",
    "flag_fractions", "bench", "bench_text", "bench_profile",
    "global_land_pixels", "paper_scale_estimate", "measured_rate", "paper_scale", "paper_scale_text",
    "zoom", "zoom_agreement", "zoom_text",
]

CONFIG_SECTIONS = ("run", "domain", "period", "data", "production", "figures", "zoom", "twin")
"""Parameter sections stage 04 reads (the product files also record the whole resolved configuration)."""

PAPER_PERIOD = (dt.date(1982, 1, 1), dt.date(2021, 12, 31))
"""First and last day of the paper's record."""

QUANTIZATION = 0.5 * product.SM_SCALE  #: largest int16 rounding error of ``sm``, m3 m-3


# ----------------------------------------------------------------------------------------------------------
# 1 The checkpoint, 2 tiles
# ----------------------------------------------------------------------------------------------------------
def load_inputs(ctx: StageContext) -> tuple[LoadedModel, CubeTileSource]:
    """The production checkpoint (``models/atlstm_final.pt``) and the cube, checked against each other.

    Raises
    ------
    glass_sm.models.CheckpointMismatchError
        The cube lacks a feature of the checkpoint, stores it in other units, or far from the training statistics.
    """
    lm = load_checkpoint(ctx.paths.checkpoint)
    source = CubeTileSource(ctx.paths.cube)
    source.check(lm)
    return lm, source


def checkpoint_text(lm: LoadedModel) -> str:
    """One line: model, hyper-parameters, window, features, SHA-256 prefix."""
    return (f"model '{lm.name}' {lm.hparams}: window {lm.window} days ({lm.window_mode}), {lm.n_features} "
            f"features; sha256 {lm.sha256[:16]}...; cube check passed")


def tile_layout(ctx: StageContext, lm: LoadedModel, source: CubeTileSource) -> dict:
    """How the grid is cut: ``tiles``, ``land_tiles`` (lists of :class:`~glass_sm.production.Tile`), ``mask``
    (bool land mask), ``land_pixels``, ``tile_size`` (cells) and ``memory_bytes`` (array memory per task, B)."""
    pc = ctx.cfg.production
    mask = source.land_mask()
    tiles = make_tiles(len(source.lat), len(source.lon), pc.tile_size)
    return {"tiles": tiles, "land_tiles": [t for t in tiles if mask[t.slices].any()], "mask": mask,
            "land_pixels": int(mask.sum()), "tile_size": pc.tile_size,
            "memory_bytes": tile_memory_bytes(pc.tile_size, lm.window, lm.n_features, pc.batch_size)}


def tile_text(layout: dict) -> str:
    """One line: tiles, tiles with land, land pixels, memory bound per task (MiB)."""
    size = layout["tile_size"]
    return (f"{len(layout['tiles'])} tiles of up to {size} x {size} cells, {len(layout['land_tiles'])} with land; "
            f"{layout['land_pixels']} land pixels; array memory per task <= {layout['memory_bytes'] / 2**20:.1f} MiB")


def plot_tiles(ctx: StageContext, layout: dict) -> plt.Figure:
    """Land mask with the production tiles (red: with land, grey: skipped); saved as ``04_tiles``."""
    land = set(layout["land_tiles"])
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.imshow(layout["mask"], cmap="Greens", vmin=0, vmax=1.5, interpolation="nearest")
    for t in layout["tiles"]:
        ax.add_patch(Rectangle((t.col0 - 0.5, t.row0 - 0.5), t.shape[1], t.shape[0], fill=False,
                               ec="C3" if t in land else "0.6", lw=1))
    ax.set_xlabel("column")
    ax.set_ylabel("row (north at top)")
    ax.set_title(f"land mask and production tiles — {ctx.data_label}")
    ctx.savefig(fig, "04_tiles")
    return fig


# ----------------------------------------------------------------------------------------------------------
# 3 Production
# ----------------------------------------------------------------------------------------------------------
def produce(ctx: StageContext, progress: bool = True) -> list[Path]:
    """Run (or resume) the tiled production; returns the daily year files (see
    :func:`glass_sm.production.run_production`).

    A finished year is re-produced only when its checkpoint, cube or value-changing production parameters differ
    from what its files record; each such year is announced by a :class:`~glass_sm.production.ProductionWarning`
    in the cell's output, and the ``reason`` column of :func:`timing` says why every year was produced.
    """
    return run_production(ctx.cfg, checkpoint_path=ctx.paths.checkpoint, progress=progress)


def timing(ctx: StageContext) -> pd.DataFrame:
    """The ``production_timing`` table: one row per year produced, measured, with the ``reason`` it was produced
    (``not produced yet``, ``resumed (...)``, ``checkpoint changed (...)``, ``cube changed (...)``, ``production
    parameters changed: ...``, ``production.overwrite is true``)."""
    return read_table(ctx.paths, "production_timing")


def production_rate(timing: pd.DataFrame) -> dict | None:
    """The measured end-to-end rate of the production call that computed the most; None when nothing was computed.

    Returns
    -------
    dict or None
        ``rate`` (pixel-days/s), ``cores``, ``scheduler``, ``torch_threads``, ``pixel_days`` (of every year in
        the table) and ``files`` (years).
    """
    done = timing[timing["computed_pixel_days"] > 0]
    if not len(done):
        return None
    if "run_pixel_days" in done:  # the production call that computed the most
        last_run = done.loc[done["run_pixel_days"].idxmax()]
        rate = last_run["run_pixel_days"] / last_run["run_wall_s"]
    else:  # a timing table written by an older version: per-year rates only
        rate = done["computed_pixel_days"].sum() / done["wall_s"].sum()
    return {"rate": float(rate), "cores": int(done["cores"].iloc[0]), "scheduler": str(done["scheduler"].iloc[0]),
            "torch_threads": int(done["torch_threads"].iloc[0]), "pixel_days": int(timing["pixel_days"].sum()),
            "files": len(timing)}


def production_text(rate: dict | None) -> str:
    """One line from :func:`production_rate`."""
    if rate is None:
        return "every year was already produced: nothing computed in this run's timing table"
    return (f"produced {rate['pixel_days']:,} pixel-days in {rate['files']} year files; computing ran at "
            f"{rate['rate']:,.0f} pixel-days/s end to end on {rate['cores']} cores ({rate['scheduler']} scheduler, "
            f"{rate['torch_threads']} torch thread(s) per task)")


def self_check(ctx: StageContext, lm: LoadedModel) -> pd.DataFrame | None:
    """The product at the pixel-days whose predictions stage 03 stored in the checkpoint (``extra['self_check']``);
    writes ``04_self_check``. None when the checkpoint carries none.

    ``abs_diff`` (m3 m-3) is ``|product - clip(prediction, 0, 1)|``: at most the int16 quantization when the
    production preprocessing is the one used in training.
    """
    check = lm.extra.get("self_check")
    if not check:
        return None
    sm = product.open_product(ctx.paths.product)
    try:
        got = [float(sm.sel(time=d, lat=la, lon=lo, method="nearest"))
               for d, la, lo in zip(check["date"], check["lat"], check["lon"])]
    finally:
        sm.close()
    table = pd.DataFrame({"date": check["date"], "lat": check["lat"], "lon": check["lon"],
                          "stage03_prediction": check["prediction"], "product": got})
    table["abs_diff"] = (table["product"] - table["stage03_prediction"].clip(0, 1)).abs()
    write_table(ctx.paths, "04_self_check", table)
    return table


def self_check_text(table: pd.DataFrame | None) -> str:
    """One line from :func:`self_check`."""
    if table is None:
        return "the checkpoint carries no self-check predictions"
    return (f"{len(table)} pixel-days: max |product - stage-03 prediction| = {table['abs_diff'].max():.2e} "
            f"m3 m-3 (int16 quantization: {QUANTIZATION:.0e})")


# ----------------------------------------------------------------------------------------------------------
# 4 The files, 5 daily maps, 6 annual means
# ----------------------------------------------------------------------------------------------------------
def open_files(ctx: StageContext) -> tuple[xr.Dataset, xr.Dataset]:
    """The daily record and the annual means as two lazy Datasets (close them when done)."""
    return product.open_record(ctx.paths.product), product.open_record(ctx.paths.product, annual=True)


def encoding_summary(path: str | Path) -> dict:
    """How ``sm`` is stored in one year file: scale, offset, fill value, units, dtype, chunks, zlib, and the
    file's ``source`` attribute."""
    keep = ("scale_factor", "add_offset", "_FillValue", "units", "standard_name")
    with xr.open_dataset(path, mask_and_scale=False) as raw:
        enc = raw["sm"]
        out = {k: (v.item() if hasattr(v, "item") and np.ndim(v) == 0 else v)
               for k, v in enc.attrs.items() if k in keep}
        out.update(dtype=str(enc.dtype), chunks=enc.encoding.get("chunksizes"), zlib=enc.encoding.get("zlib"),
                   source=raw.attrs["source"])
    return out


def write_catalog(ctx: StageContext) -> tuple[Path, dict]:
    """Write the STAC catalog of the product beside it, ``product/catalog.json`` (a collection of the daily files
    and one of the annual means, an item per file with extent, days, variables and SHA-256; relative hrefs), and
    validate it offline (:func:`glass_sm.catalog.validate_catalog`); returns its path and what was checked."""
    path = catalog.write_catalog(ctx.paths.product)
    return path, catalog.validate_catalog(path)


def catalog_text(ctx: StageContext, path: Path, checked: dict) -> str:
    """One line: where the catalog is (relative to the run folder) and how it was validated."""
    schemas = ", ".join(u.rsplit("/", 1)[-1] for u in checked["schemas"])
    extensions = ", ".join(u.split("/")[-3] for u in checked["extensions"])  # .../<name>/v1.0.0/schema.json
    return (f"{os.path.relpath(path, ctx.paths.root)}: {checked['collections']} collections, {checked['items']} "
            f"items; valid against the core STAC schemas pystac ships ({schemas}); extensions ({extensions}) "
            "checked structurally (offline); every asset exists with its recorded size")


def catalog_table(path: Path) -> pd.DataFrame:
    """One row per item of the catalog: collection, item, days, bbox, href (relative), size, SHA-256 prefix."""
    return catalog.catalog_summary(path)


def _extent(ctx: StageContext) -> tuple[float, float, float, float]:
    d = ctx.domain
    return (d.west, d.east, d.south, d.north)


def plot_daily_maps(ctx: StageContext, ds: xr.Dataset) -> plt.Figure:
    """The 15th of January, April, July and October of the last year (shared colour scale); ``04_daily_maps``."""
    time = ds.indexes["time"]
    last = int(time.year.max())
    days = [pd.Timestamp(f"{last}-{m:02d}-15") for m in (1, 4, 7, 10)]
    days = [d for d in days if d in time] or [time[-1]]
    vmin, vmax = float(ds["sm"].sel(time=days).min()), float(ds["sm"].sel(time=days).max())
    nrows = (len(days) + 1) // 2
    fig = plt.figure(figsize=(11, 3.2 * nrows))
    for i, d in enumerate(days):
        ax = maps.map_axes(fig, nrows, 2, i + 1, extent=_extent(ctx))
        maps.plot_map(ds["sm"].sel(time=d).load(), ax=ax, fig=fig, title=f"{d:%Y-%m-%d}", vmin=vmin, vmax=vmax)
    fig.suptitle(f"Daily surface soil moisture — {ctx.data_label}")
    ctx.savefig(fig, "04_daily_maps")
    return fig


def plot_annual_means(ctx: StageContext, ann: xr.Dataset) -> plt.Figure:
    """Map of the mean of the annual means and the area-weighted domain mean of each year; ``04_annual_mean``."""
    years = ann.indexes["time"].year
    fig = plt.figure(figsize=(11, 3.8))
    ax = maps.map_axes(fig, 1, 2, 1, extent=_extent(ctx))
    maps.plot_map(ann["sm"].mean("time").load(), ax=ax, fig=fig,
                  title=f"mean of the annual means {years.min()}-{years.max()}")
    ax2 = fig.add_subplot(1, 2, 2)
    series = domain_mean(ann["sm"]).load()
    ax2.plot(series.indexes["time"].year, series.values, "o-", ms=3)
    ax2.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax2.set_xlabel("year")
    ax2.set_ylabel("domain mean SM (m$^3$ m$^{-3}$)")
    ax2.set_title("annual domain mean")
    fig.suptitle(ctx.data_label)
    ctx.savefig(fig, "04_annual_mean")
    return fig


# ----------------------------------------------------------------------------------------------------------
# 7 A pixel through time, and the whole domain against the twin's truth
# ----------------------------------------------------------------------------------------------------------
def central_pixel(mask: np.ndarray) -> tuple[int, int]:
    """``(row, col)`` of the land cell nearest the centre of the grid (first in row-major order on ties)."""
    rows, cols = np.nonzero(mask)
    if not rows.size:
        raise ValueError("the land mask has no land cell")
    k = int(np.argmin((rows - mask.shape[0] / 2) ** 2 + (cols - mask.shape[1] / 2) ** 2))
    return int(rows[k]), int(cols[k])


def _truth(ctx: StageContext) -> xr.Dataset | None:
    """The twin's hidden truth (``data.truth_path``), or None on real data or when absent."""
    path = ctx.cfg.data.truth_path
    if ctx.is_twin and path is not None and Path(path).exists():
        return xr.open_dataset(path)
    return None


def pixel_series(ctx: StageContext, ds: xr.Dataset, source: CubeTileSource) -> pd.DataFrame:
    """Daily series of the :func:`central_pixel` of the land mask: ``product``, ``ERA5-Land`` and, on the twin,
    ``truth``, m3 m-3.

    Indexed by day; ``attrs`` hold the pixel's ``lat`` and ``lon`` (degrees).
    """
    r, c = central_pixel(source.land_mask())
    px = ds["sm"].isel(lat=r, lon=c).load()
    out = pd.DataFrame({"product": px.values}, index=pd.DatetimeIndex(px["time"].values, name="time"))
    out["ERA5-Land"] = source.ds["sm_era5land"].isel(lat=r, lon=c).sel(time=px.time).load().values
    truth = _truth(ctx)
    if truth is not None:
        with truth:
            out["truth"] = (truth["sm_true"].sel(lat=px.lat, lon=px.lon, method="nearest", tolerance=1e-6)
                            .sel(time=px.time).load().values)
    out.attrs.update(lat=float(px.lat), lon=float(px.lon))
    return out


def _scores(estimate, reference) -> dict:
    """r (dimensionless), ubRMSE and bias (m3 m-3) and the number of valid pairs ``n``."""
    s = metrics.summary(estimate, reference, ci=False)
    return {"r": s["r"], "ubrmse": s["ubrmse"], "bias": s["bias"], "n": s["n"]}


def pixel_metrics(series: pd.DataFrame) -> pd.DataFrame:
    """Scores of a :func:`pixel_series` over the whole period: product and ERA5-Land against the truth (when
    present), then the product against ERA5-Land; columns ``estimate, reference, r, ubrmse, bias, n, lat, lon``."""
    rows = []
    if "truth" in series:
        for name in ("product", "ERA5-Land"):
            rows.append({"estimate": name, "reference": "twin truth",
                         **_scores(series[name].values, series["truth"].values)})
    rows.append({"estimate": "product", "reference": "ERA5-Land",
                 **_scores(series["product"].values, series["ERA5-Land"].values)})
    return pd.DataFrame(rows).assign(lat=series.attrs["lat"], lon=series.attrs["lon"])


def plot_pixel_series(ctx: StageContext, series: pd.DataFrame, days: int = 730) -> plt.Figure:
    """The last ``days`` days of a :func:`pixel_series`; saved as ``04_pixel_series``."""
    last = series.loc[series.index >= series.index[-1] - pd.Timedelta(days=days)]
    fig, ax = plt.subplots(figsize=(11, 3.5))
    if "truth" in last:
        ax.plot(last.index, last["truth"], color="k", lw=1, label="truth (hidden)")
    ax.plot(last.index, last["ERA5-Land"], lw=0.8, label="ERA5-Land (input)")
    ax.plot(last.index, last["product"], lw=0.8, label="product (AtLSTM)")
    ax.set_ylabel("SM (m$^3$ m$^{-3}$)")
    ax.legend(ncol=3, loc="upper right")
    ax.set_title(f"Pixel ({series.attrs['lat']:.3f}°N, {series.attrs['lon']:.3f}°E), last two years — "
                 f"{ctx.data_label}")
    ctx.savefig(fig, "04_pixel_series")
    return fig


def pixel(ctx: StageContext, ds: xr.Dataset, source: CubeTileSource) -> pd.DataFrame:
    """Section 7 in one call: the central pixel's series, its scores (written as ``04_pixel_metrics``) and the
    ``04_pixel_series`` figure; returns the scores."""
    series = pixel_series(ctx, ds, source)
    table = pixel_metrics(series)
    write_table(ctx.paths, "04_pixel_metrics", table)
    plot_pixel_series(ctx, series)
    return table


def truth_metrics(ctx: StageContext, ds: xr.Dataset, source: CubeTileSource) -> pd.DataFrame | None:
    """Per year, the product (land pixels) and ERA5-Land against the twin's truth over all pixel-days:
    ``year, estimate, r, ubrmse, bias``; written as ``04_truth_metrics``. None on real data (no truth)."""
    truth = _truth(ctx)
    if truth is None:
        return None
    land = xr.DataArray(source.land_mask(), dims=("lat", "lon"), coords={"lat": ds.lat, "lon": ds.lon})
    rows = []
    with truth:
        for year in sorted(set(ds.indexes["time"].year)):
            sel = {"time": str(year)}
            est = ds["sm"].sel(sel).where(land).load()
            tru = truth["sm_true"].sel(sel).reindex_like(est, method="nearest", tolerance=1e-6).load()
            e5 = source.ds["sm_era5land"].sel(sel).load()
            for name, a in (("product", est.values), ("ERA5-Land", e5.values)):
                s = _scores(a.ravel(), tru.values.ravel())
                rows.append({"year": year, "estimate": name, "r": s["r"], "ubrmse": s["ubrmse"], "bias": s["bias"]})
    table = pd.DataFrame(rows)
    write_table(ctx.paths, "04_truth_metrics", table)
    return table


def truth_text(table: pd.DataFrame | None) -> str:
    """One line per estimate: its scores against the truth, averaged over the years of :func:`truth_metrics`."""
    if table is None:
        return "no truth on real data: see stage 05 for the in situ validation"
    mean = table.groupby("estimate")[["r", "ubrmse", "bias"]].mean()
    return "\n".join(f"{name:>9} vs twin truth, all land pixel-days, mean over years: r {s.r:.3f}, "
                     f"ubRMSE {s.ubrmse:.4f} m3 m-3, bias {s.bias:+.4f} m3 m-3" for name, s in mean.iterrows())


# ----------------------------------------------------------------------------------------------------------
# 8 Quality flags, 9 throughput, 10 the paper's scale
# ----------------------------------------------------------------------------------------------------------
def flag_fractions(ctx: StageContext, files: list[Path], source: CubeTileSource) -> pd.DataFrame:
    """Fraction of land pixel-days with each ``sm_flag`` bit over ``files``; written as ``04_flag_fractions``."""
    table = product.flag_fractions(files, source.land_mask())
    write_table(ctx.paths, "04_flag_fractions", table)
    return table


def bench(ctx: StageContext) -> tuple[pd.DataFrame | None, dict | None]:
    """The ``bench`` table of ``make bench`` and its ``machine`` record (cpu, cores, checkpoint); (None, None)
    when the benchmark has not run."""
    path = ctx.paths.table("bench")
    if not path.exists():
        return None, None
    return read_table(ctx.paths, "bench"), json.loads(path.with_suffix(".json").read_text())["machine"]


def bench_text(ctx: StageContext, machine: dict | None) -> str:
    """Where the benchmark was measured, or how to run it."""
    if machine is None:
        params = os.path.relpath(ctx.cfg.source_file) if ctx.cfg.source_file else "<params file>"
        return (f"no {ctx.paths.table('bench')}: run `make bench PARAMS={params}` to measure the throughput on "
                "this machine")
    text = f"measured on {machine['cpu']} ({machine['cores']} cores), model: {machine['checkpoint']}"
    if machine.get("cpu_flags") is not None:  # benchmarks from before the flags were recorded lack them
        text += (f"\nCPU flags: {' '.join(machine['cpu_flags']) or 'none of ' + 'avx2/avx512/amx'}; torch "
                 f"{machine.get('torch')}, oneDNN {machine.get('onednn')} (bf16: {machine.get('onednn_bf16')}), ATen "
                 f"{machine.get('aten_cpu_capability')}; threads {machine.get('threads')}")
    if machine.get("quick"):
        text += ("\nquick mode (make all): one repetition of (a)/(b) and fewer timed windows; `make bench` runs the "
                 "full benchmark (the median of three repetitions)")
    return text


def bench_profile(bench_table: pd.DataFrame | None) -> pd.DataFrame | None:
    """The profile rows (``p``) of ``make bench``: where the inference time of one window goes (1 thread), as
    ``part``, ``us_per_window`` and ``share``; None when the benchmark has not run or predates the profile."""
    if bench_table is None or "p" not in set(bench_table["key"]):
        return None
    rows = bench_table[bench_table["key"] == "p"]
    out = pd.DataFrame({"part": rows["quantity"].str.replace("profile: ", "", regex=False),
                        "value": rows["value"], "unit": rows["unit"], "share": rows["note"]})
    return out.reset_index(drop=True)


def global_land_pixels(south_limit: float = -60.0) -> dict:
    """Land cells of the global 0.05 deg grid: Natural Earth 1:50m land polygons rasterized at the cell centres
    (offline, from the shipped shapefiles).

    Returns
    -------
    dict
        ``all_land`` and ``land_north_of_<limit>S`` (Antarctica excluded), cells.
    """
    maps.offline_cartopy()
    path = shpreader.natural_earth(resolution="50m", category="physical", name="land")
    geoms = list(shpreader.Reader(path).geometries())
    mask = rio_features.rasterize(((g, 1) for g in geoms), out_shape=(NROWS, NCOLS),
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


def measured_rate(rate: dict | None, bench_table: pd.DataFrame | None, machine: dict | None) -> dict:
    """The rate the paper-scale estimate uses: ``make bench`` (c) when measured, else this run's production.

    Returns
    -------
    dict
        ``rate`` (pixel-days/s), ``cores``, ``rate_from`` (which measurement) and ``gpu_rate`` (pixel-days/s on
        one GPU from the benchmark's ``b-gpu`` row, or None).

    Raises
    ------
    RuntimeError
        Neither the benchmark nor this run's timing holds a measured rate.
    """
    keys = set(bench_table["key"]) if bench_table is not None else set()
    gpu = bench_table.loc[bench_table["key"] == "b-gpu", "value"] if "b-gpu" in keys else None
    out = {"gpu_rate": float(gpu.iloc[0]) if gpu is not None else None}
    if "c" in keys:
        c_row = bench_table[(bench_table["key"] == "c") & (bench_table["unit"] == "pixel-days/s")].iloc[0]
        return {**out, "rate": float(c_row["value"]), "cores": int(machine["cores"]), "rate_from": "make bench (c)"}
    if rate is not None:
        return {**out, "rate": rate["rate"], "cores": rate["cores"], "rate_from": "this run's production timing"}
    raise RuntimeError("no measured rate: run `make bench` or rerun production with production.overwrite: true")


def paper_scale(ctx: StageContext, rate: dict | None, bench_table: pd.DataFrame | None = None,
                machine: dict | None = None, land_counts: dict | None = None) -> pd.DataFrame:
    """The paper-scale estimate (:func:`paper_scale_estimate`) for each land definition of
    :func:`global_land_pixels`, at the :func:`measured_rate` and the bytes per pixel-day of the files just written;
    written as ``04_paper_scale_estimate`` (``rate_from`` in ``attrs``)."""
    land_counts = land_counts if land_counts is not None else global_land_pixels()
    days = (PAPER_PERIOD[1] - PAPER_PERIOD[0]).days + 1
    m = measured_rate(rate, bench_table, machine)
    sizes = product.measure_product_bytes(ctx.paths.product)
    table = pd.concat([paper_scale_estimate(n, days, m["rate"], m["cores"], sizes["bytes_per_pixel_day"],
                                            m["gpu_rate"]).assign(land_definition=name)
                       for name, n in land_counts.items()], ignore_index=True)
    write_table(ctx.paths, "04_paper_scale_estimate", table)
    table.attrs.update(rate_from=m["rate_from"], cores=m["cores"])
    return table


def paper_scale_text(table: pd.DataFrame) -> str:
    """One paragraph per land definition of :func:`paper_scale`."""
    lines = []
    for name, t in table.groupby("land_definition", sort=False):
        v = dict(zip(t["quantity"], t["value"]))
        gpu = f"{v['GPU-hours']:,.0f} GPU-hours; " if np.isfinite(v["GPU-hours"]) else "GPU-hours not measured; "
        lines.append(f"{name}: {v['land pixels']:,.0f} land pixels x {v['days']:,.0f} days = {v['pixel-days']:.3g} "
                     f"pixel-days; at {v['measured rate']:,.0f} pixel-days/s on {table.attrs.get('cores', '?')} "
                     f"cores ({table.attrs.get('rate_from', 'measured')}) that is {v['core-hours']:,.0f} core-hours "
                     f"({v['wall time on 1000 cores']:.1f} h on 1000 cores); {gpu}"
                     f"{v['daily product volume']:.2f} TB of daily files at {v['bytes per pixel-day']:.2f} B per "
                     "pixel-day")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# 11 The regional zoom (0.05 deg, same world, the run's checkpoint)
# ----------------------------------------------------------------------------------------------------------
def zoom(ctx: StageContext, progress: bool = True):
    """Make the 0.05 deg zoom (:func:`glass_sm.zoom.make_zoom`): its twin, cube and product, produced with this
    run's checkpoint; None when ``zoom.enabled`` is false."""
    return zoom_mod.make_zoom(ctx.cfg, ctx.paths.checkpoint, progress=progress)


def _zoom_pair(fine_path, coarse_path, name: str, times) -> tuple[xr.DataArray, xr.DataArray]:
    with xr.open_dataset(fine_path) as f, xr.open_dataset(coarse_path) as c:
        return f[name].sel(time=times).load(), c[name].sel(time=times).load()


def zoom_agreement(ctx: StageContext, z) -> pd.DataFrame | None:
    """The zoom aggregated onto the run's cells against the run itself (``04_zoom_agreement``), for the twin's
    truth (the same world sampled twice: what differs is sub-cell variability) and for the product (the same
    checkpoint applied to two samplings of its inputs). None when there is no zoom.

    Columns: ``quantity`` (``truth`` or ``product``) and those of :func:`glass_sm.zoom.zoom_agreement`.
    """
    if z is None:
        return None
    zc = z.cfg
    times = pd.date_range(zc.period.start, zc.period.end, freq="D")
    parts = []
    t_fine, t_coarse = _zoom_pair(z.paths.truth, ctx.paths.truth, "sm_true", times)
    parts.append(zoom_mod.zoom_agreement(t_fine, t_coarse).assign(quantity="truth"))
    fine_ds = product.open_record(z.paths.product)
    coarse_ds = product.open_record(ctx.paths.product)
    try:
        p_fine = fine_ds["sm"].sel(time=times).load()
        p_coarse = coarse_ds["sm"].sel(time=times).load()
    finally:
        fine_ds.close()
        coarse_ds.close()
    parts.append(zoom_mod.zoom_agreement(p_fine, p_coarse).assign(quantity="product"))
    table = pd.concat(parts, ignore_index=True)
    table = table[["quantity"] + [c for c in table.columns if c != "quantity"]]
    write_table(ctx.paths, "04_zoom_agreement", table)
    return table


def zoom_text(table: pd.DataFrame | None) -> str:
    """What the agreement table says, per quantity (means over the coarse cells the zoom covers)."""
    if table is None:
        return "no zoom in this run (zoom.enabled is false)"
    if table.empty:
        return "the zoom covers no coarse cell of the run to at least half its area: no agreement to report"
    lines = []
    for q, g in table.groupby("quantity", sort=False):
        lines.append(f"{q}: {len(g)} coarse cells; 0.05 deg mean {g['mean_fine'].mean():.3f} vs coarse "
                     f"{g['mean_coarse'].mean():.3f} m3 m-3 (bias {g['bias'].mean():+.3f}); daily r "
                     f"{g['r'].mean():.2f}, RMSE {g['rmse'].mean():.3f}; sub-cell spatial sd "
                     f"{g['sd_within'].mean():.3f} m3 m-3")
    return "\n".join(lines)
