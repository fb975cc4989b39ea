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

__all__ = ["cluster_client", "section_client", "run_tasks"]


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


def run_tasks(client, fn, items, args, key, bar, on_done) -> None:
    """Run ``fn(args[0], item, *args[1:])`` for every item, in this process (``client`` None) or on the cluster
    (unique task keys ``<key>-<i>-<token>``); ``on_done(result)`` runs in the caller as each finishes and ``bar``
    (a tqdm bar) advances. On an error the remaining tasks are cancelled and the error raised."""
    if client is None:
        for it in items:
            on_done(fn(*args[:1], it, *args[1:]))
            bar.update(1)
        return
    from distributed import as_completed  # noqa: PLC0415

    token = hashlib.sha1(f"{time.time_ns()}{os.getpid()}".encode()).hexdigest()[:8]
    futs = [client.submit(fn, *args[:1], it, *args[1:], key=f"{key}-{i}-{token}", pure=False)
            for i, it in enumerate(items)]
    try:
        for fut in as_completed(futs):
            on_done(fut.result())
            bar.update(1)
    except BaseException:
        for f in futs:
            f.cancel()
        raise
