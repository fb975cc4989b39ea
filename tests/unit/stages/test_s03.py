"""Stage 03 on a toy cube: sequence length, the production checkpoint round trip, attention, the worked example,
permutation importance (tables of the contract, figures) and the prose built from those tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from glass_sm import stages
from glass_sm.contract import read_table
from glass_sm.data import build_samples
from glass_sm.evaluation import metrics as M
from glass_sm.models import load_checkpoint
from glass_sm.stages import s03_atlstm as s03
from glass_sm.testing import make_toy_cube

OVERRIDES = {
    "run.seed": 3,
    "samples.block_size": 2,
    "samples.max_train_samples": 1200,
    "samples.max_eval_samples": 500,
    "models.hparams.common.hidden_size": 8,
    "models.hparams.common.num_layers": 1,
    "models.rate_windows": 200,
    "training.epochs": 2,
    "training.batch_size": 128,
    "training.n_boot": 30,
    "training.torch_threads": 1,
    "atlstm.final_window": 6,
    "atlstm.lengths": [1, 4],
    "atlstm.importance_windows": 150,
    "atlstm.permutation_repeats": 2,
    "figures.formats": ["png"],
    "figures.dpi": 40,
}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return stages.setup(None, {**OVERRIDES, "run.results_dir": str(tmp_path_factory.mktemp("results"))}, s03.STAGE)


@pytest.fixture(scope="module")
def inputs(ctx):
    cube, truth = make_toy_cube(n_lat=6, n_lon=5, start="1999-10-01", end="2001-09-30", seed=4, with_truth=True)
    ai = xr.DataArray(np.linspace(0.1, 0.9, cube.sizes["lon"])[None, :].repeat(cube.sizes["lat"], 0),
                      dims=("lat", "lon"), coords={"lat": cube.lat, "lon": cube.lon}, name="aridity_index")
    previous = torch.get_num_threads()
    yield s03.StageInputs(cube, xr.Dataset({"sm_true": truth, "aridity_index": ai}), s03.set_torch_threads(ctx.cfg))
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def samples(ctx, inputs):
    samples, table = s03.atlstm_samples(ctx, inputs)
    assert samples.window == 6 and table.window.iloc[0] == 6
    return samples


@pytest.fixture(scope="module")
def final(ctx, inputs, samples):
    return s03.production_model(ctx, inputs, samples)


@pytest.fixture(scope="module")
def att(ctx, inputs, samples, final):
    return s03.attention(ctx, inputs, samples, final[0])


def test_sequence_length_uses_identical_targets(ctx, inputs, samples):
    res = s03.sequence_length(ctx, inputs, samples)
    assert res.metrics.window.tolist() == [1, 1, 1, 1, 4, 4, 4, 4]
    assert res.metrics.model.tolist()[:4] == ["atlstm", "atlstm", "lstm", "lstm"]
    assert res.metrics.n.nunique() == 1 and set(res.timing.window) == {1, 4}
    assert set(res.timing.stop_reason) <= {"converged", "early-stopped", "budget cap"}
    assert (read_table(ctx.paths, "sequence_length_timing").final_lr > 0).all()
    assert len(read_table(ctx.paths, "sequence_length")) == 8
    with pytest.raises(ValueError, match="window"):
        s03.sequence_length_experiment(samples, ctx.cfg, [1, samples.window + 1], models=("lstm",), progress=False)
    text = s03.sequence_length_text(res.metrics, ctx.cfg.atlstm.final_window)
    assert text.startswith("**AtLSTM** (vs truth)") and "**LSTM** (vs truth)" in text
    assert "the 6-day window of the production model gives (not in the lengths)." in text


def test_production_checkpoint_writes_and_reloads(ctx, inputs, final):
    loaded, table = final
    path = ctx.paths.checkpoint
    assert path.exists() and ctx.paths.checkpoint_json.exists() and ctx.paths.checkpoint_card.exists()
    assert ctx.paths.checkpoint_history.exists()
    extra = json.loads(ctx.paths.checkpoint_json.read_text())["extra"]
    for key in ("features", "units", "normalizer", "window", "window_mode", "add_doy", "include_filled_flags",
                "train_period", "split", "metrics", "source"):
        assert key in extra, key
    assert extra["window"] == ctx.cfg.atlstm.final_window and extra["split"] == ctx.cfg.atlstm.final_split
    assert {"test_vs_label", "test_vs_truth"} <= set(extra["metrics"])
    card = ctx.paths.checkpoint_card.read_text()
    assert "twin" in card.lower() and "test metrics" in card.lower()
    assert table.reference.tolist() == ["label", "truth"]
    assert table.rmse.iloc[0] == pytest.approx(extra["metrics"]["test_vs_label"]["rmse"])
    fs = build_samples(inputs.cube, ctx.cfg, split=ctx.cfg.atlstm.final_split, window=loaded.window)
    idx = np.asarray(extra["self_check"]["pixel_day"], np.int64)
    raw = fs.normalizer.inverse(fs.windows(idx))
    np.testing.assert_allclose(loaded.predict(raw), extra["self_check"]["prediction"], atol=1e-5)
    pred = loaded.predict_normalized(fs.windows("test"))
    assert M.rmse(pred, fs.targets("test")) == pytest.approx(extra["metrics"]["test_vs_label"]["rmse"], rel=1e-5)
    s03.figure_final_loss(ctx)
    assert ctx.paths.figure("03_atlstm_final_loss", "png").exists()


def test_attention_tables_and_summary(ctx, att, samples):
    assert list(att.tables) == ["overall", "SM level", "season", "climate"]
    for name in ("attention_by_lag", "attention_by_lag_sm", "attention_by_lag_season", "attention_by_lag_climate"):
        t = read_table(ctx.paths, name)
        lag_cols = [c for c in t.columns if c.startswith("lag_")]
        assert len(lag_cols) == 6
        np.testing.assert_allclose(t[lag_cols].sum(axis=1), 1.0, rtol=1e-6)
        assert t.n.sum() == len(att.samples.test)
    assert "UNEP" in att.climate_rule
    assert set(att.tables["climate"].group) <= {"arid", "semi-arid", "dry sub-humid", "humid"}
    assert list(att.summary.grouping.unique()) == ["all", "sm_level", "season", "climate"]
    text = s03.attention_text(att.summary)
    assert f"over the {len(att.samples.test)} test windows" in text and "By season:" in text
    assert set(att.summary.model) == {"atlstm"}  # no stage-02 atlstm_cl model in this run: the final model only
    assert all(set(t.model) == {"atlstm"} for t in att.tables.values())
    s03.figure_attention(ctx, att)
    assert ctx.paths.figure("03_attention_by_lag", "png").exists()


def test_worked_example_and_importance(ctx, inputs, att, final):
    example = s03.worked_example(ctx, inputs, att.samples, final[0])
    assert len(read_table(ctx.paths, "attention_example")) == att.samples.window
    text = s03.example_text(example)
    tgt = example[example.is_target].iloc[0]
    assert f"prediction {tgt.prediction:.4f}, label {tgt.label:.4f}, truth {tgt.truth:.4f}" in text
    imp, n = s03.feature_importance(ctx, att.samples, final[0])
    assert n == 150 and set(imp.feature) == set(att.samples.feature_names) and (imp.repeats == 2).all()
    assert s03.importance_text(imp, n).startswith(f"Baseline RMSE on these 150 windows: {imp.base_rmse.iloc[0]:.4f}")
    s03.figure_example(ctx, example)
    s03.figure_importance(ctx, imp)
    for name in ("03_attention_example", "03_feature_importance"):
        assert ctx.paths.figure(name, "png").exists()


def test_attention_runs_for_both_heads_on_the_same_test_windows(ctx, inputs, samples, final, tmp_path):
    """With the stage-02 ``atlstm_cl`` checkpoint present (trained on other samples: window 5, its own
    normalizer), the analysis adds its rows, on the final model's test target days, re-normalised correctly."""
    from glass_sm.stages import s02_models as s02
    from glass_sm.training import predict_with_attention

    ctx2 = stages.setup(None, {**OVERRIDES, "run.results_dir": str(tmp_path)}, s03.STAGE)
    s2 = build_samples(inputs.cube, ctx2.cfg, window=5)
    s02.compare_models(s2, ctx2.cfg, progress=False, names=["atlstm_cl"]).save_models(ctx2.paths)
    assert s03.ablation_checkpoint(ctx2).exists()
    both = s03.attention(ctx2, inputs, samples, final[0])
    assert list(both.summary.model.unique()) == ["atlstm", "atlstm_cl"]
    overall = read_table(ctx2.paths, "attention_by_lag").set_index("model")
    assert overall.n["atlstm"] == overall.n["atlstm_cl"] == len(samples.test)
    lag_cols = [c for c in overall.columns if c.startswith("lag_")]
    np.testing.assert_allclose(overall.loc["atlstm_cl", lag_cols].sum(), 1.0, rtol=1e-6)
    assert overall.loc["atlstm_cl", lag_cols].isna().sum() == 1  # a 5-day window: lag 5 is not in it
    # by hand: the stage-02 samples' own windows of the same (pixel, day) pairs give the same attention
    cl = load_checkpoint(s03.ablation_checkpoint(ctx2))
    fs = samples.with_window(5)
    _, expected = predict_with_attention(cl.model, s2.windows(fs.test))
    _, got = s03._attention_of(cl, samples, 256)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(overall.loc["atlstm_cl", [f"lag_{k}" for k in range(5)]].to_numpy(float),
                               expected.mean(axis=0)[::-1], atol=1e-6)
    text = s03.attention_text(both.summary)
    assert "**AtLSTM [c; h_L]**" in text and "Against the production model" in text
    s03.figure_attention(ctx2, both, "atlstm_cl")
    assert ctx2.paths.figure("03_attention_by_lag_atlstm_cl", "png").exists()


# ---- prose on hand-made tables (exact numbers, each branch) --------------------------------------------------
def _summary(w_lag0, w_adjacent, effective, window_effective, window=10):
    rows = [{"grouping": "all", "group": "all", "n": 500, "window": window, "uniform": 1 / window, "w_lag0": w_lag0,
             "w_adjacent": w_adjacent, "mean_lag": 3.0, "effective_steps": effective, "argmax_lag": 0,
             "window_effective_steps": window_effective}]
    for grouping, group in (("sm_level", "0-0.1"), ("season", "JJA"), ("climate", "humid")):
        rows.append({**rows[0], "grouping": grouping, "group": group, "n": 100})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("args, phrase", [
    ((0.1, 0.3, 9.9, 9.5), "**The learned attention is nearly uniform**"),
    ((0.1, 0.3, 9.9, 3.0), "Each window concentrates its attention (effective number of days 3.0 of 10"),
    ((0.5, 0.8, 2.0, 2.0), "**The attention concentrates on the days adjacent to the target** (lags 0–2 get 2.67"),
    ((0.1, 0.36, 5.0, 5.0), "Lags 0–2 get 1.20 times their uniform share"),
])
def test_attention_text_branches(args, phrase):
    text = s03.attention_text(_summary(*args))
    assert phrase in text
    assert "By sm level: 0-0.1 (n = 100)" in text and "By climate: humid (n = 100)" in text


def test_sequence_length_and_importance_text_exact():
    rows = [{"model": "atlstm", "window": L, "reference": "label", "rmse": r, "rmse_lo": r - 0.001,
             "rmse_hi": r + 0.001} for L, r in ((1, 0.05), (7, 0.03), (15, 0.031))]
    text = s03.sequence_length_text(pd.DataFrame(rows), 15)
    assert text == ("**AtLSTM** (vs label): RMSE 0.0500 [0.0490, 0.0510] m³ m⁻³ with a 1-day window, lowest at L = 7 "
                    "days: 0.0300 [0.0290, 0.0310]; the 15-day window of the production model gives 0.0310 [0.0300, "
                    "0.0320]. The intervals of the shortest and the best window do not overlap: memory beyond the "
                    "target day helps.")
    imp = pd.DataFrame({"feature": ["lst", "sand"], "importance": [0.0123, 0.0001], "base_rmse": 0.04})
    assert s03.importance_text(imp, 99) == ("Baseline RMSE on these 99 windows: 0.0400 m³ m⁻³. Ranking: `lst` +0.0123, "
                                            "`sand` +0.0001 m³ m⁻³.")


def test_claims_from_the_stage_tables_without_stage_02(ctx, inputs, samples, att):
    """Stage 03 alone (no stage-02 tables in this results folder): the claims stage 02 feeds are 'not testable
    here', the attention claim is computed from the attention table just written, and the table is written."""
    s03.sequence_length(ctx, inputs, samples)
    claims = s03.claims(ctx)
    assert read_table(ctx.paths, "paper_claims").shape == claims.shape
    assert set(claims.claim_id) == {"C1", "C2", "C3", "C4", "C5", "C6"}
    by = claims.groupby("claim_id").verdict.agg(set)
    assert by["C1"] == {"not testable here"} and by["C3"] == {"not testable here"}
    c4 = claims[(claims.claim_id == "C4") & (claims.design == "paper design")].iloc[0]
    table = read_table(ctx.paths, "attention_by_lag")
    row = table[(table.grouping == "all") & (table.model == "atlstm")].iloc[0]
    lags = [c for c in table.columns if c.startswith("lag_")]
    near = float(sum(row[f"lag_{k}"] for k in range(3)) / row[lags].sum())
    assert c4.value == pytest.approx(near) and c4.verdict in {"holds", "does not hold", "not testable here"}


def test_production_model_reuses_the_same_stage02_fit_bit_for_bit(ctx, inputs, samples, final, tmp_path):
    """Stage 02's ``atlstm`` on the same samples (window 6 = the longest length here, same split, seed, budget) has
    the production fit's fingerprint: stage 03 reads it and its metrics equal those of the model trained in stage 03
    (the module's ``final``); a different stage-02 fit (another seed) is not reused, and training again gives the
    same metrics."""
    from glass_sm.fitting import fit_fingerprint
    from glass_sm.stages import s02_models as s02

    first = read_table(ctx.paths, "atlstm_final_metrics")
    assert (first.fit_source == "trained in stage 03").all()
    for seed, reused in ((3, True), (4, False)):
        ctx2 = stages.setup(None, {**OVERRIDES, "samples.window": 6, "run.results_dir": str(tmp_path / str(seed))},
                            s03.STAGE)
        s2 = build_samples(inputs.cube, ctx2.cfg)
        s02.compare_models(s2, ctx2.cfg, progress=False, names=["atlstm"], seed=seed).save_models(
            ctx2.paths, fingerprints={"atlstm": fit_fingerprint("atlstm", s2, ctx2.cfg, seed=seed)})
        assert s03.stage02_checkpoint(ctx2).exists()
        _, table = s03.production_model(ctx2, inputs, samples)
        assert table.fit_source.str.startswith("reused").all() == reused
        assert (table.fit_fingerprint == first.fit_fingerprint).all()
        # reused or trained again, the production model's test metrics are those of the first training
        pd.testing.assert_frame_equal(table.drop(columns="fit_source"), first.drop(columns="fit_source"))
