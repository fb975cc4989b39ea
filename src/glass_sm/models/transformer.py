"""Transformer-encoder soil-moisture regressor (one of the stage-02 comparison models)."""

from __future__ import annotations

import math

import torch
from torch import nn

from glass_sm.models.lstm import RegressionHead

__all__ = ["TransformerRegressor", "sinusoidal_encoding"]


def sinusoidal_encoding(length: int, d_model: int) -> torch.Tensor:
    """Fixed sinusoidal positional encoding (Vaswani et al. 2017).

    .. math::
        P_{t, 2i} = \\sin(t / 10000^{2i/d}), \\quad P_{t, 2i+1} = \\cos(t / 10000^{2i/d})

    Parameters
    ----------
    length : int
        Number of positions ``L`` (days).
    d_model : int
        Embedding width ``d``.

    Returns
    -------
    torch.Tensor
        ``(length, d_model)`` float32.
    """
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    encoding = torch.zeros(length, d_model)
    encoding[:, 0::2] = torch.sin(position * frequency)
    encoding[:, 1::2] = torch.cos(position * frequency[: d_model // 2])
    return encoding


class TransformerRegressor(nn.Module):
    """Linear embedding + sinusoidal positions + Transformer encoder, read out at the last position.

    .. math::
        z_t = W_e x_t + P_t, \\quad (u_1, \\dots, u_L) = \\mathrm{Encoder}(z_1, \\dots, z_L),
        \\quad \\hat y = \\mathrm{MLP}(u_L)

    The encoder is unmasked (every day attends to every day of the window), so the last position ``u_L``, the
    target day, already summarises the whole window; it is used rather than a mean over positions so that the
    target day keeps its own identity, as in the recurrent models. Post-norm encoder layers with ReLU.

    Parameters
    ----------
    n_features : int
        Input features per step.
    window : int
        Window length ``L``, days; the longest window accepted at run time.
    d_model : int
        Embedding width.
    n_heads : int
        Attention heads (must divide ``d_model``).
    num_layers : int
        Encoder layers.
    dim_feedforward : int or None
        Width of the feed-forward block (None: ``2 d_model``).
    dropout : float
        Dropout in the encoder and in the head, dimensionless.
    """

    default_hparams = {"d_model": 64, "n_heads": 4, "num_layers": 2, "dim_feedforward": None, "dropout": 0.1}
    hparam_ranges = {"d_model": {"ge": 1}, "n_heads": {"ge": 1}, "num_layers": {"ge": 1},
                     "dim_feedforward": {"ge": 1}, "dropout": {"ge": 0, "lt": 1}}
    display_name = "Transformer"
    color = "#CC79A7"  # Okabe-Ito reddish purple

    def __init__(
        self,
        n_features: int,
        window: int,
        d_model: int = 64,
        n_heads: int = 4,
        num_layers: int = 2,
        dim_feedforward: int | None = None,
        dropout: float = 0.1,
    ):
        super().__init__()
        dim_feedforward = dim_feedforward or 2 * d_model
        self.n_features, self.window = n_features, window
        self.d_model, self.n_heads, self.num_layers = d_model, n_heads, num_layers
        self.dim_feedforward = dim_feedforward
        self.embedding = nn.Linear(n_features, d_model)
        self.register_buffer("positional_encoding", sinusoidal_encoding(window, d_model), persistent=False)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward=dim_feedforward, dropout=dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=num_layers, enable_nested_tensor=False)
        self.head = RegressionHead(d_model, d_model, dropout)

    @staticmethod
    def check_hparams(hparams: dict) -> None:
        """Raise ValueError when ``n_heads`` does not divide ``d_model`` (each head attends over ``d_model /
        n_heads`` dimensions)."""
        d_model, n_heads = hparams["d_model"], hparams["n_heads"]
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict soil moisture, m3 m-3, shape ``(batch,)``, from ``x`` of shape ``(batch, L, n_features)``."""
        length = x.shape[1]
        if length > self.window:
            raise ValueError(f"window of {length} steps is longer than the model's maximum {self.window}")
        z = self.embedding(x) + self.positional_encoding[:length]
        return self.head(self.encoder(z)[:, -1])

    def forward_flops(self, window: int, n_features: int) -> int:
        """Analytic forward FLOPs for one window (all ``L`` positions go through every layer).

        Embedding ``2 F d L`` + positions ``L d``; per layer: Q, K, V ``6 d^2 L``, scores ``2 L^2 d``, scaling
        ``L^2 n_heads``, softmax ``3 L^2 n_heads``, weighting ``2 L^2 d``, output projection ``2 d^2 L``, two
        residual adds ``2 L d``, two LayerNorms ``5 L d`` each, feed-forward ``4 d f L + f L``; then the head.
        """
        d, f, heads, L = self.d_model, self.dim_feedforward, self.n_heads, window
        attention = 6 * d * d * L + 2 * L * L * d + L * L * heads + 3 * L * L * heads + 2 * L * L * d + 2 * d * d * L
        per_layer = attention + 2 * L * d + 2 * 5 * L * d + 4 * d * f * L + f * L
        return 2 * n_features * d * L + L * d + self.num_layers * per_layer + self.head.flops()
