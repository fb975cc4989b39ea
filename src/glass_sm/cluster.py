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
from typing import Iterator

__all__ = ["cluster_client"]


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
