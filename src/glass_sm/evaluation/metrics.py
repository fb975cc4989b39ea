"""Agreement metrics between an estimate and a reference (pytesmo-style small pure functions).

Every function takes two arrays of the same shape, ``estimate`` (e.g. a soil-moisture product, m3 m-3) and
``reference`` (e.g. in situ soil moisture, m3 m-3), flattens them and drops a pair when either member is NaN
(pairwise deletion). Metrics are computed in float64. With too few valid pairs a metric is NaN, never an
exception: fewer than 2 pairs for every metric, fewer than 3 pairs or a constant series for ``r``, and a
constant reference for ``r2``.

Bootstrap confidence intervals resample the valid pairs with replacement. The resampled index arrays are drawn
as ``(chunk, n)`` blocks and every metric is evaluated along the last axis of the block, so one call costs a few
array operations per chunk rather than one Python call per resample.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["bias", "bootstrap_ci", "n_valid", "r", "r2", "rmse", "summary", "ubrmse", "METRICS"]

_CHUNK_ELEMENTS = 2_000_000  # resampled values held at once per array during the bootstrap


def _valid_pairs(estimate, reference) -> tuple[np.ndarray, np.ndarray]:
    """Flatten both arrays to float64 and drop pairs where either is NaN; raise if the shapes differ."""
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if est.shape != ref.shape:
        raise ValueError(f"estimate and reference must have the same shape, got {est.shape} and {ref.shape}")
    est, ref = est.ravel(), ref.ravel()
    keep = ~(np.isnan(est) | np.isnan(ref))
    return est[keep], ref[keep]


# Kernels: metric along the last axis of already-cleaned (..., n) arrays; used directly by the bootstrap.


def _bias_kernel(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.mean(est - ref, axis=-1)


def _rmse_kernel(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean((est - ref) ** 2, axis=-1))


def _ubrmse_kernel(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    diff = est - ref
    centred = diff - diff.mean(axis=-1, keepdims=True)
    return np.sqrt(np.mean(centred**2, axis=-1))


def _r_kernel(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    est_c = est - est.mean(axis=-1, keepdims=True)
    ref_c = ref - ref.mean(axis=-1, keepdims=True)
    constant = (np.ptp(est, axis=-1) == 0) | (np.ptp(ref, axis=-1) == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.sum(est_c * ref_c, axis=-1) / np.sqrt(np.sum(est_c**2, axis=-1) * np.sum(ref_c**2, axis=-1))
    return np.where(constant, np.nan, np.clip(value, -1.0, 1.0))


def _r2_kernel(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    sse = np.sum((est - ref) ** 2, axis=-1)
    sst = np.sum((ref - ref.mean(axis=-1, keepdims=True)) ** 2, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 1.0 - sse / sst
    return np.where(np.ptp(ref, axis=-1) == 0, np.nan, value)


_MIN_PAIRS = {"r": 3, "r2": 2, "bias": 2, "rmse": 2, "ubrmse": 2}
_KERNELS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "r": _r_kernel,
    "r2": _r2_kernel,
    "bias": _bias_kernel,
    "rmse": _rmse_kernel,
    "ubrmse": _ubrmse_kernel,
}


def _kernels_shared(names, est: np.ndarray, ref: np.ndarray) -> dict[str, np.ndarray]:
    """The kernels of ``names`` along the last axis, each intermediate array computed once for all of them.

    Every value comes from the same numpy operations on the same arrays as its own kernel in :data:`_KERNELS`
    (the difference, its square and mean, the centred reference, the ranges), so it is that kernel's value bit
    for bit; the bootstrap evaluates all five metrics on each block of resamples and would otherwise compute
    the difference four times and the other shared terms twice. (A mean is numpy's sum divided by the count, so
    a sum and the mean of the same array share the sum.)
    """
    names, out = set(names), {}
    n = est.shape[-1]
    if names & {"bias", "rmse", "ubrmse", "r2"}:
        diff = est - ref
    if names & {"bias", "ubrmse"}:
        diff_mean = diff.mean(axis=-1, keepdims=True)
        if "bias" in names:
            out["bias"] = diff_mean[..., 0]
        if "ubrmse" in names:
            out["ubrmse"] = np.sqrt(np.mean((diff - diff_mean) ** 2, axis=-1))
    if names & {"rmse", "r2"}:
        sse = np.sum(diff**2, axis=-1)
        if "rmse" in names:
            out["rmse"] = np.sqrt(sse / n)
    if names & {"r", "r2"}:
        ref_c = ref - ref.mean(axis=-1, keepdims=True)
        sst = np.sum(ref_c**2, axis=-1)
        ref_flat = np.ptp(ref, axis=-1) == 0
    if "r2" in names:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = 1.0 - sse / sst
        out["r2"] = np.where(ref_flat, np.nan, value)
    if "r" in names:
        est_c = est - est.mean(axis=-1, keepdims=True)
        constant = (np.ptp(est, axis=-1) == 0) | ref_flat
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.sum(est_c * ref_c, axis=-1) / np.sqrt(np.sum(est_c**2, axis=-1) * sst)
        out["r"] = np.where(constant, np.nan, np.clip(value, -1.0, 1.0))
    return out


def _metric(name: str, estimate, reference) -> float:
    est, ref = _valid_pairs(estimate, reference)
    if est.size < _MIN_PAIRS[name]:
        return float("nan")
    return float(_KERNELS[name](est, ref))


def n_valid(estimate, reference) -> int:
    """Number of pairs where neither the estimate nor the reference is NaN.

    Parameters
    ----------
    estimate, reference : array_like
        Same-shaped arrays, e.g. soil moisture in m3 m-3.

    Returns
    -------
    int
        Count of valid pairs.
    """
    return int(_valid_pairs(estimate, reference)[0].size)


def bias(estimate, reference) -> float:
    """Mean difference, in the unit of the inputs (m3 m-3 for soil moisture).

    .. math:: \\mathrm{bias} = \\frac{1}{n} \\sum_i (e_i - r_i)

    Parameters
    ----------
    estimate, reference : array_like
        Same-shaped arrays, e.g. soil moisture in m3 m-3; NaN pairs are dropped.

    Returns
    -------
    float
        Positive when the estimate is too wet; NaN with fewer than 2 valid pairs.
    """
    return _metric("bias", estimate, reference)


def rmse(estimate, reference) -> float:
    """Root-mean-square difference, in the unit of the inputs (m3 m-3 for soil moisture).

    .. math:: \\mathrm{RMSE} = \\sqrt{\\frac{1}{n} \\sum_i (e_i - r_i)^2}

    Parameters
    ----------
    estimate, reference : array_like
        Same-shaped arrays, e.g. soil moisture in m3 m-3; NaN pairs are dropped.

    Returns
    -------
    float
        NaN with fewer than 2 valid pairs.
    """
    return _metric("rmse", estimate, reference)


def ubrmse(estimate, reference) -> float:
    """Unbiased RMSE: the RMSE left after removing the mean bias (m3 m-3 for soil moisture).

    .. math::
        \\mathrm{ubRMSE} = \\sqrt{\\mathrm{RMSE}^2 - \\mathrm{bias}^2}
                         = \\sqrt{\\frac{1}{n} \\sum_i \\left[(e_i - r_i) - \\mathrm{bias}\\right]^2}

    The second (centred) form is the one evaluated: it is algebraically identical, never negative and does not
    lose precision through cancellation when the bias is large relative to the ubRMSE.

    Parameters
    ----------
    estimate, reference : array_like
        Same-shaped arrays, e.g. soil moisture in m3 m-3; NaN pairs are dropped.

    Returns
    -------
    float
        ``0 <= ubrmse <= rmse``; invariant to adding a constant to either input; NaN with fewer than 2 pairs.
    """
    return _metric("ubrmse", estimate, reference)


def r(estimate, reference) -> float:
    """Pearson correlation coefficient (dimensionless), clipped to [-1, 1].

    .. math::
        r = \\frac{\\sum_i (e_i - \\bar e)(r_i - \\bar r)}
                  {\\sqrt{\\sum_i (e_i - \\bar e)^2 \\sum_i (r_i - \\bar r)^2}}

    Parameters
    ----------
    estimate, reference : array_like
        Same-shaped arrays, e.g. soil moisture in m3 m-3; NaN pairs are dropped.

    Returns
    -------
    float
        NaN with fewer than 3 valid pairs or when either series is constant.
    """
    return _metric("r", estimate, reference)


def r2(estimate, reference) -> float:
    """Coefficient of determination of the estimate against the reference (dimensionless).

    .. math::
        R^2 = 1 - \\frac{\\mathrm{SSE}}{\\mathrm{SST}}
            = 1 - \\frac{\\sum_i (e_i - r_i)^2}{\\sum_i (r_i - \\bar r)^2}

    Unlike :math:`r^2` it penalises bias and scale errors and can be negative (an estimate worse than the
    reference mean).

    Parameters
    ----------
    estimate, reference : array_like
        Same-shaped arrays, e.g. soil moisture in m3 m-3; NaN pairs are dropped.

    Returns
    -------
    float
        ``<= 1``; NaN with fewer than 2 valid pairs or a constant reference.
    """
    return _metric("r2", estimate, reference)


METRICS: dict[str, Callable[..., float]] = {"r": r, "r2": r2, "bias": bias, "rmse": rmse, "ubrmse": ubrmse}
"""The metrics of :func:`summary`, by name."""


def _metric_name(metric: str | Callable) -> str:
    for name, func in METRICS.items():
        if metric == name or metric is func:
            return name
    raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")


def _bootstrap_samples(
    names: list[str], est: np.ndarray, ref: np.ndarray, n_boot: int, seed: int
) -> dict[str, np.ndarray]:
    """Each metric of ``names`` on ``n_boot`` resamples (with replacement) of the valid pairs.

    All metrics share the same resamples; indices are drawn as ``(chunk, n)`` arrays.
    """
    rng = np.random.default_rng(seed)
    n = est.size
    chunk = max(1, _CHUNK_ELEMENTS // n)
    out = {name: np.empty(n_boot) for name in names}
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        idx = rng.integers(0, n, size=(stop - start, n))
        for name, values in _kernels_shared(names, est[idx], ref[idx]).items():
            out[name][start:stop] = values
    return out


def _percentile_interval(samples: np.ndarray, alpha: float) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(finite, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def bootstrap_ci(
    metric: str | Callable,
    estimate,
    reference,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a metric.

    The valid pairs are resampled with replacement ``n_boot`` times; the interval is the
    ``[100 alpha/2, 100 (1 - alpha/2)]`` percentiles of the metric over the resamples (resamples on which the
    metric is undefined, e.g. a constant resample for ``r``, are left out).

    Parameters
    ----------
    metric : str or callable
        A name or function of :data:`METRICS` (``'r'``, ``'r2'``, ``'bias'``, ``'rmse'``, ``'ubrmse'``).
    estimate, reference : array_like
        Same-shaped arrays, e.g. soil moisture in m3 m-3; NaN pairs are dropped.
    n_boot : int
        Number of resamples.
    alpha : float
        Two-sided significance level, dimensionless in (0, 1); 0.05 gives a 95 % interval.
    seed : int
        Seed of the resampling; the same seed gives the same resamples whatever the metric.

    Returns
    -------
    (float, float)
        Lower and upper bound, in the unit of the metric; ``(nan, nan)`` when the metric is undefined.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    name = _metric_name(metric)
    est, ref = _valid_pairs(estimate, reference)
    if est.size < _MIN_PAIRS[name]:
        return float("nan"), float("nan")
    return _percentile_interval(_bootstrap_samples([name], est, ref, n_boot, seed)[name], alpha)


def summary(
    estimate,
    reference,
    ci: bool = True,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, float]:
    """All metrics of :data:`METRICS` with their bootstrap confidence intervals, for one table row.

    Parameters
    ----------
    estimate, reference : array_like
        Same-shaped arrays, e.g. soil moisture in m3 m-3; NaN pairs are dropped.
    ci : bool
        Add ``<metric>_lo`` and ``<metric>_hi`` (see :func:`bootstrap_ci`; all metrics share the resamples).
    n_boot : int
        Number of bootstrap resamples.
    alpha : float
        Two-sided significance level of the intervals, dimensionless.
    seed : int
        Seed of the resampling.

    Returns
    -------
    dict
        ``n`` (int), ``r``, ``r2``, ``bias``, ``rmse``, ``ubrmse`` and, with ``ci``, ``r_lo``, ``r_hi``, ...;
        bias, rmse and ubrmse in the unit of the inputs (m3 m-3).
    """
    est, ref = _valid_pairs(estimate, reference)
    out: dict[str, float] = {"n": int(est.size)}
    for name in METRICS:
        out[name] = float(_KERNELS[name](est, ref)) if est.size >= _MIN_PAIRS[name] else float("nan")
    if ci:
        names = [name for name in METRICS if est.size >= _MIN_PAIRS[name]]
        samples = _bootstrap_samples(names, est, ref, n_boot, seed) if names else {}
        for name in METRICS:
            lo, hi = _percentile_interval(samples[name], alpha) if name in samples else (float("nan"),) * 2
            out[f"{name}_lo"], out[f"{name}_hi"] = lo, hi
    return out
