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


# ----------------------------------------------------------------------------------------------------------
# run_tasks with a generator of items on a distributed client (threads of this process)
# ----------------------------------------------------------------------------------------------------------
def _mark(folder, item, pause=0.0):
    """A task: waits ``pause`` s, writes ``<folder>/<item>.done`` and returns ``item * 10``."""
    import time
    from pathlib import Path

    time.sleep(pause)
    Path(folder, f"{item}.done").write_text("")
    return item * 10


class _Bar:
    def __init__(self):
        self.n = 0

    def update(self, k):
        self.n += k


class _Recording:
    """A client whose ``submit`` keeps the futures it returns (to see what became of them)."""

    def __init__(self, client):
        self.client, self.futures = client, []

    def submit(self, *args, **kw):
        fut = self.client.submit(*args, **kw)
        self.futures.append(fut)
        return fut


def test_run_tasks_takes_a_generator_on_a_cluster(threads_client, tmp_path):
    from glass_sm.cluster import run_tasks

    got, bar = [], _Bar()
    run_tasks(threads_client, _mark, (i for i in range(7)), (str(tmp_path),), "gen", bar, got.append)
    assert sorted(got) == [0, 10, 20, 30, 40, 50, 60] and bar.n == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i}.done" for i in range(7)]
    got.clear()
    run_tasks(None, _mark, (i for i in range(3)), (str(tmp_path),), "gen", bar, got.append)  # in this process
    assert got == [0, 10, 20] and bar.n == 10


def test_run_tasks_generator_error_cancels_the_submitted_tasks(threads_client, tmp_path):
    import time

    from glass_sm.cluster import run_tasks

    def items():
        yield from range(3)
        raise ValueError("listing failed")

    rec, got = _Recording(threads_client), []
    with pytest.raises(ValueError, match="listing failed"):
        run_tasks(rec, _mark, items(), (str(tmp_path), 0.5), "gen-err", _Bar(), got.append)
    assert len(rec.futures) == 3 and got == []  # no result handed on after the error
    deadline = time.monotonic() + 10
    while any(f.status == "pending" for f in rec.futures) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {f.status for f in rec.futures} <= {"cancelled", "finished"}, [f.status for f in rec.futures]


def test_run_tasks_submits_each_item_as_the_generator_yields_it(threads_client, tmp_path):
    """The generator waits, before its last item, for the file of the first task: it appears only if that task
    was sent (and ran) before the generator was exhausted."""
    import time

    from glass_sm.cluster import run_tasks

    seen = {}

    def items():
        yield 0
        yield 1
        deadline = time.monotonic() + 10
        while not (tmp_path / "0.done").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        seen["first_done_before_last_item"] = (tmp_path / "0.done").exists()
        yield 2

    got = []
    run_tasks(threads_client, _mark, items(), (str(tmp_path),), "gen-lazy", _Bar(), got.append)
    assert seen == {"first_done_before_last_item": True}
    assert sorted(got) == [0, 10, 20]


def _fails_on(folder, item, bad):
    """A task: raises for ``item == bad``, else as :func:`_mark`."""
    if item == bad:
        raise RuntimeError(f"block {item} is corrupt")
    return _mark(folder, item)


def test_run_tasks_hands_each_finished_item_then_the_results_in_submission_order(threads_client, tmp_path):
    from glass_sm.cluster import run_tasks

    finished, got, bar = [], [], _Bar()
    run_tasks(threads_client, _mark, [3, 1, 2, 0], (str(tmp_path),), "fin", bar, got.append, finished.append)
    assert sorted(finished) == [0, 1, 2, 3] and bar.n == 4  # each item once, as its task finished
    assert got == [30, 10, 20, 0]  # the results, gathered at the end, in the order submitted
    finished.clear(), got.clear()
    run_tasks(None, _mark, [2, 1], (str(tmp_path),), "fin", bar, got.append, finished.append)  # in this process
    assert finished == [2, 1] and got == [20, 10]


def test_run_tasks_raises_a_task_error_and_hands_on_no_result(threads_client, tmp_path):
    from glass_sm.cluster import run_tasks

    got = []
    with pytest.raises(RuntimeError, match="block 2 is corrupt"):
        run_tasks(threads_client, _fails_on, range(5), (str(tmp_path), 2), "err", _Bar(), got.append)
    assert got == []
