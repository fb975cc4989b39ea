"""Stage 04 against a hostile but fair user (issue 13): a finished year is re-produced exactly when the checkpoint,
the cube or the value-changing production parameters differ from what its file records; damaged scratch tiles are
recomputed with a warning; worker counts below 1 are refused before any cluster starts; one production per results
folder at a time (lock, stale-lock takeover, release on error and interrupt); per-process scratch temporaries."""

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import warnings

import netCDF4
import numpy as np
import pytest
import xarray as xr

from glass_sm import config, product, production
from glass_sm.contract import read_table
from glass_sm.models import load_checkpoint
from glass_sm.paths import RunPaths
from glass_sm.production import ProductionLockedError, ProductionWarning, run_production


def attrs_of(path) -> dict:
    with xr.open_dataset(path) as ds:
        return dict(ds.attrs)


def leftovers(root) -> list:
    """Temporary files (``*.partial``) anywhere under ``root``."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.partial"))


def reasons(cfg) -> dict:
    timing = read_table(RunPaths.from_config(cfg), "production_timing")
    return dict(zip(timing["year"], timing["reason"]))


# ---- 1 a finished year is re-produced when what made it changed, and only then -----------------------------
def test_retrained_checkpoint_reproduces_finished_years(tmp_path, toy):
    cfg, cube = toy.write_run(tmp_path)
    (f,) = run_production(cfg, years=[2000], progress=False)
    old = attrs_of(f)
    with xr.open_dataset(f) as ds:
        before = ds["sm"].values
    toy.write_checkpoint(cfg, cube, bias=0.30)  # stage 03 again: another checkpoint
    new_sha = load_checkpoint(RunPaths.from_config(cfg).checkpoint).sha256
    assert new_sha != old["checkpoint_sha256"]
    with pytest.warns(ProductionWarning, match=r"GLASS_AVHRR_SM_2000\.nc.*checkpoint"):
        run_production(cfg, years=[2000], progress=False)
    assert attrs_of(f)["checkpoint_sha256"] == new_sha
    assert attrs_of(product.annual_path(f.parent, 2000))["checkpoint_sha256"] == new_sha
    with xr.open_dataset(f) as ds:
        assert not np.allclose(ds["sm"].values, before, equal_nan=True)
    assert "checkpoint changed" in reasons(cfg)[2000]


def test_changed_cube_reproduces_finished_years(tmp_path, toy):
    cfg, cube = toy.write_run(tmp_path)
    (f,) = run_production(cfg, years=[1999], progress=False)
    old = attrs_of(f)["cube_fingerprint"]
    cube = cube.copy()
    cube["lst"] = cube["lst"] + 0.5  # stage 01 again on other inputs
    toy.write_cube(cfg, cube)
    with pytest.warns(ProductionWarning, match="cube changed"):
        run_production(cfg, years=[1999], progress=False)
    assert attrs_of(f)["cube_fingerprint"] != old
    assert "cube changed" in reasons(cfg)[1999]


def test_value_params_reproduce_but_scheduling_params_do_not(tmp_path, toy):
    cfg, _ = toy.write_run(tmp_path)
    (f,) = run_production(cfg, years=[2001], progress=False)
    assert json.loads(attrs_of(f)["production_params"]) == {"tile_size": 3, "batch_size": 500, "model_batch": 128,
                                                           "encoding": "int16", "precision": "fp32",
                                                           "device": "cpu"}
    stamp = f.stat().st_mtime_ns
    for same in ({"n_workers": 3, "threads_per_worker": 1, "torch_threads": 2}, {"years": [2001]}):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ProductionWarning)
            run_production(toy.cfg(tmp_path, **same), years=[2001], progress=False)
        assert f.stat().st_mtime_ns == stamp, f"re-produced although only {same} changed"
    with pytest.warns(ProductionWarning, match=r"production parameters changed: batch_size 500 -> 400"):
        run_production(toy.cfg(tmp_path, batch_size=400), years=[2001], progress=False)
    assert f.stat().st_mtime_ns != stamp
    assert json.loads(attrs_of(f)["production_params"])["batch_size"] == 400


def test_a_year_file_without_a_record_or_unreadable_is_reproduced(tmp_path, toy):
    cfg, _ = toy.write_run(tmp_path)
    (f,) = run_production(cfg, years=[2000], progress=False)
    good = f.read_bytes()
    with netCDF4.Dataset(f, "a") as nc:  # a file of an older version: no cube fingerprint recorded
        nc.delncattr("cube_fingerprint")
    with pytest.warns(ProductionWarning, match="re-producing 2000 because file records no cube_fingerprint"):
        run_production(cfg, years=[2000], progress=False)
    assert f.read_bytes() == good
    f.write_bytes(good[: len(good) // 3])  # a truncated copy
    with pytest.warns(ProductionWarning, match=r"GLASS_AVHRR_SM_2000\.nc is unreadable"):
        run_production(cfg, years=[2000], progress=False)
    assert f.read_bytes() == good


def test_cube_fingerprint_follows_metadata_and_chunk_sizes_not_file_times(tmp_path, produced):
    cube = produced["cfg"].results / "data" / "cube.zarr"
    fp = production.store_fingerprint(cube)
    assert len(fp) == 64 and fp == production.store_fingerprint(cube)
    copy = tmp_path / "copy.zarr"
    shutil.copytree(cube, copy)  # new mtimes, same files: same fingerprint
    assert production.store_fingerprint(copy) == fp
    chunk = next(p for p in sorted(copy.rglob("*")) if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(chunk.read_bytes() + b"\0")  # one chunk's size changes
    assert production.store_fingerprint(copy) != fp
    shutil.rmtree(copy)
    shutil.copytree(cube, copy)
    meta = copy / "lst" / "zarr.json"
    meta.write_text(meta.read_text().replace('"K"', '"degC"'))  # metadata content changes
    assert production.store_fingerprint(copy) != fp


@pytest.mark.parametrize("change", ["production_params", "cube_fingerprint"])
def test_scratch_of_other_params_or_cube_is_not_reused(tmp_path, toy, monkeypatch, change):
    cfg, cube = toy.write_run(tmp_path)
    toy.interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run_production(cfg, years=[1999], progress=False)
    monkeypatch.undo()
    assert len(list((cfg.results / "product" / ".work" / "1999").glob("r*.npz"))) == 2
    if change == "cube_fingerprint":
        toy.write_cube(cfg, cube.assign(lst=cube["lst"] - 0.5))
    else:
        cfg = toy.cfg(tmp_path, model_batch=64)
    computed = []
    original = production.produce_tile
    monkeypatch.setattr(production, "produce_tile", lambda *a, **k: computed.append(a[2]) or original(*a, **k))
    with pytest.warns(ProductionWarning, match=f"discarding scratch .*1999: it was made with another .*{change}"):
        run_production(cfg, years=[1999], progress=False)
    assert len(computed) == 5, f"scratch made under another {change} was reused"


# ---- 2 damaged scratch tiles ------------------------------------------------------------------------------
def npz_bytes(days=10) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, sm=np.zeros((days, 3, 3), np.float32), sm_flag=np.zeros((days, 3, 3), np.uint8))
    return buf.getvalue()


DAMAGE = {
    "truncated": lambda b: b[: len(b) // 2],
    "another shape": lambda b: npz_bytes(),
    "empty": lambda b: b"",
    "random bytes": lambda b: np.random.default_rng(0).bytes(len(b)),
    "bytes flipped in the data": lambda b: b[:2000] + bytes(x ^ 0xFF for x in b[2000:2064]) + b[2064:],
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_scratch_tile_is_recomputed_with_a_warning(tmp_path, toy, produced, monkeypatch, damage):
    cfg, _ = toy.write_run(tmp_path)
    toy.interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run_production(cfg, years=[1999], progress=False)
    monkeypatch.undo()
    tile = sorted((cfg.results / "product" / ".work" / "1999").glob("r*.npz"))[1]
    tile.write_bytes(DAMAGE[damage](tile.read_bytes()))
    with pytest.warns(ProductionWarning, match=f"damaged scratch tile {re.escape(str(tile))}"):
        (f,) = run_production(cfg, years=[1999], progress=False)
    assert f.read_bytes() == produced["files"][0].read_bytes()
    assert leftovers(cfg.results) == []


def test_a_failed_assembly_leaves_no_temporary_and_the_rerun_succeeds(tmp_path, toy, produced, monkeypatch):
    cfg, _ = toy.write_run(tmp_path)

    def broken(*a, **k):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(product, "_encode", broken)
    with pytest.raises(OSError, match="disk full"):
        run_production(cfg, years=[2000], progress=False)
    monkeypatch.undo()
    assert leftovers(cfg.results) == []
    assert not (cfg.results / "product" / production.LOCK_NAME).exists()
    (f,) = run_production(cfg, years=[2000], progress=False)
    assert f.read_bytes() == produced["files"][1].read_bytes() and leftovers(cfg.results) == []


# ---- 3 worker and thread counts ---------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["n_workers", "threads_per_worker", "torch_threads", "tile_size", "batch_size",
                                 "model_batch"])
def test_counts_below_one_are_refused_before_any_cluster(tmp_path, toy, monkeypatch, key):
    def no_cluster(*a, **k):
        raise AssertionError("a Dask cluster was started")

    monkeypatch.setattr(production, "cluster_client", no_cluster)
    cfg = toy.cfg(tmp_path, scheduler="distributed")
    setattr(cfg.production, key, 0)  # as if called with explicit arguments, past the params-file checks
    with pytest.raises(config.ConfigError, match=rf"production\.{key} must be >= 1, got 0"):
        run_production(cfg, progress=False)


# ---- 4 one production per results folder ------------------------------------------------------------------
def write_lock(cfg, pid, host=None):
    folder = cfg.results / "product"
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / production.LOCK_NAME
    lock.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(), "started": "2024-05-01T10:00:00"}))
    return lock


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_production_fails_at_once_naming_the_holder(tmp_path, toy, live_pid, dead_pid):
    cfg, _ = toy.write_run(tmp_path)
    lock = write_lock(cfg, live_pid)
    with pytest.raises(ProductionLockedError, match=rf"pid {live_pid} on host {socket.gethostname()}.*2024-05-01"):
        run_production(cfg, progress=False)
    assert not list((cfg.results / "product").glob("*.nc"))  # nothing was touched
    write_lock(cfg, dead_pid, host="another-node")  # gone, but on another host: cannot tell, refused
    with pytest.raises(ProductionLockedError, match=rf"another-node.*{lock}"):
        run_production(cfg, progress=False)
    assert lock.exists()


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path, toy, dead_pid):
    cfg, _ = toy.write_run(tmp_path)
    lock = write_lock(cfg, dead_pid)
    with pytest.warns(ProductionWarning, match=rf"stale production lock .*pid {dead_pid}"):
        run_production(cfg, years=[2000], progress=False)
    assert not lock.exists() and leftovers(cfg.results) == []


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_the_lock_is_held_during_the_run_and_released_on_error(tmp_path, toy, monkeypatch, exc):
    cfg, _ = toy.write_run(tmp_path)
    lock = cfg.results / "product" / production.LOCK_NAME
    seen = []
    original = production.produce_tile

    def check_lock(*a, **k):
        holder = json.loads(lock.read_text())
        seen.append((holder["pid"], holder["host"]))
        if len(seen) == 2:
            raise exc("stop")
        return original(*a, **k)

    monkeypatch.setattr(production, "produce_tile", check_lock)
    with pytest.raises(exc):
        run_production(cfg, years=[2000], progress=False)
    assert seen == [(os.getpid(), socket.gethostname())] * 2
    assert not lock.exists() and leftovers(cfg.results) == []


def test_scratch_tiles_use_a_per_process_temporary_name(tmp_path, produced, monkeypatch):
    paths = RunPaths.from_config(produced["cfg"])
    renamed = []
    replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: renamed.append((str(a), str(b))) or replace(a, b))
    production.produce_tile(production.CubeTileSource(paths.cube), load_checkpoint(paths.checkpoint),
                            production.Tile(0, 3, 0, 3), 2000, tmp_path)
    ((src, dst),) = renamed
    assert dst == str(tmp_path / "r0000_c0000.npz") and f".r0000_c0000.npz.{os.getpid()}" in src
    assert [p.name for p in tmp_path.iterdir()] == ["r0000_c0000.npz"]
