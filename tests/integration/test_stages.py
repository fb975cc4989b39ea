"""Integration: each stage notebook runs through papermill on params/smoke.yaml and writes what later stages read.

Every test asks for the fixture of its own stage (``tests/integration/conftest.py``), which runs the stages before
it first; ``pytest tests/integration -k stage05`` therefore works alone. The last tests build the book from the
executed smoke notebooks and check that the pipeline then sees every stage up to date.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import xarray as xr
from PIL import Image

import book
import pipeline
from glass_sm.contract import read_table
from glass_sm.models import load_checkpoint

REPO = pipeline.find_repo(Path(__file__))
SMOKE = REPO / "params" / "smoke.yaml"


def test_stage01_data_preparation(stage01):
    paths = stage01.paths
    ds = xr.open_zarr(paths.cube)
    assert set(ds.dims) == {"time", "lat", "lon"}
    assert ds.sizes["lat"] == 8 and ds.sizes["lon"] == 8 and ds.sizes["time"] == 1826
    assert ds["sm_label"].attrs["units"] == "m3 m-3" and ds["lst"].attrs["units"] == "K"
    assert len(read_table(paths, "gap_fractions")) > 0
    assert paths.figure("01_input_maps").exists()
    assert (paths.provenance / "01_data_preparation.yaml").exists()


def test_stage02_model_comparison(stage02):
    paths = stage02.paths
    t = read_table(paths, "model_comparison")
    assert set(t["model"]) == {"lstm", "bilstm", "atlstm", "atlstm_cl", "transformer", "xgboost", "xgboost_window"}
    timing = read_table(paths, "model_timing")
    assert set(timing["stop_reason"]) <= {"converged", "early-stopped", "budget cap"}
    assert set(t["reference"]) == {"label", "truth"}
    assert t[["r2", "rmse", "ubrmse"]].notna().all().all()
    assert (t["ubrmse"] <= t["rmse"] + 1e-12).all()
    assert (t["rmse_lo"] <= t["rmse"]).all() and (t["rmse"] <= t["rmse_hi"]).all()
    assert t.groupby("reference")["n"].nunique().eq(1).all()  # identical test samples for every model
    bins = read_table(paths, "metrics_by_sm_bin")
    assert ">0.4" in set(bins["bin"].astype(str))
    assert set(read_table(paths, "split_strategies")["split"]) == {"random", "site", "year"}
    ceiling = read_table(paths, "label_ceiling")
    assert set(ceiling["split"]) == {"random", "site", "year"} and "label" in set(ceiling["subject"])


def test_stage03_atlstm_training(stage03):
    paths, cfg = stage03.paths, stage03.cfg
    seq = read_table(paths, "sequence_length")
    assert set(seq["window"]) >= set(cfg.atlstm.lengths)
    loaded = load_checkpoint(paths.checkpoint)
    assert loaded.window == cfg.atlstm.final_window
    loaded.check_cube(xr.open_zarr(paths.cube))  # the checkpoint matches the cube it came from
    att = read_table(paths, "attention_by_lag")
    lags = [c for c in att.columns if c.startswith("lag_")]
    assert len(lags) == loaded.window
    assert ((att[lags].sum(axis=1) - 1).abs() < 1e-5).all()
    assert set(read_table(paths, "feature_importance")["feature"]) == set(loaded.features)
    assert "synthetic twin" in paths.checkpoint_card.read_text()
    claims = read_table(paths, "paper_claims")
    assert set(claims["claim_id"]) == {"C1", "C2", "C3", "C4", "C5", "C6"}
    assert set(claims["verdict"]) <= {"holds", "does not hold", "inconclusive", "not testable here"}


def test_stage04_global_production(stage04):
    product = stage04.paths.product
    files = sorted(product.glob("GLASS_AVHRR_SM_*.nc"))
    assert [f.name[-7:-3] for f in files] == ["1998", "1999", "2000", "2001", "2002"]
    with xr.open_mfdataset(files, engine="netcdf4") as ds:
        assert ds["sm"].attrs["units"] == "m3 m-3"
        assert ds.sizes["time"] == 1826
        assert int(ds["sm"].isnull().sum()) == 0  # seamless: every land pixel, every day
        assert ds.attrs["Conventions"].startswith("CF-1.8")
    assert list(stage04.paths.annual.glob("*.nc"))


def test_stage05_validation(stage05):
    paths, cfg = stage05.paths, stage05.cfg
    for name in ("validation_sites", "validation_summary", "wet_bias", "intercomparison", "triple_collocation",
                 "breaks", "trends", "true_error"):
        assert paths.table(name).exists(), name
    sites = read_table(paths, "validation_sites")
    assert {"GLASS-AVHRR", "ERA5-Land", "GLASS-MODIS", "ESA CCI", "twin truth"} <= set(sites["product"])
    assert (sites.groupby("product").size() >= cfg.twin.n_stations).all()  # listed, never dropped
    s = read_table(paths, "validation_summary")
    pre = s[(s["product"] == "GLASS-AVHRR") & (s["period"] == "pre-2000")]
    assert len(pre) == 1 and pre["paper_r"].iloc[0] == 0.73 and pre["paper_data"].iloc[0] == "paper, real data"
    assert "2001-01-01" in set(read_table(paths, "breaks")["date"])
    assert paths.figure("05_true_error_maps").exists()


def test_stage06_paper_figures(stage06):
    paths, cfg = stage06.paths, stage06.cfg
    idx = read_table(paths, "figures_index")
    names = ["framework", "study_area", "input_overview", "model_comparison", "accuracy_by_sm_level",
             "sequence_length", "attention_weights", "insitu_validation", "january_july_maps",
             "regional_zoom", "domain_mean_series", "trend_maps"]
    assert idx["figure"].tolist() == [f"fig{i:02d}_{n}" for i, n in enumerate(names, 1)]  # complete run: all 12
    for r in idx.itertuples():
        png = paths.root / r.file
        assert png.exists() and png.with_suffix(".pdf").exists()
        assert abs(Image.open(png).info["dpi"][0] - cfg.figures.dpi) < 1
        assert "synthetic twin" in r.caption and r.sources
    nb = nbformat.read(stage06.notebook, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "SKIPPED" not in text


def test_pipeline_sees_the_smoke_run_up_to_date(stage06):
    """The stamps the chain wrote make every stage up to date for tools/pipeline.py (nothing would re-run)."""
    steps = pipeline.plan(SMOKE, overrides=dict(stage06.overrides), repo=REPO)
    assert [(p.stage, p.reasons) for p in steps if p.run] == []
    assert [p.stage for p in steps] == list(pipeline.STAGES)


def test_book_builds_from_the_executed_smoke_notebooks(stage06, tmp_path):
    book_dir = tmp_path / "book"
    shutil.copytree(REPO / "book", book_dir, ignore=shutil.ignore_patterns("_build", "chapters", "__pycache__"))
    index = book.build_book(SMOKE, overrides=dict(stage06.overrides), book_dir=book_dir, log=lambda *a: None,
                            repo=REPO)
    assert index.exists()
    html = book_dir / "_build" / "html"
    for stage in pipeline.STAGES:
        assert list(html.rglob(f"{stage}.html")), stage
