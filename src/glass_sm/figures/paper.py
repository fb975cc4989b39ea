"""Stage 06: the paper's figures and tables, drawn only from files the earlier stages wrote.

Every ``fig_*`` function takes data (tables, DataArrays) or nothing, and returns a :class:`matplotlib.figure.Figure`;
it never trains, predicts or writes. The helpers read what the stages wrote (``open_product``, ``read_station_headers``
...) and reduce it (``month_mean``, ``domain_mean`` ...); :class:`FigureBook` saves the figures
(``results/<run>/figures/figNN_<name>.{png,pdf}``), skips a figure whose inputs are missing with a clear message,
and writes ``tables/figures_index.csv``. The ``caption_*`` functions build each caption from the tables and say
whether the data are the synthetic twin or real data.

Conventions: soil moisture in m3 m-3 (labels ``m$^3$ m$^{-3}$``); sequential colour-blind-safe colormaps
(``cividis`` for soil moisture, ``viridis`` for densities/other fields); diverging ``RdBu`` with symmetric limits
for biases, trends and differences; every axis and colorbar carries its unit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import matplotlib.colors
import matplotlib.ticker

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.colors import LogNorm, TwoSlopeNorm  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle  # noqa: E402

from glass_sm.figures import style as plots  # noqa: E402

__all__ = [
    "SM_UNITS",
    "MODEL_LABELS",
    "PRODUCT",
    "PRODUCT_COLORS",
    "data_label",
    "FigureBook",
    "open_product",
    "read_station_headers",
    "month_mean",
    "common_years",
    "domain_mean",
    "monthly_domain_mean",
    "sub_box",
    "open_datasets",
    "maybe_load",
    "read_era5land_native",
    "trend_maps_from_table",
    "has_trends",
    "paper_tables",
    "fig_framework",
    "fig_study_area",
    "fig_input_overview",
    "fig_model_density",
    "fig_accuracy_by_sm",
    "fig_sequence_length",
    "fig_attention",
    "fig_insitu_validation",
    "fig_monthly_maps",
    "fig_regional_zoom",
    "fig_domain_series",
    "fig_trend_maps",
]

SM_UNITS = plots.SM_UNITS
TREND_UNITS = "m$^3$ m$^{-3}$ decade$^{-1}$"
MODEL_LABELS = {"lstm": "LSTM", "bilstm": "Bi-LSTM", "atlstm": "AtLSTM", "transformer": "Transformer",
                "xgboost": "XGBoost"}
PRODUCT = "GLASS-AVHRR"
"""Name of this run's product in every table and figure (the names of stage 05's tables)."""
# Okabe-Ito colours (colour-blind safe), one per data set, used in every line and box plot
PRODUCT_COLORS = {"GLASS-AVHRR": "#0072B2", "ERA5-Land": "#E69F00", "ESA CCI": "#009E73", "GLASS-MODIS": "#CC79A7",
                  "twin truth": "#000000", "in situ": "#D55E00"}
MODEL_COLORS = {"lstm": "#56B4E9", "bilstm": "#E69F00", "atlstm": "#0072B2", "transformer": "#CC79A7",
                "xgboost": "#D55E00"}
REF_LABELS = {"label": "GLASS-MODIS label", "truth": "twin truth"}


def data_label(is_twin: bool) -> str:
    """What the figures show: the synthetic twin (never the paper's results) or real data."""
    return plots.TWIN_LABEL if is_twin else "real data"


def _fmt_lat(v: float) -> str:
    return f"{abs(v):.2f}° {'N' if v >= 0 else 'S'}"


def _fmt_lon(v: float) -> str:
    return f"{abs(v):.2f}° {'E' if v >= 0 else 'W'}"


def _units(u: str | None) -> str:
    return SM_UNITS if u in (None, "", "m3 m-3", "m**3 m**-3") else u


def _title_suffix(label: str) -> str:
    return f" — {label}" if label else ""


def _mlabel(name: str) -> str:
    return MODEL_LABELS.get(name, name)


def _plabel(name: str) -> str:
    return name


def _panel_letter(ax, i: int, **_) -> None:
    """Prefix the panel's title with (a), (b) ...; a panel without a title gets the letter alone, on the left."""
    letter = f"({chr(97 + i)})"
    title = ax.get_title()
    if title:
        ax.set_title(f"{letter} {title}", fontsize=ax.title.get_fontsize())
    else:
        ax.set_title(letter, loc="left", fontsize=8.5)


# ----------------------------------------------------------------------------------------------------------
# Saving, skipping and the index
# ----------------------------------------------------------------------------------------------------------
_STAGE_PATTERNS = (("product/", "04_global_production"),
                   ("model_comparison|metrics_by_sm_bin|model_timing", "02_model_comparison"),
                   ("sequence_length|attention|atlstm", "03_atlstm_training"),
                   ("validation_|trends|breaks|intercomparison|domain_means", "05_validation"))


def _stage_of(path: str) -> str:
    """The stage that writes a results file (by name), for the skip messages."""
    for pattern, stage in _STAGE_PATTERNS:
        if re.search(pattern, str(path)):
            return stage
    return "01_data_preparation"


@dataclass
class FigureBook:
    """Saves figures, records them in ``tables/figures_index.csv``, and skips figures whose inputs are missing.

    Parameters
    ----------
    root : path-like
        The run folder ``results/<run>``; paths in the index are relative to it.
    formats, dpi
        ``cfg.figures.formats`` and ``cfg.figures.dpi``.
    """

    root: Path
    formats: Sequence[str] = ("png", "pdf")
    dpi: int = 300
    records: list = field(default_factory=list)
    skipped: list = field(default_factory=list)

    def __post_init__(self):
        self.root = Path(self.root)

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    def _rel(self, p) -> str:
        p = Path(p)
        try:
            return str(p.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(p)

    def available(self, name: str, needs: Sequence) -> bool:
        """True when every file (or folder, or glob pattern) in ``needs`` exists; else print why and skip."""
        missing = []
        for p in needs:
            p = Path(p)
            ok = any(p.parent.glob(p.name)) if any(ch in p.name for ch in "*?[") else p.exists()
            if not ok:
                missing.append(self._rel(p))
        if missing:
            stages = sorted({_stage_of(m) for m in missing})
            self.skip(name, f"missing input(s) {', '.join(missing)} (run stage {', '.join(stages)})")
            return False
        return True

    def skip(self, name: str, reason: str) -> None:
        """Record and print that ``name`` is not drawn, and why."""
        msg = f"SKIPPED {name}: {reason}"
        print(msg)
        self.skipped.append({"figure": name, "reason": msg})

    def save(self, name: str, fig, caption: str, sources: Sequence) -> list[Path]:
        """Save ``fig`` as ``figures/<name>.<fmt>``, close it and record it with its caption and sources."""
        files = plots.savefig(fig, self.figures, name, self.formats, self.dpi)
        plt.close(fig)
        self.records.append({"figure": name, "file": self._rel(files[0]),
                             "formats": ";".join(p.suffix.lstrip(".") for p in files),
                             "caption": caption, "sources": ";".join(sorted({self._rel(s) for s in sources}))})
        return files

    def index(self) -> pd.DataFrame:
        return pd.DataFrame(self.records, columns=["figure", "file", "formats", "caption", "sources"])

    def write_index(self, name: str = "figures_index") -> Path:
        """Write ``tables/<name>.csv`` (one row per produced figure)."""
        self.tables.mkdir(parents=True, exist_ok=True)
        path = self.tables / f"{name}.csv"
        tmp = path.with_name(f".{path.name}.partial")
        self.index().to_csv(tmp, index=False)
        os.replace(tmp, path)
        return path


def write_table(df: pd.DataFrame, folder, name: str) -> Path:
    """Write ``<folder>/<name>.csv`` atomically (``paper_table_*`` tables)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    tmp = path.with_name(f".{path.name}.partial")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------------------------------------
# Reading and reducing what the stages wrote (no model, no training)
# ----------------------------------------------------------------------------------------------------------
def open_product(folder, variable: str = "sm") -> xr.DataArray:
    """The daily product ``GLASS_AVHRR_SM_<YYYY>.nc`` of stage 04 as one lazy ``(time, lat, lon)`` DataArray, m3 m-3."""
    files = sorted(Path(folder).glob("GLASS_AVHRR_SM_[0-9][0-9][0-9][0-9].nc"))
    if not files:
        raise FileNotFoundError(f"{folder}: no GLASS_AVHRR_SM_<YYYY>.nc file (stage 04 not run?)")
    ds = xr.open_mfdataset([str(f) for f in files], engine="netcdf4", combine="by_coords",
                           data_vars="minimal", coords="minimal", compat="override")
    da = ds[variable]
    da.attrs.setdefault("units", "m3 m-3")
    return da


_STM_HEADER = re.compile(r"^\s*(\S+)\s+(\S+)\s+(\S+)\s+([-+\d.]+)\s+([-+\d.]+)\s+([-+\d.]+)\s+([-+\d.]+)\s+([-+\d.]+)")


def read_station_headers(folder) -> pd.DataFrame:
    """Station metadata from the header line of ISMN ``.stm`` files (no data read): one row per station.

    Columns ``network, station, lat, lon`` (degrees), ``elevation`` (m), ``depth_from``, ``depth_to`` (m),
    ``first``, ``last`` (dates from the file names; the station's span over its files).
    """
    rows = []
    for f in sorted(Path(folder).rglob("*.stm")):
        if "python_metadata" in f.parts:
            continue
        with open(f, errors="replace") as fh:
            m = _STM_HEADER.match(fh.readline())
        if not m:
            continue
        dates = re.findall(r"_(\d{8})_(\d{8})\.stm$", f.name)
        first, last = (pd.Timestamp(dates[0][0]), pd.Timestamp(dates[0][1])) if dates else (pd.NaT, pd.NaT)
        rows.append({"network": m.group(2), "station": m.group(3), "lat": float(m.group(4)),
                     "lon": float(m.group(5)), "elevation": float(m.group(6)), "depth_from": float(m.group(7)),
                     "depth_to": float(m.group(8)), "first": first, "last": last})
    cols = ["network", "station", "lat", "lon", "elevation", "depth_from", "depth_to", "first", "last"]
    t = pd.DataFrame(rows, columns=cols)
    if t.empty:
        return t
    return (t.groupby(["network", "station"], as_index=False)
             .agg(lat=("lat", "first"), lon=("lon", "first"), elevation=("elevation", "first"),
                  depth_from=("depth_from", "min"), depth_to=("depth_to", "max"), first=("first", "min"),
                  last=("last", "max")))


def month_mean(da: xr.DataArray, month: int, years: Sequence[int] | None = None) -> xr.DataArray:
    """Mean over the days of calendar ``month`` (of ``years``, all if None), skipping NaN; keeps attributes."""
    t = da.indexes["time"]
    sel = t.month == month
    if years is not None:
        sel &= np.isin(t.year, list(years))
    out = da.isel(time=np.flatnonzero(sel)).mean("time", skipna=True)
    return out.assign_attrs(da.attrs)


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


def domain_mean(da: xr.DataArray) -> xr.DataArray:
    """Mean over ``lat`` and ``lon`` (cos-latitude weights, NaN skipped): a daily domain-mean series."""
    w = np.cos(np.deg2rad(da["lat"]))
    return da.weighted(w).mean(("lat", "lon"), skipna=True)


def monthly_domain_mean(da: xr.DataArray, min_fraction: float = 0.2) -> pd.Series:
    """Domain mean of each cell's monthly mean (months with fewer than ``min_fraction`` valid cell-days are NaN).

    Averaging per cell first keeps a gappy product (ESA CCI) from being biased towards the cells observed most.
    """
    valid = da.notnull().resample(time="MS").mean()
    m = da.resample(time="MS").mean(skipna=True).where(valid >= min_fraction)
    s = domain_mean(m).to_series()
    frac = valid.mean(("lat", "lon")).to_series()
    return s.where(frac > 0)


def sub_box(bounds: tuple[float, float, float, float], fraction: float = 0.5, res: float = 0.05,
            min_cells: int = 4) -> tuple[float, float, float, float]:
    """A centred sub-box (west, east, south, north) covering ``fraction`` of each side, snapped to ``res`` cells."""
    w, e, s, n = bounds
    cx, cy = (w + e) / 2, (s + n) / 2
    hx = max(fraction * (e - w), min_cells * res) / 2
    hy = max(fraction * (n - s), min_cells * res) / 2
    snap = lambda v: round(round(v / res) * res, 6)  # noqa: E731
    return (max(w, snap(cx - hx)), min(e, snap(cx + hx)), max(s, snap(cy - hy)), min(n, snap(cy + hy)))


def maybe_load(obj, max_bytes: float = 1.5e9):
    """``obj.load()`` when it fits in ``max_bytes`` (demo and smoke runs: fast numpy reductions), else ``obj``
    unchanged (lazy, dask: a large domain is reduced chunk by chunk)."""
    return obj.load() if obj.nbytes <= max_bytes else obj


def open_datasets(cfg, product_dir=None, cube_path=None, max_load_bytes: float = 1.5e9) -> tuple[dict, dict]:
    """The daily soil-moisture data sets the figures compare, as lazy ``(time, lat, lon)`` DataArrays in m3 m-3.

    ``GLASS-AVHRR`` (stage 04 product), ``ERA5-Land`` and ``GLASS-MODIS`` (the stage-01 cube, 0.05 deg),
    ``ESA CCI`` (its own files at 0.25 deg, read with :func:`glass_sm.io.esa_cci.read_esa_cci_sm`) and, on the
    twin, ``twin truth`` (``data/truth.nc``). A data set whose files are missing is left out; each one is loaded
    into memory when it is smaller than ``max_load_bytes`` (:func:`maybe_load`).

    Returns
    -------
    (datasets, sources)
        ``{name: DataArray}`` and ``{name: [paths read]}``.
    """
    from glass_sm.grid import Domain  # noqa: PLC0415

    root = Path(cfg.results)
    product_dir = Path(product_dir) if product_dir is not None else root / "product"
    cube_path = Path(cube_path) if cube_path is not None else root / "data" / "cube.zarr"
    out, src = {}, {}
    if any(product_dir.glob("GLASS_AVHRR_SM_[0-9][0-9][0-9][0-9].nc")):
        out[PRODUCT] = open_product(product_dir)
        src[PRODUCT] = [product_dir / "GLASS_AVHRR_SM_<YYYY>.nc"]
    if cube_path.exists():
        cube = xr.open_zarr(cube_path)
        for var, name in (("sm_era5land", "ERA5-Land"), ("sm_label", "GLASS-MODIS")):
            if var in cube:
                out[name] = cube[var]
                src[name] = [cube_path]
    cci_dir = Path(cfg.data.esa_cci_dir)
    if cci_dir.exists() and any(cci_dir.rglob("ESACCI-SOILMOISTURE-*.nc")):
        from glass_sm.io.esa_cci import read_esa_cci_sm  # noqa: PLC0415

        from glass_sm.io.errors import DataError  # noqa: PLC0415

        try:
            out["ESA CCI"] = read_esa_cci_sm(cci_dir, cfg.period.start, cfg.period.end, Domain.from_config(cfg),
                                             progress=False)
            src["ESA CCI"] = [cci_dir]
        except DataError as e:  # a figure without ESA CCI is still drawn; say why it is missing
            print(f"ESA CCI left out of the figures: {e}")
    truth = cfg.data.truth_path
    if cfg.is_twin and truth is not None and Path(truth).exists():
        out["twin truth"] = xr.open_dataset(truth, engine="netcdf4")["sm_true"]
        src["twin truth"] = [Path(truth)]
    for name in list(out):
        da = maybe_load(out[name], max_load_bytes)
        da.name = name
        da.attrs.setdefault("units", "m3 m-3")
        out[name] = da
    return out, src


def read_era5land_native(cfg, bounds: tuple[float, float, float, float], start, end) -> xr.DataArray:
    """ERA5-Land daily means on its native 0.1 deg grid over ``bounds`` (west, east, south, north) and dates."""
    from glass_sm.grid import Domain  # noqa: PLC0415
    from glass_sm.io.era5land import read_era5land_swvl1  # noqa: PLC0415

    w, e, s, n = bounds
    da = read_era5land_swvl1(cfg.data.era5land_dir, start, end, domain=Domain.from_bounds(s, n, w, e),
                             progress=False)
    return da


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


def _extent(da: xr.DataArray, pad: float = 0.0) -> tuple[float, float, float, float]:
    lat, lon = np.asarray(da["lat"]), np.asarray(da["lon"])
    dlat = abs(lat[1] - lat[0]) if lat.size > 1 else 0.05
    dlon = abs(lon[1] - lon[0]) if lon.size > 1 else 0.05
    return (float(lon.min() - dlon / 2 - pad), float(lon.max() + dlon / 2 + pad),
            float(lat.min() - dlat / 2 - pad), float(lat.max() + dlat / 2 + pad))


def _mesh(ax, da: xr.DataArray, **kw):
    import cartopy.crs as ccrs  # noqa: PLC0415

    return ax.pcolormesh(np.asarray(da["lon"]), np.asarray(da["lat"]), np.asarray(da), shading="nearest",
                         transform=ccrs.PlateCarree(), rasterized=True, **kw)


def _robust_limits(arrays, lo: float = 2, hi: float = 98) -> tuple[float, float]:
    v = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    v = v[np.isfinite(v)]
    if not v.size:
        return 0.0, 1.0
    a, b = np.percentile(v, [lo, hi])
    if b - a < 1e-6:
        a, b = a - 0.01, b + 0.01
    return float(a), float(b)


def _sym_limit(arrays, q: float = 98) -> float:
    v = np.concatenate([np.abs(np.asarray(a, dtype=float)).ravel() for a in arrays])
    v = v[np.isfinite(v)]
    return float(np.percentile(v, q)) if v.size and np.percentile(v, q) > 0 else 1e-3


def _box(ax, bounds, color="#D55E00", lw=1.2, ls="-"):
    import cartopy.crs as ccrs  # noqa: PLC0415

    w, e, s, n = bounds
    ax.add_patch(Rectangle((w, s), e - w, n - s, fill=False, ec=color, lw=lw, ls=ls, transform=ccrs.PlateCarree(),
                           zorder=5))


# ----------------------------------------------------------------------------------------------------------
# Figure 1: framework
# ----------------------------------------------------------------------------------------------------------
def fig_framework(window: int | None = None, models: Sequence[str] | None = None, period: str = "1982–2021",
                  label: str = ""):
    """Flowchart of the GLASS-AVHRR framework (inputs → preprocessing → AtLSTM → product → validation).

    Drawn with matplotlib patches; needs no data. ``window`` (days), ``models`` and ``period`` only fill in text.
    """
    models = list(models or MODEL_LABELS)
    fig = plt.figure(figsize=(10.0, 5.0))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 50)
    ax.axis("off")
    colors = {"in": "#DCE9F5", "pre": "#FCE9D2", "model": "#D7EFE6", "prod": "#F3DDEA", "val": "#EDEDED"}

    def box(x, y, w, h, text, kind, bold=False, fs=7.5):
        p = FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.25,rounding_size=0.8", fc=colors[kind], ec="0.35",
                           lw=0.8)
        ax.add_patch(p)
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fs,
                fontweight="bold" if bold else "normal", wrap=False, linespacing=1.15)
        return (x, y, w, h)

    def arrow(p, q, style="-|>", color="0.25", rad=0.0, lw=1.0):
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle=style, mutation_scale=10, color=color, lw=lw,
                                     connectionstyle=f"arc3,rad={rad}", shrinkA=2, shrinkB=2))

    # column headers
    heads = [(10, "Inputs (stage 01)"), (31, "Preprocessing (01–02)"), (52.5, "Model (02–03)"),
             (73.5, "Product (04)"), (91, "Validation (05)")]
    for x, t in heads:
        ax.text(x, 47.5, t, ha="center", va="center", fontsize=9, fontweight="bold")
    # inputs
    inputs = [("AVHRR albedo\nGLASS02B05 (BSA, WSA)", "in"), ("AVHRR LST\nGLASS08B31", "in"),
              ("ERA5-Land SM\nswvl1, 0.1°", "in"), ("Terrain (DEM)\nsoil texture", "in"),
              ("GLASS-MODIS SM\nlabels, 2000–", "in")]
    ys = [37.5, 29.5, 21.5, 13.5, 3.5]
    in_boxes = [box(2, y, 16, 6, t, k) for (t, k), y in zip(inputs, ys)]
    # preprocessing
    pre = ["read + QC, scale factors\nCF units", "regrid to 0.05°\ndaily means",
           "gap-fill albedo/LST\nin time (flags kept)",
           f"windows of L{'' if window is None else f' = {window}'} days\nnormalise (train only)"]
    pys = [37.5, 29.5, 21.5, 13.5]
    pre_boxes = [box(23, y, 16, 6, t, "pre") for t, y in zip(pre, pys)]
    for a, b in zip(pre_boxes[:-1], pre_boxes[1:]):
        arrow((a[0] + a[2] / 2, a[1]), (b[0] + b[2] / 2, b[1] + b[3]))
    # inputs join a bus into the reader
    bus = 20.5
    for b in in_boxes[:4]:
        ax.plot([b[0] + b[2] + 0.25, bus], [b[1] + b[3] / 2] * 2, color="0.25", lw=1.0)
    ax.plot([bus, bus], [in_boxes[3][1] + 3, in_boxes[0][1] + 3], color="0.25", lw=1.0)
    arrow((bus, pre_boxes[0][1] + 3), (23, pre_boxes[0][1] + 3))
    # model: AtLSTM internals
    mx, mw = 44, 17
    box(mx, 29, mw, 14, "", "model")
    ax.text(mx + mw / 2, 41.3, "AtLSTM", ha="center", va="center", fontsize=8.5, fontweight="bold")
    cells = [mx + 1.2 + i * 3.9 for i in range(4)]
    for i, cx in enumerate(cells):
        ax.add_patch(Rectangle((cx, 34.5), 2.8, 2.6, fc="white", ec="0.3", lw=0.6))
        ax.text(cx + 1.4, 35.8, "LSTM", ha="center", va="center", fontsize=5.2)
        ax.text(cx + 1.4, 33.3, ["t−L+1", "…", "t−1", "t"][i], ha="center", va="center", fontsize=5.5)
        if i:
            arrow((cells[i - 1] + 2.8, 35.8), (cx, 35.8), lw=0.6)
        arrow((cx + 1.4, 37.1), (mx + mw / 2, 38.4), lw=0.5, style="-")
    ax.text(mx + mw / 2, 39.3, "attention weights α$_t$ → context", ha="center", va="center", fontsize=6.2)
    ax.text(mx + mw / 2, 30.8, "dense → SM$_t$ (m$^3$ m$^{-3}$)", ha="center", va="center", fontsize=6.5)
    cmp_box = box(mx, 15.5, mw, 9, "model comparison on\nidentical samples:\n"
                  + ", ".join(_mlabel(m) for m in models[:3]) + ",\n" + ", ".join(_mlabel(m) for m in models[3:]),
                  "model", fs=6.8)
    box(mx, 3.5, mw, 8, "sequence length L,\nattention by lag,\nfeature importance", "model", fs=6.8)
    arrow((39.2, 16.5), (mx, 20), rad=0.0)
    arrow((mx + mw / 2, cmp_box[1] + cmp_box[3] + 0.3), (mx + mw / 2, 29), lw=1.0)
    ax.text(mx + mw / 2 + 0.6, 26.9, "selected", ha="left", va="center", fontsize=6.3, style="italic")
    arrow((mx + mw + 0.25, 33), (mx + mw + 2.2, 33), style="-", lw=0.8)
    ax.plot([mx + mw + 2.2, mx + mw + 2.2], [33, 7.5], color="0.25", lw=0.8)
    arrow((mx + mw + 2.2, 7.5), (mx + mw + 0.25, 7.5), lw=0.8)
    # labels feed the training
    ax.add_patch(FancyArrowPatch((18.2, 6.5), (mx - 2.0, 15.8), arrowstyle="-", color="#CC79A7", lw=1.0,
                                 connectionstyle="angle,angleA=0,angleB=90,rad=0", shrinkA=2, shrinkB=0))
    arrow((mx - 2.0, 15.8), (mx, 17.6), color="#CC79A7")
    ax.text(30.5, 8.3, "training labels (2000–)", ha="center", va="center", fontsize=6.5, color="#A0507F")
    # product
    box(66, 29, 15, 14, f"seamless daily\n0.05° surface SM\n{period}\n\nCF-NetCDF per year\n+ annual means\n"
        "(tiled inference, Dask)", "prod", fs=7.0)
    arrow((mx + mw + 0.25, 38), (66, 38), lw=1.3)
    # validation
    vals = ["ISMN in situ\nR, ubRMSE, bias", "vs ERA5-Land,\nESA CCI, GLASS-MODIS",
            "January / July maps\nspatial detail", "time series, trends,\nplatform breaks"]
    vys = [37.5, 29.5, 21.5, 13.5]
    vboxes = [box(84, y, 14, 6, t, "val", fs=6.8) for t, y in zip(vals, vys)]
    vbus = 82.7
    ax.plot([81.25, vbus], [36, 36], color="0.25", lw=1.0)
    ax.plot([vbus, vbus], [vboxes[-1][1] + 3, vboxes[0][1] + 3], color="0.25", lw=1.0)
    for b in vboxes:
        arrow((vbus, b[1] + b[3] / 2), (84, b[1] + b[3] / 2), lw=0.8)
    if label:
        ax.text(99, 1.0, f"Figures of this run: {label}", ha="right", va="bottom", fontsize=6.5, style="italic",
                color="0.3")
    return fig


# ----------------------------------------------------------------------------------------------------------
# Figure 2: study area and stations
# ----------------------------------------------------------------------------------------------------------
def fig_study_area(bounds: tuple[float, float, float, float], stations: pd.DataFrame,
                   background: xr.DataArray | None = None, label: str = "", inset_pad: float = 20.0,
                   annotate: bool = True):
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
    """
    import cartopy.crs as ccrs  # noqa: PLC0415
    import cartopy.feature as cfeature  # noqa: PLC0415

    w, e, s, n = bounds
    pad = 0.06 * max(e - w, n - s)
    show_inset = (e - w) < 90
    aspect = min(max((e - w) / max(n - s, 1e-6), 0.5), 3.0)
    wide = aspect > 1.3
    main_w = 5.0 if wide else 4.0
    main_h = main_w / aspect + (1.3 if wide else 0.6)  # map + horizontal colorbar below it
    fig = plt.figure(figsize=(main_w + 3.2, max(main_h, 3.6)), layout="constrained")
    gs = fig.add_gridspec(2, 2, width_ratios=(main_w, 3.0), height_ratios=(1.0, 0.8))
    ax = plots.map_axes(fig, gs[:, 0], extent=(w - pad, e + pad, s - pad, n + pad), nbins=5)
    if background is not None:
        cmap = "Greys" if background.attrs.get("units") == "m" else plots.SM_CMAP
        im = _mesh(ax, background, cmap=cmap, alpha=0.85)
        cb = fig.colorbar(im, ax=ax, shrink=0.7 if wide else 0.75, pad=0.02, aspect=30 if wide else 20,
                          orientation="horizontal" if wide else "vertical")
        name = background.attrs.get("long_name", background.name or "")
        cb.set_label(f"{name} ({_units(background.attrs.get('units'))})")
    _box(ax, bounds, color="#0072B2", lw=1.5)
    st = stations.copy()
    early = (pd.to_datetime(st["first"]) < pd.Timestamp("2000-01-01")) if "first" in st else \
        pd.Series(False, index=st.index)
    groups = [("station from 2000 on", ~early, "o", "#D55E00"), ("station before 2000", early, "^", "#009E73")]
    handles = []
    for name, sel, marker, col in groups:
        if sel.any():
            handles.append(ax.scatter(st.loc[sel, "lon"], st.loc[sel, "lat"], marker=marker, s=38, c=col, ec="k",
                                      lw=0.5, transform=ccrs.PlateCarree(), zorder=6,
                                      label=f"{name} ({int(sel.sum())})"))
    if annotate and 0 < len(st) <= 60:
        _label_points(ax, st["lon"].to_numpy(float), st["lat"].to_numpy(float), st["station"].astype(str).tolist())
    ax.set_title(f"Domain and in situ stations ({len(st)})", fontsize=9)
    if show_inset:
        cx, cy = (w + e) / 2, (s + n) / 2
        hw = max(inset_pad, (e - w)) + 2
        hh = max(inset_pad * 0.7, (n - s)) + 2
        ax2 = plots.map_axes(fig, gs[0, 1], nbins=3, extent=(max(-180, cx - hw), min(180, cx + hw),
                                                             max(-90, cy - hh), min(90, cy + hh)))
        ax2.add_feature(cfeature.LAND.with_scale("50m"), fc="#F2F2F2", ec="none", zorder=0)
        ax2.add_feature(cfeature.OCEAN.with_scale("50m"), fc="#DCE9F5", ec="none", zorder=0)
        # a domain too small to see at this scale is marked by a point as well as its frame
        ax2.plot([cx], [cy], marker="s", ms=4, mfc="none", mec="#D55E00", mew=1.2, transform=ccrs.PlateCarree())
        _box(ax2, bounds, color="#D55E00", lw=1.5)
        ax2.set_title("location of the domain", fontsize=8)
    axt = fig.add_subplot(gs[1, 1])
    axt.axis("off")
    lines = [f"domain: {_fmt_lat(s)} – {_fmt_lat(n)},", f"            {_fmt_lon(w)} – {_fmt_lon(e)}",
             f"{round((e - w) / 0.05)} × {round((n - s) / 0.05)} cells of 0.05°"]
    if "depth_from" in st and "depth_to" in st and len(st):
        lines.append(f"sensor depth {st.depth_from.min() * 100:.0f}–{st.depth_to.max() * 100:.0f} cm")
    if "first" in st and "last" in st and len(st):
        lines.append(f"station records {pd.to_datetime(st['first']).min():%Y}–{pd.to_datetime(st['last']).max():%Y}")
    leg = axt.legend(handles=handles, title="\n".join(lines), loc="upper left", fontsize=7.5, title_fontsize=7.5,
                     frameon=False, alignment="left", bbox_to_anchor=(0.0, 1.0))
    leg.set_zorder(3)
    if label:
        fig.suptitle(f"Study area{_title_suffix(label)}", fontsize=9.5)
    return fig


def _label_points(ax, lon, lat, texts, fontsize: float = 6.0) -> None:
    """Annotate points with short labels, each put at the first of eight offsets whose box overlaps neither a
    label already placed nor another point (display coordinates), so that close stations stay readable."""
    import cartopy.crs as ccrs  # noqa: PLC0415

    fig = ax.figure
    fig.canvas.draw()
    to_px = ax.projection.transform_points(ccrs.PlateCarree(), np.asarray(lon), np.asarray(lat))[:, :2]
    pts = ax.transData.transform(to_px)
    scale = fig.dpi / 72.0
    r = 4 * scale  # marker radius, pixels
    placed = [(x - r, y - r, x + r, y + r) for x, y in pts]
    offsets = [(3, 3), (3, -9), (-3, 3), (-3, -9), (6, -3), (-6, -3), (0, 7), (0, -12)]
    for (x, y), lo, la, t in zip(pts, lon, lat, texts):
        tw, th = 0.62 * fontsize * len(t) * scale, fontsize * scale
        best = offsets[0]
        for dx, dy in offsets:
            x0 = x + dx * scale - (tw if dx < 0 else (tw / 2 if dx == 0 else 0))
            y0 = y + dy * scale
            box = (x0, y0, x0 + tw, y0 + th)
            own = (x - r, y - r, x + r, y + r)
            if not any(b != own and box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
                       for b in placed):
                best = (dx, dy)
                placed.append(box)
                break
        else:
            placed.append((x, y, x + tw, y + th))
        ha = "right" if best[0] < 0 else ("center" if best[0] == 0 else "left")
        ax.annotate(t, (lo, la), xytext=best, textcoords="offset points", fontsize=fontsize, ha=ha,
                    va="bottom", transform=ccrs.PlateCarree(), zorder=7)


# ----------------------------------------------------------------------------------------------------------
# Figure 3: input data overview
# ----------------------------------------------------------------------------------------------------------
_INPUT_MAPS = (("albedo_wsa", "white-sky albedo", "albedo", "viridis"), ("lst", "LST", "LST", "viridis"),
               ("sm_era5land", "ERA5-Land SM", "SM", plots.SM_CMAP),
               ("sm_label", "GLASS-MODIS SM", "SM", plots.SM_CMAP),
               ("elevation", "elevation", "elevation", "Greys"), ("sand", "sand fraction", "sand", "viridis"))


def _unit_label(units: str | None) -> str:
    if units in (None, "", "1", "dimensionless"):
        return "(1)"
    return f"({_units(units)})"


def fig_input_overview(cube: xr.Dataset, label: str = ""):
    """Long-term mean maps of the model inputs and their monthly domain means through the period.

    ``cube``: the stage-01 cube (``albedo_wsa``, ``lst``, ``sm_era5land``, ``sm_label``, ``elevation``, ``sand``);
    missing variables are left out.
    """
    maps = [(v, t, sh, c) for v, t, sh, c in _INPUT_MAPS if v in cube]
    ncol = 3
    nrow = int(np.ceil(len(maps) / ncol))
    extent = _extent(cube)
    aspect = min(max((extent[1] - extent[0]) / max(extent[3] - extent[2], 1e-6), 0.6), 2.5)
    map_h = 2.2 / aspect + 0.5  # map height plus title and tick labels, inches
    series_h = 1.25
    fig = plt.figure(figsize=(9.0, nrow * map_h + 3 * series_h + 0.5), layout="constrained")
    gs = fig.add_gridspec(nrow + 3, ncol, height_ratios=[map_h] * nrow + [series_h] * 3)
    t = cube.indexes["time"]
    for i, (v, title, short, cmap) in enumerate(maps):
        ax = plots.map_axes(fig, gs[i // ncol, i % ncol], extent=extent, nbins=3,
                            grid_labels=("l" if i % ncol == 0 else "") + ("b" if i // ncol == nrow - 1 else ""))
        da = cube[v].mean("time", skipna=True) if "time" in cube[v].dims else cube[v]
        da = da.load()
        im = _mesh(ax, da, cmap=cmap)
        cb = fig.colorbar(im, ax=ax, shrink=0.9, pad=0.02, fraction=0.06)
        cb.set_label(f"{short} {_unit_label(cube[v].attrs.get('units'))}", fontsize=8)
        if "time" in cube[v].dims:
            valid = cube[v].notnull().any(("lat", "lon")).values
            yrs = t[valid]
            span = f"{yrs.min():%Y}–{yrs.max():%Y}" if len(yrs) else ""
            ax.set_title(f"{title}, mean {span}", fontsize=8.5)
        else:
            ax.set_title(title, fontsize=8.5)
        _panel_letter(ax, i)
    series = [("albedo (1)", [("albedo_wsa", "white-sky", "#0072B2"), ("albedo_bsa", "black-sky", "#56B4E9")]),
              ("LST (K)", [("lst", "LST", "#D55E00")]),
              (f"SM ({SM_UNITS})", [("sm_era5land", "ERA5-Land", PRODUCT_COLORS["ERA5-Land"]),
                                    ("sm_label", "GLASS-MODIS", PRODUCT_COLORS["GLASS-MODIS"])])]
    axes = []
    for k, (ylab, vars_) in enumerate(series):
        ax = fig.add_subplot(gs[nrow + k, :], sharex=axes[0] if axes else None)
        axes.append(ax)
        for v, name, col in vars_:
            if v in cube:
                s = monthly_domain_mean(cube[v])
                ax.plot(s.index, s.values, lw=0.9, color=col, label=name)
        ax.set_ylabel(ylab)
        ax.legend(loc="upper left", ncol=2, fontsize=7, framealpha=0.8, edgecolor="none")
        _panel_letter(ax, len(maps) + k, x=-0.005)
        if k < 2:
            ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("time (year); monthly domain means")
    fig.suptitle(f"Model inputs{_title_suffix(label)}", fontsize=10)
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
    models = [m for m in (models or [c for c in MODEL_LABELS if c in predictions]) if m in predictions]
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
                ax.set_title(_mlabel(m), fontsize=9)
            if j == 0:
                ax.set_ylabel(f"predicted SM\n({SM_UNITS})")
            if i == len(refs) - 1:
                ax.set_xlabel(f"{REF_LABELS.get(ref, ref)}\n({SM_UNITS})")
            ax.tick_params(labelsize=7)
    if hb is not None:
        fig.colorbar(hb, ax=axes, shrink=0.85, label="test windows per hexagon (count)")
    fig.suptitle(f"Predicted vs reference soil moisture on the test set{_title_suffix(label)}", fontsize=9.5)
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
                ax.errorbar(xpos, y, yerr=err, fmt="o", ms=3, capsize=1.5, lw=0.8, color=MODEL_COLORS.get(name),
                            label=_mlabel(name))
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
            _panel_letter(ax, i * len(metrics) + j)
    axes[0, 0].legend(fontsize=6.5, ncol=1, loc="upper left", frameon=False)
    fig.suptitle(f"Test accuracy by soil-moisture level{_title_suffix(label)}", fontsize=9.5)
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
                            color=MODEL_COLORS.get(name), label=f"{_mlabel(name)} vs {REF_LABELS.get(ref, ref)}")
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
        _panel_letter(ax, i)
    fig.suptitle(f"Sequence length of the input window (test set){_title_suffix(label)}", fontsize=9.5)
    return fig


def fig_attention(tables: Mapping[str, pd.DataFrame], example: pd.DataFrame | None = None, label: str = ""):
    """Attention weights of the production AtLSTM.

    (a) mean weight by lag over all test windows, with the uniform weight 1/L; (b) weight relative to uniform
    for each group (soil-moisture level, season, climate), a diverging map centred on 1; (c) one worked example
    window (bars) with its ERA5-Land input (line), when ``example`` is given.

    ``tables``: ``{'overall': attention_by_lag.csv, 'SM level': ..._sm.csv, 'season': ..., 'climate': ...}``
    (stage 03; columns ``group, n, lag_0 ... lag_{L-1}``); ``example``: ``attention_example.csv``.
    """
    tables = {k: v for k, v in tables.items() if v is not None and len(v)}
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
    ax.plot(lags, w, marker="o", ms=3, color=MODEL_COLORS["atlstm"], label=f"all test windows (n={int(ov.n.iloc[0])})")
    ax.axhline(1 / L, color="0.4", ls="--", lw=0.8, label=f"uniform 1/L = {1 / L:.3f}")
    ax.set_xlabel("lag before the target day (days)")
    ax.set_ylabel("mean attention weight (1)")
    ax.legend(fontsize=6.5, frameon=False)
    ax.grid(lw=0.3, alpha=0.5)
    _panel_letter(ax, 0)
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
    _panel_letter(ax, 1)
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
        _panel_letter(ax, 2)
    fig.suptitle(f"AtLSTM attention weights (test set){_title_suffix(label)}", fontsize=9.5)
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
    import cartopy.crs as ccrs  # noqa: PLC0415

    t = sites[sites["status"] == "ok"] if "status" in sites else sites
    products = [p for p in (products or list(pd.unique(t["product"]))) if (t["product"] == p).any()]
    names = {"r": ("R", "(1)"), "ubrmse": ("ubRMSE", f"({SM_UNITS})"), "bias": ("bias", f"({SM_UNITS})"),
             "rmse": ("RMSE", f"({SM_UNITS})"), "r2": ("R$^2$", "(1)")}
    if bounds is None:
        bounds = (float(t.lon.min()) - 0.5, float(t.lon.max()) + 0.5, float(t.lat.min()) - 0.5,
                  float(t.lat.max()) + 0.5)
    aspect = min(max((bounds[1] - bounds[0]) / max(bounds[3] - bounds[2], 1e-6), 0.6), 3.0)
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
        ax.set_xticklabels([_plabel(p) for p in products], fontsize=7, rotation=35, ha="right",
                           rotation_mode="anchor")
        ax.set_ylabel(f"{names.get(m, (m, ''))[0]} {names.get(m, (m, ''))[1]}")
        if m == "bias":
            ax.axhline(0, color="k", lw=0.5)
        ax.grid(axis="y", lw=0.3, alpha=0.5)
        _panel_letter(ax, j)
    tm = t[t["product"] == map_product] if (t["product"] == map_product).any() else t[t["product"] == products[0]]
    w, e, s, n = bounds
    pad = 0.06 * max(e - w, n - s)
    for k, (m, cmap) in enumerate((("r", "viridis"), ("ubrmse", "cividis"))):
        ax = plots.map_axes(fig, gbot[0, k], extent=(w - pad, e + pad, s - pad, n + pad), nbins=4,
                            grid_labels="lb" if k == 0 else "b")
        _box(ax, bounds, color="0.4", lw=0.8, ls="--")
        if m in tm and tm[m].notna().any():
            vmin, vmax = float(tm[m].min()), float(tm[m].max())
            if vmax - vmin < 1e-9:
                vmin, vmax = vmin - 0.01, vmax + 0.01
            early = (tm["period"] == "pre-2000") if "period" in tm else pd.Series(False, index=tm.index)
            sc = None
            for sel, marker in ((~early, "o"), (early, "^")):
                if sel.any():
                    sc = ax.scatter(tm.lon[sel], tm.lat[sel], c=tm[m][sel], cmap=cmap, vmin=vmin, vmax=vmax, s=60,
                                    marker=marker, ec="k", lw=0.5, transform=ccrs.PlateCarree(), zorder=6)
            cb = fig.colorbar(sc, ax=ax, shrink=0.8, pad=0.02, orientation="horizontal" if wide else "vertical",
                              aspect=30 if wide else 20)
            cb.set_label(f"{names[m][0]} {names[m][1]}")
        ax.set_title(f"{names[m][0]} of {_plabel(tm['product'].iloc[0]) if len(tm) else ''} at the sites",
                     fontsize=8.5)
        _panel_letter(ax, len(metrics) + k)
    fig.suptitle(f"Validation against in situ soil moisture{_title_suffix(label)}", fontsize=9.5)
    return fig


# ----------------------------------------------------------------------------------------------------------
# Figures 9-10: January / July maps, regional zoom
# ----------------------------------------------------------------------------------------------------------
def fig_monthly_maps(maps: Mapping[str, Mapping[int, xr.DataArray]], months: Sequence[int] = (1, 7),
                     period: str = "", label: str = "", cmap: str = plots.SM_CMAP,
                     bounds: tuple[float, float, float, float] | None = None):
    """Mean soil moisture of each product in each month: a ``len(months)`` × ``len(maps)`` grid of maps
    (2 × 4 for January and July of ESA CCI, ERA5-Land, GLASS-MODIS, GLASS-AVHRR) with one shared colorbar.

    ``maps``: ``{product: {month: (lat, lon) DataArray in m3 m-3}}``, each on its own grid (native resolution).
    """
    prods = list(maps)
    arrays = [maps[p][m] for p in prods for m in months if maps[p].get(m) is not None]
    vmin, vmax = _robust_limits(arrays)
    if bounds is None:
        ext = [_extent(a) for a in arrays]
        bounds = (min(x[0] for x in ext), max(x[1] for x in ext), min(x[2] for x in ext), max(x[3] for x in ext))
    w, e, s, n = bounds
    aspect = (e - w) / max(n - s, 1e-6)
    pw = 2.15
    fig = plt.figure(figsize=(pw * len(prods) + 0.4, len(months) * pw / max(min(aspect, 2.5), 0.6) + 1.3),
                     layout="constrained")
    gs = fig.add_gridspec(len(months), len(prods))
    mnames = {1: "January", 2: "February", 3: "March", 4: "April", 5: "May", 6: "June", 7: "July", 8: "August",
              9: "September", 10: "October", 11: "November", 12: "December"}
    axes, im = [], None
    for i, m in enumerate(months):
        for j, p in enumerate(prods):
            ax = plots.map_axes(fig, gs[i, j], extent=bounds, nbins=3,
                                grid_labels=("l" if j == 0 else "") + ("b" if i == len(months) - 1 else ""))
            axes.append(ax)
            da = maps[p].get(m)
            if da is not None:
                im = _mesh(ax, da, cmap=cmap, vmin=vmin, vmax=vmax)
                mean = float(da.mean())
                ax.text(0.97, 0.04, f"mean {mean:.3f}", transform=ax.transAxes, ha="right", va="bottom",
                        fontsize=6.5, bbox=dict(fc="white", ec="none", alpha=0.75, pad=1))
            else:
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", fontsize=8)
            ax.set_title(f"{_plabel(p)}, {mnames.get(m, str(m))}", fontsize=8.5)
            _panel_letter(ax, i * len(prods) + j)
    if im is not None:
        cb = fig.colorbar(im, ax=axes, orientation="horizontal", shrink=0.5, aspect=35, pad=0.02,
                          extend="both")
        cb.set_label(f"mean surface soil moisture ({SM_UNITS})")
    fig.suptitle(f"Mean soil moisture{(' ' + period) if period else ''}{_title_suffix(label)}", fontsize=9.5)
    return fig


def fig_regional_zoom(overview: xr.DataArray, fields: Mapping[str, xr.DataArray],
                      box: tuple[float, float, float, float], title: str = "", label: str = "",
                      cmap: str = plots.SM_CMAP):
    """Spatial detail: (a) the product over the domain with the sub-box, then each field over the sub-box.

    ``overview``: (lat, lon) product map (m3 m-3); ``fields``: ``{name: (lat, lon) DataArray}`` at native
    resolution (GLASS-AVHRR 0.05°, ERA5-Land 0.1°, ESA CCI 0.25° ...), all in m3 m-3; ``box``: (west, east,
    south, north).
    """
    w, e, s, n = box
    arrays = [overview] + [f.sel(lat=slice(n + 0.3, s - 0.3), lon=slice(w - 0.3, e + 0.3)) for f in fields.values()]
    vmin, vmax = _robust_limits(arrays)
    ncol = 2 if len(fields) > 1 else 1
    nrow = int(np.ceil(len(fields) / ncol))
    aspect = min(max((e - w) / max(n - s, 1e-6), 0.6), 2.5)
    pw = 2.2
    height = max(nrow * (0.75 * pw / aspect + 0.42) + 0.45, 2.6)  # panels end up ~0.75 pw wide
    fig = plt.figure(figsize=(3.6 + ncol * pw + 1.0, height), layout="constrained")
    gs = fig.add_gridspec(1, 2, width_ratios=(3.6, ncol * pw))
    ax = plots.map_axes(fig, gs[0], extent=_extent(overview), nbins=3)
    im = _mesh(ax, overview, cmap=cmap, vmin=vmin, vmax=vmax)
    _box(ax, box, color="#D55E00", lw=1.5)
    ax.set_title("GLASS-AVHRR, domain", fontsize=8.5)
    _panel_letter(ax, 0)
    axes = [ax]
    sub = gs[1].subgridspec(nrow, ncol)
    for i, (name, da) in enumerate(fields.items()):
        r, c = divmod(i, ncol)
        ax = plots.map_axes(fig, sub[r, c], extent=box, nbins=2,
                            grid_labels=("l" if c == 0 else "") + ("b" if r == nrow - 1 else ""))
        axes.append(ax)
        im = _mesh(ax, da, cmap=cmap, vmin=vmin, vmax=vmax)
        lat = np.asarray(da["lat"])
        res = abs(lat[1] - lat[0]) if lat.size > 1 else np.nan
        ax.set_title(f"{_plabel(name)} ({res:.2f}° grid)", fontsize=8)
        _panel_letter(ax, i + 1)
    cb = fig.colorbar(im, ax=axes[1:], shrink=0.9, pad=0.02, extend="both")  # one scale for every panel
    cb.set_label(f"soil moisture ({SM_UNITS})")
    fig.suptitle(f"Spatial detail{(' — ' + title) if title else ''}{_title_suffix(label)}", fontsize=9.5)
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
        axes[0].plot(s.index, s.values, lw=lw, color=PRODUCT_COLORS.get(name), label=_plabel(name),
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
                     color=PRODUCT_COLORS.get(name), label=_plabel(name),
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
        _panel_letter(ax, i, x=-0.005)
    ref = f" (anomalies vs {years[0]}–{years[-1]})" if years else ""
    fig.suptitle(f"Domain-mean surface soil moisture{ref}{_title_suffix(label)}", fontsize=9.5)
    return fig


def fig_trend_maps(trends: Mapping[str, xr.Dataset], alpha: float = 0.05, period: str = "", label: str = "",
                   note: str = ""):
    """Sen's slope of annual means per decade for each product, stippled where the Mann-Kendall p < ``alpha``.

    ``trends``: ``{product: Dataset with slope (m3 m-3 decade-1) and p_value (1) on (lat, lon)}``, e.g. from
    :func:`glass_sm.evaluation.trends.trend_map`. Diverging ``RdBu`` (drying red, wetting blue) with symmetric limits.
    ``note`` is printed under the title (e.g. that a short record makes the slopes illustrative only).
    """
    import cartopy.crs as ccrs  # noqa: PLC0415

    prods = list(trends)
    lim = _sym_limit([trends[p]["slope"] for p in prods])
    ext = [_extent(trends[p]["slope"]) for p in prods]
    bounds = (min(x[0] for x in ext), max(x[1] for x in ext), min(x[2] for x in ext), max(x[3] for x in ext))
    aspect = (bounds[1] - bounds[0]) / max(bounds[3] - bounds[2], 1e-6)
    pw = 2.3
    fig = plt.figure(figsize=(pw * len(prods) + 0.6, pw / max(min(aspect, 2.5), 0.6) + 1.15), layout="constrained")
    gs = fig.add_gridspec(1, len(prods))
    axes, im = [], None
    for j, p in enumerate(prods):
        ax = plots.map_axes(fig, gs[j], extent=bounds, grid_labels="b" + ("l" if j == 0 else ""), nbins=3)
        axes.append(ax)
        ds = trends[p]
        im = _mesh(ax, ds["slope"], cmap="RdBu", vmin=-lim, vmax=lim)
        if "p_value" in ds:
            sig = (ds["p_value"] < alpha).values & np.isfinite(ds["slope"].values)
            la, lo = np.meshgrid(np.asarray(ds["lat"]), np.asarray(ds["lon"]), indexing="ij")
            ax.scatter(lo[sig], la[sig], s=5, c="k", marker="o", ec="white", lw=0.3, transform=ccrs.PlateCarree(),
                       zorder=5)
            frac = float(sig.sum() / max(np.isfinite(ds["slope"].values).sum(), 1))
        else:
            frac = np.nan
        med = float(ds["slope"].median())
        ax.text(0.97, 0.04, f"median {med:+.4f}\np<{alpha}: {frac:.0%}", transform=ax.transAxes, ha="right",
                va="bottom", fontsize=6.3, bbox=dict(fc="white", ec="none", alpha=0.75, pad=1))
        ax.set_title(_plabel(p), fontsize=8.5)
        _panel_letter(ax, j)
    cb = fig.colorbar(im, ax=axes, orientation="horizontal", shrink=0.5, aspect=35, pad=0.02, extend="both")
    cb.set_label(f"Sen's slope of annual means ({TREND_UNITS}); dots: Mann-Kendall p < {alpha}")
    fig.suptitle(f"Soil-moisture trends{(' ' + period) if period else ''}{_title_suffix(label)}"
                 + (f"\n{note}" if note else ""), fontsize=9.5)
    return fig


# ----------------------------------------------------------------------------------------------------------
# Captions: built from the tables, always saying synthetic twin or real data
# ----------------------------------------------------------------------------------------------------------
def data_sentence(is_twin: bool) -> str:
    """The sentence every caption ends with."""
    if is_twin:
        return ("*Data: synthetic twin* — a simulated world with a known truth, written in the real products' "
                "formats; these are the twin's results, **not the paper's**.")
    return "*Data: real data* (the inputs named in the run's parameter file)."


def _f(x, nd=3, sign=False) -> str:
    if x is None or not np.isfinite(float(x)):
        return "n/a"
    return f"{float(x):+.{nd}f}" if sign else f"{float(x):.{nd}f}"


def caption_framework(is_twin: bool, window: int | None = None, period: str = "") -> str:
    return ("Framework of GLASS-AVHRR soil moisture as implemented here: AVHRR albedo and LST, ERA5-Land soil "
            "moisture, terrain and soil texture are harmonized on the 0.05° grid (stage 01), windows of "
            f"{'L' if window is None else f'L = {window}'} days feed five models compared on identical samples (02), "
            "the attention LSTM (AtLSTM) trained on GLASS-MODIS labels is applied to every pixel and day"
            f"{f' of {period}' if period else ''} (03–04), and the product is validated against in situ stations "
            "and other products (05). " + data_sentence(is_twin))


def caption_study_area(is_twin: bool, stations: pd.DataFrame, bounds, source: str) -> str:
    w, e, s, n = bounds
    early = int((pd.to_datetime(stations["first"]) < pd.Timestamp("2000-01-01")).sum()) if "first" in stations else 0
    return (f"Study domain ({_fmt_lat(s)}–{_fmt_lat(n)}, {_fmt_lon(w)}–{_fmt_lon(e)}; "
            f"{round((e - w) / 0.05)} × {round((n - s) / 0.05)} cells of 0.05°) and the {len(stations)} in situ "
            f"stations ({early} with records before 2000, triangles) read from {source}; background: elevation "
            "(m). Inset: location of the domain. " + data_sentence(is_twin))


def caption_inputs(is_twin: bool, cube: xr.Dataset, gaps: pd.DataFrame | None = None) -> str:
    t = cube.indexes["time"]
    txt = (f"Model inputs over {t[0]:%Y-%m-%d} to {t[-1]:%Y-%m-%d}: long-term means of white-sky albedo (1), "
           "LST (K), ERA5-Land and GLASS-MODIS soil moisture (m³ m⁻³; GLASS-MODIS from its start date), elevation "
           "(m) and sand fraction (1), and their monthly domain means.")
    if gaps is not None and len(gaps):
        g = gaps.set_index("variable")["gap_fraction"]
        names = {"albedo": "albedo gap-filled", "lst": "LST gap-filled", "sm_label": "GLASS-MODIS label missing"}
        parts = [f"{names[v]} {g[v]:.0%}" for v in names if v in g]
        txt += " Fraction of pixel-days: " + ", ".join(parts) + "."
    return txt + " " + data_sentence(is_twin)


def caption_model_density(is_twin: bool, metrics: pd.DataFrame) -> str:
    parts = []
    for ref in [r for r in ("label", "truth") if (metrics.reference == r).any()]:
        t = metrics[metrics.reference == ref].set_index("model")
        best = t.rmse.idxmin()
        at = (f"; AtLSTM R² = {_f(t.loc['atlstm', 'r2'])}, RMSE = {_f(t.loc['atlstm', 'rmse'], 4)} m³ m⁻³"
              if "atlstm" in t.index else "")
        parts.append(f"against the {REF_LABELS.get(ref, ref)} the lowest RMSE is {_mlabel(best)}'s "
                     f"({_f(t.loc[best, 'rmse'], 4)} m³ m⁻³, R² = {_f(t.loc[best, 'r2'])}){at}")
    n = int(metrics.n.iloc[0]) if len(metrics) else 0
    body = "; ".join(parts)
    return (f"Predicted versus reference soil moisture of the five models on the same {n} held-out test windows "
            "(hexagon counts on a log scale; dashed: 1:1). " + body[:1].upper() + body[1:] + ". "
            + data_sentence(is_twin))


def caption_accuracy_by_sm(is_twin: bool, by_bin: pd.DataFrame) -> str:
    t = by_bin[by_bin.reference == "label"] if (by_bin.reference == "label").any() else by_bin
    wet = list(pd.unique(t["bin"]))[-1]
    w = t[t["bin"] == wet].set_index("model")
    best = w.rmse.idxmin()
    return (f"Test RMSE, ubRMSE and bias (m³ m⁻³, 95 % bootstrap intervals) within soil-moisture levels of the "
            f"reference. In the wettest level ({wet} m³ m⁻³, n = {int(w.n.iloc[0])}) against the labels, RMSE "
            f"ranges from {_f(w.rmse.min(), 4)} ({_mlabel(best)}) to {_f(w.rmse.max(), 4)} "
            f"({_mlabel(w.rmse.idxmax())}). " + data_sentence(is_twin))


def caption_sequence_length(is_twin: bool, seq: pd.DataFrame, final_window: int | None = None) -> str:
    ref = "truth" if (seq.reference == "truth").any() else "label"
    parts = []
    for m in pd.unique(seq.model):
        t = seq[(seq.model == m) & (seq.reference == ref)].set_index("window")
        if len(t):
            b = int(t.rmse.idxmin())
            parts.append(f"{_mlabel(m)} RMSE {_f(t.rmse.iloc[0], 4)} at L = {int(t.index[0])} d and lowest "
                         f"{_f(t.loc[b, 'rmse'], 4)} m³ m⁻³ at L = {b} d")
    fw = f" Dotted: the production window L = {final_window} d." if final_window is not None else ""
    return (f"Test accuracy against the input window length L (95 % intervals; solid: vs GLASS-MODIS labels, "
            f"dashed: vs the twin's truth where available). Against the {REF_LABELS.get(ref, ref)}: "
            + "; ".join(parts) + "." + fw + " " + data_sentence(is_twin))


def caption_attention(is_twin: bool, summary: pd.DataFrame) -> str:
    o = summary[summary.grouping == "all"].iloc[0]
    return (f"Attention weights of the production AtLSTM over the {int(o.n)} test windows: (a) mean weight by lag "
            f"(target day {_f(o.w_lag0)}, uniform 1/L = {_f(o.uniform)}; lags 0–2 together {_f(o.w_adjacent)}; "
            f"spread over about {o.effective_steps:.1f} of {int(o.window)} days); (b) weight relative to uniform "
            "by soil-moisture level, season and climate class (red: more than uniform); (c) one test window. "
            + data_sentence(is_twin))


def caption_insitu(is_twin: bool, sites: pd.DataFrame, summary: pd.DataFrame | None = None) -> str:
    ok = sites[sites["status"] == "ok"] if "status" in sites else sites
    parts = []
    for p, sub in ok.groupby("product", sort=False):
        parts.append(f"{p} median R = {_f(sub.r.median(), 2)}, ubRMSE = {_f(sub.ubrmse.median(), 3)}, "
                     f"bias = {_f(sub.bias.median(), 3, sign=True)} m³ m⁻³ ({len(sub)} sensors)")
    txt = ("In situ validation: (a–c) R, ubRMSE and bias of each data set at the scored sensors (boxes: "
           "quartiles; dots: sensors); (d, e) R and ubRMSE of GLASS-AVHRR at the sites (triangles: records before "
           "2000). " + "; ".join(parts) + ".")
    if summary is not None and "paper_r" in summary and summary["paper_r"].notna().any():
        row = summary[summary["paper_r"].notna()].iloc[0]
        ours = f" (this run, {row['period']}: R = {_f(row['r'], 2)}, ubRMSE = {_f(row['ubrmse'], 3)})"
        txt += (f" For reference only, the paper reports median R = {row['paper_r']:.2f} and ubRMSE = "
                f"{row['paper_ubrmse']:.3f} m³ m⁻³ at real {row['period']} ISMN sites (paper, real data){ours}.")
    return txt + " " + data_sentence(is_twin)


def caption_monthly_maps(is_twin: bool, maps: Mapping[str, Mapping[int, xr.DataArray]], years: Sequence[int]
                         ) -> str:
    means = "; ".join(f"{p}: January {_f(float(m[1].mean()))}, July {_f(float(m[7].mean()))}"
                      for p, m in maps.items() if m.get(1) is not None and m.get(7) is not None)
    span = f"{min(years)}–{max(years)}" if years else "the common years"
    return (f"Mean surface soil moisture in January (top) and July (bottom) over {span} (years in which every "
            "data set has data), each data set on its own grid (ESA CCI 0.25°, ERA5-Land interpolated to 0.05° "
            "in the cube, GLASS-MODIS and GLASS-AVHRR 0.05°); one colour scale (2nd–98th percentile); white: "
            "no valid day. "
            f"Domain means (m³ m⁻³): {means}. " + data_sentence(is_twin))


def caption_zoom(is_twin: bool, box, when: str, fields: Mapping[str, xr.DataArray]) -> str:
    w, e, s, n = box
    parts = []
    for k, v in fields.items():
        inside = v.sel(lat=slice(n, s), lon=slice(w, e))
        parts.append(f"{k} {_f(float(inside.std()), 4)}" if inside.count() > 1 else f"{k} (one cell)")
    sd = "; ".join(parts)
    return (f"Spatial detail over the sub-box {_fmt_lat(s)}–{_fmt_lat(n)}, {_fmt_lon(w)}–{_fmt_lon(e)} (orange "
            f"frame in a), mean of {when}, each data set at its native resolution (ERA5-Land read from its own "
            f"files at 0.1°). Spatial standard deviation inside the box (m³ m⁻³): {sd}. " + data_sentence(is_twin))


def caption_series(is_twin: bool, monthly: Mapping[str, pd.Series], breaks: pd.DataFrame | None = None) -> str:
    prod = monthly.get(PRODUCT)
    parts = []
    if prod is not None:
        for k, v in monthly.items():
            if k == PRODUCT:
                continue
            j = pd.concat([prod, v], axis=1).dropna()
            if len(j) > 3:
                parts.append(f"{k} r = {np.corrcoef(j.iloc[:, 0], j.iloc[:, 1])[0, 1]:.2f}, "
                             f"mean difference {_f((j.iloc[:, 0] - j.iloc[:, 1]).mean(), 3, True)}")
    txt = ("Domain-mean surface soil moisture: (a) monthly means, (b) annual-mean anomalies; dotted lines: AVHRR "
           "platform changes. Monthly GLASS-AVHRR against " + "; ".join(parts) + " m³ m⁻³.")
    if breaks is not None and len(breaks) and "series" in breaks:
        ok = breaks[breaks["status"] == "ok"] if "status" in breaks else breaks
        resid = [n for n in pd.unique(ok["series"]) if str(n).startswith("residual")]
        parts = []
        for name in resid or [PRODUCT]:
            b = ok[ok["series"] == name]
            if len(b):
                sig = int(b["significant"].fillna(False).astype(bool).sum())
                parts.append(f"{name} {sig} of {len(b)}")
        if parts:
            txt += (" Platform changes with a significant step (stage 05, `breaks.csv`; a step in the product's "
                    "residual against a reference is an artefact of the record): " + "; ".join(parts) + ".")
    return txt + " " + data_sentence(is_twin)


def caption_trends(is_twin: bool, maps: Mapping[str, xr.Dataset], n_years: int, from_stage05: bool,
                   min_periods: int, alpha: float = 0.05) -> str:
    parts = []
    for k, ds in maps.items():
        sl = ds["slope"].values
        ok = np.isfinite(sl)
        if ok.any():
            sig = float((ds["p_value"].values[ok] < alpha).mean()) if "p_value" in ds else np.nan
            parts.append(f"{k} median {_f(np.median(sl[ok]), 4, True)} ({sig:.0%} significant)")
    txt = (f"Sen's slope of the annual means per decade (m³ m⁻³ decade⁻¹; "
           f"dots: Mann–Kendall p < {alpha}) over {n_years} years: " + "; ".join(parts) + ".")
    if from_stage05:
        txt += " Trends as computed by stage 05 (`tables/trends.csv`)."
    else:
        txt += (f" **Caution:** only {n_years} annual means, fewer than the {min_periods} stage 05 requires "
                "(`validation.trend_min_periods`), so stage 05 reports no trend; the slopes shown are computed here "
                f"from the annual means with {n_years} years for illustration and are not meaningful.")
    return txt + " " + data_sentence(is_twin)


# ----------------------------------------------------------------------------------------------------------
# The paper's tables, merged from the stages' tables
# ----------------------------------------------------------------------------------------------------------
def _read(tables: Path, name: str) -> pd.DataFrame | None:
    p = tables / name
    return pd.read_csv(p) if p.exists() else None


def inputs_table(cube: xr.Dataset) -> pd.DataFrame:
    """The paper's input-data table from the cube: variable, description, units, grid, period, source."""
    t = cube.indexes["time"]
    rows = []
    for v in cube.data_vars:
        da = cube[v]
        period = ""
        if "time" in da.dims:
            valid = da.notnull().any(("lat", "lon")).values if v.startswith("sm_") else None
            tt = t[valid] if valid is not None else t
            period = f"{tt[0]:%Y-%m-%d}..{tt[-1]:%Y-%m-%d}" if len(tt) else ""
        rows.append({"variable": v, "description": da.attrs.get("long_name", ""), "units": da.attrs.get("units", ""),
                     "dims": " x ".join(da.dims), "grid": "0.05 deg (cube)", "period": period,
                     "source": cube.attrs.get("source", "")})
    return pd.DataFrame(rows)


def paper_tables(tables: Path, is_twin: bool, cube: xr.Dataset | None = None) -> dict[str, pd.DataFrame]:
    """The paper's tables from what the stages wrote: ``{paper_table_<name>: DataFrame}`` (missing inputs skipped).

    Every table gets a ``data`` column (synthetic twin or real data). Units: soil moisture metrics in m3 m-3,
    R and R² dimensionless, trends in m3 m-3 decade-1.
    """
    tables = Path(tables)
    label = data_label(is_twin)
    out = {}
    if cube is not None:
        out["paper_table_inputs"] = inputs_table(cube)
    mc, timing = _read(tables, "model_comparison.csv"), _read(tables, "model_timing.csv")
    if mc is not None:
        cols = ["split", "window", "model", "reference", "n", "r2", "r2_lo", "r2_hi", "r", "rmse", "rmse_lo",
                "rmse_hi", "ubrmse", "bias"]
        t = mc[[c for c in cols if c in mc]]
        if timing is not None:
            keep = [c for c in ("model", "n_parameters", "epochs_run", "train_seconds", "inference_windows_per_s")
                    if c in timing]
            t = t.merge(timing[keep], on="model", how="left")
        out["paper_table_model_comparison"] = t
    bb = _read(tables, "metrics_by_sm_bin.csv")
    if bb is not None:
        out["paper_table_accuracy_by_sm"] = bb[[c for c in ("model", "reference", "bin", "n", "r", "rmse", "rmse_lo",
                                                           "rmse_hi", "ubrmse", "bias") if c in bb]]
    sq = _read(tables, "sequence_length.csv")
    if sq is not None:
        out["paper_table_sequence_length"] = sq[[c for c in ("model", "window", "reference", "n", "r2", "rmse",
                                                            "rmse_lo", "rmse_hi", "ubrmse", "bias") if c in sq]]
    for name, source in (("attention", "attention_summary"), ("insitu", "validation_summary"),
                         ("intercomparison", "intercomparison"), ("trends", "trends_summary"),
                         ("breaks", "breaks")):  # copied as the stages wrote them
        table = _read(tables, f"{source}.csv")
        if table is not None:
            out[f"paper_table_{name}"] = table
    for k, t in out.items():
        t = t.copy()
        if "data" not in t:
            t["data"] = label
        out[k] = t
    return out
