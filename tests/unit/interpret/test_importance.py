"""Permutation importance: zero for inputs a model ignores, large for the one it uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glass_sm.interpret.importance import permutation_importance


class LastStepLinear(torch.nn.Module):
    """y = 0.25 + 0.05 x[:, -1, 0]: only feature 0 (on the target day) matters."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.05))

    def forward(self, x):
        return 0.25 + self.scale * x[:, -1, 0]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2000, 6, 3)).astype(np.float32)
    y = 0.25 + 0.05 * x[:, -1, 0] + 0.005 * rng.standard_normal(2000)
    return x, y


def test_permutation_importance_irrelevant_zero_driver_positive(data):
    x, y = data
    t = permutation_importance(LastStepLinear(), x, y, ["driver", "noise_a", "noise_b"], repeats=3, seed=0)
    t = t.set_index("feature")
    assert t.loc["driver", "importance"] > 0.05
    assert t.loc["noise_a", "importance"] == pytest.approx(0.0, abs=1e-7)
    assert t.loc["noise_b", "importance"] == pytest.approx(0.0, abs=1e-7)
    assert t.index[0] == "driver" and (t.repeats == 3).all()
    assert t.loc["driver", "r2_drop"] > 0.5 and t.loc["driver", "importance_sd"] >= 0
    with pytest.raises(ValueError):
        permutation_importance(LastStepLinear(), x, y[:10], ["a", "b", "c"])


def test_permutation_importance_takes_a_plain_function_and_is_seeded(data):
    x, y = data

    def f(w):
        return 0.25 + 0.05 * w[:, -1, 0]

    a = permutation_importance(f, x[:300], y[:300], ["driver", "noise_a", "noise_b"], repeats=2, seed=5)
    b = permutation_importance(f, x[:300], y[:300], ["driver", "noise_a", "noise_b"], repeats=2, seed=5)
    assert a.equals(b) and a.feature.iloc[0] == "driver"
    with pytest.raises(TypeError):
        permutation_importance(object(), x[:10], y[:10], ["a", "b", "c"])
