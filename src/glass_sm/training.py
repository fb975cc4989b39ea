"""Seeded training loop and batched prediction for the models of :mod:`glass_sm.models`.

Training is deterministic on CPU: :func:`set_seed` seeds Python, NumPy and torch and turns on torch's
deterministic algorithms, so the same seed, data and model give the same loss history and predictions to the
last bit (on the same machine, torch build and thread count).

Stopping rule (:func:`train_torch_model`), checked after every epoch on the monitored loss (validation loss, or
training loss without validation data), with ``best(e)`` the lowest monitored loss up to epoch ``e``:

1. no new best for ``patience`` epochs -> stop, reason ``'early-stopped'``;
2. else, when ``best(e - patience) - best(e) < converge_tol * best(e - patience)`` (the best loss improved by
   less than the relative tolerance over the last ``patience`` epochs) -> stop, ``'converged'``;
3. else, at epoch ``epochs`` -> stop, ``'budget cap'`` (still improving: the model is a lower bound of what the
   architecture can reach).

With ``lr_schedule='plateau'`` the learning rate is halved (``torch.optim.lr_scheduler.ReduceLROnPlateau``, mode
min, factor 0.5, threshold 0 so that "improvement" means a new best as in the rule above) when more than
``lr_patience`` consecutive epochs bring no new best.

Checkpoints (the format, :func:`~glass_sm.models.checkpoint.save_checkpoint`, loading) live in
:mod:`glass_sm.models.checkpoint`.
"""

from __future__ import annotations

import copy
import inspect
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from glass_sm.config.schema import ConfigError
from glass_sm.models.xgb import XGBoostRegressor

__all__ = [
    "DEVICES",
    "LOSSES",
    "LR_SCHEDULES",
    "STOP_REASONS",
    "TrainingResult",
    "measure_inference_rate",
    "model_on",
    "predict",
    "predict_with_attention",
    "resolve_device",
    "set_seed",
    "train_torch_model",
]

LOSSES: dict[str, type[nn.Module]] = {"mse": nn.MSELoss, "huber": nn.HuberLoss, "l1": nn.L1Loss}
"""Training losses by name."""

LR_SCHEDULES = ("plateau", "none")
"""Learning-rate schedules of :func:`train_torch_model`."""

STOP_REASONS = ("converged", "early-stopped", "budget cap")
"""Why a fit ended (``TrainingResult.stop_reason``, the ``stop_reason`` column of the stage tables)."""


DEVICES = ("auto", "cpu", "cuda")
"""Values of ``training.device`` and ``production.device`` (:func:`resolve_device`)."""


def resolve_device(setting: str, key: str = "training.device") -> str:
    """The torch device a ``*.device`` parameter asks for on this machine: ``'cpu'`` or ``'cuda'``.

    Parameters
    ----------
    setting : {'auto', 'cpu', 'cuda'}
        ``'cpu'``: the tested default (bit-identical results for the same seed, torch build and threads);
        ``'cuda'``: the first CUDA device, which must exist; ``'auto'``: CUDA when
        ``torch.cuda.is_available()``, else CPU. Results on a GPU are reproducible on that GPU only to within
        the non-determinism of its kernels, and differ from the CPU's in the last bits.
    key : str
        The parameter's name, for the error message (``'training.device'``, ``'production.device'``).

    Returns
    -------
    str
        ``'cpu'`` or ``'cuda'``.

    Raises
    ------
    glass_sm.config.ConfigError
        ``setting`` is not one of :data:`DEVICES`, or is ``'cuda'`` on a machine where torch sees no CUDA device
        (a CPU-only torch build or no GPU); the message names ``key``.
    """
    if setting not in DEVICES:
        raise ConfigError(f"{key} must be one of {DEVICES}, got {setting!r}")
    if setting == "cpu":
        return "cpu"
    available = torch.cuda.is_available()
    if setting == "auto":
        return "cuda" if available else "cpu"
    if not available:
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise ConfigError(f"{key} is 'cuda' but torch {torch.__version__} ({build}) sees no CUDA device; install "
                          f"a CUDA build of torch on a machine with an NVIDIA GPU (README, 'Environment'), or set "
                          f"{key}: cpu (or auto)")
    return "cuda"


_ON_DEVICE: dict = {}


def model_on(model: nn.Module, device: str) -> nn.Module:
    """A copy of ``model`` on ``device`` in eval mode, made once per model and device in a process (production
    tasks call it for every tile); ``model`` itself is returned when it already is there."""
    if _device(model).type == torch.device(device).type:
        return model
    key = (id(model), device)
    hit = _ON_DEVICE.get(key)
    if hit is None or hit[0] is not model:
        if len(_ON_DEVICE) > 4:
            _ON_DEVICE.clear()
        hit = _ON_DEVICE[key] = (model, copy.deepcopy(model).to(device).eval())
    return hit[1]


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask torch for deterministic algorithms.

    ``torch.use_deterministic_algorithms(True, warn_only=True)``: on CPU the kernels used here are deterministic
    already; an operation without a deterministic implementation warns instead of failing.

    Parameters
    ----------
    seed : int
        Seed of every generator.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


@dataclass
class TrainingResult:
    """Outcome of :func:`train_torch_model` (the model itself is trained in place).

    Attributes
    ----------
    history : pandas.DataFrame
        One row per epoch: ``epoch`` (1-based), ``train_loss``, ``val_loss`` (NaN without validation data;
        losses in (m3 m-3)^2 for MSE), ``seconds`` (wall time of the epoch, s) and ``lr`` (learning rate used
        during the epoch).
    best_epoch : int
        Epoch whose weights the model holds after training.
    best_loss : float
        Monitored loss at ``best_epoch`` (validation loss, or training loss without validation data).
    train_seconds : float
        Wall time of the whole training, s.
    stopped_early : bool
        Whether training ended before ``epochs``.
    stop_reason : str
        One of :data:`STOP_REASONS`: ``'converged'``, ``'early-stopped'`` or ``'budget cap'`` (module docstring).
    final_lr : float
        Learning rate in effect when training ended (after the schedule's last step).
    """

    history: pd.DataFrame
    best_epoch: int
    best_loss: float
    train_seconds: float
    stopped_early: bool
    stop_reason: str = "budget cap"
    final_lr: float = float("nan")


def _as_loader(data, batch_size: int, shuffle: bool, seed: int, what: str) -> DataLoader | None:
    """A DataLoader as given, or one over ``(X, y)`` arrays (shuffled with its own seeded generator).

    Raises ValueError when ``data`` holds no window (``what``: 'training' or 'validation', for the message).
    """
    if data is None:
        return None
    if isinstance(data, DataLoader):
        if _is_empty(data):
            raise ValueError(f"no {what} windows (the {what} DataLoader is empty)")
        return data
    X, y = data
    if len(y) == 0:
        raise ValueError(f"no {what} windows (X has shape {np.shape(X)})")
    dataset = TensorDataset(
        torch.as_tensor(np.asarray(X, dtype=np.float32)),
        torch.as_tensor(np.asarray(y, dtype=np.float32).reshape(-1)),
    )
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def _check_settings(*, epochs, batch_size, lr, weight_decay, patience, max_batches_per_epoch, lr_schedule="none",
                    lr_patience=1, converge_tol=0.0) -> None:
    """Raise ValueError for a training setting outside its range (``not`` comparisons also catch NaN)."""
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr_schedule {lr_schedule!r}; valid: {', '.join(LR_SCHEDULES)}")
    if not lr_patience >= 1:
        raise ValueError(f"lr_patience must be >= 1, got {lr_patience}")
    if not 0 <= converge_tol < 1:
        raise ValueError(f"converge_tol must be in [0, 1), got {converge_tol}")
    if not epochs >= 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}: a run of no epochs would return an untrained model")
    if not batch_size >= 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    for name, value in (("patience", patience), ("max_batches_per_epoch", max_batches_per_epoch)):
        if value is not None and not value >= 1:
            raise ValueError(f"{name} must be >= 1 or None, got {value}")


def _is_empty(loader: DataLoader) -> bool:
    """Whether a DataLoader yields no window (its length when it has one, else a first batch)."""
    try:
        return len(loader.dataset) == 0
    except TypeError:  # an iterable dataset without a length
        return next(iter(loader), None) is None


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _train_epoch(model, loader, criterion, optimizer, device, max_batches: int | None) -> float:
    model.train()
    total, count = 0.0, 0
    for i, (x, y) in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        x, y = x.to(device), y.to(device).reshape(-1)
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        count += len(y)
    return total / count


@torch.no_grad()
def _evaluate(model, loader, criterion, device) -> float:
    model.eval()
    total, count = 0.0, 0
    for x, y in loader:
        y = y.to(device).reshape(-1)
        total += criterion(model(x.to(device)), y).item() * len(y)
        count += len(y)
    return total / count


def train_torch_model(
    model: nn.Module,
    train,
    val=None,
    *,
    epochs: int = 20,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    patience: int | None = 4,
    batch_size: int = 512,
    seed: int = 0,
    loss: str = "mse",
    progress: bool = True,
    max_batches_per_epoch: int | None = None,
    lr_schedule: str = "none",
    lr_patience: int = 1,
    converge_tol: float = 0.0,
) -> TrainingResult:
    """Train a torch model with AdamW, a learning-rate schedule, the stopping rule and the best epoch's weights.

    Each epoch makes one pass over ``train`` (at most ``max_batches_per_epoch`` batches), then computes the loss
    on the whole of ``val``. The weights of the epoch with the lowest validation loss (training loss without
    ``val``) are kept in memory and restored at the end. Training stops by the rule of the module docstring
    (early-stopped / converged / budget cap). The defaults of ``lr_schedule`` and ``converge_tol`` (no schedule,
    no convergence test) keep the plain early stopping of earlier versions; the stages pass ``training.*``.

    Parameters
    ----------
    model : torch.nn.Module
        Model mapping ``(batch, L, n_features)`` to ``(batch,)`` soil moisture, m3 m-3; trained in place and left
        in eval mode. For a reproducible initialisation call :func:`set_seed` before building it.
    train : DataLoader or (X, y)
        Training windows: a DataLoader yielding ``(x, y)`` batches, or arrays ``X`` ``(N, L, n_features)``
        float32 and ``y`` ``(N,)`` soil moisture in m3 m-3 (batched with ``batch_size``, shuffled with ``seed``).
    val : DataLoader or (X, y), optional
        Validation windows for early stopping, same forms.
    epochs : int
        Maximum epochs.
    lr : float
        AdamW learning rate.
    weight_decay : float
        AdamW decoupled weight decay.
    patience : int or None
        Epochs without improvement before stopping, and the span of the convergence test (None: neither; only
        the epoch cap stops training).
    batch_size : int
        Windows per batch when arrays are given.
    seed : int
        Seed of :func:`set_seed` (shuffling, dropout) at the start of training.
    loss : str
        Key of :data:`LOSSES` (``'mse'``, ``'huber'``, ``'l1'``).
    progress : bool
        Show a tqdm bar over epochs.
    max_batches_per_epoch : int or None
        Cap on training batches per epoch (smoke runs).
    lr_schedule : {'none', 'plateau'}
        ``'plateau'``: halve the learning rate when more than ``lr_patience`` consecutive epochs bring no new
        best monitored loss (``ReduceLROnPlateau``, factor 0.5, threshold 0); ``'none'``: constant ``lr``.
    lr_patience : int
        Epochs without a new best tolerated before halving (torch's ``patience``).
    converge_tol : float
        Relative improvement of the best monitored loss over the last ``patience`` epochs below which training
        has converged (0: never; the convergence test is off).

    Returns
    -------
    TrainingResult
        History, best epoch, timings, why training stopped and the final learning rate.

    Raises
    ------
    ValueError
        Unknown ``loss``; a setting that would train nothing or nonsense (``epochs`` < 1, ``batch_size`` < 1,
        ``lr`` <= 0, ``weight_decay`` < 0, ``patience`` or ``max_batches_per_epoch`` < 1, an unknown
        ``lr_schedule``, ``lr_patience`` < 1, ``converge_tol`` outside [0, 1)); no training windows
        (or an empty ``val``). Checked before the model is touched.
    FloatingPointError
        The training loss became NaN or infinite.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss '{loss}'; valid: {', '.join(LOSSES)}")
    _check_settings(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, patience=patience,
                    max_batches_per_epoch=max_batches_per_epoch, lr_schedule=lr_schedule, lr_patience=lr_patience,
                    converge_tol=converge_tol)
    set_seed(seed)
    train_loader = _as_loader(train, batch_size, shuffle=True, seed=seed, what="training")
    val_loader = _as_loader(val, batch_size, shuffle=False, seed=seed, what="validation")
    device = _device(model)
    criterion = LOSSES[loss]()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = (torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=lr_patience,
                                                            threshold=0.0)
                 if lr_schedule == "plateau" else None)

    rows, best_loss, best_epoch, best_state, waited = [], math.inf, 0, None, 0
    best_so_far: list[float] = []  # best monitored loss after each epoch
    reason = "budget cap"
    start = time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc=f"{type(model).__name__}", unit="epoch", disable=not progress)
    for epoch in bar:
        epoch_start = time.perf_counter()
        epoch_lr = float(optimizer.param_groups[0]["lr"])
        train_loss = _train_epoch(model, train_loader, criterion, optimizer, device, max_batches_per_epoch)
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"training loss is {train_loss} at epoch {epoch}; try a smaller lr (now {lr})")
        val_loss = _evaluate(model, val_loader, criterion, device) if val_loader is not None else math.nan
        rows.append((epoch, train_loss, val_loss, time.perf_counter() - epoch_start, epoch_lr))
        bar.set_postfix(train=f"{train_loss:.3g}", val=f"{val_loss:.3g}", lr=f"{epoch_lr:.2g}")

        monitored = val_loss if val_loader is not None else train_loss
        if monitored < best_loss:
            best_loss, best_epoch, waited = monitored, epoch, 0
            best_state = {key: value.detach().clone() for key, value in model.state_dict().items()}
        else:
            waited += 1
        best_so_far.append(best_loss)
        if scheduler is not None:
            scheduler.step(monitored)
        stop = _stop_reason(best_so_far, waited, patience, converge_tol)
        if stop is not None:
            reason = stop
            break
    bar.close()

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    history = pd.DataFrame(rows, columns=["epoch", "train_loss", "val_loss", "seconds", "lr"])
    return TrainingResult(
        history=history,
        best_epoch=best_epoch,
        best_loss=float(best_loss),
        train_seconds=time.perf_counter() - start,
        stopped_early=len(rows) < epochs,
        stop_reason=reason,
        final_lr=float(optimizer.param_groups[0]["lr"]),
    )


def _stop_reason(best_so_far: list[float], waited: int, patience: int | None, converge_tol: float) -> str | None:
    """The stopping rule after an epoch (module docstring): ``'early-stopped'``, ``'converged'`` or None.

    ``best_so_far``: the best monitored loss after each epoch so far; ``waited``: epochs since the last new best.
    """
    if patience is None:
        return None
    if waited >= patience:
        return "early-stopped"
    if len(best_so_far) > patience:
        before, now = best_so_far[-1 - patience], best_so_far[-1]
        if before - now < converge_tol * abs(before):
            return "converged"
    return None


def _input_batches(data, batch_size: int) -> Iterator[torch.Tensor]:
    """Input windows ``(batch, L, F)`` from a DataLoader (``(x, y)`` or ``x`` batches) or an array."""
    if isinstance(data, DataLoader):
        for batch in data:
            yield batch[0] if isinstance(batch, (list, tuple)) else batch
        return
    X = torch.as_tensor(np.asarray(data, dtype=np.float32))
    for start in range(0, len(X), batch_size):
        yield X[start : start + batch_size]


def predict(model, data, batch_size: int = 4096) -> np.ndarray:
    """Predict soil moisture for many windows, in batches, without gradients.

    Parameters
    ----------
    model : torch.nn.Module or XGBoostRegressor
        A model of the registry (torch models are switched to eval mode).
    data : DataLoader or array_like
        A DataLoader yielding ``(x, y)`` or ``x`` batches, or windows ``(N, L, n_features)`` float32.
    batch_size : int
        Windows per batch for array input.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float32 soil moisture, m3 m-3.
    """
    if isinstance(model, XGBoostRegressor):
        parts = [model.predict(x.numpy()) for x in _input_batches(data, batch_size)]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)
    model.eval()
    device = _device(model)
    with torch.inference_mode():
        parts = [model(x.to(device)).cpu() for x in _input_batches(data, batch_size)]
    return torch.cat(parts).numpy() if parts else np.empty(0, dtype=np.float32)


def predict_with_attention(model: nn.Module, data, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Predict soil moisture and the attention weights of a model with ``forward(x, return_attention=True)``.

    Parameters
    ----------
    model : torch.nn.Module
        An attention model such as :class:`~glass_sm.models.AtLSTMRegressor`.
    data : DataLoader or array_like
        As for :func:`predict`.
    batch_size : int
        Windows per batch for array input.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Soil moisture ``(N,)`` float32, m3 m-3, and attention weights ``(N, L)`` float32, dimensionless.
    """
    if "return_attention" not in inspect.signature(model.forward).parameters:
        raise TypeError(f"{type(model).__name__} has no attention weights (forward lacks return_attention)")
    model.eval()
    device = _device(model)
    predictions, attentions = [], []
    with torch.inference_mode():
        for x in _input_batches(data, batch_size):
            prediction, attention = model(x.to(device), return_attention=True)
            predictions.append(prediction.cpu())
            attentions.append(attention.cpu())
    return torch.cat(predictions).numpy(), torch.cat(attentions).numpy()


def measure_inference_rate(model, X, batch_size: int = 4096, repeats: int = 3) -> float:
    """Inference throughput: windows predicted per second (best of ``repeats`` passes after one warm-up batch).

    Parameters
    ----------
    model : torch.nn.Module or XGBoostRegressor
        A model of the registry.
    X : array_like
        Windows ``(N, L, n_features)`` float32.
    batch_size : int
        Windows per batch.
    repeats : int
        Timed passes over ``X``.

    Returns
    -------
    float
        Windows per second, 1/s.
    """
    X = np.asarray(X, dtype=np.float32)
    predict(model, X[:batch_size], batch_size)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        predict(model, X, batch_size)
        best = min(best, time.perf_counter() - start)
    return len(X) / best
