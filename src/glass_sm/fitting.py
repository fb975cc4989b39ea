"""Fitting registry models on samples: one model (:func:`fit_model`) or several side by side (:func:`fit_models`).

Stages 02 and 03 train every model through these functions, so a model is trained the same way wherever it
appears: torch models by the shared loop :func:`glass_sm.training.train_torch_model` with ``training.*``, XGBoost by
its own ``fit`` with early stopping on the validation split.

Parallel fits
-------------
``training.parallel_fits`` > 1 trains that many models at once, each in its own *spawned* process (not forked: a
fork after the parent has used OpenMP threads can deadlock the child, and a fresh process starts from the same
state as the sequential run) with ``training.torch_threads`` torch threads. A fit is seeded inside its process
(:func:`glass_sm.training.set_seed`), so its result does not depend on the order or on the other fits: the tables
are identical to those of ``parallel_fits: 1`` on the same CPU (tested). On a 2-core machine two one-thread fits
use both cores where one fit uses one.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from glass_sm.data import Samples, WindowBatches
from glass_sm.models import build_model, count_flops, is_torch_model, model_hparams
from glass_sm.models.registry import model_class
from glass_sm.training import predict, set_seed, train_torch_model

__all__ = ["FitResult", "fit_model", "fit_models", "predict_split", "rate_windows"]


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
    stop_reason : str
        ``'converged'``, ``'early-stopped'`` or ``'budget cap'`` (see the module docstring).
    final_lr : float
        Learning rate when training ended (torch; NaN for XGBoost).
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
    stop_reason: str = "budget cap"
    final_lr: float = float("nan")


def _tree_nodes(model) -> int:
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
        From :func:`glass_sm.data.build_samples` (or ``with_window``).
    cfg : glass_sm.config.Config
        Hyperparameters (:func:`glass_sm.models.model_hparams`) and ``training.*`` (epochs, batch size, lr,
        weight decay, patience, ``max_batches_per_epoch``, ``eval_batch_size``, ``init_output_bias``,
        ``lr_schedule``, ``lr_patience``, ``converge_tol``).
    seed : int, optional
        Initialisation, shuffling and dropout seed (default ``run.seed``).
    epochs : int, optional
        Maximum epochs (default ``training.epochs``).
    progress : bool
        Show the training loop's progress bar.

    Returns
    -------
    FitResult

    Notes
    -----
    A model declaring a ``target_step`` hyperparameter (XGBoost: which step of the window is the target day) gets
    the index of offset 0 in ``samples.offsets`` (``L - 1`` for 'past' windows, ``L // 2`` for 'centred' ones),
    overriding a parameter-file value: it is a property of the samples, not a tuning choice, and is set here
    (not in :func:`glass_sm.models.model_hparams`) because only the samples know their window.
    """
    seed = int(cfg.run.seed if seed is None else seed)
    tc = cfg.training
    hp = model_hparams(name, cfg, seed)
    if "target_step" in model_class(name).default_hparams:
        hp["target_step"] = int(np.flatnonzero(np.asarray(samples.offsets) == 0)[0])
    F, L = samples.n_features, samples.window
    if not is_torch_model(name):
        model = build_model(name, F, L, **hp)
        x, y = samples.xy("train")
        xv, yv = samples.xy("val")
        model.fit(x, y, xv if len(yv) else None, yv if len(yv) else None)
        del x, xv
        return FitResult(name, model, hp, float(model.train_seconds), model.n_rounds, model.best_iteration + 1,
                         model.history, _tree_nodes(model), float("nan"), model.stop_reason, float("nan"))
    set_seed(seed)
    model = build_model(name, F, L, **hp)
    if tc.init_output_bias:
        _init_output_bias(model, float(np.mean(samples.targets("train"))))
    train = samples.batches("train", tc.batch_size, shuffle=True, seed=seed)
    val = samples.batches("val", tc.eval_batch_size, shuffle=False) if len(samples.val) else None
    result = train_torch_model(
        model, train, val, epochs=int(epochs or tc.epochs), lr=tc.lr, weight_decay=tc.weight_decay,
        patience=tc.patience, batch_size=tc.batch_size, seed=seed, progress=progress,
        max_batches_per_epoch=tc.max_batches_per_epoch, lr_schedule=tc.lr_schedule, lr_patience=tc.lr_patience,
        converge_tol=tc.converge_tol)
    n_par = int(sum(p.numel() for p in model.parameters()))
    return FitResult(name, model, hp, result.train_seconds, len(result.history), result.best_epoch,
                     result.history, n_par, float(count_flops(model, L, F)), result.stop_reason, result.final_lr)


def predict_split(model, samples: Samples, split: str | np.ndarray = "test", batch_size: int = 4096) -> np.ndarray:
    """Predictions (m3 m-3, float32) of a torch or XGBoost model for a split's windows (or an index), by batch."""
    if isinstance(split, str):
        batches = samples.batches(split, batch_size, shuffle=False)
    else:
        batches = WindowBatches(samples.arrays(), samples.index(split), None, samples.window, samples.window_mode,
                                batch_size, shuffle=False)
    return predict(model, batches, batch_size)


def rate_windows(samples: Samples, n: int) -> np.ndarray:
    """Up to ``n`` test windows, evenly spaced over the (pixel, day)-sorted test set (for the inference rate)."""
    test = samples.test
    if len(test) > n:
        test = test[np.linspace(0, len(test) - 1, n).astype(np.int64)]
    return samples.windows(test)


def _worker_init(torch_threads: int) -> None:
    """Start of a fitting process: the torch thread count of the sequential run (0: torch's default)."""
    if torch_threads > 0:
        torch.set_num_threads(torch_threads)


def _fit_job(name: str, samples: Samples, cfg, kwargs: dict) -> FitResult:
    return fit_model(name, samples, cfg, progress=False, **kwargs)


def fit_models(jobs: Sequence[tuple[str, Samples, dict]], cfg, progress: bool = False) -> list[FitResult]:
    """Fit several models, ``training.parallel_fits`` at a time, each in its own process (see the module notes).

    Parameters
    ----------
    jobs : sequence of (name, samples, kwargs)
        Registry key, the samples to train on and extra keyword arguments of :func:`fit_model` (``seed``,
        ``epochs``).
    cfg : glass_sm.config.Config
        As :func:`fit_model`; ``training.parallel_fits`` and ``training.torch_threads``.
    progress : bool
        The training loop's progress bar (sequential fits only).

    Returns
    -------
    list of FitResult
        In the order of ``jobs``; identical to fitting them one after the other.
    """
    n = min(int(cfg.training.parallel_fits), len(jobs))
    if n <= 1:
        return [fit_model(name, samples, cfg, progress=progress, **kw) for name, samples, kw in jobs]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(n, mp_context=context, initializer=_worker_init,
                             initargs=(int(cfg.training.torch_threads),)) as pool:
        futures = [pool.submit(_fit_job, name, samples, cfg, dict(kw)) for name, samples, kw in jobs]
        return [f.result() for f in futures]
