"""glass_sm.models.transformer: window limit, positional encoding, FLOPs super-linear in the window."""

import pytest
import torch

from glass_sm.models import TransformerRegressor, build_model, count_flops


def _windows(batch=5, window=7, n_features=3, seed=0):
    return torch.randn(batch, window, n_features, generator=torch.Generator().manual_seed(seed))


def test_transformer_window_limit():
    model = build_model("transformer", 3, 7, d_model=8, n_heads=2).eval()
    assert model(_windows(window=4)).shape == (5,)
    with pytest.raises(ValueError, match="longer"):
        model(_windows(window=8))


def test_transformer_positional_encoding_not_in_state_dict():
    model = TransformerRegressor(3, 7, d_model=8, n_heads=2)
    assert "positional_encoding" not in model.state_dict()
    assert model.positional_encoding.shape == (7, 8)


def test_transformer_flops_super_linear_in_the_window():
    transformer = build_model("transformer", 5, 60, d_model=16, n_heads=2)
    # the attention terms make the Transformer super-linear in the window
    assert count_flops(transformer, window=60) > 2 * count_flops(transformer, window=30)
