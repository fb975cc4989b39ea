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

__all__ = ["ARIDITY_EDGES", "ARIDITY_LABELS", "SEASONS", "aridity_class", "season_of", "sm_class",
           "bias_by_class", "area_weights", "domain_mean", "domain_mean_series", "monthly_domain_mean"]

ARIDITY_EDGES = (0.0, 0.05, 0.2, 0.5, 0.65, np.inf)
ARIDITY_LABELS = ("hyper-arid", "arid", "semi-arid", "dry sub-humid", "humid")
"""UNEP (1992) aridity zones of the aridity index P/PET (dimensionless), left-closed intervals."""

SEASONS = ("DJF", "MAM", "JJA", "SON")


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
