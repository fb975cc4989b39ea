"""Samples: the valid ``(pixel, day)`` pairs of a cube, split and with a normalizer fitted on the training split.

A *sample* is a pair ``(pixel, day)``: ``pixel`` numbers the cube's land cells (``land_mask == 1``) in row-major
order (north to south, west to east; :func:`glass_sm.data.features.land_pixels`) and ``day`` indexes
``cube.time``. Its *window* is the ``L`` days ending at ``day`` or around it
(:func:`glass_sm.data.windows.window_offsets`); its *target* is the GLASS-MODIS label ``sm_label`` of the day
(m3 m-3). Windows are never copied into the samples: :class:`Samples` holds only the ``(n, 2)`` index arrays, and
windows are sliced on demand from one dense array (:meth:`Samples.arrays`, :mod:`glass_sm.data.windows`).
Features and their normalization: :mod:`glass_sm.data.features`; split strategies: :mod:`glass_sm.data.splits`.

Which samples exist
-------------------
A ``(pixel, day)`` pair is a candidate when the label is finite, the day is on or after
``period.label_start`` (labels before it are ignored even if a cube carries some), and the whole window lies
inside the cube's period. The inputs of the cube are already gap-filled in time; a candidate whose window still
reads a NaN input (dynamic, flag or static) is dropped and counted (:attr:`Samples.counts`).

The candidates are split (``samples.split``, :func:`glass_sm.data.splits.split_pools`) and the splits are
subsampled without replacement to ``max_train_samples`` / ``max_eval_samples`` (validation and test each), so the
same cube, parameters and seed give the same samples. Index arrays are sorted by pixel, then day.

Memory layout
-------------
:meth:`Samples.arrays` loads the needed cube variables once into a C-contiguous float32 array of shape
``(time, n_pixels, n_features)`` (:func:`glass_sm.data.features.feature_array`); :func:`batch_iterator` yields
shuffled ``(x, y)`` torch batches gathered from it (:class:`glass_sm.data.windows.WindowBatches`).

Example
-------
>>> from glass_sm import config
>>> from glass_sm.testing import make_toy_cube
>>> cube = make_toy_cube()
>>> s = build_samples(cube, config.load(None))
>>> x, y = s.xy("test")
>>> x.shape[1:] == (s.window, s.n_features)
True
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd
import xarray as xr

from glass_sm.data.features import (FeatureSpec, Normalizer, daily_time, feature_array, fit_normalizer,
                                    land_pixels, pixel_values, require_variables, to_jsonable)
from glass_sm.data.splits import SPLITS, STRATEGIES, split_pools, subsample
from glass_sm.data.windows import DAY, PIXEL, WindowBatches, WindowDataset, gather_windows, window_offsets
from glass_sm.grid import nearest_index

__all__ = ["Samples", "build_samples", "batch_iterator", "values_at"]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------------------
# Samples
# ----------------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Samples:
    """The samples of one split strategy: index arrays, the land-pixel table and the fitted normalizer.

    Attributes
    ----------
    train, val, test : numpy.ndarray
        ``(n, 2)`` int64 :data:`~glass_sm.data.windows.SampleIndex` arrays ``(pixel, day)``, sorted by pixel then day.
    pixels : numpy.ndarray
        ``(P, 2)`` int64 ``(row, col)`` of each land pixel in the cube's ``(lat, lon)`` arrays.
    lat, lon : numpy.ndarray
        ``(P,)`` cell-centre coordinates of the pixels, degrees.
    time : pandas.DatetimeIndex
        The cube's days.
    normalizer : Normalizer
        Feature statistics fitted on ``train``; ``normalizer.spec`` lists the features and units.
    window : int
        ``L``, days.
    window_mode : str
        ``'past'`` or ``'centred'``.
    split : str
        ``'random'``, ``'site'`` or ``'year'``.
    seed : int
        Seed of every random choice.
    counts : dict
        Candidates and drops: ``land_pixels``, ``label_cells``, ``before_label_start``, ``window_outside_period``,
        ``nan_inputs`` (samples dropped for a NaN input in their window), ``candidates``, ``<split>_pool`` (before
        subsampling) and ``<split>`` (after).
    info : dict
        Details of the split: ``test_years`` (year split), ``test_blocks`` and ``test_pixels`` (site split).
    cube : xarray.Dataset
        The (lazy) cube the indices refer to; read by :meth:`arrays`.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    pixels: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    time: pd.DatetimeIndex
    normalizer: Normalizer
    window: int
    window_mode: str
    split: str
    seed: int
    counts: dict
    info: dict
    cube: xr.Dataset = field(repr=False)
    _targets: dict = field(default_factory=dict, repr=False)
    _data: Optional[np.ndarray] = field(default=None, repr=False)

    # ---- description -----------------------------------------------------------------------------
    @property
    def features(self) -> FeatureSpec:
        """The features of the windows (names, kinds, units)."""
        return self.normalizer.spec

    @property
    def feature_names(self) -> list[str]:
        """Feature names, in the order of the last axis of the windows."""
        return self.normalizer.spec.names

    @property
    def n_features(self) -> int:
        """``F``, features per window step."""
        return self.normalizer.spec.n_features

    @property
    def n_pixels(self) -> int:
        """``P``, land pixels of the cube."""
        return len(self.pixels)

    @property
    def offsets(self) -> np.ndarray:
        """Day offsets of the window steps relative to the target day (:func:`window_offsets`)."""
        return window_offsets(self.window, self.window_mode)

    def index(self, split: str | np.ndarray) -> np.ndarray:
        """The ``(n, 2)`` index of a split name (``'train'``, ``'val'``, ``'test'``), or ``split`` itself."""
        if isinstance(split, str):
            if split not in SPLITS:
                raise ValueError(f"unknown split {split!r}; valid: {SPLITS}")
            return getattr(self, split)
        idx = np.asarray(split, np.int64)
        if idx.ndim != 2 or idx.shape[1] != 2:
            raise ValueError(f"a sample index is (n, 2) (pixel, day), got shape {idx.shape}")
        return idx

    def targets(self, split: str | np.ndarray) -> np.ndarray:
        """Labels ``sm_label`` (m3 m-3, float32, ``(n,)``) of a split's samples."""
        if isinstance(split, str):
            self.index(split)
            return self._targets[split]
        return values_at(self.cube["sm_label"], self, split)

    def values_at(self, da: xr.DataArray, split: str | np.ndarray) -> np.ndarray:
        """Values of ``da`` (e.g. the twin's ``sm_true``) at the split's samples; see :func:`values_at`."""
        return values_at(da, self, split)

    def dates(self, split: str | np.ndarray) -> pd.DatetimeIndex:
        """Target dates of a split's samples."""
        return self.time[self.index(split)[:, DAY]]

    def pixel_table(self) -> pd.DataFrame:
        """One row per land pixel: ``pixel``, ``row``, ``col``, ``lat``, ``lon`` and its samples per split."""
        t = pd.DataFrame({"pixel": np.arange(self.n_pixels), "row": self.pixels[:, 0], "col": self.pixels[:, 1],
                          "lat": self.lat, "lon": self.lon})
        for s in SPLITS:
            t[f"n_{s}"] = np.bincount(self.index(s)[:, PIXEL], minlength=self.n_pixels)
        return t

    def summary(self) -> pd.DataFrame:
        """The counts (candidates, drops, split sizes) as a two-column table ``item``, ``count``."""
        return pd.DataFrame({"item": list(self.counts), "count": [int(v) for v in self.counts.values()]})

    def to_dict(self) -> dict:
        """JSON-able description for checkpoints and model cards (no indices)."""
        return to_jsonable({"window": self.window, "window_mode": self.window_mode, "split": self.split,
                          "seed": self.seed, "features": self.feature_names, "normalizer": self.normalizer.to_dict(),
                          "counts": self.counts, "info": self.info})

    # ---- data --------------------------------------------------------------------------------------
    @property
    def array_nbytes(self) -> int:
        """Size of :meth:`arrays`, bytes: ``T * P * F * 4``."""
        return len(self.time) * self.n_pixels * self.n_features * 4

    def arrays(self) -> np.ndarray:
        """The dense normalised features of every land pixel and day: ``(T, P, F)`` float32 (cached).

        Built by :func:`feature_array` on first call (``T * P * F * 4`` bytes, :attr:`array_nbytes`); call
        :meth:`release` to free it.
        """
        if self._data is None:
            log.info("loading the feature array %s (%.0f MB)",
                     (len(self.time), self.n_pixels, self.n_features), self.array_nbytes / 1e6)
            self._data = feature_array(self.cube, self.normalizer, self.pixels[:, 0], self.pixels[:, 1])
        return self._data

    def release(self) -> None:
        """Drop the cached feature array."""
        self._data = None

    def windows(self, split: str | np.ndarray) -> np.ndarray:
        """``(n, L, F)`` float32 windows of a split (a copy; mind ``n * L * F * 4`` bytes)."""
        return gather_windows(self.arrays(), self.index(split), self.window, self.window_mode)

    def xy(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Materialised ``(x (n, L, F) float32, y (n,) float32 m3 m-3)`` of a split, e.g. for XGBoost."""
        return self.windows(split), self.targets(split)

    def dataset(self, split: str) -> WindowDataset:
        """A per-item :class:`WindowDataset` of a split."""
        return WindowDataset(self.arrays(), self.index(split), self.targets(split), self.window, self.window_mode)

    def batches(self, split: str, batch_size: int = 512, shuffle: bool = True, seed: int | None = None,
                drop_last: bool = False, max_batches: int | None = None) -> "WindowBatches":
        """See :func:`batch_iterator`."""
        return batch_iterator(self, split, batch_size, shuffle, seed, drop_last, max_batches)

    def with_window(self, window: int, window_mode: str | None = None) -> "Samples":
        """The same samples and normalizer with a shorter window (the sequence-length experiment).

        Windows are nested (a shorter past or centred window reads a subset of the days of a longer one), so
        every sample stays valid; the targets are identical across lengths. The feature array is shared.
        """
        mode = window_mode or self.window_mode
        new, old = window_offsets(window, mode), self.offsets
        if new[0] < old[0] or new[-1] > old[-1]:
            raise ValueError(f"a {mode} window of {window} days is not inside the {self.window_mode} window of "
                             f"{self.window} days the samples were built for; rebuild with build_samples")
        return Samples(self.train, self.val, self.test, self.pixels, self.lat, self.lon, self.time,
                       self.normalizer, window, mode, self.split, self.seed, dict(self.counts), dict(self.info),
                       self.cube, self._targets, self._data)


def batch_iterator(samples: Samples, split: str, batch_size: int = 512, shuffle: bool = True,
                   seed: int | None = None, drop_last: bool = False,
                   max_batches: int | None = None) -> WindowBatches:
    """Mini-batches ``(x (b, L, F), y (b,))`` float32 torch tensors of a split, for training and evaluation.

    Loads :meth:`Samples.arrays` (once) and gathers each batch with :func:`gather_windows`; re-iterable, each
    pass reshuffled reproducibly.

    Parameters
    ----------
    samples : Samples
        From :func:`build_samples`.
    split : {'train', 'val', 'test'}
        Which samples.
    batch_size : int
        Windows per batch.
    shuffle : bool
        Random order each pass.
    seed : int, optional
        Shuffling seed (default ``samples.seed``).
    drop_last : bool
        Drop a last incomplete batch.
    max_batches : int, optional
        Cap on batches per pass.

    Returns
    -------
    WindowBatches
        Iterable with ``len()``; ``y`` in m3 m-3.
    """
    return WindowBatches(samples.arrays(), samples.index(split), samples.targets(split), samples.window,
                         samples.window_mode, batch_size, shuffle, samples.seed if seed is None else seed,
                         drop_last, max_batches)


def values_at(da: xr.DataArray, samples: Samples, split: str | np.ndarray) -> np.ndarray:
    """Values of a ``(time, lat, lon)`` (or static ``(lat, lon)``) field at samples' target pixel and day.

    The field may lie on another grid extent (e.g. the twin's ``truth.nc``): cells are matched by coordinates
    (nearest cell centre within half a cell), days by date.

    Parameters
    ----------
    da : xarray.DataArray
        E.g. ``sm_true`` (m3 m-3).
    samples : Samples
        Supplies the pixel table and the cube's days.
    split : str or numpy.ndarray
        Split name or an ``(n, 2)`` index.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float32, in ``da``'s units.

    Raises
    ------
    KeyError
        A sample's pixel or day is not in ``da``.
    """
    idx = samples.index(split)
    if len(idx) == 0:
        return np.empty(0, np.float32)
    pix = idx[:, PIXEL]
    lat_i = _match_coord(da["lat"].values, samples.lat[pix], "lat")
    lon_i = _match_coord(da["lon"].values, samples.lon[pix], "lon")
    r0, r1, c0, c1 = lat_i.min(), lat_i.max() + 1, lon_i.min(), lon_i.max() + 1
    if "time" not in da.dims:
        box = np.asarray(da.transpose("lat", "lon").isel(lat=slice(r0, r1), lon=slice(c0, c1)).values)
        return box[lat_i - r0, lon_i - c0].astype(np.float32)
    days = samples.time[idx[:, DAY]].normalize()
    da_days = pd.DatetimeIndex(da["time"].values).normalize()
    t_i = da_days.get_indexer(days)
    if (t_i < 0).any():
        raise KeyError(f"{int((t_i < 0).sum())} sample day(s) not in {da.name!r}, e.g. {days[t_i < 0][0].date()}")
    t0, t1 = t_i.min(), t_i.max() + 1
    box = np.asarray(da.transpose("time", "lat", "lon")
                     .isel(time=slice(t0, t1), lat=slice(r0, r1), lon=slice(c0, c1)).values)
    return box[t_i - t0, lat_i - r0, lon_i - c0].astype(np.float32)


def _match_coord(coord: np.ndarray, values: np.ndarray, name: str) -> np.ndarray:
    """Index into ``coord`` of the cell centre nearest to each of ``values`` (degrees); KeyError beyond half a cell."""
    idx, inside = nearest_index(coord, values)
    if not inside.all():
        coord = np.asarray(coord, np.float64)
        raise KeyError(f"{name} {np.asarray(values)[~inside][0]} of a sample is not on the field's grid "
                       f"({coord.min()}..{coord.max()})")
    return idx.astype(np.int64)


# ----------------------------------------------------------------------------------------------------------
# Building the samples
# ----------------------------------------------------------------------------------------------------------
def build_samples(cube: xr.Dataset, cfg, split: str | None = None, seed: int | None = None, *,
                  window: int | None = None, window_mode: str | None = None,
                  include_filled_flags: bool | None = None) -> Samples:
    """Enumerate the valid ``(pixel, day)`` samples of a cube, split them and fit the normalizer on ``train``.

    Parameters
    ----------
    cube : xarray.Dataset
        The analysis-ready cube (``book/design.md``, "The cube"); may be lazy (zarr).
    cfg : glass_sm.config.Config
        Uses ``cfg.samples``, ``cfg.period.label_start`` and ``cfg.run.seed``.
    split : {'random', 'site', 'year'}, optional
        Split strategy (default ``cfg.samples.split``).
    seed : int, optional
        Seed of every random choice (default ``cfg.run.seed``).
    window : int, optional
        ``L``, days (default ``cfg.samples.window``).
    window_mode : {'past', 'centred'}, optional
        Default ``cfg.samples.window_mode``.
    include_filled_flags : bool, optional
        Add the ``*_filled`` flags as features (default ``cfg.samples.include_filled_flags``).

    Returns
    -------
    Samples
        Indices, pixel table, normalizer, counts. Memory: O(T * P) bytes while building (one variable at a
        time), O(n) afterwards.

    Raises
    ------
    KeyError
        The cube lacks a variable the features need.
    ValueError
        No valid sample, or the split cannot hold out anything (one block, one year).
    """
    sc = cfg.samples
    split = split or sc.split
    if split not in STRATEGIES:
        raise ValueError(f"unknown split strategy {split!r}; valid: 'random', 'site', 'year'")
    seed = int(cfg.run.seed if seed is None else seed)
    L = int(window or sc.window)
    mode = window_mode or sc.window_mode
    offsets = window_offsets(L, mode)

    spec = FeatureSpec.from_config(cfg, cube, include_filled_flags)
    require_variables(cube, ["sm_label", "land_mask", *spec.cube_variables])
    time = daily_time(cube)
    rows, cols = land_pixels(cube)
    label = pixel_values(cube["sm_label"], rows, cols)
    pix_c, day_c, counts = _candidates(cube, spec, label, rows, cols, time, offsets, cfg.period.label_start)
    if counts["candidates"] == 0:
        raise ValueError(f"no valid sample: {counts} (labels after {cfg.period.label_start}, window {L} days "
                         f"{mode}, no NaN input)")
    if counts["nan_inputs"]:
        log.info("dropped %d samples whose window reads a NaN input", counts["nan_inputs"])

    pools, info = split_pools(split, pix_c, day_c, rows, cols, time, seed, test_fraction=sc.test_fraction,
                              val_fraction=sc.val_fraction, block_size=sc.block_size, test_years=sc.test_years)
    index: dict[str, np.ndarray] = {}
    targets: dict[str, np.ndarray] = {}
    for k, name in enumerate(SPLITS):
        pool = pools[name]
        counts[f"{name}_pool"] = int(len(pool))
        pool = subsample(pool, sc.max_train_samples if name == "train" else sc.max_eval_samples, seed, k)
        pool = pool[np.lexsort((day_c[pool], pix_c[pool]))]
        index[name] = np.stack([pix_c[pool], day_c[pool]], axis=1).astype(np.int64)
        targets[name] = label[day_c[pool], pix_c[pool]].astype(np.float32)
        counts[name] = int(len(pool))
    del label, pix_c, day_c
    if counts["train"] == 0:
        raise ValueError(f"the {split} split left no training sample: {counts}")

    normalizer = fit_normalizer(cube, spec, rows, cols, time, index["train"], offsets, split)
    lat = np.asarray(cube["lat"].values, np.float64)[rows]
    lon = np.asarray(cube["lon"].values, np.float64)[cols]
    s = Samples(index["train"], index["val"], index["test"], np.stack([rows, cols], axis=1), lat, lon, time,
                normalizer, L, mode, split, seed, counts, info, cube, targets)
    log.info("samples (%s split, L=%d %s): train %d, val %d, test %d of %d candidates", split, L, mode,
             counts["train"], counts["val"], counts["test"], counts["candidates"])
    return s


def _candidates(cube: xr.Dataset, spec: FeatureSpec, label: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                time: pd.DatetimeIndex, offsets: np.ndarray, label_start) -> tuple[np.ndarray, np.ndarray, dict]:
    """The candidate samples: finite label, on/after ``label_start``, window inside the period, no NaN input.

    Parameters
    ----------
    cube : xarray.Dataset
        The cube.
    spec : FeatureSpec
        The features whose NaN inputs drop a candidate.
    label : numpy.ndarray
        ``(T, P)`` labels at the pixels, m3 m-3.
    rows, cols : numpy.ndarray
        ``(P,)`` cells of the pixels.
    time : pandas.DatetimeIndex
        The cube's ``T`` days.
    offsets : numpy.ndarray
        Window day offsets.
    label_start : str or datetime.date
        First day a label may be a target.

    Returns
    -------
    pix, day : numpy.ndarray
        ``(n,)`` pixel id and day index of each candidate, ordered by day then pixel.
    counts : dict
        ``land_pixels``, ``label_cells``, ``before_label_start``, ``window_outside_period``, ``nan_inputs``,
        ``candidates``.
    """
    T, P = len(time), len(rows)
    lo, hi = int(offsets[0]), int(offsets[-1])
    ok = np.isfinite(label)
    counts = {"land_pixels": P, "label_cells": int(ok.sum())}
    t_label0 = int(np.searchsorted(time.values, np.datetime64(pd.Timestamp(label_start))))
    counts["before_label_start"] = int(ok[:t_label0].sum())
    ok[:t_label0] = False
    inside = np.zeros(T, bool)
    inside[max(0, -lo):max(0, T - hi)] = True
    counts["window_outside_period"] = int(ok[~inside].sum())
    ok &= inside[:, None]

    bad = np.zeros((T, P), bool)
    for v in spec.dynamic + spec.flags:
        bad |= ~np.isfinite(pixel_values(cube[v], rows, cols))
    for v in spec.static:
        bad[:, ~np.isfinite(pixel_values(cube[v], rows, cols))] = True
    n_bad = np.zeros((T + 1, P), np.int32)  # n_bad[t] = NaN inputs of days < t, per pixel
    np.cumsum(bad, axis=0, out=n_bad[1:])
    del bad
    window_bad = np.zeros((T, P), bool)
    if T - hi + lo > 0:
        window_bad[-lo:T - hi] = (n_bad[hi - lo + 1:] - n_bad[:T - hi + lo]) > 0
    del n_bad
    counts["nan_inputs"] = int((ok & window_bad).sum())
    ok &= ~window_bad
    del window_bad
    day_c, pix_c = np.nonzero(ok)
    counts["candidates"] = int(len(day_c))
    return pix_c, day_c, counts
