"""Collocation of soil-moisture products with in situ stations and with each other (stage 05).

Three kinds of comparison, all on *any* daily soil-moisture DataArray ``(time, lat, lon)`` in m3 m-3 (ours,
ERA5-Land at 0.1 deg, ESA CCI at 0.25 deg, GLASS-MODIS ...):

* **In situ** (:func:`validate_against_ismn`): each ISMN sensor is collocated with the product's nearest pixel
  (the cell whose centre is within half a cell of the station in latitude and longitude) and scored on the days
  both have, with the metrics and bootstrap intervals of :mod:`glass_sm.evaluation.metrics`. Every sensor gets a row;
  one that cannot be scored says why in ``status``. :func:`summarize_sites` gives the paper's median table.
* **Product vs product** (:func:`compare_products`): the second product is put on the first one's grid
  (:func:`regrid_like`) and per-pixel bias, r, RMSE and ubRMSE maps are computed on common days;
  :func:`summary_table` condenses the maps.
* **Triple collocation** (:func:`triple_collocation`, :func:`tc_at_stations`): error variances of three
  collocated estimates with independent errors, e.g. our product, ERA5-Land and the station.

Conventions: an "estimate" is compared with a "reference" as ``estimate - reference`` (a positive bias is a
wet estimate); coordinates may be named ``lat``/``latitude``, ``lon``/``longitude``, ``time``/``valid_time``;
latitude may run either way and longitude may be -180..180 or 0..360.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from glass_sm.evaluation import metrics as _metrics

__all__ = [
    "PERIOD_SPLIT",
    "standardize_product",
    "locate_stations",
    "extract_at_stations",
    "validate_against_ismn",
    "summarize_sites",
    "regrid_like",
    "compare_products",
    "summary_table",
    "triple_collocation",
    "tc_at_stations",
]

PERIOD_SPLIT = pd.Timestamp("2000-01-01")
"""Start of the 'post-2000' period: the paper scores pre-2000 sites (no MODIS labels) separately."""

_METRIC_NAMES = ("r", "r2", "bias", "rmse", "ubrmse")
_EARTH_RADIUS_KM = 6371.0
_RENAME = {"latitude": "lat", "longitude": "lon", "valid_time": "time", "Latitude": "lat", "Longitude": "lon",
           "Time": "time"}


# ----------------------------------------------------------------------------------------------------------
# Products: coordinates and nearest pixels
# ----------------------------------------------------------------------------------------------------------
def standardize_product(da: xr.DataArray, daily: bool = True) -> xr.DataArray:
    """A product as ``(time, lat, lon)`` with daily time stamps at 00:00.

    Coordinates named ``latitude``/``longitude``/``valid_time`` are renamed; size-1 extra dimensions (an ERA5
    ``number`` or ``expver``) are dropped; with ``daily``, time stamps are floored to the day and, when several
    fall on one day (e.g. ERA5-Land's 00/06/12/18 UTC steps), averaged into a daily mean.

    Parameters
    ----------
    da : xarray.DataArray
        Soil moisture (m3 m-3) with a time and two horizontal dimensions; may be dask-backed.
    daily : bool
        Floor time stamps to days (and average sub-daily steps).

    Returns
    -------
    xarray.DataArray
        Same values (lazily, when dask-backed), dims ``('time', 'lat', 'lon')``.

    Raises
    ------
    ValueError
        When a time, latitude or longitude dimension is missing, or another dimension has more than one
        element; the message lists the dimensions found.
    """
    if not isinstance(da, xr.DataArray):
        raise TypeError(f"expected an xarray.DataArray, got {type(da).__name__}")
    da = da.rename({k: v for k, v in _RENAME.items() if k in da.dims or k in da.coords})
    for extra in [d for d in da.dims if d not in ("time", "lat", "lon")]:
        if da.sizes[extra] != 1:
            raise ValueError(f"product {da.name!r}: dimension '{extra}' has {da.sizes[extra]} elements; select "
                             f"one first (dims: {dict(da.sizes)})")
        da = da.isel({extra: 0}, drop=True)
    missing = [d for d in ("time", "lat", "lon") if d not in da.dims]
    if missing:
        raise ValueError(f"product {da.name!r} lacks dimension(s) {missing} (dims: {dict(da.sizes)}; "
                         "expected time + lat/latitude + lon/longitude)")
    da = da.transpose("time", "lat", "lon")
    if daily:
        days = pd.DatetimeIndex(da["time"].values).normalize()
        if days.has_duplicates:
            da = da.assign_coords(time=days).groupby("time").mean()
        else:
            da = da.assign_coords(time=days)
    return da


def _nearest_index(coord: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest coordinate for each x, and whether x lies within half a cell of it.

    Works for ascending or descending, regular or irregular coordinates; the half-cell of an edge cell is the
    half of its only neighbouring spacing (a single-cell axis accepts only exact matches).
    """
    coord = np.asarray(coord, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    n = coord.size
    if n == 0:
        return np.zeros(x.shape, int), np.zeros(x.shape, bool)
    order = np.argsort(coord, kind="stable")
    c = coord[order]
    pos = np.clip(np.searchsorted(c, x), 1, max(1, n - 1)) if n > 1 else np.zeros(x.shape, int)
    if n > 1:
        left, right = c[pos - 1], c[pos]
        pick = np.where(np.abs(x - left) <= np.abs(right - x), pos - 1, pos)
    else:
        pick = pos
    spacing = np.diff(c)
    half_lo = np.concatenate([[spacing[0] if n > 1 else 0.0], spacing]) / 2  # towards lower neighbour
    half_hi = np.concatenate([spacing, [spacing[-1] if n > 1 else 0.0]]) / 2  # towards upper neighbour
    dist = x - c[pick]
    tol = np.where(dist < 0, half_lo[pick], half_hi[pick]) * (1 + 1e-9) + 1e-12
    inside = np.isfinite(x) & (np.abs(dist) <= tol)
    return order[pick], inside


def _station_lon_for(product_lon: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Station longitudes in the product's convention (0..360 when the product goes beyond 180 E)."""
    lon = np.asarray(lon, dtype=np.float64)
    if np.nanmax(product_lon) > 180.0:
        return np.mod(lon, 360.0)
    return ((lon + 180.0) % 360.0) - 180.0


def _haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi, dlam = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlam / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


def locate_stations(product: xr.DataArray, lat, lon) -> pd.DataFrame:
    """Nearest product pixel of each point (half-cell tolerance in latitude and in longitude).

    Parameters
    ----------
    product : xarray.DataArray
        A product with ``lat``/``latitude`` and ``lon``/``longitude`` coordinates (degrees; either order,
        longitude -180..180 or 0..360).
    lat, lon : array_like
        Points, degrees north / east (-180..180 or 0..360).

    Returns
    -------
    pandas.DataFrame
        One row per point: ``ilat``, ``ilon`` (positional indices into the product), ``pixel_lat``,
        ``pixel_lon`` (cell centre, degrees), ``distance_km`` (great-circle distance station - cell centre) and
        ``inside`` (bool; False for a point beyond half a cell from every cell, whose other columns are NaN/-1).
    """
    da = product.rename({k: v for k, v in _RENAME.items() if k in product.coords or k in product.dims})
    plat = np.asarray(da["lat"].values, dtype=np.float64)
    plon = np.asarray(da["lon"].values, dtype=np.float64)
    lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lon = _station_lon_for(plon, np.atleast_1d(lon))
    ilat, in_lat = _nearest_index(plat, lat)
    ilon, in_lon = _nearest_index(plon, lon)
    inside = in_lat & in_lon
    pixel_lat = np.where(inside, plat[ilat] if plat.size else np.nan, np.nan)
    pixel_lon = np.where(inside, plon[ilon] if plon.size else np.nan, np.nan)
    return pd.DataFrame({
        "ilat": np.where(inside, ilat, -1),
        "ilon": np.where(inside, ilon, -1),
        "pixel_lat": pixel_lat,
        "pixel_lon": pixel_lon,
        "distance_km": np.where(inside, _haversine_km(lat, lon, pixel_lat, pixel_lon), np.nan),
        "inside": inside,
    })


def extract_at_stations(product: xr.DataArray, lat, lon, start=None, end=None) -> tuple[xr.DataArray, pd.DataFrame]:
    """The product's daily series at the nearest pixel of each point (one vectorised read).

    Parameters
    ----------
    product : xarray.DataArray
        Daily soil moisture, m3 m-3 (see :func:`standardize_product` for the accepted layouts); dask-backed
        arrays are read only at the needed pixels.
    lat, lon : array_like
        Points, degrees.
    start, end : date-like, optional
        Inclusive time limits.

    Returns
    -------
    (xarray.DataArray, pandas.DataFrame)
        Values ``(time, site)`` in the product's unit (all-NaN columns for points outside the product) and
        the table of :func:`locate_stations`.
    """
    da = standardize_product(product)
    if start is not None or end is not None:
        da = da.sel(time=slice(pd.Timestamp(start) if start is not None else None,
                               pd.Timestamp(end) if end is not None else None))
    where = locate_stations(da, lat, lon)
    n = len(where)
    il = xr.DataArray(np.where(where["inside"], where["ilat"], 0), dims="site")
    jl = xr.DataArray(np.where(where["inside"], where["ilon"], 0), dims="site")
    values = da.isel(lat=il, lon=jl).drop_vars(["lat", "lon"], errors="ignore").load() if n else \
        xr.DataArray(np.empty((da.sizes["time"], 0)), dims=("time", "site"), coords={"time": da["time"]})
    values = values.where(xr.DataArray(where["inside"].to_numpy(), dims="site"))
    return values.assign_coords(site=np.arange(n)), where


# ----------------------------------------------------------------------------------------------------------
# In situ validation
# ----------------------------------------------------------------------------------------------------------
def _daily_index(series: pd.Series) -> pd.Series:
    idx = pd.DatetimeIndex(series.index)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    s = pd.Series(np.asarray(series, dtype=np.float64), index=idx.normalize())
    if s.index.has_duplicates:
        s = s.groupby(level=0).mean()
    return s.sort_index()


def _clip(series: pd.Series, start, end) -> pd.Series:
    if start is not None:
        series = series[series.index >= pd.Timestamp(start)]
    if end is not None:
        series = series[series.index <= pd.Timestamp(end)]
    return series


def _load_station_data(ismn_path, stations, depth, start, end, progress,
                       read_kwargs: Mapping | None = None) -> tuple[pd.DataFrame, dict]:
    """``(table with a 'sensor_id' column, {sensor_id: daily Series})`` from a pre-read tuple or the archive."""
    if stations is None:
        if ismn_path is None:
            raise ValueError("give either ismn_path (an ISMN archive, zip or folder) or stations=(table, daily)")
        from glass_sm.io.ismn import read_ismn  # noqa: PLC0415 (ismn is only needed here)

        stations = read_ismn(ismn_path, depth=depth, start=start, end=end, progress=progress,
                             **dict(read_kwargs or {}))
    if not (isinstance(stations, (tuple, list)) and len(stations) == 2):
        raise TypeError("stations must be the (stations DataFrame, {sensor_id: daily Series}) pair of read_ismn")
    table, daily = stations
    table = table.copy()
    if "sensor_id" not in table.columns:
        table = table.rename_axis("sensor_id").reset_index()
    missing = [c for c in ("lat", "lon") if c not in table.columns]
    if missing:
        raise ValueError(f"station table lacks column(s) {missing} (columns: {list(table.columns)})")
    return table.reset_index(drop=True), daily


def _period_of(first, last) -> str:
    if pd.isna(first) or pd.isna(last):
        return "unknown"
    if last < PERIOD_SPLIT:
        return "pre-2000"
    if first >= PERIOD_SPLIT:
        return "post-2000"
    return "both"


def _progress(iterable, enabled: bool, desc: str, total: int | None = None):
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm  # noqa: PLC0415
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, desc=desc, total=total)


def _station_problem(note: str, raw: pd.Series | None, series: pd.Series) -> str | None:
    """Why a sensor's in situ data cannot be used (None when it can)."""
    if raw is None:
        return "read error: no daily series for this sensor"
    if note.startswith("read failed"):
        return "read error: " + note.removeprefix("read failed: ")
    if series.empty:
        return f"no station data in period ({note})" if note else "no station data in period"
    return None


def _station_row(meta: Mapping) -> dict:
    keys = ("sensor_id", "network", "station", "sensor", "lat", "lon", "elevation", "depth_from", "depth_to")
    row = {k: meta.get(k, np.nan) for k in keys}
    return row


def validate_against_ismn(product: xr.DataArray, ismn_path=None, depth=(0.0, 0.05), start=None, end=None,
                          min_days: int = 60, n_boot: int = 500, seed: int = 0, stations=None,
                          progress: bool = True, split_periods: bool = False, alpha: float = 0.05,
                          read_kwargs: Mapping | None = None) -> pd.DataFrame:
    """Score a daily soil-moisture product against ISMN in situ sensors, one row per sensor.

    For each sensor the product's nearest pixel (centre within half a cell in latitude and longitude) is read,
    both series are put on calendar days (UTC) and the days where both are valid are scored with
    :func:`glass_sm.evaluation.metrics.summary` (estimate = product, reference = station):

    .. math::
        \\mathrm{bias} = \\overline{p - s}, \\quad
        \\mathrm{RMSE} = \\sqrt{\\overline{(p - s)^2}}, \\quad
        \\mathrm{ubRMSE} = \\sqrt{\\overline{[(p - s) - \\mathrm{bias}]^2}}, \\quad
        r = \\operatorname{corr}(p, s)

    with percentile-bootstrap confidence intervals (``<metric>_lo``, ``<metric>_hi``) from ``n_boot``
    resamples of the collocated days. Nothing is dropped: a sensor that cannot be scored is listed with NaN
    metrics and the reason in ``status``.

    Parameters
    ----------
    product : xarray.DataArray
        Daily soil moisture, m3 m-3, dims time + lat/latitude + lon/longitude (any grid spacing, latitude
        ascending or descending, longitude -180..180 or 0..360); numpy- or dask-backed.
    ismn_path : path-like, optional
        An ISMN archive as downloaded (zip or unpacked folder), read with :func:`glass_sm.io.ismn.read_ismn`
        (hourly values flagged 'G' averaged to days). Not needed when ``stations`` is given.
    depth : (float, float)
        Sensor depth range, m: sensors with ``depth[0] <= depth_from`` and ``depth_to <= depth[1]``.
    start, end : date-like, optional
        Inclusive period of the comparison.
    min_days : int
        Fewest collocated days for a sensor to be scored.
    n_boot : int
        Bootstrap resamples for the intervals (0: no intervals, the ``_lo``/``_hi`` columns are NaN).
    seed : int
        Seed of the bootstrap (the same for every sensor, so reruns give the same table).
    stations : (pandas.DataFrame, dict), optional
        A pre-read ``(stations, daily)`` pair as returned by ``read_ismn`` (table indexed by sensor id or with
        a ``sensor_id`` column; ``daily`` maps sensor id -> Series of daily means in m3 m-3).
    progress : bool
        Show progress bars.
    split_periods : bool
        Score a sensor whose collocated days straddle 2000-01-01 twice, once on its pre-2000 and once on its
        post-2000 days (two rows), as for the paper's pre-2000 evaluation.
    alpha : float
        Two-sided level of the bootstrap intervals (0.05: 95 %).
    read_kwargs : mapping, optional
        Further arguments of ``read_ismn`` (``cache_dir`` for a read-only archive, ``good_only``,
        ``min_obs_per_day``).

    Returns
    -------
    pandas.DataFrame
        One row per sensor (per sensor and period with ``split_periods``) with ``sensor_id``, ``network``,
        ``station``, ``sensor``, ``lat``, ``lon``, ``elevation``, ``depth_from``, ``depth_to`` (from the
        station table), ``pixel_lat``, ``pixel_lon``, ``distance_km``, ``station_first``/``station_last``
        (valid in situ days in the period), ``first``/``last`` (collocated days), ``period``, ``n``
        (collocated days), ``r``, ``r2``, ``bias``, ``rmse``, ``ubrmse`` (m3 m-3 except r, r2), their
        ``_lo``/``_hi`` bounds, and ``status``: ``'ok'``, ``'outside product'``, ``'read error: ...'``,
        ``'no station data in period'``, ``'no valid product values'`` or ``'too few days (n=..)'``.

    Notes
    -----
    ``period`` is ``'pre-2000'``, ``'post-2000'`` or ``'both'`` according to the *collocated* days (those the
    metrics describe), or to the station's own valid days when there are none (``'unknown'`` without any); it
    differs from the station's record only when the product does not cover all of it (e.g. GLASS-MODIS from
    2000 on).
    """
    table, daily = _load_station_data(ismn_path, stations, depth, start, end, progress, read_kwargs)
    prod = standardize_product(product)
    values, where = extract_at_stations(prod, table["lat"].to_numpy(), table["lon"].to_numpy(), start, end)
    prod_days = pd.DatetimeIndex(values["time"].values)
    prod_vals = values.to_numpy()  # (time, site)
    rows = []
    for k in _progress(range(len(table)), progress, "validating", len(table)):
        meta = table.iloc[k].to_dict()
        base = _station_row(meta)
        base.update(where.iloc[k][["pixel_lat", "pixel_lon", "distance_km"]].to_dict())
        sid = meta["sensor_id"]
        series = daily.get(sid)
        series = _clip(_daily_index(series), start, end).dropna() if series is not None else pd.Series(dtype=float)
        base["station_first"] = series.index[0] if len(series) else pd.NaT
        base["station_last"] = series.index[-1] if len(series) else pd.NaT
        note = meta.get("note")
        note = "" if note is None or (isinstance(note, float) and math.isnan(note)) else str(note)
        status = _station_problem(note, daily.get(sid), series)
        if status is None and not where["inside"].iloc[k]:
            status = "outside product"
        elif not np.isfinite(prod_vals[:, k]).any():
            status = "no valid product values"
        if status is not None:
            rows.append({**base, "first": pd.NaT, "last": pd.NaT,
                         "period": _period_of(base["station_first"], base["station_last"]),
                         "n": 0, "status": status})
            continue
        p = pd.Series(prod_vals[:, k], index=prod_days)
        both = pd.DataFrame({"p": p, "s": series}).dropna()
        segments = [("", both)]
        if split_periods and len(both) and both.index[0] < PERIOD_SPLIT <= both.index[-1]:
            segments = [("pre-2000", both[both.index < PERIOD_SPLIT]), ("post-2000", both[both.index >= PERIOD_SPLIT])]
        for label, seg in segments:
            row = {**base, "first": seg.index[0] if len(seg) else pd.NaT,
                   "last": seg.index[-1] if len(seg) else pd.NaT, "n": len(seg)}
            row["period"] = label or (_period_of(row["first"], row["last"]) if len(seg)
                                      else _period_of(base["station_first"], base["station_last"]))
            if len(seg) < min_days:
                row["status"] = f"too few days (n={len(seg)})"
            else:
                stats = _metrics.summary(seg["p"].to_numpy(), seg["s"].to_numpy(), ci=n_boot > 0,
                                        n_boot=max(n_boot, 1), alpha=alpha, seed=seed)
                stats.pop("n")
                row.update(stats)
                row["status"] = "ok"
            rows.append(row)
    cols = (["sensor_id", "network", "station", "sensor", "lat", "lon", "elevation", "depth_from", "depth_to",
             "pixel_lat", "pixel_lon", "distance_km", "station_first", "station_last", "first", "last", "period",
             "n"] + list(_METRIC_NAMES) + [f"{m}_{b}" for m in _METRIC_NAMES for b in ("lo", "hi")] + ["status"])
    out = pd.DataFrame(rows).reindex(columns=cols)
    out["n"] = out["n"].astype(int)
    out.attrs.update(product=str(product.name), depth=tuple(depth), min_days=min_days, n_boot=n_boot,
                     seed=seed, alpha=alpha)
    return out


def summarize_sites(df: pd.DataFrame, by: str | Sequence[str] | None = "period",
                    metrics: Sequence[str] = ("r", "bias", "rmse", "ubrmse"), total: bool = True) -> pd.DataFrame:
    """Median metrics over the scored sensors, per group (the paper's site tables).

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`validate_against_ismn`; only rows with ``status == 'ok'`` enter the medians.
    by : str, list of str or None
        Grouping column(s), e.g. ``'period'`` or ``'network'``; None for one row over all sensors.
    metrics : sequence of str
        Metric columns to summarise.
    total : bool
        Append an ``'all'`` row over every scored sensor.

    Returns
    -------
    pandas.DataFrame
        Indexed by group: ``n_sites`` (scored sensors), ``n_listed`` (all rows of the group), ``n_days``
        (median collocated days), the median of each metric (same units as the input: r dimensionless, the
        others m3 m-3) and its interquartile range as ``<metric>_q25`` / ``<metric>_q75``.
    """
    ok = df[df["status"] == "ok"]
    keys = [by] if isinstance(by, str) else list(by or [])

    def _one(sub_ok: pd.DataFrame, n_listed: int) -> dict:
        row = {"n_sites": len(sub_ok), "n_listed": n_listed,
               "n_days": float(sub_ok["n"].median()) if len(sub_ok) else np.nan}
        for m in metrics:
            vals = sub_ok[m].astype(float) if m in sub_ok else pd.Series(dtype=float)
            row[m] = float(vals.median()) if len(vals) else np.nan
            row[f"{m}_q25"] = float(vals.quantile(0.25)) if len(vals) else np.nan
            row[f"{m}_q75"] = float(vals.quantile(0.75)) if len(vals) else np.nan
        return row

    rows, index = [], []
    if keys:
        for name, sub in df.groupby(keys, sort=True, dropna=False):
            rows.append(_one(sub[sub["status"] == "ok"], len(sub)))
            index.append(name if len(keys) > 1 else (name[0] if isinstance(name, tuple) else name))
    if total or not keys:
        rows.append(_one(ok, len(df)))
        index.append(("all",) * len(keys) if len(keys) > 1 else "all")
    if len(keys) > 1:
        idx = pd.MultiIndex.from_tuples(index, names=keys)
    else:
        idx = pd.Index(index, name=keys[0] if keys else None)
    return pd.DataFrame(rows, index=idx)


# ----------------------------------------------------------------------------------------------------------
# Product vs product
# ----------------------------------------------------------------------------------------------------------
def _spacing(coord: np.ndarray) -> float:
    c = np.asarray(coord, dtype=np.float64)
    return float(np.median(np.abs(np.diff(c)))) if c.size > 1 else float("nan")


def _axis_plan(src: np.ndarray, tgt: np.ndarray, mode: str) -> dict:
    """How one axis of ``src`` maps onto ``tgt``: 'nearest' (take) or 'mean' (aggregate)."""
    if mode == "auto":
        ds, dt_ = _spacing(src), _spacing(tgt)
        mode = "mean" if (math.isfinite(ds) and math.isfinite(dt_) and ds < dt_ * (1 - 1e-6)) else "nearest"
    if mode == "nearest":
        idx, inside = _nearest_index(src, tgt)
        return {"mode": "nearest", "idx": np.where(inside, idx, -1)}
    if mode == "mean":
        idx, inside = _nearest_index(tgt, src)  # target cell holding each source cell centre
        pos = np.flatnonzero(inside)
        order = np.argsort(idx[pos], kind="stable")
        src_pos = pos[order]
        groups = idx[src_pos]
        uniq, starts = np.unique(groups, return_index=True)
        return {"mode": "mean", "src_pos": src_pos, "starts": starts, "uniq": uniq, "n_tgt": tgt.size}
    raise ValueError(f"regrid method must be 'auto', 'nearest' or 'mean', got {mode!r}")


def _apply_axis(total: np.ndarray, count: np.ndarray, axis: int, plan: dict) -> tuple[np.ndarray, np.ndarray]:
    if plan["mode"] == "nearest":
        idx = plan["idx"]
        ok = idx >= 0
        safe = np.where(ok, idx, 0)
        shape = [1] * total.ndim
        shape[axis] = idx.size
        mask = ok.reshape(shape)
        return (np.where(mask, np.take(total, safe, axis=axis), 0.0),
                np.where(mask, np.take(count, safe, axis=axis), 0.0))
    out_shape = list(total.shape)
    out_shape[axis] = plan["n_tgt"]
    t_out, c_out = np.zeros(out_shape), np.zeros(out_shape)
    if plan["src_pos"].size:
        t_sel = np.add.reduceat(np.take(total, plan["src_pos"], axis=axis), plan["starts"], axis=axis)
        c_sel = np.add.reduceat(np.take(count, plan["src_pos"], axis=axis), plan["starts"], axis=axis)
        index = [slice(None)] * total.ndim
        index[axis] = plan["uniq"]
        t_out[tuple(index)] = t_sel
        c_out[tuple(index)] = c_sel
    return t_out, c_out


def _regrid_block(values: np.ndarray, lat_plan: dict, lon_plan: dict) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(v)
    total, count = np.where(valid, v, 0.0), valid.astype(np.float64)
    total, count = _apply_axis(total, count, v.ndim - 2, lat_plan)
    total, count = _apply_axis(total, count, v.ndim - 1, lon_plan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _match_lon_convention(src: xr.DataArray, target_lon: np.ndarray) -> xr.DataArray:
    lon = src["lon"].values.astype(np.float64)
    if np.nanmax(target_lon) > 180 and np.nanmin(lon) < 0:
        return src.assign_coords(lon=np.mod(lon, 360.0)).sortby("lon")
    if np.nanmax(target_lon) <= 180 and np.nanmax(lon) > 180:
        return src.assign_coords(lon=((lon + 180.0) % 360.0) - 180.0).sortby("lon")
    return src


def regrid_like(src: xr.DataArray, target: xr.DataArray, method: str = "auto") -> xr.DataArray:
    """Put ``src`` on the lat/lon grid of ``target``, axis by axis.

    * ``'nearest'``: each target cell takes the source cell whose centre is nearest, if the target centre lies
      within half a source cell of it (else NaN). Used where the source is **coarser or equal** (ERA5-Land
      0.1 deg or ESA CCI 0.25 deg onto 0.05 deg): the coarse value is what the coarse product says about every
      point of its cell, and no smoothness is invented by interpolation.
    * ``'mean'`` (block mean): each target cell takes the NaN-aware mean of the source cells whose centres fall
      inside it (within half a target cell of its centre), every source cell weighted equally. Used where the
      source is **finer** (a 0.01 deg field onto 0.05 deg):
      :math:`\\bar x_J = \\sum_{i \\in J} x_i / |\\{i \\in J: x_i \\text{ valid}\\}|`.
    * ``'auto'`` chooses per axis by comparing the median grid spacings.

    Parameters
    ----------
    src : xarray.DataArray
        Field with lat/lon (or latitude/longitude) dimensions as its last two, any leading dimensions (time);
        any units (kept). Dask-backed input stays lazy (regridded per chunk of the leading dimensions).
    target : xarray.DataArray or xarray.Dataset
        Supplies the grid: its ``lat``/``lon`` (or latitude/longitude) coordinates, degrees.
    method : {'auto', 'nearest', 'mean'}

    Returns
    -------
    xarray.DataArray
        ``src`` on the target grid (target's ``lat``/``lon`` coordinates, float64), attrs kept plus
        ``regrid_method``.
    """
    src = src.rename({k: v for k, v in _RENAME.items() if k in src.dims or k in src.coords})
    tgt = target.rename({k: v for k, v in _RENAME.items() if k in target.dims or k in target.coords})
    tlat, tlon = tgt["lat"].values.astype(np.float64), tgt["lon"].values.astype(np.float64)
    src = _match_lon_convention(src, tlon)
    lat_plan = _axis_plan(src["lat"].values, tlat, method)
    lon_plan = _axis_plan(src["lon"].values, tlon, method)
    lead = [d for d in src.dims if d not in ("lat", "lon")]
    src = src.transpose(*lead, "lat", "lon")
    if src.chunks is not None:
        src = src.chunk({"lat": -1, "lon": -1})
    out = xr.apply_ufunc(
        _regrid_block, src, kwargs={"lat_plan": lat_plan, "lon_plan": lon_plan},
        input_core_dims=[["lat", "lon"]], output_core_dims=[["lat_new", "lon_new"]],
        dask="parallelized", output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"lat_new": tlat.size, "lon_new": tlon.size}},
        keep_attrs=True,
    )
    out = out.rename({"lat_new": "lat", "lon_new": "lon"}).assign_coords(lat=tlat, lon=tlon)
    out.attrs["regrid_method"] = f"lat: {lat_plan['mode']}, lon: {lon_plan['mode']}"
    return out


def compare_products(a: xr.DataArray, b: xr.DataArray, min_pairs: int = 30, method: str = "auto") -> xr.Dataset:
    """Per-pixel agreement maps of product ``a`` (estimate) with product ``b`` (reference) on ``a``'s grid.

    ``b`` is put on ``a``'s grid with :func:`regrid_like` (nearest cell where ``b`` is coarser or equal, block
    mean where it is finer), both are restricted to their common days, and on the days where both are valid:

    .. math::
        n,\\quad \\mathrm{bias} = \\overline{a - b},\\quad \\mathrm{RMSE} = \\sqrt{\\overline{(a - b)^2}},\\quad
        \\mathrm{ubRMSE} = \\sqrt{\\overline{[(a - b) - \\mathrm{bias}]^2}},\\quad
        r = \\frac{\\overline{(a - \\bar a)(b - \\bar b)}}{\\sigma_a \\sigma_b}

    (the same definitions as :mod:`glass_sm.evaluation.metrics`, evaluated per pixel along time).

    Parameters
    ----------
    a, b : xarray.DataArray
        Daily soil moisture, m3 m-3, dims time + lat/latitude + lon/longitude (see
        :func:`standardize_product`); numpy- or dask-backed (the result is then lazy).
    min_pairs : int
        Fewest common valid days for a pixel's metrics (else NaN; ``n`` is still given).
    method : {'auto', 'nearest', 'mean'}
        Regridding of ``b`` (see :func:`regrid_like`).

    Returns
    -------
    xarray.Dataset
        On ``a``'s grid: ``n`` (days), ``bias``, ``rmse``, ``ubrmse`` (m3 m-3), ``r`` (1), ``mean_a``,
        ``mean_b`` (m3 m-3, over the common days). Attributes name the products, the period and the
        regridding.

    Raises
    ------
    ValueError
        When the two products share no day.
    """
    a = standardize_product(a)
    b = standardize_product(b)
    common = pd.DatetimeIndex(a["time"].values).intersection(pd.DatetimeIndex(b["time"].values))
    if common.empty:
        ta, tb = pd.DatetimeIndex(a["time"].values), pd.DatetimeIndex(b["time"].values)
        raise ValueError(f"compare_products: no common day ({a.name}: {ta.min()}..{ta.max()}, "
                         f"{b.name}: {tb.min()}..{tb.max()})")
    a = a.sel(time=common)
    br = regrid_like(b.sel(time=common), a, method=method)
    br = br.assign_coords(time=a["time"])
    valid = a.notnull() & br.notnull()
    aa, bb = a.where(valid).astype(np.float64), br.where(valid)
    n = valid.sum("time")
    d = aa - bb
    bias_ = d.mean("time")
    rmse_ = np.sqrt((d**2).mean("time"))
    ubrmse_ = np.sqrt(((d - bias_) ** 2).mean("time"))
    ma, mb = aa.mean("time"), bb.mean("time")
    cov = ((aa - ma) * (bb - mb)).mean("time")
    va, vb = ((aa - ma) ** 2).mean("time"), ((bb - mb) ** 2).mean("time")
    r_ = (cov / np.sqrt(va * vb)).where((va > 0) & (vb > 0)).clip(-1.0, 1.0)
    enough = n >= max(min_pairs, 3)
    units = a.attrs.get("units", "m3 m-3")
    ds = xr.Dataset({
        "n": n.assign_attrs(units="1", long_name="common valid days"),
        "bias": bias_.where(enough).assign_attrs(units=units, long_name="mean of a - b"),
        "rmse": rmse_.where(enough).assign_attrs(units=units, long_name="root-mean-square difference"),
        "ubrmse": ubrmse_.where(enough).assign_attrs(units=units, long_name="unbiased RMSE"),
        "r": r_.where(enough).assign_attrs(units="1", long_name="Pearson correlation"),
        "mean_a": ma.where(enough).assign_attrs(units=units, long_name="mean of a on common days"),
        "mean_b": mb.where(enough).assign_attrs(units=units, long_name="mean of b on common days"),
    })
    ds.attrs.update(a=str(a.name), b=str(b.name), first_day=str(common[0].date()), last_day=str(common[-1].date()),
                    min_pairs=min_pairs, regrid=br.attrs.get("regrid_method", ""))
    return ds


def summary_table(comparisons: xr.Dataset | Mapping[str, xr.Dataset], regions: xr.DataArray | None = None,
                  metrics: Sequence[str] = ("bias", "r", "rmse", "ubrmse"), weights: str = "coslat") -> pd.DataFrame:
    """Spatial statistics of :func:`compare_products` maps, one row per comparison (and region).

    Parameters
    ----------
    comparisons : xarray.Dataset or mapping of name -> Dataset
        Output(s) of :func:`compare_products` (e.g. ``{'GLASS-AVHRR vs ERA5-Land': ds1, ...}``).
    regions : xarray.DataArray, optional
        ``(lat, lon)`` labels on the maps' grid (e.g. climate zones); NaN/None cells are left out.
    metrics : sequence of str
        Map variables to summarise.
    weights : {'coslat', 'none'}
        Weights of the spatial mean: cell area (cos latitude) or equal.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``comparison`` (and ``region``): ``n_pixels`` (pixels with metrics), ``n_days`` (median
        days per pixel) and for each metric ``<m>_median``, ``<m>_mean`` (weighted), ``<m>_p25``, ``<m>_p75``,
        in the metric's unit (m3 m-3; r dimensionless).
    """
    if isinstance(comparisons, xr.Dataset):
        comparisons = {f"{comparisons.attrs.get('a', 'a')} vs {comparisons.attrs.get('b', 'b')}": comparisons}
    rows, index = [], []
    for name, ds in comparisons.items():
        ds = ds.compute()
        w = np.cos(np.radians(ds["lat"])) * xr.ones_like(ds["lon"]) if weights == "coslat" else \
            xr.ones_like(ds["lat"]) * xr.ones_like(ds["lon"])
        w = w.transpose(*ds[metrics[0]].dims)
        if regions is not None:
            reg = regions.rename({k: v for k, v in _RENAME.items() if k in regions.dims}).reindex_like(
                ds, method="nearest", tolerance=1e-6)
            labels = [v for v in pd.unique(reg.values.ravel()) if not pd.isna(v)]
            groups = [(lab, (reg == lab).values) for lab in sorted(labels, key=str)]
        else:
            groups = [(None, np.ones(w.shape, bool))]
        for lab, mask in groups:
            have = mask & np.isfinite(ds[metrics[0]].values)
            row = {"n_pixels": int(have.sum()),
                   "n_days": float(np.median(ds["n"].values[have])) if have.any() else np.nan}
            for m in metrics:
                v = ds[m].values
                ok = mask & np.isfinite(v)
                vals, ww = v[ok], w.values[ok]
                row[f"{m}_median"] = float(np.median(vals)) if vals.size else np.nan
                row[f"{m}_mean"] = float(np.sum(vals * ww) / np.sum(ww)) if vals.size else np.nan
                row[f"{m}_p25"] = float(np.percentile(vals, 25)) if vals.size else np.nan
                row[f"{m}_p75"] = float(np.percentile(vals, 75)) if vals.size else np.nan
            rows.append(row)
            index.append(name if regions is None else (name, lab))
    idx = pd.MultiIndex.from_tuples(index, names=["comparison", "region"]) if regions is not None else \
        pd.Index(index, name="comparison")
    return pd.DataFrame(rows, index=idx)


# ----------------------------------------------------------------------------------------------------------
# Triple collocation
# ----------------------------------------------------------------------------------------------------------
def triple_collocation(x, y, z, names: Sequence[str] = ("x", "y", "z"), min_n: int = 3) -> dict:
    """Error variances of three collocated estimates by triple collocation, covariance notation.

    With :math:`x = \\alpha_x + \\beta_x \\theta + \\varepsilon_x` (and alike for y, z), errors mutually
    independent and independent of the truth :math:`\\theta`, and :math:`Q` the sample covariance matrix
    (Stoffelen 1998; McColl et al. 2014, eqs. 4 and 9):

    .. math::
        \\sigma^2_{\\varepsilon_x} = Q_{xx} - \\frac{Q_{xy} Q_{xz}}{Q_{yz}},\\quad
        \\sigma^2_{\\varepsilon_y} = Q_{yy} - \\frac{Q_{xy} Q_{yz}}{Q_{xz}},\\quad
        \\sigma^2_{\\varepsilon_z} = Q_{zz} - \\frac{Q_{xz} Q_{yz}}{Q_{xy}}

    each in the squared unit of its own data set (no rescaling), and the squared correlation with the truth

    .. math::
        \\rho^2_{x} = \\frac{Q_{xy} Q_{xz}}{Q_{xx} Q_{yz}},\\quad
        \\rho^2_{y} = \\frac{Q_{xy} Q_{yz}}{Q_{yy} Q_{xz}},\\quad
        \\rho^2_{z} = \\frac{Q_{xz} Q_{yz}}{Q_{zz} Q_{xy}},\\qquad
        \\mathrm{SNR} = \\frac{\\rho^2}{1 - \\rho^2}\\ \\text{(given in dB)}.

    Sampling error can make an estimate negative (or :math:`\\rho^2 > 1`): they are returned as computed,
    while the error standard deviations are NaN where the variance is negative.

    Parameters
    ----------
    x, y, z : array_like
        Collocated series of the same length (e.g. product, ERA5-Land and in situ soil moisture, m3 m-3);
        triplets with any NaN are dropped.
    names : (str, str, str)
        Suffixes of the result keys.
    min_n : int
        Fewest complete triplets (else NaN results).

    Returns
    -------
    dict
        ``n``; ``err_var_<name>`` (unit^2), ``err_sd_<name>`` (unit), ``rho2_<name>`` (1) and
        ``snr_db_<name>`` (dB) for each name.
    """
    arr = np.vstack([np.asarray(v, dtype=np.float64).ravel() for v in (x, y, z)])
    if len({np.asarray(v).size for v in (x, y, z)}) != 1:
        raise ValueError(f"x, y, z must have the same length, got {[np.asarray(v).size for v in (x, y, z)]}")
    arr = arr[:, np.all(np.isfinite(arr), axis=0)]
    n = arr.shape[1]
    out: dict = {"n": int(n)}
    keys = ("err_var", "err_sd", "rho2", "snr_db")
    if n < max(min_n, 3):
        out.update({f"{k}_{nm}": np.nan for nm in names for k in keys})
        return out
    q = np.cov(arr)
    pairs = {0: (1, 2), 1: (0, 2), 2: (0, 1)}  # for i: the two others (j, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        for i, nm in enumerate(names):
            j, k = pairs[i]
            err = q[i, i] - q[i, j] * q[i, k] / q[j, k] if q[j, k] != 0 else np.nan
            rho2 = q[i, j] * q[i, k] / (q[i, i] * q[j, k]) if q[j, k] != 0 and q[i, i] > 0 else np.nan
            out[f"err_var_{nm}"] = float(err)
            out[f"err_sd_{nm}"] = float(math.sqrt(err)) if np.isfinite(err) and err >= 0 else np.nan
            out[f"rho2_{nm}"] = float(rho2)
            snr = rho2 / (1 - rho2) if np.isfinite(rho2) and 0 < rho2 < 1 else np.nan
            out[f"snr_db_{nm}"] = float(10 * np.log10(snr)) if np.isfinite(snr) else np.nan
    return out


def tc_at_stations(product: xr.DataArray, reference: xr.DataArray, ismn_path=None, depth=(0.0, 0.05),
                   start=None, end=None, min_n: int = 100, stations=None, anomalies: bool = False,
                   names: Sequence[str] = ("product", "reference", "insitu"), progress: bool = True,
                   read_kwargs: Mapping | None = None) -> pd.DataFrame:
    """Triple collocation of (product, reference product, in situ) at every ISMN sensor.

    Each product is read at its own nearest pixel of the station (:func:`locate_stations`), the three daily
    series are joined on the days all three have, and :func:`triple_collocation` gives each one's error
    variance in its own units. Typical use: ``tc_at_stations(glass_avhrr, era5land, archive)`` shows whether the
    station or the products carry the larger random error.

    Parameters
    ----------
    product, reference : xarray.DataArray
        Daily soil moisture, m3 m-3 (any grids; see :func:`standardize_product`).
    ismn_path, depth, start, end, stations, progress, read_kwargs
        As in :func:`validate_against_ismn`.
    min_n : int
        Fewest complete triplets (days) for a sensor to be scored.
    anomalies : bool
        Apply triple collocation to deseasonalized anomalies (:func:`glass_sm.evaluation.trends.anomalies` of each series)
        instead of raw values, so that errors in the seasonal cycle, often shared by products, do not
        violate the independence assumption; the error variances then describe the anomalies.
    names : (str, str, str)
        Labels of the product, the reference and the station in the column names.

    Returns
    -------
    pandas.DataFrame
        One row per sensor: ``sensor_id``, ``network``, ``station``, ``sensor``, ``lat``, ``lon``,
        ``depth_from``, ``depth_to``, ``n`` and, for each name, ``err_var_<name>`` ((m3 m-3)^2),
        ``err_sd_<name>`` (m3 m-3), ``rho2_<name>``, ``snr_db_<name>``, plus ``status`` (``'ok'``,
        ``'outside product'``, ``'outside reference'``, ``'read error: ...'``, ``'too few days (n=..)'``).
    """
    from glass_sm.evaluation.trends import anomalies as _anom  # noqa: PLC0415

    table, daily = _load_station_data(ismn_path, stations, depth, start, end, progress, read_kwargs)
    lat, lon = table["lat"].to_numpy(), table["lon"].to_numpy()
    pv, pw = extract_at_stations(product, lat, lon, start, end)
    rv, rw = extract_at_stations(reference, lat, lon, start, end)
    pdays, rdays = pd.DatetimeIndex(pv["time"].values), pd.DatetimeIndex(rv["time"].values)
    pv, rv = pv.to_numpy(), rv.to_numpy()
    rows = []
    for k in _progress(range(len(table)), progress, "triple collocation", len(table)):
        meta = table.iloc[k].to_dict()
        row = {key: meta.get(key, np.nan) for key in
               ("sensor_id", "network", "station", "sensor", "lat", "lon", "depth_from", "depth_to")}
        series = daily.get(meta["sensor_id"])
        note = meta.get("note")
        note = "" if note is None or (isinstance(note, float) and math.isnan(note)) else str(note)
        clipped = _clip(_daily_index(series), start, end).dropna() if series is not None else pd.Series(dtype=float)
        status = _station_problem(note, series, clipped)
        if status is None and not pw["inside"].iloc[k]:
            status = "outside product"
        elif status is None and not rw["inside"].iloc[k]:
            status = "outside reference"
        if status is not None:
            rows.append({**row, "n": 0, "status": status})
            continue
        frame = pd.DataFrame({"p": pd.Series(pv[:, k], index=pdays), "r": pd.Series(rv[:, k], index=rdays),
                              "s": clipped})
        if anomalies:
            frame = frame.apply(lambda col: _anom(col) if col.notna().any() else col)
        frame = frame.dropna()
        if len(frame) < min_n:
            rows.append({**row, "n": len(frame), "status": f"too few days (n={len(frame)})"})
            continue
        res = triple_collocation(frame["p"], frame["r"], frame["s"], names=names)
        rows.append({**row, **res, "status": "ok"})
    cols = (["sensor_id", "network", "station", "sensor", "lat", "lon", "depth_from", "depth_to", "n"]
            + [f"{k}_{nm}" for nm in names for k in ("err_var", "err_sd", "rho2", "snr_db")] + ["status"])
    out = pd.DataFrame(rows).reindex(columns=cols)
    out["n"] = out["n"].astype(int)
    out.attrs.update(product=str(product.name), reference=str(reference.name), anomalies=anomalies, min_n=min_n)
    return out
