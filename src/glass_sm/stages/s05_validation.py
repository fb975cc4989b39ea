"""Stage 05 helpers: the glue between the validation/trend functions and the notebook's tables.

:mod:`glass_sm.evaluation.validation` and :mod:`glass_sm.evaluation.trends` hold the science (collocation, metrics, triple
collocation, Sen/Mann-Kendall, break tests). This module holds what stage 05 adds on top, kept small and pure so
that it is unit-tested:

* :func:`open_product` - the stage-04 product (one CF NetCDF per year) as one DataArray;
* :func:`validate_products` - :func:`~glass_sm.evaluation.validation.validate_against_ismn` for several products, one
  table with a ``product`` column; :func:`with_paper_values` puts the paper's reported medians beside ours;
* :func:`aridity_class`, :func:`sm_class`, :func:`bias_by_class` - the wet-bias table by climate class;
* :func:`collocate_at_stations`, :func:`true_error_sd` - the twin's check of triple collocation (the error
  standard deviation each data set really has, on the same days);
* :func:`held_out_mask` - the pixels the production model never saw (site split of stage 03);
* :func:`domain_mean`, :func:`trend_table`, :func:`trend_summary` - temporal consistency and trends.

Units: soil moisture and its errors in m3 m-3; trends in m3 m-3 decade-1; correlations dimensionless.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from glass_sm.evaluation import trends as _trends
from glass_sm.evaluation import validation as _validation

__all__ = [
    "PRODUCT_GLOB",
    "PAPER_LABEL",
    "PAPER_REPORTED",
    "ARIDITY_EDGES",
    "ARIDITY_LABELS",
    "open_product",
    "validate_products",
    "with_paper_values",
    "aridity_class",
    "sm_class",
    "bias_by_class",
    "collocate_at_stations",
    "true_error_sd",
    "held_out_mask",
    "domain_mean",
    "rescaled_residual",
    "trend_table",
    "trend_summary",
]

PRODUCT_GLOB = "GLASS_AVHRR_SM_*.nc"
"""Daily product files of stage 04 (``glass_sm.production.product_path``), one per year."""

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

ARIDITY_EDGES = (0.0, 0.05, 0.2, 0.5, 0.65, np.inf)
ARIDITY_LABELS = ("hyper-arid", "arid", "semi-arid", "dry sub-humid", "humid")
"""UNEP (1992) aridity zones of the aridity index P/PET (dimensionless)."""


# ----------------------------------------------------------------------------------------------------------
# The product and the in situ tables
# ----------------------------------------------------------------------------------------------------------
def open_product(folder, name: str = "GLASS-AVHRR", engine: str = "netcdf4") -> xr.DataArray:
    """The stage-04 product ``<folder>/GLASS_AVHRR_SM_<YYYY>.nc`` as one lazy ``sm(time, lat, lon)``, m3 m-3.

    Parameters
    ----------
    folder : path-like
        ``results/<run>/product`` (the annual means in ``annual/`` are not read).
    name : str
        Name given to the returned DataArray (used as the product's label in tables).
    engine : str
        xarray backend (explicit, see the package notes on ecCodes/pyproj).

    Raises
    ------
    FileNotFoundError
        No year file in ``folder`` (stage 04 has not run), naming the folder and the pattern.
    """
    folder = Path(folder)
    files = sorted(folder.glob(PRODUCT_GLOB))
    if not files:
        raise FileNotFoundError(f"no product file {PRODUCT_GLOB} in {folder}: run stage 04 "
                                "(notebooks/04_global_production.ipynb) first")
    ds = xr.open_mfdataset([str(f) for f in files], engine=engine, combine="by_coords")
    if "sm" not in ds:
        raise KeyError(f"product files in {folder} lack variable 'sm' (found {sorted(ds.data_vars)})")
    da = ds["sm"]
    da.name = name
    return da


def validate_products(products: Mapping[str, xr.DataArray], stations, **kwargs) -> pd.DataFrame:
    """:func:`glass_sm.evaluation.validation.validate_against_ismn` for each product; one table, ``product`` column first.

    Parameters
    ----------
    products : mapping name -> xarray.DataArray
        Daily soil moisture, m3 m-3 (any grid).
    stations : (pandas.DataFrame, dict)
        The ``(table, daily)`` pair of :func:`glass_sm.io.ismn.read_ismn`, read once for all products.
    **kwargs
        Passed on (``min_days``, ``n_boot``, ``seed``, ``split_periods``, ``start``, ``end`` ...); ``progress``
        defaults to False.

    Returns
    -------
    pandas.DataFrame
        The rows of every product, every sensor listed (``status`` says why one is not scored).
    """
    kwargs.setdefault("progress", False)
    frames = []
    for name, da in products.items():
        df = _validation.validate_against_ismn(da, stations=stations, **kwargs)
        frames.append(df.assign(product=name))
    out = pd.concat(frames, ignore_index=True)
    return out[["product"] + [c for c in out.columns if c != "product"]]


def with_paper_values(summary: pd.DataFrame, paper: pd.DataFrame = PAPER_REPORTED,
                      data_label: str = "") -> pd.DataFrame:
    """Our median table with the paper's reported medians as extra columns on the matching rows.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`glass_sm.evaluation.validation.summarize_sites` grouped by ``['product', 'period']`` (index or columns).
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
    out = ours.merge(wide, on=["product", "period"], how="outer", sort=False)
    return out


# ----------------------------------------------------------------------------------------------------------
# Wet bias by class
# ----------------------------------------------------------------------------------------------------------
def aridity_class(aridity_index) -> pd.Categorical:
    """UNEP aridity zone of each aridity index P/PET (dimensionless; NaN stays NaN)."""
    return pd.cut(np.asarray(aridity_index, dtype=np.float64).ravel(), ARIDITY_EDGES, labels=list(ARIDITY_LABELS),
                  right=False)


def sm_class(mean_sm, edges: Sequence[float]) -> pd.Categorical:
    """Class ``'lo-hi'`` of each mean soil moisture (m3 m-3) between consecutive ``edges`` (left-closed)."""
    edges = [float(e) for e in edges]
    labels = [f"{lo:.2f}-{hi:.2f}" for lo, hi in zip(edges[:-1], edges[1:])]
    return pd.cut(np.asarray(mean_sm, dtype=np.float64).ravel(), edges, labels=labels, right=False)


def bias_by_class(frame: pd.DataFrame, by: str, bias_columns: Mapping[str, str], total: bool = True) -> pd.DataFrame:
    """Mean, median and mean absolute bias of several estimates per class.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per pixel or station, with the class column ``by`` and one bias column per estimate (m3 m-3).
    by : str
        Class column (e.g. the output of :func:`aridity_class`); empty classes are left out.
    bias_columns : mapping estimate name -> column
        E.g. ``{'GLASS-AVHRR': 'bias_product', 'ERA5-Land': 'bias_era5'}``.
    total : bool
        Append a class ``'all'``.

    Returns
    -------
    pandas.DataFrame
        Columns ``class_kind`` (= ``by``), ``class``, ``estimate``, ``n`` (rows with a finite bias),
        ``bias_mean``, ``bias_median``, ``abs_bias_mean`` (m3 m-3).
    """
    groups = [(str(k), g) for k, g in frame.groupby(by, observed=True, sort=True)]
    if total:
        groups.append(("all", frame))
    rows = []
    for cls, sub in groups:
        for est, col in bias_columns.items():
            v = pd.to_numeric(sub[col], errors="coerce").dropna()
            rows.append({"class_kind": by, "class": cls, "estimate": est, "n": int(v.size),
                         "bias_mean": float(v.mean()) if v.size else np.nan,
                         "bias_median": float(v.median()) if v.size else np.nan,
                         "abs_bias_mean": float(v.abs().mean()) if v.size else np.nan})
    return pd.DataFrame(rows, columns=["class_kind", "class", "estimate", "n", "bias_mean", "bias_median",
                                       "abs_bias_mean"])


# ----------------------------------------------------------------------------------------------------------
# Triple collocation against the truth
# ----------------------------------------------------------------------------------------------------------
def collocate_at_stations(products: Mapping[str, xr.DataArray], stations, start=None, end=None,
                          insitu: str = "insitu") -> dict[str, pd.DataFrame]:
    """Daily series of every product at each sensor's nearest pixel, beside the sensor's own series.

    Parameters
    ----------
    products : mapping name -> xarray.DataArray
        Daily soil moisture, m3 m-3 (any grid; each read at its own nearest pixel, as
        :func:`glass_sm.evaluation.validation.tc_at_stations` does).
    stations : (pandas.DataFrame, dict)
        ``(table, daily)`` of :func:`glass_sm.io.ismn.read_ismn`.
    start, end : date-like, optional
        Inclusive period.
    insitu : str
        Column name of the station series.

    Returns
    -------
    dict sensor_id -> pandas.DataFrame
        Daily index (union of the days), one column per product (NaN outside the product) and ``insitu``.
    """
    table, daily = stations
    table = table.rename_axis("sensor_id").reset_index() if "sensor_id" not in table.columns else table
    lat, lon = table["lat"].to_numpy(), table["lon"].to_numpy()
    series = {}
    for name, da in products.items():
        values, where = _validation.extract_at_stations(da, lat, lon, start, end)
        series[name] = (pd.DatetimeIndex(values["time"].values), values.to_numpy(), where["inside"].to_numpy())
    out = {}
    for k, sid in enumerate(table["sensor_id"]):
        cols = {name: pd.Series(v[:, k] if inside[k] else np.nan, index=days, dtype=np.float64)
                for name, (days, v, inside) in series.items()}
        s = daily.get(sid)
        s = _validation._clip(_validation._daily_index(s), start, end) if s is not None else pd.Series(dtype=float)
        cols[insitu] = s
        out[sid] = pd.DataFrame(cols)
    return out


def true_error_sd(frame: pd.DataFrame, truth: str, columns: Sequence[str], min_n: int = 3) -> dict:
    """Error standard deviation of each column against the truth, in the triple-collocation error model.

    Triple collocation assumes :math:`x = \\alpha_x + \\beta_x \\theta + \\varepsilon_x`; with the truth
    :math:`\\theta` known, :math:`\\sigma_{\\varepsilon_x}` is the residual standard deviation of the
    least-squares fit of x on :math:`\\theta`, and :math:`\\rho^2_x` its squared correlation with the truth:

    .. math:: \\sigma_{\\varepsilon_x}^2 = \\mathrm{var}(x) (1 - \\rho^2_{x\\theta}), \\qquad
              \\rho_{x\\theta} = \\operatorname{corr}(x, \\theta)

    (sample moments with ``ddof=1``, as in :func:`glass_sm.evaluation.validation.triple_collocation`).

    Parameters
    ----------
    frame : pandas.DataFrame
        Collocated series, rows = days; rows with any NaN in ``columns`` or ``truth`` are dropped.
    truth : str
        Column of the truth (m3 m-3).
    columns : sequence of str
        Columns to score.
    min_n : int
        Fewest complete rows (else NaN).

    Returns
    -------
    dict
        ``n`` and, per column c, ``true_err_sd_<c>`` (unit of c) and ``true_rho2_<c>`` (dimensionless).
    """
    sub = frame[list(columns) + [truth]].dropna()
    out: dict = {"n": int(len(sub))}
    t = sub[truth].to_numpy(np.float64)
    for c in columns:
        x = sub[c].to_numpy(np.float64)
        if len(sub) < max(min_n, 3) or np.std(t) == 0 or np.std(x) == 0:
            out[f"true_err_sd_{c}"], out[f"true_rho2_{c}"] = np.nan, np.nan
            continue
        rho = float(np.corrcoef(x, t)[0, 1])
        out[f"true_err_sd_{c}"] = float(np.sqrt(max(np.var(x, ddof=1) * (1 - rho**2), 0.0)))
        out[f"true_rho2_{c}"] = rho**2
    return out


# ----------------------------------------------------------------------------------------------------------
# Which pixels the production model never saw
# ----------------------------------------------------------------------------------------------------------
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
    if not path.is_file():
        return None
    meta = json.loads(path.read_text())
    extra = meta.get("extra", {})
    info = extra.get("split_info", {})
    if extra.get("split") != "site" or "test_blocks" not in info:
        return None
    bs = int(info["block_size"])
    lat, lon = np.asarray(lat), np.asarray(lon)
    rows, cols = np.meshgrid(np.arange(lat.size), np.arange(lon.size), indexing="ij")
    blocks = {(int(b[0]), int(b[1])) for b in info["test_blocks"]}
    mask = np.array([(r // bs, c // bs) in blocks for r, c in zip(rows.ravel(), cols.ravel())]).reshape(rows.shape)
    return xr.DataArray(mask, dims=("lat", "lon"), coords={"lat": lat, "lon": lon}, name="held_out")


# ----------------------------------------------------------------------------------------------------------
# Temporal consistency and trends
# ----------------------------------------------------------------------------------------------------------
def domain_mean(da: xr.DataArray, mask: xr.DataArray | None = None) -> pd.Series:
    """Daily mean over the (masked) pixels of a ``(time, lat, lon)`` field as a pandas Series (unit of ``da``).

    ``mask`` (bool ``(lat, lon)`` on ``da``'s grid) keeps the pixels where True; NaN pixels are skipped each day.
    Latitude weights are left out: a domain of a few degrees has nearly equal cell areas.
    """
    if mask is not None:
        da = da.where(mask)
    s = da.mean(("lat", "lon"), skipna=True).to_series()
    s.index = pd.DatetimeIndex(s.index).normalize()
    return s.astype(np.float64)


def rescaled_residual(series: pd.Series, reference: pd.Series, deseasonalize: bool = True,
                      window_days: int = 31) -> pd.Series:
    r"""What a series does that a reference does not: the residual of the least-squares fit of one on the other.

    .. math:: e(t) = x(t) - (a + b\,y(t)), \qquad (a, b) = \arg\min \sum_t \big(x(t) - a - b\,y(t)\big)^2

    over the days both are valid, with x and y first deseasonalized (:func:`glass_sm.evaluation.trends.anomalies`) when
    ``deseasonalize``. A plain difference x - y keeps :math:`(b - 1)\,y`: with a gain error, every real step of
    the soil would show up in it; the residual keeps only what does not scale with the reference (e.g. a
    calibration step of the series' own inputs). An own step on the very date of a large real step of the
    reference is partly taken up by the gain b and shrinks in the residual.

    Parameters
    ----------
    series, reference : pandas.Series
        Daily values (m3 m-3) on a DatetimeIndex.
    deseasonalize : bool
        Fit the day-of-year anomalies instead of the raw values.
    window_days : int
        Smoothing window of the climatologies, days.

    Returns
    -------
    pandas.Series
        Residual on the union of the two indexes (NaN where either is missing), unit of ``series``.
    """
    x, y = series.astype(np.float64), reference.astype(np.float64)
    if deseasonalize:
        x, y = _trends.anomalies(x, window_days), _trends.anomalies(y, window_days)
    both = pd.DataFrame({"x": x, "y": y})
    ok = both.dropna()
    if len(ok) < 3 or ok["y"].var() == 0:
        return pd.Series(np.nan, index=both.index, name=series.name)
    b, a = np.polyfit(ok["y"].to_numpy(), ok["x"].to_numpy(), 1)
    return (both["x"] - (a + b * both["y"])).rename(series.name)


def trend_table(maps: Mapping[str, xr.Dataset]) -> pd.DataFrame:
    """Per-pixel trend maps of :func:`glass_sm.evaluation.trends.trend_map` as one long table.

    Returns
    -------
    pandas.DataFrame
        ``dataset, lat, lon, slope`` (m3 m-3 decade-1), ``p_value``, ``z``, ``n_periods``, ``mean`` (m3 m-3).
    """
    frames = []
    for name, ds in maps.items():
        df = ds[["slope", "p_value", "z", "n_periods", "mean"]].to_dataframe().reset_index()
        frames.append(df.assign(dataset=name))
    out = pd.concat(frames, ignore_index=True)
    return out[["dataset", "lat", "lon", "slope", "p_value", "z", "n_periods", "mean"]]


def trend_summary(table: pd.DataFrame, reference: str | None = None, alpha: float = 0.05,
                  annual_means: Mapping[str, pd.Series] | None = None, min_periods: int = 8) -> pd.DataFrame:
    """One row per dataset: spatial statistics of its per-pixel trends, agreement with a reference dataset, and
    the trend of its domain-mean annual series.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`trend_table`.
    reference : str, optional
        Dataset the others are compared with pixel by pixel (the twin's truth).
    alpha : float
        Level of the Mann-Kendall test for "significant" (dimensionless).
    annual_means : mapping dataset -> pandas.Series, optional
        Domain-mean annual means (m3 m-3) indexed by year; their Sen slope (per decade) and Mann-Kendall p are
        added when at least ``min_periods`` years are valid.
    min_periods : int
        Fewest valid years for the domain-mean trend.

    Returns
    -------
    pandas.DataFrame
        ``dataset``, ``n_pixels`` (with a trend), ``slope_median``, ``slope_p25``, ``slope_p75``
        (m3 m-3 decade-1), ``frac_significant``, ``frac_positive``; with ``reference``: ``slope_r``
        (correlation of the slope maps), ``sign_agreement`` (fraction of pixels with the reference's sign),
        ``slope_rmsd`` (m3 m-3 decade-1), ``signif_agreement`` (same significance decision); with
        ``annual_means``: ``domain_slope`` (m3 m-3 decade-1), ``domain_p``, ``n_years``.
    """
    rows = []
    ref = table[table["dataset"] == reference].set_index(["lat", "lon"]) if reference else None
    for name, sub in table.groupby("dataset", sort=False):
        ok = sub[np.isfinite(sub["slope"])]
        s = ok["slope"]
        row = {"dataset": name, "n_pixels": int(len(ok)),
               "slope_median": float(s.median()) if len(s) else np.nan,
               "slope_p25": float(s.quantile(0.25)) if len(s) else np.nan,
               "slope_p75": float(s.quantile(0.75)) if len(s) else np.nan,
               "frac_significant": float((ok["p_value"] < alpha).mean()) if len(ok) else np.nan,
               "frac_positive": float((s > 0).mean()) if len(s) else np.nan}
        if ref is not None:
            j = sub.set_index(["lat", "lon"])[["slope", "p_value"]].merge(
                ref[["slope", "p_value"]], left_index=True, right_index=True, how="left", suffixes=("", "_ref"))
            j = j[np.isfinite(j["slope"]) & np.isfinite(j["slope_ref"])]
            enough = len(j) >= 3 and j["slope"].std() > 0 and j["slope_ref"].std() > 0
            row.update(
                slope_r=float(np.corrcoef(j["slope"], j["slope_ref"])[0, 1]) if enough else np.nan,
                sign_agreement=float((np.sign(j["slope"]) == np.sign(j["slope_ref"])).mean()) if len(j) else np.nan,
                slope_rmsd=float(np.sqrt(((j["slope"] - j["slope_ref"]) ** 2).mean())) if len(j) else np.nan,
                signif_agreement=float(((j["p_value"] < alpha) == (j["p_value_ref"] < alpha)).mean())
                if len(j) else np.nan,
            )
        if annual_means is not None and name in annual_means:
            y = annual_means[name].dropna()
            if len(y) >= min_periods:
                years = np.asarray(y.index, dtype=np.float64)
                row.update(domain_slope=10.0 * _trends.sens_slope(y.to_numpy(), years),
                           domain_p=_trends.mann_kendall(y.to_numpy()).p, n_years=int(len(y)))
            else:
                row.update(domain_slope=np.nan, domain_p=np.nan, n_years=int(len(y)))
        rows.append(row)
    return pd.DataFrame(rows)
