"""glass_sm.models.lstm: attention weights, the Bi-LSTM summary and FLOP counts by hand."""

import pytest
import torch

from glass_sm.models import AtLSTMRegressor, build_model, count_flops


def _windows(batch=5, window=7, n_features=3, seed=0):
    return torch.randn(batch, window, n_features, generator=torch.Generator().manual_seed(seed))


def test_attention_is_a_distribution_over_the_window():
    torch.manual_seed(0)
    model = build_model("atlstm", 3, 7, hidden_size=8, attention_size=5).eval()
    x = _windows(batch=6)
    prediction, attention = model(x, return_attention=True)
    assert prediction.shape == (6,) and attention.shape == (6, 7)
    assert torch.all(attention >= 0)
    torch.testing.assert_close(attention.sum(dim=1), torch.ones(6))
    torch.testing.assert_close(model(x), prediction)  # default: prediction only


def test_bilstm_summary_sees_the_whole_window_in_both_directions():
    torch.manual_seed(0)
    model = build_model("bilstm", 3, 7, hidden_size=8, num_layers=1).eval()
    x = _windows(batch=2)
    _, (h_n, _) = model.lstm(x)
    outputs, _ = model.lstm(x)
    torch.testing.assert_close(h_n[-2], outputs[:, -1, :8])  # forward state after the last day
    torch.testing.assert_close(h_n[-1], outputs[:, 0, 8:])  # backward state after reading back to day 1


def test_count_flops_one_layer_lstm_by_hand():
    # h = 4, in = 3, L = 5, head 4 -> 4 -> 1
    model = build_model("lstm", n_features=3, window=5, hidden_size=4, num_layers=1, dropout=0.0)
    per_step = 2 * 4 * 4 * (3 + 4) + 9 * 4  # gate mat-vecs (224) + element-wise (36)
    head = 2 * 4 * 4 + 4 + 2 * 4  # Linear(4, 4) + ReLU + Linear(4, 1)
    assert count_flops(model, window=5, n_features=3) == 5 * per_step + head == 1344
    assert count_flops(model) == 1344  # defaults: the model's window and features


@pytest.mark.parametrize("head, head_in", [("context", 2), ("context_last", 4)])
def test_attention_flops_by_hand(head, head_in):
    model = AtLSTMRegressor(n_features=2, window=3, hidden_size=2, num_layers=1, attention_size=3, head=head)
    lstm = 3 * (8 * 2 * (2 + 2) + 9 * 2)
    attention = 2 * 3 * 2 * 3 + 2 * 2 * 3 + 3 * 3 + 3 * 3 + 2 * 3 * 3 + 3 * 3 + 2 * 3 * 2
    head_flops = 2 * head_in * 2 + 2 + 2 * 2  # Linear(head_in, 2) + ReLU + Linear(2, 1)
    assert count_flops(model) == lstm + attention + head_flops


def test_lstm_flops_linear_in_the_window():
    lstm = build_model("lstm", 5, 60)
    assert count_flops(lstm, window=60) - count_flops(lstm, window=30) == count_flops(
        lstm, window=30
    ) - count_flops(lstm, window=0)
