"""The 0.05 deg regional zoom: the same synthetic world, sampled finely over a small box, produced with the run's
checkpoint.

The paper trains its AtLSTM once and applies it everywhere (its regional-detail figure shows the native 0.05 deg
product). The twin's ``earth`` world (:mod:`glass_sm.twin`) is defined at every position and day by the seed, so a
coarse global run and a 0.05 deg run over a small box see the same terrain, climate and weather; each samples it at
its own cells (a coarse cell takes the fields at its centre, its static fields as block means of its static grid).
:func:`zoom_config` derives the zoom's run from the run's parameters (section ``zoom``), :func:`make_zoom`
generates its twin, builds its cube and produces it with the run's checkpoint, :func:`aggregate_to_grid` averages
a 0.05 deg field onto the run's coarse cells, and :func:`zoom_agreement` says how the two samplings of the world
agree cell by cell.

What differs between the two is physical, not a bug: a coarse cell's weather is the weather at its centre, while
the mean of its 0.05 deg cells averages storms (tens of km) and soils over the cell, and the soil bucket is
non-linear. The agreement table quantifies that sub-cell variability; the tests bound it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from glass_sm.config import ConfigError, load, to_dict
from glass_sm.grid import RES
from glass_sm.paths import RunPaths

__all__ = ["ZOOM_RUN", "zoom_config", "ZoomResult", "make_zoom", "aggregate_to_grid", "zoom_agreement"]

ZOOM_RUN = "zoom"  #: the zoom's run name: its files go to ``results/<run>/zoom/``

#: twin parameters of the zoom that differ from the run's, and why
ZOOM_TWIN = {
    "static_resolution": 0.01,       # the demo tile's DEM/texture GeoTIFF grid (5 x 5 per 0.05 deg cell)
    "cci_resolution": 0.25,          # ESA CCI's own grid
    "modis_pixel_m": 2000.0,         # as the regional tile: ~1 km sinusoidal pixels, halved in count for speed
    "labels": "truth_plus_noise",    # the zoom is only produced, never trained on: its labels are not used, and a
                                     # retrieval would need station days inside the box
}


def zoom_config(cfg):
    """The zoom's own run configuration, or None when ``zoom.enabled`` is false.

    Every section is the run's, except: ``run`` (name :data:`ZOOM_RUN` inside the run's results folder), ``domain``
    (the zoom box at 0.05 deg), ``period`` (``zoom.start`` .. ``zoom.end``), ``data`` (the twin's default folders of
    the zoom run), ``twin`` (:data:`ZOOM_TWIN` and ``zoom.n_stations``), years outside the zoom's period dropped
    from ``samples.test_years`` and ``production.years``, and ``zoom`` itself (disabled).

    Raises
    ------
    glass_sm.config.ConfigError
        The run is not a twin run, or its twin is not the continuous ``earth`` world (the ``gradient`` world is
        defined relative to its own domain, so a zoom of it would be another world).
    """
    z = cfg.zoom
    if not z.enabled:
        return None
    if not (cfg.is_twin and cfg.twin.enabled):
        raise ConfigError("zoom.enabled: the zoom samples the synthetic twin at 0.05 deg; real data has no zoom run "
                          "(point domain at the region instead)")
    if cfg.twin.climate != "earth":
        raise ConfigError(f"zoom.enabled: needs twin.climate 'earth' (the world defined at every position), got "
                          f"{cfg.twin.climate!r}: the 'gradient' world is laid out relative to its own domain")
    tree = to_dict(cfg)
    tree.pop("source_file", None)
    tree["run"].update(name=ZOOM_RUN, results_dir=str(cfg.results),
                       description=f"0.05 deg zoom of run '{cfg.run.name}'")
    tree["domain"] = {"lat_min": z.lat_min, "lat_max": z.lat_max, "lon_min": z.lon_min, "lon_max": z.lon_max,
                      "resolution": RES}
    tree["period"].update(start=z.start.isoformat(), end=z.end.isoformat())
    tree["data"] = {"source": "twin"}
    tree["twin"].update(ZOOM_TWIN, n_stations=z.n_stations)
    years = range(z.start.year, z.end.year + 1)
    tree["samples"]["test_years"] = [y for y in tree["samples"]["test_years"] if y in years]
    if tree["production"].get("years"):
        tree["production"]["years"] = [y for y in tree["production"]["years"] if y in years]
    tree["zoom"] = {"enabled": False}
    where = cfg.source_file or "parameters"
    try:
        return load(None, overrides=tree)
    except ConfigError as e:
        raise ConfigError(f"{where}: zoom: the derived 0.05 deg run is invalid: {e}") from None


@dataclass
class ZoomResult:
    """What :func:`make_zoom` made: the zoom's config, its folders, the twin's files, the cube and the product."""

    cfg: object
    paths: RunPaths
    twin: dict
    cube: Path
    product: list[Path]


def make_zoom(cfg, checkpoint_path, progress: bool = True, client=None) -> ZoomResult | None:
    """Generate the zoom's twin, build its cube and produce it with ``checkpoint_path``; None when disabled.

    Each step skips what is already done (the twin by its manifest hash, the cube when its store exists, the
    production year by year by checkpoint and cube fingerprints), so a re-run of stage 04 costs seconds.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        The run (its ``zoom`` section).
    checkpoint_path : path-like
        The run's production checkpoint (trained on the run's samples, never on the zoom).
    progress : bool
        Progress bars.
    client : optional
        Passed to :func:`glass_sm.production.run_production`.
    """
    from glass_sm.data.cube import build_cube
    from glass_sm.production import run_production
    from glass_sm.twin import generate_twin

    zcfg = zoom_config(cfg)
    if zcfg is None:
        return None
    paths = RunPaths.from_config(zcfg).ensure()
    twin = generate_twin(zcfg, progress=progress)
    cube = build_cube(zcfg, progress=progress, overwrite=bool(twin["regenerated"]))
    files = run_production(zcfg, checkpoint_path=checkpoint_path, progress=progress, client=client)
    return ZoomResult(zcfg, paths, twin, Path(cube), list(files))


def aggregate_to_grid(fine: xr.DataArray, res: float) -> xr.DataArray:
    """Mean of the finite values of a (..., lat, lon) field over the cells of the global grid of spacing ``res``.

    Each fine cell belongs to the coarse cell holding its centre (rows from 90 N, columns from 180 W, as
    :class:`glass_sm.grid.Domain`). NaN fine cells (sea, gaps) are left out of the mean; a coarse cell with no
    finite fine value is NaN.

    Parameters
    ----------
    fine : xarray.DataArray
        Dimensions ``(..., lat, lon)``, degrees; any units (kept).
    res : float
        Coarse cell size, degrees.

    Returns
    -------
    xarray.DataArray
        ``(..., lat, lon)`` on the coarse cells the fine field touches, cell-centre coordinates, descending lat.
    """
    lat = np.asarray(fine["lat"].values, float)
    lon = np.asarray(fine["lon"].values, float)
    rows = np.floor((90.0 - lat) / res + 1e-9).astype(int)
    cols = np.floor((lon + 180.0) / res + 1e-9).astype(int)
    ur, ri = np.unique(rows, return_inverse=True)
    uc, ci = np.unique(cols, return_inverse=True)
    a = np.asarray(fine.transpose(..., "lat", "lon").values, np.float64)
    lead = a.shape[:-2]
    ok = np.isfinite(a)
    s = np.zeros(lead + (len(ur), len(uc)))
    n = np.zeros(lead + (len(ur), len(uc)))
    flat_r = np.broadcast_to(ri[:, None], a.shape[-2:])
    flat_c = np.broadcast_to(ci[None, :], a.shape[-2:])
    lin = (flat_r * len(uc) + flat_c).ravel()
    a2 = np.where(ok, a, 0.0).reshape(lead + (-1,))
    n2 = ok.reshape(lead + (-1,)).astype(float)
    for k in np.ndindex(*lead) if lead else [()]:
        s[k] = np.bincount(lin, weights=a2[k], minlength=len(ur) * len(uc)).reshape(len(ur), len(uc))
        n[k] = np.bincount(lin, weights=n2[k], minlength=len(ur) * len(uc)).reshape(len(ur), len(uc))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    coords = {d: fine[d] for d in fine.transpose(..., "lat", "lon").dims[:-2]}
    coords["lat"] = np.round(90.0 - (ur + 0.5) * res, 6)
    coords["lon"] = np.round(-180.0 + (uc + 0.5) * res, 6)
    out = xr.DataArray(mean.astype(np.float32), dims=fine.transpose(..., "lat", "lon").dims, coords=coords,
                       name=fine.name, attrs=dict(fine.attrs))
    out.attrs["cell_methods"] = f"area: mean (of the {RES:g} deg cells with a value in each {res:g} deg cell)"
    return out


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r; NaN when either series is constant."""
    if np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def zoom_agreement(fine: xr.DataArray, coarse: xr.DataArray, min_fraction: float = 0.5) -> pd.DataFrame:
    """Per coarse cell, the zoom aggregated onto it (:func:`aggregate_to_grid`) against the coarse run's value.

    Parameters
    ----------
    fine : xarray.DataArray
        ``(time, lat, lon)`` on the 0.05 deg zoom grid, m3 m-3.
    coarse : xarray.DataArray
        ``(time, lat, lon)`` on the run's coarse grid (regular; its spacing is read from ``lat``), m3 m-3.
    min_fraction : float
        Coarse cells less than this fraction covered by fine cells with values (time-mean count) are left out:
        a partly covered coarse cell is not the mean of its area.

    Returns
    -------
    pandas.DataFrame
        One row per coarse cell: ``lat``, ``lon``, ``coverage`` (fraction of its fine cells with values),
        ``mean_fine``, ``mean_coarse`` (time means, m3 m-3), ``bias`` (fine - coarse), ``rmse``, ``r`` (daily),
        ``sd_within`` (time-mean spatial sd of the fine cells inside it: the sub-cell variability), ``n_days``.
    """
    if coarse.sizes["lat"] < 2 and coarse.sizes["lon"] < 2:
        raise ValueError("zoom_agreement: the coarse field needs two cells along lat or lon to know its spacing")
    res = float(abs(np.diff(coarse["lon"].values[:2])[0]) if coarse.sizes["lon"] > 1
                else abs(np.diff(coarse["lat"].values[:2])[0]))
    times = np.intersect1d(fine["time"].values, coarse["time"].values)
    if not len(times):
        raise ValueError("zoom_agreement: the zoom and the coarse field share no day")
    f = fine.sel(time=times).transpose("time", "lat", "lon")
    agg = aggregate_to_grid(f, res)
    sq = aggregate_to_grid(f ** 2, res)
    # fine cells with a value per coarse cell and day, over all the fine cells a whole coarse cell holds
    valid = aggregate_to_grid(xr.where(np.isfinite(f), 1.0, 0.0).assign_coords(time=f["time"]), res)
    n_per_cell = round(res / RES) ** 2
    lat_f = np.asarray(f["lat"].values, float)
    lon_f = np.asarray(f["lon"].values, float)
    rows = []
    for la in agg["lat"].values:
        for lo in agg["lon"].values:
            c = coarse.sel(lat=la, lon=lo, method="nearest")
            if abs(float(c["lat"]) - la) > res / 4 or abs(float(c["lon"]) - lo) > res / 4:
                continue                                   # the coarse run does not cover this cell
            c = c.sel(time=times).values
            inside = (np.abs(lat_f - la) < res / 2).sum() * (np.abs(lon_f - lo) < res / 2).sum()
            cover = float(np.mean(valid.sel(lat=la, lon=lo).values)) * inside / n_per_cell
            a = agg.sel(lat=la, lon=lo).values
            ok = np.isfinite(a) & np.isfinite(c)
            if cover < min_fraction or ok.sum() < 3:
                continue
            var = sq.sel(lat=la, lon=lo).values - a ** 2
            rows.append({"lat": float(la), "lon": float(lo), "coverage": cover,
                         "mean_fine": float(np.mean(a[ok])), "mean_coarse": float(np.mean(c[ok])),
                         "bias": float(np.mean(a[ok] - c[ok])), "rmse": float(np.sqrt(np.mean((a[ok] - c[ok]) ** 2))),
                         "r": _corr(a[ok], c[ok]),
                         "sd_within": float(np.sqrt(np.nanmean(np.maximum(var, 0)))), "n_days": int(ok.sum())})
    return pd.DataFrame(rows, columns=["lat", "lon", "coverage", "mean_fine", "mean_coarse", "bias", "rmse", "r",
                                       "sd_within", "n_days"])
