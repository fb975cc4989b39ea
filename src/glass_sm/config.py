"""Typed parameters for every stage, loaded from ``params/*.yaml``.

One YAML mapping per run, one section per concern. Every key is declared here with its type, default and a
one-line documentation string; :func:`load` rejects an unknown key (naming the closest valid one) or a value of
the wrong type *before any work starts*.

>>> cfg = load("params/smoke.yaml", {"training.epochs": 2})   # doctest: +SKIP
>>> cfg.training.epochs                                         # doctest: +SKIP
2

Model hyperparameters
---------------------
``models.hparams`` has a section ``common`` (shared settings, applied to every model whose class declares the key)
and one section per model of :data:`glass_sm.models.MODEL_REGISTRY` (wins over ``common``); each key is checked
against the class's ``default_hparams`` (name) and ``__init__`` annotations (type). The sections are merged onto
:data:`DEFAULT_HPARAMS` key by key. :func:`glass_sm.models.model_hparams` resolves them for one model.

Path templates
--------------
Data paths may contain ``{raw}`` (the run's twin input folder ``results/<run>/data/raw``), ``{results}`` (the
run's results folder) and ``{root}`` (``data.root``, or the ``GLASS_SM_DATA`` environment variable): they are
expanded once, here.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import difflib
import math
import os
import re
import subprocess
import sys
import types
import typing
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Optional, get_args, get_origin

import yaml

from glass_sm.grid import RES, Domain
from glass_sm.models.registry import (COMMON, MODEL_REGISTRY, hparam_docs, hparam_ranges, hparam_types,
                                      model_hparams)
from glass_sm.paths import atomic_write

__all__ = [
    "Config",
    "ConfigError",
    "load",
    "dump",
    "to_dict",
    "describe",
    "write_provenance",
]


class ConfigError(ValueError):
    """A parameter file is invalid (unreadable, unknown key, wrong type, value out of range)."""


def _num(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Range:
    """Valid values of a numeric parameter (of every item, for a list); every bound is optional.

    ``ge``/``gt`` and ``le``/``lt`` are the inclusive/exclusive lower and upper bounds; ``min_items`` and
    ``n_items`` constrain the length of a list. ``str(Range(ge=0, lt=1))`` is ``'in [0, 1)'``.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    min_items: int | None = None
    n_items: int | None = None

    def bounds(self) -> str:
        """The bounds in words: ``'>= 1'``, ``'> 0'``, ``'in [0, 1)'`` (``''`` without bounds)."""
        lo = (f"[{_num(self.ge)}" if self.ge is not None else f"({_num(self.gt)}" if self.gt is not None
              else None)
        hi = (f"{_num(self.le)}]" if self.le is not None else f"{_num(self.lt)})" if self.lt is not None
              else None)
        if lo and hi:
            return f"in {lo}, {hi}"
        if lo:
            return f"{'>=' if self.ge is not None else '>'} {lo[1:]}"
        if hi:
            return f"{'<=' if self.le is not None else '<'} {hi[:-1]}"
        return ""

    def items(self) -> str:
        """The length constraint in words: ``'(at least 1 item)'``, ``'(exactly 2 items)'`` or ``''``."""
        n = self.n_items if self.n_items is not None else self.min_items
        if n is None:
            return ""
        return f"({'exactly' if self.n_items is not None else 'at least'} {n} item{'s' if n != 1 else ''})"

    def __str__(self) -> str:
        return " ".join(t for t in (self.bounds(), self.items()) if t)

    def contains(self, x: float) -> bool:
        """Whether the number ``x`` is within the bounds (NaN never is)."""
        return ((self.ge is None or x >= self.ge) and (self.gt is None or x > self.gt)
                and (self.le is None or x <= self.le) and (self.lt is None or x < self.lt))

    def check(self, value: Any, key: str) -> None:
        """Raise :class:`ConfigError` naming ``key``, the value and the range when ``value`` (a number, a list
        of numbers, or None: always valid) is out of range; for a list, ``key[i]`` names the item."""
        if isinstance(value, list):
            n = len(value)
            if (self.n_items is not None and n != self.n_items) or (self.min_items is not None
                                                                    and n < self.min_items):
                raise ConfigError(f"{key}: {value!r} has {n} item{'s' if n != 1 else ''}; needs "
                                  f"{self.items()[1:-1]}")
            for i, item in enumerate(value):
                self.check(item, f"{key}[{i}]")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and not self.contains(value):
            raise ConfigError(f"{key}: {value!r} is out of range (allowed: {self.bounds()})")


def P(default: Any, doc: str, **bounds) -> Any:
    """Declare a parameter: its default, documentation and, for a number or a list of numbers, its valid range.

    ``bounds`` are the fields of :class:`Range` (``ge=1``, ``gt=0``, ``le=1``, ``lt=1``, ``min_items=1`` ...);
    :func:`load` checks them, and :func:`describe` shows them.
    """
    metadata = {"doc": doc, "range": Range(**bounds) if bounds else None}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: copy.deepcopy(d), metadata=metadata)
    return field(default=default, metadata=metadata)


# ----------------------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------------------
@dataclass
class RunConfig:
    """Identity of a run: its name decides ``results/<name>/``."""

    name: str = P("demo", "run name; outputs go to <results_dir>/<name>/ (a plain folder name: letters, digits, "
                          "'.', '_', '-', not starting with '.')")
    seed: int = P(42, "master random seed (twin, splits, model initialisation)", ge=0)
    results_dir: Path = P(Path("results"), "folder holding every run's outputs")
    description: str = P("", "free text shown in the book")


@dataclass
class DomainConfig:
    """Lat/lon box of the run, snapped outward to whole 0.05 deg cells."""

    lat_min: float = P(40.0, "southern edge, degrees north", ge=-90, le=90)
    lat_max: float = P(41.0, "northern edge, degrees north", ge=-90, le=90)
    lon_min: float = P(-100.0, "western edge, degrees east (-180..180)", ge=-180, le=180)
    lon_max: float = P(-99.0, "eastern edge, degrees east (-180..180)", ge=-180, le=180)
    resolution: float = P(0.05, "output grid spacing, degrees (the product's 0.05)", gt=0)


@dataclass
class PeriodConfig:
    """Dates covered by the run (inclusive)."""

    start: dt.date = P(dt.date(1982, 1, 1), "first day")
    end: dt.date = P(dt.date(2021, 12, 31), "last day")
    label_start: dt.date = P(dt.date(2000, 2, 24), "first day of GLASS-MODIS labels (MODIS Terra start)")


@dataclass
class TwinConfig:
    """The synthetic twin (see :mod:`glass_sm.twin` for the physics and the source of each default)."""

    enabled: bool = P(True, "generate the twin's input files before building the cube")
    n_stations: int = P(12, "number of ISMN-like in situ stations (at least 1: stage 05 validates against them)",
                        ge=1)
    station_pre2000_fraction: float = P(0.4, "fraction of stations that start before 2000", ge=0, le=1)
    era5_wet_bias: float = P(0.06, "ERA5-Land-like wet bias in a dry climate, m3 m-3 (smaller when wet)",
                             ge=-0.2, le=0.2)
    era5_precip_error: float = P(
        0.8,
        "relative sd of the reanalysis daily precipitation error (lognormal); 0.8 gives ERA5-like vs truth "
        "r ~ 0.86, ubRMSE ~ 0.045 m3 m-3, the range of reanalysis surface SM against in situ networks "
        "(Beck et al., 2021, HESS 25, 17-40); 0.25 made the reanalysis unrealistically good (r 0.93)",
        ge=0,
    )
    label_noise: float = P(0.02, "GLASS-MODIS-like label noise sd, m3 m-3", ge=0)
    label_gap_fraction: float = P(0.05, "fraction of missing label pixel-days", ge=0, lt=1)
    cloud_base: float = P(0.35, "mean cloud probability on a dry day", ge=0, le=1)
    albedo_noise: float = P(0.01, "albedo retrieval noise sd, dimensionless", ge=0)
    lst_noise: float = P(1.5, "LST retrieval noise sd, K", ge=0)
    aridity_west_east: list[float] = P([0.25, 1.2], "aridity index P/PET at the western and eastern domain edges",
                                       gt=0, n_items=2)
    mean_elevation: float = P(800.0, "domain-mean terrain height, m", gt=0)
    relief: float = P(600.0, "terrain relief (sd), m", ge=0)
    modis_pixel_m: float = P(1000.0, "pixel size of the GLASS-MODIS-like sinusoidal GeoTIFFs, m", ge=100)
    static_resolution: float = P(0.01, "resolution of the DEM/texture GeoTIFFs, degrees (divides 0.05)",
                                 gt=0, le=0.05)
    cci_resolution: float = P(0.25, "resolution of the ESA-CCI-like product, degrees (a multiple of 0.05)",
                              ge=0.05, le=5)
    cloud_wet: float = P(0.85, "cloud probability on a wet day", ge=0, le=1)
    storm_length_km: float = P(60.0, "correlation length of the daily precipitation fields, km", gt=0)
    platform_albedo_step: float = P(0.02, "sd of each NOAA platform's relative albedo calibration step, "
                                          "dimensionless", ge=0)
    platform_lst_step: float = P(0.8, "sd of each NOAA platform's LST calibration step, K", ge=0)
    drift_residual: float = P(0.5, "fraction of the orbital-drift LST cooling left after the producer's correction",
                              ge=0, le=1)
    cci_noise: float = P(0.04, "ESA-CCI-like random error sd from 2007 on, m3 m-3 (x1.5 before)", ge=0)
    cci_gap_fraction: float = P(0.4, "ESA-CCI-like fraction of missing cell-days from 2007 on", ge=0, lt=1)
    cci_early_gap_fraction: float = P(0.7, "ESA-CCI-like fraction of missing cell-days before 2007", ge=0, lt=1)
    cci_scale_error: float = P(0.1, "sd of the ESA-CCI-like per-cell multiplicative scale error, dimensionless",
                               ge=0)
    station_noise: float = P(0.02, "sd of the AR(1) point-vs-pixel error of the in situ stations, m3 m-3", ge=0)


@dataclass
class DataConfig:
    """Where stage 01 reads its inputs (twin or real data)."""

    source: Literal["twin", "real"] = P("twin", "'twin' (synthetic, default) or 'real'")
    root: Optional[Path] = P(None, "root of the real data (or env GLASS_SM_DATA); used as {root}")
    avhrr_dir: Path = P(Path("{raw}/avhrr"), "GLASS AVHRR tree with albedo/<YYYY>/ and lst/<YYYY>/")
    era5land_dir: Path = P(Path("{raw}/era5land"), "ERA5-Land swvl1 files (netCDF or GRIB)")
    glass_modis_dir: Path = P(Path("{raw}/glass_modis"), "GLASS-MODIS SM GeoTIFFs")
    static_dir: Path = P(Path("{raw}/static"), "dem.tif, sand.tif, clay.tif, silt.tif")
    stations_dir: Path = P(Path("{raw}/ismn"), "ISMN archive (zip or folder)")
    esa_cci_dir: Path = P(Path("{raw}/esa_cci"), "ESA CCI SM (combined) files, for validation")
    truth_path: Optional[Path] = P(Path("{results}/data/truth.nc"), "twin truth (None for real data)")


@dataclass
class CubeConfig:
    """The harmonized analysis-ready cube."""

    time_chunk: int = P(365, "zarr chunk length along time, days", ge=1)
    space_chunk: int = P(64, "zarr chunk edge along lat and lon, cells", ge=1)
    max_gap_days: int = P(30, "longest gap filled by linear interpolation; longer gaps use the climatology", ge=0)
    build_tile: int = P(
        64, "cube built tile by tile over (lat, lon) tiles of this edge, cells (a multiple of space_chunk); "
        "memory is bounded by one tile x the period", ge=1,
    )


@dataclass
class SamplesConfig:
    """Training samples: (pixel, day) indices into the cube."""

    window: int = P(30, "window length L, days", ge=1)
    window_mode: Literal["past", "centred"] = P("past", "window = L days ending at the target day, or centred")
    dynamic_features: list[str] = P(
        ["albedo_bsa", "albedo_wsa", "lst", "sm_era5land"], "per-day input variables of the cube"
    )
    static_features: list[str] = P(["elevation", "sand", "clay"], "static variables, repeated at every step")
    add_doy: bool = P(True, "add sin/cos of day of year as features")
    include_filled_flags: bool = P(False, "add the cube's 0/1 *_filled gap-fill flags of the dynamic inputs")
    split: Literal["random", "site", "year"] = P("site", "random, site-independent or year-independent split")
    test_fraction: float = P(0.2, "fraction of samples / pixels / years held out for testing", gt=0, lt=1)
    val_fraction: float = P(0.1, "fraction of the training part used for early stopping", gt=0, lt=1)
    block_size: int = P(4, "edge of the spatial blocks held out together by the site split, cells", ge=1)
    test_years: list[int] = P([], "years held out by the year split (empty: chosen at random; each within the "
                                  "period)", ge=1)
    max_train_samples: int = P(200000, "subsample the training windows to at most this many", ge=1)
    max_eval_samples: int = P(100000, "subsample the validation/test windows to at most this many", ge=1)


DEFAULT_HPARAMS = {
    COMMON: {"hidden_size": 64, "num_layers": 2, "dropout": 0.1, "d_model": 64, "n_heads": 4},
    "xgboost": {"n_estimators": 600, "max_depth": 8, "learning_rate": 0.1, "early_stopping_rounds": 20, "n_jobs": 2},
}
"""Default ``models.hparams``; a parameter file's sections are merged onto it key by key."""

RENAMED = {
    **{f"models.{k}": f"models.hparams.{COMMON}.{k}" for k in ("hidden_size", "num_layers", "dropout", "d_model",
                                                               "n_heads")},
    **{f"models.xgb_{k}": f"models.hparams.xgboost.{k}" for k in ("n_estimators", "max_depth", "learning_rate",
                                                                  "early_stopping_rounds", "n_jobs")},
}
"""Parameters that moved: old dotted key -> new dotted key (named in the error for a file still using one)."""


@dataclass
class ModelsConfig:
    """Model zoo of stage 02 (see :mod:`glass_sm.models`)."""

    names: list[str] = P(["lstm", "bilstm", "atlstm", "transformer", "xgboost"], "models to compare", min_items=1)
    hparams: dict = P(
        DEFAULT_HPARAMS,
        "hyperparameters: hparams.common.<key> for every model declaring <key>, hparams.<model>.<key> for one "
        "model (wins over common); keys set nowhere take the model class's default (one row per key below)",
    )
    sm_bins: list[float] = P([0.0, 0.1, 0.2, 0.3, 0.4, 1.0], "soil-moisture bin edges of the per-bin metrics, m3 m-3 "
                                                                  "(increasing)", ge=0, le=1, min_items=2)
    split_strategies: list[Literal["random", "site", "year"]] = P(["random", "site", "year"],
                                                               "split strategies compared by stage 02")
    split_models: list[str] = P([], "models trained for every split strategy (empty: all of names)")
    rate_windows: int = P(20000, "test windows timed for the inference rate (windows/s)", ge=1)


@dataclass
class TrainingConfig:
    """The shared training loop (see :mod:`glass_sm.training`)."""

    epochs: int = P(20, "maximum epochs", ge=1)
    batch_size: int = P(512, "mini-batch size, windows", ge=1)
    lr: float = P(2e-3, "AdamW learning rate", gt=0)
    weight_decay: float = P(1e-4, "AdamW weight decay", ge=0)
    patience: int = P(4, "early-stopping patience, epochs", ge=1)
    max_batches_per_epoch: Optional[int] = P(None, "cap on batches per epoch (None: all)", ge=1)
    n_boot: int = P(500, "bootstrap resamples for the confidence intervals", ge=1)
    torch_threads: int = P(1, "torch CPU threads in stages 02-03 (0: torch default; 1: robust on a busy 2-core CPU)",
                            ge=0)
    eval_batch_size: int = P(4096, "windows per batch for validation and prediction", ge=1)
    init_output_bias: bool = P(True, "start the torch models' output bias at the mean training label (m3 m-3)")


@dataclass
class AtLSTMConfig:
    """Stage 03: sequence-length experiment and the final AtLSTM."""

    lengths: list[int] = P([1, 3, 7, 15, 30, 60], "window lengths of the sequence-length experiment, days", ge=1,
                            min_items=1)
    final_window: int = P(30, "window length of the production model, days", ge=1)
    final_split: Literal["random", "site", "year"] = P("site", "split of the production model")
    permutation_repeats: int = P(3, "repeats of the permutation feature importance", ge=1)
    length_models: list[str] = P(["atlstm", "lstm"], "models of the sequence-length experiment")
    length_epochs: Optional[int] = P(None, "maximum epochs of each sequence-length run (None: training.epochs)",
                                     ge=1)
    final_epochs: Optional[int] = P(None, "maximum epochs of the production model (None: training.epochs)", ge=1)
    importance_windows: int = P(20000, "test windows used by the permutation feature importance", ge=1)


@dataclass
class ProductionConfig:
    """Stage 04: tiled, resumable inference over the grid and period."""

    tile_size: int = P(64, "tile edge, cells", ge=1)
    years: list[int] = P([], "years to produce (empty: all of the period; each within the period)", ge=1)
    scheduler_address: Optional[str] = P(None, "existing Dask scheduler (None: a LocalCluster)")
    n_workers: int = P(1, "LocalCluster workers", ge=1)
    threads_per_worker: int = P(2, "threads per worker", ge=1)
    batch_size: int = P(8192, "inference batch, windows", ge=1)
    encoding: Literal["int16", "float32"] = P("int16", "storage of sm: scaled int16 or float32")
    overwrite: bool = P(False, "rewrite finished years")
    scheduler: Literal["distributed", "synchronous"] = P("distributed", "Dask cluster, or in-process (tests)")
    model_batch: int = P(256, "windows per model call inside a batch (CPU caches favour 128-512)", ge=1)
    torch_threads: Optional[int] = P(None, "torch threads per task (None: 1; small LSTM GEMMs slow down with more)",
                                     ge=1)


@dataclass
class ValidationConfig:
    """Stage 05: in situ validation and intercomparison."""

    depth_from: float = P(0.0, "upper sensor depth, m", ge=0)
    depth_to: float = P(0.05, "lower sensor depth, m (below depth_from)", gt=0)
    min_days: int = P(60, "stations with fewer collocated days are listed, not scored", ge=1)
    n_boot: int = P(500, "bootstrap resamples for station metrics", ge=1)
    split_periods: bool = P(False, "score a station straddling 2000-01-01 separately before and after it")
    min_pairs: int = P(30, "fewest common days for a pixel's product-vs-product metrics", ge=2)
    tc_min_n: int = P(100, "fewest (product, reference, station) days for triple collocation", ge=2)
    break_window_days: int = P(730, "window on each side of an AVHRR platform change for the break test, days",
                                ge=1)
    trend_min_periods: int = P(8, "fewest valid annual means for a per-pixel Sen/Mann-Kendall trend", ge=3)


@dataclass
class FiguresConfig:
    """Stage 06: paper figures."""

    dpi: int = P(300, "PNG resolution, dots per inch", ge=1, le=1200)
    formats: list[str] = P(["png", "pdf"], "file formats written for each figure", min_items=1)
    cmap: str = P("cividis", "sequential colour-blind-safe colormap for soil moisture")


@dataclass
class Config:
    """All parameters of a run."""

    run: RunConfig = field(default_factory=RunConfig)
    domain: DomainConfig = field(default_factory=DomainConfig)
    period: PeriodConfig = field(default_factory=PeriodConfig)
    twin: TwinConfig = field(default_factory=TwinConfig)
    data: DataConfig = field(default_factory=DataConfig)
    cube: CubeConfig = field(default_factory=CubeConfig)
    samples: SamplesConfig = field(default_factory=SamplesConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    atlstm: AtLSTMConfig = field(default_factory=AtLSTMConfig)
    production: ProductionConfig = field(default_factory=ProductionConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    figures: FiguresConfig = field(default_factory=FiguresConfig)
    source_file: Optional[str] = field(default=None, metadata={"doc": "(set by load) the params file"})

    # ---- convenience -------------------------------------------------------------------------------
    @property
    def results(self) -> Path:
        """``<results_dir>/<run name>``."""
        return Path(self.run.results_dir) / self.run.name

    @property
    def is_twin(self) -> bool:
        return self.data.source == "twin"


# ----------------------------------------------------------------------------------------------------------
# Validation machinery
# ----------------------------------------------------------------------------------------------------------
def _type_name(tp: Any, rng: Range | None = None) -> str:
    """``'int'``, ``'list of str'``, ``"'past' | 'centred'"``; with a range ``'int >= 1'``, ``'float in [0, 1)'``,
    ``'list of int >= 1 (at least 1 item)'``, ``'int >= 1 | null'``."""
    bounds = rng.bounds() if rng else ""
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = get_args(tp)
        return " | ".join(_type_name(a, rng) if a is not type(None) else "null" for a in args)
    if tp is type(None):
        return "null"
    if tp is list or get_origin(tp) is list:
        item = get_args(tp)
        text = f"list of {_type_name(item[0])}" if item else "list"
        return " ".join(t for t in (text, bounds, rng.items() if rng else "") if t)
    name = getattr(tp, "__name__", str(tp))
    return f"{name} {bounds}" if bounds else name


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against type ``tp``; return it converted (dates, paths)."""
    origin = get_origin(tp)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{key}: {value!r} is not one of {_type_name(tp)}{_did_you_mean(value, get_args(tp))}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{key}: null is not allowed (expected {_type_name(tp)})")
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} is not {_type_name(tp)}")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r} ({type(value).__name__})")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r} ({type(value).__name__})")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r} ({type(value).__name__})")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r} ({type(value).__name__})")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{key}: expected a path, got {value!r} ({type(value).__name__})")
        return Path(value)
    if tp is dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a date YYYY-MM-DD, got {value!r}")
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r} ({type(value).__name__})")
        return dict(value)
    if tp is list or origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r} ({type(value).__name__})")
        item = get_args(tp)
        return [_coerce(v, item[0], f"{key}[{i}]") for i, v in enumerate(value)] if item else list(value)
    if dataclasses.is_dataclass(tp):
        return _build(tp, {} if value is None else value, key)  # "training:" with nothing under it
    raise ConfigError(f"{key}: unsupported parameter type {tp!r}")  # pragma: no cover


def _build(cls: type, mapping: Any, prefix: str = "") -> Any:
    if not isinstance(mapping, dict):
        raise ConfigError(f"{prefix or 'params'}: expected a mapping, got {type(mapping).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source_file"}
    for k in mapping:
        if k not in fields:
            full = f"{prefix}.{k}" if prefix else str(k)
            if full in RENAMED:
                raise ConfigError(f"parameter '{full}' has moved: write it as '{RENAMED[full]}'")
            raise _unknown_key(full, k, fields)
    kwargs = {}
    for name, value in mapping.items():
        full = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(value, hints[name], full)
        rng = fields[name].metadata.get("range")
        if rng is not None:
            rng.check(kwargs[name], full)
    return cls(**kwargs)


RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""A run name: a plain folder name, so that ``<results_dir>/<name>`` stays inside ``results_dir``."""


def _check_values(cfg: Config) -> None:
    """Checks across keys (each key's own range is checked by :func:`_build`), in the order of the sections."""
    if not RUN_NAME.fullmatch(cfg.run.name):
        raise ConfigError(f"run.name: {cfg.run.name!r} must be a plain folder name (letters, digits, '.', '_', '-', "
                          f"not starting with '.'): the run's outputs go to <results_dir>/<name>/ and must stay "
                          f"inside results_dir")
    d = cfg.domain
    if not (-90 <= d.lat_min < d.lat_max <= 90):
        raise ConfigError(f"domain: need -90 <= lat_min < lat_max <= 90, got {d.lat_min}..{d.lat_max}")
    if not (-180 <= d.lon_min < d.lon_max <= 180):
        raise ConfigError(f"domain: need -180 <= lon_min < lon_max <= 180, got {d.lon_min}..{d.lon_max}")
    if abs(d.resolution - RES) > 1e-9:
        raise ConfigError(f"domain.resolution: only the product grid 0.05 is supported, got {d.resolution}")
    if cfg.period.start > cfg.period.end:
        raise ConfigError(f"period: start {cfg.period.start} is after end {cfg.period.end}")
    tw = cfg.twin
    if not _whole(tw.cci_resolution / RES):
        raise ConfigError(f"twin.cci_resolution: {tw.cci_resolution} is not a multiple of 0.05 deg (the product grid)")
    if not _whole(RES / tw.static_resolution):
        raise ConfigError(f"twin.static_resolution: {tw.static_resolution} does not divide 0.05 deg (the product "
                          "grid); e.g. 0.01 or 0.025")
    if cfg.cube.build_tile % cfg.cube.space_chunk:
        raise ConfigError(f"cube.build_tile: {cfg.cube.build_tile} is not a multiple of cube.space_chunk "
                          f"({cfg.cube.space_chunk})")
    years = (cfg.period.start.year, cfg.period.end.year)
    for key, values in (("samples.test_years", cfg.samples.test_years), ("production.years", cfg.production.years)):
        Range(ge=years[0], le=years[1]).check(values, key)
    bins = cfg.models.sm_bins
    if any(b >= a for a, b in zip(bins[1:], bins)):
        raise ConfigError(f"models.sm_bins: {bins} must be increasing (bin edges, m3 m-3)")
    for key, names in (("models.names", cfg.models.names), ("models.split_models", cfg.models.split_models),
                       ("atlstm.length_models", cfg.atlstm.length_models)):
        for name in names:
            if name not in MODEL_REGISTRY:
                raise ConfigError(f"{key}: unknown model '{name}'{_did_you_mean(name, MODEL_REGISTRY)} "
                                  f"(valid: {', '.join(MODEL_REGISTRY)})")
    cfg.models.hparams = resolve_hparams(cfg.models.hparams)
    _check_model_hparams(cfg)
    if cfg.validation.depth_from >= cfg.validation.depth_to:
        raise ConfigError(f"validation: depth_from {cfg.validation.depth_from} m must be above depth_to "
                          f"{cfg.validation.depth_to} m (depths below the surface)")
    if cfg.data.source == "real" and cfg.twin.enabled:
        raise ConfigError("twin.enabled: must be false when data.source is 'real'")
    if cfg.is_twin and cfg.twin.enabled:
        _check_twin_memory(cfg)


def _whole(x: float) -> bool:
    """Whether ``x`` is a whole number >= 1 (to rounding)."""
    return abs(x - round(x)) <= 1e-6 and round(x) >= 1


def _check_model_hparams(cfg: Config) -> None:
    """Combinations of one model's hyperparameters its class refuses (its optional ``check_hparams``)."""
    for name, cls in MODEL_REGISTRY.items():
        check = getattr(cls, "check_hparams", None)
        if check is None:
            continue
        try:
            check({**cls.default_hparams, **model_hparams(name, cfg)})
        except ValueError as e:
            raise ConfigError(f"models.hparams.{name}: {e} (set in models.hparams.{name} or "
                              f"models.hparams.{COMMON})") from None


# ----------------------------------------------------------------------------------------------------------
# Memory of the synthetic twin
# ----------------------------------------------------------------------------------------------------------
TWIN_BYTES_PER_CELL_DAY = 160
"""Peak memory of the twin per simulated cell and day, bytes: :func:`glass_sm.twin.truth.simulate_truth` holds
every weather, vegetation and soil-moisture field of the period and its spin-up year at once (``(time, lat,
lon)`` float32 and bool arrays, plus float64 temporaries); measured 130 bytes with ``tracemalloc`` for 10 x 10
to 62 x 62 cells and 1 to 5 years (its peak; the writers then need less), +25 % margin.
``tests/unit/test_config.py`` checks the estimate against a measurement."""

TWIN_SPINUP_DAYS = 365
"""The twin's spin-up before the period, days (``glass_sm.twin.truth.SPINUP_DAYS``, checked by the tests)."""

MEMORY_FRACTION = 0.75
"""Share of this machine's physical memory the twin may plan to use (:func:`memory_limit_bytes`)."""


def twin_sim_shape(cfg: Config) -> tuple[int, int]:
    """(rows, columns) of the twin's simulation grid, an upper bound: the domain's 0.05 deg cells grown on each
    side to whole ESA-CCI-like cells (``twin.cci_resolution``) and by at least one cell for the 0.1 deg ERA5-Land
    points (the exact grid is :func:`glass_sm.twin.twin_grids`; not imported here, it loads the twin's writers)."""
    out = Domain.from_config(cfg)
    cci = out.expand_to_multiple(round(cfg.twin.cci_resolution / RES))
    north, west = out.row0 - cci.row0, out.col0 - cci.col0
    south = cci.row0 + cci.nrows - out.row0 - out.nrows
    east = cci.col0 + cci.ncols - out.col0 - out.ncols
    return out.nrows + max(north, 1) + max(south, 1), out.ncols + max(west, 1) + max(east, 1)


def twin_memory_bytes(cfg: Config) -> int:
    """Estimated peak memory of generating the twin, bytes: :data:`TWIN_BYTES_PER_CELL_DAY` x the simulated cells
    (:func:`twin_sim_shape`) x the days of the period and of the spin-up year."""
    rows, cols = twin_sim_shape(cfg)
    days = (cfg.period.end - cfg.period.start).days + 1 + TWIN_SPINUP_DAYS
    return TWIN_BYTES_PER_CELL_DAY * rows * cols * days


def memory_limit_bytes() -> int | None:
    """:data:`MEMORY_FRACTION` of this machine's physical memory, bytes (None where the OS does not say)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    return int(MEMORY_FRACTION * total) if total > 0 else None


def _check_twin_memory(cfg: Config) -> None:
    need, limit = twin_memory_bytes(cfg), memory_limit_bytes()
    if limit is None or need <= limit:
        return
    rows, cols = twin_sim_shape(cfg)
    days = (cfg.period.end - cfg.period.start).days + 1
    raise ConfigError(
        f"domain, period: the synthetic twin of this domain and period needs about {need / 2**30:.1f} GiB of memory "
        f"({rows} x {cols} simulated cells x ({days} days + {TWIN_SPINUP_DAYS} spin-up) x "
        f"{TWIN_BYTES_PER_CELL_DAY} bytes), over the limit {limit / 2**30:.1f} GiB ({MEMORY_FRACTION:.0%} of this "
        f"machine's memory): shrink the domain or the period (or use data.source: real with twin.enabled: false)")


def _did_you_mean(word, valid) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``valid`` to ``word``, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(v) for v in valid], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _unknown_key(full: str, key, valid) -> ConfigError:
    """The error for an undeclared key ``full`` (dotted): where the key belongs when another section declares it,
    else the closest valid key; then all the valid keys here."""
    homes = [h for h in _key_homes().get(str(key), []) if h != full]
    hint = f": it belongs in {' or '.join(homes)}" if homes else _did_you_mean(key, valid)
    return ConfigError(f"unknown parameter '{full}'{hint} (valid keys here: {', '.join(map(str, valid))})")


def _key_homes() -> dict[str, list[str]]:
    """Key -> the dotted keys declaring it: every section's keys, and every model hyperparameter (as
    ``models.hparams.common.<key>`` when several models declare it)."""
    homes: dict[str, list[str]] = {}
    for sec in dataclasses.fields(Config):
        if dataclasses.is_dataclass(sec.default_factory):
            for f in dataclasses.fields(sec.default_factory):
                homes.setdefault(f.name, []).append(f"{sec.name}.{f.name}")
    users: dict[str, list[str]] = {}
    for name, cls in MODEL_REGISTRY.items():
        for key in cls.default_hparams:
            users.setdefault(key, []).append(name)
    for key, names in users.items():
        homes.setdefault(key, []).append(f"models.hparams.{COMMON if len(names) > 1 else names[0]}.{key}")
    return homes


def _hparam_specs(section: str) -> dict[str, list[tuple[Any, Range | None]]]:
    """Key -> (type, range) of every registered class declaring it (``common``: all the classes; else the one)."""
    names = list(MODEL_REGISTRY) if section == COMMON else [section]
    out: dict[str, list] = {}
    for name in names:
        ranges = hparam_ranges(name)
        for key, tp in hparam_types(name).items():
            out.setdefault(key, []).append((tp, Range(**ranges[key]) if key in ranges else None))
    return out


def resolve_hparams(hparams: dict) -> dict:
    """``models.hparams`` merged onto :data:`DEFAULT_HPARAMS`, every section, key and value checked.

    Parameters
    ----------
    hparams : dict
        ``{"common": {...}, "<model>": {...}}`` as written in a parameter file (a section may be empty).

    Returns
    -------
    dict
        The merged mapping (``common`` first, then the models' sections in file order), values converted
        (an integer given for a float hyperparameter becomes a float).

    Raises
    ------
    ConfigError
        A section that is neither ``common`` nor a registered model, a key the model's class does not declare
        (``common``: that no registered class declares), each naming the closest valid one; or a value of the
        wrong type or out of the range the class declares (``hparam_ranges``), naming the key.
    """
    merged = copy.deepcopy(DEFAULT_HPARAMS)
    sections = [COMMON, *MODEL_REGISTRY]
    for section, values in hparams.items():
        where = f"models.hparams.{section}"
        if section not in sections:
            raise _unknown_key(where, section, sections)
        if values is None:  # "xgboost:" with nothing under it
            values = {}
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: expected a mapping of hyperparameters, got {values!r}")
        merged.setdefault(section, {}).update(values)
    for section in [s for s in merged if s in sections]:
        specs = _hparam_specs(section)
        for key, value in merged[section].items():
            where = f"models.hparams.{section}.{key}"
            if key not in specs:
                raise _unknown_key(where, key, specs)
            for tp, rng in specs[key]:
                if tp is not Any:
                    merged[section][key] = _coerce(value, tp, where)
                if rng is not None:
                    rng.check(merged[section][key], where)
    return merged


def _expand_paths(cfg: Config) -> None:
    root = cfg.data.root or (Path(os.environ["GLASS_SM_DATA"]) if os.environ.get("GLASS_SM_DATA") else None)
    subs = {"raw": str(cfg.results / "data" / "raw"), "results": str(cfg.results)}
    for f in dataclasses.fields(DataConfig):
        value = getattr(cfg.data, f.name)
        if not isinstance(value, Path) or f.name == "root":
            continue
        text = str(value)
        if "{root}" in text:
            if root is None:
                raise ConfigError(f"data.{f.name}: uses {{root}} but neither data.root nor GLASS_SM_DATA is set")
            text = text.replace("{root}", str(root))
        for k, v in subs.items():
            text = text.replace("{" + k + "}", v)
        setattr(cfg.data, f.name, Path(text))


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for p in parts[:-1]:
        if node.get(p) is None:  # absent, or a section left empty in the file
            node[p] = {}
        node = node[p]
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: '{p}' is not a section")
    node[parts[-1]] = value


def _flatten(mapping: dict, prefix: str = "") -> dict:
    """``{"models": {"hparams": {"common": {"hidden_size": 8}}}}`` -> ``{"models.hparams.common.hidden_size": 8}``."""
    out = {}
    for k, v in mapping.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


class _ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with an impossible date (``2000-13-45``) a YAML error at its position (PyYAML raises
    a bare ``ValueError`` without one)."""

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as e:
            raise yaml.constructor.ConstructorError(None, None, f"invalid date '{node.value}' ({e})",
                                                    node.start_mark) from None


_ParamsLoader.add_constructor("tag:yaml.org,2002:timestamp", _ParamsLoader.construct_yaml_timestamp)


def _yaml_error(e: yaml.YAMLError) -> str:
    """``'line 2, column 1: found character ... (tabs ...)'`` from a PyYAML error."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    if "'\\t'" in problem:
        problem += " (indent with spaces: YAML does not allow tabs)"
    context = getattr(e, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"not valid YAML: {where}{problem}" + (f" ({context})" if context else "")


def _no_duplicate_keys(node, prefix: str = "", seen: set | None = None) -> None:
    """Raise :class:`ConfigError` for a key given twice in one mapping (PyYAML keeps the last one silently)."""
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias of a node already checked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            full = f"{prefix}.{key}" if prefix and key is not None else str(key)
            if key is not None and key in lines:
                m = key_node.start_mark
                raise ConfigError(f"line {m.line + 1}, column {m.column + 1}: key '{full}' given twice (first at "
                                  f"line {lines[key] + 1}); keep one")
            if key is not None:
                lines[key] = key_node.start_mark.line
            _no_duplicate_keys(value_node, full, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _no_duplicate_keys(item, f"{prefix}[{i}]", seen)


def read_params_file(path: str | os.PathLike) -> dict:
    """The mapping of sections in a params file: UTF-8 YAML, no key twice, not empty.

    Raises
    ------
    ConfigError
        Every fault, naming the file (and the line, or the key): not found, not a file or unreadable, not UTF-8,
        not valid YAML (tabs, indentation, an impossible date, a Python tag ...), a duplicate key, empty, or not a
        mapping at top level.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"parameter file not found: {p}")
    if not p.is_file():
        raise ConfigError(f"{p}: not a file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot be read ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(f"{p}: not UTF-8 text (line {line}, byte {e.start}: {data[e.start:e.start + 1]!r}); save "
                          "it as UTF-8") from None
    loader = None
    try:
        loader = _ParamsLoader(text)
        node = loader.get_single_node()
        if node is not None:
            _no_duplicate_keys(node)
        tree = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: {_yaml_error(e)}") from None
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
    except RecursionError:
        raise ConfigError(f"{p}: not valid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    if tree is None:
        raise ConfigError(f"{p}: empty: no parameters (write at least the run section; for the defaults, load no "
                          "file)")
    if not isinstance(tree, dict):
        raise ConfigError(f"{p}: expected a mapping of sections (run:, domain:, ...) at top level, got a "
                          f"{type(tree).__name__}")
    return tree


def load(path: str | os.PathLike | None = None, overrides: dict | None = None) -> Config:
    """Load, validate and resolve a parameter file.

    Every check runs here, before any work: the file is read (:func:`read_params_file`), every key is
    declared, every value has its type and lies in its declared range (:class:`Range`, shown by
    :func:`describe`), values agree with each other (``lat_min < lat_max``, years within the period ...), the run
    name stays inside ``results_dir``, and a twin run fits in memory (:func:`twin_memory_bytes` against
    :func:`memory_limit_bytes`).

    Parameters
    ----------
    path : path-like or None
        YAML file with one mapping (sections ``run``, ``domain`` ...). ``None`` gives the defaults.
    overrides : dict, optional
        ``{"training.epochs": 2}`` (dotted keys) or nested mappings, applied on top of the file leaf by leaf
        (``{"models": {"hparams": {"common": {"hidden_size": 8}}}}`` changes that key only).

    Raises
    ------
    ConfigError
        Any fault of the file or the values; the message starts with the file and names the key (where there
        is one), the value and what is allowed; an unknown key names the closest valid one, or the section it
        belongs in.
    """
    tree: dict = read_params_file(path) if path is not None else {}
    where = f"{path}: " if path is not None else ""
    try:
        for k, v in _flatten(overrides or {}).items():
            _set_dotted(tree, k, v)
        cfg = _build(Config, tree)
        cfg.source_file = str(path) if path is not None else None
        _expand_paths(cfg)
        _check_values(cfg)
    except ConfigError as e:
        raise ConfigError(f"{where}{e}") from None
    except (TypeError, ValueError, AttributeError, KeyError) as e:  # a value shaped like nothing the checks expect
        raise ConfigError(f"{where}cannot be used: {type(e).__name__}: {e}") from e
    return cfg


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def to_dict(cfg: Config) -> dict:
    """The resolved parameters as plain YAML-able types."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
        else:
            out[f.name] = _plain(value)
    return out


def dump(cfg: Config, path: str | os.PathLike) -> Path:
    """Write the resolved parameters to ``path`` (YAML)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        yaml.safe_dump(to_dict(cfg), fh, sort_keys=False)
    return path


def _hparam_rows() -> list[dict]:
    """Parameter-reference rows of ``models.hparams``: the shared keys, then every model's hyperparameters."""
    common = DEFAULT_HPARAMS[COMMON]
    rows = []
    def spec(name: str, key: str) -> tuple[str, str]:
        tp, bounds = hparam_types(name)[key], hparam_ranges(name).get(key)
        rng = Range(**bounds) if bounds else None
        return ("any" if tp is Any else _type_name(tp, rng)), (str(rng) if rng else "")

    for key, default in common.items():
        users = [n for n in MODEL_REGISTRY if key in MODEL_REGISTRY[n].default_hparams]
        doc = next((hparam_docs(n)[key] for n in users if hparam_docs(n)[key]), "")
        type_name, rng = spec(users[0], key)
        rows.append({"key": f"hparams.{COMMON}.{key}", "type": type_name, "range": rng, "default": default,
                     "doc": f"{doc} Applies to {', '.join(users)} (a model's own section wins)."})
    for name, cls in MODEL_REGISTRY.items():
        own, docs = DEFAULT_HPARAMS.get(name, {}), hparam_docs(name)
        for key in hparam_types(name):
            doc = docs[key] or f"hyperparameter of {getattr(cls, 'display_name', name)}"
            if key == "seed" and key not in own:
                default, doc = "run.seed", f"{doc} Default: run.seed."
            elif key in own:
                default = own[key]
            elif key in common:
                default, doc = common[key], f"{doc} Default: hparams.{COMMON}.{key}."
            else:
                default = cls.default_hparams[key]
            type_name, rng = spec(name, key)
            rows.append({"key": f"hparams.{name}.{key}", "type": type_name, "range": rng, "default": _plain(default),
                         "doc": doc})
    return rows


def describe() -> list[dict]:
    """Every parameter: section, key, type, range, default and documentation (for the params reference page).

    ``range`` is the valid range :func:`load` checks (``'>= 1'``, ``'in [0, 1)'``, with ``'(at least 1 item)'``
    for a list; ``''`` for none); ``type`` includes it (``'int >= 1'``), so a table of types shows it.
    ``models.hparams`` is one row for the mapping, then one row per shared key (``hparams.common.<key>``) and per
    hyperparameter of every registered model (``hparams.<model>.<key>``, default as resolved on an empty file).
    """
    rows = []
    for sec in dataclasses.fields(Config):
        if sec.name == "source_file":
            continue
        cls = sec.default_factory  # type: ignore[misc]
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            rng = f.metadata.get("range")
            rows.append(
                {
                    "section": sec.name,
                    "key": f.name,
                    "type": _type_name(hints[f.name], rng),
                    "range": str(rng) if rng else "",
                    "default": _plain(default),
                    "doc": f.metadata.get("doc", ""),
                }
            )
            if cls is ModelsConfig and f.name == "hparams":
                rows += [{"section": sec.name, **row} for row in _hparam_rows()]
    return rows


PROVENANCE_PACKAGES = (
    "glass-sm", "numpy", "pandas", "xarray", "dask", "zarr", "netCDF4", "pyhdf", "rioxarray", "ismn",
    "torch", "xgboost-cpu", "matplotlib", "cartopy", "papermill",
)


def git_commit(repo: str | os.PathLike | None = None) -> str:
    """Current git commit (``+dirty`` when the tree has changes), or ``unknown`` outside a checkout."""
    repo = repo or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions(names: tuple[str, ...] = PROVENANCE_PACKAGES) -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def write_provenance(cfg: Config, stage: str, folder: str | os.PathLike | None = None) -> Path:
    """Write ``provenance/<stage>.yaml``: resolved params, git commit, package versions, time."""
    folder = Path(folder) if folder is not None else cfg.results / "provenance"
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "stage": stage,
        "params_file": cfg.source_file,
        "git_commit": git_commit(),
        "written": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "packages": package_versions(),
        "params": to_dict(cfg),
    }
    path = folder / f"{stage}.yaml"
    with atomic_write(path) as tmp, open(tmp, "w") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False)
    return path


def _main(argv: list[str]) -> int:
    usage = "usage: python -m glass_sm.config {check|run-name|results} PARAMS.yaml"
    if len(argv) != 2:
        print(usage, file=sys.stderr)
        return 2
    cmd, path = argv
    try:
        cfg = load(path)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if cmd == "check":
        print(f"{path}: OK (run '{cfg.run.name}')")
    elif cmd == "run-name":
        print(cfg.run.name)
    elif cmd == "results":
        print(cfg.results)
    else:
        print(usage, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
