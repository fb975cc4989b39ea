"""glass_sm.cluster: the in-process mode and argument checks (a real scheduler with worker processes is exercised
by tests/integration/test_dask_cluster.py)."""

from __future__ import annotations

import pytest

from glass_sm.cluster import cluster_client


def test_synchronous_yields_no_client():
    with cluster_client("tcp://ignored:1", n_workers=4, scheduler="synchronous") as c:
        assert c is None  # no cluster made, no connection tried


def test_bad_scheduler_and_counts_rejected_before_any_cluster():
    with pytest.raises(ValueError, match="scheduler"):
        with cluster_client(scheduler="threads"):
            pass
    with pytest.raises(ValueError, match="n_workers"):
        with cluster_client(n_workers=0):
            pass


def test_local_workers_spawn_without_dask_malloc_trim(monkeypatch):
    """The LocalCluster's workers run under glibc's own malloc thresholds (LOCAL_WORKER_ENVIRON), not Dask's
    MALLOC_TRIM_THRESHOLD_=65536, and without the dashboard's profiler; the caller's Dask configuration is left
    as it was."""
    import os

    import dask

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    before = dask.config.get("distributed.nanny.pre-spawn-environ")
    with cluster_client(None, n_workers=1, threads_per_worker=1) as client:
        env = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        omp = client.run(lambda: os.environ.get("OMP_NUM_THREADS"))
        prof = client.run(lambda: dask.config.get("distributed.worker.profile.enabled"))
    assert list(env.values()) == [None]
    assert list(omp.values()) == ["1"]  # Dask's other worker settings kept
    assert list(prof.values()) == [False]  # no dashboard here: no profiler sampling the worker threads
    assert dask.config.get("distributed.nanny.pre-spawn-environ") == before
