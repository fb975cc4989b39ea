"""The paper's figures 1-12, each drawn only from the data handed to it (tables, DataArrays).

Every ``fig_*`` function returns a :class:`matplotlib.figure.Figure`; it never reads, trains, predicts or writes.
Stage 06 (:mod:`glass_sm.stages.s06_figures`) reads what the stages wrote, calls these functions and saves the
figures with their captions (:mod:`glass_sm.figures.captions`); stages 02 and 03 draw figures 4-6 from their own
tables with the same functions. Styling conventions: :mod:`glass_sm.figures.style`; maps:
:mod:`glass_sm.figures.maps`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.colors
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.colors import LogNorm, TwoSlopeNorm

from glass_sm.data.cube import maybe_load
from glass_sm.evaluation.aggregate import domain_mean, monthly_domain_mean
from glass_sm.figures.maps import (PLATE_CARREE, cells_in_box, extent, frame, grid_step, is_global, label_points,
                                   map_aspect, map_axes, mesh, nodata, nodata_handle, robust_limits,
                                   shade_land_ocean, sym_limit)
from glass_sm.figures.framework import fig_framework
from glass_sm.figures.style import (PRODUCT, PRODUCT_COLORS, REF_LABELS, SM_CMAP, SM_UNITS, TREND_UNITS, fmt_lat,
                                    fmt_lon, panel_letter, sm_units, title_suffix, unit_label)
from glass_sm.models import MODEL_REGISTRY, display_name, model_color

__all__ = ["fig_framework", "fig_study_area", "fig_input_overview", "fig_model_density", "fig_accuracy_by_sm",
           "fig_sequence_length", "fig_attention", "fig_insitu_validation", "fig_monthly_maps", "fig_regional_zoom",
           "fig_domain_series", "fig_trend_maps"]

# ----------------------------------------------------------------------------------------------------------
# Figure 2: study area and stations
# ----------------------------------------------------------------------------------------------------------
def fig_study_area(bounds: tuple[float, float, float, float], stations: pd.DataFrame,
                   background: xr.DataArray | None = None, label: str = "", inset_pad: float = 20.0,
                   annotate: bool = True, res: float | None = None):
    """The run's domain with the in situ stations, and an inset locating it in the wider region.

    Parameters
    ----------
    bounds : (west, east, south, north)
        The domain box, degrees.
    stations : DataFrame
        ``station``, ``lat``, ``lon`` (degrees); optional ``first`` (start date; stations starting before 2000
        get their own marker) and ``status`` (``ok`` = scored in stage 05).
    background : DataArray, optional
        A (lat, lon) field drawn under the stations (e.g. elevation, m, with ``units`` attribute).
    inset_pad : float
        Half-width added around the domain for the inset, degrees (no inset for a domain wider than 90°).
    annotate : bool
        Label each station with its name (at most 60 stations, and never on a global map, where they would
        overlap).
    res : float, optional
        The grid spacing, degrees, quoted in the legend (default: the background's, else 0.05).

    A global domain (:func:`glass_sm.figures.maps.is_global`) is drawn whole on a Robinson map with the stations
    coloured by network (``network`` column; the twelve largest networks named, the others grouped) and shaped by
    period (triangle: record starting before 2000), the legend beside the map.
    """
    if is_global(bounds):
        return _study_area_global(bounds, stations, background, label, res)
    w, e, s, n = bounds
    pad = 0.06 * max(e - w, n - s)
    show_inset = (e - w) < 90
    aspect = min(max((e - w) / max(n - s, 1e-6), 0.5), 3.0)
    wide = aspect > 1.3
    main_w = 5.0 if wide else 4.0
    main_h = main_w / aspect + (1.3 if wide else 0.6)  # map + horizontal colorbar below it
    fig = plt.figure(figsize=(main_w + 3.2, max(main_h, 3.6)), layout="constrained")
    gs = fig.add_gridspec(2, 2, width_ratios=(main_w, 3.0), height_ratios=(1.0, 0.8))
    ax = map_axes(fig, gs[:, 0], extent=(w - pad, e + pad, s - pad, n + pad), nbins=5)
    if background is not None:
        cmap = "Greys" if background.attrs.get("units") == "m" else SM_CMAP
        im = mesh(ax, background, cmap=cmap, alpha=0.85)
        cb = fig.colorbar(im, ax=ax, shrink=0.7 if wide else 0.75, pad=0.02, aspect=30 if wide else 20,
                          orientation="horizontal" if wide else "vertical")
        name = background.attrs.get("long_name", background.name or "")
        cb.set_label(f"{name} ({sm_units(background.attrs.get('units'))})")
    frame(ax, bounds, color="#0072B2", lw=1.5)
    st = stations.copy()
    early = (pd.to_datetime(st["first"]) < pd.Timestamp("2000-01-01")) if "first" in st else \
        pd.Series(False, index=st.index)
    groups = [("station from 2000 on", ~early, "o", "#D55E00"), ("station before 2000", early, "^", "#009E73")]
    handles = []
    for name, sel, marker, col in groups:
        if sel.any():
            handles.append(ax.scatter(st.loc[sel, "lon"], st.loc[sel, "lat"], marker=marker, s=38, c=col, ec="k",
                                      lw=0.5, transform=PLATE_CARREE, zorder=6,
                                      label=f"{name} ({int(sel.sum())})"))
    if annotate and 0 < len(st) <= 60:
        label_points(ax, st["lon"].to_numpy(float), st["lat"].to_numpy(float), st["station"].astype(str).tolist())
    ax.set_title(f"Domain and in situ stations ({len(st)})", fontsize=9)
    if show_inset:
        cx, cy = (w + e) / 2, (s + n) / 2
        hw = max(inset_pad, (e - w)) + 2
        hh = max(inset_pad * 0.7, (n - s)) + 2
        ax2 = map_axes(fig, gs[0, 1], nbins=3, extent=(max(-180, cx - hw), min(180, cx + hw),
                                                             max(-90, cy - hh), min(90, cy + hh)))
        shade_land_ocean(ax2)
        # a domain too small to see at this scale is marked by a point as well as its frame
        ax2.plot([cx], [cy], marker="s", ms=4, mfc="none", mec="#D55E00", mew=1.2, transform=PLATE_CARREE)
        frame(ax2, bounds, color="#D55E00", lw=1.5)
        ax2.set_title("location of the domain", fontsize=8)
    axt = fig.add_subplot(gs[1, 1])
    axt.axis("off")
    lines = _domain_lines(bounds, st, _res(res, background))
    leg = axt.legend(handles=handles, title="\n".join(lines), loc="upper left", fontsize=7.5, title_fontsize=7.5,
                     frameon=False, alignment="left", bbox_to_anchor=(0.0, 1.0))
    leg.set_zorder(3)
    if label:
        fig.suptitle(f"Study area{title_suffix(label)}", fontsize=9.5)
    return fig


def _res(res: float | None, field: xr.DataArray | None) -> float:
    """The grid spacing to quote, degrees: ``res``, else ``field``'s, else 0.05 (the paper's grid)."""
    if res is not None:
        return float(res)
    if field is not None and field.sizes.get("lat", 0) > 1:
        return grid_step(field["lat"])
    return 0.05


def _domain_lines(bounds, st: pd.DataFrame, res: float) -> list[str]:
    """The legend title of figure 2: the domain, its cells, the sensor depths and the years of the records."""
    w, e, s, n = bounds
    lines = [f"domain: {fmt_lat(s)} – {fmt_lat(n)},", f"            {fmt_lon(w)} – {fmt_lon(e)}",
             f"{round((e - w) / res)} × {round((n - s) / res)} cells of {res:g}°"]
    if "depth_from" in st and "depth_to" in st and len(st):
        lines.append(f"sensor depth {st.depth_from.min() * 100:.0f}–{st.depth_to.max() * 100:.0f} cm")
    if "first" in st and "last" in st and len(st):
        lines.append(f"station records {pd.to_datetime(st['first']).min():%Y}–{pd.to_datetime(st['last']).max():%Y}")
    return lines


def _study_area_global(bounds, stations: pd.DataFrame, background: xr.DataArray | None, label: str,
                       res: float | None, max_networks: int = 12):
    """Figure 2 for a global domain: a 2:1 Robinson map, stations coloured by network and shaped by period."""
    fig = plt.figure(figsize=(11.0, 5.2), layout="constrained")
    gs = fig.add_gridspec(1, 2, width_ratios=(8.2, 2.8))
    ax = map_axes(fig, gs[0], extent=bounds)
    if background is not None:
        cmap = "Greys" if background.attrs.get("units") == "m" else SM_CMAP
        im = mesh(ax, background, cmap=cmap, alpha=0.7)
        cb = fig.colorbar(im, ax=ax, shrink=0.55, pad=0.02, aspect=40, orientation="horizontal")
        name = background.attrs.get("long_name", background.name or "")
        cb.set_label(f"{name} ({sm_units(background.attrs.get('units'))})")
    st = stations.copy()
    early = (pd.to_datetime(st["first"]) < pd.Timestamp("2000-01-01")) if "first" in st else \
        pd.Series(False, index=st.index)
    net = st["network"].astype(str) if "network" in st else pd.Series("stations", index=st.index)
    top = list(net.value_counts(sort=True).index[:max_networks])
    net = net.where(net.isin(top), "other networks")
    cmap = plt.get_cmap("tab20")
    colours = {k: cmap(i % 20) for i, k in enumerate(sorted(top))} | {"other networks": "0.55"}
    handles = []
    for k in [*sorted(top), "other networks"]:
        sel = net == k
        if not sel.any():
            continue
        for marker, per in (("o", ~early), ("^", early)):
            if (sel & per).any():
                ax.scatter(st.loc[sel & per, "lon"], st.loc[sel & per, "lat"], marker=marker, s=22, color=colours[k],
                           ec="k", lw=0.4, transform=PLATE_CARREE, zorder=6)
        handles.append(plt.Line2D([], [], ls="", marker="o", ms=5, mfc=colours[k], mec="k", mew=0.4,
                                  label=f"{k} ({int(sel.sum())})"))
    handles += [plt.Line2D([], [], ls="", marker="o", ms=5, mfc="w", mec="k", label=f"from 2000 on "
                           f"({int((~early).sum())})"),
                plt.Line2D([], [], ls="", marker="^", ms=5, mfc="w", mec="k",
                           label=f"before 2000 ({int(early.sum())})")]
    ax.set_title(f"Domain and in situ stations ({len(st)})", fontsize=9)
    axt = fig.add_subplot(gs[1])
    axt.axis("off")
    axt.legend(handles=handles, title="\n".join(_domain_lines(bounds, st, _res(res, background))), loc="upper left",
               fontsize=7, title_fontsize=7.5, frameon=False, alignment="left", bbox_to_anchor=(0.0, 1.0))
    if label:
        fig.suptitle(f"Study area{title_suffix(label)}", fontsize=9.5)
    return fig


# ----------------------------------------------------------------------------------------------------------
# Figure 3: input data overview
# ----------------------------------------------------------------------------------------------------------
_INPUT_MAPS = (("albedo_wsa", "white-sky albedo", "albedo", "viridis"), ("lst", "LST", "LST", "viridis"),
               ("sm_era5land", "ERA5-Land SM", "SM", SM_CMAP),
               ("sm_label", "GLASS-MODIS SM", "SM", SM_CMAP),
               ("elevation", "elevation", "elevation", "Greys"), ("sand", "sand fraction", "sand", "viridis"))


_INPUT_SERIES = (("albedo (1)", (("albedo_wsa", "white-sky", "#0072B2"), ("albedo_bsa", "black-sky", "#56B4E9"))),
                 ("LST (K)", (("lst", "LST", "#D55E00"),)),
                 (f"SM ({SM_UNITS})", (("sm_era5land", "ERA5-Land", PRODUCT_COLORS["ERA5-Land"]),
                                       ("sm_label", "GLASS-MODIS", PRODUCT_COLORS["GLASS-MODIS"]))))


def _input_reductions(cube: xr.Dataset, maps: Sequence[str], series: Sequence[str]) -> dict[str, dict]:
    """What figure 3 draws of each cube variable, each variable read once: ``mean`` (its time mean, or the field
    itself without time), ``years`` (the first and last year with a valid cell, or None) and ``monthly``
    (:func:`glass_sm.evaluation.aggregate.monthly_domain_mean`, for ``series``).

    A variable small enough (:func:`glass_sm.data.cube.maybe_load`) is loaded before it is reduced, so the three
    reductions read it from memory rather than three times from the store (a 40-year daily field of a lazy cube
    took tens of seconds per reduction in dask's scheduling alone); a larger one stays lazy.
    """
    out = {}
    for v in dict.fromkeys([*maps, *series]):
        da = maybe_load(cube[v])
        r = {"mean": (da.mean("time", skipna=True) if "time" in da.dims else da).load() if v in maps else None,
             "years": None, "monthly": monthly_domain_mean(da) if v in series else None}
        if v in maps and "time" in da.dims:
            yrs = cube.indexes["time"][da.notnull().any(("lat", "lon")).values]
            r["years"] = (yrs.min(), yrs.max()) if len(yrs) else ()
        out[v] = r
        del da
    return out


def fig_input_overview(cube: xr.Dataset, label: str = ""):
    """Long-term mean maps of the model inputs and their monthly domain means through the period.

    ``cube``: the stage-01 cube (``albedo_wsa``, ``lst``, ``sm_era5land``, ``sm_label``, ``elevation``, ``sand``);
    missing variables are left out.
    """
    maps = [(v, t, sh, c) for v, t, sh, c in _INPUT_MAPS if v in cube]
    red = _input_reductions(cube, [m[0] for m in maps],
                            [v for _, vars_ in _INPUT_SERIES for v, _, _ in vars_ if v in cube])
    ncol = 3
    nrow = int(np.ceil(len(maps) / ncol))
    ext = extent(cube)
    aspect = min(max((ext[1] - ext[0]) / max(ext[3] - ext[2], 1e-6), 0.6), 2.5)
    map_h = 2.2 / aspect + 0.5  # map height plus title and tick labels, inches
    series_h = 1.25
    fig = plt.figure(figsize=(9.0, nrow * map_h + 3 * series_h + 0.5), layout="constrained")
    gs = fig.add_gridspec(nrow + 3, ncol, height_ratios=[map_h] * nrow + [series_h] * 3)
    for i, (v, title, short, cmap) in enumerate(maps):
        ax = map_axes(fig, gs[i // ncol, i % ncol], extent=ext, nbins=3,
                            grid_labels=("l" if i % ncol == 0 else "") + ("b" if i // ncol == nrow - 1 else ""))
        im = mesh(ax, red[v]["mean"], cmap=cmap)
        cb = fig.colorbar(im, ax=ax, shrink=0.9, pad=0.02, fraction=0.06)
        cb.set_label(f"{short} {unit_label(cube[v].attrs.get('units'))}", fontsize=8)
        if red[v]["years"] is not None:
            span = f"{red[v]['years'][0]:%Y}–{red[v]['years'][1]:%Y}" if red[v]["years"] else ""
            ax.set_title(f"{title}, mean {span}", fontsize=8.5)
        else:
            ax.set_title(title, fontsize=8.5)
        panel_letter(ax, i)
    axes = []
    for k, (ylab, vars_) in enumerate(_INPUT_SERIES):
        ax = fig.add_subplot(gs[nrow + k, :], sharex=axes[0] if axes else None)
        axes.append(ax)
        for v, name, col in vars_:
            if v in cube:
                s = red[v]["monthly"]
                ax.plot(s.index, s.values, lw=0.9, color=col, label=name)
        ax.set_ylabel(ylab)
        ax.legend(loc="upper left", ncol=2, fontsize=7, framealpha=0.8, edgecolor="none")
        panel_letter(ax, len(maps) + k)
        if k < 2:
            ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("time (year); monthly domain means")
    fig.suptitle(f"Model inputs{title_suffix(label)}", fontsize=10)
    return fig


# ----------------------------------------------------------------------------------------------------------
# Figures 4-7: model comparison, SM levels, sequence length, attention
# ----------------------------------------------------------------------------------------------------------
def fig_model_density(predictions: pd.DataFrame, metrics: pd.DataFrame, models: Sequence[str] | None = None,
                      references: Sequence[str] = ("label", "truth"), label: str = "", gridsize: int = 50,
                      lim: tuple[float, float] | None = None):
    """Density scatter (hexbin, log counts) of predicted vs reference SM per model, one row per reference.

    ``predictions``: stage 02 ``model_comparison_predictions.csv.gz`` (a column per model, ``label``, ``truth``);
    ``metrics``: ``model_comparison.csv`` (``model, reference, r2, rmse, ubrmse, bias, n``); ``lim``: axis
    limits in m3 m-3 (default: the data range rounded outward to 0.05). Used by stages 02 and 06.
    """
    models = [m for m in (models or [c for c in MODEL_REGISTRY if c in predictions]) if m in predictions]
    refs = [r for r in references if r in predictions and np.isfinite(predictions[r].to_numpy(float)).any()]
    if lim is None:
        vals = np.concatenate([predictions[c].to_numpy(float) for c in [*refs, *models]])
        vals = vals[np.isfinite(vals)]
        lim = (max(0.0, float(np.floor(vals.min() * 20) / 20)), float(np.ceil(vals.max() * 20) / 20))
    fig, axes = plt.subplots(len(refs), len(models), figsize=(1.75 * len(models) + 1.2, 1.9 * len(refs) + 0.6),
                             squeeze=False, sharex=True, sharey=True, layout="constrained")
    hb = None
    for i, ref in enumerate(refs):
        for j, m in enumerate(models):
            ax = axes[i, j]
            x, y = predictions[ref].to_numpy(float), predictions[m].to_numpy(float)
            ok = np.isfinite(x) & np.isfinite(y)
            hb = ax.hexbin(x[ok], y[ok], gridsize=gridsize, extent=(*lim, *lim), norm=LogNorm(), cmap="viridis",
                           mincnt=1, linewidths=0, rasterized=True)
            ax.plot(lim, lim, color="k", lw=0.6, ls="--")
            row = metrics[(metrics.model == m) & (metrics.reference == ref)]
            if len(row):
                r = row.iloc[0]
                ax.text(0.04, 0.97, f"R$^2$ = {r.r2:.3f}\nRMSE = {r.rmse:.3f}\nbias = {r.bias:+.3f}",
                        transform=ax.transAxes, va="top", fontsize=6.3,
                        bbox=dict(fc="white", ec="none", alpha=0.7, pad=1))
            ax.set_xlim(lim)
            ax.set_ylim(lim)
            ax.set_aspect("equal")
            if i == 0:
                ax.set_title(display_name(m), fontsize=9)
            if j == 0:
                ax.set_ylabel(f"predicted SM\n({SM_UNITS})")
            if i == len(refs) - 1:
                ax.set_xlabel(f"{REF_LABELS.get(ref, ref)}\n({SM_UNITS})")
            ax.tick_params(labelsize=7)
    if hb is not None:
        fig.colorbar(hb, ax=axes, shrink=0.85, label="test windows per hexagon (count)")
    fig.suptitle(f"Predicted vs reference soil moisture on the test set{title_suffix(label)}", fontsize=9.5)
    return fig


def fig_accuracy_by_sm(by_bin: pd.DataFrame, models: Sequence[str] | None = None,
                       references: Sequence[str] = ("label", "truth"), metrics: Sequence[str] = ("rmse", "ubrmse",
                                                                                                   "bias"),
                       label: str = ""):
    """Accuracy of each model within soil-moisture levels (bins of the reference), 95 % intervals.

    ``by_bin``: stage 02 ``metrics_by_sm_bin.csv`` (``model, reference, bin, n, <metric>, <metric>_lo/_hi``).
    """
    refs = [r for r in references if (by_bin.reference == r).any()]
    models = [m for m in (models or list(pd.unique(by_bin.model))) if (by_bin.model == m).any()]
    fig, axes = plt.subplots(len(refs), len(metrics), figsize=(3.0 * len(metrics) + 0.4, 2.6 * len(refs) + 0.5),
                             squeeze=False, layout="constrained")
    names = {"rmse": "RMSE", "ubrmse": "ubRMSE", "bias": "bias", "r": "R", "r2": "R$^2$"}
    width = 0.8 / max(1, len(models))
    for i, ref in enumerate(refs):
        t = by_bin[by_bin.reference == ref]
        bins = list(pd.unique(t["bin"]))
        counts = t[t.model == models[0]].set_index("bin").reindex(bins)["n"].fillna(0).astype(int)
        for j, m in enumerate(metrics):
            ax = axes[i, j]
            for k, name in enumerate(models):
                s = t[t.model == name].set_index("bin").reindex(bins)
                xpos = np.arange(len(bins)) + (k - (len(models) - 1) / 2) * width
                y = s[m].to_numpy(float)
                err = None
                if f"{m}_lo" in s:
                    err = np.abs(np.vstack([y - s[f"{m}_lo"].to_numpy(float), s[f"{m}_hi"].to_numpy(float) - y]))
                ax.errorbar(xpos, y, yerr=err, fmt="o", ms=3, capsize=1.5, lw=0.8, color=model_color(name),
                            label=display_name(name))
            if m == "bias":
                ax.axhline(0, color="k", lw=0.5)
            unit = "(1)" if m in ("r", "r2") else f"({SM_UNITS})"
            ax.set_ylabel(f"{names.get(m, m)} {unit}")
            ax.set_xticks(np.arange(len(bins)))
            ax.set_xticklabels([f"{b}\nn={c}" for b, c in zip(bins, counts)], fontsize=6.5)
            if i == len(refs) - 1:
                ax.set_xlabel(f"reference SM level ({SM_UNITS})")
            if j == 0:
                ax.text(-0.32, 0.5, f"vs {REF_LABELS.get(ref, ref)}", transform=ax.transAxes, rotation=90,
                        va="center", ha="center", fontsize=8.5, fontweight="bold")
            ax.grid(axis="y", lw=0.3, alpha=0.5)
            panel_letter(ax, i * len(metrics) + j)
    axes[0, 0].legend(fontsize=6.5, ncol=1, loc="upper left", frameon=False)
    fig.suptitle(f"Test accuracy by soil-moisture level{title_suffix(label)}", fontsize=9.5)
    return fig


def fig_sequence_length(seq: pd.DataFrame, final_window: int | None = None, label: str = ""):
    """RMSE and R² (95 % intervals) against the window length L, per model; solid vs labels, dashed vs truth.

    ``seq``: stage 03 ``sequence_length.csv`` (``model, window, reference, rmse, r2`` and ``_lo``/``_hi``).
    """
    fig, axes = plt.subplots(1, 2, figsize=(7.6, 3.0), layout="constrained")
    styles = {"label": "-", "truth": "--"}
    markers = {"label": "o", "truth": "s"}
    for ax, m, lab in zip(axes, ("rmse", "r2"), (f"RMSE ({SM_UNITS})", "R$^2$ (1)")):
        for ref in [r for r in ("label", "truth") if (seq.reference == r).any()]:
            for name in pd.unique(seq.model):
                s = seq[(seq.model == name) & (seq.reference == ref)].sort_values("window")
                y = s[m].to_numpy(float)
                err = np.abs(np.vstack([y - s[f"{m}_lo"], s[f"{m}_hi"] - y])) if f"{m}_lo" in s else None
                ax.errorbar(s.window, y, yerr=err, marker=markers[ref], ms=3.5, capsize=2, lw=1, ls=styles[ref],
                            color=model_color(name), label=f"{display_name(name)} vs {REF_LABELS.get(ref, ref)}")
        ax.set_xscale("log")
        ticks = sorted(int(v) for v in pd.unique(seq.window))
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(v) for v in ticks])
        ax.minorticks_off()
        ax.set_xlabel("window length L (days)")
        ax.set_ylabel(lab)
        ax.grid(lw=0.3, alpha=0.5)
        if final_window is not None:
            ax.axvline(final_window, color="0.4", lw=0.8, ls=":")
    axes[0].legend(fontsize=6.5, frameon=False)
    if final_window is not None:
        axes[1].text(final_window, 0.03, f"production L = {final_window} d ", transform=axes[1].get_xaxis_transform(),
                     fontsize=6.5, color="0.3", ha="right", va="bottom")
    for i, ax in enumerate(axes):
        panel_letter(ax, i)
    fig.suptitle(f"Sequence length of the input window (test set){title_suffix(label)}", fontsize=9.5)
    return fig


def fig_attention(tables: Mapping[str, pd.DataFrame], example: pd.DataFrame | None = None, label: str = "",
                  model: str = "atlstm"):
    """Attention weights of one attention model (default the production AtLSTM, ``model='atlstm'``).

    (a) mean weight by lag over all test windows, with the uniform weight 1/L; (b) weight relative to uniform
    for each group (soil-moisture level, season, climate), a diverging map centred on 1; (c) one worked example
    window (bars) with its ERA5-Land input (line), when ``example`` is given.

    ``tables``: ``{'overall': attention_by_lag.csv, 'SM level': ..._sm.csv, 'season': ..., 'climate': ...}``
    (stage 03; columns ``group, n, lag_0 ... lag_{L-1}``, and ``model`` when several attention models were
    analysed: the rows of ``model`` are drawn); ``example``: ``attention_example.csv``.
    """
    tables = {k: (v[v["model"] == model].dropna(axis=1, how="all") if "model" in v else v)
              for k, v in tables.items() if v is not None}
    tables = {k: v for k, v in tables.items() if len(v)}
    if example is not None and "model" in example:
        example = example[example["model"] == model]
        example = example if len(example) else None
    overall_key = next(iter(tables))
    ncol = 3 if example is not None else 2
    fig = plt.figure(figsize=(3.3 * ncol + 0.6, 3.6), layout="constrained")
    gs = fig.add_gridspec(1, ncol, width_ratios=[1.0, 1.25, 1.1][:ncol])
    ov = tables[overall_key]
    cols = [c for c in ov.columns if c.startswith("lag_")]
    lags = np.array([int(c[4:]) for c in cols])
    L = len(lags)
    ax = fig.add_subplot(gs[0])
    w = ov.iloc[0][cols].to_numpy(float)
    ax.plot(lags, w, marker="o", ms=3, color=model_color(model), label=f"all test windows (n={int(ov.n.iloc[0])})")
    ax.axhline(1 / L, color="0.4", ls="--", lw=0.8, label=f"uniform 1/L = {1 / L:.3f}")
    ax.set_xlabel("lag before the target day (days)")
    ax.set_ylabel("mean attention weight (1)")
    ax.legend(fontsize=6.5, frameon=False)
    ax.grid(lw=0.3, alpha=0.5)
    panel_letter(ax, 0)
    # (b) heat map of weight / uniform, groups stacked
    rows, names, seps = [], [], []
    for key, t in tables.items():
        if key == overall_key:
            continue
        for r in t.itertuples(index=False):
            rows.append(np.array([getattr(r, c) for c in cols], float) * L)
            names.append(f"{key}: {r.group} (n={int(r.n)})")
        seps.append(len(rows))
    ax = fig.add_subplot(gs[1])
    if rows:
        m = np.vstack(rows)
        lim = max(float(np.nanmax(np.abs(m - 1))), 1e-3)
        im = ax.imshow(m, aspect="auto", cmap="RdBu_r", norm=TwoSlopeNorm(1.0, 1 - lim, 1 + lim),
                       interpolation="nearest", extent=(lags.min() - 0.5, lags.max() + 0.5, len(m) - 0.5, -0.5))
        for s_ in seps[:-1]:
            ax.axhline(s_ - 0.5, color="k", lw=0.8)
        ax.set_yticks(np.arange(len(names)))
        ax.set_yticklabels(names, fontsize=6)
        cb = fig.colorbar(im, ax=ax, shrink=0.9, pad=0.02)
        cb.set_label("weight relative to uniform (1)")
    ax.set_xlabel("lag before the target day (days)")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    panel_letter(ax, 1)
    if example is not None:
        ax = fig.add_subplot(gs[2])
        ex = example.sort_values("lag")
        ax.bar(ex["lag"], ex["attention"], color="#56B4E9", width=0.8, label="attention")
        ax.set_ylim(0, 1.45 * float(ex["attention"].max()))
        ax.axhline(1 / len(ex), color="0.4", ls="--", lw=0.8)
        ax.set_xlabel("lag before the target day (days)")
        ax.set_ylabel("attention weight (1)")
        ax2 = ax.twinx()
        ax2.spines["right"].set_visible(True)
        ax2.plot(ex["lag"], ex["sm_era5land"], color=PRODUCT_COLORS["ERA5-Land"], marker=".", lw=1,
                 label="ERA5-Land SM (input)")
        if "truth" in ex and np.isfinite(ex["truth"].to_numpy(float)).any():
            ax2.plot(ex["lag"], ex["truth"], color="k", lw=0.8, label="truth (hidden)")
        ax2.set_ylabel(f"SM ({SM_UNITS})")
        lo, hi = ax2.get_ylim()
        ax2.set_ylim(lo, hi + 0.45 * (hi - lo))
        tgt = ex[ex.is_target.astype(bool)] if "is_target" in ex else ex.iloc[:0]
        when = f", target {pd.Timestamp(tgt.date.iloc[0]):%Y-%m-%d}" if len(tgt) and "date" in tgt else ""
        ax.set_title(f"one test window{when}", fontsize=8)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=6, frameon=False, loc="upper center", ncol=2)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        panel_letter(ax, 2)
    fig.suptitle(f"{display_name(model)} attention weights (test set){title_suffix(label)}", fontsize=9.5)
    return fig


# ----------------------------------------------------------------------------------------------------------
# Figure 8: in situ validation
# ----------------------------------------------------------------------------------------------------------
def fig_insitu_validation(sites: pd.DataFrame, bounds: tuple[float, float, float, float] | None = None,
                          products: Sequence[str] | None = None, map_product: str = PRODUCT,
                          metrics: Sequence[str] = ("r", "ubrmse", "bias"), label: str = ""):
    """In situ validation: box plots of site metrics per product, and maps of R and ubRMSE at the sites.

    ``sites``: stage 05 ``validation_sites.csv``, one row per (product, sensor) with columns ``product``
    (``GLASS-AVHRR``, ``ERA5-Land`` ...), ``station``, ``lat``, ``lon``, optional ``period``, and the metrics
    (``r`` dimensionless; ``ubrmse``, ``bias``, ``rmse`` in
    m3 m-3). Rows with ``status`` other than ``ok`` are left out.
    """

    t = sites[sites["status"] == "ok"] if "status" in sites else sites
    products = [p for p in (products or list(pd.unique(t["product"]))) if (t["product"] == p).any()]
    names = {"r": ("R", "(1)"), "ubrmse": ("ubRMSE", f"({SM_UNITS})"), "bias": ("bias", f"({SM_UNITS})"),
             "rmse": ("RMSE", f"({SM_UNITS})"), "r2": ("R$^2$", "(1)")}
    if bounds is None:
        bounds = (float(t.lon.min()) - 0.5, float(t.lon.max()) + 0.5, float(t.lat.min()) - 0.5,
                  float(t.lat.max()) + 0.5)
    glob = is_global(bounds)
    aspect = map_aspect(bounds, 0.6, 3.0)
    wide = aspect > 1.3
    map_h = 3.9 / aspect + (0.9 if wide else 0.4)
    fig = plt.figure(figsize=(9.0, 2.9 + map_h), layout="constrained")
    gs = fig.add_gridspec(2, 1, height_ratios=(2.9, map_h))
    gtop = gs[0].subgridspec(1, len(metrics))
    gbot = gs[1].subgridspec(1, 2)
    for j, m in enumerate(metrics):
        ax = fig.add_subplot(gtop[0, j])
        data = [t.loc[t["product"] == p, m].dropna().to_numpy(float) for p in products]
        bp = ax.boxplot(data, patch_artist=True, widths=0.6, showfliers=False,
                        medianprops=dict(color="k", lw=1.4))
        for patch, p in zip(bp["boxes"], products):
            patch.set_facecolor(matplotlib.colors.to_rgba(PRODUCT_COLORS.get(p, "0.7"), 0.45))
            patch.set_edgecolor(PRODUCT_COLORS.get(p, "0.3"))
        for k, d in enumerate(data):
            ax.scatter(np.full(len(d), k + 1) + np.linspace(-0.12, 0.12, len(d)) if len(d) else [], d, s=6,
                       color="k", zorder=3, alpha=0.6)
        ax.set_xticks(np.arange(1, len(products) + 1))
        ax.set_xticklabels([p for p in products], fontsize=7, rotation=35, ha="right",
                           rotation_mode="anchor")
        ax.set_ylabel(f"{names.get(m, (m, ''))[0]} {names.get(m, (m, ''))[1]}")
        if m == "bias":
            ax.axhline(0, color="k", lw=0.5)
        ax.grid(axis="y", lw=0.3, alpha=0.5)
        panel_letter(ax, j)
    tm = t[t["product"] == map_product] if (t["product"] == map_product).any() else t[t["product"] == products[0]]
    w, e, s, n = bounds
    pad = 0.0 if glob else 0.06 * max(e - w, n - s)
    for k, (m, cmap) in enumerate((("r", "viridis"), ("ubrmse", "cividis"))):
        ax = map_axes(fig, gbot[0, k], extent=(w - pad, e + pad, s - pad, n + pad), nbins=4,
                            grid_labels="lb" if k == 0 else "b")
        if not glob:
            frame(ax, bounds, color="0.4", lw=0.8, ls="--")
        if m in tm and tm[m].notna().any():
            vmin, vmax = float(tm[m].min()), float(tm[m].max())
            if vmax - vmin < 1e-9:
                vmin, vmax = vmin - 0.01, vmax + 0.01
            early = (tm["period"] == "pre-2000") if "period" in tm else pd.Series(False, index=tm.index)
            sc = None
            for sel, marker in ((~early, "o"), (early, "^")):
                if sel.any():
                    sc = ax.scatter(tm.lon[sel], tm.lat[sel], c=tm[m][sel], cmap=cmap, vmin=vmin, vmax=vmax,
                                    s=16 if glob else 60,
                                    marker=marker, ec="k", lw=0.5, transform=PLATE_CARREE, zorder=6)
            cb = fig.colorbar(sc, ax=ax, shrink=0.8, pad=0.02, orientation="horizontal" if wide else "vertical",
                              aspect=30 if wide else 20)
            cb.set_label(f"{names[m][0]} {names[m][1]}")
        ax.set_title(f"{names[m][0]} of {tm['product'].iloc[0] if len(tm) else ''} at the sites",
                     fontsize=8.5)
        panel_letter(ax, len(metrics) + k)
    fig.suptitle(f"Validation against in situ soil moisture{title_suffix(label)}", fontsize=9.5)
    return fig


# ----------------------------------------------------------------------------------------------------------
# Figures 9-10: January / July maps, regional zoom
# ----------------------------------------------------------------------------------------------------------
def fig_monthly_maps(maps: Mapping[str, Mapping[int, xr.DataArray]], months: Sequence[int] = (1, 7),
                     period: str = "", label: str = "", cmap: str = SM_CMAP,
                     bounds: tuple[float, float, float, float] | None = None, land: xr.DataArray | None = None):
    """Mean soil moisture of each product in each month: a ``len(months)`` × ``len(maps)`` grid of maps
    (2 × 4 for January and July of ESA CCI, ERA5-Land, GLASS-MODIS, GLASS-AVHRR) with one shared colorbar.

    ``maps``: ``{product: {month: (lat, lon) DataArray in m3 m-3}}``, each on its own grid (native resolution).
    ``land``: bool (lat, lon) land mask; land cells without a value are grey, the ocean stays white. The mean
    printed in each panel is area-weighted (cos latitude). A global ``bounds`` gives 2:1 Robinson panels.
    """
    prods = list(maps)
    arrays = [maps[p][m] for p in prods for m in months if maps[p].get(m) is not None]
    vmin, vmax = robust_limits(arrays)
    if bounds is None:
        ext = [extent(a) for a in arrays]
        bounds = (min(x[0] for x in ext), max(x[1] for x in ext), min(x[2] for x in ext), max(x[3] for x in ext))
    glob = is_global(bounds)
    pw = 3.1 if glob else 2.15
    fig = plt.figure(figsize=(pw * len(prods) + 0.4, len(months) * pw / map_aspect(bounds) + 1.3),
                     layout="constrained")
    gs = fig.add_gridspec(len(months), len(prods))
    mnames = {1: "January", 2: "February", 3: "March", 4: "April", 5: "May", 6: "June", 7: "July", 8: "August",
              9: "September", 10: "October", 11: "November", 12: "December"}
    axes, im = [], None
    for i, m in enumerate(months):
        for j, p in enumerate(prods):
            ax = map_axes(fig, gs[i, j], extent=bounds, nbins=3,
                                grid_labels=("l" if j == 0 else "") + ("b" if i == len(months) - 1 else ""))
            axes.append(ax)
            da = maps[p].get(m)
            if da is not None:
                if land is not None:
                    nodata(ax, da, land)
                im = mesh(ax, da, cmap=cmap, vmin=vmin, vmax=vmax)
                mean = float(domain_mean(da))
                ax.text(0.97, 0.04, f"mean {mean:.3f}", transform=ax.transAxes, ha="right", va="bottom",
                        fontsize=6.5, bbox=dict(fc="white", ec="none", alpha=0.75, pad=1))
            else:
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", fontsize=8)
            ax.set_title(f"{p}, {mnames.get(m, str(m))}", fontsize=8.5)
            panel_letter(ax, i * len(prods) + j)
    if im is not None:
        cb = fig.colorbar(im, ax=axes, orientation="horizontal", shrink=0.5, aspect=35, pad=0.02,
                          extend="both")
        cb.set_label(f"mean surface soil moisture ({SM_UNITS})")
    if land is not None:
        fig.legend(handles=[nodata_handle()], loc="outside lower right", fontsize=7, frameon=False)
    fig.suptitle(f"Mean soil moisture{(' ' + period) if period else ''}{title_suffix(label)}", fontsize=9.5)
    return fig


def fig_regional_zoom(overview: xr.DataArray, fields: Mapping[str, xr.DataArray],
                      box: tuple[float, float, float, float], title: str = "", label: str = "",
                      cmap: str = SM_CMAP, overview_name: str = "GLASS-AVHRR, domain"):
    """Spatial detail: (a) the product over the domain with the sub-box, then each field over the sub-box.

    Parameters
    ----------
    overview : DataArray
        (lat, lon) product map over the whole domain (m3 m-3); a global one is drawn on a Robinson map.
    fields : mapping name -> DataArray
        (lat, lon) fields at their native resolution, each on its own grid (e.g. a 0.05° zoom product beside the
        coarse global product of the same region, ERA5-Land at twice the product's spacing, ESA CCI), m3 m-3. Each
        is drawn with its own cell edges over the cells that overlap ``box`` (a coarse cell the box lies in is
        kept whole); a ``resolution`` attribute (degrees) gives the spacing of a field with one cell there.
    box : (west, east, south, north)
        The sub-box, degrees.
    overview_name : str
        Title of panel (a).

    One colour scale for every panel: the 2nd-98th percentile of the overview and of the fields' cells in the box.
    """
    w, e, s, n = box
    steps = {k: grid_step(f["lat"], f.attrs.get("resolution", np.nan)) for k, f in fields.items()}
    inside = {k: cells_in_box(f, box, steps[k]) for k, f in fields.items()}
    vmin, vmax = robust_limits([overview, *inside.values()])
    ncol = 2 if len(fields) > 1 else 1
    nrow = int(np.ceil(len(fields) / ncol))
    aspect = map_aspect(box)
    pw = 2.2
    glob = is_global(extent(overview))
    ow = 5.2 if glob else 3.6  # the overview panel: a 2:1 world, or the domain
    height = max(nrow * (0.75 * pw / aspect + 0.42) + 0.45, 2.6)  # panels end up ~0.75 pw wide
    fig = plt.figure(figsize=(ow + ncol * pw + 1.0, height), layout="constrained")
    gs = fig.add_gridspec(1, 2, width_ratios=(ow, ncol * pw))
    ax = map_axes(fig, gs[0], extent=extent(overview), nbins=3)
    im = mesh(ax, overview, cmap=cmap, vmin=vmin, vmax=vmax)
    frame(ax, box, color="#D55E00", lw=1.5)
    if glob:  # a box too small to see on the globe is marked by a point as well as its frame
        ax.plot([(w + e) / 2], [(s + n) / 2], marker="s", ms=5, mfc="none", mec="#D55E00", mew=1.2,
                transform=PLATE_CARREE)
    ax.set_title(overview_name, fontsize=8.5)
    panel_letter(ax, 0)
    axes = [ax]
    sub = gs[1].subgridspec(nrow, ncol)
    for i, (name, da) in enumerate(fields.items()):
        r, c = divmod(i, ncol)
        ax = map_axes(fig, sub[r, c], extent=box, nbins=2,
                            grid_labels=("l" if c == 0 else "") + ("b" if r == nrow - 1 else ""))
        axes.append(ax)
        if inside[name].size:
            im = mesh(ax, inside[name], step=steps[name] if np.isfinite(steps[name]) else None, cmap=cmap,
                      vmin=vmin, vmax=vmax)
        else:
            ax.text(0.5, 0.5, "no cell", transform=ax.transAxes, ha="center", va="center", fontsize=8)
        res = steps[name]
        ax.set_title(f"{name}\n({res:.2f}° grid)" if np.isfinite(res) else name, fontsize=8)
        panel_letter(ax, i + 1)
    cb = fig.colorbar(im, ax=axes[1:], shrink=0.9, pad=0.02, extend="both")  # one scale for every panel
    cb.set_label(f"soil moisture ({SM_UNITS})")
    fig.suptitle(f"Spatial detail{(' — ' + title) if title else ''}{title_suffix(label)}", fontsize=9.5)
    return fig


# ----------------------------------------------------------------------------------------------------------
# Figures 11-12: time series and trends
# ----------------------------------------------------------------------------------------------------------
_ZORDER = {"ESA CCI": 1, "ERA5-Land": 2, PRODUCT: 3, "GLASS-MODIS": 4, "twin truth": 5}


def fig_domain_series(monthly: Mapping[str, pd.Series], transitions: Sequence | None = None,
                      platforms: Sequence[str] | None = None, label: str = ""):
    """Domain-mean soil moisture through the period: monthly means (top) and annual-mean anomalies (bottom).

    ``monthly``: ``{name: monthly domain-mean Series (DatetimeIndex, m3 m-3)}`` (``GLASS-AVHRR``, ``ERA5-Land``,
    ``ESA CCI``, ``GLASS-MODIS``, ``twin truth``); ``transitions``: dates of AVHRR platform changes (dotted
    lines), ``platforms`` their
    names (the platform starting at each date).
    """
    fig, axes = plt.subplots(2, 1, figsize=(9.0, 5.0), sharex=True, layout="constrained",
                             gridspec_kw={"height_ratios": (1.4, 1.0)})
    annual = {}
    for name, s in monthly.items():
        s = s.dropna()
        if not len(s):
            continue
        lw = 1.2 if name == PRODUCT else (0.6 if name == "ESA CCI" else 0.8)
        axes[0].plot(s.index, s.values, lw=lw, color=PRODUCT_COLORS.get(name), label=name,
                     ls="--" if name == "GLASS-MODIS" else "-", zorder=_ZORDER.get(name, 2))
        a = s.groupby(s.index.year).mean()
        n = s.groupby(s.index.year).count()
        a = a[n >= 9]
        if len(a):
            annual[name] = a
    # anomalies relative to each series' mean over the years all of them cover
    years = sorted(set.intersection(*[set(a.index) for a in annual.values()])) if annual else []
    for name, a in annual.items():
        base = a.loc[years].mean() if years else a.mean()
        x = pd.to_datetime([f"{y}-07-01" for y in a.index])
        axes[1].plot(x, a.values - base, marker="o", ms=2.5, lw=1.2 if name == PRODUCT else 0.8,
                     color=PRODUCT_COLORS.get(name), label=name,
                     ls="--" if name == "GLASS-MODIS" else "-", zorder=_ZORDER.get(name, 2))
    axes[1].axhline(0, color="k", lw=0.5)
    axes[0].set_ylabel(f"monthly mean SM\n({SM_UNITS})")
    axes[1].set_ylabel(f"annual-mean anomaly\n({SM_UNITS})")
    axes[1].set_xlabel("time (year)")
    if transitions is not None:
        for k, d in enumerate(transitions):
            for ax in axes:
                ax.axvline(pd.Timestamp(d), color="0.5", lw=0.7, ls=":")
            if platforms is not None and k < len(platforms):
                axes[0].text(pd.Timestamp(d), 1.0, f" {platforms[k]}", transform=axes[0].get_xaxis_transform(),
                             fontsize=5.8, color="0.35", va="bottom", ha="left", rotation=0)
    fig.legend(*axes[0].get_legend_handles_labels(), ncol=min(5, len(monthly)), fontsize=7.5, frameon=False,
               loc="outside lower center")
    for i, ax in enumerate(axes):
        ax.grid(lw=0.3, alpha=0.5)
        panel_letter(ax, i)
    ref = f" (anomalies vs {years[0]}–{years[-1]})" if years else ""
    fig.suptitle(f"Domain-mean surface soil moisture{ref}{title_suffix(label)}", fontsize=9.5)
    return fig


def fig_trend_maps(trends: Mapping[str, xr.Dataset], alpha: float = 0.05, period: str = "", label: str = "",
                   note: str = "", land: xr.DataArray | None = None):
    """Sen's slope of annual means per decade for each product, stippled where the Mann-Kendall p < ``alpha``.

    ``trends``: ``{product: Dataset with slope (m3 m-3 decade-1) and p_value (1) on (lat, lon)}``, e.g. from
    :func:`glass_sm.evaluation.trends.trend_map`. Diverging ``RdBu`` (drying red, wetting blue) with symmetric limits.
    ``note`` is printed under the title (e.g. that a short record makes the slopes illustrative only).
    ``land``: bool (lat, lon); land cells without a slope are grey, the ocean white. A global extent gives 2:1
    Robinson panels.
    """

    prods = list(trends)
    lim = sym_limit([trends[p]["slope"] for p in prods])
    ext = [extent(trends[p]["slope"]) for p in prods]
    bounds = (min(x[0] for x in ext), max(x[1] for x in ext), min(x[2] for x in ext), max(x[3] for x in ext))
    glob = is_global(bounds)
    pw = 3.4 if glob else 2.3
    fig = plt.figure(figsize=(pw * len(prods) + 0.6, pw / map_aspect(bounds) + 1.15), layout="constrained")
    gs = fig.add_gridspec(1, len(prods))
    axes, im = [], None
    for j, p in enumerate(prods):
        ax = map_axes(fig, gs[j], extent=bounds, grid_labels="b" + ("l" if j == 0 else ""), nbins=3)
        axes.append(ax)
        ds = trends[p]
        if land is not None:
            nodata(ax, ds["slope"], land)
        im = mesh(ax, ds["slope"], cmap="RdBu", vmin=-lim, vmax=lim)
        if "p_value" in ds:
            sig = (ds["p_value"] < alpha).values & np.isfinite(ds["slope"].values)
            la, lo = np.meshgrid(np.asarray(ds["lat"]), np.asarray(ds["lon"]), indexing="ij")
            ax.scatter(lo[sig], la[sig], s=1.5 if glob else 5, c="k", marker="o", ec="white", lw=0.3 * (not glob),
                       transform=PLATE_CARREE,
                       zorder=5)
            frac = float(sig.sum() / max(np.isfinite(ds["slope"].values).sum(), 1))
        else:
            frac = np.nan
        med = float(ds["slope"].median())
        ax.text(0.97, 0.04, f"median {med:+.4f}\np<{alpha}: {frac:.0%}", transform=ax.transAxes, ha="right",
                va="bottom", fontsize=6.3, bbox=dict(fc="white", ec="none", alpha=0.75, pad=1))
        ax.set_title(p, fontsize=8.5)
        panel_letter(ax, j)
    cb = fig.colorbar(im, ax=axes, orientation="horizontal", shrink=0.5, aspect=35, pad=0.02, extend="both")
    cb.set_label(f"Sen's slope of annual means ({TREND_UNITS}); dots: Mann-Kendall p < {alpha}")
    fig.suptitle(f"Soil-moisture trends{(' ' + period) if period else ''}{title_suffix(label)}"
                 + (f"\n{note}" if note else ""), fontsize=9.5)
    return fig

