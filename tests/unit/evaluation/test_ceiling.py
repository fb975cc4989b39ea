"""The label ceiling: labels vs truth beside each model vs label and truth (closed forms on synthetic data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glass_sm.evaluation import metrics as M
from glass_sm.evaluation.ceiling import CEILING_COLUMNS, ceiling_markdown, label_ceiling


def _predictions(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.05, 0.45, n)
    label = truth + 0.02 * rng.standard_normal(n)
    return pd.DataFrame({"label": label, "truth": truth,
                         "copy": label,                                   # reproduces the label maker exactly
                         "oracle": truth,                                 # the truth itself
                         "noisy": truth + 0.03 * rng.standard_normal(n)})  # error independent of the label's


def _row(t: pd.DataFrame, subject: str, reference: str, split: str = "random") -> pd.Series:
    r = t[(t.split == split) & (t.subject == subject) & (t.reference == reference)]
    assert len(r) == 1
    return r.iloc[0]


def test_columns_rows_and_ceiling_row():
    p = _predictions()
    t = label_ceiling({"random": p, "site": p.iloc[:300]}, ["copy", "noisy", "absent"], n_boot=200, seed=1)
    assert tuple(t.columns) == CEILING_COLUMNS
    assert t.split.tolist() == ["random"] * 5 + ["site"] * 5  # ceiling + 2 models x 2 references; 'absent' skipped
    ceiling = _row(t, "label", "truth")
    assert ceiling.r2 == pytest.approx(M.r2(p.label, p.truth)) and ceiling.n == 600
    assert np.isnan(ceiling.r2_inflation) and np.isnan(ceiling.err_corr_label)
    assert _row(t, "label", "truth", "site").n == 300
    for col in ("r2", "rmse"):
        assert (t[f"{col}_lo"] <= t[col]).all() and (t[col] <= t[f"{col}_hi"]).all()


def test_a_model_equal_to_the_label_reaches_the_ceiling_against_the_truth():
    p = _predictions()
    t = label_ceiling({"random": p}, ["copy"], n_boot=200, seed=1)
    vs_label, vs_truth, ceiling = _row(t, "copy", "label"), _row(t, "copy", "truth"), _row(t, "label", "truth")
    assert vs_label.r2 == 1.0 and vs_label.rmse == 0.0
    assert vs_truth.r2 == pytest.approx(ceiling.r2) and vs_truth.rmse == pytest.approx(ceiling.rmse)
    assert vs_label.err_corr_label == pytest.approx(1.0)
    assert vs_label.r2_inflation == pytest.approx(1.0 - ceiling.r2)  # all of its label R2 above the ceiling
    assert vs_label.r2_inflation_lo <= vs_label.r2_inflation <= vs_label.r2_inflation_hi
    # paired resamples: its inflation is 1 - the ceiling's R2 on every resample, so the interval mirrors the ceiling's
    assert (vs_label.r2_inflation_lo, vs_label.r2_inflation_hi) == pytest.approx((1 - ceiling.r2_hi,
                                                                                   1 - ceiling.r2_lo))


def test_independent_errors_do_not_correlate_and_the_truth_deflates():
    p = _predictions(n=3000)
    t = label_ceiling({"random": p}, ["noisy", "oracle"], n_boot=300, seed=2)
    noisy = _row(t, "noisy", "truth")
    assert noisy.err_corr_label_lo < 0 < noisy.err_corr_label_hi  # the label's error is not reproduced
    assert noisy.r2_inflation < 0  # label noise adds to the error against the label
    oracle = _row(t, "oracle", "label")
    assert _row(t, "oracle", "truth").r2 == 1.0
    assert oracle.r2_inflation == pytest.approx(M.r2(p.truth, p.label) - 1.0)
    assert np.isnan(oracle.err_corr_label)  # a zero error has no correlation


def test_without_a_truth_only_label_rows_and_no_inflation():
    p = _predictions().assign(truth=np.nan)
    t = label_ceiling({"random": p}, ["copy", "noisy"], n_boot=100, seed=0)
    assert t.subject.tolist() == ["copy", "noisy"] and set(t.reference) == {"label"}
    assert t.r2_inflation.isna().all() and t.err_corr_label.isna().all()
    with pytest.raises(KeyError, match="split 'x' have no 'label'"):
        label_ceiling({"x": p.drop(columns="label")}, ["copy"], n_boot=10, seed=0)


def test_deterministic_and_markdown():
    p = _predictions()
    a = label_ceiling({"random": p}, ["noisy"], n_boot=100, seed=3)
    pd.testing.assert_frame_equal(a, label_ceiling({"random": p}, ["noisy"], n_boot=100, seed=3))
    text = ceiling_markdown(a)
    assert text.count("\n") == 2 + len(a) and "labels (ceiling)" in text
    assert "no predictions" in ceiling_markdown(a.iloc[:0])
