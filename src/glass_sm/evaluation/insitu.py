"""In situ validation: a gridded product read at point stations (ISMN sensors) and scored against them.

Each ISMN sensor is collocated with the product's nearest pixel (the cell whose centre is within half a cell of
the station in latitude and longitude, :func:`locate_stations`), both series are put on calendar days and the
days both have are scored (:func:`validate_against_ismn`) with the metrics and bootstrap intervals of
:mod:`glass_sm.evaluation.metrics`. Every sensor gets a row; one that cannot be scored says why in ``status``.
:func:`summarize_sites` gives the paper's median table; :func:`validate_products` scores several products at once
and :func:`collocate_at_stations` returns the collocated daily series themselves.

This module also owns how a product's coordinates are read (:func:`standardize_product`, :func:`rename_coords`,
:func:`glass_sm.grid.nearest_index`), which :mod:`glass_sm.evaluation.intercompare` and :mod:`glass_sm.evaluation.tcol` use.

Conventions: an "estimate" is compared with a "reference" as ``estimate - reference`` (a positive bias is a
wet estimate); soil moisture in m3 m-3; coordinates may be named ``lat``/``latitude``, ``lon``/``longitude``,
``time``/``valid_time``; latitude may run either way and longitude may be -180..180 or 0..360.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from glass_sm.evaluation import metrics as _metrics
from glass_sm.evaluation.breaks import daily_series
from glass_sm.grid import nearest_index
from glass_sm.io.ismn import read_ismn

__all__ = [
    "PERIOD_SPLIT",
    "rename_coords",
    "standardize_product",
    "locate_stations",
    "extract_at_stations",
    "load_stations",
    "station_problem",
    "validate_against_ismn",
    "validate_products",
    "summarize_sites",
    "collocate_at_stations",
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
def rename_coords(obj):
    """``obj`` (DataArray or Dataset) with ``latitude``/``longitude``/``valid_time`` renamed ``lat``/``lon``/``time``."""
    return obj.rename({k: v for k, v in _RENAME.items() if k in obj.dims or k in obj.coords})


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
    da = rename_coords(da)
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
    da = rename_coords(product)
    plat = np.asarray(da["lat"].values, dtype=np.float64)
    plon = np.asarray(da["lon"].values, dtype=np.float64)
    lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lon = _station_lon_for(plon, np.atleast_1d(lon))
    ilat, in_lat = nearest_index(plat, lat)
    ilon, in_lon = nearest_index(plon, lon)
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
def load_stations(ismn_path=None, stations=None, depth=(0.0, 0.05), start=None, end=None, progress: bool = False,
                  read_kwargs: Mapping | None = None) -> tuple[pd.DataFrame, dict]:
    """The sensors as ``(table with a 'sensor_id' column, {sensor_id: daily Series})``.

    Parameters
    ----------
    ismn_path : path-like, optional
        An ISMN archive (zip or folder), read with :func:`glass_sm.io.ismn.read_ismn` when ``stations`` is None.
    stations : (pandas.DataFrame, dict), optional
        A pre-read ``(table, daily)`` pair of ``read_ismn`` (table indexed by sensor id or with a
        ``sensor_id`` column; ``daily`` maps sensor id -> daily means in m3 m-3).
    depth, start, end, progress, read_kwargs
        Passed to ``read_ismn`` (depth range in m, inclusive period).

    Raises
    ------
    ValueError
        Neither source given, or the table lacks ``lat``/``lon``.
    TypeError
        ``stations`` is not a ``(table, daily)`` pair.
    """
    if stations is None:
        if ismn_path is None:
            raise ValueError("give either ismn_path (an ISMN archive, zip or folder) or stations=(table, daily)")
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


def station_problem(note, raw: pd.Series | None, series: pd.Series) -> str | None:
    """Why a sensor's in situ data cannot be used (None when it can).

    ``note`` is the reader's note of the sensor (None or NaN: none), ``raw`` its series as read (None: none),
    ``series`` the valid days in the period (:func:`glass_sm.evaluation.breaks.daily_series` without NaN).
    """
    note = "" if note is None or (isinstance(note, float) and math.isnan(note)) else str(note)
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
    table, daily = load_stations(ismn_path, stations, depth, start, end, progress, read_kwargs)
    prod = standardize_product(product)
    values, where = extract_at_stations(prod, table["lat"].to_numpy(), table["lon"].to_numpy(), start, end)
    prod_days = pd.DatetimeIndex(values["time"].values)
    prod_vals = values.to_numpy()  # (time, site)
    rows = []
    for k in tqdm(range(len(table)), desc="validating", disable=not progress):
        meta = table.iloc[k].to_dict()
        base = _station_row(meta)
        base.update(where.iloc[k][["pixel_lat", "pixel_lon", "distance_km"]].to_dict())
        sid = meta["sensor_id"]
        series = daily_series(daily.get(sid), start, end).dropna()
        base["station_first"] = series.index[0] if len(series) else pd.NaT
        base["station_last"] = series.index[-1] if len(series) else pd.NaT
        status = station_problem(meta.get("note"), daily.get(sid), series)
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



def validate_products(products: Mapping[str, xr.DataArray], stations, **kwargs) -> pd.DataFrame:
    """:func:`validate_against_ismn` for each product; one table, ``product`` column first.

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
    frames = [validate_against_ismn(da, stations=stations, **kwargs).assign(product=name)
              for name, da in products.items()]
    out = pd.concat(frames, ignore_index=True)
    return out[["product"] + [c for c in out.columns if c != "product"]]


def collocate_at_stations(products: Mapping[str, xr.DataArray], stations, start=None, end=None,
                          insitu: str = "insitu") -> dict[str, pd.DataFrame]:
    """Daily series of every product at each sensor's nearest pixel, beside the sensor's own series.

    Parameters
    ----------
    products : mapping name -> xarray.DataArray
        Daily soil moisture, m3 m-3 (any grid; each read at its own nearest pixel, as
        :func:`glass_sm.evaluation.tcol.tc_at_stations` does).
    stations : (pandas.DataFrame, dict)
        ``(table, daily)`` of :func:`glass_sm.io.ismn.read_ismn`.
    start, end : date-like, optional
        Inclusive period.
    insitu : str
        Column name of the station series.

    Returns
    -------
    dict sensor_id -> pandas.DataFrame
        Daily index (union of the days), one column per product (NaN outside the product) and ``insitu``
        (m3 m-3).
    """
    table, daily = load_stations(stations=stations)
    lat, lon = table["lat"].to_numpy(), table["lon"].to_numpy()
    series = {}
    for name, da in products.items():
        values, where = extract_at_stations(da, lat, lon, start, end)
        series[name] = (pd.DatetimeIndex(values["time"].values), values.to_numpy(), where["inside"].to_numpy())
    out = {}
    for k, sid in enumerate(table["sensor_id"]):
        cols = {name: pd.Series(v[:, k] if inside[k] else np.nan, index=days, dtype=np.float64)
                for name, (days, v, inside) in series.items()}
        cols[insitu] = daily_series(daily.get(sid), start, end)
        out[sid] = pd.DataFrame(cols)
    return out
