"""Product against product: a second gridded product put on the first one's grid and compared pixel by pixel.

:func:`regrid_like` puts a product on another's lat/lon grid (nearest cell from a coarser or equal grid, block mean
from a finer one); :func:`compare_products` maps per-pixel bias, R, RMSE and ubRMSE over the common days;
:func:`summary_table` condenses the maps into spatial statistics (cos-latitude weighted means), per region if
asked; :func:`maps_table` lays the maps out as one long table; :func:`compare_by_period` scores several estimates
against one reference per period and pixel group (the twin's true error).

Conventions as in :mod:`glass_sm.evaluation.insitu` (``a - b``: a positive bias is a wet ``a``; soil moisture in
m3 m-3, R dimensionless).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from glass_sm.evaluation.aggregate import area_weights
from glass_sm.evaluation.insitu import rename_coords, standardize_product
from glass_sm.grid import nearest_index

__all__ = ["regrid_like", "compare_products", "summary_table", "maps_table", "compare_by_period"]


def _spacing(coord: np.ndarray) -> float:
    c = np.asarray(coord, dtype=np.float64)
    return float(np.median(np.abs(np.diff(c)))) if c.size > 1 else float("nan")


def _axis_plan(src: np.ndarray, tgt: np.ndarray, mode: str) -> dict:
    """How one axis of ``src`` maps onto ``tgt``: 'nearest' (take) or 'mean' (aggregate)."""
    if mode == "auto":
        ds, dt_ = _spacing(src), _spacing(tgt)
        mode = "mean" if (math.isfinite(ds) and math.isfinite(dt_) and ds < dt_ * (1 - 1e-6)) else "nearest"
    if mode == "nearest":
        idx, inside = nearest_index(src, tgt)
        idx = np.where(inside, idx, -1)
        identity = idx.size == np.asarray(src).size and bool(np.array_equal(idx, np.arange(idx.size)))
        return {"mode": "nearest", "idx": idx, "identity": identity}
    if mode == "mean":
        idx, inside = nearest_index(tgt, src)  # target cell holding each source cell centre
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
    if lat_plan.get("identity") and lon_plan.get("identity"):
        # the same grid (e.g. ERA5-Land, the labels or the truth on the cube's grid): each cell takes itself, and
        # x / 1 == x exactly, so this is the general path's result without its copies
        return np.where(valid, v, np.nan)
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
    src = rename_coords(src)
    tgt = rename_coords(target)
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


_BLOCK_BYTES = 8 * 2**20
"""Size of one float64 ``(time, pixels)`` block of :func:`_pixel_stats`, bytes: the dozen temporaries of a block
stay small (a 40-year daily series is 117 kB per pixel, so ~70 pixels a block; measured on the global demo's
14 610 days x 5 520 cells, 8 MiB blocks ran 4x faster than one array of the whole field, and 2 MiB or 32 MiB
blocks slower than 8) instead of each being as large as the whole field."""


def _is_lazy(da: xr.DataArray) -> bool:
    return da.chunks is not None


def _same_cells(src: xr.DataArray, target: xr.DataArray, method: str = "auto") -> xr.DataArray | None:
    """``src`` (lat, lon last, in the target's longitude convention) when :func:`regrid_like` would give each
    target cell the source cell of the same index (the same grid), else None; ``regrid_like`` would then only turn
    its values to float64 and its infinities to NaN."""
    src, tgt = rename_coords(src), rename_coords(target)
    tlat, tlon = tgt["lat"].values.astype(np.float64), tgt["lon"].values.astype(np.float64)
    src = _match_lon_convention(src, tlon)
    if not all(_axis_plan(src[c].values, t, method).get("identity") for c, t in (("lat", tlat), ("lon", tlon))):
        return None
    return src.transpose(*[d for d in src.dims if d not in ("lat", "lon")], "lat", "lon")


def _pixel_stats(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray] | None:
    """Per pixel of two ``(time, ...)`` arrays, over the days both are valid: ``n`` (int), ``bias``, ``rmse``,
    ``ubrmse``, ``mean_a``, ``mean_b`` and ``r``, flattened over the trailing dimensions. Missing: NaN in ``a``,
    anything not finite in ``b`` (as :func:`regrid_like` makes it NaN; ``b`` is ``a``'s reference, regridded or on
    the same grid).

    The numpy path of :func:`compare_products`: the same operations in the same order as its xarray path, each
    NaN-skipping mean taken as numpy's ``nanmean`` takes it (the sum of the values with the missing ones set to 0,
    divided by the count), over blocks of at least two pixels. A sum along time adds a pixel's days one after the
    other both in a block and in the whole (time-major) array, so the results are the same to the last bit, with
    temporaries of :data:`_BLOCK_BYTES` instead of the field's size. Pixels without a common day (the sea of a
    global grid) are not computed: every formula gives them 0 / 0 = NaN, as here. None when ``a`` holds an
    infinite value, which only the xarray path treats as it does.
    """
    nt = a.shape[0]
    a2, b2 = a.reshape(nt, -1), b.reshape(nt, -1)
    npx = a2.shape[1]
    if np.isinf(a2).any():
        return None
    valid_all = ~np.isnan(a2) & np.isfinite(b2)
    out = {k: np.full(npx, np.nan) for k in ("bias", "rmse", "ubrmse", "mean_a", "mean_b", "r")}
    out["n"] = valid_all.sum(axis=0)
    cols = np.flatnonzero(out["n"] > 0)
    if cols.size == 1 and npx > 1:  # a block of one pixel would sum pairwise, not day by day: add a neighbour
        cols = np.sort(np.append(cols, 1 if cols[0] == 0 else cols[0] - 1))
    step = max(2, _BLOCK_BYTES // (8 * max(nt, 1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        for px in np.array_split(cols, max(1, cols.size // step)) if cols.size else []:
            # time-major copies: numpy's gather x[:, px] may come out column-major, and a reduction along a
            # column-major time axis would sum pairwise
            valid = np.ascontiguousarray(valid_all[:, px])
            aa = np.where(valid, np.ascontiguousarray(a2[:, px]), np.float64(0.0))
            bb = np.where(valid, np.ascontiguousarray(b2[:, px]), np.float64(0.0))
            n = out["n"][px]
            d = aa - bb
            bias = d.sum(axis=0) / n
            ma, mb = aa.sum(axis=0) / n, bb.sum(axis=0) / n
            ea, eb = np.where(valid, aa - ma, 0.0), np.where(valid, bb - mb, 0.0)
            cov, va, vb = (ea * eb).sum(axis=0) / n, (ea**2).sum(axis=0) / n, (eb**2).sum(axis=0) / n
            out["bias"][px] = bias
            out["rmse"][px] = np.sqrt((d**2).sum(axis=0) / n)
            out["ubrmse"][px] = np.sqrt(np.where(valid, (d - bias) ** 2, 0.0).sum(axis=0) / n)
            out["mean_a"][px], out["mean_b"][px] = ma, mb
            out["r"][px] = np.clip(np.where((va > 0) & (vb > 0), cov / np.sqrt(va * vb), np.nan), -1.0, 1.0)
    return out


def _stats_xarray(a: xr.DataArray, br: xr.DataArray) -> dict[str, xr.DataArray]:
    """The maps of :func:`compare_products` before the ``min_pairs`` mask, with xarray (any backend, lazily on
    dask): ``n``, ``bias``, ``rmse``, ``ubrmse``, ``mean_a``, ``mean_b``, ``r``."""
    valid = a.notnull() & br.notnull()
    aa, bb = a.where(valid).astype(np.float64), br.where(valid)
    d = aa - bb
    bias_ = d.mean("time")
    ma, mb = aa.mean("time"), bb.mean("time")
    cov = ((aa - ma) * (bb - mb)).mean("time")
    va, vb = ((aa - ma) ** 2).mean("time"), ((bb - mb) ** 2).mean("time")
    return {"n": valid.sum("time"), "bias": bias_, "rmse": np.sqrt((d**2).mean("time")),
            "ubrmse": np.sqrt(((d - bias_) ** 2).mean("time")), "mean_a": ma, "mean_b": mb,
            "r": (cov / np.sqrt(va * vb)).where((va > 0) & (vb > 0)).clip(-1.0, 1.0)}


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
        :func:`glass_sm.evaluation.insitu.standardize_product`); numpy- or dask-backed (the result is then lazy).
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
    a, b = (x if x.indexes["time"].equals(common) else x.sel(time=common) for x in (a, b))  # no copy when equal
    lazy = _is_lazy(a) or _is_lazy(b)
    same = None if lazy else _same_cells(b, a, method)
    stats = None if same is None else _pixel_stats(np.asarray(a.values), np.asarray(same.values))
    # b on a's grid; on the same grid only its first day, for the coordinates and attributes of the maps
    br = regrid_like(b.isel(time=[0]) if stats is not None else b, a, method=method)
    if stats is None:
        br = br.assign_coords(time=a["time"])
        if not lazy and same is None:
            stats = _pixel_stats(np.asarray(a.values), np.asarray(br.values))
    if stats is None:
        maps = _stats_xarray(a, br)
    else:  # numpy: the same numbers by pixel blocks; names, coordinates and attributes from the first day
        with np.errstate(divide="ignore", invalid="ignore"):
            like = _stats_xarray(a.isel(time=[0]), br.isel(time=[0]).assign_coords(time=a["time"][:1]))
        maps = {k: v.copy(data=stats[k].reshape(v.shape)) for k, v in like.items()}
    n, bias_, rmse_, ubrmse_ = maps["n"], maps["bias"], maps["rmse"], maps["ubrmse"]
    ma, mb, r_ = maps["mean_a"], maps["mean_b"], maps["r"]
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
        w = area_weights(ds["lat"]) * xr.ones_like(ds["lon"]) if weights == "coslat" else \
            xr.ones_like(ds["lat"]) * xr.ones_like(ds["lon"])
        w = w.transpose(*ds[metrics[0]].dims)
        if regions is not None:
            reg = rename_coords(regions).reindex_like(ds, method="nearest", tolerance=1e-6)
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



def maps_table(maps: Mapping[str, xr.Dataset], key: str = "comparison",
               variables: Sequence[str] = ("n", "bias", "r", "rmse", "ubrmse")) -> pd.DataFrame:
    """Per-pixel maps of :func:`compare_products` as one long table, one block of rows per map.

    Parameters
    ----------
    maps : mapping name -> xarray.Dataset
        Outputs of :func:`compare_products`.
    key : str
        Name of the first column, holding the map's name.
    variables : sequence of str
        Map variables to keep (``n`` in days, ``bias``/``rmse``/``ubrmse``/``mean_a``/``mean_b`` in m3 m-3,
        ``r`` dimensionless).

    Returns
    -------
    pandas.DataFrame
        ``key``, ``lat``, ``lon`` (degrees) and ``variables``, one row per pixel of each map.
    """
    out = pd.concat([ds[list(variables)].to_dataframe().reset_index().assign(**{key: name})
                     for name, ds in maps.items()], ignore_index=True)
    return out[[key] + [c for c in out.columns if c != key]]


def compare_by_period(estimates: Mapping[str, xr.DataArray], reference: xr.DataArray,
                      periods: Mapping[str, slice], mask: xr.DataArray | None = None,
                      regions: xr.DataArray | None = None,
                      min_pairs: int = 30) -> tuple[pd.DataFrame, dict[tuple[str, str], xr.Dataset]]:
    """Each estimate against one reference (e.g. the twin's truth), per period and per group of pixels.

    Parameters
    ----------
    estimates : mapping name -> xarray.DataArray
        Daily soil moisture, m3 m-3, ``(time, lat, lon)``.
    reference : xarray.DataArray
        Daily soil moisture, m3 m-3, on any grid (see :func:`compare_products`).
    periods : mapping name -> slice
        Time slices (e.g. ``{'all': slice(None, None), 'pre-2000': slice(None, '1999-12-31')}``); a period in
        which an estimate has no valid value is skipped.
    mask : xarray.DataArray, optional
        Bool ``(lat, lon)``: the estimates' pixels scored (e.g. land).
    regions : xarray.DataArray, optional
        ``(lat, lon)`` labels (e.g. held-out / training pixels): rows per region besides the rows of all pixels.
    min_pairs : int
        Fewest common valid days for a pixel's metrics.

    Returns
    -------
    (pandas.DataFrame, dict)
        The table ``estimate``, ``period``, ``pixels`` (``'all'`` or the region label) and the columns of
        :func:`summary_table`; and the maps of :func:`compare_products` by ``(estimate, period)``.
    """
    rows, maps = [], {}
    for est_name, est in estimates.items():
        for pname, sl in periods.items():
            a, b = est.sel(time=sl), reference.sel(time=sl)
            a = a.where(mask) if mask is not None else a
            if a.sizes["time"] == 0 or not bool(a.notnull().any()):
                continue
            ds = compare_products(a, b, min_pairs=min_pairs).compute()
            maps[(est_name, pname)] = ds
            key = f"{est_name} vs {reference.name}"
            parts = [summary_table({key: ds}).reset_index().assign(pixels="all")]
            if regions is not None:
                parts.append(summary_table({key: ds}, regions=regions).reset_index()
                             .rename(columns={"region": "pixels"}))
            rows.append(pd.concat(parts, ignore_index=True).assign(estimate=est_name, period=pname))
    if not rows:
        raise ValueError("compare_by_period: no estimate has a valid value in any period")
    out = pd.concat(rows, ignore_index=True)
    first = ["estimate", "period", "pixels"]
    return out[first + [c for c in out.columns if c not in first + ["comparison"]]], maps
