"""The Dask cluster of a stage: an existing scheduler, a LocalCluster made here, or none (in-process).

One context manager, :func:`cluster_client`, shared by the day-major ingest of stage 01
(:mod:`glass_sm.data.ingest`, keys ``cube.scheduler_address``, ``cube.n_workers``, ``cube.threads_per_worker``,
``cube.scheduler``) and the production of stage 04 (:mod:`glass_sm.production`, the same keys under
``production``):

* ``scheduler='synchronous'``: no cluster, ``None`` is yielded and the caller computes in its own process (tests,
  debugging, monkeypatched readers);
* ``scheduler_address`` given: a :class:`distributed.Client` connected to that scheduler (a ``dask scheduler``
  process with ``dask worker`` processes, or a ``dask-jobqueue`` SLURM/PBS cluster), closed on exit; the scheduler
  and its workers are left running. The workers must see the same file system as the caller (the data folders
  ``data.*_dir``, the results folder) and have the package installed in the same environment;
* otherwise a :class:`distributed.LocalCluster` of ``n_workers`` processes x ``threads_per_worker`` threads, without
  dashboard, on a free port, closed on exit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from typing import Iterator

__all__ = ["cluster_client", "section_client", "run_tasks", "LOCAL_WORKER_ENVIRON"]

#: Dask configuration of the LocalCluster's workers (applied while they are spawned):
#:
#: - ``MALLOC_TRIM_THRESHOLD_`` unset. Dask sets it to 65536 in every worker it spawns
#:   (``distributed.nanny.pre-spawn-environ``) so that glibc hands freed memory back to the OS early; setting it also
#:   switches off glibc's adaptive mmap threshold (mallopt(3)), which stays at 128 KiB, so each array of a reader's
#:   window, a file's field or a block (0.1-10 MB, allocated and freed per file) is a fresh ``mmap`` whose pages
#:   fault in again. Measured on the 2-core development machine (Intel Xeon, 2026-12-01, one year of the 5 deg
#:   demo): the day-major ingest on 2 workers took 1.24-1.50 s with Dask's setting and 0.94-1.12 s without it (three
#:   alternating runs each), with the same store; in one process, three ingests of that year made 346,000 minor page
#:   faults with it and 90,000 without. Unset, glibc's own adaptive thresholds apply; a worker's memory stays bounded
#:   by its task's arrays (glass_sm.data.ingest.block_memory_bytes), and ``MALLOC_TRIM_THRESHOLD_`` exported in the
#:   shell still wins.
#: - The worker's statistical profiler off: it samples every worker thread's stack every 10 ms for the dashboard,
#:   and this cluster has no dashboard (nobody can look at the profile).
#:
#: Workers of a cluster given by ``scheduler_address`` keep whatever their own configuration says.
LOCAL_WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                        "distributed.worker.profile.enabled": False}


@contextlib.contextmanager
def cluster_client(scheduler_address: str | None = None, n_workers: int = 1, threads_per_worker: int = 1,
                   scheduler: str = "distributed") -> Iterator[object | None]:
    """A Dask client for the duration of a ``with`` block, or ``None`` to compute in-process.

    Parameters
    ----------
    scheduler_address : str, optional
        Address of a running scheduler (``tcp://host:8786``). When given, ``n_workers`` and
        ``threads_per_worker`` are not used: the cluster's workers are whatever joined it.
    n_workers : int
        Worker processes of the LocalCluster made when no address is given (processes, not threads: the HDF4
        and GDAL readers hold the GIL or are not thread-safe).
    threads_per_worker : int
        Threads per worker process of that LocalCluster.
    scheduler : {'distributed', 'synchronous'}
        ``'synchronous'`` yields ``None`` (no cluster; the caller loops in its own process).

    Yields
    ------
    distributed.Client or None
    """
    if scheduler not in ("distributed", "synchronous"):
        raise ValueError(f"scheduler must be 'distributed' or 'synchronous', got {scheduler!r}")
    if scheduler == "synchronous":
        yield None
        return
    from distributed import Client, LocalCluster  # noqa: PLC0415 (distributed is heavy; not needed in-process)

    if scheduler_address:
        client = Client(scheduler_address)
        try:
            yield client
        finally:
            client.close()
        return
    if int(n_workers) < 1 or int(threads_per_worker) < 1:
        raise ValueError(f"n_workers ({n_workers}) and threads_per_worker ({threads_per_worker}) must be >= 1")
    import dask  # noqa: PLC0415

    with dask.config.set(LOCAL_WORKER_ENVIRON):
        cluster = LocalCluster(n_workers=int(n_workers), threads_per_worker=int(threads_per_worker), processes=True,
                               dashboard_address=None, scheduler_port=0)
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def section_client(section, client=None):
    """The cluster of a config section (``cfg.cube`` or ``cfg.production``: its ``scheduler_address``,
    ``n_workers``, ``threads_per_worker``, ``scheduler``) as a context manager, unless ``client`` is given: a
    :class:`distributed.Client` (used as is, left open) or ``'synchronous'`` (None: in-process)."""
    if client is None:
        return cluster_client(section.scheduler_address, section.n_workers, section.threads_per_worker,
                              section.scheduler)
    return contextlib.nullcontext(None if client == "synchronous" else client)


def run_tasks(client, fn, items, args, key, bar, on_done, on_finished=None) -> None:
    """Run ``fn(args[0], item, *args[1:])`` for every item, in this process (``client`` None) or on the cluster
    (unique task keys ``<key>-<i>-<token>``); ``bar`` (a tqdm bar) advances and ``on_finished(item)`` (optional)
    runs in the caller as each finishes, and ``on_done(result)`` for each result. On an error the remaining tasks
    are cancelled and the error raised.

    On a cluster the results are gathered at the end, in one call (one transfer per worker) and handed to
    ``on_done`` in the order submitted: fetching each result as its task finished (a request to the scheduler and
    one to the worker, per task) cost the driver and the workers ~1 ms of CPU a task, measured on the ingest's
    24 tasks per year of the 5 deg demo (64-day blocks then; 2026-12-01, Intel Xeon 2 cores: the driver's CPU
    0.23 -> 0.17 s, median of 10). A result should therefore be small (a task's report, not its data). In this
    process ``on_done`` runs as each item finishes.

    ``items`` may be a generator: on a cluster each item is submitted as it comes, so the tasks already sent run
    while the generator computes the next (:func:`glass_sm.data.ingest.ingest` lists a source's files while the
    previous source's blocks are read); an error raised by the generator cancels the tasks already sent."""
    if client is None:
        for it in items:
            res = fn(*args[:1], it, *args[1:])
            if on_finished is not None:
                on_finished(it)
            on_done(res)
            bar.update(1)
        return
    from distributed import as_completed  # noqa: PLC0415

    token = hashlib.sha1(f"{time.time_ns()}{os.getpid()}".encode()).hexdigest()[:8]
    futs, item_of = [], {}
    try:
        for i, it in enumerate(items):
            fut = client.submit(fn, *args[:1], it, *args[1:], key=f"{key}-{i}-{token}", pure=False)
            futs.append(fut)
            item_of[fut.key] = it
        for fut in as_completed(futs):
            if fut.status != "finished":
                fut.result()  # raises the task's error (or CancelledError)
            if on_finished is not None:
                on_finished(item_of[fut.key])
            bar.update(1)
        results = client.gather(futs)
    except BaseException:
        for f in futs:
            f.cancel()
        raise
    for res in results:
        on_done(res)
