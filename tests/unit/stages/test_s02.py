"""Stage 02 on a toy cube: the seven-model comparison through the stage functions (tables of the contract, models,
figures, prose), determinism, split strategies, and a model added by one class + one registry entry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from glass_sm import config, stages
from glass_sm.contract import read_table, tables_of
from glass_sm.data import build_samples
from glass_sm.evaluation.skill import METRIC_NAMES
from glass_sm.models import MODEL_REGISTRY, is_torch_model, load_checkpoint, load_model_weights
from glass_sm.stages import s02_models as s02
from glass_sm.testing import make_toy_cube

TINY = {
    "run.seed": 3,
    "samples.window": 8,
    "samples.block_size": 2,
    "samples.max_train_samples": 1500,
    "samples.max_eval_samples": 600,
    "models.hparams.common.hidden_size": 8,
    "models.hparams.common.num_layers": 1,
    "models.hparams.common.d_model": 8,
    "models.hparams.common.n_heads": 2,
    "models.hparams.xgboost.n_estimators": 15,
    "models.hparams.xgboost.max_depth": 3,
    "models.hparams.xgboost_window.n_estimators": 15,
    "models.hparams.xgboost_window.max_depth": 3,
    "models.rate_windows": 300,
    "models.split_strategies": ["site", "year"],
    "models.split_models": ["atlstm", "xgboost"],
    "training.epochs": 2,
    "training.batch_size": 128,
    "training.n_boot": 40,
    "training.torch_threads": 1,
    "figures.formats": ["png"],
    "figures.dpi": 40,
}


@pytest.fixture(scope="module")
def toy():
    return make_toy_cube(n_lat=6, n_lon=5, start="1999-10-01", end="2001-09-30", seed=4, with_truth=True)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return stages.setup(None, {**TINY, "run.results_dir": str(tmp_path_factory.mktemp("results"))}, s02.STAGE)


@pytest.fixture(scope="module")
def inputs(toy, ctx):
    """The toy cube and truth, with ``training.torch_threads`` applied (restored afterwards)."""
    previous = torch.get_num_threads()
    yield s02.StageInputs(toy[0], xr.Dataset({"sm_true": toy[1]}), s02.set_torch_threads(ctx.cfg))
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def samples(ctx, inputs):
    samples, table = s02.comparison_samples(ctx, inputs)
    assert table.n_test.iloc[0] == len(samples.test) > 0
    return samples


@pytest.fixture(scope="module")
def result(ctx, inputs, samples):
    return s02.train_and_score(ctx, inputs, samples)


@pytest.fixture(scope="module")
def tables(ctx, inputs, samples, result):
    """Every table of stage 02, written by the stage functions and read back from the contract."""
    s02.era5land_yardstick(ctx, inputs, samples)
    s02.versus_baseline(ctx, result)
    splits = s02.split_strategies(ctx, inputs, result)
    s02.label_ceiling_table(ctx, splits)
    return s02.read_tables(ctx)


ALL = ["lstm", "bilstm", "atlstm", "atlstm_cl", "transformer", "xgboost", "xgboost_window"]


def test_train_and_score_runs_all_seven_with_the_contract_columns(ctx, result, samples):
    assert list(result.fits) == ALL
    cols = ["split", "window", "model", "reference", "n"] + [c for m in METRIC_NAMES for c in (m, f"{m}_lo", f"{m}_hi")]
    assert list(result.metrics.columns) == cols
    assert set(result.metrics.reference) == {"label", "truth"} and len(result.metrics) == 14
    assert (result.metrics.n == len(samples.test)).all()
    ok = result.metrics.dropna(subset=["rmse"])
    assert (ok.rmse_lo <= ok.rmse).all() and (ok.rmse <= ok.rmse_hi).all()
    assert (result.timing.inference_windows_per_s > 0).all()
    timing = result.timing.set_index("model")
    assert timing.train_windows_per_s.isna().xgboost and timing.train_windows_per_s.isna().xgboost_window
    assert set(timing.stop_reason) <= {"converged", "early-stopped", "budget cap"}
    assert timing.final_lr[["xgboost", "xgboost_window"]].isna().all()
    torch_rows = timing.loc[[m for m in ALL if is_torch_model(m)]]
    assert (torch_rows.final_lr > 0).all() and (torch_rows.final_lr <= ctx.cfg.training.lr).all()
    for name in ALL:  # the table says what the fit said
        assert timing.stop_reason[name] == result.fits[name].stop_reason
    assert set(result.by_bin["bin"]) == {"0-0.1", "0.1-0.2", "0.2-0.3", "0.3-0.4", ">0.4"}
    assert len(result.predictions) == len(samples.test)
    np.testing.assert_allclose(result.predictions.label, samples.targets("test"))
    assert set(result.histories.model) == {"lstm", "bilstm", "atlstm", "atlstm_cl", "transformer"}
    assert "lr" in result.histories
    back = read_table(ctx.paths, "model_comparison")
    pd.testing.assert_frame_equal(back, result.metrics, check_exact=False, rtol=1e-12)


def test_saved_comparison_models_reload_with_the_same_predictions(ctx, result, samples):
    for name in result.fits:
        suffix = ".pt" if is_torch_model(name) else ".json"
        assert ctx.paths.model_file(f"compare_site_{name}", suffix).exists()
    lstm = load_model_weights(ctx.paths.model_file("compare_site_lstm", ".pt"))
    np.testing.assert_allclose(s02.predict_split(lstm, samples, "test"), result.predictions.lstm, rtol=1e-6)
    cl = load_checkpoint(ctx.paths.model_file("compare_site_atlstm_cl", ".pt"))  # with the samples' normalizer
    assert cl.name == "atlstm_cl" and cl.model.head_input == "context_last"
    np.testing.assert_array_equal(cl.normalizer.mean, samples.normalizer.mean)
    assert (cl.window, cl.window_mode, cl.features) == (samples.window, samples.window_mode, samples.feature_names)


def test_xgboost_benchmark_reads_the_target_day_of_the_samples(result, samples, ctx, inputs):
    """``target_step`` comes from the samples' window mode: the last step of a past window, the middle of a
    centred one."""
    assert result.fits["xgboost"].hparams["target_step"] == samples.window - 1
    assert result.fits["xgboost"].model.inputs == "target_day"
    assert result.fits["xgboost_window"].model.inputs == "window"
    centred = build_samples(inputs.cube, ctx.cfg, window=7, window_mode="centred")
    fit = s02.fit_model("xgboost", centred, ctx.cfg)
    assert fit.hparams["target_step"] == 3 and centred.offsets[3] == 0
    assert fit.stop_reason in ("early-stopped", "budget cap")


def test_metric_table_is_deterministic(ctx, result, samples, toy):
    again = s02.compare_models(samples, ctx.cfg, truth=toy[1], progress=False)
    pd.testing.assert_frame_equal(again.metrics, result.metrics)
    pd.testing.assert_frame_equal(again.by_bin, result.by_bin)


def test_every_stage_table_is_written(tables, samples):
    assert set(tables) == {spec.name for spec in tables_of(s02.STAGE)}
    diffs = tables["model_vs_xgboost"]
    assert set(diffs.verdict) <= {"better", "worse", "tie", "n/a"} and set(diffs.reference) == {"label", "truth"}
    assert "xgboost" not in set(diffs.model)
    era5 = tables["era5land_input_metrics"]
    assert era5.model.tolist() == ["sm_era5land (input)"] * 2 and (era5.n == len(samples.test)).all()


def test_label_ceiling_has_the_labels_and_every_split_model(tables):
    ceiling = tables["label_ceiling"]
    assert set(ceiling.split) == {"site", "year"}
    labels = ceiling[ceiling.subject == "label"]
    assert len(labels) == 2 and set(labels.reference) == {"truth"}  # the labels against the truth, per split
    models = ceiling[ceiling.subject != "label"]
    assert set(models.subject) == {"atlstm", "xgboost"} and set(models.reference) == {"label", "truth"}


def test_claims_so_far_are_the_stage_02_claims(ctx, tables):
    claims = s02.claims_so_far(ctx)
    assert set(claims.claim_id) == set(s02.STAGE02_CLAIMS)
    assert set(claims.verdict) <= {"holds", "does not hold", "inconclusive", "not testable here"}
    c1 = claims[(claims.claim_id == "C1") & (claims.design == "paper design") & (claims.reference == "truth")]
    assert set(c1.models.str.contains("xgboost")) == {True}  # every C1 row is a deep model against the benchmark


def test_split_strategies_reuse_the_main_comparison(tables, result):
    split = tables["split_strategies"]
    assert list(pd.unique(split.split)) == ["site", "year"] and set(split.model) == {"atlstm", "xgboost"}
    site = split[split.split == "site"].reset_index(drop=True)
    expected = result.metrics[result.metrics.model.isin(["atlstm", "xgboost"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(site, expected, check_exact=False, rtol=1e-12)
    assert len(tables["split_strategies_samples"]) == 2


def test_figures_are_saved(ctx, result, tables):
    s02.figure_density(ctx, result)
    assert set(s02.figures_by_bin(ctx, result)) == {"label", "truth"}
    s02.figure_split_strategies(ctx, tables["split_strategies"])
    for name in ("02_density_scatter", "02_metrics_by_sm_bin", "02_metrics_by_sm_bin_truth", "02_split_strategies"):
        assert ctx.paths.figure(name, "png").exists(), name


def test_prose_from_the_written_tables(tables, ctx):
    ranking = s02.ranking_text(tables, ctx.cfg.models.sm_bins)
    assert "**Against the label**" in ranking and "**Against the truth**" in ranking and "Bi-LSTM" in ranking
    assert "models beat XGBoost (the target-day benchmark) overall" in ranking and "In the wet class >0.4" in ranking
    mech = s02.mechanisms_text(tables)
    lab = tables["model_comparison"].query("reference == 'label'")
    assert f"{lab.rmse.min():.4f}–{lab.rmse.max():.4f}" in mech and "*Label noise" in mech and "*Cost.*" in mech
    budget = s02.budget_text(tables, ctx.cfg)
    assert "*Training budget.*" in budget and "of at most 15 rounds" in budget
    for name, row in tables["model_timing"].set_index("model").iterrows():
        assert f"{s02.display_name(name)} {row.stop_reason} after {int(row.epochs_run)} of at most" in budget


# ---- prose on hand-made tables (exact numbers) --------------------------------------------------------------
def _metrics(rows):
    out = []
    for model, ref, rmse in rows:
        out.append({"split": "site", "window": 8, "model": model, "reference": ref, "n": 100, "rmse": rmse,
                    "rmse_lo": rmse - 0.002, "rmse_hi": rmse + 0.002, "r2": 0.5, "r2_lo": 0.4, "r2_hi": 0.6,
                    "bias": 0.0})
    return pd.DataFrame(out)


def test_ranking_and_split_verdicts_on_hand_made_tables():
    metrics = _metrics([("atlstm", "label", 0.030), ("xgboost", "label", 0.035)])
    diffs = pd.DataFrame({"model": ["atlstm", "atlstm"], "reference": "label", "bin": ["all", ">0.4"], "n": [100, 7],
                          "d_rmse": [-0.005, 0.001], "d_rmse_lo": [-0.007, -0.004], "d_rmse_hi": [-0.003, 0.006],
                          "verdict": ["better", "tie"]})
    text = s02.ranking_text({"model_comparison": metrics, "model_vs_xgboost": diffs}, (0.0, 0.4, 1.0))
    assert "ranking by RMSE AtLSTM (0.0300) < XGBoost (0.0350) m³ m⁻³" in text
    assert "1 of 1 models beat XGBoost (the target-day benchmark) overall" in text
    assert "AtLSTM ΔRMSE -0.0050 [-0.0070, -0.0030] (better)" in text
    assert "In the wet class >0.4 m³ m⁻³ (n = 7): AtLSTM +0.0010 [-0.0040, +0.0060] (tie)" in text
    split = pd.concat([_metrics([("atlstm", "label", 0.030), ("xgboost", "label", 0.035)]).assign(split="random"),
                       _metrics([("atlstm", "label", 0.040), ("xgboost", "label", 0.045)]).assign(split="site")])
    tables = {"model_comparison": metrics, "split_strategies": split,
              "era5land_input_metrics": _metrics([("sm_era5land (input)", "label", 0.08)]),
              "model_timing": pd.DataFrame({"model": ["atlstm", "xgboost"], "train_seconds": [12.0, 3.0],
                                            "inference_windows_per_s": [5e4, 2e5], "threads": 1})}
    mech = s02.mechanisms_text(tables)
    assert ("scores RMSE 0.0800 m³ m⁻³ (bias +0.0000) against the labels; the models bring it down to "
            "0.0300–0.0350") in mech
    assert "Label noise" not in mech  # no truth rows
    assert "Training took AtLSTM 12 s, XGBoost 3 s on this machine (1 torch thread(s))" in mech
    assert ("*Split strategies (site vs random, against the label).* RMSE differences AtLSTM +0.0100, XGBoost "
            "+0.0100 m³ m⁻³ — every model does worse on held-out sites") in mech


# ---- a model added by one class and one registry entry --------------------------------------------------------
class ToyRegressor(torch.nn.Module):
    """A linear map of the target day's inputs: the smallest model the registry accepts."""

    default_hparams = {"scale_init": 0.1}
    display_name = "Toy linear"
    color = "#000000"

    def __init__(self, n_features: int, window: int, scale_init: float = 0.1):
        super().__init__()
        self.n_features, self.window = n_features, window
        self.head = torch.nn.Linear(n_features, 1)
        with torch.no_grad():
            self.head.weight.fill_(scale_init)

    def forward(self, x):
        return self.head(x[:, -1]).squeeze(-1)

    def forward_flops(self, window: int, n_features: int) -> int:
        return 2 * n_features


def test_a_registered_toy_model_runs_through_stage_02(monkeypatch, tmp_path, toy, samples, inputs):
    monkeypatch.setitem(MODEL_REGISTRY, "toy", ToyRegressor)
    overrides = {**TINY, "run.results_dir": str(tmp_path), "models.names": ["toy", "xgboost"],
                 "models.hparams.toy.scale_init": 0.5}
    ctx = stages.setup(None, overrides, s02.STAGE)
    with pytest.raises(config.ConfigError, match="scale_int"):
        config.load(None, {**overrides, "models.hparams.toy.scale_int": 0.5})
    result = s02.train_and_score(ctx, inputs, samples)
    fit = result.fits["toy"]
    assert fit.hparams == {"scale_init": 0.5} and fit.n_parameters == samples.n_features + 1
    assert fit.flops == 2 * samples.n_features and fit.epochs_run >= 1
    assert set(result.metrics.model) == {"toy", "xgboost"} and np.isfinite(result.metrics.rmse).all()
    assert ctx.paths.model_file("compare_site_toy", ".pt").exists()
    diffs = s02.versus_baseline(ctx, result)
    assert set(diffs.model) == {"toy"}
    text = s02.ranking_text({"model_comparison": result.metrics, "model_vs_xgboost": diffs}, ctx.cfg.models.sm_bins)
    assert "Toy linear" in text
    assert s02.figure_density(ctx, result) is not None
