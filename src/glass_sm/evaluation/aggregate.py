"""Aggregation over space and classes: area-weighted domain means, climate classes and per-class bias (one home
for each).

Every domain mean of the package is area-weighted (cell area ~ cos(latitude) on a regular lat-lon grid), so a
series means the same in stage 05's trend and break tests and in stage 06's figures, on a small tile or the globe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["ARIDITY_EDGES", "ARIDITY_LABELS", "SEASONS", "UNASSIGNED", "aridity_class", "season_of", "sm_class",
           "bias_by_class", "area_weights", "domain_mean", "domain_mean_series", "monthly_domain_mean",
           "weighted_median", "bias_sums", "bias_by_region"]

ARIDITY_EDGES = (0.0, 0.05, 0.2, 0.5, 0.65, np.inf)
ARIDITY_LABELS = ("hyper-arid", "arid", "semi-arid", "dry sub-humid", "humid")
"""UNEP (1992) aridity zones of the aridity index P/PET (dimensionless), left-closed intervals."""

SEASONS = ("DJF", "MAM", "JJA", "SON")

UNASSIGNED = "unassigned"
"""Region label of a cell whose centre no region claims (e.g. a coastal land cell whose centre is at sea, where
Natural Earth names no continent)."""


def aridity_class(aridity_index, unknown: str | None = None) -> pd.Categorical:
    """UNEP aridity zone (:data:`ARIDITY_LABELS`) of each aridity index P/PET (dimensionless).

    A non-finite index gives NaN, or the extra category ``unknown`` when given (e.g. ``"unknown"``).
    """
    ai = np.asarray(aridity_index, dtype=np.float64).ravel()
    cls = pd.cut(ai, ARIDITY_EDGES, labels=list(ARIDITY_LABELS), right=False)
    if unknown is not None:
        cls = cls.add_categories([unknown]).fillna(unknown)
    return cls


def season_of(dates) -> np.ndarray:
    """Meteorological season (``'DJF'``, ``'MAM'``, ``'JJA'``, ``'SON'``) of each date."""
    month = pd.DatetimeIndex(dates).month.to_numpy()
    return np.asarray(SEASONS, dtype=object)[(month % 12) // 3]


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


def area_weights(lat) -> xr.DataArray:
    """Relative cell areas cos(latitude) (dimensionless) of a regular lat-lon grid, on ``lat``."""
    lat = lat if isinstance(lat, xr.DataArray) else xr.DataArray(np.asarray(lat), dims="lat")
    return np.cos(np.deg2rad(lat))


def domain_mean(da: xr.DataArray, mask: xr.DataArray | None = None) -> xr.DataArray:
    """Area-weighted mean over ``lat`` and ``lon`` (unit of ``da``), NaN cells skipped, lazily for dask input.

    ``mask`` (bool ``(lat, lon)`` on ``da``'s grid) keeps the cells where True.
    """
    if mask is not None:
        da = da.where(mask)
    return da.weighted(area_weights(da["lat"])).mean(("lat", "lon"), skipna=True)


def domain_mean_series(da: xr.DataArray, mask: xr.DataArray | None = None) -> pd.Series:
    """:func:`domain_mean` of a daily ``(time, lat, lon)`` field as a float64 Series indexed by day."""
    s = domain_mean(da, mask).to_series()
    s.index = pd.DatetimeIndex(s.index).normalize()
    return s.astype(np.float64)


def monthly_domain_mean(da: xr.DataArray, min_fraction: float = 0.2) -> pd.Series:
    """Area-weighted domain mean of each cell's monthly mean (cells with fewer than ``min_fraction`` valid days in
    the month are skipped); months without any such cell are NaN.

    Averaging per cell first keeps a gappy product (ESA CCI) from being biased towards the cells observed most.
    """
    valid = da.notnull().resample(time="MS").mean()
    m = da.resample(time="MS").mean(skipna=True).where(valid >= min_fraction)
    s = domain_mean(m).to_series()
    frac = valid.mean(("lat", "lon")).to_series()
    return s.where(frac > 0)


# ----------------------------------------------------------------------------------------------------------
# Bias by region (climate zone, continent) over pixel-days
# ----------------------------------------------------------------------------------------------------------
def weighted_median(values, weights) -> float:
    """The weighted median: the smallest value at which the cumulative weight of the sorted values reaches half the
    total (NaN values and non-positive weights are left out; NaN when nothing is left).

    With equal weights and an odd count this is the ordinary median; with an even count, its lower middle value.
    """
    v, w = np.asarray(values, dtype=np.float64).ravel(), np.asarray(weights, dtype=np.float64).ravel()
    ok = np.isfinite(v) & np.isfinite(w) & (w > 0)
    if not ok.any():
        return float("nan")
    order = np.argsort(v[ok], kind="stable")
    v, cw = v[ok][order], np.cumsum(w[ok][order])
    return float(v[np.searchsorted(cw, 0.5 * cw[-1] - 1e-12 * cw[-1])])


def bias_sums(estimate: xr.DataArray, truth: xr.DataArray, mask: xr.DataArray | None = None
              ) -> tuple[xr.DataArray, xr.DataArray]:
    """Per pixel, over the days on which both are valid: the sum of ``estimate - truth`` (unit of the inputs, e.g.
    m3 m-3 x days) and the number of such days; ``mask`` (bool ``(lat, lon)``) keeps the pixels where True.

    Both inputs are daily ``(time, lat, lon)`` on the same grid; computed lazily for dask input.
    """
    d = estimate - truth
    if mask is not None:
        d = d.where(mask)
    return d.sum("time", skipna=True), d.notnull().sum("time")


def bias_by_region(sums: Mapping[str, tuple[xr.DataArray, xr.DataArray]], regions: Mapping[str, xr.DataArray]
                   ) -> pd.DataFrame:
    """Bias of several estimates per region over pixel-days, area-weighted.

    Parameters
    ----------
    sums : mapping estimate name -> (sum, n)
        :func:`bias_sums` of each estimate against one reference: per pixel, the summed difference (m3 m-3 x
        days) and the number of days with both (``(lat, lon)`` on one grid).
    regions : mapping region kind -> DataArray of str
        Per pixel the region it belongs to (e.g. ``{'climate_zone': ..., 'continent': ...}``), on the same grid;
        an empty string counts as :data:`UNASSIGNED`.

    Returns
    -------
    pandas.DataFrame
        One row per (kind, region, estimate) with at least one pixel-day, regions sorted by name within a kind:
        ``class_kind`` (the kind), ``class`` (the region), ``estimate``, ``n`` (pixel-days), ``n_pixels``,
        ``bias_mean`` (mean difference over the region's pixel-days, each weighted by its cell's area cos(lat), so
        that a zone's mean is a mean over its area and time and not over grid cells, which crowd towards the poles
        on a regular lat-lon grid), ``bias_median`` (the weighted median, same weights, of the pixels' mean
        bias) and ``abs_bias_mean`` (the weighted mean of the absolute mean bias of the pixels: the size of the
        systematic error, which opposite biases within a region do not cancel), m3 m-3.
    """
    flat = {}
    for est, (total, count) in sums.items():
        total, count = total.transpose("lat", "lon"), count.transpose("lat", "lon")
        w = np.broadcast_to(np.asarray(area_weights(total["lat"]))[:, None], total.shape).ravel()
        flat[est] = (np.asarray(total, dtype=np.float64).ravel(), np.asarray(count, dtype=np.float64).ravel(), w)
    rows = []
    for kind, labels in regions.items():
        lab = np.asarray(labels, dtype=object).ravel()
        lab = np.where(lab == "", UNASSIGNED, lab).astype(str)
        for est, (s, n, w) in flat.items():
            if lab.size != s.size:
                raise ValueError(f"regions[{kind!r}] has {lab.size} cells, the bias sums of {est!r} {s.size}")
        present = sorted({r for s, n, w in flat.values() for r in set(lab[n > 0])})
        for region in present:
            for est, (s, n, w) in flat.items():
                sel = (n > 0) & (lab == region)
                if not sel.any():
                    continue
                wn, b = w[sel] * n[sel], s[sel] / n[sel]
                rows.append({"class_kind": kind, "class": region, "estimate": est, "n": int(n[sel].sum()),
                             "n_pixels": int(sel.sum()), "bias_mean": float(np.sum(w[sel] * s[sel]) / wn.sum()),
                             "bias_median": weighted_median(b, wn),
                             "abs_bias_mean": float(np.sum(wn * np.abs(b)) / wn.sum())})
    return pd.DataFrame(rows, columns=["class_kind", "class", "estimate", "n", "n_pixels", "bias_mean",
                                       "bias_median", "abs_bias_mean"])
