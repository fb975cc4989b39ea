"""Stage 04's engine (glass_sm.production): tiles, memory bounded by the tile, resumable and safe scratch (kill +
resume byte-identical, the lock of the killed run, timing rows kept, foreign scratch discarded), the timing table,
Dask and synchronous runs agree. The faults of issue 13 are in test_safety.py."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from distributed import Client, LocalCluster

from glass_sm import production
from glass_sm.contract import read_table
from glass_sm.data import FeatureSpec, Normalizer
from glass_sm.models import load_checkpoint
from glass_sm.paths import RunPaths
from glass_sm.production import CubeTileSource, Tile, make_tiles, run_production
from glass_sm.testing import make_toy_cube

REPO = Path(__file__).resolve().parents[3]


# ---- tiles ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,size", [((7, 5), 3), ((8, 8), 4), ((1, 1), 64), ((130, 65), 64), ((5, 9), 1)])
def test_tiles_cover_domain_exactly_once(shape, size):
    count = np.zeros(shape, int)
    tiles = make_tiles(*shape, size)
    for t in tiles:
        assert 1 <= t.shape[0] <= size and 1 <= t.shape[1] <= size
        count[t.slices] += 1
    assert (count == 1).all()
    assert len({t.name for t in tiles}) == len(tiles)


def test_chunks_never_straddle_tiles():
    for size in (4, 20, 64, 100, 128, 256):
        c = production.chunk_edge(size)
        assert size % c == 0 and 1 <= c <= 64


def test_tile_is_hashable_and_named():
    t = Tile(0, 3, 6, 9)
    assert t.name == "r0000_c0006" and t.shape == (3, 3) and {t: 1}[Tile(0, 3, 6, 9)] == 1


def test_year_days_and_unknown_year():
    time_ = pd.date_range("1999-12-30", "2000-01-03", freq="D")
    assert production.year_days(time_, 2000) == (2, 5)
    with pytest.raises(ValueError, match="outside"):
        production.year_days(time_, 2001)


# ---- runs -----------------------------------------------------------------------------------------------
def test_finished_years_are_skipped(produced):
    before = [p.stat().st_mtime_ns for p in produced["files"]]
    run_production(produced["cfg"], progress=False)
    assert [p.stat().st_mtime_ns for p in produced["files"]] == before


def test_unknown_year_is_refused(produced):
    with pytest.raises(ValueError, match="outside"):
        run_production(produced["cfg"], years=[1980], progress=False)


def test_timing_table_has_one_row_per_year_and_merges(tmp_path, toy):
    cfg, _ = toy.write_run(tmp_path)
    paths = RunPaths.from_config(cfg)
    run_production(cfg, years=[2000], progress=False)
    run_production(cfg, years=[1999], progress=False)
    timing = read_table(paths, "production_timing")
    assert timing["year"].tolist() == [1999, 2000]  # sorted, the earlier run's row kept
    assert (timing["land_pixels"] == 33).all() and timing["days"].tolist() == [365, 366]
    assert (timing["computed_pixel_days"] == timing["pixel_days"]).all()
    assert (timing["scheduler"] == "synchronous").all()


def test_distributed_matches_synchronous(tmp_path, produced, toy):
    toy.write_run(tmp_path)
    cfg = toy.cfg(tmp_path, scheduler="distributed")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        files = run_production(cfg, years=[2000, 2001], progress=False, client=client)
    for f in files:
        ref = produced["cfg"].results / "product" / f.name
        assert f.read_bytes() == ref.read_bytes()


# ---- resumable and safe ---------------------------------------------------------------------------------
KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from glass_sm import config, production
    slow = production.produce_tile
    def produce_tile_slowly(*a, **k):
        out = slow(*a, **k)
        time.sleep(0.25)
        return out
    production.produce_tile = produce_tile_slowly
    cfg = config.load(None, {overrides!r})
    production.run_production(cfg, progress=False)
""")


def wait_for(condition, proc, what, timeout=60):
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_kill_lock_and_resume(tmp_path, produced, toy):
    """A run killed mid-year: while it runs a second run is refused naming it; after the kill the timing rows of
    the years it finished are kept, its stale lock is taken over with a warning, finished tiles are not
    recomputed, and the files are byte-identical to an uninterrupted run."""
    cfg, _ = toy.write_run(tmp_path)
    over = toy.overrides(tmp_path, torch_threads=1)
    folder = cfg.results / "product"
    work = folder / ".work"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT.format(overrides=over)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (folder / production.LOCK_NAME).exists(), proc, "it took the lock")
        with pytest.raises(production.ProductionLockedError, match=f"pid {proc.pid} on host"):
            run_production(cfg, progress=False)  # two productions of one results folder at once
        wait_for(lambda: (production.product_path(folder, 1999).exists()
                          and len(list((work / "2000").glob("r*.npz"))) >= 1), proc, "1999 and a tile of 2000")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    finished_before = {p.name for p in folder.glob("*.nc")}
    assert "GLASS_AVHRR_SM_1999.nc" in finished_before and len(finished_before) < 3, "nothing was left to resume"
    paths = RunPaths.from_config(cfg)
    assert read_table(paths, "production_timing")["year"].tolist() == [1999], "the finished year's timing was lost"
    scratch = {p: p.stat().st_mtime_ns for p in work.glob("*/r*.npz")}
    assert scratch

    resumed = []
    original = production.produce_tile

    def spy(source, ckpt, tile, year, *a, **k):
        resumed.append((year, tile.name))
        return original(source, ckpt, tile, year, *a, **k)

    production.produce_tile = spy
    try:
        with pytest.warns(production.ProductionWarning, match=f"stale production lock.*pid {proc.pid}"):
            files = run_production(cfg, progress=False)
    finally:
        production.produce_tile = original
    done_before = {(int(p.parent.name), p.stem) for p in scratch}
    assert not done_before & set(resumed), "finished tiles were recomputed"
    assert 1999 not in {y for y, _ in resumed}, "the finished year was recomputed"
    for f, g in zip(files, produced["files"]):
        assert f.read_bytes() == g.read_bytes(), f"{f.name} differs from the uninterrupted run"
    for y in (1999, 2000, 2001):
        a = production.annual_path(folder, y).read_bytes()
        b = production.annual_path(produced["cfg"].results / "product", y).read_bytes()
        assert a == b
    timing = read_table(paths, "production_timing").set_index("year")
    assert timing.index.tolist() == [1999, 2000, 2001]
    assert timing.loc[1999, "tiles_resumed"] == 0 and timing.loc[2000, "tiles_resumed"] >= 1
    assert timing.loc[2000, "reason"].startswith("resumed")
    assert not (folder / production.LOCK_NAME).exists() and not list(folder.rglob("*.partial"))


def test_scratch_from_another_checkpoint_is_discarded(tmp_path, toy):
    cfg, _ = toy.write_run(tmp_path)
    work = cfg.results / "product" / ".work" / "1999"
    work.mkdir(parents=True)
    (work / "MANIFEST.json").write_text('{"checkpoint_sha256": "other"}')
    np.savez(work / "r0000_c0000.npz", sm=np.zeros((365, 3, 3), np.float32), sm_flag=np.zeros((365, 3, 3), np.uint8))
    with pytest.warns(production.ProductionWarning, match="discarding scratch .*1999.*checkpoint_sha256"):
        (f,) = run_production(cfg, years=[1999], progress=False)
    with xr.open_dataset(f) as ds:
        assert float(ds["sm"].isel(lat=0, lon=0).max()) > 0  # recomputed, not the stale zeros


def test_resume_keeps_finished_tiles_and_drops_temporaries(tmp_path):
    work = tmp_path / "2000"
    production._prepare_scratch(work, {"format": 1})
    (work / ".r0000_c0000.npz.partial").write_bytes(b"half")  # the temporary of a killed task
    (work / "r0000_c0003.npz").write_bytes(b"done")
    production._prepare_scratch(work, {"format": 1})  # resume: same manifest
    assert not (work / ".r0000_c0000.npz.partial").exists() and (work / "r0000_c0003.npz").exists()
    with pytest.warns(production.ProductionWarning, match="discarding scratch .*: it was made with another format"):
        production._prepare_scratch(work, {"format": 2})  # another checkpoint or grid: discarded
    assert not (work / "r0000_c0003.npz").exists()
    assert json.loads((work / "MANIFEST.json").read_text()) == {"format": 2}


def test_a_tile_is_written_atomically(produced, tmp_path):
    paths = RunPaths.from_config(produced["cfg"])
    lm = load_checkpoint(paths.checkpoint)
    res = production.produce_tile(CubeTileSource(paths.cube), lm, Tile(0, 3, 0, 3), 2000, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["r0000_c0000.npz"]  # no temporary left behind
    with np.load(tmp_path / "r0000_c0000.npz") as z:
        assert z["sm"].shape == (366, 3, 3) and z["sm_flag"].dtype == np.uint8
    assert res["pixel_days"] == 9 * 366 and res["year"] == 2000


# ---- memory bounded by the tile -------------------------------------------------------------------------
def test_tile_input_size_does_not_depend_on_domain(tmp_path, toy):
    sizes = {}
    for n in (6, 12):
        cube = make_toy_cube(n, n, toy.START, toy.END, n_ocean=0)
        src = CubeTileSource(cube)
        cfg = toy.cfg(tmp_path)
        norm = Normalizer(FeatureSpec.from_config(cfg, cube), np.zeros(9), np.ones(9))
        tile = make_tiles(n, n, 3)[0]
        rows, cols = np.nonzero(src.land_mask()[tile.slices])
        x = src.read_features(rows + tile.row0, cols + tile.col0, slice(0, 365 + toy.WINDOW - 1), norm)
        sizes[n] = x.nbytes
    assert sizes[6] == sizes[12] == (365 + toy.WINDOW - 1) * 9 * 9 * 4
    bound = [production.tile_memory_bytes(64, 30, 9, 8192) for _ in (1, 2)]
    assert bound[0] == bound[1] < 200e6  # a 64 x 64 tile-year with the demo model: well under 200 MB
