"""Model zoo: shapes, attention, registry, FLOP counts and the XGBoost wrapper."""

import numpy as np
import pytest
import torch

from glass_sm.models import (
    MODEL_REGISTRY,
    AtLSTMRegressor,
    LSTMRegressor,
    TransformerRegressor,
    XGBoostRegressor,
    build_model,
    count_flops,
    default_hparams,
)

TORCH_MODELS = ["lstm", "bilstm", "atlstm", "transformer"]
SMALL = {
    "lstm": {"hidden_size": 8},
    "bilstm": {"hidden_size": 8},
    "atlstm": {"hidden_size": 8},
    "transformer": {"d_model": 8, "n_heads": 2},
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and spin-waiting OpenMP threads crawl on a busy 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _windows(batch=5, window=7, n_features=3, seed=0):
    return torch.randn(batch, window, n_features, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_output_shape_and_dtype(name):
    torch.manual_seed(0)
    model = build_model(name, n_features=3, window=7, **SMALL[name]).eval()
    out = model(_windows())
    assert out.shape == (5,) and out.dtype == torch.float32
    assert model(_windows(batch=1)).shape == (1,)


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


def test_transformer_window_limit():
    model = build_model("transformer", 3, 7, d_model=8, n_heads=2).eval()
    assert model(_windows(window=4)).shape == (5,)
    with pytest.raises(ValueError, match="longer"):
        model(_windows(window=8))


def test_registry_names_and_defaults():
    assert list(MODEL_REGISTRY) == ["lstm", "bilstm", "atlstm", "transformer", "xgboost"]
    model = build_model("lstm", 4, 30)
    assert isinstance(model, LSTMRegressor)
    assert (model.hidden_size, model.num_layers, model.window) == (64, 2, 30)
    assert default_hparams("atlstm")["hidden_size"] == 64
    assert isinstance(build_model("xgboost", 4, 30), XGBoostRegressor)


def test_registry_rejects_unknown_names():
    with pytest.raises(ValueError, match="did you mean 'atlstm'") as info:
        build_model("atlstn", 3, 7)
    for name in MODEL_REGISTRY:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="did you mean 'hidden_size'"):
        build_model("lstm", 3, 7, hiden_size=8)


def test_count_flops_one_layer_lstm_by_hand():
    # h = 4, in = 3, L = 5, head 4 -> 4 -> 1
    model = build_model("lstm", n_features=3, window=5, hidden_size=4, num_layers=1, dropout=0.0)
    per_step = 2 * 4 * 4 * (3 + 4) + 9 * 4  # gate mat-vecs (224) + element-wise (36)
    head = 2 * 4 * 4 + 4 + 2 * 4  # Linear(4, 4) + ReLU + Linear(4, 1)
    assert count_flops(model, window=5, n_features=3) == 5 * per_step + head == 1344
    assert count_flops(model) == 1344  # defaults: the model's window and features


def test_count_flops_orders():
    sizes = {"lstm": {"hidden_size": 16}, "bilstm": {"hidden_size": 16}, "atlstm": {"hidden_size": 16}}
    flops = {name: count_flops(build_model(name, 5, 30, **hp)) for name, hp in sizes.items()}
    assert flops["lstm"] < flops["atlstm"] < flops["bilstm"]
    transformer = build_model("transformer", 5, 60, d_model=16, n_heads=2)
    # the attention terms make the Transformer super-linear in the window
    assert count_flops(transformer, window=60) > 2 * count_flops(transformer, window=30)
    lstm = build_model("lstm", 5, 60)
    assert count_flops(lstm, window=60) - count_flops(lstm, window=30) == pytest.approx(
        count_flops(lstm, window=30) - count_flops(lstm, window=0)
    )
    with pytest.raises(TypeError, match="XGBoost"):
        count_flops(build_model("xgboost", 5, 30))


def test_attention_flops_by_hand():
    model = AtLSTMRegressor(n_features=2, window=3, hidden_size=2, num_layers=1, attention_size=3)
    lstm = 3 * (8 * 2 * (2 + 2) + 9 * 2)
    attention = 2 * 3 * 2 * 3 + 2 * 2 * 3 + 3 * 3 + 3 * 3 + 2 * 3 * 3 + 3 * 3 + 2 * 3 * 2
    head = 2 * 4 * 2 + 2 + 2 * 2
    assert count_flops(model) == lstm + attention + head


def test_transformer_positional_encoding_not_in_state_dict():
    model = TransformerRegressor(3, 7, d_model=8, n_heads=2)
    assert "positional_encoding" not in model.state_dict()
    assert model.positional_encoding.shape == (7, 8)


@pytest.fixture
def xgb_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 6, 3)).astype(np.float32)
    y = (0.25 + 0.05 * X[:, 2, 0] + 0.02 * rng.standard_normal(600)).astype(np.float32)
    return X[:450], y[:450], X[450:], y[450:]


def _xgb(**hp):
    return build_model("xgboost", 3, 6, n_estimators=400, learning_rate=0.3, early_stopping_rounds=5, **hp)


def test_xgboost_early_stopping(xgb_data):
    model = _xgb().fit(*xgb_data)
    assert model.n_rounds < 400
    assert model.n_rounds == model.best_iteration + 1 + 5
    history = model.history
    assert len(history) == model.n_rounds
    assert history.val_rmse.idxmin() == model.best_iteration
    assert history.val_rmse.min() < history.val_rmse.iloc[0]  # validation error improved
    assert model.predict(xgb_data[2]).shape == (150,)


def test_xgboost_deterministic_and_save_load(xgb_data, tmp_path):
    model = _xgb().fit(*xgb_data)
    X_test = xgb_data[2]
    prediction = model.predict(X_test)
    np.testing.assert_array_equal(_xgb().fit(*xgb_data).predict(X_test), prediction)
    path = model.save(tmp_path / "xgboost.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xgboost.json"]  # no temporary left
    loaded = XGBoostRegressor.load(path)
    np.testing.assert_array_equal(loaded.predict(X_test), prediction)
    assert (loaded.best_iteration, loaded.window, loaded.hparams) == (model.best_iteration, 6, model.hparams)
    np.testing.assert_array_equal(loaded.predict(X_test.reshape(150, 18)), prediction)  # flat input too


def test_xgboost_input_checks(xgb_data):
    with pytest.raises(ValueError, match="unknown XGBoost"):
        XGBoostRegressor(3, 6, max_dept=3)
    with pytest.raises(RuntimeError, match="not fitted"):
        XGBoostRegressor(3, 6).predict(xgb_data[2])
    model = build_model("xgboost", 3, 6, n_estimators=3).fit(xgb_data[0], xgb_data[1])  # no validation set
    assert model.n_rounds == 3 and model.history.empty
    with pytest.raises(ValueError, match=r"\(batch, 6, 3\)"):
        model.predict(np.zeros((4, 5, 3), dtype=np.float32))
