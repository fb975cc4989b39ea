"""Stage 02: the model zoo (LSTM, Bi-LSTM, AtLSTM and its [c; h_L] ablation, Transformer, XGBoost on the target
day (the paper's benchmark) and on the window (ablation)) trained on identical samples, scored on the test set.

The notebook ``02_model_comparison`` calls the stage functions (they take the :class:`~glass_sm.stages.StageContext`,
write the stage's tables through :func:`glass_sm.contract.write_table` and return them); the concept functions
below them (:func:`fit_model`, :func:`compare_models`, :func:`run_split_strategies`) take a config and samples and
are what the tests and stage 03 call.

Protocol (every choice is a parameter, see :mod:`glass_sm.config`)
-----------------------------------------------------------------
* **Identical samples.** Every model of a comparison is trained on the same :class:`~glass_sm.data.Samples` (same
  training, validation and test windows, same normalization). The torch models use the shared loop
  :func:`glass_sm.training.train_torch_model` (AdamW, ``training.*``, early stopping on the validation MSE with
  the best epoch's weights restored, the plateau learning-rate schedule and the convergence rule of
  :mod:`glass_sm.training`); XGBoost is fitted on the same windows, reading the target day's ``F`` features
  (``xgboost``, the benchmark) or the window flattened to ``L * F`` columns (``xgboost_window``), with early
  stopping on the validation RMSE.
* **Stopping reasons.** Every fit records why it ended (``stop_reason`` of the timing tables): ``'converged'``,
  ``'early-stopped'`` or ``'budget cap'`` (torch: :data:`glass_sm.training.STOP_REASONS`; XGBoost: early stopping
  triggered or ``n_estimators`` reached). A model stopped at the budget cap is a lower bound.
* **Seeds.** Every model is initialised and trained with ``run.seed``; the bootstrap of the confidence intervals
  uses ``run.seed`` too, so the intervals of two models on the same test set come from the *same* resamples.
  Same parameters, cube and seed on the same CPU and thread count give identical metric tables; timings (train
  seconds, windows per second) vary from run to run and are kept in separate tables.
* **Metrics** (:func:`glass_sm.evaluation.skill.evaluate`): R2, R, RMSE, ubRMSE, bias with 95 % bootstrap
  intervals (``training.n_boot`` resamples) against the GLASS-MODIS-like label and, on the twin, the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import xarray as xr

from glass_sm.contract import TABLES, read_table, tables_of, write_table
from glass_sm.data import DAY, PIXEL, Samples, build_samples, open_cube
from glass_sm.evaluation.ceiling import label_ceiling
from glass_sm.evaluation.claims import paper_claims
from glass_sm.evaluation.skill import baseline_differences, evaluate, metrics_by_sm_bin, sm_bin_labels
from glass_sm.figures.paper import fig_accuracy_by_sm, fig_model_density
from glass_sm.interpret.attention import find_aridity
from glass_sm.models import display_name, is_torch_model, model_hparams
from glass_sm.models.checkpoint import save_checkpoint
from glass_sm.fitting import (FitResult, fit_fingerprint, fit_model, fit_models, fit_record, predict_split,
                              rate_windows)
from glass_sm.paths import RunPaths
from glass_sm.training import measure_inference_rate

__all__ = ["CONFIG_SECTIONS", "STAGE", "BASELINE", "StageInputs", "FitResult", "ComparisonResult",
           "SplitStrategyResult", "PlannedFits", "fit_comparison", "fit_all", "set_torch_threads", "open_inputs",
           "fit_model", "predict_split", "rate_windows",
           "reference_values", "compare_models", "input_baseline", "run_split_strategies", "sample_counts",
           "main_reference", "comparison_samples", "train_and_score", "era5land_yardstick", "versus_baseline",
           "split_strategies", "read_tables", "figure_density", "figures_by_bin", "plot_split_strategies",
           "figure_split_strategies", "ranking_text", "mechanisms_text", "budget_text"]

STAGE = "02_model_comparison"
CONFIG_SECTIONS = ("run", "domain", "period", "data", "samples", "models", "training", "figures")
"""Parameter sections stage 02 reads (directly or through the functions it calls)."""

BASELINE = "xgboost"
"""The model every deep model is compared with (paired differences, ``model_vs_xgboost``)."""


# ----------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------
@dataclass
class StageInputs:
    """What stages 02 and 03 read: the stage-01 cube, the twin's truth file (None on real data), torch threads."""

    cube: xr.Dataset
    truth_ds: xr.Dataset | None
    threads: int

    @property
    def truth(self) -> xr.DataArray | None:
        """The twin's hidden ``sm_true(time, lat, lon)``, m3 m-3 (None on real data)."""
        if self.truth_ds is None:
            return None
        if "sm_true" not in self.truth_ds:
            raise KeyError(f"truth dataset has no 'sm_true' (found {sorted(map(str, self.truth_ds.data_vars))})")
        return self.truth_ds["sm_true"]

    @property
    def aridity(self) -> xr.DataArray | None:
        """The twin's aridity index P/PET (dimensionless), for the climate classes (None on real data)."""
        return find_aridity(self.truth_ds)


def set_torch_threads(cfg) -> int:
    """Apply ``training.torch_threads`` (0 leaves torch's default); returns the threads torch now uses."""
    n = int(cfg.training.torch_threads)
    if n > 0:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def open_inputs(ctx) -> StageInputs:
    """Set the torch threads, open the cube (lazily) and, on the twin, ``data.truth_path``."""
    cfg = ctx.cfg
    threads = set_torch_threads(cfg)
    return StageInputs(open_cube(ctx.paths.cube), ctx.open_truth(), threads)


# ----------------------------------------------------------------------------------------------------------
# One model
# ----------------------------------------------------------------------------------------------------------
def sample_counts(samples: Samples) -> dict:
    """Windows and pixels per split of ``samples`` and the test period (one row of a ``*_samples`` table)."""
    return {"split": samples.split, "window": samples.window, "n_train": len(samples.train),
            "n_val": len(samples.val), "n_test": len(samples.test),
            "train_pixels": int(len(np.unique(samples.train[:, PIXEL]))),
            "test_pixels": int(len(np.unique(samples.test[:, PIXEL]))),
            "shared_pixels": int(len(np.intersect1d(samples.train[:, PIXEL], samples.test[:, PIXEL]))),
            "test_first": str(samples.dates("test").min().date()), "test_last": str(samples.dates("test").max().date())}


def reference_values(samples: Samples, truth: xr.DataArray | None) -> list[tuple[str, np.ndarray]]:
    """``[('label', labels), ('truth', truth)]`` of the test windows (m3 m-3, float64); no truth on real data."""
    refs = [("label", samples.targets("test").astype(np.float64))]
    if truth is not None:
        refs.append(("truth", samples.values_at(truth, "test").astype(np.float64)))
    return refs


# ----------------------------------------------------------------------------------------------------------
# The comparison
# ----------------------------------------------------------------------------------------------------------
@dataclass
class ComparisonResult:
    """Outcome of :func:`compare_models` on one set of samples.

    Attributes
    ----------
    metrics : pandas.DataFrame
        Test metrics with 95 % CIs: ``split, window, model, reference, n, r2, r2_lo, r2_hi, r, ..., bias_hi``.
    timing : pandas.DataFrame
        ``split, model, n_train, n_parameters, flops_per_window, epochs_run, best_epoch, stop_reason, final_lr,
        train_seconds, train_windows_per_s, inference_windows_per_s, threads, device`` (seconds and rates vary
        between runs; for XGBoost epochs are boosting rounds, ``n_parameters`` counts tree nodes, ``final_lr`` and
        ``train_windows_per_s`` are NaN; ``device``: where the model trained, ``training.device``; the inference
        rate is measured on the CPU).
    by_bin : pandas.DataFrame
        Metrics per reference-SM bin with CIs: ``split, model, reference, bin, lo, hi, n, ...``.
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
        :func:`sample_counts` of the samples.
    preprocessing : dict
        ``normalizer`` (:meth:`glass_sm.data.Normalizer.to_dict`), ``features`` and ``window_mode`` of the samples,
        saved with each model (:meth:`save_models`) so that a later stage can feed it its own inputs (stage 03
        reloads ``atlstm_cl`` with :func:`glass_sm.models.load_checkpoint`).
    """

    metrics: pd.DataFrame
    timing: pd.DataFrame
    by_bin: pd.DataFrame
    predictions: pd.DataFrame
    fits: dict
    split: str
    window: int
    samples: dict = field(default_factory=dict)
    preprocessing: dict = field(default_factory=dict)

    @property
    def models(self) -> dict:
        """The trained models by name."""
        return {k: f.model for k, f in self.fits.items()}

    @property
    def histories(self) -> pd.DataFrame:
        """Loss per epoch of the torch models: ``epoch, train_loss, val_loss, seconds, model``."""
        parts = [f.history.assign(model=k) for k, f in self.fits.items() if "epoch" in f.history]
        if not parts:
            return pd.DataFrame(columns=list(TABLES["model_histories"].columns))
        return pd.concat(parts, ignore_index=True)

    def subset(self, names: Sequence[str]) -> "ComparisonResult":
        """The same result restricted to the models ``names``."""
        keep = list(names)
        return ComparisonResult(
            self.metrics[self.metrics.model.isin(keep)].reset_index(drop=True),
            self.timing[self.timing.model.isin(keep)].reset_index(drop=True),
            self.by_bin[self.by_bin.model.isin(keep)].reset_index(drop=True),
            self.predictions[[c for c in self.predictions.columns if c not in self.fits or c in keep]],
            {k: v for k, v in self.fits.items() if k in keep}, self.split, self.window, dict(self.samples),
            dict(self.preprocessing))

    def save_models(self, paths: RunPaths, prefix: str = "compare", fingerprints: Mapping[str, str] | None = None
                    ) -> list:
        """Write each model to ``models/<prefix>_<split>_<name>.pt`` (torch, with :attr:`preprocessing` in its
        ``extra``) or ``.json`` (XGBoost). A torch model with an entry in ``fingerprints``
        (:func:`glass_sm.fitting.fit_fingerprint`) also stores its fit (``extra['fit']``,
        :func:`glass_sm.fitting.fit_record`), so that a later stage repeating the same fit reads it instead."""
        out = []
        fingerprints = dict(fingerprints or {})
        for name, fit in self.fits.items():
            stem = f"{prefix}_{self.split}_{name}"
            if is_torch_model(name):
                extra = {"split": self.split, "window": self.window, "purpose": "stage 02 model comparison",
                         **self.preprocessing}
                if name in fingerprints:
                    extra["fit"] = fit_record(fit, fingerprints[name])
                out.append(save_checkpoint(paths.model_file(stem, ".pt"), fit.model, name, fit.hparams, extra))
            else:
                out.append(fit.model.save(paths.model_file(stem, ".json")))
        return out


def compare_models(samples: Samples, cfg, truth: xr.DataArray | None = None, progress: bool = True,
                   names: Sequence[str] | None = None, seed: int | None = None,
                   fits: Mapping[str, FitResult] | None = None) -> ComparisonResult:
    """Train every model of ``models.names`` on identical samples and score them on the test split.

    Parameters
    ----------
    samples : Samples
        Training, validation and test windows shared by all models.
    cfg : glass_sm.config.Config
        Models, ``training.*``, ``models.sm_bins`` and ``models.rate_windows``.
    truth : xarray.DataArray, optional
        The twin's ``sm_true(time, lat, lon)`` (m3 m-3); adds the ``'truth'`` reference.
    progress : bool
        One line per model.
    names : sequence of str, optional
        Models (default ``models.names``).
    seed : int, optional
        Default ``run.seed``.
    fits : mapping, optional
        The fits of ``names`` on these samples, already trained (:func:`fit_comparison`); default: train them here.

    Returns
    -------
    ComparisonResult
    """
    names = list(names if names is not None else cfg.models.names)
    seed = int(cfg.run.seed if seed is None else seed)
    n_boot, bins = int(cfg.training.n_boot), list(cfg.models.sm_bins)
    idx = samples.test
    refs = reference_values(samples, truth)
    preds = pd.DataFrame({"pixel": idx[:, PIXEL], "day": idx[:, DAY], "date": samples.dates("test"),
                          "lat": samples.lat[idx[:, PIXEL]], "lon": samples.lon[idx[:, PIXEL]],
                          "label": refs[0][1], "truth": refs[1][1] if truth is not None else np.nan})
    x_rate = rate_windows(samples, int(cfg.models.rate_windows))
    given, fits, m_rows, t_rows, b_rows = fits, {}, [], [], []
    if given is not None:
        missing = [n for n in names if n not in given]
        if missing:
            raise ValueError(f"compare_models: fits= lacks the model(s) {missing}")
        fitted = [given[n] for n in names]
    else:
        fitted = fit_models([(name, samples, {"seed": seed}) for name in names], cfg, progress=progress)
    for name, fit in zip(names, fitted):
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
                if is_torch_model(name) else np.nan)
        t_rows.append({"split": samples.split, "model": name, "n_train": len(samples.train),
                       "n_parameters": fit.n_parameters, "flops_per_window": fit.flops,
                       "epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch,
                       "stop_reason": fit.stop_reason, "final_lr": fit.final_lr,
                       "train_seconds": fit.train_seconds,
                       "train_windows_per_s": seen / fit.train_seconds if fit.train_seconds > 0 else np.nan,
                       "inference_windows_per_s": rate, "threads": torch.get_num_threads(), "device": fit.device})
        if progress:
            r = m_rows[-len(refs)]
            print(f"{samples.split:>6} {name:>14}: RMSE vs label {r['rmse']:.4f} m3 m-3, R2 {r['r2']:.3f}; "
                  f"{fit.epochs_run} epochs/rounds in {fit.train_seconds:.1f} s ({fit.stop_reason})", flush=True)
    preprocessing = {"normalizer": samples.normalizer.to_dict(), "features": list(samples.feature_names),
                     "window_mode": samples.window_mode}
    return ComparisonResult(pd.DataFrame(m_rows), pd.DataFrame(t_rows), pd.concat(b_rows, ignore_index=True),
                            preds, fits, samples.split, samples.window, sample_counts(samples), preprocessing)


def input_baseline(samples: Samples, cfg, variable: str = "sm_era5land",
                   truth: xr.DataArray | None = None) -> pd.DataFrame:
    """Test metrics of a raw cube input taken as the estimate (e.g. ERA5-Land SM of the target day, m3 m-3).

    The yardstick every model should beat: same test windows, references, bootstrap and columns as
    :attr:`ComparisonResult.metrics` (``model`` = ``'<variable> (input)'``).
    """
    seed, n_boot = int(cfg.run.seed), int(cfg.training.n_boot)
    est = samples.values_at(samples.cube[variable], "test").astype(np.float64)
    return pd.DataFrame([{"split": samples.split, "window": samples.window, "model": f"{variable} (input)",
                          "reference": r, **evaluate(est, ref, n_boot, seed)}
                         for r, ref in reference_values(samples, truth)])


@dataclass
class SplitStrategyResult:
    """:func:`run_split_strategies`: the tables of each strategy stacked (column ``split``) and the results."""

    metrics: pd.DataFrame
    timing: pd.DataFrame
    by_bin: pd.DataFrame
    samples: pd.DataFrame
    results: dict


def run_split_strategies(cube: xr.Dataset, cfg, strategies: Sequence[str] | None = None,
                         names: Sequence[str] | None = None, truth: xr.DataArray | None = None,
                         progress: bool = True, reuse: dict | None = None,
                         fits: Mapping[str, tuple[Samples, Mapping[str, FitResult]]] | None = None
                         ) -> SplitStrategyResult:
    """Repeat the comparison for several split strategies (random, site-independent, year-independent).

    Each strategy gets its own samples (:func:`glass_sm.data.build_samples` with ``split=...``, the rest of
    ``samples.*`` unchanged, so the window, features and subsampling caps are identical).

    Parameters
    ----------
    cube : xarray.Dataset
        The stage-01 cube.
    cfg : glass_sm.config.Config
        As :func:`compare_models`.
    strategies : sequence of str, optional
        Default ``models.split_strategies``.
    names : sequence of str, optional
        Models per strategy (default ``models.split_models`` or, when empty, ``models.names``).
    truth : xarray.DataArray, optional
        As :func:`compare_models`.
    progress : bool
        Progress output.
    reuse : dict, optional
        ``{strategy: ComparisonResult}`` already computed (e.g. the main comparison); kept when it holds every
        model of ``names``, otherwise that strategy is trained on fresh samples.
    fits : mapping, optional
        ``{strategy: (samples, {model: FitResult})}`` trained beforehand (:attr:`PlannedFits.splits`): that
        strategy is scored with these samples and fits instead of being trained here.

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
            res = prev.subset(names)
        elif fits is not None and strategy in fits:
            s, done = fits[strategy]
            res = compare_models(s, cfg, truth=truth, progress=progress, names=names, fits=done)
            s.release()
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


@dataclass
class PlannedFits:
    """Every fit of stage 02, trained together by :func:`fit_comparison`.

    Attributes
    ----------
    main : dict
        :class:`FitResult` per model of the main comparison (``models.names`` on the main samples).
    splits : dict
        ``{strategy: (samples, {model: FitResult})}`` for each other split strategy (``models.split_models`` on
        that strategy's own samples), as :func:`run_split_strategies` takes them.
    """

    main: dict
    splits: dict = field(default_factory=dict)


def fit_comparison(samples: Samples, cube: xr.Dataset, cfg, names: Sequence[str] | None = None,
                   strategies: Sequence[str] | None = None, split_names: Sequence[str] | None = None,
                   seed: int | None = None) -> PlannedFits:
    """Train the main comparison and the split-strategy refits in **one** pool of ``training.parallel_fits``
    processes (:func:`glass_sm.fitting.fit_models`, longest fits first).

    The same fits as :func:`compare_models` and :func:`run_split_strategies` would train one comparison after the
    other, with identical results (each fit is seeded in its own process); trained together the short fits of one
    comparison (XGBoost) fill a worker while the long ones of another run, where one comparison at a time left a
    worker idle at its end. The samples of every other strategy are built (and their feature arrays loaded) first,
    so their memory is held for the duration of the fits.

    Parameters
    ----------
    samples : Samples
        The main comparison's samples (split ``samples.split``).
    cube : xarray.Dataset
        The stage-01 cube (the other strategies' samples are built from it).
    cfg : glass_sm.config.Config
        As :func:`compare_models` and :func:`run_split_strategies`.
    names, strategies, split_names, seed : optional
        Defaults ``models.names``, ``models.split_strategies``, ``models.split_models`` (or ``names`` when empty),
        ``run.seed``.

    Returns
    -------
    PlannedFits
    """
    names = list(names if names is not None else cfg.models.names)
    strategies = list(strategies if strategies is not None else cfg.models.split_strategies)
    split_names = list(split_names if split_names is not None else (cfg.models.split_models or names))
    seed = int(cfg.run.seed if seed is None else seed)
    others = {}
    for strategy in strategies:
        if strategy == samples.split and all(n in names for n in split_names):
            continue  # run_split_strategies reuses the main comparison for it
        others[strategy] = samples if strategy == samples.split else build_samples(cube, cfg, split=strategy)
    jobs = [(name, samples, {"seed": seed}) for name in names]
    jobs += [(name, s, {"seed": seed}) for s in others.values() for name in split_names]
    fitted = iter(fit_models(jobs, cfg))
    main = {name: next(fitted) for name in names}
    splits = {strategy: (s, {name: next(fitted) for name in split_names}) for strategy, s in others.items()}
    return PlannedFits(main, splits)


def main_reference(metrics: pd.DataFrame) -> str:
    """``'truth'`` when a metrics table has rows against the twin's truth, else ``'label'``."""
    return "truth" if (metrics.reference == "truth").any() else "label"


# ----------------------------------------------------------------------------------------------------------
# Stage entry points: take the StageContext, write the stage's tables, return them
# ----------------------------------------------------------------------------------------------------------
def comparison_samples(ctx, inputs: StageInputs) -> tuple[Samples, pd.DataFrame]:
    """Samples of ``samples.*`` loaded in memory, and their counts (table ``model_comparison_samples``)."""
    samples = build_samples(inputs.cube, ctx.cfg)
    samples.arrays()
    table = pd.DataFrame([sample_counts(samples)])
    write_table(ctx.paths, "model_comparison_samples", table)
    return samples, table


def fit_all(ctx, inputs: StageInputs, samples: Samples) -> PlannedFits:
    """Every fit of the stage (main comparison and split-strategy refits) in one pool (:func:`fit_comparison`);
    :func:`train_and_score` and :func:`split_strategies` score them."""
    return fit_comparison(samples, inputs.cube, ctx.cfg)


def train_and_score(ctx, inputs: StageInputs, samples: Samples, progress: bool = False,
                    fits: PlannedFits | None = None) -> ComparisonResult:
    """Train and score every model; write ``model_comparison``, ``model_timing``, ``metrics_by_sm_bin``,
    ``model_histories``, ``model_comparison_predictions`` and the models (``models/compare_<split>_<name>``), each
    torch model with its fit fingerprint (stage 03 reads the ``atlstm`` fit when its production model is the same
    fit, :func:`glass_sm.fitting.load_fit`). With ``fits`` (:func:`fit_all`) the models are scored, not trained."""
    result = compare_models(samples, ctx.cfg, truth=inputs.truth, progress=progress,
                            fits=fits.main if fits is not None else None)
    for name, table in (("model_comparison", result.metrics), ("model_timing", result.timing),
                        ("metrics_by_sm_bin", result.by_bin), ("model_histories", result.histories),
                        ("model_comparison_predictions", result.predictions)):
        write_table(ctx.paths, name, table)
    seed = int(ctx.cfg.run.seed)
    result.save_models(ctx.paths, fingerprints={name: fit_fingerprint(name, samples, ctx.cfg, seed=seed)
                                                for name in result.fits if is_torch_model(name)})
    return result


def era5land_yardstick(ctx, inputs: StageInputs, samples: Samples) -> pd.DataFrame:
    """The raw ERA5-Land SM of the target day scored like a model (table ``era5land_input_metrics``)."""
    table = input_baseline(samples, ctx.cfg, "sm_era5land", inputs.truth)
    write_table(ctx.paths, "era5land_input_metrics", table)
    return table


def versus_baseline(ctx, result: ComparisonResult) -> pd.DataFrame:
    """Paired differences of every model to XGBoost, overall and per SM bin (table ``model_vs_xgboost``)."""
    cfg = ctx.cfg
    table = pd.DataFrame()
    if BASELINE in result.fits:
        table = baseline_differences(result.predictions, list(result.fits), BASELINE, bins=cfg.models.sm_bins,
                                     n_boot=cfg.training.n_boot, seed=cfg.run.seed)
    if table.empty:
        table = pd.DataFrame(columns=list(TABLES["model_vs_xgboost"].columns))
    write_table(ctx.paths, "model_vs_xgboost", table)
    return table


def split_strategies(ctx, inputs: StageInputs, result: ComparisonResult, progress: bool = False,
                     fits: PlannedFits | None = None) -> SplitStrategyResult:
    """The comparison for each split strategy, reusing ``result`` (and the refits of ``fits``, :func:`fit_all`);
    writes ``split_strategies*`` (4 tables)."""
    splits = run_split_strategies(inputs.cube, ctx.cfg, truth=inputs.truth, progress=progress,
                                  reuse={result.split: result}, fits=fits.splits if fits is not None else None)
    for name, table in (("split_strategies", splits.metrics), ("split_strategies_timing", splits.timing),
                        ("split_strategies_by_sm_bin", splits.by_bin), ("split_strategies_samples", splits.samples)):
        write_table(ctx.paths, name, table)
    return splits


def label_ceiling_table(ctx, splits: SplitStrategyResult) -> pd.DataFrame:
    """The label ceiling per split strategy (table ``label_ceiling``): the labels' own accuracy against the truth
    beside each model's against label and truth (:func:`glass_sm.evaluation.ceiling.label_ceiling`).

    Computed from the in-memory test predictions of every strategy (only the main split's are written to disk).
    Without a truth (real data) the truth rows are absent and the table holds the models against the labels.
    """
    cfg = ctx.cfg
    table = label_ceiling({s: r.predictions for s, r in splits.results.items()}, list(cfg.models.names),
                          n_boot=int(cfg.training.n_boot), seed=int(cfg.run.seed))
    write_table(ctx.paths, "label_ceiling", table)
    return table


STAGE02_CLAIMS = ("C1", "C2", "C3", "C6")
"""The paper's claims that stage 02's tables can test (C4 attention and C5 sequence length need stage 03)."""


def claims_so_far(ctx) -> pd.DataFrame:
    """The claims of :data:`STAGE02_CLAIMS`, from the tables this stage wrote (read back from ``tables/``).

    Shown in the notebook only: the run's table ``paper_claims`` is written by stage 03 with every claim, by the
    same function on the same files, so these rows reappear there unchanged.
    """
    tables = {name: read_table(ctx.paths, name) for name in
              ("model_comparison_predictions", "model_comparison", "split_strategies", "model_timing",
               "label_ceiling")}
    claims = paper_claims(tables, n_boot=int(ctx.cfg.training.n_boot), seed=int(ctx.cfg.run.seed),
                          sm_bins=list(ctx.cfg.models.sm_bins))
    return claims[claims.claim_id.isin(STAGE02_CLAIMS)].reset_index(drop=True)


def read_tables(ctx) -> dict[str, pd.DataFrame]:
    """Every table stage 02 wrote, by contract name (what the prose functions below read)."""
    return {spec.name: read_table(ctx.paths, spec.name) for spec in tables_of(STAGE)}


# ----------------------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------------------
def figure_density(ctx, result: ComparisonResult):
    """Predicted vs reference density per model (``figures/02_density_scatter``), as stage 06 draws it."""
    fig = fig_model_density(result.predictions, result.metrics, models=list(ctx.cfg.models.names),
                            label=ctx.data_label, gridsize=60)
    ctx.savefig(fig, "02_density_scatter")
    return fig


def figures_by_bin(ctx, result: ComparisonResult) -> dict:
    """RMSE and bias per SM bin, one figure per reference (``02_metrics_by_sm_bin``, ``..._truth``)."""
    figs = {}
    for ref, name in (("label", "02_metrics_by_sm_bin"), ("truth", "02_metrics_by_sm_bin_truth")):
        if (result.by_bin.reference == ref).any():
            figs[ref] = fig_accuracy_by_sm(result.by_bin, list(ctx.cfg.models.names), references=(ref,),
                                           metrics=("rmse", "bias"), label=ctx.data_label)
            ctx.savefig(figs[ref], name)
    return figs


def plot_split_strategies(metrics: pd.DataFrame, reference: str = "label", metric: str = "rmse",
                          data_label: str = ""):
    """A metric (95 % CI) per model, one marker series per split strategy (``split_strategies`` table)."""
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
    ax.set_xticklabels([display_name(m) for m in models])
    unit = "" if metric in ("r", "r2") else " (m$^3$ m$^{-3}$)"
    ax.set_ylabel({"r2": "R$^2$", "r": "R", "ubrmse": "ubRMSE"}.get(metric, metric.upper()) + unit
                  + f" vs {reference}")
    ax.legend(fontsize=7)
    if data_label:
        ax.set_title(f"Split strategies (test sets) - {data_label}", fontsize=9)
    return fig


def figure_split_strategies(ctx, metrics: pd.DataFrame):
    """RMSE per model and split strategy (``split_strategies`` table) against the truth (twin) or the labels
    (``02_split_strategies``)."""
    fig = plot_split_strategies(metrics, main_reference(metrics), "rmse", data_label=ctx.data_label)
    ctx.savefig(fig, "02_split_strategies")
    return fig


# ----------------------------------------------------------------------------------------------------------
# Prose: every number comes from the stage's tables (``read_tables``)
# ----------------------------------------------------------------------------------------------------------
def _ci(row, m: str, nd: int = 4) -> str:
    return f"{row[m]:.{nd}f} [{row[m + '_lo']:.{nd}f}, {row[m + '_hi']:.{nd}f}]"


def _delta(r) -> str:
    return f"{r.d_rmse:+.4f} [{r.d_rmse_lo:+.4f}, {r.d_rmse_hi:+.4f}]"


def ranking_text(tables: Mapping[str, pd.DataFrame], sm_bins: Sequence[float]) -> str:
    """Markdown: ranking by RMSE per reference and how many models beat XGBoost, overall and when wet.

    ``tables``: :func:`read_tables` (``model_comparison``, ``model_vs_xgboost``); ``sm_bins``: edges, m3 m-3.
    """
    metrics, diffs = tables["model_comparison"], tables["model_vs_xgboost"]
    wet = sm_bin_labels(sm_bins)[-1]
    lines = []
    for ref in [r for r in ("label", "truth") if (metrics.reference == r).any()]:
        t = metrics[metrics.reference == ref].set_index("model")
        order = t.sort_values("rmse").index.tolist()
        lines.append(f"**Against the {ref}** ({int(t.n.iloc[0])} test windows, {t.split.iloc[0]} split): ranking by "
                     "RMSE " + " < ".join(f"{display_name(m)} ({t.loc[m, 'rmse']:.4f})" for m in order)
                     + " m³ m⁻³; R² " + ", ".join(f"{display_name(m)} {_ci(t.loc[m], 'r2', 3)}" for m in order) + ".")
        if not len(diffs):
            continue
        d = diffs[diffs.reference == ref]
        overall = d[d.bin == "all"].set_index("model")
        wet_d = d[d.bin == wet].set_index("model")
        n_better = int((overall.verdict == "better").sum())
        lines.append(f"{n_better} of {len(overall)} models beat XGBoost (the target-day benchmark) overall (paired 95 % interval of ΔRMSE "
                     "below 0): " + "; ".join(f"{display_name(m)} ΔRMSE {_delta(r)} ({r.verdict})"
                                              for m, r in overall.iterrows()) + ".")
        if len(wet_d):
            lines.append(f"In the wet class {wet} m³ m⁻³ (n = {int(wet_d.n.iloc[0])}): "
                         + "; ".join(f"{display_name(m)} {_delta(r)} ({r.verdict})" for m, r in wet_d.iterrows())
                         + ".")
    return "\n\n".join(lines)


def _split_verdict(sm: pd.DataFrame, ref: str) -> list[str]:
    """One sentence per non-random split strategy: is it measurably harder than random windows?"""
    sp = sm.pivot_table(index="model", columns="split", values="rmse")
    half_ci = float(((sm.rmse_hi - sm.rmse_lo) / 2).mean())
    lines = []
    if "random" not in sp.columns:
        return lines
    for other in [c for c in sp.columns if c != "random"]:
        gap = (sp[other] - sp["random"]).dropna()
        if (gap.abs() < half_ci).all():
            verdict = (f"all within the typical half-width of a single RMSE interval ({half_ci:.4f}): on this run the "
                       f"{other} split is not measurably harder than random windows")
        elif (gap > 0).all():
            verdict = f"every model does worse on held-out {other}s than on random windows: the random split flatters"
        else:
            verdict = "mixed signs: no consistent optimism of the random split"
        lines.append(f"*Split strategies ({other} vs random, against the {ref}).* RMSE differences "
                     + ", ".join(f"{display_name(m)} {v:+.4f}" for m, v in gap.items()) + f" m³ m⁻³ — {verdict}.")
    return lines


def mechanisms_text(tables: Mapping[str, pd.DataFrame]) -> str:
    """Markdown: what learning buys over ERA5-Land, label noise, spread of the models, cost, split strategies.

    ``tables``: :func:`read_tables` (``model_comparison``, ``era5land_input_metrics``,
    ``model_comparison_predictions``, ``model_timing``, ``split_strategies``).
    """
    metrics, timing = tables["model_comparison"], tables["model_timing"]
    lab = metrics[metrics.reference == "label"].set_index("model")
    e5 = tables["era5land_input_metrics"].set_index("reference")
    lines = [f"*What learning buys.* The raw ERA5-Land soil moisture of the target day scores RMSE "
             f"{e5.loc['label', 'rmse']:.4f} m³ m⁻³ (bias {e5.loc['label', 'bias']:+.4f}) against the labels"
             + (f" and {e5.loc['truth', 'rmse']:.4f} against the truth" if "truth" in e5.index else "")
             + f"; the models bring it down to {lab.rmse.min():.4f}–{lab.rmse.max():.4f} against the labels."]
    ref_main = main_reference(metrics)
    if ref_main == "truth":
        preds = tables["model_comparison_predictions"]
        tru = metrics[metrics.reference == "truth"].set_index("model")
        noise_sd = float(np.nanstd(preds.label - preds.truth))
        implied = np.sqrt(np.clip(lab.rmse**2 - tru.rmse**2, 0, None))
        lines.append(
            f"*Label noise is a small part of the error.* Labels differ from the truth by {noise_sd:.4f} m³ m⁻³ (sd "
            f"over the test windows). If model and label errors are independent they add in quadrature, "
            f"RMSE²(label) ≈ RMSE²(truth) + sd²(label noise); the tables give √(RMSE²(label) − RMSE²(truth)) = "
            f"{implied.min():.4f}–{implied.max():.4f} across models, consistent with it. Every model's error against "
            f"the truth ({tru.rmse.min():.4f}–{tru.rmse.max():.4f}) is therefore mostly its own: the inputs do not "
            "determine the surface soil moisture exactly (reanalysis rain errors, retrieval noise, gap filling).")
    best = lab.rmse.idxmin()
    line = f"*How far apart are the models?* The best model against the labels is {display_name(best)}"
    if BASELINE in lab.index:
        line += (f"; the whole field spans {float(lab.rmse.max() - lab.rmse.min()):.4f} m³ m⁻³ of RMSE, to compare "
                 f"with the width of a single model's interval (XGBoost: "
                 f"{float(lab.loc[BASELINE, 'rmse_hi'] - lab.loc[BASELINE, 'rmse_lo']):.4f})")
    lines.append(line + ".")
    tim = timing.set_index("model")
    lines.append(
        "*Cost.* Training took "
        + ", ".join(f"{display_name(m)} {tim.loc[m, 'train_seconds']:.0f} s" for m in tim.index)
        + f" on this machine ({int(timing.threads.iloc[0])} torch thread(s)); inference runs at "
        + ", ".join(f"{display_name(m)} {tim.loc[m, 'inference_windows_per_s']:.3g}" for m in tim.index)
        + " windows per second (timings vary between runs; `tables/model_timing.csv`).")
    split_metrics = tables["split_strategies"]
    lines += _split_verdict(split_metrics[split_metrics.reference == ref_main], ref_main)
    return "\n\n".join(lines)


def budget_text(tables: Mapping[str, pd.DataFrame], cfg) -> str:
    """Markdown: does any deep model beat XGBoost on this run, and why did each model stop training?

    ``tables``: :func:`read_tables` (``model_timing`` with ``stop_reason``); ``cfg``: ``training.epochs``,
    ``training.max_batches_per_epoch`` and the XGBoost round caps (:func:`glass_sm.models.model_hparams`).
    """
    metrics, diffs, hist = tables["model_comparison"], tables["model_vs_xgboost"], tables["model_histories"]
    tim = tables["model_timing"].set_index("model")
    ref_main = main_reference(metrics)
    last = hist.groupby("model").tail(2).groupby("model").val_loss.agg(["first", "last"])
    change = (last["last"] / last["first"] - 1) * 100
    at_end = tim.loc[[m for m in cfg.models.names if is_torch_model(m) and m in tim.index]]
    lines = []
    if len(diffs):
        ov = diffs[(diffs.reference == ref_main) & (diffs.bin == "all")].set_index("model")
        xgb_rmse = float(metrics[(metrics.model == BASELINE) & (metrics.reference == ref_main)].rmse.iloc[0])
        n_better = int((ov.verdict == "better").sum())
        if n_better == len(ov):
            lines.append(f"**On this run every other model beats XGBoost** against the {ref_main}, as in the paper.")
        elif n_better == 0:
            lines.append(
                f"**On this run no model beats XGBoost** against the {ref_main}, unlike the paper: ΔRMSE "
                f"{ov.d_rmse.min():+.4f} to {ov.d_rmse.max():+.4f} m³ m⁻³, i.e. {100 * ov.d_rmse.min() / xgb_rmse:.1f}–"
                f"{100 * ov.d_rmse.max() / xgb_rmse:.1f} % of XGBoost's RMSE of {xgb_rmse:.4f}.")
        else:
            lines.append(f"**On this run {n_better} of {len(ov)} models beat XGBoost** against the {ref_main}.")
    reasons = tim["stop_reason"] if "stop_reason" in tim else pd.Series("unknown", index=tim.index)
    parts = []
    for m in tim.index:
        unit = "epochs" if is_torch_model(m) else "rounds"
        cap = int(cfg.training.epochs) if is_torch_model(m) else int(model_hparams(m, cfg)["n_estimators"])
        parts.append(f"{display_name(m)} {reasons[m]} after {int(tim.loc[m, 'epochs_run'])} of at most {cap} {unit} "
                     f"(best {int(tim.loc[m, 'best_epoch'])})")
    line = ("*Training budget.* Why each fit ended (`stop_reason` of `model_timing`): " + "; ".join(parts)
            + f". An epoch is at most {cfg.training.max_batches_per_epoch or 'all'} batches of "
            f"{cfg.training.batch_size} windows.")
    if len(at_end) and len(change):
        line += (" Over the last epoch the validation loss changed by "
                 + ", ".join(f"{display_name(m)} {change[m]:+.1f} %" for m in at_end.index if m in change.index)
                 + " (negative: still falling).")
    capped = [m for m in tim.index if reasons[m] == "budget cap"]
    if capped:
        line += (" " + ", ".join(display_name(m) for m in capped) + " stopped at the budget cap, still improving: "
                 "a lower bound on what they can reach (`params/full.yaml` holds a budget that lets them converge).")
    else:
        line += " No model stopped at the budget cap."
    lines.append(line)
    return "\n\n".join(x for x in lines if x)
