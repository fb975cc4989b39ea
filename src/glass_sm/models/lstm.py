"""Recurrent soil-moisture regressors: LSTM, bidirectional LSTM and the attention LSTM (AtLSTM) of the paper.

All models map a window ``x`` of shape ``(batch, L, n_features)`` (float32, normalised features, the last step
being the target day) to ``(batch,)`` soil moisture in m3 m-3.

FLOP counting convention (:meth:`forward_flops`, used by :func:`glass_sm.models.count_flops`): one
multiply-add is 2 FLOPs, so a dense layer ``in -> out`` costs ``2 in out`` (its bias add is absorbed in the
``in - 1`` adds); every element-wise operation and every activation (sigmoid, tanh, ReLU, exp) counts 1 FLOP per
element; dropout is the identity at inference and costs nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from typing import Literal

__all__ = ["ATTENTION_HEADS", "AtLSTMContextLastRegressor", "AtLSTMRegressor", "BiLSTMRegressor", "LSTMRegressor",
           "RegressionHead", "lstm_flops"]

ATTENTION_HEADS = ("context", "context_last")
"""Valid ``head`` of :class:`AtLSTMRegressor`: what the output MLP reads."""


def lstm_flops(n_in: int, hidden_size: int, window: int) -> int:
    """Forward FLOPs of one LSTM layer (one direction) over a window.

    Per step, the four gates cost ``2 * 4h (in + h)`` (the two matrix-vector products with both biases), then
    ``9h`` element-wise: 4h gate activations, ``c = f*c + i*g`` (3h), ``tanh(c)`` (h) and ``o * tanh(c)`` (h).

    .. math:: \\mathrm{FLOPs} = L \\left[ 8h(\\mathrm{in} + h) + 9h \\right]

    Parameters
    ----------
    n_in : int
        Input size of the layer.
    hidden_size : int
        Hidden units ``h``.
    window : int
        Steps ``L``, days.

    Returns
    -------
    int
        FLOPs.
    """
    return window * (8 * hidden_size * (n_in + hidden_size) + 9 * hidden_size)


class RegressionHead(nn.Module):
    """Two-layer MLP from a feature vector to one soil-moisture value: ``Linear -> ReLU -> Dropout -> Linear``.

    Parameters
    ----------
    n_in : int
        Size of the input vector.
    hidden_size : int
        Width of the hidden layer.
    dropout : float
        Dropout probability after the ReLU, dimensionless.
    """

    def __init__(self, n_in: int, hidden_size: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_in, hidden_size), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_size, 1)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, n_in)`` to ``(batch,)``."""
        return self.net(z).squeeze(-1)

    def flops(self) -> int:
        """Forward FLOPs for one vector: ``2 in hid + hid (ReLU) + 2 hid``."""
        first, last = self.net[0], self.net[-1]
        return 2 * first.in_features * first.out_features + first.out_features + 2 * last.in_features


def _lstm(n_features: int, hidden_size: int, num_layers: int, dropout: float, bidirectional: bool) -> nn.LSTM:
    # nn.LSTM applies dropout between stacked layers only; with one layer it would just warn.
    return nn.LSTM(
        n_features,
        hidden_size,
        num_layers=num_layers,
        dropout=dropout if num_layers > 1 else 0.0,
        batch_first=True,
        bidirectional=bidirectional,
    )


class LSTMRegressor(nn.Module):
    """Uni-directional stacked LSTM; the top layer's hidden state at the last step feeds an MLP head.

    .. math:: h_L = \\mathrm{LSTM}(x_1, \\dots, x_L), \\quad \\hat y = \\mathrm{MLP}(h_L)

    Parameters
    ----------
    n_features : int
        Input features per step.
    window : int
        Window length ``L``, days (kept for checkpoints and FLOP counts; any length is accepted at run time).
    hidden_size : int
        LSTM hidden units.
    num_layers : int
        Stacked LSTM layers.
    dropout : float
        Dropout between LSTM layers and in the head, dimensionless.
    """

    default_hparams = {"hidden_size": 64, "num_layers": 2, "dropout": 0.1}
    hparam_ranges = {"hidden_size": {"ge": 1}, "num_layers": {"ge": 1}, "dropout": {"ge": 0, "lt": 1}}
    display_name = "LSTM"
    color = "#56B4E9"  # Okabe-Ito sky blue

    def __init__(self, n_features: int, window: int, hidden_size: int = 64, num_layers: int = 2, dropout: float = 0.1):
        super().__init__()
        self.n_features, self.window = n_features, window
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.lstm = _lstm(n_features, hidden_size, num_layers, dropout, bidirectional=False)
        self.head = RegressionHead(hidden_size, hidden_size, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict soil moisture, m3 m-3, shape ``(batch,)``, from ``x`` of shape ``(batch, L, n_features)``."""
        hidden, _ = self.lstm(x)
        return self.head(hidden[:, -1])

    def forward_flops(self, window: int, n_features: int) -> int:
        """Analytic forward FLOPs for one window (see :func:`lstm_flops`)."""
        h = self.hidden_size
        layers = sum(lstm_flops(n_features if i == 0 else h, h, window) for i in range(self.num_layers))
        return layers + self.head.flops()


class BiLSTMRegressor(nn.Module):
    """Bidirectional stacked LSTM; the final states of both directions feed an MLP head.

    The summary vector is ``[h_fwd(L); h_bwd(1)]``: the forward direction's state after reading the window up to
    the last step and the backward direction's state after reading it from the last step back to the first
    (``h_n`` of the top layer). Both have seen the whole window, unlike the backward state at step ``L``, which
    has seen only ``x_L``.

    Parameters
    ----------
    n_features : int
        Input features per step.
    window : int
        Window length ``L``, days.
    hidden_size : int
        LSTM hidden units per direction.
    num_layers : int
        Stacked bidirectional layers.
    dropout : float
        Dropout between LSTM layers and in the head, dimensionless.
    """

    default_hparams = {"hidden_size": 64, "num_layers": 2, "dropout": 0.1}
    hparam_ranges = {"hidden_size": {"ge": 1}, "num_layers": {"ge": 1}, "dropout": {"ge": 0, "lt": 1}}
    display_name = "Bi-LSTM"
    color = "#E69F00"  # Okabe-Ito orange

    def __init__(self, n_features: int, window: int, hidden_size: int = 64, num_layers: int = 2, dropout: float = 0.1):
        super().__init__()
        self.n_features, self.window = n_features, window
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.lstm = _lstm(n_features, hidden_size, num_layers, dropout, bidirectional=True)
        self.head = RegressionHead(2 * hidden_size, hidden_size, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict soil moisture, m3 m-3, shape ``(batch,)``, from ``x`` of shape ``(batch, L, n_features)``."""
        _, (h_n, _) = self.lstm(x)  # h_n: (num_layers * 2, batch, h), top layer last: [forward, backward]
        return self.head(torch.cat([h_n[-2], h_n[-1]], dim=-1))

    def forward_flops(self, window: int, n_features: int) -> int:
        """Analytic forward FLOPs for one window: two directions per layer, layers above the first read ``2h``."""
        h = self.hidden_size
        layers = sum(2 * lstm_flops(n_features if i == 0 else 2 * h, h, window) for i in range(self.num_layers))
        return layers + self.head.flops()


class AtLSTMRegressor(nn.Module):
    """Attention LSTM (AtLSTM): additive attention over the LSTM hidden states of the window.

    With ``H = (h_1, ..., h_L)`` the top-layer hidden states and the last state ``h_L`` as the query
    (Bahdanau-style additive attention):

    .. math::
        e_t &= v^\\top \\tanh(W_h h_t + W_q h_L + b) \\\\
        a_t &= \\exp(e_t) / \\textstyle\\sum_{s=1}^{L} \\exp(e_s) \\\\
        c &= \\textstyle\\sum_{t=1}^{L} a_t h_t \\\\
        \\hat y &= \\mathrm{MLP}(c) \\quad (\\text{head 'context'}) \\quad\\text{or}\\quad
        \\mathrm{MLP}([c; h_L]) \\quad (\\text{head 'context\\_last'})

    ``W_h, W_q`` are ``(attention_size, h)``, ``b`` is ``(attention_size,)`` and ``v`` is ``(attention_size,)``.
    The weights ``a`` (non-negative, summing to 1 over the window) tell which days the model draws on.

    **The head (an assumption).** The paper does not publish the AtLSTM's output layer. In the classic
    attention LSTM used for soil moisture the output layer reads the attention context alone, ``MLP(c)``: the
    prediction then depends on the window only through ``c``, so the attention weights have to select the days
    that matter and their pattern can be interpreted. That is the default (``head='context'``). Feeding the head
    ``[c; h_L]`` as well (``head='context_last'``, the registry's ``atlstm_cl``, an ablation) lets the last hidden
    state, which already summarises the window, carry the prediction; the attention is then free to stay uniform
    without hurting the fit, and its weights say little.

    Parameters
    ----------
    n_features : int
        Input features per step.
    window : int
        Window length ``L``, days.
    hidden_size : int
        LSTM hidden units.
    num_layers : int
        Stacked LSTM layers.
    dropout : float
        Dropout between LSTM layers and in the head, dimensionless.
    attention_size : int or None
        Width of the attention layer (None: ``hidden_size``).
    head : {'context', 'context_last'}
        What the output MLP reads: the attention context ``c`` alone (``h`` inputs; the assumption above) or
        ``[c; h_L]`` (``2h`` inputs; the ablation). A checkpoint saved before this setting existed used
        ``'context_last'`` and loads as such (:mod:`glass_sm.models.checkpoint`).
    """

    default_hparams = {"hidden_size": 64, "num_layers": 2, "dropout": 0.1, "attention_size": None, "head": "context"}
    hparam_ranges = {"hidden_size": {"ge": 1}, "num_layers": {"ge": 1}, "dropout": {"ge": 0, "lt": 1},
                     "attention_size": {"ge": 1}}
    display_name = "AtLSTM"
    color = "#0072B2"  # Okabe-Ito blue

    def __init__(
        self,
        n_features: int,
        window: int,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.1,
        attention_size: int | None = None,
        head: Literal["context", "context_last"] = "context",
    ):
        super().__init__()
        if head not in ATTENTION_HEADS:
            raise ValueError(f"AtLSTM head must be one of {ATTENTION_HEADS}, got {head!r}")
        attention_size = attention_size or hidden_size
        self.n_features, self.window = n_features, window
        self.hidden_size, self.num_layers, self.attention_size = hidden_size, num_layers, attention_size
        self.head_input = head
        self.lstm = _lstm(n_features, hidden_size, num_layers, dropout, bidirectional=False)
        self.key = nn.Linear(hidden_size, attention_size)  # W_h, with the bias b
        self.query = nn.Linear(hidden_size, attention_size, bias=False)  # W_q
        self.score = nn.Linear(attention_size, 1, bias=False)  # v
        n_head = hidden_size if head == "context" else 2 * hidden_size
        self.head = RegressionHead(n_head, hidden_size, dropout)

    def attend(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The attention step without the head.

        Parameters
        ----------
        x : torch.Tensor
            ``(batch, L, n_features)`` float32 normalised inputs.

        Returns
        -------
        (torch.Tensor, torch.Tensor, torch.Tensor)
            Context ``c`` ``(batch, h)``, last hidden state ``h_L`` ``(batch, h)`` and attention weights
            ``(batch, L)`` (dimensionless, summing to 1 over the window).
        """
        hidden, _ = self.lstm(x)  # (B, L, h)
        last = hidden[:, -1]  # (B, h)
        energy = self.score(torch.tanh(self.key(hidden) + self.query(last).unsqueeze(1))).squeeze(-1)  # (B, L)
        attention = torch.softmax(energy, dim=1)
        context = torch.bmm(attention.unsqueeze(1), hidden).squeeze(1)  # (B, h)
        return context, last, attention

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Predict soil moisture from a window.

        Parameters
        ----------
        x : torch.Tensor
            ``(batch, L, n_features)`` float32 normalised inputs.
        return_attention : bool
            Also return the attention weights.

        Returns
        -------
        torch.Tensor or (torch.Tensor, torch.Tensor)
            Soil moisture ``(batch,)``, m3 m-3, and with ``return_attention`` the weights ``(batch, L)``,
            dimensionless, non-negative, summing to 1 over the window.
        """
        context, last, attention = self.attend(x)
        prediction = self.head(context if self.head_input == "context" else torch.cat([context, last], dim=-1))
        return (prediction, attention) if return_attention else prediction

    def forward_flops(self, window: int, n_features: int) -> int:
        """Analytic forward FLOPs for one window.

        LSTM layers (:func:`lstm_flops`) plus attention: keys ``2 L h a``, query ``2 h a``, adding the query
        ``L a``, tanh ``L a``, scores ``2 L a``, softmax ``3 L`` (exp, sum, divide), context ``2 L h``; then the
        head on ``h`` (head ``'context'``) or ``2h`` (``'context_last'``).
        """
        h, a, L = self.hidden_size, self.attention_size, window
        layers = sum(lstm_flops(n_features if i == 0 else h, h, L) for i in range(self.num_layers))
        attention = 2 * L * h * a + 2 * h * a + L * a + L * a + 2 * L * a + 3 * L + 2 * L * h
        return layers + attention + self.head.flops()


class AtLSTMContextLastRegressor(AtLSTMRegressor):
    """AtLSTM whose output MLP reads ``[c; h_L]`` (the attention context and the last hidden state): the ablation.

    The model of :class:`AtLSTMRegressor` with ``head='context_last'`` (see there for the equations, every other
    hyperparameter and why the production AtLSTM reads ``c`` alone).

    Parameters
    ----------
    head : {'context', 'context_last'}
        ``'context_last'``: the head reads ``[c; h_L]`` (``'context'`` would make it the AtLSTM).
    """

    default_hparams = {**AtLSTMRegressor.default_hparams, "head": "context_last"}
    display_name = "AtLSTM [c; h_L]"
    color = "#332288"  # Paul Tol's indigo (colour-blind safe; the Okabe-Ito palette is used up)

    def __init__(
        self,
        n_features: int,
        window: int,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.1,
        attention_size: int | None = None,
        head: Literal["context", "context_last"] = "context_last",
    ):
        super().__init__(n_features, window, hidden_size, num_layers, dropout, attention_size, head)
