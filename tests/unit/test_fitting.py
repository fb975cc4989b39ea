"""Fitting models one by one and side by side in processes (glass_sm.fitting)."""

import numpy as np
import pytest
import torch

from glass_sm import config
from glass_sm.data import build_samples
from glass_sm.fitting import fit_models, predict_split
from glass_sm.testing import make_toy_cube

OVERRIDES = {
    "run.seed": 5, "samples.window": 6, "samples.block_size": 2, "samples.max_train_samples": 800,
    "samples.max_eval_samples": 300, "models.hparams.common.hidden_size": 8, "models.hparams.common.num_layers": 1,
    "models.hparams.xgboost.n_estimators": 10, "models.hparams.xgboost.max_depth": 3, "training.epochs": 2,
    "training.batch_size": 64, "training.torch_threads": 1,
}


@pytest.fixture(scope="module")
def samples():
    cfg = config.load(None, OVERRIDES)
    cube, _ = make_toy_cube(n_lat=4, n_lon=4, start="2000-03-01", end="2001-02-28", seed=2, with_truth=True)
    s = build_samples(cube, cfg)
    s.arrays()
    return s


def test_parallel_fits_equal_the_sequential_ones(samples, one_torch_thread):
    """Two spawned processes give bit-identical models, predictions and stop reasons, in the order of the jobs."""
    names = ["atlstm", "xgboost", "lstm"]
    out = {}
    for n in (1, 2):
        cfg = config.load(None, {**OVERRIDES, "training.parallel_fits": n})
        fits = fit_models([(m, samples, {"seed": 5}) for m in names], cfg)
        assert [f.name for f in fits] == names
        out[n] = [(f.stop_reason, f.epochs_run, predict_split(f.model, samples, "test")) for f in fits]
    for (r1, e1, p1), (r2, e2, p2) in zip(out[1], out[2]):
        assert (r1, e1) == (r2, e2)
        np.testing.assert_array_equal(p1, p2)
    assert torch.get_num_threads() == 1  # the parent's threads are untouched
