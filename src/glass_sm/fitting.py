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

The training data travel once, not once per fit: the dense feature array of the jobs' samples
(:meth:`glass_sm.data.Samples.arrays`, ``T x P x F`` float32, ~420 MB on the demo; the windows of
:meth:`~glass_sm.data.Samples.with_window` views share one array) is copied once into a block of shared memory
(:mod:`multiprocessing.shared_memory`) that every worker maps read-only at start (the pool's initializer); a job
carries its samples without the array (indices, targets, normalizer, the lazy cube: kilobytes to a few MB) and
the key of its array. Pickling the array into every job instead cost about a second per job and a private copy
per worker. The bytes are the same, so the results are too.

Reusing a fit
-------------
:func:`fit_fingerprint` is the sha256 of everything a fit depends on (model, hyperparameters, seed, epoch cap,
``training.*`` except ``parallel_fits`` and ``n_boot``, the resolved device, the torch version, the samples'
window, features, normalizer, training and validation indices and targets, and the bytes of the feature array).
Stage 02 stores it with each torch model (``extra['fit']``, :func:`fit_record`); :func:`load_fit` returns the
stored fit only when a new fit's fingerprint is the same, so a stage that would repeat the fit (stage 03's
production AtLSTM, when it is stage 02's ``atlstm`` fit) reads it instead, with bit-identical results.

Device
------
``training.device`` (:func:`glass_sm.training.resolve_device`: ``'cpu'``, ``'cuda'`` or ``'auto'``) is where the
torch models train, in this process and in the workers; XGBoost trains on the CPU. The trained model is returned
on the CPU (checkpoints, the pickles between processes and the CPU prediction code stay device-free);
:attr:`FitResult.device` records where it trained (column ``device`` of the timing tables).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import threading
import time
import weakref
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import shared_memory
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from glass_sm.data import Samples, WindowBatches
from glass_sm.models import build_model, count_flops, is_torch_model, load_model_weights, model_hparams
from glass_sm.models.registry import model_class
from glass_sm.training import predict, resolve_device, set_seed, train_torch_model

log = logging.getLogger(__name__)

__all__ = ["FitResult", "fit_model", "fit_models", "predict_split", "rate_windows", "shared_feature_arrays",
           "array_digest", "fit_fingerprint", "fit_record", "load_fit", "expected_cost", "submission_order"]


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
    device : str
        Where the model trained: ``'cpu'`` or ``'cuda'`` (XGBoost: ``'cpu'``); the model itself is returned on
        the CPU.
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
    device: str = "cpu"


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
              progress: bool = True, device: str | None = None) -> FitResult:
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
    device : {'cpu', 'cuda', 'auto'}, optional
        Where a torch model trains (default ``training.device``, :func:`glass_sm.training.resolve_device`); the
        model is returned on the CPU.

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
    hp = _fit_hparams(name, samples, cfg, seed)
    F, L = samples.n_features, samples.window
    if not is_torch_model(name):
        model = build_model(name, F, L, **hp)
        x, y = samples.xy("train")
        xv, yv = samples.xy("val")
        model.fit(x, y, xv if len(yv) else None, yv if len(yv) else None)
        del x, xv
        return FitResult(name, model, hp, float(model.train_seconds), model.n_rounds, model.best_iteration + 1,
                         model.history, _tree_nodes(model), float("nan"), model.stop_reason, float("nan"))
    dev = resolve_device(tc.device if device is None else device,
                         "training.device" if device is None else "fit_model(device=...)")
    set_seed(seed)
    model = build_model(name, F, L, **hp)
    if tc.init_output_bias:
        _init_output_bias(model, float(np.mean(samples.targets("train"))))
    model.to(dev)
    train = samples.batches("train", tc.batch_size, shuffle=True, seed=seed)
    val = samples.batches("val", tc.eval_batch_size, shuffle=False) if len(samples.val) else None
    result = train_torch_model(
        model, train, val, epochs=int(epochs or tc.epochs), lr=tc.lr, weight_decay=tc.weight_decay,
        patience=tc.patience, batch_size=tc.batch_size, seed=seed, progress=progress,
        max_batches_per_epoch=tc.max_batches_per_epoch, lr_schedule=tc.lr_schedule, lr_patience=tc.lr_patience,
        converge_tol=tc.converge_tol)
    model.to("cpu")
    n_par = int(sum(p.numel() for p in model.parameters()))
    return FitResult(name, model, hp, result.train_seconds, len(result.history), result.best_epoch,
                     result.history, n_par, float(count_flops(model, L, F)), result.stop_reason, result.final_lr,
                     dev)


def _fit_hparams(name: str, samples: Samples, cfg, seed: int) -> dict:
    """The hyperparameters :func:`fit_model` uses (``target_step`` from the samples, see its notes)."""
    hp = model_hparams(name, cfg, seed)
    if "target_step" in model_class(name).default_hparams:
        hp["target_step"] = int(np.flatnonzero(np.asarray(samples.offsets) == 0)[0])
    return hp


_DIGESTS: dict = {}


def array_digest(a: np.ndarray) -> str:
    """sha256 of an array's shape, dtype and bytes (C order), cached while the array lives (hashing the demo's
    420 MB feature array takes about a second)."""
    hit = _DIGESTS.get(id(a))
    if hit is not None and hit[0]() is a:
        return hit[1]
    h = hashlib.sha256(f"{a.shape}|{a.dtype.str}|".encode())
    flat = np.ascontiguousarray(a).reshape(-1)
    step = max(1, (64 << 20) // max(1, a.itemsize))
    for k in range(0, flat.size, step):
        h.update(memoryview(flat[k:k + step]).cast("B"))
    digest = h.hexdigest()
    try:
        _DIGESTS[id(a)] = (weakref.ref(a), digest)
    except TypeError:  # an array that refuses weak references is simply not cached
        pass
    return digest


def fit_fingerprint(name: str, samples: Samples, cfg, *, seed: int | None = None, epochs: int | None = None) -> str:
    """sha256 of everything :func:`fit_model` ``(name, samples, cfg, seed=seed, epochs=epochs)`` depends on.

    Two fits with the same fingerprint are the same computation (same model, hyperparameters, seed, epoch cap,
    ``training.*`` settings other than ``parallel_fits`` and ``n_boot``, resolved device, torch version, samples'
    window and mode, features, normalizer statistics, training and validation indices and targets, and feature
    array bytes), so one may stand for the other (:func:`load_fit`). The test split is not part of a fit.
    """
    seed = int(cfg.run.seed if seed is None else seed)
    tc = cfg.training

    def sha(a) -> str:
        return array_digest(np.asarray(a))

    doc = {"version": 1, "model": name, "hparams": _fit_hparams(name, samples, cfg, seed), "seed": seed,
           "epochs": int(epochs or tc.epochs),
           "training": {k: v for k, v in dataclasses.asdict(tc).items() if k not in ("parallel_fits", "n_boot")},
           "device": resolve_device(tc.device), "torch": torch.__version__,
           "window": int(samples.window), "window_mode": samples.window_mode, "features": list(samples.feature_names),
           "normalizer": [sha(samples.normalizer.mean), sha(samples.normalizer.sd)],
           "train": [sha(samples.train), sha(samples.targets("train"))],
           "val": [sha(samples.val), sha(samples.targets("val"))], "array": sha(samples.arrays())}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def fit_record(fit: FitResult, fingerprint: str) -> dict:
    """The plain (JSON) description of a torch fit stored with its checkpoint (``extra['fit']``): its fingerprint
    and what :class:`FitResult` holds besides the model, the loss history included."""
    return {"fingerprint": fingerprint, "name": fit.name, "hparams": dict(fit.hparams),
            "train_seconds": float(fit.train_seconds),
            "epochs_run": int(fit.epochs_run), "best_epoch": int(fit.best_epoch), "n_parameters": int(fit.n_parameters),
            "flops": float(fit.flops), "stop_reason": fit.stop_reason, "final_lr": float(fit.final_lr),
            "device": fit.device, "history": {c: fit.history[c].tolist() for c in fit.history.columns}}


def load_fit(path: str | Path, fingerprint: str) -> FitResult | None:
    """The fit stored in a checkpoint by :func:`fit_record` when its fingerprint is ``fingerprint``, else None
    (no file, no record, or another fit: the caller trains). The model is the checkpoint's, on the CPU in eval mode,
    with the same weights to the bit."""
    path = Path(path)
    sidecar = path.with_suffix(".json")
    if not path.is_file() or not sidecar.is_file():
        return None
    try:
        rec = json.loads(sidecar.read_text()).get("extra", {}).get("fit", {})
    except ValueError:
        return None
    if rec.get("fingerprint") != fingerprint:
        return None
    model = load_model_weights(path)
    return FitResult(rec["name"], model.eval(), dict(rec["hparams"]), rec["train_seconds"], rec["epochs_run"],
                     rec["best_epoch"], pd.DataFrame(rec["history"]), rec["n_parameters"], rec["flops"],
                     rec["stop_reason"], rec["final_lr"], rec["device"])


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


_SHARED: dict = {}
"""In a fitting process: key -> ``(SharedMemory, read-only array)`` of the arrays mapped by :func:`_worker_init`."""


def _exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """Leave this process when its parent is gone (a killed kernel or pipeline must not leave fits running on
    the cores): a daemon thread polls the parent pid."""

    def watch():
        while True:
            time.sleep(every_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _worker_init(torch_threads: int, shared: dict, parent: int | None = None) -> None:
    """Start of a fitting process: the torch thread count of the sequential run (0: torch's default), and the
    jobs' feature arrays mapped read-only from shared memory (``shared``: key -> ``(block name, shape, dtype)``);
    with ``parent`` (the pool owner's pid) the process exits when that parent dies."""
    if parent is not None:
        _exit_with_parent(parent)
    if torch_threads > 0:
        torch.set_num_threads(torch_threads)
    for key, (block, shape, dtype) in shared.items():
        shm = shared_memory.SharedMemory(name=block)
        arr = np.ndarray(shape, np.dtype(dtype), buffer=shm.buf)
        arr.flags.writeable = False
        _SHARED[key] = (shm, arr)


def _fit_job(name: str, samples: Samples, key: int | None, cfg, kwargs: dict) -> FitResult:
    """One job in a fitting process: ``samples`` (sent without its array) gets the shared array ``key``."""
    if key is not None:
        samples._data = _SHARED[key][1]
    return fit_model(name, samples, cfg, progress=False, **kwargs)


@contextlib.contextmanager
def shared_feature_arrays(samples_list: Sequence[Samples]) -> Iterator[tuple[dict, list]]:
    """Copy the distinct feature arrays of ``samples_list`` into shared memory, once each, for the fitting processes.

    Parameters
    ----------
    samples_list : sequence of Samples
        The jobs' samples; their arrays are loaded here if not yet (:meth:`Samples.arrays`). Samples sharing one
        array object (:meth:`Samples.with_window` views) share one block.

    Yields
    ------
    shared : dict
        key -> ``(block name, shape, dtype str)``, the initializer argument of :func:`_worker_init`.
    jobs : list of (Samples, int)
        Per element of ``samples_list``: a shallow copy without the array (what is pickled into the job) and
        the key of its array.

    Notes
    -----
    The blocks are unlinked when the context exits (also on an error); the workers must be done by then.
    Memory: one extra copy of each array for the duration of the fits (instead of one per worker). Where
    ``/dev/shm`` has less free space than the arrays need (Docker's default is 64 MB; writing past it kills the
    process with SIGBUS), nothing is shared: the jobs carry their samples whole (key None), as before.
    """
    blocks, shared, jobs = [], {}, []
    distinct = {id(s.arrays()): s.arrays().nbytes for s in samples_list}
    if os.path.isdir("/dev/shm") and shutil.disk_usage("/dev/shm").free < 1.05 * sum(distinct.values()) + (16 << 20):
        log.info("fitting: /dev/shm too small for %.0f MB of feature arrays; sending them with each job",
                 sum(distinct.values()) / 1e6)
        yield {}, [(s, None) for s in samples_list]
        return
    try:
        for s in samples_list:
            data = s.arrays()
            key = id(data)
            if key not in shared:
                shm = shared_memory.SharedMemory(create=True, size=max(1, data.nbytes))
                blocks.append(shm)
                np.ndarray(data.shape, data.dtype, buffer=shm.buf)[...] = data
                shared[key] = (shm.name, data.shape, data.dtype.str)
            stub = copy.copy(s)
            stub._data = None
            jobs.append((stub, key))
        yield shared, jobs
    finally:
        for shm in blocks:
            shm.close()
            shm.unlink()


def fit_models(jobs: Sequence[tuple[str, Samples, dict]], cfg, progress: bool = False) -> list[FitResult]:
    """Fit several models, ``training.parallel_fits`` at a time, each in its own process (see the module notes).

    Parameters
    ----------
    jobs : sequence of (name, samples, kwargs)
        Registry key, the samples to train on and extra keyword arguments of :func:`fit_model` (``seed``,
        ``epochs``, ``device``).
    cfg : glass_sm.config.Config
        As :func:`fit_model`; ``training.parallel_fits``, ``training.torch_threads`` and ``training.device``.
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
    resolve_device(cfg.training.device)  # a 'cuda' on a CPU-only machine fails here, not in every worker
    context = multiprocessing.get_context("spawn")
    order = submission_order(jobs, cfg)
    with shared_feature_arrays([samples for _, samples, _ in jobs]) as (shared, stubs):
        with ProcessPoolExecutor(n, mp_context=context, initializer=_worker_init,
                                 initargs=(int(cfg.training.torch_threads), shared, os.getpid())) as pool:
            futures = {i: pool.submit(_fit_job, jobs[i][0], stubs[i][0], stubs[i][1], cfg, dict(jobs[i][2]))
                       for i in order}
            return [futures[i].result() for i in range(len(jobs))]


def expected_cost(name: str, samples: Samples, cfg, kwargs: Mapping | None = None) -> tuple[int, float]:
    """A fit's expected cost, to order the jobs of :func:`fit_models` (longest first); ``(class, size)`` compared
    as a tuple, a larger tuple expected to take longer.

    Torch models (class 1): analytic forward FLOPs per window (:func:`glass_sm.models.count_flops`, the
    bidirectional and attention terms included) x epoch cap. XGBoost (class 0, after every torch fit: on the demo
    a boosting fit takes a fraction of a network's): training rows x columns (the target day's ``F`` or the
    window's ``L * F``) x ``n_estimators``. A heuristic only: the order of submission changes no result (each fit
    is seeded in its own process), only how well the fits fill the workers.
    """
    kw = dict(kwargs or {})
    seed = int(cfg.run.seed if kw.get("seed") is None else kw["seed"])
    hp = _fit_hparams(name, samples, cfg, seed)
    F, L = samples.n_features, samples.window
    if not is_torch_model(name):
        hp = {**model_class(name).default_hparams, **hp}
        cols = L * F if hp.get("inputs") == "window" else F
        return 0, float(len(samples.train)) * cols * float(hp.get("n_estimators", 1))
    epochs = int(kw.get("epochs") or cfg.training.epochs)
    return 1, float(count_flops(build_model(name, F, L, **hp), L, F)) * epochs


def submission_order(jobs: Sequence[tuple[str, Samples, dict]], cfg) -> list[int]:
    """Indices of ``jobs`` longest first (:func:`expected_cost`; ties keep the given order): with a pool of
    workers, starting the longest fits first leaves the short ones to fill the gaps at the end (the "longest
    processing time first" rule), where submitting in the given order can leave one worker running the longest
    fit alone. The results are returned in the given order whatever the submission order."""
    costs = [expected_cost(name, samples, cfg, kw) for name, samples, kw in jobs]
    return sorted(range(len(jobs)), key=lambda i: (-costs[i][0], -costs[i][1], i))
