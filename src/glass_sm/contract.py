"""The run's table contract: every table a stage writes, declared once (name, producing stage, columns).

Stages write tables with :func:`write_table` and read those of earlier stages with :func:`read_table`; figures find
their inputs here, not by guessing from file names. ``columns`` are the columns a table must have (a table may
carry more, e.g. one column per model or one per attention lag, whose names depend on the run's parameters).
Paths come from :class:`glass_sm.paths.RunPaths` (``tables/<file>``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from glass_sm.paths import RunPaths, atomic_write

__all__ = ["TableSpec", "TABLES", "ContractError", "table_spec", "tables_of", "table_path", "write_table",
           "read_table", "producing_stage"]

STAGES = ("01_data_preparation", "02_model_comparison", "03_atlstm_training", "04_global_production",
          "05_validation", "06_paper_figures")


class ContractError(ValueError):
    """A table that is not in the contract, lacks a declared column, or is read before its stage wrote it."""


@dataclass(frozen=True)
class TableSpec:
    """One table of a run: ``tables/<file>``, written by ``stage`` with at least ``columns``."""

    name: str
    stage: str
    columns: tuple[str, ...]
    file: str = ""
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def filename(self) -> str:
        return self.file or f"{self.name}.csv"


def _t(name: str, stage: str, columns, file: str = "", description: str = "") -> TableSpec:
    return TableSpec(name, stage, tuple(columns), file, description)


_SPECS = [
    # --- 01_data_preparation
    _t("era5_bias", "01_data_preparation",
       ["mean_truth", "era5_bias"],
       description="ERA5-Land minus twin truth by mean-truth bin (twin only), m3 m-3"),
    _t("gap_fractions", "01_data_preparation",
       ["variable", "gap_fraction", "counted_from"],
       description="fraction of days without an observation per input variable, before gap filling"),
    _t("input_coverage", "01_data_preparation",
       ["source", "first_day", "last_day", "days_expected", "days_present", "days_missing", "long_runs",
        "first_missing", "last_missing", "allowed", "status"],
       description="days each input source has on disk against the period (labels from period.label_start), "
                   "runs of missing days longer than cube.max_missing_run_days, allowed or not"),
    # --- 02_model_comparison
    _t("era5land_input_metrics", "02_model_comparison",
       ["split", "window", "model", "reference", "n", "r2", "r2_lo", "r2_hi", "r", "r_lo", "r_hi", "rmse",
        "rmse_lo", "rmse_hi", "ubrmse", "ubrmse_lo", "ubrmse_hi", "bias", "bias_lo", "bias_hi"],
       description="the raw ERA5-Land input as an estimate of label and truth (the no-model baseline)"),
    _t("label_ceiling", "02_model_comparison",
       ["split", "subject", "reference", "n", "r2", "r2_lo", "r2_hi", "rmse", "rmse_lo", "rmse_hi", "ubrmse", "bias",
        "r2_inflation", "err_corr_label"],
       description="the labels' own accuracy vs the truth (the ceiling) beside each model vs label and truth, per "
                   "split; R2 inflation (vs label - vs truth) and the model's error correlation with the label's"),
    _t("metrics_by_sm_bin", "02_model_comparison",
       ["split", "model", "reference", "bin", "lo", "hi", "n", "r2", "r2_lo", "r2_hi", "r", "r_lo", "r_hi",
        "rmse", "rmse_lo", "rmse_hi", "ubrmse", "ubrmse_lo", "ubrmse_hi", "bias", "bias_lo", "bias_hi"],
       description="skill of each model by soil-moisture bin, with bootstrap CIs"),
    _t("model_comparison", "02_model_comparison",
       ["split", "window", "model", "reference", "n", "r2", "r2_lo", "r2_hi", "r", "r_lo", "r_hi", "rmse",
        "rmse_lo", "rmse_hi", "ubrmse", "ubrmse_lo", "ubrmse_hi", "bias", "bias_lo", "bias_hi"],
       description="skill of every model on identical test samples vs label and truth, with 95 % CIs"),
    _t("model_comparison_predictions", "02_model_comparison",
       ["pixel", "day", "date", "lat", "lon", "label", "truth"],
       file="model_comparison_predictions.csv.gz",
       description="test-sample predictions of every model (one column per model) with label and truth"),
    _t("model_comparison_samples", "02_model_comparison",
       ["split", "window", "n_train", "n_val", "n_test", "train_pixels", "test_pixels", "shared_pixels",
        "test_first", "test_last"],
       description="sample counts and pixels of the comparison split"),
    _t("model_histories", "02_model_comparison",
       ["epoch", "train_loss", "val_loss", "seconds", "model"],
       description="training loss per epoch of every model"),
    _t("model_timing", "02_model_comparison",
       ["split", "model", "n_train", "n_parameters", "flops_per_window", "epochs_run", "best_epoch",
        "stop_reason", "final_lr", "train_seconds", "train_windows_per_s", "inference_windows_per_s", "threads"],
       description="parameters, FLOPs per window, epochs, why training stopped (converged / early-stopped / "
                   "budget cap), final learning rate, training and inference speed of every model"),
    _t("model_vs_xgboost", "02_model_comparison",
       ["model", "baseline", "reference", "bin", "n", "d_rmse", "d_rmse_lo", "d_rmse_hi", "d_r2", "d_r2_lo",
        "d_r2_hi", "verdict"],
       description="paired bootstrap differences of each deep model against XGBoost, by SM bin, with a verdict"),
    _t("split_strategies", "02_model_comparison",
       ["split", "window", "model", "reference", "n", "r2", "r2_lo", "r2_hi", "r", "r_lo", "r_hi", "rmse",
        "rmse_lo", "rmse_hi", "ubrmse", "ubrmse_lo", "ubrmse_hi", "bias", "bias_lo", "bias_hi"],
       description="skill under random, site and year splits"),
    _t("split_strategies_by_sm_bin", "02_model_comparison",
       ["split", "model", "reference", "bin", "lo", "hi", "n", "r2", "r2_lo", "r2_hi", "r", "r_lo", "r_hi",
        "rmse", "rmse_lo", "rmse_hi", "ubrmse", "ubrmse_lo", "ubrmse_hi", "bias", "bias_lo", "bias_hi"],
       description="skill under each split strategy by SM bin"),
    _t("split_strategies_samples", "02_model_comparison",
       ["split", "window", "n_train", "n_val", "n_test", "train_pixels", "test_pixels", "shared_pixels",
        "test_first", "test_last"],
       description="sample counts of each split strategy"),
    _t("split_strategies_timing", "02_model_comparison",
       ["split", "model", "n_train", "n_parameters", "flops_per_window", "epochs_run", "best_epoch",
        "stop_reason", "final_lr", "train_seconds", "train_windows_per_s", "inference_windows_per_s", "threads"],
       description="training cost and stop reason under each split strategy"),
    # --- 03_atlstm_training
    _t("atlstm_final_metrics", "03_atlstm_training",
       ["reference", "n", "r2", "r2_lo", "r2_hi", "r", "r_lo", "r_hi", "rmse", "rmse_lo", "rmse_hi", "ubrmse",
        "ubrmse_lo", "ubrmse_hi", "bias", "bias_lo", "bias_hi"],
       description="test skill of the production AtLSTM vs label and truth, with CIs"),
    _t("atlstm_samples", "03_atlstm_training",
       ["split", "window", "n_train", "n_val", "n_test", "train_pixels", "test_pixels", "shared_pixels",
        "test_first", "test_last"],
       description="sample counts of the production model split"),
    _t("attention_by_lag", "03_atlstm_training",
       ["model", "grouping", "group", "n", "window_effective_steps"],
       description="mean attention weight by lag (one column per lag), overall, per attention model (column model)"),
    _t("attention_by_lag_climate", "03_atlstm_training",
       ["model", "grouping", "group", "n", "window_effective_steps"],
       description="mean attention weight by lag, per climate class"),
    _t("attention_by_lag_season", "03_atlstm_training",
       ["model", "grouping", "group", "n", "window_effective_steps"],
       description="mean attention weight by lag, per season"),
    _t("attention_by_lag_sm", "03_atlstm_training",
       ["model", "grouping", "group", "n", "window_effective_steps"],
       description="mean attention weight by lag, per soil-moisture bin"),
    _t("attention_example", "03_atlstm_training",
       ["sample", "pixel", "lat", "lon", "date", "offset", "lag", "attention", "label", "truth", "is_target",
        "prediction", "model"],
       description="one test window: inputs, attention weights, label, truth and prediction per day"),
    _t("attention_summary", "03_atlstm_training",
       ["model", "grouping", "group", "n", "window", "uniform", "w_lag0", "w_adjacent", "mean_lag",
        "effective_steps", "argmax_lag", "window_effective_steps"],
       description="attention concentration per model (atlstm: production, context head; atlstm_cl: [c; h_L] "
                   "ablation) and group: weight at lag 0, adjacent days, effective steps"),
    _t("feature_importance", "03_atlstm_training",
       ["feature", "importance", "importance_sd", "r2_drop", "base_rmse", "base_r2", "repeats"],
       description="permutation importance of each input feature (RMSE increase, m3 m-3)"),
    _t("paper_claims", "03_atlstm_training",
       ["claim_id", "claim", "paper_reports", "design", "models", "reference", "quantity", "value", "ci_lo", "ci_hi",
        "n", "verdict", "why"],
       description="each claim of the paper tested on the run's tables: value, 95 % CI, verdict and why, per "
                   "design (paper / ablation) and reference (label / truth)"),
    _t("sequence_length", "03_atlstm_training",
       ["model", "window", "reference", "n", "r2", "r2_lo", "r2_hi", "r", "r_lo", "r_hi", "rmse", "rmse_lo",
        "rmse_hi", "ubrmse", "ubrmse_lo", "ubrmse_hi", "bias", "bias_lo", "bias_hi"],
       description="skill against window length L for AtLSTM and LSTM"),
    _t("sequence_length_timing", "03_atlstm_training",
       ["model", "window", "epochs_run", "best_epoch", "stop_reason", "final_lr", "train_seconds",
        "inference_windows_per_s", "threads"],
       description="training cost and stop reason against window length"),
    # --- 04_global_production
    _t("04_flag_fractions", "04_global_production",
       ["flag", "bit", "fraction_of_land_pixel_days"],
       description="fraction of land pixel-days with each product flag bit set"),
    _t("04_paper_scale_estimate", "04_global_production",
       ["quantity", "value", "unit", "how", "land_definition"],
       description="core-hours and volume at the paper scale from the measured rates"),
    _t("04_pixel_metrics", "04_global_production",
       ["estimate", "reference", "r", "ubrmse", "bias", "n", "lat", "lon"],
       description="one pixel: product and ERA5-Land against label and truth"),
    _t("04_self_check", "04_global_production",
       ["date", "lat", "lon", "stage03_prediction", "product", "abs_diff"],
       description="product values equal stage-03 predictions for the same windows"),
    _t("04_truth_metrics", "04_global_production",
       ["year", "estimate", "r", "ubrmse", "bias"],
       description="product and ERA5-Land against the twin truth per year"),
    _t("04_zoom_agreement", "04_global_production",
       ["quantity", "lat", "lon", "coverage", "mean_fine", "mean_coarse", "bias", "rmse", "r", "sd_within", "n_days"],
       description="the 0.05 deg zoom aggregated onto the run's cells against the run (truth and product), m3 m-3"),
    _t("production_timing", "04_global_production",
       ["year", "land_pixels", "days", "pixel_days", "tiles", "tiles_resumed", "computed_pixel_days", "wall_s",
        "task_s", "assemble_s", "pixel_days_per_s", "bytes_daily", "bytes_annual", "scheduler", "torch_threads",
        "cores", "run_wall_s", "run_pixel_days", "reason"],
       description="per-year production timing, sizes and throughput, and why the year was produced"),
    # --- 05_validation
    _t("breaks", "05_validation",
       ["series", "platform_before", "platform_after", "date", "step", "t", "df", "p", "mean_before",
        "mean_after", "n_before", "n_after", "n_eff_before", "n_eff_after", "rho1_before", "rho1_after",
        "status", "significant"],
       description="break tests of the domain-mean residual at the NOAA platform transitions"),
    _t("domain_means", "05_validation",
       ["time"],
       description="area-weighted daily domain means of each product (one column per product) and residuals"),
    _t("intercomparison", "05_validation",
       ["comparison", "n_pixels", "n_days", "bias_median", "bias_mean", "bias_p25", "bias_p75", "r_median",
        "r_mean", "r_p25", "r_p75", "rmse_median", "rmse_mean", "rmse_p25", "rmse_p75", "ubrmse_median",
        "ubrmse_mean", "ubrmse_p25", "ubrmse_p75"],
       description="product-vs-product summary statistics over pixels"),
    _t("intercomparison_maps", "05_validation",
       ["comparison", "lat", "lon", "n", "bias", "r", "rmse", "ubrmse", "mean_a", "mean_b"],
       description="product-vs-product statistics per pixel"),
    _t("trends", "05_validation",
       ["dataset", "lat", "lon", "slope", "p_value", "z", "n_periods", "mean"],
       description="Sen slope and Mann-Kendall p of annual means per pixel and data set"),
    _t("trends_summary", "05_validation",
       ["dataset", "n_pixels", "slope_median", "slope_p25", "slope_p75", "frac_significant", "frac_positive",
        "slope_r", "sign_agreement", "slope_rmsd", "signif_agreement", "domain_slope", "domain_p", "n_years"],
       description="trend statistics per data set and their agreement with the truth"),
    _t("triple_collocation", "05_validation",
       ["anomalies", "sensor_id", "network", "station", "sensor", "lat", "lon", "depth_from", "depth_to", "n",
        "err_var_product", "err_sd_product", "rho2_product", "snr_db_product", "err_var_era5", "err_sd_era5",
        "rho2_era5", "snr_db_era5", "err_var_insitu", "err_sd_insitu", "rho2_insitu", "snr_db_insitu", "status",
        "n_truth_check", "true_err_sd_product", "true_rho2_product", "true_err_sd_era5", "true_rho2_era5",
        "true_err_sd_insitu", "true_rho2_insitu"],
       description="triple-collocation error estimates at stations (product, ERA5-Land, in situ)"),
    _t("true_error", "05_validation",
       ["estimate", "period", "pixels", "n_pixels", "n_days", "bias_median", "bias_mean", "bias_p25",
        "bias_p75", "r_median", "r_mean", "r_p25", "r_p75", "rmse_median", "rmse_mean", "rmse_p25", "rmse_p75",
        "ubrmse_median", "ubrmse_mean", "ubrmse_p25", "ubrmse_p75"],
       description="error of each estimate against the twin truth, by period and pixel set"),
    _t("true_error_maps", "05_validation",
       ["estimate", "lat", "lon", "n", "bias", "r", "rmse", "ubrmse", "held_out"],
       description="error against the truth per pixel"),
    _t("validation_sites", "05_validation",
       ["product", "sensor_id", "network", "station", "sensor", "lat", "lon", "elevation", "depth_from",
        "depth_to", "pixel_lat", "pixel_lon", "distance_km", "station_first", "station_last", "first", "last",
        "period", "n", "r", "r2", "bias", "rmse", "ubrmse", "r_lo", "r_hi", "r2_lo", "r2_hi", "bias_lo",
        "bias_hi", "rmse_lo", "rmse_hi", "ubrmse_lo", "ubrmse_hi", "status", "pixel_held_out"],
       description="one row per in situ sensor: location, period, skill with CIs, status"),
    _t("validation_summary", "05_validation",
       ["product", "period", "n_sites", "n_listed", "n_days", "r", "r_q25", "r_q75", "bias", "bias_q25",
        "bias_q75", "rmse", "rmse_q25", "rmse_q75", "ubrmse", "ubrmse_q25", "ubrmse_q75", "data", "paper_r",
        "paper_ubrmse", "paper_source", "paper_data"],
       description="in situ skill per product and period (median, quartiles) beside the paper"),
    _t("wet_bias", "05_validation",
       ["reference", "unit", "class_kind", "class", "estimate", "n", "bias_mean", "bias_median", "abs_bias_mean"],
       description="ERA5-Land (raw and corrected) bias by aridity and SM class"),
    # --- 06_paper_figures
    _t("figures_index", "06_paper_figures",
       ["figure", "file", "formats", "caption", "sources"],
       description="every paper figure: file, formats, caption, source tables"),
    _t("paper_table_accuracy_by_sm", "06_paper_figures",
       ["model", "reference", "bin", "n", "r", "rmse", "rmse_lo", "rmse_hi", "ubrmse", "bias", "data"],
       description="the paper's table (accuracy by sm) from stage files, with a data column (twin/real)"),
    _t("paper_table_attention", "06_paper_figures",
       ["model", "grouping", "group", "n", "window", "uniform", "w_lag0", "w_adjacent", "mean_lag",
        "effective_steps", "argmax_lag", "window_effective_steps", "data"],
       description="the paper's table (attention) from stage files, with a data column (twin/real)"),
    _t("paper_table_breaks", "06_paper_figures",
       ["series", "platform_before", "platform_after", "date", "step", "t", "df", "p", "mean_before",
        "mean_after", "n_before", "n_after", "n_eff_before", "n_eff_after", "rho1_before", "rho1_after",
        "status", "significant", "data"],
       description="the paper's table (breaks) from stage files, with a data column (twin/real)"),
    _t("paper_table_inputs", "06_paper_figures",
       ["variable", "description", "units", "dims", "grid", "period", "source", "data"],
       description="the paper's table (inputs) from stage files, with a data column (twin/real)"),
    _t("paper_table_insitu", "06_paper_figures",
       ["product", "period", "n_sites", "n_listed", "n_days", "r", "r_q25", "r_q75", "bias", "bias_q25",
        "bias_q75", "rmse", "rmse_q25", "rmse_q75", "ubrmse", "ubrmse_q25", "ubrmse_q75", "data", "paper_r",
        "paper_ubrmse", "paper_source", "paper_data"],
       description="the paper's table (insitu) from stage files, with a data column (twin/real)"),
    _t("paper_table_intercomparison", "06_paper_figures",
       ["comparison", "n_pixels", "n_days", "bias_median", "bias_mean", "bias_p25", "bias_p75", "r_median",
        "r_mean", "r_p25", "r_p75", "rmse_median", "rmse_mean", "rmse_p25", "rmse_p75", "ubrmse_median",
        "ubrmse_mean", "ubrmse_p25", "ubrmse_p75", "data"],
       description="the paper's table (intercomparison) from stage files, with a data column (twin/real)"),
    _t("paper_table_model_comparison", "06_paper_figures",
       ["split", "window", "model", "reference", "n", "r2", "r2_lo", "r2_hi", "r", "rmse", "rmse_lo", "rmse_hi",
        "ubrmse", "bias", "data"],
       description="stage-02 metrics, with the model_timing columns (n_parameters, epochs_run, ...) "
                   "when that table exists"),
    _t("paper_table_sequence_length", "06_paper_figures",
       ["model", "window", "reference", "n", "r2", "rmse", "rmse_lo", "rmse_hi", "ubrmse", "bias", "data"],
       description="the paper's table (sequence length) from stage files, with a data column (twin/real)"),
    _t("paper_table_trends", "06_paper_figures",
       ["dataset", "n_pixels", "slope_median", "slope_p25", "slope_p75", "frac_significant", "frac_positive",
        "slope_r", "sign_agreement", "slope_rmsd", "signif_agreement", "domain_slope", "domain_p", "n_years",
        "data"],
       description="the paper's table (trends) from stage files, with a data column (twin/real)"),
    # --- bench
    _t("bench", "bench",
       ["key", "quantity", "value", "unit", "note"],
       description="make bench: throughput and memory rows (see bench.json for the machine)"),
    _t("bench_prep_runs", "bench",
       ["run", "year", "files", "pairs", "f_files_per_s", "g_files_per_s", "g_over_f", "pair_ratios",
        "f_driver_cpu_s", "f_workers_cpu_s", "g_driver_cpu_s", "g_workers_cpu_s", "started"],
       description="make bench-prep: the (f)/(g) data-preparation section of make bench repeated, one row per "
                   "run (each on a fresh LocalCluster): its g/f (best g / best f of its alternating pairs), every "
                   "pair's ratio and the CPU of its fastest runs; the spread of g/f between runs"),
]
TABLES: dict[str, TableSpec] = {s.name: s for s in _SPECS}


def table_spec(name: str) -> TableSpec:
    """The declared table ``name`` (``.csv``/``.csv.gz`` suffix allowed); unknown -> :class:`ContractError`."""
    key = name.removesuffix(".gz").removesuffix(".csv")
    if key not in TABLES:
        near = difflib.get_close_matches(key, TABLES, n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise ContractError(f"table '{name}' is not declared in glass_sm.contract.TABLES{hint}")
    return TABLES[key]


def tables_of(stage: str) -> list[TableSpec]:
    """The tables ``stage`` writes, in declaration order."""
    return [s for s in _SPECS if s.stage == stage]


def producing_stage(name: str) -> str:
    """The stage that writes table ``name``."""
    return table_spec(name).stage


def table_path(paths: RunPaths, name: str) -> Path:
    """``results/<run>/tables/<file>`` of the declared table ``name``."""
    return paths.tables / table_spec(name).filename


def write_table(paths: RunPaths, name: str, df: pd.DataFrame, index: bool = False, **to_csv) -> Path:
    """Write the declared table ``name`` atomically after checking its declared columns are present.

    Raises
    ------
    ContractError
        ``name`` is not declared, or ``df`` lacks a declared column (named).
    """
    spec = table_spec(name)
    have = set(map(str, df.columns)) | ({str(df.index.name)} if index and df.index.name else set())
    missing = [c for c in spec.columns if c not in have]
    if missing:
        raise ContractError(f"table '{spec.name}' (stage {spec.stage}) lacks declared column(s) {missing}; "
                            f"has {list(map(str, df.columns))}")
    path = table_path(paths, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec.filename.endswith(".gz"):
        to_csv.setdefault("compression", "gzip")
    with atomic_write(path) as tmp:
        df.to_csv(tmp, index=index, **to_csv)
    return path


def read_table(paths: RunPaths, name: str, **read_csv) -> pd.DataFrame:
    """Read the declared table ``name``; a missing file -> :class:`FileNotFoundError` naming the stage to run."""
    spec = table_spec(name)
    path = table_path(paths, name)
    if not path.exists():
        raise FileNotFoundError(f"{path}: table '{spec.name}' is written by stage {spec.stage}; run that stage first")
    return pd.read_csv(path, **read_csv)
