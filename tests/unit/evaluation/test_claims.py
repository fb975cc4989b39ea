"""The paper-claims table: verdicts known by construction, every value traced to the input tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glass_sm.evaluation import metrics as M
from glass_sm.evaluation.claims import (CLAIM_COLUMNS, CLAIMS, VERDICTS, claims_markdown, claims_summary,
                                        paper_claims)

PAPER = ("lstm", "bilstm", "atlstm", "transformer", "xgboost")
N_BOOT = 200


def _predictions(sigma: dict, n: int = 1500, seed: int = 0, wet_fraction: float = 0.2) -> pd.DataFrame:
    """Test windows with truth away from the bin edges, a label = truth + 0.005 noise, model = truth + noise.

    ``sigma``: model -> error SD (m3 m-3), or (SD outside the wet bin, SD in the wet bin > 0.4)."""
    rng = np.random.default_rng(seed)
    n_wet = int(round(wet_fraction * n))
    centres = np.array([0.05, 0.15, 0.25, 0.35])
    truth = np.concatenate([rng.choice(centres, n - n_wet) + rng.uniform(-0.03, 0.03, n - n_wet),
                            rng.uniform(0.45, 0.55, n_wet)])
    out = pd.DataFrame({"pixel": np.arange(n), "day": 0, "date": "2001-01-01", "lat": 0.0, "lon": 0.0,
                        "label": truth + 0.005 * rng.standard_normal(n), "truth": truth})
    wet = truth > 0.4
    for k, (name, s) in enumerate(sigma.items()):
        dry_sd, wet_sd = (s, s) if np.isscalar(s) else s
        e = np.random.default_rng(100 + k).standard_normal(n)
        out[name] = truth + np.where(wet, wet_sd, dry_sd) * e
    return out


def _seq(rmse: dict[int, float], half_width: float, model: str = "atlstm") -> pd.DataFrame:
    rows = [{"model": model, "window": w, "reference": ref, "n": 1000, "rmse": r, "rmse_lo": r - half_width,
             "rmse_hi": r + half_width} for ref in ("label", "truth") for w, r in rmse.items()]
    return pd.DataFrame(rows)


def _attention(weights: np.ndarray, model: str | None = None) -> pd.DataFrame:
    row = {"grouping": "all", "group": "all", "n": 500, "window_effective_steps": 1.0,
           **{f"lag_{k}": w for k, w in enumerate(weights / weights.sum())}}
    if model:
        row = {"model": model, **row}
    return pd.DataFrame([row])


def _splits(r2: float, hi: float, splits=("random", "site", "year"), model: str = "atlstm") -> pd.DataFrame:
    return pd.DataFrame([{"split": s, "window": 30, "model": model, "reference": ref, "n": 1000, "r2": r2,
                          "r2_lo": r2 - 0.01, "r2_hi": hi} for s in splits for ref in ("label", "truth")])


def _rows(df: pd.DataFrame, cid: str, design: str = "paper design", reference: str | None = None) -> pd.DataFrame:
    sel = (df.claim_id == cid) & (df.design == design)
    if reference:
        sel &= df.reference == reference
    return df[sel]


def _claims(tables, **kw) -> pd.DataFrame:
    return paper_claims(tables, n_boot=N_BOOT, seed=0, **kw)


# ----------------------------------------------------------------------------------------------------------
def test_c1_deep_models_better_worse_identical():
    good = _predictions({**{m: 0.01 for m in PAPER[:4]}, "xgboost": 0.03})
    df = _claims({"model_comparison_predictions": good})
    assert tuple(df.columns) == CLAIM_COLUMNS and set(df.verdict) <= set(VERDICTS)
    c1 = _rows(df, "C1")
    assert len(c1) == 8 and (c1.verdict == "holds").all() and (c1.ci_hi < 0).all()
    swapped = _claims({"model_comparison_predictions": _predictions({**{m: 0.03 for m in PAPER[:4]},
                                                                      "xgboost": 0.01})})
    assert (_rows(swapped, "C1").verdict == "does not hold").all()
    same = good.copy()
    for m in PAPER[:4]:
        same[m] = same["xgboost"]
    tied = _rows(_claims({"model_comparison_predictions": same}), "C1")
    assert (tied.verdict == "inconclusive").all() and tied.why.str.contains("contains 0").all()
    assert (tied.value == 0).all()


def test_c1_ablations_and_missing_inputs_are_not_testable():
    df = _claims({"model_comparison_predictions": _predictions({m: 0.02 for m in PAPER})})
    for design, model in (("atlstm_cl", "atlstm_cl"), ("xgboost_window", "xgboost_window")):
        rows = _rows(df, "C1", design)
        assert len(rows) and (rows.verdict == "not testable here").all()
        assert rows.why.str.contains(f"{model} not run").all()
    empty = _claims({})
    assert len(empty) and (empty.verdict == "not testable here").all()
    assert set(claims_summary(empty)[["vs_truth", "vs_label"]].stack()) == {"not testable here"}


def test_without_truth_the_truth_rows_are_not_testable():
    p = _predictions({m: 0.02 for m in PAPER}).assign(truth=np.nan)
    df = _claims({"model_comparison_predictions": p})
    truth_rows = df[df.reference == "truth"]
    assert (truth_rows.verdict == "not testable here").all()
    assert truth_rows[truth_rows.claim_id == "C1"].why.str.contains("no truth").all()
    assert (_rows(df, "C1", reference="label").verdict != "not testable here").all()


def test_c2_wet_bin_gain():
    wet_gain = _predictions({m: 0.01 for m in PAPER[:4]} | {"xgboost": (0.01, 0.04)})
    c2 = _rows(_claims({"model_comparison_predictions": wet_gain}), "C2")
    assert (c2.verdict == "holds").all() and (c2.ci_hi < 0).all() and (c2.n == 300).all()
    dry_gain = wet_gain.copy()
    dry = (dry_gain.truth > 0.1) & (dry_gain.truth < 0.2)
    dry_gain["xgboost"] = dry_gain.truth + np.where(dry, 0.04, 0.01) * np.random.default_rng(7).standard_normal(
        len(dry_gain))
    c2 = _rows(_claims({"model_comparison_predictions": dry_gain}), "C2")
    assert (c2.verdict == "does not hold").all() and c2.why.str.contains("0.1-0.2").all()
    few_wet = _predictions({m: 0.01 for m in PAPER}, n=1500, wet_fraction=5 / 1500)
    c2 = _rows(_claims({"model_comparison_predictions": few_wet}), "C2")
    assert (c2.verdict == "not testable here").all() and (c2.n == 5).all()


def test_c3_atlstm_best_or_not():
    best = _predictions({"lstm": 0.02, "bilstm": 0.02, "atlstm": 0.01, "transformer": 0.02, "xgboost": 0.02})
    assert (_rows(_claims({"model_comparison_predictions": best}), "C3").verdict == "holds").all()
    beaten = best.assign(bilstm=best.truth + 0.5 * (best.atlstm - best.truth))
    c3 = _rows(_claims({"model_comparison_predictions": beaten}), "C3")
    assert (c3.verdict == "does not hold").all() and c3.why.str.contains("best other: bilstm").all()
    assert (c3.ci_lo > 0).all()


def test_c4_attention_decay_uniform_short():
    decay = _claims({"attention_by_lag": _attention(np.exp(-np.arange(30) / 3.0))})
    row = _rows(decay, "C4").iloc[0]
    w = np.exp(-np.arange(30) / 3.0)
    assert row.verdict == "holds" and row.reference == "none" and row.value == pytest.approx(w[:3].sum() / w.sum())
    assert _rows(_claims({"attention_by_lag": _attention(np.ones(30))}), "C4").verdict.iloc[0] == "does not hold"
    assert _rows(_claims({"attention_by_lag": _attention(np.ones(4))}), "C4").verdict.iloc[0] == "not testable here"
    both = pd.concat([_attention(np.ones(30), "atlstm"), _attention(np.exp(-np.arange(30) / 3.0), "atlstm_cl")])
    df = _claims({"attention_by_lag": both})
    assert _rows(df, "C4").verdict.iloc[0] == "does not hold"
    assert _rows(df, "C4", "atlstm_cl").verdict.iloc[0] == "holds"


def test_c5_sequence_length():
    interior = {1: 0.050, 7: 0.040, 30: 0.035, 60: 0.045}
    c5 = _rows(_claims({"sequence_length": _seq(interior, 0.001)}), "C5")
    assert (c5.verdict == "holds").all() and (c5.value == 30).all()
    assert (_rows(_claims({"sequence_length": _seq(interior, 0.006)}), "C5").verdict == "inconclusive").all()
    longest = {1: 0.050, 7: 0.045, 30: 0.040, 60: 0.035}
    c5 = _rows(_claims({"sequence_length": _seq(longest, 0.001)}), "C5")
    assert (c5.verdict == "does not hold").all() and (c5.value == 60).all()
    flat_end = {1: 0.050, 7: 0.045, 30: 0.0352, 60: 0.035}
    assert (_rows(_claims({"sequence_length": _seq(flat_end, 0.001)}), "C5").verdict == "inconclusive").all()
    two = _rows(_claims({"sequence_length": _seq({7: 0.04, 30: 0.03}, 0.001)}), "C5")
    assert (two.verdict == "not testable here").all()


def test_c6_r2_and_the_label_ceiling_in_the_reason():
    ceiling = pd.DataFrame([{"split": "random", "subject": "label", "reference": "truth", "r2": 0.9, "r2_lo": 0.89,
                             "r2_hi": 0.91}])
    df = _claims({"split_strategies": _splits(0.985, 0.99), "label_ceiling": ceiling})
    c6 = _rows(df, "C6")
    assert (c6.verdict == "holds").all() and (c6.value == 0.985).all()
    assert c6.why.str.contains("labels themselves reach R2 0.9 ").all()
    assert (_rows(df, "C6", "site split").verdict == "holds").all()
    low = _claims({"split_strategies": _splits(0.86, 0.87)})
    assert (_rows(low, "C6").verdict == "does not hold").all()
    site_only = _claims({"split_strategies": _splits(0.985, 0.99, splits=("site",))})
    assert (_rows(site_only, "C6").verdict == "not testable here").all()
    # the main comparison stands in when split_strategies lacks the split
    main = _splits(0.985, 0.99, splits=("random",))
    assert (_rows(_claims({"model_comparison": main}), "C6").verdict == "holds").all()


def test_every_value_comes_from_the_inputs():
    p = _predictions({"lstm": 0.02, "bilstm": 0.02, "atlstm": 0.015, "transformer": 0.02, "xgboost": 0.025})
    tables = {"model_comparison_predictions": p, "split_strategies": _splits(0.9, 0.91),
              "sequence_length": _seq({1: 0.05, 7: 0.04, 30: 0.035, 60: 0.045}, 0.001)}
    df = _claims(tables)
    row = _rows(df, "C1", reference="truth")
    row = row[row.models == "atlstm vs xgboost"].iloc[0]
    assert row.value == pytest.approx(M.rmse(p.atlstm, p.truth) - M.rmse(p.xgboost, p.truth))
    # perturb the baseline: the difference moves by exactly its RMSE change
    worse = p.assign(xgboost=p.xgboost + 0.01)
    row2 = _rows(_claims({**tables, "model_comparison_predictions": worse}), "C1", reference="truth")
    row2 = row2[row2.models == "atlstm vs xgboost"].iloc[0]
    assert row2.value == pytest.approx(M.rmse(p.atlstm, p.truth) - M.rmse(worse.xgboost, p.truth))
    assert row2.value < row.value
    # C6 reads the R2 and its CI from the table; C5 the window of the minimum
    moved = _claims({**tables, "split_strategies": _splits(0.95, 0.97)})
    c6 = _rows(moved, "C6", reference="label").iloc[0]
    assert (c6.value, c6.ci_lo, c6.ci_hi) == pytest.approx((0.95, 0.94, 0.97))
    shifted = _claims({**tables, "sequence_length": _seq({1: 0.05, 7: 0.03, 30: 0.035, 60: 0.045}, 0.001)})
    assert (_rows(shifted, "C5").value == 7).all()
    # deterministic
    pd.testing.assert_frame_equal(df, _claims(tables))


def test_summary_and_markdown():
    p = _predictions({**{m: 0.01 for m in PAPER[:4]}, "xgboost": 0.03})
    df = _claims({"model_comparison_predictions": p, "attention_by_lag": _attention(np.ones(30))})
    s = claims_summary(df)
    assert s.claim_id.tolist() == list(CLAIMS) and list(s.columns) == ["claim_id", "claim", "paper_reports",
                                                                       "vs_truth", "vs_label"]
    got = s.set_index("claim_id")
    assert got.loc["C1", "vs_truth"] == "holds" and got.loc["C1", "vs_label"] == "holds"
    assert got.loc["C4", "vs_truth"] == got.loc["C4", "vs_label"] == "does not hold"
    assert got.loc["C5", "vs_truth"] == "not testable here"
    # one deep model worse: the universal claim does not hold
    mixed = _claims({"model_comparison_predictions": p.assign(transformer=p.truth + 2 * (p.xgboost - p.truth))})
    assert claims_summary(mixed).set_index("claim_id").loc["C1", "vs_truth"] == "does not hold"
    timing = pd.DataFrame({"model": list(PAPER), "stop_reason": ["converged"] * 4 + ["budget cap"]})
    capped = _rows(_claims({"model_comparison_predictions": p, "model_timing": timing}), "C1")
    assert capped.why.str.contains("budget cap, not converged: xgboost").all()
    assert not _rows(df, "C1").why.str.contains("budget cap").any()  # no timing table (or no stop_reason): no note
    text = claims_markdown(df)
    body = [line for line in text.splitlines() if line.startswith("| C")]
    assert len(body) == len(CLAIMS) + len(df)
    assert "&gt; 0.4" in text and "> 0.4" not in text and "holds" in text
    assert claims_markdown(df, detail=False).count("\n") == 2 + len(CLAIMS)
