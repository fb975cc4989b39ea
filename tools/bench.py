"""Production throughput benchmark (``make bench``): how close stage 04 gets to what this machine can do.

``python tools/bench.py [params/demo.yaml] [--quick] [--days N] [--naive-windows N] [--if-checkpoint-changed]
[--compile]``

Everything is measured in this one run, on this machine, and written to ``<results>/<run>/tables/bench.csv``
(one row per quantity, the contract's table ``bench``) and ``bench.json`` (the same plus the machine: CPU model and
its vector flags, cores, torch / oneDNN / MKL versions, ATen's CPU capability, the thread layout, the load
average, and the sha256 of the checkpoint measured; ``--if-checkpoint-changed`` does nothing when that checkpoint
is unchanged):

(a) dense fp32 GEMM rate (torch, 4096 x 4096, best of 5), GFLOP/s: the machine's practical peak.
(b) bare-model inference of the production AtLSTM (the stage-03 checkpoint if it exists, else a freshly built
    model with the run's hyperparameters), pixel-days/s = windows/s, and its analytic FLOP/s
    (:func:`glass_sm.models.count_flops`, the module's FLOPs per window) as a fraction of (a). Measured on the
    production path, :func:`glass_sm.production.predict_tile` with its engine
    (:mod:`glass_sm.models.inference`) on random normalised tile-years, in the configurations production can
    use: 1 torch thread; all cores as torch threads; one Python thread per core with 1 torch thread each (how
    Dask runs it). The best is (b). ``b/a`` is the median of 3 repetitions of (a) and (b) in this run. Rows
    ``b-ref`` are the module's own forward on gathered windows (the reference, oneDNN on and off), ``b-mb``
    the engine at ``model_batch`` 128 .. 2048.
(p) profile of (b) on 1 thread: time per window of each part of the engine (first-layer projection, each
    layer's recurrent steps, attention, head), the gathering of windows the module path would need, and the
    Python / dispatch overhead (wall time minus the time inside ATen operators, from ``torch.profiler``).
(c) end-to-end production (read cube -> windows -> infer -> write NetCDF) for one year of the run's cube, on
    the configured scheduler, pixel-days/s, as a fraction of (b).
(d) peak memory (RSS) of production in a child process for the run's domain and for a 4x larger one (the
    cube tiled 2 x 2), and their ratio (memory is bounded by the tile, not the domain).
(e) the naive baseline: one window per output day, one pixel per model call (a few thousand windows).
(bf16) ``production.precision: bf16``: bf16 GEMM rate, the engine's bf16 rate and its FLOP/s as a fraction
    of the bf16 GEMM, and the product's difference to fp32 (RMSE and max |difference|, m3 m-3) over one year of
    one 8 x 8 cell block of the run's cube. The target is RMSE <= 1e-4 m3 m-3 (the product's storage
    resolution); bf16 is worth making the default only where it also is faster than fp32.

(f), (g), (h), (s), (s01) data preparation (stage 01's day-major ingest): :mod:`bench_prep`'s docstring.

Targets: (b)/(a) >= 0.6, (c)/(b) >= 0.8, (d) ratio <= 1.2, (g)/(f) >= 0.7, (h) ratio within 0.8-1.2. The script reports what it reaches; it does not fail.

``--quick`` (what ``make all`` runs; ``make bench`` is the full benchmark): the same rows, measured with less
repetition (:data:`QUICK`): one repetition of (a) and (b) instead of three (so ``b/a`` is that repetition's, not a
median; the rows' notes say so), the best of fewer timed passes over fewer windows for (b), (b-ref), (b-mb) and
(p), one end-to-end production per scheduler for (c) instead of the best of two, and 60 days instead of 120 for
the memory runs (d). ``bench.json`` records ``"quick": true`` and the settings (``machine.mode``,
``machine.settings``); stage 04 reads them. The seconds each part took are in ``machine.section_seconds``.
``--if-checkpoint-changed`` keeps a full benchmark of the current checkpoint (a quick one never replaces it).
The model runs on the CPU (the engine is CPU-only); with CUDA, ``b-gpu`` measures the module on the GPU and
``machine.production_device`` is ``production.device`` resolved (:func:`glass_sm.training.resolve_device`), the
device (c) and (d) run on.
``torch.compile`` of the module is measured only with ``--compile`` (its compile time is reported): on the
2-core AVX2 machine of the issue the compiled LSTM cell ran at the eager speed after ~25 s of compiling, so
production does not use it. ONNX Runtime and OpenVINO are reported as installed or not; they are not
dependencies of the project.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from glass_sm import config, production
from glass_sm.cluster import cluster_client
from glass_sm.contract import write_table
from glass_sm.data.features import FeatureSpec, Normalizer
from glass_sm.grid import Domain
from glass_sm.models import build_model, count_flops, load_checkpoint, model_hparams
from glass_sm.models.checkpoint import file_sha256, save_production_checkpoint
from glass_sm.paths import RunPaths, atomic_write
from glass_sm.testing import make_toy_cube
from glass_sm.training import resolve_device
import bench_prep
from pipeline import find_repo, results_root

N_CORES = os.cpu_count() or 1

FULL = {"repetitions": 3, "gemm_repeats": 5, "rate_windows": 16384, "rate_repeats": 3, "mb_repeats": 2,
        "e2e_repeats": 2, "memory_days": 120}
"""Settings of the full benchmark (``make bench``): repetitions of (a)+(b) (``b/a`` is their median), timed passes
of the GEMM, windows and timed passes of each rate in (b), passes per ``model_batch`` (b-mb), end-to-end runs per
scheduler (c, best kept), days of the memory runs (d)."""

QUICK = {"repetitions": 1, "gemm_repeats": 3, "rate_windows": 8192, "rate_repeats": 2, "mb_repeats": 1,
         "e2e_repeats": 1, "memory_days": 60}
"""``--quick`` (``make all``): the same rows with less repetition. One repetition of (a)+(b), half the windows
(8192, still 8 engine batches of ``model_batch`` 1024 per pass) and the best of 2 passes; (c) is one production
of a year; (d) 60 days (the ratio 4x / 1x that (d) tests compares two runs over the same days)."""


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


CPU_FLAGS = ("fma", "avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
"""Vector extensions that decide fp32 and bf16 inference speed, reported when present."""


def machine_details(cfg) -> dict:
    """CPU flags, torch / oneDNN / MKL versions, ATen's CPU capability and the thread layout of ``cfg``."""
    flags: list[str] = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                flags = [f for f in CPU_FLAGS if f in have]
                break
    except OSError:
        pass
    conf = torch.__config__.show()
    onednn = re.search(r"MKL-DNN v([\w.]+)", conf)
    mkl = re.search(r"Math Kernel Library Version ([\w.]+)", conf)
    pc = cfg.production
    return {
        "cpu_flags": flags, "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn": onednn.group(1) if onednn else None, "mkl": mkl.group(1) if mkl else None,
        "onednn_enabled": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
        "onednn_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "threads": {"dask_workers": pc.n_workers, "threads_per_worker": pc.threads_per_worker,
                    "torch_threads_per_task": pc.torch_threads or 1,
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "optional_backends": {name: importlib.util.find_spec(name) is not None for name in ("onnxruntime", "openvino")},
    }


def measured_checkpoint(paths: RunPaths) -> str | None:
    """The checkpoint sha256 the last ``bench.json`` of the run measured (None: no usable bench yet)."""
    try:
        doc = json.loads((paths.tables / "bench.json").read_text())
    except (OSError, ValueError):
        return None
    return doc.get("machine", {}).get("checkpoint_sha256") if paths.table("bench").is_file() else None


# ---- (a) ------------------------------------------------------------------------------------------------
def gemm_rate(threads: int, n: int = 4096, repeats: int = 5, dtype=torch.float32) -> float:
    """Best ``n x n`` matmul rate in ``dtype``, FLOP/s."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


# ---- (b) ------------------------------------------------------------------------------------------------
def model_rate(model, window: int, n_features: int, torch_threads: int, py_threads: int, batch: int,
               n_windows: int = 16384, repeats: int = 3) -> float:
    """Best windows/s of ``model`` on random normalised windows, ``py_threads`` Python threads each calling the
    model on its share in micro-batches of ``batch`` with ``torch_threads`` intra-op threads."""
    torch.set_num_threads(torch_threads)
    x = torch.randn(n_windows, window, n_features)
    shares = torch.chunk(x, py_threads)

    def work(share):
        with torch.inference_mode():
            for s in range(0, len(share), batch):
                model(share[s:s + batch])

    work(x[:batch])
    return n_windows / best_seconds(work, [x] if py_threads == 1 else list(shares), repeats)


def best_seconds(work, parts: list, repeats: int) -> float:
    """Least wall time over ``repeats`` of running ``work`` on every part, one Python thread per part (one part:
    in this thread); stops repeating after 10 s (a pathological configuration, e.g. OpenMP threads on a busy
    machine: one pass is enough)."""
    best, spent = float("inf"), 0.0
    for _ in range(repeats):
        if spent > 10:
            break
        t = time.perf_counter()
        if len(parts) == 1:
            work(parts[0])
        else:
            ts = [threading.Thread(target=work, args=(p,)) for p in parts]
            for th in ts:
                th.start()
            for th in ts:
                th.join()
        best = min(best, time.perf_counter() - t)
        spent += time.perf_counter() - t
    return best


def tile_inputs(window: int, n_features: int, n_windows: int, n_out: int = 365, seed: int = 0) -> np.ndarray:
    """Random normalised inputs of a tile-year ``(n_out + window - 1, P, F)`` holding about ``n_windows``."""
    p = max(1, -(-n_windows // n_out))
    return np.random.default_rng(seed).standard_normal((n_out + window - 1, p, n_features)).astype(np.float32)


def engine_rate(model, window: int, n_features: int, torch_threads: int, py_threads: int, model_batch: int,
                batch_size: int, precision: str = "fp32", n_windows: int = 16384, repeats: int = 3,
                n_out: int = 365) -> float:
    """Best windows/s of the production path (:func:`glass_sm.production.predict_tile`, its engine) on random
    tile-years: ``py_threads`` Python threads, each predicting its own tile with ``torch_threads`` threads."""
    torch.set_num_threads(torch_threads)
    tiles = [tile_inputs(window, n_features, n_windows // py_threads, n_out, seed=k) for k in range(py_threads)]
    total = sum(t.shape[1] for t in tiles) * n_out

    def work(x):
        production.predict_tile(model, x, n_out, batch_size, model_batch, precision)

    work(tiles[0][:, :1])
    return total / best_seconds(work, tiles, repeats)


def profile_engine(model, window: int, n_features: int, model_batch: int, batch_size: int,
                   n_windows: int = 16384, n_out: int = 365) -> dict:
    """Seconds per window of each part of the production path on 1 thread (module docstring, (p))."""
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(1)
    x = tile_inputs(window, n_features, n_windows, n_out)
    n = x.shape[1] * n_out
    engine = production.inference_engine(model)
    production.predict_tile(model, x[:, :1], n_out, batch_size, model_batch)
    engine.timings = {}
    t = time.perf_counter()
    production.predict_tile(model, x, n_out, batch_size, model_batch)
    wall = time.perf_counter() - t
    parts = {k: v / n for k, v in engine.timings.items()}
    engine.timings = None
    parts["total (wall)"] = wall / n
    # the module path's window gathering (a contiguous (windows, L, F) copy per batch of pixels)
    xp = np.ascontiguousarray(x.transpose(1, 0, 2))
    view = np.lib.stride_tricks.sliding_window_view(xp, window, axis=1).transpose(0, 1, 3, 2)
    t = time.perf_counter()
    step = max(1, batch_size // n_out)
    for p0 in range(0, x.shape[1], step):
        np.ascontiguousarray(view[p0:p0 + step])
    parts["module path only: window gathering (numpy)"] = (time.perf_counter() - t) / n
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        production.predict_tile(model, x, n_out, batch_size, model_batch)
        wall_prof = time.perf_counter() - t
    aten = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key.startswith("aten::")) / 1e6
    parts["Python and dispatch overhead (wall - ATen, share)"] = max(0.0, 1 - aten / wall_prof)
    return parts


def compiled_rate(model, window: int, n_features: int, batch: int, n_windows: int = 8192) -> tuple[float, float]:
    """``torch.compile`` of the module: (compile seconds, windows/s after compiling), 1 thread."""
    torch.set_num_threads(1)
    m = torch.compile(copy.deepcopy(model), dynamic=False)
    x = torch.randn(n_windows, window, n_features)
    with torch.inference_mode():
        t = time.perf_counter()
        m(x[:batch])
        compile_s = time.perf_counter() - t
        t = time.perf_counter()
        for s in range(0, n_windows - batch + 1, batch):
            m(x[s:s + batch])
        return compile_s, (n_windows // batch * batch) / (time.perf_counter() - t)


def bf16_product_difference(cube_path: Path, lm, year: int, tmp: Path, block: int = 8) -> dict:
    """fp32 vs bf16 product (before int16 encoding) over one year of the first ``block x block`` cells with land:
    RMSE, max |difference| (m3 m-3) and the fraction of land pixel-days whose stored int16 value differs."""
    src = production.CubeTileSource(cube_path)
    mask = src.land_mask()
    tile = next(t for t in production.make_tiles(mask.shape[0], mask.shape[1], block) if mask[t.slices].any())
    sm = {}
    for prec in ("fp32", "bf16"):
        d = tmp / f"bf16_check_{prec}"
        d.mkdir(parents=True, exist_ok=True)
        production.produce_tile(src, lm, tile, year, d, torch_threads=1, precision=prec)
        with np.load(d / f"{tile.name}.npz") as z:
            sm[prec] = z["sm"]
    ok = np.isfinite(sm["fp32"])
    diff = (sm["bf16"] - sm["fp32"])[ok].astype(np.float64)
    stored = np.round(sm["bf16"][ok] / 1e-4) != np.round(sm["fp32"][ok] / 1e-4)
    return {"rmse": float(np.sqrt(np.mean(diff ** 2))), "max_abs": float(np.abs(diff).max()),
            "int16_changed": float(stored.mean()), "pixel_days": int(ok.sum()), "tile": tile.name}


def gpu_rate(model, window: int, n_features: int, batch: int = 65536, repeats: int = 5) -> float:
    """Windows/s of a copy of ``model`` on the first CUDA device (fp32)."""
    m = copy.deepcopy(model).cuda().eval()
    x = torch.randn(batch, window, n_features, device="cuda")
    with torch.inference_mode():
        m(x)
        torch.cuda.synchronize()
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            m(x)
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
    return batch / best


# ---- inputs: the run's cube and checkpoint (or stand-ins) -------------------------------------------------
def get_cube(cfg, paths: RunPaths, tmp: Path) -> tuple[Path, str]:
    if paths.cube.exists():
        return paths.cube, f"the run's cube {paths.cube}"
    dom = Domain.from_config(cfg)
    year = cfg.period.start.year
    cube = make_toy_cube(dom.nrows, dom.ncols, f"{year}-01-01", f"{year + 1}-03-31", lat_max=dom.north,
                         lon_min=dom.west, n_ocean=0)
    path = tmp / "toy_cube.zarr"
    cube.drop_vars("platform").to_zarr(path, mode="w", consolidated=False)
    return path, f"a toy stand-in cube of the run's domain ({dom.nrows} x {dom.ncols} cells; no stage-01 cube yet)"


def get_checkpoint(cfg, paths: RunPaths, cube_path: Path, tmp: Path) -> tuple[Path, str]:
    ckpt = paths.checkpoint
    if ckpt.exists():
        return ckpt, f"the stage-03 checkpoint {ckpt}"
    with production.CubeTileSource(cube_path).ds as cube:
        spec = FeatureSpec.from_config(cfg, cube)
        mean, sd = np.zeros(spec.n_features), np.ones(spec.n_features)
        sub = cube.isel(time=slice(0, 365))
        for j, (name, kind) in enumerate(zip(spec.names, spec.kinds)):
            if kind in ("dynamic", "static"):
                v = sub[name].values
                mean[j], sd[j] = float(np.nanmean(v)), float(np.nanstd(v)) or 1.0
    window = cfg.atlstm.final_window
    hp = model_hparams("atlstm", cfg)
    torch.manual_seed(cfg.run.seed)
    model = build_model("atlstm", spec.n_features, window, **hp)
    path = tmp / "models" / "atlstm_fresh.pt"
    save_production_checkpoint(path, model, "atlstm", hp, Normalizer(spec, mean, sd), window=window,
                               window_mode=cfg.samples.window_mode, source="benchmark stand-in (untrained)")
    return path, (f"a freshly built (untrained) AtLSTM with the run's hyperparameters (hidden {hp['hidden_size']}, "
                  f"{hp['num_layers']} layers, window {window}); no stage-03 checkpoint yet")


def bench_cfg(params: str, results_dir: Path, **production_overrides):
    over = {"run.results_dir": str(results_dir), "production.overwrite": True}  # scratch, deleted at the end
    over.update({f"production.{k}": v for k, v in production_overrides.items()})
    return config.load(params, over)


# ---- (c) ------------------------------------------------------------------------------------------------
def end_to_end(params: str, cube_path: Path, ckpt: Path, year: int, tmp: Path, scheduler: str,
               repeats: int = 2) -> dict:
    """Best of ``repeats`` productions of ``year`` into fresh folders (the Dask cluster is started, and the model
    loaded in its workers, before the clock starts)."""
    cfg = bench_cfg(params, tmp, scheduler=scheduler)
    source = production.CubeTileSource(cube_path)
    best, files = float("inf"), None
    with contextlib.ExitStack() as stack:
        client = None
        if scheduler == "distributed":  # the cluster stage 04 itself would use (an address, or its LocalCluster)
            pc = cfg.production
            client = stack.enter_context(cluster_client(pc.scheduler_address, pc.n_workers, pc.threads_per_worker))
            ref = (str(ckpt), load_checkpoint(ckpt).sha256)
            client.run(lambda: production.load_model(ref) and None)  # load torch + the model once per worker
        for k in range(repeats):
            cfg = bench_cfg(params, tmp / f"e2e_{scheduler}_{k}", scheduler=scheduler)
            t = time.perf_counter()
            files = production.run_production(cfg, checkpoint_path=ckpt, years=[year], progress=False,
                                              client=client if client is not None else "synchronous", source=source)
            best = min(best, time.perf_counter() - t)
    land = int(source.land_mask().sum())
    a, b = production.year_days(source.time, year)
    size = files[0].stat().st_size
    return {"pixel_days": land * (b - a), "wall_s": best, "rate": land * (b - a) / best, "bytes": size,
            "bytes_per_pixel_day": size / (land * (b - a)), "file": files[0].name}


# ---- (d) ------------------------------------------------------------------------------------------------
CHILD = r"""
import json, sys, time, psutil
from glass_sm import config, production
from glass_sm.models import load_checkpoint
params, results, cube, ckpt, year = sys.argv[1:6]
cfg = config.load(params, {"run.results_dir": results, "production.scheduler": "synchronous",
                           "production.torch_threads": 1, "production.overwrite": True})
src = production.CubeTileSource(cube)
load_checkpoint(ckpt).check_cube(src.ds)
base = psutil.Process().memory_info().rss
t = time.perf_counter()
production.run_production(cfg, checkpoint_path=ckpt, years=[int(year)], progress=False, source=src)
# VmHWM is this process's own high-water mark; ru_maxrss would include the parent's RSS (kept across exec)
hwm = [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({"peak_rss": hwm, "baseline_rss": base,
                  "seconds": time.perf_counter() - t, "land_pixels": int(src.land_mask().sum())}))
"""


def tiled_cube(cube_path: Path, days: int, out: Path, factor: int = 2) -> tuple[Path, Path]:
    """The first ``days`` days of the cube, and the same tiled ``factor x factor`` (4x the area)."""
    with production.CubeTileSource(cube_path).ds as cube:
        sub = cube.isel(time=slice(0, days)).load()
    sub = sub.drop_vars([v for v in ("platform",) if v in sub.variables])
    small = out / "mem_small.zarr"
    sub.to_zarr(small, mode="w", consolidated=False)
    lat, lon = sub["lat"].values, sub["lon"].values
    dlat, dlon = lat[1] - lat[0] if len(lat) > 1 else -0.05, lon[1] - lon[0] if len(lon) > 1 else 0.05
    new_lat = lat[0] + dlat * np.arange(factor * len(lat))
    new_lon = lon[0] + dlon * np.arange(factor * len(lon))
    big = xr.Dataset(attrs=sub.attrs)
    for name, da in sub.data_vars.items():
        reps = [factor if d in ("lat", "lon") else 1 for d in da.dims]
        big[name] = (da.dims, np.tile(da.values, reps), da.attrs)
    big = big.assign_coords(time=sub["time"], lat=np.round(new_lat, 6), lon=np.round(new_lon, 6))
    for c in ("time", "lat", "lon"):
        big[c].attrs.update(sub[c].attrs)
    large = out / "mem_large.zarr"
    big.to_zarr(large, mode="w", consolidated=False)
    return small, large


def peak_memory(params: str, cube: Path, ckpt: Path, year: int, tmp: Path, tag: str, repo: Path) -> dict:
    res = subprocess.run([sys.executable, "-c", CHILD, params, str(tmp / f"mem_{tag}"), str(cube), str(ckpt),
                          str(year)], capture_output=True, text=True, cwd=repo)
    if res.returncode != 0:
        raise RuntimeError(f"memory child failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---- (e) ------------------------------------------------------------------------------------------------
def naive_rate(lm, cube_path: Path, n_windows: int) -> float:
    """One window per output day, gathered, normalised and predicted one at a time (batch size 1)."""
    torch.set_num_threads(1)
    src = production.CubeTileSource(cube_path)
    rows, cols = np.nonzero(src.land_mask())
    p = min(len(rows), max(1, n_windows // 300))
    days = lm.window - 1 + n_windows // p + 1
    identity = Normalizer(lm.spec, np.zeros(lm.n_features), np.ones(lm.n_features))
    raw = src.read_features(rows[:p], cols[:p], slice(0, days), identity)  # raw units, (days, p, F)
    L = lm.window
    t = time.perf_counter()
    n = 0
    with torch.inference_mode():
        for k in range(p):
            for d in range(L - 1, days):
                x = lm.normalizer.apply(raw[d - L + 1:d + 1, k][None])
                lm.model(torch.from_numpy(x))
                n += 1
                if n >= n_windows:
                    break
            if n >= n_windows:
                break
    return n / (time.perf_counter() - t)



def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("params", nargs="?", default="params/demo.yaml")
    ap.add_argument("--quick", action="store_true",
                    help="the same rows with less repetition (make all; see QUICK); make bench is the full run")
    ap.add_argument("--days", type=int, default=None,
                    help="days of the cube used for the memory runs (d) (default 120, quick 60)")
    ap.add_argument("--naive-windows", type=int, default=3000, help="windows of the naive baseline (e)")
    ap.add_argument("--results-dir", default=None, help="override run.results_dir (default: the params file's)")
    ap.add_argument("--if-checkpoint-changed", action="store_true",
                    help="do nothing when bench.json measured the run's current checkpoint (same sha256)")
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile of the module (slow)")
    ap.add_argument("--repo", default=None, help="repository root (default: found above this file)")
    args = ap.parse_args(argv)
    repo = find_repo(args.repo) if args.repo else find_repo()
    params = str(Path(args.params).resolve())
    base = {"run.results_dir": args.results_dir} if args.results_dir else {}
    cfg = config.load(params, base)
    paths = RunPaths(results_root(cfg, repo))
    ckpt_sha = file_sha256(paths.checkpoint) if paths.checkpoint.is_file() else None
    if args.if_checkpoint_changed and ckpt_sha is not None and measured_checkpoint(paths) == ckpt_sha:
        print(f"bench: up to date ({paths.tables / 'bench.json'} measured the current checkpoint)")
        return 0
    st = dict(QUICK if args.quick else FULL)
    if args.days is not None:
        st["memory_days"] = args.days
    reps_note = "1 repetition (quick)" if st["repetitions"] == 1 else f"median repetition of {st['repetitions']}"
    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="glass_sm_bench_"))
    sections: dict[str, float] = {}
    rows, info = [], {"params": params, "run": cfg.run.name, "cpu": cpu_name(), "cores": N_CORES,
                      "torch": torch.__version__, "python": platform.python_version(),
                      "load_average_at_start": os.getloadavg(), "checkpoint_sha256": ckpt_sha,
                      "mode": "quick" if args.quick else "full", "quick": bool(args.quick), "settings": st,
                      "production_device": resolve_device(cfg.production.device, "production.device"),
                      "section_seconds": sections}

    def lap(name: str, t0: list) -> None:
        now = time.perf_counter()
        sections[name] = round(now - t0[0], 2)
        t0[0] = now

    def row(key, quantity, value, unit, note=""):
        rows.append({"key": key, "quantity": quantity, "value": value, "unit": unit, "note": note})
        print(f"{key:>4}  {quantity:<58} {value:>14,.4g} {unit:<14} {note}", flush=True)

    try:
        cube_path, cube_note = get_cube(cfg, paths, tmp)
        ckpt, ckpt_note = get_checkpoint(cfg, paths, cube_path, tmp)
        lm = load_checkpoint(ckpt)
        info.update(cube=cube_note, checkpoint=ckpt_note, hparams=lm.hparams, window=lm.window,
                    n_features=lm.n_features, **machine_details(cfg))
        flops = count_flops(lm.model)
        print(f"machine: {info['cpu']}, {N_CORES} cores, torch {torch.__version__}; load average "
              f"{info['load_average_at_start'][0]:.2f}")
        print(f"flags: {' '.join(info['cpu_flags'])}; ATen {info['aten_cpu_capability']}, oneDNN {info['onednn']}, "
              f"MKL {info['mkl']}; threads {info['threads']}; optional backends {info['optional_backends']}")
        print(f"model: {ckpt_note}\ncube: {cube_note}\nmode: {info['mode']} {st}\n")
        t0 = [time.perf_counter()]
        lap("setup", [t_start])

        # (a) and (b), 3 repetitions (quick: 1): b/a is their median (quick: that repetition's)
        pc = cfg.production
        mb, bs = pc.model_batch, pc.batch_size
        nw, nr = st["rate_windows"], st["rate_repeats"]
        configs = {"1 torch thread": (1, 1), f"{N_CORES} torch threads": (N_CORES, 1),
                   f"{N_CORES} Python threads x 1 torch thread": (1, N_CORES)}
        reps = []
        for rep in range(st["repetitions"]):
            g_all, g_one = gemm_rate(N_CORES, repeats=st["gemm_repeats"]), gemm_rate(1, repeats=st["gemm_repeats"])
            rates = {name: engine_rate(lm.model, lm.window, lm.n_features, tt, pt, mb, bs, n_windows=nw, repeats=nr)
                     for name, (tt, pt) in configs.items()}
            reps.append((g_all, g_one, rates))
            best = max(rates, key=rates.get)
            print(f"      repetition {rep + 1}: GEMM {max(g_all, g_one) / 1e9:.1f} GFLOP/s, model {rates[best]:,.0f} "
                  f"windows/s ({best}), b/a {rates[best] * flops / max(g_all, g_one):.3f}", flush=True)
        ratios = [max(r[2].values()) * flops / max(r[0], r[1]) for r in reps]
        k = ratios.index(sorted(ratios)[len(ratios) // 2])  # the median repetition
        g_all, g_one, rates = reps[k]
        row("a", f"fp32 GEMM 4096^3, {N_CORES} threads", g_all / 1e9, "GFLOP/s", reps_note)
        row("a1", "fp32 GEMM 4096^3, 1 thread", g_one / 1e9, "GFLOP/s")
        for name in configs:
            row("b*", f"production engine, {name}, model_batch {mb}", rates[name], "windows/s",
                f"{rates[name] * flops / 1e9:.1f} GFLOP/s")
        best_name = max(rates, key=rates.get)
        b_rate = rates[best_name]
        row("b", "bare-model inference (best)", b_rate, "pixel-days/s", best_name)
        row("b", "model FLOPs per window (analytic)", flops / 1e6, "MFLOP")
        row("b", "model FLOP/s", b_rate * flops / 1e9, "GFLOP/s")
        row("b/a", f"model FLOP/s / GEMM FLOP/s ({'median of 3' if len(ratios) == 3 else reps_note})",
            statistics.median(ratios), "fraction",
            "target >= 0.6; repetitions " + ", ".join(f"{r:.3f}" for r in ratios))
        lap("a+b", t0)
        ref = model_rate(lm.model, lm.window, lm.n_features, 1, 1, mb, n_windows=nw, repeats=nr)
        row("b-ref", f"module forward (reference), 1 torch thread, batch {mb}", ref, "windows/s",
            f"engine / module {rates['1 torch thread'] / ref:.2f}x")
        with production.without_onednn():
            ref_off = model_rate(lm.model, lm.window, lm.n_features, 1, 1, mb, n_windows=nw, repeats=nr)
        row("b-ref", f"module forward, oneDNN off (ATen LSTM), batch {mb}", ref_off, "windows/s")
        big = model_rate(lm.model, lm.window, lm.n_features, 1, N_CORES, 8192, n_windows=16384,
                         repeats=st["mb_repeats"])
        row("b-ref", f"module forward, {N_CORES} Python threads, batch 8192", big, "windows/s",
            "large batches fall out of cache")
        for size in (128, 256, 512, 1024, 2048):
            r = engine_rate(lm.model, lm.window, lm.n_features, 1, 1, size, max(bs, size), n_windows=nw,
                            repeats=st["mb_repeats"])
            row("b-mb", f"production engine, 1 torch thread, model_batch {size}", r, "windows/s")
        if args.compile:
            compile_s, comp = compiled_rate(lm.model, lm.window, lm.n_features, mb)
            row("b-ref", f"torch.compile(module), 1 torch thread, batch {mb}", comp, "windows/s",
                f"after {compile_s:.0f} s of compiling")
        if torch.cuda.is_available():  # for the GPU-hours of the paper-scale estimate
            gpu = gpu_rate(lm.model, lm.window, lm.n_features)
            row("b-gpu", f"bare model on {torch.cuda.get_device_name(0)}, batch 65536", gpu, "pixel-days/s")
        lap("b-ref+b-mb+b-gpu", t0)

        # (p)
        parts = profile_engine(lm.model, lm.window, lm.n_features, mb, bs, n_windows=nw)
        total = parts["total (wall)"]
        for name, v in parts.items():
            if name.startswith("Python"):
                row("p", f"profile: {name}", v, "fraction")
            else:
                row("p", f"profile: {name}", v * 1e6, "us/window", f"{v / total:.1%} of the total")
        lap("p", t0)

        # (c)
        src = production.CubeTileSource(cube_path)
        year = int(src.time.year[min(len(src.time) - 1, lm.window)])
        e2e = {}
        for sched in ("distributed", "synchronous"):
            e2e[sched] = end_to_end(params, cube_path, ckpt, year, tmp, sched, repeats=st["e2e_repeats"])
            row("c*", f"end-to-end production {year}, {sched}", e2e[sched]["rate"], "pixel-days/s",
                f"{e2e[sched]['pixel_days']:,} pixel-days in {e2e[sched]['wall_s']:.1f} s")
        c_sched = cfg.production.scheduler
        c_rate = e2e[c_sched]["rate"]
        row("c", f"end-to-end production (configured: {c_sched})", c_rate, "pixel-days/s")
        row("c/b", "end-to-end / bare model (best)", c_rate / b_rate, "fraction", "target >= 0.8")
        row("c/b*", "synchronous end-to-end / bare model on 1 thread",
            e2e["synchronous"]["rate"] / rates["1 torch thread"], "fraction", "same parallelism")
        key2 = f"{N_CORES} Python threads x 1 torch thread"
        row("c/b*", f"distributed end-to-end / bare model on {key2}",
            e2e["distributed"]["rate"] / rates[key2], "fraction", "same parallelism")
        row("c", "written bytes per pixel-day (int16, zlib)" if cfg.production.encoding == "int16" else
            "written bytes per pixel-day", e2e[c_sched]["bytes_per_pixel_day"], "B")
        lap("c", t0)

        # (d)
        days = min(st["memory_days"], len(src.time))
        small, large = tiled_cube(cube_path, days, tmp)
        y0 = int(src.time.year[0])
        m_small = peak_memory(params, small, ckpt, y0, tmp, "small", repo)
        m_large = peak_memory(params, large, ckpt, y0, tmp, "large", repo)
        row("d", f"peak RSS, domain ({m_small['land_pixels']} land px x {days} d)", m_small["peak_rss"] / 2**20, "MiB",
            f"{(m_small['peak_rss'] - m_small['baseline_rss']) / 2**20:.0f} MiB above imports+model")
        row("d", f"peak RSS, 4x domain ({m_large['land_pixels']} land px)", m_large["peak_rss"] / 2**20, "MiB",
            f"{(m_large['peak_rss'] - m_large['baseline_rss']) / 2**20:.0f} MiB above imports+model")
        row("d", "peak RSS ratio 4x / 1x", m_large["peak_rss"] / m_small["peak_rss"], "ratio", "target <= 1.2")
        bound = production.tile_memory_bytes(cfg.production.tile_size, lm.window, lm.n_features,
                                             cfg.production.batch_size)
        row("d", "analytic array bound per task (tile_memory_bytes)", bound / 2**20, "MiB")
        lap("d", t0)

        # (e)
        naive = naive_rate(lm, cube_path, args.naive_windows)
        row("e", "naive baseline (1 window per call, per-window normalise)", naive, "pixel-days/s")
        row("b/e", "speed-up of batched inference over naive", b_rate / naive, "x")
        lap("e", t0)

        # (bf16)
        n_bf = 512 if gemm_rate(1, 256, 2, torch.bfloat16) < 20e9 else 4096  # no native bf16: a slow fallback
        g_bf = max(gemm_rate(N_CORES, n_bf, 3, torch.bfloat16), gemm_rate(1, n_bf, 3, torch.bfloat16))
        row("bf16", f"bf16 GEMM {n_bf}^3 (best of 1 and {N_CORES} threads)", g_bf / 1e9, "GFLOP/s",
            "oneDNN bf16 " + ("available" if info["onednn_bf16"] else "not available on this CPU (AVX512-BF16/AMX)"))
        r_bf = engine_rate(lm.model, lm.window, lm.n_features, 1, 1, mb, bs, "bf16", n_windows=2048, repeats=1)
        row("bf16", f"bf16 production engine, 1 torch thread, model_batch {mb}", r_bf, "windows/s",
            f"fp32: {rates['1 torch thread']:,.0f}")
        row("bf16", "bf16 model FLOP/s / bf16 GEMM FLOP/s", r_bf * flops / g_bf, "fraction")
        d_bf = bf16_product_difference(cube_path, lm, year, tmp)
        row("bf16", f"bf16 - fp32 product RMSE ({d_bf['pixel_days']:,} pixel-days, {year})", d_bf["rmse"], "m3 m-3",
            "target <= 1e-4")
        row("bf16", "bf16 - fp32 product max |difference|", d_bf["max_abs"], "m3 m-3", f"block {d_bf['tile']}")
        row("bf16", "bf16: pixel-days whose stored int16 value changes", d_bf["int16_changed"], "fraction")
        lap("bf16", t0)

        # (f), (g), (h), (s): data preparation (bench_prep)
        info["prep"] = bench_prep.run_prep(cfg, params, base, repo, tmp, args.quick, row)
        lap("prep", t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    info["seconds"] = time.perf_counter() - t_start
    table = pd.DataFrame(rows)
    out = write_table(paths, "bench", table)
    with atomic_write(paths.tables / "bench.json") as tmp_json:
        tmp_json.write_text(json.dumps({"machine": info, "rows": rows}, indent=1, default=str))
    print(f"\nwrote {out} and bench.json ({info['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
