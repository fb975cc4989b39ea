"""The look shared by every figure: rcParams, colours, unit labels, panel letters, and how a figure is saved.

Conventions: soil moisture in m3 m-3 (labels ``m$^3$ m$^{-3}$``); sequential colour-blind-safe colormaps
(``cividis`` for soil moisture, ``viridis`` for densities and other fields); diverging ``RdBu`` with symmetric
limits for biases, trends and differences; every axis and colorbar carries its unit; every title and caption says
whether the data are the synthetic twin or real data. Maps (cartopy, offline) are in :mod:`glass_sm.figures.maps`;
model names and colours come from the model classes (:func:`glass_sm.models.display_name`).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt  # noqa: E402

from glass_sm.paths import atomic_write  # noqa: E402

__all__ = ["SM_CMAP", "SM_UNITS", "TREND_UNITS", "TWIN_LABEL", "PRODUCT", "PRODUCT_COLORS", "REF_LABELS", "style",
           "savefig", "data_label", "fmt_lat", "fmt_lon", "sm_units", "unit_label", "title_suffix",
           "panel_letter"]

SM_CMAP = "cividis"  #: sequential, colour-blind safe
SM_UNITS = "m$^3$ m$^{-3}$"  #: soil moisture (volumetric), as an axis label
TREND_UNITS = "m$^3$ m$^{-3}$ decade$^{-1}$"
TWIN_LABEL = "synthetic twin (not the paper's data)"
PRODUCT = "GLASS-AVHRR"
"""Name of this run's product in every table and figure (the names of stage 05's tables)."""
PRODUCT_COLORS = {"GLASS-AVHRR": "#0072B2", "ERA5-Land": "#E69F00", "ESA CCI": "#009E73", "GLASS-MODIS": "#CC79A7",
                  "twin truth": "#000000", "in situ": "#D55E00"}
"""Okabe-Ito colours (colour-blind safe), one per data set, used in every line and box plot."""
REF_LABELS = {"label": "GLASS-MODIS label", "truth": "twin truth"}
"""What the ``reference`` column of the model tables means (``label``: GLASS-MODIS labels, ``truth``: the twin's)."""


def style() -> None:
    """Publication style shared by every figure (font sizes in points, no top/right spines)."""
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


def savefig(fig, folder, name: str, formats=("png", "pdf"), dpi: int = 300) -> list[Path]:
    """Save ``fig`` as ``<folder>/<name>.<fmt>`` for each format, each written atomically.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    folder : path-like
        Created if needed.
    name : str
        File stem, e.g. ``fig04_model_comparison``.
    formats : sequence of str
        matplotlib formats (``png``, ``pdf`` ...).
    dpi : int
        Resolution of raster formats, dots per inch.

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of ``formats``.
    """
    out = []
    for fmt in formats:
        path = Path(folder) / f"{name}.{fmt}"
        with atomic_write(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=fmt)
        out.append(path)
    return out


def data_label(is_twin: bool) -> str:
    """What the figures show: the synthetic twin (never the paper's results) or real data."""
    return TWIN_LABEL if is_twin else "real data"


def fmt_lat(v: float) -> str:
    """Latitude in degrees as ``'40.00° N'``."""
    return f"{abs(v):.2f}° {'N' if v >= 0 else 'S'}"


def fmt_lon(v: float) -> str:
    """Longitude in degrees as ``'99.60° W'``."""
    return f"{abs(v):.2f}° {'E' if v >= 0 else 'W'}"


def sm_units(units: str | None) -> str:
    """The axis-label form of a units attribute (``m3 m-3`` -> ``m$^3$ m$^{-3}$``; others unchanged)."""
    return SM_UNITS if units in (None, "", "m3 m-3", "m**3 m**-3") else units


def unit_label(units: str | None) -> str:
    """``'(1)'`` for a dimensionless quantity, else ``'(<units>)'`` as in :func:`sm_units`."""
    if units in (None, "", "1", "dimensionless"):
        return "(1)"
    return f"({sm_units(units)})"


def title_suffix(label: str) -> str:
    """``' — <label>'`` (the data label appended to a figure title), or nothing."""
    return f" — {label}" if label else ""


def panel_letter(ax, i: int) -> None:
    """Prefix the panel's title with (a), (b) ...; a panel without a title gets the letter alone, on the left."""
    letter = f"({chr(97 + i)})"
    title = ax.get_title()
    if title:
        ax.set_title(f"{letter} {title}", fontsize=ax.title.get_fontsize())
    else:
        ax.set_title(letter, loc="left", fontsize=8.5)

