"""Stages 02-03 logic on the toy cube: per-bin metrics, the five-model comparison, determinism, attention by lag,
permutation importance, and the production checkpoint round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from glass_sm import config
from glass_sm import experiments as ex
from glass_sm.evaluation import metrics as M
from glass_sm.data.samples import build_samples, make_toy_cube

TINY = {
    "run.seed": 3,
    "samples.window": 8,
    "samples.block_size": 2,
    "samples.max_train_samples": 1500,
    "samples.max_eval_samples": 600,
    "models.hidden_size": 8,
    "models.num_layers": 1,
    "models.d_model": 8,
    "models.n_heads": 2,
    "models.xgb_n_estimators": 15,
    "models.xgb_max_depth": 3,
    "models.rate_windows": 300,
    "training.epochs": 2,
    "training.batch_size": 128,
    "training.n_boot": 40,
    "training.torch_threads": 1,
    "atlstm.final_window": 6,
    "atlstm.lengths": [1, 4],
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def toy():
    return make_toy_cube(n_lat=6, n_lon=5, start="1999-10-01", end="2001-09-30", seed=4, with_truth=True)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    return config.load(None, {**TINY, "run.results_dir": str(tmp_path_factory.mktemp("results"))})


@pytest.fixture(scope="module")
def samples(toy, cfg):
    return build_samples(toy[0], cfg)


@pytest.fixture(scope="module")
def comparison(samples, cfg, toy):
    return ex.compare_models(samples, cfg, truth=toy[1], progress=False)


# ---- metrics by SM bin ---------------------------------------------------------------------------------------
def test_metrics_by_sm_bin_closed_form():
    ref = np.array([0.05, 0.08, 0.15, 0.25, 0.26, 0.45, 0.50, 1.0, np.nan])
    pred = ref + np.array([0.01, 0.03, -0.02, 0.0, 0.02, -0.04, 0.0, 0.1, 0.2])
    t = ex.metrics_by_sm_bin(pred, ref)
    assert t["bin"].tolist() == ["0-0.1", "0.1-0.2", "0.2-0.3", "0.3-0.4", ">0.4"]
    assert t["n"].tolist() == [2, 1, 2, 0, 3]  # 1.0 goes to the last (closed) bin, the NaN pair is dropped
    first = t.iloc[0]
    assert first.bias == pytest.approx(0.02)
    assert first.rmse == pytest.approx(np.sqrt((0.01**2 + 0.03**2) / 2))
    assert first.ubrmse == pytest.approx(0.01)
    wet = t.iloc[4]
    assert wet.bias == pytest.approx((-0.04 + 0.0 + 0.1) / 3)
    assert wet.rmse == pytest.approx(np.sqrt((0.04**2 + 0.1**2) / 3))
    assert np.isnan(t.iloc[3].rmse) and np.isnan(t.iloc[1].rmse)  # too few pairs -> NaN, never an error
    with_ci = ex.metrics_by_sm_bin(pred, ref, ci=True, n_boot=50)
    assert {"rmse_lo", "rmse_hi", "r2_lo"} <= set(with_ci.columns)
    with pytest.raises(ValueError):
        ex.metrics_by_sm_bin(pred, ref, bins=(0.0, 0.3, 0.2))


def test_paired_difference_is_zero_for_identical_models_and_signed():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0.05, 0.45, 500)
    good, bad = ref + 0.01 * rng.standard_normal(500), ref + 0.05 * rng.standard_normal(500)
    same = ex.paired_difference(good, good, ref, n_boot=50)
    assert same["delta"] == 0 and same["delta_lo"] == 0 and same["delta_hi"] == 0
    d = ex.paired_difference(good, bad, ref, n_boot=100)
    assert d["delta"] == pytest.approx(M.rmse(good, ref) - M.rmse(bad, ref))
    assert d["delta_lo"] < d["delta"] < d["delta_hi"] < 0


# ---- model comparison ----------------------------------------------------------------------------------------
def test_compare_models_runs_all_five_with_expected_columns(comparison, samples):
    res = comparison
    assert list(res.fits) == ["lstm", "bilstm", "atlstm", "transformer", "xgboost"]
    cols = ["split", "window", "model", "reference", "n"]
    for m in ex.METRIC_NAMES:
        cols += [m, f"{m}_lo", f"{m}_hi"]
    assert list(res.metrics.columns) == cols
    assert set(res.metrics.reference) == {"label", "truth"} and len(res.metrics) == 10
    assert (res.metrics.n == len(samples.test)).all()
    ok = res.metrics.dropna(subset=["rmse"])
    assert (ok.rmse_lo <= ok.rmse).all() and (ok.rmse <= ok.rmse_hi).all()
    assert {"train_seconds", "inference_windows_per_s", "n_parameters", "epochs_run"} <= set(res.timing.columns)
    assert (res.timing.inference_windows_per_s > 0).all()
    assert set(res.by_bin["bin"]) == {"0-0.1", "0.1-0.2", "0.2-0.3", "0.3-0.4", ">0.4"}
    assert len(res.predictions) == len(samples.test)
    assert {"label", "truth", *res.fits} <= set(res.predictions.columns)
    np.testing.assert_allclose(res.predictions.label, samples.targets("test"))
    d = ex.baseline_differences(res.predictions, ["lstm", "atlstm"], "xgboost", n_boot=20)
    assert set(d.verdict) <= {"better", "worse", "tie", "n/a"} and set(d.reference) == {"label", "truth"}


def test_metric_table_is_deterministic(comparison, samples, cfg, toy):
    again = ex.compare_models(samples, cfg, truth=toy[1], progress=False)
    pd.testing.assert_frame_equal(again.metrics, comparison.metrics)
    pd.testing.assert_frame_equal(again.by_bin, comparison.by_bin)


def test_split_strategies_reuse_and_stack(toy, cfg, comparison):
    res = ex.run_split_strategies(toy[0], cfg, strategies=["site", "year"], names=["atlstm", "xgboost"],
                                  truth=toy[1], progress=False, reuse={"site": comparison})
    assert list(pd.unique(res.metrics.split)) == ["site", "year"]
    assert set(res.metrics.model) == {"atlstm", "xgboost"}
    site = res.metrics[res.metrics.split == "site"].reset_index(drop=True)
    expected = comparison.metrics[comparison.metrics.model.isin(["atlstm", "xgboost"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(site, expected)
    assert len(res.samples) == 2


def test_sequence_length_uses_identical_targets(samples, cfg, toy):
    res = ex.sequence_length_experiment(samples, cfg, [1, 4], models=("lstm",), truth=toy[1], progress=False)
    assert res.metrics.window.tolist() == [1, 1, 4, 4]
    assert res.metrics.n.nunique() == 1
    with pytest.raises(ValueError, match="window"):
        ex.sequence_length_experiment(samples, cfg, [1, samples.window + 1], models=("lstm",), progress=False)


# ---- attention -----------------------------------------------------------------------------------------------
def test_attention_by_lag_rows_sum_to_one_and_groups():
    rng = np.random.default_rng(1)
    att = rng.random((300, 5))
    att /= att.sum(axis=1, keepdims=True)
    offsets = np.arange(-4, 1)
    groups = np.where(np.arange(300) < 100, "DJF", "JJA")
    t = ex.attention_by_lag(att, offsets, groups, order=["JJA", "DJF"], grouping="season")
    lag_cols = [c for c in t.columns if c.startswith("lag_")]
    assert lag_cols == ["lag_0", "lag_1", "lag_2", "lag_3", "lag_4"]
    np.testing.assert_allclose(t[lag_cols].sum(axis=1), 1.0)
    assert t.group.tolist() == ["JJA", "DJF"] and t.n.tolist() == [200, 100]
    np.testing.assert_allclose(t.loc[1, "lag_0"], att[:100, -1].mean())  # lag 0 = the last (target) step
    overall = ex.attention_by_lag(att, offsets)
    s = ex.attention_summary(overall)
    assert s.window.iloc[0] == 5 and s.uniform.iloc[0] == pytest.approx(0.2)
    assert 1 <= s.effective_steps.iloc[0] <= 5
    one_hot = np.zeros((10, 5))
    one_hot[:, -1] = 1.0
    s1 = ex.attention_summary(ex.attention_by_lag(one_hot, offsets))
    assert s1.w_lag0.iloc[0] == 1.0 and s1.effective_steps.iloc[0] == 1.0 and s1.mean_lag.iloc[0] == 0.0


def test_attention_groups_seasons_and_climate(samples, toy):
    groups, orders = ex.attention_groups(samples, "test", None)
    assert set(groups["season"]) <= set(ex.SEASONS)
    assert set(groups["climate"]) <= {"dry", "intermediate", "wet"}
    assert len(groups["sm_level"]) == len(samples.test)
    assert list(ex.season_of(pd.to_datetime(["2001-01-15", "2001-04-01", "2001-07-31", "2001-11-30"]))) == \
        ["DJF", "MAM", "JJA", "SON"]
    assert list(ex.aridity_class([0.01, 0.1, 0.3, 0.6, 1.2, np.nan])) == \
        ["hyper-arid", "arid", "semi-arid", "dry sub-humid", "humid", "unknown"]


# ---- permutation importance ----------------------------------------------------------------------------------
class LastStepLinear(torch.nn.Module):
    """y = 0.25 + 0.05 x[:, -1, 0]: only feature 0 (on the target day) matters."""

    def forward(self, x):
        return 0.25 + 0.05 * x[:, -1, 0]


def test_permutation_importance_irrelevant_zero_driver_positive():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2000, 6, 3)).astype(np.float32)
    y = 0.25 + 0.05 * x[:, -1, 0] + 0.005 * rng.standard_normal(2000)
    t = ex.permutation_importance(LastStepLinear(), x, y, ["driver", "noise_a", "noise_b"], repeats=3, seed=0)
    t = t.set_index("feature")
    assert t.loc["driver", "importance"] > 0.05
    assert t.loc["noise_a", "importance"] == pytest.approx(0.0, abs=1e-7)
    assert t.loc["noise_b", "importance"] == pytest.approx(0.0, abs=1e-7)
    assert t.index[0] == "driver" and (t.repeats == 3).all()
    with pytest.raises(ValueError):
        ex.permutation_importance(LastStepLinear(), x, y[:10], ["a", "b", "c"])


# ---- production checkpoint -----------------------------------------------------------------------------------
def test_train_final_atlstm_writes_and_reloads(toy, cfg):
    from glass_sm.models import load_checkpoint

    path = ex.train_final_atlstm(toy[0], cfg, truth=toy[1], progress=False)
    assert path.name == "atlstm_final.pt" and path.parent.name == "models"
    for suffix in (".json", ".md"):
        assert path.with_suffix(suffix).exists()
    assert path.with_name("atlstm_final_history.csv").exists()
    meta = json.loads(path.with_suffix(".json").read_text())
    extra = meta["extra"]
    for key in ("features", "units", "normalizer", "window", "window_mode", "add_doy", "include_filled_flags",
                "train_period", "split", "metrics", "source"):
        assert key in extra, key
    assert extra["window"] == cfg.atlstm.final_window and extra["split"] == cfg.atlstm.final_split
    assert {"test_vs_label", "test_vs_truth"} <= set(extra["metrics"])
    card = path.with_suffix(".md").read_text()
    assert "twin" in card.lower() and "test metrics" in card.lower()

    loaded = load_checkpoint(path)
    loaded.check_cube(toy[0])
    fs = build_samples(toy[0], cfg, split=cfg.atlstm.final_split, window=loaded.window)
    check = extra["self_check"]
    idx = np.asarray(check["pixel_day"], np.int64)
    raw = fs.normalizer.inverse(fs.windows(idx))
    np.testing.assert_allclose(loaded.predict(raw), check["prediction"], atol=1e-5)
    np.testing.assert_allclose(loaded.predict_normalized(fs.windows(idx)), check["prediction"], atol=1e-6)
    # the test metrics stored in the checkpoint are reproduced by the reloaded model
    pred = loaded.predict_normalized(fs.windows("test"))
    assert M.rmse(pred, fs.targets("test")) == pytest.approx(extra["metrics"]["test_vs_label"]["rmse"], rel=1e-5)
