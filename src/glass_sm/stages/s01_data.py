"""Stage 01 — data preparation: the one module notebook ``01_data_preparation`` calls.

Sources -> harmonized 0.05 deg cube: the synthetic twin's files when ``twin.enabled`` (:func:`make_twin`), each
source's days listed against the period before any reading (:func:`input_coverage`: a long run of missing days is
an error unless allowed), the cube built through the readers (:func:`build_cube`), and the diagnostics of what went
in: gaps (:func:`gap_fractions`), ERA5-Land's wet bias against the twin's truth (:func:`era5_bias`), the AVHRR
platform transitions (:func:`observed_anomaly`). Every function takes the :class:`~glass_sm.stages.StageContext`
(and what an earlier call returned), writes its table through :func:`glass_sm.contract.write_table` or its figure
through ``ctx.savefig``, and returns it; the ``*_text`` functions turn a returned table or dict into the sentences
the notebook shows. :func:`run` does the whole stage in order.

Tables: ``input_coverage``, ``gap_fractions``, ``era5_bias`` (twin only). Figures: ``01_input_maps``,
``01_pixel_series``, ``01_era5_wet_bias`` (twin only), ``01_sensor_transitions``.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from glass_sm import twin
from glass_sm.contract import write_table
from glass_sm.data import cube
from glass_sm.data.coverage import SourceListing, check_coverage, coverage_table
from glass_sm.evaluation.aggregate import domain_mean, domain_mean_series
from glass_sm.evaluation.breaks import anomalies
from glass_sm.figures import maps
from glass_sm.figures.style import SM_CMAP
from glass_sm.platforms import transition_dates
from glass_sm.stages import StageContext

__all__ = [
    "CONFIG_SECTIONS", "make_twin", "twin_files", "inputs_text", "label_retrieval", "labels_text", "list_sources",
    "input_coverage", "coverage_text", "build_cube", "ingest_text", "open_truth", "cube_summary", "map_day",
    "plot_input_maps", "centre_pixel", "plot_pixel_series", "gap_fractions", "era5_bias", "era5_bias_stats",
    "era5_bias_text", "plot_era5_bias", "observed_anomaly", "plot_sensor_transitions", "platforms_seen",
    "summary_text", "run",
]

CONFIG_SECTIONS = ("run", "domain", "period", "twin", "data", "cube", "figures")
"""Parameter sections stage 01 reads: the twin (``run.seed``, ``domain``, ``period``, ``twin``, ``data`` paths),
the cube (``cube``, ``period``, ``data``) and its figures (``figures``)."""

ANOMALY_WINDOW = 30  #: running mean of the platform-transition anomalies, days

_MAP_PANELS = (("albedo_wsa", "white-sky albedo", "1"), ("lst", "LST", "K"),
               ("sm_era5land", "ERA5-Land SM", "m3 m-3"), ("sm_label", "GLASS-MODIS SM (label)", "m3 m-3"),
               ("elevation", "elevation", "m"), ("sand", "sand", "1"))


# ----------------------------------------------------------------------------------------------------------
# 1 The synthetic twin, 2 the cube
# ----------------------------------------------------------------------------------------------------------
def make_twin(ctx: StageContext, progress: bool = True) -> dict | None:
    """Write the synthetic twin's input files when ``twin.enabled`` (skipped when its manifest matches).

    Returns
    -------
    dict or None
        :func:`glass_sm.twin.generate_twin`'s files by kind, ``truth``, ``manifest`` and ``regenerated``; None
        when the twin is disabled (real data).
    """
    if not ctx.cfg.twin.enabled:
        return None
    return twin.generate_twin(ctx.cfg, progress=progress)


def twin_files(written: dict | None) -> pd.DataFrame:
    """One row per kind of twin file: ``kind``, ``files`` (count), ``first`` (name of the first file)."""
    rows = []
    for kind, value in (written or {}).items():
        if kind == "regenerated":
            continue
        paths = value if isinstance(value, list) else [value]
        rows.append({"kind": kind, "files": len(paths), "first": Path(paths[0]).name if paths else ""})
    return pd.DataFrame(rows, columns=["kind", "files", "first"])


def inputs_text(ctx: StageContext, written: dict | None) -> str:
    """Where the inputs come from: the twin (written now or reused) or the real-data folders."""
    if written is None:
        return f"Twin disabled: reading real data from `{Path(ctx.cfg.data.avhrr_dir).parent}`."
    n = int(twin_files(written)["files"].sum())
    how = "written now" if written["regenerated"] else "reused (its manifest matches the parameters)"
    return f"Synthetic twin {how}: {n} files under `{Path(written['manifest']).parent}`."


def label_retrieval(ctx: StageContext, written: dict | None) -> dict | None:
    """How the twin made its GLASS-MODIS-like labels (``twin.labels``); None on real data.

    Parameters
    ----------
    written : dict or None
        :func:`make_twin`'s return value (None: real data).

    Returns
    -------
    dict or None
        ``retrieval``: ``label_retrieval.json`` (:func:`glass_sm.twin.labels.write_retrieval_info`: stations,
        station-days, features, hyper-parameters, ``training_fit_vs_stations``); ``truth_plus_noise``:
        ``mode`` and ``label_noise`` (m3 m-3).

    Raises
    ------
    FileNotFoundError
        ``twin.labels`` is ``retrieval`` and the twin wrote no ``label_retrieval.json`` (a period ending before
        ``period.label_start`` has no labels at all).
    """
    cfg = ctx.cfg
    if written is None:
        return None
    if cfg.twin.labels != "retrieval":
        return {"mode": cfg.twin.labels, "label_noise": cfg.twin.label_noise}
    paths = written.get("label_retrieval") or []
    if not paths or not Path(paths[0]).exists():
        raise FileNotFoundError(f"{twin.retrieval_info_path(cfg)}: the twin's label retrieval report is missing "
                                "(twin.labels: retrieval)")
    return json.loads(Path(paths[0]).read_text())


def labels_text(info: dict | None) -> str:
    """One paragraph on how the labels were made (from :func:`label_retrieval`)."""
    if info is None:
        return "Labels: the real GLASS-MODIS SM files."
    if info["mode"] != "retrieval":
        return (f"Labels (twin, ablation `truth_plus_noise`): the truth of each pixel's cell + N(0, "
                f"{info['label_noise']:g}) m3 m-3 per pixel.")
    fit, hp = info["training_fit_vs_stations"], info["hyperparameters"]
    return (f"Labels (twin, `retrieval`, as GLASS-MODIS SM is made): XGBoost ({hp['num_boost_round']} rounds, depth "
            f"{hp['max_depth']}) trained on {info['station_days']} station-days of {info['n_stations']} stations "
            f"({info['training_days'][0]}..{info['training_days'][1]}) from {', '.join(info['features'])}; "
            f"fit against the station values: RMSE {fit['rmse']:.3f} m3 m-3, R² {fit['r2']:.2f} (in-sample; "
            "the labels' accuracy against the truth is measured in stage 02).")


_SOURCE_NAMES = {"albedo": "Albedo", "lst": "LST", "era5land": "ERA5-Land", "glass_modis": "GLASS-MODIS labels"}


def list_sources(ctx: StageContext) -> SourceListing:
    """The run's source folders, to be listed once for the coverage table and the cube's ingest
    (:class:`~glass_sm.data.coverage.SourceListing`: each folder is walked the first time it is needed). Make it
    after the twin is written: a listing is the folders' state when made."""
    return SourceListing(ctx.cfg)


def input_coverage(ctx: StageContext, listing: SourceListing | None = None) -> pd.DataFrame:
    """Each source's days against the period, listed before any reading (:mod:`glass_sm.data.coverage`).
    ``listing``: :func:`list_sources` (listed here when None).

    The table is written first, then checked: a source that lacks a run of more than ``cube.max_missing_run_days``
    days and is not in ``cube.allow_missing_inputs`` raises
    :class:`~glass_sm.data.coverage.InputCoverageError` naming it, the days and how to allow them.

    Returns
    -------
    pandas.DataFrame
        Table ``input_coverage``: one row per source (``albedo``, ``lst``, ``era5land``, ``glass_modis``,
        ``static``) with the days expected and present, the missing runs longer than the limit (count, days,
        first and last days), ``allowed`` and ``status``.
    """
    table = coverage_table(ctx.cfg, listing=listing)
    write_table(ctx.paths, "input_coverage", table)
    return check_coverage(ctx.cfg, table)


def coverage_text(table: pd.DataFrame) -> str:
    """Markdown bullets from :func:`input_coverage`'s table: what each source has, and what is filled."""
    lines = []
    for r in table[table["source"] != "static"].itertuples():
        unit = "composites" if r.cadence_days > 1 else "days"
        if r.status == "none expected":
            lines.append(f"* {_SOURCE_NAMES[r.source]}: none expected in the period ({r.what}).")
            continue
        line = f"* {_SOURCE_NAMES[r.source]}: {r.days_present} of {r.days_expected} {unit} {r.first_day}..{r.last_day}"
        if r.status == "short gaps":
            line += f", the {r.days_missing} missing in runs of at most {r.longest_run_days} days"
        elif r.long_runs:
            line += (f"; {r.long_run_days} days in {r.long_runs} run(s) longer than the limit, "
                     f"{'allowed by cube.allow_missing_inputs' if r.allowed else 'not allowed'}: {r.long_run_list}")
        lines.append(line + ".")
    static = table[table["source"] == "static"]
    if not static.empty:
        lines.append(f"* Static {static['what'].iloc[0]}: present.")
    return "\n".join(lines)


def build_cube(ctx: StageContext, progress: bool = True, coverage: pd.DataFrame | None = None,
               listing: SourceListing | None = None) -> xr.Dataset:
    """Build ``data/cube.zarr`` from the sources (always rebuilt: the stage runs only when stale) and open it.

    ``coverage``: :func:`input_coverage`'s table (the sources are listed again when None); ``listing``: the
    :func:`list_sources` it was made from (the day-major ingest plans from it: each folder is walked once). The
    build refuses long runs of missing days that are not allowed before reading anything. The sources are read
    tile by tile or day-major (``cube.ingest``, :func:`glass_sm.data.cube.choose_ingest_method`); the path that ran
    is the cube's attribute ``ingest_method`` (the cube is the same either way). ``progress``: the readers' bars
    (tile path) or the ingest's bar over blocks with files/s and MB/s (day-major).

    Returns
    -------
    xarray.Dataset
        The cube, lazily (dask), with the variables of :data:`glass_sm.data.cube.CUBE_ATTRS`.
    """
    return cube.open_cube(cube.build_cube(ctx.cfg, progress=progress, path=ctx.paths.cube, overwrite=True,
                                          coverage=coverage, listing=listing))


def open_truth(ctx: StageContext) -> xr.DataArray | None:
    """The twin's hidden true soil moisture ``sm_true`` (time, lat, lon), m3 m-3; None on real data."""
    if not ctx.is_twin:
        return None
    return xr.open_dataset(ctx.cfg.data.truth_path)["sm_true"]


def ingest_text(ds: xr.Dataset) -> str:
    """One sentence: which path read the sources into the cube (its ``ingest_method`` attribute)."""
    method = ds.attrs.get("ingest_method", "tile")
    how = {"tile": "tile by tile (every file read once per build tile)",
           "day_major": "day-major (each file read once over the whole domain, then rechunked; glass_sm.data.ingest)"}
    return f"The sources were read {how.get(method, method)} (`cube.ingest`; the cube is the same either way)."


def cube_summary(ds: xr.Dataset) -> pd.DataFrame:
    """Units, dimensions, minimum and maximum of every numeric variable of the cube (index: variable name)."""
    names = [v for v in ds.data_vars if np.issubdtype(ds[v].dtype, np.number)]
    return pd.DataFrame(
        {
            "units": [ds[v].attrs.get("units", "") for v in names],
            "dims": [" x ".join(ds[v].dims) for v in names],
            "min": [float(ds[v].min()) for v in names],
            "max": [float(ds[v].max()) for v in names],
        },
        index=names,
    )


# ----------------------------------------------------------------------------------------------------------
# 3 Input maps, 4 a pixel through time
# ----------------------------------------------------------------------------------------------------------
def map_day(cfg) -> pd.Timestamp:
    """The day of the input maps: 15 July of the first full label year, clipped to the period."""
    day = pd.Timestamp(f"{max(cfg.period.label_start.year + 1, cfg.period.start.year)}-07-15")
    return min(max(day, pd.Timestamp(cfg.period.start)), pd.Timestamp(cfg.period.end))


def _extent(ctx: StageContext) -> tuple[float, float, float, float]:
    """(west, east, south, north) of the run's domain, degrees."""
    d = ctx.domain
    return d.west, d.east, d.south, d.north


def plot_input_maps(ctx: StageContext, ds: xr.Dataset, day: pd.Timestamp | None = None) -> plt.Figure:
    """Every model input on one day (:func:`map_day` by default) on the 0.05 deg grid: ``01_input_maps``."""
    day = map_day(ctx.cfg) if day is None else pd.Timestamp(day)
    fig = plt.figure(figsize=(11, 6.5))
    for i, (v, title, units) in enumerate(_MAP_PANELS):
        da = ds[v].sel(time=day) if "time" in ds[v].dims else ds[v]
        ax = maps.map_axes(fig, 2, 3, i + 1, extent=_extent(ctx))
        maps.plot_map(da.load(), ax=ax, fig=fig, title=title, units=units,
                      cmap=SM_CMAP if units == "m3 m-3" else "viridis")
    fig.suptitle(f"Inputs on {day:%Y-%m-%d} — {ctx.data_label}")
    ctx.savefig(fig, "01_input_maps")
    return fig


def centre_pixel(ds: xr.Dataset) -> tuple[int, int]:
    """(row, column) of the cube's centre cell."""
    return ds.sizes["lat"] // 2, ds.sizes["lon"] // 2


def plot_pixel_series(ctx: StageContext, ds: xr.Dataset, truth: xr.DataArray | None = None) -> plt.Figure:
    """Every variable of the centre pixel through time, filled values marked, against the truth: ``01_pixel_series``."""
    r, c = centre_pixel(ds)
    px = ds.isel(lat=r, lon=c).load()
    fig, axes = plt.subplots(4, 1, figsize=(11, 8), sharex=True)
    for ax, var, flag, label in ((axes[0], "albedo_wsa", "albedo_filled", "albedo (1)"),
                                 (axes[1], "lst", "lst_filled", "LST (K)")):
        obs = px[flag] == 0
        ax.plot(px.time, px[var], lw=0.5, color="0.6", label="filled")
        ax.plot(px.time[obs], px[var][obs], ".", ms=1.5, label="observed")
        ax.set_ylabel(label)
    t_px = truth.isel(lat=r, lon=c) if truth is not None else None
    if t_px is not None:
        axes[2].plot(truth.time, t_px, lw=0.7, color="k", label="truth (hidden)")
    axes[2].plot(px.time, px.sm_era5land, lw=0.7, label="ERA5-Land")
    axes[2].plot(px.time, px.sm_label, ".", ms=1.5, label="GLASS-MODIS label")
    axes[2].set_ylabel("SM (m$^3$ m$^{-3}$)")
    axes[3].plot(px.time, px.sm_era5land - (t_px if t_px is not None else np.nan), lw=0.5)
    axes[3].axhline(0, color="k", lw=0.5)
    axes[3].set_ylabel("ERA5 − truth\n(m$^3$ m$^{-3}$)")
    for ax in axes[:3]:
        ax.legend(loc="upper right", ncol=3, markerscale=4)
    fig.suptitle(f"Pixel ({float(px.lat):.3f}°N, {float(px.lon):.3f}°E) — {ctx.data_label}")
    ctx.savefig(fig, "01_pixel_series")
    return fig


# ----------------------------------------------------------------------------------------------------------
# 5 Gaps, 6 ERA5-Land's wet bias
# ----------------------------------------------------------------------------------------------------------
def gap_fractions(ctx: StageContext, ds: xr.Dataset) -> pd.DataFrame:
    """Fraction of land pixel-days gap-filled (albedo, LST) or without a label (``period.label_start..label_end``).

    Returns
    -------
    pandas.DataFrame
        Table ``gap_fractions``: ``variable``, ``gap_fraction`` (dimensionless), ``counted_from`` (first day).
    """
    cfg = ctx.cfg
    land = ds["land_mask"] == 1            # sea and ice cells have no retrievals to fill: not counted
    label_period = ((ds.time >= np.datetime64(cfg.period.label_start))
                    & (ds.time <= np.datetime64(cfg.period.label_end)))
    label_gaps = (float(ds.sm_label.isnull().sel(time=label_period).where(land).mean())
                  if bool(label_period.any()) else np.nan)
    gaps = pd.DataFrame(
        {
            "variable": ["albedo", "lst", "sm_label"],
            "gap_fraction": [float(ds.albedo_filled.where(land).mean()), float(ds.lst_filled.where(land).mean()),
                             label_gaps],
            "counted_from": [str(cfg.period.start), str(cfg.period.start), str(cfg.period.label_start)],
        }
    )
    write_table(ctx.paths, "gap_fractions", gaps)
    return gaps


def era5_bias(ctx: StageContext, ds: xr.Dataset,
              truth: xr.DataArray | None) -> tuple[xr.DataArray, pd.DataFrame] | None:
    """ERA5-Land minus the twin's truth, averaged over time per pixel; None without a truth (real data).

    Returns
    -------
    bias : xarray.DataArray
        (lat, lon) mean ERA5-Land - truth, m3 m-3.
    table : pandas.DataFrame
        Table ``era5_bias``: one row per land pixel (sea and ice cells have none), ``mean_truth`` and
        ``era5_bias``, m3 m-3.
    """
    if truth is None:
        return None
    e5 = ds.sm_era5land.load()
    bias = (e5 - truth.reindex_like(e5, method="nearest", tolerance=1e-6)).mean("time")
    table = pd.DataFrame({"mean_truth": truth.mean("time").values.ravel(), "era5_bias": bias.values.ravel()})
    table = table.dropna(how="all").reset_index(drop=True)     # sea and ice cells: no soil, no row
    write_table(ctx.paths, "era5_bias", table)
    return bias, table


def era5_bias_stats(result: tuple[xr.DataArray, pd.DataFrame] | None) -> dict | None:
    """``mean`` (area-weighted domain mean), ``min``, ``max`` of the per-pixel ERA5-Land bias (m3 m-3) and
    ``n_cells``, from :func:`era5_bias`'s result; None without one (real data)."""
    if result is None:
        return None
    bias = result[0]
    return {"mean": float(domain_mean(bias)), "min": float(bias.min()), "max": float(bias.max()),
            "n_cells": int(bias.notnull().sum())}


def era5_bias_text(stats: dict | None) -> str:
    """One sentence on ERA5-Land's bias against the truth (from :func:`era5_bias_stats`)."""
    if stats is None:
        return "No truth on real data: ERA5-Land's bias is measured against stations in stage 05."
    return (f"ERA5-Land bias vs truth over {stats['n_cells']} cells: domain mean {stats['mean']:+.4f} m3 m-3, "
            f"from {stats['min']:+.4f} to {stats['max']:+.4f} m3 m-3.")


def plot_era5_bias(ctx: StageContext, result: tuple[xr.DataArray, pd.DataFrame] | None) -> plt.Figure | None:
    """Map of the ERA5-Land bias and the bias against the mean true SM: ``01_era5_wet_bias`` (None without
    :func:`era5_bias`'s result)."""
    if result is None:
        return None
    bias, table = result
    lim = float(abs(bias).max())
    fig = plt.figure(figsize=(10, 3.8))
    ax = maps.map_axes(fig, 1, 2, 1, extent=_extent(ctx))
    maps.plot_map(bias, ax=ax, fig=fig, title="mean ERA5-Land − truth", cmap="RdBu_r", vmin=-lim, vmax=lim,
                  units="m3 m-3")
    ax2 = fig.add_subplot(1, 2, 2)
    ax2.scatter(table.mean_truth, table.era5_bias, s=6)
    ax2.set_xlabel("mean true SM (m$^3$ m$^{-3}$)")
    ax2.set_ylabel("ERA5-Land bias (m$^3$ m$^{-3}$)")
    ax2.set_title(f"domain-mean bias {era5_bias_stats(result)['mean']:+.3f} m$^3$ m$^{{-3}}$")
    fig.suptitle(ctx.data_label)
    ctx.savefig(fig, "01_era5_wet_bias")
    return fig


# ----------------------------------------------------------------------------------------------------------
# 7 Sensor transitions
# ----------------------------------------------------------------------------------------------------------
def observed_anomaly(ds: xr.Dataset, var: str, flag: str, window: int = ANOMALY_WINDOW) -> pd.Series:
    """Domain mean of the *observed* (not gap-filled) values of ``var``, as anomalies from its day-of-year
    climatology (:func:`glass_sm.evaluation.breaks.anomalies`), smoothed by a centred ``window``-day mean.

    Parameters
    ----------
    ds : xarray.Dataset
        The cube.
    var, flag : str
        A dynamic input (e.g. ``lst``, K) and its 0/1 gap-fill flag (e.g. ``lst_filled``).
    window : int
        Running-mean length, days (at least a third of it observed).

    Returns
    -------
    pandas.Series
        Daily anomalies in the unit of ``var``, indexed by day.
    """
    series = domain_mean_series(ds[var].where(ds[flag] == 0))
    return anomalies(series).rolling(window, center=True, min_periods=window // 3).mean()


def plot_sensor_transitions(ctx: StageContext, ds: xr.Dataset) -> plt.Figure:
    """Observed LST and albedo anomalies with the NOAA platform changes marked: ``01_sensor_transitions``."""
    fig, axes = plt.subplots(2, 1, figsize=(11, 5), sharex=True)
    for ax, (var, flag, label) in zip(axes, [("lst", "lst_filled", "LST anomaly (K)"),
                                             ("albedo_wsa", "albedo_filled", "albedo anomaly (1)")]):
        s = observed_anomaly(ds, var, flag)
        ax.plot(s.index, s.to_numpy(), lw=0.8)
        for d in transition_dates(ctx.cfg.period.start, ctx.cfg.period.end):
            ax.axvline(d, color="C3", lw=0.8, ls="--")
        ax.set_ylabel(label)
    axes[0].set_title(f"{ANOMALY_WINDOW}-day mean anomalies; dashed: NOAA platform changes — {ctx.data_label}")
    ctx.savefig(fig, "01_sensor_transitions")
    return fig


def platforms_seen(ds: xr.Dataset) -> pd.DataFrame:
    """The AVHRR platforms of the cube's days: ``platform``, ``first`` and ``last`` day, ``days``."""
    if "platform" not in ds.variables:
        return pd.DataFrame(columns=["platform", "first", "last", "days"])
    s = pd.Series(pd.DatetimeIndex(ds.time.values), index=ds.platform.values)
    g = s.groupby(level=0)
    out = pd.DataFrame({"first": g.min(), "last": g.max(), "days": g.size()}).sort_values("first")
    return out.rename_axis("platform").reset_index()


# ----------------------------------------------------------------------------------------------------------
# Summary, the whole stage
# ----------------------------------------------------------------------------------------------------------
def summary_text(gaps: pd.DataFrame, bias_stats: dict | None = None) -> str:
    """The stage's numbers as markdown bullets: gap fractions (:func:`gap_fractions`) and ERA5-Land's bias."""
    g = gaps.set_index("variable")["gap_fraction"]
    lines = [f"* Gap-filled pixel-days: albedo {100 * g['albedo']:.1f} %, LST {100 * g['lst']:.1f} %; "
             f"pixel-days without a GLASS-MODIS label since its start: {100 * g['sm_label']:.1f} %."]
    if bias_stats is not None:
        lines.append(f"* ERA5-Land minus truth: {bias_stats['mean']:+.3f} m3 m-3 on the domain mean, "
                     f"{bias_stats['min']:+.3f} to {bias_stats['max']:+.3f} m3 m-3 per pixel.")
    return "\n".join(lines)


def run(ctx: StageContext, progress: bool = False) -> dict:
    """The whole stage in the notebook's order; returns every table and figure by name."""
    written = make_twin(ctx, progress=progress)
    listing = list_sources(ctx)
    coverage = input_coverage(ctx, listing)
    ds = build_cube(ctx, progress=progress, coverage=coverage, listing=listing)
    truth = open_truth(ctx)
    bias = era5_bias(ctx, ds, truth)
    out = {"twin": written, "label_retrieval": label_retrieval(ctx, written), "input_coverage": coverage, "cube": ds,
           "truth": truth, "summary": cube_summary(ds),
           "01_input_maps": plot_input_maps(ctx, ds), "01_pixel_series": plot_pixel_series(ctx, ds, truth),
           "gap_fractions": gap_fractions(ctx, ds), "era5_bias": bias, "era5_bias_stats": era5_bias_stats(bias),
           "01_era5_wet_bias": plot_era5_bias(ctx, bias),
           "01_sensor_transitions": plot_sensor_transitions(ctx, ds), "platforms": platforms_seen(ds)}
    plt.close("all")
    return out
