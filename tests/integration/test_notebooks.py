"""Integration: every stage notebook runs through papermill on params/smoke.yaml, in order, into a temporary
results folder, and writes the files the next stages and the book read."""

from pathlib import Path

import nbformat
import pytest
import xarray as xr

from glass_sm import config, pipeline

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "params" / "smoke.yaml"


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """A results folder shared by the stage tests, which run in stage order."""
    root = tmp_path_factory.mktemp("results")
    overrides = {"run.results_dir": str(root)}
    cfg = config.load(SMOKE, overrides)
    return {"overrides": overrides, "cfg": cfg, "results": cfg.results, "done": set()}


def _run(smoke_run, stage):
    if stage not in pipeline.stage_notebooks():
        pytest.skip(f"notebook {stage} not written yet")
    out = pipeline.run_stage(stage, SMOKE, smoke_run["overrides"], out_dir=smoke_run["results"] / "notebooks")
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    smoke_run["done"].add(stage)
    return out


def test_stage01_data_preparation(smoke_run):
    _run(smoke_run, "01_data_preparation")
    res = smoke_run["results"]
    ds = xr.open_zarr(res / "data" / "cube.zarr")
    assert set(ds.dims) == {"time", "lat", "lon"}
    assert ds.sizes["lat"] == 8 and ds.sizes["lon"] == 8 and ds.sizes["time"] == 1826
    assert ds["sm_label"].attrs["units"] == "m3 m-3" and ds["lst"].attrs["units"] == "K"
    assert (res / "tables" / "gap_fractions.csv").exists()
    assert (res / "figures" / "01_input_maps.png").exists()
    assert (res / "provenance" / "01_data_preparation.yaml").exists()


def test_stage02_model_comparison(smoke_run):
    _run(smoke_run, "02_model_comparison")
    tables = smoke_run["results"] / "tables"
    import pandas as pd

    t = pd.read_csv(tables / "model_comparison.csv")
    assert set(t["model"]) == {"lstm", "bilstm", "atlstm", "transformer", "xgboost"}
    assert set(t["reference"]) == {"label", "truth"}
    assert t[["r2", "rmse", "ubrmse"]].notna().all().all()
    assert (t["ubrmse"] <= t["rmse"] + 1e-12).all()
    bins = pd.read_csv(tables / "metrics_by_sm_bin.csv")
    assert len(bins) > 0
    assert (t["rmse_lo"] <= t["rmse"]).all() and (t["rmse"] <= t["rmse_hi"]).all()
    assert t.groupby("reference")["n"].nunique().eq(1).all()  # identical test samples for every model
    assert ">0.4" in set(bins["bin"].astype(str))
    assert set(pd.read_csv(tables / "split_strategies.csv")["split"]) == {"random", "site", "year"}


def test_stage03_atlstm_training(smoke_run):
    _run(smoke_run, "03_atlstm_training")
    res = smoke_run["results"]
    import pandas as pd

    seq = pd.read_csv(res / "tables" / "sequence_length.csv")
    assert set(seq["window"]) >= set(smoke_run["cfg"].atlstm.lengths)
    assert (res / "models" / "atlstm_final.pt").exists()
    assert (res / "tables" / "feature_importance.csv").exists()
    from glass_sm.models import load_checkpoint

    loaded = load_checkpoint(res / "models" / "atlstm_final.pt")
    assert loaded.window == smoke_run["cfg"].atlstm.final_window
    loaded.check_cube(xr.open_zarr(res / "data" / "cube.zarr"))  # the checkpoint matches the cube it came from
    att = pd.read_csv(res / "tables" / "attention_by_lag.csv")
    lags = [c for c in att.columns if c.startswith("lag_")]
    assert len(lags) == loaded.window
    assert ((att[lags].sum(axis=1) - 1).abs() < 1e-5).all()
    imp = pd.read_csv(res / "tables" / "feature_importance.csv")
    assert set(imp["feature"]) == set(loaded.features)
    assert "synthetic twin" in (res / "models" / "atlstm_final.md").read_text()


def test_stage04_global_production(smoke_run):
    _run(smoke_run, "04_global_production")
    product = smoke_run["results"] / "product"
    files = sorted(product.glob("GLASS_AVHRR_SM_*.nc"))
    assert [f.name[-7:-3] for f in files] == ["1998", "1999", "2000", "2001", "2002"]
    with xr.open_mfdataset(files, engine="netcdf4") as ds:
        assert ds["sm"].attrs["units"] == "m3 m-3"
        assert ds.sizes["time"] == 1826
        assert int(ds["sm"].isnull().sum()) == 0  # seamless: every land pixel, every day
        assert ds.attrs["Conventions"].startswith("CF-1.8")
    assert list((product / "annual").glob("*.nc"))


def test_stage05_validation(smoke_run):
    import pandas as pd

    _run(smoke_run, "05_validation")
    res = smoke_run["results"]
    t = res / "tables"
    for n in ("validation_sites", "validation_summary", "wet_bias", "intercomparison", "triple_collocation",
              "breaks", "trends", "true_error"):
        assert (t / f"{n}.csv").exists(), n
    sites = pd.read_csv(t / "validation_sites.csv")
    assert {"GLASS-AVHRR", "ERA5-Land", "GLASS-MODIS", "ESA CCI", "twin truth"} <= set(sites["product"])
    assert (sites.groupby("product").size() >= smoke_run["cfg"].twin.n_stations).all()  # listed, never dropped
    s = pd.read_csv(t / "validation_summary.csv")
    pre = s[(s["product"] == "GLASS-AVHRR") & (s["period"] == "pre-2000")]
    assert len(pre) == 1 and pre["paper_r"].iloc[0] == 0.73 and pre["paper_data"].iloc[0] == "paper, real data"
    assert "2001-01-01" in set(pd.read_csv(t / "breaks.csv")["date"])
    assert (res / "figures" / "05_true_error_maps.png").exists()


def test_stage06_and_book(smoke_run, tmp_path):
    """Stage 06 regenerates the figures from the stage files; the book builds from the executed notebooks."""
    import shutil

    from glass_sm import book

    import pandas as pd
    from PIL import Image

    _run(smoke_run, "06_paper_figures")
    res, cfg = smoke_run["results"], smoke_run["cfg"]
    idx = pd.read_csv(res / "tables" / "figures_index.csv")
    names = ["framework", "study_area", "input_overview", "model_comparison", "accuracy_by_sm_level",
             "sequence_length", "attention_weights", "insitu_validation", "january_july_maps",
             "regional_zoom", "domain_mean_series", "trend_maps"]
    assert idx["figure"].tolist() == [f"fig{i:02d}_{n}" for i, n in enumerate(names, 1)]  # complete run: all 12
    for r in idx.itertuples():
        png = res / r.file
        assert png.exists() and png.with_suffix(".pdf").exists()
        assert abs(Image.open(png).info["dpi"][0] - cfg.figures.dpi) < 1
        assert "synthetic twin" in r.caption and r.sources
    nb = nbformat.read(res / "notebooks" / "06_paper_figures.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "SKIPPED" not in text
    book_dir = tmp_path / "book"
    shutil.copytree(REPO / "book", book_dir, ignore=shutil.ignore_patterns("_build", "chapters"))
    index = book.build_book(SMOKE, book_dir=book_dir, notebook_dir=smoke_run["results"] / "notebooks",
                            log=lambda *a: None)
    assert index.exists()
    html = book_dir / "_build" / "html"
    for stage in pipeline.STAGES:
        assert list(html.rglob(f"{stage}.html")), stage
