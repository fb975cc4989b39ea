"""Fitting models one by one and side by side in processes (glass_sm.fitting)."""

import numpy as np
import pytest
import torch

from glass_sm import config
from glass_sm.data import build_samples
from glass_sm.fitting import fit_models, predict_split
from glass_sm.testing import make_toy_cube

OVERRIDES = {
    "run.seed": 5, "samples.window": 6, "samples.block_size": 2, "samples.max_train_samples": 800,
    "samples.max_eval_samples": 300, "models.hparams.common.hidden_size": 8, "models.hparams.common.num_layers": 1,
    "models.hparams.xgboost.n_estimators": 10, "models.hparams.xgboost.max_depth": 3, "training.epochs": 2,
    "training.batch_size": 64, "training.torch_threads": 1,
}


@pytest.fixture(scope="module")
def samples():
    cfg = config.load(None, OVERRIDES)
    cube, _ = make_toy_cube(n_lat=4, n_lon=4, start="2000-03-01", end="2001-02-28", seed=2, with_truth=True)
    s = build_samples(cube, cfg)
    s.arrays()
    return s


def test_parallel_fits_equal_the_sequential_ones(samples, one_torch_thread):
    """Two spawned processes give bit-identical models, predictions and stop reasons, in the order of the jobs."""
    names = ["atlstm", "xgboost", "lstm"]
    out = {}
    for n in (1, 2):
        cfg = config.load(None, {**OVERRIDES, "training.parallel_fits": n})
        fits = fit_models([(m, samples, {"seed": 5}) for m in names], cfg)
        assert [f.name for f in fits] == names
        out[n] = [(f.stop_reason, f.epochs_run, predict_split(f.model, samples, "test")) for f in fits]
    for (r1, e1, p1), (r2, e2, p2) in zip(out[1], out[2]):
        assert (r1, e1) == (r2, e2)
        np.testing.assert_array_equal(p1, p2)
    assert torch.get_num_threads() == 1  # the parent's threads are untouched


def test_shared_feature_arrays_send_each_array_once_and_are_freed(samples):
    """Window views share one block; the jobs carry no array; the block holds the same bytes; unlinked on exit."""
    from multiprocessing import shared_memory

    from glass_sm.fitting import shared_feature_arrays

    short = samples.with_window(3)
    with shared_feature_arrays([samples, short, samples]) as (shared, jobs):
        assert len(shared) == 1 and [k for _, k in jobs] == [id(samples.arrays())] * 3
        assert all(stub._data is None for stub, _ in jobs) and samples._data is not None
        assert [stub.window for stub, _ in jobs] == [samples.window, 3, samples.window]
        (name, shape, dtype), = shared.values()
        block = shared_memory.SharedMemory(name=name)
        view = np.ndarray(shape, np.dtype(dtype), buffer=block.buf)
        np.testing.assert_array_equal(view, samples.arrays())
        del view
        block.close()
    with pytest.raises(FileNotFoundError):
        shared_memory.SharedMemory(name=name)


def test_fit_fingerprint_and_load_fit(samples, tmp_path, one_torch_thread):
    """The fingerprint changes with anything the fit depends on; a stored fit is read back only for the same one,
    with the same weights to the bit."""
    from glass_sm.data import build_samples
    from glass_sm.fitting import fit_fingerprint, fit_model, fit_record, load_fit
    from glass_sm.models.checkpoint import save_checkpoint

    cfg = config.load(None, OVERRIDES)
    fp = fit_fingerprint("atlstm", samples, cfg)
    assert fp == fit_fingerprint("atlstm", samples, config.load(None, {**OVERRIDES, "training.parallel_fits": 2}))
    assert fp == fit_fingerprint("atlstm", samples, cfg, seed=5, epochs=2)  # the defaults spelled out
    others = [fit_fingerprint("lstm", samples, cfg), fit_fingerprint("atlstm", samples, cfg, seed=6),
              fit_fingerprint("atlstm", samples, cfg, epochs=3),
              fit_fingerprint("atlstm", samples, config.load(None, {**OVERRIDES, "training.lr": 1e-3})),
              # the same samples built for a longer window: normalizer over the cells 9-day windows read
              fit_fingerprint("atlstm", build_samples(samples.cube, cfg, window=9).with_window(6), cfg)]
    assert len({fp, *others}) == 1 + len(others)
    fit = fit_model("atlstm", samples, cfg, progress=False)
    path = save_checkpoint(tmp_path / "m.pt", fit.model, "atlstm", fit.hparams, {"fit": fit_record(fit, fp)})
    assert load_fit(path, others[0]) is None and load_fit(tmp_path / "none.pt", fp) is None
    back = load_fit(path, fp)
    assert (back.epochs_run, back.best_epoch, back.stop_reason, back.hparams) == (
        fit.epochs_run, fit.best_epoch, fit.stop_reason, fit.hparams)
    assert back.history.equals(fit.history)
    np.testing.assert_array_equal(predict_split(back.model, samples), predict_split(fit.model, samples))


def test_without_room_in_dev_shm_the_jobs_carry_their_samples(samples, monkeypatch):
    import collections
    import os

    from glass_sm import fitting

    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm on this system")
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(fitting.shutil, "disk_usage", lambda path: usage(64 << 20, 64 << 20, 0))
    with fitting.shared_feature_arrays([samples, samples]) as (shared, jobs):
        assert shared == {} and [(s is samples, k) for s, k in jobs] == [(True, None), (True, None)]


def test_a_fitting_worker_leaves_when_its_parent_is_gone():
    """The pool initializer's watchdog: a process whose recorded parent is not its parent exits (code 1) at once,
    instead of fitting on with nobody to collect the result (a killed kernel or pipeline)."""
    import subprocess
    import sys

    code = ("import time; from glass_sm.fitting import _exit_with_parent; "
            "_exit_with_parent(-1, every_s=0.05); time.sleep(30)")
    done = subprocess.run([sys.executable, "-c", code], timeout=25)
    assert done.returncode == 1
