"""Write the twin's many files in worker processes, in order, with the same bytes as one process.

The demo twin writes ~24,000 files (daily HDF4 LST, 8-day albedo composites, daily GeoTIFF labels, ISMN files);
encoding them (zlib, HDF4) is pure work on values that are already drawn, so it can run beside the simulation.
:class:`Jobs` submits *encoding jobs* (a module-level function and its arguments: the arrays to encode, never a
random generator) to a pool of ``processes`` worker processes and hands back their results in submission order.
Every random draw stays in the calling process, in the order it always had, so a file's bytes do not depend on
the number of processes, on which worker wrote it, or when: ``processes=0`` runs each job at once in the calling
process (the reference the tests compare against).

The pool uses the ``spawn`` start method, like :func:`glass_sm.fitting.fit_models`: the caller may hold
OpenMP/BLAS threads (XGBoost, numpy), which ``fork`` does not carry safely into a child.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import shutil
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import shared_memory
from typing import Any, Callable

import numpy as np

__all__ = ["WRITE_PROCESSES", "MIN_DAYS_FOR_PROCESSES", "write_processes", "Jobs", "Shared", "resolve"]

#: Worker processes writing the twin's files in :func:`glass_sm.twin.generate_twin`: the demo machine's 2 cores
#: (one more process than cores would only add switching; the calling process simulates meanwhile). A module
#: default rather than a parameter: the bytes do not depend on it.
WRITE_PROCESSES = min(2, os.cpu_count() or 1)

#: Days of the period below which :func:`glass_sm.twin.generate_twin` writes in its own process. Starting the
#: spawned writers costs their imports (~3 s on a quiet 2-core machine, 10-25 s under load), while the files of a
#: day take ~2-5 ms to write: a run of a few years (the smoke twin's 5 years, every test twin) writes faster
#: alone; the 40-year demo (~24,600 files) gains minutes. The bytes do not depend on it.
MIN_DAYS_FOR_PROCESSES = 3000


def write_processes(n_days: int) -> int:
    """Writer processes for a twin of ``n_days`` days: :data:`WRITE_PROCESSES`, or 0 (in-process) below
    :data:`MIN_DAYS_FOR_PROCESSES`."""
    return WRITE_PROCESSES if n_days >= MIN_DAYS_FOR_PROCESSES else 0


class _Done:
    """A finished job's result with the :class:`concurrent.futures.Future` interface used here."""

    __slots__ = ("_value",)

    def __init__(self, value):
        self._value = value

    def result(self):
        """The job's return value."""
        return self._value


def _warm() -> int:
    """Worker start-up job: import the writers once (rasterio, netCDF4, pyhdf), so that the first real job does
    not wait for them; returns the worker's process id."""
    importlib.import_module("glass_sm.twin.writers")
    return os.getpid()


class Shared:
    """Large arrays handed to a job: the arrays themselves (in-process), or a block of shared memory (workers).

    Made by :meth:`Jobs.share`; pass it to the job, which calls :meth:`arrays`. A job's arguments are otherwise
    pickled through a pipe (a copy in each process); a block of shared memory is copied into once.
    """

    def __init__(self, arrays: dict | None = None, block: str | None = None, layout: dict | None = None):
        self._arrays, self._block, self._layout = arrays, block, layout

    def __getstate__(self):
        if self._block is None:
            return {"arrays": self._arrays, "block": None, "layout": None}
        return {"arrays": None, "block": self._block, "layout": self._layout}

    def __setstate__(self, state):
        self._arrays, self._block, self._layout = state["arrays"], state["block"], state["layout"]

    def arrays(self) -> dict:
        """The arrays by name (read-only views of the shared block in a worker, which keeps it mapped until it
        exits: the calling process unlinks the block when :class:`Jobs` closes)."""
        if self._block is None:
            return self._arrays
        shm = shared_memory.SharedMemory(name=self._block)
        _MAPPED.append(shm)
        out = {}
        for k, (off, shape, dtype) in self._layout.items():
            a = np.ndarray(shape, np.dtype(dtype), buffer=shm.buf, offset=off)
            a.flags.writeable = False
            out[k] = a
        return out


_MAPPED: list = []   #: shared blocks a worker has mapped (kept open: their arrays may outlive the job's frame)


class Jobs:
    """Ordered encoding jobs, run in ``processes`` spawned worker processes or (``processes`` < 1) at once.

    Parameters
    ----------
    processes : int
        Worker processes; 0 (or less) runs every job in the calling process when it is submitted.
    max_pending : int, optional
        At most this many submitted, unfinished jobs whose arguments were built for them (``bounded=True`` in
        :meth:`submit`): the caller then waits for the oldest, so that jobs whose arguments are new arrays (not
        views of arrays the caller keeps anyway) do not pile up in memory. Default ``4 * processes``: enough to
        keep every worker busy while the caller prepares the next.

    Notes
    -----
    Use as a context manager; leaving it waits for every job and shuts the pool down. A job's exception is
    raised by :func:`resolve` (or on leaving the context), with the worker's traceback as its cause.
    """

    def __init__(self, processes: int, max_pending: int | None = None):
        self.processes = max(int(processes), 0)
        self.max_pending = max_pending if max_pending is not None else 4 * max(self.processes, 1)
        self._pool = None
        self._bounded: deque[Future] = deque()
        self._blocks: list = []
        if self.processes:
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"))
            for _ in range(self.processes):       # start the workers now: their imports overlap the caller's work
                self._pool.submit(_warm)

    def submit(self, fn: Callable, *args: Any, bounded: bool = False):
        """Run ``fn(*args)`` (a module-level function; ``args`` picklable); returns an object with ``result()``.

        ``bounded``: count the job against ``max_pending`` (its arguments are new arrays held until it runs).
        """
        if self._pool is None:
            return _Done(fn(*args))
        fut = self._pool.submit(fn, *args)
        if bounded:
            self._bounded.append(fut)
            while len(self._bounded) > self.max_pending:
                self._bounded.popleft().result()
        return fut

    def share(self, arrays: dict) -> Shared:
        """A :class:`Shared` of ``arrays`` (name -> numpy array) for one job: a block of shared memory when there
        are workers and ``/dev/shm`` has room for twice the arrays (else they are pickled with the job, as any
        argument; a full ``/dev/shm`` would crash the copy instead of raising); the block is unlinked on
        :meth:`close`."""
        nbytes = sum(int(np.asarray(a).nbytes) for a in arrays.values())
        if self._pool is None or not _shm_room(2 * nbytes):
            return Shared(arrays=arrays)
        shm = shared_memory.SharedMemory(create=True, size=max(nbytes + 8 * len(arrays), 1))
        self._blocks.append(shm)
        layout, off = {}, 0
        for k, a in arrays.items():
            a = np.asarray(a)
            np.ndarray(a.shape, a.dtype, buffer=shm.buf, offset=off)[...] = a
            layout[k] = (off, a.shape, a.dtype.str)
            off += -(-a.nbytes // 8) * 8          # 8-byte aligned
        return Shared(block=shm.name, layout=layout)

    def close(self) -> None:
        """Wait for every job, stop the workers and unlink the shared blocks."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._bounded.clear()
        while self._blocks:
            shm = self._blocks.pop()
            shm.close()
            shm.unlink()

    def __enter__(self) -> "Jobs":
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None and exc[0] is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.close()


def _shm_room(nbytes: int) -> bool:
    """Whether ``/dev/shm`` (POSIX shared memory on Linux) exists with ``nbytes`` free."""
    try:
        return shutil.disk_usage("/dev/shm").free >= nbytes
    except OSError:
        return False


def resolve(handles):
    """The results of submitted jobs, in order: a list of lists of paths (one per job) flattened into one list;
    a dict of such lists resolves value by value."""
    if isinstance(handles, dict):
        return {k: resolve(v) for k, v in handles.items()}
    out = []
    for h in handles:
        out.extend(h.result())
    return out
