"""The captions of the paper's figures: text only, from numbers computed elsewhere.

Each ``caption_*`` function formats the numbers that :mod:`glass_sm.stages.s06_figures` computed from the stages'
tables (its ``*_numbers`` functions) and ends with :func:`data_sentence`, which says whether the data are the
synthetic twin (never the paper's results) or real data. No caption computes a statistic. Soil moisture in
m3 m-3 (written m³ m⁻³), R and R² dimensionless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from glass_sm.figures.style import PRODUCT, REF_LABELS, fmt_lat, fmt_lon
from glass_sm.models import display_name

__all__ = ["data_sentence", "fmt_number", "caption_framework", "caption_study_area", "caption_inputs",
           "caption_model_density", "caption_accuracy_by_sm", "caption_sequence_length", "caption_attention",
           "caption_insitu", "caption_monthly_maps", "caption_zoom", "caption_series", "caption_trends"]

GAP_NAMES = {"albedo": "albedo gap-filled", "lst": "LST gap-filled", "sm_label": "GLASS-MODIS label missing"}
"""How the rows of stage 01's ``gap_fractions`` table are named in the caption of figure 3."""


def data_sentence(is_twin: bool) -> str:
    """The sentence every caption ends with."""
    if is_twin:
        return ("*Data: synthetic twin* — a simulated world with a known truth, written in the real products' "
                "formats; these are the twin's results, **not the paper's**.")
    return "*Data: real data* (the inputs named in the run's parameter file)."


def fmt_number(x, nd: int = 3, sign: bool = False) -> str:
    """``x`` with ``nd`` decimals (and a sign when ``sign``); ``'n/a'`` for None or a non-finite value."""
    if x is None or not np.isfinite(float(x)):
        return "n/a"
    return f"{float(x):+.{nd}f}" if sign else f"{float(x):.{nd}f}"


_f = fmt_number


def caption_framework(is_twin: bool, window: int | None = None, period: str = "") -> str:
    """Figure 1; ``window``: the production window L (days), ``period``: e.g. ``'1982–2021'``."""
    return ("Framework of GLASS-AVHRR soil moisture as implemented here: AVHRR albedo and LST, ERA5-Land soil "
            "moisture, terrain and soil texture are harmonized on the 0.05° grid (stage 01), windows of "
            f"{'L' if window is None else f'L = {window}'} days feed five models compared on identical samples (02), "
            "the attention LSTM (AtLSTM) trained on GLASS-MODIS labels is applied to every pixel and day"
            f"{f' of {period}' if period else ''} (03–04), and the product is validated against in situ stations "
            "and other products (05). " + data_sentence(is_twin))


def caption_study_area(is_twin: bool, numbers: Mapping, bounds, source: str, res: float = 0.05) -> str:
    """Figure 2; ``numbers``: ``n_stations``, ``n_early`` (records before 2000); ``bounds``: (W, E, S, N), deg;
    ``res``: the grid spacing, degrees. A global domain (360° of longitude) has no inset and colours the stations
    by network."""
    w, e, s, n = bounds
    glob = (e - w) >= 300
    return (f"Study domain ({fmt_lat(s)}–{fmt_lat(n)}, {fmt_lon(w)}–{fmt_lon(e)}; "
            f"{round((e - w) / res)} × {round((n - s) / res)} cells of {res:g}°) and the {numbers['n_stations']} in "
            f"situ stations ({numbers['n_early']} with records before 2000, triangles"
            f"{'; colours: networks' if glob else ''}) read from {source}; background: elevation (m)"
            f"{', ocean blank' if glob else '. Inset: location of the domain'}. " + data_sentence(is_twin))


def caption_inputs(is_twin: bool, numbers: Mapping) -> str:
    """Figure 3; ``numbers``: ``first``, ``last`` (days of the cube) and ``gaps`` (``{variable: fraction}``)."""
    txt = (f"Model inputs over {numbers['first']:%Y-%m-%d} to {numbers['last']:%Y-%m-%d}: long-term means of "
           "white-sky albedo (1), LST (K), ERA5-Land and GLASS-MODIS soil moisture (m³ m⁻³; GLASS-MODIS from its "
           "start date), elevation (m) and sand fraction (1), and their monthly domain means.")
    gaps = numbers.get("gaps")
    if gaps:
        parts = [f"{GAP_NAMES[v]} {gaps[v]:.0%}" for v in GAP_NAMES if v in gaps]
        txt += " Fraction of pixel-days: " + ", ".join(parts) + "."
    return txt + " " + data_sentence(is_twin)


def caption_model_density(is_twin: bool, numbers: pd.DataFrame) -> str:
    """Figure 4; ``numbers``: one row per reference (``reference, n, best_model, best_rmse, best_r2,
    has_atlstm, atlstm_r2, atlstm_rmse``), RMSE in m3 m-3."""
    parts = []
    for r in numbers.itertuples(index=False):
        at = (f"; AtLSTM R² = {_f(r.atlstm_r2)}, RMSE = {_f(r.atlstm_rmse, 4)} m³ m⁻³"
              if r.has_atlstm else "")
        parts.append(f"against the {REF_LABELS.get(r.reference, r.reference)} the lowest RMSE is "
                     f"{display_name(r.best_model)}'s ({_f(r.best_rmse, 4)} m³ m⁻³, R² = {_f(r.best_r2)}){at}")
    n = int(numbers.n.iloc[0]) if len(numbers) else 0
    body = "; ".join(parts)
    return (f"Predicted versus reference soil moisture of the five models on the same {n} held-out test windows "
            "(hexagon counts on a log scale; dashed: 1:1). " + body[:1].upper() + body[1:] + ". "
            + data_sentence(is_twin))


def caption_accuracy_by_sm(is_twin: bool, numbers: Mapping) -> str:
    """Figure 5; ``numbers``: the wettest level (``bin``, ``n``) and its ``best_model``/``best_rmse``,
    ``worst_model``/``worst_rmse``."""
    return (f"Test RMSE, ubRMSE and bias (m³ m⁻³, 95 % bootstrap intervals) within soil-moisture levels of the "
            f"reference. In the wettest level ({numbers['bin']} m³ m⁻³, n = {int(numbers['n'])}) against the "
            f"labels, RMSE ranges from {_f(numbers['best_rmse'], 4)} ({display_name(numbers['best_model'])}) to "
            f"{_f(numbers['worst_rmse'], 4)} ({display_name(numbers['worst_model'])}). " + data_sentence(is_twin))


def caption_sequence_length(is_twin: bool, reference: str, numbers: pd.DataFrame,
                            final_window: int | None = None) -> str:
    """Figure 6; ``numbers``: one row per model (``model, first_window, first_rmse, best_window, best_rmse``)
    against ``reference``; ``final_window``: the production window L, days."""
    parts = [f"{display_name(r.model)} RMSE {_f(r.first_rmse, 4)} at L = {int(r.first_window)} d and lowest "
             f"{_f(r.best_rmse, 4)} m³ m⁻³ at L = {int(r.best_window)} d" for r in numbers.itertuples(index=False)]
    fw = f" Dotted: the production window L = {final_window} d." if final_window is not None else ""
    return (f"Test accuracy against the input window length L (95 % intervals; solid: vs GLASS-MODIS labels, "
            f"dashed: vs the twin's truth where available). Against the {REF_LABELS.get(reference, reference)}: "
            + "; ".join(parts) + "." + fw + " " + data_sentence(is_twin))


def caption_attention(is_twin: bool, overall: Mapping) -> str:
    """Figure 7; ``overall``: the ``all`` row of stage 03's ``attention_summary`` table."""
    o = overall
    return (f"Attention weights of the production AtLSTM over the {int(o['n'])} test windows: (a) mean weight by lag "
            f"(target day {_f(o['w_lag0'])}, uniform 1/L = {_f(o['uniform'])}; lags 0–2 together "
            f"{_f(o['w_adjacent'])}; spread over about {o['effective_steps']:.1f} of {int(o['window'])} days); (b) "
            "weight relative to uniform by soil-moisture level, season and climate class (red: more than uniform); "
            "(c) one test window. " + data_sentence(is_twin))


def caption_insitu(is_twin: bool, numbers: pd.DataFrame, paper: Mapping | None = None) -> str:
    """Figure 8; ``numbers``: median ``r``, ``ubrmse``, ``bias`` and ``n_sensors`` per ``product``; ``paper``:
    the paper's reported ``paper_r``/``paper_ubrmse`` beside this run's ``r``/``ubrmse`` for a ``period``."""
    parts = [f"{r.product} median R = {_f(r.r, 2)}, ubRMSE = {_f(r.ubrmse, 3)}, bias = {_f(r.bias, 3, sign=True)} "
             f"m³ m⁻³ ({int(r.n_sensors)} sensors)" for r in numbers.itertuples(index=False)]
    txt = ("In situ validation: (a–c) R, ubRMSE and bias of each data set at the scored sensors (boxes: "
           "quartiles; dots: sensors); (d, e) R and ubRMSE of GLASS-AVHRR at the sites (triangles: records before "
           "2000). " + "; ".join(parts) + ".")
    if paper is not None:
        ours = f" (this run, {paper['period']}: R = {_f(paper['r'], 2)}, ubRMSE = {_f(paper['ubrmse'], 3)})"
        txt += (f" For reference only, the paper reports median R = {paper['paper_r']:.2f} and ubRMSE = "
                f"{paper['paper_ubrmse']:.3f} m³ m⁻³ at real {paper['period']} ISMN sites (paper, real "
                f"data){ours}.")
    return txt + " " + data_sentence(is_twin)


def caption_monthly_maps(is_twin: bool, numbers: pd.DataFrame, years: Sequence[int], res: float = 0.05,
                         cci_res: float | None = None) -> str:
    """Figure 9; ``numbers``: area-weighted domain means ``january``, ``july`` (m3 m-3) per ``product``; ``years``
    averaged; ``res``: the product's grid spacing, ``cci_res``: ESA CCI's (default 0.25), degrees."""
    means = "; ".join(f"{r.product}: January {_f(r.january)}, July {_f(r.july)}"
                      for r in numbers.itertuples(index=False))
    span = f"{min(years)}–{max(years)}" if years else "the common years"
    cci = 0.25 if cci_res is None else cci_res
    return (f"Mean surface soil moisture in January (top) and July (bottom) over {span} (years in which every "
            f"data set has data), each data set on its own grid (ESA CCI {cci:g}°, ERA5-Land interpolated to "
            f"{res:g}° in the cube, GLASS-MODIS and GLASS-AVHRR {res:g}°); one colour scale (2nd–98th "
            "percentile); white: sea or no valid day (grey, where drawn: land without a valid day). "
            f"Domain means (area-weighted, m³ m⁻³): {means}. " + data_sentence(is_twin))


def caption_zoom(is_twin: bool, box, when: str, numbers: pd.DataFrame, res: float = 0.05,
                 zoom_res: float | None = None) -> str:
    """Figure 10; ``numbers``: spatial standard deviation ``sd`` (m3 m-3; NaN: one cell) per ``field`` in ``box``
    (W, E, S, N, degrees); ``when``: the period averaged, e.g. ``'July 2002'``; ``res``: the run's grid spacing
    (ERA5-Land's files at twice it), degrees; ``zoom_res``: the regional zoom product's spacing, when the figure
    shows one."""
    w, e, s, n = box
    sd = "; ".join(f"{r.field} {_f(r.sd, 4)}" if np.isfinite(r.sd) else f"{r.field} (one cell)"
                   for r in numbers.itertuples(index=False))
    what = (f"the regional zoom at {zoom_res:g}° (the same world sampled finely, produced with this run's "
            f"checkpoint) beside this run's {res:g}° product of the same region and the other data sets"
            if zoom_res is not None else "every data set")
    return (f"Spatial detail over the box {fmt_lat(s)}–{fmt_lat(n)}, {fmt_lon(w)}–{fmt_lon(e)} (orange "
            f"frame in a), mean of {when}: {what}, each at its native resolution with its cells drawn whole "
            f"(ERA5-Land read from its own files at {2 * res:g}°). Spatial standard deviation over the cells "
            f"overlapping the box (m³ m⁻³): {sd}. " + data_sentence(is_twin))


def caption_series(is_twin: bool, agreement: pd.DataFrame, breaks: pd.DataFrame | None = None) -> str:
    """Figure 11; ``agreement``: correlation ``r`` and ``mean_diff`` (m3 m-3) of the monthly product against
    each ``dataset``; ``breaks``: ``n_significant`` of ``n`` platform changes per ``series`` (stage 05)."""
    parts = [f"{r.dataset} r = {r.r:.2f}, mean difference {_f(r.mean_diff, 3, True)}"
             for r in agreement.itertuples(index=False)]
    txt = ("Domain-mean surface soil moisture (each cell's monthly mean, averaged over the land cells with "
           "weights cos(latitude), the cells' relative areas): (a) monthly means, (b) annual-mean anomalies; "
           "dotted lines: AVHRR "
           f"platform changes. Monthly {PRODUCT} against " + "; ".join(parts) + " m³ m⁻³.")
    if breaks is not None and len(breaks):
        txt += (" Platform changes with a significant step (stage 05, `breaks.csv`; a step in the product's "
                "residual against a reference is an artefact of the record): "
                + "; ".join(f"{r.series} {int(r.n_significant)} of {int(r.n)}" for r in breaks.itertuples()) + ".")
    return txt + " " + data_sentence(is_twin)


def caption_trends(is_twin: bool, numbers: pd.DataFrame, n_years: int, from_stage05: bool, min_periods: int,
                   alpha: float = 0.05) -> str:
    """Figure 12; ``numbers``: ``median`` slope (m3 m-3 decade-1) and ``frac_significant`` per ``dataset``;
    ``from_stage05``: the slopes are stage 05's (else computed for illustration from ``n_years`` annual means)."""
    parts = [f"{r.dataset} median {_f(r.median, 4, True)} ({r.frac_significant:.0%} significant)"
             for r in numbers.itertuples(index=False)]
    txt = (f"Sen's slope of the annual means per decade (m³ m⁻³ decade⁻¹; "
           f"dots: Mann–Kendall p < {alpha}) over {n_years} years: " + "; ".join(parts) + ".")
    if from_stage05:
        txt += " Trends as computed by stage 05 (`tables/trends.csv`)."
    else:
        txt += (f" **Caution:** only {n_years} annual means, fewer than the {min_periods} stage 05 requires "
                "(`validation.trend_min_periods`), so stage 05 reports no trend; the slopes shown are computed here "
                f"from the annual means with {n_years} years for illustration and are not meaningful.")
    return txt + " " + data_sentence(is_twin)
