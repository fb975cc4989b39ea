"""Stage 04 production: tiles, seamless values, CF encoding, open_mfdataset, kill + resume byte-identical,
memory bounded by the tile, and agreement with the checkpoint's own prediction."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from glass_sm import config, production
from glass_sm.models import build_model, load_checkpoint
from glass_sm.models.checkpoint import save_production_checkpoint
from glass_sm.production import CubeTileSource, FLAG_BITS, Tile, make_tiles, run_production
from glass_sm.data.samples import FeatureSpec, Normalizer, make_toy_cube

REPO = Path(__file__).resolve().parents[2]
WINDOW = 5
START, END = "1999-01-01", "2001-12-31"


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_cfg(results_dir, **production_overrides):
    over = {"run.name": "toy", "run.results_dir": str(results_dir), "samples.window": WINDOW,
            "period.start": START, "period.end": END, "production.tile_size": 3,
            "production.scheduler": "synchronous", "production.batch_size": 500, "production.model_batch": 128}
    over.update({f"production.{k}": v for k, v in production_overrides.items()})
    return config.load(None, over)


def write_run(results_dir, n_lat=7, n_lon=5, seed=0):
    """A toy cube (zarr) and an untrained tiny AtLSTM checkpoint under ``<results_dir>/toy/``."""
    cfg = make_cfg(results_dir)
    cube = make_toy_cube(n_lat, n_lon, START, END, seed=seed, n_ocean=2)
    (cfg.results / "data").mkdir(parents=True, exist_ok=True)
    cube.drop_vars("platform").to_zarr(cfg.results / "data" / "cube.zarr", mode="w", consolidated=False)
    spec = FeatureSpec.from_config(cfg, cube)
    mean, sd = np.zeros(spec.n_features), np.ones(spec.n_features)
    for j, (name, kind) in enumerate(zip(spec.names, spec.kinds)):
        if kind in ("dynamic", "static"):
            mean[j], sd[j] = np.nanmean(cube[name].values), np.nanstd(cube[name].values)
    norm = Normalizer(spec, mean, sd)
    torch.manual_seed(1)
    model = build_model("atlstm", spec.n_features, WINDOW, hidden_size=8, num_layers=1)
    with torch.no_grad():  # centre the untrained output on a plausible soil moisture
        model.head.net[-1].bias.fill_(0.25)
    save_production_checkpoint(cfg.results / "models" / "atlstm_final.pt", model, "atlstm",
                               {"hidden_size": 8, "num_layers": 1}, norm, window=WINDOW)
    return cfg, cube


@pytest.fixture(scope="module")
def produced(tmp_path_factory):
    """One uninterrupted synchronous run, shared by the read-only tests."""
    root = tmp_path_factory.mktemp("prod")
    cfg, cube = write_run(root)
    files = run_production(cfg, progress=False)
    return {"cfg": cfg, "cube": cube, "files": files, "root": root}


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


# ---- the product ----------------------------------------------------------------------------------------
def test_files_and_names(produced):
    product = produced["cfg"].results / "product"
    assert [p.name for p in produced["files"]] == [f"GLASS_AVHRR_SM_{y}.nc" for y in (1999, 2000, 2001)]
    assert all(p.exists() for p in produced["files"])
    assert sorted(p.name for p in (product / "annual").glob("*.nc")) == [
        f"GLASS_AVHRR_SM_annual_mean_{y}.nc" for y in (1999, 2000, 2001)]
    assert not (product / ".work").exists() or not any((product / ".work").iterdir())
    assert (produced["cfg"].results / "tables" / "production_timing.csv").exists()


def test_seamless_and_cf_attributes(produced):
    land = produced["cube"]["land_mask"].values == 1
    with xr.open_dataset(produced["files"][1]) as ds:
        sm, flag = ds["sm"].values, ds["sm_flag"].values
        assert ds.sizes["time"] == 366  # 2000
        assert ds["sm"].attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
        assert ds["sm"].attrs["units"] == "m3 m-3"
        assert ds.attrs["Conventions"] == "CF-1.8" and "10.5194/essd-17-5181-2025" in ds.attrs["references"]
        assert "synthetic twin" in ds.attrs["source"] and "AtLSTM" in ds.attrs["source"]
        assert len(ds.attrs["checkpoint_sha256"]) == 64 and "tile_size: 3" in ds.attrs["params"]
        assert ds["lat"].values[0] > ds["lat"].values[-1]
    assert np.isfinite(sm[:, land]).all()  # every land pixel, every day
    assert np.isnan(sm[:, ~land]).all()
    assert ((sm[:, land] >= 0) & (sm[:, land] <= 1)).all()
    assert (flag[:, land] <= 31).all()
    with xr.open_dataset(produced["files"][1], mask_and_scale=False) as raw:
        v = raw["sm"]
        assert v.dtype == np.int16 and v.attrs["_FillValue"] == -32768 and v.attrs["add_offset"] == 0
        assert float(v.attrs["scale_factor"]) == pytest.approx(1e-4)
        assert v.encoding["zlib"] and v.encoding["chunksizes"] == (32, 3, 3)


def test_spin_up_padding_flagged_only_at_period_start(produced):
    land = produced["cube"]["land_mask"].values == 1
    padded = FLAG_BITS["window_padded_at_period_edge"]
    with xr.open_dataset(produced["files"][0], mask_and_scale=False) as ds:
        bit = (ds["sm_flag"].values[:, land] & padded) > 0
    assert bit[:WINDOW - 1].all() and not bit[WINDOW - 1:].any()
    with xr.open_dataset(produced["files"][1], mask_and_scale=False) as ds:  # 2000 reads the end of 1999
        assert not ((ds["sm_flag"].values[:, land] & padded) > 0).any()


def test_gap_flags_come_from_the_cube(produced):
    cube, land = produced["cube"], produced["cube"]["land_mask"].values == 1
    with xr.open_dataset(produced["files"][2], mask_and_scale=False) as ds:
        flag = ds["sm_flag"].values
    want = cube["albedo_filled"].sel(time="2001").values
    assert (((flag & 1) > 0)[:, land] == (want > 0)[:, land]).all()


def test_int16_round_trip_matches_checkpoint_prediction(produced):
    """Windows rebuilt by hand from the cube and fed to LoadedModel.predict give the product within 1e-4."""
    cfg, cube = produced["cfg"], produced["cube"]
    lm = load_checkpoint(cfg.results / "models" / "atlstm_final.pt")
    r, c = 2, 1
    raw = np.stack([cube[v].values[:, r, c] if "time" in cube[v].dims else np.full(cube.sizes["time"],
                    cube[v].values[r, c]) for v in lm.spec.cube_variables], axis=1)
    doy = np.asarray(cube.indexes["time"].day_of_year, float)
    raw = np.concatenate([raw, np.sin(2 * np.pi * doy / 365.25)[:, None], np.cos(2 * np.pi * doy / 365.25)[:, None]],
                         axis=1)
    padded = np.concatenate([np.repeat(raw[:1], WINDOW - 1, axis=0), raw])
    windows = np.lib.stride_tricks.sliding_window_view(padded, WINDOW, axis=0).transpose(0, 2, 1)
    expected = np.clip(lm.predict(windows), 0, 1)
    got = xr.open_mfdataset(sorted((cfg.results / "product").glob("*.nc")))
    try:
        series = got["sm"].isel(lat=r, lon=c).values
    finally:
        got.close()
    assert series.shape == expected.shape
    assert np.abs(series - expected).max() <= 0.5e-4 + 1e-6


def test_open_mfdataset_just_works(produced):
    product = produced["cfg"].results / "product"
    with xr.open_mfdataset(str(product / "*.nc")) as ds:
        assert ds.sizes["time"] == 365 + 366 + 365
        assert set(ds.data_vars) == {"sm", "sm_flag"}
        assert ds.indexes["time"].is_monotonic_increasing
    with xr.open_mfdataset(str(product / "annual" / "*.nc")) as ann:
        assert ann.sizes["time"] == 3 and ann["sm"].attrs["cell_methods"] == "time: mean"
        with xr.open_dataset(produced["files"][0]) as d1999:
            np.testing.assert_allclose(ann["sm"].isel(time=0).values, d1999["sm"].mean("time").values,
                                       atol=1e-4)


def test_finished_years_are_skipped(produced):
    before = [p.stat().st_mtime_ns for p in produced["files"]]
    run_production(produced["cfg"], progress=False)
    assert [p.stat().st_mtime_ns for p in produced["files"]] == before


def test_float32_encoding(tmp_path, produced):
    cfg, _ = write_run(tmp_path)
    cfg = make_cfg(tmp_path, encoding="float32")
    (f,) = run_production(cfg, years=[2000], progress=False)
    with xr.open_dataset(f) as a, xr.open_dataset(produced["files"][1]) as b:
        assert a["sm"].dtype == np.float32
        assert np.nanmax(np.abs(a["sm"].values - b["sm"].values)) <= 0.5e-4 + 1e-6


# ---- resumable and safe ---------------------------------------------------------------------------------
KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from glass_sm import config, production
    slow = production.produce_tile
    def produce_tile_slowly(*a, **k):
        out = slow(*a, **k)
        time.sleep(0.15)
        return out
    production.produce_tile = produce_tile_slowly
    cfg = config.load(None, {overrides!r})
    production.run_production(cfg, progress=False)
""")


def test_resume_after_kill_is_byte_identical(tmp_path, produced):
    cfg, _ = write_run(tmp_path)
    over = {"run.name": "toy", "run.results_dir": str(tmp_path), "samples.window": WINDOW, "period.start": START,
            "period.end": END, "production.tile_size": 3, "production.scheduler": "synchronous",
            "production.batch_size": 500, "production.model_batch": 128, "production.torch_threads": 1}
    work = cfg.results / "product" / ".work"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT.format(overrides=over)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and len(list(work.glob("*/r*.npz"))) < 3:
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    finished_before = {p.name for p in (cfg.results / "product").glob("*.nc")}
    assert len(finished_before) < 3, "nothing was left to resume"
    scratch = {p: p.stat().st_mtime_ns for p in work.glob("*/r*.npz")}
    assert scratch

    resumed = []
    original = production.produce_tile

    def spy(source, ckpt, tile, year, *a, **k):
        resumed.append((year, tile.name))
        return original(source, ckpt, tile, year, *a, **k)

    production.produce_tile = spy
    try:
        files = run_production(cfg, progress=False)
    finally:
        production.produce_tile = original
    done_before = {(int(p.parent.name), p.stem) for p in scratch}
    assert not done_before & set(resumed), "finished tiles were recomputed"
    for f, g in zip(files, produced["files"]):
        assert f.read_bytes() == g.read_bytes(), f"{f.name} differs from the uninterrupted run"
    for y in (1999, 2000, 2001):
        a = production.annual_path(cfg.results / "product", y).read_bytes()
        b = production.annual_path(produced["cfg"].results / "product", y).read_bytes()
        assert a == b


def test_scratch_from_another_checkpoint_is_discarded(tmp_path):
    cfg, _ = write_run(tmp_path)
    work = cfg.results / "product" / ".work" / "1999"
    work.mkdir(parents=True)
    (work / "MANIFEST.json").write_text('{"checkpoint_sha256": "other"}')
    np.savez(work / "r0000_c0000.npz", sm=np.zeros((365, 3, 3), np.float32), sm_flag=np.zeros((365, 3, 3), np.uint8))
    (f,) = run_production(cfg, years=[1999], progress=False)
    with xr.open_dataset(f) as ds:
        assert float(ds["sm"].isel(lat=0, lon=0).max()) > 0  # recomputed, not the stale zeros


# ---- memory bounded by the tile -------------------------------------------------------------------------
def test_tile_input_size_does_not_depend_on_domain(tmp_path):
    sizes = {}
    for n in (6, 12):
        cube = make_toy_cube(n, n, START, END, n_ocean=0)
        src = CubeTileSource(cube)
        cfg = make_cfg(tmp_path)
        norm = Normalizer(FeatureSpec.from_config(cfg, cube), np.zeros(9), np.ones(9))
        tile = make_tiles(n, n, 3)[0]
        rows, cols = np.nonzero(src.land_mask()[tile.slices])
        x = src.read_features(rows + tile.row0, cols + tile.col0, slice(0, 365 + WINDOW - 1), norm)
        sizes[n] = x.nbytes
    assert sizes[6] == sizes[12] == (365 + WINDOW - 1) * 9 * 9 * 4
    bound = [production.tile_memory_bytes(64, 30, 9, 8192) for _ in (1, 2)]
    assert bound[0] == bound[1] < 200e6  # a 64 x 64 tile-year with the demo model: well under 200 MB


def test_distributed_matches_synchronous(tmp_path, produced):
    from distributed import Client, LocalCluster

    cfg, _ = write_run(tmp_path)
    cfg = make_cfg(tmp_path, scheduler="distributed")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        files = run_production(cfg, years=[2000, 2001], progress=False, client=client)
    for f in files:
        ref = produced["cfg"].results / "product" / f.name
        assert f.read_bytes() == ref.read_bytes()


def test_unknown_year_is_refused(produced):
    with pytest.raises(ValueError, match="outside"):
        run_production(produced["cfg"], years=[1980], progress=False)


def test_tile_is_hashable_and_named():
    t = Tile(0, 3, 6, 9)
    assert t.name == "r0000_c0006" and t.shape == (3, 3) and {t: 1}[Tile(0, 3, 6, 9)] == 1
