"""Production's unit of work: tiles of the grid, the days of a year, and where a tile's inputs come from.

A :class:`Tile` is a block of cells of the source grid; :func:`make_tiles` cuts a grid into tiles that never split a
product chunk (:func:`chunk_edge`). A :class:`TileSource` hands production the normalised inputs of one tile and a
range of days; :class:`CubeTileSource` reads them from the analysis-ready cube. Memory per task is bounded by the
tile (:func:`tile_memory_bytes`), never by the domain.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import xarray as xr

from glass_sm.data import FeatureSpec, Normalizer, feature_array
from glass_sm.data.cube import dataset_fingerprint, store_fingerprint
from glass_sm.product import FLAG_BITS

__all__ = ["Tile", "TileSource", "CubeTileSource", "make_tiles", "chunk_edge", "year_days", "tile_memory_bytes"]


# ----------------------------------------------------------------------------------------------------------
# Tiles and days
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Tile:
    """A block of cells ``[row0, row1) x [col0, col1)`` of the source grid (rows north to south)."""

    row0: int
    row1: int
    col0: int
    col1: int

    @property
    def name(self) -> str:
        """File-name-safe id, e.g. ``r0040_c0020``."""
        return f"r{self.row0:04d}_c{self.col0:04d}"

    @property
    def shape(self) -> tuple[int, int]:
        return (self.row1 - self.row0, self.col1 - self.col0)

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.row0, self.row1), slice(self.col0, self.col1)


def make_tiles(nrows: int, ncols: int, tile_size: int) -> list[Tile]:
    """Cut an ``nrows x ncols`` grid into tiles of at most ``tile_size`` cells a side, row-major.

    Every cell belongs to exactly one tile; the last row and column of tiles may be smaller.
    """
    if tile_size < 1:
        raise ValueError(f"production.tile_size must be >= 1 cell, got {tile_size}")
    if nrows < 1 or ncols < 1:
        raise ValueError(f"empty grid {nrows} x {ncols}")
    return [Tile(r, min(r + tile_size, nrows), c, min(c + tile_size, ncols))
            for r in range(0, nrows, tile_size) for c in range(0, ncols, tile_size)]


def chunk_edge(tile_size: int, max_edge: int = 64, min_edge: int = 16) -> int:
    """Spatial chunk edge of the product: the largest divisor of ``tile_size`` <= ``max_edge`` (so a tile never
    splits a chunk), or ``min(tile_size, max_edge)`` when that divisor would be below ``min_edge``."""
    best = max(d for d in range(1, min(tile_size, max_edge) + 1) if tile_size % d == 0)
    return best if best >= min(min_edge, tile_size) else min(tile_size, max_edge)


def year_days(time: pd.DatetimeIndex, year: int) -> tuple[int, int]:
    """Positions ``[a, b)`` of ``year``'s days in ``time``; raises ValueError when there are none."""
    years = np.asarray(time.year)
    idx = np.flatnonzero(years == year)
    if idx.size == 0:
        raise ValueError(f"year {year} is outside the source's days {time[0].date()}..{time[-1].date()}")
    return int(idx[0]), int(idx[-1]) + 1


def tile_memory_bytes(tile_size: int, window: int, n_features: int, batch_size: int, days: int = 366) -> int:
    """Upper bound of the array memory of one task, bytes; it depends on the tile, never on the domain.

    Inputs ``(days + L - 1, cells, F)`` float32 twice (read + pixel-major copy), one gathered batch
    ``(batch_size + days, L, F)``, the outputs ``(days, cells)`` float32 + flags, and per-cell masks.
    """
    cells = tile_size * tile_size
    inputs = (days + window - 1) * cells * n_features * 4
    batch = (batch_size + days) * window * n_features * 4
    outputs = days * cells * (4 + 1 + 4)
    masks = (days + window) * cells * 2
    return int(2 * inputs + batch + outputs + masks)


# ----------------------------------------------------------------------------------------------------------
# Where the inputs come from
# ----------------------------------------------------------------------------------------------------------
@runtime_checkable
class TileSource(Protocol):
    """Anything that can hand production the inputs of one tile and a range of days.

    The cube implementation is :class:`CubeTileSource`; a real-data source can read the GLASS HDF4, ERA5-Land
    and static files per tile instead and plug in here unchanged. Sources are pickled to Dask workers, so
    they should hold paths, not open files.

    Attributes
    ----------
    lat, lon : numpy.ndarray
        Cell centres of the source grid, degrees (latitude descending).
    time : pandas.DatetimeIndex
        Consecutive days available.
    source : str
        ``'synthetic twin'`` or ``'real data'`` (goes into the product's ``source`` attribute).
    """

    lat: np.ndarray
    lon: np.ndarray
    time: pd.DatetimeIndex
    source: str

    def land_mask(self) -> np.ndarray:
        """``(nlat, nlon)`` bool, True on land."""

    def check(self, model) -> None:
        """Raise :class:`glass_sm.models.CheckpointMismatchError` if the inputs do not fit the model."""

    def read_features(self, rows: np.ndarray, cols: np.ndarray, time: slice, normalizer) -> np.ndarray:
        """Normalised features ``(T, P, F)`` float32 of cells ``(rows, cols)`` and days ``time``; NaN if missing."""

    def read_gap_flags(self, rows: np.ndarray, cols: np.ndarray, time: slice) -> np.ndarray:
        """``(T, P)`` uint8 with :data:`FLAG_BITS` ``albedo_gap_filled`` / ``lst_gap_filled`` set."""

    # Optional: ``fingerprint() -> str``, a string that changes when the inputs change; recorded in the product
    # files so that finished years are re-produced on other inputs. A source without it records "" and its
    # changes go unnoticed.


class CubeTileSource:
    """:class:`TileSource` reading the analysis-ready cube (``data/cube.zarr``, ``book/design.md``).

    Parameters
    ----------
    cube : path-like or xarray.Dataset
        A zarr store path (opened lazily without Dask in each process, so a tile reads only the chunks it
        touches) or an open Dataset (pickled with the task: keep it small, e.g. a test cube).
    """

    def __init__(self, cube):
        if isinstance(cube, xr.Dataset):
            self.path, self._ds = None, cube
        else:
            self.path, self._ds = Path(cube), None
            if not self.path.exists():
                raise FileNotFoundError(f"cube not found: {self.path} (run stage 01 first)")
        ds = self.ds
        for v in ("land_mask",):
            if v not in ds.variables:
                raise KeyError(f"cube {self.path or '(in memory)'} lacks '{v}'; found {sorted(ds.data_vars)}")
        self.lat = np.asarray(ds["lat"].values, np.float64)
        self.lon = np.asarray(ds["lon"].values, np.float64)
        self.time = pd.DatetimeIndex(ds["time"].values)
        src = str(ds.attrs.get("source", ""))
        self.source = "synthetic twin" if "twin" in src.lower() else "real data"
        self.flag_vars = [v for v in ("albedo_filled", "lst_filled") if v in ds.variables]

    @property
    def ds(self) -> xr.Dataset:
        if self._ds is None:
            with warnings.catch_warnings():  # a store without consolidated metadata is fine, just slower to open
                warnings.simplefilter("ignore", RuntimeWarning)
                self._ds = xr.open_zarr(self.path, consolidated=None, chunks=None)
        return self._ds

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.path is not None:
            state["_ds"] = None  # reopened lazily in the worker
        return state

    def land_mask(self) -> np.ndarray:
        if getattr(self, "_mask", None) is None:
            self._mask = np.nan_to_num(np.asarray(self.ds["land_mask"].transpose("lat", "lon").values)) == 1
        return self._mask

    def check(self, model) -> None:
        model.check_cube(self.ds)

    def fingerprint(self) -> str:
        """:func:`store_fingerprint` of the store, or a content hash of an in-memory cube."""
        return store_fingerprint(self.path) if self.path is not None else dataset_fingerprint(self._ds)

    def read_features(self, rows, cols, time, normalizer) -> np.ndarray:
        return feature_array(self.ds, normalizer, rows, cols, time)

    def read_gap_flags(self, rows, cols, time) -> np.ndarray:
        n_days = len(range(*time.indices(len(self.time))))
        out = np.zeros((n_days, len(rows)), np.uint8)
        if not self.flag_vars:
            return out
        identity = Normalizer(FeatureSpec([], list(self.flag_vars)), np.zeros(len(self.flag_vars)),
                              np.ones(len(self.flag_vars)))
        raw = feature_array(self.ds, identity, rows, cols, time)
        for j, v in enumerate(self.flag_vars):
            bit = FLAG_BITS["albedo_gap_filled" if v.startswith("albedo") else "lst_gap_filled"]
            out |= np.where(np.nan_to_num(raw[:, :, j]) > 0, bit, 0).astype(np.uint8)
        return out
