"""Training samples as ``(pixel, day)`` indices into the cube, features, normalization and split strategies.

A *sample* is a pair ``(pixel, day)``: ``pixel`` numbers the cube's land cells (``land_mask == 1``) in row-major
order (north to south, west to east) and ``day`` indexes ``cube.time``. Its *window* is the ``L`` days ending at
``day`` (``window_mode='past'``: days ``t-L+1 .. t``) or around it (``'centred'``: ``t-L//2 .. t+(L-1)//2``); its
*target* is the GLASS-MODIS label ``sm_label`` of the day (m3 m-3). Windows are never copied into the samples:
:class:`Samples` holds only the ``(n, 2)`` index arrays, and windows are sliced on demand from one dense
array (see :meth:`Samples.arrays`).

Features
--------
Per step, in this order (:class:`FeatureSpec`):

1. the dynamic cube variables ``samples.dynamic_features`` of the day (albedo, LST, ERA5-Land SM ...);
2. optionally (``samples.include_filled_flags``) the cube's 0/1 ``*_filled`` flags of those variables;
3. the static variables ``samples.static_features`` (terrain, texture), **repeated at every step**, so that
   every model - the recurrent ones, the Transformer and XGBoost on the flattened window - sees them in the
   same uniform ``(L, n_features)`` layout, at the price of ``L``-fold redundancy in the window;
4. optionally (``samples.add_doy``) ``sin`` and ``cos`` of ``2 pi doy / 365.25`` of the day.

Normalization (:class:`Normalizer`): dynamic and static features are standardised, ``(x - mean) / sd``; flags
and the day-of-year harmonics are passed unchanged (``mean = 0``, ``sd = 1``). The statistics are fitted on the
**training split only**: for a dynamic feature over the set of ``(pixel, day)`` cells that at least one training
window reads (each cell once), for a static feature over the training pixels (each pixel once). Nothing a
validation or test window reads alone can change them. They are saved as JSON (:meth:`Normalizer.to_dict`) so
that they travel with a model checkpoint.

Which samples exist
-------------------
A ``(pixel, day)`` pair is a candidate when the label is finite, the day is on or after
``period.label_start`` (labels before it are ignored even if a cube carries some), and the whole window lies
inside the cube's period. The inputs of the cube are already gap-filled in time; a candidate whose window still
reads a NaN input (dynamic, flag or static) is dropped and counted (:attr:`Samples.counts`).

Splits (``samples.split``)
--------------------------
``'random'``
    Candidates are assigned to test / validation / training at random. Windows of different splits may
    overlap in their input days (the optimistic setting).
``'site'``
    Site-independent: the domain is cut into ``block_size x block_size`` cell blocks (counted from the cube's
    north-west corner); whole blocks are held out for testing, at random, until ``test_fraction`` of the
    pixels with samples are held out. The validation samples are a random ``val_fraction`` of the samples of the
    training pixels. No test pixel appears in training or validation.
``'year'``
    Held-out years: ``samples.test_years``, or ``round(test_fraction * n)`` of the ``n`` label years drawn at
    random. A sample belongs to the test split when its *target day* is in a test year; training and
    validation samples have their target day in the other years (validation: a random ``val_fraction`` of
    them). A window whose target day is near 1 January may *read inputs* (never labels) of the neighbouring,
    held-out year; inputs of every day are available at production time, so this is not label leakage.

Every random choice derives from ``seed`` (default ``run.seed``) through independent streams, and the splits
are subsampled without replacement to ``max_train_samples`` / ``max_eval_samples`` (validation and test each),
so the same cube, parameters and seed give the same samples. Index arrays are sorted by pixel, then day.

Memory layout
-------------
:meth:`Samples.arrays` loads the needed cube variables once into a C-contiguous float32 array of shape
``(time, n_pixels, n_features)``, normalised, of ``T * P * F * 4`` bytes (demo: 14610 days x 800 pixels x 9
features = 421 MB). :func:`gather_windows` slices windows from it by vectorised ``np.take`` on the
``(T * P, F)`` view; :func:`batch_iterator` yields shuffled ``(x, y)`` torch batches from it, much faster than a
per-item :class:`WindowDataset`, as a ``DataLoader`` that :func:`glass_sm.training.train_torch_model` and
:func:`glass_sm.training.predict` accept as is (demo, 2 CPU cores: about 2 million windows/s for ``L = 30``,
``F = 9``, against about 0.2 million/s per item). :func:`feature_array` builds the same array for any set of
cells and any time range of the cube (the per-tile path of larger cubes).

Example
-------
>>> from glass_sm import config
>>> cube = make_toy_cube()
>>> s = build_samples(cube, config.load(None))
>>> x, y = s.xy("test")
>>> x.shape[1:] == (s.window, s.n_features)
True
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import pandas as pd
import torch
import xarray as xr

from glass_sm.grid import RES, Domain, lat_lon_attrs

__all__ = [
    "SPLITS",
    "SampleIndex",
    "FeatureSpec",
    "Normalizer",
    "Samples",
    "WindowDataset",
    "WindowBatches",
    "build_samples",
    "window_offsets",
    "gather_windows",
    "feature_array",
    "batch_iterator",
    "values_at",
    "land_pixels",
    "make_toy_cube",
]

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
"""Names of the three splits of :class:`Samples`."""

SampleIndex = np.ndarray
"""An ``(n, 2)`` int64 array of samples: column 0 the pixel id (row of :attr:`Samples.pixels`), column 1 the day
index into ``cube.time``."""

PIXEL, DAY = 0, 1

DEFAULT_UNITS = {
    "albedo_bsa": "1",
    "albedo_wsa": "1",
    "lst": "K",
    "sm_era5land": "m3 m-3",
    "sm_label": "m3 m-3",
    "elevation": "m",
    "sand": "1",
    "clay": "1",
    "silt": "1",
    "albedo_filled": "1",
    "lst_filled": "1",
    "doy_sin": "1",
    "doy_cos": "1",
}
"""Units used when a cube variable carries no ``units`` attribute."""


# ----------------------------------------------------------------------------------------------------------
# Features and normalization
# ----------------------------------------------------------------------------------------------------------
@dataclass
class FeatureSpec:
    """The per-step input features of the windows, in order: dynamic, flags, static, day of year.

    Parameters
    ----------
    dynamic : list of str
        Time-varying cube variables ``(time, lat, lon)``.
    flags : list of str
        Cube ``*_filled`` flags (0/1, dimensionless), passed unnormalised.
    static : list of str
        Static cube variables ``(lat, lon)``, repeated at every step of the window.
    doy : bool
        Append ``doy_sin``, ``doy_cos`` = sin/cos(2 pi doy / 365.25), dimensionless.
    units : dict
        Units of each feature (from the cube's ``units`` attributes, else :data:`DEFAULT_UNITS`).
    """

    dynamic: list
    flags: list = field(default_factory=list)
    static: list = field(default_factory=list)
    doy: bool = False
    units: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Feature names in the order of the last axis of the windows."""
        return [*self.dynamic, *self.flags, *self.static, *(["doy_sin", "doy_cos"] if self.doy else [])]

    @property
    def kinds(self) -> list[str]:
        """``'dynamic'``, ``'flag'``, ``'static'`` or ``'doy'`` for each feature."""
        return (["dynamic"] * len(self.dynamic) + ["flag"] * len(self.flags) + ["static"] * len(self.static)
                + (["doy", "doy"] if self.doy else []))

    @property
    def cube_variables(self) -> list[str]:
        """Cube variables the features read."""
        return [*self.dynamic, *self.flags, *self.static]

    @property
    def n_features(self) -> int:
        return len(self.names)

    def table(self) -> pd.DataFrame:
        """One row per feature: ``index``, ``name``, ``kind``, ``units``."""
        return pd.DataFrame({"index": range(self.n_features), "name": self.names, "kind": self.kinds,
                             "units": [self.units.get(n, "") for n in self.names]})

    @classmethod
    def from_config(cls, cfg, cube: xr.Dataset | None = None,
                    include_filled_flags: bool | None = None) -> "FeatureSpec":
        """The features of ``cfg.samples``; units and flags are looked up in ``cube`` when given.

        The flag of a dynamic variable ``v`` is ``v_filled`` or, failing that, ``<prefix>_filled`` with the
        prefix before the first underscore (``albedo_bsa`` -> ``albedo_filled``); variables without a flag in the
        cube (``sm_era5land``) get none, and a flag shared by two variables is used once.
        """
        sc = cfg.samples
        use_flags = sc.include_filled_flags if include_filled_flags is None else include_filled_flags
        dynamic, static = list(sc.dynamic_features), list(sc.static_features)
        flags: list[str] = []
        if use_flags:
            if cube is None:
                raise ValueError("FeatureSpec.from_config: the *_filled flags are looked up in the cube; pass it")
            for v in dynamic:
                for cand in (f"{v}_filled", f"{v.split('_')[0]}_filled"):
                    if cand in cube.data_vars and cand not in flags:
                        flags.append(cand)
                        break
        spec = cls(dynamic, flags, static, bool(sc.add_doy))
        units = {}
        for n in spec.names:
            u = cube[n].attrs.get("units") if cube is not None and n in cube.variables else None
            units[n] = str(u) if u is not None else DEFAULT_UNITS.get(n, "")
        spec.units = units
        return spec

    def to_dict(self) -> dict:
        return {"dynamic": list(self.dynamic), "flags": list(self.flags), "static": list(self.static),
                "doy": bool(self.doy), "units": dict(self.units)}

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSpec":
        return cls(list(d["dynamic"]), list(d.get("flags", [])), list(d.get("static", [])), bool(d.get("doy")),
                   dict(d.get("units", {})))


@dataclass
class Normalizer:
    """Per-feature standardisation ``(x - mean) / sd`` fitted on the training split.

    Parameters
    ----------
    spec : FeatureSpec
        The features, in order.
    mean, sd : numpy.ndarray
        ``(n_features,)`` float64, in each feature's units (``0`` and ``1`` for flags and day of year).
    fitted_on : dict
        Where the statistics come from (split strategy, number of cells and pixels); informative.
    """

    spec: FeatureSpec
    mean: np.ndarray
    sd: np.ndarray
    fitted_on: dict = field(default_factory=dict)

    def __post_init__(self):
        self.mean = np.asarray(self.mean, np.float64)
        self.sd = np.asarray(self.sd, np.float64)
        if self.mean.shape != (self.spec.n_features,) or self.sd.shape != self.mean.shape:
            raise ValueError(f"mean/sd must have shape ({self.spec.n_features},) for features {self.spec.names}, "
                             f"got {self.mean.shape} and {self.sd.shape}")

    @property
    def names(self) -> list[str]:
        return self.spec.names

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Normalise the last axis of ``x`` (raw values in the features' units) -> float32."""
        return ((np.asarray(x, np.float64) - self.mean) / self.sd).astype(np.float32)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Undo :meth:`apply`: normalised values -> the features' units (float64)."""
        return np.asarray(z, np.float64) * self.sd + self.mean

    def table(self) -> pd.DataFrame:
        """One row per feature: name, kind, units, mean, sd."""
        t = self.spec.table()
        t["mean"], t["sd"] = self.mean, self.sd
        return t

    def to_dict(self) -> dict:
        """JSON-able form: the feature spec, ``mean`` and ``sd`` lists and ``fitted_on``."""
        return {"features": self.spec.to_dict(), "names": self.names, "mean": [float(v) for v in self.mean],
                "sd": [float(v) for v in self.sd], "fitted_on": _jsonable(self.fitted_on)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        spec = FeatureSpec.from_dict(d["features"])
        if "names" in d and list(d["names"]) != spec.names:
            raise ValueError(f"normalizer names {d['names']} do not match its feature spec {spec.names}")
        return cls(spec, np.array(d["mean"], np.float64), np.array(d["sd"], np.float64), d.get("fitted_on", {}))

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.partial")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Normalizer":
        """Read a file written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


# ----------------------------------------------------------------------------------------------------------
# Cube access
# ----------------------------------------------------------------------------------------------------------
def _require(cube: xr.Dataset, names) -> None:
    missing = [n for n in names if n not in cube.variables]
    if missing:
        raise KeyError(f"cube lacks variable(s) {missing} needed by the samples "
                       f"(found: {sorted(map(str, cube.data_vars))}); check samples.dynamic_features/"
                       f"static_features against book/design.md 'The cube'")


def _daily_time(cube: xr.Dataset) -> pd.DatetimeIndex:
    time = pd.DatetimeIndex(cube["time"].values)
    if len(time) > 1 and not (np.diff(time.values) == np.timedelta64(1, "D")).all():
        raise ValueError("cube.time must be consecutive days (windows are index ranges); "
                         f"found steps {np.unique(np.diff(time.values))[:5]}")
    return time


def land_pixels(cube: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Row and column (in the cube's lat/lon order) of the land cells, row-major.

    Parameters
    ----------
    cube : xarray.Dataset
        With ``land_mask(lat, lon)`` (1 = land).

    Returns
    -------
    rows, cols : numpy.ndarray
        ``(P,)`` int64; pixel id ``k`` is cell ``(rows[k], cols[k])``.
    """
    _require(cube, ["land_mask"])
    mask = np.asarray(cube["land_mask"].transpose("lat", "lon").values)
    rows, cols = np.nonzero(np.nan_to_num(mask) == 1)
    if rows.size == 0:
        raise ValueError("cube.land_mask has no land cell (== 1)")
    return rows.astype(np.int64), cols.astype(np.int64)


def _pixel_values(da: xr.DataArray, rows: np.ndarray, cols: np.ndarray,
                  time: slice | None = None) -> np.ndarray:
    """Values of ``da`` at the cells ``(rows, cols)``: ``(T, P)`` if it has ``time`` else ``(P,)``, float32.

    Only the bounding box of the cells is read (one read, lazily-backed cubes included).
    """
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    box = da.isel(lat=slice(r0, r1), lon=slice(c0, c1))
    if "time" in box.dims:
        box = box.transpose("time", "lat", "lon")
        if time is not None:
            box = box.isel(time=time)
        return np.asarray(box.values)[:, rows - r0, cols - c0].astype(np.float32, copy=False)
    box = box.transpose("lat", "lon")
    return np.asarray(box.values)[rows - r0, cols - c0].astype(np.float32, copy=False)


def _doy_harmonics(time: pd.DatetimeIndex) -> np.ndarray:
    """``(T, 2)`` float32: sin and cos of ``2 pi doy / 365.25``."""
    ang = 2 * np.pi * np.asarray(time.day_of_year, np.float64) / 365.25
    return np.stack([np.sin(ang), np.cos(ang)], axis=1).astype(np.float32)


def feature_array(cube: xr.Dataset, normalizer: Normalizer, rows: np.ndarray, cols: np.ndarray,
                  time: slice | None = None) -> np.ndarray:
    """The dense normalised feature array of a set of cells: ``(T, P, n_features)`` float32, C-contiguous.

    Memory is ``T * P * n_features * 4`` bytes; each cube variable is read once. Use it per tile (``rows``,
    ``cols`` of the tile's cells, ``time`` a slice of the period plus the window margin) for cubes whose land
    does not fit in memory at once.

    Parameters
    ----------
    cube : xarray.Dataset
        The cube (schema of ``book/design.md``).
    normalizer : Normalizer
        Features and their statistics.
    rows, cols : numpy.ndarray
        ``(P,)`` int cell indices along ``cube.lat`` and ``cube.lon``.
    time : slice, optional
        Positional slice of ``cube.time`` (default: all days).

    Returns
    -------
    numpy.ndarray
        ``(T, P, F)`` float32; NaN where an input is NaN.
    """
    spec = normalizer.spec
    _require(cube, spec.cube_variables)
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    times = _daily_time(cube)
    if time is not None:
        times = times[time]
    T, P, F = len(times), len(rows), spec.n_features
    out = np.empty((T, P, F), np.float32)
    mean, sd = normalizer.mean, normalizer.sd
    j = 0
    for v in spec.dynamic + spec.flags:
        vals = _pixel_values(cube[v], rows, cols, time)
        out[:, :, j] = (vals - np.float32(mean[j])) / np.float32(sd[j])
        j += 1
    for v in spec.static:
        vals = _pixel_values(cube[v], rows, cols)
        out[:, :, j] = ((vals - mean[j]) / sd[j]).astype(np.float32)[None, :]
        j += 1
    if spec.doy:
        h = _doy_harmonics(times)
        out[:, :, j] = ((h[:, 0] - mean[j]) / sd[j])[:, None]
        out[:, :, j + 1] = ((h[:, 1] - mean[j + 1]) / sd[j + 1])[:, None]
    return out


# ----------------------------------------------------------------------------------------------------------
# Windows
# ----------------------------------------------------------------------------------------------------------
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
        ``(T, P, F)`` features (e.g. :meth:`Samples.arrays`), C-contiguous.
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
        ``(n, L, F)`` windows, ``out[i, k] = data[day_i + offset_k, pixel_i]``.

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

    Slices the dense array; nothing is copied until an item is requested. Prefer :func:`batch_iterator` for
    training (one vectorised gather per batch instead of one Python call per window).

    Parameters
    ----------
    data : numpy.ndarray
        ``(T, P, F)`` float32 features.
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
        As :class:`WindowDataset`.
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


# ----------------------------------------------------------------------------------------------------------
# Samples
# ----------------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Samples:
    """The samples of one split strategy: index arrays, the land-pixel table and the fitted normalizer.

    Attributes
    ----------
    train, val, test : numpy.ndarray
        ``(n, 2)`` int64 :data:`SampleIndex` arrays ``(pixel, day)``, sorted by pixel then day.
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
        return self.normalizer.spec

    @property
    def feature_names(self) -> list[str]:
        return self.normalizer.spec.names

    @property
    def n_features(self) -> int:
        return self.normalizer.spec.n_features

    @property
    def n_pixels(self) -> int:
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
        return _jsonable({"window": self.window, "window_mode": self.window_mode, "split": self.split,
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
    coord = np.asarray(coord, np.float64)
    order = np.argsort(coord)
    pos = np.clip(np.searchsorted(coord[order], values), 1, len(coord) - 1)
    left, right = order[pos - 1], order[pos]
    best = np.where(np.abs(coord[left] - values) <= np.abs(coord[right] - values), left, right)
    step = np.abs(np.diff(coord)).min() if len(coord) > 1 else RES
    bad = np.abs(coord[best] - values) > step / 2 + 1e-9
    if bad.any():
        raise KeyError(f"{name} {values[bad][0]} of a sample is not on the field's grid "
                       f"({coord.min()}..{coord.max()})")
    return best.astype(np.int64)


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
    if split not in ("random", "site", "year"):
        raise ValueError(f"unknown split strategy {split!r}; valid: 'random', 'site', 'year'")
    seed = int(cfg.run.seed if seed is None else seed)
    L = int(window or sc.window)
    mode = window_mode or sc.window_mode
    offsets = window_offsets(L, mode)
    lo, hi = int(offsets[0]), int(offsets[-1])

    spec = FeatureSpec.from_config(cfg, cube, include_filled_flags)
    _require(cube, ["sm_label", "land_mask", *spec.cube_variables])
    time = _daily_time(cube)
    rows, cols = land_pixels(cube)
    T, P = len(time), len(rows)

    # ---- candidates: finite label, on/after label_start, window inside the period, no NaN input ----------
    label = _pixel_values(cube["sm_label"], rows, cols)
    ok = np.isfinite(label)
    counts = {"land_pixels": P, "label_cells": int(ok.sum())}
    t_label0 = int(np.searchsorted(time.values, np.datetime64(pd.Timestamp(cfg.period.label_start))))
    counts["before_label_start"] = int(ok[:t_label0].sum())
    ok[:t_label0] = False
    inside = np.zeros(T, bool)
    inside[max(0, -lo):max(0, T - hi)] = True
    counts["window_outside_period"] = int(ok[~inside].sum())
    ok &= inside[:, None]

    bad = np.zeros((T, P), bool)
    for v in spec.dynamic + spec.flags:
        bad |= ~np.isfinite(_pixel_values(cube[v], rows, cols))
    for v in spec.static:
        bad[:, ~np.isfinite(_pixel_values(cube[v], rows, cols))] = True
    n_bad = np.zeros((T + 1, P), np.int32)
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
    del ok
    counts["candidates"] = int(len(day_c))
    if counts["candidates"] == 0:
        raise ValueError(f"no valid sample: {counts} (labels after {cfg.period.label_start}, window {L} days "
                         f"{mode}, no NaN input)")
    if counts["nan_inputs"]:
        log.info("dropped %d samples whose window reads a NaN input", counts["nan_inputs"])

    # ---- split ------------------------------------------------------------------------------------------
    pools, info = _split_pools(split, pix_c, day_c, rows, cols, time, sc, seed)
    index: dict[str, np.ndarray] = {}
    targets: dict[str, np.ndarray] = {}
    for k, name in enumerate(SPLITS):
        pool = pools[name]
        counts[f"{name}_pool"] = int(len(pool))
        limit = sc.max_train_samples if name == "train" else sc.max_eval_samples
        if len(pool) > limit:
            pool = np.random.default_rng([seed, 3, k]).choice(pool, size=limit, replace=False)
        pool = pool[np.lexsort((day_c[pool], pix_c[pool]))]
        index[name] = np.stack([pix_c[pool], day_c[pool]], axis=1).astype(np.int64)
        targets[name] = label[day_c[pool], pix_c[pool]].astype(np.float32)
        counts[name] = int(len(pool))
    del label, pix_c, day_c
    if counts["train"] == 0:
        raise ValueError(f"the {split} split left no training sample: {counts}")

    normalizer = _fit_normalizer(cube, spec, rows, cols, time, index["train"], offsets, split)
    lat = np.asarray(cube["lat"].values, np.float64)[rows]
    lon = np.asarray(cube["lon"].values, np.float64)[cols]
    s = Samples(index["train"], index["val"], index["test"], np.stack([rows, cols], axis=1), lat, lon, time,
                normalizer, L, mode, split, seed, counts, info, cube, targets)
    log.info("samples (%s split, L=%d %s): train %d, val %d, test %d of %d candidates", split, L, mode,
             counts["train"], counts["val"], counts["test"], counts["candidates"])
    return s


def _split_pools(split, pix_c, day_c, rows, cols, time, sc, seed):
    """Positions (into the candidate arrays) of the test, validation and training pools."""
    n = len(pix_c)
    rng_split = np.random.default_rng([seed, 1])
    info: dict = {}
    if split == "random":
        perm = rng_split.permutation(n)
        n_test = int(round(sc.test_fraction * n))
        is_test = np.zeros(n, bool)
        is_test[perm[:n_test]] = True
    elif split == "site":
        bs = int(sc.block_size)
        if bs < 1:
            raise ValueError(f"samples.block_size must be >= 1, got {bs}")
        n_bcols = int(cols.max()) // bs + 1
        block_of_pixel = (rows // bs) * n_bcols + cols // bs
        used = np.unique(pix_c)
        blocks, pix_per_block = np.unique(block_of_pixel[used], return_counts=True)
        if len(blocks) < 2:
            raise ValueError(f"site split: the samples lie in {len(blocks)} block(s) of {bs}x{bs} cells; "
                             "reduce samples.block_size")
        order = rng_split.permutation(len(blocks))
        cum = np.cumsum(pix_per_block[order])
        k = int(np.searchsorted(cum, sc.test_fraction * len(used))) + 1
        k = min(max(k, 1), len(blocks) - 1)
        test_blocks = np.sort(blocks[order[:k]])
        test_pixel = np.isin(block_of_pixel, test_blocks)
        is_test = test_pixel[pix_c]
        info.update(block_size=bs, test_blocks=[[int(b // n_bcols), int(b % n_bcols)] for b in test_blocks],
                    test_pixels=np.flatnonzero(test_pixel & np.isin(np.arange(len(rows)), used)).tolist())
    else:  # year
        years = np.asarray(time.year)[day_c]
        label_years = np.unique(years)
        if sc.test_years:
            test_years = sorted(int(y) for y in sc.test_years)
            if not np.isin(test_years, label_years).any():
                raise ValueError(f"samples.test_years {test_years} hold no sample; label years are "
                                 f"{label_years.min()}..{label_years.max()}")
        else:
            if len(label_years) < 2:
                raise ValueError(f"year split: the samples cover {len(label_years)} year(s); need 2 or more")
            k = min(max(int(round(sc.test_fraction * len(label_years))), 1), len(label_years) - 1)
            test_years = sorted(int(y) for y in rng_split.choice(label_years, size=k, replace=False))
        is_test = np.isin(years, test_years)
        info.update(test_years=test_years, train_years=[int(y) for y in label_years if y not in test_years])
    test_pool = np.flatnonzero(is_test)
    rest = np.flatnonzero(~is_test)
    rest = rest[np.random.default_rng([seed, 2]).permutation(len(rest))]
    n_val = int(round(sc.val_fraction * len(rest)))
    return {"test": test_pool, "val": np.sort(rest[:n_val]), "train": np.sort(rest[n_val:])}, info


def _fit_normalizer(cube, spec, rows, cols, time, train, offsets, split) -> Normalizer:
    """Statistics over the cells the training windows read (dynamic) and the training pixels (static)."""
    T, P = len(time), len(rows)
    lo, hi = int(offsets[0]), int(offsets[-1])
    # coverage by a difference array: +1 at the window's first day, -1 after its last day
    pix, day = train[:, PIXEL], train[:, DAY]
    diff = np.bincount((day + lo) * P + pix, minlength=(T + 1) * P)
    diff -= np.bincount((day + hi + 1) * P + pix, minlength=(T + 1) * P)
    covered = np.cumsum(diff.reshape(T + 1, P)[:T], axis=0) > 0
    del diff
    train_pixels = np.unique(pix)
    mean = np.zeros(spec.n_features)
    sd = np.ones(spec.n_features)
    j = 0
    for v in spec.dynamic:
        vals = _pixel_values(cube[v], rows, cols)[covered].astype(np.float64)
        mean[j], sd[j] = vals.mean(), vals.std()
        j += 1
    j += len(spec.flags)
    for v in spec.static:
        vals = _pixel_values(cube[v], rows, cols)[train_pixels].astype(np.float64)
        mean[j], sd[j] = vals.mean(), vals.std()
        j += 1
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
    fitted = {"split": split, "train_samples": int(len(train)), "cells": int(covered.sum()),
              "pixels": int(len(train_pixels)), "days": int(covered.any(axis=1).sum()),
              "rule": "dynamic: cells read by training windows, each once; static: training pixels; "
                      "flags and doy: identity"}
    return Normalizer(spec, mean, sd, fitted)


# ----------------------------------------------------------------------------------------------------------
# A small in-memory cube with the exact schema (tests, docs, benchmarks)
# ----------------------------------------------------------------------------------------------------------
def make_toy_cube(n_lat: int = 6, n_lon: int = 5, start: str | dt.date = "1998-01-01",
                  end: str | dt.date = "2002-12-31", label_start: str | dt.date = "2000-02-24", seed: int = 0,
                  lat_max: float = 40.0, lon_min: float = -100.0, n_ocean: int = 1,
                  label_gap_fraction: float = 0.05, input_nan_fraction: float = 0.0,
                  labels_before_start: bool = False, with_truth: bool = False):
    """A small synthetic cube with the schema of ``book/design.md`` ("The cube"), in memory.

    The true soil moisture is a seasonal cycle plus AR(1) anomalies (0.05..0.45 m3 m-3); albedo darkens and LST
    cools with wetter soil, ERA5-Land-like SM is wet-biased, labels are truth plus 0.02 m3 m-3 noise.

    Parameters
    ----------
    n_lat, n_lon : int
        Grid size, cells of 0.05 deg.
    start, end : str or datetime.date
        First and last day.
    label_start : str or datetime.date
        Labels are NaN before this day (unless ``labels_before_start``).
    seed : int
        Random seed.
    lat_max, lon_min : float
        North and west edges, degrees.
    n_ocean : int
        Cells of the south-east corner that are ocean (``land_mask = 0``, NaN inputs).
    label_gap_fraction : float
        Fraction of land pixel-days whose label is NaN.
    input_nan_fraction : float
        Fraction of land pixel-days whose ``lst`` stays NaN (an unfilled gap).
    labels_before_start : bool
        Also write labels before ``label_start`` (to test that they are ignored).
    with_truth : bool
        Also return the true soil moisture ``sm_true(time, lat, lon)``, m3 m-3.

    Returns
    -------
    xarray.Dataset or (xarray.Dataset, xarray.DataArray)
        The cube (and the truth).
    """
    from scipy.signal import lfilter  # noqa: PLC0415 (only the toy needs it)

    rng = np.random.default_rng(seed)
    time = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D")
    dom = Domain(int(round((90 - lat_max) / RES)), int(round((lon_min + 180) / RES)), n_lat, n_lon)
    T, ny, nx = len(time), n_lat, n_lon
    land = np.ones((ny, nx), np.int8)
    if n_ocean:
        land.reshape(-1)[-min(n_ocean, ny * nx - 1):] = 0
    x = np.linspace(0, 1, nx)[None, :] * np.ones((ny, 1))
    mean_sm = (0.15 + 0.15 * x + 0.03 * rng.standard_normal((ny, nx))).astype(np.float32)
    doy = np.asarray(time.day_of_year, np.float32)
    season = np.sin(2 * np.pi * (doy - 80) / 365.25).astype(np.float32)
    anom = lfilter([1.0], [1.0, -0.95], rng.standard_normal((T, ny * nx)).astype(np.float32), axis=0)
    sm = (mean_sm[None] + 0.05 * season[:, None, None] * (1 - x)[None]
          + 0.02 * anom.reshape(T, ny, nx).astype(np.float32))
    sm = np.clip(sm, 0.05, 0.45).astype(np.float32)

    def noise(sd):
        return (sd * rng.standard_normal((T, ny, nx))).astype(np.float32)

    bsa = (0.22 - 0.25 * (sm - 0.25) + 0.02 * season[:, None, None] + noise(0.01)).astype(np.float32)
    wsa = (bsa + 0.01 + noise(0.003)).astype(np.float32)
    lst = (290 + 12 * season[:, None, None] - 25 * (sm - 0.25) + noise(1.5)).astype(np.float32)
    era5 = (sm + 0.04 * (1 - x)[None] + noise(0.01)).astype(np.float32)
    label = (sm + noise(0.02)).astype(np.float32)
    label[rng.random(label.shape) < label_gap_fraction] = np.nan
    if not labels_before_start:
        label[time < pd.Timestamp(label_start)] = np.nan
    if input_nan_fraction > 0:
        lst[rng.random(lst.shape) < input_nan_fraction] = np.nan
    albedo_filled = (rng.random((T, ny, nx)) < 0.3).astype(np.int8)
    lst_filled = (rng.random((T, ny, nx)) < 0.3).astype(np.int8)
    ocean = land == 0
    for a in (bsa, wsa, lst, era5, label):
        a[:, ocean] = np.nan
    elevation = (800 + 300 * rng.standard_normal((ny, nx))).astype(np.float32)
    sand = rng.uniform(0.2, 0.7, (ny, nx)).astype(np.float32)
    clay = (rng.uniform(0.05, 0.35, (ny, nx)) * (1 - sand)).astype(np.float32)
    silt = (1 - sand - clay).astype(np.float32)
    for a in (elevation, sand, clay, silt):
        a[ocean] = np.nan
    platform = np.where(time.year < 2001, "NOAA-14", "NOAA-16").astype("<U7")

    dims3, dims2 = ("time", "lat", "lon"), ("lat", "lon")

    def var(data, dims, units, long_name, standard_name=None):
        attrs = {"units": units, "long_name": long_name}
        if standard_name:
            attrs["standard_name"] = standard_name
        return xr.Variable(dims, data, attrs)

    sm_std = "volume_fraction_of_condensed_water_in_soil"
    ds = xr.Dataset(
        {
            "albedo_bsa": var(bsa, dims3, "1", "shortwave black-sky albedo, gaps filled in time",
                              "surface_albedo"),
            "albedo_wsa": var(wsa, dims3, "1", "shortwave white-sky albedo, gaps filled in time",
                              "surface_albedo"),
            "lst": var(lst, dims3, "K", "land surface temperature, gaps filled in time",
                       "surface_temperature"),
            "albedo_filled": var(albedo_filled, dims3, "1", "1 where the albedo was gap-filled"),
            "lst_filled": var(lst_filled, dims3, "1", "1 where the LST was gap-filled"),
            "sm_era5land": var(era5, dims3, "m3 m-3", "ERA5-Land swvl1, daily mean, regridded to 0.05 deg",
                               sm_std),
            "sm_label": var(label, dims3, "m3 m-3", "GLASS-MODIS soil moisture aggregated to 0.05 deg", sm_std),
            "elevation": var(elevation, dims2, "m", "terrain elevation", "height_above_mean_sea_level"),
            "sand": var(sand, dims2, "1", "sand mass fraction"),
            "clay": var(clay, dims2, "1", "clay mass fraction"),
            "silt": var(silt, dims2, "1", "silt mass fraction"),
            "land_mask": var(land, dims2, "1", "1 = land"),
            "platform": xr.Variable(("time",), platform, {"long_name": "AVHRR platform of the day"}),
        },
        coords={"time": time.values, "lat": dom.lat, "lon": dom.lon},
        attrs={"title": "toy cube (glass_sm.data.samples.make_toy_cube)", "source": "synthetic twin",
               "history": "made in memory by glass_sm.data.samples.make_toy_cube", "Conventions": "CF-1.8"},
    )
    ds["time"].attrs.update(standard_name="time", long_name="time", axis="T")
    lat_lon_attrs(ds)
    if not with_truth:
        return ds
    sm[:, ocean] = np.nan
    truth = xr.DataArray(sm, dims=dims3, coords={"time": time.values, "lat": dom.lat, "lon": dom.lon},
                         name="sm_true", attrs={"units": "m3 m-3", "long_name": "true 0-5 cm soil moisture"})
    return ds, lat_lon_attrs(truth)
