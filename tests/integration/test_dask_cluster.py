"""A real distributed engine (issue 17): a ``dask scheduler`` process and two ``dask worker`` processes started on
localhost from the command line, as a user starts them on a cluster, and stage 01's day-major ingest and stage 04's
production run through ``scheduler_address``: their outputs are byte-identical to the in-process
(``scheduler = 'synchronous'``) run.

The cluster is one module-scoped fixture (:func:`scheduler_address`): the scheduler listens on 127.0.0.1 on a
port the OS chooses (``--port 0``; the address is read from its ``--scheduler-file``), the workers have one process
and one thread each, and a memory limit of :data:`WORKER_MEMORY` (the toy runs need < 0.5 GB per worker; a limit
keeps a runaway task from taking the shared test machine: the nanny restarts the worker and the test fails).
Each process runs in its own process group, so the finalizer ends every process it started (nannies and the worker
processes they spawned) with SIGTERM, then SIGKILL, whatever happened in the tests; ``--idle-timeout`` (scheduler)
and ``--death-timeout`` (workers) end them too if pytest itself is killed before its finalizers run.

Every test also checks that the work really ran in the worker processes (their executed-task counters grew).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import xarray as xr
from distributed import Client

from glass_sm import config
from glass_sm.contract import read_table
from glass_sm.paths import RunPaths

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "params" / "smoke.yaml"
DASK = Path(sys.executable).with_name("dask")  # the CLI of the environment's own `distributed`
WORKER_MEMORY = "2GB"  #: per worker process: ~4x the toy runs' peak, far below the machine's memory
STARTUP_S = 90  #: bound on every wait for the cluster to come up (a loaded 2-core machine imports slowly)
STOP_S = 20  #: bound on a graceful stop before SIGKILL

ZARR_METADATA = frozenset({"zarr.json", ".zmetadata", ".zgroup", ".zarray", ".zattrs"})


# ---------------------------------------------------------------------------------------------------------
# the cluster: scheduler + 2 workers, as separate processes
# ---------------------------------------------------------------------------------------------------------
def _spawn(args: list, log: Path) -> subprocess.Popen:
    """Start ``args`` in a new session (its own process group), stdout and stderr to ``log``."""
    with open(log, "wb") as fh:
        return subprocess.Popen([str(a) for a in args], stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=log.parent)


def _logs(folder: Path) -> str:
    """The last lines of every process log (for failure messages)."""
    return "\n".join(f"--- {p.name}:\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:])
                     for p in sorted(folder.glob("*.log")))


def _group_members(pgids: set[int]) -> list[psutil.Process]:
    """Live (non-zombie) processes whose process group is one of ``pgids``."""
    alive = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) in pgids:
                alive.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return alive


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each process group (workers first, then the scheduler), wait up to :data:`STOP_S`, SIGKILL the
    groups, and fail if any process of them is still alive."""
    for p in reversed(procs):
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            pass
    pgids = {p.pid for p in procs}
    for pgid in pgids:  # stragglers (a worker process whose nanny has gone) and anything that ignored SIGTERM
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for p in procs:
        try:
            p.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + STOP_S
    while (left := _group_members(pgids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"dask processes left running after the test: {[p.pid for p in left]}"


@pytest.fixture(scope="module")
def scheduler_address(tmp_path_factory):
    """Start ``dask scheduler`` and two ``dask worker`` processes (1 process x 1 thread each) on localhost; yield
    the scheduler's address ``tcp://127.0.0.1:<port>``; stop and check all of them at the end."""
    assert DASK.is_file(), f"the dask command-line tool is missing: {DASK} (package distributed)"
    folder = tmp_path_factory.mktemp("dask_cluster")
    scheduler_file = folder / "scheduler.json"
    procs: list[subprocess.Popen] = []
    try:
        procs.append(_spawn([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                             "--scheduler-file", scheduler_file, "--idle-timeout", "300"], folder / "scheduler.log"))
        deadline = time.monotonic() + STARTUP_S
        while not scheduler_file.is_file():
            assert procs[0].poll() is None, f"dask scheduler exited (rc {procs[0].returncode}):\n{_logs(folder)}"
            assert time.monotonic() < deadline, f"dask scheduler not up after {STARTUP_S} s:\n{_logs(folder)}"
            time.sleep(0.1)
        time.sleep(0.1)  # the file is written whole, but give the writer a moment to close it
        address = json.loads(scheduler_file.read_text())["address"]
        for i in range(2):
            procs.append(_spawn([DASK, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                                 "--host", "127.0.0.1", "--memory-limit", WORKER_MEMORY, "--death-timeout", "60",
                                 "--name", f"glass-sm-test-{i}", "--local-directory", folder / f"worker{i}"],
                                folder / f"worker{i}.log"))
        with Client(address, timeout=STARTUP_S) as client:
            try:
                client.wait_for_workers(2, timeout=STARTUP_S)
            except TimeoutError as e:
                raise AssertionError(f"2 dask workers not up after {STARTUP_S} s:\n{_logs(folder)}") from e
        yield address
    finally:
        _stop(procs)


def executed_tasks(address: str) -> dict[str, int]:
    """Tasks each worker process of the cluster has executed so far (``WorkerState.executed_count``)."""
    with Client(address, timeout=30) as client:
        return client.run(lambda dask_worker: dask_worker.state.executed_count)


def test_cluster_has_two_separate_worker_processes(scheduler_address):
    with Client(scheduler_address, timeout=30) as client:
        info = client.scheduler_info(n_workers=-1)["workers"]
        pids = client.run(os.getpid)
    assert len(info) == 2 and all(w["nthreads"] == 1 for w in info.values())
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()


# ---------------------------------------------------------------------------------------------------------
# stage 04: production through production.scheduler_address
# ---------------------------------------------------------------------------------------------------------
WINDOW = 5
TOY_START, TOY_END = "1999-10-01", "2000-12-31"


def _toy_cfg(results_dir: Path, **production):
    """The toy run (as in tests/unit/production: tiles of 3 cells on a 7 x 5 cube, one torch thread per task)."""
    over = {"run.name": "toy", "run.results_dir": str(results_dir), "samples.window": WINDOW,
            "period.start": TOY_START, "period.end": TOY_END, "production.tile_size": 3,
            "production.scheduler": "synchronous", "production.batch_size": 500, "production.model_batch": 128,
            "production.torch_threads": 1}
    over.update({f"production.{k}": v for k, v in production.items()})
    return config.load(None, over)


def _write_toy_run(cfg) -> None:
    """A toy cube (zarr) and an untrained tiny AtLSTM production checkpoint under the run's folder."""
    import torch  # noqa: PLC0415 - only this test needs torch

    from glass_sm.data import FeatureSpec, Normalizer  # noqa: PLC0415
    from glass_sm.models import build_model  # noqa: PLC0415
    from glass_sm.models.checkpoint import save_production_checkpoint  # noqa: PLC0415
    from glass_sm.testing import make_toy_cube  # noqa: PLC0415

    paths = RunPaths.from_config(cfg)
    paths.data.mkdir(parents=True, exist_ok=True)
    cube = make_toy_cube(7, 5, TOY_START, TOY_END, seed=0, n_ocean=2)
    cube.drop_vars("platform", errors="ignore").to_zarr(paths.cube, mode="w", consolidated=False)
    spec = FeatureSpec.from_config(cfg, cube)
    mean, sd = np.zeros(spec.n_features), np.ones(spec.n_features)
    for j, (name, kind) in enumerate(zip(spec.names, spec.kinds)):
        if kind in ("dynamic", "static"):
            mean[j], sd[j] = np.nanmean(cube[name].values), np.nanstd(cube[name].values)
    torch.manual_seed(1)
    model = build_model("atlstm", spec.n_features, WINDOW, hidden_size=8, num_layers=1)
    with torch.no_grad():  # an untrained model centred on a plausible soil moisture (m3 m-3)
        model.head.net[-1].bias.fill_(0.25)
    save_production_checkpoint(paths.checkpoint, model, "atlstm", {"hidden_size": 8, "num_layers": 1},
                               Normalizer(spec, mean, sd), window=WINDOW)


def _netcdf_differences(a: Path, b: Path) -> list[str]:
    """What differs between two NetCDF files: global attributes, and each variable's dtype, shape, value bytes and
    attributes (a diagnosis for the failure message of a byte comparison)."""
    out = []
    with xr.open_dataset(a, decode_times=False) as x, xr.open_dataset(b, decode_times=False) as y:
        for k in sorted(set(x.attrs) | set(y.attrs)):
            if x.attrs.get(k) != y.attrs.get(k):
                out.append(f"global attribute {k}: {x.attrs.get(k)!r} != {y.attrs.get(k)!r}")
        for name in sorted(set(map(str, x.variables)) | set(map(str, y.variables))):
            if name not in x.variables or name not in y.variables:
                out.append(f"variable {name} only in one file")
                continue
            u, v = x[name], y[name]
            if u.dtype != v.dtype or u.shape != v.shape or u.values.tobytes() != v.values.tobytes():
                out.append(f"variable {name}: values differ")
            if u.attrs != v.attrs:
                out.append(f"variable {name}: attributes differ")
    return out


def test_production_through_scheduler_address_is_byte_identical(scheduler_address, tmp_path, one_torch_thread):
    """``run_production`` with ``production.scheduler_address`` = the external scheduler writes the same bytes as
    the in-process run. The whole files are compared: the product writes no wall-clock time, host or path
    (``glass_sm.product``: ``date_created`` comes from the inputs), so nothing needs excluding."""
    from glass_sm.product import annual_path  # noqa: PLC0415
    from glass_sm.production import make_tiles, run_production  # noqa: PLC0415

    local_cfg = _toy_cfg(tmp_path / "local")
    _write_toy_run(local_cfg)
    dist_cfg = _toy_cfg(tmp_path / "dist", scheduler="distributed", scheduler_address=scheduler_address)
    shutil.copytree(RunPaths.from_config(local_cfg).root, RunPaths.from_config(dist_cfg).root)  # same inputs

    local = run_production(local_cfg, years=[2000], progress=False)
    before = executed_tasks(scheduler_address)
    dist = run_production(dist_cfg, years=[2000], progress=False)
    after = executed_tasks(scheduler_address)

    mask = xr.open_zarr(RunPaths.from_config(local_cfg).cube, consolidated=False)["land_mask"].values.astype(bool)
    land_tiles = [t for t in make_tiles(*mask.shape, 3) if mask[t.slices].any()]  # tiles without land: no task
    assert len(land_tiles) >= 4
    assert sum(after.values()) - sum(before.values()) >= len(land_tiles), (before, after)  # ran in the workers
    assert [f.name for f in dist] == [f.name for f in local] == ["GLASS_AVHRR_SM_2000.nc"]
    pairs = [*zip(dist, local), (annual_path(dist[0].parent, 2000), annual_path(local[0].parent, 2000))]
    for f, ref in pairs:  # the daily year file and the annual-mean file
        assert f.is_file() and f.read_bytes() == ref.read_bytes(), _netcdf_differences(f, ref)
    timing = read_table(RunPaths.from_config(dist_cfg), "production_timing")
    assert timing["scheduler"].tolist() == ["distributed"]
    assert read_table(RunPaths.from_config(local_cfg), "production_timing")["scheduler"].tolist() == ["synchronous"]


# ---------------------------------------------------------------------------------------------------------
# stage 01: day-major ingest through cube.scheduler_address
# ---------------------------------------------------------------------------------------------------------
# the smoke domain (8 x 8 cells) over 75 days: 4 build tiles of 4 x 4 cells, and blocks of 8 days that do not
# divide the period (10 blocks, the last of 3 days); GLASS-MODIS labels from period.label_start 2000-02-24 on
INGEST = {"period.start": "2000-01-01", "period.end": "2000-03-15", "twin.n_stations": 2, "cube.build_tile": 4,
          "cube.space_chunk": 4, "cube.ingest_block_days": 8, "cube.ingest": "day_major"}


@pytest.fixture(scope="module")
def ingest_twin(tmp_path_factory):
    """The smoke twin's raw files over :data:`INGEST`'s period (~2 s)."""
    from glass_sm import twin  # noqa: PLC0415

    cfg = config.load(SMOKE, {"run.results_dir": str(tmp_path_factory.mktemp("ingest_twin")), **INGEST})
    with pytest.MonkeyPatch.context() as mp:
        # ~200 small files: writing them in this process beats spawning writer processes (which import the
        # package: ~10-20 s on a loaded 2-core machine); the bytes do not depend on it (glass_sm.twin.jobs)
        mp.setattr(twin, "WRITE_PROCESSES", 0, raising=False)  # short twins write in-process anyway (jobs.write_processes)
        twin.generate_twin(cfg, progress=False)
    return cfg


def _store_files(root: Path) -> dict[str, bytes]:
    """Every file of a zarr store (relative path -> bytes), without the ingest's ``_done`` markers."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "_done" not in p.relative_to(root).parts}


#: attributes that may legitimately differ between two builds of the same cube: ``history`` starts with the build
#: date (wall clock: two runs either side of midnight), and ``ingest_*`` (``ingest_method``) names the path that
#: read the sources, which the design keeps out of the cube's identity. Nothing else is excluded.
VOLATILE_ATTRS = ("history",)
VOLATILE_PREFIXES = ("ingest_",)


def _without_volatile(meta: bytes) -> dict:
    """A zarr metadata document with the volatile attributes removed (at any level of a consolidated document)."""
    def clean(obj):
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items()
                    if not (k in VOLATILE_ATTRS or k.startswith(VOLATILE_PREFIXES))}
        if isinstance(obj, list):
            return [clean(v) for v in obj]
        return obj
    return clean(json.loads(meta))


def _assert_same_store(a: Path, b: Path) -> None:
    """Two zarr stores hold the same arrays: the same files, every chunk byte-identical, the metadata equal except
    :data:`VOLATILE_ATTRS` / :data:`VOLATILE_PREFIXES`."""
    fa, fb = _store_files(a), _store_files(b)
    assert sorted(fa) == sorted(fb), f"{a} and {b} hold other files: {sorted(set(fa) ^ set(fb))}"
    chunks = [k for k in fa if k.rsplit("/", 1)[-1] not in ZARR_METADATA]
    meta = [k for k in fa if k.rsplit("/", 1)[-1] in ZARR_METADATA]
    assert chunks and meta
    differ = [k for k in chunks if fa[k] != fb[k]]
    assert not differ, f"chunks of {a.name} differ from {b.name}: {differ[:10]}"
    for k in meta:
        assert _without_volatile(fa[k]) == _without_volatile(fb[k]), f"{k} differs"


def test_ingest_through_scheduler_address_is_byte_identical(scheduler_address, ingest_twin, tmp_path):
    """``ingest`` + ``cube_from_ingest`` with ``cube.scheduler_address`` = the external scheduler write the same
    intermediate store and the same cube, chunk by chunk, as the in-process run."""
    from glass_sm.data import ingest as ingest_mod  # noqa: PLC0415
    from glass_sm.data import rechunk  # noqa: PLC0415

    root = ingest_twin.run.results_dir
    local_cfg = config.load(SMOKE, {"run.results_dir": root, **INGEST, "cube.scheduler": "synchronous"})
    dist_cfg = config.load(SMOKE, {"run.results_dir": root, **INGEST, "cube.scheduler": "distributed",
                                   "cube.scheduler_address": scheduler_address})

    local = ingest_mod.ingest(local_cfg, tmp_path / "local_ingest.zarr", progress=False)
    before = executed_tasks(scheduler_address)
    dist = ingest_mod.ingest(dist_cfg, tmp_path / "dist_ingest.zarr", progress=False)
    after = executed_tasks(scheduler_address)
    n_day_blocks = -(-75 // 8)  # 10 blocks of days per daily source (LST, ERA5-Land, labels), plus the albedo's
    assert local.n_blocks == dist.n_blocks >= 3 * n_day_blocks and dist.n_blocks_skipped == 0
    assert dist.n_files == local.n_files > 0 and dist.n_bytes == local.n_bytes > 0
    assert sum(after.values()) - sum(before.values()) >= dist.n_blocks, (before, after)  # all in the workers
    assert local.n_workers == 1 and dist.n_workers == 2  # the in-process run; both worker processes took blocks
    _assert_same_store(tmp_path / "local_ingest.zarr", tmp_path / "dist_ingest.zarr")

    cube_local = rechunk.cube_from_ingest(local_cfg, tmp_path / "local_ingest.zarr",
                                             tmp_path / "local_cube.zarr", progress=False)
    before = executed_tasks(scheduler_address)
    cube_dist = rechunk.cube_from_ingest(dist_cfg, tmp_path / "dist_ingest.zarr",
                                            tmp_path / "dist_cube.zarr", progress=False)
    after = executed_tasks(scheduler_address)
    # 4 build tiles: the first is harmonized by the caller (it lays out the store), the other 3 in the workers
    assert sum(after.values()) - sum(before.values()) >= 3, (before, after)
    _assert_same_store(Path(cube_local), Path(cube_dist))
