"""What the AtLSTM's attention looks at: mean weight by lag, by group of windows, and one worked example.

For every window the AtLSTM returns ``L`` weights (non-negative, summing to 1) over the window's days. The lag of
a step is ``-offset`` days (:attr:`glass_sm.data.Samples.offsets`): 0 for the target day, positive for earlier
days, negative for later days of a centred window. Windows are grouped by soil-moisture level, season and climate
(:func:`attention_groups`); :func:`attention_by_lag` averages the weights per group and :func:`attention_summary`
reduces each row to a few numbers (weight on the target day, on the adjacent days, mean lag, effective days).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from glass_sm.data import PIXEL, Samples
from glass_sm.evaluation.aggregate import ARIDITY_LABELS, SEASONS, aridity_class, season_of
from glass_sm.evaluation.skill import DEFAULT_SM_BINS, sm_bin_index, sm_bin_labels
from glass_sm.training import predict_with_attention

__all__ = ["CLIMATE_ORDER", "find_aridity", "climate_classes", "attention_groups", "attention_by_lag",
           "attention_summary", "example_window"]

CLIMATE_ORDER = (*ARIDITY_LABELS, "dry", "intermediate", "wet", "unknown")
"""Order of the climate classes in the tables: UNEP aridity zones (twin), label terciles (real data), unknown."""


def find_aridity(truth_ds: xr.Dataset | None) -> xr.DataArray | None:
    """The static aridity-index field P/PET (dimensionless) of the twin's ``truth.nc``, if it has one.

    The first ``(lat, lon)`` variable whose name contains ``aridity``; ``None`` without one (real data).
    """
    if truth_ds is None or not isinstance(truth_ds, xr.Dataset):
        return None
    for name in truth_ds.data_vars:
        if "aridity" in str(name).lower() and set(truth_ds[name].dims) == {"lat", "lon"}:
            return truth_ds[name]
    return None


def climate_classes(samples: Samples, aridity: xr.DataArray | None = None) -> tuple[np.ndarray, str]:
    """A climate class per land pixel of ``samples``.

    With an aridity-index field (the twin's, see :func:`find_aridity`), the UNEP zones of
    :func:`glass_sm.evaluation.aggregate.aridity_class`. Otherwise (real data) the pixel's mean training label
    (m3 m-3) decides, by terciles over the pixels: ``'dry'``, ``'intermediate'``, ``'wet'`` (pixels without
    training labels use the mean ERA5-Land soil moisture mapped onto the label scale through ranks).

    Parameters
    ----------
    samples : Samples
        Supplies the pixels.
    aridity : xarray.DataArray, optional
        ``(lat, lon)`` aridity index P/PET, dimensionless.

    Returns
    -------
    (numpy.ndarray, str)
        ``(P,)`` class names (object; ``'unknown'`` where undefined) and a description of the rule used.
    """
    if aridity is not None:
        allp = np.stack([np.arange(samples.n_pixels), np.zeros(samples.n_pixels, np.int64)], 1)
        values = np.asarray(samples.values_at(aridity, allp), np.float64)
        return (np.asarray(aridity_class(values, unknown="unknown"), dtype=object),
                f"UNEP class of the twin's aridity index '{aridity.name}' (P/PET)")
    pix, lab = samples.train[:, PIXEL], samples.targets("train").astype(np.float64)
    sums = np.bincount(pix, lab, minlength=samples.n_pixels)
    cnt = np.bincount(pix, minlength=samples.n_pixels)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / cnt
    rule = "terciles of the pixel's mean training label"
    if (cnt == 0).any() and "sm_era5land" in samples.cube:
        e5 = samples.cube["sm_era5land"].mean("time").values
        e5p = e5[samples.pixels[:, 0], samples.pixels[:, 1]]
        has = cnt > 0
        order = np.argsort(e5p[has])
        mean[~has] = np.interp(e5p[~has], e5p[has][order], np.sort(mean[has])) if has.any() else e5p[~has]
        rule += " (ERA5-Land mean where a pixel has no training label)"
    q = np.nanpercentile(mean, [100 / 3, 200 / 3])
    out = np.where(mean < q[0], "dry", np.where(mean < q[1], "intermediate", "wet")).astype(object)
    out[~np.isfinite(mean)] = "unknown"
    return out, rule


def attention_groups(samples: Samples, split: str | np.ndarray = "test", truth: xr.DataArray | None = None,
                     aridity: xr.DataArray | None = None, bins: Sequence[float] = DEFAULT_SM_BINS,
                     sm_reference: str = "label") -> tuple[dict, dict]:
    """Groupings of a split's windows for :func:`attention_by_lag`: SM level, season and climate.

    Parameters
    ----------
    samples : Samples
        The samples.
    split : str or numpy.ndarray
        Split name or ``(n, 2)`` index.
    truth : xarray.DataArray, optional
        The twin's ``sm_true(time, lat, lon)``, m3 m-3 (needed for ``sm_reference='truth'``).
    aridity : xarray.DataArray, optional
        Aridity index P/PET for the climate classes (:func:`climate_classes`).
    bins : sequence of float
        SM bin edges, m3 m-3 (values outside go to the end bins).
    sm_reference : {'label', 'truth'}
        Which soil moisture of the target day sets a window's SM level.

    Returns
    -------
    (dict, dict)
        ``{'sm_level': (n,), 'season': (n,), 'climate': (n,)}`` object arrays and the orders of their classes
        (with the rule used for the climate under ``'climate_rule'``).
    """
    idx = samples.index(split)
    if sm_reference == "truth":
        if truth is None:
            raise ValueError("sm_reference='truth' needs the truth")
        sm = samples.values_at(truth, idx).astype(np.float64)
    else:
        sm = samples.targets(split).astype(np.float64) if isinstance(split, str) else samples.targets(idx)
    labels = np.asarray(sm_bin_labels(bins), dtype=object)
    sm_level = labels[sm_bin_index(sm, bins, clip=True)]
    climate_pix, rule = climate_classes(samples, aridity)
    groups = {"sm_level": sm_level, "season": season_of(samples.dates(idx)), "climate": climate_pix[idx[:, PIXEL]]}
    orders = {"sm_level": list(labels), "season": list(SEASONS), "climate": list(CLIMATE_ORDER),
              "climate_rule": rule}
    return groups, orders


def attention_by_lag(attention: np.ndarray, offsets: np.ndarray, groups: np.ndarray | None = None,
                     order: Sequence[str] | None = None, grouping: str = "all") -> pd.DataFrame:
    """Mean attention weight at each lag, overall or per group of windows.

    Parameters
    ----------
    attention : numpy.ndarray
        ``(n, L)`` weights (each row sums to 1), dimensionless.
    offsets : numpy.ndarray
        ``(L,)`` day offsets of the window steps relative to the target day (:attr:`Samples.offsets`).
    groups : numpy.ndarray, optional
        ``(n,)`` group of each window (e.g. from :func:`attention_groups`); ``None``: one group ``'all'``.
    order : sequence of str, optional
        Order of the groups in the table (those absent are skipped; others are appended sorted).
    grouping : str
        Name written in the ``grouping`` column.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``grouping``, ``group``, ``n``, ``window_effective_steps`` (mean over the group's
        windows of each window's own ``1 / sum w^2``, days: L when a window's weights are uniform, 1 when they sit
        on one day) and one column ``lag_<k>`` per lag, ascending (mean weight; the lag columns sum to 1).
    """
    att = np.asarray(attention, np.float64)
    lags = -np.asarray(offsets, np.int64)
    if att.ndim != 2 or att.shape[1] != len(lags):
        raise ValueError(f"attention must be (n, {len(lags)}), got {att.shape}")
    order_idx = np.argsort(lags)
    cols = [f"lag_{lags[j]}" for j in order_idx]
    if groups is None:
        groups = np.full(len(att), "all", dtype=object)
    groups = np.asarray(groups, dtype=object)
    present = list(pd.unique(groups))
    names = [g for g in (order or []) if g in present] + sorted(g for g in present if g not in (order or []))
    rows = []
    for g in names:
        sel = groups == g
        mean = att[sel].mean(axis=0)[order_idx]
        eff = float(np.mean(1.0 / (att[sel] ** 2).sum(axis=1)))
        rows.append({"grouping": grouping, "group": g, "n": int(sel.sum()), "window_effective_steps": eff,
                     **dict(zip(cols, mean))})
    return pd.DataFrame(rows)


def attention_summary(table: pd.DataFrame, adjacent: int = 2) -> pd.DataFrame:
    """Scalar summaries of the rows of :func:`attention_by_lag` (how local the attention is).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`attention_by_lag`.
    adjacent : int
        Last lag counted as adjacent to the target day, days.

    Returns
    -------
    pandas.DataFrame
        ``grouping``, ``group``, ``n``, ``window`` (L, days), ``uniform`` (1/L), ``w_lag0`` (weight on the target
        day), ``w_adjacent`` (weight on lags ``0..adjacent``), ``mean_lag`` (attention-weighted mean lag, days),
        ``effective_steps`` (``1 / sum w^2`` of the mean weights, days: L for uniform, 1 for a single day),
        ``argmax_lag`` (days) and ``window_effective_steps`` (per-window concentration, days).
    """
    lag_cols = [c for c in table.columns if c.startswith("lag_")]
    lags = np.array([int(c[4:]) for c in lag_cols])
    w = table[lag_cols].to_numpy(np.float64)
    L = len(lags)
    return pd.DataFrame({
        "grouping": table["grouping"], "group": table["group"], "n": table["n"], "window": L, "uniform": 1.0 / L,
        "w_lag0": w[:, lags == 0].sum(axis=1) if (lags == 0).any() else np.nan,
        "w_adjacent": w[:, (lags >= 0) & (lags <= adjacent)].sum(axis=1),
        "mean_lag": (w * lags).sum(axis=1) / w.sum(axis=1),
        "effective_steps": 1.0 / (w ** 2).sum(axis=1),
        "argmax_lag": lags[np.argmax(w, axis=1)],
        "window_effective_steps": table["window_effective_steps"] if "window_effective_steps" in table else np.nan,
    })


def example_window(samples: Samples, model, truth: xr.DataArray | None = None, split: str = "test",
                   feature: str = "sm_era5land") -> pd.DataFrame:
    """One window in physical units with the model's attention, prediction, label and truth.

    The window chosen (deterministically) is the split's window with the largest rise of ``feature`` (by default
    the ERA5-Land soil moisture, i.e. a rain event) between two consecutive days inside the window, so that the
    attention has something to react to.

    Parameters
    ----------
    samples : Samples
        Windows of the model's length.
    model : torch.nn.Module
        An attention model (:func:`glass_sm.training.predict_with_attention`).
    truth : xarray.DataArray, optional
        The twin's ``sm_true``, m3 m-3.
    split : str
        Split to choose from.
    feature : str
        Input whose day-to-day rise picks the window (the first feature when absent).

    Returns
    -------
    pandas.DataFrame
        One row per step: ``sample`` (its row in the split), ``pixel``, ``lat``, ``lon``, ``date``, ``offset``,
        ``lag`` (days), each input feature in its units, ``attention``, then ``label`` and ``truth`` of that day
        (m3 m-3; NaN where missing), ``is_target`` and, on the target row, ``prediction`` (m3 m-3).
    """
    idx = samples.index(split)
    names = samples.feature_names
    j = names.index(feature) if feature in names else 0
    x = samples.windows(idx)
    rise = np.diff(x[:, :, j], axis=1).max(axis=1) * samples.normalizer.sd[j]
    i = int(np.argmax(rise))
    xi = x[i:i + 1]
    pred, att = predict_with_attention(model, xi)
    raw = samples.normalizer.inverse(xi[0])
    p, t = idx[i]
    days = t + samples.offsets
    one = np.stack([np.full(len(days), p), days], axis=1)
    label = samples.targets(one)
    true = samples.values_at(truth, one) if truth is not None else np.full(len(days), np.nan)
    tab = pd.DataFrame({"sample": i, "pixel": p, "lat": samples.lat[p], "lon": samples.lon[p],
                        "date": samples.time[days], "offset": samples.offsets, "lag": -samples.offsets})
    for k, n in enumerate(names):
        tab[n] = raw[:, k]
    tab["attention"] = att[0]
    tab["label"], tab["truth"] = label, true
    tab["is_target"] = tab["offset"] == 0
    tab["prediction"] = np.where(tab["is_target"], float(pred[0]), np.nan)
    return tab
