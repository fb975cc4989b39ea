"""Trends and temporal consistency of soil-moisture series (stage 05).

Two questions of the paper are answered here:

* **Long-term change**: Sen's slope and the Mann-Kendall test on annual means, per series
  (:func:`sens_slope`, :func:`mann_kendall`) or per pixel of a cube (:func:`trend_map`, vectorised, dask-aware).
* **Temporal consistency over the AVHRR platform changes**: is there a step in the deseasonalized anomalies
  at a known date (a NOAA-7 -> NOAA-9 ... -> NOAA-19 transition)? :func:`break_test` compares the mean anomaly in
  a window before and after the date with a Welch t-test whose sample sizes are reduced to *effective* sizes for
  the lag-1 autocorrelation of daily soil moisture; :func:`breaks_at_transitions` runs it at every transition.

All functions are pure (no I/O); NaN values are dropped, never propagated into a statistic.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
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
    "climatology",
    "anomalies",
    "lag1_autocorrelation",
    "break_test",
    "breaks_at_transitions",
]

_DAYS_PER_YEAR = 365.2425
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


# ----------------------------------------------------------------------------------------------------------
# Anomalies and breaks
# ----------------------------------------------------------------------------------------------------------
def _as_daily_series(series) -> pd.Series:
    if isinstance(series, xr.DataArray):
        if series.ndim != 1:
            raise ValueError(f"expected a 1-D time series, got dims {series.dims}")
        series = series.to_series()
    if not isinstance(series, pd.Series):
        raise TypeError(f"expected a pandas Series with a DatetimeIndex, got {type(series).__name__}")
    idx = pd.DatetimeIndex(series.index)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    s = pd.Series(series.to_numpy(np.float64), index=idx.normalize())
    if not s.index.is_unique:
        s = s.groupby(level=0).mean()
    return s.sort_index()


def _doy365(index: pd.DatetimeIndex) -> np.ndarray:
    """Day of year 1..365 on a no-leap calendar: 29 February shares day 59 with 28 February."""
    doy = index.day_of_year.to_numpy()
    after_feb = index.is_leap_year & (doy >= 60)
    return np.where(after_feb, doy - 1, doy)


def climatology(series, window_days: int = 31, min_years: int = 1) -> pd.Series:
    """Mean annual cycle: the day-of-year means smoothed by a circular moving average.

    .. math:: c(d) = \\frac{1}{|W_d|} \\sum_{k \\in W_d} \\bar y(k), \\quad
              W_d = \\{d - w/2, \\dots, d + w/2\\} \\bmod 365

    with :math:`\\bar y(k)` the mean of all values of day-of-year k (no-leap calendar: 29 February joins
    28 February) and missing days of year skipped.

    Parameters
    ----------
    series : pandas.Series or 1-D xarray.DataArray
        Daily values with a datetime index, e.g. soil moisture in m3 m-3; NaN values are ignored.
    window_days : int
        Width of the moving average, days (odd; 1 for none).
    min_years : int
        Fewest values for a day-of-year mean.

    Returns
    -------
    pandas.Series
        365 values indexed by day of year 1..365, in the unit of ``series``.
    """
    s = _as_daily_series(series).dropna()
    doy = _doy365(s.index)
    sums = np.bincount(doy, weights=s.to_numpy(), minlength=366)[1:]
    counts = np.bincount(doy, minlength=366)[1:].astype(np.float64)
    means = np.where(counts >= min_years, sums / np.where(counts > 0, counts, 1), np.nan)
    half = max(0, int(window_days) // 2)
    if half:
        padded = np.concatenate([means[-half:], means, means[:half]])
        valid = np.isfinite(padded)
        kernel = np.ones(2 * half + 1)
        num = np.convolve(np.where(valid, padded, 0.0), kernel, mode="valid")
        den = np.convolve(valid.astype(np.float64), kernel, mode="valid")
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(den > 0, num / den, np.nan)
    return pd.Series(means, index=pd.RangeIndex(1, 366, name="doy"), name="climatology")


def anomalies(series, window_days: int = 31, clim: pd.Series | None = None) -> pd.Series:
    """Deseasonalized anomalies: the series minus its day-of-year climatology.

    .. math:: a(t) = y(t) - c(\\mathrm{doy}(t))

    Parameters
    ----------
    series : pandas.Series or 1-D xarray.DataArray
        Daily values with a datetime index, e.g. soil moisture in m3 m-3.
    window_days : int
        Smoothing window of the climatology, days (see :func:`climatology`).
    clim : pandas.Series, optional
        A climatology from :func:`climatology` (e.g. of a reference period); default: the series' own.

    Returns
    -------
    pandas.Series
        Anomalies on the (daily, tz-naive) index of ``series``, in its unit; NaN where the series is NaN.
    """
    s = _as_daily_series(series)
    c = climatology(s, window_days) if clim is None else clim
    if len(c) != 365:
        raise ValueError(f"a climatology has 365 values (day of year 1..365), got {len(c)}")
    out = s.to_numpy() - c.to_numpy()[_doy365(s.index) - 1]
    return pd.Series(out, index=s.index, name=getattr(series, "name", None))


def lag1_autocorrelation(series) -> float:
    """Lag-1 autocorrelation of a daily series, from the pairs of consecutive days both present.

    .. math:: \\rho_1 = \\frac{\\sum_t (x_t - \\bar x)(x_{t+1} - \\bar x)}{\\sum_t (x_t - \\bar x)^2}

    (sums over the valid consecutive pairs; :math:`\\bar x` over the valid values).

    Parameters
    ----------
    series : pandas.Series
        Daily values with a datetime index (gaps allowed), any unit.

    Returns
    -------
    float
        Dimensionless, in [-1, 1]; NaN with fewer than 3 consecutive pairs.
    """
    s = _as_daily_series(series)
    if s.empty:
        return float("nan")
    s = s.reindex(pd.date_range(s.index[0], s.index[-1], freq="D"))
    x = s.to_numpy()
    xm = np.nanmean(x)
    a, b = x[:-1] - xm, x[1:] - xm
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    den = np.sum(a[ok] ** 2)
    if den == 0:
        return float("nan")
    return float(np.clip(np.sum(a[ok] * b[ok]) / den, -1.0, 1.0))


def _n_effective(x: pd.Series, adjust: bool) -> tuple[float, float]:
    n = float(x.notna().sum())
    if not adjust:
        return n, 0.0
    rho = lag1_autocorrelation(x)
    rho = 0.0 if not math.isfinite(rho) else float(np.clip(rho, 0.0, 0.99))
    return max(2.0, min(n, n * (1 - rho) / (1 + rho))), rho


def break_test(series, date, window_days: int = 365 * 2, deseasonalize: bool = True, ar1_adjust: bool = True,
               min_days: int = 30, window_clim: int = 31) -> dict:
    """Test for a step change at a known date (e.g. an AVHRR platform transition).

    The (deseasonalized) anomalies in ``[date - window, date)`` and ``[date, date + window)`` are compared with
    Welch's unequal-variance t-test:

    .. math::
        \\Delta = \\bar a_{+} - \\bar a_{-}, \\qquad
        t = \\frac{\\Delta}{\\sqrt{s_-^2 / n^*_- + s_+^2 / n^*_+}}, \\qquad
        \\nu = \\frac{(s_-^2/n^*_- + s_+^2/n^*_+)^2}{\\frac{(s_-^2/n^*_-)^2}{n^*_- - 1} +
               \\frac{(s_+^2/n^*_+)^2}{n^*_+ - 1}}

    Daily soil-moisture anomalies are strongly autocorrelated, so with ``ar1_adjust`` each side's sample size
    is replaced by the effective size of an AR(1) process, :math:`n^* = n (1 - \\rho_1) / (1 + \\rho_1)`
    (:math:`\\rho_1` the side's lag-1 autocorrelation, clipped to [0, 0.99]); without it the test is
    anti-conservative by a factor of about :math:`\\sqrt{(1+\\rho_1)/(1-\\rho_1)}` in t.

    Parameters
    ----------
    series : pandas.Series or 1-D xarray.DataArray
        Daily soil moisture (m3 m-3) with a datetime index; NaN days are skipped.
    date : date-like
        The candidate break; it belongs to the "after" side.
    window_days : int
        Length of each side's window, days.
    deseasonalize : bool
        Compare anomalies from the day-of-year climatology of the whole series (:func:`anomalies`) rather than
        raw values (a raw comparison confounds the step with the seasons covered by each window).
    ar1_adjust : bool
        Use effective sample sizes (see above).
    min_days : int
        Fewest valid days on each side; fewer gives NaN statistics and a ``status`` saying so.
    window_clim : int
        Smoothing window of the climatology, days.

    Returns
    -------
    dict
        ``date``, ``step`` (after minus before, unit of ``series``), ``t``, ``df``, ``p`` (two-sided),
        ``mean_before``, ``mean_after``, ``n_before``, ``n_after`` (valid days), ``n_eff_before``,
        ``n_eff_after``, ``rho1_before``, ``rho1_after`` and ``status`` (``'ok'`` or the reason for NaN).
    """
    s = _as_daily_series(series)
    date = pd.Timestamp(date).normalize()
    a = anomalies(s, window_clim) if deseasonalize else s
    w = pd.Timedelta(days=int(window_days))
    before = a[(a.index >= date - w) & (a.index < date)]
    after = a[(a.index >= date) & (a.index < date + w)]
    nb, na = int(before.notna().sum()), int(after.notna().sum())
    out = {"date": date, "step": np.nan, "t": np.nan, "df": np.nan, "p": np.nan,
           "mean_before": np.nan, "mean_after": np.nan, "n_before": nb, "n_after": na,
           "n_eff_before": np.nan, "n_eff_after": np.nan, "rho1_before": np.nan, "rho1_after": np.nan,
           "status": "ok"}
    if nb < min_days or na < min_days:
        out["status"] = f"too few days (before={nb}, after={na}, need {min_days})"
        return out
    mb, ma = float(before.mean()), float(after.mean())
    vb, va = float(before.var(ddof=1)), float(after.var(ddof=1))
    neb, rb = _n_effective(before, ar1_adjust)
    nea, ra = _n_effective(after, ar1_adjust)
    se2b, se2a = vb / neb, va / nea
    se = math.sqrt(se2b + se2a)
    out.update(step=ma - mb, mean_before=mb, mean_after=ma, n_eff_before=neb, n_eff_after=nea,
               rho1_before=rb, rho1_after=ra)
    if se == 0:
        out["status"] = "constant series"
        return out
    t = (ma - mb) / se
    df = (se2b + se2a) ** 2 / (se2b**2 / (neb - 1) + se2a**2 / (nea - 1))
    out.update(t=t, df=df, p=float(2 * stats.t.sf(abs(t), df)))
    return out


def _transition_rows(transitions) -> pd.DataFrame:
    """Normalise transitions to a DataFrame with a ``date`` column (other columns kept as labels)."""
    if isinstance(transitions, pd.DataFrame):
        df = transitions
        if "date" not in df.columns and isinstance(df.index, pd.DatetimeIndex):
            df = df.rename_axis("date").reset_index()
        if "date" not in df.columns:
            dates = [c for c in df.columns if pd.api.types.is_datetime64_any_dtype(df[c])]
            if not dates:
                raise ValueError(f"transitions table has no 'date' column (columns: {list(df.columns)})")
            df = df.rename(columns={dates[0]: "date"})
        return df.reset_index(drop=True)
    if isinstance(transitions, pd.Series):
        if isinstance(transitions.index, pd.DatetimeIndex):
            return pd.DataFrame({"date": transitions.index, "label": transitions.to_numpy()})
        return pd.DataFrame({"label": transitions.index, "date": pd.to_datetime(transitions.to_numpy())})
    if isinstance(transitions, dict):
        items = list(transitions.items())
        if items and isinstance(items[0][0], str):
            return pd.DataFrame({"label": [k for k, _ in items], "date": [v for _, v in items]})
        return pd.DataFrame({"date": [k for k, _ in items], "label": [v for _, v in items]})
    if isinstance(transitions, Iterable) and not isinstance(transitions, str):
        rows = []
        for item in transitions:
            if isinstance(item, (tuple, list)):
                is_date = [isinstance(x, (dt.date, np.datetime64)) for x in item]
                k = is_date.index(True) if any(is_date) else 0
                labels = [str(x) for i, x in enumerate(item) if i != k]
                rows.append({"date": pd.Timestamp(item[k]), "label": " -> ".join(labels)})
            else:
                rows.append({"date": pd.Timestamp(item)})
        return pd.DataFrame(rows, columns=["date", "label"] if any("label" in r for r in rows) else ["date"])
    raise TypeError(f"cannot read transitions from {type(transitions).__name__}")


def breaks_at_transitions(series, transitions=None, window_days: int = 365 * 2, alpha: float = 0.01,
                          **kwargs) -> pd.DataFrame:
    """:func:`break_test` at each known transition date.

    Parameters
    ----------
    series : pandas.Series or 1-D xarray.DataArray
        Daily soil moisture (m3 m-3) with a datetime index.
    transitions : DatetimeIndex, DataFrame, Series, dict or iterable, optional
        The dates: :func:`glass_sm.platforms.transition_dates` output or any iterable of dates or of
        ``(date, label, ...)`` tuples, a DataFrame with a ``date`` column (its other columns are copied to the
        result), or a Series or dict pairing dates and labels. Default: the AVHRR platform changes within the
        series' span, ``transition_dates(first day, last day)``.
    window_days : int
        Window on each side, days. Windows of neighbouring transitions may overlap; each test then also
        sees the other step, which is why the window should stay below the spacing of transitions.
    alpha : float
        Significance level of the ``significant`` column (dimensionless); several transitions are tested,
        so a Bonferroni-style ``alpha / n_transitions`` is the conservative choice.
    **kwargs
        Passed to :func:`break_test` (``deseasonalize``, ``ar1_adjust``, ``min_days`` ...).

    Returns
    -------
    pandas.DataFrame
        One row per transition: its labels, ``platform_before`` / ``platform_after`` (the AVHRR platforms of
        the day before and of the date, :func:`glass_sm.platforms.platform_of`), the columns of
        :func:`break_test` and ``significant`` (``p < alpha``).
    """
    from glass_sm.platforms import platform_of, transition_dates  # noqa: PLC0415

    s = _as_daily_series(series)
    if transitions is None:
        valid = s.dropna()
        transitions = transition_dates(valid.index[0], valid.index[-1]) if len(valid) else []
    table = _transition_rows(transitions)
    rows = []
    for _, tr in table.iterrows():
        date = pd.Timestamp(tr["date"]).normalize()
        row = {k: v for k, v in tr.items() if k != "date"}
        row["platform_before"] = str(platform_of([date - pd.Timedelta(days=1)])[0])
        row["platform_after"] = str(platform_of([date])[0])
        row.update(break_test(s, date, window_days=window_days, **kwargs))
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["significant"] = out["p"] < alpha
    return out
