"""Skill of an estimate on a test set: metrics with bootstrap intervals, per soil-moisture bin, paired differences.

The tables of stages 02-03 share one column convention: ``n`` and, for each metric ``m`` of
:data:`METRIC_NAMES`, the columns ``m``, ``m_lo``, ``m_hi`` (95 % percentile-bootstrap interval); per-bin tables
add ``bin``, ``lo``, ``hi`` (bin edges of the *reference* soil moisture, m3 m-3). A bin whose upper edge is
>= 1 m3 m-3 is labelled ``'>lo'`` (e.g. ``'>0.4'``, the paper's wettest class).

Whether model *a* is better than model *b* is a paired question: :func:`paired_difference` resamples both with the
same indices, so its interval describes the difference, not the two marginal uncertainties.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from glass_sm.evaluation import metrics as M

__all__ = ["METRIC_NAMES", "DEFAULT_SM_BINS", "evaluate", "sm_bin_labels", "sm_bin_index", "metrics_by_sm_bin",
           "paired_difference", "baseline_differences"]

METRIC_NAMES = ("r2", "r", "rmse", "ubrmse", "bias")
"""Metrics of every table, in column order (R2 and R dimensionless, the others m3 m-3)."""

DEFAULT_SM_BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 1.0)
"""Soil-moisture bin edges, m3 m-3 (``models.sm_bins``'s default)."""


def evaluate(pred, ref, n_boot: int, seed: int, ci: bool = True) -> dict:
    """:func:`glass_sm.evaluation.metrics.summary` restricted to :data:`METRIC_NAMES`.

    Parameters
    ----------
    pred, ref : array_like
        Estimate and reference soil moisture, m3 m-3, same shape (NaN pairs dropped).
    n_boot : int
        Bootstrap resamples.
    seed : int
        Bootstrap seed (the same seed gives the same resamples for every estimate of the same length: paired).
    ci : bool
        Add the 95 % intervals ``m_lo``, ``m_hi``.

    Returns
    -------
    dict
        ``n`` then ``m`` (and ``m_lo``, ``m_hi``) for each metric of :data:`METRIC_NAMES`.
    """
    s = M.summary(pred, ref, ci=ci, n_boot=n_boot, seed=seed)
    out = {"n": s["n"]}
    for m in METRIC_NAMES:
        out[m] = s[m]
        if ci:
            out[f"{m}_lo"], out[f"{m}_hi"] = s[f"{m}_lo"], s[f"{m}_hi"]
    return out


def sm_bin_labels(bins: Sequence[float]) -> list[str]:
    """Labels of the bins between consecutive edges (m3 m-3): ``'0-0.1'``, ..., ``'>0.4'`` when the upper edge >= 1."""
    labels = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        labels.append(f">{lo:g}" if hi >= 1.0 else f"{lo:g}-{hi:g}")
    return labels


def sm_bin_index(values, bins: Sequence[float], clip: bool = False) -> np.ndarray:
    """Bin of each soil-moisture value (m3 m-3): ``k`` when ``bins[k] <= value < bins[k+1]``.

    The last bin also holds ``value == bins[-1]``. Values outside the edges get ``-1`` (below) or
    ``len(bins) - 1`` (above, or NaN), i.e. no bin, unless ``clip`` puts them in the first / last bin.

    Parameters
    ----------
    values : array_like
        Soil moisture, m3 m-3.
    bins : sequence of float
        Increasing bin edges, m3 m-3.
    clip : bool
        Assign out-of-range values (and NaN) to the nearest end bin.

    Returns
    -------
    numpy.ndarray
        int64 bin numbers, same shape as ``values``.
    """
    values = np.asarray(values, np.float64)
    edges = np.asarray(bins, np.float64)
    k = np.searchsorted(edges, values, side="right") - 1
    if clip:
        return np.clip(k, 0, len(edges) - 2)
    k[values == edges[-1]] = len(edges) - 2
    return k


def metrics_by_sm_bin(pred, ref, bins: Sequence[float] = DEFAULT_SM_BINS, ci: bool = False, n_boot: int = 200,
                      seed: int = 0) -> pd.DataFrame:
    """Metrics of ``pred`` against ``ref`` within bins of the *reference* soil moisture.

    A pair falls in bin ``k`` when ``bins[k] <= ref < bins[k+1]`` (the last bin also holds ``ref == bins[-1]``);
    NaN pairs are dropped.

    Parameters
    ----------
    pred, ref : array_like
        Estimate and reference soil moisture, m3 m-3, same shape.
    bins : sequence of float
        Increasing bin edges, m3 m-3.
    ci : bool
        Add bootstrap intervals (``m_lo``, ``m_hi``).
    n_boot : int
        Bootstrap resamples.
    seed : int
        Bootstrap seed.

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``bin``, ``lo``, ``hi``, ``n``, ``r2``, ``r``, ``rmse``, ``ubrmse``, ``bias`` (NaN where a
        bin has too few pairs), plus the intervals with ``ci``.

    Raises
    ------
    ValueError
        ``bins`` are not increasing edges.
    """
    pred = np.asarray(pred, np.float64).ravel()
    ref = np.asarray(ref, np.float64).ravel()
    bins = np.asarray(bins, np.float64)
    if bins.ndim != 1 or len(bins) < 2 or np.any(np.diff(bins) <= 0):
        raise ValueError(f"bins must be increasing edges, got {bins.tolist()}")
    ok = np.isfinite(pred) & np.isfinite(ref)
    pred, ref = pred[ok], ref[ok]
    k = sm_bin_index(ref, bins)
    rows = []
    for i, label in enumerate(sm_bin_labels(bins)):
        sel = k == i
        rows.append({"bin": label, "lo": float(bins[i]), "hi": float(bins[i + 1]),
                     **evaluate(pred[sel], ref[sel], n_boot, seed, ci)})
    return pd.DataFrame(rows)


def paired_difference(pred_a, pred_b, ref, metric: str = "rmse", n_boot: int = 500, seed: int = 0,
                      alpha: float = 0.05) -> dict:
    """Difference ``metric(a) - metric(b)`` against the same reference, with a paired percentile-bootstrap CI.

    Both estimates are resampled with the *same* indices, so the interval reflects the difference, not the two
    marginal uncertainties (much narrower when the errors of a and b are correlated).

    Parameters
    ----------
    pred_a, pred_b, ref : array_like
        Two estimates and the reference, m3 m-3, same shape; a pair is dropped where any of the three is NaN.
    metric : str
        Name in :data:`glass_sm.evaluation.metrics.METRICS`.
    n_boot : int
        Resamples.
    seed : int
        Resampling seed.
    alpha : float
        Two-sided level (0.05: 95 % interval).

    Returns
    -------
    dict
        ``n``, ``delta``, ``delta_lo``, ``delta_hi`` (in the metric's unit: m3 m-3, or 1 for R and R2).
    """
    a = np.asarray(pred_a, np.float64).ravel()
    b = np.asarray(pred_b, np.float64).ravel()
    r = np.asarray(ref, np.float64).ravel()
    ok = np.isfinite(a) & np.isfinite(b) & np.isfinite(r)
    a, b, r = a[ok], b[ok], r[ok]
    n = len(r)
    if n < 3:
        return {"n": n, "delta": float("nan"), "delta_lo": float("nan"), "delta_hi": float("nan")}
    kernel = M._KERNELS[metric]
    delta = float(kernel(a, r) - kernel(b, r))
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // n)
    out = np.empty(n_boot)
    for s in range(0, n_boot, chunk):
        e = min(n_boot, s + chunk)
        idx = rng.integers(0, n, size=(e - s, n))
        out[s:e] = kernel(a[idx], r[idx]) - kernel(b[idx], r[idx])
    out = out[np.isfinite(out)]
    lo, hi = np.percentile(out, [100 * alpha / 2, 100 * (1 - alpha / 2)]) if len(out) else (np.nan, np.nan)
    return {"n": n, "delta": delta, "delta_lo": float(lo), "delta_hi": float(hi)}


def _verdict(d_rmse: dict) -> str:
    if not np.isfinite(d_rmse["delta"]):
        return "n/a"
    return "better" if d_rmse["delta_hi"] < 0 else "worse" if d_rmse["delta_lo"] > 0 else "tie"


def baseline_differences(predictions: pd.DataFrame, models: Sequence[str], baseline: str = "xgboost",
                         references: Sequence[str] = ("label", "truth"), bins: Sequence[float] = DEFAULT_SM_BINS,
                         n_boot: int = 500, seed: int = 0) -> pd.DataFrame:
    """RMSE and R2 of each model minus the baseline's, on all test windows and per reference-SM bin.

    Parameters
    ----------
    predictions : pandas.DataFrame
        One row per test window: the reference columns (``label``, ``truth``) and one column per model, m3 m-3.
    models : sequence of str
        Models to compare with the baseline.
    baseline : str
        Column of the baseline model.
    references : sequence of str
        Reference columns (those absent or all-NaN are skipped).
    bins : sequence of float
        Soil-moisture bin edges, m3 m-3.
    n_boot, seed : int
        Paired bootstrap (:func:`paired_difference`).

    Returns
    -------
    pandas.DataFrame
        ``model``, ``baseline``, ``reference``, ``bin`` (``'all'`` or a bin label), ``n``, ``d_rmse``,
        ``d_rmse_lo``, ``d_rmse_hi`` (m3 m-3; negative: the model is more accurate), ``d_r2``, ``d_r2_lo``,
        ``d_r2_hi``, ``verdict`` (``'better'``/``'worse'`` when the RMSE interval excludes 0, else ``'tie'``;
        ``'n/a'`` with too few pairs).
    """
    rows = []
    labels = ["all", *sm_bin_labels(bins)]
    for ref_name in references:
        if ref_name not in predictions or not np.isfinite(predictions[ref_name].to_numpy(float)).any():
            continue
        ref = predictions[ref_name].to_numpy(np.float64)
        k = sm_bin_index(ref, bins)
        for model in models:
            if model == baseline:
                continue
            a, b = predictions[model].to_numpy(np.float64), predictions[baseline].to_numpy(np.float64)
            for j, label in enumerate(labels):
                sel = np.ones(len(ref), bool) if j == 0 else (k == j - 1)
                d_rmse = paired_difference(a[sel], b[sel], ref[sel], "rmse", n_boot, seed)
                d_r2 = paired_difference(a[sel], b[sel], ref[sel], "r2", n_boot, seed)
                rows.append({"model": model, "baseline": baseline, "reference": ref_name, "bin": label,
                             "n": d_rmse["n"], "d_rmse": d_rmse["delta"], "d_rmse_lo": d_rmse["delta_lo"],
                             "d_rmse_hi": d_rmse["delta_hi"], "d_r2": d_r2["delta"], "d_r2_lo": d_r2["delta_lo"],
                             "d_r2_hi": d_r2["delta_hi"], "verdict": _verdict(d_rmse)})
    return pd.DataFrame(rows)
