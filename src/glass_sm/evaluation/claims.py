"""The paper's claims tested on the run's tables: value, 95 % CI and a verdict with its reason, per design.

Each claim of Zhang et al. (2025) about the models is restated as a quantity computable from the tables of
stages 02-03, with a decision rule fixed here *before* any run was looked at (no threshold was tuned toward an
outcome). Every number comes from the tables handed to :func:`paper_claims`; no model is re-run.

Designs
-------
``paper design``
    The models as the paper describes them (our inference): ``lstm``, ``bilstm``, ``atlstm`` (attention head
    reading the context alone), ``transformer`` and ``xgboost`` (target-day inputs, the paper's benchmark),
    on the random split for the R2 claim.
ablations
    The paper design with one component swapped: ``atlstm_cl`` (attention head reading [context; h_L]) in the
    place of ``atlstm``, or ``xgboost_window`` (the flattened 30-day window) in the place of ``xgboost``. C3 adds
    ``all models`` (AtLSTM against every other model run); C6 adds ``site split`` and ``year split`` (stricter
    held-out designs than random sampling of pixel-days).

A design whose model was not run (no column / no row in its table) gets one row ``not testable here`` naming it.

References
----------
Every claim about accuracy is tested against the label (what the paper measures) and, on the twin, against the
truth. Without a truth (real data) the truth rows are ``not testable here``. C4 (attention) is reference-free
(``reference = 'none'``).

Decision rules (verdicts: ``holds``, ``does not hold``, ``inconclusive``, ``not testable here``)
-----------------------------------------------------------------------------------------------
All paired differences are :func:`glass_sm.evaluation.skill.paired_difference` of the RMSE (m3 m-3) on the
same test windows of ``model_comparison_predictions``, 95 % percentile bootstrap (``n_boot``, ``seed``). A
comparison on fewer than ``min_windows`` (30) windows is ``not testable here``: below that a percentile bootstrap
interval is unreliable.

C1 deep models beat XGBoost. Per deep model m: D = RMSE(m) - RMSE(baseline). ``holds`` if the CI of D lies
    entirely below 0, ``does not hold`` if entirely above 0, else ``inconclusive`` (the CI contains 0). The claim
    is universal ("all four"), so over the models of a design (:func:`claims_summary`) it holds when every model
    holds, does not hold when any model does not hold, else is inconclusive.
C2 the gain is largest at SM > 0.4. AtLSTM vs the baseline, D per bin of the *reference* SM (``sm_bins``, whose
    last bin is the paper's > 0.4 m3 m-3 class; bins of the label for the label rows, of the truth for the truth
    rows). Bins with fewer than ``min_windows`` windows take no part; the wet bin with fewer is ``not testable
    here``. ``holds`` if the wet bin's CI lies entirely below 0 and its D is the most negative of all bins
    (point estimates; the gain is absolute, m3 m-3, as the paper's RMSE table). ``does not hold`` if the wet
    bin's CI lies entirely above 0 (the baseline is better there), or another bin's CI lies entirely below the
    wet bin's CI (a clearly larger gain elsewhere). Else ``inconclusive``.
C3 AtLSTM is the best model. D_k = RMSE(AtLSTM) - RMSE(k) for every other model k of the design. ``holds`` if
    every CI lies entirely below 0, ``does not hold`` if any lies entirely above 0 (some model is clearly
    better), else ``inconclusive``. The row reports D against the best other model (lowest RMSE).
C4 attention favours the days next to the target. From ``attention_by_lag`` (grouping ``all``; weights per lag,
    lag 0 = the target day): share S of the weight on the ``near_days`` (3) lags nearest the target against the
    uniform share U = near_days / L, and Spearman rho of weight against lag. ``holds`` if S >= 1.5 U (at least
    half as much again as uniform attention) and rho <= -0.5 (weight falls with lag); else ``does not hold``
    (the means are over all test windows, whose sampling error is negligible at the sizes of the runs; there is
    no interval). ``not testable here`` when L < 2 near_days (too few far days to compare with).
C5 an optimal sequence length exists. From ``sequence_length`` (the model's RMSE with marginal 95 % CIs per
    window L). L* = the window of least RMSE (ties: the shorter). With L* interior: ``holds`` if its CI lies
    entirely below the CIs of both the shortest and the longest window, else ``inconclusive`` (flat on one
    side). With L* at an end of the tested range: ``does not hold`` if its CI lies entirely below the CI of the
    best interior window (accuracy kept improving towards that end: no interior optimum in the range), else
    ``inconclusive``. Fewer than 3 windows: ``not testable here``. Marginal CIs that do not overlap are a
    conservative test of a difference.
C6 R2 ~ 0.99 on the test set (the paper reports 0.987). AtLSTM R2 with its CI from ``split_strategies``
    (``model_comparison`` for its own split when ``split_strategies`` lacks the row). ``holds`` if the CI's upper
    bound reaches ``r2_target`` (0.98: within about 0.01 of the reported value, the precision of "~0.99"),
    else ``does not hold``. The reason quotes the label ceiling: the labels' own R2 against the truth on the
    same split (``label_ceiling`` table, or computed from ``model_comparison_predictions`` for the main split).

:func:`claims_summary` combines the rows of one claim, design and reference: ``not testable here`` rows are left
out unless all are; then ``does not hold`` if any row does not hold, ``holds`` if all hold, else ``inconclusive``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from glass_sm.evaluation import metrics as M
from glass_sm.evaluation.skill import DEFAULT_SM_BINS, paired_difference, sm_bin_index, sm_bin_labels

__all__ = ["CLAIMS", "CLAIM_COLUMNS", "PAPER_DESIGN", "VERDICTS", "paper_claims", "claims_summary",
           "claims_markdown"]

PAPER_DESIGN = "paper design"
HOLDS, FAILS, INCONCLUSIVE, UNTESTABLE = "holds", "does not hold", "inconclusive", "not testable here"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, UNTESTABLE)
"""The verdict words, in the order of the decision rules."""

CLAIMS = {
    "C1": ("deep models beat XGBoost", "all four deep-learning models beat XGBoost"),
    "C2": ("the gain over XGBoost is largest at SM > 0.4",
           "the deep models' advantage is clearest at high soil moisture (> 0.4 m3 m-3)"),
    "C3": ("AtLSTM is the best model", "the AtLSTM is the most accurate of the five models"),
    "C4": ("attention favours the days next to the target",
           "the AtLSTM's attention weights concentrate on the days next to the target day"),
    "C5": ("an optimal sequence length exists", "accuracy peaks at an intermediate input-sequence length"),
    "C6": ("R2 ~ 0.99 on the test set", "AtLSTM test R2 = 0.987, RMSE = 0.011 m3 m-3 (ESSD discussion preprint)"),
}
"""Claim id -> (claim, what the paper reports)."""

CLAIM_COLUMNS = ("claim_id", "claim", "paper_reports", "design", "models", "reference", "quantity", "value",
                 "ci_lo", "ci_hi", "n", "verdict", "why")
"""Columns of :func:`paper_claims`."""

PAPER_DEEP = ("lstm", "bilstm", "atlstm", "transformer")
PAPER_BASELINE = "xgboost"
_META = {"pixel", "day", "date", "lat", "lon", "label", "truth", "split", "window"}
_PRED = "model_comparison_predictions"


def _row(cid: str, design: str, models: str, reference: str, quantity: str, value=np.nan, lo=np.nan, hi=np.nan,
         n=0, verdict: str = UNTESTABLE, why: str = "") -> dict:
    claim, paper = CLAIMS[cid]
    return {"claim_id": cid, "claim": claim, "paper_reports": paper, "design": design, "models": models,
            "reference": reference, "quantity": quantity, "value": float(value), "ci_lo": float(lo),
            "ci_hi": float(hi), "n": int(n), "verdict": verdict, "why": why}


def _g(x: float) -> str:
    return f"{x:.3g}" if np.isfinite(x) else "nan"


def _ci(d: dict) -> str:
    return f"[{_g(d['delta_lo'])}, {_g(d['delta_hi'])}]"


def _sign_verdict(d: dict) -> tuple[str, str]:
    """holds / does not hold / inconclusive from a paired difference whose negative side favours the claim."""
    if d["delta_hi"] < 0:
        return HOLDS, f"95 % CI {_ci(d)} entirely below 0"
    if d["delta_lo"] > 0:
        return FAILS, f"95 % CI {_ci(d)} entirely above 0"
    return INCONCLUSIVE, f"95 % CI {_ci(d)} contains 0"


class _Context:
    """The tables and settings shared by the claim functions, with a cache of paired differences."""

    def __init__(self, tables, n_boot, seed, sm_bins, min_windows):
        self.tables, self.n_boot, self.seed = tables, int(n_boot), int(seed)
        self.bins, self.min_windows = list(sm_bins), int(min_windows)
        self.preds = tables.get(_PRED)
        self._cache: dict = {}
        self.refs = ["label", "truth"]

    def ref_missing(self, ref: str) -> str:
        """Why ``ref`` cannot be used from the predictions, or ``''``."""
        if self.preds is None:
            return f"table '{_PRED}' (stage 02) not given"
        if ref not in self.preds or not np.isfinite(self.preds[ref].to_numpy(np.float64)).any():
            return "no truth (real data): only the label can be scored" if ref == "truth" else \
                f"no '{ref}' values in '{_PRED}'"
        return ""

    def model_missing(self, names: Sequence[str]) -> str:
        absent = [m for m in names if self.preds is None or m not in self.preds]
        return f"model(s) {', '.join(absent)} not run (no column in '{_PRED}')" if absent else ""

    def model_columns(self) -> list[str]:
        return [c for c in self.preds.columns if c not in _META] if self.preds is not None else []

    def paired(self, a: str, b: str, ref: str, bin_index: int | None = None) -> dict:
        key = (a, b, ref, bin_index)
        if key not in self._cache:
            r = self.preds[ref].to_numpy(np.float64)
            pa, pb = self.preds[a].to_numpy(np.float64), self.preds[b].to_numpy(np.float64)
            if bin_index is not None:
                sel = sm_bin_index(r, self.bins) == bin_index
                pa, pb, r = pa[sel], pb[sel], r[sel]
            self._cache[key] = paired_difference(pa, pb, r, "rmse", self.n_boot, self.seed)
        return self._cache[key]

    def capped(self, names: Sequence[str]) -> str:
        """A note naming the models of ``names`` whose training hit the budget cap (``model_timing.stop_reason``;
        a table without that column gives no note): their accuracy may be limited by the budget, not the design."""
        t = self.tables.get("model_timing")
        if t is None or "stop_reason" not in t or "model" not in t:
            return ""
        capped = set(t.loc[t["stop_reason"].astype(str) == "budget cap", "model"].astype(str))
        hit = [m for m in names if m in capped]
        return f"; stopped by the budget cap, not converged: {', '.join(hit)}" if hit else ""

    def rmse(self, model: str, ref: str) -> float:
        return M.rmse(self.preds[model].to_numpy(np.float64), self.preds[ref].to_numpy(np.float64))


# ----------------------------------------------------------------------------------------------------------
# C1-C3: paired differences on the test windows
# ----------------------------------------------------------------------------------------------------------
def _c1(cx: _Context) -> list[dict]:
    rows = []
    designs = ((PAPER_DESIGN, PAPER_DEEP, PAPER_BASELINE), ("atlstm_cl", ("atlstm_cl",), PAPER_BASELINE),
               ("xgboost_window", PAPER_DEEP, "xgboost_window"))
    for design, deep, base in designs:
        for ref in cx.refs:
            for m in deep:
                q = f"RMSE({m}) - RMSE({base}), m3 m-3"
                why = cx.ref_missing(ref) or cx.model_missing([m, base])
                if why:
                    rows.append(_row("C1", design, f"{m} vs {base}", ref, q, why=why))
                    continue
                d = cx.paired(m, base, ref)
                if d["n"] < cx.min_windows:
                    rows.append(_row("C1", design, f"{m} vs {base}", ref, q, n=d["n"],
                                     why=f"{d['n']} test windows < {cx.min_windows}"))
                    continue
                verdict, why = _sign_verdict(d)
                rows.append(_row("C1", design, f"{m} vs {base}", ref, q, d["delta"], d["delta_lo"], d["delta_hi"],
                                 d["n"], verdict, f"{why} ({d['n']} paired test windows){cx.capped([m, base])}"))
    return rows


def _c2(cx: _Context) -> list[dict]:
    rows = []
    labels = sm_bin_labels(cx.bins)
    wet = len(labels) - 1
    for design, a, base in ((PAPER_DESIGN, "atlstm", PAPER_BASELINE), ("atlstm_cl", "atlstm_cl", PAPER_BASELINE),
                            ("xgboost_window", "atlstm", "xgboost_window")):
        for ref in cx.refs:
            q = f"RMSE({a}) - RMSE({base}) in the {labels[wet]} bin of the {ref}, m3 m-3"
            why = cx.ref_missing(ref) or cx.model_missing([a, base])
            if why:
                rows.append(_row("C2", design, f"{a} vs {base}", ref, q, why=why))
                continue
            ds = [cx.paired(a, base, ref, j) for j in range(len(labels))]
            dw = ds[wet]
            if dw["n"] < cx.min_windows:
                rows.append(_row("C2", design, f"{a} vs {base}", ref, q, n=dw["n"],
                                 why=f"{dw['n']} test windows with {ref} SM {labels[wet]} < {cx.min_windows}"))
                continue
            others = [(labels[j], d) for j, d in enumerate(ds) if j != wet and d["n"] >= cx.min_windows]
            per_bin = "; ".join(f"{lab}: {_g(d['delta'])} {_ci(d)} (n={d['n']})" for lab, d in [*others,
                                                                                              (labels[wet], dw)])
            clearer = [lab for lab, d in others if d["delta_hi"] < dw["delta_lo"]]
            if dw["delta_lo"] > 0:
                verdict, why = FAILS, f"the baseline is better in the {labels[wet]} bin"
            elif clearer:
                verdict, why = FAILS, f"a clearly larger gain (CI below the wet bin's) in bin(s) {', '.join(clearer)}"
            elif dw["delta_hi"] < 0 and all(dw["delta"] < d["delta"] for _, d in others):
                verdict, why = HOLDS, f"the {labels[wet]} bin has the largest gain and its CI is below 0"
            else:
                verdict = INCONCLUSIVE
                why = (f"the {labels[wet]} bin's CI contains 0" if dw["delta_hi"] >= 0 else
                       f"the {labels[wet]} bin's gain is not the largest point estimate, but not clearly smaller")
            rows.append(_row("C2", design, f"{a} vs {base}", ref, q, dw["delta"], dw["delta_lo"], dw["delta_hi"],
                             dw["n"], verdict, f"{why}. Per bin: {per_bin}"))
    return rows


def _c3(cx: _Context) -> list[dict]:
    rows = []
    rest = ("lstm", "bilstm", "transformer")
    designs = [(PAPER_DESIGN, "atlstm", (*rest, PAPER_BASELINE)), ("atlstm_cl", "atlstm_cl", (*rest, PAPER_BASELINE)),
               ("xgboost_window", "atlstm", (*rest, "xgboost_window")),
               ("all models", "atlstm", tuple(c for c in cx.model_columns() if c != "atlstm"))]
    for design, a, others in designs:
        for ref in cx.refs:
            q = f"RMSE({a}) - RMSE(best other model), m3 m-3"
            why = cx.ref_missing(ref) or cx.model_missing([a, *others]) or ("" if others else "no other model run")
            if why:
                rows.append(_row("C3", design, f"{a} vs {', '.join(others) or '-'}", ref, q, why=why))
                continue
            best = min(others, key=lambda k: cx.rmse(k, ref))
            ds = {k: cx.paired(a, k, ref) for k in others}
            d = ds[best]
            listing = "; ".join(f"vs {k}: {_g(v['delta'])} {_ci(v)}" for k, v in ds.items())
            if d["n"] < cx.min_windows:
                rows.append(_row("C3", design, f"{a} vs {', '.join(others)}", ref, q, n=d["n"],
                                 why=f"{d['n']} test windows < {cx.min_windows}"))
                continue
            better = [k for k, v in ds.items() if v["delta_lo"] > 0]
            if better:
                verdict, why = FAILS, f"{', '.join(better)} clearly more accurate (CI of the difference above 0)"
            elif all(v["delta_hi"] < 0 for v in ds.values()):
                verdict, why = HOLDS, "every CI of the difference is below 0"
            else:
                tied = [k for k, v in ds.items() if v["delta_hi"] >= 0]
                verdict, why = INCONCLUSIVE, f"the CI against {', '.join(tied)} contains 0"
            rows.append(_row("C3", design, f"{a} vs {', '.join(others)}", ref, q, d["delta"], d["delta_lo"],
                             d["delta_hi"], d["n"], verdict,
                             f"{why}; best other: {best}. {listing}{cx.capped([a, *others])}"))
    return rows


# ----------------------------------------------------------------------------------------------------------
# C4-C6: attention, sequence length, R2
# ----------------------------------------------------------------------------------------------------------
def _attention_rows(table: pd.DataFrame | None) -> dict[str, pd.Series]:
    """The overall (grouping ``all``) row of ``attention_by_lag`` per model (no ``model`` column: atlstm)."""
    if table is None or table.empty:
        return {}
    t = table
    if "grouping" in t:
        t = t[t["grouping"].astype(str) == "all"]
    models = t["model"].astype(str) if "model" in t else pd.Series("atlstm", index=t.index)
    return {m: t.loc[models == m].iloc[0] for m in dict.fromkeys(models)}


def _c4(cx: _Context, near_days: int, share_factor: float, rho_max: float) -> list[dict]:
    rows = []
    by_model = _attention_rows(cx.tables.get("attention_by_lag"))
    for design, m in ((PAPER_DESIGN, "atlstm"), ("atlstm_cl", "atlstm_cl")):
        q = f"attention share on lags 0-{near_days - 1} (target day and the {near_days - 1} before)"
        if m not in by_model:
            why = ("table 'attention_by_lag' (stage 03) not given" if "attention_by_lag" not in cx.tables
                   else f"no attention of {m} in 'attention_by_lag' (model not run)")
            rows.append(_row("C4", design, m, "none", q, why=why))
            continue
        row = by_model[m]
        cols = sorted((c for c in row.index if str(c).startswith("lag_")), key=lambda c: int(str(c)[4:]))
        lags = np.array([int(str(c)[4:]) for c in cols])
        w = row[cols].to_numpy(np.float64)
        keep = np.isfinite(w)
        lags, w = lags[keep], w[keep]
        n = int(row["n"]) if "n" in row and np.isfinite(row["n"]) else 0
        L = len(w)
        if L < 2 * near_days or w.sum() <= 0:
            rows.append(_row("C4", design, m, "none", q, n=n,
                             why=f"window of {L} lags < {2 * near_days}: too few far days to compare with"))
            continue
        share = float(w[lags < near_days].sum() / w.sum())
        uniform = near_days / L
        rho = (float(pd.Series(w).corr(pd.Series(lags.astype(np.float64)), method="spearman"))
               if np.ptp(w) > 0 else float("nan"))  # equal weights: no ordering with lag
        ok_share, ok_rho = share >= share_factor * uniform, rho <= rho_max
        verdict = HOLDS if ok_share and ok_rho else FAILS
        why = (f"share {_g(share)} = {_g(share / uniform)} x the uniform {_g(uniform)} (rule: >= {share_factor:g} x);"
               f" Spearman rho(weight, lag) = {_g(rho)} (rule: <= {rho_max:g}); L = {L}; no CI (means over {n} "
               "test windows)")
        rows.append(_row("C4", design, m, "none", q, share, np.nan, np.nan, n, verdict, why))
    return rows


def _c5(cx: _Context) -> list[dict]:
    rows = []
    table = cx.tables.get("sequence_length")
    for design, m in ((PAPER_DESIGN, "atlstm"), ("atlstm_cl", "atlstm_cl")):
        for ref in cx.refs:
            q = "window L* of least RMSE, days"
            if table is None:
                rows.append(_row("C5", design, m, ref, q, why="table 'sequence_length' (stage 03) not given"))
                continue
            t = table[(table["model"].astype(str) == m) & (table["reference"].astype(str) == ref)]
            t = t[np.isfinite(t["rmse"].to_numpy(np.float64))].sort_values("window")
            if t.empty:
                no_truth = ref == "truth" and not (table["reference"].astype(str) == "truth").any()
                why = ("no truth (real data): only the label can be scored" if no_truth else
                       f"no '{m}' rows against '{ref}' in 'sequence_length' (model not run)")
                rows.append(_row("C5", design, m, ref, q, why=why))
                continue
            win = t["window"].to_numpy(int)
            rmse, lo, hi = (t[c].to_numpy(np.float64) for c in ("rmse", "rmse_lo", "rmse_hi"))
            n = int(t["n"].min())
            if len(win) < 3:
                rows.append(_row("C5", design, m, ref, q, n=n, why=f"only {len(win)} window length(s) tested"))
                continue
            k = int(np.argmin(rmse))
            listing = "; ".join(f"L={w}: {_g(r)} [{_g(a)}, {_g(b)}]" for w, r, a, b in zip(win, rmse, lo, hi))
            if 0 < k < len(win) - 1:
                sep = hi[k] < lo[0] and hi[k] < lo[-1]
                verdict = HOLDS if sep else INCONCLUSIVE
                why = (f"interior minimum at L={win[k]} d, CI below both ends" if sep else
                       f"interior minimum at L={win[k]} d, but its CI overlaps an end's")
            else:
                j = 1 + int(np.argmin(rmse[1:-1]))
                end = "longest" if k == len(win) - 1 else "shortest"
                if hi[k] < lo[j]:
                    verdict = FAILS
                    why = f"minimum at the {end} window L={win[k]} d, CI below the best interior (L={win[j]} d)"
                else:
                    verdict = INCONCLUSIVE
                    why = f"minimum at the {end} window L={win[k]} d, CI overlaps the best interior (L={win[j]} d)"
            rows.append(_row("C5", design, m, ref, q, win[k], np.nan, np.nan, n, verdict,
                             f"{why}. RMSE (m3 m-3) [95 % CI]: {listing}"))
    return rows


def _main_split(tables) -> str | None:
    mc = tables.get("model_comparison")
    return str(mc["split"].iloc[0]) if mc is not None and "split" in mc and len(mc) else None


def _ceiling_text(cx: _Context, split: str, model: str) -> str:
    """The labels' own R2 against the truth on ``split`` (label_ceiling table, else the main predictions), and
    the model's R2 inflation and error correlation with the label maker when the label_ceiling table has them."""
    lc = cx.tables.get("label_ceiling")
    if lc is not None and len(lc):
        here = lc[lc["split"].astype(str) == split]
        r = here[(here["subject"].astype(str) == "label") & (here["reference"].astype(str) == "truth")]
        if len(r):
            r = r.iloc[0]
            text = (f"label ceiling: the labels themselves reach R2 {_g(r['r2'])} [{_g(r['r2_lo'])}, "
                    f"{_g(r['r2_hi'])}] against the truth on the {split} split")
            m = here[(here["subject"].astype(str) == model) & (here["reference"].astype(str) == "truth")]
            if len(m) and np.isfinite(m["r2_inflation"].iloc[0]):
                m = m.iloc[0]
                text += (f"; {model}'s R2 vs label minus vs truth = {_g(m['r2_inflation'])} "
                         f"[{_g(m['r2_inflation_lo'])}, {_g(m['r2_inflation_hi'])}], corr(its error, the label's "
                         f"error) = {_g(m['err_corr_label'])}")
            return text
    if _main_split(cx.tables) == split and not cx.ref_missing("truth") and not cx.ref_missing("label"):
        r2 = M.r2(cx.preds["label"].to_numpy(np.float64), cx.preds["truth"].to_numpy(np.float64))
        return f"label ceiling: the labels themselves reach R2 {_g(r2)} against the truth on the {split} split"
    return f"label ceiling not available for the {split} split"


def _c6(cx: _Context, r2_target: float) -> list[dict]:
    rows = []
    ss, mc = cx.tables.get("split_strategies"), cx.tables.get("model_comparison")
    for design, m, split in ((PAPER_DESIGN, "atlstm", "random"), ("site split", "atlstm", "site"),
                             ("year split", "atlstm", "year"), ("atlstm_cl", "atlstm_cl", "random")):
        for ref in cx.refs:
            q = f"R2 of {m} on the {split} split (dimensionless)"
            found = None
            for name, t in (("split_strategies", ss), ("model_comparison", mc)):
                if t is None or "split" not in t:
                    continue
                r = t[(t["split"].astype(str) == split) & (t["model"].astype(str) == m)
                      & (t["reference"].astype(str) == ref)]
                if len(r) and np.isfinite(float(r["r2"].iloc[0])):
                    found = (name, r.iloc[0])
                    break
            if found is None:
                no_truth = ref == "truth" and not any(
                    t is not None and (t["reference"].astype(str) == "truth").any() for t in (ss, mc))
                why = ("no truth (real data): only the label can be scored" if no_truth else
                       f"no row of {m} on the {split} split against {ref} in 'split_strategies' or "
                       "'model_comparison' (not run, or the tables not given)")
                rows.append(_row("C6", design, m, ref, q, why=why))
                continue
            name, r = found
            r2, lo, hi = float(r["r2"]), float(r["r2_lo"]), float(r["r2_hi"])
            verdict = HOLDS if hi >= r2_target else FAILS
            rule = f"CI upper bound {_g(hi)} {'>=' if verdict == HOLDS else '<'} {r2_target:g}"
            why = f"{rule} (from '{name}'); {_ceiling_text(cx, split, m)}"
            if ref == "label" and "minus vs truth" not in why:
                why += "; a label R2 can include agreement with the label maker's errors (not measurable here)"
            rows.append(_row("C6", design, m, ref, q, r2, lo, hi, int(r["n"]), verdict, why))
    return rows


# ----------------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------------
def paper_claims(tables: Mapping[str, pd.DataFrame], *, n_boot: int, seed: int,
                 sm_bins: Sequence[float] = DEFAULT_SM_BINS, min_windows: int = 30, near_days: int = 3,
                 share_factor: float = 1.5, rho_max: float = -0.5, r2_target: float = 0.98) -> pd.DataFrame:
    """Each claim of the paper with the run's value, 95 % CI, verdict and reason (rules: module docstring).

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        The run's tables by contract name; those used: ``model_comparison_predictions`` (C1-C3),
        ``attention_by_lag`` (C4), ``sequence_length`` (C5), ``split_strategies`` and ``model_comparison``
        (C6), ``label_ceiling`` (optional, quoted by C6), ``model_timing`` (optional: C1/C3 name the models whose
        ``stop_reason`` is ``'budget cap'``). An absent table makes its claim ``not testable here``.
    n_boot : int
        Bootstrap resamples of the paired differences (``training.n_boot``).
    seed : int
        Bootstrap seed (``run.seed``); same seed, same tables -> identical output.
    sm_bins : sequence of float
        Reference-SM bin edges, m3 m-3 (``models.sm_bins``); the last bin is the paper's wet class (> 0.4).
    min_windows : int
        Fewest test windows for a bootstrap comparison (below it: ``not testable here``).
    near_days : int
        C4: lags counted as next to the target day (lag 0 = the target day), days.
    share_factor : float
        C4: the near-lag share must reach this multiple of the uniform share, dimensionless.
    rho_max : float
        C4: the Spearman correlation of weight with lag must be at most this, dimensionless.
    r2_target : float
        C6: the R2 CI's upper bound must reach this (the paper reports 0.987), dimensionless.

    Returns
    -------
    pandas.DataFrame
        :data:`CLAIM_COLUMNS`, one row per (claim, design, reference[, model]); ``value``, ``ci_lo``, ``ci_hi``
        in the unit named by ``quantity``; ``n`` test windows (C4: windows averaged; C5: per window length).
    """
    cx = _Context(tables, n_boot, seed, sm_bins, min_windows)
    rows = [*_c1(cx), *_c2(cx), *_c3(cx), *_c4(cx, near_days, share_factor, rho_max), *_c5(cx), *_c6(cx, r2_target)]
    return pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))


def _combine(verdicts: Sequence[str]) -> str:
    tested = [v for v in verdicts if v != UNTESTABLE]
    if not tested:
        return UNTESTABLE
    if FAILS in tested:
        return FAILS
    return HOLDS if all(v == HOLDS for v in tested) else INCONCLUSIVE


def claims_summary(df: pd.DataFrame, design: str = PAPER_DESIGN) -> pd.DataFrame:
    """One line per claim: its verdict under ``design`` against the truth and against the label.

    The rows of a claim, design and reference are combined as the module docstring says (C1: all deep models).
    C4 is reference-free: its verdict fills both columns.

    Parameters
    ----------
    df : pandas.DataFrame
        :func:`paper_claims`.
    design : str
        Design to summarise (default the paper's).

    Returns
    -------
    pandas.DataFrame
        ``claim_id, claim, paper_reports, vs_truth, vs_label``.
    """
    out = []
    for cid, (claim, paper) in CLAIMS.items():
        d = df[(df["claim_id"] == cid) & (df["design"] == design)]
        verdict = {}
        for ref in ("truth", "label"):
            sel = d[d["reference"].isin([ref, "none"])]
            verdict[ref] = _combine(sel["verdict"].tolist())
        out.append({"claim_id": cid, "claim": claim, "paper_reports": paper, "vs_truth": verdict["truth"],
                    "vs_label": verdict["label"]})
    return pd.DataFrame(out)


def _md(text) -> str:
    """Text for a Markdown/MyST table cell: pipes escaped, angle brackets as entities."""
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _value_text(r) -> str:
    if not np.isfinite(r.value):
        return "–"
    text = f"{r.value:.4g}"
    if np.isfinite(r.ci_lo) and np.isfinite(r.ci_hi):
        text += f" [{r.ci_lo:.3g}, {r.ci_hi:.3g}]"
    return text


def claims_markdown(df: pd.DataFrame, detail: bool = True) -> str:
    """A compact Markdown rendering of :func:`paper_claims` for the notebooks and the book.

    Parameters
    ----------
    df : pandas.DataFrame
        :func:`paper_claims`.
    detail : bool
        After the one-line-per-claim summary (:func:`claims_summary`, paper design), add the table of every
        row: design, models, reference, value [95 % CI], n, verdict and why.

    Returns
    -------
    str
        Markdown (MyST-safe: no raw ``<``/``>``/``|`` in cells); verdicts as words.
    """
    s = claims_summary(df)
    lines = ["| claim | the paper reports | twin, paper design: vs truth | vs label |", "|---|---|---|---|"]
    for r in s.itertuples(index=False):
        lines.append(f"| {r.claim_id} {_md(r.claim)} | {_md(r.paper_reports)} | **{r.vs_truth}** | "
                     f"**{r.vs_label}** |")
    if detail:
        lines += ["", "| claim | design | models | against | quantity | value [95 % CI] | n | verdict | why |",
                  "|---|---|---|---|---|---|---:|---|---|"]
        for r in df.itertuples(index=False):
            lines.append(f"| {r.claim_id} | {_md(r.design)} | {_md(r.models)} | {r.reference} | {_md(r.quantity)} "
                         f"| {_value_text(r)} | {r.n} | {r.verdict} | {_md(r.why)} |")
    return "\n".join(lines) + "\n"
