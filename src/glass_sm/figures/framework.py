"""Figure 1 of the paper: the framework flowchart, drawn by code (matplotlib patches and arrows), needing no data.

Also importable as :func:`glass_sm.figures.paper.fig_framework`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from glass_sm.models import MODEL_REGISTRY, display_name

__all__ = ["fig_framework"]


def fig_framework(window: int | None = None, models: Sequence[str] | None = None, period: str = "1982–2021",
                  label: str = ""):
    """Flowchart of the GLASS-AVHRR framework (inputs → preprocessing → AtLSTM → product → validation).

    Drawn with matplotlib patches; needs no data. ``window`` (days), ``models`` and ``period`` only fill in text.
    """
    models = list(models or MODEL_REGISTRY)
    fig = plt.figure(figsize=(10.0, 5.0))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 50)
    ax.axis("off")
    colors = {"in": "#DCE9F5", "pre": "#FCE9D2", "model": "#D7EFE6", "prod": "#F3DDEA", "val": "#EDEDED"}

    def box(x, y, w, h, text, kind, bold=False, fs=7.5):
        p = FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.25,rounding_size=0.8", fc=colors[kind], ec="0.35",
                           lw=0.8)
        ax.add_patch(p)
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fs,
                fontweight="bold" if bold else "normal", wrap=False, linespacing=1.15)
        return (x, y, w, h)

    def arrow(p, q, style="-|>", color="0.25", rad=0.0, lw=1.0):
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle=style, mutation_scale=10, color=color, lw=lw,
                                     connectionstyle=f"arc3,rad={rad}", shrinkA=2, shrinkB=2))

    # column headers
    heads = [(10, "Inputs (stage 01)"), (31, "Preprocessing (01–02)"), (52.5, "Model (02–03)"),
             (73.5, "Product (04)"), (91, "Validation (05)")]
    for x, t in heads:
        ax.text(x, 47.5, t, ha="center", va="center", fontsize=9, fontweight="bold")
    # inputs
    inputs = [("AVHRR albedo\nGLASS02B05 (BSA, WSA)", "in"), ("AVHRR LST\nGLASS08B31", "in"),
              ("ERA5-Land SM\nswvl1, 0.1°", "in"), ("Terrain (DEM)\nsoil texture", "in"),
              ("GLASS-MODIS SM\nlabels, 2000–", "in")]
    ys = [37.5, 29.5, 21.5, 13.5, 3.5]
    in_boxes = [box(2, y, 16, 6, t, k) for (t, k), y in zip(inputs, ys)]
    # preprocessing
    pre = ["read + QC, scale factors\nCF units", "regrid to 0.05°\ndaily means",
           "gap-fill albedo/LST\nin time (flags kept)",
           f"windows of L{'' if window is None else f' = {window}'} days\nnormalise (train only)"]
    pys = [37.5, 29.5, 21.5, 13.5]
    pre_boxes = [box(23, y, 16, 6, t, "pre") for t, y in zip(pre, pys)]
    for a, b in zip(pre_boxes[:-1], pre_boxes[1:]):
        arrow((a[0] + a[2] / 2, a[1]), (b[0] + b[2] / 2, b[1] + b[3]))
    # inputs join a bus into the reader
    bus = 20.5
    for b in in_boxes[:4]:
        ax.plot([b[0] + b[2] + 0.25, bus], [b[1] + b[3] / 2] * 2, color="0.25", lw=1.0)
    ax.plot([bus, bus], [in_boxes[3][1] + 3, in_boxes[0][1] + 3], color="0.25", lw=1.0)
    arrow((bus, pre_boxes[0][1] + 3), (23, pre_boxes[0][1] + 3))
    # model: AtLSTM internals
    mx, mw = 44, 17
    box(mx, 29, mw, 14, "", "model")
    ax.text(mx + mw / 2, 41.3, "AtLSTM", ha="center", va="center", fontsize=8.5, fontweight="bold")
    cells = [mx + 1.2 + i * 3.9 for i in range(4)]
    for i, cx in enumerate(cells):
        ax.add_patch(Rectangle((cx, 34.5), 2.8, 2.6, fc="white", ec="0.3", lw=0.6))
        ax.text(cx + 1.4, 35.8, "LSTM", ha="center", va="center", fontsize=5.2)
        ax.text(cx + 1.4, 33.3, ["t−L+1", "…", "t−1", "t"][i], ha="center", va="center", fontsize=5.5)
        if i:
            arrow((cells[i - 1] + 2.8, 35.8), (cx, 35.8), lw=0.6)
        arrow((cx + 1.4, 37.1), (mx + mw / 2, 38.4), lw=0.5, style="-")
    ax.text(mx + mw / 2, 39.3, "attention weights α$_t$ → context", ha="center", va="center", fontsize=6.2)
    ax.text(mx + mw / 2, 30.8, "dense → SM$_t$ (m$^3$ m$^{-3}$)", ha="center", va="center", fontsize=6.5)
    names = [display_name(m) for m in models]
    cmp_box = box(mx, 15.5, mw, 9, "model comparison on\nidentical samples:\n" + ", ".join(names[:3]) + ",\n"
                  + ", ".join(names[3:]), "model", fs=6.8)
    box(mx, 3.5, mw, 8, "sequence length L,\nattention by lag,\nfeature importance", "model", fs=6.8)
    arrow((39.2, 16.5), (mx, 20), rad=0.0)
    arrow((mx + mw / 2, cmp_box[1] + cmp_box[3] + 0.3), (mx + mw / 2, 29), lw=1.0)
    ax.text(mx + mw / 2 + 0.6, 26.9, "selected", ha="left", va="center", fontsize=6.3, style="italic")
    arrow((mx + mw + 0.25, 33), (mx + mw + 2.2, 33), style="-", lw=0.8)
    ax.plot([mx + mw + 2.2, mx + mw + 2.2], [33, 7.5], color="0.25", lw=0.8)
    arrow((mx + mw + 2.2, 7.5), (mx + mw + 0.25, 7.5), lw=0.8)
    # labels feed the training
    ax.add_patch(FancyArrowPatch((18.2, 6.5), (mx - 2.0, 15.8), arrowstyle="-", color="#CC79A7", lw=1.0,
                                 connectionstyle="angle,angleA=0,angleB=90,rad=0", shrinkA=2, shrinkB=0))
    arrow((mx - 2.0, 15.8), (mx, 17.6), color="#CC79A7")
    ax.text(30.5, 8.3, "training labels (2000–)", ha="center", va="center", fontsize=6.5, color="#A0507F")
    # product
    box(66, 29, 15, 14, f"seamless daily\n0.05° surface SM\n{period}\n\nCF-NetCDF per year\n+ annual means\n"
        "(tiled inference, Dask)", "prod", fs=7.0)
    arrow((mx + mw + 0.25, 38), (66, 38), lw=1.3)
    # validation
    vals = ["ISMN in situ\nR, ubRMSE, bias", "vs ERA5-Land,\nESA CCI, GLASS-MODIS",
            "January / July maps\nspatial detail", "time series, trends,\nplatform breaks"]
    vys = [37.5, 29.5, 21.5, 13.5]
    vboxes = [box(84, y, 14, 6, t, "val", fs=6.8) for t, y in zip(vals, vys)]
    vbus = 82.7
    ax.plot([81.25, vbus], [36, 36], color="0.25", lw=1.0)
    ax.plot([vbus, vbus], [vboxes[-1][1] + 3, vboxes[0][1] + 3], color="0.25", lw=1.0)
    for b in vboxes:
        arrow((vbus, b[1] + b[3] / 2), (84, b[1] + b[3] / 2), lw=0.8)
    if label:
        ax.text(99, 1.0, f"Figures of this run: {label}", ha="right", va="bottom", fontsize=6.5, style="italic",
                color="0.3")
    return fig
