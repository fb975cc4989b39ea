"""Triple collocation: the error of three estimates of the same soil moisture, without a reference.

:func:`triple_collocation` gives the error variances of three collocated series with mutually independent errors
(Stoffelen 1998; McColl et al. 2014); :func:`tc_at_stations` applies it at every ISMN sensor to (product,
reference product, in situ). Where the truth is known (the synthetic twin), :func:`true_error_sd` gives the error
each data set really has in the same error model, and :func:`tc_table` sets the two side by side, on raw values and
on deseasonalized anomalies.

Units: soil moisture and error standard deviations in m3 m-3, error variances in (m3 m-3)^2, rho^2
dimensionless, SNR in dB.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from glass_sm.evaluation.breaks import anomalies as _anomalies, daily_series
from glass_sm.evaluation.insitu import collocate_at_stations, extract_at_stations, load_stations, station_problem

__all__ = ["triple_collocation", "tc_at_stations", "true_error_sd", "tc_table"]

_KEYS = ("err_var", "err_sd", "rho2", "snr_db")


def _deseasonalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Each column's day-of-year anomalies (:func:`glass_sm.evaluation.breaks.anomalies`); empty columns kept."""
    return frame.apply(lambda col: _anomalies(col) if col.notna().any() else col)


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
    if n < max(min_n, 3):
        out.update({f"{k}_{nm}": np.nan for nm in names for k in _KEYS})
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

    Each product is read at its own nearest pixel of the station
    (:func:`glass_sm.evaluation.insitu.locate_stations`), the three daily
    series are joined on the days all three have, and :func:`triple_collocation` gives each one's error
    variance in its own units. Typical use: ``tc_at_stations(glass_avhrr, era5land, archive)`` shows whether the
    station or the products carry the larger random error.

    Parameters
    ----------
    product, reference : xarray.DataArray
        Daily soil moisture, m3 m-3 (any grids; see :func:`glass_sm.evaluation.insitu.standardize_product`).
    ismn_path, depth, start, end, stations, progress, read_kwargs
        As in :func:`glass_sm.evaluation.insitu.validate_against_ismn`.
    min_n : int
        Fewest complete triplets (days) for a sensor to be scored.
    anomalies : bool
        Apply triple collocation to deseasonalized anomalies (:func:`glass_sm.evaluation.breaks.anomalies` of each
        series) instead of raw values, so that errors in the seasonal cycle, often shared by products, do not
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
    table, daily = load_stations(ismn_path, stations, depth, start, end, progress, read_kwargs)
    lat, lon = table["lat"].to_numpy(), table["lon"].to_numpy()
    pv, pw = extract_at_stations(product, lat, lon, start, end)
    rv, rw = extract_at_stations(reference, lat, lon, start, end)
    pdays, rdays = pd.DatetimeIndex(pv["time"].values), pd.DatetimeIndex(rv["time"].values)
    pv, rv = pv.to_numpy(), rv.to_numpy()
    rows = []
    for k in tqdm(range(len(table)), desc="triple collocation", disable=not progress):
        meta = table.iloc[k].to_dict()
        row = {key: meta.get(key, np.nan) for key in
               ("sensor_id", "network", "station", "sensor", "lat", "lon", "depth_from", "depth_to")}
        series = daily.get(meta["sensor_id"])
        clipped = daily_series(series, start, end).dropna()
        status = station_problem(meta.get("note"), series, clipped)
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
            frame = _deseasonalize(frame)
        frame = frame.dropna()
        if len(frame) < min_n:
            rows.append({**row, "n": len(frame), "status": f"too few days (n={len(frame)})"})
            continue
        res = triple_collocation(frame["p"], frame["r"], frame["s"], names=names)
        rows.append({**row, **res, "status": "ok"})
    cols = (["sensor_id", "network", "station", "sensor", "lat", "lon", "depth_from", "depth_to", "n"]
            + [f"{k}_{nm}" for nm in names for k in _KEYS] + ["status"])
    out = pd.DataFrame(rows).reindex(columns=cols)
    out["n"] = out["n"].astype(int)
    out.attrs.update(product=str(product.name), reference=str(reference.name), anomalies=anomalies, min_n=min_n)
    return out


def true_error_sd(frame: pd.DataFrame, truth: str, columns: Sequence[str], min_n: int = 3) -> dict:
    """Error standard deviation of each column against the truth, in the triple-collocation error model.

    Triple collocation assumes :math:`x = \\alpha_x + \\beta_x \\theta + \\varepsilon_x`; with the truth
    :math:`\\theta` known, :math:`\\sigma_{\\varepsilon_x}` is the residual standard deviation of the
    least-squares fit of x on :math:`\\theta`, and :math:`\\rho^2_x` its squared correlation with the truth:

    .. math:: \\sigma_{\\varepsilon_x}^2 = \\mathrm{var}(x) (1 - \\rho^2_{x\\theta}), \\qquad
              \\rho_{x\\theta} = \\operatorname{corr}(x, \\theta)

    (sample moments with ``ddof=1``, as in :func:`triple_collocation`).

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


def tc_table(product: xr.DataArray, reference: xr.DataArray, stations, truth: xr.DataArray | None = None,
             names: Sequence[str] = ("product", "reference", "insitu"), min_n: int = 100, start=None,
             end=None) -> pd.DataFrame:
    """:func:`tc_at_stations` on raw values and on anomalies, with the true errors beside it where known.

    Parameters
    ----------
    product, reference : xarray.DataArray
        Daily soil moisture, m3 m-3 (any grids).
    stations : (pandas.DataFrame, dict)
        ``(table, daily)`` of :func:`glass_sm.io.ismn.read_ismn`.
    truth : xarray.DataArray, optional
        The true soil moisture (m3 m-3; the twin's): each data set's :func:`true_error_sd` against it at the
        sensor's pixel, on the same days (and, for the anomaly rows, on the anomalies).
    names : (str, str, str)
        Labels of the product, the reference and the station in the column names.
    min_n : int
        Fewest common days for a sensor to be scored (both methods).
    start, end : date-like, optional
        Inclusive period.

    Returns
    -------
    pandas.DataFrame
        ``anomalies`` (bool) and the columns of :func:`tc_at_stations`, then ``n_truth_check`` (days) and per name
        ``true_err_sd_<name>`` (m3 m-3), ``true_rho2_<name>`` (NaN without ``truth``); raw rows first.
    """
    names = list(names)
    truth_cols = ["n_truth_check"] + [f"true_{k}_{nm}" for nm in names for k in ("err_sd", "rho2")]
    colloc = None
    if truth is not None:
        colloc = collocate_at_stations({names[0]: product, names[1]: reference, "truth": truth}, stations, start,
                                       end, insitu=names[2])
    parts = []
    for anom in (False, True):
        tc = tc_at_stations(product, reference, stations=stations, min_n=min_n, anomalies=anom, names=names,
                            start=start, end=end, progress=False)
        tc.insert(0, "anomalies", anom)
        if colloc is None:
            parts.append(tc.assign(**{c: np.nan for c in truth_cols}))
            continue
        checks = []
        for sid in tc["sensor_id"]:
            f = _deseasonalize(colloc[sid]) if anom else colloc[sid]
            chk = true_error_sd(f, "truth", names, min_n=min_n)
            checks.append({"sensor_id": sid, "n_truth_check": chk.pop("n"), **chk})
        parts.append(tc.merge(pd.DataFrame(checks), on="sensor_id", how="left"))
    return pd.concat(parts, ignore_index=True)
