"""Permutation feature importance: how much worse a model gets when one input is scrambled across windows."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from glass_sm.evaluation import metrics as M
from glass_sm.models import XGBoostRegressor
from glass_sm.training import predict

__all__ = ["permutation_importance"]


def _predictor(model, batch_size: int = 4096) -> Callable[[np.ndarray], np.ndarray]:
    """A function ``(n, L, F)`` float32 windows -> ``(n,)`` soil moisture (m3 m-3) for a model of any kind."""
    if isinstance(model, (XGBoostRegressor, torch.nn.Module)):
        return lambda x: predict(model, x, batch_size)
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
        m3 m-3), ``importance_sd`` (m3 m-3), ``r2_drop`` (mean decrease of R2, dimensionless), ``base_rmse``
        (m3 m-3), ``base_r2``, ``repeats``.

    Raises
    ------
    ValueError
        ``x`` is not ``(n, L, F)`` with ``F = len(feature_names)`` and ``n = len(y)``.
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
