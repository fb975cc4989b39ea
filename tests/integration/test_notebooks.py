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
