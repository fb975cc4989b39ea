"""A toy run for stage 04's tests: a zarr cube (with the twin's truth) and an untrained tiny AtLSTM checkpoint under
``<results_dir>/toy/``, and one uninterrupted synchronous production over it, shared by the read-only tests.

Fixtures: ``toy`` (the builders and constants, as attributes) and ``produced`` (the shared run).
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from glass_sm import config, production
from glass_sm.data import FeatureSpec, Normalizer
from glass_sm.models import build_model
from glass_sm.models.checkpoint import save_production_checkpoint
from glass_sm.paths import RunPaths
from glass_sm.production import run_production
from glass_sm.testing import make_toy_cube

WINDOW = 5
START, END = "1999-01-01", "2001-12-31"


def toy_overrides(results_dir, **production_overrides) -> dict:
    """Parameters of the toy run (tiles of 3 cells, synchronous, one torch thread)."""
    over = {"run.name": "toy", "run.results_dir": str(results_dir), "samples.window": WINDOW,
            "period.start": START, "period.end": END, "production.tile_size": 3,
            "production.scheduler": "synchronous", "production.batch_size": 500, "production.model_batch": 128,
            "figures.formats": ["png"], "figures.dpi": 40}
    over.update({f"production.{k}": v for k, v in production_overrides.items()})
    return over


def make_cfg(results_dir, **production_overrides):
    return config.load(None, toy_overrides(results_dir, **production_overrides))


def write_run(results_dir, n_lat=7, n_lon=5, seed=0):
    """Write the toy cube (zarr), its truth (NetCDF) and the checkpoint; returns ``(cfg, cube)``."""
    cfg = make_cfg(results_dir)
    paths = RunPaths.from_config(cfg)
    cube, truth = make_toy_cube(n_lat, n_lon, START, END, seed=seed, n_ocean=2, with_truth=True)
    write_cube(cfg, cube)
    truth.to_dataset().to_netcdf(paths.truth)
    write_checkpoint(cfg, cube)
    return cfg, cube


def write_cube(cfg, cube):
    """(Re)write the run's cube store ``data/cube.zarr`` from an in-memory cube."""
    paths = RunPaths.from_config(cfg)
    paths.data.mkdir(parents=True, exist_ok=True)
    cube.drop_vars("platform", errors="ignore").to_zarr(paths.cube, mode="w", consolidated=False)


def write_checkpoint(cfg, cube, bias=0.25):
    """(Re)write the run's untrained checkpoint, its output centred on ``bias`` (m3 m-3): a "retrained" model."""
    paths = RunPaths.from_config(cfg)
    spec = FeatureSpec.from_config(cfg, cube)
    mean, sd = np.zeros(spec.n_features), np.ones(spec.n_features)
    for j, (name, kind) in enumerate(zip(spec.names, spec.kinds)):
        if kind in ("dynamic", "static"):
            mean[j], sd[j] = np.nanmean(cube[name].values), np.nanstd(cube[name].values)
    norm = Normalizer(spec, mean, sd)
    torch.manual_seed(1)
    model = build_model("atlstm", spec.n_features, WINDOW, hidden_size=8, num_layers=1)
    with torch.no_grad():  # centre the untrained output on a plausible soil moisture
        model.head.net[-1].bias.fill_(bias)
    save_production_checkpoint(paths.checkpoint, model, "atlstm", {"hidden_size": 8, "num_layers": 1}, norm,
                               window=WINDOW)


def interrupt_after(monkeypatch, n_tiles, exc=KeyboardInterrupt):
    """Make the synchronous run raise ``exc`` after ``n_tiles`` tiles were written (an interrupted run)."""
    original = production.produce_tile
    done = []

    def produce_then_stop(*a, **k):
        if len(done) >= n_tiles:
            raise exc("interrupted by the test")
        done.append(original(*a, **k))
        return done[-1]

    monkeypatch.setattr(production, "produce_tile", produce_then_stop)
    return done


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Every production test runs with one torch thread (``one_torch_thread`` of tests/conftest.py)."""


@pytest.fixture(scope="session")
def toy():
    """``WINDOW``, ``START``, ``END``, ``overrides(results_dir, **production)``, ``cfg(results_dir, **production)``,
    ``write_run(results_dir)``, ``write_cube(cfg, cube)``, ``write_checkpoint(cfg, cube, bias)`` and
    ``interrupt_after(monkeypatch, n_tiles, exc)``."""
    return SimpleNamespace(WINDOW=WINDOW, START=START, END=END, overrides=toy_overrides, cfg=make_cfg,
                           write_run=write_run, write_cube=write_cube, write_checkpoint=write_checkpoint,
                           interrupt_after=interrupt_after)


@pytest.fixture(scope="session")
def produced(tmp_path_factory):
    """One uninterrupted synchronous run: ``cfg``, ``cube``, ``files`` (the year files), ``root``."""
    root = tmp_path_factory.mktemp("prod")
    cfg, cube = write_run(root)
    files = run_production(cfg, progress=False)
    return {"cfg": cfg, "cube": cube, "files": files, "root": root}
