"""The parameters: every key with its type, default, documentation and valid range (one declaration each)."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from glass_sm.models.registry import COMMON


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
    """Lat/lon box of the run, snapped outward to whole cells of ``resolution``.

    The synthetic twin covers latitudes -80..84 (never the poles); a twin domain from lon_min -180 to lon_max 180 is
    global in longitude (its grids wrap round the antimeridian), and one ending at 180 must be global."""

    lat_min: float = P(40.0, "southern edge, degrees north (the twin: >= -80)", ge=-90, le=90)
    lat_max: float = P(41.0, "northern edge, degrees north (the twin: <= 84)", ge=-90, le=90)
    lon_min: float = P(-100.0, "western edge, degrees east (-180..180)", ge=-180, le=180)
    lon_max: float = P(-99.0, "eastern edge, degrees east (-180..180)", ge=-180, le=180)
    resolution: float = P(0.05, "output grid spacing, degrees: the product's 0.05 (real data: only 0.05); the "
                                "synthetic twin also runs at a coarse multiple of 0.05 dividing 180 (e.g. 1, 2, 3), "
                                "all its files then at that resolution", gt=0)


@dataclass
class PeriodConfig:
    """Dates covered by the run (inclusive)."""

    start: dt.date = P(dt.date(1982, 1, 1), "first day")
    end: dt.date = P(dt.date(2021, 12, 31), "last day")
    label_start: dt.date = P(dt.date(2000, 2, 24), "first day of GLASS-MODIS labels (MODIS Terra start)")
    label_end: dt.date = P(dt.date(2020, 12, 31), "last day of GLASS-MODIS labels (the product covers 2000-2020; "
                                                  "later days have no label)")


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
    labels: Literal["retrieval", "truth_plus_noise"] = P(
        "retrieval",
        "how the GLASS-MODIS-like labels are made: 'retrieval' (as the real GLASS-MODIS SM: an XGBoost retrieval "
        "trained on the twin's in situ station days from MODIS-like inputs, ERA5-Land and static data, applied "
        "at 0.05 deg; see glass_sm.twin.labels) or 'truth_plus_noise' (truth + N(0, label_noise), the ablation)")
    label_noise: float = P(0.02, "GLASS-MODIS-like label noise sd, m3 m-3 (labels: truth_plus_noise)", ge=0)
    retrieval_rounds: int = P(
        300, "boosting rounds of the label retrieval (labels: retrieval); with learning rate 0.05 a modest model "
        "for the few thousand to tens of thousands of station-days an ISMN-like network gives", ge=1)
    retrieval_max_depth: int = P(
        6, "tree depth of the label retrieval (XGBoost's default; labels: retrieval)", ge=1, le=12)
    modis_albedo_noise: float = P(
        0.005, "MODIS-like white-sky albedo noise sd, dimensionless (labels: retrieval): half the AVHRR-like "
        "albedo_noise, MODIS albedo coming from one calibrated multi-band, multi-angle sensor (Schaaf et al. 2002, "
        "RSE 83, 135-148), AVHRR's from seven platforms", ge=0)
    modis_lst_noise: float = P(
        1.0, "MODIS-like LST noise sd, K (labels: retrieval): MOD11 LST accuracy better than 1 K in most validations "
        "(Wan 2014, RSE 140, 36-45), vs the AVHRR-like lst_noise 1.5 K", ge=0)
    ndvi_noise: float = P(
        0.02, "MODIS-like NDVI noise sd, dimensionless (labels: retrieval): the MOD13 NDVI uncertainty, of order "
        "0.02 (Huete et al. 2002, RSE 83, 195-213)", ge=0)
    label_gap_fraction: float = P(0.05, "fraction of missing label pixel-days", ge=0, lt=1)
    cloud_base: float = P(0.35, "mean cloud probability on a dry day", ge=0, le=1)
    albedo_noise: float = P(0.01, "albedo retrieval noise sd, dimensionless", ge=0)
    lst_noise: float = P(1.5, "LST retrieval noise sd, K", ge=0)
    climate: Literal["gradient", "earth"] = P(
        "gradient", "climate layout of the twin's world: 'gradient' (a regional tile: aridity from "
        "aridity_west_east across the domain, terrain of mean_elevation and relief, a fixed summer-peaked "
        "seasonality) or 'earth' (the physical layout of Earth's climates from glass_sm.twin.earth: Natural Earth "
        "land and ice masks, large-scale elevation, aridity, seasonality and temperature per position; ocean and "
        "ice cells flagged by static land & ~ice); equations in glass_sm.twin")
    aridity_west_east: list[float] = P([0.25, 1.2], "aridity index P/PET at the western and eastern domain edges "
                                       "(climate: gradient)", gt=0, n_items=2)
    mean_elevation: float = P(800.0, "domain-mean terrain height, m (climate: gradient)", gt=0)
    relief: float = P(600.0, "terrain relief (sd), m (climate: gradient; earth: the relief grows with the "
                             "large-scale height, see glass_sm.twin)", ge=0)
    modis_pixel_m: float = P(1000.0, "pixel size of the GLASS-MODIS-like sinusoidal GeoTIFFs, m (at a coarse "
                                     "domain.resolution choose a few pixels per cell: the files grow as its square)",
                             ge=100)
    static_resolution: float = P(0.01, "resolution of the DEM/texture GeoTIFFs, degrees (divides domain.resolution; "
                                       "the memory grows as (domain.resolution / static_resolution)^2 per cell)",
                                 gt=0, le=5)
    cci_resolution: float = P(0.25, "resolution of the ESA-CCI-like product, degrees (a multiple of "
                                    "domain.resolution; for a global domain it must also divide 360)",
                              ge=0.05, le=30)
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
    avhrr_satellite_attribute: bool = P(False, "write a 'Satellite' global attribute in the AVHRR files (the real "
                                               "files have none: the readers then use glass_sm.platforms)")


@dataclass
class DataConfig:
    """Where stage 01 reads its inputs (twin or real data)."""

    source: Literal["twin", "real"] = P("twin", "'twin' (synthetic, default) or 'real'")
    root: Optional[Path] = P(None, "root of the real data (or env GLASS_SM_DATA); used as {root}")
    avhrr_dir: Path = P(Path("{raw}/avhrr"), "GLASS AVHRR tree with albedo/<YYYY>/ and lst/<YYYY>/")
    albedo_cadence_days: int = P(8, "days between GLASS02B05 albedo composites (files at day of year 1, 9, ..., "
                                    "361)", ge=1, le=366)
    albedo_sample_offset_days: float = P(
        0.0, "time a composite represents = file date + this, days; 0 (NASA LIS: the file date is the sample time) "
        "or 3.5 (the file date is the first of 8 days); undocumented by the producer", ge=-16, le=16)
    albedo_qc: Literal["acceptable", "good", "poor", "none"] = P(
        "acceptable", "albedo QC: highest quality level kept (QC bits 0-1: 0 good, 1 acceptable), or none")
    albedo_qc_layer: Optional[list[str]] = P(
        None, "albedo QC layer names tried in order (None: QC_<band>, QC_VIS, QC)")
    lst_qc: Literal["cloud", "strict", "none"] = P(
        "cloud", "LST QC (layer meaning assumed): mask bit 0 cloudy, bits 0-1 also low quality, or none")
    lst_qc_layer: Optional[list[str]] = P(None, "LST QC layer names tried in order (None: QC)")
    era5land_dir: Path = P(Path("{raw}/era5land"), "ERA5-Land swvl1 files (netCDF or GRIB)")
    glass_modis_dir: Path = P(Path("{raw}/glass_modis"), "GLASS-MODIS SM GeoTIFFs")
    glass_modis_pattern: str = P(
        "default", "GLASS-MODIS SM file names (real naming unverified): 'default' (GLASS_MODIS_SM.A<YYYY><DDD>"
        "[.h<HH>v<VV>][.<anything>].tif), 'modis_tiled' (GLASS<...>.V<NN>.A<YYYY><DDD>.h<HH>v<VV>[.<YYYYDDD>].tif) "
        "or a regex with the groups (?P<year>...) and (?P<doy>...), optional (?P<tile>...), (?P<production>...)",
    )
    glass_modis_scale: float = P(
        1.0, "GLASS-MODIS SM m3 m-3 per stored unit when a file declares no scale of its own (real value "
        "unverified): 1 for float m3 m-3, 0.0001 for int16 0..10000", gt=0,
    )
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
    max_missing_run_days: int = P(
        30, "longest run of consecutive days a source may lack files (labels: from period.label_start) before "
        "any reading; a longer run (a whole month or more) is an error unless the source is allowed below", ge=0,
    )
    allow_missing_inputs: list[Literal["albedo", "lst", "era5land", "glass_modis"]] = P(
        [], "sources allowed runs longer than max_missing_run_days: built anyway (albedo/LST filled and flagged, "
            "ERA5-Land filled, labels NaN), each run counted in tables/input_coverage.csv",
    )
    ingest: Literal["auto", "tile", "day_major"] = P(
        "auto", "how stage 01 reads the sources (glass_sm.data.cube.build_cube): 'tile' reads every file once per "
        "build tile; 'day_major' reads each file once over the whole domain in parallel (glass_sm.data.ingest) and "
        "rechunks; 'auto' takes the rule measured in build_cube's docstring (day_major when the domain has more "
        "than one build tile); the cube is the same either way",
    )
    ingest_block_days: int = P(
        0, "days per task and per time chunk of the day-major intermediate store; 0 (auto): the period in the "
        "fewest blocks whose arrays fit in cube.ingest_task_mb, of at most a year, giving at least 4 tasks per "
        "worker thread (n_workers x threads_per_worker), a multiple of the 8-day cadence of the GLASS albedo "
        "composites (glass_sm.data.ingest.block_days); memory per task grows with it (block days x domain cells "
        "x 4 B x arrays held). Auto depends on the worker count: resume a killed ingest with the same "
        "n_workers x threads_per_worker (or set this), else its store is rebuilt", ge=0,
    )
    ingest_task_mb: float = P(
        512.0, "memory budget of one day-major ingest task's arrays, MB, used when ingest_block_days is 0: larger "
        "blocks mean fewer tasks (each task opens its files, sets up its readers and writes its chunks once)", gt=0,
    )
    scheduler_address: Optional[str] = P(
        None, "existing Dask scheduler for the day-major ingest (None: a LocalCluster); its workers must see "
        "the data folders (data.*_dir) and the results folder")
    n_workers: int = P(
        2, "LocalCluster workers of the day-major ingest; with scheduler_address, the cluster's worker count "
        "that the auto ingest_block_days balances its tasks over", ge=1)
    threads_per_worker: int = P(
        1, "threads per worker of the day-major ingest (1: the HDF4 library is not thread-safe)", ge=1)
    scheduler: Literal["distributed", "synchronous"] = P(
        "distributed", "Dask cluster for the day-major ingest, or in-process (tests)")


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
    "xgboost_window": {"n_estimators": 600, "max_depth": 8, "learning_rate": 0.1, "early_stopping_rounds": 20,
                       "n_jobs": 2},
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

    names: list[str] = P(["lstm", "bilstm", "atlstm", "atlstm_cl", "transformer", "xgboost", "xgboost_window"],
                         "models to compare: xgboost is the paper's benchmark (target-day inputs), xgboost_window "
                         "and atlstm_cl (attention head reading [context; last state]) are ablations", min_items=1)
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
    parallel_fits: int = P(1, "models trained side by side in stages 02-03, each in its own process with "
                              "torch_threads threads (results identical to 1; 2 uses both cores of a 2-core CPU)",
                           ge=1)
    init_output_bias: bool = P(True, "start the torch models' output bias at the mean training label (m3 m-3)")
    lr_schedule: Literal["plateau", "none"] = P(
        "plateau", "learning-rate schedule: 'plateau' halves the rate once more than lr_patience epochs in a row bring no new "
        "best validation loss (torch ReduceLROnPlateau), 'none' keeps it constant")
    lr_patience: int = P(1, "epochs in a row without a new best validation loss that are tolerated before the rate "
                            "is halved (ReduceLROnPlateau patience)", ge=1)
    converge_tol: float = P(
        0.002, "stopping rule: the run has converged when the best validation loss improved by less than this "
        "relative amount over the last `patience` epochs (stop reason 'converged'); no improvement at all is "
        "'early-stopped', reaching `epochs` while still improving is 'budget cap'", ge=0, lt=1)
    device: Literal["auto", "cpu", "cuda"] = P(
        "cpu", "where the torch models of stages 02-03 train and predict: 'cpu' (the tested default; bit-identical "
        "tables for the same seed, torch build and threads), 'cuda' (the first GPU; an error naming this key when "
        "torch sees none), 'auto' (CUDA when torch.cuda.is_available(), else CPU). XGBoost stays on the CPU")


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
    model_batch: int = P(
        1024, "windows per recurrent batch of the inference engine: large enough to amortise the ~5 us dispatch of "
        "each of the ~10 operators of an LSTM step, small enough that a step's gates (model_batch x 4 hidden x 4 B; "
        "512 KiB at hidden 32) stay in a core's L2 (tools/bench.py rows b-mb: 1024-2048 best on a 2-core EPYC)",
        ge=1)
    torch_threads: Optional[int] = P(None, "torch threads per task (None: 1; small LSTM GEMMs slow down with more)",
                                     ge=1)
    precision: Literal["fp32", "bf16"] = P(
        "fp32", "arithmetic of inference (glass_sm.models.inference): fp32, or bf16 GEMMs (fp32 state and "
        "accumulation); bf16 is the default only once tools/bench.py shows the product within RMSE 1e-4 m3 m-3 "
        "of fp32 and faster on the machine")
    device: Literal["auto", "cpu", "cuda"] = P(
        "cpu", "where stage 04 runs the model: 'cpu' (the tested default, glass_sm.models.inference's engine), "
        "'cuda' (the module's forward on the first GPU of each worker; an error naming this key when torch sees "
        "none), 'auto' (CUDA when torch.cuda.is_available(), else CPU)")


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
class ZoomConfig:
    """A 0.05 deg regional zoom of the same synthetic world, produced with the run's checkpoint (stage 04).

    The twin is one continuous world (``twin.climate: earth``): the zoom samples it at 0.05 deg over a small box and
    a short period, with the run's seed, and produces it with the checkpoint trained on the run (train once, produce
    anywhere, as the paper applies the AtLSTM trained at its stations to the globe). Its files go to
    ``results/<run>/zoom/`` (a run of its own, named ``zoom``); see :mod:`glass_sm.zoom`.
    """

    enabled: bool = P(False, "make the zoom in stage 04 (twin runs only)")
    lat_min: float = P(36.0, "southern edge, degrees north", ge=-90, le=90)
    lat_max: float = P(39.0, "northern edge, degrees north", ge=-90, le=90)
    lon_min: float = P(-102.0, "western edge, degrees east", ge=-180, le=180)
    lon_max: float = P(-96.0, "eastern edge, degrees east", ge=-180, le=180)
    start: dt.date = P(dt.date(2015, 1, 1), "first day of the zoom (the twin adds its usual year of spin-up)")
    end: dt.date = P(dt.date(2015, 12, 31), "last day of the zoom")
    n_stations: int = P(2, "ISMN-like stations of the zoom's twin (written for completeness; unused)", ge=1)


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
    zoom: ZoomConfig = field(default_factory=ZoomConfig)
    source_file: Optional[str] = field(default=None, metadata={"doc": "(set by load) the params file"})

    # ---- convenience -------------------------------------------------------------------------------
    @property
    def results(self) -> Path:
        """``<results_dir>/<run name>``."""
        return Path(self.run.results_dir) / self.run.name

    @property
    def is_twin(self) -> bool:
        return self.data.source == "twin"
