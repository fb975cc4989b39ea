"""The label ceiling: how much of a model's skill *against the label* is agreement with the label maker.

The models learn the GLASS-MODIS-like labels, which are themselves an estimate of soil moisture with their own
errors. On the synthetic twin the truth is known, so three accuracies can be set side by side on the same test
windows (one table per split strategy, random / site / year):

* the **ceiling**: the labels themselves against the truth (``subject = 'label'``, ``reference = 'truth'``). A
  model that reproduced the labels exactly would score exactly this against the truth;
* each model against the **label** (what the paper can measure, and reports);
* each model against the **truth** (what the paper cannot measure).

Interpretation of the columns of :func:`label_ceiling`:

``r2_inflation`` = R2(model vs label) - R2(model vs truth), dimensionless, same windows, paired bootstrap CI.
    Positive: the label-based R2 flatters the model relative to its real accuracy, because part of what it
    "explains" is the label maker's error. Zero: the label is as good a yardstick as the truth. Negative: the
    model is closer to the truth than to the label (it has averaged out label noise it could not learn).
``err_corr_label`` = corr(model - truth, label - truth), Pearson, dimensionless, bootstrap CI.
    How much of the *pattern* of the label maker's error the model reproduces: 1 when the model's error is the
    label's error (up to scale and offset; a model equal to the label gives exactly 1), 0 when the two errors
    are unrelated. A high value with a high label R2 means the label R2 partly measures agreement with the label
    maker, not with the soil. (The amplitude share would be the regression slope of the model's error on the
    label's error; the correlation is reported because it is bounded and scale-free.)

Without a truth (real data) only the model-versus-label rows are written and the two columns above are NaN: the
ceiling is then not measurable, which is the point the twin makes.

Every interval is a 95 % percentile bootstrap (``n_boot`` resamples, ``seed``) from
:mod:`glass_sm.evaluation.metrics` / :func:`glass_sm.evaluation.skill.evaluate`, so all rows of one split share
the same resamples of the same windows.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from glass_sm.evaluation import metrics as M
from glass_sm.evaluation.skill import evaluate

__all__ = ["CEILING_COLUMNS", "label_ceiling", "ceiling_markdown"]

CEILING_COLUMNS = ("split", "subject", "reference", "n", "r2", "r2_lo", "r2_hi", "rmse", "rmse_lo", "rmse_hi",
                   "ubrmse", "bias", "r2_inflation", "r2_inflation_lo", "r2_inflation_hi", "err_corr_label",
                   "err_corr_label_lo", "err_corr_label_hi")
"""Columns of :func:`label_ceiling`, in order (R2 and correlations dimensionless, the others m3 m-3)."""

_ALPHA = 0.05  # two-sided level of every interval (95 %)


def _inflation(model: np.ndarray, label: np.ndarray, truth: np.ndarray, n_boot: int, seed: int
               ) -> tuple[float, float, float]:
    """R2(model, label) - R2(model, truth) and its percentile interval.

    Paired: :func:`glass_sm.evaluation.metrics._bootstrap_samples` draws the same resample indices for the same
    seed and number of pairs, so both R2 of a resample are computed on the same windows.
    """
    value = M.r2(model, label) - M.r2(model, truth)
    vs_label = M._bootstrap_samples(["r2"], model, label, n_boot, seed)["r2"]
    vs_truth = M._bootstrap_samples(["r2"], model, truth, n_boot, seed)["r2"]
    lo, hi = M._percentile_interval(vs_label - vs_truth, _ALPHA)
    return float(value), lo, hi


def _row(split: str, subject: str, reference: str, est: np.ndarray, ref: np.ndarray, n_boot: int, seed: int
         ) -> dict:
    s = evaluate(est, ref, n_boot, seed)
    return {"split": split, "subject": subject, "reference": reference, "n": s["n"],
            "r2": s["r2"], "r2_lo": s["r2_lo"], "r2_hi": s["r2_hi"],
            "rmse": s["rmse"], "rmse_lo": s["rmse_lo"], "rmse_hi": s["rmse_hi"],
            "ubrmse": s["ubrmse"], "bias": s["bias"]}


def label_ceiling(predictions: Mapping[str, pd.DataFrame], models: Sequence[str], *, n_boot: int,
                  seed: int) -> pd.DataFrame:
    """The labels' own accuracy against the truth beside each model's accuracy against label and truth.

    Parameters
    ----------
    predictions : mapping of str to pandas.DataFrame
        ``{split: table}`` (e.g. ``random``, ``site``, ``year``): one row per test window of that split with the
        columns ``label`` and ``truth`` (m3 m-3; ``truth`` all NaN or absent on real data) and one column per
        model (m3 m-3), as stage 02's ``model_comparison_predictions`` and the predictions of each
        :func:`glass_sm.stages.s02_models.run_split_strategies` result.
    models : sequence of str
        Model columns to score; a model absent from a split's table is skipped for that split (it was not
        trained for it, e.g. not in ``models.split_models``).
    n_boot : int
        Bootstrap resamples of every interval (``training.n_boot``).
    seed : int
        Bootstrap seed (``run.seed``): every row of a split uses the same resamples.

    Returns
    -------
    pandas.DataFrame
        :data:`CEILING_COLUMNS`. Per split: one row ``subject='label', reference='truth'`` (the ceiling; only
        with a truth), then per model a row against ``label`` and one against ``truth`` (only with a truth).
        ``r2_inflation`` and ``err_corr_label`` (see the module docstring) are repeated on both rows of a model
        and NaN on the ceiling row. A model's rows use the windows where its prediction, the label and (with a
        truth) the truth are all finite, so its label and truth rows are paired.

    Raises
    ------
    KeyError
        A split's table has no ``label`` column.
    """
    rows = []
    for split, table in predictions.items():
        if "label" not in table:
            raise KeyError(f"predictions of split '{split}' have no 'label' column; columns: {list(table.columns)}")
        label = table["label"].to_numpy(np.float64)
        truth = table["truth"].to_numpy(np.float64) if "truth" in table else np.full(len(table), np.nan)
        has_truth = bool(np.isfinite(truth).any())
        base = np.isfinite(label) & (np.isfinite(truth) if has_truth else True)
        if has_truth:
            rows.append(_row(split, "label", "truth", label[base], truth[base], n_boot, seed))
        for model in models:
            if model not in table:
                continue
            pred = table[model].to_numpy(np.float64)
            ok = base & np.isfinite(pred)
            p, lab = pred[ok], label[ok]
            extra = dict.fromkeys(CEILING_COLUMNS[12:], float("nan"))
            if has_truth and ok.sum() >= 3:
                tru = truth[ok]
                infl = _inflation(p, lab, tru, n_boot, seed)
                e_model, e_label = p - tru, lab - tru
                corr = M.r(e_model, e_label)
                lo, hi = M.bootstrap_ci("r", e_model, e_label, n_boot=n_boot, alpha=_ALPHA, seed=seed)
                extra = dict(zip(CEILING_COLUMNS[12:], (*infl, corr, lo, hi)))
            rows.append({**_row(split, model, "label", p, lab, n_boot, seed), **extra})
            if has_truth:
                rows.append({**_row(split, model, "truth", p, truth[ok], n_boot, seed), **extra})
    out = pd.DataFrame(rows, columns=list(CEILING_COLUMNS))
    return out.astype({"n": "int64"}) if len(out) else out


def _fmt(value, lo=None, hi=None, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    text = f"{value:.{digits}f}"
    if lo is not None and np.isfinite(lo) and np.isfinite(hi):
        text += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return text


def ceiling_markdown(df: pd.DataFrame) -> str:
    """A Markdown table of :func:`label_ceiling` for the notebook (95 % CIs in brackets).

    Parameters
    ----------
    df : pandas.DataFrame
        The output of :func:`label_ceiling`.

    Returns
    -------
    str
        One line per row: split, what is scored against what, n, R2, RMSE (m3 m-3), R2 inflation and the error
        correlation with the label maker; ``'–'`` where a value does not apply.
    """
    lines = ["| split | estimate | against | n | R² | RMSE (m³ m⁻³) | R² inflation | error corr. with label |",
             "|---|---|---|---:|---|---|---|---|"]
    for r in df.itertuples(index=False):
        subject = "labels (ceiling)" if r.subject == "label" else r.subject
        lines.append(f"| {r.split} | {subject} | {r.reference} | {r.n} | {_fmt(r.r2, r.r2_lo, r.r2_hi)} | "
                     f"{_fmt(r.rmse, r.rmse_lo, r.rmse_hi, 4)} | "
                     f"{_fmt(r.r2_inflation, r.r2_inflation_lo, r.r2_inflation_hi)} | "
                     f"{_fmt(r.err_corr_label, r.err_corr_label_lo, r.err_corr_label_hi, 2)} |")
    if df.empty:
        lines.append("| – | no predictions | – | 0 | – | – | – | – |")
    return "\n".join(lines) + "\n"
