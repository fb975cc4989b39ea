"""Attention by lag, groupings of windows (SM level, season, climate) and the worked example, on a toy cube."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from glass_sm import config
from glass_sm.data import build_samples
from glass_sm.evaluation.aggregate import ARIDITY_LABELS, SEASONS
from glass_sm.interpret import attention as A
from glass_sm.models import build_model
from glass_sm.testing import make_toy_cube
from glass_sm.training import predict_with_attention


@pytest.fixture(scope="module")
def toy():
    return make_toy_cube(n_lat=4, n_lon=4, start="1999-10-01", end="2001-09-30", seed=4, with_truth=True)


@pytest.fixture(scope="module")
def samples(toy):
    cfg = config.load(None, {"run.seed": 3, "samples.window": 6, "samples.block_size": 2,
                             "samples.max_train_samples": 800, "samples.max_eval_samples": 300})
    return build_samples(toy[0], cfg)


def test_attention_by_lag_rows_sum_to_one_and_groups():
    rng = np.random.default_rng(1)
    att = rng.random((300, 5))
    att /= att.sum(axis=1, keepdims=True)
    offsets = np.arange(-4, 1)
    groups = np.where(np.arange(300) < 100, "DJF", "JJA")
    t = A.attention_by_lag(att, offsets, groups, order=["JJA", "DJF"], grouping="season")
    lag_cols = [c for c in t.columns if c.startswith("lag_")]
    assert lag_cols == ["lag_0", "lag_1", "lag_2", "lag_3", "lag_4"]
    np.testing.assert_allclose(t[lag_cols].sum(axis=1), 1.0)
    assert t.group.tolist() == ["JJA", "DJF"] and t.n.tolist() == [200, 100]
    np.testing.assert_allclose(t.loc[1, "lag_0"], att[:100, -1].mean())  # lag 0 = the last (target) step
    overall = A.attention_by_lag(att, offsets)
    s = A.attention_summary(overall)
    assert s.window.iloc[0] == 5 and s.uniform.iloc[0] == pytest.approx(0.2)
    assert 1 <= s.effective_steps.iloc[0] <= 5
    one_hot = np.zeros((10, 5))
    one_hot[:, -1] = 1.0
    s1 = A.attention_summary(A.attention_by_lag(one_hot, offsets))
    assert s1.w_lag0.iloc[0] == 1.0 and s1.effective_steps.iloc[0] == 1.0 and s1.mean_lag.iloc[0] == 0.0
    assert s1.window_effective_steps.iloc[0] == 1.0 and s1.argmax_lag.iloc[0] == 0
    with pytest.raises(ValueError, match="attention must be"):
        A.attention_by_lag(att[:, :4], offsets)


def test_attention_groups_seasons_and_terciles_without_aridity(samples):
    groups, orders = A.attention_groups(samples, "test")
    assert set(groups["season"]) <= set(SEASONS)
    assert set(groups["climate"]) <= {"dry", "intermediate", "wet"}
    assert "terciles" in orders["climate_rule"]
    assert len(groups["sm_level"]) == len(samples.test)
    assert set(groups["sm_level"]) <= set(orders["sm_level"])
    with pytest.raises(ValueError, match="truth"):
        A.attention_groups(samples, "test", sm_reference="truth")


def test_climate_classes_from_the_twin_aridity_field(samples, toy):
    cube = toy[0]
    ai = xr.DataArray(np.linspace(0.01, 1.0, cube.sizes["lon"])[None, :].repeat(cube.sizes["lat"], 0),
                      dims=("lat", "lon"), coords={"lat": cube.lat, "lon": cube.lon}, name="aridity_index")
    truth_ds = xr.Dataset({"sm_true": toy[1], "aridity_index": ai})
    assert A.find_aridity(truth_ds) is not None and A.find_aridity(None) is None
    assert A.find_aridity(xr.Dataset({"sm_true": toy[1]})) is None
    classes, rule = A.climate_classes(samples, A.find_aridity(truth_ds))
    assert "UNEP" in rule and classes.dtype == object and len(classes) == samples.n_pixels
    col = samples.pixels[:, 1]
    assert set(classes[col == 0]) == {"hyper-arid"} and set(classes[col == cube.sizes["lon"] - 1]) == {"humid"}
    groups, orders = A.attention_groups(samples, "test", toy[1], A.find_aridity(truth_ds), sm_reference="truth")
    assert orders["climate"][:5] == list(ARIDITY_LABELS)
    assert set(groups["climate"]) <= set(ARIDITY_LABELS)


def test_example_window_is_the_largest_rise_with_its_attention(samples, toy):
    torch.manual_seed(0)
    model = build_model("atlstm", samples.n_features, samples.window, hidden_size=4, num_layers=1)
    tab = A.example_window(samples, model, toy[1])
    assert len(tab) == samples.window and tab.is_target.sum() == 1
    np.testing.assert_allclose(tab.attention.sum(), 1.0, rtol=1e-5)
    i = int(tab["sample"].iloc[0])
    pred, att = predict_with_attention(model, samples.windows(samples.test[i:i + 1]))
    target = tab[tab.is_target].iloc[0]
    assert target.prediction == pytest.approx(float(pred[0]))
    np.testing.assert_allclose(tab.attention, att[0])
    assert tab.prediction.isna().sum() == samples.window - 1
    assert np.isfinite(target.truth) and target.label == pytest.approx(float(samples.targets("test")[i]))
    # the ERA5-Land input of the chosen window rises at least as much as in any other test window
    x = samples.windows("test")[:, :, samples.feature_names.index("sm_era5land")]
    assert np.argmax(np.diff(x, axis=1).max(axis=1)) == i
