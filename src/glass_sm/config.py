"""Typed parameters for every stage, loaded from ``params/*.yaml``.

One YAML mapping per run, one section per concern. Every key is declared here with its type, default and a
one-line documentation string; :func:`load` rejects an unknown key (naming the closest valid one) or a value of
the wrong type *before any work starts*.

>>> cfg = load("params/smoke.yaml", {"training.epochs": 2})   # doctest: +SKIP
>>> cfg.training.epochs                                         # doctest: +SKIP
2

Path templates
--------------
Data paths may contain ``{raw}`` (the run's twin input folder ``results/<run>/data/raw``), ``{results}`` (the
run's results folder) and ``{root}`` (``data.root``, or the ``GLASS_SM_DATA`` environment variable): they are
expanded once, here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import os
import subprocess
import sys
import types
import typing
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Optional, get_args, get_origin

import yaml

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
    """A parameter file is invalid (unknown key, wrong type, bad value)."""


def P(default: Any, doc: str) -> Any:
    """Declare a parameter with its default and documentation."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


# ----------------------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------------------
@dataclass
class RunConfig:
    """Identity of a run: its name decides ``results/<name>/``."""

    name: str = P("demo", "run name; outputs go to <results_dir>/<name>/")
    seed: int = P(42, "master random seed (twin, splits, model initialisation)")
    results_dir: Path = P(Path("results"), "folder holding every run's outputs")
    description: str = P("", "free text shown in the book")


@dataclass
class DomainConfig:
    """Lat/lon box of the run, snapped outward to whole 0.05 deg cells."""

    lat_min: float = P(40.0, "southern edge, degrees north")
    lat_max: float = P(41.0, "northern edge, degrees north")
    lon_min: float = P(-100.0, "western edge, degrees east (-180..180)")
    lon_max: float = P(-99.0, "eastern edge, degrees east (-180..180)")
    resolution: float = P(0.05, "output grid spacing, degrees (the product's 0.05)")


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
    n_stations: int = P(12, "number of ISMN-like in situ stations")
    station_pre2000_fraction: float = P(0.4, "fraction of stations that start before 2000")
    era5_wet_bias: float = P(0.06, "ERA5-Land-like wet bias in a dry climate, m3 m-3 (smaller when wet)")
    era5_precip_error: float = P(
        0.8,
        "relative sd of the reanalysis daily precipitation error (lognormal); 0.8 gives ERA5-like vs truth "
        "r ~ 0.86, ubRMSE ~ 0.045 m3 m-3, the range of reanalysis surface SM against in situ networks "
        "(Beck et al., 2021, HESS 25, 17-40); 0.25 made the reanalysis unrealistically good (r 0.93)",
    )
    label_noise: float = P(0.02, "GLASS-MODIS-like label noise sd, m3 m-3")
    label_gap_fraction: float = P(0.05, "fraction of missing label pixel-days")
    cloud_base: float = P(0.35, "mean cloud probability on a dry day")
    albedo_noise: float = P(0.01, "albedo retrieval noise sd, dimensionless")
    lst_noise: float = P(1.5, "LST retrieval noise sd, K")
    aridity_west_east: list = P([0.25, 1.2], "aridity index P/PET at the western and eastern domain edges")
    mean_elevation: float = P(800.0, "domain-mean terrain height, m")
    relief: float = P(600.0, "terrain relief (sd), m")
    modis_pixel_m: float = P(1000.0, "pixel size of the GLASS-MODIS-like sinusoidal GeoTIFFs, m")
    static_resolution: float = P(0.01, "resolution of the DEM/texture GeoTIFFs, degrees")
    cci_resolution: float = P(0.25, "resolution of the ESA-CCI-like product, degrees")
    cloud_wet: float = P(0.85, "cloud probability on a wet day")
    storm_length_km: float = P(60.0, "correlation length of the daily precipitation fields, km")
    platform_albedo_step: float = P(0.02, "sd of each NOAA platform's relative albedo calibration step, dimensionless")
    platform_lst_step: float = P(0.8, "sd of each NOAA platform's LST calibration step, K")
    drift_residual: float = P(0.5, "fraction of the orbital-drift LST cooling left after the producer's correction")
    cci_noise: float = P(0.04, "ESA-CCI-like random error sd from 2007 on, m3 m-3 (x1.5 before)")
    cci_gap_fraction: float = P(0.4, "ESA-CCI-like fraction of missing cell-days from 2007 on")
    cci_early_gap_fraction: float = P(0.7, "ESA-CCI-like fraction of missing cell-days before 2007")
    cci_scale_error: float = P(0.1, "sd of the ESA-CCI-like per-cell multiplicative scale error, dimensionless")
    station_noise: float = P(0.02, "sd of the AR(1) point-vs-pixel error of the in situ stations, m3 m-3")


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

    time_chunk: int = P(365, "zarr chunk length along time, days")
    space_chunk: int = P(64, "zarr chunk edge along lat and lon, cells")
    max_gap_days: int = P(30, "longest gap filled by linear interpolation; longer gaps use the climatology")
    build_tile: int = P(
        64, "cube built tile by tile over (lat, lon) tiles of this edge, cells (a multiple of space_chunk); "
        "memory is bounded by one tile x the period"
    )


@dataclass
class SamplesConfig:
    """Training samples: (pixel, day) indices into the cube."""

    window: int = P(30, "window length L, days")
    window_mode: Literal["past", "centred"] = P("past", "window = L days ending at the target day, or centred")
    dynamic_features: list = P(
        ["albedo_bsa", "albedo_wsa", "lst", "sm_era5land"], "per-day input variables of the cube"
    )
    static_features: list = P(["elevation", "sand", "clay"], "static variables, repeated at every step")
    add_doy: bool = P(True, "add sin/cos of day of year as features")
    include_filled_flags: bool = P(False, "add the cube's 0/1 *_filled gap-fill flags of the dynamic inputs")
    split: Literal["random", "site", "year"] = P("site", "random, site-independent or year-independent split")
    test_fraction: float = P(0.2, "fraction of samples / pixels / years held out for testing")
    val_fraction: float = P(0.1, "fraction of the training part used for early stopping")
    block_size: int = P(4, "edge of the spatial blocks held out together by the site split, cells")
    test_years: list = P([], "years held out by the year split (empty: chosen at random)")
    max_train_samples: int = P(200000, "subsample the training windows to at most this many")
    max_eval_samples: int = P(100000, "subsample the validation/test windows to at most this many")


@dataclass
class ModelsConfig:
    """Model zoo of stage 02 (see :mod:`glass_sm.models`)."""

    names: list = P(["lstm", "bilstm", "atlstm", "transformer", "xgboost"], "models to compare")
    hidden_size: int = P(64, "LSTM hidden units per direction")
    num_layers: int = P(2, "stacked recurrent / encoder layers")
    dropout: float = P(0.1, "dropout between layers")
    d_model: int = P(64, "Transformer embedding width")
    n_heads: int = P(4, "Transformer attention heads")
    xgb_n_estimators: int = P(600, "XGBoost maximum boosting rounds")
    xgb_max_depth: int = P(8, "XGBoost tree depth")
    xgb_learning_rate: float = P(0.1, "XGBoost shrinkage")
    xgb_early_stopping_rounds: int = P(20, "XGBoost patience, boosting rounds without validation improvement")
    xgb_n_jobs: int = P(2, "XGBoost CPU threads")
    sm_bins: list = P([0.0, 0.1, 0.2, 0.3, 0.4, 1.0], "soil-moisture bin edges of the per-bin metrics, m3 m-3")
    split_strategies: list = P(["random", "site", "year"], "split strategies compared by stage 02")
    split_models: list = P([], "models trained for every split strategy (empty: all of names)")
    rate_windows: int = P(20000, "test windows timed for the inference rate (windows/s)")


@dataclass
class TrainingConfig:
    """The shared training loop (see :mod:`glass_sm.training`)."""

    epochs: int = P(20, "maximum epochs")
    batch_size: int = P(512, "mini-batch size, windows")
    lr: float = P(2e-3, "AdamW learning rate")
    weight_decay: float = P(1e-4, "AdamW weight decay")
    patience: int = P(4, "early-stopping patience, epochs")
    max_batches_per_epoch: Optional[int] = P(None, "cap on batches per epoch (None: all)")
    n_boot: int = P(500, "bootstrap resamples for the confidence intervals")
    torch_threads: int = P(1, "torch CPU threads in stages 02-03 (0: torch default; 1: robust on a busy 2-core CPU)")
    eval_batch_size: int = P(4096, "windows per batch for validation and prediction")
    init_output_bias: bool = P(True, "start the torch models' output bias at the mean training label (m3 m-3)")


@dataclass
class AtLSTMConfig:
    """Stage 03: sequence-length experiment and the final AtLSTM."""

    lengths: list = P([1, 3, 7, 15, 30, 60], "window lengths of the sequence-length experiment, days")
    final_window: int = P(30, "window length of the production model, days")
    final_split: Literal["random", "site", "year"] = P("site", "split of the production model")
    permutation_repeats: int = P(3, "repeats of the permutation feature importance")
    length_models: list = P(["atlstm", "lstm"], "models of the sequence-length experiment")
    length_epochs: Optional[int] = P(None, "maximum epochs of each sequence-length run (None: training.epochs)")
    final_epochs: Optional[int] = P(None, "maximum epochs of the production model (None: training.epochs)")
    importance_windows: int = P(20000, "test windows used by the permutation feature importance")


@dataclass
class ProductionConfig:
    """Stage 04: tiled, resumable inference over the grid and period."""

    tile_size: int = P(64, "tile edge, cells")
    years: list = P([], "years to produce (empty: all of the period)")
    scheduler_address: Optional[str] = P(None, "existing Dask scheduler (None: a LocalCluster)")
    n_workers: int = P(1, "LocalCluster workers")
    threads_per_worker: int = P(2, "threads per worker")
    batch_size: int = P(8192, "inference batch, windows")
    encoding: Literal["int16", "float32"] = P("int16", "storage of sm: scaled int16 or float32")
    overwrite: bool = P(False, "rewrite finished years")
    scheduler: Literal["distributed", "synchronous"] = P("distributed", "Dask cluster, or in-process (tests)")
    model_batch: int = P(256, "windows per model call inside a batch (CPU caches favour 128-512)")
    torch_threads: Optional[int] = P(None, "torch threads per task (None: 1; small LSTM GEMMs slow down with more)")


@dataclass
class ValidationConfig:
    """Stage 05: in situ validation and intercomparison."""

    depth_from: float = P(0.0, "upper sensor depth, m")
    depth_to: float = P(0.05, "lower sensor depth, m")
    min_days: int = P(60, "stations with fewer collocated days are listed, not scored")
    n_boot: int = P(500, "bootstrap resamples for station metrics")
    split_periods: bool = P(False, "score a station straddling 2000-01-01 separately before and after it")
    min_pairs: int = P(30, "fewest common days for a pixel's product-vs-product metrics")
    tc_min_n: int = P(100, "fewest (product, reference, station) days for triple collocation")
    break_window_days: int = P(730, "window on each side of an AVHRR platform change for the break test, days")
    trend_min_periods: int = P(8, "fewest valid annual means for a per-pixel Sen/Mann-Kendall trend")


@dataclass
class FiguresConfig:
    """Stage 06: paper figures."""

    dpi: int = P(300, "PNG resolution")
    formats: list = P(["png", "pdf"], "file formats written for each figure")
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
def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against type ``tp``; return it converted (dates, paths)."""
    origin = get_origin(tp)
    if origin is Literal:
        if value not in get_args(tp):
            close = difflib.get_close_matches(str(value), [str(a) for a in get_args(tp)], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{key}: {value!r} is not one of {_type_name(tp)}{hint}")
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
    if tp is list or origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r} ({type(value).__name__})")
        return list(value)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    raise ConfigError(f"{key}: unsupported parameter type {tp!r}")  # pragma: no cover


def _build(cls: type, mapping: Any, prefix: str = "") -> Any:
    if not isinstance(mapping, dict):
        raise ConfigError(f"{prefix or 'params'}: expected a mapping, got {type(mapping).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source_file"}
    for k in mapping:
        if k not in fields:
            full = f"{prefix}.{k}" if prefix else str(k)
            close = difflib.get_close_matches(str(k), list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            valid = ", ".join(fields)
            raise ConfigError(f"unknown parameter '{full}'{hint} (valid keys here: {valid})")
    kwargs = {}
    for name, value in mapping.items():
        full = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(value, hints[name], full)
    return cls(**kwargs)


def _check_values(cfg: Config) -> None:
    d = cfg.domain
    if not (-90 <= d.lat_min < d.lat_max <= 90):
        raise ConfigError(f"domain: need -90 <= lat_min < lat_max <= 90, got {d.lat_min}..{d.lat_max}")
    if not (-180 <= d.lon_min < d.lon_max <= 180):
        raise ConfigError(f"domain: need -180 <= lon_min < lon_max <= 180, got {d.lon_min}..{d.lon_max}")
    if abs(d.resolution - 0.05) > 1e-9:
        raise ConfigError(f"domain.resolution: only the product grid 0.05 is supported, got {d.resolution}")
    if cfg.period.start > cfg.period.end:
        raise ConfigError(f"period: start {cfg.period.start} is after end {cfg.period.end}")
    if cfg.samples.window < 1:
        raise ConfigError(f"samples.window: must be >= 1, got {cfg.samples.window}")
    for key in ("test_fraction", "val_fraction"):
        v = getattr(cfg.samples, key)
        if not 0 < v < 1:
            raise ConfigError(f"samples.{key}: must be in (0, 1), got {v}")
    try:
        from glass_sm.models.registry import MODEL_REGISTRY  # noqa: PLC0415 (avoid import cycle)
    except ImportError:  # pragma: no cover - torch missing
        MODEL_REGISTRY = {}
    for name in cfg.models.names:
        if MODEL_REGISTRY and name not in MODEL_REGISTRY:
            close = difflib.get_close_matches(str(name), list(MODEL_REGISTRY), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"models.names: unknown model '{name}'{hint} (valid: {', '.join(MODEL_REGISTRY)})")
    if cfg.data.source == "real" and cfg.twin.enabled:
        raise ConfigError("twin.enabled: must be false when data.source is 'real'")


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
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: '{p}' is not a section")
    node[parts[-1]] = value


def load(path: str | os.PathLike | None = None, overrides: dict | None = None) -> Config:
    """Load, validate and resolve a parameter file.

    Parameters
    ----------
    path : path-like or None
        YAML file with one mapping (sections ``run``, ``domain`` ...). ``None`` gives the defaults.
    overrides : dict, optional
        ``{"training.epochs": 2}`` (dotted keys) or nested mappings, applied on top of the file.

    Raises
    ------
    ConfigError
        Unknown key (with the closest valid one), wrong type, or inconsistent values; the message names the key.
    """
    tree: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"parameter file not found: {p}")
        with open(p) as fh:
            try:
                tree = yaml.safe_load(fh) or {}
            except yaml.YAMLError as e:
                raise ConfigError(f"{p}: not valid YAML: {e}") from e
        if not isinstance(tree, dict):
            raise ConfigError(f"{p}: expected a mapping of sections at top level")
    for k, v in (overrides or {}).items():
        if isinstance(v, dict) and "." not in k:
            for kk, vv in v.items():
                _set_dotted(tree, f"{k}.{kk}", vv)
        else:
            _set_dotted(tree, k, v)
    try:
        cfg = _build(Config, tree)
    except ConfigError as e:
        where = f"{path}: " if path is not None else ""
        raise ConfigError(f"{where}{e}") from None
    cfg.source_file = str(path) if path is not None else None
    _expand_paths(cfg)
    _check_values(cfg)
    return cfg


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
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


def describe() -> list[dict]:
    """Every parameter: section, key, type, default and documentation (for the params reference page)."""
    rows = []
    for sec in dataclasses.fields(Config):
        if sec.name == "source_file":
            continue
        cls = sec.default_factory  # type: ignore[misc]
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            rows.append(
                {
                    "section": sec.name,
                    "key": f.name,
                    "type": _type_name(hints[f.name]),
                    "default": _plain(default),
                    "doc": f.metadata.get("doc", ""),
                }
            )
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
    tmp = path.with_suffix(".yaml.tmp")
    with open(tmp, "w") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False)
    os.replace(tmp, path)
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
