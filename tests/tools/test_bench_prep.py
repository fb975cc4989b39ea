"""tools/bench_prep.py: the data-preparation rows of ``make bench`` (issue 17): the per-file model, the stage-01
estimate's arithmetic, the raw reader, and the file list the rows measure (the very files the ingest reads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bench_prep as bp
from glass_sm import config, twin
from glass_sm.data import ingest as ing

SMOKE = Path(__file__).resolve().parents[2] / "params" / "smoke.yaml"


def test_stage01_bounds_arithmetic():
    # twin: 100 LST files, 1 MB, 0.2 s of task time -> 2 ms/file, 5 MB/s
    by = {"lst": {"files": 100, "bytes": 1e6, "seconds": 0.2}}
    archive = {"GLASS LST (GLASS08B31, daily)": {"files": 3600, "bytes": 1.8e10}}
    t = bp.stage01_bounds(by, workers=10, archive=archive)
    assert len(t) == 1
    r = t.iloc[0]
    assert r["core_hours_per_file"] == pytest.approx(3600 * 0.002 / 3600)   # 7.2 s
    assert r["core_hours_per_byte"] == pytest.approx(1.8e10 / 5e6 / 3600)   # 3600 s
    assert r["wall_hours_on_10_workers_per_byte"] == pytest.approx(0.1)
    rows = []
    bp.stage01_rows(by, lambda *a: rows.append(a), workers=10, archive=archive)
    assert [x[0] for x in rows] == ["s01", "s01"] and rows[-1][2] == pytest.approx(0.002)  # total = the one source


def test_bench_year_is_a_whole_year_inside_the_label_record(tmp_path):
    cfg = config.load(SMOKE, {"run.results_dir": str(tmp_path), "period.start": "1998-03-01",
                              "period.end": "2003-06-30", "period.label_end": "2002-12-31"})
    assert bp.bench_year(cfg) == 2002
    before = config.load(SMOKE, {"run.results_dir": str(tmp_path), "period.start": "1990-01-01",
                                 "period.end": "1992-12-31"})
    assert bp.bench_year(before) == 1990  # no whole year with labels: the first whole year
    with pytest.raises(ValueError):
        bp.bench_year(config.load(SMOKE, {"run.results_dir": str(tmp_path), "period.start": "2001-02-01",
                                          "period.end": "2001-11-30"}))


#: the tiny twin's overrides of params/smoke.yaml (a year, a few cells)
TINY = {"period.start": "2001-01-01", "period.end": "2001-12-31", "domain.lon_max": -99.8, "twin.n_stations": 2,
        "cube.build_tile": 4, "cube.space_chunk": 4, "cube.scheduler": "synchronous"}


@pytest.fixture(scope="module")
def tiny_twin(tmp_path_factory):
    root = tmp_path_factory.mktemp("prep_twin")
    cfg = config.load(SMOKE, {"run.results_dir": str(root), **TINY})
    twin.generate_twin(cfg, progress=False)
    return cfg


def test_source_files_are_the_files_the_ingest_reads(tiny_twin, tmp_path):
    cfg = tiny_twin
    files = bp.source_files(cfg, cfg.period.start, cfg.period.end)
    kinds = pd.Series([p.suffix for p in files]).value_counts().to_dict()
    assert kinds[".hdf"] == 365 + 46 + 1  # LST every day; albedo composites bracketing the year (46 + the next)
    assert kinds[".tif"] == 365 and kinds[".nc"] == 1
    rep = ing.ingest(cfg, tmp_path / "i.zarr", client="synchronous", progress=False)
    assert rep.n_files_read == len(files)
    assert rep.n_bytes_read == pytest.approx(sum(p.stat().st_size for p in files))
    r = bp.raw_read_rate(files)
    assert r["files"] == len(files) and r["bytes"] == sum(p.stat().st_size for p in files) and r["seconds"] > 0


def test_source_files_from_the_run_listing_are_the_same(tiny_twin):
    from glass_sm.data.coverage import SourceListing

    cfg = tiny_twin
    listing = SourceListing(cfg)
    assert bp.source_files(cfg, cfg.period.start, cfg.period.end, listing) == \
        bp.source_files(cfg, cfg.period.start, cfg.period.end)
    assert bp.source_files(cfg, "2001-06-01", "2001-06-01", listing) == \
        bp.source_files(cfg, "2001-06-01", "2001-06-01")  # another window: the folders are searched for it


def test_read_whole_counts_every_value(tiny_twin):
    files = bp.source_files(tiny_twin, "2001-06-01", "2001-06-01")
    lst = next(p for p in files if "GLASS08B31" in p.name)
    tif = next(p for p in files if p.suffix == ".tif")
    from pyhdf.SD import SD, SDC
    import rasterio

    sd = SD(str(lst), SDC.READ)
    expected = sum(int(np.prod(v[1])) for v in sd.datasets().values())
    sd.end()
    assert bp.read_whole(lst) == expected
    with rasterio.open(tif) as ds:
        assert bp.read_whole(tif) == ds.count * ds.width * ds.height


def test_import_readers_leaves_only_data_costs_to_the_ingest():
    """The workers' warm-up imports the readers' lazily imported libraries and fills xarray's backend registry
    (a once-per-process cost), and reads no data (the mapping cache of the labels stays as it was)."""
    import sys

    from glass_sm.io import glass_modis
    from xarray.backends.plugins import list_engines

    before = set(glass_modis._MAPPINGS)
    list_engines.cache_clear()
    bp._import_readers()
    assert {"rasterio", "pyproj", "pyhdf.SD", "netCDF4", "glass_sm.data.ingest"} <= set(sys.modules)
    assert list_engines.cache_info().currsize == 1
    assert set(glass_modis._MAPPINGS) == before


def test_ingest_child_measures_raw_read_and_a_warm_ingest_of_the_same_files(tiny_twin, tmp_path):
    """(h)'s child with ``files``: (f) on exactly the listed files, then the ingest again (g/f1 rows)."""
    over = {"run.results_dir": str(tiny_twin.run.results_dir), "period.start": "2001-06-01",
            "period.end": "2001-06-30", "domain.lon_max": -99.8, "twin.n_stations": 2, "cube.build_tile": 4,
            "cube.space_chunk": 4}
    cfg = config.load(SMOKE, over)
    files = bp.source_files(cfg, cfg.period.start, cfg.period.end)
    repo = Path(__file__).resolve().parents[2]
    m = bp.ingest_memory(str(SMOKE), over, tmp_path / "m.zarr", repo, files=files)
    assert m["raw"]["files"] == len(files) == m["files"] == m["ingest_warm"]["files"]
    assert m["raw"]["bytes"] == sum(p.stat().st_size for p in files)
    assert m["raw"]["seconds"] > 0 and m["ingest_warm"]["seconds"] > 0
    assert m["peak_rss"] >= m["import_rss"] > 0


def test_best_of_pairs_keeps_the_fastest_of_each_and_every_pair_ratio():
    from types import SimpleNamespace as NS

    f = [{"files_per_s": 100.0}, {"files_per_s": 200.0}, {"files_per_s": 150.0}]
    g = [NS(files_per_s=90.0), NS(files_per_s=80.0), NS(files_per_s=120.0)]
    best_f, best_g, pairs = bp.best_of_pairs(f, g)
    assert best_f is f[1] and best_g is g[2]
    assert pairs == pytest.approx([0.9, 0.4, 0.8])
    assert best_g.files_per_s / best_f["files_per_s"] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="as many"):
        bp.best_of_pairs(f, g[:2])
    with pytest.raises(ValueError):
        bp.best_of_pairs([], [])


def test_cluster_cpu_reads_the_driver_and_sums_the_workers():
    class FakeClient:
        def __init__(self):
            self.calls = 0

        def run(self, fn):
            assert fn is bp.time.process_time  # run on every worker: their own process CPU
            self.calls += 1
            return {"tcp://a": 1.0 * self.calls, "tcp://b": 2.0 * self.calls}

    client = FakeClient()
    drv0, wrk0 = bp.cluster_cpu(client)
    assert wrk0 == 3.0 and drv0 >= 0
    sum(i * i for i in range(200_000))  # some CPU in this (the driver's) process
    drv, wrk = bp.cluster_cpu(client, (drv0, wrk0))
    assert wrk == 3.0 and drv > 0  # the workers' 6 s now minus 3 s then; the driver's own CPU since


def test_summarize_ratios_spread_and_target():
    s = bp.summarize_ratios([0.6, 0.8, 0.7, float("nan"), 0.5], target=0.7)
    assert s["n"] == 4 and s["n_nan"] == 1
    assert s["median"] == pytest.approx(0.65) and s["min"] == 0.5 and s["max"] == 0.8
    assert s["q1"] == pytest.approx(0.575) and s["q3"] == pytest.approx(0.725)  # numpy's linear quartiles
    assert s["n_at_target"] == 2  # 0.7 counts as reaching 0.7
    with pytest.raises(ValueError, match="no finite"):
        bp.summarize_ratios([float("nan")])


def test_repeat_fg_writes_one_row_per_run_of_the_run_year(tiny_twin, tmp_path):
    from glass_sm.contract import read_table, write_table
    from glass_sm.paths import RunPaths

    cfg = tiny_twin
    lines = []
    base = {"run.results_dir": str(cfg.run.results_dir), **TINY, "cube.n_workers": 1}
    t = bp.repeat_fg(config.load(SMOKE, base), str(SMOKE), base, runs=2, n_pairs=1, tmp=tmp_path, say=lines.append)
    assert list(t["run"]) == [1, 2] and len(lines) == 2 and set(t["year"]) == {2001}
    n = len(bp.source_files(cfg, cfg.period.start, cfg.period.end))
    assert set(t["files"]) == {n} and set(t["pairs"]) == {1}
    assert (t["g_over_f"] == t["g_files_per_s"] / t["f_files_per_s"]).all() and (t["g_over_f"] > 0).all()
    assert [float(x) for x in t["pair_ratios"]] == pytest.approx(list(t["g_over_f"]), abs=5e-4)  # one pair each
    assert (t[["f_workers_cpu_s", "g_workers_cpu_s"]] > 0).all().all()
    assert not (tmp_path / "prep_runs.zarr").exists()  # the scratch store is removed
    paths = RunPaths(tmp_path / "out")
    write_table(paths, "bench_prep_runs", t)  # the contract's columns
    assert len(read_table(paths, "bench_prep_runs")) == 2
    with pytest.raises(ValueError, match=">= 1"):
        bp.repeat_fg(cfg, str(SMOKE), {}, runs=0, n_pairs=1, tmp=tmp_path)
