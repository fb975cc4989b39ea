"""Stage 03: the AtLSTM — sequence length, the production model, attention by lag, a worked example, importance.

The attention analysis runs for both AtLSTM heads (:class:`glass_sm.models.AtLSTMRegressor`): the production
model (head reading the attention context alone, ``model='atlstm'`` in the attention tables) and, when stage 02
trained it, the ``[c; h_L]`` ablation ``atlstm_cl`` reloaded from ``models/compare_<samples.split>_atlstm_cl.pt``,
on the same test windows.

The notebook ``03_atlstm_training`` calls the stage functions (they take the :class:`~glass_sm.stages.StageContext`,
write the stage's tables through :func:`glass_sm.contract.write_table` and the checkpoint to
``ctx.paths.checkpoint``, and return what they computed). Models are fitted exactly as in stage 02
(:func:`glass_sm.fitting.fit_model`); one set of samples, built with the longest window needed, serves
the whole stage, shorter windows being cut from it (:meth:`glass_sm.data.Samples.with_window`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import xarray as xr

from glass_sm.contract import read_table, write_table
from glass_sm.data import DAY, PIXEL, Samples, build_samples
from glass_sm.evaluation.claims import paper_claims
from glass_sm.evaluation.skill import METRIC_NAMES, evaluate
from glass_sm.figures.paper import fig_attention, fig_sequence_length
from glass_sm.interpret.attention import attention_by_lag, attention_groups, attention_summary, example_window
from glass_sm.interpret.importance import permutation_importance
from glass_sm.models import LoadedModel, display_name, load_checkpoint, save_production_checkpoint
from glass_sm.models.checkpoint import CheckpointMismatchError
from glass_sm.paths import RunPaths, atomic_write
from glass_sm.fitting import fit_fingerprint, fit_model, fit_models, load_fit, predict_split, rate_windows
from glass_sm.stages.s02_models import (StageInputs, main_reference, open_inputs, reference_values, sample_counts,
                                        set_torch_threads)
from glass_sm.training import measure_inference_rate, predict_with_attention

__all__ = ["CONFIG_SECTIONS", "STAGE", "StageInputs", "SequenceLengthResult", "AttentionResult", "open_inputs",
           "set_torch_threads", "sequence_length_experiment", "train_final_atlstm", "model_card_sections",
           "atlstm_samples", "sequence_length", "production_model", "stage02_checkpoint", "attention",
           "worked_example", "feature_importance", "figure_sequence_length", "plot_loss_curve", "figure_final_loss",
           "figure_attention", "plot_example_window", "figure_example", "plot_feature_importance", "figure_importance",
           "sequence_length_text", "attention_text", "example_text", "importance_text"]

STAGE = "03_atlstm_training"
CONFIG_SECTIONS = ("run", "domain", "period", "data", "samples", "models", "training", "atlstm", "figures")
"""Parameter sections stage 03 reads (directly or through the functions it calls)."""

ATTENTION_TABLES = {"overall": "attention_by_lag", "SM level": "attention_by_lag_sm",
                    "season": "attention_by_lag_season", "climate": "attention_by_lag_climate"}
"""Grouping title -> table name of the attention tables."""

FINAL_MODEL = "atlstm"
"""``model`` of the production AtLSTM's rows in the attention tables."""

ABLATION_MODEL = "atlstm_cl"
"""``model`` of the stage-02 ``[c; h_L]`` ablation's rows in the attention tables."""


# ----------------------------------------------------------------------------------------------------------
# Sequence length
# ----------------------------------------------------------------------------------------------------------
@dataclass
class SequenceLengthResult:
    """:func:`sequence_length_experiment`: deterministic ``metrics`` and run-dependent ``timing``."""

    metrics: pd.DataFrame
    timing: pd.DataFrame


def sequence_length_experiment(samples: Samples, cfg, lengths: Sequence[int] | None = None,
                               models: Sequence[str] = ("atlstm", "lstm"), truth: xr.DataArray | None = None,
                               progress: bool = True, epochs: int | None = None) -> SequenceLengthResult:
    """Train each model with each window length on the *same* samples and score them on the same test windows.

    The samples must have a window at least as long as the longest length; :meth:`Samples.with_window` then gives
    nested windows ending at the same target days, so the targets and the normalization are identical across
    lengths and only the input history changes.

    Parameters
    ----------
    samples : Samples
        Built with ``window >= max(lengths)``.
    cfg : glass_sm.config.Config
        Model and training parameters.
    lengths : sequence of int, optional
        Window lengths, days (default ``atlstm.lengths``).
    models : sequence of str
        Registry keys.
    truth : xarray.DataArray, optional
        The twin's ``sm_true`` (adds ``reference='truth'`` rows), m3 m-3.
    progress : bool
        One line per run.
    epochs : int, optional
        Maximum epochs per run (default ``atlstm.length_epochs`` or ``training.epochs``).

    Returns
    -------
    SequenceLengthResult
        ``metrics``: ``model, window, reference, n, r2, r2_lo, ..., bias_hi``; ``timing``: ``model, window,
        epochs_run, best_epoch, stop_reason, final_lr, train_seconds, inference_windows_per_s, threads, device``
        (``device``: where the model trained, ``training.device``).

    Raises
    ------
    ValueError
        A length longer than the samples' window.
    """
    lengths = sorted(int(v) for v in (lengths if lengths is not None else cfg.atlstm.lengths))
    if max(lengths) > samples.window:
        raise ValueError(f"sequence_length_experiment: the samples' window is {samples.window} days but the longest "
                         f"length is {max(lengths)}; build the samples with window={max(lengths)}")
    epochs = epochs or cfg.atlstm.length_epochs or cfg.training.epochs
    seed, n_boot = int(cfg.run.seed), int(cfg.training.n_boot)
    refs = reference_values(samples, truth)
    m_rows, t_rows = [], []
    views = {L: samples.with_window(L) for L in lengths}
    jobs = [(name, views[L], {"seed": seed, "epochs": epochs}) for L in lengths for name in models]
    fitted = iter(fit_models(jobs, cfg))  # side by side in training.parallel_fits processes; same results
    for L in lengths:
        s = views[L]
        x_rate = rate_windows(s, min(int(cfg.models.rate_windows), 5000))
        for name in models:
            fit = next(fitted)
            pred = predict_split(fit.model, s, "test", cfg.training.eval_batch_size)
            for ref_name, ref in refs:
                m_rows.append({"model": name, "window": L, "reference": ref_name, **evaluate(pred, ref, n_boot, seed)})
            t_rows.append({"model": name, "window": L, "epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch,
                           "stop_reason": fit.stop_reason, "final_lr": fit.final_lr,
                           "train_seconds": fit.train_seconds,
                           "inference_windows_per_s": measure_inference_rate(fit.model, x_rate,
                                                                             cfg.training.eval_batch_size, 1),
                           "threads": torch.get_num_threads(), "device": fit.device})
            if progress:
                r = m_rows[-len(refs)]
                print(f"L={L:>3} {name:>7}: RMSE vs label {r['rmse']:.4f} m3 m-3, R2 {r['r2']:.3f} "
                      f"({fit.epochs_run} epochs, {fit.stop_reason}, {fit.train_seconds:.1f} s)", flush=True)
    return SequenceLengthResult(pd.DataFrame(m_rows), pd.DataFrame(t_rows))


# ----------------------------------------------------------------------------------------------------------
# The production AtLSTM and its model card
# ----------------------------------------------------------------------------------------------------------
def _plain_section(section) -> dict:
    return {k: str(v) if isinstance(v, (Path, dt.date)) else v for k, v in dataclasses.asdict(section).items()}


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
        :func:`glass_sm.models.save_production_checkpoint`, which renders the card).
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
                     f"AdamW lr {tr.get('lr')} (schedule {tr.get('lr_schedule')}, final lr {tr.get('final_lr')}), "
                     f"weight decay {tr.get('weight_decay')}, batch {tr.get('batch_size')}, "
                     f"at most {tr.get('epochs_max')} epochs (ran {tr.get('epochs_run')}, best epoch "
                     f"{tr.get('best_epoch')}, stopped: {tr.get('stop_reason')}), patience {tr.get('patience')}, "
                     f"seed {extra.get('seed')}"],
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


_CONTRACT_KEYS = ("features", "units", "normalizer", "window", "window_mode", "add_doy", "include_filled_flags",
                  "train_period", "split", "metrics", "source")


def train_final_atlstm(cube: xr.Dataset, cfg, *, samples: Samples | None = None, truth: xr.DataArray | None = None,
                       progress: bool = True, paths: RunPaths | None = None, reuse: Path | None = None) -> Path:
    """Train the production AtLSTM and write its checkpoint, metadata, model card and loss history.

    Window ``atlstm.final_window`` (mode ``samples.window_mode``), split ``atlstm.final_split``, at most
    ``atlstm.final_epochs`` (default ``training.epochs``) epochs with early stopping on the validation split.
    Files: ``paths.checkpoint`` (``models/atlstm_final.pt``: weights + everything to rebuild the preprocessing,
    ``book/design.md`` "Production checkpoints"), its ``.json`` sidecar, the model card ``paths.checkpoint_card``
    and the loss per epoch ``paths.checkpoint_history``.

    Parameters
    ----------
    cube : xarray.Dataset
        The stage-01 cube.
    cfg : glass_sm.config.Config
        All parameters.
    samples : Samples, optional
        Samples already built with split ``atlstm.final_split`` and a window at least ``atlstm.final_window``
        long (cut with :meth:`Samples.with_window`); default: built here.
    truth : xarray.DataArray, optional
        The twin's ``sm_true`` (m3 m-3): adds the test metrics against the truth.
    progress : bool
        Progress bar.
    paths : RunPaths, optional
        The run's layout (default from ``cfg``).
    reuse : Path, optional
        A checkpoint holding a fit record (stage 02's ``models/compare_<split>_atlstm.pt``): its model is taken
        instead of training when its fit fingerprint equals this fit's (:func:`glass_sm.fitting.load_fit`: same
        model, hyperparameters, seed, epoch cap, training settings, device, samples, normalizer and feature
        array), which gives the same weights to the bit; otherwise the model is trained here. The checkpoint's
        ``extra['training']`` records ``fit_fingerprint`` and ``fit_source``.

    Returns
    -------
    Path
        The checkpoint file.

    Notes
    -----
    Samples cut from a longer window (:meth:`Samples.with_window`) keep the longer window's normalizer, whose
    dynamic statistics are taken over the cells those windows read: the normalised inputs then differ slightly from
    stage 02's and the fit is not reused. :func:`production_model` therefore passes samples of the final window
    only (building them otherwise), so that the stage-02 fit of the same split is reused.
    """
    ac = cfg.atlstm
    if samples is None:
        samples = build_samples(cube, cfg, split=ac.final_split, window=ac.final_window)
    if samples.split != ac.final_split:
        raise ValueError(f"train_final_atlstm: samples use the {samples.split!r} split, atlstm.final_split is "
                         f"{ac.final_split!r}")
    if samples.window != ac.final_window:
        samples = samples.with_window(ac.final_window)
    paths = paths or RunPaths.from_config(cfg)
    seed, n_boot = int(cfg.run.seed), int(cfg.training.n_boot)
    epochs = ac.final_epochs or cfg.training.epochs
    fingerprint = fit_fingerprint("atlstm", samples, cfg, seed=seed, epochs=epochs)
    fit = load_fit(reuse, fingerprint) if reuse is not None else None
    source = f"reused: {Path(reuse).name} (same fit fingerprint)" if fit is not None else "trained in stage 03"
    if fit is None:
        fit = fit_model("atlstm", samples, cfg, seed=seed, epochs=epochs, progress=progress)
    pred = predict_split(fit.model, samples, "test", cfg.training.eval_batch_size)
    scores = {f"test_vs_{name}": evaluate(pred, ref, n_boot, seed) for name, ref in reference_values(samples, truth)}
    spec = samples.features
    train_days = samples.dates("train")
    check_idx = samples.test[np.linspace(0, len(samples.test) - 1, min(16, len(samples.test))).astype(np.int64)]
    check_pred = predict_split(fit.model, samples, check_idx, 64)
    extra = {
        "features": spec.names, "units": spec.units, "normalizer": samples.normalizer.to_dict(),
        "window": samples.window, "window_mode": samples.window_mode, "add_doy": bool(spec.doy),
        "include_filled_flags": bool(spec.flags),
        "train_period": [str(train_days.min().date()), str(train_days.max().date())],
        "split": samples.split, "split_info": _plain_info(samples.info), "counts": samples.counts,
        "metrics": scores, "source": str(cube.attrs.get("source", "synthetic twin" if cfg.is_twin else "real data")),
        "seed": seed,
        "training": {"epochs_max": int(ac.final_epochs or cfg.training.epochs), "epochs_run": fit.epochs_run,
                     "best_epoch": fit.best_epoch, "stop_reason": fit.stop_reason, "final_lr": fit.final_lr,
                     "lr_schedule": cfg.training.lr_schedule, "converge_tol": cfg.training.converge_tol,
                     "batch_size": cfg.training.batch_size, "lr": cfg.training.lr,
                     "weight_decay": cfg.training.weight_decay, "patience": cfg.training.patience,
                     "max_batches_per_epoch": cfg.training.max_batches_per_epoch, "device": fit.device,
                     "fit_fingerprint": fingerprint, "fit_source": source,
                     "n_train": len(samples.train), "n_val": len(samples.val), "n_test": len(samples.test)},
        "params": {k: _plain_section(getattr(cfg, k)) for k in ("run", "samples", "models", "training", "atlstm")},
        "self_check": {"pixel_day": check_idx.tolist(), "lat": samples.lat[check_idx[:, PIXEL]].tolist(),
                       "lon": samples.lon[check_idx[:, PIXEL]].tolist(),
                       "date": [str(d.date()) for d in samples.time[check_idx[:, DAY]]],
                       "prediction": [float(v) for v in check_pred]},
        "n_parameters": fit.n_parameters, "flops_per_window": fit.flops,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    path = save_production_checkpoint(
        paths.checkpoint, fit.model, "atlstm", fit.hparams, samples.normalizer, extra["features"], samples.window,
        samples.window_mode, add_doy=extra["add_doy"], include_filled_flags=extra["include_filled_flags"],
        train_period=extra["train_period"], split=extra["split"], metrics=extra["metrics"], source=extra["source"],
        model_card=model_card_sections(extra, fit.hparams),
        extra={k: v for k, v in extra.items() if k not in _CONTRACT_KEYS})
    with atomic_write(paths.checkpoint_history) as tmp:
        fit.history.to_csv(tmp, index=False)
    return path


# ----------------------------------------------------------------------------------------------------------
# Stage entry points: take the StageContext, write the stage's tables, return them
# ----------------------------------------------------------------------------------------------------------
@dataclass
class AttentionResult:
    """:func:`attention`: the windows used, the tables by grouping title, their summary and the climate rule."""

    samples: Samples
    tables: dict
    summary: pd.DataFrame
    climate_rule: str


def atlstm_samples(ctx, inputs: StageInputs) -> tuple[Samples, pd.DataFrame]:
    """Samples of split ``atlstm.final_split`` with the longest window needed, in memory (table ``atlstm_samples``)."""
    ac = ctx.cfg.atlstm
    samples = build_samples(inputs.cube, ctx.cfg, split=ac.final_split, window=max([*ac.lengths, ac.final_window]))
    samples.arrays()
    table = pd.DataFrame([sample_counts(samples)])
    write_table(ctx.paths, "atlstm_samples", table)
    return samples, table


def sequence_length(ctx, inputs: StageInputs, samples: Samples) -> SequenceLengthResult:
    """The sequence-length experiment of ``atlstm.*`` (tables ``sequence_length``, ``sequence_length_timing``)."""
    ac = ctx.cfg.atlstm
    seq = sequence_length_experiment(samples, ctx.cfg, ac.lengths, ac.length_models, truth=inputs.truth,
                                     progress=False)
    write_table(ctx.paths, "sequence_length", seq.metrics)
    write_table(ctx.paths, "sequence_length_timing", seq.timing)
    return seq


def production_model(ctx, inputs: StageInputs, samples: Samples) -> tuple[LoadedModel, pd.DataFrame]:
    """Train and write the production AtLSTM, reload it as stage 04 will and check it against the cube.

    Returns the reloaded model and its test metrics (table ``atlstm_final_metrics``, read from the checkpoint,
    with ``fit_source``: trained here or reused from stage 02 (:func:`stage02_checkpoint`), and ``fit_fingerprint``).

    The production model is normalised by the statistics of its *own* training windows (``atlstm.final_window``),
    like every model of stage 02, not by those of the sequence-length experiment's longest window (which exist so
    that the lengths share one normalizer): when ``samples`` has a longer window, the production samples are built
    anew. With the same split, window, seed and budget the production model is then stage 02's ``atlstm`` fit,
    reused to the bit rather than trained twice.
    """
    own = samples if samples.window == ctx.cfg.atlstm.final_window else None   # its own window's normalizer
    path = train_final_atlstm(inputs.cube, ctx.cfg, samples=own, truth=inputs.truth, progress=False,
                              paths=ctx.paths, reuse=stage02_checkpoint(ctx))
    final = load_checkpoint(path)
    final.check_cube(inputs.cube)
    tr = final.extra["training"]
    table = pd.DataFrame([{"reference": k.replace("test_vs_", ""), **v, "fit_source": tr["fit_source"],
                           "fit_fingerprint": tr["fit_fingerprint"]} for k, v in final.extra["metrics"].items()])
    write_table(ctx.paths, "atlstm_final_metrics", table)
    return final, table


def stage02_checkpoint(ctx) -> Path:
    """Stage 02's ``atlstm`` on the production model's split, ``models/compare_<atlstm.final_split>_atlstm.pt``:
    read instead of training when it is the same fit (:func:`train_final_atlstm`, ``reuse``)."""
    return ctx.paths.model_file(f"compare_{ctx.cfg.atlstm.final_split}_{FINAL_MODEL}", ".pt")


def ablation_checkpoint(ctx) -> Path:
    """Where stage 02 saved the ``[c; h_L]`` ablation: ``models/compare_<samples.split>_atlstm_cl.pt``."""
    return ctx.paths.model_file(f"compare_{ctx.cfg.samples.split}_{ABLATION_MODEL}", ".pt")


def load_ablation(ctx) -> LoadedModel | None:
    """The stage-02 ``atlstm_cl`` model with its normalizer, or None when stage 02 did not train it.

    Raises
    ------
    CheckpointMismatchError
        The file exists but lacks the normalizer (written by an older stage 02: re-run stage 02).
    """
    path = ablation_checkpoint(ctx)
    if ABLATION_MODEL not in ctx.cfg.models.names or not path.exists():
        return None
    try:
        return load_checkpoint(path)
    except CheckpointMismatchError as e:
        raise CheckpointMismatchError(f"{e} (the atlstm_cl attention analysis needs the stage-02 normalizer: "
                                      "re-run stage 02)") from None


def _attention_of(model: LoadedModel, samples: Samples, batch_size: int) -> tuple[Samples, np.ndarray]:
    """Attention ``(N, L)`` of ``model`` on the test windows of ``samples`` cut to its window.

    The windows are those of ``samples`` (same target days, same raw inputs); when the model was trained with
    another normalizer (the stage-02 samples), they are re-normalised with its own statistics.
    """
    fs = samples.with_window(model.window)
    if list(model.features) != list(fs.feature_names):
        raise ValueError(f"{model.path}: features {model.features} differ from the samples' {fs.feature_names}")
    same = (np.array_equal(model.normalizer.mean, fs.normalizer.mean)
            and np.array_equal(model.normalizer.sd, fs.normalizer.sd))
    parts = []
    test = fs.test
    for start in range(0, len(test), batch_size):
        x = fs.windows(test[start:start + batch_size])
        if not same:
            x = model.normalizer.apply(fs.normalizer.inverse(x))
        parts.append(predict_with_attention(model.model, x, batch_size)[1])
    return fs, (np.concatenate(parts) if parts else np.empty((0, model.window), np.float32))


def attention(ctx, inputs: StageInputs, samples: Samples, final: LoadedModel) -> AttentionResult:
    """Attention by lag over the test windows, overall and by SM level, season and climate, for both heads.

    The production model (``model='atlstm'``, head on the context alone) and, when stage 02 trained it, the
    ``[c; h_L]`` ablation (``model='atlstm_cl'``, :func:`load_ablation`) on the same test windows. Writes
    ``attention_by_lag``, ``attention_by_lag_sm``, ``attention_by_lag_season``, ``attention_by_lag_climate`` and
    ``attention_summary``, each with a ``model`` column (the production model's rows first).
    """
    cfg = ctx.cfg
    models = {FINAL_MODEL: final}
    if (ablation := load_ablation(ctx)) is not None:
        models[ABLATION_MODEL] = ablation
    per_title: dict[str, list] = {title: [] for title in ATTENTION_TABLES}
    summaries, climate_rule, fs_final = [], "", None
    for name, loaded in models.items():
        fs, att = _attention_of(loaded, samples, cfg.training.eval_batch_size)
        groups, orders = attention_groups(fs, "test", inputs.truth, inputs.aridity, cfg.models.sm_bins)
        tables = {"overall": attention_by_lag(att, fs.offsets)}
        for title, key in (("SM level", "sm_level"), ("season", "season"), ("climate", "climate")):
            tables[title] = attention_by_lag(att, fs.offsets, groups[key], orders[key], key)
        for title, t in tables.items():
            per_title[title].append(t.assign(model=name)[["model", *t.columns]])
            summaries.append(attention_summary(t).assign(model=name))
        if name == FINAL_MODEL:
            fs_final, climate_rule = fs, orders["climate_rule"]
    merged = {title: pd.concat(parts, ignore_index=True) for title, parts in per_title.items()}
    for title, t in merged.items():
        write_table(ctx.paths, ATTENTION_TABLES[title], t)
    summary = pd.concat(summaries, ignore_index=True)
    summary = summary[["model", *[c for c in summary.columns if c != "model"]]]
    write_table(ctx.paths, "attention_summary", summary)
    return AttentionResult(fs_final, merged, summary, climate_rule)


def worked_example(ctx, inputs: StageInputs, samples: Samples, final: LoadedModel) -> pd.DataFrame:
    """The test window with the largest ERA5-Land rise, with attention and prediction (``attention_example``)."""
    example = example_window(samples, final.model, inputs.truth).assign(model=FINAL_MODEL)
    write_table(ctx.paths, "attention_example", example)
    return example


def feature_importance(ctx, samples: Samples, final: LoadedModel) -> tuple[pd.DataFrame, int]:
    """Permutation importance on at most ``atlstm.importance_windows`` evenly spaced test windows.

    Returns the table (``feature_importance``) and the number of windows used.
    """
    ac = ctx.cfg.atlstm
    test = samples.test
    if len(test) > ac.importance_windows:
        test = test[np.linspace(0, len(test) - 1, ac.importance_windows).astype(np.int64)]
    table = permutation_importance(final.model, samples.windows(test), samples.targets(test), samples.feature_names,
                                   repeats=ac.permutation_repeats, seed=ctx.cfg.run.seed)
    write_table(ctx.paths, "feature_importance", table)
    return table, len(test)


# ----------------------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------------------
def figure_sequence_length(ctx, metrics: pd.DataFrame):
    """RMSE and R2 against the window length against the truth (twin) or labels (``03_sequence_length``)."""
    fig = fig_sequence_length(metrics[metrics.reference == main_reference(metrics)], label=ctx.data_label)
    ctx.savefig(fig, "03_sequence_length")
    return fig


def plot_loss_curve(history: pd.DataFrame, data_label: str = ""):
    """Training and validation MSE per epoch ((m3 m-3)^2, log scale) of a training ``history``."""
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.plot(history.epoch, history.train_loss, marker="o", label="training")
    ax.plot(history.epoch, history.val_loss, marker="o", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE ((m$^3$ m$^{-3}$)$^2$)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(f"Production AtLSTM loss — {data_label}", fontsize=9)
    return fig


def figure_final_loss(ctx):
    """The production model's loss curves, from ``ctx.paths.checkpoint_history`` (``03_atlstm_final_loss``)."""
    fig = plot_loss_curve(pd.read_csv(ctx.paths.checkpoint_history), ctx.data_label)
    ctx.savefig(fig, "03_atlstm_final_loss")
    return fig


def figure_attention(ctx, att: AttentionResult, model: str = FINAL_MODEL):
    """Mean attention by lag and, per group, relative to uniform, as stage 06 draws it: ``03_attention_by_lag``
    for the production model, ``03_attention_by_lag_<model>`` for another (e.g. ``atlstm_cl``)."""
    fig = fig_attention(att.tables, label=ctx.data_label, model=model)
    ctx.savefig(fig, "03_attention_by_lag" + ("" if model == FINAL_MODEL else f"_{model}"))
    return fig


def plot_example_window(tab: pd.DataFrame, data_label: str = ""):
    """The worked example (:func:`glass_sm.interpret.attention.example_window`): inputs, SM, attention."""
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
    axes[3].set_ylabel("attention weight (1)")
    axes[3].tick_params(axis="x", rotation=30)
    fig.suptitle(f"Worked example at ({tgt.lat:.3f} N, {tgt.lon:.3f} E), target {pd.Timestamp(tgt.date):%Y-%m-%d}"
                 + (f" - {data_label}" if data_label else ""))
    return fig


def figure_example(ctx, example: pd.DataFrame):
    """The worked example window (``03_attention_example``)."""
    fig = plot_example_window(example, ctx.data_label)
    ctx.savefig(fig, "03_attention_example")
    return fig


def plot_feature_importance(table: pd.DataFrame, data_label: str = ""):
    """Horizontal bars of the permutation importance (RMSE increase, m3 m-3) with +- 1 sd."""
    t = table.sort_values("importance")
    fig, ax = plt.subplots(figsize=(5.2, 0.3 * len(t) + 1.2), constrained_layout=True)
    ax.barh(t.feature, t.importance, xerr=t.importance_sd, color="C0", capsize=2)
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel("RMSE increase when permuted (m$^3$ m$^{-3}$)")
    if data_label:
        ax.set_title(f"Permutation importance (AtLSTM, test) - {data_label}", fontsize=9)
    return fig


def figure_importance(ctx, table: pd.DataFrame):
    """The permutation importance (``03_feature_importance``)."""
    fig = plot_feature_importance(table, ctx.data_label)
    ctx.savefig(fig, "03_feature_importance")
    return fig


# ----------------------------------------------------------------------------------------------------------
# Prose: every number comes from a table the stage functions returned
# ----------------------------------------------------------------------------------------------------------
def _rmse_ci(t: pd.DataFrame, window: int) -> str:
    return f"{t.loc[window, 'rmse']:.4f} [{t.loc[window, 'rmse_lo']:.4f}, {t.loc[window, 'rmse_hi']:.4f}]"


def sequence_length_text(metrics: pd.DataFrame, final_window: int) -> str:
    """Markdown: per model, RMSE at the shortest, the best and the production window (``sequence_length`` table).

    ``final_window``: the production model's window, days (``atlstm.final_window``).
    """
    ref = main_reference(metrics)
    lines = []
    for model in pd.unique(metrics.model):
        t = metrics[(metrics.model == model) & (metrics.reference == ref)].set_index("window")
        best, shortest = int(t.rmse.idxmin()), int(t.index.min())
        lines.append(
            f"**{display_name(model)}** (vs {ref}): RMSE {_rmse_ci(t, shortest)} m³ m⁻³ with a {shortest}-day window, "
            f"lowest at L = {best} days: {_rmse_ci(t, best)}; the {final_window}-day window of the production model "
            "gives " + (f"{_rmse_ci(t, final_window)}." if final_window in t.index else "(not in the lengths).")
            + (" The intervals of the shortest and the best window do not overlap: memory beyond the target day helps."
               if t.loc[best, "rmse_hi"] < t.loc[shortest, "rmse_lo"] else
               " The intervals of the shortest and the best window overlap: no measurable gain from memory here."))
    return "\n\n".join(lines)


def _attention_line(o, who: str) -> str:
    return (f"{who}: over the {int(o.n)} test windows the target day receives on average {o.w_lag0:.3f} of the "
            f"attention (uniform would be {o.uniform:.3f}), lags 0–2 together {o.w_adjacent:.3f}; the attention-"
            f"weighted mean lag is {o.mean_lag:.1f} days and the weights are spread over about "
            f"{o.effective_steps:.1f} of the {int(o.window)} days (1/Σw²). The most-attended lag is "
            f"{int(o.argmax_lag)} day(s).")


def attention_text(summary: pd.DataFrame) -> str:
    """Markdown: how local the attention is, overall and per group, for the production AtLSTM (head on the context
    alone) and, when present, the ``[c; h_L]`` ablation (``attention_summary`` table, column ``model``)."""
    by_model = dict(iter(summary.groupby("model", sort=False))) if "model" in summary else {FINAL_MODEL: summary}
    final = by_model.get(FINAL_MODEL, summary)
    o = final[final.grouping == "all"].iloc[0]
    lines = [_attention_line(o, f"**{display_name(FINAL_MODEL)}** (production model, head reading the attention "
                                "context alone)")]
    ratio = o.w_adjacent / (3 * o.uniform)
    if o.window_effective_steps > 0.9 * o.window:
        lines.append(
            f"**The learned attention is nearly uniform**, on average and window by window (each window's own "
            f"effective number of days is {o.window_effective_steps:.1f} of {int(o.window)} on average; lags 0–2 get "
            f"{ratio:.2f} times their uniform share): on this run the model does not single out the days next to "
            "the target, unlike the paper's finding. Its head reads only the attended context, so a near-uniform "
            "context (close to the mean hidden state) is what the fit chose, not a by-product of a shortcut "
            "through the last hidden state.")
    elif o.effective_steps > 0.9 * o.window:
        lines.append(
            f"Each window concentrates its attention (effective number of days {o.window_effective_steps:.1f} of "
            f"{int(o.window)} per window) but on different days, so that the mean over windows is nearly uniform "
            f"(lags 0–2 get {ratio:.2f} times their uniform share).")
    elif ratio > 1.5:
        lines.append(f"**The attention concentrates on the days adjacent to the target** (lags 0–2 get {ratio:.2f} "
                     "times their uniform share), as the paper found.")
    else:
        lines.append(f"Lags 0–2 get {ratio:.2f} times their uniform share: the attention is spread over the window "
                     "rather than concentrated next to the target day.")
    for grouping in ("sm_level", "season", "climate"):
        g = final[final.grouping == grouping]
        lines.append(f"By {grouping.replace('_', ' ')}: " + "; ".join(
            f"{r.group} (n = {int(r.n)}) target day {r.w_lag0:.3f}, lags 0–2 {r.w_adjacent:.3f}, mean lag "
            f"{r.mean_lag:.1f} d" for r in g.itertuples()) + ".")
    if ABLATION_MODEL in by_model:
        c = by_model[ABLATION_MODEL]
        c = c[c.grouping == "all"].iloc[0]
        lines.append(_attention_line(c, f"**{display_name(ABLATION_MODEL)}** (the ablation whose head also reads the "
                                        "last hidden state h_L)") + " Against the production model: target-day "
                     f"weight {c.w_lag0:.3f} vs {o.w_lag0:.3f}, per-window effective days "
                     f"{c.window_effective_steps:.1f} vs {o.window_effective_steps:.1f}.")
    return "\n\n".join(lines)


def example_text(example: pd.DataFrame) -> str:
    """Markdown: the worked example's prediction, label, truth and where its attention falls (``attention_example``)."""
    tgt = example[example.is_target].iloc[0]
    rise = example.sm_era5land.diff()
    rain = rise.idxmax()
    return (
        f"Target day {pd.Timestamp(tgt.date):%Y-%m-%d} at ({tgt.lat:.3f}° N, {tgt.lon:.3f}° E): prediction "
        f"{tgt.prediction:.4f}, label {tgt.label:.4f}" + (f", truth {tgt.truth:.4f}" if np.isfinite(tgt.truth) else "")
        + f" m³ m⁻³. ERA5-Land soil moisture rises most on {pd.Timestamp(example.date[rain]):%Y-%m-%d} (lag "
        f"{int(example.lag[rain])} d, +{rise[rain]:.4f} m³ m⁻³), where the attention is {example.attention[rain]:.3f}; "
        f"the target day gets {tgt.attention:.3f} and the largest weight, {example.attention.max():.3f}, falls on lag "
        f"{int(example.lag[example.attention.idxmax()])} d.")


def importance_text(table: pd.DataFrame, n_windows: int) -> str:
    """Markdown: baseline RMSE and the ranking of the inputs (``feature_importance`` table, ``n_windows`` used)."""
    return (f"Baseline RMSE on these {n_windows} windows: {table.base_rmse.iloc[0]:.4f} m³ m⁻³. Ranking: "
            + ", ".join(f"`{r.feature}` +{r.importance:.4f}" for r in table.itertuples()) + " m³ m⁻³.")


# ----------------------------------------------------------------------------------------------------------
# The paper's claims
# ----------------------------------------------------------------------------------------------------------
CLAIM_INPUTS = ("model_comparison_predictions", "model_comparison", "split_strategies", "model_timing",
                "label_ceiling", "attention_by_lag", "sequence_length")
"""Tables of stages 02-03 that :func:`claims` reads (every number of ``paper_claims`` comes from them)."""


def claims(ctx) -> pd.DataFrame:
    """Test each claim of the paper on this run's tables (:func:`glass_sm.evaluation.claims.paper_claims`);
    writes ``paper_claims``. Stage 02's tables must exist (a missing one makes its claims 'not testable here')."""
    tables = {}
    for name in CLAIM_INPUTS:
        try:
            tables[name] = read_table(ctx.paths, name)
        except FileNotFoundError:
            pass
    table = paper_claims(tables, n_boot=int(ctx.cfg.training.n_boot), seed=int(ctx.cfg.run.seed),
                         sm_bins=list(ctx.cfg.models.sm_bins))
    write_table(ctx.paths, "paper_claims", table)
    return table
