"""Bias by region: the Köppen main group and the continent of each pixel or station, and the bias of several
estimates grouped by them (the paper's wet-bias story: ERA5-Land is too wet mostly in drylands, on every
continent; the product corrects it).

Regions come from the twin's Earth layout, :mod:`glass_sm.twin.earth`, evaluated at the cell centres of the
product grid (:func:`earth_regions`). On the twin these are the zones its climate was built from; on real data
they are the layout's approximate zones (a coarse Köppen-like layout and Natural Earth's continents), not a
Köppen classification of observed climate. The grouping itself takes any ``(lat, lon) -> labels`` function, so it
is tested on closed-form toy regions.

Units: soil moisture and biases in m3 m-3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from glass_sm.evaluation import aggregate

__all__ = ["REGION_KINDS", "earth_regions", "pixel_bias_by_region", "station_bias_by_region"]

REGION_KINDS = {"climate_zone": "Köppen main group", "continent": "continent"}
"""The region kinds (``class_kind`` of stage 05's ``wet_bias`` table) and how the prose names them."""

RegionFn = Callable[[np.ndarray, np.ndarray], Mapping[str, np.ndarray]]


def earth_regions(lat, lon, res: float | None = None) -> dict[str, np.ndarray]:
    """Köppen main group and continent at each point, from the twin's Earth layout.

    Parameters
    ----------
    lat, lon : array_like
        Points (cell centres), degrees north and east, the same shape.
    res : float, optional
        The cells' size, degrees: a land cell of that size whose centre is at sea then keeps its continent
        (:func:`glass_sm.twin.earth.continent`); without it a coastal cell may come out unassigned.

    Returns
    -------
    dict
        ``{'climate_zone': ..., 'continent': ...}``, object arrays of str the shape of ``lat``:
        :func:`glass_sm.twin.earth.climate_zone` (``'A tropical'``, ``'B arid'``, ``'C temperate'``, ``'D cold'``,
        ``'E polar'``) and :func:`glass_sm.twin.earth.continent` (Natural Earth admin-0 ``CONTINENT``, ``''`` at
        sea), pure functions of position.
    """
    from glass_sm.twin import earth  # here, not at the top: Natural Earth is loaded only when regions are asked for

    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    return {"climate_zone": np.asarray(earth.climate_zone(lat, lon), dtype=object).reshape(lat.shape),
            "continent": np.asarray(earth.continent(lat, lon, res=res), dtype=object).reshape(lat.shape)}


def _labels(values) -> np.ndarray:
    """Region labels as str, an empty or missing label as :data:`glass_sm.evaluation.aggregate.UNASSIGNED`."""
    lab = np.asarray(values, dtype=object).ravel()
    bad = np.array([v is None or v == "" or (isinstance(v, float) and not np.isfinite(v)) for v in lab], bool)
    return np.where(bad, aggregate.UNASSIGNED, lab).astype(str)


def pixel_bias_by_region(estimates: Mapping[str, xr.DataArray], truth: xr.DataArray, land: xr.DataArray,
                         regions: RegionFn = earth_regions) -> pd.DataFrame:
    """Each estimate against the truth per region, over the land pixel-days with both, area-weighted.

    Parameters
    ----------
    estimates : mapping name -> DataArray
        Daily ``(time, lat, lon)`` soil moisture (m3 m-3) on the truth's grid, e.g. ERA5-Land and the product.
    truth : DataArray
        The twin's true soil moisture, same grid (NaN where undefined: sea, ice).
    land : DataArray
        Bool ``(lat, lon)``: the cells scored (the cube's land mask).
    regions : callable
        ``(lat, lon) -> {kind: labels}`` at the land cells' centres (default :func:`earth_regions`); every kind of
        :data:`REGION_KINDS` is used.

    Returns
    -------
    pandas.DataFrame
        :func:`glass_sm.evaluation.aggregate.bias_by_region`: ``class_kind, class, estimate, n`` (pixel-days),
        ``n_pixels, bias_mean, bias_median, abs_bias_mean`` (m3 m-3).
    """
    sums = {name: tuple(x.load() for x in aggregate.bias_sums(da, truth, land)) for name, da in estimates.items()}
    grid = next(iter(sums.values()))[0]
    la, lo = np.meshgrid(grid["lat"].values, grid["lon"].values, indexing="ij")
    keep = np.asarray(land.transpose("lat", "lon"), dtype=bool)
    where = regions(la[keep], lo[keep])  # the land cells only: a sea cell carries no pixel-day
    labels = {}
    for kind in REGION_KINDS:
        full = np.full(la.shape, "", dtype=object)
        full[keep] = _labels(where[kind])
        labels[kind] = xr.DataArray(full, dims=("lat", "lon"), coords={"lat": grid["lat"], "lon": grid["lon"]})
    return aggregate.bias_by_region(sums, labels)


def station_bias_by_region(sites: pd.DataFrame, bias_columns: Mapping[str, str],
                           regions: RegionFn = earth_regions) -> pd.DataFrame:
    """The sensors' mean bias of each estimate per region, a sensor in the region of its product pixel.

    Parameters
    ----------
    sites : pandas.DataFrame
        Stage 05's ``validation_sites`` rows (``product, sensor_id, lat, lon, pixel_lat, pixel_lon, bias, status``);
        the scored rows (``status == 'ok'``) of the products in ``bias_columns`` are used.
    bias_columns : mapping product -> column name
        The estimates to group, e.g. ``{'GLASS-AVHRR': 'bias_product', 'ERA5-Land': 'bias_era5'}``.
    regions : callable
        ``(lat, lon) -> {kind: labels}`` at the pixels' centres (the sensor's own position when its pixel is not
        known); default :func:`earth_regions`.

    Returns
    -------
    pandas.DataFrame
        :func:`glass_sm.evaluation.aggregate.bias_by_class` per kind of :data:`REGION_KINDS` (no ``all`` row): ``n``
        counts sensors; empty when no sensor is scored.
    """
    ok = sites[(sites["status"] == "ok") & sites["product"].isin(list(bias_columns))]
    st = ok.pivot_table(index="sensor_id", columns="product", values="bias", aggfunc="mean").rename(
        columns=dict(bias_columns))
    if not len(st):
        return pd.DataFrame(columns=["class_kind", "class", "estimate", "n", "bias_mean", "bias_median",
                                     "abs_bias_mean"])
    where = ok.drop_duplicates("sensor_id").set_index("sensor_id").loc[st.index]
    plat = where["pixel_lat"].fillna(where["lat"]).to_numpy(float)
    plon = where["pixel_lon"].fillna(where["lon"]).to_numpy(float)
    labels = regions(plat, plon)
    cols = {est: col for est, col in bias_columns.items() if col in st}
    parts = []
    for kind in REGION_KINDS:
        st[kind] = _labels(labels[kind])
        parts.append(aggregate.bias_by_class(st.reset_index(), kind, cols, total=False))
    return pd.concat(parts, ignore_index=True)
