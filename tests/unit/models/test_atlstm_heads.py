"""glass_sm.models.lstm: the two AtLSTM heads (context alone, the production model; [c; h_L], the ablation)."""

import pytest
import torch

from glass_sm.models import AtLSTMContextLastRegressor, AtLSTMRegressor, build_model, display_name, model_color
from glass_sm.models.registry import MODEL_REGISTRY, default_hparams

H = 8


def _model(name, **hp):
    torch.manual_seed(0)
    return build_model(name, 3, 7, hidden_size=H, num_layers=1, dropout=0.0, **hp).eval()


def _windows(batch=6, seed=0):
    return torch.randn(batch, 7, 3, generator=torch.Generator().manual_seed(seed))


def test_registry_has_both_heads_with_their_own_names_and_colours():
    assert MODEL_REGISTRY["atlstm"] is AtLSTMRegressor and MODEL_REGISTRY["atlstm_cl"] is AtLSTMContextLastRegressor
    assert default_hparams("atlstm")["head"] == "context" and default_hparams("atlstm_cl")["head"] == "context_last"
    assert display_name("atlstm_cl") == "AtLSTM [c; h_L]" and display_name("atlstm") == "AtLSTM"
    assert model_color("atlstm_cl") not in {model_color(n) for n in MODEL_REGISTRY if n != "atlstm_cl"}


def test_context_head_reads_the_attention_context_alone():
    model = _model("atlstm")
    assert model.head.net[0].in_features == H  # the head's input is c, width h
    x = _windows()
    with torch.inference_mode():
        context, last, attention = model.attend(x)
        prediction = model(x)
        # the prediction is the head applied to c alone, so given c it cannot depend on h_L (which only steers
        # the attention weights through the query)
        torch.testing.assert_close(prediction, model.head(context), rtol=0, atol=0)
    assert not torch.allclose(last, context)  # c and h_L differ: the check is not vacuous


def test_context_last_head_reads_context_and_last_state():
    model = _model("atlstm_cl")
    assert model.head.net[0].in_features == 2 * H
    x = _windows()
    with torch.inference_mode():
        context, last, _ = model.attend(x)
        torch.testing.assert_close(model(x), model.head(torch.cat([context, last], dim=-1)), rtol=0, atol=0)
        # changing h_L alone (same context) changes the prediction: the ablation's head does read it
        other = model.head(torch.cat([context, last + 1.0], dim=-1))
    assert not torch.allclose(other, model(x))


@pytest.mark.parametrize("name", ["atlstm", "atlstm_cl"])
def test_attention_sums_to_one_and_context_is_the_weighted_mean_of_the_states(name):
    model = _model(name)
    x = _windows()
    with torch.inference_mode():
        prediction, attention = model(x, return_attention=True)
        context, _, att = model.attend(x)
        hidden, _ = model.lstm(x)
    assert prediction.shape == (6,) and attention.shape == (6, 7)
    assert torch.all(attention >= 0)
    torch.testing.assert_close(attention.sum(dim=1), torch.ones(6))
    torch.testing.assert_close(attention, att, rtol=0, atol=0)
    torch.testing.assert_close(context, (attention.unsqueeze(-1) * hidden).sum(dim=1))


def test_head_can_be_set_either_way_and_a_wrong_head_is_refused():
    assert _model("atlstm", head="context_last").head.net[0].in_features == 2 * H
    assert _model("atlstm_cl", head="context").head.net[0].in_features == H
    with pytest.raises(ValueError, match="head must be one of"):
        build_model("atlstm", 3, 7, head="last")
