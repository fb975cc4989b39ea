"""Stage 06: the paper's figures and tables, drawn only from the files the earlier stages wrote.

The notebook ``06_paper_figures`` calls one function per figure; each takes the
:class:`~glass_sm.stages.StageContext` and a :class:`FigureBook`, reads its inputs (tables through
:func:`glass_sm.contract.read_table`, the cube, the product and the raw files through ``ctx.paths``/``ctx.cfg``),
draws with :mod:`glass_sm.figures.paper`, computes the numbers its caption quotes (the ``*_numbers`` functions),
captions it with :mod:`glass_sm.figures.captions`, saves ``figures/figNN_<name>.{png,pdf}`` and returns a
:class:`Drawn`. A figure whose inputs are missing is skipped with a message naming the missing files and the stage
that writes them (from the table contract and the run layout). :func:`finish` writes ``tables/figures_index.csv``;
:func:`write_paper_tables` merges the stages' key tables into ``tables/paper_table_*.csv``. Nothing is trained or
predicted here, so restyling a figure never reruns a model.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from IPython.display import Markdown, display

from glass_sm.contract import producing_stage, read_table, table_path, write_table
from glass_sm.data.cube import MAX_LOAD_BYTES, maybe_load
from glass_sm.evaluation.aggregate import domain_mean, monthly_domain_mean
from glass_sm.evaluation.trends import trend_map
from glass_sm.figures import captions, paper
from glass_sm.figures.maps import cells_in_box, extent, grid_step
from glass_sm.figures.style import PRODUCT, data_label, savefig
from glass_sm.grid import Domain
from glass_sm.io.era5land import read_era5land_swvl1
from glass_sm.io.errors import DataError
from glass_sm.io.esa_cci import read_esa_cci_sm
from glass_sm.io.ismn import read_station_headers
from glass_sm.paths import RunPaths
from glass_sm.platforms import platform_of, transition_dates
from glass_sm.product import PRODUCT_GLOB, open_product

__all__ = ["STAGE", "CONFIG_SECTIONS", "Drawn", "FigureBook", "Datasets", "open_datasets", "month_mean",
           "common_years", "sub_box", "zoom_dir", "land_mask", "trend_maps_from_table", "has_trends", "station_table",
           "framework", "study_area", "input_overview", "model_comparison", "accuracy_by_sm", "sequence_length", "attention",
           "insitu_validation", "january_july_maps", "regional_zoom", "domain_series", "trend_maps",
           "study_area_numbers", "input_numbers", "model_comparison_numbers", "accuracy_by_sm_numbers",
           "sequence_length_numbers", "attention_numbers", "insitu_numbers", "monthly_map_numbers", "zoom_numbers",
           "series_numbers", "trend_numbers", "inputs_table", "paper_tables", "write_paper_tables", "finish",
           "summary_text"]

STAGE = "06_paper_figures"
CONFIG_SECTIONS = ("run", "domain", "period", "data", "models", "atlstm", "validation", "figures")
"""Parameter sections stage 06 reads (directly or through the functions it calls)."""

PRODUCT_SOURCE = "product/GLASS_AVHRR_SM_<YYYY>.nc"  #: how the product is named in ``figures_index`` sources
_ATTENTION = {"overall": "attention_by_lag", "SM level": "attention_by_lag_sm", "season": "attention_by_lag_season",
              "climate": "attention_by_lag_climate"}


# ----------------------------------------------------------------------------------------------------------
# Saving, skipping and the index
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Drawn:
    """One figure of the paper as stage 06 made it: the figure, its caption and the numbers the caption quotes;
    or, when ``figure`` is None, why it was skipped. Shown in a notebook as figure, caption and ``table``."""

    name: str
    figure: plt.Figure | None = None
    caption: str = ""
    numbers: object = None
    table: pd.DataFrame | None = None
    skipped: str = ""

    def _ipython_display_(self) -> None:
        if self.figure is None:
            return
        display(self.figure)
        display(Markdown(f"**Figure {int(self.name[3:5])}** (`{self.name}`). {self.caption}"))
        if self.table is not None:
            display(self.table)


@dataclass
class FigureBook:
    """Saves the figures of a run, records them for ``tables/figures_index.csv`` and skips those whose inputs are
    missing. ``formats``, ``dpi``: ``cfg.figures.formats`` and ``cfg.figures.dpi``."""

    paths: RunPaths
    formats: Sequence[str] = ("png", "pdf")
    dpi: int = 300
    records: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def for_context(cls, ctx) -> "FigureBook":
        return cls(ctx.paths, tuple(ctx.cfg.figures.formats), ctx.cfg.figures.dpi)

    def _rel(self, p) -> str:
        try:
            return str(Path(p).resolve().relative_to(Path(self.paths.root).resolve()))
        except ValueError:
            return str(p)

    def _file_stage(self, p: Path) -> str:
        """The stage that writes a run file: the product is stage 04's, the rest (cube, truth, raw inputs) 01's."""
        return "04_global_production" if Path(p).parent == self.paths.product else "01_data_preparation"

    def available(self, name: str, needs: Sequence) -> bool:
        """True when every input exists; else record and print why ``name`` is skipped, naming the stages to run.

        ``needs``: table names of :data:`glass_sm.contract.TABLES` (str) and files, folders or glob patterns (Path).
        """
        missing, stages = [], set()
        for need in needs:
            if isinstance(need, str):
                if not table_path(self.paths, need).exists():
                    missing.append(self._rel(table_path(self.paths, need)))
                    stages.add(producing_stage(need))
                continue
            p = Path(need)
            if not (any(p.parent.glob(p.name)) if any(ch in p.name for ch in "*?[") else p.exists()):
                missing.append(self._rel(p))
                stages.add(self._file_stage(p))
        if missing:
            self.skip(name, f"missing input(s) {', '.join(missing)} (run stage {', '.join(sorted(stages))})")
            return False
        return True

    def skip(self, name: str, reason: str) -> Drawn:
        """Record and print that ``name`` is not drawn, and why."""
        msg = f"SKIPPED {name}: {reason}"
        print(msg)
        self.skipped.append({"figure": name, "reason": msg})
        return Drawn(name, skipped=msg)

    def skipped_figure(self, name: str) -> Drawn:
        """The :class:`Drawn` of a figure :meth:`available` just skipped."""
        return Drawn(name, skipped=self.skipped[-1]["reason"] if self.skipped else "")

    def save(self, name: str, fig, caption: str, sources: Sequence, numbers=None, table=None) -> Drawn:
        """Save ``fig`` as ``figures/<name>.<fmt>``, close it and record it with its caption and sources.

        The figure is laid out once before it is saved: constrained layout settles on its second pass, so the files
        are exactly what the notebook then shows.
        """
        fig.draw_without_rendering()
        files = savefig(fig, self.paths.figures, name, self.formats, self.dpi)
        plt.close(fig)
        self.records.append({"figure": name, "file": self._rel(files[0]),
                             "formats": ";".join(p.suffix.lstrip(".") for p in files),
                             "caption": caption, "sources": ";".join(sorted({self._rel(s) for s in sources}))})
        return Drawn(name, fig, caption, numbers, table)

    def index(self) -> pd.DataFrame:
        """One row per produced figure: ``figure, file, formats, caption, sources``."""
        return pd.DataFrame(self.records, columns=["figure", "file", "formats", "caption", "sources"])


# ----------------------------------------------------------------------------------------------------------
# Reading and reducing what the stages wrote
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Datasets:
    """The daily soil-moisture data sets the figures compare, ``{name: (time, lat, lon) DataArray}`` in m3 m-3,
    and the files each was read from."""

    arrays: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)

    def sources_of(self, names) -> list:
        return [p for n in names for p in self.sources[n]]


def open_datasets(ctx) -> Datasets:
    """``GLASS-AVHRR`` (stage 04), ``ERA5-Land`` and ``GLASS-MODIS`` (the 0.05° cube), ``ESA CCI`` (its own files
    at 0.25°) and, on the twin, ``twin truth``; none without the product. A data set whose files are missing is
    left out; each is loaded into memory when smaller than :data:`glass_sm.data.cube.MAX_LOAD_BYTES`."""
    paths, cfg = ctx.paths, ctx.cfg
    out, src = {}, {}
    if not any(paths.product.glob(PRODUCT_GLOB)):
        return Datasets()
    out[PRODUCT], src[PRODUCT] = open_product(paths.product, name=PRODUCT), [paths.root / PRODUCT_SOURCE]
    if paths.cube.exists():
        cube = xr.open_zarr(paths.cube)
        for var, name in (("sm_era5land", "ERA5-Land"), ("sm_label", "GLASS-MODIS")):
            if var in cube:
                out[name], src[name] = cube[var], [paths.cube]
    cci_dir = Path(cfg.data.esa_cci_dir)
    if cci_dir.exists() and any(cci_dir.rglob("ESACCI-SOILMOISTURE-*.nc")):
        try:
            out["ESA CCI"] = read_esa_cci_sm(cci_dir, cfg.period.start, cfg.period.end, ctx.domain, progress=False)
            src["ESA CCI"] = [cci_dir]
        except DataError as e:  # a figure without ESA CCI is still drawn; say why it is missing
            print(f"ESA CCI left out of the figures: {e}")
    truth = ctx.open_truth()
    if truth is not None:
        out["twin truth"], src["twin truth"] = truth["sm_true"], [ctx.cfg.data.truth_path]
    for name in list(out):
        da = maybe_load(out[name], MAX_LOAD_BYTES)
        da.name = name
        da.attrs.setdefault("units", "m3 m-3")
        out[name] = da
    return Datasets(out, src)


def month_mean(da: xr.DataArray, month: int, years: Sequence[int] | None = None) -> xr.DataArray:
    """Mean over the days of calendar ``month`` (of ``years``, all if None), skipping NaN; keeps attributes."""
    t = da.indexes["time"]
    sel = t.month == month
    if years is not None:
        sel &= np.isin(t.year, list(years))
    return da.isel(time=np.flatnonzero(sel)).mean("time", skipna=True).assign_attrs(da.attrs)


def common_years(series: Mapping[str, xr.DataArray], months: Sequence[int] = (1, 7), min_fraction: float = 0.1
                 ) -> list[int]:
    """Years in which every DataArray has data on at least ``min_fraction`` of the days of each of ``months``.

    A day has data when any cell is valid. The default is low because ESA CCI has few valid winter days
    (frozen soil is masked).
    """
    years = None
    for da in series.values():
        have = da.notnull().any(("lat", "lon")).to_series()
        frac = have.groupby([have.index.year, have.index.month]).mean()
        ok = {int(y) for y in set(have.index.year) if all(frac.get((y, m), 0.0) >= min_fraction for m in months)}
        years = ok if years is None else years & ok
    return sorted(years or [])


def sub_box(bounds: tuple[float, float, float, float], fraction: float = 0.5, res: float = 0.05,
            min_cells: int = 4) -> tuple[float, float, float, float]:
    """A centred sub-box (west, east, south, north) covering ``fraction`` of each side, at least ``min_cells``
    cells wide, snapped to the edges of cells of ``res`` degrees (the run's ``domain.resolution``)."""
    w, e, s, n = bounds
    cx, cy = (w + e) / 2, (s + n) / 2
    hx = max(fraction * (e - w), min_cells * res) / 2
    hy = max(fraction * (n - s), min_cells * res) / 2

    def snap(v):
        return round(round(v / res) * res, 6)

    return (max(w, snap(cx - hx)), min(e, snap(cx + hx)), max(s, snap(cy - hy)), min(n, snap(cy + hy)))


def zoom_dir(ctx) -> Path:
    """Where the regional zoom product is: ``<run>/zoom/product`` (:attr:`glass_sm.paths.RunPaths.zoom`; the
    0.05° product of a region of the same world, produced by stage 04 with this run's checkpoint; same year files
    as ``product/``)."""
    return ctx.paths.zoom.product


def land_mask(ctx) -> xr.DataArray | None:
    """The cube's land mask (bool ``(lat, lon)``: 1 = land with soil), None without a cube. Maps grey the land
    cells without a value with it, so that "no data" is told apart from the sea."""
    if not ctx.paths.cube.exists():
        return None
    cube = xr.open_zarr(ctx.paths.cube)
    return (cube["land_mask"].load() == 1) if "land_mask" in cube else None


def trend_maps_from_table(table: pd.DataFrame) -> dict[str, xr.Dataset]:
    """Stage 05 ``trends.csv`` (``dataset, lat, lon, slope, p_value ...``) as ``{dataset: Dataset(lat, lon)}``."""
    out = {}
    for name, sub in table.groupby("dataset", sort=False):
        ds = sub.drop(columns="dataset").set_index(["lat", "lon"]).to_xarray()
        out[name] = ds.sortby("lat", ascending=False).sortby("lon")
    return out


def has_trends(maps: Mapping[str, xr.Dataset]) -> bool:
    """True when at least one map holds a finite slope."""
    return any(bool(np.isfinite(ds["slope"].values).any()) for ds in maps.values())


def _bounds(ctx) -> tuple[float, float, float, float]:
    d = ctx.domain
    return (d.west, d.east, d.south, d.north)


def _optional(ctx, name: str) -> pd.DataFrame | None:
    """The table ``name`` when its stage wrote it, else None."""
    return read_table(ctx.paths, name) if table_path(ctx.paths, name).exists() else None


def station_table(ctx) -> tuple[pd.DataFrame | None, str, list]:
    """The stations to map: stage 05's scored sites when it ran, else the ISMN files' header lines.

    Returns ``(stations, source, files)``: ``network, station, lat, lon, depth_from, depth_to, first, last``, a
    phrase naming where they come from, and the files read (None, "", [] when neither exists).
    """
    v = _optional(ctx, "validation_sites")
    if v is not None:
        v = v[v["product"] == PRODUCT] if (v["product"] == PRODUCT).any() else v
        st = (v.drop(columns=["first", "last"]).rename(columns={"station_first": "first", "station_last": "last"})
              .drop_duplicates("station")[["network", "station", "lat", "lon", "depth_from", "depth_to", "first",
                                           "last"]])
        return st, "stage 05's `validation_sites.csv`", [table_path(ctx.paths, "validation_sites")]
    if ctx.cfg.data.stations_dir.exists():
        return read_station_headers(ctx.cfg.data.stations_dir), "the ISMN files' headers", [ctx.cfg.data.stations_dir]
    return None, "", []


# ----------------------------------------------------------------------------------------------------------
# The numbers the captions quote (each from a table or a field the figure draws)
# ----------------------------------------------------------------------------------------------------------
def study_area_numbers(stations: pd.DataFrame) -> dict:
    """``n_stations`` and ``n_early`` (stations whose record starts before 2000)."""
    early = int((pd.to_datetime(stations["first"]) < pd.Timestamp("2000-01-01")).sum()) if "first" in stations else 0
    return {"n_stations": len(stations), "n_early": early}


def input_numbers(cube: xr.Dataset, gaps: pd.DataFrame | None = None) -> dict:
    """``first``, ``last`` day of the cube and ``gaps``: stage 01's gap fraction (0-1) by variable."""
    t = cube.indexes["time"]
    g = {} if gaps is None else gaps.set_index("variable")["gap_fraction"].to_dict()
    return {"first": t[0], "last": t[-1], "gaps": g}


def model_comparison_numbers(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per reference: the model with the lowest test RMSE (m3 m-3) with its R², and the AtLSTM's, and ``n``."""
    rows = []
    for ref in [r for r in ("label", "truth") if (metrics.reference == r).any()]:
        t = metrics[metrics.reference == ref].set_index("model")
        best, has_at = t.rmse.idxmin(), "atlstm" in t.index
        rows.append({"reference": ref, "n": int(metrics.n.iloc[0]), "best_model": best,
                     "best_rmse": t.loc[best, "rmse"], "best_r2": t.loc[best, "r2"], "has_atlstm": has_at,
                     "atlstm_rmse": t.loc["atlstm", "rmse"] if has_at else np.nan,
                     "atlstm_r2": t.loc["atlstm", "r2"] if has_at else np.nan})
    return pd.DataFrame(rows, columns=["reference", "n", "best_model", "best_rmse", "best_r2", "has_atlstm",
                                       "atlstm_rmse", "atlstm_r2"])


def accuracy_by_sm_numbers(by_bin: pd.DataFrame) -> dict:
    """The wettest soil-moisture level against the labels: ``bin``, ``n`` and the best and worst RMSE models."""
    t = by_bin[by_bin.reference == "label"] if (by_bin.reference == "label").any() else by_bin
    wet = list(pd.unique(t["bin"]))[-1]
    w = t[t["bin"] == wet].set_index("model")
    return {"bin": wet, "n": int(w.n.iloc[0]), "best_model": w.rmse.idxmin(), "best_rmse": w.rmse.min(),
            "worst_model": w.rmse.idxmax(), "worst_rmse": w.rmse.max()}


def sequence_length_numbers(seq: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The reference (truth when there is one) and, per model, the RMSE at the first window length of the table
    and the lowest RMSE with its window (days)."""
    ref = "truth" if (seq.reference == "truth").any() else "label"
    rows = []
    for m in pd.unique(seq.model):
        t = seq[(seq.model == m) & (seq.reference == ref)].set_index("window")
        if len(t):
            b = int(t.rmse.idxmin())
            rows.append({"model": m, "first_window": int(t.index[0]), "first_rmse": t.rmse.iloc[0],
                         "best_window": b, "best_rmse": t.loc[b, "rmse"]})
    return ref, pd.DataFrame(rows, columns=["model", "first_window", "first_rmse", "best_window", "best_rmse"])


def attention_numbers(summary: pd.DataFrame, model: str = "atlstm") -> pd.Series:
    """The ``all`` row of stage 03's ``attention_summary`` for ``model`` (the production AtLSTM by default; a
    table without a ``model`` column holds that model only)."""
    if "model" in summary:
        summary = summary[summary["model"] == model]
    return summary[summary.grouping == "all"].iloc[0]


def insitu_numbers(sites: pd.DataFrame, summary: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict | None]:
    """Median R, ubRMSE, bias (m3 m-3) and the number of scored sensors per product; and the first row of
    stage 05's summary that carries the paper's reported values (None when none does)."""
    ok = sites[sites["status"] == "ok"] if "status" in sites else sites
    t = pd.DataFrame([{"product": p, "r": sub.r.median(), "ubrmse": sub.ubrmse.median(), "bias": sub.bias.median(),
                       "n_sensors": len(sub)} for p, sub in ok.groupby("product", sort=False)],
                     columns=["product", "r", "ubrmse", "bias", "n_sensors"])
    paper_row = None
    if summary is not None and "paper_r" in summary and summary["paper_r"].notna().any():
        paper_row = summary[summary["paper_r"].notna()].iloc[0].to_dict()
    return t, paper_row


def monthly_map_numbers(maps: Mapping[str, Mapping[int, xr.DataArray]]) -> pd.DataFrame:
    """Area-weighted (cos latitude) mean of each product's January and July map over its valid cells (m3 m-3;
    products with both): on a global grid an unweighted mean would over-count the high latitudes."""
    return pd.DataFrame([{"product": p, "january": float(domain_mean(m[1])), "july": float(domain_mean(m[7]))}
                         for p, m in maps.items() if m.get(1) is not None and m.get(7) is not None],
                        columns=["product", "january", "july"])


def zoom_numbers(fields: Mapping[str, xr.DataArray], box) -> pd.DataFrame:
    """Spatial standard deviation (m3 m-3) over the cells of each field that overlap ``box`` (W, E, S, N; each
    field on its own grid, :func:`glass_sm.figures.maps.cells_in_box`); NaN with a single cell."""
    rows = []
    for k, v in fields.items():
        inside = cells_in_box(v, box)
        rows.append({"field": k, "sd": float(inside.std()) if inside.count() > 1 else np.nan})
    return pd.DataFrame(rows, columns=["field", "sd"])


def series_numbers(monthly: Mapping[str, pd.Series], breaks: pd.DataFrame | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Correlation ``r`` and ``mean_diff`` (m3 m-3) of the monthly product against every other data set (over
    more than 3 common months); and, from stage 05's ``breaks``, the significant steps per residual series (or
    the product's own, when no residual was tested)."""
    prod, rows = monthly.get(PRODUCT), []
    for k, v in monthly.items():
        j = pd.concat([prod, v], axis=1).dropna() if prod is not None and k != PRODUCT else ()
        if len(j) > 3:
            rows.append({"dataset": k, "r": np.corrcoef(j.iloc[:, 0], j.iloc[:, 1])[0, 1],
                         "mean_diff": (j.iloc[:, 0] - j.iloc[:, 1]).mean()})
    steps = []
    if breaks is not None and len(breaks) and "series" in breaks:
        ok = breaks[breaks["status"] == "ok"] if "status" in breaks else breaks
        resid = [n for n in pd.unique(ok["series"]) if str(n).startswith("residual")]
        for name in resid or [PRODUCT]:
            b = ok[ok["series"] == name]
            if len(b):
                steps.append({"series": name, "n_significant": int(b["significant"].fillna(False).astype(bool).sum()),
                              "n": len(b)})
    return (pd.DataFrame(rows, columns=["dataset", "r", "mean_diff"]),
            pd.DataFrame(steps, columns=["series", "n_significant", "n"]))


def trend_numbers(maps: Mapping[str, xr.Dataset], alpha: float = 0.05) -> pd.DataFrame:
    """Median slope (m3 m-3 decade-1) and fraction of pixels with Mann-Kendall p < ``alpha`` per data set."""
    rows = []
    for k, ds in maps.items():
        sl = ds["slope"].values
        ok = np.isfinite(sl)
        if ok.any():
            sig = float((ds["p_value"].values[ok] < alpha).mean()) if "p_value" in ds else np.nan
            rows.append({"dataset": k, "median": np.median(sl[ok]), "frac_significant": sig})
    return pd.DataFrame(rows, columns=["dataset", "median", "frac_significant"])


# ----------------------------------------------------------------------------------------------------------
# The figures, in the paper's order
# ----------------------------------------------------------------------------------------------------------
def _period(cfg) -> str:
    return f"{cfg.period.start:%Y}–{cfg.period.end:%Y}"


def framework(ctx, book: FigureBook) -> Drawn:
    """Figure 1: the framework flowchart (no data; the run's window length and period fill in the text)."""
    cfg = ctx.cfg
    fig = paper.fig_framework(window=cfg.atlstm.final_window, models=cfg.models.names, period=_period(cfg),
                              label=ctx.data_label)
    caption = captions.caption_framework(ctx.is_twin, cfg.atlstm.final_window, _period(cfg))
    return book.save("fig01_framework", fig, caption, [cfg.source_file])


def study_area(ctx, book: FigureBook) -> Drawn:
    """Figure 2: the domain and the stations (:func:`station_table`), elevation from the cube underneath."""
    name = "fig02_study_area"
    stations, source, files = station_table(ctx)
    if stations is None or not len(stations):
        if book.available(name, ["validation_sites", ctx.cfg.data.stations_dir]):
            return book.skip(name, "no station found")
        return book.skipped_figure(name)
    background = None
    if ctx.paths.cube.exists():
        background = xr.open_zarr(ctx.paths.cube)["elevation"].load()
        files = files + [ctx.paths.cube]
    fig = paper.fig_study_area(_bounds(ctx), stations, background, label=ctx.data_label, res=ctx.domain.res)
    numbers = study_area_numbers(stations)
    caption = captions.caption_study_area(ctx.is_twin, numbers, _bounds(ctx), source, res=ctx.domain.res)
    return book.save(name, fig, caption, files, numbers, stations)


def input_overview(ctx, book: FigureBook) -> Drawn:
    """Figure 3: long-term mean maps of the cube's inputs and their monthly domain means; stage 01's gaps."""
    name = "fig03_input_overview"
    if not book.available(name, [ctx.paths.cube]):
        return book.skipped_figure(name)
    cube = maybe_load(xr.open_zarr(ctx.paths.cube))
    gaps = _optional(ctx, "gap_fractions")
    numbers = input_numbers(cube, gaps)
    fig = paper.fig_input_overview(cube, label=ctx.data_label)
    sources = [ctx.paths.cube] + ([table_path(ctx.paths, "gap_fractions")] if gaps is not None else [])
    return book.save(name, fig, captions.caption_inputs(ctx.is_twin, numbers), sources, numbers)


def _tables_figure(ctx, book: FigureBook, name: str, needs: Sequence[str]) -> list[pd.DataFrame] | None:
    """The tables ``needs`` when all exist (else the figure is skipped: None)."""
    if not book.available(name, needs):
        return None
    return [read_table(ctx.paths, n) for n in needs]


def model_comparison(ctx, book: FigureBook) -> Drawn:
    """Figure 4: density scatters of the five models' test predictions against the labels (and the truth)."""
    name, needs = "fig04_model_comparison", ["model_comparison_predictions", "model_comparison"]
    if (got := _tables_figure(ctx, book, name, needs)) is None:
        return book.skipped_figure(name)
    predictions, mc = got
    fig = paper.fig_model_density(predictions, mc, models=ctx.cfg.models.names, label=ctx.data_label)
    numbers = model_comparison_numbers(mc)
    table = mc.pivot_table(index="model", columns="reference", values=["r2", "rmse", "ubrmse", "bias"],
                           sort=False).round(4)
    return book.save(name, fig, captions.caption_model_density(ctx.is_twin, numbers),
                     [table_path(ctx.paths, n) for n in needs], numbers, table)


def accuracy_by_sm(ctx, book: FigureBook) -> Drawn:
    """Figure 5: test accuracy within soil-moisture levels of the reference (stage 02's ``metrics_by_sm_bin``)."""
    name, needs = "fig05_accuracy_by_sm_level", ["metrics_by_sm_bin"]
    if (got := _tables_figure(ctx, book, name, needs)) is None:
        return book.skipped_figure(name)
    fig = paper.fig_accuracy_by_sm(got[0], models=ctx.cfg.models.names, label=ctx.data_label)
    numbers = accuracy_by_sm_numbers(got[0])
    return book.save(name, fig, captions.caption_accuracy_by_sm(ctx.is_twin, numbers),
                     [table_path(ctx.paths, needs[0])], numbers)


def sequence_length(ctx, book: FigureBook) -> Drawn:
    """Figure 6: accuracy against the window length L (stage 03's ``sequence_length``)."""
    name, needs, final = "fig06_sequence_length", ["sequence_length"], ctx.cfg.atlstm.final_window
    if (got := _tables_figure(ctx, book, name, needs)) is None:
        return book.skipped_figure(name)
    fig = paper.fig_sequence_length(got[0], final, label=ctx.data_label)
    ref, numbers = sequence_length_numbers(got[0])
    return book.save(name, fig, captions.caption_sequence_length(ctx.is_twin, ref, numbers, final),
                     [table_path(ctx.paths, needs[0])], numbers)


def attention(ctx, book: FigureBook) -> Drawn:
    """Figure 7: attention weights by lag, overall and by group, and one worked window (stage 03's tables)."""
    name, needs = "fig07_attention_weights", [*_ATTENTION.values(), "attention_summary"]
    if (got := _tables_figure(ctx, book, name, needs)) is None:
        return book.skipped_figure(name)
    example = _optional(ctx, "attention_example")
    fig = paper.fig_attention(dict(zip(_ATTENTION, got)), example, label=ctx.data_label)
    numbers = attention_numbers(got[-1])
    sources = [table_path(ctx.paths, n) for n in needs + (["attention_example"] if example is not None else [])]
    return book.save(name, fig, captions.caption_attention(ctx.is_twin, numbers), sources, numbers)


def insitu_validation(ctx, book: FigureBook) -> Drawn:
    """Figure 8: every data set against the in situ sensors (stage 05's ``validation_sites``/``_summary``)."""
    name, needs = "fig08_insitu_validation", ["validation_sites"]
    if (got := _tables_figure(ctx, book, name, needs)) is None:
        return book.skipped_figure(name)
    summary = _optional(ctx, "validation_summary")
    fig = paper.fig_insitu_validation(got[0], _bounds(ctx), label=ctx.data_label)
    numbers, paper_row = insitu_numbers(got[0], summary)
    sources = [table_path(ctx.paths, n) for n in needs + (["validation_summary"] if summary is not None else [])]
    return book.save(name, fig, captions.caption_insitu(ctx.is_twin, numbers, paper_row), sources, numbers)


def january_july_maps(ctx, book: FigureBook, data: Datasets) -> Drawn:
    """Figure 9: mean January and July soil moisture of every data set over the years all of them cover."""
    name = "fig09_january_july_maps"
    if not book.available(name, [ctx.paths.product / PRODUCT_GLOB, ctx.paths.cube]):
        return book.skipped_figure(name)
    order = [n for n in ("ESA CCI", "ERA5-Land", "GLASS-MODIS", PRODUCT) if n in data.arrays]
    years = common_years({n: data.arrays[n] for n in order}, months=(1, 7))
    if not years:
        return book.skip(name, "no year in which every data set has January and July data")
    maps = {n: {m: month_mean(data.arrays[n], m, years).load() for m in (1, 7)} for n in order}
    fig = paper.fig_monthly_maps(maps, period=f"{years[0]}–{years[-1]}", label=ctx.data_label, bounds=_bounds(ctx),
                                 land=land_mask(ctx))
    numbers = monthly_map_numbers(maps)
    caption = captions.caption_monthly_maps(ctx.is_twin, numbers, years, res=ctx.domain.res,
                                            cci_res=_step(data.arrays.get("ESA CCI")))
    return book.save(name, fig, caption, data.sources_of(order), numbers)


def _step(da: xr.DataArray | None) -> float | None:
    """The latitude spacing of a field, degrees (None without the field or with one row)."""
    return grid_step(da["lat"]) if da is not None and da.sizes.get("lat", 0) > 1 else None


def _july(da: xr.DataArray, year: int) -> xr.DataArray:
    """Mean of July ``year`` (NaN skipped), loaded; keeps the attributes."""
    return da.sel(time=slice(f"{year}-07-01", f"{year}-07-31")).mean("time").load().assign_attrs(da.attrs)


def _era5_july(cfg, year: int, box, pad: float, bounds) -> xr.DataArray:
    """ERA5-Land's July mean from its own files over ``box`` widened by ``pad`` degrees (a coarse ERA5-Land grid
    keeps the points of the cells that overlap the box), never beyond the run's ``bounds`` (W, E, S, N), which
    its files cover."""
    w, e, s, n = box
    bw, be, bs, bn = bounds
    era5 = read_era5land_swvl1(cfg.data.era5land_dir, pd.Timestamp(f"{year}-07-01").date(),
                               pd.Timestamp(f"{year}-07-31").date(),
                               domain=Domain.from_bounds(max(s - pad, bs), min(n + pad, bn), max(w - pad, bw),
                                                         min(e + pad, be)), progress=False)
    return era5.mean("time").load()


def regional_zoom(ctx, book: FigureBook, data: Datasets) -> Drawn:
    """Figure 10: spatial detail in July, each data set at its native resolution (ERA5-Land read from its own
    files, not the cube's interpolation).

    With a regional zoom product (:func:`zoom_dir`: the 0.05° product of a region of the same world, produced with
    this run's checkpoint), the box is the zoom's region and the zoom is drawn beside this run's (coarse) product
    of the same region, July of the last year both have. Without one, a central sub-box of the domain (half of each
    side, snapped to the run's cells), July of the last year every data set has.
    """
    name, cfg = "fig10_regional_zoom", ctx.cfg
    if not book.available(name, [ctx.paths.product / PRODUCT_GLOB, cfg.data.era5land_dir]):
        return book.skipped_figure(name)
    res, zdir = ctx.domain.res, zoom_dir(ctx)
    zoom = open_product(zdir, name=PRODUCT) if any(zdir.glob(PRODUCT_GLOB)) else None
    if zoom is not None:
        box = extent(zoom)
        have = data.arrays[PRODUCT].notnull().any(("lat", "lon")).to_series()
        zhave = zoom.notnull().any(("lat", "lon")).to_series()
        years = sorted({t.year for t in have.index[have & (have.index.month == 7)]} &
                       {t.year for t in zhave.index[zhave & (zhave.index.month == 7)]})
        if not years:
            return book.skip(name, f"no July in both the product and the regional zoom ({zdir})")
        year = years[-1]
        zres = _step(zoom) or 0.05
        fields = {f"{PRODUCT} zoom": _july(zoom, year).assign_attrs(resolution=zres),
                  f"{PRODUCT} this run": _july(data.arrays[PRODUCT], year).assign_attrs(resolution=res)}
    else:
        box = sub_box(_bounds(ctx), 0.5, res=res)
        years = common_years({n: a for n, a in data.arrays.items() if n != "GLASS-MODIS"}, months=(7,))
        year = (years or [cfg.period.end.year])[-1]
        fields = {PRODUCT: _july(data.arrays[PRODUCT], year).assign_attrs(resolution=res)}
    overview = fields.get(PRODUCT, fields.get(f"{PRODUCT} this run"))
    fields["ERA5-Land"] = _era5_july(cfg, year, box, 2 * res, _bounds(ctx))
    fields |= {k: _july(data.arrays[k], year) for k in ("ESA CCI", "twin truth") if k in data.arrays}
    fig = paper.fig_regional_zoom(overview, fields, box, title=f"July {year}", label=ctx.data_label,
                                  overview_name=f"{PRODUCT}, this run's domain")
    numbers = zoom_numbers(fields, box)
    sources = data.sources_of([k for k in (PRODUCT, "ESA CCI", "twin truth") if k in data.arrays]) + \
        [cfg.data.era5land_dir] + ([zdir] if zoom is not None else [])
    caption = captions.caption_zoom(ctx.is_twin, box, f"July {year}", numbers, res=res,
                                    zoom_res=_step(zoom) if zoom is not None else None)
    return book.save(name, fig, caption, sources, numbers)


def domain_series(ctx, book: FigureBook, data: Datasets) -> Drawn:
    """Figure 11: monthly domain means (area-weighted) and annual anomalies, AVHRR platform changes marked."""
    name, cfg = "fig11_domain_mean_series", ctx.cfg
    if not book.available(name, [ctx.paths.product / PRODUCT_GLOB]):
        return book.skipped_figure(name)
    monthly = {n: monthly_domain_mean(data.arrays[n]) for n in
               [PRODUCT, "ERA5-Land", "ESA CCI", "GLASS-MODIS", "twin truth"] if n in data.arrays}
    tr = transition_dates(cfg.period.start, cfg.period.end)
    breaks = _optional(ctx, "breaks")
    fig = paper.fig_domain_series(monthly, tr, list(platform_of(tr)), label=ctx.data_label)
    agreement, steps = series_numbers(monthly, breaks)
    sources = data.sources_of(monthly) + ([table_path(ctx.paths, "breaks")] if breaks is not None else [])
    return book.save(name, fig, captions.caption_series(ctx.is_twin, agreement, steps), sources,
                     {"agreement": agreement, "breaks": steps})


def trend_maps(ctx, book: FigureBook, data: Datasets) -> Drawn:
    """Figure 12: stage 05's per-pixel Sen's slopes; a run shorter than ``validation.trend_min_periods`` years
    has none, and its slopes are then computed here from every year, captioned as illustrative only."""
    name, cfg = "fig12_trend_maps", ctx.cfg
    if (got := _tables_figure(ctx, book, name, ["trends"])) is None:
        return book.skipped_figure(name)
    tmaps = trend_maps_from_table(got[0])
    n_years = cfg.period.end.year - cfg.period.start.year + 1
    from_stage05 = has_trends(tmaps)
    sources = [table_path(ctx.paths, "trends")]
    if not from_stage05 and n_years >= 3 and data.arrays:
        tmaps = {n: trend_map(data.arrays[n], min_periods=n_years).load()
                 for n in [PRODUCT, "ERA5-Land", "twin truth"] if n in data.arrays}
        sources += data.sources_of(tmaps)
    if not has_trends(tmaps):
        return book.skip(name, f"no finite trend ({n_years} years in the run)")
    note = "" if from_stage05 else f"illustrative only: {n_years} annual means (< validation.trend_min_periods)"
    fig = paper.fig_trend_maps(tmaps, period=_period(cfg), label=ctx.data_label, note=note, land=land_mask(ctx))
    numbers = trend_numbers(tmaps)
    caption = captions.caption_trends(ctx.is_twin, numbers, n_years, from_stage05, cfg.validation.trend_min_periods)
    return book.save(name, fig, caption, sources, numbers)


# ----------------------------------------------------------------------------------------------------------
# The paper's tables, merged from the stages' tables, and the index
# ----------------------------------------------------------------------------------------------------------
def inputs_table(cube: xr.Dataset) -> pd.DataFrame:
    """The paper's input-data table from the cube: variable, description, units, grid (the cube's spacing),
    period, source."""
    t = cube.indexes["time"]
    grid = f"{grid_step(cube['lat'], 0.05):g} deg (cube)"
    rows = []
    for v in cube.data_vars:
        da = cube[v]
        period = ""
        if "time" in da.dims:
            valid = da.notnull().any(("lat", "lon")).values if v.startswith("sm_") else None
            tt = t[valid] if valid is not None else t
            period = f"{tt[0]:%Y-%m-%d}..{tt[-1]:%Y-%m-%d}" if len(tt) else ""
        rows.append({"variable": v, "description": da.attrs.get("long_name", ""), "units": da.attrs.get("units", ""),
                     "dims": " x ".join(da.dims), "grid": grid, "period": period,
                     "source": cube.attrs.get("source", "")})
    return pd.DataFrame(rows)


def _columns(t: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    return t[[c for c in cols if c in t]]


def paper_tables(ctx) -> dict[str, pd.DataFrame]:
    """The paper's tables from what the stages wrote: ``{paper_table_<name>: DataFrame}`` (missing inputs skipped).

    Every table gets a ``data`` column (synthetic twin or real data). Units: soil moisture metrics in m3 m-3,
    R and R² dimensionless, trends in m3 m-3 decade-1.
    """
    out = {}
    if ctx.paths.cube.exists():
        out["paper_table_inputs"] = inputs_table(maybe_load(xr.open_zarr(ctx.paths.cube)))
    mc, timing = _optional(ctx, "model_comparison"), _optional(ctx, "model_timing")
    if mc is not None:
        t = _columns(mc, ["split", "window", "model", "reference", "n", "r2", "r2_lo", "r2_hi", "r", "rmse",
                          "rmse_lo", "rmse_hi", "ubrmse", "bias"])
        if timing is not None:
            t = t.merge(_columns(timing, ["model", "n_parameters", "epochs_run", "train_seconds",
                                          "inference_windows_per_s"]), on="model", how="left")
        out["paper_table_model_comparison"] = t
    if (bb := _optional(ctx, "metrics_by_sm_bin")) is not None:
        out["paper_table_accuracy_by_sm"] = _columns(bb, ["model", "reference", "bin", "n", "r", "rmse", "rmse_lo",
                                                          "rmse_hi", "ubrmse", "bias"])
    if (sq := _optional(ctx, "sequence_length")) is not None:
        out["paper_table_sequence_length"] = _columns(sq, ["model", "window", "reference", "n", "r2", "rmse",
                                                           "rmse_lo", "rmse_hi", "ubrmse", "bias"])
    for name, source in (("attention", "attention_summary"), ("insitu", "validation_summary"),
                         ("intercomparison", "intercomparison"), ("trends", "trends_summary"),
                         ("breaks", "breaks")):  # copied as the stages wrote them
        if (table := _optional(ctx, source)) is not None:
            out[f"paper_table_{name}"] = table
    label = data_label(ctx.is_twin)
    return {k: (t if "data" in t else t.assign(data=label)) for k, t in out.items()}


def write_paper_tables(ctx, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Write each ``paper_table_*`` (contract-checked); returns ``table, rows, file`` per table written."""
    rows = []
    for name, t in tables.items():
        path = write_table(ctx.paths, name, t)
        rows.append({"table": name, "rows": len(t), "file": str(path.relative_to(ctx.paths.root))})
    return pd.DataFrame(rows, columns=["table", "rows", "file"])


def finish(ctx, book: FigureBook) -> pd.DataFrame:
    """Write ``tables/figures_index.csv`` (one row per produced figure); returns the index."""
    index = book.index()
    write_table(ctx.paths, "figures_index", index)
    return index


def summary_text(book: FigureBook) -> str:
    """Markdown: how many figures were produced and skipped (with the reasons), and in how long."""
    lines = [f"**{len(book.records)} figures produced, {len(book.skipped)} skipped**, in "
             f"{time.perf_counter() - book.started:.0f} s; index: `tables/figures_index.csv`."]
    lines += [f"* {s['reason']}" for s in book.skipped]
    return "\n".join(lines)
