"""glass_sm.training: learning, determinism, early stopping, prediction (the checkpoint format is tested in
tests/unit/models/test_checkpoint.py)."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from glass_sm.models import build_model
from glass_sm.training import (
    measure_inference_rate,
    predict,
    predict_with_attention,
    set_seed,
    train_torch_model,
)

WINDOW, N_FEATURES = 8, 3
SMALL = {
    "lstm": {"hidden_size": 16, "num_layers": 1},
    "bilstm": {"hidden_size": 16, "num_layers": 1},
    "atlstm": {"hidden_size": 16, "num_layers": 1},
    "atlstm_cl": {"hidden_size": 16, "num_layers": 1},
    "transformer": {"d_model": 16, "n_heads": 2, "num_layers": 1},
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """One torch thread for this module (``one_torch_thread`` of tests/conftest.py)."""


def lagged_task(n, seed=0):
    """Windows whose target depends on a feature 5 days before the last one, so memory matters (m3 m-3)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, WINDOW, N_FEATURES)).astype(np.float32)
    y = 0.25 + 0.06 * X[:, WINDOW - 6, 0] + 0.03 * X[:, -1, 1] * X[:, -2, 2]
    return X, y.astype(np.float32)


class WindowDataset(Dataset):
    """Like the data layer's datasets: items are (x (L, F) float32 tensor, y scalar float32 tensor)."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return torch.from_numpy(self.X[i]), torch.tensor(self.y[i])


@pytest.fixture(scope="module")
def data():
    return lagged_task(384, seed=0), lagged_task(128, seed=1)


def _built(name, seed=0, **hparams):
    set_seed(seed)
    return build_model(name, N_FEATURES, WINDOW, **{**SMALL[name], **hparams})


@pytest.mark.parametrize("name", ["lstm", "bilstm", "atlstm", "atlstm_cl", "transformer"])
def test_each_model_learns(name, data):
    train, val = data
    model = _built(name)
    result = train_torch_model(model, train, val, epochs=4, lr=5e-3, batch_size=32, progress=False)
    history = result.history
    assert list(history.columns) == ["epoch", "train_loss", "val_loss", "seconds", "lr"]
    assert history.epoch.tolist() == list(range(1, len(history) + 1))
    assert history.train_loss.iloc[-1] < history.train_loss.iloc[0]
    assert history.val_loss.min() < history.val_loss.iloc[0]
    assert result.best_epoch == history.val_loss.idxmin() + 1
    assert result.train_seconds > 0 and not model.training
    assert predict(model, val[0]).shape == (128,)


def test_training_is_deterministic(data):
    train, val = data
    runs = []
    for _ in range(2):
        model = _built("atlstm", seed=3, dropout=0.2)
        result = train_torch_model(model, train, val, epochs=3, batch_size=32, seed=3, progress=False,
                                   lr_schedule="plateau", converge_tol=0.002)
        runs.append((result.history, predict(model, val[0]), [p.detach().clone() for p in model.parameters()]))
    (h1, p1, w1), (h2, p2, w2) = runs
    assert h1[["train_loss", "val_loss", "lr"]].equals(h2[["train_loss", "val_loss", "lr"]])
    np.testing.assert_array_equal(p1, p2)
    assert all(torch.equal(a, b) for a, b in zip(w1, w2))


def test_dataloader_input_matches_arrays(data):
    (X, y), (X_val, y_val) = data
    model = _built("lstm")
    loaders = (
        DataLoader(WindowDataset(X, y), batch_size=64, shuffle=True),
        DataLoader(WindowDataset(X_val, y_val), batch_size=64),
    )
    result = train_torch_model(model, *loaders, epochs=2, progress=False, max_batches_per_epoch=3)
    assert len(result.history) == 2
    np.testing.assert_array_equal(predict(model, loaders[1]), predict(model, X_val, batch_size=64))


def test_early_stopping_restores_best_weights(data):
    train, (X_val, y_val) = data
    model = _built("lstm")
    result = train_torch_model(
        model, train, (X_val, y_val), epochs=30, lr=0.05, patience=2, batch_size=32, progress=False
    )
    history = result.history
    assert result.stopped_early and len(history) == result.best_epoch + 2
    restored = np.mean((predict(model, X_val).astype(np.float64) - y_val) ** 2)
    assert restored == pytest.approx(history.val_loss.min(), rel=1e-5)


def test_training_without_validation_monitors_training_loss(data):
    train, _ = data
    result = train_torch_model(_built("lstm"), train, epochs=2, progress=False, max_batches_per_epoch=2)
    assert result.history.val_loss.isna().all()
    assert result.best_loss == result.history.train_loss.min()


def test_bad_inputs_are_loud(data):
    (X, y), _ = data
    with pytest.raises(ValueError, match="mse"):
        train_torch_model(_built("lstm"), (X, y), epochs=1, loss="rmse", progress=False)
    y_nan = y.copy()
    y_nan[0] = np.nan
    with pytest.raises(FloatingPointError, match="epoch 1"):
        train_torch_model(_built("lstm"), (X, y_nan), epochs=1, progress=False)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"epochs": -3}, r"epochs must be >= 1, got -3"),
    ({"epochs": 0}, r"epochs must be >= 1, got 0"),
    ({"batch_size": 0}, r"batch_size must be >= 1, got 0"),
    ({"lr": 0.0}, r"lr must be > 0, got 0\.0"),
    ({"lr": float("nan")}, r"lr must be > 0, got nan"),
    ({"weight_decay": -1e-4}, r"weight_decay must be >= 0"),
    ({"patience": 0}, r"patience must be >= 1 or None, got 0"),
    ({"max_batches_per_epoch": 0}, r"max_batches_per_epoch must be >= 1 or None, got 0"),
])
def test_a_run_that_would_train_nothing_is_refused(data, kwargs, pattern):
    """Issue 13: `training.epochs: -3` gave an untrained model (empty history) and no error; the loop itself
    refuses such settings, whoever calls it (the parameters are also range-checked at load)."""
    model = _built("lstm")
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=pattern):
        train_torch_model(model, data[0], data[1], **{"epochs": 1, "progress": False, **kwargs})
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_no_training_windows_is_refused(data):
    X, y = data[0]
    with pytest.raises(ValueError, match="no training windows"):
        train_torch_model(_built("lstm"), (X[:0], y[:0]), epochs=1, progress=False)
    with pytest.raises(ValueError, match="no validation windows"):
        train_torch_model(_built("lstm"), (X, y), (X[:0], y[:0]), epochs=1, progress=False)


def test_predict_with_attention(data):
    _, (X_val, _) = data
    model = _built("atlstm")
    prediction, attention = predict_with_attention(model, X_val, batch_size=50)
    assert prediction.shape == (128,) and attention.shape == (128, WINDOW)
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(prediction, predict(model, X_val, batch_size=50))
    with pytest.raises(TypeError, match="attention"):
        predict_with_attention(_built("lstm"), X_val)


def test_predict_and_rate_for_xgboost(data):
    (X, y), (X_val, y_val) = data
    model = build_model("xgboost", N_FEATURES, WINDOW, n_estimators=20).fit(X, y, X_val, y_val)
    np.testing.assert_array_equal(predict(model, X_val, batch_size=50), model.predict(X_val))
    assert measure_inference_rate(model, X_val, batch_size=64) > 0
    assert measure_inference_rate(_built("lstm"), X_val, batch_size=64, repeats=1) > 0
