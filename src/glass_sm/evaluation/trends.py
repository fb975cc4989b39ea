"""Long-term change of soil moisture: Sen's slope and the Mann-Kendall test on annual means.

Per series (:func:`sens_slope`, :func:`mann_kendall`) or per pixel of a cube (:func:`trend_map`, vectorised,
dask-aware); :func:`trend_table` lays trend maps out as one table and :func:`trend_summary` condenses it per data
set (spatial statistics, agreement with a reference's map, the trend of the domain-mean annual series).
Temporal consistency (steps at AVHRR platform changes) is :mod:`glass_sm.evaluation.breaks`.

All functions are pure (no I/O); NaN values are dropped, never propagated into a statistic. Slopes of trend maps
are per decade (m3 m-3 decade-1 for soil moisture in m3 m-3).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

__all__ = [
    "MannKendall",
    "sens_slope",
    "mann_kendall",
    "trend_map",
    "trend_table",
    "trend_summary",
]

_PIXEL_CHUNK_PAIRS = 4_000_000  # pair-matrix elements held at once by the vectorised trend kernel


# ----------------------------------------------------------------------------------------------------------
# Sen's slope and Mann-Kendall
# ----------------------------------------------------------------------------------------------------------
def _clean_xy(y, t=None) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).ravel()
    t = np.arange(y.size, dtype=np.float64) if t is None else np.asarray(t, dtype=np.float64).ravel()
    if t.shape != y.shape:
        raise ValueError(f"y and t must have the same length, got {y.size} and {t.size}")
    keep = np.isfinite(y) & np.isfinite(t)
    return y[keep], t[keep]


def sens_slope(y, t=None) -> float:
    """Sen's (1968) slope: the median of all pairwise slopes.

    .. math:: \\beta = \\operatorname{median}_{i<j,\\; t_j \\ne t_i} \\frac{y_j - y_i}{t_j - t_i}

    Robust to outliers (breakdown point 29 %) and unbiased for a linear trend in symmetric noise.

    Parameters
    ----------
    y : array_like
        Values, e.g. annual mean soil moisture in m3 m-3; NaN values are dropped.
    t : array_like, optional
        Times of the values in any numeric unit (e.g. years); default ``0, 1, 2, ...``.

    Returns
    -------
    float
        Slope in units of ``y`` per unit of ``t`` (m3 m-3 per year for annual means against years); NaN with
        fewer than 2 distinct times.
    """
    y, t = _clean_xy(y, t)
    i, j = np.triu_indices(y.size, k=1)
    dt = t[j] - t[i]
    ok = dt != 0
    if not ok.any():
        return float("nan")
    return float(np.median((y[j] - y[i])[ok] / dt[ok]))


class MannKendall(NamedTuple):
    """Result of :func:`mann_kendall`."""

    s: float
    """Mann-Kendall statistic S (dimensionless count)."""
    var_s: float
    """Variance of S under H0, with the ties correction."""
    z: float
    """Standard normal score with continuity correction."""
    p: float
    """Two-sided p-value."""
    tau: float
    """Kendall's tau-a, S / (n (n-1) / 2), in [-1, 1]."""
    n: int
    """Number of finite values used."""


def _mk_variance(n: np.ndarray | int, ties_term: np.ndarray | float) -> np.ndarray | float:
    return (n * (n - 1) * (2 * n + 5) - ties_term) / 18.0


def _mk_z(s, var_s):
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(var_s)
        z = np.where(s > 0, (s - 1) / sd, np.where(s < 0, (s + 1) / sd, 0.0))
    return np.where(var_s > 0, z, np.nan)


def mann_kendall(y) -> MannKendall:
    """Mann-Kendall test for a monotonic trend (two-sided), with the ties correction.

    .. math::
        S = \\sum_{i<j} \\operatorname{sgn}(y_j - y_i), \\qquad
        \\operatorname{Var}(S) = \\frac{n(n-1)(2n+5) - \\sum_g t_g (t_g - 1)(2 t_g + 5)}{18}

    where :math:`t_g` is the size of the g-th group of tied values;
    :math:`Z = (S - \\operatorname{sgn} S) / \\sqrt{\\operatorname{Var}(S)}` (continuity correction) and
    :math:`p = 2\\,[1 - \\Phi(|Z|)]`. The normal approximation is adequate from n of about 10; the values are
    assumed serially independent (true of annual means, not of daily soil moisture).

    Parameters
    ----------
    y : array_like
        Values in time order (any unit, e.g. annual mean m3 m-3); NaN values are dropped.

    Returns
    -------
    MannKendall
        ``s``, ``var_s``, ``z``, ``p``, ``tau``, ``n``; NaN statistics with fewer than 3 values.
    """
    y, _ = _clean_xy(y)
    n = y.size
    if n < 3:
        return MannKendall(float("nan"), float("nan"), float("nan"), float("nan"), float("nan"), n)
    i, j = np.triu_indices(n, k=1)
    s = float(np.sign(y[j] - y[i]).sum())
    _, counts = np.unique(y, return_counts=True)
    ties = float(np.sum(counts * (counts - 1) * (2 * counts + 5)))
    var_s = float(_mk_variance(n, ties))
    z = float(_mk_z(np.float64(s), np.float64(var_s)))
    p = float(2 * stats.norm.sf(abs(z))) if math.isfinite(z) else float("nan")
    return MannKendall(s, var_s, z, p, s / (n * (n - 1) / 2), n)


def _trend_kernel(values: np.ndarray, t: np.ndarray, min_n: int) -> tuple[np.ndarray, ...]:
    """Sen's slope, Mann-Kendall Z and p and the count along the last axis of ``values`` (NaN-aware).

    The pairwise (n x n) difference matrices are built for blocks of pixels at a time; the ties term uses
    :math:`\\sum_g t_g(t_g-1)(2t_g+5) = \\sum_k (c_k - 1)(2 c_k + 5)` with :math:`c_k` the number of values equal
    to value k (itself included), which needs no sorting.
    """
    lead = values.shape[:-1]
    nt = values.shape[-1]
    flat = values.reshape(-1, nt).astype(np.float64, copy=False)
    npix = flat.shape[0]
    slope = np.full(npix, np.nan)
    z = np.full(npix, np.nan)
    p = np.full(npix, np.nan)
    count = np.zeros(npix, dtype=np.int64)
    iu, ju = np.triu_indices(nt, k=1)
    dt = t[ju] - t[iu]
    block = max(1, _PIXEL_CHUNK_PAIRS // max(1, nt * nt))
    for b0 in range(0, npix, block):
        v = flat[b0:b0 + block]
        valid = np.isfinite(v)
        n = valid.sum(axis=1)
        d = v[:, ju] - v[:, iu]  # (pixels, pairs), NaN where either is missing
        with np.errstate(invalid="ignore", divide="ignore"):
            slopes = np.where(dt != 0, d / dt, np.nan)
        with np.errstate(invalid="ignore"):
            s = np.nansum(np.sign(d), axis=1)
            eq = v[:, :, None] == v[:, None, :]  # NaN never equals anything
            c = eq.sum(axis=2)
            ties = np.where(valid, (c - 1) * (2 * c + 5), 0).sum(axis=1).astype(np.float64)
        var_s = _mk_variance(n.astype(np.float64), ties)
        zb = _mk_z(s, var_s)
        enough = n >= min_n
        all_nan = np.all(np.isnan(slopes), axis=1)
        med = np.full(v.shape[0], np.nan)
        ok = enough & ~all_nan
        if ok.any():
            med[ok] = np.nanmedian(slopes[ok], axis=1)
        slope[b0:b0 + block] = med
        z[b0:b0 + block] = np.where(enough, zb, np.nan)
        p[b0:b0 + block] = np.where(enough, 2 * stats.norm.sf(np.abs(zb)), np.nan)
        count[b0:b0 + block] = n
    return (slope.reshape(lead), z.reshape(lead), p.reshape(lead), count.reshape(lead))


def trend_map(da: xr.DataArray, freq: str = "YS", min_fraction: float = 0.5, min_periods: int = 8,
              time_dim: str = "time") -> xr.Dataset:
    """Per-pixel Sen's slope and Mann-Kendall test of period means (annual by default).

    The daily series of each pixel is first averaged over periods of ``freq`` (``'YS'``: calendar years);
    a period with valid values on fewer than ``min_fraction`` of its calendar days is missing (so that a year
    observed only in summer does not enter as an annual mean). Sen's slope is taken against the period start in
    decimal years and reported **per decade**. Works on numpy- or dask-backed arrays (``time`` must be one
    chunk after the resampling, which it is unless the input has over a chunk of years).

    Parameters
    ----------
    da : xarray.DataArray
        Daily soil moisture, m3 m-3, with a datetime ``time`` dimension and any others (``lat``, ``lon``).
    freq : str
        pandas offset alias of the averaging period (``'YS'`` annual, ``'QS-DEC'`` seasonal ...).
    min_fraction : float
        Fewest valid days for a period mean, as a fraction (0..1) of the period's calendar days.
    min_periods : int
        Fewest valid period means for a trend (else NaN); 8 or more keeps the Mann-Kendall normal
        approximation honest.
    time_dim : str
        Name of the time dimension.

    Returns
    -------
    xarray.Dataset
        ``slope`` (units of ``da`` per decade, e.g. m3 m-3 decade-1), ``p_value`` (two-sided Mann-Kendall),
        ``z`` (Mann-Kendall score), ``n_periods`` (valid period means) and ``mean`` (mean of the period means),
        on the non-time dimensions of ``da``.
    """
    if time_dim not in da.dims:
        raise ValueError(f"trend_map: no '{time_dim}' dimension in {da.dims}")
    grouped = da.resample({time_dim: freq})
    means = grouped.mean(skipna=True)
    counts = grouped.count()
    tt = pd.DatetimeIndex(means[time_dim].values)
    offset = pd.tseries.frequencies.to_offset(freq)
    period_days = xr.DataArray(np.array([((t + offset) - t).days for t in tt], dtype=np.float64),
                               dims=time_dim, coords={time_dim: means[time_dim]})
    means = means.where(counts >= min_fraction * period_days)
    years = (tt.year + (tt.day_of_year - 1) / np.where(tt.is_leap_year, 366.0, 365.0)).to_numpy(np.float64)
    if means.chunks is not None:
        means = means.chunk({time_dim: -1})
    slope, z, p, n = xr.apply_ufunc(
        _trend_kernel, means, kwargs={"t": years, "min_n": min_periods},
        input_core_dims=[[time_dim]], output_core_dims=[[], [], [], []],
        dask="parallelized", output_dtypes=[np.float64, np.float64, np.float64, np.int64],
    )
    units = da.attrs.get("units", "m3 m-3")
    ds = xr.Dataset(
        {
            "slope": (slope * 10.0).assign_attrs(
                units=f"{units} decade-1", long_name=f"Sen's slope of {freq} means per decade"),
            "p_value": p.assign_attrs(units="1", long_name="two-sided Mann-Kendall p-value"),
            "z": z.assign_attrs(units="1", long_name="Mann-Kendall Z score"),
            "n_periods": n.assign_attrs(units="1", long_name=f"valid {freq} means"),
            "mean": means.mean(time_dim).assign_attrs(units=units, long_name=f"mean of the {freq} means"),
        }
    )
    ds.attrs.update(freq=freq, min_fraction=min_fraction, min_periods=min_periods,
                    first_period=str(tt[0].date()) if len(tt) else "",
                    last_period=str(tt[-1].date()) if len(tt) else "")
    return ds


def trend_table(maps: Mapping[str, xr.Dataset]) -> pd.DataFrame:
    """Per-pixel trend maps of :func:`trend_map` as one long table.

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
                row.update(domain_slope=10.0 * sens_slope(y.to_numpy(), years),
                           domain_p=mann_kendall(y.to_numpy()).p, n_years=int(len(y)))
            else:
                row.update(domain_slope=np.nan, domain_p=np.nan, n_years=int(len(y)))
        rows.append(row)
    return pd.DataFrame(rows)
