"""Skill tables: metrics with intervals, per soil-moisture bin, paired differences to a baseline (closed forms)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glass_sm.evaluation import metrics as M
from glass_sm.evaluation import skill


def test_evaluate_columns_and_interval_order():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0.05, 0.45, 400)
    pred = ref + 0.02 * rng.standard_normal(400)
    out = skill.evaluate(pred, ref, n_boot=100, seed=1)
    expected = ["n"] + [c for m in skill.METRIC_NAMES for c in (m, f"{m}_lo", f"{m}_hi")]
    assert list(out) == expected and out["n"] == 400
    for m in skill.METRIC_NAMES:
        assert out[f"{m}_lo"] <= out[m] <= out[f"{m}_hi"]
    assert out["rmse"] == pytest.approx(M.rmse(pred, ref))
    assert list(skill.evaluate(pred, ref, 10, 1, ci=False)) == ["n", *skill.METRIC_NAMES]


def test_sm_bin_labels_and_index():
    bins = (0.0, 0.1, 0.2, 0.4, 1.0)
    assert skill.sm_bin_labels(bins) == ["0-0.1", "0.1-0.2", "0.2-0.4", ">0.4"]
    values = np.array([-0.01, 0.0, 0.099, 0.1, 0.39, 0.5, 1.0, 1.2, np.nan])
    assert skill.sm_bin_index(values, bins).tolist() == [-1, 0, 0, 1, 2, 3, 3, 4, 4]
    assert skill.sm_bin_index(values, bins, clip=True).tolist() == [0, 0, 0, 1, 2, 3, 3, 3, 3]


def test_metrics_by_sm_bin_closed_form():
    ref = np.array([0.05, 0.08, 0.15, 0.25, 0.26, 0.45, 0.50, 1.0, np.nan])
    pred = ref + np.array([0.01, 0.03, -0.02, 0.0, 0.02, -0.04, 0.0, 0.1, 0.2])
    t = skill.metrics_by_sm_bin(pred, ref)
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
    with_ci = skill.metrics_by_sm_bin(pred, ref, ci=True, n_boot=50)
    assert {"rmse_lo", "rmse_hi", "r2_lo"} <= set(with_ci.columns)
    with pytest.raises(ValueError):
        skill.metrics_by_sm_bin(pred, ref, bins=(0.0, 0.3, 0.2))


def test_paired_difference_is_zero_for_identical_models_and_signed():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0.05, 0.45, 500)
    good, bad = ref + 0.01 * rng.standard_normal(500), ref + 0.05 * rng.standard_normal(500)
    same = skill.paired_difference(good, good, ref, n_boot=50)
    assert same["delta"] == 0 and same["delta_lo"] == 0 and same["delta_hi"] == 0
    d = skill.paired_difference(good, bad, ref, n_boot=100)
    assert d["delta"] == pytest.approx(M.rmse(good, ref) - M.rmse(bad, ref))
    assert d["delta_lo"] < d["delta"] < d["delta_hi"] < 0
    few = skill.paired_difference(good[:2], bad[:2], ref[:2])
    assert few["n"] == 2 and np.isnan(few["delta"])


def test_baseline_differences_verdicts_per_bin():
    rng = np.random.default_rng(1)
    ref = rng.uniform(0.05, 0.45, 600)
    preds = pd.DataFrame({"label": ref, "truth": np.nan,
                          "good": ref + 0.005 * rng.standard_normal(600),
                          "base": ref + 0.04 * rng.standard_normal(600)})
    preds["bad"] = ref + 0.08 * rng.standard_normal(600)
    preds["same"] = preds["base"]
    t = skill.baseline_differences(preds, ["good", "bad", "same", "base"], "base", n_boot=50, seed=2)
    assert set(t.reference) == {"label"}  # the all-NaN truth is skipped
    assert list(pd.unique(t.model)) == ["good", "bad", "same"]  # the baseline is not compared with itself
    overall = t[t.bin == "all"].set_index("model")
    assert overall.verdict.to_dict() == {"good": "better", "bad": "worse", "same": "tie"}
    assert overall.loc["good", "n"] == 600 and overall.loc["good", "d_r2"] > 0
    per_bin = t[(t.model == "good") & (t.bin != "all")]
    assert per_bin.bin.tolist() == skill.sm_bin_labels(skill.DEFAULT_SM_BINS)
    assert per_bin.n.sum() == 600
    wet = t[(t.model == "good") & (t.bin == ">0.4")].iloc[0]  # few pairs but defined
    assert wet.verdict in {"better", "tie"}
