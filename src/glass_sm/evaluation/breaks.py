"""Temporal consistency: is there a step in a soil-moisture record at a known date (an AVHRR platform change)?

:func:`break_test` compares the mean deseasonalized anomaly (:func:`anomalies` from the day-of-year
:func:`climatology`) in a window before and after a date with a Welch t-test whose sample sizes are reduced to
*effective* sizes for the lag-1 autocorrelation (:func:`lag1_autocorrelation`) of daily soil moisture;
:func:`breaks_at_transitions` runs it at every NOAA platform transition and :func:`breaks_table` for several series
at once. :func:`rescaled_residual` isolates what a product does beyond a reference (a step of its own).

All functions are pure (no I/O); NaN values are dropped, never propagated into a statistic. Soil moisture in
m3 m-3, steps in the unit of the series, windows in days.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from glass_sm.platforms import platform_of, transition_dates

__all__ = [
    "daily_series",
    "climatology",
    "anomalies",
    "lag1_autocorrelation",
    "break_test",
    "breaks_at_transitions",
    "breaks_table",
    "rescaled_residual",
    "BREAK_COLUMNS",
]

BREAK_COLUMNS = ("series", "platform_before", "platform_after", "date", "step", "t", "df", "p", "mean_before",
                 "mean_after", "n_before", "n_after", "n_eff_before", "n_eff_after", "rho1_before", "rho1_after",
                 "status", "significant")
"""Columns of :func:`breaks_table` (its empty table too)."""


# ----------------------------------------------------------------------------------------------------------
# Anomalies and breaks
# ----------------------------------------------------------------------------------------------------------
def daily_series(series, start=None, end=None) -> pd.Series:
    """A series on calendar days: UTC, tz-naive, float64, sorted, several values of one day averaged.

    Parameters
    ----------
    series : pandas.Series, 1-D xarray.DataArray or None
        Values (any unit, e.g. m3 m-3) on a datetime index (tz-aware or naive, any time of day); None gives an
        empty series.
    start, end : date-like, optional
        Inclusive limits.

    Returns
    -------
    pandas.Series
        Daily values (NaN kept) on a DatetimeIndex at 00:00.
    """
    if series is None:
        return pd.Series(dtype=float)
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
    s = s.sort_index()
    if start is not None:
        s = s[s.index >= pd.Timestamp(start)]
    if end is not None:
        s = s[s.index <= pd.Timestamp(end)]
    return s


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
    s = daily_series(series).dropna()
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
    s = daily_series(series)
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
    s = daily_series(series)
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
    s = daily_series(series)
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
    s = daily_series(series)
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


def breaks_table(series: Mapping[str, pd.Series], transitions, window_days: int = 365 * 2,
                 alpha: float = 0.05, **kwargs) -> pd.DataFrame:
    """:func:`breaks_at_transitions` for several series with a Bonferroni level, one table.

    Parameters
    ----------
    series : mapping name -> pandas.Series
        Daily soil moisture (m3 m-3), e.g. domain means and residuals.
    transitions
        The dates (see :func:`breaks_at_transitions`), e.g. :func:`glass_sm.platforms.transition_dates`.
    window_days : int
        Window on each side, days.
    alpha : float
        Family-wise level: each test is significant at ``alpha / len(transitions)`` (dimensionless).
    **kwargs
        Passed to :func:`break_test`.

    Returns
    -------
    pandas.DataFrame
        ``series`` then the columns of :func:`breaks_at_transitions`, one row per series and transition; with
        no transition, an empty table with :data:`BREAK_COLUMNS`.
    """
    n = len(transitions)
    level = alpha / max(n, 1)
    parts = [breaks_at_transitions(s, transitions, window_days=window_days, alpha=level, **kwargs)
             .assign(series=name) for name, s in series.items()] if n else []
    if not parts:
        return pd.DataFrame(columns=list(BREAK_COLUMNS))
    out = pd.concat(parts, ignore_index=True)
    return out[["series"] + [c for c in out.columns if c != "series"]]


def rescaled_residual(series: pd.Series, reference: pd.Series, deseasonalize: bool = True,
                      window_days: int = 31) -> pd.Series:
    r"""What a series does that a reference does not: the residual of the least-squares fit of one on the other.

    .. math:: e(t) = x(t) - (a + b\,y(t)), \qquad (a, b) = \arg\min \sum_t \big(x(t) - a - b\,y(t)\big)^2

    over the days both are valid, with x and y first deseasonalized (:func:`anomalies`) when ``deseasonalize``.
    A plain difference x - y keeps :math:`(b - 1)\,y`: with a gain error, every real step of the soil would show
    up in it; the residual keeps only what does not scale with the reference (e.g. a calibration step of the
    series' own inputs). An own step on the very date of a large real step of the reference is partly taken up
    by the gain b and shrinks in the residual.

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
        x, y = anomalies(x, window_days), anomalies(y, window_days)
    both = pd.DataFrame({"x": x, "y": y})
    ok = both.dropna()
    if len(ok) < 3 or ok["y"].var() == 0:
        return pd.Series(np.nan, index=both.index, name=series.name)
    b, a = np.polyfit(ok["y"].to_numpy(), ok["x"].to_numpy(), 1)
    return (both["x"] - (a + b * both["y"])).rename(series.name)
