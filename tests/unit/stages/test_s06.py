"""glass_sm.stages.s06_figures: skipping with the stage to run, saving and indexing, the numbers the captions quote,
and the data figures and paper tables of a toy run (toy cube, truth and product, offline)."""

import socket
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from glass_sm import stages  # noqa: E402
from glass_sm.contract import read_table  # noqa: E402
from glass_sm.figures import paper  # noqa: E402
from glass_sm.stages import s06_figures as s06  # noqa: E402
from glass_sm.testing import make_toy_cube  # noqa: E402

SMOKE = Path(__file__).resolve().parents[3] / "params" / "smoke.yaml"
MODELS = ["lstm", "bilstm", "atlstm", "transformer", "xgboost"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield
    plt.close("all")


def _ctx(root: Path):
    """A stage-06 context on the smoke parameters with its results under ``root`` (small, PNG only)."""
    return stages.setup(SMOKE, {"run.results_dir": str(root), "figures.dpi": 30, "figures.formats": ["png"]},
                        "06_paper_figures")


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """Smoke domain and period: a toy cube and truth (stage 01), a product (stage 04) and no table."""
    ctx = _ctx(tmp_path_factory.mktemp("toy"))
    cube, truth = make_toy_cube(n_lat=8, n_lon=8, lat_max=40.4, lon_min=-100.0, with_truth=True)
    cube.drop_vars("platform").to_zarr(ctx.paths.cube)
    truth.to_dataset(name="sm_true").to_netcdf(ctx.paths.truth)
    for year, da in (truth + 0.01).groupby("time.year"):
        da.rename("sm").to_dataset().to_netcdf(ctx.paths.product / f"GLASS_AVHRR_SM_{year}.nc")
    return ctx


def test_missing_inputs_are_skipped_naming_the_stage(tmp_path):
    ctx = _ctx(tmp_path)
    book = s06.FigureBook.for_context(ctx)
    drawn = s06.model_comparison(ctx, book)
    assert drawn.figure is None and "tables/model_comparison_predictions.csv.gz" in drawn.skipped
    assert "run stage 02_model_comparison" in drawn.skipped
    assert "data/cube.zarr" in s06.input_overview(ctx, book).skipped and "01_data_preparation" in book.skipped[-1][
        "reason"]
    data = s06.open_datasets(ctx)
    assert data.arrays == {}
    assert "04_global_production" in s06.january_july_maps(ctx, book, data).skipped
    assert "03_atlstm_training" in s06.attention(ctx, book).skipped
    assert "05_validation" in s06.trend_maps(ctx, book, data).skipped
    assert len(book.skipped) == 5 and not book.records
    assert "0 figures produced, 5 skipped" in s06.summary_text(book)
    assert s06.finish(ctx, book).empty and read_table(ctx.paths, "figures_index").empty


def test_figure_book_saves_and_indexes(tmp_path):
    ctx = _ctx(tmp_path)
    book = s06.FigureBook.for_context(ctx)
    drawn = s06.framework(ctx, book)
    assert drawn.figure is not None and "synthetic twin" in drawn.caption
    assert ctx.paths.figure("fig01_framework").stat().st_size > 1000
    index = s06.finish(ctx, book)
    assert list(index.columns) == ["figure", "file", "formats", "caption", "sources"]
    back = read_table(ctx.paths, "figures_index")
    assert back.figure.tolist() == ["fig01_framework"] and back.file[0] == "figures/fig01_framework.png"
    assert back.formats[0] == "png" and back.sources[0] == str(SMOKE)
    assert "1 figures produced, 0 skipped" in s06.summary_text(book)


def _metrics(n=100):
    rows = []
    for ref in ("label", "truth"):
        for k, m in enumerate(MODELS):
            rmse = 0.05 - 0.005 * k + (0.001 if ref == "truth" else 0.0)
            rows.append({"split": "site", "window": 15, "model": m, "reference": ref, "n": n, "r2": 0.7 + 0.02 * k,
                         "r2_lo": 0.6, "r2_hi": 0.8, "r": 0.9, "rmse": rmse, "rmse_lo": rmse - 0.01,
                         "rmse_hi": rmse + 0.01, "ubrmse": rmse, "bias": 0.001})
    return pd.DataFrame(rows)


def test_model_numbers():
    t = s06.model_comparison_numbers(_metrics())
    assert t.reference.tolist() == ["label", "truth"] and (t.n == 100).all()
    assert (t.best_model == "xgboost").all() and t.best_rmse[0] == pytest.approx(0.03)
    assert t.has_atlstm.all() and t.atlstm_rmse[0] == pytest.approx(0.04) and t.atlstm_r2[1] == pytest.approx(0.74)
    assert not s06.model_comparison_numbers(_metrics()[lambda d: d.model != "atlstm"]).has_atlstm.any()
    by_bin = pd.DataFrame([{"model": m, "reference": "label", "bin": b, "n": 10 * (i + 1), "rmse": r}
                           for i, b in enumerate(("0-0.2", ">0.4")) for m, r in (("lstm", 0.02), ("xgboost", 0.01))])
    assert s06.accuracy_by_sm_numbers(by_bin) == {"bin": ">0.4", "n": 20, "best_model": "xgboost", "best_rmse": 0.01,
                                                  "worst_model": "lstm", "worst_rmse": 0.02}
    seq = pd.DataFrame([{"model": m, "window": L, "reference": r, "rmse": 0.05 - 0.001 * L + (r == "label") * 0.01}
                        for m in ("atlstm", "lstm") for L in (1, 7, 3) for r in ("label", "truth")])
    ref, t = s06.sequence_length_numbers(seq)
    assert ref == "truth" and t.model.tolist() == ["atlstm", "lstm"]
    assert t.first_window.tolist() == [1, 1] and t.best_window.tolist() == [7, 7]  # first as in the table
    assert t.best_rmse[0] == pytest.approx(0.043) and t.first_rmse[0] == pytest.approx(0.049)
    assert s06.sequence_length_numbers(seq[seq.reference == "label"])[0] == "label"
    summary = pd.DataFrame({"grouping": ["season", "all"], "n": [5, 10], "w_lag0": [0.2, 0.1]})
    assert s06.attention_numbers(summary)["n"] == 10


def test_validation_numbers():
    sites = pd.DataFrame({"product": ["A", "A", "A", "B", "B"], "r": [0.5, 0.7, 0.9, 0.4, np.nan],
                          "ubrmse": [0.01, 0.02, 0.03, 0.04, 0.05], "bias": [0.0, 0.1, 0.2, -0.1, 0.0],
                          "status": ["ok", "ok", "ok", "ok", "no data"]})
    t, paper_row = s06.insitu_numbers(sites)
    assert t["product"].tolist() == ["A", "B"] and t.n_sensors.tolist() == [3, 1]
    assert t.r.tolist() == [0.7, 0.4] and t.bias[0] == pytest.approx(0.1) and paper_row is None
    summary = pd.DataFrame({"period": ["all", "pre-2000"], "r": [0.8, 0.7], "ubrmse": [0.03, 0.04],
                            "paper_r": [np.nan, 0.73], "paper_ubrmse": [np.nan, 0.041]})
    assert s06.insitu_numbers(sites, summary)[1]["period"] == "pre-2000"
    idx = pd.date_range("2000-01-01", periods=12, freq="MS")
    prod = pd.Series(np.linspace(0.2, 0.3, 12), idx)
    monthly = {"GLASS-AVHRR": prod, "ERA5-Land": prod + 0.02, "short": prod.iloc[:3]}
    breaks = pd.DataFrame({"series": ["residual vs ERA5-Land", "residual vs ERA5-Land", "GLASS-AVHRR"],
                           "status": ["ok", "ok", "ok"], "significant": [True, np.nan, True]})
    agreement, steps = s06.series_numbers(monthly, breaks)
    assert agreement.dataset.tolist() == ["ERA5-Land"]  # more than 3 common months only
    assert agreement.r[0] == pytest.approx(1.0) and agreement.mean_diff[0] == pytest.approx(-0.02)
    assert steps.to_dict("records") == [{"series": "residual vs ERA5-Land", "n_significant": 1, "n": 2}]
    assert s06.series_numbers(monthly, breaks.iloc[2:])[1].series.tolist() == ["GLASS-AVHRR"]
    assert s06.series_numbers(monthly)[1].empty


def test_field_numbers():
    lat, lon = np.array([40.3, 40.25, 40.2]), np.array([-99.9, -99.85])
    da = xr.DataArray(np.array([[0.1, 0.2], [0.3, 0.4], [np.nan, 0.6]]), coords={"lat": lat, "lon": lon},
                      dims=("lat", "lon"))
    t = s06.zoom_numbers({"a": da, "b": da.isel(lat=[0], lon=[0])}, (-99.95, -99.8, 40.15, 40.35))
    assert t.sd[0] == pytest.approx(float(np.nanstd([0.1, 0.2, 0.3, 0.4, 0.6]))) and np.isnan(t.sd[1])
    maps = {"A": {1: da, 7: da * 2}, "B": {1: da, 7: None}}
    m = s06.monthly_map_numbers(maps)
    w = np.cos(np.deg2rad(lat))[:, None] * np.ones((1, 2))  # area weights of the cells, NaN cell left out
    ok = np.isfinite(da.values)
    jan = float((w * da.values)[ok].sum() / w[ok].sum())
    assert m["product"].tolist() == ["A"] and m.january[0] == pytest.approx(jan) and m.july[0] == pytest.approx(2 * jan)
    assert jan != pytest.approx(0.32, abs=1e-6)  # not the unweighted mean
    ds = xr.Dataset({"slope": da, "p_value": da * 0 + xr.DataArray([[0.01, 0.2], [0.2, 0.2], [0.01, 0.01]],
                                                                    dims=("lat", "lon"))})
    t = s06.trend_numbers({"A": ds, "none": ds * np.nan})
    assert t.dataset.tolist() == ["A"] and t["median"][0] == pytest.approx(0.3)
    assert t.frac_significant[0] == pytest.approx(0.4)  # 2 of the 5 finite slopes
    stations = pd.DataFrame({"station": ["a", "b", "c"], "first": ["1995-01-01", "2001-01-01", "1999-12-31"]})
    assert s06.study_area_numbers(stations) == {"n_stations": 3, "n_early": 2}


def test_data_figures_of_a_toy_run(toy_run):
    ctx = toy_run
    book = s06.FigureBook.for_context(ctx)
    data = s06.open_datasets(ctx)
    assert set(data.arrays) == {"GLASS-AVHRR", "ERA5-Land", "GLASS-MODIS", "twin truth"}
    assert data.sources_of(["GLASS-AVHRR"]) == [ctx.paths.root / "product" / "GLASS_AVHRR_SM_<YYYY>.nc"]
    drawn = [s06.input_overview(ctx, book), s06.january_july_maps(ctx, book, data),
             s06.domain_series(ctx, book, data)]
    assert all(d.figure is not None and "synthetic twin" in d.caption for d in drawn)
    assert drawn[0].numbers["first"] == pd.Timestamp("1998-01-01") and drawn[0].numbers["gaps"] == {}
    assert drawn[1].numbers["product"].tolist() == ["ERA5-Land", "GLASS-MODIS", "GLASS-AVHRR"]
    agreement = drawn[2].numbers["agreement"]
    assert agreement.set_index("dataset").loc["twin truth", "mean_diff"] == pytest.approx(0.01, abs=1e-6)
    assert "fig10_regional_zoom" in s06.regional_zoom(ctx, book, data).skipped  # no ERA5-Land files
    index = s06.finish(ctx, book)
    assert index.figure.tolist() == ["fig03_input_overview", "fig09_january_july_maps", "fig11_domain_mean_series"]
    assert all(ctx.paths.figure(f).exists() for f in index.figure)
    assert index.sources[2] == "data/cube.zarr;data/truth.nc;product/GLASS_AVHRR_SM_<YYYY>.nc"


def test_trends_from_the_data_when_stage05_has_none(toy_run):
    """Five years < validation.trend_min_periods: stage 05's slopes are NaN, the figure computes illustrative ones."""
    ctx = toy_run
    empty = pd.DataFrame({"dataset": "GLASS-AVHRR", "lat": [40.375], "lon": [-99.975], "slope": [np.nan],
                          "p_value": [np.nan]})
    empty.to_csv(ctx.paths.tables / "trends.csv", index=False)
    book = s06.FigureBook.for_context(ctx)
    drawn = s06.trend_maps(ctx, book, s06.open_datasets(ctx))
    assert drawn.figure is not None and "**Caution:** only 5 annual means" in drawn.caption
    assert drawn.numbers.dataset.tolist() == ["GLASS-AVHRR", "ERA5-Land", "twin truth"]
    assert s06.trend_maps(ctx, book, s06.Datasets()).skipped.endswith("no finite trend (5 years in the run)")


def test_study_area_from_the_station_files(toy_run):
    ctx = toy_run
    st = ctx.cfg.data.stations_dir / "NET" / "S1"
    st.mkdir(parents=True)
    (st / "NET_NET_S1_sm_0.000000_0.050000_P_19990101_20021231.stm").write_text(
        "NET NET S1 40.20000 -99.80000 500.0 0.0000 0.0500 'P'\n1999/01/01 00:00 0.2 G M\n")
    stations, source, files = s06.station_table(ctx)
    assert stations.station.tolist() == ["S1"] and source == "the ISMN files' headers"
    book = s06.FigureBook.for_context(ctx)
    drawn = s06.study_area(ctx, book)
    assert drawn.numbers == {"n_stations": 1, "n_early": 1} and "the 1 in situ stations" in drawn.caption
    assert book.records[0]["sources"] == "data/cube.zarr;data/raw/ismn"


def test_paper_tables(toy_run):
    ctx = toy_run
    _metrics().to_csv(ctx.paths.tables / "model_comparison.csv", index=False)
    timing = pd.DataFrame({"model": MODELS, "n_parameters": 10, "epochs_run": 2, "train_seconds": 1.5,
                           "inference_windows_per_s": 1e4, "threads": 1})
    timing.to_csv(ctx.paths.tables / "model_timing.csv", index=False)
    tables = s06.paper_tables(ctx)
    assert set(tables) == {"paper_table_inputs", "paper_table_model_comparison"}  # what this run's stages wrote
    mc = tables["paper_table_model_comparison"]
    assert (mc["data"] == "synthetic twin (not the paper's data)").all() and "threads" not in mc
    assert mc.n_parameters.eq(10).all()
    inputs = tables["paper_table_inputs"].set_index("variable")
    assert inputs.loc["sm_label", "period"].startswith("2000-02-2") and inputs.loc["elevation", "period"] == ""
    written = s06.write_paper_tables(ctx, tables)
    assert written.table.tolist() == list(tables)
    assert read_table(ctx.paths, "paper_table_model_comparison").shape == mc.shape


def test_paper_figures_stay_importable_from_paper():
    """Stages 02 and 03 draw figures 4-6 from glass_sm.figures.paper."""
    assert all(callable(getattr(paper, name)) for name in paper.__all__) and len(paper.__all__) == 12
