r"""GLASS-MODIS-like labels made the way the real ones are: an XGBoost retrieval trained on in situ stations.

The real GLASS-MODIS soil moisture (Zhang et al. 2023, ESSD 15, 2055-2079) is itself a retrieval: an
ensemble-learning (XGBoost) model trained on ISMN station days from MODIS-era albedo, LST and vegetation, ERA5-Land
soil moisture and static data, applied at 1 km. Its error is therefore the input errors propagated through a
model fitted to point measurements: smooth in time (the optical inputs are gap-filled by temporal filtering) and
correlated with the inputs. ``twin.labels: retrieval`` (the default) reproduces that chain on the twin:

1. **MODIS-like inputs** per 0.05 deg cell-day of the domain from ``period.label_start`` (MODIS Terra,
   2000-02-24), :func:`modis_inputs`:

   * white-sky shortwave albedo :func:`~glass_sm.twin.sensors.albedo_model` + N(0, ``twin.modis_albedo_noise``),
     no platform steps (one sensor, stable calibration) and no drift;
   * LST at the Terra daytime overpass, 10:30 local solar time (a sun-synchronous orbit kept by manoeuvres: no
     drift), :func:`~glass_sm.twin.sensors.lst_model` on the daytime cosine of Goettsche & Olesen (2001),
     symmetric about the 13:00 peak, + N(0, ``twin.modis_lst_noise``);
   * NDVI by the dimidiate-pixel model (Gutman & Ignatov 1998)
     :math:`NDVI = NDVI_s + (NDVI_v - NDVI_s) f_{veg}` with their :math:`NDVI_s = 0.04`, :math:`NDVI_v = 0.52`,
     + N(0, ``twin.ndvi_noise``). GLASS-MODIS SM used GLASS LAI; LAI, like NDVI, is a monotone function of the
     cover, and tree models are invariant to monotone transforms of an input, so the constants only set the
     noise's size relative to the signal (0.02 / 0.48: 4 % of the cover's range);
   * cloudy days (the weather's ``cloudy``, as :func:`~glass_sm.twin.sensors.simulate_avhrr` decides them; albedo
     also when the sun is below 10 deg at 10:30) are filled by linear interpolation in time between clear days
     (the nearest clear day at the ends). GLASS products are gap-free by temporal filtering: a rain event under
     clouds is only seen on the next clear day, which makes the label error smooth in time;
   * ERA5-Land-like SM: the daily value (points at spacing 2r: 0.1 deg for r = 0.05) the ERA5-Land files carry (:func:`~glass_sm.twin.sensors.
     simulate_era5`, before the 6-hourly interpolation and int16 packing) of the point covering the cell;
   * DEM (cell mean elevation, m), sand and clay fractions, and the day of year as sin/cos (season).

2. **Station training set**, :func:`station_days`: the twin's ISMN-like stations
   (:func:`~glass_sm.twin.sensors.simulate_stations`, their own random stream: the same series the ``.stm`` files
   hold) reduced to daily means of the hours that are kept and flagged ``G`` (ISMN users' practice), days with
   at least :data:`MIN_GOOD_HOURS` such hours, from ``period.label_start`` to ``period.label_end`` (the real
   product's period, 2000-2020). Targets are station values (truth + representativeness error), never the truth.

3. **The retrieval**, :func:`fit_retrieval`: XGBoost ``reg:squarederror``, ``tree_method='hist'``,
   ``twin.retrieval_rounds`` rounds of depth ``twin.retrieval_max_depth``, learning rate :data:`LEARNING_RATE`,
   row subsampling :data:`SUBSAMPLE` (XGBoost's common regularised setting; no tuning on the twin), one thread
   (bit-for-bit reproducible) and a seed from ``(run.seed, 'label_retrieval')``.

4. **Application**, :func:`retrieval_labels`: every cell-day with soil (land, not ice:
   :func:`~glass_sm.twin.sensors.soil_mask`; NaN elsewhere, as the real product over sea and ice) from
   ``period.label_start`` to the period's end, clipped to :math:`[0, \theta_s]` (:math:`\theta_s` by Saxton & Rawls 2006 from the sand and clay the retrieval
   reads: a producer can compute it). No extra white noise is added: the real retrieval's error is its input
   errors propagated through the model. The sinusoidal pixels then take their cell's value, with whole
   cell-days missing at ``twin.label_gap_fraction`` (:func:`glass_sm.twin.sensors.simulate_glass_modis`).

:func:`write_retrieval_info` writes ``label_retrieval.json`` next to the truth: stations, station-days, features,
hyper-parameters and the training fit against the station values (never against the truth: the stages compute
label-vs-truth).

References
----------
Goettsche, F.-M., Olesen, F. S. (2001). Remote Sens. Environ. 76, 337-348.
Gutman, G., Ignatov, A. (1998). The derivation of the green vegetation fraction from NOAA/AVHRR data for use in
numerical weather prediction models. Int. J. Remote Sens. 19(8), 1533-1543.
Wolfe, R. E. et al. (2002). Achieving sub-pixel geolocation accuracy in support of MODIS land science. Remote Sens.
Environ. 83, 31-49 (Terra: 10:30 descending node, maintained by inclination manoeuvres).
Zhang, Y., Liang, S., Ma, H., et al. (2023). Generation
of global 1 km daily soil moisture product from 2000 to 2020 using ensemble learning trained with multiple in
situ observations. Earth Syst. Sci. Data 15, 2055-2079.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import xgboost

from glass_sm.paths import atomic_write
from glass_sm.twin.climate import cos_sza
from glass_sm.twin.grids import component_rng
from glass_sm.twin.sensors import (LST_PEAK_H, MIN_MU0_ALBEDO, StationSeries, albedo_model, first_label_day,
                                   lst_model, simulate_era5, simulate_stations, soil_mask)

__all__ = ["FEATURES", "MODIS_OVERPASS_H", "NDVI_SOIL", "NDVI_VEG", "MIN_GOOD_HOURS", "LEARNING_RATE", "SUBSAMPLE",
           "fill_linear", "modis_inputs", "station_days", "feature_matrix", "training_table", "fit_retrieval",
           "RetrievalLabels", "retrieval_labels", "retrieval_info_path", "write_retrieval_info"]

MODIS_OVERPASS_H = 10.5         #: Terra daytime equator crossing, local solar time, h (Wolfe et al. 2002)
NDVI_SOIL, NDVI_VEG = 0.04, 0.52   #: bare-soil and full-cover NDVI of the dimidiate model (Gutman & Ignatov 1998)
MIN_GOOD_HOURS = 12             #: good hourly values a station day needs (fewer: the diurnal cycle biases the mean)
LEARNING_RATE, SUBSAMPLE = 0.05, 0.8   #: XGBoost shrinkage and row subsampling of the retrieval
NTHREAD = 1                     #: one thread: the fitted trees and the labels are bit-for-bit reproducible
PREDICT_CHUNK_DAYS = 365        #: at most this many days per prediction batch
#: Threads predicting the labels: a row's prediction sums its trees in a fixed order whichever thread computes it,
#: so the labels do not depend on it (``tests/unit/twin/test_labels.py``); the demo machine's 2 cores.
PREDICT_NTHREAD = min(2, os.cpu_count() or 1)
PREDICT_CHUNK_ROWS = 2_000_000  #: at most about this many cell-days per batch (memory: rows x features float32, 72 MB)
FEATURES = ("albedo_wsa", "lst", "ndvi", "sm_era5land", "elevation", "sand", "clay", "doy_sin", "doy_cos")
"""Inputs of the retrieval, in the order of :func:`feature_matrix`'s columns."""
_DYNAMIC = FEATURES[:4]
_STATIC = ("elevation", "sand", "clay")


def fill_linear(x: np.ndarray) -> np.ndarray:
    """Fill NaN along axis 0 by linear interpolation between valid values, the nearest one at the ends.

    Parameters
    ----------
    x : numpy.ndarray
        ``(time, ...)`` with NaN where not retrieved.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype; a series with no valid value at all stays NaN.
    """
    flat = x.reshape(len(x), -1)
    out = flat.copy()
    t = np.arange(len(x), dtype=np.float64)
    for j in range(flat.shape[1]):
        ok = np.isfinite(flat[:, j])
        if ok.any() and not ok.all():
            out[:, j] = np.interp(t, t[ok], flat[ok, j])
    return out.reshape(x.shape)


def modis_inputs(cfg, sim: dict) -> dict:
    """MODIS-like gap-filled daily inputs on the domain's cells from ``period.label_start`` (module docstring).

    Parameters
    ----------
    cfg : glass_sm.config.Config
        Uses ``run.seed``, ``period.label_start`` and ``twin.modis_albedo_noise``, ``twin.modis_lst_noise``,
        ``twin.ndvi_noise``.
    sim : dict
        :func:`glass_sm.twin.truth.simulate_truth`.

    Returns
    -------
    dict
        ``dates`` (the label days), ``albedo_wsa`` (dimensionless), ``lst`` (K), ``ndvi`` (dimensionless),
        ``sm_era5land`` (m3 m-3): float32 ``(time, lat, lon)`` on ``grids.out``; ``elevation`` (m), ``sand``,
        ``clay`` (fractions), ``theta_s`` (m3 m-3): ``(lat, lon)``; ``clear`` (bool ``(time, lat, lon)``, the
        days the optical inputs were retrieved).
    """
    tw, g = cfg.twin, sim["grids"]
    rs_, cs_ = g.out_in_sim
    dates = sim["dates"]
    t0 = first_label_day(cfg, dates)
    tl = slice(t0, len(dates))
    st = {k: np.asarray(v)[rs_, cs_] for k, v in sim["static"].items() if np.shape(v) == g.sim.shape}
    w = {k: sim["weather"][k][tl, rs_, cs_] for k in ("t_air", "dtr", "rs", "cloudy")}
    theta, f_veg = sim["theta"][tl, rs_, cs_], sim["f_veg"][tl, rs_, cs_]
    days = dates[tl]
    shape = theta.shape
    rng = component_rng(cfg.run.seed, "modis")
    e_alb = rng.normal(0, tw.modis_albedo_noise, shape).astype(np.float32)
    e_lst = rng.normal(0, tw.modis_lst_noise, shape).astype(np.float32)
    e_ndvi = rng.normal(0, tw.ndvi_noise, shape).astype(np.float32)

    clear = ~w["cloudy"].astype(bool)
    mu0 = cos_sza(days.day_of_year.values[:, None, None], st["lat"][None], MODIS_OVERPASS_H)
    alb = np.clip(albedo_model(theta, st["theta_s"], f_veg, st["sand"]) + e_alb, 0, 1)
    lim = {"theta_wp": st["theta_wp"], "theta_fc": st["theta_fc"]}
    # the daytime cosine is symmetric about its peak: the 10:30 value is the one 2.5 h after 13:00
    lst = lst_model(w["t_air"], w["dtr"], w["rs"], theta, lim, f_veg, 2 * LST_PEAK_H - MODIS_OVERPASS_H) + e_lst
    ndvi = NDVI_SOIL + (NDVI_VEG - NDVI_SOIL) * f_veg + e_ndvi
    out = {"dates": days, "clear": clear}
    for name, val, ok in (("albedo_wsa", alb, clear & (mu0 >= MIN_MU0_ALBEDO)), ("lst", lst, clear),
                          ("ndvi", ndvi, clear)):
        out[name] = fill_linear(np.where(ok, val, np.nan).astype(np.float32))
    ers, ecs = g.era5_in_sim
    era5 = simulate_era5(sim)[tl]
    ri = (np.arange(rs_.start, rs_.stop) - ers.start) // 2
    ci = ((np.arange(cs_.start, cs_.stop) - ecs.start) // 2) % era5.shape[2]   # global: the last column wraps to 0
    out["sm_era5land"] = era5[:, ri][:, :, ci].astype(np.float32)
    out.update({k: st[k].astype(np.float32) for k in _STATIC})
    out["theta_s"] = st["theta_s"].astype(np.float32)
    return out


def station_days(cfg, stations: Iterable[StationSeries], dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Daily station means of the good hours (kept and flagged ``G``), label period only.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        Uses ``period.label_start`` and ``period.label_end``.
    stations : iterable of StationSeries
        :func:`glass_sm.twin.sensors.simulate_stations`.
    dates : pandas.DatetimeIndex
        The label days (:func:`modis_inputs`' ``dates``): ``t`` indexes them.

    Returns
    -------
    pandas.DataFrame
        One row per station-day with at least :data:`MIN_GOOD_HOURS` good hours: ``station``, ``date``, ``t``,
        ``row``, ``col`` (cell of the domain), ``sm_station`` (m3 m-3), ``n_hours``.
    """
    lo = pd.Timestamp(cfg.period.label_start)
    hi = pd.Timestamp(getattr(cfg.period, "label_end", None) or dates[-1])
    rows = []
    for s in stations:
        n = len(s.days)
        good = (s.keep & (s.flags == "G")).reshape(n, 24)
        cnt = good.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(good, s.hourly.reshape(n, 24), 0.0).sum(1) / cnt
        ok = (cnt >= MIN_GOOD_HOURS) & np.asarray(s.days >= lo) & np.asarray(s.days <= hi)
        if not ok.any():
            continue
        d = s.days[ok]
        rows.append(pd.DataFrame({"station": s.station, "date": d, "t": dates.get_indexer(d), "row": s.row,
                                  "col": s.col, "sm_station": mean[ok], "n_hours": cnt[ok]}))
    cols = ["station", "date", "t", "row", "col", "sm_station", "n_hours"]
    if not rows:
        return pd.DataFrame(columns=cols)
    table = pd.concat(rows, ignore_index=True)[cols]
    if (table["t"] < 0).any():
        raise ValueError("station days outside the label days: the stations and the inputs disagree on the period")
    return table


def feature_matrix(inputs: dict, t: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The retrieval's inputs (:data:`FEATURES`) at cell-days ``(t, r, c)``: ``(n, len(FEATURES))`` float32."""
    doy = inputs["dates"].day_of_year.values[t].astype(np.float64)
    ang = 2 * np.pi * doy / 365.25
    cols = [inputs[k][t, r, c] for k in _DYNAMIC] + [inputs[k][r, c] for k in _STATIC]
    cols += [np.sin(ang), np.cos(ang)]
    return np.stack(cols, 1).astype(np.float32)


def training_table(inputs: dict, days: pd.DataFrame) -> pd.DataFrame:
    """The station days (:func:`station_days`) with their cell's inputs, one column per :data:`FEATURES`."""
    t, r, c = (days[k].to_numpy(int) for k in ("t", "row", "col"))
    X = feature_matrix(inputs, t, r, c) if len(days) else np.zeros((0, len(FEATURES)), np.float32)
    return pd.concat([days.reset_index(drop=True), pd.DataFrame(X, columns=list(FEATURES))], axis=1)


def _params(cfg) -> dict:
    """XGBoost parameters of the retrieval (module docstring)."""
    seed = int(component_rng(cfg.run.seed, "label_retrieval").integers(2**31 - 1))
    return {"objective": "reg:squarederror", "tree_method": "hist", "max_depth": int(cfg.twin.retrieval_max_depth),
            "eta": LEARNING_RATE, "subsample": SUBSAMPLE, "nthread": NTHREAD, "seed": seed, "verbosity": 0}


def fit_retrieval(cfg, table: pd.DataFrame) -> xgboost.Booster:
    """Fit the retrieval on the station days: inputs :data:`FEATURES`, target ``sm_station`` (m3 m-3).

    Parameters
    ----------
    cfg : glass_sm.config.Config
        Uses ``run.seed``, ``twin.retrieval_rounds`` and ``twin.retrieval_max_depth``.
    table : pandas.DataFrame
        :func:`training_table`.

    Raises
    ------
    ValueError
        No station day in the label period (``twin.n_stations``, the stations' periods or ``period.label_start``).
    """
    if len(table) == 0:
        raise ValueError("twin.labels 'retrieval': no station day from period.label_start on to train the retrieval "
                         "on (more twin.n_stations, a later period.end, or twin.labels: truth_plus_noise)")
    d = xgboost.DMatrix(table[list(FEATURES)].to_numpy(np.float32), label=table["sm_station"].to_numpy(np.float32),
                        feature_names=list(FEATURES), nthread=NTHREAD)
    return xgboost.train(_params(cfg), d, num_boost_round=int(cfg.twin.retrieval_rounds))


@dataclass
class RetrievalLabels:
    """The retrieval's labels and how they were made.

    Attributes
    ----------
    sm : numpy.ndarray
        ``(time, lat, lon)`` float32 labels on ``grids.out`` for ``dates``, m3 m-3 (NaN on cells without soil).
    dates : pandas.DatetimeIndex
        ``period.label_start`` .. the period's end.
    table : pandas.DataFrame
        The training table (:func:`training_table`) with the fitted value ``sm_fit``.
    info : dict
        What :func:`write_retrieval_info` writes.
    """

    sm: np.ndarray
    dates: pd.DatetimeIndex
    table: pd.DataFrame
    info: dict = field(default_factory=dict)


def _fit_stats(y: np.ndarray, f: np.ndarray) -> dict:
    """RMSE, bias (m3 m-3), R and R² of the fit ``f`` against the station values ``y``."""
    e = f - y
    r = float(np.corrcoef(y, f)[0, 1]) if len(y) > 2 else float("nan")
    return {"rmse": round(float(np.sqrt(np.mean(e**2))), 6), "bias": round(float(e.mean()), 6),
            "r": round(r, 6), "r2": round(1 - float(np.sum(e**2) / np.sum((y - y.mean()) ** 2)), 6)}


def retrieval_labels(cfg, sim: dict, stations: Iterable[StationSeries] | None = None) -> RetrievalLabels:
    """GLASS-MODIS-like labels on the domain's cells: the XGBoost retrieval trained on station days.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        Uses ``run.seed``, ``period`` and ``twin`` (the MODIS-like noise, the retrieval's size).
    sim : dict
        :func:`glass_sm.twin.truth.simulate_truth` (its truth reaches the retrieval only through the simulated
        sensors and the stations).
    stations : iterable of StationSeries, optional
        The training stations; default :func:`glass_sm.twin.sensors.simulate_stations` (the same series as the
        ISMN files: their random stream is their own).

    Returns
    -------
    RetrievalLabels
    """
    inputs = modis_inputs(cfg, sim)
    dates = inputs["dates"]
    days = station_days(cfg, simulate_stations(cfg, sim) if stations is None else stations, dates)
    table = training_table(inputs, days)
    booster = fit_retrieval(cfg, table)
    booster.set_param({"nthread": PREDICT_NTHREAD})     # the trees are fitted: prediction only from here
    X = table[list(FEATURES)].to_numpy(np.float32)
    table["sm_fit"] = booster.inplace_predict(X) if len(X) else np.zeros(0, np.float32)
    g = sim["grids"]
    rr, cc = np.nonzero(soil_mask(sim["static"])[g.out_in_sim])     # cells with soil, row-major
    ny, nx = inputs["theta_s"].shape
    sm = np.full((len(dates), ny, nx), np.nan, np.float32)
    step = max(1, min(PREDICT_CHUNK_DAYS, PREDICT_CHUNK_ROWS // max(len(rr), 1)))
    for a in range(0, len(dates) if len(rr) else 0, step):
        b = min(a + step, len(dates))
        t = np.repeat(np.arange(a, b), len(rr))
        r, c = np.tile(rr, b - a), np.tile(cc, b - a)
        sm[a:b, rr, cc] = booster.inplace_predict(feature_matrix(inputs, t, r, c)).reshape(b - a, len(rr))
    sm = np.clip(sm, 0.0, inputs["theta_s"][None]).astype(np.float32)
    y, f = table["sm_station"].to_numpy(np.float64), table["sm_fit"].to_numpy(np.float64)
    per = table.groupby("station", sort=True).size()
    info = {
        "mode": "retrieval", "model": "XGBoost (Zhang et al. 2023, ESSD 15, 2055: GLASS-MODIS SM)",
        "label_days": [str(dates[0].date()), str(dates[-1].date())] if len(dates) else [],
        "training_days": [str(table["date"].min().date()), str(table["date"].max().date())],
        "stations": {k: int(v) for k, v in per.items()}, "n_stations": int(len(per)),
        "station_days": int(len(table)), "min_good_hours": MIN_GOOD_HOURS, "features": list(FEATURES),
        "hyperparameters": {"num_boost_round": int(cfg.twin.retrieval_rounds),
                            **{k: v for k, v in _params(cfg).items() if k != "verbosity"}},
        "modis_noise": {"albedo": cfg.twin.modis_albedo_noise, "lst_K": cfg.twin.modis_lst_noise,
                        "ndvi": cfg.twin.ndvi_noise},
        "overpass_local_solar_h": MODIS_OVERPASS_H, "clip_m3m3": "[0, theta_s]",
        "training_fit_vs_stations": _fit_stats(y, f),
        "clear_fraction": round(float(inputs["clear"].mean()), 6),
    }
    return RetrievalLabels(sm, dates, table, info)


def retrieval_info_path(cfg) -> Path:
    """``label_retrieval.json`` next to ``data.truth_path``."""
    return Path(cfg.data.truth_path).parent / "label_retrieval.json"


def write_retrieval_info(cfg, labels: RetrievalLabels) -> Path:
    """Write :attr:`RetrievalLabels.info` to :func:`retrieval_info_path` (sorted keys: reproducible bytes)."""
    path = retrieval_info_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(labels.info, indent=1, sort_keys=True) + "\n")
    return path
