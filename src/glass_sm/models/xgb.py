"""Gradient-boosted trees (XGBoost): the paper's benchmark without temporal information, and a window ablation.

Two registered models share :class:`XGBoostRegressor`:

``xgboost`` (:class:`XGBoostRegressor`, ``inputs='target_day'``)
    The paper's benchmark. Zhang et al. (2025) frame XGBoost as the model *without temporal information*, in
    contrast with the sequence models; we read that as an XGBoost fed the target day's features only (dynamic
    inputs of that day, the static fields and the day of year, which :mod:`glass_sm.data.features` already
    carries as per-step features). This is an inference from the paper's framing, not a documented setting.
``xgboost_window`` (:class:`XGBoostWindowRegressor`, ``inputs='window'``)
    Our ablation: the whole window flattened to ``L * n_features`` columns, i.e. trees that *can* use the
    history; it separates "what the sequence adds" from "what a sequence architecture adds".

Both take the same ``(batch, L, n_features)`` windows as the torch models, so every model of stage 02 is trained
and scored on identical samples.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import xgboost

from glass_sm.paths import atomic_write

__all__ = ["XGBoostRegressor", "XGBoostWindowRegressor", "INPUTS"]

_CONFIG_ATTR = "glass_sm_config"  # booster attribute holding the wrapper's constructor arguments
INPUTS = ("target_day", "window")
"""Valid ``inputs`` of :class:`XGBoostRegressor`."""
_LEGACY_INPUTS = "window"  # a model saved before ``inputs`` existed was trained on the flattened window


class XGBoostRegressor:
    """XGBoost regressor on the target day's features (default, the paper's benchmark) or on the whole window.

    ``inputs='target_day'`` reads only step ``target_step`` of each ``(batch, L, n_features)`` window (the
    ``n_features`` features of the target day, static fields and day of year included); every other day of the
    window is ignored. ``inputs='window'`` flattens the window to ``(batch, L * n_features)`` (step-major: day
    1's features, ...).

    Trees are grown with the ``hist`` method on ``n_jobs`` CPU threads with a fixed seed, so the same data give
    the same model. With a validation set, boosting stops after ``early_stopping_rounds`` rounds without
    improvement of the validation RMSE and :meth:`predict` uses the best round. The native ``xgboost.train``
    API is used (the scikit-learn wrapper would need scikit-learn, which is not a dependency).

    Parameters
    ----------
    n_features : int
        Input features per step.
    window : int
        Window length ``L``, days.
    n_estimators : int
        Maximum boosting rounds.
    max_depth : int
        Maximum tree depth.
    learning_rate : float
        Shrinkage, dimensionless.
    subsample, colsample_bytree : float
        Row and column subsampling fractions per tree, dimensionless in (0, 1].
    min_child_weight : float
        Minimum hessian sum in a leaf (samples, for squared error).
    early_stopping_rounds : int or None
        Patience in rounds; ignored when :meth:`fit` gets no validation set.
    n_jobs : int
        CPU threads.
    seed : int
        Random seed of the subsampling.
    tree_method : str
        XGBoost tree method.
    inputs : {'target_day', 'window'}
        Which days of the window the trees see: the target day only (no temporal information, the paper's
        benchmark as we read it) or all ``L`` days flattened (the window ablation).
    target_step : int
        Index of the target day inside the window, ``0 .. L - 1`` (``-1``: the last step, a 'past' window); a
        'centred' window has it in the middle. Stage 02 sets it from the samples' window mode
        (:func:`glass_sm.stages.s02_models.fit_model`), overriding a parameter-file value. Ignored by
        ``inputs='window'``.

    Attributes
    ----------
    booster : xgboost.Booster or None
        The trained trees (None before :meth:`fit` or :meth:`load`).
    evals_result : dict
        Validation RMSE per round as ``xgboost.train`` records it (see :attr:`history`).
    train_seconds : float
        Wall time of the last :meth:`fit`, s.
    """

    default_hparams = {
        "n_estimators": 600,
        "max_depth": 8,
        "learning_rate": 0.1,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 1.0,
        "early_stopping_rounds": 20,
        "n_jobs": 2,
        "seed": 0,
        "tree_method": "hist",
        "inputs": "target_day",
        "target_step": -1,
    }
    hparam_ranges = {
        "n_estimators": {"ge": 1},
        "max_depth": {"ge": 1},
        "learning_rate": {"gt": 0, "le": 1},
        "subsample": {"gt": 0, "le": 1},
        "colsample_bytree": {"gt": 0, "le": 1},
        "min_child_weight": {"ge": 0},
        "early_stopping_rounds": {"ge": 1},
        "n_jobs": {"ge": 1},
        "seed": {"ge": 0},
        "target_step": {"ge": -1},
    }
    display_name = "XGBoost"
    color = "#D55E00"  # Okabe-Ito vermillion

    def __init__(self, n_features: int, window: int, *, inputs: Literal["target_day", "window"] = "target_day",
                 target_step: int = -1, **hparams):
        hparams = {"inputs": inputs, "target_step": target_step, **hparams}
        unknown = sorted(set(hparams) - set(self.default_hparams))
        if unknown:
            raise ValueError(f"unknown XGBoost hyperparameter(s) {unknown}; valid: {sorted(self.default_hparams)}")
        if inputs not in INPUTS:
            raise ValueError(f"XGBoost inputs must be one of {INPUTS}, got {inputs!r}")
        if not -1 <= int(target_step) < window:
            raise ValueError(f"XGBoost target_step {target_step} is outside a window of {window} steps")
        self.n_features, self.window = n_features, window
        self.hparams = {**self.default_hparams, **hparams}
        self.booster: xgboost.Booster | None = None
        self.evals_result: dict = {}
        self.train_seconds = float("nan")

    def _booster_params(self) -> dict:
        hp = self.hparams
        return {
            "objective": "reg:squarederror",
            "eval_metric": "rmse",
            "eta": hp["learning_rate"],
            "max_depth": hp["max_depth"],
            "subsample": hp["subsample"],
            "colsample_bytree": hp["colsample_bytree"],
            "min_child_weight": hp["min_child_weight"],
            "tree_method": hp["tree_method"],
            "nthread": hp["n_jobs"],
            "seed": hp["seed"],
        }

    @property
    def inputs(self) -> str:
        """``'target_day'`` or ``'window'`` (see the class docstring)."""
        return str(self.hparams["inputs"])

    @property
    def n_columns(self) -> int:
        """Columns the trees see: ``n_features`` (target day) or ``L * n_features`` (window)."""
        return self.n_features if self.inputs == "target_day" else self.window * self.n_features

    def _flatten(self, X) -> np.ndarray:
        """The tree inputs ``(batch, n_columns)`` of windows ``(batch, L, n_features)`` (or already flat)."""
        X = np.asarray(X, dtype=np.float32)
        width = self.window * self.n_features
        if X.ndim == 3 and X.shape[1:] == (self.window, self.n_features):
            if self.inputs == "target_day":
                return np.ascontiguousarray(X[:, int(self.hparams["target_step"])])
            return X.reshape(len(X), width)
        if X.ndim == 2 and X.shape[1] == width:
            return self._flatten(X.reshape(len(X), self.window, self.n_features))
        if X.ndim == 2 and X.shape[1] == self.n_columns:
            return X
        raise ValueError(
            f"expected windows of shape (batch, {self.window}, {self.n_features}) or (batch, {width}), got {X.shape}"
        )

    def fit(self, X, y, X_val=None, y_val=None, verbose: bool = False) -> XGBoostRegressor:
        """Train on windows, with early stopping on the validation RMSE when a validation set is given.

        Parameters
        ----------
        X : array_like
            ``(batch, L, n_features)`` (or already flat) normalised inputs.
        y : array_like
            ``(batch,)`` target soil moisture, m3 m-3.
        X_val, y_val : array_like, optional
            Validation windows and targets (m3 m-3) for early stopping.
        verbose : bool
            Print the evaluation of every round.

        Returns
        -------
        XGBoostRegressor
            ``self``.
        """
        train = xgboost.DMatrix(self._flatten(X), label=np.asarray(y, dtype=np.float32), nthread=self.hparams["n_jobs"])
        evals, patience = [], None
        if X_val is not None and y_val is not None:
            val = xgboost.DMatrix(self._flatten(X_val), label=np.asarray(y_val, dtype=np.float32))
            evals, patience = [(val, "validation")], self.hparams["early_stopping_rounds"]
        self.evals_result = {}
        start = time.perf_counter()
        self.booster = xgboost.train(
            self._booster_params(),
            train,
            num_boost_round=self.hparams["n_estimators"],
            evals=evals,
            early_stopping_rounds=patience,
            evals_result=self.evals_result,
            verbose_eval=verbose,
        )
        self.train_seconds = time.perf_counter() - start
        config = {"n_features": self.n_features, "window": self.window, **self.hparams}
        self.booster.set_attr(**{_CONFIG_ATTR: json.dumps(config)})
        return self

    def _fitted(self) -> xgboost.Booster:
        if self.booster is None:
            raise RuntimeError("XGBoostRegressor is not fitted; call fit() or load() first")
        return self.booster

    @property
    def stop_reason(self) -> str:
        """Why boosting ended: ``'early-stopped'`` (the validation RMSE stopped improving for
        ``early_stopping_rounds`` rounds before ``n_estimators``) or ``'budget cap'`` (``n_estimators`` rounds
        grown, or no validation set)."""
        return "early-stopped" if self.n_rounds < int(self.hparams["n_estimators"]) else "budget cap"

    @property
    def n_rounds(self) -> int:
        """Boosting rounds actually grown (the best round plus the patience when stopped early)."""
        return int(self._fitted().num_boosted_rounds())

    @property
    def best_iteration(self) -> int:
        """0-based index of the round with the lowest validation RMSE (the last round without validation)."""
        booster = self._fitted()
        return int(booster.best_iteration) if booster.attr("best_iteration") is not None else self.n_rounds - 1

    @property
    def history(self) -> pd.DataFrame:
        """Validation RMSE (m3 m-3) per round: ``iteration``, ``val_rmse`` (empty without validation or after load)."""
        rmse = self.evals_result.get("validation", {}).get("rmse", [])
        return pd.DataFrame({"iteration": np.arange(len(rmse)), "val_rmse": rmse})

    def predict(self, X) -> np.ndarray:
        """Predict soil moisture, m3 m-3, ``(batch,)`` float32, from ``(batch, L, n_features)`` windows.

        Uses the trees up to :attr:`best_iteration`.
        """
        booster = self._fitted()
        prediction = booster.inplace_predict(self._flatten(X), iteration_range=(0, self.best_iteration + 1))
        return np.asarray(prediction, dtype=np.float32)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model in XGBoost's JSON format (atomically), with the wrapper's settings inside.

        Parameters
        ----------
        path : path-like
            Target file; should end with ``.json``.

        Returns
        -------
        Path
            The written file.
        """
        path = Path(path)
        text = bytes(self._fitted().save_raw(raw_format="json"))  # the bytes save_model writes to a .json file
        with atomic_write(path) as tmp:
            tmp.write_bytes(text)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> XGBoostRegressor:
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path : path-like
            File written by :meth:`save`.

        Returns
        -------
        XGBoostRegressor
            Ready to :meth:`predict`. A file written before ``inputs`` existed holds a model trained on the
            flattened window and loads with ``inputs='window'``; the class is the one registered for its
            ``inputs`` (:class:`XGBoostWindowRegressor` for ``'window'``).
        """
        booster = xgboost.Booster(model_file=str(path))
        config_text = booster.attr(_CONFIG_ATTR)
        if config_text is None:
            raise ValueError(f"{path}: not written by XGBoostRegressor.save (no '{_CONFIG_ATTR}' attribute)")
        config = json.loads(config_text)
        config.setdefault("inputs", _LEGACY_INPUTS)
        config.setdefault("target_step", -1)
        kind = XGBoostWindowRegressor if config["inputs"] == "window" else XGBoostRegressor
        wrapper = kind(config.pop("n_features"), config.pop("window"), **config)
        wrapper.booster = booster
        return wrapper


class XGBoostWindowRegressor(XGBoostRegressor):
    """XGBoost on the whole window flattened to ``L * n_features`` columns: the ablation of stage 02.

    Same trees and settings as :class:`XGBoostRegressor` (every other hyperparameter is documented there); only
    the default of ``inputs`` differs.

    Parameters
    ----------
    inputs : {'target_day', 'window'}
        ``'window'``: the trees see all ``L`` days (``'target_day'`` would make it the benchmark).
    target_step : int
        Index of the target day inside the window (unused with ``inputs='window'``; kept so both models take the
        same hyperparameters).
    """

    default_hparams = {**XGBoostRegressor.default_hparams, "inputs": "window"}
    display_name = "XGBoost (window)"
    color = "#009E73"  # Okabe-Ito bluish green

    def __init__(self, n_features: int, window: int, *, inputs: Literal["target_day", "window"] = "window",
                 target_step: int = -1, **hparams):
        super().__init__(n_features, window, inputs=inputs, target_step=target_step, **hparams)
