"""Soil-moisture models: the recurrent family (LSTM, Bi-LSTM, AtLSTM), a Transformer and XGBoost.

Torch models take ``x`` of shape ``(batch, L, n_features)`` (float32) and return ``(batch,)`` soil moisture in
m3 m-3; XGBoost takes the same windows and flattens them. Build them by name with :func:`build_model`.
"""

from glass_sm.models.lstm import AtLSTMRegressor, BiLSTMRegressor, LSTMRegressor
from glass_sm.models.registry import MODEL_REGISTRY, build_model, count_flops, default_hparams
from glass_sm.models.transformer import TransformerRegressor
from glass_sm.models.xgb import XGBoostRegressor

__all__ = [
    "MODEL_REGISTRY",
    "AtLSTMRegressor",
    "BiLSTMRegressor",
    "LSTMRegressor",
    "TransformerRegressor",
    "XGBoostRegressor",
    "build_model",
    "count_flops",
    "default_hparams",
]
from glass_sm.models.checkpoint import load_checkpoint, LoadedModel, CheckpointMismatchError
