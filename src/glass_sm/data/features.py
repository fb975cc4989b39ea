"""Features: which cube variables a window carries, in which order and units, and their normalization.

Per step, in this order (:class:`FeatureSpec`):

1. the dynamic cube variables ``samples.dynamic_features`` of the day (albedo, LST, ERA5-Land SM ...);
2. optionally (``samples.include_filled_flags``) the cube's 0/1 ``*_filled`` flags of those variables;
3. the static variables ``samples.static_features`` (terrain, texture), **repeated at every step**, so that
   every model - the recurrent ones, the Transformer and XGBoost on the flattened window - sees them in the
   same uniform ``(L, n_features)`` layout, at the price of ``L``-fold redundancy in the window;
4. optionally (``samples.add_doy``) ``sin`` and ``cos`` of ``2 pi doy / 365.25`` of the day.

Normalization (:class:`Normalizer`): dynamic and static features are standardised, ``(x - mean) / sd``; flags
and the day-of-year harmonics are passed unchanged (``mean = 0``, ``sd = 1``). The statistics are fitted on the
**training split only** (:func:`fit_normalizer`): for a dynamic feature over the set of ``(pixel, day)`` cells
that at least one training window reads (each cell once), for a static feature over the training pixels (each
pixel once). Nothing a validation or test window reads alone can change them. They are saved as JSON
(:meth:`Normalizer.to_dict`) so that they travel with a model checkpoint.

Memory layout: :func:`feature_array` loads the needed cube variables once into a C-contiguous float32 array of
shape ``(time, n_pixels, n_features)``, normalised, of ``T * P * F * 4`` bytes (demo: 14610 days x 800 pixels x
9 features = 421 MB), for any set of cells and any time range of the cube (the per-tile path of larger cubes).

Pixels: :func:`land_pixels` numbers the cube's land cells (``land_mask == 1``) in row-major order (north to
south, west to east); :func:`pixel_values` reads a variable at those cells.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from glass_sm.data.cube import CUBE_ATTRS
from glass_sm.data.windows import DAY, PIXEL
from glass_sm.paths import atomic_write

__all__ = [
    "DEFAULT_UNITS",
    "FeatureSpec",
    "Normalizer",
    "fit_normalizer",
    "feature_array",
    "land_pixels",
    "pixel_values",
    "daily_time",
    "require_variables",
    "doy_harmonics",
    "to_jsonable",
]

DEFAULT_UNITS = {**{name: attrs["units"] for name, attrs in CUBE_ATTRS.items()}, "doy_sin": "1", "doy_cos": "1"}
"""Units used when a cube variable carries no ``units`` attribute: those of the cube schema
(:data:`glass_sm.data.cube.CUBE_ATTRS`) and ``"1"`` for the day-of-year harmonics."""


# ----------------------------------------------------------------------------------------------------------
# The feature spec and its normalizer
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
        """Number of features ``F`` (the last axis of a window)."""
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

        Parameters
        ----------
        cfg : glass_sm.config.Config
            Uses ``cfg.samples`` (``dynamic_features``, ``static_features``, ``include_filled_flags``,
            ``add_doy``).
        cube : xarray.Dataset, optional
            The cube; required when the flags are included.
        include_filled_flags : bool, optional
            Overrides ``cfg.samples.include_filled_flags``.
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
        """JSON-able form: ``dynamic``, ``flags``, ``static``, ``doy``, ``units``."""
        return {"dynamic": list(self.dynamic), "flags": list(self.flags), "static": list(self.static),
                "doy": bool(self.doy), "units": dict(self.units)}

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSpec":
        """Inverse of :meth:`to_dict`."""
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
        """Feature names, in order."""
        return self.spec.names

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Normalise the last axis of ``x`` (raw values in the features' units) -> float32, dimensionless."""
        return ((np.asarray(x, np.float64) - self.mean) / self.sd).astype(np.float32)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Undo :meth:`apply`: normalised values -> the features' units (float64)."""
        return np.asarray(z, np.float64) * self.sd + self.mean

    def table(self) -> pd.DataFrame:
        """One row per feature: name, kind, units, mean, sd (mean and sd in the feature's units)."""
        t = self.spec.table()
        t["mean"], t["sd"] = self.mean, self.sd
        return t

    def to_dict(self) -> dict:
        """JSON-able form: the feature spec, ``mean`` and ``sd`` lists and ``fitted_on``."""
        return {"features": self.spec.to_dict(), "names": self.names, "mean": [float(v) for v in self.mean],
                "sd": [float(v) for v in self.sd], "fitted_on": to_jsonable(self.fitted_on)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        """Inverse of :meth:`to_dict`; the stored ``names`` must match the feature spec."""
        spec = FeatureSpec.from_dict(d["features"])
        if "names" in d and list(d["names"]) != spec.names:
            raise ValueError(f"normalizer names {d['names']} do not match its feature spec {spec.names}")
        return cls(spec, np.array(d["mean"], np.float64), np.array(d["sd"], np.float64), d.get("fitted_on", {}))

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON (atomically); returns ``path``."""
        path = Path(path)
        with atomic_write(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Normalizer":
        """Read a file written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def to_jsonable(obj):
    """``obj`` with NumPy scalars and arrays turned into Python numbers and lists, recursively (dict keys -> str).

    Other values are returned unchanged.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def fit_normalizer(cube: xr.Dataset, spec: FeatureSpec, rows: np.ndarray, cols: np.ndarray,
                   time: pd.DatetimeIndex, train: np.ndarray, offsets: np.ndarray, split: str) -> Normalizer:
    """Statistics over the cells the training windows read (dynamic) and the training pixels (static).

    Parameters
    ----------
    cube : xarray.Dataset
        The cube (may be lazy).
    spec : FeatureSpec
        The features.
    rows, cols : numpy.ndarray
        ``(P,)`` cells of the pixels (:func:`land_pixels`).
    time : pandas.DatetimeIndex
        The cube's ``T`` days.
    train : numpy.ndarray
        ``(n, 2)`` training samples ``(pixel, day)``.
    offsets : numpy.ndarray
        Window day offsets (:func:`glass_sm.data.windows.window_offsets`).
    split : str
        Split strategy, recorded in ``fitted_on``.

    Returns
    -------
    Normalizer
        ``mean``/``sd`` in the features' units; ``0``/``1`` for flags and day of year (and ``sd = 1`` where a
        feature is constant).
    """
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
        vals = pixel_values(cube[v], rows, cols)[covered].astype(np.float64)
        mean[j], sd[j] = vals.mean(), vals.std()
        j += 1
    j += len(spec.flags)
    for v in spec.static:
        vals = pixel_values(cube[v], rows, cols)[train_pixels].astype(np.float64)
        mean[j], sd[j] = vals.mean(), vals.std()
        j += 1
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
    fitted = {"split": split, "train_samples": int(len(train)), "cells": int(covered.sum()),
              "pixels": int(len(train_pixels)), "days": int(covered.any(axis=1).sum()),
              "rule": "dynamic: cells read by training windows, each once; static: training pixels; "
                      "flags and doy: identity"}
    return Normalizer(spec, mean, sd, fitted)


# ----------------------------------------------------------------------------------------------------------
# Reading features from the cube
# ----------------------------------------------------------------------------------------------------------
def require_variables(cube: xr.Dataset, names) -> None:
    """Raise ``KeyError`` naming the variables of ``names`` that ``cube`` lacks (and what it holds)."""
    missing = [n for n in names if n not in cube.variables]
    if missing:
        raise KeyError(f"cube lacks variable(s) {missing} needed by the samples "
                       f"(found: {sorted(map(str, cube.data_vars))}); check samples.dynamic_features/"
                       f"static_features against book/design.md 'The cube'")


def daily_time(cube: xr.Dataset) -> pd.DatetimeIndex:
    """The cube's days; ``ValueError`` unless they are consecutive (windows are index ranges)."""
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
    require_variables(cube, ["land_mask"])
    mask = np.asarray(cube["land_mask"].transpose("lat", "lon").values)
    rows, cols = np.nonzero(np.nan_to_num(mask) == 1)
    if rows.size == 0:
        raise ValueError("cube.land_mask has no land cell (== 1)")
    return rows.astype(np.int64), cols.astype(np.int64)


def pixel_values(da: xr.DataArray, rows: np.ndarray, cols: np.ndarray,
                 time: slice | None = None) -> np.ndarray:
    """Values of ``da`` at the cells ``(rows, cols)``: ``(T, P)`` if it has ``time`` else ``(P,)``, float32.

    Only the bounding box of the cells is read (one read, lazily-backed cubes included).

    Parameters
    ----------
    da : xarray.DataArray
        A cube variable ``(time, lat, lon)`` or ``(lat, lon)``, any units (kept).
    rows, cols : numpy.ndarray
        ``(P,)`` int cell indices along ``lat`` and ``lon``.
    time : slice, optional
        Positional slice of ``da.time`` (default: all days).
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


def doy_harmonics(time: pd.DatetimeIndex) -> np.ndarray:
    """``(T, 2)`` float32, dimensionless: sin and cos of ``2 pi doy / 365.25`` of each day."""
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
        ``(T, P, F)`` float32, normalised (dimensionless); NaN where an input is NaN.
    """
    spec = normalizer.spec
    require_variables(cube, spec.cube_variables)
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    times = daily_time(cube)
    if time is not None:
        times = times[time]
    T, P, F = len(times), len(rows), spec.n_features
    out = np.empty((T, P, F), np.float32)
    mean, sd = normalizer.mean, normalizer.sd
    j = 0
    for v in spec.dynamic + spec.flags:
        vals = pixel_values(cube[v], rows, cols, time)
        out[:, :, j] = (vals - np.float32(mean[j])) / np.float32(sd[j])
        j += 1
    for v in spec.static:
        vals = pixel_values(cube[v], rows, cols)
        out[:, :, j] = ((vals - mean[j]) / sd[j]).astype(np.float32)[None, :]
        j += 1
    if spec.doy:
        h = doy_harmonics(times)
        out[:, :, j] = ((h[:, 0] - mean[j]) / sd[j])[:, None]
        out[:, :, j + 1] = ((h[:, 1] - mean[j + 1]) / sd[j + 1])[:, None]
    return out
