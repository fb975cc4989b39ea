"""glass_sm.figures.captions: text only, from numbers handed in; every caption says synthetic twin or real data."""

import numpy as np
import pandas as pd

from glass_sm.figures import captions

TWIN = "synthetic twin"


def test_every_caption_says_twin_or_real():
    for is_twin, word in ((True, "synthetic twin"), (False, "real data")):
        assert word in captions.caption_framework(is_twin, 30, "1982–2021")
        assert word in captions.data_sentence(is_twin)


def test_number_format():
    assert captions.fmt_number(0.12345) == "0.123" and captions.fmt_number(0.12345, 4) == "0.1235"
    assert captions.fmt_number(0.01, sign=True) == "+0.010"
    assert captions.fmt_number(None) == "n/a" and captions.fmt_number(np.nan) == "n/a"


def test_study_area_and_inputs():
    cap = captions.caption_study_area(True, {"n_stations": 6, "n_early": 2}, (-100.0, -99.6, 40.0, 40.4),
                                      "the ISMN files' headers")
    assert cap.startswith("Study domain (40.00° N–40.40° N, 100.00° W–99.60° W; 8 × 8 cells of 0.05°) and the 6 in "
                          "situ stations (2 with records before 2000, triangles) read from the ISMN files' headers;")
    assert TWIN in cap
    numbers = {"first": pd.Timestamp("1998-01-01"), "last": pd.Timestamp("2002-12-31"),
               "gaps": {"lst": 0.45, "albedo": 0.52, "other": 0.1}}
    cap = captions.caption_inputs(False, numbers)
    assert cap.startswith("Model inputs over 1998-01-01 to 2002-12-31:")
    assert "Fraction of pixel-days: albedo gap-filled 52%, LST gap-filled 45%." in cap and "real data" in cap
    assert "Fraction" not in captions.caption_inputs(False, {**numbers, "gaps": {}})


def test_model_captions_quote_the_numbers():
    numbers = pd.DataFrame([{"reference": "label", "n": 100, "best_model": "xgboost", "best_rmse": 0.04213,
                             "best_r2": 0.8144, "has_atlstm": True, "atlstm_rmse": 0.0444, "atlstm_r2": 0.793},
                            {"reference": "truth", "n": 100, "best_model": "atlstm", "best_rmse": 0.03,
                             "best_r2": 0.9, "has_atlstm": False, "atlstm_rmse": np.nan, "atlstm_r2": np.nan}])
    cap = captions.caption_model_density(True, numbers)
    assert "on the same 100 held-out test windows" in cap
    assert ("Against the GLASS-MODIS label the lowest RMSE is XGBoost's (0.0421 m³ m⁻³, R² = 0.814); AtLSTM R² = "
            "0.793, RMSE = 0.0444 m³ m⁻³; against the twin truth the lowest RMSE is AtLSTM's (0.0300") in cap
    wet = {"bin": ">0.4", "n": 707, "best_model": "xgboost", "best_rmse": 0.0868, "worst_model": "transformer",
           "worst_rmse": 0.1094}
    assert ("In the wettest level (>0.4 m³ m⁻³, n = 707) against the labels, RMSE ranges from 0.0868 (XGBoost) to "
            "0.1094 (Transformer).") in captions.caption_accuracy_by_sm(True, wet)
    seq = pd.DataFrame([{"model": "atlstm", "first_window": 1, "first_rmse": 0.0475, "best_window": 7,
                         "best_rmse": 0.0434}])
    cap = captions.caption_sequence_length(True, "truth", seq, 15)
    assert ("Against the twin truth: AtLSTM RMSE 0.0475 at L = 1 d and lowest 0.0434 m³ m⁻³ at L = 7 d. Dotted: the "
            "production window L = 15 d.") in cap
    overall = {"n": 10000, "w_lag0": 0.0667, "uniform": 1 / 15, "w_adjacent": 0.2, "effective_steps": 14.99,
               "window": 15}
    assert "(target day 0.067, uniform 1/L = 0.067; lags 0–2 together 0.200; spread over about 15.0 of 15 days)" \
        in captions.caption_attention(True, overall)


def test_validation_captions_quote_the_numbers():
    sites = pd.DataFrame([{"product": "GLASS-AVHRR", "r": 0.861, "ubrmse": 0.0391, "bias": 0.0081, "n_sensors": 6}])
    paper = {"period": "pre-2000", "r": 0.77, "ubrmse": 0.029, "paper_r": 0.73, "paper_ubrmse": 0.041}
    cap = captions.caption_insitu(True, sites, paper)
    assert "GLASS-AVHRR median R = 0.86, ubRMSE = 0.039, bias = +0.008 m³ m⁻³ (6 sensors)." in cap
    assert "the paper reports median R = 0.73 and ubRMSE = 0.041 m³ m⁻³ at real pre-2000 ISMN sites" in cap
    assert "paper reports" not in captions.caption_insitu(True, sites)
    means = pd.DataFrame([{"product": "ESA CCI", "january": 0.3, "july": 0.1684}])
    cap = captions.caption_monthly_maps(True, means, [2001, 2002])
    assert "over 2001–2002" in cap and "Domain means (area-weighted, m³ m⁻³): ESA CCI: January 0.300, July 0.168." in cap
    sd = pd.DataFrame({"field": ["GLASS-AVHRR", "ESA CCI"], "sd": [0.02331, np.nan]})
    cap = captions.caption_zoom(False, (-99.9, -99.7, 40.1, 40.3), "July 2002", sd)
    assert "40.10° N–40.30° N, 99.90° W–99.70° W" in cap and "GLASS-AVHRR 0.0233; ESA CCI (one cell)." in cap


def test_series_and_trend_captions():
    agreement = pd.DataFrame({"dataset": ["ERA5-Land"], "r": [0.981], "mean_diff": [-0.0261]})
    steps = pd.DataFrame({"series": ["residual vs twin truth"], "n_significant": [1], "n": [1]})
    cap = captions.caption_series(True, agreement, steps)
    assert "Monthly GLASS-AVHRR against ERA5-Land r = 0.98, mean difference -0.026 m³ m⁻³." in cap
    assert "residual vs twin truth 1 of 1." in cap
    assert "significant step" not in captions.caption_series(True, agreement, steps.iloc[:0])
    numbers = pd.DataFrame({"dataset": ["GLASS-AVHRR"], "median": [0.0276], "frac_significant": [0.0]})
    cap = captions.caption_trends(True, numbers, 5, False, 8)
    assert "over 5 years: GLASS-AVHRR median +0.0276 (0% significant)." in cap and "**Caution:**" in cap
    assert "as computed by stage 05" in captions.caption_trends(False, numbers, 30, True, 8)

