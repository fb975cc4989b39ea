"""Stages 02-03: the model comparison, split strategies, sequence length, attention analysis, feature importance
and the production AtLSTM.

The notebooks ``02_model_comparison`` and ``03_atlstm_training`` are narrative plus calls into this module; the
functions here train, evaluate and tabulate, and the ``plot_*`` functions draw the figures from the tables and
predictions they return.

Protocol (every choice is a parameter of ``params/<run>.yaml``, see :mod:`glass_sm.config`)
-------------------------------------------------------------------------------------------
* **Identical samples.** Every model of a comparison is trained on the same :class:`~glass_sm.data.samples.Samples`
  (same training, validation and test windows, same normalization). The torch models use the shared loop
  :func:`glass_sm.training.train_torch_model` (AdamW, ``training.*``, early stopping on the validation MSE with
  the best epoch's weights restored); XGBoost is fitted on the same windows flattened to ``L * F`` columns with
  early stopping on the validation RMSE (``models.xgb_*``).
* **Seeds.** Every model is initialised and trained with ``run.seed``; the bootstrap of the confidence intervals
  uses ``run.seed`` too, so the intervals of two models on the same test set come from the *same* resamples
  (paired). Same parameters, cube and seed on the same CPU and thread count give identical metric tables.
  Timings (train seconds, windows per second) vary from run to run and are kept in separate tables.
* **Metrics** (:func:`glass_sm.evaluation.metrics.summary`): R2, R, RMSE, ubRMSE, bias (m3 m-3 except R2 and R), with
  95 % percentile-bootstrap intervals (``training.n_boot`` resamples), on the test windows, against the
  GLASS-MODIS-like label and, on the synthetic twin, against the hidden truth ``sm_true``.
* **Threads.** ``training.torch_threads`` (0: torch's default) is applied by :func:`set_torch_threads`; with
  other jobs on a 2-core machine a single thread is often faster than two (spin-waiting OpenMP threads).

Tables (column conventions)
---------------------------
``model``, ``reference`` (``'label'`` or ``'truth'``), ``split``, ``window``, ``n`` and for each metric ``m``
the columns ``m``, ``m_lo``, ``m_hi``; per-bin tables add ``bin``, ``lo``, ``hi`` (bin edges, m3 m-3, of the
*reference* value).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr

from glass_sm.evaluation import metrics as M
from glass_sm.models import build_model, count_flops
from glass_sm.models.xgb import XGBoostRegressor
from glass_sm.paths import RunPaths
from glass_sm.data.samples import DAY, PIXEL, Samples, WindowBatches, build_samples
from glass_sm.training import (
    TrainingResult,
    measure_inference_rate,
    predict,
    predict_with_attention,
    save_checkpoint,
    set_seed,
    train_torch_model,
)

__all__ = [
    "METRIC_NAMES",
    "SEASONS",
    "ARIDITY_CLASSES",
    "FitResult",
    "ComparisonResult",
    "SplitStrategyResult",
    "SequenceLengthResult",
    "set_torch_threads",
    "model_hparams",
    "fit_model",
    "predict_split",
    "evaluate",
    "metrics_by_sm_bin",
    "sm_bin_labels",
    "paired_difference",
    "baseline_differences",
    "compare_models",
    "input_baseline",
    "run_split_strategies",
    "sequence_length_experiment",
    "season_of",
    "aridity_class",
    "climate_classes",
    "attention_groups",
    "attention_by_lag",
    "attention_summary",
    "permutation_importance",
    "example_window",
    "train_final_atlstm",
    "model_card",
    "model_card_sections",
    "plot_density_scatter",
    "plot_metrics_by_bin",
    "plot_sequence_length",
    "plot_attention_by_lag",
    "plot_example_window",
    "plot_feature_importance",
    "plot_split_strategies",
    "sample_counts",
]

log = logging.getLogger(__name__)

METRIC_NAMES = ("r2", "r", "rmse", "ubrmse", "bias")
"""Metrics of every table, in column order (R2 and R dimensionless, the others m3 m-3)."""

SEASONS = ("DJF", "MAM", "JJA", "SON")
"""Meteorological seasons (northern-hemisphere naming), by the target day's month."""

ARIDITY_CLASSES = ((0.05, "hyper-arid"), (0.20, "arid"), (0.50, "semi-arid"), (0.65, "dry sub-humid"),
                   (math.inf, "humid"))
"""UNEP (1992) aridity-index classes: upper bound of P/PET (exclusive) and name."""

_TORCH_MODELS = ("lstm", "bilstm", "atlstm", "transformer")


# ----------------------------------------------------------------------------------------------------------
# Models from the parameters
# ----------------------------------------------------------------------------------------------------------
def set_torch_threads(cfg) -> int:
    """Apply ``training.torch_threads`` (0 leaves torch's default); returns the threads torch now uses."""
    n = int(cfg.training.torch_threads)
    if n > 0:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def model_hparams(name: str, cfg, seed: int | None = None) -> dict:
    """Hyperparameters of a registry model from ``cfg.models`` (the keys its class declares).

    Parameters
    ----------
    name : str
        Registry key (``'lstm'``, ``'bilstm'``, ``'atlstm'``, ``'transformer'``, ``'xgboost'``).
    cfg : glass_sm.config.Config
        Uses ``cfg.models`` (and ``run.seed`` for XGBoost's subsampling unless ``seed`` is given).
    seed : int, optional
        XGBoost's seed.

    Returns
    -------
    dict
        Keyword arguments of :func:`glass_sm.models.build_model`.
    """
    m = cfg.models
    if name in ("lstm", "bilstm", "atlstm"):
        return {"hidden_size": m.hidden_size, "num_layers": m.num_layers, "dropout": m.dropout}
    if name == "transformer":
        return {"d_model": m.d_model, "n_heads": m.n_heads, "num_layers": m.num_layers, "dropout": m.dropout}
    if name == "xgboost":
        return {"n_estimators": m.xgb_n_estimators, "max_depth": m.xgb_max_depth,
                "learning_rate": m.xgb_learning_rate, "early_stopping_rounds": m.xgb_early_stopping_rounds,
                "n_jobs": m.xgb_n_jobs, "seed": int(cfg.run.seed if seed is None else seed)}
    raise ValueError(f"unknown model {name!r}; valid: lstm, bilstm, atlstm, transformer, xgboost")


@dataclass
class FitResult:
    """A trained model and how its training went.

    Attributes
    ----------
    name : str
        Registry key.
    model : torch.nn.Module or XGBoostRegressor
        The trained model (torch models in eval mode, best epoch's weights).
    hparams : dict
        Its hyperparameters.
    train_seconds : float
        Wall time of the training, s (varies between runs).
    epochs_run : int
        Epochs (torch) or boosting rounds (XGBoost) run.
    best_epoch : int
        Epoch (1-based) or boosting round (1-based) whose weights are kept.
    history : pandas.DataFrame
        Per epoch ``epoch, train_loss, val_loss, seconds`` (torch) or per round ``iteration, val_rmse`` (XGBoost).
    n_parameters : int
        Trainable parameters (torch) or tree nodes (XGBoost, best rounds).
    flops : float
        Analytic forward FLOPs per window (torch; NaN for XGBoost).
    """

    name: str
    model: object
    hparams: dict
    train_seconds: float
    epochs_run: int
    best_epoch: int
    history: pd.DataFrame
    n_parameters: int
    flops: float


def _xgb_nodes(model: XGBoostRegressor) -> int:
    trees = model.booster.get_dump()[: model.best_iteration + 1]
    return int(sum(t.count("\n") for t in trees))


def _init_output_bias(model: torch.nn.Module, value: float) -> None:
    """Set the bias of the model's last ``Linear(., 1)`` layer (its output) to ``value`` (m3 m-3).

    The networks predict soil moisture in m3 m-3 directly; starting the output at the mean label instead of
    about 0 saves the first epochs from merely learning the mean (matters under a small CPU budget).
    """
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 1]
    if last and last[-1].bias is not None:
        with torch.no_grad():
            last[-1].bias.fill_(value)


def fit_model(name: str, samples: Samples, cfg, *, seed: int | None = None, epochs: int | None = None,
              progress: bool = True) -> FitResult:
    """Train one registry model on ``samples`` (training split; validation split for early stopping).

    Parameters
    ----------
    name : str
        Registry key.
    samples : Samples
        From :func:`glass_sm.data.samples.build_samples` (or ``with_window``).
    cfg : glass_sm.config.Config
        ``models.*`` (hyperparameters) and ``training.*`` (epochs, batch size, lr, weight decay, patience,
        ``max_batches_per_epoch``, ``eval_batch_size``).
    seed : int, optional
        Initialisation, shuffling and dropout seed (default ``run.seed``).
    epochs : int, optional
        Maximum epochs (default ``training.epochs``).
    progress : bool
        Show the training loop's progress bar.

    Returns
    -------
    FitResult
    """
    seed = int(cfg.run.seed if seed is None else seed)
    tc = cfg.training
    hp = model_hparams(name, cfg, seed)
    F, L = samples.n_features, samples.window
    if name == "xgboost":
        model = build_model(name, F, L, **hp)
        x, y = samples.xy("train")
        xv, yv = samples.xy("val")
        model.fit(x, y, xv if len(yv) else None, yv if len(yv) else None)
        del x, xv
        history = model.history
        return FitResult(name, model, hp, float(model.train_seconds), model.n_rounds, model.best_iteration + 1,
                         history, _xgb_nodes(model), float("nan"))
    set_seed(seed)
    model = build_model(name, F, L, **hp)
    if tc.init_output_bias:
        _init_output_bias(model, float(np.mean(samples.targets("train"))))
    train = samples.batches("train", tc.batch_size, shuffle=True, seed=seed)
    val = samples.batches("val", tc.eval_batch_size, shuffle=False) if len(samples.val) else None
    result: TrainingResult = train_torch_model(
        model, train, val, epochs=int(epochs or tc.epochs), lr=tc.lr, weight_decay=tc.weight_decay,
        patience=tc.patience, batch_size=tc.batch_size, seed=seed, progress=progress,
        max_batches_per_epoch=tc.max_batches_per_epoch)
    n_par = int(sum(p.numel() for p in model.parameters()))
    return FitResult(name, model, hp, result.train_seconds, len(result.history), result.best_epoch,
                     result.history, n_par, float(count_flops(model, L, F)))


def predict_split(model, samples: Samples, split: str | np.ndarray = "test", batch_size: int = 4096) -> np.ndarray:
    """Predictions (m3 m-3, float32) of a torch or XGBoost model for a split's windows, batch by batch."""
    batches = samples.batches(split, batch_size, shuffle=False) if isinstance(split, str) else None
    if batches is None:
        idx = samples.index(split)
        batches = WindowBatches(samples.arrays(), idx, None, samples.window, samples.window_mode, batch_size,
                                shuffle=False)
    return predict(model, batches, batch_size)


def _rate_windows(samples: Samples, n: int) -> np.ndarray:
    """Up to ``n`` test windows, evenly spaced over the (pixel, day)-sorted test set."""
    test = samples.test
    if len(test) > n:
        test = test[np.linspace(0, len(test) - 1, n).astype(np.int64)]
    return samples.windows(test)


# ----------------------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------------------
def _truth_da(truth) -> xr.DataArray | None:
    if truth is None:
        return None
    if isinstance(truth, (str, os.PathLike)):
        truth = xr.open_dataset(truth)
    if isinstance(truth, xr.Dataset):
        if "sm_true" not in truth:
            raise KeyError(f"truth dataset has no 'sm_true' (found {sorted(map(str, truth.data_vars))})")
        truth = truth["sm_true"]
    return truth


def evaluate(pred: np.ndarray, ref: np.ndarray, n_boot: int, seed: int, ci: bool = True) -> dict:
    """:func:`glass_sm.evaluation.metrics.summary` restricted to :data:`METRIC_NAMES` (``n`` and ``_lo``/``_hi`` kept)."""
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


def metrics_by_sm_bin(pred, ref, bins: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 1.0), ci: bool = False,
                      n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """Metrics of ``pred`` against ``ref`` within bins of the *reference* soil moisture.

    A pair falls in bin ``k`` when ``bins[k] <= ref < bins[k+1]`` (the last bin also holds ``ref == bins[-1]``);
    a bin whose upper edge is >= 1 m3 m-3 is labelled ``'>lo'`` (e.g. ``'>0.4'``, the paper's wettest class).
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
    """
    pred = np.asarray(pred, np.float64).ravel()
    ref = np.asarray(ref, np.float64).ravel()
    bins = np.asarray(bins, np.float64)
    if bins.ndim != 1 or len(bins) < 2 or np.any(np.diff(bins) <= 0):
        raise ValueError(f"bins must be increasing edges, got {bins.tolist()}")
    ok = np.isfinite(pred) & np.isfinite(ref)
    pred, ref = pred[ok], ref[ok]
    k = np.searchsorted(bins, ref, side="right") - 1
    k[ref == bins[-1]] = len(bins) - 2
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
        ``n``, ``delta``, ``delta_lo``, ``delta_hi`` (in the metric's unit).
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


def baseline_differences(predictions: pd.DataFrame, models: Sequence[str], baseline: str = "xgboost",
                         references: Sequence[str] = ("label", "truth"),
                         bins: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 1.0), n_boot: int = 500,
                         seed: int = 0) -> pd.DataFrame:
    """RMSE and R2 of each model minus the baseline's, on all test windows and per reference-SM bin.

    Parameters
    ----------
    predictions : pandas.DataFrame
        :attr:`ComparisonResult.predictions` (columns ``label``, ``truth``, one per model).
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
        ``d_r2_hi``, ``verdict`` (``'better'``/``'worse'`` when the RMSE interval excludes 0, else ``'tie'``).
    """
    rows = []
    labels = ["all", *sm_bin_labels(bins)]
    for ref_name in references:
        if ref_name not in predictions or not np.isfinite(predictions[ref_name].to_numpy(float)).any():
            continue
        ref = predictions[ref_name].to_numpy(np.float64)
        k = np.searchsorted(np.asarray(bins), ref, side="right") - 1
        k[ref == bins[-1]] = len(bins) - 2
        for model in models:
            if model == baseline:
                continue
            a, b = predictions[model].to_numpy(np.float64), predictions[baseline].to_numpy(np.float64)
            for j, label in enumerate(labels):
                sel = np.ones(len(ref), bool) if j == 0 else (k == j - 1)
                d_rmse = paired_difference(a[sel], b[sel], ref[sel], "rmse", n_boot, seed)
                d_r2 = paired_difference(a[sel], b[sel], ref[sel], "r2", n_boot, seed)
                verdict = ("better" if d_rmse["delta_hi"] < 0 else "worse" if d_rmse["delta_lo"] > 0 else "tie")
                if not np.isfinite(d_rmse["delta"]):
                    verdict = "n/a"
                rows.append({"model": model, "baseline": baseline, "reference": ref_name, "bin": label,
                             "n": d_rmse["n"], "d_rmse": d_rmse["delta"], "d_rmse_lo": d_rmse["delta_lo"],
                             "d_rmse_hi": d_rmse["delta_hi"], "d_r2": d_r2["delta"], "d_r2_lo": d_r2["delta_lo"],
                             "d_r2_hi": d_r2["delta_hi"], "verdict": verdict})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------
# Stage 02: model comparison and split strategies
# ----------------------------------------------------------------------------------------------------------
@dataclass
class ComparisonResult:
    """Outcome of :func:`compare_models` on one set of samples.

    Attributes
    ----------
    metrics : pandas.DataFrame
        Test metrics with 95 % CIs: ``split, window, model, reference, n, r2, r2_lo, r2_hi, r, ..., bias_hi``.
        Deterministic (same params, cube, seed, CPU and threads -> identical table).
    timing : pandas.DataFrame
        ``split, model, n_train, n_parameters, flops_per_window, epochs_run, best_epoch, train_seconds,
        train_windows_per_s, inference_windows_per_s, threads``; the seconds and rates vary between runs.
        For XGBoost ``epochs_run``/``best_epoch`` are boosting rounds, ``n_parameters`` counts tree nodes and
        ``train_windows_per_s`` is NaN (torch: training windows presented per second).
    by_bin : pandas.DataFrame
        Metrics per reference-SM bin (:func:`metrics_by_sm_bin`, with CIs): ``split, model, reference, bin, lo,
        hi, n, ...``.
    predictions : pandas.DataFrame
        One row per test window: ``pixel, day, date, lat, lon, label, truth`` (NaN without a truth) and one
        column per model (m3 m-3).
    fits : dict
        :class:`FitResult` per model.
    split : str
        The samples' split strategy.
    window : int
        The samples' window length, days.
    samples : dict
        :func:`sample_counts` of the samples (windows and pixels per split, test period).
    """

    metrics: pd.DataFrame
    timing: pd.DataFrame
    by_bin: pd.DataFrame
    predictions: pd.DataFrame
    fits: dict
    split: str
    window: int
    samples: dict = field(default_factory=dict)

    @property
    def models(self) -> dict:
        """The trained models by name."""
        return {k: f.model for k, f in self.fits.items()}

    def save_models(self, folder: str | os.PathLike, prefix: str = "compare") -> list[Path]:
        """Write each model to ``<folder>/<prefix>_<split>_<name>.pt`` (torch) or ``.json`` (XGBoost)."""
        folder = Path(folder)
        out = []
        for name, fit in self.fits.items():
            stem = folder / f"{prefix}_{self.split}_{name}"
            if isinstance(fit.model, XGBoostRegressor):
                out.append(fit.model.save(stem.with_suffix(".json")))
            else:
                out.append(save_checkpoint(stem.with_suffix(".pt"), fit.model, name, fit.hparams,
                                           {"split": self.split, "window": self.window,
                                            "purpose": "stage 02 model comparison"}))
        return out


def compare_models(samples: Samples, cfg, truth=None, progress: bool = True,
                   names: Sequence[str] | None = None, seed: int | None = None) -> ComparisonResult:
    """Train every model of ``cfg.models.names`` on identical samples and score them on the test split.

    Parameters
    ----------
    samples : Samples
        Training, validation and test windows shared by all models.
    cfg : glass_sm.config.Config
        ``models.*``, ``training.*``; ``models.sm_bins`` and ``models.rate_windows``.
    truth : xarray.DataArray or Dataset or path, optional
        The twin's ``sm_true(time, lat, lon)`` (m3 m-3); adds the ``'truth'`` reference.
    progress : bool
        Progress bars and one line per model.
    names : sequence of str, optional
        Models (default ``cfg.models.names``).
    seed : int, optional
        Default ``run.seed``.

    Returns
    -------
    ComparisonResult
    """
    names = list(names if names is not None else cfg.models.names)
    seed = int(cfg.run.seed if seed is None else seed)
    n_boot, bins = int(cfg.training.n_boot), list(cfg.models.sm_bins)
    truth = _truth_da(truth)
    idx = samples.test
    label = samples.targets("test").astype(np.float64)
    true = samples.values_at(truth, "test").astype(np.float64) if truth is not None else np.full(len(idx), np.nan)
    preds = pd.DataFrame({"pixel": idx[:, PIXEL], "day": idx[:, DAY], "date": samples.dates("test"),
                          "lat": samples.lat[idx[:, PIXEL]], "lon": samples.lon[idx[:, PIXEL]],
                          "label": label, "truth": true})
    refs = [("label", label)] + ([("truth", true)] if truth is not None else [])
    x_rate = _rate_windows(samples, int(cfg.models.rate_windows))
    fits, m_rows, t_rows, b_rows = {}, [], [], []
    for name in names:
        fit = fit_model(name, samples, cfg, seed=seed, progress=progress)
        fits[name] = fit
        pred = predict_split(fit.model, samples, "test", cfg.training.eval_batch_size)
        preds[name] = pred.astype(np.float64)
        rate = measure_inference_rate(fit.model, x_rate, cfg.training.eval_batch_size, repeats=2)
        for ref_name, ref in refs:
            m_rows.append({"split": samples.split, "window": samples.window, "model": name, "reference": ref_name,
                           **evaluate(pred, ref, n_boot, seed)})
            b = metrics_by_sm_bin(pred, ref, bins, ci=True, n_boot=n_boot, seed=seed)
            b.insert(0, "reference", ref_name)
            b.insert(0, "model", name)
            b.insert(0, "split", samples.split)
            b_rows.append(b)
        seen = (fit.epochs_run * min(len(samples.train), cfg.training.batch_size *
                                     (cfg.training.max_batches_per_epoch or 10**12))
                if name != "xgboost" else np.nan)
        t_rows.append({"split": samples.split, "model": name, "n_train": len(samples.train),
                       "n_parameters": fit.n_parameters, "flops_per_window": fit.flops,
                       "epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch,
                       "train_seconds": fit.train_seconds,
                       "train_windows_per_s": seen / fit.train_seconds if fit.train_seconds > 0 else np.nan,
                       "inference_windows_per_s": rate, "threads": torch.get_num_threads()})
        if progress:
            r = m_rows[-len(refs)]
            print(f"{samples.split:>6} {name:>11}: RMSE vs label {r['rmse']:.4f} m3 m-3, R2 {r['r2']:.3f}; "
                  f"{fit.epochs_run} epochs/rounds in {fit.train_seconds:.1f} s", flush=True)
    return ComparisonResult(pd.DataFrame(m_rows), pd.DataFrame(t_rows), pd.concat(b_rows, ignore_index=True),
                            preds, fits, samples.split, samples.window, sample_counts(samples))


def input_baseline(samples: Samples, cfg, variable: str = "sm_era5land", truth=None) -> pd.DataFrame:
    """Test metrics of a raw cube input taken as the estimate (e.g. ERA5-Land SM of the target day, m3 m-3).

    The yardstick every model should beat: how good is the reanalysis' own soil moisture at the test samples,
    before any learning? Same test windows, references, bootstrap and columns as
    :attr:`ComparisonResult.metrics` (``model`` = ``'<variable> (input)'``).
    """
    seed, n_boot = int(cfg.run.seed), int(cfg.training.n_boot)
    est = samples.values_at(samples.cube[variable], "test").astype(np.float64)
    refs = [("label", samples.targets("test").astype(np.float64))]
    truth = _truth_da(truth)
    if truth is not None:
        refs.append(("truth", samples.values_at(truth, "test").astype(np.float64)))
    return pd.DataFrame([{"split": samples.split, "window": samples.window, "model": f"{variable} (input)",
                          "reference": r, **evaluate(est, ref, n_boot, seed)} for r, ref in refs])


@dataclass
class SplitStrategyResult:
    """:func:`run_split_strategies`: the tables of each strategy stacked (column ``split``) and the results."""

    metrics: pd.DataFrame
    timing: pd.DataFrame
    by_bin: pd.DataFrame
    samples: pd.DataFrame
    results: dict


def run_split_strategies(cube: xr.Dataset, cfg, strategies: Sequence[str] | None = None,
                         names: Sequence[str] | None = None, truth=None, progress: bool = True,
                         reuse: dict | None = None) -> SplitStrategyResult:
    """Repeat the comparison for several split strategies (random, site-independent, year-independent).

    Each strategy gets its own samples (:func:`glass_sm.data.samples.build_samples` with ``split=...``, the rest of
    ``cfg.samples`` unchanged, so the window, features and subsampling caps are identical); the models of each
    strategy share that strategy's samples.

    Parameters
    ----------
    cube : xarray.Dataset
        The stage-01 cube.
    cfg : glass_sm.config.Config
        As :func:`compare_models`.
    strategies : sequence of str, optional
        Default ``cfg.models.split_strategies``.
    names : sequence of str, optional
        Models per strategy (default ``cfg.models.split_models`` or, when empty, ``cfg.models.names``).
    truth : optional
        As :func:`compare_models`.
    progress : bool
        Progress output.
    reuse : dict, optional
        ``{strategy: ComparisonResult}`` already computed (e.g. the main comparison); only its models that are
        in ``names`` are kept, and missing ones are trained on fresh samples of that strategy.

    Returns
    -------
    SplitStrategyResult
        ``samples`` counts the training / validation / test windows and pixels of each strategy.
    """
    strategies = list(strategies if strategies is not None else cfg.models.split_strategies)
    names = list(names if names is not None else (cfg.models.split_models or cfg.models.names))
    reuse = dict(reuse or {})
    results, counts = {}, []
    for strategy in strategies:
        prev = reuse.get(strategy)
        if prev is not None and all(n in prev.fits for n in names):
            res = _subset(prev, names)
        else:
            s = build_samples(cube, cfg, split=strategy)
            res = compare_models(s, cfg, truth=truth, progress=progress, names=names)
            s.release()
        counts.append(res.samples)
        results[strategy] = res
    return SplitStrategyResult(
        pd.concat([r.metrics for r in results.values()], ignore_index=True),
        pd.concat([r.timing for r in results.values()], ignore_index=True),
        pd.concat([r.by_bin for r in results.values()], ignore_index=True),
        pd.DataFrame(counts), results)


def _subset(res: ComparisonResult, names: Sequence[str]) -> ComparisonResult:
    keep = list(names)
    return ComparisonResult(
        res.metrics[res.metrics.model.isin(keep)].reset_index(drop=True),
        res.timing[res.timing.model.isin(keep)].reset_index(drop=True),
        res.by_bin[res.by_bin.model.isin(keep)].reset_index(drop=True),
        res.predictions[[c for c in res.predictions.columns if c not in res.fits or c in keep]],
        {k: v for k, v in res.fits.items() if k in keep}, res.split, res.window, dict(res.samples))


def sample_counts(samples: Samples) -> dict:
    """Windows and pixels per split of ``samples`` (one row of the stage-02 samples table)."""
    return {"split": samples.split, "window": samples.window, "n_train": len(samples.train),
            "n_val": len(samples.val), "n_test": len(samples.test),
            "train_pixels": int(len(np.unique(samples.train[:, PIXEL]))),
            "test_pixels": int(len(np.unique(samples.test[:, PIXEL]))),
            "shared_pixels": int(len(np.intersect1d(samples.train[:, PIXEL], samples.test[:, PIXEL]))),
            "test_first": str(samples.dates("test").min().date()), "test_last": str(samples.dates("test").max().date())}


# ----------------------------------------------------------------------------------------------------------
# Stage 03: sequence length
# ----------------------------------------------------------------------------------------------------------
@dataclass
class SequenceLengthResult:
    """:func:`sequence_length_experiment`: deterministic ``metrics`` and run-dependent ``timing``."""

    metrics: pd.DataFrame
    timing: pd.DataFrame


def sequence_length_experiment(samples: Samples, cfg, lengths: Sequence[int] | None = None,
                               models: Sequence[str] = ("atlstm", "lstm"), truth=None,
                               progress: bool = True, epochs: int | None = None) -> SequenceLengthResult:
    """Train each model with each window length on the *same* samples and score them on the same test windows.

    The samples must have been built with a window at least as long as the longest length (and the same
    window mode); :meth:`Samples.with_window` then gives nested windows ending at the same target days, so
    the targets and the normalization are identical across lengths and only the input history changes.

    Parameters
    ----------
    samples : Samples
        Built with ``window >= max(lengths)``.
    cfg : glass_sm.config.Config
        Model and training parameters.
    lengths : sequence of int, optional
        Window lengths, days (default ``cfg.atlstm.lengths``).
    models : sequence of str
        Registry keys (default AtLSTM and LSTM).
    truth : optional
        The twin's ``sm_true`` (adds ``reference='truth'`` rows).
    progress : bool
        One line per run.
    epochs : int, optional
        Maximum epochs per run (default ``cfg.atlstm.length_epochs`` or ``cfg.training.epochs``).

    Returns
    -------
    SequenceLengthResult
        ``metrics``: ``model, window, reference, n, r2, r2_lo, ..., bias_hi``; ``timing``: ``model, window,
        epochs_run, best_epoch, train_seconds, inference_windows_per_s``.
    """
    lengths = sorted(int(v) for v in (lengths if lengths is not None else cfg.atlstm.lengths))
    if max(lengths) > samples.window:
        raise ValueError(f"sequence_length_experiment: the samples' window is {samples.window} days but the longest "
                         f"length is {max(lengths)}; build the samples with window={max(lengths)}")
    epochs = epochs or cfg.atlstm.length_epochs or cfg.training.epochs
    seed, n_boot = int(cfg.run.seed), int(cfg.training.n_boot)
    truth = _truth_da(truth)
    label = samples.targets("test").astype(np.float64)
    refs = [("label", label)]
    if truth is not None:
        refs.append(("truth", samples.values_at(truth, "test").astype(np.float64)))
    m_rows, t_rows = [], []
    for L in lengths:
        s = samples.with_window(L)
        x_rate = _rate_windows(s, min(int(cfg.models.rate_windows), 5000))
        for name in models:
            fit = fit_model(name, s, cfg, seed=seed, epochs=epochs, progress=False)
            pred = predict_split(fit.model, s, "test", cfg.training.eval_batch_size)
            for ref_name, ref in refs:
                m_rows.append({"model": name, "window": L, "reference": ref_name, **evaluate(pred, ref, n_boot, seed)})
            t_rows.append({"model": name, "window": L, "epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch,
                           "train_seconds": fit.train_seconds,
                           "inference_windows_per_s": measure_inference_rate(fit.model, x_rate,
                                                                             cfg.training.eval_batch_size, 1),
                           "threads": torch.get_num_threads()})
            if progress:
                r = m_rows[-len(refs)]
                print(f"L={L:>3} {name:>7}: RMSE vs label {r['rmse']:.4f} m3 m-3, R2 {r['r2']:.3f} "
                      f"({fit.epochs_run} epochs, {fit.train_seconds:.1f} s)", flush=True)
    return SequenceLengthResult(pd.DataFrame(m_rows), pd.DataFrame(t_rows))


# ----------------------------------------------------------------------------------------------------------
# Stage 03: attention analysis
# ----------------------------------------------------------------------------------------------------------
def season_of(dates) -> np.ndarray:
    """Meteorological season (``'DJF'``, ``'MAM'``, ``'JJA'``, ``'SON'``) of each date."""
    month = pd.DatetimeIndex(dates).month.to_numpy()
    return np.asarray(SEASONS, dtype=object)[(month % 12) // 3]


def aridity_class(aridity_index) -> np.ndarray:
    """UNEP aridity class (:data:`ARIDITY_CLASSES`) of aridity indices P/PET (dimensionless)."""
    ai = np.asarray(aridity_index, np.float64)
    edges = np.array([b for b, _ in ARIDITY_CLASSES[:-1]])
    names = np.asarray([n for _, n in ARIDITY_CLASSES], dtype=object)
    out = names[np.searchsorted(edges, ai, side="right")]
    out[~np.isfinite(ai)] = "unknown"
    return out


def _find_aridity(truth_ds: xr.Dataset | None) -> xr.DataArray | None:
    if truth_ds is None or not isinstance(truth_ds, xr.Dataset):
        return None
    for name in truth_ds.data_vars:
        if "aridity" in str(name).lower() and set(truth_ds[name].dims) == {"lat", "lon"}:
            return truth_ds[name]
    return None


def climate_classes(samples: Samples, truth_ds: xr.Dataset | None = None) -> tuple[np.ndarray, str]:
    """A climate class per land pixel of ``samples``.

    With the twin's ``truth.nc`` holding a static aridity-index field (a variable whose name contains
    ``aridity``, P/PET), the UNEP classes (:func:`aridity_class`) of that field. Otherwise (real data) the pixel's
    mean training label (m3 m-3) decides, by terciles over the pixels: ``'dry'``, ``'intermediate'``, ``'wet'``
    (pixels without training labels use the mean ERA5-Land soil moisture's tercile instead).

    Parameters
    ----------
    samples : Samples
        Supplies the pixels.
    truth_ds : xarray.Dataset, optional
        The twin's truth file.

    Returns
    -------
    (numpy.ndarray, str)
        ``(P,)`` class names (object) and a description of the rule used.
    """
    ai = _find_aridity(truth_ds)
    if ai is not None:
        values = np.full(samples.n_pixels, np.nan)
        allp = np.stack([np.arange(samples.n_pixels), np.zeros(samples.n_pixels, np.int64)], 1)
        values[:] = samples.values_at(ai, allp)
        return aridity_class(values), f"UNEP class of the twin's aridity index '{ai.name}' (P/PET)"
    pix, lab = samples.train[:, PIXEL], samples.targets("train").astype(np.float64)
    sums = np.bincount(pix, lab, minlength=samples.n_pixels)
    cnt = np.bincount(pix, minlength=samples.n_pixels)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / cnt
    rule = "terciles of the pixel's mean training label"
    if (cnt == 0).any() and "sm_era5land" in samples.cube:
        e5 = samples.cube["sm_era5land"].mean("time").values
        e5p = e5[samples.pixels[:, 0], samples.pixels[:, 1]]
        # map ERA5 means onto the label scale through ranks among the labelled pixels
        has = cnt > 0
        order = np.argsort(e5p[has])
        mean[~has] = np.interp(e5p[~has], e5p[has][order], np.sort(mean[has])) if has.any() else e5p[~has]
        rule += " (ERA5-Land mean where a pixel has no training label)"
    q = np.nanpercentile(mean, [100 / 3, 200 / 3])
    out = np.where(mean < q[0], "dry", np.where(mean < q[1], "intermediate", "wet")).astype(object)
    out[~np.isfinite(mean)] = "unknown"
    return out, rule


def attention_groups(samples: Samples, split: str | np.ndarray = "test", truth_ds: xr.Dataset | None = None,
                     bins: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 1.0), sm_reference: str = "label"
                     ) -> tuple[dict, dict]:
    """Groupings of a split's samples for :func:`attention_by_lag`: SM level, season and climate.

    Parameters
    ----------
    samples : Samples
        The samples.
    split : str or numpy.ndarray
        Split name or index.
    truth_ds : xarray.Dataset, optional
        The twin's truth (``sm_true`` and the aridity field).
    bins : sequence of float
        SM bin edges, m3 m-3.
    sm_reference : {'label', 'truth'}
        Which soil moisture sets the SM level of a window (its target day's).

    Returns
    -------
    (dict, dict)
        ``{'sm_level': (n,), 'season': (n,), 'climate': (n,)}`` object arrays and the orders of their classes
        (with the rule used for the climate under ``'climate_rule'``).
    """
    idx = samples.index(split)
    if sm_reference == "truth":
        if truth_ds is None:
            raise ValueError("sm_reference='truth' needs truth_ds")
        sm = samples.values_at(_truth_da(truth_ds), idx).astype(np.float64)
    else:
        sm = samples.targets(split).astype(np.float64) if isinstance(split, str) else samples.targets(idx)
    labels = np.asarray(sm_bin_labels(bins), dtype=object)
    k = np.clip(np.searchsorted(np.asarray(bins), sm, side="right") - 1, 0, len(labels) - 1)
    sm_level = labels[k]
    climate_pix, rule = climate_classes(samples, truth_ds)
    groups = {"sm_level": sm_level, "season": season_of(samples.dates(idx)), "climate": climate_pix[idx[:, PIXEL]]}
    clim_order = [n for _, n in ARIDITY_CLASSES] + ["dry", "intermediate", "wet", "unknown"]
    orders = {"sm_level": list(labels), "season": list(SEASONS), "climate": clim_order, "climate_rule": rule}
    return groups, orders


def _lags(offsets: np.ndarray) -> np.ndarray:
    return -np.asarray(offsets, np.int64)


def attention_by_lag(attention: np.ndarray, offsets: np.ndarray, groups: np.ndarray | None = None,
                     order: Sequence[str] | None = None, grouping: str = "all") -> pd.DataFrame:
    """Mean attention weight at each lag, overall or per group of windows.

    Parameters
    ----------
    attention : numpy.ndarray
        ``(n, L)`` weights (each row sums to 1), dimensionless.
    offsets : numpy.ndarray
        ``(L,)`` day offsets of the window steps relative to the target day (:attr:`Samples.offsets`);
        the lag of a step is ``-offset`` days (0 = the target day, positive = earlier days, negative = later
        days of a centred window).
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
    lags = _lags(offsets)
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
    """Scalar summaries of rows of :func:`attention_by_lag` (how local the attention is).

    Columns: ``grouping``, ``group``, ``n``, ``window`` (L), ``uniform`` (1/L), ``w_lag0`` (weight on the target
    day), ``w_adjacent`` (weight on lags ``0..adjacent`` days), ``mean_lag`` (attention-weighted mean lag, days),
    ``effective_steps`` (``1 / sum w^2`` of the mean weights: L for uniform, 1 for a single day) and
    ``argmax_lag`` (days) and ``window_effective_steps`` (per-window concentration, see :func:`attention_by_lag`).
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


# ----------------------------------------------------------------------------------------------------------
# Stage 03: permutation feature importance
# ----------------------------------------------------------------------------------------------------------
def _predictor(model, batch_size: int = 4096) -> Callable[[np.ndarray], np.ndarray]:
    if isinstance(model, XGBoostRegressor):
        return lambda x: predict(model, x, batch_size)
    if isinstance(model, torch.nn.Module):
        def run(x):
            model.eval()
            with torch.inference_mode():
                return np.concatenate([model(torch.from_numpy(np.ascontiguousarray(x[s:s + batch_size]))).numpy()
                                       for s in range(0, len(x), batch_size)])
        return run
    if hasattr(model, "predict"):
        return model.predict
    if callable(model):
        return model
    raise TypeError(f"cannot predict with a {type(model).__name__}")


def permutation_importance(model, x: np.ndarray, y: np.ndarray, feature_names: Sequence[str], repeats: int = 3,
                           seed: int = 0) -> pd.DataFrame:
    """Permutation feature importance: how much the RMSE grows when one feature is shuffled across windows.

    For feature ``f``, the windows' whole ``f`` series (all ``L`` steps) are permuted among the windows, which
    breaks the link between ``f`` and the target while keeping its distribution and its within-window time
    structure (and, for the static features repeated at every step, their constancy within a window).

    Parameters
    ----------
    model : torch.nn.Module, XGBoostRegressor or callable
        Maps ``(n, L, F)`` float32 windows to ``(n,)`` soil moisture, m3 m-3.
    x : numpy.ndarray
        ``(n, L, F)`` windows (as the model takes them: normalised).
    y : numpy.ndarray
        ``(n,)`` reference soil moisture, m3 m-3.
    feature_names : sequence of str
        ``F`` names.
    repeats : int
        Permutations per feature.
    seed : int
        Seed of the permutations (repeat ``k`` of feature ``j`` uses the stream ``(seed, j, k)``).

    Returns
    -------
    pandas.DataFrame
        One row per feature, sorted by decreasing importance: ``feature``, ``importance`` (mean RMSE increase,
        m3 m-3), ``importance_sd``, ``r2_drop`` (mean decrease of R2), ``base_rmse`` (m3 m-3), ``base_r2``,
        ``repeats``.
    """
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.float64)
    if x.ndim != 3 or x.shape[2] != len(feature_names) or len(x) != len(y):
        raise ValueError(f"x must be (n, L, {len(feature_names)}) with n = len(y) = {len(y)}, got {x.shape}")
    f = _predictor(model)
    base = np.asarray(f(x), np.float64)
    base_rmse, base_r2 = M.rmse(base, y), M.r2(base, y)
    rows = []
    work = x.copy()
    for j, name in enumerate(feature_names):
        d_rmse, d_r2 = [], []
        for k in range(repeats):
            perm = np.random.default_rng([seed, j, k]).permutation(len(x))
            work[:, :, j] = x[perm, :, j]
            p = np.asarray(f(work), np.float64)
            d_rmse.append(M.rmse(p, y) - base_rmse)
            d_r2.append(base_r2 - M.r2(p, y))
        work[:, :, j] = x[:, :, j]
        rows.append({"feature": name, "importance": float(np.mean(d_rmse)),
                     "importance_sd": float(np.std(d_rmse, ddof=1)) if repeats > 1 else 0.0,
                     "r2_drop": float(np.mean(d_r2)), "base_rmse": base_rmse, "base_r2": base_r2,
                     "repeats": repeats})
    return pd.DataFrame(rows).sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------------------------------------
# Stage 03: a worked example window
# ----------------------------------------------------------------------------------------------------------
def example_window(samples: Samples, model, truth=None, split: str = "test", feature: str = "sm_era5land"
                   ) -> pd.DataFrame:
    """One test window in physical units with the model's attention, prediction, label and truth.

    The window chosen (deterministically) is the test window with the largest rise of ``feature`` (by default
    the ERA5-Land soil moisture, i.e. a rain event) between two consecutive days inside the window, so that the
    attention has something to react to.

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
    truth_da = _truth_da(truth)
    true = samples.values_at(truth_da, one) if truth_da is not None else np.full(len(days), np.nan)
    tab = pd.DataFrame({"sample": i, "pixel": p, "lat": samples.lat[p], "lon": samples.lon[p],
                        "date": samples.time[days], "offset": samples.offsets, "lag": -samples.offsets})
    for k, n in enumerate(names):
        tab[n] = raw[:, k]
    tab["attention"] = att[0]
    tab["label"], tab["truth"] = label, true
    tab["is_target"] = tab["offset"] == 0
    tab["prediction"] = np.where(tab["is_target"], float(pred[0]), np.nan)
    return tab


# ----------------------------------------------------------------------------------------------------------
# Stage 03: the production AtLSTM
# ----------------------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _checkpoint_module():
    try:
        from glass_sm.models import checkpoint  # noqa: PLC0415
    except ImportError:
        return None
    return checkpoint


def train_final_atlstm(cube: xr.Dataset, cfg, *, samples: Samples | None = None, truth=None,
                       progress: bool = True, path: str | os.PathLike | None = None) -> Path:
    """Train the production AtLSTM and write its checkpoint, metadata and model card.

    Window ``atlstm.final_window`` (mode ``samples.window_mode``), split ``atlstm.final_split``, at most
    ``atlstm.final_epochs`` (default ``training.epochs``) epochs with early stopping on the validation split.

    Files (``results/<run>/models/``): ``atlstm_final.pt`` (weights + everything to rebuild the preprocessing,
    ``book/design.md`` "Production checkpoints"), ``atlstm_final.json`` (the same metadata, no weights),
    ``atlstm_final.md`` (model card), ``atlstm_final_history.csv`` (loss per epoch).

    Parameters
    ----------
    cube : xarray.Dataset
        The stage-01 cube.
    cfg : glass_sm.config.Config
        All parameters.
    samples : Samples, optional
        Reuse samples already built with split ``atlstm.final_split`` and a window at least
        ``atlstm.final_window`` long (they are cut with :meth:`Samples.with_window`); default: built here.
    truth : optional
        The twin's ``sm_true``: adds the test metrics against the truth to the card.
    progress : bool
        Progress bar.
    path : path-like, optional
        Checkpoint file (default ``results/<run>/models/atlstm_final.pt``).

    Returns
    -------
    Path
        The checkpoint file.
    """
    ac = cfg.atlstm
    if samples is None:
        samples = build_samples(cube, cfg, split=ac.final_split, window=ac.final_window)
    if samples.split != ac.final_split:
        raise ValueError(f"train_final_atlstm: samples use the {samples.split!r} split, atlstm.final_split is "
                         f"{ac.final_split!r}")
    if samples.window != ac.final_window:
        samples = samples.with_window(ac.final_window)
    path = Path(path) if path is not None else RunPaths.from_config(cfg).models / "atlstm_final.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    seed, n_boot = int(cfg.run.seed), int(cfg.training.n_boot)

    fit = fit_model("atlstm", samples, cfg, seed=seed, epochs=ac.final_epochs or cfg.training.epochs,
                    progress=progress)
    pred = predict_split(fit.model, samples, "test", cfg.training.eval_batch_size)
    scores = {"test_vs_label": evaluate(pred, samples.targets("test"), n_boot, seed)}
    truth_da = _truth_da(truth)
    if truth_da is not None:
        scores["test_vs_truth"] = evaluate(pred, samples.values_at(truth_da, "test"), n_boot, seed)
    spec = samples.features
    train_days = samples.dates("train")
    check_idx = samples.test[np.linspace(0, len(samples.test) - 1, min(16, len(samples.test))).astype(np.int64)]
    check_pred = predict_split(fit.model, samples, check_idx, 64)
    source = str(cube.attrs.get("source", "synthetic twin" if cfg.is_twin else "real data"))
    extra = {
        "features": spec.names, "units": spec.units, "normalizer": samples.normalizer.to_dict(),
        "window": samples.window, "window_mode": samples.window_mode, "add_doy": bool(spec.doy),
        "include_filled_flags": bool(spec.flags),
        "train_period": [str(train_days.min().date()), str(train_days.max().date())],
        "split": samples.split, "split_info": _plain_info(samples.info), "counts": samples.counts,
        "metrics": scores, "source": source, "seed": seed,
        "training": {"epochs_max": int(ac.final_epochs or cfg.training.epochs), "epochs_run": fit.epochs_run,
                     "best_epoch": fit.best_epoch, "batch_size": cfg.training.batch_size, "lr": cfg.training.lr,
                     "weight_decay": cfg.training.weight_decay, "patience": cfg.training.patience,
                     "max_batches_per_epoch": cfg.training.max_batches_per_epoch,
                     "n_train": len(samples.train), "n_val": len(samples.val), "n_test": len(samples.test)},
        "params": {k: _plain_section(getattr(cfg, k)) for k in ("run", "samples", "models", "training", "atlstm")},
        "self_check": {"pixel_day": check_idx.tolist(), "lat": samples.lat[check_idx[:, PIXEL]].tolist(),
                       "lon": samples.lon[check_idx[:, PIXEL]].tolist(),
                       "date": [str(d.date()) for d in samples.time[check_idx[:, DAY]]],
                       "prediction": [float(v) for v in check_pred]},
        "n_parameters": fit.n_parameters, "flops_per_window": fit.flops,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    ck = _checkpoint_module()
    sections = model_card_sections(extra, fit.hparams)
    if ck is not None and hasattr(ck, "save_production_checkpoint"):
        contract = ("features", "units", "normalizer", "window", "window_mode", "add_doy", "include_filled_flags",
                    "train_period", "split", "metrics", "source")
        ck.save_production_checkpoint(
            path, fit.model, "atlstm", fit.hparams, samples.normalizer, extra["features"], samples.window,
            samples.window_mode, add_doy=extra["add_doy"], include_filled_flags=extra["include_filled_flags"],
            train_period=extra["train_period"], split=extra["split"], metrics=extra["metrics"],
            source=extra["source"], model_card=sections,
            extra={k: v for k, v in extra.items() if k not in contract})
    else:  # no checkpoint module: the same contract through the generic writer
        save_checkpoint(path, fit.model, "atlstm", fit.hparams, extra)
        path.with_suffix(".md").write_text(model_card(extra, fit.hparams, path))
    fit.history.to_csv(path.with_name(f"{path.stem}_history.csv"), index=False)
    return path


def _plain_section(section) -> dict:
    out = {}
    for k, v in dataclasses.asdict(section).items():
        out[k] = str(v) if isinstance(v, (Path, dt.date)) else v
    return out


def _plain_info(info: dict) -> dict:
    return {k: v for k, v in info.items() if k != "test_pixels"} | (
        {"n_test_pixels": len(info["test_pixels"])} if "test_pixels" in info else {})


def _metrics_markdown(scores: dict) -> str:
    def fmt(v):
        return f"{v:.4f}" if isinstance(v, float) and np.isfinite(v) else str(v)

    lines = ["| reference | n | R2 | R | RMSE (m3 m-3) | ubRMSE (m3 m-3) | bias (m3 m-3) |",
             "|---|---|---|---|---|---|---|"]
    for ref, s in scores.items():
        cells = [f"{fmt(s[m])} [{fmt(s[m + '_lo'])}, {fmt(s[m + '_hi'])}]" for m in METRIC_NAMES]
        lines.append(f"| {ref.replace('test_vs_', '')} | {s['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def model_card_sections(extra: dict, hparams: dict) -> dict:
    """Free-text sections of the production model card: title, data, model, training, test metrics, use, limits.

    Parameters
    ----------
    extra : dict
        The checkpoint's ``extra`` as assembled by :func:`train_final_atlstm`.
    hparams : dict
        The model's hyperparameters.

    Returns
    -------
    dict
        Section name -> markdown text or list of bullets (the ``model_card`` argument of
        :func:`glass_sm.models.checkpoint.save_production_checkpoint`).
    """
    tr = extra.get("training", {})
    source = str(extra.get("source", ""))
    twin = "twin" in source.lower() or "synthetic" in source.lower()
    return {
        "title": "Model card: GLASS-AVHRR-style attention LSTM (AtLSTM), production model",
        "data": f"**{source}**" + (" - every number in this card describes the synthetic twin, not the paper's "
                                   "product." if twin else ""),
        "model": [f"attention LSTM (`glass_sm.models.AtLSTMRegressor`), hyperparameters {json.dumps(hparams)}",
                  f"{extra.get('n_parameters')} parameters, {extra.get('flops_per_window', float('nan')):.3g} "
                  "forward FLOPs per window",
                  f"input window {extra['window']} days ({extra['window_mode']}); output: 0-5 cm soil moisture of "
                  "the window's target day, m3 m-3"],
        "training": [f"labels: GLASS-MODIS-like `sm_label`, target days {extra['train_period'][0]} .. "
                     f"{extra['train_period'][1]}",
                     f"split `{extra['split']}` ({json.dumps(extra.get('split_info', {}))}); {tr.get('n_train')} "
                     f"training, {tr.get('n_val')} validation, {tr.get('n_test')} test windows",
                     f"AdamW lr {tr.get('lr')}, weight decay {tr.get('weight_decay')}, batch {tr.get('batch_size')}, "
                     f"at most {tr.get('epochs_max')} epochs (ran {tr.get('epochs_run')}, best epoch "
                     f"{tr.get('best_epoch')}), patience {tr.get('patience')}, seed {extra.get('seed')}"],
        "test_metrics": "95 % percentile-bootstrap intervals in brackets.\n\n" + _metrics_markdown(extra["metrics"]),
        "intended_use": ["daily 0.05 deg surface soil moisture from AVHRR albedo and LST, ERA5-Land soil moisture, "
                         "terrain and soil texture over the AVHRR period (stage 04)"],
        "limitations": ["trained on the labels' period only; before it the model extrapolates in time across AVHRR "
                        "platform changes",
                        "metrics against the labels include the labels' own error; on the synthetic twin the "
                        "metrics against the hidden truth measure the product's accuracy",
                        "the inputs must be built exactly as in training (features, order, normalization, window "
                        "mode); `LoadedModel.check_cube` verifies a cube against this checkpoint"],
    }


def model_card(extra: dict, hparams: dict, path: Path) -> str:
    """Markdown model card (used only when :mod:`glass_sm.models.checkpoint` is unavailable)."""
    lines = []
    for key, value in model_card_sections(extra, hparams).items():
        if key == "title":
            lines += [f"# {value}", ""]
            continue
        lines += [f"## {key.replace('_', ' ').capitalize()}", ""]
        lines += [f"- {v}" for v in value] if isinstance(value, list) else [str(value)]
        lines.append("")
    lines += ["## Inputs", "", "| # | feature | units | mean | sd |", "|---|---|---|---|---|"]
    norm = extra["normalizer"]
    for i, name in enumerate(extra["features"]):
        lines.append(f"| {i} | `{name}` | {extra['units'].get(name, '')} | {norm['mean'][i]:.6g} | "
                     f"{norm['sd'][i]:.6g} |")
    lines += ["", f"SHA-256 of `{path.name}`: `{_sha256(path)}`", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Figures (read the tables / predictions above; never train)
# ----------------------------------------------------------------------------------------------------------
MODEL_LABELS = {"lstm": "LSTM", "bilstm": "Bi-LSTM", "atlstm": "AtLSTM", "transformer": "Transformer",
                "xgboost": "XGBoost"}
"""Display names of the models."""


def _label(name: str) -> str:
    return MODEL_LABELS.get(name, name)


def plot_density_scatter(predictions: pd.DataFrame, metrics: pd.DataFrame, models: Sequence[str],
                         references: Sequence[str] = ("label", "truth"), data_label: str = "",
                         gridsize: int = 60, lim: tuple[float, float] | None = None):
    """Hexbin density scatter (log counts) of predicted vs reference SM, one panel per model and reference.

    Each panel is annotated with R2, RMSE and bias read from ``metrics`` (:attr:`ComparisonResult.metrics`).
    Drawn by :func:`glass_sm.figures.fig_model_density`, the same function stage 06 uses.
    """
    from glass_sm.figures.paper import fig_model_density  # noqa: PLC0415 (matplotlib only when plotting)

    return fig_model_density(predictions, metrics, models=list(models), references=references, label=data_label,
                             gridsize=gridsize, lim=lim)


def plot_metrics_by_bin(by_bin: pd.DataFrame, models: Sequence[str], reference: str = "label",
                        metrics: Sequence[str] = ("rmse", "bias"), data_label: str = ""):
    """Per-bin metrics with 95 % CIs (error bars), one panel per metric, one marker series per model."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    t = by_bin[by_bin.reference == reference]
    bins = list(pd.unique(t["bin"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), constrained_layout=True)
    axes = np.atleast_1d(axes)
    width = 0.8 / max(1, len(models))
    for ax, m in zip(axes, metrics):
        for k, name in enumerate(models):
            s = t[t.model == name].set_index("bin").reindex(bins)
            xpos = np.arange(len(bins)) + (k - (len(models) - 1) / 2) * width
            y = s[m].to_numpy(float)
            err = np.vstack([y - s[f"{m}_lo"].to_numpy(float), s[f"{m}_hi"].to_numpy(float) - y]) \
                if f"{m}_lo" in s else None
            ax.errorbar(xpos, y, yerr=err, fmt="o", ms=3.5, capsize=2, lw=0.8, label=_label(name))
        ax.set_xticks(np.arange(len(bins)))
        ax.set_xticklabels([f"{b}\n(n={int(n)})" for b, n in
                            zip(bins, t[t.model == models[0]].set_index("bin").reindex(bins)["n"].fillna(0))],
                           fontsize=7)
        ax.set_xlabel(f"{reference} SM bin (m$^3$ m$^{{-3}}$)")
        unit = "" if m in ("r", "r2") else " (m$^3$ m$^{-3}$)"
        ax.set_ylabel({"r2": "R$^2$", "r": "R"}.get(m, m.replace("ubrmse", "ubRMSE").upper() if m != "bias"
                                                       else "bias") + unit)
        if m == "bias":
            ax.axhline(0, color="k", lw=0.5)
    axes[0].legend(fontsize=7, ncol=1)
    if data_label:
        fig.suptitle(f"Test metrics by soil-moisture level (vs {reference}) - {data_label}")
    return fig


def plot_sequence_length(metrics: pd.DataFrame, reference: str = "label", data_label: str = ""):
    """RMSE and R2 (95 % CIs) against the window length, one line per model."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    t = metrics[metrics.reference == reference]
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.2), constrained_layout=True)
    for ax, m, lab in zip(axes, ("rmse", "r2"), ("RMSE (m$^3$ m$^{-3}$)", "R$^2$")):
        for name in pd.unique(t.model):
            s = t[t.model == name].sort_values("window")
            y = s[m].to_numpy(float)
            ax.errorbar(s.window, y, yerr=np.vstack([y - s[f"{m}_lo"], s[f"{m}_hi"] - y]), marker="o", ms=4,
                        capsize=2, lw=1, label=_label(name))
        ax.set_xscale("log")
        ticks = sorted(pd.unique(t.window))
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(v) for v in ticks])
        ax.minorticks_off()
        ax.set_xlabel("window length L (days)")
        ax.set_ylabel(lab)
    axes[0].legend()
    if data_label:
        fig.suptitle(f"Sequence length (test set, vs {reference}) - {data_label}")
    return fig


def plot_attention_by_lag(tables: dict, data_label: str = "", max_lag: int | None = None):
    """Mean attention weight by lag, one panel per grouping (``{'overall': df, 'SM level': df, ...}``)."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, len(tables), figsize=(3.4 * len(tables), 3.0), sharey=True, constrained_layout=True)
    axes = np.atleast_1d(axes)
    for ax, (title, t) in zip(axes, tables.items()):
        cols = [c for c in t.columns if c.startswith("lag_")]
        lags = np.array([int(c[4:]) for c in cols])
        keep = lags <= max_lag if max_lag is not None else np.ones(len(lags), bool)
        for _, row in t.iterrows():
            ax.plot(lags[keep], row[cols].to_numpy(float)[keep], marker="o", ms=2.5, lw=1,
                    label=f"{row['group']} (n={int(row['n'])})")
        ax.axhline(1 / len(lags), color="0.5", ls="--", lw=0.7)
        ax.set_xlabel("lag (days before the target day)")
        ax.set_title(title)
        ax.legend(fontsize=6.5)
    axes[0].set_ylabel("mean attention weight")
    if data_label:
        fig.suptitle(f"AtLSTM attention by lag (test set; dashed: uniform 1/L) - {data_label}")
    return fig


def plot_example_window(tab: pd.DataFrame, data_label: str = ""):
    """The worked example: inputs, attention, and label / truth / prediction over the window."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(4, 1, figsize=(7.5, 7.5), sharex=True, constrained_layout=True)
    d = tab["date"]
    for c in [c for c in ("albedo_bsa", "albedo_wsa") if c in tab]:
        axes[0].plot(d, tab[c], marker=".", lw=1, label=c)
    axes[0].set_ylabel("albedo (1)")
    axes[0].legend(fontsize=7)
    if "lst" in tab:
        axes[1].plot(d, tab["lst"], marker=".", lw=1, color="C3")
    axes[1].set_ylabel("LST (K)")
    if "sm_era5land" in tab:
        axes[2].plot(d, tab["sm_era5land"], marker=".", lw=1, label="ERA5-Land (input)")
    axes[2].plot(d, tab["label"], "s", ms=3, label="label (not an input)")
    if np.isfinite(tab["truth"].to_numpy(float)).any():
        axes[2].plot(d, tab["truth"], "k-", lw=0.8, label="truth (hidden)")
    tgt = tab[tab.is_target].iloc[0]
    axes[2].plot([tgt.date], [tgt.prediction], "r*", ms=10, label="AtLSTM prediction")
    axes[2].set_ylabel("SM (m$^3$ m$^{-3}$)")
    axes[2].legend(fontsize=7, ncol=2)
    axes[3].bar(d, tab["attention"], width=0.8, color="C2")
    axes[3].axhline(1 / len(tab), color="0.5", ls="--", lw=0.7)
    axes[3].set_ylabel("attention weight")
    axes[3].tick_params(axis="x", rotation=30)
    fig.suptitle(f"Worked example at ({tgt.lat:.3f} N, {tgt.lon:.3f} E), target {pd.Timestamp(tgt.date):%Y-%m-%d}"
                 + (f" - {data_label}" if data_label else ""))
    return fig


def plot_feature_importance(table: pd.DataFrame, data_label: str = ""):
    """Horizontal bars of the permutation importance (RMSE increase, m3 m-3) with +- 1 sd."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    t = table.sort_values("importance")
    fig, ax = plt.subplots(figsize=(5.2, 0.3 * len(t) + 1.2), constrained_layout=True)
    ax.barh(t.feature, t.importance, xerr=t.importance_sd, color="C0", capsize=2)
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel("RMSE increase when permuted (m$^3$ m$^{-3}$)")
    if data_label:
        ax.set_title(f"Permutation importance (AtLSTM, test) - {data_label}", fontsize=9)
    return fig


def plot_split_strategies(metrics: pd.DataFrame, reference: str = "label", metric: str = "rmse",
                          data_label: str = ""):
    """A metric (95 % CI) per model, one marker series per split strategy."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    t = metrics[metrics.reference == reference]
    models = list(pd.unique(t.model))
    splits = list(pd.unique(t.split))
    fig, ax = plt.subplots(figsize=(1.1 * len(models) + 2.5, 3.2), constrained_layout=True)
    width = 0.8 / max(1, len(splits))
    for k, sp in enumerate(splits):
        s = t[t.split == sp].set_index("model").reindex(models)
        y = s[metric].to_numpy(float)
        xpos = np.arange(len(models)) + (k - (len(splits) - 1) / 2) * width
        ax.errorbar(xpos, y, yerr=np.vstack([y - s[f"{metric}_lo"].to_numpy(float),
                                             s[f"{metric}_hi"].to_numpy(float) - y]),
                    fmt="o", ms=4, capsize=2, lw=0.8, label=f"{sp} split")
    ax.set_xticks(np.arange(len(models)))
    ax.set_xticklabels([_label(m) for m in models])
    unit = "" if metric in ("r", "r2") else " (m$^3$ m$^{-3}$)"
    ax.set_ylabel({"r2": "R$^2$", "r": "R", "ubrmse": "ubRMSE"}.get(metric, metric.upper()) + unit
                  + f" vs {reference}")
    ax.legend(fontsize=7)
    if data_label:
        ax.set_title(f"Split strategies (test sets) - {data_label}", fontsize=9)
    return fig
