"""Stage 05 — validation: the one module notebook ``05_validation`` calls.

Every function takes the :class:`~glass_sm.stages.StageContext` and the data sets of :func:`load_inputs`, writes
its tables through :func:`glass_sm.contract.write_table` and its figures through ``ctx.savefig``, and returns
them; the ``*_text`` functions turn a returned table into the markdown the notebook shows (no number in the
notebook's prose is computed anywhere else). The science is in :mod:`glass_sm.evaluation`: ``insitu``
(stations), ``intercompare`` (product vs product, the true error), ``tcol`` (triple collocation), ``breaks``
(temporal consistency), ``trends`` (Sen / Mann-Kendall), ``aggregate`` (area-weighted domain means, classes).

Tables: ``validation_sites``, ``validation_summary``, ``wet_bias`` (by aridity and soil-moisture class, and by
climate zone and continent), ``intercomparison``, ``intercomparison_maps``,
``triple_collocation``, ``breaks``, ``domain_means``, ``trends``, ``trends_summary``, ``true_error`` and
``true_error_maps`` (twin only). Figures: ``05_insitu_boxplots``, ``05_wet_bias``, ``05_wet_bias_regions``,
``05_intercomparison_maps``,
``05_temporal_consistency``, ``05_trend_maps``, ``05_true_error_maps`` (twin only).

Units: soil moisture and its errors in m3 m-3; trends in m3 m-3 decade-1; correlations dimensionless.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from glass_sm.contract import write_table
from glass_sm.data.cube import maybe_load, open_cube
from glass_sm.evaluation import aggregate, breaks as brk, insitu, intercompare, regions as reg, tcol, trends as trd
from glass_sm.figures import maps
from glass_sm.figures.style import PRODUCT_COLORS, SM_UNITS, TREND_UNITS
from glass_sm.io.esa_cci import read_esa_cci_sm
from glass_sm.io.ismn import read_ismn
from glass_sm.platforms import transition_dates
from glass_sm.product import open_product
from glass_sm.stages import StageContext

__all__ = [
    "CONFIG_SECTIONS", "PAPER_LABEL", "PAPER_REPORTED", "ValidationData", "load_inputs", "held_out_mask",
    "insitu_sites", "plot_insitu", "with_paper_values", "insitu_summary", "insitu_text", "wet_bias",
    "plot_wet_bias", "wet_bias_text", "REGION_KINDS", "plot_wet_bias_regions",
    "wet_bias_regions_text", "intercomparison", "plot_maps", "intercomparison_text",
    "triple_collocation", "tc_text", "domain_series", "temporal_consistency", "plot_temporal_consistency",
    "breaks_text", "trends", "plot_trend_maps", "trends_text", "true_error", "true_error_text",
]

CONFIG_SECTIONS = ("run", "domain", "period", "data", "models", "validation", "figures")
"""Parameter sections stage 05 reads (``models`` for ``sm_bins``, the classes of the wet-bias table)."""

PAPER_LABEL = "paper, real data"
"""How the paper's own numbers are labelled wherever they are shown beside ours."""

PAPER_REPORTED = pd.DataFrame(
    [
        {"product": "GLASS-AVHRR", "period": "pre-2000", "metric": "r", "value": 0.73,
         "source": "Zhang et al. (2025), ESSD 17, 5181-5207, abstract: median R over pre-2000 ISMN sites"},
        {"product": "GLASS-AVHRR", "period": "pre-2000", "metric": "ubrmse", "value": 0.041,
         "source": "Zhang et al. (2025), ESSD 17, 5181-5207, abstract: median ubRMSE (m3 m-3) over pre-2000 "
                   "ISMN sites"},
    ]
)
"""Values the paper reports for its in situ validation (real data, real ISMN sites): median Pearson R
(dimensionless) and median ubRMSE (m3 m-3) of GLASS-AVHRR at the ISMN sites with data before 2000."""

PRODUCT, ERA5, LABELS, CCI, TRUTH = "GLASS-AVHRR", "ERA5-Land", "GLASS-MODIS", "ESA CCI", "twin truth"
_WET_COLUMNS = ["reference", "unit", "class_kind", "class", "estimate", "n", "bias_mean", "bias_median",
                "abs_bias_mean", "n_pixels"]
REGION_KINDS = reg.REGION_KINDS
_BIAS_COLUMNS = {PRODUCT: "bias_product", ERA5: "bias_era5"}


def _fmt(x, spec: str = ".3f") -> str:
    """A number for the prose ('n/a' when missing)."""
    return "n/a" if x is None or not np.isfinite(x) else format(x, spec)


# ----------------------------------------------------------------------------------------------------------
# 1 Data
# ----------------------------------------------------------------------------------------------------------
@dataclass
class ValidationData:
    """The data sets of stage 05, each daily soil moisture in m3 m-3 on its own grid (``(time, lat, lon)``)."""

    product: xr.DataArray
    era5: xr.DataArray
    labels: xr.DataArray
    cci: xr.DataArray
    land: xr.DataArray  #: bool (lat, lon) of the cube
    stations: tuple  #: ``(table, daily)`` of :func:`glass_sm.io.ismn.read_ismn`
    truth: xr.DataArray | None = None  #: the twin's truth (None on real data)
    aridity: xr.DataArray | None = None  #: the twin's aridity index P/PET (lat, lon), dimensionless
    held_out: xr.DataArray | None = None  #: bool (lat, lon): pixels stage 03 never trained on (site split)
    _files: tuple = ()

    @property
    def products(self) -> dict[str, xr.DataArray]:
        """Every data set scored against the stations, by name (the twin's truth last, when known)."""
        out = {PRODUCT: self.product, ERA5: self.era5, LABELS: self.labels, CCI: self.cci}
        return out | ({TRUTH: self.truth} if self.truth is not None else {})

    @property
    def station_table(self) -> pd.DataFrame:
        """The sensors, one row each (``sensor_id``, ``lat``, ``lon``, ``start``, ``end``, ``n_daily``, ``note``)."""
        return self.stations[0].reset_index()

    def describe(self) -> str:
        """One line: the product's days and cells, ESA CCI's cells, the number of sensors."""
        p, t = self.product, pd.DatetimeIndex(self.product.time.values)
        return (f"product: {p.sizes['time']} days x {p.sizes['lat']} x {p.sizes['lon']} cells, {t[0].date()} .. "
                f"{t[-1].date()}; ESA CCI: {self.cci.sizes['lat']} x {self.cci.sizes['lon']} cells of 0.25 deg; "
                f"{len(self.station_table)} in situ sensors")

    def close(self) -> None:
        """Close the files held open (the cube, the truth)."""
        for f in self._files:
            f.close()


def load_inputs(ctx: StageContext) -> ValidationData:
    """The product (stage 04), the cube's ERA5-Land and labels, ESA CCI, the stations and, on the twin, the truth.

    Fields small enough (:func:`glass_sm.data.cube.maybe_load`) are loaded into memory; a large domain stays lazy.
    """
    cfg, vc = ctx.cfg, ctx.cfg.validation
    product = maybe_load(open_product(ctx.paths.product))
    cube = open_cube(ctx.paths.cube)
    files = [cube]
    truth = aridity = None
    truth_ds = ctx.open_truth()
    if truth_ds is not None:
        files.append(truth_ds)
        truth = maybe_load(truth_ds["sm_true"].sel(time=product.time)).rename(TRUTH)
        aridity = truth_ds["aridity_index"].load()
    return ValidationData(
        product=product,
        era5=maybe_load(cube["sm_era5land"].sel(time=product.time)).rename(ERA5),
        labels=maybe_load(cube["sm_label"].sel(time=product.time)).rename(LABELS),
        cci=read_esa_cci_sm(cfg.data.esa_cci_dir, cfg.period.start, cfg.period.end, domain=ctx.domain,
                            progress=False).rename(CCI),
        land=cube["land_mask"].load() == 1,
        stations=read_ismn(cfg.data.stations_dir, depth=(vc.depth_from, vc.depth_to), start=cfg.period.start,
                           end=cfg.period.end, progress=False),
        truth=truth, aridity=aridity,
        held_out=held_out_mask(ctx.paths.checkpoint_json, product.lat.values, product.lon.values),
        _files=tuple(files))


def held_out_mask(checkpoint_json, lat, lon) -> xr.DataArray | None:
    """Pixels of the held-out blocks of a site split (``True``), from the checkpoint's metadata.

    Stage 03 records ``extra.split`` and ``extra.split_info`` (``block_size``, ``test_blocks`` as
    ``[block row, block column]`` of the cube's grid) in ``models/atlstm_final.json``; a pixel at row i, column
    j is held out when ``[i // block_size, j // block_size]`` is a test block.

    Parameters
    ----------
    checkpoint_json : path-like
        ``models/atlstm_final.json``.
    lat, lon : array_like
        The cube's (and product's) cell centres, degrees, in the cube's order (latitude descending).

    Returns
    -------
    xarray.DataArray or None
        Bool ``(lat, lon)``; None when the file is missing or the split is not a site split (a random or year
        split holds out days, not pixels).
    """
    path = Path(checkpoint_json)
    extra = json.loads(path.read_text()).get("extra", {}) if path.is_file() else {}
    info = extra.get("split_info", {})
    if extra.get("split") != "site" or "test_blocks" not in info:
        return None
    bs, lat, lon = int(info["block_size"]), np.asarray(lat), np.asarray(lon)
    mask = np.zeros((lat.size, lon.size), bool)
    for br, bc in info["test_blocks"]:
        mask[int(br) * bs:(int(br) + 1) * bs, int(bc) * bs:(int(bc) + 1) * bs] = True
    return xr.DataArray(mask, dims=("lat", "lon"), coords={"lat": lat, "lon": lon}, name="held_out")


# ----------------------------------------------------------------------------------------------------------
# 2-3 In situ validation
# ----------------------------------------------------------------------------------------------------------
def insitu_sites(ctx: StageContext, data: ValidationData) -> pd.DataFrame:
    """Every product at every sensor (``validation_sites``), with ``pixel_held_out`` (NaN without a site split)."""
    cfg, vc = ctx.cfg, ctx.cfg.validation
    sites = insitu.validate_products(data.products, data.stations, min_days=vc.min_days, n_boot=vc.n_boot,
                                     seed=cfg.run.seed, split_periods=vc.split_periods, start=cfg.period.start,
                                     end=cfg.period.end)
    sites["pixel_held_out"] = np.nan
    if data.held_out is not None:
        where = insitu.locate_stations(data.product, sites["lat"], sites["lon"])
        held = data.held_out.values[where["ilat"].clip(0), where["ilon"].clip(0)]
        sites["pixel_held_out"] = np.where(where["inside"].to_numpy(), held, False)
    write_table(ctx.paths, "validation_sites", sites)
    return sites


def plot_insitu(ctx: StageContext, sites: pd.DataFrame, names) -> plt.Figure:
    """Box plots of R, ubRMSE and bias of the scored sensors per data set and period (``05_insitu_boxplots``)."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    scored = sites[sites["status"] == "ok"]
    periods = [p for p in ("pre-2000", "both", "post-2000") if p in set(sites["period"])]
    names = list(names)
    width = 0.8 / len(names)
    for ax, (metric, label) in zip(axes, [("r", "R (1)"), ("ubrmse", f"ubRMSE ({SM_UNITS})"),
                                          ("bias", f"bias ({SM_UNITS})")]):
        for i, name in enumerate(names):
            for j, period in enumerate(periods):
                v = scored.loc[(scored["product"] == name) & (scored["period"] == period), metric].dropna().to_numpy()
                x = j + (i - (len(names) - 1) / 2) * width
                if v.size:
                    ax.boxplot([v], positions=[x], widths=width * 0.85, patch_artist=True, showfliers=False,
                               boxprops={"facecolor": f"C{i}", "alpha": 0.45}, medianprops={"color": f"C{i}"})
                    ax.plot(np.full(v.size, x), v, "o", ms=3, color=f"C{i}", label=name)
        ax.set_xticks(range(len(periods)), periods)
        ax.set_xlim(-0.6, len(periods) - 0.4)
        ax.set_ylabel(label)
        if metric == "bias":
            ax.axhline(0, color="k", lw=0.5)
    handles = {h.get_label(): h for ax in axes for h in ax.get_lines() if not h.get_label().startswith("_")}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), bbox_to_anchor=(0.5, -0.04))
    fig.suptitle(f"Per-sensor metrics against in situ, by period of the collocated days — {ctx.data_label}")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    ctx.savefig(fig, "05_insitu_boxplots")
    return fig


def with_paper_values(summary: pd.DataFrame, paper: pd.DataFrame = PAPER_REPORTED,
                      data_label: str = "") -> pd.DataFrame:
    """Our median table with the paper's reported medians as extra columns on the matching rows.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`glass_sm.evaluation.insitu.summarize_sites` grouped by ``['product', 'period']`` (index or columns).
    paper : pandas.DataFrame
        Rows ``product, period, metric, value, source`` (default :data:`PAPER_REPORTED`).
    data_label : str
        What our numbers are computed on (e.g. ``glass_sm.figures.style.TWIN_LABEL``), written in a ``data`` column.

    Returns
    -------
    pandas.DataFrame
        One row per (product, period) of either table (outer join: a paper row without a matching group of ours
        is kept with NaN metrics), with ``paper_<metric>`` columns, ``paper_data`` (:data:`PAPER_LABEL`) and
        ``paper_source`` where the paper reports a value.
    """
    ours = summary.reset_index() if {"product", "period"} - set(summary.columns) else summary.copy()
    ours = ours.assign(data=data_label)
    wide = paper.pivot_table(index=["product", "period"], columns="metric", values="value", aggfunc="first")
    wide.columns = [f"paper_{m}" for m in wide.columns]
    src = paper.groupby(["product", "period"])["source"].agg("; ".join).rename("paper_source")
    wide = wide.join(src).reset_index()
    wide["paper_data"] = PAPER_LABEL
    return ours.merge(wide, on=["product", "period"], how="outer", sort=False)


def insitu_summary(ctx: StageContext, sites: pd.DataFrame, names) -> pd.DataFrame:
    """Medians per data set and period beside the paper's reported values (``validation_summary``)."""
    summary = insitu.summarize_sites(sites, by=["product", "period"], metrics=("r", "bias", "rmse", "ubrmse"),
                                     total=False)
    med = with_paper_values(summary, data_label=ctx.data_label)
    order = {"product": list(names), "period": ["pre-2000", "both", "post-2000", "unknown"]}
    med = med.sort_values(["product", "period"], key=lambda c: c.map({v: i for i, v in enumerate(order[c.name])}),
                          ignore_index=True)
    write_table(ctx.paths, "validation_summary", med)
    return med


def _row(table: pd.DataFrame, **match) -> pd.Series | None:
    m = table[np.logical_and.reduce([table[k] == v for k, v in match.items()])]
    return m.iloc[0] if len(m) else None


def insitu_text(med: pd.DataFrame, sites: pd.DataFrame, data_label: str) -> str:
    """The product's medians per period (``validation_summary``), the truth's floor, unscored sensors, the paper."""
    lines = []
    for label in ("pre-2000", "both", "post-2000"):
        rw = _row(med, product=PRODUCT, period=label)
        if label == "both" and rw is None:
            continue
        if rw is not None and rw["n_sites"] > 0:
            lines.append(f"* **{label}** ({int(rw['n_sites'])} of {int(rw['n_listed'])} sensors scored): median R "
                         f"{_fmt(rw['r'], '.2f')}, ubRMSE {_fmt(rw['ubrmse'])} m³ m⁻³, bias "
                         f"{_fmt(rw['bias'], '+.3f')} m³ m⁻³.")
        else:
            n_listed = int(rw["n_listed"]) if rw is not None and np.isfinite(rw["n_listed"]) else 0
            lines.append(f"* **{label}**: no scored sensor ({n_listed} listed) in this run.")
    tt = _row(med, product=TRUTH, period="post-2000")
    if tt is not None and tt["n_sites"] > 0:
        lines.append(f"* The twin's truth itself reaches a post-2000 median R of {_fmt(tt['r'], '.2f')} and ubRMSE "
                     f"{_fmt(tt['ubrmse'])} m³ m⁻³ against the same sensors: the point-to-pixel floor of this twin.")
    not_scored = sites[(sites["product"] == PRODUCT) & (sites["status"] != "ok")]
    if len(not_scored):
        lines.append("* Listed, not scored: " + "; ".join(f"{s}: {st}" for s, st in
                                                              zip(not_scored["station"], not_scored["status"])) + ".")
    paper = PAPER_REPORTED.set_index("metric")["value"]
    return (f"GLASS-AVHRR against in situ on the {data_label}:\n\n" + "\n".join(lines) +
            f"\n\nFor reference ({PAPER_LABEL}): median R {paper['r']:.2f} and ubRMSE {paper['ubrmse']:.3f} m³ m⁻³ "
            "at the pre-2000 ISMN sites.")


# ----------------------------------------------------------------------------------------------------------
# 4 Wet bias
# ----------------------------------------------------------------------------------------------------------
def _wet_bias_pixels(data: ValidationData, edges) -> list[pd.DataFrame]:
    truth = data.truth
    pix = pd.DataFrame({
        "bias_product": (data.product - truth).mean("time").where(data.land).values.ravel(),
        "bias_era5": (data.era5 - truth).mean("time").where(data.land).values.ravel(),
        "mean_sm": truth.mean("time").values.ravel(),
        "aridity_index": data.aridity.values.ravel(),
    }).dropna(subset=["bias_product", "bias_era5"])
    pix["aridity"] = aggregate.aridity_class(pix["aridity_index"])
    pix["mean_sm_class"] = aggregate.sm_class(pix["mean_sm"], edges)
    return [aggregate.bias_by_class(pix, by, _BIAS_COLUMNS).assign(reference=TRUTH, unit="pixels")
            for by in ("aridity", "mean_sm_class")]


def _wet_bias_stations(data: ValidationData, sites: pd.DataFrame, edges) -> list[pd.DataFrame]:
    st = sites[(sites["status"] == "ok") & sites["product"].isin([PRODUCT, ERA5])]
    st = st.pivot_table(index="sensor_id", columns="product", values="bias", aggfunc="mean").rename(
        columns=_BIAS_COLUMNS)
    if not len(st):
        return []
    meta = data.station_table.set_index("sensor_id").loc[st.index]
    st["mean_sm"] = [data.stations[1][s].mean() for s in st.index]
    st["mean_sm_class"] = aggregate.sm_class(st["mean_sm"], edges)
    bys = ["mean_sm_class"]
    if data.truth is not None:
        w = insitu.locate_stations(data.truth, meta["lat"], meta["lon"])
        st["aridity"] = aggregate.aridity_class(data.aridity.values[w["ilat"], w["ilon"]])
        bys = ["aridity", "mean_sm_class"]
    cols = {est: col for est, col in _BIAS_COLUMNS.items() if col in st}
    return [aggregate.bias_by_class(st.reset_index(), by, cols).assign(reference="in situ", unit="sensors")
            for by in bys]


def wet_bias(ctx: StageContext, data: ValidationData, sites: pd.DataFrame, regions=None) -> pd.DataFrame:
    """Bias of ERA5-Land and of the product (``wet_bias``) by aridity and mean-soil-moisture class, and by climate
    zone and continent (``class_kind`` ``climate_zone`` / ``continent``).

    Against the truth (twin only): per class, the mean over land pixels of each pixel's mean bias (``unit``
    ``pixels``); per region, over the region's land pixel-days, area-weighted (``unit`` ``pixel-days``, with
    ``n_pixels``; :func:`glass_sm.evaluation.aggregate.bias_by_region`). Against the stations (``sites``, section 2,
    twin and real data): per class or region, the sensors' mean biases (``unit`` ``sensors``), a sensor in the
    region of its product pixel (:mod:`glass_sm.evaluation.regions`). ``regions``:
    ``(lat, lon) -> {'climate_zone': ..., 'continent': ...}`` at the
    cell centres (default :func:`glass_sm.evaluation.regions.earth_regions` with the run's cell size); a region
    with no pixel-day or sensor has no row.
    """
    edges = ctx.cfg.models.sm_bins
    regions = regions or functools.partial(reg.earth_regions, res=ctx.domain.res)
    parts = (_wet_bias_pixels(data, edges) if data.truth is not None else []) + \
        _wet_bias_stations(data, sites, edges)
    if data.truth is not None:
        parts.append(reg.pixel_bias_by_region({ERA5: data.era5, PRODUCT: data.product}, data.truth, data.land,
                                              regions).assign(reference=TRUTH, unit="pixel-days"))
    parts.append(reg.station_bias_by_region(sites, _BIAS_COLUMNS, regions).assign(reference="in situ",
                                                                                 unit="sensors"))
    parts = [p for p in parts if p is not None and len(p)]
    wet = pd.concat(parts, ignore_index=True).reindex(columns=_WET_COLUMNS) if parts else \
        pd.DataFrame(columns=_WET_COLUMNS)
    write_table(ctx.paths, "wet_bias", wet)
    return wet


def plot_wet_bias(ctx: StageContext, wet: pd.DataFrame) -> plt.Figure:
    """Mean bias per aridity class (twin) or mean-soil-moisture class (real data), per reference (``05_wet_bias``)."""
    by_aridity = (wet["class_kind"] == "aridity").any()
    refs = [r for r in (TRUTH, "in situ") if (wet["reference"] == r).any()]
    fig, axes = plt.subplots(1, max(len(refs), 1), figsize=(5.5 * max(len(refs), 1), 3.8), squeeze=False)
    for ax, ref in zip(axes[0], refs):
        sub = wet[(wet["reference"] == ref) & (wet["class_kind"] == ("aridity" if by_aridity else "mean_sm_class"))
                  & (wet["class"] != "all")]
        classes = list(dict.fromkeys(sub["class"]))
        for i, est in enumerate((ERA5, PRODUCT)):
            v = sub[sub["estimate"] == est].set_index("class").reindex(classes)
            ax.bar(np.arange(len(classes)) + (i - 0.5) * 0.38, v["bias_mean"], width=0.38, label=est,
                   color=f"C{i + 1}")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xticks(range(len(classes)), classes)
        ax.set_ylabel(f"mean bias ({SM_UNITS})")
        ax.set_title(f"against {ref} ({sub['unit'].iloc[0] if len(sub) else 'none'})")
        ax.legend()
    fig.suptitle(f"Wet bias by {'aridity class' if by_aridity else 'mean soil-moisture class'} — {ctx.data_label}")
    fig.tight_layout()
    ctx.savefig(fig, "05_wet_bias")
    return fig


def wet_bias_text(wet: pd.DataFrame) -> str:
    """ERA5-Land's and the product's bias against the truth (overall and per aridity class) and the stations."""
    lines = []
    e, p = _row(wet, reference=TRUTH, estimate=ERA5, **{"class": "all"}), \
        _row(wet, reference=TRUTH, estimate=PRODUCT, **{"class": "all"})
    if e is not None and p is not None:
        lines.append(f"* Against the truth, over {int(p['n'])} land pixels, ERA5-Land's mean bias is "
                     f"{_fmt(e['bias_mean'], '+.3f')} m³ m⁻³ and the product's {_fmt(p['bias_mean'], '+.3f')} m³ m⁻³ "
                     f"(mean absolute bias {_fmt(e['abs_bias_mean'])} → {_fmt(p['abs_bias_mean'])} m³ m⁻³).")
        ar = wet[(wet["reference"] == TRUTH) & (wet["class_kind"] == "aridity") & (wet["class"] != "all")]
        for cls, g in ar.groupby("class", sort=False):
            g = g.set_index("estimate")
            lines.append(f"  * {cls} ({int(g.loc[ERA5, 'n'])} pixels): ERA5-Land {_fmt(g.loc[ERA5, 'bias_mean'], '+.3f')}"
                         f", product {_fmt(g.loc[PRODUCT, 'bias_mean'], '+.3f')} m³ m⁻³.")
    e, p = _row(wet, reference="in situ", estimate=ERA5, **{"class": "all"}), \
        _row(wet, reference="in situ", estimate=PRODUCT, **{"class": "all"})
    if e is not None and p is not None:
        lines.append(f"* Against the stations ({int(p['n'])} sensors scored): median bias ERA5-Land "
                     f"{_fmt(e['bias_median'], '+.3f')}, product {_fmt(p['bias_median'], '+.3f')} m³ m⁻³.")
    return "\n".join(lines) if lines else "No bias could be computed in this run."


def _regions(wet: pd.DataFrame, ref: str, kind: str) -> pd.DataFrame:
    """Rows of one reference and region kind, one per region: ``n``, ``n_pixels`` and the two estimates' biases."""
    sub = wet[(wet["reference"] == ref) & (wet["class_kind"] == kind)]
    if not len(sub):
        return pd.DataFrame()
    order = list(dict.fromkeys(sub["class"]))
    t = sub.pivot_table(index="class", columns="estimate", values="bias_mean", aggfunc="first").reindex(order)
    t["n"] = sub.groupby("class")["n"].max().reindex(order)
    t["n_pixels"] = sub.groupby("class")["n_pixels"].max().reindex(order)
    return t


def plot_wet_bias_regions(ctx: StageContext, wet: pd.DataFrame) -> plt.Figure:
    """Mean bias of ERA5-Land and of the product per climate zone (left) and continent (right), one row per
    reference (the truth over land pixel-days, the stations), ``n`` under each bar pair (``05_wet_bias_regions``)."""
    refs = [r for r in (TRUTH, "in situ") if ((wet["reference"] == r) & wet["class_kind"].isin(REGION_KINDS)).any()]
    nrow = max(len(refs), 1)
    fig, axes = plt.subplots(nrow, 2, figsize=(11.5, 3.4 * nrow + 0.4), squeeze=False,
                             gridspec_kw={"width_ratios": (1.0, 1.25)})
    for i, ref in enumerate(refs):
        for j, kind in enumerate(REGION_KINDS):
            ax, t = axes[i, j], _regions(wet, ref, kind)
            if not len(t):
                ax.set_axis_off()
                continue
            x = np.arange(len(t))
            for k, est in enumerate((ERA5, PRODUCT)):
                if est in t:
                    ax.bar(x + (k - 0.5) * 0.38, t[est].to_numpy(float), width=0.38, label=est,
                           color=PRODUCT_COLORS.get(est, f"C{k + 1}"))
            unit = "pixel-days" if ref == TRUTH else "sensors"
            ax.set_xticks(x, [f"{c}\nn={int(n):,}" for c, n in zip(t.index, t["n"])], fontsize=7,
                          rotation=25 if len(t) > 4 else 0, ha="right" if len(t) > 4 else "center")
            ax.axhline(0, color="k", lw=0.5)
            ax.set_xlim(-0.7, max(len(t), 3) - 0.3)  # a single region keeps bars of the usual width
            ax.set_ylabel(f"mean bias ({SM_UNITS})")
            ax.set_title(f"by {REGION_KINDS[kind]}, against {ref} ({unit})", fontsize=9)
            ax.grid(axis="y", lw=0.3, alpha=0.5)
            if i == 0 and j == 0:
                ax.legend(fontsize=7.5, frameon=False)
    if not refs:
        axes[0, 0].text(0.5, 0.5, "no bias by region in this run", ha="center", transform=axes[0, 0].transAxes)
    fig.suptitle(f"ERA5-Land's wet bias and the product's by climate zone and continent — {ctx.data_label}")
    fig.tight_layout()
    ctx.savefig(fig, "05_wet_bias_regions")
    return fig


def wet_bias_regions_text(wet: pd.DataFrame) -> str:
    """Per reference and region kind: each region's ERA5-Land and product mean bias, and where ERA5-Land is wettest
    (``wet_bias`` rows of ``class_kind`` ``climate_zone`` and ``continent``)."""
    lines = []
    for ref in (TRUTH, "in situ"):
        for kind, kname in REGION_KINDS.items():
            t = _regions(wet, ref, kind)
            if not len(t) or ERA5 not in t or PRODUCT not in t:
                continue
            unit = "pixel-days" if ref == TRUTH else "sensors"
            against = "the truth (land pixel-days, area-weighted)" if ref == TRUTH else "the stations"
            head = f"* **by {kname}, against {against}**"
            parts = [f"{c} ({int(r_['n']):,} {unit}): ERA5-Land {_fmt(r_[ERA5], '+.3f')}, product "
                     f"{_fmt(r_[PRODUCT], '+.3f')}" for c, r_ in t.iterrows()]
            wettest = t[ERA5].idxmax() if t[ERA5].notna().any() else None
            tail = (f"; ERA5-Land is wettest in **{wettest}** ({_fmt(t.loc[wettest, ERA5], '+.3f')} m³ m⁻³, the "
                    f"product {_fmt(t.loc[wettest, PRODUCT], '+.3f')} m³ m⁻³)" if wettest is not None and len(t) > 1
                    else "")
            lines.append(f"{head}: " + "; ".join(parts) + f" m³ m⁻³{tail}.")
    return "\n".join(lines) if lines else "No bias by climate zone or continent could be computed in this run."


# ----------------------------------------------------------------------------------------------------------
# 5 Intercomparison maps
# ----------------------------------------------------------------------------------------------------------
def intercomparison(ctx: StageContext, data: ValidationData) -> tuple[pd.DataFrame, dict[str, xr.Dataset]]:
    """The product against ERA5-Land, ESA CCI and GLASS-MODIS on land (``intercomparison``, ``intercomparison_maps``);
    returns the summary table and the maps by comparison name."""
    refs = {ERA5: data.era5, CCI: data.cci, LABELS: data.labels}
    comps = {f"{PRODUCT} vs {k}": intercompare.compare_products(data.product.where(data.land), v,
                                                                min_pairs=ctx.cfg.validation.min_pairs).compute()
             for k, v in refs.items()}
    inter = intercompare.summary_table(comps).reset_index()
    write_table(ctx.paths, "intercomparison", inter)
    write_table(ctx.paths, "intercomparison_maps", intercompare.maps_table(
        comps, "comparison", ("n", "bias", "r", "rmse", "ubrmse", "mean_a", "mean_b")))
    return inter, comps


def _extent(ctx: StageContext) -> tuple[tuple[float, float, float, float], bool]:
    """The domain's (west, east, south, north), degrees, and whether it is mapped as the globe."""
    d = ctx.domain
    ext = (d.west, d.east, d.south, d.north)
    return ext, maps.is_global(ext)


def _aspect(ext) -> float:
    """Width / height of one map panel: the box's own ratio on a tile, 2:1 for the globe."""
    return maps.map_aspect(ext, lo=1e-3, hi=1e3)


def plot_maps(ctx: StageContext, datasets: dict[str, xr.Dataset], name: str, title: str,
              metrics=(("bias", "RdBu_r"), ("r", "viridis"), ("ubrmse", "magma_r")), points=None,
              outline: xr.DataArray | None = None, land: xr.DataArray | None = None) -> plt.Figure:
    """Rows = maps of :func:`glass_sm.evaluation.intercompare.compare_products`, columns = metrics, common colour
    limits per metric; ``points`` (lat/lon table) drawn as triangles, the edge of ``outline`` (bool) dashed, land
    cells of ``land`` (bool) without a value grey. A global domain is drawn whole (Robinson, 2:1 panels)."""
    ext, glob = _extent(ctx)
    titles = {"bias": "bias", "r": "R", "ubrmse": "ubRMSE"}
    width = 5.4 if glob else 4.6
    fig = plt.figure(figsize=(width * len(metrics), ((width - 1.0) / _aspect(ext) + 0.9) * len(datasets)))
    for j, (m, cmap) in enumerate(metrics):
        vals = np.concatenate([ds[m].values.ravel() for ds in datasets.values()])
        vals = vals[np.isfinite(vals)]
        if m == "bias":
            lim = float(np.max(np.abs(vals))) if vals.size else 0.01
            vmin, vmax = -lim, lim
        else:
            vmin, vmax = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
        for i, (label, ds) in enumerate(datasets.items()):
            ax = maps.map_axes(fig, len(datasets), len(metrics), i * len(metrics) + j + 1, extent=ext, nbins=3)
            maps.plot_map(ds[m], ax=ax, fig=fig, cmap=cmap, vmin=vmin, vmax=vmax, land=land,
                          units="1" if m == "r" else "m3 m-3", title=f"{label}: {titles.get(m, m)}")
            if outline is not None and bool(outline.any()) and not bool(outline.all()):
                ax.contour(outline["lon"], outline["lat"], outline.astype(float), levels=[0.5], colors="k",
                           linewidths=0.8, linestyles="--", transform=maps.PLATE_CARREE)
            if points is not None:
                ax.plot(points["lon"], points["lat"], "k^", ms=2.5 if glob else 4, mfc="none",
                        transform=maps.PLATE_CARREE)
    fig.suptitle(f"{title} — {ctx.data_label}")
    fig.subplots_adjust(hspace=0.3, wspace=0.35)
    ctx.savefig(fig, name)
    return fig


def intercomparison_text(inter: pd.DataFrame) -> str:
    """One line per comparison of ``intercomparison``: pixels, common days, median bias, R, ubRMSE."""
    return "\n".join(
        f"* **{c}**: {int(r_['n_pixels'])} pixels, median {_fmt(r_['n_days'], '.0f')} common days; median bias "
        f"{_fmt(r_['bias_median'], '+.3f')} m³ m⁻³, median R {_fmt(r_['r_median'], '.2f')}, median ubRMSE "
        f"{_fmt(r_['ubrmse_median'])} m³ m⁻³." for c, r_ in inter.set_index("comparison").iterrows())


# ----------------------------------------------------------------------------------------------------------
# 6 Triple collocation
# ----------------------------------------------------------------------------------------------------------
def triple_collocation(ctx: StageContext, data: ValidationData) -> pd.DataFrame:
    """(product, ERA5-Land, in situ) at every sensor, raw and anomalies, with the true errors on the twin
    (``triple_collocation``)."""
    cfg = ctx.cfg
    tcs = tcol.tc_table(data.product, data.era5, data.stations, truth=data.truth, names=("product", "era5", "insitu"),
                        min_n=cfg.validation.tc_min_n, start=cfg.period.start, end=cfg.period.end)
    write_table(ctx.paths, "triple_collocation", tcs)
    return tcs


def tc_text(tcs: pd.DataFrame, min_n: int) -> str:
    """Median triple-collocation (and, where known, true) error sd per data set, raw and anomalies."""
    has_truth = tcs["true_err_sd_product"].notna().any()
    lines = []
    for anom, g in tcs[tcs["status"] == "ok"].groupby("anomalies"):
        txt = (f"* {'anomalies' if anom else 'raw values'} ({len(g)} sensors): median triple-collocation error sd — "
               f"product {_fmt(g['err_sd_product'].median())}, ERA5-Land {_fmt(g['err_sd_era5'].median())}, in situ "
               f"{_fmt(g['err_sd_insitu'].median())} m³ m⁻³")
        if has_truth:
            txt += (f"; true — product {_fmt(g['true_err_sd_product'].median())}, ERA5-Land "
                    f"{_fmt(g['true_err_sd_era5'].median())}, in situ {_fmt(g['true_err_sd_insitu'].median())} m³ m⁻³")
        lines.append(txt + ".")
    n_few = int(((tcs["status"] != "ok") & ~tcs["anomalies"].astype(bool)).sum())
    if n_few:
        lines.append(f"* {n_few} sensor(s) not scored (see `status`: too few common days or outside a product).")
    return "\n".join(lines) if lines else \
        f"No sensor has {min_n} common days with both products in this run; all are listed in the table."


# ----------------------------------------------------------------------------------------------------------
# 7 Temporal consistency
# ----------------------------------------------------------------------------------------------------------
def domain_series(data: ValidationData) -> dict[str, pd.Series]:
    """Area-weighted (cos latitude) daily land means of the product, ERA5-Land and the truth, and the residuals of
    the product beyond the truth and ERA5-Land (:func:`glass_sm.evaluation.breaks.rescaled_residual`), m3 m-3."""
    mean = aggregate.domain_mean_series
    series = {PRODUCT: mean(data.product, data.land), ERA5: mean(data.era5, data.land)}
    if data.truth is not None:
        series[TRUTH] = mean(data.truth, data.land)
        series[f"residual vs {TRUTH}"] = brk.rescaled_residual(series[PRODUCT], series[TRUTH])
    series[f"residual vs {ERA5}"] = brk.rescaled_residual(series[PRODUCT], series[ERA5])
    return series


def temporal_consistency(ctx: StageContext, data: ValidationData) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Break tests at every AVHRR platform change inside the period (``breaks``, Bonferroni level 0.05) on the
    domain series of :func:`domain_series` (``domain_means``); returns both."""
    cfg = ctx.cfg
    series = domain_series(data)
    transitions = transition_dates(cfg.period.start, cfg.period.end)
    table = brk.breaks_table(series, transitions, window_days=cfg.validation.break_window_days, alpha=0.05)
    write_table(ctx.paths, "breaks", table)
    write_table(ctx.paths, "domain_means", pd.DataFrame(series).rename_axis("time"), index=True)
    return table, series


def plot_temporal_consistency(ctx: StageContext, series: dict[str, pd.Series], breaks: pd.DataFrame) -> plt.Figure:
    """90-day running means of the domain anomalies (top) and of the product's residuals (bottom), platform changes
    dashed, significant steps starred (``05_temporal_consistency``)."""
    anoms = {k: brk.anomalies(v).rolling(90, center=True, min_periods=30).mean() for k, v in series.items()}
    diffs = [k for k in anoms if k.startswith("residual")]
    fig, axes = plt.subplots(2, 1, figsize=(11, 5.5), sharex=True)
    for k in [k for k in anoms if k not in diffs]:
        axes[0].plot(anoms[k].index, anoms[k].values, lw=1.2 if k == TRUTH else 0.9,
                     color="k" if k == TRUTH else None, label=k)
    for k in diffs:
        axes[1].plot(anoms[k].index, anoms[k].values, lw=0.9, label=k)
    for ax in axes:
        for d in pd.unique(breaks["date"]):
            ax.axvline(d, color="C3", lw=0.8, ls="--")
        ax.axhline(0, color="0.5", lw=0.5)
        ax.legend(loc="upper left", ncol=3)
    for _, b in breaks[breaks["series"].isin(diffs) & breaks["significant"].fillna(False).astype(bool)].iterrows():
        axes[1].annotate(f"{b['step']:+.3f}*", (b["date"], 0), xytext=(3, 8), textcoords="offset points", fontsize=7,
                         color="C3")
    axes[0].set_ylabel(f"anomaly ({SM_UNITS})")
    axes[1].set_ylabel(f"product residual ({SM_UNITS})")
    axes[0].set_title(f"Domain-mean anomalies, 90-day running mean; dashed: NOAA platform changes, "
                      f"*: significant step — {ctx.data_label}")
    ctx.savefig(fig, "05_temporal_consistency")
    return fig


def breaks_text(breaks: pd.DataFrame) -> str:
    """Per residual and for the product: significant steps among the transitions, the largest step (``breaks``)."""
    if not len(breaks):
        return "No AVHRR platform change falls inside this run's period."
    level = 0.05 / breaks["date"].nunique()
    lines = []
    for name in [k for k in pd.unique(breaks["series"]) if str(k).startswith("residual")] + [PRODUCT]:
        b = breaks[breaks["series"] == name]
        if not len(b):
            continue
        sig = b[b["significant"].fillna(False).astype(bool)]
        when = pd.Timestamp(b.loc[b["step"].abs().idxmax(), "date"]).date() if b["step"].notna().any() else "n/a"
        lines.append(f"* **{name}**: {len(sig)} of {len(b)} transitions with a significant step (p < {level:.3g}); "
                     f"largest |step| {_fmt(b['step'].abs().max(), '.4f')} m³ m⁻³ at {when}.")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# 8 Trends
# ----------------------------------------------------------------------------------------------------------
def trends(ctx: StageContext, data: ValidationData) -> tuple[pd.DataFrame, dict[str, xr.Dataset]]:
    """Per-pixel Sen slopes and Mann-Kendall tests of the annual means on land (``trends``) and their summary with
    the trend of the area-weighted domain-mean annual series (``trends_summary``); returns it and the maps."""
    min_periods = ctx.cfg.validation.trend_min_periods
    inputs = {PRODUCT: data.product.where(data.land), ERA5: data.era5.where(data.land)}
    if data.truth is not None:
        inputs[TRUTH] = data.truth.where(data.land)
    tmaps = {k: trd.trend_map(v, min_periods=min_periods).compute() for k, v in inputs.items()}
    table = trd.trend_table(tmaps)
    write_table(ctx.paths, "trends", table)
    annual = {k: aggregate.domain_mean_series(v).groupby(lambda t: t.year).mean() for k, v in inputs.items()}
    tsum = trd.trend_summary(table, reference=TRUTH if data.truth is not None else None, annual_means=annual,
                             min_periods=min_periods)
    write_table(ctx.paths, "trends_summary", tsum)
    return tsum, tmaps


def plot_trend_maps(ctx: StageContext, tmaps: dict[str, xr.Dataset]) -> plt.Figure:
    """Sen slope per decade of each data set, Mann-Kendall p < 0.05 dotted (``05_trend_maps``)."""
    min_periods = ctx.cfg.validation.trend_min_periods
    ext, glob = _extent(ctx)
    width = 5.4 if glob else 4.8
    fig = plt.figure(figsize=(width * len(tmaps), (width - 1.2) / _aspect(ext) + 1.2))
    vals = np.concatenate([m["slope"].values.ravel() for m in tmaps.values()])
    vals = vals[np.isfinite(vals)]
    lim = float(np.max(np.abs(vals))) if vals.size else 0.01
    for i, (name, m) in enumerate(tmaps.items()):
        ax = maps.map_axes(fig, 1, len(tmaps), i + 1, extent=ext, nbins=3)
        maps.plot_map(m["slope"], ax=ax, fig=fig, cmap="BrBG", vmin=-lim, vmax=lim, units=TREND_UNITS,
                      title=f"{name}: Sen slope" + ("" if np.isfinite(m["slope"].values).any() else
                                                    f" (needs {min_periods} years)"))
        sig = (m["p_value"] < 0.05).values
        la, lo = np.meshgrid(m["lat"].values, m["lon"].values, indexing="ij")
        ax.plot(lo[sig], la[sig], "k.", ms=0.8 if glob else 1.5, transform=maps.PLATE_CARREE)
    fig.subplots_adjust(wspace=0.35)
    fig.suptitle(f"Trend of annual means per decade; dots: Mann–Kendall p < 0.05 — {ctx.data_label}")
    ctx.savefig(fig, "05_trend_maps")
    return fig


def trends_text(tsum: pd.DataFrame, min_periods: int) -> str:
    """Median slope, share significant, domain-mean trend and agreement with the truth (``trends_summary``)."""
    ts = tsum.set_index("dataset")
    if ts["n_pixels"].sum() == 0:
        return (f"The period holds {int(ts['n_years'].max())} years, fewer than `validation.trend_min_periods` = "
                f"{min_periods}: no per-pixel trend is computed (the tables list every pixel with NaN).")
    has_truth = TRUTH in ts.index
    return "\n".join(
        f"* **{k}**: median slope {_fmt(r_['slope_median'], '+.4f')} m³ m⁻³ per decade, "
        f"{_fmt(100 * r_['frac_significant'], '.0f')} % of pixels significant (p < 0.05); domain mean "
        f"{_fmt(r_['domain_slope'], '+.4f')} m³ m⁻³ per decade (p = {_fmt(r_['domain_p'], '.2g')})"
        + (f"; slope map vs truth: R {_fmt(r_['slope_r'], '.2f')}, same sign at "
           f"{_fmt(100 * r_['sign_agreement'], '.0f')} % of pixels" if has_truth and k != TRUTH else "") + "."
        for k, r_ in ts.iterrows())


# ----------------------------------------------------------------------------------------------------------
# 9 The true error (twin only)
# ----------------------------------------------------------------------------------------------------------
def true_error(ctx: StageContext, data: ValidationData) -> pd.DataFrame | None:
    """The product, ERA5-Land and the labels against the twin's truth per period and pixel group (``true_error``,
    ``true_error_maps``, figure ``05_true_error_maps``); None on real data (no truth)."""
    if data.truth is None:
        return None
    split = insitu.PERIOD_SPLIT
    periods = {"all": slice(None, None), "pre-2000": slice(None, split - pd.Timedelta(days=1)),
               "post-2000": slice(split, None)}
    regions = None
    if data.held_out is not None:
        regions = xr.where(data.held_out, "held-out pixels", "training pixels").where(data.land)
    table, by_period = intercompare.compare_by_period({PRODUCT: data.product, ERA5: data.era5, LABELS: data.labels},
                                                      data.truth, periods, mask=data.land, regions=regions,
                                                      min_pairs=ctx.cfg.validation.min_pairs)
    write_table(ctx.paths, "true_error", table)
    true_maps = {est: ds for (est, period), ds in by_period.items() if period == "all"}
    te_maps = intercompare.maps_table(true_maps, "estimate")
    held = data.held_out if data.held_out is not None else xr.full_like(data.land, np.nan, float).rename("held_out")
    write_table(ctx.paths, "true_error_maps",
                te_maps.merge(held.to_dataframe().reset_index(), on=["lat", "lon"], how="left"))
    plot_maps(ctx, {k: v for k, v in true_maps.items() if k != LABELS}, "05_true_error_maps",
              "True error: estimate − twin truth (dashed: held-out blocks of stage 03; triangles: in situ sensors)",
              points=data.station_table, outline=data.held_out, land=data.land)
    return table


def true_error_text(table: pd.DataFrame | None) -> str:
    """The product's (and ERA5-Land's) median R, ubRMSE and bias against the truth per period and pixel group."""
    if table is None:
        return "Real data: no truth, no true error map."
    te = table.set_index(["estimate", "period", "pixels"])
    lines = []
    for pname in ("pre-2000", "post-2000", "all"):
        if (PRODUCT, pname, "all") in te.index:
            r_, e_ = te.loc[(PRODUCT, pname, "all")], te.loc[(ERA5, pname, "all")]
            lines.append(f"* **{pname}**: product median R {_fmt(r_['r_median'], '.2f')}, ubRMSE "
                         f"{_fmt(r_['ubrmse_median'])} m³ m⁻³, bias {_fmt(r_['bias_median'], '+.3f')} m³ m⁻³ "
                         f"(ERA5-Land: R {_fmt(e_['r_median'], '.2f')}, ubRMSE {_fmt(e_['ubrmse_median'])}, bias "
                         f"{_fmt(e_['bias_median'], '+.3f')} m³ m⁻³).")
    for px in ("held-out pixels", "training pixels"):
        if (PRODUCT, "all", px) in te.index:
            r_ = te.loc[(PRODUCT, "all", px)]
            lines.append(f"* {px} ({int(r_['n_pixels'])}): product median R {_fmt(r_['r_median'], '.2f')}, ubRMSE "
                         f"{_fmt(r_['ubrmse_median'])} m³ m⁻³.")
    return "The product against the twin's truth, median over land pixels:\n\n" + "\n".join(lines)
