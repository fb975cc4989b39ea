"""Soil-moisture models: the recurrent family (LSTM, Bi-LSTM, AtLSTM and its [c; h_L] head ablation), a
Transformer, and XGBoost (the paper's target-day benchmark and the flattened-window ablation).

Torch models take ``x`` of shape ``(batch, L, n_features)`` (float32) and return ``(batch,)`` soil moisture in
m3 m-3; XGBoost takes the same windows and reads the target day (or flattens them). Build them by name with :func:`build_model`, with the
run's hyperparameters from :func:`model_hparams`; name them with :func:`display_name` and :func:`model_color`.

Adding a model: one module defining the class (``default_hparams``, ``display_name``, ``color``; see
:mod:`glass_sm.models.registry`) and one line in :data:`MODEL_REGISTRY`; ``models.names`` and
``models.hparams.<name>`` of the parameters then accept it.

Modules: :mod:`~glass_sm.models.registry` (names -> classes, hyperparameters), :mod:`~glass_sm.models.lstm`,
:mod:`~glass_sm.models.transformer`, :mod:`~glass_sm.models.xgb`, :mod:`~glass_sm.models.checkpoint` (the
checkpoint format, production checkpoints). Nothing here imports the training loop, the stages or the figures.
"""

from glass_sm.models.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointIntegrityError,
    CheckpointMismatchError,
    LoadedModel,
    UnverifiedCheckpointWarning,
    load_checkpoint,
    load_model_weights,
    save_checkpoint,
    save_production_checkpoint,
)
from glass_sm.models.lstm import AtLSTMContextLastRegressor, AtLSTMRegressor, BiLSTMRegressor, LSTMRegressor
from glass_sm.models.registry import (
    MODEL_REGISTRY,
    build_model,
    count_flops,
    default_hparams,
    display_name,
    is_torch_model,
    model_color,
    model_hparams,
)
from glass_sm.models.transformer import TransformerRegressor
from glass_sm.models.xgb import XGBoostRegressor, XGBoostWindowRegressor

__all__ = [
    "CHECKPOINT_FORMAT",
    "MODEL_REGISTRY",
    "AtLSTMContextLastRegressor",
    "AtLSTMRegressor",
    "BiLSTMRegressor",
    "CheckpointIntegrityError",
    "CheckpointMismatchError",
    "LSTMRegressor",
    "LoadedModel",
    "TransformerRegressor",
    "UnverifiedCheckpointWarning",
    "XGBoostRegressor",
    "XGBoostWindowRegressor",
    "build_model",
    "count_flops",
    "default_hparams",
    "display_name",
    "is_torch_model",
    "load_checkpoint",
    "load_model_weights",
    "model_color",
    "model_hparams",
    "save_checkpoint",
    "save_production_checkpoint",
]
