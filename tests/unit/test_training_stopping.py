"""glass_sm.training: the stopping rule (converged / early-stopped / budget cap) and the plateau LR schedule."""

import numpy as np
import pytest
import torch

from glass_sm.models import build_model
from glass_sm.training import STOP_REASONS, _stop_reason, set_seed, train_torch_model

WINDOW, N_FEATURES = 8, 3


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """One torch thread for this module (``one_torch_thread`` of tests/conftest.py)."""


def _task(n, seed):
    """A learnable task: the target is a linear function of two days of the window (m3 m-3)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, WINDOW, N_FEATURES)).astype(np.float32)
    return X, (0.25 + 0.06 * X[:, 2, 0] + 0.03 * X[:, -1, 1]).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    return _task(384, 0), _task(128, 1)


def _lstm(seed=0, **hp):
    set_seed(seed)
    return build_model("lstm", N_FEATURES, WINDOW, hidden_size=16, num_layers=1, **hp)


def _best_so_far(history):
    return np.minimum.accumulate(history.val_loss.to_numpy())


def test_stop_rule_in_closed_form():
    assert STOP_REASONS == ("converged", "early-stopped", "budget cap")
    assert _stop_reason([1.0, 0.5, 0.5, 0.5], waited=2, patience=2, converge_tol=0.002) == "early-stopped"
    # best 0.5 -> 0.4995 over the last 2 epochs: 0.1 % < 0.2 % -> converged (a new best, so not early-stopped)
    assert _stop_reason([1.0, 0.5, 0.4999, 0.4995], waited=0, patience=2, converge_tol=0.002) == "converged"
    assert _stop_reason([1.0, 0.5, 0.45, 0.4], waited=0, patience=2, converge_tol=0.002) is None  # still improving
    assert _stop_reason([1.0, 0.9], waited=0, patience=2, converge_tol=0.5) is None  # too few epochs to judge
    assert _stop_reason([1.0, 1.0, 1.0], waited=2, patience=None, converge_tol=0.5) is None  # no patience: cap only


def test_a_learnable_problem_converges(data):
    train, val = data
    result = train_torch_model(_lstm(), train, val, epochs=80, lr=2e-2, batch_size=32, patience=3, progress=False,
                               lr_schedule="plateau", converge_tol=0.01)
    assert result.stop_reason == "converged" and result.stopped_early
    best = _best_so_far(result.history)
    n = len(best)
    # the rule by hand: at the last epoch the best loss improved by < 1 % over 3 epochs, at no earlier epoch
    assert best[-4] - best[-1] < 0.01 * best[-4]
    assert all(best[e - 3] - best[e] >= 0.01 * best[e - 3] for e in range(3, n - 1))
    assert best[-1] < best[0]  # it did learn


def test_epoch_cap_on_a_learnable_problem_is_a_budget_cap(data):
    train, val = data
    result = train_torch_model(_lstm(), train, val, epochs=2, lr=5e-3, batch_size=32, patience=4, progress=False,
                               lr_schedule="plateau", converge_tol=0.002)
    assert result.stop_reason == "budget cap" and not result.stopped_early and len(result.history) == 2
    assert result.history.val_loss.iloc[1] < result.history.val_loss.iloc[0]  # still improving when stopped


def _constant_model():
    """An LSTM whose output is exactly 0.25 (last layer zeroed): on a constant 0.25 target the loss is 0 and
    every gradient 0, so no epoch can bring a new best."""
    model = _lstm(dropout=0.0)
    last = model.head.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(0.25)
    return model


def test_a_constant_target_that_cannot_improve_is_early_stopped_and_the_lr_halves_on_plateau(data):
    (X, _), (X_val, _) = data
    train, val = (X, np.full(len(X), 0.25, np.float32)), (X_val, np.full(len(X_val), 0.25, np.float32))
    result = train_torch_model(_constant_model(), train, val, epochs=50, lr=1e-2, weight_decay=0.0, batch_size=64,
                               patience=5, progress=False, lr_schedule="plateau", lr_patience=1, converge_tol=0.002)
    history = result.history
    assert (history.val_loss == 0).all() and result.best_epoch == 1
    assert result.stop_reason == "early-stopped" and len(history) == 1 + 5
    # ReduceLROnPlateau(patience=1): halved once more than 1 epoch in a row brought no new best, then the count
    # restarts: epochs 2, 3 bad -> halved after 3; 4, 5 bad -> halved after 5
    assert history.lr.tolist() == [1e-2, 1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3]
    assert result.final_lr == 2.5e-3


def test_no_schedule_keeps_the_rate(data):
    (X, _), (X_val, _) = data
    train, val = (X, np.full(len(X), 0.25, np.float32)), (X_val, np.full(len(X_val), 0.25, np.float32))
    result = train_torch_model(_constant_model(), train, val, epochs=4, lr=1e-2, weight_decay=0.0, batch_size=64,
                               patience=3, progress=False, lr_schedule="none")
    assert (result.history.lr == 1e-2).all() and result.final_lr == 1e-2 and result.stop_reason == "early-stopped"


@pytest.mark.parametrize("kwargs, pattern", [({"lr_schedule": "cosine"}, "unknown lr_schedule"),
                                             ({"lr_patience": 0}, "lr_patience"),
                                             ({"converge_tol": 1.0}, "converge_tol")])
def test_bad_schedule_settings_are_refused(data, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        train_torch_model(_lstm(), *data, epochs=1, progress=False, **kwargs)
