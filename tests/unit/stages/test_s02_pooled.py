"""Stage 02's fits trained in one pool (fit_comparison) score exactly like one comparison after the other."""

from __future__ import annotations

import pandas as pd
import pytest
import xarray as xr

from glass_sm import config
from glass_sm.data import build_samples
from glass_sm.stages import s02_models as s02
from glass_sm.testing import make_toy_cube

TINY = {
    "run.seed": 3, "samples.window": 6, "samples.block_size": 2, "samples.max_train_samples": 600,
    "samples.max_eval_samples": 300, "models.hparams.common.hidden_size": 6, "models.hparams.common.num_layers": 1,
    "models.hparams.xgboost.n_estimators": 8, "models.hparams.xgboost.max_depth": 3, "models.rate_windows": 100,
    "models.names": ["lstm", "atlstm", "xgboost"], "models.split_strategies": ["site", "year"],
    "models.split_models": ["atlstm", "xgboost"], "training.epochs": 2, "training.batch_size": 128,
    "training.n_boot": 20, "training.torch_threads": 1, "training.parallel_fits": 2,
}


@pytest.fixture(scope="module")
def world():
    cube, truth = make_toy_cube(n_lat=5, n_lon=4, start="1999-10-01", end="2001-09-30", seed=4, with_truth=True)
    cfg = config.load(None, TINY)
    return cube, truth, cfg


def test_pooled_fits_equal_the_comparisons_one_after_the_other(world, one_torch_thread):
    cube, truth, cfg = world
    samples = build_samples(cube, cfg)
    # the reference fits one after the other in this process (no pool to start: spawned processes cost their
    # imports; parallel fits equal sequential ones bit for bit, tests/unit/test_fitting.py)
    one = config.load(None, {**TINY, "training.parallel_fits": 1})
    main = s02.compare_models(samples, one, truth=truth, progress=False)
    splits = s02.run_split_strategies(cube, one, truth=truth, progress=False, reuse={main.split: main})

    planned = s02.fit_comparison(samples, cube, cfg)
    assert list(planned.main) == ["lstm", "atlstm", "xgboost"]
    assert set(planned.splits) == {"year"}  # 'site' is the main split: reused, not refitted
    assert list(planned.splits["year"][1]) == ["atlstm", "xgboost"]
    main2 = s02.compare_models(samples, cfg, truth=truth, progress=False, fits=planned.main)
    splits2 = s02.run_split_strategies(cube, cfg, truth=truth, progress=False, reuse={main2.split: main2},
                                       fits=planned.splits)
    pd.testing.assert_frame_equal(main.metrics, main2.metrics)
    pd.testing.assert_frame_equal(main.by_bin, main2.by_bin)
    pd.testing.assert_frame_equal(splits.metrics, splits2.metrics)
    pd.testing.assert_frame_equal(splits.samples, splits2.samples)
    cols = ["split", "model", "epochs_run", "best_epoch", "stop_reason"]
    pd.testing.assert_frame_equal(splits.timing[cols], splits2.timing[cols])


def test_compare_models_names_a_missing_fit(world):
    cube, truth, cfg = world
    samples = build_samples(cube, cfg)
    with pytest.raises(ValueError, match=r"lacks the model\(s\) \['xgboost'\]"):
        s02.compare_models(samples, cfg, truth=truth, progress=False, names=["xgboost"], fits={})
