"""glass_sm.twin.jobs and the writers' worker processes: the bytes do not depend on who writes them.

``generate_twin`` writes with :data:`glass_sm.twin.jobs.WRITE_PROCESSES` worker processes when the period is
long (:func:`glass_sm.twin.jobs.write_processes`; the smoke twin is written in its own process); ``submit_*`` on
``Jobs(2)`` runs the jobs in workers and the ``write_*`` functions in the calling process. Every file must be the
same.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import xgboost
from pyhdf.SD import SD, SDC

from glass_sm.twin import jobs as tjobs
from glass_sm.twin import labels, writers


def _same_files(a, b, what):
    assert [p.name for p in a] == [p.name for p in b], what
    for x, y in zip(a, b):
        assert x.read_bytes() == y.read_bytes(), f"{what}: {x.name} differs"


def _square(x):
    """A job: the array squared and the worker's process id."""
    return [(np.asarray(x) ** 2, os.getpid())]


def _shared_sum(shared):
    """A job: the sums of shared arrays."""
    return [{k: float(v.sum()) for k, v in shared.arrays().items()}]


@pytest.fixture(scope="module")
def workers():
    """``Jobs(2)``: two spawned worker processes shared by the tests of this module. Starting them costs their
    imports (seconds each on a busy machine), which no test here is about; closed (jobs awaited, shared blocks
    unlinked) after the module's last test."""
    with tjobs.Jobs(2) as pool:
        yield pool


def test_jobs_in_order_inline_and_in_workers(workers, monkeypatch):
    xs = [np.arange(k, dtype=float) for k in range(12)]
    with tjobs.Jobs(0) as inline:
        got0 = tjobs.resolve([inline.submit(_square, x) for x in xs])
    pool = workers
    monkeypatch.setattr(pool, "max_pending", 2)                         # Jobs(2, max_pending=2) for this test
    got2 = tjobs.resolve([pool.submit(_square, x, bounded=True) for x in xs])
    shared = pool.share({"a": np.ones((3, 4), np.float32), "b": np.arange(5, dtype=np.int16)})
    sums = tjobs.resolve([pool.submit(_shared_sum, shared)])
    assert all(pid == os.getpid() for _, pid in got0)                  # inline: this process
    assert all(pid != os.getpid() for _, pid in got2)                  # workers: other processes
    for (a, _), (b, _), x in zip(got0, got2, xs):                       # submission order kept
        np.testing.assert_array_equal(a, x**2)
        np.testing.assert_array_equal(b, x**2)
    assert sums == [{"a": 12.0, "b": 10.0}]


def test_job_error_reaches_the_caller(workers):
    h = workers.submit(_square, "not a number")
    with pytest.raises(TypeError):
        tjobs.resolve([h])


def test_fast_string_attribute_same_bytes_as_pyhdf(tmp_path):
    """writers._hdf_attr's one-block CHAR8 path writes the bytes of pyhdf's own SDAttr.set."""
    text = "GROUP=GridStructure\n\tGridName=\"X\"\nEND\n" * 40 + "latin-1: \xe9"
    for mode in ("pyhdf", "fast"):
        d = tmp_path / mode
        d.mkdir()
        cwd = os.getcwd()
        os.chdir(d)                                   # HDF4 stores the name given to SDstart: the same bare name
        try:
            f = SD("t.hdf", SDC.WRITE | SDC.CREATE)
            s = f.create("v", SDC.INT16, (2, 3))
            for i in range(3):
                if mode == "pyhdf":
                    f.attr(f"g{i}").set(SDC.CHAR8, text)
                    s.attr(f"a{i}").set(SDC.CHAR8, text[: 10 + i])
                else:
                    writers._hdf_attr(f, f"g{i}", text, SDC.CHAR8)
                    writers._hdf_attr(s, f"a{i}", text[: 10 + i], SDC.CHAR8)
            s[:] = np.arange(6, dtype=np.int16).reshape(2, 3)
            s.endaccess()
            f.end()
        finally:
            os.chdir(cwd)
    assert (tmp_path / "pyhdf" / "t.hdf").read_bytes() == (tmp_path / "fast" / "t.hdf").read_bytes()
    f = SD(str(tmp_path / "fast" / "t.hdf"))
    assert f.attributes()["g0"] == text
    f.end()


def test_writers_in_this_process_match_the_workers(workers, smoke_twin, smoke_retrieval, smoke_sim, make_cfg,
                                                   tmp_path):
    """Every product written by worker processes (``submit_*`` on Jobs(2)) equals generate_twin's (the smoke twin
    is short: written in its own process, :func:`glass_sm.twin.jobs.write_processes`) and the ``write_*``
    functions' (Jobs(0))."""
    cfg0, files = smoke_twin
    _, s, av = smoke_sim
    _, _, retrieval = smoke_retrieval
    assert tjobs.WRITE_PROCESSES >= 1
    assert tjobs.write_processes(len(s["dates"])) == 0 < tjobs.write_processes(tjobs.MIN_DAYS_FOR_PROCESSES)
    cfg = make_cfg(tmp_path / "workers")
    jobs = workers                                                      # Jobs(2)
    pending = writers.submit_avhrr(cfg, av, s["dates"], s["grids"].out, jobs)
    pending["glass_modis"] = writers.submit_glass_modis(cfg, s, jobs, False, retrieval)
    pending["era5land"] = writers.submit_era5(cfg, s, jobs)
    pending["esa_cci"] = writers.submit_cci(cfg, s, jobs)
    stations, table = writers.submit_stations(cfg, s, jobs)
    pending["stations"] = stations
    pending["truth"] = [writers.submit_truth(cfg, s, table, tmp_path / "truth_w.nc", jobs)]
    done = tjobs.resolve(pending)
    for kind in ("albedo", "lst", "glass_modis", "era5land", "esa_cci", "stations"):
        _same_files(files[kind], done[kind], f"{kind} (workers)")
    assert done["truth"][0].read_bytes() == files["truth"].read_bytes()
    cfg = make_cfg(tmp_path)
    mine = writers.write_avhrr(cfg, av, s["dates"], s["grids"].out)
    _same_files(files["albedo"], mine["albedo"], "albedo")
    _same_files(files["lst"], mine["lst"], "lst")
    _same_files(files["glass_modis"], writers.write_glass_modis(cfg, s, retrieval=retrieval), "glass_modis")
    _same_files(files["era5land"], writers.write_era5(cfg, s), "era5land")
    _same_files(files["esa_cci"], writers.write_cci(cfg, s), "esa_cci")
    paths, table = writers.write_stations(cfg, s)
    _same_files(files["stations"], paths, "stations")
    truth = writers.write_truth(cfg, s, table, tmp_path / "truth.nc")
    assert truth.read_bytes() == files["truth"].read_bytes()
    assert not list(tmp_path.rglob(".staging*"))


def test_label_prediction_independent_of_threads(smoke_retrieval):
    """The labels' XGBoost prediction (labels.PREDICT_NTHREAD threads) is bit-identical with one thread."""
    cfg, s, retrieval = smoke_retrieval
    table = retrieval.table
    booster = labels.fit_retrieval(cfg, table)
    X = table[list(labels.FEATURES)].to_numpy(np.float32)
    X = np.concatenate([X] * 20)                              # enough rows for every thread to get some
    out = {}
    for n in (1, 2, 4):
        booster.set_param({"nthread": n})
        out[n] = booster.inplace_predict(X)
    assert out[1].tobytes() == out[2].tobytes() == out[4].tobytes()
    assert isinstance(booster, xgboost.Booster)
    np.testing.assert_array_equal(out[1][: len(table)], table["sm_fit"].to_numpy(np.float32))

