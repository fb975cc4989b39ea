"""The model zoo by name: adding a model is one module plus one line in :data:`MODEL_REGISTRY`.

Every registered class is built as ``cls(n_features, window, **hparams)`` and declares its hyperparameters and
their defaults in a ``default_hparams`` class attribute; torch models also implement
``forward_flops(window, n_features)``.
"""

from __future__ import annotations

import difflib

from torch import nn

from glass_sm.models.lstm import AtLSTMRegressor, BiLSTMRegressor, LSTMRegressor
from glass_sm.models.transformer import TransformerRegressor
from glass_sm.models.xgb import XGBoostRegressor

__all__ = ["MODEL_REGISTRY", "build_model", "count_flops", "default_hparams"]

MODEL_REGISTRY: dict[str, type] = {
    "lstm": LSTMRegressor,
    "bilstm": BiLSTMRegressor,
    "atlstm": AtLSTMRegressor,
    "transformer": TransformerRegressor,
    "xgboost": XGBoostRegressor,
}
"""Model classes by the names used in the parameters (``models.names``) and in checkpoints."""


def _closest_hint(word: str, valid) -> str:
    close = difflib.get_close_matches(str(word), list(valid), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _model_class(name: str) -> type:
    try:
        return MODEL_REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model '{name}'{_closest_hint(name, MODEL_REGISTRY)}; valid: {', '.join(MODEL_REGISTRY)}"
        ) from None


def default_hparams(name: str) -> dict:
    """Default hyperparameters of a registered model.

    Parameters
    ----------
    name : str
        Key of :data:`MODEL_REGISTRY`.

    Returns
    -------
    dict
        A copy of the class's ``default_hparams``.
    """
    return dict(_model_class(name).default_hparams)


def build_model(name: str, n_features: int, window: int, **hparams):
    """Build a registered model; hyperparameters not given take the class defaults.

    Parameters
    ----------
    name : str
        Key of :data:`MODEL_REGISTRY` (``'lstm'``, ``'bilstm'``, ``'atlstm'``, ``'transformer'``, ``'xgboost'``).
    n_features : int
        Input features per step.
    window : int
        Window length ``L``, days.
    **hparams
        Overrides of :func:`default_hparams`; an unknown key is an error.

    Returns
    -------
    torch.nn.Module or XGBoostRegressor
        The untrained model (torch weights drawn from the current torch RNG state).

    Raises
    ------
    ValueError
        Unknown model name or hyperparameter, naming the valid ones and the closest match.
    """
    cls = _model_class(name)
    for key in hparams:
        if key not in cls.default_hparams:
            raise ValueError(
                f"model '{name}': unknown hyperparameter '{key}'{_closest_hint(key, cls.default_hparams)}; "
                f"valid: {', '.join(cls.default_hparams)}"
            )
    return cls(n_features, window, **{**cls.default_hparams, **hparams})


def count_flops(model: nn.Module, window: int | None = None, n_features: int | None = None) -> int:
    """Analytic forward FLOPs to predict one window (inference, batch size 1).

    Convention: a multiply-add is 2 FLOPs (dense ``in -> out``: ``2 in out``, bias included); activations and
    element-wise operations 1 FLOP per element; dropout 0. An LSTM layer costs ``8h(in + h) + 9h`` per step
    (see :func:`glass_sm.models.lstm.lstm_flops`); each model's ``forward_flops`` documents the rest.

    Parameters
    ----------
    model : torch.nn.Module
        A recurrent or Transformer model of the registry.
    window : int, optional
        Window length ``L``, days (default: the model's).
    n_features : int, optional
        Input features per step (default: the model's).

    Returns
    -------
    int
        FLOPs per window.

    Raises
    ------
    TypeError
        For models without an analytic count (e.g. XGBoost).
    """
    if not hasattr(model, "forward_flops"):
        raise TypeError(f"no analytic FLOP count for {type(model).__name__}")
    window = model.window if window is None else window
    n_features = model.n_features if n_features is None else n_features
    return int(model.forward_flops(window, n_features))
