"""Windows: the ``L`` input days of a ``(pixel, day)`` sample, sliced on demand from a dense feature array.

A sample is an index pair ``(pixel, day)`` (:data:`SampleIndex`); its *window* is the ``L`` days ending at
``day`` (``mode='past'``: days ``t-L+1 .. t``) or around it (``'centred'``: ``t-L//2 .. t+(L-1)//2``), see
:func:`window_offsets`. Windows are never stored: they are gathered from a C-contiguous ``(T, P, F)`` float32
array (time, pixel, feature; :func:`glass_sm.data.features.feature_array`) when a batch is needed.

:func:`gather_windows` slices windows by vectorised ``np.take`` on the ``(T * P, F)`` view; :class:`WindowBatches`
yields shuffled ``(x, y)`` torch batches with one gather per batch, much faster than the per-item
:class:`WindowDataset` (demo, 2 CPU cores: about 2 million windows/s for ``L = 30``, ``F = 9``, against about
0.2 million/s per item), as a ``DataLoader`` that :func:`glass_sm.training.train_torch_model` and
:func:`glass_sm.training.predict` accept as is.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

__all__ = ["SampleIndex", "PIXEL", "DAY", "window_offsets", "gather_windows", "WindowDataset", "WindowBatches"]

SampleIndex = np.ndarray
"""An ``(n, 2)`` int64 array of samples: column 0 the pixel id (row of :attr:`Samples.pixels`), column 1 the day
index into ``cube.time``."""

PIXEL, DAY = 0, 1
"""Columns of a :data:`SampleIndex`: the pixel id and the day index."""


def window_offsets(window: int, mode: str = "past") -> np.ndarray:
    """Day offsets of a window relative to its target day.

    Parameters
    ----------
    window : int
        Length ``L``, days (>= 1).
    mode : {'past', 'centred'}
        ``'past'``: ``-(L-1) .. 0`` (the target is the last step); ``'centred'``: ``-(L//2) .. (L-1)//2``.

    Returns
    -------
    numpy.ndarray
        ``(L,)`` int64 offsets, days, ascending.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1 day, got {window}")
    if mode == "past":
        return np.arange(-(window - 1), 1, dtype=np.int64)
    if mode in ("centred", "centered"):
        return np.arange(-(window // 2), (window - 1) // 2 + 1, dtype=np.int64)
    raise ValueError(f"window mode must be 'past' or 'centred', got {mode!r}")


def gather_windows(data: np.ndarray, idx: np.ndarray, window: int, mode: str = "past",
                   out: np.ndarray | None = None, chunk: int = 4096) -> np.ndarray:
    """Copy the windows of samples out of a dense ``(T, P, F)`` array, vectorised.

    Parameters
    ----------
    data : numpy.ndarray
        ``(T, P, F)`` features (e.g. :meth:`glass_sm.data.Samples.arrays`, normalised, dimensionless),
        C-contiguous.
    idx : numpy.ndarray
        ``(n, 2)`` int samples ``(pixel, day)``.
    window : int
        Length ``L``, days.
    mode : {'past', 'centred'}
        See :func:`window_offsets`.
    out : numpy.ndarray, optional
        ``(n, L, F)`` C-contiguous array to fill.
    chunk : int
        Windows gathered per ``np.take`` call (bounds the temporary index array).

    Returns
    -------
    numpy.ndarray
        ``(n, L, F)`` windows, ``out[i, k] = data[day_i + offset_k, pixel_i]``, in ``data``'s units.

    Raises
    ------
    IndexError
        A window reaches outside ``[0, T)`` or a pixel outside ``[0, P)``.
    """
    data = np.ascontiguousarray(data)
    if data.ndim != 3:
        raise ValueError(f"data must be (time, pixel, feature), got shape {data.shape}")
    T, P, F = data.shape
    idx = np.asarray(idx)
    if idx.ndim != 2 or idx.shape[1] != 2:
        raise ValueError(f"idx must be (n, 2) (pixel, day), got shape {idx.shape}")
    off = window_offsets(window, mode)
    n = len(idx)
    if out is None:
        out = np.empty((n, window, F), data.dtype)
    elif out.shape != (n, window, F) or not out.flags.c_contiguous:
        raise ValueError(f"out must be C-contiguous with shape {(n, window, F)}, got {out.shape}")
    if n == 0:
        return out
    pix, day = idx[:, PIXEL].astype(np.int64), idx[:, DAY].astype(np.int64)
    if pix.min() < 0 or pix.max() >= P or day.min() + off[0] < 0 or day.max() + off[-1] >= T:
        raise IndexError(f"windows outside the data: pixels {pix.min()}..{pix.max()} of {P}, days "
                         f"{day.min() + off[0]}..{day.max() + off[-1]} of {T}")
    flat = data.reshape(T * P, F)
    out2 = out.reshape(n * window, F)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        rows = (day[s:e, None] + off[None, :]) * P + pix[s:e, None]
        np.take(flat, rows.ravel(), axis=0, out=out2[s * window:e * window])
    return out


class WindowDataset(torch.utils.data.Dataset):
    """Per-item torch view of samples: item ``i`` is ``(x (L, F) float32 tensor, y float32 scalar tensor)``.

    Slices the dense array; nothing is copied until an item is requested. Prefer :class:`WindowBatches` for
    training (one vectorised gather per batch instead of one Python call per window).

    Parameters
    ----------
    data : numpy.ndarray
        ``(T, P, F)`` float32 features (normalised, dimensionless).
    idx : numpy.ndarray
        ``(n, 2)`` samples ``(pixel, day)``.
    targets : numpy.ndarray, optional
        ``(n,)`` targets, m3 m-3 (NaN when not given).
    window : int
        ``L``, days.
    mode : {'past', 'centred'}
        See :func:`window_offsets`.
    """

    def __init__(self, data: np.ndarray, idx: np.ndarray, targets: np.ndarray | None = None, window: int = 30,
                 mode: str = "past"):
        self.data, self.idx = data, np.asarray(idx, np.int64)
        self.targets = (np.full(len(self.idx), np.nan, np.float32) if targets is None
                        else np.asarray(targets, np.float32))
        if len(self.targets) != len(self.idx):
            raise ValueError(f"{len(self.targets)} targets for {len(self.idx)} samples")
        off = window_offsets(window, mode)
        self.window, self.mode, self._lo, self._hi = window, mode, int(off[0]), int(off[-1])

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int):
        p, t = self.idx[i]
        if t + self._lo < 0 or t + self._hi >= self.data.shape[0]:
            raise IndexError(f"window of sample {i} (day {t}) is outside the data")
        x = np.ascontiguousarray(self.data[t + self._lo:t + self._hi + 1, p, :], dtype=np.float32)
        return torch.from_numpy(x), torch.tensor(self.targets[i], dtype=torch.float32)


class WindowBatches(torch.utils.data.DataLoader):
    """Re-iterable mini-batches ``(x (b, L, F), y (b,))`` of float32 torch tensors, gathered vectorised.

    A ``torch.utils.data.DataLoader`` over the per-item :class:`WindowDataset` whose iteration is replaced by one
    :func:`gather_windows` call per batch (about 10x faster than per-item loading), so it can be passed wherever a
    DataLoader is accepted (``glass_sm.training.train_torch_model``, ``predict``). Each pass
    (``for x, y in batches``) draws a new order when ``shuffle`` (pass ``k`` uses the stream ``(seed, k)``: the
    sequence of epochs is reproducible); ``len()`` is the number of batches per pass.

    Parameters
    ----------
    data, idx, targets, window, mode
        As :class:`WindowDataset` (``targets`` in m3 m-3, ``window`` in days).
    batch_size : int
        Windows per batch.
    shuffle : bool
        Random order each pass (else the order of ``idx``).
    seed : int
        Seed of the shuffling.
    drop_last : bool
        Drop a last incomplete batch.
    max_batches : int, optional
        Stop each pass after this many batches.
    """

    def __init__(self, data, idx, targets=None, window: int = 30, mode: str = "past", batch_size: int = 512,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False, max_batches: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        dataset = WindowDataset(data, idx, targets, window, mode)
        super().__init__(dataset, batch_size=batch_size, shuffle=False, drop_last=drop_last)
        self.data, self.idx, self.targets = data, dataset.idx, dataset.targets
        self.window, self.mode = window, mode
        self.shuffle, self.seed, self.max_batches = shuffle, seed, max_batches
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.idx) // self.batch_size if self.drop_last else -(-len(self.idx) // self.batch_size)
        return n if self.max_batches is None else min(n, self.max_batches)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.idx)
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle
                 else np.arange(n))
        self.epoch += 1
        for b in range(len(self)):
            sel = order[b * self.batch_size:(b + 1) * self.batch_size]
            x = gather_windows(self.data, self.idx[sel], self.window, self.mode)
            yield torch.from_numpy(x), torch.from_numpy(self.targets[sel])
