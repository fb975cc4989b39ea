"""Composites to days: linear interpolation in time of 8-day albedo composites (as NASA LIS does), with a per-day
flag that tells a composite day, a day between composites and a day whose bracketing composite is missing."""

from __future__ import annotations

from __future__ import annotations


import numpy as np
import pandas as pd
import xarray as xr

from glass_sm.grid import lat_lon_attrs
from glass_sm.io.glass_products import *  # noqa: F401,F403
from glass_sm.io.glass_products import _platform


# ----------------------------------------------------------------------------------------------------------
# composites -> daily
# ----------------------------------------------------------------------------------------------------------
def interpolate_composites(values: np.ndarray, sample_times, days, max_span_days: float | None = None,
                           chunk_days: int = 366) -> tuple[np.ndarray, np.ndarray]:
    """Daily values from composites by linear interpolation in time between the two that bracket each day.

    Day ``t`` with bracketing samples ``s_k <= t < s_{k+1}`` gets
    ``v_k + (t - s_k) / (s_{k+1} - s_k) * (v_{k+1} - v_k)`` (flag :data:`FLAG_INTERPOLATED`) where both are
    valid; ``t == s_k`` gets ``v_k`` (flag :data:`FLAG_COMPOSITE_DAY`) where it is valid; everything else
    is NaN with flag :data:`FLAG_GAP`: a bracketing composite is NaN, the day is before the first or after the
    last sample, or the samples are more than ``max_span_days`` apart. Pass every *expected* composite (NaN
    where it is missing), so that a gap is never bridged silently.

    Parameters
    ----------
    values : numpy.ndarray
        ``(n_composites, ...)`` composite values, NaN = missing.
    sample_times : array-like of datetime-like
        Time each composite represents (increasing), e.g. file date + sample offset.
    days : array-like of datetime-like
        The days to produce (their time of day is kept: midnight for dates).
    max_span_days : float, optional
        Longest interval between two samples that is interpolated.
    chunk_days : int
        Days processed at once (bounds the temporaries).

    Returns
    -------
    daily : numpy.ndarray
        ``(n_days, ...)`` float32.
    flag : numpy.ndarray
        ``(n_days, ...)`` int8 of :data:`FLAG_COMPOSITE_DAY`, :data:`FLAG_INTERPOLATED`, :data:`FLAG_GAP`.
    """
    values = np.asarray(values)
    st = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(sample_times)))).as_unit("ns")
    dd = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(days)))).as_unit("ns")
    if len(st) != values.shape[0]:
        raise ValueError(f"{len(st)} sample times for {values.shape[0]} composites")
    if len(st) > 1 and not (np.diff(st.asi8) > 0).all():
        raise ValueError("sample_times must be strictly increasing")
    n = len(st)
    out = np.full((len(dd),) + values.shape[1:], np.nan, np.float32)
    flag = np.full(out.shape, FLAG_GAP, np.int8)
    if n == 0 or len(dd) == 0:
        return out, flag
    s_ns, d_ns = st.asi8.astype(np.float64), dd.asi8.astype(np.float64)
    tol = 1e9  # 1 s, in ns
    k = np.searchsorted(s_ns, d_ns + tol, side="right") - 1  # last sample <= day (within 1 s)
    exact = (k >= 0) & (np.abs(d_ns - s_ns[np.clip(k, 0, n - 1)]) <= tol)
    inside = (k >= 0) & (k < n - 1) & ~exact
    kk = np.clip(k, 0, n - 1)
    k1 = np.clip(k + 1, 0, n - 1)
    span = (s_ns[k1] - s_ns[kk]) / 86400e9
    if max_span_days is not None:
        inside &= span <= max_span_days + 1e-9
    w = np.where(inside, (d_ns - s_ns[kk]) / np.where(span > 0, span * 86400e9, 1.0), 0.0)
    extra = (1,) * (values.ndim - 1)
    valid = np.isfinite(values)
    for a in range(0, len(dd), chunk_days):
        sl = slice(a, a + chunk_days)
        v0, ok0 = values[kk[sl]].astype(np.float32), valid[kk[sl]]
        v1, ok1 = values[k1[sl]].astype(np.float32), valid[k1[sl]]
        ex, ins = exact[sl].reshape(-1, *extra), inside[sl].reshape(-1, *extra)
        ww = w[sl].reshape(-1, *extra).astype(np.float32)
        on_day = ex & ok0
        between = ins & ok0 & ok1
        with np.errstate(invalid="ignore"):
            interp = v0 + ww * (v1 - v0)
        out[sl] = np.where(on_day, v0, np.where(between, interp, np.nan))
        flag[sl] = np.where(on_day, FLAG_COMPOSITE_DAY, np.where(between, FLAG_INTERPOLATED, FLAG_GAP))
    return out, flag


def composites_to_daily(composites: xr.Dataset, days, sample_offset_days: float = 0.0,
                        max_span_days: float | None = None) -> xr.Dataset:
    """Interpolate every ``(time, lat, lon)`` variable of a composite dataset to daily values, with one flag.

    A composite pixel counts only when **every** variable is valid in it (otherwise all are set to NaN there),
    so one flag describes them all.

    Parameters
    ----------
    composites : xarray.Dataset
        As returned by :func:`read_glass_albedo`: one time step per expected composite, NaN where missing.
    days : array-like of datetime-like
        The days wanted.
    sample_offset_days : float
        Sample time of a composite = its ``time`` + this many days (0: the file date, as NASA LIS; 3.5: the
        middle of 8 days starting on the file date).
    max_span_days : float, optional
        See :func:`interpolate_composites`.

    Returns
    -------
    xarray.Dataset
        The variables on ``days`` (float32, attributes kept, ``interpolation`` attribute added), the int8
        ``composite_flag(time, lat, lon)`` (:data:`COMPOSITE_FLAG_ATTRS`), coordinate ``platform(time)`` from
        :func:`glass_sm.platforms.platform_of`, dataset attributes of the composites plus
        ``sample_offset_days`` and the fraction of pixel-days of each flag value.
    """
    days = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(days))), name="time")
    names = [n for n, v in composites.data_vars.items() if v.dims == ("time", "lat", "lon")]
    if not names:
        raise ValueError("composites has no (time, lat, lon) variable")
    ctimes = pd.DatetimeIndex(composites["time"].values)
    samples = ctimes + pd.to_timedelta(float(sample_offset_days), unit="D")
    arrays = {n: composites[n].values.astype(np.float32) for n in names}
    joint = np.logical_and.reduce([np.isfinite(a) for a in arrays.values()])
    data_vars, flag = {}, None
    for n in names:
        a = np.where(joint, arrays[n], np.nan).astype(np.float32)
        daily, f = interpolate_composites(a, samples, days, max_span_days=max_span_days)
        flag = f if flag is None else flag
        attrs = dict(composites[n].attrs)
        attrs["long_name"] = str(attrs.get("long_name", n)).replace(" composite", " composites") + \
            ", interpolated linearly in time to daily values"
        attrs["interpolation"] = (f"linear in time between the bracketing composites (sample time = file date + "
                                  f"{float(sample_offset_days):g} d); NaN where composite_flag = {FLAG_GAP}")
        data_vars[n] = (("time", "lat", "lon"), daily, attrs)
    data_vars["composite_flag"] = (("time", "lat", "lon"), flag, dict(COMPOSITE_FLAG_ATTRS))
    platform, psrc = _platform(days, None)
    ds = xr.Dataset(data_vars, coords={"time": days, "lat": composites["lat"].values,
                                       "lon": composites["lon"].values,
                                       "platform": ("time", platform, {"long_name": "AVHRR platform of the day",
                                                                       "source": psrc})})
    ds["time"].attrs.update(standard_name="time", long_name="time", axis="T")
    ds.attrs.update(composites.attrs)
    total = max(flag.size, 1)
    ds.attrs.update(sample_offset_days=float(sample_offset_days),
                    fraction_composite_day=float((flag == FLAG_COMPOSITE_DAY).sum() / total),
                    fraction_between_composites=float((flag == FLAG_INTERPOLATED).sum() / total),
                    fraction_composite_missing=float((flag == FLAG_GAP).sum() / total))
    return lat_lon_attrs(ds)
